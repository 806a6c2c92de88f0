//! `hive info`: base block, state (clean / dirty / replayed) and counts.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use regf::time::filetime_to_iso;
use serde_json::json;

use super::{load_full, InfoArgs};
use crate::hivefile;

pub fn info(a: &InfoArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let loaded = load_full(&a.hive, &a.read)?;
    let hive = &loaded.hive;
    // The state of the file on disk, not of the recovered copy.
    let on_disk = regf::BaseBlock::parse(&crate::input::read_file(&a.hive)?)?;
    let b = hive.base_block();
    let (mut keys, mut values, mut errors) = (0usize, 0usize, 0usize);
    hive.walk(
        |_, k| {
            keys += 1;
            values += k.value_count() as usize;
        },
        |_, _| errors += 1,
    )?;
    let state = match &loaded.replay {
        Some(r) if r.was_dirty && !r.incomplete => "dirty, replayed",
        Some(r) if r.was_dirty => "dirty, NOT fully recovered",
        _ if on_disk.is_dirty() => "dirty (logs not replayed)",
        _ => "clean",
    };
    let root = hive
        .root()
        .map(|r| r.name().to_string_lossy())
        .unwrap_or_default();
    let notes: Vec<String> = match hive.opening() {
        regf::Opening::Strict => vec![],
        regf::Opening::Lenient(n) => n.clone(),
    };
    if a.json {
        let j = json!({
            "file": a.hive.display().to_string(),
            "state": state,
            "base_block": b,
            "base_block_on_disk": on_disk,
            "logs": loaded.logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "replay": loaded.replay,
            "last_written": filetime_to_iso(b.last_written),
            "root_key": root,
            "keys": keys,
            "values": values,
            "unreadable": errors,
            "notes": notes,
        });
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "file:            {}", a.hive.display())?;
    writeln!(
        out,
        "format:          regf {}.{}, file type {}, hive-bins data {} bytes",
        b.major_version, b.minor_version, b.file_type, b.hive_bins_size
    )?;
    writeln!(
        out,
        "state:           {state} (on disk: sequence numbers {} / {}, checksum {})",
        on_disk.primary_sequence,
        on_disk.secondary_sequence,
        if on_disk.checksum_ok() { "ok" } else { "BAD" }
    )?;
    if let Some(r) = loaded.replay.as_ref().filter(|r| r.was_dirty) {
        let range = r
            .sequence_range
            .map(|(a, b)| format!("sequence {a}..{b}, "))
            .unwrap_or_default();
        writeln!(
            out,
            "replayed:        {} log entries, {} pages ({range}hive-bins data {} -> {} bytes)",
            r.entries_applied, r.pages_applied, r.hive_bins_before, r.hive_bins_after
        )?;
        for l in &r.logs {
            let seq = match (l.first_sequence, l.last_sequence) {
                (Some(a), Some(b)) => format!(", entries {a}..{b}"),
                _ => String::new(),
            };
            let note = l
                .note
                .as_ref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  log:           {} ({:?}{seq}): {} entries / {} pages applied{note}",
                l.name, l.format, l.entries_applied, l.pages_applied
            )?;
        }
        if let Some(from) = &r.base_block_from {
            writeln!(out, "  base block:    restored from {from}")?;
        }
        writeln!(
            out,
            "  next write:    sequence number {} or above (above every log entry)",
            r.next_sequence
        )?;
    }
    writeln!(
        out,
        "last written:    {}",
        if b.last_written == 0 {
            "-".into()
        } else {
            filetime_to_iso(b.last_written)
        }
    )?;
    writeln!(out, "embedded name:   {}", b.file_name)?;
    writeln!(out, "root key:        {root}")?;
    writeln!(out, "keys / values:   {keys} / {values}")?;
    if errors > 0 {
        writeln!(out, "unreadable:      {errors} keys or lists could not be read (run `winrescue hive check`)")?;
    }
    for n in notes {
        writeln!(out, "note:            {n}")?;
    }
    if let Some(r) = &loaded.replay {
        for w in hivefile::replay_warnings(r) {
            writeln!(out, "warning:         {w}")?;
        }
    } else if on_disk.is_dirty() {
        writeln!(out, "warning:         the hive is dirty: its newest changes may live only in its .LOG1/.LOG2 files")?;
    }
    Ok(ExitCode::SUCCESS)
}
