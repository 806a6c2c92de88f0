//! Setting a key's security descriptor, as the configuration manager does for RegSetKeySecurity.
//!
//! Sources: regf specification, section "Key security"; Windows Internals (configuration
//! manager: security descriptors are shared between keys through the reference count of the
//! `sk` cell and the hive's doubly linked list of `sk` cells).
//!
//! Keys with the same descriptor share one `sk` cell. Setting a descriptor therefore either
//! points the key at an existing cell holding identical bytes (one more reference) or allocates
//! a new cell and links it into the circular Flink/Blink list; the old cell loses a reference
//! and, at zero, is unlinked and freed. Only the key itself changes: Windows' inheritance to
//! subkeys is done by the caller (RegSetKeySecurity does not propagate either), and the key's
//! last-written time is left alone, as Windows leaves it.

use super::{data_at, Editor};
use crate::cell::CellOffset;
use crate::security::SecurityDescriptor;
use crate::{Error, Result};

/// Offsets in an `sk` record (after the cell size).
const SK_FLINK: usize = 4;
const SK_BLINK: usize = 8;
const SK_REFS: usize = 12;
const SK_LEN: usize = 16;
const SK_HEADER: usize = 20;
/// Offset of the security cell in a key node.
const NK_SECURITY: usize = 44;

/// The largest descriptor accepted: two full ACLs (each at most 65535 bytes, the AclSize field
/// being 16 bits) plus header and SIDs. Windows' descriptors are far smaller.
const MAX_DESCRIPTOR: usize = 2 * 0xFFFF + 20 + 2 * 68;

impl Editor {
    /// Sets the security descriptor (self-relative bytes, as [`crate::Key::security`] returns
    /// them) of the key at `path`. The descriptor must parse. Returns whether anything changed
    /// (false when the key already has exactly these bytes).
    pub fn set_security(&mut self, path: &str, descriptor: &[u8]) -> Result<bool> {
        self.atomic(|ed| ed.set_security_inner(path, descriptor))
    }

    fn set_security_inner(&mut self, path: &str, descriptor: &[u8]) -> Result<bool> {
        if descriptor.len() > MAX_DESCRIPTOR {
            return Err(Error::Edit(format!(
                "security descriptor of {} bytes is larger than any Windows builds ({MAX_DESCRIPTOR})",
                descriptor.len()
            )));
        }
        // Windows refuses descriptors it cannot read; so does the editor, so that what it
        // writes is always understood by the next reader.
        SecurityDescriptor::parse(descriptor)?;
        let key = self.find(path)?.ok_or_else(|| Error::Path {
            path: path.into(),
            what: "no such key".into(),
        })?;
        let old = self.nk_field(key, NK_SECURITY);
        if self.key(key)?.security()?.descriptor == descriptor {
            return Ok(false);
        }
        let target = match self.find_security(old, descriptor)? {
            Some(existing) => {
                let refs = self.r32(data_at(existing) + SK_REFS);
                let refs = refs.checked_add(1).ok_or_else(|| {
                    Error::Edit(format!(
                        "the security record at cell 0x{existing:x} already has {refs} references"
                    ))
                })?;
                self.w32(data_at(existing) + SK_REFS, refs);
                existing
            }
            None => self.new_security(old, descriptor)?,
        };
        self.set_nk_field(key, NK_SECURITY, target);
        self.release_security(old);
        Ok(true)
    }

    /// The `sk` cell in the list through `start` whose descriptor is exactly `descriptor`.
    fn find_security(&self, start: CellOffset, descriptor: &[u8]) -> Result<Option<CellOffset>> {
        let bins = self.hive_bins();
        // Each cell is at least 8 bytes long: a list longer than that has a cycle that does not
        // come back to `start`, which the checker would have refused; stop rather than loop.
        let limit = bins.len() / 8 + 1;
        let mut cell = start;
        for _ in 0..limit {
            let sk = bins.record(cell, b"sk", "security (sk)")?;
            let len = u32_at(sk, SK_LEN) as usize;
            if sk.get(SK_HEADER..SK_HEADER.saturating_add(len)) == Some(descriptor) {
                return Ok(Some(cell));
            }
            cell = u32_at(sk, SK_FLINK);
            if cell == start {
                return Ok(None);
            }
        }
        Err(Error::Edit(format!(
            "the list of security records through cell 0x{start:x} does not come back to it"
        )))
    }

    /// Allocates an `sk` cell for `descriptor` with one reference and links it into the list
    /// right after `after`.
    fn new_security(&mut self, after: CellOffset, descriptor: &[u8]) -> Result<CellOffset> {
        let next = self.r32(data_at(after) + SK_FLINK);
        let mut sk = Vec::with_capacity(SK_HEADER + descriptor.len());
        sk.extend_from_slice(b"sk");
        sk.extend_from_slice(&[0, 0]);
        sk.extend_from_slice(&next.to_le_bytes());
        sk.extend_from_slice(&after.to_le_bytes());
        sk.extend_from_slice(&1u32.to_le_bytes());
        sk.extend_from_slice(&(descriptor.len() as u32).to_le_bytes());
        sk.extend_from_slice(descriptor);
        let cell = self.alloc_with(&sk)?;
        self.w32(data_at(next) + SK_BLINK, cell);
        self.w32(data_at(after) + SK_FLINK, cell);
        Ok(cell)
    }
}

fn u32_at(data: &[u8], off: usize) -> u32 {
    crate::bytes::u32_at(data, off).unwrap_or(crate::cell::NONE)
}
