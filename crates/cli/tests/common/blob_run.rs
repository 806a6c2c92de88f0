//! Running winrescue against blobs: one state folder (journals, journal key) per test, every
//! output kept so that the test can prove no SAS value was shown or stored. Included with
//! `#[path]` next to `common/azurite.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use sha2::{Digest, Sha256};

use super::azurite::assert_no_sas;

pub fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn journal_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// One folder for journals and the journal key, and every output, to search for secrets.
pub struct Run {
    pub state: tempfile::TempDir,
    pub outputs: String,
}

impl Run {
    pub fn new() -> Run {
        Run {
            state: tempfile::tempdir().unwrap(),
            outputs: String::new(),
        }
    }

    /// Runs winrescue with `args`: (exit code, stdout, stderr); both kept for [`Run::no_secret`].
    pub fn winrescue(&mut self, args: &[&str]) -> (i32, String, String) {
        let out = Command::cargo_bin("winrescue")
            .unwrap()
            .args(args)
            .env("WINRESCUE_STATE_DIR", self.state.path())
            .env("WINRESCUE_JOURNAL_DIR", self.state.path().join("journals"))
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        let (o, e) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        self.outputs.push_str(&o);
        self.outputs.push_str(&e);
        (out.status.code().unwrap_or(-1), o, e)
    }

    pub fn journals(&self, suffix: &str) -> Vec<PathBuf> {
        let dir = self.state.path().join("journals");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.to_string_lossy().ends_with(suffix));
        v.sort();
        v
    }

    /// The newest finished undo journal.
    pub fn undo_journal(&self) -> PathBuf {
        self.journals(".json")
            .into_iter()
            .rev()
            .find(|p| p.to_string_lossy().contains("-undo-"))
            .expect("an undo journal")
    }

    /// No output and no file under the state folder (journals, key) holds a value of `sas`.
    pub fn no_secret(&self, sas: &str) {
        assert_no_sas(&self.outputs, sas);
        let sig = sas.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap();
        let mut stack = vec![self.state.path().to_path_buf()];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert_no_sas(&text, sas);
            assert!(!text.contains(sig), "{} holds the signature", p.display());
            assert!(!text.contains("sig="), "{} names a SAS field", p.display());
        }
    }
}
