//! Log replay on the real dirty Windows 10 hive, and on damaged copies of its logs.

use regf::check::check;
use regf::log::{replay, LogInput};
use regf::Hive;

fn win10() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        fixtures::bytes("hives/win10-dirty-SYSTEM"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2"),
    )
}

fn count(bytes: &[u8]) -> (usize, usize) {
    let hive = Hive::open(bytes).unwrap();
    let (mut k, mut v) = (0, 0);
    hive.walk(
        |_, key| {
            k += 1;
            v += key.values().unwrap().count();
        },
        |p, e| panic!("{p}: {e}"),
    )
    .unwrap();
    (k, v)
}

#[test]
fn win10_both_logs_apply() {
    let (h, l1, l2) = win10();
    let r = replay(
        &h,
        &[
            LogInput {
                name: "SYSTEM.LOG1",
                data: &l1,
            },
            LogInput {
                name: "SYSTEM.LOG2",
                data: &l2,
            },
        ],
    )
    .unwrap();
    eprintln!("{:#?}", r.report);
    assert!(r.report.was_dirty);
    assert_eq!(r.report.sequence_range, Some((2107, 2130)));
    assert_eq!(r.report.entries_applied, 24);
    // 10 pages from LOG1 (2107..2110) and 305 from LOG2 (2111..2130).
    assert_eq!(r.report.pages_applied, 315);
    assert_eq!(
        r.report
            .logs
            .iter()
            .map(|l| l.pages_applied)
            .collect::<Vec<_>>(),
        [10, 305]
    );
    assert_eq!(r.report.hive_bins_after, 12591104);
    assert!(!r.report.incomplete);
    let report = check(&r.bytes);
    assert!(
        report.is_sound(),
        "{:#?}",
        report.errors().collect::<Vec<_>>()
    );
    assert_eq!(count(&r.bytes), (35595, 78901));
}

/// (offset, size, sequence) of every entry in a new-format log.
fn entries(log: &[u8]) -> Vec<(usize, usize, u32)> {
    let mut out = Vec::new();
    let mut off = 512;
    while log.get(off..off + 4) == Some(b"HvLE") {
        let size = u32::from_le_bytes(log[off + 4..off + 8].try_into().unwrap()) as usize;
        let seq = u32::from_le_bytes(log[off + 12..off + 16].try_into().unwrap());
        out.push((off, size, seq));
        off += size;
    }
    out
}

fn run(h: &[u8], l1: &[u8], l2: &[u8]) -> regf::log::Recovered {
    replay(
        h,
        &[
            LogInput {
                name: "SYSTEM.LOG1",
                data: l1,
            },
            LogInput {
                name: "SYSTEM.LOG2",
                data: l2,
            },
        ],
    )
    .unwrap()
}

fn entry_with_seq(log: &[u8], seq: u32) -> (usize, usize) {
    let e = entries(log).into_iter().find(|e| e.2 == seq).unwrap();
    (e.0, e.1)
}

#[test]
fn bad_hash_stops_before_the_damaged_entry() {
    let (h, l1, mut l2) = win10();
    let (off, _) = entry_with_seq(&l2, 2115);
    l2[off + 4096] ^= 0x55; // inside the entry's pages: Hash-1 no longer matches
    let r = run(&h, &l1, &l2);
    assert_eq!(r.report.sequence_range, Some((2107, 2114)));
    assert!(
        r.report.warnings.iter().any(|w| w.contains("Hash-1")),
        "{:?}",
        r.report.warnings
    );
    assert!(check(&r.bytes).is_sound());
}

#[test]
fn damaged_header_hash_stops_too() {
    let (h, l1, mut l2) = win10();
    let (off, _) = entry_with_seq(&l2, 2120);
    l2[off + 33] ^= 1; // Hash-2 itself
    let r = run(&h, &l1, &l2);
    assert_eq!(r.report.sequence_range, Some((2107, 2119)));
    assert!(
        r.report.warnings.iter().any(|w| w.contains("Hash-2")),
        "{:?}",
        r.report.warnings
    );
}

#[test]
fn a_gap_in_sequence_numbers_stops_the_replay() {
    let (h, l1, l2) = win10();
    let (off, size) = entry_with_seq(&l2, 2113);
    let mut cut = l2[..off].to_vec();
    cut.extend_from_slice(&l2[off + size..]);
    let r = run(&h, &l1, &cut);
    assert_eq!(r.report.sequence_range, Some((2107, 2112)));
    assert!(
        r.report
            .warnings
            .iter()
            .any(|w| w.contains("2113 was expected")),
        "{:?}",
        r.report.warnings
    );
}

