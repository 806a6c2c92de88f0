//! The firewall rules: is inbound TCP on the RDP port allowed on each profile
//! (`firewall::Policy`, a static evaluation of the local and Group Policy stores), and the edits
//! that let it in.
//!
//! Two findings come from one evaluation: `firewall-block-all` ("block all incoming
//! connections", `DoNotAllowExceptions`, on a profile) and `firewall-blocks-rdp` (a block rule,
//! or no allow rule, for the port). Which profile the VM's adapter is in is decided at run time:
//! every profile blocked blocks RDP; some blocked may block it (an Azure VM's adapter is
//! normally Public, or Domain when the VM is joined to a domain).

use std::sync::Arc;

use firewall::{Blocker, Decision, Edit, HiveKind, NotFixable, Policy, ProfileDecision, Protocol};
use regf::Data;
use rescue::change::Change;
use rescue::offline::{HiveId, Offline};

use crate::report::{Finding, Location, Severity, Stage, Status};
use crate::rule::{Meta, Options, Rule};
use crate::value::read_value;

pub static RULES: [Firewall; 2] = [Firewall::BlockAll, Firewall::BlocksRdp];

/// One of the two firewall findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firewall {
    BlockAll,
    BlocksRdp,
}

impl Firewall {
    /// Whether `b` is this finding's kind of cause.
    fn owns(self, b: &Blocker) -> bool {
        matches!(
            (self, b),
            (Firewall::BlockAll, Blocker::DoNotAllowExceptions { .. })
                | (
                    Firewall::BlocksRdp,
                    Blocker::BlockRule(_) | Blocker::NoAllowRule
                )
        )
    }

    fn owns_edit(self, e: &Edit) -> bool {
        let delete_exceptions = matches!(
            e.reason,
            firewall::EditReason::DeleteDoNotAllowExceptions { .. }
        );
        delete_exceptions == (self == Firewall::BlockAll)
    }

    fn owns_unfixable(self, n: &NotFixable) -> bool {
        let exceptions = matches!(n, NotFixable::PolicyDoNotAllowExceptions { .. });
        exceptions == (self == Firewall::BlockAll)
    }
}

