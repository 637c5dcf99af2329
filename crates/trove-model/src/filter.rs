//! The filter language (SPEC section 4): one AST, three ways in (text, MongoDB-style JSON, a typed builder), and the
//! reference evaluator whose answers every other execution path (the SQL over the catalog) must reproduce.
//!
//! ```text
//! material == "steel" and temperature >= 300 and temperature < 310
//! sample.thickness_mm in [1, 2, 5] or not exists(calibrated)
//! @tag == "calibrated" and @kind == "measurement" and @path ~ "runs/2024/*"
//! ```
//!
//! # Grammar
//!
//! ```text
//! filter     := ε | or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" or ")" | "exists" "(" field ")" | "size" "(" field ")" cmp integer | field op
//! op         := cmp value
//!             | "~" string | "=~" string
//!             | "not"? "in" "[" (value ("," value)* ","?)? "]"
//!             | "contains" (value | "(" cmp value ("and" cmp value)? ")")
//! cmp        := "==" | "!=" | "<" | "<=" | ">" | ">="
//! field      := "@" name | segment ("." segment)*
//! segment    := [letter digit _] [letter digit _ -]* | string
//! value      := string | number | "true" | "false" | "null" | array | object
//! array      := "[" (value ("," value)*)? "]"        object := "{" (string ":" value ("," ...)*)? "}"
//! ```
//!
//! Keywords (`and or not in exists true false null`) and built-in names are case-insensitive. Strings take double
//! or single quotes and the escapes `\\ \" \' \n \r \t \u{HEX}`. Numbers are JSON-like (`-3`, `2.5`, `1e-3`);
//! integers that fit an `i64` or a `u64` stay integers (exact); a longer integer is refused. A quoted key (`"T (K)"`) is a segment holding any characters; a
//! field's key is the dotted path as one string, exactly as the catalog indexes it, so `"a.b"` and `a.b` are the
//! same key (metadata keys never contain dots: `value::set_dotted` splits on them).
//!
//! # Semantics (the reference; `Filter::matches`)
//!
//! - **Missing keys.** A metadata key that does not resolve (or `@kind`/`@lineage` when unset) makes every
//!   comparison false: `==`, `<`, `~`, `in`, and also `!=` and `not in`.
//! - **`!=` and `not in`** are the negation of `==` and `in` *among datasets that have the key*:
//!   `x != v` is `exists(x) and not x == v`. So `material != "steel"` matches a dataset whose `material` is `5`
//!   (it is not steel), but not one without `material`. `x not in [a, b]` is exactly `x != a and x != b`.
//! - **Types.** `==` and the orderings only hold between values of one type: numbers with numbers (integers and
//!   floats compare numerically, exactly), strings with strings (by code point, as SQLite's `BINARY` collation
//!   does on UTF-8), times with times, booleans and `null` only by `==`/`!=`. Any other pair is simply not equal
//!   and not ordered: never an error.
//! - **Times.** A quoted value that parses as ISO-8601 (`2024-05-01`, `2024-05-01T10:00:00Z`,
//!   `2024-05-01T10:00:00.123+02:00`; no offset means UTC) becomes a time, in microseconds since the Unix epoch.
//!   A time compares with `@created`/`@updated` and with metadata strings that themselves parse as ISO-8601
//!   (so `"2024-05-01"` equals a stored `"2024-05-01T00:00:00Z"`); with anything else it is a type mismatch.
//!   `From<&str>` for `FilterValue` applies the same rule, so the builder, the text and the JSON agree.
//! - **Arrays and objects** compare whole, by their canonical form (`value::canonical_json`), with `==`, `!=`
//!   and `in`; they are not ordered. `x contains v` holds when some element of the array `x` equals `v` (or,
//!   with bounds, lies in the range); `size(x) op n` compares an array's length. No comparison on a scalar
//!   looks inside an array (the MongoDB form's comparisons do: see `mongo`).
//! - **`=~`** is a regular expression (Rust's `regex` syntax) that matches anywhere unless anchored, with
//!   PCRE's `$` (the end, or before a final newline) and `.` (not a newline).
//! - **`null`**: `x == null` holds iff `x` is present and null; `x != null` iff `x` is present and not null.
//! - **`exists(k)`** holds iff the key path resolves, even to `null` or to an object. For built-ins it holds for
//!   `@id @project @path @created @updated` always, for `@kind`/`@lineage` when set, for `@tag`/`@format` when
//!   the dataset has at least one.
//! - **`not`** is the plain logical negation of the whole inner result: `not x == 1` matches a dataset without `x`.
//! - **`in [..]`** holds iff some element is `==`; an empty list matches nothing.
//! - **`~` (glob)** matches the whole string, case-sensitively; `*` is any run of characters (including `/` and
//!   none), `?` exactly one character; there is no escape and no `[...]`. It matches only strings:
//!   `@path ~ "runs/2024/*"` is the subtree below `runs/2024`.
//! - **Set-valued built-ins** (`@tag`, `@format`): a comparison holds if it holds for *some* element
//!   (`@tag == "x"`: has the tag); `!=` and `not in` are its negation (`@tag != "x"`: does not have the tag,
//!   including a dataset without tags).
//!
//! The MongoDB form maps onto the same AST with the same semantics (see [`Filter::from_mongo`]); note that
//! MongoDB's own `$ne`/`$nin` also match documents without the key, trove's do not (the rule above).

