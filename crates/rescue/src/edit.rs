//! Editing the SYSTEM hive of a target: read with logs replayed, edit in memory, write the
//! changed pages in place through the journal, read back and verify.

use std::path::Path;

use regf::edit::{Edited, Editor};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::journal::{self, CrashAfter, Device, Written};
use crate::target::{Target, TargetKind};

/// How to run an edit.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditOptions {
    /// Plan only: open read-only, change nothing.
    pub dry_run: bool,
    /// Write even if the hive is dirty and its logs are missing.
    pub allow_incomplete: bool,
    /// Choose the Windows installation on this partition.
    pub partition: Option<u32>,
    /// Test hook, see [`CrashAfter`].
    pub crash: CrashAfter,
}

/// What an edit did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct EditOutcome {
    /// Changed 4 KiB pages of the hive file (the base block included).
    pub pages: usize,
    /// Device ranges written (or to write): (offset, length).
    pub ranges: Vec<(u64, usize)>,
    /// The hive's new sequence number.
    pub sequence: u32,
    /// The journal, when something was written.
    pub written: Option<Written>,
}

/// Runs `edit` on the SYSTEM hive of the target at `path`. `edit` returns `false` when it
/// changed nothing (then nothing is written).
pub fn edit_system_hive(
    path: &Path,
    opts: EditOptions,
    edit: impl FnOnce(&mut Editor) -> Result<bool>,
) -> Result<EditOutcome> {
    edit_hive(path, None, opts, edit)
}

/// Runs `edit` on a hive of the target at `path`: `hive` is its Windows path inside the
/// install (e.g. `Windows\System32\config\SOFTWARE`), `None` for SYSTEM.
pub fn edit_hive(
    path: &Path,
    hive: Option<&str>,
    opts: EditOptions,
    edit: impl FnOnce(&mut Editor) -> Result<bool>,
) -> Result<EditOutcome> {
    if !opts.dry_run {
        journal::check_no_pending(path)?;
    }
    let target = Target::open(path, !opts.dry_run)?;
    let install = target.choose(opts.partition)?.clone();
    if !opts.dry_run && !install.write_blockers.is_empty() {
        return Err(Error::Refused(install.write_blockers.join("; ")));
    }
    let hive_path = hive
        .map(str::to_string)
        .unwrap_or_else(|| install.system_path.clone());
    let hive = target.hive(&install, &hive_path)?;
    let report = &hive.recovered.report;
    if !report.problems.is_empty() {
        return Err(Error::Refused(report.problems.join("; ")));
    }
    if report.incomplete && !opts.allow_incomplete {
        return Err(Error::Refused(
            "the SYSTEM hive is dirty and its transaction logs are missing or unusable: its most recent changes are not in the file (allow it explicitly to write anyway)".into(),
        ));
    }
    let mut editor = Editor::new(hive.recovered.bytes.clone(), report.next_sequence)?;
    let changed = edit(&mut editor)?;
    let edited: Edited = editor.finish()?;
    if !changed {
        return Ok(EditOutcome {
            pages: 0,
            ranges: Vec::new(),
            sequence: edited.sequence,
            written: None,
        });
    }
    let (device_path, pieces) =
        target.plan_hive_write(&install, &hive_path, &hive.on_disk, &edited.bytes)?;
    let pages = regf::edit::changed_pages(&hive.on_disk, &edited.bytes).len();
    let ranges = pieces.iter().map(|(o, d)| (*o, d.len())).collect();
    if opts.dry_run {
        return Ok(EditOutcome {
            pages,
            ranges,
            sequence: edited.sequence,
            written: None,
        });
    }
    let device = match target.kind() {
        TargetKind::Disk => Device::Disk(target.into_disk().expect("disk target")),
        _ => Device::file(&device_path)?,
    };
    let written = journal::write(
        &device_path,
        device,
        &pieces,
        "SYSTEM hive edit",
        opts.crash,
    )?;
    // Read the target again, as Windows will, and compare.
    let again = Target::open(path, false)?;
    let install = again.choose(opts.partition)?.clone();
    let now = again.hive(&install, &hive_path)?;
    if now.on_disk != edited.bytes || now.recovered.bytes != edited.bytes {
        return Err(Error::Verify {
            path: path.into(),
            what: format!("{hive_path} read back from the target differs from what was written"),
        });
    }
    Ok(EditOutcome {
        pages,
        ranges,
        sequence: edited.sequence,
        written: Some(written),
    })
}
