//! The crate's one error type.

use std::io;

/// Everything that can go wrong while reading a FAT volume.
///
/// Offsets are byte offsets from the start of the partition (the reader given to
/// [`Volume::open`](crate::Volume::open)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the partition failed.
    #[error("I/O error at partition offset {offset:#x}: {source}")]
    Io {
        /// Where the failed access started.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },

    /// A boot sector (BIOS parameter block) field is out of range or inconsistent.
    #[error("not a valid FAT boot sector: at partition offset {offset:#x}: {what}")]
    BootSector {
        /// Offset of the field.
        offset: u64,
        /// What is wrong, with the value found.
        what: String,
    },

    /// A cluster chain is broken: it loops, reaches a free or bad cluster or one past the
    /// volume, or is longer or shorter than its file.
    #[error("{path}: cluster chain broken at cluster {cluster} (FAT entry at partition offset {offset:#x}): {what}")]
    Chain {
        /// The file or directory whose chain it is.
        path: String,
        /// The cluster whose FAT entry is wrong.
        cluster: u32,
        /// Partition offset of that FAT entry.
        offset: u64,
        /// What is wrong.
        what: String,
    },

    /// A directory entry is inconsistent.
    #[error("{path}: bad directory entry at partition offset {offset:#x}: {what}")]
    Directory {
        /// The directory.
        path: String,
        /// Partition offset of the entry.
        offset: u64,
        /// What is wrong.
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

    /// A path component that should be a directory is a file.
    #[error("{path}: {component:?} is not a directory")]
    NotADirectory {
        /// The path as given.
        path: String,
        /// The component that is a file.
        component: String,
    },

    /// The entry is a directory, not a file.
    #[error("{path} is a directory")]
    IsADirectory {
        /// The path.
        path: String,
    },

    /// A write would reach past the file's size (a write never changes it).
    #[error("{path}: bytes {start:#x}..{end:#x} reach past the file's size {size}")]
    PastEnd {
        /// Path of the file.
        path: String,
        /// First byte of the range.
        start: u64,
        /// End of the range (exclusive).
        end: u64,
        /// The file size.
        size: u64,
    },

    /// The file is larger than [`crate::MAX_READ_TO_VEC`].
    #[error("{path}: {len} bytes is more than the {limit} bytes read into memory")]
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
