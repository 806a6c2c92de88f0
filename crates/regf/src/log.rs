//! Transaction logs (`.LOG`, `.LOG1`, `.LOG2`): find which apply to a dirty hive and replay them
//! the way Windows does when it loads the hive.
//!
//! Sources: regf specification, sections "Format of transaction log files", "Dirty state of a
//! hive" and "Multiple transaction log files".
//!
//! # What a writer must do afterwards
//! Windows replays every log entry whose sequence number is at least the primary's secondary
//! sequence number ... when it finds the hive dirty. After winrescue writes a hive, the base block
//! must be clean (both sequence numbers equal) **and** its sequence number must be above every
//! sequence number found in the logs ([`Replay::next_sequence`]); then no log entry can ever be
//! taken for a newer change than ours, even if the hive is later found dirty again.

use serde::Serialize;

use crate::base::{seal, BaseBlock, BASE_BLOCK_SIZE};
use crate::bytes::{put_u32, u32_at, u64_at};
use crate::marvin::{marvin32, LOG_SEED};
use crate::{Error, Result};

/// Log entries are aligned to and sized in 512-byte sectors.
const SECTOR: usize = 512;
/// Fixed header of a new-format log entry.
const ENTRY_HEADER: usize = 40;
/// A hive larger than this is not a registry hive Windows would load (the largest real SYSTEM
/// hives are a few hundred MB); it caps what a log entry can make us allocate.
pub const MAX_HIVE_BINS: u32 = 2 << 30;

/// A log file given to [`replay`]: its name (for messages) and content.
#[derive(Debug, Clone, Copy)]
pub struct LogInput<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// Format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Up to Windows 8: base block copy, "DIRT" bitmap, 512-byte pages.
    Old,
    /// Windows 8.1 and later: "HvLE" entries.
    New,
    /// Empty or zero-filled: nothing to apply.
    Empty,
}

/// What was found in one log file.
#[derive(Debug, Clone, Serialize)]
pub struct LogSummary {
    pub name: String,
    pub format: LogFormat,
    /// Sequence numbers of the valid entries found (new format), in file order.
    pub first_sequence: Option<u32>,
    pub last_sequence: Option<u32>,
    pub entries_found: usize,
    /// Entries (new format) or 512-byte pages (old format) applied from this file.
    pub entries_applied: usize,
    pub pages_applied: usize,
    /// Why this file was not used, or where its replay stopped.
    pub note: Option<String>,
}

/// The report of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// The primary file was dirty (otherwise nothing was applied).
    pub was_dirty: bool,
    /// The primary's base block was invalid and was restored from this log.
    pub base_block_from: Option<String>,
    pub logs: Vec<LogSummary>,
    pub entries_applied: usize,
    pub pages_applied: usize,
    /// First and last sequence numbers applied (new format).
    pub sequence_range: Option<(u32, u32)>,
    /// Hive-bins data size before and after.
    pub hive_bins_before: u32,
    pub hive_bins_after: u32,
    /// The lowest sequence number a later write may use so that no log entry is ever replayed
    /// over it: one above everything seen in the hive and its logs.
    pub next_sequence: u32,
    /// The hive was dirty but no log could be applied: recent changes may be missing.
    pub incomplete: bool,
    /// Things Windows would silently live with but a writer must not: a log that belongs to
    /// another hive, a log that is damaged where the replay needed it. A write is refused while
    /// this list is not empty (unless the user forces it).
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// A recovered hive: the bytes Windows would have in memory after loading it.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub bytes: Vec<u8>,
    pub report: Replay,
}

/// A parsed new-format log entry.
struct Entry<'a> {
    offset: usize,
    size: usize,
    sequence: u32,
    flags: u32,
    hive_bins: u32,
    /// (offset in hive-bins data, page bytes)
    pages: Vec<(u32, &'a [u8])>,
}

