//! Filters executed over the catalog's indexes.
//!
//! Every condition of a filter (`temperature >= 300`, `@tag == "x"`, `exists(a.b)`) becomes one SQL statement
//! that reads the matching row ids from one index: a range of `meta` (key, type, value), of `tags`, of
//! `objects(format)`, or of an index on a built-in column of `datasets`. The sets are combined in memory
//! ([`RidSet`]): `and` intersects, `or` unites, and `not` is kept symbolic (a complement) until something
//! forces it, so `a and not b` is a difference and never reads every dataset. Only a filter whose answer is a
//! complement at the top (`not exists(x)`) reads the list of all datasets.
//!
//! The answers are exactly those of the reference evaluator, [`Filter::matches`]; the property test in
//! `tests/query.rs` holds the two together. The rules that make this work:
//! - index rows exist for visible datasets only, so every set is a subset of the visible datasets;
//! - a condition only ever selects rows where it is true, so SQL's `NULL` logic never enters;
//! - type mismatches are decided here, before any SQL: `x < true` is the empty set, not a query.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use trove_model::filter::{Builtin, CompareOp, Field, Filter, FilterValue};
use uuid::Uuid;

use trove_catalog::plan::{Bound, Probe, Probes, Test, successor};
use trove_catalog::{FindOptions, Matches, RidSet};

use crate::Result;
use crate::apply::vtype;

/// The text form of a dataset id (`datasets.id` is the UUID's 16 bytes), for the rare conditions that compare
/// `@id` other than by equality.
pub(crate) const ID_TEXT: &str = "lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || \
     substr(hex(id), 13, 4) || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21))";

/// A SQL condition on one column or expression, with its parameters.
struct Cond {
    sql: String,
    params: Vec<Sql>,
}

/// Executes filters on one connection.
pub(crate) struct Executor<'c> {
    pub(crate) conn: &'c Connection,
    /// Restricts every answer to one project.
    pub(crate) project: Option<&'c str>,
}

