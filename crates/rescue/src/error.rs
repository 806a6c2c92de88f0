//! The crate's error type.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while opening a target, planning, writing or undoing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    Disk(#[from] vdisk::Error),

    #[error(transparent)]
    Volume(#[from] volume::Error),

    #[error(transparent)]
    Hive(#[from] regf::Error),

    #[error("{path}: no Windows installation found ({why})")]
    NoWindows { path: PathBuf, why: String },

    #[error("{path}: {count} Windows installations found ({list}); choose one with --partition N")]
    SeveralWindows {
        path: PathBuf,
        count: usize,
        list: String,
    },

    #[error("{path}: no partition {index} holding Windows (found: {list})")]
    NoSuchInstall {
        path: PathBuf,
        index: u32,
        list: String,
    },

    /// A write was refused before anything was changed.
    #[error("write refused: {0}")]
    Refused(String),

    #[error("{path}: an earlier write was interrupted (journal {journal}): run `winrescue undo {journal}` to restore the disk as it was, or `winrescue undo --redo {journal}` to finish that write, before anything else is written")]
    Interrupted { path: PathBuf, journal: PathBuf },

    #[error("journal {path}: {what}")]
    Journal { path: PathBuf, what: String },

    #[error("verification failed after writing {path}: {what}")]
    Verify { path: PathBuf, what: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
