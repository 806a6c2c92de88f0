//! The changes reg.exe and sc.exe make, applied to a hive being edited in a
//! [`rescue::edit::Transaction`] (through [`crate::offline::Session`]), each reported as an
//! [`Applied`] record that text and JSON both render.

use regf::edit::{Editor, SetOutcome};
use regf::Data;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::path::{inner_path, KeyRef};
use crate::reg::{RegOp, ValueSel};

/// What a value held before a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "data", rename_all = "snake_case")]
pub enum Before {
    /// There was no such value.
    Absent,
    /// It held this data already: nothing changes.
    Same,
    /// It held other data (or the same data with another type).
    Other(Data),
}

/// One change made (or, in a dry run, planned). `key` is the key as the command named it (a
/// reg.exe path as typed, a `.reg` section, or the path inside the SYSTEM hive for sc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Applied {
    CreateKey {
        key: String,
    },
    /// The key and everything below it.
    DeleteKey {
        key: String,
    },
    SetValue {
        key: String,
        name: String,
        /// The new data; its type is `data.value_type()`.
        data: Data,
        before: Before,
    },
    DeleteValue {
        key: String,
        name: String,
    },
}

impl Applied {
    /// Whether the hive changes (a value set to what it holds does not).
    pub fn changes(&self) -> bool {
        !matches!(
            self,
            Applied::SetValue {
                before: Before::Same,
                ..
            }
        )
    }
}

/// Data of type `t` whose stored bytes are exactly `bytes`: decoded when that is lossless,
/// [`Data::Raw`] otherwise (a string without its NUL, a 3-byte DWORD), so that what a `.reg`
/// file spells is what is stored.
pub fn exact_data(t: regf::ValueType, bytes: &[u8]) -> Data {
    let d = Data::decode(t, bytes);
    if d.to_bytes() == bytes {
        d
    } else {
        Data::Raw {
            value_type: t.0,
            bytes: bytes.to_vec(),
        }
    }
}

/// Whether any of the records changes the hive.
pub fn any_change(applied: &[Applied]) -> bool {
    applied.iter().any(Applied::changes)
}

/// Sets `name` under `path` to `data`: the one place reg and sc turn data into stored bytes
/// ([`regf::Data::to_bytes`]) with its type ([`regf::Data::value_type`]).
pub fn set_value(
    ed: &mut Editor,
    path: &str,
    shown: &str,
    name: &str,
    data: &Data,
) -> Result<Applied> {
    let before = match ed.set_value(path, name, data.value_type(), &data.to_bytes())? {
        SetOutcome::Unchanged => Before::Same,
        SetOutcome::Created => Before::Absent,
        SetOutcome::Updated { old_type, old_data } => {
            Before::Other(Data::decode(old_type, &old_data))
        }
    };
    Ok(Applied::SetValue {
        key: shown.to_string(),
        name: name.to_string(),
        data: data.clone(),
        before,
    })
}

/// Deletes `name` under `path`; `None` when there was no such value.
pub fn delete_value(
    ed: &mut Editor,
    path: &str,
    shown: &str,
    name: &str,
) -> Result<Option<Applied>> {
    Ok(ed.delete_value(path, name)?.then(|| Applied::DeleteValue {
        key: shown.to_string(),
        name: name.to_string(),
    }))
}

/// Applies a reg.exe ADD or DELETE to the hive `k` names; `shown` is the key as the user wrote
/// it. ADD creates the key when it is missing; DELETE of a key or value that is not there is
/// [`Error::NotFound`].
pub fn apply_reg(ed: &mut Editor, k: &KeyRef, shown: &str, op: &RegOp) -> Result<Vec<Applied>> {
    let path = inner_path(&ed.hive()?, k.hive, &k.parts)?;
    let mut out = Vec::new();
    match op {
        RegOp::Add { value, data, .. } => {
            if ed.create_key(&path)? {
                out.push(Applied::CreateKey {
                    key: shown.to_string(),
                });
            }
            if let Some(name) = value {
                out.push(set_value(ed, &path, shown, name, data)?);
            }
        }
        RegOp::Delete { value, .. } => {
            if ed.hive()?.key(&path)?.is_none() {
                return Err(Error::NotFound(shown.to_string()));
            }
            match value {
                None => {
                    ed.delete_key(&path)?;
                    out.push(Applied::DeleteKey {
                        key: shown.to_string(),
                    });
                }
                Some(ValueSel::One(name)) => match delete_value(ed, &path, shown, name)? {
                    Some(a) => out.push(a),
                    None => return Err(Error::NotFound(format!("{shown} /v {name}"))),
                },
                Some(ValueSel::All) => {
                    let names: Vec<String> = match ed.hive()?.key(&path)? {
                        Some(node) => node
                            .values()?
                            .filter_map(|v| v.ok())
                            .map(|v| v.name().to_string_lossy())
                            .collect(),
                        None => Vec::new(),
                    };
                    for n in names {
                        out.extend(delete_value(ed, &path, shown, &n)?);
                    }
                }
            }
        }
        // Only ADD and DELETE edit; the other operations change nothing.
        _ => {}
    }
    Ok(out)
}

/// Applies one `.reg` section (resolved to `k`) to the hive: `[-key]` deletes the key and
/// everything below it, otherwise the key is created and each value set or (`"name"=-`)
/// deleted. Records name the key as the section wrote it.
pub fn apply_section(
    ed: &mut Editor,
    k: &KeyRef,
    section: &regf::regfile::Section,
) -> Result<Vec<Applied>> {
    let path = inner_path(&ed.hive()?, k.hive, &k.parts)?;
    let shown = section.path.as_str();
    let mut out = Vec::new();
    if section.delete {
        if ed.delete_key(&path)? {
            out.push(Applied::DeleteKey {
                key: shown.to_string(),
            });
        }
        return Ok(out);
    }
    if ed.create_key(&path)? {
        out.push(Applied::CreateKey {
            key: shown.to_string(),
        });
    }
    for e in &section.values {
        match &e.data {
            Some((t, bytes)) => out.push(set_value(
                ed,
                &path,
                shown,
                &e.name,
                &exact_data(*t, bytes),
            )?),
            None => out.extend(delete_value(ed, &path, shown, &e.name)?),
        }
    }
    Ok(out)
}
