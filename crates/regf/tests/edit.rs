//! In-place editing on the real hives: the DHCP Client fix, every edit operation, checked by
//! the structural checker, by a fresh read, and by independent readers (hivex, reglookup,
//! libregf).

use std::process::Command;

use regf::check::check;
use regf::edit::{Editor, SetOutcome};
use regf::log::{replay, LogInput};
use regf::{Data, Hive, ValueType};

/// A FILETIME pinned so that results are reproducible.
const CLOCK: u64 = 133_000_000_000_000_000;

fn win10_replayed() -> (Vec<u8>, u32) {
    let (h, l1, l2) = (
        fixtures::bytes("hives/win10-dirty-SYSTEM"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1"),
        fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2"),
    );
    let r = replay(
        &h,
        &[
            LogInput {
                name: "LOG1",
                data: &l1,
            },
            LogInput {
                name: "LOG2",
                data: &l2,
            },
        ],
    )
    .unwrap();
    (r.bytes, r.report.next_sequence)
}

fn dword(bytes: &[u8], path: &str, name: &str) -> Option<u32> {
    let hive = Hive::open(bytes).unwrap();
    let v = hive.key(path).unwrap()?.value(name).unwrap()?;
    match v.data().unwrap() {
        Data::Dword(d) => Some(d),
        other => panic!("{other:?}"),
    }
}

fn control_sets(bytes: &[u8]) -> Vec<String> {
    let hive = Hive::open(bytes).unwrap();
    let root = hive.root().unwrap();
    let mut sets: Vec<String> = root
        .subkeys()
        .unwrap()
        .map(|k| k.unwrap().name().to_string())
        .filter(|n| n.to_ascii_lowercase().starts_with("controlset"))
        .collect();
    sets.sort();
    sets
}

/// Start=4 in every control set, then back to 2: same size, only a few pages change, and a
/// DWORD change touches at most 2 pages of hive bins (the value and its key's timestamp).
fn dhcp_round_trip(original: Vec<u8>, min_seq: u32) {
    let sets = control_sets(&original);
    assert!(!sets.is_empty());
    let mut ed = Editor::new(original.clone(), min_seq).unwrap();
    ed.set_clock(CLOCK);
    for cs in &sets {
        let out = ed
            .set_value(
                &format!(r"{cs}\Services\Dhcp"),
                "Start",
                ValueType::DWORD,
                &4u32.to_le_bytes(),
            )
            .unwrap();
        assert_eq!(
            out,
            SetOutcome::Updated {
                old_type: ValueType::DWORD,
                old_data: 2u32.to_le_bytes().to_vec()
            }
        );
    }
    let broken = ed.finish().unwrap();
    assert_eq!(broken.bytes.len(), original.len());
    assert!(broken.sequence >= min_seq);
    for cs in &sets {
        assert_eq!(
            dword(&broken.bytes, &format!(r"{cs}\Services\Dhcp"), "Start"),
            Some(4)
        );
    }
    // Base block + at most 2 pages a control set.
    assert!(
        broken.changed_pages.len() <= 1 + 2 * sets.len(),
        "{:?}",
        broken.changed_pages
    );
    assert_eq!(broken.changed_pages[0], 0, "the base block changes");
    // The page list is exactly the pages that differ.
    assert_eq!(
        broken.changed_pages,
        regf::edit::changed_pages(&original, &broken.bytes)
    );

    let mut ed = Editor::new(broken.bytes.clone(), 0).unwrap();
    ed.set_clock(CLOCK);
    for cs in &sets {
        ed.set_value(
            &format!(r"{cs}\Services\Dhcp"),
            "Start",
            ValueType::DWORD,
            &2u32.to_le_bytes(),
        )
        .unwrap();
    }
    let fixed = ed.finish().unwrap();
    assert!(fixed.sequence > broken.sequence);
    assert_eq!(
        fixed.changed_pages,
        regf::edit::changed_pages(&broken.bytes, &fixed.bytes)
    );
    // Everything after the base block is back to the original but the touched keys' times.
    let pages_vs_original = regf::edit::changed_pages(&original, &fixed.bytes);
    assert!(pages_vs_original.len() <= 1 + 2 * sets.len());
    for cs in &sets {
        assert_eq!(
            dword(&fixed.bytes, &format!(r"{cs}\Services\Dhcp"), "Start"),
            Some(2)
        );
    }
    assert!(check(&fixed.bytes).is_sound());
}

#[test]
fn dhcp_start_round_trip_win7() {
    dhcp_round_trip(fixtures::bytes("hives/win7-SYSTEM"), 0);
}

#[test]
fn dhcp_start_round_trip_win10_replayed() {
    let (bytes, next) = win10_replayed();
    dhcp_round_trip(bytes, next);
}

#[test]
fn a_dirty_hive_is_refused() {
    let e = Editor::new(fixtures::bytes("hives/win10-dirty-SYSTEM"), 0)
        .err()
        .unwrap();
    assert!(e.to_string().contains("dirty"), "{e}");
}

#[test]
fn a_corrupt_hive_is_refused() {
    let e = Editor::new(fixtures::bytes("hives/corrupted-SYSTEM"), 0)
        .err()
        .unwrap();
    assert!(e.to_string().contains("structural check"), "{e}");
}

#[test]
fn the_articles_three_values_in_place() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let mut ed = Editor::new(original.clone(), 0).unwrap();
    let k = r"ControlSet001\services\DHCP";
    // The article's reg add lines: start=2, ObjectName, type=16.
    assert_eq!(
        ed.set_value(k, "start", ValueType::DWORD, &2u32.to_le_bytes())
            .unwrap(),
        SetOutcome::Unchanged
    );
    let name: Vec<u8> = "NT Authority\\LocalService\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(
        ed.set_value(k, "ObjectName", ValueType::SZ, &name).unwrap(),
        SetOutcome::Unchanged
    );
    assert!(matches!(
        ed.set_value(k, "type", ValueType::DWORD, &16u32.to_le_bytes())
            .unwrap(),
        SetOutcome::Updated { .. }
    ));
    let out = ed.finish().unwrap();
    assert_eq!(dword(&out.bytes, k, "Type"), Some(16));
}

