//! `winrescue runbook TARGET` / `winrescue runbook --code N`: the serial-console procedure of the
//! article for one branch of its error table, in CMD and PowerShell, with what each step should
//! print and what to do when it does not.
//!
//! With a target, the DHCP Client is diagnosed on the disk first (winsvc's analysis of the
//! Current control set) and the runbook is the one for the diagnosed error; for the branches
//! the article leaves to support (1059 circular dependency, 1068 failed dependency, 1079
//! account conflict) it names the culprit found on the disk and gives the commands that put it
//! back (the repair plan of winsvc against the healthy baseline, written as `sc config` / `reg
//! add` lines for the running VM). Without a disk (`--code N`), those branches give the
//! commands that find the culprit on the console. When the registry is sound, the System log's
//! newest failure with an error code picks the branch (a crash or hang cannot be seen in the
//! registry).
//!
//! The texts are data (`data/runbook.json`), rendered here. Exit codes: 0 runbook printed (with
//! a target: nothing in the registry stops DHCP); 1 with a target: the disk shows a problem;
//! 2 an unknown code; 3 a target that cannot be read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Result;
use clap::Args;
use rules::Finding;
use serde::Deserialize;
use winsvc::{codes, Diagnosis};

use crate::cmd::reg::SyntaxError;

#[derive(Args)]
pub struct RunbookArgs {
    /// The offline Windows (disk image, block device, folder, SYSTEM hive file): diagnose the
    /// DHCP Client there and print the procedure for what is found.
    #[arg(required_unless_present = "code", conflicts_with = "code")]
    pub target: Option<PathBuf>,
    /// Print the procedure for this Win32 error without a disk (5, 1053, 1058, 1059, 1067,
    /// 1068, 1069, 1070, 1077, 1079, or another code of `winsvc`'s table).
    #[arg(long)]
    pub code: Option<u32>,
    /// The Windows installation on this partition (when the disk holds several).
    #[arg(long)]
    pub partition: Option<u32>,
    /// With a target: the runbook of every finding as JSON (rule, commands).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Deserialize)]
struct Book {
    intro: Vec<String>,
    common: Vec<Step>,
    branches: Vec<Branch>,
}

#[derive(Debug, Deserialize)]
struct Branch {
    id: String,
    codes: Vec<u32>,
    title: String,
    article: String,
    steps: Vec<Step>,
    offline: String,
}

#[derive(Debug, Deserialize)]
struct Step {
    /// `disk`: only when the disk was diagnosed; `nodisk`: only without.
    #[serde(default)]
    only: Option<String>,
    what: String,
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    ps: Vec<String>,
    /// `fix`: the commands come from the repair plan.
    #[serde(default)]
    generated: Option<String>,
    expect: String,
    if_fails: String,
}

const DATA: &str = include_str!("../../data/runbook.json");

fn book() -> Result<&'static Book> {
    static BOOK: OnceLock<Result<Book, String>> = OnceLock::new();
    BOOK.get_or_init(|| serde_json::from_str(DATA).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("data/runbook.json: {e}"))
}

fn branch_for(book: &Book, code: u32) -> &Branch {
    book.branches
        .iter()
        .find(|b| b.codes.contains(&code))
        .or_else(|| book.branches.iter().find(|b| b.id == "other"))
        .expect("the data has an `other` branch (tested)")
}

/// What the disk told: the diagnosis and the commands that fix it on the running VM.
struct FromDisk {
    diagnosis: Diagnosis,
    /// The service the fix changes (the diagnosis' culprit when the plan changes nothing).
    culprit: String,
    fix_cmd: Vec<String>,
    fix_ps: Vec<String>,
    unresolved: Vec<String>,
    /// The denied accesses found on the disk (error 5), one a line.
    denied: String,
}