mod eval;
mod iso;
mod mongo;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

pub use eval::Doc;

/// Microseconds since the Unix epoch of an ISO-8601 timestamp, or `None` when `text` is not one: the rule that
/// makes a quoted filter value a time, and that the catalog applies to metadata strings so they compare as times.
///
/// ```
/// assert_eq!(trove_model::filter::parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
/// assert_eq!(trove_model::filter::parse_timestamp("steel"), None);
/// ```
pub fn parse_timestamp(text: &str) -> Option<i64> {
    iso::parse_timestamp(text)
}

/// Whether the glob `pattern` (`*` any run, `?` one character, all else literal) matches the whole of `text`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    eval::glob(pattern, text)
}

/// The compiled regular expression of a [`Filter::Regex`] pattern (MongoDB's `$` and `.`), or why there is none.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    parse::check_regex(pattern)?;
    regex::Regex::new(&regex_for(pattern)).map_err(|e| e.to_string())
}

/// A filter over datasets: the AST all three front ends produce.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Matches every dataset: the empty filter.
    True,
    /// Every child holds.
    And(Vec<Filter>),
    /// Some child holds.
    Or(Vec<Filter>),
    /// The inner filter does not hold.
    Not(Box<Filter>),
    /// `field op value`.
    Compare { field: Field, op: CompareOp, value: FilterValue },
    /// `field in [values]`, or `field not in [values]` when `negated`.
    In { field: Field, values: Vec<FilterValue>, negated: bool },
    /// `field ~ "pattern"`: a glob with `*` and `?`.
    Glob { field: Field, pattern: String },
    /// `field =~ "regex"`: the regular expression matches somewhere in the string, with MongoDB's (PCRE's)
    /// reading of `$` (the end, or before a final newline) and `.` (any character but a newline).
    Regex { field: Field, pattern: String },
    /// `field contains value`, `field contains (>= 1 and < 5)`: some element of the array at `field` satisfies
    /// every condition (one, or a lower and an upper bound; never `!=`).
    Element { field: Field, conds: Vec<(CompareOp, FilterValue)> },
    /// `size(field) op n`: the array at `field` has a length that compares so with `n`.
    Size { field: Field, op: CompareOp, len: u64 },
    /// `exists(field)`.
    Exists(Field),
}

/// What a condition looks at: a metadata key or a built-in field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// A dotted metadata key path, e.g. `sample.thickness_mm`.
    Meta(String),
    /// An `@name` built-in.
    Builtin(Builtin),
}

/// The built-in fields of a dataset, written `@name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `@id`: the dataset's UUID, as text.
    Id,
    /// `@project`: the project's name.
    Project,
    /// `@path`: the dataset's path in its project (`runs/2024/r17`).
    Path,
    /// `@kind`: the optional kind word.
    Kind,
    /// `@tag`: the set of tags.
    Tag,
    /// `@created`: a time.
    Created,
    /// `@updated`: a time.
    Updated,
    /// `@format`: the set of formats of the dataset's objects.
    Format,
    /// `@lineage`: the optional source the dataset derives from, as text.
    Lineage,
}

