//! The files winrescue creates for itself (journals, their temporary copies, the journal key):
//! private, created new, never through a link.
//!
//! A journal holds raw registry pages (a SAM hive's password hashes among them), and its name is
//! predictable. So every such file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600
//! under a random temporary name, written, fsynced, and then moved to its place: by `rename`
//! where it replaces an older copy of itself, by `link` where an existing file must never be
//! replaced (the pending journal of a write in progress). Neither follows a symlink planted at
//! the destination.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{io, Error, Result};

/// Mode of the files and folders winrescue creates.
const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;

/// The folder a path lies in (`.` for a bare name).
pub(crate) fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `dir` (and its parents) if missing; folders winrescue makes are private.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(io(dir))
}

/// Opens a new private file at `path`: fails if anything (a file, a symlink) is there already.
pub(crate) fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io(path))
}

/// Opens an existing file for reading without following a symlink at its last component.
pub(crate) fn open_nofollow(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io(path))
}

/// A fresh, unpredictable temporary name in the folder of `path`.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut r = [0u8; 8];
    random(&mut r);
    let tag: String = r.iter().map(|b| format!("{b:02x}")).collect();
    parent(path).join(format!(".{name}.{tag}.tmp"))
}

/// Writes `content` to a new private temporary file beside `path` and fsyncs it.
fn write_temp(path: &Path, content: &[u8]) -> Result<PathBuf> {
    ensure_dir(parent(path))?;
    let tmp = temp_name(path);
    let mut f = create_new(&tmp)?;
    let done = f.write_all(content).and_then(|()| f.sync_all());
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io {
            path: tmp,
            error: e,
        });
    }
    Ok(tmp)
}

/// Writes `content` at `path` atomically and durably, replacing what is there (a symlink at
/// `path` is replaced, not followed).
pub(crate) fn save(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = write_temp(path, content)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io {
            path: path.into(),
            error: e,
        });
    }
    sync_dir(path)
}

/// Writes `content` at `path` atomically and durably; fails with `AlreadyExists` (nothing
/// changed) when anything is at `path` already.
pub(crate) fn save_new(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = write_temp(path, content)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked.map_err(io(path))?;
    sync_dir(path)
}

/// Makes a rename or link in the folder of `path` durable. A failure is reported: a journal
/// whose name is not on the disk may be gone after a crash.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = parent(path);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            error: std::io::Error::new(e.kind(), format!("cannot flush the folder: {e}")),
        })
}

/// Fills `buf` with random bytes from the kernel.
pub(crate) fn random(buf: &mut [u8]) {
    let filled = File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
    if filled.is_err() {
        // No /dev/urandom: names must still differ between processes and calls.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = t ^ (u128::from(std::process::id()) << 64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
}

/// The secret that authenticates journals made on this machine: 32 random bytes in a private
/// file, made on first use. Where: `$WINRESCUE_STATE_DIR/journal.key`, else
/// `/var/lib/winrescue/journal.key` for root, else `$XDG_STATE_HOME/winrescue/journal.key` or
/// `~/.local/state/winrescue/journal.key`.
pub(crate) fn journal_key() -> Result<Vec<u8>> {
    let path = key_path();
    match read_key(&path) {
        Ok(k) => return Ok(k),
        Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = vec![0u8; 32];
    random(&mut key);
    match save_new(&path, &key) {
        Ok(()) => Ok(key),
        // Another process made it first: use theirs.
        Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(&path)
        }
        Err(e) => Err(e),
    }
}

/// Where the journal key lives: `$WINRESCUE_STATE_DIR/journal.key`, else
/// `/var/lib/winrescue/journal.key` for root, else `$XDG_STATE_HOME/winrescue/journal.key` or
/// `~/.local/state/winrescue/journal.key`.
pub fn key_path() -> PathBuf {
    state_dir().join("journal.key")
}

/// winrescue's own folder: `$WINRESCUE_STATE_DIR`, else `/var/lib/winrescue` for root, else
/// `$XDG_STATE_HOME/winrescue` or `~/.local/state/winrescue`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WINRESCUE_STATE_DIR") {
        PathBuf::from(d)
    } else if rustix::process::geteuid().is_root() {
        PathBuf::from("/var/lib/winrescue")
    } else if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        PathBuf::from(d).join("winrescue")
    } else if let Some(h) = std::env::var_os("HOME") {
        PathBuf::from(h).join(".local/state/winrescue")
    } else {
        PathBuf::from("/var/lib/winrescue")
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>> {
    let mut f = open_nofollow(path)?;
    let meta = f.metadata().map_err(io(path))?;
    // A key others can read lets them forge journals; one owned by someone else may be theirs.
    if !meta.is_file()
        || meta.uid() != rustix::process::geteuid().as_raw()
        || meta.permissions().mode() & 0o077 != 0
    {
        return Err(Error::Io {
            path: path.into(),
            error: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the journal key must be a regular file owned by this user with mode 0600",
            ),
        });
    }
    let mut key = Vec::with_capacity(32);
    Read::by_ref(&mut f)
        .take(64)
        .read_to_end(&mut key)
        .map_err(io(path))?;
    if key.len() != 32 {
        return Err(Error::Io {
            path: path.into(),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the journal key is {} bytes, not 32", key.len()),
            ),
        });
    }
    Ok(key)
}
