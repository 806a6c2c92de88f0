//! `Volume::plan_grow` on any volume: a plan or a typed error, never a panic; and a plan only
//! patches bytes inside the volume, whose `before` bytes are the ones there, and takes only
//! clusters inside the volume.
//!
//! Input: a mode byte, the requested size (8 bytes LE, taken modulo 16 MiB past the file's
//! size), then either the whole volume (mode bit 0 clear) or mutations of the NTFS edge-case
//! fixture (mode bit 0 set): records `[offset: u32 LE][byte]` applied at `offset` modulo the
//! image length. The mode's upper bits choose the file grown.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Files of the edge-case volume: plain, resident, compressed, sparse, with an attribute list.
const PATHS: &[&str] = &[
    "plain.txt",
    "resident.txt",
    r"compressed\compressed.txt",
    "sparse.bin",
    "attrlist-sparse.bin",
    r"Mixed Case Dir\File Name.TXT",
];

fn edge() -> &'static [u8] {
    static EDGE: OnceLock<Vec<u8>> = OnceLock::new();
    EDGE.get_or_init(|| fixtures::bytes("images/ntfs-edge-cases.raw"))
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let Some((size, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let image = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut img = edge().to_vec();
        for rec in rest.chunks_exact(5) {
            let at = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize % img.len();
            img[at] = rec[4];
        }
        img
    };
    let len = image.len() as u64;
    let mut fs = Cursor::new(image);
    let Ok(vol) = volume::Volume::open(&mut fs) else {
        return;
    };
    let path = PATHS[(mode >> 1) as usize % PATHS.len()];
    let Ok(Some(file)) = vol.lookup(&mut fs, path) else {
        return;
    };
    let _ = vol.name_ranges(&mut fs, &file);
    let new_size = file
        .size()
        .saturating_add(u64::from_le_bytes(*size) % (16 << 20));
    let Ok(plan) = vol.plan_grow(&mut fs, &file, new_size) else {
        return;
    };
    let cluster = u64::from(vol.facts().cluster_size);
    let bytes = fs.get_ref();
    for p in plan.bitmap.iter().chain([&plan.record]).chain(&plan.names) {
        let end = p.partition_offset + p.after.len() as u64;
        assert!(end <= len, "a patch ends at {end:#x}, past the volume ({len:#x})");
        assert_eq!(p.before.len(), p.after.len());
        assert!(
            bytes[p.partition_offset as usize..end as usize] == p.before[..],
            "a patch's before bytes are not the volume's"
        );
    }
    for &(lcn, n) in &plan.new_clusters {
        let end = lcn.checked_add(n).and_then(|e| e.checked_mul(cluster));
        assert!(end.is_some_and(|e| e <= len), "new clusters past the volume");
    }
    assert_eq!(plan.new_size, new_size);
});
