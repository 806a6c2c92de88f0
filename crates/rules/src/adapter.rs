//! The network adapter RDP listens on (RDP-Tcp LanAdapter) and the Hyper-V adapter's driver.

use regf::Data;
use rescue::change::Change;
use rescue::offline::{HiveId, Offline};

use crate::code::{boot_set, dword, network_adapters, subkeys};
use crate::report::{Location, Severity, Stage, Status};
use crate::rule::{Meta, Options, Rule};
use crate::setting::RDP_TCP;
use crate::value::{read_value, show};
use crate::Finding;

pub static ALL: &[&dyn Rule] = &[&LanAdapter, &NetvscDriverVersion];

/// The listener bound to one network adapter (RDP-Tcp LanAdapter non-zero) instead of all.
///
/// LanAdapter is a LAN adapter number (LANA) as Remote Desktop Services numbers its adapters
/// (Win32_TSNetworkAdapterSetting.SetNetworkAdapterLanaID, Win32_TerminalServiceSetting
/// GetTSLanaIds). Where Remote Desktop Services records the adapter behind a number
/// (`Terminal Server\lanatable\{adapter}\LanaId`), the rule names it and checks that the adapter
/// still exists; none of the real hives has that key, and the NetBIOS LanaMap numbers do not
/// match (NetBIOS has a LANA 0 where LanAdapter 0 means every adapter), so otherwise the disk
/// cannot tell which adapter the number means.
pub struct LanAdapter;

