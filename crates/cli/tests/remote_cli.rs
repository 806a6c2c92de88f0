//! `winrescue diagnose URL`: a disk image served over HTTP by a local test server (127.0.0.1,
//! see `fixtures::http`) gives the same diagnosis as the file itself, reads a few megabytes in
//! a few dozen requests, and never shows the SAS.

mod common;
use common::dhcp;

use std::time::{Duration, Instant};

use assert_cmd::Command;
use fixtures::http::{Behaviour, Server};
use serde_json::Value;

const IMAGE: &str = "images/gen2-gpt-win7-dhcp-disabled.raw";
/// A query that looks like an Azure SAS; none of its values may appear in any output.
const SAS: &str =
    "sv=2021-08-06&sr=b&sp=r&se=2030-01-01T00%3A00%3A00Z&sig=c2VjcmV0c2lnbmF0dXJlMTIz";
/// What a diagnosis of the 96 MiB fixture may cost: its SYSTEM hive (12.2 MiB) and
/// System.evtx (3.1 MiB) are read whole, NTFS metadata in 64 KiB blocks with 1 MiB read-ahead,
/// the first sector of each partition and SOFTWARE's bins exactly. Measured: 13 requests, 18 MB.
const MAX_BYTES: u64 = 20 << 20;
const MAX_REQUESTS: u64 = 16;

fn winrescue() -> Command {
    Command::cargo_bin("winrescue").unwrap()
}

fn assert_no_secret(text: &str) {
    for secret in ["c2VjcmV0c2lnbmF0dXJlMTIz", "2030-01-01", "sp=r", "sr=b"] {
        assert!(
            !text.contains(secret),
            "secret {secret:?} shown in {text:?}"
        );
    }
}

fn serve(b: Behaviour) -> (Server, String) {
    let server = Server::start(std::fs::read(fixtures::path(IMAGE)).unwrap(), b);
    let url = format!("{}?{SAS}", server.url("osdisk.raw"));
    (server, url)
}

/// Runs `diagnose --json --stats` on `target`: (report, stderr, exit code).
fn diagnose_json(target: &str) -> (Value, String, i32) {
    let out = winrescue()
        .args(["diagnose", "--json", "--stats", target])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let json =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\nstderr: {stderr}"));
    assert_no_secret(&stdout);
    assert_no_secret(&stderr);
    (json, stderr, out.status.code().unwrap_or(-1))
}

#[test]
fn diagnose_over_http_gives_the_same_report_as_the_file() {
    let (server, url) = serve(Behaviour::default());
    let local = fixtures::path(IMAGE);
    let (mut here, _, code_here) = diagnose_json(local.to_str().unwrap());
    let (mut there, stderr, code_there) = diagnose_json(&url);
    assert_eq!(code_here, 1, "the fixture's DHCP Client is disabled");
    assert_eq!(code_there, code_here);

    let transfer = there["transfer"].clone();
    let requests = transfer["requests"].as_u64().unwrap();
    let bytes = transfer["bytes"].as_u64().unwrap();
    assert_eq!(requests, server.requests());
    assert_eq!(bytes, server.bytes());
    eprintln!("diagnose over HTTP: {requests} requests, {bytes} bytes");
    assert!(bytes <= MAX_BYTES, "{bytes} bytes read");
    assert!(requests <= MAX_REQUESTS, "{requests} requests");
    assert!(stderr.contains(&format!("transfer: {requests} requests, {bytes} bytes")));
    assert!(here["transfer"].is_null(), "a local target has no transfer");

    let shown = there["target"].as_str().unwrap().to_string();
    assert!(
        shown.ends_with("osdisk.raw?sv=REDACTED&sr=REDACTED&sp=REDACTED&se=REDACTED&sig=REDACTED"),
        "{shown}"
    );
    for r in [&mut here, &mut there] {
        let o = r.as_object_mut().unwrap();
        o.remove("target");
        o.remove("transfer");
    }
    assert_eq!(here, there);
}

#[test]
fn diagnose_text_over_http_names_the_url_redacted() {
    let (_server, url) = serve(Behaviour::default());
    let out = winrescue()
        .args(["diagnose", &url])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_no_secret(&stdout);
    assert!(stdout.contains("sig=REDACTED"), "{stdout}");
    assert!(stdout.contains("will not start: error 1058"), "{stdout}");
    // The repair command to run names no URL (the one shown is redacted), and says how to
    // get a writable one.
    assert!(
        stdout.contains("winrescue repair 'URL' --apply"),
        "{stdout}"
    );
    assert!(
        stdout.contains("az disk grant-access --access-level Write"),
        "{stdout}"
    );
}

