//! Disk images as Azure page blobs, in the Azure Storage emulator (Azurite, installed under
//! `tools/azurite/` by `npm ci`, started here on 127.0.0.1 with in-memory storage): uploaded
//! with Put Blob + Put Page under an account SAS, read by `winrescue diagnose` through a
//! read-only service SAS, both signed with the emulator's published development key.
//!
//! Without the emulator these tests say so and pass, except under CI (`CI=true`), where they
//! fail: `.ci/run` installs it.

mod common;
use common::dhcp;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as Std, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The emulator's account and key, published in its documentation for every developer.
const ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VERSION: &str = "2021-08-06";
const CONTAINER: &str = "disks";
const IMAGE: &str = "images/gen2-gpt-win7-dhcp-disabled.raw";
/// Put Page takes at most 4 MiB.
const PAGE_CHUNK: usize = 4 << 20;

/// A running emulator; killed when dropped.
struct Azurite {
    _workspace: tempfile::TempDir,
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn azurite_bin() -> PathBuf {
    match std::env::var_os("WINRESCUE_AZURITE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tools/azurite/node_modules/.bin/azurite-blob"),
    }
}

/// Starts the emulator on a free port of 127.0.0.1, or `None` when it is not installed
/// (a failure under CI).
fn start() -> Option<Azurite> {
    let bin = azurite_bin();
    if !bin.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Azurite is required under CI: {} is missing (run `npm ci --prefix tools/azurite`)",
            bin.display()
        );
        eprintln!(
            "note: {} not found: run `npm ci --prefix tools/azurite`; skipped",
            bin.display()
        );
        return None;
    }
    let workspace = tempfile::tempdir().unwrap();
    let mut child = Std::new(&bin)
        .args([
            "--inMemoryPersistence",
            "--extentMemoryLimit",
            "1024",
            "--disableTelemetry",
            "--silent",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
        ])
        // In-memory: nothing is written, but the working directory is a fresh folder anyway.
        .current_dir(workspace.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The emulator prints a few lines at start; the reader ends with the process.
        for line in BufReader::new(stdout).lines().take(1000) {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("listens on http://") {
                let _ = tx.send(line[at + "listens on ".len()..].trim().to_string());
            }
        }
    });
    let base = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(b) => b,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Azurite did not start within 60 s ({e})");
        }
    };
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    Some(Azurite {
        _workspace: workspace,
        child,
        base: format!("{base}/{ACCOUNT}"),
        agent,
    })
}

fn sign(string_to_sign: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(DEV_KEY)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An account SAS allowing everything on blobs and containers, until 2099.
fn account_sas() -> String {
    let (sp, ss, srt, se) = ("racwdl", "b", "sco", "2099-01-01T00:00:00Z");
    let sts = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n\n{VERSION}\n\n");
    format!(
        "sv={VERSION}&ss={ss}&srt={srt}&sp={sp}&se={}&sig={}",
        enc(se),
        enc(&sign(&sts))
    )
}

/// A service SAS for one blob with permissions `sp`, from `st` (may be empty) to `se`.
fn blob_sas(blob: &str, sp: &str, st: &str, se: &str) -> String {
    let resource = format!("/blob/{ACCOUNT}/{CONTAINER}/{blob}");
    let sts = format!("{sp}\n{st}\n{se}\n{resource}\n\n\n\n{VERSION}\nb\n\n\n\n\n\n\n");
    let mut q = format!("sv={VERSION}&sr=b&sp={sp}");
    if !st.is_empty() {
        q.push_str(&format!("&st={}", enc(st)));
    }
    q.push_str(&format!("&se={}&sig={}", enc(se), enc(&sign(&sts))));
    q
}

impl Azurite {
    /// Creates the container and uploads `data` as a page blob named `blob`: Put Blob, then
    /// Put Page for every 4 MiB that is not all zeros (a new page blob reads as zeros).
    fn upload_page_blob(&self, blob: &str, data: &[u8]) {
        assert_eq!(data.len() % 512, 0, "a page blob is made of 512-byte pages");
        let sas = account_sas();
        let container = format!("{}/{CONTAINER}?restype=container&{sas}", self.base);
        match self
            .agent
            .put(&container)
            .header("x-ms-version", VERSION)
            .send_empty()
        {
            Ok(_) | Err(ureq::Error::StatusCode(409)) => {}
            Err(e) => panic!("create container: {e}"),
        }
        let url = format!("{}/{CONTAINER}/{blob}", self.base);
        self.agent
            .put(&format!("{url}?{sas}"))
            .header("x-ms-version", VERSION)
            .header("x-ms-blob-type", "PageBlob")
            .header("x-ms-blob-content-length", data.len().to_string())
            .send_empty()
            .expect("Put Blob");
        for (i, chunk) in data.chunks(PAGE_CHUNK).enumerate() {
            if chunk.iter().all(|&b| b == 0) {
                continue;
            }
            let start = i * PAGE_CHUNK;
            self.agent
                .put(&format!("{url}?comp=page&{sas}"))
                .header("x-ms-version", VERSION)
                .header("x-ms-page-write", "update")
                .header(
                    "x-ms-range",
                    format!("bytes={start}-{}", start + chunk.len() - 1),
                )
                .send(chunk)
                .expect("Put Page");
        }
    }

    fn blob_url(&self, blob: &str, sas: &str) -> String {
        format!("{}/{CONTAINER}/{blob}?{sas}", self.base)
    }
}

fn assert_no_sas(text: &str, sas: &str) {
    for part in sas.split('&') {
        let value = part.split_once('=').map(|x| x.1).unwrap_or(part);
        if value.len() >= 4 && value != VERSION {
            assert!(
                !text.contains(value),
                "SAS value {value:?} shown in {text:?}"
            );
        }
    }
    assert!(!text.contains(sas));
}

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

    // repair --apply on a URL is refused (the journal keeps local disks only): nothing written.
    az.upload_page_blob("win.raw", &std::fs::read(fixtures::path(IMAGE)).unwrap());
    let write_sas = blob_sas("win.raw", "rw", "", "2099-01-01T00:00:00Z");
    let etag = vdisk::Disk::open(az.blob_url("win.raw", &write_sas))
        .unwrap()
        .etag();
    let out = winrescue()
        .args(["repair", "--apply", &az.blob_url("win.raw", &write_sas)])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("writing through a URL is not available yet"),
        "{stderr}"
    );
    assert_no_sas(&stderr, &write_sas);
    let now = vdisk::Disk::open(az.blob_url("win.raw", &write_sas))
        .unwrap()
        .etag();
    assert_eq!(etag, now, "the blob was not written");
}
