//! What the catalog tells about itself: the metadata keys in use (`trove schema`) and read-only SQL over the
//! documented views (`trove sql`), with the same views and columns as the SQLite engine's.

use postgres::types::{FromSql, Type};
use serde_json::{Value, json};
use trove_catalog::{CatalogError, KeyUsage};

use crate::apply::numeric_code;
use crate::{Pg, Result};

/// The views `trove sql` offers, documented in the README; the same names and columns as SQLite's.
pub const VIEWS: &str = r#"
CREATE FUNCTION trove_iso(micros bigint) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT to_char(to_timestamp(micros / 1e6) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Strings are kept as bytes (text cannot hold NUL): shown as text when they are, and as \x-hex otherwise.
CREATE FUNCTION trove_text(bytes bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN position('\x00'::bytea IN bytes) > 0 THEN '\x' || encode(bytes, 'hex')
               ELSE convert_from(bytes, 'UTF8') END $$;

CREATE VIEW datasets AS
SELECT id::text AS id, project, path, kind, trove_iso(created) AS created, trove_iso(updated) AS updated,
       lineage, coalesce((state::json -> 'meta')::text, '{}') AS metadata, rid
FROM dataset_rows WHERE visible;

CREATE VIEW tags AS
SELECT d.id, d.project, d.path, t.tag FROM tag_rows t JOIN datasets d ON d.rid = t.rid;

CREATE VIEW objects AS
SELECT d.id, d.project, d.path, o.name, o.format, o.size, o.checksum,
       (s.state::json -> 'objects' -> o.name ->> 'media_type') AS media_type,
       (s.state::json -> 'objects' -> o.name -> 'summary' ->> 'rows')::numeric AS rows,
       (s.state::json -> 'objects' -> o.name -> 'summary' ->> 'columns')::numeric AS columns,
       (s.state::json -> 'objects' -> o.name -> 'summary' ->> 'dtype') AS dtype,
       (s.state::json -> 'objects' -> o.name -> 'summary' -> 'shape')::text AS shape,
       (s.state::json -> 'objects' -> o.name -> 'summary')::text AS summary
FROM object_rows o JOIN datasets d ON d.rid = o.rid JOIN dataset_rows s ON s.rid = o.rid;

CREATE VIEW metadata AS
SELECT d.id, d.project, d.path, trove_text(k.key) AS key,
       CASE m.vtype WHEN 0 THEN 'null' WHEN 1 THEN 'boolean' WHEN 2 THEN 'number' WHEN 3 THEN 'string'
                    WHEN 4 THEN 'array' WHEN 5 THEN 'object' ELSE 'number' END AS type,
       CASE WHEN m.vtype = 0 THEN NULL
            WHEN m.num IS NOT NULL THEN to_json(m.num)
            ELSE to_json(trove_text(m.str)) END AS value
FROM meta m JOIN keys k ON k.kid = m.kid JOIN datasets d ON d.rid = m.rid
WHERE m.vtype < 7 AND NOT (m.vtype = 5 AND length(m.str) = 16);

CREATE VIEW projects AS
SELECT name, trove_iso(created) AS created, coalesce((state::json -> 'meta')::text, '{}') AS metadata
FROM project_rows;
"#;

/// A `numeric`'s decimal text as JSON: an integer when it is one that fits, else the nearest float.
fn number_json(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return json!(u);
    }
    text.parse::<f64>().ok().and_then(|x| serde_json::Number::from_f64(x).map(Value::Number)).unwrap_or(Value::Null)
}

/// Every metadata key in use (in `project`, or anywhere), in key order.
pub(crate) fn key_usage(pg: &Pg, project: Option<&str>) -> Result<Vec<KeyUsage>> {
    let counts: Vec<(i64, String, i64, u64)> = pg
        .query(
            "SELECT k.kid, k.key, s.vtype, sum(s.n)::int8 FROM key_stats s JOIN keys k ON k.kid = s.kid
             WHERE $1::text IS NULL OR s.project = $1 GROUP BY k.kid, k.key, s.vtype HAVING sum(s.n) > 0
             ORDER BY k.key, s.vtype",
            &[&project],
        )?
        .iter()
        .map(|r| {
            let key: Vec<u8> = r.get(1);
            let (kid, code, n): (i32, i16, i64) = (r.get(0), r.get(2), r.get(3));
            (i64::from(kid), String::from_utf8_lossy(&key).into_owned(), i64::from(code), n as u64)
        })
        .collect();
    let mut ends = |kid: i64, code: i64| -> trove_catalog::Result<Option<(Value, Value)>> {
        if !numeric_code(code) {
            return Ok(None);
        }
        let row = pg.query(
            "SELECT min(m.num)::text, max(m.num)::text FROM meta m
             WHERE m.kid = $1 AND m.vtype = $2
               AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM dataset_rows d WHERE d.rid = m.rid AND d.project = $3))",
            &[&(kid as i32), &(code as i16), &project],
        )?;
        let (low, high): (Option<String>, Option<String>) = (row[0].get(0), row[0].get(1));
        Ok(low.zip(high).map(|(a, b)| (number_json(&a), number_json(&b))))
    };
    Ok(trove_catalog::index::key_usage(counts, &mut ends)?)
}

