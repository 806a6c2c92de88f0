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
//!   `--all-control-sets`, through `rescue::edit::edit_hive` (undo journal, read back and
//!   verified); `--dry-run` shows the change and writes nothing. The write is checked first as
//!   `reg`'s are (`rescue::guard`): the prediction before and after is printed, and a change that
//!   breaks the DHCP Client or the service is refused unless `--force`. `password=` is refused: the
//!   password of an account lives in the LSA secrets, which winrescue does not write.
//!
//! Exit codes: 0 done (`query`: the service is predicted to start); 1 `query` predicts that it
//! fails; 2 a syntax error (`ERROR: Invalid syntax.`, sc.exe's usage note); 3 `[SC] OpenService
//! FAILED 1060` (no such service) or a target that cannot be read; 4 a write refused (nothing
//! changed).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use regf::{Data, Hive, ValueType};
use winsvc::{analyze, codes, types, Account, Diagnosis, Field, Service, SystemModel};

use crate::cmd::reg::{self, HiveName, Opened, SyntaxError, WriteOpts};
use crate::cmd::WriteRefused;

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
    /// The sc.exe command: QUERY | QC | CONFIG, the service name, then the options.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "SC ARGS"
    )]
    pub args: Vec<String>,
}

/// A `start=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    Boot,
    System,
    Auto,
    DelayedAuto,
    Demand,
    Disabled,
}

impl StartKind {
    /// The registry's `Start` value.
    pub fn start_value(self) -> u32 {
        match self {
            StartKind::Boot => 0,
            StartKind::System => 1,
            StartKind::Auto | StartKind::DelayedAuto => 2,
            StartKind::Demand => 3,
            StartKind::Disabled => 4,
        }
    }

    /// sc.exe's word for a `Start` value.
    pub fn word(start: u32) -> Option<&'static str> {
        Some(match start {
            0 => "boot",
            1 => "system",
            2 => "auto",
            3 => "demand",
            4 => "disabled",
            _ => return None,
        })
    }
}

/// One `option= value` of `sc config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOpt {
    Start(StartKind),
    /// The new Type (own 0x10, share 0x20, kernel 0x1, filesys 0x2).
    Type(u32),
    Error(u32),
    BinPath(String),
    Group(String),
    /// `depend=` entries split at `/`; `+name` entries are groups.
    Depend(Vec<String>),
    Obj(String),
    DisplayName(String),
    Password,
}

/// A parsed sc.exe command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScOp {
    Query {
        service: String,
    },
    Qc {
        service: String,
    },
    Config {
        service: String,
        options: Vec<ConfigOpt>,
    },
}

/// sc.exe's note, shown with every syntax error of `config`.
const CONFIG_USAGE: &str = "USAGE:\n        sc <target> config [service name] <option1> <option2>...\n\nOPTIONS:\nNOTE: The option name includes the equal sign.\n      A space is required between the equal sign and the value.\n start= <boot|system|auto|demand|disabled|delayed-auto>\n type= <own|share|kernel|filesys>\n error= <normal|severe|critical|ignore>\n binPath= <BinaryPathName>\n group= <LoadOrderGroup>\n depend= <Dependencies(separated by / (forward slash))>\n obj= <AccountName>\n DisplayName= <display name>";

/// sc.exe's note for `query` and `qc`, offline.
const QUERY_USAGE: &str = "DESCRIPTION:\n        Shows a service offline: its configuration, the start the Service Control Manager\n        would give it (predicted from the registry) and the last state the System log recorded.\nUSAGE:\n        sc <target> query [service name]\n        sc <target> qc [service name]\n\nEXAMPLE:\n        winrescue sc disk.vhd query DHCP";

fn syntax(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(SyntaxError(format!("{what}\n{CONFIG_USAGE}")))
}

fn query_syntax(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(SyntaxError(format!("{what}\n{QUERY_USAGE}")))
}

