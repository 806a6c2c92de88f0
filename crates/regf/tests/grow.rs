//! Growth: the editor appends hive bins when the caller allows it, within the file length it
//! allows. Proven on the real hives with the structural checker and independent readers (hivex,
//! reglookup, libregf's regfexport); hivex also makes the inputs (a deleted service key, a key
//! with more subkeys than one leaf holds), so they do not come from winrescue's own writer.

use std::path::Path;
use std::process::{Command, Output};

use regf::check::check;
use regf::edit::{Edited, Editor, FILE_GROW_STEP, PAGE};
use regf::log::{replay, LogInput};
use regf::{Hive, ValueType};

/// A FILETIME pinned so that results are reproducible.
const CLOCK: u64 = 133_000_000_000_000_000;
/// The root key hivexregedit gives a SYSTEM hive in .reg files.
const PREFIX: &str = r"HKEY_LOCAL_MACHINE\SYSTEM";
const MIB: u64 = 1024 * 1024;

fn win10_replayed() -> (Vec<u8>, u32) {
    let (h, l1, l2) = (
        fixtures::bytes("hives/win10-dirty-SYSTEM"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2"),
    );
    let logs = [
        LogInput {
            name: "LOG1",
            data: &l1,
        },
        LogInput {
            name: "LOG2",
            data: &l2,
        },
    ];
    let r = replay(&h, &logs).unwrap();
    (r.bytes, r.report.next_sequence)
}

fn hive_bins_size(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize
}

/// Bytes of the file after its last hive bin.
fn slack(bytes: &[u8]) -> usize {
    bytes.len() - 4096 - hive_bins_size(bytes)
}

fn largest_free_cell(bytes: &[u8]) -> usize {
    let end = 4096 + hive_bins_size(bytes);
    let mut largest = 0;
    let mut bin = 4096;
    while bin < end {
        let size = u32::from_le_bytes(bytes[bin + 8..bin + 12].try_into().unwrap()) as usize;
        let mut c = bin + 32;
        while c < bin + size {
            let s = i32::from_le_bytes(bytes[c..c + 4].try_into().unwrap());
            if s > 0 {
                largest = largest.max(s as usize);
            }
            c += s.unsigned_abs() as usize;
        }
        bin += size;
    }
    largest
}

/// Runs an oracle tool; `None` when it is not installed (a failure in CI).
fn run(cmd: &mut Command) -> Option<Output> {
    match cmd.output() {
        Ok(o) => Some(o),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{:?} is required in CI",
                cmd.get_program()
            );
            None
        }
    }
}

fn ok_stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `hivexregedit --export` of one key and its subtree.
fn export(file: &Path, key: &str) -> Option<String> {
    run(Command::new("hivexregedit")
        .arg("--export")
        .arg("--prefix")
        .arg(PREFIX)
        .arg(file)
        .arg(format!(r"\{key}")))
    .map(|o| ok_stdout(&o))
}

/// `hivexregedit --merge` of a .reg body into a copy of `bytes`.
fn hivex_merge(dir: &Path, bytes: &[u8], reg_body: &str) -> Option<Vec<u8>> {
    let hive = dir.join("merged");
    let reg = dir.join("merge.reg");
    std::fs::write(&hive, bytes).unwrap();
    std::fs::write(
        &reg,
        format!("Windows Registry Editor Version 5.00\n\n{reg_body}\n"),
    )
    .unwrap();
    let o = run(Command::new("hivexregedit")
        .arg("--merge")
        .arg("--prefix")
        .arg(PREFIX)
        .arg(&hive)
        .arg(&reg))?;
    ok_stdout(&o);
    Some(std::fs::read(&hive).unwrap())
}

/// reglookup and regfexport read the whole hive without an error; returns regfexport's number
/// of keys.
fn whole_hive_readers_agree(file: &Path) -> Option<usize> {
    if let Some(o) = run(Command::new("reglookup").arg(file)) {
        let text = ok_stdout(&o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("ERROR"), "reglookup: {err}");
        assert!(text.lines().count() > 1000);
    }
    let o = run(Command::new("regfexport").arg(file))?;
    let text = ok_stdout(&o);
    Some(text.lines().filter(|l| l.starts_with("Key path:")).count())
}

