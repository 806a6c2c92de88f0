//! `sc`, `reg` (targets, export/import, scripts) and `runbook` end to end, on copies of the real
//! disk fixtures; results checked with independent readers (ntfs-3g's ntfscat, hivex's
//! hivexget) and with winsvc's analysis.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

/// The Windows partition of the gen2 image starts at this sector (testdata/images/README.md).
const GEN2_WINDOWS_START: u64 = 102400;
const GEN2_WINDOWS_SECTORS: u64 = 92160;

/// The article's offline script, verbatim (its drive letter kept as written).
const ARTICLE_SCRIPT: &str = r#"reg load HKLM\BROKENSYSTEM F:\windows\system32\config\SYSTEM

REM Set default values back on the broken service
reg add "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v start /t REG_DWORD /d 2 /f
reg add "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v ObjectName /t REG_SZ /d "NT Authority\LocalService" /f
reg add "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v type /t REG_DWORD /d 16 /f
reg add "HKLM\BROKENSYSTEM\ControlSet002\services\DHCP" /v start /t REG_DWORD /d 2 /f
reg add "HKLM\BROKENSYSTEM\ControlSet002\services\DHCP" /v ObjectName /t REG_SZ /d "NT Authority\LocalService" /f
reg add "HKLM\BROKENSYSTEM\ControlSet002\services\DHCP" /v type /t REG_DWORD /d 16 /f

reg unload HKLM\BROKENSYSTEM
"#;

fn winrescue() -> Command {
    let mut c = Command::cargo_bin("winrescue").unwrap();
    c.env_remove("WINRESCUE_JOURNAL_DIR");
    c
}

fn copy_fixture(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

fn have(tool: &str) -> bool {
    Std::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Std) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The gen2 image's Windows partition copied out to its own file (ntfs-3g tools take a volume).
fn windows_partition(image: &Path, out: &Path) {
    run(Std::new("dd")
        .arg(format!("if={}", image.display()))
        .arg(format!("of={}", out.display()))
        .args([
            "bs=512",
            &format!("skip={GEN2_WINDOWS_START}"),
            &format!("count={GEN2_WINDOWS_SECTORS}"),
            "status=none",
        ]));
}

/// The SYSTEM hive as ntfs-3g reads it from the image.
fn ntfscat_system(image: &Path, dir: &Path) -> PathBuf {
    let part = dir.join("part.ntfs");
    windows_partition(image, &part);
    let hive = dir.join("SYSTEM.ntfscat");
    let out = Std::new("ntfscat")
        .arg(&part)
        .arg("Windows/System32/config/SYSTEM")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ntfscat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&hive, out.stdout).unwrap();
    std::fs::remove_file(part).unwrap();
    hive
}

