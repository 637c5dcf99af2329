//! What `find` asks of a catalog besides the filter: the order and the window of its results.

use trove_model::filter::{Builtin, Field};

use crate::Result;

/// How `find` orders its results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// What results are ordered by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// A metadata key's value: numbers, then strings, booleans, arrays, objects and nulls, each group in
    /// the direction asked; datasets without the key come last.
    Meta(String),
    /// A built-in field; `@tag` and `@format` are sets and cannot order.
    Builtin(Builtin),
}

impl Default for Sort {
    /// Project, then path.
    fn default() -> Sort {
        Sort { key: SortKey::Builtin(Builtin::Path), descending: false }
    }
}

impl std::str::FromStr for Sort {
    type Err = String;

    /// `KEY`, `-KEY` (descending), `@created`, `-@updated`, `"T (K)"`.
    fn from_str(text: &str) -> Result<Sort, String> {
        let (descending, key) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let field = trove_model::filter::Field::parse(key).map_err(|e| format!("bad sort key {text:?}: {e}"))?;
        let key = match field {
            Field::Meta(key) => SortKey::Meta(key),
            Field::Builtin(b @ (Builtin::Tag | Builtin::Format)) => {
                return Err(format!("cannot sort by @{}: a dataset has a set of them, not one", b.name()));
            }
            Field::Builtin(b) => SortKey::Builtin(b),
        };
        Ok(Sort { key, descending })
    }
}

/// What `find` asks of the catalog besides the filter.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// Only datasets of this project.
    pub project: Option<String>,
    pub sort: Sort,
    /// Results skipped first.
    pub offset: u64,
    /// At most this many results.
    pub limit: Option<u64>,
}

/// Applies `--offset` and `--limit` to a stream of row ids, for a backend's ordered walk.
pub struct Pager<'a> {
    offset: u64,
    limit: Option<u64>,
    each: &'a mut dyn FnMut(i64) -> Result<bool>,
}

