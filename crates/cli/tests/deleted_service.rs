//! A deleted service key (error 1060) re-created by `repair` from the healthy configuration of
//! the hive's Windows version, in every control set that lost it, in hive files and inside the
//! NTFS volume of raw, VHD and VHDX disks (the hive file grows there); and a growth the volume
//! has no room for refused with exit 4. The broken hives are made by hivex's
//! hivexregedit, so the damage does not come from winrescue's own writer; hivexget reads the
//! result.

mod common;
use common::dhcp;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The hive hivex edits: Windows 7 as committed; Windows 10 after its logs are replayed (hivex
/// does not replay logs, and Windows would see the replayed hive).
fn source(dir: &Path, which: &str) -> PathBuf {
    match which {
        "win7" => {
            let p = dir.join("source");
            std::fs::copy(fixtures::path("hives/win7-SYSTEM"), &p).unwrap();
            p
        }
        _ => {
            let raw = dir.join("raw");
            std::fs::create_dir(&raw).unwrap();
            fixtures::copy_to(
                &raw,
                &[
                    ("hives/win10-dirty-SYSTEM", "SYSTEM"),
                    ("hives/win10-dirty-SYSTEM.LOG1", "SYSTEM.LOG1"),
                    ("hives/win10-dirty-SYSTEM.LOG2", "SYSTEM.LOG2"),
                ],
            );
            let p = dir.join("source");
            winrescue()
                .args(["hive", "replay"])
                .arg(raw.join("SYSTEM"))
                .arg("-o")
                .arg(&p)
                .assert()
                .success();
            p
        }
    }
}

/// Deletes `Dhcp` in each of `control_sets` with hivexregedit; `false` when hivex is missing
/// (outside CI only).
fn delete_dhcp(hive: &Path, control_sets: &[&str]) -> bool {
    let prefix = r"HKEY_LOCAL_MACHINE\SYSTEM";
    let mut reg = String::from("Windows Registry Editor Version 5.00\n\n");
    for cs in control_sets {
        reg.push_str(&format!("[-{prefix}\\{cs}\\services\\Dhcp]\n\n"));
    }
    let reg_file = hive.with_extension("reg");
    std::fs::write(&reg_file, reg).unwrap();
    match Std::new("hivexregedit")
        .args(["--merge", "--prefix", prefix])
        .arg(hive)
        .arg(&reg_file)
        .output()
    {
        Ok(o) => {
            assert!(
                o.status.success(),
                "hivexregedit: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            true
        }
        Err(_) => {
            assert!(!ci(), "hivexregedit is required in CI");
            false
        }
    }
}

fn hivexget(hive: &Path, key: &str, value: &str) -> String {
    let o = Std::new("hivexget")
        .arg(hive)
        .arg(key)
        .arg(value)
        .output()
        .expect("hivexget (hivex is installed: hivexregedit ran)");
    assert!(
        o.status.success(),
        "hivexget {key} {value}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn deleted_dhcp_is_recreated(which: &str, control_sets: &[&str], image_path: &str) {
    let dir = tempfile::tempdir().unwrap();
    let hive = source(dir.path(), which);
    assert!(
        delete_dhcp(&hive, control_sets),
        "hivexregedit (Debian: libhivex-bin) is needed to break the hive"
    );
    let original = std::fs::read(&hive).unwrap();

    let out = winrescue()
        .arg("diagnose")
        .arg("--json")
        .arg(&hive)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(dhcp(&j)["code"], 1060, "{which}");
    for cs in &dhcp(&j)["control_sets"].as_array().unwrap()[..] {
        let name = cs["diagnosis"]["control_set_name"].as_str().unwrap_or("");
        if control_sets.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            assert_eq!(cs["diagnosis"]["code"], 1060, "{which} {name}");
        }
    }

    let out = winrescue()
        .args(["repair", "--apply"])
        .arg(&hive)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("verified: read back from the disk, healthy now: service:Dhcp"),
        "{which}: {text}"
    );
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("undo:    winrescue undo "))
        .unwrap()
        .to_string();
    winrescue()
        .arg("diagnose")
        .arg(&hive)
        .assert()
        .success()
        .stdout(predicate::str::contains("verdict:  healthy"));

    // hivex reads the re-created key, its values and its Parameters subkey, in every control
    // set that had lost it.
    for cs in control_sets {
        let key = format!(r"\{cs}\services\Dhcp");
        assert_eq!(hivexget(&hive, &key, "Start"), "2", "{which} {cs}");
        assert_eq!(hivexget(&hive, &key, "Type"), "32", "{which} {cs}");
        assert_eq!(hivexget(&hive, &key, "ErrorControl"), "1", "{which} {cs}");
        assert_eq!(
            hivexget(&hive, &key, "ObjectName"),
            r"NT Authority\LocalService"
        );
        assert_eq!(hivexget(&hive, &key, "Group"), "TDI");
        assert_eq!(hivexget(&hive, &key, "ImagePath"), image_path, "{which}");
        let deps = hivexget(&hive, &key, "DependOnService");
        for d in ["NSI", "Afd"] {
            assert!(deps.contains(d), "{which} {cs}: DependOnService {deps}");
        }
        assert_eq!(
            hivexget(&hive, &format!(r"{key}\Parameters"), "ServiceDll"),
            r"%SystemRoot%\system32\dhcpcore.dll"
        );
    }
    assert!(regf::check::check(&std::fs::read(&hive).unwrap()).is_sound());

    // Undo gives hivex's broken file back, bit for bit, length included.
    winrescue().arg("undo").arg(&journal).assert().success();
    let back = std::fs::read(&hive).unwrap();
    assert_eq!(back.len(), original.len());
    assert!(back == original, "{which}: undo is not bit for bit");
    winrescue().arg("diagnose").arg(&hive).assert().code(1);
}

