//! The writer under attack, each case a failure once seen on an earlier version: undo killed
//! part way, concurrent writers, other programs' locks and descriptors, links, planted
//! symlinks, forged journals, terminal escapes, a damaged control set, read-only targets.
//!
//! Faults are injected from outside with strace (`-e inject=pwrite64:...`), locks and open
//! descriptors are held by python3, and breakage is made by byte patches in python3: none of it
//! by winrescue itself.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("winrescue")
}

/// Whether an external tool can be run; in CI a missing tool fails the test.
fn have(tool: &str) -> bool {
    let ok = Std::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "{tool} is required in CI"
    );
    if !ok {
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
}

fn copy(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

/// `repair --apply`, returning the undo journal it names.
fn repair(target: &Path) -> PathBuf {
    repair_with(winrescue(), target)
}

/// `repair --apply` through `cmd` (a command with its environment set), returning the undo
/// journal it names.
fn repair_with(mut cmd: Command, target: &Path) -> PathBuf {
    let out = cmd
        .args(["repair", "--apply"])
        .arg(target)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("undo:    winrescue undo "))
        .unwrap_or_else(|| panic!("no undo line in {text}"));
    PathBuf::from(line.trim().trim_matches('\''))
}

/// `repair --apply` must be refused with exit 4 and `words` in its message, and leave
/// `target` byte for byte as it was.
fn refused(target: &Path, words: &str) {
    let before = std::fs::read(target).unwrap();
    winrescue()
        .args(["repair", "--apply"])
        .arg(target)
        .assert()
        .code(4)
        .stderr(predicate::str::contains(words));
    assert!(
        std::fs::read(target).unwrap() == before,
        "a refused write changed {}",
        target.display()
    );
}

fn pending(anchor: &Path) -> PathBuf {
    let name = anchor.file_name().unwrap().to_string_lossy();
    anchor.with_file_name(format!("{name}.winrescue-journal"))
}

fn hivex_start(hive: &Path) -> Option<String> {
    have("hivexget").then(|| {
        let o = Std::new("hivexget")
            .arg(hive)
            .arg(r"\ControlSet001\services\Dhcp")
            .arg("Start")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    })
}

/// Runs `winrescue ARGS` under strace, killing it (or failing the call) at the `when`-th
/// pwrite64 call; returns whether strace could run.
fn under_strace(inject: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    assert!(
        have("strace"),
        "strace is needed to inject faults into the writes"
    );
    let out = Std::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=pwrite64"])
        .arg("-e")
        .arg(format!("inject=pwrite64:{inject}"))
        .arg(bin())
        .args(args)
        .output()
        .unwrap();
    Some(out)
}

#[test]
fn undo_killed_at_every_write_is_resolved_to_original_or_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "pristine");
    let original = std::fs::read(&pristine).unwrap();
    let probe = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "probe");
    let j = repair(&probe);
    let ranges = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&j).unwrap())
        .unwrap()["ranges"]
        .as_array()
        .unwrap()
        .len();
    assert!(ranges >= 2);
    let mut runs = 0;
    for k in 1..=ranges {
        for redo in [false, true] {
            let hive = copy(
                dir.path(),
                "hives/broken/win7-dhcp-disabled",
                &format!("S{k}{redo}"),
            );
            let j = repair(&hive);
            let Some(out) = under_strace(
                &format!("signal=KILL:when={k}"),
                &["undo".as_ref(), j.as_os_str()],
            ) else {
                return;
            };
            assert!(!out.status.success(), "undo was not killed at write {k}");
            runs += 1;
            let p = pending(&hive);
            assert!(p.exists(), "a killed undo leaves its pending journal");
            // The next command sees it.
            winrescue()
                .arg("diagnose")
                .arg(&hive)
                .assert()
                .stdout(predicate::str::contains("interrupted"));
            winrescue()
                .args(["repair", "--apply"])
                .arg(&hive)
                .assert()
                .code(4)
                .stderr(predicate::str::contains("interrupted"));
            let mut resolve = winrescue();
            resolve.arg("undo");
            if redo {
                resolve.arg("--redo");
            }
            resolve.arg(&p).assert().success();
            let now = std::fs::read(&hive).unwrap();
            if redo {
                assert_eq!(hivex_start(&hive).as_deref().unwrap_or("2"), "2");
                winrescue().arg("diagnose").arg(&hive).assert().success();
            } else {
                assert!(
                    now == original,
                    "undo killed at write {k}, then undone: not the original"
                );
            }
            winrescue()
                .args(["hive", "check"])
                .arg(&hive)
                .assert()
                .success();
        }
    }
    eprintln!("undo killed at each of {ranges} writes, both resolutions: {runs} runs");
}

