//! The "cannot RDP" rules, table-driven from `tests/rdp-cases/cases.toml`: for each case a folder
//! target (`Windows/System32/config/SYSTEM` and `SOFTWARE`) is built from the real SYSTEM hive and
//! the test SOFTWARE hive of its base, broken by hivex's `hivexregedit --merge` (never by winrescue),
//! then `diagnose --json` must name the rule and the location, `repair --apply` must leave what
//! `hivexget` reads as the case says, and `undo` must give the broken hives back bit for bit.
//! The healthy entries (RDP turned on, nothing else) must raise no blocking finding.
//!
//! A case marked `manual = true` has no automatic fix: `repair --apply` must refuse it (exit 4)
//! and leave the hives bit for bit as they were.
//!
//! A case marked `pending = true` has no rule on main yet: the test then asserts that diagnose
//! indeed does not report it as broken, so the marker fails the day the rule arrives.
//! `tests/rdp-cases/check-cases.sh` checks the same table with hivex alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::sync::{Mutex, OnceLock};

use assert_cmd::Command;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Table {
    base: BTreeMap<String, Base>,
    case: Vec<Case>,
    healthy: Vec<Healthy>,
}

#[derive(Deserialize)]
struct Base {
    system: String,
    /// None: the base has no SOFTWARE hive (no test one is built for Windows 8.1); the rules
    /// that read it then say "not checked".
    software: Option<String>,
}

#[derive(Deserialize)]
struct Where {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct After {
    key: String,
    value: String,
    data: Vec<String>,
    #[serde(default = "system")]
    hive: String,
}

fn system() -> String {
    "SYSTEM".to_string()
}

#[derive(Deserialize)]
struct Case {
    name: String,
    rule: String,
    base: String,
    hive: String,
    prelude: String,
    reg: String,
    #[serde(rename = "where")]
    at: Where,
    after: Vec<After>,
    #[serde(default)]
    notice: bool,
    #[serde(default)]
    pending: bool,
    #[serde(default)]
    manual: bool,
    #[serde(default)]
    not_installed: bool,
}

#[derive(Deserialize)]
struct Healthy {
    name: String,
    base: String,
    prelude: String,
    hive: Option<String>,
    reg: Option<String>,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rdp-cases")
}

fn table() -> Table {
    let text = std::fs::read_to_string(cases_dir().join("cases.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

/// hivex is the independent tool that breaks and reads the hives: without it the cases cannot
/// run, and that is a failure, not a skip.
fn require_hivex() {
    for tool in ["hivexregedit", "hivexget"] {
        assert!(
            Std::new(tool).arg("--help").output().is_ok(),
            "{tool} (hivex) is required by these tests: install libhivex-bin / libwin-hivex-perl"
        );
    }
}

/// Builds `dir/Windows/System32/config/{SYSTEM,SOFTWARE}` from `base`, merges `prelude` into
/// SYSTEM and `reg` into `hive`. Returns the config folder.
fn build(dir: &Path, base: &Base, prelude: &str, change: Option<(&str, &str)>) -> PathBuf {
    let config = dir.join("Windows/System32/config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::copy(unpacked(&base.system), config.join("SYSTEM")).unwrap();
    if let Some(software) = &base.software {
        std::fs::copy(unpacked(software), config.join("SOFTWARE")).unwrap();
    }
    if prelude != "none" {
        merge(&config.join("SYSTEM"), prelude);
    }
    if let Some((hive, reg)) = change {
        merge(&config.join(hive), reg);
    }
    config
}

/// The decompressed copy of the repository file `file` (`testdata/....xz`), made once per test
/// process. Not `fixtures::path`: that crate may have been built from another checkout sharing
/// the target directory, and these files are read from this one.
fn unpacked(file: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let out = dir.path().join(file.replace('/', "__"));
    let _guard = LOCK.lock().unwrap();
    if !out.exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(file);
        let mut input = std::io::BufReader::new(std::fs::File::open(&src).unwrap());
        let mut data = Vec::new();
        lzma_rs::xz_decompress(&mut input, &mut data)
            .unwrap_or_else(|e| panic!("{}: {e:?}", src.display()));
        std::fs::write(&out, data).unwrap();
    }
    out
}

fn merge(hive: &Path, reg: &str) {
    let o = Std::new("hivexregedit")
        .arg("--merge")
        .arg(hive)
        .arg(cases_dir().join(reg))
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "hivexregedit --merge {reg}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What hivexget shows for `value` of `key`: its regedit notation (`dword:00000000`, `"text"`),
/// or "absent" when the value or the key does not exist. A key is only taken as absent when the
/// export of its nearest existing ancestor does not list it, not from hivexget's message.
fn shown(hive: &Path, key: &str, value: &str) -> String {
    let o = Std::new("hivexget").arg(hive).arg(key).output().unwrap();
    if o.status.success() {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some((name, data)) = split_value_line(line) {
                if name.eq_ignore_ascii_case(value) {
                    return data.to_string();
                }
            }
        }
        return "absent".to_string();
    }
    let parts: Vec<&str> = key.trim_start_matches('\\').split('\\').collect();
    for n in (0..parts.len()).rev() {
        let ancestor = format!("\\{}", parts[..n].join("\\"));
        let e = Std::new("hivexregedit")
            .args(["--export"])
            .arg(hive)
            .arg(&ancestor)
            .output()
            .unwrap();
        if e.status.success() {
            let listed = String::from_utf8_lossy(&e.stdout)
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("[{key}]")));
            assert!(
                !listed,
                "hivexget cannot read {key}, which exists: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return "absent".to_string();
        }
    }
    panic!("hivexregedit cannot read {} at all", hive.display());
}

/// `"name"=data` or `@=data` -> (name, data); names are unescaped.
fn split_value_line(line: &str) -> Option<(String, &str)> {
    if let Some(data) = line.strip_prefix("@=") {
        return Some((String::new(), data));
    }
    let rest = line.strip_prefix('"')?;
    let mut name = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?.1),
            '"' => return Some((name, rest[i + 1..].strip_prefix('=')?)),
            _ => name.push(c),
        }
    }
    None
}

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Runs `diagnose DIR --json`: (exit code, report).
fn diagnose(dir: &Path) -> (i32, serde_json::Value) {
    let o = winrescue()
        .arg("diagnose")
        .arg(dir)
        .arg("--json")
        .output()
        .unwrap();
    let code = o.status.code().unwrap_or(-1);
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "diagnose --json (exit {code}) printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (code, report)
}

