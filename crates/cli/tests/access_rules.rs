//! Error 5 from the disk: registry permissions broken with code that is not winrescue's
//! (`tests/access-cases/break-sk.py`, a same-size patch of a key's `sk` cell in a real hive), then
//! `diagnose` must name error 5, the key, the SID and the deciding ACE; `repair --apply` must give
//! the key back the DACL `reglookup -s` showed before the break, hivex must read the result and
//! our checker pass it; `undo` must give the broken hive back bit for bit. The runbook's error-5
//! branch starts from the denial found on the disk.
//!
//! The dirty Windows 8.1 and 10 hives are first passed through hivex's `hivexregedit --merge`
//! (hivex writes them back clean): winrescue never edits a dirty hive without its logs.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use sha2::{Digest, Sha256};

struct Case {
    name: &'static str,
    fixture: &'static str,
    /// The .reg hivex merges first (`rdp-cases/` or `access-cases/`), if any.
    merge: Option<&'static str>,
    key: &'static str,
    mode: &'static [&'static str],
    rule: &'static str,
    /// The SID the finding must name, and how the right is decided.
    sid: &'static str,
    decided_by: &'static str,
    ace_index: Option<u64>,
    right: &'static str,
}

const DHCP_SID: &str = "S-1-5-80-2940520708-3855866260-481812779-327648279-1710889582";

const CASES: &[Case] = &[
    Case {
        name: "win7: the service SID's ACE on Services\\Dhcp turned into a deny",
        fixture: "win7-SYSTEM",
        merge: None,
        key: r"ControlSet001\services\Dhcp",
        mode: &["deny", "service:Dhcp"],
        rule: "access:Dhcp",
        sid: DHCP_SID,
        decided_by: "deny_ace",
        ace_index: Some(8),
        right: "CreateSubKey",
    },
    Case {
        name: "win10: the service SID's ACE on the interfaces reduced to read",
        fixture: "win10-dirty-SYSTEM",
        merge: Some("rdp-cases/prelude-win10.reg"),
        key: r"ControlSet001\Services\Tcpip\Parameters\Interfaces",
        mode: &["read", "service:Dhcp"],
        rule: "access:Dhcp",
        sid: DHCP_SID,
        decided_by: "no_ace_grants",
        ace_index: None,
        right: "SetValue",
    },
    Case {
        name: "win8.1: the service SID's ACE on Dhcp\\Parameters given the SID of NT SERVICE\\Dnscache",
        fixture: "win81-dirty-nologs-SYSTEM",
        merge: Some("access-cases/no-change.reg"),
        key: r"ControlSet001\Services\Dhcp\Parameters",
        mode: &["sid", "service:Dhcp", "service:Dnscache"],
        rule: "access:Dhcp",
        sid: DHCP_SID,
        decided_by: "no_ace_grants",
        ace_index: None,
        right: "CreateSubKey",
    },
    Case {
        name: "win10: the Users ACE on TermService\\Parameters turned into a deny",
        fixture: "win10-dirty-SYSTEM",
        merge: Some("rdp-cases/prelude-win10.reg"),
        key: r"ControlSet001\Services\TermService\Parameters",
        mode: &["deny", "S-1-5-32-545"],
        rule: "access:TermService",
        sid: "S-1-5-32-545",
        decided_by: "deny_ace",
        ace_index: Some(0),
        right: "QueryValue",
    },
    Case {
        name: "win7: the service SID's ACE on nsi\\Parameters turned into a deny",
        fixture: "win7-SYSTEM",
        merge: None,
        key: r"ControlSet001\services\nsi\Parameters",
        mode: &["deny", "service:nsi"],
        rule: "access:nsi",
        sid: "S-1-5-80-2310782386-4237065203-3688974353-390202159-3511571085",
        decided_by: "deny_ace",
        ace_index: Some(4),
        right: "CreateSubKey",
    },
    Case {
        name: "win10: the service SID's ACE on BFE's Policy reduced to read (a write-restricted token)",
        fixture: "win10-dirty-SYSTEM",
        merge: Some("rdp-cases/prelude-win10.reg"),
        key: r"ControlSet001\Services\BFE\Parameters\Policy",
        mode: &["read", "service:BFE"],
        rule: "access:BFE",
        sid: "S-1-5-80-1383147646-27650227-2710666058-1662982300-1023958487",
        decided_by: "no_ace_grants",
        ace_index: None,
        right: "SetValue",
    },
    Case {
        name: "win8.1: the Windows Firewall's ACE on FirewallPolicy given the SID of NT SERVICE\\Dnscache",
        fixture: "win81-dirty-nologs-SYSTEM",
        merge: Some("access-cases/no-change.reg"),
        key: r"ControlSet001\Services\SharedAccess\Parameters\FirewallPolicy",
        mode: &["sid", "service:MpsSvc", "service:Dnscache"],
        rule: "access:MpsSvc",
        sid: "S-1-5-80-3088073201-1464728630-1879813800-1107566885-823218052",
        decided_by: "no_ace_grants",
        ace_index: None,
        right: "SetValue",
    },
];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn winrescue(state: &Path) -> Command {
    let mut c = Command::cargo_bin("winrescue").unwrap();
    c.env("WINRESCUE_STATE_DIR", state);
    c.env_remove("WINRESCUE_JOURNAL_DIR");
    c
}