#[test]
fn an_io_error_mid_write_says_interrupted_and_gives_the_undo_command() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "SYSTEM");
    let original = std::fs::read(&hive).unwrap();
    let Some(out) = under_strace(
        "error=EIO:when=2",
        &["repair".as_ref(), "--apply".as_ref(), hive.as_os_str()],
    ) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("winrescue undo"),
        "{stderr}"
    );
    let p = pending(&hive);
    winrescue().arg("undo").arg(&p).assert().success();
    assert!(std::fs::read(&hive).unwrap() == original);
}

#[test]
fn two_writers_on_one_hive_file_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let trials = 40;
    let mut refused = 0;
    for t in 0..trials {
        let hive = copy(dir.path(), "hives/win7-SYSTEM", &format!("SYSTEM{t}"));
        let spawn = |name: &str| -> Child {
            Std::new(bin())
                .arg("reg")
                .arg(&hive)
                .args([
                    "add",
                    r"HKLM\SYSTEM\ControlSet001\services\Tcpip",
                    "/v",
                    name,
                ])
                .args(["/t", "REG_DWORD", "/d", "7", "/f"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("ValA"), spawn("ValB"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let bytes = std::fs::read(&hive).unwrap();
        let h = regf::Hive::open(&bytes[..]).unwrap();
        let key = h.key(r"ControlSet001\services\Tcpip").unwrap().unwrap();
        for (out, name) in [(&a, "ValA"), (&b, "ValB")] {
            match out.status.code() {
                // Each writer that says it wrote must find its value in the file.
                Some(0) => assert!(
                    key.value(name).unwrap().is_some(),
                    "trial {t}: {name} was reported written and is lost"
                ),
                // The other writer held the file: refused, nothing written.
                Some(4) => {
                    refused += 1;
                    assert!(
                        String::from_utf8_lossy(&out.stderr).contains("in use"),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                c => panic!(
                    "trial {t}: {name} exited {c:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        assert!(!pending(&hive).exists());
        assert!(regf::check::check(&bytes).is_sound());
    }
    eprintln!(
        "{trials} trials of two concurrent writers: 0 lost updates, {refused} refused as in use"
    );
}

/// python3 holding `path` open (read-write, with a POSIX lock when `lock`), until killed.
fn holder(path: &Path, lock: bool) -> Child {
    let script = format!(
        "import fcntl,sys,time\nf=open(sys.argv[1],'r+b')\n{}\nprint('ready',flush=True)\ntime.sleep(60)\n",
        if lock { "fcntl.lockf(f, fcntl.LOCK_EX)" } else { "" }
    );
    let mut child = Std::new("python3")
        .args(["-c", &script])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

#[test]
fn a_posix_lock_or_an_open_writer_elsewhere_refuses_the_write() {
    let dir = tempfile::tempdir().unwrap();
    for (lock, image) in [
        (true, "hives/broken/win7-dhcp-disabled"),
        (false, "images/gen2-gpt-win7-dhcp-disabled.raw"),
    ] {
        let target = copy(dir.path(), image, &format!("t-{lock}"));
        let before = std::fs::read(&target).unwrap();
        let mut h = holder(&target, lock);
        winrescue()
            .args(["repair", "--apply"])
            .arg(&target)
            .assert()
            .code(4)
            .stderr(predicate::str::contains("in use"))
            .stderr(predicate::str::contains("python3"));
        h.kill().unwrap();
        h.wait().unwrap();
        assert!(
            std::fs::read(&target).unwrap() == before,
            "written under another writer"
        );
        assert!(!pending(&target).exists());
    }
}

#[test]
fn read_only_targets_are_refused_even_for_root() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in [
        "hives/broken/win7-dhcp-disabled",
        "images/gen2-gpt-win7-dhcp-disabled.raw",
    ] {
        let target = copy(dir.path(), fixture, "ro");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444)).unwrap();
        refused(&target, "no write bit");
        std::fs::remove_file(&target).unwrap();
    }
}

#[test]
fn links_are_written_through_and_the_file_keeps_owner_mode_links_and_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    std::fs::create_dir(&real_dir).unwrap();
    let real = copy(&real_dir, "hives/broken/win7-dhcp-disabled", "SYSTEM");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&real, Some(65534), Some(65534)).unwrap();
    let hard = dir.path().join("hardlink");
    std::fs::hard_link(&real, &hard).unwrap();
    let xattr = Std::new("python3")
        .args([
            "-c",
            "import os,sys; os.setxattr(sys.argv[1], 'user.winrescue-test', b'kept')",
        ])
        .arg(&real)
        .status()
        .unwrap()
        .success();
    if !xattr {
        eprintln!(
            "NOTE: this file system takes no user xattrs; the xattr part is not checked here"
        );
    }
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let ino = std::fs::metadata(&real).unwrap().ino();
    repair(&link);
    let meta = std::fs::metadata(&real).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(meta.ino(), ino, "the real file was replaced, not written");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o600)
    );
    assert_eq!(meta.nlink(), 2);
    assert!(std::fs::read(&hard).unwrap() == std::fs::read(&real).unwrap());
    assert_eq!(hivex_start(&real).as_deref().unwrap_or("2"), "2");
    if xattr {
        let kept = Std::new("python3")
            .args([
                "-c",
                "import os,sys; assert os.getxattr(sys.argv[1], 'user.winrescue-test') == b'kept'",
            ])
            .arg(&real)
            .status()
            .unwrap();
        assert!(kept.success(), "the xattr was lost");
    }

    // A folder target whose SYSTEM is a symlink: the link's target is written.
    let tree = dir.path().join("tree/Windows/System32/config");
    std::fs::create_dir_all(&tree).unwrap();
    let real2 = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "SYSTEM2");
    std::os::unix::fs::symlink(&real2, tree.join("SYSTEM")).unwrap();
    repair(&dir.path().join("tree"));
    assert!(std::fs::symlink_metadata(tree.join("SYSTEM"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(hivex_start(&real2).as_deref().unwrap_or("2"), "2");
}

#[test]
fn symlinks_planted_at_journal_names_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "victim\n").unwrap();
    let hive = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "SYSTEM");
    // At the pending journal's fixed name: refused as an interrupted write, nothing written.
    let p = pending(&hive);
    std::os::unix::fs::symlink(&victim, &p).unwrap();
    let before = std::fs::read(&hive).unwrap();
    winrescue()
        .args(["repair", "--apply"])
        .arg(&hive)
        .assert()
        .code(4);
    assert!(std::fs::read(&hive).unwrap() == before);
    std::fs::remove_file(&p).unwrap();
    // At every name a journal of the next seconds could take, and at the old temporary names.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut planted = vec![
        dir.path().join(".SYSTEM.winrescue-tmp"),
        dir.path().join("SYSTEM.winrescue-journal.tmp"),
    ];
    for s in now..now + 30 {
        let stamp = regf::time::filetime_to_iso(s * 10_000_000 + 116_444_736_000_000_000);
        let stamp = format!("{}Z", &stamp[..19]).replace([':', '-'], "");
        planted.push(
            dir.path()
                .join(format!("SYSTEM.winrescue-undo-{stamp}.json")),
        );
    }
    for l in &planted {
        std::os::unix::fs::symlink(&victim, l).unwrap();
    }
    let j = repair(&hive);
    assert!(!planted.contains(&j));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim\n");
    for l in &planted {
        assert!(std::fs::symlink_metadata(l)
            .unwrap()
            .file_type()
            .is_symlink());
    }
    // The journal is private.
    assert_eq!(std::fs::metadata(&j).unwrap().mode() & 0o077, 0);
}

