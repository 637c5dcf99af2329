//! Names of projects, dataset path segments and objects, and the dataset paths built from them.
//!
//! SPEC section 1: a name is 1–255 bytes of Unicode without `/ \ : * ? " < > |`, control characters, or a
//! leading/trailing space, and is never `.` or `..`. The rules are strict because every name becomes a
//! folder or file name on disk and a key in an object store.

use std::fmt;

/// Characters that may not appear in any name.
pub const FORBIDDEN: &[char] = &['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// Why a name was rejected. `Display` gives one line naming the bad character and its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid name: it is empty")]
    Empty,
    #[error("invalid name {name:?}: it is {len} bytes long, the limit is 255")]
    TooLong { name: String, len: usize },
    #[error(
        "invalid name {name:?}: character {ch:?} at position {pos} is not allowed (names may not contain / \\ : * ? \" < > |)"
    )]
    Forbidden { name: String, ch: char, pos: usize },
    #[error("invalid name {name:?}: control character {ch:?} at position {pos} is not allowed")]
    Control { name: String, ch: char, pos: usize },
    #[error("invalid name {name:?}: it may not start or end with a space")]
    Space { name: String },
    #[error("invalid name {name:?}: `.` and `..` are reserved")]
    Dots { name: String },
    #[error("invalid project name {name:?}: project names may not start with `.` (reserved for trove's own files)")]
    HiddenProject { name: String },
    #[error("invalid project name {name:?}: it is the name of the store's settings file at the root")]
    ReservedProject { name: String },
    #[error("invalid path {path:?}: {source}")]
    InPath { path: String, source: Box<NameError> },
}

/// Checks one name (a project, one segment of a dataset path, or an object name).
///
/// ```
/// use trove_model::name::validate_name;
/// assert!(validate_name("velocity.parquet").is_ok());
/// assert!(validate_name("a:b").unwrap_err().to_string().contains("':'"));
/// ```
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 255 {
        return Err(NameError::TooLong { name: name.to_string(), len: name.len() });
    }
    for (pos, ch) in name.chars().enumerate() {
        if FORBIDDEN.contains(&ch) {
            return Err(NameError::Forbidden { name: name.to_string(), ch, pos: pos + 1 });
        }
        if ch.is_control() {
            return Err(NameError::Control { name: name.to_string(), ch, pos: pos + 1 });
        }
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(NameError::Space { name: name.to_string() });
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots { name: name.to_string() });
    }
    Ok(())
}

/// Checks a project name: a name that additionally may not start with `.`, since the store root holds
/// `.trove/` beside the project folders.
pub fn validate_project(name: &str) -> Result<(), NameError> {
    validate_name(name)?;
    if name.starts_with('.') {
        return Err(NameError::HiddenProject { name: name.to_string() });
    }
    if name == "trove.toml" {
        return Err(NameError::ReservedProject { name: name.to_string() });
    }
    Ok(())
}

/// A validated dataset path inside a project: one or more names joined by `/` (`runs/2024/r17`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetPath(String);

impl DatasetPath {
    /// Parses and validates a path. Leading, trailing and doubled slashes are errors, not silently fixed,
    /// so that what is stored is exactly what the user wrote.
    pub fn parse(path: &str) -> Result<Self, NameError> {
        if path.is_empty() {
            return Err(NameError::Empty);
        }
        for segment in path.split('/') {
            validate_name(segment).map_err(|e| NameError::InPath {
                path: path.to_string(),
                source: Box::new(if segment.is_empty() { NameError::Empty } else { e }),
            })?;
        }
        Ok(DatasetPath(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The parent path, `None` at the top of a project.
    pub fn parent(&self) -> Option<DatasetPath> {
        self.0.rfind('/').map(|i| DatasetPath(self.0[..i].to_string()))
    }

    /// Every ancestor, outermost first (`runs`, `runs/2024` for `runs/2024/r17`).
    pub fn ancestors(&self) -> Vec<DatasetPath> {
        let mut out = Vec::new();
        for (i, ch) in self.0.char_indices() {
            if ch == '/' {
                out.push(DatasetPath(self.0[..i].to_string()));
            }
        }
        out
    }

    /// `child` joined below this path.
    pub fn join(&self, child: &DatasetPath) -> DatasetPath {
        DatasetPath(format!("{}/{}", self.0, child.0))
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &DatasetPath) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'/')
    }

    /// Replaces the prefix `from` (which `self` must be within) by `to`.
    pub fn rebase(&self, from: &DatasetPath, to: &DatasetPath) -> Option<DatasetPath> {
        if !self.is_within(from) {
            return None;
        }
        Some(DatasetPath(format!("{}{}", to.0, &self.0[from.0.len()..])))
    }
}

impl fmt::Display for DatasetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DatasetPath {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DatasetPath::parse(&value)
    }
}

impl From<DatasetPath> for String {
    fn from(value: DatasetPath) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["a", "velocity.parquet", "T (K)", "r17", "ünïcødé", ".hidden", "a b", &"x".repeat(255)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_with_the_bad_character_named() {
        let e = validate_name("run*1").unwrap_err().to_string();
        assert!(e.contains("'*'") && e.contains("position 4"), "{e}");
        assert!(matches!(validate_name(""), Err(NameError::Empty)));
        assert!(matches!(validate_name(" a"), Err(NameError::Space { .. })));
        assert!(matches!(validate_name("a "), Err(NameError::Space { .. })));
        assert!(matches!(validate_name(".."), Err(NameError::Dots { .. })));
        assert!(matches!(validate_name("a\tb"), Err(NameError::Control { .. })));
        assert!(matches!(validate_name(&"é".repeat(128)), Err(NameError::TooLong { .. })));
        assert!(matches!(validate_project(".trove"), Err(NameError::HiddenProject { .. })));
    }

    #[test]
    fn paths() {
        let p = DatasetPath::parse("runs/2024/r17").unwrap();
        assert_eq!(p.name(), "r17");
        assert_eq!(p.parent().unwrap().as_str(), "runs/2024");
        assert_eq!(p.ancestors().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["runs", "runs/2024"]);
        let runs = DatasetPath::parse("runs").unwrap();
        assert!(p.is_within(&runs));
        assert!(!DatasetPath::parse("runs2").unwrap().is_within(&runs));
        assert_eq!(p.rebase(&runs, &DatasetPath::parse("old/runs").unwrap()).unwrap().as_str(), "old/runs/2024/r17");
        for bad in ["", "/a", "a/", "a//b", "a/../b", "a/b:c"] {
            assert!(DatasetPath::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn validation_never_panics_and_accepted_names_are_safe(s in "\\PC{0,20}|[ -~]{0,300}") {
            if validate_name(&s).is_ok() {
                prop_assert!(!s.is_empty() && s.len() <= 255);
                prop_assert!(!s.chars().any(|c| FORBIDDEN.contains(&c) || c.is_control()));
                prop_assert!(s != "." && s != ".." && !s.starts_with(' ') && !s.ends_with(' '));
            }
        }

        #[test]
        fn valid_paths_round_trip(segs in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 1..5)) {
            prop_assume!(segs.iter().all(|s| s != "." && s != ".."));
            let joined = segs.join("/");
            let p = DatasetPath::parse(&joined).unwrap();
            prop_assert_eq!(p.segments().count(), segs.len());
            prop_assert_eq!(p.as_str(), joined.as_str());
        }
    }
}
