//! The structural checker: every bin, every cell, every key, value, list and security record,
//! each fault reported with its file offset.
//!
//! The writer refuses a hive with any [`Severity::Error`]; warnings describe things Windows
//! tolerates (a dirty base block, leaked cells, stale "largest name" fields).

use std::cmp::Ordering;

use serde::Serialize;

use crate::base::{BaseBlock, BASE_BLOCK_SIZE};
use crate::bytes::{i32_at, u16_at, u32_at};
use crate::cell::{Bins, CellOffset, BIN_HEADER, NONE};
use crate::key::{Hint, Key, Leaf, LeafKind};
use crate::names::Name;
use crate::value::{big_data_segments, Value, BIG_DATA_SEGMENT};
use crate::MAX_DEPTH;

/// How bad a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Windows tolerates it; an edit may still be made.
    Warning,
    /// The structure is broken; winrescue will not write to this hive.
    Error,
}

/// One fault found by the checker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub severity: Severity,
    /// Position in the hive file.
    pub file_offset: u64,
    /// A short stable code, e.g. `cell-size`, `unsorted-subkeys`, `lh-hash`.
    pub code: &'static str,
    pub message: String,
}

/// Counts gathered during the check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub bins: usize,
    pub allocated_cells: usize,
    pub allocated_bytes: u64,
    pub free_cells: usize,
    pub free_bytes: u64,
    pub largest_free_cell: u32,
    pub keys: usize,
    pub values: usize,
    pub security_records: usize,
    pub leaked_cells: usize,
}

/// The result of [`check`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub faults: Vec<Fault>,
    /// Faults found beyond [`MAX_FAULTS`] are counted, not stored.
    pub faults_not_listed: usize,
    pub stats: Stats,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(|f| f.severity == Severity::Error)
    }

    /// No fault of severity error.
    pub fn is_sound(&self) -> bool {
        self.errors().next().is_none()
    }
}

/// A hostile hive could produce one fault a cell; the list is capped to keep memory bounded.
pub const MAX_FAULTS: usize = 10_000;

/// Checks a whole hive file. Never panics; a file that is not a hive gives a report with one
/// error.
pub fn check(file: &[u8]) -> Report {
    let mut c = Checker {
        report: Report::default(),
        starts: Vec::new(),
        referenced: Vec::new(),
        names: Vec::new(),
        name_ranges: Vec::new(),
    };
    c.run(file);
    c.report
}

struct Checker {
    report: Report,
    /// One bit a 8-byte slot: an allocated cell found by the bin walk starts there. (A bitmap
    /// rather than a sorted list: every reference is checked against it, so the lookup must be
    /// O(1) and touch one word.)
    starts: Vec<u64>,
    /// One bit a 8-byte slot: the cell starting there is referenced by some record.
    referenced: Vec<u64>,
    /// Scratch space for the upper-cased value names of one key (reused across keys).
    names: Vec<u16>,
    name_ranges: Vec<(usize, usize)>,
}

