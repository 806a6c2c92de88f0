//! FAT12, FAT16 and FAT32 on one partition, for offline repair: a fully checked boot sector,
//! case-insensitive path lookup through long file names, file reads, and each file's extents
//! (the byte ranges of the partition that hold it) so that a caller can write into the clusters
//! a file already owns without touching the FAT, the directory or the file's size.
//!
//! # Getting started
//! 1. Give [`Volume::open`] a reader (`Read + Seek`) that presents the partition from its first
//!    byte (a partition slice from the disk-container layer, or a bare volume image). Every
//!    field of the boot sector is checked against the others and against the reader's length.
//! 2. Find a file with [`Volume::lookup`] (`EFI\Microsoft\Boot\BCD`, any case, `\` or `/`).
//!    The [`FileEntry`] owns its size and [`Extent`]s.
//! 3. Read it with [`Volume::read_file`]; map a byte range of it to partition ranges with
//!    [`FileEntry::plan_write`] (never past its size).
//!
//! ```no_run
//! # fn main() -> Result<(), fat::Error> {
//! let mut part = std::fs::File::open("esp.img").map_err(|source| fat::Error::Io { offset: 0, source })?;
//! let vol = fat::Volume::open(&mut part)?;
//! if let Some(bcd) = vol.lookup(&mut part, r"EFI\Microsoft\Boot\BCD")? {
//!     let bytes = vol.read_file(&mut part, &bcd)?;
//!     let ranges = bcd.plan_write(0x1000, 0x1000)?; // where page 1 of the file lies
//! #   let _ = (bytes, ranges);
//! }
//! # Ok(()) }
//! ```
//!
//! Sources: Microsoft, "FAT: General Overview of On-Disk Format" (fatgen103, version 1.03),
//! sections "Boot Sector and BPB", "FAT Type Determination", "FAT Data Structure", "FAT
//! Directory Structure" and "FAT Long Directory Entries".
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use crate::error::io_at;
pub use crate::error::{Error, Result};

/// [`Volume::read_file`] refuses files larger than this.
pub const MAX_READ_TO_VEC: u64 = 1 << 30;

/// fatgen103 "FAT Directory Structure": a directory holds at most 65536 32-byte entries. A
/// directory chain longer than that is damage (or a loop), not a directory.
const MAX_DIR_BYTES: u64 = 65536 * 32;
/// Limits against damaged volumes and hostile paths.
const MAX_PATH_COMPONENTS: usize = 64;
/// The largest cluster any FAT implementation formats (64 sectors of 4 KiB); larger values in a
/// boot sector are damage.
const MAX_CLUSTER_SIZE: u32 = 256 * 1024;
/// A long name has at most 255 UTF-16 units: 20 entries of 13.
const MAX_LFN_ENTRIES: u8 = 20;

/// fatgen103 "FAT Type Determination": the type follows from the count of data clusters only.
const FAT12_MAX_CLUSTERS: u32 = 4084;
const FAT16_MAX_CLUSTERS: u32 = 65524;
/// Cluster numbers are 28 bits on FAT32, and 0x0FFFFFF7 upward are reserved.
const FAT32_MAX_CLUSTERS: u32 = 0x0FFF_FFF4;

const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_LONG_NAME: u8 = 0x0F;
const ENTRY: usize = 32;

/// The FAT variant, decided by the count of data clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatKind {
    /// 12-bit FAT entries (fewer than 4085 clusters).
    Fat12,
    /// 16-bit FAT entries (fewer than 65525 clusters).
    Fat16,
    /// 28-bit FAT entries in 32-bit words.
    Fat32,
}

/// Where the root directory lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    /// FAT12/16: a fixed region after the FATs.
    Fixed { offset: u64, len: u64 },
    /// FAT32: a cluster chain.
    Cluster(u32),
}

