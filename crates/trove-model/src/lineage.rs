//! Lineage: what a piece of derived data was made from, and the key that names it (SPEC sections 1 and 8).
//!
//! A lineage is `{name, version, config, inputs, code}` (strax's DataKey, plus the code that ran). Its **key** is
//! the BLAKE3 hash of its canonical JSON, so equal lineages have equal keys on every machine and in every
//! version of trove, and any change to what went in (a config value, the version, an input's bytes, a code
//! file's bytes) makes a new key. The canonical JSON:
//!
//! - has the fields `code`, `config`, `inputs`, `name`, `version`, always, and object keys sorted by their
//!   UTF-8 bytes, at every depth;
//! - writes a number with no fractional part (`3.0`) as an integer (`3`), so that the same value typed in
//!   Python, Rust or a shell gives the same key; `-0.0` is `0`; other numbers are written shortest-exact;
//! - names an input by what identifies its content, never by where it was found: a derived input by its own
//!   lineage key (so the whole tree enters, recursively), an object by its checksum, a dataset by its objects'
//!   names and checksums;
//! - lists code files by checksum alone, sorted (renaming a script, or listing scripts in another order, is
//!   not a change; editing one is);
//! - keeps inputs in the order given: the first input and the second are different roles.
//!
//! Where each input was found (`ref`) and each code file's name are kept in the stored lineage for people to
//! read, outside the key. Strings are compared byte for byte (no Unicode normalisation).
//!
//! ```
//! use trove_model::lineage::{Input, Lineage};
//! use serde_json::json;
//!
//! let a = Lineage::new("peaks", "2")
//!     .with_config("threshold", json!(3))
//!     .with_config("gain", json!(1.5))
//!     .with_input(Input::object("blake3:0123"));
//! let b = Lineage::new("peaks", "2")
//!     .with_config("gain", json!(1.5))
//!     .with_config("threshold", json!(3.0))
//!     .with_input(Input::object("blake3:0123"));
//! assert_eq!(a.key(), b.key());
//! assert_ne!(a.key(), a.clone().with_config("threshold", json!(4)).key());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::name::validate_name;

/// Why a lineage could not be built or read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    #[error("invalid lineage name: {0}")]
    Name(String),
    #[error("invalid lineage version {0:?}: a version is a non-empty word without control characters")]
    Version(String),
    #[error("invalid config key {0:?}: a config key is non-empty")]
    ConfigKey(String),
    #[error("invalid checksum {0:?}: expected blake3:<hex>")]
    Checksum(String),
    #[error("invalid stored lineage: {0}")]
    Stored(String),
}

/// One thing a computation read.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Derived data, named by its own lineage: its key enters the key of what is derived from it.
    Derived { lineage: Box<Lineage>, at: Option<String> },
    /// One object, by its checksum (`blake3:<hex>`).
    Object { checksum: String, at: Option<String> },
    /// A whole dataset that is not derived: its objects' names and checksums.
    Dataset { objects: BTreeMap<String, String>, at: Option<String> },
}

impl Input {
    /// An object input, by checksum.
    pub fn object(checksum: impl Into<String>) -> Input {
        Input::Object { checksum: checksum.into(), at: None }
    }

    /// A derived input, by its lineage.
    pub fn derived(lineage: Lineage) -> Input {
        Input::Derived { lineage: Box::new(lineage), at: None }
    }

    /// A dataset input, by its objects' names and checksums.
    pub fn dataset(objects: BTreeMap<String, String>) -> Input {
        Input::Dataset { objects, at: None }
    }

    /// The same input, noting the reference it was found at (kept for people, not part of the key).
    pub fn found_at(mut self, reference: impl Into<String>) -> Input {
        let r = Some(reference.into());
        match &mut self {
            Input::Derived { at, .. } | Input::Object { at, .. } | Input::Dataset { at, .. } => *at = r,
        }
        self
    }

    /// Where the input was found, if that was noted.
    pub fn at(&self) -> Option<&str> {
        match self {
            Input::Derived { at, .. } | Input::Object { at, .. } | Input::Dataset { at, .. } => at.as_deref(),
        }
    }

