//! A hive read on demand: only the hive bins a reader touches are loaded, one bin at a time.
//!
//! A SOFTWARE hive is 50 to 150 MB, and the checks read a few dozen keys of it. [`Paged`] holds
//! the base block and loads each hive bin from a [`ReadAt`] source the first time a cell in it is
//! asked for; [`crate::Hive`] reads it through the same key and value API as a hive in memory
//! (`Hive<&Paged>`), still without copying cells. Each bin is read once and kept, so the memory
//! used is at most the size of the hive bins read.
//!
//! A cell of a paged hive must lie inside its hive bin (Windows never writes one across a bin
//! boundary, and [`crate::check::check`] reports it as a fault); a hive in memory is read up to
//! the end of its hive-bins data instead. A dirty hive is read the same way once its logs are
//! replayed ([`Paged::open_replayed`]): the replay ([`crate::log::plan`]) gives a base block and
//! the pages to lay over the file, and each bin is read from the file with those pages on top.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::base::{BaseBlock, BASE_BLOCK_SIZE};
use crate::bytes::{i32_at, slice, u32_at};
use crate::cell::{bad, CellOffset, NONE};
use crate::log::{self, LogInput, Replay};
use crate::{Error, Result};

/// Hive bins are aligned to, and sized in, 4 KiB pages.
const PAGE: usize = 4096;
/// Pages per group of the page table: the table is allocated a group (512 KiB of hive) at a
/// time, as pages are touched, so its size follows the bytes read, not the size the file claims.
const GROUP: usize = 128;

/// Where the bytes of a hive file come from: a file, or the data runs of a file inside a disk
/// image. Reads are positioned (`&self`), so one source serves concurrent readers.
pub trait ReadAt: Send + Sync {
    /// Fills `buf` with the bytes at `offset` of the hive file; an error names what failed.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), String>;

    /// Told before the reads of `ranges` (offset, length) of the hive file: a source that
    /// pays per request (an image behind a URL) fetches exactly these bytes, together, instead
    /// of each read fetching its own range and what its own read-ahead guesses. Hive bins are
    /// scattered, so a guess is mostly bytes no one reads. Nothing to do for a local file.
    fn prefetch(&self, ranges: &[(u64, u64)]) -> std::result::Result<(), String> {
        let _ = ranges;
        Ok(())
    }
}

/// What a page of hive-bins data belongs to, once looked up.
enum Slot {
    /// A hive bin starts on this page: all its bytes.
    Bin(Box<[u8]>),
    /// The page is inside the bin that starts at this page index.
    Within(usize),
}

/// A clean hive whose bins are loaded on first use. See the module documentation.
pub struct Paged {
    source: Box<dyn ReadAt>,
    file_len: u64,
    base_block: Box<[u8]>,
    /// Length of the hive-bins data (the base block's size, checked against the file length).
    bins_len: usize,
    /// One entry per group of [`GROUP`] pages, each page's slot filled on first use.
    groups: Vec<OnceLock<Box<[OnceLock<Slot>]>>>,
}

impl std::fmt::Debug for Paged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paged")
            .field("file_len", &self.file_len)
            .field("bins_len", &self.bins_len)
            .field("loaded", &self.loaded_bytes())
            .finish()
    }
}

impl Paged {
    /// Reads the base block of the `file_len`-byte hive file behind `source`. Refused (as by
    /// [`crate::Hive::open`]) when it is not a valid base block or its hive-bins data runs past
    /// the end of the file, and when the hive is dirty: use [`Paged::open_replayed`].
    pub fn open(source: Box<dyn ReadAt>, file_len: u64) -> Result<Paged> {
        let head = read_head(&*source, file_len)?;
        Paged::with_head(source, file_len, head, false)
    }

