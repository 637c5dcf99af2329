//! The conformance suite every catalog engine runs (as object_store's `integration.rs` is for its
//! stores): random documents go into a real catalog through log segments, random filters are answered by
//! both the catalog and the reference evaluator, and the answers must be identical; replays in any order
//! and any split must give the same rows; the folder walk, the scan cache and the bookkeeping of applied
//! segments must behave the same on every engine.
//!
//! An engine's tests call [`conformance_tests!`](crate::conformance_tests) with a function that opens a new,
//! empty catalog.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use trove_model::filter::{Builtin, CompareOp, Field, Filter, FilterValue};
use trove_model::record::{DatasetChange, Location, ObjectManifest, SegmentHeader, SegmentKind};
use trove_model::{DatasetPath, Record, Segment};
use uuid::Uuid;

use crate::{Catalog, FindOptions, Sort};

/// Runs `test` on `cases` random values of `strategy`; a failure panics with the (shrunk) case rather than
/// being saved to a file.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

const BASE_TS: i64 = 1_714_521_600_000_000; // 2024-05-01T00:00:00Z

pub fn segment(ts: i64, records: Vec<Record>) -> Segment {
    let header = SegmentHeader {
        trove: SegmentKind::Commit,
        version: 1,
        ts,
        writer: "w".into(),
        host: "h".into(),
        pid: 1,
        user: String::new(),
        op: "test".into(),
        records: records.len(),
        covers: vec![],
        moves: vec![],
        seen: 0,
    };
    Segment { header, records }
}

/// Floats that test exactness: halves and quarters, whole floats, and the edges of 2^63 and 2^64.
const FLOATS: [f64; 8] = [-2.5, 0.5, 1.0, 2.0, 3.25, 1e20, 9_223_372_036_854_775_808.0, 18_446_744_073_709_551_616.0];

/// A random dataset, before it is given an id and a path.
#[derive(Clone, Debug)]
struct Spec {
    project: bool,
    deep: bool,
    kind: Option<&'static str>,
    meta: Map<String, Value>,
    tags: BTreeSet<&'static str>,
    formats: BTreeSet<&'static str>,
    lineage: Option<&'static str>,
    /// Created this many seconds after BASE_TS.
    created: i64,
    /// A second commit (a metadata edit) this many seconds later, so `@updated` differs.
    edited: Option<i64>,
}

impl Spec {
    /// A plain dataset in project `p` with only this metadata.
    fn with_meta(meta: Map<String, Value>) -> Spec {
        Spec {
            project: true,
            deep: false,
            kind: None,
            meta,
            tags: BTreeSet::new(),
            formats: BTreeSet::new(),
            lineage: None,
            created: 0,
            edited: None,
        }
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(|i| json!(i)),
        prop::sample::select(FLOATS.to_vec()).prop_map(|x| json!(x)),
        prop::sample::select(vec![1u64 << 63, (1 << 63) + 1, 12345678901234567890, 12345678901234567891, u64::MAX])
            .prop_map(|u| json!(u)),
        prop::sample::select(vec![
            "st\u{0}eel",
            "abc\n",
            "a\nc",
            "steel",
            "st",
            "steel*",
            "",
            "Steel",
            "2024-05-01",
            "2024-05-01T00:00:00Z",
            "2024-05-02T12:00:00+02:00",
            "a[1]",
            "ü",
        ])
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        1 => prop::collection::btree_map(prop::sample::select(vec!["x", "y"]), scalar(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["measurement", "sim", "2024-05-01"])),
        prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "T (K)"]), value(), 0..4),
        prop::collection::btree_set(prop::sample::select(vec!["t1", "t2", "2024-05-01"]), 0..3),
        prop::collection::btree_set(prop::sample::select(vec!["csv", "npy"]), 0..2),
        prop::option::of(prop::sample::select(vec!["k1", "k2"])),
        0i64..5,
        prop::option::of(1i64..3),
    )
        .prop_map(|(project, deep, kind, meta, tags, formats, lineage, created, edited)| Spec {
            project,
            deep,
            kind,
            meta: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            tags,
            formats,
            lineage,
            created,
            edited,
        })
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c", "a.x", "b.y", "T (K)", "missing", "a.x.z"])
            .prop_map(|k| Field::Meta(k.to_string())),
        2 => prop::sample::select(Builtin::ALL.to_vec()).prop_map(Field::Builtin),
    ]
}