/// The port the listener uses in a control set (`RDP-Tcp\PortNumber`, 3389 when absent).
pub(crate) fn rdp_port(w: &Offline, control_set: &str) -> u16 {
    let key = format!(r"{control_set}\Control\Terminal Server\WinStations\RDP-Tcp");
    read_value(w, HiveId::System, &key, "PortNumber")
        .ok()
        .flatten()
        .and_then(|d| d.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
        .unwrap_or(3389)
}

/// The firewall policy of a control set, read once per diagnosis: both firewall rules evaluate
/// the same policy.
fn policy(w: &Offline, control_set: &str) -> Arc<Result<Policy, String>> {
    w.memo(&format!("firewall::Policy {control_set}"), || {
        read_policy(w, control_set)
    })
}

fn read_policy(w: &Offline, control_set: &str) -> Result<Policy, String> {
    let system = w.system().hive().map_err(|e| e.to_string())?;
    let software = w.software().ok().map(|s| s.hive()).transpose();
    let software = software.map_err(|e| e.to_string())?;
    Policy::read(&system, control_set, software.as_ref()).map_err(|e| e.to_string())
}

fn to_change(w: &Offline, e: &Edit, why: &str) -> Change {
    let hive = match e.hive {
        HiveKind::System => HiveId::System,
        HiveKind::Software => HiveId::Software,
    };
    let old = read_value(w, hive, &e.key, &e.value).ok().flatten();
    match &e.change {
        firewall::Change::SetSz(s) => {
            Change::set(hive, &e.key, &e.value, Data::Sz(s.clone()), why.to_string())
        }
        firewall::Change::Delete => Change::delete_value(hive, &e.key, &e.value, why.to_string()),
    }
    .was(old)
}

/// Why an edit is made, in words.
fn edit_reason(r: &firewall::EditReason) -> String {
    use firewall::EditReason as R;
    let on = |p: &[firewall::Profile]| p.iter().map(|p| p.token()).collect::<Vec<_>>().join(", ");
    match r {
        R::ActivateRule { profiles } => format!(
            "activate the built-in Remote Desktop rule ({})",
            on(profiles)
        ),
        R::AddRule { profiles } => format!("add an allow rule for the port ({})", on(profiles)),
        R::DeactivateBlockRule { profiles } => {
            format!("deactivate the block rule ({})", on(profiles))
        }
        R::DeleteDoNotAllowExceptions { profile } => format!(
            "stop blocking every incoming connection ({})",
            profile.token()
        ),
    }
}

impl Rule for Firewall {
    fn meta(&self) -> Meta {
        match self {
            Firewall::BlockAll => Meta {
                id: "firewall-block-all".into(),
                stage: Stage::Firewall,
                severity: Severity::BlocksRdp,
                checks:
                    "no firewall profile blocks every incoming connection (DoNotAllowExceptions)"
                        .into(),
                why: "\"block all incoming connections\" ignores every allow rule, RDP's included"
                    .into(),
                article: "guest-os-firewall-blocking-inbound-traffic".into(),
            },
            Firewall::BlocksRdp => Meta {
                id: "firewall-blocks-rdp".into(),
                stage: Stage::Firewall,
                severity: Severity::BlocksRdp,
                checks: "the firewall lets RDP in (an active allow rule, no block rule)".into(),
                why: "the firewall drops RDP's connection before the listener sees it".into(),
                article: "guest-os-firewall-blocking-inbound-traffic".into(),
            },
        }
    }

    fn check(&self, w: &Offline, _: &Options) -> Finding {
        let meta = self.meta();
        let boot = match w.model().boot_set() {
            Ok(cs) => cs,
            Err(e) => return meta.cannot_tell(e.to_string()),
        };
        let port = rdp_port(w, &boot.name);
        let memo = policy(w, &boot.name);
        let p = match memo.as_ref() {
            Ok(p) => p,
            Err(e) => return meta.cannot_tell(e.clone()),
        };
        let decisions = p.inbound(Protocol::Tcp, port);
        let blocked: Vec<&ProfileDecision> = decisions
            .iter()
            .filter(|d| match &d.decision {
                Decision::Blocked { by } => by.iter().any(|b| self.owns(b)),
                _ => false,
            })
            .collect();
        let mut f = meta.finding(Status::Healthy, meta.checks.clone());
        f.locations.push(Location {
            hive: HiveId::System,
            key: format!(
                r"{}\Services\SharedAccess\Parameters\FirewallPolicy",
                boot.name
            ),
            value: None,
        });
        f.found = Some(
            decisions
                .iter()
                .map(|d| format!("{}: {}", d.profile.token(), decision_word(&d.decision)))
                .collect::<Vec<_>>()
                .join(", "),
        );
        f.expected = Some(format!("TCP {port} allowed on every profile"));
        if blocked.is_empty() {
            return f;
        }
        let profiles: Vec<&str> = blocked.iter().map(|d| d.profile.token()).collect();
        f.status = Status::Broken;
        f.severity = if blocked.len() == decisions.len() {
            Severity::BlocksRdp
        } else {
            Severity::MayBlock
        };
        f.title = match self {
            Firewall::BlockAll => format!(
                "the firewall blocks every incoming connection on the {} profile{}",
                profiles.join(", "),
                if profiles.len() == 1 { "" } else { "s" }
            ),
            Firewall::BlocksRdp => format!(
                "the firewall does not let TCP {port} in on the {} profile{}",
                profiles.join(", "),
                if profiles.len() == 1 { "" } else { "s" }
            ),
        };
        // Turning RDP off in System Properties also turns the Remote Desktop rules off: with
        // RDP off and nothing but a missing allow rule, the firewall follows from that.
        let only_no_allow = blocked.iter().all(|d| {
            matches!(&d.decision, Decision::Blocked { by } if by.iter().all(|b| matches!(b, Blocker::NoAllowRule)))
        });
        let rdp_off = read_value(
            w,
            HiveId::System,
            &format!(r"{}\Control\Terminal Server", boot.name),
            "fDenyTSConnections",
        )
        .ok()
        .flatten()
        .and_then(|d| d.as_u64())
            == Some(1);
        if *self == Firewall::BlocksRdp && only_no_allow && rdp_off {
            f.consequence_of = Some("rdp-denied".into());
            f.title = format!(
                "the firewall's Remote Desktop rules are off, as Windows leaves them while RDP is turned off (TCP {port} blocked: {})",
                profiles.join(", ")
            );
        }
        // The same edits in every control set whose policy blocks (Last Known Good included).
        for cs in &w.model().control_sets {
            let memo = policy(w, &cs.name);
            let Ok(p) = memo.as_ref() else { continue };
            let plan = p.fix_inbound(Protocol::Tcp, rdp_port(w, &cs.name));
            for e in plan.edits.iter().filter(|e| self.owns_edit(e)) {
                let c = to_change(w, e, &format!("{}: {}", meta.id, edit_reason(&e.reason)));
                if !f.changes.contains(&c) {
                    f.changes.push(c);
                }
            }
            if cs.number == boot.number {
                for n in plan.not_fixable.iter().filter(|n| self.owns_unfixable(n)) {
                    f.unresolved.push(format!(
                        "Group Policy sets it (the domain writes it back): {n:?}"
                    ));
                }
            }
        }
        match self {
            Firewall::BlockAll => {
                for p in &profiles {
                    f.runbook.cmd.push(format!(
                        "netsh advfirewall set {}profile firewallpolicy blockinbound,allowoutbound",
                        p.to_ascii_lowercase()
                    ));
                    f.runbook.powershell.push(format!(
                        "Set-NetFirewallProfile -Profile {p} -AllowInboundRules True"
                    ));
                }
            }
            Firewall::BlocksRdp => {
                f.runbook.cmd.push(
                    "netsh advfirewall firewall set rule group=\"remote desktop\" new enable=Yes"
                        .into(),
                );
                f.runbook
                    .powershell
                    .push("Enable-NetFirewallRule -DisplayGroup 'Remote Desktop'".into());
                for b in blocked.iter().flat_map(|d| match &d.decision {
                    Decision::Blocked { by } => by.as_slice(),
                    _ => &[],
                }) {
                    if let Blocker::BlockRule(r) = b {
                        f.runbook.powershell.push(format!(
                            "Disable-NetFirewallRule -Name '{}'",
                            r.location.value
                        ));
                    }
                }
            }
        }
        f
    }
}

fn decision_word(d: &Decision) -> &'static str {
    match d {
        Decision::FirewallOff => "firewall off",
        Decision::Allowed { .. } => "allowed",
        Decision::AllowedFromSomeSources { .. } => "allowed from some sources",
        Decision::Blocked { .. } => "blocked",
    }
}
