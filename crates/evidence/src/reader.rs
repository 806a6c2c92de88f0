//! Reading a log: chunks, the raw pre-filter, decoding, warnings.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use evtx::err::EvtxError;
use evtx::{
    ChunkFlags, EvtxChunkData, EvtxFileHeader, EvtxParser, EvtxRecord, HeaderFlags, ParserSettings,
};
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
    /// Chunks in use that were left out, older than the newest ones asked for
    /// ([`Query::newest_chunks`]).
    pub older_chunks_not_read: u64,
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
pub fn read_log<R: Read + Seek>(reader: R, query: &Query) -> Result<Report, Error> {
    read_log_prefetching(reader, query, &mut |_| {})
}

/// Told the byte ranges (offset, length) of the log file a read is about to make.
pub type Prefetch<'a> = dyn FnMut(&[(u64, u64)]) + 'a;

/// [`read_log`], telling `prefetch` the byte ranges (offset, length) of the file it is about to
/// read, before it reads them: a reader over a network fetches them together, not one read
/// after the other.
pub fn read_log_prefetching<R: Read + Seek>(
    mut reader: R,
    query: &Query,
    prefetch: &mut Prefetch<'_>,
) -> Result<Report, Error> {
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
    if let Some(n) = query.newest_chunks {
        if let Some(report) = read_newest(&mut reader, len, query, n, prefetch)? {
            return Ok(report);
        }
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|source| Error::Io { offset: 0, source })?;
    }
    prefetch(&[(0, len)]);
    let mut ctx = Ctx::new(query);
    {
        let mut parser = EvtxParser::from_read_seek(&mut reader)
            .map_err(|e| Error::NotEvtx { reason: chain(&e) })?;
        ctx.header_warnings(parser.header(), len, false);
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

/// The newest `n` chunks of the log: `None` when the header cannot say which chunks those are
/// (its chunk numbers lie outside the file, or the file ends inside a chunk), and every chunk
/// is read instead.
///
/// A log closed cleanly is taken at its header's word: its current chunk and the ones before
/// it, down to its oldest (across the end of the file when it wrapped). In a log not closed
/// cleanly (a snapshot of a running machine) the header lags behind the chunks, and a chunk
/// may be missing between two written ones, so every chunk's header is read and the chunks
/// with the highest record numbers are the newest: the same records the whole read finds
/// there, parsed for the newest chunks only.
fn read_newest<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    query: &Query,
    n: u64,
    prefetch: &mut Prefetch<'_>,
) -> Result<Option<Report>, Error> {
    let mut head = vec![0u8; FILE_HEADER_SIZE as usize];
    reader
        .seek(SeekFrom::Start(0))
        .and_then(|_| reader.read_exact(&mut head))
        .map_err(|source| Error::Io { offset: 0, source })?;
    let header =
        EvtxFileHeader::from_bytes(&head).map_err(|e| Error::NotEvtx { reason: chain(&e) })?;
    let whole = (len - FILE_HEADER_SIZE) / CHUNK_SIZE;
    let (first, last) = (header.first_chunk_number, header.last_chunk_number);
    if n == 0
        || first >= whole
        || last >= whole
        || !(len - FILE_HEADER_SIZE).is_multiple_of(CHUNK_SIZE)
    {
        return Ok(None);
    }
    let mut ctx = Ctx::new(query);
    ctx.header_warnings(&header, len, true);
    let (mut numbers, in_use): (Vec<u64>, u64) = if header.flags.contains(HeaderFlags::DIRTY) {
        // (last record id, chunk) of every chunk, newest first.
        let headers: Vec<(u64, u64)> = (0..whole)
            .map(|k| (chunk_offset(k), CHUNK_HEADER_SIZE as u64))
            .collect();
        prefetch(&headers);
        let mut found = Vec::new();
        for k in 0..whole {
            let mut h = [0u8; CHUNK_HEADER_SIZE];
            let offset = chunk_offset(k);
            reader
                .seek(SeekFrom::Start(offset))
                .and_then(|_| reader.read_exact(&mut h))
                .map_err(|source| Error::Io { offset, source })?;
            if let Some((_, to)) = chunk_record_ids(&h) {
                found.push((to, k));
            }
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        let in_use = found.len() as u64;
        let newest = found.into_iter().take(n as usize).map(|(_, k)| k).collect();
        (newest, in_use)
    } else {
        let in_use = if first <= last {
            last - first + 1
        } else {
            whole - first + last + 1
        };
        let newest = (0..n.min(in_use))
            .map(|back| (last + whole - back) % whole)
            .collect();
        (newest, in_use)
    };
    numbers.sort_unstable();
    ctx.report.stats.older_chunks_not_read = in_use - numbers.len() as u64;
    let ranges: Vec<(u64, u64)> = numbers
        .iter()
        .map(|&k| (chunk_offset(k), CHUNK_SIZE))
        .collect();
    prefetch(&ranges);
    for number in numbers {
        match EvtxChunkData::new(read_chunk(reader, number)?, false) {
            Ok(mut data) => {
                data.number = Some(number);
                ctx.chunk(&mut data, number, None);
            }
            Err(err) => ctx.warn(
                Some(number),
                Some(chunk_offset(number)),
                None,
                format!("chunk skipped: {}", chain(&err)),
            ),
        }
    }
    Ok(Some(ctx.finish()))
}

/// The 64 KiB of chunk `number` (which the file holds whole).
fn read_chunk<R: Read + Seek>(reader: &mut R, number: u64) -> Result<Vec<u8>, Error> {
    let offset = chunk_offset(number);
    let mut data = vec![0u8; CHUNK_SIZE as usize];
    reader
        .seek(SeekFrom::Start(offset))
        .and_then(|_| reader.read_exact(&mut data))
        .map_err(|source| Error::Io { offset, source })?;
    Ok(data)
}

/// The first and last record ids a chunk's header claims, if it is a chunk.
fn chunk_record_ids(chunk: &[u8]) -> Option<(u64, u64)> {
    if !chunk.starts_with(b"ElfChnk\0") {
        return None;
    }
    let at = |o: usize| {
        chunk
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    Some((at(24)?, at(32)?))
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

impl<'q> Ctx<'q> {
    fn new(query: &'q Query) -> Ctx<'q> {
        Ctx {
            query,
            needle: query.provider.needle_name().map(Needle::new),
            // Indenting only matters for the XML we hand out.
            settings: Arc::new(ParserSettings::new().indent(query.keep_xml)),
            report: Report::default(),
            newest: None,
            oldest: None,
        }
    }

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

    /// What the file header says that is worth a warning; `newest` when only the newest
    /// chunks are read.
    fn header_warnings(&mut self, header: &EvtxFileHeader, len: u64, newest: bool) {
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
            let what = if newest {
                "the newest chunks are found from every chunk's header, not from the file header"
            } else {
                "every chunk in the file is read, not only those the header counts"
            };
            self.warn(
                None,
                Some(0),
                None,
                format!("file header has the DIRTY flag: the log was not closed cleanly; {what}"),
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
