//! What the benchmark binaries share: a scratch PostgreSQL database dropped afterwards, and an
//! alyxd running in the benchmark's own process.
#![allow(dead_code)] // each benchmark uses its part

use std::time::{Duration, Instant};

use alyx_backend::{Config, server};
use anyhow::{Context, Result};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs `bench` with the name of a new database on the server of `admin_url`, then drops the
/// database (with its connections), whether the benchmark succeeded or not.
pub async fn with_scratch_database<T>(
    admin_url: &str,
    prefix: &str,
    bench: impl AsyncFnOnce(&str) -> Result<T>,
) -> Result<T> {
    let db = format!("{prefix}_{}", std::process::id());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("PostgreSQL")?;
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    let result = bench(&db).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

/// The URL of database `db` on the server of `url`.
pub fn database_url(url: &str, db: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{db}")
}

/// An alyxd serving inside the benchmark.
pub struct Alyxd {
    /// `http://…` of its gRPC port.
    pub url: String,
    pub metrics: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<alyx_backend::Result<()>>,
}

impl Alyxd {
    /// Binds and starts alyxd with `config`; it runs its migrations as it starts.
    pub async fn spawn(config: &Config) -> Result<Self> {
        let (grpc, metrics) = server::bind(config).await?;
        let url = format!("http://{}", grpc.local_addr()?);
        let metrics_addr = metrics.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(config.clone(), grpc, metrics, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            url,
            metrics: metrics_addr,
            stop,
            task,
        })
    }

    /// Waits (a minute at most) until alyxd's migrations made `table` and its port answers;
    /// a pool on its database.
    /// Waits until alyxd serves and has brought the schema up to date (every migration
    /// applied: a table of the first one can exist long before the last one ran).
    pub async fn ready(&self, config: &Config) -> Result<PgPool> {
        let started = Instant::now();
        let migrations = alyx_backend::catalogue::MIGRATOR.migrations.len() as i64;
        loop {
            if let Ok(pool) = PgPool::connect(&config.database_url).await {
                let applied: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or(0);
                let made = applied == migrations;
                let serving = alyx_client::Client::connect(&self.url, "").await.is_ok();
                if made && serving {
                    return Ok(pool);
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "alyxd did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops alyxd and waits for it to finish.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}
