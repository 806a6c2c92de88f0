//! `winrescue reg TARGET query|add|delete|export|import ...`: reg.exe's own syntax against the
//! hives of an offline Windows (a disk image, a block device, a mounted folder or a hive file),
//! so that the commands of the article (and of every admin's memory) work as written.
//!
//! ```text
//! winrescue reg disk.vhd query "HKLM\SYSTEM\CurrentControlSet\Services\Dhcp" /v Start
//! winrescue reg disk.vhd add "HKLM\BROKENSYSTEM\ControlSet001\services\DHCP" /v start /t REG_DWORD /d 2 /f
//! winrescue reg disk.vhd delete "HKLM\SYSTEM\ControlSet001\Services\Foo" /f
//! winrescue reg disk.vhd export "HKLM\SYSTEM\ControlSet001\Services\Dhcp" dhcp.reg
//! winrescue reg disk.vhd import dhcp.reg
//! winrescue reg disk.vhd --script fix-dhcp.cmd
//! ```
//!
//! # Roots
//! `HKLM\SYSTEM`, `HKLM\SOFTWARE`, `HKLM\SAM`, `HKLM\SECURITY`, `HKLM\DEFAULT` name the hives of
//! `Windows\System32\config`. Any other name after `HKLM\` is what `reg load` called the hive on a
//! recovery VM (the article's `HKLM\BROKENSYSTEM`): a single command takes it to mean SYSTEM and
//! says so; in a script, a `reg load HKLM\NAME F:\windows\system32\config\HIVE` line maps NAME to
//! the hive its file name names (the drive letter and folder are kept as written and ignored:
//! the hive is the target's), and a name no `reg load` line gave is refused with its line number,
//! since on a recovery VM it would be that VM's own registry. A key without a root is a path in
//! SYSTEM. `CurrentControlSet` is resolved through `Select\Current`. A hive-file target is the
//! one hive every root names.
//!
//! # Writes
//! Every write goes through `rescue::edit::edit_hive`: the hive is read with its transaction logs
//! replayed, edited in memory, checked, written in place page by page through an undo journal
//! (`winrescue undo JOURNAL` puts the old bytes back), and read back to verify. A script's lines
//! are all parsed before anything is written, and all the lines for one hive are applied in one
//! edit: either all of them land or none does. `--dry-run` shows the change and writes nothing.
//! Before anything is written, `rescue::guard` predicts what the Service Control Manager would do
//! with the DHCP Client and with every service the write changes, before and after; the
//! prediction is printed, and a write that breaks a service that starts, or stores a value with
//! a type the SCM rejects (`/v Start /d 2` without `/t` is REG_SZ, as reg.exe makes it), is
//! refused unless `--force`.
//!
//! # Scripts
//! `--script FILE` runs a `.cmd` / `.bat` file of `reg load`, `reg add`, `reg delete` and
//! `reg unload` lines (the article's offline script, verbatim). Blank lines, `rem` / `::`
//! comments and `@echo off` are skipped; any other line is refused with its number before
//! anything is written.
//!
//! # Exit codes
//! 0 done; 2 a syntax error, worded as reg.exe words it (`ERROR: Invalid syntax.`); 3 a key or
//! value that does not exist, or a target that cannot be read; 4 a write refused (nothing
//! changed).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use regf::edit::{Editor, SetOutcome};
use regf::{Data, Hive, ValueType};
use rescue::edit::{EditOptions, EditOutcome, Transaction};
use rescue::guard::{Guard, Prediction};
use rescue::target::{Install, Target, TargetKind};

use crate::cmd::{exe, WriteRefused};
use crate::printer::{reg_text, type_name, value_name};

#[derive(Args)]
pub struct RegArgs {
    /// The offline Windows: a disk image or block device (raw, VHD, VHDX), a folder holding a
    /// Windows tree, or a hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub target: PathBuf,
    /// The Windows installation on this partition (when the disk holds several).
    #[arg(long)]
    pub partition: Option<u32>,
    /// Show what a write would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write even though the hive is dirty and its logs are missing (its most recent changes
    /// would be lost for good).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Write even though the check predicts that the write breaks a service (the DHCP Client
    /// or the service written) or stores a type the Service Control Manager rejects.
    #[arg(long)]
    pub force: bool,
    /// Run a .cmd/.bat file of `reg load|add|delete|unload` lines (the article's offline script).
    #[arg(long, value_name = "FILE", conflicts_with = "args")]
    pub script: Option<PathBuf>,
    /// The reg.exe command: QUERY | ADD | DELETE | EXPORT | IMPORT, then its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "script",
        value_name = "REG ARGS"
    )]
    pub args: Vec<String>,
}

/// A parsed reg.exe command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOp {
    Query {
        key: String,
        value: Option<String>,
        recurse: bool,
    },
    Add {
        key: String,
        value: Option<String>,
        kind: ValueType,
        data: Vec<u8>,
    },
    Delete {
        key: String,
        value: Option<ValueSel>,
    },
    Export {
        key: String,
        file: String,
        overwrite: bool,
    },
    Import {
        file: String,
    },
    Load {
        key: String,
        file: String,
    },
    Unload {
        key: String,
    },
    /// `/?`: the usage of an operation (`None`: of reg itself).
    Help {
        verb: Option<String>,
    },
}

/// What `reg delete` removes inside a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSel {
    One(String),
    All,
}

/// A syntax error, worded as reg.exe words it. Also used by `sc` and `runbook` for their usage
/// errors (exit code 2).
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

/// reg.exe's message for a key or value that is not there.
pub fn not_found(what: &str) -> anyhow::Error {
    exe(format!(
        "ERROR: The system was unable to find the specified registry key or value ({what})"
    ))
}

fn usage(verb: &str) -> String {
    format!("Type \"REG {} /?\" for usage.", verb.to_uppercase())
}

