//! Writing a disk where it lies: `repair --apply` and `undo` on an Azure page blob in Azurite
//! (see `common/azurite.rs`), through a SAS URL. The journal stays on this machine and never
//! holds the SAS; the blob comes back bit for bit (sha256 of the downloaded blob); a blob written
//! by someone else, a read-only or expired SAS, 503s and lost answers during the writes are
//! each refused or survived, never leaving a torn disk.
//!
//! Without the emulator these tests say so and pass, except under CI (`CI=true`).

#[path = "common/azurite.rs"]
mod azurite;
#[path = "common/blob_run.rs"]
mod blob_run;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use azurite::{blob_sas, start, Azurite};
use blob_run::{journal_json, sha256, unhex, Run};
use fault_proxy::{Faults, Proxy};

/// The Windows 7 disk whose DHCP Client is disabled (1058): `repair` enables it.
const IMAGE: &str = "images/gen2-gpt-win7-dhcp-disabled.raw";
const FOREVER: &str = "2099-01-01T00:00:00Z";

fn upload(az: &Azurite, blob: &str) -> Vec<u8> {
    let data = std::fs::read(fixtures::path(IMAGE)).unwrap();
    az.upload_page_blob(blob, &data);
    data
}

#[test]
fn repair_a_blob_then_undo_it_bit_for_bit() {
    let Some(az) = start() else { return };
    let original = upload(&az, "os.raw");
    let rw = blob_sas("os.raw", "rw", "", FOREVER);
    let url = az.blob_url("os.raw", &rw);
    let mut run = Run::new();

    let (code, out, err) = run.winrescue(&["diagnose", &url]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("winrescue repair 'URL' --apply"), "{out}");

    let before = az.etag("os.raw");
    let (code, out, err) = run.winrescue(&["repair", &url, "--apply"]);
    assert_eq!(code, 0, "{out}{err}");
    let after = az.etag("os.raw");
    assert_ne!(before, after, "the blob was written");

    let (code, out, err) = run.winrescue(&["diagnose", &url]);
    assert_eq!(code, 0, "healthy after the repair: {out}{err}");

    // The journal: local, naming the blob without its SAS, with both ETags and the size.
    let journals = run.journals(".json");
    assert_eq!(journals.len(), 1, "{journals:?}");
    let j = journal_json(&journals[0]);
    let address = format!("{}/{}/os.raw", az.base, azurite::CONTAINER);
    assert_eq!(j["target"], address.as_str());
    let dev = &j["devices"][0];
    assert_eq!(dev["path"], address.as_str());
    assert_eq!(dev["identity"]["path"], address.as_str());
    assert_eq!(dev["etag_before"], before.as_str());
    assert_eq!(dev["etag_after"], after.as_str());
    assert_eq!(dev["file_len"], original.len() as u64);

    // Undo needs the URL again: the journal does not have it.
    let journal = journals[0].to_str().unwrap();
    let (code, _, err) = run.winrescue(&["undo", journal]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&address) && err.contains("--url"), "{err}");
    assert_eq!(az.etag("os.raw"), after, "nothing was written");

    let (code, out, err) = run.winrescue(&["undo", journal, "--url", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        sha256(&az.download("os.raw")),
        sha256(&original),
        "the blob is the original again, bit for bit"
    );
    let (code, out, err) = run.winrescue(&["undo", journal, "--url", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("already undone"), "{out}");

    let (code, _, _) = run.winrescue(&["diagnose", &url]);
    assert_eq!(code, 1, "broken again, as it was");
    run.no_secret(&rw);
}

#[test]
fn undo_is_refused_when_someone_else_wrote_the_blob() {
    let Some(az) = start() else { return };
    upload(&az, "other.raw");
    let rw = blob_sas("other.raw", "rw", "", FOREVER);
    let url = az.blob_url("other.raw", &rw);
    let mut run = Run::new();
    let (code, out, err) = run.winrescue(&["repair", &url, "--apply"]);
    assert_eq!(code, 0, "{out}{err}");
    let journal = run.journals(".json").remove(0);

    // Someone else writes a page far from the hive: the bytes undo restores are untouched,
    // but the blob is another one now.
    let far = 32 << 10; // between the GPT entries and the first partition
    az.put_pages("other.raw", far, &[0x5A; 512]);
    let changed = az.download("other.raw");
    let (code, _, err) = run.winrescue(&["undo", journal.to_str().unwrap(), "--url", &url]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("written by someone else"), "{err}");
    assert_eq!(
        sha256(&az.download("other.raw")),
        sha256(&changed),
        "nothing was written"
    );
    run.no_secret(&rw);
}

#[test]
fn a_blob_changed_between_open_and_write_is_refused_with_nothing_written() {
    let Some(az) = start() else { return };
    let original = upload(&az, "race.raw");
    let rw = blob_sas("race.raw", "rw", "", FOREVER);
    // Just before winrescue's last check, someone else writes a page.
    let (agent, base) = az.client();
    let far = 32 << 10; // between the GPT entries and the first partition
    let proxy = Proxy::start(
        &az.base,
        Faults {
            before_revalidate: Some(Box::new(move || {
                azurite::put_pages(&agent, &base, "race.raw", far, &[0xA5; 512])
            })),
            ..Faults::default()
        },
    );
    let mut run = Run::new();
    let (code, out, err) = run.winrescue(&[
        "repair",
        &proxy.url(&az.blob_url("race.raw", &rw)),
        "--apply",
    ]);
    assert_eq!(code, 4, "refused: {out}{err}");
    assert!(err.contains("412"), "{err}");
    assert_eq!(proxy.puts.load(std::sync::atomic::Ordering::SeqCst), 0);
    let mut want = original.clone();
    want[far..far + 512].fill(0xA5);
    assert_eq!(
        sha256(&az.download("race.raw")),
        sha256(&want),
        "only the other writer's page changed"
    );
    assert!(
        run.journals("").is_empty(),
        "no journal, not even a pending one"
    );
    run.no_secret(&rw);
}

#[test]
fn read_only_and_expired_sas_are_refused_for_writing() {
    let Some(az) = start() else { return };
    upload(&az, "ro.raw");
    let before = az.etag("ro.raw");
    let mut run = Run::new();

    let ro = blob_sas("ro.raw", "r", "", FOREVER);
    let (code, _, err) = run.winrescue(&["repair", &az.blob_url("ro.raw", &ro), "--apply"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("does not allow writing"), "{err}");
    assert!(
        err.contains("az disk grant-access --access-level Write"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    run.no_secret(&ro);

    let expired = blob_sas(
        "ro.raw",
        "rw",
        "2020-01-01T00:00:00Z",
        "2020-01-02T00:00:00Z",
    );
    let (code, _, err) = run.winrescue(&["repair", &az.blob_url("ro.raw", &expired), "--apply"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("expired") && err.contains("403"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(az.etag("ro.raw"), before, "nothing was written");
    run.no_secret(&expired);
}

/// 503s and answers lost after the service took the pages: the repair still ends repaired, and
/// undo gives the original back.
#[test]
fn busy_service_and_lost_answers_during_the_writes() {
    let Some(az) = start() else { return };
    let original = upload(&az, "flaky.raw");
    let rw = blob_sas("flaky.raw", "rw", "", FOREVER);
    let direct = az.blob_url("flaky.raw", &rw);
    let proxy = Proxy::start(
        &az.base,
        Faults {
            busy_puts: 2,
            lose_put_answer_every: 3,
            ..Faults::default()
        },
    );
    let mut run = Run::new();
    let (code, out, err) = run.winrescue(&["repair", &proxy.url(&direct), "--apply"]);
    assert_eq!(code, 0, "{out}{err}");
    let puts = proxy.puts.load(std::sync::atomic::Ordering::SeqCst);
    assert!(puts >= 6, "the faults were met: {puts} Put Page requests");
    let (code, _, _) = run.winrescue(&["diagnose", &direct]);
    assert_eq!(code, 0, "repaired");
    let journal = run.journals(".json").remove(0);
    // The journal names the blob as it was reached (through the proxy, which misbehaves on).
    let (code, out, err) = run.winrescue(&[
        "undo",
        journal.to_str().unwrap(),
        "--url",
        &proxy.url(&direct),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(sha256(&az.download("flaky.raw")), sha256(&original));
    run.no_secret(&rw);
}

/// The network goes away part way through the writes: the run stops with its pending journal,
/// and `undo` (or `undo --redo`) of that journal ends in the original (or the repaired) disk,
/// never a mix.
#[test]
fn a_network_gone_part_way_leaves_a_pending_journal_that_resolves() {
    let Some(az) = start() else { return };
    let original = upload(&az, "cut.raw");
    let rw = blob_sas("cut.raw", "rw", "", FOREVER);
    let direct = az.blob_url("cut.raw", &rw);
    let mut run = Run::new();

    for redo in [false, true] {
        let proxy = Proxy::start(
            &az.base,
            Faults {
                cut_puts_after: Some(1),
                ..Faults::default()
            },
        );
        let (code, out, err) = run.winrescue(&["repair", &proxy.url(&direct), "--apply"]);
        assert_eq!(code, 5, "interrupted: {out}{err}");
        let pending = run.journals(".winrescue-journal");
        assert_eq!(pending.len(), 1, "{err}");
        // The repaired image: the original with every range of the journal written.
        let j = journal_json(&pending[0]);
        let mut full = original.clone();
        let ranges = j["ranges"].as_array().unwrap();
        assert!(ranges.len() >= 2, "{} ranges", ranges.len());
        for r in ranges {
            let at = r["offset"].as_u64().unwrap() as usize;
            let after = unhex(r["after"].as_str().unwrap());
            full[at..at + after.len()].copy_from_slice(&after);
        }
        let repaired = sha256(&full);
        let now = sha256(&az.download("cut.raw"));
        assert!(now != sha256(&original) && now != repaired, "part written");
        // The network is back.
        proxy.set_faults(Faults::default());
        let through = proxy.url(&direct);
        let mut args = vec!["undo", pending[0].to_str().unwrap(), "--url", &through];
        if redo {
            args.push("--redo");
        }
        let (code, out, err) = run.winrescue(&args);
        assert_eq!(code, 0, "{out}{err}");
        let want = if redo { &repaired } else { &sha256(&original) };
        assert_eq!(&sha256(&az.download("cut.raw")), want);
        let (code, _, _) = run.winrescue(&["diagnose", &direct]);
        assert_eq!(
            code,
            if redo { 0 } else { 1 },
            "repaired, or broken as before"
        );
        if !redo {
            continue;
        }
        // Undo the finished write too: the original again.
        let done = run.journals(".json");
        let undo = done
            .iter()
            .rev()
            .find(|p| p.to_string_lossy().contains("-undo-"))
            .unwrap();
        let (code, out, err) = run.winrescue(&["undo", undo.to_str().unwrap(), "--url", &through]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(sha256(&az.download("cut.raw")), sha256(&original));
    }
    run.no_secret(&rw);
}

/// `reg add` and `sc config` write a blob as `repair` does, each undone bit for bit.
#[test]
fn reg_add_and_sc_config_on_a_blob() {
    let Some(az) = start() else { return };
    let original = upload(&az, "cmd.raw");
    let rw = blob_sas("cmd.raw", "rw", "", FOREVER);
    let url = az.blob_url("cmd.raw", &rw);
    let mut run = Run::new();
    let writes: [&[&str]; 2] = [
        &[
            "reg",
            &url,
            "add",
            r"HKLM\SYSTEM\ControlSet001\Services\Dhcp",
            "/v",
            "Start",
            "/t",
            "REG_DWORD",
            "/d",
            "2",
            "/f",
        ],
        &["sc", &url, "config", "DHCP", "start=", "auto"],
    ];
    let query = [
        "reg",
        &url,
        "query",
        r"HKLM\SYSTEM\ControlSet001\Services\Dhcp",
        "/v",
        "Start",
    ];
    for (n, args) in writes.into_iter().enumerate() {
        // (The arguments hold the SAS: never put in a message.)
        let (code, out, err) = run.winrescue(args);
        assert_eq!(code, 0, "write {n}: {out}{err}");
        let (code, out, err) = run.winrescue(&query);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("REG_DWORD    0x2"), "write {n}: {out}");
        let journal = run
            .journals(".json")
            .into_iter()
            .rev()
            .find(|p| p.to_string_lossy().contains("-undo-"))
            .unwrap();
        std::fs::rename(&journal, journal.with_extension("done")).unwrap();
        let moved = journal.with_extension("done");
        let (code, out, err) = run.winrescue(&["undo", moved.to_str().unwrap(), "--url", &url]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            sha256(&az.download("cmd.raw")),
            sha256(&original),
            "write {n}"
        );
    }
    run.no_secret(&rw);
}
