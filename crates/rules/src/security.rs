//! Security negotiation and logon: the security layer, Network Level Authentication, FIPS.
//!
//! Measured in the real hives (testdata/hives/RDP-FACTS.md): SecurityLayer is 1 on Windows 7 and
//! 8.1 and 2 on Windows 10; UserAuthentication is 0 on Windows 7 and 1 on 8.1 and 10;
//! MinEncryptionLevel is 2 and FIPSAlgorithmPolicy\Enabled 0 everywhere. So SecurityLayer 1 or 2
//! and UserAuthentication 0 or 1 are all healthy; the VHD-preparation baseline (1 and 1) is a
//! preference, not a condition.

use regf::Data;
use rescue::change::Change;
use rescue::offline::{HiveId, Offline};

use crate::code::{boot_set, dword};
use crate::report::{Finding, Location, Severity, Stage, Status};
use crate::rule::{Meta, Options, Rule};
use crate::setting::Setting;
use crate::value::{read_value, show};

pub static ALL: &[&dyn Rule] = &[
    &SecurityLayer,
    &UserAuthentication,
    &FipsEncryption,
    &NlaDomainMember,
];

/// `SecurityLayer` 0: the RDP security layer (no TLS).
const RDP_LAYER: u64 = 0;
/// `MinEncryptionLevel` 4: FIPS-compliant encryption only.
const FIPS_LEVEL: u64 = 4;

fn read(w: &Offline, meta: &Meta, cs: &str, name: &'static str) -> Result<Setting, Box<Finding>> {
    Setting::read(w, cs, name).map_err(|e| Box::new(meta.cannot_tell(e)))
}

/// The listener uses the RDP security layer (SecurityLayer 0): no TLS, no server authentication,
/// and no Network Level Authentication.
pub struct SecurityLayer;

