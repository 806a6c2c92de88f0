//! SCM event counts by id against libevtx's `evtxexport`, an independent reader.
//!
//! `golden/*.scm-counts` were made by `golden/regen.sh`. For intact logs our counts must equal
//! evtxexport's; for damaged ones we read more than evtxexport (it stops at the first bad record
//! of a chunk, we resynchronise), so each of its counts must be at most ours and ours are pinned
//! in `tests/damaged.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Logs evtxexport reads in full.
const INTACT: &[&str] = &[
    "srv2008r2-System",
    "srv2012r2-System",
    "plaso-System2",
    "win10-rathbun-System",
    "win10-belkasoft-System",
    "win10-aptsim-System",
    "win10-vss7-System",
    "sample_with_a_bad_chunk_magic",
    "Application_no_crc32",
];
/// Logs where we recover records evtxexport does not.
const DAMAGED: &[&str] = &["sample-with-zero-data-size-event"];

type Counts = BTreeMap<u16, u64>;

fn ours(name: &str) -> Counts {
    let path = fixtures::path(&format!("evtx/{name}.evtx"));
    let report = evidence::read_log_file(path, &evidence::Query::default()).unwrap();
    let mut counts = Counts::new();
    for event in &report.events {
        *counts.entry(event.event_id).or_default() += 1;
    }
    counts
}

fn parse_counts(text: &str) -> Counts {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (id, n) = l.split_once(' ').expect("`id count` lines");
            (id.parse().unwrap(), n.trim().parse().unwrap())
        })
        .collect()
}

fn golden(name: &str) -> Counts {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.scm-counts"));
    parse_counts(&std::fs::read_to_string(path).unwrap())
}

/// The same reading of evtxexport's text output as `regen.sh`'s awk.
fn evtxexport_counts(output: &str) -> Counts {
    let mut counts = Counts::new();
    let mut scm = false;
    for line in output.lines() {
        if line.starts_with("Event number") {
            scm = false;
        } else if let Some(rest) = line.strip_prefix("Source name") {
            scm = rest.trim_start().trim_start_matches(':').trim() == "Service Control Manager";
        } else if line.starts_with("Event identifier") && scm {
            let open = line.rfind('(').unwrap();
            let close = line.rfind(')').unwrap();
            let id: u64 = line[open + 1..close].parse().unwrap();
            *counts.entry((id % 65536) as u16).or_default() += 1;
        }
    }
    counts
}

fn assert_subset(name: &str, theirs: &Counts, ours: &Counts) {
    for (id, n) in theirs {
        let mine = ours.get(id).copied().unwrap_or(0);
        assert!(mine >= *n, "{name}: event {id}: evtxexport {n}, we {mine}");
    }
}

#[test]
fn counts_match_golden_files() {
    for name in INTACT {
        assert_eq!(ours(name), golden(name), "{name}");
    }
    for name in DAMAGED {
        assert_subset(name, &golden(name), &ours(name));
    }
}

#[test]
fn counts_match_evtxexport_live() {
    let found = Command::new("evtxexport").arg("-h").output().is_ok();
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("evtxexport is not on PATH (install libevtx-utils); CI must run this oracle");
        }
        eprintln!("skipped: evtxexport is not on PATH (install libevtx-utils)");
        return;
    }
    for name in INTACT.iter().chain(DAMAGED) {
        let path = fixtures::path(&format!("evtx/{name}.evtx"));
        let out = Command::new("evtxexport").arg(&path).output().unwrap();
        let theirs = evtxexport_counts(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            theirs,
            golden(name),
            "{name}: golden file is stale, run regen.sh"
        );
        if INTACT.contains(name) {
            assert_eq!(ours(name), theirs, "{name}");
        } else {
            assert_subset(name, &theirs, &ours(name));
        }
    }
}
