//! Rules that are data: a service that must start (or be able to start) for RDP to work.
//!
//! The verdict is the Service Control Manager's, predicted from the configuration in every
//! control set (`rescue::dhcp::assess_service`, the analysis `sc` and the write guard use too),
//! compared with the service's healthy configuration. The System event log gives the evidence.

use regf::Data;
use rescue::change::{Change, Op};
use rescue::dhcp::assess_service;
use rescue::offline::{HiveId, Offline};
use winsvc::analyze::Verdict as ScmVerdict;
use winsvc::baseline::{self, Baseline, BaselineData, BaselineValue, ServiceBaseline};
use winsvc::{codes, Account, WindowsVersion};

use crate::report::{
    Agreement, ControlSetReport, Evidence, Finding, LastState, Location, Runbook, ServiceDetail,
    Severity, Stage, Status,
};
use crate::rule::{Meta, Options, Rule};

/// What the healthy configuration of the service is.
#[derive(Debug, Clone, Copy)]
pub enum Healthy {
    /// The full baseline read from real hives, per Windows version (the service and everything
    /// it needs): `crates/winsvc/data/dhcp-baseline.json`.
    DhcpBaseline,
    /// A start type and the ones also accepted, and the services it needs with theirs.
    Start {
        start: u32,
        also: &'static [u32],
        needs: &'static [(&'static str, u32)],
    },
}

/// What it means when the service does not exist.
#[derive(Debug, Clone, Copy)]
pub enum Missing {
    /// RDP cannot work without it.
    Broken,
    /// Some machines do not have it, for this reason: nothing to check.
    Optional(&'static str),
}

/// A service RDP needs.
#[derive(Debug, Clone, Copy)]
pub struct ServiceRule {
    pub service: &'static str,
    /// As the System log and the Services console name it.
    pub display_name: &'static str,
    pub stage: Stage,
    pub severity: Severity,
    pub why: &'static str,
    pub article: &'static str,
    pub healthy: Healthy,
    pub missing: Missing,
}

impl ServiceRule {
    /// `service:<key name>`.
    pub fn id(&self) -> String {
        format!("service:{}", self.service)
    }

    fn baseline(&self, version: &WindowsVersion) -> Baseline {
        match self.healthy {
            Healthy::DhcpBaseline => baseline::dhcp().for_version(version),
            Healthy::Start { start, also, needs } => {
                let start_value = |n: u32, also: &[u32]| BaselineValue {
                    name: "Start".into(),
                    subkey: None,
                    value_type: "REG_DWORD".into(),
                    data: Some(BaselineData::Dword(n)),
                    also_healthy: also.iter().map(|&a| Some(BaselineData::Dword(a))).collect(),
                    note: None,
                };
                let mut services = vec![ServiceBaseline {
                    name: self.service.into(),
                    values: vec![start_value(start, also)],
                }];
                services.extend(needs.iter().map(|&(name, start)| ServiceBaseline {
                    name: name.into(),
                    values: vec![start_value(start, &[])],
                }));
                Baseline {
                    service: self.service.into(),
                    variants: vec!["rdp-rules".into()],
                    services,
                }
            }
        }
    }
}

impl Rule for ServiceRule {
    fn meta(&self) -> Meta {
        Meta {
            id: self.id(),
            stage: self.stage,
            severity: self.severity,
            checks: format!("{} ({}) starts", self.display_name, self.service),
            why: self.why.into(),
            article: self.article.into(),
        }
    }

