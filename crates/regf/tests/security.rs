//! Security descriptors: our parse of every key's descriptor in the real hives against
//! `reglookup -s` (Debian package reglookup, built on libregfi's own descriptor parser), SDDL on
//! hand-built descriptors, service SIDs, effective access on the real Windows 10 hive, and
//! never-panic properties.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;

use proptest::prelude::*;
use regf::security::*;
use regf::Hive;

// ----- the reglookup oracle -----

/// reglookup's names for the mask bits (its `perms2str` table, read from its output).
const RL_PERMS: &[(u32, &str)] = &[
    (0x1, "QRY_VAL"),
    (0x2, "SET_VAL"),
    (0x4, "CREATE_KEY"),
    (0x8, "ENUM_KEYS"),
    (0x10, "NOTIFY"),
    (0x20, "CREATE_LNK"),
    (0x100, "WOW64_64"),
    (0x200, "WOW64_32"),
    (0x10000, "DELETE"),
    (0x20000, "R_CONT"),
    (0x40000, "W_DAC"),
    (0x80000, "W_OWNER"),
    (0x100000, "SYNC"),
    (0x1000000, "SYS_SEC"),
    (0x2000000, "MAX_ALLWD"),
    (0x10000000, "GEN_A"),
    (0x20000000, "GEN_X"),
    (0x40000000, "GEN_W"),
    (0x80000000, "GEN_R"),
];

const RL_FLAGS: &[(u32, &str)] = &[(1, "OI"), (2, "CI"), (4, "NP"), (8, "IO"), (0x10, "IA")];

/// reglookup's way of listing bits: known names each followed by a space, unknown bits as hex
/// with a trailing space, then the last character chopped when a name was written. (So the hex
/// of unknown bits survives only when no bit had a name: "0xC0 " for SA|FA, "CI" for CI|FA.)
fn rl_bits(value: u32, table: &[(u32, &str)], hex_digits: usize) -> String {
    let mut out = String::new();
    let mut rest = value;
    for &(bit, name) in table {
        if value & bit != 0 {
            out.push_str(name);
            out.push(' ');
            rest &= !bit;
        }
    }
    if out.is_empty() {
        if rest != 0 {
            out = format!("0x{rest:0hex_digits$X} ");
        }
        return out;
    }
    out.pop();
    out
}

fn rl_type(t: AceType) -> String {
    const NAMES: [&str; 7] = [
        "ALLOW",
        "DENY",
        "AUDIT",
        "ALARM",
        "ALLOW CPD",
        "OBJ ALLOW",
        "OBJ DENY",
    ];
    NAMES
        .get(usize::from(t.0))
        .map_or_else(|| "UNKNOWN".to_string(), |s| s.to_string())
}

