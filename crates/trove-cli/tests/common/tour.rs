//! The README tour with a careless user's inputs, as one transcript: run on stores of every kind (a folder
//! with SQLite, PostgreSQL, S3) and compared.

use serde_json::json;

use super::TestStore;

/// Ids and times differ between two stores: replaced, so that transcripts compare.
pub fn normalized(text: &str) -> String {
    let ids = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let speed = regex::Regex::new(r"\d+\.\d+ s \(\d+ datasets/s\)").unwrap();
    let text = ids.replace_all(text, "<id>");
    let text = speed.replace_all(&text, "<speed>");
    times.replace_all(&text, "<time>").into_owned()
}

/// The README tour with a careless user's inputs (Unicode and maximal names, identical contents, NUL in
/// strings, integers past 2^63, deep JSON), as one transcript of every answer.
pub fn tour(s: &TestStore) -> String {
    let csv = s.file("t.csv", b"a,b\n1,2\n");
    let csv = csv.to_str().unwrap();
    let long = format!("{}x", "é".repeat(127));
    let deep = (0..40).fold(json!(1), |v, i| json!({ format!("k{i}"): v }));
    let mut transcript = String::new();
    let mut run = |args: &[&str]| {
        transcript.push_str(&format!("$ trove {}\n", args.join(" ")));
        transcript.push_str(&s.ok(args));
    };
    run(&["project", "create", "lab", "-m", "site=Grenoble"]);
    run(&["put", "lab/ü-run 1", csv, "-m", "temperature=300", "-m", "sample.name=steel", "-t", "good"]);
    run(&["put", "lab/run2", csv, "-m", "temperature=310.5", "-m", "big=18446744073709551615", "-t", "good"]);
    run(&["put", "lab/run3", "-m", "note:=\"a\\u0000b\"", "-m", "temperature=-2", "-m", "when=2024-05-01T10:00:00Z"]);
    run(&["put", &format!("lab/{long}"), "-m", &format!("deep:={deep}"), "-m", "xs:=[1,2.5,\"x\",[1]]"]);
    run(&["put", "lab/a/b/c", "-m", "temperature=2.5", "-m", "empty:={}"]);
    run(&["tag", "add", "lab/run3", "odd"]);
    run(&["meta", "set", "lab/run2", "operator=Ann"]);
    run(&["mv", "lab/a", "lab/moved"]);
    run(&["cp", "lab/run2", "lab/copy"]);
    run(&["rm", "lab/copy"]);
    let lines: String = (0..30)
        .map(|i| format!("{}\n", json!({"path": format!("bulk/r{i:02}"), "metadata": {"i": i, "even": i % 2 == 0}})))
        .collect();
    let jsonl = s.file("in.jsonl", lines.as_bytes());
    run(&["ingest", jsonl.to_str().unwrap(), "--batch", "7"]);
    for filter in [
        "temperature >= 300",
        "temperature < 300",
        "big > 9223372036854775807",
        "note ~ 'a*'",
        "name =~ '^st'",
        "exists(deep.k39.k38)",
        "@tag == 'good' and not @tag == 'odd'",
        "not exists(temperature)",
        "xs == 2.5",
        "when > '2024-01-01'",
        "@path ~ 'r*'",
        "i in [1, 2, 3] or even == false",
    ] {
        run(&["find", filter]);
        run(&["find", filter, "--json"]);
    }
    run(&["find", "exists(i)", "--sort", "-i", "--limit", "5", "--offset", "2"]);
    run(&["find", "--count", "exists(i)"]);
    run(&["ls", "-r", "lab"]);
    run(&["schema"]);
    run(&["schema", "--json"]);
    run(&["sql", "select project, path, kind, lineage from datasets order by project, path"]);
    run(&["sql", "select path, key, type from metadata order by path, key, type"]);
    run(&["sql", "select path, tag from tags order by path, tag", "--json"]);
    run(&["sql", "select path, name, format, size, rows from objects order by path, name", "--json"]);
    run(&["sync", "--full"]);
    run(&["find", "temperature >= 300 or exists(i)", "--json"]);
    let transcript = transcript.replace(s.inputs.path().to_str().unwrap(), "<inputs>").replace(&s.location, "<root>");
    normalized(&transcript)
}
