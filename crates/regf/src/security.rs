//! Security descriptors of registry keys: parse the self-relative bytes an `sk` record holds,
//! render them as SDDL the way Windows prints them, name the rights for people, and evaluate a
//! DACL for a token the way the Windows access check does.
//!
//! # Getting started
//! ```no_run
//! use regf::security::{SecurityDescriptor, ServiceAccount, Token, MAXIMUM_ALLOWED};
//! let hive = regf::Hive::open(std::fs::read("SYSTEM").unwrap()).unwrap();
//! let key = hive.key(r"ControlSet001\Services\Dhcp").unwrap().unwrap();
//! let sd = SecurityDescriptor::parse(key.security().unwrap().descriptor).unwrap();
//! println!("{}", sd.sddl());
//! let token = Token::for_service(&ServiceAccount::LocalService, Some(("Dhcp", 1)));
//! let access = sd.access(&token, MAXIMUM_ALLOWED);
//! println!("granted 0x{:x}", access.granted);
//! ```
//!
//! Sources: [MS-DTYP] sections 2.4.2 (SID), 2.4.4 (ACE, its types and flags), 2.4.5 (ACL), 2.4.6
//! (SECURITY_DESCRIPTOR), 2.5.1 (SDDL), 2.5.3.2 (access check algorithm); "Registry Key Security
//! and Access Rights" (winnt.h values of KEY_*); "Service security and access rights" and
//! SERVICE_SID_INFO for service SIDs.

use std::fmt;

use crate::{Error, Result};

// ----- access rights -----

pub const KEY_QUERY_VALUE: u32 = 0x0001;
pub const KEY_SET_VALUE: u32 = 0x0002;
pub const KEY_CREATE_SUB_KEY: u32 = 0x0004;
pub const KEY_ENUMERATE_SUB_KEYS: u32 = 0x0008;
pub const KEY_NOTIFY: u32 = 0x0010;
pub const KEY_CREATE_LINK: u32 = 0x0020;
pub const KEY_WOW64_64KEY: u32 = 0x0100;
pub const KEY_WOW64_32KEY: u32 = 0x0200;
pub const DELETE: u32 = 0x0001_0000;
pub const READ_CONTROL: u32 = 0x0002_0000;
pub const WRITE_DAC: u32 = 0x0004_0000;
pub const WRITE_OWNER: u32 = 0x0008_0000;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const GENERIC_READ: u32 = 0x8000_0000;

/// KEY_READ: what GENERIC_READ (and GENERIC_EXECUTE) maps to for a key.
pub const KEY_READ: u32 = 0x0002_0019;
/// KEY_WRITE: what GENERIC_WRITE maps to for a key.
pub const KEY_WRITE: u32 = 0x0002_0006;
/// KEY_EXECUTE is the same mask as KEY_READ.
pub const KEY_EXECUTE: u32 = 0x0002_0019;
/// KEY_ALL_ACCESS: what GENERIC_ALL maps to for a key.
pub const KEY_ALL_ACCESS: u32 = 0x000F_003F;

/// Maps the generic bits of a mask through the registry key generic mapping (the mapping the
/// configuration manager registers for its key object type).
pub fn map_generic(mask: u32) -> u32 {
    let mut out = mask & !(GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ);
    if mask & GENERIC_READ != 0 {
        out |= KEY_READ;
    }
    if mask & GENERIC_WRITE != 0 {
        out |= KEY_WRITE;
    }
    if mask & GENERIC_EXECUTE != 0 {
        out |= KEY_EXECUTE;
    }
    if mask & GENERIC_ALL != 0 {
        out |= KEY_ALL_ACCESS;
    }
    out
}

/// What the generic rights mean for one object type (GENERIC_MAPPING), and the write rights a
/// write-restricted token's second check applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenericMapping {
    pub read: u32,
    pub write: u32,
    pub execute: u32,
    pub all: u32,
}

impl GenericMapping {
    /// Registry keys: KEY_READ, KEY_WRITE, KEY_EXECUTE, KEY_ALL_ACCESS.
    pub const KEY: GenericMapping = GenericMapping {
        read: KEY_READ,
        write: KEY_WRITE,
        execute: KEY_EXECUTE,
        all: KEY_ALL_ACCESS,
    };
    /// Files: FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_GENERIC_EXECUTE, FILE_ALL_ACCESS
    /// (winnt.h).
    pub const FILE: GenericMapping = GenericMapping {
        read: 0x0012_0089,
        write: 0x0012_0116,
        execute: 0x0012_00A0,
        all: 0x001F_01FF,
    };

    /// Maps the generic bits of `mask`.
    pub fn map(&self, mask: u32) -> u32 {
        let mut out = mask & !(GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ);
        for (bit, to) in [
            (GENERIC_READ, self.read),
            (GENERIC_WRITE, self.write),
            (GENERIC_EXECUTE, self.execute),
            (GENERIC_ALL, self.all),
        ] {
            if mask & bit != 0 {
                out |= to;
            }
        }
        out
    }
}

/// Human names of the bits of a key access mask, lowest bit first.
const KEY_RIGHT_NAMES: &[(u32, &str)] = &[
    (KEY_QUERY_VALUE, "QueryValue"),
    (KEY_SET_VALUE, "SetValue"),
    (KEY_CREATE_SUB_KEY, "CreateSubKey"),
    (KEY_ENUMERATE_SUB_KEYS, "EnumerateSubKeys"),
    (KEY_NOTIFY, "Notify"),
    (KEY_CREATE_LINK, "CreateLink"),
    (KEY_WOW64_64KEY, "Wow64_64Key"),
    (KEY_WOW64_32KEY, "Wow64_32Key"),
    (DELETE, "Delete"),
    (READ_CONTROL, "ReadControl"),
    (WRITE_DAC, "WriteDac"),
    (WRITE_OWNER, "WriteOwner"),
    (SYNCHRONIZE, "Synchronize"),
    (ACCESS_SYSTEM_SECURITY, "AccessSystemSecurity"),
    (MAXIMUM_ALLOWED, "MaximumAllowed"),
    (GENERIC_ALL, "GenericAll"),
    (GENERIC_EXECUTE, "GenericExecute"),
    (GENERIC_WRITE, "GenericWrite"),
    (GENERIC_READ, "GenericRead"),
];

/// The bits of a mandatory label ACE (SYSTEM_MANDATORY_LABEL_NO_*_UP), which mean something
/// else than in an access ACE.
const LABEL_RIGHT_NAMES: &[(u32, &str)] = &[(1, "NoWriteUp"), (2, "NoReadUp"), (4, "NoExecuteUp")];

