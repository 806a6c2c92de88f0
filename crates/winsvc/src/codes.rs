//! The Azure article's Win32 error table as data (`data/errors.json`): for each code its
//! symbolic name, meaning, the offline evidence that points to it (registry values and Service
//! Control Manager event ids), the article's own fix, and what winrescue does instead of
//! "contact support". Serializable so that the CLI prints it as text or JSON.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Where the code leaves traces that can be read offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Registry configuration that points to the code.
    pub registry: Vec<String>,
    /// Service Control Manager event ids (System log) that go with it.
    pub events: Vec<u32>,
    pub events_note: String,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub code: u32,
    pub symbol: String,
    pub meaning: String,
    /// Whether the article's table names the code (the others are reported by the analysis).
    pub in_article: bool,
    pub evidence: Evidence,
    pub article_action: String,
    /// The `sc` / `reg` commands the article gives, verbatim.
    pub article_commands: Vec<String>,
    /// What winrescue does.
    pub winrescue: String,
}

#[derive(Deserialize)]
struct File {
    errors: Vec<ErrorEntry>,
}

const DATA: &str = include_str!("../data/errors.json");

/// The whole table, article codes first.
pub fn table() -> &'static [ErrorEntry] {
    static TABLE: OnceLock<Vec<ErrorEntry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is part of the crate and a test parses it; a failure here is a build error.
        serde_json::from_str::<File>(DATA)
            .map(|f| f.errors)
            .unwrap_or_default()
    })
}

/// Parses the table, reporting a mistake in the data file (used by the tests).
pub fn try_table() -> crate::Result<Vec<ErrorEntry>> {
    serde_json::from_str::<File>(DATA)
        .map(|f| f.errors)
        .map_err(|e| crate::Error::BadData {
            file: "data/errors.json",
            what: e.to_string(),
        })
}

/// The row for `code`.
pub fn lookup(code: u32) -> Option<&'static ErrorEntry> {
    table().iter().find(|e| e.code == code)
}

/// The symbolic name of `code` (`ERROR_SERVICE_DISABLED`), or `"(unlisted Win32 error)"` for a code
/// outside the table.
pub fn symbol(code: u32) -> &'static str {
    lookup(code)
        .map(|e| e.symbol.as_str())
        .unwrap_or("(unlisted Win32 error)")
}

/// The codes the article's table names, in its order.
pub const ARTICLE_CODES: [u32; 10] = [5, 1053, 1058, 1059, 1067, 1068, 1069, 1070, 1077, 1079];

/// The table as text, one block per code (what `winrescue codes` prints).
pub fn render_text(entries: &[ErrorEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!(
            "{} {}{}\n  meaning: {}\n",
            e.code,
            e.symbol,
            if e.in_article {
                ""
            } else {
                " (not in the article)"
            },
            e.meaning
        ));
        for r in &e.evidence.registry {
            out.push_str(&format!("  registry: {r}\n"));
        }
        let ids: Vec<String> = e.evidence.events.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "  events: {} ({})\n  article: {}\n",
            ids.join(", "),
            e.evidence.events_note,
            e.article_action
        ));
        for c in &e.article_commands {
            out.push_str(&format!("    {c}\n"));
        }
        out.push_str(&format!("  winrescue: {}\n", e.winrescue));
    }
    out
}
