//! `sc qc --json` and `sc query --json`: the library's types, serialised.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use winsvc::{ControlSet, Diagnosis, Service};

use super::OfflineSystem;

#[derive(Serialize)]
struct QcJson<'a> {
    schema_version: u32,
    control_set: &'a str,
    service: &'a Service,
    tag: u32,
}

/// `sc qc --json`: the service's configuration as the model read it.
pub fn qc(
    sys: &OfflineSystem,
    cs: &ControlSet,
    s: &Service,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let doc = QcJson {
        schema_version: 1,
        control_set: &cs.name,
        service: s,
        tag: super::render::tag(&sys.hive, s)?,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct QueryJson<'a> {
    schema_version: u32,
    control_set: &'a str,
    service: &'a Service,
    /// Whether the analysis predicts that the service starts (`diagnosis.verdict` says how).
    starts: bool,
    /// The Win32 error the start is predicted to fail with.
    predicted_error: Option<u32>,
    diagnosis: &'a Diagnosis,
    /// Whether the target holds a System log (`false`: the two fields below are unknown).
    system_log: bool,
    /// The newest 7036 event with a state: the last state the log recorded.
    last_state: Option<&'a evidence::Event>,
    /// The newest failure event (7000, 7001, 7022, 7023, 7031, 7038).
    last_error_event: Option<&'a evidence::Event>,
    /// How many failure events the newest chunks of the log hold
    /// (`rescue::target::SYSTEM_LOG_CHUNKS`).
    error_events: usize,
}

/// `sc query --json`; returns whether the service is predicted to start.
pub fn query(
    sys: &OfflineSystem,
    cs: &ControlSet,
    s: &Service,
    out: &mut dyn Write,
) -> Result<bool> {
    let events = sys.events(&s.name)?;
    let d = sys.diagnose(&s.name)?;
    let list = events.as_deref().unwrap_or_default();
    let failures: Vec<&evidence::Event> = list.iter().filter(|e| e.event_id != 7036).collect();
    let doc = QueryJson {
        schema_version: 1,
        control_set: &cs.name,
        service: s,
        starts: d.code().is_none(),
        predicted_error: d.code(),
        diagnosis: &d,
        system_log: events.is_some(),
        last_state: list
            .iter()
            .rev()
            .find(|e| e.event_id == 7036 && e.state.is_some()),
        last_error_event: failures.last().copied(),
        error_events: failures.len(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(doc.starts)
}
