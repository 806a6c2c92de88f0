//! What `reg query` and `reg export` read from a key.

use regf::{Data, Key};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::path::{components, HiveName};

/// One value as `reg query` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueriedValue {
    /// Empty for the default (unnamed) value.
    pub name: String,
    /// The stored type number (`data` may be [`Data::Raw`] when the bytes do not fit it).
    pub value_type: u32,
    pub data: Data,
}

/// A key as `reg query` lists it: its values, then its subkeys (with `/s`, each listed in
/// full).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueriedKey {
    /// The key as the user named it, with each subkey's name appended below it.
    pub key: String,
    pub values: Vec<QueriedValue>,
    /// The subkeys' names (not listed for `/v`).
    pub subkeys: Vec<String>,
    /// With `/s`: each subkey, listed in full, in the order of `subkeys`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<QueriedKey>,
}

fn queried(v: &regf::Value<'_>) -> Result<QueriedValue> {
    Ok(QueriedValue {
        name: v.name().to_string_lossy(),
        value_type: v.value_type().0,
        data: v.data()?,
    })
}

/// `reg query KEY [/v NAME | /ve] [/s]`: `shown` is the key as the user wrote it. A value that
/// is not there is [`Error::NotFound`].
pub fn query(k: &Key<'_>, shown: &str, value: Option<&str>, recurse: bool) -> Result<QueriedKey> {
    let mut out = QueriedKey {
        key: shown.to_string(),
        values: Vec::new(),
        subkeys: Vec::new(),
        children: Vec::new(),
    };
    if let Some(name) = value {
        let v = k
            .value(name)?
            .ok_or_else(|| Error::NotFound(format!("{shown} /v {name}")))?;
        out.values.push(queried(&v)?);
        return Ok(out);
    }
    for v in k.values()? {
        out.values.push(queried(&v?)?);
    }
    for sub in k.subkeys()? {
        let sub = sub?;
        let name = sub.name().to_string_lossy();
        if recurse {
            out.children
                .push(query(&sub, &format!("{shown}\\{name}"), None, true)?);
        }
        out.subkeys.push(name);
    }
    Ok(out)
}

/// The path a `reg export` file gives the key: `HKEY_LOCAL_MACHINE\<root>\<path>`, where the
/// root is the name the user wrote after `HKLM\` (`BROKENSYSTEM` stays `BROKENSYSTEM`, as reg.exe
/// keeps it) or the hive's own name, and `path` the key's path inside the hive.
pub fn export_prefix(given: &str, hive: HiveName, path: &str) -> String {
    let parts = components(given);
    let hklm = parts.first().is_some_and(|r| {
        r.eq_ignore_ascii_case("HKLM") || r.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE")
    });
    let mount = if hklm { parts.get(1).copied() } else { None };
    [
        "HKEY_LOCAL_MACHINE",
        mount.unwrap_or(hive.file_name()),
        path,
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_keeps_the_root_as_written() {
        assert_eq!(
            export_prefix(
                r"HKLM\BROKENSYSTEM\CurrentControlSet\Services\Dhcp",
                HiveName::System,
                r"ControlSet001\Services\Dhcp"
            ),
            r"HKEY_LOCAL_MACHINE\BROKENSYSTEM\ControlSet001\Services\Dhcp"
        );
        assert_eq!(
            export_prefix(r"Select", HiveName::System, "Select"),
            r"HKEY_LOCAL_MACHINE\SYSTEM\Select"
        );
        assert_eq!(
            export_prefix(r"HKLM\SOFTWARE", HiveName::Software, ""),
            r"HKEY_LOCAL_MACHINE\SOFTWARE"
        );
    }
}
