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

/// `s` as one word for a POSIX shell: unchanged when it holds only characters no shell treats
/// specially, otherwise in single quotes (a quote inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `s` with every control character but newline and tab shown as `\x1b`-style escapes, so
/// that bytes from a disk, a hive or a script cannot move the cursor, recolour or retitle the
/// terminal of whoever reads the output.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_escaped) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_escaped(c) {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn is_escaped(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The secrets of the URLs on the command line: the values of their query parameters that
/// [`vdisk::remote::redact_url`] redacts. Set once by `main`.
static SECRETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Records the secrets of every URL among `args`, so that [`redact_secrets`] (applied to all
/// standard output and to error messages) removes them even where a command showed an argument
/// without [`crate::input::shown`].
pub fn note_secrets(args: impl Iterator<Item = std::ffi::OsString>) {
    let mut secrets = Vec::new();
    for arg in args {
        let Some(url) = arg.to_str().filter(|a| vdisk::remote::is_url(a)) else {
            continue;
        };
        let shown = vdisk::remote::redact_url(url);
        let Some((_, query)) = url.split('#').next().unwrap_or(url).split_once('?') else {
            continue;
        };
        if !shown.contains(query) {
            secrets.push(query.to_string());
        }
        for part in query.split('&') {
            if let Some((k, v)) = part.split_once('=') {
                if v.len() >= 4 && shown.contains(&format!("{k}=REDACTED")) {
                    secrets.push(v.to_string());
                }
            }
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let _ = SECRETS.set(secrets);
}

/// `s` with every secret noted by [`note_secrets`] replaced by `REDACTED`.
pub fn redact_secrets(s: &str) -> std::borrow::Cow<'_, str> {
    let secrets = SECRETS.get().map(Vec::as_slice).unwrap_or_default();
    if !secrets.iter().any(|x| s.contains(x.as_str())) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = s.to_string();
    for x in secrets {
        out = out.replace(x.as_str(), "REDACTED");
    }
    std::borrow::Cow::Owned(out)
}

/// A writer that escapes control characters (see [`escape_controls`]) in the text it passes on,
/// and redacts the secrets of URLs given on the command line (see [`redact_secrets`]).
/// Bytes that are not UTF-8 pass through unchanged.
pub struct Escaping<W: Write>(pub W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => {
                self.0
                    .write_all(redact_secrets(&escape_controls(s)).as_bytes())?;
                Ok(buf.len())
            }
            // A write cut inside a character: pass the valid part, the rest comes next time.
            Err(e) if e.valid_up_to() > 0 => self.write(&buf[..e.valid_up_to()]),
            Err(_) => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_a_shell_would_split_or_expand() {
        assert_eq!(shell_quote("disk.raw"), "disk.raw");
        assert_eq!(
            shell_quote("dir with spaces/os disk.raw"),
            "'dir with spaces/os disk.raw'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn escapes_terminal_controls_but_keeps_lines() {
        assert_eq!(escape_controls("a\x1b[31mb\n\tc"), "a\\x1b[31mb\n\tc");
        assert_eq!(escape_controls("\u{9b}x"), "\\x9bx");
        let mut out = Escaping(Vec::new());
        out.write_all("x\x07y\n".as_bytes()).unwrap();
        assert_eq!(out.0, b"x\\x07y\n");
    }
}