impl Rule for SecurityLayer {
    fn meta(&self) -> Meta {
        Meta {
            id: "security-layer".into(),
            stage: Stage::Security,
            severity: Severity::Notice,
            checks: "the listener negotiates TLS (RDP-Tcp SecurityLayer, or its Group Policy)".into(),
            why: "with the RDP security layer the server is not authenticated and Network Level Authentication cannot run: clients set to require either refuse to connect".into(),
            article: "https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let s = match read(w, &meta, &cs.name, "SecurityLayer") {
            Ok(s) => s,
            Err(f) => return *f,
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        s.locations(&mut f);
        f.found = Some(s.describe());
        f.expected =
            Some("1 (Negotiate, the VHD-preparation baseline) or 2 (TLS); absent is 1".into());
        if s.effective() != Some(RDP_LAYER) {
            return f;
        }
        f.status = Status::Broken;
        f.title = format!(
            "the listener uses the RDP security layer ({}): no TLS, no server authentication",
            s.describe()
        );
        s.fix(
            w,
            |v| v == RDP_LAYER,
            1,
            "security-layer: negotiate TLS (SecurityLayer 1)",
            &mut f,
        );
        f
    }
}

/// Network Level Authentication required while the security layer is the RDP one: NLA runs
/// CredSSP inside TLS, which that layer does not offer.
pub struct UserAuthentication;

impl Rule for UserAuthentication {
    fn meta(&self) -> Meta {
        Meta {
            id: "user-authentication".into(),
            stage: Stage::Security,
            severity: Severity::Notice,
            checks: "Network Level Authentication can run (RDP-Tcp UserAuthentication with SecurityLayer, or their Group Policy)".into(),
            why: "Network Level Authentication (UserAuthentication 1) runs CredSSP inside TLS; with the RDP security layer (SecurityLayer 0) the two settings contradict each other and clients may fail to negotiate".into(),
            article: "cannot-connect-rdp-azure-vm".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let (ua, layer) = match (
            read(w, &meta, &cs.name, "UserAuthentication"),
            read(w, &meta, &cs.name, "SecurityLayer"),
        ) {
            (Ok(u), Ok(l)) => (u, l),
            (Err(f), _) | (_, Err(f)) => return *f,
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        ua.locations(&mut f);
        f.found = Some(format!("{}; {}", ua.describe(), layer.describe()));
        f.expected = Some(
            "UserAuthentication 1 (NLA, the VHD-preparation baseline; Windows 8.1 and 10 ship so) or 0 (Windows 7 ships so), with SecurityLayer 1 or 2"
                .into(),
        );
        if ua.effective() != Some(1) || layer.effective() != Some(RDP_LAYER) {
            return f;
        }
        layer.locations(&mut f);
        f.status = Status::Broken;
        f.title = "Network Level Authentication is required but the security layer is the RDP one (SecurityLayer 0)".into();
        f.cannot_tell = Some(
            "which of the two Windows enforces depends on the client's own settings, which are not on this disk"
                .into(),
        );
        // Letting the listener negotiate TLS keeps NLA on; turning NLA off would weaken logons.
        layer.fix(
            w,
            |v| v == RDP_LAYER,
            1,
            "user-authentication: negotiate TLS so that NLA can run (SecurityLayer 1)",
            &mut f,
        );
        f
    }
}

/// FIPS-only algorithms (Lsa FIPSAlgorithmPolicy) or FIPS-only RDP encryption (MinEncryptionLevel
/// 4): clients without FIPS-compliant algorithms cannot connect.
pub struct FipsEncryption;

const FIPS_KEY: &str = r"Control\Lsa\FIPSAlgorithmPolicy";

impl Rule for FipsEncryption {
    fn meta(&self) -> Meta {
        Meta {
            id: "fips-encryption".into(),
            stage: Stage::Security,
            severity: Severity::MayBlock,
            checks: "RDP does not require FIPS-compliant algorithms (Lsa FIPSAlgorithmPolicy Enabled, RDP-Tcp MinEncryptionLevel 4)".into(),
            why: "with FIPS-only algorithms the VM accepts only clients that use them; the article's fix turns FIPS off (Enabled 0) and sets MinEncryptionLevel 4 back to 2 (client compatible); a domain policy may set them again".into(),
            article: "cannot-connect-rdp-azure-vm".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let fips_key = format!(r"{}\{FIPS_KEY}", cs.name);
        let fips = match read_value(w, HiveId::System, &fips_key, "Enabled") {
            Ok(d) => d,
            Err(e) => return meta.cannot_tell(e),
        };
        let level = match read(w, &meta, &cs.name, "MinEncryptionLevel") {
            Ok(s) => s,
            Err(f) => return *f,
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        f.locations.push(Location {
            hive: HiveId::System,
            key: fips_key,
            value: Some("Enabled".into()),
        });
        level.locations(&mut f);
        f.found = Some(format!(
            "FIPSAlgorithmPolicy Enabled={}; {}",
            show(fips.as_ref()),
            level.describe()
        ));
        f.expected = Some(
            "FIPSAlgorithmPolicy Enabled 0 (or absent); MinEncryptionLevel 1, 2 (client compatible, every real hive) or 3"
                .into(),
        );
        let fips_on = dword(&fips) == Some(1);
        let fips_level = level.effective() == Some(FIPS_LEVEL);
        if !fips_on && !fips_level {
            return f;
        }
        f.status = Status::Broken;
        f.title = match (fips_on, fips_level) {
            (true, true) => "FIPS-only algorithms are enforced (FIPSAlgorithmPolicy Enabled=1, MinEncryptionLevel=4)",
            (true, false) => "FIPS-only algorithms are enforced (FIPSAlgorithmPolicy Enabled=1)",
            _ => "RDP requires FIPS-compliant encryption (MinEncryptionLevel=4)",
        }
        .into();
        f.cannot_tell = Some(
            "whether the clients that connect use FIPS-compliant algorithms is not on this disk"
                .into(),
        );
        if fips_on {
            let live = format!(r"HKLM\SYSTEM\CurrentControlSet\{FIPS_KEY}");
            for other in &w.model().control_sets {
                let k = format!(r"{}\{FIPS_KEY}", other.name);
                if let Ok(old @ Some(_)) = read_value(w, HiveId::System, &k, "Enabled") {
                    if dword(&old) == Some(1) {
                        f.changes.push(
                            Change::set(
                                HiveId::System,
                                &k,
                                "Enabled",
                                Data::Dword(0),
                                "fips-encryption: FIPS-only algorithms off (FIPSAlgorithmPolicy Enabled 0)".into(),
                            )
                            .was(old),
                        );
                    }
                }
            }
            f.runbook.cmd.push(format!(
                "reg add \"{live}\" /v Enabled /t REG_DWORD /d 0 /f"
            ));
            f.runbook.powershell.push(format!(
                "Set-ItemProperty -Path '{}' -Name Enabled -Type DWord -Value 0",
                live.replacen("HKLM\\", "HKLM:\\", 1)
            ));
        }
        level.fix(
            w,
            |v| v == FIPS_LEVEL,
            2,
            "fips-encryption: client-compatible encryption (MinEncryptionLevel 2)",
            &mut f,
        );
        f.runbook.cmd.push("shutdown /r /t 0".into());
        f.runbook.powershell.push("Restart-Computer -Force".into());
        f
    }
}

/// Network Level Authentication on a domain member: a domain account's logon needs a domain
/// controller the VM can reach, which no disk can tell.
pub struct NlaDomainMember;

impl Rule for NlaDomainMember {
    fn meta(&self) -> Meta {
        Meta {
            id: "nla-domain-member".into(),
            stage: Stage::Logon,
            severity: Severity::Notice,
            checks: "Network Level Authentication on a domain member (UserAuthentication, Tcpip Domain)".into(),
            why: "with NLA a domain account is checked before the session starts: the VM must reach a domain controller over a healthy secure channel, or the logon fails (\"The Local Security Authority cannot be contacted\"); a local account still works".into(),
            article: "cannot-connect-rdp-azure-vm".into(),
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let cs = match boot_set(w, &meta) {
            Ok(cs) => cs,
            Err(f) => return *f,
        };
        let ua = match read(w, &meta, &cs.name, "UserAuthentication") {
            Ok(s) => s,
            Err(f) => return *f,
        };
        // The primary DNS domain a domain join writes; Netlogon's site confirms a past contact
        // with a domain controller.
        let tcpip = format!(r"{}\Services\Tcpip\Parameters", cs.name);
        let text = |key: &str, value: &str| -> Result<String, String> {
            Ok(read_value(w, HiveId::System, key, value)?
                .and_then(|d| d.as_str().map(str::to_string))
                .unwrap_or_default())
        };
        let netlogon = format!(r"{}\Services\Netlogon\Parameters", cs.name);
        let (domain, site) = match (text(&tcpip, "Domain"), text(&netlogon, "DynamicSiteName")) {
            (Ok(d), Ok(s)) => (d, s),
            (Err(e), _) | (_, Err(e)) => return meta.cannot_tell(e),
        };
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        ua.locations(&mut f);
        f.locations.push(Location {
            hive: HiveId::System,
            key: tcpip,
            value: Some("Domain".into()),
        });
        let member = !domain.trim().is_empty();
        f.found = Some(format!(
            "{}; {}",
            ua.describe(),
            if member {
                format!(
                    "domain {domain}{}",
                    if site.is_empty() {
                        String::new()
                    } else {
                        format!(" (site {site})")
                    }
                )
            } else {
                "not joined to a domain (no primary domain)".into()
            }
        ));
        f.expected =
            Some("a reachable domain controller for domain accounts, or a local account".into());
        if !member || ua.effective() != Some(1) {
            return f;
        }
        f.status = Status::Broken;
        f.title = format!(
            "Network Level Authentication on a member of domain {domain}: domain logons need a reachable domain controller"
        );
        f.cannot_tell = Some(
            "whether a domain controller is reachable, and the secure channel healthy, is decided on the network, not on the disk"
                .into(),
        );
        f.unresolved.push(
            "log on with a local account, or repair the secure channel (Test-ComputerSecureChannel -Repair); the article's workaround turns NLA off for the time being (UserAuthentication 0)"
                .into(),
        );
        f.runbook.cmd.push("set | find /i \"LOGONSERVER\"".into());
        f.runbook.cmd.push(
            "reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\" /v disabledomaincreds"
                .into(),
        );
        f.runbook
            .powershell
            .push("Test-ComputerSecureChannel -Verbose".into());
        f.runbook
            .powershell
            .push("Test-ComputerSecureChannel -Repair".into());
        f
    }
}