fn names_of(mask: u32, table: &[(u32, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = mask;
    for &(bit, name) in table {
        if mask & bit != 0 {
            out.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("0x{rest:x}"));
    }
    out
}

/// The rights of a key access mask named for people ("QueryValue, EnumerateSubKeys, Notify,
/// ReadControl"); bits without a name are given in hex. An empty mask gives an empty list.
pub fn key_rights(mask: u32) -> Vec<String> {
    names_of(mask, KEY_RIGHT_NAMES)
}

/// SDDL right aliases Windows prints when the whole mask equals one of them (sddl.h: the file
/// and key composites; KX equals KR and Windows prints KR).
const SDDL_COMPOSITES: &[(u32, &str)] = &[
    (0x001F_01FF, "FA"),
    (0x0012_0089, "FR"),
    (0x0012_0116, "FW"),
    (0x0012_00A0, "FX"),
    (KEY_ALL_ACCESS, "KA"),
    (KEY_READ, "KR"),
    (KEY_WRITE, "KW"),
];

/// SDDL single-bit rights, in the ascending bit order Windows prints them in
/// ("CCDCLCSWRPWPDTLOCRSDRCWDWO", then "GAGXGWGR").
const SDDL_BITS: &[(u32, &str)] = &[
    (0x1, "CC"),
    (0x2, "DC"),
    (0x4, "LC"),
    (0x8, "SW"),
    (0x10, "RP"),
    (0x20, "WP"),
    (0x40, "DT"),
    (0x80, "LO"),
    (0x100, "CR"),
    (DELETE, "SD"),
    (READ_CONTROL, "RC"),
    (WRITE_DAC, "WD"),
    (WRITE_OWNER, "WO"),
    (GENERIC_ALL, "GA"),
    (GENERIC_EXECUTE, "GX"),
    (GENERIC_WRITE, "GW"),
    (GENERIC_READ, "GR"),
];

/// The mandatory label rights (only in ML ACEs).
const SDDL_LABEL_BITS: &[(u32, &str)] = &[(1, "NW"), (2, "NR"), (4, "NX")];

/// A mask as Windows writes it in SDDL: a composite alias when the mask equals one, else the
/// concatenated single-bit aliases when every bit has one, else `0x` and lowercase hex.
pub fn sddl_rights(mask: u32, label: bool) -> String {
    if mask == 0 {
        return String::new();
    }
    let bits = if label { SDDL_LABEL_BITS } else { SDDL_BITS };
    if !label {
        if let Some(&(_, alias)) = SDDL_COMPOSITES.iter().find(|&&(m, _)| m == mask) {
            return alias.to_string();
        }
    }
    let named: u32 = bits.iter().fold(0, |acc, &(b, _)| acc | b);
    if mask & !named != 0 {
        return format!("0x{mask:x}");
    }
    bits.iter()
        .filter(|&&(b, _)| mask & b != 0)
        .map(|&(_, n)| n)
        .collect()
}

// ----- control flags -----

pub const SE_OWNER_DEFAULTED: u16 = 0x0001;
pub const SE_GROUP_DEFAULTED: u16 = 0x0002;
pub const SE_DACL_PRESENT: u16 = 0x0004;
pub const SE_DACL_DEFAULTED: u16 = 0x0008;
pub const SE_SACL_PRESENT: u16 = 0x0010;
pub const SE_SACL_DEFAULTED: u16 = 0x0020;
pub const SE_DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
pub const SE_SACL_AUTO_INHERIT_REQ: u16 = 0x0200;
pub const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
pub const SE_SACL_AUTO_INHERITED: u16 = 0x0800;
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const SE_SACL_PROTECTED: u16 = 0x2000;
pub const SE_SELF_RELATIVE: u16 = 0x8000;

// ----- ACE flags -----

pub const OBJECT_INHERIT_ACE: u8 = 0x01;
pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
pub const NO_PROPAGATE_INHERIT_ACE: u8 = 0x04;
pub const INHERIT_ONLY_ACE: u8 = 0x08;
pub const INHERITED_ACE: u8 = 0x10;
pub const SUCCESSFUL_ACCESS_ACE_FLAG: u8 = 0x40;
pub const FAILED_ACCESS_ACE_FLAG: u8 = 0x80;

/// SDDL ACE flags in the order Windows prints them (bit order).
const SDDL_ACE_FLAGS: &[(u8, &str)] = &[
    (OBJECT_INHERIT_ACE, "OI"),
    (CONTAINER_INHERIT_ACE, "CI"),
    (NO_PROPAGATE_INHERIT_ACE, "NP"),
    (INHERIT_ONLY_ACE, "IO"),
    (INHERITED_ACE, "ID"),
    (SUCCESSFUL_ACCESS_ACE_FLAG, "SA"),
    (FAILED_ACCESS_ACE_FLAG, "FA"),
];

/// ACE flags as SDDL ("CIID"). A bit SDDL has no name for (0x20, reserved) is appended in hex,
/// which Windows would refuse to render at all.
pub fn sddl_ace_flags(flags: u8) -> String {
    let mut out = String::new();
    let mut rest = flags;
    for &(bit, name) in SDDL_ACE_FLAGS {
        if flags & bit != 0 {
            out.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push_str(&format!("0x{rest:x}"));
    }
    out
}

// ----- limits -----

/// SID_MAX_SUB_AUTHORITIES: Windows rejects a SID with more.
pub const MAX_SUB_AUTHORITIES: usize = 15;
/// The descriptor revision Windows writes (SECURITY_DESCRIPTOR_REVISION).
pub const SD_REVISION: u8 = 1;

fn bad(offset: usize, what: impl Into<String>) -> Error {
    Error::BadSecurityDescriptor {
        offset,
        what: what.into(),
    }
}

fn get<'a>(data: &'a [u8], off: usize, len: usize, what: &str) -> Result<&'a [u8]> {
    off.checked_add(len)
        .and_then(|end| data.get(off..end))
        .ok_or_else(|| {
            bad(
                off,
                format!(
                    "{what} of {len} bytes runs past the end of the {}-byte descriptor",
                    data.len()
                ),
            )
        })
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

// ----- SID -----

/// A security identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    pub revision: u8,
    /// The 48-bit identifier authority.
    pub authority: u64,
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// A revision-1 SID.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Sid {
        Sid {
            revision: 1,
            authority,
            sub_authorities: sub_authorities.to_vec(),
        }
    }

    /// Reads a SID at `off` of `data` (offsets in errors are relative to `data`). Returns the SID
    /// and its length in bytes.
    pub fn read(data: &[u8], off: usize) -> Result<(Sid, usize)> {
        let head = get(data, off, 8, "SID header")?;
        let revision = head[0];
        if revision != 1 {
            return Err(bad(off, format!("SID revision is {revision}, expected 1")));
        }
        let count = usize::from(head[1]);
        if count > MAX_SUB_AUTHORITIES {
            return Err(bad(
                off + 1,
                format!("SID has {count} sub-authorities, at most {MAX_SUB_AUTHORITIES} allowed"),
            ));
        }
        let authority = head[2..8]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let subs = get(data, off + 8, 4 * count, "SID sub-authorities")?;
        let sub_authorities = subs.chunks_exact(4).map(le32).collect();
        Ok((
            Sid {
                revision,
                authority,
                sub_authorities,
            },
            8 + 4 * count,
        ))
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * self.sub_authorities.len());
        out.push(self.revision);
        out.push(self.sub_authorities.len() as u8);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Parses the string form `S-1-5-32-544` (authority in decimal, or `0x` and 12 hex digits
    /// as Windows writes authorities of 2^32 and above). Returns None when it is not one.
    pub fn parse(s: &str) -> Option<Sid> {
        let mut parts = s
            .strip_prefix("S-")
            .or_else(|| s.strip_prefix("s-"))?
            .split('-');
        let revision: u8 = parts.next()?.parse().ok()?;
        let auth = parts.next()?;
        let authority = match auth.strip_prefix("0x").or_else(|| auth.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16).ok()?,
            None => auth.parse().ok()?,
        };
        if authority >= 1 << 48 {
            return None;
        }
        let subs: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
        if subs.len() > MAX_SUB_AUTHORITIES {
            return None;
        }
        Some(Sid {
            revision,
            authority,
            sub_authorities: subs,
        })
    }

    fn is(&self, authority: u64, subs: &[u32]) -> bool {
        self.authority == authority && self.sub_authorities == subs
    }

    /// The two-letter SDDL alias Windows prints for this SID, if it has one. Only the aliases
    /// of machine-independent SIDs are listed: the domain-relative ones (DA, DU, LA, ...) depend
    /// on the machine's or domain's SID, which a hive alone does not give.
    pub fn sddl_alias(&self) -> Option<&'static str> {
        WELL_KNOWN
            .iter()
            .find(|w| self.is(w.authority, w.subs))
            .and_then(|w| w.alias)
    }

    /// The account name Windows shows for a well-known SID ("NT AUTHORITY\SYSTEM").
    pub fn account_name(&self) -> Option<&'static str> {
        WELL_KNOWN
            .iter()
            .find(|w| self.is(w.authority, w.subs))
            .map(|w| w.name)
    }

    /// The SID as SDDL writes it: its alias, or the string form.
    pub fn sddl(&self) -> String {
        match self.sddl_alias() {
            Some(a) => a.to_string(),
            None => self.to_string(),
        }
    }

    /// The service SID of `NT SERVICE\<name>`: S-1-5-80 followed by the SHA-1 of the
    /// upper-cased UTF-16LE service name, read as five little-endian 32-bit numbers.
    pub fn service(name: &str) -> Sid {
        let bytes: Vec<u8> = name
            .encode_utf16()
            .map(crate::names::upcase)
            .flat_map(u16::to_le_bytes)
            .collect();
        let digest = sha1(&bytes);
        let mut subs = vec![80];
        subs.extend(digest.chunks_exact(4).map(le32));
        Sid::new(5, &subs)
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ConvertSidToStringSid: decimal below 2^32, else 0x and 12 hex digits.
        if self.authority < 1 << 32 {
            write!(f, "S-{}-{}", self.revision, self.authority)?;
        } else {
            write!(f, "S-{}-0x{:012x}", self.revision, self.authority)?;
        }
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

struct WellKnown {
    authority: u64,
    subs: &'static [u32],
    alias: Option<&'static str>,
    name: &'static str,
}

const fn wk(
    authority: u64,
    subs: &'static [u32],
    alias: Option<&'static str>,
    name: &'static str,
) -> WellKnown {
    WellKnown {
        authority,
        subs,
        alias,
        name,
    }
}

/// Well-known SIDs with their SDDL alias (sddl.h, [MS-DTYP] 2.5.1.1) and the account name
/// Windows shows.
#[rustfmt::skip]
const WELL_KNOWN: &[WellKnown] = &[
    wk(0, &[0], None, "NULL SID"),
    wk(1, &[0], Some("WD"), "Everyone"),
    wk(2, &[0], None, "LOCAL"),
    wk(2, &[1], None, "CONSOLE LOGON"),
    wk(3, &[0], Some("CO"), "CREATOR OWNER"),
    wk(3, &[1], Some("CG"), "CREATOR GROUP"),
    wk(3, &[4], Some("OW"), "OWNER RIGHTS"),
    wk(5, &[1], None, "NT AUTHORITY\\DIALUP"),
    wk(5, &[2], Some("NU"), "NT AUTHORITY\\NETWORK"),
    wk(5, &[3], None, "NT AUTHORITY\\BATCH"),
    wk(5, &[4], Some("IU"), "NT AUTHORITY\\INTERACTIVE"),
    wk(5, &[6], Some("SU"), "NT AUTHORITY\\SERVICE"),
    wk(5, &[7], Some("AN"), "NT AUTHORITY\\ANONYMOUS LOGON"),
    wk(5, &[9], Some("ED"), "NT AUTHORITY\\ENTERPRISE DOMAIN CONTROLLERS"),
    wk(5, &[10], Some("PS"), "NT AUTHORITY\\SELF"),
    wk(5, &[11], Some("AU"), "NT AUTHORITY\\Authenticated Users"),
    wk(5, &[12], Some("RC"), "NT AUTHORITY\\RESTRICTED"),
    wk(5, &[13], None, "NT AUTHORITY\\TERMINAL SERVER USER"),
    wk(5, &[14], None, "NT AUTHORITY\\REMOTE INTERACTIVE LOGON"),
    wk(5, &[15], None, "NT AUTHORITY\\This Organization"),
    wk(5, &[17], None, "NT AUTHORITY\\IUSR"),
    wk(5, &[18], Some("SY"), "NT AUTHORITY\\SYSTEM"),
    wk(5, &[19], Some("LS"), "NT AUTHORITY\\LOCAL SERVICE"),
    wk(5, &[20], Some("NS"), "NT AUTHORITY\\NETWORK SERVICE"),
    wk(5, &[32, 544], Some("BA"), "BUILTIN\\Administrators"),
    wk(5, &[32, 545], Some("BU"), "BUILTIN\\Users"),
    wk(5, &[32, 546], Some("BG"), "BUILTIN\\Guests"),
    wk(5, &[32, 547], Some("PU"), "BUILTIN\\Power Users"),
    wk(5, &[32, 548], Some("AO"), "BUILTIN\\Account Operators"),
    wk(5, &[32, 549], Some("SO"), "BUILTIN\\Server Operators"),
    wk(5, &[32, 550], Some("PO"), "BUILTIN\\Print Operators"),
    wk(5, &[32, 551], Some("BO"), "BUILTIN\\Backup Operators"),
    wk(5, &[32, 552], Some("RE"), "BUILTIN\\Replicator"),
    wk(5, &[32, 554], Some("RU"), "BUILTIN\\Pre-Windows 2000 Compatible Access"),
    wk(5, &[32, 555], Some("RD"), "BUILTIN\\Remote Desktop Users"),
    wk(5, &[32, 556], Some("NO"), "BUILTIN\\Network Configuration Operators"),
    wk(5, &[32, 558], Some("MU"), "BUILTIN\\Performance Monitor Users"),
    wk(5, &[32, 559], Some("LU"), "BUILTIN\\Performance Log Users"),
    wk(5, &[32, 568], Some("IS"), "BUILTIN\\IIS_IUSRS"),
    wk(5, &[32, 569], Some("CY"), "BUILTIN\\Cryptographic Operators"),
    wk(5, &[32, 573], Some("ER"), "BUILTIN\\Event Log Readers"),
    wk(5, &[32, 574], Some("CD"), "BUILTIN\\Certificate Service DCOM Access"),
    wk(5, &[32, 575], Some("RA"), "BUILTIN\\RDS Remote Access Servers"),
    wk(5, &[32, 576], Some("ES"), "BUILTIN\\RDS Endpoint Servers"),
    wk(5, &[32, 577], Some("MS"), "BUILTIN\\RDS Management Servers"),
    wk(5, &[32, 578], Some("HA"), "BUILTIN\\Hyper-V Administrators"),
    wk(5, &[32, 579], Some("AA"), "BUILTIN\\Access Control Assistance Operators"),
    wk(5, &[32, 580], Some("RM"), "BUILTIN\\Remote Management Users"),
    wk(5, &[33], Some("WR"), "NT AUTHORITY\\WRITE RESTRICTED"),
    wk(5, &[80, 0], None, "NT SERVICE\\ALL SERVICES"),
    wk(5, &[84, 0, 0, 0, 0, 0], Some("UD"), "NT AUTHORITY\\USER MODE DRIVERS"),
    wk(15, &[2, 1], Some("AC"), "APPLICATION PACKAGE AUTHORITY\\ALL APPLICATION PACKAGES"),
    wk(15, &[2, 2], None, "APPLICATION PACKAGE AUTHORITY\\ALL RESTRICTED APPLICATION PACKAGES"),
    wk(16, &[4096], Some("LW"), "Mandatory Label\\Low Mandatory Level"),
    wk(16, &[8192], Some("ME"), "Mandatory Label\\Medium Mandatory Level"),
    wk(16, &[8448], Some("MP"), "Mandatory Label\\Medium Plus Mandatory Level"),
    wk(16, &[12288], Some("HI"), "Mandatory Label\\High Mandatory Level"),
    wk(16, &[16384], Some("SI"), "Mandatory Label\\System Mandatory Level"),
    wk(18, &[1], Some("AS"), "Authentication authority asserted identity"),
    wk(18, &[2], Some("SS"), "Service asserted identity"),
];

/// SHA-1 (FIPS 180-4), only for service SIDs: the digest is part of the SID, not a security
/// measure, so SHA-1's weakness does not matter here.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

// ----- ACE -----

/// An ACE type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AceType(pub u8);

impl AceType {
    pub const ACCESS_ALLOWED: AceType = AceType(0x00);
    pub const ACCESS_DENIED: AceType = AceType(0x01);
    pub const SYSTEM_AUDIT: AceType = AceType(0x02);
    pub const SYSTEM_ALARM: AceType = AceType(0x03);
    pub const ACCESS_ALLOWED_COMPOUND: AceType = AceType(0x04);
    pub const ACCESS_ALLOWED_OBJECT: AceType = AceType(0x05);
    pub const ACCESS_DENIED_OBJECT: AceType = AceType(0x06);
    pub const SYSTEM_AUDIT_OBJECT: AceType = AceType(0x07);
    pub const SYSTEM_ALARM_OBJECT: AceType = AceType(0x08);
    pub const ACCESS_ALLOWED_CALLBACK: AceType = AceType(0x09);
    pub const ACCESS_DENIED_CALLBACK: AceType = AceType(0x0A);
    pub const ACCESS_ALLOWED_CALLBACK_OBJECT: AceType = AceType(0x0B);
    pub const ACCESS_DENIED_CALLBACK_OBJECT: AceType = AceType(0x0C);
    pub const SYSTEM_AUDIT_CALLBACK: AceType = AceType(0x0D);
    pub const SYSTEM_ALARM_CALLBACK: AceType = AceType(0x0E);
    pub const SYSTEM_AUDIT_CALLBACK_OBJECT: AceType = AceType(0x0F);
    pub const SYSTEM_ALARM_CALLBACK_OBJECT: AceType = AceType(0x10);
    pub const SYSTEM_MANDATORY_LABEL: AceType = AceType(0x11);
    pub const SYSTEM_RESOURCE_ATTRIBUTE: AceType = AceType(0x12);
    pub const SYSTEM_SCOPED_POLICY_ID: AceType = AceType(0x13);
    pub const SYSTEM_PROCESS_TRUST_LABEL: AceType = AceType(0x14);
    pub const SYSTEM_ACCESS_FILTER: AceType = AceType(0x15);

    /// Whether the body has the object layout (flags, optional GUIDs, then the SID).
    pub fn is_object(self) -> bool {
        matches!(self.0, 0x05..=0x08 | 0x0B | 0x0C | 0x0F | 0x10)
    }

    /// Whether the body is mask + SID (+ application data): every type Windows defines except
    /// the compound ACE, whose layout carries two SIDs and a type of its own.
    pub fn is_known(self) -> bool {
        self.0 <= 0x15 && self.0 != 0x04
    }

    /// Whether it grants access in a DACL (the plain, object and callback allow types).
    pub fn is_allow(self) -> bool {
        matches!(self.0, 0x00 | 0x05 | 0x09 | 0x0B)
    }

    /// Whether it denies access in a DACL.
    pub fn is_deny(self) -> bool {
        matches!(self.0, 0x01 | 0x06 | 0x0A | 0x0C)
    }

    /// Whether it is a callback (conditional) ACE, whose condition only Authz can evaluate.
    pub fn is_callback(self) -> bool {
        matches!(self.0, 0x09..=0x10)
    }

    /// The SDDL ace_type string (sddl.h), if SDDL has one.
    pub fn sddl(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "A",
            0x01 => "D",
            0x02 => "AU",
            0x03 => "AL",
            0x05 => "OA",
            0x06 => "OD",
            0x07 => "OU",
            0x08 => "OL",
            0x09 => "XA",
            0x0A => "XD",
            0x0B => "ZA",
            0x0D => "XU",
            0x11 => "ML",
            0x12 => "RA",
            0x13 => "SP",
            0x14 => "TL",
            0x15 => "FL",
            _ => return None,
        })
    }

    /// A name for people ("AccessAllowed").
    pub fn name(self) -> String {
        let n = match self.0 {
            0x00 => "AccessAllowed",
            0x01 => "AccessDenied",
            0x02 => "SystemAudit",
            0x03 => "SystemAlarm",
            0x04 => "AccessAllowedCompound",
            0x05 => "AccessAllowedObject",
            0x06 => "AccessDeniedObject",
            0x07 => "SystemAuditObject",
            0x08 => "SystemAlarmObject",
            0x09 => "AccessAllowedCallback",
            0x0A => "AccessDeniedCallback",
            0x0B => "AccessAllowedCallbackObject",
            0x0C => "AccessDeniedCallbackObject",
            0x0D => "SystemAuditCallback",
            0x0E => "SystemAlarmCallback",
            0x0F => "SystemAuditCallbackObject",
            0x10 => "SystemAlarmCallbackObject",
            0x11 => "SystemMandatoryLabel",
            0x12 => "SystemResourceAttribute",
            0x13 => "SystemScopedPolicyId",
            0x14 => "SystemProcessTrustLabel",
            0x15 => "SystemAccessFilter",
            t => return format!("Unknown(0x{t:02x})"),
        };
        n.to_string()
    }
}

