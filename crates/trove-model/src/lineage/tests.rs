use proptest::prelude::*;
use serde_json::json;

use super::*;

const RAW: &str = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
const SCRIPT: &str = "blake3:7b5fd0e1c1c4a4c5bbd5c0e2b6e8f1f1d2a5b39ec8e0f7a1d5c2b4e6f8a0c1d2";

fn peaks() -> Lineage {
    Lineage::new("peaks", "2")
        .with_config("threshold", json!(3))
        .with_config("window", json!({"left": 10, "right": 20}))
        .with_input(Input::object(RAW).found_at("run42/raw:waveforms.npy"))
        .with_code("peaks.py", SCRIPT)
}

/// These keys are the contract: stored data is found by them on every machine and in every later version of
/// trove. A change here breaks every store in use.
#[test]
fn golden_keys() {
    assert_eq!(
        Lineage::new("x", "1").canonical_json(),
        r#"{"code":[],"config":{},"inputs":[],"name":"x","version":"1"}"#
    );
    assert_eq!(Lineage::new("x", "1").key(), "a3b4076e889069e3f11ff60dc76abd6e4f9073f983841193d4bff594dfcfc44c");
    assert_eq!(
        peaks().canonical_json(),
        format!(
            r#"{{"code":["{SCRIPT}"],"config":{{"threshold":3,"window":{{"left":10,"right":20}}}},"inputs":[{{"object":"{RAW}"}}],"name":"peaks","version":"2"}}"#
        )
    );
    assert_eq!(peaks().key(), "afb0dc7f86f67775a70ec634e870adb45a966d3b55003ba2f88d0331b43cf97d");
    let hits = Lineage::new("hits", "1.0.3").with_input(Input::derived(peaks())).with_input(Input::dataset(
        [("a.npy".to_string(), RAW.to_string()), ("b.txt".to_string(), SCRIPT.to_string())].into(),
    ));
    assert_eq!(hits.key(), "b035ccdc7611a61c7fd0e4c7fceeba6b158d288c5ccb28d0b5b8c784d7487697");
}

#[test]
fn numbers_are_normalised() {
    assert_eq!(canonical(&json!(3.0)), "3");
    assert_eq!(canonical(&json!(-0.0)), "0");
    assert_eq!(canonical(&json!(2.5)), "2.5");
    assert_eq!(canonical(&json!(1e300)), "1e+300");
    assert_eq!(canonical(&json!(u64::MAX)), u64::MAX.to_string());
    assert_eq!(canonical(&json!({"b": [1.0, {"d": 1, "c": 2}], "a": null})), r#"{"a":null,"b":[1,{"c":2,"d":1}]}"#);
    let a = Lineage::new("x", "1").with_config("t", json!(300));
    let b = Lineage::new("x", "1").with_config("t", json!(300.0));
    assert_eq!(a.key(), b.key());
}

#[test]
fn what_is_not_content_does_not_change_the_key() {
    let base = peaks();
    let mut moved = peaks();
    moved.inputs[0] = Input::object(RAW).found_at("elsewhere/raw:renamed.npy");
    moved.code[0].file = "renamed.py".into();
    assert_eq!(base.key(), moved.key());
    let two = base.clone().with_code("util.py", RAW);
    let mut swapped = two.clone();
    swapped.code.reverse();
    assert_eq!(two.key(), swapped.key());
}

#[test]
fn every_change_of_content_changes_the_key() {
    let base = peaks().key();
    let changes: Vec<Lineage> = vec![
        Lineage { name: "peak".into(), ..peaks() },
        Lineage { version: "3".into(), ..peaks() },
        peaks().with_config("threshold", json!(4)),
        peaks().with_config("threshold", json!("3")),
        peaks().with_config("extra", json!(null)),
        peaks().with_config("window", json!({"left": 10, "right": 21})),
        Lineage { inputs: vec![Input::object(SCRIPT)], ..peaks() },
        Lineage { inputs: vec![], ..peaks() },
        peaks().with_input(Input::object(RAW)),
        Lineage { code: vec![], ..peaks() },
        Lineage { code: vec![CodeFile { file: "peaks.py".into(), checksum: RAW.into() }], ..peaks() },
    ];
    for changed in changes {
        assert_ne!(changed.key(), base, "{changed:?}");
    }
    // A derived input's own change reaches the key of what derives from it.
    let parent = |inner: Lineage| Lineage::new("hits", "1").with_input(Input::derived(inner)).key();
    assert_ne!(parent(peaks()), parent(peaks().with_config("threshold", json!(5))));
}

#[test]
fn stored_form_reads_back() {
    let hits = Lineage::new("hits", "1")
        .with_config("gain", json!(1.5))
        .with_input(Input::derived(peaks()).found_at("run42/peaks/abc"))
        .with_input(Input::dataset([("a.npy".to_string(), RAW.to_string())].into()).found_at("run42/raw"));
    let stored = hits.to_json();
    assert_eq!(stored["key"], json!(hits.key()));
    assert_eq!(stored["inputs"][0]["ref"], json!("run42/peaks/abc"));
    let back = Lineage::from_json(&stored).unwrap();
    assert_eq!(back, hits);
    assert!(Lineage::from_json(&json!({"name": "x"})).unwrap_err().to_string().contains("\"version\""));
    assert!(Lineage::from_json(&json!({"name": "x", "version": "1", "inputs": [{"what": 1}]})).is_err());
}

#[test]
fn validation_names_the_problem() {
    assert!(peaks().validate().is_ok());
    let e = Lineage::new("a/b", "1").validate().unwrap_err().to_string();
    assert!(e.starts_with("invalid lineage name"), "{e}");
    assert!(Lineage::new("a", "").validate().unwrap_err().to_string().contains("version"));
    let e = Lineage::new("a", "1").with_input(Input::object("md5:00")).validate().unwrap_err();
    assert_eq!(e, LineageError::Checksum("md5:00".into()));
}

#[test]
fn differences_are_listed() {
    let ours = peaks().with_config("gain", json!(2));
    let theirs = Lineage { version: "1".into(), ..peaks() }.with_config("threshold", json!(3.0));
    let d = ours.differences(&theirs);
    assert_eq!(
        d,
        vec![
            Difference::Version { ours: "2".into(), theirs: "1".into() },
            Difference::Config { key: "gain".into(), ours: Some(json!(2)), theirs: None },
        ]
    );
    assert_eq!(d[1].to_string(), "config gain = 2 here, unset there");
    assert!(peaks().differences(&peaks()).is_empty());
    assert_eq!(peaks().differences(&Lineage { inputs: vec![], ..peaks() }), vec![Difference::Inputs]);
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z]{0,6}".prop_map(Value::String),
    ]
}

proptest! {
    /// The order config keys (and nested keys) were given in never changes the key.
    #[test]
    fn key_ignores_config_order(entries in proptest::collection::vec(("[a-z]{1,5}", json_leaf()), 0..8)) {
        let forward = entries.iter().fold(Lineage::new("x", "1"), |l, (k, v)| {
            l.with_config(k.clone(), json!({"v": v, "k": k}))
        });
        let mut reversed = Lineage::new("x", "1");
        let mut seen = std::collections::BTreeSet::new();
        // The last value given for a key wins in both.
        for (k, v) in entries.iter().rev() {
            if seen.insert(k.clone()) {
                reversed.config.insert(k.clone(), json!({"k": k, "v": v}));
            }
        }
        prop_assert_eq!(forward.key(), reversed.key());
        let back = Lineage::from_json(&forward.to_json()).unwrap();
        prop_assert_eq!(back.key(), forward.key());
    }
}
