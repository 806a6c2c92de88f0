//! Any bytes given to the hive reader: lenient open, walk of every key, every value's name and
//! data, class names, path lookups, and a .reg export must return Ok or a clean error: no panic,
//! no hang, no huge allocation.
//!
//! Input: one flags byte, then the hive file. Flag bit 0 re-seals the base block (hive-bins size
//! = the bins present, checksum) so that mutations reach the bins. Seeds: `fuzz/seed-regf.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
    let Ok(hive) = Hive::open_lenient(&bytes[..]) else {
        return;
    };
    let _ = hive.walk(
        |_, k| {
            let _ = k.class_name();
            let _ = k.parent();
            if let Ok(values) = k.values() {
                for v in values.flatten() {
                    let _ = v.name().to_string_lossy();
                    let _ = v.data();
                }
            }
        },
        |_, _| {},
    );
    let _ = hive.key(r"ControlSet001\Services\Dhcp");
    let _ = hive.key(r"a\b\c");
    if let Ok(root) = hive.root() {
        let _ = root.value("");
        let _ = regf::regfile::export(&root, r"HKEY_LOCAL_MACHINE\FUZZ", &mut std::io::sink());
    }
});
