//! Key and value names: the two on-disk encodings, Windows' case-insensitive comparison, and the
//! hashes that subkey lists carry.
//!
//! Windows compares names by upper-casing each UTF-16 code unit on its own (RtlUpcaseUnicodeChar)
//! and comparing the code units. We follow the same rule with Unicode's simple upper-case mapping,
//! restricted to mappings that stay one BMP code unit: `ß` stays `ß` (its upper case is two
//! letters), `é` becomes `É`, `ÿ` becomes `Ÿ`. A name stored as "compressed" (Latin-1, one byte a
//! character) and the same name stored as UTF-16 compare equal.

use std::cmp::Ordering;
use std::fmt;

/// A name as stored in a key node or a value: borrowed from the hive, decoded on demand.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Name<'h> {
    /// One byte a character, the byte being the character code (Latin-1, "extended ASCII").
    Latin1(&'h [u8]),
    /// UTF-16LE code units (an odd trailing byte is ignored).
    Utf16(&'h [u8]),
}

impl<'h> Name<'h> {
    /// The UTF-16 code units of the name.
    pub fn units(&self) -> impl Iterator<Item = u16> + 'h {
        let (latin, wide): (&'h [u8], &'h [u8]) = match *self {
            Name::Latin1(b) => (b, &[]),
            Name::Utf16(b) => (&[], b),
        };
        latin.iter().map(|&b| u16::from(b)).chain(
            wide.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        )
    }

    /// Folds over the code units, without the cost of a chained iterator.
    #[inline]
    fn fold_units<T>(&self, init: T, mut f: impl FnMut(T, u16) -> T) -> T {
        match *self {
            Name::Latin1(b) => b.iter().fold(init, |acc, &c| f(acc, u16::from(c))),
            Name::Utf16(b) => b
                .chunks_exact(2)
                .fold(init, |acc, c| f(acc, u16::from_le_bytes([c[0], c[1]]))),
        }
    }

    /// Appends the upper-cased code units (see [`upcase`]) to `out`.
    pub(crate) fn upcased_into(&self, out: &mut Vec<u16>) {
        out.reserve(self.len_units());
        match *self {
            Name::Latin1(b) => out.extend(b.iter().map(|&c| upcase(u16::from(c)))),
            Name::Utf16(b) => out.extend(
                b.chunks_exact(2)
                    .map(|c| upcase(u16::from_le_bytes([c[0], c[1]]))),
            ),
        }
    }

    /// Number of UTF-16 code units.
    pub fn len_units(&self) -> usize {
        match *self {
            Name::Latin1(b) => b.len(),
            Name::Utf16(b) => b.len() / 2,
        }
    }

    /// Length in bytes when the name is seen as UTF-16 (what the "largest name" fields count).
    pub fn utf16_byte_len(&self) -> usize {
        self.len_units() * 2
    }

    /// The raw bytes as stored.
    pub fn raw(&self) -> &'h [u8] {
        match *self {
            Name::Latin1(b) | Name::Utf16(b) => b,
        }
    }

    /// The name as a Rust string; unpaired surrogates become U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        let mut s = String::with_capacity(self.len_units());
        self.push_lossy(&mut s);
        s
    }

    /// Appends the name to `out` as [`Name::to_string_lossy`] would give it, without allocating
    /// a string of its own.
    pub fn push_lossy(&self, out: &mut String) {
        match *self {
            Name::Latin1(b) => match std::str::from_utf8(b) {
                // ASCII is valid UTF-8 byte for byte: the common case, without decoding.
                Ok(ascii) if ascii.is_ascii() => out.push_str(ascii),
                _ => out.extend(b.iter().map(|&c| char::from(c))),
            },
            Name::Utf16(b) => out.extend(
                char::decode_utf16(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)),
            ),
        }
    }

    /// Case-insensitive equality with a Rust string, Windows' way.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        let mut a = self.units();
        let mut b = other.encode_utf16();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y || upcase(x) == upcase(y) => {}
                _ => return false,
            }
        }
    }

    /// Windows' ordering of subkeys: code units compared after upper-casing each one.
    pub fn cmp_ignore_case(&self, other: &Name<'_>) -> Ordering {
        match (*self, *other) {
            // The common case: two compressed names, compared without chained iterators.
            (Name::Latin1(a), Name::Latin1(b)) => a
                .iter()
                .map(|&c| upcase(u16::from(c)))
                .cmp(b.iter().map(|&c| upcase(u16::from(c)))),
            _ => cmp_units_ignore_case(self.units(), other.units()),
        }
    }

    /// The hash an `lh` list stores for this name.
    pub fn lh_hash(&self) -> u32 {
        self.fold_units(0u32, |h, u| {
            h.wrapping_mul(37).wrapping_add(u32::from(upcase(u)))
        })
    }

    /// The 4-byte hint an `lf` list stores for this name.
    pub fn lf_hint(&self) -> [u8; 4] {
        lf_hint(self.units())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// Upper-cases one UTF-16 code unit the way the registry compares names.
#[inline]
pub fn upcase(u: u16) -> u16 {
    if u < 0x80 {
        return u16::from((u as u8).to_ascii_uppercase());
    }
    let Some(c) = char::from_u32(u32::from(u)) else {
        return u; // a surrogate half: compared as it is
    };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(single), None) => {
            let v = u32::from(single);
            if v <= 0xFFFF {
                v as u16
            } else {
                u
            }
        }
        _ => u,
    }
}

