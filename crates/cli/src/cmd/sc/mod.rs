//! `winrescue sc TARGET query|qc|config SERVICE ...`: sc.exe's own syntax and output layout,
//! against the SYSTEM hive of an offline Windows.
//!
//! ```text
//! winrescue sc disk.vhd query DHCP
//! winrescue sc disk.vhd qc DHCP
//! winrescue sc disk.vhd config DHCP start= auto obj= "NT Authority\LocalService" type= own
//! winrescue sc disk.vhd config DHCP start= auto --all-control-sets --dry-run
//! ```
//!
//! - Service names are case-insensitive, as the SCM compares them (`DHCP` is `Dhcp`).
//! - Options are written as sc.exe wants them: the option name ends with `=` and the value is
//!   the next argument (`start= auto`). `start=auto` is refused, as sc.exe refuses it, with the
//!   spelling that works: what this command accepts is what will work on the VM's console too.
//! - `qc` prints the configuration as `sc qc` does. `BINARY_PATH_NAME` is the stored ImagePath
//!   (`%SystemRoot%` is not expanded offline) and `DISPLAY_NAME` the stored DisplayName (an
//!   `@file,-id` resource reference is not resolved).
//! - `query` cannot ask a running SCM: it prints the configuration, the start result predicted
//!   by winsvc's analysis of the registry, and the state the System log last recorded (newest
//!   7036 event) with the newest failure event (7000, 7001, 7022, 7023, 7031, 7038).
//! - `config` writes the Current control set (`Select\Current`), or every control set with
//!   `--all-control-sets`, through `wincmd::offline::Session` (undo journal, read back and
//!   verified); `--dry-run` shows the change and writes nothing. The write is checked first as
//!   `reg`'s are (`rescue::guard`): the prediction before and after is printed, and a change that
//!   breaks the DHCP Client or the service is refused unless `--force`. `password=` is refused: the
//!   password of an account lives in the LSA secrets, which winrescue does not write.
//!
//! Exit codes: 0 done (`query`: the service is predicted to start); 1 `query` predicts that it
//! fails; 2 a syntax error (`ERROR: Invalid syntax.`, sc.exe's usage note); 3 `[SC] OpenService
//! FAILED 1060` (no such service) or a target that cannot be read; 4 a write refused (nothing
//! changed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use wincmd::change::{Applied, Before};
use wincmd::offline::{Opened, WriteOpts};
use wincmd::path::HiveName;
use wincmd::sc::{parse, ScOp};
use wincmd::ScUsage;
use winsvc::{show_data, Diagnosis};

use crate::cmd::lib_error;
use crate::cmd::reg::{edit_target, read_hive};

mod json;
mod render;

pub use render::render_qc;

#[derive(Args)]
pub struct ScArgs {
    /// The offline Windows: a disk image or block device (raw, VHD, VHDX), a folder holding a
    /// Windows tree, or a SYSTEM hive file.
    pub target: PathBuf,
    /// The Windows installation on this partition (when the disk holds several).
    #[arg(long)]
    pub partition: Option<u32>,
    /// `config`: show the change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `config`: write every control set, not only the Current one.
    #[arg(long)]
    pub all_control_sets: bool,
    /// `config`: write even though the hive is dirty and its logs are missing.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// `config`: write even though the check predicts that the write breaks a service (the
    /// DHCP Client or the service configured).
    #[arg(long)]
    pub force: bool,
    /// Print JSON (with "schema_version": 1): the service's configuration for qc, with the
    /// prediction and the logged state for query, every change and the outcome for config.
    #[arg(long)]
    pub json: bool,
    /// The sc.exe command: QUERY | QC | CONFIG, the service name, then the options.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "SC ARGS"
    )]
    pub args: Vec<String>,
}

