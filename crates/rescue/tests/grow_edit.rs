//! Edits that need more room than a hive has free: they use the slack after the hive bins
//! first; a hive file grows in place under the journal (undo truncates it back, redo extends it
//! again, a crash anywhere ends in the original or the grown file). Growth inside a disk image
//! (NTFS metadata) is tested in `ntfs_grow.rs`.
//!
//! Checked with hivex's hivexget and reglookup, independent readers.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use regf::ValueType;
use rescue::edit::{edit_system_hive, EditOptions, EditOutcome};
use rescue::journal::{self, CrashAfter};

/// A FILETIME pinned so that two runs of the same edit write the same bytes.
const CLOCK: u64 = 133_000_000_000_000_000;
const DHCP: &str = r"ControlSet001\Services\Dhcp";

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Data that no offset mix-up can pass for itself (not periodic in 4 KiB or a segment).
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn copy(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

/// Sets `Dhcp\Big` to `data` (REG_BINARY) in ControlSet001 of the target at `path`.
fn add_big(path: &Path, data: &[u8], crash: CrashAfter) -> rescue::Result<EditOutcome> {
    edit_system_hive(
        path,
        EditOptions {
            crash,
            ..Default::default()
        },
        |ed| {
            ed.set_clock(CLOCK);
            Ok(ed.set_value(DHCP, "Big", ValueType::BINARY, data)?
                != regf::edit::SetOutcome::Unchanged)
        },
    )
}

fn big_value(bytes: &[u8]) -> Option<Vec<u8>> {
    let hive = regf::Hive::open(bytes).unwrap();
    let key = hive.key(DHCP).unwrap()?;
    let v = key.value("Big").unwrap()?;
    Some(v.raw_data().unwrap().into_owned())
}

fn journal_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// hivexget's bytes of `Dhcp\Big` (it prints binary data as it is); `None` without hivex.
fn hivexget_big(hive: &Path) -> Option<Vec<u8>> {
    match Command::new("hivexget")
        .arg(hive)
        .arg(format!(r"\{DHCP}"))
        .arg("Big")
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            Some(o.stdout)
        }
        Err(_) => {
            assert!(!ci(), "hivexget is required in CI");
            None
        }
    }
}

/// reglookup finds `Dhcp\Big` as REG_BINARY of `len` bytes and reports no error.
fn reglookup_sees_big(hive: &Path, len: usize) {
    let o = match Command::new("reglookup")
        .args(["-p", "/ControlSet001/Services/Dhcp/Big"])
        .arg(hive)
        .output()
    {
        Ok(o) => o,
        Err(_) => return assert!(!ci(), "reglookup is required in CI"),
    };
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !err.contains("ERROR"),
        "reglookup: {err}"
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let row = text
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("/controlset001/services/dhcp/big,")
        })
        .unwrap_or_else(|| panic!("reglookup does not list the value: {text:.300}"));
    let mut cols = row.split(',');
    let (_, ty, data) = (cols.next(), cols.next(), cols.next().unwrap_or(""));
    assert_eq!(ty, Some("BINARY"));
    // reglookup writes bytes outside printable ASCII (and its separators) as %XX.
    let (mut n, mut i) = (0, 0);
    let b = data.as_bytes();
    while i < b.len() {
        i += if b[i] == b'%' { 3 } else { 1 };
        n += 1;
    }
    assert_eq!(n, len, "reglookup's data length");
}

