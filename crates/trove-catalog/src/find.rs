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