/// sc.exe's note, shown with every syntax error of `config`.
pub const CONFIG_USAGE: &str = "USAGE:\n        sc <target> config [service name] <option1> <option2>...\n\nOPTIONS:\nNOTE: The option name includes the equal sign.\n      A space is required between the equal sign and the value.\n start= <boot|system|auto|demand|disabled|delayed-auto>\n type= <own|share|kernel|filesys>\n error= <normal|severe|critical|ignore>\n binPath= <BinaryPathName>\n group= <LoadOrderGroup>\n depend= <Dependencies(separated by / (forward slash))>\n obj= <AccountName>\n DisplayName= <display name>";

/// sc.exe's note for `query` and `qc`, offline.
const QUERY_USAGE: &str = "DESCRIPTION:\n        Shows a service offline: its configuration, the start the Service Control Manager\n        would give it (predicted from the registry) and the last state the System log recorded.\nUSAGE:\n        sc <target> query [service name]\n        sc <target> qc [service name]\n\nEXAMPLE:\n        winrescue sc disk.vhd query DHCP";

/// The usage shown after an sc.exe syntax error.
pub fn usage(u: ScUsage) -> &'static str {
    match u {
        ScUsage::Config => CONFIG_USAGE,
        ScUsage::Query => QUERY_USAGE,
    }
}

/// The SYSTEM hive of a target and winsvc's model of it ([`wincmd::offline::OfflineSystem`]),
/// with the reader's warnings printed.
pub struct OfflineSystem(pub wincmd::offline::OfflineSystem);

