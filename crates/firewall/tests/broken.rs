//! Firewall configurations broken one way each, made with hivex's `hivexregedit --merge` on a
//! copy of a real hive at test time (never with winrescue): a local block rule, shields up
//! (`DoNotAllowExceptions`), the firewall off, a rule that does not parse, and Group Policy
//! (a SOFTWARE hive built from the real BCD hive, see `common`): local rules ignored, a policy
//! block rule, policy shields up, an allow rule scoped to some addresses, the StandardProfile
//! fallback. Where a plan has edits, hivex applies them and the hive read back is allowed.

mod common;

use std::path::PathBuf;

use common::*;
use firewall::{
    Allower, Blocker, Change, ConditionKind, Decision, EditReason, HiveKind, NotFixable,
    ParseErrorKind, Policy, Problem, Profile, Protocol, Source, Store,
};

const FW: &str = r"Services\SharedAccess\Parameters\FirewallPolicy";

struct Case {
    _dir: tempfile::TempDir,
    system: PathBuf,
    software: Option<PathBuf>,
    cs: &'static str,
}

impl Case {
    fn new(bytes: Vec<u8>, cs: &'static str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let system = write_copy(dir.path(), "SYSTEM", &bytes);
        Case {
            _dir: dir,
            system,
            software: None,
            cs,
        }
    }

    /// Merges `body` into the SYSTEM copy; `[FW\...]` stands for the control set's
    /// FirewallPolicy key.
    fn system(self, body: &str) -> Case {
        let key = format!("[{SYSTEM_PREFIX}\\{}\\{FW}", self.cs);
        merge(&self.system, SYSTEM_PREFIX, &body.replace("[FW", &key));
        self
    }

    fn software(mut self, body: &str) -> Case {
        self.software = Some(software_hive(self._dir.path(), body));
        self
    }

    fn policy(&self) -> Policy {
        let sw = self.software.as_ref().map(|p| std::fs::read(p).unwrap());
        read(
            &std::fs::read(&self.system).unwrap(),
            self.cs,
            sw.as_deref(),
        )
    }

    /// Applies the plan's edits with hivex and reads the policy back.
    fn apply(&self, plan: &firewall::FixPlan) -> Policy {
        merge(
            &self.system,
            SYSTEM_PREFIX,
            &edits_to_reg(&plan.edits, HiveKind::System, SYSTEM_PREFIX),
        );
        if let Some(sw) = &self.software {
            let body = edits_to_reg(&plan.edits, HiveKind::Software, SOFTWARE_PREFIX);
            if !body.is_empty() {
                merge(sw, SOFTWARE_PREFIX, &body);
            }
        }
        self.policy()
    }
}

fn blockers(d: &Decision) -> Vec<String> {
    match d {
        Decision::Blocked { by } => by
            .iter()
            .map(|b| match b {
                Blocker::BlockRule(r) => format!("rule {}", r.location.value),
                Blocker::DoNotAllowExceptions { profile, source } => {
                    let from = match source {
                        Source::GroupPolicy { .. } => "policy",
                        Source::Local { .. } => "local",
                        Source::Default => "default",
                    };
                    format!("shields {profile:?} {from}")
                }
                Blocker::NoAllowRule => "no allow".into(),
            })
            .collect(),
        other => vec![format!("not blocked: {other:?}")],
    }
}

fn all_allowed(p: &Policy, port: u16) {
    for d in p.inbound(Protocol::Tcp, port) {
        assert!(
            matches!(d.decision, Decision::Allowed { .. }),
            "{:?}: {:?}",
            d.profile,
            d.decision
        );
    }
}

const BLOCK_3389: &str =
    "v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=3389|Name=Block RDP|";

#[test]
fn local_block_rule_is_deactivated() {
    let case = Case::new(win10(), "ControlSet001").system(&format!(
        "[FW\\FirewallRules]\n\"Block-RDP\"={}\n",
        reg_quote(BLOCK_3389)
    ));
    let p = case.policy();
    let [domain, private, public] = p.inbound(Protocol::Tcp, 3389);
    assert_eq!(blockers(&public.decision), ["rule Block-RDP", "no allow"]);
    assert_eq!(blockers(&domain.decision), ["no allow"]);
    assert_eq!(blockers(&private.decision), ["no allow"]);
    let plan = p.fix_inbound(Protocol::Tcp, 3389);
    assert!(plan.not_fixable.is_empty());
    let deact = plan
        .edits
        .iter()
        .find(|e| e.value == "Block-RDP")
        .expect("the block rule is edited");
    assert_eq!(
        deact.change,
        Change::SetSz(BLOCK_3389.replace("Active=TRUE", "Active=FALSE"))
    );
    assert_eq!(
        deact.reason,
        EditReason::DeactivateBlockRule {
            profiles: vec![Profile::Public]
        }
    );
    assert!(plan
        .edits
        .iter()
        .any(|e| e.value == "RemoteDesktop-UserMode-In-TCP"));
    assert_eq!(plan.edits.len(), 2);
    all_allowed(&case.apply(&plan), 3389);
}

