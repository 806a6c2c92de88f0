//! The DHCP Client playbook: the Azure article "cannot RDP because the DHCP Client service is
//! not running", from the disk alone.
//!
//! [`diagnose`] reads the SYSTEM hive (logs replayed), models every control set, predicts what
//! the Service Control Manager will do with `Dhcp` at the next boot and why, compares the
//! configuration value by value with the healthy one for that Windows version, names the
//! article's branch, reads the System event log for evidence, and builds the repair plan.
//! [`repair`] applies the plan through the journal and checks that the prediction is now
//! "starts".

use std::io::Cursor;
use std::path::{Path, PathBuf};

use regf::edit::Editor;
use regf::Hive;
use serde::Serialize;
use winsvc::analyze::{self, Verdict};
use winsvc::baseline::{self, Difference};
use winsvc::codes::{self, ErrorEntry};
use winsvc::plan::{self, Change, Plan};
use winsvc::{Diagnosis, SystemModel, WindowsVersion};

use crate::edit::{edit_system_hive, EditOptions, EditOutcome};
use crate::error::{Error, Result};
use crate::target::{Install, Target, SYSTEM_EVTX};

/// The service key of the DHCP Client.
pub const SERVICE: &str = "Dhcp";
/// Its display name, as the System log writes it.
pub const DISPLAY_NAME: &str = "DHCP Client";

/// Where the hive stood when it was read.
#[derive(Debug, Clone, Serialize)]
pub struct HiveState {
    /// `clean`, `dirty, replayed`, or `dirty, logs missing or unusable`.
    pub state: String,
    pub logs: Vec<String>,
    pub entries_applied: usize,
    pub sequence_range: Option<(u32, u32)>,
    pub warnings: Vec<String>,
    /// The pending journal of an earlier write that was interrupted, if any: what is read may
    /// be half of that write, and nothing else is written until it is resolved.
    pub pending_journal: Option<PathBuf>,
}

/// One control set's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ControlSetReport {
    pub diagnosis: Diagnosis,
    /// Differences from the healthy configuration, value by value.
    pub differences: Vec<Difference>,
}

/// What the System event log says.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceReport {
    /// Service Control Manager events about the DHCP Client (or naming it as a dependency),
    /// newest last.
    pub events: Vec<evidence::Event>,
    /// The newest record of the log (any provider): the log's "now".
    pub log_ends: Option<String>,
    /// The branch the events point to, if any (1053/1070 hang, 1067 crash, 1069 logon, 1058
    /// disabled, 1068 dependency).
    pub points_to: Option<u32>,
    /// The last state a 7036 event recorded.
    pub last_state: Option<String>,
    /// Whether the events and the configuration tell the same story, and why not.
    pub agreement: String,
    pub warnings: Vec<String>,
}

/// The whole diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct DhcpReport {
    pub target: PathBuf,
    pub container: String,
    pub install: Install,
    pub windows: WindowsVersion,
    pub hive: HiveState,
    /// Whether image and service DLL files were checked on the disk (only when the volume holds
    /// the Windows system files: `Windows\System32\svchost.exe`).
    pub files_checked: bool,
    pub control_sets: Vec<ControlSetReport>,
    /// The control set Windows boots (`Select\Current`).
    pub current: Option<u32>,
    /// The control set Windows starts from at the next boot: `Select\Default` (`Current` is the
    /// one the last session ran; Windows copies Default into it at boot unless Last Known Good
    /// is chosen). Falls back to Current when Default is unreadable.
    pub boots: Option<u32>,
    /// Healthy when the DHCP Client starts in the control set Windows boots next and the plan
    /// has nothing to change in any control set.
    pub healthy: bool,
    /// Why the verdict cannot be given from the disk (the control set Windows boots next is
    /// damaged), if so. Never healthy then.
    pub cannot_tell: Option<String>,
    /// The code the SCM would report in the control set Windows boots next (`None`: it starts).
    pub code: Option<u32>,
    /// The article's row for that code.
    pub branch: Option<ErrorEntry>,
    pub evidence: Option<EvidenceReport>,
    pub plan: Plan,
    /// Requests and bytes the diagnosis cost, for a target behind a URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<vdisk::remote::TransferStats>,
}

