//! The service model of a SYSTEM hive: control sets, `Select`, services and drivers, the group
//! order list. Everything is read once into owned values so that the analysis and the CLI never
//! touch the hive again.

use std::collections::HashMap;

use regf::{Data, Hive, Key, ValueType};
use serde::Serialize;

use crate::version::WindowsVersion;
use crate::{Error, Result};

/// A value as the SCM would read it: present with the expected type, absent, present with
/// another type (a finding, e.g. `Start` stored as REG_SZ), or unreadable (damaged cell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum Field<T> {
    Missing,
    Ok(T),
    WrongType { found: String, data: Data },
    Unreadable(String),
}

impl<T> Field<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Field::Ok(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Field::Missing)
    }

    /// A short text for messages: the value, `(absent)`, `(REG_SZ "2", expected REG_DWORD)`.
    pub fn describe(&self, show: impl Fn(&T) -> String, expected: &str) -> String {
        match self {
            Field::Ok(v) => show(v),
            Field::Missing => "(absent)".into(),
            Field::WrongType { found, data } => {
                format!("({found} {}, expected {expected})", show_data(data))
            }
            Field::Unreadable(e) => format!("(unreadable: {e})"),
        }
    }
}

/// Registry data as `reg`-style text, for messages.
pub fn show_data(d: &Data) -> String {
    match d {
        Data::Dword(v) | Data::DwordBigEndian(v) => format!("0x{v:x} ({v})"),
        Data::Qword(v) => format!("0x{v:x}"),
        Data::Sz(s) | Data::ExpandSz(s) | Data::Link(s) => format!("{s:?}"),
        Data::MultiSz(v) => format!("{v:?}"),
        Data::None(b) | Data::Binary(b) | Data::Raw { bytes: b, .. } => {
            let hex: Vec<String> = b.iter().take(16).map(|x| format!("{x:02x}")).collect();
            format!(
                "hex:{}{}",
                hex.join(","),
                if b.len() > 16 { ",..." } else { "" }
            )
        }
    }
}

/// The role `Select` gives a control set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    Current,
    Default,
    LastKnownGood,
    Failed,
}

/// `HKLM\SYSTEM\Select`: which control set is which. Windows boots `Current` (it is `Default`
/// unless the user picked Last Known Good); a fix written only to ControlSet001 is lost when
/// `Current` names another set, which is why every set is analysed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Select {
    pub current: Field<u32>,
    pub default: Field<u32>,
    pub last_known_good: Field<u32>,
    pub failed: Field<u32>,
}

impl Select {
    fn roles_of(&self, n: u32) -> Vec<Role> {
        [
            (&self.current, Role::Current),
            (&self.default, Role::Default),
            (&self.last_known_good, Role::LastKnownGood),
            (&self.failed, Role::Failed),
        ]
        .into_iter()
        .filter(|(f, _)| f.ok() == Some(&n))
        .map(|(_, r)| r)
        .collect()
    }
}

/// Who a service runs as, from its `ObjectName`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Account {
    LocalSystem,
    LocalService,
    NetworkService,
    /// `NT SERVICE\<name>`: a virtual account, always able to log on.
    Virtual(String),
    /// A user or managed account (`.\bob`, `DOMAIN\svc`, `svc@domain`): its password lives in
    /// LSA secrets and the SAM / the domain, so whether it can log on cannot be decided offline.
    Custom(String),
    /// Cannot be an account at all (empty, or an `NT AUTHORITY\` name that is not a service
    /// account): the logon fails with 1069.
    Invalid(String),
}

