//! Finding datasets: filters over the catalog, with inherited metadata on request; the keys in use; SQL.

use serde_json::{Map, Value};
use trove_catalog::{FindOptions, KeyUsage, Matches, Reader, RidSet};
use trove_model::filter::{Field, Filter};
use trove_model::{DatasetState, ProjectState};

use crate::error::Result;
use crate::store::Store;
use crate::view::deep_merge;

/// One key of [`Store::schema`] as `trove schema --json` prints it (and the Python package returns it):
/// `{"key", "count", "types": {type: count}, "min", "max", "times", "earliest", "latest"}`, the last five
/// where the key has numbers or timestamps.
pub fn key_usage_json(usage: &KeyUsage) -> Value {
    let types: Map<String, Value> = usage.types.iter().map(|(t, n)| (t.to_string(), (*n).into())).collect();
    let mut v = serde_json::json!({"key": usage.key, "count": usage.count(), "types": types});
    if let Some((lo, hi)) = &usage.numbers {
        v["min"] = lo.clone();
        v["max"] = hi.clone();
    }
    if let Some((lo, hi)) = usage.time_range {
        v["times"] = usage.times.into();
        v["earliest"] = trove_model::time::rfc3339(lo).into();
        v["latest"] = trove_model::time::rfc3339(hi).into();
    }
    v
}

/// A search: the filter, where to look, the order and window of the results.
///
/// ```
/// use trove::{Query, Store, DatasetEdit};
/// use trove::model::{DatasetPath, filter::Filter};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::init(dir.path()).unwrap();
/// for (i, t) in [290, 300, 310].into_iter().enumerate() {
///     let edit = DatasetEdit { meta: vec![("temperature".into(), t.into())], ..Default::default() };
///     store.put("lab", &DatasetPath::parse(&format!("runs/r{i}")).unwrap(), &edit, &[]).unwrap();
/// }
/// let query = Query::new(Filter::meta("temperature").ge(300));
/// assert_eq!(store.count(&query).unwrap(), 2);
/// let mut paths = Vec::new();
/// store.find_refs(&query, |project, path| { paths.push(format!("{project}/{path}")); Ok(true) }).unwrap();
/// assert_eq!(paths, ["lab/runs/r1", "lab/runs/r2"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub filter: Filter,
    /// Project, sort, offset and limit.
    pub options: FindOptions,
    /// Match against each dataset's metadata merged under its project's and ancestors' (`find --inherited`).
    pub inherited: bool,
    /// Only derived datasets whose lineage has this name (`find --lineage-name`).
    pub lineage_name: Option<String>,
}

impl Query {
    pub fn new(filter: Filter) -> Query {
        Query { filter, ..Query::default() }
    }
}

impl Store {
    /// How many datasets match.
    pub fn count(&self, query: &Query) -> Result<u64> {
        self.read(|r| Ok(r.count_matches(&matching(r, query)?, query.options.project.as_deref())?))
    }

    /// The project and path of each match, in order; `each` returns false to stop.
    pub fn find_refs(&self, query: &Query, mut each: impl FnMut(&str, &str) -> Result<bool>) -> Result<()> {
        self.read(|r| {
            let set = matching(r, query)?;
            let mut failure = None;
            r.in_order(&set, &query.options, |rid| {
                let Some((project, path)) = r.location_by_rid(rid)? else { return Ok(true) };
                Ok(keep_going(each(&project, &path), &mut failure))
            })?;
            failure.map_or(Ok(()), Err)
        })
    }

    /// Each matching dataset, in order, read one at a time; `each` returns false to stop.
    pub fn find(&self, query: &Query, mut each: impl FnMut(DatasetState) -> Result<bool>) -> Result<()> {
        self.read(|r| {
            let set = matching(r, query)?;
            let mut failure = None;
            r.in_order(&set, &query.options, |rid| {
                let Some(row) = r.dataset_by_rid(rid)? else { return Ok(true) };
                Ok(keep_going(each(row.state), &mut failure))
            })?;
            failure.map_or(Ok(()), Err)
        })
    }

    /// The metadata keys in use, with their types, counts and ranges (`trove schema`).
    pub fn schema(&self, project: Option<&str>) -> Result<Vec<KeyUsage>> {
        self.read(|r| Ok(r.key_usage(project)?))
    }

    /// A read-only SQL session over the catalog's documented views (`trove sql`). The catalog is brought up
    /// to date with the log first.
    pub fn sql_console(&self) -> Result<SqlConsole> {
        self.refresh()?;
        Ok(SqlConsole(self.catalog().sql_console()?))
    }
}

