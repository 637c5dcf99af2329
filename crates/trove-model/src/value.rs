//! Typed `key=value` arguments (SPEC section 5) and dotted keys into nested metadata.
//!
//! `3` and `2.5` are numbers, `true`/`false` booleans, `null` is null, `[...]` and `{...}` are JSON, anything
//! else is a string. `key:=JSON` forces JSON and `key==text` forces a string.

use serde_json::{Map, Value};

/// Why a `key=value` argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid assignment {input:?}: expected key=value (or key:=JSON, key==text)")]
    NoEquals { input: String },
    #[error("invalid key {key:?} in {input:?}: {why}")]
    BadKey { input: String, key: String, why: &'static str },
    #[error("invalid JSON for key {key:?}: {error} (write {key}==TEXT to store it as a string)")]
    BadJson { key: String, error: String },
    #[error("invalid metadata key {key:?}: {why}")]
    BadStoredKey { key: String, why: &'static str },
    #[error("metadata at {key:?} is nested more than {MAX_DEPTH} levels deep")]
    TooDeep { key: String },
    #[error(
        "the integer {literal} (at {key:?}) does not fit in 64 bits, and would be rounded: integers are kept exactly from -9223372036854775808 to 18446744073709551615; write it as text (\"{literal}\") or as a float"
    )]
    HugeInteger { key: String, literal: String },
}

/// The first integer literal of a JSON text that no 64-bit integer holds. serde_json reads one as a float,
/// silently rounded (`123456789012345678901` became `1.2345678901234568e20`), so every entry point that takes
/// JSON text refuses it first.
///
/// ```
/// use trove_model::value::oversized_integer;
/// assert_eq!(oversized_integer(r#"{"seed": 123456789012345678901}"#).as_deref(), Some("123456789012345678901"));
/// assert_eq!(oversized_integer(r#"{"seed": 18446744073709551615, "x": 1e300, "s": "99999999999999999999"}"#), None);
/// ```
pub fn oversized_integer(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'0'..=b'9' | b'.' | b'e' | b'E' => i += 1,
                        b'+' | b'-' if matches!(bytes[i - 1], b'e' | b'E') => i += 1,
                        _ => break,
                    }
                }
                let literal = &text[start..i];
                let integral = !literal.contains(['.', 'e', 'E']);
                if integral && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() && literal != "-" {
                    return Some(literal.to_string());
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Refuses JSON text holding an integer past 64 bits, naming `key` (or where the text came from).
pub fn check_integers(key: &str, text: &str) -> Result<(), ValueError> {
    match oversized_integer(text) {
        Some(literal) => Err(ValueError::HugeInteger { key: key.to_string(), literal }),
        None => Ok(()),
    }
}

/// The deepest metadata may nest: objects and arrays inside one another, where each part of a dotted key
/// counts as a level. The log's JSON reader and SQLite's JSON functions read deeper; the limit leaves room
/// for the levels a log line wraps around the metadata, so whatever is written can be read back.
pub const MAX_DEPTH: usize = 64;

/// The longest metadata key (one part of a dotted key), in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// The one rule for a part of a metadata key, at every depth and from every entry point: keys are what
/// filters name with dots (`sample.thickness_mm`), so a key may not be empty or contain a dot, and a
/// top-level key may not start with `@` (built-in fields) or `$` (MongoDB-style operators).
fn key_part_problem(part: &str, top_level: bool) -> Option<&'static str> {
    if part.is_empty() {
        return Some("a key (or a part of a dotted key) is empty");
    }
    if part.contains('.') {
        return Some("a stored key may not contain a dot (dots separate the levels of nested metadata)");
    }
    if part.len() > MAX_KEY_BYTES {
        return Some("a key may be at most 255 bytes long");
    }
    if part.chars().any(char::is_control) {
        return Some("control characters (NUL, newlines, ...) are not allowed in keys");
    }
    if top_level && part.starts_with('@') {
        return Some("keys starting with @ are reserved for built-in fields");
    }
    if top_level && part.starts_with('$') {
        return Some("keys starting with $ are reserved for MongoDB-style operators");
    }
    None
}

/// Checks a metadata document (`--meta-json`, an ingest line, a library call): every key at every depth
/// follows the key rule, and nothing nests deeper than [`MAX_DEPTH`].
pub fn check_document(doc: &Map<String, Value>) -> Result<(), ValueError> {
    for (key, value) in doc {
        if let Some(why) = key_part_problem(key, true) {
            return Err(ValueError::BadStoredKey { key: key.clone(), why });
        }
        check_nested(key, value, 1)?;
    }
    Ok(())
}

