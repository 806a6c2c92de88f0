//! The report every command prints: what was checked, what was found, and what would fix it.
//!
//! Text and JSON print the same [`Report`]. The JSON carries [`SCHEMA_VERSION`]; its fields
//! are machine values (enums in snake_case, numbers), absent optional fields are left out, and
//! sentences appear only in fields meant for people (`title`, `why`, `reason`, `text`).

use std::path::PathBuf;

use rescue::change::Change;
use rescue::offline::{HiveId, HiveState};
use rescue::target::Install;
use serde::Serialize;
use winsvc::analyze::Diagnosis;
use winsvc::baseline::Difference;
use winsvc::codes::ErrorEntry;
use winsvc::WindowsVersion;

/// The version of the JSON report. Raised when a field changes meaning or disappears; new
/// fields may appear without a change.
pub const SCHEMA_VERSION: u32 = 1;

/// Where on the way of a connection a check sits. The report walks them in this order: the
/// first stage that blocks is what the user fixes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Windows boots normally (not into safe mode).
    Boot,
    /// The VM gets its address and its network adapter works.
    Network,
    /// The firewall lets RDP in.
    Firewall,
    /// Remote Desktop Services listens.
    Listener,
    /// The client and the server agree on security.
    Security,
    /// The user can log on.
    Logon,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Boot,
        Stage::Network,
        Stage::Firewall,
        Stage::Listener,
        Stage::Security,
        Stage::Logon,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Boot => "boot",
            Stage::Network => "network",
            Stage::Firewall => "firewall",
            Stage::Listener => "listener",
            Stage::Security => "security",
            Stage::Logon => "logon",
        }
    }
}

/// How much a finding matters to RDP when it is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// RDP cannot work while this is broken.
    BlocksRdp,
    /// RDP may fail, depending on something the disk does not say.
    MayBlock,
    /// Worth knowing; does not stop RDP.
    Notice,
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Broken,
    Healthy,
    /// The disk does not settle it (see the finding's `cannot_tell`).
    CannotTell,
    /// The target does not hold what the rule reads (a bare SYSTEM hive has no SOFTWARE):
    /// said in the report, never taken for healthy, and not a verdict of its own.
    NotChecked,
}

/// A registry location a finding read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub hive: HiveId,
    /// From the hive's root (`ControlSet001\Control\Terminal Server`).
    pub key: String,
    pub value: Option<String>,
}

/// The serial-console commands that make a finding's fix on the running VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Runbook {
    pub cmd: Vec<String>,
    pub powershell: Vec<String>,
}

/// What one rule found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable id (`rdp-denied`, `service:Dhcp`): what `--rule` and `repair --only` take.
    pub rule: String,
    pub stage: Stage,
    pub severity: Severity,
    pub status: Status,
    /// One line for people: what is wrong (or what was checked, when healthy).
    pub title: String,
    /// Why it matters for RDP.
    pub why: String,
    /// Why the disk cannot settle it (status `cannot_tell`).
    pub cannot_tell: Option<String>,
    pub locations: Vec<Location>,
    /// What the configuration holds, as the rule reads it (in the control set Windows boots
    /// next for SYSTEM values).
    pub found: Option<String>,
    pub expected: Option<String>,
    /// The changes that fix it (empty when healthy, or when no safe automatic fix exists:
    /// see `unresolved`).
    pub changes: Vec<Change>,
    /// What is wrong but not fixed automatically, and why.
    pub unresolved: Vec<String>,
    /// The Microsoft article the check comes from.
    pub article: String,
    pub runbook: Runbook,
    /// The finding this one follows from (the Remote Desktop firewall rules are off because RDP
    /// is turned off): the report leads with that one, and its fix and this one's go together.
    pub consequence_of: Option<String>,
    /// For service checks: the analysis behind the verdict.
    pub service: Option<Box<ServiceDetail>>,
    /// For access checks: each right a service's token is not granted on a key, with the ACE
    /// that decides (left out of the JSON when there is none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<crate::access::AccessDenial>,
}

impl Finding {
    /// Whether this finding makes the verdict "not healthy": broken and not a mere notice,
    /// or a blocking check the disk cannot settle.
    pub fn counts(&self) -> bool {
        match self.status {
            Status::Broken => self.severity != Severity::Notice,
            Status::CannotTell => self.severity == Severity::BlocksRdp,
            Status::Healthy | Status::NotChecked => false,
        }
    }
}

