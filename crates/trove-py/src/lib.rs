//! `trove._trove`: the native half of the Python package. One class, `Store`, whose methods are a line or two
//! over the `trove` facade the CLI uses, taking and giving plain values (strings, JSON text, paths); the
//! Python half (`python/trove/`) builds the user's API (`Dataset`, `Project`, lazy query results) on top.
//!
//! Every method goes through [`call`], the one boundary helper: it releases the GIL for the duration of the
//! store operation (so other Python threads run while trove does I/O, queries or hashing) and maps the
//! library's error kinds to the exception classes of `trove._errors`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use serde_json::{Map, Value};
use trove::formats::FormatError;
use trove::model::filter::{Filter, FilterError};
use trove::model::lineage::{Input, Lineage};
use trove::model::value::check_integers;
use trove::model::{DatasetPath, Ref};
use trove::{DatasetEdit, Error, FileImport, Query, Sort, Store as Inner};

/// A store opened in this process. Safe to share between threads (the facade serialises what must be
/// serialised); a handle inherited through `fork` refuses to be used, since its catalog connection and locks
/// belong to the parent: the child opens the store again.
#[pyclass(frozen, module = "trove._trove")]
struct Store {
    inner: Arc<Inner>,
    pid: u32,
}

/// Why a call failed: an error of the library, or a filter that does not parse.
enum Failure {
    Store(Error),
    Filter(FilterError),
    Forked,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Store(e)
    }
}

impl From<FilterError> for Failure {
    fn from(e: FilterError) -> Failure {
        Failure::Filter(e)
    }
}

impl From<trove::model::RefError> for Failure {
    fn from(e: trove::model::RefError) -> Failure {
        Failure::Store(e.into())
    }
}

impl From<trove::CatalogError> for Failure {
    fn from(e: trove::CatalogError) -> Failure {
        Failure::Store(e.into())
    }
}

impl From<trove::model::NameError> for Failure {
    fn from(e: trove::model::NameError) -> Failure {
        Failure::Store(e.into())
    }
}

type Outcome<T> = std::result::Result<T, Failure>;

/// The exception class (in `trove._errors`) for a library error: the kinds a Python user catches apart.
fn class_of(e: &Error) -> &'static str {
    match e {
        Error::NoStore { .. } | Error::NotAStore { .. } => "StoreNotFound",
        Error::NotFound { .. } => "NotFound",
        Error::Exists { .. } | Error::AlreadyAStore { .. } => "Conflict",
        Error::Name(_) | Error::Ref(_) | Error::ObjectName { .. } => "InvalidName",
        Error::Invalid(_) | Error::Value(_) | Error::Ingest { .. } | Error::Mismatch(_) | Error::NeedsRecursive(_) => {
            "InvalidInput"
        }
        Error::Refused(_) | Error::LogOnly { .. } => "Conflict",
        // A request the data cannot meet (an unknown column, a slice out of bounds) or a file that is not what
        // its format promises.
        Error::Format(FormatError::Invalid(_) | FormatError::Malformed { .. }) => "InvalidInput",
        Error::Format(FormatError::Io { .. }) => "StorageError",
        Error::Damaged { .. } => "IntegrityError",
        Error::Io { .. } | Error::NoSpace { .. } | Error::Storage(_) => "StorageError",
        _ => "Error",
    }
}

/// A library error's message, with what a Python caller does to get past it where that is a keyword.
fn with_hint(e: &Error) -> String {
    let hint = match e {
        Error::NoStore { .. } => " (pass the store's folder to trove.open(), or set TROVE_STORE)",
        Error::NeedsRecursive(_) => " (pass recursive=True to include them)",
        Error::ObjectName { .. } => " (choose one with name=)",
        _ => "",
    };
    format!("{e}{hint}")
}

/// A long operation's way to notice Ctrl-C: with the GIL released, Python's signal handlers cannot run, so
/// the operation takes the GIL back for a moment every so often and runs them; the exception one raises
/// (`KeyboardInterrupt`) stops the operation and is raised once it has returned.
#[derive(Default)]
struct Interrupt {
    raised: std::sync::Mutex<Option<PyErr>>,
    calls: std::sync::atomic::AtomicU64,
}

