//! `winrescue undo JOURNAL [--redo]`: put back the bytes a write replaced (or finish an
//! interrupted write).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct UndoArgs {
    /// The journal a write left: `<image>.winrescue-undo-<time>.json`, or the pending
    /// `<image>.winrescue-journal` of an interrupted write.
    pub journal: PathBuf,
    /// Finish an interrupted write instead of undoing it.
    #[arg(long)]
    pub redo: bool,
}

pub fn run(a: UndoArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let done = rescue::journal::undo(&a.journal, a.redo).map_err(crate::cmd::refusal)?;
    writeln!(
        out,
        "{}: {} ranges {}; verified by reading them back",
        done.device.display(),
        done.ranges,
        if done.redo {
            "written (the interrupted write is finished)"
        } else {
            "restored to their original bytes"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}
