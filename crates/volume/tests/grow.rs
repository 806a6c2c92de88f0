//! `Volume::plan_grow` on the bare NTFS volume made by ntfs-3g (ntfs-edge-cases): the plan is
//! applied to a copy in the order it prescribes, and ntfs-3g reads the result (`ntfscat`: the new
//! length and bytes; `ntfsfix -n`: a consistent volume). Every case the plan must refuse is
//! refused with its reason.

mod common;

use std::io::Cursor;

use common::*;
use volume::{Error, GrowRefusal, GrowthPlan, Volume};

fn open_edge() -> (Cursor<Vec<u8>>, Volume) {
    let mut fs = Cursor::new(fx_bytes(EDGE));
    let vol = Volume::open(&mut fs).unwrap();
    (fs, vol)
}

/// ntfsinfo's count of free clusters (ntfs-3g counts the bits clear in `$Bitmap`).
fn free_clusters(volume: &std::path::Path) -> Option<u64> {
    let bin = tool("ntfsinfo")?;
    let out = std::process::Command::new(bin)
        .arg("-m")
        .arg(volume)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Free Clusters:"))
        .unwrap_or_else(|| panic!("ntfsinfo -m: {text}"));
    Some(line.split_whitespace().nth(2).unwrap().parse().unwrap())
}