impl Interrupt {
    /// Whether to stop, checked for real on every `every`th call.
    fn requested(&self, every: u64) -> bool {
        if !self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(every) {
            return false;
        }
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => false,
            Err(e) => {
                *self.raised.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                true
            }
        }
    }

    /// The call's result, unless a signal handler raised meanwhile: then that exception.
    fn outcome<T>(&self, result: PyResult<T>) -> PyResult<T> {
        match self.raised.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            Some(raised) => Err(raised),
            None => result,
        }
    }
}

/// Rows between two looks for Ctrl-C in a streamed query.
const ROWS_BETWEEN_SIGNAL_CHECKS: u64 = 2048;

/// Runs a store operation with the GIL released and maps its failure to a Python exception. Every method
/// of [`Store`] goes through here.
fn call<T: Send>(py: Python<'_>, f: impl FnOnce() -> Outcome<T> + Send) -> PyResult<T> {
    let result = py.detach(f);
    result.map_err(|failure| {
        let (class, message, column) = match failure {
            Failure::Store(e) => (class_of(&e), with_hint(&e), None),
            Failure::Filter(e) => ("FilterError", e.to_string(), e.column),
            Failure::Forked => (
                "Error",
                "this Store was opened in another process (it came through fork): call trove.open() again in this one"
                    .to_string(),
                None,
            ),
        };
        let raise = || -> PyResult<PyErr> {
            let errors = py.import("trove._errors")?;
            let exception = errors.getattr(class)?.call1((message.clone(),))?;
            if let Some(column) = column {
                exception.setattr("column", column)?;
            }
            Ok(PyErr::from_value(exception))
        };
        raise().unwrap_or_else(|e| e)
    })
}

/// Parses an edit given as JSON text by the Python side: `{"kind", "meta_doc", "meta": [[key, value]...],
/// "unset", "tags_add", "tags_rm"}`, each optional.
fn edit_of(text: &str) -> Outcome<DatasetEdit> {
    let invalid = |what: &str| Failure::Store(Error::Invalid(format!("bad edit from the Python layer: {what}")));
    // serde_json would read an integer past 64 bits as a rounded float: refuse it, as every entry point does.
    check_integers("metadata", text).map_err(Error::from)?;
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?;
    let strings = |key: &str| -> Outcome<Vec<String>> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid(key))).collect()
            }
            Some(_) => Err(invalid(key)),
        }
    };
    let meta = match value.get("meta") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(key), v]) => Ok((key.clone(), v.clone())),
                _ => Err(invalid("meta")),
            })
            .collect::<Outcome<_>>()?,
        Some(_) => return Err(invalid("meta")),
    };
    Ok(DatasetEdit {
        kind: value.get("kind").and_then(Value::as_str).map(str::to_string),
        meta_doc: value.get("meta_doc").and_then(Value::as_object).cloned().unwrap_or_default(),
        meta,
        unset: strings("unset")?,
        tags_add: strings("tags_add")?,
        tags_rm: strings("tags_rm")?,
        lineage: None,
    })
}

/// The leaves of a JSON object as `(dotted key, value)`: nested objects are walked into, anything else
/// (lists too) is a leaf. An empty object is a leaf of its own, so that it is not lost.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (key, v) in map {
                let dotted = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&dotted, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// What `find` gives back: one text per match, or one table.
enum Found {
    Rows(Vec<String>),
    Table(String),
}

/// The rows of `Found.to_pandas()`, built one dataset at a time.
struct Table {
    columns: Vec<String>,
    column_of: std::collections::HashMap<String, usize>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    const FIXED: [&str; 7] = ["id", "project", "path", "kind", "tags", "created", "updated"];

