//! The diagnosis report of every fixture image, as text and as JSON: a change in what a user
//! reads (or a script parses) shows up as a snapshot difference to review.

use std::path::Path;

use assert_cmd::Command;

/// The fixture images: healthy, broken one way each (by hivex), and a dirty Windows 10 disk.
const IMAGES: &[&str] = &[
    "gen2-gpt-win7-system",
    "gen2-gpt-win7-dhcp-disabled",
    "gen2-gpt-win7-afd-disabled",
    "gen2-gpt-win7-cycle-nsi-dhcp",
    "gen2-gpt-win7-group-member-account",
    "gen2-gpt-win7-current-broken",
    "gen1-mbr-win10-dirty-system",
];

fn diagnose(image: &Path, json: bool) -> (String, i32) {
    let mut cmd = Command::cargo_bin("winrescue").unwrap();
    cmd.env("WINRESCUE_STATE_DIR", image.parent().unwrap())
        .env("NO_COLOR", "1")
        .arg("diagnose")
        .arg(image);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&image.display().to_string(), "IMAGE");
    (text, out.status.code().unwrap_or(-1))
}

#[test]
fn every_fixture_image_reports_the_same_text_and_json() {
    for name in IMAGES {
        let image = fixtures::path(&format!("images/{name}.raw"));
        let (text, code) = diagnose(&image, false);
        let (json, json_code) = diagnose(&image, true);
        assert_eq!(code, json_code, "{name}: text and JSON give one exit code");
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["schema_version"], 1);
        // The exit code follows the verdict, in both.
        let blocked = report["verdict"] != "nothing_blocks";
        assert_eq!(code, i32::from(blocked), "{name}: {}", report["verdict"]);
        // Every finding the text calls broken is broken in the JSON, by rule id.
        for f in report["findings"].as_array().unwrap() {
            if f["status"] == "broken" && f["severity"] != "notice" {
                let id = f["rule"].as_str().unwrap();
                assert!(
                    text.contains(&format!("\n{id}: ")),
                    "{name}: {id} missing in\n{text}"
                );
            }
        }
        insta::assert_snapshot!(format!("report_text_{name}"), text);
        insta::assert_snapshot!(format!("report_json_{name}"), json);
    }
}
