//! The few MFT record fields that the `ntfs` crate does not expose (lowest VCN, initialized size,
//! compression unit, the resident value offset), read from the record itself.
//!
//! Sources: the Linux-NTFS documentation (flatcap.github.io/linux-ntfs), "Concepts / File Record",
//! "Concepts / Attribute Header" and "Concepts / Fixup".

use std::io::{Read, Seek, SeekFrom};

use crate::error::{io_at, Error, Result};

/// Update sequence stride: NTFS protects the last two bytes of every 512-byte block of a
/// record, whatever the sector size.
const FIXUP_STRIDE: usize = 512;

/// One MFT record after its update sequence (fixup) has been applied.
pub(crate) struct RawRecord {
    pub(crate) number: u64,
    pub(crate) position: u64,
    data: Vec<u8>,
}

/// The header fields of one attribute that this crate needs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AttrHeader {
    Resident {
        flags: u16,
        /// Offset of the value from the start of the record.
        value_offset: usize,
        value_length: usize,
    },
    NonResident {
        flags: u16,
        lowest_vcn: u64,
        /// `None` for the -1 that ntfs-3g writes for empty attributes.
        highest_vcn: Option<u64>,
        compression_unit: u8,
        allocated_size: u64,
        data_size: u64,
        initialized_size: u64,
    },
}

impl RawRecord {
    pub(crate) fn read<T: Read + Seek>(
        fs: &mut T,
        number: u64,
        position: u64,
        size: u32,
    ) -> Result<Self> {
        let mut data = vec![0u8; size as usize];
        fs.seek(SeekFrom::Start(position))
            .map_err(io_at(position))?;
        fs.read_exact(&mut data).map_err(io_at(position))?;
        let mut record = Self {
            number,
            position,
            data,
        };
        record.fixup()?;
        Ok(record)
    }

    fn corrupt(&self, offset: usize, what: String) -> Error {
        Error::Corrupt {
            record: self.number,
            offset: self.position.saturating_add(offset as u64),
            what,
        }
    }

    fn u16_at(&self, offset: usize) -> Result<u16> {
        self.data
            .get(offset..offset.wrapping_add(2))
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or_else(|| {
                self.corrupt(
                    offset,
                    format!("u16 at record offset {offset:#x} is outside the record"),
                )
            })
    }

    fn u32_at(&self, offset: usize) -> Result<u32> {
        self.data
            .get(offset..offset.wrapping_add(4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| {
                self.corrupt(
                    offset,
                    format!("u32 at record offset {offset:#x} is outside the record"),
                )
            })
    }

    fn u64_at(&self, offset: usize) -> Result<u64> {
        self.data
            .get(offset..offset.wrapping_add(8))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| {
                self.corrupt(
                    offset,
                    format!("u64 at record offset {offset:#x} is outside the record"),
                )
            })
    }

    fn fixup(&mut self) -> Result<()> {
        if self.data.get(0..4) != Some(b"FILE".as_slice()) {
            let found = self.data.get(0..4).unwrap_or_default().to_vec();
            return Err(self.corrupt(0, format!("signature {found:?}, expected \"FILE\"")));
        }
        let usa_offset = self.u16_at(4)? as usize;
        let usa_count = self.u16_at(6)? as usize;
        let blocks = self.data.len() / FIXUP_STRIDE;
        if usa_count != blocks + 1 {
            return Err(self.corrupt(
                6,
                format!(
                    "update sequence has {usa_count} entries, expected {}",
                    blocks + 1
                ),
            ));
        }
        let usn = self.u16_at(usa_offset)?;
        for i in 1..usa_count {
            let replacement = self.u16_at(usa_offset + 2 * i)?;
            let at = i * FIXUP_STRIDE - 2;
            let found = self.u16_at(at)?;
            if found != usn {
                return Err(self.corrupt(
                    at,
                    format!("fixup mismatch: block {i} ends in {found:#06x}, the update sequence number is {usn:#06x}"),
                ));
            }
            self.data[at..at + 2].copy_from_slice(&replacement.to_le_bytes());
        }
        Ok(())
    }

    /// The record's bytes with the fixup applied (what NTFS reads).
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// The on-disk form of `fixed` (a changed copy of [`RawRecord::data`], same length): the last
    /// two bytes of every 512-byte block move into the update sequence array and the block ends
    /// get the update sequence number back. The number is kept as it is: the check NTFS makes is
    /// only that every block end equals it, and keeping it leaves the blocks whose bytes did not
    /// change identical on disk (fewer bytes written and journaled).
    pub(crate) fn protect(&self, fixed: &[u8]) -> Result<Vec<u8>> {
        let mut out = fixed.to_vec();
        let usa_offset = self.u16_at(4)? as usize;
        let usn = self.u16_at(usa_offset)?.to_le_bytes();
        for i in 1..=out.len() / FIXUP_STRIDE {
            let at = i * FIXUP_STRIDE - 2;
            let slot = usa_offset + 2 * i;
            // Both positions were checked by `fixup` when the record was read.
            let (a, b) = (out[at], out[at + 1]);
            out[slot] = a;
            out[slot + 1] = b;
            out[at..at + 2].copy_from_slice(&usn);
        }
        Ok(out)
    }

    /// Whether `offset` (from the start of the record) is one of the bytes replaced by the fixup:
    /// patching those on disk would not change what NTFS reads.
    pub(crate) fn is_fixup_protected(offset: usize) -> bool {
        offset % FIXUP_STRIDE >= FIXUP_STRIDE - 2
    }

    /// Parses the header of the attribute starting `offset` bytes into the record.
    pub(crate) fn attribute(&self, offset: usize) -> Result<AttrHeader> {
        let length = self.u32_at(offset + 4)? as usize;
        let end = offset.checked_add(length).filter(|&e| e <= self.data.len());
        if end.is_none() || length < 0x18 {
            return Err(self.corrupt(
                offset,
                format!("attribute at record offset {offset:#x} has length {length:#x}, beyond the record or too short"),
            ));
        }
        let non_resident = *self.data.get(offset + 8).unwrap_or(&0) != 0;
        let flags = self.u16_at(offset + 0x0c)?;
        if !non_resident {
            let value_length = self.u32_at(offset + 0x10)? as usize;
            let value_offset = offset + self.u16_at(offset + 0x14)? as usize;
            if value_offset
                .checked_add(value_length)
                .is_none_or(|e| e > offset + length)
            {
                return Err(self.corrupt(
                    offset,
                    format!("resident value {value_offset:#x}+{value_length:#x} overruns its attribute (length {length:#x})"),
                ));
            }
            return Ok(AttrHeader::Resident {
                flags,
                value_offset,
                value_length,
            });
        }
        if length < 0x40 {
            return Err(self.corrupt(
                offset,
                format!("non-resident attribute length {length:#x} is shorter than its 0x40-byte header"),
            ));
        }
        let highest = self.u64_at(offset + 0x18)?;
        Ok(AttrHeader::NonResident {
            flags,
            lowest_vcn: self.u64_at(offset + 0x10)?,
            highest_vcn: (highest != u64::MAX).then_some(highest),
            compression_unit: *self.data.get(offset + 0x22).unwrap_or(&0),
            allocated_size: self.u64_at(offset + 0x28)?,
            data_size: self.u64_at(offset + 0x30)?,
            initialized_size: self.u64_at(offset + 0x38)?,
        })
    }
}
