//! The catalog's tables. Everything here can be rebuilt from the log; see ARCHITECTURE.md.

/// Bumped whenever the tables change; an older catalog is rebuilt from the log.
pub const SCHEMA_VERSION: i64 = 10;

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Log segments already merged into this catalog.
CREATE TABLE IF NOT EXISTS applied (
    segment TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS project_rows (
    name    TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    state   TEXT NOT NULL          -- ProjectState as JSON (metadata and stamps)
) WITHOUT ROWID;

-- One row per dataset id ever seen, live or deleted (deleted rows keep their tombstones).
CREATE TABLE IF NOT EXISTS dataset_rows (
    rid     INTEGER PRIMARY KEY,
    id      BLOB NOT NULL UNIQUE,  -- the UUID's 16 bytes
    project TEXT,
    path    TEXT,
    kind    TEXT,
    lineage TEXT,                  -- the lineage key, when the dataset derives from others
    lineage_name TEXT,             -- the lineage's name (what was computed), for `find --lineage-name`
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    alive   INTEGER NOT NULL,
    -- A live dataset is visible unless a later claim on its path hides it (see apply.rs).
    visible INTEGER NOT NULL,
    state   TEXT NOT NULL          -- DatasetState as JSON: the merged registers
);
CREATE UNIQUE INDEX IF NOT EXISTS datasets_at ON dataset_rows(project, path) WHERE visible = 1;
CREATE INDEX IF NOT EXISTS datasets_hidden ON dataset_rows(project, path) WHERE alive = 1 AND visible = 0;
-- Built-in fields that filters compare (`@kind`, `@created`, `@updated`, `@lineage`), for visible datasets only.
CREATE INDEX IF NOT EXISTS datasets_kind ON dataset_rows(kind) WHERE visible = 1 AND kind IS NOT NULL;
CREATE INDEX IF NOT EXISTS datasets_created ON dataset_rows(created) WHERE visible = 1;
CREATE INDEX IF NOT EXISTS datasets_updated ON dataset_rows(updated) WHERE visible = 1;
CREATE INDEX IF NOT EXISTS datasets_lineage ON dataset_rows(lineage) WHERE visible = 1 AND lineage IS NOT NULL;
CREATE INDEX IF NOT EXISTS datasets_lineage_name ON dataset_rows(lineage_name, lineage)
    WHERE visible = 1 AND lineage_name IS NOT NULL;

-- Index rows exist for visible datasets only. Each table is one B-tree, keyed for its queries: a row
-- costs one B-tree insert, and a dataset's rows are found for deletion from its own (old) state.
CREATE TABLE IF NOT EXISTS tag_rows (
    tag TEXT NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (tag, rid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS object_rows (
    rid      INTEGER NOT NULL,
    name     TEXT NOT NULL,
    format   TEXT NOT NULL,
    size     INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    PRIMARY KEY (rid, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_format ON object_rows(format);

-- Metadata keys (dotted paths), each stored once: index rows compare small integers, not key strings.
CREATE TABLE IF NOT EXISTS keys (
    kid INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE
);

-- Every leaf of every visible dataset's metadata, by key, typed for indexed comparison:
-- `kid = ? AND vtype = 2 AND val BETWEEN ? AND ?` is one range scan.
-- vtype: 0 null (val 0), 1 boolean (val 0/1), 2 number (val INTEGER or REAL), 3 string (val TEXT),
-- 4 array (val: its JSON), 5 empty object (val ''), and 6 time: a string leaf that is an ISO-8601 timestamp
-- gets this second row (val: microseconds since the epoch), so that times compare as times.
CREATE TABLE IF NOT EXISTS meta (
    kid   INTEGER NOT NULL,
    vtype INTEGER NOT NULL,
    -- BLOB: no type affinity. (A column declared ANY gets NUMERIC affinity outside STRICT tables, which
    -- turned the text '42' into the number 42 and compared the glob bound '2024.' as a number.)
    val   BLOB NOT NULL,
    rid   INTEGER NOT NULL,
    PRIMARY KEY (kid, vtype, val, rid)
) WITHOUT ROWID;

-- How many leaves of each key and type each project's visible datasets hold, kept as rows are indexed and
-- removed, so that `trove schema` answers without reading the metadata.
CREATE TABLE IF NOT EXISTS key_stats (
    project TEXT NOT NULL,
    kid     INTEGER NOT NULL,
    vtype   INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (project, kid, vtype)
) WITHOUT ROWID;

-- What `trove sync --scan` last found in each data file (path relative to the root): a file whose size,
-- modification time (ns) and inode are unchanged keeps its checksum and is not hashed again.
CREATE TABLE IF NOT EXISTS scan_files (
    key      TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino      INTEGER NOT NULL,
    checksum TEXT NOT NULL
) WITHOUT ROWID;
"#;