#[test]
fn win7_deleted_dhcp_in_both_control_sets_is_recreated_and_undone() {
    deleted_dhcp_is_recreated(
        "win7",
        &["ControlSet001", "ControlSet002"],
        r"%SystemRoot%\system32\svchost.exe -k LocalServiceNetworkRestricted",
    );
}

#[test]
fn win10_deleted_dhcp_is_recreated_and_undone() {
    deleted_dhcp_is_recreated(
        "win10",
        &["ControlSet001"],
        r"%SystemRoot%\system32\svchost.exe -k LocalServiceNetworkRestricted -p",
    );
}

/// Partition 3 (NTFS, Windows) of the Gen2 fixtures: sectors 102400..194559.
const PART_START: usize = 102_400 * 512;
const PART_LEN: usize = 92_160 * 512;

/// Runs an independent tool; `None` when it is not installed (outside CI only).
fn tool(name: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    match Std::new(name).args(args).output() {
        Ok(o) => Some(o),
        Err(_) => {
            assert!(!ci(), "{name} is required in CI");
            None
        }
    }
}

/// The raw disk of `image` (qemu-img for VHD and VHDX: an independent reader of the
/// container), its NTFS partition cut out into `dir/part`.
fn ntfs_partition(image: &Path, dir: &Path) -> Option<PathBuf> {
    let raw = if image.extension().is_some_and(|e| e == "raw") {
        image.to_path_buf()
    } else {
        let raw = dir.join("converted.raw");
        let o = tool(
            "qemu-img",
            &[
                "convert".as_ref(),
                "-O".as_ref(),
                "raw".as_ref(),
                image.as_os_str(),
                raw.as_os_str(),
            ],
        )?;
        assert!(
            o.status.success(),
            "qemu-img: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        raw
    };
    let bytes = std::fs::read(&raw).unwrap();
    let part = dir.join("part");
    std::fs::write(&part, &bytes[PART_START..PART_START + PART_LEN]).unwrap();
    Some(part)
}

/// `ntfsfix -n` finds the volume consistent, and ntfs-3g's `ntfscat` reads `path` from it.
fn ntfs3g_read(part: &Path, path: &str) -> Option<Vec<u8>> {
    let fix = tool("ntfsfix", &["-n".as_ref(), part.as_os_str()])?;
    let text = String::from_utf8_lossy(&fix.stdout).into_owned();
    assert!(
        fix.status.success() && !text.contains("FAILED"),
        "ntfsfix -n: {text}{}",
        String::from_utf8_lossy(&fix.stderr)
    );
    let cat = tool("ntfscat", &[part.as_os_str(), path.as_ref()])?;
    assert!(
        cat.status.success(),
        "ntfscat: {}",
        String::from_utf8_lossy(&cat.stderr)
    );
    Some(cat.stdout)
}

/// The Gen2 disk whose Windows 7 SYSTEM lost `ControlSet001\Services\Dhcp` to hivexregedit,
/// put on NTFS by ntfs-3g: built by `make-windows-fixtures.sh broken-raw` (root, FUSE, ntfs-3g
/// and hivex needed: a failure fails the test under CI and skips it elsewhere).
fn dhcp_deleted_image() -> Option<PathBuf> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fixture-images");
    let raw = out.join("gen2-gpt-win7-dhcp-deleted.raw");
    if !raw.exists() {
        let script = fixtures::testdata_dir().join("images/make-windows-fixtures.sh");
        let ok = Std::new(&script)
            .arg("broken-raw")
            .arg(&out)
            .arg("dhcp-deleted")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(!ci(), "{} could not build dhcp-deleted", script.display());
            eprintln!("skipped: {} could not build dhcp-deleted", script.display());
            return None;
        }
    }
    Some(raw)
}

