//! `alyx-backend`: alyxd, the experiment-wide server (Kafka ingest into Parquet chunks and a
//! PostgreSQL catalogue, the gRPC API, the live event stream, metrics), and the library parts
//! `alyxctl` shares with it (configuration, users).
//!
//! Layers: `grpc` adapters (the only module naming tonic: the services, the server that
//! assembles them, the Spark Connect client) over domain modules — `catalogue` (PostgreSQL
//! reads), `engines` and `paging` (queries), `jobs`, `collab`, `ingest` (Kafka to storage),
//! `auth`, `live`, `notify` — over the `shared/` crates.

pub mod auth;
pub mod cache;
pub mod catalogue;
pub mod collab;
pub mod config;
pub mod engines;
pub mod error;
pub mod grpc;
pub mod ingest;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod paging;
pub mod produce;
pub mod shared_cache;
pub mod telemetry;

pub use config::Config;
pub use error::{Error, Result};
pub use grpc::{server, spark};