/// A GUID in an object ACE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first three fields are little-endian, the last eight bytes are in order.
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            le32(&b[0..4]),
            le16(&b[4..6]),
            le16(&b[6..8]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

/// ACE_OBJECT_TYPE_PRESENT / ACE_INHERITED_OBJECT_TYPE_PRESENT.
const OBJECT_TYPE_PRESENT: u32 = 1;
const INHERITED_OBJECT_TYPE_PRESENT: u32 = 2;

/// One access control entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// Where it starts in the descriptor.
    pub offset: usize,
    pub ace_type: AceType,
    pub flags: u8,
    /// The access mask (for types Windows does not define: the 4 bytes after the header, 0 when
    /// the ACE is shorter).
    pub mask: u32,
    /// The object ACE flags (0 for other types).
    pub object_flags: u32,
    pub object_type: Option<Guid>,
    pub inherited_object_type: Option<Guid>,
    /// The trustee (None for the compound and unknown types, whose body is kept in `data`).
    pub sid: Option<Sid>,
    /// The bytes after the SID up to the ACE's size: the condition of a callback ACE, the
    /// attribute of a resource attribute ACE, padding otherwise; for an unknown type, the
    /// whole body after the header.
    pub data: Vec<u8>,
}

impl Ace {
    fn read(sd: &[u8], off: usize, limit: usize) -> Result<(Ace, usize)> {
        let head = get(sd, off, 4, "ACE header")?;
        let ace_type = AceType(head[0]);
        let flags = head[1];
        let size = usize::from(le16(&head[2..4]));
        if size < 4 {
            return Err(bad(
                off + 2,
                format!("ACE size {size} is smaller than its header"),
            ));
        }
        if off + size > limit {
            return Err(bad(
                off + 2,
                format!("ACE of {size} bytes runs past the end of its ACL at byte 0x{limit:x}"),
            ));
        }
        // Everything below reads within the ACE only.
        let ace = &sd[..off + size];
        let mut ace_out = Ace {
            offset: off,
            ace_type,
            flags,
            mask: 0,
            object_flags: 0,
            object_type: None,
            inherited_object_type: None,
            sid: None,
            data: Vec::new(),
        };
        if !ace_type.is_known() {
            if size >= 8 {
                ace_out.mask = le32(&ace[off + 4..off + 8]);
            }
            ace_out.data = ace[off + 4..].to_vec();
            return Ok((ace_out, size));
        }
        ace_out.mask = le32(get(ace, off + 4, 4, "ACE access mask")?);
        let mut pos = off + 8;
        if ace_type.is_object() {
            ace_out.object_flags = le32(get(ace, pos, 4, "object ACE flags")?);
            pos += 4;
            if ace_out.object_flags & OBJECT_TYPE_PRESENT != 0 {
                let g = get(ace, pos, 16, "object type GUID")?;
                let mut a = [0u8; 16];
                a.copy_from_slice(g);
                ace_out.object_type = Some(Guid(a));
                pos += 16;
            }
            if ace_out.object_flags & INHERITED_OBJECT_TYPE_PRESENT != 0 {
                let g = get(ace, pos, 16, "inherited object type GUID")?;
                let mut a = [0u8; 16];
                a.copy_from_slice(g);
                ace_out.inherited_object_type = Some(Guid(a));
                pos += 16;
            }
        }
        let (sid, len) = Sid::read(ace, pos)?;
        ace_out.sid = Some(sid);
        ace_out.data = ace[pos + len..].to_vec();
        Ok((ace_out, size))
    }