fn rl_acl(acl: &AclField) -> String {
    let Some(acl) = acl.acl() else {
        return String::new();
    };
    acl.aces
        .iter()
        .map(|a| {
            format!(
                "{}:{}:{}:{}",
                a.sid.as_ref().map(|s| s.to_string()).unwrap_or_default(),
                rl_type(a.ace_type),
                rl_bits(a.mask, RL_PERMS, 8),
                rl_bits(u32::from(a.flags), RL_FLAGS, 2)
            )
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Our parse in reglookup's columns: OWNER, GROUP, SACL, DACL.
fn rl_columns(sd: &SecurityDescriptor) -> String {
    let sid = |s: &Option<Sid>| s.as_ref().map(|s| s.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{}",
        sid(&sd.owner),
        sid(&sd.group),
        rl_acl(&sd.sacl),
        rl_acl(&sd.dacl)
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `reglookup -s -t KEY`: path (decoded, `/`-separated) -> the four security columns.
fn reglookup(path: &std::path::Path) -> Option<BTreeMap<String, String>> {
    let out = match Command::new("reglookup")
        .args(["-s", "-t", "KEY"])
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "reglookup is required in CI (apt-get install reglookup)"
            );
            eprintln!("reglookup not installed: oracle comparison skipped");
            return None;
        }
    };
    assert!(out.status.success(), "reglookup failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(f.len() >= 8, "unexpected reglookup line {line:?}");
        map.insert(percent_decode(f[0]), f[4..8].join(","));
    }
    Some(map)
}

const HIVES: &[&str] = &[
    "hives/win7-SYSTEM",
    "hives/win10-dirty-SYSTEM",
    "hives/BCD",
    "hives/win81-dirty-nologs-SYSTEM",
];

/// Every key of `fixture`: (path as reglookup writes it, descriptor bytes).
fn key_descriptors(hive: &Hive<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    hive.walk(
        |path, k| {
            let sd = k.security().unwrap().descriptor.to_vec();
            out.push((format!("/{}", path.replace('\\', "/")), sd));
        },
        |p, e| panic!("{p}: {e}"),
    )
    .unwrap();
    out
}

#[test]
fn every_descriptor_agrees_with_reglookup() {
    for fixture in HIVES {
        let path = fixtures::path(fixture);
        let hive = Hive::open(std::fs::read(&path).unwrap()).unwrap();
        let keys = key_descriptors(&hive);
        let mut distinct = BTreeSet::new();
        let mut parsed = BTreeMap::new();
        for (p, sd) in &keys {
            let parsed_sd =
                SecurityDescriptor::parse(sd).unwrap_or_else(|e| panic!("{fixture} {p}: {e}"));
            // Writing the model back gives the same bytes Windows wrote.
            assert_eq!(&parsed_sd.to_bytes(), sd, "{fixture} {p}: to_bytes");
            distinct.insert(sd.clone());
            parsed.insert(p.clone(), rl_columns(&parsed_sd));
        }
        let Some(theirs) = reglookup(&path) else {
            continue;
        };
        let mut agree = 0;
        let mut agree_distinct = BTreeSet::new();
        for (p, sd) in &keys {
            let ours = &parsed[p];
            let t = theirs
                .get(p)
                .unwrap_or_else(|| panic!("{fixture}: reglookup lacks key {p}"));
            assert_eq!(ours, t, "{fixture} {p}");
            agree += 1;
            agree_distinct.insert(sd);
        }
        assert_eq!(agree, theirs.len(), "{fixture}: key counts differ");
        eprintln!(
            "{fixture}: {agree} keys, {} distinct descriptors, all agree with reglookup",
            agree_distinct.len()
        );
        assert_eq!(agree_distinct.len(), distinct.len());
    }
}

// ----- SDDL on hand-built descriptors -----

fn sid_bytes(s: &str) -> Vec<u8> {
    Sid::parse(s).unwrap().to_bytes()
}

fn ace_bytes(t: u8, flags: u8, mask: u32, sid: &str) -> Vec<u8> {
    let sid = sid_bytes(sid);
    let mut a = vec![t, flags];
    a.extend_from_slice(&((8 + sid.len()) as u16).to_le_bytes());
    a.extend_from_slice(&mask.to_le_bytes());
    a.extend_from_slice(&sid);
    a
}

fn acl_bytes(aces: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = aces.concat();
    let mut a = vec![2, 0];
    a.extend_from_slice(&((8 + body.len()) as u16).to_le_bytes());
    a.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    a.extend_from_slice(&[0, 0]);
    a.extend_from_slice(&body);
    a
}

/// A self-relative descriptor laid out header, SACL, DACL, owner, group.
fn sd_bytes(
    control: u16,
    owner: Option<&str>,
    group: Option<&str>,
    sacl: Option<Vec<u8>>,
    dacl: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = vec![0u8; 20];
    out[0] = 1;
    out[2..4].copy_from_slice(&(control | 0x8000).to_le_bytes());
    let mut put = |field: usize, bytes: Option<Vec<u8>>| {
        if let Some(b) = bytes {
            let at = out.len() as u32;
            out[field..field + 4].copy_from_slice(&at.to_le_bytes());
            out.extend_from_slice(&b);
        }
    };
    put(12, sacl);
    put(16, dacl);
    put(4, owner.map(sid_bytes));
    put(8, group.map(sid_bytes));
    out
}

fn sddl(bytes: &[u8]) -> String {
    SecurityDescriptor::parse(bytes).unwrap().sddl()
}

#[test]
fn sddl_of_a_typical_inherited_key() {
    // The form regedit's "Advanced" dialog and Get-Acl show for a key below HKLM\SYSTEM.
    let dacl = acl_bytes(&[
        ace_bytes(0, 0x12, KEY_READ, "S-1-5-32-545"),
        ace_bytes(0, 0x12, KEY_ALL_ACCESS, "S-1-5-32-544"),
        ace_bytes(0, 0x12, KEY_ALL_ACCESS, "S-1-5-18"),
        ace_bytes(0, 0x1A, GENERIC_ALL, "S-1-3-0"),
        ace_bytes(0, 0x12, KEY_READ, "S-1-15-2-1"),
    ]);
    let sd = sd_bytes(0x0404, Some("S-1-5-18"), Some("S-1-5-18"), None, Some(dacl));
    assert_eq!(
        sddl(&sd),
        "O:SYG:SYD:AI(A;CIID;KR;;;BU)(A;CIID;KA;;;BA)(A;CIID;KA;;;SY)(A;CIIOID;GA;;;CO)(A;CIID;KR;;;AC)"
    );
}

#[test]
fn sddl_rights_forms() {
    let dacl = acl_bytes(&[
        // KEY_WRITE, KEY_EXECUTE (same as KEY_READ: printed KR), generic pairs, single bits.
        ace_bytes(0, 0, KEY_WRITE, "S-1-1-0"),
        ace_bytes(0, 0, KEY_EXECUTE, "S-1-5-11"),
        ace_bytes(0, 0x0A, GENERIC_READ | GENERIC_EXECUTE, "S-1-5-32-545"),
        ace_bytes(0, 0, 0x2001D, "S-1-5-19"),
        ace_bytes(0, 0, 0x000F_01FF, "S-1-5-20"),
        // SYNCHRONIZE and the WOW64 bits have no SDDL letters: hex.
        ace_bytes(0, 0, 0x0012_0019, "S-1-5-32-556"),
        ace_bytes(1, 0x03, WRITE_OWNER, "S-1-5-7"),
        ace_bytes(0, 0x05, GENERIC_WRITE, "S-1-3-4"),
    ]);
    let sd = sd_bytes(0x1004, Some("S-1-5-32-544"), None, None, Some(dacl));
    assert_eq!(
        sddl(&sd),
        "O:BAD:P(A;;KW;;;WD)(A;;KR;;;AU)(A;CIIO;GXGR;;;BU)(A;;CCLCSWRPRC;;;LS)\
         (A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;NS)(A;;0x120019;;;NO)(D;OICI;WO;;;AN)(A;OINP;GW;;;OW)"
    );
}

#[test]
fn sddl_null_and_empty_dacl_and_sacl_forms() {
    // DACL present with offset 0: NULL DACL.
    let null = sd_bytes(0x0004, Some("S-1-5-18"), None, None, None);
    assert_eq!(sddl(&null), "O:SYD:NO_ACCESS_CONTROL");
    // Present and empty: no access for anyone.
    let empty = sd_bytes(0x0004, None, None, None, Some(acl_bytes(&[])));
    assert_eq!(sddl(&empty), "D:");
    // Not present at all: no D: part.
    assert_eq!(
        sddl(&sd_bytes(0, Some("S-1-5-18"), None, None, None)),
        "O:SY"
    );
    // Auditing with success and failure flags, a mandatory label, SACL control flags
    // (protected, auto-inherit required, auto-inherited, printed in that order).
    let sacl = acl_bytes(&[
        ace_bytes(2, 0xC0, KEY_ALL_ACCESS, "S-1-1-0"),
        ace_bytes(2, 0x80, WRITE_DAC | WRITE_OWNER, "S-1-5-32-544"),
        ace_bytes(0x11, 0, 1, "S-1-16-4096"),
    ]);
    let sd = sd_bytes(
        0x0010 | 0x2000 | 0x0200 | 0x0800 | 0x0004 | 0x0400 | 0x0100,
        None,
        None,
        Some(sacl),
        Some(acl_bytes(&[])),
    );
    assert_eq!(
        sddl(&sd),
        "D:ARAIS:PARAI(AU;SAFA;KA;;;WD)(AU;FA;WDWO;;;BA)(ML;;NW;;;LW)"
    );
}

#[test]
fn sddl_object_ace_and_unaliased_sids() {
    // An object ACE from Microsoft's "ACE Strings" examples:
    // (OA;;CCDC;bf967aba-0de6-11d0-a285-00aa003049e2;;AO).
    let guid: [u8; 16] = [
        0xba, 0x7a, 0x96, 0xbf, 0xe6, 0x0d, 0xd0, 0x11, 0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49,
        0xe2,
    ];
    let sid = sid_bytes("S-1-5-32-548");
    let mut ace = vec![5, 0];
    ace.extend_from_slice(&((12 + 16 + sid.len()) as u16).to_le_bytes());
    ace.extend_from_slice(&3u32.to_le_bytes());
    ace.extend_from_slice(&1u32.to_le_bytes());
    ace.extend_from_slice(&guid);
    ace.extend_from_slice(&sid);
    let service = Sid::service("Dhcp").to_string();
    let dacl = acl_bytes(&[ace, ace_bytes(0, 0, KEY_READ, &service)]);
    let sd = sd_bytes(0x0004, None, None, None, Some(dacl));
    assert_eq!(
        sddl(&sd),
        format!("D:(OA;;CCDC;bf967aba-0de6-11d0-a285-00aa003049e2;;AO)(A;;KR;;;{service})")
    );
}

#[test]
fn named_rights_for_people() {
    assert_eq!(
        key_rights(0x2001F).join(", "),
        "QueryValue, SetValue, CreateSubKey, EnumerateSubKeys, Notify, ReadControl"
    );
    // Bits without a name come last, in hex.
    assert_eq!(key_rights(GENERIC_READ | 0x400), ["GenericRead", "0x400"]);
}

#[test]
fn malformed_descriptors_name_the_offset() {
    let dacl = acl_bytes(&[ace_bytes(0, 0, KEY_READ, "S-1-5-32-545")]);
    let good = sd_bytes(0x0004, Some("S-1-5-18"), None, None, Some(dacl));
    let err = |bytes: &[u8]| SecurityDescriptor::parse(bytes).unwrap_err().to_string();
    assert!(
        err(&good[..10]).contains("at byte 0x0"),
        "{}",
        err(&good[..10])
    );
    // Owner offset beyond the end.
    let mut b = good.clone();
    b[4..8].copy_from_slice(&0x1000u32.to_le_bytes());
    assert!(err(&b).contains("at byte 0x1000"), "{}", err(&b));
    // ACE size larger than its ACL (the ACL starts at 20, its first ACE at 28).
    let mut b = good.clone();
    b[28 + 2] = 0xF0;
    assert!(err(&b).contains("at byte 0x1e") && err(&b).contains("ACE of 240 bytes"));
    // ACE count larger than the ACL holds.
    let mut b = good.clone();
    b[24] = 5;
    assert!(err(&b).contains("at byte 0x18"), "{}", err(&b));
    // SID with 16 sub-authorities.
    let mut b = good.clone();
    let owner = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    b[owner + 1] = 16;
    assert!(err(&b).contains("16 sub-authorities"));
    // Not self-relative.
    let mut b = good;
    b[3] &= 0x7F;
    assert!(err(&b).contains("SE_SELF_RELATIVE"));
}

// ----- service SIDs -----

/// The SID reglookup shows on ControlSet001\Services\Dhcp of the Windows 10 hive for the
/// account Windows names NT SERVICE\Dhcp.
const DHCP_SERVICE_SID: &str = "S-1-5-80-2940520708-3855866260-481812779-327648279-1710889582";

#[test]
fn service_sid_matches_the_one_windows_wrote() {
    assert_eq!(Sid::service("Dhcp").to_string(), DHCP_SERVICE_SID);
    // Case does not matter: the name is upper-cased first.
    assert_eq!(Sid::service("dhcp"), Sid::service("DHCP"));
    let path = fixtures::path("hives/win10-dirty-SYSTEM");
    if let Some(rl) = reglookup(&path) {
        let cols = &rl["/ControlSet001/Services/Dhcp"];
        assert!(
            cols.contains(&format!("{}:ALLOW:", Sid::service("Dhcp"))),
            "{cols}"
        );
    }
}

// ----- effective access -----

fn win10() -> &'static Hive<Vec<u8>> {
    static HIVE: OnceLock<Hive<Vec<u8>>> = OnceLock::new();
    HIVE.get_or_init(|| Hive::open(fixtures::bytes("hives/win10-dirty-SYSTEM")).unwrap())
}

fn descriptor(path: &str) -> Vec<u8> {
    win10()
        .key(path)
        .unwrap()
        .unwrap()
        .security()
        .unwrap()
        .descriptor
        .to_vec()
}

/// The DHCP Client's token, built from what the hive says about the service.
fn dhcp_token() -> Token {
    let svc = win10()
        .key(r"ControlSet001\Services\Dhcp")
        .unwrap()
        .unwrap();
    let object_name = match svc.value("ObjectName").unwrap().unwrap().data().unwrap() {
        regf::Data::Sz(s) => s,
        other => panic!("ObjectName is {other:?}"),
    };
    let sid_type = match svc
        .value("ServiceSidType")
        .unwrap()
        .unwrap()
        .data()
        .unwrap()
    {
        regf::Data::Dword(d) => d,
        other => panic!("ServiceSidType is {other:?}"),
    };
    assert_eq!(sid_type, SERVICE_SID_TYPE_UNRESTRICTED);
    assert!(object_name.eq_ignore_ascii_case(r"NT Authority\LocalService"));
    let account = ServiceAccount::LocalService;
    Token::for_service(&account, Some(("Dhcp", sid_type)))
}

const INTERFACES: &str = r"ControlSet001\Services\Tcpip\Parameters\Interfaces";
const DHCP: &str = r"ControlSet001\Services\Dhcp";

#[test]
fn dhcp_client_effective_access_on_the_real_hive() {
    let token = dhcp_token();
    let interfaces = SecurityDescriptor::parse(&descriptor(INTERFACES)).unwrap();
    let a = interfaces.access(&token, MAXIMUM_ALLOWED);
    assert_eq!(a.granted, 0x3001F, "{a:?}");
    assert!(a.allowed());
    let dhcp = SecurityDescriptor::parse(&descriptor(DHCP)).unwrap();
    let a = dhcp.access(&token, MAXIMUM_ALLOWED);
    assert_eq!(a.granted, 0x2001D, "{a:?}");
    // A specific request: KEY_READ | KEY_SET_VALUE on the Dhcp key: SET_VALUE is not granted
    // by any ACE.
    let a = dhcp.access(&token, KEY_READ | KEY_SET_VALUE);
    assert_eq!(a.granted, KEY_READ);
    assert_eq!(
        a.denials,
        vec![Denial {
            bit: KEY_SET_VALUE,
            by: Decider::NoAceGrants,
            restricted: false
        }]
    );
    // Generic rights are mapped: GENERIC_READ is KEY_READ.
    assert_eq!(dhcp.access(&token, GENERIC_READ).granted, KEY_READ);
    // Without the service SID (ServiceSidType 0) only LocalService's read access is left.
    let plain = Token::for_service(&ServiceAccount::LocalService, Some(("Dhcp", 0)));
    assert_eq!(interfaces.access(&plain, MAXIMUM_ALLOWED).granted, KEY_READ);
}

/// The index and offset of the ACE for `sid` in the DACL of `sd`.
fn ace_of(sd: &[u8], sid: &Sid) -> (usize, usize) {
    let parsed = SecurityDescriptor::parse(sd).unwrap();
    let acl = parsed.dacl.acl().unwrap();
    let i = acl
        .aces
        .iter()
        .position(|a| a.sid.as_ref() == Some(sid) && !a.is_inherit_only())
        .unwrap();
    (i, acl.aces[i].offset)
}

#[test]
fn patched_descriptors_name_the_deciding_ace() {
    let token = dhcp_token();
    let want = 0x3001F;
    let original = descriptor(INTERFACES);
    let (i, at) = ace_of(&original, &Sid::service("Dhcp"));

    // The service's mask reduced to KEY_READ: SET_VALUE, CREATE_SUB_KEY and DELETE are left
    // without an ACE granting them.
    let mut sd = original.clone();
    sd[at + 4..at + 8].copy_from_slice(&KEY_READ.to_le_bytes());
    let a = SecurityDescriptor::parse(&sd).unwrap().access(&token, want);
    assert_eq!(a.granted, KEY_READ);
    assert_eq!(a.denied(), want & !KEY_READ);
    assert!(a.denials.iter().all(|d| d.by == Decider::NoAceGrants));

    // The service's ACE turned into a deny ACE: it decides the rights the earlier Users and
    // LocalService ACEs did not already grant.
    let mut sd = original.clone();
    sd[at] = 1;
    let parsed = SecurityDescriptor::parse(&sd).unwrap();
    assert!(parsed.sddl().contains(&format!(
        "(D;CIID;CCDCLCSWRPSDRC;;;{})",
        Sid::service("Dhcp")
    )));
    let a = parsed.access(&token, want);
    assert_eq!(a.granted, KEY_READ);
    assert_eq!(a.denied(), KEY_SET_VALUE | KEY_CREATE_SUB_KEY | DELETE);
    assert!(a.denials.iter().all(|d| d.by == Decider::Ace(i)), "{a:?}");

    // The service's SID changed (last sub-authority): the ACE no longer applies.
    let mut sd = original.clone();
    let last = at + 8 + 8 + 4 * 5;
    sd[last] ^= 1;
    let a = SecurityDescriptor::parse(&sd).unwrap().access(&token, want);
    assert_eq!(a.granted, KEY_READ);
    assert!(a.denials.iter().all(|d| d.by == Decider::NoAceGrants));

    // The first ACE (Users, which the token holds) turned into a deny ACE: it decides every
    // right it names, even those later ACEs grant.
    let (first, first_at) = ace_of(&original, &Sid::new(5, &[32, 545]));
    assert_eq!(first, 0);
    let mut sd = original;
    sd[first_at] = 1;
    let a = SecurityDescriptor::parse(&sd).unwrap().access(&token, want);
    assert_eq!(a.granted, want & !KEY_READ);
    assert_eq!(a.denied(), KEY_READ);
    assert!(a.denials.iter().all(|d| d.by == Decider::Ace(0)));
    assert!(!a.allowed());
}

#[test]
fn null_empty_owner_and_inherit_only() {
    let token = Token::new(Sid::new(5, &[19]), vec![Sid::new(1, &[0])]);
    let null = SecurityDescriptor::parse(&sd_bytes(0x4, None, None, None, None)).unwrap();
    assert_eq!(null.access(&token, KEY_ALL_ACCESS).granted, KEY_ALL_ACCESS);
    let empty =
        SecurityDescriptor::parse(&sd_bytes(0x4, None, None, None, Some(acl_bytes(&[])))).unwrap();
    let a = empty.access(&token, KEY_READ);
    assert_eq!(a.granted, 0);
    assert_eq!(a.denied(), KEY_READ);
    // The owner is granted READ_CONTROL and WRITE_DAC even by an empty DACL...
    let owned = SecurityDescriptor::parse(&sd_bytes(
        0x4,
        Some("S-1-5-19"),
        None,
        None,
        Some(acl_bytes(&[])),
    ))
    .unwrap();
    assert_eq!(
        owned.access(&token, MAXIMUM_ALLOWED).granted,
        READ_CONTROL | WRITE_DAC
    );
    // ...unless an OWNER RIGHTS ACE says what the owner gets.
    let owner_rights = SecurityDescriptor::parse(&sd_bytes(
        0x4,
        Some("S-1-5-19"),
        None,
        None,
        Some(acl_bytes(&[ace_bytes(0, 0, READ_CONTROL, "S-1-3-4")])),
    ))
    .unwrap();
    assert_eq!(
        owner_rights.access(&token, MAXIMUM_ALLOWED).granted,
        READ_CONTROL
    );
    // Inherit-only ACEs do not apply to the key itself.
    let io = SecurityDescriptor::parse(&sd_bytes(
        0x4,
        None,
        None,
        None,
        Some(acl_bytes(&[
            ace_bytes(1, 0x0A, KEY_ALL_ACCESS, "S-1-1-0"),
            ace_bytes(0, 0, KEY_READ, "S-1-1-0"),
        ])),
    ))
    .unwrap();
    assert_eq!(io.access(&token, KEY_READ).granted, KEY_READ);
}

#[test]
fn restricted_service_needs_the_write_rights_twice() {
    // Users may write, the service SID may only read: a restricted service's token holds Users
    // but its second check (service SID, Everyone, WRITE RESTRICTED) does not grant the write.
    let svc = Sid::service("Demo").to_string();
    let sd = SecurityDescriptor::parse(&sd_bytes(
        0x4,
        Some("S-1-5-18"),
        None,
        None,
        Some(acl_bytes(&[
            ace_bytes(0, 0, KEY_READ | KEY_SET_VALUE, "S-1-5-32-545"),
            ace_bytes(0, 0, KEY_READ, &svc),
        ])),
    ))
    .unwrap();
    let unrestricted = Token::for_service(&ServiceAccount::LocalService, Some(("Demo", 1)));
    assert_eq!(
        sd.access(&unrestricted, MAXIMUM_ALLOWED).granted,
        KEY_READ | KEY_SET_VALUE
    );
    let restricted = Token::for_service(&ServiceAccount::LocalService, Some(("Demo", 3)));
    assert!(restricted.write_restricted);
    let a = sd.access(&restricted, KEY_READ | KEY_SET_VALUE);
    assert_eq!(a.granted, KEY_READ);
    assert_eq!(
        a.denials,
        vec![Denial {
            bit: KEY_SET_VALUE,
            by: Decider::NoAceGrants,
            restricted: true
        }]
    );
    // LocalSystem holds Administrators, not Users.
    let system = Token::for_service(&ServiceAccount::LocalSystem, None);
    assert!(system.has(&Sid::new(5, &[32, 544])));
    assert!(!system.has(&Sid::new(5, &[32, 545])));
}

// ----- never panic -----

fn real_descriptors() -> &'static Vec<Vec<u8>> {
    static ALL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ALL.get_or_init(|| {
        let set: BTreeSet<Vec<u8>> = key_descriptors(win10())
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        set.into_iter().collect()
    })
}

