//! Partition tables: GPT (through `gptman`), MBR (through `mbrman`), or a bare volume.
//!
//! Sources: UEFI Specification 2.10, 5.2 (legacy and protective MBR) and 5.3 (GPT header and
//! partition entry array); the MBR/EBR layout as documented with `mbrman`.
//!
//! `gptman` and `mbrman` trust some fields: they allocate by the GPT entry count and panic when
//! every used partition starts at sector 0 or when EBR arithmetic overflows. So before either
//! is called, the fields they use are checked here with capped, checked arithmetic.

use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::util::{crc32, le32, le64, Guid};

/// Most GPT partition entries accepted. The UEFI minimum array holds 128; no partitioning tool
/// writes more than a few hundred. Keeps the entry array read under 4 MiB.
const MAX_GPT_ENTRIES: u32 = 4096;
/// The one GPT entry size read. The specification allows 128 * 2^n, but every partitioning
/// tool writes 128, and gptman checks the entry array's CRC32 with an assertion that only holds
/// for 128-byte entries: any other size would panic there instead of failing with a reason.
const GPT_ENTRY_SIZE: u32 = 128;
/// Most logical partitions followed in an MBR extended partition's EBR chain.
const MAX_LOGICAL: usize = 128;

/// How the disk is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TableKind {
    /// A GUID partition table (behind a protective MBR).
    Gpt,
    /// A classic MBR, with logical partitions from an extended partition if present.
    Mbr,
    /// No partition table: a file system starts at offset 0 and fills the disk.
    BareVolume,
    /// Neither a partition table nor a known file system was found.
    Unknown,
}

/// The type of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum PartitionType {
    /// A GPT partition type GUID.
    Gpt(Guid),
    /// An MBR system id (0x07 NTFS/exFAT, 0x27 Windows RE, 0xee protective, ...).
    Mbr(u8),
    /// The whole disk, for a bare volume.
    Volume,
}

/// File systems recognised by their boot sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum FileSystem {
    /// "NTFS    " at offset 3.
    Ntfs,
    /// FAT12/16/32 ("FAT" at offset 0x36 or 0x52).
    Fat,
    /// "EXFAT   " at offset 3.
    ExFat,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Partition {
    /// 1-based number: the GPT entry index + 1, the MBR slot (1-4) or 5.. for logical
    /// partitions (as Linux numbers them); 1 for a bare volume.
    pub index: u32,
    /// Byte offset of the partition on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Its type.
    pub kind: PartitionType,
    /// GPT partition name (empty for MBR).
    pub name: String,
    /// GPT unique partition GUID.
    pub guid: Option<Guid>,
    /// MBR active flag.
    pub bootable: bool,
    /// The file system found at its start, if recognised.
    pub filesystem: Option<FileSystem>,
}

impl Partition {
    /// Whether the type says "Microsoft basic data" (GPT) or NTFS/exFAT/FAT (MBR), the kinds
    /// that hold a Windows volume.
    pub fn is_windows_data(&self) -> bool {
        match self.kind {
            PartitionType::Gpt(g) => g.to_string() == GPT_BASIC_DATA,
            PartitionType::Mbr(t) => matches!(t, 0x06 | 0x07 | 0x0b | 0x0c | 0x0e),
            PartitionType::Volume => true,
        }
    }
}

/// GPT "Microsoft basic data" type.
pub const GPT_BASIC_DATA: &str = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";
/// GPT EFI system partition type.
pub const GPT_EFI_SYSTEM: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// GPT Microsoft reserved type.
pub const GPT_MICROSOFT_RESERVED: &str = "e3c9e316-0b5c-4db8-817d-f92df00215ae";
/// GPT Windows recovery environment type.
pub const GPT_WINDOWS_RECOVERY: &str = "de94bba4-06d1-4d40-a16a-bfd50179d6ac";

/// The layout of a disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionTable {
    /// GPT, MBR, bare volume or unknown.
    pub kind: TableKind,
    /// Sector size the table was found with (512 or 4096).
    pub sector_size: u64,
    /// GPT disk GUID.
    pub disk_guid: Option<Guid>,
    /// MBR disk signature.
    pub disk_signature: Option<u32>,
    /// Used partitions in table order.
    pub partitions: Vec<Partition>,
}

fn table_err(table: &'static str, reason: String) -> Error {
    Error::PartitionTable { table, reason }
}

