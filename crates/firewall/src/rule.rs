//! One firewall rule string, as stored in a `FirewallRules` value.
//!
//! Sources: [MS-GPFAS] 2.2.2.19 "Firewall Rule and the Firewall Rule Grammar Rule" (the grammar,
//! which fields may repeat, what an absent field means), 2.2.2.1 to 2.2.2.18 (tokens), and the
//! strings of the real hives in `testdata/hives` (Windows 7, 8.1, 10 1709: versions v2.0 to
//! v2.27, `V2.0` and `Dir=in` in the service-hardening rules, so tokens are compared without
//! regard to case).
//!
//! A rule keeps its text split at `|` exactly as stored, so that [`Rule::to_text`] gives back
//! the same string and [`Rule::with_field`] changes one field and nothing else.

use serde::Serialize;

use crate::{ParseError, ParseErrorKind, Profile};

/// Longest field value copied into a [`ParseError`]: a rule string can be as long as a registry
/// value; the error only needs enough to find the field.
const MAX_ERROR_VALUE: usize = 120;

/// The schema version written before the first `|` (`v2.27` is major 2, minor 27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

/// `Action=`: what a matching packet gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Block,
    /// "Allow if secure, override block rules": only for IPsec-authenticated peers. Treated as an
    /// allow that holds for some sources only (authenticated bypass is not modelled further).
    ByPass,
}

/// `Dir=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// A port keyword ([MS-GPFAS] 2.2.2.3): a port the system picks (dynamic RPC, Teredo, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PortKeyword {
    Rpc,
    RpcEpMap,
    Teredo,
    IpTlsIn,
    IpHttpsIn,
    IpTlsOut,
    IpHttpsOut,
    Dhcp,
    Ply2Disc,
    MDns,
    CortanaOut,
    TcpCdpSvc,
}

impl PortKeyword {
    fn parse(s: &str) -> Option<PortKeyword> {
        const ALL: [(&str, PortKeyword); 12] = [
            ("RPC", PortKeyword::Rpc),
            ("RPC-EPMap", PortKeyword::RpcEpMap),
            ("Teredo", PortKeyword::Teredo),
            ("IPTLSIn", PortKeyword::IpTlsIn),
            ("IPHTTPSIn", PortKeyword::IpHttpsIn),
            ("IPTLSOut", PortKeyword::IpTlsOut),
            ("IPHTTPSOut", PortKeyword::IpHttpsOut),
            ("DHCP", PortKeyword::Dhcp),
            ("Ply2Disc", PortKeyword::Ply2Disc),
            ("mDNS", PortKeyword::MDns),
            ("CortanaOut", PortKeyword::CortanaOut),
            ("TcpCDPSvc", PortKeyword::TcpCdpSvc),
        ];
        ALL.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, k)| k)
    }
}

/// One local port condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum PortSpec {
    Single(u16),
    Range(u16, u16),
    /// Ports the system assigns to one component; never the port of a listener such as RDP.
    Keyword(PortKeyword),
}

impl PortSpec {
    pub fn covers(&self, port: u16) -> bool {
        match *self {
            PortSpec::Single(p) => p == port,
            PortSpec::Range(a, b) => a <= port && port <= b,
            PortSpec::Keyword(_) => false,
        }
    }
}

/// What kind of restriction a condition field puts on the traffic a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// `RA4`, `RA6`, `RA42`, `RA62`: only some remote addresses.
    RemoteAddress,
    /// `LA4`, `LA6`: only some local addresses.
    LocalAddress,
    /// `IF`, `IFType`: only some network interfaces.
    Interface,
    /// `RPort`, `RPort2_10`: only some remote (source) ports.
    RemotePort,
    /// `Security*`, `RMauth`, `RUAuth`, `LUAuth*`, `LUOwn`: only authenticated or authorised
    /// peers / users (IPsec).
    Authentication,
    /// `TTK*`: trust-tuple keywords (proximity, Wi-Fi Direct, UPnP).
    TrustTuple,
    /// `Platform`: only some Windows versions.
    Platform,
    /// `NNm`, `SecurityRealmId`: only some networks / realms.
    Network,
    /// `ICMP4`, `ICMP6`: only some ICMP types (never TCP traffic anyway).
    Icmp,
    /// A field this parser does not know (a newer schema version): assumed to restrict.
    Unknown,
}

/// A field that narrows the traffic a rule matches beyond protocol, local port and program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub kind: ConditionKind,
    pub field: String,
    pub value: String,
}