fn exercise(bytes: &[u8]) {
    if let Ok(sd) = SecurityDescriptor::parse(bytes) {
        let _ = sd.sddl();
        let _ = sd.control_names();
        let token = Token::for_service(&ServiceAccount::LocalService, Some(("Dhcp", 3)));
        let _ = sd.access(
            &token,
            MAXIMUM_ALLOWED | GENERIC_ALL | ACCESS_SYSTEM_SECURITY,
        );
        let _ = sd.access(&token, KEY_READ);
        for acl in [sd.dacl.acl(), sd.sacl.acl()].into_iter().flatten() {
            for ace in &acl.aces {
                let _ = ace.sddl();
                let _ = ace.rights();
            }
        }
        // What we parsed, we can write and read back.
        // (ACE offsets may change: the layout is Windows', not the input's.)
        let written = sd.to_bytes();
        let again = SecurityDescriptor::parse(&written).unwrap();
        assert_eq!(again.to_bytes(), written);
        assert_eq!(again.sddl(), sd.sddl());
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_real_descriptors_never_panic(
        pick in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<proptest::sample::Index>(),
    ) {
        let all = real_descriptors();
        let mut sd = all[pick.index(all.len())].clone();
        for (at, v) in edits {
            let i = at.index(sd.len());
            sd[i] = v;
        }
        exercise(&sd);
        let n = cut.index(sd.len() + 1);
        exercise(&sd[..n]);
    }
}

// ----- writing -----

/// Each key's security cell and each security cell's stored reference count.
fn security_cells(bytes: &[u8]) -> (BTreeMap<String, u32>, BTreeMap<u32, (u32, u32)>) {
    let hive = Hive::open(bytes).unwrap();
    let mut of_key = BTreeMap::new();
    let mut cells: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
    hive.walk(
        |path, k| {
            let s = k.security().unwrap();
            of_key.insert(path.to_string(), s.cell);
            cells.entry(s.cell).or_insert((s.reference_count, 0)).1 += 1;
        },
        |p, e| panic!("{p}: {e}"),
    )
    .unwrap();
    (of_key, cells)
}

fn hivex_export(path: &std::path::Path) -> Option<String> {
    let out = match Command::new("hivexregedit")
        .arg("--export")
        .arg(path)
        .arg("\\")
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "hivexregedit is required in CI (apt-get install libwin-hivex-perl)"
            );
            return None;
        }
    };
    assert!(out.status.success(), "hivexregedit failed");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn set_security_round_trip_on_a_real_hive() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let dhcp = r"ControlSet001\services\Dhcp";
    let params = r"ControlSet001\services\Dhcp\Parameters";
    let tcpip = r"ControlSet001\services\Tcpip";
    let (keys_before, cells_before) = security_cells(&original);

    // The new descriptor: Dhcp's, with one more ACE granting the DHCP service full control.
    let hive = Hive::open(&original[..]).unwrap();
    let old_sd = hive.key(dhcp).unwrap().unwrap().security().unwrap();
    let old_cell = old_sd.cell;
    let old_refs = old_sd.reference_count;
    let mut sd = SecurityDescriptor::parse(old_sd.descriptor).unwrap();
    let AclField::Acl(dacl) = &mut sd.dacl else {
        panic!("Dhcp has a DACL")
    };
    let mut ace = dacl.aces[0].clone();
    ace.mask = KEY_ALL_ACCESS;
    ace.flags = 0;
    ace.sid = Some(Sid::service("Dhcp"));
    dacl.aces.push(ace);
    dacl.size = 0;
    let new = sd.to_bytes();
    let tcpip_sd = hive
        .key(tcpip)
        .unwrap()
        .unwrap()
        .security()
        .unwrap()
        .descriptor
        .to_vec();
    drop(hive);

    let mut ed = regf::edit::Editor::new(original.clone(), 0).unwrap();
    ed.set_clock(0x01D0_0000_0000_0000);
    assert!(ed.set_security(dhcp, &new).unwrap());
    assert!(
        !ed.set_security(dhcp, &new).unwrap(),
        "same bytes: no change"
    );
    // A second key given the same descriptor shares the new cell.
    assert!(ed.set_security(params, &new).unwrap());
    // A key given an existing descriptor shares that key's cell.
    assert!(ed
        .set_security(r"ControlSet001\services\Dhcp\Parameters\Options", &tcpip_sd)
        .unwrap());
    // Malformed descriptors are refused and change nothing.
    let before = ed.bytes().to_vec();
    let err = ed.set_security(dhcp, &new[..new.len() - 1]).unwrap_err();
    assert!(
        err.to_string().contains("security descriptor, at byte"),
        "{err}"
    );
    assert_eq!(ed.bytes(), &before[..]);
    let edited = ed.finish().unwrap();
    assert!(regf::check::check(&edited.bytes).is_sound());

    let (keys_after, cells_after) = security_cells(&edited.bytes);
    // Every stored reference count equals the number of keys pointing at the cell.
    for (cell, (stored, counted)) in &cells_after {
        assert_eq!(stored, counted, "sk cell 0x{cell:x}");
    }
    let hive = Hive::open(&edited.bytes[..]).unwrap();
    let new_sk = hive.key(dhcp).unwrap().unwrap().security().unwrap();
    assert_eq!(new_sk.descriptor, &new[..]);
    assert_eq!(new_sk.reference_count, 2);
    assert_eq!(keys_after[params], new_sk.cell);
    assert!(!cells_before.contains_key(&new_sk.cell));
    assert_eq!(
        keys_after[r"ControlSet001\services\Dhcp\Parameters\Options"],
        keys_before[tcpip]
    );
    // The old cell lost the references of Dhcp, Parameters and Options (which all shared it,
    // or were among its users): it is gone when none is left, else counts one less a key.
    let moved = [
        dhcp,
        params,
        r"ControlSet001\services\Dhcp\Parameters\Options",
    ]
    .iter()
    .filter(|k| keys_before[**k] == old_cell)
    .count() as u32;
    match cells_after.get(&old_cell) {
        Some((refs, _)) => assert_eq!(*refs, old_refs - moved),
        None => assert_eq!(old_refs, moved),
    }
    // Keys not edited keep their cells.
    let changed: Vec<&String> = keys_before
        .iter()
        .filter(|(k, c)| keys_after.get(*k) != Some(c))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(changed.len(), 3, "{changed:?}");

    // Independent readers.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &edited.bytes).unwrap();
    if let Some(rl) = reglookup(file.path()) {
        let want = rl_columns(&SecurityDescriptor::parse(&new).unwrap());
        assert_eq!(rl["/ControlSet001/services/Dhcp"], want);
        assert_eq!(rl["/ControlSet001/services/Dhcp/Parameters"], want);
        assert!(want.contains(&format!("{}:ALLOW:", Sid::service("Dhcp"))));
        assert_eq!(
            rl["/ControlSet001/services/Dhcp/Parameters/Options"],
            rl["/ControlSet001/services/Tcpip"]
        );
        eprintln!("reglookup reads the {} keys of the edited hive", rl.len());
    }
    let orig_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(orig_file.path(), &original).unwrap();
    if let (Some(a), Some(b)) = (hivex_export(orig_file.path()), hivex_export(file.path())) {
        // hivex reads every key and value of the edited hive, and they are unchanged.
        assert_eq!(a, b);
    }
}

