//! The `hive` and `reg` commands end to end, on copies of the real hives.

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn copy(dir: &std::path::Path, fixture: &str, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

#[test]
fn readme_first_command_works_on_the_shipped_sample() {
    let sample = fixtures::testdata_dir().join("hives/win7-SYSTEM.xz");
    winrescue()
        .args(["hive", "check"])
        .arg(&sample)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("30756 keys, 73456 values")
                .and(predicate::str::contains("0 errors")),
        );
}

#[test]
fn info_reports_the_replay_of_a_dirty_hive() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win10-dirty-SYSTEM", "SYSTEM");
    copy(dir.path(), "hives/win10-dirty-SYSTEM.LOG1", "system.log1"); // names match case-insensitively
    copy(dir.path(), "hives/win10-dirty-SYSTEM.LOG2", "SYSTEM.LOG2");
    winrescue()
        .args(["hive", "info"])
        .arg(&h)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("dirty, replayed")
                .and(predicate::str::contains(
                    "24 log entries, 315 pages (sequence 2107..2130",
                ))
                .and(predicate::str::contains("35595 / 78901")),
        );
    winrescue()
        .args(["hive", "info", "--no-replay"])
        .arg(&h)
        .assert()
        .success()
        .stdout(predicate::str::contains("33123 / 74957"));
    let out = dir.path().join("recovered");
    winrescue()
        .args(["hive", "replay"])
        .arg(&h)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    winrescue()
        .args(["hive", "check"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("35595 keys"));
    // Never over an existing file.
    winrescue()
        .args(["hive", "replay"])
        .arg(&h)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(4);
}

#[test]
fn dirty_hive_without_logs_warns_and_replay_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win81-dirty-nologs-SYSTEM", "SYSTEM");
    winrescue()
        .args(["hive", "info"])
        .arg(&h)
        .assert()
        .success()
        .stderr(predicate::str::contains("no transaction logs"));
    winrescue()
        .args(["hive", "replay"])
        .arg(&h)
        .arg("-o")
        .arg(dir.path().join("out"))
        .assert()
        .code(4)
        .stderr(predicate::str::contains("--force"));
    assert!(!dir.path().join("out").exists());
}

#[test]
fn corrupted_hive_check_fails_with_offsets() {
    winrescue()
        .args(["hive", "check"])
        .arg(fixtures::path("hives/corrupted-SYSTEM"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error: file offset 0x"));
    winrescue()
        .args(["hive", "info"])
        .arg(fixtures::testdata_dir().join("SOURCES.md"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not a registry hive"));
}

#[test]
fn get_and_ls_and_export() {
    let h = fixtures::path("hives/win7-SYSTEM");
    winrescue()
        .args(["hive", "get"])
        .arg(&h)
        .args([r"ControlSet001\Services\DHCP", "ObjectName"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            r"ObjectName    REG_SZ    NT Authority\LocalService",
        ));
    winrescue()
        .args(["hive", "get", "--json"])
        .arg(&h)
        .args([r"ControlSet001\Services\DHCP", "Start"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"data\": 2"));
    winrescue()
        .args(["hive", "ls"])
        .arg(&h)
        .args([r"ControlSet001\Services\DHCP"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Parameters\\"));
    winrescue()
        .args(["hive", "export"])
        .arg(&h)
        .args([
            r"ControlSet001\Services\DHCP",
            "--prefix",
            r"HKEY_LOCAL_MACHINE\SYSTEM",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("Windows Registry Editor Version 5.00")
                .and(predicate::str::contains("\"Start\"=dword:00000002")),
        );
    winrescue()
        .args(["hive", "get"])
        .arg(&h)
        .args([r"ControlSet001\Services\NoSuch"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no key"));
}

#[test]
fn reg_add_runs_the_articles_lines_through_the_undo_journal() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    let original = std::fs::read(&h).unwrap();
    for cs in ["ControlSet001", "ControlSet002"] {
        let key = format!(r"HKLM\BROKENSYSTEM\{cs}\services\DHCP");
        winrescue()
            .arg("reg")
            .arg(&h)
            .args([
                "add",
                &key,
                "/v",
                "start",
                "/t",
                "REG_DWORD",
                "/d",
                "2",
                "/f",
            ])
            .assert()
            .success();
        winrescue()
            .arg("reg")
            .arg(&h)
            .args([
                "add",
                &key,
                "/v",
                "ObjectName",
                "/t",
                "REG_SZ",
                "/d",
                r"NT Authority\LocalService",
                "/f",
            ])
            .assert()
            .success();
        winrescue()
            .arg("reg")
            .arg(&h)
            .args([
                "add",
                &key,
                "/v",
                "type",
                "/t",
                "REG_DWORD",
                "/d",
                "16",
                "/f",
            ])
            .assert()
            .success();
    }
    let after = std::fs::read(&h).unwrap();
    assert_eq!(after.len(), original.len());
    // Every write went through rescue's undo journal (one per command), next to the hive.
    let journals = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("SYSTEM.winrescue-undo-")
        })
        .count();
    assert!(journals >= 1, "no undo journal");
    winrescue()
        .arg("reg")
        .arg(&h)
        .args(["query", r"HKLM\X\ControlSet002\services\DHCP", "/v", "TYPE"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Type    REG_DWORD    0x10"));
    let report = regf::check::check(&after);
    assert!(report.is_sound());
}

#[test]
fn reg_refuses_a_dirty_hive_without_logs_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win81-dirty-nologs-SYSTEM", "SYSTEM");
    let before = std::fs::read(&h).unwrap();
    winrescue()
        .arg("reg")
        .arg(&h)
        .args([
            "add",
            r"ControlSet001\services\Dhcp",
            "/v",
            "Start",
            "/t",
            "REG_DWORD",
            "/d",
            "2",
        ])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("--allow-incomplete"));
    assert_eq!(std::fs::read(&h).unwrap(), before);
    winrescue()
        .arg("reg")
        .arg(&h)
        .args([
            "add",
            r"ControlSet001\services\Dhcp",
            "/v",
            "Start",
            "/t",
            "REG_DWORD",
            "/d",
            "zz",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ERROR: Invalid syntax"));
}

#[test]
fn reg_write_on_a_dirty_hive_lands_above_every_log_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win10-dirty-SYSTEM", "SYSTEM");
    copy(dir.path(), "hives/win10-dirty-SYSTEM.LOG1", "SYSTEM.LOG1");
    copy(dir.path(), "hives/win10-dirty-SYSTEM.LOG2", "SYSTEM.LOG2");
    winrescue()
        .arg("reg")
        .arg(&h)
        .args([
            "add",
            r"HKLM\SYSTEM\CurrentControlSet\Services\Dhcp",
            "/v",
            "Start",
            "/t",
            "REG_DWORD",
            "/d",
            "4",
            "/f",
            // Disabling the DHCP Client is refused without it (issue 14); this test is about
            // the sequence numbers.
            "--force",
        ])
        .assert()
        .success();
    let written = std::fs::read(&h).unwrap();
    let base = regf::BaseBlock::parse(&written).unwrap();
    assert!(!base.is_dirty());
    assert!(base.primary_sequence > 2130, "{}", base.primary_sequence);
    // The logged changes are in the file now: without the logs, the replayed view is read.
    winrescue()
        .args(["hive", "info", "--no-replay"])
        .arg(&h)
        .assert()
        .success()
        .stdout(predicate::str::contains("35595 / 78901"));
}
