//! `alyxctl notebook …`: notebooks in alyxd over CollabService.

use std::path::PathBuf;

use alyx_analysis::notebook::{CellKind, Notebook};
use alyx_client::{Client, v1};
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};

use crate::cli::{AccessArg, ExportFormat, ListFormat};

#[derive(Subcommand)]
pub enum NotebookCommand {
    /// Create a notebook; prints its id.
    Create { title: String },
    /// The notebooks you may open.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Give a user read or write access (or `none` to take it away); owner only.
    Share {
        id: u64,
        user: String,
        #[arg(long, value_enum, default_value_t = AccessArg::Read)]
        access: AccessArg,
    },
    /// Write a notebook out: Markdown, Jupyter (.ipynb, with outputs) or Automerge (the whole
    /// document with its history), chosen by --format or the file's extension.
    Export {
        id: u64,
        #[arg(long)]
        out: Option<PathBuf>,
        /// The export's format (default: by the file's extension).
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
        /// A version from `history` (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Every change: version, time, author (as alyxd authenticated it; `?` after a name alyxd
    /// has no record of, which is what the change claims), what.
    History { id: u64 },
    /// Make the notebook look as it did at a version again (a new change; nothing is lost).
    Restore { id: u64, version: String },
    /// Append a cell (markdown, query, plot or event) with its source.
    AddCell {
        id: u64,
        #[arg(long, default_value = "markdown")]
        kind: String,
        source: String,
    },
}

fn access_name(a: i32) -> &'static str {
    match v1::Access::try_from(a) {
        Ok(v1::Access::Owner) => "owner",
        Ok(v1::Access::Write) => "write",
        Ok(v1::Access::Read) => "read",
        _ => "none",
    }
}

async fn fetch(client: &Client, id: u64) -> Result<Notebook> {
    let (_, document) = client.notebook(id).await?;
    Ok(Notebook::load(&document, "alyxctl")?)
}

/// Applies `edit` to notebook `id` through a sync session, and waits until alyxd has stored it
/// (its copy holds the change).
async fn edit(
    client: &Client,
    id: u64,
    edit: impl FnOnce(&mut Notebook) -> Result<(), alyx_analysis::Error>,
) -> Result<()> {
    let timeout = std::time::Duration::from_secs(30);
    let mut s = client.open_notebook(id, Notebook::empty("alyxctl")).await?;
    if !s.until(timeout, |s| !s.notebook.title().is_empty()).await? {
        bail!("notebook {id} did not arrive");
    }
    edit(&mut s.notebook)?;
    let want = s.notebook.heads();
    s.flush().await?;
    let started = std::time::Instant::now();
    loop {
        // Keep answering the server while waiting.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), s.next()).await;
        let stored: std::collections::HashSet<String> = fetch(client, id)
            .await?
            .history()
            .into_iter()
            .map(|v| v.hash)
            .collect();
        if want.iter().all(|h| stored.contains(h)) {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("alyxd did not store the change in {} s", timeout.as_secs());
        }
    }
}

pub async fn run(command: NotebookCommand, backend: &str, token: &str) -> Result<()> {
    let client = Client::connect(backend, token).await?;
    match command {
        NotebookCommand::Create { title } => {
            let info = client.create_notebook(&title).await?;
            out!("{}", info.id);
        }
        NotebookCommand::List { format } => {
            let all = client.notebooks().await?;
            if format == ListFormat::Json {
                let list: Vec<serde_json::Value> = all
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "id": n.id,
                            "title": n.title,
                            "owner": n.owner,
                            "access": access_name(n.access),
                            "updated_unix_ms": n.updated_ms,
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            out!(
                "{:>6}  {:<16} {:<6} {:<20} title",
                "id",
                "owner",
                "access",
                "changed (UTC)"
            );
            for n in all {
                out!(
                    "{:>6}  {:<16} {:<6} {:<20} {}",
                    n.id,
                    n.owner,
                    access_name(n.access),
                    alyx_core::utc(n.updated_ms.saturating_mul(1_000_000)),
                    n.title
                );
            }
        }
        NotebookCommand::Share { id, user, access } => {
            let a = match access {
                AccessArg::Read => v1::Access::Read,
                AccessArg::Write => v1::Access::Write,
                AccessArg::None => v1::Access::None,
            };
            let info = client.share(id, &user, a).await?;
            for g in info.grants {
                out!("{:<16} {}", g.user, access_name(g.access));
            }
        }
        NotebookCommand::Export {
            id,
            out: path,
            format,
            at,
        } => {
            let mut nb = fetch(&client, id).await?;
            if let Some(v) = at {
                nb = nb.at(&[v])?;
            }
            let format = match format {
                Some(f) => f,
                None => match path.as_ref().and_then(|p| p.extension()) {
                    None => ExportFormat::Md,
                    Some(e) => ExportFormat::from_str(&e.to_string_lossy(), true).map_err(|_| {
                        anyhow::anyhow!(
                            "cannot tell the format from the extension .{}: give --format md, ipynb or automerge",
                            e.to_string_lossy()
                        )
                    })?,
                },
            };
            let bytes = match format {
                ExportFormat::Md => nb.to_markdown().into_bytes(),
                ExportFormat::Ipynb => serde_json::to_vec_pretty(&nb.to_ipynb())?,
                ExportFormat::Automerge => nb.save(),
            };
            match path {
                Some(p) => std::fs::write(&p, bytes)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        NotebookCommand::History { id } => {
            let versions = client.notebook_history(id).await?;
            out!(
                "{:<12} {:<20} {:<12} what",
                "version",
                "time (UTC)",
                "author"
            );
            for v in versions {
                let author = if v.attested {
                    v.author
                } else {
                    format!("{}?", v.author)
                };
                out!(
                    "{:<12} {:<20} {:<12} {}",
                    v.hash.get(..12).unwrap_or(&v.hash),
                    alyx_core::utc(v.time.saturating_mul(1_000_000_000)),
                    author,
                    v.what
                );
            }
        }
        NotebookCommand::Restore { id, version } => {
            let mut nb = fetch(&client, id).await?;
            let full = nb
                .history()
                .into_iter()
                .find(|v| v.hash.starts_with(&version))
                .with_context(|| format!("no version {version} in notebook {id}"))?
                .hash;
            edit(&client, id, |nb| nb.restore(&[full.clone()])).await?;
            out!("notebook {id} restored to {version}");
        }
        NotebookCommand::AddCell { id, kind, source } => {
            let kind = CellKind::parse(&kind)
                .with_context(|| format!("--kind `{kind}`: use markdown, query, plot or event"))?;
            edit(&client, id, |nb| {
                let n = nb.order().len();
                nb.insert_cell(n, kind, &source).map(|_| ())
            })
            .await?;
            out!("added a {} cell to notebook {id}", kind.name());
        }
    }
    Ok(())
}
