//! The Windows-like disks of testdata/images (see its README.md): reading the real hives and logs
//! put in by ntfs-3g, and the in-place write path, checked by ntfs-3g's own tools.

mod common;

use std::path::Path;

use common::*;
use volume::{Error, Hibernation, Storage, Volume};

const HIVE: &str = r"Windows\System32\config\SYSTEM";

fn parts_checked(image: &Path) -> Vec<Part> {
    let parts = partitions(image);
    if let Some(sf) = sfdisk_partitions(image) {
        assert_eq!(
            parts, sf,
            "our partition parser disagrees with sfdisk --json"
        );
    }
    parts
}

#[test]
fn gen2_gpt_layout_and_system_hive_is_byte_identical() {
    let image = fx_path(GEN2);
    let parts = parts_checked(&image);
    assert_eq!(parts.len(), 3, "EFI + MSR + Windows");

    // The EFI system partition is FAT32 and the MSR is empty: neither is NTFS.
    for p in &parts[..2] {
        let mut s = Slice::open(&image, p.start, p.len, false);
        assert!(matches!(Volume::open(&mut s), Err(Error::NotNtfs { .. })));
    }

    let win = parts[2];
    let mut s = Slice::open(&image, win.start, win.len, false);
    let vol = Volume::open(&mut s).unwrap();
    let f = vol.facts();
    assert!(!f.dirty);
    assert_eq!(f.hibernation, Hibernation::NoFile);
    assert_eq!(f.cluster_size, 4096);
    assert_eq!(f.ntfs_version, (3, 1));
    assert_eq!(f.label.as_deref(), Some("Windows"));
    vol.check_writable().unwrap();

    // Case-insensitive, either separator; the entry carries the on-disk spelling.
    let hive = vol
        .open_file(&mut s, "windows/system32/CONFIG/system")
        .unwrap();
    assert_eq!(hive.path(), r"\Windows\System32\config\SYSTEM");
    let bytes = vol.read_file(&mut s, &hive).unwrap();
    let expected = fx_bytes("hives/win7-SYSTEM");
    assert_eq!(bytes.len(), expected.len());
    assert!(bytes == expected, "SYSTEM differs from hives/win7-SYSTEM");

    let evtx = vol
        .open_file(&mut s, r"\WINDOWS\system32\winevt\logs\system.EVTX")
        .unwrap();
    assert!(vol.read_file(&mut s, &evtx).unwrap() == fx_bytes("evtx/srv2008r2-System.evtx"));

    // The Windows 7 hive has no logs next to it here.
    let hf = vol.hive_files(&mut s, HIVE).unwrap();
    assert!(hf.log.is_none() && hf.log1.is_none() && hf.log2.is_none());

    // Independent reader: ntfscat on the extracted partition.
    let dir = tempfile::tempdir().unwrap();
    let part_file = dir.path().join("windows.ntfs");
    extract(&image, win, &part_file);
    if let Some(cat) = ntfscat(&part_file, "/Windows/System32/config/SYSTEM") {
        assert!(cat == bytes, "ntfscat disagrees");
    }
}

