//! `find`, `schema` and `sql`: the commands that ask the catalog questions.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use trove::model::filter::Filter;
use trove::model::value::get_dotted;
use trove::model::{DatasetState, time};
use trove::{FindOptions, Query, Sort, SortKey, Store};

use crate::FindArgs;
use crate::output::{Out, stdout_error};

/// Rows read before the table's column widths are fixed; later rows use those widths (or overflow them).
const WIDTH_SAMPLE: usize = 200;

/// The filter from the FILTER argument (or `--filter-file`) and `--filter-json` (both: they must both hold).
fn filter_of(args: &FindArgs) -> Result<Filter> {
    if args.filter_file.as_deref() == Some(std::path::Path::new("-")) && args.filter_json.as_deref() == Some("-") {
        bail!("--filter-file - and --filter-json - both read stdin: put one of them in a file");
    }
    let from_file = match &args.filter_file {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("cannot read the filter from stdin")?;
            Some(s)
        }
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("cannot read the filter from {}", path.display()))?,
        ),
    };
    // A file's last line break is not part of the filter.
    let from_file = from_file.map(|t| t.trim_end_matches(['\n', '\r']).to_string());
    let text = match from_file.as_deref().or(args.filter.as_deref()) {
        Some(text) => Filter::parse(text)?,
        None => Filter::True,
    };
    let json = match args.filter_json.as_deref() {
        None => Filter::True,
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("cannot read the JSON filter from stdin")?;
            Filter::from_mongo_str(&s)?
        }
        Some(s) => Filter::from_mongo_str(s)?,
    };
    Ok(text.and(json))
}

pub fn find(store: &Store, args: FindArgs, out: &mut Out) -> Result<()> {
    let filter = filter_of(&args)?;
    let sort = match &args.sort {
        Some(s) => s.parse::<Sort>().map_err(anyhow::Error::msg)?,
        None => Sort::default(),
    };
    if let Some(p) = &args.project {
        trove::model::name::validate_project(p)?;
    }
    let columns = table_columns(&filter, &sort);
    let query = Query {
        filter,
        options: FindOptions { project: args.project, sort, offset: args.offset, limit: args.limit },
        inherited: args.inherited,
        lineage_name: args.lineage_name,
    };
    if args.count {
        // The window applies to the count too: `--offset 10 --limit 5` counts at most 5.
        let n = store.count(&query)?.saturating_sub(query.options.offset);
        out.line(query.options.limit.map_or(n, |l| n.min(l)).to_string())?;
        return Ok(());
    }
    if args.ids {
        return Ok(store.find_refs(&query, |project, path| {
            out.line(format!("{project}/{path}")).map_err(stdout_error)?;
            Ok(true)
        })?);
    }
    if args.json {
        return Ok(store.find(&query, |state| {
            out.json(&store.dataset_json(&state)).map_err(stdout_error)?;
            Ok(true)
        })?);
    }
    let mut table = Table::new();
    store.find(&query, |state| {
        table.push(dataset_cells(&state, &columns), out).map_err(stdout_error)?;
        Ok(true)
    })?;
    let shown = table.finish(out)?;
    if std::io::stderr().is_terminal() {
        eprintln!("{shown} dataset{}", if shown == 1 { "" } else { "s" });
    }
    Ok(())
}

/// The metadata keys a table shows: those the filter and the sort mention, in order, at most six.
fn table_columns(filter: &Filter, sort: &Sort) -> Vec<String> {
    let mut keys = filter.meta_keys();
    if let SortKey::Meta(key) = &sort.key
        && !keys.contains(key)
    {
        keys.push(key.clone());
    }
    keys.truncate(6);
    keys
}

/// Aligned columns, streamed: widths are fixed from the first rows, so a million rows never sit in memory.
struct Table {
    pending: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    shown: u64,
}

impl Table {
    fn new() -> Table {
        Table { pending: Vec::new(), widths: None, shown: 0 }
    }

    fn push(&mut self, cells: Vec<String>, out: &mut Out) -> std::io::Result<()> {
        self.shown += 1;
        match &self.widths {
            Some(widths) => out.line(render(&cells, widths)),
            None => {
                self.pending.push(cells);
                if self.pending.len() >= WIDTH_SAMPLE {
                    self.flush_pending(out)?;
                }
                Ok(())
            }
        }
    }

