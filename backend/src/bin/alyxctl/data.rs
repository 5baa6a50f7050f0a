//! `alyxctl generate | import | info | verify | export-phoenix | produce | demo`: datasets in
//! a local data directory, and the detector stand-in that produces to the raw-events topic.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alyx_core::CollisionSystem;
use alyx_core::default_data_dir;
use alyx_datasets as datasets;
use alyx_import::root::Mapping;
use alyx_query as query;
use alyx_sim::generator::{Centrality, GeneratorConfig, ResonanceRates};
use alyx_store::{DataStore, Dataset, Table};
use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cli::{CentralityArg, GenerateSystem, ListFormat, ProduceSystem, bar, runtime};

#[derive(Args)]
pub struct GenerateArgs {
    /// Collision system: pp or pbpb (the ALICE-like barrel), or nano (NanoAOD-like
    /// analysis objects: jets, leptons, MET).
    #[arg(long, value_enum, default_value_t = GenerateSystem::Pp)]
    pub system: GenerateSystem,
    /// Pb–Pb centrality class.
    #[arg(long, value_enum, default_value_t = CentralityArg::Central)]
    pub centrality: CentralityArg,
    #[arg(long)]
    pub events: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Data directory to write the dataset into.
    #[arg(long)]
    pub out: PathBuf,
    /// Dataset name (default: <system>-seed<seed>).
    #[arg(long)]
    pub name: Option<String>,
    /// Mean resonances per event, e.g. `k0s=1,lambda=0.5,jpsi=0.1,z=0.02`.
    #[arg(long)]
    pub rates: Option<String>,
}

