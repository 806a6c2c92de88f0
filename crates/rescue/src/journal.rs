//! The one place that writes to a disk or hive file: every write, and every undo, goes through
//! an undo journal.
//!
//! # Protocol
//! 1. The caller holds the target open for writing with its locks (see [`Device`]) from before
//!    it read what it changes, so no other writer can come in between.
//! 2. Every range about to be written is read again and must still hold the bytes the caller
//!    planned from; otherwise nothing is written.
//! 3. A journal holding, for every range, the original and the new bytes, the identity of each
//!    device and the hives the ranges belong to, is authenticated with this machine's key,
//!    created new (never replacing one: its existence is the lock that says "a write is under
//!    way or was interrupted") at [`pending_path`], and fsynced with its folder.
//! 4. The ranges are written (for a hive, its base block last), flushed, and read back.
//! 5. The journal is marked complete and moved to `<anchor>.winrescue-undo-<time>.json`: the
//!    file `winrescue undo` takes.
//!
//! `undo` follows the same protocol in the other direction: it leaves a pending journal before
//! its first byte, so an interrupted undo is resolved like an interrupted write. A crash
//! anywhere therefore leaves each device untouched, fully written, or partly written with a
//! pending journal; `winrescue undo PENDING` then ends in the original bytes and
//! `winrescue undo --redo PENDING` in the new ones. Both are idempotent.
//!
//! # What a journal can make winrescue do
//! A journal is data from a file anyone might edit. It is obeyed only when its MAC verifies
//! with this machine's key (see [`crate::files::key_path`]), and only within what winrescue
//! itself writes: every range must lie inside the clusters of a hive file the journal names,
//! on the partition it names, of the disk it names (found again on the disk at undo time), or
//! inside a hive file that still starts with `regf`; and the current bytes must be exactly the
//! journal's own before or after bytes.
//!
//! # Hive files that grow
//! A hive file (a bare hive, or one in a folder target) may be extended when an edit needs more
//! room than the file has. Its device record then keeps both lengths (`file_len` before,
//! `grown_len` after), and the ranges at or past the old length carry no `before` bytes: there
//! were none. The write extends the file (`set_len`) just before the first of those ranges;
//! undo puts the old bytes back in the ranges below the old length, then truncates the file to
//! it. Between the two lengths nothing else is ever possible: a journal is obeyed only while the
//! file is exactly one of them, its ranges lie below the length it recorded, and truncation
//! never goes below the old one. So a crash at any point ends, after `undo` or `undo --redo`,
//! in the original file (length included) or the grown one. Such journals are format 3, so that
//! an older winrescue, which would not truncate, refuses them; the others stay format 2.
//! Disk images never change length. A hive file that grows inside an NTFS volume of a disk
//! changes NTFS metadata instead: its MFT record, bytes of `$Bitmap`, and the sizes in its
//! parent directory's index entry (the parent's MFT record or one INDX block), besides its new
//! clusters. Those ranges are ordinary ones (bytes before and after); a journal naming the hive
//! may write its MFT record, the structure holding its directory entry (found again on the
//! disk) and its volume's `$Bitmap`, and clusters outside the hive's only
//! where the journal's own bitmap ranges allocate them (a bit clear before, set after): that is
//! the one way a growing hive's new clusters, written before its MFT record takes them, are
//! allowed (see [`crate::target::DiskBounds`]).
//!
//! # Disks behind a URL
//! An Azure page blob reached with a SAS URL is written with Put Page, each request guarded by
//! `If-Match` with the ETag read at open (then the one each of this process's writes gave), so
//! that a change made by anyone else in between is refused by the service. The journal is kept
//! locally (in `$WINRESCUE_JOURNAL_DIR`, else `journals/` in winrescue's state folder, see
//! [`files::state_dir`]); it names the blob by its address without the query string: the SAS
//! is never written anywhere, and `undo` needs the URL with a SAS given again (see
//! [`undo_remote`]). The device record keeps the ETag before the write and after it: an undo
//! of a complete journal is refused when the blob's ETag is no longer the recorded one (someone
//! else wrote it since). Each Put Page is atomic on the service (its pages are all written or
//! none), and every range is at most 4 KiB here, so a dropped connection or a 503 leaves each
//! range old or new, and the pending journal, written before the first request, says which
//! (`undo` or `undo --redo` end in the original or the repaired disk). A VHDX behind a URL is
//! written as a local one is (only into payload blocks it already has; its header section
//! saved in the journal, read and put back through the URL).
//!
//! For a VHDX, the container's own header changes on the first write (a new DataWriteGuid, as
//! the specification requires); the journal also keeps the raw first MiB of the file (the
//! header section) so that undo gives back a file identical to the original, byte for byte.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vdisk::{Disk, Identity};

use crate::error::{io, Error, Result};
use crate::files;

