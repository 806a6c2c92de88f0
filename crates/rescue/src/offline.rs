//! The offline Windows: one install of a target, with its hives read once (logs replayed), the
//! control-set model, the file-exists oracle and the System event log. Every command that
//! judges a machine starts here, so they all see the same bytes and the same control set.
//!
//! SYSTEM is read when the install is opened (every judgement needs it); SOFTWARE and the
//! System event log are read on first use, since they are large and many checks never need
//! them. SOFTWARE is not even read whole: its hive bins are loaded as the checks touch them
//! ([`regf::Paged`]; a 80 MB hive costs the few hundred KB the rules read), and when it is dirty
//! its logs are read and their pages laid over the bins as they load.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use regf::log::Replay;
use regf::{Hive, HiveSource, Paged};
use serde::Serialize;
use winsvc::{SystemModel, WindowsVersion};

use crate::error::{Error, Result};
use crate::target::{Install, PagedHive, SystemHive, Target};

/// Which hive of an install (the names `reg load` users give them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HiveId {
    System,
    Software,
    /// The boot configuration store (BCD), on the EFI system partition or the active one.
    BootStore,
}

impl HiveId {
    /// The file name next to SYSTEM in `Windows\System32\config`.
    pub fn file_name(self) -> &'static str {
        match self {
            HiveId::System => "SYSTEM",
            HiveId::Software => "SOFTWARE",
            HiveId::BootStore => "BCD",
        }
    }
}

/// Whether the hive was clean, or dirty and replayed from its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanliness {
    Clean,
    /// Dirty; its transaction logs were replayed.
    Replayed,
    /// Dirty, and its logs are missing or unusable: recent changes may be missing.
    Incomplete,
}

/// Where a hive stood when it was read.
#[derive(Debug, Clone, Serialize)]
pub struct HiveState {
    pub hive: HiveId,
    /// Its Windows path inside the install.
    pub path: String,
    pub state: Cleanliness,
    pub logs: Vec<String>,
    pub entries_applied: usize,
    pub sequence_range: Option<(u32, u32)>,
    pub warnings: Vec<String>,
}

impl HiveState {
    /// The state of a hive read with `logs` next to it, given its replay (`None`: clean, the
    /// logs were not read).
    fn of(hive: HiveId, path: String, logs: Vec<String>, replay: Option<&Replay>) -> HiveState {
        let Some(r) = replay else {
            return HiveState {
                hive,
                path,
                state: Cleanliness::Clean,
                logs,
                entries_applied: 0,
                sequence_range: None,
                warnings: Vec::new(),
            };
        };
        HiveState {
            hive,
            path,
            state: if !r.was_dirty {
                Cleanliness::Clean
            } else if r.incomplete {
                Cleanliness::Incomplete
            } else {
                Cleanliness::Replayed
            },
            logs,
            entries_applied: r.entries_applied,
            sequence_range: r.sequence_range,
            warnings: r.problems.iter().chain(&r.warnings).cloned().collect(),
        }
    }
}

/// A hive as the checks read it: Windows' view (logs replayed).
pub struct LoadedHive {
    pub state: HiveState,
    data: HiveData,
}

/// The bytes of a loaded hive.
enum HiveData {
    /// Read whole (and replayed when it was dirty).
    Whole(Vec<u8>),
    /// Clean, its bins loaded on first use.
    Paged(Paged),
}

impl LoadedHive {
    /// A hive read on demand, with its logs replayed over it when it was dirty.
    fn paged(hive: HiveId, path: String, p: PagedHive) -> LoadedHive {
        LoadedHive {
            state: HiveState::of(hive, path, p.logs, p.replay.as_ref()),
            data: HiveData::Paged(p.paged),
        }
    }

    fn new(hive: HiveId, path: String, h: SystemHive) -> LoadedHive {
        LoadedHive {
            state: HiveState::of(hive, path, h.logs, Some(&h.recovered.report)),
            data: HiveData::Whole(h.recovered.bytes),
        }
    }