    /// Reads the hive as Windows loads it: when its base block says it is dirty, `logs` are
    /// read (only then: a clean hive's logs are not needed) and replayed over it
    /// ([`crate::log::plan`]); the pages they give are laid over the bins as they are loaded,
    /// so the primary is still read only where it is used. Also the replay's report, for a
    /// dirty hive. A dirty hive whose logs cannot be applied is read as it is (the report says
    /// `incomplete`), as [`crate::log::replay`] does.
    pub fn open_replayed(
        source: Box<dyn ReadAt>,
        file_len: u64,
        logs: impl FnOnce() -> std::result::Result<Vec<(String, Vec<u8>)>, String>,
    ) -> Result<(Paged, Option<Replay>)> {
        let head = read_head(&*source, file_len)?;
        if !BaseBlock::parse(&head)?.is_dirty() {
            return Ok((Paged::with_head(source, file_len, head, false)?, None));
        }
        let logs = logs().map_err(|what| Error::Log {
            log: "(reading the logs)".into(),
            what,
        })?;
        let inputs: Vec<LogInput<'_>> = logs
            .iter()
            .map(|(name, data)| LogInput { name, data })
            .collect();
        let planned = log::plan(
            &head,
            usize::try_from(file_len).unwrap_or(usize::MAX),
            &inputs,
        )?;
        let mut sectors = BTreeMap::new();
        for (at, data) in &planned.writes {
            for (k, sector) in data.chunks_exact(SECTOR).enumerate() {
                let mut owned = [0u8; SECTOR];
                owned.copy_from_slice(sector);
                sectors.insert((at + k * SECTOR) as u64, owned);
            }
        }
        let len = planned.len as u64;
        let base_block = planned.base_block;
        let replayed = Replayed {
            source,
            file_len,
            base_block: base_block.clone().into_boxed_slice(),
            sectors,
        };
        let mut head = base_block;
        head.resize(log::HEAD, 0);
        replayed
            .read_exact_at(0, &mut head)
            .map_err(|what| Error::BadBin { file: 0, what })?;
        let incomplete = planned.report.incomplete;
        let paged = Paged::with_head(Box::new(replayed), len, head, incomplete)?;
        Ok((paged, Some(planned.report)))
    }

    /// The hive behind `source` whose first bytes are `head`; a dirty base block is taken as
    /// it is only when `dirty_ok` (a replay that found nothing to apply).
    fn with_head(
        source: Box<dyn ReadAt>,
        file_len: u64,
        mut head: Vec<u8>,
        dirty_ok: bool,
    ) -> Result<Paged> {
        let base = BaseBlock::parse(&head)?;
        base.validate()?;
        if base.is_dirty() && !dirty_ok {
            return Err(Error::BadBaseBlock {
                what: "primary sequence",
                value: u64::from(base.primary_sequence),
                why: "differs from the secondary one or the checksum is wrong: the hive is dirty, its logs must be replayed over the whole file",
            });
        }
        let bins_len = base.hive_bins_size as usize;
        if BASE_BLOCK_SIZE as u64 + bins_len as u64 > file_len {
            return Err(Error::BadBaseBlock {
                what: "hive-bins data size",
                value: bins_len as u64,
                why: "runs past the end of the file (truncated hive?)",
            });
        }
        // bins_len is a u32 checked against the file length: at most 8192 groups.
        let pages = bins_len.div_ceil(PAGE);
        let groups = (0..pages.div_ceil(GROUP))
            .map(|_| OnceLock::new())
            .collect();
        head.truncate(BASE_BLOCK_SIZE);
        Ok(Paged {
            source,
            file_len,
            base_block: head.into_boxed_slice(),
            bins_len,
            groups,
        })
    }

    /// The 4096-byte base block.
    pub fn base_block_bytes(&self) -> &[u8] {
        &self.base_block
    }

    /// The hive file's length.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Length of the hive-bins data.
    pub fn bins_len(&self) -> usize {
        self.bins_len
    }

