//! The rule parser: every error names the rule and the field; property tests that it never
//! panics, that the real rule strings of every hive round-trip byte for byte, that one field
//! changes and nothing else, and that field order does not change the meaning.

mod common;

use common::*;
use firewall::rule::{Action, Direction, PortKeyword, PortSpec, Version};
use firewall::{ParseErrorKind, Profile, Rule};
use proptest::prelude::*;

/// The rule strings of every real SYSTEM hive (every control set), as (id, text).
fn real_rules() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (bytes, sets) in [
        (win7(), &["ControlSet001", "ControlSet002"][..]),
        (win81(), &["ControlSet001"][..]),
        (win10(), &["ControlSet001"][..]),
    ] {
        for cs in sets {
            let p = read(&bytes, cs, None);
            assert!(p.problems.is_empty());
            out.extend(p.rules.into_iter().map(|s| (s.rule.id, s.rule.text)));
        }
    }
    out
}

#[test]
fn parses_the_documented_example() {
    let text = "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=3389|LPort2_10=5000-5010|LPort=RPC-EPMap|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=x|EmbedCtxt=@FirewallAPI.dll,-28752|RA4=LocalSubnet|Edge=TRUE|";
    let r = Rule::parse("RemoteDesktop-UserMode-In-TCP", text).unwrap();
    assert_eq!(
        r.version,
        Version {
            major: 2,
            minor: 30
        }
    );
    assert_eq!(r.action, Action::Allow);
    assert_eq!(r.direction, Direction::In);
    assert!(r.active && r.edge);
    assert_eq!(r.profiles, [Profile::Domain, Profile::Private]);
    assert_eq!(r.protocol, Some(6));
    assert_eq!(
        r.local_ports,
        [
            PortSpec::Single(3389),
            PortSpec::Range(5000, 5010),
            PortSpec::Keyword(PortKeyword::RpcEpMap)
        ]
    );
    assert!(
        r.matches_port(6, 3389)
            && r.matches_port(6, 5005)
            && !r.matches_port(6, 135)
            && !r.matches_port(17, 3389)
    );
    assert!(r.applies_to(Profile::Private) && !r.applies_to(Profile::Public));
    assert_eq!(r.conditions.len(), 1);
    assert_eq!(r.to_text(), text);
    let on = r.with_field("Active", "FALSE");
    assert_eq!(on, text.replace("Active=TRUE", "Active=FALSE"));
    // Absent Profile and Protocol: every profile, any protocol.
    let any = Rule::parse("x", "v2.10|Action=Block|Dir=In|").unwrap();
    assert!(!any.active);
    assert!(Profile::ALL.iter().all(|&p| any.applies_to(p)) && any.matches_port(17, 1));
    // A missing Active= is inserted after Action=, where Windows writes it.
    assert_eq!(
        any.with_field("Active", "TRUE"),
        "v2.10|Action=Block|Active=TRUE|Dir=In|"
    );
}

#[test]
fn every_error_names_the_rule_and_the_field() {
    let cases: &[(&str, &str, ParseErrorKind)] = &[
        (
            "2.10|Action=Allow|Dir=In|",
            "version",
            ParseErrorKind::BadVersion,
        ),
        (
            "v2.300|Action=Allow|Dir=In|",
            "version",
            ParseErrorKind::BadVersion,
        ),
        (
            "v2.10|Action=Allow||Dir=In|",
            "field 2",
            ParseErrorKind::EmptyField,
        ),
        (
            "v2.10|Action=Allow|Dir|",
            "Dir",
            ParseErrorKind::MissingEquals,
        ),
        (
            "v2.10|Action=Allow|Action=Block|Dir=In|",
            "Action",
            ParseErrorKind::Duplicate,
        ),
        ("v2.10|Dir=In|", "Action", ParseErrorKind::Missing),
        ("v2.10|Action=Allow|", "Dir", ParseErrorKind::Missing),
        (
            "v2.10|Action=Deny|Dir=In|",
            "Action",
            ParseErrorKind::BadAction,
        ),
        (
            "v2.10|Action=Allow|Dir=Both|",
            "Dir",
            ParseErrorKind::BadDirection,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Active=yes|",
            "Active",
            ParseErrorKind::BadBool,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Profile=Home|",
            "Profile",
            ParseErrorKind::BadProfile,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Protocol=256|",
            "Protocol",
            ParseErrorKind::BadProtocol,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Protocol=6|LPort=70000|",
            "LPort",
            ParseErrorKind::BadPort,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Protocol=6|LPort=20-10|",
            "LPort",
            ParseErrorKind::BadPortRange,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Protocol=6|LPort=3389,3390|",
            "LPort",
            ParseErrorKind::UnknownPortKeyword,
        ),
        (
            "v2.10|Action=Allow|Dir=In|LPort=3389|",
            "LPort",
            ParseErrorKind::PortWithoutTcpOrUdp,
        ),
        (
            "v2.10|Action=Allow|Dir=In|Protocol=1|RPort=1|",
            "RPort",
            ParseErrorKind::PortWithoutTcpOrUdp,
        ),
    ];
    for (text, field, kind) in cases {
        let e = Rule::parse("Rule-42", text).unwrap_err();
        assert_eq!((e.field.as_str(), e.kind), (*field, *kind), "{text}");
        assert_eq!(e.rule_id, "Rule-42");
        let msg = e.to_string();
        assert!(msg.contains("Rule-42") && msg.contains(field), "{msg}");
    }
    // A huge value is clipped in the error.
    let long = format!("v2.10|Action={}|Dir=In|", "x".repeat(100_000));
    assert!(Rule::parse("r", &long).unwrap_err().value.len() < 200);
}

