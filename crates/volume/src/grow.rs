//! Planning the growth of a file: new sizes in its MFT record, and new clusters taken from the
//! volume bitmap and added to its data runs. Nothing is written here: the plan is a list of byte
//! patches (partition offset, bytes there now, new bytes) that the caller writes, in the order
//! [`GrowthPlan`] gives, through its own journal.
//!
//! Only the simplest case that covers a registry hive is planned: one unnamed, non-resident,
//! uncompressed, unencrypted, non-sparse `$DATA` attribute held whole in the file's base MFT
//! record (no `$ATTRIBUTE_LIST`), on a volume that may be written and whose `$LogFile` is clean.
//! Everything else is refused with [`Error::CannotGrow`] and a [`GrowRefusal`].
//!
//! Sources: the Linux-NTFS documentation (flatcap.github.io/linux-ntfs), "Concepts / File
//! Record", "Concepts / Attribute Header", "Concepts / Data Runs", "Files / $Bitmap",
//! "Files / $LogFile"; ntfs-3g's layout.h and logfile.h for the restart area fields.

use std::io::{Read, Seek, SeekFrom};

use ntfs::KnownNtfsFileRecordNumber;

use crate::error::{io_at, Error, Result};
use crate::file::{
    DataLayout, Extent, FileEntry, Storage, ATTR_COMPRESSED, ATTR_ENCRYPTED, ATTR_SPARSE,
};
use crate::record::RawRecord;
use crate::volume::{guarded, Volume};

/// MFT records below this number are the volume's own metadata files ($MFT .. $Extend and the
/// reserved ones): never grown here.
const FIRST_USER_RECORD: u64 = 16;
/// Attribute type codes.
const ATTR_TYPE_ATTRIBUTE_LIST: u32 = 0x20;
const ATTR_TYPE_DATA: u32 = 0x80;
const ATTR_TYPE_END: u32 = 0xffff_ffff;
/// At most this many attributes are walked in one record (a 1 KiB record holds far fewer).
const MAX_ATTRIBUTES: usize = 256;
/// At most this many new data runs for one growth: a fragmented free space beyond that is
/// refused rather than spread over a record that would soon need an attribute list.
const MAX_NEW_RUNS: usize = 64;
/// `$LogFile` restart area: the volume was shut down cleanly.
const RESTART_VOLUME_IS_CLEAN: u16 = 0x0002;
/// `$LogFile` restart area: no log client is in use.
const LOGFILE_NO_CLIENT: u16 = 0xffff;
/// Bytes of `$LogFile` read for its first restart page (a page is 4 KiB on every Windows).
const RESTART_PAGE: usize = 4096;

/// Why a file cannot be grown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrowRefusal {
    /// The new size is smaller than the file.
    #[error(
        "the new size {new} is smaller than the file ({size} bytes): files are never shortened"
    )]
    Smaller {
        /// The file's size.
        size: u64,
        /// The size asked for.
        new: u64,
    },
    /// The file is one of the volume's metadata files.
    #[error("MFT record {record} is an NTFS metadata file")]
    MetadataFile {
        /// Its record number.
        record: u64,
    },
    /// Its attributes are spread over several MFT records.
    #[error("its attributes are spread over several MFT records through an $ATTRIBUTE_LIST")]
    AttributeList,
    /// Its data lives inside the MFT record.
    #[error("its $DATA is resident in the MFT record")]
    Resident,
    /// Compressed, sparse or encrypted `$DATA`.
    #[error("its $DATA is {kind} (attribute flags {flags:#06x})")]
    Flags {
        /// "compressed", "encrypted" or "sparse".
        kind: &'static str,
        /// The attribute flags.
        flags: u16,
    },
    /// A data run without clusters.
    #[error("its data runs hold a sparse run at VCN {vcn}")]
    SparseRun {
        /// The run's first VCN.
        vcn: u64,
    },
    /// The new data runs do not fit in the MFT record.
    #[error("its MFT record is full: the $DATA attribute needs {needed} more bytes, the record has {free} free")]
    RecordFull {
        /// Bytes the attribute grows by.
        needed: usize,
        /// Free bytes in the record.
        free: usize,
    },
    /// Not enough free clusters.
    #[error("the volume has {free} free clusters, the growth needs {needed}")]
    NoSpace {
        /// Clusters needed.
        needed: u64,
        /// Clusters free.
        free: u64,
    },
    /// The free clusters are too scattered.
    #[error("the free space is too fragmented: {needed} clusters would take more than {MAX_NEW_RUNS} new data runs")]
    Fragmented {
        /// Clusters needed.
        needed: u64,
    },
    /// `$LogFile` holds transactions Windows would replay over the change.
    #[error(
        "$LogFile is not clean ({what}): Windows would replay its transactions over the change"
    )]
    LogFileNotClean {
        /// What was found.
        what: String,
    },
    /// The parent directory's `$I30` allocation is spread over several MFT records: the INDX
    /// block holding the file's entry (whose sizes a growth updates) is not located.
    #[error("its parent directory's $I30 index allocation is spread over several MFT records through an $ATTRIBUTE_LIST")]
    DirectoryIndexSpread,
}

