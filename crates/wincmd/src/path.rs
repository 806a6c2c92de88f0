//! The registry path grammar of reg.exe on an offline Windows: which hive a key names and the
//! path inside it.
//!
//! - `HKLM\SYSTEM`, `HKLM\SOFTWARE`, `HKLM\SAM`, `HKLM\SECURITY`, `HKLM\DEFAULT` (and
//!   `HKEY_LOCAL_MACHINE\...`) name the hives of `Windows\System32\config`.
//! - Any other name after `HKLM\` is what `reg load` called a hive on a recovery VM (the article's
//!   `HKLM\BROKENSYSTEM`). With [`Mounts::default`] (single commands) it is taken as SYSTEM, with
//!   a note; with [`Mounts::strict`] (scripts) only names given by [`Mounts::load`] are accepted.
//! - A key without a root is a path in SYSTEM.
//! - `CurrentControlSet` is resolved by [`inner_path`] through the services model's own policy,
//!   [`winsvc::SystemModel::current`].

use std::collections::HashMap;

use regf::Hive;
use serde::Serialize;

use crate::error::{Error, Result};

/// The hives of `Windows\System32\config` a root can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HiveName {
    System,
    Software,
    Sam,
    Security,
    Default,
}

impl HiveName {
    /// From a hive's file or mount name (`SYSTEM`, `software`), `None` for any other name.
    pub fn from_name(name: &str) -> Option<HiveName> {
        Some(match name.to_ascii_uppercase().as_str() {
            "SYSTEM" => HiveName::System,
            "SOFTWARE" => HiveName::Software,
            "SAM" => HiveName::Sam,
            "SECURITY" => HiveName::Security,
            "DEFAULT" => HiveName::Default,
            _ => return None,
        })
    }

    /// The file name in `Windows\System32\config`.
    pub fn file_name(self) -> &'static str {
        match self {
            HiveName::System => "SYSTEM",
            HiveName::Software => "SOFTWARE",
            HiveName::Sam => "SAM",
            HiveName::Security => "SECURITY",
            HiveName::Default => "DEFAULT",
        }
    }
}

/// A reg.exe key path reduced to a hive and a path inside it (`CurrentControlSet` not resolved
/// yet: that needs the hive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRef {
    pub hive: HiveName,
    /// Path components inside the hive.
    pub parts: Vec<String>,
    /// The name after `HKLM\` when it is not a hive's own name (`BROKENSYSTEM`) and no
    /// `reg load` gave it: taken as SYSTEM, which the caller should say.
    pub assumed_mount: Option<String>,
}

impl KeyRef {
    /// The note for [`KeyRef::assumed_mount`].
    pub fn note(&self) -> Option<String> {
        self.assumed_mount.as_ref().map(|m| {
            format!("HKLM\\{m} is not a hive name: taken as the SYSTEM hive (the name `reg load` gives it on a recovery VM)")
        })
    }
}

/// The names `reg load` lines gave to hives (upper-cased mount name -> hive), and whether an
/// unknown name is taken to mean SYSTEM (single commands) or refused (scripts).
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    loaded: HashMap<String, HiveName>,
    strict: bool,
}

fn is_hklm(root: &str) -> bool {
    root.eq_ignore_ascii_case("HKLM") || root.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE")
}

/// The non-empty components of a key path.
pub fn components(key: &str) -> Vec<&str> {
    key.split('\\').filter(|p| !p.is_empty()).collect()
}

impl Mounts {
    /// For a script: only names given by `reg load` lines.
    pub fn strict() -> Mounts {
        Mounts {
            loaded: HashMap::new(),
            strict: true,
        }
    }

    /// `reg load KEY FILE`: the hive is the one FILE's name names (its drive and folder are
    /// those of a recovery VM and are ignored).
    pub fn load(&mut self, key: &str, file: &str) -> Result<HiveName> {
        let name = mount_name(key)?;
        let file_name = file.rsplit(['\\', '/']).next().unwrap_or(file);
        let hive = HiveName::from_name(file_name).ok_or_else(|| Error::NotAConfigHive {
            file: file.to_string(),
        })?;
        if self.loaded.contains_key(&name.to_ascii_uppercase()) {
            return Err(Error::LoadedAlready { name });
        }
        self.loaded.insert(name.to_ascii_uppercase(), hive);
        Ok(hive)
    }