/// Options of [`diagnose`] and [`repair`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub partition: Option<u32>,
    /// The article's hang/crash branch: move the service into its own svchost (Type=0x10).
    pub own_process: bool,
    /// Write even if the hive is dirty and its logs are missing.
    pub allow_incomplete: bool,
}

/// Diagnoses the DHCP Client of the Windows installation in the target at `path`.
pub fn diagnose(path: &Path, opts: &Options) -> Result<DhcpReport> {
    let target = Target::open(path, false)?;
    let install = target.choose(opts.partition)?.clone();
    let hive = target.system_hive(&install)?;
    let r = &hive.recovered.report;
    let state = if !r.was_dirty {
        "clean"
    } else if r.incomplete {
        "dirty, logs missing or unusable (recent changes may be missing)"
    } else {
        "dirty, replayed from its logs"
    };
    let hive_state = HiveState {
        state: state.into(),
        logs: hive.logs.clone(),
        entries_applied: r.entries_applied,
        sequence_range: r.sequence_range,
        warnings: r.problems.iter().chain(&r.warnings).cloned().collect(),
        pending_journal: Some(crate::journal::pending_path(&target.anchor(&install)))
            .filter(|p| std::fs::symlink_metadata(p).is_ok()),
    };
    let reg = Hive::open(&hive.recovered.bytes[..])?;
    let not_system = |e: winsvc::Error| Error::Refused(format!("not a SYSTEM hive: {e}"));
    let mut model = SystemModel::read(&reg, None).map_err(not_system)?;
    if model.version.build.is_none() {
        // SYSTEM alone did not give the build; SOFTWARE is large, so it is read only then.
        if let Some(v) = software_version(&target, &install) {
            model = SystemModel::read(&reg, Some(v)).map_err(not_system)?;
        }
    }
    let system_files = target.has_system_files(&install);
    let files = |p: &str| target.registry_file_exists(&install, p);
    let Assessment {
        control_sets,
        current,
        boots,
        cannot_tell,
        code,
        healthy,
        plan: p,
    } = assess(&model, &files, opts.own_process);
    let evidence = match target.read_file(&install, SYSTEM_EVTX) {
        Ok(Some(bytes)) => Some(read_evidence(&bytes, code)),
        _ => None,
    };
    Ok(DhcpReport {
        // As shown: a URL's SAS is redacted.
        target: target.path().to_path_buf(),
        transfer: target.transfer_stats(),
        container: target.describe(),
        install,
        windows: model.version.clone(),
        hive: hive_state,
        files_checked: system_files,
        control_sets,
        current,
        boots,
        healthy,
        cannot_tell,
        code,
        branch: code.and_then(codes::lookup).cloned(),
        evidence,
        plan: p,
    })
}

/// The DHCP Client's verdict from a model alone: what [`diagnose`] says of the configuration,
/// without the hive's state or the event log.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub control_sets: Vec<ControlSetReport>,
    /// `Select\Current`.
    pub current: Option<u32>,
    /// The control set Windows starts from at the next boot (see [`DhcpReport::boots`]).
    pub boots: Option<u32>,
    /// Why no verdict can be given (see [`DhcpReport::cannot_tell`]).
    pub cannot_tell: Option<String>,
    /// The code the SCM would report in the control set Windows boots next.
    pub code: Option<u32>,
    /// It starts in the set Windows boots next and the plan changes nothing.
    pub healthy: bool,
    pub plan: Plan,
}

