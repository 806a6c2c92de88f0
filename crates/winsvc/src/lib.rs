//! Windows services, offline: what the Service Control Manager (SCM) would do at boot, read from
//! a bare SYSTEM hive.
//!
//! winrescue repairs VMs that cannot be reached over RDP because a service (first case: the DHCP
//! Client, key `Dhcp`) does not start. This crate holds the knowledge part of that job, with no
//! disk and no writing:
//!
//! - [`SystemModel`] reads the control sets, `Select`, every service and driver with the values
//!   the SCM reads, and the group order list. A value stored with the wrong type is recorded as a
//!   [`Field::WrongType`] finding, never a crash.
//! - [`analyze`] replays the SCM's start decision statically: [`Diagnosis`] says whether a
//!   service starts and, if not, which Win32 error the SCM would report and the chain of causes
//!   (`Dhcp -> depends on Afd -> Afd Start=4 -> 1068`).
//! - [`codes`] is the Azure article's error table (5, 1053, 1058, 1059, 1067, 1068, 1069, 1070,
//!   1077, 1079, plus the related codes the analysis reports) as serializable data.
//! - [`baseline`] holds the healthy DHCP Client configuration per Windows version, read from the
//!   real hives in `testdata/hives`, and [`baseline::compare`] lists the differences.
//! - [`plan`] turns a diagnosis into registry changes (for every control set) that a writer
//!   elsewhere applies.
//!
//! # Getting started
//! ```no_run
//! use winsvc::{analyze, baseline, plan, SystemModel};
//!
//! let bytes = std::fs::read("SYSTEM").unwrap();
//! let hive = regf::Hive::open(bytes).unwrap();
//! let model = SystemModel::read(&hive, None).unwrap();
//! // Without a disk nothing is known about files: the oracle answers "unknown".
//! let no_disk = |_: &str| None;
//! for d in analyze::diagnose_all_sets(&model, "Dhcp", &no_disk) {
//!     println!("{}", d.summary());
//! }
//! let base = baseline::dhcp().for_version(&model.version);
//! let p = plan::plan(&model, "Dhcp", &base, &plan::Options::default(), &no_disk);
//! for c in &p.changes {
//!     println!("{c}");
//! }
//! ```
#![forbid(unsafe_code)]

pub mod analyze;
pub mod baseline;
pub mod codes;
mod error;
mod model;
pub mod plan;
mod version;

pub use analyze::{Cause, CauseKind, Diagnosis, Verdict};
pub use error::{Error, Result};
pub use model::{
    image_file, normalize_image_path, show_data, svchost_group, types, Account, ControlSet, Field,
    Role, Select, Service, SystemModel,
};
pub use version::{Family, VersionSource, WindowsVersion};
