//! Rules that are data: one registry value, what breaks RDP, and what fixes it.

use regf::{Data, ValueType};
use rescue::change::Change;
use rescue::offline::{HiveId, Offline, Unavailable};

use crate::report::{Finding, Location, Severity, Stage, Status};
use crate::rule::{Meta, Options, Rule};

/// Where a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// SYSTEM, under every control set (`ControlSet001\<key>`): judged in the set Windows
    /// boots next, fixed in every set that holds the broken value.
    ControlSets,
    /// SOFTWARE, `<key>` from its root.
    Software,
}

impl Scope {
    fn hive(self) -> HiveId {
        match self {
            Scope::ControlSets => HiveId::System,
            Scope::Software => HiveId::Software,
        }
    }
}

/// When the value is broken. An absent value is healthy unless the test says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// A DWORD equal to this.
    Is(u32),
    /// A DWORD present and not equal to this.
    IsNot(u32),
    /// A value present with another type than this, whatever its data: a service that reads it
    /// with this type fails on any other.
    TypeIsNot(ValueType),
}

impl Test {
    fn broken(self, data: Option<&Data>) -> bool {
        let n = data.and_then(Data::as_u64);
        match self {
            Test::Is(v) => n == Some(u64::from(v)),
            Test::IsNot(v) => data.is_some() && n != Some(u64::from(v)),
            Test::TypeIsNot(t) => data.is_some_and(|d| d.value_type() != t),
        }
    }

    /// The data as found; with its type when the type is what the test judges.
    fn show(self, data: Option<&Data>) -> String {
        match (self, data) {
            (Test::TypeIsNot(_), Some(d)) => {
                let t = d.value_type();
                let name = t
                    .name()
                    .map_or_else(|| format!("type {}", t.0), str::to_string);
                format!("{name} {}", show(Some(d)))
            }
            _ => show(data),
        }
    }
}

/// What the repair does with a broken value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    SetDword(u32),
    Delete,
    /// No automatic fix: the finding explains what to do.
    Manual(&'static str),
}

/// A value that breaks RDP when it holds the wrong data.
#[derive(Debug, Clone, Copy)]
pub struct ValueRule {
    pub id: &'static str,
    pub stage: Stage,
    pub severity: Severity,
    /// What it checks ("RDP connections allowed").
    pub checks: &'static str,
    /// The finding's title when broken ("RDP is turned off").
    pub broken_title: &'static str,
    pub why: &'static str,
    pub article: &'static str,
    pub scope: Scope,
    pub key: &'static str,
    pub value: &'static str,
    pub test: Test,
    /// The healthy data, for people ("0 or absent").
    pub expected: &'static str,
    pub fix: Fix,
    /// A Group Policy value that wins over this one when present (SOFTWARE, from its root):
    /// then this value is not what Windows uses, and the policy's own rule judges it.
    pub overridden_by: Option<(&'static str, &'static str)>,
}

impl ValueRule {
    /// `HKLM\SYSTEM\CurrentControlSet\<key>` or `HKLM\SOFTWARE\<key>`: the running VM's path.
    fn live_key(&self) -> String {
        match self.scope {
            Scope::ControlSets => format!(r"HKLM\SYSTEM\CurrentControlSet\{}", self.key),
            Scope::Software => format!(r"HKLM\SOFTWARE\{}", self.key),
        }
    }

    fn runbook(&self, f: &mut Finding) {
        let key = self.live_key();
        let ps_key = key.replacen("HKLM\\", "HKLM:\\", 1);
        match self.fix {
            Fix::SetDword(n) => {
                f.runbook.cmd.push(format!(
                    "reg add \"{key}\" /v {} /t REG_DWORD /d {n} /f",
                    self.value
                ));
                f.runbook.powershell.push(format!(
                    "Set-ItemProperty -Path '{ps_key}' -Name '{}' -Type DWord -Value {n}",
                    self.value
                ));
            }
            Fix::Delete => {
                f.runbook
                    .cmd
                    .push(format!("reg delete \"{key}\" /v {} /f", self.value));
                f.runbook.powershell.push(format!(
                    "Remove-ItemProperty -Path '{ps_key}' -Name '{}'",
                    self.value
                ));
            }
            Fix::Manual(_) => {}
        }
    }

    fn fix_change(&self, hive: HiveId, key: &str, old: Option<Data>) -> Option<Change> {
        let reason = format!("{}: {}", self.id, self.broken_title);
        match self.fix {
            Fix::SetDword(n) => Some(Change::set(hive, key, self.value, Data::Dword(n), reason)),
            Fix::Delete => Some(Change::delete_value(hive, key, self.value, reason)),
            Fix::Manual(_) => None,
        }
        .map(|c| c.was(old))
    }
}

