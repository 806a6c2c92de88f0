//! `diagnose`, `repair` and `undo` on hives broken by an independent tool (hivex's
//! hivexregedit, see testdata/hives/broken/README.md), checked back with hivexget.

mod common;
use common::dhcp;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn copy(dir: &Path, fixture: &str) -> PathBuf {
    let p = dir.join("SYSTEM");
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

fn hivexget(hive: &Path, key: &str, value: &str) -> Option<String> {
    match Std::new("hivexget").arg(hive).arg(key).arg(value).output() {
        Ok(o) => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "hivexget is required in CI"
            );
            None
        }
    }
}

/// What hivex must read after the repair: key, value, data ("" = must not mention Dhcp).
type After = (&'static str, &'static str, &'static str);

/// (broken hive, code diagnose must name, words that must appear, what hivex reads after)
const CASES: &[(&str, u32, &[&str], After)] = &[
    (
        "win7-dhcp-disabled",
        1058,
        &["ERROR_SERVICE_DISABLED", "Start=4"],
        (r"\ControlSet001\services\Dhcp", "Start", "2"),
    ),
    (
        "win7-afd-disabled",
        1068,
        &["ERROR_SERVICE_DEPENDENCY_FAIL", "AFD"],
        (r"\ControlSet001\services\AFD", "Start", "1"),
    ),
    (
        "win7-cycle-nsi-dhcp",
        1059,
        &["ERROR_CIRCULAR_DEPENDENCY", "NSI"],
        (r"\ControlSet001\services\nsi", "DependOnService", ""),
    ),
    (
        "win7-current-broken",
        1058,
        &["ControlSet002", "Current"],
        (r"\ControlSet002\services\Dhcp", "Start", "2"),
    ),
    (
        "win7-group-member-account",
        1079,
        &["wscsvc", "LocalSystem"],
        (
            r"\ControlSet001\services\wscsvc",
            "ObjectName",
            r"NT AUTHORITY\LocalService",
        ),
    ),
];

#[test]
fn each_breakage_is_named_repaired_verified_and_undone() {
    for &(case, code, words, (key, value, want)) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let hive = copy(dir.path(), &format!("hives/broken/{case}"));
        let original = std::fs::read(&hive).unwrap();
        let out = winrescue()
            .arg("diagnose")
            .arg(&hive)
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains(&format!("will not start: error {code}")),
            "{case}: {text}"
        );
        for w in words {
            assert!(text.contains(w), "{case}: {w:?} missing in\n{text}");
        }
        // JSON carries the same verdict.
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
        assert_eq!(dhcp(&j)["code"], code, "{case}");
        assert_eq!(j["verdict"], "blocked");
        // Dry run: nothing written.
        winrescue()
            .arg("repair")
            .arg(&hive)
            .assert()
            .success()
            .stdout(predicate::str::contains("dry run: nothing was written"));
        assert!(
            std::fs::read(&hive).unwrap() == original,
            "{case}: the dry run wrote"
        );
        // Apply.
        let out = winrescue()
            .arg("repair")
            .arg("--apply")
            .arg(&hive)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("verified: read back from the disk, healthy now: service:Dhcp"),
            "{case}: {text}"
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
        if let Some(got) = hivexget(&hive, key, value) {
            if want.is_empty() {
                assert!(!got.to_ascii_lowercase().contains("dhcp"), "{case}: {got}");
            } else {
                assert!(
                    got.eq_ignore_ascii_case(want),
                    "{case}: hivexget {key} {value} = {got:?}, want {want:?}"
                );
            }
        }
        assert!(regf::check::check(&std::fs::read(&hive).unwrap()).is_sound());
        // A second repair has nothing to do.
        winrescue()
            .arg("repair")
            .arg("--apply")
            .arg(&hive)
            .assert()
            .success()
            .stdout(predicate::str::contains("nothing to repair"));
        // Undo gives the broken file back, bit for bit.
        winrescue().arg("undo").arg(&journal).assert().success();
        assert!(
            std::fs::read(&hive).unwrap() == original,
            "{case}: undo is not bit for bit"
        );
        // A second undo of the same journal changes nothing and says so.
        winrescue()
            .arg("undo")
            .arg(&journal)
            .assert()
            .success()
            .stdout(predicate::str::contains("already undone"));
        assert!(std::fs::read(&hive).unwrap() == original);
    }
}