    fn new() -> Table {
        Table {
            columns: Table::FIXED.iter().map(|c| c.to_string()).collect(),
            column_of: std::collections::HashMap::new(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, view: Value, meta: &Map<String, Value>) {
        let mut row: Vec<Value> = Table::FIXED.iter().map(|c| view.get(*c).cloned().unwrap_or(Value::Null)).collect();
        let mut leaves = Vec::new();
        flatten("", &Value::Object(meta.clone()), &mut leaves);
        for (key, value) in leaves {
            let next = self.columns.len();
            let at = *self.column_of.entry(key.clone()).or_insert(next);
            if at == next {
                self.columns.push(key);
            }
            if row.len() <= at {
                row.resize(at + 1, Value::Null);
            }
            row[at] = value;
        }
        self.rows.push(row);
    }

    fn into_json(mut self) -> String {
        for row in &mut self.rows {
            row.resize(self.columns.len(), Value::Null);
        }
        serde_json::json!({"columns": self.columns, "rows": self.rows}).to_string()
    }
}

/// A query from a text filter and a MongoDB-form filter (JSON text), ANDed as the CLI does.
fn query_of(
    filter: Option<&str>,
    mongo: Option<&str>,
    project: Option<String>,
    inherited: bool,
    sort: Option<&str>,
    offset: u64,
    limit: Option<u64>,
) -> Outcome<Query> {
    let text = filter.map(Filter::parse).transpose()?.unwrap_or(Filter::True);
    let json = mongo.map(Filter::from_mongo_str).transpose()?.unwrap_or(Filter::True);
    let mut query = Query::new(text.and(json));
    query.inherited = inherited;
    query.options.project = project;
    query.options.offset = offset;
    query.options.limit = limit;
    if let Some(sort) = sort {
        query.options.sort = sort.parse::<Sort>().map_err(|e| Failure::Store(Error::Invalid(e.to_string())))?;
    }
    Ok(query)
}

impl Store {
    /// The facade, unless this handle came through `fork`, with other processes' commits merged (cheap when
    /// there are none: the store's log watch says so without listing the log).
    fn inner(&self) -> Outcome<&Inner> {
        if std::process::id() != self.pid {
            return Err(Failure::Forked);
        }
        self.inner.refresh()?;
        Ok(&self.inner)
    }

    fn wrap(inner: Inner) -> Store {
        Store { inner: Arc::new(inner), pid: std::process::id() }
    }
}

#[pymethods]
impl Store {
    /// Opens the store at `root`, else at `$TROVE_STORE`, else that of the named `connection` (else of
    /// `$TROVE_CONNECTION`), else the nearest folder at or above the current one holding `trove.toml`, else
    /// the connection named like the login user: as the CLI chooses.
    #[staticmethod]
    #[pyo3(signature = (root=None, connection=None))]
    fn open(py: Python<'_>, root: Option<String>, connection: Option<String>) -> PyResult<Store> {
        call(py, || {
            let from_env = std::env::var("TROVE_STORE").ok().filter(|v| !v.is_empty());
            let options = trove::OpenOptions::default();
            if let Some(root) = root.or(from_env) {
                return Ok(Store::wrap(Inner::open_at(&trove::Location::parse(&root), &options)?));
            }
            let named = connection.or_else(|| std::env::var("TROVE_CONNECTION").ok().filter(|v| !v.is_empty()));
            let connections = || trove::Connections::load_default();
            if let Some(name) = named {
                let found = connections()?;
                let chosen = found.resolve(Some(&name))?.ok_or_else(|| Error::NotFound { what: name.clone() })?;
                return Ok(Store::wrap(chosen.open(&options)?));
            }
            let here = std::env::current_dir().map_err(|e| Error::Io { path: ".".into(), source: e })?;
            match Inner::discover(&here) {
                Ok(root) => Ok(Store::wrap(Inner::open(&root)?)),
                Err(not_found) => match connections()?.resolve(None)? {
                    Some(default) => Ok(Store::wrap(default.open(&options)?)),
                    None => Err(not_found.into()),
                },
            }
        })
    }

    /// Makes a new store at `root`; `durable=False` skips the fsyncs (scratch stores, tests); `catalog` a
    /// PostgreSQL URL for a shared catalog (its password from `PGPASSWORD`, never recorded).
    #[staticmethod]
    #[pyo3(signature = (root, durable, catalog=None))]
    fn init(py: Python<'_>, root: String, durable: bool, catalog: Option<String>) -> PyResult<Store> {
        call(py, || {
            let location = trove::Location::parse(&root);
            Ok(Store::wrap(Inner::init_at(&location, durable, catalog.as_deref().unwrap_or(""), None)?))
        })
    }

    /// Where the store is: its folder, or its object-store URL.
    fn location(&self, py: Python<'_>) -> PyResult<String> {
        call(py, || Ok(self.inner()?.location().to_string()))
    }

    /// Where the catalog lives: the SQLite file, or the PostgreSQL URL without its password.
    fn catalog_location(&self, py: Python<'_>) -> PyResult<String> {
        call(py, || Ok(self.inner()?.catalog_location()))
    }

    fn root(&self, py: Python<'_>) -> PyResult<PathBuf> {
        call(py, || Ok(self.inner()?.root().to_path_buf()))
    }

    /// Applies other processes' commits to the catalog; how many were applied.
    fn sync(&self, py: Python<'_>) -> PyResult<usize> {
        call(py, || Ok(self.inner()?.refresh()?))
    }

    /// A dataset as `trove show --json` prints it, with `inherited` (the merged metadata of its project and
    /// ancestors) when asked.
    fn show(&self, py: Python<'_>, reference: &str, inherited: bool) -> PyResult<String> {
        call(py, || {
            let store = self.inner()?;
            let state = store.dataset_for(&Ref::parse(reference)?)?;
            let mut value = store.dataset_json(&state);
            if inherited {
                value["inherited"] = Value::Object(store.inherited_metadata(&state)?);
            }
            Ok(value.to_string())
        })
    }

    /// Creates or updates `project/path` with an edit (JSON text, see `edit_of`) and files (source, object
    /// name or None, the format to store it as or None). One commit. Returns `{"id", "created"}` as JSON text.
    #[pyo3(signature = (project, path, edit, files, adopt=false))]
    fn put(
        &self,
        py: Python<'_>,
        project: &str,
        path: &str,
        edit: &str,
        files: Vec<(PathBuf, Option<String>, Option<String>)>,
        adopt: bool,
    ) -> PyResult<String> {
        call(py, || {
            let store = self.inner()?;
            let edit = edit_of(edit)?;
            let imports = files
                .into_iter()
                .map(|(source, name, as_format)| {
                    let mut import = FileImport::new(source)?;
                    import.adopt = adopt;
                    import.as_format = as_format;
                    Ok(match name {
                        Some(name) => import.named(name),
                        None => import,
                    })
                })
                .collect::<trove::Result<Vec<_>>>()?;
            let outcome = store.put(project, &DatasetPath::parse(path)?, &edit, &imports)?;
            Ok(serde_json::json!({"id": outcome.id.to_string(), "created": outcome.created}).to_string())
        })
    }

    /// A fresh folder in the store's staging area, for files that `put(..., adopt=True)` moves in.
    fn scratch_folder(&self, py: Python<'_>) -> PyResult<PathBuf> {
        call(py, || Ok(self.inner()?.scratch_folder()?))
    }

    /// Edits the datasets named (metadata, tags, kind) in one commit, all or none.
    fn edit(&self, py: Python<'_>, references: Vec<String>, edit: &str) -> PyResult<u64> {
        call(py, || {
            let refs = references.iter().map(|r| Ref::parse(r)).collect::<Result<Vec<_>, _>>()?;
            Ok(self.inner()?.edit_all(&refs, &edit_of(edit)?)?)
        })
    }

    /// Creates a project, or sets metadata on one (`meta` a JSON object as text).
    fn project(&self, py: Python<'_>, name: &str, meta: &str) -> PyResult<()> {
        call(py, || {
            check_integers("project metadata", meta).map_err(Error::from)?;
            let meta: Map<String, Value> = serde_json::from_str(meta)
                .map_err(|e| Error::Invalid(format!("project metadata is not a JSON object: {e}")))?;
            Ok(self.inner()?.create_project(name, &meta.into_iter().collect::<Vec<_>>())?)
        })
    }

    /// Every project, as `trove show --json PROJECT` prints it, as one JSON array.
    fn projects(&self, py: Python<'_>) -> PyResult<String> {
        call(py, || {
            let store = self.inner()?;
            let all = store.projects()?.iter().map(|p| store.project_json(p)).collect::<trove::Result<Vec<_>>>()?;
            Ok(Value::Array(all).to_string())
        })
    }

    /// Parses a filter without running it, so that a bad one fails where it is written.
    #[staticmethod]
    #[pyo3(signature = (filter=None, mongo=None, sort=None))]
    fn check(py: Python<'_>, filter: Option<&str>, mongo: Option<&str>, sort: Option<&str>) -> PyResult<()> {
        call(py, || query_of(filter, mongo, None, false, sort, 0, None).map(|_| ()))
    }

    /// How many datasets match (an index count, no dataset is read).
    #[pyo3(signature = (filter=None, mongo=None, project=None, inherited=false))]
    fn count(
        &self,
        py: Python<'_>,
        filter: Option<&str>,
        mongo: Option<&str>,
        project: Option<String>,
        inherited: bool,
    ) -> PyResult<u64> {
        call(py, || {
            let query = query_of(filter, mongo, project, inherited, None, 0, None)?;
            Ok(self.inner()?.count(&query)?)
        })
    }

    /// One window of the matches, in order, in the `form` asked for: `"views"`, each dataset as `trove show
    /// --json` prints it (a list of JSON texts); `"refs"`, only each `PROJECT/PATH` (no dataset is read);
    /// `"table"`, one JSON text `{"columns": [...], "rows": [[...]...]}` for `Found.to_pandas()`, a row per
    /// dataset: id, project, path, kind, tags, created, updated, then every metadata leaf as a dotted column
    /// (in order of first appearance; absent leaves are null; lists stay whole).
    #[pyo3(signature = (filter=None, mongo=None, project=None, inherited=false, sort=None, offset=0, limit=None, form="views"))]
    #[allow(clippy::too_many_arguments)]
    fn find(
        &self,
        py: Python<'_>,
        filter: Option<&str>,
        mongo: Option<&str>,
        project: Option<String>,
        inherited: bool,
        sort: Option<&str>,
        offset: u64,
        limit: Option<u64>,
        form: &str,
    ) -> PyResult<Py<PyAny>> {
        let interrupt = Interrupt::default();
        let result = call(py, || {
            let store = self.inner()?;
            let query = query_of(filter, mongo, project, inherited, sort, offset, limit)?;
            let go_on = || !interrupt.requested(ROWS_BETWEEN_SIGNAL_CHECKS);
            let mut rows = Vec::new();
            match form {
                "refs" => store.find_refs(&query, |project, path| {
                    rows.push(format!("{project}/{path}"));
                    Ok(go_on())
                })?,
                "views" => store.find(&query, |state| {
                    rows.push(store.dataset_json(&state).to_string());
                    Ok(go_on())
                })?,
                "table" => {
                    let mut table = Table::new();
                    store.find(&query, |state| {
                        table.push(store.dataset_json(&state), &state.meta);
                        Ok(go_on())
                    })?;
                    return Ok(Found::Table(table.into_json()));
                }
                other => {
                    return Err(Failure::Store(Error::Invalid(format!(
                        "find: form is \"views\", \"refs\" or \"table\", not {other:?}"
                    ))));
                }
            }
            Ok(Found::Rows(rows))
        });
        Ok(match interrupt.outcome(result)? {
            Found::Rows(rows) => rows.into_pyobject(py)?.into_any().unbind(),
            Found::Table(text) => text.into_pyobject(py)?.into_any().unbind(),
        })
    }

    /// Removes the datasets named (with everything below them when `recursive`), one commit, all or none.
    fn remove(&self, py: Python<'_>, references: Vec<String>, recursive: bool) -> PyResult<u64> {
        call(py, || {
            let refs = references.iter().map(|r| Ref::parse(r)).collect::<Result<Vec<_>, _>>()?;
            Ok(self.inner()?.remove_all(&refs, recursive)?)
        })
    }

    /// Moves a dataset (and what is below it) to a new reference, keeping ids.
    fn rename(&self, py: Python<'_>, from: &str, to: &str) -> PyResult<u64> {
        call(py, || Ok(self.inner()?.rename(&Ref::parse(from)?, &Ref::parse(to)?)?))
    }

    /// Copies a dataset to a new reference (a new id, its origin recorded).
    fn copy(&self, py: Python<'_>, from: &str, to: &str, recursive: bool) -> PyResult<u64> {
        call(py, || Ok(self.inner()?.copy(&Ref::parse(from)?, &Ref::parse(to)?, recursive)?))
    }

    /// A table object (Parquet, CSV, Arrow) as a `pyarrow.RecordBatchReader` streaming from the stored file:
    /// only `columns` (all when None), only rows `[row_start, row_end)`; only the row groups needed are read.
    #[pyo3(signature = (reference, columns=None, row_start=None, row_end=None))]
    fn read_table<'py>(
        &self,
        py: Python<'py>,
        reference: &str,
        columns: Option<Vec<String>>,
        row_start: Option<u64>,
        row_end: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reader = call(py, || {
            let rows = match (row_start, row_end) {
                (None, None) => None,
                (start, end) => Some(start.unwrap_or(0)..end.unwrap_or(u64::MAX)),
            };
            let select = trove::TableSelect { columns, rows };
            Ok(self.inner()?.read_table(&Ref::parse(reference)?, &select)?)
        })?;
        pyo3_arrow::PyRecordBatchReader::new(reader).into_pyarrow(py)
    }

    /// Writes part of an array object (a numpy-style slice, `...` for all of it) to `dest` as an `.npy`,
    /// reading only the chunks it needs.
    fn export_slice(&self, py: Python<'_>, reference: &str, slice: &str, dest: PathBuf) -> PyResult<()> {
        call(py, || {
            let slice = trove::Slice::parse(slice).map_err(Error::from)?;
            Ok(self.inner()?.export_slice(&Ref::parse(reference)?, &slice, &dest)?)
        })
    }

    /// Exports an object (a file, or a folder object to a folder) to `dest`, verified against its checksum;
    /// the bytes written.
    fn export(&self, py: Python<'_>, reference: &str, dest: PathBuf) -> PyResult<u64> {
        call(py, || Ok(self.inner()?.export_object(&Ref::parse(reference)?, &dest)?))
    }

    /// Begins a batch in this thread: every write until `end_batch` becomes one commit (see `Store.batch`).
    fn begin_batch(&self, py: Python<'_>) -> PyResult<()> {
        call(py, || Ok(self.inner()?.begin_batch()?))
    }

    /// Ends this thread's batch: publishes everything it gathered as one commit, or (`commit=False`) drops it.
    /// Returns how many records were committed.
    fn end_batch(&self, py: Python<'_>, commit: bool) -> PyResult<usize> {
        call(py, || Ok(self.inner()?.end_batch(commit)?.records))
    }

    /// Loads the data derived with a lineage, or computes it once and stores it (`Store::get_or_compute`).
    /// `compute(folder)` writes the result's files into `folder` and returns its metadata as JSON text (or
    /// None). Inputs are references (`PROJECT/PATH[:OBJECT]`, by content) and `blake3:` checksums; `code` is
    /// `(name, checksum)` pairs. Returns `{"reference", "key", "outcome"}` as JSON text. An exception raised by
    /// `compute` is raised again as it was, after nothing was stored.
    #[pyo3(signature = (name, version, config, input_refs, input_checksums, code, project, compute))]
    #[allow(clippy::too_many_arguments)]
    fn get_or_compute(
        &self,
        py: Python<'_>,
        name: &str,
        version: &str,
        config: &str,
        input_refs: Vec<String>,
        input_checksums: Vec<String>,
        code: Vec<(String, String)>,
        project: &str,
        compute: Py<PyAny>,
    ) -> PyResult<String> {
        let raised: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
        // Ctrl-C while another process computes the same key stops the wait.
        let interrupt = Arc::new(Interrupt::default());
        let waiting = interrupt.clone();
        let result = call(py, || {
            let store = self.inner()?;
            check_integers("config", config).map_err(Error::from)?;
            let config: Map<String, Value> = serde_json::from_str(config)
                .map_err(|e| Error::Invalid(format!("the config is not a JSON object: {e}")))?;
            let mut lineage = Lineage::new(name, version);
            lineage.config = config.into_iter().collect();
            for r in &input_refs {
                lineage.inputs.push(store.lineage_input(&Ref::parse(r)?)?);
            }
            lineage.inputs.extend(input_checksums.iter().map(Input::object));
            for (file, checksum) in code {
                lineage = lineage.with_code(file, checksum);
            }
            let options = trove::ComputeOptions {
                project: project.to_string(),
                keep_waiting: trove::KeepWaiting(Some(Arc::new(move || !waiting.requested(1)))),
                ..Default::default()
            };
            let run = |out: &mut trove::ComputeOutput| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let dir = out.dir().to_path_buf();
                let meta = Python::attach(|py| -> PyResult<Option<String>> { compute.call1(py, (dir,))?.extract(py) });
                match meta {
                    Ok(None) => Ok(()),
                    Ok(Some(text)) => {
                        check_integers("metadata", &text)?;
                        let meta: Map<String, Value> = serde_json::from_str(&text)?;
                        for (key, value) in meta {
                            out.set_meta(key, value);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        let message = Python::attach(|py| e.value(py).repr().map(|r| r.to_string()))
                            .unwrap_or_else(|_| "a Python exception".into());
                        *raised.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        Err(message.into())
                    }
                }
            };
            let computed = store.get_or_compute_with(&lineage, &options, run)?;
            let outcome = match computed.outcome {
                trove::Outcome::Found => "found",
                trove::Outcome::Computed => "computed",
                trove::Outcome::Loose(_) => "loose",
            };
            Ok(serde_json::json!({"reference": computed.reference.to_string(), "key": computed.key, "outcome": outcome})
                .to_string())
        });
        let result = match raised.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(original) if result.is_err() => Err(original),
            _ => result,
        };
        interrupt.outcome(result)
    }

