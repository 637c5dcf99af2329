//! How results look: plain lines for people, JSON Lines for programs.

use std::io::{BufWriter, Stdout, Write};

use serde_json::Value;
use trove::model::DatasetState;

/// Buffered standard output.
pub struct Out {
    w: BufWriter<Stdout>,
}

impl Out {
    pub fn stdout() -> Out {
        Out { w: BufWriter::with_capacity(1 << 16, std::io::stdout()) }
    }

    pub fn line(&mut self, s: impl AsRef<str>) -> std::io::Result<()> {
        self.w.write_all(s.as_ref().as_bytes())?;
        self.w.write_all(b"\n")
    }

    /// One JSON value on one line.
    pub fn json(&mut self, v: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.w, v)?;
        self.w.write_all(b"\n")
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.w.flush()?)
    }
}

/// Wraps a failed write to stdout for the library's callbacks.
pub fn stdout_error(source: std::io::Error) -> trove::Error {
    trove::Error::Io { path: "<stdout>".into(), source }
}

/// A byte count for people: `812 B`, `1.4 MB`.
/// A progress bar on stderr in the given style (indicatif's template), hidden when stderr is not a terminal.
pub fn progress_bar(template: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar =
        if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// One dataset in a listing: name, kind, objects, tags.
pub fn dataset_line(name: &str, s: &DatasetState, has_children: bool) -> String {
    let mut line = format!("{name}{}", if has_children { "/" } else { "" });
    if let Some(kind) = &s.kind {
        line.push_str(&format!("\t{kind}"));
    }
    if !s.objects.is_empty() {
        line.push_str(&format!("\t{} object{}", s.objects.len(), if s.objects.len() == 1 { "" } else { "s" }));
    }
    if !s.tags.is_empty() {
        line.push_str(&format!("\t[{}]", s.tags.iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    line
}

/// A JSON object as indented `key: value` lines.
pub fn show_value(out: &mut Out, v: &Value) -> anyhow::Result<()> {
    fn walk(out: &mut Out, v: &Value, indent: usize) -> std::io::Result<()> {
        let pad = "  ".repeat(indent);
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::Object(m) if !m.is_empty() => {
                            out.line(format!("{pad}{k}:"))?;
                            walk(out, v, indent + 1)?;
                        }
                        Value::Array(a) if a.iter().any(Value::is_object) => {
                            out.line(format!("{pad}{k}:"))?;
                            for item in a {
                                walk(out, item, indent + 1)?;
                                if item.is_object() {
                                    out.line("")?;
                                }
                            }
                        }
                        _ => out.line(format!("{pad}{k}: {}", scalar(v)))?,
                    }
                }
                Ok(())
            }
            other => out.line(format!("{pad}{}", scalar(other))),
        }
    }
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    Ok(walk(out, v, 0)?)
}

/// Draws the tree of datasets (sorted by path) below `root`, with implicit folders, to `depth` levels.
pub fn tree(
    out: &mut Out,
    root: &str,
    base_depth: usize,
    datasets: &[DatasetState],
    depth: Option<usize>,
) -> anyhow::Result<()> {
    // Node list in path order: every prefix of every dataset path below the root, once.
    let mut nodes: Vec<(Vec<&str>, Option<&DatasetState>)> = Vec::new();
    let mut last: Vec<&str> = Vec::new();
    for s in datasets {
        let Some(at) = &s.at else { continue };
        let segs: Vec<&str> = at.path().as_str().split('/').skip(base_depth).collect();
        let common = last.iter().zip(&segs).take_while(|(a, b)| a == b).count();
        for i in common..segs.len() {
            if depth.is_some_and(|d| i >= d) {
                break;
            }
            let own = (i + 1 == segs.len()).then_some(s);
            nodes.push((segs[..=i].to_vec(), own));
        }
        if common == segs.len() {
            // The same path as the previous node (a dataset after its implicit folder cannot happen in path order).
            if let Some(n) = nodes.last_mut() {
                n.1 = Some(s);
            }
        }
        last = segs;
    }
    // Walking backwards, a node is the last of its siblings when no later node at its level was seen
    // since the last node above that level.
    let mut is_last = vec![false; nodes.len()];
    let mut seen: Vec<bool> = Vec::new();
    for (i, (segs, _)) in nodes.iter().enumerate().rev() {
        let level = segs.len();
        seen.resize(level + 1, false);
        is_last[i] = !seen[level];
        seen[level] = true;
        seen.truncate(level + 1);
    }
    out.line(root)?;
    let mut ancestors_last: Vec<bool> = Vec::new();
    for (i, (segs, own)) in nodes.iter().enumerate() {
        let level = segs.len();
        ancestors_last.truncate(level - 1);
        let prefix: String = ancestors_last.iter().map(|&last| if last { "    " } else { "│   " }).collect();
        let branch = if is_last[i] { "└── " } else { "├── " };
        let name = segs[level - 1];
        let has_children = nodes.get(i + 1).is_some_and(|(s, _)| s.len() > level);
        let label = match own {
            Some(s) => dataset_line(name, s, has_children),
            None => format!("{name}/"),
        };
        out.line(format!("{prefix}{branch}{label}"))?;
        ancestors_last.push(is_last[i]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::size(0), "0 B");
        assert_eq!(super::size(999), "999 B");
        assert_eq!(super::size(1500), "1.5 kB");
        assert_eq!(super::size(2_000_000_000), "2.0 GB");
    }
}
