//! Access rules: a service RDP needs must be able to open the registry keys it reads and
//! writes. A DACL that denies its token a right it needs makes the service fail with error 5
//! (ERROR_ACCESS_DENIED), the first row of the article's table, which the configuration
//! values alone never show.
//!
//! The token is the one the service control manager builds: the account of `ObjectName`, the
//! service SID when `ServiceSidType` asks for one, Everyone, Users, SERVICE, Authenticated Users
//! ([`Token::for_service`]). Each key's DACL is evaluated for it the way Windows' access check
//! does, and a right not granted is reported with the ACE that decides (a deny ACE, or none
//! granting it).
//!
//! The rights each key needs, and the healthy descriptor a repair restores, come from the real
//! hives of each Windows version (`data/access-baselines.json`, made and checked against the
//! hives by `tests/access_baselines.rs`; `reglookup -s` shows the same DACLs). A repair gives
//! the key that version's DACL and keeps its owner, group and SACL, through the one journaled
//! applier ([`Change::set_security`]).
//!
//! The token itself may be the cause: with `ServiceSidType` 0 the service SID is not in the
//! token, so the ACE that grants `NT SERVICE\<name>` its access no longer applies (the same for
//! another `ObjectName`). When the key's own DACL grants the token that the healthy `ObjectName`
//! and `ServiceSidType` of that Windows version give (read from the same real hives,
//! [`healthy_config`]), the finding names each value with its data and its healthy data and the
//! ACE that no longer matches, and the repair restores those values ([`Change::set`]), not the
//! DACL.

use std::sync::OnceLock;

use regf::security::{
    key_rights, Decider, GenericMapping, SecurityDescriptor, ServiceAccount, Sid, Token, DELETE,
    KEY_CREATE_SUB_KEY, KEY_READ, KEY_SET_VALUE, READ_CONTROL, SE_DACL_AUTO_INHERITED,
    SE_DACL_AUTO_INHERIT_REQ, SE_DACL_PROTECTED,
};
use regf::{Data, Hive, Key};
use rescue::change::Change;
use rescue::offline::{HiveId, Offline};
use serde::{Deserialize, Serialize};
use winsvc::Family;
use winsvc::{Account, ControlSet, Service};

use crate::report::{Finding, Location, Severity, Stage, Status};
use crate::rule::{Meta, Options, Rule};

/// A key a service must be able to open, with the rights it opens it for.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// Below the control set (`Services\Dhcp`); a last part `*` means every subkey.
    pub key: &'static str,
    pub rights: u32,
    /// What the service does there.
    pub what: &'static str,
}

/// The keys a service needs.
#[derive(Debug, Clone, Copy)]
pub struct AccessRule {
    pub service: &'static str,
    pub display_name: &'static str,
    pub stage: Stage,
    pub severity: Severity,
    pub needs: &'static [Need],
}

/// KEY_READ and KEY_CREATE_SUB_KEY (`CCLCSWRPRC`, 0x2001d).
const READ_CREATE: u32 = KEY_READ | KEY_CREATE_SUB_KEY;
/// Read, set values, create subkeys and delete (0x3001f).
const READ_WRITE: u32 = KEY_READ | KEY_SET_VALUE | KEY_CREATE_SUB_KEY | DELETE;
/// Read, set values and create subkeys, without delete (0x2001f).
const READ_WRITE_NO_DELETE: u32 = KEY_READ | KEY_SET_VALUE | KEY_CREATE_SUB_KEY;
/// KEY_READ without READ_CONTROL (0x19): what a write-restricted service (`ServiceSidType` 3:
/// BFE, MpsSvc) is granted on a key whose DACL has no ACE for its restricting SIDs. READ_CONTROL
/// is part of KEY_WRITE (STANDARD_RIGHTS_WRITE), so the second check of such a token refuses
/// it; the service does not need it.
const READ_NO_CONTROL: u32 = KEY_READ & !READ_CONTROL;
/// Read and set values, without READ_CONTROL (0x1b), for a write-restricted service as above.
const READ_SET_NO_CONTROL: u32 = READ_NO_CONTROL | KEY_SET_VALUE;

/// The rights a service may be required to hold on a key: reading, setting values, creating
/// subkeys and deleting (0x3001f). WRITE_DAC and WRITE_OWNER are administration, and
/// KEY_CREATE_LINK (which Windows 7 and 8.1 grant the DHCP Client on the interfaces, and Remote
/// Desktop Services on `RCM`) is not used on these keys: requiring them would call broken an
/// install that works.
pub const USABLE: u32 = READ_WRITE;