/// reg.exe's usage of an operation (`None`: the list of operations), as `REG op /?` prints it,
/// with what winrescue does differently offline.
pub fn usage_text(verb: Option<&str>) -> String {
    let body = match verb.map(str::to_ascii_lowercase).as_deref() {
        Some("query") => "REG QUERY KeyName [/v ValueName | /ve] [/s]\n\n  KeyName  HKLM\\SYSTEM, HKLM\\SOFTWARE, HKLM\\SAM, HKLM\\SECURITY, HKLM\\DEFAULT, or the name a\n           reg load gave (HKLM\\BROKENSYSTEM = SYSTEM); CurrentControlSet is resolved\n  /v       the value to show\n  /ve      the default (unnamed) value\n  /s       every subkey and value below the key\n\nExample:\n  winrescue reg disk.vhd query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dhcp' /v Start",
        Some("add") => "REG ADD KeyName [/v ValueName | /ve] [/t Type] [/s Separator] [/d Data] [/f]\n\n  /v       the value to set       /ve  the default (unnamed) value\n  /t       REG_SZ (when /t is not given, as reg.exe), REG_MULTI_SZ, REG_EXPAND_SZ,\n           REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE\n  /s       the separator of REG_MULTI_SZ data (\\0 when not given)\n  /d       the data\n  /f       accepted (offline there is no prompt)\n\nThe write is checked first: one that breaks the DHCP Client or the service written, or\nstores a type the Service Control Manager rejects, is refused unless --force.\n\nExample:\n  winrescue reg disk.vhd add 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' /v Start /t REG_DWORD /d 2 /f",
        Some("delete") => "REG DELETE KeyName [/v ValueName | /ve | /va] [/f]\n\n  /v       the value to delete    /ve  the default value    /va  every value of the key\n  (none)   the key and everything below it\n  /f       accepted (offline there is no prompt)\n\nExample:\n  winrescue reg disk.vhd delete 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' /v DelayedAutostart /f",
        Some("export") => "REG EXPORT KeyName FileName [/y]\n\n  FileName a .reg file (UTF-16, as reg.exe writes it)\n  /y       overwrite an existing file\n\nExample:\n  winrescue reg disk.vhd export 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' dhcp.reg",
        Some("import") => "REG IMPORT FileName\n\n  FileName a .reg file (UTF-16 or UTF-8); all its keys are written in one transaction\n\nExample:\n  winrescue reg disk.vhd import dhcp.reg",
        Some("load") => "REG LOAD KeyName FileName\n\n  Offline, winrescue opens the target's hives itself: on its own this line does nothing\n  (HKLM\\<name> then means SYSTEM). In a --script file it names the hive the file names.\n\nExample:\n  winrescue reg disk.vhd load 'HKLM\\BROKENSYSTEM' 'f:\\windows\\system32\\config\\SYSTEM'",
        Some("unload") => "REG UNLOAD KeyName\n\n  Offline this line does nothing on its own; in a --script file it ends a reg load.\n\nExample:\n  winrescue reg disk.vhd unload 'HKLM\\BROKENSYSTEM'",
        _ => "REG Operation [Parameter List]\n\n  Operation  [ QUERY | ADD | DELETE | EXPORT | IMPORT | LOAD | UNLOAD ]\n\nReturn Code: (except for REG COMPARE)\n  0 - Successful   2 - Invalid syntax   3 - not found / unreadable   4 - write refused\n\nFor help on a specific operation type:\n  winrescue reg TARGET Operation /?\n\nExamples:\n  winrescue reg disk.vhd ADD /?\n  winrescue reg disk.vhd QUERY /?",
    };
    body.to_string()
}

/// Parses reg.exe's arguments (switches are case-insensitive, `/x` or `-x`).
pub fn parse(args: &[String]) -> Result<RegOp> {
    let (verb, rest) = args
        .split_first()
        .ok_or_else(|| syntax("Type \"REG /?\" for usage."))?;
    let v = verb.to_ascii_lowercase();
    if v == "/?" || v == "-?" {
        return Ok(RegOp::Help { verb: None });
    }
    if rest.iter().any(|a| a == "/?" || a == "-?") {
        return Ok(RegOp::Help {
            verb: Some(v.clone()),
        });
    }
    if ![
        "query", "add", "delete", "export", "import", "load", "unload",
    ]
    .contains(&v.as_str())
    {
        return Err(syntax(format!("{verb:?} is not an operation winrescue runs offline (QUERY, ADD, DELETE, EXPORT, IMPORT; LOAD and UNLOAD in a script). Type \"REG /?\" for usage.")));
    }
    let (key, rest) = rest.split_first().ok_or_else(|| syntax(usage(verb)))?;
    if is_switch(key, "") {
        return Err(syntax(format!("{key} is not a key name. {}", usage(verb))));
    }
    // The operations whose second operand is a file name.
    let mut positional: Vec<&String> = Vec::new();
    let mut value: Option<String> = None;
    let mut all = false;
    let mut recurse = false;
    let mut overwrite = false;
    let mut kind: Option<String> = None;
    let mut data: Option<String> = None;
    let mut sep = "\\0".to_string();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut take = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| syntax(format!("{what} needs an argument. {}", usage(verb))))
        };
        let adds = v == "add";
        if (adds || v == "query" || v == "delete") && is_switch(a, "v") {
            value = Some(take("/v")?);
        } else if (adds || v == "query" || v == "delete") && is_switch(a, "ve") {
            value = Some(String::new());
        } else if v == "delete" && is_switch(a, "va") {
            all = true;
        } else if adds && is_switch(a, "t") {
            kind = Some(take("/t")?);
        } else if adds && is_switch(a, "d") {
            data = Some(take("/d")?);
        } else if adds && is_switch(a, "s") {
            sep = take("/s")?;
        } else if v == "query" && is_switch(a, "s") {
            recurse = true;
        } else if (adds || v == "delete") && is_switch(a, "f") {
            // Offline there is no prompt to suppress; accepted as reg.exe accepts it.
        } else if v == "export" && is_switch(a, "y") {
            overwrite = true;
        } else if is_switch(a, "reg:64") || is_switch(a, "reg:32") {
        } else if !is_switch(a, "") && (v == "export" || v == "load") && positional.is_empty() {
            positional.push(a);
        } else {
            return Err(syntax(format!(
                "unexpected argument {a:?}. {}",
                usage(verb)
            )));
        }
    }
    let key = key.clone();
    let file = || {
        positional
            .first()
            .map(|s| s.to_string())
            .ok_or_else(|| syntax(format!("a file name is needed. {}", usage(verb))))
    };
    match v.as_str() {
        "query" => Ok(RegOp::Query {
            key,
            value,
            recurse,
        }),
        "add" => {
            let kind = match &kind {
                Some(k) => ValueType::parse(k).ok_or_else(|| {
                    syntax(format!("{k} is not a registry type. {}", usage(verb)))
                })?,
                None => ValueType::SZ,
            };
            let data = encode_data(kind, data.as_deref().unwrap_or(""), &sep).map_err(syntax)?;
            Ok(RegOp::Add {
                key,
                value,
                kind,
                data,
            })
        }
        "delete" => Ok(RegOp::Delete {
            key,
            value: if all {
                Some(ValueSel::All)
            } else {
                value.map(ValueSel::One)
            },
        }),
        "export" => Ok(RegOp::Export {
            file: file()?,
            key,
            overwrite,
        }),
        "load" => Ok(RegOp::Load { file: file()?, key }),
        "unload" => Ok(RegOp::Unload { key }),
        // IMPORT takes the file where the others take the key.
        _ => Ok(RegOp::Import { file: key }),
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
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
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
            u32::try_from(n)
                .map_err(|_| format!("{d} does not fit in a REG_DWORD."))?
                .to_le_bytes()
                .to_vec()
        }
        ValueType::DWORD_BIG_ENDIAN => {
            let n = parse_number(d)?;
            u32::try_from(n)
                .map_err(|_| format!("{d} does not fit in a REG_DWORD_BIG_ENDIAN."))?
                .to_be_bytes()
                .to_vec()
        }
        ValueType::QWORD => parse_number(d)?.to_le_bytes().to_vec(),
        ValueType::BINARY => {
            if !d.len().is_multiple_of(2) || !d.is_ascii() {
                return Err("REG_BINARY data needs an even number of hex digits.".into());
            }
            (0..d.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&d[i..i + 2], 16).map_err(|_| format!("{d:?} is not hex."))
                })
                .collect::<Result<_, _>>()?
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

