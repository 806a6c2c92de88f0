//! The rules that need code: what one value cannot say.

use regf::Data;
use rescue::change::Change;
use rescue::offline::{HiveId, Offline, Unavailable};

use crate::report::{Finding, Location, Severity, Stage, Status};
use crate::rule::{Meta, Options, Rule};
use crate::value::{not_checked, read_value, show};

pub static ALL: &[&dyn Rule] = &[&SafeMode, &StaticAddress, &TlsDisabled, &CertificateMissing];

/// The control set Windows boots next, or the finding that says it cannot be read.
pub(crate) fn boot_set<'a>(
    w: &'a Offline,
    meta: &Meta,
) -> Result<&'a winsvc::ControlSet, Box<Finding>> {
    w.model()
        .boot_set()
        .map_err(|e| Box::new(meta.cannot_tell(e.to_string())))
}

/// Subkey names of `key` in a hive (empty when the key is absent).
pub(crate) fn subkeys(w: &Offline, hive: HiveId, key: &str) -> Result<Vec<String>, String> {
    let loaded = w.hive(hive).map_err(|e| e.to_string())?;
    let h = loaded.hive().map_err(|e| e.to_string())?;
    let root = h.root().map_err(|e| e.to_string())?;
    let Some(k) = root.descend(key).map_err(|e| format!("{key}: {e}"))? else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for sk in k.subkeys().map_err(|e| format!("{key}: {e}"))? {
        let sk = sk.map_err(|e| format!("{key}: {e}"))?;
        names.push(sk.name().to_string());
    }
    Ok(names)
}

pub(crate) fn dword(d: &Option<Data>) -> Option<u64> {
    d.as_ref().and_then(Data::as_u64)
}

/// A network interface with a static address: Azure gives the address by DHCP, and a static
/// one left from another network leaves the VM unreachable.
pub struct StaticAddress;