/// Parses sc.exe's arguments after the target.
pub fn parse(args: &[String]) -> Result<ScOp> {
    let Some((verb, rest)) = args.split_first() else {
        return Err(syntax("no command: QUERY, QC or CONFIG"));
    };
    let v = verb.to_ascii_lowercase();
    match v.as_str() {
        "query" | "qc" | "config" => {}
        "start" | "stop" | "pause" | "continue" | "control" | "interrogate" => {
            return Err(anyhow::Error::new(SyntaxError(format!(
                "[SC] {verb}: the VM is not running: nothing can be started or stopped offline. `winrescue sc TARGET query SERVICE` predicts whether it would start; `winrescue runbook` gives the serial-console commands."
            ))))
        }
        _ => return Err(syntax(format!("{verb:?} is not a command winrescue runs offline (QUERY, QC, CONFIG)."))),
    }
    let Some((service, opts)) = rest.split_first() else {
        let what = format!("{} needs a service name.", v.to_uppercase());
        return Err(if v == "config" {
            syntax(what)
        } else {
            query_syntax(what)
        });
    };
    if service.contains('=') {
        return Err(syntax(format!("{service:?} is not a service name.")));
    }
    let service = service.clone();
    if v != "config" {
        if let Some(extra) = opts.first() {
            return Err(query_syntax(format!(
                "unexpected argument {extra:?} after the service name."
            )));
        }
        return Ok(if v == "query" {
            ScOp::Query { service }
        } else {
            ScOp::Qc { service }
        });
    }
    let mut options = Vec::new();
    let mut it = opts.iter();
    while let Some(name) = it.next() {
        let Some(eq) = name.find('=') else {
            if let Some(ConfigOpt::Obj(acct)) = options.last() {
                if let Some(hint) = eaten_account(acct, name) {
                    return Err(syntax(hint));
                }
            }
            return Err(syntax(format!(
                "{name:?} is not an option (option names end with '=')."
            )));
        };
        if eq + 1 != name.len() {
            let (n, val) = name.split_at(eq + 1);
            return Err(syntax(format!(
                "{name:?}: sc.exe needs a space after the equal sign: {n} {val}"
            )));
        }
        let key = name[..eq].to_ascii_lowercase();
        let value = it
            .next()
            .ok_or_else(|| syntax(format!("{name} needs a value.")))?;
        let lower = value.to_ascii_lowercase();
        let bad = || syntax(format!("{name} {value}: not a value sc.exe takes."));
        options.push(match key.as_str() {
            "start" => ConfigOpt::Start(match lower.as_str() {
                "boot" => StartKind::Boot,
                "system" => StartKind::System,
                "auto" => StartKind::Auto,
                "delayed-auto" => StartKind::DelayedAuto,
                "demand" => StartKind::Demand,
                "disabled" => StartKind::Disabled,
                _ => return Err(bad()),
            }),
            "type" => ConfigOpt::Type(match lower.as_str() {
                "own" => types::OWN_PROCESS,
                "share" => types::SHARE_PROCESS,
                "kernel" => types::KERNEL_DRIVER,
                "filesys" => types::FILE_SYSTEM_DRIVER,
                _ => return Err(bad()),
            }),
            "error" => ConfigOpt::Error(match lower.as_str() {
                "ignore" => 0,
                "normal" => 1,
                "severe" => 2,
                "critical" => 3,
                _ => return Err(bad()),
            }),
            "binpath" => ConfigOpt::BinPath(value.clone()),
            "group" => ConfigOpt::Group(value.clone()),
            "depend" => ConfigOpt::Depend(
                value
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            "obj" => {
                if let Some(hint) = eaten_account(value, "") {
                    return Err(syntax(hint));
                }
                ConfigOpt::Obj(value.clone())
            }
            "displayname" => ConfigOpt::DisplayName(value.clone()),
            "password" => ConfigOpt::Password,
            _ => {
                return Err(syntax(format!(
                    "{name} is not an option winrescue sets offline."
                )))
            }
        });
    }
    if options.is_empty() {
        return Err(syntax("CONFIG needs at least one option."));
    }
    Ok(ScOp::Config { service, options })
}

/// A hint when an `obj=` account lost its backslash to the shell: `obj= NT
/// Authority\LocalService` unquoted reaches winrescue as `NT` and `AuthorityLocalService`, and
/// `.\bob` as `.bob`. `next` is the argument after the account (empty: none).
fn eaten_account(acct: &str, next: &str) -> Option<String> {
    let lower = acct.to_ascii_lowercase();
    let next_lower = next.to_ascii_lowercase();
    let split_nt = lower == "nt" && next_lower.starts_with("authority");
    let glued = !acct.contains('\\')
        && (lower.starts_with("nt authority") || lower.starts_with("ntauthority"));
    let dot = acct.starts_with('.') && acct.len() > 1 && !acct.contains('\\');
    (split_nt || glued || dot).then(|| {
        format!(
            "obj= {acct}{}{next}: the account's backslash was removed by the shell; put it in single quotes: obj= 'NT Authority\\LocalService'",
            if next.is_empty() { "" } else { " " }
        )
    })
}

// ----- reading -----

/// The SYSTEM hive of a target, read with its logs, and winsvc's model of it.
pub struct OfflineSystem {
    /// `None` for an xz-compressed hive file (read in memory).
    pub opened: Option<Opened>,
    pub hive: Hive<Vec<u8>>,
    pub model: SystemModel,
}

impl OfflineSystem {
    pub fn read(target: &Path, partition: Option<u32>) -> Result<OfflineSystem> {
        let opened = Opened::open(target, partition).ok();
        let (hive, warnings) = match &opened {
            Some(o) => o.read_hive(HiveName::System)?,
            None => reg::read_hive(target, partition, HiveName::System)?,
        };
        for w in warnings {
            eprintln!("warning: {w}");
        }
        let model = SystemModel::read(&hive, None)
            .map_err(|e| anyhow!("{}: {e}", crate::input::shown(target)))?;
        Ok(OfflineSystem {
            opened,
            hive,
            model,
        })
    }

    /// Whether a file named as ImagePath / ServiceDll write it exists on the volume (`None`:
    /// cannot tell, e.g. a bare hive file).
    pub fn file_exists(&self, image: &str) -> Option<bool> {
        let o = self.opened.as_ref()?;
        o.target.registry_file_exists(&o.install, image)
    }

    /// winsvc's analysis of `service` in the Current control set.
    pub fn diagnose(&self, service: &str) -> Result<Diagnosis> {
        let oracle = |p: &str| self.file_exists(p);
        let cs = self.model.boot_set()?.number;
        analyze::diagnose(&self.model, cs, service, &oracle)
            .ok_or_else(|| anyhow!("ControlSet{cs:03} vanished from the model"))
    }

    /// The Service Control Manager events about `service` (oldest first), `None` when the
    /// target holds no System log.
    pub fn events(&self, service: &str) -> Result<Option<Vec<evidence::Event>>> {
        let Some(o) = &self.opened else {
            return Ok(None);
        };
        let Some(bytes) = o
            .target
            .read_file(&o.install, rescue::target::SYSTEM_EVTX)
            .map_err(reg::rescue_error)?
        else {
            return Ok(None);
        };
        let query = evidence::Query {
            service: Some(service.to_string()),
            event_ids: vec![7036, 7000, 7001, 7022, 7023, 7031, 7038],
            ..Default::default()
        };
        let report = evidence::read_log(Cursor::new(bytes), &query)?;
        for w in &report.warnings {
            eprintln!("warning: System.evtx: {w}");
        }
        let mut events = report.events;
        events.sort_by_key(|e| e.record_id);
        Ok(Some(events))
    }
}

/// sc.exe's message for a service that does not exist.
pub fn no_such_service() -> anyhow::Error {
    crate::cmd::exe("[SC] OpenService FAILED 1060:\n\nThe specified service does not exist as an installed service.".into())
}

// ----- rendering -----

fn type_name(t: u32) -> String {
    let base = match t & !types::INTERACTIVE {
        types::KERNEL_DRIVER => "KERNEL_DRIVER",
        types::FILE_SYSTEM_DRIVER => "FILE_SYSTEM_DRIVER",
        types::ADAPTER => "ADAPTER",
        types::RECOGNIZER_DRIVER => "RECOGNIZER_DRIVER",
        types::OWN_PROCESS => "WIN32_OWN_PROCESS",
        types::SHARE_PROCESS => "WIN32_SHARE_PROCESS",
        0x30 => "WIN32",
        0x50 => "USER_OWN_PROCESS",
        0x60 => "USER_SHARE_PROCESS",
        _ => "(unknown type)",
    };
    if t & types::INTERACTIVE != 0 {
        format!("{base}  (interactive)")
    } else {
        base.to_string()
    }
}

fn start_name(s: u32) -> &'static str {
    match s {
        0 => "BOOT_START",
        1 => "SYSTEM_START",
        2 => "AUTO_START",
        3 => "DEMAND_START",
        4 => "DISABLED",
        _ => "(invalid)",
    }
}