/// One parsed rule. The interpreted fields are public; the text is kept as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The registry value name (the rule id, `wszRuleId`).
    pub id: String,
    pub version: Version,
    pub action: Action,
    pub direction: Direction,
    /// `Active=`; absent means FALSE.
    pub active: bool,
    /// `Profile=` tokens; empty means every profile.
    pub profiles: Vec<Profile>,
    /// `Protocol=`; absent means any protocol.
    pub protocol: Option<u8>,
    /// `LPort*=` tokens; empty means any local port.
    pub local_ports: Vec<PortSpec>,
    /// `App=`: the program the rule is for.
    pub app: Option<String>,
    /// `Svc=`: the service the rule is for (`*` = any service).
    pub service: Option<String>,
    /// `AppPkgId=`: an app container (a Store app).
    pub package: Option<String>,
    /// `Edge=TRUE`: edge traversal allowed (it widens, it does not restrict).
    pub edge: bool,
    /// `Name=` (often an indirect string such as `@FirewallAPI.dll,-28775`).
    pub name: Option<String>,
    /// `EmbedCtxt=`: the rule group (`@FirewallAPI.dll,-28752` is "Remote Desktop").
    pub group: Option<String>,
    pub conditions: Vec<Condition>,
    /// The stored text, byte for byte.
    pub text: String,
}

/// Keys that may appear once only ([MS-GPFAS] 2.2.2.19 "MUST appear at most once"), among
/// those this crate interprets: a second one would make the rule's meaning ambiguous.
const SINGLE: [&str; 9] = [
    "Action",
    "Dir",
    "Active",
    "Protocol",
    "App",
    "Svc",
    "Name",
    "EmbedCtxt",
    "Edge",
];

/// Keys that only describe the rule or set flags that do not narrow inbound matching.
const DESCRIPTIVE: [&str; 12] = [
    "Desc",
    "Defer",
    "LSM",
    "LOM",
    "SkipVer",
    "PCross",
    "AuthByPassOut",
    "Platform2",
    "Version",
    "Action",
    "Dir",
    "Active",
];

fn condition_kind(key: &str) -> ConditionKind {
    let k = key.to_ascii_lowercase();
    match k.as_str() {
        "ra4" | "ra6" | "ra42" | "ra62" => ConditionKind::RemoteAddress,
        "la4" | "la6" => ConditionKind::LocalAddress,
        "if" | "iftype" => ConditionKind::Interface,
        "rport" | "rport2_10" => ConditionKind::RemotePort,
        "security" | "security2_9" | "security2" | "rmauth" | "ruauth" | "luauth"
        | "luauth2_24" | "luown" => ConditionKind::Authentication,
        "platform" => ConditionKind::Platform,
        "nnm" | "securityrealmid" => ConditionKind::Network,
        "icmp4" | "icmp6" => ConditionKind::Icmp,
        _ if k.starts_with("ttk") => ConditionKind::TrustTuple,
        _ if k.starts_with("rport") => ConditionKind::RemotePort,
        _ => ConditionKind::Unknown,
    }
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_VALUE) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("TRUE") {
        Some(true)
    } else if s.eq_ignore_ascii_case("FALSE") {
        Some(false)
    } else {
        None
    }
}

/// `1*N DIGIT` with a maximum value.
fn parse_number(s: &str, max_digits: usize, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n <= max)
}

fn parse_version(s: &str) -> Option<Version> {
    let rest = s.strip_prefix(['v', 'V'])?;
    let (major, minor) = rest.split_once('.')?;
    Some(Version {
        major: u8::try_from(parse_number(major, 3, 255)?).ok()?,
        minor: u8::try_from(parse_number(minor, 3, 255)?).ok()?,
    })
}

fn parse_port(s: &str) -> Result<PortSpec, ParseErrorKind> {
    let port = |p: &str| {
        parse_number(p, 5, u32::from(u16::MAX))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(ParseErrorKind::BadPort)
    };
    if let Some((a, b)) = s.split_once('-') {
        // "RPC-EPMap" has a dash too: only digits on both sides make a range.
        if !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) {
            let (a, b) = (port(a)?, port(b)?);
            return if a <= b {
                Ok(PortSpec::Range(a, b))
            } else {
                Err(ParseErrorKind::BadPortRange)
            };
        }
    }
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return port(s).map(PortSpec::Single);
    }
    PortKeyword::parse(s)
        .map(PortSpec::Keyword)
        .ok_or(ParseErrorKind::UnknownPortKeyword)
}