/// The checker finds nothing wrong and no leaked cell; the page list covers every difference,
/// the appended bins and the new tail; the length follows Windows' rule.
fn sound_result(input: &[u8], out: &Edited) {
    let report = check(&out.bytes);
    assert!(report.is_sound(), "{:?}", report.errors().next());
    assert_eq!(report.stats.leaked_cells, 0);
    assert_eq!(out.hive_bins_size as usize, hive_bins_size(&out.bytes));
    let new_end = 4096 + out.hive_bins_size as usize;
    if new_end <= input.len() {
        assert_eq!(out.bytes.len(), input.len(), "growth within the slack");
        assert_eq!(out.grown_by, 0);
    } else {
        assert_eq!(out.bytes.len(), new_end.next_multiple_of(FILE_GROW_STEP));
        assert_eq!(out.grown_by as usize, out.bytes.len() - input.len());
    }
    let must: Vec<u64> = regf::edit::changed_pages(input, &out.bytes);
    for p in &must {
        assert!(
            out.changed_pages.contains(p),
            "page 0x{p:x} differs, not listed"
        );
    }
    let old_end = 4096 + hive_bins_size(input);
    for p in (old_end..out.bytes.len().max(new_end)).step_by(PAGE) {
        if p < new_end || p >= input.len() {
            assert!(
                out.changed_pages.contains(&(p as u64)),
                "appended page 0x{p:x}"
            );
        }
    }
    assert!(out.changed_pages.windows(2).all(|w| w[0] < w[1]));
}

fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn slack_after_the_hive_bins_of_the_real_hives() {
    // Windows sizes a primary file to its hive-bins end rounded up to 256 KiB: the Windows 8.1
    // and 10 files keep that slack; the Windows 7 copy was cut at its last bin.
    let win7 = fixtures::bytes("hives/win7-SYSTEM");
    let win81 = fixtures::bytes("hives/win81-dirty-nologs-SYSTEM");
    let win10 = fixtures::bytes("hives/win10-dirty-SYSTEM");
    let (win10r, _) = win10_replayed();
    assert_eq!(slack(&win7), 0);
    assert_eq!(slack(&win81), 229_376);
    assert_eq!(slack(&win10), 442_368);
    // Log replay appended bins (the logs' hive-bins size is larger): less slack is left.
    assert_eq!(slack(&win10r), 249_856);
    for b in [&win81, &win10, &win10r] {
        assert_eq!(b.len() % FILE_GROW_STEP, 0);
        assert!(b[4096 + hive_bins_size(b)..].iter().all(|&x| x == 0));
    }
}

/// The whole subtree of `key`: (path relative to it, values as (name, type, data)).
type Tree = Vec<(String, Vec<(String, u32, Vec<u8>)>)>;

fn subtree(bytes: &[u8], key: &str) -> Tree {
    let hive = Hive::open(bytes).unwrap();
    let start = hive.key(key).unwrap().unwrap();
    let mut out = Vec::new();
    regf::walk_from(&start, |p, k| {
        let k = k.unwrap();
        let values = k
            .values()
            .unwrap()
            .map(|v| {
                let v = v.unwrap();
                (
                    v.name().to_string(),
                    v.value_type().0,
                    v.raw_data().unwrap().into_owned(),
                )
            })
            .collect();
        out.push((p.to_string(), values));
    });
    out
}

