//! A broken Windows VM's OS disk as one random-access device, and its partitions.
//!
//! # Getting started
//!
//! ```no_run
//! use std::io::{Read, Seek, SeekFrom};
//!
//! # fn main() -> Result<(), vdisk::Error> {
//! // Raw image, block device, VHD (fixed, dynamic, differencing) or VHDX: found by content.
//! let disk = vdisk::Disk::open("osdisk.vhd")?;
//! let table = vdisk::read_partitions(&disk)?;
//! for p in &table.partitions {
//!     println!("{} at {:#x}, {} bytes, {:?}", p.index, p.start, p.len, p.filesystem);
//! }
//! // The NTFS layer reads a partition through std::io::Read + Seek.
//! let windows = table.partitions.iter().find(|p| p.is_windows_data()).unwrap();
//! let mut volume = vdisk::Slice::partition(&disk, windows)?;
//! let mut boot = [0u8; 512];
//! volume.seek(SeekFrom::Start(0)).unwrap();
//! volume.read_exact(&mut boot).unwrap();
//! # Ok(()) }
//! ```
//!
//! To change the disk, open it with [`Disk::open_rw`] (an exclusive `flock`), then use
//! [`Disk::write_at`] or a [`Slice`] over `&mut Disk`, which is also `std::io::Write`. Writes only
//! go where the image already holds data: a write into an unallocated VHD/VHDX block is refused
//! ([`Error::WriteToUnallocated`]) before anything is written. The first write to a VHDX gives it
//! a new DataWriteGuid, as the specification requires; [`Disk::identity`] reports it.
//!
//! A path that starts with `http://` or `https://` is a URL: the image is read with ranged GETs
//! through a block cache (an Azure page blob with a SAS, or any server that serves byte ranges),
//! read-only; see [`remote`]. [`Disk::transfer_stats`] tells what it cost.
//!
//! qcow2, VMDK and VDI images are recognised and refused with the `qemu-img convert` command
//! that turns them into raw images.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("vdisk uses positioned I/O and flock(2), and supports only Unix-like systems");

mod backing;
mod disk;
mod error;
mod io;
pub mod lock;
mod partition;
pub mod remote;
mod util;
mod vhd;
mod vhdx;

pub use disk::{ContainerKind, Disk, Identity, OpenOptions};
pub use error::{Error, Result};
pub use io::Slice;
pub use partition::{
    detect_filesystem, read_partitions, FileSystem, Partition, PartitionTable, PartitionType,
    TableKind, GPT_BASIC_DATA, GPT_EFI_SYSTEM, GPT_MICROSOFT_RESERVED, GPT_WINDOWS_RECOVERY,
};
pub use util::Guid;