/// Applies the logs that belong to `primary` and returns the recovered hive. A clean hive is
/// returned unchanged (its logs hold only entries already written). Fails, and nothing is
/// produced, when the primary is not a hive at all, when its base block is invalid and no log
/// can restore it, or when a log is so damaged that applying it would be guesswork; a dirty hive
/// with no usable log is returned as it is, with `incomplete` set.
pub fn replay(primary: &[u8], logs: &[LogInput<'_>]) -> Result<Recovered> {
    let head = primary.get(..HEAD).unwrap_or(primary);
    let plan = plan(head, primary.len(), logs)?;
    let mut bytes = primary.to_vec();
    bytes.resize(plan.len, 0);
    bytes[..BASE_BLOCK_SIZE].copy_from_slice(&plan.base_block);
    for (at, data) in &plan.writes {
        // Inside `plan.len`: the replay checked every page against the hive-bins size.
        bytes[*at..*at + data.len()].copy_from_slice(data);
    }
    Ok(Recovered {
        bytes,
        report: plan.report,
    })
}

/// How many bytes of the primary [`plan`] needs: its base block and the first hive bin's
/// header (an old-format log is tied to the hive by the bin's timestamp when the base block is
/// damaged).
pub const HEAD: usize = BASE_BLOCK_SIZE + 32;

/// A replay as changes to the hive file, not yet made: what [`replay`] applies to a copy of
/// the whole file, and what a hive read on demand ([`crate::Paged::open_replayed`]) lays over
/// the bins it loads, so that only the logs and the bins read are ever fetched.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    /// The base block after the replay.
    pub base_block: Vec<u8>,
    /// The file's length after the replay (a log entry may grow the hive).
    pub len: usize,
    /// Bytes laid over the file, (file offset, bytes), in replay order: a later one wins. All
    /// at or after the base block, inside `len`, and in whole 512-byte sectors.
    pub writes: Vec<(usize, &'a [u8])>,
    pub report: Replay,
}

/// The replay of `logs` over the hive whose first bytes are `head` (at least the base block;
/// [`HEAD`] bytes when the file has them) and whose file is `file_len` bytes long: as
/// [`replay`], without the rest of the file.
pub fn plan<'a>(head: &[u8], file_len: usize, logs: &[LogInput<'a>]) -> Result<Planned<'a>> {
    if head.len() < BASE_BLOCK_SIZE || file_len < BASE_BLOCK_SIZE {
        return Err(Error::TooShort {
            len: file_len.min(head.len()),
        });
    }
    let base = BaseBlock::parse(head)?;
    let max_seq = logs
        .iter()
        .filter_map(|l| scan_new(l.data).ok())
        .flat_map(|log| log.entries.into_iter().map(|e| e.sequence))
        .chain(
            logs.iter()
                .filter_map(|l| BaseBlock::parse(l.data).ok())
                .flat_map(|b| [b.primary_sequence, b.secondary_sequence]),
        )
        .chain([base.primary_sequence, base.secondary_sequence])
        .max()
        .unwrap_or(0);
    let mut report = Replay {
        was_dirty: base.is_dirty(),
        base_block_from: None,
        logs: Vec::new(),
        entries_applied: 0,
        pages_applied: 0,
        sequence_range: None,
        hive_bins_before: base.hive_bins_size,
        hive_bins_after: base.hive_bins_size,
        next_sequence: max_seq.saturating_add(1),
        incomplete: false,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let mut image = Image {
        head: head[..BASE_BLOCK_SIZE].to_vec(),
        len: file_len,
        first_bin_stamp: u64_at(head, BASE_BLOCK_SIZE + 20).unwrap_or(0),
        writes: Vec::new(),
    };
    if !base.is_dirty() {
        for l in logs {
            report
                .logs
                .push(summary(l, Some("hive is clean: log not needed".into())));
        }
        return Ok(image.planned(report));
    }

    let parsed: Vec<(LogInput<'_>, Option<BaseBlock>)> = logs
        .iter()
        .map(|l| (*l, BaseBlock::parse(l.data).ok()))
        .collect();
    let any_new = parsed
        .iter()
        .any(|(_, b)| b.as_ref().is_some_and(|b| b.file_type == 6));
    if any_new {
        replay_new(&mut image, &base, &parsed, &mut report)?;
    } else {
        replay_old(&mut image, &base, &parsed, &mut report)?;
    }
    if report.entries_applied == 0 && report.pages_applied == 0 {
        report.incomplete = true;
        report.warnings.push(if logs.is_empty() {
            "the hive is dirty and has no transaction logs: its most recent changes may be missing".into()
        } else {
            "the hive is dirty and none of its logs could be applied: its most recent changes may be missing".into()
        });
    }
    Ok(image.planned(report))
}

/// The hive file as a replay sees it: its base block, its length and the pages laid over it.
struct Image<'a> {
    head: Vec<u8>,
    len: usize,
    /// The first hive bin's timestamp (0 when the file has none).
    first_bin_stamp: u64,
    writes: Vec<(usize, &'a [u8])>,
}

impl<'a> Image<'a> {
    fn planned(self, report: Replay) -> Planned<'a> {
        Planned {
            base_block: self.head,
            len: self.len,
            writes: self.writes,
            report,
        }
    }
}

