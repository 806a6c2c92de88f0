//! Virtual PC / Virtual Server / Hyper-V VHD: fixed, dynamic and differencing images.
//!
//! Sources: Microsoft, "Virtual Hard Disk Image Format Specification", version 1.0
//! (October 2006): "Hard Disk Footer Format", "Dynamic Disk Header Format", "Block Allocation
//! Table and Data Blocks", "Implementing a Differencing Hard Disk". All fields are big-endian.

use std::path::{Path, PathBuf};

use crate::backing::Backing;
use crate::disk::{Disk, OpenOptions};
use crate::error::{Error, Result};
use crate::util::{arr16, be32, be64, end_of, sig_text, Guid};

/// The footer is 512 bytes at the end of every VHD (and copied at offset 0 of dynamic ones).
pub(crate) const FOOTER_LEN: u64 = 512;
const HEADER_LEN: usize = 1024;
const SECTOR: u64 = 512;
/// Largest block accepted: keeps one sector bitmap at 64 KiB. The specification's default is
/// 2 MiB and Hyper-V uses 2 MiB or 512 KiB.
const MAX_BLOCK_SIZE: u64 = 256 << 20;
/// Largest parent locator read: a path, which Windows limits to 32767 UTF-16 units.
const MAX_LOCATOR_LEN: u32 = 64 << 10;
/// Disk types in the footer.
pub(crate) const TYPE_FIXED: u32 = 2;
pub(crate) const TYPE_DYNAMIC: u32 = 3;
pub(crate) const TYPE_DIFFERENCING: u32 = 4;
const UNALLOCATED: u32 = 0xFFFF_FFFF;

/// The one's complement of the byte sum, skipping the 4-byte checksum field at `skip`.
pub(crate) fn checksum(b: &[u8], skip: usize) -> u32 {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < skip || *i >= skip + 4)
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

/// The fields of a footer this crate uses.
#[derive(Debug, Clone)]
pub(crate) struct Footer {
    pub(crate) data_offset: u64,
    pub(crate) current_size: u64,
    pub(crate) disk_type: u32,
    pub(crate) unique_id: Guid,
}

/// Parses a footer read at file offset `offset`; a bad checksum is an error unless `lenient`,
/// then it is returned as a warning.
pub(crate) fn parse_footer(
    b: &[u8],
    offset: u64,
    lenient: bool,
    warnings: &mut Vec<String>,
) -> Result<Footer> {
    if &b[0..8] != b"conectix" {
        return Err(Error::BadSignature {
            structure: "VHD footer",
            offset,
            expected: "conectix",
            actual: sig_text(&b[0..8]),
        });
    }
    let version = be32(b, 12);
    if version >> 16 != 1 {
        return Err(Error::BadField {
            structure: "VHD footer",
            field: "file format version",
            offset,
            expected: "major version 1 (0x00010000)".into(),
            actual: version.into(),
        });
    }
    let stored = be32(b, 64);
    let computed = checksum(b, 64);
    if stored != computed {
        let e = Error::BadChecksum {
            structure: "VHD footer",
            offset,
            stored,
            computed,
        };
        if !lenient {
            return Err(e);
        }
        warnings.push(e.to_string());
    }
    let disk_type = be32(b, 60);
    if !matches!(disk_type, TYPE_FIXED | TYPE_DYNAMIC | TYPE_DIFFERENCING) {
        return Err(Error::BadField {
            structure: "VHD footer",
            field: "disk type",
            offset,
            expected: "2 (fixed), 3 (dynamic) or 4 (differencing)".into(),
            actual: disk_type.into(),
        });
    }
    Ok(Footer {
        data_offset: be64(b, 16),
        current_size: be64(b, 48),
        disk_type,
        unique_id: Guid(arr16(b, 68)),
    })
}