/// Checks a value set at a dotted key (`key=value`): the key's parts and the value, whose nesting counts
/// from the key's depth.
pub fn check_assignment(key: &str, value: &Value) -> Result<(), ValueError> {
    validate_key(key, key)?;
    check_nested(key, value, key.split('.').count())
}

fn check_nested(at: &str, value: &Value, depth: usize) -> Result<(), ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::TooDeep { key: at.to_string() });
    }
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = format!("{at}.{key}");
                if let Some(why) = key_part_problem(key, false) {
                    return Err(ValueError::BadStoredKey { key: path, why });
                }
                if inner.is_object() || inner.is_array() {
                    check_nested(&path, inner, depth + 1)?;
                }
            }
        }
        Value::Array(items) => {
            for inner in items.iter().filter(|v| v.is_object() || v.is_array()) {
                check_nested(at, inner, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks that a JSON value (a lineage, say) nests no deeper than [`MAX_DEPTH`].
pub fn check_depth(what: &str, value: &Value) -> Result<(), ValueError> {
    fn depth(value: &Value, at: usize) -> bool {
        if at > MAX_DEPTH {
            return false;
        }
        match value {
            Value::Object(map) => map.values().all(|v| depth(v, at + 1)),
            Value::Array(items) => items.iter().all(|v| depth(v, at + 1)),
            _ => true,
        }
    }
    if depth(value, 0) { Ok(()) } else { Err(ValueError::TooDeep { key: what.to_string() }) }
}

/// Parses one `key=value` argument into its (dotted) key and typed value.
///
/// ```
/// use trove_model::value::parse_assignment;
/// use serde_json::json;
/// assert_eq!(parse_assignment("t=300").unwrap(), ("t".to_string(), json!(300)));
/// assert_eq!(parse_assignment("id==007").unwrap(), ("id".to_string(), json!("007")));
/// assert_eq!(parse_assignment("xs:=[1,2]").unwrap(), ("xs".to_string(), json!([1, 2])));
/// ```
pub fn parse_assignment(input: &str) -> Result<(String, Value), ValueError> {
    let eq = input.find('=').ok_or_else(|| ValueError::NoEquals { input: input.to_string() })?;
    let (key, value) = if eq > 0 && input.as_bytes()[eq - 1] == b':' {
        let key = &input[..eq - 1];
        let raw = &input[eq + 1..];
        check_integers(key, raw)?;
        let value = serde_json::from_str(raw)
            .map_err(|e| ValueError::BadJson { key: key.to_string(), error: e.to_string() })?;
        (key, value)
    } else if input[eq + 1..].starts_with('=') {
        (&input[..eq], Value::String(input[eq + 2..].to_string()))
    } else {
        let key = &input[..eq];
        (key, typed_value(key, &input[eq + 1..])?)
    };
    validate_key(input, key)?;
    Ok((key.to_string(), value))
}

/// Parses a key given alone (as to `meta unset`).
pub fn parse_key(input: &str) -> Result<String, ValueError> {
    validate_key(input, input)?;
    Ok(input.to_string())
}

fn validate_key(input: &str, key: &str) -> Result<(), ValueError> {
    let bad = |why| Err(ValueError::BadKey { input: input.to_string(), key: key.to_string(), why });
    if key.is_empty() {
        return bad("the key is empty");
    }
    for (i, part) in key.split('.').enumerate() {
        if part.is_empty() {
            return bad("a dotted key has an empty part");
        }
        if let Some(why) = key_part_problem(part, i == 0) {
            return bad(why);
        }
    }
    if key.split('.').count() > MAX_DEPTH {
        return bad("a dotted key may have at most 64 parts");
    }
    Ok(())
}

/// Types a bare value as SPEC section 5 says.
pub fn typed_value(key: &str, raw: &str) -> Result<Value, ValueError> {
    match raw {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    let first = raw.as_bytes().first().copied();
    if matches!(first, Some(b'[' | b'{')) {
        check_integers(key, raw)?;
        return serde_json::from_str(raw)
            .map_err(|e| ValueError::BadJson { key: key.to_string(), error: e.to_string() });
    }
    if matches!(first, Some(b'-' | b'0'..=b'9'))
        && let Ok(n @ Value::Number(_)) = serde_json::from_str::<Value>(raw)
    {
        check_integers(key, raw)?;
        return Ok(n);
    }
    Ok(Value::String(raw.to_string()))
}

/// Sets `value` at a dotted key inside `doc`, creating (or replacing non-object) intermediate objects.
pub fn set_dotted(doc: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            doc.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let slot = doc.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                set_dotted(inner, rest, value);
            }
        }
    }
}

/// Removes the value at a dotted key; returns whether anything was there. Emptied parents stay as `{}`.
pub fn unset_dotted(doc: &mut Map<String, Value>, key: &str) -> bool {
    match key.split_once('.') {
        None => doc.remove(key).is_some(),
        Some((head, rest)) => match doc.get_mut(head) {
            Some(Value::Object(inner)) => unset_dotted(inner, rest),
            _ => false,
        },
    }
}

/// Reads the value at a dotted key.
pub fn get_dotted<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => doc.get(key),
        Some((head, rest)) => match doc.get(head) {
            Some(Value::Object(inner)) => get_dotted(inner, rest),
            _ => None,
        },
    }
}

