//! A deleted service key (error 1060) re-created by `repair` from the healthy configuration of
//! the hive's Windows version, in every control set that lost it; and a write that would have to
//! grow a hive file inside a disk image refused with exit 4. The broken hives are made by hivex's
//! hivexregedit, so the damage does not come from winrescue's own writer; hivexget reads the
//! result.

mod common;
use common::dhcp;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The hive hivex edits: Windows 7 as committed; Windows 10 after its logs are replayed (hivex
/// does not replay logs, and Windows would see the replayed hive).
fn source(dir: &Path, which: &str) -> PathBuf {
    match which {
        "win7" => {
            let p = dir.join("source");
            std::fs::copy(fixtures::path("hives/win7-SYSTEM"), &p).unwrap();
            p
        }
        _ => {
            let raw = dir.join("raw");
            std::fs::create_dir(&raw).unwrap();
            fixtures::copy_to(
                &raw,
                &[
                    ("hives/win10-dirty-SYSTEM", "SYSTEM"),
                    ("hives/win10-dirty-SYSTEM.LOG1", "SYSTEM.LOG1"),
                    ("hives/win10-dirty-SYSTEM.LOG2", "SYSTEM.LOG2"),
                ],
            );
            let p = dir.join("source");
            winrescue()
                .args(["hive", "replay"])
                .arg(raw.join("SYSTEM"))
                .arg("-o")
                .arg(&p)
                .assert()
                .success();
            p
        }
    }
}

/// Deletes `Dhcp` in each of `control_sets` with hivexregedit; `false` when hivex is missing
/// (outside CI only).
fn delete_dhcp(hive: &Path, control_sets: &[&str]) -> bool {
    let prefix = r"HKEY_LOCAL_MACHINE\SYSTEM";
    let mut reg = String::from("Windows Registry Editor Version 5.00\n\n");
    for cs in control_sets {
        reg.push_str(&format!("[-{prefix}\\{cs}\\services\\Dhcp]\n\n"));
    }
    let reg_file = hive.with_extension("reg");
    std::fs::write(&reg_file, reg).unwrap();
    match Std::new("hivexregedit")
        .args(["--merge", "--prefix", prefix])
        .arg(hive)
        .arg(&reg_file)
        .output()
    {
        Ok(o) => {
            assert!(
                o.status.success(),
                "hivexregedit: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            true
        }
        Err(_) => {
            assert!(!ci(), "hivexregedit is required in CI");
            false
        }
    }
}

fn hivexget(hive: &Path, key: &str, value: &str) -> String {
    let o = Std::new("hivexget")
        .arg(hive)
        .arg(key)
        .arg(value)
        .output()
        .expect("hivexget (hivex is installed: hivexregedit ran)");
    assert!(
        o.status.success(),
        "hivexget {key} {value}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn deleted_dhcp_is_recreated(which: &str, control_sets: &[&str], image_path: &str) {
    let dir = tempfile::tempdir().unwrap();
    let hive = source(dir.path(), which);
    assert!(
        delete_dhcp(&hive, control_sets),
        "hivexregedit (Debian: libhivex-bin) is needed to break the hive"
    );
    let original = std::fs::read(&hive).unwrap();

    let out = winrescue()
        .arg("diagnose")
        .arg("--json")
        .arg(&hive)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(dhcp(&j)["code"], 1060, "{which}");
    for cs in &dhcp(&j)["control_sets"].as_array().unwrap()[..] {
        let name = cs["diagnosis"]["control_set_name"].as_str().unwrap_or("");
        if control_sets.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            assert_eq!(cs["diagnosis"]["code"], 1060, "{which} {name}");
        }
    }

    let out = winrescue()
        .args(["repair", "--apply"])
        .arg(&hive)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("verified: read back from the disk, healthy now: service:Dhcp"),
        "{which}: {text}"
    );
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("undo:    winrescue undo "))
        .unwrap()
        .to_string();
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .success()
        .stdout(predicate::str::contains("verdict:  healthy"));

    // hivex reads the re-created key, its values and its Parameters subkey, in every control
    // set that had lost it.
    for cs in control_sets {
        let key = format!(r"\{cs}\services\Dhcp");
        assert_eq!(hivexget(&hive, &key, "Start"), "2", "{which} {cs}");
        assert_eq!(hivexget(&hive, &key, "Type"), "32", "{which} {cs}");
        assert_eq!(hivexget(&hive, &key, "ErrorControl"), "1", "{which} {cs}");
        assert_eq!(
            hivexget(&hive, &key, "ObjectName"),
            r"NT Authority\LocalService"
        );
        assert_eq!(hivexget(&hive, &key, "Group"), "TDI");
        assert_eq!(hivexget(&hive, &key, "ImagePath"), image_path, "{which}");
        let deps = hivexget(&hive, &key, "DependOnService");
        for d in ["NSI", "Afd"] {
            assert!(deps.contains(d), "{which} {cs}: DependOnService {deps}");
        }
        assert_eq!(
            hivexget(&hive, &format!(r"{key}\Parameters"), "ServiceDll"),
            r"%SystemRoot%\system32\dhcpcore.dll"
        );
    }
    assert!(regf::check::check(&std::fs::read(&hive).unwrap()).is_sound());

    // Undo gives hivex's broken file back, bit for bit, length included.
    winrescue().arg("undo").arg(&journal).assert().success();
    let back = std::fs::read(&hive).unwrap();
    assert_eq!(back.len(), original.len());
    assert!(back == original, "{which}: undo is not bit for bit");
    winrescue().arg("diagnose").arg(&hive).assert().code(1);
}

#[test]
fn win7_deleted_dhcp_in_both_control_sets_is_recreated_and_undone() {
    deleted_dhcp_is_recreated(
        "win7",
        &["ControlSet001", "ControlSet002"],
        r"%SystemRoot%\system32\svchost.exe -k LocalServiceNetworkRestricted",
    );
}

#[test]
fn win10_deleted_dhcp_is_recreated_and_undone() {
    deleted_dhcp_is_recreated(
        "win10",
        &["ControlSet001"],
        r"%SystemRoot%\system32\svchost.exe -k LocalServiceNetworkRestricted -p",
    );
}

/// A value larger than the hive file's bytes, imported into a disk image: exit 4 (write
/// refused), the bytes needed named, the image unchanged. The same import into the bare hive
/// file grows it.
#[test]
fn an_image_hive_that_would_have_to_grow_is_refused_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.raw");
    std::fs::copy(fixtures::path("images/gen2-gpt-win7-system.raw"), &image).unwrap();
    let original = std::fs::read(&image).unwrap();
    let hex: Vec<String> = (0..512 * 1024u32)
        .map(|i| format!("{:02x}", (i * 7 % 251) as u8))
        .collect();
    let reg = dir.path().join("big.reg");
    std::fs::write(
        &reg,
        format!(
            "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Dhcp]\n\"Big\"=hex:{}\n",
            hex.join(",")
        ),
    )
    .unwrap();
    winrescue()
        .arg("reg")
        .arg(&image)
        .arg("import")
        .arg(&reg)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("more bytes are needed"));
    assert!(
        std::fs::read(&image).unwrap() == original,
        "the image changed"
    );

    let hive = dir.path().join("SYSTEM");
    std::fs::copy(fixtures::path("hives/win7-SYSTEM"), &hive).unwrap();
    let len = std::fs::metadata(&hive).unwrap().len();
    winrescue()
        .arg("reg")
        .arg(&hive)
        .arg("import")
        .arg(&reg)
        .assert()
        .success();
    assert!(std::fs::metadata(&hive).unwrap().len() > len + 512 * 1024);
}
