//! Every kind of write winrescue makes to a disk image, made to a disk where it lies (a page
//! blob in Azurite, through a SAS URL): the boot store on the EFI system partition (a file of a
//! FAT volume), a hive that grows inside its NTFS volume (new clusters, `$Bitmap`, MFT record),
//! a dynamic VHD and a dynamic VHDX behind the URL, and the flow of the README that repairs a
//! server-side copy of a snapshot. Each result is checked by downloading the blob and reading
//! it with independent tools (qemu-img, mtools, fsck.vfat, ntfs-3g, hivex); each undo gives the
//! blob back bit for bit (sha256); no SAS value is ever shown or stored.
//!
//! Without the emulator these tests say so and pass, except under CI (`CI=true`); the tools
//! are required under CI too.

#[path = "common/azurite.rs"]
mod azurite;
#[path = "common/blob_run.rs"]
mod blob_run;

use std::path::{Path, PathBuf};
use std::process::Command;

use azurite::{blob_sas, start, Azurite};
use blob_run::{sha256, Run};

const FOREVER: &str = "2099-01-01T00:00:00Z";
/// Partition 3 (NTFS, Windows) of the Gen2 fixtures: sectors 102400..194559.
const PART_START: usize = 102_400 * 512;
const PART_LEN: usize = 92_160 * 512;
/// Partition 1 (the EFI system partition, FAT32) of the Gen2 fixtures.
const ESP_START: usize = 2048 * 512;
const ESP_LEN: usize = 33 << 20;
const SYSTEM: &str = "Windows/System32/config/SYSTEM";
const DHCP: &str = r"\ControlSet001\Services\Dhcp";

