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
    missing(&format!(
        "test data {} not found (set ALYX_TEST_DATA)",
        path.display()
    ))
}

/// What a test does without something it needs: under `CI=true` it fails saying `what`;
/// elsewhere it is skipped with that message.
fn missing<T>(what: &str) -> Option<T> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "missing under CI: {what}");
    eprintln!("skipping: {what}");
    None
}

/// The Kafka-protocol broker the test command started (`ALYX_KAFKA_BROKERS`), or `None` (after
/// saying so) outside CI. Under `CI=true` a missing broker fails the test.
pub fn kafka_brokers() -> Option<String> {
    match std::env::var("ALYX_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => missing(
            "ALYX_KAFKA_BROKERS is not set: run the tests through scripts/test.sh, which starts the broker",
        ),
    }
}

/// The Redis the test command started or found (`ALYX_REDIS_URL`), or `None` (after saying
/// so) outside CI. Under `CI=true` a missing one fails the test.
pub fn redis_url() -> Option<String> {
    match std::env::var("ALYX_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => missing(
            "ALYX_REDIS_URL is not set: run the tests through scripts/test.sh, which starts Redis when none runs",
        ),
    }
}

/// The throwaway certificate authority and server certificate the test command made
/// (`ALYX_TEST_TLS_DIR`: `ca.pem`, `server.pem`, `server.key`, for `localhost`), or `None`
/// (after saying so) outside CI. Under `CI=true` a missing one fails the test.
pub fn tls_dir() -> Option<PathBuf> {
    match std::env::var_os("ALYX_TEST_TLS_DIR").map(PathBuf::from) {
        Some(d) if d.join("ca.pem").is_file() => Some(d),
        _ => missing(
            "ALYX_TEST_TLS_DIR names no test CA: run the tests through scripts/test.sh, which makes one",
        ),
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
        _ => missing(
            "ALYX_SPARK_URL is not set: run the tests through scripts/test.sh, which starts Spark Connect",
        ),
    }
}

/// The state directory of the single-node Slurm cluster the test command started
/// (`ALYX_SLURM_BASE`; `sbatch` and `squeue` talk to it), or `None` (after saying so) outside
/// CI. Under `CI=true` a missing cluster fails the test.
pub fn slurm_base() -> Option<std::path::PathBuf> {
    match std::env::var("ALYX_SLURM_BASE") {
        Ok(b) if !b.is_empty() => Some(b.into()),
        _ => missing(
            "ALYX_SLURM_BASE is not set: run the tests through scripts/test.sh, which starts Slurm",
        ),
    }
}

/// A Python with `modules` importable, for the peers the tests compare against (uproot,
/// awkward): `$ALYX_VENV/bin/python`, default `~/.cache/alyx/venv` (the test command makes
/// it). `None` (after saying so) when there is none outside CI; under `CI=true` a missing
/// Python or module fails the test.
pub fn python(modules: &[&str]) -> Option<PathBuf> {
    let venv = std::env::var_os("ALYX_VENV")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|c| c.join("alyx/venv")))
        .unwrap_or_default();
    let python = venv.join("bin/python");
    let ok = std::process::Command::new(&python)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    missing(&format!(
        "no Python with {modules:?} at {} (set ALYX_VENV or run scripts/test.sh, which makes it)",
        python.display()
    ))
}

/// A script of the peers' folder (`tests/peers`) or of `scripts/`.
pub fn peer_script(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let peers = root.join("peers").join(name);
    if peers.exists() {
        peers
    } else {
        root.join("../scripts").join(name)
    }
}

/// Runs SQL `text` on `dataset` with the local engine, checked first as every query is (the
/// diagnostics as the error when the check refuses it).
pub fn sql(
    dataset: &alyx_store::Dataset,
    text: &str,
) -> Result<polars::prelude::DataFrame, alyx_query::Error> {
    let checked = alyx_query::prepare(text, alyx_query::Engine::Local)
        .map_err(|d| alyx_query::invalid_query(&d))?;
    alyx_query::run_local(dataset, &checked)
}