const FORMAT: &str = "winrescue-journal/2";
/// Journals in which a hive file grows (see "Hive files that grow").
const FORMAT_GROWN: &str = "winrescue-journal/3";
/// The longest a journal lets a hive file become: the editor keeps hive bins below 2 GiB
/// (Windows' limit for stable cells), so a longer length is not one winrescue recorded.
const MAX_GROWN_LEN: u64 = 1 << 31;
/// The VHDX header section (file identifier, two headers, two region tables) lies in the first
/// MiB of the file.
const VHDX_HEADER_SECTION: u64 = 1 << 20;
/// A journal larger than this is not one winrescue wrote (a hive edit changes a few pages; a
/// grown hive some megabytes): refuse before reading it into memory.
const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// Where the journal of a write in progress to `anchor` lives (see [`crate::target::Target::anchor`]:
/// the image, the hive file, or a folder's SYSTEM hive). Detection of an interrupted write
/// relies on this being a fixed place.
pub fn pending_path(anchor: &Path) -> PathBuf {
    // One device reached by several names (a symlink, /dev/disk/by-id/...) must find the same
    // journal: resolve the name first.
    let anchor = canonical(anchor).unwrap_or_else(|_| anchor.to_path_buf());
    let name = anchor
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "device".into());
    let shared = |d: PathBuf| {
        // In a shared folder, two devices with the same file name must not share a journal.
        let h = anchor
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        d.join(format!("{name}-{h:016x}.winrescue-journal"))
    };
    match std::env::var_os("WINRESCUE_JOURNAL_DIR") {
        Some(d) => shared(PathBuf::from(d)),
        // A blob has no folder here: its journals go to winrescue's own.
        None if is_url(&anchor) => shared(files::state_dir().join("journals")),
        None if anchor.starts_with("/dev") => shared(PathBuf::from("/var/lib/winrescue")),
        None => files::parent(&anchor).join(format!("{name}.winrescue-journal")),
    }
}

/// Whether `p` is the address of a disk behind a URL (see [`vdisk::remote::address`]).
fn is_url(p: &Path) -> bool {
    p.to_str().is_some_and(vdisk::remote::is_url)
}

/// `p` with symlinks resolved; a URL's address as it is.
fn canonical(p: &Path) -> Result<PathBuf> {
    if is_url(p) {
        return Ok(p.to_path_buf());
    }
    fs::canonicalize(p).map_err(io(p))
}

/// Fails with [`Error::Interrupted`] if a write to `anchor` was interrupted.
pub fn check_no_pending(anchor: &Path) -> Result<()> {
    let p = pending_path(anchor);
    if fs::symlink_metadata(&p).is_ok() {
        return Err(Error::Interrupted {
            path: anchor.to_path_buf(),
            journal: p,
        });
    }
    Ok(())
}

/// The state a journal is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Written before the devices: they may be partly written.
    Pending,
    /// The write finished and was verified.
    Complete,
    /// `undo` put the original bytes back.
    Undone,
}

/// What the process that left a pending journal was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Writing the new bytes (a repair, `reg add`, a redo).
    Apply,
    /// Putting the original bytes back.
    Undo,
}

/// A hive whose clusters a device's ranges belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiveRef {
    /// Disk devices: the byte offset of the partition holding it.
    pub partition_start: Option<u64>,
    /// Its Windows path inside the install (`Windows\System32\config\SYSTEM`), or for the
    /// boot store its path on its partition (`EFI\Microsoft\Boot\BCD`).
    pub path: String,
    /// The hive is the disk's boot store (BCD), found again at undo time on the EFI system
    /// partition or the active partition that starts at `partition_start`, not inside the
    /// Windows installation. Left out of the JSON when false, so that other journals keep
    /// their form (and their authentication code).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub boot_store: bool,
}

/// One device a journal writes: a disk image or block device, or a hive file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Its canonical path.
    pub path: PathBuf,
    /// Disk devices: the container's identity when the write began.
    pub identity: Option<Identity>,
    /// Its length in bytes (the image file, or the hive file).
    pub file_len: u64,
    /// The hives its ranges lie in.
    pub hives: Vec<HiveRef>,
    /// VHDX: the raw first MiB of the file before the write.
    #[serde(with = "hex_opt", default)]
    pub raw_header: Option<Vec<u8>>,
    /// Hive files the write extends: the length after it (`file_len` is the one before). Left
    /// out of the JSON when absent, so that journals without growth keep their format-2 form
    /// (and their authentication code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grown_len: Option<u64>,
    /// Disks behind a URL: the blob's ETag when the write began. (Left out of the JSON when
    /// absent, as `grown_len`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag_before: Option<String>,
    /// Disks behind a URL: the blob's ETag after the write (complete journals only); an undo
    /// is refused when the blob has another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag_after: Option<String>,
}

/// One range of a device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Range {
    /// Index into [`Journal::devices`].
    pub device: usize,
    pub offset: u64,
    /// The bytes there before the write; empty for a range past the old end of a hive file
    /// that grows (see [`DeviceRecord::grown_len`]).
    #[serde(with = "hex")]
    pub before: Vec<u8>,
    #[serde(with = "hex")]
    pub after: Vec<u8>,
}

/// An undo journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub format: String,
    /// The anchor of the target (see [`pending_path`]), canonical.
    pub target: PathBuf,
    /// What the write was for.
    pub what: String,
    /// When it was made (UTC).
    pub created: String,
    pub state: State,
    pub intent: Intent,
    /// A pending journal left by `undo`: the journal being undone or redone.
    #[serde(default)]
    pub origin: Option<PathBuf>,
    pub devices: Vec<DeviceRecord>,
    pub ranges: Vec<Range>,
    /// HMAC-SHA256 of the journal with this field empty, under this machine's journal key.
    #[serde(default)]
    pub mac: String,
}

impl Range {
    /// Whether the range lies past the old end of a file that grows: it had no bytes before.
    fn is_grown(&self) -> bool {
        self.before.is_empty() && !self.after.is_empty()
    }
}