fn summary(l: &LogInput<'_>, note: Option<String>) -> LogSummary {
    let (format, first, last, found) = match scan_new(l.data) {
        Ok(NewLog {
            base, entries: e, ..
        }) if base.file_type == 6 => (
            LogFormat::New,
            e.first().map(|e| e.sequence),
            e.last().map(|e| e.sequence),
            e.len(),
        ),
        Ok(_) => (LogFormat::Old, None, None, 0),
        Err(_) if l.data.iter().all(|&b| b == 0) => (LogFormat::Empty, None, None, 0),
        Err(_) => (LogFormat::Old, None, None, 0),
    };
    LogSummary {
        name: l.name.to_string(),
        format,
        first_sequence: first,
        last_sequence: last,
        entries_found: found,
        entries_applied: 0,
        pages_applied: 0,
        note,
    }
}

/// A new-format log: its base block, its valid entries in file order, and, when the entries end
/// on something that starts like an entry but is not valid (a bad hash, a truncated entry), where
/// and why. Entries after the first bad one are never used: they are stale or unreadable.
struct NewLog<'a> {
    base: BaseBlock,
    entries: Vec<Entry<'a>>,
    damaged: Option<Damaged>,
}

/// Where a log's valid entries end on a damaged one.
struct Damaged {
    offset: usize,
    /// The sequence number in the damaged entry's header, when that much is readable.
    sequence: Option<u32>,
    why: String,
}

fn scan_new(data: &[u8]) -> Result<NewLog<'_>> {
    let base = BaseBlock::parse(data)?;
    let mut entries = Vec::new();
    let mut off = SECTOR;
    let damaged = loop {
        match parse_entry(data, off) {
            Ok(Some(e)) => {
                off += e.size;
                entries.push(e);
            }
            Ok(None) => break None,
            Err(why) => {
                break Some(Damaged {
                    offset: off,
                    sequence: data
                        .get(off + 12..off + 16)
                        .and_then(|_| u32_at(data, off + 12)),
                    why,
                })
            }
        }
    };
    Ok(NewLog {
        base,
        entries,
        damaged,
    })
}

