//! Filter conditions answered from PostgreSQL's indexes (the planning is shared: `trove_catalog::plan`),
//! and the ordered walk of results.
//!
//! Numbers are compared as exact `numeric`s (floats by their exact decimal value), strings and keys as bytes:
//! the order SQLite and the reference evaluator use. Globs read the range of their literal prefix and
//! regular expressions the key's strings, and both are judged by the filter language's own matchers, so
//! their answers never depend on PostgreSQL's pattern dialects.

use postgres::types::ToSql;
use trove_catalog::RidSet;
use trove_catalog::index::{vtype, whole_value_bytes};
use trove_catalog::plan::{Bound, Probe, Probes, Test, glob_prefix, successor};
use trove_model::filter::{Builtin, CompareOp, Field, FilterValue, compile_regex, glob_matches, parse_timestamp};

use crate::apply::{exact_decimal, numeric_code};
use crate::{Pg, Result};

/// A value to compare a column with.
#[derive(Clone, Debug)]
enum Val {
    Num(String),
    Bytes(Vec<u8>),
}

/// Some of one key's index rows: those of one type code meeting every condition.
#[derive(Clone, Debug)]
struct Part {
    code: i64,
    conds: Vec<(&'static str, Val)>,
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    }
}

/// The rows a comparison `op value` (not `!=`) selects among one key's, by type.
fn meta_parts(op: CompareOp, value: &FilterValue) -> Vec<Part> {
    let equality = op == CompareOp::Eq;
    let one = |code: i64, v: Val| vec![Part { code, conds: vec![(sql_op(op), v)] }];
    match value {
        FilterValue::Null if equality => vec![Part { code: vtype::NULL, conds: vec![] }],
        FilterValue::Bool(b) if equality => one(vtype::BOOL, Val::Num(if *b { "1" } else { "0" }.into())),
        FilterValue::Null | FilterValue::Bool(_) => vec![],
        FilterValue::String(s) => one(vtype::STRING, Val::Bytes(s.as_bytes().to_vec())),
        FilterValue::Time(t) => one(vtype::TIME, Val::Num(t.to_string())),
        FilterValue::Json(j) if equality => {
            let code = if j.is_array() { vtype::ARRAY } else { vtype::OBJECT };
            let bytes = match whole_value_bytes(j) {
                Ok(hash) => hash.to_vec(),
                Err(text) => text.into_bytes(),
            };
            one(code, Val::Bytes(bytes))
        }
        FilterValue::Json(_) => vec![],
        FilterValue::Int(i) => one(vtype::NUMBER, Val::Num(i.to_string())),
        FilterValue::UInt(u) => one(vtype::NUMBER, Val::Num(u.to_string())),
        FilterValue::Float(x) if x.is_nan() => vec![],
        FilterValue::Float(x) => one(vtype::NUMBER, Val::Num(exact_decimal(*x))),
    }
}

/// The rows both sides select: of the types both have, those meeting both conditions.
fn and_parts(a: Vec<Part>, mut b: Vec<Part>) -> Vec<Part> {
    let mut out = Vec::new();
    for mut x in a {
        let Some(at) = b.iter().position(|y| y.code == x.code) else { continue };
        x.conds.extend(b.swap_remove(at).conds);
        out.push(x);
    }
    out
}

impl Pg {
    fn kid(&self, key: &str) -> Result<Option<i32>> {
        Ok(self.query_opt("SELECT kid FROM keys WHERE key = $1", &[&key.as_bytes()])?.map(|r| r.get(0)))
    }

