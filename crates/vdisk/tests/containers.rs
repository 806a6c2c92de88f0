//! Reading every container kind, checked against `qemu-img convert -O raw` (live) and against
//! sha256 values of that raw content pinned when the fixtures were made.

mod common;

use common::*;
use vdisk::{ContainerKind, Disk, Error, OpenOptions};

/// sha256 of the raw content of the ext2 image inside the three real VHDs from dfvfs / plaso
/// (qemu-img convert -O raw, and libvhdi's pyvhdi for the differencing one, agree).
const EXT2_RAW: &str = "c6db12a7db548e193c29420c1b4533e4708b20c5033db5cc29ef075d48316d25";
/// sha256 of the raw images made by testdata/images/make-container-fixtures.sh (it prints them).
const GPT_RAW: &str = "6413495a43538b9f22261deea593ae057afa1f51f0493f0348d0ea5fc00ad69d";
const MBR_RAW: &str = "d8ba7ce682e5280a15c44313f6a06467b0b7a322182207e45e2972033a02314c";
const GPT4K_RAW: &str = "2e59067f22cb568c7d7038b6204d68966f627ba3384b046bdc8bf7fa3fd2ab68";

fn check_against_qemu(name: &str, kind: ContainerKind, golden: &str, opts: OpenOptions) {
    let path = fixtures::path(name);
    let disk = opts.open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(disk.kind(), kind, "{name}");
    let ours = read_all(&disk);
    assert_eq!(
        sha256(&ours),
        golden,
        "{name}: raw content differs from the pinned value"
    );
    if let Some(theirs) = qemu_raw(&path) {
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: size differs from qemu-img's"
        );
        assert!(
            ours == theirs,
            "{name}: content differs from qemu-img convert -O raw"
        );
    }
}

#[test]
fn plaso_dynamic_vhd_matches_qemu() {
    check_against_qemu(
        "images/plaso-image.vhd",
        ContainerKind::VhdDynamic,
        EXT2_RAW,
        OpenOptions::new(),
    );
}

#[test]
fn generated_containers_match_qemu() {
    let cases = [
        (
            "images/container-gpt-fixed.vhd",
            ContainerKind::VhdFixed,
            GPT_RAW,
        ),
        (
            "images/container-gpt-dynamic.vhd",
            ContainerKind::VhdDynamic,
            GPT_RAW,
        ),
        (
            "images/container-gpt-fixed.vhdx",
            ContainerKind::VhdxFixed,
            GPT_RAW,
        ),
        (
            "images/container-gpt-dynamic.vhdx",
            ContainerKind::VhdxDynamic,
            GPT_RAW,
        ),
        (
            "images/container-mbr-dynamic.vhdx",
            ContainerKind::VhdxDynamic,
            MBR_RAW,
        ),
        (
            "images/container-mbr-logical.raw",
            ContainerKind::Raw,
            MBR_RAW,
        ),
        (
            "images/container-gpt4k-dynamic.vhd",
            ContainerKind::VhdDynamic,
            GPT4K_RAW,
        ),
    ];
    for (name, kind, golden) in cases {
        check_against_qemu(name, kind, golden, OpenOptions::new());
    }
}

/// The dfvfs VHDs were edited by hand after qemu made them (their unique ids were set to link
/// parent and child) without fixing the checksums. qemu-img refuses them ("Incorrect header
/// checksum"); strict opening refuses them too, lenient opening reads them with a warning.
#[test]
fn dfvfs_vhd_with_stale_checksum() {
    let path = fixtures::path("images/dfvfs-image.vhd");
    match Disk::open(&path) {
        Err(Error::BadChecksum {
            structure: "VHD footer",
            stored: 0xffff_f683,
            computed: 0xffff_ef25,
            ..
        }) => {}
        other => panic!("expected a footer checksum error, got {other:?}"),
    }
    let disk = OpenOptions::new().lenient(true).open(&path).unwrap();
    assert_eq!(disk.kind(), ContainerKind::VhdDynamic);
    assert_eq!(disk.warnings().len(), 1, "{:?}", disk.warnings());
    let ours = read_all(&disk);
    assert_eq!(sha256(&ours), EXT2_RAW);
    // The oracle: qemu-img on a copy whose checksums are repaired (nothing else changes).
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.vhd");
    let mut bytes = std::fs::read(&path).unwrap();
    repair_vhd_checksums(&mut bytes);
    std::fs::write(&fixed, &bytes).unwrap();
    assert!(Disk::open(&fixed).unwrap().warnings().is_empty());
    if let Some(theirs) = qemu_raw(&fixed) {
        assert!(ours == theirs);
    }
    let id = disk.identity();
    assert_eq!(
        id.unique_id.unwrap().to_string(),
        "d49c5c80-350a-4a89-898a-5ad6d10f6578"
    );
    assert_eq!(id.size, 104_448);
}