impl Account {
    /// Classifies an `ObjectName`. An absent ObjectName means LocalSystem for a Win32 service
    /// (that is what the SCM uses when CreateService got no account).
    pub fn classify(object_name: Option<&str>) -> Account {
        let Some(raw) = object_name else {
            return Account::LocalSystem;
        };
        let s = raw.trim().to_ascii_lowercase();
        match s.as_str() {
            "" => Account::Invalid(raw.to_string()),
            "localsystem" | ".\\localsystem" | "nt authority\\system" | "system" => {
                Account::LocalSystem
            }
            "nt authority\\localservice" | "nt authority\\local service" => Account::LocalService,
            "nt authority\\networkservice" | "nt authority\\network service" => {
                Account::NetworkService
            }
            _ => {
                if let Some(rest) = s.strip_prefix("nt service\\") {
                    if rest.is_empty() {
                        Account::Invalid(raw.to_string())
                    } else {
                        Account::Virtual(raw.to_string())
                    }
                } else if s.starts_with("nt authority\\") {
                    Account::Invalid(raw.to_string())
                } else {
                    Account::Custom(raw.to_string())
                }
            }
        }
    }

    /// A canonical spelling, used to compare the accounts of the services of one process.
    pub fn canonical(&self) -> String {
        match self {
            Account::LocalSystem => "LocalSystem".into(),
            Account::LocalService => "NT AUTHORITY\\LocalService".into(),
            Account::NetworkService => "NT AUTHORITY\\NetworkService".into(),
            Account::Virtual(s) | Account::Custom(s) | Account::Invalid(s) => s.to_lowercase(),
        }
    }
}

/// One key under `ControlSetNNN\Services`: a Win32 service or a driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// The key name as stored.
    pub name: String,
    /// The key path from the hive root, as stored (Windows 7 stores `services` in lower case).
    pub key_path: String,
    pub start: Field<u32>,
    pub service_type: Field<u32>,
    pub error_control: Field<u32>,
    pub object_name: Field<String>,
    pub image_path: Field<String>,
    /// `ServiceDll` in the service key itself (Windows 8 and later read it there too).
    pub service_dll: Field<String>,
    /// `Parameters\ServiceDll`, where svchost looks first.
    pub parameters_service_dll: Field<String>,
    pub depend_on_service: Field<Vec<String>>,
    pub depend_on_group: Field<Vec<String>>,
    pub group: Field<String>,
    pub delayed_autostart: Field<u32>,
    pub required_privileges: Field<Vec<String>>,
    pub service_sid_type: Field<u32>,
    pub display_name: Field<String>,
    /// Values or subkeys of this service that could not be read.
    pub read_errors: Vec<String>,
}

/// Service type bits (`Type`).
pub mod types {
    pub const KERNEL_DRIVER: u32 = 0x1;
    pub const FILE_SYSTEM_DRIVER: u32 = 0x2;
    pub const ADAPTER: u32 = 0x4;
    pub const RECOGNIZER_DRIVER: u32 = 0x8;
    pub const OWN_PROCESS: u32 = 0x10;
    pub const SHARE_PROCESS: u32 = 0x20;
    /// Windows 10 per-user service template / instance bits.
    pub const USER_SERVICE: u32 = 0x40;
    pub const USER_SERVICE_INSTANCE: u32 = 0x80;
    pub const INTERACTIVE: u32 = 0x100;
    pub const DRIVER_MASK: u32 = KERNEL_DRIVER | FILE_SYSTEM_DRIVER | ADAPTER | RECOGNIZER_DRIVER;
    pub const WIN32_MASK: u32 = OWN_PROCESS | SHARE_PROCESS;
}

impl Service {
    /// A key with no values (the start of a key being recreated).
    pub(crate) fn empty(key_path: &str, name: &str) -> Service {
        Service {
            name: name.to_string(),
            key_path: key_path.to_string(),
            start: Field::Missing,
            service_type: Field::Missing,
            error_control: Field::Missing,
            object_name: Field::Missing,
            image_path: Field::Missing,
            service_dll: Field::Missing,
            parameters_service_dll: Field::Missing,
            depend_on_service: Field::Missing,
            depend_on_group: Field::Missing,
            group: Field::Missing,
            delayed_autostart: Field::Missing,
            required_privileges: Field::Missing,
            service_sid_type: Field::Missing,
            display_name: Field::Missing,
            read_errors: Vec::new(),
        }
    }

