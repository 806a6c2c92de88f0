//! The check every hand-made write goes through: what the Service Control Manager would do
//! with the DHCP Client, and with each service the write touched, before and after it.
//!
//! `reg add` and `sc config` are the admin's own words, so nothing stops them from disabling
//! the service they came to fix, or from storing `Start` as REG_SZ (what `reg add /v Start /d 2`
//! without `/t` does), after which the SCM skips the whole entry. [`predict`] compares the
//! models of the SYSTEM hive before and after the edit with the same analysis `diagnose` and
//! `repair` use ([`crate::dhcp::assess`], `winsvc::analyze`) and lists what the write would
//! break; [`crate::edit::Transaction::commit`] refuses such a write unless told to force it.

use serde::Serialize;
use winsvc::analyze::{self, FileOracle};
use winsvc::{Diagnosis, Service, SystemModel};

use crate::dhcp;

/// Whether a transaction checks its SYSTEM edits, and what it does with a write that breaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Guard {
    /// No check (a `repair`, whose plan comes from the analysis itself and is verified after).
    #[default]
    Off,
    /// Predict, and refuse a write with objections.
    Enforce,
    /// Predict and report, but write anyway (the admin said so).
    Force,
}

/// One service in one control set, before and after the write.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub service: String,
    pub control_set: String,
    /// `None`: the service did not exist before the write.
    pub before: Option<Diagnosis>,
    /// `None`: the write removes it.
    pub after: Option<Diagnosis>,
}

/// Why a write is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Objection {
    /// A service that was predicted to start would fail with `code`.
    Breaks {
        service: String,
        control_set: String,
        code: u32,
        /// The analysis' one-line explanation after the write.
        after: String,
    },
    /// A service that was predicted to start would be deleted.
    Removed {
        service: String,
        control_set: String,
    },
    /// The DHCP Client still starts, but no longer as a healthy Windows has it (e.g. demand
    /// start): what `repair` would change back.
    Unhealthy { why: Vec<String> },
    /// A value stored with a type the SCM does not read it as.
    RejectedType {
        service: String,
        /// The service key, from the hive root.
        key: String,
        value: String,
        found: String,
        expected: String,
    },
}

impl std::fmt::Display for Objection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Objection::Breaks {
                service,
                control_set,
                code,
                after,
            } => write!(
                f,
                "in {control_set}, {service} starts now and would fail with {code} after this write ({after})"
            ),
            Objection::Removed {
                service,
                control_set,
            } => write!(
                f,
                "in {control_set}, {service} starts now and this write deletes it"
            ),
            Objection::Unhealthy { why } => write!(
                f,
                "the {} is healthy now and would not be after it: {}",
                dhcp::DISPLAY_NAME,
                why.join("; ")
            ),
            Objection::RejectedType {
                service,
                key,
                value,
                found,
                expected,
            } => write!(
                f,
                "{key}\\{value} would be stored as {found}, and the Service Control Manager reads it only as {expected} (service {service})"
            ),
        }
    }
}

/// What a write would do to the services of a SYSTEM hive.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The DHCP Client in the control set Windows boots next and wherever the write changes
    /// it, then each service the write changes.
    pub checks: Vec<Check>,
    /// Empty: nothing gets worse.
    pub objections: Vec<Objection>,
}

impl Prediction {
    /// Whether the write breaks nothing.
    pub fn is_safe(&self) -> bool {
        self.objections.is_empty()
    }
}

/// The services of `cs` in `after` that differ from `before` (new ones included), by name.
fn changed_services<'a>(
    before: Option<&winsvc::ControlSet>,
    after: &'a winsvc::ControlSet,
) -> Vec<&'a Service> {
    after
        .services
        .iter()
        .filter(|s| before.and_then(|b| b.service(&s.name)) != Some(*s))
        .collect()
}

