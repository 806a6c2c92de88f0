//! Images behind an `http://` or `https://` URL: an Azure page blob reached with a SAS URL, or
//! any HTTP server that serves byte ranges.
//!
//! Reads are ranged GETs (`Range: bytes=a-b`, with `x-ms-version` for the Blob service) through
//! a cache of fixed-size blocks with bounded memory; a miss fetches the missing run of blocks in
//! one request and reads a little further ahead, since NTFS metadata, hives and logs are read
//! in runs. Transient failures (connection errors, timeouts, 408, 429, 5xx, 503 ServerBusy with
//! `Retry-After`) are retried with backoff, a bounded number of times within a bounded time.
//!
//! The query string of a URL may hold a shared access signature (SAS): it is a secret. The URL
//! is kept only inside the remote reader; everything that shows it (errors, paths, identities) gets
//! [`redact_url`]'s form, and text from the HTTP layer is scrubbed of the query's values.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Size of a cache block: a few NTFS clusters, small enough that scattered metadata reads do
/// not drag much more than they need over the network.
pub(crate) const BLOCK: u64 = 64 << 10;
/// Blocks read after a miss, beyond the range asked for (1 MiB): MFT records, index blocks and
/// hive bins are read one after the other.
const READ_AHEAD_BLOCKS: u64 = 16;
/// Cache capacity in blocks (64 MiB): the memory bound of a remote image.
const CACHE_BLOCKS: usize = 1024;
/// The largest range asked for in one request; a longer read is split.
const MAX_REQUEST: u64 = 16 << 20;
/// Prefetched runs are fetched in pieces of at most this size, several at once: one
/// connection's throughput is bounded (on Azure some tens of MB/s), several are not.
const PREFETCH_PIECE: u64 = 4 << 20;
/// Requests a prefetch has in flight at once.
const PREFETCH_JOBS: usize = 8;
/// The most one prefetch brings into the cache: half of it, so that it never evicts what it
/// fetched itself, nor all that was read before.
const MAX_PREFETCH: u64 = (CACHE_BLOCKS as u64 / 2) * BLOCK;
/// Attempts per request, the first one included.
const MAX_ATTEMPTS: u32 = 6;
/// Total time spent retrying one request before giving up.
const MAX_RETRY_TIME: Duration = Duration::from_secs(60);
/// The longest wait a `Retry-After` header may ask for before the next attempt.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The first backoff; it doubles at each attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The Blob service version the requests ask for (any version since 2019 serves page blobs
/// with SAS this way).
pub(crate) const X_MS_VERSION: &str = "2021-08-06";
/// A page blob's page: writes go in whole pages.
const PAGE: u64 = 512;
/// The most one Put Page may carry.
const MAX_PUT_PAGE: u64 = 4 << 20;
/// How much of an error response's body is read to find the service's error code.
const MAX_ERROR_BODY: u64 = 16 << 10;

/// Query parameters whose values are shown as they are; every other value is redacted, since
/// SAS fields (`sig`, `se`, `sp`, `sv`, `sr`, `st`, `spr`, `skoid`, ...) and other services'
/// signed URLs (`X-Amz-Signature`, `token`, ...) must never appear in output.
const SHOWN_PARAMS: &[&str] = &["snapshot", "versionid"];

/// Whether `s` names a remote image (`http://` or `https://`, in any case).
pub fn is_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `url` as it may be shown: the value of every query parameter but `snapshot` and `versionid`
/// (a SAS's `sig`, `se`, `sp`, ...) becomes `REDACTED`, a password in the authority is
/// removed, and a fragment is dropped. Used wherever a URL is displayed.
pub fn redact_url(url: &str) -> String {
    let url = url.split('#').next().unwrap_or(url);
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(q) = query {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, _)) if SHOWN_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                    p.to_string()
                }
                Some((k, _)) => format!("{k}=REDACTED"),
                None => p.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// The blob (or file) a URL names, without anything secret: `scheme://host/path`, with no user
/// information, query string (a SAS) or fragment. What an undo journal records: the SAS is
/// given again on the command line when the journal is undone.
pub fn address(url: &str) -> String {
    let url = url.split(['#', '?']).next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}://{host}{path}", scheme.to_ascii_lowercase())
}

/// `scheme://user:password@host/...` without the password.
fn redact_userinfo(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:REDACTED@{host}{path}")
        }
        None => base.to_string(),
    }
}