/// Recognises a file system boot sector.
pub fn detect_filesystem(sector: &[u8]) -> Option<FileSystem> {
    if sector.len() < 512 || sector[510..512] != [0x55, 0xAA] {
        return None;
    }
    if &sector[3..11] == b"NTFS    " {
        Some(FileSystem::Ntfs)
    } else if &sector[3..11] == b"EXFAT   " {
        Some(FileSystem::ExFat)
    } else if sector[0x36..0x39] == *b"FAT" || sector[0x52..0x57] == *b"FAT32" {
        Some(FileSystem::Fat)
    } else {
        None
    }
}

fn read_sector(disk: &Disk, offset: u64, len: u64) -> Result<Option<Vec<u8>>> {
    match offset.checked_add(len) {
        Some(end) if end <= disk.size() => {
            let mut b = vec![0u8; len as usize];
            disk.read_at(offset, &mut b)?;
            Ok(Some(b))
        }
        _ => Ok(None),
    }
}

fn probe(disk: &Disk, start: u64) -> Option<FileSystem> {
    read_sector(disk, start, 512)
        .ok()
        .flatten()
        .and_then(|s| detect_filesystem(&s))
}

/// Finds the file system of every partition. Behind a URL their first sectors are fetched
/// first, all at once and only them: read one by one, each would cost a round trip and the
/// read-ahead after it (a reserved partition's, say, is never read again).
fn probe_all(disk: &Disk, partitions: &mut [Partition]) -> Result<()> {
    let firsts: Vec<(u64, u64)> = partitions.iter().map(|p| (p.start, 512)).collect();
    disk.prefetch(&firsts)?;
    for p in partitions {
        p.filesystem = probe(disk, p.start);
    }
    Ok(())
}

/// Reads the partition table of `disk`.
///
/// A GPT is looked for at sector 1 with 512- and 4096-byte sectors (and in the backup header at
/// the last sector when a protective MBR says so); a file system boot sector at offset 0 makes
/// a bare volume; otherwise a boot signature makes an MBR.
pub fn read_partitions(disk: &Disk) -> Result<PartitionTable> {
    let mbr = read_sector(disk, 0, 512)?;
    let protective = mbr.as_ref().is_some_and(|m| {
        m[510..512] == [0x55, 0xAA] && (0..4).any(|i| m[446 + i * 16 + 4] == 0xEE)
    });
    let mut gpt_ss = None;
    for ss in [512u64, 4096] {
        if read_sector(disk, ss, 8)?.is_some_and(|s| s == b"EFI PART") {
            gpt_ss = Some(ss);
            break;
        }
    }
    if gpt_ss.is_none() && protective {
        for ss in [512u64, 4096] {
            let last = (disk.size() / ss).checked_sub(1).map(|l| l * ss);
            if let Some(at) = last {
                if read_sector(disk, at, 8)?.is_some_and(|s| s == b"EFI PART") {
                    gpt_ss = Some(ss);
                    break;
                }
            }
        }
    }
    if let Some(ss) = gpt_ss {
        return read_gpt(disk, ss);
    }
    if protective {
        return Err(table_err(
            "GPT",
            "a protective MBR (type 0xee) was found but no GPT header at sector 1 or at the last sector".into(),
        ));
    }
    let Some(mbr) = mbr else {
        return Ok(unknown());
    };
    if let Some(fs) = detect_filesystem(&mbr) {
        return Ok(PartitionTable {
            kind: TableKind::BareVolume,
            sector_size: 512,
            disk_guid: None,
            disk_signature: None,
            partitions: vec![Partition {
                index: 1,
                start: 0,
                len: disk.size(),
                kind: PartitionType::Volume,
                name: String::new(),
                guid: None,
                bootable: false,
                filesystem: Some(fs),
            }],
        });
    }
    if mbr[510..512] == [0x55, 0xAA] {
        return read_mbr(disk, &mbr);
    }
    Ok(unknown())
}

fn unknown() -> PartitionTable {
    PartitionTable {
        kind: TableKind::Unknown,
        sector_size: 512,
        disk_guid: None,
        disk_signature: None,
        partitions: Vec::new(),
    }
}

