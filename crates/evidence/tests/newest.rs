//! Reading only a log's newest chunks (`Query::newest_chunks`): the events are exactly those of
//! the whole read whose records lie in the chunks the file header names as the newest, and, in
//! a log not closed cleanly, in the chunks written after the header's current one. The oracle
//! is the whole read of the same real logs and the chunk headers read here by hand.

use std::io::Cursor;

use evidence::{read_log, Provider, Query, Report};

/// Every real System log in testdata.
const LOGS: &[&str] = &[
    "srv2008r2-System",
    "srv2012r2-System",
    "win10-aptsim-System",
    "win10-belkasoft-System",
    "win10-rathbun-System",
    "win10-vss7-System",
];

fn bytes(name: &str) -> Vec<u8> {
    fixtures::bytes(&format!("evtx/{name}.evtx"))
}

fn read(bytes: &[u8], newest: Option<u64>) -> Report {
    let query = Query {
        provider: Provider::Any,
        newest_chunks: newest,
        ..Default::default()
    };
    read_log(Cursor::new(bytes), &query).unwrap()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// (first record id, last record id) of chunk `k`, from its header.
fn ids(log: &[u8], k: u64) -> (u64, u64) {
    let at = 4096 + k as usize * 65536;
    assert_eq!(&log[at..at + 8], b"ElfChnk\0", "chunk {k}");
    (u64_at(log, at + 24), u64_at(log, at + 32))
}

fn record_ids(r: &Report) -> Vec<u64> {
    r.events.iter().map(|e| e.record_id).collect()
}

/// The chunks in use, oldest first: from the header's oldest to its current chunk or, when the
/// header is marked dirty, every chunk of the file, ordered by record ids.
fn chunks_in_use(log: &[u8]) -> Vec<u64> {
    let (first, last) = (u64_at(log, 8), u64_at(log, 16));
    if u64_at(log, 120) & 1 == 0 {
        return (first..=last).collect();
    }
    let whole = (log.len() as u64 - 4096) / 65536;
    let mut out: Vec<u64> = (0..whole)
        .filter(|&k| {
            let at = 4096 + k as usize * 65536;
            &log[at..at + 8] == b"ElfChnk\0"
        })
        .collect();
    out.sort_by_key(|&k| ids(log, k).1);
    out
}

/// The newest `n` chunks of each real log: the whole read's records of those chunks, and
/// nothing fetched beyond the header and them.
#[test]
fn the_newest_chunks_give_the_whole_reads_newest_events() {
    for name in LOGS {
        let log = bytes(name);
        let whole = read(&log, None);
        let in_use = chunks_in_use(&log);
        assert!(
            u64_at(&log, 8) <= u64_at(&log, 16),
            "{name}: these logs have not wrapped"
        );
        for n in [1usize, 2, 3, 1000] {
            let newest = &in_use[in_use.len().saturating_sub(n)..];
            let ranges: Vec<(u64, u64)> = newest.iter().map(|&k| ids(&log, k)).collect();
            let want: Vec<u64> = record_ids(&whole)
                .into_iter()
                .filter(|id| ranges.iter().any(|(from, to)| (from..=to).contains(&id)))
                .collect();
            let part = read(&log, Some(n as u64));
            let got = record_ids(&part);
            assert!(
                got == want,
                "{name}, newest {n}: {} events ({:?}..{:?}), want {} ({:?}..{:?})",
                got.len(),
                got.first(),
                got.last(),
                want.len(),
                want.first(),
                want.last()
            );
            assert_eq!(part.stats.chunks, newest.len() as u64, "{name}, newest {n}");
            assert_eq!(
                part.stats.older_chunks_not_read,
                (in_use.len() - newest.len()) as u64,
                "{name}, newest {n}"
            );
            if n == 1000 {
                assert!(part.events == whole.events, "{name}: all the chunks in use");
            }
        }
    }
}

/// A header written before the last chunks were (the log was not closed cleanly): every chunk
/// header is read, and the newest chunks are those with the highest record numbers. The same
/// header marked clean is believed.
#[test]
fn a_dirty_header_behind_its_chunks_misses_nothing() {
    let log = bytes("win10-rathbun-System");
    assert_eq!(u64_at(&log, 120) & 1, 1, "this log is marked dirty");
    let last = u64_at(&log, 16);
    let mut behind = log.clone();
    behind[16..24].copy_from_slice(&(last - 2).to_le_bytes());
    let honest = read(&log, Some(3));
    let late = read(&behind, Some(3));
    assert!(!honest.events.is_empty());
    assert!(late.events == honest.events, "the same newest three chunks");
    let mut clean = behind.clone();
    clean[120] &= !1;
    let believed = read(&clean, Some(3));
    let (_, to) = ids(&log, last - 2);
    assert!(record_ids(&believed).iter().all(|id| *id <= to));
    assert!(!believed.events.is_empty());
}

/// A chunk written after two that never were (a snapshot taken while the log was written):
/// the newest chunk is found past the gap.
#[test]
fn the_newest_chunk_is_found_past_a_gap() {
    let log = bytes("win10-vss7-System");
    let at = |k: usize| 4096 + k * 65536;
    assert_ne!(&log[at(10)..at(10) + 8], b"ElfChnk\0");
    assert_eq!(&log[at(12)..at(12) + 8], b"ElfChnk\0");
    let part = read(&log, Some(1));
    let (from, to) = ids(&log, 12);
    assert_eq!(part.stats.chunks, 1);
    assert!(record_ids(&part).iter().all(|id| (from..=to).contains(id)));
}

/// A log that wrapped (its oldest chunk after its current one), damaged as it is, marked
/// clean: the newest chunks are counted back across the end of the file, and a damaged chunk is
/// a warning. Marked dirty, as it came, the chunks it really holds are found by their headers.
#[test]
fn a_wrapped_log_is_read_back_across_the_end_of_the_file() {
    let mut log = fixtures::bytes("evtx/sample_with_a_bad_chunk_magic.evtx");
    let (first, last) = (u64_at(&log, 8), u64_at(&log, 16));
    assert!(first > last, "this log wrapped");
    let dirty = read(&log, Some(4));
    assert!(dirty.events == read(&log, None).events);
    log[120] &= !1;
    let whole = read(&log, None);
    let all = read(&log, Some(1000));
    assert!(all.events == whole.events);
    let part = read(&log, Some(4));
    // Chunks 2, 1, 0 and 15 of the 16: chunks 1 and 2 are damaged in this sample.
    assert_eq!(part.stats.older_chunks_not_read, 12);
    assert!(
        part.warnings.iter().any(|w| w.chunk == Some(1)),
        "{:#?}",
        part.warnings
    );
}

/// Where the header cannot guide (a file that ends inside a chunk, a header whose chunk
/// numbers lie outside the file), every chunk is read, as without the option.
#[test]
fn where_the_header_cannot_guide_everything_is_read() {
    let log = bytes("srv2008r2-System");
    let cut = &log[..log.len() - 1000];
    let part = read(cut, Some(2));
    assert!(part.events == read(cut, None).events);
    assert_eq!(part.stats.older_chunks_not_read, 0);
    let mut outside = log.clone();
    outside[16..24].copy_from_slice(&40u64.to_le_bytes());
    let whole = (log.len() as u64 - 4096) / 65536;
    assert!(40 >= whole);
    let part = read(&outside, Some(2));
    assert!(part.stats.chunks > 2, "{:?}", part.stats);
}