    /// `reg unload KEY`.
    pub fn unload(&mut self, key: &str) -> Result<()> {
        let name = mount_name(key)?;
        if self.loaded.remove(&name.to_ascii_uppercase()).is_none() {
            return Err(Error::NotLoaded { name });
        }
        Ok(())
    }

    /// Maps a reg.exe key path to a hive and a path inside it.
    pub fn resolve(&self, key: &str) -> Result<KeyRef> {
        let parts = components(key);
        let Some(root) = parts.first() else {
            return Err(Error::RegSyntax("an empty key name.".into()));
        };
        if lost_backslashes(key) {
            return Err(Error::KeyLostBackslashes {
                key: key.to_string(),
            });
        }
        if !is_hklm(root) {
            const OTHER_ROOTS: [&str; 8] = [
                "HKCU",
                "HKCR",
                "HKU",
                "HKCC",
                "HKEY_CURRENT_USER",
                "HKEY_USERS",
                "HKEY_CLASSES_ROOT",
                "HKEY_CURRENT_CONFIG",
            ];
            if OTHER_ROOTS.iter().any(|x| root.eq_ignore_ascii_case(x)) {
                return Err(Error::InvalidKeyName(format!("{root} is not a root of an offline Windows; use HKLM\\SYSTEM, HKLM\\SOFTWARE, HKLM\\SAM, HKLM\\SECURITY or the name a reg load line gave")));
            }
            if self.strict {
                return Err(Error::InvalidKeyName(format!(
                    "{key}: a script names keys from HKLM\\<the name of its reg load line>"
                )));
            }
            return Ok(KeyRef {
                hive: HiveName::System,
                parts: parts.iter().map(|s| s.to_string()).collect(),
                assumed_mount: None,
            });
        }
        let Some(mount) = parts.get(1) else {
            return Err(Error::InvalidKeyName(format!(
                "{key}: HKLM itself is not a hive; name one (HKLM\\SYSTEM ...)"
            )));
        };
        let rest: Vec<String> = parts[2..].iter().map(|s| s.to_string()).collect();
        if let Some(h) = self.loaded.get(&mount.to_ascii_uppercase()) {
            return Ok(KeyRef {
                hive: *h,
                parts: rest,
                assumed_mount: None,
            });
        }
        if self.strict {
            return Err(Error::MountUnknown {
                name: mount.to_string(),
            });
        }
        Ok(match HiveName::from_name(mount) {
            Some(h) => KeyRef {
                hive: h,
                parts: rest,
                assumed_mount: None,
            },
            None => KeyRef {
                hive: HiveName::System,
                parts: rest,
                assumed_mount: Some(mount.to_string()),
            },
        })
    }
}

/// Whether `key` is a key path whose backslashes an unquoted shell word lost
/// (`HKLM\SYSTEM\Select` typed without quotes reaches a program as `HKLMSYSTEMSelect`).
pub fn lost_backslashes(key: &str) -> bool {
    if key.contains('\\') {
        return false;
    }
    let upper = key.to_ascii_uppercase();
    let Some(root) = ["HKEY_LOCAL_MACHINE", "HKLM"]
        .into_iter()
        .find(|r| upper.starts_with(r) && upper.len() > r.len())
    else {
        return false;
    };
    let rest = &upper[root.len()..];
    ["SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT", "BROKEN"]
        .into_iter()
        .any(|h| rest.starts_with(h))
}

fn mount_name(key: &str) -> Result<String> {
    match components(key).as_slice() {
        [root, name] if is_hklm(root) => Ok(name.to_string()),
        _ => Err(Error::InvalidKeyName(format!(
            "reg load and unload take HKLM\\<name>, not {key}"
        ))),
    }
}

/// The key without a leading `HKLM\SYSTEM` (or `HKEY_LOCAL_MACHINE\SOFTWARE` ...), when it has
/// one: what a reg.exe user types, and what a hive file does not hold.
pub fn below_root(key: &str) -> Option<String> {
    let parts = components(key);
    let root = parts.first()?;
    (is_hklm(root) && parts.len() >= 2).then(|| parts[2..].join("\\"))
}

/// The name of the control set `CurrentControlSet` stands for in `hive`: the services model's
/// [`winsvc::SystemModel::current`].
pub fn current_control_set<B: regf::Source>(hive: &Hive<B>) -> Result<String> {
    let model = winsvc::SystemModel::read(hive, None)?;
    Ok(model.current()?.name.clone())
}

