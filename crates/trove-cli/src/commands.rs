//! What each command does, on top of the library.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use trove::model::value::{parse_assignment, parse_key};
use trove::model::{DatasetPath, Ref};
use trove::{Compression, DatasetEdit, FileImport, OpenOptions, PreviewOptions, Slice, Store, Target, WriteOptions};

use crate::connections::StoreTarget;
use crate::output::{self, Out};
use crate::{CatalogCommand, Cli, Command, ConvertArgs, LsArgs, MetaCommand, ProjectCommand, PutArgs, TagCommand};

/// Finds and opens the store a command works on.
fn open(target: &StoreTarget, no_fsync: bool, log_only: bool) -> Result<Store> {
    let on_wait = trove::WaitNotice(std::sync::Arc::new(|message: &str| eprintln!("{message}")));
    let options =
        OpenOptions { durable: no_fsync.then_some(false), log_only, on_wait: Some(on_wait), ..Default::default() };
    let store = target.open(&options)?;
    if let Some(aside) = store.damaged_catalog() {
        eprintln!("warning: the catalog was damaged; it was moved to {} and rebuilt from the log", aside.display());
    }
    Ok(store)
}

/// The password of a catalog URL given on the command line: the URL's own (used for this command, never
/// recorded), else none here (the library then reads PGPASSWORD).
fn password_of(url: &str) -> Option<String> {
    let authority = url.split_once("://")?.1.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p.to_string())
}

fn parse_ref(s: &str) -> Result<Ref> {
    Ok(Ref::parse(s)?)
}

pub(crate) fn dataset_ref(s: &str) -> Result<(Ref, DatasetPath)> {
    let r = parse_ref(s)?;
    match (&r.path, &r.object) {
        (Some(p), None) => {
            let p = p.clone();
            Ok((r, p))
        }
        (None, _) => bail!("{s} names a project: give PROJECT/PATH"),
        (Some(_), Some(_)) => bail!("{s} names an object: give PROJECT/PATH"),
    }
}

/// References given as arguments, where `-` stands for the lines of stdin (blank lines skipped).
pub(crate) fn references_of(args: &[String]) -> Result<Vec<Ref>> {
    let mut refs = Vec::new();
    for arg in args {
        if arg == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read references from stdin")?;
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                refs.push(parse_ref(line.trim()).map_err(|e| anyhow::anyhow!("stdin line {}: {e}", i + 1))?);
            }
        } else {
            refs.push(parse_ref(arg)?);
        }
    }
    Ok(refs)
}

fn assignments(items: &[String]) -> Result<Vec<(String, Value)>> {
    items.iter().map(|a| Ok(parse_assignment(a)?)).collect()
}

pub fn run(cli: Cli) -> Result<()> {
    let out = &mut Out::stdout();
    match cli.command {
        Command::Init { root, scratch, catalog } => {
            let location = match root {
                Some(r) => trove::Location::parse(&r),
                None => trove::Location::Folder(std::env::current_dir()?),
            };
            let url = catalog.unwrap_or_default();
            let password = password_of(&url);
            let store = Store::init_at(&location, !scratch, &url, password.as_deref())?;
            out.line(format!("created trove store at {}", store.location()))?;
            if store.catalog_is_shared() {
                out.line(format!("catalog: {}", store.catalog_location()))?;
            }
        }
        Command::Connections(command) => crate::connections::run(command, &cli.store, out)?,
        Command::Catalog(CatalogCommand::Use { target, remove_sqlite }) => {
            let store = StoreTarget::of(&cli.store, &cli.connection)?;
            let password = match password_of(&target) {
                Some(p) => Some(p),
                None => store.secret()?,
            };
            let switch = trove::use_catalog(&store.location(), &target, password.as_deref(), remove_sqlite)?;
            out.line(format!(
                "catalog is now {} (rebuilt from the log: {} segments, {} datasets)",
                switch.catalog, switch.segments_applied, switch.datasets
            ))?;
            if let Some(removed) = switch.removed {
                out.line(format!("removed {}", removed.display()))?;
            }
        }
        Command::Demo { dir } => crate::demo::run(&dir.unwrap_or_else(|| PathBuf::from("trove-demo")), out)?,
        command => {
            let store = open(&StoreTarget::of(&cli.store, &cli.connection)?, cli.no_fsync, cli.log_only)?;
            let writes = matches!(
                command,
                Command::Put(_)
                    | Command::Ingest { .. }
                    | Command::Meta(_)
                    | Command::Tag(_)
                    | Command::Rm { .. }
                    | Command::Mv { .. }
                    | Command::Cp { .. }
                    | Command::Project(ProjectCommand::Create { .. })
                    | Command::Compute(_)
            );
            let ran = run_on(&store, command, out);
            // Said after the command, which may have met the damage only on its way (a `sync --full`).
            for (_, damage) in store.damaged_segments() {
                eprintln!(
                    "warning: {damage}; it was skipped (every other commit is in use): `trove repair` moves it aside"
                );
            }
            ran?;
            // A write that went to the log alone though `--log-only` was not given: say why, and when it
            // shows.
            if let Some(reason) = store.log_only()
                && writes
                && !cli.log_only
            {
                eprintln!(
                    "note: written to the log only ({reason}); it shows in listings after a `trove sync` where the catalog can be written"
                );
            }
            // A log-only reader answers from the catalog as last synced: say so when it lags.
            if let Some(reason) = store.log_only()
                && !writes
            {
                let lag = store.catalog_lag()?;
                if lag > 0 {
                    eprintln!(
                        "note: log-only ({reason}): the catalog lacks the last {lag} log segment{}; `trove sync` where the catalog can be written merges them",
                        if lag == 1 { "" } else { "s" }
                    );
                }
            }
        }
    }
    out.flush()
}