/// Parses the entry at `off`: `Ok(None)` where no entry starts (the end of the log), `Err` with
/// the reason when an entry starts there but is damaged.
fn parse_entry(data: &[u8], off: usize) -> std::result::Result<Option<Entry<'_>>, String> {
    let Some(head) = data
        .get(off..)
        .and_then(|d| d.get(..ENTRY_HEADER.min(d.len())))
    else {
        return Ok(None);
    };
    if !head.starts_with(b"HvLE") {
        return Ok(None);
    }
    if head.len() < ENTRY_HEADER {
        return Err("entry header is cut off by the end of the file".into());
    }
    let field = |at| u32_at(head, at).unwrap_or(0); // head is 40 bytes long here
    let size = field(4) as usize;
    if size < ENTRY_HEADER || !size.is_multiple_of(SECTOR) {
        return Err(format!("entry size {size} is not a multiple of 512"));
    }
    let Some(body) = data.get(off..).and_then(|d| d.get(..size)) else {
        return Err(format!(
            "entry of {size} bytes runs past the end of the file (truncated log)"
        ));
    };
    let hive_bins = field(16);
    if hive_bins % 4096 != 0 || hive_bins > MAX_HIVE_BINS {
        return Err(format!(
            "hive-bins data size 0x{hive_bins:x} is not a plausible multiple of 4096"
        ));
    }
    // Hash-1 covers everything after the header; Hash-2 the first 32 bytes (Hash-1 included).
    if marvin32(LOG_SEED, &body[ENTRY_HEADER..]) != u64_at(head, 24).unwrap_or(0) {
        return Err("Hash-1 does not match the entry's content".into());
    }
    if marvin32(LOG_SEED, &body[..32]) != u64_at(head, 32).unwrap_or(0) {
        return Err("Hash-2 does not match the entry's header".into());
    }
    let count = field(20) as usize;
    let refs_end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(ENTRY_HEADER))
        .filter(|&e| e <= size);
    let Some(refs_end) = refs_end else {
        return Err(format!(
            "{count} page references do not fit in an entry of {size} bytes"
        ));
    };
    let mut pages = Vec::with_capacity(count);
    let mut at = refs_end;
    for i in 0..count {
        let page_off = u32_at(body, ENTRY_HEADER + 8 * i).unwrap_or(0);
        let page_size = u32_at(body, ENTRY_HEADER + 8 * i + 4).unwrap_or(0) as usize;
        let Some(page) = body.get(at..).and_then(|b| b.get(..page_size)) else {
            return Err(format!(
                "page {i} of {page_size} bytes runs past the end of the entry"
            ));
        };
        if !page_off.is_multiple_of(4096)
            || !page_size.is_multiple_of(4096)
            || u64::from(page_off) + page_size as u64 > u64::from(hive_bins)
        {
            return Err(format!(
                "page {i} at 0x{page_off:x} (+0x{page_size:x}) lies outside the hive-bins data"
            ));
        }
        pages.push((page_off, page));
        at += page_size;
    }
    Ok(Some(Entry {
        offset: off,
        size,
        sequence: field(12),
        flags: field(8),
        hive_bins,
        pages,
    }))
}

