//! The Windows boot configuration store (BCD), read from its registry hive.
//!
//! A BCD store is a regf hive (`\EFI\Microsoft\Boot\BCD` on the EFI system partition,
//! `\Boot\BCD` on the active partition of an MBR disk). Each object is a key
//! `Objects\{guid}` with its type in `Description\Type` (REG_DWORD) and one subkey per element
//! under `Elements`, named by the element id in 8 hex digits, whose value `Element` holds the
//! data: integers as 8 little-endian bytes and booleans as 1 byte (REG_BINARY), strings and
//! single GUIDs as REG_SZ, GUID lists as REG_MULTI_SZ.
//!
//! # Getting started
//! ```no_run
//! # fn main() -> Result<(), bcd::Error> {
//! let bytes = std::fs::read("BCD").unwrap();
//! let hive = regf::Hive::open(bytes)?;
//! let store = bcd::Store::new(&hive)?;
//! println!("default: {:?}", store.default_entry()?);
//! if let Some(sb) = store.safe_boot()? {
//!     println!("{} boots into safe mode ({:?}); delete {}", sb.entry, sb.mode, sb.element_key());
//! }
//! # Ok(()) }
//! ```
//!
//! Sources: Microsoft, "BCD WMI Provider Enumerations": `BcdBootMgrElementTypes`
//! (`BcdBootMgrObject_DefaultObject` = 0x23000003), `BcdOSLoaderElementTypes`
//! (`BcdOSLoaderInteger_SafeBoot` = 0x25000080, `BcdOSLoaderBoolean_SafeBootAlternateShell` =
//! 0x26000081), `BcdLibraryElementTypes` (`BcdLibraryString_Description` = 0x12000004,
//! `BcdLibraryObjectList_InheritedObjects` = 0x14000006), `BcdLibrary_SafeBoot` (0 minimal,
//! 1 network, 2 DsRepair), and "Windows Boot Manager" well-known GUIDs
//! (`{9dea862c-5cdd-4e70-acc1-f32b344d4795}`); the element id's class and format nibbles as
//! Geoff Chappell's "BCD Elements" describes them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::HashSet;

use regf::{Hive, Key, ValueType};

/// The boot manager's object, `{bootmgr}`.
pub const BOOTMGR: &str = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}";

/// Element ids this crate reads (see the crate's sources).
pub mod element {
    /// `BcdBootMgrObject_DefaultObject`: the boot manager's default entry (a GUID).
    pub const DEFAULT_OBJECT: u32 = 0x2300_0003;
    /// `BcdLibraryString_Description`: an entry's display name.
    pub const DESCRIPTION: u32 = 0x1200_0004;
    /// `BcdLibraryObjectList_InheritedObjects`: objects whose elements this one inherits.
    pub const INHERITED_OBJECTS: u32 = 0x1400_0006;
    /// `BcdOSLoaderInteger_SafeBoot`: boot into safe mode (`bcdedit /set safeboot`).
    pub const SAFE_BOOT: u32 = 0x2500_0080;
    /// `BcdOSLoaderBoolean_SafeBootAlternateShell`: safe mode with the command prompt.
    pub const SAFE_BOOT_ALTERNATE_SHELL: u32 = 0x2600_0081;
}

/// How deep inherited objects are followed; Windows stores chain them two or three deep.
const MAX_INHERIT_DEPTH: usize = 8;

/// What can go wrong reading a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hive itself is damaged.
    #[error(transparent)]
    Registry(#[from] regf::Error),
    /// The hive is readable but is not a BCD store as Windows writes one.
    #[error("BCD store: {key}: {what}")]
    Malformed {
        /// The key concerned (`Objects\{guid}\Elements\25000080`).
        key: String,
        /// What is wrong, with the value found.
        what: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn malformed(key: impl Into<String>, what: impl Into<String>) -> Error {
    Error::Malformed {
        key: key.into(),
        what: what.into(),
    }
}

/// The key of an element: `Objects\{guid}\Elements\25000080`.
pub fn element_key(object: &str, id: u32) -> String {
    format!(r"Objects\{object}\Elements\{id:08x}")
}

/// A BCD store over an opened hive.
pub struct Store<'h, B> {
    hive: &'h Hive<B>,
}

/// One object of the store.
pub struct Object<'h> {
    guid: String,
    key: Key<'h>,
}

/// One element's raw value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// The element id (`0x25000080`).
    pub id: u32,
    /// The registry type of its `Element` value.
    pub value_type: ValueType,
    /// The data as stored.
    pub data: Vec<u8>,
}