    /// The hive, for reading.
    pub fn hive(&self) -> Result<Hive<HiveSource<'_>>> {
        let source = match &self.data {
            HiveData::Whole(b) => HiveSource::Bytes(b),
            HiveData::Paged(p) => HiveSource::Paged(p),
        };
        Ok(Hive::open(source)?)
    }

    /// The whole hive file (Windows' view), when it was read whole; `None` for a hive read on
    /// demand.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            HiveData::Whole(b) => Some(b),
            HiveData::Paged(_) => None,
        }
    }
}

/// Why a hive cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The target does not hold it (a bare hive file, a partial copy).
    #[error("{0}")]
    Absent(String),
    /// It is there but cannot be read.
    #[error("{0}")]
    Unreadable(String),
}

/// One Windows installation, opened for judging.
pub struct Offline {
    target: Target,
    install: Install,
    system: LoadedHive,
    model: SystemModel,
    files_checked: bool,
    pending_journal: Option<PathBuf>,
    software: OnceLock<std::result::Result<LoadedHive, Unavailable>>,
    boot_store: OnceLock<std::result::Result<LoadedHive, Unavailable>>,
    /// What checks derive from the hives and share, by key ([`Offline::memo`]).
    memo: Mutex<Vec<(String, Arc<dyn Any + Send + Sync>)>>,
}

impl Offline {
    /// Opens the target at `path` read-only and the install on `partition` (or the only one).
    pub fn open(path: &Path, partition: Option<u32>) -> Result<Offline> {
        let target = Target::open(path, false)?;
        let install = target.choose(partition)?.clone();
        Offline::new(target, install)
    }

