//! Repair-plan primitives: the registry changes that bring a service (and what it needs) back to
//! its baseline, for every control set. Nothing is written here; the writer lives elsewhere.

use regf::{Data, ValueType};
use serde::Serialize;

use crate::analyze::{self, CauseKind, Diagnosis, FileOracle};
use crate::baseline::{compare_value, field_of, Baseline, BaselineData, BaselineValue};
use crate::model::{show_data, ControlSet, Field, Service, SystemModel};

/// What the caller wants beyond the configuration fixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Options {
    /// The article's hang/crash branch: run the service in its own process (Type=0x10).
    pub own_process: bool,
    /// Restrict the plan to these control sets (default: every one that exists).
    pub control_sets: Option<Vec<u32>>,
}

/// One registry change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub control_set: u32,
    pub control_set_name: String,
    /// The control set `Select\Current` names: the one Windows boots.
    pub is_current: bool,
    /// Key path from the SYSTEM hive root, with the stored spelling when the key exists.
    pub key_path: String,
    /// The key does not exist (or, for a subkey such as `Parameters`, may not exist) and has to
    /// be created first.
    pub create_key: bool,
    pub value_name: String,
    pub value_type: ValueType,
    /// `None`: delete the value.
    pub new_data: Option<Data>,
    /// `None`: the value is absent now.
    pub old_data: Option<Data>,
    pub reason: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |d: &Option<Data>| {
            d.as_ref()
                .map(show_data)
                .unwrap_or_else(|| "(absent)".into())
        };
        write!(
            f,
            "{}{} {}\\{}: {} -> {} {} ({})",
            self.control_set_name,
            if self.is_current { " [Current]" } else { "" },
            self.key_path,
            self.value_name,
            show(&self.old_data),
            self.value_type,
            show(&self.new_data),
            self.reason
        )
    }
}

/// A plan for one service: the diagnoses it answers, the changes, what it cannot fix, and the
/// diagnoses of the model with the changes applied (the plan's own check).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub service: String,
    pub baseline_variants: Vec<String>,
    pub before: Vec<Diagnosis>,
    pub changes: Vec<Change>,
    /// Causes outside the baseline (a service it does not describe), to report, not fix.
    pub unresolved: Vec<String>,
    pub after: Vec<Diagnosis>,
}

impl Plan {
    /// Whether, after the changes, the service starts at boot in every planned control set.
    pub fn fixes_everything(&self) -> bool {
        self.after
            .iter()
            .all(|d| d.starts_at_boot || d.verdict == analyze::Verdict::Unverified)
    }
}

/// Builds the plan for `service` against `baseline` in every control set (or those in
/// `opts.control_sets`), then checks it by re-running the analysis on a copy of the model with
/// the changes applied.
pub fn plan(
    model: &SystemModel,
    service: &str,
    baseline: &Baseline,
    opts: &Options,
    files: &FileOracle<'_>,
) -> Plan {
    let mut changes = Vec::new();
    let mut unresolved = Vec::new();
    let mut before = Vec::new();
    let sets: Vec<&ControlSet> = model
        .control_sets
        .iter()
        .filter(|cs| {
            opts.control_sets
                .as_ref()
                .is_none_or(|l| l.contains(&cs.number))
        })
        .collect();
    for cs in &sets {
        let d = analyze::diagnose(model, cs.number, service, files)
            .expect("control set taken from the model");
        plan_set(
            cs,
            service,
            baseline,
            opts,
            &d,
            &mut changes,
            &mut unresolved,
        );
        before.push(d);
    }
    let fixed = apply_to_model(model, &changes);
    let after = sets
        .iter()
        .filter_map(|cs| analyze::diagnose(&fixed, cs.number, service, files))
        .collect();
    Plan {
        service: service.to_string(),
        baseline_variants: baseline.variants.clone(),
        before,
        changes,
        unresolved,
        after,
    }
}

