//! One answer: `diagnose`, `sc query` and `runbook` judge the same control set (the one Windows
//! boots next, `Select\Default`) and reach the same verdict, on hives whose `Select\Current`
//! and `Select\Default` differ. The hives are broken by hivex (`make-broken-hives.sh`).

mod common;
use common::dhcp;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

/// The Windows 7 hive broken by `case` of `make-broken-hives.sh`, or `None` without hivex
/// (outside CI).
fn broken(dir: &Path, case: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../winsvc/tests/make-broken-hives.sh");
    let status = Std::new("bash")
        .arg(script)
        .arg(fixtures::path("hives/win7-SYSTEM"))
        .arg(dir)
        .arg("win7")
        .arg(case)
        .status()
        .unwrap();
    if status.code() == Some(127) {
        assert!(std::env::var_os("CI").is_none(), "hivex is required in CI");
        eprintln!("SKIPPED: hivexregedit is not installed");
        return None;
    }
    assert!(status.success());
    Some(dir.join(format!("win7-{case}")))
}

#[test]
fn default_healthy_current_broken_every_command_judges_the_set_windows_boots_next() {
    let dir = tempfile::tempdir().unwrap();
    let Some(hive) = broken(dir.path(), "default-healthy-current-broken") else {
        return;
    };
    let json = winrescue()
        .args(["diagnose", "--json"])
        .arg(&hive)
        .assert()
        // ControlSet002 is broken (a Last Known Good boot would use it): a finding, exit 1.
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(d["control_sets"]["boots"], 1);
    assert_eq!(d["control_sets"]["current"], 2);
    assert!(
        dhcp(&d)["code"].is_null(),
        "the set Windows boots next starts the DHCP Client"
    );
    // sc predicts the start in the set Windows boots next, and its exit code is the finding's:
    // the other set is broken, so every command exits 1.
    winrescue()
        .arg("sc")
        .arg(&hive)
        .args(["query", "Dhcp"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "ControlSet001, the control set Windows boots next",
        ))
        .stdout(predicate::str::contains("STARTS"));
    winrescue()
        .arg("runbook")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("(service:Dhcp)"))
        .stdout(predicate::str::contains(
            r#"reg add "HKLM\SYSTEM\ControlSet002\services\Dhcp" /v Start /t REG_DWORD /d "2" /f"#,
        ));
    // The repair covers the other set too, and then every command calls it healthy.
    winrescue()
        .args(["repair", "--apply"])
        .arg(&hive)
        .assert()
        .success();
    winrescue().arg("diagnose").arg(&hive).assert().success();
}

#[test]
fn current_and_default_both_broken_every_command_says_1058() {
    let dir = tempfile::tempdir().unwrap();
    let Some(hive) = broken(dir.path(), "current-broken") else {
        return;
    };
    let json = winrescue()
        .args(["diagnose", "--json"])
        .arg(&hive)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        (d["control_sets"]["boots"].clone(), dhcp(&d)["code"].clone()),
        (2.into(), 1058.into())
    );
    winrescue()
        .arg("sc")
        .arg(&hive)
        .args(["query", "Dhcp"])
        .assert()
        .stdout(predicate::str::contains(
            "ControlSet002, the control set Windows boots next",
        ))
        .stdout(predicate::str::contains("1058"));
    winrescue()
        .arg("runbook")
        .arg(&hive)
        .assert()
        .stdout(predicate::str::contains("1058"));
}

#[test]
fn a_demand_start_dhcp_client_is_one_finding_with_one_severity_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let hive = broken(dir.path(), "dhcp-demand").expect("hivex is required");
    let json = winrescue()
        .args(["diagnose", "--json", "--rule", "service:Dhcp"])
        .arg(&hive)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let f = &d["findings"][0];
    assert_eq!(f["rule"], "service:Dhcp");
    assert_eq!(
        (f["status"].clone(), f["severity"].clone()),
        ("broken".into(), "may_block".into())
    );
    assert_eq!(d["verdict"], "may_be_blocked");
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("RDP may be blocked"));
    // sc predicts that it can start, and its exit code still follows the finding.
    winrescue()
        .arg("sc")
        .arg(&hive)
        .args(["query", "Dhcp"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("DEMAND_START"))
        .stdout(predicate::str::contains("(service:Dhcp)"));
    winrescue().arg("runbook").arg(&hive).assert().code(1);
    winrescue()
        .args(["repair", "--apply", "--only", "service:Dhcp"])
        .arg(&hive)
        .assert()
        .success();
    winrescue()
        .arg("sc")
        .arg(&hive)
        .args(["query", "Dhcp"])
        .assert()
        .success();
    winrescue()
        .args(["diagnose", "--rule", "service:Dhcp"])
        .arg(&hive)
        .assert()
        .success();
}