/// One byte patch of NTFS metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Partition offset of the first byte.
    pub partition_offset: u64,
    /// The bytes there now.
    pub before: Vec<u8>,
    /// The bytes to write.
    pub after: Vec<u8>,
}

/// How to grow a file, planned by [`Volume::plan_grow`]. Nothing is written yet.
///
/// Write it in this order, so that a crash between any two writes (before a journal resolves
/// it) leaves a volume chkdsk finds consistent and a file that reads as before:
/// 1. the file's bytes from [`GrowthPlan::old_valid_size`] to [`GrowthPlan::new_size`], mapped
///    with [`GrowthPlan::grown`]'s [`FileEntry::plan_write`]: they go into free clusters or past
///    the valid data length, which nothing reads yet;
/// 2. [`GrowthPlan::bitmap`]: the new clusters are marked used (a crash here only leaves
///    clusters allocated to no file, which chkdsk frees and Windows otherwise ignores);
/// 3. [`GrowthPlan::record`]: the MFT record with the new runs and sizes, which exposes the
///    bytes of step 1;
/// 4. [`GrowthPlan::names`]: the sizes in the parent directory's index entries;
/// 5. then any change inside the old size of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrowthPlan {
    /// The file's size before.
    pub old_size: u64,
    /// Its valid data length before: the bytes from here on must be written (step 1).
    pub old_valid_size: u64,
    /// Its size after (also its valid data length after).
    pub new_size: u64,
    /// New clusters as (first cluster, count), in file order.
    pub new_clusters: Vec<(u64, u64)>,
    /// The volume bitmap's changed bytes (empty when no cluster is added).
    pub bitmap: Vec<Patch>,
    /// The file's MFT record, whole, with its update sequence applied: new runs and sizes in
    /// its `$DATA` attribute, new sizes in its `$FILE_NAME` attributes.
    pub record: Patch,
    /// The copies of the new sizes in its parent directory's `$I30` index: the parent's MFT
    /// record (entries in `$INDEX_ROOT`) or INDX blocks of its `$INDEX_ALLOCATION`, whole, update
    /// sequence applied, one patch per contiguous piece. Written after [`GrowthPlan::record`]:
    /// NTFS takes a file's size from its `$DATA` attribute, these copies are informational (a
    /// crash between the two leaves what chkdsk calls a minor file name error).
    pub names: Vec<Patch>,
    /// The file as it will be: use its [`FileEntry::plan_write`] to map any range of the grown
    /// file.
    pub grown: FileEntry,
}

/// The `$DATA` attribute of a record as this module reads it.
struct DataAttr {
    /// Offset of the attribute in the record.
    offset: usize,
    length: usize,
    mapping_pairs: usize,
    allocated_size: u64,
}

