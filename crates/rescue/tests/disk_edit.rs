//! Reading and editing the SYSTEM hive inside Windows-like disk images, through the undo
//! journal, checked with ntfs-3g's tools and hivex; crash at every step, then undo or redo.

use std::path::{Path, PathBuf};
use std::process::Command;

use regf::ValueType;
use rescue::edit::{edit_system_hive, EditOptions};
use rescue::journal::{self, CrashAfter};
use rescue::target::{Target, TargetKind};

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// A private copy of a committed disk fixture, with the journal folder beside it.
fn copy_image(dir: &Path, fixture: &str) -> PathBuf {
    let p = dir.join(Path::new(fixture).file_name().unwrap());
    std::fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

fn start_dword(bytes: &[u8], cs: &str) -> u32 {
    let hive = regf::Hive::open(bytes).unwrap();
    let v = hive
        .key(&format!(r"{cs}\Services\Dhcp"))
        .unwrap()
        .unwrap()
        .value("Start")
        .unwrap()
        .unwrap();
    v.data().unwrap().as_u64().unwrap() as u32
}

fn set_start(
    image: &Path,
    value: u32,
    crash: CrashAfter,
) -> rescue::Result<rescue::edit::EditOutcome> {
    edit_system_hive(
        image,
        EditOptions {
            crash,
            ..Default::default()
        },
        |ed| {
            let mut changed = false;
            for cs in ["ControlSet001", "ControlSet002"] {
                let key = format!(r"{cs}\Services\Dhcp");
                if ed.hive()?.key(&key)?.is_none() {
                    continue;
                }
                changed |= ed.set_value(&key, "Start", ValueType::DWORD, &value.to_le_bytes())?
                    != regf::edit::SetOutcome::Unchanged;
            }
            Ok(changed)
        },
    )
}

#[test]
fn gen2_gpt_image_reads_the_real_hive() {
    let t = Target::open(fixtures::path("images/gen2-gpt-win7-system.raw"), false).unwrap();
    assert_eq!(t.kind(), TargetKind::Disk);
    assert_eq!(t.installs().len(), 1);
    let install = t.choose(None).unwrap().clone();
    let hive = t.system_hive(&install).unwrap();
    assert!(hive.on_disk == fixtures::bytes("hives/win7-SYSTEM"));
    assert!(!hive.recovered.report.was_dirty);
    assert_eq!(
        t.file_exists(&install, r"windows\system32\winevt\logs\SYSTEM.EVTX"),
        Some(true)
    );
    assert_eq!(
        t.file_exists(&install, r"Windows\System32\dhcpcore.dll"),
        Some(false)
    );
}

#[test]
fn gen1_mbr_image_replays_the_dirty_hive_from_its_logs() {
    let t = Target::open(
        fixtures::path("images/gen1-mbr-win10-dirty-system.raw"),
        false,
    )
    .unwrap();
    let install = t.choose(None).unwrap().clone();
    assert_eq!(
        install.partition,
        Some(2),
        "the System Reserved partition holds no Windows"
    );
    let hive = t.system_hive(&install).unwrap();
    assert_eq!(hive.logs.len(), 2);
    let r = &hive.recovered.report;
    assert_eq!(r.sequence_range, Some((2107, 2130)));
    assert_eq!(r.entries_applied, 24);
}

/// The volume and the hive after an edit, as ntfs-3g's tools see them.
fn ntfs_checks(image: &Path, partition_start: u64, expect_start: &str) {
    let loop_free = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output();
    // ntfsfix and ntfscat take a device or file holding the volume: cut the partition out.
    let vol = image.with_extension("vol");
    let bytes = std::fs::read(image).unwrap();
    let len = bytes.len() as u64 - partition_start;
    std::fs::write(
        &vol,
        &bytes[partition_start as usize..(partition_start + len.min(45 << 20)) as usize],
    )
    .unwrap();
    match loop_free(&["ntfsfix", "-n", vol.to_str().unwrap()]) {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "ntfsfix -n: {text}{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Err(_) => assert!(!ci(), "ntfsfix is required in CI"),
    }
    match loop_free(&[
        "ntfscat",
        vol.to_str().unwrap(),
        "Windows/System32/config/SYSTEM",
    ]) {
        Ok(o) if o.status.success() => {
            let hive = vol.with_extension("hive");
            std::fs::write(&hive, &o.stdout).unwrap();
            if let Ok(o) = Command::new("hivexget")
                .arg(&hive)
                .arg(r"\ControlSet001\services\Dhcp")
                .arg("Start")
                .output()
            {
                assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), expect_start);
            } else {
                assert!(!ci(), "hivexget is required in CI");
            }
        }
        Ok(o) => panic!("ntfscat failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => assert!(!ci(), "ntfscat is required in CI"),
    }
}

