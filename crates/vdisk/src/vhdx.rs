//! Hyper-V VHDX: fixed and dynamic images (differencing ones are refused).
//!
//! Sources: [MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format", sections 2.1 (layout), 2.2
//! (header section: file type identifier, headers, region table), 2.3 (log), 2.5 (BAT, chunk
//! ratio, payload and sector bitmap block states), 2.6 (metadata region and known items).
//! All fields are little-endian; GUIDs are stored in the Microsoft layout.

use crate::backing::Backing;
use crate::error::{Error, Result};
use crate::util::{arr16, crc32c, end_of, le16, le32, le64, sig_text, Guid};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// The header section: file type identifier, two headers, two region tables, reserved space.
pub(crate) const HEADER_SECTION: u64 = MIB;
const HEADER_OFFSETS: [u64; 2] = [64 * KIB, 128 * KIB];
const HEADER_LEN: usize = 4 * KIB as usize;
const REGION_TABLE_OFFSETS: [u64; 2] = [192 * KIB, 256 * KIB];
const REGION_TABLE_LEN: usize = 64 * KIB as usize;
/// [MS-VHDX] 2.2.3: at most 2047 region table entries.
const MAX_REGION_ENTRIES: u32 = 2047;
const METADATA_TABLE_LEN: usize = 64 * KIB as usize;
/// [MS-VHDX] 2.6.1: at most 2047 metadata entries.
const MAX_METADATA_ENTRIES: u16 = 2047;
/// [MS-VHDX] 2.6.2.1: block size from 1 MiB to 256 MiB, a power of two.
const MIN_BLOCK: u64 = MIB;
const MAX_BLOCK: u64 = 256 * MIB;
/// [MS-VHDX] 2.6.2.2: the virtual disk is at most 64 TiB.
const MAX_DISK_SIZE: u64 = 64 << 40;

const BAT_GUID: &str = "2dc27766-f623-4200-9d64-115e9bfd4a08";
const METADATA_GUID: &str = "8b7ca206-4790-4b9a-b8fe-575f050f886e";
const FILE_PARAMETERS: &str = "caa16737-fa36-4d43-b3b6-33f0aa44e76b";
const VIRTUAL_DISK_SIZE: &str = "2fa54224-cd1b-4876-b211-5dbed83bf4b8";
const VIRTUAL_DISK_ID: &str = "beca12ab-b2e6-4523-93ef-c309e000c746";
const LOGICAL_SECTOR_SIZE: &str = "8141bf1d-a96f-4709-ba47-f233a8faab5f";
const PHYSICAL_SECTOR_SIZE: &str = "cda348c7-445d-4471-9cc9-e9885251c556";
const PARENT_LOCATOR: &str = "a8d35f2d-b30b-454d-abf7-d3d84834ab0c";

// Payload block states ([MS-VHDX] 2.5.1.1).
const PAYLOAD_NOT_PRESENT: u64 = 0;
const PAYLOAD_UNDEFINED: u64 = 1;
const PAYLOAD_ZERO: u64 = 2;
const PAYLOAD_UNMAPPED: u64 = 3;
const PAYLOAD_FULLY_PRESENT: u64 = 6;
const PAYLOAD_PARTIALLY_PRESENT: u64 = 7;

fn guid_at(b: &[u8], at: usize) -> Guid {
    Guid::from_ms_bytes(arr16(b, at))
}

fn is(g: Guid, s: &str) -> bool {
    g.to_string() == s
}

/// An open VHDX.
#[derive(Debug)]
pub(crate) struct Vhdx {
    size: u64,
    block_size: u64,
    chunk_ratio: u64,
    bat_offset: u64,
    bat_entries: u64,
    /// File ranges a data block must not overlap: the header section and the regions.
    reserved: Vec<(u64, u64)>,
    /// The current header (4 KiB) and which slot (0 or 1) holds it.
    header: Vec<u8>,
    slot: usize,
    pub(crate) fixed: bool,
    pub(crate) virtual_disk_id: Guid,
    pub(crate) data_write_guid: Guid,
    /// Whether this handle already changed the DataWriteGuid.
    headers_updated: bool,
}