#[test]
fn set_security_frees_the_last_reference_and_reuses_cells() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let dhcp = r"ControlSet001\services\Dhcp";
    let hive = Hive::open(&original[..]).unwrap();
    let root_sd = hive.root().unwrap().security().unwrap().descriptor.to_vec();
    let dhcp_sk = hive.key(dhcp).unwrap().unwrap().security().unwrap();
    let (dhcp_cell, dhcp_sd) = (dhcp_sk.cell, dhcp_sk.descriptor.to_vec());
    let stats = regf::check::check(&original).stats.security_records;
    drop(hive);

    // Move every key that uses Dhcp's cell to the root's descriptor: the cell is unlinked
    // and freed, the list stays a ring (the checker walks it), and no new cell appears.
    let (keys, _) = security_cells(&original);
    let users: Vec<&String> = keys
        .iter()
        .filter(|(_, c)| **c == dhcp_cell)
        .map(|(k, _)| k)
        .collect();
    let mut ed = regf::edit::Editor::new(original.clone(), 0).unwrap();
    for k in &users {
        assert!(ed.set_security(k, &root_sd).unwrap());
    }
    let edited = ed.finish().unwrap();
    let report = regf::check::check(&edited.bytes);
    assert!(report.is_sound());
    assert_eq!(report.stats.security_records, stats - 1);

    // Setting it back allocates one new cell with as many references.
    let mut ed = regf::edit::Editor::new(edited.bytes, 0).unwrap();
    for k in &users {
        ed.set_security(k, &dhcp_sd).unwrap();
    }
    let back = ed.finish().unwrap();
    let report = regf::check::check(&back.bytes);
    assert!(report.is_sound());
    assert_eq!(report.stats.security_records, stats);
    let hive = Hive::open(&back.bytes[..]).unwrap();
    let sk = hive.key(dhcp).unwrap().unwrap().security().unwrap();
    assert_eq!(sk.descriptor, &dhcp_sd[..]);
    assert_eq!(sk.reference_count as usize, users.len());
}

