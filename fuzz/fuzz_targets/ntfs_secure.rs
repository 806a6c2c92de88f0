//! A file's security descriptor from NTFS `$Secure`: any bytes must give Ok or a clean error,
//! no panic and no allocation from a size read off the disk.
//!
//! The first byte chooses what the rest is:
//! - even: a security id (4 bytes, little-endian) and a `$SDS` stream: `volume::find_in_sds`
//!   walks its 256 KiB blocks; an entry found must lie inside the data, state the id and its
//!   own offset, and its descriptor goes on to `regf`'s parser, SDDL and access check as the
//!   access rules use it.
//! - odd: a whole NTFS volume: open it, look up files, read each descriptor through the
//!   security id of `$STANDARD_INFORMATION` (or the file's own `$SECURITY_DESCRIPTOR`). Seeds:
//!   `testdata/images/ntfs-rs-testfs1.xz` and `ntfs-edge-cases.raw.xz`, decompressed, after a
//!   byte 0x01.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use regf::security::{GenericMapping, SecurityDescriptor, ServiceAccount, Token, MAXIMUM_ALLOWED};
use volume::{find_in_sds, Volume};

/// Files of the seed volumes, system files (security id 256, 257) and test files.
const PATHS: &[&str] = &[
    "$LogFile",
    "$Bitmap",
    "$UpCase",
    r"$Extend\$Quota",
    "1000-bytes-file",
    "plain.txt",
    r"Windows\System32\svchost.exe",
];

fn descriptor(d: &[u8]) {
    if let Ok(sd) = SecurityDescriptor::parse(d) {
        let _ = sd.sddl();
        let token = Token::for_service(&ServiceAccount::LocalService, Some(("Dhcp", 1)));
        let _ = sd.access_as(&token, 0x0012_00a9, &GenericMapping::FILE);
        let _ = sd.access_as(&token, MAXIMUM_ALLOWED, &GenericMapping::FILE);
    }
}

fuzz_target!(
    init: {
        // The volume crate catches the `ntfs` crate's panics on damaged metadata and returns
        // them as `Error::ParserPanic`; libFuzzer's panic hook would abort on those caught ones
        // too. The default hook lets them be caught; a panic that escapes (ours, in the `$SDS`
        // walk or the descriptor parser, which nothing catches) still aborts the run.
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        if mode & 1 == 0 {
            if rest.len() < 4 {
                return;
            }
            let id = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let sds = &rest[4..];
            if let Some((off, d)) = find_in_sds(sds, id) {
                let at = off as usize;
                assert!(at + 20 + d.len() <= sds.len(), "an entry past the data");
                assert_eq!(&sds[at + 4..at + 8], &id.to_le_bytes()[..]);
                assert_eq!(&sds[at + 8..at + 16], &off.to_le_bytes()[..]);
                descriptor(d);
            }
            return;
        }
        let mut fs = Cursor::new(rest);
        let Ok(vol) = Volume::open(&mut fs) else {
            return;
        };
        for path in PATHS {
            let Ok(Some(f)) = vol.lookup(&mut fs, path) else {
                continue;
            };
            if let Ok(s) = vol.security(&mut fs, &f) {
                assert!(
                    s.descriptor.len() <= rest.len(),
                    "a descriptor larger than the volume"
                );
                descriptor(&s.descriptor);
            }
        }
    }
);