fn bad(
    structure: &'static str,
    field: &'static str,
    offset: u64,
    expected: &str,
    actual: u64,
) -> Error {
    Error::BadField {
        structure,
        field,
        offset,
        expected: expected.into(),
        actual,
    }
}

impl Vhdx {
    pub(crate) fn open(backing: &Backing, warnings: &mut Vec<String>) -> Result<Vhdx> {
        let mut id = [0u8; 8];
        backing.read_exact_at(&mut id, 0, "VHDX file type identifier")?;
        if &id != b"vhdxfile" {
            return Err(Error::BadSignature {
                structure: "VHDX file type identifier",
                offset: 0,
                expected: "vhdxfile",
                actual: sig_text(&id),
            });
        }
        let (header, slot) = current_header(backing, warnings)?;
        let hoff = HEADER_OFFSETS[slot];
        let log_guid = guid_at(&header, 48);
        if !log_guid.is_nil() {
            return Err(Error::VhdxLogNotEmpty {
                path: backing.path().to_path_buf(),
                log_guid: log_guid.to_string(),
            });
        }
        let version = le16(&header, 66);
        if version != 1 {
            return Err(bad("VHDX header", "Version", hoff, "1", version.into()));
        }
        let regions = region_table(backing, warnings)?;
        let mut bat = None;
        let mut meta = None;
        let mut reserved = vec![(0, MIB)];
        // The log region, even when empty, is no place for payload.
        let log_offset = le64(&header, 72);
        let log_length = u64::from(le32(&header, 68));
        if let Some(end) = end_of(log_offset, log_length).filter(|_| log_length > 0) {
            reserved.push((log_offset, end));
        }
        for (guid, off, len, required, at) in regions {
            if !off.is_multiple_of(MIB) || off < MIB {
                return Err(bad(
                    "VHDX region table entry",
                    "FileOffset",
                    at,
                    "a multiple of 1 MiB, past the header section",
                    off,
                ));
            }
            let end = end_of(off, len.into()).ok_or_else(|| {
                bad(
                    "VHDX region table entry",
                    "Length",
                    at,
                    "a range inside the file",
                    len.into(),
                )
            })?;
            if end > backing.len() {
                return Err(Error::Truncated {
                    structure: "VHDX region",
                    offset: off,
                    len: len.into(),
                    file_size: backing.len(),
                });
            }
            reserved.push((off, end));
            if is(guid, BAT_GUID) {
                bat = Some((off, u64::from(len)));
            } else if is(guid, METADATA_GUID) {
                meta = Some((off, u64::from(len)));
            } else if required {
                return Err(Error::Unsupported {
                    path: backing.path().to_path_buf(),
                    what: format!("VHDX region {guid} (table entry at offset {at:#x}) is marked required but unknown to winrescue; convert the image to raw first (qemu-img convert -O raw IMAGE OUT.raw)"),
                });
            }
        }
        let (bat_offset, bat_len) = bat.ok_or_else(|| {
            bad(
                "VHDX region table",
                "BAT entry",
                REGION_TABLE_OFFSETS[0],
                "a BAT region",
                0,
            )
        })?;
        let (meta_offset, meta_len) = meta.ok_or_else(|| {
            bad(
                "VHDX region table",
                "metadata entry",
                REGION_TABLE_OFFSETS[0],
                "a metadata region",
                0,
            )
        })?;
        let md = Metadata::read(backing, meta_offset, meta_len)?;
        if md.has_parent {
            return Err(Error::Unsupported {
                path: backing.path().to_path_buf(),
                what: "this is a differencing VHDX (it has a parent), which winrescue does not read; merge the chain into one image first (qemu-img convert -O raw IMAGE OUT.raw)".into(),
            });
        }
        let chunk_ratio = ((1u64 << 23) * u64::from(md.logical_sector_size)) / md.block_size;
        let payload_blocks = md.size.div_ceil(md.block_size);
        let bat_entries = if payload_blocks == 0 {
            0
        } else {
            payload_blocks + (payload_blocks - 1) / chunk_ratio
        };
        if bat_entries * 8 > bat_len {
            return Err(bad(
                "VHDX region table entry",
                "BAT Length",
                bat_offset,
                &format!(
                    "at least {} bytes for {bat_entries} entries",
                    bat_entries * 8
                ),
                bat_len,
            ));
        }
        let mut vhdx = Vhdx {
            size: md.size,
            block_size: md.block_size,
            chunk_ratio,
            bat_offset,
            bat_entries,
            reserved,
            header,
            slot,
            fixed: md.leave_blocks_allocated,
            virtual_disk_id: md.virtual_disk_id,
            data_write_guid: Guid::NIL,
            headers_updated: false,
        };
        vhdx.data_write_guid = guid_at(&vhdx.header, 32);
        Ok(vhdx)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The BAT entry of payload block `block`: (state, file offset of the block).
    fn entry(&self, backing: &Backing, block: u64) -> Result<(u64, u64)> {
        // Sector bitmap entries are interleaved after every chunk_ratio payload entries.
        let index = block + block / self.chunk_ratio;
        if index >= self.bat_entries {
            return Err(Error::OutOfRange {
                offset: block * self.block_size,
                len: self.block_size,
                size: self.size,
            });
        }
        let at = self.bat_offset + index * 8;
        let mut e = [0u8; 8];
        backing.read_exact_at(&mut e, at, "VHDX BAT entry")?;
        let e = u64::from_le_bytes(e);
        let state = e & 7;
        let file_offset = (e >> 20) * MIB;
        if state == PAYLOAD_FULLY_PRESENT || state == PAYLOAD_PARTIALLY_PRESENT {
            let end = end_of(file_offset, self.block_size).ok_or_else(|| {
                bad(
                    "VHDX BAT entry",
                    "FileOffsetMB",
                    at,
                    "a block inside the file",
                    e >> 20,
                )
            })?;
            if self
                .reserved
                .iter()
                .any(|&(s, x)| file_offset < x && end > s)
            {
                return Err(bad(
                    "VHDX BAT entry",
                    "FileOffsetMB",
                    at,
                    "a block that overlaps no header or region",
                    e >> 20,
                ));
            }
        }
        Ok((state, file_offset))
    }

    pub(crate) fn read(&self, backing: &Backing, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = pos / self.block_size;
            let in_block = pos % self.block_size;
            let n = ((self.block_size - in_block) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            let (state, file_offset) = self.entry(backing, block)?;
            match state {
                PAYLOAD_NOT_PRESENT | PAYLOAD_UNDEFINED | PAYLOAD_ZERO | PAYLOAD_UNMAPPED => {
                    out.fill(0)
                }
                PAYLOAD_FULLY_PRESENT => {
                    backing.read_exact_at(out, file_offset + in_block, "VHDX payload block")?
                }
                other => {
                    return Err(bad(
                        "VHDX BAT entry",
                        "State",
                        self.bat_offset + (block + block / self.chunk_ratio) * 8,
                        "0, 1, 2, 3 or 6 (7 only in differencing images)",
                        other,
                    ));
                }
            }
            done += n;
        }
        Ok(())
    }

    pub(crate) fn write(&mut self, backing: &Backing, offset: u64, buf: &[u8]) -> Result<()> {
        let mut plan = Vec::new();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = pos / self.block_size;
            let in_block = pos % self.block_size;
            let n = ((self.block_size - in_block) as usize).min(buf.len() - done);
            let (state, file_offset) = self.entry(backing, block)?;
            if state != PAYLOAD_FULLY_PRESENT {
                return Err(Error::WriteToUnallocated {
                    offset,
                    len: buf.len() as u64,
                    container: "VHDX",
                    block,
                    state: match state {
                        PAYLOAD_NOT_PRESENT => "not present",
                        PAYLOAD_UNDEFINED => "undefined",
                        PAYLOAD_ZERO => "zero (not stored in the file)",
                        PAYLOAD_UNMAPPED => "unmapped",
                        PAYLOAD_PARTIALLY_PRESENT => "partially present",
                        _ => "in an invalid state",
                    },
                });
            }
            let data = file_offset + in_block;
            if data + n as u64 > backing.len() {
                return Err(Error::Truncated {
                    structure: "VHDX payload block",
                    offset: data,
                    len: n as u64,
                    file_size: backing.len(),
                });
            }
            plan.push((data, done, n));
            done += n;
        }
        if !backing.writable() {
            return Err(Error::ReadOnlyOpen {
                path: backing.path().to_path_buf(),
            });
        }
        if !self.headers_updated && !plan.is_empty() {
            self.update_headers(backing)?;
        }
        for (data, from, n) in plan {
            backing.write_all_at(&buf[from..from + n], data, "VHDX payload block")?;
        }
        Ok(())
    }