    /// The `blake3:` checksum trove gives these bytes (what an object of them would carry).
    #[staticmethod]
    fn checksum(py: Python<'_>, data: &[u8]) -> String {
        py.detach(|| format!("blake3:{}", blake3::hash(data).to_hex()))
    }

    /// Creates or updates datasets from JSON Lines in the `trove ingest` shape (every line checked before
    /// anything is written; one commit per batch). Returns `(created, updated)`.
    fn ingest(&self, py: Python<'_>, lines: &str) -> PyResult<(u64, u64)> {
        let interrupt = Interrupt::default();
        let result = call(py, || {
            check_integers("ingest", lines).map_err(Error::from)?;
            let mut keep_going = |_, _| !interrupt.requested(1);
            let report = self.inner()?.ingest(lines.as_bytes(), "records", trove::INGEST_BATCH, &mut keep_going)?;
            Ok((report.created, report.updated))
        });
        interrupt.outcome(result)
    }

    /// Read-only SQL over the documented views (`trove sql`): `{"columns": [...], "rows": [[...]]}` as JSON.
    fn sql(&self, py: Python<'_>, query: &str) -> PyResult<String> {
        call(py, || {
            let mut console = self.inner()?.sql_console()?;
            let mut rows = Vec::new();
            let columns = console.query(query, |_, row| {
                rows.push(Value::Array(row));
                Ok(true)
            })?;
            Ok(serde_json::json!({"columns": columns, "rows": rows}).to_string())
        })
    }

