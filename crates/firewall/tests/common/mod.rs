//! Shared helpers: the real SYSTEM hives, hivex as the independent reader and writer, and a tiny
//! SOFTWARE hive for Group Policy cases.
//!
//! How the SOFTWARE hive is made: hivex cannot create a hive from nothing, so the real BCD hive
//! of `testdata/hives` (32 KiB, a regf file like any other) is copied, its two top-level keys
//! (`Description`, `Objects`) are deleted with a `.reg` merge (`[-\Key]`), and
//! `Policies\Microsoft\WindowsFirewall\...` is added by the same merge, each parent key named
//! before its children (hivexregedit does not create missing parents).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use firewall::{Change, Edit, HiveKind, Policy};

pub const SYSTEM_PREFIX: &str = r"HKEY_LOCAL_MACHINE\SYSTEM";
pub const SOFTWARE_PREFIX: &str = r"HKEY_LOCAL_MACHINE\SOFTWARE";

pub fn win7() -> Vec<u8> {
    fixtures::bytes("hives/win7-SYSTEM")
}

pub fn win81() -> Vec<u8> {
    fixtures::bytes("hives/win81-dirty-nologs-SYSTEM")
}

/// The dirty Windows 10 1709 hive as stored (what hivex reads).
pub fn win10_stale() -> Vec<u8> {
    fixtures::bytes("hives/win10-dirty-SYSTEM")
}

/// The dirty Windows 10 1709 hive with its logs applied: what Windows would see.
pub fn win10() -> Vec<u8> {
    let hive = win10_stale();
    let l1 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1");
    let l2 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2");
    let rec = regf::log::replay(
        &hive,
        &[
            regf::log::LogInput {
                name: "SYSTEM.LOG1",
                data: &l1,
            },
            regf::log::LogInput {
                name: "SYSTEM.LOG2",
                data: &l2,
            },
        ],
    )
    .expect("replay");
    assert!(
        rec.report.entries_applied > 0,
        "the logs hold entries to apply"
    );
    rec.bytes
}

pub fn hive(bytes: Vec<u8>) -> regf::Hive<Vec<u8>> {
    regf::Hive::open(bytes).expect("hive opens")
}

pub fn read(system: &[u8], cs: &str, software: Option<&[u8]>) -> Policy {
    let sys = hive(system.to_vec());
    let sw = software.map(|s| hive(s.to_vec()));
    Policy::read(&sys, cs, sw.as_ref()).expect("policy reads")
}

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    match cmd.output() {
        Ok(o) => {
            assert!(
                o.status.success(),
                "{what}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            o
        }
        Err(e) => panic!(
            "{what} could not run ({e}): these tests need hivex's tools (Debian/Ubuntu package \
             libhivex-bin; CI installs it)"
        ),
    }
}

/// A `.reg` string literal: backslashes and quotes escaped.
pub fn reg_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Applies `.reg` text (without its header) to the hive file with `hivexregedit --merge`.
pub fn merge(hive: &Path, prefix: &str, body: &str) {
    let reg = hive.with_extension("reg");
    std::fs::write(
        &reg,
        format!("Windows Registry Editor Version 5.00\n\n{body}\n"),
    )
    .unwrap();
    run(
        Command::new("hivexregedit")
            .args(["--merge", "--prefix", prefix])
            .arg(hive)
            .arg(&reg),
        "hivexregedit --merge",
    );
}

/// The string values of `key` as hivex reads them (`hivexregedit --export`): (name, text up to
/// the first NUL).
pub fn hivex_strings(hive: &Path, key: &str) -> Vec<(String, String)> {
    let out = run(
        Command::new("hivexregedit")
            .arg("--export")
            .arg(hive)
            .arg(key),
        "hivexregedit --export",
    );
    let text = String::from_utf8(out.stdout).expect("export is UTF-8");
    let mut values = Vec::new();
    let mut in_key = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_key = line
                .trim_end_matches(']')
                .trim_start_matches('[')
                .eq_ignore_ascii_case(key);
            continue;
        }
        if !in_key {
            continue;
        }
        let Some(rest) = line.strip_prefix('"') else {
            continue;
        };
        let (name, data) = rest.split_once("\"=").expect("value line");
        let data = data
            .strip_prefix("hex(1):")
            .expect("hivexregedit exports REG_SZ as hex(1)");
        let bytes: Vec<u8> = data
            .split(',')
            .filter(|b| !b.is_empty())
            .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
            .collect();
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        values.push((
            name.replace("\\\\", "\\"),
            String::from_utf16(&units).unwrap(),
        ));
    }
    values
}

/// A copy of `bytes` in `dir` under `name`.
pub fn write_copy(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A SOFTWARE hive holding only `Policies\Microsoft\WindowsFirewall` plus `body` (a `.reg` body
/// with keys relative to the hive root, e.g. `[\Policies\Microsoft\WindowsFirewall\...]`).
pub fn software_hive(dir: &Path, body: &str) -> PathBuf {
    let p = write_copy(dir, "SOFTWARE", &fixtures::bytes("hives/BCD"));
    let base = [
        r"Policies",
        r"Policies\Microsoft",
        r"Policies\Microsoft\WindowsFirewall",
    ];
    let mut reg = format!("[-{SOFTWARE_PREFIX}\\Description]\n\n[-{SOFTWARE_PREFIX}\\Objects]\n\n");
    for k in base {
        reg.push_str(&format!("[{SOFTWARE_PREFIX}\\{k}]\n\n"));
    }
    reg.push_str(&body.replace("[\\", &format!("[{SOFTWARE_PREFIX}\\")));
    merge(&p, SOFTWARE_PREFIX, &reg);
    // Only the firewall policy is left of the BCD store.
    let out = run(
        Command::new("hivexregedit")
            .arg("--export")
            .arg(&p)
            .arg("\\"),
        "hivexregedit --export",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("[\\Objects"), "BCD keys deleted");
    p
}

/// The `.reg` body that applies `edits` to one hive.
pub fn edits_to_reg(edits: &[Edit], hive: HiveKind, prefix: &str) -> String {
    let mut body = String::new();
    for e in edits.iter().filter(|e| e.hive == hive) {
        body.push_str(&format!("[{prefix}\\{}]\n", e.key));
        match &e.change {
            Change::SetSz(s) => {
                body.push_str(&format!("{}={}\n\n", reg_quote(&e.value), reg_quote(s)))
            }
            Change::Delete => body.push_str(&format!("{}=-\n\n", reg_quote(&e.value))),
        }
    }
    body
}
