//! The sizes a file's names carry. Every `$FILE_NAME` attribute of a file holds a copy of its
//! allocated and real sizes, and so does the key of each entry for it in its parent directory's
//! `$I30` index: in the `$INDEX_ROOT` attribute of the parent's MFT record, or in an INDX block
//! of its `$INDEX_ALLOCATION`. Windows' chkdsk compares those copies with the `$DATA`
//! attribute ("minor file name errors"), and directory listings show them, so a growth rewrites
//! them all. Nothing is written here: the changes are [`Patch`]es of whole MFT records and INDX
//! blocks (update sequence applied again), for the caller's journal.
//!
//! Sources: the Linux-NTFS documentation (flatcap.github.io/linux-ntfs), "Attributes /
//! $FILE_NAME", "Attributes / $INDEX_ROOT", "Attributes / $INDEX_ALLOCATION", "Concepts /
//! Index Record", "Concepts / Fixup"; ntfs-3g's layout.h (FILE_NAME_ATTR, INDEX_ENTRY_HEADER).

use std::io::{Read, Seek, SeekFrom};

use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsIndexRoot;
use ntfs::NtfsAttributeType;

use crate::error::{io_at, Error, Result};
use crate::grow::{GrowRefusal, Patch};
use crate::volume::Volume;

/// Attribute type codes.
const ATTR_TYPE_FILE_NAME: u32 = 0x30;
const ATTR_TYPE_END: u32 = 0xffff_ffff;
/// At most this many attributes are walked in one record (a 1 KiB record holds far fewer).
const MAX_ATTRIBUTES: usize = 256;
/// At most this many names for one file: a hive has one (or a long name and its DOS name).
const MAX_NAMES: usize = 16;
/// `$FILE_NAME` value: parent directory reference, allocated size, real size, name length (in
/// UTF-16 units) and the name itself.
const FN_PARENT: usize = 0x00;
const FN_ALLOCATED: usize = 0x28;
const FN_REAL: usize = 0x30;
const FN_NAME_LEN: usize = 0x40;
const FN_NAME: usize = 0x42;
/// Index entry: file reference, entry length, key length, flags; the key follows at 0x10.
const IE_LENGTH: usize = 0x08;
const IE_KEY_LENGTH: usize = 0x0a;
const IE_KEY: usize = 0x10;
/// Update sequence stride: the last two bytes of every 512-byte block of an MFT record or INDX
/// block, whatever the sector size.
const FIXUP_STRIDE: usize = 512;
/// INDX blocks are 4 KiB on every Windows; larger ones are refused before they are read.
const MAX_INDEX_BLOCK: u32 = 64 * 1024;
/// The low 48 bits of a file reference are the record number, the high 16 its sequence number.
const RECORD_MASK: u64 = 0xffff_ffff_ffff;

/// One name of a file, as its `$FILE_NAME` attribute holds it.
#[derive(Clone, Debug)]
pub(crate) struct Name {
    /// The parent directory's MFT record number.
    parent: u64,
    /// The name's UTF-16 code units.
    units: Vec<u16>,
}

fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The `$FILE_NAME` values of an MFT record (fixups applied): (offset of the value in the
/// record, the name). `Err` names what is malformed.
fn file_names(record: &[u8]) -> std::result::Result<Vec<(usize, Name)>, String> {
    let mut at = u16_le(record, 0x14).ok_or("no first attribute offset")? as usize;
    let mut out = Vec::new();
    for _ in 0..MAX_ATTRIBUTES {
        let ty =
            u32_le(record, at).ok_or_else(|| format!("attribute at {at:#x} beyond the record"))?;
        if ty == ATTR_TYPE_END {
            return Ok(out);
        }
        let len = u32_le(record, at + 4).ok_or("attribute beyond the record")? as usize;
        if len < 0x18 || at.checked_add(len).is_none_or(|e| e > record.len()) {
            return Err(format!(
                "attribute at {at:#x} has length {len:#x}, out of the record"
            ));
        }
        if ty == ATTR_TYPE_FILE_NAME {
            // $FILE_NAME is always resident.
            if record[at + 8] != 0 {
                return Err(format!("non-resident $FILE_NAME at {at:#x}"));
            }
            let value_len = u32_le(record, at + 0x10).unwrap_or(0) as usize;
            let value = at + u16_le(record, at + 0x14).unwrap_or(0) as usize;
            let units = record.get(value + FN_NAME_LEN).copied().unwrap_or(0) as usize;
            let name_end = value + FN_NAME + 2 * units;
            if value_len < FN_NAME || value + value_len > at + len || name_end > value + value_len {
                return Err(format!(
                    "$FILE_NAME at {at:#x}: value {value:#x}+{value_len:#x} does not hold its {units}-unit name inside the attribute"
                ));
            }
            if out.len() >= MAX_NAMES {
                return Err(format!("more than {MAX_NAMES} names"));
            }
            let parent = u64_le(record, value + FN_PARENT).unwrap_or(0) & RECORD_MASK;
            let units = record[value + FN_NAME..name_end]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            out.push((value, Name { parent, units }));
        }
        at += len;
    }
    Err(format!("more than {MAX_ATTRIBUTES} attributes"))
}

/// Writes `allocated` and `size` into every `$FILE_NAME` of `record` (fixups applied) and
/// returns the names.
pub(crate) fn set_record_names(
    record: &mut [u8],
    allocated: u64,
    size: u64,
) -> std::result::Result<Vec<Name>, String> {
    let names = file_names(record)?;
    for (value, _) in &names {
        record[value + FN_ALLOCATED..value + FN_ALLOCATED + 8]
            .copy_from_slice(&allocated.to_le_bytes());
        record[value + FN_REAL..value + FN_REAL + 8].copy_from_slice(&size.to_le_bytes());
    }
    Ok(names.into_iter().map(|(_, n)| n).collect())
}

/// Attribute type of `$INDEX_ROOT`, and the index entry flag of the last entry of a node.
const ATTR_TYPE_INDEX_ROOT: u32 = 0x90;
const IE_FLAG_LAST: u16 = 0x02;
/// At most this many entries in one `$INDEX_ROOT` (a 1 KiB record holds a dozen).
const MAX_ROOT_ENTRIES: usize = 1024;

/// The offset, in a directory's MFT record (fixups applied), of the entry of its `$I30`
/// `$INDEX_ROOT` that points to MFT record `record` under the name `units`.
fn root_entry(dir: &[u8], record: u64, units: &[u16]) -> std::result::Result<usize, String> {
    let mut at = u16_le(dir, 0x14).ok_or("no first attribute offset")? as usize;
    for _ in 0..MAX_ATTRIBUTES {
        let ty =
            u32_le(dir, at).ok_or_else(|| format!("attribute at {at:#x} beyond the record"))?;
        if ty == ATTR_TYPE_END {
            break;
        }
        let len = u32_le(dir, at + 4).ok_or("attribute beyond the record")? as usize;
        if len < 0x18 || at.checked_add(len).is_none_or(|e| e > dir.len()) {
            return Err(format!(
                "attribute at {at:#x} has length {len:#x}, out of the record"
            ));
        }
        let name_len = dir[at + 9] as usize;
        let name_at = at + u16_le(dir, at + 0x0a).unwrap_or(0) as usize;
        let is_i30 = name_len == 4
            && dir.get(name_at..name_at + 8) == Some(&[b'$', 0, b'I', 0, b'3', 0, b'0', 0][..]);
        if ty != ATTR_TYPE_INDEX_ROOT || !is_i30 || dir[at + 8] != 0 {
            at += len;
            continue;
        }
        let value_len = u32_le(dir, at + 0x10).unwrap_or(0) as usize;
        let value = at + u16_le(dir, at + 0x14).unwrap_or(0) as usize;
        let end = value + value_len;
        // Index root: 16 bytes, then the node header (entries offset, relative to it).
        let header = value + 0x10;
        if end > at + len || header + 0x10 > end {
            return Err(format!(
                "$INDEX_ROOT value {value:#x}+{value_len:#x} out of its attribute"
            ));
        }
        let mut e = header + u32_le(dir, header).unwrap_or(0) as usize;
        for _ in 0..MAX_ROOT_ENTRIES {
            let entry_len = u16_le(dir, e + IE_LENGTH).unwrap_or(0) as usize;
            let key_len = u16_le(dir, e + IE_KEY_LENGTH).unwrap_or(0) as usize;
            let flags = u16_le(dir, e + 0x0c).unwrap_or(0);
            if entry_len < IE_KEY || e + entry_len > end {
                return Err(format!(
                    "index entry at {e:#x} of length {entry_len:#x} out of $INDEX_ROOT"
                ));
            }
            if flags & IE_FLAG_LAST != 0 {
                break;
            }
            let key = e + IE_KEY;
            let n = dir.get(key + FN_NAME_LEN).copied().unwrap_or(0) as usize;
            if key_len >= FN_NAME
                && key + FN_NAME + 2 * n <= e + entry_len
                && u64_le(dir, e).map(|r| r & RECORD_MASK) == Some(record)
                && n == units.len()
                && dir[key + FN_NAME..key + FN_NAME + 2 * n]
                    .chunks_exact(2)
                    .zip(units)
                    .all(|(c, &u)| u16::from_le_bytes([c[0], c[1]]) == u)
            {
                return Ok(e);
            }
            e += entry_len;
        }
        return Err(format!("no entry for MFT record {record}"));
    }
    Err("no $I30 $INDEX_ROOT".into())
}

/// Applies the update sequence of a multi-sector structure (an MFT record or an INDX block)
/// whose bytes are `buf`: checks the signature and that every 512-byte block ends in the update
/// sequence number, and puts the saved bytes back. `Err` says what is wrong.
fn unprotect(buf: &mut [u8], signature: &[u8; 4]) -> std::result::Result<(), String> {
    if buf.get(..4) != Some(signature.as_slice()) {
        return Err(format!(
            "signature {:?}, expected {:?}",
            String::from_utf8_lossy(buf.get(..4).unwrap_or_default()),
            String::from_utf8_lossy(signature)
        ));
    }
    let usa = u16_le(buf, 4).unwrap_or(0) as usize;
    let count = u16_le(buf, 6).unwrap_or(0) as usize;
    let blocks = buf.len() / FIXUP_STRIDE;
    if count != blocks + 1
        || usa
            .checked_add(2 * count)
            .is_none_or(|e| e > FIXUP_STRIDE - 2)
    {
        return Err(format!(
            "update sequence of {count} entries at {usa:#x}, expected {} inside the first sector",
            blocks + 1
        ));
    }
    let usn = [buf[usa], buf[usa + 1]];
    for i in 1..count {
        let at = i * FIXUP_STRIDE - 2;
        if buf[at..at + 2] != usn {
            return Err(format!(
                "fixup mismatch: sector {i} ends in {:02x}{:02x}, the update sequence number is {:02x}{:02x}",
                buf[at + 1], buf[at], usn[1], usn[0]
            ));
        }
        let (a, b) = (buf[usa + 2 * i], buf[usa + 2 * i + 1]);
        buf[at] = a;
        buf[at + 1] = b;
    }
    Ok(())
}

/// The on-disk form of `fixed` (bytes that [`unprotect`] accepted, then changed): the last two
/// bytes of every 512-byte block move into the update sequence array, the block ends get the
/// update sequence number back. The number is kept, as `RawRecord::protect` does: blocks whose
/// bytes did not change stay identical on disk.
fn protect(fixed: &[u8]) -> Vec<u8> {
    let mut out = fixed.to_vec();
    // Both checked by `unprotect` on the same bytes.
    let usa = u16_le(fixed, 4).unwrap_or(0) as usize;
    let usn = [fixed[usa], fixed[usa + 1]];
    for i in 1..=out.len() / FIXUP_STRIDE {
        let at = i * FIXUP_STRIDE - 2;
        out[usa + 2 * i] = fixed[at];
        out[usa + 2 * i + 1] = fixed[at + 1];
        out[at..at + 2].copy_from_slice(&usn);
    }
    out
}

/// A structure holding index entries for the file: the parent's MFT record or one INDX block.
struct Holder {
    /// "FILE" or "INDX".
    signature: &'static [u8; 4],
    /// Partition ranges (offset, length) of its bytes, in order (an INDX block may span runs).
    pieces: Vec<(u64, u64)>,
    /// Offsets of the index entries for the file inside it.
    entries: Vec<usize>,
    /// The parent directory (for messages).
    parent: u64,
}

impl Volume {
    /// The structures that hold the index entries of `names` (the names of MFT record
    /// `record`): each name is looked up in its parent's `$I30` index (case-insensitively,
    /// as Windows does) and the entry found must point to `record` and carry the name.
    fn name_holders<T: Read + Seek>(
        &self,
        fs: &mut T,
        record: u64,
        names: &[Name],
    ) -> Result<Vec<Holder>> {
        let mut holders: Vec<Holder> = Vec::new();
        for name in names {
            let text = String::from_utf16(&name.units).map_err(|_| Error::Corrupt {
                record,
                offset: 0,
                what: "a $FILE_NAME that is not valid UTF-16".into(),
            })?;
            let parent = self.ntfs.file(fs, name.parent)?;
            let parent_at = parent.position().value().map_or(0, |p| p.get());
            let corrupt = |what: String| Error::Corrupt {
                record: name.parent,
                offset: parent_at,
                what,
            };
            let (points, at) = {
                let index = parent.directory_index(fs)?;
                let mut finder = index.finder();
                let entry = NtfsFileNameIndex::find(&mut finder, &self.ntfs, fs, &text)
                    .ok_or_else(|| {
                        corrupt(format!(
                            "its $I30 index has no entry {text:?} for MFT record {record}"
                        ))
                    })??;
                (
                    entry.file_reference().file_record_number(),
                    entry.position().value().map(|p| p.get()),
                )
            };
            if points != record {
                return Err(corrupt(format!(
                    "its $I30 entry {text:?} points to MFT record {points}, not {record}"
                )));
            }
            let at =
                at.ok_or_else(|| corrupt(format!("its $I30 entry {text:?} has no position")))?;
            let record_size = u64::from(self.ntfs.file_record_size());
            let (signature, pieces, offset) = if at >= parent_at && at < parent_at + record_size {
                // In the parent's $INDEX_ROOT. The `ntfs` crate gives root entries positions
                // counted from the attribute, not from its value: the entry is found again
                // here, in the record itself.
                let (parent_record, _) = self.read_record(fs, name.parent)?;
                let offset = root_entry(parent_record.data(), record, &name.units)
                    .map_err(|e| corrupt(format!("its $INDEX_ROOT: {e}")))?;
                (b"FILE", vec![(parent_at, record_size)], offset)
            } else {
                let (pieces, offset) = self.index_block_of(fs, &parent, at, name.parent)?;
                (b"INDX", pieces, offset)
            };
            match holders.iter_mut().find(|h| h.pieces == pieces) {
                Some(h) if !h.entries.contains(&offset) => h.entries.push(offset),
                Some(_) => {}
                None => holders.push(Holder {
                    signature,
                    pieces,
                    entries: vec![offset],
                    parent: name.parent,
                }),
            }
        }
        Ok(holders)
    }

    /// The INDX block of `parent`'s `$I30` allocation that holds partition offset `at`: its
    /// partition pieces and the offset of `at` in it.
    fn index_block_of<T: Read + Seek>(
        &self,
        fs: &mut T,
        parent: &ntfs::NtfsFile<'_>,
        at: u64,
        parent_record: u64,
    ) -> Result<(Vec<(u64, u64)>, usize)> {
        let parent_at = parent.position().value().map_or(0, |p| p.get());
        let corrupt = |what: String| Error::Corrupt {
            record: parent_record,
            offset: parent_at,
            what,
        };
        let mut block_size = None;
        let mut runs = Vec::new();
        // Collected first: the runs are read through the same reader below.
        let mut found = Vec::new();
        for item in parent.attributes().attach(fs) {
            found.push(item?);
        }
        for item in &found {
            let attribute = item.to_attribute()?;
            if attribute.name()?.to_string_lossy() != "$I30" {
                continue;
            }
            match attribute.ty()? {
                NtfsAttributeType::IndexRoot => {
                    let root = attribute.resident_structured_value::<NtfsIndexRoot>()?;
                    block_size = Some(root.index_record_size());
                }
                NtfsAttributeType::IndexAllocation => match attribute.value(fs)? {
                    NtfsAttributeValue::NonResident(value) => {
                        let mut file_offset = 0u64;
                        for run in value.data_runs() {
                            let run = run?;
                            runs.push((
                                file_offset,
                                run.data_position().value().map(|p| p.get()),
                                run.allocated_size(),
                            ));
                            file_offset = file_offset.saturating_add(run.allocated_size());
                        }
                    }
                    _ => {
                        return Err(Error::CannotGrow {
                            path: format!("directory MFT record {parent_record}"),
                            record: parent_record,
                            why: GrowRefusal::DirectoryIndexSpread,
                        })
                    }
                },
                _ => {}
            }
        }
        let block = block_size.ok_or_else(|| corrupt("no $I30 $INDEX_ROOT".into()))?;
        if block == 0 || block > MAX_INDEX_BLOCK || !(block as usize).is_multiple_of(FIXUP_STRIDE) {
            return Err(corrupt(format!("$I30 index blocks of {block} bytes")));
        }
        let block = u64::from(block);
        let (run_start, pos, _) = runs
            .iter()
            .find(|(_, p, len)| p.is_some_and(|p| at >= p && at < p + len))
            .ok_or_else(|| {
                corrupt(format!(
                    "no run of its $I30 allocation holds the index entry at {at:#x}"
                ))
            })?;
        let in_allocation = run_start + (at - pos.unwrap_or(0));
        let block_start = in_allocation - in_allocation % block;
        let mut pieces = Vec::new();
        let mut from = block_start;
        let end = block_start + block;
        while from < end {
            let (run_start, pos, len) = runs
                .iter()
                .find(|(s, _, len)| from >= *s && from < s + len)
                .ok_or_else(|| {
                    corrupt(format!(
                        "no run of its $I30 allocation maps byte {from:#x} of it"
                    ))
                })?;
            let pos = pos.ok_or_else(|| {
                corrupt(format!(
                    "a sparse run of its $I30 allocation at byte {from:#x}"
                ))
            })?;
            let n = (run_start + len).min(end) - from;
            let p = pos + (from - run_start);
            match pieces.last_mut() {
                Some((s, l)) if *s + *l == p => *l += n,
                _ => pieces.push((p, n)),
            }
            from += n;
        }
        Ok((pieces, (in_allocation - block_start) as usize))
    }

    /// Patches that write `allocated` and `size` into the index entries of `names` (of MFT
    /// record `record`), one per piece of each MFT record or INDX block changed.
    pub(crate) fn name_patches<T: Read + Seek>(
        &self,
        fs: &mut T,
        record: u64,
        names: &[Name],
        allocated: u64,
        size: u64,
    ) -> Result<Vec<Patch>> {
        let mut out = Vec::new();
        for holder in self.name_holders(fs, record, names)? {
            let mut raw = Vec::new();
            for &(p, n) in &holder.pieces {
                let mut buf = vec![0u8; n as usize];
                fs.seek(SeekFrom::Start(p)).map_err(io_at(p))?;
                fs.read_exact(&mut buf).map_err(io_at(p))?;
                raw.extend_from_slice(&buf);
            }
            let at = holder.pieces[0].0;
            let corrupt = |what: String| Error::Corrupt {
                record: holder.parent,
                offset: at,
                what,
            };
            let mut fixed = raw.clone();
            unprotect(&mut fixed, holder.signature).map_err(|e| {
                corrupt(format!(
                    "{} holding an index entry: {e}",
                    String::from_utf8_lossy(holder.signature)
                ))
            })?;
            for &e in &holder.entries {
                let entry_len = u16_le(&fixed, e + IE_LENGTH).unwrap_or(0) as usize;
                let key_len = u16_le(&fixed, e + IE_KEY_LENGTH).unwrap_or(0) as usize;
                let key = e + IE_KEY;
                let points = u64_le(&fixed, e).map(|r| r & RECORD_MASK);
                if points != Some(record)
                    || key_len < FN_NAME
                    || key + key_len > e + entry_len
                    || e + entry_len > fixed.len()
                {
                    return Err(corrupt(format!(
                        "the index entry at {e:#x} is not one for MFT record {record} (entry length {entry_len:#x}, key length {key_len:#x})"
                    )));
                }
                fixed[key + FN_ALLOCATED..key + FN_ALLOCATED + 8]
                    .copy_from_slice(&allocated.to_le_bytes());
                fixed[key + FN_REAL..key + FN_REAL + 8].copy_from_slice(&size.to_le_bytes());
            }
            let after = protect(&fixed);
            let mut done = 0usize;
            for &(p, n) in &holder.pieces {
                let n = n as usize;
                out.push(Patch {
                    partition_offset: p,
                    before: raw[done..done + n].to_vec(),
                    after: after[done..done + n].to_vec(),
                });
                done += n;
            }
        }
        Ok(out)
    }

    /// Partition ranges (offset, length) of the MFT records and INDX blocks that hold the
    /// directory entries of `file` (what [`Volume::plan_grow`] changes besides the file's own
    /// record): for a journal that must tell whether a range it is about to write is one.
    pub fn name_ranges<T: Read + Seek>(
        &self,
        fs: &mut T,
        file: &crate::FileEntry,
    ) -> Result<Vec<(u64, u64)>> {
        crate::volume::guarded("finding a file's directory entries", || {
            let (record, _) = self.read_record(fs, file.record_number())?;
            let names = file_names(record.data()).map_err(|what| Error::Corrupt {
                record: record.number,
                offset: record.position,
                what,
            })?;
            let names: Vec<Name> = names.into_iter().map(|(_, n)| n).collect();
            Ok(self
                .name_holders(fs, file.record_number(), &names)?
                .into_iter()
                .flat_map(|h| h.pieces)
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_sequence_round_trips_over_two_sectors() {
        let mut block = vec![0u8; 1024];
        block[..4].copy_from_slice(b"INDX");
        block[4..6].copy_from_slice(&0x28u16.to_le_bytes());
        block[6..8].copy_from_slice(&3u16.to_le_bytes());
        block[0x28..0x2a].copy_from_slice(&[7, 0]);
        block[0x2a..0x2c].copy_from_slice(&[0xaa, 0xbb]);
        block[0x2c..0x2e].copy_from_slice(&[0xcc, 0xdd]);
        block[510..512].copy_from_slice(&[7, 0]);
        block[1022..1024].copy_from_slice(&[7, 0]);
        let disk = block.clone();
        unprotect(&mut block, b"INDX").unwrap();
        assert_eq!(&block[510..512], &[0xaa, 0xbb]);
        assert_eq!(&block[1022..1024], &[0xcc, 0xdd]);
        block[511] = 0x11;
        let back = protect(&block);
        assert_eq!(&back[510..512], &[7, 0]);
        assert_eq!(&back[0x2a..0x2c], &[0xaa, 0x11]);
        assert_eq!(back[1022..], disk[1022..]);
        let mut torn = disk.clone();
        torn[1022] = 8;
        assert!(unprotect(&mut torn, b"INDX")
            .unwrap_err()
            .contains("sector 2"));
    }
}