fn replay_new<'a>(
    image: &mut Image<'a>,
    base: &BaseBlock,
    logs: &[(LogInput<'a>, Option<BaseBlock>)],
    report: &mut Replay,
) -> Result<()> {
    // Each usable log: its base block must be valid and of the new format.
    let mut usable: Vec<(LogInput<'a>, NewLog<'a>)> = Vec::new();
    for (l, b) in logs {
        let note = match b {
            None if l.data.iter().all(|&x| x == 0) => Some("empty log".to_string()),
            None => Some("no valid base block (not a log of a regf hive)".to_string()),
            Some(b) if !b.checksum_ok() => Some(format!(
                "its base block checksum is wrong (0x{:08x}, computed 0x{:08x})",
                b.stored_checksum, b.computed_checksum
            )),
            Some(b) if b.file_type != 6 => Some(format!(
                "file type {} is not a new-format log while another log is",
                b.file_type
            )),
            Some(b) if !same_hive(base, b) => {
                let why = format!(
                    "does not belong to this hive: its resource manager id is {}, the hive's is {}",
                    guid(&b.rm_id),
                    guid(&base.rm_id)
                );
                report.problems.push(format!("{}: {why}", l.name));
                Some(why)
            }
            Some(_) => {
                usable.push((*l, scan_new(l.data)?));
                None
            }
        };
        if note.is_some() {
            report.logs.push(summary(l, note));
        }
    }
    // The log holding the earlier entries goes first (Windows swaps LOG1 and LOG2 in turn, so
    // either may be older): order by the sequence number in their base blocks.
    usable.sort_by_key(|(_, log)| log.base.primary_sequence);

    let primary_valid = base.checksum_ok();
    if !primary_valid {
        // Only the log with the latest entries is used, and its base block replaces ours.
        let Some(last) = usable.pop() else {
            return Err(Error::Log {
                log: "(all)".into(),
                what: "the hive's base block is invalid and no log holds a valid copy of it".into(),
            });
        };
        for (l, _) in usable.drain(..) {
            report.logs.push(summary(
                &l,
                Some(
                    "not used: the primary base block is invalid, so only the newest log applies"
                        .into(),
                ),
            ));
        }
        let mut restored = last.0.data[..SECTOR].to_vec();
        restored.resize(BASE_BLOCK_SIZE, 0);
        put_u32(&mut restored, 28, 0); // back to "primary file"
        image.head = restored;
        report.base_block_from = Some(last.0.name.to_string());
        usable.push(last);
    }

    // The first entry must carry the sequence number of its log's base block and may not be
    // older than the primary's secondary sequence number; each next entry must be N + 1.
    let mut expected: Option<u32> = None;
    let mut current = BaseBlock::parse(&image.head)?;
    let mut applied_range: Option<(u32, u32)> = None;
    for (l, log) in &usable {
        let mut s = summary(l, None);
        let start = expected.unwrap_or(log.base.primary_sequence);
        if expected.is_none() && start < base.secondary_sequence {
            s.note = Some(format!(
                "its entries start at {start}, older than the hive's sequence number {}",
                base.secondary_sequence
            ));
            report.logs.push(s);
            continue;
        }
        let mut want = start;
        let mut began = false;
        let mut gap = false;
        for e in &log.entries {
            if e.sequence < want && !began {
                continue; // already applied (stale entries may precede the first one we need)
            }
            if e.sequence != want {
                // A lower number is an older entry left behind in a reused log: the normal end.
                // A higher one means entries are missing.
                gap = e.sequence > want;
                s.note = Some(format!("stopped before the entry at offset 0x{:x}: sequence {} where {want} was expected", e.offset, e.sequence));
                break;
            }
            if let Err(why) = apply_entry(image, &mut current, e, l.name) {
                // An implausible entry is a damaged one: the replay stops before it, as it
                // does at a bad hash, and a writer must not trust the result blindly.
                s.note = Some(format!("stopped before a damaged entry: {why}"));
                report.problems.push(why.to_string());
                gap = true;
                break;
            }
            began = true;
            s.entries_applied += 1;
            s.pages_applied += e.pages.len();
            applied_range = Some((applied_range.map_or(e.sequence, |r| r.0), e.sequence));
            want = e.sequence.wrapping_add(1);
        }
        if !began && s.note.is_none() {
            s.note = Some(format!(
                "no valid entry with the expected sequence number {want}"
            ));
        }
        let mut lost = gap || !began;
        if s.note.is_none() {
            if let Some(d) = &log.damaged {
                // Windows stops at a damaged entry too. If it was the next one to apply (its
                // header still says so), what was logged from there on is lost; a damaged entry
                // with an older number is only a remnant of an earlier use of the file.
                if d.sequence.is_none_or(|seq| seq >= want) {
                    s.note = Some(format!(
                        "stopped at the damaged entry at offset 0x{:x}: {}",
                        d.offset, d.why
                    ));
                    lost = true;
                }
            }
        }
        if let (true, Some(note)) = (lost, &s.note) {
            report.warnings.push(format!("{}: {note}", l.name));
        }
        if began {
            expected = Some(want);
        }
        report.entries_applied += s.entries_applied;
        report.pages_applied += s.pages_applied;
        report.logs.push(s);
        if !began && expected.is_some() {
            break;
        }
    }
    report.sequence_range = applied_range;
    if let Some((_, last)) = applied_range {
        // Windows sets both sequence numbers to the last entry's before it writes the hive.
        put_u32(&mut image.head, 4, last);
        put_u32(&mut image.head, 8, last);
    } else if primary_valid {
        return Ok(()); // nothing applied: leave the primary as it was, `incomplete` is set by the caller
    }
    put_u32(&mut image.head, 40, current.hive_bins_size);
    let flags = u32_at(&image.head, 144).unwrap_or(0);
    put_u32(&mut image.head, 144, (flags & !1) | (current.flags & 1));
    seal(&mut image.head);
    report.hive_bins_after = current.hive_bins_size;
    Ok(())
}

/// Writes an entry's pages into the hive, growing it to the entry's hive-bins size first.
///
/// A hive grows by whole new bins, which are dirty and therefore logged in the entry that grows
/// it (the real logs in testdata/ do exactly that): an entry that claims more growth than the
/// bytes of the pages it carries is refused, so that a small log cannot make us allocate up to
/// [`MAX_HIVE_BINS`].
fn apply_entry<'a>(
    image: &mut Image<'a>,
    current: &mut BaseBlock,
    e: &Entry<'a>,
    log: &str,
) -> Result<()> {
    let have = (current.hive_bins_size as usize).max(image.len.saturating_sub(BASE_BLOCK_SIZE));
    let carried: usize = e.pages.iter().map(|(_, p)| p.len()).sum();
    if e.hive_bins as usize > have.saturating_add(carried) {
        return Err(Error::Log {
            log: log.to_string(),
            what: format!(
                "the entry at offset 0x{:x} (sequence {}) would grow the hive-bins data from 0x{have:x} to 0x{:x} bytes but carries only 0x{carried:x} bytes of pages",
                e.offset, e.sequence, e.hive_bins
            ),
        });
    }
    image.len = image.len.max(BASE_BLOCK_SIZE + e.hive_bins as usize);
    for (off, page) in &e.pages {
        // Inside the hive-bins size: checked in `parse_entry`.
        image.writes.push((BASE_BLOCK_SIZE + *off as usize, page));
    }
    current.hive_bins_size = e.hive_bins;
    current.flags = (current.flags & !1) | (e.flags & 1);
    current.primary_sequence = e.sequence;
    current.secondary_sequence = e.sequence;
    Ok(())
}

