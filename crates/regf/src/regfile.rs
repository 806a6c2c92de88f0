//! Windows `.reg` text ("Windows Registry Editor Version 5.00"), as regedit and `reg export`
//! write it.
//!
//! Strings that are exactly one NUL-terminated UTF-16 string are written as `"..."`, DWORDs of 4
//! bytes as `dword:`, everything else as `hex(T):` with the raw bytes, so that importing the text
//! gives back the same bytes (regedit itself rewrites odd strings; we keep them exact).

use std::io::{self, Write};

use crate::hive::walk_from;
use crate::key::Key;
use crate::names::Name;
use crate::value::{Data, Value, ValueType};
use crate::Result;

/// The first line of every file.
pub const HEADER: &str = "Windows Registry Editor Version 5.00";

/// Writes `key` and everything below it. `prefix` is the full path of `key` as it should appear
/// in brackets, e.g. `HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001`. Keys or values that cannot be
/// read are written as `; error: ...` comments so that the output says what it skipped.
pub fn export(key: &Key<'_>, prefix: &str, out: &mut dyn Write) -> io::Result<ExportStats> {
    let mut w = io::BufWriter::with_capacity(1 << 16, out);
    write!(w, "{HEADER}\r\n")?;
    let mut stats = ExportStats::default();
    let mut line = String::with_capacity(256);
    let mut result = Ok(());
    walk_from(key, |path, item| {
        if result.is_ok() {
            result = write_key(&mut w, prefix, path, item, &mut line, &mut stats);
        }
    });
    result?;
    w.flush()?;
    Ok(stats)
}

fn write_key(
    w: &mut dyn Write,
    prefix: &str,
    path: &str,
    item: Result<&Key<'_>>,
    line: &mut String,
    stats: &mut ExportStats,
) -> io::Result<()> {
    let k = match item {
        Ok(k) => k,
        Err(e) => {
            stats.errors += 1;
            return write!(w, "; error under {path:?}: {e}\r\n");
        }
    };
    stats.keys += 1;
    w.write_all(b"\r\n[")?;
    w.write_all(prefix.as_bytes())?;
    if !path.is_empty() {
        w.write_all(b"\\")?;
        w.write_all(path.as_bytes())?;
    }
    w.write_all(b"]\r\n")?;
    let values = match k.values() {
        Ok(v) => v,
        Err(e) => {
            stats.errors += 1;
            return write!(w, "; error: {e}\r\n");
        }
    };
    for v in values {
        match v.and_then(|v| value_line(&v, line)) {
            Ok(()) => {
                stats.values += 1;
                w.write_all(line.as_bytes())?;
            }
            Err(e) => {
                stats.errors += 1;
                write!(w, "; error: {e}\r\n")?;
            }
        }
    }
    Ok(())
}

/// What [`export`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    pub keys: usize,
    pub values: usize,
    pub errors: usize,
}

/// Formats one value as its `.reg` line(s), CRLF-terminated, into `line`.
pub fn value_line(v: &Value<'_>, line: &mut String) -> Result<()> {
    line.clear();
    let name = v.name();
    if name.len_units() == 0 {
        line.push('@');
    } else {
        line.push('"');
        match name {
            Name::Latin1(b) => escape_chars(b.iter().map(|&c| char::from(c)), line),
            Name::Utf16(b) => escape_chars(
                char::decode_utf16(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)),
                line,
            ),
        }
        line.push('"');
    }
    line.push('=');
    let raw = v.raw_data()?;
    let t = v.value_type();
    data_text(t, &raw, line);
    line.push_str("\r\n");
    Ok(())
}

/// The text after `=` for data of type `t`.
pub fn data_text(t: ValueType, raw: &[u8], line: &mut String) {
    match t {
        ValueType::SZ if plain_string_into(raw, line) => {}
        ValueType::DWORD if raw.len() == 4 => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let v = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            line.push_str("dword:");
            for shift in (0..8).rev() {
                line.push(char::from(HEX[(v >> (4 * shift)) as usize & 15]));
            }
        }
        _ => {
            use std::fmt::Write as _;
            if t == ValueType::BINARY {
                line.push_str("hex:");
            } else {
                let _ = write!(line, "hex({:x}):", t.0);
            }
            let col = line.len() - line.rfind('\n').map_or(0, |i| i + 1);
            hex_wrapped(raw, line, col);
        }
    }
}