    /// [MS-VHDX] 2.2.2.1: before the first change of user-visible data, give the file a new
    /// FileWriteGuid and DataWriteGuid. A header is updated by writing the non-current slot with
    /// a sequence number one higher and flushing; doing it twice leaves both slots valid and
    /// current, so a torn write at any point leaves one valid header.
    fn update_headers(&mut self, backing: &Backing) -> Result<()> {
        let file_write = Guid::random();
        let data_write = Guid::random();
        for _ in 0..2 {
            let mut h = self.header.clone();
            let seq = le64(&h, 8).wrapping_add(1);
            h[8..16].copy_from_slice(&seq.to_le_bytes());
            h[16..32].copy_from_slice(&file_write.to_ms_bytes());
            h[32..48].copy_from_slice(&data_write.to_ms_bytes());
            h[4..8].fill(0);
            let crc = crc32c(&h);
            h[4..8].copy_from_slice(&crc.to_le_bytes());
            let target = 1 - self.slot;
            backing.write_all_at(&h, HEADER_OFFSETS[target], "VHDX header")?;
            backing.sync()?;
            self.header = h;
            self.slot = target;
        }
        self.data_write_guid = data_write;
        self.headers_updated = true;
        Ok(())
    }
}

/// Reads both headers and returns the current one ([MS-VHDX] 2.2.2: the valid one with the
/// higher SequenceNumber; Disk2VHD writes two identical headers, then the first is taken).
fn current_header(backing: &Backing, warnings: &mut Vec<String>) -> Result<(Vec<u8>, usize)> {
    let mut found: Vec<(Vec<u8>, usize, u64)> = Vec::new();
    let mut errors = Vec::new();
    for (slot, &off) in HEADER_OFFSETS.iter().enumerate() {
        let mut h = vec![0u8; HEADER_LEN];
        if let Err(e) = backing.read_exact_at(&mut h, off, "VHDX header") {
            errors.push(e);
            continue;
        }
        if &h[0..4] != b"head" {
            errors.push(Error::BadSignature {
                structure: "VHDX header",
                offset: off,
                expected: "head",
                actual: sig_text(&h[0..4]),
            });
            continue;
        }
        let stored = le32(&h, 4);
        let mut z = h.clone();
        z[4..8].fill(0);
        let computed = crc32c(&z);
        if stored != computed {
            errors.push(Error::BadChecksum {
                structure: "VHDX header",
                offset: off,
                stored,
                computed,
            });
            continue;
        }
        let seq = le64(&h, 8);
        found.push((h, slot, seq));
    }
    for e in &errors {
        if !found.is_empty() {
            warnings.push(format!("one VHDX header is unusable, using the other: {e}"));
        }
    }
    let best = found
        .into_iter()
        .reduce(|a, b| if b.2 > a.2 { b } else { a });
    match best {
        Some((h, slot, _)) => Ok((h, slot)),
        // Both failed: report the first header's problem.
        None => Err(errors.into_iter().next().unwrap_or(Error::BadSignature {
            structure: "VHDX header",
            offset: HEADER_OFFSETS[0],
            expected: "head",
            actual: String::new(),
        })),
    }
}

