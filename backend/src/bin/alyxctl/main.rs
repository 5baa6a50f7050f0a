//! `alyxctl`, the ALYX command-line client: generate, import, inspect, verify, export and query
//! local datasets. Errors are one line on stderr with what to do, and a non-zero exit code.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::cli::runtime;

/// `println!` that ends the program quietly when stdout is closed (`alyxctl info | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }};
}

mod admin;
mod cli;
mod data;
mod fit;
mod jobs;
mod notebooks;
mod query;

#[derive(Parser)]
#[command(
    name = "alyxctl",
    version,
    about = "ALYX command-line client: generate, import, query and verify collision data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate collision events with the ALICE-like barrel simulation.
    Generate(data::GenerateArgs),
    /// Import ROOT (TTree) or Phoenix JSON files into a new dataset.
    Import(data::ImportArgs),
    /// Datasets, tables, columns with types, counts.
    Info(data::InfoArgs),
    /// Recompute checksums and report missing, truncated or altered files.
    Verify(data::VerifyArgs),
    /// Write one event as Phoenix event-display JSON.
    ExportPhoenix(data::ExportPhoenixArgs),
    /// Run SQL over a dataset's tables (events, tracks, hits, muons, ...; see README).
    Query(query::QueryArgs),
    /// Play the detector: generate events and produce them to the raw-events topic.
    Produce(data::ProduceArgs),
    /// Notebooks in alyxd: create, list, share, export (Markdown, .ipynb, Automerge), history,
    /// restore a version, add a cell.
    Notebook {
        #[command(subcommand)]
        command: notebooks::NotebookCommand,
        #[arg(
            long,
            env = "ALYX_BACKEND",
            default_value = "http://127.0.0.1:50051",
            global = true
        )]
        backend: String,
        #[arg(long, env = "ALYX_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
    },
    /// Analysis jobs in alyxd: submit histograms of a query over a dataset, follow, cancel,
    /// fetch the result.
    Job {
        #[command(subcommand)]
        command: jobs::JobCommand,
        #[arg(
            long,
            env = "ALYX_BACKEND",
            default_value = "http://127.0.0.1:50051",
            global = true
        )]
        backend: String,
        #[arg(long, env = "ALYX_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
    },
    /// Administer alyxd: users (on the backend host, with alyxd's database settings) and
    /// ingest/storage status (over gRPC, as an operator).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// The embedded default: make the demo datasets in the local data directory (if missing)
    /// and show the resonance peaks found in them.
    Demo(data::DemoArgs),
    /// Print the shell's completion script (e.g. `alyxctl completions bash >
    /// /etc/bash_completion.d/alyxctl`).
    Completions { shell: clap_complete::Shell },
    /// Write man pages (alyxctl.1 and one per subcommand) into DIR.
    Man { dir: std::path::PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Generate(args) => data::generate(args),
        Command::Import(args) => data::import(args),
        Command::Info(args) => data::info(args),
        Command::Verify(args) => data::verify(args),
        Command::ExportPhoenix(args) => data::export_phoenix(args),
        Command::Query(args) => query::query(args),
        Command::Produce(args) => data::produce(args),
        Command::Demo(args) => data::demo(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "alyxctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("man pages into {}", dir.display()))
        }
        Command::Admin { command } => runtime()?.block_on(admin::run(command)),
        Command::Job {
            command,
            backend,
            token,
        } => {
            let token = token.context("give --token (or set ALYX_TOKEN)")?;
            runtime()?.block_on(jobs::run(command, &backend, &token))
        }
        Command::Notebook {
            command,
            backend,
            token,
        } => {
            let token = token.context("give --token (or set ALYX_TOKEN)")?;
            runtime()?.block_on(notebooks::run(command, &backend, &token))
        }
    }
}
