//! Opening a volume, its facts, path lookup, reading and the in-place write.

use std::io::{Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsAttributeList;
use ntfs::{KnownNtfsFileRecordNumber, Ntfs, NtfsAttributeType, NtfsFile};

use crate::error::{io_at, Error, Result};
use crate::file::{DataLayout, Extent, FileEntry, FileReader, Storage, WriteExtent};
use crate::record::{AttrHeader, RawRecord};

/// `$VOLUME_INFORMATION` flag: the volume is dirty (chkdsk will run at the next Windows boot).
pub const VOLUME_DIRTY: u16 = 0x0001;

/// [`Volume::read_file`] refuses files larger than this; use [`Volume::reader`] for those.
/// SYSTEM hives are tens of MB and System logs at most a few hundred.
pub const MAX_READ_TO_VEC: u64 = 1 << 30;

/// Limits against damaged volumes that loop or explode.
const MAX_PATH_COMPONENTS: usize = 64;
/// NTFS names are at most 255 UTF-16 code units.
const MAX_NAME_UNITS: usize = 255;
/// Attribute list entries followed for one file; a real hive needs a handful.
const MAX_ATTRIBUTE_LIST_ENTRIES: usize = 65_536;
/// Data runs accepted for one file (a badly fragmented multi-GB file has tens of thousands).
const MAX_RUNS: usize = 1 << 20;

/// The OEM id of a BitLocker-encrypted volume, at offset 3 of its boot sector.
const BITLOCKER_OEM_ID: &[u8; 8] = b"-FVE-FS-";
const NTFS_OEM_ID: &[u8; 8] = b"NTFS    ";

/// Signatures at the start of hiberfil.sys that mean Windows may resume from it:
/// "hibr" (hibernated, Windows XP..7), "HIBR" (hibernated or Fast Startup, Windows 8+),
/// "wake" (a resume was attempted; the boot manager offers to resume again), "RSTR" (resume in
/// progress, Windows 8+). After a normal boot Windows 8+ zeroes the header.
/// Sources: Volatility's HiberAddressSpace notes; artefacts.help "hiberfil.sys";
/// GRUB's `nthibr` command (checks "hibr"/"HIBR").
const HIBERNATION_SIGNATURES: [&[u8; 4]; 4] = [b"hibr", b"HIBR", b"wake", b"RSTR"];

/// What `\hiberfil.sys` says about hibernation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hibernation {
    /// No `\hiberfil.sys`.
    NoFile,
    /// `\hiberfil.sys` exists but is empty.
    Empty,
    /// `\hiberfil.sys` starts with zeros: hibernation enabled, not in use.
    Inactive,
    /// `\hiberfil.sys` holds a memory image Windows may resume from (hibernation or Fast Startup).
    InUse {
        /// The signature found.
        signature: [u8; 4],
    },
    /// Non-zero bytes that are no known signature: treated as in use for writing.
    Unknown {
        /// The first 4 bytes.
        first_bytes: [u8; 4],
    },
    /// The file could not be read (compressed, damaged...): treated as in use for writing.
    Unreadable,
}

impl Hibernation {
    /// Whether writing must be refused because of it.
    pub fn blocks_writes(&self) -> bool {
        matches!(
            self,
            Self::InUse { .. } | Self::Unknown { .. } | Self::Unreadable
        )
    }
}

/// Facts about the volume, gathered when it is opened, for the caller to decide what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFacts {
    /// Size of the file system in bytes (from the boot sector).
    pub size: u64,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Bytes per sector.
    pub sector_size: u16,
    /// Bytes per MFT record.
    pub file_record_size: u32,
    /// Volume serial number.
    pub serial_number: u64,
    /// NTFS version (major, minor), 3.1 for every Windows since XP.
    pub ntfs_version: (u8, u8),
    /// `$VOLUME_INFORMATION` flags.
    pub volume_flags: u16,
    /// Whether the dirty flag ([`VOLUME_DIRTY`]) is set.
    pub dirty: bool,
    /// Partition offsets of the 2-byte volume flags: in the `$Volume` record of `$MFT`, then in
    /// its copy in `$MFTMirr` (NTFS keeps records 0-3 in both; a change must go to both).
    /// Empty if they sit on a fixup-protected spot (never seen in practice).
    pub volume_flags_offsets: Vec<u64>,
    /// The volume label, if any.
    pub label: Option<String>,
    /// Hibernation state from `\hiberfil.sys`.
    pub hibernation: Hibernation,
}