fn replay_old<'a>(
    image: &mut Image<'a>,
    base: &BaseBlock,
    logs: &[(LogInput<'a>, Option<BaseBlock>)],
    report: &mut Replay,
) -> Result<()> {
    // The timestamp that ties a log to its primary: the base block's, or the first bin's when
    // the base block is invalid.
    let stamp = if base.checksum_ok() {
        base.last_written
    } else {
        image.first_bin_stamp
    };
    let mut chosen = None;
    for (l, b) in logs {
        let why = match b {
            None if l.data.iter().all(|&x| x == 0) => Some("empty log".to_string()),
            None => Some("no valid base block".to_string()),
            Some(b) if !b.checksum_ok() => Some("its base block checksum is wrong".into()),
            Some(b) if b.file_type != 1 && b.file_type != 2 => Some(format!(
                "file type {} is not an old-format log",
                b.file_type
            )),
            Some(b) if b.primary_sequence != b.secondary_sequence => {
                Some("its own sequence numbers differ (it was being written)".into())
            }
            Some(b) if b.last_written != stamp => Some(
                "its timestamp does not match the hive's: it belongs to an earlier write".into(),
            ),
            Some(_) if chosen.is_some() => Some("another log was already applied".into()),
            Some(b) => {
                chosen = Some((*l, b.clone()));
                None
            }
        };
        if why.is_some() {
            report.logs.push(summary(l, why));
        }
    }
    let Some((l, lb)) = chosen else { return Ok(()) };
    let mut s = summary(&l, None);
    let data = l.data;
    if data.get(SECTOR..SECTOR + 4) != Some(b"DIRT") {
        return Err(Error::Log {
            log: l.name.into(),
            what: "no \"DIRT\" dirty vector at offset 0x200".into(),
        });
    }
    let size = lb.hive_bins_size as usize;
    if !size.is_multiple_of(4096)
        || lb.hive_bins_size > MAX_HIVE_BINS
        || BASE_BLOCK_SIZE + size > image.len
    {
        return Err(Error::Log {
            log: l.name.into(),
            what: format!("hive-bins size 0x{size:x} in its base block does not fit the hive"),
        });
    }
    let bits = size / SECTOR;
    let bitmap = data
        .get(SECTOR + 4..SECTOR + 4 + bits.div_ceil(8))
        .ok_or_else(|| Error::Log {
            log: l.name.into(),
            what: "dirty vector is truncated".into(),
        })?;
    let mut page_at = (SECTOR + 4 + bitmap.len()).div_ceil(SECTOR) * SECTOR;
    for bit in 0..bits {
        if bitmap[bit / 8] & (1 << (bit % 8)) == 0 {
            continue;
        }
        let page = data
            .get(page_at..page_at + SECTOR)
            .ok_or_else(|| Error::Log {
                log: l.name.into(),
                what: format!(
                    "dirty page {bit} should be at offset 0x{page_at:x}, past the end of the log"
                ),
            })?;
        image.writes.push((BASE_BLOCK_SIZE + bit * SECTOR, page));
        page_at += SECTOR;
        s.pages_applied += 1;
    }
    report.pages_applied += s.pages_applied;
    report.logs.push(s);
    if !base.checksum_ok() {
        let mut restored = data[..SECTOR].to_vec();
        restored.resize(BASE_BLOCK_SIZE, 0);
        image.head = restored;
        report.base_block_from = Some(l.name.to_string());
    }
    let seq = lb.primary_sequence.max(base.primary_sequence);
    put_u32(&mut image.head, 4, seq);
    put_u32(&mut image.head, 8, seq);
    put_u32(&mut image.head, 28, 0);
    seal(&mut image.head);
    Ok(())
}

/// A log belongs to a hive when their resource-manager ids (copied into every log's base
/// block) agree. Hives written by tools that leave the id null cannot be told apart: accepted.
fn same_hive(primary: &BaseBlock, log: &BaseBlock) -> bool {
    primary.rm_id == [0; 16] || log.rm_id == [0; 16] || primary.rm_id == log.rm_id
}

fn guid(b: &[u8; 16]) -> String {
    format!(
        "{{{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}}}",
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// The names of the logs that may belong to a hive named `hive` (e.g. `SYSTEM`), chosen among
/// `siblings` case-insensitively: `.LOG1`, `.LOG2`, then `.LOG`.
pub fn log_names<'a>(hive: &str, siblings: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let siblings: Vec<&str> = siblings.into_iter().collect();
    let mut out = Vec::new();
    for ext in ["LOG1", "LOG2", "LOG"] {
        let want = format!("{hive}.{ext}");
        if let Some(s) = siblings.iter().find(|s| s.eq_ignore_ascii_case(&want)) {
            out.push(*s);
        }
    }
    out
}

#[cfg(test)]
mod growth_tests {
    use super::*;

    /// Re-seals both hashes of the entry at `off` after its header was changed.
    fn reseal_entry(log: &mut [u8], off: usize) {
        let size = u32_at(log, off + 4).unwrap() as usize;
        let h1 = marvin32(LOG_SEED, &log[off + ENTRY_HEADER..off + size]);
        log[off + 24..off + 32].copy_from_slice(&h1.to_le_bytes());
        let h2 = marvin32(LOG_SEED, &log[off..off + 32]);
        log[off + 32..off + 40].copy_from_slice(&h2.to_le_bytes());
    }

    /// Found while writing the `log_replay` fuzz target (which re-seals entries so that the
    /// fuzzer gets past their hashes): an entry with valid hashes whose hive-bins size says
    /// 2 GiB made the replay grow the hive to 2 GiB, although the entry carried three pages. A hive grows by whole new bins, which are dirty and so logged in the entry that
    /// grows it: an entry may grow the hive by at most the bytes of the pages it carries.
    #[test]
    fn replay_huge_hive_bins_allocation() {
        let primary = fixtures::bytes("hives/win10-dirty-SYSTEM");
        let mut log1 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1");
        assert_eq!(&log1[SECTOR..SECTOR + 4], b"HvLE");
        put_u32(&mut log1, SECTOR + 16, 0x7FFF_F000);
        reseal_entry(&mut log1, SECTOR);
        let logs = [LogInput {
            name: "SYSTEM.LOG1",
            data: &log1,
        }];
        // The implausible entry is treated as damaged: nothing is applied from it on, the hive
        // keeps its size, and the report says why (a writer refuses while `problems` is set).
        let r = replay(&primary, &logs).unwrap();
        assert_eq!(r.report.entries_applied, 0);
        assert_eq!(r.bytes.len(), primary.len());
        assert!(r.report.incomplete);
        assert!(
            r.report.problems.iter().any(|p| p.contains("would grow")),
            "{:?}",
            r.report.problems
        );

        // Growth the entry's pages account for is still applied (the real logs grow the hive by
        // 192 KiB in two entries: see tests/replay.rs).
        let mut log1 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1");
        let bins = u32_at(&log1, SECTOR + 16).unwrap();
        put_u32(&mut log1, SECTOR + 16, bins + 4096);
        reseal_entry(&mut log1, SECTOR);
        let logs = [LogInput {
            name: "SYSTEM.LOG1",
            data: &log1,
        }];
        let r = replay(&primary, &logs).unwrap();
        assert_eq!(r.report.entries_applied, 4);
        assert_eq!(
            r.bytes.len(),
            primary.len().max(BASE_BLOCK_SIZE + bins as usize + 4096)
        );
    }
}