fn generate_nano(name: Option<String>, seed: u64, events: u64, out: &Path) -> Result<()> {
    let name = name.unwrap_or_else(|| format!("nano-seed{seed}"));
    let store = DataStore::open(out)?;
    let progress = bar(events, "generating");
    let start = Instant::now();
    let config = alyx_sim::nano::NanoConfig::new(seed);
    let dataset = datasets::generate_nano(&store, &name, config, events, &mut |done| {
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
    Ok(())
}

pub fn generate(args: GenerateArgs) -> Result<()> {
    let GenerateArgs {
        system,
        centrality,
        events,
        seed,
        out,
        name,
        rates,
    } = args;
    let system = match system {
        GenerateSystem::Pp => CollisionSystem::Pp,
        GenerateSystem::Pbpb => CollisionSystem::PbPb,
        GenerateSystem::Nano => return generate_nano(name, seed, events, &out),
    };
    let centrality = match centrality {
        CentralityArg::Central => Centrality::Central,
        CentralityArg::Peripheral => Centrality::Peripheral,
        CentralityArg::Minbias => Centrality::MinimumBias,
    };
    let mut config = match system {
        CollisionSystem::PbPb => GeneratorConfig::pbpb(seed, centrality),
        _ => GeneratorConfig::pp(seed),
    };
    if let Some(r) = rates {
        config.rates = parse_rates(&r, config.rates)?;
    }
    let name = name.unwrap_or_else(|| format!("{}-seed{seed}", system.as_str().to_lowercase()));
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
    Ok(())
}

#[derive(Args)]
pub struct ImportArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub name: Option<String>,
    /// The TTree to read.
    #[arg(long)]
    pub tree: Option<String>,
    /// A TOML file naming the branches for each field (see README).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Print the branch mapping used (a starting point for --mapping).
    #[arg(long)]
    pub show_mapping: bool,
}

pub fn import(args: ImportArgs) -> Result<()> {
    let ImportArgs {
        files,
        out,
        name,
        tree,
        mapping,
        show_mapping,
    } = args;
    for f in &files {
        if !f.is_file() {
            bail!("{}: no such file", f.display());
        }
    }
    let mapping = match mapping {
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
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
    Ok(())
}

#[derive(Args)]
pub struct InfoArgs {
    pub dir: PathBuf,
    #[arg(long)]
    pub dataset: Option<String>,
    /// text, or json (one object per dataset, in an array).
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

pub fn info(args: InfoArgs) -> Result<()> {
    let InfoArgs {
        dir,
        dataset,
        format,
    } = args;
    if format == ListFormat::Json {
        let mut all = Vec::new();
        for d in select(&dir, dataset.as_deref())? {
            let m = d.manifest();
            let mut tables = serde_json::Map::new();
            for table in Table::ALL {
                let schema = d.scan(table)?.collect_schema()?;
                let columns: serde_json::Map<String, serde_json::Value> = schema
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string().into()))
                    .collect();
                tables.insert(
                    table.name().into(),
                    serde_json::json!({ "rows": m.rows(table), "columns": columns }),
                );
            }
            all.push(serde_json::json!({
                "name": m.name,
                "dir": d.dir(),
                "source": m.source,
                "events": m.event_count(),
                "chunks": m.chunks.len(),
                "bytes": m.bytes(),
                "flagged": m.flagged_count(),
                "runs": m.run_range(),
                "time_ns": m.time_range_ns(),
                "tables": tables,
            }));
        }
        out!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    describe(&dir, dataset.as_deref())?;
    Ok(())
}

#[derive(Args)]
pub struct VerifyArgs {
    pub dir: PathBuf,
    #[arg(long)]
    pub dataset: Option<String>,
    /// text, or json (one report per dataset, in an array; the exit code is the same).
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let VerifyArgs {
        dir,
        dataset,
        format,
    } = args;
    let datasets = select(&dir, dataset.as_deref())?;
    let mut bad = 0;
    if format == ListFormat::Json {
        let mut all = Vec::new();
        for d in datasets {
            let report = d.verify();
            bad += report.problems.len();
            all.push(serde_json::json!({
                "name": d.name(),
                "ok": report.is_ok(),
                "files_checked": report.files_checked,
                "bytes_checked": report.bytes_checked,
                "problems": report.problems.iter().map(|p| serde_json::json!({
                    "path": p.path, "what": p.what.to_string(),
                })).collect::<Vec<_>>(),
                "unreferenced": report.unreferenced,
            }));
        }
        out!("{}", serde_json::to_string_pretty(&all)?);
        if bad > 0 {
            bail!("{bad} damaged file(s); restore them from a backup or re-import the dataset");
        }
        return Ok(());
    }
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
    Ok(())
}

#[derive(Args)]
pub struct ExportPhoenixArgs {
    pub dir: PathBuf,
    #[arg(long)]
    pub event: u64,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub dataset: Option<String>,
}

pub fn export_phoenix(args: ExportPhoenixArgs) -> Result<()> {
    let ExportPhoenixArgs {
        dir,
        event,
        out,
        dataset,
    } = args;
    let dataset = Dataset::resolve(&dir, dataset.as_deref())?;
    let e = dataset.read_event(event)?;
    let doc = alyx_import::phoenix::export(std::slice::from_ref(&e));
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
    Ok(())
}

#[derive(Args)]
pub struct ProduceArgs {
    #[arg(long)]
    pub events: u64,
    /// Events per second (default: as fast as the broker takes them).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Collision system: pp or pbpb (central).
    #[arg(long, value_enum, default_value_t = ProduceSystem::Pp)]
    pub system: ProduceSystem,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Index of the first generated event (to continue an earlier run).
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    #[arg(long, env = "ALYXD_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, env = "ALYXD_KAFKA_TOPIC", default_value = "raw-events")]
    pub topic: String,
    /// Write each message to a file in this directory (RUN-EVENT.pb) instead of the broker:
    /// inputs for tests and replays, the ingest fuzzer's seeds.
    #[arg(long)]
    pub to_dir: Option<PathBuf>,
}

pub fn produce(args: ProduceArgs) -> Result<()> {
    let ProduceArgs {
        events,
        rate,
        system,
        seed,
        first,
        brokers,
        topic,
        to_dir,
    } = args;
    let system = match system {
        ProduceSystem::Pp => CollisionSystem::Pp,
        ProduceSystem::Pbpb => CollisionSystem::PbPb,
    };
    let options = alyx_backend::produce::ProduceOptions {
        brokers,
        topic,
        system,
        events,
        first,
        seed,
        rate,
    };
    let (done, place) = match &to_dir {
        Some(dir) => (
            alyx_backend::produce::write_files(&options, dir)?,
            dir.display().to_string(),
        ),
        None => (
            runtime()?.block_on(alyx_backend::produce::produce(&options))?,
            options.topic.clone(),
        ),
    };
    out!(
        "produced {} events ({:.1} MB) to {} in {:.2} s: {:.0} events/s, {:.1} MB/s",
        done.events,
        done.bytes as f64 / 1e6,
        place,
        done.seconds,
        done.events as f64 / done.seconds.max(1e-9),
        done.bytes as f64 / 1e6 / done.seconds.max(1e-9)
    );
    Ok(())
}

#[derive(Args)]
pub struct DemoArgs {
    /// Data directory (default: $ALYX_DATA_DIR or ~/.local/share/alyx).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn demo(args: DemoArgs) -> Result<()> {
    let DemoArgs { data_dir } = args;
    make_demo(data_dir.unwrap_or_else(default_data_dir))?;
    Ok(())
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

fn describe(dir: &Path, name: Option<&str>) -> Result<()> {
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
            out!("  time:    {} – {}", alyx_core::utc(lo), alyx_core::utc(hi));
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

fn make_demo(data_dir: PathBuf) -> Result<()> {
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
        let checked =
            query::prepare(&sql, query::Engine::Local).map_err(|d| query::invalid_query(&d))?;
        let df = query::run_local(pp, &checked)?;
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
    use alyx_core::physics::mass;
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