impl Rule for LanAdapter {
    fn meta(&self) -> Meta {
        Meta {
            id: "lan-adapter".into(),
            stage: Stage::Listener,
            severity: Severity::BlocksRdp,
            checks: "the listener listens on every network adapter (RDP-Tcp LanAdapter 0)".into(),
            why: "a listener bound to one adapter does not listen on the others; once that adapter is gone (a VM moved to Azure gets a new Hyper-V adapter) it listens nowhere".into(),
            article: "https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let key = format!(r"{}\{RDP_TCP}", cs.name);
        let value = match read_value(w, HiveId::System, &key, "LanAdapter") {
            Ok(v) => v,
            Err(e) => return meta.cannot_tell(e),
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        f.locations.push(Location {
            hive: HiveId::System,
            key: key.clone(),
            value: Some("LanAdapter".into()),
        });
        f.found = Some(format!("LanAdapter={}", show(value.as_ref())));
        f.expected =
            Some("0 (every adapter; every real hive and the VHD-preparation baseline)".into());
        let lana = match dword(&value) {
            None | Some(0) => return f,
            Some(n) => n,
        };
        f.status = Status::Broken;
        let table = format!(r"{}\Control\Terminal Server\lanatable", cs.name);
        let bound = lana_adapter(w, &table, lana);
        let adapters = network_adapters(w, &cs.name);
        match bound {
            Some(guid) => {
                f.locations.push(Location {
                    hive: HiveId::System,
                    key: format!(r"{table}\{guid}"),
                    value: Some("LanaId".into()),
                });
                match adapters
                    .iter()
                    .find(|a| a.instance.eq_ignore_ascii_case(&guid))
                {
                    None => {
                        f.title = format!(
                            "the RDP listener is bound to LAN adapter {lana} ({guid}), which no longer exists: it listens nowhere"
                        );
                    }
                    Some(a) => {
                        f.severity = Severity::MayBlock;
                        f.title = format!(
                            "the RDP listener listens only on LAN adapter {lana} ({})",
                            a.description
                        );
                        f.cannot_tell = Some(
                            "whether that adapter is the one the VM has now is decided by the hardware it runs on, not by the disk".into(),
                        );
                    }
                }
            }
            None => {
                f.severity = Severity::MayBlock;
                f.title = format!(
                    "the RDP listener is bound to LAN adapter {lana} only, not to every adapter"
                );
                f.cannot_tell = Some(format!(
                    "no {table} entry names adapter {lana}: which adapter the number means is decided when Windows runs"
                ));
            }
        }
        for other in &w.model().control_sets {
            let k = format!(r"{}\{RDP_TCP}", other.name);
            if let Ok(old) = read_value(w, HiveId::System, &k, "LanAdapter") {
                if dword(&old).is_some_and(|n| n != 0) {
                    f.changes.push(
                        Change::set(
                            HiveId::System,
                            &k,
                            "LanAdapter",
                            Data::Dword(0),
                            "lan-adapter: listen on every adapter (LanAdapter 0)".into(),
                        )
                        .was(old),
                    );
                }
            }
        }
        let live = format!(r"HKLM\SYSTEM\CurrentControlSet\{RDP_TCP}");
        f.runbook.cmd.push(format!(
            "reg add \"{live}\" /v LanAdapter /t REG_DWORD /d 0 /f"
        ));
        f.runbook
            .cmd
            .push("net stop TermService /y && net start TermService".into());
        f.runbook.powershell.push(format!(
            "Set-ItemProperty -Path '{}' -Name LanAdapter -Type DWord -Value 0; Restart-Service TermService -Force",
            live.replacen("HKLM\\", "HKLM:\\", 1)
        ));
        f
    }
}

/// The adapter GUID `lanatable` gives LANA number `lana`, if any.
fn lana_adapter(w: &Offline, table: &str, lana: u64) -> Option<String> {
    subkeys(w, HiveId::System, table)
        .ok()?
        .into_iter()
        .find(|guid| {
            let k = format!(r"{table}\{guid}");
            dword(&read_value(w, HiveId::System, &k, "LanaId").ok().flatten()) == Some(lana)
        })
}

/// Two releases of the Hyper-V network adapter driver (netvsc) that the article names as breaking
/// the network after an update: detect only, the fix is a driver update or rollback.
pub struct NetvscDriverVersion;

/// The driver versions `troubleshoot-rdp-driver-netvsc` names.
const BAD_NETVSC: [&str; 2] = ["10.0.14393.594", "10.0.15063.0"];

impl Rule for NetvscDriverVersion {
    fn meta(&self) -> Meta {
        Meta {
            id: "netvsc-driver-version".into(),
            stage: Stage::Network,
            severity: Severity::BlocksRdp,
            checks: "the Hyper-V network adapter's driver is not a release known to lose the network (10.0.14393.594, 10.0.15063.0)".into(),
            why: "with these netvsc releases the Hyper-V network adapter stops working after the update, so the VM has no network".into(),
            article: "troubleshoot-rdp-driver-netvsc".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        let hyper_v: Vec<_> = network_adapters(w, &cs.name)
            .into_iter()
            // The article shows "Microsoft HYPER-V Network Adapter"; the case varies.
            .filter(|a| {
                a.description
                    .to_ascii_lowercase()
                    .contains("hyper-v network adapter")
            })
            .collect();
        f.expected = Some(format!(
            "a driver version other than {}",
            BAD_NETVSC.join(" and ")
        ));
        if hyper_v.is_empty() {
            f.found = Some("no Hyper-V network adapter".into());
            return f;
        }
        f.found = Some(
            hyper_v
                .iter()
                .map(|a| format!("{}: {}", a.description, a.driver_version))
                .collect::<Vec<_>>()
                .join("; "),
        );
        for a in &hyper_v {
            f.locations.push(Location {
                hive: HiveId::System,
                key: format!(r"{}\{}", cs.name, a.key),
                value: Some("DriverVersion".into()),
            });
        }
        let Some(bad) = hyper_v
            .iter()
            .find(|a| BAD_NETVSC.contains(&a.driver_version.trim()))
        else {
            return f;
        };
        f.status = Status::Broken;
        f.title = format!(
            "the Hyper-V network adapter runs netvsc {}, a release that loses the network",
            bad.driver_version
        );
        // The article's fix: the update that replaces the driver, installed with DISM.
        let kb = if bad.driver_version.trim() == BAD_NETVSC[0] {
            "KB4073562"
        } else {
            "KB4016240"
        };
        f.unresolved.push(format!(
            "install {kb} or a later update (dism /image:<disk>:\\ /add-package on a repair VM): a driver is not replaced by editing the registry"
        ));
        f.runbook.cmd.push("ver".into());
        f.runbook.cmd.push(format!(
            "dism /online /add-package /packagepath:<data disk>:\\{kb}.msu"
        ));
        f.runbook.cmd.push("shutdown /r /t 0".into());
        f.runbook.powershell.push(
            "(Get-ChildItem \"$env:SystemRoot\\System32\\drivers\\netvsc.sys\").VersionInfo.FileVersion".into(),
        );
        f.runbook.powershell.push(format!(
            "dism /online /add-package /packagepath:<data disk>:\\{kb}.msu; Restart-Computer -Force"
        ));
        f
    }
}
