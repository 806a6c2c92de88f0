//! Static start analysis: what the Service Control Manager would decide for a service at boot
//! (or on `sc start`), from the registry alone.
//!
//! The order follows the SCM: a disabled service fails at once (1058); then its dependencies are
//! started (a missing one: 1075; a failing one: 1068; a loop: 1059); then its process: a shared
//! svchost already running under another account refuses it (1079), an account that cannot log
//! on fails (1069), a missing image or ServiceDll fails. Drivers with Start 0/1 are loaded by
//! the boot loader / I/O manager before the SCM runs; they count as started if they are not
//! disabled and their file exists.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{image_file, normalize_image_path, show_data, types, Account, ControlSet};
use crate::model::{Field, Role, Service, SystemModel};
use crate::version::Family;

/// The caller's file-exists oracle: `Some(true)` exists, `Some(false)` missing, `None` unknown
/// (no disk at hand). Paths are given as [`crate::model::image_file`] writes them:
/// `%SystemRoot%\system32\dhcpcore.dll`, `C:\Program Files\x.exe`.
pub type FileOracle<'a> = dyn Fn(&str) -> Option<bool> + 'a;

/// Evaluations allowed per analysis before giving up (a hostile hive with a huge dependency
/// web must not make the analysis explode; real hives need a few thousand).
const STEP_LIMIT: usize = 200_000;

/// The answer for one service in one control set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing in the configuration stops it (see the notes for what could not be checked).
    Starts,
    /// The SCM would fail to start it with this Win32 error.
    Fails { code: u32, symbol: String },
    /// Nothing found that stops it, but something decisive cannot be checked offline (a
    /// custom account's password, an unreadable value): see the notes.
    Unverified,
}

/// What one step of a cause chain is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CauseKind {
    /// The service needs `dependency` (DependOnService), which does not start.
    DependsOn { dependency: String },
    /// The service needs one member of `group` to start, and none does.
    DependsOnGroup { group: String, members: Vec<String> },
    /// Start = 4.
    Disabled,
    /// No key under Services: the SCM does not know the service.
    NotInstalled,
    /// Start or Type absent, wrongly typed or out of range: the SCM does not load the entry.
    InvalidEntry,
    /// The dependencies loop; `cycle` starts and ends with the same service.
    Cycle { cycle: Vec<String> },
    /// A shared svchost process already runs the `others` (service, account) under an account
    /// that differs from this service's.
    AccountConflict {
        svchost_group: String,
        account: String,
        others: Vec<(String, String)>,
    },
    /// The account cannot log on.
    LogonFailure { account: String },
    /// A custom account: whether it logs on cannot be decided offline.
    AccountUnverifiable { account: String },
    /// The program or driver file is missing on disk.
    ImageMissing { path: String },
    /// The ServiceDll file is missing on disk.
    ServiceDllMissing { path: String },
    /// An svchost-hosted service without a ServiceDll value.
    NoServiceDll,
    /// A file that could not be checked (no disk, or the oracle did not know).
    FileUnchecked { path: String },
    /// A driver type pointing at a program, or a program type pointing at a driver.
    WrongImageKind,
    /// Demand start: it starts only when asked (by a dependent, a trigger, a user).
    DemandStart,
    /// A value that is not what the SCM expects but does not stop the start.
    Unusual,
}

/// One step of an explanation: the service, the key and value involved, what is wrong, and the
/// error this step gives the service above it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub service: String,
    pub key_path: String,
    pub value: Option<String>,
    pub data: Option<String>,
    #[serde(flatten)]
    pub kind: CauseKind,
    pub code: Option<u32>,
    pub text: String,
}

/// The answer for one service in one control set, with the chain of causes (top first: the
/// service asked about, then what it depends on, down to the root cause).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub service: String,
    pub control_set: u32,
    pub control_set_name: String,
    pub roles: Vec<Role>,
    pub start: Option<u32>,
    /// Whether Windows starts it without being asked (Start 0/1/2) and nothing stops it.
    pub starts_at_boot: bool,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub chain: Vec<Cause>,
    /// Points that do not decide the verdict: files not checked, demand start, caveats.
    pub notes: Vec<Cause>,
}

