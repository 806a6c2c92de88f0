//! The typed view of one event.

use jiff::Timestamp;
use serde::Serialize;

/// Provider name of the Service Control Manager in the System log.
pub const SCM_PROVIDER: &str = "Service Control Manager";
/// Provider GUID of the Service Control Manager, as the log writes it.
pub const SCM_GUID: &str = "{555908d1-a6d7-4695-8e1e-26931d2012f4}";

/// One event from the log.
///
/// Service Control Manager events get their meaning decoded ([`Self::kind`], [`Self::service`],
/// [`Self::state`], [`Self::error`] ...). Events of other providers (asked for with
/// [`Provider::Named`](crate::Provider) or [`Provider::Any`](crate::Provider)) carry only the
/// generic part and [`EventKind::Other`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When the record was written, UTC (the record header's time, as Windows shows it).
    pub time: Timestamp,
    /// The record's EventRecordID: increasing within one log, so it orders events.
    pub record_id: u64,
    /// The event identifier without its qualifiers (7036, not 0x40001b7c).
    pub event_id: u16,
    /// The provider's name (`Service Control Manager`).
    pub provider: String,
    pub kind: EventKind,
    /// The service's display name ("DHCP Client"), for the events that name one.
    pub service: Option<String>,
    /// The service's key name under `Services` ("Dhcp"), where the event carries it: 7036 and
    /// other events' `Binary` field (UTF-16LE, "Dhcp/4" for 7036), 7040's fourth parameter.
    pub service_key: Option<String>,
    /// The other service an event names: the dependency of 7001 and 7003, the group of 7002.
    pub related: Option<String>,
    /// The state a 7036 event reports.
    pub state: Option<ServiceState>,
    /// The start type change of a 7040 event.
    pub start_type: Option<StartTypeChange>,
    /// The Win32 error an event reports as `%%NNNN`.
    pub error: Option<ErrorCode>,
    /// Every `EventData` field as written, in order: named fields by name, unnamed ones as
    /// `param1`, `param2` ..., `Binary` as hex.
    pub data: Vec<(String, String)>,
    /// The event as the evtx crate renders it to XML, when asked for
    /// ([`Query::keep_xml`](crate::Query)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xml: Option<String>,
}

/// What a Service Control Manager event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// 7000: the service failed to start.
    FailedToStart,
    /// 7001: the service depends on a service that failed to start.
    DependencyFailed,
    /// 7002: the service depends on a group that failed to start.
    GroupDependencyFailed,
    /// 7003: the service depends on a service that does not exist.
    NonexistentDependency,
    /// 7009: a timeout was reached waiting for the service to connect.
    ConnectTimeout,
    /// 7011: a timeout was reached waiting for a transaction response.
    TransactionTimeout,
    /// 7022: the service hung on starting.
    HungOnStarting,
    /// 7023: the service terminated with an error.
    TerminatedWithError,
    /// 7024: the service terminated with a service-specific error.
    TerminatedWithServiceError,
    /// 7026: boot-start or system-start drivers failed to load.
    DriversFailedToLoad,
    /// 7031: the service terminated unexpectedly; a recovery action follows.
    CrashedWithRecovery,
    /// 7034: the service terminated unexpectedly.
    Crashed,
    /// 7036: the service entered a state.
    StateChanged,
    /// 7038: the service could not log on.
    LogonFailed,
    /// 7040: the start type was changed.
    StartTypeChanged,
    /// 7045: a service was installed.
    Installed,
    /// Any other event id, or another provider's event.
    Other,
}

impl EventKind {
    /// The kind of a Service Control Manager event id.
    pub fn from_scm_id(id: u16) -> Self {
        match id {
            7000 => Self::FailedToStart,
            7001 => Self::DependencyFailed,
            7002 => Self::GroupDependencyFailed,
            7003 => Self::NonexistentDependency,
            7009 => Self::ConnectTimeout,
            7011 => Self::TransactionTimeout,
            7022 => Self::HungOnStarting,
            7023 => Self::TerminatedWithError,
            7024 => Self::TerminatedWithServiceError,
            7026 => Self::DriversFailedToLoad,
            7031 => Self::CrashedWithRecovery,
            7034 => Self::Crashed,
            7036 => Self::StateChanged,
            7038 => Self::LogonFailed,
            7040 => Self::StartTypeChanged,
            7045 => Self::Installed,
            _ => Self::Other,
        }
    }

    /// Whether this kind means that a service did not run as it should (everything but state
    /// changes, start type changes, installs and unknown events).
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Self::StateChanged | Self::StartTypeChanged | Self::Installed | Self::Other
        )
    }
}

/// The `SERVICE_*` state numbers of `SERVICE_STATUS.dwCurrentState`, as 7036's `Binary` field
/// writes them after the key name ("Dhcp/4").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServiceState {
    Stopped,
    StartPending,
    StopPending,
    Running,
    ContinuePending,
    PausePending,
    Paused,
    /// A number outside 1..=7.
    Unknown(u32),
}

impl ServiceState {
    /// From the `SERVICE_*` number (1 stopped ... 7 paused).
    pub fn from_number(n: u32) -> Self {
        match n {
            1 => Self::Stopped,
            2 => Self::StartPending,
            3 => Self::StopPending,
            4 => Self::Running,
            5 => Self::ContinuePending,
            6 => Self::PausePending,
            7 => Self::Paused,
            other => Self::Unknown(other),
        }
    }

