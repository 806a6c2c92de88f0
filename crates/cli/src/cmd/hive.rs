//! `winrescue hive ...`: read, check, export and replay registry hive files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use regf::check::{check, Severity};
use regf::time::filetime_to_iso;
use regf::{Hive, Key};
use serde_json::json;

use crate::hivefile;
use crate::printer::{reg_text, type_name, value_json, value_name};

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
        HiveCommand::Info(a) => info(&a, out),
        HiveCommand::Ls(a) => ls(&a, out),
        HiveCommand::Get(a) => get(&a, out),
        HiveCommand::Export(a) => export(&a, out),
        HiveCommand::Check(a) => check_cmd(&a, out),
        HiveCommand::Replay(a) => replay_cmd(&a, out),
        HiveCommand::Acl(a) => super::hive_acl::acl(&a, out),
    }
}

/// Loads a hive for reading, replaying its logs unless told not to; warns on stderr when the
/// hive is dirty and could not be fully recovered.
pub(super) fn load(path: &Path, read: &ReadOpts) -> Result<Hive<Vec<u8>>> {
    let loaded = load_full(path, read)?;
    Ok(loaded.hive)
}

fn load_full(path: &Path, read: &ReadOpts) -> Result<hivefile::Loaded> {
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
    // `CurrentControlSet` exists only in a running registry: resolved through Select\Current,
    // as `reg` does.
    let parts: Vec<String> = key
        .split('\\')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let resolved = if parts
        .first()
        .is_some_and(|p| p.eq_ignore_ascii_case("CurrentControlSet"))
        && hive.key("Select")?.is_some()
    {
        super::reg::inner_path(hive, super::reg::HiveName::System, &parts)?
    } else {
        key.to_string()
    };
    match hive
        .key(&resolved)
        .with_context(|| format!("{}: reading key {key:?}", path.display()))?
    {
        Some(k) => Ok(k),
        None => match below_root(&parts) {
            Some(inner) => bail!(
                "{}: no key {key:?}: a hive file's keys start below its root, without HKLM\\<hive>: try {inner:?}",
                path.display()
            ),
            None => bail!("{}: no key {key:?}", path.display()),
        },
    }
}

/// The key without a leading `HKLM\SYSTEM` (or `HKEY_LOCAL_MACHINE\SOFTWARE` ...), when it has
/// one: what a reg.exe user types, and what a hive file does not hold.
fn below_root(parts: &[String]) -> Option<String> {
    let root = parts.first()?;
    let hklm = root.eq_ignore_ascii_case("HKLM") || root.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE");
    (hklm && parts.len() >= 2).then(|| parts[2..].join("\\"))
}

