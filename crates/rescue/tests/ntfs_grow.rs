//! A hive file inside an NTFS volume of a disk image grows: new clusters from the volume bitmap,
//! new runs and sizes in its MFT record, all through the undo journal. The Windows 7 SYSTEM hive
//! of `gen2-gpt-win7-system` has no slack, so every value here makes its file grow.
//!
//! Checked with independent tools on the partition cut out of the image: ntfs-3g's `ntfscat`
//! (the file as ntfs-3g reads it: its length and bytes), `ntfsfix -n` (the volume is
//! consistent), hivex's `hivexget` (the value in the hive ntfs-3g gives back). Undo gives the
//! image back bit for bit (sha256), and a crash at any write step ends, after `undo` or
//! `undo --redo`, in the original or the grown image.

use std::path::{Path, PathBuf};
use std::process::Command;

use regf::ValueType;
use rescue::edit::{edit_system_hive, EditOptions, EditOutcome};
use rescue::journal::{self, CrashAfter};
use sha2::{Digest, Sha256};

const CLOCK: u64 = 133_000_000_000_000_000;
const DHCP: &str = r"ControlSet001\Services\Dhcp";
/// Partition 3 (NTFS, Windows) of the Gen2 fixtures: sectors 102400..194559.
const PART_START: u64 = 102_400 * 512;
const PART_LEN: u64 = 92_160 * 512;
const FIXTURE: &str = "images/gen2-gpt-win7-system.raw";
const SYSTEM: &str = "Windows/System32/config/SYSTEM";

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn sha256(p: &Path) -> String {
    let d = Sha256::digest(std::fs::read(p).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn image(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixtures::path(FIXTURE), &p).unwrap();
    p
}

/// How many files ntfscp adds next to SYSTEM in [`crowded_image`]: more than the `$INDEX_ROOT`
/// of the `config` directory's MFT record holds, so ntfs-3g moves its entries into an INDX
/// block of an `$INDEX_ALLOCATION`.
const CROWD: usize = 30;

/// The Gen2 image with [`CROWD`] small files copied into `Windows/System32/config` by ntfs-3g's
/// ntfscp (named like the transaction logs Windows keeps there). `None` without ntfscp
/// (outside CI only).
fn crowded_image(dir: &Path, name: &str) -> Option<PathBuf> {
    let img = image(dir, name);
    let part = partition(&img, dir);
    let small = dir.join("small");
    std::fs::write(&small, b"TxR\n").unwrap();
    for i in 0..CROWD {
        let to = format!("/Windows/System32/config/TxR-{i:02}.blf");
        ntfscp(&part, &small, &to)?;
    }
    put_partition(&img, &part);
    Some(img)
}

/// Copies `file` to `to` inside the NTFS volume `part` with ntfs-3g's `ntfscp` (`None`
/// outside CI when it is not installed).
fn ntfscp(part: &Path, file: &Path, to: &str) -> Option<()> {
    let o = run(
        "ntfscp",
        &[
            "-f".as_ref(),
            part.as_os_str(),
            file.as_os_str(),
            to.as_ref(),
        ],
    )?;
    assert!(
        o.status.success(),
        "ntfscp: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(())
}

/// Puts the volume `part` back into the NTFS partition of `image`.
fn put_partition(image: &Path, part: &Path) {
    let mut bytes = std::fs::read(image).unwrap();
    bytes[PART_START as usize..(PART_START + PART_LEN) as usize]
        .copy_from_slice(&std::fs::read(part).unwrap());
    std::fs::write(image, bytes).unwrap();
}

/// Whether a range the edit wrote held an INDX block in the image before.
fn wrote_an_indx_block(original: &[u8], ranges: &[(u64, usize)]) -> bool {
    ranges.iter().any(|&(o, n)| {
        n == 4096 && original.get(o as usize..o as usize + 4) == Some(b"INDX".as_slice())
    })
}

/// ntfs-3g's ntfsinfo reads the file's new size and allocation in SYSTEM's `$FILE_NAME` and in
/// its entry of the `config` directory's index, and ntfsls lists it at its new size.
fn names_carry(image: &Path, dir: &Path, size: u64) {
    let part = partition(image, dir);
    let allocated = size.div_ceil(4096) * 4096;
    if let Some((own, listed)) =
        fixtures::ntfsinfo_name_sizes(&part, "/Windows/System32/config", "SYSTEM")
    {
        assert_eq!(own, vec![(allocated, size)], "SYSTEM's $FILE_NAME");
        assert_eq!(
            listed,
            vec![(allocated, size)],
            "SYSTEM's entry in config's $I30"
        );
    }
    if let Some(o) = run(
        "ntfsls",
        &[
            "-l".as_ref(),
            "-p".as_ref(),
            "/Windows/System32/config".as_ref(),
            part.as_os_str(),
        ],
    ) {
        let text = String::from_utf8_lossy(&o.stdout);
        let line = text.lines().find(|l| l.ends_with(" SYSTEM")).unwrap();
        assert_eq!(
            line.split_whitespace().next(),
            Some(size.to_string().as_str()),
            "ntfsls -l: {line}"
        );
    }
}

fn add_big(path: &Path, data: &[u8], crash: CrashAfter) -> rescue::Result<EditOutcome> {
    edit_system_hive(
        path,
        EditOptions {
            crash,
            ..Default::default()
        },
        |ed| {
            ed.set_clock(CLOCK);
            Ok(ed.set_value(DHCP, "Big", ValueType::BINARY, data)?
                != regf::edit::SetOutcome::Unchanged)
        },
    )
}

/// Runs a tool; `None` when it is not installed (outside CI only).
fn run(tool: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    match Command::new(tool).args(args).output() {
        Ok(o) => Some(o),
        Err(_) => {
            assert!(!ci(), "{tool} is required in CI");
            None
        }
    }
}

/// The NTFS partition of `image`, cut out into `dir/part` (ntfs-3g's tools take a volume).
fn partition(image: &Path, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(image).unwrap();
    let p = dir.join("part");
    std::fs::write(
        &p,
        &bytes[PART_START as usize..(PART_START + PART_LEN) as usize],
    )
    .unwrap();
    p
}

/// What ntfs-3g and hivex see on the partition: the SYSTEM file's bytes as ntfscat reads
/// them, after `ntfsfix -n` found the volume consistent. `None` without the tools.
fn independent_view(image: &Path, dir: &Path) -> Option<Vec<u8>> {
    let part = partition(image, dir);
    let fix = run("ntfsfix", &["-n".as_ref(), part.as_os_str()])?;
    let text = String::from_utf8_lossy(&fix.stdout).into_owned();
    assert!(
        fix.status.success() && text.contains("NTFS partition") && !text.contains("FAILED"),
        "ntfsfix -n: {text}{}",
        String::from_utf8_lossy(&fix.stderr)
    );
    let cat = run("ntfscat", &[part.as_os_str(), SYSTEM.as_ref()])?;
    assert!(
        cat.status.success(),
        "ntfscat: {}",
        String::from_utf8_lossy(&cat.stderr)
    );
    Some(cat.stdout)
}

/// hivexget's bytes of `Dhcp\Big` in `hive`.
fn hivexget_big(hive: &[u8], dir: &Path) -> Option<Vec<u8>> {
    let p = dir.join("SYSTEM.out");
    std::fs::write(&p, hive).unwrap();
    let key = format!(r"\{DHCP}");
    let o = run("hivexget", &[p.as_os_str(), key.as_ref(), "Big".as_ref()])?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(o.stdout)
}

/// A value is added inside the image: the file grows, ntfs-3g reads it at its new length with
/// the new value in it, the volume stays consistent, and undo gives the image back bit for bit.
fn grows_inside_the_image(len: usize, crowded: bool) {
    let dir = tempfile::tempdir().unwrap();
    let img = if crowded {
        let Some(img) = crowded_image(dir.path(), "disk.raw") else {
            return;
        };
        img
    } else {
        image(dir.path(), "disk.raw")
    };
    let original = sha256(&img);
    let original_bytes = std::fs::read(&img).unwrap();
    let old_hive = fixtures::bytes("hives/win7-SYSTEM");
    let data = pattern(len);
    let out = add_big(&img, &data, CrashAfter(None)).unwrap();
    // The entry is in an INDX block exactly when the directory is crowded; otherwise in the
    // `$INDEX_ROOT` of the directory's MFT record.
    assert_eq!(wrote_an_indx_block(&original_bytes, &out.ranges), crowded);
    let journal_path = out.written.expect("written").undo_journal;
    assert_ne!(sha256(&img), original);

    if let Some(hive) = independent_view(&img, dir.path()) {
        assert!(
            hive.len() >= old_hive.len() + len,
            "ntfs-3g reads {} bytes, the hive was {} and the value is {len}",
            hive.len(),
            old_hive.len()
        );
        let base = regf::BaseBlock::parse(&hive).unwrap();
        assert!(4096 + base.hive_bins_size as usize <= hive.len());
        names_carry(&img, dir.path(), hive.len() as u64);
        if let Some(got) = hivexget_big(&hive, dir.path()) {
            assert!(got == data, "hivexget: {} bytes", got.len());
        }
    }
    // winrescue's own reader agrees.
    let t = rescue::target::Target::open(&img, false).unwrap();
    let install = t.choose(None).unwrap().clone();
    let now = t.system_hive(&install).unwrap();
    let h = regf::Hive::open(&now.on_disk).unwrap();
    let v = h.key(DHCP).unwrap().unwrap().value("Big").unwrap().unwrap();
    assert!(v.raw_data().unwrap().as_ref() == data.as_slice());
    drop(t);

    journal::undo(&journal_path, false).unwrap();
    assert_eq!(
        sha256(&img),
        original,
        "undo restores the image bit for bit"
    );
    if let Some(hive) = independent_view(&img, dir.path()) {
        assert!(
            hive == old_hive,
            "ntfs-3g reads the original hive after undo"
        );
    }
}

#[test]
fn a_6kib_value_grows_the_hive_file_inside_an_ntfs_image() {
    grows_inside_the_image(6 * 1024, false);
}

#[test]
fn a_1mib_value_grows_the_hive_file_inside_an_ntfs_image() {
    grows_inside_the_image(1 << 20, false);
}

/// The `config` directory holds 31 files: SYSTEM's entry lives in an INDX block, whose sizes
/// the growth rewrites (update sequence applied again) under the same journal.
#[test]
fn a_growth_updates_the_entry_in_an_indx_block_of_a_crowded_directory() {
    grows_inside_the_image(20 * 1024, true);
}

/// The 45 MiB volume cannot take a 64 MiB value: refused with the reason, nothing written.
#[test]
fn a_growth_larger_than_the_free_space_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "disk.raw");
    let original = sha256(&img);
    let e = add_big(&img, &pattern(64 << 20), CrashAfter(None)).unwrap_err();
    match &e {
        rescue::Error::HiveFileFull {
            why: rescue::GrowthBlocked::Ntfs(volume::GrowRefusal::NoSpace { needed, free }),
            ..
        } => assert!(needed > free, "{e}"),
        other => panic!("not a refusal for free space: {other}"),
    }
    assert!(e.is_refusal());
    assert!(e.to_string().contains("free clusters"), "{e}");
    assert_eq!(sha256(&img), original);
    assert!(!journal::pending_path(&img).exists());
}

