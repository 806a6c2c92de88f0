//! The one place that writes to a disk or hive file: every write goes through an undo journal.
//!
//! # Protocol
//! 1. Refuse if an earlier write to the same device was interrupted (its journal is still at
//!    [`pending_path`]).
//! 2. Read the bytes about to be overwritten, and write a journal holding, for every range, the
//!    original bytes and the new ones, plus the device's identity; fsync it and its folder.
//! 3. Write the ranges, flush the device, read every range back and compare. (A plain file, a
//!    hive in a folder, is instead replaced as a whole through a temporary file and a rename.)
//! 4. Mark the journal complete and rename it to `<device>.winrescue-undo-<time>.json`: the file
//!    `winrescue undo` takes to put the original bytes back.
//!
//! A crash anywhere leaves the device either untouched, fully written, or partly written with
//! the journal still pending: `winrescue undo JOURNAL` then restores the original bytes, and
//! `winrescue undo --redo JOURNAL` finishes the write. Both are idempotent.
//!
//! For a VHDX, the container's own header changes on the first write (a new DataWriteGuid, as
//! the specification requires); the journal also keeps the raw first MiB of the file (the
//! header section) so that undo gives back a file identical to the original, byte for byte.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vdisk::{ContainerKind, Disk, Identity};

use crate::error::{io, Error, Result};

const FORMAT: &str = "winrescue-journal/1";
/// The VHDX header section (file identifier, two headers, two region tables) lies in the first
/// MiB of the file.
const VHDX_HEADER_SECTION: u64 = 1 << 20;

/// Where the journal of a write in progress to `device` lives. Detection of an interrupted
/// write relies on this being a fixed place.
pub fn pending_path(device: &Path) -> PathBuf {
    // One device reached by several names (a symlink, /dev/disk/by-id/...) must find the same
    // journal: resolve the name first.
    let device = fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let name = device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "device".into());
    let shared = |d: PathBuf| {
        // In a shared folder, two devices with the same file name must not share a journal.
        let h = device
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        d.join(format!("{name}-{h:016x}.winrescue-journal"))
    };
    match std::env::var_os("WINRESCUE_JOURNAL_DIR") {
        Some(d) => shared(PathBuf::from(d)),
        None if device.starts_with("/dev") => shared(PathBuf::from("/var/lib/winrescue")),
        None => device
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(format!("{name}.winrescue-journal")),
    }
}

/// Fails with [`Error::Interrupted`] if a write to `device` was interrupted.
pub fn check_no_pending(device: &Path) -> Result<()> {
    let p = pending_path(device);
    if p.exists() {
        return Err(Error::Interrupted {
            path: device.to_path_buf(),
            journal: p,
        });
    }
    Ok(())
}

/// The state a journal is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Written before the device: the device may be partly written.
    Pending,
    /// The write finished and was verified.
    Complete,
    /// `undo` put the original bytes back.
    Undone,
}

/// One range of the device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Range {
    pub offset: u64,
    #[serde(with = "hex")]
    pub before: Vec<u8>,
    #[serde(with = "hex")]
    pub after: Vec<u8>,
}

/// An undo journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub format: String,
    /// The device written: a disk image, block device, or hive file.
    pub device: PathBuf,
    /// For disk images and devices: the container's identity when the write began.
    pub identity: Option<Identity>,
    /// For plain files: their length.
    pub file_len: Option<u64>,
    /// What the write was for.
    pub what: String,
    /// When it was made (UTC).
    pub created: String,
    pub state: State,
    pub ranges: Vec<Range>,
    /// VHDX: the raw first MiB of the file before the write.
    #[serde(with = "hex_opt", default)]
    pub raw_header: Option<Vec<u8>>,
}

/// A device being written: a virtual disk or a plain file.
pub enum Device {
    Disk(Disk),
    File(PathBuf, fs::File),
}