    fn check(&self, w: &Offline, opts: &Options) -> Finding {
        let meta = self.meta();
        let model = w.model();
        let boot = match model.boot_set() {
            Ok(cs) => cs,
            Err(e) => return meta.cannot_tell(e.to_string()),
        };
        let svc = boot.service(self.service);
        // A service with a full baseline is recreated from it; one known by its start type
        // alone cannot be.
        if svc.is_none() && !matches!(self.healthy, Healthy::DhcpBaseline) {
            return match self.missing {
                Missing::Optional(why) => crate::value::not_checked(
                    &meta,
                    &format!("{} is not installed: {why}", self.service),
                ),
                Missing::Broken => {
                    let mut f = meta.finding(
                        Status::Broken,
                        format!("{} ({}) is not installed", self.display_name, self.service),
                    );
                    f.locations.push(Location {
                        hive: HiveId::System,
                        key: format!(r"{}\{}", boot.services_path(), self.service),
                        value: None,
                    });
                    f.unresolved.push(format!(
                        "{} has no key in {}: it cannot be recreated from the disk alone",
                        self.service, boot.name
                    ));
                    f
                }
            };
        }
        let key_path = svc
            .map(|s| s.key_path.clone())
            .unwrap_or_else(|| format!(r"{}\{}", boot.services_path(), self.service));
        let files = |p: &str| w.file_exists(p);
        let base = self.baseline(w.version());
        let a = assess_service(model, self.service, &base, &files, opts.own_process);
        let control_sets: Vec<ControlSetReport> = a
            .control_sets
            .into_iter()
            .map(|c| ControlSetReport {
                diagnosis: c.diagnosis,
                differences: c.differences,
            })
            .collect();
        let boot_diag = control_sets
            .iter()
            .find(|c| c.diagnosis.control_set == boot.number)
            .map(|c| &c.diagnosis);
        let (status, severity, title) = match (&a.cannot_tell, a.code, a.healthy) {
            (Some(why), _, _) => {
                let mut f = meta.cannot_tell(why.clone());
                f.title = format!("{}: {why}", meta.checks);
                return f;
            }
            (None, Some(code), _) => (
                Status::Broken,
                self.severity,
                format!(
                    "{} ({}) will not start: error {code} {}",
                    self.display_name,
                    self.service,
                    codes::lookup(code)
                        .map(|b| b.symbol.as_str())
                        .unwrap_or_default()
                ),
            ),
            (None, None, true) => (Status::Healthy, self.severity, meta.checks.clone()),
            // It can start, but its configuration is not the healthy one (a demand start where
            // Windows starts it at boot, say): RDP may still work, or not.
            (None, None, false) => (
                Status::Broken,
                Severity::MayBlock.max(self.severity),
                format!(
                    "{} ({}) can start, but its configuration differs from the healthy one",
                    self.display_name, self.service
                ),
            ),
        };
        let mut f = meta.finding(status, title);
        f.severity = severity;
        f.locations.push(Location {
            hive: HiveId::System,
            key: key_path,
            value: None,
        });
        f.found = boot_diag.map(|d| match &d.verdict {
            ScmVerdict::Starts if d.starts_at_boot => "starts at boot".to_string(),
            ScmVerdict::Starts => format!("Start={}: started on demand only", d.start.unwrap_or(3)),
            ScmVerdict::Fails { code, symbol } => format!("fails with {code} {symbol}"),
            ScmVerdict::Unverified => "cannot be verified offline".to_string(),
        });
        f.expected = Some(match self.healthy {
            Healthy::DhcpBaseline => "starts at boot, configured as a healthy install".into(),
            Healthy::Start { start, also, .. } => {
                let mut ok = vec![start.to_string()];
                ok.extend(also.iter().map(u32::to_string));
                format!("starts when needed (Start {})", ok.join(" or "))
            }
        });
        if status == Status::Broken {
            f.changes = a.plan.changes.iter().map(Change::from_plan).collect();
            let security = recreated_keys_security(w, &f.changes);
            f.changes.extend(security);
            f.unresolved = a.plan.unresolved.clone();
            f.runbook = runbook(&f.changes, &boot.name);
        }
        // The article's own diagnosis reads the log, so the DHCP Client's evidence is always
        // read; other services' only when they are broken (each reading scans the whole log).
        let evidence = if status == Status::Broken || matches!(self.healthy, Healthy::DhcpBaseline)
        {
            read_evidence(w, self.service, a.code)
        } else {
            None
        };
        f.service = Some(Box::new(ServiceDetail {
            service: self.service.into(),
            display_name: self.display_name.into(),
            control_sets,
            code: a.code,
            // The article's table is the DHCP Client's: its fixes name Dhcp and Dhcp's start
            // type and account, wrong for any other service, whose fix is its own change.
            branch: a
                .code
                .filter(|_| matches!(self.healthy, Healthy::DhcpBaseline))
                .and_then(codes::lookup)
                .cloned(),
            evidence,
        }));
        f
    }
}

/// The descriptors of the keys a plan re-creates, as a healthy install of this Windows version
/// has them. A key created without one inherits its parent's, which does not grant the service's
/// own SID what it needs: the service would then fail with error 5 (the access rule says so).
fn recreated_keys_security(w: &Offline, changes: &[Change]) -> Vec<Change> {
    let Ok(hive) = w.system().hive() else {
        return Vec::new();
    };
    let family = w.version().family;
    let mut keys: Vec<&str> = changes
        .iter()
        .filter(|c| c.hive == HiveId::System)
        .map(|c| c.key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        if !matches!(hive.key(key), Ok(None)) {
            continue;
        }
        // The baselines name keys below the control set.
        let Some((_, below)) = key.split_once('\\') else {
            continue;
        };
        let Some(sd) = crate::access::baseline(family, below) else {
            continue;
        };
        let reason =
            format!("the re-created key gets the descriptor of a healthy {family:?} install");
        if let Ok(c) = Change::set_security(HiveId::System, key, sd.to_bytes(), Vec::new(), reason)
        {
            out.push(c);
        }
    }
    out
}

/// Serial-console commands that make the planned changes in the running system: `sc config`
/// where sc.exe has an option for the value, `reg add` / `reg delete` on `CurrentControlSet`
/// otherwise; changes of the other control sets by their own names.
pub(crate) fn runbook(changes: &[Change], boot_set: &str) -> Runbook {
    let mut r = Runbook::default();
    for c in changes {
        let mut parts = c.key.split('\\');
        let set = parts.next().unwrap_or_default();
        let running = set.eq_ignore_ascii_case(boot_set);
        let rest: Vec<&str> = parts.collect();
        // The set the VM runs is CurrentControlSet (sc.exe writes there); another set (Last
        // Known Good) is written by its own name.
        let ccs = format!(
            r"HKLM\SYSTEM\{}\{}",
            if running { "CurrentControlSet" } else { set },
            rest.join("\\")
        );
        let svc = match rest.as_slice() {
            [services, name] if running && services.eq_ignore_ascii_case("services") => Some(*name),
            _ => None,
        };
        let value = c.value.as_deref().unwrap_or_default();
        let new = match &c.op {
            Op::Set { data, .. } => Some(data),
            _ => None,
        };
        if let (Some(name), Some(opt)) = (svc, new.and_then(|d| sc_option(value, d))) {
            r.cmd.push(format!("sc config {name} {opt}"));
            // In PowerShell `sc` is Set-Content, and "" must survive its quoting.
            r.powershell.push(format!(
                "sc.exe config {name} {}",
                opt.replace("password= \"\"", "password= '\"\"'")
            ));
            continue;
        }
        if let Op::SetSecurity { descriptor, .. } = &c.op {
            let (cmd, ps) = set_acl(&ccs, descriptor);
            r.cmd.push(cmd);
            r.powershell.push(ps);
            continue;
        }
        let line = match &c.op {
            Op::Set { value_type, data } => {
                let text = match data {
                    Data::Dword(n) => n.to_string(),
                    Data::Qword(n) => n.to_string(),
                    Data::MultiSz(v) => v.join("\\0"),
                    Data::Sz(s) | Data::ExpandSz(s) => s.clone(),
                    other => winsvc::show_data(other),
                };
                let t = value_type.name().unwrap_or("REG_BINARY");
                format!("add \"{ccs}\" /v {value} /t {t} /d \"{text}\" /f")
            }
            Op::DeleteValue => format!("delete \"{ccs}\" /v {value} /f"),
            Op::CreateKey => format!("add \"{ccs}\" /f"),
            Op::DeleteKey => format!("delete \"{ccs}\" /f"),
            // Made above, with PowerShell.
            Op::SetSecurity { .. } => continue,
        };
        r.cmd.push(format!("reg {line}"));
        r.powershell.push(format!("reg.exe {line}"));
    }
    r
}

/// The commands that give the key at `reg_path` (`HKLM\SYSTEM\...`) the DACL of `descriptor`:
/// reg.exe cannot set a key's ACL, so both are PowerShell (from CMD through powershell.exe).
/// Only the DACL is set ('Access'), as the repair keeps the owner, group and SACL.
fn set_acl(reg_path: &str, descriptor: &[u8]) -> (String, String) {
    let dacl = regf::security::SecurityDescriptor::parse(descriptor)
        .map(|d| {
            regf::security::SecurityDescriptor {
                owner: None,
                group: None,
                sacl: regf::security::AclField::NotPresent,
                ..d
            }
            .sddl()
        })
        .unwrap_or_default();
    let path = reg_path.replacen("HKLM\\", "HKLM:\\", 1);
    let ps = format!(
        "$a = Get-Acl '{path}'; $a.SetSecurityDescriptorSddlForm('{dacl}', 'Access'); Set-Acl -Path '{path}' -AclObject $a"
    );
    (format!("powershell -NoProfile -Command \"{ps}\""), ps)
}

/// The `sc config` option that sets a service value, when sc.exe has one.
fn sc_option(value: &str, data: &Data) -> Option<String> {
    match (value.to_ascii_lowercase().as_str(), data) {
        ("start", Data::Dword(n)) => ["boot", "system", "auto", "demand", "disabled"]
            .get(*n as usize)
            .map(|w| format!("start= {w}")),
        ("type", Data::Dword(0x10)) => Some("type= own".into()),
        ("type", Data::Dword(0x20)) => Some("type= share".into()),
        ("errorcontrol", Data::Dword(n)) => ["ignore", "normal", "severe", "critical"]
            .get(*n as usize)
            .map(|w| format!("error= {w}")),
        ("objectname", Data::Sz(a)) => {
            let builtin = matches!(
                Account::classify(Some(a)),
                Account::LocalService | Account::NetworkService | Account::LocalSystem
            );
            Some(format!(
                "obj= \"{a}\"{}",
                if builtin { " password= \"\"" } else { "" }
            ))
        }
        _ => None,
    }
}

/// The SCM events about a service and what they point to; `None` when the target holds no
/// System log.
pub(crate) fn read_evidence(
    w: &Offline,
    service: &str,
    predicted: Option<u32>,
) -> Option<Evidence> {
    let query = evidence::Query {
        service: Some(service.into()),
        ..Default::default()
    };
    let report = match w.read_system_log(&query) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            return Some(Evidence {
                events: Vec::new(),
                log_ends: None,
                points_to: None,
                last_state: None,
                agreement: Agreement::LogUnreadable,
                predicted,
                older_chunks_not_read: 0,
                warnings: vec![e.to_string()],
            })
        }
    };
    let mut events = report.events;
    events.sort_by_key(|e| e.record_id);
    // The newest failure event decides the branch the log points to.
    let points_to = events.iter().rev().find_map(|e| match e.event_id {
        7022 | 7009 | 7011 => Some(1053),
        7023 | 7024 | 7031 | 7034 => Some(1067),
        7038 => Some(1069),
        7000 | 7001 => e
            .error
            .map(|c| c.code)
            .filter(|c| matches!(c, 5 | 1058 | 1068 | 1069 | 1075 | 1079 | 1059)),
        _ => None,
    });
    let last = events.iter().rev().find(|e| e.event_id == 7036);
    let last_state = last.and_then(|e| {
        e.state.map(|state| LastState {
            state,
            time: evidence::show_time(e.time),
        })
    });
    let running_last = last.and_then(|e| e.state) == Some(evidence::ServiceState::Running);
    let agreement = match (predicted, points_to) {
        (None, None) => Agreement::Agree,
        (Some(c), Some(p)) if c == p || (matches!(c, 1053 | 1070) && matches!(p, 1053 | 1070)) => {
            Agreement::Agree
        }
        (Some(_), _) if running_last => Agreement::ConfigurationChangedSinceLog,
        // A disabled service is not started at boot, so the SCM logs no failure for it: an
        // empty failure record is what 1058 looks like.
        (Some(1058), None) => Agreement::Consistent,
        (Some(_), None) => Agreement::LogShowsNoFailure,
        (None, Some(_)) => Agreement::LogShowsRuntimeFailure,
        (Some(_), Some(_)) => Agreement::Disagree,
    };
    Some(Evidence {
        log_ends: report.stats.newest.map(evidence::show_time),
        events,
        points_to,
        last_state,
        agreement,
        predicted,
        older_chunks_not_read: report.stats.older_chunks_not_read,
        warnings: report.warnings.iter().map(|w| w.to_string()).collect(),
    })
}