    /// What of the input enters the key.
    fn identity(&self) -> Value {
        let mut m = Map::new();
        match self {
            Input::Derived { lineage, .. } => m.insert("lineage".into(), Value::String(lineage.key())),
            Input::Object { checksum, .. } => m.insert("object".into(), Value::String(checksum.clone())),
            Input::Dataset { objects, .. } => m.insert(
                "dataset".into(),
                Value::Object(objects.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            ),
        };
        Value::Object(m)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Input::Derived { lineage, .. } => m.insert("lineage".into(), lineage.to_json()),
            Input::Object { checksum, .. } => m.insert("object".into(), Value::String(checksum.clone())),
            Input::Dataset { objects, .. } => m.insert(
                "dataset".into(),
                Value::Object(objects.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            ),
        };
        if let Some(at) = self.at() {
            m.insert("ref".into(), Value::String(at.to_string()));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<Input, LineageError> {
        let bad = |why: &str| LineageError::Stored(format!("input {v}: {why}"));
        let m = v.as_object().ok_or_else(|| bad("not an object"))?;
        let at = match m.get("ref") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("\"ref\" is not a string")),
        };
        let input = if let Some(l) = m.get("lineage") {
            Input::Derived { lineage: Box::new(Lineage::from_json(l)?), at: None }
        } else if let Some(c) = m.get("object") {
            Input::object(c.as_str().ok_or_else(|| bad("\"object\" is not a checksum"))?)
        } else if let Some(Value::Object(objects)) = m.get("dataset") {
            let mut names = BTreeMap::new();
            for (name, c) in objects {
                names.insert(name.clone(), c.as_str().ok_or_else(|| bad("a dataset checksum is not a string"))?.into());
            }
            Input::dataset(names)
        } else {
            return Err(bad("expected \"lineage\", \"object\" or \"dataset\""));
        };
        Ok(match at {
            Some(at) => input.found_at(at),
            None => input,
        })
    }
}

/// A code file that ran: its name (for people) and checksum (for the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFile {
    pub file: String,
    pub checksum: String,
}

/// What derived data was made from. See the [module documentation](self) for how the key is made.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    /// What was computed (a plugin or step name); it is also the folder derived data is stored under.
    pub name: String,
    pub version: String,
    pub config: BTreeMap<String, Value>,
    pub inputs: Vec<Input>,
    pub code: Vec<CodeFile>,
}

/// One way two lineages of the same name differ (see [`Lineage::differences`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    Name {
        ours: String,
        theirs: String,
    },
    Version {
        ours: String,
        theirs: String,
    },
    /// A config key set on one side only, or set to different values (compared canonically).
    Config {
        key: String,
        ours: Option<Value>,
        theirs: Option<Value>,
    },
    /// The inputs differ (in number, order or content).
    Inputs,
    /// The code files differ.
    Code,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "unset".to_string(), Value::to_string);
        match self {
            Difference::Name { ours, theirs } => write!(f, "name {ours} here, {theirs} there"),
            Difference::Version { ours, theirs } => write!(f, "version {ours} here, {theirs} there"),
            Difference::Config { key, ours, theirs } => {
                write!(f, "config {key} = {} here, {} there", show(ours), show(theirs))
            }
            Difference::Inputs => write!(f, "the inputs differ"),
            Difference::Code => write!(f, "the code differs"),
        }
    }
}