/// The path inside `hive` of `parts`, a leading `CurrentControlSet` of SYSTEM resolved by
/// [`current_control_set`].
pub fn inner_path<B: regf::Source>(
    hive: &Hive<B>,
    name: HiveName,
    parts: &[String],
) -> Result<String> {
    let mut out: Vec<String> = parts.to_vec();
    if let Some(first) = out.first_mut() {
        if name == HiveName::System && first.eq_ignore_ascii_case("CurrentControlSet") {
            *first = current_control_set(hive)?;
        }
    }
    Ok(out.join("\\"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_map_to_hives() {
        let m = Mounts::default();
        let k = m.resolve(r"HKLM\SOFTWARE\Microsoft").unwrap();
        assert_eq!(
            (k.hive, k.parts.clone(), k.assumed_mount),
            (HiveName::Software, vec!["Microsoft".to_string()], None)
        );
        let k = m.resolve(r"hkey_local_machine\sam\SAM").unwrap();
        assert_eq!(k.hive, HiveName::Sam);
        // Repeated and trailing backslashes are not empty components.
        let k = m.resolve(r"HKLM\\SYSTEM\\Select\").unwrap();
        assert_eq!((k.hive, k.parts), (HiveName::System, vec!["Select".into()]));
        // No root: a path in SYSTEM.
        let k = m.resolve(r"ControlSet001\Services").unwrap();
        assert_eq!((k.hive, k.parts.len()), (HiveName::System, 2));
    }

    #[test]
    fn brokensystem_is_system_with_a_note() {
        let m = Mounts::default();
        let k = m
            .resolve(r"HKEY_LOCAL_MACHINE\BROKENSYSTEM\ControlSet001")
            .unwrap();
        assert_eq!(k.hive, HiveName::System);
        assert_eq!(k.assumed_mount.as_deref(), Some("BROKENSYSTEM"));
        assert!(k.note().unwrap().contains("HKLM\\BROKENSYSTEM"));
        // A script knows only what its reg load lines gave.
        let mut s = Mounts::strict();
        assert!(matches!(
            s.resolve(r"HKLM\BROKENSYSTEM\ControlSet001"),
            Err(Error::MountUnknown { name }) if name == "BROKENSYSTEM"
        ));
        assert_eq!(
            s.load(r"HKLM\BROKENSOFT", r"F:\Windows\System32\config\software")
                .unwrap(),
            HiveName::Software
        );
        let k = s.resolve(r"HKLM\brokensoft\Microsoft").unwrap();
        assert_eq!((k.hive, k.assumed_mount), (HiveName::Software, None));
        assert!(matches!(
            s.load(r"HKLM\BrokenSoft", r"F:\x\SYSTEM"),
            Err(Error::LoadedAlready { .. })
        ));
        s.unload(r"HKLM\BROKENSOFT").unwrap();
        assert!(matches!(
            s.unload(r"HKLM\BROKENSOFT"),
            Err(Error::NotLoaded { .. })
        ));
        assert!(matches!(
            s.load(r"HKLM\U", r"C:\Users\bob\NTUSER.DAT"),
            Err(Error::NotAConfigHive { .. })
        ));
        assert!(matches!(
            s.load(r"HKLM\A\B", r"F:\SYSTEM"),
            Err(Error::InvalidKeyName(_))
        ));
    }

    #[test]
    fn other_roots_and_bare_hklm_are_refused() {
        let m = Mounts::default();
        for bad in [r"HKCU\Software", r"HKEY_USERS\S-1-5-18", "HKLM", r"HKLM\"] {
            assert!(
                matches!(m.resolve(bad), Err(Error::InvalidKeyName(_))),
                "{bad}"
            );
        }
        assert!(matches!(m.resolve(r"\\"), Err(Error::RegSyntax(_))));
        assert!(matches!(
            m.resolve("HKLMSYSTEMCurrentControlSetServicesDhcp"),
            Err(Error::KeyLostBackslashes { .. })
        ));
        // A root-less word that merely starts like one is a key in SYSTEM.
        assert!(m.resolve("HKLMX").is_ok());
    }

    #[test]
    fn below_root_strips_hklm_and_the_hive() {
        assert_eq!(
            below_root(r"HKLM\SYSTEM\CurrentControlSet\Services").as_deref(),
            Some(r"CurrentControlSet\Services")
        );
        assert_eq!(below_root(r"HKLM\SYSTEM").as_deref(), Some(""));
        assert_eq!(below_root(r"ControlSet001\Services"), None);
    }
}