impl std::ops::Deref for OfflineSystem {
    type Target = wincmd::offline::OfflineSystem;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl OfflineSystem {
    pub fn read(target: &Path, partition: Option<u32>) -> Result<OfflineSystem> {
        let opened = Opened::open(target, partition).ok();
        let (hive, warnings) = match &opened {
            Some(o) => o.read_hive(HiveName::System).map_err(lib_error)?,
            None => read_hive(target, partition, HiveName::System)?,
        };
        for w in warnings {
            eprintln!("warning: {w}");
        }
        let sys = wincmd::offline::OfflineSystem::new(opened, hive)
            .map_err(|e| anyhow!("{}: {e}", crate::input::shown(target)))?;
        Ok(OfflineSystem(sys))
    }

    /// winsvc's analysis of `service` in the control set Windows boots next.
    pub fn diagnose(&self, service: &str) -> Result<Diagnosis> {
        self.0.diagnose(service).map_err(lib_error)?.ok_or_else(|| {
            anyhow!("{service} vanished from the model of the control set Windows boots")
        })
    }

    /// The Service Control Manager events about `service` (oldest first), `None` when the
    /// target holds no System log; the reader's warnings are printed.
    pub fn events(&self, service: &str) -> Result<Option<Vec<evidence::Event>>> {
        Ok(self
            .0
            .events(service)
            .map_err(lib_error)?
            .map(|(events, warnings)| {
                for w in &warnings {
                    eprintln!("warning: System.evtx: {w}");
                }
                events
            }))
    }
}

pub fn run(mut a: ScArgs, out: &mut dyn Write) -> Result<ExitCode> {
    // The flags may follow the sc arguments, as a user appends them.
    a.args.retain(|x| {
        let flag = match x.as_str() {
            "--dry-run" => &mut a.dry_run,
            "--all-control-sets" => &mut a.all_control_sets,
            "--allow-incomplete" => &mut a.allow_incomplete,
            "--force" => &mut a.force,
            "--json" => &mut a.json,
            _ => return true,
        };
        *flag = true;
        false
    });
    let op = parse(&a.args).map_err(lib_error)?;
    let sys = OfflineSystem::read(&a.target, a.partition)?;
    let cs = sys.model.boot_set()?;
    let name = match &op {
        ScOp::Query { service } | ScOp::Qc { service } | ScOp::Config { service, .. } => service,
    };
    let service = cs
        .service(name)
        .ok_or_else(|| lib_error(wincmd::Error::NoSuchService { name: name.clone() }))?;
    match &op {
        ScOp::Config { options, .. } => {
            let plan =
                wincmd::sc::plan_config(&sys.model, &service.name, options, a.all_control_sets)
                    .map_err(lib_error)?;
            config(&a, sys, &plan, options, out)
        }
        ScOp::Qc { .. } if a.json => json::qc(&sys, cs, service, out),
        ScOp::Qc { .. } => {
            writeln!(
                out,
                "[SC] QueryServiceConfig SUCCESS  (offline: {}, {})",
                crate::input::shown(&a.target),
                cs.name
            )?;
            writeln!(out)?;
            render_qc(&sys.hive, service, out)?;
            Ok(ExitCode::SUCCESS)
        }
        ScOp::Query { .. } => {
            let starts = if a.json {
                json::query(&sys, cs, service, out)?
            } else {
                render::render_query(&sys, service, &a.target, out)?
            };
            // A service that RDP needs has a rule: its finding gives the exit code, so that sc
            // and diagnose never disagree (a demand-start DHCP Client starts, but may block RDP).
            let rule = format!("service:{}", service.name);
            if !::rules::all()
                .iter()
                .any(|r| r.meta().id.eq_ignore_ascii_case(&rule))
            {
                return Ok(ExitCode::from(u8::from(!starts)));
            }
            let sel = ::rules::Selection {
                rules: vec![rule.clone()],
                partition: a.partition,
                ..Default::default()
            };
            drop(sys);
            let report = ::rules::diagnose(&a.target, &sel).map_err(super::rules_error)?;
            if !a.json {
                if let Some(f) = report.counting().next() {
                    writeln!(out, "        RDP                : {} ({rule})", f.title)?;
                }
            }
            Ok(ExitCode::from(report.exit_code()))
        }
    }
}

/// `sc config`: the plan's writes in one transaction, each change shown per control set.
fn config(
    a: &ScArgs,
    sys: OfflineSystem,
    plan: &wincmd::sc::ConfigPlan,
    options: &[wincmd::sc::ConfigOpt],
    out: &mut dyn Write,
) -> Result<ExitCode> {
    // The write opens the disk exclusively: the reading handle goes first.
    drop(sys);
    for acct in wincmd::sc::user_accounts(options) {
        eprintln!("note: {acct} is a user account: its password lives in the LSA secrets, which winrescue cannot set offline; the service logs on only if the stored password is right");
    }
    for cs in &plan.missing {
        eprintln!(
            "note: {cs} has no service {}: not written there",
            plan.service
        );
    }
    let opts = WriteOpts {
        partition: a.partition,
        dry_run: a.dry_run,
        allow_incomplete: a.allow_incomplete,
        force: a.force,
    };
    edit_target(&a.target, opts, a.json, out, |session, report| {
        let ed = session.editor(HiveName::System).map_err(lib_error)?;
        for c in wincmd::sc::apply_config(ed, plan).map_err(lib_error)? {
            let cs = c.control_set.as_str();
            report.add(&c.applied, Some(("control_set", cs.into())), |x| {
                config_line(cs, x)
            });
        }
        Ok(())
    })?;
    if !a.json {
        writeln!(
            out,
            "[SC] ChangeServiceConfig SUCCESS{}",
            if a.dry_run {
                "  (dry run: nothing written)"
            } else {
                ""
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// An `sc config` change as text: `ControlSet001: <key>\\Start = 0x2 (2) (was 0x4 (4))`.
fn config_line(cs: &str, a: &Applied) -> Option<String> {
    Some(match a {
        Applied::SetValue {
            key,
            name,
            data,
            before,
        } => {
            let new = show_data(data);
            match before {
                Before::Same => format!("{cs}: {key}\\{name} is already {new}"),
                Before::Absent => format!("{cs}: {key}\\{name} = {new} (new value)"),
                Before::Other(old) => {
                    format!("{cs}: {key}\\{name} = {new} (was {})", show_data(old))
                }
            }
        }
        Applied::DeleteValue { key, name } => format!("{cs}: {key}\\{name} deleted"),
        // sc config only sets and deletes values.
        Applied::CreateKey { .. } | Applied::DeleteKey { .. } => return None,
    })
}