fn run(cmd: &mut Std) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (reglookup, hivex and python3 are required)"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// reglookup's DACL column for `key` (the key's own line).
fn reglookup_dacl(hive: &Path, key: &str) -> String {
    let path = format!("/{}", key.replace('\\', "/"));
    let out = run(Std::new("reglookup")
        .args(["-s", "-t", "KEY", "-p", &path])
        .arg(hive));
    let line = out
        .lines()
        .find(|l| {
            l.split(',')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(&path))
        })
        .unwrap_or_else(|| panic!("reglookup shows no {path}"));
    line.split(',').nth(7).unwrap().to_string()
}

fn sha256(p: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

fn access_finding<'a>(report: &'a serde_json::Value, rule: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no finding {rule}"))
}

/// `diagnose --json` on `hive`, which must find `rule` broken with error 5: the report.
fn diagnose_denied(state: &Path, hive: &Path, rule: &str, case: &str) -> serde_json::Value {
    let o = winrescue(state)
        .args(["diagnose", "--json"])
        .arg(hive)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{case}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = access_finding(&report, rule);
    assert_eq!(f["status"], "broken", "{case}: {f}");
    assert_eq!(f["severity"], "blocks_rdp", "{case}");
    let title = f["title"].as_str().unwrap();
    assert!(title.contains("error 5 ERROR_ACCESS_DENIED"), "{title}");
    report
}

/// Undoes the write `repaired` (a `repair --apply --json` report) names; `hive` must be
/// `broken` again, bit for bit.
fn undo_bit_for_bit(
    state: &Path,
    repaired: &serde_json::Value,
    hive: &Path,
    broken: &[u8],
    case: &str,
) {
    let journal = repaired["outcome"]["written"]["undo_journal"]
        .as_str()
        .unwrap();
    winrescue(state).arg("undo").arg(journal).assert().success();
    assert_eq!(sha256(hive), broken, "{case}: undo is not bit for bit");
}

