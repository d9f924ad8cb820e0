//! `docs/keys.md` is generated from the key table; this test keeps it true.
//! Run with `UPDATE_DOCS=1` to rewrite it.

use std::path::Path;

#[test]
fn keys_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/keys.md");
    let want = sparrow_lang::keys::reference_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/keys.md is stale: run `UPDATE_DOCS=1 cargo test -p sparrow-lang --test docs`"
    );
}