/// Writes a journal signed with the key in `state` (as only someone holding this machine's key
/// could), to test the checks that stand behind the signature.
fn sign(journal: &mut serde_json::Value, state: &Path) -> String {
    use hmac::Mac;
    let key = std::fs::read(state.join("journal.key")).unwrap();
    journal["mac"] = serde_json::Value::String(String::new());
    // The same field order as winrescue writes: re-serialise its own parse.
    let body = serde_json::to_vec(journal).unwrap();
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(&body);
    let mac: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    journal["mac"] = serde_json::Value::String(mac);
    serde_json::to_string(journal).unwrap()
}

#[test]
fn edited_foreign_and_out_of_bounds_journals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&std::ffi::OsStr]| {
        let mut c = winrescue();
        c.env("WINRESCUE_STATE_DIR", &state).args(args);
        c
    };
    let hive = copy(dir.path(), "hives/broken/win7-dhcp-disabled", "SYSTEM");
    let j = repair_with(run(&[]), &hive);
    assert_eq!(
        std::fs::metadata(state.join("journal.key")).unwrap().mode() & 0o777,
        0o600
    );
    let repaired = std::fs::read(&hive).unwrap();
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();

    // 1. One byte of `before` changed by hand: the MAC no longer verifies.
    let mut edited = original.clone();
    let b = edited["ranges"][0]["before"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if b.starts_with('0') { "1" } else { "0" }, &b[1..]);
    edited["ranges"][0]["before"] = serde_json::Value::String(flipped);
    std::fs::write(&j, serde_json::to_string(&edited).unwrap()).unwrap();
    run(&["undo".as_ref(), j.as_os_str()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("authentication code"));
    assert!(std::fs::read(&hive).unwrap() == repaired);

    // 2. The genuine journal on another machine (another key): refused.
    std::fs::write(&j, serde_json::to_string(&original).unwrap()).unwrap();
    let mut other = winrescue();
    other.env("WINRESCUE_STATE_DIR", dir.path().join("other-machine"));
    other
        .arg("undo")
        .arg(&j)
        .assert()
        .failure()
        .stderr(predicate::str::contains("another machine"));
    assert!(std::fs::read(&hive).unwrap() == repaired);

    // 3. Signed with the right key, but aimed at a file that is not a hive (a passwd-like
    // file): refused by the checks behind the signature.
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "user:x:1000:1000::/home/user:/bin/sh\n").unwrap();
    let mut forged = original.clone();
    forged["devices"][0]["path"] = serde_json::Value::String(passwd.display().to_string());
    forged["devices"][0]["file_len"] = serde_json::json!(37);
    forged["ranges"] = serde_json::json!([{"device": 0, "offset": 7, "before": "313030303a31303030", "after": "303030303a30303030"}]);
    let fj = dir.path().join("forged.json");
    std::fs::write(&fj, sign(&mut forged, &state)).unwrap();
    run(&["undo".as_ref(), fj.as_os_str()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a registry hive"));
    assert_eq!(
        std::fs::read_to_string(&passwd).unwrap(),
        "user:x:1000:1000::/home/user:/bin/sh\n"
    );

    // 4. Signed, aimed at the GPT header of a disk image: outside the hive's clusters.
    let img = copy(
        dir.path(),
        "images/gen2-gpt-win7-dhcp-disabled.raw",
        "disk.raw",
    );
    let ij = repair_with(run(&[]), &img);
    let disk_before = std::fs::read(&img).unwrap();
    let mut aimed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ij).unwrap()).unwrap();
    let mut gpt = vec![0u8; 16];
    {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&img)
            .unwrap()
            .read_exact_at(&mut gpt, 512)
            .unwrap();
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    aimed["state"] = serde_json::json!("pending");
    aimed["ranges"] = serde_json::json!([{"device": 0, "offset": 512, "before": hex(&gpt), "after": hex(b"not a GPT header")}]);
    // Planted as the image's pending journal, the only place a redo is taken from.
    let aj = dir.path().join("disk.raw.winrescue-journal");
    std::fs::write(&aj, sign(&mut aimed, &state)).unwrap();
    run(&["undo".as_ref(), "--redo".as_ref(), aj.as_os_str()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not inside the clusters"));
    assert!(
        std::fs::read(&img).unwrap() == disk_before,
        "the GPT header was written"
    );
}

#[test]
fn undo_takes_a_relative_journal_path_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("images");
    std::fs::create_dir(&sub).unwrap();
    let hive = copy(&sub, "hives/broken/win7-dhcp-disabled", "SYSTEM");
    let original = std::fs::read(&hive).unwrap();
    let j = repair(&hive);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let rel = Path::new("../images").join(j.file_name().unwrap());
    winrescue()
        .current_dir(&elsewhere)
        .arg("undo")
        .arg(&rel)
        .assert()
        .success();
    assert!(std::fs::read(&hive).unwrap() == original);
}

