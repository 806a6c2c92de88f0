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
    } else if err.downcast_ref::<reg::SyntaxError>().is_some() {
        crate::EXIT_USAGE
    } else {
        crate::EXIT_BAD_INPUT
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

/// Turns a rescue error into the right exit code: refusals and interrupted writes are
/// "write refused" (nothing was changed), the rest bad input.
pub fn refusal(e: rescue::Error) -> anyhow::Error {
    match e {
        rescue::Error::Refused(_) | rescue::Error::Interrupted { .. } => {
            anyhow::Error::new(WriteRefused(e.to_string()))
        }
        e => anyhow::Error::new(e),
    }
}