/// A service check's analysis: the Service Control Manager's prediction in every control set,
/// the article's branch, and the System log's events.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDetail {
    pub service: String,
    pub display_name: String,
    pub control_sets: Vec<ControlSetReport>,
    /// The Win32 error the SCM would report in the control set Windows boots next.
    pub code: Option<u32>,
    /// The Azure article's row for `code`, for the DHCP Client only: the article's fixes are
    /// written for it.
    pub branch: Option<ErrorEntry>,
    pub evidence: Option<Evidence>,
}

/// One control set's verdict on a service.
#[derive(Debug, Clone, Serialize)]
pub struct ControlSetReport {
    pub diagnosis: Diagnosis,
    /// Differences from the healthy configuration, value by value.
    pub differences: Vec<Difference>,
}

/// Whether the System log and the configuration tell the same story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agreement {
    /// Both say the service starts, or both point to the same failure.
    Agree,
    /// The configuration predicts 1058 (disabled), which the SCM does not log at boot.
    Consistent,
    /// The configuration predicts a failure; the log last saw the service running.
    ConfigurationChangedSinceLog,
    /// The configuration predicts a failure the log does not show.
    LogShowsNoFailure,
    /// The log shows a run-time failure the configuration cannot show (hang, crash, logon).
    LogShowsRuntimeFailure,
    /// Both show failures, different ones.
    Disagree,
    /// The log could not be read.
    LogUnreadable,
}

/// The last state the log recorded for the service.
#[derive(Debug, Clone, Serialize)]
pub struct LastState {
    pub state: evidence::ServiceState,
    /// UTC, as the log recorded it.
    pub time: String,
}

/// What the System event log says about a service.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// Service Control Manager events about the service (or naming it as a dependency),
    /// oldest first.
    pub events: Vec<evidence::Event>,
    /// The newest record of the log (any provider): the log's "now".
    pub log_ends: Option<String>,
    /// The article branch the newest failure points to.
    pub points_to: Option<u32>,
    pub last_state: Option<LastState>,
    pub agreement: Agreement,
    /// The code the configuration predicts (what the log was compared with).
    pub predicted: Option<u32>,
    /// Chunks of the log older than the newest ones read (`rescue::target::SYSTEM_LOG_CHUNKS`):
    /// events there are not in `events`.
    #[serde(skip_serializing_if = "is_zero")]
    pub older_chunks_not_read: u64,
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The answer to "can RDP reach this VM, as far as the disk tells?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing on the disk blocks RDP.
    NothingBlocks,
    /// A finding blocks RDP.
    Blocked,
    /// A finding may block RDP.
    MayBeBlocked,
    /// A blocking check cannot be settled from the disk.
    CannotTell,
}

/// The container a target is.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    /// `raw`, `vhd_fixed`, `vhdx_dynamic`, ... or `folder` / `hive_file`.
    pub kind: String,
    pub bytes: Option<u64>,
}

/// Which control sets there are and which one Windows boots next.
#[derive(Debug, Clone, Serialize)]
pub struct ControlSets {
    /// `Select\Default`: the set Windows starts from at the next boot (the one judged).
    pub boots: Option<u32>,
    /// `Select\Current`: the set the last session ran.
    pub current: Option<u32>,
    pub last_known_good: Option<u32>,
    pub present: Vec<u32>,
    /// Why the set Windows boots cannot be read, if so (then no verdict is "healthy").
    pub cannot_tell: Option<String>,
}

/// The whole diagnosis of one target.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// As shown: a URL's secrets are redacted.
    pub target: PathBuf,
    pub container: Container,
    pub install: Install,
    pub windows: WindowsVersion,
    pub hives: Vec<HiveState>,
    /// The pending journal of an interrupted earlier write: what is read may be half of it.
    pub pending_journal: Option<PathBuf>,
    /// Whether program and DLL files were checked on the disk.
    pub files_checked: bool,
    pub control_sets: ControlSets,
    pub verdict: Verdict,
    /// Every rule's finding, on the connection's way (stage order), the ones that count
    /// first within a stage.
    pub findings: Vec<Finding>,
    /// What stands between a client and the VM that no disk holds.
    pub outside_the_disk: Vec<String>,
    pub transfer: Option<vdisk::remote::TransferStats>,
}

impl Report {
    /// The findings that make the verdict, the ones that follow from no other first.
    pub fn counting(&self) -> impl Iterator<Item = &Finding> {
        let roots = self
            .findings
            .iter()
            .filter(|f| f.counts() && f.consequence_of.is_none());
        let rest = self
            .findings
            .iter()
            .filter(|f| f.counts() && f.consequence_of.is_some());
        roots.chain(rest)
    }

    /// The finding of `rule`, if it ran.
    pub fn finding(&self, rule: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.rule == rule)
    }

    /// Exit code of every command that reports a verdict: 0 when nothing blocks, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.verdict != Verdict::NothingBlocks)
    }
}