/// Block wins over allow: on Windows 7 Domain is allowed by RemoteDesktop-In-TCP, and a block
/// rule for all profiles blocks it anyway; the block rule for another program does not.
#[test]
fn block_rule_wins_over_allow_rule() {
    let case = Case::new(win7(), "ControlSet001").system(&format!(
        "[FW\\FirewallRules]\n\"Block-All\"={}\n\"Block-Other\"={}\n",
        reg_quote("v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3000-4000|Name=Block a range|"),
        reg_quote("v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=C:\\tools\\other.exe|Name=Other|"),
    ));
    let p = case.policy();
    let [domain, _, public] = p.inbound(Protocol::Tcp, 3389);
    assert_eq!(blockers(&domain.decision), ["rule Block-All"]);
    assert_eq!(blockers(&public.decision), ["rule Block-All", "no allow"]);
    // Windows 7's own any-port rules for other programs are listed too.
    let others: Vec<_> = domain
        .other_program_rules
        .iter()
        .map(|r| r.location.value.as_str())
        .collect();
    assert!(others.contains(&"Block-Other"), "{others:?}");
    let plan = p.fix_inbound(Protocol::Tcp, 3389);
    let ids: Vec<_> = plan.edits.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(ids, ["Block-All", "RemoteDesktop-In-TCP_1"]);
    all_allowed(&case.apply(&plan), 3389);
}

#[test]
fn shields_up_blocks_even_allowed_rdp() {
    let case = Case::new(win7(), "ControlSet001")
        .system("[FW\\StandardProfile]\n\"DoNotAllowExceptions\"=dword:00000001\n");
    let p = case.policy();
    let [domain, private, public] = p.inbound(Protocol::Tcp, 3389);
    assert!(matches!(domain.decision, Decision::Allowed { .. }));
    assert_eq!(blockers(&private.decision), ["shields Private local"]);
    assert_eq!(blockers(&public.decision), ["no allow"]);
    let plan = p.fix_inbound(Protocol::Tcp, 3389);
    let del = &plan.edits[0];
    assert_eq!(del.change, Change::Delete);
    assert_eq!(del.value, "DoNotAllowExceptions");
    assert_eq!(
        del.key,
        format!(r"ControlSet001\services\SharedAccess\Parameters\FirewallPolicy\StandardProfile")
    );
    assert_eq!(plan.edits.len(), 2);
    all_allowed(&case.apply(&plan), 3389);
}

#[test]
fn firewall_off_allows_everything() {
    let case = Case::new(win10(), "ControlSet001")
        .system("[FW\\PublicProfile]\n\"EnableFirewall\"=dword:00000000\n");
    let p = case.policy();
    let [_, _, public] = p.inbound(Protocol::Tcp, 3389);
    assert_eq!(public.decision, Decision::FirewallOff);
    assert_eq!(public.settings.enable_firewall.value, 0);
    // Policy turns it back on: policy wins.
    let case = case.software(
        "[\\Policies\\Microsoft\\WindowsFirewall\\PublicProfile]\n\"EnableFirewall\"=dword:00000001\n",
    );
    let [_, _, public] = case.policy().inbound(Protocol::Tcp, 3389);
    assert_eq!(blockers(&public.decision), ["no allow"]);
    assert!(matches!(
        public.settings.enable_firewall.source,
        Source::GroupPolicy { .. }
    ));
}