/// hivex deletes the Dhcp service; the editor, allowed to grow, re-creates it from the
/// original's keys and values; hivex exports it exactly as before.
fn dhcp_recreated(original: Vec<u8>, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let orig_file = temp_file(dir.path(), "original", &original);
    let Some(before) = export(&orig_file, key) else {
        return;
    };
    let Some(deleted) = hivex_merge(dir.path(), &original, &format!("[-{PREFIX}\\{key}]\n")) else {
        return;
    };
    assert!(Hive::open(&deleted[..])
        .unwrap()
        .key(key)
        .unwrap()
        .is_none());
    let tree = subtree(&original, key);
    assert!(tree.len() > 5);

    let mut ed = Editor::new(deleted.clone(), 0).unwrap();
    ed.set_clock(CLOCK);
    ed.allow_growth(deleted.len() as u64 + 16 * MIB);
    // The key itself, then a copy under a new name: the cells hivex freed hold the first, the
    // copy needs new bins (the services list moves, every record is new).
    let copy = format!("{key}WinrescueCopy");
    for top in [key, &copy[..]] {
        for (rel, values) in &tree {
            let path = if rel.is_empty() {
                top.to_string()
            } else {
                format!(r"{top}\{rel}")
            };
            assert!(ed.create_key(&path).unwrap(), "{path}");
            for (name, t, data) in values {
                ed.set_value(&path, name, ValueType(*t), data).unwrap();
            }
        }
    }
    let out = ed.finish().unwrap();
    eprintln!(
        "{key}: hive bins 0x{:x} -> 0x{:x}, file grown by {}",
        hive_bins_size(&deleted),
        out.hive_bins_size,
        out.grown_by
    );
    assert!(out.hive_bins_size as usize > hive_bins_size(&deleted));
    sound_result(&deleted, &out);
    assert_eq!(subtree(&out.bytes, key), tree);
    assert_eq!(subtree(&out.bytes, &copy), tree);

    let file = temp_file(dir.path(), "recreated", &out.bytes);
    assert_eq!(export(&file, key).unwrap(), before);
    let name = key.rsplit('\\').next().unwrap();
    assert_eq!(
        export(&file, &copy).unwrap(),
        before
            .replace(&format!("\\{name}]"), &format!("\\{name}WinrescueCopy]"))
            .replace(&format!("\\{name}\\"), &format!("\\{name}WinrescueCopy\\"))
    );
    let keys_before = whole_hive_readers_agree(&orig_file);
    let keys_after = whole_hive_readers_agree(&file);
    if let (Some(b), Some(a)) = (keys_before, keys_after) {
        assert_eq!(a, b + tree.len());
    }
}

#[test]
fn dhcp_deleted_by_hivex_is_recreated_whole_win7() {
    dhcp_recreated(
        fixtures::bytes("hives/win7-SYSTEM"),
        r"ControlSet001\services\Dhcp",
    );
}

#[test]
fn dhcp_deleted_by_hivex_is_recreated_whole_win10() {
    let (bytes, _) = win10_replayed();
    dhcp_recreated(bytes, r"ControlSet001\Services\Dhcp");
}

/// A value of `size` bytes, which no free cell of the hive holds: refused without growth,
/// within the slack when it fits there, written in new bins with a larger limit.
fn value_needs_growth(original: &[u8], min_seq: u32, key: &str, size: usize) {
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let name = format!("Winrescue {size}");
    assert!(largest_free_cell(original) < size.min(16_344));

    let mut ed = Editor::new(original.to_vec(), min_seq).unwrap();
    let e = ed
        .set_value(key, &name, ValueType::BINARY, &data)
        .unwrap_err();
    assert!(matches!(e, regf::Error::NoRoom { .. }), "{e}");
    assert!(ed.bytes() == original, "a refused edit changes nothing");

    let mut ed = Editor::new(original.to_vec(), min_seq).unwrap();
    ed.allow_growth(original.len() as u64);
    match ed.set_value(key, &name, ValueType::BINARY, &data) {
        Ok(_) => {
            let out = ed.finish().unwrap();
            eprintln!("{size} bytes fit in the slack of {}", slack(original));
            assert_eq!(out.bytes.len(), original.len(), "slack only");
            sound_result(original, &out);
        }
        Err(regf::Error::NoRoom { .. }) => {
            eprintln!(
                "{size} bytes do not fit in the slack of {}",
                slack(original)
            );
            assert!(ed.bytes() == original, "a refused edit changes nothing");
            assert!(slack(original) < size);
        }
        Err(e) => panic!("{e}"),
    }

    let mut ed = Editor::new(original.to_vec(), min_seq).unwrap();
    ed.set_clock(CLOCK);
    ed.allow_growth(original.len() as u64 + 8 * MIB);
    ed.set_value(key, &name, ValueType::BINARY, &data).unwrap();
    let out = ed.finish().unwrap();
    assert!(out.hive_bins_size as usize > hive_bins_size(original));
    sound_result(original, &out);
    {
        let hive = Hive::open(&out.bytes[..]).unwrap();
        let v = hive
            .key(key)
            .unwrap()
            .unwrap()
            .value(&name)
            .unwrap()
            .unwrap();
        assert_eq!(
            v.is_big(),
            size > 16_344 && hive.base_block().minor_version >= 4
        );
        assert!(*v.raw_data().unwrap() == data[..]);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(dir.path(), "grown", &out.bytes);
    if let Some(o) = run(Command::new("hivexget")
        .arg(&file)
        .arg(format!(r"\{key}"))
        .arg(&name))
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout == data, "hivexget returns the exact bytes");
    }
    if original.len() > 1 << 20 {
        whole_hive_readers_agree(&file);
    } else if let Some(o) = run(Command::new("regfexport").arg(&file)) {
        ok_stdout(&o);
    }
}

