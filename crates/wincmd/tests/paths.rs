//! The path grammar against real SYSTEM hives: `CurrentControlSet` follows `Select\Current`
//! (winsvc's policy), and the parsers never panic on any input.

use std::process::Command;

use proptest::prelude::*;
use regf::{Data, Hive, ValueType};
use wincmd::path::{inner_path, HiveName, Mounts};

fn select_current(hive: &Hive<Vec<u8>>) -> u32 {
    let v = hive
        .key("Select")
        .unwrap()
        .unwrap()
        .value("Current")
        .unwrap()
        .unwrap();
    match v.data().unwrap() {
        Data::Dword(n) => n,
        other => panic!("Select\\Current is {other:?}"),
    }
}

#[test]
fn current_control_set_follows_select_current() {
    let hive = Hive::open(fixtures::bytes("hives/win7-SYSTEM")).unwrap();
    let k = Mounts::default()
        .resolve(r"HKLM\BROKENSYSTEM\CurrentControlSet\Services\Dhcp")
        .unwrap();
    let path = inner_path(&hive, k.hive, &k.parts).unwrap();
    let want = format!(r"ControlSet{:03}\Services\Dhcp", select_current(&hive));
    assert!(path.eq_ignore_ascii_case(&want), "{path} != {want}");
    assert!(hive.key(&path).unwrap().is_some());
    // Only SYSTEM has a CurrentControlSet; in another hive the word is a key name.
    let k = Mounts::default()
        .resolve(r"HKLM\SOFTWARE\CurrentControlSet")
        .unwrap();
    assert_eq!(
        inner_path(&hive, HiveName::Software, &k.parts).unwrap(),
        "CurrentControlSet"
    );
}

/// Select\Current changed by hivex (an independent writer): the path follows it, and a Current
/// that names a control set the hive lacks is an error, never another set.
#[test]
fn a_changed_select_current_is_followed_and_a_missing_set_refused() {
    let dir = tempfile_dir();
    let file = dir.join("SYSTEM");
    std::fs::write(&file, fixtures::bytes("hives/win7-SYSTEM")).unwrap();
    let set = |n: u32| {
        let reg = dir.join("select.reg");
        std::fs::write(
            &reg,
            format!("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]\n\"Current\"=dword:{n:08x}\n"),
        )
        .unwrap();
        let st = Command::new("hivexregedit")
            .args(["--merge", "--prefix", r"HKEY_LOCAL_MACHINE\SYSTEM"])
            .arg(&file)
            .arg(&reg)
            .status()
            .expect("hivexregedit (hivex) is needed as the independent writer");
        assert!(st.success());
        Hive::open(std::fs::read(&file).unwrap()).unwrap()
    };
    let parts = vec!["CurrentControlSet".to_string(), "Services".to_string()];
    let hive = set(2);
    assert_eq!(select_current(&hive), 2);
    if hive.key("ControlSet002").unwrap().is_some() {
        assert_eq!(
            inner_path(&hive, HiveName::System, &parts).unwrap(),
            r"ControlSet002\Services"
        );
    }
    let hive = set(9);
    let e = inner_path(&hive, HiveName::System, &parts).unwrap_err();
    assert!(
        matches!(
            e,
            wincmd::Error::Model(winsvc::Error::ControlSetUnreadable { number: 9, .. })
        ),
        "{e:?}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wincmd-paths-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any key text: resolved, refused, loaded or unloaded, never a panic.
    #[test]
    fn the_path_grammar_never_panics(key in "\\PC{0,40}", file in "\\PC{0,20}", parts in proptest::collection::vec("(HKLM|HKEY_LOCAL_MACHINE|SYSTEM|BROKEN|CurrentControlSet|\\\\|[a-z]{0,3})", 0..6)) {
        let mut m = Mounts::strict();
        let _ = m.load(&key, &file);
        let _ = m.resolve(&key);
        let joined = parts.join("\\");
        let _ = Mounts::default().resolve(&joined);
        let _ = m.resolve(&joined);
        let _ = m.unload(&joined);
        let _ = wincmd::path::below_root(&key);
        let _ = wincmd::path::lost_backslashes(&key);
    }

    /// Any `/t /d /s`: data of that type or a syntax error, never a panic.
    #[test]
    fn the_data_encoder_never_panics(t in 0u32..16, d in "\\PC{0,40}", sep in "\\PC{0,3}") {
        if let Ok(data) = wincmd::data::parse_data(ValueType(t), &d, &sep) {
            prop_assert_eq!(data.value_type(), ValueType(t));
            let _ = data.to_bytes();
        }
    }

    /// Any argument list: a RegOp or a syntax error; any script text and sc arguments too.
    #[test]
    fn the_command_grammars_never_panic(args in proptest::collection::vec("(/v|/ve|/t|/d|/s|/f|/va|/y|-s|add|query|delete|export|load|REG_DWORD|REG_MULTI_SZ|REG_BINARY|\\PC{0,8})", 0..8), text in "\\PC{0,200}") {
        let _ = wincmd::reg::parse(&args);
        let _ = wincmd::sc::parse(&args);
        let _ = wincmd::script::parse_script(&text);
        let _ = wincmd::script::cmd_tokens(&text);
    }
}
