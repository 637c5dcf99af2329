//! `trove transfer`: datasets copied to another store, with a progress bar.

use anyhow::{Context, Result, bail};
use serde_json::json;
use trove::model::Ref;
use trove::model::filter::Filter;
use trove::{Connections, Location, OpenOptions, Query, Store, TransferOptions, TransferSelection, VerifyScope};

use crate::output::{self, Out};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// What to copy: a project, a dataset with everything below it, the datasets below a folder, or a filter
    /// as `trove find` takes it ('temperature >= 300').
    #[arg(required_unless_present = "all")]
    pub target: Option<String>,
    /// Every dataset of the store.
    #[arg(long, conflicts_with = "target")]
    pub all: bool,
    /// The destination: a connection's name, a store folder, or a store URL (s3://BUCKET/PREFIX).
    #[arg(long, value_name = "CONNECTION|ROOT|URL")]
    pub to: String,
    /// Hash every copied object again at the destination once it is committed.
    #[arg(long)]
    pub verify: bool,
    /// Files sent at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Say what would be sent and committed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object with the figures.
    #[arg(long)]
    pub json: bool,
}

/// `trove transfer TARGET --to DEST`.
pub fn run(store: &Store, args: TransferArgs, options: &OpenOptions, out: &mut Out) -> Result<()> {
    let selection = selection(store, args.target.as_deref())?;
    let to = destination(&args.to, options)?;
    let bar = output::progress_bar("{spinner} transfer [{bar:20}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)");
    let transfer_options = TransferOptions { jobs: usize::from(args.jobs), verify: args.verify, dry_run: args.dry_run };
    let report = store.transfer(&selection, &to, &transfer_options, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        return Ok(out.json(&json!({ "dry_run": args.dry_run, "to": to.location().to_string(), "report": report }))?);
    }
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if args.dry_run {
        return Ok(out.line(format!(
            "would commit {} dataset{} at {} and send {} file{} ({}); {} already there as they are",
            report.committed,
            plural(report.committed),
            to.location(),
            report.files_sent,
            plural(report.files_sent),
            output::size(report.bytes_sent),
            report.unchanged
        ))?);
    }
    let rate = report.bytes_sent as f64 / report.seconds.max(1e-9);
    out.line(format!(
        "transferred {} dataset{} to {} in {:.2} s: {} file{} sent ({}, {}/s), {} sent before, {} dataset{} already there{}",
        report.committed,
        plural(report.committed),
        to.location(),
        report.seconds,
        report.files_sent,
        plural(report.files_sent),
        output::size(report.bytes_sent),
        output::size(rate as u64),
        report.files_reused,
        report.unchanged,
        plural(report.unchanged),
        if args.verify { format!("; {} objects verified at the destination", report.verified) } else { String::new() }
    ))?;
    Ok(())
}

/// A reference when it names something in the store, else a filter.
fn selection(store: &Store, target: Option<&str>) -> Result<TransferSelection> {
    let Some(target) = target else { return Ok(TransferSelection::Scope(VerifyScope::All)) };
    let as_ref = Ref::parse(target);
    if let Ok(r) = &as_ref
        && store.resolve(&r.without_object()).is_ok()
    {
        return Ok(TransferSelection::Scope(VerifyScope::Ref(r.clone())));
    }
    match Filter::parse(target) {
        Ok(filter) => Ok(TransferSelection::Query(Query::new(filter))),
        Err(filter_error) => match as_ref {
            Ok(r) => bail!("{r}: no such project, dataset or folder in the store (nor a filter: {filter_error})"),
            Err(_) => bail!("{target:?} is neither a reference nor a filter: {filter_error}"),
        },
    }
}

/// The destination store: a named connection, else a folder or URL.
fn destination(to: &str, options: &OpenOptions) -> Result<Store> {
    let connections = Connections::load_default()?;
    if let Some(connection) = connections.get(to) {
        return connection.open(options).with_context(|| format!("cannot open the destination connection {to}"));
    }
    Store::open_at(&Location::parse(to), options).with_context(|| format!("cannot open the destination store {to}"))
}
