//! Hostile and damaged headers: whatever the bytes, opening, reading and listing partitions
//! return `Ok` or a clean `Err`, never a panic, a hang or a huge allocation.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use vdisk::{Disk, OpenOptions};

struct Template {
    bytes: Vec<u8>,
    /// Byte ranges worth mutating (the structures a reader parses).
    regions: Vec<(usize, usize)>,
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Vhd,
    Vhdx,
    Raw,
}

fn templates() -> &'static Vec<Template> {
    static T: OnceLock<Vec<Template>> = OnceLock::new();
    T.get_or_init(|| {
        let vhd = fixtures::bytes("images/plaso-image.vhd");
        let n = vhd.len();
        let vhdx = fixtures::bytes("images/container-gpt-dynamic.vhdx");
        let mbr = fixtures::bytes("images/container-mbr-logical.raw");
        // The first MiB of the GPT disk: MBR, GPT header and entries (no backup).
        let gpt = {
            let d = Disk::open(fixtures::path("images/container-gpt-fixed.vhd")).unwrap();
            let mut b = vec![0u8; 1 << 20];
            d.read_at(0, &mut b).unwrap();
            b
        };
        vec![
            Template {
                regions: vec![
                    (0, 512),
                    (512, 1536),
                    (1536, 2048),
                    (2048, 2560),
                    (n - 512, n),
                ],
                bytes: vhd,
                kind: Kind::Vhd,
            },
            Template {
                // File identifier, both headers, both region tables, then the metadata and BAT
                // regions qemu puts in the first 3 MiB.
                regions: vec![
                    (0, 512),
                    (0x10000, 0x10100),
                    (0x20000, 0x20100),
                    (0x30000, 0x30200),
                    (0x40000, 0x40200),
                    (0x100000, 0x300000),
                ],
                bytes: vhdx,
                kind: Kind::Vhdx,
            },
            Template {
                regions: vec![
                    (0, 512),
                    (6144 * 512, 6145 * 512),
                    (10240 * 512, 10241 * 512),
                ],
                bytes: mbr,
                kind: Kind::Raw,
            },
            Template {
                regions: vec![(0, 512), (512, 604), (1024, 1024 + 512)],
                bytes: gpt,
                kind: Kind::Raw,
            },
        ]
    })
}

fn crc(poly: u32, data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
        }
    }
    !c
}

/// Makes the checksums right again after mutating, so the parser gets past them.
fn fix_checksums(b: &mut [u8], kind: Kind) {
    match kind {
        Kind::Vhd => {
            let n = b.len();
            if n >= 1536 {
                for at in [0, n - 512] {
                    let s = b[at..at + 512]
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !(64..68).contains(i))
                        .fold(0u32, |a, (_, &v)| a.wrapping_add(v.into()));
                    b[at + 64..at + 68].copy_from_slice(&(!s).to_be_bytes());
                }
                let s = b[512..1536]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !(36..40).contains(i))
                    .fold(0u32, |a, (_, &v)| a.wrapping_add(v.into()));
                b[512 + 36..512 + 40].copy_from_slice(&(!s).to_be_bytes());
            }
        }
        Kind::Vhdx => {
            for (at, len) in [
                (0x10000, 4096),
                (0x20000, 4096),
                (0x30000, 65536),
                (0x40000, 65536),
            ] {
                if b.len() >= at + len {
                    b[at + 4..at + 8].fill(0);
                    let c = crc(0x82F6_3B78, &b[at..at + len]);
                    b[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
                }
            }
        }
        Kind::Raw => {
            // GPT header at 512: entries CRC, then header CRC.
            if b.len() >= 1024 && &b[512..520] == b"EFI PART" {
                let count = u32::from_le_bytes(b[512 + 80..512 + 84].try_into().unwrap()) as usize;
                let size = u32::from_le_bytes(b[512 + 84..512 + 88].try_into().unwrap()) as usize;
                if let Some(len) = count.checked_mul(size).filter(|l| 1024 + l <= b.len()) {
                    let c = crc(0xEDB8_8320, &b[1024..1024 + len]);
                    b[512 + 88..512 + 92].copy_from_slice(&c.to_le_bytes());
                }
                b[512 + 16..512 + 20].fill(0);
                let c = crc(0xEDB8_8320, &b[512..512 + 92]);
                b[512 + 16..512 + 20].copy_from_slice(&c.to_le_bytes());
            }
        }
    }
}

fn exercise(path: &Path) {
    for opts in [OpenOptions::new(), OpenOptions::new().lenient(true)] {
        let Ok(disk) = opts.open(path) else { continue };
        let size = disk.size();
        let mut buf = vec![0u8; 1 << 16];
        // A few reads spread over the disk, including its very end.
        for frac in [0u64, 1, 2, 3, 5, 7, 8] {
            let off = (size / 8 * frac).min(size.saturating_sub(buf.len() as u64));
            let n = (size - off).min(buf.len() as u64) as usize;
            let _ = disk.read_at(off, &mut buf[..n]);
        }
        if let Ok(t) = vdisk::read_partitions(&disk) {
            for p in &t.partitions {
                let _ = vdisk::Slice::partition(&disk, p);
            }
        }
    }
}

fn case_path() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    // One file per test thread.
    dir.path()
        .join(format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_headers_never_panic(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..12),
        interesting in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![0u64, 1, 0x7f, 0x80, 0xff, 0xffff_ffff, u64::MAX, 1 << 20, 1 << 40])), 0..4),
        fix in any::<bool>(),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let t = &templates()[which];
        let mut b = t.bytes.clone();
        for (r, pos, val) in edits {
            let (s, e) = t.regions[r.index(t.regions.len())];
            b[s + pos.index(e - s)] = val;
        }
        // Whole fields set to edge values (8 bytes, little or big endian alike).
        for (pos, val) in interesting {
            let (s, e) = t.regions[pos.index(t.regions.len())];
            let at = s + pos.index(e - s - 8);
            b[at..at + 8].copy_from_slice(&val.to_le_bytes());
        }
        if fix {
            fix_checksums(&mut b, t.kind);
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len()));
        }
        let p = case_path();
        std::fs::write(&p, &b).unwrap();
        exercise(&p);
    }
}
