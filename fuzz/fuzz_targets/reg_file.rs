//! Any text given as a `.reg` file or a script of reg lines: decoded (UTF-16 or UTF-8), parsed,
//! every section's key resolved by the path grammar and applied to the real Windows 7 SYSTEM
//! hive in memory; the script parser and cmd.exe's tokenizer on the same text. Each must return
//! Ok or a clean error: no panic, no hang; an edit that succeeds gives a hive the checker finds
//! sound.
//!
//! Input: the file's bytes. Seeds: any `.reg` export (`winrescue hive export`), any `.cmd`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use regf::edit::Editor;
use wincmd::path::{HiveName, Mounts};

fn system() -> &'static [u8] {
    static HIVE: OnceLock<Vec<u8>> = OnceLock::new();
    HIVE.get_or_init(|| fixtures::bytes("hives/win7-SYSTEM"))
}

fuzz_target!(|data: &[u8]| {
    let text = wincmd::script::decode_text(data);
    let _ = wincmd::script::parse_script(&text);
    for line in text.lines().take(64) {
        let _ = wincmd::script::cmd_tokens(line);
    }
    let Ok(sections) = regf::regfile::parse(&text) else {
        return;
    };
    let mounts = Mounts::default();
    let mut ed = Editor::new(system().to_vec(), 0).expect("the fixture is a hive");
    let mut changed = false;
    for s in sections.iter().take(32) {
        let Ok(k) = mounts.resolve(&s.path) else {
            continue;
        };
        // One editor holds SYSTEM; sections of other hives are resolved only.
        if k.hive != HiveName::System {
            continue;
        }
        match wincmd::change::apply_section(&mut ed, &k, s) {
            Ok(applied) => changed |= wincmd::change::any_change(&applied),
            // A failed edit may leave the editor part way: start again from the fixture.
            Err(_) => {
                ed = Editor::new(system().to_vec(), 0).expect("the fixture is a hive");
                changed = false;
            }
        }
    }
    if changed {
        if let Ok(edited) = ed.finish() {
            let report = regf::check::check(&edited.bytes);
            assert!(report.is_sound(), "{:?}", report.errors().next());
        }
    }
});
