//! The boot stage end to end: a disk whose default boot entry is in safe mode (the element added
//! with hivex, see testdata/images/README.md) is diagnosed, repaired together with SYSTEM in one
//! journal, checked with mtools / ntfs-3g and hivex, and undone bit for bit.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

fn winrescue(state: &Path) -> Command {
    let mut c = Command::cargo_bin("winrescue").unwrap();
    c.env("WINRESCUE_STATE_DIR", state);
    c
}

fn copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.raw"));
    std::fs::copy(fixtures::path(&format!("images/{name}.raw")), &to).unwrap();
    to
}

fn sha256(p: &Path) -> String {
    let out = Std::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// The BCD pulled out of the image with an independent tool: mtools for the FAT EFI system
/// partition (Gen2), ntfs-3g for the NTFS active partition (Gen1).
fn extract_bcd(image: &Path, gen2: bool, out: &Path) {
    let status = if gen2 {
        // p1 starts at sector 2048.
        Std::new("mcopy")
            .arg("-n")
            .arg("-i")
            .arg(format!("{}@@{}", image.display(), 2048 * 512))
            .arg("::EFI/Microsoft/Boot/BCD")
            .arg(out)
            .status()
    } else {
        let part = out.with_extension("part");
        let dd = Std::new("dd")
            .arg(format!("if={}", image.display()))
            .arg(format!("of={}", part.display()))
            .args(["bs=512", "skip=2048", "count=102400", "status=none"])
            .status()
            .expect("dd");
        assert!(dd.success());
        let o = Std::new("ntfscat")
            .arg(&part)
            .arg("/Boot/BCD")
            .output()
            .expect("ntfscat (ntfs-3g) is needed");
        std::fs::write(out, &o.stdout).unwrap();
        Ok(o.status)
    }
    .expect("mtools (mcopy) is needed");
    assert!(status.success(), "extracting the BCD failed");
}

fn hivex_has_key(hive: &Path, key: &str) -> bool {
    let out = Std::new("hivexregedit")
        .arg("--export")
        .arg(hive)
        .arg(key)
        .output()
        .expect("hivexregedit (libhivex-bin) is needed");
    out.status.success()
}

fn safe_mode_is_repaired_with_system_in_one_journal(name: &str, gen2: bool) {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), name);
    let original = sha256(&image);
    let out = winrescue(dir.path())
        .args(["diagnose", "--json"])
        .arg(&image)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "safe-mode")
        .unwrap();
    assert_eq!(f["status"], "broken", "{name}");
    assert_eq!(f["stage"], "boot");
    assert_eq!(f["locations"][0]["hive"], "boot_store");
    let key = f["locations"][0]["key"].as_str().unwrap().to_string();
    assert!(key.ends_with(r"\Elements\25000080"), "{key}");
    // The boot stage comes first on the way of a connection.
    assert_eq!(j["findings"][0]["rule"], "safe-mode");

    let out = winrescue(dir.path())
        .args(["repair", "--apply"])
        .arg(&image)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("safe-mode"), "{text}");
    let journals: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".winrescue-undo-"))
        .collect();
    assert_eq!(journals.len(), 1, "one journal for every hive: {text}");
    winrescue(dir.path())
        .args(["diagnose", "--rule", "safe-mode"])
        .arg(&image)
        .assert()
        .success();

    let bcd = dir.path().join("BCD");
    extract_bcd(&image, gen2, &bcd);
    let hivex_key = format!("\\{key}");
    assert!(
        !hivex_has_key(&bcd, &hivex_key),
        "{name}: {key} still there"
    );
    assert!(
        hivex_has_key(&bcd, r"\Objects"),
        "{name}: the BCD is readable"
    );
    if gen2 {
        let part = dir.path().join("esp");
        let dd = Std::new("dd")
            .arg(format!("if={}", image.display()))
            .arg(format!("of={}", part.display()))
            .args(["bs=512", "skip=2048", "count=67584", "status=none"])
            .status()
            .unwrap();
        assert!(dd.success());
        let fsck = Std::new("fsck.vfat")
            .arg("-n")
            .arg(&part)
            .output()
            .expect("fsck.vfat (dosfstools) is needed");
        assert!(fsck.status.success(), "{fsck:?}");
    }

    winrescue(dir.path())
        .arg("undo")
        .arg(journals[0].path())
        .assert()
        .success();
    assert_eq!(
        sha256(&image),
        original,
        "{name}: undo gives the image back bit for bit"
    );
}

#[test]
fn gen2_safe_mode_on_the_efi_system_partition() {
    safe_mode_is_repaired_with_system_in_one_journal("gen2-gpt-win7-safeboot", true);
}

#[test]
fn gen1_safe_mode_on_the_active_ntfs_partition() {
    safe_mode_is_repaired_with_system_in_one_journal("gen1-mbr-win10-safeboot", false);
}
