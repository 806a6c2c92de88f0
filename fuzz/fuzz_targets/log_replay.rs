//! Transaction-log replay: a fuzzed log against the real dirty Windows 10 SYSTEM hive, and the
//! real logs (their first 64 KiB) against a fuzzed hive. Ok or a clean error; no panic, no hang,
//! no huge allocation.
//!
//! With a fuzzed log, the same replay is also made on demand (`Paged::open_replayed`: the pages
//! laid over the primary as its bins load) and must agree with the whole-file one: the same
//! report and base block, the same keys and values wherever both read them.
//!
//! Input: one mode byte, then the fuzzed file. Mode bit 0: 0 = the input is a log (given as
//! .LOG1), 1 = the input is the primary. Bit 1 re-seals what was fuzzed (log: base block
//! checksum and every entry's Marvin32 hashes; primary: base block checksum and size).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use regf::log::{replay, LogInput};
use regf::paged::ReadAt;
use regf::{Hive, Paged};

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
        let whole = replay(primary, &logs);
        if let Ok(r) = &whole {
            assert!(r.bytes.len() >= 4096);
        }
        let owned = vec![
            ("SYSTEM.LOG1".to_string(), fuzzed.clone()),
            ("SYSTEM.LOG2".to_string(), log2.to_vec()),
        ];
        let paged = Paged::open_replayed(Box::new(Fixed(primary)), primary.len() as u64, || {
            Ok(owned)
        });
        match (whole, paged) {
            (Ok(w), Ok((p, report))) => {
                let report = report.expect("the primary is dirty: a replay report");
                assert_eq!(format!("{report:?}"), format!("{:?}", w.report));
                assert_eq!(p.base_block_bytes(), &w.bytes[..4096]);
                let whole_hive = Hive::open(&w.bytes[..]);
                let lazy = Hive::open(&p);
                if let (Ok(a), Ok(b)) = (&whole_hive, &lazy) {
                    // A paged hive also refuses a cell that crosses its bin, which a hive in
                    // memory reads: only answers both give must agree.
                    for path in ["", r"ControlSet001\Services\Dhcp", "Select"] {
                        if let (Ok(x), Ok(y)) = (answer(a, path), answer(b, path)) {
                            assert_eq!(x, y, "{path}");
                        }
                    }
                }
            }
            // Paged refuses what a hive in memory refuses too (its base block, its size).
            (Ok(w), Err(_)) => assert!(Hive::open(&w.bytes[..]).is_err()),
            (Err(_), Err(_)) => {}
            (Err(e), Ok(_)) => panic!("the whole-file replay fails ({e}), the paged one does not"),
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

/// The primary as a source for a hive read on demand.
struct Fixed(&'static [u8]);

impl ReadAt for Fixed {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let at = usize::try_from(offset).map_err(|e| e.to_string())?;
        let src = self
            .0
            .get(at..)
            .and_then(|s| s.get(..buf.len()))
            .ok_or("past the end")?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A key's subkey names and values (name, raw data), or the error's text.
fn answer<B: regf::Source>(hive: &Hive<B>, path: &str) -> Result<(Vec<String>, Vec<(String, Vec<u8>)>), String> {
    let key = hive.key(path).map_err(|e| e.to_string())?.ok_or("absent")?;
    let subkeys = key
        .subkeys()
        .map_err(|e| e.to_string())?
        .map(|k| k.map(|k| k.name().to_string()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let values = key
        .values()
        .map_err(|e| e.to_string())?
        .map(|v| {
            let v = v.map_err(|e| e.to_string())?;
            let data = v.raw_data().map_err(|e| e.to_string())?.to_vec();
            Ok((v.name().to_string(), data))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((subkeys, values))
}
