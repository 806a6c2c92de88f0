//! The text rendering of a diagnosis report (`rules::Report`): the verdict first, then the
//! connection's way stage by stage, then the detail of what is broken and how to fix it.

use std::io::Write;

use anyhow::Result;
use rules::report::{Agreement, Evidence, Finding, ServiceDetail};
use rules::{Report, Severity, Status, Verdict};
use winsvc::Verdict as ScmVerdict;

use crate::output::shell_quote;

/// Evidence lines shown per service; `winrescue events` shows them all.
const EVIDENCE_SHOWN: usize = 8;

/// The verdict in one line, and whether it is good news.
pub fn verdict(r: &Report) -> (String, bool) {
    let counting: Vec<&Finding> = r.counting().collect();
    let first = counting
        .first()
        .map(|f| f.title.as_str())
        .unwrap_or_default();
    let more = match counting.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    match r.verdict {
        Verdict::NothingBlocks => (
            "verdict:  healthy: nothing on the disk blocks RDP".into(),
            true,
        ),
        Verdict::Blocked => (format!("verdict:  RDP is blocked: {first}{more}"), false),
        Verdict::MayBeBlocked => (
            format!("verdict:  RDP may be blocked: {first}{more}"),
            false,
        ),
        Verdict::CannotTell => (
            format!(
                "verdict:  cannot tell offline: {}",
                counting
                    .first()
                    .and_then(|f| f.cannot_tell.as_deref())
                    .unwrap_or(first)
            ),
            false,
        ),
    }
}

/// One line for a summary table.
pub fn verdict_word(r: &Report) -> String {
    let (line, _) = verdict(r);
    line.trim_start_matches("verdict:").trim().to_string()
}

