//! The real SYSTEM hives of `testdata/hives`: every rule of every control set parses, its text
//! is the one hivex reads, and the decisions are the state the hives really hold (checked by
//! hand with `hivexregedit --export` first: Windows 7 allows RDP on Domain and Private through
//! `RemoteDesktop-In-TCP`; Windows 8.1 and 10 ship their RDP rules with `Active=FALSE`). The
//! planned fix is applied with hivexregedit, not with winrescue, and read back.

mod common;

use common::*;
use firewall::{
    Allower, Blocker, Change, Decision, EditReason, HiveKind, Profile, Protocol, Source, Store,
};

const FW: &str = r"Services\SharedAccess\Parameters\FirewallPolicy";

fn rules_key(cs: &str, services: &str) -> String {
    format!(r"\{cs}\{services}\SharedAccess\Parameters\FirewallPolicy\FirewallRules")
}

/// Every rule parses, none is left out, and each text equals hivex's reading of the value.
fn check_against_hivex(bytes: &[u8], name: &str, control_sets: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_copy(dir.path(), name, bytes);
    for (cs, services) in control_sets {
        let policy = read(bytes, cs, None);
        assert!(
            policy.problems.is_empty(),
            "{name} {cs}: {:#?}",
            policy.problems
        );
        let oracle = hivex_strings(&path, &rules_key(cs, services));
        assert!(oracle.len() > 300, "{name} {cs}: {} rules", oracle.len());
        assert_eq!(policy.rules.len(), oracle.len(), "{name} {cs}");
        // hivex lists values in its own order: compare by name.
        let mut ours: Vec<_> = policy.rules.iter().collect();
        ours.sort_by(|a, b| a.location.value.cmp(&b.location.value));
        let mut oracle = oracle;
        oracle.sort();
        for (stored, (value, text)) in ours.into_iter().zip(&oracle) {
            assert_eq!(stored.location.store, Store::Local);
            assert_eq!(stored.location.hive, HiveKind::System);
            assert_eq!(&stored.location.value, value);
            assert_eq!(&stored.rule.id, value);
            assert_eq!(stored.rule.to_text(), text, "{name} {cs} {value}");
            assert_eq!(
                stored.location.key.to_ascii_lowercase(),
                rules_key(cs, services)[1..].to_ascii_lowercase()
            );
        }
    }
}

#[test]
fn win7_rules_parse_and_match_hivex() {
    check_against_hivex(
        &win7(),
        "win7-SYSTEM",
        &[("ControlSet001", "services"), ("ControlSet002", "services")],
    );
}

#[test]
fn win81_rules_parse_and_match_hivex() {
    check_against_hivex(&win81(), "win81-SYSTEM", &[("ControlSet001", "Services")]);
}

#[test]
fn win10_stale_rules_parse_and_match_hivex() {
    check_against_hivex(
        &win10_stale(),
        "win10-SYSTEM",
        &[("ControlSet001", "Services")],
    );
}

#[test]
fn win10_replayed_rules_parse() {
    let policy = read(&win10(), "ControlSet001", None);
    assert!(policy.problems.is_empty(), "{:#?}", policy.problems);
    assert!(policy.rules.len() > 400);
}

fn id_of(b: &Blocker) -> String {
    match b {
        Blocker::BlockRule(r) => r.location.value.clone(),
        other => format!("{other:?}"),
    }
}

/// Windows 8.1 and 10: the three RDP rules are there, inactive; nothing allows 3389 on any
/// profile; the fix activates RemoteDesktop-UserMode-In-TCP and nothing else.
fn desktop_ships_rdp_off(bytes: Vec<u8>, name: &str) {
    let policy = read(&bytes, "ControlSet001", None);
    for id in [
        "RemoteDesktop-UserMode-In-TCP",
        "RemoteDesktop-UserMode-In-UDP",
        "RemoteDesktop-Shadow-In-TCP",
    ] {
        let r = policy
            .rules
            .iter()
            .find(|s| s.rule.id == id)
            .unwrap_or_else(|| panic!("{name}: {id}"));
        assert!(!r.rule.active, "{name}: {id} ships inactive");
        assert_eq!(r.rule.group.as_deref(), Some(firewall::RDP_GROUP));
    }
    for d in policy.inbound(Protocol::Tcp, 3389) {
        assert_eq!(
            d.decision,
            Decision::Blocked {
                by: vec![Blocker::NoAllowRule]
            },
            "{name} {:?}",
            d.profile
        );
        assert_eq!(d.settings.enable_firewall.value, 1);
        assert!(matches!(
            d.settings.enable_firewall.source,
            Source::Local { .. }
        ));
        assert_eq!(d.settings.do_not_allow_exceptions.source, Source::Default);
        assert!(d.local_rules_apply && d.unparsed_rules.is_empty() && !d.group_policy_known);
    }
    let plan = policy.fix_inbound(Protocol::Tcp, 3389);
    assert!(plan.not_fixable.is_empty());
    assert_eq!(plan.edits.len(), 1, "{name}: {:#?}", plan.edits);
    let e = &plan.edits[0];
    assert_eq!(e.value, "RemoteDesktop-UserMode-In-TCP");
    assert_eq!(
        e.reason,
        EditReason::ActivateRule {
            profiles: Profile::ALL.to_vec()
        }
    );
    let original = &policy
        .rules
        .iter()
        .find(|s| s.rule.id == e.value)
        .unwrap()
        .rule
        .text;
    assert_eq!(
        e.change,
        Change::SetSz(original.replacen("|Active=FALSE|", "|Active=TRUE|", 1))
    );
    // Applied by hivex, read back: allowed everywhere by that rule.
    let dir = tempfile::tempdir().unwrap();
    let path = write_copy(dir.path(), "SYSTEM", &bytes);
    merge(
        &path,
        SYSTEM_PREFIX,
        &edits_to_reg(&plan.edits, HiveKind::System, SYSTEM_PREFIX),
    );
    let after = read(&std::fs::read(&path).unwrap(), "ControlSet001", None);
    assert!(after.problems.is_empty());
    for d in after.inbound(Protocol::Tcp, 3389) {
        match &d.decision {
            Decision::Allowed { by } => {
                assert_eq!(by.len(), 1);
                assert!(
                    matches!(&by[0], Allower::Rule(r) if r.location.value == "RemoteDesktop-UserMode-In-TCP")
                );
            }
            other => panic!("{name} after the fix {:?}: {other:?}", d.profile),
        }
    }
    assert!(
        after.fix_inbound(Protocol::Tcp, 3389).edits.is_empty(),
        "a second fix changes nothing"
    );
}

