//! The boot configuration store (BCD) of Gen2 (EFI system partition, FAT32) and Gen1 (active
//! NTFS partition) disk images: found, read, repaired through the one transaction and its
//! journal, checked with mtools, fsck.vfat, ntfs-3g and hivex, undone bit for bit; journals
//! forged to reach past the BCD's clusters are refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use bcd::SafeBootMode;
use rescue::edit::{EditOptions, EditOutcome, Transaction};
use rescue::journal;
use rescue::target::{BootFs, BootStore, Target, BOOT_STORE_BIOS, BOOT_STORE_EFI};
use sha2::{Digest, Sha256};

/// The default entry of `hives/BCD` (a Windows 10 OS loader).
const DEFAULT: &str = "{733b62e5-f608-11eb-825c-c112f60133ab}";
/// Both disks' first partition (the ESP, or System Reserved) starts at 1 MiB.
const P1: u64 = 2048 * 512;
const GEN2_ESP_LEN: u64 = 33 << 20;
const GEN1_SR_LEN: u64 = 50 << 20;

fn copy_image(dir: &Path, fixture: &str) -> PathBuf {
    let p = dir.join(Path::new(fixture).file_name().unwrap());
    fs::copy(fixtures::path(fixture), &p).unwrap();
    p
}

fn sha256(path: &Path) -> String {
    Sha256::digest(fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The partition `start .. start + len` of `image`, as a file of its own.
fn cut(image: &Path, start: u64, len: u64, to: &Path) {
    let bytes = fs::read(image).unwrap();
    fs::write(to, &bytes[start as usize..(start + len) as usize]).unwrap();
}

/// The store's location, its bytes and its safe-boot fact, read by winrescue.
fn read(image: &Path) -> (BootStore, Vec<u8>, Option<bcd::SafeBoot>) {
    let t = Target::open(image, false).unwrap();
    let b = t.boot_store().unwrap().expect("a boot store");
    assert!(b.hive.logs.is_empty(), "the fixtures have no BCD logs");
    let hive = regf::Hive::open(&b.hive.recovered.bytes[..]).unwrap();
    let store = bcd::Store::new(&hive).unwrap();
    assert_eq!(store.default_entry().unwrap().as_deref(), Some(DEFAULT));
    let sb = store.safe_boot().unwrap();
    (b.location, b.hive.on_disk, sb)
}

fn gen2_location() -> BootStore {
    BootStore {
        partition: Some(1),
        partition_start: Some(P1),
        filesystem: Some(BootFs::Fat),
        path: BOOT_STORE_EFI.into(),
    }
}

fn gen1_location() -> BootStore {
    BootStore {
        partition: Some(1),
        partition_start: Some(P1),
        filesystem: Some(BootFs::Ntfs),
        path: BOOT_STORE_BIOS.into(),
    }
}

#[test]
fn shipped_healthy_images_have_a_boot_store_without_safe_mode() {
    for (image, loc) in [
        ("images/gen2-gpt-win7-system.raw", gen2_location()),
        ("images/gen2-gpt-win7-dhcp-disabled.raw", gen2_location()),
        ("images/gen1-mbr-win10-dirty-system.raw", gen1_location()),
    ] {
        let (found, bytes, sb) = read(&fixtures::path(image));
        assert_eq!(found, loc, "{image}");
        assert!(
            bytes == fixtures::bytes("hives/BCD"),
            "{image}: the real BCD"
        );
        assert_eq!(sb, None, "{image}");
    }
}

#[test]
fn safeboot_images_boot_the_default_entry_into_minimal_safe_mode() {
    for (image, loc) in [
        ("images/gen2-gpt-win7-safeboot.raw", gen2_location()),
        ("images/gen1-mbr-win10-safeboot.raw", gen1_location()),
    ] {
        let (found, _, sb) = read(&fixtures::path(image));
        assert_eq!(found, loc, "{image}");
        let sb = sb.expect("safe mode");
        assert_eq!(sb.mode, SafeBootMode::Minimal);
        assert_eq!((sb.entry.as_str(), sb.object.as_str()), (DEFAULT, DEFAULT));
        assert!(!sb.alternate_shell);
    }
}

#[test]
fn a_hive_file_has_no_boot_store() {
    let t = Target::open(fixtures::path("hives/win7-SYSTEM"), false).unwrap();
    assert!(t.find_boot_store().unwrap().is_none());
    assert!(t.boot_store().unwrap().is_none());
}

/// Removes safe mode from the target's boot store through one transaction. `None` when the
/// store does not boot into safe mode (nothing is written).
fn repair(target: &Path) -> Option<EditOutcome> {
    let mut tx = Transaction::open(target, EditOptions::default()).unwrap();
    let ed = tx.boot_store().unwrap().expect("a boot store");
    let sb = {
        let hive = ed.hive().unwrap();
        bcd::Store::new(&hive).unwrap().safe_boot().unwrap()
    }?;
    assert!(bcd::remove_safe_boot(ed, &sb).unwrap());
    Some(tx.commit("safe boot removed").unwrap())
}

/// `hivexregedit --export` of a whole hive file.
fn export(hive: &Path) -> String {
    String::from_utf8(run(Command::new("hivexregedit")
        .arg("--export")
        .arg(hive)
        .arg("\\")))
    .unwrap()
}

/// Every byte that differs between `a` and `b` lies in one of `ranges`.
fn changed_only_inside(a: &[u8], b: &[u8], ranges: &[(u64, u64)]) -> usize {
    assert_eq!(a.len(), b.len());
    let mut n = 0;
    for i in (0..a.len()).filter(|&i| a[i] != b[i]) {
        let i = i as u64;
        assert!(
            ranges.iter().any(|&(o, l)| i >= o && i < o + l),
            "byte {i:#x} changed outside {ranges:x?}"
        );
        n += 1;
    }
    n
}

#[test]
fn gen2_repair_through_the_journal_then_undo_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_image(dir.path(), "images/gen2-gpt-win7-safeboot.raw");
    let sha_before = sha256(&image);
    let before = fs::read(&image).unwrap();
    let esp = dir.path().join("esp.img");
    cut(&image, P1, GEN2_ESP_LEN, &esp);

    // The BCD's clusters as mtools lists them, as disk ranges.
    let clusters = String::from_utf8(run(Command::new("mshowfat")
        .arg("-i")
        .arg(&esp)
        .arg("::/EFI/Microsoft/Boot/BCD")))
    .unwrap();
    let vol = fat::Volume::open(&mut fs::File::open(&esp).unwrap()).unwrap();
    let cs = u64::from(vol.cluster_size());
    let mut bcd_ranges = Vec::new();
    for run in clusters.split('<').skip(1) {
        let run = run.split('>').next().unwrap();
        let (a, b) = run.split_once('-').unwrap_or((run, run));
        let (a, b): (u64, u64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
        bcd_ranges.push((P1 + vol.data_offset() + (a - 2) * cs, (b - a + 1) * cs));
    }

    let out = repair(&image).expect("safe mode was set");
    assert_eq!(out.hives.len(), 1);
    assert_eq!(out.hives[0].hive, BOOT_STORE_EFI);
    let after = fs::read(&image).unwrap();
    let planned: Vec<(u64, u64)> = out.ranges.iter().map(|&(o, l)| (o, l as u64)).collect();
    assert!(changed_only_inside(&before, &after, &planned) > 0);
    for &(o, l) in &planned {
        assert!(
            bcd_ranges.iter().any(|&(s, n)| o >= s && o + l <= s + n),
            "range {o:#x}+{l} is not inside the BCD's clusters {bcd_ranges:x?}"
        );
    }

    // The ESP is still a clean FAT32 volume, and the BCD in it has lost safeboot and nothing
    // else: hivex exports it exactly as it exports the real, healthy store.
    cut(&image, P1, GEN2_ESP_LEN, &esp);
    run(Command::new("fsck.vfat").arg("-n").arg(&esp));
    let bcd_out = dir.path().join("BCD");
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&esp)
        .arg("::/EFI/Microsoft/Boot/BCD")
        .arg(&bcd_out));
    let key = format!(r"\Objects\{DEFAULT}\Elements\25000080");
    let got = Command::new("hivexget")
        .arg(&bcd_out)
        .arg(&key)
        .output()
        .unwrap();
    assert!(!got.status.success(), "hivexget still finds {key}");
    let healthy = dir.path().join("BCD.healthy");
    fs::write(&healthy, fixtures::bytes("hives/BCD")).unwrap();
    assert_eq!(export(&bcd_out), export(&healthy));
    assert_eq!(read(&image).2, None);

    // Nothing left to do: no second write.
    assert!(repair(&image).is_none());
    assert!(fs::read(&image).unwrap() == after);

    let written = out.written.unwrap();
    journal::undo(&written.undo_journal, false).unwrap();
    assert_eq!(
        sha256(&image),
        sha_before,
        "undo gives back the image bit for bit"
    );
    assert!(journal::undo(&written.undo_journal, false).unwrap().already);
}