impl Journal {
    fn seal(&mut self, key: &[u8]) -> Result<Vec<u8>> {
        self.mac.clear();
        let body = serde_json::to_vec(self).map_err(|e| self.bad(e.to_string()))?;
        self.mac = hex::to_hex(&hmac(key, &body));
        let mut out = serde_json::to_vec(self).map_err(|e| self.bad(e.to_string()))?;
        out.push(b'\n');
        Ok(out)
    }

    fn verify_mac(&self, key: &[u8], path: &Path) -> Result<()> {
        let mut copy = self.clone();
        copy.mac.clear();
        let body = serde_json::to_vec(&copy).map_err(|e| self.bad(e.to_string()))?;
        let want = hmac(key, &body);
        let got = hex::from_hex(&self.mac).unwrap_or_default();
        // Constant-time comparison: the MAC is a secret's output.
        let same = got.len() == want.len()
            && got.iter().zip(&want).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
        if !same {
            return Err(Error::Journal {
                path: path.into(),
                what: format!(
                    "its authentication code does not verify: it was edited, or written on another machine (the key is {})",
                    files::key_path().display()
                ),
            });
        }
        Ok(())
    }

    fn bad(&self, what: String) -> Error {
        Error::Journal {
            path: self.target.clone(),
            what,
        }
    }
}

fn hmac(key: &[u8], body: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// A device being written: a virtual disk, or a hive file. Both are held open for writing with
/// an exclusive lock (see [`vdisk::lock`]) for as long as this value lives.
pub enum Device {
    Disk(Disk),
    File(PathBuf, File),
}

impl Device {
    /// Opens a hive file for writing in place: through a symlink to the real file (its owner,
    /// mode, links and extended attributes stay as they are), locked, refused when it is
    /// read-only or another process holds or writes it.
    pub fn file(path: &Path) -> Result<Device> {
        let real = fs::canonicalize(path).map_err(io(path))?;
        vdisk::lock::check_writable(&real)?;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&real)
            .map_err(io(&real))?;
        if !f.metadata().map_err(io(&real))?.is_file() {
            return Err(Error::Refused(format!(
                "{} is not a regular file",
                real.display()
            )));
        }
        vdisk::lock::lock_exclusive(&f, &real)?;
        Ok(Device::File(real, f))
    }

    /// The canonical path of the device; for a disk behind a URL, the blob's address without
    /// its SAS.
    pub fn path(&self) -> PathBuf {
        match self {
            Device::Disk(d) => {
                if let Some(address) = d.address() {
                    return PathBuf::from(address);
                }
                let p = d.identity().path;
                fs::canonicalize(&p).unwrap_or(p)
            }
            Device::File(p, _) => p.clone(),
        }
    }

    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        match self {
            Device::Disk(d) => Ok(d.read_at(off, buf)?),
            Device::File(p, f) => f.read_exact_at(buf, off).map_err(io(p)),
        }
    }

    fn write_at(&mut self, off: u64, buf: &[u8]) -> Result<()> {
        match self {
            Device::Disk(d) => Ok(d.write_at(off, buf)?),
            Device::File(p, f) => f.write_all_at(buf, off).map_err(io(p.clone())),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            Device::Disk(d) => Ok(d.flush()?),
            Device::File(p, f) => f.sync_all().map_err(io(p.clone())),
        }
    }

    /// Hive files: sets the length (extends with zeros, or truncates). Disks never change size.
    fn set_len(&mut self, len: u64) -> Result<()> {
        match self {
            Device::Disk(d) => Err(Error::Refused(format!(
                "{} is a disk: winrescue never changes its size",
                d.identity().path.display()
            ))),
            Device::File(p, f) => f.set_len(len).map_err(io(p.clone())),
        }
    }

    pub fn size(&self) -> Result<u64> {
        match self {
            Device::Disk(d) => Ok(d.size()),
            Device::File(p, f) => Ok(f.metadata().map_err(io(p.clone()))?.len()),
        }
    }

    fn file_len(&self) -> Result<u64> {
        match self {
            Device::Disk(d) => Ok(d.identity().file_size),
            Device::File(..) => self.size(),
        }
    }

    fn identity(&self) -> Option<Identity> {
        match self {
            // A disk behind a URL is named by its address, never by its URL.
            Device::Disk(d) => Some(Identity {
                path: self.path(),
                ..d.identity()
            }),
            Device::File(..) => None,
        }
    }

    /// A disk behind a URL: its ETag now.
    fn etag(&self) -> Option<String> {
        match self {
            Device::Disk(d) => d.etag(),
            Device::File(..) => None,
        }
    }
}

/// Test hook: stop after writing this many ranges, as a crash would (the journal stays pending).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashAfter(pub Option<usize>);

/// New bytes for one range of a device, and the bytes the caller read there when it planned
/// them (checked again under the lock just before writing).
#[derive(Debug, Clone)]
pub struct Piece {
    pub offset: u64,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// What to write to one device.
pub struct DeviceWrite {
    pub device: Device,
    /// The hives the pieces lie in (disk devices: their clusters; a hive file: itself).
    pub hives: Vec<HiveRef>,
    /// Written in this order: for a hive, the base block comes last.
    pub pieces: Vec<Piece>,
    /// Hive files only: the length to extend the file to (`None`: it keeps its length). Pieces
    /// at or past the current length have empty `before` bytes.
    pub grow_to: Option<u64>,
}

/// What [`write()`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The completed journal, to give to `winrescue undo`.
    pub undo_journal: PathBuf,
    pub ranges: usize,
    pub bytes: u64,
    /// Problems after the write was complete and verified (a folder that could not be
    /// flushed): the devices hold the new bytes, but the journal's name may not survive a crash.
    pub warnings: Vec<String>,
}

