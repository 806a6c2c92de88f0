//! A file's security descriptor: NTFS 3.x keeps one copy of each distinct descriptor in the
//! `$SDS` stream of `$Secure` (MFT record 9), and each file names its own by the security id in
//! its `$STANDARD_INFORMATION`. A `$SECURITY_DESCRIPTOR` attribute in the file's record (NTFS 1.x,
//! or a file given one explicitly) takes precedence.
//!
//! Sources: the NTFS documentation of the Linux-NTFS project ("$Secure", "$SDS", "$SII",
//! "$STANDARD_INFORMATION"); ntfs-3g's `layout.h` (SECURITY_DESCRIPTOR_HEADER, the 256 KiB
//! blocks of `$SDS` each followed by its mirror).
//!
//! `$SDS` is read entry by entry, each checked against its own stated position (`offset`), and
//! the entry whose security id matches is taken. `$SII` (the index by security id) only speeds
//! that lookup up; a damaged index cannot make this reader take a wrong descriptor.

use std::io::{Read, Seek};

use ntfs::NtfsAttributeType;

use crate::error::{Error, Result};
use crate::file::FileEntry;
use crate::volume::{guarded, Volume};

/// `$Secure`'s MFT record number.
const SECURE_RECORD: u64 = 9;
/// `$SDS` is written in blocks of 256 KiB, each followed by a mirror copy of itself.
const SDS_BLOCK: u64 = 256 * 1024;
/// The header before each descriptor in `$SDS`: hash, security id, offset, length.
const SDS_HEADER: usize = 20;
/// The largest `$SDS` read: real volumes hold a few megabytes (one entry per distinct
/// descriptor); a larger size is taken as damage rather than allocated.
const MAX_SDS: u64 = 64 * 1024 * 1024;

/// Where a file's descriptor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorSource {
    /// `$Secure:$SDS`, by the security id of `$STANDARD_INFORMATION`.
    Secure {
        /// The security id.
        id: u32,
        /// The entry's offset in `$SDS`.
        offset: u64,
    },
    /// The file's own `$SECURITY_DESCRIPTOR` attribute.
    Attribute,
}

/// A file's security descriptor (self-relative bytes) and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSecurity {
    /// The self-relative descriptor.
    pub descriptor: Vec<u8>,
    /// Where it was read.
    pub source: DescriptorSource,
}

impl Volume {
    /// The security descriptor of `file`. Errors name the file, the security id and what was
    /// wrong; a file whose security id `$SDS` does not hold is [`Error::NoDescriptor`].
    pub fn security<T: Read + Seek>(&self, fs: &mut T, file: &FileEntry) -> Result<FileSecurity> {
        guarded("reading a security descriptor", || {
            self.security_inner(fs, file)
        })
    }

    fn security_inner<T: Read + Seek>(
        &self,
        fs: &mut T,
        entry: &FileEntry,
    ) -> Result<FileSecurity> {
        let ntfs = self.ntfs();
        let file = ntfs.file(fs, entry.record)?;
        let mut attributes = file.attributes();
        while let Some(item) = attributes.next(fs) {
            let item = item?;
            let attribute = item.to_attribute()?;
            if attribute.ty()? != NtfsAttributeType::SecurityDescriptor {
                continue;
            }
            let len = attribute.value_length();
            if len > MAX_SDS {
                return Err(self.no_descriptor(entry, None, "$SECURITY_DESCRIPTOR is too large"));
            }
            let mut descriptor = vec![0u8; len as usize];
            attribute
                .value(fs)?
                .attach(fs)
                .read_exact(&mut descriptor)
                .map_err(|source| Error::Io { offset: 0, source })?;
            return Ok(FileSecurity {
                descriptor,
                source: DescriptorSource::Attribute,
            });
        }
        let id = file
            .info()?
            .security_id()
            .ok_or_else(|| self.no_descriptor(entry, None, "$STANDARD_INFORMATION has no security id (NTFS 1.x) and the record no $SECURITY_DESCRIPTOR"))?;
        let secure = ntfs.file(fs, SECURE_RECORD)?;
        let item = secure
            .data(fs, "$SDS")
            .ok_or_else(|| self.no_descriptor(entry, Some(id), "$Secure has no $SDS stream"))??;
        let attribute = item.to_attribute()?;
        let value = attribute.value(fs)?;
        let len = value.len();
        if len > MAX_SDS || len > self.facts().size {
            return Err(self.no_descriptor(
                entry,
                Some(id),
                &format!("$SDS claims {len} bytes, more than the {MAX_SDS} read"),
            ));
        }
        let mut sds = vec![0u8; len as usize];
        value
            .attach(fs)
            .read_exact(&mut sds)
            .map_err(|source| Error::Io { offset: 0, source })?;
        match find_in_sds(&sds, id) {
            Some((offset, descriptor)) => Ok(FileSecurity {
                descriptor: descriptor.to_vec(),
                source: DescriptorSource::Secure { id, offset },
            }),
            None => Err(self.no_descriptor(entry, Some(id), "$SDS holds no entry with this id")),
        }
    }

