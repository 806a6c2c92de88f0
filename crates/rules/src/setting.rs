//! A Remote Desktop setting as Windows uses it: the Group Policy value (SOFTWARE
//! `Policies\Microsoft\Windows NT\Terminal Services`) wins over the listener's own
//! (`CCS\Control\Terminal Server\WinStations\RDP-Tcp`), and the changes that give it another value.

use regf::Data;
use rescue::change::Change;
use rescue::offline::{HiveId, Offline, Unavailable};

use crate::report::{Finding, Location};
use crate::value::{read_value, show};

/// `CCS\Control\Terminal Server\WinStations\RDP-Tcp` below a control set.
pub(crate) const RDP_TCP: &str = r"Control\Terminal Server\WinStations\RDP-Tcp";
/// SOFTWARE: the Remote Desktop Services Group Policy settings.
pub(crate) const TS_POLICY: &str = r"Policies\Microsoft\Windows NT\Terminal Services";

/// One setting read in the control set Windows boots next and in the policy.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub name: &'static str,
    /// The listener's value in the boot control set.
    pub local: Option<Data>,
    /// The Group Policy value; `None` when absent or when SOFTWARE is not in the target.
    pub policy: Option<Data>,
    /// Why the policy could not be read (a bare SYSTEM hive has no SOFTWARE).
    pub policy_unknown: Option<String>,
    /// `ControlSet00N\...\RDP-Tcp` of the boot set.
    pub local_key: String,
}

impl Setting {
    /// Reads `name` in `control_set` and in the policy. Errors name the value that cannot be read.
    pub fn read(w: &Offline, control_set: &str, name: &'static str) -> Result<Setting, String> {
        let local_key = format!(r"{control_set}\{RDP_TCP}");
        let local = read_value(w, HiveId::System, &local_key, name)?;
        let (policy, policy_unknown) = match w.software() {
            Ok(_) => (read_value(w, HiveId::Software, TS_POLICY, name)?, None),
            Err(Unavailable::Absent(why)) | Err(Unavailable::Unreadable(why)) => {
                (None, Some(why.clone()))
            }
        };
        Ok(Setting {
            name,
            local,
            policy,
            policy_unknown,
            local_key,
        })
    }

    /// The value Windows uses: the policy's when it sets one.
    pub fn effective(&self) -> Option<u64> {
        self.policy
            .as_ref()
            .or(self.local.as_ref())
            .and_then(Data::as_u64)
    }

    pub fn set_by_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// "SecurityLayer=0 (Group Policy)" / "SecurityLayer=2" / "SecurityLayer absent".
    pub fn describe(&self) -> String {
        match (&self.policy, &self.local) {
            (Some(p), l) => format!(
                "{}={} (Group Policy; RDP-Tcp has {})",
                self.name,
                show(Some(p)),
                show(l.as_ref())
            ),
            (None, l) => {
                let shown = match l {
                    Some(l) => format!("{}={}", self.name, show(Some(l))),
                    None => format!("{} absent", self.name),
                };
                match &self.policy_unknown {
                    Some(why) => format!("{shown} (Group Policy not read: {why})"),
                    None => shown,
                }
            }
        }
    }

    /// The locations the setting was read from.
    pub fn locations(&self, f: &mut Finding) {
        f.locations.push(Location {
            hive: HiveId::System,
            key: self.local_key.clone(),
            value: Some(self.name.into()),
        });
        if self.set_by_policy() {
            f.locations.push(Location {
                hive: HiveId::Software,
                key: TS_POLICY.into(),
                value: Some(self.name.into()),
            });
        }
    }

    /// The changes that make the effective value `new` where `broken` holds: the policy value
    /// deleted (a domain policy may set it again at its next refresh), and the listener's value set
    /// in every control set that holds a broken one. The runbook lines go with them.
    pub fn fix(
        &self,
        w: &Offline,
        broken: impl Fn(u64) -> bool,
        new: u32,
        reason: &str,
        f: &mut Finding,
    ) {
        let live = format!(r"HKLM\SYSTEM\CurrentControlSet\{RDP_TCP}");
        if self
            .policy
            .as_ref()
            .and_then(Data::as_u64)
            .is_some_and(&broken)
        {
            f.changes.push(
                Change::delete_value(HiveId::Software, TS_POLICY, self.name, reason.into())
                    .was(self.policy.clone()),
            );
            let key = format!(r"HKLM\SOFTWARE\{TS_POLICY}");
            f.runbook
                .cmd
                .push(format!("reg delete \"{key}\" /v {} /f", self.name));
            f.runbook.powershell.push(format!(
                "Remove-ItemProperty -Path '{}' -Name '{}'",
                key.replacen("HKLM\\", "HKLM:\\", 1),
                self.name
            ));
        }
        let mut local_broken = false;
        for cs in &w.model().control_sets {
            let key = format!(r"{}\{RDP_TCP}", cs.name);
            let Ok(old) = read_value(w, HiveId::System, &key, self.name) else {
                continue;
            };
            if old.as_ref().and_then(Data::as_u64).is_some_and(&broken) {
                local_broken = true;
                f.changes.push(
                    Change::set(
                        HiveId::System,
                        &key,
                        self.name,
                        Data::Dword(new),
                        reason.into(),
                    )
                    .was(old),
                );
            }
        }
        if local_broken {
            f.runbook.cmd.push(format!(
                "reg add \"{live}\" /v {} /t REG_DWORD /d {new} /f",
                self.name
            ));
            f.runbook.powershell.push(format!(
                "Set-ItemProperty -Path '{}' -Name '{}' -Type DWord -Value {new}",
                live.replacen("HKLM\\", "HKLM:\\", 1),
                self.name
            ));
        }
    }
}
