//! `hive ls`, `hive get` and `hive export`: a key's subkeys and values.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use regf::time::filetime_to_iso;
use serde_json::json;

use super::{find, load, ExportArgs, GetArgs, KeyArgs};
use crate::printer::{reg_text, type_name, value_json, value_name};

pub fn ls(a: &KeyArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let mut subkeys = Vec::new();
    for k in key.subkeys()? {
        let k = k?;
        subkeys.push((
            k.name().to_string_lossy(),
            k.last_written(),
            k.subkey_count(),
            k.value_count(),
        ));
    }
    let values: Vec<_> = key.values()?.collect::<regf::Result<_>>()?;
    if a.json {
        let j = json!({
            "key": a.key,
            "name": key.name().to_string_lossy(),
            "last_written": filetime_to_iso(key.last_written()),
            "class": key.class_name()?,
            "subkeys": subkeys.iter().map(|(n, t, s, v)| json!({"name": n, "last_written": filetime_to_iso(*t), "subkeys": s, "values": v})).collect::<Vec<_>>(),
            "values": values.iter().map(value_json).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (n, t, _, _) in &subkeys {
        writeln!(
            out,
            "{}  {n}\\",
            // The text form of every time winrescue prints: `2015-08-08 09:33:49Z`.
            filetime_to_iso(*t)
                .get(..19)
                .map(|x| format!("{}Z", x.replace('T', " ")))
                .unwrap_or_default()
        )?;
    }
    for v in &values {
        let text = v
            .data()
            .map(|d| reg_text(&d))
            .unwrap_or_else(|e| format!("<unreadable: {e}>"));
        writeln!(
            out,
            "    {}    {}    {text}",
            value_name(v),
            type_name(v.value_type())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn get(a: &GetArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let values: Vec<regf::Value<'_>> = match a.value.as_deref() {
        Some(name) => {
            let name = if name == "@" { "" } else { name };
            match key.value(name)? {
                Some(v) => vec![v],
                None => bail!(
                    "{}: key {:?} has no value {name:?}",
                    a.hive.display(),
                    a.key
                ),
            }
        }
        None => key.values()?.collect::<regf::Result<_>>()?,
    };
    if a.json {
        let j: Vec<_> = values.iter().map(value_json).collect();
        let j = if a.value.is_some() {
            j.into_iter().next().unwrap_or_default()
        } else {
            json!(j)
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for v in &values {
        let d = v.data()?;
        writeln!(
            out,
            "    {}    {}    {}",
            value_name(v),
            type_name(v.value_type()),
            reg_text(&d)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(a: &ExportArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let file_name = a
        .hive
        .file_name()
        .map(|n| n.to_string_lossy().to_uppercase())
        .unwrap_or_default();
    let mut prefix = a
        .prefix
        .clone()
        .unwrap_or_else(|| format!("HKEY_LOCAL_MACHINE\\{file_name}"));
    let rel = a.key.trim_matches(['\\', '/']);
    if !rel.is_empty() {
        prefix = format!("{prefix}\\{}", rel.replace('/', "\\"));
    }
    let stats = match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            regf::regfile::export(&key, &prefix, &mut f)?
        }
        None => regf::regfile::export(&key, &prefix, out)?,
    };
    if stats.errors > 0 {
        eprintln!(
            "winrescue: warning: {} keys or values could not be read; see the `; error` lines",
            stats.errors
        );
    }
    Ok(ExitCode::SUCCESS)
}
