//! Writing through vdisk: qemu-img must see exactly the written bytes changed, refused writes
//! must change nothing, VHDX headers must get a new DataWriteGuid on the first write only.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use vdisk::{Disk, Error};

const MIB: u64 = 1 << 20;

/// (fixture, writes that land in allocated space, a write that touches unallocated space)
type Case = (&'static str, Vec<(u64, usize)>, Option<u64>);

fn cases() -> Vec<Case> {
    vec![
        // 2 MiB VHD blocks: 2 (4-6 MiB), 3 and 4 (the 0xa5 run crosses 8 MiB) are allocated,
        // 5 (10-12 MiB) is not.
        (
            "images/container-gpt-dynamic.vhd",
            vec![(4 * MIB + 1234, 5000), (8 * MIB - 100, 200)],
            Some(10 * MIB - 100),
        ),
        (
            "images/container-gpt-fixed.vhd",
            vec![
                (4 * MIB + 1234, 5000),
                (8 * MIB - 100, 200),
                (12 * MIB, 4096),
            ],
            None,
        ),
        // 1 MiB VHDX blocks: 7 and 8 allocated, 9 not.
        (
            "images/container-gpt-dynamic.vhdx",
            vec![(4 * MIB + 1234, 5000), (8 * MIB - 100, 200)],
            Some(9 * MIB - 100),
        ),
        (
            "images/container-gpt-fixed.vhdx",
            vec![
                (4 * MIB + 1234, 5000),
                (8 * MIB - 100, 200),
                (12 * MIB, 4096),
            ],
            None,
        ),
        (
            "images/container-mbr-logical.raw",
            vec![(7 * MIB + 10, 3000)],
            None,
        ),
    ]
}

fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| seed.wrapping_add((i % 251) as u8) | 1)
        .collect()
}

#[test]
fn written_bytes_are_exactly_what_qemu_sees_changed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, writes, _) in cases() {
        let base = name.rsplit('/').next().unwrap();
        let path = copy_fixture(dir.path(), name, base);
        let mut expected = read_all(&Disk::open(&path).unwrap());
        {
            let mut disk = Disk::open_rw(&path).unwrap();
            for (i, &(off, len)) in writes.iter().enumerate() {
                let data = pattern(i as u8 * 40, len);
                if i % 2 == 0 {
                    disk.write_at(off, &data).unwrap();
                } else {
                    // The same through std::io::Write on a Slice.
                    let mut w = vdisk::Slice::new(&mut disk, off, len as u64).unwrap();
                    w.write_all(&data).unwrap();
                    w.flush().unwrap();
                }
                expected[off as usize..off as usize + len].copy_from_slice(&data);
            }
            disk.flush().unwrap();
        }
        assert!(
            read_all(&Disk::open(&path).unwrap()) == expected,
            "{name}: vdisk reads back something else"
        );
        if let Some(theirs) = qemu_raw(&path) {
            assert!(
                theirs == expected,
                "{name}: qemu-img sees other changes than the ones written"
            );
        }
        qemu_check(&path);
    }
}

#[test]
fn writes_into_unallocated_blocks_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, _, unallocated) in cases() {
        let Some(off) = unallocated else { continue };
        let path = copy_fixture(dir.path(), name, name.rsplit('/').next().unwrap());
        let before = file_sha256(&path);
        let mut disk = Disk::open_rw(&path).unwrap();
        let guid = disk.identity().data_write_guid;
        // Straddling an allocated and an unallocated block: refused as a whole.
        match disk.write_at(off, &[0xee; 200]) {
            Err(e @ Error::WriteToUnallocated { .. }) => {
                assert!(
                    e.to_string()
                        .contains("only writes into space that already exists"),
                    "{e}"
                );
            }
            other => panic!("{name}: expected WriteToUnallocated, got {other:?}"),
        }
        // Entirely in an unallocated block.
        assert!(matches!(
            disk.write_at(12 * MIB, &[1; 512]),
            Err(Error::WriteToUnallocated { .. })
        ));
        assert_eq!(
            disk.identity().data_write_guid,
            guid,
            "{name}: a refused write changed the header"
        );
        drop(disk);
        assert_eq!(
            file_sha256(&path),
            before,
            "{name}: a refused write changed the file"
        );
    }
}