// ----- hives and roots -----

/// The hives of `Windows\System32\config` a root can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HiveName {
    System,
    Software,
    Sam,
    Security,
    Default,
}

impl HiveName {
    /// From a hive's file or mount name (`SYSTEM`, `software`), `None` for any other name.
    pub fn from_name(name: &str) -> Option<HiveName> {
        Some(match name.to_ascii_uppercase().as_str() {
            "SYSTEM" => HiveName::System,
            "SOFTWARE" => HiveName::Software,
            "SAM" => HiveName::Sam,
            "SECURITY" => HiveName::Security,
            "DEFAULT" => HiveName::Default,
            _ => return None,
        })
    }

    pub fn file_name(self) -> &'static str {
        match self {
            HiveName::System => "SYSTEM",
            HiveName::Software => "SOFTWARE",
            HiveName::Sam => "SAM",
            HiveName::Security => "SECURITY",
            HiveName::Default => "DEFAULT",
        }
    }
}

/// The names `reg load` lines gave to hives (upper-cased mount name -> hive), and whether an
/// unknown name is taken to mean SYSTEM (single commands) or refused (scripts).
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    loaded: HashMap<String, HiveName>,
    strict: bool,
}

/// A reg.exe key path reduced to a hive and a path inside it (`CurrentControlSet` not resolved
/// yet: that needs the hive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub hive: HiveName,
    /// Path components inside the hive.
    pub parts: Vec<String>,
    /// A note for the user (an unknown mount name taken as SYSTEM).
    pub note: Option<String>,
}

impl Mounts {
    /// For a script: only names given by `reg load` lines.
    pub fn strict() -> Mounts {
        Mounts {
            loaded: HashMap::new(),
            strict: true,
        }
    }

    /// `reg load KEY FILE`: the hive is the one FILE's name names.
    pub fn load(&mut self, key: &str, file: &str) -> Result<()> {
        let name = mount_name(key)?;
        let file_name = file.rsplit(['\\', '/']).next().unwrap_or(file);
        let hive = HiveName::from_name(file_name)
            .ok_or_else(|| exe(format!("ERROR: winrescue loads the hives of Windows\\System32\\config (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT), not {file}")))?;
        if self.loaded.contains_key(&name.to_ascii_uppercase()) {
            return Err(exe(format!("ERROR: HKLM\\{name} is loaded already")));
        }
        self.loaded.insert(name.to_ascii_uppercase(), hive);
        Ok(())
    }

    /// `reg unload KEY`.
    pub fn unload(&mut self, key: &str) -> Result<()> {
        let name = mount_name(key)?;
        if self.loaded.remove(&name.to_ascii_uppercase()).is_none() {
            return Err(exe(format!(
                "ERROR: HKLM\\{name} is not loaded (no earlier reg load line)"
            )));
        }
        Ok(())
    }

    /// Maps a reg.exe key path to a hive and a path inside it.
    pub fn resolve(&self, key: &str) -> Result<KeyRef> {
        let parts: Vec<&str> = key.split('\\').filter(|p| !p.is_empty()).collect();
        let Some(root) = parts.first() else {
            return Err(syntax("an empty key name."));
        };
        let is_hklm =
            root.eq_ignore_ascii_case("HKLM") || root.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE");
        if let Some(hint) = eaten_backslashes(key) {
            return Err(syntax(hint));
        }
        if !is_hklm {
            if [
                "HKCU",
                "HKCR",
                "HKU",
                "HKCC",
                "HKEY_CURRENT_USER",
                "HKEY_USERS",
                "HKEY_CLASSES_ROOT",
                "HKEY_CURRENT_CONFIG",
            ]
            .iter()
            .any(|x| root.eq_ignore_ascii_case(x))
            {
                return Err(exe(format!("ERROR: Invalid key name. {root} is not a root of an offline Windows; use HKLM\\SYSTEM, HKLM\\SOFTWARE, HKLM\\SAM, HKLM\\SECURITY or the name a reg load line gave")));
            }
            if self.strict {
                return Err(exe(format!("ERROR: Invalid key name. {key}: a script names keys from HKLM\\<the name of its reg load line>")));
            }
            return Ok(KeyRef {
                hive: HiveName::System,
                parts: parts.iter().map(|s| s.to_string()).collect(),
                note: None,
            });
        }
        let Some(mount) = parts.get(1) else {
            return Err(exe(format!("ERROR: Invalid key name. {key}: HKLM itself is not a hive; name one (HKLM\\SYSTEM ...)")));
        };
        let rest: Vec<String> = parts[2..].iter().map(|s| s.to_string()).collect();
        if let Some(h) = self.loaded.get(&mount.to_ascii_uppercase()) {
            return Ok(KeyRef {
                hive: *h,
                parts: rest,
                note: None,
            });
        }
        if self.strict {
            return Err(exe(format!("ERROR: HKLM\\{mount} is not loaded by an earlier reg load line (on a recovery VM it would be that VM's own registry)")));
        }
        match HiveName::from_name(mount) {
            Some(h) => Ok(KeyRef { hive: h, parts: rest, note: None }),
            None => Ok(KeyRef {
                hive: HiveName::System,
                parts: rest,
                note: Some(format!("HKLM\\{mount} is not a hive name: taken as the SYSTEM hive (the name `reg load` gives it on a recovery VM)")),
            }),
        }
    }
}

