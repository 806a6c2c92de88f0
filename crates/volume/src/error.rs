//! The crate's one error type.

use std::io;

/// Everything that can go wrong while reading or writing an NTFS volume.
///
/// Offsets are byte offsets from the start of the partition (the reader given to
/// [`Volume::open`](crate::Volume::open)) unless a message says "file offset".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the partition failed.
    #[error("I/O error at partition offset {offset:#x}: {source}")]
    Io {
        /// Where the failed access started.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },

    /// The boot sector carries BitLocker's OEM id: the NTFS inside is encrypted.
    #[error(
        "BitLocker-encrypted volume (OEM id \"-FVE-FS-\" at partition offset 0x3): \
         it must be unlocked before it can be read"
    )]
    BitLocker,

    /// The boot sector is not an NTFS one.
    #[error(
        "not an NTFS volume: OEM id at partition offset 0x3 is {found:?}, expected \"NTFS    \""
    )]
    NotNtfs {
        /// The 8 bytes found, lossily decoded.
        found: String,
    },

    /// The `ntfs` crate rejected an on-disk structure (its message names the position).
    #[error("NTFS structure error: {0}")]
    Ntfs(#[from] ntfs::NtfsError),

    /// The `ntfs` crate panicked on damaged input; the panic was caught.
    #[error("the NTFS parser panicked on damaged input while {during}")]
    ParserPanic {
        /// What was being done.
        during: &'static str,
    },

    /// An on-disk structure that this crate parses itself is inconsistent.
    #[error("corrupt MFT record {record} (at partition offset {offset:#x}): {what}")]
    Corrupt {
        /// MFT record number.
        record: u64,
        /// Partition offset of the record or of the attribute concerned.
        offset: u64,
        /// What is wrong, with the expected and actual values.
        what: String,
    },

    /// The path is empty or malformed.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A path component does not exist.
    #[error("{path}: not found ({component:?} is missing)")]
    NotFound {
        /// The path as given.
        path: String,
        /// The first component that was not found.
        component: String,
    },

    /// A path component that should be a directory is a file.
    #[error("{path}: {component:?} is not a directory")]
    NotADirectory {
        /// The path as given.
        path: String,
        /// The component that is a file.
        component: String,
    },

    /// A directory index entry points to an MFT record that has been reused since.
    #[error(
        "{path}: stale directory entry: MFT record {record} has sequence number {actual}, \
         the index entry expects {expected}"
    )]
    StaleEntry {
        /// The path as given.
        path: String,
        /// MFT record number.
        record: u64,
        /// Sequence number in the index entry.
        expected: u16,
        /// Sequence number in the MFT record.
        actual: u16,
    },

    /// The file's security descriptor cannot be found.
    #[error("{path}: no security descriptor (security id {security_id:?}): {what}")]
    NoDescriptor {
        /// The file.
        path: String,
        /// Its security id, when it has one.
        security_id: Option<u32>,
        /// What is missing.
        what: String,
    },

    /// The file has no unnamed `$DATA` attribute (a directory, or a damaged record).
    #[error("{path}: no unnamed $DATA attribute in MFT record {record}")]
    NoData {
        /// Path of the file.
        path: String,
        /// MFT record number.
        record: u64,
    },

    /// The file's data lives inside its MFT record: writing it would change NTFS metadata.
    #[error(
        "{path}: its data is resident in MFT record {record} (value at partition offset \
         {offset:#x}); in-place writes only go into clusters that a file owns"
    )]
    Resident {
        /// Path of the file.
        path: String,
        /// MFT record number.
        record: u64,
        /// Partition offset of the resident value.
        offset: u64,
    },

    /// The file is NTFS-compressed: its clusters hold LZNT1 data, not the file's bytes.
    #[error("{path}: NTFS-compressed (attribute flags {flags:#06x}, MFT record {record})")]
    Compressed {
        /// Path of the file.
        path: String,
        /// MFT record number.
        record: u64,
        /// The `$DATA` attribute flags.
        flags: u16,
    },

    /// The file is EFS-encrypted: its clusters hold ciphertext.
    #[error("{path}: EFS-encrypted (attribute flags {flags:#06x}, MFT record {record})")]
    Encrypted {
        /// Path of the file.
        path: String,
        /// MFT record number.
        record: u64,
        /// The `$DATA` attribute flags.
        flags: u16,
    },

    /// A write would touch a sparse run: there is no cluster to write into.
    #[error(
        "{path}: file range {start:#x}..{end:#x} touches a sparse run at file offset \
         {sparse_offset:#x} (no clusters allocated there)"
    )]
    SparseRange {
        /// Path of the file.
        path: String,
        /// First byte of the requested range (file offset).
        start: u64,
        /// End of the requested range (file offset, exclusive).
        end: u64,
        /// File offset of the sparse run.
        sparse_offset: u64,
    },

    /// A write would go past the end of the file (files never grow here).
    #[error("{path}: file range {start:#x}..{end:#x} goes past the file size {size:#x}")]
    PastEnd {
        /// Path of the file.
        path: String,
        /// First byte of the requested range.
        start: u64,
        /// End of the requested range (exclusive), or `u64::MAX` on overflow.
        end: u64,
        /// The file's size.
        size: u64,
    },

    /// A write would go past the valid data length: Windows would read zeros there anyway.
    #[error(
        "{path}: file range {start:#x}..{end:#x} goes past the valid data length {valid:#x} \
         (Windows reads zeros beyond it)"
    )]
    PastValidData {
        /// Path of the file.
        path: String,
        /// First byte of the requested range.
        start: u64,
        /// End of the requested range (exclusive).
        end: u64,
        /// The initialized size of the `$DATA` attribute.
        valid: u64,
    },

    /// The data runs do not cover the file's size.
    #[error("{path}: no data run maps file offset {file_offset:#x} (MFT record {record})")]
    Unmapped {
        /// Path of the file.
        path: String,
        /// MFT record number.
        record: u64,
        /// The file offset that no run covers.
        file_offset: u64,
    },

    /// The volume's dirty flag is set: Windows will run chkdsk; do not write.
    #[error(
        "the volume is dirty ($VOLUME_INFORMATION flags {flags:#06x}): Windows did not \
         unmount it cleanly; writing is refused"
    )]
    Dirty {
        /// The volume flags.
        flags: u16,
    },

    /// Windows is hibernated (or Fast Startup left a session) on this volume: do not write.
    #[error(
        "the volume is hibernated: \\hiberfil.sys starts with {signature:?}; Windows would \
         resume from a memory image that predates any change; writing is refused"
    )]
    Hibernated {
        /// The first 4 bytes of hiberfil.sys, lossily decoded.
        signature: String,
    },

    /// A file's record claims more bytes than the volume holds: a damaged or hostile MFT
    /// record, refused before anything is allocated for it.
    #[error("{path}: its MFT record claims {len} bytes, more than the whole volume ({volume} bytes): the record is damaged")]
    LargerThanVolume {
        /// Path of the file.
        path: String,
        /// The size its record claims.
        len: u64,
        /// The volume's size.
        volume: u64,
    },

    /// A file cannot be grown by [`Volume::plan_grow`](crate::Volume::plan_grow).
    #[error("{path} (MFT record {record}) cannot be grown: {why}")]
    CannotGrow {
        /// Path of the file (or of the metadata file that blocks the growth).
        path: String,
        /// Its MFT record number.
        record: u64,
        /// What is wrong.
        why: crate::grow::GrowRefusal,
    },

    /// A file is larger than what [`Volume::read_file`](crate::Volume::read_file) loads into memory.
    #[error("{path}: {len} bytes exceed the in-memory read limit of {limit} bytes")]
    TooLarge {
        /// Path of the file.
        path: String,
        /// Its size.
        len: u64,
        /// The limit.
        limit: u64,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_at(offset: u64) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { offset, source }
}