/// Reads one value: `Ok(None)` when the key or value is absent.
pub(crate) fn read_value(
    w: &Offline,
    hive: HiveId,
    key: &str,
    value: &str,
) -> Result<Option<Data>, String> {
    let loaded = w.hive(hive).map_err(|e| e.to_string())?;
    let h = loaded.hive().map_err(|e| e.to_string())?;
    let root = h.root().map_err(|e| e.to_string())?;
    let Some(k) = root.descend(key).map_err(|e| format!("{key}: {e}"))? else {
        return Ok(None);
    };
    match k.value(value).map_err(|e| format!("{key}\\{value}: {e}"))? {
        Some(v) => v
            .data()
            .map(Some)
            .map_err(|e| format!("{key}\\{value}: {e}")),
        None => Ok(None),
    }
}

pub(crate) fn show(d: Option<&Data>) -> String {
    d.map(winsvc::show_data).unwrap_or_else(|| "absent".into())
}

impl Rule for ValueRule {
    fn meta(&self) -> Meta {
        Meta {
            id: self.id.into(),
            stage: self.stage,
            severity: self.severity,
            checks: self.checks.into(),
            why: self.why.into(),
            article: self.article.into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let hive = self.scope.hive();
        // The keys to read: every control set (the one Windows boots next first), or one.
        let keys: Vec<(String, bool)> = match self.scope {
            Scope::Software => {
                match w.software() {
                    Err(Unavailable::Absent(why)) => return not_checked(&meta, why),
                    Err(Unavailable::Unreadable(why)) => return meta.cannot_tell(why.clone()),
                    Ok(_) => {}
                }
                vec![(self.key.to_string(), true)]
            }
            Scope::ControlSets => {
                let model = w.model();
                let boots = match model.boot_set() {
                    Ok(cs) => cs.number,
                    Err(e) => return meta.cannot_tell(e.to_string()),
                };
                let mut sets: Vec<(String, bool)> = model
                    .control_sets
                    .iter()
                    .map(|cs| (format!(r"{}\{}", cs.name, self.key), cs.number == boots))
                    .collect();
                sets.sort_by_key(|(_, boot)| !boot);
                sets
            }
        };
        let mut f = meta.finding(Status::Healthy, self.checks);
        let mut boot_broken = false;
        let mut changes = Vec::new();
        for (key, is_boot) in &keys {
            let data = match read_value(w, hive, key, self.value) {
                Ok(d) => d,
                Err(e) if *is_boot => return meta.cannot_tell(e),
                Err(_) => continue,
            };
            if *is_boot {
                f.locations.push(Location {
                    hive,
                    key: key.clone(),
                    value: Some(self.value.into()),
                });
                f.found = Some(self.test.show(data.as_ref()));
                f.expected = Some(self.expected.into());
            }
            if self.test.broken(data.as_ref()) {
                boot_broken |= is_boot;
                changes.extend(self.fix_change(hive, key, data));
            }
        }
        if !boot_broken {
            return f;
        }
        if let Some((pkey, pvalue)) = self.overridden_by {
            if let Ok(Some(p)) = read_value(w, HiveId::Software, pkey, pvalue) {
                f.title = format!(
                    "{} here, but Group Policy sets {pvalue}={} and wins",
                    self.broken_title,
                    show(Some(&p))
                );
                return f;
            }
        }
        f.status = Status::Broken;
        f.title = self.broken_title.into();
        f.changes = changes;
        if let Fix::Manual(what) = self.fix {
            f.unresolved.push(what.into());
        }
        self.runbook(&mut f);
        f
    }
}

/// A finding for a rule whose input is not in the target (a bare SYSTEM hive has no SOFTWARE):
/// reported, never taken for healthy, and not a verdict of its own.
pub(crate) fn not_checked(meta: &Meta, why: &str) -> Finding {
    let mut f = meta.finding(Status::NotChecked, meta.checks.clone());
    f.cannot_tell = Some(why.to_string());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The firewall service's loopback list: absent or REG_SZ is healthy (the Windows 10 hive
    /// holds a REG_SZ), any other type is broken, even with the same text or none.
    #[test]
    fn type_test_judges_the_type_alone() {
        let t = Test::TypeIsNot(ValueType::SZ);
        let sid = "S-1-15-2-1".to_string();
        assert!(!t.broken(None));
        assert!(!t.broken(Some(&Data::Sz(sid.clone()))));
        assert!(!t.broken(Some(&Data::Sz(String::new()))));
        assert!(t.broken(Some(&Data::MultiSz(vec![sid.clone()]))));
        assert!(t.broken(Some(&Data::MultiSz(Vec::new()))));
        assert!(t.broken(Some(&Data::ExpandSz(sid))));
        assert!(t.broken(Some(&Data::Dword(0))));
        assert_eq!(
            t.show(Some(&Data::MultiSz(vec!["a".into()]))),
            r#"REG_MULTI_SZ ["a"]"#
        );
        assert_eq!(t.show(None), "absent");
    }
}
