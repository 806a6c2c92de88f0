//! Property test: random sequences of edits on a real hive with growth allowed: values up to
//! 40 KB (big data), keys created under the ~450-entry services list and deleted again. After
//! every operation the hive passes the checker; at the end a fresh read returns what the model
//! says, keys the sequence did not touch keep byte-identical key nodes and values, and the file
//! length and page list follow the growth rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use proptest::prelude::*;
use regf::check::check;
use regf::edit::{Editor, FILE_GROW_STEP};
use regf::{Hive, ValueType};

fn original() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| fixtures::bytes("hives/win7-SYSTEM"))
}

/// Keys that get values; the first two also get new subkeys.
const KEYS: &[&str] = &[
    r"ControlSet001\services",
    r"ControlSet001\services\Dhcp",
    r"ControlSet001\services\Dhcp\Parameters",
    r"ControlSet002\services\Afd",
];
const NAMES: &[&str] = &["Start", "ObjectName", "New One", "ÄÖÜ-名前", ""];
const NEW_KEYS: &[&str] = &["WinrescueA", "winrescue b", "Zz Winrescue", "Aa-新しい"];
/// Files may grow this much; enough for every sequence, so growth never refuses.
const ROOM: u64 = 8 << 20;

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: usize,
        name: usize,
        t: u32,
        len: usize,
        seed: u8,
    },
    Delete {
        key: usize,
        name: usize,
    },
    CreateKey {
        parent: usize,
        name: usize,
    },
    DeleteKey {
        parent: usize,
        name: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![4 => 0usize..600, 2 => 3000usize..8000, 1 => 16_000usize..40_000];
    prop_oneof![
        4 => (0..KEYS.len(), 0..NAMES.len(), prop_oneof![Just(1u32), Just(3), Just(4), Just(7)], len, any::<u8>())
            .prop_map(|(key, name, t, len, seed)| Op::Set { key, name, t, len, seed }),
        1 => (0..KEYS.len(), 0..NAMES.len()).prop_map(|(key, name)| Op::Delete { key, name }),
        2 => (0..2usize, 0..NEW_KEYS.len()).prop_map(|(parent, name)| Op::CreateKey { parent, name }),
        1 => (0..2usize, 0..NEW_KEYS.len()).prop_map(|(parent, name)| Op::DeleteKey { parent, name }),
    ]
}

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

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_grown_edits_keep_the_hive_sound(ops in prop::collection::vec(op(), 1..10)) {
        let input = original();
        let mut ed = Editor::new(input.to_vec(), 0).unwrap();
        ed.allow_growth(input.len() as u64 + ROOM);
        let mut model: Model = BTreeMap::new();
        // New keys by (parent index, lower-cased name): whether they exist now.
        let mut created: BTreeMap<(usize, String), bool> = BTreeMap::new();
        for op in &ops {
            match op {
                Op::Set { key, name, t, len, seed } => {
                    let d = data(*len, *seed);
                    ed.set_value(KEYS[*key], NAMES[*name], ValueType(*t), &d).unwrap();
                    model.insert((*key, NAMES[*name].to_lowercase()), Some((*t, d)));
                }
                Op::Delete { key, name } => {
                    ed.delete_value(KEYS[*key], NAMES[*name]).unwrap();
                    model.insert((*key, NAMES[*name].to_lowercase()), None);
                }
                Op::CreateKey { parent, name } => {
                    let path = format!(r"{}\{}", KEYS[*parent], NEW_KEYS[*name]);
                    let was = created.get(&(*parent, NEW_KEYS[*name].to_lowercase())).copied().unwrap_or(false);
                    prop_assert_eq!(ed.create_key(&path).unwrap(), !was);
                    created.insert((*parent, NEW_KEYS[*name].to_lowercase()), true);
                }
                Op::DeleteKey { parent, name } => {
                    let path = format!(r"{}\{}", KEYS[*parent], NEW_KEYS[*name]);
                    let was = created.get(&(*parent, NEW_KEYS[*name].to_lowercase())).copied().unwrap_or(false);
                    prop_assert_eq!(ed.delete_key(&path).unwrap(), was);
                    created.insert((*parent, NEW_KEYS[*name].to_lowercase()), false);
                }
            }
            let report = check(ed.bytes());
            prop_assert!(report.is_sound(), "{:?}", report.errors().next());
            prop_assert_eq!(report.stats.leaked_cells, 0);
        }
        let out = ed.finish().unwrap();
        // Length: the input's while the bins fit in it (no slack here: only if nothing was
        // appended), else the bins' end rounded up to Windows' 256 KiB step.
        let bins_end = 4096 + out.hive_bins_size as usize;
        if bins_end <= input.len() {
            prop_assert_eq!(out.bytes.len(), input.len());
        } else {
            prop_assert_eq!(out.bytes.len(), bins_end.next_multiple_of(FILE_GROW_STEP));
        }
        prop_assert_eq!(out.grown_by as usize, out.bytes.len() - input.len());
        // Every differing page is listed, and so is every page past the input's end.
        let listed: BTreeSet<u64> = out.changed_pages.iter().copied().collect();
        for p in regf::edit::changed_pages(input, &out.bytes) {
            prop_assert!(listed.contains(&p), "page 0x{:x} not listed", p);
        }
        for p in (input.len()..out.bytes.len()).step_by(4096) {
            prop_assert!(listed.contains(&(p as u64)));
        }
        let hive = Hive::open(&out.bytes[..]).unwrap();
        for ((key, name), want) in &model {
            let k = hive.key(KEYS[*key]).unwrap().unwrap();
            let got = k.value(name).unwrap().map(|v| (v.value_type().0, v.raw_data().unwrap().into_owned()));
            prop_assert_eq!(&got, want, "{}\\{}", KEYS[*key], name);
        }
        for ((parent, name), exists) in &created {
            let k = hive.key(&format!(r"{}\{}", KEYS[*parent], name)).unwrap();
            prop_assert_eq!(k.is_some(), *exists);
        }
        // Keys the sequence did not touch are byte-identical.
        let touched: Vec<String> = KEYS.iter().map(|k| k.to_lowercase()).collect();
        let before = snapshot(input);
        let after = snapshot(&out.bytes);
        let new_keys = created.values().filter(|&&e| e).count();
        prop_assert_eq!(before.len() + new_keys, after.len());
        for (path, b) in &before {
            if !touched.contains(path) {
                prop_assert!(after.get(path) == Some(b), "untouched key {} changed", path);
            }
        }
    }
}
