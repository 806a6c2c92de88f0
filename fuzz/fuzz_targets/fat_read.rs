//! A FAT volume given as bytes: the boot sector checks, directory listings (long names,
//! deleted entries, 8.3 names), cluster chains and file reads must return Ok or a clean
//! error: no panic, no hang, no allocation beyond the input's size.
//!
//! The input is the volume itself (a FAT12 volume of a few KiB is a complete one). Seeds: any
//! small `mkfs.vfat` image, e.g. `truncate -s 64K s.img; mkfs.vfat -F 12 s.img`, with files
//! copied in by `mcopy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Walks a directory and everything below it, reading each file.
fn walk(vol: &fat::Volume, c: &mut std::io::Cursor<&[u8]>, path: &str, depth: u32) {
    let Ok(items) = vol.list(c, path) else {
        return;
    };
    for item in items.into_iter().take(64) {
        let child = if path.is_empty() {
            item.name.clone()
        } else {
            format!("{path}\\{}", item.name)
        };
        let Ok(Some(e)) = vol.lookup(c, &child) else {
            continue;
        };
        if e.is_directory() {
            if depth < 4 {
                walk(vol, c, &child, depth + 1);
            }
        } else if let Ok(bytes) = vol.read_file(c, &e) {
            assert_eq!(bytes.len() as u64, e.size());
            let plan = e.plan_write(0, e.size()).expect("a file's own range is writable");
            assert_eq!(plan.iter().map(|p| p.len).sum::<u64>(), e.size());
            assert!(e.plan_write(0, e.size() + 1).is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = std::io::Cursor::new(data);
    if let Ok(vol) = fat::Volume::open(&mut c) {
        walk(&vol, &mut c, "", 0);
        let _ = vol.lookup(&mut c, r"EFI\Microsoft\Boot\BCD");
    }
});
