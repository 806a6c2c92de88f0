//! Mutated real logs never make the reader panic (the stand-in for fuzzing where cargo-fuzz
//! cannot run; `fuzz/fuzz_targets/evtx_scm.rs` is the libFuzzer target).

use std::sync::OnceLock;

use evidence::{read_log, Provider, Query};
use proptest::prelude::*;

/// The file header and the first three chunks of the Server 2008 R2 log: SCM records, inline
/// and referenced templates, and small enough for many cases.
fn seed() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let mut bytes = fixtures::bytes("evtx/srv2008r2-System.evtx");
        bytes.truncate(4096 + 3 * 65536);
        bytes
    })
}

fn check(data: Vec<u8>) {
    for provider in [Provider::ServiceControlManager, Provider::Any] {
        let query = Query {
            provider,
            keep_xml: true,
            ..Query::default()
        };
        if let Ok(report) = read_log(std::io::Cursor::new(&data), &query) {
            for e in &report.events {
                let _ = e.summary();
            }
            for w in &report.warnings {
                let _ = w.to_string();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes(flips in proptest::collection::vec((0usize..4096 + 3 * 65536, any::<u8>()), 1..64)) {
        let mut data = seed().to_vec();
        for (at, value) in flips {
            data[at] = value;
        }
        check(data);
    }

    /// Mutations aimed at the structures the raw walk reads: chunk headers, the first record
    /// headers and template-instance offsets.
    #[test]
    fn flipped_structure(chunk in 0usize..3, field in 0usize..160, value in any::<u32>()) {
        let mut data = seed().to_vec();
        let base = 4096 + chunk * 65536;
        let at = if field < 128 { base + field } else { base + 512 + (field - 128) };
        data[at..at + 4].copy_from_slice(&value.to_le_bytes());
        check(data);
    }

    #[test]
    fn truncated(len in 0usize..4096 + 3 * 65536) {
        check(seed()[..len].to_vec());
    }
}