/// A read-only connection with the documented views: what `trove sql` runs on.
pub(crate) struct PgConsole {
    pg: Pg,
}

impl PgConsole {
    pub(crate) fn new(pg: Pg) -> PgConsole {
        PgConsole { pg }
    }
}

/// Any column value, as JSON (numbers, text, booleans, `null`; bytes as hex; JSON as itself).
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell(match *ty {
            Type::BOOL => json!(bool::from_sql(ty, raw)?),
            Type::INT2 => json!(i16::from_sql(ty, raw)?),
            Type::INT4 => json!(i32::from_sql(ty, raw)?),
            Type::INT8 => json!(i64::from_sql(ty, raw)?),
            Type::OID => json!(u32::from_sql(ty, raw)?),
            Type::FLOAT4 => json!(f32::from_sql(ty, raw)?),
            Type::FLOAT8 => json!(f64::from_sql(ty, raw)?),
            Type::NUMERIC => number_json(&numeric_text(raw)?),
            Type::BYTEA => Value::String(raw.iter().map(|b| format!("{b:02x}")).collect()),
            Type::JSON => serde_json::from_slice(raw)?,
            Type::JSONB => serde_json::from_slice(raw.get(1..).unwrap_or_default())?,
            Type::UUID => Value::String(uuid::Uuid::from_slice(raw)?.to_string()),
            _ => Value::String(String::from_utf8(raw.to_vec())?),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        // Text-like types arrive as UTF-8 in binary too; others are refused by name before the query runs.
        shown(ty)
    }
}

fn shown(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::BYTEA
            | Type::JSON
            | Type::JSONB
            | Type::UUID
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
    )
}

/// The decimal text of a `numeric` in PostgreSQL's binary form (base-10000 digits).
fn numeric_text(raw: &[u8]) -> std::result::Result<String, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> std::result::Result<i16, Box<dyn std::error::Error + Sync + Send>> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("a numeric value cut short")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..ndigits as usize).map(|i| word(4 + i)).collect::<std::result::Result<_, _>>()?;
    let mut int = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int.is_empty() { int.push_str(&d.to_string()) } else { int.push_str(&format!("{d:04}")) }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let first_frac = (weight + 1).max(0) as usize;
    let leading_zero_groups = (-(weight + 1)).max(0) as usize;
    for _ in 0..leading_zero_groups {
        frac.push_str("0000");
    }
    for d in digits.iter().skip(first_frac) {
        frac.push_str(&format!("{d:04}"));
    }
    let scale = dscale.max(0) as usize;
    frac.truncate(scale);
    while frac.len() < scale {
        frac.push('0');
    }
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") })
}

impl trove_catalog::SqlConsole for PgConsole {
    fn query(&mut self, sql: &str, each: &mut trove_catalog::SqlRowSink<'_>) -> trove_catalog::Result<Vec<String>> {
        let mut client = self.pg.client()?;
        // Preparing first also refuses more than one statement in the text.
        let stmt = client.prepare(sql).map_err(|e| {
            let why = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
            CatalogError::Refused(format!("invalid SQL: {why}"))
        })?;
        let names: Vec<String> = stmt.columns().iter().map(|c| c.name().to_string()).collect();
        if let Some(column) = stmt.columns().iter().find(|c| !shown(c.type_())) {
            return Err(CatalogError::Refused(format!(
                "trove sql cannot show column {:?} of type {}: cast it to text ({}::text)",
                column.name(),
                column.type_(),
                column.name()
            )));
        }
        let mut tx = client.build_transaction().read_only(true).start().map_err(crate::Error::from)?;
        let rows = tx.query(&stmt, &[]).map_err(|e| {
            if e.code().is_some_and(|c| c.code() == "25006") {
                CatalogError::Refused(format!(
                    "trove sql runs read-only queries; this statement would change the catalog: {}",
                    sql.trim()
                ))
            } else {
                CatalogError::from(crate::Error::from(e))
            }
        })?;
        // Nothing to keep: a read-only transaction.
        tx.rollback().map_err(crate::Error::from)?;
        drop(client);
        for row in rows {
            let values = (0..names.len())
                .map(|i| row.try_get::<_, Cell>(i).map(|c| c.0))
                .collect::<std::result::Result<Vec<Value>, _>>()
                .map_err(crate::Error::from)?;
            if !each(&names, values)? {
                break;
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale].iter().chain(digits) {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_decode_to_their_decimal_text() {
        assert_eq!(numeric_text(&numeric(2, 1, 0, 0, &[1, 2345])).unwrap(), "12345");
        assert_eq!(numeric_text(&numeric(2, 0, 0x4000, 2, &[3, 1400])).unwrap(), "-3.14");
        assert_eq!(numeric_text(&numeric(1, -2, 0, 6, &[1200])).unwrap(), "0.000012");
        assert_eq!(numeric_text(&numeric(0, 0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric_text(&numeric(2, 4, 0, 0, &[1844, 6744])).unwrap(), "18446744000000000000");
        assert_eq!(number_json("18446744073709551615"), json!(18446744073709551615u64));
    }
}
