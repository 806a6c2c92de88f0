//! [`Slice`]: `std::io::Read + Seek (+ Write)` over a disk or one partition of it.

use std::borrow::{Borrow, BorrowMut};
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::partition::Partition;

/// A byte range of a [`Disk`] (the whole disk or one partition) with a cursor.
///
/// `D` is `&Disk` for reading, `&mut Disk` (or an owned `Disk`) to write as well. Reads stop
/// at the end of the range (a short read, then 0); writes past it fail. Positions are relative
/// to the start of the range, so a partition's slice starts at its boot sector.
#[derive(Debug)]
pub struct Slice<D> {
    disk: D,
    start: u64,
    len: u64,
    pos: u64,
}

impl<D: Borrow<Disk>> Slice<D> {
    /// The whole disk.
    pub fn whole(disk: D) -> Slice<D> {
        let len = disk.borrow().size();
        Slice {
            disk,
            start: 0,
            len,
            pos: 0,
        }
    }

    /// `len` bytes from byte `start` of the disk; fails if the range leaves the disk.
    pub fn new(disk: D, start: u64, len: u64) -> Result<Slice<D>> {
        let size = disk.borrow().size();
        match start.checked_add(len) {
            Some(end) if end <= size => Ok(Slice {
                disk,
                start,
                len,
                pos: 0,
            }),
            _ => Err(Error::OutOfRange {
                offset: start,
                len,
                size,
            }),
        }
    }

    /// The range of a partition found by [`crate::read_partitions`].
    pub fn partition(disk: D, p: &Partition) -> Result<Slice<D>> {
        Slice::new(disk, p.start, p.len)
    }

    /// Length of the range in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the range starts on the disk.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The disk underneath.
    pub fn disk(&self) -> &Disk {
        self.disk.borrow()
    }

    /// Gives the disk back.
    pub fn into_inner(self) -> D {
        self.disk
    }

    /// Reads exactly `buf.len()` bytes at `offset` inside the range, without moving the cursor.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.disk.borrow().read_at(self.start + offset, buf)
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::OutOfRange {
                offset,
                len: len as u64,
                size: self.len,
            }),
        }
    }
}

impl<D: BorrowMut<Disk>> Slice<D> {
    /// Writes all of `buf` at `offset` inside the range, without moving the cursor.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        let at = self.start + offset;
        self.disk.borrow_mut().write_at(at, buf)
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::OutOfRange { .. } => io::ErrorKind::UnexpectedEof,
        Error::ReadOnlyOpen { .. } | Error::ReadOnlyImage { .. } => io::ErrorKind::PermissionDenied,
        Error::WriteToUnallocated { .. } => io::ErrorKind::Unsupported,
        _ => io::ErrorKind::InvalidData,
    };
    // The vdisk::Error stays reachable through io::Error::get_ref / into_inner.
    io::Error::new(kind, e)
}

impl<D: Borrow<Disk>> Read for Slice<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.disk
            .borrow()
            .read_at(self.start + self.pos, &mut buf[..n])
            .map_err(to_io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Borrow<Disk>> Seek for Slice<D> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

impl<D: BorrowMut<Disk>> Write for Slice<D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the disk or partition",
            ));
        }
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        let at = self.start + self.pos;
        self.disk
            .borrow_mut()
            .write_at(at, &buf[..n])
            .map_err(to_io)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.borrow_mut().flush().map_err(to_io)
    }
}