/// Requests and bytes a remote image has cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Bytes of image data received.
    pub bytes: u64,
    /// Requests that were attempts again after a transient failure.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
}

/// Fixed-size blocks, least recently used evicted first.
#[derive(Debug, Default)]
struct Cache {
    blocks: HashMap<u64, (Vec<u8>, u64)>,
    tick: u64,
}

impl Cache {
    fn get(&mut self, block: u64) -> Option<&[u8]> {
        self.tick += 1;
        let tick = self.tick;
        self.blocks.get_mut(&block).map(|(data, used)| {
            *used = tick;
            &data[..]
        })
    }

    fn contains(&self, block: u64) -> bool {
        self.blocks.contains_key(&block)
    }

    fn insert(&mut self, block: u64, data: Vec<u8>) {
        self.tick += 1;
        if self.blocks.len() >= CACHE_BLOCKS && !self.blocks.contains_key(&block) {
            if let Some(oldest) = self
                .blocks
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(b, _)| *b)
            {
                self.blocks.remove(&oldest);
            }
        }
        self.blocks.insert(block, (data, self.tick));
    }
}

/// What one attempt gave.
struct Fetched {
    data: Vec<u8>,
    /// The size of the whole image, from `Content-Range`.
    total: u64,
    etag: Option<String>,
    /// Whether the server said this is an Azure page blob (`x-ms-blob-type: PageBlob`).
    page_blob: bool,
}

/// Why an attempt failed.
enum Failure {
    /// Worth another attempt, after `after` if the server said so.
    Transient {
        why: String,
        after: Option<Duration>,
    },
    Fatal(Error),
}

