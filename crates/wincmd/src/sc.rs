//! sc.exe's argument grammar (`query | qc | config SERVICE option= value ...`) and what
//! `sc config` writes to a service key.
//!
//! Options are written as sc.exe wants them: the option name ends with `=` and the value is the
//! next argument (`start= auto`); `start=auto` is refused, as sc.exe refuses it, with the
//! spelling that works.

use regf::Data;
use serde::Serialize;
use winsvc::{types, Account, Service, SystemModel};

use crate::change::{delete_value, set_value, Applied};
use crate::error::{Error, Result, ScUsage};

fn syntax(what: impl std::fmt::Display) -> Error {
    Error::ScSyntax {
        detail: what.to_string(),
        usage: ScUsage::Config,
    }
}

fn query_syntax(what: impl std::fmt::Display) -> Error {
    Error::ScSyntax {
        detail: what.to_string(),
        usage: ScUsage::Query,
    }
}

/// A `start=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartKind {
    Boot,
    System,
    Auto,
    DelayedAuto,
    Demand,
    Disabled,
}

impl StartKind {
    /// The registry's `Start` value.
    pub fn start_value(self) -> u32 {
        match self {
            StartKind::Boot => 0,
            StartKind::System => 1,
            StartKind::Auto | StartKind::DelayedAuto => 2,
            StartKind::Demand => 3,
            StartKind::Disabled => 4,
        }
    }

    /// sc.exe's word for a `Start` value.
    pub fn word(start: u32) -> Option<&'static str> {
        Some(match start {
            0 => "boot",
            1 => "system",
            2 => "auto",
            3 => "demand",
            4 => "disabled",
            _ => return None,
        })
    }
}

/// One `option= value` of `sc config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "option", content = "value", rename_all = "snake_case")]
pub enum ConfigOpt {
    Start(StartKind),
    /// The new Type (own 0x10, share 0x20, kernel 0x1, filesys 0x2).
    Type(u32),
    Error(u32),
    BinPath(String),
    Group(String),
    /// `depend=` entries split at `/`; `+name` entries are groups.
    Depend(Vec<String>),
    Obj(String),
    DisplayName(String),
    Password,
}

/// A parsed sc.exe command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ScOp {
    Query {
        service: String,
    },
    Qc {
        service: String,
    },
    Config {
        service: String,
        options: Vec<ConfigOpt>,
    },
}

