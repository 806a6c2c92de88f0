//! Writing output files safely: never over an existing file, never half-written.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes `bytes` to a new file at `path`: to a temporary file in the same folder first,
/// flushed to disk, then renamed into place, so that a crash leaves either nothing or the whole
/// file. Refuses to replace an existing file.
pub fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        bail!(crate::cmd::WriteRefused(format!(
            "{} exists already: not overwritten",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}
