//! `winrescue reg TARGET query|add|delete|export|import ...`: reg.exe's own syntax against the
//! hives of an offline Windows (a disk image, a block device, a mounted folder or a hive file),
//! so that the commands of the article (and of every admin's memory) work as written.
//!
//! ```text
//! winrescue reg disk.vhd query "HKLM\SYSTEM\CurrentControlSet\Services\Dhcp" /v Start
//! winrescue reg disk.vhd add "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v start /t REG_DWORD /d 2 /f
//! winrescue reg disk.vhd delete "HKLM\SYSTEM\ControlSet001\Services\Foo" /f
//! winrescue reg disk.vhd export "HKLM\SYSTEM\ControlSet001\Services\Dhcp" dhcp.reg
//! winrescue reg disk.vhd import dhcp.reg
//! winrescue reg disk.vhd --script fix-dhcp.cmd
//! ```
//!
//! # Roots
//! `HKLM\SYSTEM`, `HKLM\SOFTWARE`, `HKLM\SAM`, `HKLM\SECURITY`, `HKLM\DEFAULT` name the hives of
//! `Windows\System32\config`. Any other name after `HKLM\` is what `reg load` called the hive on a
//! recovery VM (the article's `HKLM\BROKENSYSTEM`): a single command takes it to mean SYSTEM and
//! says so; in a script, a `reg load HKLM\NAME F:\windows\system32\config\HIVE` line maps NAME to
//! the hive its file name names (the drive letter and folder are kept as written and ignored:
//! the hive is the target's), and a name no `reg load` line gave is refused with its line number,
//! since on a recovery VM it would be that VM's own registry. A key without a root is a path in
//! SYSTEM. `CurrentControlSet` is resolved through `Select\Current`. A hive-file target is the
//! one hive every root names.
//!
//! # Writes
//! Every write goes through `wincmd::offline::Session` (a `rescue::edit::Transaction`): the hive is read with its transaction logs
//! replayed, edited in memory, checked, written in place page by page through an undo journal
//! (`winrescue undo JOURNAL` puts the old bytes back), and read back to verify. A script's lines
//! are all parsed before anything is written, and all the lines for one hive are applied in one
//! edit: either all of them land or none does. `--dry-run` shows the change and writes nothing.
//! Before anything is written, `rescue::guard` predicts what the Service Control Manager would do
//! with the DHCP Client and with every service the write changes, before and after; the
//! prediction is printed, and a write that breaks a service that starts, or stores a value with
//! a type the SCM rejects (`/v Start /d 2` without `/t` is REG_SZ, as reg.exe makes it), is
//! refused unless `--force`.
//!
//! # Scripts
//! `--script FILE` runs a `.cmd` / `.bat` file of `reg load`, `reg add`, `reg delete` and
//! `reg unload` lines (the article's offline script, verbatim). Blank lines, `rem` / `::`
//! comments and `@echo off` are skipped; any other line is refused with its number before
//! anything is written.
//!
//! # Exit codes
//! 0 done; 2 a syntax error, worded as reg.exe words it (`ERROR: Invalid syntax.`); 3 a key or
//! value that does not exist, or a target that cannot be read; 4 a write refused (nothing
//! changed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use wincmd::change::apply_reg;
use wincmd::offline::WriteOpts;
use wincmd::path::{inner_path, KeyRef, Mounts};
use wincmd::reg::{parse, takes_operand, RegOp};

use crate::cmd::lib_error;

pub mod edit;
pub mod read;
pub mod script;
pub mod usage;

pub use crate::cmd::SyntaxError;
pub use edit::edit_target;
pub use read::read_hive;

#[derive(Args)]
pub struct RegArgs {
    /// The offline Windows: a disk image or block device (raw, VHD, VHDX), a folder holding a
    /// Windows tree, or a hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub target: PathBuf,
    /// The Windows installation on this partition (when the disk holds several).
    #[arg(long)]
    pub partition: Option<u32>,
    /// Show what a write would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write even though the hive is dirty and its logs are missing (its most recent changes
    /// would be lost for good).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Write even though the check predicts that the write breaks a service (the DHCP Client
    /// or the service written) or stores a type the Service Control Manager rejects.
    #[arg(long)]
    pub force: bool,
    /// Print JSON (with "schema_version": 1): the key and its values for query, the file and
    /// counts for export, every change and the outcome for a write.
    #[arg(long)]
    pub json: bool,
    /// Run a .cmd/.bat file of `reg load|add|delete|unload` lines (the article's offline script).
    #[arg(long, value_name = "FILE", conflicts_with = "args")]
    pub script: Option<PathBuf>,
    /// The reg.exe command: QUERY | ADD | DELETE | EXPORT | IMPORT, then its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "script",
        value_name = "REG ARGS"
    )]
    pub args: Vec<String>,
}

