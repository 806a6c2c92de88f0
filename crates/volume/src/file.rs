//! A file found on the volume: where its `$DATA` bytes lie, how to read them, and the write plan.

use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{Error, Result};

/// `$DATA` attribute flag: compressed (LZNT1 compression units).
pub const ATTR_COMPRESSED: u16 = 0x0001;
/// `$DATA` attribute flag: EFS-encrypted.
pub const ATTR_ENCRYPTED: u16 = 0x4000;
/// `$DATA` attribute flag: sparse.
pub const ATTR_SPARSE: u16 = 0x8000;

/// A file or directory found by path, with everything needed to read or patch its unnamed `$DATA`
/// stream. It owns its data (no borrow of the volume or the reader), so it can be kept while the
/// reader is used for other things; it describes the volume as it was when it was looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub(crate) path: String,
    pub(crate) record: u64,
    pub(crate) sequence: u16,
    pub(crate) is_directory: bool,
    pub(crate) data: Option<DataLayout>,
}

/// Where the bytes of a `$DATA` attribute live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLayout {
    /// The file size (`$DATA` data size).
    pub size: u64,
    /// The valid data length (initialized size): bytes from here to `size` read as zeros.
    pub valid_size: u64,
    /// Allocated size (whole clusters) for non-resident data, the value length for resident data.
    pub allocated_size: u64,
    /// `$DATA` attribute flags of the first piece ([`ATTR_COMPRESSED`], [`ATTR_ENCRYPTED`],
    /// [`ATTR_SPARSE`]).
    pub flags: u16,
    /// The compression unit exponent (0 when not compressed).
    pub compression_unit: u8,
    /// How many `$DATA` attribute pieces (more than 1 only with an `$ATTRIBUTE_LIST`).
    pub pieces: usize,
    /// Resident bytes or the list of extents.
    pub storage: Storage,
}

/// Resident or non-resident storage of a `$DATA` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The bytes live inside the MFT record.
    Resident {
        /// The value, as stored.
        bytes: Vec<u8>,
        /// Partition offset of the value inside the MFT record (informational: the record is
        /// protected by fixups, never patch it there).
        partition_offset: u64,
    },
    /// The bytes live in clusters described by data runs, in file order.
    NonResident {
        /// One entry per data run, in file order, each covering whole clusters.
        extents: Vec<Extent>,
    },
}

/// One data run of a non-resident attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// File offset of the run's first byte.
    pub file_offset: u64,
    /// Length in bytes (whole clusters; the last run may extend past the file size).
    pub len: u64,
    /// Partition offset of the run's first byte, `None` for a sparse run (reads as zeros).
    pub partition_offset: Option<u64>,
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

impl FileEntry {
    /// The path as stored on disk (components joined by `\`, with the on-disk case).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// MFT record number.
    pub fn record_number(&self) -> u64 {
        self.record
    }

    /// Sequence number of the MFT record.
    pub fn sequence_number(&self) -> u16 {
        self.sequence
    }

    /// Whether this is a directory.
    pub fn is_directory(&self) -> bool {
        self.is_directory
    }

    /// The unnamed `$DATA` stream, if the file has one.
    pub fn data(&self) -> Option<&DataLayout> {
        self.data.as_ref()
    }

    /// The file size (0 without `$DATA`).
    pub fn size(&self) -> u64 {
        self.data.as_ref().map_or(0, |d| d.size)
    }

    /// Whether the data is stored in the MFT record.
    pub fn is_resident(&self) -> bool {
        matches!(
            self.data.as_ref().map(|d| &d.storage),
            Some(Storage::Resident { .. })
        )
    }

    /// The data runs (empty for resident data or without `$DATA`).
    pub fn extents(&self) -> &[Extent] {
        match self.data.as_ref().map(|d| &d.storage) {
            Some(Storage::NonResident { extents }) => extents,
            _ => &[],
        }
    }

    pub(crate) fn layout(&self) -> Result<&DataLayout> {
        self.data.as_ref().ok_or_else(|| Error::NoData {
            path: self.path.clone(),
            record: self.record,
        })
    }

    /// Checks that the file's bytes can be read from its clusters as they are (not compressed,
    /// not encrypted).
    /// A reader over the file's bytes ([`Read`] + [`Seek`]) through the partition reader `fs`,
    /// as [`crate::Volume::reader`] gives: for a caller that keeps the entry and reads it later.
    pub fn reader<'a, T: Read + Seek>(&'a self, fs: &'a mut T) -> Result<FileReader<'a, T>> {
        FileReader::new(fs, self)
    }

    pub(crate) fn check_plain(&self) -> Result<&DataLayout> {
        let d = self.layout()?;
        if d.flags & ATTR_ENCRYPTED != 0 {
            return Err(Error::Encrypted {
                path: self.path.clone(),
                record: self.record,
                flags: d.flags,
            });
        }
        // Only the flag: ntfs-3g also sets a compression unit on merely sparse attributes.
        if d.flags & ATTR_COMPRESSED != 0 {
            return Err(Error::Compressed {
                path: self.path.clone(),
                record: self.record,
                flags: d.flags,
            });
        }
        Ok(d)
    }

