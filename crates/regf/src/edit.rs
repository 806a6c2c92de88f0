//! In-place editing of a hive: set and delete values, create and delete keys, with Windows'
//! rules, allocating from free cells already in the file and, when the caller allows it, from
//! hive bins appended as Windows appends them.
//!
//! Sources: regf specification, sections "Base block", "Hive bin", "Cell", "Key node", "Key
//! value", "Big data", "Index leaf" / "Fast leaf" / "Hash leaf" / "Index root", "Key security",
//! "Unallocated cell".
//!
//! # Why in place, and same size by default
//! The hive lives inside an NTFS volume inside a disk image: winrescue writes changed pages back
//! into clusters the file already owns and never touches NTFS metadata. Every edit therefore
//! allocates from free cells (splitting them) and frees cells back (merging them with free
//! neighbours in the same bin). When there is no room the edit fails with [`Error::NoRoom`] and
//! nothing is changed.
//!
//! # Growth, when the caller allows it
//! Real repairs can need more room than a hive keeps free (a new key under the ~450-entry
//! `Services` list, a value of a few KB or more). [`Editor::allow_growth`] lets the editor append
//! hive bins as Windows does, up to a file length the caller chooses:
//! - the length the file already has, to use only its slack: Windows extends primary files in
//!   steps of 256 KiB (`CM_FILE_GROW_INCREMENT`: the file's end of file is the hive-bins end
//!   rounded up to 256 KiB), so a hive written by Windows 8.1 or later usually has up to 252 KiB
//!   of zeros after its last bin, which bins can use without the file changing length;
//! - a larger length when the caller can extend the file: the new length is then the new
//!   hive-bins end rounded up to 256 KiB, as Windows sizes it, but never past the limit.
//!
//! A new bin is a multiple of 4 KiB, large enough for the cell that needs it (a large cell gets a
//! bin of its own); its header says `hbin`, its offset and size, and zeros elsewhere (Windows
//! keeps a timestamp only in the first bin); the rest of the bin is one free cell. The base
//! block's hive-bins size and checksum follow at once, so readers see the bin during the session.
//!
//! # Transactions
//! An [`Editor`] works on a copy of the hive in memory. [`Editor::finish`] checks the result with
//! the structural checker and returns the new bytes, the list of 4 KiB pages that differ from
//! the input, and a new base block: sequence numbers advanced, equal, and above every sequence
//! number found in the hive's logs (see [`crate::log`]), so Windows never replays a stale log
//! entry over the edit.

use std::collections::{BTreeMap, BTreeSet};

use crate::base::{seal, BaseBlock, BASE_BLOCK_SIZE};
use crate::bytes::{put_u16, put_u32, put_u64, u16_at, u32_at};
use crate::cell::{CellOffset, BIN_HEADER, NONE};
use crate::check::check;
use crate::key::{flags as kf, Key};
use crate::names;
use crate::value::{ValueType, BIG_DATA_SEGMENT, VALUE_COMP_NAME};
use crate::{Error, Hive, Result};

// Editor::set_security lives in its own file.
mod security;

/// Entries of one subkey leaf: Windows keeps a leaf within one 4 KiB-ish cell (lh/lf entries are
/// 8 bytes) and starts an index root beyond that.
const MAX_LEAF_ENTRIES: usize = 1012;

/// Windows grows a primary file in steps of this size (`CM_FILE_GROW_INCREMENT`): its length is
/// the hive-bins end rounded up to it. The Windows 8.1 and 10 hives in testdata are whole
/// multiples of it.
pub const FILE_GROW_STEP: usize = 256 * 1024;

/// Largest hive-bins size the editor grows to: Windows sets bit 31 of a cell index for volatile
/// storage, so stable cells live below 2 GiB.
const MAX_HIVE_BINS: usize = 0x8000_0000 - PAGE;

/// Pages are tracked at the granularity Windows and disks write them.
pub const PAGE: usize = 4096;

/// The result of an edit session.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The whole new hive file. Without growth (the default) it has the input's length. With
    /// [`Editor::allow_growth`] it is as long as the input when the appended bins fit in the
    /// slack the file already had (the bytes after the old hive-bins end were overwritten in
    /// place), and otherwise the new hive-bins end rounded up to [`FILE_GROW_STEP`], capped at
    /// the limit: `grown_by` bytes longer than the input.
    pub bytes: Vec<u8>,
    /// File offsets of the 4 KiB pages to write, ascending: every page that differs from the
    /// input (the base block included), every page of the appended bins and every page past the
    /// input's end. The caller writes only these (and extends the file first when `grown_by`
    /// is not 0).
    pub changed_pages: Vec<u64>,
    /// The new base block's sequence number.
    pub sequence: u32,
    /// The base block's hive-bins data size: larger than the input's when bins were appended.
    pub hive_bins_size: u32,
    /// How many bytes longer than the input the file is (0 unless it grew past its slack).
    pub grown_by: u64,
}

/// What [`Editor::set_value`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// The value existed with exactly this type and data: nothing was written.
    Unchanged,
    Updated {
        old_type: ValueType,
        old_data: Vec<u8>,
    },
    Created,
}