fn error_name(e: u32) -> &'static str {
    match e {
        0 => "IGNORE",
        1 => "NORMAL",
        2 => "SEVERE",
        3 => "CRITICAL",
        _ => "(invalid)",
    }
}

/// A field that is not a plain value, as text (`(absent)`, `(REG_SZ "2", expected REG_DWORD)`).
fn odd<T>(f: &Field<T>, expected: &str) -> String {
    f.describe(|_| String::new(), expected)
}

fn line(out: &mut dyn Write, name: &str, value: &str) -> std::io::Result<()> {
    writeln!(out, "        {name:<19}: {value}")
}

fn cont(out: &mut dyn Write, value: &str) -> std::io::Result<()> {
    writeln!(out, "        {:<19}: {value}", "")
}

fn type_line(s: &Service) -> String {
    match s.service_type.ok() {
        Some(t) => format!("{t:<3x} {}", type_name(*t)),
        None => odd(&s.service_type, "REG_DWORD"),
    }
}

fn start_line(s: &Service) -> String {
    match s.start.ok() {
        Some(v) => {
            let delayed = *v == 2 && s.delayed_autostart.ok() == Some(&1) && !s.is_driver();
            format!(
                "{v:<3} {}{}",
                start_name(*v),
                if delayed { "  (DELAYED)" } else { "" }
            )
        }
        None => odd(&s.start, "REG_DWORD"),
    }
}