/// `01,02,...` wrapped like regedit: lines of at most 80 columns ending in `,\` and continued
/// with two spaces.
fn hex_wrapped(raw: &[u8], line: &mut String, mut col: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Three characters a byte, and five more for each of the lines of about 25 bytes.
    line.reserve(raw.len() * 3 + raw.len() / 4);
    for (i, b) in raw.iter().enumerate() {
        line.push(HEX[usize::from(b >> 4)] as char);
        line.push(HEX[usize::from(b & 15)] as char);
        col += 2;
        if i + 1 < raw.len() {
            line.push(',');
            col += 1;
            if col > 76 {
                line.push_str("\\\r\n  ");
                col = 2;
            }
        }
    }
}

/// If `raw` is one string, NUL-terminated, with no NUL inside and nothing after (what `"..."`
/// round-trips), appends it quoted and escaped to `line` and returns true; otherwise leaves
/// `line` as it was and returns false.
fn plain_string_into(raw: &[u8], line: &mut String) -> bool {
    if raw.len() < 2 || !raw.len().is_multiple_of(2) || raw[raw.len() - 2..] != [0, 0] {
        return false;
    }
    let body = &raw[..raw.len() - 2];
    let start = line.len();
    line.push('"');
    // No NUL inside, no lone surrogate (which would not survive the trip through UTF-8), no
    // line break (regedit's parser cannot read one inside quotes), and no other control
    // character (a terminal would act on it, and the CLI escapes it on output, which would
    // change the data): those strings are written in the hex(1) form instead.
    for c in char::decode_utf16(
        body.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]])),
    ) {
        match c {
            Err(_) => {
                line.truncate(start);
                return false;
            }
            Ok(c) if c.is_control() && c != '\t' => {
                line.truncate(start);
                return false;
            }
            Ok('\\') => line.push_str("\\\\"),
            Ok('"') => line.push_str("\\\""),
            Ok(c) => line.push(c),
        }
    }
    line.push('"');
    true
}

fn escape_chars(chars: impl Iterator<Item = char>, out: &mut String) {
    for c in chars {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// One `[key]` section of a `.reg` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The path between the brackets, without a leading `-`.
    pub path: String,
    /// `[-path]`: delete the key and everything below it.
    pub delete: bool,
    /// 1-based line of the `[` for error messages.
    pub line: usize,
    pub values: Vec<Entry>,
}

/// One `"name"=data` line (`@` is the default value, name `""`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// `None` for `"name"=-` (delete the value).
    pub data: Option<(ValueType, Vec<u8>)>,
    pub line: usize,
}

/// An error in a `.reg` file, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".reg line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