/// Compares the models of a SYSTEM hive before and after a write. `files` answers whether a
/// file exists on the target (as for `diagnose`).
pub fn predict(before: &SystemModel, after: &SystemModel, files: &FileOracle<'_>) -> Prediction {
    let was = dhcp::assess(before, files, false);
    let will = dhcp::assess(after, files, false);
    let mut checks = Vec::new();
    let mut objections = Vec::new();
    for cs in &after.control_sets {
        let old_cs = before.control_set(cs.number);
        let changed = changed_services(old_cs, cs);
        let dhcp_changed = changed
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(dhcp::SERVICE));
        let diag = |m: &SystemModel, name: &str| -> Option<Diagnosis> {
            m.control_set(cs.number)
                .and_then(|c| c.service(name))
                .and_then(|_| analyze::diagnose(m, cs.number, name, files))
        };
        let mut names: Vec<String> = Vec::new();
        // The DHCP Client is checked wherever anything changes: a dependency of it may be
        // what the write touches.
        let removed =
            old_cs.is_some_and(|o| o.services.iter().any(|s| cs.service(&s.name).is_none()));
        if !changed.is_empty() || removed || will.boots == Some(cs.number) || dhcp_changed {
            names.push(dhcp::SERVICE.to_string());
        }
        names.extend(
            changed
                .iter()
                .filter(|s| !s.name.eq_ignore_ascii_case(dhcp::SERVICE))
                .map(|s| s.name.clone()),
        );
        for name in names {
            let check = Check {
                service: name.clone(),
                control_set: cs.name.clone(),
                before: diag(before, &name),
                after: diag(after, &name),
            };
            if let (Some(b), None) = (&check.before, &check.after) {
                if b.code().is_none() {
                    objections.push(Objection::Removed {
                        service: b.service.clone(),
                        control_set: cs.name.clone(),
                    });
                }
            }
            if let (Some(b), Some(a)) = (&check.before, &check.after) {
                if let (None, Some(code)) = (b.code(), a.code()) {
                    objections.push(Objection::Breaks {
                        service: a.service.clone(),
                        control_set: cs.name.clone(),
                        code,
                        after: a
                            .chain
                            .iter()
                            .map(|c| c.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" -> "),
                    });
                }
            }
            checks.push(check);
        }
        for s in &changed {
            let old: Vec<(&str, String, &str)> = old_cs
                .and_then(|c| c.service(&s.name))
                .map(Service::wrong_types)
                .unwrap_or_default();
            for (value, found, expected) in s.wrong_types() {
                if !old.iter().any(|(v, f, _)| *v == value && *f == found) {
                    objections.push(Objection::RejectedType {
                        service: s.name.clone(),
                        key: s.key_path.clone(),
                        value: value.to_string(),
                        found,
                        expected: expected.to_string(),
                    });
                }
            }
        }
    }
    let dhcp_breaks = objections.iter().any(|o| {
        matches!(o, Objection::Breaks { service, .. } | Objection::Removed { service, .. }
            if service.eq_ignore_ascii_case(dhcp::SERVICE))
    });
    if was.healthy && !will.healthy && !dhcp_breaks {
        let why: Vec<String> = will
            .cannot_tell
            .iter()
            .cloned()
            .chain(
                will.plan
                    .changes
                    .iter()
                    .map(|c| format!("repair would set {c}")),
            )
            .chain(will.plan.unresolved.iter().cloned())
            .collect();
        // The first few say enough; the plan lists every change `diagnose` would show.
        let more = why.len().saturating_sub(3);
        let mut why: Vec<String> = why.into_iter().take(3).collect();
        if more > 0 {
            why.push(format!("and {more} more (winrescue diagnose lists them)"));
        }
        objections.push(Objection::Unhealthy { why });
    }
    Prediction { checks, objections }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regf::edit::Editor;
    use regf::ValueType;

    fn model(bytes: &[u8]) -> SystemModel {
        SystemModel::from_bytes(bytes, None).unwrap()
    }

    fn edited(f: impl FnOnce(&mut Editor)) -> (SystemModel, SystemModel) {
        let bytes = fixtures::bytes("hives/win7-SYSTEM");
        let before = model(&bytes);
        let mut ed = Editor::new(bytes, 0).unwrap();
        f(&mut ed);
        (before, model(ed.bytes()))
    }

    const DHCP: &str = r"ControlSet001\services\Dhcp";
    const NO_DISK: &FileOracle<'static> = &|_: &str| None;

    #[test]
    fn start_stored_as_reg_sz_is_an_objection() {
        let (b, a) = edited(|ed| {
            let two: Vec<u8> = "2\0".encode_utf16().flat_map(u16::to_le_bytes).collect();
            ed.set_value(DHCP, "Start", ValueType::SZ, &two).unwrap();
        });
        let p = predict(&b, &a, NO_DISK);
        assert!(
            p.objections
                .iter()
                .any(|o| matches!(o, Objection::RejectedType { value, .. } if value == "Start")),
            "{:?}",
            p.objections
        );
    }

    #[test]
    fn disabling_the_dhcp_client_breaks_it_and_auto_start_does_not() {
        let (b, a) = edited(|ed| {
            ed.set_value(DHCP, "Start", ValueType::DWORD, &4u32.to_le_bytes())
                .unwrap();
        });
        let p = predict(&b, &a, NO_DISK);
        assert!(
            matches!(
                p.objections.as_slice(),
                [Objection::Breaks { code: 1058, .. }]
            ),
            "{:?}",
            p.objections
        );
        let (b, a) = edited(|ed| {
            ed.set_value(DHCP, "Start", ValueType::DWORD, &2u32.to_le_bytes())
                .unwrap();
        });
        let p = predict(&b, &a, NO_DISK);
        assert!(p.is_safe(), "{:?}", p.objections);
        assert!(!p.checks.is_empty());
    }
}