/// `sc qc`'s block for one service.
pub fn render_qc(hive: &Hive<Vec<u8>>, s: &Service, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "SERVICE_NAME: {}", s.name)?;
    line(out, "TYPE", &type_line(s))?;
    line(out, "START_TYPE", &start_line(s))?;
    let ec = match s.error_control.ok() {
        Some(e) => format!("{e:<3} {}", error_name(*e)),
        None => odd(&s.error_control, "REG_DWORD"),
    };
    line(out, "ERROR_CONTROL", &ec)?;
    line(
        out,
        "BINARY_PATH_NAME",
        s.image_path.ok().map(String::as_str).unwrap_or(""),
    )?;
    line(
        out,
        "LOAD_ORDER_GROUP",
        s.group.ok().map(String::as_str).unwrap_or(""),
    )?;
    let tag = match hive
        .key(&s.key_path)?
        .map(|k| k.value("Tag"))
        .transpose()?
        .flatten()
        .map(|v| v.data())
        .transpose()?
    {
        Some(Data::Dword(t)) => t,
        _ => 0,
    };
    line(out, "TAG", &tag.to_string())?;
    line(
        out,
        "DISPLAY_NAME",
        s.display_name.ok().map(String::as_str).unwrap_or(&s.name),
    )?;
    let deps: Vec<String> = s
        .service_dependencies()
        .into_iter()
        .chain(s.group_dependencies().into_iter().map(|g| format!("+{g}")))
        .collect();
    match deps.split_first() {
        None => line(out, "DEPENDENCIES", "")?,
        Some((first, rest)) => {
            line(out, "DEPENDENCIES", first)?;
            for d in rest {
                cont(out, d)?;
            }
        }
    }
    let account = match &s.object_name {
        Field::Ok(a) => a.clone(),
        Field::Missing if s.is_driver() => String::new(),
        Field::Missing => "LocalSystem".into(),
        other => odd(other, "REG_SZ"),
    };
    line(out, "SERVICE_START_NAME", &account)?;
    Ok(())
}

fn state_number(s: evidence::ServiceState) -> (u32, &'static str) {
    use evidence::ServiceState as S;
    match s {
        S::Stopped => (1, "STOPPED"),
        S::StartPending => (2, "START_PENDING"),
        S::StopPending => (3, "STOP_PENDING"),
        S::Running => (4, "RUNNING"),
        S::ContinuePending => (5, "CONTINUE_PENDING"),
        S::PausePending => (6, "PAUSE_PENDING"),
        S::Paused => (7, "PAUSED"),
        S::Unknown(n) => (n, "UNKNOWN"),
        _ => (0, "UNKNOWN"),
    }
}