impl Device {
    /// Opens a plain file (a hive) for writing.
    pub fn file(path: &Path) -> Result<Device> {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        Ok(Device::File(path.to_path_buf(), f))
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()> {
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

    fn len(&self) -> Result<u64> {
        match self {
            Device::Disk(d) => Ok(d.size()),
            Device::File(p, f) => Ok(f.metadata().map_err(io(p.clone()))?.len()),
        }
    }
}

/// Test hook: stop after writing this many ranges, as a crash would (the journal stays pending).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashAfter(pub Option<usize>);

/// What [`write()`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The completed journal, to give to `winrescue undo`.
    pub undo_journal: PathBuf,
    pub ranges: usize,
    pub bytes: u64,
}

/// Writes `pieces` (device offset, new bytes) to `device` at `path` through a journal.
pub fn write(
    path: &Path,
    mut device: Device,
    pieces: &[(u64, Vec<u8>)],
    what: &str,
    crash: CrashAfter,
) -> Result<Written> {
    check_no_pending(path)?;
    let len = device.len()?;
    let mut ranges = Vec::with_capacity(pieces.len());
    // Written in the caller's order: for a hive, the base block comes last (see
    // `Target::plan_hive_write`).
    for (off, data) in pieces {
        if off
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > len)
        {
            return Err(Error::Refused(format!(
                "range 0x{off:x}+{} lies past the end of {} ({len} bytes)",
                data.len(),
                path.display()
            )));
        }
        let mut before = vec![0u8; data.len()];
        device.read_at(*off, &mut before)?;
        ranges.push(Range {
            offset: *off,
            before,
            after: data.clone(),
        });
    }
    let (identity, file_len) = match &device {
        Device::Disk(d) => (Some(d.identity()), None),
        Device::File(..) => (None, Some(len)),
    };
    let raw_header = match &identity {
        Some(id)
            if matches!(
                id.kind,
                ContainerKind::VhdxFixed | ContainerKind::VhdxDynamic
            ) =>
        {
            let f = fs::File::open(path).map_err(io(path))?;
            let mut buf = vec![0u8; VHDX_HEADER_SECTION.min(id.file_size) as usize];
            f.read_exact_at(&mut buf, 0).map_err(io(path))?;
            Some(buf)
        }
        _ => None,
    };
    let mut journal = Journal {
        format: FORMAT.into(),
        device: path.to_path_buf(),
        identity,
        file_len,
        what: what.into(),
        created: now(),
        state: State::Pending,
        ranges,
        raw_header,
    };
    let pending = pending_path(path);
    save(&pending, &journal)?;

    if let Device::File(p, f) = &device {
        // A plain file (a hive in a folder) is replaced atomically instead: the new content goes
        // to a temporary file beside it, is flushed, and is renamed over the old one, so a crash
        // leaves the old file or the new one, never a mix.
        let mut content = vec![0u8; len as usize];
        f.read_exact_at(&mut content, 0).map_err(io(p))?;
        for r in &journal.ranges {
            content[r.offset as usize..r.offset as usize + r.after.len()].copy_from_slice(&r.after);
        }
        if crash.0.is_some_and(|k| k < journal.ranges.len()) {
            return Err(Error::Journal {
                path: pending,
                what: "simulated crash before the rename".into(),
            });
        }
        let p = p.clone();
        drop(device);
        replace_file(&p, &content)?;
        device = Device::file(&p)?;
    } else {
        for (i, r) in journal.ranges.iter().enumerate() {
            if crash.0 == Some(i) {
                return Err(Error::Journal {
                    path: pending,
                    what: format!("simulated crash after {i} ranges"),
                });
            }
            device.write_at(r.offset, &r.after)?;
        }
    }
    if crash.0 == Some(journal.ranges.len()) {
        return Err(Error::Journal {
            path: pending,
            what: "simulated crash before the flush".into(),
        });
    }
    device.flush()?;
    verify(&device, &journal.ranges, |r| &r.after, path)?;
    journal.state = State::Complete;
    let done = finished_path(path, "undo");
    save(&done, &journal)?;
    fs::remove_file(&pending).map_err(io(&pending))?;
    sync_dir(&done);
    let bytes = journal.ranges.iter().map(|r| r.after.len() as u64).sum();
    Ok(Written {
        undo_journal: done,
        ranges: journal.ranges.len(),
        bytes,
    })
}

/// What [`undo`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Undone {
    pub device: PathBuf,
    pub ranges: usize,
    /// `true` for a redo (the write was finished), `false` for an undo.
    pub redo: bool,
}