#[test]
fn strings_grow_and_shrink_using_free_cells_only() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let k = r"ControlSet001\services\Dhcp";
    let mut ed = Editor::new(original.clone(), 0).unwrap();
    let long: Vec<u8> = "NT Authority\\NetworkService-with-a-longer-name\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    ed.set_value(k, "ObjectName", ValueType::SZ, &long).unwrap();
    let out = ed.finish().unwrap();
    assert_eq!(out.bytes.len(), original.len());
    let hive = Hive::open(&out.bytes[..]).unwrap();
    let v = hive
        .key(k)
        .unwrap()
        .unwrap()
        .value("objectname")
        .unwrap()
        .unwrap();
    assert_eq!(
        v.data().unwrap(),
        Data::Sz("NT Authority\\NetworkService-with-a-longer-name".into())
    );
}

#[test]
fn create_and_delete_keys_and_values() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let mut ed = Editor::new(original.clone(), 0).unwrap();
    // Real hives keep only a few KB free (4608 bytes in 117 cells here): the ~450-entry list of
    // services cannot grow in place, so a new service key is refused with the size it needed...
    let before = ed.bytes().to_vec();
    let e = ed
        .create_key(r"ControlSet001\services\WinrescueTest")
        .unwrap_err();
    assert!(
        matches!(e, regf::Error::NoRoom { needed, .. } if needed > 3584),
        "{e}"
    );
    assert!(ed.bytes() == &before[..], "a failed edit changes nothing");
    // ...while keys under a key with a short list fit.
    let k = r"ControlSet001\services\Dhcp\WinrescueTest";
    assert!(ed.create_key(&format!(r"{k}\Parameters")).unwrap());
    ed.set_value(k, "Start", ValueType::DWORD, &3u32.to_le_bytes())
        .unwrap();
    let multi: Vec<u8> = "NSI\0Afd\0\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    ed.set_value(k, "DependOnService", ValueType::MULTI_SZ, &multi)
        .unwrap();
    ed.set_value(k, "", ValueType::SZ, &[0x41, 0, 0, 0])
        .unwrap();
    let mid = ed.bytes().to_vec();
    assert!(check(&mid).is_sound());
    {
        let hive = Hive::open(&mid[..]).unwrap();
        let key = hive
            .key(r"controlset001\SERVICES\dhcp\winrescuetest")
            .unwrap()
            .unwrap();
        assert_eq!(key.value_count(), 3);
        assert!(key.subkey("parameters").unwrap().is_some());
        // The new key sits at its sorted place.
        let names: Vec<String> = hive
            .key(r"ControlSet001\services\Dhcp")
            .unwrap()
            .unwrap()
            .subkeys()
            .unwrap()
            .map(|k| k.unwrap().name().to_string().to_uppercase())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 6);
    }
    assert!(ed.delete_value(k, "Start").unwrap());
    assert!(!ed.delete_value(k, "Start").unwrap());
    assert!(ed.delete_key(k).unwrap());
    assert!(!ed.delete_key(k).unwrap());
    let out = ed.finish().unwrap();
    let report = check(&out.bytes);
    assert!(report.is_sound());
    assert_eq!(report.stats.leaked_cells, 0);
    assert_eq!(report.stats.keys, 30756);
    // Deleting a real service with subkeys and many values.
    let mut ed = Editor::new(out.bytes, 0).unwrap();
    assert!(ed.delete_key(r"ControlSet002\services\Dhcp").unwrap());
    let out = ed.finish().unwrap();
    let report = check(&out.bytes);
    assert!(report.is_sound() && report.stats.leaked_cells == 0);
    assert!(Hive::open(&out.bytes[..])
        .unwrap()
        .key(r"ControlSet002\services\Dhcp")
        .unwrap()
        .is_none());
}