    /// The values stored with a type the SCM does not read them as: (value name, the type
    /// found, the type the SCM reads). `Start` stored as REG_SZ makes the SCM skip the whole
    /// entry, so a writer checks this before storing anything in a service key.
    pub fn wrong_types(&self) -> Vec<(&'static str, String, &'static str)> {
        fn found<T>(f: &Field<T>) -> Option<String> {
            match f {
                Field::WrongType { found, .. } => Some(found.clone()),
                _ => None,
            }
        }
        const DWORD: &str = "REG_DWORD";
        const SZ: &str = "REG_SZ or REG_EXPAND_SZ";
        const MULTI: &str = "REG_MULTI_SZ";
        let fields = [
            ("Start", found(&self.start), DWORD),
            ("Type", found(&self.service_type), DWORD),
            ("ErrorControl", found(&self.error_control), DWORD),
            ("DelayedAutostart", found(&self.delayed_autostart), DWORD),
            ("ServiceSidType", found(&self.service_sid_type), DWORD),
            ("ObjectName", found(&self.object_name), SZ),
            ("ImagePath", found(&self.image_path), SZ),
            ("ServiceDll", found(&self.service_dll), SZ),
            (
                r"Parameters\ServiceDll",
                found(&self.parameters_service_dll),
                SZ,
            ),
            ("Group", found(&self.group), SZ),
            ("DisplayName", found(&self.display_name), SZ),
            ("DependOnService", found(&self.depend_on_service), MULTI),
            ("DependOnGroup", found(&self.depend_on_group), MULTI),
            (
                "RequiredPrivileges",
                found(&self.required_privileges),
                MULTI,
            ),
        ];
        fields
            .into_iter()
            .filter_map(|(name, f, expected)| f.map(|f| (name, f, expected)))
            .collect()
    }

    /// Whether `Type` says driver (kernel, file system, recognizer).
    pub fn is_driver(&self) -> bool {
        matches!(self.service_type.ok(), Some(t) if t & types::DRIVER_MASK != 0 && t & types::WIN32_MASK == 0)
    }

    /// The account for a Win32 service (absent ObjectName = LocalSystem). Unreadable or
    /// wrongly typed ObjectName gives `None`.
    pub fn account(&self) -> Option<Account> {
        match &self.object_name {
            Field::Missing => Some(Account::classify(None)),
            Field::Ok(s) => Some(Account::classify(Some(s))),
            _ => None,
        }
    }

