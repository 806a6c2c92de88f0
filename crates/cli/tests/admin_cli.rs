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

#[test]
fn slash_question_mark_prints_reg_exe_usage_for_each_operation() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    for (args, usage) in [
        (&["/?"][..], "REG Operation [Parameter List]"),
        (&["add", "/?"], "REG ADD KeyName"),
        (&["query", "/?"], "REG QUERY KeyName"),
        (&["delete", "/?"], "REG DELETE KeyName"),
        (&["export", "/?"], "REG EXPORT KeyName FileName"),
        (&["import", "/?"], "REG IMPORT FileName"),
        (&["load", "/?"], "REG LOAD KeyName FileName"),
        (&["unload", "/?"], "REG UNLOAD KeyName"),
    ] {
        winrescue(dir.path())
            .arg("reg")
            .arg(&image)
            .args(args)
            .assert()
            .success()
            .stdout(predicate::str::contains(usage));
    }
}

#[test]
fn dry_run_is_taken_before_or_after_the_reg_operation() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(
        dir.path(),
        "images/gen2-gpt-win7-dhcp-disabled.raw",
        "disk.raw",
    );
    let before = std::fs::read(&image).unwrap();
    let add = [
        "add",
        DHCP,
        "/v",
        "Start",
        "/t",
        "REG_DWORD",
        "/d",
        "2",
        "/f",
    ];
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .arg("--dry-run")
        .args(add)
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run"));
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args(add)
        .arg("--dry-run")
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run"));
    assert!(std::fs::read(&image).unwrap() == before);
    // A flag given as data stays data.
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args([
            "add",
            r"HKLM\SYSTEM\WinrescueTest",
            "/v",
            "x",
            "/d",
            "--dry-run",
            "--dry-run",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""x" = REG_SZ --dry-run"#));
}

#[test]
fn backslashes_eaten_by_the_shell_get_a_single_quote_hint() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args(["query", "HKLMSYSTEMCurrentControlSetServicesDhcp"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("single quotes")
                .and(predicate::str::starts_with("ERROR: Invalid syntax.")),
        );
    winrescue(dir.path())
        .arg("sc")
        .arg(&image)
        .args(["config", "DHCP", "obj=", "NT", "AuthorityLocalService"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "obj= 'NT Authority\\LocalService'",
        ));
}

#[test]
fn reg_load_and_unload_typed_on_their_own_are_no_ops_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    let before = std::fs::read(&image).unwrap();
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args([
            "load",
            r"HKLM\BROKENSYSTEM",
            r"f:\windows\system32\config\SYSTEM",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("note: nothing to load"));
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args(["unload", r"HKLM\BROKENSYSTEM"])
        .assert()
        .success()
        .stderr(predicate::str::contains("note: nothing to unload"));
    assert!(std::fs::read(&image).unwrap() == before);
}

#[test]
fn a_script_saved_with_a_utf8_bom_runs() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(
        dir.path(),
        "images/gen2-gpt-win7-dhcp-disabled.raw",
        "disk.raw",
    );
    let script = dir.path().join("fix.cmd");
    std::fs::write(
        &script,
        "\u{feff}reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 2 /f\r\nreg unload HKLM\\B\r\n",
    )
    .unwrap();
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .arg("--script")
        .arg(&script)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "The operation completed successfully.",
        ));
}

#[test]
fn sc_query_without_a_service_prints_the_usage_of_query() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    winrescue(dir.path())
        .arg("sc")
        .arg(&image)
        .arg("query")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("sc <target> query [service name]")
                .and(predicate::str::contains("config [service name]").not()),
        );
}

#[test]
fn reg_exe_worded_errors_are_not_prefixed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    winrescue(dir.path())
        .arg("reg")
        .arg(&image)
        .args(["query", r"HKLM\SYSTEM\NoSuchKey"])
        .assert()
        .code(3)
        .stderr(predicate::str::starts_with(
            "ERROR: The system was unable to find the specified registry key or value",
        ));
}

#[test]
fn missing_empty_text_and_dev_null_targets_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.raw");
    let empty = dir.path().join("empty.raw");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello world\n").unwrap();
    let once = |s: &str| {
        let needle = "No such file or directory";
        s.matches(needle).count() == 1
    };
    for cmd in [
        &["diagnose"][..],
        &["repair"],
        &["sc", "TARGET", "query", "DHCP"],
    ] {
        let run = |target: &Path| {
            let mut c = winrescue(dir.path());
            c.arg(cmd[0]);
            if cmd.len() > 1 {
                c.arg(target).args(&cmd[2..]);
            } else {
                c.arg(target);
            }
            c.assert().code(3)
        };
        let out = run(&missing);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(once(&err), "{err}");
        run(&empty).stderr(
            predicate::str::contains("0 bytes, too short")
                .and(predicate::str::contains("not a disk image or a hive")),
        );
        run(&text).stderr(predicate::str::contains(
            "a text file of 12 bytes: not a disk image or a hive",
        ));
        run(Path::new("/dev/null")).stderr(predicate::str::contains("0 bytes, too short"));
    }
}

