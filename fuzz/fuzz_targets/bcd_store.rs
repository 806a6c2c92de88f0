//! A BCD store given as hive bytes: the boot manager, its default entry, object types,
//! inherited objects and the safe-boot question must return Ok or a clean error, never panic
//! or loop. Seeds: `testdata/hives/BCD` (decompressed).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(hive) = regf::Hive::open_lenient(data) else {
        return;
    };
    let Ok(store) = bcd::Store::new(&hive) else {
        return;
    };
    if let Ok(objects) = store.objects() {
        for g in objects.iter().take(64) {
            if let Ok(Some(o)) = store.object(g) {
                let _ = o.object_type();
                let _ = o.description();
            }
        }
    }
    let _ = store.default_entry();
    if let Ok(Some(sb)) = store.safe_boot() {
        assert!(sb.element_key().ends_with("25000080"));
    }
});
