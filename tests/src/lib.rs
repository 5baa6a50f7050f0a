//! Helpers for the integration tests: where the real test files are.
//!
//! Files come from `$ALYX_TEST_DATA` (the test command sets it), else `../shared/data` beside
//! the checkout. Under `CI=true` a missing file fails the test; elsewhere the test is skipped
//! with a message.

use std::path::PathBuf;

/// The path of a test file, or `None` (after saying so) when it is absent outside CI.
pub fn data_file(relative: &str) -> Option<PathBuf> {
    let root = std::env::var_os("ALYX_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let path = root.join(relative);
    if path.exists() {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "test data missing under CI: {} (set ALYX_TEST_DATA)",
        path.display()
    );
    eprintln!(
        "skipping: {} not found (set ALYX_TEST_DATA)",
        path.display()
    );
    None
}
