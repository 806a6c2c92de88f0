//! The crate's one error type.

use std::path::PathBuf;

/// Why a log could not be read at all.
///
/// Damage *inside* a log (a bad chunk, a broken record) is not an error: it becomes a
/// [`Warning`](crate::Warning) in the [`Report`](crate::Report) and reading goes on. Only what
/// stops us before the first chunk, or a bad query, ends up here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading from the underlying reader failed outside of any chunk.
    #[error("at file offset {offset:#x}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The data does not start with an EVTX file header (`ElfFile\0` at offset 0), or is
    /// shorter than one.
    #[error("at file offset 0x0: not an EVTX event log: {reason}")]
    NotEvtx { reason: String },
    /// A duration such as `--within 24h` that we cannot read.
    #[error("cannot read duration {text:?}: {reason}")]
    BadDuration { text: String, reason: String },
    /// A time such as `--since 2020-01-01T00:00:00Z` that we cannot read.
    #[error("cannot read time {text:?}: {reason} (expected RFC 3339, e.g. 2020-01-01T00:00:00Z)")]
    BadTime { text: String, reason: String },
}