    /// The datasets with a row of `key` among `parts` (type codes raised by `offset`: elements).
    fn meta_rows(&self, key: &str, offset: i64, parts: Vec<Part>) -> Result<RidSet> {
        let mut set = RidSet::new();
        if parts.is_empty() {
            return Ok(set);
        }
        let Some(kid) = self.kid(key)? else { return Ok(set) };
        for part in parts {
            let code = (part.code + offset) as i16;
            // Rows keep their value in `num` or in `str`, the other NULL: naming which lets the B-tree
            // `(kid, vtype, num, str, rid)` seek straight to a string (`num IS NULL` is an index condition).
            let mut sql = String::from(if numeric_code(part.code + offset) {
                "SELECT rid FROM meta WHERE kid = $1 AND vtype = $2"
            } else {
                "SELECT rid FROM meta WHERE kid = $1 AND vtype = $2 AND num IS NULL"
            });
            let mut nums: Vec<String> = Vec::new();
            let mut bytes: Vec<Vec<u8>> = Vec::new();
            let mut order: Vec<bool> = Vec::new();
            for (i, (op, val)) in part.conds.iter().enumerate() {
                let n = i + 3;
                match val {
                    Val::Num(v) => {
                        sql.push_str(&format!(" AND num {op} (${n}::text)::numeric"));
                        nums.push(v.clone());
                        order.push(true);
                    }
                    Val::Bytes(v) => {
                        sql.push_str(&format!(" AND str {op} ${n}::bytea"));
                        bytes.push(v.clone());
                        order.push(false);
                    }
                }
            }
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&kid, &code];
            let (mut ni, mut bi) = (0, 0);
            for is_num in &order {
                if *is_num {
                    params.push(&nums[ni]);
                    ni += 1;
                } else {
                    params.push(&bytes[bi]);
                    bi += 1;
                }
            }
            set.union_with(&self.rid_set(&sql, &params)?);
        }
        Ok(set)
    }

    /// The strings of `key` (of one type code) in a byte range, with their rows, judged by `keep`.
    fn meta_strings(
        &self,
        key: &str,
        range: (Option<Vec<u8>>, Option<Vec<u8>>),
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<RidSet> {
        let mut set = RidSet::new();
        let Some(kid) = self.kid(key)? else { return Ok(set) };
        let code = vtype::STRING as i16;
        let rows = self.query(
            "SELECT rid, str FROM meta WHERE kid = $1 AND vtype = $2 AND num IS NULL AND ($3::bytea IS NULL OR str >= $3)
             AND ($4::bytea IS NULL OR str < $4)",
            &[&kid, &code, &range.0, &range.1],
        )?;
        for r in rows {
            let text: &[u8] = r.get(1);
            if std::str::from_utf8(text).is_ok_and(keep) {
                set.insert(r.get(0));
            }
        }
        Ok(set)
    }

    fn exists(&self, field: &Field) -> Result<RidSet> {
        match field {
            Field::Meta(key) => {
                // The key itself (a leaf, or an empty object) or anything nested below it: `.` is followed by `/`
                // in byte order, so [key., key/) holds exactly the nested keys.
                let kids: Vec<i32> = self
                    .query(
                        "SELECT kid FROM keys WHERE key = $1 OR (key >= $2 AND key < $3)",
                        &[&key.as_bytes(), &format!("{key}.").into_bytes(), &format!("{key}/").into_bytes()],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let end = vtype::VALUES_END as i16;
                self.rids("SELECT rid FROM meta WHERE kid = ANY($1) AND vtype < $2", &[&kids, &end])
            }
            Field::Builtin(Builtin::Tag) => self.rids("SELECT rid FROM tag_rows", &[]),
            Field::Builtin(Builtin::Format) => self.rids("SELECT rid FROM object_rows", &[]),
            Field::Builtin(Builtin::Kind) => {
                self.rids("SELECT rid FROM dataset_rows WHERE visible AND kind IS NOT NULL", &[])
            }
            Field::Builtin(Builtin::Lineage) => {
                self.rids("SELECT rid FROM dataset_rows WHERE visible AND lineage IS NOT NULL", &[])
            }
            Field::Builtin(_) => self.universe_of(None),
        }
    }

    fn rids(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<RidSet> {
        self.rid_set(sql, params)
    }

    fn test(&self, field: &Field, test: Test<'_>, project: Option<&str>) -> Result<RidSet> {
        let b = match field {
            Field::Meta(key) => {
                return match test {
                    Test::Cmp(op, value) => self.meta_rows(key, 0, meta_parts(op, value)),
                    Test::Glob(pattern) => {
                        let prefix = glob_prefix(pattern);
                        let range = if prefix.is_empty() {
                            (None, None)
                        } else {
                            (Some(prefix.clone().into_bytes()), successor(&prefix).map(String::into_bytes))
                        };
                        self.meta_strings(key, range, &|s| glob_matches(pattern, s))
                    }
                    Test::Regex(pattern) => match compile_regex(pattern) {
                        Ok(re) => self.meta_strings(key, (None, None), &|s| re.is_match(s)),
                        Err(_) => Ok(RidSet::new()),
                    },
                };
            }
            Field::Builtin(b) => *b,
        };
        let (table, column) = match b {
            Builtin::Tag => ("tag_rows", "tag"),
            Builtin::Format => ("object_rows", "format"),
            Builtin::Project => ("dataset_rows", "project"),
            Builtin::Path => ("dataset_rows", "path"),
            Builtin::Kind => ("dataset_rows", "kind"),
            Builtin::Lineage => ("dataset_rows", "lineage"),
            Builtin::Id => ("dataset_rows", "(id::text COLLATE \"C\")"),
            Builtin::Created | Builtin::Updated => {
                let column = if b == Builtin::Created { "created" } else { "updated" };
                // Times, and nothing else: a time compares with a time.
                return match test {
                    Test::Cmp(op, FilterValue::Time(t)) => self.rids(
                        &format!("SELECT rid FROM dataset_rows WHERE visible AND {column} {} $1", sql_op(op)),
                        &[t],
                    ),
                    _ => Ok(RidSet::new()),
                };
            }
        };
        let visible = if table == "dataset_rows" { "visible AND " } else { "" };
        // Paths are indexed under their project: naming it turns a path glob into a range scan.
        let scope = match (b, project) {
            (Builtin::Path, Some(p)) => Some(p.to_string()),
            _ => None,
        };
        let scoped = "($1::text IS NULL OR project = $1)";
        let base = if table == "dataset_rows" {
            format!("SELECT rid, {column} FROM {table} WHERE {visible}{scoped} AND {column} IS NOT NULL")
        } else {
            format!("SELECT rid, {column} FROM {table} WHERE ($1::text IS NULL OR true) AND {column} IS NOT NULL")
        };
        match test {
            Test::Cmp(CompareOp::Eq, FilterValue::String(s)) if b == Builtin::Id => {
                // Equality is a lookup in the id index; text that is not a UUID is no dataset's id.
                let Some(id) = uuid::Uuid::parse_str(s).ok().filter(|id| id.hyphenated().to_string() == *s) else {
                    return Ok(RidSet::new());
                };
                self.rids("SELECT rid FROM dataset_rows WHERE visible AND id = $1", &[&id])
            }
            // PostgreSQL text cannot hold a NUL, so such a value is compared here (byte order, as SQL's "C").
            Test::Cmp(op, FilterValue::String(s)) if s.contains('\0') => {
                self.judged(&base, &scope, None, &|text| compare(op, text.as_bytes(), s.as_bytes()))
            }
            Test::Cmp(op, FilterValue::String(s)) => {
                let ids_only = base.replacen(&format!("SELECT rid, {column} FROM"), "SELECT rid FROM", 1);
                self.rids(&format!("{ids_only} AND {column} {} $2", sql_op(op)), &[&scope, &s.as_str()])
            }
            // Text that is itself a timestamp compares with a time (`@kind == "2024-05-01"` is allowed, if odd).
            Test::Cmp(op, FilterValue::Time(t)) => {
                self.judged(&base, &scope, None, &|text| parse_timestamp(text).is_some_and(|v| compare(op, &v, t)))
            }
            Test::Cmp(..) => Ok(RidSet::new()),
            Test::Glob(pattern) => {
                let prefix = glob_prefix(pattern);
                // (No text column holds a NUL: a prefix with one is read as no range, and judged here.)
                let range =
                    (!prefix.is_empty() && !prefix.contains('\0')).then(|| (prefix.clone(), successor(&prefix)));
                let sql = match &range {
                    Some((_, Some(_))) => format!("{base} AND {column} >= $2 AND {column} < $3"),
                    Some((_, None)) => format!("{base} AND {column} >= $2"),
                    None => base.clone(),
                };
                self.judged(&sql, &scope, range, &|text| glob_matches(pattern, text))
            }
            Test::Regex(pattern) => match compile_regex(pattern) {
                Ok(re) => self.judged(&base, &scope, None, &|text| re.is_match(text)),
                Err(_) => Ok(RidSet::new()),
            },
        }
    }

    /// The rows of `sql` (selecting rid and a text column; `$1` the project scope, `$2`/`$3` a range) whose
    /// text `keep` accepts.
    fn judged(
        &self,
        sql: &str,
        scope: &Option<String>,
        range: Option<(String, Option<String>)>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<RidSet> {
        let rows = match &range {
            Some((lo, Some(hi))) => self.query(sql, &[scope, lo, hi])?,
            Some((lo, None)) => self.query(sql, &[scope, lo])?,
            None => self.query(sql, &[scope])?,
        };
        let mut set = RidSet::new();
        for r in rows {
            let text: String = r.get(1);
            if keep(&text) {
                set.insert(r.get(0));
            }
        }
        Ok(set)
    }

    fn range(&self, key: &str, low: Bound<'_>, high: Bound<'_>) -> Result<RidSet> {
        let side = |bound: Bound<'_>, inclusive_op, strict_op| {
            bound.map(|(value, inclusive)| meta_parts(if inclusive { inclusive_op } else { strict_op }, value))
        };
        let parts = match (side(low, CompareOp::Ge, CompareOp::Gt), side(high, CompareOp::Le, CompareOp::Lt)) {
            (Some(a), Some(b)) => and_parts(a, b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => vec![],
        };
        self.meta_rows(key, 0, parts)
    }
}

fn compare<T: Ord + ?Sized>(op: CompareOp, a: &T, b: &T) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

impl Probes for Pg {
    fn probe(&self, probe: Probe<'_>, project: Option<&str>) -> trove_catalog::Result<RidSet> {
        Ok(match probe {
            Probe::Exists(field) => self.exists(field)?,
            Probe::Test(field, test) => self.test(field, test, project)?,
            Probe::Range { key, low, high } => self.range(key, low, high)?,
            Probe::Element { key, conds } => {
                let parts = match conds {
                    [(op, v)] => meta_parts(*op, v),
                    [(a, x), (b, y)] => and_parts(meta_parts(*a, x), meta_parts(*b, y)),
                    _ => vec![],
                };
                self.meta_rows(key, vtype::ELEMENT, parts)?
            }
            Probe::Size { key, op, len } => {
                let part = Part { code: vtype::SIZE, conds: vec![(sql_op(op), Val::Num(len.to_string()))] };
                self.meta_rows(key, 0, vec![part])?
            }
        })
    }

    fn project_datasets(&self, project: &str) -> trove_catalog::Result<Option<RidSet>> {
        let others: bool = self.query(
            "SELECT EXISTS (SELECT 1 FROM dataset_rows WHERE visible AND project < $1)
                 OR EXISTS (SELECT 1 FROM dataset_rows WHERE visible AND project > $1)",
            &[&project],
        )?[0]
            .get(0);
        if !others {
            return Ok(None);
        }
        Ok(Some(self.universe_of(Some(project))?))
    }
}

impl Pg {
    /// Streams the row ids `sql` (ordered) returns into `each` until it says stop.
    fn stream(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        // Windows of growing size, so that `--limit 10` reads tens of rows and a full walk reads each row
        // about once (the rows are read before any callback runs: the connection is free again by then).
        let mut offset = 0u64;
        let mut window = 256u64;
        loop {
            // ARRAY(subquery) keeps the subquery's order.
            let page = format!("SELECT ARRAY({sql} LIMIT {window} OFFSET {offset})");
            let rids: Vec<i64> = self.query(&page, params)?.first().map(|row| row.get(0)).unwrap_or_default();
            let full = rids.len() as u64 == window;
            for rid in rids {
                if !each(rid)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            offset += window;
            window = (window * 4).min(1 << 20);
        }
    }
}

impl trove_catalog::OrderedRows for Pg {
    fn key_id(&self, key: &str) -> trove_catalog::Result<Option<i64>> {
        Ok(self.kid(key)?.map(i64::from))
    }

    fn by_value(
        &self,
        kid: i64,
        code: i64,
        descending: bool,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        let dir = if descending { "DESC" } else { "ASC" };
        let order = if code == vtype::OBJECT {
            // The empty object (text) before hashes, as SQLite orders text before blobs.
            format!("(length(str) = 16) {dir}, str {dir}")
        } else if numeric_code(code) {
            format!("num {dir}")
        } else {
            // `num` is NULL on every one of these rows: naming it lets the B-tree give the order.
            format!("num {dir}, str {dir}")
        };
        let only = if numeric_code(code) { "" } else { " AND num IS NULL" };
        let sql = format!("SELECT rid FROM meta WHERE kid = $1 AND vtype = $2{only} ORDER BY {order}");
        self.stream(&sql, &[&(kid as i32), &(code as i16)], each)
    }

    fn by_column(
        &self,
        column: &'static str,
        descending: bool,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        let dir = if descending { "DESC" } else { "ASC" };
        let sql =
            format!("SELECT rid FROM dataset_rows WHERE visible AND {column} IS NOT NULL ORDER BY {column} {dir}");
        self.stream(&sql, &[], each)
    }

    fn locations(&self, rids: &[i64]) -> trove_catalog::Result<Vec<(String, String, i64)>> {
        let rids = rids.to_vec();
        Ok(self
            .query("SELECT project, path, rid FROM dataset_rows WHERE rid = ANY($1)", &[&rids])?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
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
                &format!("SELECT rid FROM dataset_rows WHERE visible AND project = $1 ORDER BY path {dir}"),
                &[&p],
                each,
            ),
            None => self.stream(
                &format!("SELECT rid FROM dataset_rows WHERE visible ORDER BY project {dir}, path {dir}"),
                &[],
                each,
            ),
        }
    }
}
