//! `winrescue diagnose TARGET`: why the DHCP Client will not start, from the disk alone.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::output::shell_quote;
use rescue::dhcp::{self, DhcpReport};
use winsvc::Verdict;

#[derive(Args)]
pub struct DiagnoseArgs {
    /// A disk image (raw, VHD, VHDX), a block device, a folder holding a Windows tree, or a
    /// SYSTEM hive file.
    pub target: PathBuf,
    /// The partition holding Windows, when the disk has several installations.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Plan the hang / crash branch fix too: the service in its own process (Type=0x10).
    #[arg(long)]
    pub own_process: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: DiagnoseArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let opts = dhcp::Options {
        partition: a.partition,
        own_process: a.own_process,
        allow_incomplete: false,
    };
    let report = dhcp::diagnose(&a.target, &opts)?;
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        // Colour only for a person at a terminal: never in a pipe or a file, never with NO_COLOR
        // (https://no-color.org: set to anything non-empty).
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        // `out` escapes control characters (text from the disk may hold some): the colour's own
        // codes go straight to the terminal, the text through `out`.
        let mut raw = std::io::stdout();
        print_report(&report, colour.then_some(&mut raw as &mut dyn Write), out)?;
        if !report.healthy && !report.plan.changes.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "to repair (a dry run first, then --apply; an undo journal is kept):"
            )?;
            let shown = a.target.display().to_string();
            let target = match shown.strip_suffix(".xz") {
                // A compressed image is read from a temporary copy; it has to be decompressed
                // to be repaired in place.
                Some(plain) => {
                    writeln!(out, "    xz -dk {}", shell_quote(&shown))?;
                    plain.to_string()
                }
                None => shown,
            };
            writeln!(
                out,
                "    winrescue repair {}{}",
                shell_quote(&target),
                if a.own_process { " --own-process" } else { "" }
            )?;
        }
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The verdict in one line, and whether it is good news.
fn verdict(r: &DhcpReport) -> (String, bool) {
    match r.code {
        _ if r.cannot_tell.is_some() => (
            format!(
                "verdict:  cannot tell offline: {}",
                r.cannot_tell.as_deref().unwrap_or_default()
            ),
            false,
        ),
        None if r.healthy => ("verdict:  healthy: the DHCP Client starts at the next boot and its configuration is the healthy one".into(), true),
        None => ("verdict:  the DHCP Client starts in the control set Windows boots next, but the configuration differs from the healthy one (see below)".into(), false),
        Some(code) => {
            let sym = r.branch.as_ref().map(|b| b.symbol.as_str()).unwrap_or("");
            (
                format!("verdict:  the DHCP Client will NOT start at the next boot: error {code} {sym}"),
                false,
            )
        }
    }
}

/// Evidence lines shown in the text report; `winrescue events` shows them all.
const EVIDENCE_SHOWN: usize = 8;

