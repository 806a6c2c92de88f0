//! Windows registry hive files (the "regf" format): read them without copying, check every
//! structure, replay their transaction logs, and edit them in place (without changing their size
//! unless the caller allows growth: [`edit::Editor::allow_growth`]).
//!
//! # Getting started
//! ```no_run
//! let bytes = std::fs::read("SYSTEM").unwrap();
//! let hive = regf::Hive::open(bytes).unwrap();
//! let dhcp = hive.key(r"ControlSet001\Services\Dhcp").unwrap().expect("Dhcp key");
//! let start = dhcp.value("Start").unwrap().expect("Start value");
//! println!("Start = {:?}", start.data().unwrap());
//! ```
//! - [`Hive`] opens a buffer ([`Hive::open`] strict, [`Hive::open_lenient`] for damaged files);
//!   [`Key`] and [`Value`] borrow from it.
//! - [`check::check`] walks every bin, cell and key and reports each structural fault with its
//!   offset.
//! - [`security`] parses a key's security descriptor, renders it as SDDL and evaluates its DACL
//!   for a service's token.
//!
//! The format facts come from Maxim Suhanov's "Windows registry file format specification"
//! (github msuhanov/regf); section names are cited next to the code that depends on them.
#![forbid(unsafe_code)]

mod base;
mod bytes;
pub mod cell;
pub mod check;
pub mod edit;
mod error;
mod hive;
pub mod key;
pub mod log;
mod marvin;
pub mod names;
pub mod paged;
pub mod regfile;
pub mod security;
pub mod time;
pub mod value;

pub use base::{checksum, seal, BaseBlock, BASE_BLOCK_SIZE};
pub use error::{Error, Result};
pub use hive::{walk_from, Hive, HiveSource, Opening, Source, MAX_DEPTH};
pub use key::Key;
pub use names::Name;
pub use paged::Paged;
pub use value::{Data, Value, ValueType};