/// Smallest number of bytes holding `v` as a little-endian two's-complement number (how data
/// runs store both lengths and offsets; a length with its top bit set would read as negative).
fn signed_len(v: i64) -> usize {
    (1..8)
        .find(|&n| {
            let bits = 8 * n as u32;
            let min = -(1i64 << (bits - 1));
            let max = (1i64 << (bits - 1)) - 1;
            v >= min && v <= max
        })
        .unwrap_or(8)
}

/// Encodes data runs (first cluster, count) as mapping pairs, with the terminating zero.
fn encode_runs(runs: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = 0i64;
    for &(lcn, count) in runs {
        let delta = lcn as i64 - prev;
        prev = lcn as i64;
        let (lb, ob) = (signed_len(count as i64), signed_len(delta));
        out.push(((ob << 4) | lb) as u8);
        out.extend_from_slice(&(count as i64).to_le_bytes()[..lb]);
        out.extend_from_slice(&delta.to_le_bytes()[..ob]);
    }
    out.push(0);
    out
}

/// Decodes mapping pairs into (first cluster, count); `Err(vcn)` for a sparse run, `None` for
/// a malformed array.
fn decode_runs(bytes: &[u8]) -> Option<std::result::Result<Vec<(u64, u64)>, u64>> {
    let mut runs = Vec::new();
    let (mut pos, mut lcn, mut vcn) = (0usize, 0i64, 0u64);
    loop {
        let h = *bytes.get(pos)?;
        if h == 0 {
            return Some(Ok(runs));
        }
        let (lb, ob) = ((h & 0xf) as usize, (h >> 4) as usize);
        if lb == 0 || lb > 8 || ob > 8 {
            return None;
        }
        let field = |from: usize, n: usize| -> Option<i64> {
            let b = bytes.get(from..from.checked_add(n)?)?;
            let mut v = [if b[n - 1] & 0x80 != 0 { 0xff } else { 0 }; 8];
            v[..n].copy_from_slice(b);
            Some(i64::from_le_bytes(v))
        };
        let count = field(pos + 1, lb)?;
        if count <= 0 {
            return None;
        }
        if ob == 0 {
            return Some(Err(vcn));
        }
        lcn = lcn.checked_add(field(pos + 1 + lb, ob)?)?;
        if lcn < 0 {
            return None;
        }
        runs.push((lcn as u64, count as u64));
        vcn = vcn.checked_add(count as u64)?;
        pos += 1 + lb + ob;
    }
}

fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Volume {
    /// Plans growing `file` (looked up on this volume, unchanged since) to `new_size` bytes:
    /// within the clusters it owns when they suffice (new data size and valid data length in
    /// its MFT record), else with new clusters from the volume bitmap (contiguous after its
    /// last run when they are free there, the last run extended or new runs added to its
    /// `$DATA` attribute). Refuses a volume that may not be written ([`Volume::check_writable`])
    /// or whose `$LogFile` is not clean, and every file this plan does not cover
    /// ([`Error::CannotGrow`]).
    ///
    /// The sizes copied into the file's `$FILE_NAME` attributes and into its entries in the
    /// parent directory's `$I30` index are updated too ([`GrowthPlan::names`]), as chkdsk
    /// expects them.
    pub fn plan_grow<T: Read + Seek>(
        &self,
        fs: &mut T,
        file: &FileEntry,
        new_size: u64,
    ) -> Result<GrowthPlan> {
        self.check_writable()?;
        guarded("planning the growth of a file", || {
            self.plan_grow_inner(fs, file, new_size)
        })
    }

    fn plan_grow_inner<T: Read + Seek>(
        &self,
        fs: &mut T,
        file: &FileEntry,
        new_size: u64,
    ) -> Result<GrowthPlan> {
        let refuse = |why: GrowRefusal| Error::CannotGrow {
            path: file.path().to_string(),
            record: file.record_number(),
            why,
        };
        let layout = file.layout()?;
        if new_size < layout.size {
            return Err(refuse(GrowRefusal::Smaller {
                size: layout.size,
                new: new_size,
            }));
        }
        if file.record_number() < FIRST_USER_RECORD {
            return Err(refuse(GrowRefusal::MetadataFile {
                record: file.record_number(),
            }));
        }
        if layout.pieces > 1 {
            return Err(refuse(GrowRefusal::AttributeList));
        }
        for (bit, kind) in [
            (ATTR_COMPRESSED, "compressed"),
            (ATTR_ENCRYPTED, "encrypted"),
            (ATTR_SPARSE, "sparse"),
        ] {
            if layout.flags & bit != 0 {
                return Err(refuse(GrowRefusal::Flags {
                    kind,
                    flags: layout.flags,
                }));
            }
        }
        let Storage::NonResident { extents } = &layout.storage else {
            return Err(refuse(GrowRefusal::Resident));
        };
        self.check_logfile_clean(fs).map_err(|e| match e {
            Error::CannotGrow { why, .. } => refuse(why),
            other => other,
        })?;

        // The boot sector's size is only a claim: the bitmap scan below goes over every
        // cluster it names, so it must lie inside the partition actually given.
        let held = fs.seek(SeekFrom::End(0)).map_err(io_at(0))?;
        if self.ntfs.size() > held {
            return Err(Error::Corrupt {
                record: 0,
                offset: 0,
                what: format!(
                    "the boot sector gives the volume {} bytes, the partition holds {held}",
                    self.ntfs.size()
                ),
            });
        }
        let cluster = u64::from(self.ntfs.cluster_size());
        let (record, raw_disk) = self.read_record(fs, file.record_number())?;
        let corrupt = |what: String| Error::Corrupt {
            record: record.number,
            offset: record.position,
            what,
        };
        let attr = find_data(&record).map_err(|e| match e {
            FindError::AttributeList => refuse(GrowRefusal::AttributeList),
            FindError::Corrupt(what) => corrupt(what),
        })?;
        let data = record.data();
        let runs =
            match decode_runs(&data[attr.offset + attr.mapping_pairs..attr.offset + attr.length]) {
                None => {
                    return Err(corrupt(
                        "malformed mapping pairs in the $DATA attribute".into(),
                    ))
                }
                Some(Err(vcn)) => return Err(refuse(GrowRefusal::SparseRun { vcn })),
                Some(Ok(r)) => r,
            };
        // The runs read here must be the ones the file was looked up with.
        let same = runs.len() == extents.len()
            && runs.iter().zip(extents).all(|(&(lcn, n), e)| {
                e.partition_offset == lcn.checked_mul(cluster)
                    && Some(e.len) == n.checked_mul(cluster)
            });
        if !same || attr.allocated_size != layout.allocated_size {
            return Err(corrupt(
                "the $DATA attribute changed since the file was looked up".into(),
            ));
        }
        let owned: u64 = runs.iter().map(|r| r.1).sum();
        let wanted = new_size.div_ceil(cluster);
        let needed = wanted.saturating_sub(owned);

        let mut new_runs = Vec::new();
        let mut bitmap = Vec::new();
        if needed > 0 {
            let (entry, bits) = self.read_bitmap(fs)?;
            let total = self.ntfs.size() / cluster;
            // A damaged bitmap may show the file's own clusters free: never take them twice.
            let is_free = |c: u64| {
                c < total
                    && bits
                        .get((c / 8) as usize)
                        .is_some_and(|b| b & (1 << (c % 8)) == 0)
                    && !runs.iter().any(|&(lcn, n)| c >= lcn && c - lcn < n)
            };
            let free = (0..total).filter(|&c| is_free(c)).count() as u64;
            if free < needed {
                return Err(refuse(GrowRefusal::NoSpace { needed, free }));
            }
            let after_last = runs.last().map_or(0, |&(lcn, n)| lcn + n);
            new_runs = choose_clusters(total, needed, after_last, is_free)
                .ok_or_else(|| refuse(GrowRefusal::Fragmented { needed }))?;
            let mut changed = bits.clone();
            for &(lcn, n) in &new_runs {
                for c in lcn..lcn + n {
                    changed[(c / 8) as usize] |= 1 << (c % 8);
                }
            }
            bitmap = bitmap_patches(&entry, &bits, &changed)?;
        }

        // The new run list: the last run extended when the new clusters follow it.
        let mut all = runs.clone();
        for &(lcn, n) in &new_runs {
            match all.last_mut() {
                Some(last) if last.0 + last.1 == lcn => last.1 += n,
                _ => all.push((lcn, n)),
            }
        }
        let allocated = (owned + needed) * cluster;
        let mut fixed = data.to_vec();
        let mp = encode_runs(&all);
        let mp_end = attr.mapping_pairs + mp.len();
        let new_len = mp_end.div_ceil(8) * 8;
        let in_use = u32_le(&fixed, 0x18).unwrap_or(0) as usize;
        let room = (u32_le(&fixed, 0x1c).unwrap_or(0) as usize).min(fixed.len());
        if in_use > room || attr.offset + attr.length > in_use {
            return Err(corrupt(format!(
                "bytes in use {in_use:#x} beyond the record's {room:#x}, or before the end of $DATA"
            )));
        }
        if new_len > attr.length {
            let grow = new_len - attr.length;
            if in_use + grow > room {
                return Err(refuse(GrowRefusal::RecordFull {
                    needed: grow,
                    free: room - in_use,
                }));
            }
            // Move the attributes after $DATA (and the end marker) up.
            let tail = attr.offset + attr.length..in_use;
            fixed.copy_within(tail, attr.offset + new_len);
            fixed[0x18..0x1c].copy_from_slice(&((in_use + grow) as u32).to_le_bytes());
            fixed[attr.offset + 4..attr.offset + 8]
                .copy_from_slice(&(new_len as u32).to_le_bytes());
        }
        let a = attr.offset;
        let attr_len = new_len.max(attr.length);
        // The mapping pairs, zero-padded to the attribute's end.
        fixed[a + attr.mapping_pairs..a + attr_len].fill(0);
        fixed[a + attr.mapping_pairs..a + mp_end].copy_from_slice(&mp);
        let highest_vcn = (owned + needed).saturating_sub(1);
        fixed[a + 0x18..a + 0x20].copy_from_slice(&highest_vcn.to_le_bytes());
        fixed[a + 0x28..a + 0x30].copy_from_slice(&allocated.to_le_bytes());
        fixed[a + 0x30..a + 0x38].copy_from_slice(&new_size.to_le_bytes());
        fixed[a + 0x38..a + 0x40].copy_from_slice(&new_size.to_le_bytes());
        let names =
            crate::names::set_record_names(&mut fixed, allocated, new_size).map_err(corrupt)?;
        let after = record.protect(&fixed)?;
        let names = self.name_patches(fs, file.record_number(), &names, allocated, new_size)?;
        // A damaged bitmap may also show free the clusters of the metadata this plan patches:
        // writing the file's bytes there would overwrite it.
        for &(lcn, n) in &new_runs {
            let (from, to) = (lcn * cluster, (lcn + n) * cluster);
            let hit = bitmap
                .iter()
                .chain(&names)
                .map(|p| (p.partition_offset, p.after.len() as u64))
                .chain([(record.position, raw_disk.len() as u64)])
                .find(|&(p, len)| p < to && from < p + len);
            if let Some((p, _)) = hit {
                return Err(corrupt(format!(
                    "$Bitmap shows free the clusters at {from:#x}..{to:#x}, which hold the metadata at {p:#x}"
                )));
            }
        }

        let mut grown_extents: Vec<Extent> = extents.clone();
        let mut vcn = owned;
        for &(lcn, n) in &new_runs {
            match grown_extents.last_mut() {
                Some(e) if e.partition_offset.map(|p| p + e.len) == Some(lcn * cluster) => {
                    e.len += n * cluster
                }
                _ => grown_extents.push(Extent {
                    file_offset: vcn * cluster,
                    len: n * cluster,
                    partition_offset: Some(lcn * cluster),
                }),
            }
            vcn += n;
        }
        let mut grown = file.clone();
        grown.data = Some(DataLayout {
            size: new_size,
            valid_size: new_size,
            allocated_size: allocated,
            flags: layout.flags,
            compression_unit: layout.compression_unit,
            pieces: 1,
            storage: Storage::NonResident {
                extents: grown_extents,
            },
        });
        Ok(GrowthPlan {
            old_size: layout.size,
            old_valid_size: layout.valid_size,
            new_size,
            new_clusters: new_runs,
            bitmap,
            record: Patch {
                partition_offset: record.position,
                before: raw_disk,
                after,
            },
            names,
            grown,
        })
    }

    /// Reads MFT record `number`: parsed (fixups applied) and as it is on disk.
    pub(crate) fn read_record<T: Read + Seek>(
        &self,
        fs: &mut T,
        number: u64,
    ) -> Result<(RawRecord, Vec<u8>)> {
        let file = self.ntfs.file(fs, number)?;
        let position = file
            .position()
            .value()
            .map(|p| p.get())
            .ok_or(Error::Corrupt {
                record: number,
                offset: 0,
                what: "MFT record without a position".into(),
            })?;
        let size = self.ntfs.file_record_size();
        let record = RawRecord::read(fs, number, position, size)?;
        let mut raw = vec![0u8; size as usize];
        fs.seek(SeekFrom::Start(position))
            .map_err(io_at(position))?;
        fs.read_exact(&mut raw).map_err(io_at(position))?;
        Ok((record, raw))
    }

    /// The `$Bitmap` file and its bytes.
    fn read_bitmap<T: Read + Seek>(&self, fs: &mut T) -> Result<(FileEntry, Vec<u8>)> {
        let entry =
            self.metadata_file(fs, KnownNtfsFileRecordNumber::Bitmap as u64, "\\$Bitmap")?;
        let cluster = u64::from(self.ntfs.cluster_size());
        let total = self.ntfs.size() / cluster;
        // One bit per cluster: a bitmap shorter than that is damaged.
        if entry.size().saturating_mul(8) < total {
            return Err(Error::Corrupt {
                record: KnownNtfsFileRecordNumber::Bitmap as u64,
                offset: 0,
                what: format!(
                    "$Bitmap holds {} bytes, the volume has {total} clusters",
                    entry.size()
                ),
            });
        }
        let bits = self.read_file(fs, &entry)?;
        Ok((entry, bits))
    }

    fn metadata_file<T: Read + Seek>(
        &self,
        fs: &mut T,
        number: u64,
        path: &str,
    ) -> Result<FileEntry> {
        let file = self.ntfs.file(fs, number)?;
        let data = self.data_layout(fs, &file)?;
        Ok(FileEntry {
            path: path.into(),
            record: number,
            sequence: file.sequence_number(),
            is_directory: false,
            data,
        })
    }

    /// Where the `$Bitmap` file's bytes lie: (file offset, partition offset, length) per data
    /// run, and the cluster size. For a journal that must tell whether a range it is about to
    /// write is a bitmap byte.
    pub fn bitmap_extents<T: Read + Seek>(&self, fs: &mut T) -> Result<(Vec<Extent>, u32)> {
        guarded("reading $Bitmap's data runs", || {
            let entry =
                self.metadata_file(fs, KnownNtfsFileRecordNumber::Bitmap as u64, "\\$Bitmap")?;
            Ok((entry.extents().to_vec(), self.ntfs.cluster_size()))
        })
    }

    /// Partition offset and length of the MFT record of `file`.
    pub fn record_range<T: Read + Seek>(&self, fs: &mut T, file: &FileEntry) -> Result<(u64, u64)> {
        guarded("finding an MFT record", || {
            let f = self.ntfs.file(fs, file.record_number())?;
            let position = f
                .position()
                .value()
                .map(|p| p.get())
                .ok_or(Error::Corrupt {
                    record: file.record_number(),
                    offset: 0,
                    what: "MFT record without a position".into(),
                })?;
            Ok((position, u64::from(self.ntfs.file_record_size())))
        })
    }

    /// Refuses a `$LogFile` whose first restart page says a log client was active at the last
    /// unmount: Windows would replay those transactions at the next mount, over what this plan
    /// changes. An empty log (all 0xFF, as mkntfs and ntfs-3g leave it) is clean.
    fn check_logfile_clean<T: Read + Seek>(&self, fs: &mut T) -> Result<()> {
        let entry =
            self.metadata_file(fs, KnownNtfsFileRecordNumber::LogFile as u64, "\\$LogFile")?;
        let not_clean = |what: String| Error::CannotGrow {
            path: "\\$LogFile".into(),
            record: KnownNtfsFileRecordNumber::LogFile as u64,
            why: GrowRefusal::LogFileNotClean { what },
        };
        if entry.size() < RESTART_PAGE as u64 {
            return Err(not_clean(format!("it is {} bytes long", entry.size())));
        }
        let mut page = vec![0u8; RESTART_PAGE];
        self.reader(fs, &entry)?
            .read_exact(&mut page)
            .map_err(io_at(0))?;
        if page.iter().all(|&b| b == 0xff) {
            return Ok(());
        }
        if &page[..4] != b"RSTR" {
            return Err(not_clean(format!(
                "its first page starts with {:?}, not \"RSTR\"",
                String::from_utf8_lossy(&page[..4])
            )));
        }
        let area = u16_le(&page, 0x18).unwrap_or(0) as usize;
        let (in_use_at, flags_at) = (area + 0x0c, area + 0x0e);
        // Bytes at the end of a 512-byte block are replaced by the fixup: never trusted raw.
        if RawRecord::is_fixup_protected(in_use_at + 1)
            || RawRecord::is_fixup_protected(flags_at + 1)
        {
            return Err(not_clean(
                "its restart area lies across a sector end".into(),
            ));
        }
        let (Some(in_use), Some(flags)) = (u16_le(&page, in_use_at), u16_le(&page, flags_at))
        else {
            return Err(not_clean(format!(
                "restart area offset {area:#x} is outside its page"
            )));
        };
        if in_use != LOGFILE_NO_CLIENT && flags & RESTART_VOLUME_IS_CLEAN == 0 {
            return Err(not_clean(format!(
                "a log client is in use and the restart area flags {flags:#06x} lack the clean bit"
            )));
        }
        Ok(())
    }
}

