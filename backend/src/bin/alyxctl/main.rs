//! `alyxctl`, the ALYX command-line client: generate, import, inspect, verify, export and query
//! local datasets. Errors are one line on stderr with what to do, and a non-zero exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use alyx_shared::datasets;
use alyx_shared::generator::{Centrality, GeneratorConfig, ResonanceRates};
use alyx_shared::histogram::{Binning, Histogram};
use alyx_shared::import::root::Mapping;
use alyx_shared::query::{self, OutputFormat};
use alyx_shared::store::{DataStore, Dataset, Table};
use alyx_shared::{CollisionSystem, default_data_dir};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

mod jobs;

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

mod notebooks;

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
    Generate {
        /// Collision system: pp or pbpb (the ALICE-like barrel), or nano (NanoAOD-like
        /// analysis objects: jets, leptons, MET).
        #[arg(long, default_value = "pp")]
        system: String,
        /// Pb–Pb centrality class: central (0–5 %), peripheral (70–80 %) or minbias.
        #[arg(long, default_value = "central")]
        centrality: String,
        #[arg(long)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Data directory to write the dataset into.
        #[arg(long)]
        out: PathBuf,
        /// Dataset name (default: <system>-seed<seed>).
        #[arg(long)]
        name: Option<String>,
        /// Mean resonances per event, e.g. `k0s=1,lambda=0.5,jpsi=0.1,z=0.02`.
        #[arg(long)]
        rates: Option<String>,
    },
    /// Import ROOT (TTree) or Phoenix JSON files into a new dataset.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        name: Option<String>,
        /// The TTree to read.
        #[arg(long)]
        tree: Option<String>,
        /// A TOML file naming the branches for each field (see README).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Print the branch mapping used (a starting point for --mapping).
        #[arg(long)]
        show_mapping: bool,
    },
    /// Datasets, tables, columns with types, counts.
    Info {
        dir: PathBuf,
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Recompute checksums and report missing, truncated or altered files.
    Verify {
        dir: PathBuf,
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Write one event as Phoenix event-display JSON.
    ExportPhoenix {
        dir: PathBuf,
        #[arg(long)]
        event: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Run SQL over a dataset's tables (events, tracks, hits, muons, ...; see README).
    Query {
        /// A data directory (the local engine), or none with --backend.
        dir: Option<PathBuf>,
        /// ALYX SQL.
        #[arg(long, conflicts_with_all = ["query_file", "adl"])]
        sql: Option<String>,
        /// A query as JSON: a builder selection or a query AST.
        #[arg(long, conflicts_with = "adl")]
        query_file: Option<PathBuf>,
        /// One of the ADL benchmark queries, 1–8.
        #[arg(long)]
        adl: Option<u8>,
        /// local (polars on the Parquet chunks), postgres (the catalogue) or spark.
        #[arg(long, default_value = "local")]
        engine: String,
        /// alyxd's gRPC URL: run the query there (needed for postgres and spark).
        #[arg(long, env = "ALYX_BACKEND")]
        backend: Option<String>,
        #[arg(long, env = "ALYX_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the SQL the engine runs (and its plan) instead of running it.
        #[arg(long)]
        explain: bool,
        /// With --backend: scan only the Parquet chunks whose catalogue events match this
        /// condition (e.g. "run = 545100 AND n_muons >= 2").
        #[arg(long)]
        catalogue_filter: Option<String>,
        #[arg(long, default_value = "table")]
        format: String,
        /// Write to a file instead of stdout (required for parquet).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rows shown in table format.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Histogram a column of the result instead of listing rows: COL:BINS:LO:HI, computed
        /// inside the engine (with --weight COL for weighted entries).
        #[arg(long)]
        histogram: Option<String>,
        #[arg(long)]
        weight: Option<String>,
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Play the detector: generate events and produce them to the raw-events topic.
    Produce {
        #[arg(long)]
        events: u64,
        /// Events per second (default: as fast as the broker takes them).
        #[arg(long)]
        rate: Option<f64>,
        /// Collision system: pp or pbpb (central).
        #[arg(long, default_value = "pp")]
        system: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Index of the first generated event (to continue an earlier run).
        #[arg(long, default_value_t = 0)]
        first: u64,
        #[arg(long, env = "ALYXD_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, env = "ALYXD_KAFKA_TOPIC", default_value = "raw-events")]
        topic: String,
    },
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
        command: AdminCommand,
    },
    /// The embedded default: make the demo datasets in the local data directory (if missing)
    /// and show the resonance peaks found in them.
    Demo {
        /// Data directory (default: $ALYX_DATA_DIR or ~/.local/share/alyx).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user and print its token (shown once; stored only hashed).
    CreateUser {
        name: String,
        /// physicist, shift or operator.
        #[arg(long)]
        role: String,
        /// alyxd's configuration file; ALYXD_DATABASE_URL overrides it.
        #[arg(long, env = "ALYXD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List users with their roles.
    ListUsers {
        #[arg(long, env = "ALYXD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Revoke every token of a user.
    RevokeUser {
        name: String,
        #[arg(long, env = "ALYXD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Record that chunks of a dataset have replicas at a site: jobs with target auto run
    /// those chunks on the executors at that site (ALYXD_SITE, ALYXD_SPARK_SITE,
    /// ALYXD_SLURM_SITE) when they can.
    AddReplicas {
        dataset: String,
        #[arg(long)]
        site: String,
        /// Chunk ids, e.g. `0-4,9`; default: every chunk of the dataset.
        #[arg(long)]
        chunks: Option<String>,
        #[arg(long, env = "ALYXD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Forget replicas of a dataset at a site (all of its chunks unless --chunks).
    RemoveReplicas {
        dataset: String,
        #[arg(long)]
        site: String,
        #[arg(long)]
        chunks: Option<String>,
        #[arg(long, env = "ALYXD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the recorded replicas (of one dataset).
    ListReplicas {
        dataset: Option<String>,
        #[arg(long, env = "ALYXD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Ingest (rate, lag per partition, queue, dead letters), storage and job executors.
    Status {
        #[arg(long, env = "ALYX_BACKEND", default_value = "http://127.0.0.1:50051")]
        backend: String,
        #[arg(long, env = "ALYX_TOKEN")]
        token: String,
    },
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

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn parse_rates(text: &str, mut rates: ResonanceRates) -> Result<ResonanceRates> {
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .with_context(|| format!("--rates: `{part}` is not NAME=VALUE"))?;
        let value: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("--rates: `{value}` is not a number"))?;
        if !(value >= 0.0 && value.is_finite()) {
            bail!("--rates: {key} must be a non-negative number of resonances per event");
        }
        match key.trim() {
            "k0s" => rates.k0s = value,
            "lambda" => rates.lambda = value,
            "jpsi" => rates.jpsi = value,
            "z" => rates.z = value,
            other => bail!("--rates: unknown resonance `{other}`; use k0s, lambda, jpsi or z"),
        }
    }
    Ok(rates)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Produce {
            events,
            rate,
            system,
            seed,
            first,
            brokers,
            topic,
        } => {
            let system = CollisionSystem::parse(&system)
                .with_context(|| format!("unknown system `{system}`: use pp or pbpb"))?;
            let options = alyx_backend::produce::ProduceOptions {
                brokers,
                topic,
                system,
                events,
                first,
                seed,
                rate,
            };
            let done = runtime()?.block_on(alyx_backend::produce::produce(&options))?;
            out!(
                "produced {} events ({:.1} MB) to {} in {:.2} s: {:.0} events/s, {:.1} MB/s",
                done.events,
                done.bytes as f64 / 1e6,
                options.topic,
                done.seconds,
                done.events as f64 / done.seconds.max(1e-9),
                done.bytes as f64 / 1e6 / done.seconds.max(1e-9)
            );
        }
        Command::Admin { command } => runtime()?.block_on(admin(command))?,
        Command::Generate {
            system,
            centrality,
            events,
            seed,
            out,
            name,
            rates,
        } => {
            if system == "nano" {
                let name = name.unwrap_or_else(|| format!("nano-seed{seed}"));
                let store = DataStore::open(&out)?;
                let progress = bar(events, "generating");
                let start = Instant::now();
                let config = alyx_shared::nano::NanoConfig::new(seed);
                let dataset =
                    datasets::generate_nano(&store, &name, config, events, &mut |done| {
                        progress.set_position(done)
                    })?;
                progress.finish_and_clear();
                let m = dataset.manifest();
                out!(
                    "generated {} NanoAOD-like events ({} jets, {} muons, {} electrons) into {} in {:.1} s",
                    m.event_count(),
                    m.rows(Table::Jets),
                    m.rows(Table::Muons),
                    m.rows(Table::Electrons),
                    dataset.dir().display(),
                    start.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            let system = CollisionSystem::parse(&system)
                .filter(|s| *s != CollisionSystem::Unknown)
                .with_context(|| format!("unknown --system `{system}`; use pp, pbpb or nano"))?;
            let centrality = Centrality::parse(&centrality).with_context(|| {
                format!("unknown --centrality `{centrality}`; use central, peripheral or minbias")
            })?;
            let mut config = match system {
                CollisionSystem::PbPb => GeneratorConfig::pbpb(seed, centrality),
                _ => GeneratorConfig::pp(seed),
            };
            if let Some(r) = rates {
                config.rates = parse_rates(&r, config.rates)?;
            }
            let name =
                name.unwrap_or_else(|| format!("{}-seed{seed}", system.as_str().to_lowercase()));
            let store = DataStore::open(&out)?;
            let progress = bar(events, "generating");
            let start = Instant::now();
            let dataset = datasets::generate(&store, &name, config, events, &mut |done| {
                progress.set_position(done)
            })?;
            progress.finish_and_clear();
            let secs = start.elapsed().as_secs_f64();
            let m = dataset.manifest();
            out!(
                "generated {} events ({} tracks, {} hits) into {} in {secs:.1} s ({:.0} events/s)",
                m.event_count(),
                m.rows(Table::Tracks),
                m.rows(Table::Hits),
                dataset.dir().display(),
                m.event_count() as f64 / secs
            );
        }
        Command::Import {
            files,
            out,
            name,
            tree,
            mapping,
            show_mapping,
        } => {
            for f in &files {
                if !f.is_file() {
                    bail!("{}: no such file", f.display());
                }
            }
            let mapping = match mapping {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("{}", path.display()))?;
                    Some(Mapping::from_toml(&text).with_context(|| format!("{}", path.display()))?)
                }
                None => None,
            };
            let name = name.unwrap_or_else(|| datasets::name_from_path(&files[0]));
            let store = DataStore::open(&out)?;
            let progress = bar(files.len() as u64, "importing");
            let start = Instant::now();
            let (dataset, reports) = datasets::import_files(
                &store,
                &name,
                &files,
                tree.as_deref(),
                mapping.as_ref(),
                &mut |_| progress.inc(1),
            )?;
            progress.finish_and_clear();
            let m = dataset.manifest();
            out!(
                "imported {} events from {} file(s) into {} in {:.2} s",
                m.event_count(),
                files.len(),
                dataset.dir().display(),
                start.elapsed().as_secs_f64()
            );
            if m.flagged_count() > 0 {
                out!(
                    "{} events broke a validation rule and are flagged (see the `flags` column of `events`)",
                    m.flagged_count()
                );
            }
            for (file, report) in files.iter().zip(&reports) {
                if show_mapping {
                    out!("{}:", file.display());
                    for line in &report.mapped {
                        out!("  mapped  {line}");
                    }
                }
                for line in &report.skipped {
                    out!("  skipped {line}");
                }
            }
        }
        Command::Info { dir, dataset } => info(&dir, dataset.as_deref())?,
        Command::Verify { dir, dataset } => {
            let datasets = select(&dir, dataset.as_deref())?;
            let mut bad = 0;
            for d in datasets {
                let report = d.verify();
                let status = if report.is_ok() { "ok" } else { "DAMAGED" };
                out!(
                    "{}: {status} — {} files, {:.1} MB checked",
                    d.name(),
                    report.files_checked,
                    report.bytes_checked as f64 / 1e6
                );
                for p in &report.problems {
                    out!("  {}: {}", p.path.display(), p.what);
                }
                for p in &report.unreferenced {
                    out!(
                        "  {}: not in the manifest (left by an interrupted write; safe to delete)",
                        p.display()
                    );
                }
                bad += report.problems.len();
            }
            if bad > 0 {
                bail!("{bad} damaged file(s); restore them from a backup or re-import the dataset");
            }
        }
        Command::ExportPhoenix {
            dir,
            event,
            out,
            dataset,
        } => {
            let dataset = Dataset::resolve(&dir, dataset.as_deref())?;
            let e = dataset.read_event(event)?;
            let doc = alyx_shared::import::phoenix::export(std::slice::from_ref(&e));
            let text = serde_json::to_string(&doc)?;
            std::fs::write(&out, text).with_context(|| format!("{}", out.display()))?;
            out!(
                "wrote event {event} (run {}, event {}: {} tracks, {} hits) to {}",
                e.header.run,
                e.header.event_number,
                e.tracks.len(),
                e.hits.len(),
                out.display()
            );
        }
        Command::Query {
            dir,
            sql,
            query_file,
            adl,
            engine,
            backend,
            token,
            explain,
            catalogue_filter,
            format,
            out,
            limit,
            histogram,
            weight,
            dataset,
        } => {
            let format = OutputFormat::parse(&format).with_context(|| {
                format!("unknown --format `{format}`; use table, csv, json or parquet")
            })?;
            let engine = query::Engine::parse(&engine).with_context(|| {
                format!("unknown --engine `{engine}`; use local, postgres or spark")
            })?;
            let (text, ast) = query_source(sql, query_file, adl)?;
            let histogram = histogram
                .map(|spec| -> Result<(String, Binning)> {
                    let (column, binning) = spec.split_once(':').with_context(|| {
                        format!("--histogram `{spec}`: expected COL:BINS:LO:HI")
                    })?;
                    Ok((column.to_owned(), Binning::parse(binning)?))
                })
                .transpose()?;
            let mut df = match backend {
                Some(url) => {
                    let dataset = dataset.context("--backend needs --dataset NAME")?;
                    let request = remote_query::Request {
                        url,
                        token,
                        dataset,
                        engine,
                        text,
                        ast,
                        weight,
                        catalogue_filter,
                    };
                    runtime()?.block_on(remote_query::run(request, histogram, explain))?
                }
                None => {
                    if catalogue_filter.is_some() {
                        bail!("--catalogue-filter needs the catalogue: add --backend URL");
                    }
                    if engine != query::Engine::Local {
                        bail!(
                            "the {} engine runs in alyxd: add --backend URL",
                            engine.name()
                        );
                    }
                    let dir = dir.context("give a data directory, or --backend URL")?;
                    let q = match (text, ast) {
                        (Some(t), _) => query::parse(&t).map_err(|d| query::invalid_query(&[d]))?,
                        (None, Some(q)) => q,
                        (None, None) => bail!("give --sql, --query-file or --adl"),
                    };
                    let checked =
                        query::check(&q, engine).map_err(|ds| query::invalid_query(&ds))?;
                    let dataset = Dataset::resolve(&dir, dataset.as_deref())?;
                    if explain {
                        let lf = query::local_lazy(&dataset, &checked.query)?;
                        println!("{}", query::to_sql(&checked.query, query::Dialect::Polars));
                        println!("{}", lf.describe_optimized_plan()?);
                        return Ok(());
                    }
                    match histogram {
                        None => query::run_local(&dataset, &checked)?,
                        Some((column, binning)) => {
                            let h = query::histogram_local(
                                &dataset,
                                &checked,
                                &column,
                                weight.as_deref(),
                                binning,
                            )?;
                            report_histogram(&column, &h);
                            h.to_frame()?
                        }
                    }
                }
            };
            match out {
                Some(path) => {
                    let mut file = std::fs::File::create(&path)
                        .with_context(|| format!("{}", path.display()))?;
                    query::write(&mut df, format, limit, &mut file)?;
                    eprintln!("wrote {} rows to {}", df.height(), path.display());
                }
                None if format == OutputFormat::Parquet => {
                    bail!("--format parquet needs --out FILE")
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    let written = query::write(&mut df, format, limit, &mut stdout)
                        .map_err(anyhow::Error::from);
                    if let Err(e) = written.and_then(|()| Ok(stdout.flush()?)) {
                        if e.to_string().contains("Broken pipe") {
                            return Ok(());
                        }
                        return Err(e);
                    }
                }
            }
        }
        Command::Job {
            command,
            backend,
            token,
        } => {
            let token = token.context("give --token (or set ALYX_TOKEN)")?;
            runtime()?.block_on(jobs::run(command, &backend, &token))?
        }
        Command::Notebook {
            command,
            backend,
            token,
        } => {
            let token = token.context("give --token (or set ALYX_TOKEN)")?;
            runtime()?.block_on(notebooks::run(command, &backend, &token))?
        }
        Command::Demo { data_dir } => demo(data_dir.unwrap_or_else(default_data_dir))?,
    }
    Ok(())
}

/// The query the user gave: SQL text, or an AST from a query file (a builder selection or a
/// query) or the ADL set.
pub(crate) fn query_source(
    sql: Option<String>,
    file: Option<PathBuf>,
    adl: Option<u8>,
) -> Result<(Option<String>, Option<query::Query>)> {
    if let Some(n) = adl {
        let (_, spec, _) =
            query::adl::query(n).with_context(|| format!("--adl {n}: the ADL queries are 1–8"))?;
        let q = spec.query().map_err(|d| anyhow::anyhow!("{d}"))?;
        return Ok((None, Some(q)));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        if let Ok(spec) = serde_json::from_str::<query::builder::Spec>(&text) {
            let q = spec
                .query()
                .map_err(|d| anyhow::anyhow!("{}: {d}", path.display()))?;
            return Ok((None, Some(q)));
        }
        let q: query::Query = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: neither a builder selection nor a query AST",
                path.display()
            )
        })?;
        return Ok((None, Some(q)));
    }
    Ok((sql, None))
}

pub(crate) fn report_histogram(column: &str, h: &Histogram) {
    eprintln!(
        "{column}: {} entries in range (Σw {:.6}), underflow {}, overflow {}, missing {}",
        h.entries.iter().sum::<u64>(),
        h.integral(),
        h.underflow,
        h.overflow,
        h.missing
    );
}

fn select(dir: &Path, name: Option<&str>) -> Result<Vec<Dataset>> {
    if name.is_some() || dir.join("manifest.json").is_file() {
        return Ok(vec![Dataset::resolve(dir, name)?]);
    }
    if !dir.is_dir() {
        bail!("{}: no such directory", dir.display());
    }
    let store = DataStore::open(dir)?;
    let names = store.dataset_names()?;
    if names.is_empty() {
        bail!("{}: holds no dataset", dir.display());
    }
    names.iter().map(|n| Ok(store.dataset(n)?)).collect()
}

fn info(dir: &Path, name: Option<&str>) -> Result<()> {
    for d in select(dir, name)? {
        let m = d.manifest();
        out!("dataset {} ({})", m.name, d.dir().display());
        out!("  source:  {}", m.source);
        out!(
            "  events:  {} in {} chunk(s), {:.2} MB; {} flagged by validation",
            m.event_count(),
            m.chunks.len(),
            m.bytes() as f64 / 1e6,
            m.flagged_count()
        );
        if let Some((lo, hi)) = m.run_range() {
            out!("  runs:    {lo}–{hi}");
        }
        if let Some((lo, hi)) = m.time_range_ns().filter(|(lo, _)| *lo > 0) {
            out!(
                "  time:    {} – {}",
                alyx_shared::utc(lo),
                alyx_shared::utc(hi)
            );
        }
        out!("  tables:");
        for table in Table::ALL {
            let rows = m.rows(table);
            let schema = d.scan(table)?.collect_schema()?;
            let cols: Vec<String> = schema
                .iter()
                .map(|(n, t)| format!("{n}:{}", t.to_string().replace("String", "str")))
                .collect();
            out!(
                "    {:<13}{rows:>10} rows  {}",
                table.name(),
                cols.join(" ")
            );
        }
    }
    Ok(())
}

fn demo(data_dir: PathBuf) -> Result<()> {
    let store = DataStore::open(&data_dir)?;
    out!("ALYX demo — local data directory {}", data_dir.display());
    let start = Instant::now();
    let made = datasets::ensure_demo(&store, &mut |name, done, n| {
        if done == n {
            println!("  generated {name}: {n} events");
        }
    })?;
    for d in &made {
        let m = d.manifest();
        out!(
            "  {:<10} {:>5} events {:>8} tracks {:>9} hits",
            d.name(),
            m.event_count(),
            m.rows(Table::Tracks),
            m.rows(Table::Hits)
        );
    }
    let pp = &made[0];
    out!(
        "\nResonance peaks in {} (opposite-charge pairs from a common vertex):",
        pp.name()
    );
    for (label, pdg_mass, sql) in demo_queries() {
        let df = query::sql(pp, &sql)?;
        let get = |c: &str| {
            df.column(c)
                .ok()
                .and_then(|s| s.get(0).ok())
                .and_then(|v| v.extract::<f64>())
        };
        match (get("n"), get("mean"), get("sigma")) {
            (Some(n), Some(mean), Some(sigma)) if n > 0.0 => out!(
                "  {label:<12} {n:>5.0} candidates, mean mass {mean:.4} GeV (PDG {pdg_mass:.4}), spread {:.1} MeV",
                sigma * 1000.0
            ),
            _ => out!("  {label:<12} no candidates"),
        }
    }
    out!(
        "\n({:.1} s) Next: alyxctl query {} --sql \"SELECT * FROM events LIMIT 5\"",
        start.elapsed().as_secs_f64(),
        pp.dir().display()
    );
    Ok(())
}

/// The demo's resonance searches: V0s (K⁰s, Λ) decay at least 1 mm from the beam line.
fn demo_queries() -> Vec<(&'static str, f64, String)> {
    use alyx_shared::physics::mass;
    vec![
        (
            "K0s → π+π−",
            mass::K0S,
            query::pair_mass_summary_sql(211, -211, 0.1, (0.45, 0.55)),
        ),
        (
            "Λ → pπ−",
            mass::LAMBDA,
            query::pair_mass_summary_sql(2212, -211, 0.1, (1.09, 1.14)),
        ),
        (
            "J/ψ → μ+μ−",
            mass::JPSI,
            query::pair_mass_summary_sql(-13, 13, 0.0, (2.9, 3.3)),
        ),
        (
            "Z → μ+μ−",
            mass::Z,
            query::pair_mass_summary_sql(-13, 13, 0.0, (70.0, 110.0)),
        ),
    ]
}

async fn admin(command: AdminCommand) -> Result<()> {
    use alyx_backend::auth::{self, Role};
    use alyx_backend::jobs::store as replicas;
    use alyx_backend::{Config, catalogue};
    let pool = |config: Option<PathBuf>| async move {
        let config = Config::load(config.as_deref())?;
        anyhow::Ok(catalogue::connect(&config).await?)
    };
    match command {
        AdminCommand::CreateUser { name, role, config } => {
            let role = Role::parse(&role)?;
            let pool = pool(config).await?;
            let token = auth::create_user(&pool, &name, role).await?;
            out!("{token}");
            eprintln!(
                "created user `{name}` ({}); the token above is shown only once",
                role.as_str()
            );
        }
        AdminCommand::ListUsers { config } => {
            let pool = pool(config).await?;
            out!(
                "{:<24} {:<10} {:<8} created (UTC)",
                "name",
                "role",
                "tokens"
            );
            for u in auth::list_users(&pool).await? {
                out!(
                    "{:<24} {:<10} {:<8} {}",
                    u.name,
                    u.role.as_str(),
                    if u.revoked { "revoked" } else { "active" },
                    alyx_shared::utc(u.created_ns)
                );
            }
        }
        AdminCommand::RevokeUser { name, config } => {
            let pool = pool(config).await?;
            let n = auth::revoke_user(&pool, &name).await?;
            out!("revoked {n} token(s) of `{name}`");
        }
        AdminCommand::AddReplicas {
            dataset,
            site,
            chunks,
            config,
        } => {
            let config = Config::load(config.as_deref())?;
            let chunks = match chunks {
                Some(c) => chunk_ids(&c)?,
                None => alyx_shared::store::DataStore::open(&config.data_dir)?
                    .dataset(&dataset)?
                    .manifest()
                    .chunks
                    .iter()
                    .map(|c| c.id as i32)
                    .collect(),
            };
            let pool = catalogue::connect(&config).await?;
            let n = replicas::add_replicas(&pool, &dataset, &chunks, &site).await?;
            out!(
                "{n} new replica(s) of `{dataset}` at {site} ({} chunk(s) named)",
                chunks.len()
            );
        }
        AdminCommand::RemoveReplicas {
            dataset,
            site,
            chunks,
            config,
        } => {
            let chunks = chunks
                .as_deref()
                .map(chunk_ids)
                .transpose()?
                .unwrap_or_default();
            let pool = pool(config).await?;
            let n = replicas::remove_replicas(&pool, &dataset, &chunks, &site).await?;
            out!("forgot {n} replica(s) of `{dataset}` at {site}");
        }
        AdminCommand::ListReplicas { dataset, config } => {
            let pool = pool(config).await?;
            let all = replicas::replicas(&pool, dataset.as_deref()).await?;
            out!("{:<24} {:<16} chunks", "dataset", "site");
            let mut i = 0;
            while i < all.len() {
                let (d, site) = (&all[i].dataset, &all[i].site);
                let ids: Vec<i32> = all[i..]
                    .iter()
                    .take_while(|r| &r.dataset == d && &r.site == site)
                    .map(|r| r.chunk_id)
                    .collect();
                i += ids.len();
                out!("{d:<24} {site:<16} {}", ranges(&ids));
            }
        }
        AdminCommand::Status { backend, token } => status(&backend, &token).await?,
    }
    Ok(())
}

/// Chunk ids from `0-4,9`.
fn chunk_ids(text: &str) -> Result<Vec<i32>> {
    let mut ids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("`{part}` is not a chunk id or a range like 0-4");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (i32, i32) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b || a < 0 {
                    return Err(bad());
                }
                ids.extend(a..=b);
            }
            None => ids.push(
                part.parse()
                    .ok()
                    .filter(|i: &i32| *i >= 0)
                    .ok_or_else(bad)?,
            ),
        }
    }
    if ids.is_empty() {
        anyhow::bail!("no chunk ids in `{text}`");
    }
    Ok(ids)
}

/// `0-4,9` from sorted chunk ids.
fn ranges(ids: &[i32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

async fn status(backend: &str, token: &str) -> Result<()> {
    use alyx_proto::v1::admin_service_client::AdminServiceClient;
    use alyx_proto::{authorized, v1};
    let mut client = AdminServiceClient::connect(backend.to_owned())
        .await
        .with_context(|| format!("cannot reach alyxd at {backend}"))?;
    let rpc = |s: tonic::Status| anyhow::anyhow!("{}: {}", backend, s.message());
    let ingest = client
        .get_ingest_status(authorized(token, v1::GetIngestStatusRequest {}))
        .await
        .map_err(rpc)?
        .into_inner();
    let storage = client
        .get_storage_status(authorized(token, v1::GetStorageStatusRequest {}))
        .await
        .map_err(rpc)?
        .into_inner();
    out!("ingest      {} {}", ingest.state, ingest.detail);
    out!(
        "  topic     {} on {} (answered by {})",
        ingest.topic,
        ingest.brokers,
        ingest.instance
    );
    out!(
        "  rate      {:.0} events/s; {} stored by this instance; queue {} batches; est. delay {:.1} s",
        ingest.events_per_second,
        ingest.events_stored,
        ingest.queue_depth,
        ingest.estimated_delay_s
    );
    out!("  dead letters {}", ingest.dead_letters);
    out!(
        "  {:>9} {:>12} {:>12} {:>8}  owner",
        "partition",
        "committed",
        "high",
        "lag"
    );
    for p in &ingest.partitions {
        out!(
            "  {:>9} {:>12} {:>12} {:>8}  {}",
            p.partition,
            p.committed_offset,
            p.high_watermark,
            p.lag,
            p.owner
        );
    }
    out!(
        "storage     {} catalogue rows in {} partitions; data in {}",
        storage.catalogue_rows,
        storage.catalogue_partitions,
        storage.data_dir
    );
    for d in &storage.datasets {
        out!(
            "  {:<20} {:>6} chunks {:>10.1} MB {:>10} rows",
            d.name,
            d.chunks,
            d.bytes as f64 / 1e6,
            d.catalogue_rows
        );
    }
    let executors = client
        .get_executor_status(authorized(token, v1::GetExecutorStatusRequest {}))
        .await
        .map_err(rpc)?
        .into_inner()
        .executors;
    out!("executors");
    for e in &executors {
        out!(
            "  {:<8} {:<5} {}/{} slots busy  {}",
            e.name,
            if e.up { "up" } else { "DOWN" },
            e.running,
            e.slots,
            e.detail
        );
    }
    Ok(())
}

/// `alyxctl query --backend`: the query runs in alyxd (QueryService), pages come back as Arrow.
mod remote_query {
    use std::io::Cursor;

    use alyx_proto::v1::query_service_client::QueryServiceClient;
    use alyx_proto::{authorized, v1};
    use alyx_shared::histogram::{Binning, Histogram};
    use alyx_shared::query::{self, Engine};
    use anyhow::{Context, Result, bail};
    use polars::prelude::*;

    pub struct Request {
        pub url: String,
        pub token: Option<String>,
        pub dataset: String,
        pub engine: Engine,
        pub text: Option<String>,
        pub ast: Option<query::Query>,
        pub weight: Option<String>,
        pub catalogue_filter: Option<String>,
    }

    fn message(s: tonic::Status) -> anyhow::Error {
        anyhow::anyhow!("{}", s.message())
    }

    pub async fn run(
        r: Request,
        histogram: Option<(String, Binning)>,
        explain: bool,
    ) -> Result<DataFrame> {
        let token = r
            .token
            .clone()
            .context("--backend needs --token (or ALYX_TOKEN)")?;
        let mut client = QueryServiceClient::connect(r.url.clone())
            .await
            .with_context(|| format!("cannot reach alyxd at {}", r.url))?
            .max_decoding_message_size(256 << 20);
        let kind = match (&r.text, &r.ast) {
            (Some(t), _) => v1::query_text::Kind::Sql(t.clone()),
            (None, Some(q)) => v1::query_text::Kind::QueryJson(serde_json::to_string(q)?),
            (None, None) => bail!("give --sql, --query-file or --adl"),
        };
        let q = v1::QueryRequest {
            dataset: r.dataset.clone(),
            engine: match r.engine {
                Engine::Local => v1::Engine::Local,
                Engine::Postgres => v1::Engine::Postgres,
                Engine::Spark => v1::Engine::Spark,
            } as i32,
            query: Some(v1::QueryText { kind: Some(kind) }),
            catalogue_filter: r.catalogue_filter.clone().unwrap_or_default(),
        };
        if explain {
            let e = client
                .explain(authorized(&token, v1::ExplainRequest { query: Some(q) }))
                .await
                .map_err(message)?
                .into_inner();
            println!("{}\n\n{}\n\n{}", e.sql, e.engine_sql, e.plan);
            return Ok(DataFrame::empty());
        }
        if let Some((column, binning)) = histogram {
            let (bins, lo, hi, edges) = match &binning {
                Binning::Fixed { bins, lo, hi } => (*bins as u32, *lo, *hi, Vec::new()),
                Binning::Variable(e) => (0, 0.0, 0.0, e.clone()),
            };
            let h = client
                .histogram(authorized(
                    &token,
                    v1::HistogramRequest {
                        query: Some(q),
                        column: column.clone(),
                        weight: r.weight.clone().unwrap_or_default(),
                        binning: Some(v1::Binning {
                            bins,
                            lo,
                            hi,
                            edges,
                        }),
                    },
                ))
                .await
                .map_err(message)?
                .into_inner();
            let hist = Histogram {
                binning,
                sum_w: h.sum_w,
                sum_w2: h.sum_w2,
                entries: h.entries,
                underflow: h.underflow,
                overflow: h.overflow,
                missing: h.missing,
            };
            super::report_histogram(&column, &hist);
            return Ok(hist.to_frame()?);
        }
        let mut stream = client
            .execute(authorized(
                &token,
                v1::ExecuteRequest {
                    query: Some(q),
                    page_size: 0,
                    max_pages: 0,
                    cursor: String::new(),
                },
            ))
            .await
            .map_err(message)?
            .into_inner();
        let mut all: Option<DataFrame> = None;
        while let Some(page) = stream.message().await.map_err(message)? {
            if let Some(n) = page.estimated_total {
                eprintln!("≈ {n} rows");
            }
            let df = IpcStreamReader::new(Cursor::new(page.arrow_ipc)).finish()?;
            match &mut all {
                None => all = Some(df),
                Some(a) => {
                    a.vstack_mut(&df)?;
                }
            }
            if let Some(n) = page.exact_total {
                eprintln!("{n} rows");
            }
        }
        Ok(all.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::{chunk_ids, ranges};

    #[test]
    fn chunk_ranges_read_and_print_back() {
        assert_eq!(chunk_ids("0-3, 7,9-9").unwrap(), vec![0, 1, 2, 3, 7, 9]);
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9]), "0-3,7,9");
        assert_eq!(ranges(&[]), "");
        for bad in ["", "a", "4-2", "-1", "1-x", ","] {
            assert!(chunk_ids(bad).is_err(), "{bad}");
        }
    }
}