fn findings<'a>(
    report: &'a serde_json::Value,
    rule: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |f| f["rule"] == rule)
}

/// Whether a finding's location is `at` in `hive`: the same key or one below it (compared
/// without case and without a leading backslash), and the same value when `at` names one.
fn names_location(finding: &serde_json::Value, hive: &str, at: &Where) -> bool {
    let want = at.key.trim_start_matches('\\').to_ascii_lowercase();
    finding["locations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|l| {
            let key = l["key"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('\\')
                .to_ascii_lowercase();
            l["hive"]
                .as_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(hive))
                && (key == want || key.starts_with(&format!("{want}\\")))
                && at.value.as_deref().is_none_or(|v| {
                    l["value"]
                        .as_str()
                        .is_some_and(|got| got.eq_ignore_ascii_case(v))
                })
        })
}

/// The blocking findings of a report, as "rule: title" lines.
fn blocking(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            (f["status"] == "broken" && f["severity"] != "notice")
                || (f["status"] == "cannot_tell" && f["severity"] == "blocks_rdp")
        })
        .map(|f| format!("{}: {}", f["rule"], f["title"]))
        .collect()
}

/// One case from breakage to undo; the problems found, empty when it passes.
fn run_case(t: &Table, c: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let tmp = tempfile::tempdir().unwrap();
    let config = build(
        tmp.path(),
        &t.base[&c.base],
        &c.prelude,
        Some((&c.hive, &c.reg)),
    );
    // A base without SOFTWARE (Windows 8.1) has only SYSTEM to compare.
    let hives: Vec<PathBuf> = [config.join("SYSTEM"), config.join("SOFTWARE")]
        .into_iter()
        .filter(|h| h.exists())
        .collect();
    let broken: Vec<Vec<u8>> = hives.iter().map(|h| sha256(h)).collect();

    let (code, report) = diagnose(tmp.path());
    let detected: Vec<&serde_json::Value> = findings(&report, &c.rule)
        .filter(|f| f["status"] == "broken")
        .collect();
    if c.pending {
        if !detected.is_empty() {
            problems.push(format!(
                "marked pending, but diagnose now reports {} as broken: remove `pending`",
                c.rule
            ));
        }
        return problems;
    }
    // A notice does not block RDP by itself: the exit code then follows the other findings
    // (port 3390 also makes the firewall block RDP), and must agree with them.
    let want_code = if c.notice && blocking(&report).is_empty() {
        0
    } else {
        1
    };
    if code != want_code {
        problems.push(format!(
            "diagnose exit {code}, want {want_code} (blocking: {:?})",
            blocking(&report)
        ));
    }
    if detected.is_empty() {
        let seen: Vec<String> = findings(&report, &c.rule)
            .map(|f| format!("{}", f["status"]))
            .collect();
        problems.push(format!(
            "no broken finding {} (its statuses: {seen:?}; blocking: {:?})",
            c.rule,
            blocking(&report)
        ));
        return problems;
    }
    if !detected
        .iter()
        .any(|f| (f["severity"] == "notice") == c.notice)
    {
        problems.push(format!(
            "finding {} has severity {}, the table says notice = {}",
            c.rule, detected[0]["severity"], c.notice
        ));
    }
    if !detected.iter().any(|f| names_location(f, &c.hive, &c.at)) {
        problems.push(format!(
            "finding {} does not name {} {} {:?}: {}",
            c.rule,
            c.hive,
            c.at.key,
            c.at.value,
            serde_json::to_string(&detected[0]["locations"]).unwrap()
        ));
    }

    // A plain repair fixes what blocks RDP; a notice is fixed when asked for by its rule id.
    let mut repair = winrescue();
    repair
        .arg("repair")
        .arg(tmp.path())
        .arg("--apply")
        .arg("--json");
    if c.notice {
        repair.arg("--only").arg(&c.rule);
    }
    let o = repair.output().unwrap();
    if c.manual {
        // No automatic fix: the repair must refuse (exit 4) and write nothing.
        if o.status.code() != Some(4) {
            problems.push(format!(
                "repair --apply of a finding without automatic fix: exit {:?}, want 4 (refused): {}",
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        for (h, want) in hives.iter().zip(&broken) {
            if sha256(h) != *want {
                problems.push(format!("the refused repair changed {}", h.display()));
            }
        }
        return problems;
    }
    if !o.status.success() {
        problems.push(format!(
            "repair --apply exit {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
        return problems;
    }
    let repaired: serde_json::Value = match serde_json::from_slice(&o.stdout) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("repair --apply --json printed no JSON ({e})"));
            return problems;
        }
    };
    for a in &c.after {
        let got = shown(&config.join(&a.hive), &a.key, &a.value);
        if !a.data.contains(&got) {
            problems.push(format!(
                "after repair hivexget shows {} {} = {got}, want one of {:?}",
                a.key, a.value, a.data
            ));
        }
    }
    let Some(journal) = repaired["outcome"]["written"]["undo_journal"].as_str() else {
        problems.push(format!(
            "repair wrote nothing (applied {}, fixing {}, changes {})",
            repaired["applied"], repaired["fixing"], repaired["changes"]
        ));
        return problems;
    };
    let o = winrescue().arg("undo").arg(journal).output().unwrap();
    if !o.status.success() {
        problems.push(format!(
            "undo exit {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    for (h, want) in hives.iter().zip(&broken) {
        if sha256(h) != *want {
            problems.push(format!(
                "after undo {} is not the broken hive bit for bit",
                h.display()
            ));
        }
    }
    problems
}

#[test]
fn every_case_is_detected_repaired_and_undone() {
    require_hivex();
    let t = table();
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    for c in &t.case {
        let problems = run_case(&t, c);
        if c.pending {
            pending.push(format!("{} ({})", c.name, c.rule));
        }
        for p in problems {
            failed.push(format!("{}: {p}", c.name));
        }
    }
    if !pending.is_empty() {
        eprintln!(
            "pending (no rule yet, asserted not detected): {}",
            pending.join(", ")
        );
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
fn healthy_bases_raise_no_false_alarm() {
    require_hivex();
    let t = table();
    let mut failed = Vec::new();
    for h in &t.healthy {
        let tmp = tempfile::tempdir().unwrap();
        let change = h.reg.as_deref().map(|r| (h.hive.as_deref().unwrap(), r));
        build(tmp.path(), &t.base[&h.base], &h.prelude, change);
        let (code, report) = diagnose(tmp.path());
        // Nothing blocking must mean the rules ran and passed, not that none ran.
        if report["findings"].as_array().is_none_or(|f| f.is_empty()) {
            failed.push(format!("{}: the report has no findings at all", h.name));
            continue;
        }
        let b = blocking(&report);
        if code != 0 || !b.is_empty() {
            failed.push(format!("{}: diagnose exit {code}, blocking {b:?}", h.name));
        }
        // Not even a notice, and no check left undecided: these are healthy installs.
        let doubtful: Vec<String> = report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["status"] == "broken" || f["status"] == "cannot_tell")
            .map(|f| format!("{} {}: {}", f["rule"], f["status"], f["title"]))
            .collect();
        if !doubtful.is_empty() {
            failed.push(format!("{}: {doubtful:?}", h.name));
        }
        // Each rule a case of this base breaks must have run and said healthy (not "not
        // checked"): the SOFTWARE rules read the folder's SOFTWARE hive. A case that installs
        // what the base lacks (the Azure VM agent) must find it "not checked" there instead.
        for c in t.case.iter().filter(|c| c.base == h.base && !c.pending) {
            let statuses: Vec<&serde_json::Value> =
                findings(&report, &c.rule).map(|f| &f["status"]).collect();
            let want = if c.not_installed {
                "not_checked"
            } else {
                "healthy"
            };
            if statuses.is_empty() || statuses.iter().any(|s| *s != want) {
                failed.push(format!("{}: rule {} says {statuses:?}", h.name, c.rule));
            }
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

/// The table itself: names unique, every .reg it names exists, every .reg here is named.
#[test]
fn the_case_table_is_consistent() {
    let t = table();
    let mut names = std::collections::BTreeSet::new();
    let mut used = std::collections::BTreeSet::new();
    for c in &t.case {
        assert!(names.insert(c.name.clone()), "{}: name twice", c.name);
        assert!(
            t.base.contains_key(&c.base),
            "{}: no base {}",
            c.name,
            c.base
        );
        assert!(
            c.hive != "SOFTWARE" || t.base[&c.base].software.is_some(),
            "{}: a SOFTWARE case needs a base with a SOFTWARE hive",
            c.name
        );
        assert!(
            ["SYSTEM", "SOFTWARE"].contains(&c.hive.as_str()),
            "{}: hive {}",
            c.name,
            c.hive
        );
        assert!(
            !c.after.is_empty() || c.manual,
            "{}: nothing to check after repair",
            c.name
        );
        used.insert(c.reg.clone());
        used.insert(c.prelude.clone());
    }
    for h in &t.healthy {
        assert!(names.insert(h.name.clone()), "{}: name twice", h.name);
        assert_eq!(
            h.hive.is_some(),
            h.reg.is_some(),
            "{}: hive and reg",
            h.name
        );
        used.insert(h.prelude.clone());
        used.extend(h.reg.clone());
    }
    used.remove("none");
    for r in &used {
        assert!(cases_dir().join(r).is_file(), "{r} is missing");
    }
    for e in std::fs::read_dir(cases_dir()).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.ends_with(".reg") {
            assert!(used.contains(&n), "{n} is not used by cases.toml");
        }
    }
}