/// The whole report. `colour`: where the colour codes of the verdict go (the terminal behind
/// `out`), `None` for none.
pub fn print(r: &Report, colour: Option<&mut dyn Write>, out: &mut dyn Write) -> Result<()> {
    let (line, good) = verdict(r);
    match colour {
        Some(raw) => {
            // Green for healthy, bold red for anything else. `out` escapes control characters,
            // so the colour's own codes go straight to the terminal.
            out.flush()?;
            write!(raw, "\x1b[{}m", if good { "32" } else { "1;31" })?;
            raw.flush()?;
            write!(out, "{line}")?;
            out.flush()?;
            write!(raw, "\x1b[0m")?;
            raw.flush()?;
            writeln!(out)?;
        }
        None => writeln!(out, "{line}")?,
    }
    header(r, out)?;
    writeln!(out)?;
    writeln!(out, "the way of a connection:")?;
    for (stage, findings) in rules::by_stage(r) {
        for (i, f) in findings.iter().enumerate() {
            let label = if i == 0 { stage.name() } else { "" };
            let mark = match (f.status, f.severity) {
                (Status::Broken, Severity::Notice) => "notice",
                (Status::Broken, _) => "BROKEN",
                (Status::Healthy, _) => "ok",
                (Status::CannotTell, _) => "cannot tell",
                (Status::NotChecked, _) => "not checked",
            };
            let extra = match f.status {
                Status::CannotTell | Status::NotChecked => f
                    .cannot_tell
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            writeln!(out, "  {label:<9} {mark:<11} {}{extra}", f.title)?;
        }
    }
    for f in r.findings.iter().filter(|f| f.status == Status::Broken) {
        writeln!(out)?;
        finding(r, f, out)?;
    }
    writeln!(out)?;
    writeln!(out, "outside the disk (check these too):")?;
    for o in &r.outside_the_disk {
        writeln!(out, "  - {o}")?;
    }
    Ok(())
}

fn header(r: &Report, out: &mut dyn Write) -> Result<()> {
    let where_ = match (r.install.partition, &r.install.label) {
        (Some(p), Some(l)) => format!("partition {p} (label {l:?}), "),
        (Some(p), None) => format!("partition {p}, "),
        _ => String::new(),
    };
    let container = match r.container.bytes {
        Some(b) => format!("{} disk image, {b} bytes", r.container.kind),
        None => r.container.kind.replace('_', " "),
    };
    writeln!(out, "target:   {} ({container})", r.target.display())?;
    writeln!(out, "windows:  {where_}{}", r.install.system_path)?;
    let v = &r.windows;
    let mut version = format!("{:?}", v.family);
    if let Some(b) = v.build {
        version.push_str(&format!(", build {b}"));
    }
    if let Some(p) = &v.product_name {
        version.push_str(&format!(", {p}"));
    }
    let source = v
        .evidence
        .first()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    writeln!(out, "version:  {version} ({:?}{source})", v.source)?;
    for h in &r.hives {
        let mut line = format!(
            "hive:     {} {}",
            h.hive.file_name(),
            match h.state {
                rescue::offline::Cleanliness::Clean => "clean",
                rescue::offline::Cleanliness::Replayed => "dirty, replayed from its logs",
                rescue::offline::Cleanliness::Incomplete =>
                    "dirty, logs missing or unusable (recent changes may be missing)",
            }
        );
        if let Some((a, b)) = h.sequence_range {
            line.push_str(&format!(
                " ({} log entries, sequence {a}..{b})",
                h.entries_applied
            ));
        }
        writeln!(out, "{line}")?;
        for w in &h.warnings {
            writeln!(out, "          warning: {w}")?;
        }
    }
    if let Some(j) = &r.pending_journal {
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
    let cs = &r.control_sets;
    if let (Some(b), Some(c)) = (cs.boots, cs.current) {
        if b != c {
            writeln!(out, "boots:    ControlSet{b:03} (Select\\Default) at the next start; the last session ran ControlSet{c:03} (Select\\Current)")?;
        }
    }
    if let Some(why) = &cs.cannot_tell {
        writeln!(out, "boots:    cannot tell: {why}")?;
    }
    Ok(())
}

/// The detail of one broken finding.
fn finding(r: &Report, f: &Finding, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "{}: {}", f.rule, f.title)?;
    if let Some(s) = &f.service {
        service(r, s, out)?;
    } else {
        for l in &f.locations {
            let value = l
                .value
                .as_deref()
                .map(|v| format!("\\{v}"))
                .unwrap_or_default();
            writeln!(out, "  where:    {}\\{}{value}", l.hive.file_name(), l.key)?;
        }
        if let Some(found) = &f.found {
            writeln!(out, "  found:    {found}")?;
        }
        if let Some(e) = &f.expected {
            writeln!(out, "  healthy:  {e}")?;
        }
    }
    writeln!(out, "  why:      {}", f.why)?;
    writeln!(out, "  article:  {}", f.article)?;
    if !f.changes.is_empty() {
        let n = f.changes.len();
        writeln!(
            out,
            "  fix:      {n} change{}",
            if n == 1 { "" } else { "s" }
        )?;
        for c in &f.changes {
            writeln!(out, "            {c}")?;
        }
    }
    for u in &f.unresolved {
        writeln!(out, "            not fixed automatically: {u}")?;
    }
    Ok(())
}

/// A service finding: the SCM's prediction control set by control set, the article's branch
/// and the System log's evidence.
fn service(r: &Report, s: &ServiceDetail, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "  {} ({}), control set by control set:",
        s.display_name, s.service
    )?;
    for cs in &s.control_sets {
        let d = &cs.diagnosis;
        let roles: Vec<String> = d.roles.iter().map(|x| format!("{x:?}")).collect();
        let roles = if roles.is_empty() {
            String::new()
        } else {
            format!(" [{}]", roles.join(", "))
        };
        let verdict = match &d.verdict {
            ScmVerdict::Starts => "starts".to_string(),
            _ => d
                .summary()
                .split_once(": ")
                .map(|x| x.1.to_string())
                .unwrap_or_else(|| d.summary()),
        };
        writeln!(out, "    {}{roles}: {verdict}", d.control_set_name)?;
        for c in &d.chain {
            writeln!(out, "        because: {}", c.text)?;
        }
        for diff in &cs.differences {
            let sub = diff
                .subkey
                .as_ref()
                .map(|s| format!("{s}\\"))
                .unwrap_or_default();
            writeln!(
                out,
                "        differs: {sub}{}: found {}, healthy {}",
                diff.value, diff.found, diff.expected
            )?;
        }
        // Without the system files every image is "not checked": said once in the header.
        for n in d
            .notes
            .iter()
            .filter(|n| r.files_checked || !n.text.contains("not checked on disk"))
        {
            writeln!(out, "        note: {}", n.text)?;
        }
    }
    if let Some(b) = &s.branch {
        writeln!(
            out,
            "  branch:   {} ({}): {}",
            b.code, b.meaning, b.article_action
        )?;
        for c in &b.article_commands {
            writeln!(out, "              {c}")?;
        }
        writeln!(out, "  winrescue: {}", b.winrescue)?;
    }
    match &s.evidence {
        Some(e) => evidence(r, s, e, out)?,
        None => writeln!(out, "  evidence: no System event log in the target")?,
    }
    Ok(())
}