#[test]
fn control_characters_from_input_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    let script = dir.path().join("evil.cmd");
    std::fs::write(
        &script,
        "reg add \"HKLM\\BROKENSYSTEM\\Nope\x1b]0;pwned\x07\" /v X /t REG_BOGUS\x1b[31m /d 1 /f\r\n",
    )
    .unwrap();
    let out = winrescue()
        .arg("reg")
        .arg(&hive)
        .arg("--script")
        .arg(&script)
        .assert()
        .failure()
        .get_output()
        .clone();
    let all = [out.stdout, out.stderr].concat();
    assert!(
        !all.contains(&0x1b) && !all.contains(&0x07),
        "raw control bytes printed"
    );
    assert!(String::from_utf8_lossy(&all).contains("\\x1b"));
}

#[test]
fn a_damaged_boot_control_set_is_never_called_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    // Zero the `nk` signature of the ControlSet001 key record (the name sits 0x4C bytes after
    // it), as a damaged sector would.
    let patch = "import sys\nb=bytearray(open(sys.argv[1],'rb').read())\nn=0\ni=b.find(b'ControlSet001')\nwhile i>=0:\n    if b[i-0x4c:i-0x4a]==b'nk':\n        b[i-0x4c:i-0x4a]=b'\\0\\0'; n+=1\n    i=b.find(b'ControlSet001',i+1)\nassert n==1,n\nopen(sys.argv[1],'wb').write(b)\n";
    assert!(Std::new("python3")
        .args(["-c", patch])
        .arg(&hive)
        .status()
        .unwrap()
        .success());
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("cannot tell"))
        .stdout(predicate::str::contains("ControlSet001"));
    refused(&hive, "cannot be judged");
    winrescue()
        .arg("sc")
        .arg(&hive)
        .args(["query", "Dhcp"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("ControlSet001"))
        .stdout(predicate::str::contains("ControlSet002").not());
}

