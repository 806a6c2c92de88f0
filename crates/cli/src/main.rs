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
mod report;

/// Exit code for bad usage (also clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for input that cannot be read or parsed.
pub const EXIT_BAD_INPUT: u8 = 3;
/// Exit code for a refused write.
pub const EXIT_WRITE_REFUSED: u8 = 4;
/// Exit code for a write that stopped part way (a pending journal resolves it).
pub const EXIT_INTERRUPTED: u8 = 5;

/// The end of `winrescue --help`: what scripts and admins need before the first write.
const AFTER_HELP: &str = "\
Exit codes:
  0  success (diagnose: nothing on the disk blocks RDP; hive check: nothing wrong found)
  1  a problem was found (diagnose, runbook: a finding blocks or may block RDP, or cannot be judged;
     hive check: an error)
  2  bad usage (reg / sc: ERROR: Invalid syntax.)
  3  unreadable or invalid input, or a key, value or service that does not exist
  4  a write was refused; nothing was changed (reg / sc: it would break a service; --force writes it)
  5  a write or undo was interrupted part way; the message gives the undo command that resolves it

Where journals go:
  undo journal     beside the image or hive file (<image>.winrescue-undo-<time>.json);
                   for a block device, /var/lib/winrescue/; anywhere with WINRESCUE_JOURNAL_DIR
  pending journal  <image>.winrescue-journal, in the same folder, while a write is under way
  journal key      /var/lib/winrescue/journal.key for root, ~/.local/state/winrescue/journal.key
                   otherwise, or $WINRESCUE_STATE_DIR/journal.key; a journal is obeyed only on
                   the machine whose key signed it

Quote Windows paths in single quotes: the shell removes unquoted backslashes.

Examples:
  winrescue diagnose osdisk.vhd
  winrescue repair osdisk.vhd --apply
  winrescue sc osdisk.vhd config DHCP start= auto obj= 'NT Authority\\LocalService'";

#[derive(Parser)]
#[command(name = "winrescue", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find out why RDP cannot reach the VM, from the disk alone: every check on the way of a connection.
    #[command(
        after_help = "Examples:\n  winrescue diagnose osdisk.vhd\n  winrescue diagnose 'https://md-x.blob.core.windows.net/abcd/abcd?sv=...&sig=...'   (a SAS URL)\n  winrescue diagnose --targets-from disks.txt --shard \"$JOB_COMPLETION_INDEX/8\" --jobs 8 --json"
    )]
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Fix what diagnose finds on the disk (a dry run unless --apply; an undo journal is kept).
    #[command(
        after_help = "Examples:\n  winrescue repair osdisk.vhd              (a dry run: shows the changes)\n  winrescue repair osdisk.vhd --apply      (writes them, prints the undo command)\n  winrescue repair 'https://md-x.blob.core.windows.net/abcd/abcd?sv=...&sp=rw&sig=...' --apply   (a SAS with write access: az disk grant-access --access-level Write)"
    )]
    Repair(cmd::repair::RepairArgs),
    /// The checks diagnose runs, with the Microsoft article each comes from.
    Rules(cmd::rules::RulesArgs),
    /// Put back what a repair wrote, from its journal.
    #[command(
        after_help = "Examples:\n  winrescue undo osdisk.vhd.winrescue-undo-20261130T160000Z.json\n  winrescue undo --redo osdisk.vhd.winrescue-journal     (an interrupted write: finish it; without --redo: back to before it)\n  winrescue undo abcd-0123456789abcdef.winrescue-undo-20261130T160000Z.json --url 'https://md-x.blob.core.windows.net/abcd/abcd?sv=...&sp=rw&sig=...'   (a blob: the journal never keeps its SAS)"
    )]
    Undo(cmd::undo::UndoArgs),
    /// Read, check, export and replay registry hive files (regf).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  winrescue hive info SYSTEM\n  winrescue hive get SYSTEM 'CurrentControlSet\\Services\\Dhcp' Start\n  winrescue hive check SYSTEM"
    )]
    Hive(cmd::hive::HiveCommand),
    /// reg.exe's query / add / delete / export / import, or a script of reg lines, against an offline Windows.
    #[command(
        after_help = "Every write is checked first: one that breaks the DHCP Client or the service written, or stores\na type the Service Control Manager rejects, is refused (exit 4) unless --force. `reg TARGET ADD /?`\nprints an operation's usage.\n\nExamples:\n  winrescue reg osdisk.vhd query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dhcp' /v Start\n  winrescue reg osdisk.vhd add 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' /v Start /t REG_DWORD /d 2 /f\n  winrescue reg osdisk.vhd --script fix-dhcp.cmd"
    )]
    Reg(cmd::reg::RegArgs),
    /// sc.exe's query / qc / config against the SYSTEM hive of an offline Windows.
    #[command(
        after_help = "Every config is checked first: one that breaks the DHCP Client or the service is refused\n(exit 4) unless --force.\n\nExamples:\n  winrescue sc osdisk.vhd query DHCP\n  winrescue sc osdisk.vhd qc DHCP\n  winrescue sc osdisk.vhd config DHCP start= auto obj= 'NT Authority\\LocalService' --dry-run"
    )]
    Sc(cmd::sc::ScArgs),
    /// The serial-console procedure (CMD and PowerShell) for a DHCP Client error, from a disk's diagnosis or a code.
    #[command(
        after_help = "Examples:\n  winrescue runbook osdisk.vhd\n  winrescue runbook --code 1068\n  winrescue runbook --code 1079"
    )]
    Runbook(cmd::runbook::RunbookArgs),
    /// Service Control Manager events from a System event log: a disk image or block device, a folder holding a Windows tree, or an .evtx file.
    #[command(
        after_help = "Examples:\n  winrescue events osdisk.vhd --service Dhcp\n  winrescue events System.evtx --id 7022,7023 --within 24h\n  winrescue events /mnt/windows --json"
    )]
    Events(cmd::events::EventsArgs),
}

fn main() -> ExitCode {
    // A URL's SAS must never be printed, whatever prints it.
    output::note_secrets(std::env::args_os());
    let cli = Cli::parse();
    let stdout = io::stdout();
    // Names and data read from a disk, a hive or a script may hold terminal control sequences.
    let mut out = output::Escaping(stdout.lock());
    let result = match cli.command {
        Command::Diagnose(a) => cmd::diagnose::run(a, &mut out),
        Command::Repair(a) => cmd::repair::run(a, &mut out),
        Command::Rules(a) => cmd::rules::run(a, &mut out),
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
            let shown = output::redact_secrets(&output::escape_controls(&text)).to_string();
            if cmd::is_exe_worded(&err) {
                eprintln!("{shown}");
            } else {
                eprintln!("winrescue: error: {shown}");
            }
            ExitCode::from(cmd::exit_code_for(&err))
        }
    }
}
