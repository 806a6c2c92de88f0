//! `winrescue`: the command-line front end.
//!
//! This crate only parses arguments, calls the library crates and prints. Each subcommand lives in
//! its own module under `cmd/` with a `run(args, out) -> Result<ExitCode>` function; printing goes
//! to the `&mut dyn Write` it is given so that tests can capture it.
//!
//! Exit codes (stable, for scripts):
//! - 0: success; for `diagnose` and `hive check`: nothing wrong found
//! - 1: the command worked and found a problem (a fault in `hive check`, a broken service in `diagnose`)
//! - 2: bad usage (clap's own code)
//! - 3: the input could not be read or is not what it should be (the message says what and where)
//! - 4: a write was refused; nothing was changed
//! - 5: a write or undo was interrupted part way; the message gives the `undo` command that
//!   resolves it
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod hivefile;
mod input;
mod output;
mod printer;

/// Exit code for bad usage (also clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for input that cannot be read or parsed.
pub const EXIT_BAD_INPUT: u8 = 3;
/// Exit code for a refused write.
pub const EXIT_WRITE_REFUSED: u8 = 4;
/// Exit code for a write that stopped part way (a pending journal resolves it).
pub const EXIT_INTERRUPTED: u8 = 5;

#[derive(Parser)]
#[command(name = "winrescue", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find out why the DHCP Client does not start, from the disk alone.
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Fix the DHCP Client on the disk (a dry run unless --apply; an undo journal is kept).
    Repair(cmd::repair::RepairArgs),
    /// Put back what a repair wrote, from its journal.
    Undo(cmd::undo::UndoArgs),
    /// Read, check, export and replay registry hive files (regf).
    #[command(subcommand)]
    Hive(cmd::hive::HiveCommand),
    /// reg.exe's query / add / delete / export / import, or a script of reg lines, against an offline Windows.
    Reg(cmd::reg::RegArgs),
    /// sc.exe's query / qc / config against the SYSTEM hive of an offline Windows.
    Sc(cmd::sc::ScArgs),
    /// The serial-console procedure (CMD and PowerShell) for a DHCP Client error, from a disk's diagnosis or a code.
    Runbook(cmd::runbook::RunbookArgs),
    /// Service Control Manager events from a System event log (.evtx), read offline.
    Events(cmd::events::EventsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    // Names and data read from a disk, a hive or a script may hold terminal control sequences.
    let mut out = output::Escaping(stdout.lock());
    let result = match cli.command {
        Command::Diagnose(a) => cmd::diagnose::run(a, &mut out),
        Command::Repair(a) => cmd::repair::run(a, &mut out),
        Command::Undo(a) => cmd::undo::run(a, &mut out),
        Command::Hive(c) => cmd::hive::run(c, &mut out),
        Command::Reg(a) => cmd::reg::run(a, &mut out),
        Command::Sc(a) => cmd::sc::run(a, &mut out),
        Command::Runbook(a) => cmd::runbook::run(a, &mut out),
        Command::Events(args) => cmd::events::run(args, &mut out),
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        // `winrescue ... | head`: the reader went away; nothing is wrong.
        Err(err)
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<io::Error>())
                .any(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            let text = format!("{err:#}");
            if cmd::is_exe_worded(&err) {
                eprintln!("{}", output::escape_controls(&text));
            } else {
                eprintln!("winrescue: error: {}", output::escape_controls(&text));
            }
            ExitCode::from(cmd::exit_code_for(&err))
        }
    }
}