#[test]
fn edit_in_place_then_undo_gives_the_original_image_back() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_image(dir.path(), "images/gen2-gpt-win7-system.raw");
    let original = std::fs::read(&image).unwrap();
    let out = set_start(&image, 4, CrashAfter(None)).unwrap();
    let written = out.written.clone().unwrap();
    assert!(out.pages <= 5, "{out:?}");
    let after = std::fs::read(&image).unwrap();
    assert_eq!(after.len(), original.len());
    // Only bytes inside the hive's clusters differ.
    let (install, on_disk) = {
        let t = Target::open(&image, false).unwrap();
        let install = t.choose(None).unwrap().clone();
        let hive = t.system_hive(&install).unwrap();
        (install, hive.on_disk)
    };
    assert_eq!(start_dword(&on_disk, "ControlSet001"), 4);
    assert_eq!(start_dword(&on_disk, "ControlSet002"), 4);
    let diff: Vec<usize> = (0..after.len())
        .filter(|&i| after[i] != original[i])
        .collect();
    assert!(!diff.is_empty());
    for &i in &diff {
        assert!(
            out.ranges
                .iter()
                .any(|&(o, l)| (i as u64) >= o && (i as u64) < o + l as u64),
            "byte 0x{i:x} changed outside the planned ranges"
        );
    }
    ntfs_checks(&image, install.partition_start.unwrap(), "4");

    // Applying the same change again writes nothing.
    let again = set_start(&image, 4, CrashAfter(None)).unwrap();
    assert!(again.written.is_none() && again.pages == 0, "{again:?}");
    assert!(std::fs::read(&image).unwrap() == after);

    let undone = journal::undo(&written.undo_journal, false).unwrap();
    assert!(!undone.redo);
    assert!(
        std::fs::read(&image).unwrap() == original,
        "undo gives back the original image, byte for byte"
    );
    ntfs_checks(&image, install.partition_start.unwrap(), "2");
    // Undoing twice changes nothing and says so.
    let again = journal::undo(&written.undo_journal, false).unwrap();
    assert!(again.already);
    assert!(std::fs::read(&image).unwrap() == original);
}

#[test]
fn every_crash_point_ends_in_the_original_or_the_repaired_image() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = copy_image(dir.path(), "images/gen2-gpt-win7-system.raw");
    let original = std::fs::read(&pristine).unwrap();
    // The fully repaired image, for comparison.
    let full = dir.path().join("full.raw");
    std::fs::copy(&pristine, &full).unwrap();
    let out = set_start(&full, 4, CrashAfter(None)).unwrap();
    let n = out.ranges.len();
    assert!(n >= 2);
    let repaired = std::fs::read(&full).unwrap();
    // The clock differs between runs: compare the Start values and all bytes outside the
    // base block and touched keys through the hive, and the rest of the disk byte for byte.
    for k in 0..=n {
        for redo in [false, true] {
            let img = dir.path().join(format!("crash-{k}-{redo}.raw"));
            std::fs::copy(&pristine, &img).unwrap();
            let e = set_start(&img, 4, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let pending = journal::pending_path(&img);
            assert!(pending.exists());
            // The next write is refused until the interrupted one is resolved.
            let refused = set_start(&img, 2, CrashAfter(None)).unwrap_err();
            assert!(
                matches!(refused, rescue::Error::Interrupted { .. }),
                "{refused}"
            );
            journal::undo(&pending, redo).unwrap();
            assert!(!pending.exists());
            let now = std::fs::read(&img).unwrap();
            if redo {
                let t = Target::open(&img, false).unwrap();
                let hive = t.system_hive(&t.choose(None).unwrap().clone()).unwrap();
                assert_eq!(start_dword(&hive.on_disk, "ControlSet001"), 4);
                assert_eq!(start_dword(&hive.on_disk, "ControlSet002"), 4);
                assert!(regf::check::check(&hive.on_disk).is_sound());
                assert_eq!(now.len(), repaired.len());
            } else {
                assert!(
                    now == original,
                    "crash after {k} ranges, undo: not the original"
                );
            }
        }
    }
}