/// Parses sc.exe's arguments after the target.
pub fn parse(args: &[String]) -> Result<ScOp> {
    let Some((verb, rest)) = args.split_first() else {
        return Err(syntax("no command: QUERY, QC or CONFIG"));
    };
    let v = verb.to_ascii_lowercase();
    match v.as_str() {
        "query" | "qc" | "config" => {}
        "start" | "stop" | "pause" | "continue" | "control" | "interrogate" => {
            return Err(Error::NeedsRunningScm { verb: verb.clone() })
        }
        _ => {
            return Err(syntax(format!(
                "{verb:?} is not a command winrescue runs offline (QUERY, QC, CONFIG)."
            )))
        }
    }
    let Some((service, opts)) = rest.split_first() else {
        let what = format!("{} needs a service name.", v.to_uppercase());
        return Err(if v == "config" {
            syntax(what)
        } else {
            query_syntax(what)
        });
    };
    if service.contains('=') {
        return Err(syntax(format!("{service:?} is not a service name.")));
    }
    let service = service.clone();
    if v != "config" {
        if let Some(extra) = opts.first() {
            return Err(query_syntax(format!(
                "unexpected argument {extra:?} after the service name."
            )));
        }
        return Ok(if v == "query" {
            ScOp::Query { service }
        } else {
            ScOp::Qc { service }
        });
    }
    let mut options = Vec::new();
    let mut it = opts.iter();
    while let Some(name) = it.next() {
        let Some(eq) = name.find('=') else {
            if let Some(ConfigOpt::Obj(acct)) = options.last() {
                if let Some(shown) = eaten_account(acct, name) {
                    return Err(Error::AccountLostBackslash { shown });
                }
            }
            return Err(syntax(format!(
                "{name:?} is not an option (option names end with '=')."
            )));
        };
        if eq + 1 != name.len() {
            let (n, val) = name.split_at(eq + 1);
            return Err(syntax(format!(
                "{name:?}: sc.exe needs a space after the equal sign: {n} {val}"
            )));
        }
        let key = name[..eq].to_ascii_lowercase();
        let value = it
            .next()
            .ok_or_else(|| syntax(format!("{name} needs a value.")))?;
        let lower = value.to_ascii_lowercase();
        let bad = || syntax(format!("{name} {value}: not a value sc.exe takes."));
        options.push(match key.as_str() {
            "start" => ConfigOpt::Start(match lower.as_str() {
                "boot" => StartKind::Boot,
                "system" => StartKind::System,
                "auto" => StartKind::Auto,
                "delayed-auto" => StartKind::DelayedAuto,
                "demand" => StartKind::Demand,
                "disabled" => StartKind::Disabled,
                _ => return Err(bad()),
            }),
            "type" => ConfigOpt::Type(match lower.as_str() {
                "own" => types::OWN_PROCESS,
                "share" => types::SHARE_PROCESS,
                "kernel" => types::KERNEL_DRIVER,
                "filesys" => types::FILE_SYSTEM_DRIVER,
                _ => return Err(bad()),
            }),
            "error" => ConfigOpt::Error(match lower.as_str() {
                "ignore" => 0,
                "normal" => 1,
                "severe" => 2,
                "critical" => 3,
                _ => return Err(bad()),
            }),
            "binpath" => ConfigOpt::BinPath(value.clone()),
            "group" => ConfigOpt::Group(value.clone()),
            "depend" => ConfigOpt::Depend(
                value
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            "obj" => {
                if let Some(shown) = eaten_account(value, "") {
                    return Err(Error::AccountLostBackslash { shown });
                }
                ConfigOpt::Obj(value.clone())
            }
            "displayname" => ConfigOpt::DisplayName(value.clone()),
            "password" => ConfigOpt::Password,
            _ => {
                return Err(syntax(format!(
                    "{name} is not an option winrescue sets offline."
                )))
            }
        });
    }
    if options.is_empty() {
        return Err(syntax("CONFIG needs at least one option."));
    }
    Ok(ScOp::Config { service, options })
}

/// The account as typed when an `obj=` account lost its backslash to the shell: `obj= NT
/// Authority\LocalService` unquoted reaches a program as `NT` and `AuthorityLocalService`, and
/// `.\bob` as `.bob`. `next` is the argument after the account (empty: none).
fn eaten_account(acct: &str, next: &str) -> Option<String> {
    let lower = acct.to_ascii_lowercase();
    let next_lower = next.to_ascii_lowercase();
    let split_nt = lower == "nt" && next_lower.starts_with("authority");
    let glued = !acct.contains('\\')
        && (lower.starts_with("nt authority") || lower.starts_with("ntauthority"));
    let dot = acct.starts_with('.') && acct.len() > 1 && !acct.contains('\\');
    (split_nt || glued || dot)
        .then(|| format!("{acct}{}{next}", if next.is_empty() { "" } else { " " }))
}

/// One value `sc config` writes: the new data, or `None` to delete the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueWrite {
    pub name: &'static str,
    pub data: Option<Data>,
}

fn put(w: &mut Vec<ValueWrite>, name: &'static str, data: Option<Data>) {
    w.push(ValueWrite { name, data });
}

