//! The real BCD store of `testdata/hives/BCD`, and copies of it given `safeboot` by hivex's
//! `hivexregedit --merge` (as `bcdedit /set {default} safeboot minimal` would store it).

use std::fs;
use std::path::Path;
use std::process::Command;

use bcd::{element, SafeBootMode, Store, BOOTMGR};

/// The default entry of the real store: a Windows 10 OS loader.
const DEFAULT: &str = "{733b62e5-f608-11eb-825c-c112f60133ab}";
/// The first object the default entry inherits (its `{bootloadersettings}`).
const INHERITED: &str = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}";

fn open(bytes: Vec<u8>) -> regf::Hive<Vec<u8>> {
    regf::Hive::open(bytes).unwrap()
}

/// The real BCD with `reg` (a .reg body) merged in by hivexregedit.
fn merged(reg: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let hive = dir.path().join("BCD");
    fs::write(&hive, fixtures::bytes("hives/BCD")).unwrap();
    let file = dir.path().join("change.reg");
    fs::write(
        &file,
        format!("Windows Registry Editor Version 5.00\n\n{reg}\n"),
    )
    .unwrap();
    let st = Command::new("hivexregedit")
        .arg("--merge")
        .arg(&hive)
        .arg(&file)
        .status()
        .expect("hivexregedit (Debian: libwin-hivex-perl)");
    assert!(st.success());
    fs::read(&hive).unwrap()
}

fn element_reg(object: &str, id: u32, data: &str) -> String {
    format!("[\\Objects\\{object}\\Elements\\{id:08x}]\n\"Element\"={data}\n")
}