/// Runs a tool and gives its standard output; `None` when it is not installed (outside CI).
fn tool(cmd: &mut Command) -> Option<Vec<u8>> {
    let out = match cmd.env("MTOOLS_SKIP_CHECK", "1").output() {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{cmd:?} is required under CI: {e}"
            );
            eprintln!("note: {cmd:?}: {e}; its check is skipped");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

fn upload_file(az: &Azurite, blob: &str, file: &Path) -> Vec<u8> {
    let data = std::fs::read(file).unwrap();
    az.upload_page_blob(blob, &data);
    data
}

/// `raw` converted by qemu-img to `fmt` (`vpc` or `vhdx`) with `opts`, in `dir`.
fn convert(raw: &Path, fmt: &str, opts: &str, dir: &Path) -> Option<PathBuf> {
    let out = dir.join(format!("disk.{fmt}"));
    tool(
        Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", fmt, "-o", opts])
            .arg(raw)
            .arg(&out),
    )?;
    Some(out)
}

/// The raw disk in the container `bytes` of format `fmt`, as qemu-img reads it.
fn qemu_raw(bytes: &[u8], fmt: &str, dir: &Path) -> Option<Vec<u8>> {
    let (from, to) = (dir.join("container"), dir.join("container.raw"));
    std::fs::write(&from, bytes).unwrap();
    tool(
        Command::new("qemu-img")
            .args(["convert", "-f", fmt, "-O", "raw"])
            .arg(&from)
            .arg(&to),
    )?;
    Some(std::fs::read(&to).unwrap())
}

/// The SYSTEM hive of the Windows partition of `disk` as ntfs-3g reads it, after `ntfsfix -n`
/// found the volume consistent.
fn ntfs3g_system(disk: &[u8], dir: &Path) -> Option<Vec<u8>> {
    let part = dir.join("part");
    std::fs::write(&part, &disk[PART_START..PART_START + PART_LEN]).unwrap();
    let fix = tool(Command::new("ntfsfix").arg("-n").arg(&part))?;
    let text = String::from_utf8_lossy(&fix);
    assert!(
        text.contains("NTFS partition") && !text.contains("FAILED"),
        "ntfsfix -n: {text}"
    );
    tool(Command::new("ntfscat").arg(&part).arg(SYSTEM))
}

/// hivexget's output for `key` / `value` in `hive` (a DWORD as its decimal number).
fn hivexget(hive: &[u8], key: &str, value: &str, dir: &Path) -> Option<Vec<u8>> {
    let p = dir.join("hive.out");
    std::fs::write(&p, hive).unwrap();
    tool(Command::new("hivexget").arg(&p).arg(key).arg(value))
}

/// Diagnose (broken), repair --apply, diagnose (healthy) on `url`; the undo journal.
/// With `only`, the repair and both diagnoses are of that rule alone.
fn repair_blob(run: &mut Run, url: &str, only: Option<&str>) -> PathBuf {
    let mut diagnose = vec!["diagnose", url];
    let mut args = vec!["repair", url, "--apply"];
    if let Some(rule) = only {
        diagnose.extend(["--rule", rule]);
        args.extend(["--only", rule]);
    }
    let (code, out, err) = run.winrescue(&diagnose);
    assert_eq!(code, 1, "broken before: {out}{err}");
    let (code, out, err) = run.winrescue(&args);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run.winrescue(&diagnose);
    assert_eq!(code, 0, "healthy after the repair: {out}{err}");
    run.undo_journal()
}

/// Undoes `journal` on `url` and checks the blob is `original` again, bit for bit.
fn undo_bit_for_bit(
    run: &mut Run,
    az: &Azurite,
    blob: &str,
    url: &str,
    journal: &Path,
    original: &[u8],
) {
    let (code, out, err) = run.winrescue(&["undo", journal.to_str().unwrap(), "--url", url]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        sha256(&az.download(blob)),
        sha256(original),
        "{blob}: undo gives the blob back bit for bit"
    );
}

/// Safe mode is removed from the BCD on the blob's EFI system partition: only the BCD's
/// clusters change, the FAT volume stays clean (`fsck.vfat -n`), mtools reads a BCD that hivex
/// exports exactly as the real healthy one, and undo gives the blob back.
#[test]
fn boot_store_on_the_efi_partition_of_a_blob() {
    let Some(az) = start() else { return };
    let original = upload_file(
        &az,
        "safeboot.raw",
        &fixtures::path("images/gen2-gpt-win7-safeboot.raw"),
    );
    let rw = blob_sas("safeboot.raw", "rw", "", FOREVER);
    let url = az.blob_url("safeboot.raw", &rw);
    let mut run = Run::new();
    let (_, out, _) = run.winrescue(&["diagnose", &url]);
    assert!(out.contains("safe mode"), "{out}");
    let journal = repair_blob(&mut run, &url, Some("safe-mode"));

    let now = az.download("safeboot.raw");
    let changed: Vec<usize> = (0..now.len()).filter(|&i| now[i] != original[i]).collect();
    assert!(!changed.is_empty());
    assert!(
        changed
            .iter()
            .all(|&i| (ESP_START..ESP_START + ESP_LEN).contains(&i)),
        "only the EFI system partition changes"
    );
    let dir = tempfile::tempdir().unwrap();
    let esp = dir.path().join("esp");
    std::fs::write(&esp, &now[ESP_START..ESP_START + ESP_LEN]).unwrap();
    let bcd = dir.path().join("BCD");
    if tool(Command::new("fsck.vfat").arg("-n").arg(&esp)).is_some()
        && tool(
            Command::new("mcopy")
                .arg("-i")
                .arg(&esp)
                .arg("::/EFI/Microsoft/Boot/BCD")
                .arg(&bcd),
        )
        .is_some()
    {
        let healthy = dir.path().join("BCD.healthy");
        std::fs::write(&healthy, fixtures::bytes("hives/BCD")).unwrap();
        let export = |p: &Path| {
            tool(
                Command::new("hivexregedit")
                    .arg("--export")
                    .arg(p)
                    .arg("\\"),
            )
        };
        if let (Some(a), Some(b)) = (export(&bcd), export(&healthy)) {
            assert!(a == b, "the repaired BCD is the healthy one to hivex");
        }
    }
    undo_bit_for_bit(&mut run, &az, "safeboot.raw", &url, &journal, &original);
    run.no_secret(&rw);
}

/// A 48 KiB value added with `reg add` makes the SYSTEM hive (no slack in its file) grow inside
/// NTFS on the blob: ntfsfix finds the volume consistent, ntfs-3g reads the longer file, hivex
/// reads the value in it; undo gives the blob back.
#[test]
fn a_hive_grows_inside_ntfs_on_a_blob() {
    let Some(az) = start() else { return };
    let original = upload_file(
        &az,
        "grow.raw",
        &fixtures::path("images/gen2-gpt-win7-system.raw"),
    );
    let old_hive = fixtures::bytes("hives/win7-SYSTEM");
    let rw = blob_sas("grow.raw", "rw", "", FOREVER);
    let url = az.blob_url("grow.raw", &rw);
    let mut run = Run::new();
    // 48 KiB: 96 Ki hex digits, below the 128 KiB a single argument may have.
    let data: Vec<u8> = (0..48u64 << 10)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
    let key = format!(r"HKLM\SYSTEM{DHCP}");
    let (code, out, err) = run.winrescue(&[
        "reg",
        &url,
        "add",
        &key,
        "/v",
        "Big",
        "/t",
        "REG_BINARY",
        "/d",
        &hex,
        "/f",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let journal = run.undo_journal();
    let j = blob_run::journal_json(&journal);
    let outside = j["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let at = r["offset"].as_u64().unwrap() as usize;
            !(PART_START..PART_START + PART_LEN).contains(&at)
        })
        .count();
    assert_eq!(outside, 0, "every range inside the NTFS volume");

    let dir = tempfile::tempdir().unwrap();
    let now = az.download("grow.raw");
    if let Some(hive) = ntfs3g_system(&now, dir.path()) {
        assert!(
            hive.len() >= old_hive.len() + data.len(),
            "ntfs-3g reads {} bytes, the hive was {}",
            hive.len(),
            old_hive.len()
        );
        if let Some(got) = hivexget(&hive, DHCP, "Big", dir.path()) {
            assert!(got == data, "hivexget reads {} bytes", got.len());
        }
    }
    undo_bit_for_bit(&mut run, &az, "grow.raw", &url, &journal, &original);
    run.no_secret(&rw);
}

/// The DHCP Client repaired inside a container behind the URL: qemu-img reads the repaired disk
/// out of the downloaded blob, ntfs-3g and hivex read `Start` 2 in it; undo gives the blob back.
fn container_on_a_blob(fmt: &str, opts: &str, blob: &str) {
    let Some(az) = start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let raw = fixtures::path("images/gen2-gpt-win7-dhcp-disabled.raw");
    let Some(file) = convert(&raw, fmt, opts, dir.path()) else {
        return;
    };
    let original = upload_file(&az, blob, &file);
    let rw = blob_sas(blob, "rw", "", FOREVER);
    let url = az.blob_url(blob, &rw);
    let mut run = Run::new();
    let journal = repair_blob(&mut run, &url, None);
    let repaired = az.download(blob);
    if fmt == "vhdx" {
        // The first write gave the headers new write GUIDs ([MS-VHDX] 2.2.2.1): undo must put
        // the header section back through the URL too.
        assert!(
            repaired[..1 << 20] != original[..1 << 20],
            "the VHDX headers changed"
        );
    }
    if let Some(disk) = qemu_raw(&repaired, fmt, dir.path()) {
        if let Some(hive) = ntfs3g_system(&disk, dir.path()) {
            if let Some(start) = hivexget(&hive, DHCP, "Start", dir.path()) {
                assert_eq!(String::from_utf8_lossy(&start).trim(), "2", "{fmt}");
            }
        }
    }
    undo_bit_for_bit(&mut run, &az, blob, &url, &journal, &original);
    run.no_secret(&rw);
}

#[test]
fn dynamic_vhd_on_a_blob() {
    container_on_a_blob("vpc", "subformat=dynamic", "dynamic.vhd");
}

/// A dynamic VHDX whose blocks are all stored (written only where payload blocks already are;
/// its header gets new write GUIDs, which undo puts back as they were).
#[test]
fn dynamic_vhdx_on_a_blob() {
    container_on_a_blob(
        "vhdx",
        "subformat=dynamic,block_state_zero=off",
        "dynamic.vhdx",
    );
}

/// The README's repair with no VM: a snapshot of the OS disk (`az snapshot create`), an empty
/// page blob of its size (the upload-state disk), a server-side copy of the snapshot into it
/// (Copy Blob from the snapshot's read-only SAS URL: the bytes never pass through this machine),
/// `repair --apply` on the copy's writable URL. The copy is repaired; the snapshot and the disk
/// are untouched.
///
/// Azurite 3.37 (in memory) keeps one page-range list for a page blob and its Copy Blob copy
/// (its `startCopyFromURL` does not copy the list), so a Put Page on the copy also shows in the
/// source; on Azure they are independent blobs. The snapshot is therefore copied into a staging
/// blob, whose own snapshot (Snapshot Blob copies the list) is the source of the disk's copy:
/// every hop is a server-side copy, and what the test checks, the snapshot and the disk, has a
/// list of its own.
#[test]
fn a_server_side_copy_of_a_snapshot_is_repaired_and_the_snapshot_untouched() {
    let Some(az) = start() else { return };
    let disk = upload_file(
        &az,
        "os.raw",
        &fixtures::path("images/gen2-gpt-win7-dhcp-disabled.raw"),
    );
    let at = az.snapshot_blob("os.raw");
    let snapshot = Azurite::snapshot_name("os.raw", &at);
    let snap_url = az.snapshot_url("os.raw", &at);
    let read = snap_url.split_once('&').unwrap().1.to_string();
    az.create_page_blob("stage.raw", disk.len() as u64);
    assert_eq!(az.copy_blob(&snap_url, "stage.raw"), "success", "Copy Blob");
    let stage_url = az.snapshot_url("stage.raw", &az.snapshot_blob("stage.raw"));
    az.create_page_blob("fixed.raw", disk.len() as u64);
    assert_eq!(
        az.copy_blob(&stage_url, "fixed.raw"),
        "success",
        "Copy Blob"
    );
    assert_eq!(sha256(&az.download("fixed.raw")), sha256(&disk));

    let rw = blob_sas("fixed.raw", "rw", "", FOREVER);
    let dst = az.blob_url("fixed.raw", &rw);
    let mut run = Run::new();
    // The snapshot's SAS is read-only: refused, as a snapshot's is on Azure.
    let (code, _, err) = run.winrescue(&["repair", &snap_url, "--apply"]);
    assert_eq!(code, 4, "{err}");
    let (code, out, err) = run.winrescue(&["diagnose", &snap_url]);
    assert_eq!(code, 1, "{out}{err}");
    repair_blob(&mut run, &dst, None);
    assert_ne!(
        sha256(&az.download("fixed.raw")),
        sha256(&disk),
        "the copy is written"
    );
    for blob in [snapshot.as_str(), "os.raw"] {
        assert_eq!(
            sha256(&az.download(blob)),
            sha256(&disk),
            "{blob} is untouched"
        );
    }
    let (code, out, err) = run.winrescue(&["diagnose", &snap_url]);
    assert_eq!(code, 1, "the snapshot is still the broken disk: {out}{err}");
    run.no_secret(&read);
    run.no_secret(&rw);
}
