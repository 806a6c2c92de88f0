//! The structural checker on any bytes: it must return a report, never panic, hang or allocate
//! without bound, and keep its fault list capped. A hive it finds sound must also read without a
//! single error (the writer relies on that).
//!
//! Input: one flags byte, then the hive file; flag bit 0 re-seals the base block.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regf::check::{check, MAX_FAULTS};
use regf::Hive;

mod regf_common;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0 {
        regf_common::fix_base(&mut bytes);
    }
    let report = check(&bytes);
    assert!(report.faults.len() <= MAX_FAULTS);
    if report.is_sound() {
        let hive = Hive::open(&bytes[..]).expect("a sound hive opens strictly");
        let errors = std::cell::RefCell::new(Vec::new());
        hive.walk(
            |p, k| match k.values() {
                Ok(values) => {
                    for v in values {
                        if let Err(e) = v.and_then(|v| v.raw_data().map(drop)) {
                            errors.borrow_mut().push(format!("{p}: {e}"));
                        }
                    }
                }
                Err(e) => errors.borrow_mut().push(format!("{p}: {e}")),
            },
            |p, e| errors.borrow_mut().push(format!("{p}: {e}")),
        )
        .expect("a sound hive has a readable root");
        let errors = errors.into_inner();
        assert!(
            errors.is_empty(),
            "checker found no error, the reader did: {errors:?}"
        );
    }
});