    /// The ACE in SDDL: `(A;CIID;KR;;;BU)`. Windows appends the text of a callback ACE's
    /// condition; this renders its bytes as hex instead (`(XA;;KR;;;WD;0x...)`), and an ACE type
    /// SDDL has no string for as its number.
    pub fn sddl(&self) -> String {
        let t = match self.ace_type.sddl() {
            Some(t) => t.to_string(),
            None => format!("0x{:x}", self.ace_type.0),
        };
        let label = self.ace_type == AceType::SYSTEM_MANDATORY_LABEL;
        let guid = |g: &Option<Guid>| g.map(|g| g.to_string()).unwrap_or_default();
        let sid = self.sid.as_ref().map(Sid::sddl).unwrap_or_default();
        let mut out = format!(
            "({t};{};{};{};{};{sid}",
            sddl_ace_flags(self.flags),
            sddl_rights(self.mask, label),
            guid(&self.object_type),
            guid(&self.inherited_object_type),
        );
        if self.ace_type.is_callback() && self.data.iter().any(|&b| b != 0) {
            out.push_str(";0x");
            for b in &self.data {
                out.push_str(&format!("{b:02x}"));
            }
        }
        out.push(')');
        out
    }

    /// The rights named for people; the bits of a mandatory label ACE get their label names.
    pub fn rights(&self) -> Vec<String> {
        if self.ace_type == AceType::SYSTEM_MANDATORY_LABEL {
            names_of(self.mask, LABEL_RIGHT_NAMES)
        } else {
            key_rights(self.mask)
        }
    }