#[test]
fn swapped_logs_give_the_same_result() {
    let (h, l1, l2) = win10();
    let normal = run(&h, &l1, &l2);
    let swapped = replay(
        &h,
        &[
            LogInput {
                name: "SYSTEM.LOG2",
                data: &l2,
            },
            LogInput {
                name: "SYSTEM.LOG1",
                data: &l1,
            },
        ],
    )
    .unwrap();
    assert_eq!(normal.bytes, swapped.bytes);
    assert_eq!(swapped.report.sequence_range, Some((2107, 2130)));
}

#[test]
fn a_truncated_log_applies_what_it_holds() {
    let (h, l1, l2) = win10();
    let (off, size) = entry_with_seq(&l2, 2118);
    let r = run(&h, &l1, &l2[..off + size / 2]);
    assert_eq!(r.report.sequence_range, Some((2107, 2117)));
    assert!(
        r.report.warnings.iter().any(|w| w.contains("truncated")),
        "{:?}",
        r.report.warnings
    );
    assert!(check(&r.bytes).is_sound());
}

#[test]
fn only_the_first_log_gives_a_partial_replay() {
    let (h, l1, _) = win10();
    let r = replay(
        &h,
        &[LogInput {
            name: "SYSTEM.LOG1",
            data: &l1,
        }],
    )
    .unwrap();
    assert_eq!(r.report.sequence_range, Some((2107, 2110)));
    assert!(check(&r.bytes).is_sound());
}

#[test]
fn logs_of_another_hive_are_refused() {
    let (_, l1, l2) = win10();
    let other = fixtures::bytes("hives/win81-dirty-nologs-SYSTEM");
    let r = run(&other, &l1, &l2);
    assert_eq!(r.report.entries_applied, 0);
    assert!(r.report.incomplete);
    assert_eq!(r.report.problems.len(), 2, "{:?}", r.report.problems);
    assert!(r.report.problems[0].contains("does not belong"));
    assert_eq!(r.bytes, other, "nothing may change");
}

#[test]
fn dirty_without_logs_is_read_but_flagged() {
    let h = fixtures::bytes("hives/win81-dirty-nologs-SYSTEM");
    let r = replay(&h, &[]).unwrap();
    assert!(r.report.was_dirty && r.report.incomplete);
    assert!(r.report.warnings[0].contains("no transaction logs"));
    assert_eq!(r.bytes, h);
}

#[test]
fn clean_hive_ignores_its_logs() {
    let (_, l1, l2) = win10();
    let h = fixtures::bytes("hives/win7-SYSTEM");
    let r = run(&h, &l1, &l2);
    assert!(!r.report.was_dirty);
    assert_eq!(r.bytes, h);
}

#[test]
fn invalid_primary_base_block_is_restored_from_the_newest_log() {
    let (mut h, l1, l2) = win10();
    h[508] ^= 0xFF; // break the checksum
    let r = run(&h, &l1, &l2);
    assert_eq!(r.report.base_block_from.as_deref(), Some("SYSTEM.LOG2"));
    // Only the newest log is used then (regf specification, "Multiple transaction log files").
    assert_eq!(r.report.sequence_range, Some((2111, 2130)));
    let base = regf::BaseBlock::parse(&r.bytes).unwrap();
    assert!(base.checksum_ok() && !base.is_dirty() && base.file_type == 0);
}

#[test]
fn next_sequence_is_above_everything_in_the_logs() {
    let (h, l1, l2) = win10();
    assert_eq!(run(&h, &l1, &l2).report.next_sequence, 2131);
}

/// Builds an old-format (Windows 8 and earlier) log that turns `before` into `after`: a base
/// block copy with file type 1, a "DIRT" bitmap of the 512-byte pages that differ, the pages.
fn old_format_log(before: &[u8], after: &[u8], stamp_ok: bool) -> Vec<u8> {
    let mut log = after[..512].to_vec();
    log[28..32].copy_from_slice(&1u32.to_le_bytes());
    if !stamp_ok {
        log[12] ^= 1;
    }
    let seq = u32::from_le_bytes(before[4..8].try_into().unwrap());
    log[4..8].copy_from_slice(&seq.to_le_bytes());
    log[8..12].copy_from_slice(&seq.to_le_bytes());
    regf::seal(&mut log);
    let bins = &after[4096..];
    let pages = bins.len() / 512;
    let mut bitmap = vec![0u8; pages.div_ceil(8)];
    let mut data = Vec::new();
    for p in 0..pages {
        if before[4096 + p * 512..4096 + (p + 1) * 512] != bins[p * 512..(p + 1) * 512] {
            bitmap[p / 8] |= 1 << (p % 8);
            data.extend_from_slice(&bins[p * 512..(p + 1) * 512]);
        }
    }
    log.extend_from_slice(b"DIRT");
    log.extend_from_slice(&bitmap);
    log.resize(log.len().div_ceil(512) * 512, 0);
    log.extend_from_slice(&data);
    log
}