impl Diagnosis {
    /// The Win32 error, if it fails.
    pub fn code(&self) -> Option<u32> {
        match self.verdict {
            Verdict::Fails { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_current(&self) -> bool {
        self.roles.contains(&Role::Current)
    }

    /// The service at the end of the chain: the one whose configuration is wrong.
    pub fn culprit(&self) -> Option<&Cause> {
        self.chain.last()
    }

    /// One line: `ControlSet001 (Current): Dhcp fails with 1068 ERROR_SERVICE_DEPENDENCY_FAIL:
    /// Dhcp depends on Afd -> Afd is disabled (Start=4)`.
    pub fn summary(&self) -> String {
        let roles = if self.roles.is_empty() {
            String::new()
        } else {
            let r: Vec<String> = self.roles.iter().map(|r| format!("{r:?}")).collect();
            format!(" ({})", r.join(", "))
        };
        let what = match &self.verdict {
            Verdict::Starts if self.starts_at_boot => "starts".to_string(),
            Verdict::Starts => "can start but is not started at boot".to_string(),
            Verdict::Fails { code, symbol } => format!("fails with {code} {symbol}"),
            Verdict::Unverified => "cannot be verified offline".to_string(),
        };
        let mut line = format!("{}{roles}: {} {what}", self.control_set_name, self.service);
        let steps: Vec<&str> = self
            .chain
            .iter()
            .chain(
                self.notes
                    .iter()
                    .filter(|_| self.chain.is_empty() && self.verdict == Verdict::Unverified),
            )
            .map(|c| c.text.as_str())
            .collect();
        if !steps.is_empty() {
            line.push_str(": ");
            line.push_str(&steps.join(" -> "));
        }
        line
    }
}

/// Diagnoses `service` in control set `control_set`. `None` if that control set does not exist.
pub fn diagnose(
    model: &SystemModel,
    control_set: u32,
    service: &str,
    files: &FileOracle<'_>,
) -> Option<Diagnosis> {
    let cs = model.control_set(control_set)?;
    Some(Analyzer::new(model, cs, files).diagnose(service))
}

/// Diagnoses `service` in every control set, in control-set order (see [`Diagnosis::roles`]
/// for which one Windows boots).
pub fn diagnose_all_sets(
    model: &SystemModel,
    service: &str,
    files: &FileOracle<'_>,
) -> Vec<Diagnosis> {
    model
        .control_sets
        .iter()
        .map(|cs| Analyzer::new(model, cs, files).diagnose(service))
        .collect()
}

/// Diagnoses every auto-start service (Start = 2, services and drivers) of a control set.
pub fn diagnose_auto_start(
    model: &SystemModel,
    control_set: u32,
    files: &FileOracle<'_>,
) -> Vec<Diagnosis> {
    let Some(cs) = model.control_set(control_set) else {
        return Vec::new();
    };
    let mut a = Analyzer::new(model, cs, files);
    cs.services
        .iter()
        .filter(|s| s.start.ok() == Some(&2))
        .map(|s| a.diagnose(&s.name))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Unknown,
    Fail(u32),
}

#[derive(Debug, Clone)]
struct Eval {
    status: Status,
    chain: Vec<Cause>,
    notes: Vec<Cause>,
    /// The evaluation met a service on the stack: its result depends on the path and is not
    /// memoised.
    saw_cycle: bool,
}

impl Eval {
    fn ok() -> Eval {
        Eval {
            status: Status::Ok,
            chain: Vec::new(),
            notes: Vec::new(),
            saw_cycle: false,
        }
    }

    fn fail(code: u32, cause: Cause) -> Eval {
        Eval {
            status: Status::Fail(code),
            chain: vec![cause],
            notes: Vec::new(),
            saw_cycle: false,
        }
    }

    fn note(&mut self, c: Cause) {
        if !self.notes.iter().any(|n| n.text == c.text) {
            self.notes.push(c);
        }
    }

    fn absorb_notes(&mut self, other: &Eval) {
        for n in &other.notes {
            self.note(n.clone());
        }
        self.saw_cycle |= other.saw_cycle;
    }
}

/// The analysis of one control set, with a memo shared by the services analysed in it.
struct Analyzer<'m, 'f> {
    model: &'m SystemModel,
    cs: &'m ControlSet,
    files: &'f FileOracle<'f>,
    memo: HashMap<String, Eval>,
    steps: usize,
}

impl<'m, 'f> Analyzer<'m, 'f> {
    fn new(model: &'m SystemModel, cs: &'m ControlSet, files: &'f FileOracle<'f>) -> Self {
        Analyzer {
            model,
            cs,
            files,
            memo: HashMap::new(),
            steps: 0,
        }
    }

    fn diagnose(&mut self, name: &str) -> Diagnosis {
        let mut stack = Vec::new();
        let e = self.eval(name, &mut stack);
        let svc = self.cs.service(name);
        let start = svc.and_then(|s| s.start.ok().copied());
        let mut notes = e.notes.clone();
        if let (Some(3), Some(s)) = (start, svc) {
            notes.insert(
                0,
                cause(
                    s,
                    Some("Start"),
                    Some("3".into()),
                    CauseKind::DemandStart,
                    None,
                    format!("{} is demand-start (Start=3): Windows does not start it at boot unless something asks", s.name),
                ),
            );
        }
        let verdict = match e.status {
            Status::Ok => Verdict::Starts,
            Status::Unknown => Verdict::Unverified,
            Status::Fail(code) => Verdict::Fails {
                code,
                symbol: crate::codes::symbol(code).to_string(),
            },
        };
        Diagnosis {
            service: svc
                .map(|s| s.name.clone())
                .unwrap_or_else(|| name.to_string()),
            control_set: self.cs.number,
            control_set_name: self.cs.name.clone(),
            roles: self.cs.roles.clone(),
            start,
            starts_at_boot: e.status == Status::Ok && matches!(start, Some(0..=2)),
            verdict,
            chain: e.chain,
            notes,
        }
    }

    fn eval(&mut self, name: &str, stack: &mut Vec<(String, String)>) -> Eval {
        let key = name.trim().to_uppercase();
        if let Some(e) = self.memo.get(&key) {
            return e.clone();
        }
        self.steps += 1;
        if self.steps > STEP_LIMIT {
            let mut e = Eval::ok();
            e.status = Status::Unknown;
            e.note(Cause {
                service: name.to_string(),
                key_path: self.cs.services_path(),
                value: None,
                data: None,
                kind: CauseKind::Unusual,
                code: None,
                text: format!(
                    "analysis stopped after {STEP_LIMIT} steps (dependency web too large)"
                ),
            });
            return e;
        }
        let Some(svc) = self.cs.service(name) else {
            return Eval::fail(
                1060,
                Cause {
                    service: name.to_string(),
                    key_path: format!("{}\\{}", self.cs.services_path(), name),
                    value: None,
                    data: None,
                    kind: CauseKind::NotInstalled,
                    code: Some(1060),
                    text: format!(
                        "{name} does not exist (no key under {})",
                        self.cs.services_path()
                    ),
                },
            );
        };
        stack.push((key.clone(), svc.name.clone()));
        let e = self.eval_service(svc, stack);
        stack.pop();
        if !e.saw_cycle {
            self.memo.insert(key, e.clone());
        }
        e
    }

    fn eval_service(&mut self, svc: &'m Service, stack: &mut Vec<(String, String)>) -> Eval {
        // Start and Type are what the SCM needs to know a key is a service at all: keys
        // without them (perf-counter or event-log leftovers) are not services to it.
        let start = match &svc.start {
            Field::Ok(s @ 0..=4) => *s,
            other => return invalid_entry(svc, "Start", other, "REG_DWORD 0..4"),
        };
        let ty = match &svc.service_type {
            Field::Ok(t) if t & (types::DRIVER_MASK | types::WIN32_MASK) != 0 => *t,
            other => return invalid_entry(svc, "Type", other, "REG_DWORD, a driver or Win32 type"),
        };
        if start == 4 {
            return Eval::fail(
                1058,
                cause(
                    svc,
                    Some("Start"),
                    Some("4".into()),
                    CauseKind::Disabled,
                    Some(1058),
                    format!("{} is disabled (Start=4)", svc.name),
                ),
            );
        }
        let is_driver = ty & types::WIN32_MASK == 0;
        let mut e = self.eval_dependencies(svc, stack);
        if e.status != Status::Ok && matches!(e.status, Status::Fail(_)) {
            return e;
        }
        let own = if is_driver {
            self.eval_driver(svc)
        } else {
            self.eval_win32(svc, ty)
        };
        e.absorb_notes(&own);
        match own.status {
            Status::Fail(_) => Eval {
                status: own.status,
                chain: own.chain,
                notes: e.notes,
                saw_cycle: e.saw_cycle,
            },
            Status::Unknown => {
                e.status = Status::Unknown;
                e
            }
            Status::Ok => e,
        }
    }

    fn eval_dependencies(&mut self, svc: &'m Service, stack: &mut Vec<(String, String)>) -> Eval {
        let mut acc = Eval::ok();
        if let Field::WrongType { .. } | Field::Unreadable(_) = &svc.depend_on_service {
            acc.status = Status::Unknown;
            acc.note(cause(
                svc,
                Some("DependOnService"),
                Some(
                    svc.depend_on_service
                        .describe(|v| format!("{v:?}"), "REG_MULTI_SZ"),
                ),
                CauseKind::Unusual,
                None,
                format!(
                    "{}: DependOnService is not a REG_MULTI_SZ; its dependencies are not known",
                    svc.name
                ),
            ));
        }
        let deps_text = svc
            .depend_on_service
            .ok()
            .map(|v| v.join(","))
            .unwrap_or_default();
        for dep in svc.service_dependencies() {
            let dep_key = dep.trim().to_uppercase();
            if let Some(pos) = stack.iter().position(|(k, _)| *k == dep_key) {
                let mut cycle: Vec<String> = stack[pos..].iter().map(|(_, n)| n.clone()).collect();
                cycle.push(stack[pos].1.clone());
                let text = format!("dependency loop: {}", cycle.join(" -> "));
                let mut e = Eval::fail(
                    1059,
                    cause(
                        svc,
                        Some("DependOnService"),
                        Some(deps_text.clone()),
                        CauseKind::Cycle { cycle },
                        Some(1059),
                        text,
                    ),
                );
                e.saw_cycle = true;
                e.notes = acc.notes;
                return e;
            }
            let d = self.eval(&dep, stack);
            acc.absorb_notes(&d);
            match d.status {
                Status::Ok => {}
                Status::Unknown => acc.status = Status::Unknown,
                Status::Fail(code) => {
                    let (my_code, text) = match code {
                        1060 => (
                            1075,
                            format!("{} depends on {dep}, which does not exist", svc.name),
                        ),
                        1059 => (
                            1059,
                            format!(
                                "{} depends on {dep}, which is in a dependency loop",
                                svc.name
                            ),
                        ),
                        _ => (
                            1068,
                            format!("{} depends on {dep}, which does not start", svc.name),
                        ),
                    };
                    let mut chain = vec![cause(
                        svc,
                        Some("DependOnService"),
                        Some(deps_text.clone()),
                        CauseKind::DependsOn {
                            dependency: dep.clone(),
                        },
                        Some(my_code),
                        text,
                    )];
                    chain.extend(d.chain);
                    return Eval {
                        status: Status::Fail(my_code),
                        chain,
                        notes: acc.notes,
                        saw_cycle: acc.saw_cycle,
                    };
                }
            }
        }
        for group in svc.group_dependencies() {
            let members: Vec<&Service> = self.cs.group_members(&group);
            let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
            let value = if svc.depend_on_group.ok().is_some_and(|v| v.contains(&group)) {
                "DependOnGroup"
            } else {
                "DependOnService"
            };
            let mut first_failure: Option<Eval> = None;
            let mut satisfied = false;
            let mut unknown = false;
            for m in &members {
                let mk = m.name.to_uppercase();
                if stack.iter().any(|(k, _)| *k == mk) {
                    acc.saw_cycle = true;
                    continue;
                }
                let d = self.eval(&m.name, stack);
                acc.absorb_notes(&d);
                match d.status {
                    Status::Ok => {
                        satisfied = true;
                        break;
                    }
                    Status::Unknown => unknown = true,
                    Status::Fail(_) => {
                        if first_failure.is_none() {
                            first_failure = Some(d);
                        }
                    }
                }
            }
            if satisfied {
                continue;
            }
            if unknown {
                acc.status = Status::Unknown;
                continue;
            }
            let text = if members.is_empty() {
                format!(
                    "{} needs a member of group {group}, and the group has no member",
                    svc.name
                )
            } else {
                format!(
                    "{} needs a member of group {group} ({}), and none starts",
                    svc.name,
                    names.join(", ")
                )
            };
            let mut chain = vec![cause(
                svc,
                Some(value),
                Some(group.clone()),
                CauseKind::DependsOnGroup {
                    group: group.clone(),
                    members: names,
                },
                Some(1068),
                text,
            )];
            if let Some(f) = first_failure {
                chain.extend(f.chain);
            }
            return Eval {
                status: Status::Fail(1068),
                chain,
                notes: acc.notes,
                saw_cycle: acc.saw_cycle,
            };
        }
        acc
    }

    fn check_file(&self, svc: &Service, value: &str, path: &str, e: &mut Eval) -> Option<bool> {
        let found = (self.files)(path);
        if found.is_none() {
            e.note(cause(
                svc,
                Some(value),
                Some(path.to_string()),
                CauseKind::FileUnchecked {
                    path: path.to_string(),
                },
                None,
                format!("{}: {path} not checked on disk", svc.name),
            ));
        }
        found
    }

    /// Start 0/1 drivers are loaded before the SCM runs and 2/3 by it: offline the outcome is
    /// the same, so the start type is not looked at here (4 was refused before).
    fn eval_driver(&mut self, svc: &Service) -> Eval {
        let mut e = Eval::ok();
        // The I/O manager's default when ImagePath is absent.
        let path = match &svc.image_path {
            Field::Ok(p) => image_file(p),
            _ => format!("%SystemRoot%\\System32\\drivers\\{}.sys", svc.name),
        };
        if path.to_ascii_lowercase().ends_with(".exe") {
            return Eval::fail(
                193,
                cause(
                    svc,
                    Some("Type"),
                    Some(svc.service_type.describe(|t| format!("0x{t:x}"), "REG_DWORD")),
                    CauseKind::WrongImageKind,
                    Some(193),
                    format!(
                        "{} has a driver Type but its image is a program ({path}): it cannot be loaded as a driver",
                        svc.name
                    ),
                ),
            );
        }
        if self.check_file(svc, "ImagePath", &path, &mut e) == Some(false) {
            return Eval::fail(
                2,
                cause(
                    svc,
                    Some("ImagePath"),
                    Some(path.clone()),
                    CauseKind::ImageMissing { path: path.clone() },
                    Some(2),
                    format!("{}: driver file {path} is missing", svc.name),
                ),
            );
        }
        e
    }

    fn eval_win32(&mut self, svc: &Service, ty: u32) -> Eval {
        let mut e = Eval::ok();
        let image = match &svc.image_path {
            Field::Ok(p) => p.clone(),
            other => {
                return Eval::fail(
                    2,
                    cause(
                        svc,
                        Some("ImagePath"),
                        Some(other.describe(|p| p.clone(), "REG_EXPAND_SZ")),
                        CauseKind::ImageMissing {
                            path: String::new(),
                        },
                        Some(2),
                        format!(
                            "{} has no usable ImagePath: the SCM has no program to run",
                            svc.name
                        ),
                    ),
                )
            }
        };
        let exe = image_file(&image);
        if exe.to_ascii_lowercase().ends_with(".sys") {
            return Eval::fail(
                193,
                cause(
                    svc,
                    Some("Type"),
                    Some(format!("0x{ty:x}")),
                    CauseKind::WrongImageKind,
                    Some(193),
                    format!(
                        "{} has a Win32 Type but its image is a driver ({exe})",
                        svc.name
                    ),
                ),
            );
        }

        // Account. A shared process is checked first: when the svchost instance already runs,
        // the SCM compares accounts before any logon is tried.
        let account = match svc.account() {
            Some(a) => a,
            None => {
                e.status = Status::Unknown;
                e.note(cause(
                    svc,
                    Some("ObjectName"),
                    Some(svc.object_name.describe(|s| s.clone(), "REG_SZ")),
                    CauseKind::Unusual,
                    None,
                    format!(
                        "{}: ObjectName cannot be read as a string; its account is not known",
                        svc.name
                    ),
                ));
                return e;
            }
        };
        let obj_text = svc
            .object_name
            .ok()
            .cloned()
            .unwrap_or_else(|| "(absent: LocalSystem)".into());
        if ty & types::SHARE_PROCESS != 0 {
            if let Some(conflict) = self.account_conflict(svc, &image, &account) {
                return conflict;
            }
        }
        match &account {
            Account::Invalid(a) => {
                return Eval::fail(
                    1069,
                    cause(
                        svc,
                        Some("ObjectName"),
                        Some(obj_text),
                        CauseKind::LogonFailure { account: a.clone() },
                        Some(1069),
                        format!(
                            "{}: ObjectName {a:?} is not an account that can log on",
                            svc.name
                        ),
                    ),
                )
            }
            Account::Custom(a) => {
                e.status = Status::Unknown;
                e.note(cause(
                    svc,
                    Some("ObjectName"),
                    Some(obj_text),
                    CauseKind::AccountUnverifiable { account: a.clone() },
                    Some(1069),
                    format!(
                        "{} runs as {a}: a user account whose password is not checked offline (1069 if it cannot log on)",
                        svc.name
                    ),
                ));
            }
            _ => {}
        }
        if ty & types::INTERACTIVE != 0 && account != Account::LocalSystem {
            e.note(cause(
                svc,
                Some("Type"),
                Some(format!("0x{ty:x}")),
                CauseKind::Unusual,
                None,
                format!(
                    "{}: interactive Type 0x100 is only valid for LocalSystem",
                    svc.name
                ),
            ));
        }

        // Files.
        if self.check_file(svc, "ImagePath", &exe, &mut e) == Some(false) {
            return Eval::fail(
                2,
                cause(
                    svc,
                    Some("ImagePath"),
                    Some(image.clone()),
                    CauseKind::ImageMissing { path: exe.clone() },
                    Some(2),
                    format!("{}: program {exe} is missing", svc.name),
                ),
            );
        }
        if crate::model::svchost_group(&image).is_some() {
            // A per-user service instance (`CDPUserSvc_1d05b`, Type bit 0x80) takes its
            // ServiceDll from its template service (`CDPUserSvc`).
            let template = (ty & types::USER_SERVICE_INSTANCE != 0)
                .then(|| svc.name.rsplit_once('_').map(|(t, _)| t))
                .flatten()
                .and_then(|t| self.cs.service(t));
            let dll = svc
                .effective_service_dll()
                .or_else(|| template.and_then(Service::effective_service_dll));
            match dll {
                None => {
                    // svchost reads ServiceDll from the registry and reports the lookup's
                    // error (ERROR_FILE_NOT_FOUND) as the service's exit code.
                    return Eval::fail(
                        2,
                        cause(
                            svc,
                            Some("ServiceDll"),
                            Some("(absent)".into()),
                            CauseKind::NoServiceDll,
                            Some(2),
                            format!(
                                "{} is hosted by svchost but has no ServiceDll (in Parameters or the key)",
                                svc.name
                            ),
                        ),
                    );
                }
                Some(dll) => {
                    let path = image_file(dll);
                    if self.check_file(svc, "ServiceDll", &path, &mut e) == Some(false) {
                        return Eval::fail(
                            126,
                            cause(
                                svc,
                                Some("ServiceDll"),
                                Some(dll.to_string()),
                                CauseKind::ServiceDllMissing { path: path.clone() },
                                Some(126),
                                format!("{}: ServiceDll {path} is missing", svc.name),
                            ),
                        );
                    }
                }
            }
        }
        e
    }

    /// 1079: another auto-start service of the same svchost command line with another account.
    fn account_conflict(&self, svc: &Service, image: &str, account: &Account) -> Option<Eval> {
        let norm = normalize_image_path(image);
        let mine = account.canonical();
        let others: Vec<(String, String)> = self
            .cs
            .services
            .iter()
            .filter(|o| !o.name.eq_ignore_ascii_case(&svc.name))
            .filter(|o| matches!(o.service_type.ok(), Some(t) if t & types::SHARE_PROCESS != 0))
            .filter(|o| o.start.ok() == Some(&2))
            .filter(|o| o.image_path.ok().map(|p| normalize_image_path(p)) == Some(norm.clone()))
            .filter_map(|o| {
                let a = o.account()?;
                (a.canonical() != mine).then(|| {
                    (
                        o.name.clone(),
                        o.object_name
                            .ok()
                            .cloned()
                            .unwrap_or_else(|| "LocalSystem".into()),
                    )
                })
            })
            .collect();
        if others.is_empty() {
            return None;
        }
        let group = crate::model::svchost_group(image).unwrap_or_else(|| image.to_string());
        let list: Vec<String> = others.iter().map(|(n, a)| format!("{n} ({a})")).collect();
        let acct = svc
            .object_name
            .ok()
            .cloned()
            .unwrap_or_else(|| "LocalSystem".into());
        let mut e = Eval::fail(
            1079,
            cause(
                svc,
                Some("ObjectName"),
                Some(acct.clone()),
                CauseKind::AccountConflict {
                    svchost_group: group.clone(),
                    account: acct.clone(),
                    others: others.clone(),
                },
                Some(1079),
                format!(
                    "{} runs as {acct} but shares svchost group {group} with {}",
                    svc.name,
                    list.join(", ")
                ),
            ),
        );
        if matches!(
            self.model.version.family,
            Family::Windows10 | Family::Unknown
        ) {
            e.note(cause(
                svc,
                Some("ObjectName"),
                Some(acct),
                CauseKind::Unusual,
                None,
                "on Windows 10 1703 and later with svchost splitting (3.5 GB of RAM or more) the service may get its own process; the account then has to log on by itself (1069 if it cannot)".into(),
            ));
        }
        Some(e)
    }
}

fn cause(
    svc: &Service,
    value: Option<&str>,
    data: Option<String>,
    kind: CauseKind,
    code: Option<u32>,
    text: String,
) -> Cause {
    Cause {
        service: svc.name.clone(),
        key_path: svc.key_path.clone(),
        value: value.map(str::to_string),
        data,
        kind,
        code,
        text,
    }
}

fn invalid_entry<T: std::fmt::Debug>(
    svc: &Service,
    value: &str,
    field: &Field<T>,
    expected: &str,
) -> Eval {
    let data = match field {
        Field::Ok(v) => format!("{v:?}"),
        Field::Missing => "(absent)".into(),
        Field::WrongType { found, data } => format!("{found} {}", show_data(data)),
        Field::Unreadable(e) => format!("(unreadable: {e})"),
    };
    Eval::fail(
        1060,
        cause(
            svc,
            Some(value),
            Some(data.clone()),
            CauseKind::InvalidEntry,
            Some(1060),
            format!(
                "{}: {value} is {data}, expected {expected}: the SCM does not load the entry as a service",
                svc.name
            ),
        ),
    )
}
