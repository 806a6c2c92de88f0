//! xz-compressed disk images (as `testdata/images/` commits them) open read-only through a
//! decompressed copy that is gone once the disk is open; writes to them are refused. Also checks
//! that each committed `gen2-gpt-win7-<case>.raw.xz` holds its broken hive of
//! `testdata/hives/broken/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use rescue::target::{decompressed_copy, Target, TargetKind};
use rescue::Error;

/// Tests that look for leftover copies in the temporary folder run one at a time.
static TMP: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    TMP.lock().unwrap_or_else(|e| e.into_inner())
}

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Copies this process made in the temporary folder and did not remove.
fn leftovers() -> Vec<PathBuf> {
    let prefix = format!("winrescue-xz-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

const CASES: [&str; 5] = [
    "dhcp-disabled",
    "afd-disabled",
    "cycle-nsi-dhcp",
    "group-member-account",
    "current-broken",
];

/// The compressed image of a broken case: the committed one, else one built now by
/// `make-windows-fixtures.sh broken-raw` (root, FUSE, ntfs-3g and hivex needed: a failure fails
/// the test under CI and skips it elsewhere).
fn image(case: &str) -> Option<PathBuf> {
    let committed = fixtures::testdata_dir().join(format!("images/gen2-gpt-win7-{case}.raw.xz"));
    if committed.exists() {
        return Some(committed);
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fixture-images");
    let raw = out.join(format!("gen2-gpt-win7-{case}.raw"));
    if !raw.exists() {
        let script = fixtures::testdata_dir().join("images/make-windows-fixtures.sh");
        let ok = Command::new(&script)
            .arg("broken-raw")
            .arg(&out)
            .arg(case)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !ci(),
                "{} could not build {case} (root, FUSE, ntfs-3g and hivex are needed)",
                script.display()
            );
            eprintln!(
                "skipped {case}: not committed and {} could not build it",
                script.display()
            );
            return None;
        }
    }
    let xz = out.join(format!("gen2-gpt-win7-{case}.raw.xz"));
    if !xz.exists() {
        assert!(Command::new("xz")
            .args(["-kf", "-T1"])
            .arg(&raw)
            .status()
            .unwrap()
            .success());
    }
    Some(xz)
}

fn dword(hive: &regf::Hive<&[u8]>, key: &str, value: &str) -> u32 {
    let v = hive
        .key(key)
        .unwrap()
        .unwrap_or_else(|| panic!("no key {key}"))
        .value(value)
        .unwrap()
        .unwrap();
    v.data().unwrap().as_u64().unwrap() as u32
}

#[test]
fn xz_image_opens_read_only_and_leaves_no_copy() {
    let _g = lock();
    let xz = image("dhcp-disabled").unwrap();
    let t = Target::open(&xz, false).unwrap();
    assert!(
        leftovers().is_empty(),
        "decompressed copy left behind: {:?}",
        leftovers()
    );
    assert_eq!(t.kind(), TargetKind::Disk);
    assert_eq!(t.path(), xz, "messages name the file the user gave");
    assert_eq!(t.installs().len(), 1);
    let install = t.choose(None).unwrap().clone();
    assert_eq!(install.partition, Some(3));
    assert_eq!(install.label.as_deref(), Some("Windows"));
    assert!(install.write_blockers.is_empty());

    let sys = t.system_hive(&install).unwrap();
    assert!(sys.on_disk == fixtures::bytes("hives/broken/win7-dhcp-disabled"));
    assert!(sys.logs.is_empty());
    let hive = regf::Hive::open(&sys.on_disk[..]).unwrap();
    assert_eq!(dword(&hive, "Select", "Current"), 1);
    // The breakage is in the Current control set only; LastKnownGood (002) keeps the healthy value.
    assert_eq!(dword(&hive, r"ControlSet001\Services\Dhcp", "Start"), 4);
    assert_eq!(dword(&hive, r"ControlSet002\Services\Dhcp", "Start"), 2);

    // The log is the real Server 2008 R2 one, from a healthy machine (it does not show the breakage).
    let evtx = t
        .read_file(&install, rescue::target::SYSTEM_EVTX)
        .unwrap()
        .unwrap();
    assert!(evtx == fixtures::bytes("evtx/srv2008r2-System.evtx"));
}

#[test]
fn each_broken_image_holds_its_broken_hive() {
    let _g = lock();
    let healthy = fixtures::bytes("hives/win7-SYSTEM");
    for case in CASES {
        let Some(xz) = image(case) else { continue };
        let t = Target::open(&xz, false).unwrap();
        let install = t.choose(None).unwrap().clone();
        let sys = t.system_hive(&install).unwrap();
        assert!(
            sys.on_disk == fixtures::bytes(&format!("hives/broken/win7-{case}")),
            "{case}"
        );
        assert!(sys.on_disk != healthy, "{case}");
    }
    assert!(leftovers().is_empty());
}

#[test]
fn writing_to_an_xz_image_is_refused_and_changes_nothing() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let xz = dir.path().join("disk.raw.xz");
    std::fs::copy(image("dhcp-disabled").unwrap(), &xz).unwrap();
    let before = std::fs::read(&xz).unwrap();
    match Target::open(&xz, true) {
        Err(Error::Refused(msg)) => {
            assert!(msg.contains("xz-compressed"), "{msg}");
            assert!(msg.contains(&format!("xz -dk {}", xz.display())), "{msg}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a compressed image was opened for writing"),
    }
    assert!(std::fs::read(&xz).unwrap() == before);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written beside it"
    );
    assert!(leftovers().is_empty());
}

#[test]
fn decompressed_copy_is_the_image_and_sparse() {
    use std::os::unix::fs::MetadataExt;
    let _g = lock();
    let xz = image("dhcp-disabled").unwrap();
    let copy = decompressed_copy(&xz).unwrap();
    assert_eq!(copy.file_name().unwrap(), "gen2-gpt-win7-dhcp-disabled.raw");
    assert!(copy.starts_with(std::env::temp_dir()));
    // Compared with the copy the fixtures crate makes with lzma-rs, another decompressor.
    let data = std::fs::read(&copy).unwrap();
    assert_eq!(data.len(), 96 << 20);
    assert!(data == fixtures::bytes("images/gen2-gpt-win7-dhcp-disabled.raw"));
    let meta = std::fs::metadata(&copy).unwrap();
    assert!(
        meta.blocks() * 512 < meta.len() / 2,
        "zero blocks became holes: {} bytes allocated",
        meta.blocks() * 512
    );
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_dir(copy.parent().unwrap()).unwrap();
}

#[test]
fn damaged_xz_image_is_an_error_naming_it() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let xz = dir.path().join("cut.raw.xz");
    let whole = std::fs::read(image("dhcp-disabled").unwrap()).unwrap();
    std::fs::write(&xz, &whole[..whole.len() / 2]).unwrap();
    let err = Target::open(&xz, false)
        .err()
        .expect("a truncated xz file must not open");
    let msg = err.to_string();
    assert!(
        msg.contains(&xz.display().to_string()) && msg.contains("xz"),
        "{msg}"
    );
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn xz_hive_file_is_not_taken_for_a_disk() {
    let _g = lock();
    let xz = fixtures::testdata_dir().join("hives/broken/win7-dhcp-disabled.xz");
    match Target::open(&xz, false) {
        Err(Error::NoWindows { path, why }) => {
            assert_eq!(path, xz);
            assert!(why.contains("hive file") && why.contains("xz -dk"), "{why}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened an xz hive as a target"),
    }
    assert!(leftovers().is_empty());
}
