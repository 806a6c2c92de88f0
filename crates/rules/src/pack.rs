//! The rules: every cause of "cannot RDP" that lives on the disk, as data where it can be.
//!
//! The facts come from Microsoft's Azure troubleshooting articles (named in each rule) and were
//! checked against the real hives in `testdata/hives` (Windows 7, 8.1, 10): a Windows 7 hive
//! has RDP on (`fDenyTSConnections` 0), a Windows 10 desktop hive has it off (1), and both
//! listen on 3389 with `fEnableWinStation` 1 and `MaxInstanceCount` 0xFFFFFFFF.

use regf::ValueType;

use crate::report::{Severity, Stage};
use crate::service::{Healthy, Missing, ServiceRule};
use crate::value::{Fix, Scope, Test, ValueRule};

/// `CCS\Control\Terminal Server`.
const TS: &str = r"Control\Terminal Server";
/// `CCS\Control\Terminal Server\WinStations\RDP-Tcp`: the RDP listener.
const RDP: &str = r"Control\Terminal Server\WinStations\RDP-Tcp";
/// SOFTWARE: the Remote Desktop Services Group Policy settings (they win over the local ones).
const TS_POLICY: &str = r"Policies\Microsoft\Windows NT\Terminal Services";

pub static SERVICES: &[ServiceRule] = &[
    ServiceRule {
        service: "Dhcp",
        display_name: "DHCP Client",
        stage: Stage::Network,
        severity: Severity::BlocksRdp,
        why: "Azure gives the VM its address by DHCP: without the DHCP Client the VM has no address and nothing reaches it",
        article: "troubleshoot-rdp-dhcp-disabled",
        healthy: Healthy::DhcpBaseline,
        missing: Missing::Broken,
    },
    ServiceRule {
        service: "nsi",
        display_name: "Network Store Interface Service",
        stage: Stage::Network,
        severity: Severity::BlocksRdp,
        why: "the DHCP Client and the other network services depend on it: without it the VM has no network configuration",
        article: "azure-vm-nsi-not-starting",
        // Start 2 in every real hive (Windows 7, 8.1, 10) and in the VHD-preparation baseline.
        healthy: Healthy::Start {
            start: 2,
            also: &[],
            needs: &[],
        },
        missing: Missing::Broken,
    },
    ServiceRule {
        service: "netvsc",
        display_name: "Hyper-V network adapter driver",
        stage: Stage::Network,
        severity: Severity::BlocksRdp,
        why: "the VM's network adapter on Azure is a Hyper-V synthetic adapter: without its driver the VM has no network",
        article: "troubleshoot-rdp-driver-netvsc",
        healthy: Healthy::Start {
            start: 3,
            also: &[0, 1, 2],
            needs: &[],
        },
        missing: Missing::Optional(
            "the image was not prepared on Hyper-V or Azure (Windows installs the driver when it first sees the adapter)",
        ),
    },
    ServiceRule {
        service: "BFE",
        display_name: "Base Filtering Engine",
        stage: Stage::Firewall,
        severity: Severity::BlocksRdp,
        why: "the firewall service needs it; without them the boot-time filters stay in place and block every inbound connection",
        article: "guest-os-firewall-misconfigured",
        healthy: Healthy::Start {
            start: 2,
            also: &[],
            needs: &[],
        },
        missing: Missing::Broken,
    },
    ServiceRule {
        service: "MpsSvc",
        display_name: "Windows Firewall",
        stage: Stage::Firewall,
        severity: Severity::BlocksRdp,
        why: "when the firewall service does not start, the boot-time filters stay in place and block every inbound connection",
        article: "guest-os-firewall-misconfigured",
        healthy: Healthy::Start {
            start: 2,
            also: &[],
            needs: &[("BFE", 2)],
        },
        missing: Missing::Broken,
    },
    ServiceRule {
        service: "TermService",
        display_name: "Remote Desktop Services",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        why: "it is the RDP server: without it nothing listens for RDP",
        article: "troubleshoot-remote-desktop-services-issues",
        healthy: Healthy::Start {
            start: 3,
            also: &[2],
            needs: &[],
        },
        missing: Missing::Broken,
    },
    // Netlogon checks domain accounts against a domain controller. Start in the real hives:
    // 2 in Windows 7 (both control sets; a domain member: Tcpip Domain "shieldbase.local",
    // Netlogon DynamicSiteName "Default-First-Site-Name"), 3 in Windows 8.1 and 10 (workgroup
    // machines); it depends on LanmanWorkstation everywhere. The VHD-preparation baseline says 3;
    // the article's fix is `sc config NETLOGON start=auto` (2), which a domain join sets too, so
    // the repair sets 2 and both are healthy: a member needs Netlogon at boot, and on a workgroup
    // machine it only starts and idles.
    // May block, not blocks: a disabled Netlogon stops domain-account logons (and NLA with domain
    // credentials), but local accounts, such as the administrator Azure creates, still log on. A
    // domain member's users may have no other account, which the disk cannot tell; the domain
    // membership itself is reported by nla-domain-member.
    ServiceRule {
        service: "Netlogon",
        display_name: "Netlogon",
        stage: Stage::Logon,
        severity: Severity::MayBlock,
        why: "domain accounts are checked through Netlogon: without it a domain account cannot log on over RDP (a local account still can)",
        article: "azure-vm-netlogon-not-starting",
        healthy: Healthy::Start {
            start: 2,
            also: &[3],
            needs: &[],
        },
        missing: Missing::Broken,
    },
    ServiceRule {
        service: "WindowsAzureGuestAgent",
        display_name: "Azure VM agent",
        stage: Stage::Logon,
        severity: Severity::Notice,
        why: "Run Command, Reset Password and Reset RDP configuration in the Azure portal need the VM agent",
        article: "https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/windows-azure-guest-agent",
        healthy: Healthy::Start {
            start: 2,
            also: &[3],
            needs: &[],
        },
        missing: Missing::Optional("the VM agent is not installed (an image not prepared for Azure)"),
    },
    // A notice, not a blocker: RDP itself never goes through the agent, but Run Command and
    // "Reset RDP configuration" (VMAccess), the ways to fix the rest without a repair VM, do.
    ServiceRule {
        service: "RdAgent",
        display_name: "Azure RdAgent",
        stage: Stage::Logon,
        severity: Severity::Notice,
        why: "Run Command, Reset Password and Reset RDP configuration in the Azure portal need the VM agent's RdAgent service",
        article: "https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/windows-azure-guest-agent",
        healthy: Healthy::Start {
            start: 2,
            also: &[3],
            needs: &[],
        },
        missing: Missing::Optional("the VM agent is not installed (an image not prepared for Azure)"),
    },
];