/// A crash after every write step of a growing edit (data pages, bitmap, MFT record, hive
/// pages, base block, before the flush), then `undo` or `undo --redo` of the pending journal:
/// the image is the original one or the grown one, bit for bit.
#[test]
fn every_crash_point_of_a_growth_inside_an_image_ends_in_the_original_or_the_grown_image() {
    every_crash_point_ends_in_the_original_or_the_grown_image(false);
}

/// The same with SYSTEM's directory entry in an INDX block (one more write step).
#[test]
fn every_crash_point_of_a_growth_in_a_crowded_directory_ends_in_the_original_or_the_grown_image() {
    every_crash_point_ends_in_the_original_or_the_grown_image(true);
}

fn every_crash_point_ends_in_the_original_or_the_grown_image(crowded: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(24 * 1024);
    let pristine = if crowded {
        let Some(img) = crowded_image(dir.path(), "pristine.raw") else {
            return;
        };
        img
    } else {
        image(dir.path(), "pristine.raw")
    };
    let original = sha256(&pristine);
    let full = dir.path().join("full.raw");
    std::fs::copy(&pristine, &full).unwrap();
    let n = add_big(&full, &data, CrashAfter(None))
        .unwrap()
        .ranges
        .len();
    let grown = sha256(&full);
    assert!(n > 4, "{n} ranges");
    for k in 0..=n {
        for redo in [false, true] {
            let img = dir.path().join(format!("crash-{k}-{redo}.raw"));
            std::fs::copy(&pristine, &img).unwrap();
            let e = add_big(&img, &data, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let pending = journal::pending_path(&img);
            journal::undo(&pending, redo).unwrap();
            assert!(!pending.exists());
            let want = if redo { &grown } else { &original };
            assert_eq!(&sha256(&img), want, "crash after {k}, redo {redo}");
            std::fs::remove_file(&img).unwrap();
        }
    }
}

const SOFTWARE: &str = r"Windows\System32\config\SOFTWARE";

/// The Gen2 image with the Windows 7 SOFTWARE hive (36,864 bytes, no slack after its bins)
/// copied next to SYSTEM by ntfs-3g's ntfscp. `None` without ntfscp (outside CI only).
fn image_with_software(dir: &Path, name: &str) -> Option<PathBuf> {
    let img = image(dir, name);
    let part = partition(&img, dir);
    let software = dir.join("SOFTWARE");
    std::fs::copy(fixtures::path("hives/software/win7-SOFTWARE"), &software).unwrap();
    ntfscp(&part, &software, "/Windows/System32/config/SOFTWARE")?;
    put_partition(&img, &part);
    Some(img)
}

/// Adds `Big` (`len` bytes) to SYSTEM and/or SOFTWARE in one transaction.
fn add_to_both(
    img: &Path,
    system: bool,
    software: bool,
    len: usize,
    crash: CrashAfter,
) -> rescue::Result<EditOutcome> {
    let mut tx = rescue::edit::Transaction::open(
        img,
        EditOptions {
            crash,
            ..Default::default()
        },
    )?;
    if system {
        let ed = tx.hive(None)?;
        ed.set_clock(CLOCK);
        ed.set_value(DHCP, "Big", ValueType::BINARY, &pattern(len))?;
    }
    if software {
        let ed = tx.hive(Some(SOFTWARE))?;
        ed.set_clock(CLOCK);
        ed.set_value(
            r"Microsoft\Windows NT\CurrentVersion",
            "Big",
            ValueType::BINARY,
            &pattern(len),
        )?;
    }
    tx.commit("test")
}

/// Two hives of one volume whose files both grow in one transaction: the second growth is
/// planned from the volume as the first leaves it (other free clusters; the `config`
/// directory's MFT record, which holds both entries, and the bitmap bytes merged into one
/// write each). ntfs-3g reads both grown files from a volume `ntfsfix -n` finds clean, with
/// their new sizes in the directory; a crash at every write step ends, after `undo` or
/// `undo --redo`, in the original or the grown image; undo is bit for bit.
#[test]
fn two_hives_growing_in_one_transaction_take_distinct_clusters_and_undo_together() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pristine) = image_with_software(dir.path(), "pristine.raw") else {
        return;
    };
    let original = sha256(&pristine);
    let img = dir.path().join("disk.raw");
    std::fs::copy(&pristine, &img).unwrap();
    let out = add_to_both(&img, true, true, 24 * 1024, CrashAfter(None)).unwrap();
    let grown = sha256(&img);
    let n = out.ranges.len();
    // Disjoint ranges: overlapping ones were merged.
    let mut r = out.ranges.clone();
    r.sort();
    assert!(
        r.windows(2).all(|w| w[0].0 + w[0].1 as u64 <= w[1].0),
        "{r:?}"
    );

    if let Some(hive) = independent_view(&img, dir.path()) {
        assert!(hive.len() > fixtures::bytes("hives/win7-SYSTEM").len());
        names_carry(&img, dir.path(), hive.len() as u64);
        let part = partition(&img, dir.path());
        let cat = run(
            "ntfscat",
            &[
                part.as_os_str(),
                "Windows/System32/config/SOFTWARE".as_ref(),
            ],
        )
        .unwrap();
        let software = cat.stdout;
        assert!(
            software.len() > 36_864 + 24 * 1024,
            "SOFTWARE grew: {}",
            software.len()
        );
        let p = dir.path().join("SOFTWARE.out");
        std::fs::write(&p, &software).unwrap();
        if let Some(o) = run(
            "hivexget",
            &[
                p.as_os_str(),
                r"\Microsoft\Windows NT\CurrentVersion".as_ref(),
                "Big".as_ref(),
            ],
        ) {
            assert!(o.status.success());
            assert!(
                o.stdout == pattern(24 * 1024),
                "hivexget reads SOFTWARE's value"
            );
        }
        if let Some((_, listed)) =
            fixtures::ntfsinfo_name_sizes(&part, "/Windows/System32/config", "SOFTWARE")
        {
            let size = software.len() as u64;
            assert_eq!(listed, vec![(size.div_ceil(4096) * 4096, size)]);
        }
    }
    journal::undo(&out.written.unwrap().undo_journal, false).unwrap();
    assert_eq!(
        sha256(&img),
        original,
        "undo restores the image bit for bit"
    );

    for k in 0..=n {
        for redo in [false, true] {
            let img = dir.path().join(format!("crash-{k}-{redo}.raw"));
            std::fs::copy(&pristine, &img).unwrap();
            let e = add_to_both(&img, true, true, 24 * 1024, CrashAfter(Some(k))).unwrap_err();
            assert!(e.to_string().contains("simulated crash"), "{e}");
            let pending = journal::pending_path(&img);
            journal::undo(&pending, redo).unwrap();
            let want = if redo { &grown } else { &original };
            assert_eq!(&sha256(&img), want, "crash after {k}, redo {redo}");
            std::fs::remove_file(&img).unwrap();
        }
    }
}
