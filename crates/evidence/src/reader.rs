//! Reading a log: chunks, the raw pre-filter, decoding, warnings.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use evtx::err::EvtxError;
use evtx::{ChunkFlags, EvtxChunkData, EvtxParser, EvtxRecord, HeaderFlags, ParserSettings};
use jiff::Timestamp;
use serde::Serialize;

use crate::decode::{build_event, parse_generic};
use crate::error::Error;
use crate::model::Event;
use crate::query::{Provider, Query};
use crate::scan::{scan_chunk, Needle, CHUNK_HEADER_SIZE};

/// EVTX file header block: chunks start after it.
const FILE_HEADER_SIZE: u64 = 4096;
/// Every chunk is 64 KiB.
const CHUNK_SIZE: u64 = 65536;

/// Something skipped or suspicious while reading; the rest of the log was still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The chunk's number in the file (0 is the first after the file header).
    pub chunk: Option<u64>,
    /// Where in the file: the chunk's start, or the record's when known.
    pub file_offset: Option<u64>,
    /// The record's EventRecordID when known.
    pub record_id: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(chunk) = self.chunk {
            write!(f, "chunk {chunk}")?;
            if let Some(offset) = self.file_offset {
                write!(f, " (file offset {offset:#x})")?;
            }
            f.write_str(": ")?;
        } else if let Some(offset) = self.file_offset {
            write!(f, "file offset {offset:#x}: ")?;
        }
        if let Some(id) = self.record_id {
            write!(f, "record {id}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Counts that say how much of the log was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Chunks whose header was valid.
    pub chunks: u64,
    /// Of those, chunks the evtx crate parsed because they held a candidate record.
    pub chunks_parsed: u64,
    /// Records whose header was read, of any provider.
    pub records: u64,
    /// Records rendered to check their provider (candidates of the raw pre-filter).
    pub records_rendered: u64,
    /// Events of the asked-for provider before the id/service/time/count filters.
    pub provider_events: u64,
    /// Oldest and newest record time in the log (of any provider).
    pub oldest: Option<Timestamp>,
    pub newest: Option<Timestamp>,
    /// What the file header says.
    pub header_chunk_count: u16,
    pub header_dirty: bool,
}

/// The result of reading one log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The events that passed the query, in record order.
    pub events: Vec<Event>,
    pub warnings: Vec<Warning>,
    pub stats: Stats,
}

/// Opens the .evtx file at `path` and reads it with [`read_log`].
pub fn read_log_file(path: impl AsRef<Path>, query: &Query) -> Result<Report, Error> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    read_log(file, query)
}

/// Reads an event log from any reader: a file, a buffer, or a file inside an NTFS volume.
///
/// Damage inside the log never fails the call: what cannot be read is skipped and named in
/// [`Report::warnings`]. Only a reader that fails outright, or data that is not an EVTX log,
/// gives `Err`.
pub fn read_log<R: Read + Seek>(mut reader: R, query: &Query) -> Result<Report, Error> {
    let len = reader
        .seek(SeekFrom::End(0))
        .map_err(|source| Error::Io { offset: 0, source })?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|source| Error::Io { offset: 0, source })?;
    if len < FILE_HEADER_SIZE {
        return Err(Error::NotEvtx {
            reason: format!("{len} bytes, shorter than the {FILE_HEADER_SIZE}-byte file header"),
        });
    }
    let needle = query.provider.needle_name().map(Needle::new);
    let mut ctx = Ctx {
        query,
        needle,
        // Indenting only matters for the XML we hand out.
        settings: Arc::new(ParserSettings::new().indent(query.keep_xml)),
        report: Report::default(),
        newest: None,
        oldest: None,
    };
    {
        let mut parser = EvtxParser::from_read_seek(&mut reader)
            .map_err(|e| Error::NotEvtx { reason: chain(&e) })?;
        ctx.header_warnings(&parser, len);
        for chunk in parser.chunks() {
            match chunk {
                Ok(mut data) => {
                    let number = data.number.unwrap_or(0);
                    ctx.chunk(&mut data, number, None);
                }
                Err(err) => ctx.chunk_error(&err),
            }
        }
    }
    ctx.trailing_chunk(&mut reader, len);
    Ok(ctx.finish())
}

struct Ctx<'q> {
    query: &'q Query,
    needle: Option<Needle>,
    settings: Arc<ParserSettings>,
    report: Report,
    newest: Option<u64>,
    oldest: Option<u64>,
}

/// The error and its sources, as one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn chunk_offset(number: u64) -> u64 {
    number
        .saturating_mul(CHUNK_SIZE)
        .saturating_add(FILE_HEADER_SIZE)
}

fn filetime_to_timestamp(ft: u64) -> Option<Timestamp> {
    // FILETIME counts 100 ns since 1601-01-01; the Unix epoch is 11644473600 s later.
    let secs = i64::try_from(ft / 10_000_000).ok()? - 11_644_473_600;
    let nanos = i32::try_from(ft % 10_000_000).ok()? * 100;
    Timestamp::new(secs, nanos).ok()
}

