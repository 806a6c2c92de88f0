//! Values (`vk`), value lists, and value data: inline, in one cell, or in big-data (`db`)
//! segments.

use std::borrow::Cow;

use serde::Serialize;

use crate::bytes::{u16_at, u32_at};
use crate::cell::{bad, Bins, CellOffset, NONE};
use crate::names::Name;
use crate::Result;

const VK_FIXED: usize = 20;
/// Largest data one cell holds before big data is used (hive version 1.4 and later).
pub const BIG_DATA_SEGMENT: usize = 16344;
/// Value flag: the name is stored one byte a character.
pub const VALUE_COMP_NAME: u16 = 0x0001;
/// The high bit of the data size: the data sits in the data-offset field itself.
const DATA_INLINE: u32 = 0x8000_0000;

/// A registry value type (the `REG_*` constants); unknown numbers are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ValueType(pub u32);

impl ValueType {
    pub const NONE: ValueType = ValueType(0);
    pub const SZ: ValueType = ValueType(1);
    pub const EXPAND_SZ: ValueType = ValueType(2);
    pub const BINARY: ValueType = ValueType(3);
    pub const DWORD: ValueType = ValueType(4);
    pub const DWORD_BIG_ENDIAN: ValueType = ValueType(5);
    pub const LINK: ValueType = ValueType(6);
    pub const MULTI_SZ: ValueType = ValueType(7);
    pub const RESOURCE_LIST: ValueType = ValueType(8);
    pub const FULL_RESOURCE_DESCRIPTOR: ValueType = ValueType(9);
    pub const RESOURCE_REQUIREMENTS_LIST: ValueType = ValueType(10);
    pub const QWORD: ValueType = ValueType(11);

    /// The `REG_*` name, or `None` for a type Windows does not predefine.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "REG_NONE",
            1 => "REG_SZ",
            2 => "REG_EXPAND_SZ",
            3 => "REG_BINARY",
            4 => "REG_DWORD",
            5 => "REG_DWORD_BIG_ENDIAN",
            6 => "REG_LINK",
            7 => "REG_MULTI_SZ",
            8 => "REG_RESOURCE_LIST",
            9 => "REG_FULL_RESOURCE_DESCRIPTOR",
            10 => "REG_RESOURCE_REQUIREMENTS_LIST",
            11 => "REG_QWORD",
            _ => return None,
        })
    }

    /// Parses `REG_DWORD`, `dword`, `4`, `0x4`.
    pub fn parse(s: &str) -> Option<ValueType> {
        let t = s.trim();
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return u32::from_str_radix(hex, 16).ok().map(ValueType);
        }
        if let Ok(n) = t.parse::<u32>() {
            return Some(ValueType(n));
        }
        let up = t.to_ascii_uppercase();
        let up = up.strip_prefix("REG_").unwrap_or(&up);
        (0..=11)
            .map(ValueType)
            .find(|v| v.name().map(|n| &n[4..]) == Some(up))
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:x}", self.0),
        }
    }
}

/// Value data decoded by type. Data that does not fit its type (a 3-byte DWORD, an odd-length
/// string) is kept as [`Data::Raw`] so that nothing is lost or invented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum Data {
    None(Vec<u8>),
    Sz(String),
    ExpandSz(String),
    Binary(Vec<u8>),
    Dword(u32),
    DwordBigEndian(u32),
    Link(String),
    MultiSz(Vec<String>),
    Qword(u64),
    /// Any other type, or data that does not fit its type.
    Raw {
        value_type: u32,
        bytes: Vec<u8>,
    },
}

