//! The baseline of bench/query.sh: a full scan of the ingest JSONL by a plain compiled program, which is what
//! a store without a query index (signac, a folder of JSON files) must do for every query. It reads each
//! line, pulls out the fields the query needs with a minimal reader (cheaper than a full JSON parse, so the
//! comparison flatters the scan), evaluates the predicate and counts matches.
//!
//!     scan FILE.jsonl eq|range|tag|and3|and3big|or

use std::io::{BufRead, BufReader};

/// The text after `"key": ` up to the next `,` or `}` (a number, or a quoted string with its quotes).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn number(line: &str, key: &str) -> Option<f64> {
    field(line, key)?.parse().ok()
}

fn has_tag(line: &str, tag: &str) -> bool {
    line.find("\"tags\": [").is_some_and(|at| line[at..].contains(&format!("\"{tag}\"")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, query) = (&args[1], args[2].as_str());
    let file = std::fs::File::open(path).expect("cannot open the JSONL");
    let mut n = 0u64;
    for line in BufReader::with_capacity(1 << 20, file).lines() {
        let line = line.expect("cannot read the JSONL");
        let t = number(&line, "temperature");
        let steel = field(&line, "material") == Some("\"steel\"");
        let hit = match query {
            "eq" => steel,
            "range" => t.is_some_and(|t| (300.0..302.0).contains(&t)),
            "tag" => has_tag(&line, "pilot"),
            "and3" => steel && t.is_some_and(|t| (300.0..310.0).contains(&t)),
            "and3big" => steel && t.is_some_and(|t| t >= 300.0) && has_tag(&line, "pilot"),
            "or" => t.is_some_and(|t| !(201.0..=399.0).contains(&t)),
            other => panic!("unknown query {other}"),
        };
        n += u64::from(hit);
    }
    println!("{n}");
}