#[test]
fn win10_ships_rdp_rules_inactive() {
    desktop_ships_rdp_off(win10(), "win10");
}

#[test]
fn win81_ships_rdp_rules_inactive() {
    desktop_ships_rdp_off(win81(), "win81");
}

/// Windows 7: RemoteDesktop-In-TCP (App=System, Profile=Domain|Private) is active, its Public
/// twin RemoteDesktop-In-TCP_1 is not. Same in both control sets.
#[test]
fn win7_allows_rdp_on_domain_and_private_only() {
    let bytes = win7();
    for cs in ["ControlSet001", "ControlSet002"] {
        let policy = read(&bytes, cs, None);
        let [domain, private, public] = policy.inbound(Protocol::Tcp, 3389);
        for d in [&domain, &private] {
            match &d.decision {
                Decision::Allowed { by } => {
                    let ids: Vec<_> = by
                        .iter()
                        .map(|a| match a {
                            Allower::Rule(r) => r.location.value.as_str(),
                            Allower::DefaultInboundAction { .. } => "default",
                        })
                        .collect();
                    assert_eq!(ids, ["RemoteDesktop-In-TCP"], "{cs} {:?}", d.profile);
                }
                other => panic!("{cs} {:?}: {other:?}", d.profile),
            }
        }
        assert_eq!(
            public.decision,
            Decision::Blocked {
                by: vec![Blocker::NoAllowRule]
            }
        );
        let plan = policy.fix_inbound(Protocol::Tcp, 3389);
        let ids: Vec<_> = plan.edits.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(ids, ["RemoteDesktop-In-TCP_1"], "{cs}");
        assert_eq!(
            plan.edits[0].reason,
            EditReason::ActivateRule {
                profiles: vec![Profile::Public]
            }
        );
        // UDP 3389 has no rule on Windows 7 at all: a new rule is added.
        let udp = policy.fix_inbound(Protocol::Udp, 3389);
        assert_eq!(udp.edits.len(), 1);
        assert_eq!(udp.edits[0].value, "RemoteDesktop-Custom-In-UDP-3389");
        let _ = id_of(&Blocker::NoAllowRule);
    }
}

/// RDP moved to 3390: no built-in rule covers it, so a custom rule is added; hivex writes it and
/// the policy read back allows 3390 on every profile and still blocks 3389.
#[test]
fn custom_port_gets_a_custom_rule() {
    let bytes = win10();
    let policy = read(&bytes, "ControlSet001", None);
    let plan = policy.fix_inbound(Protocol::Tcp, 3390);
    assert_eq!(plan.edits.len(), 1, "{:#?}", plan.edits);
    let e = &plan.edits[0];
    assert_eq!(e.value, "RemoteDesktop-Custom-In-TCP-3390");
    assert_eq!(e.key, format!(r"ControlSet001\{FW}\FirewallRules"));
    assert_eq!(
        e.change,
        Change::SetSz(
            "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3390|Name=Remote Desktop - Custom Port|"
                .into()
        )
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_copy(dir.path(), "SYSTEM", &bytes);
    merge(
        &path,
        SYSTEM_PREFIX,
        &edits_to_reg(&plan.edits, HiveKind::System, SYSTEM_PREFIX),
    );
    let after = read(&std::fs::read(&path).unwrap(), "ControlSet001", None);
    assert!(after.problems.is_empty());
    for d in after.inbound(Protocol::Tcp, 3390) {
        assert!(matches!(d.decision, Decision::Allowed { .. }), "{d:?}");
    }
    for d in after.inbound(Protocol::Tcp, 3389) {
        assert!(matches!(d.decision, Decision::Blocked { .. }), "{d:?}");
    }
}

#[test]
fn decisions_serialize_as_tagged_enums() {
    let policy = read(&win7(), "ControlSet001", None);
    let v = serde_json::to_value(policy.inbound(Protocol::Tcp, 3389)).unwrap();
    assert_eq!(v[0]["profile"], "domain");
    assert_eq!(v[0]["decision"]["decision"], "allowed");
    assert_eq!(v[2]["decision"]["decision"], "blocked");
    assert_eq!(v[2]["decision"]["by"][0]["kind"], "no_allow_rule");
    let plan = serde_json::to_value(policy.fix_inbound(Protocol::Tcp, 3389)).unwrap();
    assert_eq!(plan["edits"][0]["change"]["op"], "set_sz");
    assert_eq!(plan["edits"][0]["reason"]["kind"], "activate_rule");
}