impl Data {
    /// Decodes raw value bytes of type `t`.
    pub fn decode(t: ValueType, bytes: &[u8]) -> Data {
        match t {
            ValueType::NONE => Data::None(bytes.to_vec()),
            ValueType::BINARY => Data::Binary(bytes.to_vec()),
            ValueType::SZ => Data::Sz(utf16_until_nul(bytes)),
            ValueType::EXPAND_SZ => Data::ExpandSz(utf16_until_nul(bytes)),
            // Symbolic links store the target without a terminating NUL.
            ValueType::LINK => Data::Link(utf16_until_nul(bytes)),
            ValueType::MULTI_SZ => Data::MultiSz(multi_sz(bytes)),
            ValueType::DWORD if bytes.len() == 4 => {
                Data::Dword(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            ValueType::DWORD_BIG_ENDIAN if bytes.len() == 4 => {
                Data::DwordBigEndian(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            ValueType::QWORD if bytes.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(bytes);
                Data::Qword(u64::from_le_bytes(a))
            }
            _ => Data::Raw {
                value_type: t.0,
                bytes: bytes.to_vec(),
            },
        }
    }

    /// The bytes Windows stores for this data: strings NUL-terminated UTF-16LE (a link without
    /// its NUL), multi-strings ended by an empty string, numbers in their byte order. The
    /// inverse of [`Data::decode`] for data that decodes cleanly.
    pub fn to_bytes(&self) -> Vec<u8> {
        let utf16z = |s: &str| {
            s.encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        match self {
            Data::Sz(s) | Data::ExpandSz(s) => utf16z(s),
            Data::Link(s) => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Data::MultiSz(parts) => {
                let mut out: Vec<u8> = parts.iter().flat_map(|p| utf16z(p)).collect();
                out.extend_from_slice(&[0, 0]);
                out
            }
            Data::Dword(n) => n.to_le_bytes().to_vec(),
            Data::DwordBigEndian(n) => n.to_be_bytes().to_vec(),
            Data::Qword(n) => n.to_le_bytes().to_vec(),
            Data::None(b) | Data::Binary(b) | Data::Raw { bytes: b, .. } => b.clone(),
        }
    }

    /// The type this data is stored with (the inverse of the type [`Data::decode`] was given,
    /// for data that decodes cleanly).
    pub fn value_type(&self) -> ValueType {
        match self {
            Data::None(_) => ValueType::NONE,
            Data::Sz(_) => ValueType::SZ,
            Data::ExpandSz(_) => ValueType::EXPAND_SZ,
            Data::Binary(_) => ValueType::BINARY,
            Data::Dword(_) => ValueType::DWORD,
            Data::DwordBigEndian(_) => ValueType::DWORD_BIG_ENDIAN,
            Data::Link(_) => ValueType::LINK,
            Data::MultiSz(_) => ValueType::MULTI_SZ,
            Data::Qword(_) => ValueType::QWORD,
            Data::Raw { value_type, .. } => ValueType(*value_type),
        }
    }

    /// The data as a number, for DWORD / QWORD values.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Data::Dword(v) | Data::DwordBigEndian(v) => Some(v.into()),
            Data::Qword(v) => Some(v),
            _ => None,
        }
    }

    /// The data as a string, for string-like values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Data::Sz(s) | Data::ExpandSz(s) | Data::Link(s) => Some(s),
            _ => None,
        }
    }
}

/// UTF-16LE up to the first NUL (or the end); an odd last byte is dropped.
pub fn utf16_until_nul(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// REG_MULTI_SZ: NUL-separated strings, ended by an empty string.
pub fn multi_sz(bytes: &[u8]) -> Vec<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut out = Vec::new();
    for part in units.split(|&u| u == 0) {
        if part.is_empty() {
            break;
        }
        out.push(String::from_utf16_lossy(part));
    }
    out
}

/// A value in a hive.
#[derive(Clone, Copy)]
pub struct Value<'h> {
    pub(crate) bins: Bins<'h>,
    pub(crate) cell: CellOffset,
    pub(crate) vk: &'h [u8],
}