pub fn run_on(store: &Store, command: Command, out: &mut Out) -> Result<()> {
    match command {
        Command::Init { .. }
        | Command::Demo { .. }
        | Command::Connections(_)
        | Command::Catalog(CatalogCommand::Use { .. }) => {
            unreachable!("handled before a store is opened")
        }
        Command::Catalog(CatalogCommand::Info { json }) => {
            let datasets = store.read(|r| Ok(r.count(None)?))?;
            let lag = store.catalog_lag()?;
            let location = store.catalog_location();
            if json {
                out.json(&serde_json::json!({
                    "catalog": location,
                    "shared": store.catalog_is_shared(),
                    "datasets": datasets,
                    "segments_behind": lag,
                }))?;
            } else {
                out.line(format!("catalog: {location}"))?;
                out.line(format!("datasets: {datasets}"))?;
                out.line(format!("segments not yet merged: {lag}"))?;
            }
        }
        Command::Project(ProjectCommand::Create { name, meta }) => {
            store.create_project(&name, &assignments(&meta)?)?;
            out.line(format!("project {name} ready"))?;
        }
        Command::Project(ProjectCommand::Ls { json }) => list_projects(store, json, out)?,
        Command::Put(args) => put(store, args, out)?,
        Command::Ingest { file, batch } => ingest(store, &file, batch, out)?,
        Command::Get { reference, output, convert, slice: Some(slice) } => {
            get_slice(store, &reference, &slice, output, &convert, out)?
        }
        Command::Get { reference, output, convert, slice: None } => get(store, &reference, output, &convert, out)?,
        Command::Cat { reference, head, columns, slice } => cat(store, &reference, head, columns, slice)?,
        Command::Ls(args) => ls(store, args, out)?,
        Command::Find(args) => crate::find::find(store, args, out)?,
        Command::Compute(args) => crate::compute::compute(store, args, out)?,
        Command::Transfer(args) => crate::transfer::run(store, args, &OpenOptions::default(), out)?,
        Command::Lineage { reference, json } => crate::compute::lineage(store, &reference, json, out)?,
        Command::Schema { project, json } => crate::find::schema(store, project, json, out)?,
        Command::Sql { query, json } => crate::find::sql(store, &query, json, out)?,
        Command::Locate { reference } => out.line(store.locate(&parse_ref(&reference)?)?)?,
        Command::Show { reference, inherited, json } => show(store, &reference, inherited, json, out)?,
        Command::Meta(MetaCommand::Set { items, bulk }) => {
            let (targets, items) = crate::bulk::targets(store, &items, &bulk, "KEY=VALUE")?;
            let edit = DatasetEdit { meta: assignments(items)?, ..Default::default() };
            crate::bulk::edit(store, targets, &edit, &bulk, out)?;
        }
        Command::Meta(MetaCommand::Unset { items, bulk }) => {
            let (targets, items) = crate::bulk::targets(store, &items, &bulk, "KEY")?;
            let unset = items.iter().map(|k| Ok(parse_key(k)?)).collect::<Result<Vec<_>>>()?;
            crate::bulk::edit(store, targets, &DatasetEdit { unset, ..Default::default() }, &bulk, out)?;
        }
        Command::Tag(TagCommand::Add { items, bulk }) => {
            let (targets, tags) = crate::bulk::targets(store, &items, &bulk, "TAG")?;
            let edit = DatasetEdit { tags_add: tags.to_vec(), ..Default::default() };
            crate::bulk::edit(store, crate::bulk::datasets_only(targets)?, &edit, &bulk, out)?;
        }
        Command::Tag(TagCommand::Rm { items, bulk }) => {
            let (targets, tags) = crate::bulk::targets(store, &items, &bulk, "TAG")?;
            let edit = DatasetEdit { tags_rm: tags.to_vec(), ..Default::default() };
            crate::bulk::edit(store, crate::bulk::datasets_only(targets)?, &edit, &bulk, out)?;
        }
        Command::Rm { references, recursive, bulk, yes } => {
            let mut refs = references_of(&references)?;
            if let Some(filter) = &bulk.where_ {
                let matched = crate::bulk::matching(store, filter)?;
                if bulk.dry_run {
                    return crate::bulk::dry_run(
                        &matched,
                        "remove",
                        if recursive { " (and everything below them)" } else { "" },
                        out,
                    );
                }
                if !yes
                    && !matched.is_empty()
                    && !crate::bulk::confirmed(&format!(
                        "remove {} dataset{} matching {filter:?}{}",
                        matched.len(),
                        if matched.len() == 1 { "" } else { "s" },
                        if recursive { " and everything below them" } else { "" }
                    ))?
                {
                    bail!("not confirmed: nothing was removed (--yes removes without asking)");
                }
                refs.extend(matched);
            }
            let n = store.remove_all(&refs, recursive)?;
            let what = if !refs.is_empty() && refs.iter().all(|r| r.object.is_some()) { "object" } else { "dataset" };
            out.line(format!("removed {n} {what}{}", if n == 1 { "" } else { "s" }))?;
        }
        Command::Mv { from, to } => {
            let n = store.rename(&parse_ref(&from)?, &parse_ref(&to)?)?;
            out.line(format!("moved {n} dataset{} to {to}", if n == 1 { "" } else { "s" }))?;
        }
        Command::Cp { from, to, recursive } => {
            let n = store.copy(&parse_ref(&from)?, &parse_ref(&to)?, recursive)?;
            out.line(format!("copied {n} dataset{} to {to}", if n == 1 { "" } else { "s" }))?;
        }
        Command::Sync { full, scan: true, json } => crate::scan::sync_scan(store, full, json, out)?,
        Command::Watch { json } => crate::scan::watch(store, json, out)?,
        Command::Sync { full, scan: false, .. } => {
            let report = if full { store.sync_full()? } else { store.sync()? };
            out.line(format!(
                "{}: applied {} log segment{}; {} datasets",
                if full { "rebuilt the catalog" } else { "catalog up to date" },
                report.segments_applied,
                if report.segments_applied == 1 { "" } else { "s" },
                report.datasets
            ))?;
        }
        Command::Check { json } => crate::upkeep::check(store, json, out)?,
        Command::Gc { grace, json } => crate::upkeep::gc(store, grace, json, out)?,
        Command::Repair { json } => crate::upkeep::repair(store, json, out)?,
        Command::Verify { reference, all: _, json } => {
            crate::integrity::verify(store, reference.as_deref(), json, out)?
        }
        Command::Log { reference, json } => crate::integrity::log(store, &reference, json, out)?,
        Command::Compact { full } => {
            let report = store.compact(full)?;
            match report.checkpoint {
                Some(name) => out.line(format!(
                    "merged {} segments into {name} ({} datasets)",
                    report.segments_merged, report.datasets
                ))?,
                None => out.line("nothing to compact")?,
            }
        }
    }
    Ok(())
}