/// The comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal value in a filter.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterValue {
    /// `null`
    Null,
    /// `true`, `false`
    Bool(bool),
    /// An integer literal that fits an `i64`.
    Int(i64),
    /// An integer literal above `i64::MAX` that fits a `u64` (only those: smaller ones are [`FilterValue::Int`]).
    UInt(u64),
    /// Any other number. Finite in everything the parsers produce.
    Float(f64),
    /// A quoted string that is not an ISO-8601 timestamp.
    String(String),
    /// An ISO-8601 timestamp, in microseconds since the Unix epoch (UTC).
    Time(i64),
    /// An array or an object, compared as a whole by its canonical form ([`crate::value::canonical_json`]).
    /// Strings inside stay strings (never times).
    Json(serde_json::Value),
}

/// How many characters of a filter an error shows: about this many around the column where it went wrong.
const ECHO_WINDOW: usize = 60;

/// A malformed filter, with the column it was found at.
///
/// Its `Display` is the message, then (for text filters) the filter echoed and a caret under the column:
///
/// ```text
/// expected a value after '>=' at column 16
///   temperature >=
///                  ^
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FilterError {
    /// What is wrong, without the position.
    pub message: String,
    /// The 1-based column, in characters, of a text filter; `None` for a JSON filter.
    pub column: Option<usize>,
    /// The filter as given (a JSON filter in compact form).
    pub input: String,
}

impl FilterError {
    fn at(input: &str, column: usize, message: impl Into<String>) -> FilterError {
        FilterError { message: message.into(), column: Some(column), input: input.to_string() }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(column) = self.column else {
            let clipped: String = self.input.chars().take(ECHO_WINDOW).collect();
            let more = if clipped.len() < self.input.len() { "…" } else { "" };
            return write!(f, "{} in the JSON filter {clipped}{more}", self.message);
        };
        // Control characters (a newline, a tab) would break the echo's alignment: each shows as one space.
        let echo: Vec<char> = self.input.trim_end().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        // A long filter is shown as a window around the column, not whole (a 1 MB filter made an 829 KB line).
        let at = column - 1;
        let (start, end) = if echo.len() <= ECHO_WINDOW {
            (0, echo.len())
        } else {
            let start = at.saturating_sub(ECHO_WINDOW / 2).min(echo.len().saturating_sub(ECHO_WINDOW));
            (start, (start + ECHO_WINDOW).min(echo.len()))
        };
        let before = if start > 0 { "…" } else { "" };
        let after = if end < echo.len() { "…" } else { "" };
        let shown: String = echo[start..end].iter().collect();
        let caret = " ".repeat(at - start + before.chars().count());
        write!(f, "{} at column {column}\n  {before}{shown}{after}\n  {caret}^", self.message)
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    /// [`Filter::parse`].
    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

impl Default for Filter {
    /// The empty filter, which matches everything.
    fn default() -> Filter {
        Filter::True
    }
}

impl Builtin {
    /// Every built-in, in the order SPEC section 4 lists them.
    pub const ALL: [Builtin; 9] = [
        Builtin::Project,
        Builtin::Path,
        Builtin::Kind,
        Builtin::Tag,
        Builtin::Created,
        Builtin::Updated,
        Builtin::Format,
        Builtin::Id,
        Builtin::Lineage,
    ];

    /// The name after the `@`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Id => "id",
            Builtin::Project => "project",
            Builtin::Path => "path",
            Builtin::Kind => "kind",
            Builtin::Tag => "tag",
            Builtin::Created => "created",
            Builtin::Updated => "updated",
            Builtin::Format => "format",
            Builtin::Lineage => "lineage",
        }
    }

    /// The built-in called `name` (without the `@`), case-insensitively.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name().eq_ignore_ascii_case(name))
    }
}

