//! reg.exe's `/t TYPE /d DATA /s SEP` text turned into typed data. The bytes are always made by
//! the one encoder of the workspace, [`regf::Data::to_bytes`].

use regf::{Data, ValueType};

/// Why `/d` text is not data of its type (the text follows reg.exe's `Invalid syntax.`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

fn parse_number(d: &str) -> Result<u64, DataError> {
    let t = d.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| DataError(format!("{d:?} is not a number.")))
}

fn dword(d: &str, kind: &str) -> Result<u32, DataError> {
    u32::try_from(parse_number(d)?).map_err(|_| DataError(format!("{d} does not fit in a {kind}.")))
}

fn utf16z(s: &str) -> Vec<u8> {
    Data::Sz(s.to_string()).to_bytes()
}

/// The data reg.exe stores for `/t kind /d text` (`sep`: the `/s` separator of REG_MULTI_SZ,
/// `\0` when not given). Numbers are decimal or `0x` hex; REG_BINARY is hex digits in pairs;
/// REG_MULTI_SZ is split at `sep` (empty text: no strings); every other type is stored as a
/// NUL-terminated UTF-16LE string, as reg.exe stores it.
pub fn parse_data(kind: ValueType, text: &str, sep: &str) -> Result<Data, DataError> {
    Ok(match kind {
        ValueType::DWORD => Data::Dword(dword(text, "REG_DWORD")?),
        ValueType::DWORD_BIG_ENDIAN => Data::DwordBigEndian(dword(text, "REG_DWORD_BIG_ENDIAN")?),
        ValueType::QWORD => Data::Qword(parse_number(text)?),
        ValueType::BINARY => Data::Binary(hex_pairs(text)?),
        ValueType::MULTI_SZ => Data::MultiSz(if text.is_empty() {
            Vec::new()
        } else if sep.is_empty() {
            // reg.exe refuses an empty separator; `split("")` would cut between every character.
            return Err(DataError("the /s separator is empty.".into()));
        } else {
            text.split(sep).map(str::to_string).collect()
        }),
        ValueType::SZ => Data::Sz(text.to_string()),
        ValueType::EXPAND_SZ => Data::ExpandSz(text.to_string()),
        // REG_NONE, REG_LINK and numbered types: the string with its NUL, as reg.exe stores
        // it (REG_LINK's own encoding has no NUL: kept raw so the bytes stay reg.exe's).
        other => Data::Raw {
            value_type: other.0,
            bytes: utf16z(text),
        },
    })
}

fn hex_pairs(d: &str) -> Result<Vec<u8>, DataError> {
    if !d.len().is_multiple_of(2) || !d.is_ascii() {
        return Err(DataError(
            "REG_BINARY data needs an even number of hex digits.".into(),
        ));
    }
    (0..d.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&d[i..i + 2], 16)
                .map_err(|_| DataError(format!("{d:?} is not hex.")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn numbers_are_decimal_or_hex_and_must_fit() {
        assert_eq!(
            parse_data(ValueType::DWORD, "0x10", "").unwrap(),
            Data::Dword(16)
        );
        assert_eq!(
            parse_data(ValueType::DWORD, " 4294967295 ", "").unwrap(),
            Data::Dword(u32::MAX)
        );
        assert!(parse_data(ValueType::DWORD, "4294967296", "").is_err());
        assert!(parse_data(ValueType::DWORD, "", "").is_err());
        assert!(parse_data(ValueType::DWORD, "-1", "").is_err());
        assert_eq!(
            parse_data(ValueType::QWORD, "0xFFFFFFFFFFFFFFFF", "")
                .unwrap()
                .to_bytes(),
            vec![0xFF; 8]
        );
        assert_eq!(
            parse_data(ValueType::DWORD_BIG_ENDIAN, "1", "")
                .unwrap()
                .to_bytes(),
            vec![0, 0, 0, 1]
        );
    }

    #[test]
    fn multi_sz_uses_the_separator() {
        let d = parse_data(ValueType::MULTI_SZ, r"NSI\0Afd", r"\0").unwrap();
        assert_eq!(d.to_bytes(), utf16("NSI\0Afd\0\0"));
        let d = parse_data(ValueType::MULTI_SZ, "a,b", ",").unwrap();
        assert_eq!(d.to_bytes(), utf16("a\0b\0\0"));
        // An empty /d is a multi-string of no strings: the terminating empty string alone.
        let d = parse_data(ValueType::MULTI_SZ, "", r"\0").unwrap();
        assert_eq!(d.to_bytes(), vec![0, 0]);
        // A trailing separator leaves an empty last string, as reg.exe writes it.
        let d = parse_data(ValueType::MULTI_SZ, "a,", ",").unwrap();
        assert_eq!(d, Data::MultiSz(vec!["a".into(), String::new()]));
        assert!(parse_data(ValueType::MULTI_SZ, "a", "").is_err());
    }

    #[test]
    fn binary_is_hex_pairs() {
        assert_eq!(
            parse_data(ValueType::BINARY, "00ff10", "").unwrap(),
            Data::Binary(vec![0, 0xFF, 0x10])
        );
        assert!(parse_data(ValueType::BINARY, "0", "").is_err());
        assert!(parse_data(ValueType::BINARY, "zz", "").is_err());
        // Not ASCII: never sliced inside a character.
        assert!(parse_data(ValueType::BINARY, "é0", "").is_err());
    }

    #[test]
    fn strings_and_other_types_are_utf16_with_a_nul() {
        let d = parse_data(ValueType::SZ, r"NT Authority\LocalService", "").unwrap();
        assert_eq!(d.to_bytes(), utf16("NT Authority\\LocalService\0"));
        assert_eq!(d.value_type(), ValueType::SZ);
        let d = parse_data(ValueType::EXPAND_SZ, r"%SystemRoot%\x", "").unwrap();
        assert_eq!(d.value_type(), ValueType::EXPAND_SZ);
        let d = parse_data(ValueType::NONE, "ab", "").unwrap();
        assert_eq!(
            (d.value_type(), d.to_bytes()),
            (ValueType::NONE, utf16("ab\0"))
        );
        let d = parse_data(ValueType(0x19), "", "").unwrap();
        assert_eq!(
            (d.value_type(), d.to_bytes()),
            (ValueType(0x19), vec![0, 0])
        );
    }
}
