//! Helpers shared by the CLI integration tests: they run the real `trove` binary.

#![allow(dead_code)]

pub mod machines;
pub mod tour;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trove"))
}

/// A fresh store in a temporary folder, or under a fresh prefix of the test S3 server.
pub struct TestStore {
    /// The store folder; for a store on S3, this machine's cache folder (`TROVE_CACHE`).
    pub dir: tempfile::TempDir,
    /// Input files live here, outside the store.
    pub inputs: tempfile::TempDir,
    /// What `--store` names: the folder, or the S3 URL.
    pub location: String,
    /// Variables every command gets (the S3 credentials and endpoint, the cache folder).
    pub env: Vec<(String, String)>,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        Command::new(bin()).arg("init").arg(dir.path()).arg("--scratch").assert().success();
        let location = dir.path().to_string_lossy().into_owned();
        TestStore { dir, inputs: tempfile::tempdir().unwrap(), location, env: Vec::new() }
    }

    /// A fresh store whose catalog is the PostgreSQL database at `url`.
    pub fn with_catalog(url: &str) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let out =
            Command::new(bin()).arg("init").arg(dir.path()).args(["--scratch", "--catalog", url]).output().unwrap();
        assert!(out.status.success(), "init --catalog {url}: {}", String::from_utf8_lossy(&out.stderr));
        let location = dir.path().to_string_lossy().into_owned();
        TestStore { dir, inputs: tempfile::tempdir().unwrap(), location, env: Vec::new() }
    }

    /// A fresh store under a new prefix of the test S3 server, with the catalog at `catalog` (empty: a
    /// SQLite catalog cached in this test's folder); `None` (said loudly) when there is no server outside CI.
    pub fn on_s3(catalog: &str) -> Option<TestStore> {
        let (url, mut env) = trove_storage::testing::s3_location()?;
        let dir = tempfile::tempdir().unwrap();
        env.push(("TROVE_CACHE".into(), dir.path().to_string_lossy().into_owned()));
        let mut init = Command::new(bin());
        init.env_remove("TROVE_STORE").envs(env.clone()).args(["init", &url]);
        if !catalog.is_empty() {
            init.args(["--catalog", catalog]);
        }
        let out = init.output().unwrap();
        assert!(out.status.success(), "init {url}: {}", String::from_utf8_lossy(&out.stderr));
        Some(TestStore { dir, inputs: tempfile::tempdir().unwrap(), location: url, env })
    }

    /// A store on S3 with a PostgreSQL catalog; `None` when either server is missing outside CI.
    pub fn on_s3_and_postgres() -> Option<TestStore> {
        let url = trove_catalog_postgres::testing::fresh_database()?;
        TestStore::on_s3(&url)
    }

    /// A fresh store on a new database of the test PostgreSQL server; `None` (said loudly) when there is
    /// no server outside CI.
    pub fn on_postgres() -> Option<TestStore> {
        trove_catalog_postgres::testing::fresh_database().map(|url| TestStore::with_catalog(&url))
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `trove --store ROOT ARGS...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env_remove("TROVE_STORE").envs(self.env.clone()).arg("--store").arg(&self.location).args(args);
        c
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "trove {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "trove {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn show(&self, r: &str) -> Value {
        serde_json::from_str(&self.ok(&["show", r, "--json"])).unwrap()
    }

    /// Every dataset's `show --json`, in path order.
    pub fn all(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for line in self.ok(&["ls", "-r", "--json"]).lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
        out
    }

    /// The findings of `trove check --json` (its summary line left out).
    pub fn findings(&self) -> Vec<Value> {
        let out = self.cmd(&["check", "--json"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|f| f.get("kind").is_some())
            .collect()
    }

    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.inputs.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The names of the log segments.
    pub fn segments(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root().join(".trove/log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