    /// `DependOnService` entries that name services (the `+Group` entries excluded).
    pub fn service_dependencies(&self) -> Vec<String> {
        self.depend_on_service
            .ok()
            .map(|v| {
                v.iter()
                    .filter(|d| !d.starts_with('+') && !d.trim().is_empty())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Group dependencies: `DependOnGroup` plus the `+Group` entries of `DependOnService`
    /// (the form CreateService's lpDependencies uses, which some installers copy verbatim).
    pub fn group_dependencies(&self) -> Vec<String> {
        let mut out: Vec<String> = self.depend_on_group.ok().cloned().unwrap_or_default();
        if let Some(v) = self.depend_on_service.ok() {
            out.extend(
                v.iter()
                    .filter_map(|d| d.strip_prefix('+'))
                    .map(str::to_string),
            );
        }
        out.retain(|g| !g.trim().is_empty());
        out
    }

    /// The DLL svchost loads: `Parameters\ServiceDll` first, then the key's own `ServiceDll`.
    pub fn effective_service_dll(&self) -> Option<&str> {
        self.parameters_service_dll
            .ok()
            .or(self.service_dll.ok())
            .map(String::as_str)
    }

    /// The svchost group (`-k NAME`) when the image is svchost.exe.
    pub fn svchost_group(&self) -> Option<String> {
        self.image_path.ok().and_then(|p| svchost_group(p))
    }
}

/// A control set with its services.
#[derive(Debug, Clone, Serialize)]
pub struct ControlSet {
    /// The NNN of `ControlSetNNN`.
    pub number: u32,
    /// The key name as stored.
    pub name: String,
    pub roles: Vec<Role>,
    /// `Control\ServiceGroupOrder\List`.
    pub group_order: Field<Vec<String>>,
    pub services: Vec<Service>,
    /// The `Services` key path as stored.
    services_path: String,
    /// Keys below this control set that could not be read.
    pub read_errors: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl ControlSet {
    /// The service or driver named `name` (case-insensitive, like the SCM).
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.index
            .get(&name.trim().to_uppercase())
            .and_then(|&i| self.services.get(i))
    }

    pub fn is_current(&self) -> bool {
        self.roles.contains(&Role::Current)
    }

    pub(crate) fn service_mut(&mut self, name: &str) -> Option<&mut Service> {
        let i = *self.index.get(&name.trim().to_uppercase())?;
        self.services.get_mut(i)
    }

    /// Adds a service (used to check a plan that recreates a key).
    pub(crate) fn insert_service(&mut self, s: Service) {
        self.index
            .insert(s.name.to_uppercase(), self.services.len());
        self.services.push(s);
    }

    /// `Services` key path as stored (`ControlSet001\services` on Windows 7).
    pub fn services_path(&self) -> String {
        self.services_path.clone()
    }

    /// The members of a load-order group (services whose `Group` is `group`).
    pub fn group_members(&self, group: &str) -> Vec<&Service> {
        self.services
            .iter()
            .filter(
                |s| matches!(s.group.ok(), Some(g) if g.trim().eq_ignore_ascii_case(group.trim())),
            )
            .collect()
    }
}

/// Everything winsvc reads from a SYSTEM hive.
#[derive(Debug, Clone, Serialize)]
pub struct SystemModel {
    pub select: Select,
    /// Every `ControlSetNNN` below the root, by number.
    pub control_sets: Vec<ControlSet>,
    pub version: WindowsVersion,
    /// Things worth knowing about how the model was read (no `Select`, a fallback...).
    pub notes: Vec<String>,
}

impl SystemModel {
    /// Reads a SYSTEM hive. `version` comes from the SOFTWARE hive when the caller has it
    /// ([`WindowsVersion::from_software_hive`]); otherwise it is inferred from SYSTEM alone.
    pub fn read<B: regf::Source>(
        hive: &Hive<B>,
        version: Option<WindowsVersion>,
    ) -> Result<SystemModel> {
        let root = hive.root()?;
        let mut notes = Vec::new();
        let mut sets: Vec<(u32, Key<'_>)> = Vec::new();
        let mut root_keys = Vec::new();
        for k in root.subkeys()? {
            let k = match k {
                Ok(k) => k,
                Err(e) => {
                    notes.push(format!("a root subkey could not be read: {e}"));
                    continue;
                }
            };
            let name = k.name().to_string_lossy();
            if let Some(n) = control_set_number(&name) {
                sets.push((n, k));
            }
            root_keys.push(name);
        }
        if sets.is_empty() {
            return Err(Error::NotSystemHive {
                root_keys: root_keys.join(", "),
            });
        }
        sets.sort_by_key(|(n, _)| *n);

        let select = match root.subkey("Select")? {
            Some(k) => Select {
                current: read_dword(&k, "Current"),
                default: read_dword(&k, "Default"),
                last_known_good: read_dword(&k, "LastKnownGood"),
                failed: read_dword(&k, "Failed"),
            },
            None => {
                notes.push("no Select key: the control set Windows boots is not known".into());
                Select {
                    current: Field::Missing,
                    default: Field::Missing,
                    last_known_good: Field::Missing,
                    failed: Field::Missing,
                }
            }
        };
        if let Some(c) = select.current.ok() {
            if !sets.iter().any(|(n, _)| n == c) {
                notes.push(format!(
                    "Select\\Current = {c} but ControlSet{c:03} does not exist: Windows cannot boot this hive"
                ));
            }
        }

        let control_sets: Vec<ControlSet> = sets
            .iter()
            .map(|(n, k)| read_control_set(*n, k, &select))
            .collect();

        let version = match version {
            Some(v) => v,
            None => {
                let cs = control_sets
                    .iter()
                    .find(|c| c.is_current())
                    .unwrap_or(&control_sets[0]); // not empty: checked above
                let cs_key = sets.iter().find(|(n, _)| *n == cs.number).map(|(_, k)| *k);
                WindowsVersion::infer(&root, cs_key.as_ref(), cs)
            }
        };
        Ok(SystemModel {
            select,
            control_sets,
            version,
            notes,
        })
    }

    /// Convenience: opens `bytes` as a hive (strictly) and reads it.
    pub fn from_bytes(bytes: &[u8], version: Option<WindowsVersion>) -> Result<SystemModel> {
        let hive = Hive::open(bytes)?;
        Self::read(&hive, version)
    }

    pub fn control_set(&self, number: u32) -> Option<&ControlSet> {
        self.control_sets.iter().find(|c| c.number == number)
    }

    /// The control set every verdict is about: the one Windows boots next. That is
    /// `Select\Default` (Windows copies it into `CurrentControlSet` at boot unless the user picks
    /// Last Known Good), else `Select\Current`, else (no `Select` at all) the lowest. A set
    /// that `Select` names but that cannot be read is an error, never replaced by another set.
    /// The other sets are shown beside it, and a repair covers them all.
    pub fn boot_set(&self) -> Result<&ControlSet> {
        self.named_set(self.select.default.ok().or(self.select.current.ok()))
    }

    /// The control set the last session ran: `Select\Current`, else `Default`, else the
    /// lowest. This is what `CurrentControlSet` names in a registry path.
    pub fn current(&self) -> Result<&ControlSet> {
        self.named_set(self.select.current.ok().or(self.select.default.ok()))
    }

    fn named_set(&self, named: Option<&u32>) -> Result<&ControlSet> {
        match named {
            Some(&n) => self
                .control_set(n)
                .ok_or_else(|| Error::ControlSetUnreadable {
                    number: n,
                    why: if self.notes.is_empty() {
                        "it is missing".into()
                    } else {
                        self.notes.join("; ")
                    },
                }),
            // Never empty: `read` refuses a hive without a control set.
            None => Ok(&self.control_sets[0]),
        }
    }
}

/// `ControlSet001` -> 1 (any three digits, case-insensitive, as Windows names them).
fn control_set_number(name: &str) -> Option<u32> {
    let rest = name
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("ControlSet"))
        .and(name.get(10..))?;
    if rest.len() == 3 && rest.bytes().all(|b| b.is_ascii_digit()) {
        rest.parse().ok()
    } else {
        None
    }
}

fn read_control_set(number: u32, key: &Key<'_>, select: &Select) -> ControlSet {
    let name = key.name().to_string_lossy();
    let mut read_errors = Vec::new();
    let group_order = match key.descend(r"Control\ServiceGroupOrder") {
        Ok(Some(k)) => read_multi(&k, "List"),
        Ok(None) => Field::Missing,
        Err(e) => Field::Unreadable(e.to_string()),
    };
    let mut services = Vec::new();
    let mut services_path = format!("{name}\\Services");
    match key.subkey("Services") {
        Ok(Some(sk)) => {
            services_path = format!("{name}\\{}", sk.name().to_string_lossy());
            match sk.subkeys() {
                Ok(it) => {
                    for s in it {
                        match s {
                            Ok(s) => services.push(read_service(&services_path, &s)),
                            Err(e) => {
                                read_errors.push(format!("{services_path}: a service key: {e}"))
                            }
                        }
                    }
                }
                Err(e) => read_errors.push(format!("{services_path}: subkey list: {e}")),
            }
        }
        Ok(None) => read_errors.push(format!("{name}\\Services is missing")),
        Err(e) => read_errors.push(format!("{name}\\Services: {e}")),
    }
    let mut index = HashMap::new();
    for (i, s) in services.iter().enumerate() {
        // The first of two keys differing only in case wins, as the lookup by name would.
        index.entry(s.name.to_uppercase()).or_insert(i);
    }
    ControlSet {
        number,
        name,
        roles: select.roles_of(number),
        group_order,
        services,
        services_path,
        read_errors,
        index,
    }
}

fn read_service(services_path: &str, key: &Key<'_>) -> Service {
    let name = key.name().to_string_lossy();
    let mut read_errors = Vec::new();
    let parameters_service_dll = match key.subkey("Parameters") {
        Ok(Some(p)) => read_string(&p, "ServiceDll"),
        Ok(None) => Field::Missing,
        Err(e) => {
            read_errors.push(format!("Parameters: {e}"));
            Field::Unreadable(e.to_string())
        }
    };
    Service {
        key_path: format!("{services_path}\\{name}"),
        start: read_dword(key, "Start"),
        service_type: read_dword(key, "Type"),
        error_control: read_dword(key, "ErrorControl"),
        object_name: read_string(key, "ObjectName"),
        image_path: read_string(key, "ImagePath"),
        service_dll: read_string(key, "ServiceDll"),
        parameters_service_dll,
        depend_on_service: read_multi(key, "DependOnService"),
        depend_on_group: read_multi(key, "DependOnGroup"),
        group: read_string(key, "Group"),
        delayed_autostart: read_dword(key, "DelayedAutostart"),
        required_privileges: read_multi(key, "RequiredPrivileges"),
        service_sid_type: read_dword(key, "ServiceSidType"),
        display_name: read_string(key, "DisplayName"),
        name,
        read_errors,
    }
}

fn read_data(key: &Key<'_>, name: &str) -> Result<Option<(ValueType, Data)>, String> {
    match key.value(name) {
        Ok(Some(v)) => match v.data() {
            Ok(d) => Ok(Some((v.value_type(), d))),
            Err(e) => Err(e.to_string()),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The field for data of an unexpected type.
fn wrong<T>(t: ValueType, data: Data) -> Field<T> {
    Field::WrongType {
        found: t.to_string(),
        data,
    }
}

pub(crate) fn read_dword(key: &Key<'_>, name: &str) -> Field<u32> {
    match read_data(key, name) {
        Ok(Some((_, Data::Dword(v)))) => Field::Ok(v),
        Ok(Some((t, d))) => wrong(t, d),
        Ok(None) => Field::Missing,
        Err(e) => Field::Unreadable(e),
    }
}

/// REG_SZ or REG_EXPAND_SZ (the SCM expands ImagePath either way).
pub(crate) fn read_string(key: &Key<'_>, name: &str) -> Field<String> {
    match read_data(key, name) {
        Ok(Some((_, Data::Sz(s) | Data::ExpandSz(s)))) => Field::Ok(s),
        Ok(Some((t, d))) => wrong(t, d),
        Ok(None) => Field::Missing,
        Err(e) => Field::Unreadable(e),
    }
}

pub(crate) fn read_multi(key: &Key<'_>, name: &str) -> Field<Vec<String>> {
    match read_data(key, name) {
        Ok(Some((_, Data::MultiSz(v)))) => Field::Ok(v),
        Ok(Some((t, d))) => wrong(t, d),
        Ok(None) => Field::Missing,
        Err(e) => Field::Unreadable(e),
    }
}

/// A form of an image path that compares equal when the SCM would run the same command line:
/// case folded, `%windir%` / `\SystemRoot\` spelled `%systemroot%`, quotes dropped, spaces
/// collapsed. Services share a process only when their command lines are the same.
pub fn normalize_image_path(p: &str) -> String {
    let lower = p.trim().to_lowercase().replace('"', "");
    let lower = lower.replace("%windir%", "%systemroot%");
    let lower = match lower.strip_prefix("\\systemroot\\") {
        Some(rest) => format!("%systemroot%\\{rest}"),
        None => lower,
    };
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `-k NAME` argument of an svchost.exe command line.
pub fn svchost_group(image_path: &str) -> Option<String> {
    if !normalize_image_path(image_path).contains("svchost.exe") {
        return None;
    }
    let mut args = image_path.split_whitespace();
    while let Some(a) = args.next() {
        if a.eq_ignore_ascii_case("-k") || a.eq_ignore_ascii_case("/k") {
            return args.next().map(|g| g.trim_matches('"').to_string());
        }
    }
    None
}

/// The file an image path (or a ServiceDll) points at, in the form given to the caller's
/// file-exists oracle: Windows separators, the Windows directory written `%SystemRoot%`
/// (drivers' `\SystemRoot\...` and bare `system32\...` are relative to it), `\??\C:\x` as
/// `C:\x`, command-line arguments removed.
pub fn image_file(image_path: &str) -> String {
    let t = image_path.trim();
    let file = if let Some(rest) = t.strip_prefix('"') {
        rest.split('"').next().unwrap_or(rest).to_string()
    } else if let Some(i) = t.to_ascii_lowercase().find(".exe") {
        t[..i + 4].to_string()
    } else {
        t.to_string()
    };
    let file = file.strip_prefix("\\??\\").unwrap_or(&file).to_string();
    let lower = file.to_ascii_lowercase();
    for prefix in ["%systemroot%\\", "%windir%\\", "\\systemroot\\"] {
        if lower.starts_with(prefix) {
            return format!("%SystemRoot%\\{}", &file[prefix.len()..]);
        }
    }
    let has_drive = file.len() > 2 && file.as_bytes()[1] == b':';
    if !has_drive && !file.starts_with('\\') && !file.starts_with('%') {
        return format!("%SystemRoot%\\{file}");
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts() {
        assert_eq!(Account::classify(None), Account::LocalSystem);
        assert_eq!(
            Account::classify(Some("NT Authority\\LocalService")),
            Account::LocalService
        );
        assert_eq!(
            Account::classify(Some("nt authority\\networkservice")),
            Account::NetworkService
        );
        assert_eq!(
            Account::classify(Some("NT AUTHORITY\\SYSTEM")),
            Account::LocalSystem
        );
        assert!(matches!(
            Account::classify(Some("NT SERVICE\\MSSQL")),
            Account::Virtual(_)
        ));
        assert!(matches!(
            Account::classify(Some(".\\bob")),
            Account::Custom(_)
        ));
        assert!(matches!(Account::classify(Some("")), Account::Invalid(_)));
        assert!(matches!(
            Account::classify(Some("NT AUTHORITY\\Bob")),
            Account::Invalid(_)
        ));
    }

    #[test]
    fn image_paths() {
        let p = "%SystemRoot%\\system32\\svchost.exe -k LocalServiceNetworkRestricted -p";
        assert_eq!(
            svchost_group(p).as_deref(),
            Some("LocalServiceNetworkRestricted")
        );
        assert_eq!(image_file(p), "%SystemRoot%\\system32\\svchost.exe");
        assert_eq!(
            image_file("\\SystemRoot\\system32\\drivers\\afd.sys"),
            "%SystemRoot%\\system32\\drivers\\afd.sys"
        );
        assert_eq!(
            image_file("system32\\drivers\\nsiproxy.sys"),
            "%SystemRoot%\\system32\\drivers\\nsiproxy.sys"
        );
        assert_eq!(
            image_file("\"C:\\Program Files\\x\\y.exe\" -service"),
            "C:\\Program Files\\x\\y.exe"
        );
        assert_eq!(
            normalize_image_path("%systemroot%\\system32\\svchost.exe  -k LocalService"),
            normalize_image_path("%SystemRoot%\\System32\\svchost.exe -k LocalService")
        );
        assert_eq!(control_set_number("ControlSet002"), Some(2));
        assert_eq!(control_set_number("controlset010"), Some(10));
        assert_eq!(control_set_number("ControlSet1"), None);
    }
}
