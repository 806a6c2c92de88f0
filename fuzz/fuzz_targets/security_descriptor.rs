//! Any bytes given as a key's security descriptor: parse, SDDL, named rights, the access check
//! (key and file generic mappings) for several tokens, and writing back must return Ok or a clean error: no panic, no huge
//! allocation. What parses must also be written back into bytes that parse to the same SDDL.
//!
//! Input: four bytes of desired access mask (little-endian), then the descriptor. Seeds (the
//! distinct descriptors of the real hives): `fuzz/seed-security.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regf::security::{
    GenericMapping, SecurityDescriptor, ServiceAccount, Sid, Token, MAXIMUM_ALLOWED,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let desired = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let Ok(sd) = SecurityDescriptor::parse(&data[4..]) else {
        return;
    };
    let sddl = sd.sddl();
    let _ = sd.control_names();
    for acl in [sd.dacl.acl(), sd.sacl.acl()].into_iter().flatten() {
        for ace in &acl.aces {
            let _ = ace.sddl();
            let _ = ace.rights();
            let _ = ace.sid.as_ref().map(Sid::account_name);
        }
    }
    let tokens = [
        Token::for_service(&ServiceAccount::LocalSystem, None),
        Token::for_service(&ServiceAccount::LocalService, Some(("Dhcp", 1))),
        Token::for_service(&ServiceAccount::NetworkService, Some(("Dnscache", 3))),
        Token::for_service(
            &ServiceAccount::User(Sid::new(5, &[21, 1, 2, 3, 1001])),
            Some(("x", 3)),
        ),
    ];
    for t in &tokens {
        let a = sd.access(t, desired);
        assert_eq!(a.granted & a.denied(), 0, "a right both granted and denied");
        let _ = sd.access(t, MAXIMUM_ALLOWED);
        // A file's descriptor from NTFS $Secure, checked with the file generic mapping.
        let f = sd.access_as(t, desired, &GenericMapping::FILE);
        assert_eq!(f.granted & f.denied(), 0, "a file right both granted and denied");
    }
    let written = sd.to_bytes();
    let again = SecurityDescriptor::parse(&written).expect("our own bytes parse");
    assert_eq!(again.sddl(), sddl);
});
