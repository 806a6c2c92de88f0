//! [`Disk`]: one random-access virtual disk over any supported container.

use std::path::{Path, PathBuf};

use crate::backing::Backing;
use crate::error::{Error, Result};
use crate::io::Slice;
use crate::util::Guid;
use crate::{vhd, vhdx};

/// How deep a chain of differencing VHDs may go before it is taken for a loop.
const MAX_CHAIN_DEPTH: usize = 16;

/// The container format of an image, detected from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ContainerKind {
    /// A raw image file or a block device: the bytes are the disk.
    Raw,
    /// A fixed VHD: the disk's bytes followed by a 512-byte footer.
    VhdFixed,
    /// A dynamic (sparse) VHD.
    VhdDynamic,
    /// A differencing VHD, read through its parent.
    VhdDifferencing,
    /// A VHDX whose blocks are all allocated (the "leave blocks allocated" flag).
    VhdxFixed,
    /// A dynamic VHDX.
    VhdxDynamic,
}

impl ContainerKind {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            ContainerKind::Raw => "raw",
            ContainerKind::VhdFixed => "VHD (fixed)",
            ContainerKind::VhdDynamic => "VHD (dynamic)",
            ContainerKind::VhdDifferencing => "VHD (differencing)",
            ContainerKind::VhdxFixed => "VHDX (fixed)",
            ContainerKind::VhdxDynamic => "VHDX (dynamic)",
        }
    }
}

/// What an undo journal records to recognise the image later.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The path the image was opened with.
    pub path: PathBuf,
    /// Size of the virtual disk in bytes.
    pub size: u64,
    /// Size of the image file or device in bytes.
    pub file_size: u64,
    /// The container format.
    pub kind: ContainerKind,
    /// Whether the path is a block device.
    pub block_device: bool,
    /// VHD: the footer's unique id. VHDX: the VirtualDiskId metadata item.
    pub unique_id: Option<Guid>,
    /// VHDX only: the header's DataWriteGuid, which changes when the disk's data first changes
    /// after an open for writing.
    pub data_write_guid: Option<Guid>,
}

/// How to open an image. [`Disk::open`] and [`Disk::open_rw`] cover the usual cases.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub(crate) write: bool,
    pub(crate) lenient: bool,
}

impl OpenOptions {
    /// Read-only, strict.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Open for writing (takes an exclusive lock). Differencing parents stay read-only.
    pub fn write(mut self, write: bool) -> OpenOptions {
        self.write = write;
        self
    }

    /// Accept a VHD whose footer or header checksum is wrong, use the footer copy at offset 0
    /// when the one at the end is damaged, and accept a parent whose unique id differs. Each
    /// accepted problem is recorded in [`Disk::warnings`].
    pub fn lenient(mut self, lenient: bool) -> OpenOptions {
        self.lenient = lenient;
        self
    }

    pub(crate) fn read_only(&self) -> OpenOptions {
        OpenOptions {
            write: false,
            lenient: self.lenient,
        }
    }

    /// Opens `path` with these options.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Disk> {
        Disk::open_chained(path.as_ref(), self, 0)
    }
}

#[derive(Debug)]
enum Container {
    /// Raw and fixed VHD: virtual offset = file offset.
    Flat,
    Vhd(Box<vhd::Dynamic>),
    Vhdx(Box<vhdx::Vhdx>),
}

/// A virtual disk: a raw image, block device, VHD or VHDX seen as one run of bytes.
///
/// Reads never load more than the requested range (plus one allocation-table entry and, for
/// differencing VHDs, one sector bitmap per block). Writes only go where the image already has
/// space; they never allocate blocks or grow the file.
#[derive(Debug)]
pub struct Disk {
    backing: Backing,
    container: Container,
    kind: ContainerKind,
    size: u64,
    unique_id: Option<Guid>,
    warnings: Vec<String>,
}

impl Disk {
    /// Opens an image or block device read-only (shared lock), strictly.
    pub fn open(path: impl AsRef<Path>) -> Result<Disk> {
        OpenOptions::new().open(path)
    }

    /// Opens an image or block device for reading and writing (exclusive lock), strictly.
    pub fn open_rw(path: impl AsRef<Path>) -> Result<Disk> {
        OpenOptions::new().write(true).open(path)
    }