#[test]
fn default_inbound_allow_allows_without_a_rule() {
    let case = Case::new(win10(), "ControlSet001")
        .system("[FW\\DomainProfile]\n\"DefaultInboundAction\"=dword:00000000\n");
    let [domain, private, _] = case.policy().inbound(Protocol::Tcp, 3389);
    assert!(
        matches!(&domain.decision, Decision::Allowed { by } if matches!(by[..], [Allower::DefaultInboundAction { .. }]))
    );
    assert_eq!(blockers(&private.decision), ["no allow"]);
    // A block rule scoped to some addresses narrows the default allow.
    let case = case.system(&format!(
        "[FW\\FirewallRules]\n\"Block-Some\"={}\n",
        reg_quote("v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=192.0.2.0/24|")
    ));
    let [domain, _, _] = case.policy().inbound(Protocol::Tcp, 3389);
    match &domain.decision {
        Decision::AllowedFromSomeSources {
            allowed_by,
            allowed_fully_by,
            partly_blocked_by,
        } => {
            assert!(allowed_by.is_empty());
            assert!(matches!(
                allowed_fully_by[..],
                [Allower::DefaultInboundAction { .. }]
            ));
            assert_eq!(partly_blocked_by[0].rule.location.value, "Block-Some");
        }
        other => panic!("{other:?}"),
    }
}

/// A rule that does not parse is reported with its id and field, never dropped silently, and
/// every decision says it was made without it.
#[test]
fn unparsable_rule_is_reported() {
    let case = Case::new(win10(), "ControlSet001").system(&format!(
        "[FW\\FirewallRules]\n\"Broken-Port\"={}\n",
        reg_quote("v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=99999|")
    ));
    let p = case.policy();
    assert_eq!(p.problems.len(), 1);
    match &p.problems[0] {
        Problem::RuleUnparsable { location, error } => {
            assert_eq!(location.value, "Broken-Port");
            assert_eq!(error.rule_id, "Broken-Port");
            assert_eq!(error.field, "LPort");
            assert_eq!(error.kind, ParseErrorKind::BadPort);
            assert!(
                error.to_string().contains("Broken-Port") && error.to_string().contains("LPort")
            );
        }
        other => panic!("{other:?}"),
    }
    for d in p.inbound(Protocol::Tcp, 3389) {
        assert_eq!(d.unparsed_rules.len(), 1);
        assert_eq!(d.unparsed_rules[0].value, "Broken-Port");
    }
}

const GP: &str = r"[\Policies\Microsoft\WindowsFirewall";

#[test]
fn policy_ignoring_local_rules_cannot_be_fixed_offline() {
    // Windows 7 allows RDP on Domain through a local rule; policy hides it.
    let case = Case::new(win7(), "ControlSet001").software(&format!(
        "{GP}\\DomainProfile]\n\"AllowLocalPolicyMerge\"=dword:00000000\n"
    ));
    let p = case.policy();
    let [domain, private, _] = p.inbound(Protocol::Tcp, 3389);
    assert!(domain.group_policy_known);
    assert!(!domain.local_rules_apply);
    assert_eq!(blockers(&domain.decision), ["no allow"]);
    assert!(private.local_rules_apply);
    assert!(matches!(private.decision, Decision::Allowed { .. }));
    let plan = p.fix_inbound(Protocol::Tcp, 3389);
    assert!(plan.edits.is_empty(), "{:#?}", plan.edits);
    assert_eq!(
        plan.not_fixable,
        [NotFixable::PolicyIgnoresLocalRules {
            profile: Profile::Domain,
            key: r"Policies\Microsoft\WindowsFirewall\DomainProfile".into()
        }]
    );
    // A policy rule that allows RDP makes Domain allowed again.
    let case = case.software(&format!(
        "{GP}\\DomainProfile]\n\"AllowLocalPolicyMerge\"=dword:00000000\n\n{GP}\\FirewallRules]\n\"GP-RDP\"={}\n",
        reg_quote("v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|LPort=3389|Name=RDP by policy|")
    ));
    let p = case.policy();
    let gp_rule = p.rules.iter().find(|s| s.rule.id == "GP-RDP").unwrap();
    assert_eq!(gp_rule.location.store, Store::GroupPolicy);
    assert_eq!(gp_rule.location.hive, HiveKind::Software);
    assert_eq!(
        gp_rule.location.key,
        r"Policies\Microsoft\WindowsFirewall\FirewallRules"
    );
    let [domain, _, _] = p.inbound(Protocol::Tcp, 3389);
    assert!(
        matches!(&domain.decision, Decision::Allowed { by } if matches!(&by[..], [Allower::Rule(r)] if r.location.value == "GP-RDP"))
    );
}