#[test]
fn healthy_hives_raise_no_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win7-SYSTEM");
    // This Windows 7 machine let RDP through its firewall on the Domain and Private profiles
    // only: on Azure (Public unless joined to a domain) that may block RDP, and it is the one
    // finding; the DHCP Client's rule finds nothing.
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(
            predicate::str::starts_with(
                "verdict:  RDP may be blocked: the firewall does not let TCP 3389 in on the Public profile\n",
            )
            .and(predicate::str::contains("BROKEN").count(1)),
        );
    winrescue()
        .args(["diagnose", "--rule", "service:Dhcp"])
        .arg(&hive)
        .assert()
        .success()
        .stdout(predicate::str::contains("verdict:  healthy"));
    // The dirty Windows 10 hive, after its logs are replayed.
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win10-dirty-SYSTEM");
    std::fs::copy(
        fixtures::path("hives/win10-dirty-SYSTEM.LOG1"),
        dir.path().join("SYSTEM.LOG1"),
    )
    .unwrap();
    std::fs::copy(
        fixtures::path("hives/win10-dirty-SYSTEM.LOG2"),
        dir.path().join("SYSTEM.LOG2"),
    )
    .unwrap();
    // A Windows 10 desktop ships with RDP turned off: that is the one thing the report blocks
    // on; the DHCP Client's rule alone finds nothing.
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(
            predicate::str::starts_with(
                "verdict:  RDP is blocked: RDP is turned off (fDenyTSConnections=1) (and 1 more)\n",
            )
            .and(predicate::str::contains(
                "dirty, replayed from its logs (24 log entries, sequence 2107..2130)",
            ))
            .and(predicate::str::contains(
                "the firewall's Remote Desktop rules are off, as Windows leaves them while RDP is turned off (TCP 3389 blocked: Domain, Private, Public)",
            ))
            .and(predicate::str::contains("BROKEN").count(2)),
        );
    winrescue()
        .args(["diagnose", "--rule", "service:Dhcp"])
        .arg(&hive)
        .assert()
        .success()
        .stdout(predicate::str::contains("verdict:  healthy"));
}

#[test]
fn disk_image_diagnose_reads_the_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    std::fs::copy(fixtures::path("images/gen2-gpt-win7-system.raw"), &img).unwrap();
    winrescue()
        .args(["diagnose", "--rule", "service:Dhcp"])
        .arg(&img)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("partition 3")
                .and(predicate::str::contains("verdict:  healthy")),
        );
    // The DHCP Client's evidence is read even when it is healthy: the log agrees.
    let out = winrescue()
        .args(["diagnose", "--json", "--rule", "service:Dhcp"])
        .arg(&img)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let e = &dhcp(&j)["evidence"];
    assert_eq!(e["events"].as_array().unwrap().len(), 15, "{e}");
    assert_eq!(e["agreement"], "agree");
    assert_eq!(j["schema_version"], 1);
}

#[test]
fn refusals_and_bad_input_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // Dirty without logs: diagnose works (and says so), repair refuses to write.
    let hive = copy(dir.path(), "hives/win81-dirty-nologs-SYSTEM");
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .stdout(predicate::str::contains("logs missing"));
    winrescue()
        .arg("diagnose")
        .arg(dir.path().join("nope"))
        .assert()
        .code(3);
    winrescue()
        .arg("undo")
        .arg(fixtures::testdata_dir().join("SOURCES.md"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not a winrescue journal"));
}

#[test]
fn events_reads_the_log_out_of_a_disk_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    std::fs::copy(fixtures::path("images/gen2-gpt-win7-system.raw"), &img).unwrap();
    let out = winrescue()
        .arg("events")
        .arg(&img)
        .args(["--service", "Dhcp", "--id", "7036", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        j["events"].as_array().unwrap().len(),
        15,
        "the 15 DHCP Client 7036 events of the srv2008r2 log"
    );
}

/// The README's first command: the shipped sample, compressed as it is in the repository.
#[test]
fn readme_sample_diagnoses_the_disabled_dhcp_client() {
    let sample = fixtures::testdata_dir().join("images/gen2-gpt-win7-dhcp-disabled.raw.xz");
    winrescue()
        .arg("diagnose")
        .arg(&sample)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("error 1058 ERROR_SERVICE_DISABLED")
                .and(predicate::str::contains("ControlSet001 [Current, Default]"))
                .and(predicate::str::contains("xz -dk"))
                // 1058 logs no failure: the log is consistent with it (issue 14).
                .and(predicate::str::contains(
                    "consistent: the configuration predicts 1058",
                )),
        );
    // Writing into a compressed image is refused.
    winrescue()
        .arg("repair")
        .arg("--apply")
        .arg(&sample)
        .assert()
        .code(4);
}

