//! Service Control Manager events from a Windows System event log (`System.evtx`), read
//! offline.
//!
//! Microsoft's "cannot RDP to an Azure VM because the DHCP Client service is not running"
//! article starts from the System log: event 7022 "The DHCP Client service hung on starting.",
//! 7000/7001 with `%%1058` when it is disabled, and so on. This crate reads that log from the
//! VM's disk and gives those events as typed records.
//!
//! # Getting started
//!
//! ```no_run
//! use evidence::{Query, read_log_file};
//!
//! let query = Query { service: Some("Dhcp".into()), ..Query::default() };
//! let report = read_log_file("System.evtx", &query)?;
//! for event in &report.events {
//!     println!("{} {} {}", event.time, event.event_id, event.summary());
//! }
//! for warning in &report.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! # Ok::<(), evidence::Error>(())
//! ```
//!
//! [`read_log`] is the main entry point: it takes any `Read + Seek`, so a file inside an NTFS
//! volume can be read without copying it out. A [`Query`] picks the provider, event ids, a
//! service (by key or display name), a time window counted back from the newest record, and a
//! count. The result is a [`Report`]: [`Event`]s and the [`Warning`]s that say what damage was
//! skipped (a damaged log is read as far as it goes; only a file that is not a log is an
//! [`Error`]).
//!
//! Parsing is done by the `evtx` crate. Before it renders anything we walk the records' raw
//! headers and template definitions ourselves, so that only chunks holding a record of the
//! wanted provider are parsed and only those records rendered (see `scan.rs`).
#![forbid(unsafe_code)]

mod decode;
mod error;
mod model;
mod query;
mod reader;
mod scan;
pub mod win32;

pub use error::Error;
pub use jiff::{SignedDuration, Timestamp};
pub use model::{
    ErrorCode, Event, EventKind, ServiceState, StartType, StartTypeChange, SCM_GUID, SCM_PROVIDER,
};
pub use query::{parse_duration, parse_time, Provider, Query};
pub use reader::{read_log, read_log_file, read_log_prefetching, Report, Stats, Warning};

/// The one way winrescue shows a time: `2015-08-08 09:33:49Z` (UTC, to the second), in text
/// and in the report fields that are text.
pub fn show_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}
