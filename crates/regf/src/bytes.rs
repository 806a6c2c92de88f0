//! Bounds-checked little-endian reads. Every range taken from the file goes through here, so
//! that a hostile offset gives `None` (turned into an error by the caller) instead of a panic.

#[inline]
pub(crate) fn slice(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    data.get(off..off.checked_add(len)?)
}

#[inline]
pub(crate) fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    let b = slice(data, off, 2)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

#[inline]
pub(crate) fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let b = slice(data, off, 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[inline]
pub(crate) fn i32_at(data: &[u8], off: usize) -> Option<i32> {
    u32_at(data, off).map(|v| v as i32)
}

#[inline]
pub(crate) fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    let b = slice(data, off, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

#[inline]
pub(crate) fn put_u32(data: &mut [u8], off: usize, v: u32) {
    data[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn put_u16(data: &mut [u8], off: usize, v: u16) {
    data[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn put_u64(data: &mut [u8], off: usize, v: u64) {
    data[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