/// The values `sc config` writes to the key of `s`, as sc.exe writes them.
pub fn config_writes(s: &Service, options: &[ConfigOpt]) -> Result<Vec<ValueWrite>> {
    let mut w = Vec::new();
    for o in options {
        match o {
            ConfigOpt::Start(k) => {
                put(&mut w, "Start", Some(Data::Dword(k.start_value())));
                match k {
                    StartKind::DelayedAuto => put(&mut w, "DelayedAutostart", Some(Data::Dword(1))),
                    // sc.exe clears the delayed flag when it sets plain auto.
                    StartKind::Auto if s.delayed_autostart.ok().is_some_and(|d| *d != 0) => {
                        put(&mut w, "DelayedAutostart", Some(Data::Dword(0)))
                    }
                    _ => {}
                }
            }
            ConfigOpt::Type(t) => {
                let keep = s
                    .service_type
                    .ok()
                    .map(|old| old & types::INTERACTIVE)
                    .unwrap_or(0);
                put(&mut w, "Type", Some(Data::Dword(t | keep)));
            }
            ConfigOpt::Error(e) => put(&mut w, "ErrorControl", Some(Data::Dword(*e))),
            ConfigOpt::BinPath(p) => put(&mut w, "ImagePath", Some(Data::ExpandSz(p.clone()))),
            ConfigOpt::Group(g) => put(
                &mut w,
                "Group",
                (!g.is_empty()).then(|| Data::Sz(g.clone())),
            ),
            ConfigOpt::Depend(list) => {
                let (groups, services): (Vec<&String>, Vec<&String>) =
                    list.iter().partition(|d| d.starts_with('+'));
                let svc: Vec<String> = services.into_iter().cloned().collect();
                let grp: Vec<String> = groups.into_iter().map(|g| g[1..].to_string()).collect();
                put(
                    &mut w,
                    "DependOnService",
                    (!svc.is_empty()).then_some(Data::MultiSz(svc)),
                );
                put(
                    &mut w,
                    "DependOnGroup",
                    (!grp.is_empty()).then_some(Data::MultiSz(grp)),
                );
            }
            ConfigOpt::Obj(acct) => {
                if let Account::Invalid(_) = Account::classify(Some(acct)) {
                    return Err(Error::InvalidAccount {
                        account: acct.clone(),
                    });
                }
                if s.is_driver() {
                    return Err(Error::DriverAccount {
                        service: s.name.clone(),
                    });
                }
                put(&mut w, "ObjectName", Some(Data::Sz(acct.clone())));
            }
            ConfigOpt::DisplayName(n) => put(&mut w, "DisplayName", Some(Data::Sz(n.clone()))),
            ConfigOpt::Password => return Err(Error::PasswordOffline),
        }
    }
    Ok(w)
}

/// The `obj=` accounts of `options` that are user accounts: their password lives in the LSA
/// secrets, which cannot be set offline, so the service logs on only if the stored one is right.
pub fn user_accounts(options: &[ConfigOpt]) -> Vec<&str> {
    options
        .iter()
        .filter_map(|o| match o {
            ConfigOpt::Obj(a) if matches!(Account::classify(Some(a)), Account::Custom(_)) => {
                Some(a.as_str())
            }
            _ => None,
        })
        .collect()
}

/// What `sc config` writes in one control set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigTarget {
    pub control_set: String,
    /// The service key, from the SYSTEM hive's root.
    pub key: String,
    pub writes: Vec<ValueWrite>,
}

/// The plan of `sc config NAME options`: the control set Windows boots next
/// ([`SystemModel::boot_set`]) or, with `all_sets`, every one; `missing` names the sets that have
/// no such service (not written there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigPlan {
    pub service: String,
    pub targets: Vec<ConfigTarget>,
    pub missing: Vec<String>,
}

/// Plans `sc config`: [`Error::NoSuchService`] when the boot control set has no such service.
pub fn plan_config(
    model: &SystemModel,
    name: &str,
    options: &[ConfigOpt],
    all_sets: bool,
) -> Result<ConfigPlan> {
    let boot = model.boot_set()?;
    let service = boot
        .service(name)
        .ok_or_else(|| Error::NoSuchService {
            name: name.to_string(),
        })?
        .name
        .clone();
    let sets: Vec<&winsvc::ControlSet> = if all_sets {
        model.control_sets.iter().collect()
    } else {
        vec![boot]
    };
    let mut plan = ConfigPlan {
        service: service.clone(),
        targets: Vec::new(),
        missing: Vec::new(),
    };
    for cs in sets {
        match cs.service(&service) {
            Some(s) => plan.targets.push(ConfigTarget {
                control_set: cs.name.clone(),
                key: s.key_path.clone(),
                writes: config_writes(s, options)?,
            }),
            None => plan.missing.push(cs.name.clone()),
        }
    }
    Ok(plan)
}