impl Rule for StaticAddress {
    fn meta(&self) -> Meta {
        Meta {
            id: "static-address".into(),
            stage: Stage::Network,
            severity: Severity::BlocksRdp,
            checks: "network interfaces take their address by DHCP (Tcpip Interfaces EnableDHCP)".into(),
            why: "Azure gives the VM its address by DHCP; a static address from another network leaves it unreachable".into(),
            article: "troubleshoot-rdp-static-ip".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let base = format!(r"{}\Services\Tcpip\Parameters\Interfaces", cs.name);
        let names = match subkeys(w, HiveId::System, &base) {
            Ok(n) => n,
            Err(e) => return meta.cannot_tell(e),
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        let adapters = network_adapters(w, &cs.name);
        let mut statics = Vec::new();
        let mut on_azure_adapter = false;
        for name in names {
            let key = format!(r"{base}\{name}");
            let enable = read_value(w, HiveId::System, &key, "EnableDHCP").unwrap_or(None);
            if dword(&enable) != Some(0) {
                continue;
            }
            // An interface with DHCP off but no address configured is an unused adapter.
            let addr = read_value(w, HiveId::System, &key, "IPAddress").unwrap_or(None);
            let configured = match &addr {
                Some(Data::MultiSz(v)) => v.iter().any(|a| !a.is_empty() && a != "0.0.0.0"),
                Some(Data::Sz(s)) => !s.is_empty() && s != "0.0.0.0",
                _ => false,
            };
            // An interface no network adapter names any more is left from hardware that is
            // gone: Windows never uses it.
            let Some(adapter) = adapters
                .iter()
                .find(|a| a.instance.eq_ignore_ascii_case(&name))
            else {
                continue;
            };
            if !configured {
                continue;
            }
            on_azure_adapter |= adapter.is_hyper_v();
            f.locations.push(Location {
                hive: HiveId::System,
                key: key.clone(),
                value: Some("EnableDHCP".into()),
            });
            statics.push(format!(
                "{name} ({}): {}",
                adapter.description,
                show(addr.as_ref())
            ));
            // Every control set holds its own copy of the interface.
            for other in &w.model().control_sets {
                let k = format!(
                    r"{}\Services\Tcpip\Parameters\Interfaces\{name}",
                    other.name
                );
                if dword(&read_value(w, HiveId::System, &k, "EnableDHCP").unwrap_or(None))
                    == Some(0)
                {
                    f.changes.push(
                        Change::set(
                            HiveId::System,
                            &k,
                            "EnableDHCP",
                            Data::Dword(1),
                            format!("static-address: interface {name} back to DHCP"),
                        )
                        .was(Some(Data::Dword(0))),
                    );
                }
            }
            f.runbook.cmd.push(format!(
                "reg add \"HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\\Interfaces\\{name}\" /v EnableDHCP /t REG_DWORD /d 1 /f"
            ));
        }
        if !statics.is_empty() && !on_azure_adapter {
            // A static address on another kind of adapter (the machine's own hardware before it
            // moved to Azure) is not used there: Azure's adapter is a new Hyper-V one, which
            // takes its address by DHCP.
            f.severity = Severity::Notice;
        }
        if !statics.is_empty() {
            f.status = Status::Broken;
            f.title = format!(
                "{} network interface{} with a static address",
                statics.len(),
                if statics.len() == 1 { "" } else { "s" }
            );
            f.found = Some(statics.join("; "));
            f.expected = Some("EnableDHCP=1".into());
            f.runbook.cmd.push("ipconfig /renew".into());
            f.runbook.powershell.push(
                "Get-NetAdapter | Set-NetIPInterface -Dhcp Enabled; Get-NetAdapter | Set-DnsClientServerAddress -ResetServerAddresses".into(),
            );
        }
        f
    }
}

/// A network adapter Windows knows (`Control\Class\{4d36e972-...}\NNNN`).
pub(crate) struct Adapter {
    /// `NetCfgInstanceId`: the name of its `Tcpip\Parameters\Interfaces` subkey.
    pub instance: String,
    pub description: String,
    pub component: String,
    /// `DriverVersion`, as the driver package declares it.
    pub driver_version: String,
    /// The `Control\Class\{4d36e972-...}\NNNN` key of the adapter (below the control set).
    pub key: String,
}

impl Adapter {
    /// Azure's network adapter: the Hyper-V synthetic adapter on VMBus.
    pub(crate) fn is_hyper_v(&self) -> bool {
        self.component.to_ascii_lowercase().starts_with("vmbus\\")
            || self.description.contains("Hyper-V")
    }
}

pub(crate) const NET_CLASS: &str = r"Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}";

pub(crate) fn network_adapters(w: &Offline, control_set: &str) -> Vec<Adapter> {
    let class = format!(r"{control_set}\{NET_CLASS}");
    let text = |key: &str, value: &str| {
        read_value(w, HiveId::System, key, value)
            .ok()
            .flatten()
            .and_then(|d| d.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    subkeys(w, HiveId::System, &class)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .map(|n| {
            let key = format!(r"{class}\{n}");
            Adapter {
                instance: text(&key, "NetCfgInstanceId"),
                description: text(&key, "DriverDesc"),
                component: text(&key, "ComponentId"),
                driver_version: text(&key, "DriverVersion"),
                key: format!(r"{NET_CLASS}\{n}"),
            }
        })
        .filter(|a| !a.instance.is_empty())
        .collect()
}

/// Every TLS version turned off for the server: the RDP security layer "SSL (TLS)" and
/// "Negotiate" cannot work.
pub struct TlsDisabled;

const TLS_VERSIONS: [&str; 3] = ["TLS 1.0", "TLS 1.1", "TLS 1.2"];

impl Rule for TlsDisabled {
    fn meta(&self) -> Meta {
        Meta {
            id: "tls-all-disabled".into(),
            stage: Stage::Security,
            severity: Severity::BlocksRdp,
            checks: "a TLS version is enabled for servers (SCHANNEL Protocols)".into(),
            why: "RDP's security layer is TLS: with every server TLS version off, the connection fails with an internal error".into(),
            article: "troubleshoot-rdp-internal-error".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        let mut off = Vec::new();
        for v in TLS_VERSIONS {
            let key = format!(
                r"{}\Control\SecurityProviders\SCHANNEL\Protocols\{v}\Server",
                cs.name
            );
            let enabled = match read_value(w, HiveId::System, &key, "Enabled") {
                Ok(d) => d,
                Err(e) => return meta.cannot_tell(e),
            };
            let by_default =
                read_value(w, HiveId::System, &key, "DisabledByDefault").unwrap_or(None);
            // Absent means the version's default, which is on for these three on every
            // Windows that runs on Azure.
            let is_off = dword(&enabled) == Some(0);
            f.locations.push(Location {
                hive: HiveId::System,
                key: key.clone(),
                value: Some("Enabled".into()),
            });
            if is_off || dword(&by_default) == Some(1) {
                off.push((v, key, enabled, by_default));
            }
        }
        if off.len() < TLS_VERSIONS.len() {
            return f;
        }
        f.status = Status::Broken;
        f.title = "every TLS version (1.0, 1.1, 1.2) is turned off for servers".into();
        f.found = Some(
            off.iter()
                .map(|(v, _, e, d)| {
                    format!(
                        "{v}: Enabled={}, DisabledByDefault={}",
                        show(e.as_ref()),
                        show(d.as_ref())
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        );
        f.expected =
            Some("TLS 1.2 Server: Enabled=1 (or absent), DisabledByDefault=0 (or absent)".into());
        // Turning TLS 1.2 back on is the least change that lets RDP negotiate; the older versions
        // may have been turned off on purpose.
        let (_, key, enabled, by_default) = off
            .iter()
            .find(|(v, ..)| *v == "TLS 1.2")
            .cloned()
            .unwrap_or_else(|| off[off.len() - 1].clone());
        for cs in &w.model().control_sets {
            let k = key.replacen(&boot_name(&key), &cs.name, 1);
            if dword(&enabled) == Some(0) {
                f.changes.push(
                    Change::set(
                        HiveId::System,
                        &k,
                        "Enabled",
                        Data::Dword(1),
                        "tls-all-disabled: TLS 1.2 back on for servers".into(),
                    )
                    .was(enabled.clone()),
                );
            }
            if dword(&by_default) == Some(1) {
                f.changes.push(
                    Change::set(
                        HiveId::System,
                        &k,
                        "DisabledByDefault",
                        Data::Dword(0),
                        "tls-all-disabled: TLS 1.2 back on for servers".into(),
                    )
                    .was(by_default.clone()),
                );
            }
        }
        let live = r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Server";
        f.runbook.cmd.push(format!(
            "reg add \"{live}\" /v Enabled /t REG_DWORD /d 1 /f"
        ));
        f.runbook.cmd.push(format!(
            "reg add \"{live}\" /v DisabledByDefault /t REG_DWORD /d 0 /f"
        ));
        f.runbook.powershell.push(format!(
            "Set-ItemProperty -Path '{}' -Name Enabled -Type DWord -Value 1; Set-ItemProperty -Path '{}' -Name DisabledByDefault -Type DWord -Value 0",
            live.replacen("HKLM\\", "HKLM:\\", 1),
            live.replacen("HKLM\\", "HKLM:\\", 1)
        ));
        f.runbook.cmd.push("shutdown /r /t 0".into());
        f
    }
}

/// `ControlSet00N`: the first part of a SYSTEM key path.
fn boot_name(key: &str) -> String {
    key.split('\\').next().unwrap_or_default().to_string()
}

/// The listener's certificate thumbprint names a certificate that no machine store holds:
/// Remote Desktop Services cannot start the TLS listener.
pub struct CertificateMissing;

const STORES: [&str; 2] = [
    r"Microsoft\SystemCertificates\MY\Certificates",
    r"Microsoft\SystemCertificates\Remote Desktop\Certificates",
];

impl Rule for CertificateMissing {
    fn meta(&self) -> Meta {
        Meta {
            id: "certificate-missing".into(),
            stage: Stage::Security,
            severity: Severity::BlocksRdp,
            checks: "the listener's certificate (RDP-Tcp SSLCertificateSHA1Hash) is in a machine store".into(),
            why: "the listener cannot use a certificate that is gone; without the value Windows makes a self-signed one".into(),
            article: "event-id-troubleshoot-vm-rdp-connecton".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let key = format!(r"{}\Control\Terminal Server\WinStations\RDP-Tcp", cs.name);
        let hash = match read_value(w, HiveId::System, &key, "SSLCertificateSHA1Hash") {
            Ok(d) => d,
            Err(e) => return meta.cannot_tell(e),
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        f.locations.push(Location {
            hive: HiveId::System,
            key: key.clone(),
            value: Some("SSLCertificateSHA1Hash".into()),
        });
        let thumbprint = match &hash {
            None => return f,
            Some(Data::Binary(b)) => b.iter().map(|x| format!("{x:02X}")).collect::<String>(),
            Some(other) => {
                let mut f = meta.cannot_tell(format!(
                    "SSLCertificateSHA1Hash is not binary: {}",
                    show(Some(other))
                ));
                f.locations = vec![Location {
                    hive: HiveId::System,
                    key,
                    value: Some("SSLCertificateSHA1Hash".into()),
                }];
                return f;
            }
        };
        f.found = Some(thumbprint.clone());
        match w.software() {
            Err(Unavailable::Absent(why)) => return not_checked(&meta, why),
            Err(Unavailable::Unreadable(why)) => return meta.cannot_tell(why.clone()),
            Ok(_) => {}
        }
        for store in STORES {
            match subkeys(w, HiveId::Software, store) {
                Ok(names) if names.iter().any(|n| n.eq_ignore_ascii_case(&thumbprint)) => {
                    f.expected = Some(format!("a certificate in {store}"));
                    return f;
                }
                Ok(_) => {}
                Err(e) => return meta.cannot_tell(e),
            }
            f.locations.push(Location {
                hive: HiveId::Software,
                key: store.into(),
                value: None,
            });
        }
        f.status = Status::Broken;
        f.title = format!("the listener's certificate {thumbprint} is in no machine store");
        f.expected = Some("absent (Windows makes a self-signed certificate), or the thumbprint of a certificate in MY or Remote Desktop".into());
        for cs in &w.model().control_sets {
            let k = format!(r"{}\Control\Terminal Server\WinStations\RDP-Tcp", cs.name);
            if let Ok(Some(old)) = read_value(w, HiveId::System, &k, "SSLCertificateSHA1Hash") {
                f.changes.push(
                    Change::delete_value(HiveId::System, &k, "SSLCertificateSHA1Hash", "certificate-missing: Windows makes a self-signed certificate at the next start".into())
                        .was(Some(old)),
                );
            }
        }
        let live = r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp";
        f.runbook.cmd.push(format!(
            "reg delete \"{live}\" /v SSLCertificateSHA1Hash /f"
        ));
        f.runbook
            .cmd
            .push("net stop TermService /y && net start TermService".into());
        f.runbook.powershell.push(format!(
            "Remove-ItemProperty -Path '{}' -Name SSLCertificateSHA1Hash; Restart-Service TermService -Force",
            live.replacen("HKLM\\", "HKLM:\\", 1)
        ));
        f
    }
}

/// The default boot entry boots into safe mode: no network services, no Remote Desktop.
pub struct SafeMode;

impl Rule for SafeMode {
    fn meta(&self) -> Meta {
        Meta {
            id: "safe-mode".into(),
            stage: Stage::Boot,
            severity: Severity::BlocksRdp,
            checks: "Windows boots normally (no safeboot element on the default boot entry)".into(),
            why: "in safe mode Remote Desktop Services do not run (and in minimal safe mode neither does the network)".into(),
            article: "troubleshoot-rdp-safe-mode".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let loaded = match w.boot_store() {
            Ok(l) => l,
            Err(Unavailable::Absent(why)) => return not_checked(&meta, why),
            Err(Unavailable::Unreadable(why)) => return meta.cannot_tell(why.clone()),
        };
        let hive = match loaded.hive() {
            Ok(h) => h,
            Err(e) => return meta.cannot_tell(format!("the boot store: {e}")),
        };
        let safe = bcd::Store::new(&hive).and_then(|s| s.safe_boot());
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        let sb = match safe {
            Ok(None) => {
                f.found = Some("no safeboot element".into());
                return f;
            }
            Ok(Some(sb)) => sb,
            Err(e) => return meta.cannot_tell(format!("the boot store: {e}")),
        };
        let key = sb.element_key();
        f.locations.push(Location {
            hive: HiveId::BootStore,
            key: key.clone(),
            value: Some("Element".into()),
        });
        f.status = Status::Broken;
        f.title = format!(
            "the default boot entry boots into safe mode ({:?}{})",
            sb.mode,
            if sb.alternate_shell {
                ", command prompt"
            } else {
                ""
            }
        );
        f.found = Some(format!(
            "safeboot set on {} (default entry {})",
            sb.object, sb.entry
        ));
        f.expected = Some("no safeboot element".into());
        f.changes.push(Change::delete_key(
            HiveId::BootStore,
            &key,
            "safe-mode: boot normally (bcdedit /deletevalue {default} safeboot)".into(),
        ));
        f.runbook
            .cmd
            .push("bcdedit /deletevalue {default} safeboot".into());
        f.runbook.cmd.push("shutdown /r /t 0".into());
        f.runbook
            .powershell
            .push("bcdedit /deletevalue '{default}' safeboot; Restart-Computer -Force".into());
        f
    }
}
