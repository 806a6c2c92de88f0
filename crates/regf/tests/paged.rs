//! A hive read bin by bin on demand (`regf::Paged`) reads exactly what the same hive in memory
//! reads, loads only the bins it touches, and refuses what it cannot read with the offset.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use regf::paged::ReadAt;
use regf::{Error, Hive, Paged};

/// A hive file in memory that counts the bytes read from it.
struct Counting {
    bytes: Vec<u8>,
    read: Arc<AtomicUsize>,
}

impl ReadAt for Counting {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        self.read.fetch_add(buf.len(), Ordering::SeqCst);
        self.bytes.read_exact_at(offset, buf)
    }
}

fn paged(bytes: Vec<u8>) -> (Paged, Arc<AtomicUsize>) {
    let read = Arc::new(AtomicUsize::new(0));
    let len = bytes.len() as u64;
    let p = Paged::open(
        Box::new(Counting {
            bytes,
            read: read.clone(),
        }),
        len,
    )
    .unwrap();
    (p, read)
}

/// The cell of `ControlSet001\services\Dhcp`'s key node in the hive `bytes`.
fn dhcp_cell(bytes: &[u8]) -> u32 {
    Hive::open(bytes)
        .unwrap()
        .key(r"ControlSet001\services\Dhcp")
        .unwrap()
        .unwrap()
        .cell()
}

/// Every key path with every value's name, type and data, in walk order.
fn dump<B: regf::Source>(hive: &Hive<B>) -> Vec<String> {
    let mut out = Vec::new();
    hive.walk(
        |path, k| {
            out.push(format!("[{path}]"));
            for v in k.values().unwrap() {
                let v = v.unwrap();
                out.push(format!(
                    "{}={:?}:{:02x?}",
                    v.name().to_string_lossy(),
                    v.value_type(),
                    v.raw_data().unwrap()
                ));
            }
        },
        |p, e| panic!("{p}: {e}"),
    )
    .unwrap();
    out
}

#[test]
fn whole_walk_equals_the_hive_in_memory() {
    let bytes = fixtures::bytes("hives/win7-SYSTEM");
    let whole = dump(&Hive::open(&bytes[..]).unwrap());
    let (p, read) = paged(bytes.clone());
    let lazy = dump(&Hive::open(&p).unwrap());
    assert_eq!(whole.len(), lazy.len());
    assert!(
        whole == lazy,
        "the paged walk differs from the walk in memory"
    );
    // Every bin read once: the base block, one header probe per bin, the bins.
    let bins_len = p.bins_len();
    assert_eq!(p.loaded_bytes(), bins_len);
    assert!(read.load(Ordering::SeqCst) <= 4096 + bins_len + bins_len / 4096 * 32);
}

#[test]
fn one_lookup_loads_a_few_bins() {
    let bytes = fixtures::bytes("hives/win7-SYSTEM");
    let len = bytes.len();
    let whole = Hive::open(&bytes[..]).unwrap();
    let want = whole
        .key(r"ControlSet001\services\Dhcp")
        .unwrap()
        .unwrap()
        .value("Start")
        .unwrap()
        .unwrap()
        .data()
        .unwrap();
    let (p, counter) = paged(bytes);
    let hive = Hive::open(&p).unwrap();
    let got = hive
        .key(r"ControlSet001\services\Dhcp")
        .unwrap()
        .unwrap()
        .value("Start")
        .unwrap()
        .unwrap()
        .data()
        .unwrap();
    assert_eq!(got, want);
    let read = counter.load(Ordering::SeqCst);
    assert!(
        read < len / 20,
        "{read} bytes read of a {len}-byte hive for one value"
    );
    assert!(p.loaded_bytes() < read, "{p:?}");
    // The same lookup again reads nothing more.
    hive.key(r"ControlSet001\services\Dhcp").unwrap().unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), read);
}

/// A name that is not in a long `lh` list (the 400-odd services of Windows 7) costs a binary
/// search, a few key nodes, not a read of every key node of the list: the services' key nodes
/// spread over some 2 MB of this hive.
#[test]
fn a_missing_key_costs_a_few_key_nodes() {
    let bytes = fixtures::bytes("hives/win7-SYSTEM");
    let (p, counter) = paged(bytes.clone());
    let hive = Hive::open(&p).unwrap();
    hive.key(r"ControlSet001\services\Dhcp").unwrap().unwrap();
    let (present, present_loaded) = (counter.load(Ordering::SeqCst), p.loaded_bytes());
    for name in ["NoSuchService", "AAAA", "zzzz", "Dhcq"] {
        let path = format!(r"ControlSet001\services\{name}");
        assert!(hive.key(&path).unwrap().is_none(), "{name}");
    }
    let services = Hive::open(&bytes[..])
        .unwrap()
        .key(r"ControlSet001\services")
        .unwrap()
        .unwrap()
        .subkey_count();
    assert!(services > 300, "{services}");
    // Four binary searches of at most 9 steps each, a bin (here one page) per step at worst.
    let more = p.loaded_bytes() - present_loaded;
    assert!(
        more <= 4 * 9 * 4096,
        "{more} more bytes of bins loaded for four missing names among {services} keys"
    );
    assert!(counter.load(Ordering::SeqCst) - present <= 4 * 9 * (4096 + 32));
}