impl Filter {
    /// The metadata keys the filter reads, each once, in the order they first appear.
    ///
    /// ```
    /// use trove_model::filter::Filter;
    /// let f = Filter::parse("a.b > 1 and (c == 2 or not a.b < 0) and @tag == 'x'").unwrap();
    /// assert_eq!(f.meta_keys(), ["a.b", "c"]);
    /// ```
    pub fn meta_keys(&self) -> Vec<String> {
        fn walk(f: &Filter, out: &mut Vec<String>) {
            match f {
                Filter::True => {}
                Filter::And(cs) | Filter::Or(cs) => cs.iter().for_each(|c| walk(c, out)),
                Filter::Not(inner) => walk(inner, out),
                Filter::Compare { field, .. }
                | Filter::In { field, .. }
                | Filter::Glob { field, .. }
                | Filter::Regex { field, .. }
                | Filter::Element { field, .. }
                | Filter::Size { field, .. }
                | Filter::Exists(field) => {
                    if let Field::Meta(key) = field
                        && !out.contains(key)
                    {
                        out.push(key.clone());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

impl Field {
    /// Parses a field alone: a dotted key (segments quoted where needed) or an `@name` built-in.
    ///
    /// ```
    /// use trove_model::filter::{Builtin, Field};
    /// assert_eq!(Field::parse("sample.\"T (K)\"").unwrap(), Field::Meta("sample.T (K)".into()));
    /// assert_eq!(Field::parse("@Created").unwrap(), Field::Builtin(Builtin::Created));
    /// assert!(Field::parse("a b").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Field, FilterError> {
        parse::parse_field(input)
    }
}

impl CompareOp {
    /// The operator as the text language writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

impl FilterValue {
    /// A string value, or a time if the text is an ISO-8601 timestamp: the rule every front end applies to quoted
    /// text, so that `"2024-05-01"` compares as a time everywhere.
    pub fn from_text(text: &str) -> FilterValue {
        match iso::parse_timestamp(text) {
            Some(micros) => FilterValue::Time(micros),
            None => FilterValue::String(text.to_string()),
        }
    }
}

impl From<i64> for FilterValue {
    fn from(n: i64) -> Self {
        FilterValue::Int(n)
    }
}

impl From<i32> for FilterValue {
    fn from(n: i32) -> Self {
        FilterValue::Int(n.into())
    }
}

impl From<u64> for FilterValue {
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or(FilterValue::UInt(n), FilterValue::Int)
    }
}

impl From<serde_json::Value> for FilterValue {
    /// A JSON value as a filter value: arrays and objects whole, scalars as the text form reads them.
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Null => FilterValue::Null,
            Value::Bool(b) => FilterValue::Bool(b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => FilterValue::Int(i),
                (_, Some(u)) => FilterValue::UInt(u),
                _ => FilterValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => FilterValue::from_text(&s),
            other => FilterValue::Json(other),
        }
    }
}

impl From<f64> for FilterValue {
    fn from(n: f64) -> Self {
        FilterValue::Float(n)
    }
}

impl From<bool> for FilterValue {
    fn from(b: bool) -> Self {
        FilterValue::Bool(b)
    }
}

impl From<&str> for FilterValue {
    fn from(s: &str) -> Self {
        FilterValue::from_text(s)
    }
}

impl From<String> for FilterValue {
    fn from(s: String) -> Self {
        FilterValue::from_text(&s)
    }
}

impl Filter {
    /// Parses the text form.
    ///
    /// ```
    /// use trove_model::filter::{CompareOp, Field, Filter, FilterValue};
    ///
    /// let f = Filter::parse("temperature >= 300 and @tag == 'calibrated'").unwrap();
    /// assert_eq!(f, Filter::meta("temperature").ge(300).and(Filter::tag("calibrated")));
    /// assert_eq!(Filter::parse("").unwrap(), Filter::True);
    ///
    /// let err = Filter::parse("temperature >= ").unwrap_err();
    /// assert_eq!(err.column, Some(16));
    /// assert_eq!(err.to_string(), "expected a value after '>=' at column 16\n  temperature >=\n                 ^");
    /// ```
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        parse::parse(input)
    }

    /// Parses a MongoDB-style JSON filter, onto the same AST and semantics as the text form.
    ///
    /// `{"temperature": {"$gte": 300, "$lt": 310}, "material": "steel"}`: keys are dotted metadata keys or `@name`
    /// built-ins; several keys or operators in one object are ANDed; `$eq $ne $gt $gte $lt $lte $in $nin $exists
    /// $regex $and $or $not`. `$not` works on a field's operators (`{"x": {"$not": {"$gt": 1}}}`) and, beyond
    /// MongoDB, on a whole filter (`{"$not": {...}}`). `$regex` accepts the regular expressions a glob can say
    /// (`^`, `$`, literal characters, `.` and `.*`) and becomes a [`Filter::Glob`]; others are refused.
    pub fn from_mongo(json: &serde_json::Value) -> Result<Filter, FilterError> {
        mongo::from_mongo(json)
    }

    /// Parses a MongoDB-style filter given as JSON text.
    pub fn from_mongo_str(text: &str) -> Result<Filter, FilterError> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| FilterError {
            message: format!("invalid JSON ({e})"),
            column: None,
            input: text.to_string(),
        })?;
        Filter::from_mongo(&json)
    }

    /// The MongoDB-style JSON form, which [`Filter::from_mongo`] reads back to the same filter when it is normal
    /// ([`Filter::is_normal`]) and names no metadata key starting with `$` or `@` (JSON filters read those as
    /// operators and built-ins).
    pub fn to_mongo(&self) -> serde_json::Value {
        mongo::to_mongo(self)
    }

    /// Whether the dataset `doc` matches: the reference semantics (module documentation).
    pub fn matches(&self, doc: &Doc) -> bool {
        eval::matches(self, doc)
    }

    /// Whether the filter is in the normal form that the parsers and the builder produce: `True` only alone,
    /// `And`/`Or` with at least two children, no empty key, floats finite, no `FilterValue::String` that is a
    /// timestamp (`From<&str>` makes those times). For these `Filter::parse(&f.to_string()) == Ok(f)`.
    pub fn is_normal(&self) -> bool {
        fn field(f: &Field) -> bool {
            !matches!(f, Field::Meta(key) if key.is_empty())
        }
        fn value(v: &FilterValue) -> bool {
            match v {
                FilterValue::Float(x) => x.is_finite(),
                FilterValue::UInt(u) => i64::try_from(*u).is_err(),
                FilterValue::String(s) => iso::parse_timestamp(s).is_none(),
                FilterValue::Json(j) => j.is_array() || j.is_object(),
                _ => true,
            }
        }
        fn scalar(v: &FilterValue) -> bool {
            value(v) && !matches!(v, FilterValue::Json(_))
        }
        fn inner(f: &Filter) -> bool {
            match f {
                Filter::True => false,
                Filter::And(cs) | Filter::Or(cs) => cs.len() >= 2 && cs.iter().all(inner),
                Filter::Not(f) => inner(f),
                Filter::Compare { field: f, op, value: v } => {
                    field(f) && if matches!(op, CompareOp::Eq | CompareOp::Ne) { value(v) } else { scalar(v) }
                }
                Filter::In { field: f, values, .. } => field(f) && values.iter().all(value),
                Filter::Glob { field: f, .. } | Filter::Exists(f) => field(f),
                Filter::Regex { field: f, pattern } => field(f) && regex::Regex::new(&regex_for(pattern)).is_ok(),
                Filter::Element { field: f, conds } => field(f) && element_conds(conds).is_ok(),
                Filter::Size { field: f, .. } => field(f),
            }
        }
        matches!(self, Filter::True) || inner(self)
    }
}

/// Whether `conds` can be the conditions of one [`Filter::Element`]: one condition (not `!=`), or a lower and an
/// upper bound; orderings only on scalars. The error says what is wrong.
pub(crate) fn element_conds(conds: &[(CompareOp, FilterValue)]) -> Result<(), String> {
    let lower = |op: CompareOp| matches!(op, CompareOp::Gt | CompareOp::Ge);
    let upper = |op: CompareOp| matches!(op, CompareOp::Lt | CompareOp::Le);
    for (op, v) in conds {
        if *op == CompareOp::Ne {
            return Err("an element condition cannot be '!=': negate the whole condition instead".into());
        }
        if *op != CompareOp::Eq && matches!(v, FilterValue::Json(_)) {
            return Err(format!("an array or object element can only be compared with '==', not '{}'", op.symbol()));
        }
    }
    match conds {
        [_] => Ok(()),
        [(a, _), (b, _)] if (lower(*a) && upper(*b)) || (upper(*a) && lower(*b)) => Ok(()),
        [] => Err("an element condition needs a condition".into()),
        _ => Err("an element condition is one comparison, or a lower and an upper bound".into()),
    }
}

/// The regular expression that `regex` compiles for a filter's pattern, with MongoDB's (PCRE's) meaning of `$`:
/// outside a character class and without the `m` flag, an unescaped `$` also matches before a final newline.
pub(crate) fn regex_for(pattern: &str) -> String {
    // With the `m` flag (`$options: "m"` becomes a leading `(?m)`), `$` already means what PCRE's does.
    let flags = pattern.strip_prefix("(?").and_then(|rest| rest.split_once([')', ':'])).map(|(f, _)| f);
    if flags.is_some_and(|f| f.split('-').next().is_some_and(|on| on.contains('m'))) {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
                // A `]` first in a class is a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            '$' if class_depth == 0 => out.push_str("(?:\\n?\\z)"),
            c => out.push(c),
        }
    }
    out
}