    /// From 7036's English `param2` ("running"), for logs whose `Binary` field is missing.
    pub fn from_english(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "stopped" => Self::Stopped,
            "start pending" => Self::StartPending,
            "stop pending" => Self::StopPending,
            "running" => Self::Running,
            "continue pending" => Self::ContinuePending,
            "pause pending" => Self::PausePending,
            "paused" => Self::Paused,
            _ => return None,
        })
    }

    /// Lower-case English words, as the event viewer shows them.
    pub fn as_str(self) -> String {
        match self {
            Self::Stopped => "stopped".into(),
            Self::StartPending => "start pending".into(),
            Self::StopPending => "stop pending".into(),
            Self::Running => "running".into(),
            Self::ContinuePending => "continue pending".into(),
            Self::PausePending => "pause pending".into(),
            Self::Paused => "paused".into(),
            Self::Unknown(n) => format!("state {n}"),
        }
    }
}

/// A service start type as 7040 and 7045 write it ("auto start"). The registry's `Start`
/// value: 0 boot, 1 system, 2 auto, 3 demand, 4 disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StartType {
    Boot,
    System,
    Auto,
    Demand,
    Disabled,
    /// Text we do not know (a localized log, say), kept as written.
    Other(String),
}

impl StartType {
    /// From the English words the SCM writes.
    pub fn from_english(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "boot start" => Self::Boot,
            "system start" => Self::System,
            "auto start" => Self::Auto,
            "demand start" => Self::Demand,
            "disabled" => Self::Disabled,
            _ => Self::Other(text.to_string()),
        }
    }

    /// The registry `Start` value of this start type.
    pub fn registry_value(&self) -> Option<u32> {
        match self {
            Self::Boot => Some(0),
            Self::System => Some(1),
            Self::Auto => Some(2),
            Self::Demand => Some(3),
            Self::Disabled => Some(4),
            Self::Other(_) => None,
        }
    }
}

/// The start type change a 7040 event reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartTypeChange {
    pub old: StartType,
    pub new: StartType,
}

/// A Win32 error code and, when we carry it, its English message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorCode {
    pub code: u32,
    pub message: Option<&'static str>,
    /// 7024's code is the service's own, which the event viewer still looks up in the system
    /// table: the message may not be what the service meant.
    pub service_specific: bool,
}

impl ErrorCode {
    /// From an insertion string `%%1058`; `None` for anything else.
    pub fn parse_insert(text: &str) -> Option<Self> {
        let digits = text.trim().strip_prefix("%%")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let code = digits.parse().ok()?;
        Some(Self {
            code,
            message: crate::win32::message(code),
            service_specific: false,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match crate::win32::win32_of_hresult(self.code) {
            Some(inner) => write!(f, "error {:#010x} (Win32 {inner})", self.code)?,
            None => write!(f, "error {}", self.code)?,
        }
        if let Some(message) = self.message {
            write!(f, " \"{message}\"")?;
        }
        Ok(())
    }
}

impl Event {
    /// One line saying what happened, in English, for people.
    pub fn summary(&self) -> String {
        let service = self
            .service
            .as_deref()
            .or(self.service_key.as_deref())
            .unwrap_or("?");
        let param = |name: &str| {
            self.data
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("?")
        };
        let related = self.related.as_deref().unwrap_or("?");
        let mut text = match self.kind {
            EventKind::FailedToStart => format!("{service} failed to start"),
            EventKind::DependencyFailed => {
                format!("{service} did not start: it depends on {related}, which failed to start")
            }
            EventKind::GroupDependencyFailed => {
                format!("{service} did not start: it depends on group {related}, which failed")
            }
            EventKind::NonexistentDependency => {
                format!("{service} did not start: it depends on {related}, which does not exist")
            }
            EventKind::ConnectTimeout => format!(
                "timeout ({} ms) waiting for {service} to connect",
                param("param1")
            ),
            EventKind::TransactionTimeout => format!(
                "timeout ({} ms) waiting for a transaction response from {service}",
                param("param1")
            ),
            EventKind::HungOnStarting => format!("{service} hung on starting"),
            EventKind::TerminatedWithError => format!("{service} terminated with an error"),
            EventKind::TerminatedWithServiceError => {
                format!("{service} terminated with a service-specific error")
            }
            EventKind::DriversFailedToLoad => format!(
                "boot/system-start drivers failed to load: {}",
                param("param1")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EventKind::CrashedWithRecovery => format!(
                "{service} terminated unexpectedly ({} time(s)); recovery: {}",
                param("param2"),
                param("param5")
            ),
            EventKind::Crashed => format!(
                "{service} terminated unexpectedly ({} time(s))",
                param("param2")
            ),
            EventKind::StateChanged => format!(
                "{service} entered the {} state",
                self.state
                    .map(ServiceState::as_str)
                    .unwrap_or_else(|| param("param2").to_string())
            ),
            EventKind::LogonFailed => format!("{service} could not log on as {}", param("param2")),
            EventKind::StartTypeChanged => format!(
                "start type of {service} changed from {} to {}",
                param("param2"),
                param("param3")
            ),
            EventKind::Installed => format!(
                "service installed: {} ({}, {}, {})",
                param("ServiceName"),
                param("ImagePath"),
                param("StartType"),
                param("AccountName")
            ),
            EventKind::Other => {
                let values: Vec<&str> = self
                    .data
                    .iter()
                    .filter(|(n, _)| n != "Binary")
                    .map(|(_, v)| v.as_str())
                    .collect();
                format!(
                    "{} event {}: {}",
                    self.provider,
                    self.event_id,
                    values.join(" | ")
                )
            }
        };
        if let Some(error) = &self.error {
            text.push_str(": ");
            text.push_str(&error.to_string());
        }
        text
    }
}