fn list_projects(store: &Store, json: bool, out: &mut Out) -> Result<()> {
    for p in store.projects()? {
        let value = store.project_json(&p)?;
        if json {
            out.json(&value)?;
        } else {
            out.line(format!("{}/\t{} datasets", p.name, value["datasets"]))?;
        }
    }
    Ok(())
}

fn put(store: &Store, args: PutArgs, out: &mut Out) -> Result<()> {
    let (r, path) = dataset_ref(&args.reference)?;
    if args.name.is_some() && args.files.len() != 1 {
        bail!("--name names the object of a single file; {} files were given", args.files.len());
    }
    let options = write_options(&args.convert)?;
    let read = read_options(&args.csv)?;
    if read != trove::formats::ReadOptions::default() && args.convert.as_format.is_none() {
        bail!(
            "--na, --delimiter, --header, --no-header, --skip-rows, --comment and --dtype say how a CSV is read when it is converted: add --as parquet"
        );
    }
    let mut files = Vec::with_capacity(args.files.len());
    for f in &args.files {
        let mut import = FileImport::new(f)?;
        import.name = args.name.clone();
        import.as_format = args.convert.as_format.clone();
        import.options = options.clone();
        import.read = read.clone();
        import.reflink = args.reflink;
        files.push(import);
    }
    let meta_doc = match &args.meta_json {
        Some(file) => read_meta_json(file)?,
        None => Map::new(),
    };
    let edit = DatasetEdit {
        kind: args.kind,
        meta_doc,
        meta: assignments(&args.meta)?,
        tags_add: args.tags,
        ..Default::default()
    };
    let outcome = store.put(&r.project, &path, &edit, &files)?;
    if args.json && store.log_only().is_some() {
        // A log-only writer cannot read its write back from the catalog: report what it wrote.
        let objects: Vec<Value> = outcome
            .objects
            .iter()
            .map(|(name, m)| serde_json::json!({"name": name, "format": m.format, "size": m.size, "checksum": m.checksum}))
            .collect();
        return Ok(out.json(&serde_json::json!({
            "id": outcome.id.to_string(), "ref": r.to_string(), "created": outcome.created, "objects": objects, "log_only": true
        }))?);
    }
    if args.json {
        let state = store.dataset_for(&r)?;
        return Ok(out.json(&store.dataset_json(&state))?);
    }
    for guess in &outcome.guesses {
        let hint = if guess.guessed { " (--delimiter, --header or --no-header choose otherwise)" } else { "" };
        eprintln!("note: {}{hint}", guess.text);
    }
    out.line(format!("{} {r}", if outcome.created { "created" } else { "updated" }))?;
    for (name, m) in &outcome.objects {
        out.line(format!("  + {name}\t{}\t{}\t{}", m.format, output::size(m.size), m.checksum))?;
    }
    Ok(())
}

