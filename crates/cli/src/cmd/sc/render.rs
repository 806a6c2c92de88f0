//! sc.exe's output layout: `sc qc`'s block and, offline, `sc query`'s.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use regf::{Data, Hive};
use winsvc::{analyze, codes, types, Field, Service};

use super::OfflineSystem;

fn type_name(t: u32) -> String {
    let base = match t & !types::INTERACTIVE {
        types::KERNEL_DRIVER => "KERNEL_DRIVER",
        types::FILE_SYSTEM_DRIVER => "FILE_SYSTEM_DRIVER",
        types::ADAPTER => "ADAPTER",
        types::RECOGNIZER_DRIVER => "RECOGNIZER_DRIVER",
        types::OWN_PROCESS => "WIN32_OWN_PROCESS",
        types::SHARE_PROCESS => "WIN32_SHARE_PROCESS",
        0x30 => "WIN32",
        0x50 => "USER_OWN_PROCESS",
        0x60 => "USER_SHARE_PROCESS",
        _ => "(unknown type)",
    };
    if t & types::INTERACTIVE != 0 {
        format!("{base}  (interactive)")
    } else {
        base.to_string()
    }
}

fn start_name(s: u32) -> &'static str {
    match s {
        0 => "BOOT_START",
        1 => "SYSTEM_START",
        2 => "AUTO_START",
        3 => "DEMAND_START",
        4 => "DISABLED",
        _ => "(invalid)",
    }
}

fn error_name(e: u32) -> &'static str {
    match e {
        0 => "IGNORE",
        1 => "NORMAL",
        2 => "SEVERE",
        3 => "CRITICAL",
        _ => "(invalid)",
    }
}

/// A field that is not a plain value, as text (`(absent)`, `(REG_SZ "2", expected REG_DWORD)`).
fn odd<T>(f: &Field<T>, expected: &str) -> String {
    f.describe(|_| String::new(), expected)
}

fn line(out: &mut dyn Write, name: &str, value: &str) -> std::io::Result<()> {
    writeln!(out, "        {name:<19}: {value}")
}

fn cont(out: &mut dyn Write, value: &str) -> std::io::Result<()> {
    writeln!(out, "        {:<19}: {value}", "")
}

fn type_line(s: &Service) -> String {
    match s.service_type.ok() {
        Some(t) => format!("{t:<3x} {}", type_name(*t)),
        None => odd(&s.service_type, "REG_DWORD"),
    }
}

fn start_line(s: &Service) -> String {
    match s.start.ok() {
        Some(v) => {
            let delayed = *v == 2 && s.delayed_autostart.ok() == Some(&1) && !s.is_driver();
            format!(
                "{v:<3} {}{}",
                start_name(*v),
                if delayed { "  (DELAYED)" } else { "" }
            )
        }
        None => odd(&s.start, "REG_DWORD"),
    }
}

/// The service's `Tag` (its place in its load-order group), 0 when it has none.
pub fn tag(hive: &Hive<Vec<u8>>, s: &Service) -> Result<u32> {
    Ok(
        match hive
            .key(&s.key_path)?
            .map(|k| k.value("Tag"))
            .transpose()?
            .flatten()
            .map(|v| v.data())
            .transpose()?
        {
            Some(Data::Dword(t)) => t,
            _ => 0,
        },
    )
}

/// `sc qc`'s block for one service.
pub fn render_qc(hive: &Hive<Vec<u8>>, s: &Service, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "SERVICE_NAME: {}", s.name)?;
    line(out, "TYPE", &type_line(s))?;
    line(out, "START_TYPE", &start_line(s))?;
    let ec = match s.error_control.ok() {
        Some(e) => format!("{e:<3} {}", error_name(*e)),
        None => odd(&s.error_control, "REG_DWORD"),
    };
    line(out, "ERROR_CONTROL", &ec)?;
    line(
        out,
        "BINARY_PATH_NAME",
        s.image_path.ok().map(String::as_str).unwrap_or(""),
    )?;
    line(
        out,
        "LOAD_ORDER_GROUP",
        s.group.ok().map(String::as_str).unwrap_or(""),
    )?;
    let tag = tag(hive, s)?;
    line(out, "TAG", &tag.to_string())?;
    line(
        out,
        "DISPLAY_NAME",
        s.display_name.ok().map(String::as_str).unwrap_or(&s.name),
    )?;
    let deps: Vec<String> = s
        .service_dependencies()
        .into_iter()
        .chain(s.group_dependencies().into_iter().map(|g| format!("+{g}")))
        .collect();
    match deps.split_first() {
        None => line(out, "DEPENDENCIES", "")?,
        Some((first, rest)) => {
            line(out, "DEPENDENCIES", first)?;
            for d in rest {
                cont(out, d)?;
            }
        }
    }
    let account = match &s.object_name {
        Field::Ok(a) => a.clone(),
        Field::Missing if s.is_driver() => String::new(),
        Field::Missing => "LocalSystem".into(),
        other => odd(other, "REG_SZ"),
    };
    line(out, "SERVICE_START_NAME", &account)?;
    Ok(())
}