#[test]
fn vhd_and_vhdx_copies_edit_and_undo_bit_for_bit() {
    let Ok(o) = Command::new("qemu-img").arg("--version").output() else {
        assert!(!ci(), "qemu-img is required in CI");
        return;
    };
    assert!(o.status.success());
    let dir = tempfile::tempdir().unwrap();
    let raw = fixtures::path("images/gen2-gpt-win7-system.raw");
    for (fmt, opts, name) in [
        ("vpc", "subformat=fixed", "disk-fixed.vhd"),
        ("vpc", "subformat=dynamic", "disk-dynamic.vhd"),
        (
            "vhdx",
            "subformat=dynamic,block_state_zero=off",
            "disk.vhdx",
        ),
    ] {
        let img = dir.path().join(name);
        let st = Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", fmt, "-o", opts])
            .arg(&raw)
            .arg(&img)
            .status()
            .unwrap();
        assert!(st.success());
        let original = std::fs::read(&img).unwrap();
        let out = set_start(&img, 4, CrashAfter(None)).unwrap();
        {
            let t = Target::open(&img, false).unwrap();
            let hive = t.system_hive(&t.choose(None).unwrap().clone()).unwrap();
            assert_eq!(start_dword(&hive.on_disk, "ControlSet001"), 4, "{name}");
        }
        // qemu reads the change too.
        let back = dir.path().join(format!("{name}.raw"));
        let st = Command::new("qemu-img")
            .args(["convert", "-f", fmt, "-O", "raw"])
            .arg(&img)
            .arg(&back)
            .status()
            .unwrap();
        assert!(st.success());
        let raw_after = std::fs::read(&back).unwrap();
        let raw_before = std::fs::read(&raw).unwrap();
        // qemu may round a VHD's size up to its CHS geometry: the extra bytes are zeros.
        let n = raw_before.len().min(raw_after.len());
        assert!(raw_after[n..].iter().all(|&b| b == 0));
        let diff = (0..n).filter(|&i| raw_after[i] != raw_before[i]).count();
        assert!(diff > 0 && diff < 20_000, "{name}: {diff} bytes differ");
        journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
        assert!(
            std::fs::read(&img).unwrap() == original,
            "{name}: undo is not bit for bit"
        );
    }
}

#[test]
fn hive_file_and_folder_targets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("Windows/System32/config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::copy(
        fixtures::path("hives/win10-dirty-SYSTEM"),
        cfg.join("SYSTEM"),
    )
    .unwrap();
    std::fs::copy(
        fixtures::path("hives/win10-dirty-SYSTEM.LOG1"),
        cfg.join("SYSTEM.LOG1"),
    )
    .unwrap();
    std::fs::copy(
        fixtures::path("hives/win10-dirty-SYSTEM.LOG2"),
        cfg.join("SYSTEM.LOG2"),
    )
    .unwrap();
    let out = set_start(dir.path(), 3, CrashAfter(None)).unwrap();
    let bytes = std::fs::read(cfg.join("SYSTEM")).unwrap();
    assert_eq!(start_dword(&bytes, "ControlSet001"), 3);
    let base = regf::BaseBlock::parse(&bytes).unwrap();
    assert!(!base.is_dirty() && base.primary_sequence > 2130);
    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert!(
        std::fs::read(cfg.join("SYSTEM")).unwrap() == fixtures::bytes("hives/win10-dirty-SYSTEM")
    );

    // A dirty hive without logs is refused unless allowed.
    let lone = dir.path().join("SYSTEM81");
    std::fs::copy(fixtures::path("hives/win81-dirty-nologs-SYSTEM"), &lone).unwrap();
    let e = set_start(&lone, 2, CrashAfter(None)).unwrap_err();
    assert!(matches!(e, rescue::Error::IncompleteHive { .. }), "{e}");
}

