//! A hive file held in memory (or memory-mapped, or taken out of a disk image): the entry point
//! for reading.

use crate::base::{BaseBlock, BASE_BLOCK_SIZE};
use crate::cell::{Bins, Mem};
use crate::key::Key;
use crate::paged::Paged;
use crate::{Error, Result};

/// What a [`Hive`] reads: the whole file in memory (anything that derefs to bytes: a `Vec<u8>`,
/// a `&[u8]`, a memory map), or a [`Paged`] hive that loads its bins on demand.
pub trait Source {
    /// The file in memory, or the paged hive.
    fn source(&self) -> HiveSource<'_>;
}

/// The two kinds of [`Source`].
#[derive(Clone, Copy)]
pub enum HiveSource<'a> {
    Bytes(&'a [u8]),
    Paged(&'a Paged),
}

impl<T: AsRef<[u8]> + ?Sized> Source for T {
    fn source(&self) -> HiveSource<'_> {
        HiveSource::Bytes(self.as_ref())
    }
}

impl Source for &Paged {
    fn source(&self) -> HiveSource<'_> {
        HiveSource::Paged(self)
    }
}

impl Source for HiveSource<'_> {
    fn source(&self) -> HiveSource<'_> {
        *self
    }
}

/// Windows refuses keys nested deeper than this (CM_MAX_KEY_DEPTH... in practice 512 levels);
/// the walker stops there so that a hostile hive cannot make it loop.
pub const MAX_DEPTH: usize = 512;

/// How the hive was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// Everything the base block says is consistent with the file.
    Strict,
    /// Opened despite problems, listed here (the reader then says what it skipped).
    Lenient(Vec<String>),
}

/// A registry hive over a byte buffer. `B` is anything that derefs to bytes: a `Vec<u8>`, a
/// `&[u8]`, a memory map; or a [`Paged`] hive (`Hive<&Paged>`). Nothing is copied: keys and
/// values borrow from the buffer (from the loaded bins of a paged hive).
pub struct Hive<B> {
    buf: B,
    base: BaseBlock,
    bins_len: usize,
    opening: Opening,
}

impl<B: AsRef<[u8]>> Hive<B> {
    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }
}

impl<B: Source> Hive<B> {
    /// Opens a hive, refusing anything whose base block is inconsistent with the file: wrong
    /// signature, unsupported version, or hive-bins data that runs past the end of the file.
    /// A dirty hive opens (its state is in [`Hive::base_block`]); replaying its logs is the job
    /// of [`crate::log`]. A [`Paged`] hive was checked when it was opened (and is clean).
    pub fn open(buf: B) -> Result<Hive<B>> {
        let data = match buf.source() {
            HiveSource::Bytes(d) => d,
            HiveSource::Paged(p) => {
                let base = BaseBlock::parse(p.base_block_bytes())?;
                let bins_len = p.bins_len();
                return Ok(Hive {
                    buf,
                    base,
                    bins_len,
                    opening: Opening::Strict,
                });
            }
        };
        if data.len() < BASE_BLOCK_SIZE {
            return Err(Error::TooShort { len: data.len() });
        }
        let base = BaseBlock::parse(data)?;
        base.validate()?;
        let size = base.hive_bins_size as usize;
        if BASE_BLOCK_SIZE + size > data.len() {
            return Err(Error::BadBaseBlock {
                what: "hive-bins data size",
                value: size as u64,
                why: "runs past the end of the file (truncated hive?)",
            });
        }
        Ok(Hive {
            buf,
            base,
            bins_len: size,
            opening: Opening::Strict,
        })
    }

    /// Opens whatever can be read: a truncated file is read up to its end, an unknown version or
    /// a bad checksum is noted. Only a file that is not a hive at all (no "regf", shorter than a
    /// base block) is refused.
    pub fn open_lenient(buf: B) -> Result<Hive<B>> {
        let data = match buf.source() {
            HiveSource::Bytes(d) => d,
            HiveSource::Paged(_) => return Hive::open(buf),
        };
        if data.len() < BASE_BLOCK_SIZE {
            return Err(Error::TooShort { len: data.len() });
        }
        let base = BaseBlock::parse(data)?;
        let mut notes = Vec::new();
        if let Err(e) = base.validate() {
            notes.push(e.to_string());
        }
        if !base.checksum_ok() {
            notes.push(format!(
                "base block checksum is 0x{:08x}, computed 0x{:08x}",
                base.stored_checksum, base.computed_checksum
            ));
        }
        let avail = data.len() - BASE_BLOCK_SIZE;
        let mut size = (base.hive_bins_size as usize) & !0xFFF;
        if size > avail {
            notes.push(format!(
                "hive-bins data size 0x{size:x} runs past the end of the file; reading the 0x{avail:x} bytes present"
            ));
            size = avail;
        }
        let opening = if notes.is_empty() {
            Opening::Strict
        } else {
            Opening::Lenient(notes)
        };
        Ok(Hive {
            buf,
            base,
            bins_len: size,
            opening,
        })
    }

