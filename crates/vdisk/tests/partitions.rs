//! Partition tables, checked against sfdisk's JSON dump (live) and pinned expectations.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::process::Command;

use common::*;
use vdisk::{Disk, FileSystem, PartitionType, Slice, TableKind};

/// (start sector, sectors, type, uuid, name) per partition as `sfdisk -J` reports them.
type Row = (u64, u64, String, String, String);

fn sfdisk(raw: &std::path::Path) -> Option<(String, Vec<Row>)> {
    if !have("sfdisk") {
        return None;
    }
    let out = Command::new("sfdisk").arg("-J").arg(raw).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["partitiontable"];
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_lowercase();
    let parts = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                s(&p["type"]),
                s(&p["uuid"]),
                p["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Some((s(&t["label"]), parts))
}

/// The raw content of a container fixture, written out for sfdisk.
fn raw_copy(name: &str, dir: &std::path::Path) -> (Disk, std::path::PathBuf) {
    let disk = Disk::open(fixtures::path(name)).unwrap();
    let p = dir.join("disk.raw");
    std::fs::write(&p, read_all(&disk)).unwrap();
    (disk, p)
}

#[test]
fn gpt_behind_protective_mbr() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "images/container-gpt-dynamic.vhd",
        "images/container-gpt-fixed.vhdx",
    ] {
        let (disk, raw) = raw_copy(name, dir.path());
        let t = vdisk::read_partitions(&disk).unwrap();
        assert_eq!(t.kind, TableKind::Gpt);
        assert_eq!(t.sector_size, 512);
        assert_eq!(
            t.disk_guid.unwrap().to_string(),
            "6b5a1d2e-0c4f-4e53-9d1a-3c6f1b7a9e01"
        );
        let got: Vec<_> = t
            .partitions
            .iter()
            .map(|p| {
                let PartitionType::Gpt(ty) = p.kind else {
                    panic!("{p:?}")
                };
                (
                    p.start / 512,
                    p.len / 512,
                    ty.to_string(),
                    p.guid.unwrap().to_string(),
                    p.name.clone(),
                )
            })
            .collect();
        let want = vec![
            (
                2048,
                4096,
                vdisk::GPT_EFI_SYSTEM.to_string(),
                "11111111-2222-4333-8444-555555555501".to_string(),
                "EFI system partition".to_string(),
            ),
            (
                6144,
                16384,
                vdisk::GPT_BASIC_DATA.to_string(),
                "11111111-2222-4333-8444-555555555502".to_string(),
                "Windows".to_string(),
            ),
            (
                22528,
                2048,
                vdisk::GPT_MICROSOFT_RESERVED.to_string(),
                "11111111-2222-4333-8444-555555555503".to_string(),
                "Microsoft reserved".to_string(),
            ),
        ];
        assert_eq!(got, want, "{name}");
        if let Some((label, theirs)) = sfdisk(&raw) {
            assert_eq!(label, "gpt");
            assert_eq!(got, theirs, "{name}: differs from sfdisk -J");
        }
        assert_eq!(
            t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let windows = t.partitions.iter().find(|p| p.is_windows_data()).unwrap();
        assert_eq!(windows.filesystem, Some(FileSystem::Ntfs));
        assert_eq!(t.partitions[0].filesystem, None);

        // Read + Seek over the partition: its first sector is the NTFS boot sector of
        // ntfs-rs-testfs1, and its 0x5a run sits at 4 MiB - 3 MiB into it.
        let mut s = Slice::partition(&disk, windows).unwrap();
        let mut boot = [0u8; 512];
        s.read_exact(&mut boot).unwrap();
        assert_eq!(&boot[..], &fixtures::bytes("images/ntfs-rs-testfs1")[..512]);
        s.seek(SeekFrom::Start((4 << 20) - (3 << 20))).unwrap();
        let mut run = vec![0u8; 65536];
        s.read_exact(&mut run).unwrap();
        assert!(run.iter().all(|&b| b == 0x5a));
        // Reads stop at the end of the partition.
        s.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = [0u8; 64];
        assert_eq!(s.read(&mut tail).unwrap(), 10);
        assert_eq!(s.read(&mut tail).unwrap(), 0);
    }
}

