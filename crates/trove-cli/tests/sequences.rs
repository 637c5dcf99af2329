//! Random sequences of trove commands and hand edits, through the real binary, over random valid names
//! (Unicode, `#`, `%`, maximal length) and files with identical contents. After every step:
//!
//! - a trove command that failed changed nothing: the same files with the same bytes, the same log;
//! - one that succeeded removed or changed only files its log named for it (a `put` replaces its object, a
//!   `rm` deletes its dataset's objects, a `mv` moves them, with the same bytes, to the new place): files
//!   placed by hand are never deleted or overwritten;
//! - a scan never touches a file, and after it `trove check` is clean (unless it reported something it left).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::TestStore;
use proptest::prelude::*;
use serde_json::Value;

#[derive(Debug, Clone)]
enum Step {
    Put { at: usize, content: usize, object: usize },
    Mv { from: usize, to: usize },
    Cp { from: usize, to: usize, recursive: bool },
    Rm { at: usize, recursive: bool },
    Scan,
    HandMv { from: usize, to: usize },
    HandRm { at: usize },
    HandEdit { at: usize },
    HandAdd { at: usize, content: usize },
}

const CONTENTS: [&[u8]; 3] = [b"the same bytes\n", b"the same bytes\n", b"other\n"];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9éßø日本🙂#%~{}\\[\\]^`@!=+,;_-]([a-zA-Z0-9éß日 #%~_-]{0,10}[a-zA-Z0-9é日#%_-])?",
        1 => Just("é".repeat(127)),
        1 => Just("x".repeat(255)),
    ]
}

fn step(slots: usize) -> impl Strategy<Value = Step> {
    let s = 0..slots;
    prop_oneof![
        4 => (s.clone(), 0..CONTENTS.len(), 0..3usize).prop_map(|(at, content, object)| Step::Put { at, content, object }),
        2 => (s.clone(), s.clone()).prop_map(|(from, to)| Step::Mv { from, to }),
        1 => (s.clone(), s.clone(), any::<bool>()).prop_map(|(from, to, recursive)| Step::Cp { from, to, recursive }),
        1 => (s.clone(), any::<bool>()).prop_map(|(at, recursive)| Step::Rm { at, recursive }),
        2 => Just(Step::Scan),
        2 => (s.clone(), s.clone()).prop_map(|(from, to)| Step::HandMv { from, to }),
        1 => s.clone().prop_map(|at| Step::HandRm { at }),
        1 => s.clone().prop_map(|at| Step::HandEdit { at }),
        1 => (s.clone(), 0..CONTENTS.len()).prop_map(|(at, content)| Step::HandAdd { at, content }),
    ]
}

