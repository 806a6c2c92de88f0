//! Test helpers: a partition slice over a disk image file, partition tables read independently of
//! the crate under test, and the ntfs-3g tools as oracles.
#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One partition of a disk image: byte 0 of the slice is the partition's first byte.
pub struct Slice {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Slice {
    pub fn open(path: &Path, start: u64, len: u64, write: bool) -> Slice {
        let file = File::options()
            .read(true)
            .write(write)
            .open(path)
            .expect("open disk image");
        Slice {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Slice {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.file.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Slice {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "past the partition end",
            ));
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let put = self.file.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Slice {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(n) => self.len.checked_add_signed(n),
            SeekFrom::Current(n) => self.pos.checked_add_signed(n),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad seek"))?;
        Ok(self.pos)
    }
}

/// A partition: byte offset and length within the disk image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub start: u64,
    pub len: u64,
}

fn u32_at(b: &[u8], o: usize) -> u64 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The partitions of a disk image with 512-byte sectors, read from its GPT (behind a protective
/// MBR) or its MBR: a minimal parser kept here so these tests do not depend on `vdisk`.
pub fn partitions(image: &Path) -> Vec<Part> {
    let mut f = File::open(image).unwrap();
    let mut head = vec![0u8; 34 * 512];
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head[510..512], &[0x55, 0xaa], "no MBR signature");
    let mbr: Vec<(u8, u64, u64)> = (0..4)
        .map(|i| {
            let e = 446 + 16 * i;
            (head[e + 4], u32_at(&head, e + 8), u32_at(&head, e + 12))
        })
        .filter(|(ty, _, count)| *ty != 0 && *count != 0)
        .collect();
    if mbr.first().map(|e| e.0) != Some(0xee) {
        return mbr
            .iter()
            .map(|&(_, start, count)| Part {
                start: start * 512,
                len: count * 512,
            })
            .collect();
    }
    let gpt = &head[512..1024];
    assert_eq!(&gpt[0..8], b"EFI PART");
    let entries_lba = u64_at(gpt, 0x48);
    let count = u32_at(gpt, 0x50) as usize;
    let size = u32_at(gpt, 0x54) as usize;
    let mut table = vec![0u8; count * size];
    f.seek(SeekFrom::Start(entries_lba * 512)).unwrap();
    f.read_exact(&mut table).unwrap();
    table
        .chunks(size)
        .filter(|e| e[0..16].iter().any(|&b| b != 0))
        .map(|e| {
            let first = u64_at(e, 32);
            let last = u64_at(e, 40);
            Part {
                start: first * 512,
                len: (last - first + 1) * 512,
            }
        })
        .collect()
}

/// `sfdisk --json` as an independent check of [`partitions`], when sfdisk is installed.
pub fn sfdisk_partitions(image: &Path) -> Option<Vec<Part>> {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(image)
        .output()
        .ok()?;
    assert!(out.status.success(), "sfdisk --json failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts = v["partitiontable"]["partitions"].as_array().unwrap();
    Some(
        parts
            .iter()
            .map(|p| Part {
                start: p["start"].as_u64().unwrap() * 512,
                len: p["size"].as_u64().unwrap() * 512,
            })
            .collect(),
    )
}

/// The path of an ntfs-3g tool, `None` if it is not installed. With `CI` set, a missing tool
/// fails the test: CI must run the oracles.
pub fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed but CI is set: install ntfs-3g (Debian package) for the oracles");
    }
    eprintln!("{name} not installed: oracle skipped");
    None
}

/// Copies one partition out of a disk image into its own file (the ntfs-3g tools take a volume).
pub fn extract(image: &Path, part: Part, to: &Path) {
    let mut s = Slice::open(image, part.start, part.len, false);
    let mut out = File::create(to).unwrap();
    io::copy(&mut s, &mut out).unwrap();
}

/// `ntfscat VOLUME PATH`, `None` without ntfscat.
pub fn ntfscat(volume: &Path, path: &str) -> Option<Vec<u8>> {
    let bin = tool("ntfscat")?;
    let out = Command::new(bin).arg(volume).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "ntfscat {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// `ntfsfix -n VOLUME`: `Some(true)` when ntfsfix finds nothing to fix.
pub fn ntfsfix_clean(volume: &Path) -> Option<(bool, String)> {
    let bin = tool("ntfsfix")?;
    let out = Command::new(bin).arg("-n").arg(volume).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// The "Volume Flags" line that `ntfsinfo -m` prints (or all its output when there is none).
pub fn ntfsinfo_volume_flags(volume: &Path) -> Option<String> {
    let bin = tool("ntfsinfo")?;
    let out = Command::new(bin).arg("-m").arg(volume).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        text.lines()
            .find(|l| l.contains("Volume Flags"))
            .map(|l| l.trim().to_string())
            .unwrap_or(text),
    )
}

/// `fixtures::path` behind a lock: its cache writes a temporary file named after the process id,
/// so two test threads decompressing the same fixture at once race on it.
pub fn fx_path(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    fixtures::path(name)
}

/// The decompressed bytes of a fixture (see [`fx_path`]).
pub fn fx_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fx_path(name)).unwrap()
}

/// A private copy of a fixture in a temp dir.
pub fn copy_fixture(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(Path::new(name).file_name().unwrap());
    std::fs::copy(fx_path(name), &to).unwrap();
    to
}

pub const GEN2: &str = "images/gen2-gpt-win7-system.raw";
pub const GEN1: &str = "images/gen1-mbr-win10-dirty-system.raw";
pub const EDGE: &str = "images/ntfs-edge-cases.raw";
pub const TESTFS1: &str = "images/ntfs-rs-testfs1";