    /// Bytes of hive bins loaded so far.
    pub fn loaded_bytes(&self) -> usize {
        self.groups
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|g| g.iter())
            .filter_map(|s| match s.get() {
                Some(Slot::Bin(b)) => Some(b.len()),
                _ => None,
            })
            .sum()
    }

    fn slot(&self, page: usize) -> Option<&OnceLock<Slot>> {
        let group = self
            .groups
            .get(page / GROUP)?
            .get_or_init(|| (0..GROUP).map(|_| OnceLock::new()).collect());
        group.get(page % GROUP)
    }

    /// The 32-byte bin header that would start page `page`, read from the source. The whole
    /// page is announced first: a bin is most often that one page, read next.
    fn header(&self, page: usize) -> Result<[u8; 32]> {
        let mut h = [0u8; 32];
        let file = (BASE_BLOCK_SIZE + page * PAGE) as u64;
        self.source
            .prefetch(&[(file, PAGE as u64)])
            .and_then(|()| self.source.read_exact_at(file, &mut h))
            .map_err(|what| Error::BadBin { file, what })?;
        Ok(h)
    }

    /// The hive bin holding page `page`: its first page and its bytes. Found by looking for its
    /// header at this page and then the pages before it (a bin larger than a page holds one
    /// large cell, so this is rare); the bin is read whole, once.
    fn bin_of(&self, page: usize) -> Result<(usize, &[u8])> {
        let mut p = page;
        let (start, size) = loop {
            let slot = self
                .slot(p)
                .ok_or_else(|| bad(offset(page), "beyond the end of the hive-bins data"))?;
            match slot.get() {
                Some(Slot::Bin(b)) => break (p, b.len()),
                Some(Slot::Within(s)) => {
                    p = *s;
                    continue;
                }
                None => {}
            }
            let h = self.header(p)?;
            let at = u32_at(&h, 4).unwrap_or(NONE) as usize;
            if h.starts_with(b"hbin") && at == p * PAGE {
                let size = u32_at(&h, 8).unwrap_or(0) as usize;
                let file = (BASE_BLOCK_SIZE + p * PAGE) as u64;
                if size < PAGE || !size.is_multiple_of(PAGE) || p * PAGE + size > self.bins_len {
                    return Err(Error::BadBin {
                        file,
                        what: format!(
                            "bin size 0x{size:x} is not a multiple of 4096 within the 0x{:x}-byte hive-bins data",
                            self.bins_len
                        ),
                    });
                }
                let mut bytes = vec![0u8; size];
                self.source
                    .prefetch(&[(file, size as u64)])
                    .and_then(|()| self.source.read_exact_at(file, &mut bytes))
                    .map_err(|what| Error::BadBin { file, what })?;
                // A bin larger than a page holds one large cell, never another bin. A size
                // field that claims the bins after it (damaged, or crafted) would make those
                // pages belong to two bins, each read on its own: refuse it, as reading the
                // bins one after another would.
                if let Some(q) = (1..size / PAGE).find(|&q| {
                    let h = &bytes[q * PAGE..];
                    h.starts_with(b"hbin") && u32_at(h, 4) == Some(((p + q) * PAGE) as u32)
                }) {
                    return Err(Error::BadBin {
                        file,
                        what: format!(
                            "bin size 0x{size:x} covers the hive bin that starts at cell offset 0x{:x}",
                            (p + q) * PAGE
                        ),
                    });
                }
                // Another reader may have loaded it meanwhile: either copy is the same bytes.
                let _ = slot.set(Slot::Bin(bytes.into_boxed_slice()));
                break (p, size);
            }
            if p == 0 {
                return Err(bad(
                    offset(page),
                    "no hive bin header at or before this page",
                ));
            }
            p -= 1;
        };
        if start * PAGE + size <= page * PAGE {
            return Err(bad(
                offset(page),
                &format!(
                    "in no hive bin: the bin before it, at cell offset 0x{:x}, ends at 0x{:x}",
                    start * PAGE,
                    start * PAGE + size
                ),
            ));
        }
        // Remember the pages between for the next lookup.
        for q in start + 1..=page {
            if let Some(s) = self.slot(q) {
                let _ = s.set(Slot::Within(start));
            }
        }
        match self.slot(start).and_then(OnceLock::get) {
            Some(Slot::Bin(b)) => Ok((start, b)),
            _ => Err(bad(offset(page), "hive bin not loaded")),
        }
    }

    /// The bytes of the allocated cell at `off` (as [`crate::cell::Bins::cell`]), which must lie
    /// inside its hive bin.
    pub(crate) fn cell(&self, off: CellOffset) -> Result<&[u8]> {
        let o = off as usize;
        if o >= self.bins_len {
            return Err(bad(
                off,
                &format!(
                    "beyond the end of the hive-bins data (0x{:x} bytes)",
                    self.bins_len
                ),
            ));
        }
        let (start, bin) = self.bin_of(o / PAGE)?;
        let rel = o - start * PAGE;
        let Some(size) = i32_at(bin, rel) else {
            return Err(bad(
                off,
                "cell size field runs past the end of its hive bin",
            ));
        };
        let size = crate::cell::allocated_size(off, size)?;
        slice(bin, rel + 4, size - 4).ok_or_else(|| {
            bad(
                off,
                &format!(
                    "cell of {size} bytes runs past the end of its hive bin (cell offset 0x{:x}, 0x{:x} bytes)",
                    start * PAGE,
                    bin.len()
                ),
            )
        })
    }
}

