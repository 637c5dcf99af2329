//! The SQL path of filters against the reference evaluator: random documents go into a real (in-memory) SQLite
//! catalog through log segments, random filters are answered by both, and the answers must be identical.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use trove_catalog::{Catalog, FindOptions, Sort};
use trove_model::filter::{Builtin, CompareOp, Field, Filter, FilterValue};
use trove_model::record::{DatasetChange, Location, ObjectManifest, SegmentHeader, SegmentKind};
use trove_model::{DatasetPath, Record, Segment};
use uuid::Uuid;

const BASE_TS: i64 = 1_714_521_600_000_000; // 2024-05-01T00:00:00Z

fn segment(ts: i64, records: Vec<Record>) -> Segment {
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
        prop::sample::select(vec![
            -2.5,
            0.5,
            1.0,
            2.0,
            3.25,
            1e20,
            9_223_372_036_854_775_808.0,
            18_446_744_073_709_551_616.0
        ])
        .prop_map(|x| json!(x)),
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
        prop::sample::select(vec![
            -2.5,
            0.5,
            1.0,
            2.0,
            3.25,
            1e20,
            9_223_372_036_854_775_808.0,
            18_446_744_073_709_551_616.0
        ])
        .prop_map(FilterValue::Float),
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
fn load(specs: &[Spec]) -> (Catalog, Vec<Uuid>) {
    let mut catalog = Catalog::open_in_memory().unwrap();
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

fn sql_answer(catalog: &Catalog, filter: &Filter, project: Option<&str>) -> BTreeSet<Uuid> {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sql_agrees_with_the_reference(specs in prop::collection::vec(spec(), 1..14),
                                     filters in prop::collection::vec(filter(), 1..12)) {
        let (catalog, ids) = load(&specs);
        for f in &filters {
            for project in [None, Some("p")] {
                let expected = reference_answer(&catalog, &ids, f, project);
                prop_assert_eq!(sql_answer(&catalog, f, project), expected.clone(), "filter {:?} project {:?}", f, project);
            }
            // The MongoDB form of the same filter gives the same answer.
            if let Ok(mongo) = Filter::from_mongo(&f.to_mongo()) {
                prop_assert_eq!(sql_answer(&catalog, &mongo, None), reference_answer(&catalog, &ids, f, None),
                    "mongo {} of {:?}", f.to_mongo(), f);
            }
        }
    }

    #[test]
    fn results_come_in_path_order_with_offset_and_limit(specs in prop::collection::vec(spec(), 1..14),
                                                         offset in 0u64..4, limit in prop::option::of(0u64..6)) {
        let (catalog, _) = load(&specs);
        let reader = catalog.read();
        let set = reader.matching(&Filter::True, None).unwrap();
        let options = FindOptions { offset, limit, ..FindOptions::default() };
        let mut got = Vec::new();
        reader.in_order(&set, &options, |rid| { got.push(reader.location_by_rid(rid)?.unwrap()); Ok(true) }).unwrap();
        let mut all: Vec<(String, String)> = reader.matching_rids(&set, None).unwrap().iter().map(|rid| reader.location_by_rid(rid).unwrap().unwrap()).collect();
        all.sort();
        let want: Vec<_> = all.into_iter().skip(offset as usize).take(limit.map_or(usize::MAX, |l| l as usize)).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn sort_by_a_metadata_key_puts_missing_last_in_both_directions() {
    let mut specs = Vec::new();
    for (i, t) in [json!(5), json!(1.5), Value::Null, json!("x"), json!(-2)].into_iter().enumerate() {
        let mut meta = Map::new();
        if i != 2 {
            meta.insert("t".into(), t);
        }
        specs.push(Spec::with_meta(meta));
    }
    let (catalog, _) = load(&specs);
    let reader = catalog.read();
    let set = reader.matching(&Filter::True, None).unwrap();
    let order = |sort: &str| {
        let options = FindOptions { sort: sort.parse::<Sort>().unwrap(), ..FindOptions::default() };
        let mut got = Vec::new();
        reader
            .in_order(&set, &options, |rid| {
                Ok({
                    got.push(reader.location_by_rid(rid)?.unwrap().1);
                    true
                })
            })
            .unwrap();
        got
    };
    // Numbers before strings in both directions; r2 has no `t`.
    assert_eq!(order("t"), ["r4", "r1", "r0", "r3", "r2"]);
    assert_eq!(order("-t"), ["r0", "r1", "r4", "r3", "r2"]);
    assert_eq!(order("-@path"), ["r4", "r3", "r2", "r1", "r0"]);
    let options = FindOptions { sort: "t".parse().unwrap(), offset: 1, limit: Some(2), ..FindOptions::default() };
    let mut got = Vec::new();
    reader
        .in_order(&set, &options, |rid| {
            Ok({
                got.push(reader.location_by_rid(rid)?.unwrap().1);
                true
            })
        })
        .unwrap();
    assert_eq!(got, ["r1", "r0"]);
}

#[test]
fn a_range_on_one_key_is_one_scan_and_still_exact() {
    let specs: Vec<Spec> = [json!(1), json!(2.5), json!(3), json!("2"), json!(4)]
        .into_iter()
        .map(|t| Spec::with_meta([("t".to_string(), t)].into_iter().collect()))
        .collect();
    let (catalog, ids) = load(&specs);
    for text in [
        "t >= 2 and t < 4",
        "t > 1 and t <= 3 and t != 3",
        "t >= 2 and t >= 3",
        "t < 4 and t > 'a'",
        "t > 1 and t < 2.5",
    ] {
        let f = Filter::parse(text).unwrap();
        assert_eq!(sql_answer(&catalog, &f, None), reference_answer(&catalog, &ids, &f, None), "{text}");
    }
}