    /// The metadata keys in use (`trove schema --json`), as one JSON array.
    #[pyo3(signature = (project=None))]
    fn schema(&self, py: Python<'_>, project: Option<&str>) -> PyResult<String> {
        call(py, || {
            let usage = self.inner()?.schema(project)?;
            Ok(Value::Array(usage.iter().map(trove::key_usage_json).collect()).to_string())
        })
    }

    /// The commits that changed a dataset, oldest first, as `trove log REF --json` prints them (one JSON array).
    fn history(&self, py: Python<'_>, reference: &str) -> PyResult<String> {
        call(py, || {
            let entries = self.inner()?.history(&Ref::parse(reference)?)?;
            serde_json::to_string(&entries).map_err(|e| Failure::Store(Error::Invalid(e.to_string())))
        })
    }

    /// The datasets directly below `PROJECT/PATH` (through implicit folders too), as references, in path order.
    fn children(&self, py: Python<'_>, reference: &str) -> PyResult<Vec<String>> {
        call(py, || {
            let r = Ref::parse(reference)?;
            let path = r.path.as_ref();
            let mut out = Vec::new();
            let mut folders: Vec<String> = path.map(|p| p.to_string()).into_iter().collect();
            let store = self.inner()?;
            // An implicit folder (a prefix of deeper datasets) is walked through to the datasets below it.
            while let Some(folder) = folders.pop() {
                let below = DatasetPath::parse(&folder)?;
                for child in store.children(&r.project, Some(&below))? {
                    if child.dataset.is_some() {
                        out.push(format!("{}/{}", r.project, child.path));
                    } else if child.has_children {
                        folders.push(child.path);
                    }
                }
            }
            out.sort();
            Ok(out)
        })
    }

    /// The absolute path of a dataset's folder or an object's file (`trove locate`).
    fn locate(&self, py: Python<'_>, reference: &str) -> PyResult<String> {
        call(py, || Ok(self.inner()?.locate(&Ref::parse(reference)?)?))
    }
}

#[pymodule]
fn _trove(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Store>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