    /// Whether the access check skips it (INHERIT_ONLY: it only says what children inherit).
    pub fn is_inherit_only(&self) -> bool {
        self.flags & INHERIT_ONLY_ACE != 0
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.push(self.ace_type.0);
        body.push(self.flags);
        body.extend_from_slice(&[0, 0]);
        if !self.ace_type.is_known() {
            body.extend_from_slice(&self.data);
        } else {
            body.extend_from_slice(&self.mask.to_le_bytes());
            if self.ace_type.is_object() {
                body.extend_from_slice(&self.object_flags.to_le_bytes());
                if let Some(g) = self.object_type {
                    body.extend_from_slice(&g.0);
                }
                if let Some(g) = self.inherited_object_type {
                    body.extend_from_slice(&g.0);
                }
            }
            if let Some(s) = &self.sid {
                body.extend_from_slice(&s.to_bytes());
            }
            body.extend_from_slice(&self.data);
        }
        let len = body.len() as u16;
        body[2..4].copy_from_slice(&len.to_le_bytes());
        body
    }
}

// ----- ACL -----

/// An access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// ACL_REVISION (2) or ACL_REVISION_DS (4, when object ACEs are present).
    pub revision: u8,
    /// The AclSize field. Windows may leave free space after the last ACE (it grows ACLs in
    /// place), which is kept so that writing the ACL back gives the same bytes.
    pub size: u16,
    pub aces: Vec<Ace>,
}

