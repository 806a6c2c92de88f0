//! Small helpers: field readers, checked arithmetic, CRCs, GUIDs.

use std::fmt;

/// Reads a big-endian u32 at `at` of a buffer whose length the caller has checked.
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn arr16(b: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

/// `offset + len`, or `None` on overflow: every range taken from a file goes through here.
pub(crate) fn end_of(offset: u64, len: u64) -> Option<u64> {
    offset.checked_add(len)
}

/// Lossy text of a signature for error messages.
pub(crate) fn sig_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const fn crc_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

// Sources: MS-VHDX 2.2.2 (CRC-32C, Castagnoli polynomial, reflected 0x82F63B78);
// UEFI 2.x 5.3.2 (GPT header CRC32, the IEEE 802.3 polynomial, reflected 0xEDB88320).
static CRC32C_TABLE: [u32; 256] = crc_table(0x82F6_3B78);
static CRC32_TABLE: [u32; 256] = crc_table(0xEDB8_8320);

fn crc_with(table: &[u32; 256], data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32C (Castagnoli) as VHDX uses it.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc_with(&CRC32C_TABLE, data)
}

/// CRC-32 (IEEE) as GPT uses it.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc_with(&CRC32_TABLE, data)
}

/// A GUID / UUID, held in RFC 4122 byte order (the order it is printed in).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID.
    pub const NIL: Guid = Guid([0; 16]);

    /// From the Microsoft on-disk layout (first three fields little-endian), as VHDX and GPT
    /// store GUIDs.
    pub fn from_ms_bytes(b: [u8; 16]) -> Guid {
        let mut o = b;
        o[0..4].reverse();
        o[4..6].reverse();
        o[6..8].reverse();
        Guid(o)
    }

    /// To the Microsoft on-disk layout.
    pub fn to_ms_bytes(self) -> [u8; 16] {
        // The byte swap is its own inverse.
        Guid::from_ms_bytes(self.0).0
    }

    /// True for the all-zero GUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A new random (version 4) GUID.
    pub(crate) fn random() -> Guid {
        let mut b = random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Guid {
    type Err = String;
    fn from_str(s: &str) -> Result<Guid, String> {
        let hex: Vec<u8> = s.bytes().filter(|c| *c != b'-').collect();
        if hex.len() != 32 {
            return Err(format!("{s:?} is not a GUID"));
        }
        let mut o = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let t = std::str::from_utf8(pair).map_err(|_| format!("{s:?} is not a GUID"))?;
            o[i] = u8::from_str_radix(t, 16).map_err(|_| format!("{s:?} is not a GUID"))?;
        }
        Ok(Guid(o))
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Guid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// 16 random bytes from the kernel; falls back to hashing time and process id (GUIDs only
/// need to be unique, not secret).
fn random_bytes() -> [u8; 16] {
    use std::io::Read;
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut b).is_ok() {
            return b;
        }
    }
    use std::hash::{BuildHasher, Hasher};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for (i, chunk) in b.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now);
        h.write_u32(std::process::id());
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_values() {
        // The standard check values for the ASCII string "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn guid_ms_round_trip() {
        let ms = [
            0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD,
            0x4A, 0x08,
        ];
        let g = Guid::from_ms_bytes(ms);
        assert_eq!(g.to_string(), "2dc27766-f623-4200-9d64-115e9bfd4a08");
        assert_eq!(g.to_ms_bytes(), ms);
        assert_eq!(
            "2dc27766-f623-4200-9d64-115e9bfd4a08".parse::<Guid>(),
            Ok(g)
        );
        let r = Guid::random();
        assert_ne!(r, Guid::random());
        assert_eq!(r.0[6] >> 4, 4);
    }
}