#[test]
fn old_format_log_replays_its_dirty_pages() {
    let after = fixtures::bytes("hives/win7-SYSTEM");
    // "before" is the hive as the crash left it: one value and one key timestamp not yet written,
    // and the base block marked as being written.
    let hive = Hive::open(&after[..]).unwrap();
    let start = hive
        .key(r"ControlSet001\services\Dhcp")
        .unwrap()
        .unwrap()
        .value("Start")
        .unwrap()
        .unwrap();
    let mut before = after.clone();
    let at = 4096 + start.cell() as usize + 4 + 8; // the inline data of Start
    before[at] = 4;
    before[4096 + 0x20 + 8] ^= 0x7f; // some byte in the root key node's timestamp
    let seq = u32::from_le_bytes(before[4..8].try_into().unwrap());
    before[4..8].copy_from_slice(&(seq + 1).to_le_bytes());
    regf::seal(&mut before[..4096]);
    let log = old_format_log(&before, &after, true);

    let r = replay(
        &before,
        &[LogInput {
            name: "SYSTEM.LOG1",
            data: &log,
        }],
    )
    .unwrap();
    assert!(r.report.was_dirty && !r.report.incomplete);
    assert_eq!(r.report.pages_applied, 2);
    assert_eq!(r.bytes[4096..], after[4096..]);
    let base = regf::BaseBlock::parse(&r.bytes).unwrap();
    assert!(!base.is_dirty());

    // A log whose timestamp does not match belongs to an earlier write: not applied.
    let stale = old_format_log(&before, &after, false);
    let r = replay(
        &before,
        &[LogInput {
            name: "SYSTEM.LOG1",
            data: &stale,
        }],
    )
    .unwrap();
    assert!(r.report.incomplete);
    assert_eq!(r.bytes, before);
}

/// A hive read on demand with its logs laid over it (`Paged::open_replayed`) is the hive the
/// whole-file replay gives: the same report, base block and hive-bins size, and the same keys
/// and values (or the same errors) on a full walk, for each way the logs can end.
mod paged {
    use super::*;
    use regf::paged::ReadAt;
    use regf::Paged;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A primary in memory that counts the bytes read from it.
    struct Counting(Vec<u8>, Arc<AtomicUsize>);

