//! Baseline for `bench/run.sh`: the file-per-record layout (signac / datreant style).
//!
//! Reads the same JSON Lines file that `trove ingest` reads and, for each line, creates
//! `<OUT>/<path>/` and writes `<OUT>/<path>/meta.json` holding the record's kind, metadata and
//! tags. A plain loop with std only: no crates, no fsync (like signac's own writes), the JSON
//! parsed and formatted by hand.
//!
//! Build: rustc -O --edition 2021 bench/baseline_files.rs -o baseline_files
//! Run:   baseline_files RECORDS.jsonl OUT_DIR

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Instant;

enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(items));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    let v = self.value()?;
                    items.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(items));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Json::Null)
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    self.i += 1;
                }
                Ok(Json::Num(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()))
            }
            _ => Err(format!("unexpected input at byte {}", self.i)),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.ws();
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).map_err(|e| e.to_string())?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            self.i += 4;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, v: &Json, indent: usize) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Num(n) => out.push_str(n),
        Json::Str(s) => write_str(out, s),
        Json::Arr(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_json(out, item, indent);
            }
            out.push(']');
        }
        Json::Obj(items) => {
            if items.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{\n");
            for (n, (k, item)) in items.iter().enumerate() {
                for _ in 0..indent + 2 {
                    out.push(' ');
                }
                write_str(out, k);
                out.push_str(": ");
                write_json(out, item, indent + 2);
                out.push_str(if n + 1 < items.len() { ",\n" } else { "\n" });
            }
            for _ in 0..indent {
                out.push(' ');
            }
            out.push('}');
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {} RECORDS.jsonl OUT_DIR", args[0]);
        std::process::exit(2);
    }
    let out_dir = PathBuf::from(&args[2]);
    let input = fs::File::open(&args[1]).unwrap_or_else(|e| {
        eprintln!("cannot open {}: {e}", args[1]);
        std::process::exit(1);
    });
    let started = Instant::now();
    let mut n = 0u64;
    let mut doc = String::new();
    for (lineno, line) in BufReader::with_capacity(1 << 20, input).lines().enumerate() {
        let line = line.expect("read error");
        if line.trim().is_empty() {
            continue;
        }
        let mut p = Parser { s: line.as_bytes(), i: 0 };
        let record = match p.value() {
            Ok(Json::Obj(items)) => items,
            Ok(_) => panic!("line {}: not a JSON object", lineno + 1),
            Err(e) => panic!("line {}: {e}", lineno + 1),
        };
        let mut path = None;
        let mut kept = Vec::new();
        for (k, v) in record {
            match (k.as_str(), v) {
                ("path", Json::Str(s)) => path = Some(s),
                ("kind" | "metadata" | "tags", v) => kept.push((k, v)),
                _ => {}
            }
        }
        let path = path.unwrap_or_else(|| panic!("line {}: no \"path\"", lineno + 1));
        let dir = out_dir.join(&path);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        doc.clear();
        write_json(&mut doc, &Json::Obj(kept), 0);
        doc.push('\n');
        let file = dir.join("meta.json");
        let mut f = fs::File::create(&file).unwrap_or_else(|e| panic!("cannot create {}: {e}", file.display()));
        f.write_all(doc.as_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        n += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("wrote {n} records, {secs:.2} s ({:.0} records/s)", n as f64 / secs.max(1e-9));
}