/// Every leaf of a document with its dotted key (arrays are leaves), for the metadata index.
pub fn leaves(doc: &Map<String, Value>) -> Vec<(String, &Value)> {
    fn walk<'a>(prefix: &str, doc: &'a Map<String, Value>, out: &mut Vec<(String, &'a Value)>) {
        for (k, v) in doc {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                Value::Object(inner) if !inner.is_empty() => walk(&key, inner, out),
                _ => out.push((key, v)),
            }
        }
    }
    let mut out = Vec::new();
    walk("", doc, &mut out);
    // Sorted by key whatever order serde_json's map keeps (`preserve_order` is on when zarrs is built).
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The canonical text of a JSON value, by which arrays and objects compare as wholes: object keys sorted, a
/// float that is a whole number below 2^63 in magnitude written as that integer (so `[1.0]` equals `[1]`, as
/// numbers compare by value everywhere else), `-0.0` as `0`, strings as `serde_json` escapes them.
///
/// ```
/// use serde_json::json;
/// use trove_model::value::canonical_json;
/// assert_eq!(canonical_json(&json!({"b": [1.0, -0.0], "a": "x"})), r#"{"a":"x","b":[1,0]}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => out.push_str(&i.to_string()),
                (_, Some(u), _) => out.push_str(&u.to_string()),
                (_, _, Some(x)) if x.fract() == 0.0 && x.abs() < 9_223_372_036_854_775_808.0 => {
                    out.push_str(&(x as i64).to_string())
                }
                _ => out.push_str(&n.to_string()),
            },
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn typing() {
        let t = |s: &str| parse_assignment(s).unwrap().1;
        assert_eq!(t("a=3"), json!(3));
        assert_eq!(t("a=2.5"), json!(2.5));
        assert_eq!(t("a=-1e3"), json!(-1000.0));
        assert_eq!(t("a=true"), json!(true));
        assert_eq!(t("a=null"), json!(null));
        assert_eq!(t("a=[1, \"x\"]"), json!([1, "x"]));
        assert_eq!(t("a={\"b\": 1}"), json!({"b": 1}));
        assert_eq!(t("a=steel"), json!("steel"));
        assert_eq!(t("a=007"), json!("007"));
        assert_eq!(t("a=1.2.3"), json!("1.2.3"));
        assert_eq!(t("a="), json!(""));
        assert_eq!(t("a=x=y"), json!("x=y"));
        assert_eq!(t("a==3"), json!("3"));
        assert_eq!(t("a:=\"3\""), json!("3"));
        assert_eq!(t("a:=3"), json!(3));
        assert!(parse_assignment("a:=nope").unwrap_err().to_string().contains("invalid JSON for key \"a\""));
        assert!(parse_assignment("a=[oops").is_err());
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("=3").is_err());
        assert!(parse_assignment("a..b=3").is_err());
        assert!(parse_assignment("@kind=3").is_err());
    }

    #[test]
    fn dotted() {
        let mut doc = Map::new();
        set_dotted(&mut doc, "sample.thickness_mm", json!(2));
        set_dotted(&mut doc, "sample.material", json!("steel"));
        set_dotted(&mut doc, "t", json!(300));
        assert_eq!(Value::Object(doc.clone()), json!({"sample": {"thickness_mm": 2, "material": "steel"}, "t": 300}));
        assert_eq!(get_dotted(&doc, "sample.material"), Some(&json!("steel")));
        let keys: Vec<_> = leaves(&doc).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["sample.material", "sample.thickness_mm", "t"]);
        assert!(unset_dotted(&mut doc, "sample.material"));
        assert!(!unset_dotted(&mut doc, "sample.nothing"));
        assert_eq!(Value::Object(doc), json!({"sample": {"thickness_mm": 2}, "t": 300}));
    }

    proptest! {
        #[test]
        fn assignment_parser_never_panics(s in "\\PC{0,30}") {
            let _ = parse_assignment(&s);
        }

        #[test]
        fn forced_strings_stay_strings(k in "[a-z]{1,5}", v in "\\PC{0,20}") {
            let (key, value) = parse_assignment(&format!("{k}=={v}")).unwrap();
            prop_assert_eq!(key, k);
            prop_assert_eq!(value, Value::String(v));
        }
    }
}