/// The Windows 7 hive (no slack) with Dhcp deleted, inside an NTFS volume of a raw, VHD or
/// VHDX disk: diagnose says 1060, `repair --apply` re-creates the key (its file grows: new
/// clusters, MFT record), diagnose says healthy, ntfs-3g reads the grown file from a volume
/// `ntfsfix -n` finds consistent and hivex reads every value in it; undo gives the disk image
/// back bit for bit.
/// The Gen2 disk with the Windows 10 SYSTEM hive (its logs replayed, as Windows would see it)
/// in place of the Windows 7 one, copied over it by ntfs-3g's ntfscp; with
/// `ControlSet001\Services\Dhcp` deleted by hivexregedit first when `delete_key` says so. The
/// hive file ends at its last hive bin (checked: no slack), so a change that needs a new bin
/// makes the file grow inside the volume. `None` without the tools (outside CI only).
fn win10_image(dir: &Path, delete_key: bool) -> Option<PathBuf> {
    let work = dir.join("win10-source");
    std::fs::create_dir(&work).unwrap();
    let hive = source(&work, "win10");
    if delete_key && !delete_dhcp(&hive, &["ControlSet001"]) {
        return None;
    }
    let bytes = std::fs::read(&hive).unwrap();
    let base = regf::BaseBlock::parse(&bytes).unwrap();
    assert_eq!(
        bytes.len(),
        regf::BASE_BLOCK_SIZE + base.hive_bins_size as usize,
        "the Windows 10 hive has no slack after its bins"
    );
    let image = work.join("disk.raw");
    std::fs::copy(fixtures::path("images/gen2-gpt-win7-system.raw"), &image).unwrap();
    let mut disk = std::fs::read(&image).unwrap();
    let part = work.join("part");
    std::fs::write(&part, &disk[PART_START..PART_START + PART_LEN]).unwrap();
    let o = tool(
        "ntfscp",
        &[
            "-f".as_ref(),
            part.as_os_str(),
            hive.as_os_str(),
            "/Windows/System32/config/SYSTEM".as_ref(),
        ],
    )?;
    assert!(
        o.status.success(),
        "ntfscp: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        ntfs3g_read(&part, "Windows/System32/config/SYSTEM")? == bytes,
        "ntfs-3g reads back the hive it copied"
    );
    disk[PART_START..PART_START + PART_LEN].copy_from_slice(&std::fs::read(&part).unwrap());
    std::fs::write(&image, disk).unwrap();
    Some(image)
}