/// Puts the original bytes of a journal back (or, with `redo`, finishes an interrupted write).
pub fn undo(journal_path: &Path, redo: bool) -> Result<Undone> {
    let text = fs::read_to_string(journal_path).map_err(io(journal_path))?;
    let mut j: Journal = serde_json::from_str(&text).map_err(|e| Error::Journal {
        path: journal_path.into(),
        what: format!("not a winrescue journal: {e}"),
    })?;
    if j.format != FORMAT {
        return Err(Error::Journal {
            path: journal_path.into(),
            what: format!("unknown format {:?}", j.format),
        });
    }
    if redo && j.state != State::Pending {
        return Err(Error::Journal {
            path: journal_path.into(),
            what: format!(
                "--redo finishes an interrupted write; this journal is {:?}",
                j.state
            ),
        });
    }
    if !redo && j.state == State::Undone {
        return Err(Error::Journal {
            path: journal_path.into(),
            what: "already undone".into(),
        });
    }
    let mut device = match &j.identity {
        Some(id) => {
            let d = Disk::open_rw(&j.device)?;
            let now = d.identity();
            if now.size != id.size || now.kind != id.kind || now.unique_id != id.unique_id {
                return Err(Error::Journal {
                    path: journal_path.into(),
                    what: format!(
                        "{} is not the disk this journal was made for (size, format or id differ)",
                        j.device.display()
                    ),
                });
            }
            Device::Disk(d)
        }
        None => {
            let d = Device::file(&j.device)?;
            if Some(d.len()?) != j.file_len {
                return Err(Error::Journal {
                    path: journal_path.into(),
                    what: format!(
                        "{} changed size since the journal was made",
                        j.device.display()
                    ),
                });
            }
            d
        }
    };
    // Only bytes that are still what this journal left may be changed: an undo after later
    // writes (another repair, Windows itself after a boot, another disk at the same path) would
    // mix old pages into a newer hive. A pending journal's ranges may hold either side.
    let pending_here = pending_path(&j.device);
    if journal_path != pending_here && pending_here.exists() {
        return Err(Error::Interrupted {
            path: j.device.clone(),
            journal: pending_here,
        });
    }
    for r in &j.ranges {
        let mut now = vec![0u8; r.after.len()];
        device.read_at(r.offset, &mut now)?;
        let ok = match j.state {
            State::Complete => now == r.after,
            State::Pending => now == r.after || now == r.before,
            State::Undone => false,
        };
        if !ok {
            return Err(Error::Journal {
                path: journal_path.into(),
                what: format!(
                    "the bytes at 0x{:x} of {} are no longer what this journal wrote (changed since: a later write, or Windows ran); nothing was changed",
                    r.offset,
                    j.device.display()
                ),
            });
        }
    }
    // In the journal's order: the hive's base block comes last (see `write`).
    for r in &j.ranges {
        device.write_at(r.offset, if redo { &r.after } else { &r.before })?;
    }
    device.flush()?;
    verify(
        &device,
        &j.ranges,
        |r| if redo { &r.after } else { &r.before },
        &j.device,
    )?;
    drop(device);
    if let (false, Some(raw)) = (redo, &j.raw_header) {
        // Put the container header back as it was (the undo's own writes gave it a new
        // DataWriteGuid): the image becomes the original, byte for byte.
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&j.device)
            .map_err(io(&j.device))?;
        f.write_all_at(raw, 0).map_err(io(&j.device))?;
        f.sync_all().map_err(io(&j.device))?;
    }
    j.state = if redo { State::Complete } else { State::Undone };
    let pending = pending_path(&j.device);
    let target = if journal_path == pending {
        finished_path(&j.device, if redo { "undo" } else { "undone" })
    } else {
        journal_path.to_path_buf()
    };
    save(&target, &j)?;
    if journal_path == pending && target != pending {
        fs::remove_file(&pending).map_err(io(&pending))?;
    }
    Ok(Undone {
        device: j.device.clone(),
        ranges: j.ranges.len(),
        redo,
    })
}

fn verify(
    device: &Device,
    ranges: &[Range],
    want: impl Fn(&Range) -> &Vec<u8>,
    path: &Path,
) -> Result<()> {
    for r in ranges {
        let mut got = vec![0u8; r.after.len()];
        device.read_at(r.offset, &mut got)?;
        if &got != want(r) {
            return Err(Error::Verify {
                path: path.into(),
                what: format!(
                    "the range at 0x{:x} does not read back as written",
                    r.offset
                ),
            });
        }
    }
    Ok(())
}

/// Replaces a file atomically, keeping its permissions: temporary file in the same folder,
/// fsync, rename, fsync of the folder.
fn replace_file(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.winrescue-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let perms = fs::metadata(path).map_err(io(path))?.permissions();
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(content).map_err(io(&tmp))?;
    f.set_permissions(perms).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path);
    Ok(())
}

/// Writes a journal atomically and durably (temporary file, fsync, rename, fsync folder).
fn save(path: &Path, j: &Journal) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    serde_json::to_writer(&mut f, j).map_err(|e| Error::Journal {
        path: path.into(),
        what: e.to_string(),
    })?;
    f.write_all(b"\n").map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path);
    Ok(())
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// `<device>.winrescue-<tag>-<time>.json`, next to the pending journal.
fn finished_path(device: &Path, tag: &str) -> PathBuf {
    let pending = pending_path(device);
    let base = pending
        .to_string_lossy()
        .trim_end_matches(".winrescue-journal")
        .to_string();
    let stamp = now().replace([':', '-'], "").replace('.', "-");
    let mut p = PathBuf::from(format!("{base}.winrescue-{tag}-{stamp}.json"));
    let mut n = 1;
    while p.exists() {
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