#[test]
fn mbr_with_logical_partitions() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "images/container-mbr-logical.raw",
        "images/container-mbr-dynamic.vhdx",
    ] {
        let (disk, raw) = raw_copy(name, dir.path());
        let t = vdisk::read_partitions(&disk).unwrap();
        assert_eq!(t.kind, TableKind::Mbr);
        assert_eq!(t.disk_signature, Some(0x1234_abcd));
        let got: Vec<_> = t
            .partitions
            .iter()
            .map(|p| {
                let PartitionType::Mbr(ty) = p.kind else {
                    panic!("{p:?}")
                };
                (p.index, p.start / 512, p.len / 512, ty, p.bootable)
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, 2048, 4096, 7, true),
                (5, 8192, 2048, 7, false),
                (6, 12288, 2048, 0x0b, false)
            ],
            "{name}"
        );
        assert_eq!(t.partitions[0].filesystem, Some(FileSystem::Ntfs));
        if let Some((label, theirs)) = sfdisk(&raw) {
            assert_eq!(label, "dos");
            // sfdisk also lists the extended container (type 5), which is not a volume.
            let theirs: Vec<_> = theirs
                .into_iter()
                .filter(|p| p.2 != "5")
                .map(|p| (p.0, p.1, u8::from_str_radix(&p.2, 16).unwrap()))
                .collect();
            let ours: Vec<_> = got.iter().map(|g| (g.1, g.2, g.3)).collect();
            assert_eq!(ours, theirs, "{name}: differs from sfdisk -J");
        }
    }
}

#[test]
fn gpt_with_4096_byte_sectors() {
    let disk = Disk::open(fixtures::path("images/container-gpt4k-dynamic.vhd")).unwrap();
    let t = vdisk::read_partitions(&disk).unwrap();
    assert_eq!((t.kind, t.sector_size), (TableKind::Gpt, 4096));
    // fdisk -b 4096 -l: "Start 256 End 1791 Sectors 1536 Microsoft basic data".
    assert_eq!(t.partitions.len(), 1);
    let p = &t.partitions[0];
    assert_eq!((p.start, p.len), (256 * 4096, 1536 * 4096));
    assert!(p.is_windows_data());
    assert_eq!(p.filesystem, Some(FileSystem::Ntfs));
    assert_eq!(
        p.guid.unwrap().to_string(),
        "11111111-2222-4333-8444-555555555504"
    );
    assert_eq!(
        t.disk_guid.unwrap().to_string(),
        "0b719758-622a-eb48-b0a0-934510b4f82b"
    );
}

#[test]
fn bare_ntfs_volume() {
    let disk = Disk::open(fixtures::path("images/ntfs-rs-testfs1")).unwrap();
    let t = vdisk::read_partitions(&disk).unwrap();
    assert_eq!(t.kind, TableKind::BareVolume);
    assert_eq!(t.partitions.len(), 1);
    let p = &t.partitions[0];
    assert_eq!(
        (p.start, p.len, p.kind),
        (0, disk.size(), PartitionType::Volume)
    );
    assert_eq!(p.filesystem, Some(FileSystem::Ntfs));
}

/// The real qcow2 from dfvfs, converted the way the refusal message says, is a bare NTFS volume.
#[test]
fn converted_qcow2_is_a_bare_ntfs_volume() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("windows_volume.raw");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(fixtures::path("images/dfvfs-windows_volume.qcow2"))
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    let disk = Disk::open(&raw).unwrap();
    let t = vdisk::read_partitions(&disk).unwrap();
    assert_eq!(t.kind, TableKind::BareVolume);
    assert_eq!(t.partitions[0].filesystem, Some(FileSystem::Ntfs));
}
