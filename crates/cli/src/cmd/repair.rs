//! `winrescue repair TARGET [--apply]`: fix the DHCP Client on the disk, through an undo journal.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rescue::dhcp;

use crate::output::shell_quote;

#[derive(Args)]
pub struct RepairArgs {
    /// A disk image (raw, VHD, VHDX), a block device, a folder holding a Windows tree, or a
    /// SYSTEM hive file.
    pub target: PathBuf,
    /// Write the changes (the default is a dry run that only shows them).
    #[arg(long)]
    pub apply: bool,
    /// The partition holding Windows, when the disk has several installations.
    #[arg(long)]
    pub partition: Option<u32>,
    /// The article's hang / crash branch: run the DHCP Client in its own process (Type=0x10).
    #[arg(long)]
    pub own_process: bool,
    /// Write even though the hive is dirty and its transaction logs are missing (its most
    /// recent changes would be lost for good).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Print the report as JSON (it says whether the changes were applied or only planned).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RepairArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let opts = dhcp::Options {
        partition: a.partition,
        own_process: a.own_process,
        allow_incomplete: a.allow_incomplete,
    };
    let report = dhcp::repair(&a.target, &opts, a.apply).map_err(crate::cmd::refusal)?;
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if report.changes.is_empty() {
        writeln!(
            out,
            "nothing to repair: {}",
            if report.before.healthy {
                "the DHCP Client is healthy"
            } else {
                "no change would help (see `winrescue diagnose`)"
            }
        )?;
        return Ok(if report.before.healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let current = report.before.current;
    writeln!(
        out,
        "{} change{} in the SYSTEM hive of {}:",
        report.changes.len(),
        if report.changes.len() == 1 { "" } else { "s" },
        crate::input::shown(&a.target)
    )?;
    for c in &report.changes {
        writeln!(out, "  {c}")?;
    }
    if current.is_none() {
        writeln!(
            out,
            "  (Select\\Current is unreadable: every control set is changed)"
        )?;
    }
    match (&report.outcome, &report.after) {
        (None, _) => {
            writeln!(out)?;
            writeln!(
                out,
                "dry run: nothing was written. To write these changes (an undo journal is kept):"
            )?;
            writeln!(
                out,
                "    winrescue repair {} --apply{}",
                shell_quote(&crate::input::shown(&a.target)),
                if a.own_process { " --own-process" } else { "" }
            )?;
        }
        (Some(o), after) => {
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
            if let Some(after) = after {
                let verdicts: Vec<String> = after
                    .control_sets
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {}",
                            c.diagnosis.control_set_name,
                            if c.diagnosis.code().is_none() {
                                "starts".to_string()
                            } else {
                                format!("fails {}", c.diagnosis.code().unwrap_or(0))
                            }
                        )
                    })
                    .collect();
                writeln!(
                    out,
                    "verified: read back from the disk, the DHCP Client now starts ({})",
                    verdicts.join("; ")
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
