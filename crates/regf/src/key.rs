//! Key nodes (`nk`) and their subkey lists (`li`, `lf`, `lh`, `ri`).

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::cell::{bad, Bins, CellOffset, NONE};
use crate::names::Name;
use crate::value::{Value, Values};
use crate::{Error, Result};

/// Fixed part of a key node, before its name.
const NK_FIXED: usize = 76;

/// Key node flags (`nk` offset 2).
pub mod flags {
    pub const VOLATILE: u16 = 0x0001;
    pub const HIVE_EXIT: u16 = 0x0002;
    pub const HIVE_ENTRY: u16 = 0x0004;
    pub const NO_DELETE: u16 = 0x0008;
    pub const SYM_LINK: u16 = 0x0010;
    pub const COMP_NAME: u16 = 0x0020;
    pub const PREDEF_HANDLE: u16 = 0x0040;
}

/// A key node in a hive. Cheap to copy: it borrows the hive's bytes.
#[derive(Clone, Copy)]
pub struct Key<'h> {
    pub(crate) bins: Bins<'h>,
    pub(crate) cell: CellOffset,
    pub(crate) nk: &'h [u8],
}

impl<'h> Key<'h> {
    /// Reads the key node at `cell`, checking its signature and that its name fits in the cell.
    pub fn at(bins: Bins<'h>, cell: CellOffset) -> Result<Key<'h>> {
        let nk = bins.record(cell, b"nk", "key node (nk)")?;
        if nk.len() < NK_FIXED {
            return Err(bad(
                cell,
                &format!("key node cell of {} bytes is shorter than 76", nk.len()),
            ));
        }
        let name_len = usize::from(u16_at(nk, 72).unwrap_or(0));
        if NK_FIXED + name_len > nk.len() {
            return Err(bad(
                cell,
                &format!(
                    "key name of {name_len} bytes runs past the end of its {}-byte cell",
                    nk.len()
                ),
            ));
        }
        Ok(Key { bins, cell, nk })
    }

    #[inline]
    fn u32f(&self, off: usize) -> u32 {
        // All fixed fields lie below NK_FIXED, checked in `at`.
        u32_at(self.nk, off).unwrap_or(0)
    }

    /// Cell offset of this key node.
    pub fn cell(&self) -> CellOffset {
        self.cell
    }

    pub fn flags(&self) -> u16 {
        u16_at(self.nk, 2).unwrap_or(0)
    }

    /// Last-written time as a FILETIME.
    pub fn last_written(&self) -> u64 {
        u64_at(self.nk, 4).unwrap_or(0)
    }

    pub fn parent_cell(&self) -> CellOffset {
        self.u32f(16)
    }

    /// Number of (stable) subkeys the node claims.
    pub fn subkey_count(&self) -> u32 {
        self.u32f(20)
    }

    pub fn subkey_list_cell(&self) -> CellOffset {
        self.u32f(28)
    }

    /// Number of values the node claims.
    pub fn value_count(&self) -> u32 {
        self.u32f(36)
    }

    pub fn value_list_cell(&self) -> CellOffset {
        self.u32f(40)
    }

    pub fn security_cell(&self) -> CellOffset {
        self.u32f(44)
    }

    pub fn class_cell(&self) -> CellOffset {
        self.u32f(48)
    }

    /// Largest subkey name length in bytes (UTF-16), the low 16 bits of its field.
    pub fn largest_subkey_name(&self) -> u32 {
        self.u32f(52) & 0xFFFF
    }

    pub fn largest_subkey_class(&self) -> u32 {
        self.u32f(56)
    }

    pub fn largest_value_name(&self) -> u32 {
        self.u32f(60)
    }

    pub fn largest_value_data(&self) -> u32 {
        self.u32f(64)
    }

    pub fn class_len(&self) -> u16 {
        u16_at(self.nk, 74).unwrap_or(0)
    }

    /// The key's name.
    pub fn name(&self) -> Name<'h> {
        let len = usize::from(u16_at(self.nk, 72).unwrap_or(0));
        let raw = &self.nk[NK_FIXED..NK_FIXED + len]; // checked in `at`
        if self.flags() & flags::COMP_NAME != 0 {
            Name::Latin1(raw)
        } else {
            Name::Utf16(raw)
        }
    }