#[test]
fn real_rules_round_trip() {
    let rules = real_rules();
    assert!(rules.len() > 1400, "{}", rules.len());
    for (id, text) in &rules {
        let r = Rule::parse(id, text).unwrap();
        assert_eq!(r.to_text(), text);
        // Setting a field to the value it has changes nothing.
        let active = if r.active { "TRUE" } else { "FALSE" };
        if text.contains("|Active=") {
            assert_eq!(&r.with_field("Active", active), text, "{id}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_string(id in ".{0,20}", text in ".{0,300}") {
        if let Ok(r) = Rule::parse(&id, &text) {
            prop_assert_eq!(r.to_text(), text.as_str());
        }
    }

    #[test]
    fn never_panics_on_rule_like_strings(
        text in "[vV]?[0-9]{0,4}\\.?[0-9]{0,4}(\\|(Action|Dir|Active|Protocol|Profile|LPort|LPort2_10|RPort|App|Svc|RA4|Edge|X)?=?[A-Za-z0-9*.:/\\\\-]{0,8}){0,10}\\|?"
    ) {
        if let Ok(r) = Rule::parse("id", &text) {
            prop_assert_eq!(r.to_text(), text.as_str());
            let changed = r.with_field("Active", "TRUE");
            prop_assert!(Rule::parse("id", &changed).unwrap().active);
        }
    }
}

fn segments(text: &str) -> Vec<&str> {
    text.split('|').collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// One field of a real rule changed: the rule reads back with the new value and every other
    /// segment is byte-identical.
    #[test]
    fn with_field_changes_one_field_only(pick in any::<prop::sample::Index>(), active in any::<bool>()) {
        let rules = REAL.with(|r| r.clone());
        let (id, text) = pick.get(&rules);
        let r = Rule::parse(id, text).unwrap();
        let value = if active { "TRUE" } else { "FALSE" };
        let changed = r.with_field("Active", value);
        let back = Rule::parse(id, &changed).unwrap();
        prop_assert_eq!(back.active, active);
        let (a, b) = (segments(text), segments(&changed));
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            if !x.starts_with("Active=") {
                prop_assert_eq!(x, y);
            }
        }
        let mut expect = back.clone();
        expect.active = r.active;
        expect.text = r.text.clone();
        prop_assert_eq!(expect, r);
    }

    /// The fields of a real rule in another order: the same meaning, and the text as given.
    #[test]
    fn field_order_does_not_change_meaning(pick in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let rules = REAL.with(|r| r.clone());
        let (id, text) = pick.get(&rules);
        let r = Rule::parse(id, text).unwrap();
        let mut fields: Vec<&str> = segments(text)[1..].iter().copied().filter(|s| !s.is_empty()).collect();
        // A small deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..fields.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            fields.swap(i, (s >> 33) as usize % (i + 1));
        }
        let shuffled = format!("{}|{}|", segments(text)[0], fields.join("|"));
        let back = Rule::parse(id, &shuffled).unwrap();
        prop_assert_eq!(back.to_text(), shuffled.as_str());
        prop_assert_eq!(back.action, r.action);
        prop_assert_eq!(back.direction, r.direction);
        prop_assert_eq!(back.active, r.active);
        prop_assert_eq!(back.protocol, r.protocol);
        let (mut p1, mut p2) = (back.profiles.clone(), r.profiles.clone());
        p1.sort();
        p2.sort();
        prop_assert_eq!(p1, p2);
        prop_assert_eq!(back.local_ports.len(), r.local_ports.len());
        prop_assert_eq!(back.conditions.len(), r.conditions.len());
        prop_assert_eq!(back.app, r.app);
        prop_assert_eq!(back.service, r.service);
    }
}

thread_local! {
    static REAL: Vec<(String, String)> = real_rules();
}
