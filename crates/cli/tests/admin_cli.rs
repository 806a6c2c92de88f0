//! Issue 14, "the admin's first hour": what a new Windows administrator types, end to end on
//! copies of the real fixtures. Each test is named after what the admin ran into.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("winrescue").unwrap();
    c.env("WINRESCUE_JOURNAL_DIR", dir.join("journals"));
    c.env_remove("NO_COLOR");
    c
}

fn copy(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

const DHCP: &str = r"HKLM\SYSTEM\ControlSet001\services\DHCP";

#[test]
fn reg_add_start_without_t_stores_reg_sz_and_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    let before = std::fs::read(&image).unwrap();
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args(["add", DHCP, "/v", "Start", "/d", "2", "/f"])
        .assert()
        .code(4)
        .stdout(
            predicate::str::contains("before: ControlSet001 (Current, Default): Dhcp starts").and(
                predicate::str::contains(
                    "after: ControlSet001 (Current, Default): Dhcp fails with 1060",
                ),
            ),
        )
        .stderr(
            predicate::str::contains("Start would be stored as REG_SZ")
                .and(predicate::str::contains("only as REG_DWORD"))
                .and(predicate::str::contains("--force")),
        );
    assert!(
        std::fs::read(&image).unwrap() == before,
        "a refused write changed the disk"
    );
    // The same value with its type is a no-op; --force writes the broken one and says so.
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args([
            "add",
            DHCP,
            "/v",
            "Start",
            "/t",
            "REG_DWORD",
            "/d",
            "2",
            "/f",
        ])
        .assert()
        .success();
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args(["add", DHCP, "/v", "Start", "/d", "2", "/f", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: written anyway (--force)",
        ));
    winrescue(dir.path())
        .arg("diagnose")
        .arg(&image)
        .assert()
        .code(1);
}

#[test]
fn sc_config_that_breaks_the_dhcp_client_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    let before = std::fs::read(&image).unwrap();
    for (args, code) in [
        (&["config", "DHCP", "obj=", "LocalSystem"][..], "1079"),
        (&["config", "DHCP", "start=", "disabled"], "1058"),
        (
            &["config", "DHCP", "start=", "disabled", "--dry-run"],
            "1058",
        ),
    ] {
        winrescue(dir.path())
            .arg("sc")
            .arg(&image)
            .args(args)
            .assert()
            .code(4)
            .stdout(
                predicate::str::contains(format!(
                    "after: ControlSet001 (Current, Default): Dhcp fails with {code}"
                ))
                .and(predicate::str::contains("SUCCESS").not()),
            )
            .stderr(predicate::str::contains(format!(
                "Dhcp starts now and would fail with {code}"
            )));
    }
    assert!(
        std::fs::read(&image).unwrap() == before,
        "a refused write changed the disk"
    );
    // Demand start still "starts", but is not what a healthy Windows has: refused too.
    winrescue(dir.path())
        .arg("sc")
        .arg(&image)
        .args(["config", "DHCP", "start=", "demand"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("healthy now and would not be"));
    assert!(std::fs::read(&image).unwrap() == before);
}

#[test]
fn a_script_that_breaks_the_dhcp_client_is_refused_and_one_that_fixes_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    let before = std::fs::read(&image).unwrap();
    let script = dir.path().join("break.cmd");
    std::fs::write(
        &script,
        "reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 4 /f\r\nreg unload HKLM\\B\r\n",
    )
    .unwrap();
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .arg("--script")
        .arg(&script)
        .assert()
        .code(4)
        .stdout(predicate::str::contains("fails with 1058"));
    assert!(std::fs::read(&image).unwrap() == before);
    // reg import goes through the same check.
    let file = dir.path().join("x.reg");
    std::fs::write(
        &file,
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\services\\Dhcp]\r\n\"Start\"=dword:00000004\r\n",
    )
    .unwrap();
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .arg("import")
        .arg(&file)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("would fail with 1058"));
    assert!(std::fs::read(&image).unwrap() == before);
}

#[test]
fn a_write_that_repairs_a_broken_dhcp_client_runs_and_prints_the_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(
        dir.path(),
        "images/gen2-gpt-win7-dhcp-disabled.raw",
        "disk.raw",
    );
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args([
            "add",
            DHCP,
            "/v",
            "Start",
            "/t",
            "REG_DWORD",
            "/d",
            "2",
            "/f",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains(
                "before: ControlSet001 (Current, Default): Dhcp fails with 1058",
            )
            .and(predicate::str::contains(
                "after: ControlSet001 (Current, Default): Dhcp starts",
            ))
            .and(predicate::str::contains(
                "The operation completed successfully.",
            )),
        );
}