/// Compares two names given as code units, upper-casing each unit.
pub fn cmp_units_ignore_case(
    a: impl Iterator<Item = u16>,
    b: impl Iterator<Item = u16>,
) -> Ordering {
    a.map(upcase).cmp(b.map(upcase))
}

/// `lh` hash: h = 37 * h + upcase(unit), over the UTF-16 code units.
pub fn lh_hash(units: impl Iterator<Item = u16>) -> u32 {
    units.fold(0u32, |h, u| {
        h.wrapping_mul(37).wrapping_add(u32::from(upcase(u)))
    })
}

/// `lf` hint: the first four characters as bytes (case kept), zero-padded; if one of them does
/// not fit in a byte, the first byte is zero (the spec's "UTF-16LE characters are converted to
/// ASCII (extended), if possible").
pub fn lf_hint(units: impl Iterator<Item = u16>) -> [u8; 4] {
    let mut hint = [0u8; 4];
    for (i, u) in units.take(4).enumerate() {
        if u > 0xFF {
            return [0, 0, 0, 0];
        }
        hint[i] = u as u8;
    }
    hint
}

/// Encodes a name the way Windows stores it: Latin-1 ("compressed") when every character fits
/// in a byte, UTF-16LE otherwise. Returns the bytes and whether they are compressed.
pub fn encode(name: &str) -> (Vec<u8>, bool) {
    if name.chars().all(|c| (c as u32) <= 0xFF) {
        (name.chars().map(|c| c as u32 as u8).collect(), true)
    } else {
        (
            name.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_known_values() {
        // Values read from real lh lists of the Windows 7 SYSTEM hive fixture.
        let name = Name::Latin1(b"ControlSet001");
        assert_eq!(name.lh_hash(), lh_hash("CONTROLSET001".encode_utf16()));
        assert_eq!(lh_hash("A".encode_utf16()), 65);
        assert_eq!(lh_hash("ab".encode_utf16()), 65 * 37 + 66);
    }

    #[test]
    fn compressed_and_wide_names_compare_equal() {
        let wide: Vec<u8> = "Services"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let a = Name::Latin1(b"services");
        let b = Name::Utf16(&wide);
        assert_eq!(a.cmp_ignore_case(&b), Ordering::Equal);
        assert!(b.eq_ignore_case("SERVICES"));
    }

    #[test]
    fn non_ascii_folds_per_code_unit() {
        let wide: Vec<u8> = "Ñandú"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(Name::Utf16(&wide).eq_ignore_case("ñANDÚ"));
        assert!(Name::Latin1(&[0xE9]).eq_ignore_case("É")); // é stored as Latin-1
        assert!(!Name::Latin1(b"strasse").eq_ignore_case("straße"));
        assert_eq!(upcase(u16::from(b'\xdf')), 0xDF); // ß has no one-unit upper case
    }

    #[test]
    fn lf_hint_rules() {
        assert_eq!(lf_hint("Dhcp".encode_utf16()), *b"Dhcp");
        assert_eq!(lf_hint("ab".encode_utf16()), [b'a', b'b', 0, 0]);
        assert_eq!(lf_hint("a\u{4e2d}".encode_utf16()), [0, 0, 0, 0]);
    }
}
