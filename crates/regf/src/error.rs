//! The one error type of the crate.

use thiserror::Error;

/// Everything that can go wrong while reading, replaying or editing a hive.
///
/// Offsets are given as file offsets (the position in the hive file, what a hex editor shows)
/// unless the variant says "cell", which is relative to the start of the hive-bins data
/// (file offset = 4096 + cell offset).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    #[error("file is {len} bytes long, too short for a 4096-byte regf base block")]
    TooShort { len: usize },

    #[error("at file offset 0x0: signature is {found:02x?}, expected \"regf\"")]
    BadSignature { found: [u8; 4] },

    #[error("base block: {what} is {value}, {why}")]
    BadBaseBlock {
        what: &'static str,
        value: u64,
        why: &'static str,
    },

    #[error("cell offset 0x{cell:x} (file offset 0x{file:x}): {what}", file = u64::from(*.cell) + 4096)]
    BadCell { cell: u32, what: String },

    #[error("cell offset 0x{cell:x} (file offset 0x{file:x}): expected a {expected} record, found signature {found:02x?}", file = u64::from(*.cell) + 4096)]
    WrongRecord {
        cell: u32,
        expected: &'static str,
        found: [u8; 2],
    },

    #[error("hive bin at file offset 0x{file:x}: {what}")]
    BadBin { file: u64, what: String },

    #[error("key path {path:?}: {what}")]
    Path { path: String, what: String },

    #[error("nesting deeper than {limit} keys at cell offset 0x{cell:x}: the hive has a cycle or is hostile")]
    TooDeep { cell: u32, limit: usize },

    #[error("transaction log {log}: {what}")]
    Log { log: String, what: String },

    #[error("edit refused: {0}")]
    Edit(String),

    #[error("security descriptor, at byte 0x{offset:x} of the descriptor: {what}")]
    BadSecurityDescriptor { offset: usize, what: String },

    #[error("no room in the hive: the edit needs a free cell of {needed} bytes, the largest free cell is {largest} bytes, and no hive bin may be appended within the allowed file length (winrescue never grows a hive unless its caller allows it)")]
    NoRoom { needed: u32, largest: u32 },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