/// A hint when `key` is a key path whose backslashes an unquoted shell word lost
/// (`HKLM\SYSTEM\Select` typed without quotes reaches winrescue as `HKLMSYSTEMSelect`).
pub fn eaten_backslashes(key: &str) -> Option<String> {
    if key.contains('\\') {
        return None;
    }
    let upper = key.to_ascii_uppercase();
    let root = ["HKEY_LOCAL_MACHINE", "HKLM"]
        .into_iter()
        .find(|r| upper.starts_with(r) && upper.len() > r.len())?;
    let rest = &upper[root.len()..];
    let hive = ["SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT", "BROKEN"]
        .into_iter()
        .any(|h| rest.starts_with(h));
    hive.then(|| {
        format!(
            "{key} looks like a key whose backslashes the shell removed: put the key in single quotes, e.g. 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dhcp'"
        )
    })
}

fn mount_name(key: &str) -> Result<String> {
    let parts: Vec<&str> = key.split('\\').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [root, name]
            if root.eq_ignore_ascii_case("HKLM")
                || root.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE") =>
        {
            Ok(name.to_string())
        }
        _ => Err(exe(format!(
            "ERROR: Invalid key name. reg load and unload take HKLM\\<name>, not {key}"
        ))),
    }
}

/// The path inside `hive` of `parts`, `CurrentControlSet` resolved through `Select\Current`.
pub fn inner_path<B: AsRef<[u8]>>(
    hive: &Hive<B>,
    name: HiveName,
    parts: &[String],
) -> Result<String> {
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if i == 0 && name == HiveName::System && p.eq_ignore_ascii_case("CurrentControlSet") {
            out.push(current_control_set(hive)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out.join("\\"))
}

/// `ControlSetNNN` named by `Select\Current`.
pub fn current_control_set<B: AsRef<[u8]>>(hive: &Hive<B>) -> Result<String> {
    let select = hive.key("Select")?.context(
        "the hive has no Select key: CurrentControlSet cannot be resolved (is it a SYSTEM hive?)",
    )?;
    let current = select
        .value("Current")?
        .context("Select has no Current value")?;
    match current.data()? {
        Data::Dword(n) => Ok(format!("ControlSet{n:03}")),
        other => bail!("Select\\Current is not a DWORD: {other:?}"),
    }
}

// ----- targets -----

const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0];

fn is_xz(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 6];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == XZ_MAGIC
}

/// A rescue error as the CLI reports it (see [`crate::cmd::refusal`]).
pub fn rescue_error(e: rescue::Error) -> anyhow::Error {
    crate::cmd::refusal(e)
}

/// The opened target and its chosen Windows installation.
pub struct Opened {
    pub target: Target,
    pub install: Install,
}

impl Opened {
    pub fn open(path: &Path, partition: Option<u32>) -> Result<Opened> {
        let target = Target::open(path, false).map_err(rescue_error)?;
        let install = target.choose(partition).map_err(rescue_error)?.clone();
        Ok(Opened { target, install })
    }

    /// The Windows path of a hive inside the install, `None` for SYSTEM (and for a hive-file
    /// target, which is the one hive every root names).
    pub fn hive_path(&self, name: HiveName) -> Option<String> {
        hive_path_in(&self.target, &self.install, name)
    }

    /// A hive with its logs replayed, and the warnings a reader must see.
    pub fn read_hive(&self, name: HiveName) -> Result<(Hive<Vec<u8>>, Vec<String>)> {
        let path = self
            .hive_path(name)
            .unwrap_or_else(|| self.install.system_path.clone());
        let h = self
            .target
            .hive(&self.install, &path)
            .map_err(rescue_error)
            .with_context(|| format!("reading {path}"))?;
        let r = &h.recovered.report;
        let warnings = r.problems.iter().chain(&r.warnings).cloned().collect();
        let hive = Hive::open_lenient(h.recovered.bytes)
            .with_context(|| format!("{path} is not a registry hive"))?;
        Ok((hive, warnings))
    }
}

/// Reads a hive of the target (an xz-compressed hive file too, for reading).
pub fn read_hive(
    path: &Path,
    partition: Option<u32>,
    name: HiveName,
) -> Result<(Hive<Vec<u8>>, Vec<String>)> {
    if path.is_file() && is_xz(path) {
        let loaded = crate::hivefile::load(path, false, &[])?;
        let warnings = loaded
            .replay
            .as_ref()
            .map(crate::hivefile::replay_warnings)
            .unwrap_or_default();
        return Ok((loaded.hive, warnings));
    }
    Opened::open(path, partition)?.read_hive(name)
}

/// How a write runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOpts {
    pub partition: Option<u32>,
    pub dry_run: bool,
    pub allow_incomplete: bool,
    /// Write even when the prediction objects.
    pub force: bool,
}

fn hive_path_in(target: &Target, install: &Install, name: HiveName) -> Option<String> {
    match (target.kind(), name) {
        (TargetKind::HiveFile, _) | (_, HiveName::System) => None,
        _ => Some(target.sibling_hive_path(install, name.file_name())),
    }
}