    impl ReadAt for Counting {
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
            self.1.fetch_add(buf.len(), Ordering::SeqCst);
            self.0.read_exact_at(offset, buf)
        }
    }

    /// Every key with its values, and every error, in walk order.
    fn dump<B: regf::Source>(hive: &Hive<B>) -> Vec<String> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let walked = hive.walk(
            |path, k| {
                out.push(format!("[{path}]"));
                match k.values() {
                    Ok(values) => {
                        for v in values {
                            out.push(match v {
                                Ok(v) => format!("{}={:02x?}", v.name(), v.raw_data().ok()),
                                Err(e) => format!("error {e}"),
                            });
                        }
                    }
                    Err(e) => out.push(format!("values: {e}")),
                }
            },
            |p, e| errors.push(format!("{p}: {e}")),
        );
        out.extend(errors);
        if let Err(e) = walked {
            out.push(format!("walk: {e}"));
        }
        out
    }

    /// Opens `primary` paged with `logs`, and checks it against the whole-file replay.
    fn same_as_whole(primary: &[u8], logs: &[(&str, &[u8])]) -> regf::log::Replay {
        let inputs: Vec<LogInput<'_>> = logs
            .iter()
            .map(|&(name, data)| LogInput { name, data })
            .collect();
        let whole = replay(primary, &inputs).unwrap();
        let owned: Vec<(String, Vec<u8>)> = logs
            .iter()
            .map(|&(n, d)| (n.to_string(), d.to_vec()))
            .collect();
        let read = Arc::new(AtomicUsize::new(0));
        let (p, report) = Paged::open_replayed(
            Box::new(Counting(primary.to_vec(), read.clone())),
            primary.len() as u64,
            || Ok(owned),
        )
        .unwrap();
        let report = report.expect("a dirty hive has a replay report");
        assert_eq!(format!("{report:?}"), format!("{:?}", whole.report));
        assert_eq!(p.base_block_bytes(), &whole.bytes[..4096]);
        let base = regf::BaseBlock::parse(&whole.bytes).unwrap();
        assert_eq!(p.bins_len(), base.hive_bins_size as usize);
        // One key first: only a few bins of the primary are read for it.
        let before = read.load(Ordering::SeqCst);
        let lazy = Hive::open(&p).unwrap();
        if let Ok(Some(k)) = lazy.key(r"ControlSet001\Services\Dhcp") {
            let _ = k.value("Start");
            let cost = read.load(Ordering::SeqCst) - before;
            assert!(cost < primary.len() / 10, "{cost} bytes read for one key");
        }
        assert_eq!(dump(&lazy), dump(&Hive::open(&whole.bytes[..]).unwrap()));
        report
    }

    #[test]
    fn a_dirty_hive_read_on_demand_is_its_replay() {
        let (h, l1, l2) = win10();
        let r = same_as_whole(&h, &[("SYSTEM.LOG1", &l1), ("SYSTEM.LOG2", &l2)]);
        assert_eq!(r.sequence_range, Some((2107, 2130)));
        // A primary with no slack after its bins: the logs grow it past the end of the file.
        let bins = regf::BaseBlock::parse(&h).unwrap().hive_bins_size as usize;
        let r = same_as_whole(
            &h[..4096 + bins],
            &[("SYSTEM.LOG1", &l1), ("SYSTEM.LOG2", &l2)],
        );
        assert!(r.hive_bins_after as usize > bins, "{r:?}");

        // Where the logs end early, or damaged.
        let mut bad = l2.clone();
        bad[entry_with_seq(&l2, 2115).0 + 4096] ^= 0x55;
        same_as_whole(&h, &[("SYSTEM.LOG1", &l1), ("SYSTEM.LOG2", &bad)]);
        let (off, size) = entry_with_seq(&l2, 2118);
        same_as_whole(
            &h,
            &[("SYSTEM.LOG1", &l1), ("SYSTEM.LOG2", &l2[..off + size / 2])],
        );
        same_as_whole(&h, &[("SYSTEM.LOG1", &l1)]);
        same_as_whole(&h, &[("SYSTEM.LOG2", &l2), ("SYSTEM.LOG1", &l1)]);

        // The primary's base block broken: restored from the newest log.
        let mut broken = h.clone();
        broken[508] ^= 0xFF;
        let r = same_as_whole(&broken, &[("SYSTEM.LOG1", &l1), ("SYSTEM.LOG2", &l2)]);
        assert_eq!(r.base_block_from.as_deref(), Some("SYSTEM.LOG2"));

        // Nothing to apply: read as it is, flagged.
        let other = fixtures::bytes("hives/win81-dirty-nologs-SYSTEM");
        assert!(same_as_whole(&other, &[("SYSTEM.LOG1", &l1), ("SYSTEM.LOG2", &l2)]).incomplete);
        assert!(same_as_whole(&other, &[]).incomplete);
    }

    /// An old-format log (512-byte pages, a "DIRT" bitmap) laid over a paged hive.
    #[test]
    fn an_old_format_log_read_on_demand_is_its_replay() {
        let after = fixtures::bytes("hives/win7-SYSTEM");
        let mut before = after.clone();
        before[4096 + 0x20 + 8] ^= 0x7f;
        before[4096 + 0x3000 + 100] ^= 0x01;
        let seq = u32::from_le_bytes(before[4..8].try_into().unwrap());
        before[4..8].copy_from_slice(&(seq + 1).to_le_bytes());
        regf::seal(&mut before[..4096]);
        let log = old_format_log(&before, &after, true);
        let r = same_as_whole(&before, &[("SYSTEM.LOG1", &log)]);
        assert_eq!(r.pages_applied, 2);
    }

    /// A clean hive's logs are not even read.
    #[test]
    fn a_clean_hive_does_not_read_its_logs() {
        let h = fixtures::bytes("hives/win7-SYSTEM");
        let asked = AtomicBool::new(false);
        let len = h.len() as u64;
        let (p, report) = Paged::open_replayed(Box::new(h), len, || {
            asked.store(true, Ordering::SeqCst);
            Ok(Vec::new())
        })
        .unwrap();
        assert!(report.is_none() && !asked.load(Ordering::SeqCst));
        assert!(Hive::open(&p)
            .unwrap()
            .key(r"ControlSet001\Services\Dhcp")
            .unwrap()
            .is_some());
    }
}