/// An opened NTFS volume. It holds no reader: every call takes the partition reader (`&mut T`,
/// starting at the partition's first byte), as the `ntfs` crate does, so one reader serves several
/// files in turn.
#[derive(Debug)]
pub struct Volume {
    pub(crate) ntfs: Ntfs,
    pub(crate) facts: VolumeFacts,
}

/// A hive and the transaction logs next to it, found case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiveFiles {
    /// The hive itself.
    pub hive: FileEntry,
    /// `<hive>.LOG` (Windows XP-style log, still present on some systems).
    pub log: Option<FileEntry>,
    /// `<hive>.LOG1`.
    pub log1: Option<FileEntry>,
    /// `<hive>.LOG2`.
    pub log2: Option<FileEntry>,
}

/// Runs `f`, turning a panic inside the `ntfs` crate into [`Error::ParserPanic`].
pub(crate) fn guarded<R>(during: &'static str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(Error::ParserPanic { during }))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Volume {
    /// Opens the NTFS volume that `fs` presents from its byte 0. Refuses BitLocker volumes and
    /// non-NTFS boot sectors, reads the `$UpCase` table, the volume flags and the hibernation
    /// state. A dirty or hibernated volume opens fine: see [`Volume::facts`] and
    /// [`Volume::check_writable`].
    pub fn open<T: Read + Seek>(fs: &mut T) -> Result<Self> {
        let mut boot = [0u8; 512];
        fs.seek(SeekFrom::Start(0)).map_err(io_at(0))?;
        fs.read_exact(&mut boot).map_err(io_at(0))?;
        let oem = &boot[3..11];
        if oem == BITLOCKER_OEM_ID {
            return Err(Error::BitLocker);
        }
        if oem != NTFS_OEM_ID {
            return Err(Error::NotNtfs { found: lossy(oem) });
        }
        guarded("opening the volume", || {
            let mut ntfs = Ntfs::new(fs)?;
            ntfs.read_upcase_table(fs)?;
            let info = ntfs.volume_info(fs)?;
            let volume_flags = info.flags().bits();
            let label = match ntfs.volume_name(fs) {
                Some(Ok(name)) => Some(name.name().to_string_lossy()),
                _ => None,
            };
            let mut volume = Self {
                facts: VolumeFacts {
                    size: ntfs.size(),
                    cluster_size: ntfs.cluster_size(),
                    sector_size: ntfs.sector_size(),
                    file_record_size: ntfs.file_record_size(),
                    serial_number: ntfs.serial_number(),
                    ntfs_version: (info.major_version(), info.minor_version()),
                    volume_flags,
                    dirty: volume_flags & VOLUME_DIRTY != 0,
                    volume_flags_offsets: Vec::new(),
                    label,
                    hibernation: Hibernation::NoFile,
                },
                ntfs,
            };
            volume.facts.hibernation = volume.hibernation(fs)?;
            volume.facts.volume_flags_offsets = volume.volume_flags_offsets(fs)?;
            Ok(volume)
        })
    }

    /// The `ntfs` crate's volume, for the readers of this crate.
    pub(crate) fn ntfs(&self) -> &Ntfs {
        &self.ntfs
    }

    /// The facts gathered at opening.
    pub fn facts(&self) -> &VolumeFacts {
        &self.facts
    }

    /// Refuses writing on a dirty volume ([`Error::Dirty`]) or one Windows may resume from
    /// ([`Error::Hibernated`]).
    pub fn check_writable(&self) -> Result<()> {
        if self.facts.dirty {
            return Err(Error::Dirty {
                flags: self.facts.volume_flags,
            });
        }
        match &self.facts.hibernation {
            Hibernation::InUse { signature } => Err(Error::Hibernated {
                signature: lossy(signature),
            }),
            Hibernation::Unknown { first_bytes } => Err(Error::Hibernated {
                signature: lossy(first_bytes),
            }),
            Hibernation::Unreadable => Err(Error::Hibernated {
                signature: "(unreadable)".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Finds the 2-byte flags of `$VOLUME_INFORMATION` in the `$Volume` record and in its copy in
    /// `$MFTMirr`.
    fn volume_flags_offsets<T: Read + Seek>(&self, fs: &mut T) -> Result<Vec<u64>> {
        let ntfs = &self.ntfs;
        let record_size = u64::from(ntfs.file_record_size());
        let volume = ntfs.file(fs, KnownNtfsFileRecordNumber::Volume as u64)?;
        let Some(record_position) = volume.position().value().map(|p| p.get()) else {
            return Ok(Vec::new());
        };
        let raw = RawRecord::read(
            fs,
            KnownNtfsFileRecordNumber::Volume as u64,
            record_position,
            ntfs.file_record_size(),
        )?;
        let mut in_record = None;
        for attribute in volume.attributes_raw() {
            let attribute = attribute?;
            if attribute.ty().ok() != Some(NtfsAttributeType::VolumeInformation) {
                continue;
            }
            let Some(position) = attribute.position().value().map(|p| p.get()) else {
                break;
            };
            if let AttrHeader::Resident {
                value_offset,
                value_length,
                ..
            } = raw.attribute((position - record_position) as usize)?
            {
                // $VOLUME_INFORMATION: 8 reserved bytes, major, minor, then the u16 flags.
                let at = value_offset + 10;
                if value_length >= 12
                    && !RawRecord::is_fixup_protected(at)
                    && !RawRecord::is_fixup_protected(at + 1)
                {
                    in_record = Some(at as u64);
                }
            }
            break;
        }
        let Some(at) = in_record else {
            return Ok(Vec::new());
        };
        let mut offsets = vec![record_position + at];
        // The mirror: record 3 of $MFTMirr's data.
        let mirror = ntfs.file(fs, KnownNtfsFileRecordNumber::MFTMirr as u64)?;
        if let Some(layout) = self.data_layout(fs, &mirror)? {
            let mirrored = FileEntry {
                path: "\\$MFTMirr".into(),
                record: 1,
                sequence: mirror.sequence_number(),
                is_directory: false,
                data: Some(layout),
            };
            let file_offset = 3 * record_size + at;
            if let Ok(plan) = mirrored.plan_write(file_offset, 2) {
                if let [piece] = plan.as_slice() {
                    offsets.push(piece.partition_offset);
                }
            }
        }
        Ok(offsets)
    }

    fn hibernation<T: Read + Seek>(&self, fs: &mut T) -> Result<Hibernation> {
        let Some(file) = self.lookup(fs, "hiberfil.sys")? else {
            return Ok(Hibernation::NoFile);
        };
        if file.size() == 0 {
            return Ok(Hibernation::Empty);
        }
        let mut head = [0u8; 4];
        let Ok(mut reader) = FileReader::new(fs, &file) else {
            return Ok(Hibernation::Unreadable);
        };
        let n = (file.size().min(4)) as usize;
        if reader.read_exact(&mut head[..n]).is_err() {
            return Ok(Hibernation::Unreadable);
        }
        Ok(if HIBERNATION_SIGNATURES.iter().any(|s| **s == head) {
            Hibernation::InUse { signature: head }
        } else if head == [0; 4] {
            Hibernation::Inactive
        } else {
            Hibernation::Unknown { first_bytes: head }
        })
    }

    /// Looks `path` up from the root directory, component by component, through each directory's
    /// index (a B-tree search, case-insensitive with the volume's `$UpCase` table, as Windows
    /// does). `\` and `/` both separate components; a leading separator or drive-less root is
    /// accepted. `Ok(None)` if a component does not exist.
    pub fn lookup<T: Read + Seek>(&self, fs: &mut T, path: &str) -> Result<Option<FileEntry>> {
        let components = split_path(path)?;
        guarded("looking up a path", || {
            let root = self.ntfs.root_directory(fs)?;
            self.walk(fs, path, root, String::new(), &components)
        })
    }

    /// Like [`Volume::lookup`], with [`Error::NotFound`] for a missing component.
    pub fn open_file<T: Read + Seek>(&self, fs: &mut T, path: &str) -> Result<FileEntry> {
        let components = split_path(path)?;
        for depth in 1..=components.len() {
            // Find the first missing component for the message; the walk is cheap.
            let prefix = components[..depth].join("\\");
            if self.lookup(fs, &prefix)?.is_none() {
                return Err(Error::NotFound {
                    path: path.to_string(),
                    component: components[depth - 1].to_string(),
                });
            }
            if depth == components.len() {
                break;
            }
        }
        self.lookup(fs, path)?.ok_or_else(|| Error::NotFound {
            path: path.to_string(),
            component: components.last().map(|c| c.to_string()).unwrap_or_default(),
        })
    }

    /// Finds a hive and its `.LOG`, `.LOG1`, `.LOG2` siblings (case-insensitively, through the
    /// directory index).
    pub fn hive_files<T: Read + Seek>(&self, fs: &mut T, hive_path: &str) -> Result<HiveFiles> {
        let hive = self.open_file(fs, hive_path)?;
        let sibling = |fs: &mut T, suffix: &str| self.lookup(fs, &format!("{hive_path}{suffix}"));
        Ok(HiveFiles {
            log: sibling(fs, ".LOG")?,
            log1: sibling(fs, ".LOG1")?,
            log2: sibling(fs, ".LOG2")?,
            hive,
        })
    }

    fn walk<'n, T: Read + Seek>(
        &'n self,
        fs: &mut T,
        path: &str,
        mut dir: NtfsFile<'n>,
        mut found_path: String,
        components: &[&str],
    ) -> Result<Option<FileEntry>> {
        for (i, component) in components.iter().enumerate() {
            if !dir.is_directory() {
                return Err(Error::NotADirectory {
                    path: path.to_string(),
                    component: components[i.saturating_sub(1)].to_string(),
                });
            }
            let index = dir.directory_index(fs)?;
            let mut finder = index.finder();
            let Some(entry) = NtfsFileNameIndex::find(&mut finder, &self.ntfs, fs, component)
            else {
                return Ok(None);
            };
            let entry = entry?;
            let reference = entry.file_reference();
            let name = match entry.key() {
                Some(key) => key?.name().to_string_lossy(),
                None => component.to_string(),
            };
            let file = reference.to_file(&self.ntfs, fs)?;
            if file.sequence_number() != reference.sequence_number() {
                return Err(Error::StaleEntry {
                    path: path.to_string(),
                    record: reference.file_record_number(),
                    expected: reference.sequence_number(),
                    actual: file.sequence_number(),
                });
            }
            found_path.push('\\');
            found_path.push_str(&name);
            dir = file;
        }
        if found_path.is_empty() {
            found_path.push('\\');
        }
        let data = if dir.is_directory() {
            None
        } else {
            self.data_layout(fs, &dir)?
        };
        Ok(Some(FileEntry {
            path: found_path,
            record: dir.file_record_number(),
            sequence: dir.sequence_number(),
            is_directory: dir.is_directory(),
            data,
        }))
    }

    /// Collects the pieces of the unnamed `$DATA` attribute of `file`, following an
    /// `$ATTRIBUTE_LIST` when there is one.
    pub(crate) fn data_layout<T: Read + Seek>(
        &self,
        fs: &mut T,
        file: &NtfsFile<'_>,
    ) -> Result<Option<DataLayout>> {
        let mut pieces = Vec::new();
        let mut list = None;
        for attribute in file.attributes_raw() {
            let attribute = attribute?;
            match attribute.ty() {
                Ok(NtfsAttributeType::AttributeList) => {
                    list = Some(attribute.structured_value::<_, NtfsAttributeList>(fs)?);
                }
                Ok(NtfsAttributeType::Data) if attribute.name()?.is_empty() && list.is_none() => {
                    pieces.push(self.piece(fs, file, &attribute)?);
                }
                _ => {}
            }
        }
        if let Some(list) = list {
            pieces.clear();
            let mut entries = list.entries();
            let mut count = 0usize;
            while let Some(entry) = entries.next(fs) {
                let entry = entry?;
                count += 1;
                if count > MAX_ATTRIBUTE_LIST_ENTRIES {
                    return Err(self.corrupt(file, "more than 65536 attribute list entries"));
                }
                if entry.ty().ok() != Some(NtfsAttributeType::Data) || !entry.name().is_empty() {
                    continue;
                }
                let holder = entry.to_file(&self.ntfs, fs)?;
                let attribute = entry.to_attribute(&holder)?;
                pieces.push(self.piece(fs, &holder, &attribute)?);
            }
        }
        if pieces.is_empty() {
            return Ok(None);
        }
        self.assemble(file, pieces).map(Some)
    }

    fn corrupt(&self, file: &NtfsFile<'_>, what: &str) -> Error {
        Error::Corrupt {
            record: file.file_record_number(),
            offset: file.position().value().map_or(0, |p| p.get()),
            what: what.to_string(),
        }
    }

    /// Reads one `$DATA` attribute piece: its header (from the raw record) and its runs.
    fn piece<T: Read + Seek>(
        &self,
        fs: &mut T,
        holder: &NtfsFile<'_>,
        attribute: &ntfs::NtfsAttribute<'_, '_>,
    ) -> Result<Piece> {
        let record_position = holder
            .position()
            .value()
            .ok_or_else(|| self.corrupt(holder, "MFT record without a position"))?
            .get();
        let attribute_position = attribute
            .position()
            .value()
            .ok_or_else(|| self.corrupt(holder, "attribute without a position"))?
            .get();
        let raw = RawRecord::read(
            fs,
            holder.file_record_number(),
            record_position,
            self.ntfs.file_record_size(),
        )?;
        let header = raw.attribute((attribute_position - record_position) as usize)?;
        let storage = match header {
            AttrHeader::Resident {
                value_offset,
                value_length,
                ..
            } => {
                let NtfsAttributeValue::Resident(value) = attribute.value(fs)? else {
                    return Err(self.corrupt(holder, "resident header, non-resident value"));
                };
                let bytes = value.data().to_vec();
                if bytes.len() != value_length {
                    return Err(self.corrupt(holder, "resident value length disagrees"));
                }
                Storage::Resident {
                    bytes,
                    partition_offset: record_position + value_offset as u64,
                }
            }
            AttrHeader::NonResident { .. } => {
                let NtfsAttributeValue::NonResident(value) = attribute.value(fs)? else {
                    return Err(self.corrupt(holder, "non-resident header, other value kind"));
                };
                let mut extents = Vec::new();
                for run in value.data_runs() {
                    let run = run?;
                    if extents.len() >= MAX_RUNS {
                        return Err(self.corrupt(holder, "more than 2^20 data runs"));
                    }
                    extents.push(Extent {
                        file_offset: 0, // set in `assemble`
                        len: run.allocated_size(),
                        partition_offset: run.data_position().value().map(|p| p.get()),
                    });
                }
                Storage::NonResident { extents }
            }
        };
        Ok(Piece {
            header,
            storage,
            record: holder.file_record_number(),
            position: attribute_position,
        })
    }

    /// Orders the pieces by lowest VCN, checks that they join up, and gives every run its file
    /// offset.
    fn assemble(&self, file: &NtfsFile<'_>, mut pieces: Vec<Piece>) -> Result<DataLayout> {
        let cluster = u64::from(self.ntfs.cluster_size());
        let count = pieces.len();
        if count == 1 {
            if let AttrHeader::Resident { flags, .. } = pieces[0].header {
                let Storage::Resident { bytes, .. } = &pieces[0].storage else {
                    return Err(self.corrupt(file, "resident header, runs"));
                };
                let len = bytes.len() as u64;
                return Ok(DataLayout {
                    size: len,
                    valid_size: len,
                    allocated_size: len,
                    flags,
                    compression_unit: 0,
                    pieces: 1,
                    storage: pieces
                        .pop()
                        .map(|p| p.storage)
                        .unwrap_or(Storage::NonResident {
                            extents: Vec::new(),
                        }),
                });
            }
        }
        pieces.sort_by_key(|p| match p.header {
            AttrHeader::NonResident { lowest_vcn, .. } => lowest_vcn,
            AttrHeader::Resident { .. } => 0,
        });
        let mut first = None;
        let mut all = Vec::new();
        let mut next_vcn = 0u64;
        for piece in pieces {
            let AttrHeader::NonResident {
                flags,
                lowest_vcn,
                highest_vcn,
                compression_unit,
                allocated_size,
                data_size,
                initialized_size,
            } = piece.header
            else {
                return Err(Error::Corrupt {
                    record: piece.record,
                    offset: piece.position,
                    what: "a resident $DATA piece among several".into(),
                });
            };
            if lowest_vcn != next_vcn {
                return Err(Error::Corrupt {
                    record: piece.record,
                    offset: piece.position,
                    what: format!("$DATA piece starts at VCN {lowest_vcn}, expected {next_vcn}"),
                });
            }
            if first.is_none() {
                first = Some((
                    flags,
                    compression_unit,
                    allocated_size,
                    data_size,
                    initialized_size,
                ));
            }
            let Storage::NonResident { extents } = piece.storage else {
                continue;
            };
            for mut ext in extents {
                let file_offset = next_vcn.checked_mul(cluster);
                let clusters = ext.len / cluster;
                let end_vcn = next_vcn.checked_add(clusters);
                let (Some(file_offset), Some(end_vcn)) = (file_offset, end_vcn) else {
                    return Err(Error::Corrupt {
                        record: piece.record,
                        offset: piece.position,
                        what: "data runs overflow the VCN range".into(),
                    });
                };
                if let Some(p) = ext.partition_offset {
                    if p.checked_add(ext.len).is_none_or(|e| e > self.ntfs.size()) {
                        return Err(Error::Corrupt {
                            record: piece.record,
                            offset: piece.position,
                            what: format!(
                                "data run at partition offset {p:#x} (+{:#x}) lies beyond the volume end {:#x}",
                                ext.len,
                                self.ntfs.size()
                            ),
                        });
                    }
                }
                ext.file_offset = file_offset;
                next_vcn = end_vcn;
                all.push(ext);
            }
            if let Some(h) = highest_vcn {
                if h.checked_add(1) != Some(next_vcn) {
                    return Err(Error::Corrupt {
                        record: piece.record,
                        offset: piece.position,
                        what: format!(
                            "$DATA piece ends at VCN {}, its header says highest VCN {h}",
                            next_vcn.saturating_sub(1)
                        ),
                    });
                }
            }
        }
        let Some((flags, compression_unit, allocated_size, size, valid_size)) = first else {
            return Err(self.corrupt(file, "no $DATA piece"));
        };
        if valid_size > size {
            return Err(self.corrupt(file, "initialized size is larger than the data size"));
        }
        Ok(DataLayout {
            size,
            valid_size,
            allocated_size,
            flags,
            compression_unit,
            pieces: count,
            storage: Storage::NonResident { extents: all },
        })
    }

    /// A reader over the file's bytes ([`Read`] + [`Seek`]), borrowing the partition reader.
    /// Refuses compressed and encrypted files (their clusters do not hold the file's bytes).
    pub fn reader<'a, T: Read + Seek>(
        &self,
        fs: &'a mut T,
        file: &'a FileEntry,
    ) -> Result<FileReader<'a, T>> {
        FileReader::new(fs, file)
    }

    /// Reads the whole file into memory (at most [`MAX_READ_TO_VEC`] bytes).
    pub fn read_file<T: Read + Seek>(&self, fs: &mut T, file: &FileEntry) -> Result<Vec<u8>> {
        let size = file.size();
        // The size comes from the MFT record: a damaged one may claim gigabytes on a small disk.
        if size > self.facts.size {
            return Err(Error::LargerThanVolume {
                path: file.path().to_string(),
                len: size,
                volume: self.facts.size,
            });
        }
        if size > MAX_READ_TO_VEC {
            return Err(Error::TooLarge {
                path: file.path().to_string(),
                len: size,
                limit: MAX_READ_TO_VEC,
            });
        }
        let mut out = vec![0u8; size as usize];
        let mut reader = FileReader::new(fs, file)?;
        reader.read_exact(&mut out).map_err(|source| Error::Io {
            offset: file
                .extents()
                .first()
                .and_then(|e| e.partition_offset)
                .unwrap_or(0),
            source,
        })?;
        Ok(out)
    }

    /// Maps a file range to the partition ranges an in-place write would touch (see
    /// [`FileEntry::plan_write`]); this also checks the volume may be written
    /// ([`Volume::check_writable`]).
    pub fn plan_write(
        &self,
        file: &FileEntry,
        file_offset: u64,
        len: u64,
    ) -> Result<Vec<WriteExtent>> {
        self.check_writable()?;
        file.plan_write(file_offset, len)
    }

    /// Writes `data` at `file_offset` of `file`, in place, into clusters the file already owns:
    /// no NTFS metadata changes (size, runs, timestamps, `$LogFile` all stay as they are).
    /// `dev` must present the same partition as the reader the file was looked up with.
    /// Returns the pieces written, for a journal.
    pub fn write_file_range<W: Write + Seek>(
        &self,
        dev: &mut W,
        file: &FileEntry,
        file_offset: u64,
        data: &[u8],
    ) -> Result<Vec<WriteExtent>> {
        let plan = self.plan_write(file, file_offset, data.len() as u64)?;
        let mut done = 0usize;
        for piece in &plan {
            let n = piece.len as usize;
            dev.seek(SeekFrom::Start(piece.partition_offset))
                .map_err(io_at(piece.partition_offset))?;
            dev.write_all(&data[done..done + n])
                .map_err(io_at(piece.partition_offset))?;
            done += n;
        }
        dev.flush().map_err(io_at(0))?;
        Ok(plan)
    }
}

/// One `$DATA` attribute piece before assembly.
struct Piece {
    header: AttrHeader,
    storage: Storage,
    record: u64,
    position: u64,
}

/// Splits a Windows path into components, refusing what NTFS lookups cannot mean.
fn split_path(path: &str) -> Result<Vec<&str>> {
    let invalid = |reason| Error::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let mut rest = path;
    // Accept "C:\..." by dropping a drive letter: the volume is the drive.
    if rest.len() >= 2 && rest.as_bytes()[1] == b':' && rest.as_bytes()[0].is_ascii_alphabetic() {
        rest = &rest[2..];
    }
    let components: Vec<&str> = rest.split(['\\', '/']).filter(|c| !c.is_empty()).collect();
    if components.len() > MAX_PATH_COMPONENTS {
        return Err(invalid("more than 64 components"));
    }
    for c in &components {
        if *c == "." || *c == ".." {
            return Err(invalid("\".\" and \"..\" are not supported"));
        }
        if c.encode_utf16().count() > MAX_NAME_UNITS {
            return Err(invalid("a component is longer than 255 UTF-16 units"));
        }
    }
    Ok(components)
}
