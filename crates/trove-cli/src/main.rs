//! `trove`: the command line.

mod bulk;
mod commands;
mod compute;
mod connections;
mod demo;
mod find;
mod integrity;
mod output;
mod scan;
mod transfer;
mod upkeep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// trove: a catalog and store for scientific data.
#[derive(Debug, Parser)]
#[command(name = "trove", version, about, long_about = None, disable_help_subcommand = true)]
pub struct Cli {
    /// The store: a folder, or an object-store URL such as s3://BUCKET/PREFIX (default: $TROVE_STORE, else the
    /// nearest folder above holding trove.toml).
    #[arg(long, global = true, env = "TROVE_STORE", value_name = "ROOT|URL")]
    pub store: Option<String>,
    /// Work on the store of this named connection (`trove connections list`; default: $TROVE_CONNECTION, or
    /// the connection named like the login user when the current folder is in no store).
    #[arg(short = 'c', long, global = true, env = "TROVE_CONNECTION", value_name = "NAME", conflicts_with = "store")]
    pub connection: Option<String>,
    /// Do not fsync commits and data (faster; a machine crash may lose the last writes). For scratch work.
    #[arg(long, global = true)]
    pub no_fsync: bool,
    /// Append writes to the log alone, leaving the catalog to catch up at the next `trove sync` (for batch
    /// jobs on a shared filesystem; automatic where SQLite is unsafe, such as NFS or Lustre).
    #[arg(long, global = true, env = "TROVE_LOG_ONLY", value_parser = clap::builder::BoolishValueParser::new())]
    pub log_only: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store.
    Init {
        /// Where: a folder (default: the current one), or an object-store URL (s3://BUCKET/PREFIX, gs://…,
        /// az://…; credentials and endpoint from the usual AWS_* / GOOGLE_* / AZURE_* variables).
        root: Option<String>,
        /// Make writes non-durable by default (no fsync): for scratch stores.
        #[arg(long)]
        scratch: bool,
        /// Keep the catalog in this PostgreSQL database (postgres://USER@HOST[:PORT]/DATABASE) instead of the
        /// embedded SQLite file, so that many machines share it. The password, if any, comes from PGPASSWORD
        /// and is never recorded.
        #[arg(long, value_name = "URL")]
        catalog: Option<String>,
    },
    /// Named connections: stores and catalogs by name, with secrets by reference (never printed).
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Where the catalog lives, and moving it (rebuilt from the log: no migration).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Projects and their (run-level) metadata.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Build a small example store and tour it.
    Demo {
        /// Where to build it (default: ./trove-demo).
        dir: Option<PathBuf>,
    },
    /// Create or update a dataset, importing files as objects.
    Put(PutArgs),
    /// Create or update many datasets from JSON Lines (one dataset a line; `-` reads stdin).
    Ingest {
        file: PathBuf,
        /// Datasets per commit.
        #[arg(long, default_value_t = trove::INGEST_BATCH)]
        batch: usize,
    },
    /// Export an object (REF:OBJ) to a file, or every object of a dataset (REF) into a folder.
    Get {
        reference: String,
        /// Output file or folder (default: the object's name, or the dataset's name, here). `-` is stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        convert: ConvertArgs,
        /// Only this part of an array object, numpy style ("0:1000, :, 3", "-1", "::-2"), written as an .npy file.
        #[arg(long, value_name = "SLICE", allow_hyphen_values = true)]
        slice: Option<String>,
    },
    /// Print a table, array or file preview (REF:OBJ).
    Cat {
        reference: String,
        /// Rows of a table, or entries along an array's first axis (lines of a text file).
        #[arg(long, value_name = "N")]
        head: Option<usize>,
        /// Only these columns of a table.
        #[arg(long, value_name = "A,B,..", value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Only this part of an array, numpy style: "0:5, :, 3", "-1", "::-2".
        #[arg(long, value_name = "SLICE", allow_hyphen_values = true)]
        slice: Option<String>,
    },
    /// List projects, what is below a dataset or folder, and a dataset's objects.
    Ls(LsArgs),
    /// Print the absolute path of a dataset folder or object file.
    Locate { reference: String },
    /// Everything about one dataset (or object, or project).
    Show {
        reference: String,
        /// Also show the metadata inherited from the project and ancestor datasets.
        #[arg(long)]
        inherited: bool,
        #[arg(long)]
        json: bool,
    },
    /// Edit metadata.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// Edit tags.
    #[command(subcommand)]
    Tag(TagCommand),
    /// Delete datasets (-r: with everything below them) or objects (REF:OBJ), all in one commit; `-` reads
    /// references from stdin, one per line; --where FILTER adds every dataset the filter matches (asking first
    /// on a terminal, unless --yes).
    Rm {
        #[arg(required_unless_present = "where_", value_name = "REFERENCE")]
        references: Vec<String>,
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        bulk: Bulk,
        /// Remove what --where matched without asking.
        #[arg(short, long)]
        yes: bool,
    },
    /// Rename a dataset or folder, with everything below it (ids are kept, files move along).
    Mv { from: String, to: String },
    /// Copy a dataset (-r: with everything below it) to a new path; copies get new ids and record their origin.
    Cp {
        from: String,
        to: String,
        #[arg(short, long)]
        recursive: bool,
    },
    /// Bring the catalog up to date with the log (--full: rebuild it from the log; --scan: also record what
    /// was done to the data folders outside trove: folders moved, copied or removed, files added or changed).
    Sync {
        #[arg(long)]
        full: bool,
        /// Walk the data folders and record hand edits in the log (one commit, none when nothing changed).
        #[arg(long)]
        scan: bool,
        /// With --scan: print the scan's report as one JSON object.
        #[arg(long, requires = "scan")]
        json: bool,
    },
    /// Record hand edits of the data folders as they happen (a `sync --scan` each time they change), until
    /// stopped (Ctrl-C). Local stores only.
    Watch {
        /// One JSON report per scan that found something, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Search: datasets matching a filter (`temperature >= 300 and @tag == "calibrated"`), from the indexes.
    Find(FindArgs),
    /// Metadata keys in use, with their types, counts and ranges.
    Schema {
        /// Only this project's datasets.
        project: Option<String>,
        /// One JSON object per key, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Read-only SQL over the catalog's views: datasets, tags, objects, metadata, projects.
    Sql {
        /// One SELECT statement.
        query: String,
        /// One JSON object per row, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Every disagreement between log, catalog and files (orphans, missing or unknown files, size
    /// mismatches, catalog rows not in the log); exit code 1 when there is any.
    Check {
        /// One JSON object per finding, then a summary object.
        #[arg(long)]
        json: bool,
    },
    /// Remove what crashes leave behind: orphaned files untouched for the grace period (never a live writer's
    /// staged data), segments a checkpoint already holds, empty folders.
    Gc {
        /// Only files older than this: 90s, 30m, 1h, 2d.
        #[arg(long, default_value = "1h", value_parser = upkeep::parse_duration)]
        grace: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
    /// Move damaged log segments aside (into .trove/quarantine/), say what each held, and rebuild the catalog
    /// from the rest of the log.
    Repair {
        #[arg(long)]
        json: bool,
    },
    /// Hash objects again, in parallel, and report damage (missing files, size or checksum mismatches, files
    /// missing from or added to a folder object); exit code 1 when anything is damaged.
    Verify {
        /// A project, a dataset with everything below it, or one object PROJECT/PATH:OBJECT (default: every
        /// object in the store, as with --all).
        reference: Option<String>,
        /// Every object in the store.
        #[arg(long, conflicts_with = "reference")]
        all: bool,
        /// One JSON object per damaged object, then a summary object.
        #[arg(long)]
        json: bool,
    },
    /// The history of a dataset (REF:OBJ: of one object): what changed, when, by which writer and host, and
    /// which concurrent changes lost by last-writer-wins.
    Log {
        reference: String,
        /// One JSON object per entry.
        #[arg(long)]
        json: bool,
    },
    /// Get or compute derived data: if data with this lineage (name, version, config, inputs, code) is stored,
    /// print its reference; otherwise run COMMAND once, store the files it writes into $TROVE_OUTPUT as a
    /// dataset carrying the lineage, and print its reference. The reference is the last line of output.
    Compute(compute::ComputeArgs),
    /// The lineage tree of derived data: what it was computed from, and where each input is now.
    Lineage {
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// Merge log segments into a checkpoint.
    Compact {
        /// Merge earlier checkpoints too, leaving one segment.
        #[arg(long)]
        full: bool,
    },
    /// Copy datasets to another store (folder or bucket) with their ids, metadata, tags, lineage and objects,
    /// files sent in parallel with a progress bar. Run it again after an interruption: it sends only what
    /// never arrived and commits only what is missing.
    Transfer(transfer::TransferArgs),
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project (or add metadata to an existing one).
    Create {
        name: String,
        /// Metadata, as key=value (typed), key:=JSON or key==text.
        #[arg(short = 'm', long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
    },
    /// List projects.
    Ls {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Add (or replace) a connection in $XDG_CONFIG_HOME/trove/config.toml (or $TROVE_CONFIG): the store is
    /// the one --store names (or $TROVE_STORE, or the store the current folder is in).
    Add {
        name: String,
        /// The catalog URL to use from this machine instead of the one the store records (no password).
        #[arg(long, value_name = "URL")]
        catalog: Option<String>,
        /// Read the catalog password from this environment variable when the connection is used.
        #[arg(long, value_name = "VAR", conflicts_with = "secret_file")]
        secret_env: Option<String>,
        /// Read the catalog password from this file (mode 0600, or it is refused) when the connection is used.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// A setting of a store in a bucket, by object_store's name (aws_endpoint=URL, aws_region=…,
        /// aws_access_key_id=…, aws_allow_http=true, …); repeat for more. Never a secret.
        #[arg(long = "store-setting", value_name = "KEY=VALUE")]
        store_settings: Vec<String>,
        /// Read the object store's secret (S3's secret access key) from this environment variable.
        #[arg(long, value_name = "VAR", conflicts_with = "store_secret_file")]
        store_secret_env: Option<String>,
        /// Read the object store's secret from this file (mode 0600, or it is refused).
        #[arg(long, value_name = "FILE")]
        store_secret_file: Option<PathBuf>,
    },
    /// List the connections (secrets by reference only).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection.
    Rm { name: String },
    /// Reach a connection's store and catalog, and say which failed and why.
    Test { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Use another catalog: a PostgreSQL URL, or `sqlite` for the embedded file. The new catalog is rebuilt
    /// from the log, then trove.toml records it; the old one is not read.
    Use {
        /// postgres://USER@HOST[:PORT]/DATABASE, or sqlite.
        target: String,
        /// When moving to PostgreSQL, delete the SQLite file instead of keeping it as a cache.
        #[arg(long)]
        remove_sqlite: bool,
    },
    /// Where the catalog is, how many datasets it holds and how far behind the log it is.
    Info {
        #[arg(long)]
        json: bool,
    },
}

/// Conversion on the way in (`put`) or out (`get`).
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Convert to this format: parquet, csv or arrow for tables; npy or zarr for arrays.
    #[arg(long = "as", value_name = "FORMAT")]
    pub as_format: Option<String>,
    /// Chunk shape of a Zarr array, one length per axis (e.g. 1000,1000). Default: chunks of a few MB.
    #[arg(long, value_name = "N,N,..", value_delimiter = ',')]
    pub chunks: Option<Vec<u64>>,
    /// Compression of a Zarr array's chunks: zstd (default) or none.
    #[arg(long, value_name = "zstd|none")]
    pub compression: Option<String>,
}

/// How a CSV is read when it is converted (`put --as parquet`); what is not given is detected.
#[derive(Debug, Args, Default)]
pub struct CsvArgs {
    /// The cells that mean "missing", replacing the default set (NA, N/A, NULL, null, #N/A, NaN, None, ...);
    /// the empty cell is always missing (`--na ''` keeps only it).
    #[arg(long, value_name = "TOKEN,..", value_delimiter = ',', help_heading = "Reading CSV")]
    pub na: Option<Vec<String>>,
    /// The field separator: one character, or `tab` (default: sniffed from the first line).
    #[arg(long, value_name = "CHAR", help_heading = "Reading CSV")]
    pub delimiter: Option<String>,
    /// The file has no header line: columns are named column_0, column_1, ... (default: sniffed)
    #[arg(long, help_heading = "Reading CSV", conflicts_with = "header")]
    pub no_header: bool,
    /// The first line names the columns, whatever it looks like (default: sniffed).
    #[arg(long, help_heading = "Reading CSV")]
    pub header: bool,
    /// Lines to skip before the header.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Reading CSV")]
    pub skip_rows: u64,
    /// Lines starting with this character are comments.
    #[arg(long, value_name = "CHAR", help_heading = "Reading CSV")]
    pub comment: Option<String>,
    /// A column's type instead of the inferred one: int64, float64, string, date, timestamp or bool
    /// (e.g. `--dtype zip=string` keeps zip codes as text). Repeatable.
    #[arg(long, value_name = "COLUMN=TYPE", help_heading = "Reading CSV")]
    pub dtype: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// PROJECT/PATH of the dataset.
    pub reference: String,
    /// Files to import as objects (named by their file name).
    pub files: Vec<PathBuf>,
    /// Metadata, as key=value (typed), key:=JSON or key==text; dotted keys nest.
    #[arg(short = 'm', long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// A JSON file whose object's keys become metadata.
    #[arg(long, value_name = "FILE")]
    pub meta_json: Option<PathBuf>,
    /// Tags to add.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// The dataset's kind (measurement, simulation, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Object name for the single file given (default: its file name; a converted file keeps its stem and
    /// takes the new format's extension).
    #[arg(long, value_name = "OBJ")]
    pub name: Option<String>,
    #[command(flatten)]
    pub convert: ConvertArgs,
    #[command(flatten)]
    pub csv: CsvArgs,
    /// Share the files' blocks copy-on-write instead of copying them, where the filesystem supports it
    /// (same filesystem as the store; otherwise the files are copied).
    #[arg(long)]
    pub reflink: bool,
    /// Print the dataset as JSON afterwards.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").args(["count", "ids", "json"]))]
pub struct FindArgs {
    /// The filter, e.g. `material == "steel" and temperature >= 300 and @path ~ "runs/2024/*"` (default: all).
    pub filter: Option<String>,
    /// A MongoDB-style JSON filter (`{"temperature": {"$gte": 300}}`), or `-` to read it from stdin. With a
    /// FILTER too, both must hold.
    #[arg(long, value_name = "JSON")]
    pub filter_json: Option<String>,
    /// Read the text filter from a file, or `-` for stdin (a command-line argument holds at most 128 KB).
    #[arg(long, value_name = "FILE", conflicts_with = "filter")]
    pub filter_file: Option<std::path::PathBuf>,
    /// Only datasets of this project.
    #[arg(short, long)]
    pub project: Option<String>,
    /// Only derived data whose lineage has this name (what was computed, as given to `trove compute NAME`).
    #[arg(long, value_name = "NAME")]
    pub lineage_name: Option<String>,
    /// Match against metadata inherited from the project and ancestor datasets, merged under each dataset's own.
    #[arg(long)]
    pub inherited: bool,
    /// Order by a metadata key or @field; `-KEY` for descending (default: by project and path).
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// At most N results.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Skip the first N results.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    /// Print only how many datasets match.
    #[arg(long)]
    pub count: bool,
    /// Print one PROJECT/PATH per line.
    #[arg(long)]
    pub ids: bool,
    /// Print one `show --json` object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// PROJECT or PROJECT/PATH (default: list projects).
    pub reference: Option<String>,
    /// Every dataset below, not just the next level.
    #[arg(short, long)]
    pub recursive: bool,
    /// Draw the tree.
    #[arg(long)]
    pub tree: bool,
    /// How many levels the tree or recursive listing goes down.
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// One `show --json` object per dataset, one per line.
    #[arg(long)]
    pub json: bool,
}

/// What a command that can change many datasets at once works on, besides the references it is given.
#[derive(Debug, clap::Args)]
pub struct Bulk {
    /// Every dataset this filter matches (the text form of `find`); then no REF is given.
    #[arg(long = "where", value_name = "FILTER")]
    pub where_: Option<String>,
    /// With --where: list the datasets that would change and how many, and change nothing.
    #[arg(long, requires = "where_")]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum MetaCommand {
    /// Set metadata keys (key=value, key:=JSON, key==text; dotted keys nest): `meta set REF KEY=VALUE...`, with
    /// REF `-` for references on stdin, or `meta set --where FILTER KEY=VALUE...`. A project REF sets project
    /// metadata. Many datasets change in one commit.
    Set {
        #[arg(required = true, value_name = "REF KEY=VALUE")]
        items: Vec<String>,
        #[command(flatten)]
        bulk: Bulk,
    },
    /// Remove metadata keys: `meta unset REF KEY...`, or with - or --where as for `meta set`.
    Unset {
        #[arg(required = true, value_name = "REF KEY")]
        items: Vec<String>,
        #[command(flatten)]
        bulk: Bulk,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Add tags: `tag add REF TAG...`, with REF `-` for references on stdin, or `tag add --where FILTER TAG...`.
    Add {
        #[arg(required = true, value_name = "REF TAG")]
        items: Vec<String>,
        #[command(flatten)]
        bulk: Bulk,
    },
    /// Remove tags: `tag rm REF TAG...`, or with - or --where as for `tag add`.
    Rm {
        #[arg(required = true, value_name = "REF TAG")]
        items: Vec<String>,
        #[command(flatten)]
        bulk: Bulk,
    },
}

/// What the command line adds to a library error: the command or flag that gets past it.
fn hint(e: &trove::Error) -> Option<&'static str> {
    match e {
        trove::Error::NoStore { .. } => Some("run `trove init`, or pass --store / set TROVE_STORE"),
        trove::Error::NeedsRecursive(_) => Some("use `rm -r` or `cp -r` to include every dataset in it"),
        trove::Error::ObjectName { .. } => Some("choose an object name with --name"),
        trove::Error::LogOnly { .. } => Some("run it without --log-only, where the catalog can be written"),
        trove::Error::Catalog(c) if c.failure() == Some(trove::CatalogFailure::Unreachable) => Some(
            "the catalog server could not be reached or dropped the connection; the log keeps every commit \
             published, and the next command catches the catalog up",
        ),
        _ => None,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`trove ls | head`) is not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            // A cause whose message is already part of what was printed is not repeated.
            let mut said = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                    said.push_str(&text);
                }
            }
            if let Some(hint) = e.chain().find_map(|c| c.downcast_ref::<trove::Error>()).and_then(hint) {
                eprintln!("  hint: {hint}");
            }
            // A failed `compute` passes its command's exit code on.
            let command_code =
                e.chain().find_map(|c| c.downcast_ref::<compute::CommandFailed>()).map(|f| f.exit_code());
            command_code.map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}