/// Takes winrescue's own flags out of the reg.exe arguments, where an admin appends them after
/// the command (`reg DISK add ... /f --dry-run`), as `sc` accepts them. A flag given as the
/// operand of `/v`, `/d`, `/t` or `/s` stays data.
fn take_own_flags(a: &mut RegArgs) {
    let mut kept: Vec<String> = Vec::with_capacity(a.args.len());
    let mut after_switch = false;
    for x in std::mem::take(&mut a.args) {
        if !after_switch {
            let flag = match x.as_str() {
                "--dry-run" => Some(&mut a.dry_run),
                "--force" => Some(&mut a.force),
                "--allow-incomplete" => Some(&mut a.allow_incomplete),
                "--json" => Some(&mut a.json),
                _ => None,
            };
            if let Some(f) = flag {
                *f = true;
                continue;
            }
        }
        let verb = kept.first().map(String::as_str).unwrap_or("");
        after_switch = takes_operand(verb, &x) && !after_switch;
        kept.push(x);
    }
    a.args = kept;
}

pub fn run(mut a: RegArgs, out: &mut dyn Write) -> Result<ExitCode> {
    take_own_flags(&mut a);
    let opts = WriteOpts {
        partition: a.partition,
        dry_run: a.dry_run,
        allow_incomplete: a.allow_incomplete,
        force: a.force,
    };
    if let Some(script) = &a.script {
        return script::run_script(&a.target, script, opts, a.json, out);
    }
    let op = parse(&a.args).map_err(lib_error)?;
    let mounts = Mounts::default();
    let resolve = |key: &str| -> Result<KeyRef> {
        let k = mounts.resolve(key).map_err(lib_error)?;
        if let Some(n) = k.note() {
            eprintln!("note: {n}");
        }
        Ok(k)
    };
    // The hive a key names, read from the target, and the key's path inside it.
    let locate = |key: &str| -> Result<(KeyRef, regf::Hive<Vec<u8>>, String)> {
        let k = resolve(key)?;
        let hive = read::read_for(&a.target, a.partition, k.hive)?;
        let path = inner_path(&hive, k.hive, &k.parts).map_err(lib_error)?;
        Ok((k, hive, path))
    };
    let done = |out: &mut dyn Write| -> Result<()> {
        if !a.json {
            writeln!(out, "The operation completed successfully.")?;
        }
        Ok(())
    };
    match &op {
        RegOp::Query {
            key,
            value,
            recurse,
        } => {
            let (_, hive, path) = locate(key)?;
            let node = hive
                .key(&path)?
                .ok_or_else(|| lib_error(wincmd::Error::NotFound(key.clone())))?;
            let q =
                wincmd::query::query(&node, key, value.as_deref(), *recurse).map_err(lib_error)?;
            read::print_query(&q, value.is_some(), a.json, out)?;
        }
        RegOp::Add { key, .. } | RegOp::Delete { key, .. } => {
            let k = resolve(key)?;
            edit_target(&a.target, opts, a.json, out, |session, report| {
                let ed = session.editor(k.hive).map_err(lib_error)?;
                let applied = apply_reg(ed, &k, key, &op).map_err(lib_error)?;
                report.add(&applied, None, edit::reg_line);
                Ok(())
            })?;
            done(out)?;
        }
        RegOp::Export {
            key,
            file,
            overwrite,
        } => {
            let (k, hive, path) = locate(key)?;
            let node = hive
                .key(&path)?
                .ok_or_else(|| lib_error(wincmd::Error::NotFound(key.clone())))?;
            let prefix = wincmd::query::export_prefix(key, k.hive, &path);
            read::export(&node, &prefix, Path::new(file), *overwrite, a.json, out)?;
            done(out)?;
        }
        RegOp::Import { file } => {
            script::import(&a.target, Path::new(file), opts, a.json, out)?;
            done(out)?;
        }
        RegOp::Load { key, .. } => {
            // The article's lines are pasted one by one: the load line has nothing to do
            // offline, and the next line's HKLM\NAME is taken as SYSTEM with a note.
            eprintln!("note: nothing to load: winrescue opens the target's hives itself; {key} names the SYSTEM hive in the commands that follow (a --script file maps the name to the hive its reg load line gives)");
            done(out)?;
        }
        RegOp::Unload { key } => {
            eprintln!("note: nothing to unload: every winrescue command writes and closes the hive itself ({key} needs no unload)");
            done(out)?;
        }
        RegOp::Help { verb } => {
            writeln!(out, "{}", usage::usage_text(verb.as_deref()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