fn write_options(args: &ConvertArgs) -> Result<WriteOptions> {
    let compression = match &args.compression {
        Some(c) => c.parse()?,
        None => Compression::default(),
    };
    if (args.chunks.is_some() || args.compression.is_some()) && args.as_format.is_none() {
        bail!("--chunks and --compression choose how a Zarr array is written: add --as zarr");
    }
    Ok(WriteOptions { chunks: args.chunks.clone(), compression })
}

fn read_options(args: &crate::CsvArgs) -> Result<trove::formats::ReadOptions> {
    let one_byte = |flag: &str, value: &str| -> Result<u8> {
        match value {
            "tab" | "\\t" | "\t" => Ok(b'\t'),
            v if v.len() == 1 => Ok(v.as_bytes()[0]),
            v => bail!("{flag} {v:?}: give one ASCII character (or `tab`)"),
        }
    };
    let mut types = Vec::new();
    for item in &args.dtype {
        let Some((column, kind)) = item.rsplit_once('=') else {
            bail!("--dtype {item:?}: give COLUMN=TYPE, e.g. zip=string");
        };
        types.push((column.to_string(), kind.parse()?));
    }
    Ok(trove::formats::ReadOptions {
        csv: trove::formats::CsvOptions {
            delimiter: args.delimiter.as_deref().map(|d| one_byte("--delimiter", d)).transpose()?,
            header: if args.no_header {
                Some(false)
            } else if args.header {
                Some(true)
            } else {
                None
            },
            skip_rows: args.skip_rows,
            comment: args.comment.as_deref().map(|c| one_byte("--comment", c)).transpose()?,
            missing: args.na.clone(),
            types,
        },
    })
}

fn read_meta_json(file: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    trove::model::value::check_integers(&file.display().to_string(), &text)?;
    match serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{}: metadata JSON must be an object ({{...}})", file.display()),
    }
}

