//! Benchmarks on the real hives in testdata/ (`cargo bench -p regf`).
//!
//! - `walk/win7`: every key and value of the Windows 7 SYSTEM hive, names decoded, data read.
//! - `export/win7`: the whole hive as .reg text into `io::sink()`.
//! - `replay/win10`: the dirty Windows 10 SYSTEM hive with both logs (target < 50 ms).
//! - `edit/*`: one DWORD change (`ControlSet001\Services\Dhcp` Start) plus the changed-page
//!   list, split into `Editor::new` (runs the checker), `set_value` and `finish` (checker again
//!   and page diff), and the whole thing (target < 5 ms).
//! - `check/win7`: the structural checker.
//! - `lookup/*`: what a diagnosis does with a hive it reads a few values of (the Dhcp service's
//!   Start, ImagePath and DependOnService): `whole` reads the file into memory first (a copy of
//!   the 12 MB Windows 7 SYSTEM), `paged` opens it as a `regf::Paged` hive that loads only the
//!   bins the lookups touch.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use regf::edit::Editor;
use regf::log::{replay, LogInput};
use regf::{Hive, ValueType};

const DHCP: &str = r"ControlSet001\Services\Dhcp";

/// Walks every key and value: names decoded to strings, data read. Returns a checksum so that
/// nothing is optimised away.
fn full_walk(hive: &Hive<&[u8]>) -> (usize, usize, usize) {
    let (mut keys, mut values, mut bytes) = (0usize, 0usize, 0usize);
    hive.walk(
        |path, k| {
            keys += 1;
            bytes += path.len();
            for v in k.values().expect("value list") {
                let v = v.expect("value");
                bytes += v.name().to_string_lossy().len();
                bytes += v.raw_data().expect("data").len();
                values += 1;
            }
        },
        |p, e| panic!("{p}: {e}"),
    )
    .expect("root");
    (keys, values, bytes)
}

fn read(c: &mut Criterion) {
    let win7 = fixtures::bytes("hives/win7-SYSTEM");
    let hive = Hive::open(&win7[..]).unwrap();
    assert_eq!(
        {
            let (k, v, _) = full_walk(&hive);
            (k, v)
        },
        (30756, 73456)
    );
    c.bench_function("walk/win7", |b| b.iter(|| black_box(full_walk(&hive))));
    c.bench_function("export/win7", |b| {
        b.iter(|| {
            let root = hive.root().unwrap();
            let stats = regf::regfile::export(&root, r"HKEY_LOCAL_MACHINE\SYSTEM", &mut io::sink())
                .unwrap();
            black_box(stats)
        })
    });
    c.bench_function("check/win7", |b| {
        b.iter(|| {
            let r = regf::check::check(black_box(&win7));
            assert!(r.is_sound());
            black_box(r.stats.keys)
        })
    });
}

fn log_replay(c: &mut Criterion) {
    let primary = fixtures::bytes("hives/win10-dirty-SYSTEM");
    let log1 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG1");
    let log2 = fixtures::bytes("hives/win10-dirty-SYSTEM.LOG2");
    let logs = [
        LogInput {
            name: "SYSTEM.LOG1",
            data: &log1,
        },
        LogInput {
            name: "SYSTEM.LOG2",
            data: &log2,
        },
    ];
    c.bench_function("replay/win10", |b| {
        b.iter(|| {
            let r = replay(black_box(&primary), &logs).unwrap();
            assert_eq!(r.report.entries_applied, 24);
            black_box(r.bytes.len())
        })
    });
}

fn edit(c: &mut Criterion) {
    let win7 = fixtures::bytes("hives/win7-SYSTEM");
    let set = |ed: &mut Editor| {
        ed.set_value(DHCP, "Start", ValueType::DWORD, &4u32.to_le_bytes())
            .unwrap()
    };
    let mut g = c.benchmark_group("edit");
    g.measurement_time(Duration::from_secs(8));
    // The copy of the 12 MB input is part of the setup, not of the measurement.
    g.bench_function("new", |b| {
        b.iter_batched(
            || win7.clone(),
            |bytes| Editor::new(bytes, 0).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("set_value", |b| {
        b.iter_batched(
            || Editor::new(win7.clone(), 0).unwrap(),
            |mut ed| {
                set(&mut ed);
                ed
            },
            BatchSize::LargeInput,
        )
    });
    // The change itself and its page list, without the two full checks of the write path.
    g.bench_function("dword_and_pages", |b| {
        b.iter_batched(
            || Editor::new(win7.clone(), 0).unwrap(),
            |mut ed| {
                set(&mut ed);
                let pages = ed.changed_pages();
                assert!((1..=2).contains(&pages.len()), "{pages:?}");
                (ed, pages)
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("finish", |b| {
        b.iter_batched(
            || {
                let mut ed = Editor::new(win7.clone(), 0).unwrap();
                set(&mut ed);
                ed
            },
            |ed| {
                let e = ed.finish().unwrap();
                // The base block, the page of the vk record and the page of the key node.
                assert!(
                    (2..=3).contains(&e.changed_pages.len()),
                    "{:?}",
                    e.changed_pages
                );
                e
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("dword_total", |b| {
        b.iter_batched(
            || win7.clone(),
            |bytes| {
                let mut ed = Editor::new(bytes, 0).unwrap();
                set(&mut ed);
                ed.finish().unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A hive file shared by the iterations of the `lookup/paged` benchmark.
struct Shared(std::sync::Arc<Vec<u8>>);

impl regf::paged::ReadAt for Shared {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        regf::paged::ReadAt::read_exact_at(&*self.0, offset, buf)
    }
}

/// The Dhcp service's values a diagnosis reads.
fn dhcp_values<B: regf::Source>(hive: &Hive<B>) -> usize {
    let k = hive.key(DHCP).unwrap().expect("Dhcp");
    ["Start", "ImagePath", "DependOnService"]
        .iter()
        .map(|v| {
            k.value(v)
                .unwrap()
                .expect("value")
                .raw_data()
                .unwrap()
                .len()
        })
        .sum()
}

fn lookup(c: &mut Criterion) {
    let file = std::sync::Arc::new(fixtures::bytes("hives/win7-SYSTEM"));
    let mut g = c.benchmark_group("lookup");
    g.bench_function("whole", |b| {
        b.iter(|| {
            let bytes = file.to_vec();
            let hive = Hive::open(&bytes[..]).unwrap();
            black_box(dhcp_values(&hive))
        })
    });
    g.bench_function("paged", |b| {
        b.iter(|| {
            let len = file.len() as u64;
            let p = regf::Paged::open(Box::new(Shared(file.clone())), len).unwrap();
            let hive = Hive::open(&p).unwrap();
            black_box(dhcp_values(&hive))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = read, log_replay, edit, lookup
}
criterion_main!(benches);
