//! The editor with growth allowed, on any bytes: every edit succeeds or fails without a trace
//! (a failed edit leaves the bytes, length included, as they were), and `finish` gives a hive
//! that passes the checker, no shorter than the input and within the growth limit, sized as
//! Windows sizes a grown file.
//!
//! Input: a flags byte, a growth byte, then the hive file. Flag bit 0 re-seals the base block;
//! its upper bits choose the size of the binary values written (0..=127 * 331 bytes, so big data
//! and bins of several pages are reached). The growth byte `g` lets the file grow by `g` * 4 KiB
//! (0: only the slack after the hive bins) and sets how many sibling keys are created (`g` % 32).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regf::edit::{Editor, FILE_GROW_STEP};
use regf::ValueType;

mod regf_common;

/// Runs one edit; if it fails, nothing may have changed.
fn step<T>(ed: &mut Editor, op: impl FnOnce(&mut Editor) -> regf::Result<T>) {
    let before = ed.bytes().to_vec();
    if op(ed).is_err() {
        assert!(ed.bytes() == &before[..], "a failed edit left changes");
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, growth, rest @ ..] = data else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0 {
        regf_common::fix_base(&mut bytes);
    }
    let len = bytes.len();
    let Ok(mut ed) = Editor::new(bytes, 0) else {
        return;
    };
    let limit = len + usize::from(*growth) * 4096;
    ed.allow_growth(limit as u64);
    ed.set_clock(0x01D0_0000_0000_0000);
    let first_key = ed.hive().ok().and_then(|h| {
        h.root()
            .ok()
            .and_then(|r| r.subkeys().ok())
            .and_then(|mut s| s.next())
            .and_then(|k| k.ok())
            .map(|k| k.name().to_string_lossy())
    });
    let blob = vec![0x5Au8; usize::from(flags >> 1) * 331];
    step(&mut ed, |ed| {
        ed.set_value("", "FuzzDword", ValueType::DWORD, &7u32.to_le_bytes())
    });
    step(&mut ed, |ed| ed.create_key(r"FuzzKey\Sub"));
    for i in 0..usize::from(*growth) % 32 {
        step(&mut ed, |ed| ed.create_key(&format!(r"FuzzKey\S{i:02}")));
    }
    step(&mut ed, |ed| {
        ed.set_value(r"FuzzKey\Sub", "blob", ValueType::BINARY, &blob)
    });
    step(&mut ed, |ed| {
        ed.set_value(r"FuzzKey\Sub", "blob2", ValueType::BINARY, &blob[blob.len() / 2..])
    });
    if let Some(k) = &first_key {
        step(&mut ed, |ed| ed.set_value(k, "FuzzBlob", ValueType::BINARY, &blob));
        step(&mut ed, |ed| ed.create_key(&format!(r"{k}\FuzzChild")));
        step(&mut ed, |ed| ed.delete_value(k, "FuzzBlob"));
    }
    step(&mut ed, |ed| ed.delete_value(r"FuzzKey\Sub", "blob"));
    if flags & 2 != 0 {
        step(&mut ed, |ed| ed.delete_key("FuzzKey"));
    }
    if let Ok(done) = ed.finish() {
        let report = regf::check::check(&done.bytes);
        assert!(report.is_sound(), "{:?}", report.errors().next());
        let bins_end = 4096 + done.hive_bins_size as usize;
        assert_eq!(
            u32::from_le_bytes(done.bytes[40..44].try_into().unwrap()),
            done.hive_bins_size
        );
        assert!(bins_end <= done.bytes.len());
        assert_eq!(done.grown_by as usize, done.bytes.len() - len);
        if done.bytes.len() > len {
            assert!(done.bytes.len() <= limit);
            assert_eq!(
                done.bytes.len(),
                bins_end.next_multiple_of(FILE_GROW_STEP).min(limit)
            );
        }
    }
});