#[test]
fn checker_warns_about_a_descriptor_that_does_not_parse() {
    let mut bytes = fixtures::bytes("hives/win7-SYSTEM");
    let hive = Hive::open(&bytes[..]).unwrap();
    let sk = hive
        .key(r"ControlSet001\services\Dhcp")
        .unwrap()
        .unwrap()
        .security()
        .unwrap();
    // File offset of the descriptor: base block, cell size field, sk header.
    let at = 4096 + sk.cell as usize + 4 + 20;
    drop(hive);
    assert!(regf::check::check(&bytes).faults.is_empty());
    bytes[at] = 2; // descriptor revision 2
    let report = regf::check::check(&bytes);
    assert!(report.is_sound(), "a warning, not an error");
    let f: Vec<_> = report
        .faults
        .iter()
        .filter(|f| f.code == "sk-descriptor")
        .collect();
    assert_eq!(f.len(), 1, "{:?}", report.faults);
    assert!(f[0].message.contains("at byte 0x0") && f[0].message.contains("revision is 2"));
}

#[test]
fn sddl_every_flag_and_right_in_windows_order() {
    // Windows writes every inheritance flag and every named right of this descriptor in bit
    // order, and the DACL control flags as P, AR, AI: recorded from a Windows domain controller
    // as "O:BAD:PARAI(A;OICINPIOID;CCDCLCSWRPWPDTLOCRSDRCWDWOGAGXGWGR;;;S-1-0-0)".
    let dacl = acl_bytes(&[ace_bytes(0, 0x1F, 0xF00F_01FF, "S-1-0-0")]);
    let sd = sd_bytes(
        0x0004 | 0x1000 | 0x0100 | 0x0400,
        Some("S-1-5-32-544"),
        None,
        None,
        Some(dacl),
    );
    assert_eq!(
        sddl(&sd),
        "O:BAD:PARAI(A;OICINPIOID;CCDCLCSWRPWPDTLOCRSDRCWDWOGAGXGWGR;;;S-1-0-0)"
    );
}