#[test]
fn gen2_missing_paths() {
    let image = fx_path(GEN2);
    let win = partitions(&image)[2];
    let mut s = Slice::open(&image, win.start, win.len, false);
    let vol = Volume::open(&mut s).unwrap();
    assert!(vol
        .lookup(&mut s, r"Windows\System32\config\SOFTWARE")
        .unwrap()
        .is_none());
    match vol.open_file(&mut s, r"Windows\NoSuchDir\SYSTEM") {
        Err(Error::NotFound { component, .. }) => assert_eq!(component, "NoSuchDir"),
        other => panic!("{other:?}"),
    }
    match vol.open_file(&mut s, r"Windows\System32\config\SYSTEM\x") {
        Err(Error::NotADirectory { component, .. }) => assert_eq!(component, "SYSTEM"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        vol.lookup(&mut s, r"Windows\..\Windows"),
        Err(Error::InvalidPath { .. })
    ));
    let root = vol.open_file(&mut s, r"C:\").unwrap();
    assert!(root.is_directory());
    assert_eq!(root.record_number(), 5);
}

#[test]
fn gen1_mbr_dirty_hive_and_its_logs() {
    let image = fx_path(GEN1);
    let parts = parts_checked(&image);
    assert_eq!(parts.len(), 2, "System Reserved + Windows");

    let sr = parts[0];
    let mut s = Slice::open(&image, sr.start, sr.len, false);
    let vol = Volume::open(&mut s).unwrap();
    assert_eq!(vol.facts().label.as_deref(), Some("System Reserved"));
    let bcd = vol.open_file(&mut s, r"boot\bcd").unwrap();
    assert!(vol.read_file(&mut s, &bcd).unwrap() == fx_bytes("hives/BCD"));

    let win = parts[1];
    let mut s = Slice::open(&image, win.start, win.len, false);
    let vol = Volume::open(&mut s).unwrap();
    // Hibernation enabled, header zeroed: not in use, writing allowed.
    assert_eq!(vol.facts().hibernation, Hibernation::Inactive);
    vol.check_writable().unwrap();

    let hf = vol
        .hive_files(&mut s, r"windows\system32\config\system")
        .unwrap();
    assert!(hf.log.is_none());
    let log1 = hf.log1.expect("SYSTEM.LOG1");
    let log2 = hf.log2.expect("SYSTEM.LOG2");
    assert_eq!(log1.path(), r"\Windows\System32\config\SYSTEM.LOG1");
    for (entry, name) in [
        (&hf.hive, "hives/win10-dirty-SYSTEM"),
        (&log1, "hives/win10-dirty-SYSTEM.LOG1"),
        (&log2, "hives/win10-dirty-SYSTEM.LOG2"),
    ] {
        let got = vol.read_file(&mut s, entry).unwrap();
        assert!(got == fx_bytes(name), "{name} differs");
    }
    let evtx = vol
        .open_file(&mut s, r"Windows\System32\winevt\Logs\System.evtx")
        .unwrap();
    assert!(vol.read_file(&mut s, &evtx).unwrap() == fx_bytes("evtx/win10-vss7-System.evtx"));

    let dir = tempfile::tempdir().unwrap();
    let part_file = dir.path().join("windows.ntfs");
    extract(&image, win, &part_file);
    if let Some(cat) = ntfscat(&part_file, "/Windows/System32/config/SYSTEM.LOG2") {
        assert!(cat == fx_bytes("hives/win10-dirty-SYSTEM.LOG2"));
    }
}

/// Changes 2 bytes inside page `k` of the hive through `write_file_range`; then ntfs-3g finds the
/// volume clean, ntfscat shows exactly those bytes changed, and the image differs from the
/// original only inside the hive's clusters.
#[test]
fn write_two_bytes_in_a_hive_page_changes_only_those_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_fixture(dir.path(), GEN2);
    let original_image = std::fs::read(fx_path(GEN2)).unwrap();
    let win = partitions(&image)[2];
    let mut s = Slice::open(&image, win.start, win.len, true);
    let vol = Volume::open(&mut s).unwrap();
    let hive = vol.open_file(&mut s, HIVE).unwrap();
    let before = vol.read_file(&mut s, &hive).unwrap();

    let k = 1000u64; // a page well inside the 11 MiB hive
    let at = k * 4096 + 0x7fe; // the 2 bytes straddle nothing special, just inside the page
    let new = [before[at as usize] ^ 0xff, before[at as usize + 1] ^ 0x5a];
    let plan = vol.plan_write(&hive, at, 2).unwrap();
    assert_eq!(plan.len(), 1);
    let written = vol.write_file_range(&mut s, &hive, at, &new).unwrap();
    assert_eq!(written, plan);
    drop(s);

    // Our own reader sees the change.
    let mut s = Slice::open(&image, win.start, win.len, false);
    let vol = Volume::open(&mut s).unwrap();
    assert!(!vol.facts().dirty);
    let hive2 = vol.open_file(&mut s, HIVE).unwrap();
    assert_eq!(hive2, hive, "the file's metadata must not change");
    let after = vol.read_file(&mut s, &hive2).unwrap();
    let mut expected = before.clone();
    expected[at as usize..at as usize + 2].copy_from_slice(&new);
    assert!(after == expected);

    // The image differs only inside the hive's clusters, and only in 2 bytes.
    let patched_image = std::fs::read(&image).unwrap();
    let diffs: Vec<u64> = original_image
        .iter()
        .zip(&patched_image)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i as u64)
        .collect();
    assert_eq!(diffs.len(), 2, "{diffs:x?}");
    for d in &diffs {
        let in_hive = hive.extents().iter().any(|e| {
            let p = win.start + e.partition_offset.unwrap();
            (p..p + e.len).contains(d)
        });
        assert!(in_hive, "byte {d:#x} changed outside the hive's clusters");
    }
    assert_eq!(diffs[0], win.start + plan[0].partition_offset);

    // ntfs-3g's view.
    let part_file = dir.path().join("windows.ntfs");
    extract(&image, win, &part_file);
    if let Some((clean, text)) = ntfsfix_clean(&part_file) {
        assert!(clean, "ntfsfix -n: {text}");
    }
    if let Some(cat) = ntfscat(&part_file, "/Windows/System32/config/SYSTEM") {
        assert!(
            cat == expected,
            "ntfscat does not show exactly the 2 changed bytes"
        );
    }
}