fn seq_20000() -> Vec<u8> {
    (1..=20000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Writes `plan` into `bytes` as a journal would: the new content past the old valid length,
/// then the bitmap, then the MFT record; `new` is the file's whole new content.
fn apply(bytes: &mut [u8], plan: &GrowthPlan, new: &[u8]) {
    let from = plan.old_valid_size;
    for w in plan.grown.plan_write(from, plan.new_size - from).unwrap() {
        let (p, f, n) = (
            w.partition_offset as usize,
            w.file_offset as usize,
            w.len as usize,
        );
        bytes[p..p + n].copy_from_slice(&new[f..f + n]);
    }
    for patch in plan.bitmap.iter().chain([&plan.record]).chain(&plan.names) {
        let p = patch.partition_offset as usize;
        assert_eq!(&bytes[p..p + patch.before.len()], &patch.before[..]);
        bytes[p..p + patch.after.len()].copy_from_slice(&patch.after);
    }
}

/// Grows plain.txt to `new_len`, checks the plan's shape with `check`, writes it to a copy and
/// reads the file back with this crate and with ntfs-3g.
fn grow_plain(new_len: usize, check: impl Fn(&GrowthPlan)) {
    let (mut fs, vol) = open_edge();
    let f = vol.open_file(&mut fs, "plain.txt").unwrap();
    let old = seq_20000();
    assert_eq!(f.size(), old.len() as u64);
    let plan = vol.plan_grow(&mut fs, &f, new_len as u64).unwrap();
    check(&plan);
    let mut new = old.clone();
    new.extend((0..new_len - old.len()).map(|i| b'a' + (i % 26) as u8));
    let mut bytes = fs.into_inner();
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.raw");
    std::fs::write(&before, &bytes).unwrap();
    apply(&mut bytes, &plan, &new);

    let mut fs = Cursor::new(bytes);
    let vol = Volume::open(&mut fs).unwrap();
    let f = vol.open_file(&mut fs, "plain.txt").unwrap();
    assert_eq!(f.size(), new_len as u64);
    assert!(vol.read_file(&mut fs, &f).unwrap() == new);

    let path = dir.path().join("grown.raw");
    std::fs::write(&path, fs.get_ref()).unwrap();
    if let (Some(was), Some(now)) = (free_clusters(&before), free_clusters(&path)) {
        let taken: u64 = plan.new_clusters.iter().map(|r| r.1).sum();
        assert_eq!(now + taken, was, "ntfsinfo's free clusters");
    }
    if let Some((clean, text)) = ntfsfix_clean(&path) {
        assert!(clean && !text.contains("FAILED"), "ntfsfix -n: {text}");
    }
    if let Some(cat) = ntfscat(&path, "/plain.txt") {
        assert_eq!(cat.len(), new_len);
        assert!(cat == new, "ntfscat reads other bytes");
    }
    let allocated = plan.grown.data().unwrap().allocated_size;
    names_carry(&path, "/", "plain.txt", (allocated, new_len as u64));
}

/// ntfsinfo reads `want` (allocated size, size) in the file's `$FILE_NAME` and in its entry of
/// the directory's index, and ntfsls lists the file at its new size.
fn names_carry(volume: &std::path::Path, dir: &str, name: &str, want: (u64, u64)) {
    if let Some((own, listed)) = fixtures::ntfsinfo_name_sizes(volume, dir, name) {
        assert_eq!(own, vec![want], "the $FILE_NAME of {name}");
        assert_eq!(listed, vec![want], "the $I30 entry of {name} in {dir}");
    }
    if let Some(bin) = tool("ntfsls") {
        let out = std::process::Command::new(bin)
            .args(["-l", "-p", dir])
            .arg(volume)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("ntfsls -l: {text}"));
        let size: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(size, want.1, "ntfsls -l: {line}");
    }
}

/// The original edge-case volume: plain.txt's name carries its old sizes (ntfs-3g leaves the
/// size of the record's own `$FILE_NAME` at 0; the growth writes the true one).
#[test]
fn the_root_index_of_the_edge_volume_is_an_indx_allocation() {
    let path = fx_path(EDGE);
    if let Some((own, listed)) = fixtures::ntfsinfo_name_sizes(&path, "/", "plain.txt") {
        assert_eq!(own, vec![(110_592, 0)]);
        assert_eq!(listed, vec![(110_592, 108_894)]);
    }
    let (mut fs, vol) = open_edge();
    let f = vol.open_file(&mut fs, "plain.txt").unwrap();
    let plan = vol.plan_grow(&mut fs, &f, 1 << 20).unwrap();
    // The root's entries live in an INDX block, not in its MFT record.
    assert_eq!(plan.names.len(), 1);
    assert_eq!(&plan.names[0].before[..4], b"INDX");
    assert_eq!(plan.names[0].before.len(), 4096);
    let ranges = vol.name_ranges(&mut fs, &f).unwrap();
    assert_eq!(
        ranges,
        vec![(plan.names[0].partition_offset, 4096)],
        "name_ranges names the block the plan changes"
    );
}

/// The SYSTEM hive of the Gen2 disk, alone in its `config` directory: its entry lives in the
/// `$INDEX_ROOT` of the directory's MFT record. After the growth ntfsinfo and ntfsls read the
/// new sizes there, and ntfsfix finds the volume clean.
#[test]
fn growth_updates_an_entry_in_a_resident_index_root() {
    let image = fx_path("images/gen2-gpt-win7-system.raw");
    let part = partitions(&image)[2];
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("part");
    extract(&image, part, &volume);
    let mut fs = Cursor::new(std::fs::read(&volume).unwrap());
    let vol = Volume::open(&mut fs).unwrap();
    let f = vol
        .open_file(&mut fs, r"Windows\System32\config\SYSTEM")
        .unwrap();
    let old = vol.read_file(&mut fs, &f).unwrap();
    let new_len = old.len() + 3 * 4096 + 100;
    let plan = vol.plan_grow(&mut fs, &f, new_len as u64).unwrap();
    assert_eq!(plan.names.len(), 1);
    assert_eq!(
        &plan.names[0].before[..4],
        b"FILE",
        "the parent's MFT record"
    );
    let mut new = old.clone();
    new.resize(new_len, 0x5a);
    let mut bytes = fs.into_inner();
    apply(&mut bytes, &plan, &new);
    std::fs::write(&volume, &bytes).unwrap();
    if let Some((clean, text)) = ntfsfix_clean(&volume) {
        assert!(clean && !text.contains("FAILED"), "ntfsfix -n: {text}");
    }
    let allocated = plan.grown.data().unwrap().allocated_size;
    assert_eq!(allocated, (new_len as u64).div_ceil(4096) * 4096);
    names_carry(
        &volume,
        "/Windows/System32/config",
        "SYSTEM",
        (allocated, new_len as u64),
    );
}

/// 108,894 bytes in 27 clusters: up to 110,592 the clusters it owns suffice.
#[test]
fn growth_within_the_owned_clusters_changes_only_the_sizes() {
    grow_plain(110_000, |plan| {
        assert!(plan.bitmap.is_empty() && plan.new_clusters.is_empty());
        assert_eq!(plan.grown.data().unwrap().allocated_size, 27 * 4096);
    });
}

#[test]
fn growth_with_new_clusters_marks_them_in_the_bitmap_and_adds_them_to_the_runs() {
    grow_plain(1 << 20, |plan| {
        let clusters: u64 = plan.new_clusters.iter().map(|r| r.1).sum();
        assert_eq!(clusters, 256 - 27);
        assert!(!plan.bitmap.is_empty());
        assert_eq!(plan.grown.data().unwrap().allocated_size, 1 << 20);
    });
}

fn refusal(path: &str, new_len: u64) -> GrowRefusal {
    let (mut fs, vol) = open_edge();
    let f = vol.open_file(&mut fs, path).unwrap();
    match vol.plan_grow(&mut fs, &f, new_len) {
        Err(Error::CannotGrow { path: p, why, .. }) => {
            assert!(p.to_ascii_lowercase().ends_with(&path.to_ascii_lowercase()));
            why
        }
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn what_the_plan_does_not_cover_is_refused_with_the_reason() {
    assert_eq!(refusal("resident.txt", 8192), GrowRefusal::Resident);
    assert!(matches!(
        refusal(r"compressed\compressed.txt", 1 << 20),
        GrowRefusal::Flags {
            kind: "compressed",
            ..
        }
    ));
    assert!(matches!(
        refusal("sparse.bin", 2 << 20),
        GrowRefusal::Flags { kind: "sparse", .. }
    ));
    assert_eq!(
        refusal("attrlist-sparse.bin", 8 << 20),
        GrowRefusal::AttributeList
    );
    assert!(matches!(
        refusal("plain.txt", 100),
        GrowRefusal::Smaller { .. }
    ));
    assert!(matches!(
        refusal("plain.txt", 64 << 20),
        GrowRefusal::NoSpace { .. }
    ));
}

/// A `$LogFile` whose restart area says a log client was active at the last unmount (Windows
/// would replay it over the change) is refused; the same area with the clean flag is not.
/// ntfs-3g leaves the log empty (0xFF), so the restart page is written here by hand: "RSTR",
/// the restart area at 0x30, its client-in-use list at 0x3C and its flags at 0x3E (ntfs-3g's
/// logfile.h).
#[test]
fn an_unclean_logfile_is_refused() {
    let (mut fs, vol) = open_edge();
    let log = vol.open_file(&mut fs, "$LogFile").unwrap();
    let at = log.extents()[0].partition_offset.unwrap() as usize;
    let file = vol.open_file(&mut fs, "plain.txt").unwrap();
    for (flags, clean) in [(0u16, false), (2, true)] {
        let mut bytes = fs.get_ref().clone();
        bytes[at..at + 4096].fill(0);
        bytes[at..at + 4].copy_from_slice(b"RSTR");
        bytes[at + 0x18..at + 0x1a].copy_from_slice(&0x30u16.to_le_bytes());
        bytes[at + 0x3c..at + 0x3e].copy_from_slice(&0u16.to_le_bytes());
        bytes[at + 0x3e..at + 0x40].copy_from_slice(&flags.to_le_bytes());
        let mut c = Cursor::new(bytes);
        let v = Volume::open(&mut c).unwrap();
        let got = v.plan_grow(&mut c, &file, 1 << 20);
        if clean {
            assert!(got.is_ok(), "{got:?}");
        } else {
            match got {
                Err(Error::CannotGrow {
                    path,
                    why: GrowRefusal::LogFileNotClean { .. },
                    ..
                }) => assert_eq!(path, "\\plain.txt"),
                other => panic!("{other:?}"),
            }
        }
    }
}
