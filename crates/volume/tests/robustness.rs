//! Damaged volumes never panic: the boot sector and MFT records of real fixtures are mutated, then
//! opened, searched, read and planned. Panics inside the `ntfs` crate are caught by the crate and
//! come back as `Error::ParserPanic`; the number seen is printed (`--nocapture`).

mod common;

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use proptest::prelude::*;
use volume::{Error, Volume};

static PARSER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn note(e: &Error) {
    if matches!(e, Error::ParserPanic { .. }) {
        let n = PARSER_PANICS.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!("caught ntfs-crate panic #{n}: {e}");
    }
}

/// Everything a caller does with a volume, on possibly damaged data.
fn exercise(image: Vec<u8>, paths: &[&str]) {
    let mut fs = Cursor::new(image);
    let vol = match Volume::open(&mut fs) {
        Ok(v) => v,
        Err(e) => return note(&e),
    };
    let _ = vol.check_writable();
    for path in paths {
        let f = match vol.lookup(&mut fs, path) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                note(&e);
                continue;
            }
        };
        let _ = f.plan_write(0, 2);
        let _ = f.plan_write(f.size().saturating_sub(3), 2);
        if let Err(e) = vol.plan_grow(&mut fs, &f, f.size().saturating_add(1 << 20)) {
            note(&e);
        }
        if let Ok(mut r) = vol.reader(&mut fs, &f) {
            // Bounded: a damaged size may claim terabytes.
            let mut buf = vec![0u8; 64 * 1024];
            let _ = r.read(&mut buf);
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn mft_offset(image: &[u8]) -> usize {
    let sector = u16::from_le_bytes([image[0x0b], image[0x0c]]) as usize;
    let per_cluster = image[0x0d] as usize;
    let lcn = u64::from_le_bytes(image[0x30..0x38].try_into().unwrap()) as usize;
    lcn * sector * per_cluster
}

const EDGE_PATHS: &[&str] = &[
    "resident.txt",
    "plain.txt",
    r"compressed\compressed.txt",
    "sparse.bin",
    "attrlist-sparse.bin",
    r"Mixed Case Dir\File Name.TXT",
    "hiberfil.sys",
];
const TESTFS1_PATHS: &[&str] = &[
    "1000-bytes-file",
    "sparse-file",
    "file-with-12345",
    r"many_subdirs\300",
];

#[test]
fn every_boot_sector_byte_set_to_extremes() {
    let base = fx_bytes(TESTFS1);
    for at in 0..512 {
        for v in [0x00u8, 0xff, 0x80] {
            let mut img = base.clone();
            img[at] = v;
            exercise(img, TESTFS1_PATHS);
        }
    }
    eprintln!(
        "ntfs-crate panics caught so far: {}",
        PARSER_PANICS.load(Ordering::Relaxed)
    );
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=20000 for a longer hunt.
    #![proptest_config(ProptestConfig { failure_persistence: None, .. ProptestConfig::with_cases(cases()) })]

    /// Random bytes in the first 80 MFT records of testfs1 (system files, root, the test files).
    #[test]
    fn mutated_mft_records_testfs1(muts in proptest::collection::vec((0usize..80 * 1024, any::<u8>()), 1..16)) {
        let mut img = fx_bytes(TESTFS1);
        let mft = mft_offset(&img);
        for (off, v) in muts {
            img[mft + off] = v;
        }
        exercise(img, TESTFS1_PATHS);
    }

    /// Random bytes in the MFT records of the edge-case volume (attribute lists, sparse,
    /// compressed, resident), plus the boot sector.
    #[test]
    fn mutated_mft_and_boot_edge(
        muts in proptest::collection::vec((0usize..80 * 1024, any::<u8>()), 1..8),
        boot in proptest::option::of((0usize..512, any::<u8>())),
    ) {
        let mut img = fx_bytes(EDGE);
        let mft = mft_offset(&img);
        for (off, v) in muts {
            img[mft + off] = v;
        }
        if let Some((off, v)) = boot {
            img[off] = v;
        }
        exercise(img, EDGE_PATHS);
    }
}
