//! `winrescue reg HIVE query|add|delete ...`: reg.exe's own syntax against an offline hive, so
//! that the commands of the article (and of every admin's memory) work as written.
//!
//! ```text
//! winrescue reg SYSTEM query "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v start
//! winrescue reg SYSTEM add "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v start /t REG_DWORD /d 2 /f
//! winrescue reg SYSTEM delete "HKLM\BROKENSYSTEM\ControlSet001\services\Foo" /f
//! ```
//! The `HKLM\<name>` prefix (whatever name `reg load` gave the hive) is optional;
//! `CurrentControlSet` is resolved through `Select\Current`. Writes replay the hive's logs
//! first, keep a backup, write atomically and verify; `--dry-run` shows the change only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use regf::edit::{Editor, SetOutcome};
use regf::{Data, Hive, ValueType};

use crate::cmd::WriteRefused;
use crate::hivefile;
use crate::printer::{reg_text, type_name, value_name};

#[derive(Args)]
pub struct RegArgs {
    /// The hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub hive: PathBuf,
    /// Show what a write would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not keep a copy of the hive as it was before the write (HIVE.winrescue-backup).
    #[arg(long)]
    pub no_backup: bool,
    /// Write even though the hive is dirty and its logs are missing (its most recent changes
    /// would be lost for good).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// The reg.exe command: QUERY | ADD | DELETE, then its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "REG ARGS")]
    pub args: Vec<String>,
}

/// A parsed reg.exe command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOp {
    Query { key: String, value: Option<String>, recurse: bool },
    Add { key: String, value: Option<String>, kind: ValueType, data: Vec<u8> },
    Delete { key: String, value: Option<ValueSel> },
}

/// What `reg delete` removes inside a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSel {
    One(String),
    All,
}

/// A syntax error, worded as reg.exe words it.
#[derive(Debug)]
pub struct SyntaxError(pub String);

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR: Invalid syntax. {}", self.0)
    }
}

impl std::error::Error for SyntaxError {}

fn syntax(what: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(SyntaxError(what.into()))
}

/// Parses reg.exe's arguments (switches are case-insensitive, `/x` or `-x`).
pub fn parse(args: &[String]) -> Result<RegOp> {
    let (verb, rest) = args.split_first().ok_or_else(|| syntax("Type \"REG /?\" for usage."))?;
    let (key, rest) = rest.split_first().ok_or_else(|| syntax(format!("Type \"REG {} /?\" for usage.", verb.to_uppercase())))?;
    if is_switch(key, "") {
        return Err(syntax(format!("{key} is not a key name. Type \"REG {} /?\" for usage.", verb.to_uppercase())));
    }
    let mut value: Option<String> = None;
    let mut all = false;
    let mut recurse = false;
    let mut kind: Option<String> = None;
    let mut data: Option<String> = None;
    let mut sep = "\\0".to_string();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut take = |what: &str| it.next().cloned().ok_or_else(|| syntax(format!("{what} needs an argument.")));
        if is_switch(a, "v") {
            value = Some(take("/v")?);
        } else if is_switch(a, "ve") {
            value = Some(String::new());
        } else if is_switch(a, "va") {
            all = true;
        } else if is_switch(a, "t") {
            kind = Some(take("/t")?);
        } else if is_switch(a, "d") {
            data = Some(take("/d")?);
        } else if is_switch(a, "s") && verb.eq_ignore_ascii_case("add") {
            sep = take("/s")?;
        } else if is_switch(a, "s") {
            recurse = true;
        } else if is_switch(a, "f") {
            // Offline there is no prompt to suppress; accepted as reg.exe accepts it.
        } else if is_switch(a, "reg:64") || is_switch(a, "reg:32") {
        } else {
            return Err(syntax(format!("unexpected argument {a:?}. Type \"REG {} /?\" for usage.", verb.to_uppercase())));
        }
    }
    let key = key.clone();
    match verb.to_ascii_lowercase().as_str() {
        "query" => Ok(RegOp::Query { key, value, recurse }),
        "add" => {
            let kind = match &kind {
                Some(k) => ValueType::parse(k).ok_or_else(|| syntax(format!("{k} is not a registry type.")))?,
                None => ValueType::SZ,
            };
            let data = encode_data(kind, data.as_deref().unwrap_or(""), &sep).map_err(syntax)?;
            Ok(RegOp::Add { key, value, kind, data })
        }
        "delete" => Ok(RegOp::Delete { key, value: if all { Some(ValueSel::All) } else { value.map(ValueSel::One) } }),
        other => Err(syntax(format!("{other:?} is not an operation winrescue runs offline (QUERY, ADD, DELETE)."))),
    }
}

