//! Why can't I RDP to this VM? The checks winrescue runs on an offline Windows.
//!
//! # How it fits together
//! - A [`Rule`] checks one cause and makes one [`Finding`]: found vs expected, the registry
//!   locations, how much it matters ([`Severity`]), the [`Stage`] of the connection it sits
//!   on, the changes that fix it, the serial-console runbook and the Microsoft article.
//! - Most rules are data: [`value::ValueRule`] (one registry value) and
//!   [`service::ServiceRule`] (a service that must start); they are listed in [`pack`]. The few
//!   that need code (TLS protocols, the certificate store, static addresses) are in `code`.
//! - [`diagnose`] opens the target once ([`rescue::offline::Offline`]: hives read once, logs
//!   replayed, one control-set policy), runs the rules and returns one [`Report`]; [`repair`]
//!   makes the planned changes through the one journaled applier and checks the report again.
//!
//! Every command that gives a verdict (`diagnose`, `repair`, `runbook`, `sc`) takes it from here,
//! so they cannot disagree.
#![forbid(unsafe_code)]

pub mod access;
mod adapter;
mod code;
mod engine;
mod firewall;
pub mod pack;
pub mod report;
pub mod rule;
mod security;
pub mod service;
mod setting;
pub mod value;

pub use engine::{all, by_stage, diagnose, repair, run, RepairOptions, RepairReport, Selection};
pub use report::{Finding, Report, Severity, Stage, Status, Verdict, SCHEMA_VERSION};
pub use rule::{Meta, Options, Rule};

/// What can go wrong running the rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rescue(#[from] rescue::Error),
    /// No rule has this id.
    #[error("no rule {0:?}")]
    UnknownRule(String),
    /// The control set Windows boots next cannot be read: no repair is planned.
    #[error("the configuration cannot be judged, so no repair is planned: {0}")]
    CannotJudge(String),
    /// What is broken has no automatic fix.
    #[error("no automatic fix: {0}")]
    NoAutomaticFix(String),
}

impl Error {
    /// Nothing was written, on purpose.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Rescue(e) => e.is_refusal(),
            Error::CannotJudge(_) | Error::NoAutomaticFix(_) => true,
            Error::UnknownRule(_) => false,
        }
    }
}
