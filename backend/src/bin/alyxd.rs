//! alyxd: the ALYX backend server.

use std::path::PathBuf;
use std::process::ExitCode;

use alyx_backend::{Config, catalogue, server, telemetry};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alyxd",
    version,
    about = "ALYX backend: Kafka ingest, event catalogue, gRPC API"
)]
struct Cli {
    /// Configuration file (see alyxd.example.toml; default /etc/alyx/alyxd.toml, else
    /// ~/.config/alyx/alyxd.toml, when one exists); ALYXD_* variables override it.
    #[arg(long, global = true, env = "ALYXD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and metrics, and ingest from Kafka, until SIGTERM or SIGINT.
    Serve,
    /// Bring the PostgreSQL schema up to date and exit (serve does it too).
    Migrate,
    /// Run one job task written by alyxd's Slurm executor (what a batch job runs): read the
    /// task from SPEC, write its partial result to OUT. Needs only the data directory.
    Worker {
        #[arg(long)]
        spec: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the shell's completion script.
    Completions { shell: clap_complete::Shell },
    /// Write man pages (alyxd.1 and one per subcommand) into DIR.
    Man { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "alyxd", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            return match std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("alyxd: man pages into {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    if let Command::Worker { spec, out } = &cli.command {
        return match alyx_backend::jobs::executor::run_worker(spec, out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("alyxd worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let path = cli.config.clone().or_else(Config::default_path);
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("alyxd: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("alyxd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The trace exporter's channel lives on the runtime; it is flushed (dropped) after the
    // server has stopped and before the runtime goes.
    let telemetry = {
        let _runtime = runtime.enter();
        telemetry::init(config.log_json, &config.otlp_endpoint, &config.instance())
    };
    let _telemetry = match telemetry {
        Ok(t) => t,
        Err(e) => {
            eprintln!("alyxd: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Migrate => {
                let pool = catalogue::connect(&config).await?;
                tracing::info!("schema is up to date");
                pool.close().await;
                Ok(())
            }
            Command::Serve => {
                let (grpc, metrics) = server::bind(&config).await?;
                server::run(config, grpc, metrics, signal()).await
            }
            Command::Worker { .. } | Command::Completions { .. } | Command::Man { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "alyxd failed");
            eprintln!("alyxd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}