/// The hives of a target being edited in one transaction.
pub struct Hives<'t> {
    tx: &'t mut Transaction,
}

impl Hives<'_> {
    /// The editor of a hive, loaded (and, for writing, locked) on first use.
    pub fn editor(&mut self, name: HiveName) -> Result<&mut Editor> {
        let path = hive_path_in(self.tx.target(), self.tx.install(), name);
        self.tx.hive(path.as_deref()).map_err(rescue_error)
    }
}

/// Edits hives of the target as one transaction through rescue's journal: every hive changed
/// is written, or none. `edit` gets the hives and a list to push the lines that say what it
/// changed; it returns whether it changed anything.
pub fn edit_target(
    path: &Path,
    opts: WriteOpts,
    out: &mut dyn Write,
    edit: impl FnOnce(&mut Hives, &mut Vec<String>) -> Result<bool>,
) -> Result<Option<EditOutcome>> {
    if path.is_file() && is_xz(path) {
        bail!(WriteRefused(format!(
            "{}: not written: the file is compressed; decompress it first",
            path.display()
        )));
    }
    let eo = EditOptions {
        dry_run: opts.dry_run,
        allow_incomplete: opts.allow_incomplete,
        partition: opts.partition,
        guard: if opts.force {
            Guard::Force
        } else {
            Guard::Enforce
        },
        ..Default::default()
    };
    let mut tx = Transaction::open(path, eo).map_err(rescue_error)?;
    let mut lines = Vec::new();
    let changed = edit(&mut Hives { tx: &mut tx }, &mut lines)?;
    for l in &lines {
        writeln!(out, "{l}")?;
    }
    if !changed {
        writeln!(out, "nothing to change")?;
        return Ok(None);
    }
    let outcome = match tx.commit("reg / sc edit") {
        Ok(o) => o,
        Err(e) => {
            if let rescue::Error::WouldBreak { prediction } = &e {
                print_prediction(prediction, out)?;
            }
            return Err(rescue_error(e));
        }
    };
    if let Some(p) = &outcome.prediction {
        print_prediction(p, out)?;
        for o in &p.objections {
            writeln!(out, "warning: written anyway (--force): {o}")?;
        }
    }
    for h in &outcome.hives {
        let replayed = if h.replayed_pages > 0 {
            format!(
                " ({} of them only because its transaction logs were replayed into the file)",
                h.replayed_pages
            )
        } else {
            String::new()
        };
        if opts.dry_run {
            writeln!(
                out,
                "dry run: {} pages of {} would be written{replayed}; nothing changed",
                h.pages, h.hive
            )?;
        } else {
            writeln!(
                out,
                "written: {} pages of {} (sequence number {}){replayed}, verified",
                h.pages, h.hive, h.sequence
            )?;
        }
    }
    if let Some(w) = &outcome.written {
        for warning in &w.warnings {
            writeln!(out, "warning: {warning}")?;
        }
        writeln!(
            out,
            "undo journal: {}",
            crate::output::shell_quote(&w.undo_journal.display().to_string())
        )?;
    }
    Ok(Some(outcome))
}

/// What the Service Control Manager would do before and after a write, one line each.
pub fn print_prediction(p: &Prediction, out: &mut dyn Write) -> Result<()> {
    for c in &p.checks {
        let show = |d: &Option<winsvc::Diagnosis>, when: &str| match d {
            Some(d) => d.summary(),
            None => format!("{}: {} is not installed {when}", c.control_set, c.service),
        };
        writeln!(out, "before: {}", show(&c.before, "before the write"))?;
        writeln!(out, "after: {}", show(&c.after, "after the write"))?;
    }
    Ok(())
}

// ----- running -----

/// Takes winrescue's own flags out of the reg.exe arguments, where an admin appends them after
/// the command (`reg DISK add ... /f --dry-run`), as `sc` accepts them. A flag given as the
/// data of `/v`, `/d`, `/t` or `/s` stays data.
fn take_own_flags(a: &mut RegArgs) {
    let mut kept = Vec::with_capacity(a.args.len());
    let mut after_switch = false;
    for x in std::mem::take(&mut a.args) {
        if !after_switch {
            let flag = match x.as_str() {
                "--dry-run" => Some(&mut a.dry_run),
                "--force" => Some(&mut a.force),
                "--allow-incomplete" => Some(&mut a.allow_incomplete),
                _ => None,
            };
            if let Some(f) = flag {
                *f = true;
                continue;
            }
        }
        after_switch = ["v", "d", "t", "s"].iter().any(|s| is_switch(&x, s)) && !after_switch;
        kept.push(x);
    }
    a.args = kept;
}

