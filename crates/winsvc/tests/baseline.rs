//! The baseline file against the real hives it says it was read from, and the healthy hives
//! against the baseline (no false alarm).

mod common;
use common::*;
use winsvc::baseline::{self, compare};
use winsvc::{plan, Family, SystemModel};

/// Every verified variant equals, value by value, the hive named in its `read_from`, in every
/// control set of that hive.
fn check_variant(id: &str, m: &SystemModel) {
    let set = baseline::try_dhcp().expect("baseline parses");
    let var = set.variant(id).expect("variant");
    assert!(var.verified, "{id} claims to be read from a hive");
    for cs in &m.control_sets {
        for sb in &var.services {
            let svc = cs
                .service(&sb.name)
                .unwrap_or_else(|| panic!("{id}: {}\\{} missing", cs.name, sb.name));
            let diffs = compare(svc, sb);
            assert!(diffs.is_empty(), "{id} {}: {diffs:#?}", cs.name);
        }
    }
}

#[test]
fn win7_variant_matches_win7_hive() {
    check_variant("win7", &model(&win7()));
}

#[test]
fn win81_variant_matches_win81_hive() {
    check_variant("win81", &model(&win81()));
}

#[test]
fn win10_variant_matches_replayed_win10_hive() {
    let m = model(&win10());
    assert_eq!(m.version.build, Some(16299));
    check_variant("win10-1709", &m);
}

#[test]
fn version_inference_picks_the_right_variant() {
    let b = baseline::dhcp();
    let m7 = model(&win7());
    assert_eq!(m7.version.family, Family::Windows7);
    assert_eq!(b.for_version(&m7.version).variants, ["win7"]);
    let m81 = model(&win81());
    assert_eq!(m81.version.family, Family::Windows8);
    assert_eq!(b.for_version(&m81.version).variants, ["win81"]);
    let m10 = model(&win10());
    assert_eq!(b.for_version(&m10.version).variants, ["win10-1709"]);
    assert_eq!(
        b.for_version(&winsvc::WindowsVersion::known(19045, None))
            .variants,
        ["win10-1903"]
    );
    // Build unknown: every variant of the family, both dependency lists healthy.
    let mut v = m10.version.clone();
    v.build = None;
    let merged = b.for_version(&v);
    assert_eq!(merged.variants, ["win10-1709", "win10-1903"]);
    let deps = merged
        .service("Dhcp")
        .unwrap()
        .value("DependOnService", None)
        .unwrap();
    assert_eq!(deps.accepted().count(), 2);
}

#[test]
fn healthy_hives_need_no_change() {
    for bytes in [win7(), win81(), win10()] {
        let m = model(&bytes);
        let base = baseline::dhcp().for_version(&m.version);
        for own in [false, true] {
            let p = plan::plan(
                &m,
                "Dhcp",
                &base,
                &plan::Options {
                    own_process: own,
                    control_sets: None,
                },
                &no_disk,
            );
            if own {
                // Only Type=0x10 for Dhcp, in every control set.
                assert_eq!(p.changes.len(), m.control_sets.len(), "{:#?}", p.changes);
                assert!(p.changes.iter().all(|c| c.value_name == "Type"));
            } else {
                assert!(p.changes.is_empty(), "{:#?}", p.changes);
            }
            assert!(p.unresolved.is_empty(), "{:?}", p.unresolved);
            assert!(p.fixes_everything());
        }
    }
}