/// The access rules, in the order the report shows them.
///
/// Every key's `rights` are measured, not chosen: they are what the real SYSTEM hives of
/// Windows 7, 8.1 and 10 (`testdata/hives`, the control set Windows boots) grant the service's
/// own token (its `ObjectName` and its service SID, as [`service_token`] builds it), within
/// [`USABLE`], in all three versions (the intersection). `tests/access_baselines.rs` computes
/// them from the hives, writes them with each version's grant into
/// `data/access-baselines.json` (`measured`) and fails if a figure here differs. The keys are
/// the service's own key and those its service SID is granted by an ACE of its own (not
/// inherited) in all three hives (`reglookup -s` lists them), plus the keys of the RDP listener
/// that Remote Desktop Services reads. Keys granted to a service SID in some versions only (BFE
/// on `Control\Nsi` in 8.1 and 10, MpsSvc on `Dnscache` in 10) are not required.
///
/// Not here: `netvsc` is a kernel driver (its keys are opened in kernel mode, where no access
/// check is made), and no real hive of `testdata` has the Azure VM agent installed
/// (WindowsAzureGuestAgent, RdAgent), so no right of theirs can be measured.
pub static RULES: [AccessRule; 5] = [
    AccessRule {
        service: "Dhcp",
        display_name: "DHCP Client",
        stage: Stage::Network,
        severity: Severity::BlocksRdp,
        needs: &[
            Need {
                key: r"Services\Dhcp",
                rights: READ_CREATE,
                what: "reads its configuration",
            },
            Need {
                key: r"Services\Dhcp\Parameters",
                rights: READ_CREATE,
                what: "reads and extends its parameters",
            },
            Need {
                key: r"Services\Tcpip\Parameters",
                rights: READ_WRITE,
                what: "reads and writes the TCP/IP parameters",
            },
            Need {
                key: r"Services\Tcpip\Parameters\Interfaces",
                rights: READ_WRITE,
                what: "lists the interfaces",
            },
            Need {
                key: r"Services\Tcpip\Parameters\Interfaces\*",
                rights: READ_WRITE,
                what: "stores each interface's lease (DhcpIPAddress, Lease, ...)",
            },
        ],
    },
    AccessRule {
        service: "nsi",
        display_name: "Network Store Interface Service",
        stage: Stage::Network,
        severity: Severity::BlocksRdp,
        needs: &[
            Need {
                key: r"Services\nsi",
                rights: KEY_READ,
                what: "reads its configuration",
            },
            Need {
                key: r"Services\nsi\Parameters",
                rights: READ_CREATE,
                what: "reads and extends its parameters",
            },
        ],
    },
    AccessRule {
        service: "BFE",
        display_name: "Base Filtering Engine",
        stage: Stage::Firewall,
        severity: Severity::BlocksRdp,
        needs: &[
            Need {
                key: r"Services\BFE",
                rights: READ_NO_CONTROL,
                what: "reads its configuration",
            },
            Need {
                key: r"Services\BFE\Parameters\Policy",
                rights: READ_WRITE_NO_DELETE,
                what: "keeps the filtering policy",
            },
            Need {
                key: r"Services\BFE\Parameters\Policy\BootTime\Filter",
                rights: READ_WRITE_NO_DELETE,
                what: "stores the boot-time filters",
            },
            Need {
                key: r"Services\BFE\Parameters\Policy\Persistent\Filter",
                rights: READ_WRITE_NO_DELETE,
                what: "stores the persistent filters",
            },
        ],
    },
    AccessRule {
        service: "MpsSvc",
        display_name: "Windows Firewall",
        stage: Stage::Firewall,
        severity: Severity::BlocksRdp,
        needs: &[
            Need {
                key: r"Services\MpsSvc",
                rights: READ_NO_CONTROL,
                what: "reads its configuration",
            },
            Need {
                key: r"Services\SharedAccess\Parameters\FirewallPolicy",
                rights: READ_WRITE,
                what: "reads and writes the firewall policy",
            },
            Need {
                key: r"Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules",
                rights: READ_WRITE,
                what: "reads and writes the firewall rules (the RDP rules among them)",
            },
            Need {
                key: r"Services\SharedAccess\Parameters\FirewallPolicy\DomainProfile",
                rights: READ_WRITE,
                what: "reads the domain profile",
            },
            Need {
                key: r"Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile",
                rights: READ_WRITE,
                what: "reads the private profile",
            },
            Need {
                key: r"Services\SharedAccess\Parameters\FirewallPolicy\PublicProfile",
                rights: READ_WRITE,
                what: "reads the public profile",
            },
            Need {
                key: r"Services\SharedAccess\Defaults\FirewallPolicy",
                rights: READ_WRITE,
                what: "reads the default policy",
            },
            Need {
                key: r"Services\SharedAccess\Epoch",
                rights: READ_SET_NO_CONTROL,
                what: "counts the policy's changes",
            },
        ],
    },
    AccessRule {
        service: "TermService",
        display_name: "Remote Desktop Services",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        needs: &[
            Need {
                key: r"Services\TermService",
                rights: KEY_READ,
                what: "reads its configuration",
            },
            Need {
                key: r"Services\TermService\Parameters",
                rights: KEY_READ,
                what: "reads its parameters",
            },
            Need {
                key: r"Control\Terminal Server",
                rights: KEY_READ,
                what: "reads whether connections are allowed",
            },
            Need {
                key: r"Control\Terminal Server\WinStations",
                rights: KEY_READ,
                what: "lists the listeners",
            },
            Need {
                key: r"Control\Terminal Server\WinStations\RDP-Tcp",
                rights: KEY_READ,
                what: "reads the RDP listener (port, security layer, certificate)",
            },
            Need {
                key: r"Control\Terminal Server\RCM",
                rights: READ_WRITE,
                what: "keeps the Remote Connection Manager's state",
            },
            Need {
                key: r"Control\Terminal Server\RCM\Licensing Core",
                rights: READ_WRITE,
                what: "keeps the licensing state",
            },
        ],
    },
];

