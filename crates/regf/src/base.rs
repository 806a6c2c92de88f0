//! The 4096-byte base block at the start of every hive file.
//!
//! Sources: msuhanov/regf, "Windows registry file format specification", section "Base block".

use serde::Serialize;

use crate::bytes::{slice, u32_at, u64_at};
use crate::{Error, Result};

/// Size of the base block; hive-bins data starts right after it.
pub const BASE_BLOCK_SIZE: usize = 4096;
/// The checksum covers the first 508 bytes and is stored at 508.
const CHECKSUM_OFFSET: usize = 508;

/// A parsed copy of the fields of a base block that winrescue uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseBlock {
    pub primary_sequence: u32,
    pub secondary_sequence: u32,
    /// FILETIME (100 ns since 1601-01-01 UTC). Not updated by Windows 8.1 and later.
    pub last_written: u64,
    pub major_version: u32,
    pub minor_version: u32,
    /// 0 primary file, 1 old-format log, 2 Windows 2000 log, 6 new-format log.
    pub file_type: u32,
    pub file_format: u32,
    /// Cell offset of the root key node.
    pub root_cell: u32,
    /// Size of the hive-bins data in bytes (a multiple of 4096).
    pub hive_bins_size: u32,
    pub clustering_factor: u32,
    /// The debugging file name Windows stores (UTF-16LE, up to 32 characters).
    pub file_name: String,
    /// Flags at offset 144 (bit 0: KTM locked the hive).
    pub flags: u32,
    /// Resource manager id (offset 112): identifies the hive instance; copied into its logs.
    #[serde(skip)]
    pub rm_id: [u8; 16],
    pub stored_checksum: u32,
    pub computed_checksum: u32,
}

impl BaseBlock {
    /// Parses the first 4096 bytes of a hive file (or the first 512 bytes of a log file, which
    /// hold a partial copy: every field used here lies in the first 512 bytes).
    pub fn parse(data: &[u8]) -> Result<BaseBlock> {
        if data.len() < 512 {
            return Err(Error::TooShort { len: data.len() });
        }
        let sig: [u8; 4] = [data[0], data[1], data[2], data[3]];
        if &sig != b"regf" {
            return Err(Error::BadSignature { found: sig });
        }
        // Every offset below is < 512 and data.len() >= 512: the reads cannot fail.
        let u32f = |off| u32_at(data, off).unwrap_or(0);
        let name_bytes = slice(data, 48, 64).unwrap_or(&[]);
        let units: Vec<u16> = name_bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Ok(BaseBlock {
            primary_sequence: u32f(4),
            secondary_sequence: u32f(8),
            last_written: u64_at(data, 12).unwrap_or(0),
            major_version: u32f(20),
            minor_version: u32f(24),
            file_type: u32f(28),
            file_format: u32f(32),
            root_cell: u32f(36),
            hive_bins_size: u32f(40),
            clustering_factor: u32f(44),
            file_name: String::from_utf16_lossy(&units),
            flags: u32f(144),
            rm_id: slice(data, 112, 16)
                .and_then(|s| s.try_into().ok())
                .unwrap_or([0; 16]),
            stored_checksum: u32f(CHECKSUM_OFFSET),
            computed_checksum: checksum(data),
        })
    }

    /// The checksum stored in the block matches its content.
    pub fn checksum_ok(&self) -> bool {
        self.stored_checksum == self.computed_checksum
    }

    /// Windows treats a hive as dirty (needing recovery from its logs) when the sequence numbers
    /// differ or the checksum is wrong.
    pub fn is_dirty(&self) -> bool {
        self.primary_sequence != self.secondary_sequence || !self.checksum_ok()
    }

    /// Checks the fields a reader relies on; the checker reports the rest.
    pub fn validate(&self) -> Result<()> {
        if self.major_version != 1 {
            return Err(Error::BadBaseBlock {
                what: "major version",
                value: self.major_version.into(),
                why: "expected 1",
            });
        }
        if !(1..=6).contains(&self.minor_version) {
            return Err(Error::BadBaseBlock {
                what: "minor version",
                value: self.minor_version.into(),
                why: "expected 1 to 6",
            });
        }
        if !self.hive_bins_size.is_multiple_of(4096) {
            return Err(Error::BadBaseBlock {
                what: "hive-bins data size",
                value: self.hive_bins_size.into(),
                why: "not a multiple of 4096",
            });
        }
        Ok(())
    }
}

/// XOR-32 of the first 508 bytes, with the two reserved results remapped as Windows does
/// (0xFFFFFFFF becomes 0xFFFFFFFE, 0 becomes 1).
pub fn checksum(block: &[u8]) -> u32 {
    let mut c = 0u32;
    for chunk in block[..CHECKSUM_OFFSET.min(block.len())].chunks_exact(4) {
        c ^= u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    match c {
        0xFFFF_FFFF => 0xFFFF_FFFE,
        0 => 1,
        c => c,
    }
}

/// Rewrites the checksum field of a base block in place.
pub fn seal(block: &mut [u8]) {
    let c = checksum(block);
    crate::bytes::put_u32(block, CHECKSUM_OFFSET, c);
}
