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
use regf::Data;
use serde::Deserialize;
use winsvc::{baseline, codes, plan, Account, Diagnosis};

use crate::cmd::reg::SyntaxError;
use crate::cmd::sc::{OfflineSystem, StartKind};

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
    let sys = OfflineSystem::read(&target, a.partition)?;
    let d = sys.diagnose("Dhcp")?;
    match d.code() {
        Some(code) => {
            let cs = sys.model.boot_set()?.number;
            let base = baseline::dhcp().for_version(&sys.model.version);
            let oracle = |p: &str| sys.file_exists(p);
            let p = plan::plan(
                &sys.model,
                "Dhcp",
                &base,
                &plan::Options {
                    own_process: false,
                    control_sets: Some(vec![cs]),
                },
                &oracle,
            );
            let (fix_cmd, fix_ps) = fix_commands(&p.changes);
            let culprit = p
                .changes
                .iter()
                .filter(|c| c.is_current)
                .find_map(|c| c.key_path.split('\\').nth(2).map(str::to_string))
                .or_else(|| d.culprit().map(|c| c.service.clone()))
                .unwrap_or_else(|| "SERVICE".into());
            writeln!(
                out,
                "Diagnosed on {}: {}",
                crate::input::shown(&target),
                d.summary()
            )?;
            writeln!(out)?;
            render(
                book,
                code,
                Some(&FromDisk {
                    diagnosis: d,
                    culprit,
                    fix_cmd,
                    fix_ps,
                    unresolved: p.unresolved,
                }),
                out,
            )?;
            Ok(ExitCode::from(1))
        }
        None => {
            writeln!(
                out,
                "Diagnosed on {}: {}",
                crate::input::shown(&target),
                d.summary()
            )?;
            let logged = sys.events("Dhcp")?.and_then(|ev| {
                ev.iter()
                    .rev()
                    .filter(|e| e.event_id != 7036)
                    .find_map(|e| e.error.as_ref().map(|c| (c.code, e.event_id, e.time)))
            });
            match logged.filter(|(c, _, _)| codes::ARTICLE_CODES.contains(c)) {
                Some((code, id, time)) => {
                    writeln!(
                        out,
                        "The registry does not stop it, but the System log's newest failure (event {id} at {}) reports error {code}: the procedure for {code}.",
                        evidence::show_time(time)
                    )?;
                    writeln!(out)?;
                    render(book, code, None, out)?;
                    Ok(ExitCode::from(1))
                }
                None => {
                    writeln!(out, "Nothing in the registry or the System log stops it: check it on the console.")?;
                    writeln!(out)?;
                    render_intro(book, out)?;
                    let mut n = 0;
                    render_steps(&book.common, None, &mut n, out)?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
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
        let fill = |t: &str| t.replace("{chain}", &chain).replace("{culprit}", &culprit);
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

/// The plan's changes as commands for the running VM: `sc config` where sc.exe has an option
/// for the value, `reg add` / `reg delete` on `CurrentControlSet` otherwise.
fn fix_commands(changes: &[plan::Change]) -> (Vec<String>, Vec<String>) {
    let mut cmd = Vec::new();
    let mut ps = Vec::new();
    for c in changes.iter().filter(|c| c.is_current) {
        let parts: Vec<&str> = c.key_path.split('\\').collect();
        let ccs = std::iter::once("CurrentControlSet")
            .chain(parts.iter().skip(1).copied())
            .collect::<Vec<_>>()
            .join("\\");
        let service = match parts.as_slice() {
            [_, services, name] if services.eq_ignore_ascii_case("services") => Some(*name),
            _ => None,
        };
        let sc_opt = match (
            service,
            c.value_name.to_ascii_lowercase().as_str(),
            &c.new_data,
        ) {
            (Some(_), "start", Some(Data::Dword(n))) => {
                StartKind::word(*n).map(|w| format!("start= {w}"))
            }
            (Some(_), "type", Some(Data::Dword(0x10))) => Some("type= own".into()),
            (Some(_), "type", Some(Data::Dword(0x20))) => Some("type= share".into()),
            (Some(_), "errorcontrol", Some(Data::Dword(n))) if *n <= 3 => Some(format!(
                "error= {}",
                ["ignore", "normal", "severe", "critical"][*n as usize]
            )),
            (Some(_), "objectname", Some(Data::Sz(a))) => {
                let builtin = matches!(
                    Account::classify(Some(a)),
                    Account::LocalService | Account::NetworkService | Account::LocalSystem
                );
                Some(format!(
                    "obj= \"{a}\"{}",
                    if builtin { " password= \"\"" } else { "" }
                ))
            }
            _ => None,
        };
        if let (Some(name), Some(opt)) = (service, sc_opt) {
            cmd.push(format!("sc config {name} {opt}"));
            ps.push(format!(
                "sc.exe config {name} {}",
                opt.replace("password= \"\"", "password= '\"\"'")
            ));
            continue;
        }
        let key = format!("HKLM\\SYSTEM\\{ccs}");
        if c.create_key {
            cmd.push(format!("reg add \"{key}\" /f"));
            ps.push(format!("reg.exe add \"{key}\" /f"));
        }
        let line = match &c.new_data {
            None => format!("delete \"{key}\" /v {} /f", c.value_name),
            Some(d) => {
                let text = match d {
                    Data::Dword(n) => n.to_string(),
                    Data::Qword(n) => n.to_string(),
                    Data::MultiSz(v) => v.join("\\0"),
                    Data::Sz(s) | Data::ExpandSz(s) => s.clone(),
                    other => crate::printer::reg_text(other),
                };
                format!(
                    "add \"{key}\" /v {} /t {} /d \"{text}\" /f",
                    c.value_name, c.value_type
                )
            }
        };
        cmd.push(format!("reg {line}"));
        ps.push(format!("reg.exe {line}"));
    }
    (cmd, ps)
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