/// The typed builder: programs compose filters without formatting text.
///
/// ```
/// use trove_model::filter::Filter;
///
/// let f = Filter::meta("material").eq("steel")
///     .and(Filter::meta("temperature").ge(300))
///     .and(Filter::path_glob("runs/2024/*"))
///     .and(!Filter::exists("calibrated"));
/// assert_eq!(
///     f.to_string(),
///     r#"material == "steel" and temperature >= 300 and @path ~ "runs/2024/*" and not exists(calibrated)"#
/// );
/// ```
impl Filter {
    /// A metadata key (dotted path) to compare: `Filter::meta("temperature").ge(300)`.
    pub fn meta(key: impl Into<String>) -> FieldRef {
        FieldRef(Field::Meta(key.into()))
    }

    /// A built-in field to compare: `Filter::builtin(Builtin::Kind).eq("measurement")`.
    pub fn builtin(builtin: Builtin) -> FieldRef {
        FieldRef(Field::Builtin(builtin))
    }

    /// `@tag == tag`: the dataset has the tag.
    pub fn tag(tag: impl Into<String>) -> Filter {
        // A tag is a name, never a time: keep it a string even if it looks like a date.
        Filter::Compare {
            field: Field::Builtin(Builtin::Tag),
            op: CompareOp::Eq,
            value: FilterValue::String(tag.into()),
        }
    }

