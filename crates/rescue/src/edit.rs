//! Editing the hives of a target as one transaction: read each with its logs replayed, edit in
//! memory, write every changed page of every hive through one journal, read back and verify.
//!
//! [`Transaction`] is the one applier: `repair`, `reg`, `sc config` and scripts all end here.
//! Opened for writing, it holds the target's locks (the disk image, or each hive file before it
//! is read) until the write is done, so no other writer can come between the read and the
//! write.
//!
//! # Room for an edit
//! Every editor may append hive bins (see `regf::edit::Editor::allow_growth`). They go first
//! into the slack the file already has after its hive bins, so the file keeps its length. Past
//! that, a hive file (a bare hive, or one in a folder) is extended in place under the journal;
//! inside a disk image its NTFS file grows (`volume::Volume::plan_grow`: MFT record, volume
//! bitmap, new clusters, all journaled with the hive's pages), and what that plan refuses is
//! refused ([`Error::HiveFileFull`]) before anything is written, naming the bytes needed and why.

use std::path::{Path, PathBuf};

use regf::edit::Editor;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::guard::{self, Guard, Prediction};
use crate::journal::{self, CrashAfter, Device, DeviceWrite, HiveRef, Written};
use crate::target::{BootStore, Install, SystemHive, Target, TargetKind};

/// How much longer than its file a hive may become in one transaction: the journal keeps every
/// new byte (as hex, two characters a byte) and must stay under the size `undo` reads (1 GiB).
const MAX_GROWTH: u64 = 256 << 20;

/// How to run an edit.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditOptions {
    /// Plan only: open read-only, change nothing.
    pub dry_run: bool,
    /// Write even if a hive is dirty and its logs are missing.
    pub allow_incomplete: bool,
    /// Choose the Windows installation on this partition.
    pub partition: Option<u32>,
    /// Test hook, see [`CrashAfter`].
    pub crash: CrashAfter,
    /// Whether SYSTEM edits are checked against the services' start analysis first.
    pub guard: Guard,
}

/// What an edit did (or would do) to one hive.
#[derive(Debug, Clone, Serialize)]
pub struct HiveOutcome {
    /// Its Windows path inside the install.
    pub hive: String,
    /// Changed 4 KiB pages of the hive file (the base block included).
    pub pages: usize,
    /// Of those, pages that differ only because the hive's transaction logs were replayed into
    /// the file (a dirty hive is written back recovered and clean).
    pub replayed_pages: usize,
    /// The hive's new sequence number.
    pub sequence: u32,
}

/// What an edit did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct EditOutcome {
    /// Changed 4 KiB pages over all hives.
    pub pages: usize,
    /// Device ranges written (or to write): (offset, length).
    pub ranges: Vec<(u64, usize)>,
    /// The new sequence number of the first hive changed.
    pub sequence: u32,
    /// Each hive changed.
    pub hives: Vec<HiveOutcome>,
    /// The journal, when something was written.
    pub written: Option<Written>,
    /// What the SCM would do before and after, when the transaction was guarded and edited
    /// a SYSTEM hive.
    pub prediction: Option<Prediction>,
}

/// A hive loaded into a transaction.
struct Loaded {
    /// Windows path inside the install, or the boot store's path on its partition.
    path: String,
    /// The boot store (BCD) of the disk, not a hive of the install.
    boot: Option<BootStore>,
    /// The file as it is on the disk.
    on_disk: Vec<u8>,
    /// The file after log replay (what the editor started from).
    recovered: Vec<u8>,
    editor: Editor,
    /// File targets: the hive file, open and locked for writing.
    device: Option<Device>,
}

/// Edits of one or more hives of a target, written together or not at all.
pub struct Transaction {
    path: PathBuf,
    target: Target,
    install: Install,
    opts: EditOptions,
    hives: Vec<Loaded>,
    /// File targets: hive files locked for writing but not loaded yet (the anchor is locked
    /// at open, before the check for an interrupted write, so that a write in progress in
    /// another process is told apart from an interrupted one).
    locked: Vec<Device>,
}

