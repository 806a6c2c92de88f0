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
    /// A disk image (raw, VHD, VHDX), a block device, a folder holding a Windows tree, a
    /// SYSTEM hive file, or the http(s) URL of a disk image (an Azure SAS URL: its secrets are
    /// never shown). Several targets are diagnosed concurrently (see --jobs); the exit code is
    /// then the worst one.
    #[arg(required = true, num_args = 1..)]
    pub targets: Vec<PathBuf>,
    /// How many targets to diagnose at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// The partition holding Windows, when the disk has several installations.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Plan the hang / crash branch fix too: the service in its own process (Type=0x10).
    #[arg(long)]
    pub own_process: bool,
    /// Print JSON (with several targets, JSON Lines: one report or failure per line).
    #[arg(long)]
    pub json: bool,
    /// Print the requests and bytes a URL target cost (on standard error).
    #[arg(long)]
    pub stats: bool,
}

pub fn run(a: DiagnoseArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let opts = dhcp::Options {
        partition: a.partition,
        own_process: a.own_process,
        allow_incomplete: false,
    };
    if a.targets.len() > 1 {
        return run_many(&a, &opts, out);
    }
    let target = &a.targets[0];
    let report = dhcp::diagnose(target, &opts).map_err(crate::cmd::refusal)?;
    if a.stats {
        match &report.transfer {
            Some(t) => eprintln!(
                "transfer: {} requests, {} bytes received, {} retries",
                t.requests, t.bytes, t.retries
            ),
            None => eprintln!("transfer: none (a local target)"),
        }
    }
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
            if report.transfer.is_some() {
                writeln!(
                    out,
                    "    winrescue writes to a local image or to the disk attached to a rescue VM: see the README"
                )?;
                return Ok(ExitCode::from(1));
            }
            let shown = target.display().to_string();
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

/// Exit code of a report: 0 healthy, 1 a problem found.
fn report_code(r: &DhcpReport) -> u8 {
    if r.healthy {
        0
    } else {
        1
    }
}

/// Several targets, `jobs` at a time; output in the order given: JSON Lines with `--json`
/// (a failure is a record `{"target", "error", "exit_code"}`), otherwise each report and then a
/// summary table. The exit code is the worst one (an unreadable target: 3).
fn run_many(a: &DiagnoseArgs, opts: &dhcp::Options, out: &mut dyn Write) -> Result<ExitCode> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let results: Mutex<Vec<Option<std::result::Result<DhcpReport, String>>>> =
        Mutex::new((0..a.targets.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let workers = usize::from(a.jobs).min(a.targets.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(target) = a.targets.get(i) else {
                    break;
                };
                let r = dhcp::diagnose(target, opts).map_err(|e| e.to_string());
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut worst = 0u8;
    let mut summary = Vec::new();
    for (target, r) in a.targets.iter().zip(results) {
        let shown = crate::input::shown(target);
        let r = r.unwrap_or_else(|| Err("not diagnosed".into()));
        let (code, verdict) = match &r {
            Ok(report) => (report_code(report), verdict_word(report)),
            Err(e) => (crate::EXIT_BAD_INPUT, format!("error: {e}")),
        };
        worst = worst.max(code);
        if a.json {
            let line = match &r {
                Ok(report) => serde_json::to_string(report)?,
                Err(e) => serde_json::to_string(&serde_json::json!({
                    "target": shown,
                    "error": e,
                    "exit_code": code,
                }))?,
            };
            writeln!(out, "{line}")?;
        } else {
            match &r {
                Ok(report) => print_report(report, None, out)?,
                Err(e) => writeln!(out, "target:   {shown}\nerror:    {e}")?,
            }
            writeln!(out)?;
        }
        if a.stats {
            if let Ok(Some(t)) = r.as_ref().map(|r| r.transfer) {
                eprintln!(
                    "transfer: {shown}: {} requests, {} bytes received, {} retries",
                    t.requests, t.bytes, t.retries
                );
            }
        }
        summary.push((shown, code, verdict));
    }
    if !a.json {
        writeln!(out, "summary ({} targets):", summary.len())?;
        for (shown, code, verdict) in &summary {
            writeln!(out, "  {code}  {shown}: {verdict}")?;
        }
    }
    Ok(ExitCode::from(worst))
}

/// One line for the summary table.
fn verdict_word(r: &DhcpReport) -> String {
    match (r.code, &r.cannot_tell) {
        (_, Some(why)) => format!("cannot tell: {why}"),
        (None, None) if r.healthy => "healthy".into(),
        (None, None) => "starts, but differs from the healthy configuration".into(),
        (Some(code), None) => format!("the DHCP Client will NOT start: error {code}"),
    }
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
    if let Some(j) = &r.hive.pending_journal {
        let j = shell_quote(&j.display().to_string());
        writeln!(
            out,
            "          warning: an earlier write to this target was interrupted: what is read here may be half written; run `winrescue undo {j}` (back to before it) or `winrescue undo --redo {j}` (finish it)"
        )?;
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
