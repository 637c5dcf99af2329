//! Filter execution that every engine shares: a filter becomes index probes (one per condition), each
//! answered by the engine as a set of row ids, combined here in memory. `and` intersects, `or` unites, and
//! `not` is kept symbolic (a complement) until something forces it, so `a and not b` is a difference and
//! never reads every dataset. Only a filter whose answer is a complement at the top (`not exists(x)`)
//! reads the list of all datasets.
//!
//! The answers are exactly those of the reference evaluator, [`Filter::matches`]; the conformance suite holds
//! every engine to it. The rules that make this work:
//! - index rows exist for visible datasets only, so every probe's set is a subset of the visible datasets;
//! - a probe only ever selects rows where its condition is true, so SQL's `NULL` logic never enters;
//! - type mismatches are decided by the engine before any SQL: `x < true` is the empty set, not a query.

use trove_model::filter::{Builtin, CompareOp, Field, Filter, FilterValue};

use crate::{Matches, Result, RidSet};

/// The comparison a condition asks of one value: an ordering, equality, a glob or a regular expression.
#[derive(Clone, Copy, Debug)]
pub enum Test<'v> {
    Cmp(CompareOp, &'v FilterValue),
    Glob(&'v str),
    Regex(&'v str),
}

/// One bound of a range: the value and whether it is included.
pub type Bound<'v> = Option<(&'v FilterValue, bool)>;

/// One condition, answered from one index.
#[derive(Clone, Copy, Debug)]
pub enum Probe<'f> {
    /// The field is present: a metadata key (itself, or anything nested below it), or a tag, an object,
    /// a kind, a lineage.
    Exists(&'f Field),
    /// A test on one field (never `!=`: the planner makes that a difference).
    Test(&'f Field, Test<'f>),
    /// `low <= key <= high` (bounds optional, inclusive or not) on one metadata key: one range scan.
    Range { key: &'f str, low: Bound<'f>, high: Bound<'f> },
    /// An element of the array at `key` meets every condition.
    Element { key: &'f str, conds: &'f [(CompareOp, FilterValue)] },
    /// The array at `key` has a length that compares so with `len`.
    Size { key: &'f str, op: CompareOp, len: u64 },
}

/// What an engine answers for the planner.
pub trait Probes {
    /// The visible datasets where `probe` holds. `project` is the scope of the whole filter: the engine may
    /// use it to narrow an index read (the planner restricts the answer to it anyway).
    fn probe(&self, probe: Probe<'_>, project: Option<&str>) -> Result<RidSet>;
    /// The visible datasets of `project`, or `None` when that is every visible dataset (the store holds no
    /// other project): then no restriction is needed.
    fn project_datasets(&self, project: &str) -> Result<Option<RidSet>>;
}

/// The visible datasets (of `project`, when given) that match `filter`.
pub fn evaluate(probes: &dyn Probes, filter: &Filter, project: Option<&str>) -> Result<Matches> {
    let planner = Planner { probes, project };
    let answer = planner.eval(filter)?;
    let answer = match project {
        Some(p) => match probes.project_datasets(p)? {
            Some(scope) => Answer::Only(scope).and(answer),
            None => answer,
        },
        None => answer,
    };
    Ok(match answer {
        Answer::Only(set) => Matches { set, complement: false },
        Answer::AllBut(set) => Matches { set, complement: true },
    })
}

/// A set of datasets, or the complement of one (among the visible datasets in scope).
enum Answer {
    Only(RidSet),
    AllBut(RidSet),
}

impl Answer {
    fn none() -> Answer {
        Answer::Only(RidSet::new())
    }

    fn all() -> Answer {
        Answer::AllBut(RidSet::new())
    }

    fn not(self) -> Answer {
        match self {
            Answer::Only(s) => Answer::AllBut(s),
            Answer::AllBut(s) => Answer::Only(s),
        }
    }

    fn and(self, other: Answer) -> Answer {
        match (self, other) {
            (Answer::Only(mut a), Answer::Only(b)) => {
                a.intersect_with(&b);
                Answer::Only(a)
            }
            (Answer::Only(mut a), Answer::AllBut(b)) | (Answer::AllBut(b), Answer::Only(mut a)) => {
                a.difference_with(&b);
                Answer::Only(a)
            }
            (Answer::AllBut(mut a), Answer::AllBut(b)) => {
                a.union_with(&b);
                Answer::AllBut(a)
            }
        }
    }

    fn or(self, other: Answer) -> Answer {
        self.not().and(other.not()).not()
    }

    fn is_empty(&self) -> bool {
        matches!(self, Answer::Only(s) if s.is_empty())
    }
}

struct Planner<'a> {
    probes: &'a dyn Probes,
    project: Option<&'a str>,
}

impl Planner<'_> {
    fn probe(&self, probe: Probe<'_>) -> Result<Answer> {
        Ok(Answer::Only(self.probes.probe(probe, self.project)?))
    }

    fn eval(&self, filter: &Filter) -> Result<Answer> {
        match filter {
            Filter::True => Ok(Answer::all()),
            Filter::And(children) => {
                let mut answer = Answer::all();
                for child in merge_ranges(children) {
                    answer = answer.and(match child {
                        Conjunct::Filter(f) => self.eval(f)?,
                        Conjunct::Range { key, low, high } => self.probe(Probe::Range { key, low, high })?,
                    });
                    if answer.is_empty() {
                        break;
                    }
                }
                Ok(answer)
            }
            Filter::Or(children) => {
                let mut answer = Answer::none();
                for child in children {
                    answer = answer.or(self.eval(child)?);
                }
                Ok(answer)
            }
            Filter::Not(inner) => Ok(self.eval(inner)?.not()),
            Filter::Exists(field) => self.exists(field),
            Filter::Glob { field, pattern } => self.probe(Probe::Test(field, Test::Glob(pattern))),
            Filter::Regex { field, pattern } => self.probe(Probe::Test(field, Test::Regex(pattern))),
            Filter::Element { field: Field::Meta(key), conds } => self.probe(Probe::Element { key, conds }),
            Filter::Size { field: Field::Meta(key), op, len } => self.probe(Probe::Size { key, op: *op, len: *len }),
            // Built-in fields are never arrays.
            Filter::Element { .. } | Filter::Size { .. } => Ok(Answer::none()),
            Filter::Compare { field, op: CompareOp::Ne, value } => {
                let equal = self.probe(Probe::Test(field, Test::Cmp(CompareOp::Eq, value)))?;
                self.present_but_not(field, equal)
            }
            Filter::Compare { field, op, value } => self.probe(Probe::Test(field, Test::Cmp(*op, value))),
            Filter::In { field, values, negated } => {
                let mut any = Answer::none();
                for value in values {
                    any = any.or(self.probe(Probe::Test(field, Test::Cmp(CompareOp::Eq, value)))?);
                }
                if *negated { self.present_but_not(field, any) } else { Ok(any) }
            }
        }
    }

    /// `!=` and `not in`: the datasets that have the field, less those that equal. For the sets (`@tag`,
    /// `@format`) that is every dataset not holding the value.
    fn present_but_not(&self, field: &Field, equal: Answer) -> Result<Answer> {
        let always_present = matches!(
            field,
            Field::Builtin(
                Builtin::Id
                    | Builtin::Project
                    | Builtin::Path
                    | Builtin::Created
                    | Builtin::Updated
                    | Builtin::Tag
                    | Builtin::Format
            )
        );
        if always_present { Ok(equal.not()) } else { Ok(self.exists(field)?.and(equal.not())) }
    }

    fn exists(&self, field: &Field) -> Result<Answer> {
        match field {
            Field::Meta(_) | Field::Builtin(Builtin::Tag | Builtin::Format | Builtin::Kind | Builtin::Lineage) => {
                self.probe(Probe::Exists(field))
            }
            // Every dataset has an id, a project, a path and its times.
            Field::Builtin(_) => Ok(Answer::all()),
        }
    }
}

/// A conjunct of an `and`: a filter as it is, or a lower and an upper bound on one metadata key merged into one
/// range scan (`t >= 300 and t < 310` reads 1% of the key's rows, not 50% and 50%).
enum Conjunct<'f> {
    Filter(&'f Filter),
    Range { key: &'f str, low: Bound<'f>, high: Bound<'f> },
}

/// The kinds of value a range can be merged on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Number,
    String,
    Time,
}

fn range_class(value: &FilterValue) -> Option<Class> {
    match value {
        FilterValue::Int(_) | FilterValue::UInt(_) => Some(Class::Number),
        FilterValue::Float(x) if !x.is_nan() => Some(Class::Number),
        FilterValue::String(_) => Some(Class::String),
        FilterValue::Time(_) => Some(Class::Time),
        _ => None,
    }
}

fn merge_ranges(children: &[Filter]) -> Vec<Conjunct<'_>> {
    let mut out: Vec<Conjunct> = Vec::with_capacity(children.len());
    for child in children {
        let Filter::Compare { field: Field::Meta(key), op, value } = child else {
            out.push(Conjunct::Filter(child));
            continue;
        };
        let (is_low, inclusive) = match op {
            CompareOp::Gt => (true, false),
            CompareOp::Ge => (true, true),
            CompareOp::Lt => (false, false),
            CompareOp::Le => (false, true),
            _ => {
                out.push(Conjunct::Filter(child));
                continue;
            }
        };
        let class = range_class(value);
        if class.is_none() {
            out.push(Conjunct::Filter(child));
            continue;
        }
        // A range on the same key, of the same type, with this side still open.
        let partner = out.iter_mut().find_map(|c| match c {
            Conjunct::Range { key: k, low, high } if *k == key.as_str() => {
                let (side, other) = if is_low { (low, &*high) } else { (high, &*low) };
                let same_type = other.is_some_and(|(v, _)| range_class(v) == class);
                (side.is_none() && same_type).then_some(side)
            }
            _ => None,
        });
        match partner {
            Some(side) => *side = Some((value, inclusive)),
            None => {
                let bound = Some((value, inclusive));
                let (low, high) = if is_low { (bound, None) } else { (None, bound) };
                out.push(Conjunct::Range { key, low, high });
            }
        }
    }
    out
}

/// The least string greater than every string that starts with `prefix` (UTF-8 byte order is code point
/// order), or `None` when there is none: the upper end of a prefix's range.
pub fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The literal prefix of a glob pattern (everything before its first `*` or `?`).
pub fn glob_prefix(pattern: &str) -> String {
    pattern.chars().take_while(|c| *c != '*' && *c != '?').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_of_prefixes() {
        assert_eq!(successor("runs/2024/").as_deref(), Some("runs/20240"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