impl Rule {
    /// Parses the string stored under the value named `id`. Errors name the rule and the field.
    pub fn parse(id: &str, text: &str) -> Result<Rule, ParseError> {
        let err = |field: &str, value: &str, kind: ParseErrorKind| ParseError {
            rule_id: clip(id),
            field: clip(field),
            value: clip(value),
            kind,
        };
        let mut parts = text.split('|');
        // `split` always yields at least one item.
        let version_text = parts.next().unwrap_or_default();
        let version = parse_version(version_text)
            .ok_or_else(|| err("version", version_text, ParseErrorKind::BadVersion))?;
        let fields: Vec<&str> = parts.collect();
        let n = fields.len();
        let mut rule = Rule {
            id: id.to_string(),
            version,
            action: Action::Allow,
            direction: Direction::In,
            active: false,
            profiles: Vec::new(),
            protocol: None,
            local_ports: Vec::new(),
            app: None,
            service: None,
            package: None,
            edge: false,
            name: None,
            group: None,
            conditions: Vec::new(),
            text: text.to_string(),
        };
        let (mut saw_action, mut saw_dir) = (false, false);
        let mut seen_single: Vec<&str> = Vec::new();
        let mut port_field: Option<(&str, &str)> = None;
        for (i, segment) in fields.iter().enumerate() {
            // The grammar ends every field with `|`, so the text after the last one is empty.
            // A last field without its `|` is accepted (and kept as it is).
            if segment.is_empty() {
                if i + 1 == n {
                    continue;
                }
                return Err(err(
                    &format!("field {}", i + 1),
                    "",
                    ParseErrorKind::EmptyField,
                ));
            }
            let Some((key, value)) = segment.split_once('=') else {
                return Err(err(segment, "", ParseErrorKind::MissingEquals));
            };
            if let Some(single) = SINGLE.iter().find(|s| s.eq_ignore_ascii_case(key)) {
                if seen_single.contains(single) {
                    return Err(err(key, value, ParseErrorKind::Duplicate));
                }
                seen_single.push(single);
            }
            let lower = key.to_ascii_lowercase();
            match lower.as_str() {
                "action" => {
                    saw_action = true;
                    rule.action = if value.eq_ignore_ascii_case("Allow") {
                        Action::Allow
                    } else if value.eq_ignore_ascii_case("Block") {
                        Action::Block
                    } else if value.eq_ignore_ascii_case("ByPass") {
                        Action::ByPass
                    } else {
                        return Err(err(key, value, ParseErrorKind::BadAction));
                    };
                }
                "dir" => {
                    saw_dir = true;
                    rule.direction = if value.eq_ignore_ascii_case("In") {
                        Direction::In
                    } else if value.eq_ignore_ascii_case("Out") {
                        Direction::Out
                    } else {
                        return Err(err(key, value, ParseErrorKind::BadDirection));
                    };
                }
                "active" => {
                    rule.active = parse_bool(value)
                        .ok_or_else(|| err(key, value, ParseErrorKind::BadBool))?;
                }
                "edge" => {
                    rule.edge = parse_bool(value)
                        .ok_or_else(|| err(key, value, ParseErrorKind::BadBool))?;
                }
                "profile" => {
                    let p = Profile::parse_token(value)
                        .ok_or_else(|| err(key, value, ParseErrorKind::BadProfile))?;
                    if !rule.profiles.contains(&p) {
                        rule.profiles.push(p);
                    }
                }
                "protocol" => {
                    let p = parse_number(value, 3, 255)
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| err(key, value, ParseErrorKind::BadProtocol))?;
                    rule.protocol = Some(p);
                }
                _ if lower.starts_with("lport") => {
                    let spec = parse_port(value).map_err(|kind| err(key, value, kind))?;
                    rule.local_ports.push(spec);
                    port_field.get_or_insert((key, value));
                }
                "app" => rule.app = Some(value.to_string()),
                "svc" => rule.service = Some(value.to_string()),
                "apppkgid" => rule.package = Some(value.to_string()),
                "name" => rule.name = Some(value.to_string()),
                "embedctxt" => rule.group = Some(value.to_string()),
                _ if DESCRIPTIVE.iter().any(|d| d.eq_ignore_ascii_case(key)) => {}
                _ => {
                    let kind = condition_kind(key);
                    if kind == ConditionKind::RemotePort {
                        port_field.get_or_insert((key, value));
                    }
                    // `*` is "any address" in the netsh spelling: no restriction.
                    let any = matches!(
                        kind,
                        ConditionKind::RemoteAddress | ConditionKind::LocalAddress
                    ) && (value == "*" || value.eq_ignore_ascii_case("Any"));
                    if !any {
                        rule.conditions.push(Condition {
                            kind,
                            field: key.to_string(),
                            value: value.to_string(),
                        });
                    }
                }
            }
        }
        if !saw_action {
            return Err(err("Action", "", ParseErrorKind::Missing));
        }
        if !saw_dir {
            return Err(err("Dir", "", ParseErrorKind::Missing));
        }
        // Ports only mean something for TCP and UDP ([MS-GPFAS] 2.2.2.19, last paragraph): a
        // port on a rule for any protocol would be evaluated wrongly either way.
        if let Some((key, value)) = port_field {
            if !matches!(rule.protocol, Some(6) | Some(17)) {
                return Err(err(key, value, ParseErrorKind::PortWithoutTcpOrUdp));
            }
        }
        Ok(rule)
    }

    /// The rule string, byte for byte as it was parsed.
    pub fn to_text(&self) -> &str {
        &self.text
    }

    /// The rule string with the first `key=` field (compared without regard to case) set to
    /// `value`, every other byte unchanged. When the rule has no such field it is inserted after
    /// `Action=` (or after the version), where Windows writes `Active=`.
    pub fn with_field(&self, key: &str, value: &str) -> String {
        let mut segments: Vec<String> = self.text.split('|').map(str::to_string).collect();
        let found = segments.iter().skip(1).position(|s| {
            s.split_once('=')
                .is_some_and(|(k, _)| k.eq_ignore_ascii_case(key))
        });
        match found {
            Some(i) => {
                let old_key = segments[i + 1]
                    .split_once('=')
                    .map(|(k, _)| k.to_string())
                    .unwrap_or_else(|| key.to_string());
                segments[i + 1] = format!("{old_key}={value}");
            }
            None => {
                let after = segments
                    .iter()
                    .skip(1)
                    .position(|s| {
                        s.split_once('=')
                            .is_some_and(|(k, _)| k.eq_ignore_ascii_case("Action"))
                    })
                    .map_or(1, |i| i + 2);
                segments.insert(after, format!("{key}={value}"));
            }
        }
        segments.join("|")
    }

    /// The rule applies to `profile`.
    pub fn applies_to(&self, profile: Profile) -> bool {
        self.profiles.is_empty() || self.profiles.contains(&profile)
    }

    /// The rule matches inbound `protocol` traffic to local `port` (programs and other
    /// conditions aside).
    pub fn matches_port(&self, protocol: u8, port: u16) -> bool {
        if self.protocol.is_some_and(|p| p != protocol) {
            return false;
        }
        self.local_ports.is_empty() || self.local_ports.iter().any(|p| p.covers(port))
    }

    /// Whether the rule's program (`App`, `Svc`, `AppPkgId`) is the Remote Desktop `listener`.
    pub fn program(&self, listener: Listener) -> Program {
        if self.package.is_some() {
            return Program::Other;
        }
        let svc_is_rdp = |s: &str| s == "*" || s.eq_ignore_ascii_case("TermService");
        let rdp = |yes: bool| {
            if yes {
                Program::RdpListener
            } else {
                Program::Other
            }
        };
        match (&self.app, &self.service) {
            (None, None) => Program::Any,
            (None, Some(s)) => rdp(listener == Listener::TermService && svc_is_rdp(s)),
            (Some(app), svc) => {
                let file = app.rsplit(['\\', '/']).next().unwrap_or(app);
                let svc_ok = svc.as_deref().is_none_or(svc_is_rdp);
                if app.eq_ignore_ascii_case("System") {
                    rdp(listener == Listener::Kernel && svc.is_none())
                } else if file.eq_ignore_ascii_case("svchost.exe") {
                    rdp(listener == Listener::TermService && svc_ok)
                } else {
                    Program::Other
                }
            }
        }
    }
}

/// The program that receives Remote Desktop connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Listener {
    /// Windows 7 / Server 2008 R2: the kernel (termdd), so rules say `App=System`.
    Kernel,
    /// Windows 8 and later: `svchost.exe` running TermService (`Svc=termservice`).
    TermService,
}

/// How a rule's program conditions relate to the Remote Desktop listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    /// No program condition: any program.
    Any,
    /// The listener: `svchost.exe` with `Svc=TermService` (or any service), or `System`.
    RdpListener,
    /// Another program, service or app container: the rule does not see RDP traffic.
    Other,
}