#[test]
fn hive_ls_and_get_resolve_current_control_set_and_hint_at_a_leading_hklm() {
    let dir = tempfile::tempdir().unwrap();
    let h = fixtures::path("hives/win7-SYSTEM");
    winrescue(dir.path())
        .args(["hive", "get"])
        .arg(&h)
        .args([r"CurrentControlSet\Services\Dhcp", "Start"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Start    REG_DWORD    0x2"));
    winrescue(dir.path())
        .args(["hive", "ls"])
        .arg(&h)
        .arg(r"currentcontrolset\services")
        .assert()
        .success()
        .stdout(predicate::str::contains(r"Dhcp\"));
    winrescue(dir.path())
        .args(["hive", "ls"])
        .arg(&h)
        .arg(r"HKLM\SYSTEM\CurrentControlSet\Services\Dhcp")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            r#"try "CurrentControlSet\\Services\\Dhcp""#,
        ));
}

/// Every subcommand's `--help`, leaves only.
const HELPS: &[&[&str]] = &[
    &["diagnose"],
    &["repair"],
    &["undo"],
    &["hive", "info"],
    &["hive", "ls"],
    &["hive", "get"],
    &["hive", "export"],
    &["hive", "check"],
    &["hive", "replay"],
    &["hive", "acl"],
    &["reg"],
    &["sc"],
    &["runbook"],
    &["events"],
];

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = winrescue(dir.path())
        .args(args)
        .arg("--help")
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn every_help_ends_with_examples_and_no_option_has_empty_help() {
    for args in HELPS {
        let text = help(args);
        let tail = text.trim_end().rsplit("Examples:").next().unwrap();
        let examples = tail
            .lines()
            .filter(|l| l.trim_start().starts_with("winrescue "))
            .count();
        assert!(
            text.contains("Examples:")
                && (2..=3).contains(&examples)
                && tail.lines().filter(|l| !l.trim().is_empty()).count() == examples,
            "{args:?}: the help does not end with 2 or 3 examples:\n{text}"
        );
        // An argument or option line with nothing after its name.
        for line in text.lines() {
            let t = line.trim_start();
            let is_item = (t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
                && line.starts_with("  ");
            if is_item {
                let words: Vec<&str> = t.split("  ").filter(|w| !w.trim().is_empty()).collect();
                assert!(words.len() >= 2, "{args:?}: no help for {t:?}");
            }
        }
    }
    assert!(help(&["events"]).contains("disk image"));
}

#[test]
fn top_level_help_gives_exit_codes_and_where_journals_go() {
    let text = help(&[]);
    for needle in [
        "Exit codes:",
        "4  a write was refused",
        "5  a write or undo was interrupted",
        "WINRESCUE_JOURNAL_DIR",
        "/var/lib/winrescue",
        "journal.key",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    let readme = std::fs::read_to_string(fixtures::testdata_dir().join("../README.md")).unwrap();
    for needle in [
        "WINRESCUE_JOURNAL_DIR",
        "/var/lib/winrescue/",
        "4 a write was refused",
    ] {
        assert!(readme.contains(needle), "README lacks {needle:?}");
    }
}

#[test]
fn runbook_without_a_disk_never_pastes_another_versions_example() {
    let dir = tempfile::tempdir().unwrap();
    for code in ["1059", "1068"] {
        let out = winrescue(dir.path())
            .args(["runbook", "--code", code])
            .assert()
            .success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        // Commands to paste: every `sc config` line names a placeholder, not a Windows 7 value
        // that drops RpcSs from NSI on Windows 10.
        for line in text
            .lines()
            .filter(|l| l.contains("sc config") || l.contains("sc.exe config"))
        {
            assert!(line.contains("<SERVICE>"), "{code}: {line}");
        }
        assert!(!text.contains("config NSI depend= nsiproxy"), "{code}");
        let fix = text
            .find(&format!("A. When sc start DHCP fails with {code}"))
            .unwrap();
        assert!(fix < text.find("B. The article's general steps").unwrap());
    }
}

#[test]
fn diagnose_puts_the_verdict_first_and_shows_how_much_evidence_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let image = fixtures::path("images/gen2-gpt-win7-dhcp-disabled.raw");
    let out = winrescue(dir.path())
        .arg("diagnose")
        .arg(&image)
        .assert()
        .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.starts_with("verdict:  RDP is blocked: DHCP Client (Dhcp) will not start: error 1058"),
        "{text}"
    );
    assert_eq!(text.matches("verdict:").count(), 1);
    // Piped: no colour; and never with NO_COLOR.
    assert!(!text.contains('\u{1b}'));
    assert!(
        text.contains("15 events about the DHCP Client, 8 of 15 shown"),
        "{text}"
    );
    assert!(text.contains("winrescue events"), "{text}");
    // 1058 logs no failure: the log is consistent with it, not in disagreement.
    assert!(
        text.contains("consistent: the configuration predicts 1058"),
        "{text}"
    );
    assert!(!text.contains("disagree"), "{text}");
    // One timestamp format: `2015-09-18 07:58:27Z`, never RFC 3339 with fractions.
    assert!(
        text.contains("last recorded state: Stopped at 2015-09-18 07:58:27Z"),
        "{text}"
    );
    assert!(!text.contains("T07:58"), "{text}");
}

#[test]
fn diagnose_colours_the_verdict_on_a_terminal_only_and_never_with_no_color() {
    // util-linux `script` gives the command a terminal.
    let have_script = std::process::Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have_script,
        "script(1) (util-linux) is needed to give the command a terminal"
    );
    let bin = assert_cmd::cargo::cargo_bin("winrescue");
    let image = fixtures::path("images/gen2-gpt-win7-dhcp-disabled.raw");
    let run = |no_color: bool| {
        let line = format!("'{}' diagnose '{}'", bin.display(), image.display());
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    };
    let tty = run(false);
    assert!(tty.contains("\u{1b}[1;31mverdict:"), "{tty:?}");
    let plain = run(true);
    assert!(
        plain.contains("verdict:") && !plain.contains('\u{1b}'),
        "{plain:?}"
    );
}