#[test]
fn a_1mib_value_grows_a_hive_file_in_place_and_undo_truncates_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    let original = std::fs::read(&hive).unwrap();
    let before = std::fs::metadata(&hive).unwrap();
    let data = pattern(1 << 20);

    let out = add_big(&hive, &data, CrashAfter(None)).unwrap();
    let grown = std::fs::read(&hive).unwrap();
    assert!(grown.len() > original.len() + (1 << 20), "{}", grown.len());
    assert_eq!(grown.len() % regf::edit::FILE_GROW_STEP, 0);
    assert!(grown[..original.len()] != original[..]);
    assert_eq!(big_value(&grown).as_deref(), Some(&data[..]));
    assert!(regf::check::check(&grown).is_sound());
    // Written in place: the same file (inode, mode, owner), only longer.
    let after = std::fs::metadata(&hive).unwrap();
    assert_eq!(
        (after.ino(), after.mode(), after.uid(), after.nlink()),
        (before.ino(), before.mode(), before.uid(), before.nlink())
    );
    if let Some(got) = hivexget_big(&hive) {
        assert!(got == data, "hivexget reads other bytes");
    }
    reglookup_sees_big(&hive, data.len());

    // The journal records both lengths, and is the format that older versions refuse.
    let written = out.written.unwrap();
    let j = journal_json(&written.undo_journal);
    assert_eq!(j["format"], "winrescue-journal/3");
    assert_eq!(j["devices"][0]["file_len"], original.len() as u64);
    assert_eq!(j["devices"][0]["grown_len"], grown.len() as u64);

    journal::undo(&written.undo_journal, false).unwrap();
    let back = std::fs::read(&hive).unwrap();
    assert_eq!(
        back.len(),
        original.len(),
        "undo truncates to the old length"
    );
    assert!(back == original, "undo gives the original file back");
    assert_eq!(std::fs::metadata(&hive).unwrap().ino(), before.ino());
    // A second undo finds nothing to do.
    assert!(journal::undo(&written.undo_journal, false).unwrap().already);
    assert!(std::fs::read(&hive).unwrap() == original);
}

#[test]
fn growth_within_the_slack_keeps_the_file_length_and_the_journal_format() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    // The win7 hive ends at its last bin; Windows 8.1 and later keep up to 256 KiB of zeros
    // after it (see regf::edit): give it that slack.
    let f = std::fs::OpenOptions::new().write(true).open(&hive).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + regf::edit::FILE_GROW_STEP as u64).unwrap();
    drop(f);
    let original = std::fs::read(&hive).unwrap();
    let data = pattern(64 * 1024);
    let out = add_big(&hive, &data, CrashAfter(None)).unwrap();
    let now = std::fs::read(&hive).unwrap();
    assert_eq!(now.len(), original.len(), "the slack was enough");
    assert_eq!(big_value(&now).as_deref(), Some(&data[..]));
    let base = regf::BaseBlock::parse(&now).unwrap();
    assert!(
        4096 + base.hive_bins_size as usize > len as usize,
        "bins were appended"
    );
    let written = out.written.unwrap();
    let j = journal_json(&written.undo_journal);
    assert_eq!(j["format"], "winrescue-journal/2");
    assert!(j["devices"][0].get("grown_len").is_none());
    if let Some(got) = hivexget_big(&hive) {
        assert!(got == data);
    }
    journal::undo(&written.undo_journal, false).unwrap();
    assert!(std::fs::read(&hive).unwrap() == original);
}

