//! MongoDB-style JSON filters, onto the same AST as the text language.
//!
//! As in MongoDB, a comparison on a metadata key (`{"channels": "B"}`, `$eq`, `$gt`…, `$in`) holds when the
//! value itself compares so, or when it is an array and some element does; `$ne` and `$nin` are their negations
//! among datasets with the key. `$elemMatch` (one element satisfies every operator), `$all` and `$size` reach
//! into arrays. `$regex` (with `$options` `i m s x`) is a regular expression; `$glob` (beyond MongoDB) is the
//! text form's `~`. The text form's comparisons compare the value itself; [`to_mongo`] writes them so.

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
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
            Err("an object mixes operators ($...) with keys: write operators alone, or an object to compare whole"
                .into())
        }
        other => Ok(reach(&field, CompareOp::Eq, self::value("the value", other)?)),
    }
}

/// MongoDB's reading of a comparison on a metadata key: the value itself, or some element when it is an array.
fn reach(field: &Field, op: CompareOp, value: FilterValue) -> Filter {
    let compare = Filter::Compare { field: field.clone(), op, value: value.clone() };
    match field {
        Field::Meta(_) if op != CompareOp::Ne && (op == CompareOp::Eq || !matches!(value, FilterValue::Json(_))) => {
            Filter::Or(vec![compare, Filter::Element { field: field.clone(), conds: vec![(op, value)] }])
        }
        _ => compare,
    }
}