#[test]
fn a_script_over_two_hives_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("Windows/System32/config");
    std::fs::create_dir_all(&cfg).unwrap();
    let system = copy(&cfg, "hives/broken/win7-dhcp-disabled", "SYSTEM");
    // Any real hive serves as the second one: the transaction does not care what it holds.
    let software = copy(&cfg, "hives/win7-SYSTEM", "SOFTWARE");
    let (sys0, soft0) = (
        std::fs::read(&system).unwrap(),
        std::fs::read(&software).unwrap(),
    );
    let script = dir.path().join("fix.cmd");
    let head = "reg load HKLM\\BROKENSYSTEM f:\\windows\\system32\\config\\SYSTEM\r\n\
                reg load HKLM\\BROKENSOFTWARE f:\\windows\\system32\\config\\SOFTWARE\r\n\
                reg add HKLM\\BROKENSYSTEM\\ControlSet001\\services\\Dhcp /v Start /t REG_DWORD /d 2 /f\r\n";
    // The SOFTWARE line fails after the SYSTEM line was applied in memory: nothing is written.
    std::fs::write(
        &script,
        format!("{head}reg delete HKLM\\BROKENSOFTWARE\\NoSuchKey /f\r\n"),
    )
    .unwrap();
    winrescue()
        .arg("reg")
        .arg(dir.path())
        .arg("--script")
        .arg(&script)
        .assert()
        .failure();
    assert!(
        std::fs::read(&system).unwrap() == sys0,
        "SYSTEM was written by a failed script"
    );
    assert!(std::fs::read(&software).unwrap() == soft0);
    assert!(!pending(&system).exists());
    // Both lines good: both hives written under one journal, undone together.
    std::fs::write(
        &script,
        format!("{head}reg add HKLM\\BROKENSOFTWARE\\Select /v Marker /t REG_DWORD /d 1 /f\r\n"),
    )
    .unwrap();
    let out = winrescue()
        .arg("reg")
        .arg(dir.path())
        .arg("--script")
        .arg(&script)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(std::fs::read(&system).unwrap() != sys0 && std::fs::read(&software).unwrap() != soft0);
    let journals: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("undo journal: "))
        .collect();
    assert_eq!(journals.len(), 1, "{text}");
    winrescue().arg("undo").arg(journals[0]).assert().success();
    assert!(std::fs::read(&system).unwrap() == sys0);
    assert!(std::fs::read(&software).unwrap() == soft0);
}

