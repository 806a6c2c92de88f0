//! NTFS on one partition, for offline repair: facts about the volume, case-insensitive path
//! lookup, file reads, and in-place writes into clusters a file already owns.
//!
//! Built on the read-only [`ntfs`] crate. The crate writes no NTFS metadata itself (growth is
//! planned as patches for the caller to write, see [`Volume::plan_grow`]): a write goes
//! only into data clusters of an existing, plain (non-resident, uncompressed, unencrypted,
//! non-sparse in the range) file, and never past its size, so the file keeps its size, runs and
//! timestamps and the volume stays consistent for chkdsk.
//!
//! # Getting started
//! 1. Give [`Volume::open`] a reader (`Read + Seek`) that presents the partition from its first
//!    byte (a partition slice from the disk-container layer, or a bare volume image). BitLocker is
//!    refused with [`Error::BitLocker`].
//! 2. Look at [`Volume::facts`]: [`VolumeFacts::dirty`], [`VolumeFacts::hibernation`].
//!    Reading is always allowed; [`Volume::check_writable`] refuses dirty and hibernated volumes.
//! 3. Find a file with [`Volume::open_file`] / [`Volume::lookup`] (case-insensitive, through the
//!    directory indexes) or a hive and its logs with [`Volume::hive_files`]. The result, a
//!    [`FileEntry`], owns its layout ([`DataLayout`], [`Extent`]s).
//! 4. Read it with [`Volume::read_file`] or [`Volume::reader`].
//! 5. Patch it with [`Volume::write_file_range`] on a `Write + Seek` view of the same partition
//!    ([`Volume::plan_write`] shows the partition ranges first).
//! 6. To make a file longer, [`Volume::plan_grow`] plans the NTFS metadata changes (MFT record,
//!    volume bitmap) as byte patches for the caller's journal; nothing is written here.
//!
//! ```no_run
//! # fn main() -> Result<(), volume::Error> {
//! let mut part = std::fs::File::options().read(true).write(true).open("windows-partition.img")
//!     .map_err(|source| volume::Error::Io { offset: 0, source })?;
//! let vol = volume::Volume::open(&mut part)?;
//! let hive = vol.hive_files(&mut part, r"Windows\System32\config\SYSTEM")?;
//! let bytes = vol.read_file(&mut part, &hive.hive)?;
//! // ... change 2 bytes inside one 4 KiB page ...
//! vol.write_file_range(&mut part, &hive.hive, 0x1000 + 0x20, &bytes[0x1020..0x1022])?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod file;
mod grow;
mod names;
mod record;
mod security;
mod volume;

pub use crate::error::{Error, Result};
pub use crate::file::{
    DataLayout, Extent, FileEntry, FileReader, Storage, WriteExtent, ATTR_COMPRESSED,
    ATTR_ENCRYPTED, ATTR_SPARSE,
};
pub use crate::grow::{GrowRefusal, GrowthPlan, Patch};
pub use crate::security::{find_in_sds, DescriptorSource, FileSecurity};
pub use crate::volume::{
    Hibernation, HiveFiles, Volume, VolumeFacts, MAX_READ_TO_VEC, VOLUME_DIRTY,
};
