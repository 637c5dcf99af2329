//! References on the command line: `PROJECT`, `PROJECT/PATH` and `PROJECT/PATH:OBJECT`.

use std::fmt;

use crate::name::{DatasetPath, NameError, validate_name, validate_project};

/// A parsed reference to a project, a dataset (or an implicit folder) inside it, or one object of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ref {
    pub project: String,
    pub path: Option<DatasetPath>,
    pub object: Option<String>,
}

/// Why a reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("invalid reference {input:?}: {source}")]
    Name { input: String, source: NameError },
    #[error("invalid reference {input:?}: an object (`:{object}`) needs a dataset path (PROJECT/PATH:OBJECT)")]
    ObjectWithoutPath { input: String, object: String },
}

impl Ref {
    /// Parses `PROJECT[/PATH][:OBJECT]`.
    ///
    /// ```
    /// use trove_model::Ref;
    /// let r = Ref::parse("lab/runs/2024/r17:velocity.parquet").unwrap();
    /// assert_eq!(r.project, "lab");
    /// assert_eq!(r.path.unwrap().as_str(), "runs/2024/r17");
    /// assert_eq!(r.object.as_deref(), Some("velocity.parquet"));
    /// ```
    pub fn parse(input: &str) -> Result<Ref, RefError> {
        let wrap = |source: NameError| RefError::Name { input: input.to_string(), source };
        // `:` is forbidden in every name, so the first one separates the object.
        let (dataset_part, object) = match input.split_once(':') {
            Some((d, o)) => {
                validate_name(o).map_err(wrap)?;
                (d, Some(o.to_string()))
            }
            None => (input, None),
        };
        let (project, path) = match dataset_part.split_once('/') {
            Some((p, rest)) => (p, Some(DatasetPath::parse(rest).map_err(wrap)?)),
            None => (dataset_part, None),
        };
        validate_project(project).map_err(wrap)?;
        if path.is_none()
            && let Some(object) = object
        {
            return Err(RefError::ObjectWithoutPath { input: input.to_string(), object });
        }
        Ok(Ref { project: project.to_string(), path, object })
    }

    /// A reference to a dataset.
    pub fn dataset(project: impl Into<String>, path: DatasetPath) -> Ref {
        Ref { project: project.into(), path: Some(path), object: None }
    }

    /// The same reference without its object part.
    pub fn without_object(&self) -> Ref {
        Ref { project: self.project.clone(), path: self.path.clone(), object: None }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.project)?;
        if let Some(path) = &self.path {
            write!(f, "/{path}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ":{object}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        let p = Ref::parse("lab").unwrap();
        assert_eq!((p.project.as_str(), p.path, p.object), ("lab", None, None));
        let d = Ref::parse("lab/runs/1").unwrap();
        assert_eq!(d.to_string(), "lab/runs/1");
        assert!(matches!(Ref::parse("lab:x"), Err(RefError::ObjectWithoutPath { .. })));
        let e = Ref::parse("lab/runs/a*b").unwrap_err().to_string();
        assert!(e.contains("'*'"), "{e}");
        assert!(Ref::parse("lab/").is_err());
        assert!(Ref::parse("/x").is_err());
        assert!(Ref::parse("lab/x:").is_err());
        assert!(Ref::parse("lab/x:a:b").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_display_round_trips(s in "\\PC{0,40}") {
            if let Ok(r) = Ref::parse(&s) {
                prop_assert_eq!(r.to_string(), s);
            }
        }
    }
}
