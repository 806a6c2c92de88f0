//! Helpers shared by the regf fuzz targets: re-sealing what the fuzzer's mutations break
//! (checksums, hashes, sizes) so that it reaches the code behind those checks.
#![allow(dead_code)]

use std::sync::OnceLock;

pub const BASE: usize = 4096;

/// Makes the base block agree with the buffer: hive-bins size = the bins present, sequence
/// numbers equal (clean), checksum recomputed.
pub fn fix_base(bytes: &mut [u8]) {
    if bytes.len() < BASE {
        return;
    }
    let bins = ((bytes.len() - BASE) & !0xFFF) as u32;
    bytes[40..44].copy_from_slice(&bins.to_le_bytes());
    let seq = [bytes[4], bytes[5], bytes[6], bytes[7]];
    bytes[8..12].copy_from_slice(&seq);
    regf::seal(&mut bytes[..BASE]);
}

fn mix(lo: &mut u32, hi: &mut u32) {
    *hi ^= *lo;
    *lo = lo.rotate_left(20).wrapping_add(*hi);
    *hi = hi.rotate_left(9) ^ *lo;
    *lo = lo.rotate_left(27).wrapping_add(*hi);
    *hi = hi.rotate_left(19);
}

/// Marvin32 with the seed Windows uses for log entries.
fn marvin(data: &[u8]) -> u64 {
    const SEED: u64 = 0x82EF_4D88_7A4E_55C5;
    let (mut lo, mut hi) = (SEED as u32, (SEED >> 32) as u32);
    let mut it = data.chunks_exact(4);
    for c in &mut it {
        lo = lo.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        mix(&mut lo, &mut hi);
    }
    let rest = it.remainder();
    let mut last = 0x80u32 << (8 * rest.len());
    for (i, &b) in rest.iter().enumerate() {
        last |= u32::from(b) << (8 * i);
    }
    lo = lo.wrapping_add(last);
    mix(&mut lo, &mut hi);
    mix(&mut lo, &mut hi);
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Re-seals a new-format log: the base block checksum and both hashes of every `HvLE` entry
/// whose size fits in the file.
pub fn reseal_log(log: &mut [u8]) {
    if log.len() < 512 {
        return;
    }
    regf::seal(&mut log[..512]);
    let mut off = 512;
    while off + 40 <= log.len() && &log[off..off + 4] == b"HvLE" {
        let size =
            u32::from_le_bytes([log[off + 4], log[off + 5], log[off + 6], log[off + 7]]) as usize;
        if size < 40 || size % 512 != 0 || off + size > log.len() {
            break;
        }
        let h1 = marvin(&log[off + 40..off + size]);
        log[off + 24..off + 32].copy_from_slice(&h1.to_le_bytes());
        let h2 = marvin(&log[off..off + 32]);
        log[off + 32..off + 40].copy_from_slice(&h2.to_le_bytes());
        off += size;
    }
}

/// A decompressed fixture from testdata/, read once.
pub fn fixture(cell: &'static OnceLock<Vec<u8>>, name: &str) -> &'static [u8] {
    cell.get_or_init(|| fixtures::bytes(name))
}