/// The safe-mode choices of `BcdLibrary_SafeBoot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SafeBootMode {
    /// 0: the drivers and services of `Control\SafeBoot\Minimal`.
    Minimal,
    /// 1: the same plus networking (`Control\SafeBoot\Network`).
    Network,
    /// 2: Directory Services Repair mode.
    DsRepair,
    /// A value Microsoft does not document; Windows still boots into safe mode.
    Other(u64),
}

/// The default entry boots into safe mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafeBoot {
    /// The default entry (`{guid}`).
    pub entry: String,
    /// The object holding the `safeboot` element: the entry itself, or an object it inherits.
    pub object: String,
    /// Which safe mode.
    pub mode: SafeBootMode,
    /// `safebootalternateshell` is set to true as well (the command prompt instead of Explorer).
    pub alternate_shell: bool,
}

impl SafeBoot {
    /// The key whose deletion turns safe mode off: `Objects\{object}\Elements\25000080`, as
    /// `bcdedit /deletevalue {default} safeboot` removes it. The alternate-shell element is
    /// left alone: bcdedit keeps it too, and it only matters in safe mode.
    pub fn element_key(&self) -> String {
        element_key(&self.object, element::SAFE_BOOT)
    }
}

impl Element {
    /// An integer element: 8 little-endian bytes.
    pub fn integer(&self) -> Result<u64> {
        match <[u8; 8]>::try_from(&self.data[..]) {
            Ok(b) if self.value_type == ValueType::BINARY => Ok(u64::from_le_bytes(b)),
            _ => Err(self.wrong("an integer (8 bytes of REG_BINARY)")),
        }
    }

    /// A boolean element: 1 byte (Windows also reads a longer little-endian integer).
    pub fn boolean(&self) -> Result<bool> {
        if self.value_type != ValueType::BINARY || self.data.is_empty() || self.data.len() > 8 {
            return Err(self.wrong("a boolean (1 byte of REG_BINARY)"));
        }
        Ok(self.data.iter().any(|&b| b != 0))
    }

    /// A string or single-GUID element (REG_SZ).
    pub fn string(&self) -> Result<String> {
        if self.value_type != ValueType::SZ {
            return Err(self.wrong("a string (REG_SZ)"));
        }
        Ok(regf::value::utf16_until_nul(&self.data))
    }

    /// A GUID-list element (REG_MULTI_SZ).
    pub fn list(&self) -> Result<Vec<String>> {
        if self.value_type != ValueType::MULTI_SZ {
            return Err(self.wrong("a list (REG_MULTI_SZ)"));
        }
        Ok(regf::value::multi_sz(&self.data))
    }

    fn wrong(&self, expected: &str) -> Error {
        malformed(
            format!(r"Elements\{:08x}", self.id),
            format!(
                "expected {expected}, found {} of {} bytes",
                self.value_type.name().unwrap_or("an unknown type"),
                self.data.len()
            ),
        )
    }
}

impl<'h> Object<'h> {
    /// Its GUID as the key names it (`{...}`).
    pub fn guid(&self) -> &str {
        &self.guid
    }

    /// Its type (`Description\Type`), e.g. 0x10200003 for a Windows OS loader.
    pub fn object_type(&self) -> Result<Option<u32>> {
        let Some(d) = self.key.subkey("Description")? else {
            return Ok(None);
        };
        let Some(v) = d.value("Type")? else {
            return Ok(None);
        };
        match v.data()?.as_u64() {
            Some(t) if v.value_type() == ValueType::DWORD => Ok(Some(t as u32)),
            _ => Err(malformed(
                format!(r"Objects\{}\Description", self.guid),
                "Type is not a REG_DWORD",
            )),
        }
    }

    /// The element `id` set on this object itself (not inherited), if any.
    pub fn element(&self, id: u32) -> Result<Option<Element>> {
        let Some(els) = self.key.subkey("Elements")? else {
            return Ok(None);
        };
        let Some(k) = els.subkey(&format!("{id:08x}"))? else {
            return Ok(None);
        };
        let Some(v) = k.value("Element")? else {
            return Err(malformed(element_key(&self.guid, id), "no Element value"));
        };
        Ok(Some(Element {
            id,
            value_type: v.value_type(),
            data: v.raw_data()?.into_owned(),
        }))
    }

    /// Its description (`BcdLibraryString_Description`), e.g. "Windows 10".
    pub fn description(&self) -> Result<Option<String>> {
        self.element(element::DESCRIPTION)?
            .map(|e| e.string())
            .transpose()
    }
}