/// `sc query`, offline: returns whether the service is predicted to start.
fn render_query(
    sys: &OfflineSystem,
    s: &Service,
    target: &Path,
    out: &mut dyn Write,
) -> Result<bool> {
    let cs = sys.model.boot_set()?;
    writeln!(
        out,
        "[SC] offline: {} is the disk of a VM that is not running. STATE is the last state its System log recorded; PREDICTED_START is what the Service Control Manager would do with the registry of {}, the control set Windows boots next (Select\\Default).",
        crate::input::shown(target),
        cs.name
    )?;
    writeln!(out)?;
    writeln!(out, "SERVICE_NAME: {}", s.name)?;
    line(out, "TYPE", &type_line(s))?;
    let events = sys.events(&s.name)?;
    match &events {
        None => line(out, "STATE", "UNKNOWN  (no System log in this target)")?,
        Some(list) => match list
            .iter()
            .rev()
            .find(|e| e.event_id == 7036 && e.state.is_some())
        {
            Some(e) => {
                let (n, name) = state_number(e.state.expect("checked"));
                let count = list.iter().filter(|e| e.event_id == 7036).count();
                line(out, "STATE", &format!("{n}  {name}  (last of {count} recorded state changes: event 7036 at {}, record {})", evidence::show_time(e.time), e.record_id))?
            }
            None => line(
                out,
                "STATE",
                "UNKNOWN  (no 7036 event for this service in the System log)",
            )?,
        },
    }
    line(out, "START_TYPE", &start_line(s))?;
    let d = sys.diagnose(&s.name)?;
    let starts = d.code().is_none();
    match d.code() {
        Some(code) => {
            line(
                out,
                "PREDICTED_START",
                &format!("FAILS  {code}  (0x{code:x})  {}", codes::symbol(code)),
            )?;
            for c in &d.chain {
                cont(out, &c.text)?;
            }
        }
        None => {
            let what = match (&d.verdict, d.starts_at_boot) {
                (analyze::Verdict::Unverified, _) => "UNVERIFIED  (nothing found that stops it, but something cannot be checked offline)",
                (_, true) => "STARTS  (nothing in the registry stops it)",
                (_, false) => "CAN START  (nothing stops it, but it is not started at boot)",
            };
            line(out, "PREDICTED_START", what)?;
            for n in d.notes.iter().filter(|n| {
                matches!(
                    n.kind,
                    analyze::CauseKind::AccountUnverifiable { .. }
                        | analyze::CauseKind::DemandStart
                )
            }) {
                cont(out, &n.text)?;
            }
        }
    }
    if let Some(list) = &events {
        let failures: Vec<&evidence::Event> = list.iter().filter(|e| e.event_id != 7036).collect();
        match failures.last() {
            None => line(
                out,
                "LAST_ERROR_EVENT",
                "none in the System log (7000, 7001, 7022, 7023, 7031, 7038)",
            )?,
            Some(e) => {
                let code = e
                    .error
                    .as_ref()
                    .map(|c| format!(" [{}]", c.code))
                    .unwrap_or_default();
                line(
                    out,
                    "LAST_ERROR_EVENT",
                    &format!(
                        "{} at {}, record {}: {}{code}",
                        e.event_id,
                        evidence::show_time(e.time),
                        e.record_id,
                        e.summary()
                    ),
                )?;
                if failures.len() > 1 {
                    cont(out, &format!("({} such events in the log)", failures.len()))?;
                }
            }
        }
    }
    Ok(starts)
}

// ----- running -----

