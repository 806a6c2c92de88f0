//! Damaged `$Secure` never panics and never allocates from a size read off the disk: the `$SDS`
//! stream and the `$Secure` MFT record of a real volume (testfs1, a real mkntfs volume) are
//! mutated, then every file's descriptor is looked up through its security id. Bytes of
//! `$SDS` are read by this crate's own code, so a panic there would be ours: it must not happen
//! (not even one caught as `Error::ParserPanic`). Damage to the MFT record reaches the `ntfs`
//! crate first, whose panics the crate catches.
//!
//! Allocation is measured, not assumed: this test binary counts the largest single allocation,
//! and none may exceed the volume's own size (the cap `$SDS` is read under) plus the image.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use proptest::prelude::*;
use volume::{find_in_sds, DescriptorSource, Error, Volume};

/// The system allocator, recording the largest request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed unchanged to the system allocator; the only addition is an
// atomic maximum, which allocates nothing.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

/// testfs1's system files name their descriptors by security id ($LogFile, $MFTMirr, $Bitmap,
/// $UpCase: 256; $Extend\$Quota: 257); its test files carry their own `$SECURITY_DESCRIPTOR`.
const PATHS: &[&str] = &[
    "$LogFile",
    "$MFTMirr",
    "$Bitmap",
    "$UpCase",
    r"$Extend\$Quota",
    "1000-bytes-file",
];

/// No single allocation larger than twice the image (the image itself, a copy of it, and a
/// `$SDS` read never larger than the volume).
fn assert_bounded(image_len: usize) {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= 2 * image_len + (1 << 20),
        "an allocation of {largest} bytes for a {image_len}-byte volume"
    );
}

fn mft_offset(image: &[u8]) -> usize {
    let sector = u16::from_le_bytes([image[0x0b], image[0x0c]]) as usize;
    let per_cluster = image[0x0d] as usize;
    let lcn = u64::from_le_bytes(image[0x30..0x38].try_into().unwrap()) as usize;
    lcn * sector * per_cluster
}

/// Where testfs1 keeps things: the image offset of `$SDS`'s first byte (found by the entry
/// that the volume reports for a file: its header states its own offset), and of the `$SDS`
/// attribute's data-size field in `$Secure`'s MFT record.
struct Layout1 {
    image: Vec<u8>,
    sds: usize,
    sds_size_field: usize,
}

fn testfs1() -> Layout1 {
    let image = fx_bytes(TESTFS1);
    let mut fs = Cursor::new(image.clone());
    let vol = Volume::open(&mut fs).unwrap();
    let f = vol.lookup(&mut fs, PATHS[0]).unwrap().unwrap();
    let sec = vol.security(&mut fs, &f).unwrap();
    let DescriptorSource::Secure { id, offset } = sec.source else {
        panic!("testfs1 keeps its descriptors in $Secure");
    };
    // The entry's header: hash (4), security id (4), offset (8), length (4).
    let mut pattern = id.to_le_bytes().to_vec();
    pattern.extend_from_slice(&offset.to_le_bytes());
    let at = image
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("the entry's header is in the image")
        - 4;
    let sds = at - offset as usize;

    // $Secure is MFT record 9; its attributes start at the offset the header gives.
    let record = mft_offset(&image) + 9 * 1024;
    assert_eq!(&image[record..record + 4], b"FILE");
    let mut a = record + u16::from_le_bytes([image[record + 0x14], image[record + 0x15]]) as usize;
    let sds_size_field = loop {
        let ty = u32::from_le_bytes(image[a..a + 4].try_into().unwrap());
        assert_ne!(ty, 0xffff_ffff, "$Secure has no $SDS attribute");
        let len = u32::from_le_bytes(image[a + 4..a + 8].try_into().unwrap()) as usize;
        let name_len = image[a + 9] as usize;
        let name_at = a + u16::from_le_bytes([image[a + 10], image[a + 11]]) as usize;
        let name: Vec<u8> = "$SDS".encode_utf16().flat_map(u16::to_le_bytes).collect();
        if ty == 0x80 && name_len == 4 && image[name_at..name_at + 8] == name[..] {
            // Non-resident header: the data size at 0x30, the initialized size at 0x38.
            break a + 0x30;
        }
        a += len;
    };
    // The field must not hold an update-sequence slot (the last 2 bytes of a sector).
    assert!((sds_size_field - record) % 512 < 510 - 16);
    Layout1 {
        image,
        sds,
        sds_size_field,
    }
}