    pub(crate) fn open_chained(path: &Path, opts: &OpenOptions, depth: usize) -> Result<Disk> {
        if depth > MAX_CHAIN_DEPTH {
            return Err(Error::ParentChain {
                path: path.to_path_buf(),
                limit: MAX_CHAIN_DEPTH,
            });
        }
        let backing = Backing::open(path, opts.write)?;
        let mut warnings = Vec::new();
        let len = backing.len();
        let mut head = [0u8; 64];
        let head_len = len.min(64) as usize;
        backing.read_exact_at(&mut head[..head_len], 0, "image start")?;
        let head = &head[..head_len];
        let mut tail = [0u8; 8];
        let footer_at = len.checked_sub(vhd::FOOTER_LEN);
        if let Some(at) = footer_at {
            backing.read_exact_at(&mut tail, at, "VHD footer")?;
        }
        let convert = |format: &'static str| Error::UnsupportedFormat {
            path: path.to_path_buf(),
            format,
            hint: format!("qemu-img convert -O raw {} OUT.raw", path.display()),
        };
        if head.starts_with(b"QFI\xfb") {
            return Err(convert("qcow2"));
        }
        if head.starts_with(b"KDMV")
            || head.starts_with(b"COWD")
            || head.starts_with(b"# Disk DescriptorFile")
        {
            return Err(convert("VMDK"));
        }
        if head.len() >= 68 && head[64..68] == [0x7f, 0x10, 0xda, 0xbe] {
            return Err(convert("VDI"));
        }
        let (container, kind, size, unique_id) = if head.starts_with(b"vhdxfile") {
            let v = vhdx::Vhdx::open(&backing, &mut warnings)?;
            let kind = if v.fixed {
                ContainerKind::VhdxFixed
            } else {
                ContainerKind::VhdxDynamic
            };
            let (size, id) = (v.size(), v.virtual_disk_id);
            (Container::Vhdx(Box::new(v)), kind, size, Some(id))
        } else if &tail == b"conectix" || head.starts_with(b"conectix") {
            let footer = vhd::read_footer(&backing, opts.lenient, &mut warnings)?;
            if footer.disk_type == vhd::TYPE_FIXED {
                let data_len = len - vhd::FOOTER_LEN;
                if footer.current_size > data_len {
                    return Err(Error::Truncated {
                        structure: "fixed VHD data",
                        offset: 0,
                        len: footer.current_size,
                        file_size: len,
                    });
                }
                (
                    Container::Flat,
                    ContainerKind::VhdFixed,
                    footer.current_size,
                    Some(footer.unique_id),
                )
            } else {
                let d = vhd::Dynamic::open(&backing, &footer, opts, depth, &mut warnings)?;
                let kind = if d.parent.is_some() {
                    ContainerKind::VhdDifferencing
                } else {
                    ContainerKind::VhdDynamic
                };
                let size = d.size();
                (
                    Container::Vhd(Box::new(d)),
                    kind,
                    size,
                    Some(footer.unique_id),
                )
            }
        } else {
            (Container::Flat, ContainerKind::Raw, len, None)
        };
        Ok(Disk {
            backing,
            container,
            kind,
            size,
            unique_id,
            warnings,
        })
    }

    /// Size of the virtual disk in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The container format.
    pub fn kind(&self) -> ContainerKind {
        self.kind
    }

    /// Whether writes are allowed (the disk was opened for writing).
    pub fn is_writable(&self) -> bool {
        self.backing.writable()
    }

    /// Requests and bytes transferred so far, for an image behind a URL (`None` for a local one).
    pub fn transfer_stats(&self) -> Option<crate::remote::TransferStats> {
        self.backing.transfer_stats()
    }

    /// For an image behind a URL, its ETag now: the one read at open, then the one each write
    /// of this handle gave. Every request carries it in `If-Match`.
    pub fn etag(&self) -> Option<String> {
        self.backing.etag()
    }

    /// For an image behind a URL, the blob or file it names, without the query string (a SAS)
    /// or user information: what a journal may record. `None` for a local image.
    pub fn address(&self) -> Option<String> {
        self.backing.address()
    }

    /// For an image behind a URL: asks the server, past the cache, whether the image still
    /// has [`Disk::etag`]; an error (412) if anyone else changed it. Nothing to do locally,
    /// where the exclusive lock keeps other writers out.
    pub fn revalidate(&self) -> Result<()> {
        self.backing.revalidate()
    }

    /// For an image behind a URL: reads `ranges` (virtual offset, length) into the block cache
    /// with several requests at once, so that the data runs of a file are fetched together
    /// rather than one after the other; the reads that follow find them there. Done for raw
    /// images and fixed VHDs (where virtual offsets are file offsets: an Azure disk); a no-op
    /// for other containers and for local images.
    pub fn prefetch(&self, ranges: &[(u64, u64)]) -> Result<()> {
        match self.container {
            Container::Flat => self.backing.prefetch(ranges),
            _ => Ok(()),
        }
    }

    /// For a VHDX: the bytes of its header section as they are in the file now (the first
    /// MiB: file identifier, both headers, both region tables), read through the image's own
    /// backing, a file or a URL. The first write of a handle gives the headers new write GUIDs
    /// ([MS-VHDX] 2.2.2.1); these bytes, put back with [`Disk::restore_vhdx_header_section`],
    /// make the file what it was. `None` for other containers.
    pub fn vhdx_header_section(&self) -> Result<Option<Vec<u8>>> {
        if !matches!(self.container, Container::Vhdx(_)) {
            return Ok(None);
        }
        let mut buf = vec![0u8; vhdx::HEADER_SECTION.min(self.backing.len()) as usize];
        self.backing
            .read_exact_at(&mut buf, 0, "VHDX header section")?;
        Ok(Some(buf))
    }

    /// Writes back a VHDX header section saved by [`Disk::vhdx_header_section`] (through a URL
    /// too: one Put Page, guarded like every other) and makes it durable. The handle is
    /// consumed: its idea of the current header is no longer the file's. Refused, with
    /// nothing written, when this is not a VHDX or `raw` is not a header section of one.
    pub fn restore_vhdx_header_section(self, raw: &[u8]) -> Result<()> {
        let path = self.backing.path().to_path_buf();
        if !matches!(self.container, Container::Vhdx(_)) {
            return Err(Error::Unsupported {
                path,
                what: "a VHDX header section can only be written back to a VHDX".into(),
            });
        }
        if !raw.starts_with(b"vhdxfile")
            || raw.len() as u64 > vhdx::HEADER_SECTION
            || raw.len() as u64 > self.backing.len()
        {
            return Err(Error::Unsupported {
                path,
                what: format!(
                    "{} bytes that do not start with \"vhdxfile\" or are longer than the header section are not a VHDX header section",
                    raw.len()
                ),
            });
        }
        if !self.backing.writable() {
            return Err(Error::ReadOnlyOpen { path });
        }
        self.backing.write_all_at(raw, 0, "VHDX header section")?;
        self.backing.sync()
    }

    /// Problems accepted by a lenient open (empty after a strict one).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The image's identity, as of now (a VHDX's DataWriteGuid changes on the first write).
    pub fn identity(&self) -> Identity {
        Identity {
            path: self.backing.path().to_path_buf(),
            size: self.size,
            file_size: self.backing.len(),
            kind: self.kind,
            block_device: self.backing.is_block_device(),
            unique_id: self.unique_id,
            data_write_guid: match &self.container {
                Container::Vhdx(v) => Some(v.data_write_guid),
                _ => None,
            },
        }
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::OutOfRange {
                offset,
                len: len as u64,
                size: self.size,
            }),
        }
    }

    /// Reads exactly `buf.len()` bytes at virtual offset `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        match &self.container {
            Container::Flat => self.backing.read_exact_at(buf, offset, "disk data"),
            Container::Vhd(d) => d.read(&self.backing, offset, buf),
            Container::Vhdx(v) => v.read(&self.backing, offset, buf),
        }
    }

    /// Writes all of `buf` at virtual offset `offset`. Refused, with nothing written, if the
    /// disk is read-only or if any part falls where the image has no space yet.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        if !self.backing.writable() {
            return Err(Error::ReadOnlyOpen {
                path: self.backing.path().to_path_buf(),
            });
        }
        self.check_range(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        match &mut self.container {
            Container::Flat => self.backing.write_all_at(buf, offset, "disk data"),
            Container::Vhd(d) => d.write(&self.backing, offset, buf),
            Container::Vhdx(v) => v.write(&self.backing, offset, buf),
        }
    }

    /// Makes everything written so far durable.
    pub fn flush(&mut self) -> Result<()> {
        self.backing.sync()
    }

    /// A `Read + Seek` view of the whole disk.
    pub fn reader(&self) -> Slice<&Disk> {
        Slice::whole(self)
    }

    /// A `Read + Seek + Write` view of the whole disk.
    pub fn writer(&mut self) -> Slice<&mut Disk> {
        Slice::whole(self)
    }
}
