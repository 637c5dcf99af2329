//! The reference evaluator: a filter against one dataset in memory. Simple on purpose; the catalog's SQL must give
//! the same answers (the rules are in the `filter` module documentation).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::iso::parse_timestamp;
use super::{Builtin, CompareOp, Field, Filter, FilterValue};
use crate::value::{canonical_json, get_dotted};

/// What a dataset exposes to filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    /// `@id`.
    pub id: String,
    /// `@project`.
    pub project: String,
    /// `@path`, relative to the project (`runs/2024/r17`).
    pub path: String,
    /// `@kind`; `None` when unset (then missing, like an absent key).
    pub kind: Option<String>,
    /// `@tag`.
    pub tags: Vec<String>,
    /// `@created`, in microseconds since the Unix epoch.
    pub created: i64,
    /// `@updated`, in microseconds since the Unix epoch.
    pub updated: i64,
    /// `@format`: the formats of the dataset's objects.
    pub formats: Vec<String>,
    /// `@lineage`; `None` when unset.
    pub lineage: Option<String>,
    /// The metadata document that dotted keys reach into.
    pub metadata: Map<String, Value>,
}

pub(super) fn matches(filter: &Filter, doc: &Doc) -> bool {
    match filter {
        Filter::True => true,
        Filter::And(cs) => cs.iter().all(|c| matches(c, doc)),
        Filter::Or(cs) => cs.iter().any(|c| matches(c, doc)),
        Filter::Not(inner) => !matches(inner, doc),
        Filter::Compare { field, op, value } => compare(&subject(field, doc), *op, value),
        Filter::In { field, values, negated } => is_in(&subject(field, doc), values, *negated),
        Filter::Glob { field, pattern } => {
            subject(field, doc).any_scalar(|s| s.as_str().is_some_and(|s| glob(pattern, s)))
        }
        Filter::Regex { field, pattern } => match regex::Regex::new(&super::regex_for(pattern)) {
            Ok(re) => subject(field, doc).any_scalar(|s| s.as_str().is_some_and(|s| re.is_match(s))),
            Err(_) => false,
        },
        Filter::Element { field, conds } => match subject(field, doc) {
            Subject::One(Scalar::Json(Value::Array(items))) => items
                .iter()
                .any(|item| conds.iter().all(|(op, value)| compare(&Subject::One(Scalar::Json(item)), *op, value))),
            _ => false,
        },
        Filter::Size { field, op, len } => match subject(field, doc) {
            Subject::One(Scalar::Json(Value::Array(items))) => {
                let ord = (items.len() as u64).cmp(len);
                match op {
                    CompareOp::Eq => ord == Ordering::Equal,
                    CompareOp::Ne => ord != Ordering::Equal,
                    CompareOp::Lt => ord == Ordering::Less,
                    CompareOp::Le => ord != Ordering::Greater,
                    CompareOp::Gt => ord == Ordering::Greater,
                    CompareOp::Ge => ord != Ordering::Less,
                }
            }
            _ => false,
        },
        Filter::Exists(field) => exists(field, doc),
    }
}