#[test]
fn gen1_repair_through_the_journal_then_undo_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_image(dir.path(), "images/gen1-mbr-win10-safeboot.raw");
    let sha_before = sha256(&image);
    let before = fs::read(&image).unwrap();
    let out = repair(&image).expect("safe mode was set");
    assert_eq!(out.hives[0].hive, BOOT_STORE_BIOS);
    let after = fs::read(&image).unwrap();
    // Inside the System Reserved partition only.
    assert!(changed_only_inside(&before, &after, &[(P1, GEN1_SR_LEN)]) > 0);
    let planned: Vec<(u64, u64)> = out.ranges.iter().map(|&(o, l)| (o, l as u64)).collect();
    changed_only_inside(&before, &after, &planned);

    let sr = dir.path().join("sr.img");
    cut(&image, P1, GEN1_SR_LEN, &sr);
    run(Command::new("ntfsfix").arg("-n").arg(&sr));
    let bcd_out = dir.path().join("BCD");
    fs::write(
        &bcd_out,
        run(Command::new("ntfscat").arg(&sr).arg("Boot/BCD")),
    )
    .unwrap();
    let key = format!(r"\Objects\{DEFAULT}\Elements\25000080");
    assert!(!Command::new("hivexget")
        .arg(&bcd_out)
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success());
    let healthy = dir.path().join("BCD.healthy");
    fs::write(&healthy, fixtures::bytes("hives/BCD")).unwrap();
    assert_eq!(export(&bcd_out), export(&healthy));

    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert_eq!(
        sha256(&image),
        sha_before,
        "undo gives back the image bit for bit"
    );
}

