//! `winrescue hive ...`: read, check, export and replay registry hive files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use regf::{Hive, Key};
use wincmd::path::HiveName;

use crate::hivefile;

mod check;
mod info;
mod keys;

#[derive(Subcommand)]
pub enum HiveCommand {
    /// Base block, state (clean / dirty / replayed) and counts.
    #[command(
        after_help = "Examples:\n  winrescue hive info SYSTEM\n  winrescue hive info SYSTEM --no-replay --json"
    )]
    Info(InfoArgs),
    /// List the subkeys and values of a key.
    #[command(
        after_help = "Examples:\n  winrescue hive ls SYSTEM\n  winrescue hive ls SYSTEM 'CurrentControlSet\\Services\\Dhcp'\n  winrescue hive ls SYSTEM Select --json"
    )]
    Ls(KeyArgs),
    /// Print one value, or every value of a key.
    #[command(
        after_help = "Examples:\n  winrescue hive get SYSTEM 'CurrentControlSet\\Services\\Dhcp' Start\n  winrescue hive get SYSTEM 'ControlSet001\\Services\\Dhcp' --json"
    )]
    Get(GetArgs),
    /// Write a key and everything below it as a Windows .reg file.
    #[command(
        after_help = "Examples:\n  winrescue hive export SYSTEM 'ControlSet001\\Services\\Dhcp' -o dhcp.reg\n  winrescue hive export SYSTEM Select"
    )]
    Export(ExportArgs),
    /// Check every structure of the hive; exit code 1 if any error is found.
    #[command(
        after_help = "Examples:\n  winrescue hive check SYSTEM\n  winrescue hive check SYSTEM --json"
    )]
    Check(CheckArgs),
    /// Replay the transaction logs of a dirty hive into a new, clean hive file.
    #[command(
        after_help = "Examples:\n  winrescue hive replay SYSTEM -o SYSTEM.recovered\n  winrescue hive replay SYSTEM --log SYSTEM.LOG1 --log SYSTEM.LOG2 -o SYSTEM.recovered"
    )]
    Replay(ReplayArgs),
    /// A key's security descriptor: owner, group, SDDL, each ACE; a service's effective access.
    #[command(
        after_help = "Examples:\n  winrescue hive acl SYSTEM 'ControlSet001\\Services\\Dhcp'\n  winrescue hive acl SYSTEM 'ControlSet001\\Services\\Tcpip\\Parameters' --service Dhcp"
    )]
    Acl(super::hive_acl::AclArgs),
}

/// How a hive file is read.
#[derive(Args, Clone)]
pub struct ReadOpts {
    /// Read the file as it is, without replaying its transaction logs (what hivex, reglookup and
    /// chntpw see). By default the .LOG1 / .LOG2 / .LOG files next to the hive are replayed.
    #[arg(long)]
    pub no_replay: bool,
    /// Replay these log files instead of the ones found next to the hive.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The hive file.
    pub hive: PathBuf,
    #[command(flatten)]
    pub read: ReadOpts,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The hive file (checked as it is on disk; use `hive replay` first to check the recovered
    /// hive).
    pub hive: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The dirty hive file.
    pub hive: PathBuf,
    /// Where to write the recovered hive (a new file; the hive and its logs are not touched).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replay these log files instead of the ones found next to the hive.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// Write even if a log does not belong to the hive or no log could be applied.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct KeyArgs {
    /// The hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub hive: PathBuf,
    #[command(flatten)]
    pub read: ReadOpts,
    /// Key path below the root, e.g. `ControlSet001\Services\Dhcp` (case-insensitive;
    /// `CurrentControlSet` is resolved through `Select\Current`); the root when left out.
    #[arg(default_value = "")]
    pub key: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct GetArgs {
    /// The hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub hive: PathBuf,
    #[command(flatten)]
    pub read: ReadOpts,
    /// Key path below the root, e.g. `CurrentControlSet\Services\Dhcp` (case-insensitive;
    /// `CurrentControlSet` is resolved through `Select\Current`).
    pub key: String,
    /// Value name (`""` or `@` for the default value); all values when left out.
    pub value: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub hive: PathBuf,
    #[command(flatten)]
    pub read: ReadOpts,
    /// Key path below the root to export (everything below it too); the whole hive when left
    /// out.
    #[arg(default_value = "")]
    pub key: String,
    /// Path the hive root gets in the .reg file; default `HKEY_LOCAL_MACHINE\<FILE NAME>`.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(cmd: HiveCommand, out: &mut dyn Write) -> Result<ExitCode> {
    match cmd {
        HiveCommand::Info(a) => info::info(&a, out),
        HiveCommand::Ls(a) => keys::ls(&a, out),
        HiveCommand::Get(a) => keys::get(&a, out),
        HiveCommand::Export(a) => keys::export(&a, out),
        HiveCommand::Check(a) => check::check_cmd(&a, out),
        HiveCommand::Replay(a) => check::replay_cmd(&a, out),
        HiveCommand::Acl(a) => super::hive_acl::acl(&a, out),
    }
}

/// Loads a hive for reading, replaying its logs unless told not to; warns on stderr when the
/// hive is dirty and could not be fully recovered.
pub(super) fn load(path: &Path, read: &ReadOpts) -> Result<Hive<Vec<u8>>> {
    let loaded = load_full(path, read)?;
    Ok(loaded.hive)
}

pub(super) fn load_full(path: &Path, read: &ReadOpts) -> Result<hivefile::Loaded> {
    let loaded = hivefile::load(path, read.no_replay, &read.logs)?;
    if let Some(r) = &loaded.replay {
        for w in hivefile::replay_warnings(r) {
            eprintln!("winrescue: warning: {}: {w}", path.display());
        }
    } else if loaded.hive.base_block().is_dirty() {
        eprintln!("winrescue: warning: {}: the hive is dirty and was read without its logs (--no-replay): recent changes may be missing", path.display());
    }
    Ok(loaded)
}

pub(super) fn find<'h>(hive: &'h Hive<Vec<u8>>, path: &Path, key: &str) -> Result<Key<'h>> {
    // `CurrentControlSet` exists only in a running registry: resolved as `reg` resolves it,
    // in a hive that has a Select key (a SYSTEM hive).
    let parts: Vec<String> = wincmd::path::components(key)
        .into_iter()
        .map(str::to_string)
        .collect();
    let resolved = if parts
        .first()
        .is_some_and(|p| p.eq_ignore_ascii_case("CurrentControlSet"))
        && hive.key("Select")?.is_some()
    {
        wincmd::path::inner_path(hive, HiveName::System, &parts).map_err(crate::cmd::lib_error)?
    } else {
        key.to_string()
    };
    match hive
        .key(&resolved)
        .with_context(|| format!("{}: reading key {key:?}", path.display()))?
    {
        Some(k) => Ok(k),
        None => match wincmd::path::below_root(key) {
            Some(inner) => bail!(
                "{}: no key {key:?}: a hive file's keys start below its root, without HKLM\\<hive>: try {inner:?}",
                path.display()
            ),
            None => bail!("{}: no key {key:?}", path.display()),
        },
    }
}