fn is_switch(a: &str, name: &str) -> bool {
    let body = a.strip_prefix('/').or_else(|| a.strip_prefix('-'));
    match body {
        Some(b) if name.is_empty() => !b.is_empty() && b.len() <= 6,
        Some(b) => b.eq_ignore_ascii_case(name),
        None => false,
    }
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

fn parse_number(d: &str) -> Result<u64, String> {
    let t = d.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("{d:?} is not a number."))
}

/// Turns `/d` text into value bytes the way reg.exe does for each type.
pub fn encode_data(kind: ValueType, d: &str, sep: &str) -> Result<Vec<u8>, String> {
    Ok(match kind {
        ValueType::DWORD => {
            let n = parse_number(d)?;
            u32::try_from(n).map_err(|_| format!("{d} does not fit in a REG_DWORD."))?.to_le_bytes().to_vec()
        }
        ValueType::DWORD_BIG_ENDIAN => {
            let n = parse_number(d)?;
            u32::try_from(n).map_err(|_| format!("{d} does not fit in a REG_DWORD_BIG_ENDIAN."))?.to_be_bytes().to_vec()
        }
        ValueType::QWORD => parse_number(d)?.to_le_bytes().to_vec(),
        ValueType::BINARY => {
            if d.len() % 2 != 0 {
                return Err("REG_BINARY data needs an even number of hex digits.".into());
            }
            (0..d.len()).step_by(2).map(|i| u8::from_str_radix(&d[i..i + 2], 16).map_err(|_| format!("{d:?} is not hex."))).collect::<Result<_, _>>()?
        }
        ValueType::MULTI_SZ => {
            let mut out = Vec::new();
            if !d.is_empty() {
                for part in d.split(sep) {
                    out.extend(utf16z(part));
                }
            }
            out.extend_from_slice(&[0, 0]);
            out
        }
        _ => utf16z(d),
    })
}

/// A key path as reg.exe takes it, reduced to a path inside the hive: drops `HKLM\<mount>` (or
/// `HKEY_LOCAL_MACHINE\<mount>`) and resolves `CurrentControlSet`.
pub fn hive_path(hive: &Hive<Vec<u8>>, key: &str) -> Result<String> {
    let parts: Vec<&str> = key.split('\\').filter(|p| !p.is_empty()).collect();
    let parts = match parts.first() {
        Some(r) if r.eq_ignore_ascii_case("HKLM") || r.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE") => {
            parts.get(2..).unwrap_or(&[]).to_vec()
        }
        Some(r) if ["HKCU", "HKCR", "HKU", "HKCC", "HKEY_CURRENT_USER", "HKEY_USERS", "HKEY_CLASSES_ROOT"].iter().any(|x| r.eq_ignore_ascii_case(x)) => {
            bail!(syntax(format!("{r} is not a root of an offline SYSTEM-style hive; use HKLM\\<name>\\...")))
        }
        _ => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if i == 0 && p.eq_ignore_ascii_case("CurrentControlSet") {
            out.push(current_control_set(hive)?);
        } else {
            out.push(p.to_string());
        }
    }
    Ok(out.join("\\"))
}

/// `ControlSetNNN` named by `Select\Current`.
pub fn current_control_set(hive: &Hive<Vec<u8>>) -> Result<String> {
    let select = hive.key("Select")?.context("the hive has no Select key: CurrentControlSet cannot be resolved (is it a SYSTEM hive?)")?;
    let current = select.value("Current")?.context("Select has no Current value")?;
    match current.data()? {
        Data::Dword(n) => Ok(format!("ControlSet{n:03}")),
        other => bail!("Select\\Current is not a DWORD: {other:?}"),
    }
}