fn run_case(c: &Case) {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let hive = tmp.path().join("SYSTEM");
    std::fs::copy(fixtures::path(&format!("hives/{}", c.fixture)), &hive).unwrap();
    if let Some(reg) = c.merge {
        run(Std::new("hivexregedit")
            .arg("--merge")
            .arg(&hive)
            .arg(tests_dir().join(reg)));
    }
    let healthy_dacl = reglookup_dacl(&hive, c.key);
    run(Std::new("python3")
        .arg(tests_dir().join("access-cases/break-sk.py"))
        .arg(&hive)
        .arg(c.key)
        .args(c.mode));
    let broken_dacl = reglookup_dacl(&hive, c.key);
    assert_ne!(
        broken_dacl, healthy_dacl,
        "{}: reglookup sees no change",
        c.name
    );
    let broken = sha256(&hive);

    let report = diagnose_denied(&state, &hive, c.rule, c.name);
    let f = access_finding(&report, c.rule);
    let denial = f["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["key"].as_str().unwrap().eq_ignore_ascii_case(c.key)
                && d["rights"].as_array().unwrap().iter().any(|r| r == c.right)
        })
        .unwrap_or_else(|| panic!("{}: no denial of {} on {}: {f}", c.name, c.right, c.key));
    assert_eq!(denial["sid"], c.sid, "{}", c.name);
    assert_eq!(denial["decided_by"], c.decided_by, "{}", c.name);
    assert_eq!(denial["ace_index"].as_u64(), c.ace_index, "{}", c.name);
    if c.ace_index.is_some() {
        // The deciding ACE is the patched one, a deny.
        assert!(
            denial["ace"].as_str().unwrap().starts_with("(D;"),
            "{denial}"
        );
    }
    assert!(denial["healthy_ace"].as_str().unwrap().starts_with("(A;"));
    // The text report says it too.
    let text = winrescue(&state)
        .arg("diagnose")
        .arg(&hive)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("error 5") && text.contains(c.sid), "{text}");

    let o = winrescue(&state)
        .args(["repair", "--apply", "--json", "--only", c.rule])
        .arg(&hive)
        .output()
        .unwrap();
    assert!(
        o.status.success() || o.status.code() == Some(1),
        "{}: repair: {}",
        c.name,
        String::from_utf8_lossy(&o.stderr)
    );
    let repaired: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(repaired["applied"], true);
    assert_eq!(
        access_finding(&repaired["after"], c.rule)["status"],
        "healthy"
    );
    // reglookup shows the DACL the key had before the break; hivex reads the hive; our checker
    // finds nothing wrong.
    assert_eq!(reglookup_dacl(&hive, c.key), healthy_dacl, "{}", c.name);
    run(Std::new("hivexregedit")
        .arg("--export")
        .arg(&hive)
        .arg(format!("\\{}", c.key)));
    let check = winrescue(&state)
        .args(["hive", "check"])
        .arg(&hive)
        .output()
        .unwrap();
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(check.contains(" 0 errors"), "{check}");
    // A second repair has nothing left to do for this rule.
    let again = winrescue(&state)
        .args(["diagnose", "--json", "--rule", c.rule])
        .arg(&hive)
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(access_finding(&again, c.rule)["status"], "healthy");

    undo_bit_for_bit(&state, &repaired, &hive, &broken, c.name);
}

#[test]
fn broken_permissions_are_found_repaired_and_undone() {
    for c in CASES {
        run_case(c);
    }
}

#[test]
fn the_runbook_of_error_5_starts_from_the_denial_on_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let hive = tmp.path().join("SYSTEM");
    std::fs::copy(fixtures::path("hives/win7-SYSTEM"), &hive).unwrap();
    run(Std::new("python3")
        .arg(tests_dir().join("access-cases/break-sk.py"))
        .arg(&hive)
        .arg(r"ControlSet001\services\Dhcp")
        .args(["deny", "service:Dhcp"]));
    let o = winrescue(tmp.path())
        .arg("runbook")
        .arg(&hive)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("error 5 ERROR_ACCESS_DENIED"), "{text}");
    // The key and the ACE found on the disk come first, with the command that gives the DACL
    // back; the live trace stays for what the disk cannot show.
    let found = text.find(r"ControlSet001\services\Dhcp").unwrap();
    let fix = text.find("SetSecurityDescriptorSddlForm").unwrap();
    let trace = text.find("Procmon").unwrap();
    assert!(found < trace && fix < trace, "{text}");
    assert!(text.contains(DHCP_SID), "{text}");
}

/// The disk image `make-files-image.sh` builds from the Windows 7 hive: an NTFS volume whose
/// `svchost.exe` and `dhcpcore.dll` carry descriptors written by ntfs-3g into `$Secure`.
fn files_image(dir: &Path, mode: &str) -> PathBuf {
    let out = dir.join(format!("{mode}.raw"));
    run(Std::new("bash")
        .arg(tests_dir().join("access-cases/make-files-image.sh"))
        .arg(fixtures::path("hives/win7-SYSTEM"))
        .arg(&out)
        .arg(mode));
    out
}

