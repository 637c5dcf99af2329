//! `find`, `schema` and `sql` through the real binary.

mod common;

use common::TestStore;
use serde_json::Value;

/// A small store: six runs with mixed metadata, a parent that passes metadata down, tags, one file.
fn lab() -> TestStore {
    let s = TestStore::new();
    let jsonl = s.inputs.path().join("runs.jsonl");
    let mut lines = String::new();
    for (i, (t, material, tag)) in [
        ("290.5", "steel", "calibrated"),
        ("300", "steel", "calibrated"),
        ("305.25", "copper", "pilot"),
        ("310", "steel", "pilot"),
        ("320", "glass", "calibrated"),
    ]
    .into_iter()
    .enumerate()
    {
        lines.push_str(&format!(
            r#"{{"path": "lab/runs/2024/r{i}", "kind": "measurement", "metadata": {{"temperature": {t}, "material": "{material}", "sample": {{"thickness_mm": {i}}}, "date": "2024-05-0{}"}}, "tags": ["{tag}"]}}"#,
            i + 1
        ));
        lines.push('\n');
    }
    // A key that is a number in one dataset and a string in another must not break a query.
    lines.push_str(r#"{"path": "lab/runs/2023/odd", "metadata": {"temperature": "hot", "T (K)": 4}}"#);
    lines.push('\n');
    std::fs::write(&jsonl, lines).unwrap();
    s.ok(&["ingest", jsonl.to_str().unwrap()]);
    s.ok(&["put", "lab/runs/2024", "-m", "operator=ada", "-m", "campaign.name=spring"]);
    s
}

fn ids(s: &TestStore, args: &[&str]) -> Vec<String> {
    let mut all = vec!["find", "--ids"];
    all.extend_from_slice(args);
    s.ok(&all).lines().map(str::to_string).collect()
}

#[test]
fn filters_select_sort_and_window() {
    let s = lab();
    assert_eq!(ids(&s, &[r#"material == "steel" and temperature >= 300"#]), ["lab/runs/2024/r1", "lab/runs/2024/r3"]);
    assert_eq!(s.ok(&["find", "--count", "temperature >= 300"]).trim(), "4");
    // The string "hot" is neither above nor below a number, nor equal to it.
    assert_eq!(s.ok(&["find", "--count", "temperature < 300 or temperature >= 300"]).trim(), "5");
    assert_eq!(ids(&s, &["temperature == 'hot'"]), ["lab/runs/2023/odd"]);
    assert_eq!(ids(&s, &[r#""T (K)" == 4"#]), ["lab/runs/2023/odd"]);
    assert_eq!(ids(&s, &["sample.thickness_mm in [1, 4]"]), ["lab/runs/2024/r1", "lab/runs/2024/r4"]);
    assert_eq!(ids(&s, &["not exists(material)"]).len(), 2, "odd, and the parent runs/2024");
    assert_eq!(ids(&s, &[r#"@tag == "pilot" and @path ~ "runs/2024/*""#]), ["lab/runs/2024/r2", "lab/runs/2024/r3"]);
    assert_eq!(ids(&s, &[r#"date >= "2024-05-04""#]), ["lab/runs/2024/r3", "lab/runs/2024/r4"]);
    assert_eq!(ids(&s, &["@created >= '2000-01-01' and @kind == 'measurement'"]).len(), 5);
    assert_eq!(
        ids(&s, &["--sort", "-temperature", "--limit", "2", "exists(temperature)"]),
        ["lab/runs/2024/r4", "lab/runs/2024/r3"]
    );
    assert_eq!(
        ids(&s, &["--sort", "temperature", "--offset", "1", "--limit", "2", "material == 'steel'"]),
        ["lab/runs/2024/r1", "lab/runs/2024/r3"]
    );
    assert_eq!(ids(&s, &["--project", "lab", "--sort", "-@path", "--limit", "1"]), ["lab/runs/2024/r4"]);
    assert!(ids(&s, &["--project", "nothing-here"]).is_empty());
}

#[test]
fn json_filters_json_output_and_the_table() {
    let s = lab();
    let got = ids(&s, &["--filter-json", r#"{"temperature": {"$gte": 300, "$lt": 310}, "material": "steel"}"#]);
    assert_eq!(got, ["lab/runs/2024/r1"]);
    let both = ids(&s, &["@tag == 'calibrated'", "--filter-json", r#"{"material": {"$in": ["steel", "glass"]}}"#]);
    assert_eq!(both, ["lab/runs/2024/r0", "lab/runs/2024/r1", "lab/runs/2024/r4"]);
    let json = s.ok(&["find", "--json", "material == 'copper'"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v, s.show("lab/runs/2024/r2"));
    let table = s.ok(&["find", "material == 'copper'"]);
    assert!(table.contains("lab/runs/2024/r2") && table.contains("material=copper") && table.contains("[pilot]"));
}

#[test]
fn inherited_metadata_is_searchable() {
    let s = lab();
    assert!(ids(&s, &["operator == 'ada'"]) == ["lab/runs/2024"]);
    let inherited = ids(&s, &["--inherited", "operator == 'ada' and material == 'steel'"]);
    assert_eq!(inherited, ["lab/runs/2024/r0", "lab/runs/2024/r1", "lab/runs/2024/r3"]);
    assert_eq!(ids(&s, &["--inherited", "campaign.name == 'spring'"]).len(), 6);
    // A child's own value wins over the inherited one.
    s.ok(&["meta", "set", "lab/runs/2024/r0", "operator=bob"]);
    assert_eq!(ids(&s, &["--inherited", "operator == 'bob'"]), ["lab/runs/2024/r0"]);
    assert_eq!(s.ok(&["find", "--inherited", "--count", "operator != 'bob'"]).trim(), "5");
    // Project metadata flows down too.
    s.ok(&["meta", "set", "lab", "facility=ILL"]);
    assert_eq!(s.ok(&["find", "--inherited", "--count", "facility == 'ILL'"]).trim(), "7");
    assert_eq!(s.ok(&["find", "--count", "facility == 'ILL'"]).trim(), "0");
}

#[test]
fn malformed_filters_point_at_the_column() {
    let s = lab();
    let err = s.fails(&["find", "temperature >= "], 1);
    assert!(err.starts_with("error: expected a value after '>=' at column 16\n"), "{err}");
    assert!(err.contains("  temperature >=\n                 ^"), "{err}");
    let err = s.fails(&["find", "--filter-json", r#"{"t": {"$near": 3}}"#], 1);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("$near"), "{err}");
    let err = s.fails(&["find", "--sort", "@tag"], 1);
    assert!(err.contains("cannot sort by @tag"), "{err}");
    s.fails(&["find", "--count", "--ids"], 2);
}

#[test]
fn a_filter_too_long_for_the_command_line_comes_from_a_file_or_stdin_and_errors_stay_short() {
    let s = lab();
    // ~1 MB: far past the 128 KB a command-line argument may hold.
    let clauses: Vec<String> = (0..40_000).map(|i| format!("sample.thickness_mm == {}", i + 1000)).collect();
    let wide = format!("{} or material == \"glass\"", clauses.join(" or "));
    let file = s.inputs.path().join("filter.txt");
    std::fs::write(&file, format!("{wide}\n")).unwrap();
    assert_eq!(s.ok(&["find", "--count", "--filter-file", file.to_str().unwrap()]).trim(), "1");
    let out = s.cmd(&["find", "--count", "--filter-file", "-"]).write_stdin(wide.clone()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // A bad last clause: the error shows a window around it, not the whole megabyte.
    std::fs::write(&file, format!("{wide} and temperature >=")).unwrap();
    let err = s.fails(&["find", "--filter-file", file.to_str().unwrap()], 1);
    assert!(err.starts_with("error: expected a value after '>='"), "{}", &err[..200.min(err.len())]);
    assert!(err.len() < 400, "{} bytes of error", err.len());
    assert!(err.lines().nth(1).is_some_and(|l| l.starts_with("  …") && l.ends_with("temperature >=")), "{err}");
    let both = s.fails(&["find", "--filter-file", "-", "--filter-json", "-"], 1);
    assert!(both.starts_with("error: --filter-file - and --filter-json - both read stdin"), "{both}");
    let missing = s.fails(&["find", "--filter-file", "/nonexistent/filter.txt"], 1);
    assert!(missing.starts_with("error: cannot read the filter from /nonexistent/filter.txt"), "{missing}");
}

#[test]
fn schema_lists_keys_types_counts_and_ranges() {
    let s = lab();
    let out = s.ok(&["schema", "--json"]);
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let temperature = rows.iter().find(|r| r["key"] == "temperature").unwrap();
    assert_eq!(temperature["count"], 6);
    assert_eq!(temperature["types"], serde_json::json!({"number": 5, "string": 1}));
    assert_eq!(temperature["min"], 290.5);
    assert_eq!(temperature["max"], 320);
    let date = rows.iter().find(|r| r["key"] == "date").unwrap();
    assert_eq!(date["times"], 5);
    assert_eq!(date["earliest"], "2024-05-01T00:00:00.000000Z");
    // Kept as data changes: removing a key's last number updates the range.
    s.ok(&["rm", "lab/runs/2024/r4"]);
    let out = s.ok(&["schema", "lab", "--json"]);
    let t: Value =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|r| r["key"] == "temperature").unwrap();
    assert_eq!((t["count"].clone(), t["max"].clone()), (5.into(), 310.into()));
    let table = s.ok(&["schema"]);
    assert!(table.starts_with("KEY"), "{table}");
    assert!(table.contains("sample.thickness_mm"), "{table}");
    assert!(s.fails(&["schema", "nope"], 1).contains("project nope not found"));
}

#[test]
fn sql_reads_views_and_refuses_writes() {
    let s = lab();
    let out = s.ok(&["sql", "--json", "SELECT tag, count(*) AS n FROM tags GROUP BY tag ORDER BY tag"]);
    // Keys come in the SELECT's column order.
    assert_eq!(out, "{\"tag\":\"calibrated\",\"n\":3}\n{\"tag\":\"pilot\",\"n\":2}\n");
    let out = s.ok(&[
        "sql",
        "SELECT path, value FROM metadata WHERE key = 'temperature' AND type = 'number' ORDER BY value DESC LIMIT 1",
    ]);
    assert_eq!(out, "path          value\nruns/2024/r4  320\n");
    let out = s.ok(&[
        "sql",
        "--json",
        "SELECT json_extract(metadata, '$.sample.thickness_mm') AS t FROM datasets WHERE path = 'runs/2024/r2'",
    ]);
    assert_eq!(out.trim(), r#"{"t":2}"#);
    for write in [
        "DELETE FROM main.datasets",
        "DROP TABLE main.meta",
        "INSERT INTO main.keys(key) VALUES ('x')",
        "DELETE FROM datasets",
    ] {
        let err = s.fails(&["sql", write], 1);
        assert!(err.contains("read-only") || err.contains("cannot modify"), "{write}: {err}");
    }
    assert!(s.fails(&["sql", "SELEC 1"], 1).contains("invalid SQL"));
    assert_eq!(s.ok(&["find", "--count"]).trim(), "7", "nothing was lost");
}

/// Text that looks like a number stays text in the index, and a glob whose prefix looks like a number
/// still finds the strings that start with it.
#[test]
fn numeric_looking_text_is_text() {
    let s = TestStore::new();
    s.ok(&["put", "lab/a", "-m", "code==42", "-m", "date=2024-05-01"]);
    s.ok(&["put", "lab/b", "-m", "code=42"]);
    assert_eq!(s.ok(&["find", "code == \"42\"", "--ids"]), "lab/a\n");
    assert_eq!(s.ok(&["find", "code == 42", "--ids"]), "lab/b\n");
    assert_eq!(s.ok(&["find", "date ~ \"2024-*\"", "--ids"]), "lab/a\n");
    assert_eq!(s.ok(&["find", "code > \"4\"", "--ids"]), "lab/a\n");
}

/// Issue 14's exact queries, through the binary: integers past 2^63, arrays and objects, membership, regular
/// expressions with MongoDB's anchors, NUL inside strings, and the JSON form's element matching.
#[test]
fn queries_are_exact_for_big_integers_arrays_objects_and_regexes() {
    let s = TestStore::new();
    let jsonl = s.inputs.path().join("runs.jsonl");
    let lines = [
        r#"{"path": "lab/a", "metadata": {"seed": 12345678901234567891, "dims": [10, 10], "channels": ["R", "G", "B"], "s": {"x": 1, "y": [true]}, "label": "abc\n", "blob": "ab\u0000cd", "名前": "ü"}}"#,
        r#"{"path": "lab/b", "metadata": {"seed": 12345678901234567890, "dims": [10, 20], "channels": ["R"], "s": {"y": [true], "x": 1.0}, "label": "a\nc", "blob": "ab"}}"#,
        r#"{"path": "lab/c", "metadata": {"seed": 18446744073709551615, "dims": [], "channels": "B", "s": {"x": 2}, "label": "abc", "blob": "abx"}}"#,
        r#"{"path": "lab/d", "metadata": {"seed": 5, "dims": [10, 10.0], "channels": [["B"], "G"], "label": ""}}"#,
    ];
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    s.ok(&["ingest", jsonl.to_str().unwrap()]);
    let find = |filter: &str| ids(&s, &[filter]);
    let json = |filter: &str| ids(&s, &["--filter-json", filter]);
    // One digit apart, above 2^63: only the exact one.
    assert_eq!(find("seed == 12345678901234567891"), ["lab/a"]);
    assert_eq!(find("seed > 12345678901234567890"), ["lab/a", "lab/c"]);
    assert_eq!(find("seed >= 9223372036854775808 and seed < 18446744073709551615"), ["lab/a", "lab/b"]);
    assert_eq!(find("seed > 5.5"), ["lab/a", "lab/b", "lab/c"]);
    assert_eq!(find("seed < 1.2345678901234567e19"), ["lab/d"]);
    assert_eq!(json(r#"{"seed": 18446744073709551615}"#), ["lab/c"]);
    assert!(s.fails(&["find", "seed == 123456789012345678901234"], 1).contains("beyond 64 bits"));
    // Arrays and objects whole; integral floats equal integers inside them; key order does not matter.
    assert_eq!(find("dims == [10, 10]"), ["lab/a", "lab/d"]);
    assert_eq!(find("dims in [[], [10, 20]]"), ["lab/b", "lab/c"]);
    assert_eq!(find("dims != [10, 10]"), ["lab/b", "lab/c"]);
    assert_eq!(find("s == {'y': [true], 'x': 1}"), ["lab/a", "lab/b"]);
    assert_eq!(json(r#"{"s": {"x": 2}}"#), ["lab/c"]);
    // Membership: the text form asks explicitly; the JSON form matches a value or an element, as MongoDB does.
    assert_eq!(find("channels contains 'B'"), ["lab/a"]);
    assert_eq!(find("channels contains ['B']"), ["lab/d"]);
    assert_eq!(json(r#"{"channels": "B"}"#), ["lab/a", "lab/c"]);
    assert_eq!(json(r#"{"channels": {"$in": ["G", "Y"]}}"#), ["lab/a", "lab/d"]);
    assert_eq!(json(r#"{"channels": {"$all": ["R", "G"]}}"#), ["lab/a"]);
    assert_eq!(json(r#"{"channels": {"$ne": "R"}}"#), ["lab/c", "lab/d"]);
    assert_eq!(json(r#"{"dims": {"$elemMatch": {"$gt": 10, "$lte": 20}}}"#), ["lab/b"]);
    assert_eq!(json(r#"{"dims": {"$size": 0}}"#), ["lab/c"]);
    assert_eq!(find("size(channels) >= 2"), ["lab/a", "lab/d"]);
    // Regular expressions: `$` before a final newline, `.` not a newline, NUL a character like any other.
    assert_eq!(find("label =~ 'c$'"), ["lab/a", "lab/b", "lab/c"]);
    assert_eq!(find("label =~ '^a.c$'"), ["lab/a", "lab/c"]);
    assert_eq!(json(r#"{"label": {"$regex": "^A.C$", "$options": "is"}}"#), ["lab/a", "lab/b", "lab/c"]);
    assert_eq!(find("blob =~ 'b\\u{0}c'"), ["lab/a"]);
    assert_eq!(find("blob ~ 'ab'"), ["lab/b"]);
    assert_eq!(find("blob ~ 'ab?cd'"), ["lab/a"]);
    assert_eq!(find("名前 =~ '^ü$'"), ["lab/a"]);
    let err = s.fails(&["find", "label =~ 'a('"], 1);
    assert!(err.starts_with("error: bad regular expression"), "{err}");
}

/// The documented views are objects of the catalog file itself: any SQLite client (here a plain connection,
/// without trove's functions, as the `sqlite3` shell opens it) reads what `trove sql` reads, live rows only.
#[test]
fn the_views_are_in_the_catalog_file_for_any_sqlite_client() {
    let s = lab();
    s.ok(&["put", "lab/gone", "-m", "seed:=18446744073709551615"]);
    s.ok(&["rm", "lab/gone"]);
    s.ok(&["put", "lab/big", "-m", "seed:=12345678901234567891", "-m", "dims:=[10, 10]", "-m", "名前=ü"]);
    let table = s.file("t.csv", b"a,b\n1,x\n2,y\n");
    s.ok(&["put", "lab/table", table.to_str().unwrap()]);
    let conn = rusqlite::Connection::open_with_flags(
        s.root().join(".trove/catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    for sql in [
        "SELECT * FROM datasets ORDER BY path",
        "SELECT * FROM metadata ORDER BY path, key",
        "SELECT * FROM tags ORDER BY path, tag",
        "SELECT id, project, path, name, format, size, checksum, media_type, rows, columns, dtype, shape FROM objects",
        "SELECT * FROM projects",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let rows: Vec<Value> = stmt
            .query_map([], |row| {
                let mut obj = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    let v = match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => n.into(),
                        rusqlite::types::ValueRef::Real(x) => x.into(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                        rusqlite::types::ValueRef::Blob(_) => panic!("{sql}: a view shows no blobs ({name})"),
                    };
                    obj.insert(name.clone(), v);
                }
                Ok(Value::Object(obj))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let trove: Vec<Value> =
            s.ok(&["sql", "--json", sql]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows, trove, "{sql}");
        assert!(!rows.is_empty(), "{sql}");
    }
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM datasets"), 9, "the deleted dataset is not a row");
    let big: String = conn.query_row("SELECT value FROM metadata WHERE key = 'seed'", [], |r| r.get(0)).unwrap();
    assert_eq!(big, "12345678901234567891");
    let id: String = conn.query_row("SELECT id FROM datasets WHERE path = 'big'", [], |r| r.get(0)).unwrap();
    assert_eq!(s.show("lab/big")["id"], id.as_str());
    let created: String = conn.query_row("SELECT created FROM datasets WHERE path = 'big'", [], |r| r.get(0)).unwrap();
    assert!(created.starts_with("20") && created.ends_with('Z'), "{created}");
    let rows: i64 = conn.query_row("SELECT rows FROM objects WHERE path = 'table'", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 2);
}