    /// The class name, if the key has one.
    pub fn class_name(&self) -> Result<Option<String>> {
        let off = self.class_cell();
        let len = usize::from(self.class_len());
        if off == NONE || len == 0 {
            return Ok(None);
        }
        let c = self.bins.cell(off)?;
        let bytes = c.get(..len).ok_or_else(|| {
            bad(
                off,
                &format!(
                    "class name of {len} bytes does not fit in its {}-byte cell",
                    c.len()
                ),
            )
        })?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Some(String::from_utf16_lossy(&units)))
    }

    /// The key's security record (`sk`): its reference count and the self-relative security
    /// descriptor (SECURITY_DESCRIPTOR_RELATIVE bytes, as Windows stores them).
    pub fn security(&self) -> Result<Security<'h>> {
        let cell = self.security_cell();
        let sk = self.bins.record(cell, b"sk", "security (sk)")?;
        if sk.len() < 20 {
            return Err(bad(cell, "security record shorter than 20 bytes"));
        }
        let len = u32_at(sk, 16).unwrap_or(0) as usize;
        let descriptor = sk.get(20..20 + len).ok_or_else(|| {
            bad(
                cell,
                &format!(
                    "security descriptor of {len} bytes does not fit in its {}-byte cell",
                    sk.len()
                ),
            )
        })?;
        Ok(Security {
            cell,
            reference_count: u32_at(sk, 12).unwrap_or(0),
            descriptor,
        })
    }

    /// The subkeys, in on-disk order (sorted by upper-cased name in a healthy hive).
    pub fn subkeys(&self) -> Result<Subkeys<'h>> {
        Subkeys::new(self.bins, self.subkey_list_cell(), self.subkey_count())
    }

    /// The subkey named `name` (case-insensitive), if present.
    ///
    /// As Windows looks a name up: in an `lh` list only the entries whose hash matches are
    /// read. When none of them is the key, the list is searched again by name, as a binary
    /// search (a healthy list is sorted by upper-cased name): a key whose stored hash is wrong
    /// is still found, and a missing key costs a few key nodes, not all of them (in a paged
    /// hive each is a bin read).
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>> {
        if self.subkey_count() == 0 {
            return Ok(None);
        }
        let hash = crate::names::lh_hash(name.encode_utf16());
        let mut it = self.subkeys()?;
        let mut entries = Vec::new();
        let mut skipped_by_hash = false;
        while let Some(entry) = it.next_entry() {
            let (cell, hint) = entry?;
            entries.push(cell);
            if let Hint::Hash(h) = hint {
                if h != hash {
                    skipped_by_hash = true;
                    continue;
                }
            }
            let key = Key::at(self.bins, cell)?;
            if key.name().eq_ignore_case(name) {
                return Ok(Some(key));
            }
        }
        if !skipped_by_hash {
            return Ok(None);
        }
        let (mut low, mut high) = (0, entries.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let key = Key::at(self.bins, entries[mid])?;
            match crate::names::cmp_units_ignore_case(key.name().units(), name.encode_utf16()) {
                std::cmp::Ordering::Equal => return Ok(Some(key)),
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
            }
        }
        Ok(None)
    }

    /// Follows a backslash-separated path of subkeys from this key (case-insensitive; empty
    /// components are ignored, so `a\\b` and `\a\b\` work).
    pub fn descend(&self, path: &str) -> Result<Option<Key<'h>>> {
        let mut key = *self;
        for part in path.split(['\\', '/']).filter(|p| !p.is_empty()) {
            match key.subkey(part)? {
                Some(k) => key = k,
                None => return Ok(None),
            }
        }
        Ok(Some(key))
    }

    /// The values, in on-disk order.
    pub fn values(&self) -> Result<Values<'h>> {
        Values::new(self.bins, self.value_list_cell(), self.value_count())
    }

    /// The value named `name` (case-insensitive; `""` is the default value).
    pub fn value(&self, name: &str) -> Result<Option<Value<'h>>> {
        for v in self.values()? {
            let v = v?;
            if v.name().eq_ignore_case(name) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The parent key node (None for the root).
    pub fn parent(&self) -> Result<Option<Key<'h>>> {
        if self.flags() & flags::HIVE_ENTRY != 0 {
            return Ok(None);
        }
        Key::at(self.bins, self.parent_cell()).map(Some)
    }
}

impl std::fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("cell", &format_args!("0x{:x}", self.cell))
            .field("name", &self.name())
            .finish()
    }
}

/// A security record shared by keys.
#[derive(Debug, Clone, Copy)]
pub struct Security<'h> {
    pub cell: CellOffset,
    /// How many key nodes point to it.
    pub reference_count: u32,
    /// The self-relative security descriptor.
    pub descriptor: &'h [u8],
}

/// What a subkey list stores next to each key node offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// `li`: nothing.
    None,
    /// `lf`: the first four characters.
    Prefix([u8; 4]),
    /// `lh`: the name hash.
    Hash(u32),
}

/// The kind of a subkey list leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeafKind {
    Li,
    Lf,
    Lh,
}

impl LeafKind {
    pub(crate) fn of(sig: &[u8]) -> Option<LeafKind> {
        match sig {
            b"li" => Some(LeafKind::Li),
            b"lf" => Some(LeafKind::Lf),
            b"lh" => Some(LeafKind::Lh),
            _ => None,
        }
    }

    pub(crate) fn entry_size(self) -> usize {
        match self {
            LeafKind::Li => 4,
            LeafKind::Lf | LeafKind::Lh => 8,
        }
    }
}

