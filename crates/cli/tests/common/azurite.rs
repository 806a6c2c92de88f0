//! Azurite, the Azure Storage emulator (installed under `tools/azurite/` by `npm ci`), started
//! on 127.0.0.1 with in-memory storage for one test; page blobs uploaded with Put Blob + Put
//! Page under an account SAS; SAS tokens signed with the emulator's published development key.
//! Included by the tests that need it (`#[path]`), so that the others do not carry it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as Std, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The emulator's account and key, published in its documentation for every developer.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const VERSION: &str = "2021-08-06";
pub const CONTAINER: &str = "disks";
/// Put Page takes at most 4 MiB.
pub const PAGE_CHUNK: usize = 4 << 20;

/// A running emulator; killed when dropped.
pub struct Azurite {
    _workspace: tempfile::TempDir,
    child: Child,
    pub base: String,
    pub agent: ureq::Agent,
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
pub fn start() -> Option<Azurite> {
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
pub fn account_sas() -> String {
    let (sp, ss, srt, se) = ("racwdl", "b", "sco", "2099-01-01T00:00:00Z");
    let sts = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n\n{VERSION}\n\n");
    format!(
        "sv={VERSION}&ss={ss}&srt={srt}&sp={sp}&se={}&sig={}",
        enc(se),
        enc(&sign(&sts))
    )
}

/// A service SAS for one blob with permissions `sp`, from `st` (may be empty) to `se`.
pub fn blob_sas(blob: &str, sp: &str, st: &str, se: &str) -> String {
    service_sas(blob, "", sp, st, se)
}

/// A service SAS for the snapshot `snapshot` (its time, as Snapshot Blob gave it) of `blob`
/// (`sr=bs`), with permissions `sp` until `se`.
pub fn snapshot_sas(blob: &str, snapshot: &str, sp: &str, se: &str) -> String {
    service_sas(blob, snapshot, sp, "", se)
}

fn service_sas(blob: &str, snapshot: &str, sp: &str, st: &str, se: &str) -> String {
    let resource = format!("/blob/{ACCOUNT}/{CONTAINER}/{blob}");
    let sr = if snapshot.is_empty() { "b" } else { "bs" };
    let sts =
        format!("{sp}\n{st}\n{se}\n{resource}\n\n\n\n{VERSION}\n{sr}\n{snapshot}\n\n\n\n\n\n");
    let mut q = format!("sv={VERSION}&sr={sr}&sp={sp}");
    if !st.is_empty() {
        q.push_str(&format!("&st={}", enc(st)));
    }
    q.push_str(&format!("&se={}&sig={}", enc(se), enc(&sign(&sts))));
    q
}

impl Azurite {
    /// Creates the container and uploads `data` as a page blob named `blob`: Put Blob, then
    /// Put Page for every 4 MiB that is not all zeros (a new page blob reads as zeros).
    pub fn upload_page_blob(&self, blob: &str, data: &[u8]) {
        assert_eq!(data.len() % 512, 0, "a page blob is made of 512-byte pages");
        let sas = account_sas();
        self.create_container();
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

    /// Creates the container of the blobs (once: it may exist already).
    pub fn create_container(&self) {
        let container = format!(
            "{}/{CONTAINER}?restype=container&{}",
            self.base,
            account_sas()
        );
        match self
            .agent
            .put(&container)
            .header("x-ms-version", VERSION)
            .send_empty()
        {
            Ok(_) | Err(ureq::Error::StatusCode(409)) => {}
            Err(e) => panic!("create container: {e}"),
        }
    }

    pub fn blob_url(&self, blob: &str, sas: &str) -> String {
        format!("{}/{CONTAINER}/{blob}?{sas}", self.base)
    }

    /// The URL of the snapshot `snapshot` of `blob`, with a read-only SAS for it.
    pub fn snapshot_url(&self, blob: &str, snapshot: &str) -> String {
        format!(
            "{}/{CONTAINER}/{blob}?snapshot={}&{}",
            self.base,
            enc(snapshot),
            snapshot_sas(blob, snapshot, "r", "2099-01-01T00:00:00Z")
        )
    }

    /// `blob?snapshot=...`: what [`Azurite::download`] takes for a snapshot.
    pub fn snapshot_name(blob: &str, snapshot: &str) -> String {
        format!("{blob}?snapshot={}", enc(snapshot))
    }
}

pub fn assert_no_sas(text: &str, sas: &str) {
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

impl Azurite {
    /// The whole blob (`name`, or `name?snapshot=...`), downloaded with the account SAS.
    pub fn download(&self, blob: &str) -> Vec<u8> {
        let sep = if blob.contains('?') { '&' } else { '?' };
        let url = format!("{}/{CONTAINER}/{blob}{sep}{}", self.base, account_sas());
        let mut r = self
            .agent
            .get(&url)
            .header("x-ms-version", VERSION)
            .call()
            .expect("Get Blob");
        r.body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("blob body")
    }

    /// The blob's ETag now.
    pub fn etag(&self, blob: &str) -> String {
        let url = format!("{}/{CONTAINER}/{blob}?{}", self.base, account_sas());
        let r = self
            .agent
            .head(&url)
            .header("x-ms-version", VERSION)
            .call()
            .expect("Get Blob Properties");
        r.headers()["etag"].to_str().unwrap().to_string()
    }

    /// Writes `data` (whole pages) at `offset` as someone else would: Put Page, unconditionally.
    pub fn put_pages(&self, blob: &str, offset: usize, data: &[u8]) {
        put_pages(&self.agent, &self.base, blob, offset, data)
    }

    /// What another writer needs to write this emulator's blobs from another thread.
    pub fn client(&self) -> (ureq::Agent, String) {
        (self.agent.clone(), self.base.clone())
    }
}

/// [`Azurite::put_pages`] with a client of [`Azurite::client`].
pub fn put_pages(agent: &ureq::Agent, base: &str, blob: &str, offset: usize, data: &[u8]) {
    {
        let url = format!("{base}/{CONTAINER}/{blob}?comp=page&{}", account_sas());
        agent
            .put(&url)
            .header("x-ms-version", VERSION)
            .header("x-ms-page-write", "update")
            .header(
                "x-ms-range",
                format!("bytes={offset}-{}", offset + data.len() - 1),
            )
            .send(data)
            .expect("Put Page");
    }
}

impl Azurite {
    /// Takes a snapshot of `blob` (Snapshot Blob): its time, which names it (`?snapshot=`).
    pub fn snapshot_blob(&self, blob: &str) -> String {
        let url = format!(
            "{}/{CONTAINER}/{blob}?comp=snapshot&{}",
            self.base,
            account_sas()
        );
        let r = self
            .agent
            .put(&url)
            .header("x-ms-version", VERSION)
            .send_empty()
            .expect("Snapshot Blob");
        r.headers()["x-ms-snapshot"].to_str().unwrap().to_string()
    }

    /// Creates an empty page blob of `size` bytes (reads as zeros), as `az disk create
    /// --for-upload --upload-size-bytes` does.
    pub fn create_page_blob(&self, blob: &str, size: u64) {
        let url = format!("{}/{CONTAINER}/{blob}?{}", self.base, account_sas());
        self.agent
            .put(&url)
            .header("x-ms-version", VERSION)
            .header("x-ms-blob-type", "PageBlob")
            .header("x-ms-blob-content-length", size.to_string())
            .send_empty()
            .expect("Put Blob");
    }

    /// Copies the blob `source` (a URL with a SAS that allows reading) into `blob` on the
    /// service (Copy Blob, `x-ms-copy-source`): nothing passes through this machine. Waits for
    /// the copy to end and returns its status.
    pub fn copy_blob(&self, source: &str, blob: &str) -> String {
        let url = format!("{}/{CONTAINER}/{blob}?{}", self.base, account_sas());
        let r = self
            .agent
            .put(&url)
            .header("x-ms-version", VERSION)
            .header("x-ms-copy-source", source)
            .send_empty()
            .expect("Copy Blob");
        let mut status = r
            .headers()
            .get("x-ms-copy-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        for _ in 0..600 {
            if status != "pending" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            let r = self
                .agent
                .head(&url)
                .header("x-ms-version", VERSION)
                .call()
                .expect("Get Blob Properties");
            status = r.headers()["x-ms-copy-status"]
                .to_str()
                .unwrap()
                .to_string();
        }
        status
    }
}