/// Writes `writes` through one journal: all devices or none (after a crash, `undo` or
/// `undo --redo` of the pending journal). `anchor` names the target (see [`pending_path`]).
pub fn write(
    anchor: &Path,
    writes: Vec<DeviceWrite>,
    what: &str,
    crash: CrashAfter,
) -> Result<Written> {
    let anchor = canonical(anchor)?;
    let pending = pending_path(&anchor);
    let mut devices = Vec::with_capacity(writes.len());
    let mut records = Vec::with_capacity(writes.len());
    let mut ranges = Vec::new();
    for (i, w) in writes.into_iter().enumerate() {
        let len = w.device.size()?;
        let grown_len = match w.grow_to {
            None => None,
            Some(n) if n == len => None,
            Some(n) if n < len || n > MAX_GROWN_LEN || matches!(w.device, Device::Disk(_)) => {
                return Err(Error::Refused(format!(
                    "{} cannot be made {n} bytes long (it is {len} bytes; only a hive file grows, up to {MAX_GROWN_LEN} bytes)",
                    w.device.path().display()
                )));
            }
            Some(n) => Some(n),
        };
        for p in &w.pieces {
            let end = p.offset.checked_add(p.after.len() as u64);
            // A range lies wholly below the current end (and replaces bytes), or wholly in the
            // part the file grows by (and replaces nothing).
            let fits = if p.before.is_empty() && p.offset >= len {
                !p.after.is_empty() && end.is_some_and(|e| e <= grown_len.unwrap_or(len))
            } else {
                p.before.len() == p.after.len() && end.is_some_and(|e| e <= len)
            };
            if !fits {
                return Err(Error::Refused(format!(
                    "range 0x{:x}+{} lies past the end of {} ({len} bytes{})",
                    p.offset,
                    p.after.len(),
                    w.device.path().display(),
                    grown_len
                        .map(|g| format!(", growing to {g}"))
                        .unwrap_or_default()
                )));
            }
            if p.before.is_empty() {
                ranges.push(Range {
                    device: i,
                    offset: p.offset,
                    before: Vec::new(),
                    after: p.after.clone(),
                });
                continue;
            }
            let mut now = vec![0u8; p.after.len()];
            w.device.read_at(p.offset, &mut now)?;
            if now != p.before {
                return Err(Error::Refused(format!(
                    "the bytes at 0x{:x} of {} changed after they were read (another writer?): nothing was written",
                    p.offset,
                    w.device.path().display()
                )));
            }
            ranges.push(Range {
                device: i,
                offset: p.offset,
                before: p.before.clone(),
                after: p.after.clone(),
            });
        }
        let raw_header = raw_header(&w.device)?;
        // The bytes above may have come from the cache: the blob itself must still be the one
        // they were read from, or the journal's `before` bytes could be someone else's.
        if let Device::Disk(d) = &w.device {
            d.revalidate()?;
        }
        records.push(DeviceRecord {
            path: w.device.path(),
            identity: w.device.identity(),
            file_len: w.device.file_len()?,
            hives: w.hives,
            raw_header,
            grown_len,
            etag_before: w.device.etag(),
            etag_after: None,
        });
        devices.push(w.device);
    }
    let grows = records.iter().any(|d| d.grown_len.is_some());
    let mut journal = Journal {
        format: if grows { FORMAT_GROWN } else { FORMAT }.into(),
        target: anchor.clone(),
        what: what.into(),
        created: now(),
        state: State::Pending,
        intent: Intent::Apply,
        origin: None,
        devices: records,
        ranges,
        mac: String::new(),
    };
    let key = files::journal_key()?;
    let sealed = journal.seal(&key)?;
    if sealed.len() as u64 > MAX_JOURNAL_BYTES {
        // `undo` would refuse to read it: refuse the write instead, before any byte.
        return Err(Error::Refused(format!(
            "the undo journal would be {} bytes, more than the {MAX_JOURNAL_BYTES} bytes undo reads",
            sealed.len()
        )));
    }
    create_pending(&pending, &anchor, &sealed)?;
    apply(&mut devices, &journal, &pending, true, crash)?;
    journal.state = State::Complete;
    for (rec, d) in journal.devices.iter_mut().zip(&devices) {
        rec.etag_after = d.etag();
    }
    let done = finished_path(&anchor, "undo");
    let mut warnings = Vec::new();
    files::save_new(&done, &journal.seal(&key)?).map_err(|e| after_write(&pending, e))?;
    fs::remove_file(&pending).map_err(|e| after_write(&pending, io(&pending)(e)))?;
    if let Err(e) = files::sync_dir(&pending) {
        warnings.push(e.to_string());
    }
    let bytes = journal.ranges.iter().map(|r| r.after.len() as u64).sum();
    Ok(Written {
        undo_journal: done,
        ranges: journal.ranges.len(),
        bytes,
        warnings,
    })
}

/// Creates the pending journal; an existing one (or anything at its name) means an earlier
/// write was interrupted.
fn create_pending(pending: &Path, anchor: &Path, content: &[u8]) -> Result<()> {
    match files::save_new(pending, content) {
        Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::Interrupted {
                path: anchor.to_path_buf(),
                journal: pending.to_path_buf(),
            })
        }
        Err(e) => {
            // The link may exist while its folder could not be flushed: nothing was written to
            // the devices, so take the journal back.
            if fs::symlink_metadata(pending).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(pending);
            }
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}

