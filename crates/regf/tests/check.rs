//! The checker on real hives: healthy ones are sound, the corrupted one is not, and nothing
//! panics.

use regf::check::{check, Severity};

#[test]
fn healthy_hives_are_sound() {
    for name in [
        "hives/win7-SYSTEM",
        "hives/win10-dirty-SYSTEM",
        "hives/win81-dirty-nologs-SYSTEM",
        "hives/BCD",
    ] {
        let report = check(&fixtures::bytes(name));
        let errors: Vec<_> = report.errors().collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        assert!(report.stats.keys > 0, "{name}");
        eprintln!(
            "{name}: {:?} warnings={:?}",
            report.stats,
            report.faults.iter().map(|f| f.code).collect::<Vec<_>>()
        );
    }
}

#[test]
fn win7_stats() {
    let report = check(&fixtures::bytes("hives/win7-SYSTEM"));
    assert_eq!(report.stats.keys, 30756);
    assert_eq!(report.stats.values, 73456);
}

#[test]
fn dirty_hive_is_flagged() {
    let report = check(&fixtures::bytes("hives/win10-dirty-SYSTEM"));
    assert!(report
        .faults
        .iter()
        .any(|f| f.code == "dirty" && f.severity == Severity::Warning));
}

#[test]
fn corrupted_hive_reports_errors_with_offsets() {
    let report = check(&fixtures::bytes("hives/corrupted-SYSTEM"));
    let errors: Vec<_> = report.errors().collect();
    assert!(!errors.is_empty());
    eprintln!("{:#?}", &errors[..errors.len().min(10)]);
    assert!(errors
        .iter()
        .all(|f| f.file_offset >= 4096 || f.code == "truncated"));
}