/// What `sc config` changed in one control set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigApplied {
    pub control_set: String,
    pub applied: Vec<Applied>,
}

/// Applies a [`ConfigPlan`] to the SYSTEM hive being edited. A value to delete that is not
/// there is no change.
pub fn apply_config(ed: &mut regf::edit::Editor, plan: &ConfigPlan) -> Result<Vec<ConfigApplied>> {
    let mut out = Vec::new();
    for t in &plan.targets {
        let mut applied = Vec::new();
        for w in &t.writes {
            match &w.data {
                Some(d) => applied.push(set_value(ed, &t.key, &t.key, w.name, d)?),
                None => applied.extend(delete_value(ed, &t.key, &t.key, w.name)?),
            }
        }
        out.push(ConfigApplied {
            control_set: t.control_set.clone(),
            applied,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_the_articles_commands() {
        assert_eq!(
            parse(&args(&["query", "DHCP"])).unwrap(),
            ScOp::Query {
                service: "DHCP".into()
            }
        );
        assert_eq!(
            parse(&args(&["config", "DHCP", "start=", "auto"])).unwrap(),
            ScOp::Config {
                service: "DHCP".into(),
                options: vec![ConfigOpt::Start(StartKind::Auto)]
            }
        );
        assert_eq!(
            parse(&args(&[
                "CONFIG",
                "DHCP",
                "obj=",
                r"NT Authority\Localservice",
                "TYPE=",
                "own"
            ]))
            .unwrap(),
            ScOp::Config {
                service: "DHCP".into(),
                options: vec![
                    ConfigOpt::Obj(r"NT Authority\Localservice".into()),
                    ConfigOpt::Type(0x10)
                ]
            }
        );
        assert_eq!(
            parse(&args(&["config", "x", "depend=", "NSI/+TDI"])).unwrap(),
            ScOp::Config {
                service: "x".into(),
                options: vec![ConfigOpt::Depend(vec!["NSI".into(), "+TDI".into()])]
            }
        );
    }

    #[test]
    fn bad_syntax_reads_like_sc_exe() {
        for bad in [
            &["config", "DHCP", "start=auto"][..],
            &["config", "DHCP", "start="],
            &["config", "DHCP", "start=", "sometimes"],
            &["config", "DHCP"],
            &["query"],
            &["qc", "DHCP", "extra"],
            &["frob", "DHCP"],
            &["start", "DHCP"],
            &["config", "DHCP", "start"],
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.is_syntax(), "{bad:?}");
        }
        let e = parse(&args(&["config", "DHCP", "start=auto"])).unwrap_err();
        assert!(
            matches!(&e, Error::ScSyntax { detail, usage: ScUsage::Config } if detail.contains("start= auto")),
            "{e:?}"
        );
        assert!(matches!(
            parse(&args(&["qc", "DHCP", "extra"])),
            Err(Error::ScSyntax {
                usage: ScUsage::Query,
                ..
            })
        ));
        assert!(matches!(
            parse(&args(&["stop", "DHCP"])),
            Err(Error::NeedsRunningScm { .. })
        ));
        // Backslashes the shell ate from an unquoted account.
        for bad in [
            &["config", "x", "obj=", "NT", "AuthorityLocalService"][..],
            &["config", "x", "obj=", "NTAuthorityLocalService"],
            &["config", "x", "obj=", ".bob"],
        ] {
            assert!(
                matches!(parse(&args(bad)), Err(Error::AccountLostBackslash { .. })),
                "{bad:?}"
            );
        }
        assert!(parse(&args(&["config", "x", "obj=", r".\bob"])).is_ok());
    }
}