/// A read-only SQL session over the catalog's documented views (`trove sql`), on a connection of its own.
pub struct SqlConsole(Box<dyn trove_catalog::SqlConsole>);

impl SqlConsole {
    /// Runs one read-only statement; `each` receives the column names and each row as JSON values (numbers,
    /// text, `null`; bytes as hex) and stops the query by returning false. Returns the column names.
    pub fn query(
        &mut self,
        sql: &str,
        mut each: impl FnMut(&[String], Vec<serde_json::Value>) -> trove_catalog::Result<bool>,
    ) -> Result<Vec<String>> {
        Ok(self.0.query(sql, &mut each)?)
    }
}

/// Passes a callback's result on to the catalog's iteration, keeping the error aside (the catalog's error type
/// cannot hold it).
fn keep_going(result: Result<bool>, failure: &mut Option<crate::Error>) -> bool {
    match result {
        Ok(more) => more,
        Err(e) => {
            *failure = Some(e);
            false
        }
    }
}

fn matching(r: &Reader<'_>, query: &Query) -> Result<Matches> {
    let project = query.options.project.as_deref();
    let mut set = r.matching(&query.filter, project)?;
    if query.inherited {
        correct_for_inheritance(r, query, &mut set)?;
    }
    if let Some(name) = &query.lineage_name {
        let mut named = r.rids_with_lineage_name(name, project)?;
        if set.complement {
            named.difference_with(&set.set);
        } else {
            named.intersect_with(&set.set);
        }
        set = Matches { set: named, complement: false };
    }
    Ok(set)
}

/// `find --inherited`. A dataset's inherited metadata differs from its own, for the keys the filter reads, only
/// if its project or one of its ancestors has one of those keys. The indexed answer stands for every other
/// dataset; those few are judged again by the reference evaluator on their merged metadata.
fn correct_for_inheritance(r: &Reader<'_>, query: &Query, set: &mut Matches) -> Result<()> {
    // Inheritance can change the answer only through the top-level keys the filter reads.
    let mut heads: Vec<String> = Vec::new();
    for key in query.filter.meta_keys() {
        let head = key.split('.').next().unwrap_or(&key).to_string();
        if !heads.contains(&head) {
            heads.push(head);
        }
    }
    if heads.is_empty() {
        return Ok(());
    }
    let touches = |meta: &Map<String, Value>| heads.iter().any(|h| meta.contains_key(h));
    let project = query.options.project.as_deref();
    // Datasets that pass one of the keys down (those with no descendants pass nothing, but are cheap to keep).
    let mut givers = RidSet::new();
    for head in &heads {
        let having = r.matching(&Filter::Exists(Field::Meta(head.clone())), project)?;
        givers.union_with(&r.matching_rids(&having, project)?);
    }
    let giving_projects: Vec<ProjectState> =
        r.projects()?.into_iter().filter(|p| project.is_none_or(|name| p.name == name) && touches(&p.meta)).collect();
    if givers.is_empty() && giving_projects.is_empty() {
        return Ok(());
    }
    // One walk over the datasets in path order, with the stack of giving ancestors of the current one.
    let mut stack: Vec<(String, String, Map<String, Value>)> = Vec::new();
    let everything = r.matching(&Filter::True, project)?;
    let options = FindOptions { project: query.options.project.clone(), ..FindOptions::default() };
    let mut rejudge: Vec<(i64, Map<String, Value>)> = Vec::new();
    r.in_order(&everything, &options, |rid| {
        let Some((p, path)) = r.location_by_rid(rid)? else { return Ok(true) };
        while stack.last().is_some_and(|(sp, spath, _)| *sp != p || !path.starts_with(&format!("{spath}/"))) {
            stack.pop();
        }
        let from_project = giving_projects.iter().find(|g| g.name == p);
        if from_project.is_some() || !stack.is_empty() {
            let mut merged = from_project.map(|g| g.meta.clone()).unwrap_or_default();
            for (_, _, meta) in &stack {
                deep_merge(&mut merged, meta);
            }
            rejudge.push((rid, merged));
        }
        if givers.contains(rid)
            && let Some(row) = r.dataset_by_rid(rid)?
        {
            stack.push((p, path, row.state.meta));
        }
        Ok(true)
    })?;
    for (rid, mut merged) in rejudge {
        let Some(row) = r.dataset_by_rid(rid)? else { continue };
        deep_merge(&mut merged, &row.state.meta);
        if query.filter.matches(&row.state.filter_doc(merged)) {
            set.insert(rid);
        } else {
            set.remove(rid);
        }
    }
    Ok(())
}
