//! The healthy descriptors of the access rules (`data/access-baselines.json`) are the real hives'
//! own: each is the descriptor of its key in the control set Windows boots, in the real SYSTEM
//! hive of its Windows version, and its ACEs name the same SIDs in the same order as
//! `reglookup -s` shows for that key. `UPDATE_ACCESS_BASELINES=1` rewrites the file from the hives.
//!
//! Every real hive is healthy: no access rule finds a denial there.

use std::path::Path;
use std::process::Command;

use regf::security::{key_rights, SecurityDescriptor, MAXIMUM_ALLOWED};
use regf::Hive;
use rules::access::{
    baselines, service_token, Baseline, Baselines, Grant, Measured, ServiceConfig, RULES, USABLE,
};
use winsvc::{Family, SystemModel};

const HIVES: [(Family, &str); 3] = [
    (Family::Windows7, "hives/win7-SYSTEM"),
    (Family::Windows8, "hives/win81-dirty-nologs-SYSTEM"),
    (Family::Windows10, "hives/win10-dirty-SYSTEM"),
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The baselines as the hives give them: the healthy descriptors, each service's token
/// configuration, and the rights each version grants the service's token on each needed key.
fn from_hives() -> Baselines {
    let mut out = Vec::new();
    let mut services = Vec::new();
    let mut measured: Vec<Measured> = Vec::new();
    for (family, name) in HIVES {
        let hive = Hive::open(fixtures::bytes(name)).unwrap();
        let model = SystemModel::read(&hive, None).unwrap();
        let cs = model.boot_set().unwrap();
        for rule in &RULES {
            let svc = cs
                .service(rule.service)
                .unwrap_or_else(|| panic!("{name}: no {}", rule.service));
            services.push(ServiceConfig {
                family,
                hive: format!("testdata/{name}.xz"),
                service: rule.service.into(),
                object_name: svc.object_name.ok().cloned(),
                service_sid_type: svc.service_sid_type.ok().copied().unwrap_or(0),
            });
            let (token, _) = service_token(svc).unwrap();
            for need in rule.needs {
                // A `*` is measured on every subkey: the grant is the one all of them give.
                let keys: Vec<String> = match need.key.strip_suffix(r"\*") {
                    Some(parent) => {
                        let k = hive
                            .key(&format!(r"{}\{parent}", cs.name))
                            .unwrap()
                            .unwrap_or_else(|| panic!("{name}: no {parent}"));
                        k.subkeys()
                            .unwrap()
                            .map(|s| format!(r"{parent}\{}", s.unwrap().name().to_string_lossy()))
                            .collect()
                    }
                    None => vec![need.key.to_string()],
                };
                let granted = keys.iter().fold(u32::MAX, |m, key| {
                    let k = hive
                        .key(&format!(r"{}\{key}", cs.name))
                        .unwrap()
                        .unwrap_or_else(|| panic!("{name}: no {key}"));
                    let sd = SecurityDescriptor::parse(k.security().unwrap().descriptor).unwrap();
                    m & sd.access(&token, MAXIMUM_ALLOWED).granted
                });
                let grant = Grant {
                    family,
                    granted: format!("0x{granted:x}"),
                };
                match measured
                    .iter_mut()
                    .find(|m| m.service == rule.service && m.key == need.key)
                {
                    Some(m) => m.grants.push(grant),
                    None => measured.push(Measured {
                        service: rule.service.into(),
                        key: need.key.into(),
                        grants: vec![grant],
                        required: String::new(),
                        required_names: Vec::new(),
                    }),
                }
            }
        }
        let mut keys: Vec<&str> = RULES
            .iter()
            .flat_map(|r| r.needs.iter().map(|n| n.key))
            .collect();
        keys.dedup();
        for key in keys {
            let descriptors: Vec<Vec<u8>> = match key.strip_suffix(r"\*") {
                Some(parent) => {
                    let k = hive
                        .key(&format!(r"{}\{parent}", cs.name))
                        .unwrap()
                        .unwrap_or_else(|| panic!("{name}: no {parent}"));
                    k.subkeys()
                        .unwrap()
                        .map(|s| s.unwrap().security().unwrap().descriptor.to_vec())
                        .collect()
                }
                None => {
                    let k = hive
                        .key(&format!(r"{}\{key}", cs.name))
                        .unwrap()
                        .unwrap_or_else(|| panic!("{name}: no {key}"));
                    vec![k.security().unwrap().descriptor.to_vec()]
                }
            };
            let first = descriptors
                .first()
                .unwrap_or_else(|| panic!("{name}: {key} has no subkey"));
            // A `*` stands for every subkey: they must all have the same healthy DACL (owners
            // differ: the repair keeps the owner).
            let dacl = |d: &[u8]| SecurityDescriptor::parse(d).unwrap().dacl;
            assert!(
                descriptors.iter().all(|d| dacl(d) == dacl(first)),
                "{name}: the DACLs of {key} differ"
            );
            let sd = SecurityDescriptor::parse(first).unwrap();
            out.push(Baseline {
                family,
                hive: format!("testdata/{name}.xz"),
                key: key.to_string(),
                sddl: sd.sddl(),
                descriptor: hex(first),
            });
        }
    }
    for m in &mut measured {
        let required = m.grants.iter().fold(USABLE, |r, g| {
            r & u32::from_str_radix(g.granted.trim_start_matches("0x"), 16).unwrap()
        });
        m.required = format!("0x{required:x}");
        m.required_names = key_rights(required);
    }
    Baselines {
        source: "Read by crates/rules/tests/access_baselines.rs (UPDATE_ACCESS_BASELINES=1) from the real SYSTEM hives, in the control set Select\\Default names; `reglookup -s` shows the same ACEs. `services`: each rule's service's ObjectName and ServiceSidType there. `measured`: the rights each hive grants that service's token (MAXIMUM_ALLOWED, for a `*` the intersection over every subkey) on each key the rule needs; `required` is their intersection within read, set value, create subkey and delete (0x3001f), the figure the rule requires.".into(),
        services,
        measured,
        baselines: out,
    }
}

#[test]
fn every_required_right_is_the_measured_one() {
    let want = from_hives();
    let mut wrong = Vec::new();
    for rule in &RULES {
        for need in rule.needs {
            let m = want
                .measured
                .iter()
                .find(|m| m.service == rule.service && m.key == need.key)
                .unwrap();
            if format!("0x{:x}", need.rights) != m.required {
                wrong.push(format!(
                    "{} {}: the rule requires 0x{:x}, the hives grant {} ({:?})",
                    rule.service, need.key, need.rights, m.required, m.grants
                ));
            }
            // What a healthy install grants is never less than what is required (no version
            // is broken by its own rights).
            assert!(m.required != "0x0", "{} {}", rule.service, need.key);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn baselines_are_the_real_hives_descriptors() {
    let want = from_hives();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/access-baselines.json");
    if std::env::var_os("UPDATE_ACCESS_BASELINES").is_some() {
        std::fs::write(&file, serde_json::to_string_pretty(&want).unwrap() + "\n").unwrap();
    }
    let have = baselines();
    assert_eq!(
        serde_json::to_value(have).unwrap(),
        serde_json::to_value(&want).unwrap(),
        "data/access-baselines.json differs from the hives (UPDATE_ACCESS_BASELINES=1 rewrites it)"
    );
}

/// reglookup's DACL column of `key` (`/`-separated, as reglookup prints paths).
fn reglookup_dacl(hive: &Path, key: &str) -> String {
    let out = Command::new("reglookup")
        .args(["-s", "-t", "KEY", "-p", key])
        .arg(hive)
        .output()
        .expect("reglookup is required (apt-get install reglookup)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| {
            l.split(',')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(key))
        })
        .unwrap_or_else(|| panic!("reglookup shows no {key}"));
    line.split(',').nth(7).unwrap().to_string()
}

#[test]
fn baselines_name_the_sids_reglookup_shows_in_its_order() {
    let mut compared = 0;
    for b in &baselines().baselines {
        if b.key.ends_with('*') {
            continue;
        }
        let name = b
            .hive
            .strip_prefix("testdata/")
            .and_then(|n| n.strip_suffix(".xz"))
            .unwrap();
        let path = fixtures::path(name);
        let hive = Hive::open(std::fs::read(&path).unwrap()).unwrap();
        let cs = SystemModel::read(&hive, None)
            .unwrap()
            .boot_set()
            .unwrap()
            .name
            .clone();
        let dacl = reglookup_dacl(&path, &format!("/{cs}/{}", b.key.replace('\\', "/")));
        let theirs: Vec<&str> = dacl
            .split('|')
            .map(|ace| ace.split(':').next().unwrap())
            .collect();
        let bytes: Vec<u8> = (0..b.descriptor.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&b.descriptor[i..i + 2], 16).unwrap())
            .collect();
        let sd = SecurityDescriptor::parse(&bytes).unwrap();
        let ours: Vec<String> = sd
            .dacl
            .acl()
            .unwrap()
            .aces
            .iter()
            .map(|a| a.sid.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(ours, theirs, "{} {}", b.hive, b.key);
        compared += 1;
    }
    assert!(compared >= 24, "{compared}");
}

#[test]
fn no_real_hive_has_an_access_finding() {
    for (_, name) in HIVES {
        let path = fixtures::path(name);
        let report = rules::diagnose(
            &path,
            &rules::Selection {
                rules: RULES.iter().map(|r| r.id()).collect(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(report.findings.len(), RULES.len());
        for f in &report.findings {
            assert_eq!(f.status, rules::Status::Healthy, "{name}: {}", f.title);
            assert!(f.access.is_empty());
            let checked: usize = f
                .found
                .as_deref()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            // Every needed key was found (a `*` counts at least one subkey), in every control set.
            let rule = RULES.iter().find(|r| r.id() == f.rule).unwrap();
            let sets = SystemModel::read(&Hive::open(std::fs::read(&path).unwrap()).unwrap(), None)
                .unwrap()
                .control_sets
                .len();
            assert!(
                checked >= rule.needs.len() * sets,
                "{name}: {}: {checked}",
                f.rule
            );
        }
    }
}
