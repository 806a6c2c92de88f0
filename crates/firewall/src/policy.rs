//! The firewall policy of one control set (plus Group Policy), read once into owned values.

use regf::{Data, Hive, Key};
use serde::Serialize;

use crate::rule::{Listener, Rule};
use crate::{Error, ParseError, Result};

/// A firewall profile. The local store calls Private `StandardProfile`; Group Policy calls it
/// `PrivateProfile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Domain,
    Private,
    Public,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Domain, Profile::Private, Profile::Public];

    /// The `Profile=` token of a rule string.
    pub fn parse_token(s: &str) -> Option<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.token().eq_ignore_ascii_case(s))
    }

    pub fn token(self) -> &'static str {
        match self {
            Profile::Domain => "Domain",
            Profile::Private => "Private",
            Profile::Public => "Public",
        }
    }

    /// The key under `SharedAccess\Parameters\FirewallPolicy`.
    pub fn local_key(self) -> &'static str {
        match self {
            Profile::Domain => "DomainProfile",
            Profile::Private => "StandardProfile",
            Profile::Public => "PublicProfile",
        }
    }

    /// The key under `Policies\Microsoft\WindowsFirewall`.
    pub fn policy_key(self) -> &'static str {
        match self {
            Profile::Domain => "DomainProfile",
            Profile::Private => "PrivateProfile",
            Profile::Public => "PublicProfile",
        }
    }
}

/// Which hive a registry location is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HiveKind {
    System,
    Software,
}

impl HiveKind {
    fn name(self) -> &'static str {
        match self {
            HiveKind::System => "SYSTEM",
            HiveKind::Software => "SOFTWARE",
        }
    }
}

/// Where a rule or setting comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// The local store, `<ControlSet>\Services\SharedAccess\Parameters\FirewallPolicy`.
    Local,
    /// Group Policy, SOFTWARE `Policies\Microsoft\WindowsFirewall` (comes back from the domain).
    GroupPolicy,
}

/// A rule's registry value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleLocation {
    pub store: Store,
    pub hive: HiveKind,
    /// Key path from the hive root, with the names as stored.
    pub key: String,
    /// The value name: the rule id.
    pub value: String,
}

/// A rule and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRule {
    pub location: RuleLocation,
    pub rule: Rule,
}

/// A rule named in a decision: where it is, and its `Name=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub location: RuleLocation,
    pub name: Option<String>,
}

/// Something in the firewall keys that could not be used as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A rule string that does not parse: it is left out of the evaluation, and every decision
    /// that could have depended on it lists it.
    RuleUnparsable {
        location: RuleLocation,
        error: ParseError,
    },
    /// A rule value that is not REG_SZ.
    RuleNotString {
        location: RuleLocation,
        found_type: String,
    },
    /// A profile setting that is not a REG_DWORD: ignored (the next source or the default is
    /// used).
    SettingWrongType {
        hive: HiveKind,
        key: String,
        value: String,
        found_type: String,
    },
    /// A key or value whose cells cannot be read.
    Unreadable {
        hive: HiveKind,
        key: String,
        error: String,
    },
}

/// The four DWORD settings of one profile key, as stored (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileValues {
    pub profile: Profile,
    /// The key read (names as stored); `None` when it does not exist.
    pub key: Option<String>,
    pub enable_firewall: Option<u32>,
    pub do_not_allow_exceptions: Option<u32>,
    pub default_inbound_action: Option<u32>,
    /// Group Policy only: 0 means the local rules are ignored.
    pub allow_local_policy_merge: Option<u32>,
}

impl ProfileValues {
    fn absent(profile: Profile) -> ProfileValues {
        ProfileValues {
            profile,
            key: None,
            enable_firewall: None,
            do_not_allow_exceptions: None,
            default_inbound_action: None,
            allow_local_policy_merge: None,
        }
    }
}

/// The firewall policy of one control set: local profiles and rules, and Group Policy when a
/// SOFTWARE hive was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub control_set: String,
    /// `...\SharedAccess\Parameters\FirewallPolicy` with the names as stored; `None` when the
    /// key is missing (every local setting is then its default and there are no local rules).
    pub local_key: Option<String>,
    /// The path the local rules key has or would have (for edits that add a rule).
    pub local_rules_key: String,
    pub local: [ProfileValues; 3],
    /// `None` when no SOFTWARE hive was given: Group Policy is then unknown, not absent.
    pub group_policy: Option<[ProfileValues; 3]>,
    /// Every rule that parsed, local first, each store in on-disk order.
    pub rules: Vec<StoredRule>,
    /// The program taken as the Remote Desktop listener (see [`Policy::listener_of`]).
    pub listener: Listener,
    pub problems: Vec<Problem>,
}