/// Crash after every range of a write that grows the file, then undo or redo: the original
/// file (length included) or the grown one, byte for byte.
fn crash_everywhere(data: &[u8], points: impl Fn(usize) -> Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let pristine = copy(dir.path(), "hives/win7-SYSTEM", "pristine");
    let original = std::fs::read(&pristine).unwrap();
    let full = dir.path().join("full");
    std::fs::copy(&pristine, &full).unwrap();
    let n = add_big(&full, data, CrashAfter(None)).unwrap().ranges.len();
    let grown = std::fs::read(&full).unwrap();
    assert!(grown.len() > original.len());
    for k in points(n) {
        for redo in [false, true] {
            let hive = dir.path().join(format!("SYSTEM-{k}-{redo}"));
            std::fs::copy(&pristine, &hive).unwrap();
            let e = add_big(&hive, data, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let len = std::fs::metadata(&hive).unwrap().len();
            assert!(
                len == original.len() as u64 || len == grown.len() as u64,
                "crash after {k}: {len} bytes"
            );
            let pending = journal::pending_path(&hive);
            journal::undo(&pending, redo).unwrap();
            assert!(!pending.exists());
            let now = std::fs::read(&hive).unwrap();
            let want = if redo { &grown } else { &original };
            assert_eq!(
                now.len(),
                want.len(),
                "crash after {k}, redo {redo}: length"
            );
            assert!(now == *want, "crash after {k}, redo {redo}: bytes");
        }
    }
}

#[test]
fn every_crash_point_of_a_growing_write_ends_in_the_original_or_the_grown_file() {
    // 64 KiB: the file grows (the win7 hive has no slack) in a few dozen ranges, each a crash
    // point.
    crash_everywhere(&pattern(64 * 1024), |n| (0..=n).collect());
}

#[test]
fn every_crash_point_while_a_1mib_value_grows_the_file_ends_in_the_original_or_the_grown_file() {
    // Some 265 ranges: the old pages, every page the file grows by, the base block, the flush.
    crash_everywhere(&pattern(1 << 20), |n| (0..=n).collect());
}

#[test]
fn undo_of_a_grown_file_refuses_when_its_length_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy(dir.path(), "hives/win7-SYSTEM", "SYSTEM");
    let out = add_big(&hive, &pattern(64 * 1024), CrashAfter(None)).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&hive).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + 4096).unwrap();
    drop(f);
    let before = std::fs::read(&hive).unwrap();
    let e = journal::undo(&out.written.unwrap().undo_journal, false).unwrap_err();
    assert!(e.to_string().contains("changed size"), "{e}");
    assert!(
        std::fs::read(&hive).unwrap() == before,
        "nothing was changed"
    );
}

/// An undo of a grown file cut short anywhere (before the truncation included), then resolved
/// either way: the original file or the grown one, length included.
#[test]
fn every_crash_point_of_an_undo_of_a_grown_file_ends_in_the_original_or_the_grown_file() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = copy(dir.path(), "hives/win7-SYSTEM", "pristine");
    let original = std::fs::read(&pristine).unwrap();
    let data = pattern(64 * 1024);
    let full = dir.path().join("full");
    std::fs::copy(&pristine, &full).unwrap();
    let n = add_big(&full, &data, CrashAfter(None))
        .unwrap()
        .ranges
        .len();
    let grown = std::fs::read(&full).unwrap();
    for k in 0..=n {
        for redo in [false, true] {
            let hive = dir.path().join(format!("undo-{k}-{redo}"));
            std::fs::copy(&pristine, &hive).unwrap();
            let w = add_big(&hive, &data, CrashAfter(None))
                .unwrap()
                .written
                .unwrap();
            let e = journal::undo_with(&w.undo_journal, false, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let pending = journal::pending_path(&hive);
            journal::undo(&pending, redo).unwrap();
            assert!(!pending.exists());
            let now = std::fs::read(&hive).unwrap();
            let want = if redo { &grown } else { &original };
            assert_eq!(now.len(), want.len(), "undo cut after {k}, redo {redo}");
            assert!(now == *want, "undo cut after {k}, redo {redo}: bytes");
        }
    }
}

/// A folder target's hive file grows the same way, and its journal is the folder's.
#[test]
fn a_hive_in_a_folder_target_grows_and_undo_truncates_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("Windows/System32/config");
    std::fs::create_dir_all(&cfg).unwrap();
    let hive = copy(&cfg, "hives/win7-SYSTEM", "SYSTEM");
    let original = std::fs::read(&hive).unwrap();
    let data = pattern(64 * 1024);
    let out = add_big(dir.path(), &data, CrashAfter(None)).unwrap();
    let grown = std::fs::read(&hive).unwrap();
    assert!(grown.len() > original.len());
    assert_eq!(big_value(&grown).as_deref(), Some(&data[..]));
    if let Some(got) = hivexget_big(&hive) {
        assert!(got == data);
    }
    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert!(std::fs::read(&hive).unwrap() == original);
}