impl Transaction {
    /// Opens the target at `path` (for writing, with its locks, unless a dry run).
    pub fn open(path: &Path, opts: EditOptions) -> Result<Transaction> {
        let target = Target::open(path, !opts.dry_run)?;
        let install = target.choose(opts.partition)?.clone();
        let mut locked = Vec::new();
        if !opts.dry_run {
            let anchor = target.anchor(&install);
            if target.kind() != TargetKind::Disk {
                locked.push(Device::file(&anchor)?);
            }
            journal::check_no_pending(&anchor)?;
            if !install.write_blockers.is_empty() {
                return Err(Error::Refused(install.write_blockers.join("; ")));
            }
        }
        Ok(Transaction {
            path: path.to_path_buf(),
            target,
            install,
            opts,
            hives: Vec::new(),
            locked,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn install(&self) -> &Install {
        &self.install
    }

    /// The editor of a hive (`None`: SYSTEM; else its Windows path inside the install, e.g.
    /// `Windows\System32\config\SOFTWARE`), loaded on first use. The boot store is not a
    /// hive of the install: see [`Transaction::boot_store`].
    pub fn hive(&mut self, hive: Option<&str>) -> Result<&mut Editor> {
        let path = hive
            .map(str::to_string)
            .unwrap_or_else(|| self.install.system_path.clone());
        let i = match self
            .hives
            .iter()
            .position(|h| h.boot.is_none() && h.path.eq_ignore_ascii_case(&path))
        {
            Some(i) => i,
            None => {
                let device = self.lock_file(&path)?;
                let loaded = self.load(&path, device)?;
                self.hives.push(loaded);
                self.hives.len() - 1
            }
        };
        Ok(&mut self.hives[i].editor)
    }

    /// The editor of the target's boot store (BCD: `EFI\Microsoft\Boot\BCD` on the EFI system
    /// partition, or `Boot\BCD` on the active partition; see [`Target::find_boot_store`]),
    /// loaded on first use with its logs replayed. `None` when the target has no boot store.
    /// It is written with the other hives of the transaction, under the same journal, only
    /// into the clusters its file already owns, and never changes the file's size on a disk.
    pub fn boot_store(&mut self) -> Result<Option<&mut Editor>> {
        if let Some(i) = self.hives.iter().position(|h| h.boot.is_some()) {
            return Ok(Some(&mut self.hives[i].editor));
        }
        let Some(loc) = self.target.find_boot_store()? else {
            return Ok(None);
        };
        let device = self.lock_file(&loc.path)?;
        let Some(read) = self.target.boot_store()? else {
            return Ok(None);
        };
        if read.location != loc {
            return Err(Error::Refused(format!(
                "the boot store moved while it was read ({} -> {})",
                loc.path, read.location.path
            )));
        }
        let mut loaded = self.loaded(&loc.path, read.hive, device)?;
        loaded.boot = Some(loc);
        self.hives.push(loaded);
        Ok(self.hives.last_mut().map(|h| &mut h.editor))
    }

    /// File targets being written: the hive file, locked before it is read, so that what is
    /// written is planned from what no one else can change in between.
    fn lock_file(&mut self, hive_path: &str) -> Result<Option<Device>> {
        if self.opts.dry_run || self.target.kind() == TargetKind::Disk {
            return Ok(None);
        }
        let file = self.target.hive_file_path(&self.install, hive_path)?;
        let real = std::fs::canonicalize(&file).unwrap_or(file);
        if let Some(i) = self.locked.iter().position(|d| d.path() == real) {
            return Ok(Some(self.locked.swap_remove(i)));
        }
        Device::file(&real).map(Some)
    }

    fn load(&self, hive_path: &str, device: Option<Device>) -> Result<Loaded> {
        let hive = self.target.hive(&self.install, hive_path)?;
        self.loaded(hive_path, hive, device)
    }

    /// An editor over a hive read with its logs: refused if the replay found problems, or if
    /// the hive is dirty without its logs (unless allowed).
    fn loaded(&self, hive_path: &str, hive: SystemHive, device: Option<Device>) -> Result<Loaded> {
        let report = &hive.recovered.report;
        if !report.problems.is_empty() {
            return Err(Error::Refused(format!(
                "{hive_path}: {}",
                report.problems.join("; ")
            )));
        }
        if report.incomplete && !self.opts.allow_incomplete {
            return Err(Error::IncompleteHive {
                hive: hive_path.to_string(),
            });
        }
        let mut editor = Editor::new(hive.recovered.bytes.clone(), report.next_sequence)?;
        // Disk targets too: an edit that needs more than the file's clusters is then refused
        // at planning with the bytes it needs, rather than as "no room" without a number.
        let len = hive.on_disk.len().max(hive.recovered.bytes.len()) as u64;
        editor.allow_growth(len.saturating_add(MAX_GROWTH));
        Ok(Loaded {
            path: hive_path.to_string(),
            boot: None,
            on_disk: hive.on_disk,
            recovered: hive.recovered.bytes,
            editor,
            device,
        })
    }

    /// What the edits of the SYSTEM hive would do to the services (`None`: SYSTEM is not
    /// edited, or the hive edited is not a SYSTEM hive, e.g. a SOFTWARE hive file as target).
    pub fn predict(&self) -> Option<Prediction> {
        let system = self.hives.iter().find(|h| {
            h.path.eq_ignore_ascii_case(&self.install.system_path)
                && !h.editor.changed_pages().is_empty()
        })?;
        let hive = regf::Hive::open(&system.recovered[..]).ok()?;
        let mut before = winsvc::SystemModel::read(&hive, None).ok()?;
        if before.version.build.is_none() && self.target.kind() != TargetKind::HiveFile {
            if let Some(v) = crate::offline::software_version_of(&self.target, &self.install) {
                before = winsvc::SystemModel::read(&hive, Some(v)).ok()?;
            }
        }
        let after =
            winsvc::SystemModel::from_bytes(system.editor.bytes(), Some(before.version.clone()))
                .ok()?;
        let files = |p: &str| self.target.registry_file_exists(&self.install, p);
        Some(guard::predict(&before, &after, &files))
    }

    /// Writes every changed hive through one journal (nothing for a dry run), then reads the
    /// target again as Windows will and compares. A guarded transaction first predicts what
    /// the SCM would do, and refuses ([`Error::WouldBreak`]) a write that breaks a service.
    pub fn commit(self, what: &str) -> Result<EditOutcome> {
        let prediction = match self.opts.guard {
            Guard::Off => None,
            Guard::Enforce | Guard::Force => self.predict(),
        };
        if let Some(p) = &prediction {
            if self.opts.guard == Guard::Enforce && !p.is_safe() {
                return Err(Error::WouldBreak {
                    prediction: Box::new(p.clone()),
                });
            }
        }
        let Transaction {
            path,
            target,
            install,
            opts,
            hives,
            locked: _,
        } = self;
        let mut outcomes = Vec::new();
        let mut ranges = Vec::new();
        // Disk targets: every hive's pieces go to the one disk. File targets: a device each.
        let mut disk_hives = Vec::new();
        let mut disk_pieces = Vec::new();
        let mut file_writes = Vec::new();
        // (path, whether it is the boot store, the bytes written)
        let mut finished: Vec<(String, bool, Vec<u8>)> = Vec::new();
        for h in hives {
            let Loaded {
                path: hive_path,
                boot,
                on_disk,
                recovered,
                editor,
                device,
            } = h;
            // Pages the edits changed, before the new base block: none means nothing to write.
            if editor.changed_pages().is_empty() {
                continue;
            }
            let edited = editor.finish()?;
            let pieces = match &boot {
                Some(loc) => target.plan_boot_store_write(loc, &on_disk, &edited.bytes)?,
                None => target.plan_hive_write(&install, &hive_path, &on_disk, &edited.bytes)?,
            };
            let pages = regf::edit::changed_pages(&on_disk, &edited.bytes).len();
            let edit_pages = regf::edit::changed_pages(&recovered, &edited.bytes).len();
            outcomes.push(HiveOutcome {
                hive: hive_path.clone(),
                pages,
                replayed_pages: pages.saturating_sub(edit_pages),
                sequence: edited.sequence,
            });
            ranges.extend(pieces.iter().map(|p| (p.offset, p.after.len())));
            let hive_ref = match &boot {
                Some(loc) => HiveRef {
                    partition_start: loc.partition_start,
                    path: loc.path.clone(),
                    boot_store: true,
                },
                None => HiveRef {
                    partition_start: install.partition_start,
                    path: hive_path.clone(),
                    boot_store: false,
                },
            };
            let grow_to = (edited.bytes.len() > on_disk.len()).then_some(edited.bytes.len() as u64);
            match device {
                Some(device) => file_writes.push(DeviceWrite {
                    device,
                    hives: vec![hive_ref],
                    pieces,
                    grow_to,
                }),
                None => {
                    disk_hives.push(hive_ref);
                    disk_pieces.extend(pieces);
                }
            }
            finished.push((hive_path, boot.is_some(), edited.bytes));
        }
        // Two growths on one volume may rewrite the same bitmap bytes and directory entries:
        // one range each, as the journal writes them.
        let disk_pieces = crate::target::merge_overlaps(disk_pieces);
        if !disk_pieces.is_empty() {
            ranges = file_writes
                .iter()
                .flat_map(|w| w.pieces.iter())
                .chain(&disk_pieces)
                .map(|p| (p.offset, p.after.len()))
                .collect();
        }
        let mut outcome = EditOutcome {
            pages: outcomes.iter().map(|h| h.pages).sum(),
            ranges,
            sequence: outcomes.first().map(|h| h.sequence).unwrap_or(0),
            hives: outcomes,
            written: None,
            prediction,
        };
        if finished.is_empty() || opts.dry_run {
            return Ok(outcome);
        }
        let anchor = target.anchor(&install);
        let mut writes = file_writes;
        if !disk_pieces.is_empty() {
            let disk = target
                .into_disk()
                .ok_or_else(|| Error::Refused("the target was opened without its disk".into()))?;
            writes.insert(
                0,
                DeviceWrite {
                    device: Device::Disk(disk),
                    hives: disk_hives,
                    pieces: disk_pieces,
                    grow_to: None,
                },
            );
        }
        let written = journal::write(&anchor, writes, what, opts.crash)?;
        // Read the target again, as Windows will, and compare.
        let again = Target::open(&path, false)?;
        let install = again.choose(opts.partition)?.clone();
        for (hive_path, boot, bytes) in &finished {
            let now = if *boot {
                again
                    .boot_store()?
                    .ok_or_else(|| Error::NotVerified {
                        path: path.clone(),
                        what: format!("the boot store {hive_path} is not found after the write"),
                        journal: written.undo_journal.clone(),
                    })?
                    .hive
            } else {
                again.hive(&install, hive_path)?
            };
            if &now.on_disk != bytes || &now.recovered.bytes != bytes {
                return Err(Error::NotVerified {
                    path: path.clone(),
                    what: format!(
                        "{hive_path} read back from the target differs from what was written"
                    ),
                    journal: written.undo_journal.clone(),
                });
            }
        }
        outcome.written = Some(written);
        Ok(outcome)
    }
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
    let mut tx = Transaction::open(path, opts)?;
    let ed = tx.hive(hive)?;
    if !edit(ed)? {
        return Ok(EditOutcome {
            pages: 0,
            ranges: Vec::new(),
            sequence: 0,
            hives: Vec::new(),
            written: None,
            prediction: None,
        });
    }
    tx.commit(&format!(
        "{} edit",
        hive.and_then(|h| h.rsplit('\\').next()).unwrap_or("SYSTEM")
    ))
}
