//! One change to a hive, and the one place changes are made.
//!
//! Every fix winrescue plans (a rule's repair, a service plan, `reg`/`sc` edits) is a list of
//! [`Change`]s: which hive, which key and value, what to do, and why. [`apply`] makes them in a
//! [`Transaction`], which writes every hive it touched under one journal.

use regf::edit::{Editor, SetOutcome};
use regf::{Data, ValueType};
use serde::Serialize;

use crate::edit::Transaction;
use crate::error::Result;
use crate::offline::HiveId;

/// What to do at a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Set the value (creating the key first if it is missing).
    Set {
        #[serde(serialize_with = "type_name")]
        value_type: ValueType,
        data: Data,
    },
    DeleteValue,
    CreateKey,
    /// Delete the key and everything under it.
    DeleteKey,
    /// Set the key's security descriptor, as RegSetKeySecurity does (the key alone: Windows does
    /// not propagate it to subkeys either). `old` holds the descriptor there now, as binary.
    SetSecurity {
        /// The descriptor in SDDL, for people.
        sddl: String,
        /// Its self-relative bytes, as the `sk` cell stores them.
        #[serde(serialize_with = "hex")]
        descriptor: Vec<u8>,
    },
}

/// One change, with the reason that justifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub hive: HiveId,
    /// From the hive's root, e.g. `ControlSet001\Control\Terminal Server`.
    pub key: String,
    /// The value, for `Set` and `DeleteValue`.
    pub value: Option<String>,
    #[serde(flatten)]
    pub op: Op,
    /// The data there now (`None`: absent, or not a value change).
    pub old: Option<Data>,
    pub reason: String,
}

impl Change {
    /// Sets `value` at `key`.
    pub fn set(hive: HiveId, key: &str, value: &str, data: Data, reason: String) -> Change {
        Change {
            hive,
            key: key.into(),
            value: Some(value.into()),
            op: Op::Set {
                value_type: data.value_type(),
                data,
            },
            old: None,
            reason,
        }
    }

    /// Deletes `value` at `key`.
    pub fn delete_value(hive: HiveId, key: &str, value: &str, reason: String) -> Change {
        Change {
            hive,
            key: key.into(),
            value: Some(value.into()),
            op: Op::DeleteValue,
            old: None,
            reason,
        }
    }

    /// Deletes `key` and its subkeys.
    pub fn delete_key(hive: HiveId, key: &str, reason: String) -> Change {
        Change {
            hive,
            key: key.into(),
            value: None,
            op: Op::DeleteKey,
            old: None,
            reason,
        }
    }

    /// Sets the security descriptor of `key` to `descriptor` (self-relative bytes, which must
    /// parse); `old` is the one there now.
    pub fn set_security(
        hive: HiveId,
        key: &str,
        descriptor: Vec<u8>,
        old: Vec<u8>,
        reason: String,
    ) -> Result<Change> {
        let sddl = regf::security::SecurityDescriptor::parse(&descriptor)?.sddl();
        Ok(Change {
            hive,
            key: key.into(),
            value: None,
            op: Op::SetSecurity { sddl, descriptor },
            old: Some(Data::Binary(old)),
            reason,
        })
    }

    /// The same change, recording what is there now.
    pub fn was(mut self, old: Option<Data>) -> Change {
        self.old = old;
        self
    }

    /// The changes of a service plan (SYSTEM).
    pub fn from_plan(c: &winsvc::plan::Change) -> Change {
        Change {
            hive: HiveId::System,
            key: c.key_path.clone(),
            value: Some(c.value_name.clone()),
            op: match &c.new_data {
                Some(d) => Op::Set {
                    value_type: c.value_type,
                    data: d.clone(),
                },
                None => Op::DeleteValue,
            },
            old: c.old_data.clone(),
            reason: c.reason.clone(),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hive = self.hive.file_name();
        let value = self.value.as_deref().unwrap_or("");
        let show = |d: &Option<Data>| {
            d.as_ref()
                .map(winsvc::show_data)
                .unwrap_or_else(|| "(absent)".into())
        };
        match &self.op {
            Op::Set { value_type, data } => write!(
                f,
                "{hive}\\{}\\{value}: {} -> {value_type} {}",
                self.key,
                show(&self.old),
                winsvc::show_data(data)
            ),
            Op::DeleteValue => write!(
                f,
                "{hive}\\{}\\{value}: {} -> (deleted)",
                self.key,
                show(&self.old)
            ),
            Op::CreateKey => write!(f, "{hive}\\{}: create the key", self.key),
            Op::DeleteKey => write!(f, "{hive}\\{}: delete the key", self.key),
            Op::SetSecurity { sddl, .. } => {
                let old = match &self.old {
                    Some(Data::Binary(b)) => regf::security::SecurityDescriptor::parse(b)
                        .map(|d| d.sddl())
                        .unwrap_or_else(|_| "(unreadable)".into()),
                    _ => "(unknown)".into(),
                };
                write!(f, "{hive}\\{}: security {old} -> {sddl}", self.key)
            }
        }?;
        write!(f, " ({})", self.reason)
    }
}

/// A value type by its name (`REG_DWORD`), or `REG_0x..` for one without a name.
fn type_name<S: serde::Serializer>(t: &ValueType, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t.name() {
        Some(n) => s.serialize_str(n),
        None => s.serialize_str(&format!("REG_0x{:x}", t.0)),
    }
}

/// Bytes as lower-case hex, as JSON shows a descriptor.
fn hex<S: serde::Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// Makes one change in an editor. Returns whether the hive changed.
pub fn apply_one(ed: &mut Editor, c: &Change) -> Result<bool> {
    let value = c.value.as_deref().unwrap_or("");
    Ok(match &c.op {
        Op::Set { value_type, data } => {
            // Both always run: a new key still needs its value.
            let created = ed.create_key(&c.key)?;
            let set = ed.set_value(&c.key, value, *value_type, &data.to_bytes())?;
            created || set != SetOutcome::Unchanged
        }
        Op::DeleteValue => ed.delete_value(&c.key, value)?,
        Op::CreateKey => ed.create_key(&c.key)?,
        Op::DeleteKey => ed.delete_key(&c.key)?,
        Op::SetSecurity { descriptor, .. } => ed.set_security(&c.key, descriptor)?,
    })
}

/// Makes `changes` in the transaction, each in its hive. Returns whether anything changed.
pub fn apply(tx: &mut Transaction, changes: &[Change]) -> Result<bool> {
    let mut changed = false;
    for c in changes {
        let editor = match c.hive {
            HiveId::System => tx.hive(None)?,
            HiveId::Software => {
                let path = tx
                    .target()
                    .sibling_hive_path(tx.install(), HiveId::Software.file_name());
                tx.hive(Some(&path))?
            }
            HiveId::BootStore => tx.boot_store()?.ok_or_else(|| {
                crate::Error::Refused("the target holds no boot store to change".into())
            })?,
        };
        changed |= apply_one(editor, c)?;
    }
    Ok(changed)
}
