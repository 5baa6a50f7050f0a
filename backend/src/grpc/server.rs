//! Assembles alyxd: the pool (migrated), the live stream, ingest, the metrics endpoint and the
//! gRPC server (EventService, AdminService, health, reflection), and takes them down in order
//! on shutdown: stop accepting calls and consuming, commit in-flight batches, close the pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alyx_proto::v1;
use alyx_store::DataStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

use crate::auth::Authenticator;
use crate::cache::ResultCache;
use crate::collab::Collab;
use crate::config::Config;
use crate::engines::Engines;
use crate::error::{Error, Result};
use crate::grpc::{
    Context, admin::AdminApi, collab::CollabApi, events::EventsApi, jobs::JobsApi, query::QueryApi,
};
use crate::ingest::Ingest;
use crate::jobs::Jobs;
use crate::jobs::executor::{Executor, LocalExecutor, SlurmExecutor, SparkExecutor};
use crate::jobs::scheduler::{Scheduler, SchedulerConfig};
use crate::jobs::store::JobStore;
use crate::metrics::{self, Metrics};
use crate::shared_cache::SharedCache;
use crate::{catalogue, live};

/// Where a running server listens.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
}

/// The listener's TLS identity, read from `tls_cert` and `tls_key`.
fn tls(config: &Config) -> Result<tonic::transport::ServerTlsConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| Error::InvalidArgument(format!("cannot read {}: {e}", path.display())))
    };
    let identity =
        tonic::transport::Identity::from_pem(read(&config.tls_cert)?, read(&config.tls_key)?);
    Ok(tonic::transport::ServerTlsConfig::new().identity(identity))
}

/// Binds both listeners (so that port 0 works and the addresses are known at once).
pub async fn bind(config: &Config) -> Result<(TcpListener, TcpListener)> {
    let grpc = TcpListener::bind(config.listen).await.map_err(|e| {
        Error::Unavailable(format!("cannot listen for gRPC on {}: {e}", config.listen))
    })?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    Ok((grpc, metrics))
}