#[test]
fn big_data_values_are_written_in_segments() {
    let (bytes, next) = win10_replayed();
    // Free space is scarce in real hives: delete an existing big value first (its 16 KB segments
    // become free cells), then write a new big value, which must reuse them.
    let (path, name, old_len) = {
        let hive = Hive::open(&bytes[..]).unwrap();
        let mut found = None;
        hive.walk(
            |p, k| {
                for v in k.values().unwrap() {
                    let v = v.unwrap();
                    if found.is_none() && v.is_big() {
                        found = Some((p.to_string(), v.name().to_string(), v.data_len()));
                    }
                }
            },
            |p, e| panic!("{p}: {e}"),
        )
        .unwrap();
        found.expect("the Windows 10 hive holds big-data values")
    };
    let mut ed = Editor::new(bytes, next).unwrap();
    assert!(ed.delete_value(&path, &name).unwrap());
    let data: Vec<u8> = (0..old_len.min(40_000)).map(|i| (i * 7) as u8).collect();
    assert!(data.len() > 16344);
    ed.set_value(&path, "Winrescue big", ValueType::BINARY, &data)
        .unwrap();
    let out = ed.finish().unwrap();
    let hive = Hive::open(&out.bytes[..]).unwrap();
    let v = hive
        .key(&path)
        .unwrap()
        .unwrap()
        .value("winrescue BIG")
        .unwrap()
        .unwrap();
    assert!(v.is_big());
    assert!(*v.raw_data().unwrap() == data[..]);
    let report = check(&out.bytes);
    assert!(report.is_sound() && report.stats.leaked_cells == 0);
}

#[test]
fn no_room_is_a_clear_error_and_changes_nothing() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let mut ed = Editor::new(original.clone(), 0).unwrap();
    let huge = vec![0x41u8; 200_000];
    let e = ed
        .set_value(
            r"ControlSet001\services\Dhcp",
            "Huge",
            ValueType::BINARY,
            &huge,
        )
        .unwrap_err();
    assert!(matches!(e, regf::Error::NoRoom { .. }), "{e}");
    assert!(e.to_string().contains("never grows"), "{e}");
    assert!(ed.bytes() == &original[..], "a failed edit changes nothing");
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

/// hivex, reglookup and libregf read the edited values and report no error.
#[test]
fn independent_readers_agree_after_edits() {
    let original = fixtures::bytes("hives/win7-SYSTEM");
    let mut ed = Editor::new(original, 0).unwrap();
    ed.set_value(
        r"ControlSet001\services\Dhcp",
        "Start",
        ValueType::DWORD,
        &4u32.to_le_bytes(),
    )
    .unwrap();
    let acct: Vec<u8> = ".\\bob\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    ed.set_value(
        r"ControlSet002\services\Dhcp",
        "ObjectName",
        ValueType::SZ,
        &acct,
    )
    .unwrap();
    ed.create_key(r"ControlSet001\services\Dhcp\Zz Winrescue")
        .unwrap();
    ed.set_value(
        r"ControlSet001\services\Dhcp\Zz Winrescue",
        "Marker",
        ValueType::DWORD,
        &0x1234u32.to_le_bytes(),
    )
    .unwrap();
    let out = ed.finish().unwrap();
    let file = write_temp(&out.bytes);
    let ci = std::env::var_os("CI").is_some();

    match Command::new("hivexget")
        .arg(file.path())
        .arg(r"\ControlSet001\services\Dhcp")
        .arg("Start")
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "4");
            let o = Command::new("hivexget")
                .arg(file.path())
                .arg(r"\ControlSet002\services\Dhcp")
                .arg("ObjectName")
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), ".\\bob");
            let o = Command::new("hivexget")
                .arg(file.path())
                .arg(r"\ControlSet001\services\Dhcp\Zz Winrescue")
                .arg("Marker")
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "4660");
        }
        Err(_) => assert!(!ci, "hivexget is required in CI"),
    }
    match Command::new("reglookup")
        .arg("-p")
        .arg("/ControlSet001/services/Dhcp")
        .arg(file.path())
        .output()
    {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.contains("/ControlSet001/services/Dhcp/Start,DWORD,0x00000004,"),
                "{text}"
            );
            assert!(!String::from_utf8_lossy(&o.stderr).contains("ERROR"));
        }
        Err(_) => assert!(!ci, "reglookup is required in CI"),
    }
    match Command::new("regfexport").arg(file.path()).output() {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("Zz Winrescue"));
            assert_eq!(
                text.lines().filter(|l| l.starts_with("Key path:")).count(),
                30757
            );
        }
        Err(_) => assert!(!ci, "regfexport is required in CI"),
    }
}

#[test]
fn changed_pages_before_finish_match_the_final_list_less_the_base_block() {
    let mut ed = Editor::new(fixtures::bytes("hives/win7-SYSTEM"), 0).unwrap();
    ed.set_value(
        r"ControlSet001\services\Dhcp",
        "Start",
        ValueType::DWORD,
        &4u32.to_le_bytes(),
    )
    .unwrap();
    let early = ed.changed_pages();
    assert!((1..=2).contains(&early.len()), "{early:?}");
    let done = ed.finish().unwrap();
    assert_eq!(done.changed_pages[0], 0);
    assert_eq!(&done.changed_pages[1..], &early[..]);
}