/// A folder holding a Windows tree and `Boot\BCD`: the file is written in place and undone.
#[test]
fn folder_target_boot_store_is_repaired_and_undone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("C");
    fs::create_dir_all(root.join("Windows/System32/config")).unwrap();
    fs::write(
        root.join("Windows/System32/config/SYSTEM"),
        fixtures::bytes("hives/win7-SYSTEM"),
    )
    .unwrap();
    assert!(Target::open(&root, false)
        .unwrap()
        .boot_store()
        .unwrap()
        .is_none());
    // The BCD of the Gen1 safe-boot image, read out by ntfs-3g.
    let sr = dir.path().join("sr.img");
    cut(
        &fixtures::path("images/gen1-mbr-win10-safeboot.raw"),
        P1,
        GEN1_SR_LEN,
        &sr,
    );
    fs::create_dir_all(root.join("boot")).unwrap();
    let file = root.join("boot/bcd");
    fs::write(&file, run(Command::new("ntfscat").arg(&sr).arg("Boot/BCD"))).unwrap();
    let original = fs::read(&file).unwrap();
    let t = Target::open(&root, false).unwrap();
    let loc = t.find_boot_store().unwrap().unwrap();
    assert_eq!(loc.path, r"boot\bcd");
    assert_eq!(loc.filesystem, None);
    let out = repair(&root).expect("safe mode was set");
    let key = format!(r"\Objects\{DEFAULT}\Elements\25000080");
    assert!(!Command::new("hivexget")
        .arg(&file)
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success());
    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert!(fs::read(&file).unwrap() == original);
}

/// Writes `journal` signed with this machine's key (as only its holder could), to test the
/// checks that stand behind the signature.
fn sign(journal: &mut serde_json::Value) -> String {
    use hmac::Mac;
    let key = fs::read(rescue::files::key_path()).unwrap();
    journal["mac"] = serde_json::Value::String(String::new());
    let body = serde_json::to_vec(journal).unwrap();
    let mut m = hmac::Hmac::<Sha256>::new_from_slice(&key).unwrap();
    m.update(&body);
    let mac: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    journal["mac"] = serde_json::Value::String(mac);
    serde_json::to_string(journal).unwrap()
}

