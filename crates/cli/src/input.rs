//! Reading input files. Small inputs (hives, logs) may be given xz-compressed, as the samples
//! in `testdata/` are: they are decompressed in memory.

use std::path::Path;

use anyhow::{Context, Result};

const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0];

/// The content of `path`, decompressed if it is an xz file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(XZ_MAGIC) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    lzma_rs::xz_decompress(&mut &bytes[..], &mut out)
        .map_err(|e| anyhow::anyhow!("{}: xz data is damaged: {e}", path.display()))?;
    Ok(out)
}

/// A target as it may be shown: a URL with its secrets redacted (see
/// [`vdisk::remote::redact_url`]), a path as it is.
pub fn shown(target: &Path) -> String {
    let text = target.display().to_string();
    if vdisk::remote::is_url(&text) {
        vdisk::remote::redact_url(&text)
    } else {
        text
    }
}