/// A healthy descriptor of one key on one Windows version, read from a real hive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub family: Family,
    /// The fixture it was read from (`testdata/hives/...`).
    pub hive: String,
    /// As in [`Need::key`].
    pub key: String,
    pub sddl: String,
    /// The self-relative descriptor in hex.
    pub descriptor: String,
}

/// The token configuration of a service on a healthy install of one Windows version, read from
/// a real hive: what a repair gives back when the token itself is the cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub family: Family,
    pub hive: String,
    pub service: String,
    /// `None`: the value is absent (LocalSystem).
    pub object_name: Option<String>,
    pub service_sid_type: u32,
}

/// What one version's healthy hive grants a service's token on a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub family: Family,
    /// The rights granted (MAXIMUM_ALLOWED), in hex.
    pub granted: String,
}

/// How a [`Need::rights`] figure was measured: the grant of every version, and their
/// intersection within [`USABLE`], which is the figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub service: String,
    pub key: String,
    pub grants: Vec<Grant>,
    pub required: String,
    pub required_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    pub source: String,
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub measured: Vec<Measured>,
    pub baselines: Vec<Baseline>,
}

const BASELINES: &str = include_str!("../data/access-baselines.json");

/// The healthy descriptors, per Windows version and key.
pub fn baselines() -> &'static Baselines {
    static B: OnceLock<Baselines> = OnceLock::new();
    // The file is part of the crate and checked by its tests: a parse failure is a build
    // defect, not bad input.
    B.get_or_init(|| serde_json::from_str(BASELINES).expect("data/access-baselines.json parses"))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The healthy descriptor of `key` (as in [`Need::key`]) on `family`.
pub fn baseline(family: Family, key: &str) -> Option<SecurityDescriptor> {
    let b = baselines()
        .baselines
        .iter()
        .find(|b| b.family == family && b.key.eq_ignore_ascii_case(key))?;
    SecurityDescriptor::parse(&unhex(&b.descriptor)?).ok()
}

/// The healthy `ObjectName` and `ServiceSidType` of `service` on `family`.
pub fn healthy_config(family: Family, service: &str) -> Option<&'static ServiceConfig> {
    baselines()
        .services
        .iter()
        .find(|c| c.family == family && c.service.eq_ignore_ascii_case(service))
}

/// The token the service control manager gives `svc`, and its account; an error says why it
/// cannot be built offline.
pub fn service_token(svc: &Service) -> Result<(Token, ServiceAccount), String> {
    token_for(
        &svc.name,
        svc.object_name.ok().map(String::as_str),
        svc.service_sid_type.ok().copied().unwrap_or(0),
    )
}

/// The token of service `name` running as `object_name` with `sid_type`.
pub fn token_for(
    name: &str,
    object_name: Option<&str>,
    sid_type: u32,
) -> Result<(Token, ServiceAccount), String> {
    let account = match Account::classify(object_name) {
        Account::LocalSystem => ServiceAccount::LocalSystem,
        Account::LocalService => ServiceAccount::LocalService,
        Account::NetworkService => ServiceAccount::NetworkService,
        Account::Virtual(v) => {
            let n = v.rsplit('\\').next().unwrap_or(&v).to_string();
            ServiceAccount::User(Sid::service(&n))
        }
        Account::Custom(a) | Account::Invalid(a) => {
            return Err(format!(
                "{name} runs as {a:?}: the SID of that account is not in the SYSTEM hive"
            ))
        }
    };
    Ok((
        Token::for_service(&account, Some((name, sid_type))),
        account,
    ))
}

/// A SID as people read it: `NT SERVICE\Dhcp (S-1-5-80-...)`, or the well-known name.
fn sid_text(sid: &Sid, service: &str) -> String {
    if *sid == Sid::service(service) {
        format!(r"NT SERVICE\{service} ({sid})")
    } else {
        match sid.account_name() {
            Some(n) => format!("{n} ({sid})"),
            None => sid.to_string(),
        }
    }
}

/// One right a service's token is not granted on a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessDenial {
    /// `key` (a registry key, repaired) or `file` (an NTFS file, left to icacls).
    pub object: &'static str,
    pub control_set: String,
    /// From the hive's root.
    pub key: String,
    pub service: String,
    /// The account the service runs as (`ObjectName`).
    pub account: String,
    /// The rights not granted (names) and their mask.
    pub rights: Vec<String>,
    pub mask: u32,
    /// The SID the deciding ACE names; without a deny ACE, the SID a healthy install grants
    /// the right to (or the account's).
    pub sid: String,
    pub sid_name: String,
    /// `deny_ace`: a deny ACE decides; `no_ace_grants`: no ACE grants it.
    pub decided_by: &'static str,
    /// The deciding ACE's index in the DACL and its SDDL.
    pub ace_index: Option<usize>,
    pub ace: Option<String>,
    /// Decided by the second check of a write-restricted token.
    pub restricted_check: bool,
    /// The ACE of a healthy install of this Windows version that grants it.
    pub healthy_ace: Option<String>,
    /// When the token is the cause: the service's values that differ from a healthy install
    /// (with them, the key's own DACL grants the right: `healthy_ace` is its ACE that no
    /// longer matches the token).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token: Vec<TokenValue>,
}