/// Writes one side of every range (`after` when `forward`), sets the length of every hive file
/// that grows (the new one before its first range past the old end; the old one after the
/// old bytes are back), flushes, and reads back. A failure from here on leaves the pending
/// journal in place and says so.
fn apply(
    devices: &mut [Device],
    journal: &Journal,
    pending: &Path,
    forward: bool,
    crash: CrashAfter,
) -> Result<()> {
    let mut extended = vec![false; devices.len()];
    for (i, r) in journal.ranges.iter().enumerate() {
        if crash.0 == Some(i) {
            return Err(Error::Journal {
                path: pending.into(),
                what: format!("simulated crash after {i} ranges"),
            });
        }
        if r.is_grown() {
            if !forward {
                // Nothing to put back: the truncation below removes the range.
                continue;
            }
            if !extended[r.device] {
                if let Some(n) = journal.devices[r.device].grown_len {
                    devices[r.device]
                        .set_len(n)
                        .map_err(|e| interrupted(pending, e))?;
                }
                extended[r.device] = true;
            }
        }
        devices[r.device]
            .write_at(r.offset, side(r, forward))
            .map_err(|e| interrupted(pending, e))?;
    }
    if crash.0 == Some(journal.ranges.len()) {
        return Err(Error::Journal {
            path: pending.into(),
            what: "simulated crash before the flush".into(),
        });
    }
    for (d, rec) in devices.iter_mut().zip(&journal.devices) {
        if let Some(grown) = rec.grown_len {
            let want = if forward { grown } else { rec.file_len };
            d.set_len(want).map_err(|e| interrupted(pending, e))?;
        }
    }
    for d in devices.iter_mut() {
        d.flush().map_err(|e| interrupted(pending, e))?;
    }
    for (d, rec) in devices.iter().zip(&journal.devices) {
        let want = match rec.grown_len {
            Some(grown) if forward => grown,
            _ => rec.file_len,
        };
        if rec.identity.is_none() && d.size().map_err(|e| interrupted(pending, e))? != want {
            return Err(interrupted(
                pending,
                Error::Verify {
                    path: rec.path.clone(),
                    what: format!("the file is not {want} bytes long after the write"),
                },
            ));
        }
    }
    for r in &journal.ranges {
        if r.is_grown() && !forward {
            continue;
        }
        let mut got = vec![0u8; r.after.len()];
        devices[r.device]
            .read_at(r.offset, &mut got)
            .map_err(|e| interrupted(pending, e))?;
        if got != side(r, forward) {
            return Err(interrupted(
                pending,
                Error::Verify {
                    path: journal.devices[r.device].path.clone(),
                    what: format!(
                        "the range at 0x{:x} does not read back as written",
                        r.offset
                    ),
                },
            ));
        }
    }
    Ok(())
}

/// The bytes a range should hold: its new ones when `forward`, else its original ones.
fn side(r: &Range, forward: bool) -> &[u8] {
    if forward {
        &r.after
    } else {
        &r.before
    }
}

fn interrupted(pending: &Path, cause: Error) -> Error {
    Error::WriteInterrupted {
        journal: pending.to_path_buf(),
        cause: Box::new(cause),
    }
}

fn after_write(pending: &Path, cause: Error) -> Error {
    Error::WrittenUnrecorded {
        journal: pending.to_path_buf(),
        cause: Box::new(cause),
    }
}

fn raw_header(device: &Device) -> Result<Option<Vec<u8>>> {
    match device {
        // Read through the disk's own backing: the image file, or the blob behind a URL.
        Device::Disk(d) => Ok(d.vhdx_header_section()?),
        Device::File(..) => Ok(None),
    }
}

/// What [`undo`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Undone {
    /// The target's anchor.
    pub target: PathBuf,
    pub ranges: usize,
    /// `true` for a redo (the write was finished), `false` for an undo.
    pub redo: bool,
    /// Nothing needed doing: the bytes were already the wanted ones.
    pub already: bool,
    /// The journal that now records the outcome.
    pub journal: PathBuf,
}

/// Puts the original bytes of a journal back (or, with `redo`, finishes an interrupted write).
pub fn undo(journal_path: &Path, redo: bool) -> Result<Undone> {
    undo_with(journal_path, redo, CrashAfter(None))
}

/// [`undo`] with a crash hook for tests.
pub fn undo_with(journal_path: &Path, redo: bool, crash: CrashAfter) -> Result<Undone> {
    undo_remote(journal_path, redo, &[], crash)
}

