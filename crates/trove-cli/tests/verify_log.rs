//! `trove verify` and `trove log`, through the real binary: damage of every kind is found and named
//! (`REF:OBJ`, the file inside a folder object, expected and found checksums), the exit code says whether
//! anything is damaged, a REF narrows the check, and `log` prints a dataset's history for people and as JSON.

mod common;

use std::path::Path;

use common::TestStore;
use serde_json::Value;

fn checksum(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

/// Flips one bit of the byte at `at`: same size, other bytes.
fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Lines of `trove verify --json`: the damaged objects, then the summary.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A store with a file object in lab/a, another in lab/b, and a folder object in lab/c.
fn store() -> (TestStore, Vec<u8>) {
    let t = TestStore::new();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let data = t.file("v.bin", &content);
    t.ok(&["put", "lab/a", data.to_str().unwrap()]);
    let other = t.file("w.bin", b"other data\n");
    t.ok(&["put", "lab/b", other.to_str().unwrap()]);
    let folder = t.inputs.path().join("frames");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    std::fs::write(folder.join("one.txt"), b"frame one\n").unwrap();
    std::fs::write(folder.join("sub/two.txt"), b"frame two\n").unwrap();
    t.ok(&["put", "lab/c", folder.to_str().unwrap()]);
    (t, content)
}

#[test]
fn a_clean_store_verifies_with_exit_code_0() {
    let (t, content) = store();
    let out = t.ok(&["verify"]);
    let total = content.len() + "other data\n".len() + 2 * "frame one\n".len();
    assert!(out.starts_with("verified 3 objects ("), "{out}");
    assert!(out.trim_end().ends_with(": 0 damaged"), "{out}");
    assert!(!out.contains("damaged:"), "{out}");
    let lines = json_lines(&t.ok(&["verify", "--all", "--json"]));
    assert_eq!(lines.len(), 1);
    let summary = &lines[0]["summary"];
    assert_eq!(summary["clean"], true);
    assert_eq!((summary["objects"].as_u64(), summary["files"].as_u64()), (Some(3), Some(4)));
    assert_eq!(summary["bytes"].as_u64(), Some(total as u64));
    // REF and --all together make no sense.
    t.fails(&["verify", "lab", "--all"], 2);
}

#[test]
fn a_flipped_byte_in_a_file_object_is_a_checksum_mismatch() {
    let (t, content) = store();
    let file = t.root().join("lab/a/v.bin");
    flip_byte(&file, 123_456);
    assert_eq!(std::fs::metadata(&file).unwrap().len() as usize, content.len(), "same size: the hash must catch it");
    let out = t.cmd(&["verify", "--all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let damaged: Vec<&str> = stdout.lines().filter(|l| l.starts_with("damaged:")).collect();
    let mut flipped = content.clone();
    flipped[123_456] ^= 0x01;
    let abs = std::fs::canonicalize(&file).unwrap();
    assert_eq!(
        damaged,
        [format!(
            "damaged: lab/a:v.bin: checksum mismatch (expected {}, found {}) at {}",
            checksum(&content),
            checksum(&flipped),
            abs.display()
        )]
    );
    assert!(stdout.trim_end().ends_with(": 1 damaged"), "{stdout}");
    assert!(stderr.starts_with("error: 1 damaged object (of 3 verified)"), "{stderr}");

    let lines = json_lines(&String::from_utf8(t.cmd(&["verify", "--json"]).output().unwrap().stdout).unwrap());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["reference"], "lab/a:v.bin");
    assert_eq!(lines[0]["damage"][0]["kind"], "checksum-mismatch");
    assert_eq!(lines[0]["damage"][0]["found"], checksum(&flipped));
    assert_eq!(lines[0]["found"], checksum(&flipped));
    assert_eq!(lines[1]["summary"]["damaged"], 1);

    // A REF narrows the check: the other datasets are clean; the damaged one, or its object, is not.
    let out = t.ok(&["verify", "lab/b"]);
    assert!(out.starts_with("verified 1 object ") && out.trim_end().ends_with(": 0 damaged"), "{out}");
    t.ok(&["verify", "lab/c"]);
    t.fails(&["verify", "lab/a:v.bin"], 1);
    t.fails(&["verify", "lab"], 1);
    let e = t.fails(&["verify", "lab/nothing"], 1);
    assert!(e.contains("lab/nothing") && e.contains("not found"), "{e}");
}

#[test]
fn damage_inside_a_folder_object_names_the_object_and_the_file() {
    let (t, _) = store();
    let folder = t.root().join("lab/c/frames");
    flip_byte(&folder.join("sub/two.txt"), 3);
    std::fs::write(folder.join("stray.txt"), b"not listed").unwrap();
    let out = t.cmd(&["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let damaged: Vec<&str> = stdout.lines().filter(|l| l.starts_with("damaged:")).collect();
    assert_eq!(damaged.len(), 2, "{stdout}");
    assert!(damaged[0].starts_with("damaged: lab/c:frames: extra file stray.txt, not in the manifest"), "{stdout}");
    assert!(
        damaged[1].starts_with(&format!(
            "damaged: lab/c:frames: file sub/two.txt changed: checksum mismatch (expected {}",
            checksum(b"frame two\n")
        )),
        "{stdout}"
    );
    assert!(damaged[1].ends_with("/lab/c/frames/sub/two.txt"), "{stdout}");
    assert!(stdout.trim_end().ends_with(": 1 damaged"), "{stdout}");
    // A file of the folder removed.
    std::fs::remove_file(folder.join("one.txt")).unwrap();
    let stdout = String::from_utf8(t.cmd(&["verify", "lab/c"]).output().unwrap().stdout).unwrap();
    assert!(stdout.contains("damaged: lab/c:frames: file one.txt missing (expected 10 bytes"), "{stdout}");
}

#[test]
fn a_missing_or_resized_object_file_is_reported_as_such() {
    let (t, content) = store();
    std::fs::remove_file(t.root().join("lab/a/v.bin")).unwrap();
    let mut longer = b"other data\n".to_vec();
    longer.push(b'!');
    std::fs::write(t.root().join("lab/b/w.bin"), &longer).unwrap();
    let out = t.cmd(&["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "damaged: lab/a:v.bin: missing (expected {} bytes, {})",
            content.len(),
            checksum(&content)
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "damaged: lab/b:w.bin: size mismatch (expected 11 bytes, {}; found 12 bytes, {})",
            checksum(b"other data\n"),
            checksum(&longer)
        )),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(": 2 damaged"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: 2 damaged objects"), "{stderr}");
}

#[test]
fn log_shows_a_datasets_history() {
    let t = TestStore::new();
    let data = t.file("v.csv", b"a,b\n1,2\n");
    t.ok(&["put", "lab/r1", data.to_str().unwrap(), "-m", "temperature=300", "-t", "raw"]);
    t.ok(&["meta", "set", "lab/r1", "temperature=305"]);
    t.ok(&["tag", "rm", "lab/r1", "raw"]);
    t.ok(&["mv", "lab/r1", "lab/r2"]);

    let out = t.ok(&["log", "lab/r2"]);
    let blocks: Vec<&str> = out.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 4, "{out}");
    let header = blocks[0].lines().next().unwrap();
    assert!(header.contains("  put  ") && header.contains(" pid ") && header.contains(", writer "), "{header}");
    assert!(header.ends_with(".commit.jsonl]"), "{header}");
    fn body(block: &str) -> Vec<&str> {
        block.lines().skip(1).map(str::trim).collect()
    }
    assert_eq!(
        body(blocks[0]),
        [
            "created at lab/r1",
            "set temperature = 300",
            "tag +raw",
            &format!("object v.csv put (csv, 8 bytes, {})", checksum(b"a,b\n1,2\n")),
        ]
    );
    assert_eq!(body(blocks[1]), ["set temperature = 305"]);
    assert_eq!(body(blocks[2]), ["tag -raw"]);
    assert_eq!(body(blocks[3]), ["moved to lab/r2"]);

    let entries = json_lines(&t.ok(&["log", "lab/r2", "--json"]));
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["op"], "put");
    assert_eq!(entries[0]["changes"][1]["change"], "set");
    assert_eq!(entries[0]["changes"][1]["superseded"], true);
    assert!(entries[1]["changes"][0].get("superseded").is_none());
    assert_eq!(entries[3]["changes"][0]["to"], "lab/r2");
    assert!(
        entries.iter().all(|e| e["dataset"] == entries[0]["dataset"] && e["time"].as_str().unwrap().ends_with('Z'))
    );

    // Removed, its history is still there; compacted, a checkpoint stands for it.
    t.ok(&["rm", "lab/r2"]);
    t.ok(&["compact", "--full"]);
    let out = t.ok(&["log", "lab/r2"]);
    assert!(out.contains("(merged state from a checkpoint (compaction: earlier history is summarised))"), "{out}");
    assert!(out.contains("\n  deleted\n"), "{out}");
    let e = t.fails(&["log", "lab"], 1);
    assert!(e.contains("names a project"), "{e}");
}