pub fn run(mut a: RegArgs, out: &mut dyn Write) -> Result<ExitCode> {
    take_own_flags(&mut a);
    let opts = WriteOpts {
        partition: a.partition,
        dry_run: a.dry_run,
        allow_incomplete: a.allow_incomplete,
        force: a.force,
    };
    if let Some(script) = &a.script {
        return run_script(&a.target, script, opts, out);
    }
    let op = parse(&a.args)?;
    let mounts = Mounts::default();
    let resolve = |key: &str| -> Result<KeyRef> {
        let k = mounts.resolve(key)?;
        if let Some(n) = &k.note {
            eprintln!("note: {n}");
        }
        Ok(k)
    };
    // The hive a key names, read from the target, and the key's path inside it.
    let locate = |key: &str| -> Result<(KeyRef, Hive<Vec<u8>>, String)> {
        let k = resolve(key)?;
        let hive = read_for(&a.target, a.partition, k.hive)?;
        let path = inner_path(&hive, k.hive, &k.parts)?;
        Ok((k, hive, path))
    };
    match &op {
        RegOp::Query {
            key,
            value,
            recurse,
        } => {
            let (_, hive, path) = locate(key)?;
            let node = hive.key(&path)?.ok_or_else(|| not_found(key))?;
            query(&node, key, value.as_deref(), *recurse, out)?;
        }
        RegOp::Add { key, .. } | RegOp::Delete { key, .. } => {
            let k = resolve(key)?;
            edit_target(&a.target, opts, out, |h, lines| {
                apply(h.editor(k.hive)?, &k, key, &op, lines)
            })?;
            writeln!(out, "The operation completed successfully.")?;
        }
        RegOp::Export {
            key,
            file,
            overwrite,
        } => {
            let (k, hive, path) = locate(key)?;
            let node = hive.key(&path)?.ok_or_else(|| not_found(key))?;
            // The root as the user wrote it (`HKLM\BROKENSYSTEM`), as reg.exe keeps it.
            let given: Vec<&str> = key.split('\\').filter(|p| !p.is_empty()).collect();
            let hklm = given.first().is_some_and(|r| {
                r.eq_ignore_ascii_case("HKLM") || r.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE")
            });
            let mount = if hklm { given.get(1).copied() } else { None };
            let prefix = [
                "HKEY_LOCAL_MACHINE",
                mount.unwrap_or(k.hive.file_name()),
                &path,
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\\");
            let mut text = Vec::new();
            let stats = regf::regfile::export(&node, &prefix, &mut text)?;
            let file = Path::new(file);
            if *overwrite && file.exists() {
                std::fs::write(file, &text)
                    .with_context(|| format!("cannot write {}", file.display()))?;
            } else if file.exists() {
                bail!(WriteRefused(format!(
                    "{} exists already: not overwritten (reg export FILE /y overwrites)",
                    file.display()
                )));
            } else {
                crate::output::write_new_file(file, &text)?;
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
            writeln!(out, "The operation completed successfully.")?;
        }
        RegOp::Import { file } => {
            import(&a.target, Path::new(file), opts, out)?;
            writeln!(out, "The operation completed successfully.")?;
        }
        RegOp::Load { key, .. } => {
            // The article's lines are pasted one by one: the load line has nothing to do
            // offline, and the next line's HKLM\NAME is taken as SYSTEM with a note.
            eprintln!("note: nothing to load: winrescue opens the target's hives itself; {key} names the SYSTEM hive in the commands that follow (a --script file maps the name to the hive its reg load line gives)");
            writeln!(out, "The operation completed successfully.")?;
        }
        RegOp::Unload { key } => {
            eprintln!("note: nothing to unload: every winrescue command writes and closes the hive itself ({key} needs no unload)");
            writeln!(out, "The operation completed successfully.")?;
        }
        RegOp::Help { verb } => {
            writeln!(out, "{}", usage_text(verb.as_deref()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_for(target: &Path, partition: Option<u32>, name: HiveName) -> Result<Hive<Vec<u8>>> {
    let (hive, warnings) = read_hive(target, partition, name)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(hive)
}

/// Applies an ADD or DELETE to the editor; `shown` is the key as the user wrote it.
fn apply(
    ed: &mut Editor,
    k: &KeyRef,
    shown: &str,
    op: &RegOp,
    lines: &mut Vec<String>,
) -> Result<bool> {
    let path = inner_path(&ed.hive()?, k.hive, &k.parts)?;
    let mut changed = false;
    match op {
        RegOp::Add {
            value, kind, data, ..
        } => {
            if ed.create_key(&path)? {
                lines.push(format!("create key {shown}"));
                changed = true;
            }
            if let Some(name) = value {
                let new = reg_text(&Data::decode(*kind, data));
                let t = type_name(*kind);
                match ed.set_value(&path, name, *kind, data)? {
                    SetOutcome::Unchanged => {
                        lines.push(format!("unchanged {shown} {name:?} = {t} {new}"))
                    }
                    SetOutcome::Created => {
                        lines.push(format!("set {shown} {name:?} = {t} {new} (new value)"));
                        changed = true;
                    }
                    SetOutcome::Updated { old_type, old_data } => {
                        lines.push(format!(
                            "set {shown} {name:?} = {t} {new} (was {} {})",
                            type_name(old_type),
                            reg_text(&Data::decode(old_type, &old_data))
                        ));
                        changed = true;
                    }
                }
            }
        }
        RegOp::Delete { value, .. } => {
            if ed.hive()?.key(&path)?.is_none() {
                return Err(not_found(shown));
            }
            match value {
                None => {
                    changed = ed.delete_key(&path)?;
                    lines.push(format!("delete key {shown} and everything below it"));
                }
                Some(ValueSel::One(name)) => {
                    if !ed.delete_value(&path, name)? {
                        return Err(not_found(&format!("{shown} /v {name}")));
                    }
                    lines.push(format!("delete value {shown} {name:?}"));
                    changed = true;
                }
                Some(ValueSel::All) => {
                    let names: Vec<String> = match ed.hive()?.key(&path)? {
                        Some(node) => node
                            .values()?
                            .filter_map(|v| v.ok())
                            .map(|v| v.name().to_string_lossy())
                            .collect(),
                        None => Vec::new(),
                    };
                    for n in names {
                        ed.delete_value(&path, &n)?;
                        lines.push(format!("delete value {shown} {n:?}"));
                        changed = true;
                    }
                }
            }
        }
        _ => unreachable!("only ADD and DELETE edit"),
    }
    Ok(changed)
}

fn query(
    k: &regf::Key<'_>,
    shown: &str,
    value: Option<&str>,
    recurse: bool,
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(out)?;
    writeln!(out, "{shown}")?;
    match value {
        Some(name) => {
            let v = k
                .value(name)?
                .ok_or_else(|| not_found(&format!("{shown} /v {name}")))?;
            writeln!(
                out,
                "    {}    {}    {}",
                value_name(&v),
                type_name(v.value_type()),
                reg_text(&v.data()?)
            )?;
        }
        None => {
            for v in k.values()? {
                let v = v?;
                writeln!(
                    out,
                    "    {}    {}    {}",
                    value_name(&v),
                    type_name(v.value_type()),
                    reg_text(&v.data()?)
                )?;
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

/// Text of a file that may be UTF-16LE with a BOM (what reg.exe export writes) or UTF-8/ANSI.
fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| exe(format!("ERROR: cannot read {}: {e}", path.display())))?;
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return Ok(String::from_utf16_lossy(&units));
    }
    // Notepad saves "UTF-8" with a byte order mark, which would glue itself to the first
    // word of the first line (`\u{feff}reg` is not `reg`).
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    Ok(String::from_utf8_lossy(body).into_owned())
}

/// `reg import FILE`: each section's values set through the editor, `[-key]` deleted, one edit
/// per hive.
fn import(target: &Path, file: &Path, opts: WriteOpts, out: &mut dyn Write) -> Result<()> {
    let text = read_text(file)?;
    let sections = regf::regfile::parse(&text).map_err(|e| {
        exe(format!(
            "ERROR: Error accessing the registry: {}: {e}",
            file.display()
        ))
    })?;
    let mounts = Mounts::default();
    let mut keyed: Vec<(KeyRef, &regf::regfile::Section)> = Vec::new();
    for s in &sections {
        let k = mounts
            .resolve(&s.path)
            .with_context(|| format!("{} line {}", file.display(), s.line))?;
        if let Some(n) = &k.note {
            eprintln!("note: {} line {}: {n}", file.display(), s.line);
        }
        keyed.push((k, s));
    }
    edit_target(target, opts, out, |h, lines| {
        let mut changed = false;
        for (k, s) in &keyed {
            {
                let ed = h.editor(k.hive)?;
                let path = inner_path(&ed.hive()?, k.hive, &k.parts)?;
                if s.delete {
                    if ed.delete_key(&path)? {
                        lines.push(format!("delete key [{}]", s.path));
                        changed = true;
                    }
                    continue;
                }
                if ed.create_key(&path)? {
                    lines.push(format!("create key [{}]", s.path));
                    changed = true;
                }
                for e in &s.values {
                    let shown = if e.name.is_empty() {
                        "@".to_string()
                    } else {
                        format!("{:?}", e.name)
                    };
                    match &e.data {
                        Some((t, bytes)) => {
                            if ed.set_value(&path, &e.name, *t, bytes)? != SetOutcome::Unchanged {
                                lines.push(format!(
                                    "set [{}] {shown} = {} {}",
                                    s.path,
                                    type_name(*t),
                                    reg_text(&Data::decode(*t, bytes))
                                ));
                                changed = true;
                            }
                        }
                        None => {
                            if ed.delete_value(&path, &e.name)? {
                                lines.push(format!("delete value [{}] {shown}", s.path));
                                changed = true;
                            }
                        }
                    }
                }
            }
        }
        Ok(changed)
    })?;
    Ok(())
}

// ----- scripts -----

/// Splits a cmd.exe line into arguments: spaces separate, double quotes group and are removed.
/// What cmd.exe would change before reg.exe sees it (`%VAR%`, `^`, `&`, `|`, `<`, `>`) is
/// refused rather than guessed; `%%` is a literal `%`.
pub fn cmd_tokens(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut have = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                have = true;
            }
            ' ' | '\t' if !quoted => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            '%' if chars.peek() == Some(&'%') => {
                chars.next();
                cur.push('%');
                have = true;
            }
            '%' => return Err("cmd.exe would expand %...% here; winrescue does not guess its value (write %% for a literal %)".into()),
            '^' | '&' | '|' | '<' | '>' if !quoted => return Err(format!("cmd.exe operator {c:?}: only plain reg lines are run")),
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if quoted {
        return Err("a double quote is not closed".into());
    }
    if have {
        out.push(cur);
    }
    Ok(out)
}

/// One write of a script.
#[derive(Debug)]
struct ScriptOp {
    line: usize,
    key: KeyRef,
    shown: String,
    op: RegOp,
}

/// Parses a script: every line checked before anything is written.
fn parse_script(text: &str) -> Result<Vec<ScriptOp>> {
    let mut mounts = Mounts::strict();
    let mut ops = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        let lower = line.to_ascii_lowercase();
        let is_rem = lower == "rem"
            || lower.starts_with("rem ")
            || lower.starts_with("rem\t")
            || lower.starts_with("@rem ");
        if line.is_empty()
            || is_rem
            || line.starts_with("::")
            || lower == "@echo off"
            || lower == "echo off"
        {
            continue;
        }
        let tokens = cmd_tokens(line.strip_prefix('@').unwrap_or(line))
            .map_err(|e| syntax(format!("line {n}: {e}: {line}")))?;
        let is_reg = tokens
            .first()
            .is_some_and(|t| t.eq_ignore_ascii_case("reg") || t.eq_ignore_ascii_case("reg.exe"));
        if !is_reg {
            return Err(syntax(format!("line {n}: only reg load, reg add, reg delete and reg unload lines are run (and rem, blank lines): {line}")));
        }
        let op = parse(&tokens[1..]).with_context(|| format!("line {n}"))?;
        match &op {
            RegOp::Load { key, file } => mounts
                .load(key, file)
                .with_context(|| format!("line {n}"))?,
            RegOp::Unload { key } => mounts.unload(key).with_context(|| format!("line {n}"))?,
            RegOp::Add { key, .. } | RegOp::Delete { key, .. } => {
                let k = mounts.resolve(key).with_context(|| format!("line {n}"))?;
                ops.push(ScriptOp {
                    line: n,
                    key: k,
                    shown: key.clone(),
                    op: op.clone(),
                });
            }
            _ => {
                return Err(syntax(format!(
                "line {n}: reg {} is not run in a script (only load, add, delete, unload): {line}",
                tokens.get(1).map(String::as_str).unwrap_or("")
            )))
            }
        }
    }
    Ok(ops)
}

fn run_script(
    target: &Path,
    script: &Path,
    opts: WriteOpts,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let text = read_text(script)?;
    let ops = parse_script(&text).with_context(|| script.display().to_string())?;
    // One transaction: a script that edits SYSTEM and SOFTWARE is written whole or not at all.
    edit_target(target, opts, out, |h, lines| {
        let mut changed = false;
        for op in &ops {
            let before = lines.len();
            let ed = h
                .editor(op.key.hive)
                .with_context(|| format!("{} line {}", script.display(), op.line))?;
            changed |= apply(ed, &op.key, &op.shown, &op.op, lines)
                .with_context(|| format!("{} line {}", script.display(), op.line))?;
            for l in &mut lines[before..] {
                *l = format!("line {}: {l}", op.line);
            }
        }
        Ok(changed)
    })?;
    writeln!(out, "The operation completed successfully.")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_the_articles_lines() {
        let op = parse(&args(&[
            "add",
            r"HKLM\BROKENSYSTEM\ControlSet001\services\DHCP",
            "/v",
            "start",
            "/t",
            "REG_DWORD",
            "/d",
            "2",
            "/f",
        ]))
        .unwrap();
        assert_eq!(
            op,
            RegOp::Add {
                key: r"HKLM\BROKENSYSTEM\ControlSet001\services\DHCP".into(),
                value: Some("start".into()),
                kind: ValueType::DWORD,
                data: vec![2, 0, 0, 0]
            }
        );
        let op = parse(&args(&[
            "add",
            "K",
            "/v",
            "ObjectName",
            "/t",
            "REG_SZ",
            "/d",
            r"NT Authority\LocalService",
            "/f",
        ]))
        .unwrap();
        let RegOp::Add { data, .. } = op else {
            panic!()
        };
        assert_eq!(data, utf16z(r"NT Authority\LocalService"));
        let op = parse(&args(&[
            "ADD",
            "K",
            "/V",
            "type",
            "/T",
            "reg_dword",
            "/D",
            "0x10",
        ]))
        .unwrap();
        assert!(matches!(op, RegOp::Add { data, .. } if data == vec![16, 0, 0, 0]));
        assert_eq!(
            parse(&args(&[
                "load",
                r"HKLM\BROKENSYSTEM",
                r"F:\windows\system32\config\SYSTEM"
            ]))
            .unwrap(),
            RegOp::Load {
                key: r"HKLM\BROKENSYSTEM".into(),
                file: r"F:\windows\system32\config\SYSTEM".into()
            }
        );
        assert_eq!(
            parse(&args(&["export", r"HKLM\SYSTEM\Select", "x.reg", "/y"])).unwrap(),
            RegOp::Export {
                key: r"HKLM\SYSTEM\Select".into(),
                file: "x.reg".into(),
                overwrite: true
            }
        );
        assert_eq!(
            parse(&args(&["import", "x.reg"])).unwrap(),
            RegOp::Import {
                file: "x.reg".into()
            }
        );
    }

    #[test]
    fn multi_sz_uses_the_separator() {
        assert_eq!(
            encode_data(ValueType::MULTI_SZ, r"NSI\0Afd", r"\0").unwrap(),
            "NSI\0Afd\0\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            encode_data(ValueType::MULTI_SZ, "a,b", ",").unwrap(),
            "a\0b\0\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_syntax_reads_like_reg_exe() {
        for bad in [
            &["add"][..],
            &["add", "K", "/t", "REG_DWORD", "/d", "x"],
            &["add", "K", "/t", "REG_NOPE"],
            &["frobnicate", "K"],
            &["add", "K", "/v"],
            &["export", "K"],
            &["query", "K", "/t", "REG_SZ"],
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.to_string().starts_with("ERROR: Invalid syntax."), "{e}");
            assert!(e.downcast_ref::<SyntaxError>().is_some());
        }
    }

    #[test]
    fn roots_map_to_hives() {
        let m = Mounts::default();
        let k = m.resolve(r"HKLM\SOFTWARE\Microsoft").unwrap();
        assert_eq!(
            (k.hive, k.parts.clone(), k.note.is_none()),
            (HiveName::Software, vec!["Microsoft".to_string()], true)
        );
        let k = m
            .resolve(r"HKEY_LOCAL_MACHINE\BROKENSYSTEM\ControlSet001")
            .unwrap();
        assert_eq!(k.hive, HiveName::System);
        assert!(k.note.unwrap().contains("BROKENSYSTEM"));
        assert_eq!(m.resolve(r"ControlSet001\Services").unwrap().parts.len(), 2);
        assert!(m
            .resolve(r"HKCU\Software")
            .unwrap_err()
            .to_string()
            .contains("Invalid key name"));
        let mut s = Mounts::strict();
        assert!(s.resolve(r"HKLM\BROKENSYSTEM\ControlSet001").is_err());
        s.load(r"HKLM\BROKENSOFT", r"F:\Windows\System32\config\software")
            .unwrap();
        assert_eq!(
            s.resolve(r"HKLM\brokensoft\Microsoft").unwrap().hive,
            HiveName::Software
        );
        s.unload(r"HKLM\BROKENSOFT").unwrap();
        assert!(s.unload(r"HKLM\BROKENSOFT").is_err());
        assert!(s.load(r"HKLM\U", r"C:\Users\bob\NTUSER.DAT").is_err());
    }

    #[test]
    fn cmd_lines_split_like_cmd() {
        assert_eq!(
            cmd_tokens(r#"reg add "HKLM\B\x y" /v a /d "NT Authority\LocalService" /f"#).unwrap(),
            args(&[
                "reg",
                "add",
                r"HKLM\B\x y",
                "/v",
                "a",
                "/d",
                r"NT Authority\LocalService",
                "/f"
            ])
        );
        assert_eq!(cmd_tokens(r#"reg add K /d "100%%""#).unwrap()[4], "100%");
        assert!(cmd_tokens(r#"reg add K /d %SystemRoot%"#).is_err());
        assert!(cmd_tokens(r#"reg add K & del x"#).is_err());
        assert!(cmd_tokens(r#"reg add "K"#).is_err());
    }

    #[test]
    fn scripts_are_checked_line_by_line_before_anything_runs() {
        let ok = "reg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\n\r\nREM x\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 2 /f\r\nreg unload HKLM\\B\r\n";
        let ops = parse_script(ok).unwrap();
        assert_eq!(
            (ops.len(), ops[0].line, ops[0].key.hive),
            (1, 4, HiveName::System)
        );
        let e = parse_script("reg load HKLM\\B F:\\SYSTEM\ndel F:\\x\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
        assert!(e.downcast_ref::<SyntaxError>().is_some());
        let e = parse_script("reg add HKLM\\B\\X /v a /d 1\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("line 1") && format!("{e:#}").contains("not loaded"),
            "{e:#}"
        );
        let e = parse_script(
            "reg load HKLM\\B F:\\SYSTEM\nreg add HKLM\\B\\X /v a /t REG_DWORD /d x\n",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("line 2: ERROR: Invalid syntax."),
            "{e:#}"
        );
    }
}