/// A leaf list checked to hold `count` entries.
#[derive(Clone, Copy)]
pub(crate) struct Leaf<'h> {
    pub(crate) kind: LeafKind,
    pub(crate) data: &'h [u8],
    pub(crate) count: usize,
}

impl<'h> Leaf<'h> {
    pub(crate) fn parse(bins: &Bins<'h>, cell: CellOffset) -> Result<Leaf<'h>> {
        let c = bins.cell(cell)?;
        let sig = c
            .get(..2)
            .ok_or_else(|| bad(cell, "cell too small for a subkey list"))?;
        let kind = LeafKind::of(sig).ok_or(Error::WrongRecord {
            cell,
            expected: "subkey list (li/lf/lh)",
            found: [sig[0], sig[1]],
        })?;
        Self::with_kind(c, kind, cell)
    }

    fn with_kind(c: &'h [u8], kind: LeafKind, cell: CellOffset) -> Result<Leaf<'h>> {
        let count = usize::from(u16_at(c, 2).unwrap_or(0));
        if 4 + count * kind.entry_size() > c.len() {
            return Err(bad(
                cell,
                &format!(
                    "subkey list of {count} entries does not fit in its {}-byte cell",
                    c.len()
                ),
            ));
        }
        Ok(Leaf {
            kind,
            data: c,
            count,
        })
    }

    #[inline]
    pub(crate) fn entry(&self, i: usize) -> (CellOffset, Hint) {
        let at = 4 + i * self.kind.entry_size();
        // In bounds: checked against `count` in `with_kind`.
        let off = u32_at(self.data, at).unwrap_or(NONE);
        let hint = match self.kind {
            LeafKind::Li => Hint::None,
            LeafKind::Lf => {
                let h = &self.data[at + 4..at + 8];
                Hint::Prefix([h[0], h[1], h[2], h[3]])
            }
            LeafKind::Lh => Hint::Hash(u32_at(self.data, at + 4).unwrap_or(0)),
        };
        (off, hint)
    }
}

/// Iterator over the subkeys of a key, through an optional `ri` root. Damaged entries come out
/// as `Err` items and the iteration goes on with the next entry.
pub struct Subkeys<'h> {
    bins: Bins<'h>,
    /// The `ri` list, if the subkey list is an index root.
    root: Option<(&'h [u8], usize, CellOffset)>,
    root_pos: usize,
    leaf: Option<Leaf<'h>>,
    leaf_pos: usize,
    pending_error: Option<Error>,
}

impl<'h> Subkeys<'h> {
    pub(crate) fn new(bins: Bins<'h>, list: CellOffset, count: u32) -> Result<Subkeys<'h>> {
        let mut it = Subkeys {
            bins,
            root: None,
            root_pos: 0,
            leaf: None,
            leaf_pos: 0,
            pending_error: None,
        };
        if count == 0 || list == NONE {
            return Ok(it);
        }
        let c = bins.cell(list)?;
        let sig = c
            .get(..2)
            .ok_or_else(|| bad(list, "cell too small for a subkey list"))?;
        if sig == b"ri" {
            let n = usize::from(u16_at(c, 2).unwrap_or(0));
            if 4 + 4 * n > c.len() {
                return Err(bad(
                    list,
                    &format!(
                        "index root of {n} entries does not fit in its {}-byte cell",
                        c.len()
                    ),
                ));
            }
            it.root = Some((c, n, list));
        } else {
            let kind = LeafKind::of(sig).ok_or(Error::WrongRecord {
                cell: list,
                expected: "subkey list (li/lf/lh/ri)",
                found: [sig[0], sig[1]],
            })?;
            it.leaf = Some(Leaf::with_kind(c, kind, list)?);
        }
        Ok(it)
    }

    /// The next (key node offset, hint) pair without reading the key node.
    pub fn next_entry(&mut self) -> Option<Result<(CellOffset, Hint)>> {
        loop {
            if let Some(e) = self.pending_error.take() {
                return Some(Err(e));
            }
            if let Some(leaf) = self.leaf {
                if self.leaf_pos < leaf.count {
                    let e = leaf.entry(self.leaf_pos);
                    self.leaf_pos += 1;
                    return Some(Ok(e));
                }
                self.leaf = None;
            }
            let (ri, n, _) = self.root?;
            if self.root_pos >= n {
                return None;
            }
            let off = u32_at(ri, 4 + 4 * self.root_pos).unwrap_or(NONE);
            self.root_pos += 1;
            self.leaf_pos = 0;
            // An ri may only point to leaves; a nested ri is refused by `Leaf::parse`, which also
            // makes cycles through ri lists impossible.
            match Leaf::parse(&self.bins, off) {
                Ok(leaf) => self.leaf = Some(leaf),
                Err(e) => self.pending_error = Some(e),
            }
        }
    }
}

impl<'h> Iterator for Subkeys<'h> {
    type Item = Result<Key<'h>>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.next_entry()?;
        Some(entry.and_then(|(cell, _)| Key::at(self.bins, cell)))
    }
}