#[test]
fn a_hive_file_cut_short_anywhere_ends_original_or_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    std::fs::copy(fixtures::path("hives/win7-SYSTEM"), &pristine).unwrap();
    let original = std::fs::read(&pristine).unwrap();
    let n = {
        let full = dir.path().join("full");
        std::fs::copy(&pristine, &full).unwrap();
        set_start(&full, 4, CrashAfter(None)).unwrap().ranges.len()
    };
    for k in 0..=n {
        for redo in [false, true] {
            let hive = dir.path().join(format!("SYSTEM-{k}-{redo}"));
            std::fs::copy(&pristine, &hive).unwrap();
            let e = set_start(&hive, 4, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let pending = journal::pending_path(&hive);
            journal::undo(&pending, redo).unwrap();
            assert!(!pending.exists());
            let bytes = std::fs::read(&hive).unwrap();
            if redo {
                assert_eq!(start_dword(&bytes, "ControlSet001"), 4);
                assert!(regf::check::check(&bytes).is_sound());
                assert_eq!(bytes.len(), original.len());
            } else {
                assert!(
                    bytes == original,
                    "crash after {k} ranges, undo: not the original"
                );
            }
        }
    }
}

/// An interrupted undo leaves a pending journal like an interrupted write: resolving it either
/// way ends in the original or the repaired image, never a mix.
#[test]
fn every_crash_point_of_an_undo_ends_in_the_original_or_the_repaired_image() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = copy_image(dir.path(), "images/gen2-gpt-win7-system.raw");
    let original = std::fs::read(&pristine).unwrap();
    let first = dir.path().join("first.raw");
    std::fs::copy(&pristine, &first).unwrap();
    let written = set_start(&first, 4, CrashAfter(None))
        .unwrap()
        .written
        .unwrap();
    let n = written.ranges;
    let repaired = std::fs::read(&first).unwrap();
    for k in 0..=n {
        for redo in [false, true] {
            // A journal names its image (and a copied journal would not be obeyed for another
            // one), so each case repairs its own copy and undoes that with a crash.
            let img = dir.path().join(format!("undo-{k}-{redo}.raw"));
            std::fs::copy(&pristine, &img).unwrap();
            let w = set_start(&img, 4, CrashAfter(None))
                .unwrap()
                .written
                .unwrap();
            let e = journal::undo_with(&w.undo_journal, false, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let pending = journal::pending_path(&img);
            assert!(
                pending.exists(),
                "an interrupted undo leaves a pending journal"
            );
            // Nothing else may be written until it is resolved; the journal being undone is
            // refused too, naming the pending one.
            assert!(matches!(
                set_start(&img, 2, CrashAfter(None)).unwrap_err(),
                rescue::Error::Interrupted { .. }
            ));
            assert!(matches!(
                journal::undo(&w.undo_journal, false).unwrap_err(),
                rescue::Error::Interrupted { .. }
            ));
            journal::undo(&pending, redo).unwrap();
            assert!(!pending.exists());
            let now = std::fs::read(&img).unwrap();
            if redo {
                let t = Target::open(&img, false).unwrap();
                let hive = t.system_hive(&t.choose(None).unwrap().clone()).unwrap();
                assert_eq!(start_dword(&hive.on_disk, "ControlSet001"), 4);
                assert!(regf::check::check(&hive.on_disk).is_sound());
                assert_eq!(now.len(), repaired.len());
            } else {
                assert!(
                    now == original,
                    "undo cut after {k} ranges, then undone: not the original"
                );
                // The journal the undo started from now says so.
                assert!(journal::undo(&w.undo_journal, false).unwrap().already);
            }
        }
    }
}

/// The hive's base block is the last range written: cut short just before it, the disk still
/// holds the old base block (not a "clean, newest" one over half-written pages).
#[test]
fn the_base_block_is_written_last() {
    let dir = tempfile::tempdir().unwrap();
    let img = copy_image(dir.path(), "images/gen2-gpt-win7-system.raw");
    let seq_before = {
        let t = Target::open(&img, false).unwrap();
        let h = t.system_hive(&t.choose(None).unwrap().clone()).unwrap();
        regf::BaseBlock::parse(&h.on_disk).unwrap().primary_sequence
    };
    let full = dir.path().join("probe.raw");
    std::fs::copy(&img, &full).unwrap();
    let n = set_start(&full, 4, CrashAfter(None)).unwrap().ranges.len();
    set_start(&img, 4, CrashAfter(Some(n - 1))).unwrap_err();
    let t = Target::open(&img, false).unwrap();
    let h = t.system_hive(&t.choose(None).unwrap().clone()).unwrap();
    assert_eq!(
        regf::BaseBlock::parse(&h.on_disk).unwrap().primary_sequence,
        seq_before
    );
    drop(t);
    journal::undo(&journal::pending_path(&img), false).unwrap();
}