/// The SOFTWARE key of the firewall's Group Policy.
pub const POLICY_KEY: &str = r"Policies\Microsoft\WindowsFirewall";

/// Follows `path` from `key`, collecting the names as stored.
fn descend_named<'h>(
    key: &Key<'h>,
    base: &str,
    path: &str,
) -> std::result::Result<Option<(Key<'h>, String)>, regf::Error> {
    let mut k = *key;
    let mut named = base.to_string();
    for part in path.split('\\').filter(|p| !p.is_empty()) {
        match k.subkey(part)? {
            Some(sub) => {
                if !named.is_empty() {
                    named.push('\\');
                }
                sub.name().push_lossy(&mut named);
                k = sub;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((k, named)))
}

struct Reader<'p> {
    problems: &'p mut Vec<Problem>,
    hive: HiveKind,
}

impl Reader<'_> {
    fn unreadable(&mut self, key: &str, e: impl ToString) {
        self.problems.push(Problem::Unreadable {
            hive: self.hive,
            key: key.to_string(),
            error: e.to_string(),
        });
    }

    fn sub<'h>(&mut self, key: &Key<'h>, base: &str, path: &str) -> Option<(Key<'h>, String)> {
        match descend_named(key, base, path) {
            Ok(found) => found,
            Err(e) => {
                self.unreadable(&format!("{base}\\{path}"), e);
                None
            }
        }
    }

    fn dword(&mut self, key: &Key<'_>, key_path: &str, name: &str) -> Option<u32> {
        let value = match key.value(name) {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(e) => {
                self.unreadable(key_path, e);
                return None;
            }
        };
        match value.data() {
            Ok(Data::Dword(n)) => Some(n),
            Ok(_) => {
                self.problems.push(Problem::SettingWrongType {
                    hive: self.hive,
                    key: key_path.to_string(),
                    value: name.to_string(),
                    found_type: value.value_type().to_string(),
                });
                None
            }
            Err(e) => {
                self.unreadable(&format!("{key_path} value {name}"), e);
                None
            }
        }
    }

    fn profile(
        &mut self,
        parent: &Key<'_>,
        parent_path: &str,
        sub: &str,
        p: Profile,
    ) -> ProfileValues {
        let Some((key, path)) = self.sub(parent, parent_path, sub) else {
            return ProfileValues::absent(p);
        };
        ProfileValues {
            profile: p,
            enable_firewall: self.dword(&key, &path, "EnableFirewall"),
            do_not_allow_exceptions: self.dword(&key, &path, "DoNotAllowExceptions"),
            default_inbound_action: self.dword(&key, &path, "DefaultInboundAction"),
            allow_local_policy_merge: self.dword(&key, &path, "AllowLocalPolicyMerge"),
            key: Some(path),
        }
    }

    fn rules(&mut self, store: Store, key: &Key<'_>, key_path: &str, out: &mut Vec<StoredRule>) {
        let values = match key.values() {
            Ok(v) => v,
            Err(e) => return self.unreadable(key_path, e),
        };
        for value in values {
            let value = match value {
                Ok(v) => v,
                Err(e) => {
                    self.unreadable(key_path, e);
                    continue;
                }
            };
            let location = RuleLocation {
                store,
                hive: self.hive,
                key: key_path.to_string(),
                value: value.name().to_string_lossy(),
            };
            match value.data() {
                Ok(Data::Sz(text)) => match Rule::parse(&location.value, &text) {
                    Ok(rule) => out.push(StoredRule { location, rule }),
                    Err(error) => self
                        .problems
                        .push(Problem::RuleUnparsable { location, error }),
                },
                Ok(_) => self.problems.push(Problem::RuleNotString {
                    found_type: value.value_type().to_string(),
                    location,
                }),
                Err(e) => self.unreadable(&format!("{key_path} value {}", location.value), e),
            }
        }
    }
}