impl Lineage {
    /// A lineage with no config, inputs or code yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Lineage {
        Lineage {
            name: name.into(),
            version: version.into(),
            config: BTreeMap::new(),
            inputs: Vec::new(),
            code: Vec::new(),
        }
    }

    /// The same lineage with config `key` set to `value`.
    pub fn with_config(mut self, key: impl Into<String>, value: Value) -> Lineage {
        self.config.insert(key.into(), value);
        self
    }

    /// The same lineage with one more input.
    pub fn with_input(mut self, input: Input) -> Lineage {
        self.inputs.push(input);
        self
    }

    /// The same lineage with one more code file.
    pub fn with_code(mut self, file: impl Into<String>, checksum: impl Into<String>) -> Lineage {
        self.code.push(CodeFile { file: file.into(), checksum: checksum.into() });
        self
    }

    /// Checks the name (it becomes a folder name), version, config keys and checksums, recursively.
    pub fn validate(&self) -> Result<(), LineageError> {
        validate_name(&self.name).map_err(|e| LineageError::Name(e.to_string()))?;
        if self.version.is_empty() || self.version.chars().any(char::is_control) {
            return Err(LineageError::Version(self.version.clone()));
        }
        if let Some(key) = self.config.keys().find(|k| k.is_empty()) {
            return Err(LineageError::ConfigKey(key.clone()));
        }
        let checksum = |c: &str| {
            let hex = c.strip_prefix("blake3:").unwrap_or("");
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LineageError::Checksum(c.to_string()));
            }
            Ok(())
        };
        for c in &self.code {
            checksum(&c.checksum)?;
        }
        for input in &self.inputs {
            match input {
                Input::Derived { lineage, .. } => lineage.validate()?,
                Input::Object { checksum: c, .. } => checksum(c)?,
                Input::Dataset { objects, .. } => objects.values().try_for_each(|c| checksum(c))?,
            }
        }
        Ok(())
    }

    /// The canonical JSON text the key hashes (see the [module documentation](self)).
    pub fn canonical_json(&self) -> String {
        let mut code: Vec<&str> = self.code.iter().map(|c| c.checksum.as_str()).collect();
        code.sort_unstable();
        let mut m = Map::new();
        m.insert("code".into(), code.into_iter().map(|c| Value::String(c.into())).collect());
        m.insert("config".into(), Value::Object(self.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
        m.insert("inputs".into(), self.inputs.iter().map(Input::identity).collect());
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("version".into(), Value::String(self.version.clone()));
        canonical(&Value::Object(m))
    }

    /// The lineage key: the BLAKE3 hash of the canonical JSON, as 64 hex digits.
    pub fn key(&self) -> String {
        blake3::hash(self.canonical_json().as_bytes()).to_hex().to_string()
    }

    /// The form a dataset stores: the key, the fields, each input's `ref` and each code file's name.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("key".into(), Value::String(self.key()));
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("version".into(), Value::String(self.version.clone()));
        m.insert("config".into(), Value::Object(self.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
        m.insert("inputs".into(), self.inputs.iter().map(Input::to_json).collect());
        let code = self.code.iter().map(|c| {
            let mut f = Map::new();
            f.insert("file".into(), Value::String(c.file.clone()));
            f.insert("checksum".into(), Value::String(c.checksum.clone()));
            Value::Object(f)
        });
        m.insert("code".into(), code.collect());
        Value::Object(m)
    }

    /// Reads back what [`Lineage::to_json`] stored.
    pub fn from_json(v: &Value) -> Result<Lineage, LineageError> {
        let m = v.as_object().ok_or_else(|| LineageError::Stored(format!("{v} is not an object")))?;
        let text = |field: &str| -> Result<String, LineageError> {
            m.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| LineageError::Stored(format!("\"{field}\" is missing or not a string")))
        };
        let mut lineage = Lineage::new(text("name")?, text("version")?);
        match m.get("config") {
            None => {}
            Some(Value::Object(c)) => lineage.config = c.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(_) => return Err(LineageError::Stored("\"config\" is not an object".into())),
        }
        if let Some(inputs) = m.get("inputs") {
            let inputs = inputs.as_array().ok_or_else(|| LineageError::Stored("\"inputs\" is not a list".into()))?;
            lineage.inputs = inputs.iter().map(Input::from_json).collect::<Result<_, _>>()?;
        }
        if let Some(code) = m.get("code") {
            let code = code.as_array().ok_or_else(|| LineageError::Stored("\"code\" is not a list".into()))?;
            for c in code {
                let field = |f: &str| c.get(f).and_then(Value::as_str).map(str::to_string);
                match (field("file"), field("checksum")) {
                    (Some(file), Some(checksum)) => lineage.code.push(CodeFile { file, checksum }),
                    _ => return Err(LineageError::Stored(format!("code entry {c}: expected file and checksum"))),
                }
            }
        }
        Ok(lineage)
    }

    /// How `self` differs from `other`, field by field; empty when their keys are equal.
    pub fn differences(&self, other: &Lineage) -> Vec<Difference> {
        let mut out = Vec::new();
        if self.name != other.name {
            out.push(Difference::Name { ours: self.name.clone(), theirs: other.name.clone() });
        }
        if self.version != other.version {
            out.push(Difference::Version { ours: self.version.clone(), theirs: other.version.clone() });
        }
        let keys: std::collections::BTreeSet<&String> = self.config.keys().chain(other.config.keys()).collect();
        for key in keys {
            let (ours, theirs) = (self.config.get(key), other.config.get(key));
            if ours.map(canonical) != theirs.map(canonical) {
                out.push(Difference::Config { key: key.clone(), ours: ours.cloned(), theirs: theirs.cloned() });
            }
        }
        let inputs = |l: &Lineage| l.inputs.iter().map(Input::identity).collect::<Vec<_>>();
        if inputs(self) != inputs(other) {
            out.push(Difference::Inputs);
        }
        let code = |l: &Lineage| {
            let mut c: Vec<&str> = l.code.iter().map(|c| c.checksum.as_str()).collect();
            c.sort_unstable();
            c.into_iter().map(str::to_string).collect::<Vec<_>>()
        };
        if code(self) != code(other) {
            out.push(Difference::Code);
        }
        out
    }
}

/// Canonical JSON text of a value: object keys sorted, integral numbers as integers, no whitespace.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => out.push_str(&v.to_string()),
        Value::Number(n) => out.push_str(&canonical_number(n)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

/// Integers as integers; a float with no fractional part within ±2^53 (where every integer is exact) as the
/// integer; any other float in serde_json's shortest exact form.
fn canonical_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => format!("{}", f as i64),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests;
