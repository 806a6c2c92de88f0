//! Exclusive access to a file or device before writing it.
//!
//! An advisory `flock` only keeps out programs that also use `flock`. A VM manager, a mounted
//! loop device, `qemu-nbd` or an editor may hold the same image through POSIX record locks, OFD
//! locks, or simply an open read-write descriptor and no lock at all; writing under any of them
//! mixes two writers' pages. So a writer here:
//! 1. takes an exclusive `flock` and an exclusive POSIX record lock (so that programs using
//!    either kind see the file as taken), retrying for a moment: a lock can be held for a few
//!    microseconds by a process that is between `fork` and `exec` and still has a copy of
//!    another thread's descriptors;
//! 2. reads `/proc/locks` and refuses when another process holds any lock on the file;
//! 3. walks `/proc/*/fd` and refuses when another process has the file open for writing.
//!
//! It also refuses, before anything is opened for writing, a file whose mode has no write bit
//! (root can write it, but its owner said not to) and a file on a read-only mount.

use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a lock held by someone else is retried before it counts (see the module comment).
const RETRY_FOR: Duration = Duration::from_millis(300);
/// How long another process's open descriptor is waited for once the locks are taken. Longer
/// than [`RETRY_FOR`]: a second writer that started at the same moment holds the file open
/// while it tries for the lock, and must give up and close it first, so that one of two
/// concurrent writers always goes through.
const WAIT_FOR_OTHERS: Duration = Duration::from_millis(1500);

/// Refuses to write a file whose mode has no write bit at all, or that lies on a read-only
/// mount. Block devices are exempt from the mode check (their mode says who may open them, not
/// whether their content may change).
pub fn check_writable(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| io_err(path, "stat", e))?;
    if !meta.file_type().is_block_device() && meta.permissions().mode() & 0o222 == 0 {
        return Err(Error::ReadOnlyImage {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "its mode {:o} has no write bit (made read-only on purpose); add one with chmod u+w first",
                    meta.permissions().mode() & 0o7777
                ),
            ),
        });
    }
    let f = File::open(path).map_err(|e| io_err(path, "open", e))?;
    if let Ok(st) = rustix::fs::fstatvfs(&f) {
        if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
            return Err(Error::ReadOnlyImage {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "it lies on a read-only mount",
                ),
            });
        }
    }
    Ok(())
}

/// Takes the locks a writer needs on `file` (opened from `path`) and checks that nobody else
/// holds or writes it. The locks last as long as `file` stays open.
pub fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    take(file, path, true)?;
    let meta = file.metadata().map_err(|e| io_err(path, "stat", e))?;
    let id = FileId::of(&meta);
    let deadline = Instant::now() + WAIT_FOR_OTHERS;
    loop {
        match others(&id) {
            None => return Ok(()),
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Some(holder) => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    holder,
                })
            }
        }
    }
}

/// Takes a shared lock for reading: writers that use `flock` or POSIX locks are kept out.
pub fn lock_shared(file: &File, path: &Path) -> Result<()> {
    take(file, path, false)
}

fn take(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    use rustix::fs::FlockOperation as Op;
    let op = if exclusive {
        Op::NonBlockingLockExclusive
    } else {
        Op::NonBlockingLockShared
    };
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        let r = rustix::fs::flock(file, op).and_then(|()| {
            // Writers also take a POSIX lock, which programs that use fcntl locks (qemu among
            // them) see. Readers do not: qemu reads an image only if no one holds a POSIX read
            // lock over its lock bytes, and reading beside qemu is harmless.
            if exclusive {
                rustix::fs::fcntl_lock(file, op)
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::ACCESS => {
                if Instant::now() >= deadline {
                    let holder = file
                        .metadata()
                        .ok()
                        .and_then(|m| others(&FileId::of(&m)))
                        .unwrap_or_else(|| {
                            "another process (or another open handle in this one) holds a lock on it"
                                .into()
                        });
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                        holder,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io_err(path, "lock", e.into())),
        }
    }
}

/// What identifies the file among the kernel's locks and open descriptors.
struct FileId {
    dev: u64,
    ino: u64,
    /// For a block device: the device number, which every node and link to it shares.
    rdev: Option<u64>,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            rdev: meta.file_type().is_block_device().then(|| meta.rdev()),
        }
    }

    fn matches(&self, meta: &fs::Metadata) -> bool {
        match self.rdev {
            Some(r) => meta.file_type().is_block_device() && meta.rdev() == r,
            None => meta.dev() == self.dev && meta.ino() == self.ino,
        }
    }
}

/// Another process that holds a lock on the file or has it open for writing, described; `None`
/// when there is none (or `/proc` cannot be read, as outside Linux).
fn others(id: &FileId) -> Option<String> {
    let me = std::process::id();
    if let Ok(text) = fs::read_to_string("/proc/locks") {
        let dev = format!(
            "{:02x}:{:02x}:{}",
            rustix::fs::major(id.dev),
            rustix::fs::minor(id.dev),
            id.ino
        );
        for line in text.lines() {
            // `1: POSIX  ADVISORY  WRITE 1234 08:01:1311 0 EOF`; blocked waiters have `->`.
            let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "->").collect();
            let (Some(kind), Some(pid), Some(file)) = (fields.get(1), fields.get(4), fields.get(5))
            else {
                continue;
            };
            if *file != dev || id.rdev.is_some() {
                continue;
            }
            if pid.parse::<u32>().ok() == Some(me) {
                continue;
            }
            return Some(match pid.parse::<i64>() {
                Ok(p) if p > 0 => format!(
                    "process {p}{} holds a {kind} lock on it",
                    command_name(p as u32)
                ),
                _ => format!("another process holds an {kind} lock on it"),
            });
        }
    }
    let procs = fs::read_dir("/proc").ok()?;
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(meta) = fs::metadata(fd.path()) else {
                continue;
            };
            if !id.matches(&meta) {
                continue;
            }
            let info = p.path().join("fdinfo").join(fd.file_name());
            if opened_for_writing(&info) {
                return Some(format!(
                    "process {pid}{} has it open for writing",
                    command_name(pid)
                ));
            }
        }
    }
    None
}

/// Whether `/proc/PID/fdinfo/N` says the descriptor was opened for writing (`flags:` in octal;
/// the access mode is its low two bits: 1 write-only, 2 read-write).
fn opened_for_writing(fdinfo: &Path) -> bool {
    let Ok(text) = fs::read_to_string(fdinfo) else {
        return false;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| matches!(flags & 3, 1 | 2))
}

fn command_name(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| format!(" ({})", c.trim()))
        .unwrap_or_default()
}

fn io_err(path: &Path, op: &'static str, source: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(path),
        op,
        offset: 0,
        source,
    }
}