/// An image read over HTTP.
pub(crate) struct Remote {
    agent: ureq::Agent,
    /// The URL as given, SAS included: never shown.
    url: String,
    /// The URL as shown.
    shown: String,
    len: u64,
    /// The ETag read at open, then the one each write of this process gave: every request is
    /// guarded by it, so a change made by anyone else is refused.
    etag: Mutex<Option<String>>,
    page_blob: bool,
    writable: bool,
    cache: Mutex<Cache>,
    counters: Counters,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.shown)
            .field("len", &self.len)
            .field("etag", &self.etag())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Opens the image at `url`: one ranged GET of its first block gives its size, its ETag,
    /// and the proof that the server serves ranges.
    pub(crate) fn open(url: &str) -> Result<Remote> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect could carry the request (and its SAS) elsewhere: not followed.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_recv_body(Some(Duration::from_secs(120)))
            .user_agent(concat!("winrescue/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut remote = Remote {
            agent: config.new_agent(),
            url: url.to_string(),
            shown: redact_url(url),
            len: 0,
            etag: Mutex::new(None),
            page_blob: false,
            writable: false,
            cache: Mutex::new(Cache::default()),
            counters: Counters::default(),
        };
        let first = remote.fetch(0, BLOCK, None)?;
        remote.len = first.total;
        remote.etag = Mutex::new(first.etag);
        remote.page_blob = first.page_blob;
        let mut cache = remote.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(0, first.data);
        drop(cache);
        Ok(remote)
    }

    /// Opens the page blob at `url` for reading and writing. Refused, before any request, when
    /// the SAS does not allow writing (`sp` without `w`), and after the first when the URL is
    /// not an Azure page blob.
    pub(crate) fn open_rw(url: &str) -> Result<Remote> {
        let sp = url
            .split('#')
            .next()
            .and_then(|u| u.split_once('?'))
            .and_then(|(_, q)| {
                q.split('&')
                    .find_map(|p| p.strip_prefix("sp=").map(str::to_string))
            });
        let shown = redact_url(url);
        match sp {
            Some(sp) if sp.contains('w') => {}
            _ => {
                return Err(Error::RemoteReadOnly {
                    url: shown,
                    why: "its SAS does not allow writing (a snapshot's never does)".into(),
                })
            }
        }
        let mut remote = Remote::open(url)?;
        if !remote.page_blob {
            return Err(Error::RemoteReadOnly {
                url: shown,
                why: "it is not an Azure page blob (winrescue writes only with Put Page)".into(),
            });
        }
        remote.writable = true;
        Ok(remote)
    }

    fn etag(&self) -> Option<String> {
        self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes `buf` at `offset` with Put Page (`x-ms-page-write: update`) in 512-byte pages:
    /// a partial page is read first and completed. Every request carries `If-Match` with the
    /// ETag of the open (or of this process's last write): if anyone else changed the blob,
    /// the write is refused (412) and nothing is written by that request.
    pub(crate) fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let (start, stop) = (offset / PAGE * PAGE, end.div_ceil(PAGE) * PAGE);
        if stop > self.len {
            return Err(Error::Remote {
                url: self.shown.clone(),
                reason: format!(
                    "a page blob's size is a multiple of {PAGE}; this one has {} bytes",
                    self.len
                ),
            });
        }
        let mut pages = vec![0u8; (stop - start) as usize];
        if start < offset || stop > end {
            self.read_exact_at(&mut pages, start)?;
        }
        pages[(offset - start) as usize..(end - start) as usize].copy_from_slice(buf);
        // The cache must not keep what is no longer there.
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for block in start / BLOCK..=(stop - 1) / BLOCK {
                cache.blocks.remove(&block);
            }
        }
        for (i, chunk) in pages.chunks(MAX_PUT_PAGE as usize).enumerate() {
            self.put_page(start + i as u64 * MAX_PUT_PAGE, chunk)?;
        }
        Ok(())
    }

    /// One Put Page, retried on transient failures.
    fn put_page(&self, start: u64, data: &[u8]) -> Result<()> {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}comp=page", self.url);
        let last = start + data.len() as u64 - 1;
        let began = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .agent
                .put(&url)
                .header("x-ms-version", X_MS_VERSION)
                .header("x-ms-page-write", "update")
                .header("x-ms-range", format!("bytes={start}-{last}"));
            if let Some(tag) = self.etag() {
                request = request.header("If-Match", tag);
            }
            let failure = match request.send(data) {
                Err(e) => self.transport_failure(e),
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let retry_after = header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let code = header("x-ms-error-code");
                    match status {
                        200..=299 => {
                            *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = header("etag");
                            return Ok(());
                        }
                        408 | 429 | 500..=599 => Failure::Transient {
                            why: format!(
                                "the server answered {status}{}",
                                code.map(|c| format!(" {c}")).unwrap_or_default()
                            ),
                            after: retry_after,
                        },
                        // An attempt before failed without a clear answer (a cut connection, a
                        // 500 after the service took the pages): it may have been written, which
                        // gave the blob a new ETag. If the pages hold exactly these bytes now,
                        // that write was this one; the ETag that came with them is adopted.
                        412 if attempt > 1 => {
                            if let Some(tag) = self.holds_already(start, data)? {
                                *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = Some(tag);
                                return Ok(());
                            }
                            return Err(self.refusal(412, code, ""));
                        }
                        403 if code.as_deref() == Some("AuthorizationPermissionMismatch") => {
                            return Err(Error::RemoteReadOnly {
                                url: self.shown.clone(),
                                why: "the server refused to write with this SAS (403 AuthorizationPermissionMismatch)".into(),
                            })
                        }
                        _ => {
                            let body = response
                                .body_mut()
                                .with_config()
                                .limit(MAX_ERROR_BODY)
                                .read_to_vec()
                                .unwrap_or_default();
                            let body = String::from_utf8_lossy(&body);
                            let code = code.or_else(|| xml_element(&body, "Code"));
                            return Err(self.refusal(status, code, &body));
                        }
                    }
                }
            };
            let (why, after) = match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Transient { why, after } => (why, after),
            };
            let backoff = FIRST_BACKOFF.saturating_mul(1 << (attempt - 1).min(6));
            let wait = after.unwrap_or(backoff).min(MAX_RETRY_AFTER);
            if attempt >= MAX_ATTEMPTS || began.elapsed() + wait > MAX_RETRY_TIME {
                return Err(Error::Remote {
                    url: self.shown.clone(),
                    reason: format!(
                        "cannot write {} bytes at offset {start:#x}: {why} (gave up after {attempt} attempts)",
                        data.len()
                    ),
                });
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
        }
    }

    /// After a Put Page whose answer was lost: the blob's ETag now if `start..` holds exactly
    /// `data` (read without `If-Match` and without the cache), `None` if it holds anything else.
    fn holds_already(&self, start: u64, data: &[u8]) -> Result<Option<String>> {
        let now = self.fetch(start, data.len() as u64, None)?;
        Ok((now.data == data).then_some(now.etag).flatten())
    }

    /// Asks the server, bypassing the cache, whether the image still has the ETag read at open
    /// (or given by this process's last write): a 412 error if anyone else changed it.
    pub(crate) fn revalidate(&self) -> Result<()> {
        let len = PAGE.min(self.len);
        if len == 0 {
            return Ok(());
        }
        self.fetch(0, len, self.etag().as_deref()).map(|_| ())
    }

    /// Whether this image was opened for writing.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The ETag now: read at open, changed by each write of this process.
    pub(crate) fn current_etag(&self) -> Option<String> {
        self.etag()
    }

    /// What the URL names, without secrets.
    pub(crate) fn address(&self) -> String {
        address(&self.url)
    }

    /// The URL as it may be shown.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn stats(&self) -> TransferStats {
        TransferStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    /// Fills `buf` from `offset`; the caller has checked the range against [`Remote::len`].
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset + buf.len() as u64;
        let blocks = self.len.div_ceil(BLOCK);
        let mut block = offset / BLOCK;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        while block * BLOCK < end {
            if !cache.contains(block) {
                // The run of missing blocks up to the end of the read, then ahead of it.
                let last_needed = (end - 1) / BLOCK;
                let mut run_end = block + 1;
                while run_end <= last_needed && !cache.contains(run_end) {
                    run_end += 1;
                }
                // Read ahead after small reads only: a large read (a hive, a log) is whole.
                if run_end > last_needed && last_needed + 1 - offset / BLOCK < READ_AHEAD_BLOCKS {
                    let ahead = (run_end + READ_AHEAD_BLOCKS).min(blocks);
                    while run_end < ahead && !cache.contains(run_end) {
                        run_end += 1;
                    }
                }
                let run_end = run_end.min(block + MAX_REQUEST / BLOCK);
                let start = block * BLOCK;
                let len = (run_end * BLOCK).min(self.len) - start;
                let fetched = self.fetch(start, len, self.etag().as_deref())?;
                for (i, chunk) in fetched.data.chunks(BLOCK as usize).enumerate() {
                    cache.insert(block + i as u64, chunk.to_vec());
                }
            }
            // Copy what this block holds of the range. A block just fetched may have been
            // evicted again by a run longer than the cache: then it is fetched alone.
            if cache.get(block).is_none() {
                let start = block * BLOCK;
                let len = BLOCK.min(self.len - start);
                let fetched = self.fetch(start, len, self.etag().as_deref())?;
                cache.insert(block, fetched.data);
            }
            let data = cache.get(block).unwrap_or(&[]);
            let block_start = block * BLOCK;
            let from = offset.max(block_start);
            let to = end.min(block_start + data.len() as u64);
            if to <= from {
                return Err(Error::Remote {
                    url: self.shown.clone(),
                    reason: format!("the server sent no data for byte {from:#x}"),
                });
            }
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - block_start) as usize..(to - block_start) as usize]);
            block += 1;
        }
        Ok(())
    }

    /// Brings the blocks of `ranges` (offset, length) that are not cached yet into the cache,
    /// with up to [`PREFETCH_JOBS`] ranged GETs at once: the data runs of a hive or a log,
    /// which would otherwise be read one run after the other. Ranges past the end are
    /// clipped; nothing is fetched when they hold more than [`MAX_PREFETCH`] bytes.
    pub(crate) fn prefetch(&self, ranges: &[(u64, u64)]) -> Result<()> {
        let mut blocks: Vec<u64> = Vec::new();
        for &(offset, len) in ranges {
            let end = offset.saturating_add(len).min(self.len);
            if offset >= end {
                continue;
            }
            let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
            if (last - first + 1) * BLOCK > MAX_PREFETCH {
                return Ok(());
            }
            blocks.extend(first..=last);
        }
        blocks.sort_unstable();
        blocks.dedup();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            blocks.retain(|b| !cache.contains(*b));
        }
        if blocks.len() as u64 * BLOCK > MAX_PREFETCH {
            return Ok(());
        }
        // Runs of consecutive missing blocks, cut into pieces: (first block, block count).
        let per_piece = PREFETCH_PIECE / BLOCK;
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        for b in blocks {
            match pieces.last_mut() {
                Some((first, n)) if *first + *n == b && *n < per_piece => *n += 1,
                _ => pieces.push((b, 1)),
            }
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..PREFETCH_JOBS.min(pieces.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(first, n)) = pieces.get(i) else {
                        break;
                    };
                    let start = first * BLOCK;
                    let len = ((first + n) * BLOCK).min(self.len) - start;
                    match self.fetch(start, len, self.etag().as_deref()) {
                        Ok(f) => {
                            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                            for (k, chunk) in f.data.chunks(BLOCK as usize).enumerate() {
                                cache.insert(first + k as u64, chunk.to_vec());
                            }
                        }
                        Err(e) => {
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            break;
                        }
                    }
                });
            }
        });
        match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// GETs `start..start + len` with retries.
    fn fetch(&self, start: u64, len: u64, if_match: Option<&str>) -> Result<Fetched> {
        let began = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match self.try_fetch(start, len, if_match) {
                Ok(f) => {
                    self.counters
                        .bytes
                        .fetch_add(f.data.len() as u64, Ordering::Relaxed);
                    return Ok(f);
                }
                Err(f) => f,
            };
            let (why, after) = match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Transient { why, after } => (why, after),
            };
            let backoff = FIRST_BACKOFF.saturating_mul(1 << (attempt - 1).min(6));
            let wait = after.unwrap_or(backoff).min(MAX_RETRY_AFTER);
            if attempt >= MAX_ATTEMPTS || began.elapsed() + wait > MAX_RETRY_TIME {
                return Err(Error::Remote {
                    url: self.shown.clone(),
                    reason: format!(
                        "cannot read {len} bytes at offset {start:#x}: {why} (gave up after {attempt} attempts in {:.1} s)",
                        began.elapsed().as_secs_f64()
                    ),
                });
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
        }
    }

    /// One ranged GET.
    fn try_fetch(
        &self,
        start: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> std::result::Result<Fetched, Failure> {
        let last = start + len - 1;
        let mut request = self
            .agent
            .get(&self.url)
            .header("Range", format!("bytes={start}-{last}"))
            .header("x-ms-version", X_MS_VERSION);
        // A weak ETag cannot be compared byte for byte: only strong ones guard reads.
        if let Some(tag) = if_match.filter(|t| !t.starts_with("W/")) {
            request = request.header("If-Match", tag);
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(e)),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let page_blob =
            header("x-ms-blob-type").is_some_and(|t| t.eq_ignore_ascii_case("PageBlob"));
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match status {
            206 => {
                let range = header("content-range").unwrap_or_default();
                let Some((first, end, total)) = parse_content_range(&range) else {
                    return Err(Failure::Fatal(self.no_ranges(format!(
                        "its answer to a range request has no usable Content-Range ({range:?})"
                    ))));
                };
                // Only the open's probe may get less than it asked for: the file is shorter.
                if first != start || !(end == last || (end < last && end + 1 == total)) {
                    return Err(Failure::Fatal(Error::Remote {
                        url: self.shown.clone(),
                        reason: format!(
                            "asked for bytes {start}-{last}, the server sent {first}-{end}"
                        ),
                    }));
                }
                let want = end - first + 1;
                let data = match response
                    .body_mut()
                    .with_config()
                    .limit(want + 1)
                    .read_to_vec()
                {
                    Ok(d) => d,
                    Err(e) => return Err(self.transport_failure(e)),
                };
                if data.len() as u64 != want {
                    return Err(Failure::Transient {
                        why: format!("the server sent {} of {want} bytes", data.len()),
                        after: None,
                    });
                }
                Ok(Fetched {
                    data,
                    total,
                    etag,
                    page_blob,
                })
            }
            200 => Err(Failure::Fatal(self.no_ranges(
                "it answered a range request with the whole file (200 OK, not 206)".into(),
            ))),
            408 | 429 | 500..=599 => {
                let code = header("x-ms-error-code")
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default();
                Err(Failure::Transient {
                    why: format!("the server answered {status}{code}"),
                    after: retry_after,
                })
            }
            _ => {
                let code = header("x-ms-error-code");
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_ERROR_BODY)
                    .read_to_vec()
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(&body);
                let code = code.or_else(|| xml_element(&body, "Code"));
                Err(Failure::Fatal(self.refusal(status, code, &body)))
            }
        }
    }

    /// The error for a server that does not serve byte ranges.
    fn no_ranges(&self, why: String) -> Error {
        Error::NoRangeSupport {
            url: self.shown.clone(),
            why,
        }
    }

    /// The error for a 4xx answer (or 3xx, since redirects are not followed).
    fn refusal(&self, status: u16, code: Option<String>, body: &str) -> Error {
        let detail = xml_element(body, "AuthenticationErrorDetail").unwrap_or_default();
        let reason = match (status, code.as_deref()) {
            (403, Some("AuthenticationFailed")) if detail.contains("xpir") => {
                "the SAS has expired: ask for a new one (az snapshot grant-access / az disk grant-access)".to_string()
            }
            (403, Some("AuthenticationFailed")) if detail.contains("not yet valid") || detail.contains("start time") => {
                "the SAS is not valid yet (its start time is in the future)".to_string()
            }
            (403, Some("AuthenticationFailed" | "AuthorizationFailure")) => {
                "the SAS is wrong, expired or revoked: ask for a new one (az snapshot grant-access / az disk grant-access)".to_string()
            }
            (403, Some("AuthorizationPermissionMismatch")) => {
                "the SAS does not allow this operation".to_string()
            }
            (403, _) => "access denied".to_string(),
            (401, _) => "the server asks for credentials".to_string(),
            (404, _) => "no such image (404 Not Found)".to_string(),
            (412, _) => {
                "the image changed since it was opened (its ETag is no longer the one read at open)"
                    .to_string()
            }
            (416, _) => "the image is empty or shorter than what was asked for".to_string(),
            (300..=399, _) => "the server redirects elsewhere; give winrescue the final URL".to_string(),
            _ => "the server refused the request".to_string(),
        };
        Error::RemoteRefused {
            url: self.shown.clone(),
            status,
            code: code.map(|c| self.scrub(&c)),
            reason,
        }
    }

    /// A failure of the transport (connection, TLS, timeout, malformed answer).
    fn transport_failure(&self, e: ureq::Error) -> Failure {
        let text = self.scrub(&e.to_string());
        match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_) => Failure::Transient {
                why: text,
                after: None,
            },
            _ => Failure::Fatal(Error::Remote {
                url: self.shown.clone(),
                reason: text,
            }),
        }
    }

    /// `text` without the URL's query values (defence in depth: text from the HTTP layer may
    /// quote the URL).
    fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.url, &self.shown);
        if let Some((_, query)) = self.url.split_once('?') {
            out = out.replace(query, "REDACTED");
            for value in query
                .split('&')
                .filter_map(|p| p.split_once('=').map(|x| x.1))
            {
                if value.len() >= 4 {
                    out = out.replace(value, "REDACTED");
                }
            }
        }
        out
    }
}