impl Acl {
    fn read(sd: &[u8], off: usize) -> Result<Acl> {
        let head = get(sd, off, 8, "ACL header")?;
        let revision = head[0];
        if !(2..=4).contains(&revision) {
            return Err(bad(
                off,
                format!("ACL revision is {revision}, expected 2 to 4"),
            ));
        }
        let size = usize::from(le16(&head[2..4]));
        let count = usize::from(le16(&head[4..6]));
        if size < 8 {
            return Err(bad(
                off + 2,
                format!("ACL size {size} is smaller than its header"),
            ));
        }
        get(sd, off, size, "ACL")?;
        let limit = off + size;
        // Each ACE takes at least 4 bytes, so `count` is capped by the ACL size before any
        // allocation follows it.
        let mut aces = Vec::with_capacity(count.min(size / 4));
        let mut pos = off + 8;
        for i in 0..count {
            if pos >= limit {
                return Err(bad(
                    off + 4,
                    format!("ACL says {count} ACEs but its {size} bytes end after {i}"),
                ));
            }
            let (ace, len) = Ace::read(sd, pos, limit)?;
            aces.push(ace);
            pos += len;
        }
        Ok(Acl {
            revision,
            size: size as u16,
            aces,
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut aces: Vec<u8> = self.aces.iter().flat_map(Ace::to_bytes).collect();
        // Keep the free space after the ACEs, zeroed.
        let size = (8 + aces.len()).max(usize::from(self.size));
        aces.resize(size - 8, 0);
        let mut out = vec![self.revision, 0];
        out.extend_from_slice(&(size as u16).to_le_bytes());
        out.extend_from_slice(&(self.aces.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&aces);
        out
    }

    fn sddl(&self) -> String {
        self.aces.iter().map(Ace::sddl).collect()
    }
}

/// A DACL or SACL slot of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclField {
    /// The PRESENT control flag is clear.
    NotPresent,
    /// Present with offset 0: a NULL ACL (for a DACL: everyone has full access).
    Null,
    Acl(Acl),
}

impl AclField {
    /// The list, if there is one.
    pub fn acl(&self) -> Option<&Acl> {
        match self {
            AclField::Acl(a) => Some(a),
            _ => None,
        }
    }
}

// ----- descriptor -----

/// A parsed self-relative security descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    pub revision: u8,
    /// Sbz1, the resource manager control byte (kept to write the descriptor back unchanged).
    pub rm_control: u8,
    pub control: u16,
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    pub sacl: AclField,
    pub dacl: AclField,
}

impl SecurityDescriptor {
    /// Parses the bytes an `sk` record holds (SECURITY_DESCRIPTOR_RELATIVE). Errors give the
    /// byte offset within the descriptor.
    pub fn parse(sd: &[u8]) -> Result<SecurityDescriptor> {
        let head = get(sd, 0, 20, "descriptor header")?;
        let revision = head[0];
        if revision != SD_REVISION {
            return Err(bad(0, format!("revision is {revision}, expected 1")));
        }
        let control = le16(&head[2..4]);
        if control & SE_SELF_RELATIVE == 0 {
            return Err(bad(
                2,
                format!(
                    "control 0x{control:04x} lacks SE_SELF_RELATIVE: offsets would be pointers"
                ),
            ));
        }
        let offset_at = |at: usize| le32(&head[at..at + 4]) as usize;
        let sid_at = |at: usize| -> Result<Option<Sid>> {
            match offset_at(at) {
                0 => Ok(None),
                o => Sid::read(sd, o).map(|(s, _)| Some(s)),
            }
        };
        let acl_at = |flag: u16, at: usize| -> Result<AclField> {
            if control & flag == 0 {
                return Ok(AclField::NotPresent);
            }
            match offset_at(at) {
                0 => Ok(AclField::Null),
                o => Acl::read(sd, o).map(AclField::Acl),
            }
        };
        Ok(SecurityDescriptor {
            revision,
            rm_control: head[1],
            control,
            owner: sid_at(4)?,
            group: sid_at(8)?,
            sacl: acl_at(SE_SACL_PRESENT, 12)?,
            dacl: acl_at(SE_DACL_PRESENT, 16)?,
        })
    }

    /// The self-relative bytes, laid out as Windows lays them out (header, SACL, DACL, owner,
    /// group). The PRESENT flags follow the ACL fields.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut control = self.control | SE_SELF_RELATIVE;
        let mut out = vec![0u8; 20];
        out[0] = self.revision;
        out[1] = self.rm_control;
        let put = |out: &mut Vec<u8>, field: usize, bytes: Option<Vec<u8>>| {
            if let Some(b) = bytes {
                let at = out.len() as u32;
                out[field..field + 4].copy_from_slice(&at.to_le_bytes());
                out.extend_from_slice(&b);
            }
        };
        for (field, acl, flag) in [
            (12, &self.sacl, SE_SACL_PRESENT),
            (16, &self.dacl, SE_DACL_PRESENT),
        ] {
            match acl {
                AclField::NotPresent => control &= !flag,
                AclField::Null => control |= flag,
                AclField::Acl(a) => {
                    control |= flag;
                    put(&mut out, field, Some(a.to_bytes()));
                }
            }
        }
        put(&mut out, 4, self.owner.as_ref().map(Sid::to_bytes));
        put(&mut out, 8, self.group.as_ref().map(Sid::to_bytes));
        out[2..4].copy_from_slice(&control.to_le_bytes());
        out
    }

    /// The descriptor as SDDL, in the form ConvertSecurityDescriptorToStringSecurityDescriptor
    /// gives for owner, group, DACL and SACL: `O:SYG:SYD:AI(A;CIID;KR;;;BU)`.
    pub fn sddl(&self) -> String {
        let mut out = String::new();
        if let Some(o) = &self.owner {
            out.push_str("O:");
            out.push_str(&o.sddl());
        }
        if let Some(g) = &self.group {
            out.push_str("G:");
            out.push_str(&g.sddl());
        }
        let c = self.control;
        for (tag, acl, protected, req, inherited) in [
            (
                "D:",
                &self.dacl,
                SE_DACL_PROTECTED,
                SE_DACL_AUTO_INHERIT_REQ,
                SE_DACL_AUTO_INHERITED,
            ),
            (
                "S:",
                &self.sacl,
                SE_SACL_PROTECTED,
                SE_SACL_AUTO_INHERIT_REQ,
                SE_SACL_AUTO_INHERITED,
            ),
        ] {
            if *acl == AclField::NotPresent {
                continue;
            }
            out.push_str(tag);
            if c & protected != 0 {
                out.push('P');
            }
            if c & req != 0 {
                out.push_str("AR");
            }
            if c & inherited != 0 {
                out.push_str("AI");
            }
            match acl {
                AclField::Null => out.push_str("NO_ACCESS_CONTROL"),
                AclField::Acl(a) => out.push_str(&a.sddl()),
                AclField::NotPresent => {}
            }
        }
        out
    }