fn plan_set(
    cs: &ControlSet,
    service: &str,
    baseline: &Baseline,
    opts: &Options,
    diag: &Diagnosis,
    changes: &mut Vec<Change>,
    unresolved: &mut Vec<String>,
) {
    // The target first, then its dependencies in baseline order.
    let mut names: Vec<&str> = vec![service];
    names.extend(
        baseline
            .services
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| !n.eq_ignore_ascii_case(service)),
    );
    for name in names {
        let Some(sb) = baseline.service(name) else {
            unresolved.push(format!("{}: no baseline for {name}", cs.name));
            continue;
        };
        let is_target = name.eq_ignore_ascii_case(service);
        match cs.service(name) {
            Some(svc) => {
                for v in &sb.values {
                    if let Some(c) = value_change(cs, svc, v, is_target, opts) {
                        changes.push(c);
                    }
                }
            }
            None => {
                // Recreate the key from the baseline (the writer decides whether it can grow
                // the hive).
                let key_path = format!("{}\\{}", cs.services_path(), sb.name);
                for v in &sb.values {
                    let Some(data) = &v.data else { continue };
                    let mut data = data.clone();
                    if is_target && opts.own_process && v.name.eq_ignore_ascii_case("Type") {
                        data = BaselineData::Dword(0x10);
                    }
                    changes.push(Change {
                        control_set: cs.number,
                        control_set_name: cs.name.clone(),
                        is_current: cs.is_current(),
                        key_path: match &v.subkey {
                            Some(sk) => format!("{key_path}\\{sk}"),
                            None => key_path.clone(),
                        },
                        create_key: true,
                        value_name: v.name.clone(),
                        value_type: v.reg_type(),
                        new_data: Some(data.to_data(v.reg_type())),
                        old_data: None,
                        reason: format!(
                            "{} does not exist in {}: recreated from the baseline",
                            sb.name, cs.name
                        ),
                    });
                }
            }
        }
    }
    // A 1079 where the target's own account is the baseline's: the other member is wrong.
    for c in &diag.chain {
        if let CauseKind::AccountConflict { others, .. } = &c.kind {
            let Some(want) = baseline
                .service(service)
                .and_then(|b| b.value("ObjectName", None))
                .and_then(|v| v.data.clone())
            else {
                continue;
            };
            let own_ok = cs
                .service(service)
                .and_then(|s| s.object_name.ok())
                .is_some_and(
                    |a| matches!(&want, BaselineData::Str(w) if w.eq_ignore_ascii_case(a)),
                );
            if !own_ok {
                continue; // fixing the target's own ObjectName (above) removes the conflict
            }
            for (other, account) in others {
                let Some(o) = cs.service(other) else { continue };
                if baseline.service(other).is_some() {
                    continue; // already restored from its own baseline
                }
                changes.push(Change {
                    control_set: cs.number,
                    control_set_name: cs.name.clone(),
                    is_current: cs.is_current(),
                    key_path: o.key_path.clone(),
                    create_key: false,
                    value_name: "ObjectName".into(),
                    value_type: ValueType::SZ,
                    new_data: Some(want.to_data(ValueType::SZ)),
                    old_data: Some(Data::Sz(account.clone())),
                    reason: format!(
                        "{other} runs as {account} in the svchost process {service} shares; {service}'s healthy account is {}",
                        match &want { BaselineData::Str(s) => s.as_str(), _ => "" }
                    ),
                });
            }
        }
    }
    // Root causes the baseline does not cover.
    if let Some(root) = diag.culprit() {
        let covered = baseline.service(&root.service).is_some()
            || matches!(root.kind, CauseKind::AccountConflict { .. });
        if !covered && diag.code().is_some() {
            unresolved.push(format!(
                "{}: {} (outside the {} baseline: not repaired automatically)",
                cs.name, root.text, baseline.service
            ));
        }
    }
}