fn ingest(store: &Store, file: &Path, batch: usize, out: &mut Out) -> Result<()> {
    let (reader, name): (Box<dyn BufRead>, String) = if file == Path::new("-") {
        (Box::new(BufReader::new(std::io::stdin())), "<stdin>".into())
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        (Box::new(BufReader::with_capacity(1 << 20, f)), file.display().to_string())
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} ingest [{bar:30}] {pos}/{len} datasets ({per_sec}, {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let report = store.ingest(reader, &name, batch, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        true
    });
    bar.finish_and_clear();
    let report = report?;
    let secs = started.elapsed().as_secs_f64();
    let n = report.created + report.updated;
    Ok(out.line(format!(
        "ingested {n} datasets ({} created, {} updated) in {} commit{}, {:.2} s ({:.0} datasets/s)",
        report.created,
        report.updated,
        report.commits,
        if report.commits == 1 { "" } else { "s" },
        secs,
        n as f64 / secs.max(1e-9)
    ))?)
}

fn get(store: &Store, reference: &str, output: Option<PathBuf>, convert: &ConvertArgs, out: &mut Out) -> Result<()> {
    let r = parse_ref(reference)?;
    let options = write_options(convert)?;
    if let (Some(object), Some(to)) = (&r.object, &convert.as_format) {
        let info = store.object_info(&r)?;
        if info.manifest.format != *to {
            return get_converted(store, &r, object, to, output, &options, out);
        }
    }
    if convert.as_format.is_some() && r.object.is_none() {
        bail!("--as converts one object: give PROJECT/PATH:OBJECT");
    }
    if let Some(object) = &r.object {
        if output.as_deref() == Some(Path::new("-")) {
            let mut stdout = std::io::stdout().lock();
            store.read_object(&r, &mut stdout)?;
            stdout.flush()?;
            return Ok(());
        }
        let mut dest = output.unwrap_or_else(|| PathBuf::from(object));
        if dest.is_dir() {
            dest = dest.join(object);
        }
        let n = store.export_object(&r, &dest)?;
        return Ok(out.line(format!("wrote {} ({})", dest.display(), output::size(n)))?);
    }
    let (_, path) = dataset_ref(reference)?;
    let dir = output.unwrap_or_else(|| PathBuf::from(path.name()));
    let files = store.export_dataset(&r, &dir)?;
    Ok(out.line(format!(
        "wrote {} object{} to {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        dir.display()
    ))?)
}

/// `get --as`: converts on the way out, to a file or folder, or through a scratch file to stdout.
fn get_converted(
    store: &Store,
    r: &Ref,
    object: &str,
    to: &str,
    output: Option<PathBuf>,
    options: &WriteOptions,
    out: &mut Out,
) -> Result<()> {
    let target = trove::formats::target(to)?;
    if output.as_deref() == Some(Path::new("-")) {
        if target.layout() == trove::formats::Layout::Folder {
            bail!("a {to} object is a folder and cannot go to stdout: give -o DIR");
        }
        let scratch = tempfile::Builder::new().prefix(".trove-get-").tempdir_in(store.root().join(".trove"))?;
        let file = scratch.path().join(format!("out.{}", target.extension()));
        store.export_converted(r, &file, to, options)?;
        let mut stdout = std::io::stdout().lock();
        std::io::copy(&mut std::fs::File::open(&file)?, &mut stdout)?;
        stdout.flush()?;
        return Ok(());
    }
    let stem = Path::new(object).file_stem().and_then(|s| s.to_str()).unwrap_or(object);
    let default_name = format!("{stem}.{}", target.extension());
    let mut dest = output.unwrap_or_else(|| PathBuf::from(&default_name));
    if dest.is_dir() && target.layout() != trove::formats::Layout::Folder {
        dest = dest.join(&default_name);
    }
    store.export_converted(r, &dest, to, options)?;
    Ok(out.line(format!("wrote {} ({to})", dest.display()))?)
}

/// `get REF:OBJ --slice S`: part of an array, as an .npy file.
fn get_slice(
    store: &Store,
    reference: &str,
    slice: &str,
    output: Option<PathBuf>,
    convert: &ConvertArgs,
    out: &mut Out,
) -> Result<()> {
    let r = parse_ref(reference)?;
    let Some(object) = &r.object else { bail!("--slice takes part of one array object: give PROJECT/PATH:OBJECT") };
    if convert.as_format.as_deref().is_some_and(|f| f != "npy") || convert.chunks.is_some() {
        bail!("a slice is written as an .npy file: drop --as/--chunks, or use --as npy");
    }
    let slice = Slice::parse(slice)?;
    let stem = Path::new(object).file_stem().and_then(|s| s.to_str()).unwrap_or(object);
    let dest = output.unwrap_or_else(|| PathBuf::from(format!("{stem}.npy")));
    if dest == Path::new("-") {
        bail!("a slice is written to a file: give -o FILE.npy");
    }
    store.export_slice(&r, &slice, &dest)?;
    Ok(out.line(format!("wrote {} (npy)", dest.display()))?)
}

fn cat(
    store: &Store,
    reference: &str,
    head: Option<usize>,
    columns: Option<Vec<String>>,
    slice: Option<String>,
) -> Result<()> {
    let r = parse_ref(reference)?;
    if r.object.is_none() {
        bail!("{r} names a dataset: cat shows one object, PROJECT/PATH:OBJECT (see `trove ls {r}`)");
    }
    let slice = slice.map(|s| Slice::parse(&s)).transpose()?;
    let options = PreviewOptions { head, columns, slice };
    let mut stdout = std::io::stdout().lock();
    store.preview(&r, &options, &mut stdout)?;
    stdout.flush()?;
    Ok(())
}

fn ls(store: &Store, args: LsArgs, out: &mut Out) -> Result<()> {
    let Some(reference) = args.reference.clone() else {
        if args.tree || args.recursive {
            for p in store.projects()? {
                ls_ref(store, &Ref { project: p.name, path: None, object: None }, &args, out)?;
            }
            return Ok(());
        }
        return list_projects(store, args.json, out);
    };
    ls_ref(store, &parse_ref(&reference)?, &args, out)
}

fn ls_ref(store: &Store, r: &Ref, args: &LsArgs, out: &mut Out) -> Result<()> {
    if r.object.is_some() {
        bail!("{r} names an object: use `trove show {r}`");
    }
    let target = store.resolve(r)?;
    let base_depth = r.path.as_ref().map_or(0, |p| p.segments().count());
    let within_depth = |state: &trove::model::DatasetState| {
        let depth = state.at.as_ref().map_or(0, |at| at.path().segments().count()) - base_depth;
        args.depth.is_none_or(|d| depth <= d)
    };
    if args.tree {
        let mut paths = Vec::new();
        store.descendants(&r.project, r.path.as_ref(), |s| {
            if within_depth(&s) {
                paths.push(s);
            }
            Ok(())
        })?;
        return output::tree(out, &r.to_string(), base_depth, &paths, args.depth);
    }
    if args.recursive {
        return store
            .descendants(&r.project, r.path.as_ref(), |s| {
                if !within_depth(&s) {
                    return Ok(());
                }
                let written = if args.json {
                    out.json(&store.dataset_json(&s))
                } else {
                    out.line(s.at.as_ref().map(|a| format!("{}/{}", a.project(), a.path())).unwrap_or_default())
                };
                written.map_err(output::stdout_error)
            })
            .map_err(Into::into);
    }
    let children = store.children(&r.project, r.path.as_ref())?;
    for child in &children {
        match (&child.dataset, args.json) {
            (Some(row), true) => out.json(&store.dataset_json(&row.state))?,
            (None, true) => {}
            (Some(row), false) => out.line(output::dataset_line(&child.name, &row.state, child.has_children))?,
            (None, false) => out.line(format!("{}/", child.name))?,
        }
    }
    if let (Target::Dataset(state), false) = (&target, args.json) {
        for (name, m) in &state.objects {
            out.line(format!(":{name}\t{}\t{}", m.format, output::size(m.size)))?;
        }
    }
    Ok(())
}

fn show(store: &Store, reference: &str, inherited: bool, json: bool, out: &mut Out) -> Result<()> {
    let r = parse_ref(reference)?;
    match store.resolve(&r)? {
        Target::Project(p) => {
            let value = store.project_json(&p)?;
            if json { Ok(out.json(&value)?) } else { output::show_value(out, &value) }
        }
        Target::Folder { project, path } => {
            bail!("{project}/{path} is a folder of datasets, not a dataset: try `trove ls {project}/{path}`")
        }
        Target::Dataset(state) => {
            let mut value = store.dataset_json(&state);
            if let Some(object) = &r.object {
                let found = value["objects"]
                    .as_array()
                    .and_then(|objs| objs.iter().find(|o| o["name"] == object.as_str()).cloned())
                    .ok_or_else(|| trove::Error::NotFound { what: format!("object {r}") })?;
                return if json { Ok(out.json(&found)?) } else { output::show_value(out, &found) };
            }
            if inherited {
                value["inherited"] = Value::Object(store.inherited_metadata(&state)?);
            }
            if json { Ok(out.json(&value)?) } else { output::show_value(out, &value) }
        }
    }
}
