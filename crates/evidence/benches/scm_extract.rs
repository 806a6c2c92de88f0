//! SCM extraction from the 16.8 MB Server 2012 R2 System log (60189 records, 1242 SCM).
//! The comparison with `evtx_dump` and `evtxexport` is `bench/evtx_scm.sh` (hyperfine).
use criterion::{criterion_group, criterion_main, Criterion};

fn scm_extract(c: &mut Criterion) {
    let bytes = fixtures::bytes("evtx/srv2012r2-System.evtx");
    let mut group = c.benchmark_group("srv2012r2");
    group.sample_size(30);
    group.bench_function("scm_events_from_memory", |b| {
        b.iter(|| {
            let report = evidence::read_log(
                std::io::Cursor::new(bytes.as_slice()),
                &evidence::Query::default(),
            )
            .unwrap();
            assert_eq!(report.events.len(), 1242);
        })
    });
    group.bench_function("dhcp_7036_from_memory", |b| {
        let query = evidence::Query {
            service: Some("Dhcp".into()),
            event_ids: vec![7036],
            ..evidence::Query::default()
        };
        b.iter(|| {
            let report =
                evidence::read_log(std::io::Cursor::new(bytes.as_slice()), &query).unwrap();
            assert_eq!(report.events.len(), 21);
        })
    });
    group.finish();
}

criterion_group!(benches, scm_extract);
criterion_main!(benches);