#[test]
fn file_permissions_are_read_from_secure_and_a_denial_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let healthy = files_image(tmp.path(), "healthy");
    let o = winrescue(tmp.path())
        .args(["diagnose", "--json", "--rule", "access:Dhcp"])
        .arg(&healthy)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["files_checked"], true);
    assert_eq!(access_finding(&report, "access:Dhcp")["status"], "healthy");

    for (mode, decided_by, ace, fix) in [
        (
            "deny-local-service",
            "deny_ace",
            Some("(D;;0x1200a9;;;LS)"),
            "/remove:d *S-1-5-19",
        ),
        ("no-users", "no_ace_grants", None, "/grant *S-1-5-19:(RX)"),
    ] {
        let image = files_image(tmp.path(), mode);
        let before = sha256(&image);
        let o = winrescue(tmp.path())
            .args(["diagnose", "--json"])
            .arg(&image)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{mode}");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let f = access_finding(&report, "access:Dhcp");
        assert_eq!(f["status"], "broken", "{mode}");
        assert!(f["title"].as_str().unwrap().contains("error 5"), "{mode}");
        let d = f["access"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["object"] == "file")
            .unwrap_or_else(|| panic!("{mode}: no file denial: {f}"));
        assert!(d["key"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(r"Windows\System32\dhcpcore.dll"));
        assert_eq!(d["sid"], "S-1-5-19", "{mode}");
        assert_eq!(d["decided_by"], decided_by, "{mode}");
        assert_eq!(d["ace"].as_str(), ace, "{mode}");
        assert!(d["rights"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "Execute"));
        // NTFS descriptors are left to icacls: the finding says so and plans no change.
        assert!(f["changes"].as_array().unwrap().is_empty(), "{mode}");
        assert!(f["unresolved"][0]
            .as_str()
            .unwrap()
            .contains("not written by winrescue"));
        assert!(f["runbook"]["cmd"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains(fix)));
        // Diagnosing wrote nothing.
        assert_eq!(sha256(&image), before);
    }
}

/// A case where the token itself is the cause: the service's values changed by hivex's
/// `hivexregedit --merge` (not by winrescue), every DACL left as Windows wrote it.
struct TokenCase {
    name: &'static str,
    fixture: &'static str,
    /// Merged in order with hivexregedit (the Windows 10 prelude first, where RDP is off).
    merges: &'static [&'static str],
    rule: &'static str,
    service_key: &'static str,
    /// A key whose DACL no longer grants the token what the service needs.
    key: &'static str,
    /// The service SID whose ACE no longer matches.
    sid: &'static str,
    /// Each changed value: its name, its data now, its healthy data as hivexget prints it.
    values: &'static [(&'static str, &'static str, &'static str)],
}

const TOKEN_CASES: &[TokenCase] = &[
    TokenCase {
        name: "win7: the DHCP Client's ServiceSidType 0",
        fixture: "win7-SYSTEM",
        merges: &["access-cases/token-win7-dhcp-sidtype-0.reg"],
        rule: "access:Dhcp",
        service_key: r"ControlSet001\services\Dhcp",
        key: r"ControlSet001\services\Dhcp",
        sid: DHCP_SID,
        values: &[("ServiceSidType", "0", "1")],
    },
    TokenCase {
        name: "win8.1: the Network Store Interface Service's ServiceSidType 0",
        fixture: "win81-dirty-nologs-SYSTEM",
        merges: &["access-cases/token-win81-nsi-sidtype-0.reg"],
        rule: "access:nsi",
        service_key: r"ControlSet001\Services\nsi",
        key: r"ControlSet001\Services\nsi\Parameters",
        sid: "S-1-5-80-2310782386-4237065203-3688974353-390202159-3511571085",
        values: &[("ServiceSidType", "0", "1")],
    },
    TokenCase {
        name: "win10: Remote Desktop Services as LocalService without its service SID",
        fixture: "win10-dirty-SYSTEM",
        merges: &[
            "rdp-cases/prelude-win10.reg",
            "access-cases/token-win10-termservice-account.reg",
        ],
        rule: "access:TermService",
        service_key: r"ControlSet001\Services\TermService",
        key: r"ControlSet001\Control\Terminal Server\RCM",
        sid: "S-1-5-80-446051430-1559341753-4161941529-1950928533-810483104",
        values: &[
            (
                "ObjectName",
                "\"NT AUTHORITY\\LocalService\"",
                "NT Authority\\NetworkService",
            ),
            ("ServiceSidType", "0", "1"),
        ],
    },
    TokenCase {
        name: "win10: the Base Filtering Engine's ServiceSidType 0",
        fixture: "win10-dirty-SYSTEM",
        merges: &[
            "rdp-cases/prelude-win10.reg",
            "access-cases/token-win10-bfe-sidtype-0.reg",
        ],
        rule: "access:BFE",
        service_key: r"ControlSet001\Services\BFE",
        key: r"ControlSet001\Services\BFE\Parameters\Policy",
        sid: "S-1-5-80-1383147646-27650227-2710666058-1662982300-1023958487",
        values: &[("ServiceSidType", "0", "3")],
    },
];

