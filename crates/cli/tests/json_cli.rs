//! `--json` of `sc`, `reg` and `events`: serialised library types with `"schema_version": 1`,
//! machine values (type numbers, enums, counts), checked against independent readers (hivex's
//! hivexget) and against the text output.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use serde_json::Value;

fn winrescue() -> Command {
    let mut c = Command::cargo_bin("winrescue").unwrap();
    c.env_remove("WINRESCUE_JOURNAL_DIR");
    c
}

fn copy(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

/// Runs winrescue, expects `code`, parses stdout as one JSON document.
fn json(args: &[&std::ffi::OsStr], code: i32) -> Value {
    let out = winrescue().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(doc["schema_version"], 1, "{doc}");
    doc
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

fn hivexget(hive: &Path, key: &str, value: &str) -> String {
    let out = Std::new("hivexget")
        .arg(hive)
        .arg(key)
        .arg(value)
        .output()
        .expect("hivexget (hivex) is the independent reader");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn sc_query_and_qc_json_carry_the_model_and_the_log() {
    let image = fixtures::path("images/gen2-gpt-win7-system.raw");
    let img = image.as_os_str();
    let doc = json(os!["sc", img, "query", "DHCP", "--json"], 0);
    assert_eq!(doc["control_set"], "ControlSet001");
    assert_eq!(doc["service"]["name"], "Dhcp");
    assert_eq!(doc["starts"], true);
    assert_eq!(doc["predicted_error"], Value::Null);
    assert_eq!(doc["diagnosis"]["service"], "Dhcp");
    assert_eq!(doc["system_log"], true);
    // The same event the text layout names: the newest 7036, record 4986, "stopped".
    assert_eq!(doc["last_state"]["record_id"], 4986);
    assert_eq!(doc["last_state"]["event_id"], 7036);
    let doc = json(os!["sc", img, "--json", "qc", "dhcp"], 0);
    assert_eq!(doc["service"]["name"], "Dhcp");
    assert!(doc["tag"].is_u64(), "{doc}");
    assert!(doc["service"]["key_path"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case(r"ControlSet001\services\Dhcp"));
}

#[test]
fn sc_config_dry_run_json_lists_each_write_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "SYSTEM");
    let before = std::fs::read(&h).unwrap();
    let doc = json(
        os![
            "sc",
            h.as_os_str(),
            "config",
            "DHCP",
            "start=",
            "auto",
            "--all-control-sets",
            "--dry-run",
            "--json"
        ],
        0,
    );
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["changed"], true);
    let changes = doc["changes"].as_array().unwrap();
    let starts: Vec<&Value> = changes.iter().filter(|c| c["name"] == "Start").collect();
    assert!(!starts.is_empty(), "{doc}");
    // The broken hive's DHCP Client is disabled in at least one set: that one changes.
    assert!(
        starts.iter().any(|c| c["before"]["state"] == "other"),
        "{doc}"
    );
    for c in &starts {
        assert_eq!(c["action"], "set_value");
        assert_eq!(c["data"], serde_json::json!({"type": "Dword", "data": 2}));
        // What hivex reads in the broken hive is the "before" the JSON reports.
        let cs = c["control_set"].as_str().unwrap();
        let old = hivexget(&h, &format!(r"{cs}\services\Dhcp"), "Start");
        if old == "2" {
            assert_eq!(c["before"]["state"], "same", "{c}");
        } else {
            assert_eq!(c["before"]["state"], "other", "{c}");
            assert_eq!(c["before"]["data"]["data"].to_string(), old);
        }
    }
    assert!(doc["outcome"]["written"].is_null(), "{doc}");
    assert!(doc["outcome"]["pages"].as_u64().unwrap() > 0);
    assert_eq!(std::fs::read(&h).unwrap(), before, "a dry run wrote");
}

#[test]
fn reg_query_json_gives_type_numbers_and_data_hivex_agrees_with() {
    let h = fixtures::path("hives/win7-SYSTEM");
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "query",
            r"HKLM\SYSTEM\Select",
            "--json"
        ],
        0,
    );
    assert_eq!(doc["key"], r"HKLM\SYSTEM\Select");
    let values = doc["values"].as_array().unwrap();
    assert!(values.len() >= 4, "{doc}");
    for v in values {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["value_type"], 4, "{name}");
        assert_eq!(v["data"]["type"], "Dword");
        assert_eq!(v["data"]["data"].to_string(), hivexget(&h, "Select", name));
    }
    // /s lists every subkey in full; /v one value and no subkeys.
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "query",
            r"HKLM\SYSTEM\CurrentControlSet\Services\Dhcp",
            "/s",
            "--json"
        ],
        0,
    );
    let subkeys = doc["subkeys"].as_array().unwrap();
    assert_eq!(subkeys.len(), doc["children"].as_array().unwrap().len());
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "query",
            r"CurrentControlSet\Services\Dhcp",
            "/v",
            "Start",
            "--json"
        ],
        0,
    );
    assert_eq!(doc["values"].as_array().unwrap().len(), 1);
    assert!(doc["subkeys"].as_array().unwrap().is_empty());
}