pub fn run(a: RegArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let op = parse(&a.args)?;
    let loaded = hivefile::load(&a.hive, false, &[])?;
    let display = |key: &str| key.to_string();
    match op {
        RegOp::Query { key, value, recurse } => {
            let path = hive_path(&loaded.hive, &key)?;
            let k = loaded.hive.key(&path)?.with_context(|| format!("ERROR: The system was unable to find the specified registry key or value ({key})"))?;
            query(&k, &display(&key), value.as_deref(), recurse, out)?;
            Ok(ExitCode::SUCCESS)
        }
        RegOp::Add { key, value, kind, data } => {
            let path = hive_path(&loaded.hive, &key)?;
            write_hive(&a, loaded, out, |ed, out| {
                if ed.create_key(&path)? {
                    writeln!(out, "create key {key}")?;
                }
                if let Some(name) = &value {
                    let outcome = ed.set_value(&path, name, kind, &data)?;
                    let new = reg_text(&Data::decode(kind, &data));
                    match outcome {
                        SetOutcome::Unchanged => writeln!(out, "unchanged {key} {:?} = {} {new}", name, type_name(kind))?,
                        SetOutcome::Created => writeln!(out, "set {key} {:?} = {} {new} (new value)", name, type_name(kind))?,
                        SetOutcome::Updated { old_type, old_data } => writeln!(
                            out,
                            "set {key} {:?} = {} {new} (was {} {})",
                            name,
                            type_name(kind),
                            type_name(old_type),
                            reg_text(&Data::decode(old_type, &old_data))
                        )?,
                    }
                }
                Ok(())
            })
        }
        RegOp::Delete { key, value } => {
            let path = hive_path(&loaded.hive, &key)?;
            if loaded.hive.key(&path)?.is_none() {
                bail!("ERROR: The system was unable to find the specified registry key or value ({key})");
            }
            write_hive(&a, loaded, out, |ed, out| {
                match &value {
                    None => {
                        ed.delete_key(&path)?;
                        writeln!(out, "delete key {key} and everything below it")?;
                    }
                    Some(ValueSel::One(name)) => {
                        if !ed.delete_value(&path, name)? {
                            bail!("ERROR: The system was unable to find the specified registry key or value ({key} /v {name})");
                        }
                        writeln!(out, "delete value {key} {name:?}")?;
                    }
                    Some(ValueSel::All) => {
                        let names: Vec<String> = ed.hive()?.key(&path)?.map(|k| k.values().map(|vs| vs.filter_map(|v| v.ok()).map(|v| v.name().to_string()).collect())).transpose()?.unwrap_or_default();
                        for n in names {
                            ed.delete_value(&path, &n)?;
                            writeln!(out, "delete value {key} {n:?}")?;
                        }
                    }
                }
                Ok(())
            })
        }
    }
}

fn query(k: &regf::Key<'_>, shown: &str, value: Option<&str>, recurse: bool, out: &mut dyn Write) -> Result<()> {
    writeln!(out)?;
    writeln!(out, "{shown}")?;
    match value {
        Some(name) => {
            let v = k.value(name)?.with_context(|| format!("ERROR: The system was unable to find the specified registry key or value ({shown} /v {name})"))?;
            writeln!(out, "    {}    {}    {}", value_name(&v), type_name(v.value_type()), reg_text(&v.data()?))?;
        }
        None => {
            for v in k.values()? {
                let v = v?;
                writeln!(out, "    {}    {}    {}", value_name(&v), type_name(v.value_type()), reg_text(&v.data()?))?;
            }
            writeln!(out)?;
            for sub in k.subkeys()? {
                let sub = sub?;
                let child = format!("{shown}\\{}", sub.name());
                if recurse {
                    query(&sub, &child, None, true, out)?;
                } else {
                    writeln!(out, "{child}")?;
                }
            }
        }
    }
    Ok(())
}

