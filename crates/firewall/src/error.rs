//! The errors of the crate.

use serde::Serialize;
use thiserror::Error;

/// What can stop a policy from being read. Damage inside the firewall keys (a rule that does not
/// parse, a value of the wrong type) is not an error: it is a [`crate::Problem`] of the policy.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The hive could not be read where the policy starts (root key, control set key).
    #[error("reading the {hive} hive at {key}: {source}")]
    Hive {
        hive: &'static str,
        key: String,
        source: regf::Error,
    },

    /// The control set asked for is not in the SYSTEM hive.
    #[error("the SYSTEM hive has no key {control_set}")]
    NoControlSet { control_set: String },
}

/// Why a rule string does not parse: the rule, the field (its key, `version`, or `field N` for
/// an empty one), the offending value (clipped) and what is wrong with it.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize)]
#[error("firewall rule {rule_id}: field {field}: {kind} (value {value:?})")]
pub struct ParseError {
    pub rule_id: String,
    pub field: String,
    pub value: String,
    pub kind: ParseErrorKind,
}

/// What is wrong with a field.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("not a version vMAJOR.MINOR (each at most 255)")]
    BadVersion,
    #[error("empty field between two '|'")]
    EmptyField,
    #[error("no '=' in the field")]
    MissingEquals,
    #[error("the field appears twice but may appear once")]
    Duplicate,
    #[error("the field is required but absent")]
    Missing,
    #[error("action is not Allow, Block or ByPass")]
    BadAction,
    #[error("direction is not In or Out")]
    BadDirection,
    #[error("not TRUE or FALSE")]
    BadBool,
    #[error("profile is not Domain, Private or Public")]
    BadProfile,
    #[error("protocol is not a number from 0 to 255")]
    BadProtocol,
    #[error("port is not a number from 0 to 65535")]
    BadPort,
    #[error("port range ends before it begins")]
    BadPortRange,
    #[error("not a port number, a range or a known port keyword")]
    UnknownPortKeyword,
    #[error("ports are only allowed with Protocol=6 (TCP) or 17 (UDP)")]
    PortWithoutTcpOrUdp,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