/// A value of the service's key that makes its token, with its healthy data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenValue {
    /// `ServiceSidType` or `ObjectName`.
    pub value: &'static str,
    /// As the hive holds it (`(absent)` when missing).
    pub current: String,
    pub healthy: String,
}

impl AccessDenial {
    /// The denial in one sentence: key, SID, rights, the deciding ACE and the healthy one.
    pub fn sentence(&self) -> String {
        let by = match (&self.ace, self.ace_index) {
            (Some(a), Some(i)) => format!("denied by ACE [{i}] {a}"),
            _ => "no ACE grants it".to_string(),
        };
        let healthy = self
            .healthy_ace
            .as_ref()
            .map(|a| format!("; a healthy install grants it by {a}"))
            .unwrap_or_default();
        let restricted = if self.restricted_check {
            ", in the write-restricted token's second check"
        } else {
            ""
        };
        if !self.token.is_empty() {
            // The DACL is healthy: the token misses the SID its ACE names.
            let values = self
                .token
                .iter()
                .map(|t| format!("{} is {} (healthy: {})", t.value, t.current, t.healthy))
                .collect::<Vec<_>>()
                .join(" and ");
            let ace = self
                .healthy_ace
                .as_deref()
                .map(|a| {
                    format!(
                        "the ACE {a} for {} no longer matches the token",
                        self.sid_name
                    )
                })
                .unwrap_or_else(|| "no ACE matches the token any more".to_string());
            return format!(
                "{}: the {} service's token is not granted {}{restricted}: {values}, so {ace}",
                self.key,
                self.service,
                self.rights.join(", "),
            );
        }
        format!(
            "{}: {} is not granted {} ({by}{restricted}{healthy})",
            self.key,
            self.sid_name,
            self.rights.join(", "),
        )
    }
}

/// A key of one control set, resolved to its stored path.
struct Found<'h> {
    path: String,
    need: Need,
    key: Key<'h>,
}

/// The keys `need` names below `cs` (several for a `*`), with their stored names.
fn resolve<'h, B: regf::Source>(hive: &'h Hive<B>, cs: &ControlSet, need: Need) -> Vec<Found<'h>> {
    let (parent, all) = match need.key.strip_suffix(r"\*") {
        Some(p) => (p, true),
        None => (need.key, false),
    };
    let Ok(Some(mut key)) = hive.key(&cs.name) else {
        return Vec::new();
    };
    let mut path = cs.name.clone();
    for part in parent.split('\\') {
        match key.subkey(part) {
            Ok(Some(k)) => {
                path.push('\\');
                path.push_str(&k.name().to_string_lossy());
                key = k;
            }
            _ => return Vec::new(),
        }
    }
    if !all {
        return vec![Found { path, need, key }];
    }
    let Ok(subkeys) = key.subkeys() else {
        return Vec::new();
    };
    subkeys
        .filter_map(|k| k.ok())
        .map(|k| Found {
            path: format!(r"{path}\{}", k.name().to_string_lossy()),
            need,
            key: k,
        })
        .collect()
}

/// The rights of `sd` the token misses, as denials.
fn denials(
    sd: &SecurityDescriptor,
    token: &Token,
    account: &str,
    service: &str,
    healthy: Option<&SecurityDescriptor>,
    cs: &ControlSet,
    f: &Found,
) -> Vec<AccessDenial> {
    let access = sd.access(token, f.need.rights);
    if access.allowed() {
        return Vec::new();
    }
    let dacl = sd.dacl.acl();
    // One denial per deciding ACE (or none): the rights it decides together.
    let mut out: Vec<AccessDenial> = Vec::new();
    for d in &access.denials {
        let ace = match d.by {
            Decider::Ace(i) => dacl.and_then(|a| a.aces.get(i)).map(|a| (i, a)),
            _ => None,
        };
        // The ACE of the healthy descriptor that grants this right to the token.
        let healthy_ace = healthy.and_then(|h| {
            h.dacl.acl()?.aces.iter().find(|a| {
                a.ace_type.is_allow()
                    && !a.is_inherit_only()
                    && a.sid.as_ref().is_some_and(|s| token.has(s))
                    && regf::security::map_generic(a.mask) & d.bit != 0
            })
        });
        let sid = ace
            .and_then(|(_, a)| a.sid.clone())
            .or_else(|| healthy_ace.and_then(|a| a.sid.clone()))
            .unwrap_or_else(|| token.user.clone());
        let index = ace.map(|(i, _)| i);
        if let Some(prev) = out
            .iter_mut()
            .find(|p| p.ace_index == index && p.restricted_check == d.restricted)
        {
            prev.mask |= d.bit;
            prev.rights = key_rights(prev.mask);
            continue;
        }
        out.push(AccessDenial {
            object: "key",
            control_set: cs.name.clone(),
            key: f.path.clone(),
            service: service.into(),
            account: account.into(),
            rights: key_rights(d.bit),
            mask: d.bit,
            sid_name: sid_text(&sid, service),
            sid: sid.to_string(),
            decided_by: if index.is_some() {
                "deny_ace"
            } else {
                "no_ace_grants"
            },
            ace_index: index,
            ace: ace.map(|(_, a)| a.sddl()),
            restricted_check: d.restricted,
            healthy_ace: healthy_ace.map(|a| a.sddl()),
            token: Vec::new(),
        });
    }
    out
}