    /// `@path ~ pattern`.
    pub fn path_glob(pattern: impl Into<String>) -> Filter {
        Filter::Glob { field: Field::Builtin(Builtin::Path), pattern: pattern.into() }
    }

    /// `exists(key)` for a metadata key.
    pub fn exists(key: impl Into<String>) -> Filter {
        Filter::Exists(Field::Meta(key.into()))
    }

    /// Both hold. `True` disappears and ANDs flatten, so chains stay in normal form.
    pub fn and(self, other: Filter) -> Filter {
        join(self, other, true)
    }

    /// Either holds. ORs flatten.
    pub fn or(self, other: Filter) -> Filter {
        join(self, other, false)
    }

    /// The negation. `Filter::True.not()` has no text form of its own (it displays as `not exists(@id)`).
    #[allow(clippy::should_implement_trait)] // `!` is implemented too; the method reads better in chains.
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }
}

fn join(a: Filter, b: Filter, and: bool) -> Filter {
    let split = |f: Filter| -> Vec<Filter> {
        match f {
            Filter::True if and => vec![],
            Filter::And(cs) if and => cs,
            Filter::Or(cs) if !and => cs,
            f => vec![f],
        }
    };
    // `True or x` is True: nothing to join.
    if !and && (a == Filter::True || b == Filter::True) {
        return Filter::True;
    }
    let mut children = split(a);
    children.extend(split(b));
    match children.len() {
        0 => Filter::True,
        1 => children.pop().unwrap_or(Filter::True),
        _ if and => Filter::And(children),
        _ => Filter::Or(children),
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;
    fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }
}