const SIZES: [usize; 3] = [6 * 1024, 20 * 1024, 1024 * 1024];

#[test]
fn values_of_6k_20k_1m_win7_no_slack() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    for size in SIZES {
        value_needs_growth(&original, 0, r"ControlSet001\services\Dhcp", size);
    }
}

#[test]
fn values_of_6k_20k_1m_win10_with_slack() {
    let (original, next) = win10_replayed();
    for size in SIZES {
        value_needs_growth(&original, next, r"ControlSet001\Services\Dhcp", size);
    }
}

#[test]
fn values_of_6k_20k_1m_in_a_version_1_3_hive_are_single_cells() {
    // BCD is a 1.3 hive: no big data, a large value is one cell in a bin of its own.
    let original = fixtures::bytes("hives/BCD");
    let key = {
        let hive = Hive::open(&original[..]).unwrap();
        assert_eq!(hive.base_block().minor_version, 3);
        let root = hive.root().unwrap();
        let first = root.subkeys().unwrap().next().unwrap().unwrap();
        first.name().to_string()
    };
    for size in SIZES {
        value_needs_growth(&original, 0, &key, size);
    }
}

#[test]
fn a_new_service_key_under_the_full_services_list() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let key = r"ControlSet001\services\WinrescueTest";
    // No slack in this file: the ~450-entry list cannot move without a longer file.
    let mut ed = Editor::new(original.clone(), 0).unwrap();
    ed.allow_growth(original.len() as u64);
    let e = ed.create_key(key).unwrap_err();
    assert!(matches!(e, regf::Error::NoRoom { .. }), "{e}");
    assert!(ed.bytes() == &original[..]);

    let mut ed = Editor::new(original.clone(), 0).unwrap();
    ed.allow_growth(original.len() as u64 + MIB);
    assert!(ed.create_key(key).unwrap());
    ed.set_value(key, "Start", ValueType::DWORD, &3u32.to_le_bytes())
        .unwrap();
    let out = ed.finish().unwrap();
    sound_result(&original, &out);
    // One 4 KiB bin held the moved list; the file takes Windows' 256 KiB step.
    assert_eq!(
        out.hive_bins_size as usize,
        hive_bins_size(&original) + 4096
    );
    assert_eq!(out.bytes.len() % FILE_GROW_STEP, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(dir.path(), "grown", &out.bytes);
    if let Some(o) = run(Command::new("hivexget")
        .arg(&file)
        .arg(format!(r"\{key}"))
        .arg("Start"))
    {
        assert_eq!(ok_stdout(&o).trim(), "3");
    }
    let n = whole_hive_readers_agree(&file);
    if let Some(n) = n {
        assert_eq!(n, 30757);
    }
}