impl Executor<'_> {
    /// The datasets of the project in scope, or `None` when that restricts nothing.
    pub(crate) fn project_datasets(&self) -> Result<Option<RidSet>> {
        let Some(project) = self.project else { return Ok(None) };
        let others: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM dataset_rows WHERE visible = 1 AND project < ?1)
                 OR EXISTS (SELECT 1 FROM dataset_rows WHERE visible = 1 AND project > ?1)",
            )?
            .query_row([project], |r| r.get(0))
            .optional()?;
        if others.is_none() {
            return Ok(None);
        }
        Ok(Some(self.rids(
            "SELECT rid FROM dataset_rows WHERE visible = 1 AND project = ?1",
            &[Sql::Text(project.to_string())],
        )?))
    }

    /// Every visible dataset (of the project in scope).
    pub(crate) fn universe(&self) -> Result<RidSet> {
        match self.project {
            Some(p) => {
                self.rids("SELECT rid FROM dataset_rows WHERE visible = 1 AND project = ?1", &[Sql::Text(p.into())])
            }
            None => self.rids("SELECT rid FROM dataset_rows WHERE visible = 1", &[]),
        }
    }

    pub(crate) fn rids(&self, sql: &str, params: &[Sql]) -> Result<RidSet> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        let mut set = RidSet::new();
        while let Some(row) = rows.next()? {
            set.insert(row.get(0)?);
        }
        Ok(set)
    }

    fn exists(&self, field: &Field) -> Result<RidSet> {
        Ok(match field {
            Field::Meta(key) => {
                // The key itself (a leaf, or an empty object) or anything nested below it.
                let mut set = RidSet::new();
                for kid in self.key_ids_under(key)? {
                    set.union_with(&self.rids(
                        "SELECT rid FROM meta WHERE kid = ?1 AND vtype < ?2",
                        &[Sql::Integer(kid), Sql::Integer(vtype::VALUES_END)],
                    )?);
                }
                set
            }
            Field::Builtin(Builtin::Tag) => self.rids("SELECT rid FROM tag_rows", &[])?,
            Field::Builtin(Builtin::Format) => self.rids("SELECT rid FROM object_rows", &[])?,
            Field::Builtin(Builtin::Kind) => {
                self.rids("SELECT rid FROM dataset_rows WHERE visible = 1 AND kind IS NOT NULL", &[])?
            }
            Field::Builtin(Builtin::Lineage) => {
                self.rids("SELECT rid FROM dataset_rows WHERE visible = 1 AND lineage IS NOT NULL", &[])?
            }
            // The planner asks only of the fields a dataset may lack.
            Field::Builtin(_) => self.universe()?,
        })
    }

    fn key_id(&self, key: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT kid FROM keys WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// The ids of `key` and of every key nested below it (`key.*`).
    fn key_ids_under(&self, key: &str) -> Result<Vec<i64>> {
        // `.` is followed by `/` in byte order: [key., key/) holds exactly the nested keys.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kid FROM keys WHERE key = ?1 OR (key >= ?1 || '.' AND key < ?1 || '/')")?;
        let kids = stmt.query_map([key], |r| r.get(0))?.collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(kids)
    }

    /// One comparison or glob on one field.
    fn test(&self, field: &Field, test: Test) -> Result<RidSet> {
        Ok(match field {
            Field::Meta(key) => {
                let parts = match test {
                    Test::Cmp(op, value) => meta_parts(op, value),
                    Test::Glob(pattern) => vec![(vtype::STRING, Some(meta_glob(pattern)))],
                    Test::Regex(pattern) => vec![(
                        vtype::STRING,
                        Some(Cond { sql: "trove_regex(?3, val)".into(), params: vec![Sql::Text(pattern.into())] }),
                    )],
                };
                return self.meta_rows(key, 0, parts);
            }
            Field::Builtin(b) => {
                let Some((sql, mut cond)) = builtin_condition(*b, test) else { return Ok(RidSet::new()) };
                // Paths are indexed under their project: naming it turns a path glob into a range scan.
                if let (Builtin::Path, Some(project)) = (b, self.project) {
                    cond.params.push(Sql::Text(project.to_string()));
                    cond.sql = format!("project = ?{} AND {}", cond.params.len(), cond.sql);
                }
                self.rids(&format!("{sql} {}", cond.sql), &cond.params)?
            }
        })
    }

    /// `low <= key <= high` (bounds optional, inclusive or not) on one metadata key: one range scan per type.
    fn meta_range(&self, key: &str, low: Bound, high: Bound) -> Result<RidSet> {
        let side = |bound: Bound, inclusive_op, strict_op| {
            bound.map(|(value, inclusive)| meta_parts(if inclusive { inclusive_op } else { strict_op }, value))
        };
        let parts = match (side(low, CompareOp::Ge, CompareOp::Gt), side(high, CompareOp::Le, CompareOp::Lt)) {
            (Some(a), Some(b)) => and_parts(a, b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => vec![],
        };
        self.meta_rows(key, 0, parts)
    }

    /// The datasets with a row of `key` among `parts` (type codes raised by `offset`: elements).
    fn meta_rows(&self, key: &str, offset: i64, parts: Vec<Part>) -> Result<RidSet> {
        let mut set = RidSet::new();
        if parts.is_empty() {
            return Ok(set);
        }
        let Some(kid) = self.key_id(key)? else { return Ok(set) };
        for (code, cond) in parts {
            let mut params = vec![Sql::Integer(kid), Sql::Integer(code + offset)];
            let sql = match cond {
                None => "SELECT rid FROM meta WHERE kid = ?1 AND vtype = ?2".to_string(),
                Some(cond) => {
                    params.extend(cond.params);
                    format!("SELECT rid FROM meta WHERE kid = ?1 AND vtype = ?2 AND {}", cond.sql)
                }
            };
            set.union_with(&self.rids(&sql, &params)?);
        }
        Ok(set)
    }
}

/// Some of one key's `meta` rows: those of a type code, all of them or those meeting a condition on `val`
/// (whose parameters are numbered from 3).
type Part = (i64, Option<Cond>);

/// 2^63 as SQL text: the least `vtype::BIG` value, exactly, as a REAL.
const TWO_63: &str = "9.223372036854775808e18";

/// The rows a comparison `op value` (not `!=`) selects among one key's, by type. Numbers span two types:
/// integers above `i64::MAX` are kept apart, less 2^63, and every comparison across the two is exact.
fn meta_parts(op: CompareOp, value: &FilterValue) -> Vec<Part> {
    let lower = matches!(op, CompareOp::Gt | CompareOp::Ge);
    let upper = matches!(op, CompareOp::Lt | CompareOp::Le);
    let cmp = |code: i64, v: Sql| (code, Some(Cond { sql: format!("val {} ?3", sql_op(op)), params: vec![v] }));
    let equality = op == CompareOp::Eq;
    match value {
        FilterValue::Null if equality => vec![(vtype::NULL, None)],
        FilterValue::Bool(b) if equality => vec![cmp(vtype::BOOL, Sql::Integer(i64::from(*b)))],
        FilterValue::Null | FilterValue::Bool(_) => vec![],
        FilterValue::String(s) => vec![cmp(vtype::STRING, Sql::Text(s.clone()))],
        FilterValue::Time(t) => vec![cmp(vtype::TIME, Sql::Integer(*t))],
        FilterValue::Json(j) if equality => {
            let code = if j.is_array() { vtype::ARRAY } else { vtype::OBJECT };
            vec![cmp(code, crate::apply::whole_value_key(j))]
        }
        FilterValue::Json(_) => vec![],
        FilterValue::Int(i) => {
            let mut parts = vec![cmp(vtype::NUMBER, Sql::Integer(*i))];
            if lower {
                parts.push((vtype::BIG, None));
            }
            parts
        }
        FilterValue::Float(x) if x.is_nan() => vec![],
        FilterValue::Float(x) => {
            let mut parts = vec![cmp(vtype::NUMBER, Sql::Real(*x))];
            let two_63 = crate::apply::BIG_OFFSET as f64;
            if *x < two_63 {
                if lower {
                    parts.push((vtype::BIG, None));
                }
            } else if *x >= 2.0 * two_63 {
                if upper {
                    parts.push((vtype::BIG, None));
                }
            } else {
                // Exact: x is a multiple of 2^11 here, and so is x - 2^63.
                parts.push(cmp(vtype::BIG, Sql::Real(x - two_63)));
            }
            parts
        }
        FilterValue::UInt(u) => {
            let above_offset = Sql::Integer(u.wrapping_sub(crate::apply::BIG_OFFSET) as i64);
            // Integers and floats below 2^63 are less than u; floats from 2^63 up compare exactly after the same
            // subtraction.
            let above = format!("val >= {TWO_63} AND val - {TWO_63} {} ?3", sql_op(op));
            let number = if upper { format!("(val <= 9223372036854775807 OR ({above}))") } else { above };
            vec![
                (vtype::NUMBER, Some(Cond { sql: number, params: vec![above_offset.clone()] })),
                cmp(vtype::BIG, above_offset),
            ]
        }
    }
}

/// The rows both sides select: of the types both have, those meeting both conditions.
fn and_parts(a: Vec<Part>, mut b: Vec<Part>) -> Vec<Part> {
    let mut out = Vec::new();
    for (code, x) in a {
        let Some(at) = b.iter().position(|(c, _)| *c == code) else { continue };
        let (_, y) = b.swap_remove(at);
        out.push((
            code,
            match (x, y) {
                (None, c) | (c, None) => c,
                // Both are numbered from ?3: the second's parameters move past the first's.
                (Some(x), Some(y)) => {
                    let shift = x.params.len();
                    let mut sql_y = y.sql.clone();
                    for n in (3..3 + y.params.len()).rev() {
                        sql_y = sql_y.replace(&format!("?{n}"), &format!("?{}", n + shift));
                    }
                    let mut params = x.params;
                    params.extend(y.params);
                    Some(Cond { sql: format!("({}) AND ({sql_y})", x.sql), params })
                }
            },
        ));
    }
    out
}

/// A glob on metadata strings. SQLite's GLOB stops at a NUL in the text or the pattern: those rows are judged
/// by `trove_glob`, the filter language's own matcher.
fn meta_glob(pattern: &str) -> Cond {
    let mut cond = glob_condition("val", pattern, 3);
    let raw = 3 + cond.params.len();
    let exact = format!("trove_glob(?{raw}, val)");
    let test = if pattern.contains('\0') {
        format!("(instr(val, char(0)) > 0 AND {exact})")
    } else {
        format!("(CASE WHEN instr(val, char(0)) > 0 THEN {exact} ELSE val GLOB ?3 END)")
    };
    cond.sql = cond.sql.replacen("val GLOB ?3", &test, 1);
    cond.params.push(Sql::Text(pattern.to_string()));
    cond
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq | CompareOp::Ne => "=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    }
}

/// The statement (up to its condition) and the condition for a test on a built-in field; `None` when the
/// value's type cannot match the field's.
fn builtin_condition(field: Builtin, test: Test) -> Option<(&'static str, Cond)> {
    const DATASETS: &str = "SELECT rid FROM dataset_rows WHERE visible = 1 AND";
    let (select, column) = match field {
        Builtin::Tag => ("SELECT rid FROM tag_rows WHERE", "tag"),
        Builtin::Format => ("SELECT rid FROM object_rows WHERE", "format"),
        Builtin::Project => (DATASETS, "project"),
        Builtin::Path => (DATASETS, "path"),
        Builtin::Kind => (DATASETS, "kind"),
        Builtin::Lineage => (DATASETS, "lineage"),
        Builtin::Created | Builtin::Updated => {
            // Times, and nothing else: a time compares with a time.
            let column = if field == Builtin::Created { "created" } else { "updated" };
            return match test {
                Test::Cmp(op, FilterValue::Time(t)) => Some((
                    DATASETS,
                    Cond { sql: format!("{column} {} ?1", sql_op(op)), params: vec![Sql::Integer(*t)] },
                )),
                _ => None,
            };
        }
        Builtin::Id => {
            if let Test::Cmp(CompareOp::Eq, FilterValue::String(s)) = test {
                // Equality is a lookup in the id index; text that is not a UUID is no dataset's id.
                let id = Uuid::parse_str(s).ok().filter(|id| id.hyphenated().to_string() == *s)?;
                return Some((
                    DATASETS,
                    Cond { sql: "id = ?1".into(), params: vec![Sql::Blob(id.as_bytes().to_vec())] },
                ));
            }
            (DATASETS, ID_TEXT)
        }
    };
    let cond = match test {
        Test::Glob(pattern) => glob_condition(column, pattern, 1),
        Test::Regex(pattern) => {
            Cond { sql: format!("trove_regex(?1, {column})"), params: vec![Sql::Text(pattern.to_string())] }
        }
        Test::Cmp(op, FilterValue::String(s)) => {
            Cond { sql: format!("{column} {} ?1", sql_op(op)), params: vec![Sql::Text(s.clone())] }
        }
        // Text that is itself a timestamp compares with a time (`@kind == "2024-05-01"` is allowed, if odd).
        Test::Cmp(op, FilterValue::Time(t)) => {
            Cond { sql: format!("trove_time({column}) {} ?1", sql_op(op)), params: vec![Sql::Integer(*t)] }
        }
        Test::Cmp(..) => return None,
    };
    Some((select, cond))
}

/// `column GLOB pattern`, plus a range on the pattern's literal prefix so that an index serves it. trove's glob
/// has `*` and `?` and nothing else; SQLite's also has `[...]`, so `[` is escaped as `[[]`. Parameters are
/// numbered from `first`.
fn glob_condition(column: &str, pattern: &str, first: usize) -> Cond {
    let escaped = pattern.replace('[', "[[]");
    let mut sql = format!("{column} GLOB ?{first}");
    let mut params = vec![Sql::Text(escaped)];
    let prefix: String = pattern.chars().take_while(|c| *c != '*' && *c != '?').collect();
    if !prefix.is_empty() {
        sql.push_str(&format!(" AND {column} >= ?{}", first + 1));
        params.push(Sql::Text(prefix.clone()));
        if let Some(upper) = successor(&prefix) {
            sql.push_str(&format!(" AND {column} < ?{}", first + 2));
            params.push(Sql::Text(upper));
        }
    }
    Cond { sql, params }
}

impl Executor<'_> {
    /// Streams the first column (a row id) of `sql` into `each` until it says stop.
    fn stream(
        &self,
        sql: &str,
        params: &[Sql],
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            if !each(row.get(0)?)? {
                break;
            }
        }
        Ok(())
    }
}