/// Runs alyxd on the given listeners until `shutdown` resolves, then shuts down gracefully.
pub async fn run(
    config: Config,
    grpc: TcpListener,
    metrics_listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let pool = catalogue::connect(&config).await?;
    catalogue::ensure_partitions_ahead(&pool).await?;
    let store = DataStore::open(&config.data_dir)?;
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_for_streams = stop_rx.clone();
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let live = live::channel();
    let ttl = Duration::from_millis(config.query_cache_ttl_ms);
    let shared = if config.redis_url.is_empty() {
        None
    } else {
        let shared = Arc::new(SharedCache::new(
            &config.redis_url,
            &config.redis_prefix,
            ttl,
        )?);
        shared.check_eviction_policy().await;
        metrics.register(Box::new(shared.up.clone()));
        metrics.register(Box::new(shared.hits.clone()));
        metrics.register(Box::new(shared.misses.clone()));
        metrics.register(Box::new(shared.errors.clone()));
        Some(shared)
    };
    let cache = match &shared {
        Some(s) => ResultCache::new(ttl).with_shared(s.clone()),
        None => ResultCache::new(ttl),
    };
    let cache = Arc::new(cache);
    let live_task = tokio::spawn(live::run(
        pool.clone(),
        live.clone(),
        cache.clone(),
        stopped(),
    ));
    let ingest = if config.ingest.enabled {
        Some(Arc::new(
            Ingest::start(
                config.ingest.clone(),
                config.instance(),
                pool.clone(),
                catalogue::connect_options(&config)?,
                &store,
                metrics.clone(),
            )
            .await?,
        ))
    } else {
        None
    };
    let metrics_addr = metrics_listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    metrics.register(Box::new(cache.hits.clone()));
    metrics.register(Box::new(cache.misses.clone()));
    let readiness = metrics::Readiness {
        pool: pool.clone(),
        metrics: metrics.clone(),
        ingest: ingest.is_some(),
        cache: shared.clone(),
    };
    let metrics_task = tokio::spawn(metrics::serve(
        metrics_listener,
        metrics.clone(),
        readiness.clone(),
        stopped(),
    ));

    let ctx = Context {
        auth: Arc::new(Authenticator::new(pool.clone())),
        metrics: metrics.clone(),
        calls: crate::grpc::CallLimit::new(config.user_calls),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<v1::event_service_server::EventServiceServer<EventsApi>>()
        .await;
    health
        .set_serving::<v1::admin_service_server::AdminServiceServer<AdminApi>>()
        .await;
    health
        .set_serving::<v1::query_service_server::QueryServiceServer<QueryApi>>()
        .await;
    health
        .set_serving::<v1::job_service_server::JobServiceServer<JobsApi>>()
        .await;
    // Reflection in both versions: grpcurl and older tools still ask v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error = |e| Error::Internal(format!("reflection: {e}"));
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
    let events = EventsApi {
        ctx: ctx.clone(),
        pool: pool.clone(),
        store: store.clone(),
        live,
        shared: shared.clone(),
        shutdown: stop_rx_for_streams.clone(),
    };
    let mut engines = Engines::new(
        store.clone(),
        Some(pool.clone()),
        (!config.spark_url.is_empty()).then(|| config.spark_url.clone()),
        cache,
    );
    engines.queries = Some(catalogue::connect_queries(&config).await?);
    let query = QueryApi {
        ctx: ctx.clone(),
        engines,
    };
    let slots = match config.job_slots {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut executors: Vec<Arc<dyn Executor>> = vec![Arc::new(LocalExecutor::new(
        store.clone(),
        slots,
        config.site.clone(),
    ))];
    if !config.spark_url.is_empty() {
        executors.push(Arc::new(SparkExecutor::new(
            store.clone(),
            config.spark_url.clone(),
            config.spark_job_slots,
            config.spark_site.clone(),
        )));
    }
    if config.slurm {
        let worker = match config.slurm_worker.as_str() {
            "" => std::env::current_exe()
                .map_err(|e| Error::Internal(format!("the path of alyxd: {e}")))?,
            path => path.into(),
        };
        executors.push(Arc::new(SlurmExecutor::new(
            config.data_dir.clone(),
            worker,
            config.slurm_slots,
            config.slurm_site.clone(),
        )));
    }
    let job_store = JobStore {
        pool: pool.clone(),
        store: store.clone(),
        queue_limit: config.job_queue_limit,
        user_queue_limit: config.job_user_queue_limit,
    };
    let scheduler = Scheduler::new(
        job_store.clone(),
        format!("{}/{:08x}", config.instance(), rand::random::<u32>()),
        SchedulerConfig {
            lease: Duration::from_secs(config.job_lease_secs.max(1)),
            quota: config.job_quota,
            locality_wait: Duration::from_millis(config.job_locality_wait_ms),
            ..SchedulerConfig::default()
        },
        executors.clone(),
    );
    let scheduler_task = tokio::spawn(scheduler.clone().run(stopped()));
    let jobs = Arc::new(Jobs::new(job_store, scheduler.clone(), executors));
    let follow_task = tokio::spawn(crate::jobs::follow(
        pool.clone(),
        jobs.changes.clone(),
        scheduler.wake.clone(),
        stopped(),
    ));
    let jobs = JobsApi {
        ctx: ctx.clone(),
        jobs,
        shutdown: stop_rx_for_streams.clone(),
    };
    let collab = Collab::new(pool.clone(), config.instance());
    let collab_task = tokio::spawn(crate::collab::follow(collab.clone(), stopped()));
    let monitor_task = tokio::spawn(monitor(
        readiness,
        health.clone(),
        scheduler.clone(),
        collab.clone(),
    ));
    let collab = CollabApi {
        ctx: ctx.clone(),
        collab,
        shutdown: stop_rx_for_streams.clone(),
    };
    let admin = AdminApi {
        ctx,
        pool: pool.clone(),
        ingest: ingest.clone(),
        data_dir: config.data_dir.display().to_string(),
        scheduler,
    };
    tracing::info!(
        grpc = %grpc.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()),
        metrics = %metrics_addr,
        database = %catalogue::redact(&config.database_url),
        data_dir = %config.data_dir.display(),
        ingest = config.ingest.enabled,
        "alyxd serving"
    );

    let grpc_shutdown = stopped();
    let mut builder = tonic::transport::Server::builder();
    if !config.tls_cert.as_os_str().is_empty() {
        builder = builder.tls_config(tls(&config)?).map_err(|e| {
            Error::InvalidArgument(format!(
                "TLS certificate {} with key {}: {e}",
                config.tls_cert.display(),
                config.tls_key.display()
            ))
        })?;
    }
    let server = tokio::spawn(
        builder
            // A deadline on every call's answer (streams: until their first message); a
            // client's own `grpc-timeout` applies when shorter.
            .timeout(Duration::from_secs(config.call_timeout_secs.max(1)))
            .layer(crate::grpc::request_id::RequestIdLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(v1::event_service_server::EventServiceServer::new(events))
            .add_service(v1::admin_service_server::AdminServiceServer::new(admin))
            .add_service(v1::query_service_server::QueryServiceServer::new(query))
            .add_service(v1::job_service_server::JobServiceServer::new(jobs))
            .add_service(v1::collab_service_server::CollabServiceServer::new(collab))
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), grpc_shutdown),
    );

    shutdown.await;
    tracing::info!("shutting down: no new calls, finishing in-flight batches");
    monitor_task.abort();
    let _ = monitor_task.await;
    for service in SERVICES {
        health
            .set_service_status(service, tonic_health::ServingStatus::NotServing)
            .await;
    }
    let _ = stop_tx.send(true);
    if let Some(ingest) = &ingest {
        ingest.shutdown().await;
    }
    let served = server.await;
    let _ = live_task.await;
    let _ = scheduler_task.await;
    let _ = follow_task.await;
    let _ = collab_task.await;
    let _ = metrics_task.await;
    pool.close().await;
    tracing::info!("alyxd stopped");
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Unavailable(format!("gRPC server failed: {e}"))),
        Err(e) => Err(e.into()),
    }
}

