//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn file_sha256(p: &Path) -> String {
    sha256(&std::fs::read(p).unwrap())
}

/// Whether an external tool runs. Under CI (CI set) a missing tool fails the test, so that
/// the independent oracle is never silently skipped there.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var_os("CI").is_some() {
        panic!("{tool} is required under CI (the independent oracle) but does not run");
    }
    if !ok {
        eprintln!("note: {tool} not found; checking against the pinned sha256 only");
    }
    ok
}

/// qemu's name for the format, from the file name: qemu probes a fixed VHD as raw (its footer
/// is at the end), so the oracle is told the format.
pub fn qemu_format(image: &Path) -> &'static str {
    let name = image.to_string_lossy();
    if name.ends_with(".vhdx") {
        "vhdx"
    } else if name.ends_with(".vhd") {
        "vpc"
    } else if name.ends_with(".qcow2") {
        "qcow2"
    } else {
        "raw"
    }
}

/// `qemu-img convert -O raw` of `image`, or None if qemu-img is missing (outside CI).
pub fn qemu_raw(image: &Path) -> Option<Vec<u8>> {
    if !have("qemu-img") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.raw");
    let st = Command::new("qemu-img")
        .args(["convert", "-f", qemu_format(image), "-O", "raw"])
        .arg(image)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "qemu-img convert {}: {}",
        image.display(),
        String::from_utf8_lossy(&st.stderr)
    );
    Some(std::fs::read(out).unwrap())
}

/// `qemu-img check` of a VHDX (vpc images cannot be checked: exit 63).
pub fn qemu_check(image: &Path) {
    if !have("qemu-img") {
        return;
    }
    let st = Command::new("qemu-img")
        .arg("check")
        .arg(image)
        .output()
        .unwrap();
    let code = st.status.code();
    assert!(
        code == Some(0) || code == Some(63),
        "qemu-img check {} failed: {}{}",
        image.display(),
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
}

/// Everything the disk holds, read through vdisk in odd-sized pieces (to cross block edges).
pub fn read_all(disk: &vdisk::Disk) -> Vec<u8> {
    let mut out = vec![0u8; disk.size() as usize];
    let mut pos = 0usize;
    let step = 77_777usize;
    while pos < out.len() {
        let n = step.min(out.len() - pos);
        disk.read_at(pos as u64, &mut out[pos..pos + n]).unwrap();
        pos += n;
    }
    out
}

/// A writable copy of fixture `name` in `dir`, under `as_name`.
pub fn copy_fixture(dir: &Path, name: &str, as_name: &str) -> PathBuf {
    let p = dir.join(as_name);
    std::fs::copy(fixtures::path(name), &p).unwrap();
    p
}