impl trove_catalog::OrderedRows for Executor<'_> {
    fn key_id(&self, key: &str) -> trove_catalog::Result<Option<i64>> {
        Ok(Executor::key_id(self, key)?)
    }

    fn by_value(
        &self,
        kid: i64,
        code: i64,
        descending: bool,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        let dir = if descending { "DESC" } else { "ASC" };
        let sql = format!("SELECT rid FROM meta WHERE kid = ?1 AND vtype = ?2 ORDER BY val {dir}");
        Ok(self.stream(&sql, &[Sql::Integer(kid), Sql::Integer(code)], each)?)
    }

    fn by_column(
        &self,
        column: &'static str,
        descending: bool,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        let dir = if descending { "DESC" } else { "ASC" };
        let sql =
            format!("SELECT rid FROM dataset_rows WHERE visible = 1 AND {column} IS NOT NULL ORDER BY {column} {dir}");
        Ok(self.stream(&sql, &[], each)?)
    }

    fn locations(&self, rids: &[i64]) -> trove_catalog::Result<Vec<(String, String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT project, path FROM dataset_rows WHERE rid = ?1")
            .map_err(crate::Error::from)?;
        let mut out = Vec::with_capacity(rids.len());
        for rid in rids {
            let (project, path): (String, String) =
                stmt.query_row([rid], |r| Ok((r.get(0)?, r.get(1)?))).map_err(crate::Error::from)?;
            out.push((project, path, *rid));
        }
        Ok(out)
    }

    fn by_path(
        &self,
        project: Option<&str>,
        descending: bool,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        let dir = if descending { "DESC" } else { "ASC" };
        match project {
            Some(p) => self.stream(
                &format!("SELECT rid FROM dataset_rows WHERE visible = 1 AND project = ?1 ORDER BY path {dir}"),
                &[Sql::Text(p.to_string())],
                each,
            )?,
            None => self.stream(
                &format!("SELECT rid FROM dataset_rows WHERE visible = 1 ORDER BY project {dir}, path {dir}"),
                &[],
                each,
            )?,
        }
        Ok(())
    }
}

