//! `compute` (get-or-compute from the shell) and `lineage` (the lineage tree of derived data).

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, Value};
use trove::model::lineage::{Input, Lineage};
use trove::model::value::{parse_assignment, set_dotted};
use trove::model::{DatasetPath, Ref};
use trove::{ComputeOptions, ComputeOutput, DEFAULT_PROJECT, LineageTree, Loose, Outcome, Store};

use crate::output::Out;

#[derive(Debug, Args)]
pub struct ComputeArgs {
    /// What is computed (a step or plugin name); a new result is stored as PROJECT/NAME/<lineage key>.
    pub name: String,
    /// The version of what is computed: change it when the code changes in a way --code does not see.
    #[arg(long)]
    pub version: String,
    /// A configuration value, part of the lineage: key=value (typed), key:=JSON or key==text. The command
    /// gets them all as JSON in $TROVE_CONFIG.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Take configuration defaults from the project's metadata object `config` (set with `trove project
    /// create P -m config.KEY=VALUE`): all its keys, or only =K1,K2. Values given with --config win.
    #[arg(long, value_name = "K1,K2", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub config_from_project: Option<String>,
    /// Data the command reads (PROJECT/PATH or PROJECT/PATH:OBJECT), part of the lineage by content. The
    /// command finds the n-th one (from 0) at $TROVE_INPUT_<n>.
    #[arg(long = "input", value_name = "REF")]
    pub inputs: Vec<String>,
    /// A code file or folder the command runs, part of the lineage by content: editing it makes a new key.
    #[arg(long = "code", value_name = "FILE")]
    pub code: Vec<PathBuf>,
    /// The project a new result goes to (default: the first input's project, else `derived`).
    #[arg(long)]
    pub project: Option<String>,
    /// The dataset path of a new result (default: NAME/<first 16 hex digits of the lineage key>).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Accept existing data whose lineage differs only in these configuration keys (reported).
    #[arg(long, value_name = "K1,K2", value_delimiter = ',')]
    pub loose_config: Vec<String>,
    /// Accept existing data whose lineage differs only in its version (reported).
    #[arg(long)]
    pub loose_version: bool,
    /// The command that computes the result, writing its files into $TROVE_OUTPUT. Its standard output is
    /// passed to standard error, so that trove's own standard output is the result's reference alone.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The command failed: its exit code becomes trove's.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailed {
    #[error("the command `{command}` exited with code {code}")]
    Exit { command: String, code: i32 },
    #[error("the command `{command}` was killed by signal {signal}")]
    Signal { command: String, signal: i32 },
    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
}

impl CommandFailed {
    /// The exit code a shell would give: the command's own, 128 + a signal, 127 when it was not found, 126
    /// when it could not be run.
    pub fn exit_code(&self) -> u8 {
        let code = match self {
            CommandFailed::Exit { code, .. } => *code,
            CommandFailed::Signal { signal, .. } => 128 + signal,
            CommandFailed::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            CommandFailed::Spawn { .. } => 126,
        };
        u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1)
    }
}

