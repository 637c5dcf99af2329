//! The catalog conformance suite (`trove_catalog::conformance`) on SQLite: in memory, and in a file.

fn in_memory() -> Option<trove_catalog::Catalog> {
    Some(trove_catalog_sqlite::open_in_memory().expect("an in-memory catalog"))
}

mod memory {
    trove_catalog::conformance_tests!(super::in_memory);
}

fn in_a_file() -> Option<trove_catalog::Catalog> {
    // Each catalog lives in its own folder, kept until the process ends (tests open many small ones).
    let dir = tempfile::tempdir().expect("a temporary folder").keep();
    Some(trove_catalog_sqlite::open(&dir.join("catalog.sqlite")).expect("a catalog file"))
}

mod file {
    trove_catalog::conformance_tests!(super::in_a_file);
}
