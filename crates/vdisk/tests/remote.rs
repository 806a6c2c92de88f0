//! Images behind a URL, served by a local test server (127.0.0.1, see `fixtures::http`): every
//! container kind reads the same bytes as the local file; servers that misbehave are retried or
//! refused; the SAS never shows.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fixtures::http::{Behaviour, Server};
use vdisk::{ContainerKind, Disk, Error};

/// A query that looks like an Azure SAS; none of its values may appear in any output.
const SAS: &str =
    "sv=2021-08-06&sr=b&sp=r&se=2030-01-01T00%3A00%3A00Z&sig=c2VjcmV0c2lnbmF0dXJlMTIz";

fn serve(name: &str, b: Behaviour) -> (Server, String) {
    let server = Server::start(std::fs::read(fixtures::path(name)).unwrap(), b);
    let url = format!("{}?{SAS}", server.url("disk"));
    (server, url)
}

fn assert_no_secret(text: &str) {
    for secret in ["c2VjcmV0c2lnbmF0dXJlMTIz", "2030-01-01", "sp=r", "sr=b"] {
        assert!(
            !text.contains(secret),
            "secret {secret:?} shown in {text:?}"
        );
    }
}

#[test]
fn every_container_kind_reads_the_same_over_http() {
    for (name, kind) in [
        ("images/container-gpt-fixed.vhd", ContainerKind::VhdFixed),
        (
            "images/container-gpt-dynamic.vhd",
            ContainerKind::VhdDynamic,
        ),
        ("images/container-gpt-fixed.vhdx", ContainerKind::VhdxFixed),
        (
            "images/container-gpt-dynamic.vhdx",
            ContainerKind::VhdxDynamic,
        ),
        ("images/container-mbr-logical.raw", ContainerKind::Raw),
        (
            "images/container-gpt4k-dynamic.vhd",
            ContainerKind::VhdDynamic,
        ),
    ] {
        let local = Disk::open(fixtures::path(name)).unwrap();
        let (server, url) = serve(name, Behaviour::default());
        let remote = Disk::open(&url).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(remote.kind(), kind, "{name}");
        assert_eq!(remote.size(), local.size(), "{name}");
        assert!(
            read_all(&remote) == read_all(&local),
            "{name}: bytes differ"
        );
        let table_local = vdisk::read_partitions(&local).unwrap();
        let table_remote = vdisk::read_partitions(&remote).unwrap();
        assert_eq!(
            format!("{:?}", table_local.partitions),
            format!("{:?}", table_remote.partitions)
        );
        let stats = remote.transfer_stats().expect("a remote disk has stats");
        assert_eq!(stats.requests, server.requests(), "{name}");
        assert_eq!(stats.bytes, server.bytes(), "{name}");
        assert!(local.transfer_stats().is_none());
        // What is shown of the disk never holds the SAS.
        let id = remote.identity();
        assert_no_secret(&id.path.to_string_lossy());
        assert!(id.path.to_string_lossy().contains("sig=REDACTED"));
        assert_no_secret(&format!("{remote:?}"));
    }
}