/// An edit session over a copy of a hive.
pub struct Editor {
    /// The original content of every page written to so far (page index -> bytes), saved before
    /// its first change: the changed pages are found among these without keeping a copy of the
    /// whole file.
    original: BTreeMap<usize, Vec<u8>>,
    bytes: Vec<u8>,
    /// Hive bins: (cell offset of the bin start, size).
    bins: Vec<(u32, u32)>,
    minor: u32,
    /// FILETIME written as the last-written time of changed keys.
    clock: u64,
    min_sequence: u32,
    /// Bytes overwritten by the operation in progress, to undo it if it fails half way.
    undo: Vec<(usize, Vec<u8>)>,
    /// The longest the file may become when bins are appended; `None`: no growth.
    max_len: Option<usize>,
    /// Length of the input file, and file offset of the end of its hive bins: pages past these
    /// are new and always written.
    input_len: usize,
    input_bins_end: usize,
}

/// Offset of a cell's data (after its size field) in the file.
#[inline]
fn data_at(cell: CellOffset) -> usize {
    BASE_BLOCK_SIZE + cell as usize + 4
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Editor {
    /// Starts an edit session. The hive must pass the structural checker: winrescue does not
    /// write into a hive it does not fully understand. `min_sequence` is the lowest sequence
    /// number the new base block may carry (`Replay::next_sequence`, or 0 when the hive has no
    /// logs).
    pub fn new(bytes: Vec<u8>, min_sequence: u32) -> Result<Editor> {
        let report = check(&bytes);
        if let Some(f) = report.errors().next() {
            return Err(Error::Edit(format!(
                "the hive fails the structural check ({} errors; first at file offset 0x{:x}: {}): it will not be written",
                report.errors().count(),
                f.file_offset,
                f.message
            )));
        }
        let base = BaseBlock::parse(&bytes)?;
        if base.is_dirty() {
            return Err(Error::Edit(
                "the hive is dirty: replay its transaction logs before editing it".into(),
            ));
        }
        let bytes_len = bytes.len();
        let mut bins = Vec::new();
        let mut off = 0usize;
        while off < base.hive_bins_size as usize {
            let size = u32_at(&bytes, BASE_BLOCK_SIZE + off + 8).unwrap_or(0);
            bins.push((off as u32, size));
            off += size as usize;
        }
        Ok(Editor {
            original: BTreeMap::new(),
            bytes,
            bins,
            minor: base.minor_version,
            clock: crate::time::filetime_now(),
            min_sequence,
            undo: Vec::new(),
            max_len: None,
            input_len: bytes_len,
            input_bins_end: BASE_BLOCK_SIZE + off,
        })
    }

    /// Lets the editor append hive bins when no free cell fits, as long as the file stays within
    /// `max_file_len` bytes (see the module documentation). Pass the file's current length to
    /// use only the slack after its hive bins, or more when the caller can extend the file.
    /// Without this call the editor never grows the hive.
    pub fn allow_growth(&mut self, max_file_len: u64) {
        self.max_len = Some(usize::try_from(max_file_len).unwrap_or(usize::MAX));
    }

    /// Sets the FILETIME used for last-written times (tests pin it).
    pub fn set_clock(&mut self, filetime: u64) {
        self.clock = filetime;
    }

    /// The current bytes (for reading back during a session).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A reader over the current state.
    pub fn hive(&self) -> Result<Hive<&[u8]>> {
        Hive::open(&self.bytes[..])
    }

    // ----- low-level writes, all of which record the pages they touch -----

    fn write(&mut self, at: usize, data: &[u8]) {
        self.save_pages(at, data.len());
        self.undo
            .push((at, self.bytes[at..at + data.len()].to_vec()));
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    /// Saves the original content of the pages `len` bytes at `at` fall in, unless saved already.
    fn save_pages(&mut self, at: usize, len: usize) {
        let bytes = &self.bytes;
        for p in at / PAGE..=(at + len.max(1) - 1) / PAGE {
            self.original.entry(p).or_insert_with(|| {
                bytes[(p * PAGE).min(bytes.len())..((p + 1) * PAGE).min(bytes.len())].to_vec()
            });
        }
    }

    fn w32(&mut self, at: usize, v: u32) {
        self.write(at, &v.to_le_bytes());
    }

    fn r32(&self, at: usize) -> u32 {
        u32_at(&self.bytes, at).unwrap_or(0)
    }

    fn cell_size(&self, cell: CellOffset) -> i32 {
        self.r32(BASE_BLOCK_SIZE + cell as usize) as i32
    }

    /// Bytes available for data in an allocated cell.
    fn capacity(&self, cell: CellOffset) -> usize {
        (self.cell_size(cell).unsigned_abs() as usize).saturating_sub(4)
    }

    /// Runs one public operation: if it fails, every byte it wrote is put back, so a failed
    /// edit leaves the hive exactly as it was.
    fn atomic<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.undo.clear();
        // Growth is undone by cutting the bins list and the file back to these.
        let (bins, len) = (self.bins.len(), self.bytes.len());
        let result = op(self);
        if result.is_err() {
            while let Some((at, old)) = self.undo.pop() {
                self.bytes[at..at + old.len()].copy_from_slice(&old);
            }
            self.bins.truncate(bins);
            self.bytes.truncate(len);
        }
        self.undo.clear();
        result
    }

    /// File offset of the end of the hive bins.
    fn bins_end(&self) -> usize {
        BASE_BLOCK_SIZE + self.bins.last().map_or(0, |&(s, l)| (s + l) as usize)
    }

    // ----- free space -----

    /// The free cells, in file order.
    fn free_cells(&self) -> Vec<(CellOffset, u32)> {
        let mut out = Vec::new();
        for &(start, size) in &self.bins {
            let mut c = start as usize + BIN_HEADER;
            let end = start as usize + size as usize;
            while c < end {
                let s = self.cell_size(c as u32);
                let len = s.unsigned_abs() as usize;
                if len == 0 {
                    break; // cannot happen in a checked hive
                }
                if s > 0 {
                    out.push((c as u32, len as u32));
                }
                c += len;
            }
        }
        out
    }

    /// Allocates a cell whose data area holds `len` bytes: the smallest free cell that fits,
    /// split when the rest can stand as a cell of its own. The data area is zeroed.
    fn alloc(&mut self, len: usize) -> Result<CellOffset> {
        let need = align8(len + 4).max(8);
        let free = self.free_cells();
        let best = free
            .iter()
            .filter(|&&(_, s)| s as usize >= need)
            .min_by_key(|&&(_, s)| s);
        let (cell, size) = match best {
            Some(&(cell, size)) => (cell, size as usize),
            None => match self.add_bin(need)? {
                Some(found) => found,
                None => {
                    return Err(Error::NoRoom {
                        needed: u32::try_from(need).unwrap_or(u32::MAX),
                        largest: free.iter().map(|&(_, s)| s).max().unwrap_or(0),
                    })
                }
            },
        };
        let take = if size - need >= 8 { need } else { size };
        if take < size {
            let rest = cell + take as u32;
            self.w32(BASE_BLOCK_SIZE + rest as usize, (size - take) as u32);
        }
        self.w32(BASE_BLOCK_SIZE + cell as usize, (-(take as i32)) as u32);
        let zeros = vec![0u8; take - 4];
        self.write(data_at(cell), &zeros);
        Ok(cell)
    }

    /// Appends a hive bin holding one free cell of at least `need` bytes, if growth is allowed
    /// and the bin fits within the limit. Returns the free cell and its size.
    fn add_bin(&mut self, need: usize) -> Result<Option<(CellOffset, usize)>> {
        let Some(limit) = self.max_len else {
            return Ok(None);
        };
        let start = self.bins_end() - BASE_BLOCK_SIZE;
        // Windows sizes a new bin to the request rounded up to 4 KiB, so a large cell gets a
        // bin of its own and a small one a 4 KiB bin whose rest is free.
        let Some(size) = need
            .checked_add(BIN_HEADER)
            .and_then(|n| n.checked_next_multiple_of(PAGE))
        else {
            return Ok(None);
        };
        let Some(new_bins) = start.checked_add(size).filter(|&n| n <= MAX_HIVE_BINS) else {
            return Ok(None);
        };
        let end = BASE_BLOCK_SIZE + new_bins;
        if end > limit {
            return Ok(None);
        }
        if end > self.bytes.len() {
            // Past the slack: the file takes the length Windows would give it.
            let old = self.bytes.len();
            let len = end
                .checked_next_multiple_of(FILE_GROW_STEP)
                .unwrap_or(end)
                .min(limit)
                .max(end);
            self.save_pages(old, len - old);
            self.bytes.resize(len, 0);
        }
        // Zeros elsewhere: the slack may hold stale bytes, and Windows keeps the bin timestamp
        // only in the first bin.
        let mut bin = vec![0u8; size];
        bin[..4].copy_from_slice(b"hbin");
        put_u32(&mut bin, 4, start as u32);
        put_u32(&mut bin, 8, size as u32);
        put_u32(&mut bin, BIN_HEADER, (size - BIN_HEADER) as u32);
        self.write(BASE_BLOCK_SIZE + start, &bin);
        self.bins.push((start as u32, size as u32));
        // The base block follows at once (and stays sealed) so that a reader or the checker sees
        // the new bin during the session; `finish` stamps it again.
        self.w32(40, new_bins as u32);
        let sum = crate::base::checksum(&self.bytes[..BASE_BLOCK_SIZE]);
        self.w32(508, sum);
        Ok(Some((
            (start + BIN_HEADER) as CellOffset,
            size - BIN_HEADER,
        )))
    }

    /// Frees a cell and merges it with free neighbours in its bin.
    fn free(&mut self, cell: CellOffset) {
        if cell == NONE {
            return;
        }
        let Some(&(bin, bsize)) = self.bins.iter().find(|&&(b, s)| cell >= b && cell < b + s)
        else {
            return;
        };
        let mut start = cell;
        let mut len = self.cell_size(cell).unsigned_abs();
        // Previous neighbour: walk the bin from its start.
        let mut c = bin + BIN_HEADER as u32;
        while c < cell {
            let s = self.cell_size(c);
            let l = s.unsigned_abs();
            if l == 0 {
                break;
            }
            if c + l == cell && s > 0 {
                start = c;
                len += l;
            }
            c += l;
        }
        let next = cell + self.cell_size(cell).unsigned_abs();
        if next < bin + bsize && self.cell_size(next) > 0 {
            len += self.cell_size(next) as u32;
        }
        self.w32(BASE_BLOCK_SIZE + start as usize, len);
    }

    /// Allocates a cell, writes `data` into it.
    fn alloc_with(&mut self, data: &[u8]) -> Result<CellOffset> {
        let cell = self.alloc(data.len())?;
        self.write(data_at(cell), data);
        Ok(cell)
    }

    // ----- keys -----

    fn find(&self, path: &str) -> Result<Option<CellOffset>> {
        Ok(self.hive()?.key(path)?.map(|k| k.cell()))
    }

    fn key(&self, cell: CellOffset) -> Result<Key<'_>> {
        Key::at(self.hive_bins(), cell)
    }

    fn hive_bins(&self) -> crate::cell::Bins<'_> {
        let size = self.bins.last().map_or(0, |&(s, l)| (s + l) as usize);
        crate::cell::Bins::from_slice(
            &self.bytes[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + size],
            self.minor,
        )
    }

    fn touch_key(&mut self, key: CellOffset) {
        let at = data_at(key) + 4;
        let ft = self.clock;
        self.write(at, &ft.to_le_bytes());
    }

    fn nk_field(&self, key: CellOffset, off: usize) -> u32 {
        self.r32(data_at(key) + off)
    }

    fn set_nk_field(&mut self, key: CellOffset, off: usize, v: u32) {
        self.w32(data_at(key) + off, v);
    }

    /// Creates `path` and any missing parents. Returns whether anything was created.
    pub fn create_key(&mut self, path: &str) -> Result<bool> {
        self.atomic(|ed| ed.create_key_inner(path))
    }

    fn create_key_inner(&mut self, path: &str) -> Result<bool> {
        let mut cur = self.hive()?.root()?.cell();
        let mut created = false;
        for part in path.split(['\\', '/']).filter(|p| !p.is_empty()) {
            if part.encode_utf16().count() > 255 {
                return Err(Error::Edit(format!(
                    "key name {part:?} is longer than 255 characters"
                )));
            }
            let existing = self.key(cur)?.subkey(part)?.map(|k| k.cell());
            cur = match existing {
                Some(c) => c,
                None => {
                    created = true;
                    self.add_subkey(cur, part)?
                }
            };
        }
        Ok(created)
    }

    fn add_subkey(&mut self, parent: CellOffset, name: &str) -> Result<CellOffset> {
        let (raw, compressed) = names::encode(name);
        let sk = self.nk_field(parent, 44);
        let mut nk = vec![0u8; 76 + raw.len()];
        nk[..2].copy_from_slice(b"nk");
        put_u16(&mut nk, 2, if compressed { kf::COMP_NAME } else { 0 });
        put_u64(&mut nk, 4, self.clock);
        put_u32(&mut nk, 16, parent);
        put_u32(&mut nk, 28, NONE);
        put_u32(&mut nk, 32, NONE);
        put_u32(&mut nk, 40, NONE);
        put_u32(&mut nk, 44, sk);
        put_u32(&mut nk, 48, NONE);
        put_u16(&mut nk, 72, raw.len() as u16);
        nk[76..].copy_from_slice(&raw);
        let cell = self.alloc_with(&nk)?;
        self.link_subkey(parent, cell, name)?;
        // The new key shares its parent's security descriptor.
        let refs = self.r32(data_at(sk) + 12);
        self.w32(data_at(sk) + 12, refs + 1);
        let count = self.nk_field(parent, 20);
        self.set_nk_field(parent, 20, count + 1);
        let len = (name.encode_utf16().count() * 2) as u32;
        let field = self.nk_field(parent, 52);
        if field & 0xFFFF < len {
            self.set_nk_field(parent, 52, (field & !0xFFFF) | len);
        }
        self.touch_key(parent);
        Ok(cell)
    }

    /// Inserts `child` (named `name`) into the parent's subkey list at its sorted place.
    fn link_subkey(&mut self, parent: CellOffset, child: CellOffset, name: &str) -> Result<()> {
        let list = self.nk_field(parent, 28);
        let kind: &[u8; 2] = if self.minor >= 5 { b"lh" } else { b"lf" };
        if self.nk_field(parent, 20) == 0 || list == NONE {
            let mut leaf = Vec::with_capacity(12);
            leaf.extend_from_slice(kind);
            leaf.extend_from_slice(&1u16.to_le_bytes());
            leaf.extend_from_slice(&child.to_le_bytes());
            leaf.extend_from_slice(&self.hint(kind, name));
            let cell = self.alloc_with(&leaf)?;
            self.free(list); // a stale empty list, if any
            self.set_nk_field(parent, 28, cell);
            return Ok(());
        }
        let head = self.bytes[data_at(list)..data_at(list) + 2].to_vec();
        if head == b"ri" {
            let n = usize::from(u16_at(&self.bytes, data_at(list) + 2).unwrap_or(0));
            // The leaf whose last name is greater than ours, or the last leaf.
            let mut target = (n - 1, self.r32(data_at(list) + 4 + 4 * (n - 1)));
            for i in 0..n {
                let leaf = self.r32(data_at(list) + 4 + 4 * i);
                let count = usize::from(u16_at(&self.bytes, data_at(leaf) + 2).unwrap_or(0));
                if count == 0 {
                    continue;
                }
                let last = self.leaf_entry(leaf, count - 1);
                if self.name_cmp(last, name)? == std::cmp::Ordering::Greater {
                    target = (i, leaf);
                    break;
                }
            }
            let leaves = self.insert_in_leaf(target.1, child, name)?;
            if leaves[..] != [target.1] {
                // The leaf moved or split: the index root lists its replacement(s) in its place.
                let at = data_at(list);
                let mut entries: Vec<u32> = (0..n).map(|i| self.r32(at + 4 + 4 * i)).collect();
                entries.splice(target.0..=target.0, leaves);
                let root = self.write_index_root(Some(list), &entries)?;
                if root != list {
                    self.set_nk_field(parent, 28, root);
                }
            }
        } else {
            let leaves = self.insert_in_leaf(list, child, name)?;
            if leaves[..] != [list] {
                let root = match leaves[..] {
                    [one] => one,
                    _ => self.write_index_root(None, &leaves)?,
                };
                self.set_nk_field(parent, 28, root);
            }
        }
        Ok(())
    }

    /// Writes an index root listing `leaves`: over `old` when it fits there, else into a new
    /// cell (and `old` is freed). Returns the root's cell.
    fn write_index_root(&mut self, old: Option<CellOffset>, leaves: &[u32]) -> Result<CellOffset> {
        let n = u16::try_from(leaves.len()).map_err(|_| {
            Error::Edit(format!(
                "an index root of {} leaves does not fit its 16-bit count",
                leaves.len()
            ))
        })?;
        let mut body = Vec::with_capacity(4 + 4 * leaves.len());
        body.extend_from_slice(b"ri");
        body.extend_from_slice(&n.to_le_bytes());
        body.extend(leaves.iter().flat_map(|l| l.to_le_bytes()));
        match old {
            Some(o) if self.capacity(o) >= body.len() => {
                self.write(data_at(o), &body);
                Ok(o)
            }
            _ => {
                let cell = self.alloc_with(&body)?;
                if let Some(o) = old {
                    self.free(o);
                }
                Ok(cell)
            }
        }
    }

    fn leaf_entry_size(&self, leaf: CellOffset) -> usize {
        if &self.bytes[data_at(leaf)..data_at(leaf) + 2] == b"li" {
            4
        } else {
            8
        }
    }

    fn leaf_entry(&self, leaf: CellOffset, i: usize) -> CellOffset {
        self.r32(data_at(leaf) + 4 + i * self.leaf_entry_size(leaf))
    }

    fn name_cmp(&self, key: CellOffset, name: &str) -> Result<std::cmp::Ordering> {
        let k = self.key(key)?;
        Ok(names::cmp_units_ignore_case(
            k.name().units(),
            name.encode_utf16(),
        ))
    }

    fn hint(&self, kind: &[u8; 2], name: &str) -> [u8; 4] {
        match kind {
            b"lh" => names::lh_hash(name.encode_utf16()).to_le_bytes(),
            b"lf" => names::lf_hint(name.encode_utf16()),
            _ => [0; 4],
        }
    }

    /// Inserts into a leaf, moving it to a bigger cell when its cell is full, and splitting it
    /// into leaves of at most [`MAX_LEAF_ENTRIES`] when it would hold more. Returns the cells
    /// that replace the leaf, in order (just `leaf` when it was written in place).
    fn insert_in_leaf(
        &mut self,
        leaf: CellOffset,
        child: CellOffset,
        name: &str,
    ) -> Result<Vec<CellOffset>> {
        let at = data_at(leaf);
        let kind: [u8; 2] = [self.bytes[at], self.bytes[at + 1]];
        let es = self.leaf_entry_size(leaf);
        let count = usize::from(u16_at(&self.bytes, at + 2).unwrap_or(0));
        let mut pos = count;
        for i in 0..count {
            if self.name_cmp(self.leaf_entry(leaf, i), name)? == std::cmp::Ordering::Greater {
                pos = i;
                break;
            }
        }
        let mut entries = self.bytes[at + 4..at + 4 + count * es].to_vec();
        let mut e = child.to_le_bytes().to_vec();
        if es == 8 {
            e.extend_from_slice(&self.hint(&kind, name));
        }
        entries.splice(pos * es..pos * es, e);
        let total = count + 1;
        // Windows splits a full leaf in two under an index root; a leaf made longer by another
        // writer is cut into as many leaves as it takes.
        let parts = if total > MAX_LEAF_ENTRIES {
            total.div_ceil(MAX_LEAF_ENTRIES).max(2)
        } else {
            1
        };
        let leaf_body = |chunk: &[u8]| {
            let mut body = Vec::with_capacity(4 + chunk.len());
            body.extend_from_slice(&kind);
            // At most MAX_LEAF_ENTRIES entries a part: the count fits in 16 bits.
            body.extend_from_slice(&((chunk.len() / es) as u16).to_le_bytes());
            body.extend_from_slice(chunk);
            body
        };
        if parts == 1 {
            let body = leaf_body(&entries);
            if body.len() <= self.capacity(leaf) {
                self.write(at, &body);
                return Ok(vec![leaf]);
            }
            let cell = self.alloc_with(&body)?;
            self.free(leaf);
            return Ok(vec![cell]);
        }
        let mut cells = Vec::with_capacity(parts);
        let mut done = 0;
        for p in 0..parts {
            // Even parts: the first `total % parts` get one entry more.
            let n = total / parts + usize::from(p < total % parts);
            let body = leaf_body(&entries[done * es..(done + n) * es]);
            cells.push(self.alloc_with(&body)?);
            done += n;
        }
        self.free(leaf);
        Ok(cells)
    }

    /// Deletes `path` and everything below it. Returns whether it existed.
    pub fn delete_key(&mut self, path: &str) -> Result<bool> {
        self.atomic(|ed| ed.delete_key_inner(path))
    }

    fn delete_key_inner(&mut self, path: &str) -> Result<bool> {
        let Some(cell) = self.find(path)? else {
            return Ok(false);
        };
        let k = self.key(cell)?;
        if k.flags() & (kf::HIVE_ENTRY | kf::NO_DELETE) != 0 {
            return Err(Error::Edit(format!(
                "key {path:?} is the root or marked undeletable"
            )));
        }
        let parent = k.parent_cell();
        self.unlink_subkey(parent, cell)?;
        let count = self.nk_field(parent, 20);
        self.set_nk_field(parent, 20, count - 1);
        self.touch_key(parent);
        // Free the subtree, children first, without recursion.
        let mut stack = vec![cell];
        let mut order = Vec::new();
        while let Some(c) = stack.pop() {
            order.push(c);
            let subkeys: Vec<CellOffset> = self
                .key(c)?
                .subkeys()?
                .map(|k| k.map(|k| k.cell()))
                .collect::<Result<_>>()?;
            stack.extend(subkeys);
        }
        for c in order.into_iter().rev() {
            self.free_key_node(c)?;
        }
        Ok(true)
    }

    fn free_key_node(&mut self, cell: CellOffset) -> Result<()> {
        let k = self.key(cell)?;
        let values: Vec<CellOffset> = k.values()?.cells().collect();
        let values_was_empty = values.is_empty();
        let (vlist, slist, class, sk) = (
            k.value_list_cell(),
            k.subkey_list_cell(),
            k.class_cell(),
            k.security_cell(),
        );
        let has_subkeys = k.subkey_count() > 0;
        let has_class = class != NONE && k.class_len() > 0;
        for v in values {
            self.free_value(v)?;
        }
        if vlist != NONE && !values_was_empty {
            self.free(vlist);
        }
        if has_subkeys && slist != NONE {
            if &self.bytes[data_at(slist)..data_at(slist) + 2] == b"ri" {
                let n = usize::from(u16_at(&self.bytes, data_at(slist) + 2).unwrap_or(0));
                let leaves: Vec<u32> = (0..n)
                    .map(|i| self.r32(data_at(slist) + 4 + 4 * i))
                    .collect();
                for l in leaves {
                    self.free(l);
                }
            }
            self.free(slist);
        }
        if has_class {
            self.free(class);
        }
        self.release_security(sk);
        self.free(cell);
        Ok(())
    }

    /// Drops one reference to a security record, unlinking and freeing it at zero.
    fn release_security(&mut self, sk: CellOffset) {
        let refs = self.r32(data_at(sk) + 12);
        if refs > 1 {
            self.w32(data_at(sk) + 12, refs - 1);
            return;
        }
        let flink = self.r32(data_at(sk) + 4);
        let blink = self.r32(data_at(sk) + 8);
        self.w32(data_at(blink) + 4, flink);
        self.w32(data_at(flink) + 8, blink);
        self.free(sk);
    }

    fn unlink_subkey(&mut self, parent: CellOffset, child: CellOffset) -> Result<()> {
        let list = self.nk_field(parent, 28);
        if &self.bytes[data_at(list)..data_at(list) + 2] == b"ri" {
            let n = usize::from(u16_at(&self.bytes, data_at(list) + 2).unwrap_or(0));
            for i in 0..n {
                let leaf = self.r32(data_at(list) + 4 + 4 * i);
                if self.remove_from_leaf(leaf, child) {
                    if u16_at(&self.bytes, data_at(leaf) + 2) == Some(0) {
                        // Drop the empty leaf from the index root.
                        let at = data_at(list);
                        let mut rest = self.bytes[at + 4 + 4 * (i + 1)..at + 4 + 4 * n].to_vec();
                        rest.extend_from_slice(&[0; 4]);
                        self.write(at + 4 + 4 * i, &rest);
                        self.write(at + 2, &((n - 1) as u16).to_le_bytes());
                        self.free(leaf);
                        if n == 1 {
                            self.free(list);
                            self.set_nk_field(parent, 28, NONE);
                        }
                    }
                    return Ok(());
                }
            }
        } else if self.remove_from_leaf(list, child) {
            if u16_at(&self.bytes, data_at(list) + 2) == Some(0) {
                self.free(list);
                self.set_nk_field(parent, 28, NONE);
            }
            return Ok(());
        }
        Err(Error::Edit(format!(
            "key node 0x{child:x} is not in its parent's subkey list"
        )))
    }

    fn remove_from_leaf(&mut self, leaf: CellOffset, child: CellOffset) -> bool {
        let at = data_at(leaf);
        let es = self.leaf_entry_size(leaf);
        let count = usize::from(u16_at(&self.bytes, at + 2).unwrap_or(0));
        let Some(i) = (0..count).find(|&i| self.leaf_entry(leaf, i) == child) else {
            return false;
        };
        let mut rest = self.bytes[at + 4 + (i + 1) * es..at + 4 + count * es].to_vec();
        rest.extend(std::iter::repeat_n(0, es));
        self.write(at + 4 + i * es, &rest);
        self.write(at + 2, &((count - 1) as u16).to_le_bytes());
        true
    }

    // ----- values -----

    /// Sets value `name` of the key at `path` (which must exist) to `data` of type `t`.
    pub fn set_value(
        &mut self,
        path: &str,
        name: &str,
        t: ValueType,
        data: &[u8],
    ) -> Result<SetOutcome> {
        self.atomic(|ed| ed.set_value_inner(path, name, t, data))
    }

    fn set_value_inner(
        &mut self,
        path: &str,
        name: &str,
        t: ValueType,
        data: &[u8],
    ) -> Result<SetOutcome> {
        let key = self.find(path)?.ok_or_else(|| Error::Path {
            path: path.into(),
            what: "no such key".into(),
        })?;
        if name.encode_utf16().count() > 16383 {
            return Err(Error::Edit(format!(
                "value name of {} characters is too long",
                name.len()
            )));
        }
        if data.len() > 0x7FFF_0000 {
            return Err(Error::Edit(format!(
                "value data of {} bytes is too large",
                data.len()
            )));
        }
        let existing = self.key(key)?.value(name)?.map(|v| {
            (
                v.cell(),
                v.value_type(),
                v.raw_data().map(|d| d.into_owned()),
            )
        });
        let outcome = match existing {
            Some((vk, old_t, old)) => {
                let old = old?;
                if old_t == t && old == data {
                    return Ok(SetOutcome::Unchanged);
                }
                self.store_data(vk, t, data)?;
                SetOutcome::Updated {
                    old_type: old_t,
                    old_data: old,
                }
            }
            None => {
                let (raw, compressed) = names::encode(name);
                let mut vk = vec![0u8; 20 + raw.len()];
                vk[..2].copy_from_slice(b"vk");
                put_u16(&mut vk, 2, raw.len() as u16);
                put_u32(&mut vk, 4, 0x8000_0000);
                put_u32(&mut vk, 8, 0);
                put_u16(&mut vk, 16, if compressed { VALUE_COMP_NAME } else { 0 });
                vk[20..].copy_from_slice(&raw);
                let cell = self.alloc_with(&vk)?;
                self.store_data(cell, t, data)?;
                self.append_value(key, cell)?;
                let len = (name.encode_utf16().count() * 2) as u32;
                if self.nk_field(key, 60) < len {
                    self.set_nk_field(key, 60, len);
                }
                SetOutcome::Created
            }
        };
        if (self.nk_field(key, 64) as usize) < data.len() {
            self.set_nk_field(key, 64, data.len() as u32);
        }
        self.touch_key(key);
        Ok(outcome)
    }

    /// Writes `data` as the value's data, reusing its data cell when it fits.
    fn store_data(&mut self, vk: CellOffset, t: ValueType, data: &[u8]) -> Result<()> {
        let at = data_at(vk);
        let size_field = self.r32(at + 4);
        let old_inline = size_field & 0x8000_0000 != 0;
        let old_len = (size_field & 0x7FFF_FFFF) as usize;
        let old_cell = self.r32(at + 8);
        let old_big = !old_inline && self.minor >= 4 && old_len > BIG_DATA_SEGMENT;
        let big = self.minor >= 4 && data.len() > BIG_DATA_SEGMENT;
        let (new_size, new_off) = if data.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..data.len()].copy_from_slice(data);
            self.release_data(old_inline, old_len, old_cell, old_big);
            (data.len() as u32 | 0x8000_0000, u32::from_le_bytes(inline))
        } else if big {
            let db = self.alloc_big(data)?;
            self.release_data(old_inline, old_len, old_cell, old_big);
            (data.len() as u32, db)
        } else if !old_inline
            && !old_big
            && old_len > 0
            && old_cell != NONE
            && self.capacity(old_cell) >= data.len()
        {
            // Reuse the cell: only the bytes of the data change.
            self.write(data_at(old_cell), data);
            (data.len() as u32, old_cell)
        } else {
            let cell = self.alloc_with(data)?;
            self.release_data(old_inline, old_len, old_cell, old_big);
            (data.len() as u32, cell)
        };
        self.w32(at + 4, new_size);
        self.w32(at + 8, new_off);
        self.w32(at + 12, t.0);
        Ok(())
    }

    fn alloc_big(&mut self, data: &[u8]) -> Result<CellOffset> {
        let mut cells = Vec::new();
        for chunk in data.chunks(BIG_DATA_SEGMENT) {
            cells.push(self.alloc_with(chunk)?);
        }
        let list: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
        let list_cell = self.alloc_with(&list)?;
        let mut db = vec![0u8; 8];
        db[..2].copy_from_slice(b"db");
        put_u16(&mut db, 2, cells.len() as u16);
        put_u32(&mut db, 4, list_cell);
        self.alloc_with(&db)
    }

    fn release_data(&mut self, inline: bool, len: usize, cell: CellOffset, big: bool) {
        if inline || len == 0 || cell == NONE {
            return;
        }
        if big {
            let n = usize::from(u16_at(&self.bytes, data_at(cell) + 2).unwrap_or(0));
            let list = self.r32(data_at(cell) + 4);
            let segs: Vec<u32> = (0..n).map(|i| self.r32(data_at(list) + 4 * i)).collect();
            for s in segs {
                self.free(s);
            }
            self.free(list);
        }
        self.free(cell);
    }

    fn append_value(&mut self, key: CellOffset, vk: CellOffset) -> Result<()> {
        let count = self.nk_field(key, 36) as usize;
        let list = self.nk_field(key, 40);
        if count == 0 {
            let cell = self.alloc_with(&vk.to_le_bytes())?;
            self.set_nk_field(key, 40, cell);
        } else if self.capacity(list) >= 4 * (count + 1) {
            self.w32(data_at(list) + 4 * count, vk);
        } else {
            let mut entries = self.bytes[data_at(list)..data_at(list) + 4 * count].to_vec();
            entries.extend_from_slice(&vk.to_le_bytes());
            let cell = self.alloc_with(&entries)?;
            self.free(list);
            self.set_nk_field(key, 40, cell);
        }
        self.set_nk_field(key, 36, (count + 1) as u32);
        Ok(())
    }

    /// Deletes value `name` of the key at `path`. Returns whether it existed.
    pub fn delete_value(&mut self, path: &str, name: &str) -> Result<bool> {
        self.atomic(|ed| ed.delete_value_inner(path, name))
    }

    fn delete_value_inner(&mut self, path: &str, name: &str) -> Result<bool> {
        let key = self.find(path)?.ok_or_else(|| Error::Path {
            path: path.into(),
            what: "no such key".into(),
        })?;
        let Some(vk) = self.key(key)?.value(name)?.map(|v| v.cell()) else {
            return Ok(false);
        };
        let count = self.nk_field(key, 36) as usize;
        let list = self.nk_field(key, 40);
        let entries: Vec<u32> = (0..count)
            .map(|i| self.r32(data_at(list) + 4 * i))
            .filter(|&c| c != vk)
            .collect();
        if entries.is_empty() {
            self.free(list);
            self.set_nk_field(key, 40, NONE);
        } else {
            let mut body: Vec<u8> = entries.iter().flat_map(|c| c.to_le_bytes()).collect();
            body.extend_from_slice(&[0; 4]);
            self.write(data_at(list), &body);
        }
        self.set_nk_field(key, 36, entries.len() as u32);
        self.free_value(vk)?;
        self.touch_key(key);
        Ok(true)
    }

    fn free_value(&mut self, vk: CellOffset) -> Result<()> {
        let at = data_at(vk);
        let size_field = self.r32(at + 4);
        let inline = size_field & 0x8000_0000 != 0;
        let len = (size_field & 0x7FFF_FFFF) as usize;
        let big = !inline && self.minor >= 4 && len > BIG_DATA_SEGMENT;
        self.release_data(inline, len, self.r32(at + 8), big);
        self.free(vk);
        Ok(())
    }

    /// File offsets of the 4 KiB pages the edits so far changed, without the new base block
    /// (page 0 is listed only when a bin was appended, which updates the base block at once)
    /// and without the final check (for a dry run's report; [`Editor::finish`] gives the list to
    /// write).
    pub fn changed_pages(&self) -> Vec<u64> {
        let len = self.bytes.len();
        let mut pages: BTreeSet<usize> = self
            .original
            .iter()
            .filter(|&(&p, old)| {
                let (s, e) = ((p * PAGE).min(len), ((p + 1) * PAGE).min(len));
                self.bytes[s..e] != old[..]
            })
            .map(|(&p, _)| p)
            .collect();
        // Appended bins and the file's new tail are written whole, zeros included: what was
        // there before (stale slack, or nothing) is not hive content.
        let end = self.bins_end();
        if end > self.input_bins_end {
            pages.extend(self.input_bins_end / PAGE..end.div_ceil(PAGE));
        }
        if len > self.input_len {
            pages.extend(self.input_len / PAGE..len.div_ceil(PAGE));
        }
        pages.into_iter().map(|p| (p * PAGE) as u64).collect()
    }

    /// Ends the session: stamps a new base block, checks the result and lists the changed
    /// pages. Fails (and nothing should be written) if the result does not pass the checker.
    pub fn finish(mut self) -> Result<Edited> {
        let base = BaseBlock::parse(&self.bytes)?;
        let seq = base.primary_sequence.wrapping_add(1).max(self.min_sequence);
        self.save_pages(0, BASE_BLOCK_SIZE);
        {
            let b = &mut self.bytes[..BASE_BLOCK_SIZE];
            put_u32(b, 4, seq);
            put_u32(b, 8, seq);
            put_u64(b, 12, self.clock);
            seal(b);
        }
        let report = check(&self.bytes);
        if let Some(f) = report.errors().next() {
            return Err(Error::Edit(format!(
                "internal error: the edited hive fails the check at file offset 0x{:x} ({}); nothing written",
                f.file_offset, f.message
            )));
        }
        // Only pages written to can differ from the input (an undone write restored its bytes,
        // hence the comparison).
        let changed_pages = self.changed_pages();
        let hive_bins_size = (self.bins_end() - BASE_BLOCK_SIZE) as u32;
        let grown_by = self.bytes.len().saturating_sub(self.input_len) as u64;
        Ok(Edited {
            bytes: self.bytes,
            changed_pages,
            sequence: seq,
            hive_bins_size,
            grown_by,
        })
    }
}

/// File offsets of the 4 KiB pages in which `a` and `b` differ (same length expected; extra
/// length counts as changed).
pub fn changed_pages(a: &[u8], b: &[u8]) -> Vec<u64> {
    let n = a.len().max(b.len()).div_ceil(PAGE);
    (0..n)
        .filter(|&p| {
            let r = p * PAGE..((p + 1) * PAGE).min(a.len().max(b.len()));
            a.get(r.clone()) != b.get(r)
        })
        .map(|p| (p * PAGE) as u64)
        .collect()
}
