//! Windows `.reg` text ("Windows Registry Editor Version 5.00"), as regedit and `reg export`
//! write it.
//!
//! Strings that are exactly one NUL-terminated UTF-16 string are written as `"..."`, DWORDs of 4
//! bytes as `dword:`, everything else as `hex(T):` with the raw bytes, so that importing the text
//! gives back the same bytes (regedit itself rewrites odd strings; we keep them exact).

use std::io::{self, Write};

use crate::key::Key;
use crate::value::{Value, ValueType};
use crate::hive::walk_from;
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
    write!(w, "\r\n[{prefix}")?;
    if !path.is_empty() {
        write!(w, "\\{path}")?;
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
        escape_into(&name.to_string_lossy(), line);
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
        ValueType::SZ if is_plain_string(raw) => {
            line.push('"');
            escape_into(&crate::value::utf16_until_nul(raw), line);
            line.push('"');
        }
        ValueType::DWORD if raw.len() == 4 => {
            use std::fmt::Write as _;
            let _ = write!(line, "dword:{:08x}", u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]));
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

/// One string, NUL-terminated, with no NUL inside and nothing after: what `"..."` round-trips.
fn is_plain_string(raw: &[u8]) -> bool {
    if raw.len() < 2 || raw.len() % 2 != 0 {
        return false;
    }
    let units = raw.len() / 2;
    let unit = |i: usize| u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]);
    if unit(units - 1) != 0 {
        return false;
    }
    // No NUL inside, no lone surrogate (which would not survive the trip through UTF-8), and no
    // line break (regedit's parser cannot read one inside quotes).
    let body: Vec<u16> = (0..units - 1).map(unit).collect();
    !body.iter().any(|&u| u == 0 || u == u16::from(b'\r') || u == u16::from(b'\n')) && String::from_utf16(&body).is_ok()
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}