/// One region table entry: (guid, file offset, length, required, offset of the entry itself).
type RegionEntry = (Guid, u64, u32, bool, u64);

/// Entries of the first valid region table.
fn region_table(backing: &Backing, warnings: &mut Vec<String>) -> Result<Vec<RegionEntry>> {
    let mut first_err = None;
    for &off in &REGION_TABLE_OFFSETS {
        let mut t = vec![0u8; REGION_TABLE_LEN];
        let checked = backing
            .read_exact_at(&mut t, off, "VHDX region table")
            .and_then(|()| {
                if &t[0..4] != b"regi" {
                    return Err(Error::BadSignature {
                        structure: "VHDX region table",
                        offset: off,
                        expected: "regi",
                        actual: sig_text(&t[0..4]),
                    });
                }
                let stored = le32(&t, 4);
                let mut z = t.clone();
                z[4..8].fill(0);
                let computed = crc32c(&z);
                if stored != computed {
                    return Err(Error::BadChecksum {
                        structure: "VHDX region table",
                        offset: off,
                        stored,
                        computed,
                    });
                }
                let count = le32(&t, 8);
                if count > MAX_REGION_ENTRIES {
                    return Err(bad(
                        "VHDX region table",
                        "EntryCount",
                        off,
                        "at most 2047",
                        count.into(),
                    ));
                }
                Ok(count as usize)
            });
        match checked {
            Ok(count) => {
                if first_err.is_some() {
                    warnings
                        .push("the first VHDX region table is unusable; using the second".into());
                }
                return Ok((0..count)
                    .map(|i| {
                        let e = 16 + i * 32;
                        (
                            guid_at(&t, e),
                            le64(&t, e + 16),
                            le32(&t, e + 24),
                            le32(&t, e + 28) & 1 != 0,
                            off + e as u64,
                        )
                    })
                    .collect());
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // Both failed; first_err is set by the loop above.
    Err(first_err.unwrap_or(Error::BadSignature {
        structure: "VHDX region table",
        offset: REGION_TABLE_OFFSETS[0],
        expected: "regi",
        actual: String::new(),
    }))
}

struct Metadata {
    block_size: u64,
    leave_blocks_allocated: bool,
    has_parent: bool,
    size: u64,
    logical_sector_size: u32,
    virtual_disk_id: Guid,
}

impl Metadata {
    fn read(backing: &Backing, region: u64, region_len: u64) -> Result<Metadata> {
        const S: &str = "VHDX metadata table";
        if region_len < METADATA_TABLE_LEN as u64 {
            return Err(bad(
                S,
                "region Length",
                region,
                "at least 64 KiB",
                region_len,
            ));
        }
        let mut t = vec![0u8; METADATA_TABLE_LEN];
        backing.read_exact_at(&mut t, region, S)?;
        if &t[0..8] != b"metadata" {
            return Err(Error::BadSignature {
                structure: S,
                offset: region,
                expected: "metadata",
                actual: sig_text(&t[0..8]),
            });
        }
        let count = le16(&t, 10);
        if count > MAX_METADATA_ENTRIES {
            return Err(bad(S, "EntryCount", region, "at most 2047", count.into()));
        }
        let item = |want: &str| -> Result<Option<Vec<u8>>> {
            for i in 0..usize::from(count) {
                let e = 32 + i * 32;
                if !is(guid_at(&t, e), want) {
                    continue;
                }
                let off = u64::from(le32(&t, e + 16));
                let len = le32(&t, e + 20);
                let at = region + e as u64;
                // Known items are at most 24 bytes except the parent locator; cap what is read.
                if len > 64 * 1024
                    || off < METADATA_TABLE_LEN as u64
                    || off + u64::from(len) > region_len
                {
                    return Err(bad(
                        "VHDX metadata entry",
                        "Offset/Length",
                        at,
                        "an item inside the metadata region, past its table",
                        off,
                    ));
                }
                let mut v = vec![0u8; len as usize];
                backing.read_exact_at(&mut v, region + off, "VHDX metadata item")?;
                return Ok(Some(v));
            }
            Ok(None)
        };
        let need = |v: Option<Vec<u8>>, name: &'static str, min: usize| -> Result<Vec<u8>> {
            match v {
                Some(v) if v.len() >= min => Ok(v),
                Some(v) => Err(bad(
                    "VHDX metadata item",
                    name,
                    region,
                    &format!("at least {min} bytes"),
                    v.len() as u64,
                )),
                None => Err(bad(
                    "VHDX metadata table",
                    name,
                    region,
                    "the item to be present",
                    0,
                )),
            }
        };
        let fp = need(item(FILE_PARAMETERS)?, "File Parameters", 8)?;
        let vs = need(item(VIRTUAL_DISK_SIZE)?, "Virtual Disk Size", 8)?;
        let ls = need(item(LOGICAL_SECTOR_SIZE)?, "Logical Sector Size", 4)?;
        let id = item(VIRTUAL_DISK_ID)?;
        let block_size = u64::from(le32(&fp, 0));
        let flags = le32(&fp, 4);
        let size = le64(&vs, 0);
        let logical_sector_size = le32(&ls, 0);
        if !block_size.is_power_of_two() || !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) {
            return Err(bad(
                "VHDX metadata item",
                "BlockSize",
                region,
                "a power of two from 1 MiB to 256 MiB",
                block_size,
            ));
        }
        if logical_sector_size != 512 && logical_sector_size != 4096 {
            return Err(bad(
                "VHDX metadata item",
                "LogicalSectorSize",
                region,
                "512 or 4096",
                logical_sector_size.into(),
            ));
        }
        if size > MAX_DISK_SIZE || !size.is_multiple_of(u64::from(logical_sector_size)) {
            return Err(bad(
                "VHDX metadata item",
                "VirtualDiskSize",
                region,
                "a multiple of the logical sector size, at most 64 TiB",
                size,
            ));
        }
        // Items marked required that winrescue does not know make the file unreadable per spec.
        for i in 0..usize::from(count) {
            let e = 32 + i * 32;
            let g = guid_at(&t, e);
            let required = le32(&t, e + 24) & 4 != 0;
            let known = [
                FILE_PARAMETERS,
                VIRTUAL_DISK_SIZE,
                VIRTUAL_DISK_ID,
                LOGICAL_SECTOR_SIZE,
                PHYSICAL_SECTOR_SIZE,
                PARENT_LOCATOR,
            ];
            if required && !known.iter().any(|k| is(g, k)) {
                return Err(Error::Unsupported {
                    path: backing.path().to_path_buf(),
                    what: format!("VHDX metadata item {g} (entry at offset {:#x}) is marked required but unknown to winrescue; convert the image to raw first (qemu-img convert -O raw IMAGE OUT.raw)", region + e as u64),
                });
            }
        }
        Ok(Metadata {
            block_size,
            leave_blocks_allocated: flags & 1 != 0,
            has_parent: flags & 2 != 0,
            size,
            logical_sector_size,
            virtual_disk_id: id
                .filter(|v| v.len() >= 16)
                .map(|v| guid_at(&v, 0))
                .unwrap_or(Guid::NIL),
        })
    }
}