pub fn run(mut a: ScArgs, out: &mut dyn Write) -> Result<ExitCode> {
    // The flags may follow the sc arguments, as a user appends them.
    a.args.retain(|x| match x.as_str() {
        "--dry-run" => {
            a.dry_run = true;
            false
        }
        "--all-control-sets" => {
            a.all_control_sets = true;
            false
        }
        "--allow-incomplete" => {
            a.allow_incomplete = true;
            false
        }
        "--force" => {
            a.force = true;
            false
        }
        _ => true,
    });
    let op = parse(&a.args)?;
    let sys = OfflineSystem::read(&a.target, a.partition)?;
    let cs = sys.model.boot_set()?;
    let name = match &op {
        ScOp::Query { service } | ScOp::Qc { service } | ScOp::Config { service, .. } => service,
    };
    let service = cs.service(name).ok_or_else(no_such_service)?;
    if let ScOp::Config { options, .. } = &op {
        let name = service.name.clone();
        return config(&a, sys, &name, options, out);
    }
    match &op {
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
            let starts = render_query(&sys, service, &a.target, out)?;
            Ok(if starts {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        ScOp::Config { .. } => unreachable!("handled above"),
    }
}

/// Registry writes to one key: (value name, new data or `None` to delete).
pub type ValueWrites = Vec<(&'static str, Option<Data>)>;

/// The registry writes of `sc config` for one service key: (value name, new data or `None` to
/// delete).
pub fn config_writes(s: &Service, options: &[ConfigOpt]) -> Result<ValueWrites> {
    let mut w: ValueWrites = Vec::new();
    for o in options {
        match o {
            ConfigOpt::Start(k) => {
                w.push(("Start", Some(Data::Dword(k.start_value()))));
                match k {
                    StartKind::DelayedAuto => w.push(("DelayedAutostart", Some(Data::Dword(1)))),
                    // sc.exe clears the delayed flag when it sets plain auto.
                    StartKind::Auto if s.delayed_autostart.ok().is_some_and(|d| *d != 0) => w.push(("DelayedAutostart", Some(Data::Dword(0)))),
                    _ => {}
                }
            }
            ConfigOpt::Type(t) => {
                let keep = s.service_type.ok().map(|old| old & types::INTERACTIVE).unwrap_or(0);
                w.push(("Type", Some(Data::Dword(t | keep))));
            }
            ConfigOpt::Error(e) => w.push(("ErrorControl", Some(Data::Dword(*e)))),
            ConfigOpt::BinPath(p) => w.push(("ImagePath", Some(Data::ExpandSz(p.clone())))),
            ConfigOpt::Group(g) => w.push(("Group", if g.is_empty() { None } else { Some(Data::Sz(g.clone())) })),
            ConfigOpt::Depend(list) => {
                let (groups, services): (Vec<&String>, Vec<&String>) = list.iter().partition(|d| d.starts_with('+'));
                let svc: Vec<String> = services.into_iter().cloned().collect();
                let grp: Vec<String> = groups.into_iter().map(|g| g[1..].to_string()).collect();
                w.push(("DependOnService", if svc.is_empty() { None } else { Some(Data::MultiSz(svc)) }));
                w.push(("DependOnGroup", if grp.is_empty() { None } else { Some(Data::MultiSz(grp)) }));
            }
            ConfigOpt::Obj(acct) => {
                if let Account::Invalid(_) = Account::classify(Some(acct)) {
                    bail!(WriteRefused(format!("[SC] ChangeServiceConfig FAILED 1057:\n\nThe account name is invalid or does not exist, or the password is invalid for the account name specified. ({acct:?})")));
                }
                if s.is_driver() {
                    bail!(WriteRefused(format!("[SC] ChangeServiceConfig FAILED 87:\n\nThe parameter is incorrect. ({} is a driver: drivers have no account)", s.name)));
                }
                if let Account::Custom(_) = Account::classify(Some(acct)) {
                    eprintln!("note: {acct} is a user account: its password lives in the LSA secrets, which winrescue cannot set offline; the service logs on only if the stored password is right");
                }
                w.push(("ObjectName", Some(Data::Sz(acct.clone()))));
            }
            ConfigOpt::DisplayName(n) => w.push(("DisplayName", Some(Data::Sz(n.clone())))),
            ConfigOpt::Password => bail!(WriteRefused(
                "[SC] ChangeServiceConfig: password= cannot be set offline: an account's password lives in the LSA secrets of the SECURITY hive, encrypted with the machine's boot key, and winrescue does not write them. Use a built-in account (obj= \"NT Authority\\LocalService\") or set the password on the running VM. Nothing was changed.".into()
            )),
        }
    }
    Ok(w)
}

fn value_type(d: &Data) -> ValueType {
    match d {
        Data::Dword(_) => ValueType::DWORD,
        Data::ExpandSz(_) => ValueType::EXPAND_SZ,
        Data::MultiSz(_) => ValueType::MULTI_SZ,
        _ => ValueType::SZ,
    }
}

fn config(
    a: &ScArgs,
    sys: OfflineSystem,
    name: &str,
    options: &[ConfigOpt],
    out: &mut dyn Write,
) -> Result<ExitCode> {
    // The write opens the disk exclusively: the reading handle goes first.
    let OfflineSystem { opened, model, .. } = sys;
    drop(opened);
    let sets: Vec<&winsvc::ControlSet> = if a.all_control_sets {
        model.control_sets.iter().collect()
    } else {
        vec![model.boot_set()?]
    };
    let mut targets: Vec<(String, String, ValueWrites)> = Vec::new();
    for cs in sets {
        match cs.service(name) {
            Some(s) => targets.push((
                cs.name.clone(),
                s.key_path.clone(),
                config_writes(s, options)?,
            )),
            None => eprintln!("note: {} has no service {name}: not written there", cs.name),
        }
    }
    let opts = WriteOpts {
        partition: a.partition,
        dry_run: a.dry_run,
        allow_incomplete: a.allow_incomplete,
        force: a.force,
    };
    reg::edit_target(&a.target, opts, out, |h, lines| {
        let ed = h.editor(HiveName::System)?;
        let mut changed = false;
        for (cs, key, writes) in &targets {
            for (value, data) in writes {
                match data {
                    Some(d) => {
                        let bytes = d.to_bytes();
                        match ed.set_value(key, value, value_type(d), &bytes)? {
                            regf::edit::SetOutcome::Unchanged => lines.push(format!(
                                "{cs}: {key}\\{value} is already {}",
                                winsvc::show_data(d)
                            )),
                            regf::edit::SetOutcome::Created => {
                                lines.push(format!(
                                    "{cs}: {key}\\{value} = {} (new value)",
                                    winsvc::show_data(d)
                                ));
                                changed = true;
                            }
                            regf::edit::SetOutcome::Updated { old_type, old_data } => {
                                lines.push(format!(
                                    "{cs}: {key}\\{value} = {} (was {})",
                                    winsvc::show_data(d),
                                    winsvc::show_data(&Data::decode(old_type, &old_data))
                                ));
                                changed = true;
                            }
                        }
                    }
                    None => {
                        if ed.delete_value(key, value)? {
                            lines.push(format!("{cs}: {key}\\{value} deleted"));
                            changed = true;
                        }
                    }
                }
            }
        }
        Ok(changed)
    })?;
    writeln!(
        out,
        "[SC] ChangeServiceConfig SUCCESS{}",
        if a.dry_run {
            "  (dry run: nothing written)"
        } else {
            ""
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_the_articles_commands() {
        assert_eq!(
            parse(&args(&["query", "DHCP"])).unwrap(),
            ScOp::Query {
                service: "DHCP".into()
            }
        );
        assert_eq!(
            parse(&args(&["config", "DHCP", "start=", "auto"])).unwrap(),
            ScOp::Config {
                service: "DHCP".into(),
                options: vec![ConfigOpt::Start(StartKind::Auto)]
            }
        );
        assert_eq!(
            parse(&args(&[
                "CONFIG",
                "DHCP",
                "obj=",
                r"NT Authority\Localservice",
                "TYPE=",
                "own"
            ]))
            .unwrap(),
            ScOp::Config {
                service: "DHCP".into(),
                options: vec![
                    ConfigOpt::Obj(r"NT Authority\Localservice".into()),
                    ConfigOpt::Type(0x10)
                ]
            }
        );
        assert_eq!(
            parse(&args(&["config", "x", "depend=", "NSI/+TDI"])).unwrap(),
            ScOp::Config {
                service: "x".into(),
                options: vec![ConfigOpt::Depend(vec!["NSI".into(), "+TDI".into()])]
            }
        );
    }

    #[test]
    fn bad_syntax_reads_like_sc_exe() {
        for bad in [
            &["config", "DHCP", "start=auto"][..],
            &["config", "DHCP", "start="],
            &["config", "DHCP", "start=", "sometimes"],
            &["config", "DHCP"],
            &["query"],
            &["qc", "DHCP", "extra"],
            &["frob", "DHCP"],
            &["start", "DHCP"],
            &["config", "DHCP", "start"],
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.downcast_ref::<SyntaxError>().is_some(), "{bad:?}");
            assert!(e.to_string().starts_with("ERROR: Invalid syntax."), "{e}");
        }
        let e = parse(&args(&["config", "DHCP", "start=auto"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("start= auto")
                && e.contains("A space is required between the equal sign and the value."),
            "{e}"
        );
    }

    #[test]
    fn paths_map_to_the_volume() {
        assert_eq!(
            rescue::target::volume_path(r"%SystemRoot%\system32\dhcpcore.dll"),
            r"Windows\system32\dhcpcore.dll"
        );
        assert_eq!(
            rescue::target::volume_path(r"C:\Program Files\x.exe"),
            r"Program Files\x.exe"
        );
        assert_eq!(
            rescue::target::volume_path(r"\SystemRoot\System32\drivers\afd.sys"),
            r"Windows\System32\drivers\afd.sys"
        );
    }
}