fn state_number(s: evidence::ServiceState) -> (u32, &'static str) {
    use evidence::ServiceState as S;
    match s {
        S::Stopped => (1, "STOPPED"),
        S::StartPending => (2, "START_PENDING"),
        S::StopPending => (3, "STOP_PENDING"),
        S::Running => (4, "RUNNING"),
        S::ContinuePending => (5, "CONTINUE_PENDING"),
        S::PausePending => (6, "PAUSE_PENDING"),
        S::Paused => (7, "PAUSED"),
        S::Unknown(n) => (n, "UNKNOWN"),
        _ => (0, "UNKNOWN"),
    }
}

/// `sc query`, offline: returns whether the service is predicted to start.
pub fn render_query(
    sys: &OfflineSystem,
    s: &Service,
    target: &Path,
    out: &mut dyn Write,
) -> Result<bool> {
    let cs = sys.model.boot_set()?;
    writeln!(
        out,
        "[SC] offline: {} is the disk of a VM that is not running. STATE is the last state its System log recorded; PREDICTED_START is what the Service Control Manager would do with the registry of {}, the control set Windows boots next (Select\\Default).",
        crate::input::shown(target),
        cs.name
    )?;
    writeln!(out)?;
    writeln!(out, "SERVICE_NAME: {}", s.name)?;
    line(out, "TYPE", &type_line(s))?;
    let events = sys.events(&s.name)?;
    match &events {
        None => line(out, "STATE", "UNKNOWN  (no System log in this target)")?,
        Some(list) => match list
            .iter()
            .rev()
            .find(|e| e.event_id == 7036 && e.state.is_some())
        {
            Some(e) => {
                let (n, name) = state_number(e.state.expect("checked"));
                let count = list.iter().filter(|e| e.event_id == 7036).count();
                line(out, "STATE", &format!("{n}  {name}  (last of {count} recorded state changes: event 7036 at {}, record {})", evidence::show_time(e.time), e.record_id))?
            }
            None => line(
                out,
                "STATE",
                "UNKNOWN  (no 7036 event for this service in the System log)",
            )?,
        },
    }
    line(out, "START_TYPE", &start_line(s))?;
    let d = sys.diagnose(&s.name)?;
    let starts = d.code().is_none();
    match d.code() {
        Some(code) => {
            line(
                out,
                "PREDICTED_START",
                &format!("FAILS  {code}  (0x{code:x})  {}", codes::symbol(code)),
            )?;
            for c in &d.chain {
                cont(out, &c.text)?;
            }
        }
        None => {
            let what = match (&d.verdict, d.starts_at_boot) {
                (analyze::Verdict::Unverified, _) => "UNVERIFIED  (nothing found that stops it, but something cannot be checked offline)",
                (_, true) => "STARTS  (nothing in the registry stops it)",
                (_, false) => "CAN START  (nothing stops it, but it is not started at boot)",
            };
            line(out, "PREDICTED_START", what)?;
            for n in d.notes.iter().filter(|n| {
                matches!(
                    n.kind,
                    analyze::CauseKind::AccountUnverifiable { .. }
                        | analyze::CauseKind::DemandStart
                )
            }) {
                cont(out, &n.text)?;
            }
        }
    }
    if let Some(list) = &events {
        let failures: Vec<&evidence::Event> = list.iter().filter(|e| e.event_id != 7036).collect();
        match failures.last() {
            None => line(
                out,
                "LAST_ERROR_EVENT",
                "none in the System log (7000, 7001, 7022, 7023, 7031, 7038)",
            )?,
            Some(e) => {
                let code = e
                    .error
                    .as_ref()
                    .map(|c| format!(" [{}]", c.code))
                    .unwrap_or_default();
                line(
                    out,
                    "LAST_ERROR_EVENT",
                    &format!(
                        "{} at {}, record {}: {}{code}",
                        e.event_id,
                        evidence::show_time(e.time),
                        e.record_id,
                        e.summary()
                    ),
                )?;
                if failures.len() > 1 {
                    cont(out, &format!("({} such events in the log)", failures.len()))?;
                }
            }
        }
    }
    Ok(starts)
}