/// Every file outside `.trove/`, by its path relative to the root, with its bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            if rel == ".trove" || rel == "trove.toml" {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn log(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join(".trove/log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The files (relative to the root) of the objects of the dataset at `r` and of every dataset below it.
fn object_files(s: &TestStore, r: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in s.all() {
        let at = format!("{}/{}", d["project"].as_str().unwrap(), d["path"].as_str().unwrap());
        if at == r || at.starts_with(&format!("{r}/")) {
            out.extend(d["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().to_string()));
        }
    }
    out
}

/// Whether a file is one of these objects' files (a folder object's files lie below its path).
fn owned(objects: &[String], file: &str) -> bool {
    objects.iter().any(|o| file == o || file.strip_prefix(o.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

fn check_findings(s: &TestStore) -> Vec<String> {
    s.findings().iter().map(Value::to_string).collect()
}

fn run(names: &[String], steps: &[Step]) -> Result<(), TestCaseError> {
    let s = TestStore::new();
    let root = s.root().to_path_buf();
    let inputs: Vec<_> = CONTENTS.iter().enumerate().map(|(i, c)| s.file(&format!("in{i}"), c)).collect();
    let objects = ["data.csv", "é.txt", "x#1 ~"];
    // Three datasets side by side and two nested in others: `a`, `b`, `c`, `a/b`, `c/a/b`.
    let paths = [
        names[0].clone(),
        names[1].clone(),
        names[2].clone(),
        format!("{}/{}", names[0], names[1]),
        format!("{}/{}/{}", names[2], names[0], names[1]),
    ];
    let at = |i: usize| format!("lab/{}", paths[i]);
    for (n, step) in steps.iter().enumerate() {
        let before = files(&root);
        let segments = log(&root);
        let trove = |args: &[&str]| s.cmd(args).output().unwrap();
        // What a successful command may remove, and where its files must reappear (`mv`).
        let (out, may_remove, moved_to) = match step {
            Step::Put { at: i, content, object } => {
                let r = at(*i);
                let out = trove(&["put", &r, inputs[*content].to_str().unwrap(), "--name", objects[*object]]);
                (Some(out), vec![format!("{r}/{}", objects[*object])], None)
            }
            Step::Mv { from, to } => {
                let (f, t) = (at(*from), at(*to));
                let owned = object_files(&s, &f);
                (Some(trove(&["mv", &f, &t])), owned, Some((f, t)))
            }
            Step::Cp { from, to, recursive } => {
                let flag = if *recursive { "-r" } else { "--no-fsync" };
                (Some(trove(&["cp", flag, &at(*from), &at(*to)])), Vec::new(), None)
            }
            Step::Rm { at: i, recursive } => {
                let flag = if *recursive { "-r" } else { "--no-fsync" };
                let owned = object_files(&s, &at(*i));
                (Some(trove(&["rm", flag, &at(*i)])), owned, None)
            }
            Step::Scan => (Some(trove(&["sync", "--scan"])), Vec::new(), None),
            Step::HandMv { from, to } => {
                let (f, t) = (root.join(at(*from)), root.join(at(*to)));
                if f.is_dir() && !t.exists() && !t.starts_with(&f) {
                    std::fs::create_dir_all(t.parent().unwrap()).unwrap();
                    std::fs::rename(f, t).unwrap();
                }
                (None, Vec::new(), None)
            }
            Step::HandRm { at: i } => {
                let _ = std::fs::remove_dir_all(root.join(at(*i)));
                (None, Vec::new(), None)
            }
            Step::HandEdit { at: i } => {
                let dir = root.join(at(*i));
                if let Some(file) = std::fs::read_dir(&dir).ok().and_then(|mut d| d.next()).map(|e| e.unwrap().path())
                    && file.is_file()
                {
                    let mut bytes = std::fs::read(&file).unwrap();
                    bytes.extend_from_slice(b"edited by hand\n");
                    std::fs::write(&file, bytes).unwrap();
                }
                (None, Vec::new(), None)
            }
            Step::HandAdd { at: i, content } => {
                let dir = root.join(at(*i));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("hand {n}.txt")), CONTENTS[*content]).unwrap();
                (None, Vec::new(), None)
            }
        };
        let Some(out) = out else { continue };
        let after = files(&root);
        let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            prop_assert_eq!(&before, &after, "step {} {:?} failed ({}) but changed files", n, step, said);
            prop_assert_eq!(&segments, &log(&root), "step {} {:?} failed ({}) but committed", n, step, said);
            continue;
        }
        for (path, bytes) in &before {
            match after.get(path) {
                Some(now) if now == bytes => {}
                Some(_) if owned(&may_remove, path) && matches!(step, Step::Put { .. }) => {}
                None if owned(&may_remove, path) => {
                    if let Some((f, t)) = &moved_to {
                        let there = format!("{t}{}", &path[f.len()..]);
                        prop_assert_eq!(
                            after.get(&there),
                            Some(bytes),
                            "step {} {:?}: {} not moved to {}",
                            n,
                            step,
                            path,
                            there
                        );
                    }
                }
                _ => prop_assert!(false, "step {} {:?} ({}) lost or changed {}", n, step, said, path),
            }
        }
        if matches!(step, Step::Scan) {
            prop_assert_eq!(&before, &after, "a scan changed files");
            let findings = check_findings(&s);
            let left_something = said.contains("skipped") || said.contains("missing");
            prop_assert!(
                findings.is_empty() || left_something,
                "after step {} scan ({}): check found {:?}",
                n,
                said,
                findings
            );
        }
    }
    // The end: a scan reconciles every hand edit, and the log, the catalog and the files agree.
    let said = s.ok(&["sync", "--scan"]);
    let findings = check_findings(&s);
    prop_assert!(
        findings.is_empty() || said.contains("skipped") || said.contains("missing"),
        "final scan ({said}): check found {findings:?}"
    );
    Ok(())
}

proptest! {
    // PROPTEST_CASES=500 for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(32),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn commands_and_hand_edits_never_lose_what_the_log_holds(
        names in proptest::collection::btree_set(name(), 3..5),
        steps in proptest::collection::vec(step(5), 1..24),
    ) {
        let names: Vec<String> = names.into_iter().collect();
        run(&names, &steps)?;
    }
}
