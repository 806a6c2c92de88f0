//! `hive check` and `hive replay`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use regf::check::{check, Severity};
use serde_json::json;

use super::{CheckArgs, ReplayArgs};
use crate::hivefile;

pub fn check_cmd(a: &CheckArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let bytes = crate::input::read_file(&a.hive)?;
    let report = check(&bytes);
    let sound = report.is_sound();
    if a.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({"file": a.hive.display().to_string(), "sound": sound, "report": report}),
        )?;
        writeln!(out)?;
    } else {
        for f in &report.faults {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            writeln!(
                out,
                "{sev}: file offset 0x{:x}: [{}] {}",
                f.file_offset, f.code, f.message
            )?;
        }
        if report.faults_not_listed > 0 {
            writeln!(
                out,
                "... and {} more faults not listed",
                report.faults_not_listed
            )?;
        }
        let s = &report.stats;
        writeln!(
            out,
            "{}: {} bins, {} keys, {} values, {} security records, {} allocated cells, {} free cells ({} bytes free, largest {}); {} errors, {} warnings",
            a.hive.display(),
            s.bins,
            s.keys,
            s.values,
            s.security_records,
            s.allocated_cells,
            s.free_cells,
            s.free_bytes,
            s.largest_free_cell,
            report.errors().count(),
            report.faults.iter().filter(|f| f.severity == Severity::Warning).count()
        )?;
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn replay_cmd(a: &ReplayArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let loaded = hivefile::load(&a.hive, false, &a.logs)?;
    let r = loaded
        .replay
        .as_ref()
        .expect("load with replay gives a report");
    let mut refusals: Vec<String> = r.problems.clone();
    if r.incomplete {
        refusals.push("the hive is dirty and no log could be applied".into());
    }
    if !refusals.is_empty() && !a.force {
        return Err(anyhow::Error::new(crate::cmd::WriteRefused(format!(
            "{}: not written: {} (use --force to write anyway)",
            a.output.display(),
            refusals.join("; ")
        ))));
    }
    // The recovered hive is the base block and the hive-bins data Windows holds after the
    // replay; bytes past that (remnants of earlier, larger states kept in the file) are not part
    // of it, and Windows drops them when it writes the hive back.
    let all = loaded.hive.bytes();
    let bytes = &all[..(regf::BASE_BLOCK_SIZE + r.hive_bins_after as usize).min(all.len())];
    let report = check(bytes);
    if !report.is_sound() {
        let first = report
            .errors()
            .next()
            .map(|f| format!("file offset 0x{:x}: {}", f.file_offset, f.message))
            .unwrap_or_default();
        return Err(anyhow::Error::new(crate::cmd::WriteRefused(format!(
            "{}: not written: the recovered hive fails the check ({} errors; first: {first})",
            a.output.display(),
            report.errors().count()
        ))));
    }
    crate::output::write_new_file(&a.output, bytes)?;
    writeln!(
        out,
        "{}: {} log entries, {} pages applied{}; hive-bins data {} bytes; written to {}",
        a.hive.display(),
        r.entries_applied,
        r.pages_applied,
        r.sequence_range
            .map(|(x, y)| format!(" (sequence {x}..{y})"))
            .unwrap_or_default(),
        r.hive_bins_after,
        a.output.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