impl<'h, B: regf::Source> Store<'h, B> {
    /// The store in `hive`; refuses a hive without an `Objects` key (not a BCD store).
    pub fn new(hive: &'h Hive<B>) -> Result<Store<'h, B>> {
        if hive.key("Objects")?.is_none() {
            return Err(malformed("Objects", "missing: the hive is not a BCD store"));
        }
        Ok(Store { hive })
    }

    /// The object `{guid}` (case-insensitive), if the store has it.
    pub fn object(&self, guid: &str) -> Result<Option<Object<'h>>> {
        let Some(key) = self.hive.key(&format!(r"Objects\{guid}"))? else {
            return Ok(None);
        };
        Ok(Some(Object {
            guid: key.name().to_string_lossy(),
            key,
        }))
    }

    /// The GUIDs of every object, in the order of the hive.
    pub fn objects(&self) -> Result<Vec<String>> {
        let objects = self
            .hive
            .key("Objects")?
            .ok_or_else(|| malformed("Objects", "missing"))?;
        let mut out = Vec::new();
        for k in objects.subkeys()? {
            out.push(k?.name().to_string_lossy());
        }
        Ok(out)
    }

    /// The boot manager's default entry (`{guid}`), `None` if the boot manager has none.
    pub fn default_entry(&self) -> Result<Option<String>> {
        let Some(mgr) = self.object(BOOTMGR)? else {
            return Ok(None);
        };
        match mgr.element(element::DEFAULT_OBJECT)? {
            Some(e) => Ok(Some(e.string()?.trim().to_string())),
            None => Ok(None),
        }
    }

    /// The element `id` of `object` as Windows sees it: set on the object itself, or else
    /// on the first object of its inherited objects (depth first, in list order) that sets it.
    /// Returns the element and the GUID of the object that holds it.
    pub fn effective_element(&self, object: &str, id: u32) -> Result<Option<(Element, String)>> {
        let mut seen = HashSet::new();
        self.effective(object, id, 0, &mut seen)
    }

    fn effective(
        &self,
        object: &str,
        id: u32,
        depth: usize,
        seen: &mut HashSet<String>,
    ) -> Result<Option<(Element, String)>> {
        // A loop or a missing inherited object adds nothing, as for Windows' loader.
        if depth > MAX_INHERIT_DEPTH || !seen.insert(object.to_ascii_lowercase()) {
            return Ok(None);
        }
        let Some(obj) = self.object(object)? else {
            return Ok(None);
        };
        if let Some(e) = obj.element(id)? {
            return Ok(Some((e, obj.guid)));
        }
        if let Some(list) = obj.element(element::INHERITED_OBJECTS)? {
            for parent in list.list()? {
                if let Some(found) = self.effective(parent.trim(), id, depth + 1, seen)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// Whether the default entry boots into safe mode: its effective `safeboot` element.
    /// `None` when there is no default entry or it has no `safeboot`. A default entry that
    /// names no object of the store is an error: what it would boot cannot be told.
    pub fn safe_boot(&self) -> Result<Option<SafeBoot>> {
        let Some(entry) = self.default_entry()? else {
            return Ok(None);
        };
        let Some(obj) = self.object(&entry)? else {
            return Err(malformed(
                element_key(BOOTMGR, element::DEFAULT_OBJECT),
                format!("the default entry {entry} is not an object of the store"),
            ));
        };
        let Some((e, holder)) = self.effective_element(&obj.guid, element::SAFE_BOOT)? else {
            return Ok(None);
        };
        let mode = match e.integer()? {
            0 => SafeBootMode::Minimal,
            1 => SafeBootMode::Network,
            2 => SafeBootMode::DsRepair,
            n => SafeBootMode::Other(n),
        };
        let alternate_shell =
            match self.effective_element(&obj.guid, element::SAFE_BOOT_ALTERNATE_SHELL)? {
                Some((e, _)) => e.boolean()?,
                None => false,
            };
        Ok(Some(SafeBoot {
            entry: obj.guid,
            object: holder,
            mode,
            alternate_shell,
        }))
    }
}

/// Turns safe mode off in the store being edited: deletes the `safeboot` element key that
/// `sb` names. Returns whether it was there.
pub fn remove_safe_boot(editor: &mut regf::edit::Editor, sb: &SafeBoot) -> Result<bool> {
    Ok(editor.delete_key(&sb.element_key())?)
}