/// What a field holds in one dataset.
enum Subject<'d> {
    /// The key does not resolve (or the optional built-in is unset): every comparison is false.
    Missing,
    One(Scalar<'d>),
    /// `@tag`, `@format`: a comparison holds if it holds for some element.
    Set(&'d [String]),
}

#[derive(Clone, Copy)]
enum Scalar<'d> {
    Json(&'d Value),
    Str(&'d str),
    Time(i64),
}

impl<'d> Scalar<'d> {
    fn as_str(self) -> Option<&'d str> {
        match self {
            Scalar::Json(Value::String(s)) => Some(s),
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Subject<'_> {
    /// Whether `test` holds for the value, or for some element of a set. False when missing.
    fn any_scalar(&self, test: impl Fn(Scalar) -> bool) -> bool {
        match self {
            Subject::Missing => false,
            Subject::One(s) => test(*s),
            Subject::Set(items) => items.iter().any(|i| test(Scalar::Str(i))),
        }
    }

    fn is_present(&self) -> bool {
        !matches!(self, Subject::Missing)
    }
}

fn subject<'d>(field: &Field, doc: &'d Doc) -> Subject<'d> {
    let optional = |s: &'d Option<String>| s.as_deref().map_or(Subject::Missing, |s| Subject::One(Scalar::Str(s)));
    match field {
        Field::Meta(key) => get_dotted(&doc.metadata, key).map_or(Subject::Missing, |v| Subject::One(Scalar::Json(v))),
        Field::Builtin(b) => match b {
            Builtin::Id => Subject::One(Scalar::Str(&doc.id)),
            Builtin::Project => Subject::One(Scalar::Str(&doc.project)),
            Builtin::Path => Subject::One(Scalar::Str(&doc.path)),
            Builtin::Kind => optional(&doc.kind),
            Builtin::Lineage => optional(&doc.lineage),
            Builtin::Tag => Subject::Set(&doc.tags),
            Builtin::Format => Subject::Set(&doc.formats),
            Builtin::Created => Subject::One(Scalar::Time(doc.created)),
            Builtin::Updated => Subject::One(Scalar::Time(doc.updated)),
        },
    }
}

fn exists(field: &Field, doc: &Doc) -> bool {
    match field {
        Field::Builtin(Builtin::Tag) => !doc.tags.is_empty(),
        Field::Builtin(Builtin::Format) => !doc.formats.is_empty(),
        other => subject(other, doc).is_present(),
    }
}

/// `!=` is the negation of `==` among datasets that have the field; the others need the value to relate.
fn compare(subject: &Subject, op: CompareOp, value: &FilterValue) -> bool {
    match op {
        CompareOp::Ne => subject.is_present() && !subject.any_scalar(|s| equal(s, value)),
        op => subject.any_scalar(|s| match relate(s, value) {
            Relation::Ordered(ord) => match op {
                CompareOp::Eq => ord == Ordering::Equal,
                CompareOp::Lt => ord == Ordering::Less,
                CompareOp::Le => ord != Ordering::Greater,
                CompareOp::Gt => ord == Ordering::Greater,
                CompareOp::Ge => ord != Ordering::Less,
                CompareOp::Ne => unreachable!("handled above"),
            },
            Relation::Unordered { equal } => op == CompareOp::Eq && equal,
            Relation::Mismatch => false,
        }),
    }
}

fn is_in(subject: &Subject, values: &[FilterValue], negated: bool) -> bool {
    let hit = subject.any_scalar(|s| values.iter().any(|v| equal(s, v)));
    if negated { subject.is_present() && !hit } else { hit }
}

fn equal(s: Scalar, value: &FilterValue) -> bool {
    match relate(s, value) {
        Relation::Ordered(ord) => ord == Ordering::Equal,
        Relation::Unordered { equal } => equal,
        Relation::Mismatch => false,
    }
}

/// How a dataset's value relates to a filter's value.
enum Relation {
    /// Different types (or a NaN): not equal, not ordered.
    Mismatch,
    /// Booleans and null: only equality is defined.
    Unordered {
        equal: bool,
    },
    Ordered(Ordering),
}

fn relate(s: Scalar, value: &FilterValue) -> Relation {
    let ordered = |o: Option<Ordering>| o.map_or(Relation::Mismatch, Relation::Ordered);
    match (s, value) {
        (Scalar::Json(Value::Null), FilterValue::Null) => Relation::Unordered { equal: true },
        (Scalar::Json(Value::Bool(a)), FilterValue::Bool(b)) => Relation::Unordered { equal: a == b },
        (Scalar::Json(a @ (Value::Array(_) | Value::Object(_))), FilterValue::Json(b)) => {
            Relation::Unordered { equal: canonical_json(a) == canonical_json(b) }
        }
        (Scalar::Json(Value::Number(n)), FilterValue::Int(_) | FilterValue::UInt(_) | FilterValue::Float(_)) => {
            ordered(compare_numbers(json_number(n), filter_number(value)))
        }
        (Scalar::Time(t), FilterValue::Time(v)) => Relation::Ordered(t.cmp(v)),
        (s, FilterValue::String(v)) => ordered(s.as_str().map(|s| s.cmp(v.as_str()))),
        // A time compares with text that is itself a timestamp.
        (s, FilterValue::Time(v)) => ordered(s.as_str().and_then(parse_timestamp).map(|t| t.cmp(v))),
        _ => Relation::Mismatch,
    }
}

/// A number, exact where it is an integer.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn json_number(n: &serde_json::Number) -> Num {
    match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => Num::Int(i.into()),
        (_, Some(u)) => Num::Int(u.into()),
        _ => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn filter_number(v: &FilterValue) -> Num {
    match v {
        FilterValue::Int(i) => Num::Int((*i).into()),
        FilterValue::UInt(u) => Num::Int((*u).into()),
        FilterValue::Float(x) => Num::Float(*x),
        _ => Num::Float(f64::NAN),
    }
}

/// Integers and floats compare by their exact values (as SQLite does), not through a lossy cast.
fn compare_numbers(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
        (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
        (Num::Int(a), Num::Float(b)) => int_float(a, b),
        (Num::Float(a), Num::Int(b)) => int_float(b, a).map(Ordering::reverse),
    }
}

fn int_float(i: i128, f: f64) -> Option<Ordering> {
    const LIMIT: f64 = 1.7e38; // just under 2^127: beyond it, f is outside every i128
    if f.is_nan() {
        return None;
    }
    if f >= LIMIT {
        return Some(Ordering::Less);
    }
    if f <= -LIMIT {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // `whole` is an integer within range, so the cast is exact; a tie is decided by f's fractional part.
    Some(i.cmp(&(whole as i128)).then_with(|| 0.0.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal)))
}

/// Whole-string glob: `*` any run of characters (`/` included), `?` one character, everything else literal.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at: on a mismatch it swallows one more character.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
