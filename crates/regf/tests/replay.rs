//! Log replay on the real dirty Windows 10 hive, and on damaged copies of its logs.

use regf::check::check;
use regf::log::{replay, LogInput};
use regf::Hive;

fn win10() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        fixtures::bytes("hives/win10-dirty-SYSTEM"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2"),
    )
}

fn count(bytes: &[u8]) -> (usize, usize) {
    let hive = Hive::open(bytes).unwrap();
    let (mut k, mut v) = (0, 0);
    hive.walk(|_, key| {
        k += 1;
        v += key.values().unwrap().count();
    }, |p, e| panic!("{p}: {e}"))
    .unwrap();
    (k, v)
}

#[test]
fn win10_both_logs_apply() {
    let (h, l1, l2) = win10();
    let r = replay(&h, &[LogInput { name: "SYSTEM.LOG1", data: &l1 }, LogInput { name: "SYSTEM.LOG2", data: &l2 }]).unwrap();
    eprintln!("{:#?}", r.report);
    assert!(r.report.was_dirty);
    assert_eq!(r.report.sequence_range, Some((2107, 2130)));
    assert_eq!(r.report.entries_applied, 24);
    // 10 pages from LOG1 (2107..2110) and 305 from LOG2 (2111..2130).
    assert_eq!(r.report.pages_applied, 315);
    assert_eq!(r.report.logs.iter().map(|l| l.pages_applied).collect::<Vec<_>>(), [10, 305]);
    assert_eq!(r.report.hive_bins_after, 12591104);
    assert!(!r.report.incomplete);
    let report = check(&r.bytes);
    assert!(report.is_sound(), "{:#?}", report.errors().collect::<Vec<_>>());
    assert_eq!(count(&r.bytes), (35595, 78901));
}