fn info(a: &InfoArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let loaded = load_full(&a.hive, &a.read)?;
    let hive = &loaded.hive;
    // The state of the file on disk, not of the recovered copy.
    let on_disk = regf::BaseBlock::parse(&crate::input::read_file(&a.hive)?)?;
    let b = hive.base_block();
    let (mut keys, mut values, mut errors) = (0usize, 0usize, 0usize);
    hive.walk(
        |_, k| {
            keys += 1;
            values += k.value_count() as usize;
        },
        |_, _| errors += 1,
    )?;
    let state = match &loaded.replay {
        Some(r) if r.was_dirty && !r.incomplete => "dirty, replayed",
        Some(r) if r.was_dirty => "dirty, NOT fully recovered",
        _ if on_disk.is_dirty() => "dirty (logs not replayed)",
        _ => "clean",
    };
    let root = hive
        .root()
        .map(|r| r.name().to_string_lossy())
        .unwrap_or_default();
    let notes: Vec<String> = match hive.opening() {
        regf::Opening::Strict => vec![],
        regf::Opening::Lenient(n) => n.clone(),
    };
    if a.json {
        let j = json!({
            "file": a.hive.display().to_string(),
            "state": state,
            "base_block": b,
            "base_block_on_disk": on_disk,
            "logs": loaded.logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "replay": loaded.replay,
            "last_written": filetime_to_iso(b.last_written),
            "root_key": root,
            "keys": keys,
            "values": values,
            "unreadable": errors,
            "notes": notes,
        });
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "file:            {}", a.hive.display())?;
    writeln!(
        out,
        "format:          regf {}.{}, file type {}, hive-bins data {} bytes",
        b.major_version, b.minor_version, b.file_type, b.hive_bins_size
    )?;
    writeln!(
        out,
        "state:           {state} (on disk: sequence numbers {} / {}, checksum {})",
        on_disk.primary_sequence,
        on_disk.secondary_sequence,
        if on_disk.checksum_ok() { "ok" } else { "BAD" }
    )?;
    if let Some(r) = loaded.replay.as_ref().filter(|r| r.was_dirty) {
        let range = r
            .sequence_range
            .map(|(a, b)| format!("sequence {a}..{b}, "))
            .unwrap_or_default();
        writeln!(
            out,
            "replayed:        {} log entries, {} pages ({range}hive-bins data {} -> {} bytes)",
            r.entries_applied, r.pages_applied, r.hive_bins_before, r.hive_bins_after
        )?;
        for l in &r.logs {
            let seq = match (l.first_sequence, l.last_sequence) {
                (Some(a), Some(b)) => format!(", entries {a}..{b}"),
                _ => String::new(),
            };
            let note = l
                .note
                .as_ref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  log:           {} ({:?}{seq}): {} entries / {} pages applied{note}",
                l.name, l.format, l.entries_applied, l.pages_applied
            )?;
        }
        if let Some(from) = &r.base_block_from {
            writeln!(out, "  base block:    restored from {from}")?;
        }
        writeln!(
            out,
            "  next write:    sequence number {} or above (above every log entry)",
            r.next_sequence
        )?;
    }
    writeln!(
        out,
        "last written:    {}",
        if b.last_written == 0 {
            "-".into()
        } else {
            filetime_to_iso(b.last_written)
        }
    )?;
    writeln!(out, "embedded name:   {}", b.file_name)?;
    writeln!(out, "root key:        {root}")?;
    writeln!(out, "keys / values:   {keys} / {values}")?;
    if errors > 0 {
        writeln!(out, "unreadable:      {errors} keys or lists could not be read (run `winrescue hive check`)")?;
    }
    for n in notes {
        writeln!(out, "note:            {n}")?;
    }
    if let Some(r) = &loaded.replay {
        for w in hivefile::replay_warnings(r) {
            writeln!(out, "warning:         {w}")?;
        }
    } else if on_disk.is_dirty() {
        writeln!(out, "warning:         the hive is dirty: its newest changes may live only in its .LOG1/.LOG2 files")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(a: &KeyArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let mut subkeys = Vec::new();
    for k in key.subkeys()? {
        let k = k?;
        subkeys.push((
            k.name().to_string_lossy(),
            k.last_written(),
            k.subkey_count(),
            k.value_count(),
        ));
    }
    let values: Vec<_> = key.values()?.collect::<regf::Result<_>>()?;
    if a.json {
        let j = json!({
            "key": a.key,
            "name": key.name().to_string_lossy(),
            "last_written": filetime_to_iso(key.last_written()),
            "class": key.class_name()?,
            "subkeys": subkeys.iter().map(|(n, t, s, v)| json!({"name": n, "last_written": filetime_to_iso(*t), "subkeys": s, "values": v})).collect::<Vec<_>>(),
            "values": values.iter().map(value_json).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (n, t, _, _) in &subkeys {
        writeln!(
            out,
            "{}  {n}\\",
            // The text form of every time winrescue prints: `2015-08-08 09:33:49Z`.
            filetime_to_iso(*t)
                .get(..19)
                .map(|x| format!("{}Z", x.replace('T', " ")))
                .unwrap_or_default()
        )?;
    }
    for v in &values {
        let text = v
            .data()
            .map(|d| reg_text(&d))
            .unwrap_or_else(|e| format!("<unreadable: {e}>"));
        writeln!(
            out,
            "    {}    {}    {text}",
            value_name(v),
            type_name(v.value_type())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn get(a: &GetArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let values: Vec<regf::Value<'_>> = match a.value.as_deref() {
        Some(name) => {
            let name = if name == "@" { "" } else { name };
            match key.value(name)? {
                Some(v) => vec![v],
                None => bail!(
                    "{}: key {:?} has no value {name:?}",
                    a.hive.display(),
                    a.key
                ),
            }
        }
        None => key.values()?.collect::<regf::Result<_>>()?,
    };
    if a.json {
        let j: Vec<_> = values.iter().map(value_json).collect();
        let j = if a.value.is_some() {
            j.into_iter().next().unwrap_or_default()
        } else {
            json!(j)
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for v in &values {
        let d = v.data()?;
        writeln!(
            out,
            "    {}    {}    {}",
            value_name(v),
            type_name(v.value_type()),
            reg_text(&d)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn export(a: &ExportArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let file_name = a
        .hive
        .file_name()
        .map(|n| n.to_string_lossy().to_uppercase())
        .unwrap_or_default();
    let mut prefix = a
        .prefix
        .clone()
        .unwrap_or_else(|| format!("HKEY_LOCAL_MACHINE\\{file_name}"));
    let rel = a.key.trim_matches(['\\', '/']);
    if !rel.is_empty() {
        prefix = format!("{prefix}\\{}", rel.replace('/', "\\"));
    }
    let stats = match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            regf::regfile::export(&key, &prefix, &mut f)?
        }
        None => regf::regfile::export(&key, &prefix, out)?,
    };
    if stats.errors > 0 {
        eprintln!(
            "winrescue: warning: {} keys or values could not be read; see the `; error` lines",
            stats.errors
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check_cmd(a: &CheckArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let bytes = crate::input::read_file(&a.hive)?;
    let report = check(&bytes);
    let sound = report.is_sound();
    if a.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({"file": a.hive.display().to_string(), "sound": sound, "report": report}),
        )?;
        writeln!(out)?;
    } else {
        for f in &report.faults {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            writeln!(
                out,
                "{sev}: file offset 0x{:x}: [{}] {}",
                f.file_offset, f.code, f.message
            )?;
        }
        if report.faults_not_listed > 0 {
            writeln!(
                out,
                "... and {} more faults not listed",
                report.faults_not_listed
            )?;
        }
        let s = &report.stats;
        writeln!(
            out,
            "{}: {} bins, {} keys, {} values, {} security records, {} allocated cells, {} free cells ({} bytes free, largest {}); {} errors, {} warnings",
            a.hive.display(),
            s.bins,
            s.keys,
            s.values,
            s.security_records,
            s.allocated_cells,
            s.free_cells,
            s.free_bytes,
            s.largest_free_cell,
            report.errors().count(),
            report.faults.iter().filter(|f| f.severity == Severity::Warning).count()
        )?;
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn replay_cmd(a: &ReplayArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let loaded = hivefile::load(&a.hive, false, &a.logs)?;
    let r = loaded
        .replay
        .as_ref()
        .expect("load with replay gives a report");
    let mut refusals: Vec<String> = r.problems.clone();
    if r.incomplete {
        refusals.push("the hive is dirty and no log could be applied".into());
    }
    if !refusals.is_empty() && !a.force {
        return Err(anyhow::Error::new(crate::cmd::WriteRefused(format!(
            "{}: not written: {} (use --force to write anyway)",
            a.output.display(),
            refusals.join("; ")
        ))));
    }
    // The recovered hive is the base block and the hive-bins data Windows holds after the
    // replay; bytes past that (remnants of earlier, larger states kept in the file) are not part
    // of it, and Windows drops them when it writes the hive back.
    let all = loaded.hive.bytes();
    let bytes = &all[..(regf::BASE_BLOCK_SIZE + r.hive_bins_after as usize).min(all.len())];
    let report = check(bytes);
    if !report.is_sound() {
        let first = report
            .errors()
            .next()
            .map(|f| format!("file offset 0x{:x}: {}", f.file_offset, f.message))
            .unwrap_or_default();
        return Err(anyhow::Error::new(crate::cmd::WriteRefused(format!(
            "{}: not written: the recovered hive fails the check ({} errors; first: {first})",
            a.output.display(),
            report.errors().count()
        ))));
    }
    crate::output::write_new_file(&a.output, bytes)?;
    writeln!(
        out,
        "{}: {} log entries, {} pages applied{}; hive-bins data {} bytes; written to {}",
        a.hive.display(),
        r.entries_applied,
        r.pages_applied,
        r.sequence_range
            .map(|(x, y)| format!(" (sequence {x}..{y})"))
            .unwrap_or_default(),
        r.hive_bins_after,
        a.output.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