impl<'h> Value<'h> {
    /// Reads the value record at `cell`.
    pub fn at(bins: Bins<'h>, cell: CellOffset) -> Result<Value<'h>> {
        let vk = bins.record(cell, b"vk", "value (vk)")?;
        if vk.len() < VK_FIXED {
            return Err(bad(
                cell,
                &format!("value cell of {} bytes is shorter than 20", vk.len()),
            ));
        }
        let name_len = usize::from(u16_at(vk, 2).unwrap_or(0));
        if VK_FIXED + name_len > vk.len() {
            return Err(bad(
                cell,
                &format!(
                    "value name of {name_len} bytes runs past the end of its {}-byte cell",
                    vk.len()
                ),
            ));
        }
        Ok(Value { bins, cell, vk })
    }

    pub fn cell(&self) -> CellOffset {
        self.cell
    }

    /// The value's name; empty for the default value (shown as `@` in .reg files).
    pub fn name(&self) -> Name<'h> {
        let len = usize::from(u16_at(self.vk, 2).unwrap_or(0));
        let raw = &self.vk[VK_FIXED..VK_FIXED + len]; // checked in `at`
        if self.flags() & VALUE_COMP_NAME != 0 {
            Name::Latin1(raw)
        } else {
            Name::Utf16(raw)
        }
    }

    pub fn flags(&self) -> u16 {
        u16_at(self.vk, 16).unwrap_or(0)
    }

    pub fn value_type(&self) -> ValueType {
        ValueType(u32_at(self.vk, 12).unwrap_or(0))
    }

    /// The data size field as stored (with the inline bit).
    pub fn raw_size_field(&self) -> u32 {
        u32_at(self.vk, 4).unwrap_or(0)
    }

    /// The data offset field as stored.
    pub fn data_cell(&self) -> CellOffset {
        u32_at(self.vk, 8).unwrap_or(NONE)
    }

    /// Size of the data in bytes.
    pub fn data_len(&self) -> u32 {
        self.raw_size_field() & !DATA_INLINE
    }

    /// Whether the data lives in the data-offset field.
    pub fn is_inline(&self) -> bool {
        self.raw_size_field() & DATA_INLINE != 0
    }

    /// Whether the data is stored as big data (a `db` record).
    pub fn is_big(&self) -> bool {
        !self.is_inline() && self.bins.minor >= 4 && self.data_len() as usize > BIG_DATA_SEGMENT
    }

    /// The raw data bytes; borrowed from the hive unless they had to be joined from big-data
    /// segments.
    pub fn raw_data(&self) -> Result<Cow<'h, [u8]>> {
        let len = self.data_len() as usize;
        if self.is_inline() {
            if len > 4 {
                return Err(bad(
                    self.cell,
                    &format!("inline data claims {len} bytes, at most 4 fit"),
                ));
            }
            return Ok(Cow::Borrowed(&self.vk[8..8 + len])); // vk.len() >= 20 checked in `at`
        }
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let off = self.data_cell();
        if self.is_big() {
            return big_data(&self.bins, off, len).map(Cow::Owned);
        }
        let c = self.bins.cell(off)?;
        c.get(..len).map(Cow::Borrowed).ok_or_else(|| {
            bad(
                off,
                &format!(
                    "value data of {len} bytes does not fit in its {}-byte cell",
                    c.len()
                ),
            )
        })
    }

    /// The data decoded according to the value's type.
    pub fn data(&self) -> Result<Data> {
        Ok(Data::decode(self.value_type(), &self.raw_data()?))
    }
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Value")
            .field("cell", &format_args!("0x{:x}", self.cell))
            .field("name", &self.name())
            .field("type", &self.value_type())
            .finish()
    }
}

/// Joins the segments of a `db` record. `len` comes from the value record; it is bounded by the
/// number of segments times the segment size, which is bounded by the hive size, before anything
/// is allocated.
pub(crate) fn big_data(bins: &Bins<'_>, db_cell: CellOffset, len: usize) -> Result<Vec<u8>> {
    let (segments, list) = big_data_segments(bins, db_cell)?;
    if len > segments * BIG_DATA_SEGMENT {
        return Err(bad(
            db_cell,
            &format!(
                "big data of {len} bytes does not fit in {segments} segments of {BIG_DATA_SEGMENT}"
            ),
        ));
    }
    let mut out = Vec::with_capacity(len);
    for i in 0..segments {
        if out.len() >= len {
            break;
        }
        let seg_off = u32_at(list, 4 * i).unwrap_or(NONE);
        let seg = bins.cell(seg_off)?;
        let want = (len - out.len()).min(BIG_DATA_SEGMENT);
        let part = seg.get(..want).ok_or_else(|| {
            bad(
                seg_off,
                &format!(
                    "big-data segment {i} needs {want} bytes, its cell has {}",
                    seg.len()
                ),
            )
        })?;
        out.extend_from_slice(part);
    }
    Ok(out)
}