enum FindError {
    AttributeList,
    Corrupt(String),
}

/// Finds the unnamed `$DATA` attribute in the record, refusing an `$ATTRIBUTE_LIST`.
fn find_data(record: &RawRecord) -> std::result::Result<DataAttr, FindError> {
    let data = record.data();
    let bad = |what: &str| FindError::Corrupt(what.to_string());
    let mut at = u16_le(data, 0x14).ok_or_else(|| bad("no first attribute offset"))? as usize;
    let mut found = None;
    for _ in 0..MAX_ATTRIBUTES {
        let ty = u32_le(data, at).ok_or_else(|| bad("attribute beyond the record"))?;
        if ty == ATTR_TYPE_END {
            return found.ok_or_else(|| bad("no unnamed $DATA attribute"));
        }
        let len = u32_le(data, at + 4).ok_or_else(|| bad("attribute beyond the record"))? as usize;
        if len < 0x18
            || !len.is_multiple_of(8)
            || at.checked_add(len).is_none_or(|e| e > data.len())
        {
            return Err(bad("attribute length out of the record"));
        }
        if ty == ATTR_TYPE_ATTRIBUTE_LIST {
            return Err(FindError::AttributeList);
        }
        let name_len = data[at + 9];
        if ty == ATTR_TYPE_DATA && name_len == 0 {
            if data[at + 8] == 0 || len < 0x40 {
                return Err(bad("resident or short $DATA"));
            }
            let mapping_pairs = u16_le(data, at + 0x20).unwrap_or(0) as usize;
            if mapping_pairs < 0x40 || mapping_pairs >= len {
                return Err(bad("mapping pairs offset outside the $DATA attribute"));
            }
            let lowest =
                u64::from_le_bytes(data[at + 0x10..at + 0x18].try_into().unwrap_or([0; 8]));
            if lowest != 0 {
                return Err(FindError::AttributeList);
            }
            found = Some(DataAttr {
                offset: at,
                length: len,
                mapping_pairs,
                allocated_size: u64::from_le_bytes(
                    data[at + 0x28..at + 0x30].try_into().unwrap_or([0; 8]),
                ),
            });
        }
        at += len;
    }
    Err(bad("more than 256 attributes"))
}

