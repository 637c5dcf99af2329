//! The catalog's tables. Everything here can be rebuilt from the log; see ARCHITECTURE.md.

/// Bumped whenever the tables change; an older catalog is rebuilt from the log.
pub const SCHEMA_VERSION: i64 = 2;

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Log segments already merged into this catalog.
CREATE TABLE IF NOT EXISTS applied (
    segment TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS projects (
    name    TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    state   TEXT NOT NULL          -- ProjectState as JSON (metadata and stamps)
) WITHOUT ROWID;

-- One row per dataset id ever seen, live or deleted (deleted rows keep their tombstones).
CREATE TABLE IF NOT EXISTS datasets (
    rid     INTEGER PRIMARY KEY,
    id      BLOB NOT NULL UNIQUE,  -- the UUID's 16 bytes
    project TEXT,
    path    TEXT,
    kind    TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    alive   INTEGER NOT NULL,
    -- A live dataset is visible unless a later claim on its path hides it (see apply.rs).
    visible INTEGER NOT NULL,
    state   TEXT NOT NULL          -- DatasetState as JSON: the merged registers
);
CREATE UNIQUE INDEX IF NOT EXISTS datasets_at ON datasets(project, path) WHERE visible = 1;
CREATE INDEX IF NOT EXISTS datasets_hidden ON datasets(project, path) WHERE alive = 1 AND visible = 0;

-- Index rows exist for visible datasets only.
CREATE TABLE IF NOT EXISTS tags (
    rid INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (rid, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_tag ON tags(tag, rid);

CREATE TABLE IF NOT EXISTS objects (
    rid      INTEGER NOT NULL,
    name     TEXT NOT NULL,
    format   TEXT NOT NULL,
    size     INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    PRIMARY KEY (rid, name)
) WITHOUT ROWID;

-- Every leaf of every visible dataset's metadata, by dotted key, typed for indexed comparison.
-- vtype: 0 null, 1 boolean (num 0/1), 2 number, 3 string, 4 array (txt holds its JSON), 5 empty object.
CREATE TABLE IF NOT EXISTS meta (
    rid   INTEGER NOT NULL,
    key   TEXT NOT NULL,
    vtype INTEGER NOT NULL,
    num   REAL,
    txt   TEXT,
    PRIMARY KEY (rid, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS meta_num ON meta(key, num) WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS meta_txt ON meta(key, txt) WHERE txt IS NOT NULL;
"#;
