//! Targets: what the user points winrescue at, and the Windows installations inside.
//!
//! A target is a disk image or block device (raw, VHD, VHDX; any partition table), a folder
//! holding a Windows tree (a mounted volume, `Windows/System32/config` inside), or a bare SYSTEM
//! hive file. Each Windows installation found is an [`Install`]; the SYSTEM hive and its logs are
//! read through it, and a changed hive is written back through it (in place, page by page,
//! through the undo journal of [`crate::journal`]).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use regf::log::{replay, LogInput, Recovered};
use serde::Serialize;
use vdisk::{Disk, Partition, Slice};
use volume::{FileEntry, Volume};

use crate::error::{io, Error, GrowthBlocked, Result};
use crate::journal::{HiveRef, Piece};

/// Where the SYSTEM hive lives inside a Windows volume.
pub const SYSTEM_HIVE: &str = r"Windows\System32\config\SYSTEM";
/// Where the System event log lives.
pub const SYSTEM_EVTX: &str = r"Windows\System32\winevt\Logs\System.evtx";
/// The chunks of the System log a judgement reads, the newest (64 KiB each: 4 MiB): the last
/// boots, whatever the size the log file was given (up to 20 MB by default, and a long-running
/// server's is full). `winrescue events` reads it all.
pub const SYSTEM_LOG_CHUNKS: u64 = 64;

/// The name of the boot configuration store (BCD) in reports and journals: a hive of the disk,
/// not of the Windows installation (see [`Target::boot_store`]).
pub const BOOT_STORE: &str = "BCD";
/// The boot store of a UEFI (Gen2, GPT) disk, on the EFI system partition.
pub const BOOT_STORE_EFI: &str = r"EFI\Microsoft\Boot\BCD";
/// The boot store of a BIOS (Gen1, MBR) disk, on the active partition ("System Reserved", or
/// the Windows partition itself when there is no separate one).
pub const BOOT_STORE_BIOS: &str = r"Boot\BCD";

/// The file system holding a boot store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootFs {
    /// FAT12/16/32 (an EFI system partition, or a FAT active partition).
    Fat,
    /// NTFS (a "System Reserved" or Windows partition).
    Ntfs,
}

/// Where a target's boot store (BCD) is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootStore {
    /// Partition number (disk targets).
    pub partition: Option<u32>,
    /// Byte offset of that partition on the disk (disk targets).
    pub partition_start: Option<u64>,
    /// Its file system (disk targets; `None` for a folder).
    pub filesystem: Option<BootFs>,
    /// The file's path on the partition or in the folder, with the on-disk case
    /// (`EFI\Microsoft\Boot\BCD`).
    pub path: String,
}

/// A boot store and its hive, read with its logs replayed.
pub struct BootStoreHive {
    pub location: BootStore,
    pub hive: SystemHive,
}

/// A boot store found: where it is, its partition and (disk targets) its opened files.
struct FoundBootStore {
    location: BootStore,
    partition: Option<Partition>,
    files: Option<BootFiles>,
}

/// The boot store file found on a partition: the opened file system and its entries.
enum BootFiles {
    Fat {
        vol: fat::Volume,
        hive: fat::FileEntry,
        logs: Vec<fat::FileEntry>,
    },
    Ntfs {
        vol: Box<Volume>,
        files: Box<volume::HiveFiles>,
    },
}

/// What kind of target was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A disk image or block device.
    Disk,
    /// A folder holding a Windows tree.
    Folder,
    /// A bare hive file (its logs are looked for next to it).
    HiveFile,
}

/// One Windows installation in a target.
#[derive(Debug, Clone, Serialize)]
pub struct Install {
    /// Partition number (disk targets), as `lsblk` / Windows' disk management count.
    pub partition: Option<u32>,
    /// Byte offset and length of the partition on the disk.
    pub partition_start: Option<u64>,
    pub partition_len: Option<u64>,
    /// Volume label (NTFS), if any.
    pub label: Option<String>,
    /// Path of the SYSTEM hive, as found (on-disk case), relative to the volume or folder.
    pub system_path: String,
    /// Facts that block writes on this volume (dirty NTFS, hibernation), empty if none.
    pub write_blockers: Vec<String>,
}

/// The SYSTEM hive of an install as winrescue reads it.
pub struct SystemHive {
    /// The file as it is on the disk.
    pub on_disk: Vec<u8>,
    /// After replaying its transaction logs (Windows' view).
    pub recovered: Recovered,
    /// Names of the logs found next to it.
    pub logs: Vec<String>,
}

/// The smallest disk a target can be: one sector.
const SECTOR: usize = 512;

/// An opened target.
pub struct Target {
    path: PathBuf,
    kind: TargetKind,
    /// Shared with the readers of hives read on demand ([`Target::paged_hive`]).
    disk: Option<Arc<Disk>>,
    installs: Vec<Install>,
    /// The opened NTFS volume and partition of each install (disk targets), in `installs` order:
    /// opened once, since opening reads the upcase table and the MFT's first records.
    volumes: Vec<(Volume, Partition)>,
    /// The pieces already planned on the disk in the transaction being planned (disk
    /// offsets): a hive whose file grows after another is planned from the volume as those
    /// leave it (see [`Overlay`]), so that it takes other free clusters and rewrites the
    /// directory entries and bitmap bytes as the first growth left them.
    planned: std::cell::RefCell<Vec<Piece>>,
}

