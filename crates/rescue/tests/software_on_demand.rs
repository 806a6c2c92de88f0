//! SOFTWARE is read on demand (only the hive bins the checks touch), with its logs replayed
//! over it when it is dirty; it reads the values hivex reads, and what the whole-file replay
//! gives.

use std::path::Path;
use std::process::Command;

use rescue::offline::{Cleanliness, HiveId, Offline};

/// A folder holding a Windows tree: SYSTEM and the given SOFTWARE (and its logs).
fn tree(dir: &Path, software: &[(&str, &str)]) {
    let config = dir.join("Windows/System32/config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("SYSTEM"), fixtures::bytes("hives/win7-SYSTEM")).unwrap();
    for (name, fixture) in software {
        std::fs::write(config.join(name), fixtures::bytes(fixture)).unwrap();
    }
}

fn hivexget(hive: &Path, key: &str, value: &str) -> String {
    let out = Command::new("hivexget")
        .arg(hive)
        .arg(key)
        .arg(value)
        .output()
        .unwrap();
    assert!(out.status.success(), "hivexget {key} {value}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn a_clean_software_hive_is_read_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &[("SOFTWARE", "hives/software/win7-SOFTWARE")]);
    let w = Offline::open(dir.path(), None).unwrap();
    let s = w.software().unwrap();
    assert_eq!(s.state.state, Cleanliness::Clean);
    assert!(s.bytes().is_none(), "read whole, not on demand");
    let hive = s.hive().unwrap();
    let got = hive
        .key(r"Microsoft\Windows NT\CurrentVersion")
        .unwrap()
        .unwrap()
        .value("ProductName")
        .unwrap()
        .unwrap()
        .data()
        .unwrap();
    let file = dir.path().join("Windows/System32/config/SOFTWARE");
    let want = hivexget(
        &file,
        r"\Microsoft\Windows NT\CurrentVersion",
        "ProductName",
    );
    assert_eq!(got.as_str(), Some(want.as_str()));
    assert_eq!(w.hive_states()[1].hive, HiveId::Software);
}

#[test]
fn a_dirty_hive_is_read_on_demand_and_replayed() {
    // The dirty Windows 10 hive and its logs, in the place of SOFTWARE: the loader does not
    // care what the hive holds, only that its logs must be replayed first.
    let dir = tempfile::tempdir().unwrap();
    tree(
        dir.path(),
        &[
            ("SOFTWARE", "hives/win10-dirty-SYSTEM"),
            ("SOFTWARE.LOG1", "hives/win10-dirty-SYSTEM.LOG1"),
            ("SOFTWARE.LOG2", "hives/win10-dirty-SYSTEM.LOG2"),
        ],
    );
    let w = Offline::open(dir.path(), None).unwrap();
    let s = w.software().unwrap();
    assert_eq!(s.state.state, Cleanliness::Replayed);
    assert_eq!(s.state.entries_applied, 24);
    assert_eq!(s.state.logs.len(), 2);
    assert!(s.bytes().is_none(), "read whole, not on demand");
    let hive = s.hive().unwrap();
    assert!(!hive.base_block().is_dirty());

    // Every value of the keys the replay changed reads as in the whole-file replay.
    let whole = regf::log::replay(
        &fixtures::bytes("hives/win10-dirty-SYSTEM"),
        &[
            regf::log::LogInput {
                name: "LOG1",
                data: &fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1"),
            },
            regf::log::LogInput {
                name: "LOG2",
                data: &fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2"),
            },
        ],
    )
    .unwrap();
    let whole = regf::Hive::open(&whole.bytes[..]).unwrap();
    for key in [
        r"ControlSet001\Services\Dhcp",
        r"ControlSet001\Control",
        "Select",
    ] {
        assert_eq!(values(&hive, key), values(&whole, key), "{key}");
    }
}

/// A key's values: (name, raw data), in order.
fn values<B: regf::Source>(h: &regf::Hive<B>, key: &str) -> Vec<(String, Vec<u8>)> {
    h.key(key)
        .unwrap()
        .unwrap()
        .values()
        .unwrap()
        .map(|v| {
            let v = v.unwrap();
            (v.name().to_string(), v.raw_data().unwrap().to_vec())
        })
        .collect()
}