#[test]
fn a_server_without_ranges_is_refused() {
    let (server, url) = serve(
        "images/container-gpt-fixed.vhd",
        Behaviour {
            no_ranges: true,
            ..Default::default()
        },
    );
    let err = Disk::open(&url).unwrap_err();
    assert!(matches!(err, Error::NoRangeSupport { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not serve byte ranges"), "{text}");
    assert_no_secret(&text);
    assert_eq!(
        server.requests(),
        1,
        "refused at the first answer, not retried"
    );
}

#[test]
fn busy_server_is_retried_after_the_time_it_asks() {
    let (server, url) = serve(
        "images/container-gpt-dynamic.vhdx",
        Behaviour {
            busy_first: 2,
            ..Default::default()
        },
    );
    let started = Instant::now();
    let disk = Disk::open(&url).unwrap();
    // Two answers said "Retry-After: 1".
    assert!(started.elapsed() >= Duration::from_secs(2));
    let stats = disk.transfer_stats().unwrap();
    assert_eq!(stats.retries, 2);
    let local = Disk::open(fixtures::path("images/container-gpt-dynamic.vhdx")).unwrap();
    assert!(read_all(&disk) == read_all(&local));
    assert_eq!(disk.transfer_stats().unwrap().requests, server.requests());
}

#[test]
fn always_busy_server_gives_up_within_bounds() {
    let (server, url) = serve(
        "images/container-gpt-fixed.vhd",
        Behaviour {
            busy_first: u64::MAX,
            ..Default::default()
        },
    );
    let started = Instant::now();
    let err = Disk::open(&url).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("503"), "{text}");
    assert!(text.contains("gave up after 6 attempts"), "{text}");
    assert_no_secret(&text);
    assert_eq!(server.requests(), 6);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn dropped_connections_are_retried() {
    let name = "images/container-gpt-dynamic.vhd";
    let (server, url) = serve(
        name,
        Behaviour {
            drop_every: 3,
            ..Default::default()
        },
    );
    let disk = Disk::open(&url).unwrap();
    let local = Disk::open(fixtures::path(name)).unwrap();
    assert!(read_all(&disk) == read_all(&local));
    let stats = disk.transfer_stats().unwrap();
    assert!(stats.retries >= 1, "{stats:?}");
    assert_eq!(stats.requests, server.requests());
}

#[test]
fn expired_sas_is_one_clear_line() {
    let (_server, url) = serve(
        "images/container-gpt-fixed.vhd",
        Behaviour {
            auth_failed: true,
            ..Default::default()
        },
    );
    let err = Disk::open(&url).unwrap_err();
    assert!(
        matches!(err, Error::RemoteRefused { status: 403, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("the SAS has expired"), "{text}");
    assert!(text.contains("403 AuthenticationFailed"), "{text}");
    assert_no_secret(&text);
    assert_no_secret(&format!("{err:?}"));
}

#[test]
fn a_read_only_sas_is_refused_for_writing_before_any_request() {
    let (server, url) = serve("images/container-gpt-fixed.vhd", Behaviour::default());
    let err = Disk::open_rw(&url).unwrap_err();
    assert!(matches!(err, Error::RemoteReadOnly { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not allow writing"), "{text}");
    assert!(
        text.contains("az disk grant-access --access-level Write"),
        "{text}"
    );
    assert_no_secret(&text);
    assert_eq!(server.requests(), 0);
}

#[test]
fn a_plain_http_server_is_never_written() {
    let (server, url) = serve("images/container-gpt-fixed.vhd", Behaviour::default());
    let err = Disk::open_rw(url.replace("sp=r", "sp=rw")).unwrap_err();
    assert!(matches!(err, Error::RemoteReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("not an Azure page blob"), "{err}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn nothing_listening_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/disk.vhd?{SAS}");
    let started = Instant::now();
    let err = Disk::open(&url).unwrap_err();
    assert!(matches!(err, Error::Remote { .. }), "{err:?}");
    assert_no_secret(&err.to_string());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn an_image_that_changes_while_it_is_read_is_an_error() {
    let name = "images/container-gpt-dynamic.vhdx";
    let (_server, url) = serve(
        name,
        Behaviour {
            etag_changes_after: 1,
            ..Default::default()
        },
    );
    // The open's first request sees ETag 1; every later read asks If-Match for it.
    let err = Disk::open(&url)
        .and_then(|d| {
            let mut buf = vec![0u8; d.size() as usize];
            d.read_at(0, &mut buf)
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::RemoteRefused { status: 412, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("changed since it was opened"),
        "{err}"
    );
    assert_no_secret(&err.to_string());
}

/// `Disk::prefetch` brings scattered runs into the cache with several requests at once (4 MiB
/// pieces): reading them afterwards costs no request and gives the file's bytes; prefetching
/// them again costs nothing; a local disk ignores it.
#[test]
fn prefetched_runs_are_read_from_the_cache() {
    let name = "images/container-gpt-fixed.vhd";
    let (server, url) = serve(
        name,
        Behaviour {
            delay: Duration::from_millis(50),
            ..Default::default()
        },
    );
    let local = Disk::open(fixtures::path(name)).unwrap();
    let disk = Disk::open(&url).unwrap();
    let at_open = server.requests();
    // Three runs, away from the block the open read: 64 KiB-aligned, one over 4 MiB long.
    let runs = [(1 << 20, 300_000u64), (3 << 20, 5 << 20), (9 << 20, 4096)];
    let started = Instant::now();
    disk.prefetch(&runs).unwrap();
    let took = started.elapsed();
    let pieces = server.requests() - at_open;
    // 1 MiB + 5 MiB (two pieces) + one block: 4 requests, in about one round trip, not four.
    assert_eq!(pieces, 4, "requests for the runs");
    assert!(
        took < Duration::from_millis(4 * 50),
        "{took:?}: not concurrent"
    );
    for &(at, len) in &runs {
        let mut got = vec![0u8; len as usize];
        let mut want = vec![0u8; len as usize];
        disk.read_at(at, &mut got).unwrap();
        local.read_at(at, &mut want).unwrap();
        assert!(got == want, "run at {at:#x}");
    }
    assert_eq!(server.requests() - at_open, pieces, "read from the cache");
    // What is cached is not fetched again.
    disk.prefetch(&runs).unwrap();
    assert_eq!(server.requests() - at_open, pieces);
    local.prefetch(&runs).unwrap();
    assert_no_secret(&format!("{disk:?}"));
}
