//! Running the rules: [`diagnose`] makes the report, [`repair`] makes the changes its findings
//! plan, through the one journaled applier, and checks the report again on the disk.

use std::path::Path;

use rescue::change;
use rescue::edit::{EditOptions, EditOutcome, Transaction};
use rescue::offline::Offline;
use rescue::target::Target;
use serde::Serialize;

use crate::report::{
    Container, ControlSets, Finding, Report, Severity, Stage, Status, Verdict, SCHEMA_VERSION,
};
use crate::rule::{Options, Rule};
use crate::Error;

/// Every rule, in the order the report shows them.
pub fn all() -> Vec<&'static dyn Rule> {
    let mut v: Vec<&'static dyn Rule> = Vec::new();
    v.extend(crate::pack::SERVICES.iter().map(|r| r as &dyn Rule));
    v.extend(crate::pack::VALUES.iter().map(|r| r as &dyn Rule));
    v.extend(crate::firewall::RULES.iter().map(|r| r as &dyn Rule));
    v.extend(crate::code::ALL.iter().copied());
    v.extend(crate::adapter::ALL.iter().copied());
    v.extend(crate::security::ALL.iter().copied());
    v.extend(crate::access::RULES.iter().map(|r| r as &dyn Rule));
    v
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these rules (by id); all when empty.
    pub rules: Vec<String>,
    pub partition: Option<u32>,
    pub options: Options,
}

impl Selection {
    fn rules(&self) -> Result<Vec<&'static dyn Rule>, Error> {
        let all = all();
        for id in &self.rules {
            if !all.iter().any(|r| r.meta().id.eq_ignore_ascii_case(id)) {
                return Err(Error::UnknownRule(id.clone()));
            }
        }
        Ok(all
            .into_iter()
            .filter(|r| {
                self.rules.is_empty()
                    || self
                        .rules
                        .iter()
                        .any(|id| r.meta().id.eq_ignore_ascii_case(id))
            })
            .collect())
    }
}

/// Diagnoses the target at `path`.
pub fn diagnose(path: &Path, sel: &Selection) -> Result<Report, Error> {
    let rules = sel.rules()?;
    let w = Offline::open(path, sel.partition)?;
    Ok(run(&w, &rules, &sel.options))
}

/// Runs `rules` on an opened install.
pub fn run(w: &Offline, rules: &[&dyn Rule], opts: &Options) -> Report {
    let mut findings: Vec<Finding> = rules.iter().map(|r| r.check(w, opts)).collect();
    // The connection's way, in order; within a stage what counts first, the worst first.
    findings.sort_by_key(|f| (f.stage, !f.counts(), status_rank(f.status), f.severity));
    let verdict = if findings
        .iter()
        .any(|f| f.status == Status::Broken && f.severity == Severity::BlocksRdp)
    {
        Verdict::Blocked
    } else if findings
        .iter()
        .any(|f| f.status == Status::Broken && f.severity == Severity::MayBlock)
    {
        Verdict::MayBeBlocked
    } else if findings.iter().any(Finding::counts) {
        Verdict::CannotTell
    } else {
        Verdict::NothingBlocks
    };
    let model = w.model();
    let target = w.target();
    Report {
        schema_version: SCHEMA_VERSION,
        target: target.path().to_path_buf(),
        container: container(target),
        install: w.install().clone(),
        windows: model.version.clone(),
        hives: w.hive_states().into_iter().cloned().collect(),
        pending_journal: w.pending_journal().map(Path::to_path_buf),
        files_checked: w.files_checked(),
        control_sets: ControlSets {
            boots: model.boot_set().ok().map(|cs| cs.number),
            current: model.select.current.ok().copied(),
            last_known_good: model.select.last_known_good.ok().copied(),
            present: model.control_sets.iter().map(|cs| cs.number).collect(),
            cannot_tell: model.boot_set().err().map(|e| e.to_string()),
        },
        verdict,
        findings,
        outside_the_disk: OUTSIDE.iter().map(|s| s.to_string()).collect(),
        transfer: target.transfer_stats(),
    }
}

fn status_rank(s: Status) -> u8 {
    match s {
        Status::Broken => 0,
        Status::CannotTell => 1,
        Status::NotChecked => 2,
        Status::Healthy => 3,
    }
}

/// What no disk can tell, said at the end of every report.
const OUTSIDE: &[&str] = &[
    "the network security group must allow inbound TCP to the RDP port from the client",
    "the VM needs a public IP address, a VPN or Bastion on the client's way",
    "just-in-time access, if enabled, must have opened the port",
    "the user's name and password (or Azure AD sign-in) must be valid",
];

fn container(t: &Target) -> Container {
    use vdisk::ContainerKind as K;
    match t.disk_identity() {
        Some(id) => Container {
            kind: match id.kind {
                K::Raw => "raw",
                K::VhdFixed => "vhd_fixed",
                K::VhdDynamic => "vhd_dynamic",
                K::VhdDifferencing => "vhd_differencing",
                K::VhdxFixed => "vhdx_fixed",
                K::VhdxDynamic => "vhdx_dynamic",
                _ => "disk",
            }
            .into(),
            bytes: Some(id.size),
        },
        None => Container {
            kind: match t.kind() {
                rescue::target::TargetKind::Folder => "folder".into(),
                _ => "hive_file".into(),
            },
            bytes: None,
        },
    }
}