/// The write path for a hive file: refuse what is unsafe, edit in memory, show the change,
/// then (unless dry run) back up, write atomically, and verify by reading the file again.
fn write_hive(
    a: &RegArgs,
    loaded: hivefile::Loaded,
    out: &mut dyn Write,
    edit: impl FnOnce(&mut Editor, &mut dyn Write) -> Result<()>,
) -> Result<ExitCode> {
    let replay = loaded.replay.clone().expect("write paths load with replay");
    if !replay.problems.is_empty() {
        bail!(WriteRefused(format!("{}: not written: {}", a.hive.display(), replay.problems.join("; "))));
    }
    if replay.incomplete && !a.allow_incomplete {
        bail!(WriteRefused(format!(
            "{}: not written: the hive is dirty and its transaction logs are missing or unusable, so its most recent changes are not in this file. Find SYSTEM.LOG1/SYSTEM.LOG2, or pass --allow-incomplete to write anyway",
            a.hive.display()
        )));
    }
    let bytes = loaded.hive.into_inner();
    let mut ed = Editor::new(bytes.clone(), replay.next_sequence).map_err(|e| WriteRefused(format!("{}: {e}", a.hive.display())))?;
    edit(&mut ed, out)?;
    let on_disk = crate::input::read_file(&a.hive)?;
    let edited = ed.finish().map_err(|e| WriteRefused(format!("{}: {e}", a.hive.display())))?;
    let pages = regf::edit::changed_pages(&on_disk, &edited.bytes);
    if regf::edit::changed_pages(&bytes, &edited.bytes) == [0] {
        writeln!(out, "nothing to change")?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.dry_run {
        writeln!(out, "dry run: {} pages of {} would be written; nothing changed", pages.len(), a.hive.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    if on_disk.len() != edited.bytes.len() {
        bail!(WriteRefused(format!(
            "{}: not written: replaying the logs changed the hive's size ({} -> {} bytes)",
            a.hive.display(),
            on_disk.len(),
            edited.bytes.len()
        )));
    }
    if on_disk.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) || std::fs::read(&a.hive)?.len() != on_disk.len() {
        bail!(WriteRefused(format!("{}: not written: the file is compressed; decompress it first", a.hive.display())));
    }
    let backup = if a.no_backup { None } else { Some(backup_copy(&a.hive)?) };
    replace_file(&a.hive, &edited.bytes)?;
    let check = std::fs::read(&a.hive)?;
    if check != edited.bytes {
        bail!("{}: verification failed: the file does not read back as written", a.hive.display());
    }
    writeln!(
        out,
        "written: {} pages of {} (sequence number {}){}",
        pages.len(),
        a.hive.display(),
        edited.sequence,
        backup.map(|b| format!("; the previous file is kept as {}", b.display())).unwrap_or_default()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Copies the hive next to itself under a name that does not exist yet.
fn backup_copy(hive: &Path) -> Result<PathBuf> {
    for n in 0..1000 {
        let name = format!("{}.winrescue-backup{}", hive.file_name().unwrap_or_default().to_string_lossy(), if n == 0 { String::new() } else { format!(".{n}") });
        let path = hive.with_file_name(name);
        if !path.exists() {
            std::fs::copy(hive, &path).with_context(|| format!("cannot back up {} to {}", hive.display(), path.display()))?;
            std::fs::File::open(&path)?.sync_all()?;
            return Ok(path);
        }
    }
    bail!(WriteRefused(format!("{}: too many backups already", hive.display())))
}

/// Replaces a file atomically: temporary file in the same folder, fsync, rename, fsync folder.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_the_articles_lines() {
        let op = parse(&args(&["add", r"HKLM\BROKENSYSTEM\ControlSet001\services\DHCP", "/v", "start", "/t", "REG_DWORD", "/d", "2", "/f"])).unwrap();
        assert_eq!(op, RegOp::Add { key: r"HKLM\BROKENSYSTEM\ControlSet001\services\DHCP".into(), value: Some("start".into()), kind: ValueType::DWORD, data: vec![2, 0, 0, 0] });
        let op = parse(&args(&["add", "K", "/v", "ObjectName", "/t", "REG_SZ", "/d", r"NT Authority\LocalService", "/f"])).unwrap();
        let RegOp::Add { data, .. } = op else { panic!() };
        assert_eq!(data, utf16z(r"NT Authority\LocalService"));
        let op = parse(&args(&["ADD", "K", "/V", "type", "/T", "reg_dword", "/D", "0x10"])).unwrap();
        assert!(matches!(op, RegOp::Add { data, .. } if data == vec![16, 0, 0, 0]));
    }

    #[test]
    fn multi_sz_uses_the_separator() {
        assert_eq!(encode_data(ValueType::MULTI_SZ, r"NSI\0Afd", r"\0").unwrap(), "NSI\0Afd\0\0".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<_>>());
        assert_eq!(encode_data(ValueType::MULTI_SZ, "a,b", ",").unwrap(), "a\0b\0\0".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<_>>());
    }

    #[test]
    fn bad_syntax_reads_like_reg_exe() {
        for bad in [&["add"][..], &["add", "K", "/t", "REG_DWORD", "/d", "x"], &["add", "K", "/t", "REG_NOPE"], &["frobnicate", "K"], &["add", "K", "/v"]] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.to_string().starts_with("ERROR: Invalid syntax."), "{e}");
            assert!(e.downcast_ref::<SyntaxError>().is_some());
        }
    }
}
