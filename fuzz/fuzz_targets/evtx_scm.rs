//! Any bytes given to the evidence crate as an event log: no panic, no hang. Seed the corpus
//! with the real logs (`fuzz/corpus/evtx_scm/`) so the fuzzer starts from valid chunks.
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
        if let Ok(report) = evidence::read_log(std::io::Cursor::new(data), &query) {
            for event in &report.events {
                let _ = event.summary();
            }
            for warning in &report.warnings {
                let _ = warning.to_string();
            }
        }
    }
});