/// hivexget's view of one key: `None` if it does not exist.
fn hivexget(hive: &Path, key: &str) -> Option<String> {
    let out = Command::new("hivexget")
        .arg(hive)
        .arg(key)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn real_store_default_entry_and_objects() {
    let hive = open(fixtures::bytes("hives/BCD"));
    let store = Store::new(&hive).unwrap();
    assert_eq!(store.default_entry().unwrap().as_deref(), Some(DEFAULT));
    let objects = store.objects().unwrap();
    // hivexregedit --export of the same file lists 17 objects.
    assert_eq!(objects.len(), 17, "{objects:?}");
    let mgr = store.object(BOOTMGR).unwrap().unwrap();
    assert_eq!(mgr.object_type().unwrap(), Some(0x1010_0002));
    assert_eq!(
        mgr.description().unwrap().as_deref(),
        Some("Windows Boot Manager")
    );
    let def = store.object(&DEFAULT.to_uppercase()).unwrap().unwrap();
    assert_eq!(def.guid(), DEFAULT);
    assert_eq!(def.object_type().unwrap(), Some(0x1020_0003));
    assert_eq!(def.description().unwrap().as_deref(), Some("Windows 10"));
    // BcdOSLoaderInteger_NxPolicy = 0 (OptIn) in this store.
    assert_eq!(
        def.element(0x2500_0020)
            .unwrap()
            .unwrap()
            .integer()
            .unwrap(),
        0
    );
    let inherits = def.element(element::INHERITED_OBJECTS).unwrap().unwrap();
    assert_eq!(inherits.list().unwrap()[0], INHERITED);
    assert_eq!(
        store.safe_boot().unwrap(),
        None,
        "the real store boots normally"
    );
}

#[test]
fn safeboot_modes_set_by_hivex() {
    for (data, mode) in [
        ("hex(3):00,00,00,00,00,00,00,00", SafeBootMode::Minimal),
        ("hex(3):01,00,00,00,00,00,00,00", SafeBootMode::Network),
        ("hex(3):02,00,00,00,00,00,00,00", SafeBootMode::DsRepair),
        ("hex(3):07,00,00,00,00,00,00,00", SafeBootMode::Other(7)),
    ] {
        let hive = open(merged(&element_reg(DEFAULT, element::SAFE_BOOT, data)));
        let sb = Store::new(&hive).unwrap().safe_boot().unwrap().unwrap();
        assert_eq!(sb.mode, mode);
        assert_eq!(sb.entry, DEFAULT);
        assert_eq!(sb.object, DEFAULT);
        assert!(!sb.alternate_shell);
        assert_eq!(
            sb.element_key(),
            format!(r"Objects\{DEFAULT}\Elements\25000080")
        );
    }
}

#[test]
fn alternate_shell_and_inherited_safeboot() {
    let reg = element_reg(
        INHERITED,
        element::SAFE_BOOT,
        "hex(3):00,00,00,00,00,00,00,00",
    ) + "\n"
        + &element_reg(DEFAULT, element::SAFE_BOOT_ALTERNATE_SHELL, "hex(3):01");
    let hive = open(merged(&reg));
    let sb = Store::new(&hive).unwrap().safe_boot().unwrap().unwrap();
    assert_eq!(sb.entry, DEFAULT);
    assert_eq!(sb.object, INHERITED, "set on the inherited object");
    assert!(sb.alternate_shell);
    // The alternate shell alone does not boot into safe mode.
    let hive = open(merged(&element_reg(
        DEFAULT,
        element::SAFE_BOOT_ALTERNATE_SHELL,
        "hex(3):01",
    )));
    assert_eq!(Store::new(&hive).unwrap().safe_boot().unwrap(), None);
}

#[test]
fn malformed_safeboot_is_an_error_naming_the_key() {
    // A DWORD instead of 8 bytes of REG_BINARY.
    let hive = open(merged(&element_reg(
        DEFAULT,
        element::SAFE_BOOT,
        "dword:00000001",
    )));
    let err = Store::new(&hive)
        .unwrap()
        .safe_boot()
        .unwrap_err()
        .to_string();
    assert!(err.contains("25000080") && err.contains("integer"), "{err}");
    // A default entry naming no object.
    let hive = open(merged(&element_reg(
        BOOTMGR,
        element::DEFAULT_OBJECT,
        "hex(1):7b,00,31,00,7d,00,00,00",
    )));
    let err = Store::new(&hive)
        .unwrap()
        .safe_boot()
        .unwrap_err()
        .to_string();
    assert!(err.contains("{1}"), "{err}");
    // Not a BCD store at all.
    let system = open(fixtures::bytes("hives/win7-SYSTEM"));
    assert!(Store::new(&system).is_err());
}

/// The change: deleting the element key with regf's editor; hivexget agrees it is gone and
/// that every other element of the entry is still there.
#[test]
fn remove_safe_boot_deletes_the_element() {
    let bytes = merged(&element_reg(
        DEFAULT,
        element::SAFE_BOOT,
        "hex(3):01,00,00,00,00,00,00,00",
    ));
    let hive = open(bytes.clone());
    let sb = Store::new(&hive).unwrap().safe_boot().unwrap().unwrap();
    let mut ed = regf::edit::Editor::new(bytes, 0).unwrap();
    assert!(bcd::remove_safe_boot(&mut ed, &sb).unwrap());
    assert!(
        !bcd::remove_safe_boot(&mut ed, &sb).unwrap(),
        "already gone"
    );
    let edited = ed.finish().unwrap().bytes;
    let hive = open(edited.clone());
    let store = Store::new(&hive).unwrap();
    assert_eq!(store.safe_boot().unwrap(), None);
    assert_eq!(store.default_entry().unwrap().as_deref(), Some(DEFAULT));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("BCD");
    fs::write(&f, &edited).unwrap();
    let elements = format!(r"\Objects\{DEFAULT}\Elements");
    assert_eq!(hivexget(&f, &format!(r"{elements}\25000080")), None);
    assert!(hivexget(&f, &format!(r"{elements}\12000004")).is_some());
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Random bytes in the real store (past the base block, which only gates opening):
        /// every question returns, none panics.
        #[test]
        fn damaged_store_never_panics(patches in prop::collection::vec((4096usize..32768, any::<u8>()), 1..32)) {
            let mut bytes = fixtures::bytes("hives/BCD");
            for (at, b) in patches {
                bytes[at] = b;
            }
            if let Ok(hive) = regf::Hive::open(bytes) {
                if let Ok(store) = Store::new(&hive) {
                    let _ = store.objects();
                    let _ = store.default_entry();
                    let _ = store.safe_boot();
                    let _ = store.effective_element(DEFAULT, element::SAFE_BOOT);
                }
            }
        }
    }
}