/// `bytes first-last/total` -> (first, last, total).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, total) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

/// The text of the first `<name>...</name>` in an XML error body (short, single line).
fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let from = body.find(&open)? + open.len();
    let len = body[from..].find(&format!("</{name}>"))?;
    let text: String = body[from..from + len]
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_values_are_redacted() {
        let url = "https://md-x.blob.core.windows.net/abc/abcd?sv=2018-03-28&sr=b&si=5d2&sig=Zm9vYmFy%2Fc2VjcmV0&se=2030-01-01T00%3A00%3A00Z&sp=r&snapshot=2024-01-01";
        let shown = redact_url(url);
        assert_eq!(
            shown,
            "https://md-x.blob.core.windows.net/abc/abcd?sv=REDACTED&sr=REDACTED&si=REDACTED&sig=REDACTED&se=REDACTED&sp=REDACTED&snapshot=2024-01-01"
        );
        assert_eq!(
            redact_url("http://u:pw@h:8/x?X-Amz-Signature=abc#frag"),
            "http://u:REDACTED@h:8/x?X-Amz-Signature=REDACTED"
        );
        assert_eq!(redact_url("http://h/x.raw"), "http://h/x.raw");
        assert_eq!(
            address("HTTPS://u:pw@md-x.blob.core.windows.net/c/abcd?sv=1&sig=c2Vj#f"),
            "https://md-x.blob.core.windows.net/c/abcd"
        );
        assert_eq!(address("http://h:80/a?x"), "http://h:80/a");
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("https://a/b"));
        assert!(is_url("HTTP://a/b"));
        assert!(!is_url("http"));
        assert!(!is_url("./https://a"));
        assert!(!is_url("/dev/sdc"));
    }

    #[test]
    fn content_ranges_are_checked() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(parse_content_range("bytes 9-0/100"), None);
        assert_eq!(parse_content_range("bytes 0-99/*"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
    }

    #[test]
    fn cache_is_bounded() {
        let mut c = Cache::default();
        for b in 0..(CACHE_BLOCKS as u64 + 10) {
            c.insert(b, vec![0; 1]);
        }
        assert_eq!(c.blocks.len(), CACHE_BLOCKS);
        assert!(!c.contains(0));
    }
}