/// A dirty hive inside a disk image: the write puts the replayed pages and the edit into the
/// primary file, clean, with a sequence number above every log entry, so Windows ignores the
/// (now stale) logs; ntfs-3g still finds the volume clean.
#[test]
fn dirty_hive_in_a_disk_image_is_written_recovered_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let img = copy_image(dir.path(), "images/gen1-mbr-win10-dirty-system.raw");
    let original = std::fs::read(&img).unwrap();
    let out = set_start(&img, 3, CrashAfter(None)).unwrap();
    assert!(
        out.pages > 100,
        "the replayed pages are written too: {}",
        out.pages
    );
    let (start, on_disk, report) = {
        let t = Target::open(&img, false).unwrap();
        let install = t.choose(None).unwrap().clone();
        let h = t.system_hive(&install).unwrap();
        (
            install.partition_start.unwrap(),
            h.on_disk,
            h.recovered.report,
        )
    };
    let base = regf::BaseBlock::parse(&on_disk).unwrap();
    assert!(!base.is_dirty() && base.primary_sequence > 2130);
    assert!(!report.was_dirty, "the logs are not needed any more");
    assert_eq!(start_dword(&on_disk, "ControlSet001"), 3);
    let hive = regf::Hive::open(&on_disk[..]).unwrap();
    let (mut keys, mut values) = (0, 0);
    hive.walk(
        |_, k| {
            keys += 1;
            values += k.value_count();
        },
        |p, e| panic!("{p}: {e}"),
    )
    .unwrap();
    assert_eq!((keys, values), (35595, 78901));
    ntfs_checks(&img, start, "3");
    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert!(std::fs::read(&img).unwrap() == original);
}

/// Growth is allowed in every transaction: an edit that fits in the hive's free cells still
/// writes only inside the file's clusters, the file keeps its length, and ntfs-3g finds the
/// volume clean.
#[test]
fn a_new_value_that_fits_in_free_cells_is_written_inside_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_image(dir.path(), "images/gen2-gpt-win7-system.raw");
    let original = std::fs::read(&image).unwrap();
    let data: Vec<u8> = (0..2048u32).map(|i| (i * 31 % 251) as u8).collect();
    let out = edit_system_hive(&image, EditOptions::default(), |ed| {
        Ok(ed.set_value(
            r"ControlSet001\Services\Dhcp",
            "Note",
            ValueType::BINARY,
            &data,
        )? != regf::edit::SetOutcome::Unchanged)
    })
    .unwrap();
    let after = std::fs::read(&image).unwrap();
    assert_eq!(after.len(), original.len());
    let t = Target::open(&image, false).unwrap();
    let install = t.choose(None).unwrap().clone();
    let hive = t.system_hive(&install).unwrap();
    assert_eq!(
        hive.on_disk.len(),
        fixtures::bytes("hives/win7-SYSTEM").len()
    );
    let h = regf::Hive::open(&hive.on_disk[..]).unwrap();
    let v = h
        .key(r"ControlSet001\Services\Dhcp")
        .unwrap()
        .unwrap()
        .value("Note")
        .unwrap()
        .unwrap();
    assert!(v.raw_data().unwrap()[..] == data[..]);
    // The reader holds a shared lock on the image: let it go before undo writes.
    drop(t);
    for i in (0..after.len()).filter(|&i| after[i] != original[i]) {
        assert!(
            out.ranges
                .iter()
                .any(|&(o, l)| (i as u64) >= o && (i as u64) < o + l as u64),
            "byte 0x{i:x} changed outside the planned ranges"
        );
    }
    ntfs_checks(&image, install.partition_start.unwrap(), "2");
    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert!(std::fs::read(&image).unwrap() == original);
}