/// The segment count and the segment list of a `db` record.
pub(crate) fn big_data_segments<'h>(
    bins: &Bins<'h>,
    db_cell: CellOffset,
) -> Result<(usize, &'h [u8])> {
    let db = bins.record(db_cell, b"db", "big data (db)")?;
    if db.len() < 8 {
        return Err(bad(db_cell, "big data record shorter than 8 bytes"));
    }
    let segments = usize::from(u16_at(db, 2).unwrap_or(0));
    let list_off = u32_at(db, 4).unwrap_or(NONE);
    let list = bins.cell(list_off)?;
    if list.len() < 4 * segments {
        return Err(bad(
            list_off,
            &format!(
                "segment list of {segments} entries does not fit in its {}-byte cell",
                list.len()
            ),
        ));
    }
    Ok((segments, list))
}

/// Iterator over the values of a key. A damaged entry comes out as an `Err` and the iteration
/// goes on.
pub struct Values<'h> {
    bins: Bins<'h>,
    list: &'h [u8],
    count: usize,
    pos: usize,
}

impl<'h> Values<'h> {
    pub(crate) fn new(bins: Bins<'h>, list: CellOffset, count: u32) -> Result<Values<'h>> {
        if count == 0 {
            return Ok(Values {
                bins,
                list: &[],
                count: 0,
                pos: 0,
            });
        }
        let c = bins.cell(list)?;
        let count = count as usize;
        if c.len() / 4 < count {
            return Err(bad(
                list,
                &format!(
                    "value list of {count} entries does not fit in its {}-byte cell",
                    c.len()
                ),
            ));
        }
        Ok(Values {
            bins,
            list: c,
            count,
            pos: 0,
        })
    }

    /// The value cell offsets, without reading the values.
    pub fn cells(&self) -> impl Iterator<Item = CellOffset> + 'h {
        let list = self.list;
        (0..self.count).map(move |i| u32_at(list, 4 * i).unwrap_or(NONE))
    }
}

impl<'h> Iterator for Values<'h> {
    type Item = Result<Value<'h>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.count {
            return None;
        }
        let off = u32_at(self.list, 4 * self.pos).unwrap_or(NONE);
        self.pos += 1;
        Some(Value::at(self.bins, off))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.count - self.pos;
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_bytes_is_the_inverse_of_decode() {
        let cases = [
            (ValueType::SZ, Data::Sz(r"NT Authority\LocalService".into())),
            (
                ValueType::EXPAND_SZ,
                Data::ExpandSz("%SystemRoot%\\x".into()),
            ),
            (
                ValueType::LINK,
                Data::Link(r"\Registry\Machine\System".into()),
            ),
            (
                ValueType::MULTI_SZ,
                Data::MultiSz(vec!["NSI".into(), "Tdx".into(), "Afd".into()]),
            ),
            (ValueType::DWORD, Data::Dword(0x20)),
            (ValueType::DWORD_BIG_ENDIAN, Data::DwordBigEndian(7)),
            (ValueType::QWORD, Data::Qword(1 << 40)),
            (ValueType::BINARY, Data::Binary(vec![1, 2, 3])),
            (
                ValueType(0x19),
                Data::Raw {
                    value_type: 0x19,
                    bytes: vec![9, 9],
                },
            ),
        ];
        for (t, d) in cases {
            assert_eq!(Data::decode(t, &d.to_bytes()), d);
            assert_eq!(d.value_type(), t);
        }
        assert_eq!(
            Data::MultiSz(vec!["a".into()]).to_bytes(),
            [0x61, 0, 0, 0, 0, 0]
        );
    }
}
