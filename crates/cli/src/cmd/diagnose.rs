//! `winrescue diagnose TARGET`: why RDP cannot reach the VM, from the disk alone.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::output::shell_quote;
use crate::report::{print as print_report, verdict_word};
use rules::{Report, Selection};

#[derive(Args)]
pub struct DiagnoseArgs {
    /// A disk image (raw, VHD, VHDX), a block device, a folder holding a Windows tree, a
    /// SYSTEM hive file, or the http(s) URL of a disk image (an Azure SAS URL: its secrets are
    /// never shown). Several targets are diagnosed concurrently (see --jobs); the exit code is
    /// then the worst one.
    #[arg(required_unless_present = "targets_from", num_args = 1..)]
    pub targets: Vec<PathBuf>,
    /// Diagnose the targets listed in FILE too (after those on the command line): one a line;
    /// blank lines and lines starting with # are skipped; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub targets_from: Option<PathBuf>,
    /// Diagnose only shard I of N of the target list: the target at position k (counted from
    /// 0, in the list's order) belongs to shard k mod N. I counts from 0, as Kubernetes'
    /// JOB_COMPLETION_INDEX does: --shard "$JOB_COMPLETION_INDEX/8".
    #[arg(long, value_name = "I/N")]
    pub shard: Option<rescue::batch::Shard>,
    /// How many targets to diagnose at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// The partition holding Windows, when the disk has several installations.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Plan the hang / crash branch fix too: the service in its own process (Type=0x10).
    #[arg(long)]
    pub own_process: bool,
    /// Run only this rule (repeat for several; `winrescue rules` lists them).
    #[arg(long = "rule", value_name = "ID")]
    pub rules: Vec<String>,
    /// Print JSON (with several targets, JSON Lines: one report or failure per line).
    #[arg(long)]
    pub json: bool,
    /// Print the requests and bytes a URL target cost (on standard error).
    #[arg(long)]
    pub stats: bool,
}

pub fn run(a: DiagnoseArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let opts = Selection {
        rules: a.rules.clone(),
        partition: a.partition,
        options: rules::Options {
            own_process: a.own_process,
        },
    };
    if a.targets.len() > 1 || a.targets_from.is_some() || a.shard.is_some() {
        let mut targets = a.targets.clone();
        if let Some(file) = &a.targets_from {
            targets.extend(read_target_list(file)?);
        }
        if let Some(shard) = a.shard {
            targets = shard.select(targets);
        }
        return run_many(&a, &targets, &opts, out);
    }
    let target = &a.targets[0];
    let report = rules::diagnose(target, &opts).map_err(crate::cmd::rules_error)?;
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
        if report.counting().any(|f| !f.changes.is_empty()) {
            writeln!(out)?;
            writeln!(
                out,
                "to repair (a dry run first, then --apply; an undo journal is kept):"
            )?;
            if report.transfer.is_some() {
                // The URL shown is redacted: the user gives one with a SAS that allows writing.
                writeln!(
                    out,
                    "    winrescue repair 'URL' --apply   (the URL of a disk with a SAS that allows writing: az disk grant-access --access-level Write; a snapshot's SAS is read-only, see the README)"
                )?;
                return Ok(ExitCode::from(report.exit_code()));
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
    Ok(ExitCode::from(report.exit_code()))
}

/// Several targets, `jobs` at a time; output in the order given: JSON Lines with `--json`
/// (a failure is a record `{"target", "error", "exit_code"}`), otherwise each report and then a
/// summary table. The exit code is the worst one (an unreadable target: 3).
fn run_many(
    a: &DiagnoseArgs,
    targets: &[PathBuf],
    opts: &Selection,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let results: Mutex<Vec<Option<std::result::Result<Report, String>>>> =
        Mutex::new((0..targets.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let workers = usize::from(a.jobs).min(targets.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(target) = targets.get(i) else {
                    break;
                };
                let r = rules::diagnose(target, opts).map_err(|e| e.to_string());
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut worst = 0u8;
    let mut summary = Vec::new();
    for (target, r) in targets.iter().zip(results) {
        let shown = crate::input::shown(target);
        let r = r.unwrap_or_else(|| Err("not diagnosed".into()));
        let (code, verdict) = match &r {
            Ok(report) => (report.exit_code(), verdict_word(report)),
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

/// The targets listed in `file` (`-`: standard input); see [`rescue::batch::parse_target_list`].
fn read_target_list(file: &std::path::Path) -> Result<Vec<PathBuf>> {
    use anyhow::Context;
    use std::io::Read;
    // A list of a million URLs is some hundreds of megabytes at most.
    const MAX_LIST_BYTES: u64 = 512 << 20;
    let mut text = String::new();
    let shown = file.display();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_LIST_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read the target list from standard input")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_LIST_BYTES + 1).read_to_string(&mut text))
            .with_context(|| format!("cannot read the target list {shown}"))?;
    }
    if text.len() as u64 > MAX_LIST_BYTES {
        anyhow::bail!("the target list {shown} is larger than {MAX_LIST_BYTES} bytes");
    }
    let list = rescue::batch::parse_target_list(&text).with_context(|| {
        format!(
            "the target list {shown} holds more than {} targets: split it",
            rescue::batch::MAX_TARGETS
        )
    })?;
    Ok(list.into_iter().map(PathBuf::from).collect())
}