/// What `repair` does.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    pub selection: Selection,
    /// Fix only these findings (rule ids), notices included; by default every finding that
    /// blocks or may block RDP.
    pub only: Vec<String>,
    /// Write (otherwise a dry run).
    pub apply: bool,
    /// Write even if a hive is dirty and its logs are missing.
    pub allow_incomplete: bool,
}

/// What [`repair`] did or would do.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub schema_version: u32,
    /// `false`: a dry run, nothing was written.
    pub applied: bool,
    pub before: Report,
    /// The findings the repair addresses.
    pub fixing: Vec<String>,
    pub changes: Vec<change::Change>,
    /// Findings that are broken but have no automatic fix.
    pub unresolved: Vec<String>,
    pub outcome: Option<EditOutcome>,
    /// The report read back from the disk after the write.
    pub after: Option<Report>,
}

/// Repairs what the diagnosis found: a dry run unless `opts.apply`.
pub fn repair(path: &Path, opts: &RepairOptions) -> Result<RepairReport, Error> {
    let all = all();
    for id in &opts.only {
        if !all.iter().any(|r| r.meta().id.eq_ignore_ascii_case(id)) {
            return Err(Error::UnknownRule(id.clone()));
        }
    }
    if opts.apply {
        // An interrupted earlier write comes first, even when what it wrote already landed and
        // nothing seems left to repair.
        let target = Target::open(path, false)?;
        let install = target.choose(opts.selection.partition)?.clone();
        rescue::journal::check_no_pending(&target.anchor(&install))?;
    }
    let before = diagnose(path, &opts.selection)?;
    if let Some(why) = &before.control_sets.cannot_tell {
        return Err(Error::CannotJudge(why.clone()));
    }
    let chosen: Vec<&Finding> = before
        .findings
        .iter()
        .filter(|f| f.status == Status::Broken)
        .filter(|f| {
            if opts.only.is_empty() {
                f.counts()
            } else {
                opts.only.iter().any(|id| f.rule.eq_ignore_ascii_case(id))
            }
        })
        .collect();
    let fixing: Vec<String> = chosen.iter().map(|f| f.rule.clone()).collect();
    let mut changes: Vec<change::Change> = Vec::new();
    for c in chosen.iter().flat_map(|f| &f.changes) {
        // Two findings may plan the same change (a dependency of two services).
        if !changes.contains(c) {
            changes.push(c.clone());
        }
    }
    let unresolved: Vec<String> = chosen
        .iter()
        .flat_map(|f| f.unresolved.iter().map(move |u| format!("{}: {u}", f.rule)))
        .collect();
    if changes.is_empty() && !unresolved.is_empty() {
        return Err(Error::NoAutomaticFix(unresolved.join("; ")));
    }
    if !opts.apply || changes.is_empty() {
        return Ok(RepairReport {
            schema_version: SCHEMA_VERSION,
            applied: false,
            before,
            fixing,
            changes,
            unresolved,
            outcome: None,
            after: None,
        });
    }
    let mut tx = Transaction::open(
        path,
        EditOptions {
            partition: opts.selection.partition,
            allow_incomplete: opts.allow_incomplete,
            ..Default::default()
        },
    )?;
    change::apply(&mut tx, &changes)?;
    let outcome = tx.commit(&format!("repair {}", fixing.join(" ")))?;
    // The verdict printed after the write is the one checked: the same diagnosis, read back
    // from the disk, must find every repaired finding healthy in every control set.
    let after = diagnose(path, &opts.selection)?;
    let still: Vec<String> = fixing
        .iter()
        .filter_map(|id| after.finding(id))
        .filter(|f| f.status != Status::Healthy || still_failing_somewhere(f))
        .map(|f| format!("{}: {}", f.rule, f.title))
        .collect();
    if !still.is_empty() {
        return Err(Error::Rescue(rescue::Error::NotVerified {
            path: path.into(),
            what: format!(
                "the diagnosis read back from the disk still finds {}",
                still.join("; ")
            ),
            journal: outcome
                .written
                .as_ref()
                .map(|w| w.undo_journal.clone())
                .unwrap_or_default(),
        }));
    }
    Ok(RepairReport {
        schema_version: SCHEMA_VERSION,
        applied: true,
        before,
        fixing,
        changes,
        unresolved,
        outcome: Some(outcome),
        after: Some(after),
    })
}

/// A service that is healthy where Windows boots next but still fails in another control set
/// (Last Known Good would bring the failure back).
fn still_failing_somewhere(f: &Finding) -> bool {
    f.service
        .as_ref()
        .is_some_and(|s| s.control_sets.iter().any(|c| c.diagnosis.code().is_some()))
}

/// The stages in order, with their findings: what the text report walks.
pub fn by_stage(r: &Report) -> Vec<(Stage, Vec<&Finding>)> {
    Stage::ALL
        .iter()
        .map(|&s| (s, r.findings.iter().filter(|f| f.stage == s).collect()))
        .filter(|(_, f): &(Stage, Vec<&Finding>)| !f.is_empty())
        .collect()
}