/// Checks a GPT header at `at` the way gptman will use it. Returns Ok(false) if gptman would
/// skip it (bad signature or CRC), Ok(true) if it is safe to hand over, Err if it is valid but
/// hostile.
fn precheck_gpt_header(disk: &Disk, at: u64, ss: u64) -> Result<bool> {
    let Some(h) = read_sector(disk, at, 92)? else {
        return Ok(false);
    };
    if &h[0..8] != b"EFI PART" || le32(&h, 12) != 92 || h[8..12] != [0, 0, 1, 0] {
        return Ok(false);
    }
    let mut z = h.clone();
    z[16..20].fill(0);
    if crc32(&z) != le32(&h, 16) {
        return Ok(false);
    }
    let entry_lba = le64(&h, 72);
    let count = le32(&h, 80);
    let esize = le32(&h, 84);
    if count > MAX_GPT_ENTRIES {
        return Err(table_err("GPT", format!("header at offset {at:#x}: NumberOfPartitionEntries is {count}, expected at most {MAX_GPT_ENTRIES}")));
    }
    if esize != GPT_ENTRY_SIZE {
        return Err(table_err("GPT", format!("header at offset {at:#x}: SizeOfPartitionEntry is {esize}; only {GPT_ENTRY_SIZE}-byte entries are read")));
    }
    let array_len = u64::from(count) * u64::from(esize);
    let array_at = entry_lba.checked_mul(ss);
    let Some(array) = array_at.and_then(|a| read_sector(disk, a, array_len).transpose()) else {
        return Err(table_err("GPT", format!("header at offset {at:#x}: partition entry array at LBA {entry_lba} ({array_len} bytes) lies outside the disk")));
    };
    let array = array?;
    for (i, e) in array.chunks_exact(esize as usize).enumerate() {
        if e[0..16] == [0; 16] {
            continue;
        }
        let first = le64(e, 32);
        let last = le64(e, 40);
        if first == 0
            || last < first
            || last
                .checked_add(1)
                .and_then(|l| l.checked_mul(ss))
                .is_none()
        {
            return Err(table_err(
                "GPT",
                format!(
                    "entry {} at offset {:#x}: sectors {first}..={last} are not a valid range",
                    i + 1,
                    array_at.unwrap_or(0) + i as u64 * u64::from(esize)
                ),
            ));
        }
    }
    Ok(true)
}

fn read_gpt(disk: &Disk, ss: u64) -> Result<PartitionTable> {
    let last = (disk.size() / ss).saturating_sub(1) * ss;
    let primary = precheck_gpt_header(disk, ss, ss)?;
    let backup = precheck_gpt_header(disk, last, ss)?;
    if !primary && !backup {
        return Err(table_err("GPT", format!("neither the header at offset {ss:#x} nor the backup at {last:#x} has a valid signature, size and CRC32")));
    }
    let mut reader = disk.reader();
    let gpt = gptman::GPT::read_from(&mut reader, ss)
        .map_err(|e| table_err("GPT", format!("with {ss}-byte sectors: {e}")))?;
    let mut partitions = Vec::new();
    for (i, e) in gpt.iter() {
        if !e.is_used() {
            continue;
        }
        // The precheck bounded both LBAs and the multiplication.
        let start = e.starting_lba * ss;
        let len = (e.ending_lba - e.starting_lba + 1) * ss;
        partitions.push(Partition {
            index: i,
            start,
            len,
            kind: PartitionType::Gpt(Guid::from_ms_bytes(e.partition_type_guid)),
            name: e.partition_name.as_str().to_string(),
            guid: Some(Guid::from_ms_bytes(e.unique_partition_guid)),
            bootable: false,
            filesystem: None,
        });
    }
    probe_all(disk, &mut partitions)?;
    Ok(PartitionTable {
        kind: TableKind::Gpt,
        sector_size: ss,
        disk_guid: Some(Guid::from_ms_bytes(gpt.header.disk_guid)),
        disk_signature: None,
        partitions,
    })
}

struct MbrEntry {
    boot: u8,
    sys: u8,
    start: u32,
}

fn mbr_entry(s: &[u8], i: usize) -> MbrEntry {
    let e = &s[446 + i * 16..462 + i * 16];
    MbrEntry {
        boot: e[0],
        sys: e[4],
        start: le32(e, 8),
    }
}

fn is_extended(sys: u8) -> bool {
    // The same set mbrman follows.
    matches!(sys, 0x05 | 0x0f | 0x85 | 0xc5 | 0xd5)
}

