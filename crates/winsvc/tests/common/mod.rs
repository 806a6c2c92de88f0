//! Shared helpers: the real hives, the Windows 10 one after log replay.
#![allow(dead_code)]

use winsvc::SystemModel;

pub fn win7() -> Vec<u8> {
    fixtures::bytes("hives/win7-SYSTEM")
}

pub fn win81() -> Vec<u8> {
    fixtures::bytes("hives/win81-dirty-nologs-SYSTEM")
}

/// The dirty Windows 10 1709 hive with its SYSTEM.LOG1 / LOG2 applied: what Windows would see.
pub fn win10() -> Vec<u8> {
    let hive = fixtures::bytes("hives/win10-dirty-SYSTEM");
    let l1 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1");
    let l2 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2");
    let rec = regf::log::replay(
        &hive,
        &[
            regf::log::LogInput {
                name: "SYSTEM.LOG1",
                data: &l1,
            },
            regf::log::LogInput {
                name: "SYSTEM.LOG2",
                data: &l2,
            },
        ],
    )
    .expect("replay");
    assert!(
        rec.report.entries_applied > 0,
        "the logs hold entries to apply"
    );
    rec.bytes
}

pub fn model(bytes: &[u8]) -> SystemModel {
    SystemModel::from_bytes(bytes, None).expect("SYSTEM hive")
}

/// No disk: every file is "unknown".
pub fn no_disk(_: &str) -> Option<bool> {
    None
}