/// The same breakage inside a disk image: repaired in place, ntfs-3g still happy, undone.
#[test]
fn disk_image_repair_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    std::fs::copy(
        fixtures::path("images/gen2-gpt-win7-afd-disabled.raw"),
        &img,
    )
    .unwrap();
    let original = std::fs::read(&img).unwrap();
    winrescue()
        .arg("diagnose")
        .arg(&img)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("1068"));
    let out = winrescue()
        .arg("repair")
        .arg("--apply")
        .arg(&img)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("undo:    winrescue undo "))
        .unwrap()
        .to_string();
    winrescue().arg("diagnose").arg(&img).assert().success();
    // ntfs-3g's view of the volume (the Windows partition starts at sector 102400).
    let vol = dir.path().join("vol");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&vol, &bytes[102400 * 512..(102400 + 92160) * 512]).unwrap();
    match Std::new("ntfsfix").arg("-n").arg(&vol).output() {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout)),
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "ntfsfix is required in CI"
        ),
    }
    winrescue().arg("undo").arg(&journal).assert().success();
    assert!(std::fs::read(&img).unwrap() == original);
}

/// Windows boots `Select\Default`; `Current` is the set the last session ran.
#[test]
fn the_verdict_follows_the_control_set_windows_boots_next() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/broken/win7-dhcp-disabled"); // ControlSet001 broken, Default=Current=1
    let bytes = std::fs::read(&hive).unwrap();
    let mut ed = regf::edit::Editor::new(bytes, 0).unwrap();
    ed.set_value(
        "Select",
        "Current",
        regf::ValueType::DWORD,
        &2u32.to_le_bytes(),
    )
    .unwrap();
    std::fs::write(&hive, ed.finish().unwrap().bytes).unwrap();
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("error 1058").and(predicate::str::contains(
                "boots:    ControlSet001 (Select\\Default)",
            )),
        );
}

/// An undo journal only puts bytes back where they are still what it wrote.
#[test]
fn undo_refuses_after_a_later_write_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/broken/win7-dhcp-disabled");
    let out = winrescue()
        .arg("repair")
        .arg("--apply")
        .arg(&hive)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("undo:    winrescue undo "))
        .unwrap()
        .to_string();
    // A later write touches the same pages (the base block at least).
    winrescue()
        .arg("reg")
        .arg(&hive)
        .args([
            "add",
            r"HKLM\SYSTEM\ControlSet001\services\Tcpip",
            "/v",
            "Zed",
            "/t",
            "REG_DWORD",
            "/d",
            "1",
            "/f",
        ])
        .assert()
        .success();
    let before = std::fs::read(&hive).unwrap();
    winrescue()
        .arg("undo")
        .arg(&journal)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("no longer what it wrote"))
        // The newer journal that must be undone first is named.
        .stderr(predicate::str::contains("undo those first"));
    assert!(
        std::fs::read(&hive).unwrap() == before,
        "a refused undo changed the hive"
    );
}

/// An interrupted write is reported the next time the disk is read, and blocks writes.
#[test]
fn an_interrupted_write_is_detected_when_the_disk_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/broken/win7-dhcp-disabled");
    // What a crash leaves: the pending journal beside the target.
    let edit = rescue::edit::EditOptions {
        crash: rescue::journal::CrashAfter(Some(0)),
        ..Default::default()
    };
    rescue::edit::edit_system_hive(&hive, edit, |ed| {
        ed.set_value(
            r"ControlSet001\services\Dhcp",
            "Start",
            regf::ValueType::DWORD,
            &2u32.to_le_bytes(),
        )?;
        Ok(true)
    })
    .unwrap_err();
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "an earlier write to this target was interrupted",
        ));
    winrescue()
        .arg("repair")
        .arg("--apply")
        .arg(&hive)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("was interrupted"));
    let pending = rescue::journal::pending_path(&hive);
    winrescue()
        .arg("undo")
        .arg("--redo")
        .arg(&pending)
        .assert()
        .success();
    winrescue()
        .args(["diagnose", "--rule", "service:Dhcp"])
        .arg(&hive)
        .assert()
        .success();
}

#[test]
fn repair_of_a_dirty_hive_says_which_pages_only_carry_its_replayed_logs() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win10-dirty-SYSTEM");
    for log in ["LOG1", "LOG2"] {
        std::fs::copy(
            fixtures::path(&format!("hives/win10-dirty-SYSTEM.{log}")),
            dir.path().join(format!("SYSTEM.{log}")),
        )
        .unwrap();
    }
    winrescue()
        .args(["repair", "--apply", "--own-process"])
        .arg(&hive)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "only carry what the hive's transaction logs held",
        ));
}