    fn flush_pending(&mut self, out: &mut Out) -> std::io::Result<()> {
        let n = self.pending.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..n)
            .map(|i| self.pending.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0))
            .collect();
        for cells in std::mem::take(&mut self.pending) {
            out.line(render(&cells, &widths))?;
        }
        self.widths = Some(widths);
        Ok(())
    }

    /// Writes what is pending; the number of rows pushed.
    fn finish(mut self, out: &mut Out) -> std::io::Result<u64> {
        self.flush_pending(out)?;
        Ok(self.shown)
    }
}

/// A dataset's cells in `find`'s table: reference, kind, the given keys' values, tags.
fn dataset_cells(s: &DatasetState, keys: &[String]) -> Vec<String> {
    let name = s.at.as_ref().map_or_else(String::new, |at| format!("{}/{}", at.project(), at.path()));
    let mut cells = vec![name, s.kind.clone().unwrap_or_else(|| "-".into())];
    for key in keys {
        let v = get_dotted(&s.meta, key).map_or_else(
            || "-".to_string(),
            |v| match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
        );
        cells.push(format!("{key}={v}"));
    }
    let tags: Vec<&str> = s.tags.iter().map(String::as_str).collect();
    cells.push(if tags.is_empty() { String::new() } else { format!("[{}]", tags.join(", ")) });
    cells
}

fn render(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            line.push_str(&format!("{cell:<w$}  ", w = widths.get(i).copied().unwrap_or(0)));
        }
    }
    line.trim_end().to_string()
}

pub fn schema(store: &Store, project: Option<String>, json: bool, out: &mut Out) -> Result<()> {
    if let Some(p) = &project {
        trove::model::name::validate_project(p)?;
        if !store.projects()?.iter().any(|s| s.name == *p) {
            bail!("project {p} not found");
        }
    }
    let usage = store.schema(project.as_deref())?;
    let time_text = |t: i64| time::rfc3339(t);
    if json {
        for u in &usage {
            out.json(&trove::key_usage_json(u))?;
        }
        return Ok(());
    }
    if usage.is_empty() {
        out.line("no metadata yet")?;
        return Ok(());
    }
    let rows: Vec<[String; 4]> = usage
        .iter()
        .map(|u| {
            let types = u
                .types
                .iter()
                .map(|(t, n)| if u.types.len() == 1 { t.to_string() } else { format!("{t} {n}") })
                .collect::<Vec<_>>()
                .join(", ");
            let mut range = String::new();
            if let Some((lo, hi)) = &u.numbers {
                range = format!("{lo} .. {hi}");
            }
            if let Some((lo, hi)) = u.time_range {
                let times = format!("{} times {} .. {}", u.times, time_text(lo), time_text(hi));
                range = if range.is_empty() { times } else { format!("{range}; {times}") };
            }
            [u.key.clone(), types, u.count().to_string(), range]
        })
        .collect();
    let header = ["KEY".to_string(), "TYPES".into(), "DATASETS".into(), "RANGE".into()];
    let widths: Vec<usize> =
        (0..4).map(|i| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in std::iter::once(&header).chain(&rows) {
        out.line(render(row, &widths))?;
    }
    Ok(())
}

pub fn sql(store: &Store, query: &str, json: bool, out: &mut Out) -> Result<()> {
    let mut console = store.sql_console()?;
    let mut table = Table::new();
    // A failed write to stdout (a closed pipe) stops the query and is reported as itself.
    let mut write_error: Option<std::io::Error> = None;
    let names = console.query(query, |names, row| {
        let written = if json {
            let obj: serde_json::Map<String, Value> = names.iter().cloned().zip(row).collect();
            out.json(&Value::Object(obj))
        } else {
            let header = if table.shown == 0 { table.push(names.to_vec(), out) } else { Ok(()) };
            let cells = row
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    Value::Null => "NULL".into(),
                    v => v.to_string(),
                })
                .collect();
            header.and_then(|()| table.push(cells, out))
        };
        match written {
            Ok(()) => Ok(true),
            Err(e) => {
                write_error = Some(e);
                Ok(false)
            }
        }
    })?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if !json {
        if table.shown == 0 {
            table.push(names, out)?;
        }
        table.finish(out)?;
    }
    Ok(())
}