/// Finds and parses the footer of a file already known to hold "conectix" at its end or start.
pub(crate) fn read_footer(
    backing: &Backing,
    lenient: bool,
    warnings: &mut Vec<String>,
) -> Result<Footer> {
    let len = backing.len();
    let mut b = [0u8; FOOTER_LEN as usize];
    let end_offset = len.checked_sub(FOOTER_LEN).ok_or(Error::Truncated {
        structure: "VHD footer",
        offset: 0,
        len: FOOTER_LEN,
        file_size: len,
    })?;
    backing.read_exact_at(&mut b, end_offset, "VHD footer")?;
    match parse_footer(&b, end_offset, lenient, warnings) {
        Ok(f) => Ok(f),
        Err(end_err) => {
            // Dynamic disks keep a copy of the footer at offset 0 precisely for this case.
            backing.read_exact_at(&mut b, 0, "VHD footer copy")?;
            if &b[0..8] != b"conectix" {
                return Err(end_err);
            }
            let f = parse_footer(&b, 0, lenient, warnings)?;
            if f.disk_type == TYPE_FIXED {
                return Err(end_err);
            }
            if !lenient {
                return Err(end_err);
            }
            warnings.push(format!(
                "the footer at the end is unusable ({end_err}); using the copy at offset 0"
            ));
            Ok(f)
        }
    }
}

/// A dynamic or differencing VHD.
#[derive(Debug)]
pub(crate) struct Dynamic {
    size: u64,
    block_size: u64,
    /// Length of the sector bitmap in front of each block (whole sectors).
    bitmap_len: u64,
    bat_offset: u64,
    max_entries: u64,
    /// Data blocks must lie between the end of the metadata and the footer.
    meta_end: u64,
    bat_end: u64,
    data_limit: u64,
    pub(crate) parent: Option<Box<Disk>>,
}

