//! `trove connections` and `-c NAME`: named stores with secrets by reference, the 0600 rule, the default
//! connection named like the login user, and secrets that never reach an output or a file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use common::{TestStore, bin};

/// `trove ARGS` with the configuration at `config`, from `cwd`, as `user`.
fn trove(config: &Path, cwd: &Path, user: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(bin());
    cmd.current_dir(cwd)
        .env("TROVE_CONFIG", config)
        .env("USER", user)
        .env_remove("TROVE_STORE")
        .env_remove("TROVE_CONNECTION");
    cmd.env_remove("PGPASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn connections_are_added_listed_and_removed_and_loose_secrets_files_refused() {
    let s = TestStore::new();
    s.ok(&["put", "lab/a", "-m", "t=1"]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("trove/config.toml");
    let secret = home.path().join("pw");
    std::fs::write(&secret, "not-printed-1\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let root = s.root().to_str().unwrap();
    let add = |name: &str, extra: &[&str]| {
        trove(
            &config,
            home.path(),
            "nobody",
            &[&["--store", root, "connections", "add", name][..], extra].concat(),
            &[],
        )
    };
    let out = add("lab", &["--secret-file", secret.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let first = text(&out);
    assert!(
        first.starts_with("error: permissions 0644 for the secrets file") && first.contains("chmod 600"),
        "{first}"
    );
    assert!(!config.exists(), "a refused connection writes nothing");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(add("lab", &["--secret-file", secret.to_str().unwrap()]).status.success());
    assert!(add("ünïcode-name", &["--secret-env", "LAB_PASSWORD"]).status.success());
    for (name, extra, why) in [
        ("bad/name", &[][..], "invalid connection name"),
        ("x", &["--catalog", "postgres://u:pw@h/db"][..], "holds a password"),
        ("x", &["--catalog", "mysql://h/db"][..], "unknown catalog"),
        ("x", &["--secret-file", "/no/such/file"][..], "/no/such/file"),
    ] {
        let out = add(name, extra);
        assert_eq!(out.status.code(), Some(1), "{name} {extra:?}");
        assert!(text(&out).lines().next().unwrap().contains(why), "{}", text(&out));
    }
    let listed = text(&trove(&config, home.path(), "nobody", &["connections", "list"], &[]));
    assert!(listed.contains(&format!("lab\t{root}\tsecret from file:{}", secret.display())), "{listed}");
    assert!(listed.contains("secret from env:LAB_PASSWORD") && !listed.contains("not-printed-1"), "{listed}");
    let json = text(&trove(&config, home.path(), "nobody", &["connections", "list", "--json"], &[]));
    assert_eq!(json.lines().count(), 2);
    let tested = trove(&config, home.path(), "nobody", &["connections", "test", "lab"], &[]);
    assert!(tested.status.success(), "{}", text(&tested));
    assert!(
        text(&tested).contains("catalog SQLite file") && text(&tested).contains("(1 datasets)"),
        "{}",
        text(&tested)
    );
    let found = trove(&config, home.path(), "nobody", &["-c", "lab", "find", "t == 1"], &[]);
    assert!(text(&found).contains("lab/a"), "{}", text(&found));
    // A secret from an unset variable is named, not guessed.
    let unset = trove(&config, home.path(), "nobody", &["-c", "ünïcode-name", "ls"], &[]);
    assert_eq!(unset.status.code(), Some(1));
    assert!(text(&unset).contains("LAB_PASSWORD, which is not set"), "{}", text(&unset));
    assert!(trove(&config, home.path(), "nobody", &["connections", "rm", "lab"], &[]).status.success());
    let gone = trove(&config, home.path(), "nobody", &["connections", "rm", "lab"], &[]);
    assert_eq!(gone.status.code(), Some(1));
    let unknown = trove(&config, home.path(), "nobody", &["-c", "lab", "ls"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown).contains("connection \"lab\""), "{}", text(&unknown));
    // --store and -c together are a usage error.
    let both = trove(&config, home.path(), "nobody", &["--store", root, "-c", "x", "ls"], &[]);
    assert_eq!(both.status.code(), Some(2));
    // A connection that does not work says which part failed.
    assert!(add("broken", &[]).status.success());
    std::fs::remove_file(s.root().join("trove.toml")).unwrap();
    let broken = trove(&config, home.path(), "nobody", &["connections", "test", "broken"], &[]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(text(&broken).contains(&format!("store {root}: FAILED")), "{}", text(&broken));
}

#[test]
fn the_connection_named_like_the_login_user_is_the_default() {
    let s = TestStore::new();
    s.ok(&["put", "mine/x"]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let root = s.root().to_str().unwrap();
    assert!(trove(&config, home.path(), "ann", &["--store", root, "connections", "add", "ann"], &[]).status.success());
    let listed = text(&trove(&config, home.path(), "ann", &["connections", "list"], &[]));
    assert!(listed.contains("(default)"), "{listed}");
    // Outside any store, ann's commands go to her connection; bob has none.
    let ls = trove(&config, home.path(), "ann", &["ls"], &[]);
    assert!(text(&ls).contains("mine/"), "{}", text(&ls));
    let bob = trove(&config, home.path(), "bob", &["ls"], &[]);
    assert_eq!(bob.status.code(), Some(1));
    assert!(text(&bob).contains("no trove store found"), "{}", text(&bob));
    // Inside another store, that store wins over the default connection.
    let other = TestStore::new();
    other.ok(&["put", "theirs/y"]);
    let inside = trove(&config, other.root(), "ann", &["ls"], &[]);
    assert!(text(&inside).contains("theirs/") && !text(&inside).contains("mine/"), "{}", text(&inside));
    // TROVE_CONNECTION picks one by name.
    let by_env = trove(&config, other.root(), "bob", &["ls"], &[("TROVE_CONNECTION", "ann")]);
    assert!(text(&by_env).contains("mine/"), "{}", text(&by_env));
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { walk(&path, out) } else { out.push(path) }
    }
}

#[test]
fn a_connections_secret_never_reaches_an_output_or_a_file() {
    let Some(url) = trove_catalog_postgres::testing::fresh_database() else { return };
    const SECRET: &str = "s3cr3t-\u{1F511}-Xy7";
    let s = TestStore::with_catalog(&url);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("pw");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = s.root().to_str().unwrap();
    let env = [("TEAM_PW", SECRET)];
    let mut printed = String::new();
    let mut run = |args: &[&str]| {
        let out = trove(&config, home.path(), "nobody", args, &env);
        printed += &text(&out);
        out
    };
    assert!(
        run(&["--store", root, "connections", "add", "team", "--secret-file", secret.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        run(&["--store", root, "connections", "add", "team2", "--secret-env", "TEAM_PW", "--catalog", &url])
            .status
            .success()
    );
    for name in ["team", "team2"] {
        assert!(run(&["-c", name, "put", &format!("lab/{name}"), "-m", "t=1"]).status.success(), "{printed}");
        assert!(run(&["-c", name, "find", "t == 1", "--json"]).status.success());
        assert!(run(&["-c", name, "catalog", "info"]).status.success());
        assert!(run(&["connections", "test", name]).status.success());
    }
    run(&["connections", "list"]);
    run(&["connections", "list", "--json"]);
    // Failures print no secret either.
    let unreachable = url.replace("/trove_test_", "/missing_db_");
    assert!(
        !run(&["--store", root, "connections", "add", "bad", "--secret-env", "TEAM_PW", "--catalog", &unreachable])
            .status
            .success()
            || !run(&["-c", "bad", "ls"]).status.success()
    );
    run(&["connections", "test", "bad"]);
    assert!(!run(&["-c", "team", "catalog", "use", &unreachable]).status.success());
    assert!(printed.contains("lab/team2"), "{printed}");
    assert!(!printed.contains(SECRET) && !printed.contains("s3cr3t"), "{printed}");
    let mut files = Vec::new();
    walk(s.root(), &mut files);
    walk(home.path(), &mut files);
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("s3cr3t"), "{} holds the secret", file.display());
    }
}