    /// Reads the install's SYSTEM hive and builds its model.
    pub fn new(target: Target, install: Install) -> Result<Offline> {
        let system = LoadedHive::new(
            HiveId::System,
            install.system_path.clone(),
            target.system_hive(&install)?,
        );
        let not_system = |e: winsvc::Error| Error::Refused(format!("not a SYSTEM hive: {e}"));
        let mut model = SystemModel::read(&system.hive()?, None).map_err(not_system)?;
        let software = OnceLock::new();
        if model.version.build.is_none() {
            // SYSTEM alone did not give the build (the healthy configuration differs between
            // builds): SOFTWARE says it.
            let s = software.get_or_init(|| read_software(&target, &install));
            if let Some(v) = s.as_ref().ok().and_then(software_version) {
                model = SystemModel::read(&system.hive()?, Some(v)).map_err(not_system)?;
            }
        }
        let pending_journal = Some(crate::journal::pending_path(&target.anchor(&install)))
            .filter(|p| std::fs::symlink_metadata(p).is_ok());
        Ok(Offline {
            files_checked: target.has_system_files(&install),
            target,
            install,
            system,
            model,
            pending_journal,
            software,
            boot_store: OnceLock::new(),
            memo: Mutex::new(Vec::new()),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn install(&self) -> &Install {
        &self.install
    }

    /// The SYSTEM hive (logs replayed).
    pub fn system(&self) -> &LoadedHive {
        &self.system
    }

    /// The services and control sets of SYSTEM.
    pub fn model(&self) -> &SystemModel {
        &self.model
    }

    pub fn version(&self) -> &WindowsVersion {
        &self.model.version
    }

    /// Whether image and service DLL files can be checked on the disk (the target holds the
    /// Windows system files, not only hives).
    pub fn files_checked(&self) -> bool {
        self.files_checked
    }

    /// Whether a file named by a registry path (`%SystemRoot%\...`, `\SystemRoot\...`)
    /// exists: `None` when that cannot be told.
    pub fn file_exists(&self, registry_path: &str) -> Option<bool> {
        self.target
            .registry_file_exists(&self.install, registry_path)
    }

    /// The pending journal of an interrupted write, if any: what is read may be half of that
    /// write.
    pub fn pending_journal(&self) -> Option<&Path> {
        self.pending_journal.as_deref()
    }

    /// The SOFTWARE hive, read on first use, or why it cannot be.
    pub fn software(&self) -> std::result::Result<&LoadedHive, &Unavailable> {
        self.software
            .get_or_init(|| read_software(&self.target, &self.install))
            .as_ref()
    }

    /// The boot configuration store (BCD), read on first use, or why it cannot be.
    pub fn boot_store(&self) -> std::result::Result<&LoadedHive, &Unavailable> {
        self.boot_store
            .get_or_init(|| match self.target.boot_store() {
                Ok(Some(b)) => Ok(LoadedHive::new(HiveId::BootStore, b.location.path, b.hive)),
                Ok(None) => Err(Unavailable::Absent(
                    "the target holds no boot store (no EFI\\Microsoft\\Boot\\BCD on an EFI system partition, no Boot\\BCD on the active partition)".into(),
                )),
                Err(e) => Err(Unavailable::Unreadable(format!("the boot store: {e}"))),
            })
            .as_ref()
    }

    /// A hive by id.
    pub fn hive(&self, id: HiveId) -> std::result::Result<&LoadedHive, &Unavailable> {
        match id {
            HiveId::System => Ok(&self.system),
            HiveId::Software => self.software(),
            HiveId::BootStore => self.boot_store(),
        }
    }

    /// The hives read so far.
    pub fn hive_states(&self) -> Vec<&HiveState> {
        let mut v = vec![&self.system.state];
        for h in [&self.software, &self.boot_store] {
            if let Some(Ok(s)) = h.get() {
                v.push(&s.state);
            }
        }
        v
    }

    /// What `make` derives from this install, made once and shared under `key` by every check
    /// that asks (the firewall policy two rules evaluate, say). `key` must name what is made
    /// and from what: a key asked again with another type is made again and not kept.
    pub fn memo<T: Any + Send + Sync>(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let found = |memo: &[(String, Arc<dyn Any + Send + Sync>)]| {
            memo.iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| Arc::clone(v).downcast::<T>().ok())
        };
        if let Some(v) = found(&self.memo.lock().unwrap_or_else(|e| e.into_inner())) {
            return v;
        }
        // Made without the lock held: `make` may ask for another memo.
        let made = Arc::new(make());
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = found(&memo) {
            return v;
        }
        if !memo.iter().any(|(k, _)| k == key) {
            memo.push((key.to_string(), made.clone()));
        }
        made
    }

    /// The System event log read with `query` ([`Target::read_system_log`]: its newest chunks);
    /// `Ok(None)` when the target has none.
    pub fn read_system_log(&self, query: &evidence::Query) -> Result<Option<evidence::Report>> {
        self.target.read_system_log(&self.install, query)
    }
}

fn read_software(
    target: &Target,
    install: &Install,
) -> std::result::Result<LoadedHive, Unavailable> {
    let path = target.sibling_hive_path(install, HiveId::Software.file_name());
    if target.kind() == crate::target::TargetKind::HiveFile
        || target.file_exists(install, &path) == Some(false)
    {
        return Err(Unavailable::Absent(format!("the target holds no {path}")));
    }
    if let Ok(Some(p)) = target.paged_hive(install, &path) {
        return Ok(LoadedHive::paged(HiveId::Software, path, p));
    }
    match target.hive(install, &path) {
        Ok(h) => Ok(LoadedHive::new(HiveId::Software, path, h)),
        Err(e) => Err(Unavailable::Unreadable(format!("{path}: {e}"))),
    }
}

/// The exact Windows version SOFTWARE names, if it does.
fn software_version(software: &LoadedHive) -> Option<WindowsVersion> {
    WindowsVersion::from_software_hive(&software.hive().ok()?)
        .ok()
        .flatten()
}

/// The exact Windows version the SOFTWARE hive next to SYSTEM names, if the target has one.
pub(crate) fn software_version_of(target: &Target, install: &Install) -> Option<WindowsVersion> {
    software_version(&read_software(target, install).ok()?)
}
