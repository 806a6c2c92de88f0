//! Any text given to the firewall rule parser: `Rule::parse` returns a rule or an error naming
//! the rule and the field, never panics; a rule gives back its text byte for byte, and setting
//! `Active` gives a string that parses to the same rule with that flag.
//!
//! Input: UTF-8 (lossy) text; the part before the first newline is the rule id. Seeds: the real
//! rule strings, one per file (`hivexregedit --export` of a `FirewallRules` key, decoded).
#![no_main]

use firewall::Rule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let (id, text) = input.split_once('\n').unwrap_or(("fuzz", &input));
    match Rule::parse(id, text) {
        Ok(rule) => {
            assert_eq!(rule.to_text(), text);
            for (value, active) in [("TRUE", true), ("FALSE", false)] {
                let changed = rule.with_field("Active", value);
                let back = Rule::parse(id, &changed).expect("a rule with Active changed parses");
                assert_eq!(back.active, active);
                assert_eq!(back.action, rule.action);
                assert_eq!(back.local_ports, rule.local_ports);
                let _ = back.program(firewall::Listener::TermService);
            }
            let _ = rule.matches_port(6, 3389);
        }
        Err(e) => {
            assert!(e.rule_id.chars().count() <= 123);
            let _ = e.to_string();
        }
    }
});