#[test]
fn diagnose_over_a_slow_flaky_server() {
    // 20 ms per request, two 503s with Retry-After, every 7th connection cut half way.
    let (server, url) = serve(Behaviour {
        delay: Duration::from_millis(20),
        busy_first: 2,
        drop_every: 7,
        ..Default::default()
    });
    let started = Instant::now();
    let (there, _, code) = diagnose_json(&url);
    assert_eq!(code, 1);
    let t = &there["transfer"];
    assert!(t["retries"].as_u64().unwrap() >= 2, "{t}");
    assert_eq!(t["requests"].as_u64().unwrap(), server.requests());
    eprintln!(
        "slow, flaky server: {t} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_server_without_ranges_is_refused_with_one_line() {
    let (_server, url) = serve(Behaviour {
        no_ranges: true,
        ..Default::default()
    });
    let out = winrescue()
        .args(["diagnose", &url])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("does not serve byte ranges"), "{stderr}");
    assert_no_secret(&stderr);
}

#[test]
fn an_expired_sas_is_one_clear_line() {
    let (_server, url) = serve(Behaviour {
        auth_failed: true,
        ..Default::default()
    });
    let out = winrescue()
        .args(["diagnose", "--json", &url])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("the SAS has expired"), "{stderr}");
    assert!(stderr.contains("403 AuthenticationFailed"), "{stderr}");
    assert_no_secret(&stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn reading_commands_take_a_url_and_never_show_its_sas() {
    let (_server, url) = serve(Behaviour::default());
    let cases: &[(&[&str], &str)] = &[
        (&["sc", &url, "query", "DHCP"], "SERVICE_NAME: Dhcp"),
        (&["sc", &url, "qc", "DHCP"], "START_TYPE"),
        (
            &[
                "reg",
                &url,
                "query",
                r"HKLM\SYSTEM\CurrentControlSet\Services\Dhcp",
                "/v",
                "Start",
            ],
            "Start",
        ),
        (&["events", &url, "--service", "Dhcp"], ""),
        (&["runbook", &url], "Diagnosed on"),
        // A write is refused before anything is sent: writes through a URL are not built.
        (&["repair", &url, "--apply"], ""),
    ];
    for (args, want) in cases {
        let out = winrescue()
            .args(*args)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_no_secret(&stdout);
        assert_no_secret(&stderr);
        assert!(stdout.contains(want), "{args:?}: {stdout}\n{stderr}");
        if args[0] == "repair" {
            assert_ne!(out.status.code(), Some(0), "{stderr}");
        } else {
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{args:?}: {stdout}\n{stderr}"
            );
        }
    }
}

