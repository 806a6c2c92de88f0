//! The error table: complete for the article, and pinned by snapshots (update with
//! `INSTA_UPDATE=always cargo test -p winsvc --test codes` or `cargo insta review`).

use winsvc::codes;

#[test]
fn table_parses_and_covers_the_article() {
    let t = codes::try_table().expect("data/errors.json parses");
    for c in codes::ARTICLE_CODES {
        let e = codes::lookup(c).unwrap_or_else(|| panic!("{c} missing"));
        assert!(e.in_article);
        assert!(e.symbol.starts_with("ERROR_"));
    }
    // Every code the analysis can report has a row.
    for c in [2, 126, 193, 1058, 1059, 1060, 1068, 1069, 1075, 1079] {
        assert!(codes::lookup(c).is_some(), "{c}");
    }
    assert_eq!(t.iter().filter(|e| e.in_article).count(), 10);
    // The article's "contact support" codes get a winrescue action instead.
    for c in [1059, 1068, 1079] {
        let e = codes::lookup(c).unwrap();
        assert_eq!(e.article_action, "Contact support.");
        assert!(!e.winrescue.to_lowercase().contains("support"));
    }
}

#[test]
fn table_json_snapshot() {
    insta::assert_json_snapshot!("error_table", codes::table());
}

#[test]
fn table_text_snapshot() {
    insta::assert_snapshot!("error_table_text", codes::render_text(codes::table()));
}