    /// Maps the file range `file_offset .. file_offset + len` to partition ranges, for an
    /// in-place write into clusters the file already owns. Refuses resident, compressed,
    /// encrypted data, ranges past the file size or the valid data length, and sparse runs.
    /// Adjacent runs are not merged: each piece lies inside one data run.
    pub fn plan_write(&self, file_offset: u64, len: u64) -> Result<Vec<WriteExtent>> {
        let d = self.check_plain()?;
        let end = file_offset.checked_add(len);
        if end.is_none_or(|e| e > d.size) {
            return Err(Error::PastEnd {
                path: self.path.clone(),
                start: file_offset,
                end: end.unwrap_or(u64::MAX),
                size: d.size,
            });
        }
        // Checked just above.
        let end = end.unwrap_or(u64::MAX);
        if end > d.valid_size {
            return Err(Error::PastValidData {
                path: self.path.clone(),
                start: file_offset,
                end,
                valid: d.valid_size,
            });
        }
        let extents = match &d.storage {
            Storage::Resident {
                partition_offset, ..
            } => {
                return Err(Error::Resident {
                    path: self.path.clone(),
                    record: self.record,
                    offset: *partition_offset,
                })
            }
            Storage::NonResident { extents } => extents,
        };
        let mut plan = Vec::new();
        let mut pos = file_offset;
        while pos < end {
            let ext = find_extent(extents, pos).ok_or_else(|| Error::Unmapped {
                path: self.path.clone(),
                record: self.record,
                file_offset: pos,
            })?;
            let Some(base) = ext.partition_offset else {
                return Err(Error::SparseRange {
                    path: self.path.clone(),
                    start: file_offset,
                    end,
                    sparse_offset: ext.file_offset,
                });
            };
            let within = pos - ext.file_offset;
            let piece = (ext.file_offset + ext.len).min(end) - pos;
            plan.push(WriteExtent {
                file_offset: pos,
                partition_offset: base + within,
                len: piece,
            });
            pos += piece;
        }
        Ok(plan)
    }
}

/// The extent containing file offset `pos` (extents are sorted and contiguous).
fn find_extent(extents: &[Extent], pos: u64) -> Option<&Extent> {
    let i = extents.partition_point(|e| e.file_offset + e.len <= pos);
    extents.get(i).filter(|e| e.file_offset <= pos)
}

/// Reads a file's unnamed `$DATA` through the partition reader: implements [`Read`] and [`Seek`].
/// Sparse runs and bytes past the valid data length read as zeros; reading stops at the file size.
/// Created by [`Volume::reader`](crate::Volume::reader).
pub struct FileReader<'a, T> {
    fs: &'a mut T,
    file: &'a FileEntry,
    layout: &'a DataLayout,
    pos: u64,
}

impl<'a, T: Read + Seek> FileReader<'a, T> {
    pub(crate) fn new(fs: &'a mut T, file: &'a FileEntry) -> Result<Self> {
        let layout = file.check_plain()?;
        Ok(Self {
            fs,
            file,
            layout,
            pos: 0,
        })
    }

    /// The file size.
    pub fn len(&self) -> u64 {
        self.layout.size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.layout.size == 0
    }
}

impl<T: Read + Seek> Read for FileReader<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let d = self.layout;
        if self.pos >= d.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(d.size - self.pos);
        // Past the valid data length: zeros, whatever the clusters hold.
        if self.pos >= d.valid_size {
            let n = want as usize;
            buf[..n].fill(0);
            self.pos += want;
            return Ok(n);
        }
        let want = want.min(d.valid_size - self.pos);
        let n = match &d.storage {
            Storage::Resident { bytes, .. } => {
                let start = self.pos as usize;
                let avail = bytes.get(start..).unwrap_or_default();
                let n = (want as usize).min(avail.len());
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: resident value is shorter than the file size",
                            self.file.path
                        ),
                    ));
                }
                buf[..n].copy_from_slice(&avail[..n]);
                n
            }
            Storage::NonResident { extents } => {
                let ext = find_extent(extents, self.pos).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: no data run maps file offset {:#x}",
                            self.file.path, self.pos
                        ),
                    )
                })?;
                let within = self.pos - ext.file_offset;
                let n = want.min(ext.len - within) as usize;
                match ext.partition_offset {
                    None => {
                        buf[..n].fill(0);
                        n
                    }
                    Some(base) => {
                        self.fs.seek(SeekFrom::Start(base + within))?;
                        let got = self.fs.read(&mut buf[..n])?;
                        if got == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "{}: partition ends at offset {:#x}, inside a data run",
                                    self.file.path,
                                    base + within
                                ),
                            ));
                        }
                        got
                    }
                }
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<T: Read + Seek> Seek for FileReader<'_, T> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(n) => self.layout.size.checked_add_signed(n),
            SeekFrom::Current(n) => self.pos.checked_add_signed(n),
        };
        self.pos = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        Ok(self.pos)
    }
}