/// CRC-32C written bit by bit, independent of the library's table.
fn crc32c_bitwise(data: &[u8]) -> u32 {
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

/// (sequence number, FileWriteGuid, DataWriteGuid) of both VHDX headers, checking each CRC.
fn vhdx_headers(path: &Path) -> [(u64, [u8; 16], [u8; 16]); 2] {
    let f = std::fs::read(path).unwrap();
    [0x10000usize, 0x20000].map(|at| {
        let h = &f[at..at + 4096];
        assert_eq!(&h[0..4], b"head");
        let mut z = h.to_vec();
        z[4..8].fill(0);
        assert_eq!(
            u32::from_le_bytes(h[4..8].try_into().unwrap()),
            crc32c_bitwise(&z),
            "header at {at:#x}"
        );
        (
            u64::from_le_bytes(h[8..16].try_into().unwrap()),
            h[16..32].try_into().unwrap(),
            h[32..48].try_into().unwrap(),
        )
    })
}

#[test]
fn vhdx_data_write_guid_changes_on_first_write_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path(), "images/container-gpt-dynamic.vhdx", "d.vhdx");
    let before = file_sha256(&path);
    let h0 = vhdx_headers(&path);
    let seq0 = h0[0].0.max(h0[1].0);
    // Opening for writing without writing changes nothing.
    drop(Disk::open_rw(&path).unwrap());
    assert_eq!(file_sha256(&path), before);

    let mut disk = Disk::open_rw(&path).unwrap();
    let g0 = disk.identity().data_write_guid.unwrap();
    disk.write_at(4 * MIB, b"first").unwrap();
    let g1 = disk.identity().data_write_guid.unwrap();
    assert_ne!(g0, g1);
    let h1 = vhdx_headers(&path);
    // Both headers rewritten with the next two sequence numbers, same GUIDs, valid CRCs.
    let mut seqs = [h1[0].0, h1[1].0];
    seqs.sort();
    assert_eq!(seqs, [seq0 + 1, seq0 + 2]);
    assert_eq!(h1[0].1, h1[1].1);
    assert_eq!(h1[0].2, h1[1].2);
    assert_eq!(vdisk::Guid::from_ms_bytes(h1[0].2), g1);
    assert_ne!(h1[0].1, h0[0].1, "FileWriteGuid must change too");

    disk.write_at(4 * MIB + 100, b"second").unwrap();
    assert_eq!(disk.identity().data_write_guid.unwrap(), g1);
    assert_eq!(
        vhdx_headers(&path),
        h1,
        "the second write must not touch the headers"
    );
    drop(disk);

    let reopened = Disk::open(&path).unwrap();
    assert_eq!(reopened.identity().data_write_guid.unwrap(), g1);
    drop(reopened);
    qemu_check(&path);
    // A new open for writing gets a new DataWriteGuid again on its first write.
    let mut again = Disk::open_rw(&path).unwrap();
    again.write_at(4 * MIB, b"third").unwrap();
    assert_ne!(again.identity().data_write_guid.unwrap(), g1);
}

#[test]
fn read_only_opens_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path(), "images/container-gpt-fixed.vhd", "f.vhd");
    let mut disk = Disk::open(&path).unwrap();
    assert!(!disk.is_writable());
    assert!(matches!(
        disk.write_at(0, &[0]),
        Err(Error::ReadOnlyOpen { .. })
    ));
    let mut s = vdisk::Slice::whole(&mut disk);
    assert_eq!(
        s.write(&[0]).unwrap_err().kind(),
        std::io::ErrorKind::PermissionDenied
    );

    // A file the process may not write: root ignores file modes, so use a sysfs file there.
    let ro = dir.path().join("ro.raw");
    std::fs::write(&ro, [0u8; 4096]).unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&ro, perm).unwrap();
    let target = if std::fs::OpenOptions::new().write(true).open(&ro).is_ok() {
        Path::new("/sys/kernel/notes").to_path_buf()
    } else {
        ro
    };
    if target.exists() {
        match Disk::open_rw(&target) {
            Err(Error::ReadOnlyImage { .. }) => {}
            other => panic!(
                "{}: expected ReadOnlyImage, got {other:?}",
                target.display()
            ),
        }
    }
}

#[test]
fn two_writers_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path(), "images/container-gpt-fixed.vhdx", "l.vhdx");
    let writer = Disk::open_rw(&path).unwrap();
    assert!(matches!(Disk::open_rw(&path), Err(Error::Locked { .. })));
    assert!(matches!(Disk::open(&path), Err(Error::Locked { .. })));
    drop(writer);
    let r1 = Disk::open(&path).unwrap();
    let _r2 = Disk::open(&path).unwrap();
    assert!(matches!(Disk::open_rw(&path), Err(Error::Locked { .. })));
    drop(r1);
}

/// A VHDX's header section saved before a write and put back after it gives the file back
/// byte for byte (the write changed the headers' write GUIDs and a payload block; the payload
/// is put back by writing its old bytes, as undo does). Anything that is not a header section
/// of a VHDX, or a disk that is not one, is refused with nothing written.
#[test]
fn vhdx_header_section_is_saved_and_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path(), "images/container-gpt-dynamic.vhdx", "disk.vhdx");
    let original = std::fs::read(&path).unwrap();
    let mut disk = Disk::open_rw(&path).unwrap();
    let saved = disk.vhdx_header_section().unwrap().expect("a VHDX");
    assert_eq!(saved.len() as u64, MIB);
    assert!(saved == original[..MIB as usize]);
    let at = 4 * MIB + 1234;
    let mut old = vec![0u8; 300];
    disk.read_at(at, &mut old).unwrap();
    disk.write_at(at, &[0x5a; 300]).unwrap();
    disk.write_at(at, &old).unwrap();
    assert!(
        std::fs::read(&path).unwrap()[..MIB as usize] != original[..MIB as usize],
        "the first write gave the headers new write GUIDs"
    );
    drop(disk);
    // Refused: not a header section (nothing written).
    let before = file_sha256(&path);
    let e = Disk::open_rw(&path)
        .unwrap()
        .restore_vhdx_header_section(&saved[1..])
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert_eq!(file_sha256(&path), before);
    Disk::open_rw(&path)
        .unwrap()
        .restore_vhdx_header_section(&saved)
        .unwrap();
    assert!(
        std::fs::read(&path).unwrap() == original,
        "the file is the original, byte for byte"
    );
    qemu_check(&path);

    // Not a VHDX: nothing to save, and nothing is written back.
    let raw = copy_fixture(dir.path(), "images/container-mbr-logical.raw", "disk.raw");
    let before = file_sha256(&raw);
    let disk = Disk::open_rw(&raw).unwrap();
    assert!(disk.vhdx_header_section().unwrap().is_none());
    let e = disk.restore_vhdx_header_section(&saved).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert_eq!(file_sha256(&raw), before);
}