/// Judges the DHCP Client in `model`: the one analysis behind `diagnose`, `repair` and the check
/// of every `reg` / `sc` write ([`crate::guard`]).
pub fn assess(
    model: &SystemModel,
    files: &analyze::FileOracle<'_>,
    own_process: bool,
) -> Assessment {
    let diagnoses = analyze::diagnose_all_sets(model, SERVICE, files);
    let base = baseline::dhcp().for_version(&model.version);
    let control_sets: Vec<ControlSetReport> = diagnoses
        .into_iter()
        .map(|d| {
            let differences = model
                .control_set(d.control_set)
                .and_then(|cs| cs.service(SERVICE))
                .zip(base.service(SERVICE))
                .map(|(svc, b)| baseline::compare(svc, b))
                .unwrap_or_default();
            ControlSetReport {
                diagnosis: d,
                differences,
            }
        })
        .collect();
    let current = model.select.current.ok().copied();
    // One policy for every command: the set Windows boots next (`SystemModel::boot_set`). A
    // set that `Select` names but that cannot be read is never replaced by another one: that
    // would call a broken machine healthy.
    let (boots, cannot_tell) = match model.boot_set() {
        Ok(cs) => (Some(cs.number), None),
        Err(e) => (
            model.select.default.ok().copied().or(current),
            Some(e.to_string()),
        ),
    };
    let boot_report =
        boots.and_then(|n| control_sets.iter().find(|c| c.diagnosis.control_set == n));
    let code = boot_report.and_then(|c| c.diagnosis.code());
    let starts = boot_report.is_some_and(|c| matches!(c.diagnosis.verdict, Verdict::Starts));
    let plan = plan::plan(
        model,
        SERVICE,
        &base,
        &plan::Options {
            own_process,
            control_sets: None,
        },
        files,
    );
    let healthy = starts && plan.changes.is_empty() && cannot_tell.is_none();
    Assessment {
        control_sets,
        current,
        boots,
        cannot_tell,
        code,
        healthy,
        plan,
    }
}

/// The exact Windows version from the SOFTWARE hive next to SYSTEM, when the target has it (the
/// healthy configuration differs between builds); `None` lets the model infer what it can from
/// SYSTEM alone.
pub(crate) fn software_version(target: &Target, install: &Install) -> Option<WindowsVersion> {
    let path = target.sibling_hive_path(install, "SOFTWARE");
    let software = target.hive(install, &path).ok()?;
    let hive = Hive::open(&software.recovered.bytes[..]).ok()?;
    WindowsVersion::from_software_hive(&hive).ok().flatten()
}

/// The SCM events about the DHCP Client and what they point to.
fn read_evidence(bytes: &[u8], config_code: Option<u32>) -> EvidenceReport {
    let query = evidence::Query {
        service: Some(SERVICE.into()),
        ..Default::default()
    };
    let mut by_display = evidence::Query {
        service: Some(DISPLAY_NAME.into()),
        ..Default::default()
    };
    by_display.keep_xml = false;
    let report = match evidence::read_log(Cursor::new(bytes), &query) {
        Ok(r) => r,
        Err(e) => {
            return EvidenceReport {
                events: Vec::new(),
                log_ends: None,
                points_to: None,
                last_state: None,
                agreement: format!("the System log could not be read: {e}"),
                warnings: Vec::new(),
            }
        }
    };
    let mut events = report.events;
    events.sort_by_key(|e| e.record_id);
    // The newest failure event decides the branch the log points to.
    let points_to = events.iter().rev().find_map(|e| match e.event_id {
        7022 | 7009 | 7011 => Some(1053),
        7023 | 7024 | 7031 | 7034 => Some(1067),
        7038 => Some(1069),
        7000 | 7001 => e
            .error
            .map(|c| c.code)
            .filter(|c| matches!(c, 1058 | 1068 | 1069 | 1075 | 1079 | 1059)),
        _ => None,
    });
    let last_state = events
        .iter()
        .rev()
        .find(|e| e.event_id == 7036)
        .and_then(|e| {
            e.state
                .map(|s| format!("{s:?} at {}", evidence::show_time(e.time)))
        });
    let running_last = events
        .iter()
        .rev()
        .find(|e| e.event_id == 7036)
        .and_then(|e| e.state)
        == Some(evidence::ServiceState::Running);
    let agreement = match (config_code, points_to) {
        (None, None) => "agree: the configuration lets the DHCP Client start, and the log shows no failure of it".into(),
        (Some(c), Some(p)) if c == p || (matches!(c, 1053 | 1070) && matches!(p, 1053 | 1070)) => {
            format!("agree: the log's newest failure points to {p}, as the configuration does")
        }
        (Some(c), _) if running_last => format!(
            "disagree: the configuration predicts {c}, but the log's last word on the DHCP Client is that it was running: the configuration changed after the last boot the log recorded (look for 7040 events), or the log is from another boot"
        ),
        // A disabled service is not started at boot, so the SCM logs no failure for it: an
        // empty failure record is what 1058 looks like.
        (Some(1058), None) => format!(
            "consistent: the configuration predicts 1058 (disabled), which the Service Control Manager does not log as a failure at boot; the log shows no failure of the DHCP Client{}",
            match &last_state {
                Some(s) => format!(", and its last recorded state is {s}"),
                None => String::new(),
            }
        ),
        (Some(c), None) => format!("disagree: the configuration predicts {c}, but the log holds no failure of the DHCP Client"),
        (None, Some(p)) => format!(
            "disagree: the log points to {p} (a failure at run time: hang, crash or logon), which the configuration alone cannot show; follow that branch"
        ),
        (Some(c), Some(p)) => format!("disagree: the configuration predicts {c}, the log's newest failure points to {p}"),
    };
    EvidenceReport {
        log_ends: report.stats.newest.map(evidence::show_time),
        events,
        points_to,
        last_state,
        agreement,
        warnings: report.warnings.iter().map(|w| w.to_string()).collect(),
    }
}