fn hivexget(hive: &Path, key: &str, value: &str) -> String {
    let out = Std::new("hivexget")
        .arg(hive)
        .arg(key)
        .arg(value)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hivexget {key} {value}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A copy of the gen2 image whose DHCP Client is disabled, broken without winrescue: the hive
/// of testdata/hives/broken/win7-dhcp-disabled (made by hivexregedit) copied into the NTFS
/// volume by ntfs-3g's ntfscp.
fn broken_gen2(dir: &Path) -> PathBuf {
    let image = copy_fixture(dir, "images/gen2-gpt-win7-system.raw", "disk.raw");
    let part = dir.join("part.ntfs");
    windows_partition(&image, &part);
    let hive = dir.join("broken-SYSTEM");
    std::fs::copy(fixtures::path("hives/broken/win7-dhcp-disabled"), &hive).unwrap();
    run(Std::new("ntfscp")
        .arg(&part)
        .arg(&hive)
        .arg("Windows/System32/config/SYSTEM"));
    run(Std::new("dd")
        .arg(format!("if={}", part.display()))
        .arg(format!("of={}", image.display()))
        .args([
            "bs=512",
            &format!("seek={GEN2_WINDOWS_START}"),
            "conv=notrunc",
            "status=none",
        ]));
    std::fs::remove_file(part).unwrap();
    image
}

fn winsvc_model(hive: &Path) -> winsvc::SystemModel {
    winsvc::SystemModel::from_bytes(&std::fs::read(hive).unwrap(), None).unwrap()
}

#[test]
fn the_articles_script_runs_verbatim_and_hivex_and_winsvc_agree() {
    if !["ntfscat", "ntfscp", "hivexget", "dd"]
        .iter()
        .all(|t| have(t))
    {
        panic!("ntfs-3g (ntfscat, ntfscp) and hivex (hivexget) are needed");
    }
    let dir = tempfile::tempdir().unwrap();
    let image = broken_gen2(dir.path());
    // The break is visible to winrescue and to winsvc.
    winrescue()
        .arg("sc")
        .arg(&image)
        .args(["query", "dhcp"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("START_TYPE         : 4   DISABLED")
                .and(predicate::str::contains("FAILS  1058")),
        );
    let before = ntfscat_system(&image, dir.path());
    assert_eq!(
        hivexget(&before, r"ControlSet001\services\Dhcp", "Start"),
        "4"
    );
    std::fs::remove_file(&before).unwrap();

    let script = dir.path().join("fix-dhcp.cmd");
    std::fs::write(&script, ARTICLE_SCRIPT.replace('\n', "\r\n")).unwrap();
    // A dry run changes nothing.
    let pristine = std::fs::read(&image).unwrap();
    winrescue()
        .arg("reg")
        .arg(&image)
        .arg("--dry-run")
        .arg("--script")
        .arg(&script)
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run"));
    assert!(std::fs::read(&image).unwrap() == pristine);

    winrescue()
        .arg("reg")
        .arg(&image)
        .arg("--script")
        .arg(&script)
        .assert()
        .success()
        .stdout(predicate::str::contains(r#"line 4: set HKLM\BROKENSYSTEM\ControlSet001\services\DHCP "start" = REG_DWORD 0x2 (was REG_DWORD 0x4)"#).and(predicate::str::contains("undo journal")).and(predicate::str::contains("The operation completed successfully.")));

    // Independent reader: ntfs-3g extracts the hive, hivex reads the values.
    let after = ntfscat_system(&image, dir.path());
    for cs in ["ControlSet001", "ControlSet002"] {
        let key = format!(r"{cs}\services\Dhcp");
        assert_eq!(hivexget(&after, &key, "Start"), "2", "{cs}");
        assert_eq!(
            hivexget(&after, &key, "ObjectName"),
            r"NT Authority\LocalService",
            "{cs}"
        );
        assert_eq!(hivexget(&after, &key, "Type"), "16", "{cs}");
    }
    // winsvc's analysis of that extracted hive: DHCP starts in every control set (no disk at
    // hand for the files: unknown, not missing).
    let model = winsvc_model(&after);
    let no_disk = |_: &str| None;
    for d in winsvc::analyze::diagnose_all_sets(&model, "Dhcp", &no_disk) {
        assert_eq!(d.code(), None, "{}", d.summary());
        assert!(d.starts_at_boot, "{}", d.summary());
    }
    // Running the script again changes nothing.
    let once = std::fs::read(&image).unwrap();
    winrescue()
        .arg("reg")
        .arg(&image)
        .arg("--script")
        .arg(&script)
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to change"));
    assert!(std::fs::read(&image).unwrap() == once);

    // What `winrescue repair` does to the same broken disk, if the command exists: DHCP starts
    // in the current control set there too (it restores the baseline, which may keep
    // Type=0x20 where the article writes 0x10).
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let image2 = broken_gen2(&other);
    let repair = winrescue()
        .arg("repair")
        .arg(&image2)
        .arg("--apply")
        .output()
        .unwrap();
    assert!(repair.status.success(), "{repair:?}");
    let repaired = ntfscat_system(&image2, &other);
    assert_eq!(
        hivexget(&repaired, r"ControlSet001\services\Dhcp", "Start"),
        "2"
    );
    let model = winsvc_model(&repaired);
    let d = winsvc::analyze::diagnose(&model, model.current().unwrap().number, "Dhcp", &no_disk)
        .unwrap();
    assert_eq!(d.code(), None, "{}", d.summary());
}

#[test]
fn a_bad_script_line_is_refused_with_its_number_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_fixture(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    let before = std::fs::read(&image).unwrap();
    let cases = [
        ("reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 4 /f\r\ndel F:\\x\r\n", 2, "line 3: only reg load"),
        ("reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d four /f\r\n", 2, "line 2: ERROR: Invalid syntax."),
        ("reg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 4 /f\r\n", 3, "line 1: ERROR: HKLM\\B is not loaded"),
        ("reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v ImagePath /d %SystemRoot%\\x.exe /f\r\n", 2, "line 2: cmd.exe would expand"),
        // A failure while editing (a value that is not there) leaves the earlier lines unwritten too.
        ("reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 4 /f\r\nreg delete \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v NoSuchValue /f\r\n", 3, "line 3: ERROR: The system was unable to find the specified registry key or value"),
    ];
    for (i, (text, code, message)) in cases.iter().enumerate() {
        let script = dir.path().join(format!("s{i}.cmd"));
        std::fs::write(&script, text).unwrap();
        winrescue()
            .arg("reg")
            .arg(&image)
            .arg("--script")
            .arg(&script)
            .assert()
            .code(*code)
            .stderr(predicate::str::contains(*message));
        assert!(std::fs::read(&image).unwrap() == before, "case {i} wrote");
    }
}

#[test]
fn reg_syntax_and_lookup_errors_read_like_reg_exe() {
    let h = fixtures::path("hives/win7-SYSTEM");
    winrescue()
        .arg("reg")
        .arg(&h)
        .args(["add", r"HKLM\SYSTEM\X", "/t", "REG_DWORD", "/d", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ERROR: Invalid syntax."));
    winrescue()
        .arg("reg")
        .arg(&h)
        .args(["frobnicate", r"HKLM\SYSTEM\X"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ERROR: Invalid syntax."));
    winrescue()
        .arg("reg")
        .arg(&h)
        .args(["load", r"HKLM\B", r"F:\windows\system32\config\SYSTEM"])
        .assert()
        .success()
        .stderr(predicate::str::contains("note: nothing to load"));
    winrescue()
        .arg("reg")
        .arg(&h)
        .args(["query", r"HKLM\SYSTEM\ControlSet001\services\NoSuch"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "ERROR: The system was unable to find the specified registry key or value",
        ));
    winrescue()
        .arg("reg")
        .arg(&h)
        .args(["query", r"HKCU\Software"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("ERROR: Invalid key name."));
    // BROKENSYSTEM without a load line is SYSTEM, with a note; CurrentControlSet is resolved.
    winrescue()
        .arg("reg")
        .arg(&h)
        .args([
            "query",
            r"HKLM\BROKENSYSTEM\CurrentControlSet\Services\DHCP",
            "/v",
            "ObjectName",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            r"ObjectName    REG_SZ    NT Authority\LocalService",
        ))
        .stderr(predicate::str::contains("taken as the SYSTEM hive"));
}

#[test]
fn reg_on_a_disk_image_reads_the_other_hives_of_the_install_and_refuses_missing_ones() {
    let image = fixtures::path("images/gen2-gpt-win7-system.raw");
    winrescue()
        .arg("reg")
        .arg(&image)
        .args(["query", r"HKLM\SYSTEM\Select", "/v", "Current"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Current    REG_DWORD    0x1"));
    // The fixture holds SYSTEM only: SOFTWARE is looked for next to it and reported missing.
    winrescue()
        .arg("reg")
        .arg(&image)
        .args(["query", r"HKLM\SOFTWARE\Microsoft"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("SOFTWARE"));
}

#[test]
fn export_then_import_round_trips_a_deleted_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = copy_fixture(dir.path(), "images/gen2-gpt-win7-system.raw", "a.raw");
    let b = copy_fixture(dir.path(), "images/gen2-gpt-win7-system.raw", "b.raw");
    let key = r"HKLM\BROKENSYSTEM\ControlSet001\services\Dhcp";
    let exported = dir.path().join("dhcp.reg");
    winrescue()
        .arg("reg")
        .arg(&a)
        .args(["export", key])
        .arg(&exported)
        .assert()
        .success()
        .stdout(predicate::str::contains("exported"));
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.starts_with("Windows Registry Editor Version 5.00"));
    assert!(
        text.contains(r"[HKEY_LOCAL_MACHINE\BROKENSYSTEM\ControlSet001\services\Dhcp]"),
        "{text}"
    );
    // Never over an existing file without /y.
    winrescue()
        .arg("reg")
        .arg(&a)
        .args(["export", key])
        .arg(&exported)
        .assert()
        .code(4);

    winrescue()
        .arg("reg")
        .arg(&b)
        // Deleting the DHCP Client's key breaks it: refused without --force (issue 14).
        .args(["delete", key, "/f", "--force"])
        .assert()
        .success();
    winrescue()
        .arg("reg")
        .arg(&b)
        .args(["query", key])
        .assert()
        .code(3);
    winrescue()
        .arg("sc")
        .arg(&b)
        .args(["qc", "DHCP"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("[SC] OpenService FAILED 1060:"));
    winrescue()
        .arg("reg")
        .arg(&b)
        .arg("import")
        .arg(&exported)
        .assert()
        .success()
        .stdout(predicate::str::contains("create key"));
    let again = dir.path().join("again.reg");
    winrescue()
        .arg("reg")
        .arg(&b)
        .args(["export", key])
        .arg(&again)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    // Importing it once more changes nothing; `[-key]` deletes.
    winrescue()
        .arg("reg")
        .arg(&b)
        .arg("import")
        .arg(&exported)
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to change"));
    let del = dir.path().join("del.reg");
    std::fs::write(&del, "Windows Registry Editor Version 5.00\r\n\r\n[-HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\services\\Dhcp\\Parameters]\r\n").unwrap();
    winrescue()
        .arg("reg")
        .arg(&b)
        .arg("import")
        .arg(&del)
        // Parameters holds the DHCP Client's ServiceDll: refused without --force (issue 14).
        .arg("--force")
        .assert()
        .success()
        .stdout(predicate::str::contains("delete key"));
    winrescue()
        .arg("reg")
        .arg(&b)
        .args([
            "query",
            r"HKLM\SYSTEM\ControlSet001\services\Dhcp\Parameters",
        ])
        .assert()
        .code(3);
}

#[test]
fn sc_query_shows_the_configuration_and_the_last_logged_state() {
    let image = fixtures::path("images/gen2-gpt-win7-system.raw");
    let out = winrescue()
        .arg("sc")
        .arg(&image)
        .args(["query", "DHCP"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("[SC] offline:"), "{text}");
    assert!(text.contains("SERVICE_NAME: Dhcp"), "{text}");
    assert!(
        text.contains("TYPE               : 20  WIN32_SHARE_PROCESS"),
        "{text}"
    );
    assert!(
        text.contains("START_TYPE         : 2   AUTO_START"),
        "{text}"
    );
    // The srv2008r2 System log: 15 DHCP Client 7036 events, the newest "stopped".
    assert!(text.contains("STATE              : 1  STOPPED  (last of 15 recorded state changes: event 7036 at 2015-09-18 07:58:27Z, record 4986)"), "{text}");
    // The fixture volume holds no Windows system files, so images are not checked (as in
    // `diagnose`): the healthy configuration is predicted to start.
    assert!(text.contains("PREDICTED_START    : STARTS"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    insta::assert_snapshot!("sc_qc_gen2", {
        let o = winrescue()
            .arg("sc")
            .arg(&image)
            .args(["qc", "dhcp"])
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout)
            .unwrap()
            .replace(&image.display().to_string(), "IMAGE")
    });
}

#[test]
fn sc_config_writes_current_or_all_control_sets_and_refuses_what_sc_exe_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_fixture(dir.path(), "images/gen2-gpt-win7-system.raw", "disk.raw");
    let before = std::fs::read(&image).unwrap();
    for (args, code, message) in [
        (
            &["config", "DHCP", "start=auto"][..],
            2,
            "sc.exe needs a space after the equal sign: start= auto",
        ),
        (
            &["config", "DHCP", "start=", "sometimes"],
            2,
            "A space is required between the equal sign and the value.",
        ),
        (
            &["config", "DHCP", "obj=", r".\bob", "password=", "secret"],
            4,
            "password= cannot be set offline",
        ),
        (
            &["config", "DHCP", "obj=", r"NT AUTHORITY\Nobody"],
            4,
            "[SC] ChangeServiceConfig FAILED 1057:",
        ),
        (
            &["config", "NoSuchService", "start=", "auto"],
            3,
            "[SC] OpenService FAILED 1060:",
        ),
        (&["start", "DHCP"], 2, "not running"),
    ] {
        winrescue()
            .arg("sc")
            .arg(&image)
            .args(args)
            .assert()
            .code(code)
            .stderr(predicate::str::contains(message));
    }
    assert!(std::fs::read(&image).unwrap() == before);
    winrescue()
        .arg("sc")
        .arg(&image)
        .args([
            "config",
            "dhcp",
            "start=",
            "disabled",
            "--dry-run",
            "--force",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains(r"ControlSet001\services\Dhcp\Start = 0x4 (4) (was 0x2 (2))")
                .and(predicate::str::contains("dry run")),
        );
    assert!(std::fs::read(&image).unwrap() == before);
    // Current control set only (Select\Current = 1).
    winrescue()
        .arg("sc")
        .arg(&image)
        .args([
            "config", "DHCP", "start=", "disabled", "type=", "own", "--force",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("[SC] ChangeServiceConfig SUCCESS")
                .and(predicate::str::contains("after: ControlSet001")),
        );
    let get = |cs: &str, v: &str| {
        let o = winrescue()
            .arg("reg")
            .arg(&image)
            .args([
                "query",
                &format!(r"HKLM\SYSTEM\{cs}\services\Dhcp"),
                "/v",
                v,
            ])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(get("ControlSet001", "Start").contains("0x4"));
    assert!(get("ControlSet001", "Type").contains("0x10"));
    assert!(get("ControlSet002", "Start").contains("0x2"));
    winrescue()
        .arg("sc")
        .arg(&image)
        .args(["query", "DHCP"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILS  1058"));
    // Every control set.
    winrescue()
        .arg("sc")
        .arg(&image)
        .args([
            "config",
            "DHCP",
            "start=",
            "delayed-auto",
            "obj=",
            r"NT Authority\LocalService",
            "--all-control-sets",
        ])
        .assert()
        .success();
    assert!(get("ControlSet002", "Start").contains("0x2"));
    assert!(get("ControlSet001", "DelayedAutostart").contains("0x1"));
    assert!(get("ControlSet002", "DelayedAutostart").contains("0x1"));
    winrescue()
        .arg("sc")
        .arg(&image)
        .args(["qc", "DHCP"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "START_TYPE         : 2   AUTO_START  (DELAYED)",
        ));
}

#[test]
fn runbook_for_each_article_code() {
    for code in [5, 1053, 1058, 1059, 1067, 1068, 1069, 1070, 1077, 1079] {
        let o = winrescue()
            .args(["runbook", "--code", &code.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{code}");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.contains("CMD:")
                && text.contains("PowerShell:")
                && text.contains("Expect:")
                && text.contains("If not:"),
            "{code}"
        );
        // The branch's fix comes before the general steps (issue 14).
        assert!(
            text.find("A. When sc start DHCP fails") < text.find("B. The article's general steps"),
            "{code}"
        );
        insta::assert_snapshot!(format!("runbook_code_{code}"), text);
    }
    winrescue()
        .args(["runbook", "--code", "4242"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ERROR: Invalid syntax."));
    winrescue().args(["runbook"]).assert().code(2);
}

#[test]
fn runbook_from_a_disk_names_the_culprit_instead_of_contact_support() {
    for (hive, code, culprit_cmd) in [
        ("win7-afd-disabled", 1068, "sc config AFD start= system"),
        (
            "win7-cycle-nsi-dhcp",
            1059,
            r#"reg add "HKLM\SYSTEM\CurrentControlSet\services\nsi" /v DependOnService /t REG_MULTI_SZ /d "nsiproxy" /f"#,
        ),
        (
            "win7-group-member-account",
            1079,
            r#"sc config wscsvc obj= "NT Authority\LocalService" password= """#,
        ),
        ("win7-dhcp-disabled", 1058, "sc config DHCP start= auto"),
    ] {
        let h = fixtures::path(&format!("hives/broken/{hive}"));
        let o = winrescue().arg("runbook").arg(&h).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{hive}");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(text.contains(&format!("error {code} ")), "{hive}: {text}");
        assert!(text.contains(culprit_cmd), "{hive}: {text}");
        let steps = text.split("A. When").nth(1).unwrap();
        let steps = steps.split("B. The article").next().unwrap();
        assert!(
            !steps.to_lowercase().contains("contact support"),
            "{hive}: {text}"
        );
        insta::assert_snapshot!(
            format!("runbook_disk_{hive}"),
            text.replace(&h.display().to_string(), "HIVE")
        );
    }
}
