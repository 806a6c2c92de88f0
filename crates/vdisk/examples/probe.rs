//! Opens an image or device read-only and prints its container, identity and partitions.
//!
//! `cargo run -p vdisk --example probe -- IMAGE` (used for the open-time / peak-memory figure:
//! `/usr/bin/time -v target/release/examples/probe big.vhd`).

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: probe IMAGE");
        return ExitCode::from(2);
    };
    let t0 = Instant::now();
    let disk = match vdisk::OpenOptions::new().lenient(true).open(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opened = t0.elapsed();
    let table = vdisk::read_partitions(&disk);
    let total = t0.elapsed();
    let id = disk.identity();
    println!(
        "{}: {} of {} bytes",
        id.path.display(),
        disk.kind().name(),
        id.size
    );
    if let Some(u) = id.unique_id {
        println!("unique id {u}");
    }
    if let Some(g) = id.data_write_guid {
        println!("DataWriteGuid {g}");
    }
    for w in disk.warnings() {
        println!("warning: {w}");
    }
    match table {
        Ok(t) => {
            println!("{:?} table, {}-byte sectors", t.kind, t.sector_size);
            for p in &t.partitions {
                println!(
                    "  {:>3}  start {:#014x}  len {:#014x}  {:?}  {:?}  {}",
                    p.index, p.start, p.len, p.kind, p.filesystem, p.name
                );
            }
        }
        Err(e) => println!("partition table: {e}"),
    }
    println!("open {opened:?}, open + partition table {total:?}");
    ExitCode::SUCCESS
}
