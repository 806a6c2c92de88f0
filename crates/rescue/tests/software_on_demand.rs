//! A clean SOFTWARE hive is read on demand (only the hive bins the checks touch), a dirty one is
//! read whole and replayed; both read the values hivex reads.

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
fn a_dirty_hive_is_read_whole_and_replayed() {
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
    assert!(s.state.entries_applied > 0);
    let bytes = s.bytes().expect("read whole");
    assert!(!regf::Hive::open(bytes).unwrap().base_block().is_dirty());
}
