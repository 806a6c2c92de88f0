//! Hive-bins data and the cells in it.
//!
//! Every record is reached through [`Bins::cell`], which checks alignment, bounds and the
//! allocated bit before handing out the cell's bytes.

use crate::bytes::{i32_at, slice};
use crate::paged::Paged;
use crate::{Error, Result};

/// "No cell": the value of an offset field that points nowhere.
pub const NONE: u32 = 0xFFFF_FFFF;
/// Size of a hive bin header.
pub const BIN_HEADER: usize = 32;

/// Cell offset relative to the start of the hive-bins data (file offset = 4096 + this).
pub type CellOffset = u32;

/// The hive-bins data of a hive, i.e. the file without its base block, clipped to the size the
/// base block announces.
#[derive(Clone, Copy)]
pub struct Bins<'h> {
    pub(crate) mem: Mem<'h>,
    /// Minor version of the hive (big data exists from 1.4 on; lh lists from 1.5 on).
    pub(crate) minor: u32,
}

/// Where the hive-bins data is: in memory, or loaded bin by bin on demand.
#[derive(Clone, Copy)]
pub(crate) enum Mem<'h> {
    Slice(&'h [u8]),
    Paged(&'h Paged),
}

impl<'h> Bins<'h> {
    pub(crate) fn from_slice(data: &'h [u8], minor: u32) -> Bins<'h> {
        Bins {
            mem: Mem::Slice(data),
            minor,
        }
    }

    /// The hive-bins data when it is all in memory (not for a [`Paged`] hive).
    pub(crate) fn slice(&self) -> &'h [u8] {
        match self.mem {
            Mem::Slice(d) => d,
            Mem::Paged(_) => &[],
        }
    }

    /// The bytes of the allocated cell at `off`, without its 4-byte size field, and sized as
    /// the cell (records may be shorter than their cell: padding follows).
    #[inline]
    pub fn cell(&self, off: CellOffset) -> Result<&'h [u8]> {
        let data = match self.mem {
            Mem::Slice(d) => d,
            Mem::Paged(p) => {
                if off == NONE {
                    return Err(bad(off, "offset is 0xffffffff (points nowhere)"));
                }
                if !(off as usize).is_multiple_of(8) {
                    return Err(bad(off, "offset is not a multiple of 8"));
                }
                return p.cell(off);
            }
        };
        let o = off as usize;
        if off == NONE {
            return Err(bad(off, "offset is 0xffffffff (points nowhere)"));
        }
        if !o.is_multiple_of(8) {
            return Err(bad(off, "offset is not a multiple of 8"));
        }
        let Some(size) = i32_at(data, o) else {
            return Err(bad(
                off,
                &format!(
                    "beyond the end of the hive-bins data (0x{:x} bytes)",
                    data.len()
                ),
            ));
        };
        let size = allocated_size(off, size)?;
        slice(data, o + 4, size - 4).ok_or_else(|| {
            bad(
                off,
                &format!(
                    "cell of {size} bytes runs past the end of the hive-bins data (0x{:x} bytes)",
                    data.len()
                ),
            )
        })
    }

    /// The allocated cell at `off`, which must start with the two-letter signature `sig`.
    #[inline]
    pub fn record(
        &self,
        off: CellOffset,
        sig: &'static [u8; 2],
        name: &'static str,
    ) -> Result<&'h [u8]> {
        let c = self.cell(off)?;
        match c.get(..2) {
            Some(s) if s == sig => Ok(c),
            Some(s) => Err(Error::WrongRecord {
                cell: off,
                expected: name,
                found: [s[0], s[1]],
            }),
            None => Err(bad(off, "cell too small for a record signature")),
        }
    }

    /// Length of the hive-bins data.
    pub fn len(&self) -> usize {
        match self.mem {
            Mem::Slice(d) => d.len(),
            Mem::Paged(p) => p.bins_len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn minor(&self) -> u32 {
        self.minor
    }
}

pub(crate) fn bad(cell: CellOffset, what: &str) -> Error {
    Error::BadCell {
        cell,
        what: what.to_string(),
    }
}

/// The length of the allocated cell at `off` whose size field reads `size`: a free cell
/// (positive size) or one below the 8-byte minimum is an error where a record is expected.
pub(crate) fn allocated_size(off: CellOffset, size: i32) -> Result<usize> {
    if size >= 0 {
        return Err(bad(
            off,
            &format!("cell is free (size field {size}), a record was expected"),
        ));
    }
    let size = size.unsigned_abs() as usize;
    if size < 8 {
        return Err(bad(
            off,
            &format!("cell size {size} is below the minimum of 8"),
        ));
    }
    Ok(size)
}