/// What [`repair`] did or would do.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub before: DhcpReport,
    pub changes: Vec<Change>,
    /// `None` for a dry run.
    pub outcome: Option<EditOutcome>,
    /// The diagnosis after the write (read back from the disk), for `--apply`.
    pub after: Option<DhcpReport>,
}

/// Repairs the DHCP Client: a dry run unless `apply`.
pub fn repair(path: &Path, opts: &Options, apply: bool) -> Result<RepairReport> {
    if apply {
        // An interrupted earlier write comes first, even when what it wrote already landed and
        // nothing seems left to repair.
        let target = Target::open(path, false)?;
        let install = target.choose(opts.partition)?.clone();
        crate::journal::check_no_pending(&target.anchor(&install))?;
    }
    let before = diagnose(path, opts)?;
    if let Some(why) = &before.cannot_tell {
        return Err(Error::Refused(format!(
            "the configuration cannot be judged, so no repair is planned: {why}"
        )));
    }
    let changes = before.plan.changes.clone();
    if !before.plan.unresolved.is_empty() && changes.is_empty() {
        return Err(Error::Refused(format!(
            "no automatic fix: {}",
            before.plan.unresolved.join("; ")
        )));
    }
    if !apply || changes.is_empty() {
        return Ok(RepairReport {
            before,
            changes,
            outcome: None,
            after: None,
        });
    }
    let edit_opts = EditOptions {
        partition: opts.partition,
        allow_incomplete: opts.allow_incomplete,
        ..Default::default()
    };
    let outcome = edit_system_hive(path, edit_opts, |ed| apply_changes(ed, &changes))?;
    // The verdict printed after the write is the one checked: the same diagnosis, read back
    // from the disk, must call the DHCP Client healthy in every control set it judges.
    let after = diagnose(path, opts)?;
    let failing: Vec<String> = after
        .control_sets
        .iter()
        .filter_map(|c| {
            c.diagnosis
                .code()
                .map(|code| format!("{} fails with {code}", c.diagnosis.control_set_name))
        })
        .chain(after.cannot_tell.clone())
        .collect();
    if !after.healthy || !failing.is_empty() {
        return Err(Error::NotVerified {
            path: path.into(),
            what: format!(
                "the DHCP Client is still predicted not to start ({})",
                if failing.is_empty() {
                    "the configuration still differs from the healthy one".to_string()
                } else {
                    failing.join("; ")
                },
            ),
            journal: outcome
                .written
                .as_ref()
                .map(|w| w.undo_journal.clone())
                .unwrap_or_default(),
        });
    }
    Ok(RepairReport {
        before,
        changes,
        outcome: Some(outcome),
        after: Some(after),
    })
}

/// Applies a plan's changes to the hive being edited. Returns whether anything changed.
pub fn apply_changes(ed: &mut Editor, changes: &[Change]) -> Result<bool> {
    let mut changed = false;
    for c in changes {
        if c.create_key {
            changed |= ed.create_key(&c.key_path)?;
        }
        match &c.new_data {
            Some(d) => {
                let bytes = d.to_bytes();
                changed |= ed.set_value(&c.key_path, &c.value_name, c.value_type, &bytes)?
                    != regf::edit::SetOutcome::Unchanged;
            }
            None => changed |= ed.delete_value(&c.key_path, &c.value_name)?,
        }
    }
    Ok(changed)
}