impl Probes for Executor<'_> {
    fn probe(&self, probe: Probe<'_>, _project: Option<&str>) -> trove_catalog::Result<RidSet> {
        Ok(match probe {
            Probe::Exists(field) => self.exists(field)?,
            Probe::Test(field, test) => self.test(field, test)?,
            Probe::Range { key, low, high } => self.meta_range(key, low, high)?,
            Probe::Element { key, conds } => {
                let parts = match conds {
                    [(op, v)] => meta_parts(*op, v),
                    [(a, x), (b, y)] => and_parts(meta_parts(*a, x), meta_parts(*b, y)),
                    _ => vec![],
                };
                self.meta_rows(key, vtype::ELEMENT, parts)?
            }
            Probe::Size { key, op, len } => {
                let op = if op == CompareOp::Ne { "<>" } else { sql_op(op) };
                let cond = Cond {
                    sql: format!("val {op} ?"),
                    params: vec![Sql::Integer(i64::try_from(len).unwrap_or(i64::MAX))],
                };
                self.meta_rows(key, 0, vec![(vtype::SIZE, Some(cond))])?
            }
        })
    }

    fn project_datasets(&self, project: &str) -> trove_catalog::Result<Option<RidSet>> {
        Ok(Executor { conn: self.conn, project: Some(project) }.project_datasets()?)
    }
}

