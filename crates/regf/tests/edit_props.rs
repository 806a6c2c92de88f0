//! Property test: random sequences of edits on a real hive. After every operation the hive
//! passes the checker, a fresh read returns exactly what the model says, and keys the sequence
//! did not touch keep byte-identical key nodes and values.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use regf::check::check;
use regf::edit::Editor;
use regf::{Hive, ValueType};

fn original() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| fixtures::bytes("hives/win7-SYSTEM"))
}

/// Keys with short subkey lists, where edits fit in the few KB a real hive has free.
const KEYS: &[&str] = &[
    r"ControlSet001\services\Dhcp",
    r"ControlSet001\services\Dhcp\Parameters",
    r"ControlSet002\services\Dhcp",
    r"ControlSet001\services\Afd",
    r"ControlSet001\services\NSI",
];
const NAMES: &[&str] = &[
    "Start",
    "Type",
    "ObjectName",
    "New One",
    "DependOnService",
    "ÄÖÜ-名前",
    "",
];

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: usize,
        name: usize,
        t: u32,
        data: Vec<u8>,
    },
    Delete {
        key: usize,
        name: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..KEYS.len(), 0..NAMES.len(), prop_oneof![Just(1u32), Just(3), Just(4), Just(7), Just(11), Just(0x19)], prop::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(key, name, t, data)| Op::Set { key, name, t, data }),
        1 => (0..KEYS.len(), 0..NAMES.len()).prop_map(|(key, name)| Op::Delete { key, name }),
    ]
}

/// Every key's node bytes and its values' (name, type, data), by path.
/// Key path -> (key node bytes, values as (name, type, data)).
type Snapshot = BTreeMap<String, (Vec<u8>, Vec<(String, u32, Vec<u8>)>)>;
/// (key index, lower-cased value name) -> the value's (type, data), or None once deleted.
type Model = BTreeMap<(usize, String), Option<(u32, Vec<u8>)>>;

fn snapshot(bytes: &[u8]) -> Snapshot {
    let hive = Hive::open(bytes).unwrap();
    let mut out = BTreeMap::new();
    hive.walk(
        |p, k| {
            let cell = k.cell() as usize + 4096;
            let node = bytes[cell..cell + 80].to_vec();
            let values = k
                .values()
                .unwrap()
                .map(|v| {
                    let v = v.unwrap();
                    (
                        v.name().to_string(),
                        v.value_type().0,
                        v.raw_data().unwrap().into_owned(),
                    )
                })
                .collect();
            out.insert(p.to_lowercase(), (node, values));
        },
        |p, e| panic!("{p}: {e}"),
    )
    .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_keep_the_hive_sound(ops in prop::collection::vec(op(), 1..10)) {
        let mut ed = Editor::new(original().to_vec(), 0).unwrap();
        // Model: the expected value of every (key, name) an op touched; None = absent.
        let mut model: Model = BTreeMap::new();
        for op in &ops {
            match op {
                Op::Set { key, name, t, data } => {
                    match ed.set_value(KEYS[*key], NAMES[*name], ValueType(*t), data) {
                        Ok(_) => { model.insert((*key, NAMES[*name].to_lowercase()), Some((*t, data.clone()))); }
                        Err(regf::Error::NoRoom { .. }) => {} // allowed: the hive is nearly full
                        Err(e) => panic!("{e}"),
                    }
                }
                Op::Delete { key, name } => {
                    ed.delete_value(KEYS[*key], NAMES[*name]).unwrap();
                    model.insert((*key, NAMES[*name].to_lowercase()), None);
                }
            }
            let report = check(ed.bytes());
            prop_assert!(report.is_sound(), "{:?}", report.errors().next());
            prop_assert_eq!(report.stats.leaked_cells, 0);
        }
        let out = ed.finish().unwrap();
        prop_assert_eq!(out.bytes.len(), original().len());
        // The page list is exactly the pages that differ, failed and undone operations included.
        prop_assert_eq!(&out.changed_pages, &regf::edit::changed_pages(original(), &out.bytes));
        let hive = Hive::open(&out.bytes[..]).unwrap();
        for ((key, name), want) in &model {
            let k = hive.key(KEYS[*key]).unwrap().unwrap();
            let got = k.value(name).unwrap().map(|v| (v.value_type().0, v.raw_data().unwrap().into_owned()));
            prop_assert_eq!(&got, want, "{}\\{}", KEYS[*key], name);
        }
        // Keys the sequence did not touch are byte-identical.
        let touched: Vec<String> = KEYS.iter().map(|k| k.to_lowercase()).collect();
        let before = snapshot(original());
        let after = snapshot(&out.bytes);
        prop_assert_eq!(before.len(), after.len());
        for (path, b) in &before {
            if !touched.contains(path) {
                prop_assert!(after.get(path) == Some(b), "untouched key {} changed", path);
            }
        }
    }
}