    pub fn base_block(&self) -> &BaseBlock {
        &self.base
    }

    pub fn opening(&self) -> &Opening {
        &self.opening
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// The hive-bins data (the file without its base block).
    pub fn bins(&self) -> Bins<'_> {
        let mem = match self.buf.source() {
            HiveSource::Bytes(d) => {
                Mem::Slice(&d[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + self.bins_len])
            }
            HiveSource::Paged(p) => Mem::Paged(p),
        };
        Bins {
            mem,
            minor: self.base.minor_version,
        }
    }

    /// The root key.
    pub fn root(&self) -> Result<Key<'_>> {
        Key::at(self.bins(), self.base.root_cell)
    }

    /// The key at a backslash-separated path below the root (case-insensitive), e.g.
    /// `ControlSet001\Services\Dhcp`. The root key's own name is not part of the path.
    pub fn key(&self, path: &str) -> Result<Option<Key<'_>>> {
        self.root()?.descend(path)
    }

    /// Visits every key reachable from the root, depth first, parents before children, with its
    /// path (components joined by `\`, the root being ""). Keys or lists that cannot be read are
    /// passed to `on_error` and skipped; the walk never loops: each key node is visited once and
    /// the depth is capped at [`MAX_DEPTH`].
    pub fn walk<'s>(
        &'s self,
        mut visit: impl FnMut(&str, &Key<'s>),
        mut on_error: impl FnMut(&str, Error),
    ) -> Result<()> {
        let root = self.root()?;
        walk_from(&root, |path, item| match item {
            Ok(k) => visit(path, k),
            Err(e) => on_error(path, e),
        });
        Ok(())
    }
}

/// Visits `start` and every key below it, depth first, parents before children. `f` gets each
/// key's path relative to `start` ("" for `start` itself) and the key, or an error for a key or
/// list that cannot be read (then skipped). Each key node is visited at most once and the depth
/// is capped at [`MAX_DEPTH`], so a hostile hive cannot make the walk loop.
pub fn walk_from<'h>(start: &Key<'h>, mut f: impl FnMut(&str, Result<&Key<'h>, Error>)) {
    let bins = start.bins;
    let mut seen = vec![0u64; bins.len() / 8 / 64 + 1];
    let mut mark = |cell: u32| -> bool {
        let i = cell as usize / 8;
        match seen.get_mut(i / 64) {
            Some(word) if *word & (1 << (i % 64)) == 0 => {
                *word |= 1 << (i % 64);
                true
            }
            _ => false,
        }
    };
    mark(start.cell());
    let mut path = String::new();
    f(&path, Ok(start));
    // Explicit stack of (subkey iterator, path length before this level's component).
    let mut stack = vec![(start.subkeys(), 0usize)];
    while let Some((top, _)) = stack.last_mut() {
        let next = match top {
            Ok(it) => it.next(),
            Err(e) => {
                // This level's subkey list could not be read: report it once, then leave it.
                let e = std::mem::replace(e, Error::Edit(String::new()));
                f(&path, Err(e));
                None
            }
        };
        match next {
            None => {
                if let Some((_, len)) = stack.pop() {
                    path.truncate(len);
                }
            }
            Some(Err(e)) => f(&path, Err(e)),
            Some(Ok(key)) => {
                if !mark(key.cell()) {
                    f(
                        &path,
                        Err(crate::cell::bad(
                            key.cell(),
                            "key node reached twice (cycle or shared subtree): skipped",
                        )),
                    );
                    continue;
                }
                if stack.len() >= MAX_DEPTH {
                    f(
                        &path,
                        Err(Error::TooDeep {
                            cell: key.cell(),
                            limit: MAX_DEPTH,
                        }),
                    );
                    continue;
                }
                let before = path.len();
                if !path.is_empty() {
                    path.push('\\');
                }
                key.name().push_lossy(&mut path);
                f(&path, Ok(&key));
                stack.push((key.subkeys(), before));
            }
        }
    }
}
