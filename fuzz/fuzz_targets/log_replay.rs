//! Transaction-log replay: a fuzzed log against the real dirty Windows 10 SYSTEM hive, and the
//! real logs (their first 64 KiB) against a fuzzed hive. Ok or a clean error; no panic, no hang,
//! no huge allocation.
//!
//! Input: one mode byte, then the fuzzed file. Mode bit 0: 0 = the input is a log (given as
//! .LOG1), 1 = the input is the primary. Bit 1 re-seals what was fuzzed (log: base block
//! checksum and every entry's Marvin32 hashes; primary: base block checksum and size).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use regf::log::{replay, LogInput};

mod regf_common;
use regf_common::fixture;

static PRIMARY: OnceLock<Vec<u8>> = OnceLock::new();
static LOG1: OnceLock<Vec<u8>> = OnceLock::new();
static LOG2: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut fuzzed = rest.to_vec();
    if mode & 1 == 0 {
        if mode & 2 != 0 {
            regf_common::reseal_log(&mut fuzzed);
        }
        let primary = fixture(&PRIMARY, "hives/win10-dirty-SYSTEM");
        let log2 = &fixture(&LOG2, "hives/win10-dirty-SYSTEM.LOG2")[..64 << 10];
        let logs = [
            LogInput {
                name: "SYSTEM.LOG1",
                data: &fuzzed,
            },
            LogInput {
                name: "SYSTEM.LOG2",
                data: log2,
            },
        ];
        if let Ok(r) = replay(primary, &logs) {
            assert!(r.bytes.len() >= 4096);
        }
    } else {
        if mode & 2 != 0 {
            // Keep the dirty state: only the size and the checksum.
            if fuzzed.len() >= 4096 {
                let bins = ((fuzzed.len() - 4096) & !0xFFF) as u32;
                fuzzed[40..44].copy_from_slice(&bins.to_le_bytes());
                regf::seal(&mut fuzzed[..4096]);
            }
        }
        let log1 = &fixture(&LOG1, "hives/win10-dirty-SYSTEM.LOG1")[..64 << 10];
        let log2 = &fixture(&LOG2, "hives/win10-dirty-SYSTEM.LOG2")[..64 << 10];
        let logs = [
            LogInput {
                name: "SYSTEM.LOG1",
                data: log1,
            },
            LogInput {
                name: "SYSTEM.LOG2",
                data: log2,
            },
        ];
        if let Ok(r) = replay(&fuzzed, &logs) {
            assert!(r.bytes.len() >= 4096);
            // What a caller does next with the recovered bytes.
            let _ = regf::check::check(&r.bytes);
        }
    }
});