pub fn compute(store: &Store, args: ComputeArgs, out: &mut Out) -> Result<()> {
    let mut config = Map::new();
    for item in &args.config {
        let (key, value) = parse_assignment(item)?;
        set_dotted(&mut config, &key, value);
    }
    let mut inputs = Vec::with_capacity(args.inputs.len());
    let mut input_paths = Vec::with_capacity(args.inputs.len());
    for text in &args.inputs {
        let r = Ref::parse(text)?;
        if r.path.is_none() {
            bail!("--input {text} names a project: give PROJECT/PATH or PROJECT/PATH:OBJECT");
        }
        inputs.push(store.lineage_input(&r).with_context(|| format!("--input {text}"))?);
        input_paths.push(store.locate(&r)?);
    }
    let project = match (&args.project, args.inputs.first()) {
        (Some(p), _) => p.clone(),
        (None, Some(first)) => Ref::parse(first)?.project,
        (None, None) => DEFAULT_PROJECT.to_string(),
    };
    trove::model::name::validate_project(&project)?;
    if let Some(keys) = &args.config_from_project {
        for (key, value) in project_defaults(store, &project, keys)? {
            config.entry(key).or_insert(value);
        }
    }
    let mut lineage = Lineage::new(&args.name, &args.version);
    lineage.config = config.into_iter().collect();
    lineage.inputs = inputs;
    for file in &args.code {
        let checksum = trove::code_checksum(file).with_context(|| format!("--code {}", file.display()))?;
        let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        lineage = lineage.with_code(name, checksum);
    }
    lineage.validate()?;
    let key = lineage.key();
    let options = ComputeOptions {
        project: project.clone(),
        path: args.path.as_deref().map(DatasetPath::parse).transpose()?,
        loose: Loose { config: args.loose_config.clone(), version: args.loose_version },
        ..Default::default()
    };
    let command_line = args.command.join(" ");
    let config_json = Value::Object(lineage.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let short = &key[..16];
    let run = |output: &mut ComputeOutput| -> Result<(), CommandFailed> {
        if let Ok(Some(failure)) = store.compute_failure(&key) {
            let at = failure["at"].as_str().unwrap_or("an earlier time");
            let host = failure["host"].as_str().unwrap_or("an unknown host");
            eprintln!("note: the last attempt failed at {at} on {host}; running again");
        }
        eprintln!("computing {} {} (lineage {short}): {command_line}", lineage.name, lineage.version);
        let mut command = std::process::Command::new(&args.command[0]);
        command
            .args(&args.command[1..])
            .env("TROVE_OUTPUT", output.dir())
            .env("TROVE_LINEAGE_KEY", &key)
            .env("TROVE_CONFIG", config_json.to_string())
            .env("TROVE_STORE", store.location().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()));
        for (n, path) in input_paths.iter().enumerate() {
            command.env(format!("TROVE_INPUT_{n}"), path);
        }
        let status =
            command.status().map_err(|source| CommandFailed::Spawn { command: command_line.clone(), source })?;
        match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(CommandFailed::Exit { command: command_line.clone(), code }),
            (None, Some(signal)) => Err(CommandFailed::Signal { command: command_line.clone(), signal }),
            (None, None) => Err(CommandFailed::Exit { command: command_line.clone(), code: 1 }),
        }
    };
    let result = store.get_or_compute_with(&lineage, &options, run)?;
    match &result.outcome {
        Outcome::Found => eprintln!("found {} {} (lineage {short}): nothing to run", lineage.name, lineage.version),
        Outcome::Computed => {
            let n = result.objects.len();
            eprintln!("stored {n} object{} with lineage {short}", if n == 1 { "" } else { "s" });
        }
        Outcome::Loose(differences) => {
            let list: Vec<String> = differences.iter().map(ToString::to_string).collect();
            eprintln!(
                "loose match (lineage {} instead of {short}), nothing run; it differs in: {}",
                &result.key[..result.key.len().min(16)],
                list.join("; ")
            );
        }
    }
    out.line(result.reference.to_string())?;
    Ok(())
}

/// The configuration defaults the project's metadata object `config` gives: all of it (`keys` empty) or the
/// keys listed (each must be there).
fn project_defaults(store: &Store, project: &str, keys: &str) -> Result<Vec<(String, Value)>> {
    let state = store.projects()?.into_iter().find(|p| p.name == project).with_context(|| {
        format!("--config-from-project: project {project} does not exist (create it with `trove project create {project} -m config.KEY=VALUE`)")
    })?;
    let defaults = match state.meta.get("config") {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => bail!("--config-from-project: the metadata key `config` of project {project} is not an object"),
        None => Map::new(),
    };
    if keys.is_empty() {
        return Ok(defaults.into_iter().collect());
    }
    keys.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| match defaults.get(k) {
            Some(v) => Ok((k.to_string(), v.clone())),
            None => bail!("--config-from-project: project {project} has no metadata config.{k}"),
        })
        .collect()
}

pub fn lineage(store: &Store, reference: &str, json: bool, out: &mut Out) -> Result<()> {
    let r = Ref::parse(reference)?;
    if r.path.is_none() {
        bail!("{reference} names a project: give PROJECT/PATH of derived data");
    }
    let tree = store.lineage_tree(&r)?;
    if json {
        out.json(&tree.to_json())?;
        return Ok(());
    }
    out.line(format!("{}  lineage {}", r.without_object(), tree.key))?;
    describe(&tree, "", out)?;
    Ok(())
}

/// The fields and inputs of a lineage, each line starting with `indent`.
fn describe(tree: &LineageTree, indent: &str, out: &mut Out) -> Result<()> {
    let l = &tree.lineage;
    out.line(format!("{indent}{} version {}", l.name, l.version))?;
    if !l.config.is_empty() {
        let items: Vec<String> = l.config.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        out.line(format!("{indent}config  {}", items.join(", ")))?;
    }
    for code in &l.code {
        out.line(format!("{indent}code    {} {}", code.file, short_checksum(&code.checksum)))?;
    }
    for (n, node) in tree.inputs.iter().enumerate() {
        let from = node.input.at().map(|at| format!(" from {at}")).unwrap_or_default();
        let what = match (&node.input, &node.tree) {
            (_, Some(sub)) => format!("lineage {}", &sub.key[..16]),
            (Input::Object { checksum, .. }, None) => format!("object {}", short_checksum(checksum)),
            (Input::Dataset { objects, .. }, None) => {
                format!("dataset of {} object{}", objects.len(), if objects.len() == 1 { "" } else { "s" })
            }
            (Input::Derived { lineage, .. }, None) => format!("lineage {}", &lineage.key()[..16]),
        };
        out.line(format!("{indent}input {n}  {what}{from}: {}", node.presence))?;
        if let Some(sub) = &node.tree {
            describe(sub, &format!("{indent}    "), out)?;
        }
    }
    Ok(())
}

fn short_checksum(checksum: &str) -> &str {
    &checksum[..checksum.len().min("blake3:".len() + 12)]
}
