//! The image file, block device or URL underneath a container: positioned I/O, locking, size.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::remote::{self, Remote, TransferStats};

/// Where the bytes come from.
#[derive(Debug)]
enum Source {
    File(File),
    Remote(Box<Remote>),
}

/// An open image file, block device or remote image.
#[derive(Debug)]
pub(crate) struct Backing {
    source: Source,
    /// The path, or for a remote image its URL with the secrets redacted: what is shown.
    path: PathBuf,
    len: u64,
    writable: bool,
    block_device: bool,
}

impl Backing {
    /// Opens `path` and takes an advisory lock on it: exclusive for writing, shared for reading,
    /// both without waiting, so that two writers (or a writer and a reader) never run at once.
    pub(crate) fn open(path: &Path, write: bool) -> Result<Backing> {
        if let Some(url) = path.to_str().filter(|p| remote::is_url(p)) {
            return Backing::open_remote(url, write);
        }
        if write {
            crate::lock::check_writable(path)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(write);
        // Linux refuses O_EXCL on a block device that is mounted or held (EBUSY): a disk in
        // use by the kernel is never written behind its back.
        let is_device = std::fs::metadata(path)
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        if write && is_device {
            options.custom_flags(rustix::fs::OFlags::EXCL.bits() as i32);
        }
        let file = options.open(path).map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
                return Error::Locked {
                    path: path.to_path_buf(),
                    holder: "the kernel holds the device (mounted, or in use by another driver)"
                        .into(),
                };
            }
            // EROFS (30) is a read-only file system or device.
            if write
                && (e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(30))
            {
                Error::ReadOnlyImage {
                    path: path.to_path_buf(),
                    source: e,
                }
            } else {
                Error::Io {
                    path: path.to_path_buf(),
                    op: "open",
                    offset: 0,
                    source: e,
                }
            }
        })?;
        if write {
            crate::lock::lock_exclusive(&file, path)?;
        } else {
            crate::lock::lock_shared(&file, path)?;
        }
        let meta = file.metadata().map_err(|e| Error::Io {
            path: path.to_path_buf(),
            op: "stat",
            offset: 0,
            source: e,
        })?;
        let block_device = meta.file_type().is_block_device();
        // A block device's metadata length is 0; seeking to the end gives its size for both.
        let len = (&file).seek(SeekFrom::End(0)).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            op: "seek",
            offset: 0,
            source: e,
        })?;
        Ok(Backing {
            source: Source::File(file),
            path: path.to_path_buf(),
            len,
            writable: write,
            block_device,
        })
    }

    /// Opens the image at an `http://` or `https://` URL; for writing, it must be an Azure page
    /// blob with a SAS that allows writing.
    fn open_remote(url: &str, write: bool) -> Result<Backing> {
        let remote = if write {
            Remote::open_rw(url)?
        } else {
            Remote::open(url)?
        };
        Ok(Backing {
            path: PathBuf::from(remote.shown()),
            len: remote.len(),
            writable: remote.writable(),
            source: Source::Remote(Box::new(remote)),
            block_device: false,
        })
    }

    /// Requests and bytes so far, for a remote image.
    pub(crate) fn transfer_stats(&self) -> Option<TransferStats> {
        match &self.source {
            Source::Remote(r) => Some(r.stats()),
            Source::File(_) => None,
        }
    }

    /// The remote image's ETag now (read at open, changed by each write).
    pub(crate) fn etag(&self) -> Option<String> {
        match &self.source {
            Source::Remote(r) => r.current_etag(),
            Source::File(_) => None,
        }
    }

    /// Whether the image is behind a URL.
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self.source, Source::Remote(_))
    }

    /// For a remote image: what its URL names, without secrets (see [`remote::address`]).
    pub(crate) fn address(&self) -> Option<String> {
        match &self.source {
            Source::Remote(r) => Some(r.address()),
            Source::File(_) => None,
        }
    }

    /// For a remote image: fetches `ranges` (file offset, length) into the cache, several at
    /// once (see [`Remote::prefetch`]). Nothing to do for a local file.
    pub(crate) fn prefetch(&self, ranges: &[(u64, u64)]) -> Result<()> {
        match &self.source {
            Source::Remote(r) => r.prefetch(ranges),
            Source::File(_) => Ok(()),
        }
    }

    /// For a remote image: asks the server whether it is unchanged (see [`Remote::revalidate`]).
    pub(crate) fn revalidate(&self) -> Result<()> {
        match &self.source {
            Source::Remote(r) => r.revalidate(),
            Source::File(_) => Ok(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn is_block_device(&self) -> bool {
        self.block_device
    }

    /// Reads exactly `buf.len()` bytes at `offset`; a read past the end of the file is
    /// [`Error::Truncated`] naming `what`.
    pub(crate) fn read_exact_at(
        &self,
        buf: &mut [u8],
        offset: u64,
        what: &'static str,
    ) -> Result<()> {
        let len = buf.len() as u64;
        self.check_range(offset, len, what)?;
        let file = match &self.source {
            Source::File(f) => f,
            Source::Remote(r) => return r.read_exact_at(buf, offset),
        };
        file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Truncated {
                    structure: what,
                    offset,
                    len,
                    file_size: self.len,
                }
            } else {
                Error::Io {
                    path: self.path.clone(),
                    op: "read",
                    offset,
                    source: e,
                }
            }
        })
    }

    /// Fails unless `offset..offset + len` lies inside the file.
    fn check_range(&self, offset: u64, len: u64, what: &'static str) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::Truncated {
                structure: what,
                offset,
                len,
                file_size: self.len,
            }),
        }
    }

    /// Writes all of `buf` at `offset`, which must lie inside the existing file: containers
    /// never grow the file.
    pub(crate) fn write_all_at(&self, buf: &[u8], offset: u64, what: &'static str) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnlyOpen {
                path: self.path.clone(),
            });
        }
        let len = buf.len() as u64;
        self.check_range(offset, len, what)?;
        let file = match &self.source {
            Source::File(f) => f,
            Source::Remote(r) => return r.write_all_at(buf, offset),
        };
        file.write_all_at(buf, offset).map_err(|e| Error::Io {
            path: self.path.clone(),
            op: "write",
            offset,
            source: e,
        })
    }

    /// Makes written data durable (fdatasync).
    pub(crate) fn sync(&self) -> Result<()> {
        let Source::File(file) = &self.source else {
            return Ok(());
        };
        if !self.writable {
            return Ok(());
        }
        file.sync_data().map_err(|e| Error::Io {
            path: self.path.clone(),
            op: "flush",
            offset: 0,
            source: e,
        })
    }
}