fn hivexget(hive: &Path, key: &str, value: &str) -> String {
    run(Std::new("hivexget")
        .arg(hive)
        .arg(format!("\\{key}"))
        .arg(value))
    .trim_end()
    .to_string()
}

fn run_token_case(c: &TokenCase) {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let hive = tmp.path().join("SYSTEM");
    std::fs::copy(fixtures::path(&format!("hives/{}", c.fixture)), &hive).unwrap();
    let dacl_before = reglookup_dacl(&hive, c.key);
    for reg in c.merges {
        run(Std::new("hivexregedit")
            .arg("--merge")
            .arg(&hive)
            .arg(tests_dir().join(reg)));
    }
    // hivex changed values only: the key's DACL is the one Windows wrote.
    assert_eq!(reglookup_dacl(&hive, c.key), dacl_before, "{}", c.name);
    let broken = sha256(&hive);

    let report = diagnose_denied(&state, &hive, c.rule, c.name);
    let f = access_finding(&report, c.rule);
    let denial = f["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"].as_str().unwrap().eq_ignore_ascii_case(c.key))
        .unwrap_or_else(|| panic!("{}: no denial on {}: {f}", c.name, c.key));
    // The finding names the ACE of the service SID that no longer matches, and every value
    // with its data now and its healthy data.
    assert_eq!(denial["sid"], c.sid, "{}: {denial}", c.name);
    assert!(
        denial["healthy_ace"].as_str().unwrap().contains(c.sid),
        "{denial}"
    );
    let token = denial["token"].as_array().unwrap();
    assert_eq!(token.len(), c.values.len(), "{}: {denial}", c.name);
    for (value, now, healthy) in c.values {
        let t = token
            .iter()
            .find(|t| t["value"] == *value)
            .unwrap_or_else(|| panic!("{}: {value} not named: {denial}", c.name));
        assert_eq!(t["current"], *now, "{}", c.name);
        assert!(
            t["healthy"]
                .as_str()
                .unwrap()
                .trim_matches('"')
                .eq_ignore_ascii_case(healthy),
            "{}: {t}",
            c.name
        );
    }
    let sentence = f["found"].as_str().unwrap();
    assert!(
        sentence.contains("no longer matches the token") && sentence.contains(c.sid),
        "{sentence}"
    );
    // Only values are planned: no DACL is touched.
    let changes = f["changes"].as_array().unwrap();
    assert_eq!(changes.len(), c.values.len(), "{}: {changes:?}", c.name);
    assert!(changes.iter().all(|ch| ch["op"] == "set"), "{changes:?}");

    let o = winrescue(&state)
        .args(["repair", "--apply", "--json", "--only", c.rule])
        .arg(&hive)
        .output()
        .unwrap();
    let repaired: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}: {}", c.name, String::from_utf8_lossy(&o.stderr)));
    assert_eq!(repaired["applied"], true, "{}", c.name);
    assert_eq!(
        access_finding(&repaired["after"], c.rule)["status"],
        "healthy",
        "{}",
        c.name
    );
    // hivex reads the healthy values back; the DACL is still Windows'; our checker agrees.
    for (value, _, healthy) in c.values {
        assert!(
            hivexget(&hive, c.service_key, value).eq_ignore_ascii_case(healthy),
            "{}: {value}",
            c.name
        );
    }
    assert_eq!(reglookup_dacl(&hive, c.key), dacl_before, "{}", c.name);
    let check = winrescue(&state)
        .args(["hive", "check"])
        .arg(&hive)
        .output()
        .unwrap();
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(check.contains(" 0 errors"), "{check}");

    undo_bit_for_bit(&state, &repaired, &hive, &broken, c.name);
}

#[test]
fn a_token_without_its_service_sid_is_found_and_its_values_restored() {
    for c in TOKEN_CASES {
        run_token_case(c);
    }
}
