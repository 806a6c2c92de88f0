//! The crate's error type.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while opening a target, planning, writing or undoing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // The I/O error is part of the message and deliberately not a `source`: a report that
    // prints the chain would say it twice ("No such file ...: No such file ...").
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error(transparent)]
    Disk(#[from] vdisk::Error),

    #[error(transparent)]
    Volume(#[from] volume::Error),

    #[error(transparent)]
    Hive(#[from] regf::Error),

    /// The FAT volume holding the boot store (an EFI system partition) is damaged.
    #[error(transparent)]
    Fat(#[from] fat::Error),

    /// An event log that cannot be read at all (not an EVTX file, a reader that fails).
    #[error("{path}: {error}")]
    EventLog {
        path: String,
        error: evidence::Error,
    },

    /// The file is too short to be a disk image or a hive, or it is text.
    #[error("{path}: {}: not a disk image or a hive", if *text { format!("a text file of {len} bytes") } else { format!("{len} bytes, too short (a disk image holds at least a 512-byte sector, a hive a 4096-byte base block)") })]
    NotATarget { path: PathBuf, len: u64, text: bool },

    #[error("{path}: no Windows installation found ({why})")]
    NoWindows { path: PathBuf, why: String },

    #[error("{path}: {count} Windows installations found ({list})")]
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

    /// A hive is dirty and its transaction logs are missing or unusable: writing it would
    /// make its newest changes, which only the logs hold, lost for good.
    #[error("write refused: {hive} is dirty and its transaction logs are missing or unusable: its most recent changes are not in the file")]
    IncompleteHive { hive: String },

    /// An edit needs the hive file inside a disk image to be longer than the bytes it can be
    /// written in place (its length, or its valid data length if shorter), and its file cannot
    /// be grown: `why` says what stops it.
    #[error("write refused: the edited {hive} needs {needed} bytes, but its file in the disk image can take {available} bytes in place: {} more bytes are needed, and the file cannot grow: {why}", needed.saturating_sub(*available))]
    HiveFileFull {
        hive: String,
        /// Bytes the edited hive needs (its base block and hive bins).
        needed: u64,
        /// Bytes of the file that can be written in place.
        available: u64,
        /// What stops the file from growing.
        why: GrowthBlocked,
    },

    /// A write was refused before anything was changed.
    #[error("write refused: {0}")]
    Refused(String),

    /// A guarded write would break a service or store a type the SCM rejects; nothing was
    /// changed. The prediction says what the SCM would do before and after.
    #[error("write refused: {}", objections(prediction))]
    WouldBreak {
        prediction: Box<crate::guard::Prediction>,
    },

    #[error("{path}: an earlier write was interrupted; its pending journal is {journal}, and nothing else is written until it is resolved")]
    Interrupted { path: PathBuf, journal: PathBuf },

    #[error("journal {path}: {what}")]
    Journal { path: PathBuf, what: String },

    /// A write (or undo) stopped part way: the devices may hold a mix of old and new bytes,
    /// and the pending journal says which.
    #[error("the write was interrupted ({cause}): the target may be half written; its pending journal is {journal}")]
    WriteInterrupted { journal: PathBuf, cause: Box<Error> },

    /// Everything was written and read back, but the journal could not be marked complete.
    #[error("the new bytes are written and verified, but the journal could not be recorded as complete ({cause}); it stays pending at {journal}")]
    WrittenUnrecorded { journal: PathBuf, cause: Box<Error> },

    /// An undo found bytes that are neither side of its journal: something wrote there since.
    #[error("journal {journal}: the bytes at 0x{offset:x} of {device} are no longer what it wrote (changed since: a later write, or Windows ran); nothing was changed{}", newer_list(newer))]
    Changed {
        journal: PathBuf,
        offset: u64,
        device: PathBuf,
        /// Later journals of the same target that wrote those bytes: undo them first, newest first.
        newer: Vec<PathBuf>,
    },

    /// A journal writes a disk behind a URL, and no URL of that blob was given: journals
    /// never keep the URL's query string (its SAS), so it must be given again.
    #[error("journal {journal}: it writes {blob}, and no URL of that blob (with a SAS that allows writing) was given")]
    NeedsUrl { journal: PathBuf, blob: String },

    /// A blob's ETag is not the one its journal recorded after the write: someone else wrote
    /// it since. Nothing was changed.
    #[error("journal {journal}: {blob} was written by someone else since this journal's write (its ETag is {}, the journal recorded {}); nothing was changed", etags.1, etags.0)]
    RemoteChanged {
        journal: PathBuf,
        blob: String,
        /// The ETag recorded after the write, and the one now (boxed: a rare error keeps
        /// every `Result` of the crate small).
        etags: Box<(String, String)>,
    },

    #[error("verification failed after writing {path}: {what}")]
    Verify { path: PathBuf, what: String },

    /// The write is complete and journaled, but reading the target again does not give the
    /// expected result: the change is on the disk and `journal` takes it back.
    #[error("{path}: the change was written (journal {journal}), but {what}")]
    NotVerified {
        path: PathBuf,
        what: String,
        journal: PathBuf,
    },
}

/// What stops a hive file inside a disk image from growing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GrowthBlocked {
    /// The NTFS growth plan refuses it.
    #[error("{0}")]
    Ntfs(volume::GrowRefusal),
    /// The file is on a FAT volume (an EFI system partition's boot store).
    #[error("it is on a FAT volume, where winrescue does not allocate clusters")]
    Fat,
    /// Boot stores keep their length inside images.
    #[error("winrescue grows the hives of a Windows installation, not a boot store, inside a disk image")]
    BootStore,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn objections(p: &crate::guard::Prediction) -> String {
    let list: Vec<String> = p.objections.iter().map(|o| o.to_string()).collect();
    list.join("; ")
}

fn newer_list(newer: &[PathBuf]) -> String {
    if newer.is_empty() {
        return String::new();
    }
    let names: Vec<String> = newer.iter().map(|p| p.display().to_string()).collect();
    format!(
        ". Later writes changed them; undo those first, newest first: {}",
        names.join(", then ")
    )
}

impl Error {
    /// Whether the error is a refusal: nothing was written, and the target is as it was.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Refused(_)
            | Error::WouldBreak { .. }
            | Error::IncompleteHive { .. }
            | Error::HiveFileFull { .. }
            | Error::Interrupted { .. }
            | Error::Changed { .. }
            | Error::RemoteChanged { .. }
            | Error::NeedsUrl { .. } => true,
            Error::Disk(e) => matches!(
                e,
                vdisk::Error::Locked { .. }
                    | vdisk::Error::ReadOnlyImage { .. }
                    | vdisk::Error::RemoteReadOnly { .. }
                    // A blob changed by someone else since it was opened (If-Match failed).
                    | vdisk::Error::RemoteRefused { status: 412, .. }
            ),
            Error::Hive(regf::Error::NoRoom { .. } | regf::Error::Edit(_)) => true,
            _ => false,
        }
    }

    /// Whether a write stopped part way and a pending journal must resolve it.
    pub fn is_interrupted_write(&self) -> bool {
        matches!(
            self,
            Error::WriteInterrupted { .. } | Error::WrittenUnrecorded { .. }
        )
    }
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |error| Error::Io { path, error }
}
