//! What a rule is: a check of the offline Windows that makes one [`Finding`].

use rescue::offline::Offline;
use serde::Serialize;

use crate::report::{Finding, Runbook, Severity, Stage, Status};

/// What every rule declares about itself, listed by `winrescue rules`.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub id: String,
    pub stage: Stage,
    /// How much it matters when broken.
    pub severity: Severity,
    /// What it checks, in a few words.
    pub checks: String,
    /// Why a broken one stops RDP.
    pub why: String,
    /// The Microsoft article the facts come from (the slug under
    /// `learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/`, or a full address).
    pub article: String,
}

/// A check. Most rules are data ([`crate::value::ValueRule`], [`crate::service::ServiceRule`]);
/// the few that need code implement this directly.
pub trait Rule: Sync {
    fn meta(&self) -> Meta;
    /// Checks the install. Never fails: what cannot be read is a finding whose status is
    /// "cannot tell", with the reason.
    fn check(&self, w: &Offline, opts: &Options) -> Finding;
}

/// What the user asked beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Plan the hang / crash branch fix of service rules: the service in its own process
    /// (Type=0x10).
    pub own_process: bool,
}

impl Meta {
    /// A finding of this rule with nothing found yet.
    pub fn finding(&self, status: Status, title: impl Into<String>) -> Finding {
        Finding {
            rule: self.id.clone(),
            stage: self.stage,
            severity: self.severity,
            status,
            title: title.into(),
            why: self.why.clone(),
            cannot_tell: None,
            locations: Vec::new(),
            found: None,
            expected: None,
            changes: Vec::new(),
            unresolved: Vec::new(),
            article: article_url(&self.article),
            runbook: Runbook::default(),
            consequence_of: None,
            service: None,
            access: Vec::new(),
        }
    }

    /// A finding that the disk cannot settle.
    pub fn cannot_tell(&self, why: impl Into<String>) -> Finding {
        let mut f = self.finding(Status::CannotTell, self.checks.clone());
        f.cannot_tell = Some(why.into());
        f
    }
}

/// The full address of an article given by its slug.
fn article_url(slug: &str) -> String {
    if slug.starts_with("https://") {
        slug.to_string()
    } else {
        format!("https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/{slug}")
    }
}
