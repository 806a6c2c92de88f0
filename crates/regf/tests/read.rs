//! Reading the real hives in testdata/: counts, well-known values, case-insensitive paths.

use regf::{Data, Hive};

fn count(hive: &Hive<Vec<u8>>) -> (usize, usize, Vec<String>) {
    let (mut keys, mut values) = (0, 0);
    let mut errors = Vec::new();
    hive.walk(
        |_, k| {
            keys += 1;
            for v in k.values().unwrap() {
                let v = v.unwrap();
                v.raw_data().unwrap();
                values += 1;
            }
        },
        |p, e| errors.push(format!("{p}: {e}")),
    )
    .unwrap();
    (keys, values, errors)
}

#[test]
fn win7_counts_match_independent_readers() {
    // hivex, libregf and reglookup agree on 30756 keys (root included) and 73456 values.
    let hive = Hive::open(fixtures::bytes("hives/win7-SYSTEM")).unwrap();
    let (k, v, errors) = count(&hive);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!((k, v), (30756, 73456));
}

#[test]
fn win10_dirty_without_replay_counts() {
    let hive = Hive::open(fixtures::bytes("hives/win10-dirty-SYSTEM")).unwrap();
    assert!(hive.base_block().is_dirty());
    let (k, v, errors) = count(&hive);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!((k, v), (33123, 74957));
}

#[test]
fn dhcp_values_case_insensitive_path() {
    let hive = Hive::open(fixtures::bytes("hives/win7-SYSTEM")).unwrap();
    // The Windows 7 hive stores "services" in lower case.
    let dhcp = hive
        .key(r"controlset001\SERVICES\dhcp")
        .unwrap()
        .expect("Dhcp key");
    assert_eq!(dhcp.name().to_string(), "Dhcp");
    assert_eq!(
        dhcp.value("start").unwrap().unwrap().data().unwrap(),
        Data::Dword(2)
    );
    assert_eq!(
        dhcp.value("TYPE").unwrap().unwrap().data().unwrap(),
        Data::Dword(0x20)
    );
    assert_eq!(
        dhcp.value("ObjectName").unwrap().unwrap().data().unwrap(),
        Data::Sz(r"NT Authority\LocalService".into())
    );
    assert_eq!(
        dhcp.value("DependOnService")
            .unwrap()
            .unwrap()
            .data()
            .unwrap(),
        Data::MultiSz(vec!["NSI".into(), "Tdx".into(), "Afd".into()])
    );
    assert!(hive
        .key(r"ControlSet001\Services\NoSuchService")
        .unwrap()
        .is_none());
}

#[test]
fn security_descriptors_are_readable() {
    let hive = Hive::open(fixtures::bytes("hives/win7-SYSTEM")).unwrap();
    let dhcp = hive.key(r"ControlSet001\services\Dhcp").unwrap().unwrap();
    let sk = dhcp.security().unwrap();
    assert!(sk.reference_count >= 1);
    // SECURITY_DESCRIPTOR_RELATIVE: revision 1, self-relative control flag (0x8000).
    assert_eq!(sk.descriptor[0], 1);
    assert_ne!(
        u16::from_le_bytes([sk.descriptor[2], sk.descriptor[3]]) & 0x8000,
        0
    );
}