/// An opened FAT volume. It holds no reader: every call takes the partition reader (`&mut T`,
/// starting at the partition's first byte), as the `volume` crate does for NTFS.
#[derive(Clone, Debug)]
pub struct Volume {
    kind: FatKind,
    cluster_size: u32,
    /// Partition offset of the first FAT.
    fat_offset: u64,
    /// Partition offset of cluster 2.
    data_offset: u64,
    /// Data clusters (numbered 2 ..= cluster_count + 1).
    cluster_count: u32,
    root: Root,
    label: Option<String>,
    dirty: bool,
}

/// One contiguous run of clusters of a file, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// File offset of the run's first byte.
    pub file_offset: u64,
    /// Length in bytes (whole clusters; the last run may extend past the file size).
    pub len: u64,
    /// Partition offset of the run's first byte.
    pub partition_offset: u64,
}

/// One contiguous piece of a planned in-place write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteExtent {
    /// File offset of the piece's first byte.
    pub file_offset: u64,
    /// Partition offset of the piece's first byte.
    pub partition_offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A file or directory found by path. It owns its layout, as found when it was looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    path: String,
    is_directory: bool,
    size: u64,
    first_cluster: u32,
    extents: Vec<Extent>,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirItem {
    /// The long name if it has a valid one, else the 8.3 name.
    pub name: String,
    /// Whether it is a directory.
    pub is_directory: bool,
    /// The size the entry records (0 for directories).
    pub size: u64,
}

/// A directory entry as parsed, before its chain is followed.
struct RawEntry {
    name: String,
    /// The 8.3 name (the same as `name` without a long name).
    short: String,
    is_directory: bool,
    size: u32,
    first_cluster: u32,
    /// Partition offset of its 32-byte short entry.
    offset: u64,
}

impl FileEntry {
    /// The path with the on-disk names, components joined by `\`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this is a directory.
    pub fn is_directory(&self) -> bool {
        self.is_directory
    }

    /// The file size (0 for a directory, as FAT records it).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first cluster (0 for an empty file).
    pub fn first_cluster(&self) -> u32 {
        self.first_cluster
    }

    /// The clusters the file owns, merged into runs, in file order. A file's runs cover
    /// exactly the clusters its size needs (its chain is checked to end there).
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Maps the file range `file_offset .. file_offset + len` to partition ranges, for an
    /// in-place write into clusters the file already owns. Refuses directories and any range
    /// past the file size: the FAT and the directory entry are never changed.
    pub fn plan_write(&self, file_offset: u64, len: u64) -> Result<Vec<WriteExtent>> {
        if self.is_directory {
            return Err(Error::IsADirectory {
                path: self.path.clone(),
            });
        }
        let end = file_offset.checked_add(len);
        let end = match end {
            Some(e) if e <= self.size => e,
            _ => {
                return Err(Error::PastEnd {
                    path: self.path.clone(),
                    start: file_offset,
                    end: end.unwrap_or(u64::MAX),
                    size: self.size,
                })
            }
        };
        let mut plan = Vec::new();
        let mut pos = file_offset;
        while pos < end {
            // The extents cover 0..size without gaps (built that way in `lookup`).
            let i = self
                .extents
                .partition_point(|e| e.file_offset + e.len <= pos);
            let Some(ext) = self.extents.get(i) else {
                break;
            };
            let piece = (ext.file_offset + ext.len).min(end) - pos;
            plan.push(WriteExtent {
                file_offset: pos,
                partition_offset: ext.partition_offset + (pos - ext.file_offset),
                len: piece,
            });
            pos += piece;
        }
        Ok(plan)
    }
}

fn read_at<T: Read + Seek>(fs: &mut T, offset: u64, buf: &mut [u8]) -> Result<()> {
    fs.seek(SeekFrom::Start(offset)).map_err(io_at(offset))?;
    fs.read_exact(buf).map_err(io_at(offset))
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// What a FAT entry says about the cluster after this one.
enum Next {
    Cluster(u32),
    End,
    Free,
    Bad,
    /// 1, or a reserved value, or a cluster past the volume.
    Invalid(u32),
}

/// Windows compares file names with an upper-case table; Unicode's simple upper-case mapping
/// agrees with it on every name a boot store path uses.
fn eq_ci(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// fatgen103 "FAT Long Directory Entries": the checksum of the 11-byte short name that each
/// long-name entry carries.
fn short_checksum(name: &[u8]) -> u8 {
    name.iter().fold(0u8, |sum, &b| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b)
    })
}

