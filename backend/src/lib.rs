//! `alyx-backend`: alyxd, the experiment-wide server (Kafka ingest into Parquet chunks and a
//! PostgreSQL catalogue, the gRPC API, the live event stream, metrics), and the library parts
//! `alyxctl` shares with it (configuration, users).
//!
//! Layers: `grpc` adapters (the only module naming tonic types besides `server`) over domain
//! modules — `catalogue` (PostgreSQL reads), `ingest` (Kafka to storage), `auth`, `live` — over
//! `alyx-shared`'s event store.

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
pub mod produce;
pub mod server;
pub mod spark;

pub use config::Config;
pub use error::{Error, Result};