/// Parses the text of a `.reg` file (version 5.00, or REGEDIT4 whose strings are the same here).
/// Line continuations (`\` at the end of a hex line) and `;` comments are handled.
pub fn parse(text: &str) -> std::result::Result<Vec<Section>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let err = |line, what: String| ParseError { line, what };
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER || h.trim() == "REGEDIT4" => {}
        Some((n, h)) => {
            return Err(err(
                n,
                format!("expected the header {HEADER:?}, found {h:?}"),
            ))
        }
        None => return Err(err(1, "empty file".into())),
    }
    let mut sections: Vec<Section> = Vec::new();
    while let Some((n, raw)) = lines.next() {
        let l = raw.trim_start();
        if l.is_empty() || l.starts_with(';') {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let Some(inner) = rest.trim_end().strip_suffix(']') else {
                return Err(err(n, "key line does not end with ']'".into()));
            };
            let (delete, path) = match inner.strip_prefix('-') {
                Some(p) => (true, p),
                None => (false, inner),
            };
            sections.push(Section {
                path: path.to_string(),
                delete,
                line: n,
                values: Vec::new(),
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(err(n, "value line before any [key] line".into()));
        };
        // Join continuation lines of hex data.
        let mut full = l.to_string();
        while full.ends_with('\\') && is_hex_line(&full) {
            full.pop();
            match lines.next() {
                Some((_, next)) => full.push_str(next.trim()),
                None => return Err(err(n, "file ends inside a continued line".into())),
            }
        }
        let (name, rest) = parse_name(&full).map_err(|w| err(n, w))?;
        let data =
            parse_data(rest.trim_start()).map_err(|w| err(n, format!("value {name:?}: {w}")))?;
        section.values.push(Entry {
            name,
            data,
            line: n,
        });
    }
    Ok(sections)
}

fn is_hex_line(l: &str) -> bool {
    l.contains("=hex")
        || l.trim_start().starts_with(|c: char| c.is_ascii_hexdigit())
            && !l.trim_start().starts_with('"')
}

/// `"name"=` or `@=`; returns the unescaped name and what follows the `=`.
fn parse_name(l: &str) -> std::result::Result<(String, &str), String> {
    if let Some(rest) = l.strip_prefix('@') {
        let rest = rest
            .trim_start()
            .strip_prefix('=')
            .ok_or("expected '=' after '@'")?;
        return Ok((String::new(), rest));
    }
    let body = l
        .strip_prefix('"')
        .ok_or_else(|| format!("expected a quoted value name or '@', found {l:?}"))?;
    let (name, after) = unquote(body)?;
    let rest = after
        .trim_start()
        .strip_prefix('=')
        .ok_or("expected '=' after the value name")?;
    Ok((name, rest))
}

/// Reads a quoted string body (after the opening quote) up to its closing quote.
fn unquote(s: &str) -> std::result::Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => return Err("string ends with a lone backslash".into()),
            },
            '"' => return Ok((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

fn parse_data(d: &str) -> std::result::Result<Option<(ValueType, Vec<u8>)>, String> {
    if d == "-" {
        return Ok(None);
    }
    if let Some(body) = d.strip_prefix('"') {
        let (s, rest) = unquote(body)?;
        if !rest.trim().is_empty() {
            return Err(format!("unexpected text after the string: {rest:?}"));
        }
        return Ok(Some((ValueType::SZ, Data::Sz(s).to_bytes())));
    }
    if let Some(hex) = d.strip_prefix("dword:") {
        let v = u32::from_str_radix(hex.trim(), 16).map_err(|_| format!("bad dword {hex:?}"))?;
        return Ok(Some((ValueType::DWORD, Data::Dword(v).to_bytes())));
    }
    let (t, list) = if let Some(l) = d.strip_prefix("hex:") {
        (ValueType::BINARY, l)
    } else if let Some(r) = d.strip_prefix("hex(") {
        let close = r.find("):").ok_or("expected 'hex(T):'")?;
        let t = u32::from_str_radix(&r[..close], 16)
            .map_err(|_| format!("bad type in hex({})", &r[..close]))?;
        (ValueType(t), &r[close + 2..])
    } else {
        return Err(format!("unknown data {d:?}"));
    };
    let mut bytes = Vec::with_capacity(list.len() / 3 + 1);
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        bytes.push(u8::from_str_radix(part, 16).map_err(|_| format!("bad hex byte {part:?}"))?);
    }
    Ok(Some((t, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_regedit_writes() {
        let text = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\A]\r\n\"S\"=\"a\\\\b\\\"c\"\r\n@=dword:0000002a\r\n\"H\"=hex(7):41,00,00,\\\r\n  00,00,00\r\n\"X\"=-\r\n[-HKEY_LOCAL_MACHINE\\SYSTEM\\B]\r\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].values[0].name, "S");
        assert_eq!(
            s[0].values[0].data.as_ref().unwrap().1,
            "a\\b\"c\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            s[0].values[1].data,
            Some((ValueType::DWORD, vec![42, 0, 0, 0]))
        );
        assert_eq!(
            s[0].values[2].data,
            Some((ValueType::MULTI_SZ, vec![0x41, 0, 0, 0, 0, 0]))
        );
        assert_eq!(s[0].values[3].data, None);
        assert!(s[1].delete);
    }

    #[test]
    fn strings_with_control_characters_are_written_as_hex() {
        let utf16 = |s: &str| {
            s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        };
        let mut line = String::new();
        assert!(plain_string_into(&utf16("a\tb\0"), &mut line));
        assert_eq!(line, "\"a\tb\"");
        line.clear();
        assert!(!plain_string_into(&utf16("a\x1b[2Jb\0"), &mut line));
        assert!(line.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("Windows Registry Editor Version 5.00\n[A]\n\"v\"=dword:zz\n").unwrap_err();
        assert_eq!(e.line, 3);
    }
}