impl std::ops::BitAnd for Filter {
    type Output = Filter;
    fn bitand(self, rhs: Filter) -> Filter {
        self.and(rhs)
    }
}

impl std::ops::BitOr for Filter {
    type Output = Filter;
    fn bitor(self, rhs: Filter) -> Filter {
        self.or(rhs)
    }
}

/// A field waiting for its condition, from [`Filter::meta`] or [`Filter::builtin`].
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRef(pub Field);

impl FieldRef {
    fn compare(self, op: CompareOp, value: impl Into<FilterValue>) -> Filter {
        Filter::Compare { field: self.0, op, value: value.into() }
    }

    /// `field == value`.
    pub fn eq(self, value: impl Into<FilterValue>) -> Filter {
        self.compare(CompareOp::Eq, value)
    }

    /// `field != value`.
    pub fn ne(self, value: impl Into<FilterValue>) -> Filter {
        self.compare(CompareOp::Ne, value)
    }

    /// `field < value`.
    pub fn lt(self, value: impl Into<FilterValue>) -> Filter {
        self.compare(CompareOp::Lt, value)
    }

    /// `field <= value`.
    pub fn le(self, value: impl Into<FilterValue>) -> Filter {
        self.compare(CompareOp::Le, value)
    }

    /// `field > value`.
    pub fn gt(self, value: impl Into<FilterValue>) -> Filter {
        self.compare(CompareOp::Gt, value)
    }

    /// `field >= value`.
    pub fn ge(self, value: impl Into<FilterValue>) -> Filter {
        self.compare(CompareOp::Ge, value)
    }

    /// `field in [values]`.
    pub fn is_in<V: Into<FilterValue>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::In { field: self.0, values: values.into_iter().map(Into::into).collect(), negated: false }
    }

    /// `field not in [values]`.
    pub fn not_in<V: Into<FilterValue>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::In { field: self.0, values: values.into_iter().map(Into::into).collect(), negated: true }
    }

    /// `field ~ pattern`.
    pub fn glob(self, pattern: impl Into<String>) -> Filter {
        Filter::Glob { field: self.0, pattern: pattern.into() }
    }

    /// `exists(field)`.
    pub fn exists(self) -> Filter {
        Filter::Exists(self.0)
    }

    /// `field =~ regex`.
    pub fn regex(self, pattern: impl Into<String>) -> Filter {
        Filter::Regex { field: self.0, pattern: pattern.into() }
    }

    /// `field contains value`: some element of the array equals `value`.
    pub fn contains(self, value: impl Into<FilterValue>) -> Filter {
        Filter::Element { field: self.0, conds: vec![(CompareOp::Eq, value.into())] }
    }

    /// `size(field) == len`.
    pub fn size(self, len: u64) -> Filter {
        Filter::Size { field: self.0, op: CompareOp::Eq, len }
    }
}

// ---- Display: the canonical text form ----

/// Words a bare key may not be, so the canonical form quotes them.
const RESERVED: [&str; 8] = ["and", "or", "not", "in", "exists", "true", "false", "null"];

fn is_bare_segment(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphanumeric() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// Writes `s` as a double-quoted string literal that the parser reads back exactly.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Builtin(b) => write!(f, "@{}", b.name()),
            Field::Meta(key) if key.split('.').all(is_bare_segment) => f.write_str(key),
            // One quoted segment holds the whole path: it parses back to the same key string.
            Field::Meta(key) => write_quoted(f, key),
        }
    }
}