impl Dynamic {
    pub(crate) fn open(
        backing: &Backing,
        footer: &Footer,
        opts: &OpenOptions,
        depth: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Dynamic> {
        let hoff = footer.data_offset;
        let mut h = [0u8; HEADER_LEN];
        backing.read_exact_at(&mut h, hoff, "VHD dynamic disk header")?;
        if &h[0..8] != b"cxsparse" {
            return Err(Error::BadSignature {
                structure: "VHD dynamic disk header",
                offset: hoff,
                expected: "cxsparse",
                actual: sig_text(&h[0..8]),
            });
        }
        let stored = be32(&h, 36);
        let computed = checksum(&h, 36);
        if stored != computed {
            let e = Error::BadChecksum {
                structure: "VHD dynamic disk header",
                offset: hoff,
                stored,
                computed,
            };
            if !opts.lenient {
                return Err(e);
            }
            warnings.push(e.to_string());
        }
        let bat_offset = be64(&h, 16);
        let max_entries = u64::from(be32(&h, 28));
        let block_size = u64::from(be32(&h, 32));
        let bad = |field: &'static str, expected: &str, actual: u64| Error::BadField {
            structure: "VHD dynamic disk header",
            field,
            offset: hoff,
            expected: expected.into(),
            actual,
        };
        if !block_size.is_power_of_two() || !(SECTOR..=MAX_BLOCK_SIZE).contains(&block_size) {
            return Err(bad(
                "block size",
                "a power of two from 512 bytes to 256 MiB",
                block_size,
            ));
        }
        let size = footer.current_size;
        let needed = size.div_ceil(block_size);
        if max_entries < needed {
            return Err(bad(
                "max table entries",
                &format!("at least {needed} for a disk of {size} bytes"),
                max_entries,
            ));
        }
        let bat_end = end_of(bat_offset, max_entries * 4)
            .ok_or_else(|| bad("table offset", "an offset inside the file", bat_offset))?;
        if bat_end > backing.len() {
            return Err(Error::Truncated {
                structure: "VHD block allocation table",
                offset: bat_offset,
                len: max_entries * 4,
                file_size: backing.len(),
            });
        }
        let bitmap_len = (block_size / SECTOR).div_ceil(8).next_multiple_of(SECTOR);
        let mut dynamic = Dynamic {
            size,
            block_size,
            bitmap_len,
            bat_offset,
            max_entries,
            meta_end: hoff + HEADER_LEN as u64,
            bat_end,
            data_limit: backing.len().saturating_sub(FOOTER_LEN),
            parent: None,
        };
        if footer.disk_type == TYPE_DIFFERENCING {
            let parent_id = Guid(arr16(&h, 40));
            let parent_name = utf16_be(&h[64..576]);
            let path = find_parent(backing, &h, &parent_name)?;
            let parent = Disk::open_chained(&path, &opts.read_only(), depth + 1)?;
            let actual = parent.identity().unique_id.unwrap_or(Guid::NIL);
            if actual != parent_id {
                let e = Error::ParentMismatch {
                    child: backing.path().to_path_buf(),
                    parent: path.clone(),
                    expected: parent_id.to_string(),
                    actual: actual.to_string(),
                };
                if !opts.lenient {
                    return Err(e);
                }
                warnings.push(e.to_string());
            }
            warnings.extend(
                parent
                    .warnings()
                    .iter()
                    .map(|w| format!("parent {}: {w}", path.display())),
            );
            dynamic.parent = Some(Box::new(parent));
        }
        Ok(dynamic)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// File offset of block `block`'s sector bitmap, or `None` if the block is unallocated.
    fn block_start(&self, backing: &Backing, block: u64) -> Result<Option<u64>> {
        if block >= self.max_entries {
            // Cannot happen for offsets inside the disk: open() checked max_entries.
            return Err(Error::OutOfRange {
                offset: block * self.block_size,
                len: self.block_size,
                size: self.size,
            });
        }
        let at = self.bat_offset + block * 4;
        let mut e = [0u8; 4];
        backing.read_exact_at(&mut e, at, "VHD block allocation table entry")?;
        let sector = u32::from_be_bytes(e);
        if sector == UNALLOCATED {
            return Ok(None);
        }
        let start = u64::from(sector) * SECTOR;
        let end = start + self.bitmap_len + self.block_size;
        let overlaps_bat = start < self.bat_end && end > self.bat_offset;
        if start < self.meta_end || overlaps_bat {
            return Err(Error::BadField {
                structure: "VHD block allocation table entry",
                field: "block sector",
                offset: at,
                expected: "a block that does not overlap the header or the table".into(),
                actual: sector.into(),
            });
        }
        Ok(Some(start))
    }

    /// Reads the sector bitmap of a block of a differencing disk.
    fn bitmap(&self, backing: &Backing, start: u64) -> Result<Vec<u8>> {
        // bitmap_len <= 64 KiB by MAX_BLOCK_SIZE.
        let mut bm = vec![0u8; self.bitmap_len as usize];
        backing.read_exact_at(&mut bm, start, "VHD sector bitmap")?;
        Ok(bm)
    }

    pub(crate) fn read(&self, backing: &Backing, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = pos / self.block_size;
            let in_block = pos % self.block_size;
            let n = ((self.block_size - in_block) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match (self.block_start(backing, block)?, &self.parent) {
                (None, None) => out.fill(0),
                (None, Some(parent)) => read_parent(parent, pos, out)?,
                (Some(start), None) => {
                    let data = start + self.bitmap_len + in_block;
                    backing.read_exact_at(out, data, "VHD data block")?;
                }
                (Some(start), Some(parent)) => {
                    let bm = self.bitmap(backing, start)?;
                    // Runs of sectors that are either all in this file or all in the parent.
                    let mut i = 0usize;
                    while i < n {
                        let sector = (in_block + i as u64) / SECTOR;
                        let here = bit(&bm, sector);
                        let mut j = i;
                        while j < n && bit(&bm, (in_block + j as u64) / SECTOR) == here {
                            // Jump to the next sector boundary.
                            let next = ((in_block + j as u64) / SECTOR + 1) * SECTOR - in_block;
                            j = (next as usize).min(n);
                        }
                        let part = &mut out[i..j];
                        if here {
                            let data = start + self.bitmap_len + in_block + i as u64;
                            backing.read_exact_at(part, data, "VHD data block")?;
                        } else {
                            read_parent(parent, pos + i as u64, part)?;
                        }
                        i = j;
                    }
                }
            }
            done += n;
        }
        Ok(())
    }

    pub(crate) fn write(&self, backing: &Backing, offset: u64, buf: &[u8]) -> Result<()> {
        // Check every block first so that a refused write changes nothing.
        let mut plan = Vec::new();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = pos / self.block_size;
            let in_block = pos % self.block_size;
            let n = ((self.block_size - in_block) as usize).min(buf.len() - done);
            let refuse = |state: &'static str| Error::WriteToUnallocated {
                offset,
                len: buf.len() as u64,
                container: "VHD",
                block,
                state,
            };
            let start = self
                .block_start(backing, block)?
                .ok_or_else(|| refuse("not allocated"))?;
            let bm = self.bitmap(backing, start)?;
            let first = in_block / SECTOR;
            let last = (in_block + n as u64 - 1) / SECTOR;
            if (first..=last).any(|s| !bit(&bm, s)) {
                return Err(refuse(if self.parent.is_some() {
                    "only partly in this file (the rest is in the parent)"
                } else {
                    "allocated but its sector bitmap marks some written sectors unused"
                }));
            }
            let data = start + self.bitmap_len + in_block;
            if end_of(data, n as u64).is_none_or(|e| e > self.data_limit) {
                return Err(Error::Truncated {
                    structure: "VHD data block",
                    offset: data,
                    len: n as u64,
                    file_size: backing.len(),
                });
            }
            plan.push((data, done, n));
            done += n;
        }
        for (data, from, n) in plan {
            backing.write_all_at(&buf[from..from + n], data, "VHD data block")?;
        }
        Ok(())
    }
}