/// An `lh` entry whose stored hash is wrong hides the key from the hash comparison, not from
/// the lookup: the search by name finds it, in memory and paged alike.
#[test]
fn a_key_behind_a_wrong_hash_is_found() {
    let mut bytes = fixtures::bytes("hives/win7-SYSTEM");
    let dhcp = dhcp_cell(&bytes);
    let mut entry = dhcp.to_le_bytes().to_vec();
    entry.extend(regf::names::lh_hash("Dhcp".encode_utf16()).to_le_bytes());
    let at: Vec<usize> = bytes
        .windows(8)
        .enumerate()
        .filter(|(_, w)| *w == &entry[..])
        .map(|(i, _)| i)
        .collect();
    // Each control set has its own Dhcp key node: the (cell, hash) entry is in one list only.
    assert_eq!(at.len(), 1, "{at:?}");
    bytes[at[0] + 4] ^= 0x5a;
    let whole = Hive::open(&bytes[..]).unwrap();
    let found = whole.key(r"ControlSet001\services\Dhcp").unwrap().unwrap();
    assert_eq!(found.cell(), dhcp);
    let (p, _) = paged(bytes.clone());
    let hive = Hive::open(&p).unwrap();
    let found = hive.key(r"ControlSet001\services\DHCP").unwrap().unwrap();
    assert_eq!(found.cell(), dhcp);
}

#[test]
fn dirty_hive_is_refused() {
    let bytes = fixtures::bytes("hives/win10-dirty-SYSTEM");
    let len = bytes.len() as u64;
    let e = Paged::open(Box::new(bytes), len).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadBaseBlock {
                what: "primary sequence",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn damaged_bin_header_names_its_offset() {
    let mut bytes = fixtures::bytes("hives/win7-SYSTEM");
    let dhcp = dhcp_cell(&bytes) as usize;
    // Wipe every bin header from the Dhcp key's page back to the start of the hive-bins data:
    // the key's page then lies in no bin.
    let page = dhcp / 4096;
    for q in 0..=page {
        bytes[4096 + q * 4096..4096 + q * 4096 + 4].copy_from_slice(b"XXXX");
    }
    let len = bytes.len() as u64;
    let p = Paged::open(Box::new(bytes), len).unwrap();
    let hive = Hive::open(&p).unwrap();
    let e = hive.root().err().unwrap();
    assert!(e.to_string().contains("no hive bin header"), "{e}");
}

#[test]
fn truncated_file_is_refused() {
    let bytes = fixtures::bytes("hives/win7-SYSTEM");
    let cut = bytes[..bytes.len() / 2].to_vec();
    let len = cut.len() as u64;
    let e = Paged::open(Box::new(cut), len).unwrap_err();
    assert!(
        e.to_string().contains("runs past the end of the file"),
        "{e}"
    );
}

/// A bin whose size field claims the bins after it (found by the property test below: one
/// byte of a 4 KiB bin's size set to 1, so it claims 64 KiB more) is refused with its offset;
/// no page is loaded as part of two bins.
#[test]
fn a_bin_that_claims_the_next_bins_is_refused() {
    let mut bytes = fixtures::bytes("hives/win7-SYSTEM");
    let bin = 0x5ca000; // a one-page bin followed by other bins in this hive
    assert_eq!(&bytes[4096 + bin..4096 + bin + 4], b"hbin");
    assert_eq!(&bytes[4096 + bin + 8..4096 + bin + 12], &[0, 0x10, 0, 0]);
    assert_eq!(&bytes[4096 + bin + 4096..4096 + bin + 4100], b"hbin");
    bytes[4096 + bin + 10] = 1;
    let len = bytes.len() as u64;
    let p = Paged::open(Box::new(bytes), len).unwrap();
    let hive = Hive::open(&p).unwrap();
    let mut refused = Vec::new();
    let _ = hive.walk(|_, _| {}, |_, e| refused.push(e.to_string()));
    assert!(p.loaded_bytes() <= p.bins_len(), "{p:?}");
    assert!(
        refused
            .iter()
            .any(|e| e.contains("0x5cb000") && e.contains("bin size 0x11000")),
        "{refused:?}"
    );
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    /// The Windows 7 SYSTEM hive, read once for every case.
    fn win7() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| fixtures::bytes("hives/win7-SYSTEM"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Damaged bytes anywhere (bin headers, cell sizes, offsets): a paged walk reports
        /// errors and goes on, never panics, and never loads more than the hive-bins data.
        #[test]
        fn a_damaged_paged_hive_never_panics(
            flips in prop::collection::vec((4096usize..win7().len(), any::<u8>()), 1..64),
            headers in prop::collection::vec(0usize..(win7().len() - 4096) / 4096, 0..8),
        ) {
            let mut bytes = win7().to_vec();
            for (at, v) in flips {
                bytes[at] = v;
            }
            // Also damage whole bin headers, which the page lookup relies on.
            for page in headers {
                let at = 4096 + page * 4096;
                bytes[at..at + 12].copy_from_slice(b"hbin\xff\xff\xff\x7f\x00\x10\x00\x00");
            }
            let len = bytes.len() as u64;
            let p = Paged::open(Box::new(bytes), len).unwrap();
            let hive = Hive::open(&p).unwrap();
            let (mut keys, mut errors) = (0usize, 0usize);
            let walked = hive.walk(
                |_, k| {
                    keys += 1;
                    if let Ok(values) = k.values() {
                        for v in values.flatten() {
                            let _ = v.data();
                        }
                    }
                },
                |_, _| errors += 1,
            );
            prop_assert!(p.loaded_bytes() <= p.bins_len());
            prop_assert!(walked.is_err() || keys + errors > 0);
        }
    }
}
