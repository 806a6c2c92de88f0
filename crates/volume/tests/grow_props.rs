//! `Volume::plan_grow` on damaged volumes: random bytes in the grown file's MFT record, in the
//! root directory's MFT record and the INDX block holding the file's entry, and in the volume
//! bitmap of the NTFS edge-case fixture. Planning never panics, and any plan it makes patches
//! only bytes inside the volume whose `before` bytes are the ones there, and takes only
//! clusters that the (damaged) bitmap shows free, inside the volume, outside the file's own
//! runs and outside every patched range.

mod common;

use std::io::Cursor;

use common::*;
use proptest::prelude::*;
use volume::Volume;

/// Plans made (printed with `--nocapture`): the properties must be checked on real plans, not
/// only on refusals.
static PLANS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Regions of the pristine fixture that the mutations hit: (partition offset, length).
fn regions() -> Vec<(u64, u64)> {
    let mut fs = Cursor::new(fx_bytes(EDGE));
    let vol = Volume::open(&mut fs).unwrap();
    let f = vol.open_file(&mut fs, "plain.txt").unwrap();
    let mut out = vec![vol.record_range(&mut fs, &f).unwrap()];
    let root = vol.open_file(&mut fs, "\\").unwrap();
    out.push(vol.record_range(&mut fs, &root).unwrap());
    out.extend(vol.name_ranges(&mut fs, &f).unwrap());
    let (bitmap, _) = vol.bitmap_extents(&mut fs).unwrap();
    let b = bitmap[0];
    // The bitmap's bytes that hold the volume's clusters (one bit each).
    let clusters = vol.facts().size / u64::from(vol.facts().cluster_size);
    out.push((b.partition_offset.unwrap(), clusters.div_ceil(8)));
    out
}

/// Whether cluster `c` is marked used in `image`'s bitmap (read at the pristine bitmap's
/// place: the mutations never touch `$Bitmap`'s own record).
fn used(image: &[u8], bitmap_at: u64, c: u64) -> bool {
    image[(bitmap_at + c / 8) as usize] & (1 << (c % 8)) != 0
}

fn check(image: Vec<u8>, grow_by: u64, bitmap_at: u64) {
    let len = image.len() as u64;
    let mut fs = Cursor::new(image);
    let Ok(vol) = Volume::open(&mut fs) else {
        return;
    };
    let Ok(Some(f)) = vol.lookup(&mut fs, "plain.txt") else {
        return;
    };
    let new_size = f.size().saturating_add(grow_by);
    let plan = match vol.plan_grow(&mut fs, &f, new_size) {
        Ok(plan) => plan,
        Err(e) => {
            if std::env::var_os("GROW_PROPS_VERBOSE").is_some() {
                eprintln!("refused: {e}");
            }
            return;
        }
    };
    PLANS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let bytes = fs.get_ref();
    let cluster = u64::from(vol.facts().cluster_size);
    let mut patched = Vec::new();
    for p in plan.bitmap.iter().chain([&plan.record]).chain(&plan.names) {
        let end = p.partition_offset + p.after.len() as u64;
        assert!(
            end <= len,
            "patch {:#x}..{end:#x} past the volume",
            p.partition_offset
        );
        assert_eq!(p.before.len(), p.after.len());
        assert!(bytes[p.partition_offset as usize..end as usize] == p.before[..]);
        patched.push((p.partition_offset, end));
    }
    for &(lcn, n) in &plan.new_clusters {
        for c in lcn..lcn + n {
            assert!((c + 1) * cluster <= len, "cluster {c} past the volume");
            assert!(!used(bytes, bitmap_at, c), "cluster {c} is in use");
            let (s, e) = (c * cluster, (c + 1) * cluster);
            assert!(
                f.extents()
                    .iter()
                    .all(|x| x.partition_offset.is_none_or(|p| e <= p || s >= p + x.len)),
                "cluster {c} is the file's own"
            );
            assert!(
                patched.iter().all(|&(ps, pe)| e <= ps || s >= pe),
                "cluster {c} holds metadata the plan patches"
            );
        }
    }
    // The grown file's new bytes go to clusters inside the volume.
    if plan.new_size > plan.old_valid_size {
        for w in plan
            .grown
            .plan_write(plan.old_valid_size, plan.new_size - plan.old_valid_size)
            .unwrap()
        {
            assert!(w.partition_offset + w.len <= len);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, .. ProptestConfig::with_cases(cases()) })]

    #[test]
    fn plans_on_damaged_records_and_bitmaps_stay_inside_free_clusters(
        muts in proptest::collection::vec((0usize..4, any::<u64>(), any::<u8>()), 1..24),
        grow_by in 0u64..(4 << 20),
    ) {
        let regions = regions();
        let bitmap_at = regions.last().unwrap().0;
        let mut img = fx_bytes(EDGE);
        for (r, at, v) in muts {
            let (start, n) = regions[r.min(regions.len() - 1)];
            img[(start + at % n) as usize] = v;
        }
        check(img, grow_by, bitmap_at);
        eprintln!("plans so far: {}", PLANS.load(std::sync::atomic::Ordering::Relaxed));
    }

    /// The bitmap alone, many bytes at once: free space fragmented or exhausted.
    #[test]
    fn plans_on_scrambled_bitmaps_take_only_free_clusters(
        muts in proptest::collection::vec((any::<u64>(), any::<u8>()), 1..400),
        grow_by in 0u64..(8 << 20),
    ) {
        let regions = regions();
        let (bitmap_at, n) = *regions.last().unwrap();
        let mut img = fx_bytes(EDGE);
        for (at, v) in muts {
            img[(bitmap_at + at % n) as usize] = v;
        }
        check(img, grow_by, bitmap_at);
    }
}
