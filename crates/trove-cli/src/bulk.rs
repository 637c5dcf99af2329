//! Commands that change many datasets at once (`rm`, `tag add|rm`, `meta set|unset`): what they work on (a
//! reference, `-` for references on stdin, `--where FILTER`), `--dry-run`, and the question `rm --where` asks
//! on a terminal. Every batch is one commit.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use trove::model::filter::Filter;
use trove::model::name::DatasetPath;
use trove::model::reference::Ref;
use trove::{DatasetEdit, Query, Store};

use crate::Bulk;
use crate::commands::{dataset_ref, references_of};
use crate::output::Out;

/// The datasets a bulk command changes.
pub enum Targets {
    /// One reference, as given: a project is allowed where the edit allows it.
    One(Ref),
    /// References from stdin or from `--where`.
    Many(Vec<Ref>),
}

/// Splits a command's arguments into its targets and the rest (tags, keys, assignments). Without `--where` the
/// first argument is the reference (`-`: read them from stdin); with it every argument is the rest.
pub fn targets<'a>(store: &Store, items: &'a [String], bulk: &Bulk, what: &str) -> Result<(Targets, &'a [String])> {
    if let Some(filter) = &bulk.where_ {
        return Ok((Targets::Many(matching(store, filter)?), items));
    }
    let Some((first, rest)) = items.split_first() else { usage(format!("give a reference and at least one {what}")) };
    if rest.is_empty() {
        usage(format!("give at least one {what} after the reference {first:?} (or --where FILTER before the {what}s)"));
    }
    let targets = if first == "-" {
        Targets::Many(references_of(std::slice::from_ref(first))?)
    } else {
        Targets::One(Ref::parse(first)?)
    };
    Ok((targets, rest))
}

/// Tags belong to datasets: a single reference must name one.
pub fn datasets_only(targets: Targets) -> Result<Targets> {
    Ok(match targets {
        Targets::One(r) => Targets::One(dataset_ref(&r.to_string())?.0),
        many => many,
    })
}

/// Applies `edit` to the targets (or, with `--dry-run`, lists them).
pub fn edit(store: &Store, targets: Targets, edit: &DatasetEdit, bulk: &Bulk, out: &mut Out) -> Result<()> {
    match targets {
        Targets::One(r) if !bulk.dry_run => Ok(store.edit(&r, edit)?),
        Targets::One(r) => dry_run(&[r], "change", "", out),
        Targets::Many(refs) if bulk.dry_run => dry_run(&refs, "change", "", out),
        Targets::Many(refs) => {
            let n = store.edit_all(&refs, edit)?;
            Ok(out.line(format!("changed {n} dataset{}", plural(n as usize)))?)
        }
    }
}

/// The datasets `filter` matches, in path order.
pub fn matching(store: &Store, filter: &str) -> Result<Vec<Ref>> {
    let query = Query::new(Filter::parse(filter)?);
    let mut refs = Vec::new();
    store.find_refs(&query, |project, path| {
        refs.push(Ref::dataset(project, DatasetPath::parse(path)?));
        Ok(true)
    })?;
    Ok(refs)
}

/// `--dry-run`: each dataset, then the count.
pub fn dry_run(refs: &[Ref], verb: &str, beyond: &str, out: &mut Out) -> Result<()> {
    for r in refs {
        out.line(r.to_string())?;
    }
    Ok(out.line(format!("would {verb} {} dataset{}{beyond}; nothing was changed", refs.len(), plural(refs.len())))?)
}

/// Asks on the terminal; `true` when the answer is yes. Without a terminal on stdin and stderr nobody can be
/// asked, and the command goes ahead as a script expects.
pub fn confirmed(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(true);
    }
    eprint!("{question}? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// A command line that clap's rules could not catch: its message and usage, exit code 2, as clap's own.
fn usage(message: String) -> ! {
    use clap::CommandFactory;
    crate::Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, message).exit()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
