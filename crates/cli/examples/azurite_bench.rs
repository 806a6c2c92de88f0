//! Puts a disk image into Azurite as page blobs, for the measurements of `bench/`:
//!
//!     cargo run -p winrescue --example azurite_bench -- IMAGE BLOBS DELAY_MS [URLS_PER_BLOB]
//!
//! Starts the emulator (in memory, as the tests do), uploads IMAGE as the page blobs `disk-0`
//! .. `disk-{BLOBS-1}` (only its data: the holes of a sparse file are skipped with SEEK_DATA /
//! SEEK_HOLE, and 4 MiB pieces that are all zeros are not sent, since a new page blob reads as
//! zeros), starts the tests' fault proxy with DELAY_MS added to every request, and prints one
//! line per URL: a blob's URL with a read SAS, a tab, the same URL through the proxy;
//! URLS_PER_BLOB (default 1) URLs per blob, each with its own SAS (another expiry second), so
//! that many targets can be measured with few blobs in the emulator's memory. Then, when
//! standard input closes, the requests the proxy forwarded, and stops (the emulator with it).

#[path = "../tests/common/azurite.rs"]
mod azurite;
#[path = "../tests/common/fault_proxy.rs"]
mod fault_proxy;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use rustix::fs::SeekFrom;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (image, blobs, delay, per_blob) = match &args[..] {
        [i, b, d] => (i, b, d, 1u32),
        [i, b, d, n] => (i, b, d, n.parse().expect("URLS_PER_BLOB is a number")),
        _ => {
            eprintln!("usage: azurite_bench IMAGE BLOBS DELAY_MS [URLS_PER_BLOB]");
            std::process::exit(2);
        }
    };
    let blobs: usize = blobs.parse().expect("BLOBS is a number");
    let delay: u64 = delay.parse().expect("DELAY_MS is a number");
    let az = azurite::start().expect("Azurite is not installed: npm ci --prefix tools/azurite");
    let file = std::fs::File::open(image).unwrap_or_else(|e| panic!("{image}: {e}"));
    let len = file.metadata().unwrap().len();
    assert_eq!(
        len % 512,
        0,
        "{image}: a page blob is made of 512-byte pages"
    );
    az.create_container();
    let began = Instant::now();
    let (mut puts, mut sent) = (0u64, 0u64);
    for i in 0..blobs {
        let blob = format!("disk-{i}");
        az.create_page_blob(&blob, len);
        for (start, end) in data_segments(&file, len) {
            let mut at = start / 512 * 512;
            while at < end {
                let n = (azurite::PAGE_CHUNK as u64).min(end.div_ceil(512) * 512 - at);
                let mut buf = vec![0u8; n as usize];
                file.read_exact_at(&mut buf, at).unwrap();
                if buf.iter().any(|&b| b != 0) {
                    azurite::put_pages(&az.agent, &az.base, &blob, at as usize, &buf);
                    puts += 1;
                    sent += n;
                }
                at += n;
            }
        }
    }
    eprintln!(
        "uploaded {blobs} page blob(s) of {len} bytes: {puts} Put Page requests, {sent} bytes, {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let proxy = fault_proxy::Proxy::start(
        &az.base,
        fault_proxy::Faults {
            delay: Duration::from_millis(delay),
            ..Default::default()
        },
    );
    for i in 0..blobs {
        let blob = format!("disk-{i}");
        for k in 0..per_blob {
            let se = format!(
                "2099-01-01T{:02}:{:02}:{:02}Z",
                k / 3600,
                k / 60 % 60,
                k % 60
            );
            let url = az.blob_url(&blob, &azurite::blob_sas(&blob, "r", "", &se));
            println!("{url}\t{}", proxy.url(&url));
        }
    }
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// The ranges of `file` that hold data (not holes), in order.
fn data_segments(file: &std::fs::File, len: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let Ok(start) = rustix::fs::seek(file, SeekFrom::Data(at)) else {
            break; // ENXIO: no data after `at`
        };
        let end = rustix::fs::seek(file, SeekFrom::Hole(start))
            .unwrap_or(len)
            .min(len);
        out.push((start, end));
        at = end;
    }
    out
}