#[test]
fn a_hive_size_larger_than_the_volume_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let img = copy(
        dir.path(),
        "images/gen2-gpt-win7-dhcp-disabled.raw",
        "disk.raw",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/patch-mft-size.py");
    let patched = Std::new("python3")
        .arg(script)
        .arg(&img)
        .arg((1u64 << 30).to_string())
        .status()
        .unwrap();
    assert!(patched.success());
    let before = std::fs::read(&img).unwrap();
    // Under an 800 MB address-space limit: reading the claimed 1 GiB would abort the process.
    for args in ["diagnose", "repair --apply"] {
        let out = Std::new("bash")
            .arg("-c")
            .arg(format!("ulimit -v 800000; exec \"$0\" {args} \"$1\""))
            .arg(bin())
            .arg(&img)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args}: {stderr}");
        assert!(
            stderr.contains("claims 1073741824 bytes, more than the whole volume"),
            "{stderr}"
        );
    }
    assert!(std::fs::read(&img).unwrap() == before);
}

/// A journal that grows a hive file, signed with this machine's key but edited: a length past
/// what winrescue records, a truncation below the hive it restores, a range past the recorded
/// length. Each is refused and the file keeps its bytes and length.
#[test]
fn forged_growth_journals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&std::ffi::OsStr]| {
        let mut c = winrescue();
        c.env("WINRESCUE_STATE_DIR", &state).args(args);
        c
    };
    let hive = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    // A value larger than the free cells: the hive file grows.
    let hex: Vec<String> = (0..200 * 1024u32)
        .map(|i| format!("{:02x}", (i * 13 % 251) as u8))
        .collect();
    let reg = dir.path().join("big.reg");
    std::fs::write(
        &reg,
        format!(
            "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Dhcp]\n\"Big\"=hex:{}\n",
            hex.join(",")
        ),
    )
    .unwrap();
    let out = run(&[
        "reg".as_ref(),
        hive.as_os_str(),
        "import".as_ref(),
        reg.as_os_str(),
    ])
    .assert()
    .success()
    .get_output()
    .stdout
    .clone();
    let text = String::from_utf8(out).unwrap();
    let j = PathBuf::from(
        text.lines()
            .find_map(|l| l.strip_prefix("undo journal: "))
            .unwrap(),
    );
    let grown = std::fs::read(&hive).unwrap();
    let genuine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(genuine["format"], "winrescue-journal/3");
    let file_len = genuine["devices"][0]["file_len"].as_u64().unwrap();
    assert!((grown.len() as u64) > file_len);

    // (what the refusal says, how the signed journal is edited)
    type Forge = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Forge); 3] = [
        (
            "not a growth winrescue records",
            Box::new(|v| v["devices"][0]["grown_len"] = serde_json::json!(1u64 << 40)),
        ),
        (
            "does not restore a hive that fits",
            Box::new(|v| v["devices"][0]["file_len"] = serde_json::json!(4096)),
        ),
        (
            "lies outside",
            Box::new(move |v| {
                let ranges = v["ranges"].as_array_mut().unwrap();
                let last_grown = ranges
                    .iter_mut()
                    .filter(|r| r["before"].as_str() == Some(""))
                    .last()
                    .unwrap();
                // Far past any length the journal records.
                last_grown["offset"] = serde_json::json!(file_len + (64 << 20));
            }),
        ),
    ];
    for (i, (why, edit)) in cases.iter().enumerate() {
        let mut forged = genuine.clone();
        edit(&mut forged);
        let fj = dir.path().join(format!("forged-{i}.json"));
        std::fs::write(&fj, sign(&mut forged, &state)).unwrap();
        run(&["undo".as_ref(), fj.as_os_str()])
            .assert()
            .failure()
            .stderr(predicate::str::contains(*why));
        assert!(
            std::fs::read(&hive).unwrap() == grown,
            "{why}: the file changed"
        );
    }
    // The genuine journal still works: the original file, its length included.
    run(&["undo".as_ref(), j.as_os_str()]).assert().success();
    assert!(std::fs::read(&hive).unwrap() == fixtures::bytes("hives/win7-SYSTEM"));
}