pub static VALUES: &[ValueRule] = &[
    ValueRule {
        id: "rdp-denied",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "RDP connections allowed (fDenyTSConnections)",
        broken_title: "RDP is turned off (fDenyTSConnections=1)",
        why: "Windows refuses every Remote Desktop connection; a desktop Windows ships this way",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::ControlSets,
        key: TS,
        value: "fDenyTSConnections",
        test: Test::Is(1),
        expected: "0",
        fix: Fix::SetDword(0),
        overridden_by: Some((TS_POLICY, "fDenyTSConnections")),
    },
    ValueRule {
        id: "rdp-denied-by-policy",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "Group Policy allows RDP connections",
        broken_title: "Group Policy turns RDP off (Terminal Services policy fDenyTSConnections=1)",
        why: "the policy wins over the local setting; a domain policy may set it again at the next refresh",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::Software,
        key: TS_POLICY,
        value: "fDenyTSConnections",
        test: Test::Is(1),
        expected: "absent or 0",
        fix: Fix::Delete,
        overridden_by: None,
    },
    ValueRule {
        id: "listener-disabled",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "RDP listener enabled (RDP-Tcp fEnableWinStation)",
        broken_title: "the RDP listener is disabled (RDP-Tcp fEnableWinStation=0)",
        why: "the RDP-Tcp listener does not accept connections",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::ControlSets,
        key: RDP,
        value: "fEnableWinStation",
        test: Test::Is(0),
        expected: "1",
        fix: Fix::SetDword(1),
        overridden_by: None,
    },
    ValueRule {
        id: "logon-disabled",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "logons through the RDP listener allowed (RDP-Tcp fLogonDisabled)",
        broken_title: "logons through RDP are disabled (RDP-Tcp fLogonDisabled=1)",
        why: "the listener accepts the connection but refuses every logon",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::ControlSets,
        key: RDP,
        value: "fLogonDisabled",
        test: Test::Is(1),
        expected: "0",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "drain-mode",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "new logons allowed (TSServerDrainMode)",
        broken_title: "the server is in drain mode (TSServerDrainMode=1): new logons are refused",
        why: "drain mode refuses every new remote session",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::ControlSets,
        key: TS,
        value: "TSServerDrainMode",
        test: Test::Is(1),
        expected: "0 or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "ts-disabled",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "Remote Desktop Services enabled (TSEnabled)",
        broken_title: "Remote Desktop Services are disabled (TSEnabled=0)",
        why: "Remote Desktop Services do not run any session",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::ControlSets,
        key: TS,
        value: "TSEnabled",
        test: Test::Is(0),
        expected: "1 or absent",
        fix: Fix::SetDword(1),
        overridden_by: None,
    },
    ValueRule {
        id: "ts-user-disabled",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "remote user sessions allowed (TSUserEnabled)",
        broken_title: "remote user sessions are disabled (TSUserEnabled=1)",
        why: "Remote Desktop Services refuse remote logons of users; every real hive has 0",
        article: "troubleshoot-rdp-general-error",
        scope: Scope::ControlSets,
        key: TS,
        value: "TSUserEnabled",
        test: Test::Is(1),
        expected: "0 or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "max-instances-zero",
        stage: Stage::Listener,
        severity: Severity::BlocksRdp,
        checks: "the listener accepts connections (RDP-Tcp MaxInstanceCount)",
        broken_title: "the RDP listener accepts no connection (RDP-Tcp MaxInstanceCount=0)",
        why: "a limit of zero connections refuses every one",
        article: "troubleshoot-rdp-intermittent-connectivity",
        scope: Scope::ControlSets,
        key: RDP,
        value: "MaxInstanceCount",
        test: Test::Is(0),
        expected: "4294967295 (no limit)",
        fix: Fix::SetDword(0xFFFF_FFFF),
        overridden_by: None,
    },
    // The session limits of the listener, in milliseconds; 0 is no limit. Every real hive
    // (Windows 7 both control sets, 8.1, 10) has all three present and 0, with
    // fInheritMaxSessionTime / fInheritMaxIdleTime / fInheritMaxDisconnectionTime 1. A non-zero
    // limit only applies when the listener overrides the users' own limits (its fInherit...
    // value 0), which a value rule cannot test; the article sets the value to 0 either way, and
    // the connection works until the limit ends it: notices.
    ValueRule {
        id: "session-time-limit",
        stage: Stage::Listener,
        severity: Severity::Notice,
        checks: "the listener sets no session time limit (RDP-Tcp MaxConnectionTime)",
        broken_title: "the RDP listener ends sessions after a time limit (RDP-Tcp MaxConnectionTime non-zero)",
        why: "RDP connects, then the session is cut when the limit (in milliseconds) runs out",
        article: "troubleshoot-rdp-intermittent-connectivity",
        scope: Scope::ControlSets,
        key: RDP,
        value: "MaxConnectionTime",
        test: Test::IsNot(0),
        expected: "0 (no limit) or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "idle-time-limit",
        stage: Stage::Listener,
        severity: Severity::Notice,
        checks: "the listener sets no idle time limit (RDP-Tcp MaxIdleTime)",
        broken_title: "the RDP listener ends idle sessions after a time limit (RDP-Tcp MaxIdleTime non-zero)",
        why: "RDP connects, then a session without input is cut when the limit (in milliseconds) runs out",
        article: "troubleshoot-rdp-intermittent-connectivity",
        scope: Scope::ControlSets,
        key: RDP,
        value: "MaxIdleTime",
        test: Test::IsNot(0),
        expected: "0 (no limit) or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "disconnection-time-limit",
        stage: Stage::Listener,
        severity: Severity::Notice,
        checks: "the listener keeps disconnected sessions (RDP-Tcp MaxDisconnectionTime)",
        broken_title: "the RDP listener ends disconnected sessions after a time limit (RDP-Tcp MaxDisconnectionTime non-zero)",
        why: "a session whose connection drops is ended when the limit (in milliseconds) runs out, so reconnecting starts a new one",
        article: "troubleshoot-rdp-intermittent-connectivity",
        scope: Scope::ControlSets,
        key: RDP,
        value: "MaxDisconnectionTime",
        test: Test::IsNot(0),
        expected: "0 (no limit) or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    // The article also turns the keep-alive on by policy (KeepAliveEnable 1, KeepAliveInterval 1)
    // and RDP-Tcp KeepAliveTimeout 1; no real hive has it on (KeepAliveTimeout 0 everywhere), so
    // its absence is how Windows ships, not a fault, and no rule judges it. Turning automatic
    // reconnection off is a setting of its own, which the article sets back to 0.
    ValueRule {
        id: "auto-reconnect-disabled",
        stage: Stage::Listener,
        severity: Severity::Notice,
        checks: "Group Policy allows automatic reconnection (Terminal Services policy fDisableAutoReconnect)",
        broken_title: "Group Policy turns automatic reconnection off (Terminal Services policy fDisableAutoReconnect=1)",
        why: "a connection that drops for a moment is not resumed: the client must connect again",
        article: "troubleshoot-rdp-intermittent-connectivity",
        scope: Scope::Software,
        key: TS_POLICY,
        value: "fDisableAutoReconnect",
        test: Test::Is(1),
        expected: "0 or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "port-changed",
        stage: Stage::Listener,
        severity: Severity::Notice,
        checks: "RDP listens on 3389 (RDP-Tcp PortNumber)",
        broken_title: "RDP listens on another port than 3389 (RDP-Tcp PortNumber)",
        why: "clients, the network security group and the firewall must all use the same port; Azure's defaults open 3389",
        article: "troubleshoot-rdp-internal-error",
        scope: Scope::ControlSets,
        key: RDP,
        value: "PortNumber",
        test: Test::IsNot(3389),
        expected: "3389",
        fix: Fix::SetDword(3389),
        overridden_by: None,
    },
    // The article's cause 4, for domain members: `Lsa\disabledomaincreds` 1 makes the server
    // refuse to keep domain credentials, and the article changes it to 0. Every real hive
    // (Windows 7 both control sets, 8.1, 10) has it present and 0. A notice: hardening baselines
    // (CIS "Do not allow storage of passwords and credentials for network authentication") set
    // 1 on machines that accept RDP, local accounts are not affected, and the article checks it
    // only after the domain controller and the secure channel.
    ValueRule {
        id: "domain-creds-disabled",
        stage: Stage::Logon,
        severity: Severity::Notice,
        checks: "domain credentials allowed (Lsa disabledomaincreds)",
        broken_title: "the server does not allow domain credentials (Lsa disabledomaincreds=1)",
        why: "on a domain member, logons with domain credentials may fail (\"The Local Security Authority cannot be contacted\"); local accounts are not affected",
        article: "cannot-connect-rdp-azure-vm",
        scope: Scope::ControlSets,
        key: r"Control\Lsa",
        value: "disabledomaincreds",
        test: Test::Is(1),
        expected: "0 or absent",
        fix: Fix::SetDword(0),
        overridden_by: None,
    },
    ValueRule {
        id: "credssp-oracle",
        stage: Stage::Security,
        severity: Severity::Notice,
        checks: "CredSSP accepts unpatched clients (AllowEncryptionOracle)",
        broken_title: "CredSSP refuses unpatched clients (AllowEncryptionOracle=0, Force Updated Clients)",
        why: "clients without the 2018 CredSSP update get an \"encryption oracle remediation\" error",
        article: "credssp-encryption-oracle-remediation",
        scope: Scope::Software,
        key: r"Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters",
        value: "AllowEncryptionOracle",
        test: Test::Is(0),
        expected: "1 (mitigated) or absent",
        fix: Fix::Manual("update the client, or set AllowEncryptionOracle=1 only while it is updated"),
        overridden_by: None,
    },
    // mpssvc reads the app container loopback exemptions CheckNetIsolation writes (REG_SZ) on its
    // start path. The repair-script library measured on a live VM (Server 2022) that any other
    // type, even empty, makes the firewall service terminate at every start, so the boot-time
    // filters stay and block every inbound connection; its repair removes the value (the state
    // of healthy images), and so does this one. In the real hives: Windows 7 has no AppCs key,
    // Windows 8.1 has the key without the value, Windows 10 holds a REG_SZ with one app container
    // SID. Only the type is judged: a REG_SZ mpssvc cannot parse (the script's 700 SIDs) is not.
    ValueRule {
        id: "firewall-loopback-type",
        stage: Stage::Firewall,
        severity: Severity::BlocksRdp,
        checks: "the firewall service can read its loopback exemptions (mpssvc AppCs DebugedLoopbackApps is REG_SZ)",
        broken_title: "the firewall service cannot start: its loopback exemptions (mpssvc AppCs DebugedLoopbackApps) are not REG_SZ",
        why: "the Windows Firewall service terminates at every start on this value, so the boot-time filters stay in place and block every inbound connection; the repair removes it (the exemptions it held are lost: CheckNetIsolation LoopbackExempt adds them again)",
        article: "https://github.com/Azure/repair-script-library/blob/main/src/windows/win-fix-firewall-service.ps1",
        scope: Scope::ControlSets,
        key: r"Services\mpssvc\Parameters\AppCs",
        value: "DebugedLoopbackApps",
        test: Test::TypeIsNot(ValueType::SZ),
        expected: "REG_SZ (as CheckNetIsolation writes it) or absent",
        fix: Fix::Delete,
        overridden_by: None,
    },
];
