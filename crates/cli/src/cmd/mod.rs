//! One module per subcommand.

pub mod diagnose;
pub mod events;
pub mod hive;
pub mod hive_acl;
pub mod reg;
pub mod repair;
pub mod runbook;
pub mod sc;
pub mod undo;

/// Maps an error to the documented exit code (see the crate docs).
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<WriteRefused>().is_some() {
        crate::EXIT_WRITE_REFUSED
    } else if err
        .downcast_ref::<rescue::Error>()
        .is_some_and(rescue::Error::is_interrupted_write)
    {
        crate::EXIT_INTERRUPTED
    } else if err.downcast_ref::<reg::SyntaxError>().is_some() {
        crate::EXIT_USAGE
    } else {
        crate::EXIT_BAD_INPUT
    }
}

/// A message worded as reg.exe or sc.exe word theirs (`ERROR: ...`, `[SC] ...`): printed as it
/// is, without winrescue's own `winrescue: error:` prefix, which would say "error" twice.
#[derive(Debug)]
pub struct ExeMessage(pub String);

impl std::fmt::Display for ExeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExeMessage {}

/// An [`ExeMessage`] error.
pub fn exe(message: String) -> anyhow::Error {
    anyhow::Error::new(ExeMessage(message))
}

/// Whether the error is worded as reg.exe or sc.exe word theirs (see [`ExeMessage`]).
pub fn is_exe_worded(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<ExeMessage>() || e.is::<reg::SyntaxError>())
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

/// Turns a rescue error into the right exit code: refusals (nothing was changed: a locked or
/// read-only target, an earlier interrupted write, no room) are "write refused"; a write that
/// stopped part way has its own code; the rest is bad input.
pub fn refusal(e: rescue::Error) -> anyhow::Error {
    if let rescue::Error::IncompleteHive { .. } = e {
        return anyhow::Error::new(WriteRefused(format!(
            "{e}; nothing was changed (--allow-incomplete writes anyway, and those changes are lost)"
        )));
    }
    if let rescue::Error::WouldBreak { .. } = e {
        return anyhow::Error::new(WriteRefused(format!(
            "{e}; nothing was written (--force writes it anyway)"
        )));
    }
    if e.is_refusal() {
        anyhow::Error::new(WriteRefused(e.to_string()))
    } else {
        anyhow::Error::new(e)
    }
}
