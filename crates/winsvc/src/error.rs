//! The one error type of the crate.

use thiserror::Error;

/// What can stop the model from being read. Damage inside a service key is not an error: it is
/// recorded in the model ([`crate::Field`], [`crate::ControlSet::read_errors`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The hive itself could not be read (root key, top-level keys).
    #[error("reading the hive: {0}")]
    Hive(#[from] regf::Error),

    /// The hive has no `ControlSetNNN` key: it is not a SYSTEM hive (or it is badly damaged).
    #[error("not a SYSTEM hive: no ControlSetNNN key below the root (root keys: {root_keys})")]
    NotSystemHive { root_keys: String },

    /// `Select` names a control set that is not in the hive or cannot be read: nothing can be
    /// said about what Windows boots, and no other set may stand in for it.
    #[error("ControlSet{number:03}, the control set Select names, cannot be read ({why})")]
    ControlSetUnreadable { number: u32, why: String },

    /// A data file compiled into the crate does not parse (a build-time mistake the tests catch).
    #[error("built-in data file {file}: {what}")]
    BadData { file: &'static str, what: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
