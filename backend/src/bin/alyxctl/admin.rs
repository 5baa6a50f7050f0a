//! `alyxctl admin`: users and replicas (on the backend host, with alyxd's database settings)
//! and the ingest, storage and executor status (over gRPC, as an operator).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::cli::ListFormat;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user and print its token (shown once; stored only hashed).
    CreateUser {
        name: String,
        /// The user's role.
        #[arg(long, value_enum)]
        role: alyx_backend::auth::Role,
        /// The token stops working after this long: `90d`, `12h`, `30m`, `45s`; default never
        /// (revoke it to end it).
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<std::time::Duration>,
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
        #[arg(long, env = "ALYX_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

/// A token lifetime: a whole number with a unit, `d`, `h`, `m` or `s`.
fn parse_lifetime(text: &str) -> std::result::Result<std::time::Duration, String> {
    let unit = match text.chars().last() {
        Some('d') => 86_400,
        Some('h') => 3_600,
        Some('m') => 60,
        Some('s') => 1,
        _ => {
            return Err(format!(
                "`{text}`: write a number and a unit, e.g. 90d, 12h, 30m"
            ));
        }
    };
    let n: u64 = text[..text.len() - 1]
        .parse()
        .map_err(|_| format!("`{text}`: write a number and a unit, e.g. 90d, 12h, 30m"))?;
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 && secs <= 10 * 365 * 86_400 => {
            Ok(std::time::Duration::from_secs(secs))
        }
        _ => Err(format!("`{text}`: a lifetime from 1 s to 10 years")),
    }
}

pub async fn run(command: AdminCommand) -> Result<()> {
    use alyx_backend::auth;
    use alyx_backend::jobs::store as replicas;
    use alyx_backend::{Config, catalogue};
    let pool = |config: Option<PathBuf>| async move {
        let config = Config::load(config.as_deref())?;
        anyhow::Ok(catalogue::connect(&config).await?)
    };
    match command {
        AdminCommand::CreateUser {
            name,
            role,
            expires,
            config,
        } => {
            let pool = pool(config).await?;
            let token = auth::create_user_expiring(&pool, &name, role, expires).await?;
            out!("{token}");
            let lifetime = match expires {
                Some(d) => format!("expires in {} s", d.as_secs()),
                None => "never expires".into(),
            };
            eprintln!(
                "created user `{name}` ({}); the token above is shown only once and {lifetime}",
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
                    alyx_core::utc(u.created_ns)
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
                None => alyx_store::DataStore::open(&config.data_dir)?
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
        AdminCommand::Status {
            backend,
            token,
            format,
        } => status(&backend, &token, format).await?,
    }
    Ok(())
}

/// The most chunk ids one `--chunks` may name.
const MAX_CHUNK_IDS: usize = 1_000_000;

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
                // A typo like 0-2000000000 must not allocate gigabytes.
                if ids.len() + (b - a) as usize >= MAX_CHUNK_IDS {
                    anyhow::bail!("`{text}` names more than {MAX_CHUNK_IDS} chunks");
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

async fn status(backend: &str, token: &str, format: ListFormat) -> Result<()> {
    let client = alyx_client::Client::connect(backend, token).await?;
    let ingest = client.ingest_status().await?;
    let storage = client.storage_status().await?;
    let executors = client.executor_status().await?.executors;
    if format == ListFormat::Json {
        use serde_json::json;
        let status = json!({
            "ingest": {
                "state": ingest.state,
                "detail": ingest.detail,
                "topic": ingest.topic,
                "brokers": ingest.brokers,
                "instance": ingest.instance,
                "events_per_second": ingest.events_per_second,
                "events_stored": ingest.events_stored,
                "queue_depth": ingest.queue_depth,
                "estimated_delay_s": ingest.estimated_delay_s,
                "dead_letters": ingest.dead_letters,
                "partitions": ingest.partitions.iter().map(|p| json!({
                    "partition": p.partition,
                    "committed_offset": p.committed_offset,
                    "high_watermark": p.high_watermark,
                    "lag": p.lag,
                    "owner": p.owner,
                })).collect::<Vec<_>>(),
            },
            "storage": {
                "catalogue_rows": storage.catalogue_rows,
                "catalogue_partitions": storage.catalogue_partitions,
                "data_dir": storage.data_dir,
                "datasets": storage.datasets.iter().map(|d| json!({
                    "name": d.name,
                    "chunks": d.chunks,
                    "bytes": d.bytes,
                    "catalogue_rows": d.catalogue_rows,
                })).collect::<Vec<_>>(),
            },
            "executors": executors.iter().map(|e| json!({
                "name": e.name,
                "up": e.up,
                "running": e.running,
                "slots": e.slots,
                "detail": e.detail,
            })).collect::<Vec<_>>(),
        });
        out!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::{chunk_ids, parse_lifetime, ranges};

    #[test]
    fn chunk_ranges_read_and_print_back() {
        assert_eq!(chunk_ids("0-3, 7,9-9").unwrap(), vec![0, 1, 2, 3, 7, 9]);
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9]), "0-3,7,9");
        assert_eq!(ranges(&[]), "");
        for bad in ["", "a", "4-2", "-1", "1-x", ","] {
            assert!(chunk_ids(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifetimes_have_a_unit_and_a_sane_range() {
        assert_eq!(parse_lifetime("90d").map(|d| d.as_secs()), Ok(90 * 86_400));
        assert_eq!(parse_lifetime("45s").map(|d| d.as_secs()), Ok(45));
        for bad in [
            "",
            "d",
            "90",
            "-1d",
            "0s",
            "99999999999999999d",
            "11000d",
            "1w",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunk_lists_are_bounded() {
        assert_eq!(super::chunk_ids("0-2,9").expect("ids"), [0, 1, 2, 9]);
        assert!(super::chunk_ids("0-2000000000").is_err());
        assert!(super::chunk_ids("5-1").is_err());
    }
}