/// Recomputes the footer (end and offset-0 copy) and dynamic header checksums of a VHD.
pub fn repair_vhd_checksums(b: &mut [u8]) {
    fn sum(x: &[u8], skip: usize) -> u32 {
        let s = x
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < skip || *i >= skip + 4)
            .fold(0u32, |a, (_, &v)| a.wrapping_add(v.into()));
        !s
    }
    let n = b.len();
    for at in [0, n - 512] {
        let c = sum(&b[at..at + 512], 64);
        b[at + 64..at + 68].copy_from_slice(&c.to_be_bytes());
    }
    let c = sum(&b[512..1536], 36);
    b[512 + 36..512 + 40].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn dfvfs_differencing_vhd_reads_through_parent() {
    let dir = tempfile::tempdir().unwrap();
    // The child names its parent "image.vhd": put them next to each other under dfvfs's names.
    copy_fixture(dir.path(), "images/dfvfs-image.vhd", "image.vhd");
    let child = copy_fixture(
        dir.path(),
        "images/dfvfs-image-differential.vhd",
        "image-differential.vhd",
    );
    let disk = OpenOptions::new().lenient(true).open(&child).unwrap();
    assert_eq!(disk.kind(), ContainerKind::VhdDifferencing);
    assert_eq!(sha256(&read_all(&disk)), EXT2_RAW);
    // Strict: the child's own header checksum is stale too.
    assert!(matches!(Disk::open(&child), Err(Error::BadChecksum { .. })));

    std::fs::remove_file(dir.path().join("image.vhd")).unwrap();
    match OpenOptions::new().lenient(true).open(&child) {
        Err(e @ Error::ParentNotFound { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("\"image.vhd\""), "{msg}");
        }
        other => panic!("expected ParentNotFound, got {other:?}"),
    }
}

