//! `winrescue repair TARGET [--apply]`: fix what `diagnose` finds, through an undo journal.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rules::{RepairOptions, Selection, Status};

use crate::output::shell_quote;

#[derive(Args)]
pub struct RepairArgs {
    /// A disk image (raw, VHD, VHDX), a block device, a folder holding a Windows tree, or a
    /// SYSTEM hive file.
    pub target: PathBuf,
    /// Write the changes (the default is a dry run that only shows them).
    #[arg(long)]
    pub apply: bool,
    /// Fix only this finding (a rule id from `diagnose`; repeat for several). Notices are fixed
    /// only when named here.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// The partition holding Windows, when the disk has several installations.
    #[arg(long)]
    pub partition: Option<u32>,
    /// The article's hang / crash branch: run a failing service in its own process (Type=0x10).
    #[arg(long)]
    pub own_process: bool,
    /// Write even though the hive is dirty and its transaction logs are missing (its most
    /// recent changes would be lost for good).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Print the report as JSON (`applied` says whether the changes were written or planned).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RepairArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let opts = RepairOptions {
        selection: Selection {
            rules: Vec::new(),
            partition: a.partition,
            options: rules::Options {
                own_process: a.own_process,
            },
        },
        only: a.only.clone(),
        apply: a.apply,
        allow_incomplete: a.allow_incomplete,
    };
    let report = rules::repair(&a.target, &opts).map_err(crate::cmd::rules_error)?;
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let shown = crate::input::shown(&a.target);
    if report.changes.is_empty() {
        let healthy = report.before.exit_code() == 0;
        writeln!(
            out,
            "nothing to repair: {}",
            if healthy {
                "nothing on the disk blocks RDP"
            } else {
                "no change would help (see `winrescue diagnose`)"
            }
        )?;
        return Ok(ExitCode::from(report.before.exit_code()));
    }
    let hives: std::collections::BTreeSet<&str> =
        report.changes.iter().map(|c| c.hive.file_name()).collect();
    writeln!(
        out,
        "{} change{} in the {} hive{} of {shown}, for {}:",
        report.changes.len(),
        if report.changes.len() == 1 { "" } else { "s" },
        hives.iter().copied().collect::<Vec<_>>().join(" and "),
        if hives.len() == 1 { "" } else { "s" },
        report.fixing.join(", ")
    )?;
    for c in &report.changes {
        writeln!(out, "  {c}")?;
    }
    if report.before.control_sets.current.is_none() {
        writeln!(
            out,
            "  (Select\\Current is unreadable: every control set is changed)"
        )?;
    }
    for u in &report.unresolved {
        writeln!(out, "  not fixed automatically: {u}")?;
    }
    let Some(o) = &report.outcome else {
        writeln!(out)?;
        writeln!(
            out,
            "dry run: nothing was written. To write these changes (an undo journal is kept):"
        )?;
        let mut cmd = format!("    winrescue repair {} --apply", shell_quote(&shown));
        for id in &a.only {
            cmd.push_str(&format!(" --only {}", shell_quote(id)));
        }
        if a.own_process {
            cmd.push_str(" --own-process");
        }
        writeln!(out, "{cmd}")?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(out)?;
    writeln!(
        out,
        "written: {} hive pages ({} device ranges), hive sequence number {}",
        o.pages,
        o.ranges.len(),
        o.sequence
    )?;
    let replayed: usize = o.hives.iter().map(|h| h.replayed_pages).sum();
    if replayed > 0 {
        writeln!(
            out,
            "         {replayed} of those pages only carry what the hive's transaction logs held: a dirty hive is written back recovered and clean"
        )?;
    }
    if let Some(w) = &o.written {
        for warning in &w.warnings {
            writeln!(out, "warning: {warning}")?;
        }
        writeln!(
            out,
            "undo:    winrescue undo {}",
            shell_quote(&w.undo_journal.display().to_string())
        )?;
    }
    if let Some(after) = &report.after {
        let fixed: Vec<&str> = report
            .fixing
            .iter()
            .filter(|id| {
                after
                    .finding(id)
                    .is_some_and(|f| f.status == Status::Healthy)
            })
            .map(String::as_str)
            .collect();
        writeln!(
            out,
            "verified: read back from the disk, healthy now: {}",
            fixed.join(", ")
        )?;
        let (line, _) = crate::report::verdict(after);
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}