fn evidence(r: &Report, s: &ServiceDetail, e: &Evidence, out: &mut dyn Write) -> Result<()> {
    let total = e.events.len();
    let count = if total > EVIDENCE_SHOWN {
        format!(
            "{total} events about the {}, {EVIDENCE_SHOWN} of {total} shown, the newest (all: winrescue events {} --service {})",
            s.display_name,
            shell_quote(&r.target.display().to_string()),
            s.service
        )
    } else {
        format!("{total} events about the {}", s.display_name)
    };
    let ends = e
        .log_ends
        .as_ref()
        .map(|t| format!(" (ends {t})"))
        .unwrap_or_default();
    writeln!(out, "  evidence: System event log{ends}: {count}")?;
    if e.older_chunks_not_read > 0 {
        writeln!(
            out,
            "            (its newest {} KiB read, {} older chunks not: winrescue events {} --service {} reads it all)",
            rescue::target::SYSTEM_LOG_CHUNKS * 64,
            e.older_chunks_not_read,
            shell_quote(&r.target.display().to_string()),
            s.service
        )?;
    }
    let skip = total.saturating_sub(EVIDENCE_SHOWN);
    for ev in e.events.iter().skip(skip) {
        writeln!(
            out,
            "            {} {} #{}: {}",
            evidence::show_time(ev.time),
            ev.event_id,
            ev.record_id,
            ev.summary()
        )?;
    }
    if let Some(s) = &e.last_state {
        writeln!(
            out,
            "            last recorded state: {:?} at {}",
            s.state, s.time
        )?;
    }
    writeln!(out, "            {}", agreement(s, e))?;
    for w in e.warnings.iter().take(3) {
        writeln!(out, "            log warning: {w}")?;
    }
    Ok(())
}

/// The agreement between the log and the configuration, in words.
fn agreement(s: &ServiceDetail, e: &Evidence) -> String {
    let name = &s.display_name;
    let c = e.predicted.map(|c| c.to_string()).unwrap_or_default();
    let p = e.points_to.map(|c| c.to_string()).unwrap_or_default();
    match e.agreement {
        Agreement::Agree if e.predicted.is_none() => format!("agree: the configuration lets the {name} start, and the log shows no failure of it"),
        Agreement::Agree => format!("agree: the log's newest failure points to {p}, as the configuration does"),
        Agreement::Consistent => format!("consistent: the configuration predicts 1058 (disabled), which the Service Control Manager does not log as a failure at boot; the log shows no failure of the {name}"),
        Agreement::ConfigurationChangedSinceLog => format!("disagree: the configuration predicts {c}, but the log's last word on the {name} is that it was running: the configuration changed after the last boot the log recorded (look for 7040 events), or the log is from another boot"),
        Agreement::LogShowsNoFailure => format!("disagree: the configuration predicts {c}, but the log holds no failure of the {name}"),
        // Error 5: the access rule has read the keys' permissions; what is left is on the VM.
        Agreement::LogShowsRuntimeFailure if e.points_to == Some(5) => "the log points to 5 (access denied); rule access:Dhcp judges the keys' permissions on the disk: a denial it does not find is in a file or another object, traced live (`winrescue runbook --code 5`)".to_string(),
        Agreement::LogShowsRuntimeFailure => format!("disagree: the log points to {p} (a failure at run time: hang, crash or logon), which the configuration alone cannot show; follow that branch"),
        Agreement::Disagree => format!("disagree: the configuration predicts {c}, the log's newest failure points to {p}"),
        Agreement::LogUnreadable => "the System log could not be read".into(),
    }
}