fn operators(field: Field, ops: &Map<String, Value>) -> Result<Filter, String> {
    let mut conditions = Vec::with_capacity(ops.len());
    let mut entries: Vec<(&String, &Value)> = ops.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let meta = matches!(field, Field::Meta(_));
    for (op, operand) in entries {
        let compare = |op: CompareOp| -> Result<Filter, String> {
            let v = value(&format!("'{}'", op_name(op)), operand)?;
            if op != CompareOp::Eq && op != CompareOp::Ne && matches!(v, FilterValue::Json(_)) {
                return Err(format!("'{}' needs a number, string or time, found {}", op_name(op), kind(operand)));
            }
            Ok(reach(&field, op, v))
        };
        conditions.push(match op.as_str() {
            "$eq" => compare(CompareOp::Eq)?,
            "$ne" => {
                let v = value("'$ne'", operand)?;
                let ne = Filter::Compare { field: field.clone(), op: CompareOp::Ne, value: v.clone() };
                if meta {
                    ne.and(!Filter::Element { field: field.clone(), conds: vec![(CompareOp::Eq, v)] })
                } else {
                    ne
                }
            }
            "$lt" => compare(CompareOp::Lt)?,
            "$lte" => compare(CompareOp::Le)?,
            "$gt" => compare(CompareOp::Gt)?,
            "$gte" => compare(CompareOp::Ge)?,
            "$in" | "$nin" => {
                let vs = values(op, operand)?;
                let negated = op == "$nin";
                let whole = Filter::In { field: field.clone(), values: vs.clone(), negated };
                let elements: Vec<Filter> = if meta {
                    vs.into_iter()
                        .map(|v| Filter::Element { field: field.clone(), conds: vec![(CompareOp::Eq, v)] })
                        .collect()
                } else {
                    vec![]
                };
                match (elements.is_empty(), negated) {
                    (true, _) => whole,
                    (false, false) => Filter::Or(std::iter::once(whole).chain(elements).collect()),
                    (false, true) => {
                        Filter::And(std::iter::once(whole).chain(elements.into_iter().map(|e| !e)).collect())
                    }
                }
            }
            "$all" => match operand {
                // MongoDB: an empty `$all` matches nothing.
                Value::Array(items) if items.is_empty() => Filter::Or(vec![]),
                Value::Array(items) => all(items
                    .iter()
                    .map(|v| Ok(reach(&field, CompareOp::Eq, value("an element of '$all'", v)?)))
                    .collect::<Result<Vec<_>, String>>()?),
                other => return Err(format!("'$all' needs an array, found {}", kind(other))),
            },
            "$elemMatch" => elem_match(&field, operand)?,
            "$size" => size(&field, operand)?,
            "$exists" => match operand {
                Value::Bool(true) => Filter::Exists(field.clone()),
                Value::Bool(false) => Filter::Not(Box::new(Filter::Exists(field.clone()))),
                other => return Err(format!("'$exists' needs true or false, found {}", kind(other))),
            },
            "$regex" => match operand {
                Value::String(re) => {
                    let flags = match ops.get("$options") {
                        None => String::new(),
                        Some(Value::String(o)) => o.clone(),
                        Some(other) => {
                            return Err(format!("'$options' needs a string of flags, found {}", kind(other)));
                        }
                    };
                    if let Some(bad) = flags.chars().find(|c| !"imsx".contains(*c)) {
                        return Err(format!("'$options' flag '{bad}' is not supported (i m s x are)"));
                    }
                    let pattern = if flags.is_empty() { re.clone() } else { format!("(?{flags}){re}") };
                    super::parse::check_regex(&pattern)?;
                    Filter::Regex { field: field.clone(), pattern }
                }
                other => return Err(format!("'$regex' needs a string, found {}", kind(other))),
            },
            "$options" if ops.contains_key("$regex") => continue,
            "$options" => return Err("'$options' needs a '$regex' beside it".to_string()),
            "$glob" => match operand {
                Value::String(pattern) => Filter::Glob { field: field.clone(), pattern: pattern.clone() },
                other => return Err(format!("'$glob' needs a string, found {}", kind(other))),
            },
            "$not" => match operand {
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

/// `{"$elemMatch": {"$gte": 1, "$lt": 5}}`: one element satisfies every operator.
fn elem_match(field: &Field, operand: &Value) -> Result<Filter, String> {
    let Value::Object(ops) = operand else {
        return Err(format!("'$elemMatch' needs an object of operators, found {}", kind(operand)));
    };
    if ops.is_empty() || !ops.keys().all(|k| k.starts_with('$')) {
        return Err("'$elemMatch' takes operators on the elements ({\"$gte\": 1, \"$lt\": 5}); elements that are \
                    objects are compared whole, with $eq or $in"
            .to_string());
    }
    let mut entries: Vec<(&String, &Value)> = ops.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    if let [(op, operand)] = entries.as_slice()
        && op.as_str() == "$in"
    {
        let vs = values(op, operand)?;
        let elements =
            vs.into_iter().map(|v| Filter::Element { field: field.clone(), conds: vec![(CompareOp::Eq, v)] });
        let mut elements: Vec<Filter> = elements.collect();
        return Ok(if elements.len() == 1 { elements.remove(0) } else { Filter::Or(elements) });
    }
    let mut conds = Vec::new();
    for (op, operand) in entries {
        let op = match op.as_str() {
            "$eq" => CompareOp::Eq,
            "$lt" => CompareOp::Lt,
            "$lte" => CompareOp::Le,
            "$gt" => CompareOp::Gt,
            "$gte" => CompareOp::Ge,
            other => return Err(format!("'$elemMatch' takes $eq $lt $lte $gt $gte or $in alone, not '{other}'")),
        };
        conds.push((op, value(&format!("'{}'", op_name(op)), operand)?));
    }
    super::element_conds(&conds).map_err(|e| format!("in '$elemMatch': {e}"))?;
    Ok(Filter::Element { field: field.clone(), conds })
}

/// `{"$size": 3}`, or (beyond MongoDB) `{"$size": {"$gt": 2}}`.
fn size(field: &Field, operand: &Value) -> Result<Filter, String> {
    let len = |v: &Value| v.as_u64().ok_or_else(|| format!("'$size' needs a whole number of elements, found {v}"));
    match operand {
        Value::Object(ops) if ops.len() == 1 => {
            let (op, n) = ops.iter().next().ok_or("'$size' needs a number")?;
            let op = match op.as_str() {
                "$eq" => CompareOp::Eq,
                "$ne" => CompareOp::Ne,
                "$lt" => CompareOp::Lt,
                "$lte" => CompareOp::Le,
                "$gt" => CompareOp::Gt,
                "$gte" => CompareOp::Ge,
                other => {
                    return Err(format!("'$size' takes a number or one of $eq $ne $lt $lte $gt $gte, not '{other}'"));
                }
            };
            Ok(Filter::Size { field: field.clone(), op, len: len(n)? })
        }
        n => Ok(Filter::Size { field: field.clone(), op: CompareOp::Eq, len: len(n)? }),
    }
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

fn values(op: &str, operand: &Value) -> Result<Vec<FilterValue>, String> {
    match operand {
        Value::Array(items) => items.iter().map(|v| value(&format!("an element of '{op}'"), v)).collect(),
        other => Err(format!("'{op}' needs an array, found {}", kind(other))),
    }
}

/// A JSON value as a filter value; strings that are ISO-8601 timestamps become times, as in the text form;
/// arrays and objects compare whole.
fn value(_what: &str, operand: &Value) -> Result<FilterValue, String> {
    Ok(FilterValue::from(operand.clone()))
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

pub(super) fn to_mongo(filter: &Filter) -> Value {
    match filter {
        Filter::True => json!({}),
        Filter::And(cs) if cs.is_empty() => json!({}),
        Filter::And(cs) => json!({ "$and": cs.iter().map(to_mongo).collect::<Vec<_>>() }),
        // An empty OR holds for nothing: the negation of the empty filter.
        Filter::Or(cs) if cs.is_empty() => json!({ "$not": {} }),
        Filter::Or(cs) => json!({ "$or": cs.iter().map(to_mongo).collect::<Vec<_>>() }),
        Filter::Not(inner) => json!({ "$not": to_mongo(inner) }),
        Filter::Compare { field: field @ Field::Meta(_), op: CompareOp::Ne, value } => on_field_ops(
            field,
            vec![("$exists", json!(true)), ("$not", scalar_only(op_name(CompareOp::Eq), value_json(value)))],
        ),
        Filter::Compare { field: field @ Field::Meta(_), op, value } => {
            on_field_ops(field, exact(op_name(*op), value_json(value)))
        }
        Filter::Compare { field, op, value } => on_field(field, op_name(*op), value_json(value)),
        Filter::In { field: field @ Field::Meta(_), values, negated } => {
            let list = Value::Array(values.iter().map(value_json).collect());
            if *negated {
                on_field_ops(field, vec![("$exists", json!(true)), ("$not", scalar_only("$in", list))])
            } else {
                on_field_ops(field, exact("$in", list))
            }
        }
        Filter::In { field, values, negated } => on_field(
            field,
            if *negated { "$nin" } else { "$in" },
            Value::Array(values.iter().map(value_json).collect()),
        ),
        Filter::Glob { field, pattern } => on_field(field, "$glob", Value::String(pattern.clone())),
        Filter::Regex { field, pattern } => on_field(field, "$regex", Value::String(pattern.clone())),
        Filter::Element { field, conds } => {
            let ops: Map<String, Value> =
                conds.iter().map(|(op, v)| (op_name(*op).to_string(), value_json(v))).collect();
            on_field(field, "$elemMatch", Value::Object(ops))
        }
        Filter::Size { field, op: CompareOp::Eq, len } => on_field(field, "$size", json!(len)),
        Filter::Size { field, op, len } => on_field(field, "$size", json!({ op_name(*op): len })),
        Filter::Exists(field) => on_field(field, "$exists", Value::Bool(true)),
    }
}

/// The operators that compare a metadata value itself and not its elements: MongoDB's operator, less the
/// elements it would also match (`{"$gt": 1, "$not": {"$elemMatch": {"$gt": 1}}}`).
fn exact(op: &str, operand: Value) -> Vec<(&str, Value)> {
    let mut inner = Map::new();
    inner.insert(op.to_string(), operand.clone());
    vec![(op, operand), ("$not", json!({ "$elemMatch": Value::Object(inner) }))]
}

fn scalar_only(op: &str, operand: Value) -> Value {
    Value::Object(exact(op, operand).into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn on_field_ops(field: &Field, ops: Vec<(&str, Value)>) -> Value {
    let key = match field {
        Field::Meta(key) => key.clone(),
        Field::Builtin(b) => format!("@{}", b.name()),
    };
    let ops: Map<String, Value> = ops.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut out = Map::new();
    out.insert(key, Value::Object(ops));
    Value::Object(out)
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
        FilterValue::UInt(u) => Value::from(*u),
        FilterValue::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        FilterValue::String(s) => Value::String(s.clone()),
        FilterValue::Time(t) => Value::String(crate::time::rfc3339(*t)),
        FilterValue::Json(j) => j.clone(),
    }
}