    /// The control flags named for people.
    pub fn control_names(&self) -> Vec<&'static str> {
        const NAMES: &[(u16, &str)] = &[
            (SE_OWNER_DEFAULTED, "OwnerDefaulted"),
            (SE_GROUP_DEFAULTED, "GroupDefaulted"),
            (SE_DACL_PRESENT, "DaclPresent"),
            (SE_DACL_DEFAULTED, "DaclDefaulted"),
            (SE_SACL_PRESENT, "SaclPresent"),
            (SE_SACL_DEFAULTED, "SaclDefaulted"),
            (SE_DACL_AUTO_INHERIT_REQ, "DaclAutoInheritReq"),
            (SE_SACL_AUTO_INHERIT_REQ, "SaclAutoInheritReq"),
            (SE_DACL_AUTO_INHERITED, "DaclAutoInherited"),
            (SE_SACL_AUTO_INHERITED, "SaclAutoInherited"),
            (SE_DACL_PROTECTED, "DaclProtected"),
            (SE_SACL_PROTECTED, "SaclProtected"),
            (SE_SELF_RELATIVE, "SelfRelative"),
        ];
        NAMES
            .iter()
            .filter(|&&(b, _)| self.control & b != 0)
            .map(|&(_, n)| n)
            .collect()
    }

    /// Evaluates the DACL for `token` and a desired access mask (generic bits are mapped;
    /// [`MAXIMUM_ALLOWED`] asks for everything the DACL would grant). See [`Access`].
    pub fn access(&self, token: &Token, desired: u32) -> Access {
        access_check(self, token, desired, &GenericMapping::KEY)
    }

    /// As [`SecurityDescriptor::access`], for another object type's generic mapping (a file's,
    /// [`GenericMapping::FILE`], for descriptors of NTFS `$Secure`).
    pub fn access_as(&self, token: &Token, desired: u32, mapping: &GenericMapping) -> Access {
        access_check(self, token, desired, mapping)
    }
}

// ----- access check -----

/// Which account a service runs as (the crate winsvc classifies a service's `ObjectName`; a
/// virtual account `NT SERVICE\<name>` is `User(Sid::service(name))`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccount {
    LocalSystem,
    LocalService,
    NetworkService,
    /// Any other account, by SID (a hive alone does not map user names to SIDs).
    User(Sid),
}

impl ServiceAccount {
    /// The user SID of the account.
    pub fn sid(&self) -> Sid {
        match self {
            ServiceAccount::LocalSystem => Sid::new(5, &[18]),
            ServiceAccount::LocalService => Sid::new(5, &[19]),
            ServiceAccount::NetworkService => Sid::new(5, &[20]),
            ServiceAccount::User(s) => s.clone(),
        }
    }
}

/// SERVICE_SID_TYPE_UNRESTRICTED: the service SID is added to the token's groups.
pub const SERVICE_SID_TYPE_UNRESTRICTED: u32 = 1;
/// SERVICE_SID_TYPE_RESTRICTED: as unrestricted, and the token is also write-restricted.
pub const SERVICE_SID_TYPE_RESTRICTED: u32 = 3;

/// An access token as far as a DACL is concerned: the enabled SIDs (user and groups) and, for a
/// restricted token, the restricting SIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub user: Sid,
    /// Enabled group SIDs (deny-only groups are not modelled: service tokens have none).
    pub groups: Vec<Sid>,
    /// Restricting SIDs: when not empty, a second access check runs with only these, and a right
    /// is granted only if both checks grant it.
    pub restricting: Vec<Sid>,
    /// A write-restricted token (restricted services): the second check applies only to the
    /// write rights (the GENERIC_WRITE mapping, [`KEY_WRITE`]); other rights come from the first
    /// check alone.
    pub write_restricted: bool,
}

impl Token {
    /// A token with a user and groups.
    pub fn new(user: Sid, groups: Vec<Sid>) -> Token {
        Token {
            user,
            groups,
            restricting: Vec::new(),
            write_restricted: false,
        }
    }

    /// Whether the user or an enabled group is `sid`.
    pub fn has(&self, sid: &Sid) -> bool {
        self.user == *sid || self.groups.contains(sid)
    }

    /// The token the service control manager builds for a service running as `account`, with
    /// the service's name and `ServiceSidType` when it has a service SID.
    ///
    /// Groups, as `whoami /groups` shows them inside services on Windows 10: LocalSystem gets
    /// Administrators, Everyone and Authenticated Users; LocalService, NetworkService and user
    /// accounts get Everyone, Users (a user account is assumed to be a member, as accounts are by
    /// default), SERVICE, CONSOLE LOGON, Authenticated Users, This Organization and LOCAL.
    /// Every service token also holds SERVICE. The logon session SID is unknown offline and left
    /// out.
    ///
    /// With `ServiceSidType` 1 the service SID `NT SERVICE\<name>` is an enabled group; with 3
    /// (restricted) it is a group too and the token is write-restricted: its restricting SIDs are
    /// the service SID, Everyone and WRITE RESTRICTED (S-1-5-33), so a write right is granted
    /// only when the DACL also grants it to one of those (a second access check).
    pub fn for_service(account: &ServiceAccount, service: Option<(&str, u32)>) -> Token {
        let everyone = Sid::new(1, &[0]);
        let mut groups = match account {
            ServiceAccount::LocalSystem => vec![
                Sid::new(5, &[32, 544]),
                everyone.clone(),
                Sid::new(5, &[11]),
                Sid::new(5, &[6]),
            ],
            _ => vec![
                everyone.clone(),
                Sid::new(5, &[32, 545]),
                Sid::new(5, &[6]),
                Sid::new(2, &[1]),
                Sid::new(5, &[11]),
                Sid::new(5, &[15]),
                Sid::new(2, &[0]),
            ],
        };
        let mut token = Token::new(account.sid(), Vec::new());
        if let Some((name, sid_type)) = service {
            if sid_type == SERVICE_SID_TYPE_UNRESTRICTED || sid_type == SERVICE_SID_TYPE_RESTRICTED
            {
                let sid = Sid::service(name);
                groups.push(sid.clone());
                if sid_type == SERVICE_SID_TYPE_RESTRICTED {
                    token.restricting = vec![sid, everyone, Sid::new(5, &[33])];
                    token.write_restricted = true;
                }
            }
        }
        token.groups = groups;
        token
    }
}

/// Why a requested right was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// The deny ACE at this index of the DACL matched first.
    Ace(usize),
    /// No ACE grants it (and none denies it).
    NoAceGrants,
    /// ACCESS_SYSTEM_SECURITY comes from SeSecurityPrivilege, never from the DACL.
    Privilege,
}