#[test]
fn a_failed_edit_undoes_its_appended_bins() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let mut ed = Editor::new(original.clone(), 0).unwrap();
    // Room for a few 16 KiB segment bins but not for 1 MB: the first segments go into new bins,
    // then the edit fails and every bin goes away again.
    ed.allow_growth(original.len() as u64 + 200 * 1024);
    let big = vec![0x5Au8; 1 << 20];
    let e = ed
        .set_value(
            r"ControlSet001\services\Dhcp",
            "Big",
            ValueType::BINARY,
            &big,
        )
        .unwrap_err();
    assert!(matches!(e, regf::Error::NoRoom { .. }), "{e}");
    assert!(ed.bytes() == &original[..], "bytes and length restored");
    assert!(ed.changed_pages().is_empty(), "{:?}", ed.changed_pages());
    // The session goes on: a small edit still works and the result is the same length.
    ed.set_value(
        r"ControlSet001\services\Dhcp",
        "Start",
        ValueType::DWORD,
        &4u32.to_le_bytes(),
    )
    .unwrap();
    let out = ed.finish().unwrap();
    assert_eq!(out.bytes.len(), original.len());
    assert_eq!(out.grown_by, 0);
    assert_eq!(out.hive_bins_size as usize, hive_bins_size(&original));
    assert_eq!(
        out.changed_pages,
        regf::edit::changed_pages(&original, &out.bytes)
    );
}

/// hivex makes a key with more subkeys than one leaf may hold; adding one more through the
/// editor splits the leaf under an index root, which hivex and reglookup read.
#[test]
fn a_key_added_under_a_list_of_more_than_1012_entries_makes_an_index_root() {
    const N: usize = 1100;
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let dir = tempfile::tempdir().unwrap();
    let mut body = format!("[{PREFIX}\\WinrescueMany]\n\n");
    for i in 0..N {
        body.push_str(&format!("[{PREFIX}\\WinrescueMany\\K{i:04}]\n\n"));
    }
    let Some(many) = hivex_merge(dir.path(), &original, &body) else {
        return;
    };
    let mut ed = Editor::new(many.clone(), 0).unwrap();
    ed.set_clock(CLOCK);
    ed.allow_growth(many.len() as u64 + 4 * MIB);
    assert!(ed.create_key(r"WinrescueMany\K0550a").unwrap());
    assert!(ed.create_key(r"WinrescueMany\Zz last").unwrap());
    assert!(ed.create_key(r"WinrescueMany\A first").unwrap());
    // Into the index root, and out of it again.
    assert!(ed.delete_key(r"WinrescueMany\K0001").unwrap());
    let out = ed.finish().unwrap();
    sound_result(&many, &out);
    let total = N + 3 - 1;
    {
        let hive = Hive::open(&out.bytes[..]).unwrap();
        let k = hive.key("WinrescueMany").unwrap().unwrap();
        assert_eq!(k.subkey_count() as usize, total);
        let list = hive.bins().cell(k.subkey_list_cell()).unwrap();
        assert_eq!(&list[..2], b"ri");
        let leaves = u16::from_le_bytes([list[2], list[3]]) as usize;
        assert!(leaves >= 2);
        for i in 0..leaves {
            let off = u32::from_le_bytes(list[4 + 4 * i..8 + 4 * i].try_into().unwrap());
            let leaf = hive.bins().cell(off).unwrap();
            assert!(u16::from_le_bytes([leaf[2], leaf[3]]) as usize <= 1012);
        }
        let names: Vec<String> = k
            .subkeys()
            .unwrap()
            .map(|s| s.unwrap().name().to_string())
            .collect();
        assert_eq!(names.len(), total);
        assert_eq!(names[0], "A first");
        assert_eq!(names[total - 1], "Zz last");
        assert!(names.iter().any(|n| n == "K0550a"));
        assert!(!names.iter().any(|n| n == "K0001"));
    }
    let file = temp_file(dir.path(), "rooted", &out.bytes);
    if let Some(text) = export(&file, "WinrescueMany") {
        assert_eq!(
            text.lines().filter(|l| l.starts_with('[')).count(),
            total + 1
        );
        assert!(text.contains(r"\WinrescueMany\K0550a]"));
    }
    if let Some(o) = run(Command::new("reglookup")
        .arg("-p")
        .arg("/WinrescueMany")
        .arg("-t")
        .arg("KEY")
        .arg(&file))
    {
        let text = ok_stdout(&o);
        assert!(!String::from_utf8_lossy(&o.stderr).contains("ERROR"));
        // The key itself, its subkeys, and a header line.
        assert_eq!(
            text.lines().filter(|l| l.contains(",KEY,")).count(),
            total + 1
        );
    }
}