impl<'c> crate::read::Queries<'c> {
    fn executor<'a>(&'a self, project: Option<&'a str>) -> Executor<'a> {
        Executor { conn: self.conn, project }
    }

    /// The row ids of the visible datasets (of `project`, when given) that match `filter`.
    pub(crate) fn matching(&self, filter: &Filter, project: Option<&str>) -> trove_catalog::Result<Matches> {
        trove_catalog::plan::evaluate(&self.executor(project), filter, project)
    }

    /// Every visible dataset (of `project`, when given).
    pub(crate) fn universe(&self, project: Option<&str>) -> Result<RidSet> {
        self.executor(project).universe()
    }

    /// Calls `each` with the row ids of `set` in the order and window `options` ask for.
    pub(crate) fn in_order(
        &self,
        set: &Matches,
        options: &FindOptions,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        trove_catalog::ordered(&self.executor(options.project.as_deref()), set, options, each)
    }

    /// The datasets in these rows, in the order given.
    pub(crate) fn datasets_by_rids(&self, rids: &[i64]) -> Result<Vec<trove_catalog::DatasetRow>> {
        let mut stmt = self.conn.prepare_cached("SELECT rid, visible, state FROM dataset_rows WHERE rid = ?1")?;
        let mut out = Vec::with_capacity(rids.len());
        for rid in rids {
            if let Some(row) = stmt.query_row([rid], Self::row).optional()? {
                out.push(Self::to_row(row)?);
            }
        }
        Ok(out)
    }

    /// The project and path of the dataset in row `rid`, without reading its state.
    pub(crate) fn location_by_rid(&self, rid: i64) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT project, path FROM dataset_rows WHERE rid = ?1 AND project IS NOT NULL")?
            .query_row([rid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escapes_brackets() {
        let c = glob_condition("val", "a[1]*", 3);
        assert_eq!(c.sql, "val GLOB ?3 AND val >= ?4 AND val < ?5");
        assert_eq!(c.params[0], Sql::Text("a[[]1]*".into()));
    }
}
