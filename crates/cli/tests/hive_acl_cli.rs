//! `winrescue hive acl` end to end on copies of the real hives.

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

const DHCP_SID: &str = "S-1-5-80-2940520708-3855866260-481812779-327648279-1710889582";

#[test]
fn text_lists_owner_group_sddl_and_each_ace() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win10-dirty-SYSTEM", "SYSTEM");
    winrescue()
        .args(["hive", "acl", "--no-replay"])
        .arg(&h)
        .arg(r"ControlSet001\Services\Dhcp")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Owner:    NT AUTHORITY\\SYSTEM (S-1-5-18)")
                .and(predicate::str::contains(
                    "SDDL:     O:SYG:SYD:PAI(A;;KR;;;BU)(A;CIIO;GR;;;BU)(A;;KA;;;BA)",
                ))
                .and(predicate::str::contains(format!(
                    "(A;;CCLCSWRPRC;;;{DHCP_SID})"
                )))
                .and(predicate::str::contains("DACL: 14 entries"))
                .and(predicate::str::contains(
                    "  [1] AccessAllowed CIIO  BUILTIN\\Users (S-1-5-32-545)\n      0x80000000: GenericRead",
                ))
                .and(predicate::str::contains(
                    "0x0002001d: QueryValue, CreateSubKey, EnumerateSubKeys, Notify, ReadControl",
                )),
        );
}

#[test]
fn service_access_of_the_dhcp_client() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win10-dirty-SYSTEM", "SYSTEM");
    winrescue()
        .args(["hive", "acl", "--no-replay", "--service", "dhcp"])
        .arg(&h)
        .arg(r"ControlSet001\Services\Tcpip\Parameters\Interfaces")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Access of service dhcp (NT Authority\\LocalService, ServiceSidType 1): 0x0003001f: \
             QueryValue, SetValue, CreateSubKey, EnumerateSubKeys, Notify, Delete, ReadControl",
        ));
}

#[test]
fn json_carries_the_same_facts() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    let out = winrescue()
        .args(["hive", "acl", "--json", "--service", "Dhcp"])
        .arg(&h)
        .arg(r"ControlSet001\services\Dhcp")
        .output()
        .unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // On Windows 7 the service keys belong to Administrators.
    assert_eq!(j["owner"]["sid"], "S-1-5-32-544");
    assert_eq!(j["owner"]["name"], "BUILTIN\\Administrators");
    let sddl = j["sddl"].as_str().unwrap();
    assert!(sddl.starts_with("O:BAG:BAD:PAI(A;;KR;;;BU)"), "{sddl}");
    let dacl = j["dacl"].as_array().unwrap();
    assert!(!dacl.is_empty());
    // Each ACE's SDDL, in order, is the DACL part of the descriptor's SDDL.
    let joined: String = dacl.iter().map(|a| a["sddl"].as_str().unwrap()).collect();
    assert!(sddl.contains(&joined), "{sddl} lacks {joined}");
    for ace in dacl {
        assert!(ace["rights"].as_array().is_some());
        assert!(ace["mask"].as_str().unwrap().starts_with("0x"));
    }
    assert_eq!(j["access"]["granted"], "0x0002001d");
    assert_eq!(j["access"]["service_sid_type"], 1);
}

#[test]
fn missing_key_and_non_system_hive_fail() {
    let dir = tempfile::tempdir().unwrap();
    let h = copy(dir.path(), "hives/BCD", "BCD");
    winrescue()
        .args(["hive", "acl"])
        .arg(&h)
        .arg("NoSuchKey")
        .assert()
        .failure()
        .stderr(predicate::str::contains("no key \"NoSuchKey\""));
    winrescue()
        .args(["hive", "acl", "--service", "Dhcp"])
        .arg(&h)
        .assert()
        .failure()
        .stderr(predicate::str::contains("SYSTEM hive"));
    // The root key of a BCD store: Administrators and SYSTEM.
    winrescue()
        .args(["hive", "acl"])
        .arg(&h)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "SDDL:     O:BAG:SYD:(A;;CCSWRPRCWD;;;BA)(A;;KA;;;SY)",
        ));
}
