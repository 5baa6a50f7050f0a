//! Helpers for the integration tests: where the real test files are, and the services the test
//! command starts.
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

/// The Kafka-protocol broker the test command started (`ALYX_KAFKA_BROKERS`), or `None` (after
/// saying so) outside CI. Under `CI=true` a missing broker fails the test.
pub fn kafka_brokers() -> Option<String> {
    match std::env::var("ALYX_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "ALYX_KAFKA_BROKERS is not set: run the tests through scripts/test.sh, which starts the broker"
            );
            eprintln!("skipping: no Kafka broker (set ALYX_KAFKA_BROKERS or run scripts/test.sh)");
            None
        }
    }
}

/// The URL of database `name` on the server of `DATABASE_URL` (where `#[sqlx::test]` makes
/// each test's database).
pub fn database_url(name: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set by the test command");
    let server = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(server, _)| server);
    format!("{server}/{name}")
}

/// The Spark Connect server the test command started (`ALYX_SPARK_URL`), or `None` (after
/// saying so) outside CI. Under `CI=true` a missing server fails the test.
pub fn spark_url() -> Option<String> {
    match std::env::var("ALYX_SPARK_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "ALYX_SPARK_URL is not set: run the tests through scripts/test.sh, which starts Spark Connect"
            );
            eprintln!(
                "skipping: no Spark Connect server (set ALYX_SPARK_URL or run scripts/test.sh)"
            );
            None
        }
    }
}

/// The state directory of the single-node Slurm cluster the test command started
/// (`ALYX_SLURM_BASE`; `sbatch` and `squeue` talk to it), or `None` (after saying so) outside
/// CI. Under `CI=true` a missing cluster fails the test.
pub fn slurm_base() -> Option<std::path::PathBuf> {
    match std::env::var("ALYX_SLURM_BASE") {
        Ok(b) if !b.is_empty() => Some(b.into()),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "ALYX_SLURM_BASE is not set: run the tests through scripts/test.sh, which starts Slurm"
            );
            eprintln!("skipping: no Slurm cluster (set ALYX_SLURM_BASE or run scripts/test.sh)");
            None
        }
    }
}
