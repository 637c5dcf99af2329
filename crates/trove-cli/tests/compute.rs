//! `trove compute` and `trove lineage`: get-or-compute from the shell, with real processes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestStore, bin};
use serde_json::Value;

/// The last line of a command's standard output.
fn last_line(stdout: &str) -> String {
    stdout.lines().last().unwrap_or_default().to_string()
}

/// How many lines a file has (0 when it does not exist): the tests' commands append one per run.
fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter).map_or(0, |s| s.lines().count())
}

/// A store holding `run42/raw:raw.txt`.
fn with_raw() -> TestStore {
    let s = TestStore::new();
    let raw = s.file("raw.txt", b"1 2 3\n");
    s.ok(&["put", "run42/raw", raw.to_str().unwrap()]);
    s
}

#[test]
fn computes_once_then_finds_and_prints_the_ref_last() {
    let s = with_raw();
    let counter = s.inputs.path().join("runs");
    let script = format!(
        "echo run >> {c}; echo 'some output of the command'; tr ' ' '\\n' < \"$TROVE_INPUT_0\" > \"$TROVE_OUTPUT/peaks.txt\"; echo \"$TROVE_CONFIG\" > \"$TROVE_OUTPUT/config.json\"",
        c = counter.display()
    );
    let args = ["compute", "peaks", "--version", "1", "--config", "threshold=3", "--input", "run42/raw:raw.txt", "--"];
    let first = s.ok(&[&args[..], &["sh", "-c", &script]].concat());
    // The command's own standard output goes to standard error: trove's is the reference alone.
    assert_eq!(first.lines().count(), 1, "{first}");
    let reference = last_line(&first);
    assert!(reference.starts_with("run42/peaks/"), "{reference}");
    assert_eq!(runs(&counter), 1);
    let again = s.cmd(&[&args[..], &["sh", "-c", &script]].concat()).output().unwrap();
    assert!(again.status.success());
    assert_eq!(last_line(&String::from_utf8_lossy(&again.stdout)), reference);
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to run"));
    assert_eq!(runs(&counter), 1, "the second call ran the command");

    let shown = s.show(&reference);
    assert_eq!(shown["kind"], "derived");
    let names: Vec<&str> = shown["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["config.json", "peaks.txt"]);
    assert_eq!(shown["lineage"]["name"], "peaks");
    assert_eq!(shown["lineage"]["config"]["threshold"], 3);
    assert_eq!(shown["lineage"]["inputs"][0]["ref"], "run42/raw:raw.txt");
    let peaks = std::fs::read_to_string(s.root().join(format!("{reference}/peaks.txt"))).unwrap();
    assert_eq!(peaks, "1\n2\n3\n");
    let config = std::fs::read_to_string(s.root().join(format!("{reference}/config.json"))).unwrap();
    assert_eq!(config.trim(), r#"{"threshold":3}"#);

    // Queryable by key and by name.
    let key = shown["lineage"]["key"].as_str().unwrap().to_string();
    assert_eq!(s.ok(&["find", &format!("@lineage == '{key}'"), "--ids"]).trim(), reference);
    assert_eq!(s.ok(&["find", "--lineage-name", "peaks", "--ids"]).trim(), reference);
    assert_eq!(s.ok(&["find", "--lineage-name", "other", "--ids"]).trim(), "");
    assert_eq!(s.ok(&["find", "--lineage-name", "peaks", "--project", "run42", "--count"]).trim(), "1");
    s.ok(&["check"]);
}

#[test]
fn eight_processes_run_the_command_once_and_print_the_same_ref() {
    eight_processes(false);
}

/// As batch jobs on a shared filesystem do: each appends to the log alone and reads a catalog that lags.
#[test]
fn eight_log_only_processes_run_the_command_once_and_print_the_same_ref() {
    eight_processes(true);
}

fn eight_processes(log_only: bool) {
    let s = with_raw();
    let counter = s.inputs.path().join("runs");
    // Slow enough that all eight ask while the first computes.
    let script = format!("echo run >> {}; sleep 1; echo done > \"$TROVE_OUTPUT/result.txt\"", counter.display());
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(bin())
                .env_remove("TROVE_STORE")
                .env("TROVE_LOG_ONLY", if log_only { "1" } else { "0" })
                .arg("--store")
                .arg(s.root())
                .args(["compute", "slow", "--version", "1", "--input", "run42/raw", "--", "sh", "-c", &script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut refs = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        refs.push(last_line(&String::from_utf8_lossy(&out.stdout)));
    }
    assert_eq!(runs(&counter), 1, "the command ran {} times", runs(&counter));
    assert!(refs.iter().all(|r| *r == refs[0] && r.starts_with("run42/slow/")), "{refs:?}");
    s.ok(&["sync"]);
    assert_eq!(s.ok(&["find", "--lineage-name", "slow", "--count"]).trim(), "1");
    s.ok(&["check"]);
}

#[test]
fn a_computation_killed_midway_leaves_no_result_and_the_next_call_computes_again() {
    let s = with_raw();
    let started = s.inputs.path().join("started");
    let counter = s.inputs.path().join("runs");
    let slow = format!(
        "echo run >> {c}; echo partial > \"$TROVE_OUTPUT/part.txt\"; echo $$ > {m}.tmp; mv {m}.tmp {m}; exec sleep 60",
        c = counter.display(),
        m = started.display()
    );
    let args = ["compute", "killed", "--version", "1", "--input", "run42/raw:raw.txt", "--"];
    // trove and its command are both killed, as a batch system kills a job.
    let mut child = Command::new(bin())
        .env_remove("TROVE_STORE")
        .arg("--store")
        .arg(s.root())
        .args(args)
        .args(["sh", "-c", &slow])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let command_pid = std::fs::read_to_string(&started).unwrap().trim().to_string();
    Command::new("kill").args(["-KILL", &command_pid]).status().unwrap();

    assert_eq!(s.ok(&["find", "--lineage-name", "killed", "--count"]).trim(), "0");
    // What the dead computation wrote is an orphan in staging, nothing more.
    let check = s.cmd(&["check", "--json"]).output().unwrap();
    for line in String::from_utf8_lossy(&check.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(kind) = v.get("kind").and_then(Value::as_str) {
            assert_eq!(kind, "orphan", "{line}");
        }
    }
    // The next call takes the dead process's lease over at once and computes.
    let quick = format!("echo run >> {}; echo whole > \"$TROVE_OUTPUT/part.txt\"", counter.display());
    let out = s.ok(&[&args[..], &["sh", "-c", &quick]].concat());
    assert!(last_line(&out).starts_with("run42/killed/"));
    assert_eq!(runs(&counter), 2);
    let content = std::fs::read_to_string(s.root().join(format!("{}/part.txt", last_line(&out)))).unwrap();
    assert_eq!(content, "whole\n");
    s.ok(&["gc", "--grace", "0s"]);
    s.ok(&["check"]);
}

#[test]
fn a_failed_command_passes_its_exit_code_and_stores_nothing() {
    let s = TestStore::new();
    let args = ["compute", "fails", "--version", "1", "--"];
    let err = s.fails(&[&args[..], &["sh", "-c", "echo half > \"$TROVE_OUTPUT/half.txt\"; exit 3"]].concat(), 3);
    assert!(err.contains("error: computing fails (lineage "), "{err}");
    assert!(err.contains("exited with code 3; nothing was stored"), "{err}");
    assert_eq!(s.ok(&["find", "--lineage-name", "fails", "--count"]).trim(), "0");
    assert!(s.ok(&["ls"]).trim().is_empty() || !s.ok(&["ls"]).contains("derived"));
    // Nothing written is a failure too, as is a command that cannot be found.
    let err = s.fails(&[&args[..], &["true"]].concat(), 1);
    assert!(err.contains("wrote nothing"), "{err}");
    assert!(err.contains("note: the last attempt failed at"), "{err}");
    s.fails(&[&args[..], &["no-such-command-anywhere"]].concat(), 127);
    s.fails(&[&args[..], &["sh", "-c", "kill -9 $$"]].concat(), 137);
    s.ok(&["check"]);
    // Once it works, it is stored and the failure record is gone.
    let out = s.ok(&[&args[..], &["sh", "-c", "echo ok > \"$TROVE_OUTPUT/ok.txt\""]].concat());
    assert!(last_line(&out).starts_with("derived/fails/"));
    let failures = std::fs::read_dir(s.root().join(".trove/compute")).map_or(0, |d| d.count());
    assert_eq!(failures, 0);
}

#[test]
fn the_key_follows_code_config_version_and_inputs_but_not_config_order() {
    let s = with_raw();
    let counter = s.inputs.path().join("runs");
    let script = s.file("step.sh", b"echo v1 > \"$TROVE_OUTPUT/out.txt\"\n");
    let body = format!("echo run >> {}; sh {}", counter.display(), script.display());
    let compute = |extra: &[&str]| -> String {
        let mut args = vec!["compute", "step", "--code", script.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &body]);
        last_line(&s.ok(&args))
    };
    let base = compute(&["--version", "1", "--config", "a=1", "--config", "b=x", "--input", "run42/raw"]);
    assert_eq!(runs(&counter), 1);
    // Config keys in another order, and 1.0 for 1: the same key.
    assert_eq!(compute(&["--version", "1", "--config", "b=x", "--config", "a=1.0", "--input", "run42/raw"]), base);
    assert_eq!(runs(&counter), 1);
    let mut seen = vec![base.clone()];
    for change in [
        vec!["--version", "2", "--config", "a=1", "--config", "b=x", "--input", "run42/raw"],
        vec!["--version", "1", "--config", "a=2", "--config", "b=x", "--input", "run42/raw"],
        vec!["--version", "1", "--config", "a=1", "--config", "b=x"],
    ] {
        let r = compute(&change);
        assert!(!seen.contains(&r), "{change:?} gave an existing result {r}");
        seen.push(r);
    }
    assert_eq!(runs(&counter), 4);
    // Editing the script makes a new key; so does changing the input's data.
    std::fs::write(&script, "echo v2 > \"$TROVE_OUTPUT/out.txt\"\n").unwrap();
    let edited = compute(&["--version", "1", "--config", "a=1", "--config", "b=x", "--input", "run42/raw"]);
    assert!(!seen.contains(&edited));
    assert_eq!(runs(&counter), 5);
    let raw = s.file("raw.txt", b"4 5 6\n");
    s.ok(&["put", "run42/raw", raw.to_str().unwrap()]);
    let new_input = compute(&["--version", "1", "--config", "a=1", "--config", "b=x", "--input", "run42/raw"]);
    assert!(new_input != edited && !seen.contains(&new_input));
    assert_eq!(runs(&counter), 6);
}

#[test]
fn loose_matching_reports_what_differs_and_never_stores_under_a_loose_key() {
    let s = TestStore::new();
    let counter = s.inputs.path().join("runs");
    let body = format!("echo run >> {}; echo x > \"$TROVE_OUTPUT/x.txt\"", counter.display());
    let run = |extra: &[&str]| {
        let mut args = vec!["compute", "fit"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &body]);
        s.cmd(&args).output().unwrap()
    };
    let first = run(&["--version", "1", "--config", "tol=0.1", "--config", "seed=1"]);
    let reference = last_line(&String::from_utf8_lossy(&first.stdout));
    let loose = run(&[
        "--version",
        "2",
        "--config",
        "tol=0.2",
        "--config",
        "seed=1",
        "--loose-config",
        "tol",
        "--loose-version",
    ]);
    assert!(loose.status.success());
    assert_eq!(last_line(&String::from_utf8_lossy(&loose.stdout)), reference);
    let said = String::from_utf8_lossy(&loose.stderr);
    assert!(said.contains("loose match"), "{said}");
    assert!(said.contains("version 2 here, 1 there"), "{said}");
    assert!(said.contains("config tol = 0.2 here, 0.1 there"), "{said}");
    assert_eq!(runs(&counter), 1);
    // A difference the loose options do not allow (seed) is computed, under its exact key.
    let strict = run(&["--version", "1", "--config", "tol=0.1", "--config", "seed=2", "--loose-config", "tol"]);
    assert_ne!(last_line(&String::from_utf8_lossy(&strict.stdout)), reference);
    assert_eq!(runs(&counter), 2);
    assert_eq!(s.ok(&["find", "--lineage-name", "fit", "--count"]).trim(), "2");
}

#[test]
fn project_metadata_supplies_config_defaults_recorded_as_used() {
    let s = TestStore::new();
    s.ok(&["project", "create", "run7", "-m", "config.gain=1.5", "-m", "config.drift=0.2", "-m", "operator=ana"]);
    let body = "echo \"$TROVE_CONFIG\" > \"$TROVE_OUTPUT/config.json\"";
    let args =
        ["compute", "calib", "--version", "1", "--project", "run7", "--config-from-project", "--config", "drift=0.3"];
    let reference = last_line(&s.ok(&[&args[..], &["--", "sh", "-c", body]].concat()));
    let lineage = &s.show(&reference)["lineage"];
    assert_eq!(lineage["config"], serde_json::json!({"gain": 1.5, "drift": 0.3}));
    // Only some keys; a missing one is an error that names it.
    let one = ["compute", "calib", "--version", "1", "--project", "run7", "--config-from-project=gain"];
    let reference = last_line(&s.ok(&[&one[..], &["--", "sh", "-c", body]].concat()));
    assert_eq!(s.show(&reference)["lineage"]["config"], serde_json::json!({"gain": 1.5}));
    let bad = ["compute", "calib", "--version", "1", "--project", "run7", "--config-from-project=gainz"];
    let err = s.fails(&[&bad[..], &["--", "true"]].concat(), 1);
    assert!(err.contains("project run7 has no metadata config.gainz"), "{err}");
}

#[test]
fn lineage_shows_the_tree_and_where_each_input_is() {
    let s = with_raw();
    let peaks = last_line(&s.ok(&[
        "compute",
        "peaks",
        "--version",
        "1",
        "--input",
        "run42/raw:raw.txt",
        "--",
        "sh",
        "-c",
        "tr ' ' '\\n' < \"$TROVE_INPUT_0\" > \"$TROVE_OUTPUT/peaks.txt\"",
    ]));
    let hits = last_line(&s.ok(&[
        "compute",
        "hits",
        "--version",
        "3",
        "--config",
        "cut=2",
        "--input",
        &peaks,
        "--",
        "sh",
        "-c",
        "ls \"$TROVE_INPUT_0\" > \"$TROVE_OUTPUT/hits.txt\"",
    ]));
    assert!(hits.starts_with("run42/hits/"));
    let text = s.ok(&["lineage", &hits]);
    assert!(text.starts_with(&format!("{hits}  lineage ")), "{text}");
    assert!(text.contains("hits version 3"), "{text}");
    assert!(text.contains("config  cut = 2"), "{text}");
    assert!(text.contains(&format!("from {peaks}: present at {peaks}")), "{text}");
    assert!(text.contains("    peaks version 1"), "{text}");
    assert!(text.contains("from run42/raw:raw.txt: present at run42/raw:raw.txt"), "{text}");

    // The raw data moves: found by checksum. Then it is replaced: the content used is gone.
    s.ok(&["mv", "run42/raw", "run42/raw2"]);
    let tree: Value = serde_json::from_str(&s.ok(&["lineage", &hits, "--json"])).unwrap();
    let raw = &tree["inputs"][0]["lineage"]["inputs"][0];
    assert_eq!(raw["presence"], serde_json::json!({"status": "present", "at": "run42/raw2:raw.txt"}));
    let other = s.file("raw.txt", b"changed\n");
    s.ok(&["put", "run42/raw2", other.to_str().unwrap()]);
    let tree: Value = serde_json::from_str(&s.ok(&["lineage", &hits, "--json"])).unwrap();
    assert_eq!(tree["inputs"][0]["lineage"]["inputs"][0]["presence"]["status"], "missing");
    s.ok(&["rm", &peaks]);
    let text = s.ok(&["lineage", &hits]);
    assert!(text.contains(&format!("from {peaks}: missing")), "{text}");
    let err = s.fails(&["lineage", "run42/raw2"], 1);
    assert!(err.contains("has no lineage"), "{err}");
}

#[test]
fn bad_arguments_get_clear_errors() {
    let s = TestStore::new();
    let err = s.fails(&["compute", "a/b", "--version", "1", "--", "true"], 1);
    assert!(err.starts_with("error: invalid lineage name"), "{err}");
    let err = s.fails(&["compute", "a", "--version", "1", "--input", "p/none", "--", "true"], 1);
    assert!(err.starts_with("error: --input p/none"), "{err}");
    assert!(err.contains("not found"), "{err}");
    let err = s.fails(&["compute", "a", "--version", "1", "--code", "/no/such/file", "--", "true"], 1);
    assert!(err.starts_with("error: --code /no/such/file"), "{err}");
    let err = s.fails(&["compute", "a", "--version", "1", "--config", "=3", "--", "true"], 1);
    assert!(err.starts_with("error: invalid key"), "{err}");
    // A file the command leaves under a name that cannot be an object.
    let err = s.fails(&["compute", "a", "--version", "1", "--", "sh", "-c", "touch \"$TROVE_OUTPUT/a:b\""], 1);
    assert!(err.contains("not usable as an object name"), "{err}");
    // A symbolic link is not data.
    let err =
        s.fails(&["compute", "a", "--version", "1", "--", "sh", "-c", "ln -s /etc/hostname \"$TROVE_OUTPUT/l\""], 1);
    assert!(err.contains("symbolic link"), "{err}");
    let err =
        s.fails(&["compute", "a", "--version", "1", "--project", "nope", "--config-from-project", "--", "true"], 1);
    assert!(err.starts_with("error: --config-from-project: project nope does not exist"), "{err}");
    s.fails(&["compute", "a", "--version", "1"], 2);
    s.ok(&["check"]);
}