/// [`undo`] of a journal that writes disks behind URLs: `urls` gives each blob's URL with a
/// SAS that allows writing (the journal names the blob without its SAS; a URL is matched by its
/// [`vdisk::remote::address`]). A blob whose ETag is no longer the one recorded after the write
/// is refused with [`Error::RemoteChanged`].
pub fn undo_remote(
    journal_path: &Path,
    redo: bool,
    urls: &[String],
    crash: CrashAfter,
) -> Result<Undone> {
    let journal_path = fs::canonicalize(journal_path).map_err(io(journal_path))?;
    let key = files::journal_key()?;
    let j = load(&journal_path, &key)?;
    let bad = |what: String| Error::Journal {
        path: journal_path.clone(),
        what,
    };
    if redo && j.state != State::Pending {
        return Err(bad(format!(
            "a redo finishes an interrupted write; this journal is {:?}",
            j.state
        )));
    }
    let pending = pending_path(&j.target);
    let is_pending = fs::canonicalize(&pending).ok().as_deref() == Some(journal_path.as_path());
    if j.state == State::Pending && !is_pending {
        return Err(bad(format!(
            "it is a pending journal, but not the one of {} (that is {})",
            j.target.display(),
            pending.display()
        )));
    }
    if !is_pending && fs::symlink_metadata(&pending).is_ok() {
        return Err(Error::Interrupted {
            path: j.target.clone(),
            journal: pending,
        });
    }
    check_bounds(&j, &journal_path, urls)?;
    let mut devices = open_devices(&j, &journal_path, urls)?;

    // Only bytes that are still what this journal left may be changed: an undo after later
    // writes (another repair, Windows itself after a boot, another disk at the same path) would
    // mix old pages into a newer hive. A pending journal's ranges may hold either side.
    let lens = devices
        .iter()
        .map(Device::size)
        .collect::<Result<Vec<u64>>>()?;
    let changed = |r: &Range| Error::Changed {
        journal: journal_path.clone(),
        offset: r.offset,
        device: j.devices[r.device].path.clone(),
        newer: newer_journals(&j, &journal_path, &key),
    };
    let mut at_want = true;
    let mut not_after = None;
    for r in &j.ranges {
        let held = holds(&devices[r.device], &j.devices[r.device], lens[r.device], r)?;
        let ok = match held {
            Some(Holds::Before | Holds::After) => true,
            // A grown file whose new range is not written yet: only an interrupted write
            // leaves that.
            Some(Holds::Zeros) => j.state == State::Pending,
            None => false,
        };
        if !ok {
            return Err(changed(r));
        }
        at_want &= held == Some(if redo { Holds::After } else { Holds::Before });
        if held != Some(Holds::After) {
            not_after.get_or_insert(r);
        }
    }
    for (rec, &len) in j.devices.iter().zip(&lens) {
        if let Some(grown) = rec.grown_len {
            at_want &= len == if redo { grown } else { rec.file_len };
        }
    }
    if j.state == State::Complete && !at_want {
        // A complete journal's ranges must all still hold its new bytes (checked one by one
        // above against either side, so that "already undone" is recognised).
        if let Some(r) = not_after {
            return Err(changed(r));
        }
    }
    if j.state == State::Undone && !at_want {
        return Err(bad(
            "it was undone, but the bytes are no longer the original ones (written again since)"
                .into(),
        ));
    }
    if at_want && !is_pending && !needs_header(&j, redo) {
        let mut done = j.clone();
        if done.state != State::Undone {
            done.state = State::Undone;
            files::save(&journal_path, &done.seal(&key)?)?;
        }
        return Ok(Undone {
            target: j.target.clone(),
            ranges: j.ranges.len(),
            redo,
            already: true,
            journal: journal_path,
        });
    }

    // Leave a pending journal before the first byte, so that an interrupted undo is resolved
    // like an interrupted write.
    let mut record = j.clone();
    if !is_pending {
        record.state = State::Pending;
        record.intent = if redo { Intent::Apply } else { Intent::Undo };
        record.origin = Some(journal_path.clone());
        create_pending(&pending, &j.target, &record.seal(&key)?)?;
    }
    apply(&mut devices, &record, &pending, redo, crash)?;
    if !redo {
        for (d, dev) in j.devices.iter().zip(devices) {
            if let (Some(raw), Device::Disk(disk)) = (&d.raw_header, dev) {
                // Put the container header back as it was (the undo's own writes gave it a
                // new DataWriteGuid): the image becomes the original, byte for byte. Through
                // the handle that wrote the payload, still locked (a file) or still guarded
                // by the ETag its own writes gave (a blob).
                disk.restore_vhdx_header_section(raw)
                    .map_err(|e| interrupted(&pending, e.into()))?;
            }
        }
    }

    record.state = if redo { State::Complete } else { State::Undone };
    record.intent = Intent::Apply;
    let outcome = if is_pending {
        let p = finished_path(&j.target, if redo { "undo" } else { "undone" });
        record.origin = None;
        files::save_new(&p, &record.seal(&key)?).map_err(|e| after_write(&pending, e))?;
        // The journal this undo started from (if any) now tells the truth too.
        if let Some(origin) = &j.origin {
            if let Ok(mut o) = load(origin, &key) {
                o.state = record.state;
                let _ = files::save(origin, &o.seal(&key)?);
            }
        }
        p
    } else {
        record.origin = None;
        files::save(&journal_path, &record.seal(&key)?).map_err(|e| after_write(&pending, e))?;
        journal_path.clone()
    };
    fs::remove_file(&pending).map_err(|e| after_write(&pending, io(&pending)(e)))?;
    files::sync_dir(&pending)?;
    Ok(Undone {
        target: j.target.clone(),
        ranges: j.ranges.len(),
        redo,
        already: false,
        journal: outcome,
    })
}

/// Which side of its journal a range holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Before,
    After,
    /// A range past the old end of a grown file that reads as zeros: the file was extended but
    /// the range not written yet.
    Zeros,
}

/// What `r` holds on `device`, whose length is `len` (`None`: neither side: changed since).
fn holds(device: &Device, rec: &DeviceRecord, len: u64, r: &Range) -> Result<Option<Holds>> {
    if r.is_grown() && len == rec.file_len {
        // The file has its old length: the range does not exist, as before the write.
        return Ok(Some(Holds::Before));
    }
    let mut now = vec![0u8; r.after.len()];
    device.read_at(r.offset, &mut now)?;
    Ok(if now == r.after {
        Some(Holds::After)
    } else if r.is_grown() {
        now.iter().all(|&b| b == 0).then_some(Holds::Zeros)
    } else if now == r.before {
        Some(Holds::Before)
    } else {
        None
    })
}