/// One right that was not granted and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    pub bit: u32,
    pub by: Decider,
    /// Decided by the second check of a restricted token (with the restricting SIDs).
    pub restricted: bool,
}

/// The result of an access check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The desired mask after generic mapping (MAXIMUM_ALLOWED kept).
    pub desired: u32,
    /// The rights granted: for MAXIMUM_ALLOWED, everything the DACL grants.
    pub granted: u32,
    /// The requested rights not granted (for MAXIMUM_ALLOWED: the KEY_ALL_ACCESS rights not
    /// granted), one entry a bit, lowest bit first.
    pub denials: Vec<Denial>,
}

impl Access {
    /// Whether every requested right (all of them for a specific request; at least one for
    /// MAXIMUM_ALLOWED) was granted, as AccessCheck's status would say.
    pub fn allowed(&self) -> bool {
        if self.desired & MAXIMUM_ALLOWED != 0 {
            let specific = self.desired & !MAXIMUM_ALLOWED;
            self.granted != 0 && self.granted & specific == specific
        } else {
            self.denials.is_empty()
        }
    }

    /// The mask of the rights not granted.
    pub fn denied(&self) -> u32 {
        self.denials.iter().fold(0, |m, d| m | d.bit)
    }
}

/// One pass over the DACL with a set of SIDs: the rights granted and, for each right decided
/// against, the deny ACE's index.
struct Pass {
    granted: u32,
    /// (bit, index of the deny ACE).
    denied_by: Vec<(u32, usize)>,
}

const OWNER_RIGHTS: (u64, &[u32]) = (3, &[4]);

/// Walks the DACL for the SIDs `has` accepts. `wanted` are the rights to decide (all KEY_ALL_ACCESS
/// bits for MAXIMUM_ALLOWED). Windows' order: ACEs as stored; inherit-only ACEs skipped; a deny
/// ACE decides the still-undecided bits it names; an allow ACE grants the still-undecided bits
/// it names. The owner is implicitly granted READ_CONTROL and WRITE_DAC unless an OWNER RIGHTS
/// ACE is present.
fn pass(
    sd: &SecurityDescriptor,
    acl: &Acl,
    has: &dyn Fn(&Sid) -> bool,
    wanted: u32,
    mapping: &GenericMapping,
) -> Pass {
    let owner_rights = Sid::new(OWNER_RIGHTS.0, OWNER_RIGHTS.1);
    let is_owner = sd.owner.as_ref().is_some_and(has);
    let owner_ace = acl.aces.iter().any(|a| {
        !a.is_inherit_only() && a.sid.as_ref() == Some(&owner_rights) && a.ace_type.is_known()
    });
    let mut granted = 0;
    let mut undecided = wanted;
    if is_owner && !owner_ace {
        granted |= wanted & (READ_CONTROL | WRITE_DAC);
        undecided &= !(READ_CONTROL | WRITE_DAC);
    }
    let mut denied_by = Vec::new();
    for (i, ace) in acl.aces.iter().enumerate() {
        if undecided == 0 {
            break;
        }
        if ace.is_inherit_only()
            // Callback conditions need Authz and claims, which offline evaluation lacks: such
            // ACEs are left out of the check, as the kernel's check without them would.
            || ace.ace_type.is_callback()
            // An object ACE naming an object type applies to a property set only (DS objects).
            || ace.object_type.is_some()
        {
            continue;
        }
        let Some(sid) = &ace.sid else { continue };
        let matches = has(sid) || (*sid == owner_rights && is_owner);
        if !matches {
            continue;
        }
        let mask = mapping.map(ace.mask) & undecided;
        if ace.ace_type.is_allow() {
            granted |= mask;
            undecided &= !mask;
        } else if ace.ace_type.is_deny() {
            for bit in bits(mask) {
                denied_by.push((bit, i));
            }
            undecided &= !mask;
        }
    }
    Pass { granted, denied_by }
}

fn bits(mask: u32) -> impl Iterator<Item = u32> {
    (0..32).map(|i| 1u32 << i).filter(move |b| mask & b != 0)
}

fn access_check(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: u32,
    mapping: &GenericMapping,
) -> Access {
    let desired = mapping.map(desired);
    let maximum = desired & MAXIMUM_ALLOWED != 0;
    let specific = desired & !MAXIMUM_ALLOWED & !ACCESS_SYSTEM_SECURITY;
    // The rights to decide: for MAXIMUM_ALLOWED every right a key has, plus what was named.
    let wanted = if maximum {
        specific | mapping.all
    } else {
        specific
    };
    let mut denials = Vec::new();
    if desired & ACCESS_SYSTEM_SECURITY != 0 {
        denials.push(Denial {
            bit: ACCESS_SYSTEM_SECURITY,
            by: Decider::Privilege,
            restricted: false,
        });
    }
    let acl = match &sd.dacl {
        // No DACL or a NULL DACL: everything is granted.
        AclField::NotPresent | AclField::Null => {
            return Access {
                desired,
                granted: wanted,
                denials,
            }
        }
        AclField::Acl(a) => a,
    };
    let first = pass(sd, acl, &|s| token.has(s), wanted, mapping);
    let mut granted = first.granted;
    let record = |p: &Pass, of: u32, restricted: bool, denials: &mut Vec<Denial>| {
        for bit in bits(of) {
            let by = p
                .denied_by
                .iter()
                .find(|&&(b, _)| b == bit)
                .map_or(Decider::NoAceGrants, |&(_, i)| Decider::Ace(i));
            denials.push(Denial {
                bit,
                by,
                restricted,
            });
        }
    };
    record(&first, wanted & !granted, false, &mut denials);
    if !token.restricting.is_empty() {
        let subject = if token.write_restricted {
            wanted & mapping.write
        } else {
            wanted
        };
        let second = pass(
            sd,
            acl,
            &|s| token.restricting.contains(s),
            subject,
            mapping,
        );
        let lost = granted & subject & !second.granted;
        record(&second, lost, true, &mut denials);
        granted &= !lost;
    }
    denials.sort_by_key(|d| d.bit);
    if maximum {
        // For MAXIMUM_ALLOWED, report only what the caller could have had: bits no ACE names are
        // not interesting unless the caller asked for them.
        denials.retain(|d| d.by != Decider::NoAceGrants || d.bit & specific != 0 || d.restricted);
    }
    Access {
        desired,
        granted,
        denials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answers() {
        // FIPS 180-2 appendix A examples.
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn sid_strings() {
        let s = Sid::parse("S-1-5-32-544").unwrap();
        assert_eq!(s.to_string(), "S-1-5-32-544");
        assert_eq!(s.sddl(), "BA");
        assert_eq!(Sid::read(&s.to_bytes(), 0).unwrap(), (s, 16));
        let big = Sid::new(0x1234_5678_9abc, &[1]);
        assert_eq!(big.to_string(), "S-1-0x123456789abc-1");
        assert_eq!(Sid::parse(&big.to_string()), Some(big));
    }
}