impl<'a> Pager<'a> {
    pub fn new(offset: u64, limit: Option<u64>, each: &'a mut dyn FnMut(i64) -> Result<bool>) -> Pager<'a> {
        Pager { offset, limit, each }
    }

    /// Passes `rid` on (unless still skipping); false when no more are wanted.
    pub fn give(&mut self, rid: i64) -> Result<bool> {
        if self.offset > 0 {
            self.offset -= 1;
            return Ok(true);
        }
        match &mut self.limit {
            Some(0) => return Ok(false),
            Some(n) => *n -= 1,
            None => {}
        }
        if !(self.each)(rid)? {
            return Ok(false);
        }
        Ok(self.limit != Some(0))
    }
}

/// What an engine streams for [`ordered`]: row ids in the order of one of its indexes. Each walk calls
/// `each` until it returns false.
pub trait OrderedRows {
    /// The id of a metadata key, when any dataset has it.
    fn key_id(&self, key: &str) -> Result<Option<i64>>;
    /// The rows of one key's index entries of one type code, by value.
    fn by_value(&self, kid: i64, code: i64, descending: bool, each: &mut dyn FnMut(i64) -> Result<bool>) -> Result<()>;
    /// The visible datasets with a value in a column of `dataset_rows` (`id kind lineage created updated`),
    /// by it.
    fn by_column(
        &self,
        column: &'static str,
        descending: bool,
        each: &mut dyn FnMut(i64) -> Result<bool>,
    ) -> Result<()>;
    /// `(project, path, rid)` of these rows.
    fn locations(&self, rids: &[i64]) -> Result<Vec<(String, String, i64)>>;
    /// Every visible dataset (of `project`) in (project, path) order.
    fn by_path(&self, project: Option<&str>, descending: bool, each: &mut dyn FnMut(i64) -> Result<bool>)
    -> Result<()>;
}

/// The order of value types when sorting by a metadata key, whichever the direction: the values that sort
/// meaningfully first. Numbers may be two types (`BIG` holds an engine's integers above `i64::MAX`);
/// descending, those come first.
const SORT_TYPE_ORDER: [&[i64]; 6] = {
    use crate::index::vtype;
    [&[vtype::NUMBER, vtype::BIG], &[vtype::STRING], &[vtype::BOOL], &[vtype::ARRAY], &[vtype::OBJECT], &[vtype::NULL]]
};

/// Calls `each` with the row ids of `set` in the order and window `options` ask for, stopping after the
/// limit or when `each` returns false. By a metadata key: its values (numbers, then strings, booleans,
/// arrays, objects, nulls, each group in the direction asked), then datasets without it in path order. By a
/// built-in: its index, then those without a value. Reads as it goes: nothing but the ids is held.
pub fn ordered(
    rows: &dyn OrderedRows,
    set: &crate::Matches,
    options: &FindOptions,
    each: &mut dyn FnMut(i64) -> Result<bool>,
) -> Result<()> {
    let mut pager = Pager::new(options.offset, options.limit, each);
    let Sort { key, descending } = &options.sort;
    let project = options.project.as_deref();
    let mut done = crate::RidSet::new();
    let stopped = std::cell::Cell::new(false);
    let mut take = |rid: i64, done: &mut crate::RidSet| -> Result<bool> {
        if set.contains(rid) && !done.contains(rid) {
            done.insert(rid);
            if !pager.give(rid)? {
                stopped.set(true);
                return Ok(false);
            }
        }
        Ok(true)
    };
    match key {
        SortKey::Builtin(Builtin::Path | Builtin::Project) => {
            return in_path_order(rows, set, *descending, project, &mut pager);
        }
        SortKey::Meta(key) => {
            if let Some(kid) = rows.key_id(key)? {
                for group in SORT_TYPE_ORDER {
                    let mut group = group.to_vec();
                    if *descending {
                        group.reverse();
                    }
                    for code in group {
                        rows.by_value(kid, code, *descending, &mut |rid| take(rid, &mut done))?;
                        if stopped.get() {
                            return Ok(());
                        }
                    }
                }
            }
        }
        SortKey::Builtin(b) => {
            // Every engine names the columns of built-in fields alike.
            let column = match b {
                Builtin::Id => "id",
                Builtin::Kind => "kind",
                Builtin::Lineage => "lineage",
                Builtin::Created => "created",
                _ => "updated",
            };
            rows.by_column(column, *descending, &mut |rid| take(rid, &mut done))?;
            if stopped.get() {
                return Ok(());
            }
        }
    }
    in_path_order(rows, &set.without(&done), false, project, &mut pager)
}

/// `matches` in (project, path) order: a small answer looked up at once and sorted, a large one read in index
/// order and filtered.
fn in_path_order(
    rows: &dyn OrderedRows,
    matches: &crate::Matches,
    descending: bool,
    project: Option<&str>,
    pager: &mut Pager<'_>,
) -> Result<()> {
    let n = matches.set.len();
    if n == 0 && !matches.complement {
        return Ok(());
    }
    if n <= 20_000 && !matches.complement {
        let rids: Vec<i64> = matches.set.iter().collect();
        let mut keyed = rows.locations(&rids)?;
        keyed.sort_unstable_by(|a, b| {
            let o = (&a.0, &a.1).cmp(&(&b.0, &b.1));
            if descending { o.reverse() } else { o }
        });
        for (_, _, rid) in keyed {
            if !pager.give(rid)? {
                return Ok(());
            }
        }
        return Ok(());
    }
    rows.by_path(project, descending, &mut |rid| if matches.contains(rid) { pager.give(rid) } else { Ok(true) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys() {
        let s: Sort = "-temperature".parse().unwrap();
        assert_eq!(s, Sort { key: SortKey::Meta("temperature".into()), descending: true });
        let s: Sort = "@created".parse().unwrap();
        assert_eq!(s, Sort { key: SortKey::Builtin(Builtin::Created), descending: false });
        assert!("@tag".parse::<Sort>().unwrap_err().contains("cannot sort by @tag"));
        assert!("a..b".parse::<Sort>().is_err());
    }
}