/// The base block and the first bin's header (as much of [`log::HEAD`] as the file has),
/// with the first bin announced too: it holds the root key, read next.
fn read_head(source: &dyn ReadAt, file_len: u64) -> Result<Vec<u8>> {
    if file_len < BASE_BLOCK_SIZE as u64 {
        return Err(Error::TooShort {
            len: file_len as usize,
        });
    }
    let mut head = vec![0u8; (log::HEAD as u64).min(file_len) as usize];
    let first = ((BASE_BLOCK_SIZE + PAGE) as u64).min(file_len);
    source
        .prefetch(&[(0, first)])
        .and_then(|()| source.read_exact_at(0, &mut head))
        .map_err(|what| Error::BadBin {
            file: 0,
            what: format!("reading the base block: {what}"),
        })?;
    Ok(head)
}

/// Log pages come in 512-byte sectors (old format) or 4 KiB pages (new format).
const SECTOR: usize = 512;

/// A hive file with its logs' replay laid over it: the primary's bytes (zeros past its end,
/// where a replay grew the hive), under the replayed pages and base block.
struct Replayed {
    source: Box<dyn ReadAt>,
    file_len: u64,
    base_block: Box<[u8]>,
    /// The last bytes the replay gave each 512-byte sector, by file offset.
    sectors: BTreeMap<u64, [u8; SECTOR]>,
}

impl ReadAt for Replayed {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        let end = offset.saturating_add(buf.len() as u64);
        // The primary's part, unless the replay gives every sector of it.
        let in_file = end.min(self.file_len).saturating_sub(offset) as usize;
        let first_sector = offset - offset % SECTOR as u64;
        let covered = offset >= BASE_BLOCK_SIZE as u64
            && (first_sector..offset + in_file as u64)
                .step_by(SECTOR)
                .all(|s| self.sectors.contains_key(&s));
        buf.fill(0);
        if in_file > 0 && !covered {
            self.source.read_exact_at(offset, &mut buf[..in_file])?;
        }
        let lay = |buf: &mut [u8], at: u64, bytes: &[u8]| {
            let from = at.max(offset);
            let to = end.min(at + bytes.len() as u64);
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
            }
        };
        lay(buf, 0, &self.base_block);
        for (&at, sector) in self.sectors.range(first_sector..end) {
            lay(buf, at, sector);
        }
        Ok(())
    }

    fn prefetch(&self, ranges: &[(u64, u64)]) -> std::result::Result<(), String> {
        let in_file: Vec<(u64, u64)> = ranges
            .iter()
            .filter(|(offset, _)| *offset < self.file_len)
            .map(|&(offset, len)| (offset, len.min(self.file_len - offset)))
            .collect();
        self.source.prefetch(&in_file)
    }
}

fn offset(page: usize) -> CellOffset {
    u32::try_from(page * PAGE).unwrap_or(NONE)
}

/// A hive file in memory is also a source (for tests and benchmarks).
impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| slice(self, o, buf.len()))
            .ok_or_else(|| {
                format!(
                    "{} bytes at 0x{offset:x} are past the end of the file",
                    buf.len()
                )
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
            .map_err(|e| format!("reading {} bytes at 0x{offset:x}: {e}", buf.len()))
    }
}