/// The DACL control bits that travel with the DACL.
const DACL_CONTROL: u16 = SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED | SE_DACL_AUTO_INHERIT_REQ;

/// `current` with the healthy DACL (and its control bits); owner, group and SACL kept.
fn with_healthy_dacl(
    current: Option<&SecurityDescriptor>,
    healthy: &SecurityDescriptor,
) -> Vec<u8> {
    match current {
        Some(c) => SecurityDescriptor {
            control: (c.control & !DACL_CONTROL) | (healthy.control & DACL_CONTROL),
            dacl: healthy.dacl.clone(),
            ..c.clone()
        }
        .to_bytes(),
        // An unreadable descriptor is replaced whole.
        None => healthy.to_bytes(),
    }
}

/// What a service needs on its image and DLL: FILE_GENERIC_READ | FILE_GENERIC_EXECUTE (`RX`,
/// 0x1200a9), the right BUILTIN\Users has on every System32 file of a healthy install.
pub const FILE_READ_EXECUTE: u32 = 0x0012_00A9;

/// The names of a file access mask's bits (winnt.h FILE_*), lowest first.
pub fn file_rights(mask: u32) -> Vec<String> {
    const NAMES: &[(u32, &str)] = &[
        (0x1, "ReadData"),
        (0x2, "WriteData"),
        (0x4, "AppendData"),
        (0x8, "ReadEA"),
        (0x10, "WriteEA"),
        (0x20, "Execute"),
        (0x40, "DeleteChild"),
        (0x80, "ReadAttributes"),
        (0x100, "WriteAttributes"),
        (DELETE, "Delete"),
        (regf::security::READ_CONTROL, "ReadControl"),
        (regf::security::WRITE_DAC, "WriteDac"),
        (regf::security::WRITE_OWNER, "WriteOwner"),
        (regf::security::SYNCHRONIZE, "Synchronize"),
    ];
    let mut rest = mask;
    let mut out: Vec<String> = NAMES
        .iter()
        .filter(|&&(b, _)| mask & b != 0)
        .map(|&(b, n)| {
            rest &= !b;
            n.to_string()
        })
        .collect();
    if rest != 0 {
        out.push(format!("0x{rest:x}"));
    }
    out
}

/// The service's image (svchost.exe) and service DLL, as the registry names them.
fn service_files(svc: &Service) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = svc.image_path.ok() {
        v.push(winsvc::image_file(p));
    }
    if let Some(d) = svc
        .parameters_service_dll
        .ok()
        .or_else(|| svc.service_dll.ok())
    {
        v.push(d.clone());
    }
    v
}

/// Checks that the token may read and execute the service's files on the NTFS volume; each
/// denial comes with the icacls line that gives the access back (NTFS descriptors are not
/// written by winrescue). Returns the denials and what could not be read.
fn check_files(
    w: &Offline,
    svc: &Service,
    token: &Token,
    account: &str,
    cs: &ControlSet,
) -> (Vec<AccessDenial>, Vec<String>) {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for file in service_files(svc) {
        let path = rescue::target::volume_path(&file);
        let bytes = match w.target().file_security(w.install(), &path) {
            Ok(Some(b)) => b,
            // A missing file is the service rule's (error 2 / 126).
            Ok(None) => continue,
            Err(e) => {
                unreadable.push(format!("{path}: {e}"));
                continue;
            }
        };
        let sd = match SecurityDescriptor::parse(&bytes) {
            Ok(sd) => sd,
            Err(e) => {
                unreadable.push(format!("{path}: its security descriptor: {e}"));
                continue;
            }
        };
        let access = sd.access_as(token, FILE_READ_EXECUTE, &GenericMapping::FILE);
        let dacl = sd.dacl.acl();
        for d in &access.denials {
            let ace = match d.by {
                Decider::Ace(i) => dacl.and_then(|a| a.aces.get(i)).map(|a| (i, a)),
                _ => None,
            };
            let index = ace.map(|(i, _)| i);
            if let Some(prev) = out.iter_mut().find(|p: &&mut AccessDenial| {
                p.key == path && p.ace_index == index && p.restricted_check == d.restricted
            }) {
                prev.mask |= d.bit;
                prev.rights = file_rights(prev.mask);
                continue;
            }
            let sid = ace
                .and_then(|(_, a)| a.sid.clone())
                .unwrap_or_else(|| token.user.clone());
            out.push(AccessDenial {
                object: "file",
                control_set: cs.name.clone(),
                key: path.clone(),
                service: svc.name.clone(),
                account: account.into(),
                rights: file_rights(d.bit),
                mask: d.bit,
                sid_name: sid_text(&sid, &svc.name),
                sid: sid.to_string(),
                decided_by: if index.is_some() {
                    "deny_ace"
                } else {
                    "no_ace_grants"
                },
                ace_index: index,
                ace: ace.map(|(_, a)| a.sddl()),
                restricted_check: d.restricted,
                healthy_ace: Some("(A;;0x1200a9;;;BU)".into()),
                token: Vec::new(),
            });
        }
    }
    (out, unreadable)
}

