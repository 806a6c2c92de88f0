//! Opening a 127 GiB sparse fixed VHD (the size of an Azure OS disk) and reading its GPT.
//! The image is made in a temporary folder with qemu-img and sgdisk; without them the bench
//! does nothing.

use std::path::Path;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};

const SIZE: &str = "127G";

fn run(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

/// A 127 GiB fixed VHD holding a GPT (primary at the start, backup before the footer), all
/// sparse: the GPT is made by sgdisk on a sparse raw file and copied in with dd.
fn make_image(dir: &Path) -> Option<std::path::PathBuf> {
    let raw = dir.join("big.raw");
    let vhd = dir.join("big.vhd");
    let ok = run(Command::new("truncate").args(["-s", SIZE]).arg(&raw))
        && run(Command::new("sgdisk")
            .args([
                "-n",
                "1:2048:+500M",
                "-t",
                "1:EF00",
                "-n",
                "2:0:0",
                "-t",
                "2:0700",
            ])
            .arg(&raw))
        && run(Command::new("qemu-img")
            .args([
                "create",
                "-q",
                "-f",
                "vpc",
                "-o",
                "subformat=fixed,force_size=on",
            ])
            .arg(&vhd)
            .arg(SIZE));
    if !ok {
        return None;
    }
    let sectors = std::fs::metadata(&raw).ok()?.len() / 512;
    let head = run(Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", vhd.display()))
        .args(["bs=512", "count=34", "conv=notrunc", "status=none"]));
    let tail_at = (sectors - 33).to_string();
    let tail = run(Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", vhd.display()))
        .args(["bs=512", "count=33", "conv=notrunc", "status=none"])
        .arg(format!("skip={tail_at}"))
        .arg(format!("seek={tail_at}")));
    std::fs::remove_file(&raw).ok()?;
    (head && tail).then_some(vhd)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let Some(vhd) = make_image(dir.path()) else {
        eprintln!("qemu-img / sgdisk missing: skipping the 127 GiB bench");
        return;
    };
    let t = vdisk::read_partitions(&vdisk::Disk::open(&vhd).unwrap()).unwrap();
    assert_eq!(t.kind, vdisk::TableKind::Gpt);
    assert_eq!(t.partitions.len(), 2);
    c.bench_function("open 127 GiB fixed VHD + read GPT", |b| {
        b.iter(|| {
            let d = vdisk::Disk::open(&vhd).unwrap();
            vdisk::read_partitions(&d).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
