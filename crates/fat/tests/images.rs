//! FAT12, FAT16 and FAT32 volumes made by `mkfs.vfat` and filled by `mtools`, read back and
//! compared with what was put in and with `mshowfat`'s cluster lists; the real EFI system
//! partition of the Gen2 fixture; and volumes damaged one field at a time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fat::{Error, FatKind, Volume};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install dosfstools and mtools)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Text of `n` numbered lines: every file has distinct, checkable content.
fn lines(from: u32, n: u32) -> Vec<u8> {
    (from..from + n)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

struct Image {
    _dir: tempfile::TempDir,
    path: PathBuf,
    files: Vec<(&'static str, Vec<u8>)>,
}

/// A volume of `bits` (12, 16, 32) with nested long names and a fragmented file.
fn image(bits: u32) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("fat{bits}.img"));
    // FAT32 needs 65525 clusters at least: 33 MiB with 512-byte clusters.
    let mib = match bits {
        12 => 2,
        16 => 8,
        _ => 34,
    };
    fs::File::create(&path).unwrap().set_len(mib << 20).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", &bits.to_string(), "-s", "1", "-n", "TESTVOL"])
        .arg(&path));
    let img = path.to_str().unwrap();
    let put =
        |src: &Path, dst: &str| run(Command::new("mcopy").args(["-i", img]).arg(src).arg(dst));
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let c = dir.path().join("c");
    fs::write(&a, lines(1, 3000)).unwrap();
    fs::write(&b, lines(5000, 100)).unwrap();
    fs::write(&c, lines(9000, 2500)).unwrap();
    run(Command::new("mmd").args([
        "-i",
        img,
        "::/Long Directory Name",
        "::/Long Directory Name/Sub Dir",
    ]));
    put(&a, "::/Long Directory Name/A File With A Long Name.txt");
    put(&b, "::/Long Directory Name/Sub Dir/small.txt");
    put(&b, "::/gap.txt");
    put(&a, "::/MixedCase.Bin");
    run(Command::new("mdel").args(["-i", img, "::/gap.txt"]));
    // Fills the hole gap.txt left first, then continues after the last file: two runs.
    put(&c, "::/fragmented.txt");
    Image {
        _dir: dir,
        path,
        files: vec![
            (
                "Long Directory Name/A File With A Long Name.txt",
                lines(1, 3000),
            ),
            ("Long Directory Name/Sub Dir/small.txt", lines(5000, 100)),
            ("MixedCase.Bin", lines(1, 3000)),
            ("fragmented.txt", lines(9000, 2500)),
        ],
    }
}

/// `mshowfat`'s cluster list of a file: `::/x <3-30> <41>` -> [3, 4, ..., 30, 41].
fn mshowfat(img: &Path, file: &str) -> Vec<u32> {
    let out = run(Command::new("mshowfat")
        .arg("-i")
        .arg(img)
        .arg(format!("::/{file}")));
    let mut clusters = Vec::new();
    for run in out.split('<').skip(1) {
        let run = run.split('>').next().unwrap();
        let (a, b) = run.split_once('-').unwrap_or((run, run));
        clusters.extend(a.trim().parse::<u32>().unwrap()..=b.trim().parse::<u32>().unwrap());
    }
    clusters
}

