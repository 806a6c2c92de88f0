//! Prints the Service Control Manager events of a log, one line each, with the time taken:
//! `cargo run -p evidence --release --example scm_dump -- System.evtx [counts]`.
use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: scm_dump LOG.evtx [counts]");
    let counts = std::env::args().nth(2).is_some_and(|a| a == "counts");
    let start = Instant::now();
    let report = evidence::read_log_file(&path, &evidence::Query::default()).expect("read log");
    let took = start.elapsed();
    if counts {
        let mut by_id = std::collections::BTreeMap::new();
        for e in &report.events {
            *by_id.entry(e.event_id).or_insert(0u64) += 1;
        }
        for (id, n) in by_id {
            println!("{id} {n}");
        }
    } else {
        for e in &report.events {
            println!("{} {} {} {}", e.time, e.record_id, e.event_id, e.summary());
        }
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("{:?} in {took:?}", report.stats);
}