fn filter_value() -> impl Strategy<Value = FilterValue> {
    prop_oneof![
        Just(FilterValue::Null),
        any::<bool>().prop_map(FilterValue::Bool),
        (-3i64..4).prop_map(FilterValue::Int),
        prop::sample::select(FLOATS.to_vec()).prop_map(FilterValue::Float),
        prop::sample::select(vec![1u64 << 63, (1 << 63) + 1, 12345678901234567890, 12345678901234567891, u64::MAX])
            .prop_map(FilterValue::UInt),
        prop::sample::select(vec![
            json!([]),
            json!([1, "steel"]),
            json!([2.0]),
            json!({}),
            json!({"x": 1}),
            json!({"x": null, "y": "st"})
        ])
        .prop_map(FilterValue::Json),
        prop::sample::select(vec![
            "steel",
            "st",
            "",
            "Steel",
            "a[1]",
            "ü",
            "t1",
            "t2",
            "csv",
            "npy",
            "k1",
            "sim",
            "measurement",
            "p",
            "q",
            "r1",
            "runs/2024/r1",
        ])
        .prop_map(|s| FilterValue::String(s.to_string())),
        (-1i64..7).prop_map(|s| FilterValue::Time(BASE_TS + s * 1_000_000)),
        Just(FilterValue::Time(BASE_TS + 36 * 3_600_000_000 - 2 * 3_600_000_000)),
    ]
}

