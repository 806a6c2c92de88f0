//! Offline rescue of a Windows VM from its disk.
//!
//! # Getting started
//! - [`target::Target::open`] opens a disk image, block device, folder or hive file and finds
//!   the Windows installations in it ([`target::Install`]).
//! - [`target::Target::system_hive`] reads the SYSTEM hive with its transaction logs replayed.
//! - A repair edits the recovered hive in memory (`regf::edit::Editor`), then
//!   [`target::Target::plan_hive_write`] maps the changed pages to device ranges and
//!   [`journal::write`] writes them through an undo journal, verifies, and returns the journal
//!   that [`journal::undo`] takes.
//! - [`target::Target::boot_store`] reads the disk's boot configuration store (BCD, on the EFI
//!   system partition or the active partition); [`edit::Transaction::boot_store`] edits it
//!   under the same journal as the other hives.
#![forbid(unsafe_code)]

pub mod batch;
pub mod change;
pub mod dhcp;
pub mod edit;
mod error;
pub mod files;
pub mod guard;
pub mod journal;
pub mod offline;
pub mod target;

pub use error::{Error, GrowthBlocked, Result};