/// Chooses `needed` free clusters: first those right after `after_last` (extending the last
/// run), then one free run that holds all the rest (searched from `after_last` on, then from
/// the volume start), else the free runs in that order, at most [`MAX_NEW_RUNS`].
fn choose_clusters(
    total: u64,
    needed: u64,
    after_last: u64,
    is_free: impl Fn(u64) -> bool,
) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut left = needed;
    let mut c = after_last;
    while left > 0 && is_free(c) {
        c += 1;
        left -= 1;
    }
    if c > after_last {
        out.push((after_last, c - after_last));
    }
    if left == 0 {
        return Some(out);
    }
    // Free runs from `after_last` on, then from 0 (the extension taken above is not free any
    // more for this search: it starts at `c`).
    let free_runs = |from: u64, to: u64| {
        let mut runs = Vec::new();
        let mut i = from;
        while i < to {
            if is_free(i) {
                let s = i;
                while i < to && is_free(i) {
                    i += 1;
                }
                runs.push((s, i - s));
            } else {
                i += 1;
            }
        }
        runs
    };
    let mut runs = free_runs(c, total);
    runs.extend(free_runs(0, after_last.min(total)));
    if let Some(&(s, _)) = runs.iter().find(|r| r.1 >= left) {
        out.push((s, left));
        return Some(out);
    }
    for (s, n) in runs {
        if out.len() >= MAX_NEW_RUNS {
            return None;
        }
        let take = n.min(left);
        out.push((s, take));
        left -= take;
        if left == 0 {
            return Some(out);
        }
    }
    None
}

