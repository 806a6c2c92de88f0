//! Disk images as Azure page blobs, in the Azure Storage emulator (Azurite, installed under
//! `tools/azurite/` by `npm ci`, started here on 127.0.0.1 with in-memory storage): uploaded
//! with Put Blob + Put Page under an account SAS, read by `winrescue diagnose` through a
//! read-only service SAS, both signed with the emulator's published development key.
//!
//! Without the emulator these tests say so and pass, except under CI (`CI=true`), where they
//! fail: `.ci/run` installs it.

mod common;
use common::dhcp;

#[path = "common/azurite.rs"]
mod azurite;
use azurite::{assert_no_sas, blob_sas, start};

use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

const IMAGE: &str = "images/gen2-gpt-win7-dhcp-disabled.raw";

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

#[test]
fn diagnose_a_page_blob_through_a_read_sas() {
    let Some(az) = start() else { return };
    let data = std::fs::read(fixtures::path(IMAGE)).unwrap();
    az.upload_page_blob("osdisk.raw", &data);
    let sas = blob_sas("osdisk.raw", "r", "", "2099-01-01T00:00:00Z");
    let url = az.blob_url("osdisk.raw", &sas);

    let run = |target: &str| {
        let out = winrescue()
            .args(["diagnose", "--json", "--stats", target])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let v: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\nstderr: {stderr}"));
        (v, stdout, stderr, out.status.code())
    };
    let (mut there, stdout, stderr, code) = run(&url);
    assert_no_sas(&stdout, &sas);
    assert_no_sas(&stderr, &sas);
    assert_eq!(
        code,
        Some(1),
        "the fixture's DHCP Client is disabled: {stderr}"
    );
    assert_eq!(dhcp(&there)["code"], 1058);
    let t = there["transfer"].clone();
    eprintln!("diagnose of a page blob in Azurite: {t}");
    assert!(t["bytes"].as_u64().unwrap() <= 20 << 20, "{t}");
    assert!(t["requests"].as_u64().unwrap() <= 16, "{t}");

    let (mut here, _, _, _) = run(fixtures::path(IMAGE).to_str().unwrap());
    for r in [&mut here, &mut there] {
        let o = r.as_object_mut().unwrap();
        o.remove("target");
        o.remove("transfer");
    }
    assert_eq!(here, there);
}

#[test]
fn container_kinds_read_the_same_from_page_blobs() {
    let Some(az) = start() else { return };
    for name in [
        "images/container-gpt-fixed.vhd",
        "images/container-gpt-dynamic.vhdx",
    ] {
        let blob = name.rsplit('/').next().unwrap();
        let data = std::fs::read(fixtures::path(name)).unwrap();
        az.upload_page_blob(blob, &data);
        let sas = blob_sas(blob, "r", "", "2099-01-01T00:00:00Z");
        let remote = vdisk::Disk::open(az.blob_url(blob, &sas)).unwrap();
        let local = vdisk::Disk::open(fixtures::path(name)).unwrap();
        assert_eq!(remote.kind(), local.kind());
        let mut a = vec![0u8; local.size() as usize];
        let mut b = vec![0u8; local.size() as usize];
        local.read_at(0, &mut a).unwrap();
        remote.read_at(0, &mut b).unwrap();
        assert!(a == b, "{name}: bytes differ");
        assert_no_sas(&format!("{remote:?}"), &sas);
    }
}

#[test]
fn expired_or_wrong_sas_is_a_clear_403() {
    let Some(az) = start() else { return };
    let data = std::fs::read(fixtures::path("images/container-gpt-fixed.vhd")).unwrap();
    az.upload_page_blob("old.vhd", &data);
    let expired = blob_sas(
        "old.vhd",
        "r",
        "2020-01-01T00:00:00Z",
        "2020-01-02T00:00:00Z",
    );
    let forged = blob_sas("old.vhd", "r", "", "2099-01-01T00:00:00Z").replace("sp=r", "sp=rw");
    for sas in [expired, forged] {
        let out = winrescue()
            .args(["diagnose", &az.blob_url("old.vhd", &sas)])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("(403 Authori") || stderr.contains("(403 Authent"),
            "{stderr}"
        );
        assert!(stderr.contains("expired"), "{stderr}");
        assert_no_sas(&stderr, &sas);
        assert_no_sas(&stdout, &sas);
    }
}

#[test]
fn page_blob_writes_go_in_whole_pages_under_if_match() {
    let Some(az) = start() else { return };
    let name = "images/container-gpt-fixed.vhd";
    let data = std::fs::read(fixtures::path(name)).unwrap();
    az.upload_page_blob("rw.vhd", &data);
    let write_sas = blob_sas("rw.vhd", "rw", "", "2099-01-01T00:00:00Z");
    let read_sas = blob_sas("rw.vhd", "r", "", "2099-01-01T00:00:00Z");

    // A read-only SAS is refused before anything is sent.
    let err = vdisk::Disk::open_rw(az.blob_url("rw.vhd", &read_sas)).unwrap_err();
    assert!(err.to_string().contains("does not allow writing"), "{err}");
    assert_no_sas(&err.to_string(), &read_sas);

    // An unaligned write: the partial pages around it are read and completed.
    let mut disk = vdisk::Disk::open_rw(az.blob_url("rw.vhd", &write_sas)).unwrap();
    let before = disk.etag().expect("a blob has an ETag");
    let patch: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 1) as u8).collect();
    disk.write_at(70_001, &patch).unwrap();
    let after = disk.etag().unwrap();
    assert_ne!(before, after, "a write gives the blob a new ETag");
    // The same handle writes again: its own ETag guards it.
    disk.write_at(4096, b"second").unwrap();
    let mut back = vec![0u8; 1000];
    disk.read_at(70_001, &mut back).unwrap();
    assert_eq!(back, patch);
    drop(disk);

    let fresh = vdisk::Disk::open(az.blob_url("rw.vhd", &read_sas)).unwrap();
    let mut all = vec![0u8; fresh.size() as usize];
    fresh.read_at(0, &mut all).unwrap();
    let mut want = data[..all.len()].to_vec();
    want[70_001..71_001].copy_from_slice(&patch);
    want[4096..4102].copy_from_slice(b"second");
    assert!(all == want, "exactly the written bytes changed");

    // Someone else writes between open and write: refused, and nothing of ours is written.
    let mut disk = vdisk::Disk::open_rw(az.blob_url("rw.vhd", &write_sas)).unwrap();
    let mut other = vdisk::Disk::open_rw(az.blob_url("rw.vhd", &write_sas)).unwrap();
    other.write_at(0, &[0xEE; 512]).unwrap();
    let err = disk.write_at(1_000_000, &[0x55; 512]).unwrap_err();
    assert!(
        err.to_string().contains("changed since it was opened"),
        "{err}"
    );
    assert!(err.to_string().contains("412"), "{err}");
    assert_no_sas(&err.to_string(), &write_sas);
    let fresh = vdisk::Disk::open(az.blob_url("rw.vhd", &read_sas)).unwrap();
    let mut there = vec![0u8; 512];
    fresh.read_at(1_000_000, &mut there).unwrap();
    assert_eq!(there, data[1_000_000..1_000_512], "nothing was written");
}
