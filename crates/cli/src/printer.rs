//! Shared renderings of registry data: reg.exe's text layout and a JSON shape for scripts.

use regf::{Data, Value};
use serde_json::{json, Value as Json};

/// Hex digits, upper case, no separators (reg.exe's rendering of binary data).
pub fn hex_upper(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Data as `reg query` prints it.
pub fn reg_text(data: &Data) -> String {
    match data {
        Data::Sz(s) | Data::ExpandSz(s) | Data::Link(s) => s.clone(),
        Data::Dword(v) | Data::DwordBigEndian(v) => format!("0x{v:x}"),
        Data::Qword(v) => format!("0x{v:x}"),
        Data::MultiSz(parts) => parts.join("\\0"),
        Data::None(b) | Data::Binary(b) | Data::Raw { bytes: b, .. } => hex_upper(b),
    }
}

/// The type as `reg query` names it (`REG_0x19` style for unknown types).
pub fn type_name(t: regf::ValueType) -> String {
    t.name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("REG_0x{:x}", t.0))
}

/// A value's name for display: `(Default)` for the unnamed value, as regedit shows it.
pub fn value_name(v: &Value<'_>) -> String {
    if v.name().len_units() == 0 {
        "(Default)".into()
    } else {
        v.name().to_string_lossy()
    }
}

/// One value as JSON: name, type, size, and data as a string, a number, a list of strings, or
/// hex for anything binary.
pub fn value_json(v: &Value<'_>) -> Json {
    let name = v.name().to_string_lossy();
    match v.data() {
        Ok(data) => {
            let d = match &data {
                Data::Sz(s) | Data::ExpandSz(s) | Data::Link(s) => json!(s),
                Data::Dword(n) | Data::DwordBigEndian(n) => json!(n),
                Data::Qword(n) => json!(n),
                Data::MultiSz(p) => json!(p),
                Data::None(b) | Data::Binary(b) | Data::Raw { bytes: b, .. } => json!(hex_upper(b)),
            };
            json!({"name": name, "type": type_name(v.value_type()), "type_code": v.value_type().0, "size": v.data_len(), "data": d})
        }
        Err(e) => {
            json!({"name": name, "type": type_name(v.value_type()), "type_code": v.value_type().0, "error": e.to_string()})
        }
    }
}