impl fmt::Display for FilterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterValue::Null => f.write_str("null"),
            FilterValue::Bool(b) => write!(f, "{b}"),
            FilterValue::Int(n) => write!(f, "{n}"),
            FilterValue::UInt(n) => write!(f, "{n}"),
            // Debug always shows a '.' or an exponent (`3.0`, `1e300`), so the text reads back as a float.
            FilterValue::Float(x) => write!(f, "{x:?}"),
            FilterValue::String(s) => write_quoted(f, s),
            FilterValue::Time(t) => write_quoted(f, &crate::time::rfc3339(*t)),
            FilterValue::Json(j) => write_json(f, j),
        }
    }
}

/// An array or object literal in the text language's own syntax (its string escapes, not JSON's).
fn write_json(f: &mut fmt::Formatter<'_>, value: &serde_json::Value) -> fmt::Result {
    use serde_json::Value;
    match value {
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => write!(f, "{i}"),
            (_, Some(u), _) => write!(f, "{u}"),
            (_, _, Some(x)) => write!(f, "{x:?}"),
            _ => write!(f, "{n}"),
        },
        Value::String(s) => write_quoted(f, s),
        Value::Array(items) => {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_json(f, item)?;
            }
            f.write_str("]")
        }
        Value::Object(map) => {
            f.write_str("{")?;
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_quoted(f, k)?;
                f.write_str(": ")?;
                write_json(f, v)?;
            }
            f.write_str("}")
        }
    }
}

impl fmt::Display for Filter {
    /// The canonical text: `Filter::parse` reads it back to the same filter when [`Filter::is_normal`]; any
    /// other filter displays as an equivalent one. `True` alone is the empty string; a `True` nested in a larger
    /// filter has no text of its own and shows as `exists(@id)`, which every dataset satisfies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::True => Ok(()),
            other => write_filter(f, other),
        }
    }
}

fn write_filter(f: &mut fmt::Formatter<'_>, filter: &Filter) -> fmt::Result {
    match filter {
        Filter::True => f.write_str("exists(@id)"),
        Filter::And(cs) if cs.is_empty() => f.write_str("exists(@id)"),
        Filter::Or(cs) if cs.is_empty() => f.write_str("not exists(@id)"),
        Filter::And(cs) | Filter::Or(cs) if cs.len() == 1 => write_filter(f, &cs[0]),
        Filter::And(cs) => write_joined(f, cs, " and ", |c| matches!(c, Filter::And(_) | Filter::Or(_))),
        Filter::Or(cs) => write_joined(f, cs, " or ", |c| matches!(c, Filter::Or(_))),
        Filter::Not(inner) => {
            f.write_str("not ")?;
            write_child(f, inner, matches!(**inner, Filter::And(_) | Filter::Or(_)))
        }
        Filter::Compare { field, op, value } => write!(f, "{field} {} {value}", op.symbol()),
        Filter::In { field, values, negated } => {
            write!(f, "{field} {}in [", if *negated { "not " } else { "" })?;
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str("]")
        }
        Filter::Glob { field, pattern } => {
            write!(f, "{field} ~ ")?;
            write_quoted(f, pattern)
        }
        Filter::Regex { field, pattern } => {
            write!(f, "{field} =~ ")?;
            write_quoted(f, pattern)
        }
        Filter::Element { field, conds } => match conds.as_slice() {
            [(CompareOp::Eq, v)] => write!(f, "{field} contains {v}"),
            conds => {
                write!(f, "{field} contains (")?;
                for (i, (op, v)) in conds.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    write!(f, "{} {v}", op.symbol())?;
                }
                f.write_str(")")
            }
        },
        Filter::Size { field, op, len } => write!(f, "size({field}) {} {len}", op.symbol()),
        Filter::Exists(field) => write!(f, "exists({field})"),
    }
}

fn write_joined(
    f: &mut fmt::Formatter<'_>,
    children: &[Filter],
    sep: &str,
    needs_parens: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (i, c) in children.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        // A nested group of the same (or a looser) operator keeps its parentheses, so the structure round-trips.
        write_child(f, c, needs_parens(c))?;
    }
    Ok(())
}

fn write_child(f: &mut fmt::Formatter<'_>, child: &Filter, parens: bool) -> fmt::Result {
    if parens {
        f.write_str("(")?;
        write_filter(f, child)?;
        f.write_str(")")
    } else {
        write_filter(f, child)
    }
}
