//! Runs an edit of `reg` or `sc config` through `wincmd::offline::Session` and prints what it
//! changed, the start prediction and the outcome, as text or as JSON.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use regf::Data;
use rescue::edit::EditOutcome;
use rescue::guard::Prediction;
use serde::Serialize;
use wincmd::change::{Applied, Before};
use wincmd::offline::{Session, WriteOpts};

use crate::cmd::lib_error;
use crate::printer::{reg_text, type_name};

/// What an edit reports: a line of text and a JSON record for each change.
#[derive(Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub records: Vec<serde_json::Value>,
    pub changed: bool,
}

impl Report {
    /// Records `applied` (as `shown` words it in text); in JSON each record also gets `tag`
    /// (the line of the script or file it came from, the control set it was written in).
    pub fn add(
        &mut self,
        applied: &[Applied],
        tag: Option<(&str, serde_json::Value)>,
        shown: impl Fn(&Applied) -> Option<String>,
    ) {
        for a in applied {
            self.changed |= a.changes();
            self.lines.extend(shown(a));
            let mut record = serde_json::to_value(a).unwrap_or_default();
            if let (Some((k, v)), Some(obj)) = (&tag, record.as_object_mut()) {
                obj.insert(k.to_string(), v.clone());
            }
            self.records.push(record);
        }
    }
}

/// Data as `reg query` shows it, read back as it will be stored (so that text shows exactly
/// what a reader of the hive will see).
pub fn stored(d: &Data) -> (String, String) {
    let t = d.value_type();
    (type_name(t), reg_text(&Data::decode(t, &d.to_bytes())))
}

/// A reg.exe change as `reg add` / `reg delete` words it; `shown` is the key as typed.
pub fn reg_line(a: &Applied) -> Option<String> {
    Some(match a {
        Applied::CreateKey { key } => format!("create key {key}"),
        Applied::DeleteKey { key } => format!("delete key {key} and everything below it"),
        Applied::DeleteValue { key, name } => format!("delete value {key} {name:?}"),
        Applied::SetValue {
            key,
            name,
            data,
            before,
        } => {
            let (t, new) = stored(data);
            match before {
                Before::Same => format!("unchanged {key} {name:?} = {t} {new}"),
                Before::Absent => format!("set {key} {name:?} = {t} {new} (new value)"),
                Before::Other(old) => {
                    let (ot, old) = stored(old);
                    format!("set {key} {name:?} = {t} {new} (was {ot} {old})")
                }
            }
        }
    })
}

/// The JSON document of an edit.
#[derive(Serialize)]
struct EditJson<'a> {
    schema_version: u32,
    dry_run: bool,
    changed: bool,
    changes: &'a [serde_json::Value],
    outcome: Option<&'a EditOutcome>,
}

/// Edits hives of the target as one transaction through rescue's journal: every hive changed
/// is written, or none. `edit` makes the changes and records them in the report.
pub fn edit_target(
    path: &Path,
    opts: WriteOpts,
    json: bool,
    out: &mut dyn Write,
    edit: impl FnOnce(&mut Session, &mut Report) -> Result<()>,
) -> Result<Option<EditOutcome>> {
    let mut session = Session::open(path, opts).map_err(lib_error)?;
    let mut report = Report::default();
    edit(&mut session, &mut report)?;
    let print_json = |outcome: Option<&EditOutcome>, out: &mut dyn Write| -> Result<()> {
        let doc = EditJson {
            schema_version: 1,
            dry_run: opts.dry_run,
            changed: report.changed,
            changes: &report.records,
            outcome,
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        Ok(())
    };
    if !json {
        for l in &report.lines {
            writeln!(out, "{l}")?;
        }
    }
    if !report.changed {
        if json {
            print_json(None, out)?;
        } else {
            writeln!(out, "nothing to change")?;
        }
        return Ok(None);
    }
    let outcome = match session.commit("reg / sc edit") {
        Ok(o) => o,
        Err(e) => {
            if let rescue::Error::WouldBreak { prediction } = &e {
                if !json {
                    print_prediction(prediction, out)?;
                }
            }
            return Err(crate::cmd::refusal(e));
        }
    };
    if json {
        print_json(Some(&outcome), out)?;
        return Ok(Some(outcome));
    }
    print_outcome(&outcome, opts.dry_run, out)?;
    Ok(Some(outcome))
}

fn print_outcome(outcome: &EditOutcome, dry_run: bool, out: &mut dyn Write) -> Result<()> {
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
        if dry_run {
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
    Ok(())
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
