//! `reg import FILE` and `reg --script FILE`: many changes, one transaction.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wincmd::change::{apply_reg, apply_section, Applied, Before};
use wincmd::offline::WriteOpts;
use wincmd::path::{KeyRef, Mounts};
use wincmd::script::{decode_text, parse_script};

use super::edit::{edit_target, reg_line, stored};
use crate::cmd::lib_error;

/// Text of a script or `.reg` file (UTF-16LE with a BOM, or UTF-8 / ANSI).
fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|error| {
        lib_error(wincmd::Error::Io {
            path: path.display().to_string(),
            error,
        })
    })?;
    Ok(decode_text(&bytes))
}

/// A `.reg` change as `reg import` words it: changes only, the key as its section wrote it.
fn import_line(a: &Applied) -> Option<String> {
    let value = |name: &str| {
        if name.is_empty() {
            "@".to_string()
        } else {
            format!("{name:?}")
        }
    };
    Some(match a {
        Applied::CreateKey { key } => format!("create key [{key}]"),
        Applied::DeleteKey { key } => format!("delete key [{key}]"),
        Applied::DeleteValue { key, name } => format!("delete value [{key}] {}", value(name)),
        Applied::SetValue {
            before: Before::Same,
            ..
        } => return None,
        Applied::SetValue {
            key, name, data, ..
        } => {
            let (t, text) = stored(data);
            format!("set [{key}] {} = {t} {text}", value(name))
        }
    })
}

/// `reg import FILE`: each section's values set, `[-key]` deleted, all in one transaction.
pub fn import(
    target: &Path,
    file: &Path,
    opts: WriteOpts,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let text = read_text(file)?;
    let sections = regf::regfile::parse(&text).map_err(|error| {
        lib_error(wincmd::Error::RegFile {
            file: file.display().to_string(),
            error,
        })
    })?;
    let mounts = Mounts::default();
    let mut keyed: Vec<(KeyRef, &regf::regfile::Section)> = Vec::new();
    for s in &sections {
        let k = mounts
            .resolve(&s.path)
            .map_err(lib_error)
            .with_context(|| format!("{} line {}", file.display(), s.line))?;
        if let Some(n) = k.note() {
            eprintln!("note: {} line {}: {n}", file.display(), s.line);
        }
        keyed.push((k, s));
    }
    edit_target(target, opts, json, out, |session, report| {
        for (k, s) in &keyed {
            let ed = session.editor(k.hive).map_err(lib_error)?;
            let applied = apply_section(ed, k, s).map_err(lib_error)?;
            report.add(&applied, Some(("line", s.line.into())), import_line);
        }
        Ok(())
    })?;
    Ok(())
}

/// `reg --script FILE`: every line parsed before anything is written; one transaction.
pub fn run_script(
    target: &Path,
    script: &Path,
    opts: WriteOpts,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let text = read_text(script)?;
    let ops = parse_script(&text)
        .map_err(lib_error)
        .with_context(|| script.display().to_string())?;
    // One transaction: a script that edits SYSTEM and SOFTWARE is written whole or not at all.
    edit_target(target, opts, json, out, |session, report| {
        for op in &ops {
            let at = || format!("{} line {}", script.display(), op.line);
            let ed = session
                .editor(op.key.hive)
                .map_err(lib_error)
                .with_context(at)?;
            let applied = apply_reg(ed, &op.key, &op.shown, &op.op)
                .map_err(lib_error)
                .with_context(at)?;
            report.add(&applied, Some(("line", op.line.into())), |a| {
                reg_line(a).map(|l| format!("line {}: {l}", op.line))
            });
        }
        Ok(())
    })?;
    if !json {
        writeln!(out, "The operation completed successfully.")?;
    }
    Ok(ExitCode::SUCCESS)
}