#[test]
fn policy_block_rule_cannot_be_fixed_offline() {
    let case = Case::new(win10(), "ControlSet001").software(&format!(
        "{GP}\\FirewallRules]\n\"GP-Block\"={}\n",
        reg_quote(BLOCK_3389)
    ));
    let p = case.policy();
    let [_, _, public] = p.inbound(Protocol::Tcp, 3389);
    assert_eq!(blockers(&public.decision), ["rule GP-Block", "no allow"]);
    let plan = p.fix_inbound(Protocol::Tcp, 3389);
    assert!(plan.edits.is_empty());
    assert!(
        matches!(&plan.not_fixable[..], [NotFixable::PolicyBlockRule { profile: Profile::Public, rule }] if rule.location.value == "GP-Block")
    );
}

/// Policy shields up through StandardProfile, which applies to Private and Public when policy
/// has neither PrivateProfile nor PublicProfile ([MS-GPFAS] 2.2.3).
#[test]
fn policy_standard_profile_applies_to_private_and_public() {
    let case = Case::new(win7(), "ControlSet001").software(&format!(
        "{GP}\\StandardProfile]\n\"DoNotAllowExceptions\"=dword:00000001\n"
    ));
    let p = case.policy();
    let [domain, private, public] = p.inbound(Protocol::Tcp, 3389);
    assert!(matches!(domain.decision, Decision::Allowed { .. }));
    assert_eq!(blockers(&private.decision), ["shields Private policy"]);
    assert_eq!(
        blockers(&public.decision),
        ["shields Public policy", "no allow"]
    );
    let plan = p.fix_inbound(Protocol::Tcp, 3389);
    assert!(plan.edits.is_empty());
    assert_eq!(plan.not_fixable.len(), 2);
    // Once PrivateProfile exists, StandardProfile is ignored.
    let case = case.software(&format!(
        "{GP}\\StandardProfile]\n\"DoNotAllowExceptions\"=dword:00000001\n\n{GP}\\PrivateProfile]\n\"EnableFirewall\"=dword:00000001\n"
    ));
    let [_, private, public] = case.policy().inbound(Protocol::Tcp, 3389);
    assert!(matches!(private.decision, Decision::Allowed { .. }));
    assert_eq!(blockers(&public.decision), ["no allow"]);
}

/// An allow rule scoped to some remote addresses: allowed from some sources, not blocked; and
/// a full allow narrowed by a scoped block rule is the same answer.
#[test]
fn scoped_rules_allow_some_sources() {
    let case = Case::new(win10(), "ControlSet001").software(&format!(
        "{GP}\\FirewallRules]\n\"GP-RDP-Scoped\"={}\n",
        reg_quote("v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=10.0.0.0/255.0.0.0|RA4=LocalSubnet|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=Scoped|")
    ));
    let p = case.policy();
    for d in p.inbound(Protocol::Tcp, 3389) {
        match &d.decision {
            Decision::AllowedFromSomeSources {
                allowed_by,
                allowed_fully_by,
                partly_blocked_by,
            } => {
                assert!(allowed_fully_by.is_empty() && partly_blocked_by.is_empty());
                assert_eq!(allowed_by.len(), 1);
                let kinds: Vec<_> = allowed_by[0]
                    .conditions
                    .iter()
                    .map(|c| (c.kind, c.value.as_str()))
                    .collect();
                assert_eq!(
                    kinds,
                    [
                        (ConditionKind::RemoteAddress, "10.0.0.0/255.0.0.0"),
                        (ConditionKind::RemoteAddress, "LocalSubnet")
                    ]
                );
            }
            other => panic!("{:?}: {other:?}", d.profile),
        }
    }
    assert!(
        p.fix_inbound(Protocol::Tcp, 3389).edits.is_empty(),
        "not blocked: nothing to fix"
    );

    let case = Case::new(win10(), "ControlSet001").system(&format!(
        "[FW\\FirewallRules]\n\"Allow-All\"={}\n\"Block-Some\"={}\n",
        reg_quote("v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|"),
        reg_quote("v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=192.0.2.0/24|"),
    ));
    for d in case.policy().inbound(Protocol::Tcp, 3389) {
        assert!(
            matches!(&d.decision, Decision::AllowedFromSomeSources { allowed_fully_by, partly_blocked_by, .. } if allowed_fully_by.len() == 1 && partly_blocked_by.len() == 1),
            "{d:?}"
        );
    }
}

#[test]
fn missing_control_set_is_an_error() {
    let sys = hive(win7());
    let err = Policy::read::<_, Vec<u8>>(&sys, "ControlSet009", None).unwrap_err();
    assert!(err.to_string().contains("ControlSet009"), "{err}");
}
