//! Collaboration benchmark: edit propagation latency from one client to 20 others through an
//! in-process alyxd (PostgreSQL stores every change before it fans out), memory per open
//! notebook, and load times of a notebook with 10,000 edits and of one with 100 cells and their
//! outputs (from bytes, and through alyxd).
//!
//! ```sh
//! cargo run --release --bin collab-bench -- [--readers 20] [--edits 300]
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alyx_analysis::notebook::{CellKind, CellOutput, Notebook};
use alyx_backend::Config;
use alyx_backend::auth::{Role, create_user};
use alyx_client::Client;
use alyx_client::collab::Update;
use alyx_core::histogram::{Binning, Histogram};
use anyhow::Result;
use clap::Parser;

mod support;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20)]
    readers: usize,
    #[arg(long, default_value_t = 300)]
    edits: usize,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://alyx@127.0.0.1:5432/alyx"
    )]
    database_url: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    support::with_scratch_database(&args.database_url, "alyx_cbench", async |db| {
        run(&args, db).await
    })
    .await
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A notebook of `cells` cells, each with a query and a 100-bin histogram output.
fn big_notebook(cells: usize) -> Notebook {
    let mut nb = Notebook::new("Dimuon study", "ada");
    for i in 0..cells {
        let id = nb
            .insert_cell(
                i,
                CellKind::Plot,
                &format!("-- histogram mass:100:60:120\nSELECT INV_MASS(a.pt, a.eta, a.phi, a.mass, b.pt, b.eta, b.phi, b.mass) AS mass\nFROM muons a JOIN muons b ON a.event_id = b.event_id AND a.idx < b.idx -- cell {i}"),
            )
            .expect("cell");
        let mut h = Histogram::new(Binning::Fixed {
            bins: 100,
            lo: 60.0,
            hi: 120.0,
        });
        for k in 0..5000 {
            h.fill(60.0 + (k as f64 * 0.0123 + i as f64) % 60.0, 1.0);
        }
        nb.set_output(
            &id,
            &CellOutput::Histograms(vec![("mass".into(), h)]),
            "local",
            0,
        )
        .expect("output");
    }
    nb
}

/// A notebook of one cell typed keystroke by keystroke, `edits` changes.
fn typed_notebook(edits: usize) -> Notebook {
    let mut nb = Notebook::new("Typed", "ada");
    let id = nb.insert_cell(0, CellKind::Markdown, "").expect("cell");
    let text = "The Z boson decays to two muons; its peak sits at 91.19 GeV. ";
    for (i, ch) in text.chars().cycle().take(edits).enumerate() {
        nb.splice_source(&id, i, 0, &ch.to_string()).expect("type");
    }
    nb
}

async fn run(args: &Args, db: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database_url = support::database_url(&args.database_url, db);
    config.database_pool = 16;
    config.listen = "127.0.0.1:0".parse()?;
    config.metrics_listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_path_buf();
    config.ingest.enabled = false;
    let alyxd = support::Alyxd::spawn(&config).await?;
    let url = alyxd.url.clone();
    let pool = alyxd.ready(&config).await?;
    let token = create_user(&pool, "ada", Role::Physicist).await?;
    let client = Client::connect(&url, &token).await?;
    println!(
        "collab-bench: {} readers, {} edits, 2 cores",
        args.readers, args.edits
    );

    // 1. Propagation: one writer types, 20 readers see each keystroke.
    let id = client.create_notebook("latency").await?.id;
    let mut writer = client.open_notebook(id, Notebook::empty("ada")).await?;
    writer
        .until(Duration::from_secs(10), |s| !s.notebook.title().is_empty())
        .await?;
    let cell = writer
        .notebook
        .insert_cell(0, CellKind::Markdown, "")
        .map_err(anyhow::Error::msg)?;
    writer.flush().await?;
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut readers = Vec::new();
    for _ in 0..args.readers {
        let mut s = client.open_notebook(id, Notebook::empty("reader")).await?;
        let cell = cell.clone();
        s.until(Duration::from_secs(10), |s| s.notebook.cell(&cell).is_ok())
            .await?;
        let (sent, latencies, edits) = (sent.clone(), latencies.clone(), args.edits);
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < edits {
                match tokio::time::timeout(Duration::from_secs(30), s.next()).await {
                    Ok(Ok(Some(Update::Synced))) => {}
                    Ok(Ok(Some(_))) => continue,
                    _ => break,
                }
                let len = s
                    .notebook
                    .cell(&cell)
                    .map_or(0, |c| c.source.chars().count());
                let now = Instant::now();
                let sent = sent.lock().map(|v| v.clone()).unwrap_or_default();
                let mut l = latencies.lock().expect("latencies");
                while seen < len.min(sent.len()) {
                    l.push(now.duration_since(sent[seen]).as_secs_f64() * 1e3);
                    seen += 1;
                }
            }
        }));
    }
    let t = Instant::now();
    for i in 0..args.edits {
        sent.lock().expect("sent").push(Instant::now());
        writer
            .notebook
            .splice_source(&cell, i, 0, "x")
            .map_err(anyhow::Error::msg)?;
        writer.flush().await?;
        // Keep answering the server (its acknowledgements) while typing ~50 keys/s.
        let _ = tokio::time::timeout(Duration::from_millis(20), writer.next()).await;
    }
    for r in readers {
        let _ = r.await;
    }
    let mut l = latencies.lock().expect("latencies").clone();
    l.sort_by(f64::total_cmp);
    println!(
        "  propagation, 1 writer → {} readers, {} keystrokes in {:.1} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries)",
        args.readers,
        args.edits,
        t.elapsed().as_secs_f64(),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN),
        l.len()
    );

    // 2. Memory per open notebook: 100 cells with outputs, loaded 50 times.
    let mut nb = big_notebook(100);
    let bytes = nb.save();
    let before = rss_bytes();
    let copies: Vec<Notebook> = (0..50)
        .map(|_| Notebook::load(&bytes, "x").expect("load"))
        .collect();
    let per = (rss_bytes().saturating_sub(before)) as f64 / copies.len() as f64;
    println!(
        "  memory per open notebook (100 cells with 100-bin histogram outputs, {:.0} kB saved): {:.2} MB",
        bytes.len() as f64 / 1e3,
        per / 1e6
    );
    drop(copies);

    // 3. Load times, from bytes and through alyxd.
    for (what, mut nb) in [
        ("10,000 edits", typed_notebook(10_000)),
        ("100 cells with outputs", big_notebook(100)),
    ] {
        let bytes = nb.save();
        let t = Instant::now();
        let loaded = Notebook::load(&bytes, "x").map_err(anyhow::Error::msg)?;
        let from_bytes = t.elapsed().as_secs_f64();
        let cells = loaded.cells().len();
        // Through alyxd: stored as a snapshot, opened by a new client with an empty copy.
        let id = client.create_notebook(what).await?.id;
        sqlx::query("UPDATE notebooks SET snapshot = $2 WHERE id = $1")
            .bind(id as i64)
            .bind(&bytes)
            .execute(&pool)
            .await?;
        let t = Instant::now();
        let mut s = client.open_notebook(id, Notebook::empty("bob")).await?;
        s.until(Duration::from_secs(60), |s| {
            s.notebook.cells().len() == cells
        })
        .await?;
        println!(
            "  load, {what} ({:.0} kB): from bytes {:.1} ms; opened through alyxd by a new client {:.1} ms",
            bytes.len() as f64 / 1e3,
            from_bytes * 1e3,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let _ = alyxd.stop().await;
    Ok(())
}