/// The 8.3 name of a short entry. Bytes above 0x7F are in the volume's OEM code page, which
/// the volume does not name: they are shown as Latin-1 (lookups here use ASCII paths).
fn short_name(e: &[u8]) -> String {
    let mut base: Vec<u8> = e[0..8].to_vec();
    if base[0] == 0x05 {
        // 0x05 stands for a real first byte 0xE5 (which marks deleted entries).
        base[0] = 0xE5;
    }
    let ext = &e[8..11];
    // Windows NT case bits (byte 12): 0x08 the base, 0x10 the extension, in lower case.
    let lower_base = e[12] & 0x08 != 0;
    let lower_ext = e[12] & 0x10 != 0;
    let text = |b: &[u8], lower: bool| -> String {
        let s: String = b.iter().map(|&c| char::from(c)).collect();
        let s = s.trim_end_matches(' ').to_string();
        if lower {
            s.to_ascii_lowercase()
        } else {
            s
        }
    };
    let base = text(&base, lower_base);
    let ext = text(ext, lower_ext);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// Long-name entries gathered before their short entry.
struct LongName {
    units: Vec<u16>,
    /// The sequence number the next entry must have (counting down to 1).
    next: u8,
    checksum: u8,
}

impl Volume {
    /// Opens the FAT volume that `fs` presents from its byte 0. Every boot sector field is
    /// checked: sizes must be among those the format allows and the FATs, root directory and
    /// data area must fit in the reader; errors name the field's offset.
    pub fn open<T: Read + Seek>(fs: &mut T) -> Result<Volume> {
        let len = fs.seek(SeekFrom::End(0)).map_err(io_at(0))?;
        let bad = |offset: u64, what: String| Error::BootSector { offset, what };
        if len < 512 {
            return Err(bad(
                0,
                format!("the partition is {len} bytes, less than one sector"),
            ));
        }
        let mut bs = [0u8; 512];
        read_at(fs, 0, &mut bs)?;
        if bs[510..512] != [0x55, 0xAA] {
            return Err(bad(
                0x1fe,
                format!(
                    "boot signature {:02x} {:02x}, expected 55 aa",
                    bs[510], bs[511]
                ),
            ));
        }
        let bps = u16_at(&bs, 0x0b);
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return Err(bad(
                0x0b,
                format!("bytes per sector {bps}, expected 512, 1024, 2048 or 4096"),
            ));
        }
        let bps = u64::from(bps);
        let spc = bs[0x0d];
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad(
                0x0d,
                format!("sectors per cluster {spc}, expected a power of two from 1 to 128"),
            ));
        }
        let cluster_size = bps as u32 * u32::from(spc);
        if cluster_size > MAX_CLUSTER_SIZE {
            return Err(bad(
                0x0d,
                format!("clusters of {cluster_size} bytes, more than {MAX_CLUSTER_SIZE}"),
            ));
        }
        let reserved = u64::from(u16_at(&bs, 0x0e));
        if reserved == 0 {
            return Err(bad(
                0x0e,
                "0 reserved sectors (the boot sector is one)".into(),
            ));
        }
        let nfats = bs[0x10];
        if !(1..=2).contains(&nfats) {
            return Err(bad(0x10, format!("{nfats} FATs, expected 1 or 2")));
        }
        let root_entries = u64::from(u16_at(&bs, 0x11));
        let total16 = u16_at(&bs, 0x13);
        let total = if total16 != 0 {
            u64::from(total16)
        } else {
            u64::from(u32_at(&bs, 0x20))
        };
        let total_at = if total16 != 0 { 0x13 } else { 0x20 };
        if total == 0 {
            return Err(bad(0x20, "the volume has 0 sectors".into()));
        }
        if total * bps > len {
            return Err(bad(
                total_at,
                format!(
                    "the volume claims {total} sectors ({} bytes), the partition has {len} bytes",
                    total * bps
                ),
            ));
        }
        let media = bs[0x15];
        if !(media == 0xF0 || media >= 0xF8) {
            return Err(bad(
                0x15,
                format!("media byte {media:#04x}, expected 0xf0 or 0xf8..0xff"),
            ));
        }
        let fat16 = u16_at(&bs, 0x16);
        let (fat_sectors, fat_at) = if fat16 != 0 {
            (u64::from(fat16), 0x16)
        } else {
            (u64::from(u32_at(&bs, 0x24)), 0x24)
        };
        if fat_sectors == 0 {
            return Err(bad(0x24, "FATs of 0 sectors".into()));
        }
        let root_sectors = (root_entries * ENTRY as u64).div_ceil(bps);
        // All below are at most 2^16 + 2 * 2^32 + 2^16 sectors: no overflow in u64.
        let first_data = reserved + u64::from(nfats) * fat_sectors + root_sectors;
        if first_data >= total {
            return Err(bad(
                fat_at,
                format!(
                    "the FATs and root directory end at sector {first_data}, the volume has {total} sectors"
                ),
            ));
        }
        let clusters = (total - first_data) / u64::from(spc);
        let cluster_count = u32::try_from(clusters)
            .ok()
            .filter(|&c| (1..=FAT32_MAX_CLUSTERS).contains(&c))
            .ok_or_else(|| {
                bad(
                    total_at,
                    format!("{clusters} data clusters, expected 1 to {FAT32_MAX_CLUSTERS}"),
                )
            })?;
        let kind = if cluster_count <= FAT12_MAX_CLUSTERS {
            FatKind::Fat12
        } else if cluster_count <= FAT16_MAX_CLUSTERS {
            FatKind::Fat16
        } else {
            FatKind::Fat32
        };
        let root = if kind == FatKind::Fat32 {
            if fat16 != 0 {
                return Err(bad(
                    0x16,
                    format!("{cluster_count} clusters make FAT32, whose 16-bit FAT size must be 0, not {fat16}"),
                ));
            }
            if root_entries != 0 {
                return Err(bad(
                    0x11,
                    format!("{cluster_count} clusters make FAT32, whose root entry count must be 0, not {root_entries}"),
                ));
            }
            let version = u16_at(&bs, 0x2a);
            if version != 0 {
                return Err(bad(
                    0x2a,
                    format!("FAT32 version {version:#06x}, expected 0"),
                ));
            }
            let rc = u32_at(&bs, 0x2c);
            if rc < 2 || rc - 2 >= cluster_count {
                return Err(bad(
                    0x2c,
                    format!("root cluster {rc}, expected 2 to {}", cluster_count + 1),
                ));
            }
            Root::Cluster(rc)
        } else {
            if root_entries == 0 {
                return Err(bad(
                    0x11,
                    format!("{cluster_count} clusters make FAT12/16, whose root entry count must not be 0"),
                ));
            }
            Root::Fixed {
                offset: (reserved + u64::from(nfats) * fat_sectors) * bps,
                len: root_entries * ENTRY as u64,
            }
        };
        let entry_bits: u64 = match kind {
            FatKind::Fat12 => 12,
            FatKind::Fat16 => 16,
            FatKind::Fat32 => 32,
        };
        let needed = (u64::from(cluster_count) + 2) * entry_bits;
        if fat_sectors * bps * 8 < needed {
            return Err(bad(
                fat_at,
                format!(
                    "FATs of {fat_sectors} sectors cannot hold the {} entries of {cluster_count} clusters",
                    cluster_count + 2
                ),
            ));
        }
        let label_at = if kind == FatKind::Fat32 { 0x47 } else { 0x2b };
        // The extended boot signature (0x29) says the serial number and label fields exist.
        let ext_sig = if kind == FatKind::Fat32 {
            bs[0x42]
        } else {
            bs[0x26]
        };
        let label = (ext_sig == 0x29)
            .then(|| {
                let l: String = bs[label_at..label_at + 11]
                    .iter()
                    .map(|&c| char::from(c))
                    .collect();
                l.trim_end().to_string()
            })
            .filter(|l| !l.is_empty() && l != "NO NAME");
        let mut vol = Volume {
            kind,
            cluster_size,
            fat_offset: reserved * bps,
            data_offset: first_data * bps,
            cluster_count,
            root,
            label,
            dirty: false,
        };
        // fatgen103 "FAT Data Structure": FAT[1]'s high bit(s) say whether the volume was
        // unmounted cleanly (FAT16: 0x8000, FAT32: 0x08000000); FAT12 has no such bit.
        let (entry1, _) = vol.fat_entry(fs, 1)?;
        vol.dirty = match kind {
            FatKind::Fat12 => false,
            FatKind::Fat16 => entry1 & 0x8000 == 0,
            FatKind::Fat32 => entry1 & 0x0800_0000 == 0,
        };
        Ok(vol)
    }

    /// FAT12, FAT16 or FAT32.
    pub fn kind(&self) -> FatKind {
        self.kind
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u32 {
        self.cluster_size
    }

    /// The number of data clusters.
    pub fn cluster_count(&self) -> u32 {
        self.cluster_count
    }

    /// Partition offset of the first byte of data cluster 2.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The volume label of the boot sector, if set.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Whether `FAT[1]` says the volume was not unmounted cleanly (FAT16/32).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The raw FAT entry of `cluster` and its partition offset (first FAT).
    fn fat_entry<T: Read + Seek>(&self, fs: &mut T, cluster: u32) -> Result<(u32, u64)> {
        let c = u64::from(cluster);
        match self.kind {
            FatKind::Fat12 => {
                let off = self.fat_offset + c + c / 2;
                let mut b = [0u8; 2];
                read_at(fs, off, &mut b)?;
                let v = u16::from_le_bytes(b);
                let v = if cluster & 1 == 1 { v >> 4 } else { v & 0x0FFF };
                Ok((u32::from(v), off))
            }
            FatKind::Fat16 => {
                let off = self.fat_offset + c * 2;
                let mut b = [0u8; 2];
                read_at(fs, off, &mut b)?;
                Ok((u32::from(u16::from_le_bytes(b)), off))
            }
            FatKind::Fat32 => {
                let off = self.fat_offset + c * 4;
                let mut b = [0u8; 4];
                read_at(fs, off, &mut b)?;
                // The top 4 bits are reserved.
                Ok((u32::from_le_bytes(b) & 0x0FFF_FFFF, off))
            }
        }
    }

    fn next<T: Read + Seek>(&self, fs: &mut T, cluster: u32) -> Result<(Next, u64)> {
        let (v, off) = self.fat_entry(fs, cluster)?;
        let bad = match self.kind {
            FatKind::Fat12 => 0xFF7,
            FatKind::Fat16 => 0xFFF7,
            FatKind::Fat32 => 0x0FFF_FFF7,
        };
        let next = if v == 0 {
            Next::Free
        } else if v == bad {
            Next::Bad
        } else if v > bad {
            Next::End
        } else if self.in_range(v) {
            Next::Cluster(v)
        } else {
            Next::Invalid(v)
        };
        Ok((next, off))
    }

    fn in_range(&self, cluster: u32) -> bool {
        cluster >= 2 && cluster - 2 < self.cluster_count
    }

    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + u64::from(cluster - 2) * u64::from(self.cluster_size)
    }

    /// Follows the chain from `first`. With `exact`, the chain must have exactly that many
    /// clusters (a file's size decides it); otherwise it may have up to `max`. A loop, a free
    /// or bad cluster, or a number past the volume is an error naming the FAT entry.
    fn chain<T: Read + Seek>(
        &self,
        fs: &mut T,
        path: &str,
        first: u32,
        exact: Option<u64>,
        max: u64,
    ) -> Result<Vec<u32>> {
        let chain_err = |cluster: u32, offset: u64, what: String| Error::Chain {
            path: path.to_string(),
            cluster,
            offset,
            what,
        };
        if !self.in_range(first) {
            return Err(chain_err(
                first,
                0,
                format!(
                    "the first cluster {first} is not a data cluster (2 to {})",
                    u64::from(self.cluster_count) + 1
                ),
            ));
        }
        let limit = exact.unwrap_or(max);
        let mut seen = HashSet::new();
        let mut out = vec![first];
        seen.insert(first);
        let mut cur = first;
        loop {
            let (next, off) = self.next(fs, cur)?;
            let have = out.len() as u64;
            match next {
                Next::End => {
                    if exact.is_some_and(|n| have < n) {
                        return Err(chain_err(
                            cur,
                            off,
                            format!("the chain ends after {have} clusters, the file's size needs {limit}"),
                        ));
                    }
                    return Ok(out);
                }
                Next::Free => return Err(chain_err(cur, off, "points to a free cluster".into())),
                Next::Bad => {
                    return Err(chain_err(
                        cur,
                        off,
                        "the chain continues with a cluster marked bad".into(),
                    ))
                }
                Next::Invalid(v) => {
                    return Err(chain_err(
                        cur,
                        off,
                        format!("next cluster {v:#x} is not a data cluster"),
                    ))
                }
                Next::Cluster(c) => {
                    if have >= limit {
                        return Err(chain_err(
                            cur,
                            off,
                            match exact {
                                Some(n) => format!("the chain continues past the {n} clusters the file's size needs"),
                                None => format!("the chain is longer than {limit} clusters"),
                            },
                        ));
                    }
                    if !seen.insert(c) {
                        return Err(chain_err(
                            cur,
                            off,
                            format!("the chain loops back to cluster {c}"),
                        ));
                    }
                    out.push(c);
                    cur = c;
                }
            }
        }
    }

    /// Merges a cluster list into runs of adjacent clusters.
    fn extents_of(&self, clusters: &[u32]) -> Vec<Extent> {
        let cs = u64::from(self.cluster_size);
        let mut out: Vec<Extent> = Vec::new();
        for (i, &c) in clusters.iter().enumerate() {
            let off = self.cluster_offset(c);
            match out.last_mut() {
                Some(last) if last.partition_offset + last.len == off => last.len += cs,
                _ => out.push(Extent {
                    file_offset: i as u64 * cs,
                    len: cs,
                    partition_offset: off,
                }),
            }
        }
        out
    }

    /// The bytes of a directory, the partition offset of each of its clusters (or of the
    /// fixed root region), and the bytes of each.
    fn dir_bytes<T: Read + Seek>(
        &self,
        fs: &mut T,
        path: &str,
        first: Option<u32>,
    ) -> Result<(Vec<u8>, Vec<u64>, usize)> {
        let start = match (first, self.root) {
            (Some(c), _) | (None, Root::Cluster(c)) => c,
            (None, Root::Fixed { offset, len }) => {
                let mut buf = vec![0u8; len as usize]; // at most 65535 * 32 bytes
                read_at(fs, offset, &mut buf)?;
                return Ok((buf, vec![offset], len as usize));
            }
        };
        let cs = u64::from(self.cluster_size);
        let max = MAX_DIR_BYTES.div_ceil(cs);
        let clusters = self.chain(fs, path, start, None, max)?;
        // At most MAX_DIR_BYTES (plus one cluster).
        let mut buf = vec![0u8; clusters.len() * self.cluster_size as usize];
        let mut offsets = Vec::with_capacity(clusters.len());
        for (i, &c) in clusters.iter().enumerate() {
            let off = self.cluster_offset(c);
            read_at(fs, off, &mut buf[i * cs as usize..(i + 1) * cs as usize])?;
            offsets.push(off);
        }
        Ok((buf, offsets, cs as usize))
    }

    /// Parses the entries of a directory (`first`: its first cluster, `None` for the root).
    fn entries<T: Read + Seek>(
        &self,
        fs: &mut T,
        path: &str,
        first: Option<u32>,
    ) -> Result<Vec<RawEntry>> {
        // `per`: bytes behind each offset (a cluster, or the whole fixed root region).
        let (buf, offsets, per) = self.dir_bytes(fs, path, first)?;
        let offset_of = |i: usize| offsets[i / per] + (i % per) as u64;
        let mut out = Vec::new();
        let mut long: Option<LongName> = None;
        for (n, e) in buf.chunks_exact(ENTRY).enumerate() {
            let at = n * ENTRY;
            if e[0] == 0 {
                break; // fatgen103: 0 marks the end of the directory
            }
            if e[0] == 0xE5 {
                long = None;
                continue;
            }
            let attr = e[11];
            if attr & 0x3F == ATTR_LONG_NAME {
                let ord = e[0];
                let seq = ord & 0x1F;
                if ord & 0x40 != 0 {
                    long = (1..=MAX_LFN_ENTRIES).contains(&seq).then(|| LongName {
                        units: vec![0xFFFF; usize::from(seq) * 13],
                        next: seq,
                        checksum: e[13],
                    });
                }
                // A piece out of order or of another name drops the long name: the short
                // name is used, as Windows does.
                match long.as_mut() {
                    Some(l) if l.next == seq && seq > 0 && l.checksum == e[13] => {
                        let slot = usize::from(seq - 1) * 13;
                        let units = (1..11)
                            .step_by(2)
                            .chain((14..26).step_by(2))
                            .chain((28..32).step_by(2))
                            .map(|o| u16_at(e, o));
                        for (k, u) in units.enumerate() {
                            l.units[slot + k] = u;
                        }
                        l.next -= 1;
                    }
                    _ => long = None,
                }
                continue;
            }
            let taken = long.take();
            if attr & ATTR_VOLUME_ID != 0 {
                continue;
            }
            let short = short_name(e);
            if short == "." || short == ".." {
                continue;
            }
            let name = match taken {
                Some(l) if l.next == 0 && l.checksum == short_checksum(&e[0..11]) => {
                    let end = l
                        .units
                        .iter()
                        .position(|&u| u == 0 || u == 0xFFFF)
                        .unwrap_or(l.units.len());
                    String::from_utf16_lossy(&l.units[..end])
                }
                _ => short.clone(),
            };
            let hi = if self.kind == FatKind::Fat32 {
                u32::from(u16_at(e, 20)) << 16
            } else {
                0
            };
            out.push(RawEntry {
                name,
                short,
                is_directory: attr & ATTR_DIRECTORY != 0,
                size: u32_at(e, 28),
                first_cluster: hi | u32::from(u16_at(e, 26)),
                offset: offset_of(at),
            });
        }
        Ok(out)
    }

    fn split(path: &str) -> Result<Vec<&str>> {
        let parts: Vec<&str> = path.split(['\\', '/']).filter(|p| !p.is_empty()).collect();
        if parts.len() > MAX_PATH_COMPONENTS {
            return Err(Error::InvalidPath {
                path: path.to_string(),
                reason: "too many components",
            });
        }
        Ok(parts)
    }

    /// Lists a directory (`""` or `\` for the root).
    pub fn list<T: Read + Seek>(&self, fs: &mut T, path: &str) -> Result<Vec<DirItem>> {
        let first = if Self::split(path)?.is_empty() {
            None
        } else {
            match self.lookup(fs, path)? {
                Some(d) if d.is_directory => Some(d.first_cluster),
                Some(_) => {
                    return Err(Error::NotADirectory {
                        path: path.to_string(),
                        component: path.to_string(),
                    })
                }
                None => return Ok(Vec::new()),
            }
        };
        Ok(self
            .entries(fs, path, first)?
            .into_iter()
            .map(|e| DirItem {
                name: e.name,
                is_directory: e.is_directory,
                size: if e.is_directory { 0 } else { u64::from(e.size) },
            })
            .collect())
    }

    /// Finds a file or directory by path, each component compared case-insensitively with
    /// the long name and the 8.3 name. `None` if a component does not exist. The file's
    /// chain is followed and checked: it must have exactly the clusters its size needs.
    pub fn lookup<T: Read + Seek>(&self, fs: &mut T, path: &str) -> Result<Option<FileEntry>> {
        let parts = Self::split(path)?;
        if parts.is_empty() {
            return Err(Error::InvalidPath {
                path: path.to_string(),
                reason: "empty path",
            });
        }
        let mut dir: Option<u32> = None;
        let mut found = String::new();
        for (i, part) in parts.iter().enumerate() {
            let entries = self.entries(fs, path, dir)?;
            let Some(e) = entries
                .into_iter()
                .find(|e| eq_ci(&e.name, part) || eq_ci(&e.short, part))
            else {
                return Ok(None);
            };
            if !found.is_empty() {
                found.push('\\');
            }
            found.push_str(&e.name);
            let last = i + 1 == parts.len();
            if !last {
                if !e.is_directory {
                    return Err(Error::NotADirectory {
                        path: path.to_string(),
                        component: e.name,
                    });
                }
                dir = Some(e.first_cluster);
                continue;
            }
            return self.entry(fs, found, e).map(Some);
        }
        Ok(None)
    }

    /// The [`FileEntry`] of a parsed directory entry: its chain followed and checked.
    fn entry<T: Read + Seek>(&self, fs: &mut T, path: String, e: RawEntry) -> Result<FileEntry> {
        let cs = u64::from(self.cluster_size);
        let clusters = if e.is_directory {
            self.chain(fs, &path, e.first_cluster, None, MAX_DIR_BYTES.div_ceil(cs))?
        } else if e.size == 0 {
            Vec::new()
        } else {
            let n = u64::from(e.size).div_ceil(cs);
            if e.first_cluster == 0 || n > u64::from(self.cluster_count) {
                return Err(Error::Directory {
                    path,
                    offset: e.offset,
                    what: format!(
                        "a file of {} bytes with first cluster {} on a volume of {} clusters of {cs} bytes",
                        e.size, e.first_cluster, self.cluster_count
                    ),
                });
            }
            self.chain(fs, &path, e.first_cluster, Some(n), n)?
        };
        Ok(FileEntry {
            extents: self.extents_of(&clusters),
            path,
            is_directory: e.is_directory,
            size: if e.is_directory { 0 } else { u64::from(e.size) },
            first_cluster: e.first_cluster,
        })
    }

    /// Reads the whole file (at most [`MAX_READ_TO_VEC`] bytes).
    pub fn read_file<T: Read + Seek>(&self, fs: &mut T, file: &FileEntry) -> Result<Vec<u8>> {
        if file.is_directory {
            return Err(Error::IsADirectory {
                path: file.path.clone(),
            });
        }
        if file.size > MAX_READ_TO_VEC {
            return Err(Error::TooLarge {
                path: file.path.clone(),
                len: file.size,
                limit: MAX_READ_TO_VEC,
            });
        }
        // The size was checked against the chain, which lies on the volume: this allocation is
        // bounded by the partition.
        let mut out = vec![0u8; file.size as usize];
        for w in file.plan_write(0, file.size)? {
            let from = w.file_offset as usize;
            read_at(
                fs,
                w.partition_offset,
                &mut out[from..from + w.len as usize],
            )?;
        }
        Ok(out)
    }
}