/// The icacls lines that give a file denial's access back on the console.
fn icacls(d: &AccessDenial) -> String {
    let file = format!(r"C:\{}", d.key);
    match d.ace_index {
        Some(_) => format!("icacls \"{file}\" /remove:d *{}", d.sid),
        None => format!("icacls \"{file}\" /grant *{}:(RX)", d.sid),
    }
}

/// The values of `svc` that make its token and differ from the healthy configuration.
fn token_diff(svc: &Service, healthy: &ServiceConfig) -> Vec<TokenValue> {
    let mut out = Vec::new();
    let sid_type = svc.service_sid_type.ok().copied();
    if sid_type.unwrap_or(0) != healthy.service_sid_type {
        out.push(TokenValue {
            value: "ServiceSidType",
            current: sid_type.map_or_else(|| "(absent)".into(), |t| t.to_string()),
            healthy: healthy.service_sid_type.to_string(),
        });
    }
    let name = svc.object_name.ok().map(String::as_str);
    // Accounts compare as the service control manager reads them ("NT AUTHORITY\LocalService"
    // and "NT Authority\LocalService" are one account).
    if Account::classify(name).canonical()
        != Account::classify(healthy.object_name.as_deref()).canonical()
    {
        out.push(TokenValue {
            value: "ObjectName",
            current: name.map_or_else(|| "(absent)".into(), |n| format!("\"{n}\"")),
            healthy: healthy
                .object_name
                .as_deref()
                .map_or_else(|| "(absent)".into(), |n| format!("\"{n}\"")),
        });
    }
    out
}

/// Marks `list` as caused by the token: the ACE of `sd` that grants the healthy token what the
/// current one misses (a SID the current token lacks) is named as the one that no longer
/// matches.
fn blame_token(
    list: &mut [AccessDenial],
    sd: &SecurityDescriptor,
    token: &Token,
    healthy_token: &Token,
    values: &[TokenValue],
    service: &str,
) {
    let aces = sd.dacl.acl().map(|a| a.aces.as_slice()).unwrap_or_default();
    for d in list.iter_mut() {
        let ace = aces.iter().find(|a| {
            a.ace_type.is_allow()
                && !a.is_inherit_only()
                && a.sid
                    .as_ref()
                    .is_some_and(|s| healthy_token.has(s) && !token.has(s))
                && regf::security::map_generic(a.mask) & d.mask != 0
        });
        if let Some(sid) = ace.and_then(|a| a.sid.as_ref()) {
            d.sid = sid.to_string();
            d.sid_name = sid_text(sid, service);
        }
        d.healthy_ace = ace.map(|a| a.sddl());
        d.token = values.to_vec();
    }
}

/// The changes that give `svc` the healthy values of its token.
fn token_changes(
    svc: &Service,
    values: &[TokenValue],
    rule: &str,
    family: Family,
    key: &str,
) -> Vec<Change> {
    let Some(h) = healthy_config(family, &svc.name) else {
        return Vec::new();
    };
    values
        .iter()
        .map(|t| {
            let reason = format!(
                "{rule}: the {family:?} {} of {}, so that its token is granted {key} again",
                t.value, svc.name
            );
            match t.value {
                "ServiceSidType" => Change::set(
                    HiveId::System,
                    &svc.key_path,
                    "ServiceSidType",
                    Data::Dword(h.service_sid_type),
                    reason,
                )
                .was(svc.service_sid_type.ok().map(|v| Data::Dword(*v))),
                _ => match &h.object_name {
                    Some(n) => Change::set(
                        HiveId::System,
                        &svc.key_path,
                        "ObjectName",
                        Data::Sz(n.clone()),
                        reason,
                    )
                    .was(svc.object_name.ok().map(|v| Data::Sz(v.clone()))),
                    None => {
                        Change::delete_value(HiveId::System, &svc.key_path, "ObjectName", reason)
                            .was(svc.object_name.ok().map(|v| Data::Sz(v.clone())))
                    }
                },
            }
        })
        .collect()
}

impl AccessRule {
    pub fn id(&self) -> String {
        format!("access:{}", self.service)
    }
}