/// The services gRPC health answers for ("" is the server as a whole).
const SERVICES: [&str; 6] = [
    "",
    v1::event_service_server::SERVICE_NAME,
    v1::admin_service_server::SERVICE_NAME,
    v1::query_service_server::SERVICE_NAME,
    v1::job_service_server::SERVICE_NAME,
    v1::collab_service_server::SERVICE_NAME,
];

/// Every five seconds until aborted: the readiness checks into gRPC health (NOT_SERVING while
/// PostgreSQL is unreachable or the schema is behind, SERVING again once it is back), and the
/// job, executor and collaboration gauges.
async fn monitor(
    readiness: metrics::Readiness,
    health: tonic_health::server::HealthReporter,
    scheduler: Arc<Scheduler>,
    collab: Arc<Collab>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut was_ready = true;
    loop {
        tick.tick().await;
        let checks = readiness.check().await;
        if checks.ready != was_ready {
            let why: Vec<String> = checks
                .lines
                .iter()
                .map(|(n, s)| format!("{n}: {s}"))
                .collect();
            match checks.ready {
                true => tracing::info!(checks = %why.join(", "), "ready again"),
                false => tracing::warn!(checks = %why.join(", "), "not ready"),
            }
            was_ready = checks.ready;
        }
        let status = match checks.ready {
            true => tonic_health::ServingStatus::Serving,
            false => tonic_health::ServingStatus::NotServing,
        };
        for service in SERVICES {
            health.set_service_status(service, status).await;
        }
        let m = &readiness.metrics;
        for (name, h, slots, running) in scheduler.executor_status() {
            m.executor_up
                .with_label_values(&[name])
                .set(i64::from(h.up));
            m.executor_slots
                .with_label_values(&[name])
                .set(slots as i64);
            m.executor_running
                .with_label_values(&[name])
                .set(running as i64);
        }
        let jobs =
            sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                .fetch_all(&readiness.pool)
                .await;
        if let Ok(rows) = jobs {
            for state in [
                "queued",
                "running",
                "preempted",
                "succeeded",
                "failed",
                "cancelled",
            ] {
                let n = rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
                m.jobs.with_label_values(&[state]).set(n);
            }
        }
        m.collab_notebooks.set(collab.open_count() as i64);
    }
}
