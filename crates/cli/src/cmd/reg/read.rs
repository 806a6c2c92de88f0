//! `reg query` and `reg export`, and reading a hive of a target (an xz-compressed hive file
//! too, decompressed in memory).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use regf::Hive;
use serde::Serialize;
use wincmd::offline::{is_xz, Opened};
use wincmd::path::HiveName;
use wincmd::query::QueriedKey;

use crate::cmd::{lib_error, WriteRefused};
use crate::printer::{reg_text, type_name};

/// Reads a hive of the target (an xz-compressed hive file too, for reading), with the warnings
/// a reader must see.
pub fn read_hive(
    path: &Path,
    partition: Option<u32>,
    name: HiveName,
) -> Result<(Hive<Vec<u8>>, Vec<String>)> {
    if is_xz(path) {
        let loaded = crate::hivefile::load(path, false, &[])?;
        let warnings = loaded
            .replay
            .as_ref()
            .map(crate::hivefile::replay_warnings)
            .unwrap_or_default();
        return Ok((loaded.hive, warnings));
    }
    let opened = Opened::open(path, partition).map_err(lib_error)?;
    opened.read_hive(name).map_err(lib_error)
}

/// [`read_hive`], its warnings printed.
pub fn read_for(target: &Path, partition: Option<u32>, name: HiveName) -> Result<Hive<Vec<u8>>> {
    let (hive, warnings) = read_hive(target, partition, name)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(hive)
}

#[derive(Serialize)]
struct QueryJson<'a> {
    schema_version: u32,
    #[serde(flatten)]
    key: &'a QueriedKey,
}

/// Prints what `reg query` found, laid out as reg.exe lays it out (or as JSON).
pub fn print_query(q: &QueriedKey, one_value: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(
            &mut *out,
            &QueryJson {
                schema_version: 1,
                key: q,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{}", q.key)?;
    for v in &q.values {
        let name = if v.name.is_empty() {
            "(Default)"
        } else {
            &v.name
        };
        let t = type_name(regf::ValueType(v.value_type));
        writeln!(out, "    {name}    {t}    {}", reg_text(&v.data))?;
    }
    if one_value {
        return Ok(());
    }
    writeln!(out)?;
    if q.children.is_empty() {
        for s in &q.subkeys {
            writeln!(out, "{}\\{s}", q.key)?;
        }
    }
    for c in &q.children {
        print_query(c, false, false, out)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ExportJson<'a> {
    schema_version: u32,
    file: String,
    keys: usize,
    values: usize,
    errors: usize,
    root: &'a str,
}

/// `reg export`: writes the `.reg` text of `node` (under `prefix`) to `file`.
pub fn export(
    node: &regf::Key<'_>,
    prefix: &str,
    file: &Path,
    overwrite: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut text = Vec::new();
    let stats = regf::regfile::export(node, prefix, &mut text)?;
    if overwrite && file.exists() {
        std::fs::write(file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    } else if file.exists() {
        bail!(WriteRefused(format!(
            "{} exists already: not overwritten (reg export FILE /y overwrites)",
            file.display()
        )));
    } else {
        crate::output::write_new_file(file, &text)?;
    }
    if json {
        let doc = ExportJson {
            schema_version: 1,
            file: file.display().to_string(),
            keys: stats.keys,
            values: stats.values,
            errors: stats.errors,
            root: prefix,
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "exported {} keys to {}{}",
        stats.keys,
        file.display(),
        if stats.errors > 0 {
            format!(
                " ({} keys could not be read: see the ; error lines)",
                stats.errors
            )
        } else {
            String::new()
        }
    )?;
    Ok(())
}
