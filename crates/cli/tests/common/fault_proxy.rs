//! A fault-injecting HTTP proxy for the write tests: it stands between winrescue and Azurite on
//! 127.0.0.1, one request per connection, and misbehaves on Put Page requests as a real network
//! and service can: a 503 Server Busy (the service did not take the pages), or a connection cut
//! after the service took the pages and before its answer came back (the client cannot tell
//! whether it was written). It can also run a hook before the first request that checks the
//! blob's ETag on its own (a 512-byte ranged GET with `If-Match`: winrescue's last check before
//! a write), to play another writer changing the blob in between, and add a delay to every
//! request (`bench/azurite-127g.sh` runs it through `examples/azurite_bench.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The most connections one proxy handles (a bound on any loop a test could fall into).
const MAX_CONNECTIONS: usize = 20_000;
/// The largest request or answer body forwarded (a Put Page carries at most 4 MiB).
const MAX_BODY: usize = 64 << 20;

type Hook = Box<dyn FnOnce() + Send>;

/// What the proxy does to Put Page requests (counted from 1).
#[derive(Default)]
pub struct Faults {
    /// Answer the first N Put Page requests 503 ServerBusy, without forwarding them.
    pub busy_puts: u64,
    /// Forward every Nth Put Page and cut the connection instead of passing its answer on.
    pub lose_put_answer_every: u64,
    /// After N Put Page requests have been forwarded, cut every further one without
    /// forwarding it (a network that is gone for good).
    pub cut_puts_after: Option<u64>,
    /// Run once, before forwarding the first revalidation (see the module docs).
    pub before_revalidate: Option<Hook>,
    /// Added to every request before it is forwarded: a network farther away (the
    /// measurements of `bench/`).
    pub delay: Duration,
}

pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Put Page requests received.
    pub puts: Arc<AtomicU64>,
    /// Put Page requests forwarded to the service.
    pub forwarded: Arc<AtomicU64>,
    state: Arc<State>,
}

struct State {
    faults: Mutex<Faults>,
    upstream: SocketAddr,
    puts: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
}

impl Proxy {
    /// Proxies to `upstream` (`http://127.0.0.1:PORT...`).
    pub fn start(upstream: &str, faults: Faults) -> Proxy {
        let host = upstream
            .strip_prefix("http://")
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let upstream: SocketAddr = host.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let puts = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let state = Arc::new(State {
            faults: Mutex::new(faults),
            upstream,
            puts: puts.clone(),
            forwarded: forwarded.clone(),
        });
        let (s, shared) = (stop.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if s.load(Ordering::SeqCst) || n >= MAX_CONNECTIONS {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        Proxy {
            addr,
            stop,
            thread: Some(thread),
            puts,
            forwarded,
            state: shared,
        }
    }

    /// From now on, misbehave this way instead (`Faults::default()`: a healthy network).
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// `url` (of the upstream service) rewritten to go through the proxy.
    pub fn url(&self, url: &str) -> String {
        let rest = url.strip_prefix("http://").unwrap();
        let path = &rest[rest.find('/').unwrap()..];
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads an HTTP head (up to the blank line) and its body (by Content-Length).
fn read_message(r: &mut impl BufRead) -> std::io::Result<Option<(Vec<String>, Vec<u8>)>> {
    let mut lines = Vec::new();
    for _ in 0..200 {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let len = lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some((lines, body)))
}

/// The message with `Connection: close` in place of any Connection header.
fn closing(lines: &[String], body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = String::new();
    for l in lines {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

fn serve(conn: TcpStream, state: &State) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let Some((lines, body)) = read_message(&mut reader)? else {
        return Ok(());
    };
    let mut conn = conn;
    let request_line = lines.first().cloned().unwrap_or_default();
    let header = |name: &str| {
        lines
            .iter()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let is_put_page = request_line.starts_with("PUT ") && request_line.contains("comp=page");
    let is_revalidate = request_line.starts_with("GET ")
        && header("range").as_deref() == Some("bytes=0-511")
        && header("if-match").is_some();
    if is_revalidate {
        let hook = state.faults.lock().unwrap().before_revalidate.take();
        if let Some(hook) = hook {
            hook();
        }
    }
    let mut lose_answer = false;
    if is_put_page {
        let n = state.puts.fetch_add(1, Ordering::SeqCst) + 1;
        let f = state.faults.lock().unwrap();
        if n <= f.busy_puts {
            drop(f);
            let body =
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code></Error>";
            write!(conn, "HTTP/1.1 503 Server Busy\r\nRetry-After: 0\r\nx-ms-error-code: ServerBusy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
            return Ok(());
        }
        if f.cut_puts_after
            .is_some_and(|k| state.forwarded.load(Ordering::SeqCst) >= k)
        {
            return conn.shutdown(Shutdown::Both);
        }
        lose_answer = f.lose_put_answer_every > 0 && n.is_multiple_of(f.lose_put_answer_every);
        state.forwarded.fetch_add(1, Ordering::SeqCst);
    }
    let delay = state.faults.lock().unwrap().delay;
    std::thread::sleep(delay);
    let mut up = TcpStream::connect(state.upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(&closing(&lines, &body, false))?;
    let mut up_reader = BufReader::new(up);
    let Some((answer, answer_body)) = read_message(&mut up_reader)? else {
        return conn.shutdown(Shutdown::Both);
    };
    if lose_answer {
        // The service has the pages; the client never hears so.
        return conn.shutdown(Shutdown::Both);
    }
    conn.write_all(&closing(
        &answer,
        &answer_body,
        request_line.starts_with("HEAD "),
    ))?;
    conn.flush()
}