    fn no_descriptor(&self, entry: &FileEntry, id: Option<u32>, what: &str) -> Error {
        Error::NoDescriptor {
            path: entry.path().to_string(),
            security_id: id,
            what: what.to_string(),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The entry of `$SDS` with security id `id`: its offset and descriptor. Walks each 256 KiB block
/// (skipping its mirror); an entry must state its own offset and fit in its block.
pub fn find_in_sds(sds: &[u8], id: u32) -> Option<(u64, &[u8])> {
    let mut block = 0u64;
    while block < sds.len() as u64 {
        let end = (block + SDS_BLOCK).min(sds.len() as u64);
        let mut pos = block;
        while pos + SDS_HEADER as u64 <= end {
            let at = pos as usize;
            let entry_id = u32_at(sds, at + 4)?;
            let offset = u64::from(u32_at(sds, at + 8)?) | (u64::from(u32_at(sds, at + 12)?) << 32);
            let length = u64::from(u32_at(sds, at + 16)?);
            if offset != pos || length < SDS_HEADER as u64 || pos + length > end {
                // Free space at the end of the block, or damage: the next block.
                break;
            }
            if entry_id == id {
                return Some((pos, &sds[at + SDS_HEADER..(pos + length) as usize]));
            }
            // Entries start on 16-byte boundaries.
            pos = (pos + length + 15) & !15;
        }
        block += 2 * SDS_BLOCK;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, offset: u64, descriptor: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&((SDS_HEADER + descriptor.len()) as u32).to_le_bytes());
        e.extend_from_slice(descriptor);
        e.resize(e.len().div_ceil(16) * 16, 0);
        e
    }

    #[test]
    fn finds_entries_by_id_and_refuses_misplaced_ones() {
        let mut sds = entry(0x100, 0, b"first");
        let second = sds.len() as u64;
        sds.extend(entry(0x101, second, b"second"));
        assert_eq!(find_in_sds(&sds, 0x101), Some((second, &b"second"[..])));
        assert_eq!(find_in_sds(&sds, 0x100).map(|e| e.1), Some(&b"first"[..]));
        assert_eq!(find_in_sds(&sds, 0x102), None);
        // An entry that does not state its own position is not taken.
        let bad = entry(0x100, 0x40, b"first");
        assert_eq!(find_in_sds(&bad, 0x100), None);
        // A length past the data is not taken, and nothing panics on truncated input.
        assert_eq!(find_in_sds(&sds[..24], 0x100), None);
        // The next block starts after the mirror of the first.
        let mut two = vec![0u8; 2 * SDS_BLOCK as usize];
        two.extend(entry(7, 2 * SDS_BLOCK, b"far"));
        assert_eq!(find_in_sds(&two, 7).map(|e| e.1), Some(&b"far"[..]));
    }
}
