//! Scripts of reg lines (the article's offline `.cmd`: `reg load`, `reg add`, `reg delete`,
//! `reg unload`), and the text of script and `.reg` files.

use crate::error::{Error, Result};
use crate::path::{KeyRef, Mounts};
use crate::reg::{parse, RegOp};

/// The text of a file that may be UTF-16LE with a byte order mark (what reg.exe export writes)
/// or UTF-8 / ANSI, with a UTF-8 byte order mark dropped.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    // Notepad saves "UTF-8" with a byte order mark, which would glue itself to the first
    // word of the first line (`\u{feff}reg` is not `reg`).
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8_lossy(body).into_owned()
}

/// Splits a cmd.exe line into arguments: spaces separate, double quotes group and are removed.
/// What cmd.exe would change before reg.exe sees it (`%VAR%`, `^`, `&`, `|`, `<`, `>`) is
/// refused rather than guessed; `%%` is a literal `%`.
pub fn cmd_tokens(line: &str) -> std::result::Result<Vec<String>, String> {
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOp {
    /// Its line, from 1.
    pub line: usize,
    pub key: KeyRef,
    /// The key as the line wrote it.
    pub shown: String,
    /// An ADD or a DELETE.
    pub op: RegOp,
}

fn is_skipped(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let is_rem = lower == "rem"
        || lower.starts_with("rem ")
        || lower.starts_with("rem\t")
        || lower.starts_with("@rem ");
    line.is_empty()
        || is_rem
        || line.starts_with("::")
        || lower == "@echo off"
        || lower == "echo off"
}

/// Parses a script: every line is checked, and every key resolved through the script's own
/// `reg load` lines, before anything is written. Blank lines, `rem` / `::` comments and
/// `@echo off` are skipped; any other line that is not `reg load|add|delete|unload` is an error
/// with its number.
pub fn parse_script(text: &str) -> Result<Vec<ScriptOp>> {
    let mut mounts = Mounts::strict();
    let mut ops = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if is_skipped(line) {
            continue;
        }
        let bad = |what: String| Error::ScriptLine {
            line: n,
            what,
            text: line.to_string(),
        };
        let tokens = cmd_tokens(line.strip_prefix('@').unwrap_or(line)).map_err(bad)?;
        let is_reg = tokens
            .first()
            .is_some_and(|t| t.eq_ignore_ascii_case("reg") || t.eq_ignore_ascii_case("reg.exe"));
        if !is_reg {
            return Err(bad("only reg load, reg add, reg delete and reg unload lines are run (and rem, blank lines)".into()));
        }
        let op = parse(&tokens[1..]).map_err(|e| e.at_line(n))?;
        match &op {
            RegOp::Load { key, file } => {
                mounts.load(key, file).map_err(|e| e.at_line(n))?;
            }
            RegOp::Unload { key } => mounts.unload(key).map_err(|e| e.at_line(n))?,
            RegOp::Add { key, .. } | RegOp::Delete { key, .. } => {
                let k = mounts.resolve(key).map_err(|e| e.at_line(n))?;
                ops.push(ScriptOp {
                    line: n,
                    key: k,
                    shown: key.clone(),
                    op: op.clone(),
                });
            }
            _ => {
                return Err(bad(format!(
                    "reg {} is not run in a script (only load, add, delete, unload)",
                    tokens.get(1).map(String::as_str).unwrap_or("")
                )))
            }
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::HiveName;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
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
        // Quotes glue to the word around them and an empty pair is an empty argument.
        assert_eq!(cmd_tokens(r#"a"b c"d """#).unwrap(), args(&["ab cd", ""]));
        assert!(cmd_tokens(r#"reg add K /d %SystemRoot%"#).is_err());
        assert!(cmd_tokens(r#"reg add K & del x"#).is_err());
        assert!(cmd_tokens(r#"reg add "K"#).is_err());
        // An operator inside quotes is text.
        assert_eq!(cmd_tokens(r#"reg add "a&b""#).unwrap()[2], "a&b");
    }

    #[test]
    fn scripts_are_checked_line_by_line_before_anything_runs() {
        let ok = "@echo off\r\nreg load HKLM\\B F:\\windows\\system32\\config\\SYSTEM\r\n\r\nREM x\r\n:: y\r\nreg add \"HKLM\\B\\ControlSet001\\services\\DHCP\" /v start /t REG_DWORD /d 2 /f\r\nreg unload HKLM\\B\r\n";
        let ops = parse_script(ok).unwrap();
        assert_eq!(
            (ops.len(), ops[0].line, ops[0].key.hive),
            (1, 6, HiveName::System)
        );
        let e = parse_script("reg load HKLM\\B F:\\SYSTEM\ndel F:\\x\n").unwrap_err();
        assert!(matches!(e, Error::ScriptLine { line: 2, .. }), "{e:?}");
        assert!(e.is_syntax());
        let e = parse_script("reg add HKLM\\B\\X /v a /d 1\n").unwrap_err();
        assert!(matches!(e.innermost(), Error::MountUnknown { .. }));
        assert!(matches!(e, Error::AtLine { line: 1, .. }));
        let e = parse_script(
            "reg load HKLM\\B F:\\SYSTEM\nreg add HKLM\\B\\X /v a /t REG_DWORD /d x\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::AtLine { line: 2, source } if matches!(**source, Error::RegSyntax(_)))
        );
        // After an unload the name is gone.
        let e =
            parse_script("reg load HKLM\\B F:\\SYSTEM\nreg unload HKLM\\B\nreg add HKLM\\B\\X\n")
                .unwrap_err();
        assert!(matches!(e, Error::AtLine { line: 3, .. }));
        let e = parse_script("reg query HKLM\\SYSTEM\n").unwrap_err();
        assert!(matches!(e, Error::ScriptLine { line: 1, .. }));
    }

    #[test]
    fn text_files_decode_from_utf16_and_utf8_with_a_bom() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("reg".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_text(&utf16), "reg");
        assert_eq!(decode_text(b"\xEF\xBB\xBFreg"), "reg");
        assert_eq!(decode_text(b"reg"), "reg");
        // An odd trailing byte is dropped, never read past.
        assert_eq!(decode_text(&[0xFF, 0xFE, b'a', 0, b'b']), "a");
    }
}
