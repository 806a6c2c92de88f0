//! `winrescue events` end to end, on the real logs.

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn log(name: &str) -> std::path::PathBuf {
    fixtures::path(&format!("evtx/{name}.evtx"))
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = winrescue()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn dhcp_state_changes_as_json() {
    let path = log("srv2012r2-System");
    let doc = json(&[
        "events",
        path.to_str().unwrap(),
        "--service",
        "Dhcp",
        "--id",
        "7036",
        "--json",
    ]);
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events.len(), 21);
    for e in events {
        assert_eq!(e["service"], "DHCP Client");
        assert_eq!(e["service_key"], "Dhcp");
        assert_eq!(e["event_id"], 7036);
    }
    assert_eq!(doc["stats"]["records"], 60189);
    assert!(doc["warnings"].is_array());
}

#[test]
fn volume_root_folder_is_searched_ignoring_case() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("WINDOWS/system32/WinEvt/LOGS");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::copy(log("srv2008r2-System"), logs.join("system.EVTX")).unwrap();
    let out = winrescue()
        .args(["events"])
        .arg(dir.path())
        .args(["--service", "dhcp client", "--id", "7036"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Dhcp (DHCP Client)"))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let rows = text.lines().filter(|l| l.contains("entered the")).count();
    assert_eq!(rows, 15, "{text}");
}

#[test]
fn error_codes_are_explained() {
    let path = log("win10-belkasoft-System");
    winrescue()
        .args(["events", path.to_str().unwrap(), "--id", "7023"])
        .assert()
        .success()
        .stdout(predicate::str::contains("terminated with an error: error "));
}

#[test]
fn xml_output() {
    let path = log("srv2008r2-System");
    winrescue()
        .args([
            "events",
            path.to_str().unwrap(),
            "--service",
            "Dhcp",
            "--max",
            "2",
            "--xml",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("<Provider Name=\"Service Control Manager\"").count(2));
}

#[test]
fn within_since_and_max() {
    let path = log("srv2012r2-System");
    let p = path.to_str().unwrap();
    let count = |doc: serde_json::Value| doc["events"].as_array().unwrap().len();
    let all = count(json(&["events", p, "--json"]));
    let day = count(json(&["events", p, "--within", "24h", "--json"]));
    assert!(day > 0 && day < all, "{day} of {all}");
    assert_eq!(count(json(&["events", p, "--max", "3", "--json"])), 3);
    let later = json(&["events", p, "--since", "2030-01-01T00:00:00Z", "--json"]);
    assert_eq!(count(later), 0);
}

#[test]
fn damaged_log_gives_records_and_warnings() {
    let path = log("sample-with-zero-data-size-event");
    let doc = json(&["events", path.to_str().unwrap(), "--json"]);
    assert_eq!(doc["events"].as_array().unwrap().len(), 34);
    let warnings = doc["warnings"].as_array().unwrap();
    assert!(warnings
        .iter()
        .any(|w| w["chunk"] == 0 && w["file_offset"] == 0x1820));
    winrescue()
        .args(["events", path.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("warning: chunk 0"));
}

#[test]
fn bad_input_and_bad_usage() {
    winrescue()
        .args(["events", "/nonexistent/System.evtx"])
        .assert()
        .code(3);
    let dir = tempfile::tempdir().unwrap();
    let not_log = dir.path().join("x.evtx");
    std::fs::write(&not_log, vec![0u8; 5000]).unwrap();
    winrescue()
        .args(["events"])
        .arg(&not_log)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not an EVTX event log"));
    winrescue()
        .args(["events"])
        .arg(dir.path())
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "Windows/System32/winevt/Logs/System.evtx",
        ));
    winrescue()
        .args(["events", "x.evtx", "--within", "soon"])
        .assert()
        .code(2);
}