pub fn run(a: RunbookArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let book = book()?;
    if let Some(code) = a.code {
        if codes::lookup(code).is_none() {
            return Err(anyhow::Error::new(SyntaxError(format!(
                "{code} is not an error of the article's table or of winrescue's analysis (article: {})",
                codes::ARTICLE_CODES.map(|c| c.to_string()).join(", ")
            ))));
        }
        render(book, code, None, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = a.target.expect("clap requires TARGET without --code");
    let sel = rules::Selection {
        partition: a.partition,
        ..Default::default()
    };
    let report = rules::diagnose(&target, &sel).map_err(crate::cmd::rules_error)?;
    let shown = crate::input::shown(&target);
    let counting: Vec<&Finding> = report.counting().collect();
    if a.json {
        let runbooks: Vec<serde_json::Value> = counting
            .iter()
            .map(|f| {
                serde_json::json!({
                    "rule": f.rule,
                    "title": f.title,
                    "article": f.article,
                    "cmd": f.runbook.cmd,
                    "powershell": f.runbook.powershell,
                    "unresolved": f.unresolved,
                })
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({
                "schema_version": rules::SCHEMA_VERSION,
                "target": shown,
                "verdict": report.verdict,
                "runbooks": runbooks,
            }),
        )?;
        writeln!(out)?;
        return Ok(ExitCode::from(report.exit_code()));
    }
    if counting.is_empty() {
        writeln!(out, "Diagnosed on {shown}: nothing on the disk blocks RDP.")?;
        // A hang or a crash cannot be seen in the registry: the System log's newest failure of
        // the DHCP Client picks the article's branch.
        let logged = report
            .finding("service:Dhcp")
            .and_then(|f| f.service.as_ref())
            .and_then(|s| s.evidence.as_ref())
            .and_then(|e| e.points_to)
            .filter(|c| codes::ARTICLE_CODES.contains(c));
        match logged {
            Some(code) => {
                writeln!(out, "The registry does not stop the DHCP Client, but the System log's newest failure of it points to error {code}: the procedure for {code}.")?;
                writeln!(out)?;
                render(book, code, None, out)?;
            }
            None => {
                writeln!(out, "Nothing in the registry or the System log stops the DHCP Client: check it on the console.")?;
                writeln!(out)?;
                render_intro(book, out)?;
                let mut n = 0;
                render_steps(&book.common, None, &mut n, out)?;
            }
        }
        return Ok(ExitCode::from(report.exit_code()));
    }
    writeln!(
        out,
        "Diagnosed on {shown}: {}",
        crate::report::verdict_word(&report)
    )?;
    for f in &counting {
        writeln!(out)?;
        match dhcp_from_disk(&report, f) {
            Some((code, disk)) => {
                let headline = match code {
                    5 => f.title.clone(),
                    _ => format!("DHCP Client: {}", disk.diagnosis.summary()),
                };
                writeln!(out, "{headline}")?;
                writeln!(out)?;
                render(book, code, Some(&disk), out)?;
            }
            None => render_finding(f, out)?,
        }
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// The DHCP Client's finding as the article's runbook takes it: the code, the diagnosis of
/// the control set Windows boots next, the culprit and the fix commands.
fn dhcp_from_disk(report: &rules::Report, f: &Finding) -> Option<(u32, FromDisk)> {
    // A denied access found by `access:Dhcp` is the article's error 5, seen on the disk; the
    // service analysis (which then finds the service able to start) gives the diagnosis.
    let (s, code) = match f.rule.as_str() {
        "access:Dhcp" if !f.access.is_empty() => {
            (report.finding("service:Dhcp")?.service.as_ref()?, 5)
        }
        _ => {
            let s = f.service.as_ref().filter(|s| s.service == "Dhcp")?;
            (s, s.code?)
        }
    };
    let boots = report.control_sets.boots?;
    let diagnosis = s
        .control_sets
        .iter()
        .find(|c| c.diagnosis.control_set == boots)?
        .diagnosis
        .clone();
    let boot_set = &diagnosis.control_set_name;
    let culprit = f
        .changes
        .iter()
        .filter(|c| c.key.split('\\').next() == Some(boot_set.as_str()))
        .find_map(|c| c.key.split('\\').nth(2).map(str::to_string))
        .or_else(|| diagnosis.culprit().map(|c| c.service.clone()))
        .unwrap_or_else(|| "SERVICE".into());
    Some((
        code,
        FromDisk {
            diagnosis,
            culprit,
            fix_cmd: f.runbook.cmd.clone(),
            fix_ps: f.runbook.powershell.clone(),
            unresolved: f.unresolved.clone(),
            denied: f
                .access
                .iter()
                .map(|d| d.sentence())
                .collect::<Vec<_>>()
                .join("\n    "),
        },
    ))
}

/// Any other finding: what it is, why it matters, and the commands that fix it.
fn render_finding(f: &Finding, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "Runbook: {} ({})", f.title, f.rule)?;
    writeln!(out, "Why: {}", f.why)?;
    writeln!(out, "Article: {}", f.article)?;
    writeln!(out)?;
    writeln!(out, "Step 1. Fix it on the serial console")?;
    if f.runbook.cmd.is_empty() {
        writeln!(out, "  winrescue has no command for it:")?;
        for u in &f.unresolved {
            writeln!(out, "  - {u}")?;
        }
    } else {
        writeln!(out, "  CMD:")?;
        for c in &f.runbook.cmd {
            writeln!(out, "    {c}")?;
        }
        writeln!(out, "  PowerShell:")?;
        for c in &f.runbook.powershell {
            writeln!(out, "    {c}")?;
        }
    }
    writeln!(
        out,
        "  Expect: the commands succeed; then connect again (offline, `winrescue diagnose --rule {}` reports it healthy).",
        f.rule
    )?;
    writeln!(out)?;
    Ok(())
}

fn render_intro(book: &Book, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "Before you start:")?;
    for l in &book.intro {
        writeln!(out, "  - {l}")?;
    }
    writeln!(out)?;
    Ok(())
}

fn render(book: &Book, code: u32, disk: Option<&FromDisk>, out: &mut dyn Write) -> Result<()> {
    let entry = codes::lookup(code).expect("checked by the caller");
    let branch = branch_for(book, code);
    writeln!(out, "Runbook: DHCP Client, error {code} {}", entry.symbol)?;
    writeln!(out, "{}", entry.meaning)?;
    writeln!(
        out,
        "Branch: {} (the article: {}).",
        branch.title, branch.article
    )?;
    writeln!(out)?;
    render_intro(book, out)?;
    let mut n = 0;
    // The fix for this code first: the admin who has the code needs it, not the generic
    // look-start-check steps, which follow for whoever has not run them yet.
    writeln!(out, "A. When sc start DHCP fails with {code}")?;
    writeln!(out)?;
    render_steps(&branch.steps, disk, &mut n, out)?;
    writeln!(
        out,
        "B. The article's general steps (to confirm the code, and to check after the fix)"
    )?;
    writeln!(out)?;
    render_steps(&book.common, None, &mut n, out)?;
    let culprit = disk
        .map(|d| d.culprit.clone())
        .unwrap_or_else(|| "SERVICE".into());
    writeln!(out, "{}", branch.offline.replace("{culprit}", &culprit))?;
    Ok(())
}

fn render_steps(
    steps: &[Step],
    disk: Option<&FromDisk>,
    n: &mut usize,
    out: &mut dyn Write,
) -> Result<()> {
    for s in steps {
        match (s.only.as_deref(), disk) {
            (Some("disk"), None) | (Some("nodisk"), Some(_)) => continue,
            _ => {}
        }
        let denied = disk.map(|d| d.denied.as_str()).unwrap_or_default();
        let (chain, culprit) = match disk {
            Some(d) => (
                d.diagnosis
                    .chain
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> "),
                d.culprit.clone(),
            ),
            None => (String::new(), "SERVICE".into()),
        };
        let fill = |t: &str| {
            t.replace("{chain}", &chain)
                .replace("{culprit}", &culprit)
                .replace("{denied}", denied)
        };
        *n += 1;
        writeln!(out, "Step {n}. {}", fill(&s.what))?;
        let (cmd, ps) = match (s.generated.as_deref(), disk) {
            (Some("fix"), Some(d)) => (d.fix_cmd.clone(), d.fix_ps.clone()),
            _ => (s.cmd.clone(), s.ps.clone()),
        };
        if s.generated.is_some() && cmd.is_empty() {
            writeln!(out, "  winrescue found no registry change that fixes it.")?;
            for u in disk.map(|d| d.unresolved.as_slice()).unwrap_or_default() {
                writeln!(out, "  - {u}")?;
            }
        }
        if !cmd.is_empty() {
            writeln!(out, "  CMD:")?;
            for c in &cmd {
                writeln!(out, "    {}", fill(c))?;
            }
        }
        if !ps.is_empty() {
            writeln!(out, "  PowerShell:")?;
            for c in &ps {
                writeln!(out, "    {}", fill(c))?;
            }
        }
        writeln!(out, "  Expect: {}", fill(&s.expect))?;
        writeln!(out, "  If not: {}", fill(&s.if_fails))?;
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_article_code_has_its_branch() {
        let b = book().unwrap();
        for code in codes::ARTICLE_CODES {
            assert_ne!(branch_for(b, code).id, "other", "{code}");
        }
        assert_eq!(branch_for(b, 1075).id, "other");
    }
}