#[test]
fn qcow2_and_vmdk_are_refused_with_the_conversion_command() {
    for name in [
        "images/dfvfs-windows_volume.qcow2",
        "images/plaso-vsstest.qcow2",
    ] {
        let path = fixtures::path(name);
        match Disk::open(&path) {
            Err(
                e @ Error::UnsupportedFormat {
                    format: "qcow2", ..
                },
            ) => {
                assert!(e.to_string().contains("qemu-img convert -O raw"), "{e}");
            }
            other => panic!("{name}: expected UnsupportedFormat, got {other:?}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.vmdk");
    std::fs::write(&p, b"# Disk DescriptorFile\nversion=1\n").unwrap();
    assert!(matches!(
        Disk::open(&p),
        Err(Error::UnsupportedFormat { format: "VMDK", .. })
    ));
}

#[test]
fn raw_file_and_small_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let d = Disk::open(&empty).unwrap();
    assert_eq!((d.kind(), d.size()), (ContainerKind::Raw, 0));
    assert_eq!(
        vdisk::read_partitions(&d).unwrap().kind,
        vdisk::TableKind::Unknown
    );
    let mut b = [0u8; 1];
    assert!(matches!(
        d.read_at(0, &mut b),
        Err(Error::OutOfRange { .. })
    ));
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// A differencing VHD made from a qemu dynamic VHD by hand (qemu cannot make one): block 0 is
/// left to the parent, block 2 holds 0xEE in the child but its sector bitmap claims only some
/// sectors, so the rest must come from the parent.
///
/// With `partial`, one bitmap byte has only two bits set (sectors 160 and 162, bit 7 of a byte
/// being its first sector as in VirtualBox and blktap); without, whole bytes only (sectors
/// 160..=167), which libvhdi also reads right: it decides per bitmap byte, not per bit.
fn make_differencing(
    dir: &std::path::Path,
    parent_id_ok: bool,
    partial: bool,
) -> (std::path::PathBuf, Vec<u8>) {
    let parent = copy_fixture(dir, "images/container-gpt-dynamic.vhd", "parent.vhd");
    let parent_bytes = std::fs::read(&parent).unwrap();
    let parent_raw = read_all(&Disk::open(&parent).unwrap());
    let mut c = parent_bytes.clone();
    let n = c.len();
    let parent_uid: [u8; 16] = parent_bytes[n - 512 + 68..n - 512 + 84].try_into().unwrap();
    for at in [0, n - 512] {
        c[at + 60..at + 64].copy_from_slice(&4u32.to_be_bytes()); // disk type: differencing
        c[at + 68..at + 84].copy_from_slice(&[0x42; 16]); // the child's own unique id
    }
    let h = 512;
    let mut pid = parent_uid;
    if !parent_id_ok {
        pid[0] ^= 1;
    }
    c[h + 40..h + 56].copy_from_slice(&pid);
    let name: Vec<u8> = "parent.vhd"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    c[h + 64..h + 576].fill(0);
    c[h + 64..h + 64 + name.len()].copy_from_slice(&name);
    let bat = u64::from_be_bytes(c[h + 16..h + 24].try_into().unwrap()) as usize;
    c[bat..bat + 4].copy_from_slice(&0xFFFF_FFFFu32.to_be_bytes()); // block 0 -> parent
    let b2 = be32(&c, bat + 8) as usize * 512;
    assert_ne!(
        b2,
        0xFFFF_FFFFusize * 512,
        "block 2 of the fixture is allocated"
    );
    let bitmap_len = 512; // 2 MiB blocks: 4096 sectors, 512 bytes of bitmap
    c[b2..b2 + bitmap_len].fill(0);
    c[b2 + 8..b2 + 16].fill(0xff); // sectors 64..=127
    c[b2 + 20] = if partial { 0b1010_0000 } else { 0xff };
    c[b2 + bitmap_len..b2 + bitmap_len + (2 << 20)].fill(0xee);
    repair_vhd_checksums(&mut c);
    let child = dir.join("child.vhd");
    std::fs::write(&child, &c).unwrap();

    let mut expected = parent_raw;
    let block2 = 4usize << 20; // block 2 of 2 MiB blocks
    let extra: Vec<usize> = if partial {
        vec![160, 162]
    } else {
        (160..168).collect()
    };
    for s in (64..128).chain(extra) {
        expected[block2 + s * 512..block2 + (s + 1) * 512].fill(0xee);
    }
    (child, expected)
}

#[test]
fn synthetic_differencing_vhd_honours_the_sector_bitmap() {
    let dir = tempfile::tempdir().unwrap();
    let (child, expected) = make_differencing(dir.path(), true, false);
    let disk = Disk::open(&child).unwrap();
    assert_eq!(disk.kind(), ContainerKind::VhdDifferencing);
    assert!(read_all(&disk) == expected);
    // Odd-sized reads that start and end inside sectors.
    let mut b = vec![0u8; 1000];
    disk.read_at((4 << 20) + 64 * 512 - 300, &mut b).unwrap();
    assert!(b[..] == expected[(4 << 20) + 64 * 512 - 300..][..1000]);

    // An independent reader: libvhdi's Python binding, where installed.
    let script = format!(
        "import pyvhdi,hashlib\np=pyvhdi.file();p.open('{}')\nc=pyvhdi.file();c.open('{}');c.set_parent(p)\nprint(hashlib.sha256(c.read_buffer(c.get_media_size())).hexdigest())",
        dir.path().join("parent.vhd").display(),
        child.display()
    );
    if let Ok(out) = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
    {
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                sha256(&expected),
                "libvhdi disagrees"
            );
        } else {
            eprintln!(
                "note: pyvhdi unavailable: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // Sub-byte bitmap granularity.
    drop(disk);
    let dir2 = tempfile::tempdir().unwrap();
    let (child2, expected2) = make_differencing(dir2.path(), true, true);
    assert!(read_all(&Disk::open(&child2).unwrap()) == expected2);

    // Writes: allowed where the child holds the sectors, refused where the parent does.
    let mut w = Disk::open_rw(&child).unwrap();
    w.write_at((4 << 20) + 64 * 512, &[7; 1024]).unwrap();
    assert!(matches!(
        w.write_at((4 << 20) + 127 * 512, &[7; 1024]),
        Err(Error::WriteToUnallocated { .. })
    ));
    assert!(matches!(
        w.write_at(0, &[7; 16]),
        Err(Error::WriteToUnallocated { .. })
    ));
}

#[test]
fn differencing_vhd_with_the_wrong_parent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (child, expected) = make_differencing(dir.path(), false, true);
    match Disk::open(&child) {
        Err(e @ Error::ParentMismatch { .. }) => {
            assert!(e.to_string().contains("parent.vhd"), "{e}")
        }
        other => panic!("expected ParentMismatch, got {other:?}"),
    }
    let lenient = OpenOptions::new().lenient(true).open(&child).unwrap();
    assert_eq!(lenient.warnings().len(), 1);
    assert!(read_all(&lenient) == expected);
}

/// CRC-32C bit by bit (independent of the library's table).
fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn set_header(f: &mut [u8], at: usize, edit: impl Fn(&mut [u8])) {
    let h = &mut f[at..at + 4096];
    edit(h);
    h[4..8].fill(0);
    let c = crc32c(h);
    h[4..8].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn vhdx_header_choice_and_dirty_log() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(fixtures::path("images/container-gpt-dynamic.vhdx")).unwrap();
    let p = dir.path().join("x.vhdx");

    // One header destroyed: the other is used, with a warning.
    let mut f = src.clone();
    f[0x10000..0x10004].copy_from_slice(b"XXXX");
    std::fs::write(&p, &f).unwrap();
    let d = Disk::open(&p).unwrap();
    assert_eq!(sha256(&read_all(&d)), GPT_RAW);
    assert_eq!(d.warnings().len(), 1);
    drop(d);

    // The header with the higher sequence number wins, whatever its slot.
    let mut f = src.clone();
    let seq = |f: &[u8], at: usize| u64::from_le_bytes(f[at + 8..at + 16].try_into().unwrap());
    let top = seq(&f, 0x10000).max(seq(&f, 0x20000));
    set_header(&mut f, 0x20000, |h| {
        h[8..16].copy_from_slice(&(top + 5).to_le_bytes());
        h[32..48].copy_from_slice(&[0x99; 16]); // DataWriteGuid
    });
    std::fs::write(&p, &f).unwrap();
    let d = Disk::open(&p).unwrap();
    assert_eq!(d.identity().data_write_guid.unwrap().0, [0x99; 16]);
    drop(d);

    // A non-empty log is refused with a clear message.
    let mut f = src.clone();
    for at in [0x10000, 0x20000] {
        set_header(&mut f, at, |h| h[48..64].copy_from_slice(&[0x11; 16]));
    }
    std::fs::write(&p, &f).unwrap();
    match Disk::open(&p) {
        Err(e @ Error::VhdxLogNotEmpty { .. }) => {
            assert!(e.to_string().contains("replayed"), "{e}")
        }
        other => panic!("expected VhdxLogNotEmpty, got {other:?}"),
    }

    // Both headers bad: a clean error naming the first.
    let mut f = src.clone();
    f[0x10000 + 100] ^= 1;
    f[0x20000 + 100] ^= 1;
    std::fs::write(&p, &f).unwrap();
    assert!(matches!(
        Disk::open(&p),
        Err(Error::BadChecksum {
            offset: 0x10000,
            ..
        })
    ));
}

#[test]
fn truncated_images_give_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "images/container-gpt-dynamic.vhd",
        "images/container-gpt-dynamic.vhdx",
        "images/container-gpt-fixed.vhd",
    ] {
        let src = std::fs::read(fixtures::path(name)).unwrap();
        for cut in [
            100usize,
            600,
            1600,
            70_000,
            200_000,
            1 << 20,
            src.len() / 2,
            src.len() - 1,
        ] {
            if cut >= src.len() {
                continue;
            }
            let p = dir.path().join("t");
            std::fs::write(&p, &src[..cut]).unwrap();
            // Opening may succeed (then as raw or with blocks past the end), but reading the
            // whole disk must fail cleanly or succeed; nothing may panic.
            if let Ok(d) = Disk::open(&p) {
                let mut buf = vec![0u8; 1 << 16];
                let mut off = 0;
                while off < d.size() {
                    let n = (d.size() - off).min(buf.len() as u64) as usize;
                    if let Err(e) = d.read_at(off, &mut buf[..n]) {
                        assert!(!e.to_string().is_empty());
                        break;
                    }
                    off += n as u64;
                }
                let _ = vdisk::read_partitions(&d);
            }
        }
    }
}

#[test]
fn identity_round_trips_through_json() {
    let disk = Disk::open(fixtures::path("images/container-gpt-dynamic.vhdx")).unwrap();
    let id = disk.identity();
    assert_eq!(id.kind, ContainerKind::VhdxDynamic);
    assert!(id.unique_id.is_some() && id.data_write_guid.is_some());
    let json = serde_json::to_string(&id).unwrap();
    let back: vdisk::Identity = serde_json::from_str(&json).unwrap();
    assert_eq!(back, id);
    assert!(
        json.contains(&id.data_write_guid.unwrap().to_string()),
        "{json}"
    );
}