/// The human report: the verdict first, then how it was reached. `colour`: where the colour
/// codes of the verdict go (the terminal behind `out`), `None` for none.
pub fn print_report(
    r: &DhcpReport,
    colour: Option<&mut dyn Write>,
    out: &mut dyn Write,
) -> Result<()> {
    let (line, good) = verdict(r);
    match colour {
        Some(raw) => {
            // Green for healthy, bold red for anything else.
            let code = if good { "32" } else { "1;31" };
            out.flush()?;
            write!(raw, "\x1b[{code}m")?;
            raw.flush()?;
            write!(out, "{line}")?;
            out.flush()?;
            write!(raw, "\x1b[0m")?;
            raw.flush()?;
            writeln!(out)?;
        }
        None => writeln!(out, "{line}")?,
    }
    let where_ = match (r.install.partition, &r.install.label) {
        (Some(p), Some(l)) => format!("partition {p} (label {l:?}), "),
        (Some(p), None) => format!("partition {p}, "),
        _ => String::new(),
    };
    writeln!(out, "target:   {} ({})", r.target.display(), r.container)?;
    writeln!(out, "windows:  {where_}{}", r.install.system_path)?;
    let v = &r.windows;
    let mut version = format!("{:?}", v.family);
    if let Some(b) = v.build {
        version.push_str(&format!(", build {b}"));
    }
    if let Some(p) = &v.product_name {
        version.push_str(&format!(", {p}"));
    }
    writeln!(
        out,
        "version:  {version} ({:?}{})",
        v.source,
        v.evidence
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )?;
    let mut hive = format!("hive:     {}", r.hive.state);
    if let Some((a, b)) = r.hive.sequence_range {
        hive.push_str(&format!(
            " ({} log entries, sequence {a}..{b})",
            r.hive.entries_applied
        ));
    }
    writeln!(out, "{hive}")?;
    for w in &r.hive.warnings {
        writeln!(out, "          warning: {w}")?;
    }
    if !r.files_checked {
        writeln!(out, "files:    not checked (the target holds no Windows\\System32\\svchost.exe: a partial copy or a bare hive)")?;
    }
    for b in &r.install.write_blockers {
        writeln!(out, "          cannot write: {b}")?;
    }
    writeln!(out)?;
    if let (Some(b), Some(c)) = (r.boots, r.current) {
        if b != c {
            writeln!(out, "boots:    ControlSet{b:03} (Select\\Default) at the next start; the last session ran ControlSet{c:03} (Select\\Current)")?;
        }
    }
    writeln!(out, "DHCP Client (Dhcp), control set by control set:")?;
    for cs in &r.control_sets {
        let d = &cs.diagnosis;
        let roles: Vec<String> = d.roles.iter().map(|x| format!("{x:?}")).collect();
        let roles = if roles.is_empty() {
            String::new()
        } else {
            format!(" [{}]", roles.join(", "))
        };
        let verdict = match &d.verdict {
            Verdict::Starts => "starts".to_string(),
            _ => d
                .summary()
                .split_once(": ")
                .map(|x| x.1.to_string())
                .unwrap_or_else(|| d.summary()),
        };
        writeln!(out, "  {}{roles}: {verdict}", d.control_set_name)?;
        for c in &d.chain {
            writeln!(out, "      because: {}", c.text)?;
        }
        for diff in &cs.differences {
            writeln!(out, "      differs: {}", diff_line(diff))?;
        }
        // Without the system files every image is "not checked": said once above.
        for n in d
            .notes
            .iter()
            .filter(|n| r.files_checked || !n.text.contains("not checked on disk"))
        {
            writeln!(out, "      note: {}", n.text)?;
        }
    }
    writeln!(out)?;
    if let Some(b) = &r.branch {
        writeln!(
            out,
            "article:  branch {} ({}): {}",
            b.code, b.meaning, b.article_action
        )?;
        for c in &b.article_commands {
            writeln!(out, "            {c}")?;
        }
        writeln!(out, "winrescue: {}", b.winrescue)?;
    }
    if let Some(e) = &r.evidence {
        writeln!(out)?;
        let total = e.events.len();
        let count = if total > EVIDENCE_SHOWN {
            format!(
                "{total} events about the DHCP Client, {EVIDENCE_SHOWN} of {total} shown, the newest (all: winrescue events {} --service Dhcp)",
                shell_quote(&r.target.display().to_string())
            )
        } else {
            format!("{total} events about the DHCP Client")
        };
        writeln!(
            out,
            "evidence: System event log{}: {count}",
            e.log_ends
                .as_ref()
                .map(|t| format!(" (ends {t})"))
                .unwrap_or_default(),
        )?;
        let shown = e
            .events
            .iter()
            .rev()
            .take(EVIDENCE_SHOWN)
            .collect::<Vec<_>>();
        for ev in shown.into_iter().rev() {
            writeln!(
                out,
                "          {} {} #{}: {}",
                evidence::show_time(ev.time),
                ev.event_id,
                ev.record_id,
                ev.summary()
            )?;
        }
        if let Some(s) = &e.last_state {
            writeln!(out, "          last recorded state: {s}")?;
        }
        writeln!(out, "          {}", e.agreement)?;
        for w in e.warnings.iter().take(3) {
            writeln!(out, "          log warning: {w}")?;
        }
    } else {
        writeln!(out)?;
        writeln!(out, "evidence: no System event log in the target")?;
    }
    if !r.plan.changes.is_empty() {
        writeln!(out)?;
        let n = r.plan.changes.len();
        writeln!(out, "fix:      {n} change{}", if n == 1 { "" } else { "s" })?;
        for c in &r.plan.changes {
            writeln!(out, "          {c}")?;
        }
    }
    for u in &r.plan.unresolved {
        writeln!(out, "          not fixed automatically: {u}")?;
    }
    Ok(())
}

fn diff_line(d: &winsvc::baseline::Difference) -> String {
    let sub = d
        .subkey
        .as_ref()
        .map(|s| format!("{s}\\"))
        .unwrap_or_default();
    format!(
        "{sub}{}: found {}, healthy {}",
        d.value, d.found, d.expected
    )
}