impl Policy {
    /// Reads the firewall policy of `control_set_key` (e.g. `ControlSet001`) from `system`, and
    /// Group Policy from `software` when given.
    pub fn read<B: regf::Source, C: regf::Source>(
        system: &Hive<B>,
        control_set_key: &str,
        software: Option<&Hive<C>>,
    ) -> Result<Policy> {
        let hive_err = |hive, key: &str| {
            let key = key.to_string();
            move |source| Error::Hive { hive, key, source }
        };
        let root = system.root().map_err(hive_err("SYSTEM", "(root)"))?;
        let (cs, cs_path) = descend_named(&root, "", control_set_key)
            .map_err(hive_err("SYSTEM", control_set_key))?
            .ok_or_else(|| Error::NoControlSet {
                control_set: control_set_key.to_string(),
            })?;
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        let mut r = Reader {
            problems: &mut problems,
            hive: HiveKind::System,
        };
        let fw = r.sub(
            &cs,
            &cs_path,
            r"Services\SharedAccess\Parameters\FirewallPolicy",
        );
        let mut local = Profile::ALL.map(ProfileValues::absent);
        let mut local_rules_key =
            format!(r"{cs_path}\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules");
        if let Some((fw_key, fw_path)) = &fw {
            local = Profile::ALL.map(|p| r.profile(fw_key, fw_path, p.local_key(), p));
            local_rules_key = format!(r"{fw_path}\FirewallRules");
            if let Some((rk, rp)) = r.sub(fw_key, fw_path, "FirewallRules") {
                local_rules_key.clone_from(&rp);
                r.rules(Store::Local, &rk, &rp, &mut rules);
            }
        }
        let group_policy = match software {
            None => None,
            Some(sw) => {
                let mut r = Reader {
                    problems: &mut problems,
                    hive: HiveKind::Software,
                };
                let root = sw.root().map_err(hive_err("SOFTWARE", "(root)"))?;
                match r.sub(&root, "", POLICY_KEY) {
                    None => Some(Profile::ALL.map(ProfileValues::absent)),
                    Some((pk, pp)) => {
                        let mut profiles =
                            Profile::ALL.map(|p| r.profile(&pk, &pp, p.policy_key(), p));
                        // [MS-GPFAS] 2.2.3: when neither PrivateProfile nor PublicProfile
                        // exists, StandardProfile applies to both.
                        if profiles[1].key.is_none() && profiles[2].key.is_none() {
                            for i in [1, 2] {
                                let p = Profile::ALL[i];
                                profiles[i] = r.profile(&pk, &pp, "StandardProfile", p);
                            }
                        }
                        if let Some((rk, rp)) = r.sub(&pk, &pp, "FirewallRules") {
                            r.rules(Store::GroupPolicy, &rk, &rp, &mut rules);
                        }
                        Some(profiles)
                    }
                }
            }
        };
        let listener = Policy::listener_of(&rules);
        Ok(Policy {
            listener,
            control_set: cs_path,
            local_key: fw.map(|(_, p)| p),
            local_rules_key,
            local,
            group_policy,
            rules,
            problems,
        })
    }

    /// Which program receives RDP, told by the built-in rules of the "Remote Desktop" group: a
    /// rule for `Svc=termservice` there means Windows 8 or later (the listener runs in svchost);
    /// only `App=System` there means Windows 7 / 2008 R2 (the kernel listener). Without either,
    /// the modern listener is assumed.
    pub fn listener_of(rules: &[StoredRule]) -> Listener {
        let group: Vec<&Rule> = rules
            .iter()
            .map(|s| &s.rule)
            .filter(|r| {
                r.group
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(crate::RDP_GROUP))
            })
            .collect();
        let svc = |r: &&Rule| {
            r.service
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("TermService"))
        };
        let kernel = |r: &&Rule| {
            r.app
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("System"))
        };
        if !group.iter().any(svc) && group.iter().any(kernel) {
            Listener::Kernel
        } else {
            Listener::TermService
        }
    }

    /// The locations of the rules that did not parse (or are not strings), per store.
    pub(crate) fn unparsed(&self, store: Store) -> Vec<RuleLocation> {
        self.problems
            .iter()
            .filter_map(|p| match p {
                Problem::RuleUnparsable { location, .. }
                | Problem::RuleNotString { location, .. }
                    if location.store == store =>
                {
                    Some(location.clone())
                }
                _ => None,
            })
            .collect()
    }
}

impl std::fmt::Display for HiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