/// Looks up every test file's descriptor. Returns how many were found.
fn lookup_all(image: Vec<u8>, ours: bool) -> usize {
    let len = image.len();
    let mut fs = Cursor::new(image);
    let Ok(vol) = Volume::open(&mut fs) else {
        return 0;
    };
    let mut found = 0;
    for path in PATHS {
        let Ok(Some(f)) = vol.lookup(&mut fs, path) else {
            continue;
        };
        match vol.security(&mut fs, &f) {
            Ok(s) => {
                found += 1;
                assert!(s.descriptor.len() <= len);
            }
            Err(Error::ParserPanic { during }) => {
                assert!(
                    !ours,
                    "{path}: a panic while {during} on damaged $SDS bytes"
                );
            }
            Err(_) => {}
        }
    }
    assert_bounded(len);
    found
}

#[test]
fn the_real_volume_gives_every_file_its_descriptor() {
    let l = testfs1();
    assert_eq!(lookup_all(l.image.clone(), true), PATHS.len());
}

#[test]
fn a_huge_sds_size_is_refused_without_allocating_it() {
    let l = testfs1();
    for size in [u64::MAX, 1 << 40, 64 << 20, l.image.len() as u64 + 1] {
        let mut img = l.image.clone();
        img[l.sds_size_field..l.sds_size_field + 8].copy_from_slice(&size.to_le_bytes());
        let mut fs = Cursor::new(img);
        let vol = Volume::open(&mut fs).unwrap();
        let f = vol.lookup(&mut fs, PATHS[0]).unwrap().unwrap();
        match vol.security(&mut fs, &f) {
            Err(Error::NoDescriptor {
                security_id: Some(_),
                what,
                ..
            }) => assert!(what.contains("$SDS claims"), "{what}"),
            // The ntfs crate may refuse the attribute first (its sizes disagree): an error.
            Err(e) => assert!(!matches!(e, Error::ParserPanic { .. }), "{e}"),
            Ok(_) => panic!("a $SDS of {size} bytes was read"),
        }
        assert_bounded(l.image.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, .. ProptestConfig::default() })]

    /// Any bytes as `$SDS`, any id: no panic, and what is found lies inside the data and is
    /// the entry of that id at the offset it states.
    #[test]
    fn find_in_sds_on_any_bytes(sds in proptest::collection::vec(any::<u8>(), 0..2048), id in any::<u32>()) {
        if let Some((off, d)) = find_in_sds(&sds, id) {
            let at = off as usize;
            prop_assert!(at + 20 + d.len() <= sds.len());
            prop_assert_eq!(&sds[at + 4..at + 8], &id.to_le_bytes()[..]);
            prop_assert_eq!(&sds[at + 8..at + 16], &off.to_le_bytes()[..]);
        }
    }

    /// Random bytes in the first 4 KiB of the real `$SDS` (the entries of a fresh volume):
    /// every lookup is a descriptor or a clean error, never a panic of ours.
    #[test]
    fn damaged_sds_entries(muts in proptest::collection::vec((0usize..4096, any::<u8>()), 1..24)) {
        let l = testfs1();
        let mut img = l.image;
        for (off, v) in muts {
            img[l.sds + off] = v;
        }
        lookup_all(img, true);
    }

    /// Random bytes in `$Secure`'s MFT record (its $SDS, $SDH and $SII attributes) and random
    /// `$SDS` sizes: errors, never an escaped panic or an allocation from the size.
    #[test]
    fn damaged_secure_record(
        muts in proptest::collection::vec((0usize..1024, any::<u8>()), 1..8),
        size in proptest::option::of(any::<u64>()),
    ) {
        let l = testfs1();
        let mut img = l.image;
        let record = mft_offset(&img) + 9 * 1024;
        for (off, v) in muts {
            img[record + off] = v;
        }
        if let Some(size) = size {
            img[l.sds_size_field..l.sds_size_field + 8].copy_from_slice(&size.to_le_bytes());
        }
        lookup_all(img, false);
    }
}