fn value_change(
    cs: &ControlSet,
    svc: &Service,
    v: &BaselineValue,
    is_target: bool,
    opts: &Options,
) -> Option<Change> {
    let key_path = match &v.subkey {
        Some(sk) => format!("{}\\{sk}", svc.key_path),
        None => svc.key_path.clone(),
    };
    let current = field_of(svc, &v.name, v.subkey.as_deref())?;
    let old_data = match &current {
        Field::Ok(d) => Some(d.to_data(v.reg_type())),
        Field::WrongType { data, .. } => Some(data.clone()),
        _ => None,
    };
    let is_type = v.name.eq_ignore_ascii_case("Type") && v.subkey.is_none();
    if is_target && is_type && opts.own_process {
        if current.ok() == Some(&BaselineData::Dword(0x10)) {
            return None;
        }
        return Some(Change {
            control_set: cs.number,
            control_set_name: cs.name.clone(),
            is_current: cs.is_current(),
            key_path,
            create_key: false,
            value_name: v.name.clone(),
            value_type: ValueType::DWORD,
            new_data: Some(Data::Dword(0x10)),
            old_data,
            reason: format!(
                "{}: own process (Type=0x10), the article's hang/crash branch",
                svc.name
            ),
        });
    }
    let diff = compare_value(svc, v)?;
    // The model does not record whether a subkey exists, only its value: a missing
    // `Parameters\ServiceDll` may mean a missing `Parameters` key, which the writer creates.
    let create_key = v.subkey.is_some() && current.is_missing();
    Some(Change {
        control_set: cs.number,
        control_set_name: cs.name.clone(),
        is_current: cs.is_current(),
        key_path,
        create_key,
        value_name: v.name.clone(),
        value_type: v.reg_type(),
        new_data: v.data.as_ref().map(|d| d.to_data(v.reg_type())),
        old_data,
        reason: format!(
            "{} {}: found {}, healthy {}",
            svc.name,
            v.name,
            diff.found,
            diff.accepted.join(" or ")
        ),
    })
}

/// A copy of the model with the changes applied, for checking a plan.
pub fn apply_to_model(model: &SystemModel, changes: &[Change]) -> SystemModel {
    let mut m = model.clone();
    for c in changes {
        let Some(cs) = m
            .control_sets
            .iter_mut()
            .find(|cs| cs.number == c.control_set)
        else {
            continue;
        };
        let (svc_path, sub) = split_service_path(cs, &c.key_path);
        let name = svc_path.rsplit('\\').next().unwrap_or("").to_string();
        if cs.service(&name).is_none() {
            cs.insert_service(Service::empty(&svc_path, &name));
        }
        let Some(svc) = cs.service_mut(&name) else {
            continue;
        };
        set_field(svc, &c.value_name, sub.as_deref(), c.new_data.as_ref());
    }
    m
}

fn split_service_path(cs: &ControlSet, key_path: &str) -> (String, Option<String>) {
    let base = cs.services_path();
    let rest = key_path
        .get(base.len() + 1..)
        .filter(|_| {
            key_path.len() > base.len() && key_path[..base.len()].eq_ignore_ascii_case(&base)
        })
        .unwrap_or(key_path);
    match rest.split_once('\\') {
        Some((svc, sub)) => (format!("{base}\\{svc}"), Some(sub.to_string())),
        None => (format!("{base}\\{rest}"), None),
    }
}

fn set_field(svc: &mut Service, name: &str, subkey: Option<&str>, data: Option<&Data>) {
    let dw = |d: Option<&Data>| match d {
        Some(Data::Dword(v)) => Field::Ok(*v),
        Some(other) => Field::WrongType {
            found: "?".into(),
            data: other.clone(),
        },
        None => Field::Missing,
    };
    let st = |d: Option<&Data>| match d {
        Some(Data::Sz(s) | Data::ExpandSz(s)) => Field::Ok(s.clone()),
        Some(other) => Field::WrongType {
            found: "?".into(),
            data: other.clone(),
        },
        None => Field::Missing,
    };
    let ml = |d: Option<&Data>| match d {
        Some(Data::MultiSz(v)) => Field::Ok(v.clone()),
        Some(other) => Field::WrongType {
            found: "?".into(),
            data: other.clone(),
        },
        None => Field::Missing,
    };
    if subkey.is_some_and(|s| s.eq_ignore_ascii_case("Parameters")) {
        if name.eq_ignore_ascii_case("ServiceDll") {
            svc.parameters_service_dll = st(data);
        }
        return;
    }
    match name.to_ascii_lowercase().as_str() {
        "start" => svc.start = dw(data),
        "type" => svc.service_type = dw(data),
        "errorcontrol" => svc.error_control = dw(data),
        "delayedautostart" => svc.delayed_autostart = dw(data),
        "servicesidtype" => svc.service_sid_type = dw(data),
        "objectname" => svc.object_name = st(data),
        "imagepath" => svc.image_path = st(data),
        "servicedll" => svc.service_dll = st(data),
        "group" => svc.group = st(data),
        "displayname" => svc.display_name = st(data),
        "dependonservice" => svc.depend_on_service = ml(data),
        "dependongroup" => svc.depend_on_group = ml(data),
        "requiredprivileges" => svc.required_privileges = ml(data),
        _ => {}
    }
}