fn leaf() -> impl Strategy<Value = Filter> {
    let op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    prop_oneof![
        4 => (field(), op.clone(), filter_value()).prop_map(|(field, op, value)| Filter::Compare { field, op, value }),
        1 => (field(), prop::collection::vec(filter_value(), 0..3), any::<bool>())
            .prop_map(|(field, values, negated)| Filter::In { field, values, negated }),
        1 => (field(), prop::sample::select(vec!["st*", "*", "?", "s?eel", "runs/*", "a[1]", "*1", "2024-*", ""]))
            .prop_map(|(field, p)| Filter::Glob { field, pattern: p.to_string() }),
        1 => field().prop_map(Filter::Exists),
        1 => (field(), filter_value()).prop_map(|(field, v)| Filter::Element { field, conds: vec![(CompareOp::Eq, v)] }),
        1 => (field(), op.clone(), filter_value()).prop_map(|(field, op, v)| {
            let op = if op == CompareOp::Ne { CompareOp::Lt } else { op };
            Filter::Element { field, conds: vec![(op, v)] }
        }),
        1 => (field(), filter_value(), filter_value()).prop_map(|(field, lo, hi)| Filter::Element {
            field,
            conds: vec![(CompareOp::Gt, lo), (CompareOp::Le, hi)],
        }),
        1 => (field(), op.clone(), 0u64..4).prop_map(|(field, op, len)| Filter::Size { field, op, len }),
        1 => (field(), prop::sample::select(vec!["^st", "l$", "^a.c$", "c$", "(?i)STEEL", "\\u{0}", "t\\d", "^$", "e+"]))
            .prop_map(|(field, p)| Filter::Regex { field, pattern: p.to_string() }),
        1 => (field(), prop::sample::select(vec!["st\u{0}*", "*\n", "a?c"]))
            .prop_map(|(field, p)| Filter::Glob { field, pattern: p.to_string() }),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// A catalog holding the datasets, and their ids in order.
fn load(open: &dyn Fn() -> Catalog, specs: &[Spec]) -> (Catalog, Vec<Uuid>) {
    let mut catalog = open();
    let mut ids = Vec::new();
    let mut tx = catalog.write().unwrap();
    for (i, spec) in specs.iter().enumerate() {
        let id = Uuid::from_u128(0x1234_0000_0000_7000_8000_0000_0000_0000 + i as u128);
        ids.push(id);
        let project = if spec.project { "p" } else { "q" };
        let path = if spec.deep { format!("runs/2024/r{i}") } else { format!("r{i}") };
        let objects = spec
            .formats
            .iter()
            .map(|f| {
                let m = ObjectManifest {
                    format: f.to_string(),
                    size: 1,
                    checksum: "blake3:00".into(),
                    media_type: None,
                    summary: None,
                    files: None,
                    edited: None,
                };
                (format!("o.{f}"), Some(m))
            })
            .collect();
        let change = DatasetChange {
            id,
            alive: Some(true),
            at: Some(Location(project.into(), DatasetPath::parse(&path).unwrap())),
            kind: spec.kind.map(str::to_string),
            meta: spec.meta.clone(),
            tags: spec.tags.iter().map(|t| (t.to_string(), true)).collect(),
            objects,
            lineage: spec.lineage.map(|k| json!({"key": k})),
            ..Default::default()
        };
        let ts = BASE_TS + spec.created * 1_000_000;
        tx.apply_segment(&format!("c{i}"), segment(ts, vec![Record::Dataset(change)])).unwrap();
        if let Some(later) = spec.edited {
            let edit = DatasetChange {
                id,
                meta: [("edited".to_string(), json!(true))].into_iter().collect(),
                ..Default::default()
            };
            tx.apply_segment(&format!("e{i}"), segment(ts + later * 1_000_000, vec![Record::Dataset(edit)])).unwrap();
        }
    }
    tx.commit().unwrap();
    (catalog, ids)
}

fn index_answer(catalog: &Catalog, filter: &Filter, project: Option<&str>) -> BTreeSet<Uuid> {
    let reader = catalog.read();
    let matches = reader.matching(filter, project).unwrap();
    let set = reader.matching_rids(&matches, project).unwrap();
    assert_eq!(reader.count_matches(&matches, project).unwrap(), set.len());
    set.iter().map(|rid| reader.dataset_by_rid(rid).unwrap().unwrap().state.id).collect()
}

fn reference_answer(catalog: &Catalog, ids: &[Uuid], filter: &Filter, project: Option<&str>) -> BTreeSet<Uuid> {
    let reader = catalog.read();
    ids.iter()
        .filter(|id| {
            let state = reader.dataset_by_id(id).unwrap().unwrap().state;
            let doc = state.filter_doc(state.meta.clone());
            project.is_none_or(|p| doc.project == p) && filter.matches(&doc)
        })
        .copied()
        .collect()
}

/// Random datasets and random filters: the catalog's answers equal the reference evaluator's
/// ([`Filter::matches`]), within a project and without, and for the MongoDB form of each filter.
pub fn filters_agree_with_the_reference(open: &dyn Fn() -> Catalog) {
    check(96, (prop::collection::vec(spec(), 1..14), prop::collection::vec(filter(), 1..12)), |(specs, filters)| {
        let (catalog, ids) = load(open, &specs);
        for f in &filters {
            for project in [None, Some("p")] {
                let expected = reference_answer(&catalog, &ids, f, project);
                prop_assert_eq!(
                    index_answer(&catalog, f, project),
                    expected.clone(),
                    "filter {:?} project {:?}",
                    f,
                    project
                );
            }
            // The MongoDB form of the same filter gives the same answer.
            if let Ok(mongo) = Filter::from_mongo(&f.to_mongo()) {
                prop_assert_eq!(
                    index_answer(&catalog, &mongo, None),
                    reference_answer(&catalog, &ids, f, None),
                    "mongo {} of {:?}",
                    f.to_mongo(),
                    f
                );
            }
        }
        Ok(())
    });
}

/// Results come in (project, path) order, with offset and limit applied.
pub fn results_come_in_path_order_with_offset_and_limit(open: &dyn Fn() -> Catalog) {
    check(48, (prop::collection::vec(spec(), 1..14), 0u64..4, prop::option::of(0u64..6)), |(specs, offset, limit)| {
        let (catalog, _) = load(open, &specs);
        let reader = catalog.read();
        let set = reader.matching(&Filter::True, None).unwrap();
        let options = FindOptions { offset, limit, ..FindOptions::default() };
        let mut got = Vec::new();
        reader
            .in_order(&set, &options, |rid| {
                got.push(reader.location_by_rid(rid)?.unwrap());
                Ok(true)
            })
            .unwrap();
        let mut all: Vec<(String, String)> = reader
            .matching_rids(&set, None)
            .unwrap()
            .iter()
            .map(|rid| reader.location_by_rid(rid).unwrap().unwrap())
            .collect();
        all.sort();
        let want: Vec<_> =
            all.into_iter().skip(offset as usize).take(limit.map_or(usize::MAX, |l| l as usize)).collect();
        prop_assert_eq!(got, want);
        Ok(())
    });
}

/// Sorting by a metadata key: numbers before strings in both directions, datasets without the key last.
pub fn sort_by_a_metadata_key_puts_missing_last_in_both_directions(open: &dyn Fn() -> Catalog) {
    let mut specs = Vec::new();
    for (i, t) in [json!(5), json!(1.5), Value::Null, json!("x"), json!(-2)].into_iter().enumerate() {
        let mut meta = Map::new();
        if i != 2 {
            meta.insert("t".into(), t);
        }
        specs.push(Spec::with_meta(meta));
    }
    let (catalog, _) = load(open, &specs);
    let reader = catalog.read();
    let set = reader.matching(&Filter::True, None).unwrap();
    let paths = |options: &FindOptions| {
        let mut got = Vec::new();
        reader
            .in_order(&set, options, |rid| {
                got.push(reader.location_by_rid(rid)?.unwrap().1);
                Ok(true)
            })
            .unwrap();
        got
    };
    let order = |sort: &str| paths(&FindOptions { sort: sort.parse::<Sort>().unwrap(), ..FindOptions::default() });
    // Numbers before strings in both directions; r2 has no `t`.
    assert_eq!(order("t"), ["r4", "r1", "r0", "r3", "r2"]);
    assert_eq!(order("-t"), ["r0", "r1", "r4", "r3", "r2"]);
    assert_eq!(order("-@path"), ["r4", "r3", "r2", "r1", "r0"]);
    let window = FindOptions { sort: "t".parse().unwrap(), offset: 1, limit: Some(2), ..FindOptions::default() };
    assert_eq!(paths(&window), ["r1", "r0"]);
}

/// Two bounds on one key (merged into one range) still answer exactly.
pub fn a_range_on_one_key_is_one_scan_and_still_exact(open: &dyn Fn() -> Catalog) {
    let specs: Vec<Spec> = [json!(1), json!(2.5), json!(3), json!("2"), json!(4)]
        .into_iter()
        .map(|t| Spec::with_meta([("t".to_string(), t)].into_iter().collect()))
        .collect();
    let (catalog, ids) = load(open, &specs);
    for text in [
        "t >= 2 and t < 4",
        "t > 1 and t <= 3 and t != 3",
        "t >= 2 and t >= 3",
        "t < 4 and t > 'a'",
        "t > 1 and t < 2.5",
    ] {
        let f = Filter::parse(text).unwrap();
        assert_eq!(index_answer(&catalog, &f, None), reference_answer(&catalog, &ids, &f, None), "{text}");
    }
}

/// Every dataset row of a catalog (live or not, visible or not), by id.
pub fn rows(catalog: &Catalog) -> std::collections::BTreeMap<String, (bool, trove_model::DatasetState)> {
    let mut out = std::collections::BTreeMap::new();
    catalog
        .read()
        .all_rows(|row| {
            out.insert(row.state.id.to_string(), (row.visible, row.state));
            Ok(())
        })
        .unwrap();
    out
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

fn header_of(ts: i64, writer: &str, records: usize) -> SegmentHeader {
    SegmentHeader { ts, writer: writer.into(), records, ..segment(0, vec![]).header }
}

/// Writers on different machines may create the same path at once. Whatever order the segments are
/// applied in, the later claim is the visible one and the others stay hidden, not lost.
pub fn concurrent_claims_resolve_the_same_in_any_order(open: &dyn Fn() -> Catalog) {
    let claim = (0u128..4, 0usize..3, 0i64..6, prop::sample::select(vec!["w1", "w2", "w3"]), any::<bool>());
    let strategy = (prop::collection::vec(claim, 1..12), any::<u64>());
    check(48, strategy, |(claims, seed)| {
        let paths = ["x", "y", "x/z"];
        let segments: Vec<(String, Segment)> = claims
            .iter()
            .enumerate()
            .map(|(i, (id, path, ts, writer, alive))| {
                let change = DatasetChange {
                    id: Uuid::from_u128(id + 1),
                    alive: Some(*alive),
                    at: Some(Location("p".into(), DatasetPath::parse(paths[*path]).unwrap())),
                    meta: json!({"n": i}).as_object().unwrap().clone(),
                    ..Default::default()
                };
                // A writer's clock never repeats a timestamp, so each (ts, writer) is unique.
                let ts = ts * 100 + i as i64;
                let seg = Segment { header: header_of(ts, writer, 1), records: vec![Record::Dataset(change)] };
                (format!("c{i}"), seg)
            })
            .collect();
        let apply = |order: &[usize]| {
            let mut c = open();
            let mut tx = c.write().unwrap();
            for &i in order {
                tx.apply_segment(&segments[i].0, segments[i].1.clone()).unwrap();
            }
            tx.commit().unwrap();
            rows(&c)
        };
        let forward: Vec<usize> = (0..segments.len()).collect();
        let mut shuffled = forward.clone();
        shuffle(&mut shuffled, seed);
        let a = apply(&forward);
        prop_assert_eq!(&a, &apply(&shuffled));
        // At most one visible dataset per path, and it is the live claimant with the latest location stamp.
        let mut best: std::collections::BTreeMap<String, (trove_model::Stamp, String)> = Default::default();
        for (id, (_, s)) in &a {
            if s.is_alive() {
                let p = s.at.as_ref().unwrap().path().to_string();
                let st = s.at_stamp().clone();
                if best.get(&p).is_none_or(|(b, _)| st > *b) {
                    best.insert(p, (st, id.clone()));
                }
            }
        }
        for (id, (visible, s)) in &a {
            let expected =
                s.is_alive() && best.get(&s.at.as_ref().unwrap().path().to_string()).is_some_and(|(_, w)| w == id);
            prop_assert_eq!(*visible, expected, "{} {:?}", id, s);
        }
        Ok(())
    });
}

fn catalog_with(open: &dyn Fn() -> Catalog, paths: &[&str]) -> Catalog {
    let records = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Record::Dataset(DatasetChange {
                id: Uuid::from_u128(i as u128 + 1),
                alive: Some(true),
                at: Some(Location("p".into(), DatasetPath::parse(p).unwrap())),
                ..Default::default()
            })
        })
        .collect::<Vec<_>>();
    let mut c = open();
    let mut tx = c.write().unwrap();
    tx.apply_segment("s", segment(1, records)).unwrap();
    tx.commit().unwrap();
    c
}

/// The walk of a folder's children skips subtrees but not siblings that sort inside them, and agrees with a
/// plain computation over random paths (Unicode, punctuation that sorts next to `/`).
pub fn children_match_a_plain_computation(open: &dyn Fn() -> Catalog) {
    // `c-x` and `c!` sort between `c` and `c/…`; `c0` right after the subtree.
    let c = catalog_with(open, &["c", "c/deep/er", "c-x", "c!", "c0", "a/b", "z"]);
    let kids = c.read().children("p", "").unwrap();
    let names: Vec<(&str, bool, bool)> =
        kids.iter().map(|k| (k.name.as_str(), k.dataset.is_some(), k.has_children)).collect();
    assert_eq!(
        names,
        [
            ("a", false, true),
            ("c", true, true),
            ("c!", true, false),
            ("c-x", true, false),
            ("c0", true, false),
            ("z", true, false)
        ]
    );
    let below_c: Vec<String> = c.read().children("p", "c").unwrap().into_iter().map(|k| k.path).collect();
    assert_eq!(below_c, ["c/deep"]);
    let mut all = Vec::new();
    c.read()
        .descendants("p", "c", |row| {
            all.push(row.state.at.unwrap().path().to_string());
            Ok(())
        })
        .unwrap();
    assert_eq!(all, ["c/deep/er"]);
    assert_eq!(c.read().count(Some("p")).unwrap(), 7);
    assert!(c.read().has_descendants("p", "a").unwrap());
    assert!(!c.read().has_descendants("p", "z").unwrap());

    check(32, prop::collection::btree_set("[aé!.~-]{1,2}(/[a!-]{1,2}){0,2}", 1..25), |paths| {
        let paths: Vec<&str> =
            paths.iter().map(String::as_str).filter(|p| p.split('/').all(|s| s != "." && s != "..")).collect();
        if paths.is_empty() {
            return Ok(());
        }
        let c = catalog_with(open, &paths);
        for prefix in std::iter::once("").chain(paths.iter().copied()) {
            let lo = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
            let mut names: std::collections::BTreeSet<Vec<u8>> = Default::default();
            for p in &paths {
                if let Some(rest) = p.strip_prefix(lo.as_str()) {
                    names.insert(rest.split('/').next().unwrap().as_bytes().to_vec());
                }
            }
            let mut expected: Vec<(String, bool, bool)> = Vec::new();
            for name in names {
                let name = String::from_utf8(name).unwrap();
                let full = format!("{lo}{name}");
                let has = paths.iter().any(|p| p.starts_with(&format!("{full}/")));
                expected.push((name, paths.contains(&full.as_str()), has));
            }
            let got: Vec<(String, bool, bool)> = c
                .read()
                .children("p", prefix)
                .unwrap()
                .into_iter()
                .map(|k| (k.name, k.dataset.is_some(), k.has_children))
                .collect();
            prop_assert_eq!(got, expected, "below {:?}", prefix);
        }
        Ok(())
    });
}

/// The scan cache keeps the largest sizes and inodes and negative times, forgets what a scan no longer
/// found, and a rebuild empties it.
pub fn scan_cache_round_trips_and_a_rebuild_empties_it(open: &dyn Fn() -> Catalog) {
    let mut c = open();
    let file = crate::CachedFile { size: u64::MAX, mtime_ns: -5, ino: u64::MAX - 1, checksum: "blake3:ab".into() };
    let tx = c.write().unwrap();
    tx.read().record_scan([("lab/a/v.csv", &file), ("lab/ü/w\u{1F600}.csv", &file)], ["lab/none"]).unwrap();
    tx.commit().unwrap();
    let cache = c.read().scan_cache().unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(cache["lab/a/v.csv"], file);
    let tx = c.write().unwrap();
    tx.read().record_scan([("lab/a/v.csv", &file)], ["lab/ü/w\u{1F600}.csv"]).unwrap();
    tx.commit().unwrap();
    assert_eq!(c.read().scan_cache().unwrap().len(), 1);
    let mut tx = c.write().unwrap();
    tx.clear().unwrap();
    tx.commit().unwrap();
    assert!(c.read().scan_cache().unwrap().is_empty());
}

/// Which segments were applied, the clock floor, re-applying, forgetting, rolling back and clearing.
pub fn applied_segments_and_the_clock_floor(open: &dyn Fn() -> Catalog) {
    let mut c = catalog_with(open, &["x", "y"]);
    let before = rows(&c);
    assert_eq!(c.read().applied().unwrap().len(), 1);
    assert_eq!(c.read().max_ts().unwrap(), 1);
    assert!(!c.is_empty().unwrap());
    // Re-applying what is merged changes nothing; an older segment does not lower the clock floor.
    let mut tx = c.write().unwrap();
    tx.apply_segment("s", segment(1, vec![])).unwrap();
    tx.apply_segment("old", segment(0, vec![])).unwrap();
    tx.commit().unwrap();
    assert_eq!(rows(&c), before);
    assert_eq!(c.read().max_ts().unwrap(), 1);
    // A dropped transaction leaves nothing.
    let mut tx = c.write().unwrap();
    tx.apply_segment("dropped", segment(99, vec![])).unwrap();
    drop(tx);
    assert!(!c.read().applied().unwrap().contains("dropped"));
    assert_eq!(c.read().max_ts().unwrap(), 1);
    let mut tx = c.write().unwrap();
    tx.forget_applied(["old"]).unwrap();
    tx.commit().unwrap();
    assert_eq!(c.read().applied().unwrap(), ["s".to_string()].into_iter().collect());
    // A held transaction: savepoints nest in it; releasing without commit undoes all of it.
    c.hold().unwrap();
    let mut tx = c.write().unwrap();
    tx.apply_segment("held", segment(5, vec![])).unwrap();
    tx.commit().unwrap();
    assert!(c.read().applied().unwrap().contains("held"));
    c.release(false).unwrap();
    assert!(!c.read().applied().unwrap().contains("held"));
    let mut tx = c.write().unwrap();
    tx.clear().unwrap();
    tx.commit().unwrap();
    assert!(c.is_empty().unwrap());
    assert_eq!(c.read().count(None).unwrap(), 0);
    assert_eq!(c.read().max_ts().unwrap(), 0);
}

/// The tests of the suite, for an engine's test file: `trove_catalog::conformance_tests!(open);` where
/// `open()` returns a new, empty catalog, or `None` when the engine's server is not there (the function
/// says so loudly; under CI it should panic instead).
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@each $open;
            filters_agree_with_the_reference,
            results_come_in_path_order_with_offset_and_limit,
            sort_by_a_metadata_key_puts_missing_last_in_both_directions,
            a_range_on_one_key_is_one_scan_and_still_exact,
            concurrent_claims_resolve_the_same_in_any_order,
            children_match_a_plain_computation,
            scan_cache_round_trips_and_a_rebuild_empties_it,
            applied_segments_and_the_clock_floor,
        );
    };
    (@each $open:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if $open().is_none() {
                    return;
                }
                $crate::conformance::$name(&|| $open().expect("the catalog opened a moment ago"));
            }
        )*
    };
}