/// Sets bit `cell / 8` of `bits`.
#[inline]
fn set_bit(bits: &mut [u64], cell: CellOffset) {
    let i = cell as usize / 8;
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

/// Whether `cell` is a multiple of 8 whose bit is set in `bits`.
#[inline]
fn bit(bits: &[u64], cell: CellOffset) -> bool {
    let i = cell as usize / 8;
    cell.is_multiple_of(8) && bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn file_off(cell: CellOffset) -> u64 {
    u64::from(cell) + BASE_BLOCK_SIZE as u64
}

impl Checker {
    fn fault(&mut self, severity: Severity, file_offset: u64, code: &'static str, message: String) {
        if self.report.faults.len() >= MAX_FAULTS {
            self.report.faults_not_listed += 1;
        } else {
            self.report.faults.push(Fault {
                severity,
                file_offset,
                code,
                message,
            });
        }
    }

    fn err(&mut self, cell: CellOffset, code: &'static str, message: String) {
        self.fault(Severity::Error, file_off(cell), code, message);
    }

    fn warn(&mut self, cell: CellOffset, code: &'static str, message: String) {
        self.fault(Severity::Warning, file_off(cell), code, message);
    }

    fn run(&mut self, file: &[u8]) {
        let Some(base) = self.base_block(file) else {
            return;
        };
        let avail = file.len().saturating_sub(BASE_BLOCK_SIZE);
        let size = (base.hive_bins_size as usize).min(avail) & !0xFFF;
        let bins = Bins::from_slice(
            &file[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + size],
            base.minor_version,
        );
        self.referenced = vec![0; size / 8 / 64 + 1];
        self.starts = vec![0; size / 8 / 64 + 1];
        self.bins(&bins);
        self.tree(&bins, base.root_cell);
        self.leaks();
    }

    fn base_block(&mut self, file: &[u8]) -> Option<BaseBlock> {
        if file.len() < BASE_BLOCK_SIZE {
            self.fault(
                Severity::Error,
                0,
                "truncated",
                format!("file is {} bytes, shorter than a base block", file.len()),
            );
            return None;
        }
        let base = match BaseBlock::parse(file) {
            Ok(b) => b,
            Err(e) => {
                self.fault(Severity::Error, 0, "signature", e.to_string());
                return None;
            }
        };
        if !base.checksum_ok() {
            self.fault(
                Severity::Error,
                508,
                "checksum",
                format!(
                    "base block checksum is 0x{:08x}, the content gives 0x{:08x}",
                    base.stored_checksum, base.computed_checksum
                ),
            );
        }
        if base.primary_sequence != base.secondary_sequence {
            self.fault(
                Severity::Warning,
                4,
                "dirty",
                format!(
                    "hive is dirty: sequence numbers {} / {} differ; its transaction logs hold changes not in this file",
                    base.primary_sequence, base.secondary_sequence
                ),
            );
        }
        if let Err(e) = base.validate() {
            self.fault(Severity::Error, 20, "version", e.to_string());
        }
        if base.file_type != 0 {
            self.fault(
                Severity::Error,
                28,
                "file-type",
                format!("file type is {}, expected 0 (primary file)", base.file_type),
            );
        }
        if base.file_format != 1 {
            self.fault(
                Severity::Error,
                32,
                "file-format",
                format!("file format is {}, expected 1", base.file_format),
            );
        }
        let avail = file.len() - BASE_BLOCK_SIZE;
        if base.hive_bins_size as usize > avail {
            self.fault(
                Severity::Error,
                40,
                "truncated",
                format!(
                    "hive-bins data size is 0x{:x} but the file holds only 0x{avail:x} bytes after the base block",
                    base.hive_bins_size
                ),
            );
        }
        Some(base)
    }

    fn bins(&mut self, bins: &Bins<'_>) {
        let data = bins.slice();
        let mut off = 0usize;
        while off < data.len() {
            let file = (off + BASE_BLOCK_SIZE) as u64;
            if data.get(off..off + 4) != Some(b"hbin") {
                self.fault(
                    Severity::Error,
                    file,
                    "bin-signature",
                    format!(
                        "expected \"hbin\" at the start of a bin, found {:02x?}",
                        data.get(off..off + 4).unwrap_or(&[])
                    ),
                );
                return;
            }
            let rel = u32_at(data, off + 4).unwrap_or(0) as usize;
            let size = u32_at(data, off + 8).unwrap_or(0) as usize;
            if rel != off {
                self.fault(
                    Severity::Error,
                    file + 4,
                    "bin-offset",
                    format!("bin says it is at 0x{rel:x}, it is at 0x{off:x}"),
                );
            }
            if size < 4096 || !size.is_multiple_of(4096) || off + size > data.len() {
                self.fault(
                    Severity::Error,
                    file + 8,
                    "bin-size",
                    format!("bin size 0x{size:x} is not a multiple of 4096 within the 0x{:x}-byte hive-bins data", data.len()),
                );
                return;
            }
            self.report.stats.bins += 1;
            let end = off + size;
            let mut c = off + BIN_HEADER;
            while c < end {
                let cell = c as CellOffset;
                let raw = i32_at(data, c).unwrap_or(0);
                let len = raw.unsigned_abs() as usize;
                if len == 0 || !len.is_multiple_of(8) {
                    self.err(cell, "cell-size", format!("cell size {raw} is not a non-zero multiple of 8; rest of the bin skipped"));
                    break;
                }
                if c + len > end {
                    self.err(
                        cell,
                        "cell-crosses-bin",
                        format!(
                            "cell of {len} bytes crosses the end of its bin at file offset 0x{:x}",
                            end + BASE_BLOCK_SIZE
                        ),
                    );
                    break;
                }
                if raw < 0 {
                    set_bit(&mut self.starts, cell);
                    self.report.stats.allocated_cells += 1;
                    self.report.stats.allocated_bytes += len as u64;
                } else {
                    self.report.stats.free_cells += 1;
                    self.report.stats.free_bytes += len as u64;
                    self.report.stats.largest_free_cell =
                        self.report.stats.largest_free_cell.max(len as u32);
                }
                c += len;
            }
            off = end;
        }
    }

    /// Checks that `cell` is the start of an allocated cell found by the bin walk and marks it
    /// referenced. Returns false (after reporting) when it is not.
    fn reference(&mut self, cell: CellOffset, from: CellOffset, what: &str) -> bool {
        if !bit(&self.starts, cell) {
            self.err(
                from,
                "dangling-offset",
                format!(
                    "{what} points to cell 0x{cell:x}, which is not the start of an allocated cell"
                ),
            );
            return false;
        }
        set_bit(&mut self.referenced, cell);
        true
    }

    fn tree(&mut self, bins: &Bins<'_>, root: CellOffset) {
        if !self.reference(root, 0, "the base block's root cell") {
            return;
        }
        let root_key = match Key::at(*bins, root) {
            Ok(k) => k,
            Err(e) => {
                self.err(root, "root", e.to_string());
                return;
            }
        };
        if root_key.flags() & crate::key::flags::HIVE_ENTRY == 0 {
            self.err(
                root,
                "root-flag",
                "root key node lacks the KEY_HIVE_ENTRY flag (0x4)".into(),
            );
        }
        // sk offset -> references counted from key nodes
        let mut sk_refs: std::collections::BTreeMap<CellOffset, u32> = Default::default();
        let mut visited = vec![0u64; bins.len() / 8 / 64 + 1];
        let mut stack: Vec<(CellOffset, usize)> = vec![(root, 0)];
        let mut children: Vec<CellOffset> = Vec::new();
        while let Some((cell, depth)) = stack.pop() {
            let i = cell as usize / 8;
            let Some(word) = visited.get_mut(i / 64) else {
                continue;
            };
            if *word & (1 << (i % 64)) != 0 {
                self.err(
                    cell,
                    "cycle",
                    "key node reached twice (a cycle or two parents)".into(),
                );
                continue;
            }
            *word |= 1 << (i % 64);
            let key = match Key::at(*bins, cell) {
                Ok(k) => k,
                Err(e) => {
                    self.err(cell, "key-node", e.to_string());
                    continue;
                }
            };
            self.report.stats.keys += 1;
            if depth > 0 && key.flags() & crate::key::flags::HIVE_ENTRY != 0 {
                self.err(
                    cell,
                    "root-flag",
                    "a key node other than the root has the KEY_HIVE_ENTRY flag".into(),
                );
            }
            let sk = key.security_cell();
            if self.reference(sk, cell, "key node's security offset") {
                *sk_refs.entry(sk).or_default() += 1;
            }
            if key.class_cell() != NONE
                && self.reference(key.class_cell(), cell, "key node's class name offset")
            {
                if let Err(e) = key.class_name() {
                    self.err(cell, "class-name", e.to_string());
                }
            }
            self.values(bins, &key);
            children.clear();
            self.subkeys(bins, &key, &mut children);
            if depth + 1 >= MAX_DEPTH && !children.is_empty() {
                self.err(
                    cell,
                    "too-deep",
                    format!("keys nested deeper than {MAX_DEPTH} levels"),
                );
                continue;
            }
            stack.extend(children.iter().rev().map(|&child| (child, depth + 1)));
        }
        self.security(bins, &sk_refs);
    }

    fn values(&mut self, bins: &Bins<'_>, key: &Key<'_>) {
        let cell = key.cell();
        let count = key.value_count();
        if count == 0 {
            return;
        }
        if key.flags() & crate::key::flags::PREDEF_HANDLE != 0 {
            return; // the count field holds a handle, not a count
        }
        if !self.reference(key.value_list_cell(), cell, "key node's value list offset") {
            return;
        }
        let values = match key.values() {
            Ok(v) => v,
            Err(e) => {
                self.err(cell, "value-list", e.to_string());
                return;
            }
        };
        let (mut largest_name, mut largest_data) = (0u32, 0u32);
        // Upper-cased names, one after the other in a reused buffer, for the duplicate test.
        let mut names = std::mem::take(&mut self.names);
        let mut ranges = std::mem::take(&mut self.name_ranges);
        names.clear();
        ranges.clear();
        for vcell in values.cells() {
            if !self.reference(vcell, key.value_list_cell(), "value list entry") {
                continue;
            }
            let v = match Value::at(*bins, vcell) {
                Ok(v) => v,
                Err(e) => {
                    self.err(vcell, "value", e.to_string());
                    continue;
                }
            };
            self.report.stats.values += 1;
            largest_name = largest_name.max(v.name().utf16_byte_len() as u32);
            largest_data = largest_data.max(v.data_len());
            let start = names.len();
            v.name().upcased_into(&mut names);
            ranges.push((start, names.len()));
            self.value_data(bins, &v);
        }
        let duplicate = ranges.len() > 1 && {
            ranges.sort_unstable_by(|a, b| names[a.0..a.1].cmp(&names[b.0..b.1]));
            ranges
                .windows(2)
                .any(|w| names[w[0].0..w[0].1] == names[w[1].0..w[1].1])
        };
        self.names = names;
        self.name_ranges = ranges;
        if duplicate {
            self.err(
                cell,
                "duplicate-value",
                "two values of this key have the same name".into(),
            );
        }
        if key.largest_value_name() < largest_name {
            self.warn(
                cell,
                "largest-value-name",
                format!(
                    "largest value name field is {}, a value name is {largest_name} bytes",
                    key.largest_value_name()
                ),
            );
        }
        if key.largest_value_data() < largest_data {
            self.warn(
                cell,
                "largest-value-data",
                format!(
                    "largest value data field is {}, a value holds {largest_data} bytes",
                    key.largest_value_data()
                ),
            );
        }
    }

    fn value_data(&mut self, bins: &Bins<'_>, v: &Value<'_>) {
        let len = v.data_len() as usize;
        if v.is_inline() {
            if len > 4 {
                self.err(
                    v.cell(),
                    "inline-data",
                    format!("inline data claims {len} bytes, at most 4 fit"),
                );
            }
            return;
        }
        if len == 0 {
            return;
        }
        let off = v.data_cell();
        if !self.reference(off, v.cell(), "value's data offset") {
            return;
        }
        if v.is_big() {
            match big_data_segments(bins, off) {
                Ok((n, list)) => {
                    let list_off = u32_at(bins.cell(off).unwrap_or(&[]), 4).unwrap_or(NONE);
                    self.reference(list_off, off, "big data segment list");
                    if n * BIG_DATA_SEGMENT < len {
                        self.err(
                            off,
                            "big-data",
                            format!("{n} segments cannot hold {len} bytes"),
                        );
                    }
                    let mut left = len;
                    for i in 0..n {
                        let seg = u32_at(list, 4 * i).unwrap_or(NONE);
                        if !self.reference(seg, list_off, "big data segment") {
                            continue;
                        }
                        let want = left.min(BIG_DATA_SEGMENT);
                        let have = bins.cell(seg).map(|c| c.len()).unwrap_or(0);
                        if have < want {
                            self.err(
                                seg,
                                "big-data",
                                format!("segment {i} holds {have} bytes, {want} needed"),
                            );
                        }
                        left = left.saturating_sub(BIG_DATA_SEGMENT);
                    }
                }
                Err(e) => self.err(off, "big-data", e.to_string()),
            }
        } else if let Err(e) = v.raw_data() {
            self.err(v.cell(), "value-data", e.to_string());
        }
    }

    /// Checks the subkey list of `key` and appends the key nodes it lists to `children`.
    fn subkeys(&mut self, bins: &Bins<'_>, key: &Key<'_>, children: &mut Vec<CellOffset>) {
        let cell = key.cell();
        let count = key.subkey_count();
        let list = key.subkey_list_cell();
        if count == 0 {
            return;
        }
        if !self.reference(list, cell, "key node's subkey list offset") {
            return;
        }
        let Ok(head) = bins.cell(list) else {
            return;
        };
        let mut leaves: Vec<(CellOffset, Leaf<'_>)> = Vec::new();
        if head.get(..2) == Some(b"ri") {
            let n = usize::from(u16_at(head, 2).unwrap_or(0));
            if 4 + 4 * n > head.len() {
                self.err(
                    list,
                    "subkey-list",
                    format!("index root of {n} entries does not fit in its cell"),
                );
                return;
            }
            for i in 0..n {
                let l = u32_at(head, 4 + 4 * i).unwrap_or(NONE);
                if !self.reference(l, list, "index root entry") {
                    continue;
                }
                match Leaf::parse(bins, l) {
                    Ok(leaf) => leaves.push((l, leaf)),
                    Err(e) => self.err(
                        l,
                        "subkey-list",
                        format!("{e} (an index root may only point to li/lf/lh)"),
                    ),
                }
            }
        } else {
            match Leaf::parse(bins, list) {
                Ok(leaf) => leaves.push((list, leaf)),
                Err(e) => {
                    self.err(list, "subkey-list", e.to_string());
                    return;
                }
            }
        }
        let total: usize = leaves.iter().map(|(_, l)| l.count).sum();
        if total != count as usize {
            self.err(
                cell,
                "subkey-count",
                format!("key node claims {count} subkeys, its list holds {total}"),
            );
        }
        let mut prev: Option<(CellOffset, Name<'_>)> = None;
        let mut largest = 0u32;
        for (lcell, leaf) in leaves {
            if leaf.kind == LeafKind::Lh && bins.minor < 5 {
                self.warn(
                    lcell,
                    "lh-version",
                    format!("lh list in a hive of version 1.{}", bins.minor),
                );
            }
            for i in 0..leaf.count {
                let (child, hint) = leaf.entry(i);
                if !self.reference(child, lcell, "subkey list entry") {
                    continue;
                }
                let k = match Key::at(*bins, child) {
                    Ok(k) => k,
                    Err(e) => {
                        self.err(child, "key-node", e.to_string());
                        continue;
                    }
                };
                if k.parent_cell() != cell {
                    self.err(
                        child,
                        "parent",
                        format!(
                            "key node's parent is 0x{:x}, it is listed under 0x{cell:x}",
                            k.parent_cell()
                        ),
                    );
                }
                let name = k.name();
                largest = largest.max(name.utf16_byte_len() as u32);
                self.hint(lcell, i, &name, hint);
                if let Some((pcell, p)) = &prev {
                    match p.cmp_ignore_case(&name) {
                        Ordering::Less => {}
                        Ordering::Equal => self.err(
                            child,
                            "duplicate-subkey",
                            format!("same name as the key at cell 0x{pcell:x} ({name})"),
                        ),
                        Ordering::Greater => self.err(
                            lcell,
                            "unsorted-subkeys",
                            format!(
                                "subkey list is not sorted: {name:?} comes after a greater name"
                            ),
                        ),
                    }
                }
                prev = Some((child, name));
                children.push(child);
            }
        }
        if key.largest_subkey_name() < largest {
            self.warn(
                cell,
                "largest-subkey-name",
                format!(
                    "largest subkey name field is {}, a subkey name is {largest} bytes",
                    key.largest_subkey_name()
                ),
            );
        }
    }

    fn hint(&mut self, list: CellOffset, i: usize, name: &Name<'_>, hint: Hint) {
        match hint {
            Hint::Hash(h) => {
                let want = name.lh_hash();
                if h != want {
                    self.err(
                        list,
                        "lh-hash",
                        format!("entry {i} ({name}): hash 0x{h:08x}, the name gives 0x{want:08x}"),
                    );
                }
            }
            Hint::Prefix(p) => {
                let want = name.lf_hint();
                if want[0] != 0 && p != want {
                    self.err(
                        list,
                        "lf-hint",
                        format!("entry {i} ({name}): hint {p:02x?}, the name gives {want:02x?}"),
                    );
                }
            }
            Hint::None => {}
        }
    }

    fn security(&mut self, bins: &Bins<'_>, refs: &std::collections::BTreeMap<CellOffset, u32>) {
        for (&sk, &counted) in refs {
            let rec = match bins.record(sk, b"sk", "security (sk)") {
                Ok(r) if r.len() >= 20 => r,
                Ok(_) => {
                    self.err(
                        sk,
                        "security",
                        "security record shorter than 20 bytes".into(),
                    );
                    continue;
                }
                Err(e) => {
                    self.err(sk, "security", e.to_string());
                    continue;
                }
            };
            self.report.stats.security_records += 1;
            let stored = u32_at(rec, 12).unwrap_or(0);
            if stored != counted {
                self.err(
                    sk,
                    "sk-refcount",
                    format!("reference count is {stored}, {counted} key nodes point to it"),
                );
            }
            let sd_len = u32_at(rec, 16).unwrap_or(0) as usize;
            if 20 + sd_len > rec.len() {
                self.err(
                    sk,
                    "security",
                    format!(
                        "security descriptor of {sd_len} bytes does not fit in its {}-byte cell",
                        rec.len()
                    ),
                );
            }
            // A descriptor Windows could not read makes the key unreadable to everyone but the
            // fault is in the data, not the structure: a warning, so that a repair can still
            // replace it.
            if let Some(sd) = rec.get(20..).and_then(|r| r.get(..sd_len)) {
                if let Err(e) = crate::security::SecurityDescriptor::parse(sd) {
                    self.warn(sk, "sk-descriptor", e.to_string());
                }
            }
            // The records form a doubly linked ring: our flink's blink must be us.
            let flink = u32_at(rec, 4).unwrap_or(NONE);
            let blink = u32_at(rec, 8).unwrap_or(NONE);
            for (what, other) in [("flink", flink), ("blink", blink)] {
                if !self.reference(other, sk, what) {
                    continue;
                }
                match bins.record(other, b"sk", "security (sk)") {
                    Ok(o) => {
                        let back = if what == "flink" {
                            u32_at(o, 8)
                        } else {
                            u32_at(o, 4)
                        };
                        if back != Some(sk) {
                            self.err(
                                sk,
                                "sk-list",
                                format!("{what} points to 0x{other:x}, which does not point back"),
                            );
                        }
                    }
                    Err(e) => self.err(sk, "sk-list", format!("{what}: {e}")),
                }
            }
        }
    }

    fn leaks(&mut self) {
        // Allocated cell starts whose referenced bit is clear, in file order.
        let mut count = 0usize;
        let mut first: Vec<CellOffset> = Vec::new();
        for (i, (&s, &r)) in self.starts.iter().zip(&self.referenced).enumerate() {
            let mut w = s & !r;
            count += w.count_ones() as usize;
            while w != 0 && first.len() < 8 {
                let bit = w.trailing_zeros() as usize;
                first.push(((i * 64 + bit) * 8) as CellOffset);
                w &= w - 1;
            }
        }
        self.report.stats.leaked_cells = count;
        if let Some(&head) = first.first() {
            let list: Vec<String> = first.iter().map(|o| format!("0x{o:x}")).collect();
            self.warn(
                head,
                "leaked-cells",
                format!(
                    "{} allocated cells are referenced by nothing (cells {}{})",
                    count,
                    list.join(", "),
                    if count > 8 { ", ..." } else { "" }
                ),
            );
        }
    }
}