/// ntfsinfo reads the size of SYSTEM in its `config` directory's index entry, and when the
/// file grew (winrescue rewrote its names) in its own `$FILE_NAME` too (ntfs-3g leaves a size
/// of 0 there, which a file that keeps its length keeps).
fn names_carry(part: &Path, size: usize, grew: bool) {
    let want = ((size as u64).div_ceil(4096) * 4096, size as u64);
    if let Some((own, listed)) =
        fixtures::ntfsinfo_name_sizes(part, "/Windows/System32/config", "SYSTEM")
    {
        if grew {
            assert_eq!(own, vec![want], "SYSTEM's $FILE_NAME");
        }
        assert_eq!(listed, vec![want], "SYSTEM's entry in the config directory");
    }
}

fn deleted_dhcp_inside_an_image(which: &str, format: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let (source, image_path) = if which == "win7" {
        let Some(source) = dhcp_deleted_image() else {
            return;
        };
        (
            source,
            r"%SystemRoot%\system32\svchost.exe -k LocalServiceNetworkRestricted",
        )
    } else {
        let Some(source) = win10_image(dir.path(), true) else {
            return;
        };
        (
            source,
            r"%SystemRoot%\system32\svchost.exe -k LocalServiceNetworkRestricted -p",
        )
    };
    let image = match format {
        None => {
            let p = dir.path().join("disk.raw");
            std::fs::copy(&source, &p).unwrap();
            p
        }
        Some(f) => {
            let p = dir.path().join(format!("disk.{f}"));
            let (fmt, opts) = if f == "vhd" {
                ("vpc", "subformat=fixed")
            } else {
                ("vhdx", "subformat=dynamic")
            };
            let Some(o) = tool(
                "qemu-img",
                &[
                    "convert".as_ref(),
                    "-O".as_ref(),
                    fmt.as_ref(),
                    "-o".as_ref(),
                    opts.as_ref(),
                    source.as_os_str(),
                    p.as_os_str(),
                ],
            ) else {
                return;
            };
            assert!(
                o.status.success(),
                "qemu-img: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            p
        }
    };
    let original = std::fs::read(&image).unwrap();
    let system = "Windows/System32/config/SYSTEM";
    let old_hive = ntfs_partition(&image, dir.path()).and_then(|p| ntfs3g_read(&p, system));

    let out = winrescue()
        .arg("diagnose")
        .arg("--json")
        .arg(&image)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(dhcp(&j)["code"], 1060);

    let out = winrescue()
        .args(["repair", "--apply"])
        .arg(&image)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("verified: read back from the disk, healthy now: service:Dhcp"),
        "{text}"
    );
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("undo:    winrescue undo "))
        .unwrap()
        .to_string();
    winrescue()
        .arg("diagnose")
        .arg(&image)
        .assert()
        .success()
        .stdout(predicate::str::contains("verdict:  healthy"));

    if let (Some(old_hive), Some(part)) = (&old_hive, ntfs_partition(&image, dir.path())) {
        let hive = ntfs3g_read(&part, system).unwrap();
        // Measured: the re-created key fits in the cells hivexregedit freed when it deleted the
        // old one, so this repair keeps the file's length (11,771,904 bytes for Windows 7,
        // 12,595,200 for Windows 10); the values of the tests below grow it.
        assert!(
            hive.len() >= old_hive.len(),
            "ntfs-3g reads {} bytes, {} before",
            hive.len(),
            old_hive.len()
        );
        let copy = dir.path().join("SYSTEM");
        std::fs::write(&copy, &hive).unwrap();
        let key = r"\ControlSet001\services\Dhcp";
        assert_eq!(hivexget(&copy, key, "Start"), "2");
        assert_eq!(hivexget(&copy, key, "Type"), "32");
        assert_eq!(hivexget(&copy, key, "ErrorControl"), "1");
        assert_eq!(
            hivexget(&copy, key, "ObjectName"),
            r"NT Authority\LocalService"
        );
        assert_eq!(hivexget(&copy, key, "Group"), "TDI");
        assert_eq!(hivexget(&copy, key, "ImagePath"), image_path);
        let deps = hivexget(&copy, key, "DependOnService");
        assert!(deps.contains("NSI") && deps.contains("Afd"), "{deps}");
        assert_eq!(
            hivexget(&copy, &format!(r"{key}\Parameters"), "ServiceDll"),
            r"%SystemRoot%\system32\dhcpcore.dll"
        );
        // Every value of the re-created key and of its Parameters: hivexget lists them all
        // (`"name"=value`, one a line), as many as the key holds.
        let h = regf::Hive::open(&hive).unwrap();
        for k in [key.to_string(), format!(r"{key}\Parameters")] {
            let count = h.key(&k[1..]).unwrap().unwrap().value_count() as usize;
            let o = Std::new("hivexget").arg(&copy).arg(&k).output().unwrap();
            assert!(o.status.success(), "hivexget {k}");
            let listed = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with('"'))
                .count();
            assert!(
                count >= 1 && listed == count,
                "{k}: hivexget lists {listed} of {count} values"
            );
        }
        assert!(regf::check::check(&hive).is_sound());
        names_carry(&part, hive.len(), hive.len() > old_hive.len());
    }

    winrescue().arg("undo").arg(&journal).assert().success();
    assert!(
        std::fs::read(&image).unwrap() == original,
        "undo is not bit for bit"
    );
    winrescue().arg("diagnose").arg(&image).assert().code(1);
}