#[test]
fn journals_forged_past_the_bcd_clusters_on_fat_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_image(dir.path(), "images/gen2-gpt-win7-safeboot.raw");
    let out = repair(&image).expect("safe mode was set");
    let j = out.written.unwrap().undo_journal;
    let genuine: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(genuine["devices"][0]["hives"][0]["boot_store"], true);
    assert_eq!(genuine["devices"][0]["hives"][0]["path"], BOOT_STORE_EFI);
    let repaired = fs::read(&image).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let at = |off: u64, len: usize| repaired[off as usize..off as usize + len].to_vec();

    // The BCD's last cluster ends where its last extent ends.
    let t = Target::open(&image, false).unwrap();
    let loc = t.find_boot_store().unwrap().unwrap();
    drop(t);
    let esp = dir.path().join("esp.img");
    cut(&image, P1, GEN2_ESP_LEN, &esp);
    let mut f = fs::File::open(&esp).unwrap();
    let vol = fat::Volume::open(&mut f).unwrap();
    let entry = vol.lookup(&mut f, &loc.path).unwrap().unwrap();
    let last = entry.extents().last().unwrap();
    let bcd_end = P1 + last.partition_offset + last.len;
    // First FAT: right after the reserved sectors (32 of them for FAT32 by mkfs.vfat).
    let fat1 = P1 + 32 * 512;

    for (name, offset, len, boot_store) in [
        ("the first FAT", fat1, 16, true),
        ("the cluster after the BCD", bcd_end, 16, true),
        ("across the BCD's end", bcd_end - 8, 16, true),
        // The same BCD range, but named as a hive of a Windows install: no install volume
        // starts at the ESP.
        ("a hive of an install", bcd_end - 4096, 16, false),
    ] {
        let mut forged = genuine.clone();
        let current = at(offset, len);
        let mut other = current.clone();
        other[0] ^= 0xff;
        // Undo writes `before` where the bytes are still `after`: both made to pass that check.
        forged["ranges"] = serde_json::json!([{"device": 0, "offset": offset, "before": hex(&other), "after": hex(&current)}]);
        if !boot_store {
            // As winrescue writes a hive of an install: without the field.
            forged["devices"][0]["hives"][0]
                .as_object_mut()
                .unwrap()
                .remove("boot_store");
        }
        let fj = dir
            .path()
            .join(format!("forged-{offset}-{boot_store}.json"));
        fs::write(&fj, sign(&mut forged)).unwrap();
        let err = journal::undo(&fj, false).unwrap_err().to_string();
        let want = if boot_store {
            "not inside the clusters"
        } else {
            "no Windows volume starts at byte"
        };
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            fs::read(&image).unwrap() == repaired,
            "{name}: the image was written"
        );
    }
    // The genuine journal still undoes.
    journal::undo(&j, false).unwrap();
}

/// An EFI system partition whose FAT says it was not unmounted cleanly (FAT32's FAT[1] with
/// its clean bit 0x08000000 cleared, as Windows leaves it while mounted): the write is refused
/// and nothing changes.
#[test]
fn a_dirty_efi_system_partition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = copy_image(dir.path(), "images/gen2-gpt-win7-safeboot.raw");
    let mut bytes = fs::read(&image).unwrap();
    // FAT[1]: 4 bytes after the first FAT's start (32 reserved sectors); its top byte is the 4th.
    let at = (P1 + 32 * 512 + 7) as usize;
    assert_eq!(bytes[at] & 0x08, 0x08, "mkfs.vfat leaves the volume clean");
    bytes[at] &= !0x08;
    fs::write(&image, &bytes).unwrap();
    let mut tx = Transaction::open(&image, EditOptions::default()).unwrap();
    let ed = tx.boot_store().unwrap().expect("a boot store");
    let sb = {
        let hive = ed.hive().unwrap();
        bcd::Store::new(&hive)
            .unwrap()
            .safe_boot()
            .unwrap()
            .unwrap()
    };
    assert!(bcd::remove_safe_boot(ed, &sb).unwrap());
    let err = tx.commit("safe boot removed").unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(err.to_string().contains("marked dirty"), "{err}");
    assert!(fs::read(&image).unwrap() == bytes, "nothing written");
}

/// A boot store edit that needs more room than the BCD file has: refused with the reason on
/// the EFI system partition (FAT: winrescue allocates no FAT clusters) and on Gen1's NTFS
/// System Reserved partition (boot stores keep their length), nothing written. An 8 MiB value
/// is larger than any slack the file has.
#[test]
fn a_boot_store_edit_that_needs_its_file_to_grow_is_refused_and_writes_nothing() {
    for (fixture, fat) in [
        ("images/gen2-gpt-win7-system.raw", true),
        ("images/gen1-mbr-win10-dirty-system.raw", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let img = copy_image(dir.path(), fixture);
        let original = sha256(&img);
        let mut tx = Transaction::open(&img, EditOptions::default()).unwrap();
        let ed = tx.boot_store().unwrap().expect("a boot store");
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        ed.set_value(
            &format!(r"Objects\{DEFAULT}"),
            "Big",
            regf::ValueType::BINARY,
            &data,
        )
        .unwrap();
        let e = tx.commit("a big value").unwrap_err();
        match &e {
            rescue::Error::HiveFileFull { why, .. } => {
                let want = if fat {
                    rescue::GrowthBlocked::Fat
                } else {
                    rescue::GrowthBlocked::BootStore
                };
                assert_eq!(why.to_string(), want.to_string(), "{fixture}: {e}");
            }
            other => panic!("{fixture}: not a refusal for room: {other}"),
        }
        assert!(e.is_refusal());
        assert_eq!(sha256(&img), original, "{fixture}: nothing written");
        assert!(!journal::pending_path(&img).exists());
    }
}