/// The changed bytes of the bitmap, as patches over its clusters.
fn bitmap_patches(entry: &FileEntry, old: &[u8], new: &[u8]) -> Result<Vec<Patch>> {
    let Some(first) = old.iter().zip(new).position(|(a, b)| a != b) else {
        return Ok(Vec::new());
    };
    let last = old
        .iter()
        .zip(new)
        .rposition(|(a, b)| a != b)
        .unwrap_or(first);
    let mut out = Vec::new();
    for piece in entry.plan_write(first as u64, (last - first + 1) as u64)? {
        let (from, n) = (piece.file_offset as usize, piece.len as usize);
        out.push(Patch {
            partition_offset: piece.partition_offset,
            before: old[from..from + n].to_vec(),
            after: new[from..from + n].to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_through_mapping_pairs() {
        let runs = vec![(0x1234, 0x80), (0x10, 3), (0x7fff_ffff, 0x1_0000), (5, 1)];
        let bytes = encode_runs(&runs);
        assert_eq!(decode_runs(&bytes), Some(Ok(runs)));
        // A length of 0x80 takes two bytes: one byte would read as -128.
        assert_eq!(encode_runs(&[(0x1234, 0x80)])[0], 0x22);
    }

    #[test]
    fn clusters_extend_the_last_run_first() {
        let used = [0u64, 1, 2, 3, 6, 7];
        let free = |c: u64| !used.contains(&c);
        assert_eq!(choose_clusters(10, 2, 4, free), Some(vec![(4, 2)]));
        assert_eq!(choose_clusters(10, 3, 4, free), Some(vec![(4, 2), (8, 1)]));
        assert_eq!(choose_clusters(10, 2, 6, free), Some(vec![(8, 2)]));
        assert_eq!(choose_clusters(10, 5, 6, free), None);
    }
}