impl Target {
    /// Opens a target for reading, or for reading and writing (an exclusive lock on images).
    /// `path` may be an `http://` or `https://` URL of a disk image; for writing, an Azure
    /// page blob with a SAS that allows writing (see [`vdisk::remote`]).
    pub fn open(path: impl AsRef<Path>, write: bool) -> Result<Target> {
        let path = path.as_ref().to_path_buf();
        // A URL is a disk image read over HTTP; it is never looked up on the file system, and
        // only its redacted form is kept (see `vdisk::remote::redact_url`).
        if let Some(url) = path.to_str().filter(|p| vdisk::remote::is_url(p)) {
            let shown = PathBuf::from(vdisk::remote::redact_url(url));
            let disk = if write {
                Disk::open_rw(url)?
            } else {
                Disk::open(url)?
            };
            return Target::on_disk(shown, disk);
        }
        if is_xz(&path) {
            return open_xz(path, write);
        }
        let meta = fs::metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            let system = find_ci(&path, SYSTEM_HIVE).ok_or_else(|| Error::NoWindows {
                path: path.clone(),
                why: format!("the folder has no {}", SYSTEM_HIVE.replace('\\', "/")),
            })?;
            let rel = system
                .strip_prefix(&path)
                .unwrap_or(&system)
                .to_string_lossy()
                .replace('/', "\\");
            let install = Install {
                partition: None,
                partition_start: None,
                partition_len: None,
                label: None,
                system_path: rel,
                write_blockers: Vec::new(),
            };
            return Ok(Target {
                path,
                kind: TargetKind::Folder,
                disk: None,
                installs: vec![install],
                volumes: Vec::new(),
                planned: Default::default(),
            });
        }
        // One sector is the least a disk image holds (its MBR, or a VHD's footer copy); the
        // head also tells a text file from an image before a partition search says only that
        // no Windows was found.
        let mut head = [0u8; SECTOR];
        let got = {
            use std::io::Read;
            let mut f = fs::File::open(&path).map_err(io(&path))?;
            let mut got = 0;
            while got < head.len() {
                match f.read(&mut head[got..]).map_err(io(&path))? {
                    0 => break,
                    n => got += n,
                }
            }
            got
        };
        if head.starts_with(b"regf") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let install = Install {
                partition: None,
                partition_start: None,
                partition_len: None,
                label: None,
                system_path: name,
                write_blockers: Vec::new(),
            };
            return Ok(Target {
                path,
                kind: TargetKind::HiveFile,
                disk: None,
                installs: vec![install],
                volumes: Vec::new(),
                planned: Default::default(),
            });
        }
        let text = got > 0
            && head[..got]
                .iter()
                .all(|&b| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e | 0x80..=0xff));
        if got < SECTOR || text {
            let len = match fs::metadata(&path) {
                Ok(m) if m.is_file() => m.len(),
                _ => got as u64,
            };
            return Err(Error::NotATarget { path, len, text });
        }
        let disk = if write {
            Disk::open_rw(&path)?
        } else {
            Disk::open(&path)?
        };
        Target::on_disk(path, disk)
    }

    /// The target over an opened disk: its Windows installations.
    fn on_disk(path: PathBuf, disk: Disk) -> Result<Target> {
        let (installs, volumes): (Vec<Install>, Vec<(Volume, Partition)>) =
            find_installs(&disk)?.into_iter().unzip();
        if installs.is_empty() {
            return Err(Error::NoWindows {
                path,
                why: format!("no NTFS partition holds {SYSTEM_HIVE}"),
            });
        }
        Ok(Target {
            path,
            kind: TargetKind::Disk,
            disk: Some(Arc::new(disk)),
            installs,
            volumes,
            planned: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    pub fn installs(&self) -> &[Install] {
        &self.installs
    }

    /// Requests and bytes transferred so far, for a disk behind a URL.
    pub fn transfer_stats(&self) -> Option<vdisk::remote::TransferStats> {
        self.disk.as_deref().and_then(Disk::transfer_stats)
    }

    /// The container's identity (disk targets).
    pub fn disk_identity(&self) -> Option<vdisk::Identity> {
        self.disk.as_deref().map(Disk::identity)
    }

    /// The container kind's name ("VHD (fixed)", ...), or "folder" / "hive file".
    pub fn describe(&self) -> String {
        match (&self.disk, self.kind) {
            (Some(d), _) => format!("{} disk image, {} bytes", d.kind().name(), d.size()),
            (None, TargetKind::Folder) => "folder".into(),
            _ => "hive file".into(),
        }
    }

    /// Chooses the install: the only one, or the one on `partition`.
    pub fn choose(&self, partition: Option<u32>) -> Result<&Install> {
        let list = || {
            self.installs
                .iter()
                .map(|i| format!("partition {}", i.partition.unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match partition {
            Some(n) => self
                .installs
                .iter()
                .find(|i| i.partition == Some(n))
                .ok_or_else(|| Error::NoSuchInstall {
                    path: self.path.clone(),
                    index: n,
                    list: list(),
                }),
            None if self.installs.len() == 1 => Ok(&self.installs[0]),
            None => Err(Error::SeveralWindows {
                path: self.path.clone(),
                count: self.installs.len(),
                list: list(),
            }),
        }
    }

    fn partition_of(&self, install: &Install) -> Option<Partition> {
        self.installs
            .iter()
            .position(|i| i.partition == install.partition)
            .and_then(|n| self.volumes.get(n))
            .map(|(_, p)| p.clone())
    }

    /// Runs `f` with the NTFS volume of `install` and a reader over its partition.
    fn with_volume<R>(
        &self,
        install: &Install,
        f: impl FnOnce(&Volume, &mut Slice<&Disk>) -> Result<R>,
    ) -> Result<R> {
        let disk = self.disk.as_deref().expect("disk targets only");
        let n = self
            .installs
            .iter()
            .position(|i| i.partition == install.partition);
        let (vol, p) = n
            .and_then(|n| self.volumes.get(n))
            .ok_or_else(|| Error::NoWindows {
                path: self.path.clone(),
                why: "no such install".into(),
            })?;
        let mut slice = Slice::partition(disk, p)?;
        f(vol, &mut slice)
    }

    /// For a disk behind a URL: fetches the data runs of `files` (of `install`'s volume) into
    /// the disk's cache with several requests at once, before they are read run by run.
    fn prefetch(&self, install: &Install, files: &[&FileEntry]) -> Result<()> {
        let Some(disk) = self.disk.as_ref().filter(|d| d.address().is_some()) else {
            return Ok(());
        };
        let start = install.partition_start.unwrap_or(0);
        let ranges: Vec<(u64, u64)> = files
            .iter()
            .flat_map(|f| disk_ranges(f, start, &[(0, f.size())]))
            .collect();
        Ok(disk.prefetch(&ranges)?)
    }

    /// Reads a file of the install by its Windows path (e.g. `Windows\System32\winevt\Logs\System.evtx`).
    /// `None` if it does not exist.
    pub fn read_file(&self, install: &Install, path: &str) -> Result<Option<Vec<u8>>> {
        match self.kind {
            TargetKind::Disk => self.with_volume(install, |vol, s| match vol.lookup(s, path)? {
                Some(e) if !e.is_directory() => {
                    self.prefetch(install, &[&e])?;
                    Ok(Some(vol.read_file(s, &e)?))
                }
                _ => Ok(None),
            }),
            TargetKind::Folder => match find_ci(&self.path, path) {
                Some(p) if p.is_file() => Ok(Some(fs::read(&p).map_err(io(&p))?)),
                _ => Ok(None),
            },
            TargetKind::HiveFile => Ok(None),
        }
    }

    /// The System event log of the install read with `query`, over its newest
    /// [`SYSTEM_LOG_CHUNKS`] chunks (every judgement reads the same window, whatever the
    /// command: see [`evidence::Query::newest_chunks`]); `Ok(None)` when the install has no
    /// System log. Only the chunks read are fetched from a disk behind a URL.
    pub fn read_system_log(
        &self,
        install: &Install,
        query: &evidence::Query,
    ) -> Result<Option<evidence::Report>> {
        let query = evidence::Query {
            newest_chunks: Some(SYSTEM_LOG_CHUNKS),
            ..query.clone()
        };
        let report = match self.kind {
            TargetKind::Disk => self.with_volume(install, |vol, s| {
                let Some(e) = vol.lookup(s, SYSTEM_EVTX)?.filter(|e| !e.is_directory()) else {
                    return Ok(None);
                };
                // Behind a URL, the chunks the reader is about to read are fetched together.
                let disk = self.disk.as_deref().filter(|d| d.address().is_some());
                let start = install.partition_start.unwrap_or(0);
                let mut prefetch = |ranges: &[(u64, u64)]| {
                    if let Some(d) = disk {
                        // A failure shows again, with its cause, in the read that follows.
                        let _ = d.prefetch(&disk_ranges(&e, start, ranges));
                    }
                };
                let reader = e.reader(s)?;
                Ok(Some(evidence::read_log_prefetching(
                    reader,
                    &query,
                    &mut prefetch,
                )))
            })?,
            TargetKind::Folder => match find_ci(&self.path, SYSTEM_EVTX) {
                Some(p) if p.is_file() => Some(evidence::read_log(
                    fs::File::open(&p).map_err(io(&p))?,
                    &query,
                )),
                _ => None,
            },
            TargetKind::HiveFile => None,
        };
        report.transpose().map_err(|error| Error::EventLog {
            path: SYSTEM_EVTX.to_string(),
            error,
        })
    }

    /// The NTFS security descriptor (self-relative bytes) of a file of the install, by its
    /// Windows path: `Ok(None)` when the file does not exist or the target is not an NTFS disk
    /// (a folder's or a hive file's permissions are not Windows').
    pub fn file_security(&self, install: &Install, path: &str) -> Result<Option<Vec<u8>>> {
        match self.kind {
            TargetKind::Disk => self.with_volume(install, |vol, s| match vol.lookup(s, path)? {
                Some(e) if !e.is_directory() => Ok(Some(vol.security(s, &e)?.descriptor)),
                _ => Ok(None),
            }),
            TargetKind::Folder | TargetKind::HiveFile => Ok(None),
        }
    }

    /// Whether a file exists in the install (`None`: cannot tell, for a bare hive file).
    pub fn file_exists(&self, install: &Install, path: &str) -> Option<bool> {
        match self.kind {
            TargetKind::Disk => self
                .with_volume(install, |vol, s| {
                    Ok(vol.lookup(s, path)?.is_some_and(|e| !e.is_directory()))
                })
                .ok(),
            TargetKind::Folder => Some(find_ci(&self.path, path).is_some_and(|p| p.is_file())),
            TargetKind::HiveFile => None,
        }
    }

    /// Whether the volume holds the Windows system files at all (`Windows\System32\svchost.exe`).
    /// On a partial copy (a hive and a log put on a volume, a folder holding only
    /// `System32\config`) every image would look missing, so file checks are meaningless there.
    pub fn has_system_files(&self, install: &Install) -> bool {
        self.file_exists(install, r"Windows\System32\svchost.exe") == Some(true)
    }

    /// Whether a file named the way the registry names it (`%SystemRoot%\...`,
    /// `\SystemRoot\...`, `C:\...`: an ImagePath or ServiceDll) exists. `None` when that cannot
    /// be told: a bare hive, or a volume without the Windows system files.
    pub fn registry_file_exists(&self, install: &Install, registry_path: &str) -> Option<bool> {
        if !self.has_system_files(install) {
            return None;
        }
        self.file_exists(install, &volume_path(registry_path))
    }

    /// Reads the SYSTEM hive of `install` with its logs and replays them.
    pub fn system_hive(&self, install: &Install) -> Result<SystemHive> {
        self.hive(install, &install.system_path.clone())
    }

    /// The Windows path of another hive of the install, e.g. `SOFTWARE` ->
    /// `Windows\System32\config\SOFTWARE` (next to SYSTEM).
    pub fn sibling_hive_path(&self, install: &Install, name: &str) -> String {
        match install.system_path.rfind('\\') {
            Some(i) => format!("{}\\{name}", &install.system_path[..i]),
            None => name.to_string(),
        }
    }

    /// Reads the hive at `hive_path` (a Windows path inside the install; for a hive-file target,
    /// its file name) with its logs, and replays them.
    pub fn hive(&self, install: &Install, hive_path: &str) -> Result<SystemHive> {
        let (on_disk, logs): (Vec<u8>, Vec<(String, Vec<u8>)>) = match self.kind {
            TargetKind::Disk => self.with_volume(install, |vol, s| {
                let files = vol.hive_files(s, hive_path)?;
                let logs = [&files.log1, &files.log2, &files.log];
                let mut all = vec![&files.hive];
                all.extend(logs.into_iter().flatten());
                self.prefetch(install, &all)?;
                let hive = vol.read_file(s, &files.hive)?;
                let mut logs = Vec::new();
                for e in [&files.log1, &files.log2, &files.log].into_iter().flatten() {
                    logs.push((e.path().to_string(), vol.read_file(s, e)?));
                }
                Ok((hive, logs))
            })?,
            TargetKind::Folder | TargetKind::HiveFile => {
                read_hive_file(&self.hive_file_path(install, hive_path)?)?
            }
        };
        replayed(on_disk, logs)
    }

    /// The hive at `hive_path` (as [`Target::hive`]), read on demand: only the hive bins a
    /// reader touches are loaded ([`regf::Paged`]); when it is dirty its logs are read and
    /// replayed over it ([`regf::Paged::open_replayed`]). With the names of the logs next to it
    /// and, for a dirty hive, the replay's report. `Ok(None)` when it must be read whole with
    /// [`Target::hive`]: its base block is not valid, its size is not plausible, a log cannot
    /// be read, or the target is a bare hive file; that read then says what is wrong.
    pub fn paged_hive(&self, install: &Install, hive_path: &str) -> Result<Option<PagedHive>> {
        let (source, len, logs): (Box<dyn regf::paged::ReadAt>, u64, Vec<LogFile>) = match self.kind
        {
            TargetKind::Disk => {
                let Some(files) = self.with_volume(install, |vol, s| {
                    let files = vol.hive_files(s, hive_path)?;
                    // The size comes from the MFT record: read whole, the claim is refused
                    // with its numbers.
                    Ok((files.hive.size() <= vol.facts().size).then_some(files))
                })?
                else {
                    return Ok(None);
                };
                let disk = self.disk.clone().expect("disk targets have a disk");
                let p = self.partition_of(install).ok_or_else(|| Error::NoWindows {
                    path: self.path.clone(),
                    why: "no such install".into(),
                })?;
                let logs = [&files.log1, &files.log2, &files.log]
                    .into_iter()
                    .flatten()
                    .map(|e| LogFile::Volume(e.clone()))
                    .collect();
                let len = files.hive.size();
                let source = VolumeFile {
                    slice: Mutex::new(Slice::partition(disk, &p)?),
                    file: files.hive,
                };
                (Box::new(source), len, logs)
            }
            TargetKind::Folder => {
                let path = self.hive_file_path(install, hive_path)?;
                let file = fs::File::open(&path).map_err(io(&path))?;
                let len = file.metadata().map_err(io(&path))?.len();
                let dir = path.parent().unwrap_or(Path::new("."));
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let siblings: Vec<String> = fs::read_dir(dir)
                    .map(|rd| {
                        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                let logs = regf::log::log_names(&name, siblings.iter().map(String::as_str))
                    .into_iter()
                    .map(|l| LogFile::Host(dir.join(l)))
                    .collect();
                (Box::new(file), len, logs)
            }
            TargetKind::HiveFile => return Ok(None),
        };
        let names = logs.iter().map(LogFile::name).collect();
        let read_logs = || -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
            let volume: Vec<&FileEntry> = logs
                .iter()
                .filter_map(|l| match l {
                    LogFile::Volume(e) => Some(e),
                    LogFile::Host(_) => None,
                })
                .collect();
            if !volume.is_empty() {
                self.prefetch(install, &volume).map_err(|e| e.to_string())?;
            }
            logs.iter()
                .map(|l| {
                    let data = match l {
                        LogFile::Volume(e) => self
                            .with_volume(install, |vol, s| Ok(vol.read_file(s, e)?))
                            .map_err(|e| e.to_string())?,
                        LogFile::Host(p) => {
                            fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?
                        }
                    };
                    Ok((l.name(), data))
                })
                .collect()
        };
        Ok(regf::Paged::open_replayed(source, len, read_logs)
            .ok()
            .map(|(paged, replay)| PagedHive {
                paged,
                logs: names,
                replay,
            }))
    }

    /// The hive file's path for folder and hive-file targets.
    pub fn hive_file_path(&self, install: &Install, hive_path: &str) -> Result<PathBuf> {
        match self.kind {
            TargetKind::Folder => find_ci(&self.path, hive_path)
                .filter(|p| p.is_file())
                .ok_or_else(|| Error::NoWindows {
                    path: self.path.clone(),
                    why: format!("no file {hive_path}"),
                }),
            _ if hive_path.eq_ignore_ascii_case(&install.system_path) => Ok(self.path.clone()),
            _ => Err(Error::Refused(format!(
                "{} is a single hive file: {hive_path} is not in it",
                self.path.display()
            ))),
        }
    }

    /// Where writing `new` over the hive `hive_path` of `install` (whose current content is
    /// `old`) must put bytes: (device offset, bytes there now, new bytes), one piece per changed
    /// 4 KiB page (split further where a page spans two data runs, or the old end of a file
    /// that grows), the base block last. The device is the disk for disk targets and the hive
    /// file otherwise.
    ///
    /// A hive file may grow: the pieces past its old end have no `before` bytes, and the
    /// caller extends the file to `new.len()` under the journal. Inside a disk image a hive
    /// that needs more than the bytes its file has and has valid grows its NTFS file
    /// ([`volume::Volume::plan_grow`]; the pieces then include the volume bitmap and the MFT
    /// record, ordered as `grow_pieces` says); what that plan refuses is refused with
    /// [`Error::HiveFileFull`]. Also refused: a shorter hive, a dirty or hibernated NTFS volume,
    /// a compressed, encrypted, sparse or resident hive.
    pub fn plan_hive_write(
        &self,
        install: &Install,
        hive_path: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<Vec<Piece>> {
        if new.len() < old.len() {
            return Err(Error::Refused(format!(
                "the new hive is {} bytes, the file on disk {} bytes: winrescue never shortens a hive file",
                new.len(),
                old.len()
            )));
        }
        // The base block goes last: a crash part way must not leave a base block that says
        // "clean, newest" over data pages not yet written.
        let mut pages = regf::edit::changed_pages(old, new);
        pages.sort_by_key(|&p| (p == 0, p));
        let piece = |device_offset: u64, from: usize, len: usize| Piece {
            offset: device_offset,
            before: old[from..from + len].to_vec(),
            after: new[from..from + len].to_vec(),
        };
        match self.kind {
            TargetKind::Disk => {
                let p = self
                    .partition_of(install)
                    .ok_or_else(|| Error::Refused("partition vanished".into()))?;
                let hive: FileEntry = self.with_volume(install, |vol, s| {
                    vol.check_writable()?;
                    Ok(vol.hive_files(s, hive_path)?.hive)
                })?;
                if hive.size() != old.len() as u64 {
                    return Err(Error::Refused(
                        "the hive changed on the disk since it was read".into(),
                    ));
                }
                // Bytes past the valid data length read as zeros: writing there means moving it
                // (NTFS metadata), as growing the file does.
                let available = hive
                    .data()
                    .map_or(0, |d| d.valid_size.min(d.size))
                    .min(old.len() as u64);
                let bins_end = regf::BaseBlock::parse(new)
                    .map(|b| regf::BASE_BLOCK_SIZE as u64 + u64::from(b.hive_bins_size))?;
                if bins_end > available || new.len() > old.len() {
                    let needed = if bins_end > available {
                        bins_end
                    } else {
                        new.len() as u64
                    };
                    let full = |why| Error::HiveFileFull {
                        hive: hive_path.to_string(),
                        needed,
                        available,
                        why,
                    };
                    let planned = self.planned.borrow().clone();
                    let grown = self.with_volume(install, |vol, s| {
                        let mut o = Overlay {
                            inner: s,
                            start: p.start,
                            pieces: &planned,
                        };
                        match vol.plan_grow(&mut o, &hive, (new.len() as u64).max(needed)) {
                            Ok(plan) => grow_pieces(&mut o, p.start, &plan, &pages, old, new),
                            Err(volume::Error::CannotGrow { why, .. }) => {
                                Err(full(GrowthBlocked::Ntfs(why)))
                            }
                            Err(e) => Err(e.into()),
                        }
                    })?;
                    self.planned.borrow_mut().extend(grown.iter().cloned());
                    return Ok(grown);
                }
                let mut pieces = Vec::new();
                for page in pages {
                    let len = (regf::edit::PAGE as u64).min(old.len() as u64 - page);
                    for ext in hive.plan_write(page, len)? {
                        pieces.push(piece(
                            p.start + ext.partition_offset,
                            ext.file_offset as usize,
                            ext.len as usize,
                        ));
                    }
                }
                Ok(pieces)
            }
            TargetKind::Folder | TargetKind::HiveFile => Ok(file_pieces(&pages, old, new)),
        }
    }

    /// Finds the target's boot store, without reading it: on a GPT disk the EFI system
    /// partition (by its type GUID) holding `EFI\Microsoft\Boot\BCD`; on an MBR disk the
    /// active partition (FAT or NTFS) holding `Boot\BCD`; in a folder `Boot\BCD` or
    /// `EFI\Microsoft\Boot\BCD`. `None` when there is none (a hive file target, a disk
    /// without such a partition or file). A damaged file system on that partition is an error.
    pub fn find_boot_store(&self) -> Result<Option<BootStore>> {
        Ok(self.boot_files()?.map(|f| f.location))
    }

    /// Reads the target's boot store (BCD) with its logs (`BCD.LOG1`, `BCD.LOG2`, `BCD.LOG`)
    /// replayed, as the other hives are. `None` when the target has none.
    pub fn boot_store(&self) -> Result<Option<BootStoreHive>> {
        let Some(FoundBootStore {
            location,
            partition: part,
            files,
        }) = self.boot_files()?
        else {
            return Ok(None);
        };
        let (on_disk, logs) = match (files, part) {
            (None, _) => {
                let file = find_ci(&self.path, &location.path)
                    .filter(|p| p.is_file())
                    .ok_or_else(|| Error::Refused(format!("{} vanished", location.path)))?;
                read_hive_file(&file)?
            }
            (Some(files), Some(p)) => {
                let disk = self.disk.as_deref().expect("disk targets only");
                let mut s = Slice::partition(disk, &p)?;
                match files {
                    BootFiles::Fat { vol, hive, logs } => {
                        let bytes = vol.read_file(&mut s, &hive)?;
                        let mut l = Vec::new();
                        for e in &logs {
                            l.push((e.path().to_string(), vol.read_file(&mut s, e)?));
                        }
                        (bytes, l)
                    }
                    BootFiles::Ntfs { vol, files } => {
                        let bytes = vol.read_file(&mut s, &files.hive)?;
                        let mut l = Vec::new();
                        for e in [&files.log1, &files.log2, &files.log].into_iter().flatten() {
                            l.push((e.path().to_string(), vol.read_file(&mut s, e)?));
                        }
                        (bytes, l)
                    }
                }
            }
            (Some(_), None) => return Ok(None),
        };
        Ok(Some(BootStoreHive {
            location,
            hive: replayed(on_disk, logs)?,
        }))
    }

    /// The boot store's location, its partition, and (disk targets) its opened files.
    fn boot_files(&self) -> Result<Option<FoundBootStore>> {
        match self.kind {
            TargetKind::HiveFile => Ok(None),
            TargetKind::Folder => {
                for p in [BOOT_STORE_BIOS, BOOT_STORE_EFI] {
                    if let Some(f) = find_ci(&self.path, p).filter(|f| f.is_file()) {
                        let rel = f
                            .strip_prefix(&self.path)
                            .unwrap_or(&f)
                            .to_string_lossy()
                            .replace('/', "\\");
                        let loc = BootStore {
                            partition: None,
                            partition_start: None,
                            filesystem: None,
                            path: rel,
                        };
                        return Ok(Some(FoundBootStore {
                            location: loc,
                            partition: None,
                            files: None,
                        }));
                    }
                }
                Ok(None)
            }
            TargetKind::Disk => {
                let disk = self.disk.as_deref().expect("disk targets have a disk");
                let table = vdisk::read_partitions(disk)?;
                let candidates = table.partitions.iter().filter_map(|p| {
                    let path = match (table.kind, &p.kind) {
                        (vdisk::TableKind::Gpt, vdisk::PartitionType::Gpt(g))
                            if g.to_string() == vdisk::GPT_EFI_SYSTEM =>
                        {
                            BOOT_STORE_EFI
                        }
                        (vdisk::TableKind::Mbr, _) if p.bootable => BOOT_STORE_BIOS,
                        (vdisk::TableKind::BareVolume, _) => BOOT_STORE_BIOS,
                        _ => return None,
                    };
                    Some((p, path))
                });
                for (p, path) in candidates {
                    let mut s = Slice::partition(disk, p)?;
                    let found = match p.filesystem {
                        Some(vdisk::FileSystem::Fat) => {
                            let vol = fat::Volume::open(&mut s)?;
                            match vol.lookup(&mut s, path)? {
                                Some(hive) if !hive.is_directory() => {
                                    let mut logs = Vec::new();
                                    for ext in ["LOG1", "LOG2", "LOG"] {
                                        let name = format!("{path}.{ext}");
                                        if let Some(e) = vol.lookup(&mut s, &name)? {
                                            logs.push(e);
                                        }
                                    }
                                    Some((BootFs::Fat, BootFiles::Fat { vol, hive, logs }))
                                }
                                _ => None,
                            }
                        }
                        Some(vdisk::FileSystem::Ntfs) => {
                            let vol = Volume::open(&mut s)?;
                            match vol.lookup(&mut s, path)? {
                                Some(e) if !e.is_directory() => {
                                    let files = vol.hive_files(&mut s, path)?;
                                    Some((
                                        BootFs::Ntfs,
                                        BootFiles::Ntfs {
                                            vol: Box::new(vol),
                                            files: Box::new(files),
                                        },
                                    ))
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    if let Some((fs_kind, files)) = found {
                        // The NTFS layer starts paths at the root (`\Boot\BCD`): stored
                        // relative to the partition, as the FAT layer gives them.
                        let on_disk = match &files {
                            BootFiles::Fat { hive, .. } => hive.path(),
                            BootFiles::Ntfs { files, .. } => files.hive.path(),
                        }
                        .trim_start_matches('\\')
                        .to_string();
                        let loc = BootStore {
                            partition: Some(p.index),
                            partition_start: Some(p.start),
                            filesystem: Some(fs_kind),
                            path: on_disk,
                        };
                        return Ok(Some(FoundBootStore {
                            location: loc,
                            partition: Some(p.clone()),
                            files: Some(files),
                        }));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The boot store found again, which must be the one at `loc` (same partition and path).
    fn same_boot_store(&self, loc: &BootStore) -> Result<FoundBootStore> {
        match self.boot_files()? {
            Some(found)
                if found.location.partition_start == loc.partition_start
                    && found.location.path.eq_ignore_ascii_case(&loc.path) =>
            {
                Ok(found)
            }
            _ => Err(Error::Refused(format!(
                "the boot store {} is no longer where it was read{}",
                loc.path,
                loc.partition_start
                    .map(|s| format!(" (partition at byte {s})"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// The partition ranges (partition offset, length) of the boot store file's own clusters,
    /// mapped for the file range `0 .. len`, and its size; refuses a volume that may not be
    /// written (dirty FAT, dirty or hibernated NTFS) when `writing`.
    fn boot_store_ranges(
        files: &BootFiles,
        file_offset: u64,
        len: u64,
        writing: bool,
    ) -> Result<Vec<(u64, u64, u64)>> {
        match files {
            BootFiles::Fat { vol, hive, .. } => {
                if writing && vol.is_dirty() {
                    return Err(Error::Refused(
                        "the FAT volume holding the boot store is marked dirty (not unmounted cleanly): let Windows or fsck.vfat check it first".into(),
                    ));
                }
                Ok(hive
                    .plan_write(file_offset, len)?
                    .into_iter()
                    .map(|w| (w.partition_offset, w.file_offset, w.len))
                    .collect())
            }
            BootFiles::Ntfs { vol, files } => {
                if writing {
                    vol.check_writable()?;
                }
                Ok(files
                    .hive
                    .plan_write(file_offset, len)?
                    .into_iter()
                    .map(|w| (w.partition_offset, w.file_offset, w.len))
                    .collect())
            }
        }
    }

    /// Where writing `new` over the boot store at `loc` (whose content is `old`) must put
    /// bytes, as [`Target::plan_hive_write`] does for the hives of an install: one piece per
    /// changed 4 KiB page, the base block last, each inside the clusters the file already
    /// owns. On a disk the file never changes size (its FAT or NTFS metadata is not written):
    /// an edit that needs more than the file has is refused with [`Error::HiveFileFull`]. In a
    /// folder the file may grow, under the journal.
    pub fn plan_boot_store_write(
        &self,
        loc: &BootStore,
        old: &[u8],
        new: &[u8],
    ) -> Result<Vec<Piece>> {
        if new.len() < old.len() {
            return Err(Error::Refused(format!(
                "the new boot store is {} bytes, the file {} bytes: winrescue never shortens a hive file",
                new.len(),
                old.len()
            )));
        }
        let mut pages = regf::edit::changed_pages(old, new);
        pages.sort_by_key(|&p| (p == 0, p));
        let found = self.same_boot_store(loc)?;
        let (Some(part), Some(files)) = (found.partition, found.files) else {
            return Ok(file_pieces(&pages, old, new));
        };
        let size = match &files {
            BootFiles::Fat { hive, .. } => hive.size(),
            BootFiles::Ntfs { files, .. } => files.hive.size(),
        };
        if size != old.len() as u64 {
            return Err(Error::Refused(
                "the boot store changed on the disk since it was read".into(),
            ));
        }
        // NTFS: bytes past the valid data length read as zeros and cannot be written in place.
        let available = match &files {
            BootFiles::Fat { .. } => size,
            BootFiles::Ntfs { files, .. } => files
                .hive
                .data()
                .map_or(0, |d| d.valid_size.min(d.size))
                .min(size),
        };
        let bins_end = regf::BaseBlock::parse(new)
            .map(|b| regf::BASE_BLOCK_SIZE as u64 + u64::from(b.hive_bins_size))?;
        if bins_end > available || new.len() > old.len() {
            return Err(Error::HiveFileFull {
                hive: loc.path.clone(),
                needed: bins_end.max(new.len() as u64),
                available,
                why: match files {
                    BootFiles::Fat { .. } => GrowthBlocked::Fat,
                    BootFiles::Ntfs { .. } => GrowthBlocked::BootStore,
                },
            });
        }
        let mut pieces = Vec::new();
        for page in pages {
            let len = (regf::edit::PAGE as u64).min(old.len() as u64 - page);
            for (part_off, file_off, n) in Self::boot_store_ranges(&files, page, len, true)? {
                let (from, n) = (file_off as usize, n as usize);
                pieces.push(Piece {
                    offset: part.start + part_off,
                    before: old[from..from + n].to_vec(),
                    after: new[from..from + n].to_vec(),
                });
            }
        }
        Ok(pieces)
    }

    /// The disk extents (offset, length) of the boot store's clusters, found again now: where
    /// a journal naming it may write.
    fn boot_store_extents(&self, loc: &BootStore) -> Result<Vec<(u64, u64)>> {
        let found = self.same_boot_store(loc)?;
        let (Some(part), Some(files)) = (found.partition, found.files) else {
            return Err(Error::Refused(
                "the boot store is not on a disk partition".into(),
            ));
        };
        let size = match &files {
            BootFiles::Fat { hive, .. } => hive.size(),
            BootFiles::Ntfs { files, .. } => files.hive.size(),
        };
        Ok(Self::boot_store_ranges(&files, 0, size, false)?
            .into_iter()
            .map(|(off, _, len)| (part.start + off, len))
            .collect())
    }

    /// The file that names this target's journals (see [`crate::journal::pending_path`]): the
    /// image or device, the hive file, or, for a folder, its SYSTEM hive (so that the folder and
    /// the hive file opened on its own find the same journal).
    pub fn anchor(&self, install: &Install) -> PathBuf {
        // A disk behind a URL: the blob it names, without the SAS (journals never keep it).
        if let Some(address) = self.disk.as_ref().and_then(|d| d.address()) {
            return PathBuf::from(address);
        }
        let p = match self.kind {
            TargetKind::Folder => self
                .hive_file_path(install, &install.system_path)
                .unwrap_or_else(|_| self.path.clone()),
            _ => self.path.clone(),
        };
        fs::canonicalize(&p).unwrap_or(p)
    }

    /// Gives the disk back (to write through it), closing the target. `None` also while a hive
    /// read on demand still reads through it (a target opened for writing never makes one).
    pub fn into_disk(self) -> Option<Disk> {
        self.disk.and_then(|d| Arc::try_unwrap(d).ok())
    }
}

/// The magic number that starts an xz file.
const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0];

/// Whether `path` is a regular file starting with the xz magic (a compressed image, as the
/// fixtures of `testdata/images/` are committed).
fn is_xz(path: &Path) -> bool {
    use std::io::Read;
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 6];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == XZ_MAGIC
}

/// Opens an xz-compressed disk image, read-only, through a decompressed copy in the temporary
/// folder that is unlinked as soon as the disk is open (the open file keeps its data alive, so
/// nothing is left behind). Writes are refused: they would land in the copy and be lost.
fn open_xz(path: PathBuf, write: bool) -> Result<Target> {
    if write {
        return Err(Error::Refused(format!(
            "{p} is xz-compressed: winrescue writes only into the image itself, never into a \
             compressed copy; decompress it first with `xz -dk {p}` and run this again on the \
             decompressed image",
            p = path.display()
        )));
    }
    let copy = decompressed_copy(&path)?;
    let opened = Target::open(&copy, false);
    let _ = fs::remove_file(&copy);
    if let Some(dir) = copy.parent() {
        let _ = fs::remove_dir(dir);
    }
    match opened {
        Ok(t) if t.kind == TargetKind::Disk => Ok(Target { path, ..t }),
        Ok(_) => Err(Error::NoWindows {
            path: path.clone(),
            why: format!(
                "it is an xz-compressed hive file, not a disk image: decompress it with `xz -dk {}`",
                path.display()
            ),
        }),
        Err(Error::NoWindows { why, .. }) => Err(Error::NoWindows { path, why }),
        Err(e) => Err(e),
    }
}

/// Decompresses the xz file `path` into a new folder of the temporary folder (`$TMPDIR`), as
/// `<name without .xz>`, and returns the copy's path; the caller removes the copy and its folder.
/// Runs `xz -dc`; runs of zero 4 KiB blocks become holes, so a mostly empty disk image costs
/// little room.
pub fn decompressed_copy(path: &Path) -> Result<PathBuf> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = std::env::temp_dir();
    let dir = tmp.join(format!(
        "winrescue-xz-{}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // create_dir, not create_dir_all: the folder is new, so nobody else placed a file in it.
    fs::create_dir(&dir).map_err(io(&dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let name = name
        .strip_suffix(".xz")
        .filter(|n| !n.is_empty())
        .unwrap_or("image")
        .to_string();
    let copy = dir.join(name);
    let result = (|| -> Result<()> {
        let mut child = Command::new("xz")
            .arg("-dc")
            .arg("--")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                error: std::io::Error::new(
                    e.kind(),
                    format!(
                        "the image is xz-compressed and `xz` cannot be run to decompress it ({e}): install xz-utils, or decompress it with `xz -dk {}`",
                        path.display()
                    ),
                ),
            })?;
        let out = fs::File::create(&copy).map_err(io(&copy))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        let copied = (|| -> std::io::Result<()> {
            loop {
                // Fill the buffer (pipes return short reads) so that blocks stay 4 KiB aligned.
                let mut filled = 0;
                while filled < buf.len() {
                    match stdout.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                for block in buf[..filled].chunks(4096) {
                    if block.iter().any(|&b| b != 0) {
                        out.write_all_at(block, at)?;
                    }
                    at += block.len() as u64;
                }
                if filled < buf.len() {
                    return Ok(());
                }
            }
        })();
        drop(stdout);
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let status = child.wait().map_err(io(path))?;
        copied.and_then(|()| out.set_len(at)).map_err(io(&copy))?;
        if !status.success() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("xz could not decompress it: {}", stderr.trim()),
                ),
            });
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(copy),
        Err(e) => {
            let _ = fs::remove_file(&copy);
            let _ = fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// Every NTFS partition (or the bare volume) holding a SYSTEM hive, with its opened volume.
fn find_installs(disk: &Disk) -> Result<Vec<(Install, (Volume, Partition))>> {
    let table = vdisk::read_partitions(disk)?;
    let mut out = Vec::new();
    for p in &table.partitions {
        if p.filesystem != Some(vdisk::FileSystem::Ntfs) {
            continue;
        }
        let mut slice = Slice::partition(disk, p)?;
        let Ok(vol) = Volume::open(&mut slice) else {
            continue;
        };
        let Ok(Some(entry)) = vol.lookup(&mut slice, SYSTEM_HIVE) else {
            continue;
        };
        let facts = vol.facts();
        let mut blockers = Vec::new();
        if facts.dirty {
            blockers.push(
                "the NTFS volume is marked dirty (not shut down cleanly): let chkdsk run first"
                    .to_string(),
            );
        }
        if facts.hibernation.blocks_writes() {
            blockers.push(format!(
                "hiberfil.sys is in use ({:?}): Windows is hibernated or used Fast Startup",
                facts.hibernation
            ));
        }
        let install = Install {
            partition: Some(p.index),
            partition_start: Some(p.start),
            partition_len: Some(p.len),
            label: facts.label.clone(),
            system_path: entry.path().to_string(),
            write_blockers: blockers,
        };
        out.push((install, (vol, p.clone())));
    }
    Ok(out)
}

/// A hive read on demand ([`Target::paged_hive`]).
pub struct PagedHive {
    pub paged: regf::Paged,
    /// The logs next to it (read only when it was dirty).
    pub logs: Vec<String>,
    /// The replay of those logs, when it was dirty.
    pub replay: Option<regf::log::Replay>,
}

/// A transaction log next to a hive read on demand: in the volume, or on this machine.
enum LogFile {
    Volume(FileEntry),
    Host(PathBuf),
}

impl LogFile {
    fn name(&self) -> String {
        match self {
            LogFile::Volume(e) => e.path().to_string(),
            LogFile::Host(p) => p.display().to_string(),
        }
    }
}

/// A file of an NTFS volume read at any offset, for a hive read on demand: the partition reader
/// is shared by the readers of the hive (one read at a time).
struct VolumeFile {
    slice: Mutex<Slice<Arc<Disk>>>,
    file: FileEntry,
}

impl regf::paged::ReadAt for VolumeFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        let mut slice = self.slice.lock().unwrap_or_else(|e| e.into_inner());
        let mut r = self.file.reader(&mut *slice).map_err(|e| e.to_string())?;
        r.seek(SeekFrom::Start(offset))
            .and_then(|_| r.read_exact(buf))
            .map_err(|e| {
                format!(
                    "{}: reading {} bytes at 0x{offset:x}: {e}",
                    self.file.path(),
                    buf.len()
                )
            })
    }

    /// The file's ranges as ranges of the disk, fetched together (a disk behind a URL).
    fn prefetch(&self, ranges: &[(u64, u64)]) -> std::result::Result<(), String> {
        let slice = self.slice.lock().unwrap_or_else(|e| e.into_inner());
        slice
            .disk()
            .prefetch(&disk_ranges(&self.file, slice.start(), ranges))
            .map_err(|e| format!("{}: {e}", self.file.path()))
    }
}

/// Ranges (offset, length) of `file` as ranges of the disk, for a volume that starts at byte
/// `partition_start`: split where the file's data runs are, sparse runs left out.
fn disk_ranges(file: &FileEntry, partition_start: u64, ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut on_disk = Vec::new();
    for &(offset, len) in ranges {
        let end = offset.saturating_add(len).min(file.size());
        for e in file.extents() {
            let from = offset.max(e.file_offset);
            let to = end.min(e.file_offset.saturating_add(e.len));
            let at = e.partition_offset.and_then(|at| {
                partition_start
                    .checked_add(at)?
                    .checked_add(from - e.file_offset)
            });
            if let (Some(at), true) = (at, from < to) {
                on_disk.push((at, to - from));
            }
        }
    }
    on_disk
}

/// Transaction logs read next to a hive: (name, bytes).
type Logs = Vec<(String, Vec<u8>)>;

/// Reads a hive file and the logs next to it (`<name>.LOG1`, `.LOG2`, `.LOG`, any case).
fn read_hive_file(hive_path: &Path) -> Result<(Vec<u8>, Logs)> {
    let hive = fs::read(hive_path).map_err(io(hive_path))?;
    let mut logs = Vec::new();
    let dir = hive_path.parent().unwrap_or(Path::new("."));
    let name = hive_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let siblings: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    for l in regf::log::log_names(&name, siblings.iter().map(String::as_str)) {
        let p = dir.join(l);
        logs.push((p.display().to_string(), fs::read(&p).map_err(io(&p))?));
    }
    Ok((hive, logs))
}

/// A hive as read with its named logs, replayed.
fn replayed(on_disk: Vec<u8>, logs: Logs) -> Result<SystemHive> {
    let inputs: Vec<LogInput<'_>> = logs
        .iter()
        .map(|(n, d)| LogInput { name: n, data: d })
        .collect();
    let recovered = replay(&on_disk, &inputs)?;
    Ok(SystemHive {
        on_disk,
        recovered,
        logs: logs.into_iter().map(|(n, _)| n).collect(),
    })
}

/// The pieces that write `new` over a hive file holding `old`, one per changed page: a page
/// across the old end is two pieces, bytes it replaces and bytes the file grows by (which
/// replace nothing).
fn file_pieces(pages: &[u64], old: &[u8], new: &[u8]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for &page in pages {
        let start = page as usize;
        let end = (start + regf::edit::PAGE).min(new.len());
        let split = old.len().clamp(start, end);
        if split > start {
            pieces.push(Piece {
                offset: page,
                before: old[start..split].to_vec(),
                after: new[start..split].to_vec(),
            });
        }
        if end > split {
            pieces.push(Piece {
                offset: split as u64,
                before: Vec::new(),
                after: new[split..end].to_vec(),
            });
        }
    }
    pieces
}

/// The pieces that grow a hive file inside an NTFS volume to `plan.new_size`, in the order of
/// [`volume::GrowthPlan`], so that the disk is consistent between any two of them:
/// 1. the file's new bytes past its old valid data length (into its slack clusters or into
///    free clusters, which nothing reads yet), page by page;
/// 2. the volume bitmap bytes that mark the new clusters used;
/// 3. the file's MFT record (new runs, sizes), which makes step 1's bytes part of the file;
/// 4. the sizes copied into its parent directory's index entries (the parent's MFT record or
///    an INDX block), which NTFS only shows in listings;
/// 5. the changed pages below the old valid data length, the base block last (as for a hive
///    that keeps its length: its old base block stays valid for its old bins until then).
///
/// A crash after step 2 leaves clusters marked used that no file owns (chkdsk frees them);
/// after step 3 a longer file whose hive still ends where it did (the base block is not yet
/// written): both read as the original hive, and the pending journal takes the disk to either
/// side. `before` bytes are read from the device, not from `old`: past the valid data length
/// the file reads as zeros whatever its clusters hold, and the journal must restore the
/// clusters themselves.
fn grow_pieces<S: Read + Seek>(
    s: &mut S,
    start: u64,
    plan: &volume::GrowthPlan,
    pages: &[u64],
    old: &[u8],
    new: &[u8],
) -> Result<Vec<Piece>> {
    let mut read = |off: u64, n: u64| -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n as usize];
        s.seek(SeekFrom::Start(off))
            .and_then(|_| s.read_exact(&mut buf))
            .map_err(|source| volume::Error::Io {
                offset: off,
                source,
            })?;
        Ok(buf)
    };
    let page = regf::edit::PAGE as u64;
    let mut pieces = Vec::new();
    let mut pos = plan.old_valid_size;
    while pos < plan.new_size {
        let len = ((pos / page + 1) * page).min(plan.new_size) - pos;
        for ext in plan.grown.plan_write(pos, len)? {
            let before = read(ext.partition_offset, ext.len)?;
            // The new size may pass the hive's end only by the zeros of a whole page.
            let mut after = vec![0u8; ext.len as usize];
            let from = (ext.file_offset as usize).min(new.len());
            let to = ((ext.file_offset + ext.len) as usize).min(new.len());
            after[..to - from].copy_from_slice(&new[from..to]);
            pieces.push(Piece {
                offset: start + ext.partition_offset,
                before,
                after,
            });
        }
        pos += len;
    }
    for patch in plan.bitmap.iter().chain([&plan.record]).chain(&plan.names) {
        pieces.push(Piece {
            offset: start + patch.partition_offset,
            before: patch.before.clone(),
            after: patch.after.clone(),
        });
    }
    for &pg in pages.iter().filter(|&&pg| pg < plan.old_valid_size) {
        let len = page.min(plan.old_valid_size - pg);
        for ext in plan.grown.plan_write(pg, len)? {
            let (from, n) = (ext.file_offset as usize, ext.len as usize);
            pieces.push(Piece {
                offset: start + ext.partition_offset,
                before: old[from..from + n].to_vec(),
                after: new[from..from + n].to_vec(),
            });
        }
    }
    Ok(pieces)
}

/// A partition as the pieces already planned in a transaction leave it: reads see their new
/// bytes. A second growth on one volume is planned through it, so that it finds the clusters
/// the first one takes already used in `$Bitmap`, and the directory entries as the first one
/// rewrites them.
struct Overlay<'a, 'd> {
    inner: &'a mut Slice<&'d Disk>,
    /// The partition's first byte on the disk (the pieces have disk offsets).
    start: u64,
    pieces: &'a [Piece],
}

impl Read for Overlay<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let at = self.inner.stream_position()?;
        let n = self.inner.read(buf)?;
        let (from, to) = (self.start + at, self.start + at + n as u64);
        for p in self.pieces {
            let (ps, pe) = (p.offset, p.offset + p.after.len() as u64);
            if ps < to && from < pe {
                let (s, e) = (ps.max(from), pe.min(to));
                buf[(s - from) as usize..(e - from) as usize]
                    .copy_from_slice(&p.after[(s - ps) as usize..(e - ps) as usize]);
            }
        }
        Ok(n)
    }
}

impl Seek for Overlay<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(to)
    }
}

/// Pieces of one disk merged where they overlap: a second growth on a volume rewrites bitmap
/// bytes and directory entries (an MFT record, an INDX block) that the first one already
/// changes, planned from their new bytes (see [`Overlay`]). The pieces kept are disjoint; a
/// piece that overlaps some of them is planned after all of those, so the merged piece holds
/// their bytes before where they have bytes (the disk as it was; elsewhere the new piece's
/// `before`, which is the disk there too) and the new piece's bytes after (elsewhere theirs).
/// It takes the place of the first of them in the write order.
pub(crate) fn merge_overlaps(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for p in pieces {
        let end = p.offset + p.after.len() as u64;
        let hits: Vec<usize> = (0..out.len())
            .filter(|&i| {
                out[i].offset < end && p.offset < out[i].offset + out[i].after.len() as u64
            })
            .collect();
        let Some(&first) = hits.first() else {
            out.push(p);
            continue;
        };
        let from = hits.iter().map(|&i| out[i].offset).fold(p.offset, u64::min);
        let to = hits
            .iter()
            .map(|&i| out[i].offset + out[i].after.len() as u64)
            .fold(end, u64::max);
        let mut before = vec![0u8; (to - from) as usize];
        let mut after = before.clone();
        let put = |dst: &mut [u8], src: &[u8], off: u64| {
            let at = (off - from) as usize;
            dst[at..at + src.len()].copy_from_slice(src);
        };
        put(&mut before, &p.before, p.offset);
        for &i in &hits {
            put(&mut before, &out[i].before, out[i].offset);
            put(&mut after, &out[i].after, out[i].offset);
        }
        put(&mut after, &p.after, p.offset);
        out[first] = Piece {
            offset: from,
            before,
            after,
        };
        for &i in hits[1..].iter().rev() {
            out.remove(i);
        }
    }
    out
}

/// Where the ranges of a journal on one disk may lie: found again on the disk when the journal
/// is obeyed (see [`crate::journal`]).
#[derive(Debug, Default)]
pub struct DiskBounds {
    /// Disk extents (offset, length): the clusters of each hive, and for the hives of an
    /// installation their MFT record, the MFT record or INDX block of their parent directory
    /// that holds their entry, and their volume's `$Bitmap` clusters (a hive that grows writes
    /// all of them).
    pub extents: Vec<(u64, u64)>,
    /// Per NTFS volume holding a hive: its partition start, cluster size and `$Bitmap` runs.
    bitmaps: Vec<(u64, u64, Vec<volume::Extent>)>,
}

impl DiskBounds {
    /// The disk extents of the clusters that the bitmap ranges among `ranges` (disk offset,
    /// bytes before, bytes after) allocate: bits clear before and set after. A growing hive's
    /// new clusters are written before they belong to it, so they are allowed by the same
    /// journal's allocation of them, and by nothing else.
    pub fn allocated<'a>(
        &self,
        ranges: impl Iterator<Item = (u64, &'a [u8], &'a [u8])> + Clone,
    ) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (start, cluster, runs) in &self.bitmaps {
            for (offset, before, after) in ranges.clone() {
                for run in runs {
                    let Some(base) = run.partition_offset.map(|p| start + p) else {
                        continue;
                    };
                    for (i, (b, a)) in before.iter().zip(after).enumerate() {
                        let at = offset + i as u64;
                        if at < base || at >= base + run.len {
                            continue;
                        }
                        let byte = run.file_offset + (at - base);
                        for bit in 0..8 {
                            if b & (1 << bit) == 0 && a & (1 << bit) != 0 {
                                let disk = start + (byte * 8 + bit) * cluster;
                                match out.last_mut() {
                                    Some(last) if last.0 + last.1 == disk => last.1 += cluster,
                                    _ => out.push((disk, *cluster)),
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// Where the ranges of a journal naming `hives` may lie on the disk image or device at `path`
/// (see [`DiskBounds`]).
pub fn hive_extents(path: &Path, hives: &[HiveRef]) -> Result<DiskBounds> {
    let target = Target::open(path, false)?;
    let mut out = DiskBounds::default();
    for h in hives {
        if h.boot_store {
            let loc = BootStore {
                partition: None,
                partition_start: h.partition_start,
                filesystem: None,
                path: h.path.clone(),
            };
            out.extents.extend(target.boot_store_extents(&loc)?);
            continue;
        }
        let install = target
            .installs
            .iter()
            .find(|i| i.partition_start == h.partition_start)
            .ok_or_else(|| Error::NoWindows {
                path: path.to_path_buf(),
                why: format!(
                    "no Windows volume starts at byte {}",
                    h.partition_start.unwrap_or(0)
                ),
            })?;
        let start = install.partition_start.unwrap_or(0);
        let (entry, record, names, (bitmap, cluster)) = target.with_volume(install, |vol, s| {
            let entry = vol.hive_files(s, &h.path)?.hive;
            let record = vol.record_range(s, &entry)?;
            let names = vol.name_ranges(s, &entry)?;
            Ok((entry, record, names, vol.bitmap_extents(s)?))
        })?;
        for ext in entry.plan_write(0, entry.size())? {
            out.extents.push((start + ext.partition_offset, ext.len));
        }
        out.extents.push((start + record.0, record.1));
        // The parent directory's MFT record or INDX block holding the hive's entry: a growth
        // writes the new sizes there.
        for (p, n) in names {
            out.extents.push((start + p, n));
        }
        if !out.bitmaps.iter().any(|b| b.0 == start) {
            for ext in &bitmap {
                if let Some(p) = ext.partition_offset {
                    out.extents.push((start + p, ext.len));
                }
            }
            out.bitmaps.push((start, u64::from(cluster), bitmap));
        }
    }
    Ok(out)
}

/// A path as the registry writes it, as a path inside the Windows volume:
/// `%SystemRoot%\system32\x.dll` -> `Windows\system32\x.dll`, `C:\Program Files\x.exe` ->
/// `Program Files\x.exe`.
pub fn volume_path(p: &str) -> String {
    let p = p.trim().trim_matches('"');
    let p = p.strip_prefix("\\??\\").unwrap_or(p);
    let lower = p.to_ascii_lowercase();
    for prefix in [
        "%systemroot%\\",
        "%windir%\\",
        "\\systemroot\\",
        "systemroot\\",
    ] {
        if lower.starts_with(prefix) {
            return format!("Windows\\{}", &p[prefix.len()..]);
        }
    }
    // `C:\x`: the drive letter, colon and separator are ASCII, so byte 3 is a character
    // boundary exactly when they are there (`get` refuses anything else, such as `C:ñ`).
    let b = p.as_bytes();
    if b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/') {
        if let Some(rest) = p.get(3..) {
            return rest.to_string();
        }
    }
    p.to_string()
}

/// `base` joined with a Windows path, each component matched case-insensitively.
pub fn find_ci(base: &Path, windows_path: &str) -> Option<PathBuf> {
    let mut cur = base.to_path_buf();
    for part in windows_path.split(['\\', '/']).filter(|p| !p.is_empty()) {
        let exact = cur.join(part);
        if exact.exists() {
            cur = exact;
            continue;
        }
        let entry = fs::read_dir(&cur)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(part))?;
        cur = entry.path();
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text a registry value may hold, however odd its characters, maps to a path
        /// without panicking, and never grows.
        #[test]
        fn volume_path_never_panics(s in "\\PC{0,40}", prefix in prop::sample::select(vec!["", "C:", "C:\\", "\\??\\C:\\", "%SystemRoot%\\", "\"", "ñ:", "C:ñ"])) {
            let p = format!("{prefix}{s}");
            let v = volume_path(&p);
            prop_assert!(v.len() <= p.len());
        }
    }

    #[test]
    fn overlapping_pieces_merge_into_the_first_with_the_oldest_before_and_newest_after() {
        let piece = |offset: u64, before: &[u8], after: &[u8]| Piece {
            offset,
            before: before.to_vec(),
            after: after.to_vec(),
        };
        let merged = merge_overlaps(vec![
            piece(10, b"ab", b"AB"),
            piece(100, b"zz", b"ZZ"),
            piece(14, b"ef", b"EF"),
            // Planned after the two above: its before bytes are their after bytes.
            piece(11, b"BcdE", b"1234"),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].offset, 10);
        assert_eq!(merged[0].before, b"abcdef");
        assert_eq!(merged[0].after, b"A1234F");
        assert_eq!(merged[1].offset, 100);
    }

    #[test]
    fn volume_path_strips_drives_and_system_roots() {
        assert_eq!(
            volume_path(r"C:\Program Files\x.exe"),
            r"Program Files\x.exe"
        );
        assert_eq!(
            volume_path(r"%SystemRoot%\system32\svchost.exe -k x"),
            r"Windows\system32\svchost.exe -k x"
        );
        assert_eq!(volume_path(r"\??\C:\Windows\x.sys"), r"Windows\x.sys");
        assert_eq!(volume_path("C:ñsvc.exe"), "C:ñsvc.exe");
        assert_eq!(volume_path("ñ:\\x"), "ñ:\\x");
    }
}