#[test]
fn win7_deleted_dhcp_inside_a_raw_image_is_recreated_and_undone() {
    deleted_dhcp_inside_an_image("win7", None);
}

#[test]
fn win7_deleted_dhcp_inside_a_vhd_is_recreated_and_undone() {
    deleted_dhcp_inside_an_image("win7", Some("vhd"));
}

#[test]
fn win7_deleted_dhcp_inside_a_vhdx_is_recreated_and_undone() {
    deleted_dhcp_inside_an_image("win7", Some("vhdx"));
}

#[test]
fn win10_deleted_dhcp_inside_a_raw_image_is_recreated_and_undone() {
    deleted_dhcp_inside_an_image("win10", None);
}

#[test]
fn win10_deleted_dhcp_inside_a_vhd_is_recreated_and_undone() {
    deleted_dhcp_inside_an_image("win10", Some("vhd"));
}

#[test]
fn win10_deleted_dhcp_inside_a_vhdx_is_recreated_and_undone() {
    deleted_dhcp_inside_an_image("win10", Some("vhdx"));
}

/// A 20 KiB REG_BINARY value (stored as big data: a `db` cell and its segments) added with
/// `winrescue reg add` to the Windows 10 hive, which has no slack, inside a raw image: the file
/// grows inside its NTFS volume; ntfs-3g reads it from a volume `ntfsfix -n` finds consistent,
/// with its new size in the directory entry, and hivexget returns exactly the value's bytes;
/// undo gives the image back bit for bit.
#[test]
fn a_20kib_value_grows_the_win10_hive_inside_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = win10_image(dir.path(), false) else {
        return;
    };
    let original = std::fs::read(&image).unwrap();
    let system = "Windows/System32/config/SYSTEM";
    let Some(old_hive) = ntfs_partition(&image, dir.path()).and_then(|p| ntfs3g_read(&p, system))
    else {
        return;
    };
    let data: Vec<u8> = (0..20 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    let out = winrescue()
        .arg("reg")
        .arg(&image)
        .args([
            "add",
            r"HKLM\SYSTEM\ControlSet001\Services\Tcpip",
            "/v",
            "Big",
            "/t",
            "REG_BINARY",
            "/d",
            &hex,
            "/f",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("undo journal: "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();

    let part = ntfs_partition(&image, dir.path()).unwrap();
    let hive = ntfs3g_read(&part, system).unwrap();
    // Measured: 12,595,200 bytes before, 12,845,056 after.
    assert!(
        hive.len() > old_hive.len(),
        "the file did not grow: {} bytes",
        hive.len()
    );
    names_carry(&part, hive.len(), true);
    let copy = dir.path().join("SYSTEM");
    std::fs::write(&copy, &hive).unwrap();
    let o = Std::new("hivexget")
        .arg(&copy)
        .arg(r"\ControlSet001\Services\Tcpip")
        .arg("Big")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stdout == data,
        "hivexget returns {} bytes",
        o.stdout.len()
    );
    assert!(regf::check::check(&hive).is_sound());

    winrescue().arg("undo").arg(&journal).assert().success();
    assert!(
        std::fs::read(&image).unwrap() == original,
        "undo is not bit for bit"
    );
}

fn big_reg(dir: &Path, len: u32) -> PathBuf {
    let hex: Vec<String> = (0..len)
        .map(|i| format!("{:02x}", (i * 7 % 251) as u8))
        .collect();
    let reg = dir.join("big.reg");
    std::fs::write(
        &reg,
        format!(
            "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Dhcp]\n\"Big\"=hex:{}\n",
            hex.join(",")
        ),
    )
    .unwrap();
    reg
}

/// A value larger than the hive file's bytes, imported into a disk image: the file grows inside
/// the NTFS volume, and ntfs-3g reads it at its new length from a consistent volume.
#[test]
fn an_image_hive_grows_for_a_large_value() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.raw");
    std::fs::copy(fixtures::path("images/gen2-gpt-win7-system.raw"), &image).unwrap();
    let len = fixtures::bytes("hives/win7-SYSTEM").len();
    let reg = big_reg(dir.path(), 512 * 1024);
    winrescue()
        .arg("reg")
        .arg(&image)
        .arg("import")
        .arg(&reg)
        .assert()
        .success();
    if let Some(part) = ntfs_partition(&image, dir.path()) {
        let hive = ntfs3g_read(&part, "Windows/System32/config/SYSTEM").unwrap();
        assert!(hive.len() > len + 512 * 1024, "{} bytes", hive.len());
    }
}

/// A volume with too little free space (ntfs-3g's ntfscp filled it): the import is refused
/// with exit 4, the reason named, the image unchanged.
#[test]
fn an_image_hive_that_cannot_grow_for_lack_of_space_is_refused_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.raw");
    std::fs::copy(fixtures::path("images/gen2-gpt-win7-system.raw"), &image).unwrap();
    let mut bytes = std::fs::read(&image).unwrap();
    let part = dir.path().join("part");
    std::fs::write(&part, &bytes[PART_START..PART_START + PART_LEN]).unwrap();
    // 26 MiB is the largest whole number of MiB ntfscp fits in the volume's 7479 free 4 KiB
    // clusters (it keeps the MFT zone for last); 823 clusters (3.2 MiB) stay free, less than
    // the 4 MiB value needs.
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0x5a; 26 << 20]).unwrap();
    let Some(o) = tool(
        "ntfscp",
        &[
            "-f".as_ref(),
            part.as_os_str(),
            filler.as_os_str(),
            "filler.bin".as_ref(),
        ],
    ) else {
        return;
    };
    assert!(
        o.status.success(),
        "ntfscp: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bytes[PART_START..PART_START + PART_LEN].copy_from_slice(&std::fs::read(&part).unwrap());
    std::fs::write(&image, &bytes).unwrap();
    let original = bytes;
    let reg = big_reg(dir.path(), 4 << 20);
    winrescue()
        .arg("reg")
        .arg(&image)
        .arg("import")
        .arg(&reg)
        .assert()
        .code(4)
        .stderr(
            predicate::str::contains("more bytes are needed")
                .and(predicate::str::contains("free clusters")),
        );
    assert!(
        std::fs::read(&image).unwrap() == original,
        "the image changed"
    );
}
