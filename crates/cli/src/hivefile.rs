//! Opening a hive file from a folder: find its transaction logs next to it and replay them, the
//! way Windows does when it loads the hive.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use regf::log::{replay, LogInput, Replay};
use regf::Hive;

/// A hive as winrescue reads it: recovered from its logs unless told not to.
pub struct Loaded {
    pub hive: Hive<Vec<u8>>,
    /// The replay report, `None` with `--no-replay`.
    pub replay: Option<Replay>,
    pub logs: Vec<PathBuf>,
}

/// The `.LOG1`, `.LOG2`, `.LOG` files next to `hive` (names matched case-insensitively).
pub fn find_logs(hive: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (hive.parent(), hive.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let siblings: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(_) => return Vec::new(),
    };
    // A compressed sample `SYSTEM.xz` goes with `SYSTEM.LOG1.xz`.
    let (stem, suffix) = match name.strip_suffix(".xz") {
        Some(stem) => (stem, ".xz"),
        None => (name, ""),
    };
    let candidates: Vec<String> = siblings
        .iter()
        .filter_map(|s| s.strip_suffix(suffix).map(str::to_string))
        .collect();
    regf::log::log_names(stem, candidates.iter().map(String::as_str))
        .into_iter()
        .map(|n| dir.join(format!("{n}{suffix}")))
        .collect()
}

/// Reads a hive, and unless `no_replay`, replays its logs (found next to it, or `logs` when
/// given).
pub fn load(path: &Path, no_replay: bool, logs: &[PathBuf]) -> Result<Loaded> {
    let bytes = crate::input::read_file(path)?;
    if bytes.len() < regf::BASE_BLOCK_SIZE {
        bail!(
            "{} is not a registry hive: {}",
            path.display(),
            regf::Error::TooShort { len: bytes.len() }
        );
    }
    regf::BaseBlock::parse(&bytes)
        .with_context(|| format!("{} is not a registry hive", path.display()))?;
    if no_replay {
        let hive = Hive::open_lenient(bytes)
            .with_context(|| format!("{} is not a registry hive", path.display()))?;
        return Ok(Loaded {
            hive,
            replay: None,
            logs: Vec::new(),
        });
    }
    let log_paths = if logs.is_empty() {
        find_logs(path)
    } else {
        logs.to_vec()
    };
    let mut contents = Vec::new();
    for p in &log_paths {
        contents.push((p.display().to_string(), crate::input::read_file(p)?));
    }
    let inputs: Vec<LogInput<'_>> = contents
        .iter()
        .map(|(n, d)| LogInput { name: n, data: d })
        .collect();
    let recovered = replay(&bytes, &inputs)
        .with_context(|| format!("{}: replaying its transaction logs", path.display()))?;
    let hive = Hive::open_lenient(recovered.bytes)
        .with_context(|| format!("{} is not a registry hive", path.display()))?;
    Ok(Loaded {
        hive,
        replay: Some(recovered.report),
        logs: log_paths,
    })
}

/// Warnings a reader must show: a dirty hive read without (all of) its logs.
pub fn replay_warnings(r: &Replay) -> Vec<String> {
    r.problems.iter().chain(&r.warnings).cloned().collect()
}