fn bit(bm: &[u8], sector: u64) -> bool {
    // Sector bitmaps are big-endian within each byte: sector 0 is bit 7 of byte 0.
    let byte = (sector / 8) as usize;
    bm.get(byte)
        .is_some_and(|b| b & (0x80 >> (sector % 8)) != 0)
}

/// Reads from the parent; a parent shorter than the child reads as zeros past its end.
fn read_parent(parent: &Disk, pos: u64, out: &mut [u8]) -> Result<()> {
    let psize = parent.size();
    let avail = psize.saturating_sub(pos).min(out.len() as u64) as usize;
    if avail > 0 {
        parent.read_at(pos, &mut out[..avail])?;
    }
    out[avail..].fill(0);
    Ok(())
}

fn utf16_be(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

fn utf16_le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// The last component of a Windows, Unix or URL path.
fn base_name(p: &str) -> &str {
    p.rsplit(['\\', '/']).next().unwrap_or(p)
}

/// Looks for the parent next to the child: the relative locator, then the base names of every
/// locator and of the parent's Unicode name, in the child's folder.
fn find_parent(backing: &Backing, h: &[u8], parent_name: &str) -> Result<PathBuf> {
    let child = backing.path();
    if backing.is_remote() {
        return Err(Error::Unsupported {
            path: child.to_path_buf(),
            what: "a differencing VHD behind a URL: its parent cannot be looked for next to it; merge the chain first (qemu-img convert -O vpc)".into(),
        });
    }
    let dir = child.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut names: Vec<String> = Vec::new();
    for i in 0..8 {
        let e = &h[576 + i * 24..600 + i * 24];
        let code = &e[0..4];
        let len = be32(e, 8);
        let off = be64(e, 16);
        if code == [0; 4] || len == 0 || len > MAX_LOCATOR_LEN {
            continue;
        }
        let mut data = vec![0u8; len as usize];
        if backing
            .read_exact_at(&mut data, off, "VHD parent locator")
            .is_err()
        {
            continue;
        }
        let text = match code {
            b"W2ru" | b"W2ku" => utf16_le(&data),
            b"Wi2r" | b"Wi2k" | b"MacX" => String::from_utf8_lossy(&data)
                .trim_end_matches('\0')
                .to_string(),
            _ => continue,
        };
        if code == b"W2ru" || code == b"Wi2r" {
            // Relative to the child's folder, e.g. ".\parent.vhd".
            names.push(text.replace('\\', "/"));
        }
        names.push(base_name(&text).to_string());
    }
    names.push(base_name(parent_name).to_string());
    let mut tried = Vec::new();
    for n in names {
        let n = n.trim_start_matches("./");
        if n.is_empty() || n == "." || n == ".." {
            continue;
        }
        let p = dir.join(n);
        if tried.contains(&p) {
            continue;
        }
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    Err(Error::ParentNotFound {
        child: child.to_path_buf(),
        parent_name: parent_name.to_string(),
        tried,
    })
}
