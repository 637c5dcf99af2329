//! MongoDB-style JSON filters, onto the same AST as the text language.
//!
//! `$regex` is translated to a glob when it is parsed, so there is one string-matching construct for every
//! execution path: the regular expressions accepted are those a glob can say exactly: an optional `^`, an optional
//! `$`, literal characters (metacharacters escaped with `\`), `.` (any one character) and `.*` (any run). Without
//! `^` (or `$`) the match may start (or end) anywhere, as in MongoDB. Anything else (`+`, `?`, `|`, groups,
//! classes, `\d`, a literal `*` or `?`, `$options`) is refused with an error saying so.

use serde_json::{Map, Value, json};

use super::{Builtin, CompareOp, Field, Filter, FilterError, FilterValue};

pub(super) fn from_mongo(json: &Value) -> Result<Filter, FilterError> {
    let input = json.to_string();
    filter(json).map_err(|message| FilterError { message, column: None, input })
}

/// A whole filter: an object whose keys are fields or `$and`/`$or`/`$not`, all of which must hold.
fn filter(json: &Value) -> Result<Filter, String> {
    let Value::Object(map) = json else {
        return Err(format!("a filter must be a JSON object, found {}", kind(json)));
    };
    let mut conditions = Vec::with_capacity(map.len());
    // Keys in sorted order whatever serde_json's map keeps, so one document always gives one filter.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in entries {
        conditions.push(match key.as_str() {
            "$and" => all(list(key, value)?),
            "$or" => match list(key, value)? {
                mut one if one.len() == 1 => one.remove(0),
                many => Filter::Or(many),
            },
            "$not" => Filter::Not(Box::new(filter(value)?)),
            op if op.starts_with('$') => {
                return Err(format!("unknown operator '{op}' where a key or $and, $or, $not was expected"));
            }
            _ => field_conditions(field(key)?, value).map_err(|e| format!("in {}: {e}", Value::from(key.as_str())))?,
        });
    }
    Ok(all(conditions))
}

/// The operand of `$and`/`$or`: a non-empty array of filters.
fn list(op: &str, value: &Value) -> Result<Vec<Filter>, String> {
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(filter).collect(),
        other => Err(format!("{op} needs a non-empty array of filters, found {}", kind(other))),
    }
}

/// `True` for none, the condition for one, their AND for several.
fn all(mut conditions: Vec<Filter>) -> Filter {
    match conditions.len() {
        0 => Filter::True,
        1 => conditions.remove(0),
        _ => Filter::And(conditions),
    }
}

fn field(key: &str) -> Result<Field, String> {
    if let Some(name) = key.strip_prefix('@') {
        return Builtin::from_name(name).map(Field::Builtin).ok_or_else(|| {
            let known: Vec<String> = Builtin::ALL.iter().map(|b| format!("@{}", b.name())).collect();
            format!("unknown built-in field '{key}' (known: {})", known.join(" "))
        });
    }
    if key.is_empty() {
        return Err("a key is empty".to_string());
    }
    Ok(Field::Meta(key.to_string()))
}

/// The conditions on one field: a plain value (equality) or an object of operators.
fn field_conditions(field: Field, value: &Value) -> Result<Filter, String> {
    match value {
        Value::Object(ops) if !ops.is_empty() && ops.keys().all(|k| k.starts_with('$')) => operators(field, ops),
        Value::Object(_) => Err("a value cannot be a JSON object: reach into nested metadata with a dotted key \
                                 (\"a.b\"), or use operators ({\"$gt\": 1})"
            .to_string()),
        Value::Array(_) => {
            Err("a value cannot be an array: to match one of several values use {\"$in\": [...]}".to_string())
        }
        scalar => Ok(Filter::Compare { field, op: CompareOp::Eq, value: self::scalar("the value", scalar)? }),
    }
}

fn operators(field: Field, ops: &Map<String, Value>) -> Result<Filter, String> {
    let mut conditions = Vec::with_capacity(ops.len());
    let mut entries: Vec<(&String, &Value)> = ops.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (op, value) in entries {
        let compare = |op: CompareOp| -> Result<Filter, String> {
            Ok(Filter::Compare { field: field.clone(), op, value: scalar(&format!("'{}'", op_name(op)), value)? })
        };
        conditions.push(match op.as_str() {
            "$eq" => compare(CompareOp::Eq)?,
            "$ne" => compare(CompareOp::Ne)?,
            "$lt" => compare(CompareOp::Lt)?,
            "$lte" => compare(CompareOp::Le)?,
            "$gt" => compare(CompareOp::Gt)?,
            "$gte" => compare(CompareOp::Ge)?,
            "$in" | "$nin" => Filter::In { field: field.clone(), values: values(op, value)?, negated: op == "$nin" },
            "$exists" => match value {
                Value::Bool(true) => Filter::Exists(field.clone()),
                Value::Bool(false) => Filter::Not(Box::new(Filter::Exists(field.clone()))),
                other => return Err(format!("'$exists' needs true or false, found {}", kind(other))),
            },
            "$regex" => match value {
                Value::String(re) => Filter::Glob { field: field.clone(), pattern: regex_to_glob(re)? },
                other => return Err(format!("'$regex' needs a string, found {}", kind(other))),
            },
            "$options" => match value {
                Value::String(o) if o.is_empty() => continue,
                _ => return Err("'$options' (regex flags) are not supported".to_string()),
            },
            "$not" => match value {
                Value::Object(inner) if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) => {
                    Filter::Not(Box::new(operators(field.clone(), inner)?))
                }
                other => return Err(format!("'$not' needs an object of operators, found {}", kind(other))),
            },
            other => return Err(format!("unknown operator '{other}'")),
        });
    }
    Ok(all(conditions))
}

fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "$eq",
        CompareOp::Ne => "$ne",
        CompareOp::Lt => "$lt",
        CompareOp::Le => "$lte",
        CompareOp::Gt => "$gt",
        CompareOp::Ge => "$gte",
    }
}

fn values(op: &str, value: &Value) -> Result<Vec<FilterValue>, String> {
    match value {
        Value::Array(items) => items.iter().map(|v| scalar(&format!("an element of '{op}'"), v)).collect(),
        other => Err(format!("'{op}' needs an array, found {}", kind(other))),
    }
}

/// A JSON scalar as a filter value; strings that are ISO-8601 timestamps become times, as in the text form.
fn scalar(what: &str, value: &Value) -> Result<FilterValue, String> {
    Ok(match value {
        Value::Null => FilterValue::Null,
        Value::Bool(b) => FilterValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FilterValue::Int(i),
            None => FilterValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => FilterValue::from_text(s),
        other => return Err(format!("{what} must be a number, string, boolean or null, found {}", kind(other))),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The glob that matches exactly what `re` matches, or why there is none (module documentation).
pub(super) fn regex_to_glob(re: &str) -> Result<String, String> {
    let refuse = |what: &str| {
        Err(format!(
            "'$regex' {what} is not supported: only ^, $, literal characters, '.' and '.*' (they become a glob)"
        ))
    };
    let (start_anchor, body) = match re.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, re),
    };
    // A final `$` anchors unless it is escaped (an odd number of backslashes before it).
    let end_anchor =
        body.strip_suffix('$').is_some_and(|b| b.chars().rev().take_while(|&c| c == '\\').count() % 2 == 0);
    let body = if end_anchor { &body[..body.len() - 1] } else { body };
    let mut glob = String::new();
    if !start_anchor {
        glob.push('*');
    }
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                None => return refuse("ending in a lone '\\'"),
                Some(e) if e.is_ascii_alphanumeric() => return refuse(&format!("with the class '\\{e}'")),
                Some(e @ ('*' | '?')) => return refuse(&format!("matching a literal '{e}'")),
                Some(e) => glob.push(e),
            },
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                glob.push('*');
            }
            '.' => glob.push('?'),
            '*' | '?' => return refuse(&format!("with the character '{c}'")),
            '+' | '|' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => {
                return refuse(&format!("with the character '{c}'"));
            }
            c => glob.push(c),
        }
    }
    if !end_anchor {
        glob.push('*');
    }
    Ok(glob)
}

/// The anchored regular expression that matches exactly what the glob matches.
fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '\\' | '.' | '+' | '|' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re.push('$');
    re
}

pub(super) fn to_mongo(filter: &Filter) -> Value {
    match filter {
        Filter::True => json!({}),
        Filter::And(cs) if cs.is_empty() => json!({}),
        Filter::And(cs) => json!({ "$and": cs.iter().map(to_mongo).collect::<Vec<_>>() }),
        // An empty OR holds for nothing: the negation of the empty filter.
        Filter::Or(cs) if cs.is_empty() => json!({ "$not": {} }),
        Filter::Or(cs) => json!({ "$or": cs.iter().map(to_mongo).collect::<Vec<_>>() }),
        Filter::Not(inner) => json!({ "$not": to_mongo(inner) }),
        Filter::Compare { field, op, value } => on_field(field, op_name(*op), value_json(value)),
        Filter::In { field, values, negated } => on_field(
            field,
            if *negated { "$nin" } else { "$in" },
            Value::Array(values.iter().map(value_json).collect()),
        ),
        Filter::Glob { field, pattern } => on_field(field, "$regex", Value::String(glob_to_regex(pattern))),
        Filter::Exists(field) => on_field(field, "$exists", Value::Bool(true)),
    }
}

fn on_field(field: &Field, op: &str, operand: Value) -> Value {
    let key = match field {
        Field::Meta(key) => key.clone(),
        Field::Builtin(b) => format!("@{}", b.name()),
    };
    let mut ops = Map::new();
    ops.insert(op.to_string(), operand);
    let mut out = Map::new();
    out.insert(key, Value::Object(ops));
    Value::Object(out)
}

/// A value as JSON; a time as its RFC 3339 text (read back as a time). A non-finite float has no JSON: `null`.
fn value_json(value: &FilterValue) -> Value {
    match value {
        FilterValue::Null => Value::Null,
        FilterValue::Bool(b) => Value::Bool(*b),
        FilterValue::Int(i) => Value::from(*i),
        FilterValue::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        FilterValue::String(s) => Value::String(s.clone()),
        FilterValue::Time(t) => Value::String(crate::time::rfc3339(*t)),
    }
}
