//! What the backend's integration tests share: the services the test command starts (PostgreSQL
//! through `#[sqlx::test]`, the Kafka-protocol broker through `ALYX_KAFKA_BROKERS`), an in-process
//! alyxd, and the typed client.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use alyx_backend::Config;
use alyx_backend::auth::{self, Role};
use alyx_client::Client;
use sqlx::PgPool;

#[allow(unused_imports)]
pub use alyx_tests::kafka_brokers as brokers;

/// A topic name no other test uses.
pub fn unique_topic(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_007)
}

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    alyx_backend::produce::create_topic(brokers, topic, partitions)
        .await
        .expect("topic created");
}

/// The URL of the database `#[sqlx::test]` made for this test.
pub fn database_url(pool: &PgPool) -> String {
    alyx_tests::database_url(
        pool.connect_options()
            .get_database()
            .expect("test database has a name"),
    )
}

/// A configuration for an in-process or spawned alyxd on free ports.
pub fn config(
    pool: &PgPool,
    data_dir: &std::path::Path,
    brokers: Option<&str>,
    topic: &str,
) -> Config {
    let mut c = Config::default();
    c.database_url = database_url(pool);
    c.database_pool = 4;
    c.listen = "127.0.0.1:0".parse().expect("address");
    c.metrics_listen = "127.0.0.1:0".parse().expect("address");
    c.data_dir = data_dir.to_path_buf();
    c.ingest.enabled = brokers.is_some();
    c.ingest.brokers = brokers.unwrap_or("127.0.0.1:1").to_owned();
    c.ingest.topic = topic.to_owned();
    c.ingest.partitions = 2;
    c.ingest.batch_events = 200;
    c.ingest.batch_linger_ms = 100;
    c
}

/// An alyxd running inside the test.
pub struct Server {
    pub grpc: String,
    pub metrics: std::net::SocketAddr,
    /// The CA the client trusts, when alyxd speaks TLS.
    ca: Option<Vec<u8>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<alyx_backend::Result<()>>>,
}

impl Server {
    pub async fn start(config: Config) -> Self {
        Self::start_with_ca(config, None).await
    }

    /// An alyxd speaking TLS (its configuration names the certificate) whose clients trust
    /// `ca` (PEM).
    pub async fn start_with_ca(config: Config, ca: Option<Vec<u8>>) -> Self {
        // alyxd's logs in the test's output (shown for failing tests; RUST_LOG filters).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .try_init();
        let (grpc, metrics) = alyx_backend::server::bind(&config).await.expect("bind");
        let grpc_addr = grpc.local_addr().expect("addr");
        let metrics_addr = metrics.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(alyx_backend::server::run(
            config,
            grpc,
            metrics,
            async move {
                let _ = stopped.await;
            },
        ));
        let server = Self {
            grpc: match ca {
                Some(_) => format!("https://localhost:{}", grpc_addr.port()),
                None => format!("http://{grpc_addr}"),
            },
            metrics: metrics_addr,
            ca,
            stop: Some(stop),
            task: Some(task),
        };
        // The port accepts connections at once; wait until alyxd serves (after migrations).
        let started = Instant::now();
        loop {
            if server.serving().await {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "alyxd did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The health service says SERVING.
    pub async fn serving(&self) -> bool {
        match self.try_client("") {
            Ok(c) => c.serving().await,
            Err(_) => false,
        }
    }

    fn try_client(&self, token: &str) -> alyx_client::Result<Client> {
        match &self.ca {
            Some(ca) => Client::with_ca(&self.grpc, token, ca),
            None => Client::new(&self.grpc, token),
        }
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("clean shutdown");
        }
    }

    /// The typed client, as `token`'s holder.
    pub fn client(&self, token: &str) -> Client {
        self.try_client(token).expect("client")
    }

    pub async fn metrics_text(&self) -> String {
        self.http_get("/metrics").await.1
    }

    /// `GET path` on the metrics port: the status code and the body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.metrics)
            .await
            .expect("metrics port");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: alyxd\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_owned())
    }
}

/// A token for a new user with `role`.
pub async fn token(pool: &PgPool, name: &str, role: Role) -> String {
    auth::create_user(pool, name, role)
        .await
        .expect("create user")
}

#[allow(unused_imports)]
pub use alyx_proto::authorized;

/// Polls `f` until it returns `Some`, failing after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn catalogue_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

/// The committed offsets of every partition, summed: the messages ingest has consumed.
pub async fn committed_offsets(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM ingest_offsets")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}