#[test]
fn several_targets_give_json_lines_in_order_and_the_worst_exit_code() {
    let (_server, url) = serve(Behaviour {
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let local = fixtures::path(IMAGE);
    let healthy = fixtures::path("images/gen2-gpt-win7-system.raw");
    let missing = "/nonexistent/osdisk.vhd";
    let targets = [
        url.as_str(),
        local.to_str().unwrap(),
        missing,
        healthy.to_str().unwrap(),
    ];
    let out = winrescue()
        .args(["diagnose", "--json", "--jobs", "3"])
        .args(targets)
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_no_secret(&stdout);
    assert_no_secret(&stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the worst: an unreadable target"
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0]["target"]
        .as_str()
        .unwrap()
        .contains("sig=REDACTED"));
    assert_eq!(dhcp(&lines[0])["code"], 1058);
    assert_eq!(dhcp(&lines[1])["code"], 1058);
    assert_eq!(lines[2]["target"], missing);
    assert_eq!(lines[2]["exit_code"], 3);
    assert!(lines[2]["error"].as_str().unwrap().contains(missing));
    // The healthy image's one finding: its firewall lets RDP in on Domain and Private only.
    assert_eq!(lines[3]["verdict"], "may_be_blocked", "{}", lines[3]);
    assert!(dhcp(&lines[3])["code"].is_null(), "{}", lines[3]);

    // Text: the reports, then a summary table; without the failing one the worst is 1.
    let out = winrescue()
        .args(["diagnose", "--jobs", "2", "--rule", "service:Dhcp", &url])
        .arg(&healthy)
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_no_secret(&stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("summary (2 targets):"), "{stdout}");
    assert!(stdout.contains("  0  "), "{stdout}");
    assert!(
        stdout.contains("DHCP Client (Dhcp) will not start: error 1058"),
        "{stdout}"
    );
}

/// 16 URL targets with 20 ms per request, one by one and 8 at a time: prints both times.
#[test]
fn many_url_targets_run_concurrently() {
    let (_server, url) = serve(Behaviour {
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let targets: Vec<String> = (0..16).map(|_| url.clone()).collect();
    let mut times = Vec::new();
    for jobs in ["1", "8"] {
        let started = Instant::now();
        let out = winrescue()
            .args(["diagnose", "--json", "--jobs", jobs])
            .args(&targets)
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 16);
        times.push(started.elapsed().as_secs_f64());
    }
    eprintln!(
        "16 URL targets, 20 ms per request: --jobs 1 {:.2} s, --jobs 8 {:.2} s",
        times[0], times[1]
    );
}

/// `--targets-from FILE` (comments and blank lines skipped, after the command line's targets)
/// and `--shard I/N`: the N shards together diagnose every target exactly once, target k in
/// shard k mod N (0-based), each shard in the list's order; a shard with nothing to do says
/// nothing and exits 0.
#[test]
fn a_target_list_split_into_shards() {
    let (_server, url) = serve(Behaviour::default());
    let broken = fixtures::path(IMAGE);
    let healthy = fixtures::path("images/gen2-gpt-win7-system.raw");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("disks.txt");
    let names = [
        url.clone(),
        healthy.display().to_string(),
        "/nonexistent/a.vhd".to_string(),
        broken.display().to_string(),
        "/nonexistent/b.vhd".to_string(),
    ];
    std::fs::write(
        &list,
        format!(
            "# the fleet\n\n{}\n   # a comment after blanks\n{}\n{}\n\n{}\n",
            names[1], names[2], names[3], names[4]
        ),
    )
    .unwrap();
    let run = |shard: Option<&str>| {
        let mut cmd = winrescue();
        cmd.args([
            "diagnose",
            "--json",
            "--jobs",
            "2",
            "--rule",
            "service:Dhcp",
        ])
        .arg(&url)
        .arg("--targets-from")
        .arg(&list);
        if let Some(s) = shard {
            cmd.args(["--shard", s]);
        }
        let out = cmd.timeout(Duration::from_secs(180)).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_no_secret(&stdout);
        assert_no_secret(&String::from_utf8(out.stderr).unwrap());
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, out.status.code().unwrap())
    };
    let target_of = |v: &Value| v["target"].as_str().unwrap().to_string();
    let (all, code) = run(None);
    assert_eq!(code, 3, "the worst: an unreadable target");
    let shown: Vec<String> = all.iter().map(target_of).collect();
    assert_eq!(shown.len(), 5);
    assert!(shown[0].contains("sig=REDACTED"));
    assert_eq!(shown[1..], names[1..]);

    for n in [1usize, 2, 3, 7] {
        let mut seen = Vec::new();
        for i in 0..n {
            let (lines, code) = run(Some(&format!("{i}/{n}")));
            let mine: Vec<String> = lines.iter().map(target_of).collect();
            let want: Vec<String> = shown
                .iter()
                .enumerate()
                .filter(|(k, _)| k % n == i)
                .map(|(_, t)| t.clone())
                .collect();
            assert_eq!(mine, want, "shard {i}/{n}");
            let worst = lines
                .iter()
                .map(|l| match l["exit_code"].as_u64() {
                    Some(c) => c as i32,
                    None if dhcp(l)["code"].is_null() => 0,
                    None => 1,
                })
                .max()
                .unwrap_or(0);
            assert_eq!(code, worst, "shard {i}/{n}: {lines:?}");
            seen.extend(mine);
        }
        seen.sort();
        let mut every = shown.clone();
        every.sort();
        assert_eq!(seen, every, "{n} shards cover the list once");
    }

    for bad in ["2/2", "1/0", "x"] {
        let out = winrescue()
            .args(["diagnose", "--targets-from"])
            .arg(&list)
            .args(["--shard", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    let out = winrescue()
        .args(["diagnose", "--targets-from", "/nonexistent/list.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/nonexistent/list.txt"));
}
