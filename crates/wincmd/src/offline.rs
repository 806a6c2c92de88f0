//! The hives of an offline Windows, for reading ([`Opened`], [`OfflineSystem`]) and for writing
//! ([`Session`], a [`rescue::edit::Transaction`]: the one applier and its undo journal).

use std::path::Path;

use regf::edit::Editor;
use regf::Hive;
use rescue::edit::{EditOptions, EditOutcome, Transaction};
use rescue::guard::Guard;
use rescue::target::{Install, Target, TargetKind};
use winsvc::{analyze, Diagnosis, SystemModel};

use crate::error::{Error, Result};
use crate::path::HiveName;

/// The first bytes of an xz file.
const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0];

/// Whether `path` is an xz-compressed file (a hive file kept compressed can be read by a caller
/// that decompresses it, never written in place).
pub fn is_xz(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 6];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && head == XZ_MAGIC
}

/// The Windows path of a hive inside the install, `None` for SYSTEM (and for a hive-file
/// target, which is the one hive every root names).
fn hive_path_in(target: &Target, install: &Install, name: HiveName) -> Option<String> {
    match (target.kind(), name) {
        (TargetKind::HiveFile, _) | (_, HiveName::System) => None,
        _ => Some(target.sibling_hive_path(install, name.file_name())),
    }
}

/// The opened target and its chosen Windows installation, for reading.
pub struct Opened {
    pub target: Target,
    pub install: Install,
}

impl Opened {
    pub fn open(path: &Path, partition: Option<u32>) -> Result<Opened> {
        let target = Target::open(path, false)?;
        let install = target.choose(partition)?.clone();
        Ok(Opened { target, install })
    }

    /// A hive with its logs replayed, and the warnings a reader must see.
    pub fn read_hive(&self, name: HiveName) -> Result<(Hive<Vec<u8>>, Vec<String>)> {
        let path = hive_path_in(&self.target, &self.install, name)
            .unwrap_or_else(|| self.install.system_path.clone());
        let h = self
            .target
            .hive(&self.install, &path)
            .map_err(|source| Error::ReadingHive {
                path: path.clone(),
                source,
            })?;
        let r = &h.recovered.report;
        let warnings = r.problems.iter().chain(&r.warnings).cloned().collect();
        let hive = Hive::open_lenient(h.recovered.bytes)
            .map_err(|source| Error::NotAHive { path, source })?;
        Ok((hive, warnings))
    }

    /// Whether a file named as ImagePath / ServiceDll write it exists on the volume (`None`:
    /// cannot tell, e.g. a bare hive file).
    pub fn file_exists(&self, image: &str) -> Option<bool> {
        self.target.registry_file_exists(&self.install, image)
    }
}

/// How a write runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOpts {
    pub partition: Option<u32>,
    pub dry_run: bool,
    pub allow_incomplete: bool,
    /// Write even when the prediction objects.
    pub force: bool,
}

/// Edits of the hives of one target, written together or not at all when committed.
pub struct Session {
    tx: Transaction,
}

impl Session {
    /// Opens the target at `path` for an edit (for writing, with its locks, unless a dry run).
    /// A compressed hive file is refused.
    pub fn open(path: &Path, opts: WriteOpts) -> Result<Session> {
        if is_xz(path) {
            return Err(Error::Compressed {
                path: path.display().to_string(),
            });
        }
        let eo = EditOptions {
            dry_run: opts.dry_run,
            allow_incomplete: opts.allow_incomplete,
            partition: opts.partition,
            guard: if opts.force {
                Guard::Force
            } else {
                Guard::Enforce
            },
            ..Default::default()
        };
        Ok(Session {
            tx: Transaction::open(path, eo)?,
        })
    }

    /// The editor of a hive, loaded (and, for writing, locked) on first use.
    pub fn editor(&mut self, name: HiveName) -> Result<&mut Editor> {
        let path = hive_path_in(self.tx.target(), self.tx.install(), name);
        Ok(self.tx.hive(path.as_deref())?)
    }

    /// Writes every changed hive through one undo journal (nothing for a dry run), after the
    /// start prediction ([`rescue::guard`]); errors are the transaction's own.
    pub fn commit(self, what: &str) -> std::result::Result<EditOutcome, rescue::Error> {
        self.tx.commit(what)
    }
}

/// The SYSTEM hive of a target, read with its logs, and winsvc's model of it.
pub struct OfflineSystem {
    /// `None` when the hive was read some other way (an xz-compressed hive file, in memory).
    pub opened: Option<Opened>,
    pub hive: Hive<Vec<u8>>,
    pub model: SystemModel,
}

impl OfflineSystem {
    /// The model of `hive`, read from `opened` (or handed in by the caller).
    pub fn new(opened: Option<Opened>, hive: Hive<Vec<u8>>) -> Result<OfflineSystem> {
        let model = SystemModel::read(&hive, None)?;
        Ok(OfflineSystem {
            opened,
            hive,
            model,
        })
    }

    /// Whether a file named as ImagePath / ServiceDll write it exists on the volume (`None`:
    /// cannot tell, e.g. a bare hive file).
    pub fn file_exists(&self, image: &str) -> Option<bool> {
        self.opened.as_ref()?.file_exists(image)
    }

    /// winsvc's analysis of `service` in the control set Windows boots next
    /// ([`SystemModel::boot_set`]); `None` when it has no such service.
    pub fn diagnose(&self, service: &str) -> Result<Option<Diagnosis>> {
        let oracle = |p: &str| self.file_exists(p);
        let cs = self.model.boot_set()?.number;
        Ok(analyze::diagnose(&self.model, cs, service, &oracle))
    }

    /// The Service Control Manager events about `service` (oldest first) in the newest chunks
    /// of the System log ([`rescue::target::Target::read_system_log`]) and the reader's
    /// warnings, `None` when the target holds no System log.
    pub fn events(&self, service: &str) -> Result<Option<(Vec<evidence::Event>, Vec<String>)>> {
        let Some(o) = &self.opened else {
            return Ok(None);
        };
        let query = evidence::Query {
            service: Some(service.to_string()),
            event_ids: vec![7036, 7000, 7001, 7022, 7023, 7031, 7038],
            ..Default::default()
        };
        // The window diagnose reads too: both name the same newest failure.
        let Some(report) = o.target.read_system_log(&o.install, &query)? else {
            return Ok(None);
        };
        let warnings = report.warnings.iter().map(|w| w.to_string()).collect();
        let mut events = report.events;
        events.sort_by_key(|e| e.record_id);
        Ok(Some((events, warnings)))
    }
}
