//! One module per subcommand.

pub mod diagnose;
pub mod events;
pub mod hive;
pub mod hive_acl;
pub mod reg;
pub mod repair;
pub mod rules;
pub mod runbook;
pub mod sc;
pub mod undo;

/// Maps an error to the documented exit code (see the crate docs).
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<WriteRefused>().is_some() {
        crate::EXIT_WRITE_REFUSED
    } else if err
        .downcast_ref::<rescue::Error>()
        .or_else(|| err.downcast_ref::<Advised>().map(|a| &a.error))
        .is_some_and(rescue::Error::is_interrupted_write)
    {
        crate::EXIT_INTERRUPTED
    } else if err.downcast_ref::<SyntaxError>().is_some()
        || err.downcast_ref::<Hinted>().is_some()
        || err
            .chain()
            .filter_map(|e| e.downcast_ref::<wincmd::Error>())
            .any(wincmd::Error::is_syntax)
    {
        crate::EXIT_USAGE
    } else {
        crate::EXIT_BAD_INPUT
    }
}

/// Whether the error is worded as reg.exe or sc.exe word theirs (`ERROR: ...`, `[SC] ...`):
/// printed as it is, without winrescue's own `winrescue: error:` prefix, which would say
/// "error" twice.
pub fn is_exe_worded(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<SyntaxError>()
            || e.is::<Hinted>()
            || e.downcast_ref::<wincmd::Error>()
                .is_some_and(wincmd::Error::is_exe_worded)
    })
}

/// A syntax error, worded as reg.exe words it (`ERROR: Invalid syntax. ...`): the CLI's own
/// usage errors (`sc`, `runbook`) and the library's with this CLI's hints added (exit code 2).
#[derive(Debug)]
pub struct SyntaxError(pub String);

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR: Invalid syntax. {}", self.0)
    }
}

impl std::error::Error for SyntaxError {}

/// A library syntax error with this CLI's hint after it (exit code 2, printed as reg.exe and
/// sc.exe print theirs).
#[derive(Debug)]
pub struct Hinted {
    pub error: wincmd::Error,
    pub hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.error, self.hint)
    }
}

impl std::error::Error for Hinted {}

/// A `wincmd` error in this CLI's words: the advice and exit code of a rescue error
/// ([`refusal`]), a refused change as [`WriteRefused`], sc.exe's usage after its syntax errors,
/// and how to quote what the shell ate. The line of a script stays as context.
pub fn lib_error(e: wincmd::Error) -> anyhow::Error {
    use wincmd::Error as E;
    let hint = match &e {
        E::KeyLostBackslashes { .. } => Some(": put the key in single quotes, e.g. 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dhcp'".to_string()),
        E::AccountLostBackslash { .. } => Some(format!(
            "; put it in single quotes: obj= 'NT Authority\\LocalService'\n{}",
            sc::CONFIG_USAGE
        )),
        E::ScSyntax { usage, .. } => Some(format!("\n{}", sc::usage(*usage))),
        E::NeedsRunningScm { .. } => Some(" `winrescue sc TARGET query SERVICE` predicts whether it would start; `winrescue runbook` gives the serial-console commands.".to_string()),
        _ => None,
    };
    if let Some(hint) = hint {
        return anyhow::Error::new(Hinted { error: e, hint });
    }
    match e {
        E::Rescue(r) => refusal(r),
        E::ReadingHive { path, source } => refusal(source).context(format!("reading {path}")),
        E::AtLine { line, source } => lib_error(*source).context(format!("line {line}")),
        e if e.is_refusal() => anyhow::Error::new(WriteRefused(e.to_string())),
        e => anyhow::Error::new(e),
    }
}

/// Marker error: a write was refused before anything was changed.
#[derive(Debug)]
pub struct WriteRefused(pub String);

impl std::fmt::Display for WriteRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteRefused {}

/// What the user can do about a rescue error, in this CLI's words (the library states only
/// facts: which journal is pending, which partitions hold Windows).
pub fn advice(e: &rescue::Error) -> Option<String> {
    use crate::output::shell_quote;
    let undo = |j: &std::path::Path| {
        let j = shell_quote(&j.display().to_string());
        format!(
            "run `winrescue undo {j}` to go back to before that write, or `winrescue undo --redo {j}` to finish it"
        )
    };
    match e {
        rescue::Error::Interrupted { journal, .. } => Some(undo(journal)),
        rescue::Error::WriteInterrupted { journal, .. } => Some(undo(journal)),
        rescue::Error::WrittenUnrecorded { journal, .. } => Some(format!(
            "`winrescue undo --redo {j}` records the write, `winrescue undo {j}` takes it back",
            j = shell_quote(&journal.display().to_string())
        )),
        rescue::Error::NotVerified { journal, .. } => Some(format!(
            "take it back with `winrescue undo {}`",
            shell_quote(&journal.display().to_string())
        )),
        rescue::Error::SeveralWindows { .. } => Some("choose one with --partition N".into()),
        rescue::Error::NeedsUrl { blob, .. } => Some(format!(
            "give it with --url '{blob}?SAS' (a SAS that allows writing: az disk grant-access --access-level Write)"
        )),
        rescue::Error::IncompleteHive { .. } => Some(
            "nothing was changed (--allow-incomplete writes anyway, and those changes are lost)"
                .into(),
        ),
        rescue::Error::WouldBreak { .. } => {
            Some("nothing was written (--force writes it anyway)".into())
        }
        _ => None,
    }
}

/// A rescue error with the advice of [`advice`] after it.
#[derive(Debug)]
pub struct Advised {
    pub error: rescue::Error,
    pub advice: String,
}

impl std::fmt::Display for Advised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.error, self.advice)
    }
}

impl std::error::Error for Advised {}

/// Turns a rescue error into the right exit code and words: refusals (nothing was changed: a
/// locked or read-only target, an earlier interrupted write, no room) are "write refused"; a
/// write that stopped part way has its own code; the rest is bad input.
pub fn refusal(e: rescue::Error) -> anyhow::Error {
    let text = match advice(&e) {
        Some(a) => format!("{e}; {a}"),
        None => e.to_string(),
    };
    if e.is_refusal() {
        return anyhow::Error::new(WriteRefused(text));
    }
    match advice(&e) {
        Some(advice) => anyhow::Error::new(Advised { error: e, advice }),
        None => anyhow::Error::new(e),
    }
}

/// Turns an error of the rules into the right exit code and words (see [`refusal`]).
pub fn rules_error(e: ::rules::Error) -> anyhow::Error {
    match e {
        ::rules::Error::Rescue(e) => refusal(e),
        e if e.is_refusal() => anyhow::Error::new(WriteRefused(e.to_string())),
        e => anyhow::Error::new(e),
    }
}
