//! `winrescue undo JOURNAL [--redo]`: put back the bytes a write replaced (or finish an
//! interrupted write).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
#[command(after_help = "\
Examples:
  winrescue undo osdisk.vhd.winrescue-undo-20261125T140521Z.json
  winrescue undo osdisk.vhd.winrescue-journal           # an interrupted write: back to before it
  winrescue undo --redo osdisk.vhd.winrescue-journal    # an interrupted write: finish it
  winrescue undo ~/.local/state/winrescue/journals/abcd-*.winrescue-undo-*.json \
      --url 'https://md-x.blob.core.windows.net/abcd/abcd?sv=...&sp=rw&sig=...'

A journal of a disk behind a URL names the blob without its SAS (journals never keep it):
give the URL again with --url, with a SAS that allows writing (az disk grant-access
--access-level Write). The undo is refused if anyone else wrote the blob since (its ETag).

A journal is obeyed only on the machine that wrote it (it is authenticated with the key in
/var/lib/winrescue/journal.key for root, ~/.local/state/winrescue/journal.key otherwise, or
$WINRESCUE_STATE_DIR/journal.key), and only where the bytes are still what it wrote.
Undoing a journal twice is harmless: the second time says it is already undone.")]
pub struct UndoArgs {
    /// The journal a write left: `<image>.winrescue-undo-<time>.json`, or the pending
    /// `<image>.winrescue-journal` of an interrupted write (a path relative to the current
    /// folder is fine).
    pub journal: PathBuf,
    /// Finish an interrupted write instead of undoing it.
    #[arg(long)]
    pub redo: bool,
    /// The URL, with a SAS that allows writing, of a blob the journal writes (repeat for
    /// several). Its secrets are never shown or written down.
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
}

pub fn run(a: UndoArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let done = rescue::journal::undo_remote(
        &a.journal,
        a.redo,
        &a.urls,
        rescue::journal::CrashAfter(None),
    )
    .map_err(crate::cmd::refusal)?;
    let target = done.target.display();
    if done.already {
        writeln!(
            out,
            "{target}: already undone: its {} ranges hold their original bytes; nothing was written",
            done.ranges
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{target}: {} ranges {}; verified by reading them back",
        done.ranges,
        if done.redo {
            "written (the interrupted write is finished)"
        } else {
            "restored to their original bytes"
        }
    )?;
    writeln!(out, "journal: {}", done.journal.display())?;
    Ok(ExitCode::SUCCESS)
}