#[test]
fn reg_add_delete_and_export_json_report_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    let key = r"HKLM\SYSTEM\ControlSet001\Services\Dhcp";
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "add",
            key,
            "/v",
            "WinrescueTest",
            "/t",
            "REG_MULTI_SZ",
            "/s",
            ",",
            "/d",
            "a,b",
            "/f",
            "--json"
        ],
        0,
    );
    assert_eq!(doc["dry_run"], false);
    let c = &doc["changes"][0];
    assert_eq!(c["action"], "set_value");
    assert_eq!(c["key"], key);
    assert_eq!(
        c["data"],
        serde_json::json!({"type": "MultiSz", "data": ["a", "b"]})
    );
    assert_eq!(c["before"]["state"], "absent");
    let journal = doc["outcome"]["written"]["undo_journal"].as_str().unwrap();
    assert!(Path::new(journal).is_file(), "{doc}");
    // hivex reads the multi-string the JSON says was written.
    let out = Std::new("hivexget")
        .arg(&h)
        .arg(r"ControlSet001\Services\Dhcp")
        .arg("WinrescueTest")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a\nb");
    // Setting it again changes nothing: "same", and no outcome.
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "add",
            key,
            "/v",
            "WinrescueTest",
            "/t",
            "REG_MULTI_SZ",
            "/s",
            ",",
            "/d",
            "a,b",
            "/f",
            "--json"
        ],
        0,
    );
    assert_eq!(
        (&doc["changed"], &doc["changes"][0]["before"]["state"]),
        (&Value::Bool(false), &Value::from("same"))
    );
    assert!(doc["outcome"].is_null());
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "delete",
            key,
            "/v",
            "WinrescueTest",
            "/f",
            "--json"
        ],
        0,
    );
    assert_eq!(doc["changes"][0]["action"], "delete_value");
    assert_eq!(doc["changes"][0]["name"], "WinrescueTest");
    let file = dir.path().join("dhcp.reg");
    let doc = json(
        os![
            "reg",
            h.as_os_str(),
            "export",
            key,
            file.as_os_str(),
            "--json"
        ],
        0,
    );
    assert!(doc["keys"].as_u64().unwrap() >= 1);
    assert_eq!(doc["errors"], 0);
    assert_eq!(
        doc["root"],
        r"HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\Dhcp"
    );
    assert!(file.is_file());
}

#[test]
fn events_json_has_the_schema_version() {
    let log = fixtures::path("evtx/srv2012r2-System.evtx");
    let doc = json(os!["events", log.as_os_str(), "--id", "7036", "--json"], 0);
    assert!(!doc["events"].as_array().unwrap().is_empty());
    assert!(doc["events"][0]["event_id"].is_u64());
}
