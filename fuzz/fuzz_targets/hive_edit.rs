//! The editor on any bytes: `Editor::new` must refuse or succeed, never panic; on a hive it
//! accepts, a fixed series of edits (set, create, delete, on fuzzed keys too) must succeed or
//! fail cleanly, and `finish` must give a same-size hive that passes the checker.
//!
//! Input: one flags byte, then the hive file. Flag bit 0 re-seals the base block; the upper bits
//! choose the size of the binary value written (0..=127 * 97 bytes, so big data is reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regf::edit::Editor;
use regf::ValueType;

mod regf_common;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
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
    ed.set_clock(0x01D0_0000_0000_0000);
    // A key that exists in the fuzzed hive: the root's first subkey, and its first value.
    let (first_key, first_value) = match ed.hive() {
        Ok(h) => {
            let sub = h
                .root()
                .ok()
                .and_then(|r| r.subkeys().ok())
                .and_then(|mut s| s.next())
                .and_then(|k| k.ok());
            let name = sub.map(|k| k.name().to_string_lossy());
            let value = sub
                .and_then(|k| k.values().ok())
                .and_then(|mut v| v.next())
                .and_then(|v| v.ok())
                .map(|v| v.name().to_string_lossy());
            (name, value)
        }
        Err(_) => (None, None),
    };
    let blob = vec![0xA5u8; usize::from(flags >> 1) * 97];
    let _ = ed.set_value("", "FuzzDword", ValueType::DWORD, &7u32.to_le_bytes());
    let _ = ed.create_key(r"FuzzKey\Sub");
    let _ = ed.set_value(r"FuzzKey\Sub", "blob", ValueType::BINARY, &blob);
    if let Some(k) = &first_key {
        let _ = ed.set_value(k, "FuzzSz", ValueType::SZ, b"a\0b\0\0\0");
        if let Some(v) = &first_value {
            let _ = ed.set_value(k, v, ValueType::BINARY, &blob[..blob.len().min(9)]);
            let _ = ed.delete_value(k, v);
        }
        let _ = ed.create_key(&format!(r"{k}\FuzzChild"));
    }
    let _ = ed.delete_value("", "FuzzDword");
    let _ = ed.delete_key("FuzzKey");
    if let Some(k) = &first_key {
        let _ = ed.delete_key(k);
    }
    if let Ok(done) = ed.finish() {
        assert_eq!(done.bytes.len(), len);
        let report = regf::check::check(&done.bytes);
        assert!(report.is_sound(), "{:?}", report.errors().next());
    }
});