impl Rule for AccessRule {
    fn meta(&self) -> Meta {
        Meta {
            id: self.id(),
            stage: self.stage,
            severity: self.severity,
            checks: format!(
                "{} ({}) may open the registry keys it needs",
                self.display_name, self.service
            ),
            why: format!(
                "a key whose permissions deny the {} its access makes it fail with error 5 (access denied)",
                self.display_name
            ),
            article: "troubleshoot-rdp-dhcp-disabled".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let model = w.model();
        let boot = match model.boot_set() {
            Ok(cs) => cs,
            Err(e) => return meta.cannot_tell(e.to_string()),
        };
        if boot.service(self.service).is_none() {
            return crate::value::not_checked(
                &meta,
                &format!(
                    "{} is not installed in {} (service:{} reports it)",
                    self.service, boot.name, self.service
                ),
            );
        }
        let hive = match w.system().hive() {
            Ok(h) => h,
            Err(e) => return meta.cannot_tell(e.to_string()),
        };
        let family = w.version().family;
        let mut found: Vec<AccessDenial> = Vec::new();
        let mut changes = Vec::new();
        let mut unresolved = Vec::new();
        let mut locations = Vec::new();
        let mut checked = 0usize;
        for cs in &model.control_sets {
            let Some(svc) = cs.service(self.service) else {
                continue;
            };
            let (token, account) = match service_token(svc) {
                Ok(t) => t,
                Err(why) if cs.number == boot.number => return meta.cannot_tell(why),
                Err(_) => continue,
            };
            let account = svc
                .object_name
                .ok()
                .cloned()
                .unwrap_or_else(|| format!("{account:?}"));
            // The token a healthy install gives the service, when its values differ from it.
            let healthy_cfg = healthy_config(family, self.service);
            let token_values = healthy_cfg.map(|h| token_diff(svc, h)).unwrap_or_default();
            let healthy_token = healthy_cfg
                .filter(|_| !token_values.is_empty())
                .and_then(|h| {
                    token_for(&svc.name, h.object_name.as_deref(), h.service_sid_type).ok()
                })
                .map(|(t, _)| t);
            // The token values are planned once per control set, whichever key shows them.
            let mut token_planned = false;
            let mut plan_token =
                |key: &str, changes: &mut Vec<Change>, locations: &mut Vec<Location>| {
                    if std::mem::replace(&mut token_planned, true) {
                        return;
                    }
                    changes.extend(token_changes(svc, &token_values, &self.id(), family, key));
                    locations.extend(token_values.iter().map(|t| Location {
                        hive: HiveId::System,
                        key: svc.key_path.clone(),
                        value: Some(t.value.into()),
                    }));
                };
            if cs.number == boot.number && w.files_checked() {
                let (files, unreadable) = check_files(w, svc, &token, &account, cs);
                for d in &files {
                    locations.push(Location {
                        hive: HiveId::System,
                        key: svc.key_path.clone(),
                        value: Some("ImagePath / ServiceDll".into()),
                    });
                    unresolved.push(format!(
                        "{}: NTFS permissions are not written by winrescue; on the console: {}",
                        d.key,
                        icacls(d)
                    ));
                }
                found.extend(files);
                unresolved.extend(unreadable);
            }
            for need in self.needs {
                let healthy = baseline(family, need.key);
                for f in resolve(&hive, cs, *need) {
                    checked += 1;
                    let sk = f.key.security();
                    let bytes = sk.as_ref().map(|s| s.descriptor.to_vec()).ok();
                    let sd = bytes
                        .as_deref()
                        .and_then(|b| SecurityDescriptor::parse(b).ok());
                    let mut list = match &sd {
                        Some(sd) => {
                            denials(sd, &token, &account, self.service, healthy.as_ref(), cs, &f)
                        }
                        None => {
                            unresolved.push(format!(
                                "{}: its security descriptor cannot be read",
                                f.path
                            ));
                            Vec::new()
                        }
                    };
                    if list.is_empty() && sd.is_some() {
                        continue;
                    }
                    locations.push(Location {
                        hive: HiveId::System,
                        key: f.path.clone(),
                        value: None,
                    });
                    let grants =
                        |d: &SecurityDescriptor, t: &Token| d.access(t, need.rights).allowed();
                    // The token is the cause when the key's own DACL grants the token of a
                    // healthy configuration: the values are repaired, not the DACL.
                    if let (Some(sd), Some(ht)) = (&sd, &healthy_token) {
                        if grants(sd, ht) {
                            blame_token(&mut list, sd, &token, ht, &token_values, self.service);
                            found.extend(list);
                            plan_token(need.key, &mut changes, &mut locations);
                            continue;
                        }
                    }
                    found.extend(list);
                    let Some(h) = &healthy else {
                        unresolved.push(format!(
                            "{}: no healthy descriptor of this key is known for {family:?}",
                            f.path
                        ));
                        continue;
                    };
                    let new = with_healthy_dacl(sd.as_ref(), h);
                    let new_sd = SecurityDescriptor::parse(&new).ok();
                    let fixes = new_sd.as_ref().is_some_and(|n| grants(n, &token));
                    // Both broken: the healthy DACL grants only the healthy token.
                    let fixes_with_token = !fixes
                        && matches!((&new_sd, &healthy_token), (Some(n), Some(ht)) if grants(n, ht));
                    if !fixes && !fixes_with_token {
                        unresolved.push(format!(
                            "{}: the healthy DACL does not grant it either: the token is the cause (ObjectName {account}, ServiceSidType {})",
                            f.path,
                            svc.service_sid_type.ok().copied().unwrap_or(0)
                        ));
                        continue;
                    }
                    if fixes_with_token {
                        plan_token(need.key, &mut changes, &mut locations);
                    }
                    match Change::set_security(
                        HiveId::System,
                        &f.path,
                        new,
                        bytes.unwrap_or_default(),
                        format!(
                            "{}: the {family:?} DACL, so that the {} {}",
                            self.id(),
                            self.display_name,
                            need.what
                        ),
                    ) {
                        Ok(c) => changes.push(c),
                        Err(e) => unresolved.push(format!("{}: {e}", f.path)),
                    }
                }
            }
        }
        let boot_broken = found.iter().any(|d| d.control_set == boot.name)
            || locations
                .iter()
                .any(|l| l.key.split('\\').next() == Some(boot.name.as_str()));
        if found.is_empty() && unresolved.is_empty() {
            let mut f = meta.finding(Status::Healthy, meta.checks.clone());
            f.found = Some(format!(
                "{checked} keys checked, every needed right granted"
            ));
            return f;
        }
        if found.is_empty() {
            // Nothing denied, but something could not be read: the disk does not settle it.
            let mut f = meta.cannot_tell(unresolved.join("; "));
            f.locations = locations;
            return f;
        }
        let first = found
            .first()
            .map(AccessDenial::sentence)
            .unwrap_or_default();
        let title = format!(
            "{} ({}) will fail with error 5 ERROR_ACCESS_DENIED: {first}",
            self.display_name, self.service
        );
        let mut f = meta.finding(Status::Broken, title);
        if !boot_broken {
            // Only another control set (Last Known Good) is affected.
            f.severity = Severity::MayBlock;
        }
        f.locations = locations;
        f.found = Some(
            found
                .iter()
                .map(AccessDenial::sentence)
                .chain(unresolved.iter().cloned())
                .collect::<Vec<_>>()
                .join("; "),
        );
        f.expected = Some(format!(
            "the {} ({}) granted {} as on a healthy {family:?}",
            self.display_name,
            self.service,
            self.needs
                .iter()
                .map(|n| format!("{} on {}", key_rights(n.rights).join("+"), n.key))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        f.runbook = crate::service::runbook(&changes, &boot.name);
        for d in found.iter().filter(|d| d.object == "file") {
            f.runbook.cmd.push(icacls(d));
            f.runbook
                .powershell
                .push(icacls(d).replacen("icacls", "icacls.exe", 1));
        }
        f.changes = changes;
        f.unresolved = unresolved;
        f.access = found;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regf::security::AclField;

    #[test]
    fn every_baseline_parses_and_matches_its_sddl() {
        for b in &baselines().baselines {
            let sd = SecurityDescriptor::parse(&unhex(&b.descriptor).unwrap()).unwrap();
            assert_eq!(sd.sddl(), b.sddl, "{:?} {}", b.family, b.key);
        }
    }

    #[test]
    fn every_need_has_a_baseline_per_version() {
        for r in &RULES {
            for n in r.needs {
                for fam in [Family::Windows7, Family::Windows8, Family::Windows10] {
                    assert!(baseline(fam, n.key).is_some(), "{fam:?} {}", n.key);
                    assert!(
                        healthy_config(fam, r.service).is_some(),
                        "{fam:?} {}",
                        r.service
                    );
                }
            }
        }
    }

    fn service(object_name: Option<&str>, sid_type: Option<u32>) -> Service {
        let hive = Hive::open(fixtures::bytes("hives/win7-SYSTEM")).unwrap();
        let model = winsvc::SystemModel::read(&hive, None).unwrap();
        let mut svc = model.boot_set().unwrap().service("Dhcp").unwrap().clone();
        svc.object_name =
            object_name.map_or(winsvc::Field::Missing, |n| winsvc::Field::Ok(n.to_string()));
        svc.service_sid_type = sid_type.map_or(winsvc::Field::Missing, winsvc::Field::Ok);
        svc
    }

    #[test]
    fn token_values_compare_as_the_service_control_manager_reads_them() {
        let healthy = healthy_config(Family::Windows7, "Dhcp").unwrap();
        // Another spelling of the same account is not a difference.
        assert!(token_diff(
            &service(Some(r"NT AUTHORITY\LOCALSERVICE"), Some(1)),
            healthy
        )
        .is_empty());
        let d = token_diff(&service(Some("LocalSystem"), None), healthy);
        let names: Vec<_> = d.iter().map(|t| (t.value, t.current.as_str())).collect();
        assert_eq!(
            names,
            [
                ("ServiceSidType", "(absent)"),
                ("ObjectName", "\"LocalSystem\"")
            ]
        );
        assert_eq!(d[0].healthy, "1");
    }

    #[test]
    fn keeping_owner_group_and_sacl() {
        let healthy = baseline(Family::Windows10, r"Services\Dhcp").unwrap();
        let mut other = healthy.clone();
        other.owner = Some(Sid::new(5, &[32, 544]));
        other.dacl = AclField::Null;
        let new = SecurityDescriptor::parse(&with_healthy_dacl(Some(&other), &healthy)).unwrap();
        assert_eq!(new.owner, other.owner);
        assert_eq!(new.sacl, other.sacl);
        assert_eq!(new.dacl, healthy.dacl);
    }
}
