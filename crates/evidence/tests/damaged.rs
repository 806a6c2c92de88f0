//! Damaged logs open, give their readable records and say what they skipped.

use evidence::{read_log, read_log_file, Query};

fn read(name: &str) -> evidence::Report {
    read_log_file(
        fixtures::path(&format!("evtx/{name}.evtx")),
        &Query::default(),
    )
    .unwrap()
}

fn warned(report: &evidence::Report, chunk: u64, text: &str) -> bool {
    report
        .warnings
        .iter()
        .any(|w| w.chunk == Some(chunk) && w.to_string().contains(text))
}

#[test]
fn bad_chunk_magic() {
    let r = read("sample_with_a_bad_chunk_magic");
    // The same 301 records evtx_dump gives (evtxexport stops at 267).
    assert_eq!(r.stats.records, 301);
    assert_eq!(r.stats.chunks, 4);
    assert!(
        warned(&r, 10, "Invalid EVTX chunk header magic"),
        "{:#?}",
        r.warnings
    );
    assert!(warned(&r, 6, "Invalid EVTX chunk header magic"));
    assert!(warned(&r, 7, "file offset 0x73060"));
    assert!(r.events.is_empty());
}

#[test]
fn zero_size_record() {
    let r = read("sample-with-zero-data-size-event");
    assert_eq!(r.stats.records, 449);
    assert!(warned(&r, 0, "file offset 0x1820"), "{:#?}", r.warnings);
    assert!(warned(&r, 0, "found `0`"));
    // evtxexport finds 25 SCM events here; we 34 (see tests/golden.rs).
    assert_eq!(r.events.len(), 34);
}

#[test]
fn no_crc32() {
    let r = read("Application_no_crc32");
    assert_eq!(r.stats.records, 17);
    assert!(warned(&r, 0, "NO_CRC32"));
}

#[test]
fn truncated_and_dirty() {
    // Cut at 200000 bytes, 64832 bytes into chunk 2: the 90 records of that chunk end before
    // the cut, so all 284 are read (evtxexport and evtx stop at 194).
    let r = read("plaso-System2");
    assert_eq!(r.stats.records, 284);
    assert!(r.stats.header_dirty);
    assert!(
        warned(&r, 2, "file ends 64832 bytes into this chunk"),
        "{:#?}",
        r.warnings
    );
}

#[test]
fn stale_header_chunk_count() {
    // The header says 10 chunks; 247 hold records.
    let r = read("srv2012r2-System");
    assert_eq!(r.stats.header_chunk_count, 10);
    assert_eq!(r.stats.chunks, 247);
    assert_eq!(r.stats.records, 60189);
}

#[test]
fn cut_inside_records() {
    let bytes = fixtures::bytes("evtx/srv2008r2-System.evtx");
    // 4096 + 5 chunks + 30000 bytes: chunk 5 is cut in the middle of its records.
    let cut = 4096 + 5 * 65536 + 30000;
    let r = read_log(
        std::io::Cursor::new(bytes[..cut].to_vec()),
        &Query::default(),
    )
    .unwrap();
    let full = read("srv2008r2-System");
    assert!(
        warned(&r, 5, "file ends 30000 bytes into this chunk"),
        "{:#?}",
        r.warnings
    );
    assert!(r.stats.records > 5 * 150 && r.stats.records < full.stats.records);
    // Everything read is what the intact log has at that record id.
    for e in &r.events {
        let same = full
            .events
            .iter()
            .find(|f| f.record_id == e.record_id)
            .unwrap();
        assert_eq!(e, same);
    }
}

#[test]
fn not_a_log() {
    for data in [
        Vec::new(),
        vec![0u8; 100],
        vec![0u8; 8192],
        b"ElfFile\0".to_vec(),
    ] {
        let err = read_log(std::io::Cursor::new(data), &Query::default()).unwrap_err();
        assert!(matches!(err, evidence::Error::NotEvtx { .. }), "{err}");
    }
}

#[test]
fn header_only() {
    let bytes = fixtures::bytes("evtx/srv2008r2-System.evtx");
    let r = read_log(
        std::io::Cursor::new(bytes[..4096].to_vec()),
        &Query::default(),
    )
    .unwrap();
    assert_eq!(r.stats.records, 0);
    assert!(r.events.is_empty());
}
