//! `winrescue events`: the Service Control Manager events of a Windows System log.
//!
//! The Azure "DHCP Client service is not running" article starts from these events (7022 hung
//! on starting, 7000/7001 with error 1058 when the service is disabled, 7036 state changes).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use evidence::{Provider, Query, Report, SignedDuration, Timestamp};
use serde::Serialize;

/// Where the System log sits on a Windows volume.
const SYSTEM_LOG: [&str; 5] = ["Windows", "System32", "winevt", "Logs", "System.evtx"];

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// A disk image or block device (raw, VHD, VHDX: the System log of its Windows), a folder
    /// holding Windows/System32/winevt/Logs/System.evtx (the root of a Windows volume; names
    /// matched ignoring case), or an .evtx file.
    pub target: PathBuf,
    /// Provider whose events to show: "Service Control Manager" (default), another provider's
    /// name, or "*" for all.
    #[arg(long)]
    pub provider: Option<String>,
    /// Event ids to show, comma-separated (7022,7023).
    #[arg(long = "id", value_delimiter = ',')]
    pub ids: Vec<u16>,
    /// Only events about this service, by key name (Dhcp) or display name (DHCP Client).
    #[arg(long)]
    pub service: Option<String>,
    /// Only events this long before the log's newest record (24h, 7d, 1d12h): the VM is off, so
    /// the window ends at its last record, not now.
    #[arg(long, value_parser = parse_within)]
    pub within: Option<SignedDuration>,
    /// Only events at or after this time (2020-01-01T00:00:00Z).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<Timestamp>,
    /// Only the newest N matching events.
    #[arg(long)]
    pub max: Option<usize>,
    /// One JSON document: the events, the warnings and the counts.
    #[arg(long, conflicts_with = "xml")]
    pub json: bool,
    /// The events' XML as the evtx crate renders it.
    #[arg(long)]
    pub xml: bool,
}

fn parse_within(text: &str) -> std::result::Result<SignedDuration, String> {
    evidence::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_since(text: &str) -> std::result::Result<Timestamp, String> {
    evidence::parse_time(text).map_err(|e| e.to_string())
}

impl EventsArgs {
    fn query(&self) -> Query {
        Query {
            provider: self
                .provider
                .as_deref()
                .map(Provider::from_arg)
                .unwrap_or_default(),
            event_ids: self.ids.clone(),
            service: self.service.clone(),
            within: self.within,
            since: self.since,
            max: self.max,
            keep_xml: self.xml,
            // The whole log, where a diagnosis reads its newest chunks.
            newest_chunks: None,
        }
    }
}

/// Runs `winrescue events`.
pub fn run(args: EventsArgs, out: &mut dyn Write) -> Result<ExitCode> {
    if is_disk(&args.target) {
        // A disk image or block device: the log is read out of the Windows volume.
        let target = rescue::target::Target::open(&args.target, false)?;
        let install = target.choose(None)?.clone();
        let bytes = target
            .read_file(&install, rescue::target::SYSTEM_EVTX)?
            .with_context(|| {
                format!(
                    "{}: the Windows volume holds no {}",
                    crate::input::shown(&args.target),
                    rescue::target::SYSTEM_EVTX
                )
            })?;
        let source = format!(
            "{}:{}",
            crate::input::shown(&args.target),
            rescue::target::SYSTEM_EVTX
        );
        return run_on_reader(std::io::Cursor::new(bytes), &source, &args, out);
    }
    let path = resolve_target(&args.target)?;
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    run_on_reader(file, &path.display().to_string(), &args, out)
}

/// The seam for logs that are not plain files: the disk layer hands a reader over
/// `System.evtx` inside an NTFS volume, `source` names it in the output.
pub fn run_on_reader<R: Read + Seek>(
    reader: R,
    source: &str,
    args: &EventsArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let query = args.query();
    let report = evidence::read_log(reader, &query).with_context(|| source.to_string())?;
    // stdout is line-buffered: without this, pretty JSON costs a write(2) per line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    if args.json {
        print_json(source, &report, &mut out)?;
    } else if args.xml {
        print_xml(&report, &mut out)?;
    } else {
        print_text(source, &query, &report, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// An .evtx file as it is; a folder: the System log below it, path components matched ignoring
/// case (a volume mounted from Linux keeps Windows' mixed case, copies may not).
/// A file that is not an event log ("ElfFile" signature) but holds a disk the disk layer
/// recognises (a partition table or a bare NTFS volume, in any container). Anything else is
/// handed to the log reader, which says what is wrong with it.
fn is_disk(target: &Path) -> bool {
    use std::io::Read as _;
    if target.to_str().is_some_and(vdisk::remote::is_url) {
        return true;
    }
    if std::fs::metadata(target)
        .map(|m| m.is_dir())
        .unwrap_or(true)
    {
        return false;
    }
    let mut head = [0u8; 8];
    if File::open(target)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_err()
        || &head == b"ElfFile\0"
    {
        return false;
    }
    let xz = head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]);
    xz || vdisk::Disk::open(target)
        .ok()
        .and_then(|d| vdisk::read_partitions(&d).ok())
        .is_some_and(|t| t.kind != vdisk::TableKind::Unknown)
}

fn resolve_target(target: &Path) -> Result<PathBuf> {
    let meta =
        std::fs::metadata(target).with_context(|| format!("cannot open {}", target.display()))?;
    if !meta.is_dir() {
        return Ok(target.to_path_buf());
    }
    let mut dir = target.to_path_buf();
    for (i, want) in SYSTEM_LOG.iter().enumerate() {
        let found = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(want))
            });
        match found {
            Some(entry) => dir = entry.path(),
            // A folder that is already the Logs folder.
            None if i == 0 && dir.join("System.evtx").is_file() => {
                return Ok(dir.join("System.evtx"));
            }
            None => bail!(
                "{}: no {} below it (expected a Windows volume's root or an .evtx file)",
                target.display(),
                SYSTEM_LOG.join("/")
            ),
        }
    }
    Ok(dir)
}

