//! reg.exe and sc.exe on an offline Windows: their grammars, the registry path grammar, and the
//! changes they make.
//!
//! # Getting started
//! - [`reg::parse`] turns reg.exe's arguments into a [`reg::RegOp`]; [`script::parse_script`]
//!   does the same for a `.cmd` file of reg lines; [`sc::parse`] turns sc.exe's into an
//!   [`sc::ScOp`].
//! - [`path::Mounts::resolve`] maps a key path (`HKLM\SYSTEM\...`, `HKLM\BROKENSYSTEM\...`, a
//!   bare path) to a hive ([`path::KeyRef`]); [`path::inner_path`] resolves `CurrentControlSet`
//!   with the services model's own policy ([`winsvc::SystemModel::current`]).
//! - [`data::parse_data`] turns reg.exe's `/t /d /s` text into [`regf::Data`], whose
//!   [`regf::Data::to_bytes`] is the one encoder of stored bytes.
//! - [`offline::Opened`] reads a target's hives; [`offline::Session`] edits them through one
//!   [`rescue::edit::Transaction`] (the undo journal, the start prediction, the read-back);
//!   [`change::apply_reg`], [`change::apply_section`] and [`sc::apply_config`] make the changes
//!   and report each as a [`change::Applied`].
//!
//! Errors ([`Error`]) state facts in reg.exe's and sc.exe's words; what a user can do about
//! them is the caller's to say.

#![forbid(unsafe_code)]

pub mod change;
pub mod data;
pub mod error;
pub mod offline;
pub mod path;
pub mod query;
pub mod reg;
pub mod sc;
pub mod script;

pub use error::{Error, Result, ScUsage};
