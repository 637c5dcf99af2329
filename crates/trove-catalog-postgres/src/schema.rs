//! The catalog's tables in PostgreSQL. Everything here can be rebuilt from the log; see ARCHITECTURE.md.
//!
//! The shape follows the SQLite engine's (one row per dataset holding its merged state; index rows for
//! visible datasets only; metadata by key id, type code and value), with PostgreSQL's types: text compares
//! in byte order (`COLLATE "C"`, as SQLite does), metadata strings and keys are `bytea` (PostgreSQL text
//! cannot hold NUL), and every number is one exact `numeric`, so integers past 2^63 and floats compare
//! exactly without SQLite's split into two types.

use crate::{Pg, Result, WRITE_LOCK};

/// Bumped whenever the tables change; an older catalog is rebuilt from the log.
pub const SCHEMA_VERSION: i64 = 1;

const TABLES: &str = r#"
CREATE TABLE info (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Log segments already merged into this catalog (by any machine).
CREATE TABLE applied (
    segment text PRIMARY KEY
);

CREATE TABLE project_rows (
    name    text COLLATE "C" PRIMARY KEY,
    created bigint NOT NULL,
    updated bigint NOT NULL,
    state   text NOT NULL
);

-- One row per dataset id ever seen, live or deleted.
CREATE TABLE dataset_rows (
    rid     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      uuid NOT NULL UNIQUE,
    project text COLLATE "C",
    path    text COLLATE "C",
    kind    text COLLATE "C",
    lineage text COLLATE "C",
    lineage_name text COLLATE "C",
    created bigint NOT NULL,
    updated bigint NOT NULL,
    alive   boolean NOT NULL,
    -- A live dataset is visible unless a later claim on its path hides it.
    visible boolean NOT NULL,
    state   text NOT NULL
);
CREATE UNIQUE INDEX datasets_at ON dataset_rows(project, path) WHERE visible;
CREATE INDEX datasets_hidden ON dataset_rows(project, path) WHERE alive AND NOT visible;
CREATE INDEX datasets_kind ON dataset_rows(kind) WHERE visible AND kind IS NOT NULL;
CREATE INDEX datasets_created ON dataset_rows(created) WHERE visible;
CREATE INDEX datasets_updated ON dataset_rows(updated) WHERE visible;
CREATE INDEX datasets_lineage ON dataset_rows(lineage) WHERE visible AND lineage IS NOT NULL;
CREATE INDEX datasets_lineage_name ON dataset_rows(lineage_name, lineage) WHERE visible AND lineage_name IS NOT NULL;

CREATE TABLE tag_rows (
    tag text COLLATE "C" NOT NULL,
    rid bigint NOT NULL,
    PRIMARY KEY (tag, rid)
);
CREATE INDEX tags_rid ON tag_rows(rid);

CREATE TABLE object_rows (
    rid      bigint NOT NULL,
    name     text COLLATE "C" NOT NULL,
    format   text COLLATE "C" NOT NULL,
    size     bigint NOT NULL,
    checksum text NOT NULL,
    PRIMARY KEY (rid, name)
);
CREATE INDEX objects_format ON object_rows(format);

CREATE TABLE keys (
    kid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key bytea NOT NULL UNIQUE
);

-- Every leaf of every visible dataset's metadata, by key, typed for indexed comparison. Numbers, booleans
-- (0/1), times (microseconds), nulls (0) and lengths are in `num`; strings, arrays (canonical JSON) and
-- objects (their hash; the empty one as '{}') in `str`.
CREATE TABLE meta (
    kid   integer NOT NULL,
    vtype smallint NOT NULL,
    num   numeric,
    str   bytea,
    rid   bigint NOT NULL
);
CREATE INDEX meta_value ON meta (kid, vtype, num, str, rid);
CREATE INDEX meta_rid ON meta (rid);

CREATE TABLE key_stats (
    project text COLLATE "C" NOT NULL,
    kid     integer NOT NULL,
    vtype   smallint NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (project, kid, vtype)
);

CREATE TABLE scan_files (
    key      text PRIMARY KEY,
    size     bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    ino      bigint NOT NULL,
    checksum text NOT NULL
);
"#;

/// Creates the tables and views (or rebuilds them for another schema version) and checks that the catalog
/// belongs to `store_id`, claiming it when it belongs to none. Openers wait for each other on the write lock.
pub(crate) fn set_up(pg: &Pg, store_id: &str, url: &str) -> trove_catalog::Result<()> {
    // The common case, in one round trip and no lock: the tables are there, of this version, for this store.
    let current = pg
        .query(
            "SELECT (SELECT value FROM trove.info WHERE key = 'schema_version'),
                    (SELECT value FROM trove.info WHERE key = 'store')",
            &[],
        )
        .ok()
        .and_then(|rows| rows.first().map(|r| (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1))));
    if let Some((Some(version), Some(store))) = current
        && version == SCHEMA_VERSION.to_string()
        && store == store_id
    {
        return Ok(());
    }
    let outcome = set_up_locked(pg, store_id);
    // Tables may have been made again: statements prepared before refer to the old ones.
    pg.forget_statements();
    outcome.map_err(trove_catalog::CatalogError::from).and_then(|found| match found {
        Some(other) if other != store_id => Err(trove_catalog::CatalogError::Refused(format!(
            "the catalog at {} belongs to another store (id {other}, this store is {store_id}): give each store \
             a database of its own",
            crate::redacted(url)
        ))),
        _ => Ok(()),
    })
}

/// Returns the store id recorded in the catalog before this call; nothing is changed when it is another's.
fn set_up_locked(pg: &Pg, store_id: &str) -> Result<Option<String>> {
    pg.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK}); CREATE SCHEMA IF NOT EXISTS trove;"))?;
    let result = (|| -> Result<Option<String>> {
        let has_tables: bool = pg.query("SELECT to_regclass('trove.info') IS NOT NULL", &[])?[0].get(0);
        let (version, previous_store): (Option<String>, Option<String>) = if has_tables {
            let get = |key: &str| -> Result<Option<String>> {
                Ok(pg.query_opt("SELECT value FROM trove.info WHERE key = $1", &[&key])?.map(|r| r.get(0)))
            };
            (get("schema_version")?, get("store")?)
        } else {
            (None, None)
        };
        if previous_store.as_deref().is_some_and(|s| s != store_id) {
            return Ok(previous_store);
        }
        let current = SCHEMA_VERSION.to_string();
        if version.as_deref() != Some(current.as_str()) {
            // Another version's tables (or none): the catalog is disposable, and is rebuilt from the log.
            pg.batch(&format!(
                "DROP SCHEMA trove CASCADE; CREATE SCHEMA trove; SET LOCAL search_path = trove; {TABLES} {}",
                crate::console::VIEWS
            ))?;
            pg.execute("INSERT INTO trove.info(key, value) VALUES ('schema_version', $1)", &[&current])?;
        }
        pg.execute(
            "INSERT INTO trove.info(key, value) VALUES ('store', $1) ON CONFLICT (key) DO NOTHING",
            &[&store_id],
        )?;
        Ok(previous_store)
    })();
    match result {
        Ok(found) if found.as_deref().is_none_or(|f| f == store_id) => {
            pg.batch("COMMIT")?;
            Ok(found)
        }
        Ok(found) => {
            pg.batch("ROLLBACK")?;
            Ok(found)
        }
        Err(e) => {
            let _ = pg.batch("ROLLBACK");
            Err(e)
        }
    }
}
