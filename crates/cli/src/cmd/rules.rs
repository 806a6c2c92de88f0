//! `winrescue rules`: every check `diagnose` runs, with its article.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct RulesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RulesArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let mut metas: Vec<rules::Meta> = rules::all().iter().map(|r| r.meta()).collect();
    metas.sort_by_key(|m| m.stage);
    if a.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({
                "schema_version": rules::SCHEMA_VERSION,
                "rules": metas,
            }),
        )?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &metas {
        let severity = match m.severity {
            rules::Severity::BlocksRdp => "blocks RDP",
            rules::Severity::MayBlock => "may block",
            rules::Severity::Notice => "notice",
        };
        writeln!(
            out,
            "{:<9} {:<28} {:<10} {}",
            m.stage.name(),
            m.id,
            severity,
            m.checks
        )?;
        writeln!(out, "{:<49} {}", "", m.article)?;
    }
    Ok(ExitCode::SUCCESS)
}