fn check_image(bits: u32, kind: FatKind) {
    let img = image(bits);
    let mut f = fs::File::open(&img.path).unwrap();
    let vol = Volume::open(&mut f).unwrap();
    assert_eq!(vol.kind(), kind);
    assert_eq!(vol.label(), Some("TESTVOL"));
    assert!(!vol.is_dirty());
    let mut runs = 0;
    for (name, content) in &img.files {
        // Any case, either separator.
        let asked = name.to_uppercase().replace('/', "\\");
        let e = vol
            .lookup(&mut f, &asked)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(e.path(), name.replace('/', "\\"), "on-disk names");
        assert_eq!(e.size(), content.len() as u64);
        assert_eq!(&vol.read_file(&mut f, &e).unwrap(), content, "{name}");
        // The extents are exactly mshowfat's clusters, in order.
        let cs = u64::from(vol.cluster_size());
        let mut ours = Vec::new();
        for x in e.extents() {
            for k in 0..x.len / cs {
                ours.push(((x.partition_offset - vol.data_offset()) / cs + k) as u32 + 2);
            }
        }
        assert_eq!(ours, mshowfat(&img.path, name), "{name}");
        runs = runs.max(e.extents().len());
        // Every byte of the file is planned exactly once, in order.
        let plan = e.plan_write(0, e.size()).unwrap();
        assert_eq!(plan.iter().map(|p| p.len).sum::<u64>(), e.size());
        assert!(e.plan_write(1, e.size()).is_err(), "past the end");
    }
    // mtools fills the hole on FAT12/16; on FAT32 it allocates after FSInfo's next-free hint.
    if kind != FatKind::Fat32 {
        assert!(runs >= 2, "fragmented.txt must be in two runs at least");
    }
    // The 8.3 alias mtools made for the long directory name finds it too.
    assert!(vol
        .lookup(&mut f, r"LONGDI~1\SUBDIR~1\SMALL.TXT")
        .unwrap()
        .is_some());
    assert!(vol
        .lookup(&mut f, r"Long Directory Name\missing.txt")
        .unwrap()
        .is_none());
    assert!(matches!(
        vol.lookup(&mut f, r"MixedCase.Bin\x"),
        Err(Error::NotADirectory { .. })
    ));
    let root: Vec<String> = vol
        .list(&mut f, "")
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        root,
        ["Long Directory Name", "MixedCase.Bin", "fragmented.txt"]
    );
}

#[test]
fn fat12_volume_matches_mtools() {
    check_image(12, FatKind::Fat12);
}

#[test]
fn fat16_volume_matches_mtools() {
    check_image(16, FatKind::Fat16);
}

#[test]
fn fat32_volume_matches_mtools() {
    check_image(32, FatKind::Fat32);
}

/// The EFI system partition of the Gen2 fixture (mkfs.vfat FAT32, the real BCD put in by mcopy).
#[test]
fn gen2_esp_holds_the_real_bcd() {
    let disk = fs::read(fixtures::path("images/gen2-gpt-win7-system.raw")).unwrap();
    let esp = &disk[2048 * 512..(2048 + 33 * 2048) * 512];
    let mut c = std::io::Cursor::new(esp);
    let vol = Volume::open(&mut c).unwrap();
    assert_eq!(vol.kind(), FatKind::Fat32);
    assert_eq!(vol.label(), Some("SYSTEM"));
    let bcd = vol
        .lookup(&mut c, r"efi\microsoft\boot\bcd")
        .unwrap()
        .unwrap();
    assert_eq!(bcd.path(), r"EFI\Microsoft\Boot\BCD");
    assert_eq!(
        vol.read_file(&mut c, &bcd).unwrap(),
        fixtures::bytes("hives/BCD")
    );
}

/// Patches `bytes` at `at` in a copy of a FAT12 image and opens it.
fn damaged(at: usize, bytes: &[u8]) -> (Vec<u8>, fat::Result<Volume>) {
    let img = image(12);
    let mut data = fs::read(&img.path).unwrap();
    data[at..at + bytes.len()].copy_from_slice(bytes);
    let r = Volume::open(&mut std::io::Cursor::new(&data[..]));
    (data, r)
}

#[test]
fn boot_sector_errors_name_the_field() {
    for (at, bytes, field) in [
        (0x0b, &[0x01, 0x02][..], 0x0b), // 513 bytes per sector
        (0x0d, &[3][..], 0x0d),          // 3 sectors per cluster
        (0x0e, &[0, 0][..], 0x0e),       // no reserved sector
        (0x10, &[7][..], 0x10),          // 7 FATs
        (0x13, &[0xff, 0xff][..], 0x13), // 32 MiB on a 2 MiB partition
        (0x15, &[0x12][..], 0x15),       // media byte
        (0x1fe, &[0, 0][..], 0x1fe),     // boot signature
    ] {
        match damaged(at, bytes).1 {
            Err(Error::BootSector { offset, what }) => assert_eq!(offset, field, "{what}"),
            other => panic!("patch at {at:#x}: {other:?}"),
        }
    }
}

