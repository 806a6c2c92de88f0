//! The real, healthy hives analyse as healthy: no false alarm for Dhcp, its dependencies, or
//! any auto-start service.

mod common;
use common::*;
use winsvc::{analyze, Role, Verdict};

fn assert_healthy(bytes: &[u8], sets: usize) {
    let m = model(bytes);
    assert_eq!(m.control_sets.len(), sets);
    for d in analyze::diagnose_all_sets(&m, "Dhcp", &no_disk) {
        assert_eq!(d.verdict, Verdict::Starts, "{}", d.summary());
        assert!(d.starts_at_boot);
        assert!(d.chain.is_empty());
    }
    for cs in &m.control_sets {
        for d in analyze::diagnose_auto_start(&m, cs.number, &no_disk) {
            assert_ne!(d.verdict, Verdict::Unverified, "{}", d.summary());
            assert_eq!(d.verdict, Verdict::Starts, "{}", d.summary());
        }
    }
}

#[test]
fn win7_is_healthy() {
    assert_healthy(&win7(), 2);
    let m = model(&win7());
    assert_eq!(
        m.control_set(1).unwrap().roles,
        [Role::Current, Role::Default]
    );
    assert_eq!(m.control_set(2).unwrap().roles, [Role::LastKnownGood]);
    // Windows 7 stores `services` in lower case; paths keep the stored spelling.
    let dhcp = m.current().unwrap().service("DHCP").unwrap();
    assert_eq!(dhcp.key_path, r"ControlSet001\services\Dhcp");
    assert_eq!(dhcp.depend_on_service.ok().unwrap(), &["NSI", "Tdx", "Afd"]);
    assert!(m
        .current()
        .unwrap()
        .group_order
        .ok()
        .is_some_and(|l| l.iter().any(|g| g == "TDI")));
}

#[test]
fn win81_is_healthy() {
    assert_healthy(&win81(), 1);
}

#[test]
fn win10_after_replay_is_healthy() {
    assert_healthy(&win10(), 1);
}

#[test]
fn a_file_oracle_finds_missing_files() {
    let m = model(&win7());
    let no_dll = |p: &str| Some(!p.eq_ignore_ascii_case(r"%SystemRoot%\system32\dhcpcore.dll"));
    let d = analyze::diagnose(&m, 1, "Dhcp", &no_dll).unwrap();
    assert_eq!(d.code(), Some(126), "{}", d.summary());
    let no_afd = |p: &str| Some(!p.to_ascii_lowercase().ends_with("afd.sys"));
    let d = analyze::diagnose(&m, 1, "Dhcp", &no_afd).unwrap();
    assert_eq!(d.code(), Some(1068), "{}", d.summary());
    assert_eq!(d.culprit().unwrap().service, "AFD");
    let all = |_: &str| Some(true);
    let d = analyze::diagnose(&m, 1, "Dhcp", &all).unwrap();
    assert_eq!(d.verdict, Verdict::Starts);
    assert!(d.notes.is_empty(), "{:#?}", d.notes);
}