/// The dirty flag, set in a copy by patching the `$VOLUME_INFORMATION` flags that the crate
/// locates: reading still works, writing is refused, and ntfs-3g agrees the volume is dirty.
#[test]
fn dirty_volume_is_readable_but_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_fixture(dir.path(), GEN2);
    let win = partitions(&image)[2];
    let mut s = Slice::open(&image, win.start, win.len, true);
    let vol = Volume::open(&mut s).unwrap();
    // $Volume in $MFT and its copy in $MFTMirr: ntfs-3g refuses a volume where they differ.
    let offsets = vol.facts().volume_flags_offsets.clone();
    assert_eq!(offsets.len(), 2, "{offsets:x?}");
    let flags = vol.facts().volume_flags;
    for at in offsets {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut old = [0u8; 2];
        s.seek(SeekFrom::Start(at)).unwrap();
        s.read_exact(&mut old).unwrap();
        assert_eq!(u16::from_le_bytes(old), flags, "flags at {at:#x}");
        s.seek(SeekFrom::Start(at)).unwrap();
        s.write_all(&(flags | volume::VOLUME_DIRTY).to_le_bytes())
            .unwrap();
    }
    let vol = Volume::open(&mut s).unwrap();
    assert!(vol.facts().dirty);
    let hive = vol.open_file(&mut s, HIVE).unwrap();
    assert_eq!(
        vol.read_file(&mut s, &hive).unwrap(),
        fx_bytes("hives/win7-SYSTEM")
    );
    assert!(matches!(vol.check_writable(), Err(Error::Dirty { .. })));
    assert!(matches!(
        vol.plan_grow(&mut s, &hive, hive.size() + 4096),
        Err(Error::Dirty { .. })
    ));
    assert!(matches!(
        vol.write_file_range(&mut s, &hive, 0, b"xx"),
        Err(Error::Dirty { .. })
    ));
    // The plan alone (no volume check) still maps.
    assert_eq!(hive.plan_write(0, 2).unwrap().len(), 1);

    let part_file = dir.path().join("windows.ntfs");
    extract(&image, win, &part_file);
    // The untouched original is not refused: the message is about the flag we set.
    let clean_file = dir.path().join("clean.ntfs");
    extract(&fx_path(GEN2), win, &clean_file);
    if let Some(flags) = ntfsinfo_volume_flags(&clean_file) {
        assert_eq!(flags, "Volume Flags: 0x0000");
    }
    if let Some(flags) = ntfsinfo_volume_flags(&part_file) {
        // libntfs-3g refuses a dirty volume with this message.
        assert!(flags.contains("Volume is scheduled for check"), "{flags}");
    }
}

/// Fast Startup / hibernation: a hiberfil.sys whose header says "HIBR" blocks writes. The
/// signature is put in with the crate's own write path while the file is still inactive.
#[test]
fn hibernated_volume_is_readable_but_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_fixture(dir.path(), GEN1);
    let win = partitions(&image)[1];
    let mut s = Slice::open(&image, win.start, win.len, true);
    let vol = Volume::open(&mut s).unwrap();
    let hiberfil = vol.open_file(&mut s, "HIBERFIL.SYS").unwrap();
    assert!(matches!(
        hiberfil.data().unwrap().storage,
        Storage::NonResident { .. }
    ));
    vol.write_file_range(&mut s, &hiberfil, 0, b"HIBR").unwrap();

    let vol = Volume::open(&mut s).unwrap();
    assert_eq!(
        vol.facts().hibernation,
        Hibernation::InUse {
            signature: *b"HIBR"
        }
    );
    assert!(matches!(
        vol.check_writable(),
        Err(Error::Hibernated { .. })
    ));
    let hive = vol.open_file(&mut s, HIVE).unwrap();
    assert!(matches!(
        vol.write_file_range(&mut s, &hive, 0, b"xx"),
        Err(Error::Hibernated { .. })
    ));
    assert!(vol.read_file(&mut s, &hive).unwrap() == fx_bytes("hives/win10-dirty-SYSTEM"));
}
