//! A service's verdict from the SYSTEM hive alone, and the DHCP Client's (the Azure article
//! "cannot RDP because the DHCP Client service is not running").
//!
//! [`assess_service`] predicts what the Service Control Manager will do with a service at the
//! next boot in every control set and why, compares its configuration value by value with the
//! healthy one, and plans the changes that restore it. It is the one analysis behind the
//! service rules of `diagnose` and `repair` and the check of every `reg` / `sc` write
//! ([`crate::guard`]).

use regf::edit::Editor;
use serde::Serialize;
use winsvc::analyze::{self, Verdict};
use winsvc::baseline::{self, Baseline, Difference};
use winsvc::plan::{self, Change, Plan};
use winsvc::{Diagnosis, SystemModel};

use crate::error::Result;

/// The service key of the DHCP Client.
pub const SERVICE: &str = "Dhcp";
/// Its display name, as the System log writes it.
pub const DISPLAY_NAME: &str = "DHCP Client";

/// One control set's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ControlSetReport {
    pub diagnosis: Diagnosis,
    /// Differences from the healthy configuration, value by value.
    pub differences: Vec<Difference>,
}

/// A service's verdict from a model alone: what the diagnosis says of the configuration,
/// without the hive's state or the event log.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub control_sets: Vec<ControlSetReport>,
    /// `Select\Current`.
    pub current: Option<u32>,
    /// The control set Windows starts from at the next boot: `Select\Default`.
    pub boots: Option<u32>,
    /// Why no verdict can be given: the control set Windows boots next cannot be read.
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
    let base = baseline::dhcp().for_version(&model.version);
    assess_service(model, SERVICE, &base, files, own_process)
}

/// Judges `service` in `model` against its healthy configuration `base` (the service and what
/// it needs): the Service Control Manager's prediction in every control set, the differences
/// value by value, and the plan that restores `base`.
pub fn assess_service(
    model: &SystemModel,
    service: &str,
    base: &Baseline,
    files: &analyze::FileOracle<'_>,
    own_process: bool,
) -> Assessment {
    let diagnoses = analyze::diagnose_all_sets(model, service, files);
    let control_sets: Vec<ControlSetReport> = diagnoses
        .into_iter()
        .map(|d| {
            let differences = model
                .control_set(d.control_set)
                .and_then(|cs| cs.service(service))
                .zip(base.service(service))
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
        service,
        base,
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

/// Applies a plan's changes to the hive being edited. Returns whether anything changed.
pub fn apply_changes(ed: &mut Editor, changes: &[Change]) -> Result<bool> {
    let mut changed = false;
    for c in changes {
        changed |= crate::change::apply_one(ed, &crate::change::Change::from_plan(c))?;
    }
    Ok(changed)
}
