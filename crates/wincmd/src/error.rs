//! The crate's error type: facts in the words reg.exe and sc.exe use, never a program's flags or
//! advice (the caller maps each kind to its own words and exit codes).

/// Which usage an sc.exe syntax error belongs to (the caller shows the matching usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScUsage {
    /// `sc config`.
    Config,
    /// `sc query` and `sc qc`.
    Query,
}

/// What a parse, a path or a change ran into.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// reg.exe's syntax error; the text is what follows `Invalid syntax.`
    #[error("ERROR: Invalid syntax. {0}")]
    RegSyntax(String),

    /// sc.exe's syntax error; the text is what follows `Invalid syntax.`
    #[error("ERROR: Invalid syntax. {detail}")]
    ScSyntax { detail: String, usage: ScUsage },

    /// An sc.exe command that needs a running Service Control Manager.
    #[error("[SC] {verb}: the VM is not running: nothing can be started or stopped offline.")]
    NeedsRunningScm { verb: String },

    /// A key path with no backslash that looks like one whose backslashes were lost (an
    /// unquoted `HKLM\SYSTEM\Select` reaches a program as `HKLMSYSTEMSelect`).
    #[error("ERROR: Invalid syntax. {key} looks like a key whose backslashes the shell removed")]
    KeyLostBackslashes { key: String },

    /// An `obj=` account that looks like one whose backslash was lost.
    #[error(
        "ERROR: Invalid syntax. obj= {shown}: the account's backslash was removed by the shell"
    )]
    AccountLostBackslash { shown: String },

    /// reg.exe's message for a key or value that is not there.
    #[error("ERROR: The system was unable to find the specified registry key or value ({0})")]
    NotFound(String),

    /// A key path that names no hive of an offline Windows.
    #[error("ERROR: Invalid key name. {0}")]
    InvalidKeyName(String),

    /// `reg load` of a file that is not one of the hives of `Windows\System32\config`.
    #[error("ERROR: winrescue loads the hives of Windows\\System32\\config (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT), not {file}")]
    NotAConfigHive { file: String },

    /// A second `reg load` of one name.
    #[error("ERROR: HKLM\\{name} is loaded already")]
    LoadedAlready { name: String },

    /// `reg unload` of a name no `reg load` gave.
    #[error("ERROR: HKLM\\{name} is not loaded (no earlier reg load line)")]
    NotLoaded { name: String },

    /// A script's key under a name no `reg load` line gave.
    #[error("ERROR: HKLM\\{name} is not loaded by an earlier reg load line (on a recovery VM it would be that VM's own registry)")]
    MountUnknown { name: String },

    /// A script line that is not a reg line, or a cmd.exe construct that cannot be run.
    #[error("ERROR: Invalid syntax. line {line}: {what}: {text}")]
    ScriptLine {
        line: usize,
        what: String,
        text: String,
    },

    /// An error on one line of a script or a `.reg` file.
    #[error("line {line}")]
    AtLine {
        line: usize,
        #[source]
        source: Box<Error>,
    },

    /// A `.reg` file that does not parse.
    #[error("ERROR: Error accessing the registry: {file}: {error}")]
    RegFile {
        file: String,
        error: regf::regfile::ParseError,
    },

    /// sc.exe's message for a service that does not exist.
    #[error("[SC] OpenService FAILED 1060:\n\nThe specified service does not exist as an installed service.")]
    NoSuchService { name: String },

    /// `obj=` names an account the Service Control Manager rejects.
    #[error("[SC] ChangeServiceConfig FAILED 1057:\n\nThe account name is invalid or does not exist, or the password is invalid for the account name specified. ({account:?})")]
    InvalidAccount { account: String },

    /// `obj=` on a driver.
    #[error("[SC] ChangeServiceConfig FAILED 87:\n\nThe parameter is incorrect. ({service} is a driver: drivers have no account)")]
    DriverAccount { service: String },

    /// `password=`: an account's password is not in the registry a program can write offline.
    #[error("[SC] ChangeServiceConfig: password= cannot be set offline: an account's password lives in the LSA secrets of the SECURITY hive, encrypted with the machine's boot key, and winrescue does not write them. Use a built-in account (obj= \"NT Authority\\LocalService\") or set the password on the running VM. Nothing was changed.")]
    PasswordOffline,

    /// A hive file that is compressed cannot be written in place.
    #[error("{path}: not written: the file is compressed; decompress it first")]
    Compressed { path: String },

    /// A hive that does not open.
    #[error("{path} is not a registry hive")]
    NotAHive {
        path: String,
        #[source]
        source: regf::Error,
    },

    /// Reading a hive of the target failed.
    #[error("reading {path}")]
    ReadingHive {
        path: String,
        #[source]
        source: rescue::Error,
    },

    /// A hive's structures.
    #[error(transparent)]
    Hive(#[from] regf::Error),

    /// The services model (a control set `Select` names that cannot be read, ...).
    #[error(transparent)]
    Model(#[from] winsvc::Error),

    /// The target, its hives, the journal and the writer.
    #[error(transparent)]
    Rescue(#[from] rescue::Error),

    /// The System event log.
    #[error(transparent)]
    Events(#[from] evidence::Error),

    /// Reading a script or a `.reg` file.
    #[error("ERROR: cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl Error {
    /// The error below any [`Error::AtLine`] wrappers.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::AtLine { source, .. } => source.innermost(),
            e => e,
        }
    }

    /// Wraps the error with the line of a script or file it belongs to.
    pub fn at_line(self, line: usize) -> Error {
        Error::AtLine {
            line,
            source: Box::new(self),
        }
    }

    /// Whether this is a syntax error of reg.exe or sc.exe (what their usage answers).
    pub fn is_syntax(&self) -> bool {
        matches!(
            self.innermost(),
            Error::RegSyntax(_)
                | Error::ScSyntax { .. }
                | Error::NeedsRunningScm { .. }
                | Error::KeyLostBackslashes { .. }
                | Error::AccountLostBackslash { .. }
                | Error::ScriptLine { .. }
        )
    }

    /// Whether the change was refused before anything was written, for a reason of this crate's
    /// own (a rescue refusal is [`rescue::Error::is_refusal`]).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.innermost(),
            Error::InvalidAccount { .. }
                | Error::DriverAccount { .. }
                | Error::PasswordOffline
                | Error::Compressed { .. }
        )
    }

    /// Whether the message is worded as reg.exe or sc.exe word theirs (`ERROR: ...`, `[SC] ...`).
    pub fn is_exe_worded(&self) -> bool {
        self.is_syntax()
            || matches!(
                self.innermost(),
                Error::NotFound(_)
                    | Error::InvalidKeyName(_)
                    | Error::NotAConfigHive { .. }
                    | Error::LoadedAlready { .. }
                    | Error::NotLoaded { .. }
                    | Error::MountUnknown { .. }
                    | Error::RegFile { .. }
                    | Error::NoSuchService { .. }
                    | Error::Io { .. }
            )
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
