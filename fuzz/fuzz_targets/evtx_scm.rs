//! Any bytes given to the evidence crate as an event log, read whole and by its newest chunks
//! (as a diagnosis reads it): no panic, no hang, and the newest chunks never give an event the
//! whole read does not. Seed the corpus with the real logs (`fuzz/corpus/evtx_scm/`) so the
//! fuzzer starts from valid chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for provider in [
        evidence::Provider::ServiceControlManager,
        evidence::Provider::Any,
    ] {
        let query = evidence::Query {
            provider,
            keep_xml: true,
            ..evidence::Query::default()
        };
        let whole = evidence::read_log(std::io::Cursor::new(data), &query);
        if let Ok(report) = &whole {
            for event in &report.events {
                let _ = event.summary();
            }
            for warning in &report.warnings {
                let _ = warning.to_string();
            }
        }
        for n in [1, 3] {
            let query = evidence::Query {
                newest_chunks: Some(n),
                ..query.clone()
            };
            if let (Ok(part), Ok(whole)) = (
                evidence::read_log(std::io::Cursor::new(data), &query),
                &whole,
            ) {
                assert!(part.stats.chunks <= whole.stats.chunks.max(n));
                for e in &part.events {
                    assert!(
                        whole.events.iter().any(|w| w.record_id == e.record_id),
                        "record {} read from the newest chunks only",
                        e.record_id
                    );
                }
            }
        }
    }
});