/// Whether an undo whose ranges are already original must still restore a VHDX header.
fn needs_header(j: &Journal, redo: bool) -> bool {
    !redo && j.state != State::Undone && j.devices.iter().any(|d| d.raw_header.is_some())
}

/// Reads and authenticates a journal.
fn load(path: &Path, key: &[u8]) -> Result<Journal> {
    let bad = |what: String| Error::Journal {
        path: path.into(),
        what,
    };
    let f = files::open_nofollow(path)?;
    let meta = f.metadata().map_err(io(path))?;
    if !meta.is_file() || meta.len() > MAX_JOURNAL_BYTES {
        return Err(bad(format!(
            "not a winrescue journal ({} bytes, not a regular file or too large)",
            meta.len()
        )));
    }
    let mut text = String::new();
    f.take(MAX_JOURNAL_BYTES)
        .read_to_string(&mut text)
        .map_err(io(path))?;
    let j: Journal =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a winrescue journal: {e}")))?;
    let grows = j.devices.iter().any(|d| d.grown_len.is_some());
    if j.format != if grows { FORMAT_GROWN } else { FORMAT } {
        return Err(bad(format!("unknown format {:?}", j.format)));
    }
    j.verify_mac(key, path)?;
    Ok(j)
}

/// Every range must lie where winrescue writes: inside the clusters of a hive the journal
/// names (found again on the disk now), or inside a hive file. The MAC already says that this
/// machine's winrescue wrote the journal; this keeps even such a journal from reaching other
/// bytes if the disk at that path is another one now.
fn check_bounds(j: &Journal, journal_path: &Path, urls: &[String]) -> Result<()> {
    let bad = |what: String| Error::Journal {
        path: journal_path.into(),
        what,
    };
    for (i, d) in j.devices.iter().enumerate() {
        let ranges = j.ranges.iter().filter(|r| r.device == i);
        // Only a hive file grows, never shrinks, and never past what the editor can make.
        if let Some(g) = d.grown_len {
            if d.identity.is_some() || g <= d.file_len || g > MAX_GROWN_LEN {
                return Err(bad(format!(
                    "it makes {} {g} bytes long (from {}): not a growth winrescue records",
                    d.path.display(),
                    d.file_len
                )));
            }
        }
        if d.grown_len.is_some() {
            // Undo truncates the file to `file_len`: only where the old hive, whose base block
            // the journal puts back, ends at or before it.
            let old_end = ranges
                .clone()
                .find(|r| r.offset == 0)
                .and_then(|r| regf::BaseBlock::parse(&r.before).ok())
                .map(|b| regf::BASE_BLOCK_SIZE as u64 + u64::from(b.hive_bins_size));
            if old_end.is_none_or(|e| e > d.file_len) {
                return Err(bad(format!(
                    "it would truncate {} to {} bytes, but does not restore a hive that fits in them",
                    d.path.display(),
                    d.file_len
                )));
            }
        }
        for r in ranges.clone() {
            if !r.is_grown() && r.before.len() != r.after.len() {
                return Err(bad(format!(
                    "range 0x{:x} of {} has {} bytes before and {} after",
                    r.offset,
                    d.path.display(),
                    r.before.len(),
                    r.after.len()
                )));
            }
        }
        match &d.identity {
            None => {
                let mut head = [0u8; 4];
                let ok = files::open_nofollow(&d.path)
                    .ok()
                    .and_then(|f| f.read_exact_at(&mut head, 0).ok())
                    .is_some();
                if !ok || &head != b"regf" {
                    return Err(bad(format!(
                        "{} is not a registry hive: a journal only writes hives",
                        d.path.display()
                    )));
                }
                for r in ranges {
                    // Ranges that replace bytes lie below the old length; ranges of the grown
                    // part between the old length and the new one.
                    let (from, to) = if r.is_grown() {
                        (d.file_len, d.grown_len.unwrap_or(d.file_len))
                    } else {
                        (0, d.file_len)
                    };
                    if r.offset < from
                        || r.offset
                            .checked_add(r.after.len() as u64)
                            .is_none_or(|e| e > to)
                    {
                        return Err(bad(format!(
                            "range 0x{:x} lies outside {}",
                            r.offset,
                            d.path.display()
                        )));
                    }
                }
            }
            Some(_) => {
                let bounds =
                    crate::target::hive_extents(&locate(d, journal_path, urls)?, &d.hives)?;
                let allocated = bounds.allocated(
                    ranges
                        .clone()
                        .map(|r| (r.offset, r.before.as_slice(), r.after.as_slice())),
                );
                for r in ranges {
                    let end = r.offset.checked_add(r.after.len() as u64);
                    let inside = !r.is_grown()
                        && end.is_some_and(|end| {
                            bounds
                                .extents
                                .iter()
                                .chain(&allocated)
                                .any(|&(s, l)| r.offset >= s && end <= s + l)
                        });
                    if !inside {
                        return Err(bad(format!(
                            "range 0x{:x} of {} is not inside the clusters of the hives it names ({}): refused",
                            r.offset,
                            d.path.display(),
                            d.hives.iter().map(|h| h.path.as_str()).collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
                if let Some(raw) = &d.raw_header {
                    if raw.len() as u64 > VHDX_HEADER_SECTION || !raw.starts_with(b"vhdxfile") {
                        return Err(bad("its saved VHDX header is not one".into()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Where to open a journal's device: its path, or for a blob the URL of `urls` that names it.
fn locate(d: &DeviceRecord, journal_path: &Path, urls: &[String]) -> Result<PathBuf> {
    if !is_url(&d.path) {
        return Ok(d.path.clone());
    }
    let blob = d.path.to_string_lossy();
    urls.iter()
        .find(|u| vdisk::remote::address(u) == blob)
        .map(PathBuf::from)
        .ok_or_else(|| Error::NeedsUrl {
            journal: journal_path.into(),
            blob: blob.into_owned(),
        })
}

/// Opens the journal's devices for writing and checks they are the ones it was made for.
fn open_devices(j: &Journal, journal_path: &Path, urls: &[String]) -> Result<Vec<Device>> {
    let mut out = Vec::with_capacity(j.devices.len());
    for d in &j.devices {
        let dev = match &d.identity {
            Some(id) => {
                let disk = Disk::open_rw(locate(d, journal_path, urls)?)?;
                // A complete write recorded the blob's ETag after it: any other ETag now means
                // someone else wrote the blob since (bytes elsewhere in it included), and
                // putting old pages back would mix two versions of the disk.
                if let (State::Complete, Some(recorded)) = (j.state, &d.etag_after) {
                    let now = disk.etag().unwrap_or_default();
                    if &now != recorded {
                        return Err(Error::RemoteChanged {
                            journal: journal_path.into(),
                            blob: d.path.display().to_string(),
                            etags: Box::new((recorded.clone(), now)),
                        });
                    }
                }
                let now = disk.identity();
                if now.size != id.size || now.kind != id.kind || now.unique_id != id.unique_id {
                    return Err(Error::Journal {
                        path: journal_path.into(),
                        what: format!(
                            "{} is not the disk this journal was made for (size, format or id differ)",
                            d.path.display()
                        ),
                    });
                }
                Device::Disk(disk)
            }
            None => {
                let dev = Device::file(&d.path)?;
                // A file that grows may be at either length (a write or an undo stopped part
                // way); any other length means someone else changed it.
                let len = dev.size()?;
                if len != d.file_len && Some(len) != d.grown_len {
                    return Err(Error::Journal {
                        path: journal_path.into(),
                        what: format!(
                            "{} changed size since the journal was made ({len} bytes, not {}{})",
                            d.path.display(),
                            d.file_len,
                            d.grown_len.map(|g| format!(" or {g}")).unwrap_or_default()
                        ),
                    });
                }
                dev
            }
        };
        out.push(dev);
    }
    Ok(out)
}

/// Complete journals of the same target, made after `j`, that wrote some of the same bytes:
/// they must be undone first.
fn newer_journals(j: &Journal, journal_path: &Path, key: &[u8]) -> Vec<PathBuf> {
    let pending = pending_path(&j.target);
    let prefix = pending
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(".winrescue-journal")
                .to_string()
        })
        .unwrap_or_default();
    let Ok(rd) = fs::read_dir(files::parent(&pending)) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = rd
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("{prefix}.winrescue-undo-")) && n.ends_with(".json")
        })
        .map(|e| e.path())
        .filter(|p| fs::canonicalize(p).ok().as_deref() != Some(journal_path))
        .filter_map(|p| load(&p, key).ok().map(|o| (o, p)))
        .filter(|(o, _)| {
            o.target == j.target && o.state == State::Complete && o.created >= j.created
        })
        .filter(|(o, _)| {
            o.ranges.iter().any(|a| {
                j.ranges.iter().any(|b| {
                    o.devices[a.device].path == j.devices[b.device].path
                        && a.offset < b.offset + b.after.len() as u64
                        && b.offset < a.offset + a.after.len() as u64
                })
            })
        })
        .map(|(o, p)| (o.created, p))
        .collect();
    found.sort();
    found.into_iter().rev().map(|(_, p)| p).collect()
}

/// `<anchor>.winrescue-<tag>-<time>.json`, next to the pending journal.
fn finished_path(anchor: &Path, tag: &str) -> PathBuf {
    let pending = pending_path(anchor);
    let base = pending
        .to_string_lossy()
        .trim_end_matches(".winrescue-journal")
        .to_string();
    let stamp = now().replace([':', '-'], "").replace('.', "-");
    let mut p = PathBuf::from(format!("{base}.winrescue-{tag}-{stamp}.json"));
    let mut n = 1;
    while fs::symlink_metadata(&p).is_ok() {
        p = PathBuf::from(format!("{base}.winrescue-{tag}-{stamp}-{n}.json"));
        n += 1;
    }
    p
}

fn now() -> String {
    let iso = regf::time::filetime_to_iso(regf::time::filetime_now());
    iso.get(..19).map(|s| format!("{s}Z")).unwrap_or(iso)
}

/// Hex encoding for byte fields (readable, diffable journals).
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        from_hex(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    pub fn to_hex(b: &[u8]) -> String {
        const H: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(b.len() * 2);
        for x in b {
            s.push(H[usize::from(x >> 4)] as char);
            s.push(H[usize::from(x & 15)] as char);
        }
        s
    }

    pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
        let b = s.as_bytes();
        if !b.len().is_multiple_of(2) {
            return Err("odd hex length".into());
        }
        let digit = |c: u8| (c as char).to_digit(16);
        b.chunks_exact(2)
            .enumerate()
            .map(|(i, p)| match (digit(p[0]), digit(p[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!("bad hex at {}", 2 * i)),
            })
            .collect()
    }
}

mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_some(&super::hex::to_hex(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::hex::from_hex(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
