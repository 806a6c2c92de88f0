//! Any image given to vdisk: detecting the container (raw, VHD fixed / dynamic / differencing,
//! VHDX, refused formats), reading, and parsing the partition table (MBR, EBR chain, GPT) must
//! return Ok or a clean error: no panic, no hang, no huge allocation.
//!
//! vdisk opens files, so the input describes a sparse file compactly (VHDX structures sit at
//! 64 KiB .. several MiB): a sequence of records `[offset: u32 LE][len: u16 LE][len bytes]`
//! placed at `offset * 512`; the first byte holds flags that re-seal checksums after mutation
//! (bit 0: VHD footer and header, bit 1: VHDX headers and region tables, bit 2: GPT header and
//! entries) so the fuzzer reaches the code behind them. Seeds: the container fixtures turned
//! into records of their non-zero sectors.
#![no_main]

use std::io::Write;
use std::os::unix::fs::FileExt;

use libfuzzer_sys::fuzz_target;

/// Largest sparse file described (keeps the temporary file in memory-backed storage small).
const MAX_FILE: u64 = 64 << 20;

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

fn vhd_sum(b: &[u8], skip: usize) -> u32 {
    !b.iter()
        .enumerate()
        .filter(|(i, _)| *i < skip || *i >= skip + 4)
        .fold(0u32, |a, (_, &v)| a.wrapping_add(v.into()))
}

fn reseal(f: &std::fs::File, len: u64, flags: u8) {
    let read = |at: u64, n: usize| {
        let mut b = vec![0u8; n];
        f.read_exact_at(&mut b, at).ok().map(|()| b)
    };
    if flags & 1 != 0 && len >= 1536 {
        for at in [0, len - 512] {
            if let Some(mut b) = read(at, 512) {
                let s = vhd_sum(&b, 64);
                b[64..68].copy_from_slice(&s.to_be_bytes());
                let _ = f.write_all_at(&b, at);
            }
        }
        if let Some(mut b) = read(512, 1024) {
            let s = vhd_sum(&b, 36);
            b[36..40].copy_from_slice(&s.to_be_bytes());
            let _ = f.write_all_at(&b, 512);
        }
    }
    if flags & 2 != 0 {
        for (at, n) in [(0x10000u64, 4096usize), (0x20000, 4096), (0x30000, 65536), (0x40000, 65536)] {
            if let Some(mut b) = read(at, n) {
                b[4..8].fill(0);
                let c = crc(0x82F6_3B78, &b);
                b[4..8].copy_from_slice(&c.to_le_bytes());
                let _ = f.write_all_at(&b, at);
            }
        }
    }
    if flags & 4 != 0 {
        if let Some(mut h) = read(512, 92) {
            let count = u32::from_le_bytes(h[80..84].try_into().unwrap()) as usize;
            let size = u32::from_le_bytes(h[84..88].try_into().unwrap()) as usize;
            if let Some(n) = count.checked_mul(size).filter(|&n| n <= 1 << 20) {
                if let Some(e) = read(1024, n) {
                    h[88..92].copy_from_slice(&crc(0xEDB8_8320, &e).to_le_bytes());
                }
            }
            h[16..20].fill(0);
            let c = crc(0xEDB8_8320, &h);
            h[16..20].copy_from_slice(&c.to_le_bytes());
            let _ = f.write_all_at(&h, 512);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let dir = std::path::Path::new("/dev/shm");
    let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
    let path = dir.join(format!("vdisk-fuzz-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    let mut len = 0u64;
    while rest.len() >= 6 {
        let off = u64::from(u32::from_le_bytes(rest[0..4].try_into().unwrap())) * 512 % MAX_FILE;
        let n = usize::from(u16::from_le_bytes(rest[4..6].try_into().unwrap())).min(rest.len() - 6);
        let chunk = &rest[6..6 + n];
        f.write_all_at(chunk, off).unwrap();
        len = len.max(off + n as u64);
        rest = &rest[6 + n..];
    }
    // A trailing odd length makes the file end mid-sector, as truncated images do.
    f.set_len(len + rest.len() as u64).unwrap();
    f.write_all_at(rest, len).unwrap();
    let len = len + rest.len() as u64;
    reseal(&f, len, flags);
    f.flush().unwrap();
    drop(f);

    for opts in [vdisk::OpenOptions::new(), vdisk::OpenOptions::new().lenient(true)] {
        let Ok(disk) = opts.open(&path) else { continue };
        let _ = disk.identity();
        let size = disk.size();
        let mut buf = vec![0u8; 1 << 16];
        for frac in [0u64, 1, 3, 5, 8] {
            let off = (size / 8 * frac).min(size.saturating_sub(buf.len() as u64));
            let n = (size - off).min(buf.len() as u64) as usize;
            let _ = disk.read_at(off, &mut buf[..n]);
        }
        if let Ok(table) = vdisk::read_partitions(&disk) {
            for p in &table.partitions {
                if let Ok(mut s) = vdisk::Slice::partition(&disk, p) {
                    let mut b = [0u8; 512];
                    let _ = std::io::Read::read(&mut s, &mut b);
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
});