/// Walks the MBR and its EBR chain as mbrman will, rejecting what would make it panic.
fn precheck_mbr(disk: &Disk, mbr: &[u8]) -> Result<()> {
    const SS: u64 = 512;
    let mut extended = None;
    for i in 0..4 {
        let e = mbr_entry(mbr, i);
        if e.boot != 0 && e.boot != 0x80 {
            return Err(table_err(
                "MBR",
                format!(
                    "entry {} at offset {:#x}: boot flag is {:#04x}, expected 0x00 or 0x80",
                    i + 1,
                    446 + i * 16,
                    e.boot
                ),
            ));
        }
        if e.sys != 0 && e.start == 0 {
            return Err(table_err(
                "MBR",
                format!(
                    "entry {} at offset {:#x}: partition of type {:#04x} starts at sector 0",
                    i + 1,
                    446 + i * 16,
                    e.sys
                ),
            ));
        }
        if extended.is_none() && is_extended(e.sys) {
            extended = Some(e);
        }
    }
    let Some(ext) = extended else {
        return Ok(());
    };
    let mut rel: u32 = 0;
    for n in 0..=MAX_LOGICAL {
        if n == MAX_LOGICAL {
            return Err(table_err("MBR", format!("more than {MAX_LOGICAL} logical partitions in the extended partition at sector {}", ext.start)));
        }
        let abs = ext.start.checked_add(rel).ok_or_else(|| {
            table_err(
                "MBR",
                format!("EBR {n}: sector {} + {rel} overflows", ext.start),
            )
        })?;
        let at = u64::from(abs) * SS;
        let Some(ebr) = read_sector(disk, at, SS)? else {
            if rel == 0 {
                return Ok(());
            }
            return Err(table_err(
                "MBR",
                format!("EBR {n} at offset {at:#x} lies beyond the end of the disk"),
            ));
        };
        if ebr[510..512] != [0x55, 0xAA] {
            if rel == 0 {
                return Ok(());
            }
            return Err(table_err(
                "MBR",
                format!("EBR {n} at offset {at:#x}: no boot signature 0x55aa"),
            ));
        }
        let logical = mbr_entry(&ebr, 0);
        let next = mbr_entry(&ebr, 1);
        for (e, what) in [(&logical, "logical partition"), (&next, "next EBR link")] {
            if e.boot != 0 && e.boot != 0x80 {
                return Err(table_err(
                    "MBR",
                    format!(
                        "EBR {n} at offset {at:#x}: {what} boot flag is {:#04x}",
                        e.boot
                    ),
                ));
            }
        }
        if logical.start.checked_add(abs).is_none() {
            return Err(table_err(
                "MBR",
                format!(
                    "EBR {n} at offset {at:#x}: logical partition start {} + {abs} overflows",
                    logical.start
                ),
            ));
        }
        if next.start > 0 && rel >= next.start {
            return Err(table_err("MBR", format!("EBR {n} at offset {at:#x}: next EBR at relative sector {} does not come after {rel}", next.start)));
        }
        rel = next.start;
        if rel == 0 {
            return Ok(());
        }
    }
    Ok(())
}

fn read_mbr(disk: &Disk, sector0: &[u8]) -> Result<PartitionTable> {
    precheck_mbr(disk, sector0)?;
    let mut reader = disk.reader();
    let mbr =
        mbrman::MBR::read_from(&mut reader, 512).map_err(|e| table_err("MBR", e.to_string()))?;
    let mut partitions = Vec::new();
    for (i, e) in mbr.iter() {
        if !e.is_used() || e.sectors == 0 || is_extended(e.sys) {
            continue;
        }
        let start = u64::from(e.starting_lba) * 512;
        partitions.push(Partition {
            index: i as u32,
            start,
            len: u64::from(e.sectors) * 512,
            kind: PartitionType::Mbr(e.sys),
            name: String::new(),
            guid: None,
            bootable: e.boot == 0x80,
            filesystem: None,
        });
    }
    probe_all(disk, &mut partitions)?;
    Ok(PartitionTable {
        kind: TableKind::Mbr,
        sector_size: 512,
        disk_guid: None,
        disk_signature: Some(u32::from_le_bytes([
            sector0[440],
            sector0[441],
            sector0[442],
            sector0[443],
        ])),
        partitions,
    })
}