fn short_time(t: Timestamp) -> String {
    evidence::show_time(t)
}

fn print_text(source: &str, query: &Query, report: &Report, out: &mut dyn Write) -> Result<()> {
    let stats = &report.stats;
    let provider = match &query.provider {
        Provider::Named(name) => name.as_str(),
        Provider::Any => "any provider",
        _ => evidence::SCM_PROVIDER,
    };
    writeln!(
        out,
        "{source}: {} event(s) shown of {} from {provider}; {} records read{}",
        report.events.len(),
        stats.provider_events,
        stats.records,
        stats
            .newest
            .map(|t| format!(", newest {}", short_time(t)))
            .unwrap_or_default()
    )?;
    if !report.events.is_empty() {
        writeln!(
            out,
            "{:<20}  {:>5}  {:>8}  {:<28}  WHAT",
            "TIME (UTC)", "ID", "RECORD", "SERVICE"
        )?;
    }
    for e in &report.events {
        let service = match (&e.service_key, &e.service) {
            (Some(key), Some(name)) if !key.eq_ignore_ascii_case(name) => format!("{key} ({name})"),
            (Some(key), _) => key.clone(),
            (None, Some(name)) => name.clone(),
            (None, None) => "-".into(),
        };
        writeln!(
            out,
            "{:<20}  {:>5}  {:>8}  {:<28}  {}",
            short_time(e.time),
            e.event_id,
            e.record_id,
            service,
            e.summary()
        )?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    schema_version: u32,
    source: &'a str,
    events: &'a [evidence::Event],
    warnings: &'a [evidence::Warning],
    stats: &'a evidence::Stats,
}

fn print_json(source: &str, report: &Report, out: &mut dyn Write) -> Result<()> {
    let doc = JsonDoc {
        schema_version: 1,
        source,
        events: &report.events,
        warnings: &report.warnings,
        stats: &report.stats,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

fn print_xml(report: &Report, out: &mut dyn Write) -> Result<()> {
    for e in &report.events {
        if let Some(xml) = &e.xml {
            writeln!(out, "{}", xml.trim_end())?;
        }
    }
    for w in &report.warnings {
        // "--" may not occur inside an XML comment.
        writeln!(
            out,
            "<!-- warning: {} -->",
            w.to_string().replace("--", "- -")
        )?;
    }
    Ok(())
}