impl Ctx<'_> {
    fn warn(
        &mut self,
        chunk: Option<u64>,
        file_offset: Option<u64>,
        record_id: Option<u64>,
        message: String,
    ) {
        self.report.warnings.push(Warning {
            chunk,
            file_offset,
            record_id,
            message,
        });
    }

    fn header_warnings<R: Read + Seek>(&mut self, parser: &EvtxParser<R>, len: u64) {
        let header = parser.header();
        self.report.stats.header_chunk_count = header.chunk_count;
        self.report.stats.header_dirty = header.flags.contains(HeaderFlags::DIRTY);
        if !header.validate_checksum() {
            let message = format!(
                "file header CRC32 invalid (stored {:#010x}, computed {:#010x}); the chunks are read anyway",
                header.checksum, header.computed_checksum
            );
            self.warn(None, Some(0), None, message);
        }
        if self.report.stats.header_dirty {
            self.warn(
                None,
                Some(0),
                None,
                "file header has the DIRTY flag: the log was not closed cleanly; every chunk in the file is read, not only those the header counts".into(),
            );
        }
        let whole = (len - FILE_HEADER_SIZE) / CHUNK_SIZE;
        if whole < u64::from(header.chunk_count) {
            let message = format!(
                "file header counts {} chunks but the file holds {whole} whole chunks",
                header.chunk_count
            );
            self.warn(None, Some(0), None, message);
        }
    }

    fn chunk_error(&mut self, err: &EvtxError) {
        let chunk = match err {
            EvtxError::FailedToParseChunk { chunk_id, .. } => Some(*chunk_id),
            _ => None,
        };
        let message = format!("chunk skipped: {}", chain(err));
        self.warn(chunk, chunk.map(chunk_offset), None, message);
    }

    /// One chunk. `cut` is how many bytes of it the file really holds, when it is cut off.
    fn chunk(&mut self, data: &mut EvtxChunkData, number: u64, cut: Option<usize>) {
        let offset = chunk_offset(number);
        self.report.stats.chunks += 1;
        if data.header.flags.contains(ChunkFlags::NO_CRC32) {
            self.warn(
                Some(number),
                Some(offset),
                None,
                "chunk has no CRC32 (NO_CRC32 flag): its integrity cannot be checked".into(),
            );
        } else {
            if !data.validate_header_checksum() {
                self.warn(
                    Some(number),
                    Some(offset),
                    None,
                    "chunk header CRC32 invalid; its records are read anyway".into(),
                );
            }
            if cut.is_none() && !data.validate_data_checksum() {
                self.warn(
                    Some(number),
                    Some(offset),
                    None,
                    "chunk records CRC32 invalid; its records are read anyway".into(),
                );
            }
        }
        let valid = cut.unwrap_or(data.data.len()).min(data.data.len());
        let scan = scan_chunk(&data.data[..valid], self.needle.as_ref());
        if !scan.irregular {
            self.report.stats.records += scan.records;
            self.note_time(scan.newest);
            self.note_time(scan.oldest);
            if scan.candidates.is_empty() {
                return;
            }
        }
        let settings = Arc::clone(&self.settings);
        let mut chunk = match data.parse(settings) {
            Ok(chunk) => chunk,
            Err(err) => {
                self.warn(
                    Some(number),
                    Some(offset),
                    None,
                    format!("chunk skipped: {}", chain(&err)),
                );
                return;
            }
        };
        self.report.stats.chunks_parsed += 1;
        for record in chunk.iter() {
            let record = match record {
                Ok(record) => record,
                Err(err) => {
                    let (at, id) = match &err {
                        EvtxError::FailedToReadRecordAt { offset: o, .. } => {
                            (Some(offset + o), None)
                        }
                        EvtxError::FailedToParseRecord { record_id, .. } => {
                            (Some(offset), Some(*record_id))
                        }
                        _ => (Some(offset), None),
                    };
                    self.warn(
                        Some(number),
                        at,
                        id,
                        format!("record skipped: {}", chain(&err)),
                    );
                    continue;
                }
            };
            if scan.irregular {
                self.report.stats.records += 1;
                let ft = timestamp_to_filetime(record.timestamp);
                self.note_time(ft);
            } else if scan
                .candidates
                .binary_search(&record.binxml_offset)
                .is_err()
            {
                continue;
            }
            self.record(record, number, offset);
        }
    }

    fn note_time(&mut self, ft: Option<u64>) {
        let Some(ft) = ft else { return };
        // Zero and far-future times are damage, not the newest event.
        if filetime_to_timestamp(ft).is_none() {
            return;
        }
        self.newest = Some(self.newest.map_or(ft, |n| n.max(ft)));
        self.oldest = Some(self.oldest.map_or(ft, |n| n.min(ft)));
    }

    fn record(&mut self, record: EvtxRecord<'_>, number: u64, chunk_offset: u64) {
        let id = record.event_record_id;
        let time = record.timestamp;
        let at = Some(chunk_offset + record.binxml_offset.saturating_sub(24));
        self.report.stats.records_rendered += 1;
        let json = match record.clone().into_json_bytes() {
            Ok(json) => json.data,
            Err(err) => {
                self.warn(
                    Some(number),
                    at,
                    Some(id),
                    format!("record not rendered: {}", chain(&err)),
                );
                return;
            }
        };
        let generic = match parse_generic(&json) {
            Ok(g) => g,
            Err(reason) => {
                self.warn(
                    Some(number),
                    at,
                    Some(id),
                    format!("record JSON not understood: {reason}"),
                );
                return;
            }
        };
        let wanted = match &self.query.provider {
            Provider::ServiceControlManager => generic.is_scm(),
            Provider::Named(name) => generic.provider.eq_ignore_ascii_case(name),
            Provider::Any => true,
        };
        if !wanted {
            return;
        }
        self.report.stats.provider_events += 1;
        let mut event = build_event(generic, time, id);
        if !self.query.matches(&event) {
            return;
        }
        if self.query.keep_xml {
            match record.into_xml() {
                Ok(xml) => event.xml = Some(xml.data),
                Err(err) => self.warn(
                    Some(number),
                    at,
                    Some(id),
                    format!("record XML not rendered: {}", chain(&err)),
                ),
            }
        }
        self.report.events.push(event);
    }

    /// A file that ends inside a chunk: the evtx crate stops at the last whole chunk, but the
    /// records before the cut are intact. We pad the chunk with zeroes (where the records end,
    /// as far as both walks are concerned) and read what it holds.
    fn trailing_chunk<R: Read + Seek>(&mut self, reader: &mut R, len: u64) {
        let number = (len - FILE_HEADER_SIZE) / CHUNK_SIZE;
        let offset = chunk_offset(number);
        let have = len - offset;
        if have == 0 {
            return;
        }
        if have < CHUNK_HEADER_SIZE as u64 {
            self.warn(
                Some(number),
                Some(offset),
                None,
                format!("file ends {have} bytes into the chunk, inside its header: ignored"),
            );
            return;
        }
        // have < CHUNK_SIZE, so the buffer is at most 64 KiB.
        let mut buf = Vec::with_capacity(CHUNK_SIZE as usize);
        let read = reader
            .seek(SeekFrom::Start(offset))
            .and_then(|_| reader.by_ref().take(have).read_to_end(&mut buf));
        if let Err(err) = read {
            self.warn(
                Some(number),
                Some(offset),
                None,
                format!("cut-off chunk not read: {err}"),
            );
            return;
        }
        let got = buf.len();
        if buf.iter().all(|&b| b == 0) {
            return;
        }
        buf.resize(CHUNK_SIZE as usize, 0);
        match EvtxChunkData::new(buf, false) {
            Ok(mut data) => {
                let before = self.report.stats.records;
                data.number = Some(number);
                self.chunk(&mut data, number, Some(got));
                let recovered = self.report.stats.records - before;
                self.warn(
                    Some(number),
                    Some(offset),
                    None,
                    format!("file ends {got} bytes into this chunk (of {CHUNK_SIZE}): {recovered} records before the cut were read, the rest is lost"),
                );
            }
            Err(err) => self.warn(
                Some(number),
                Some(offset),
                None,
                format!("cut-off chunk skipped: {}", chain(&err)),
            ),
        }
    }

    fn finish(mut self) -> Report {
        let mut report = std::mem::take(&mut self.report);
        report.stats.newest = self.newest.and_then(filetime_to_timestamp);
        report.stats.oldest = self.oldest.and_then(filetime_to_timestamp);
        // Chunks come in the order Windows reads them, but a cut-off chunk comes last and a
        // damaged log may hold chunks out of order: the record id orders events.
        report.events.sort_by_key(|e| e.record_id);
        let mut cutoff = self.query.since;
        if let (Some(within), Some(newest)) = (self.query.within, report.stats.newest) {
            let from = newest.checked_sub(within).unwrap_or(Timestamp::MIN);
            cutoff = Some(cutoff.map_or(from, |c| c.max(from)));
        }
        if let Some(cutoff) = cutoff {
            report.events.retain(|e| e.time >= cutoff);
        }
        if let Some(max) = self.query.max {
            let excess = report.events.len().saturating_sub(max);
            report.events.drain(..excess);
        }
        report
    }
}

fn timestamp_to_filetime(ts: Timestamp) -> Option<u64> {
    let secs = ts.as_second().checked_add(11_644_473_600)?;
    let ft = i128::from(secs) * 10_000_000 + i128::from(ts.subsec_nanosecond() / 100);
    u64::try_from(ft).ok()
}