/// FAT12 entry `n` of the first FAT set to `v` (the FAT starts after 1 reserved sector).
fn set_fat12(data: &mut [u8], n: usize, v: u16) {
    let off = 512 + n + n / 2;
    let old = u16::from_le_bytes([data[off], data[off + 1]]);
    let new = if n & 1 == 1 {
        (old & 0x000F) | (v << 4)
    } else {
        (old & 0xF000) | (v & 0x0FFF)
    };
    data[off..off + 2].copy_from_slice(&new.to_le_bytes());
}

#[test]
fn broken_chains_are_errors() {
    let img = image(12);
    let path = "MixedCase.Bin";
    let clusters = mshowfat(&img.path, path);
    let clean = fs::read(&img.path).unwrap();
    let last = *clusters.last().unwrap() as usize;
    for (v, want) in [
        (clusters[0] as u16, "loops back"),
        (0, "free cluster"),
        (0xFF7, "marked bad"),
        (0xFF0, "not a data cluster"),
        (clusters[1] as u16 + 3000, "continues past"),
    ] {
        let mut data = clean.clone();
        // The loop and the others at the second cluster; "continues past" at the last.
        let at = if want == "continues past" {
            last
        } else {
            clusters[1] as usize
        };
        set_fat12(&mut data, at, v);
        let mut c = std::io::Cursor::new(&data[..]);
        let vol = Volume::open(&mut c).unwrap();
        match vol.lookup(&mut c, path) {
            Err(Error::Chain { what, offset, .. }) => {
                assert!(what.contains(want), "{what}");
                assert_eq!(offset, 512 + at as u64 + at as u64 / 2);
            }
            other => panic!("{v:#x}: {other:?}"),
        }
    }
    // A chain cut short: the file's size needs more clusters.
    let mut data = clean.clone();
    set_fat12(&mut data, clusters[1] as usize, 0xFFF);
    let mut c = std::io::Cursor::new(&data[..]);
    let vol = Volume::open(&mut c).unwrap();
    let err = vol.lookup(&mut c, path).unwrap_err().to_string();
    assert!(err.contains("ends after 2 clusters"), "{err}");
}

/// A directory whose chain loops is an error, not an endless listing.
#[test]
fn looping_directory_is_an_error() {
    let img = image(12);
    let mut data = fs::read(&img.path).unwrap();
    let mut c = std::io::Cursor::new(&data[..]);
    let vol = Volume::open(&mut c).unwrap();
    let d = vol.lookup(&mut c, "Long Directory Name").unwrap().unwrap();
    let first = d.first_cluster() as usize;
    set_fat12(&mut data, first, first as u16);
    let mut c = std::io::Cursor::new(&data[..]);
    let err = vol
        .lookup(&mut c, r"Long Directory Name\Sub Dir")
        .unwrap_err()
        .to_string();
    assert!(err.contains("loops back"), "{err}");
}

mod mutations {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn clean() -> &'static [u8] {
        static IMG: OnceLock<Vec<u8>> = OnceLock::new();
        IMG.get_or_init(|| fs::read(image(12).path).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Random bytes in the boot sector, FATs and directories: every call returns, and a
        /// file that still reads has exactly its size.
        #[test]
        fn damaged_volumes_never_panic(patches in prop::collection::vec((0usize..40 * 1024, any::<u8>()), 1..24)) {
            let mut data = clean().to_vec();
            for (at, b) in patches {
                data[at] = b;
            }
            let mut c = std::io::Cursor::new(&data[..]);
            if let Ok(vol) = Volume::open(&mut c) {
                let _ = vol.list(&mut c, "");
                for p in ["MixedCase.Bin", "fragmented.txt", r"Long Directory Name\Sub Dir\small.txt"] {
                    if let Ok(Some(e)) = vol.lookup(&mut c, p) {
                        if let Ok(bytes) = vol.read_file(&mut c, &e) {
                            prop_assert_eq!(bytes.len() as u64, e.size());
                        }
                    }
                }
            }
        }
    }
}
