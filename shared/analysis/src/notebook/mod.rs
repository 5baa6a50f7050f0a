//! Notebooks: an Automerge document that several people edit at once, online or offline, and
//! that merges without losing an edit.
//!
//! Layout of the document:
//!
//! ```text
//! ROOT { title: str,
//!        order: [cell id, …],                  -- the cells shown, in order
//!        cells: { id: { kind: str,             -- markdown | query | plot | event
//!                       source: Text,          -- merged character by character
//!                       output: str,           -- JSON of `CellOutput` (last run wins)
//!                       author: str, engine: str, last_run_ms: int } } }
//! ```
//!
//! A cell's content lives in the `cells` map and its place in the `order` list, so moving a cell
//! moves only its id: an edit of the cell's text made concurrently with the move is kept. A
//! deleted cell leaves `order` but keeps its content, so any version can be restored. Every
//! change is committed with `author: what` as its message and the time, which is the version
//! history. Presence (cursors, the event someone looks at) is not part of the document.

pub mod run;

use std::collections::HashSet;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use alyx_core::histogram::{Histogram, Histogram2};

/// The sync protocol's state for one peer (kept per connection; a new one after reconnecting).
pub use automerge::sync::State as SyncState;

/// What a cell holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Text for people (Markdown).
    Markdown,
    /// A query (ALYX SQL, or a builder selection as JSON) whose rows are the output.
    Query,
    /// A query and histograms of its columns (`-- histogram COL:BINS:LO:HI` lines).
    Plot,
    /// An event view: dataset, event id, camera, cuts and visibility (JSON).
    Event,
}

impl CellKind {
    pub const ALL: [CellKind; 4] = [
        CellKind::Markdown,
        CellKind::Query,
        CellKind::Plot,
        CellKind::Event,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CellKind::Markdown => "markdown",
            CellKind::Query => "query",
            CellKind::Plot => "plot",
            CellKind::Event => "event",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A cell's last output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellOutput {
    /// The first rows of a result, as text, and the total row count.
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        total: u64,
    },
    /// Histograms, by column.
    Histograms(Vec<(String, Histogram)>),
    /// Histograms, 2-D histograms and the fits the cell asks for (`-- fit MODEL on COL` lines).
    #[serde(alias = "fitted")]
    Plots {
        histograms: Vec<(String, Histogram)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        maps: Vec<CellMap>,
        fits: Vec<CellFit>,
    },
    /// The cell went to the cluster as job `id`; its output fills in when the job ends.
    Job {
        id: u64,
        state: String,
    },
    Error(String),
}

impl CellOutput {
    /// An output as a peer wrote it into the document, checked as any input is: JSON that does
    /// not read as an output, a histogram whose arrays do not match its binning or a table
    /// whose rows do not match its columns is shown as an error, never handed to the display.
    pub fn read(json: &str) -> CellOutput {
        let unreadable =
            |why: String| CellOutput::Error(format!("this output cannot be shown: {why}"));
        match serde_json::from_str::<CellOutput>(json) {
            Ok(CellOutput::Table { columns, rows, .. })
                if rows.iter().any(|r| r.len() != columns.len()) =>
            {
                unreadable(format!(
                    "a table row does not have its {} columns",
                    columns.len()
                ))
            }
            Ok(output) => output,
            Err(e) => unreadable(e.to_string()),
        }
    }
}

/// A fit a plot cell asks for, and its result (or why there is none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellFit {
    pub column: String,
    pub model: String,
    pub result: std::result::Result<alyx_fit::FitResult, String>,
}

/// A 2-D histogram of a plot cell: output column `y` against `x`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellMap {
    pub x: String,
    pub y: String,
    pub histogram: Histogram2,
}

/// A cell as read from the document.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub id: String,
    pub kind: CellKind,
    pub source: String,
    pub output: Option<CellOutput>,
    pub author: String,
    pub engine: String,
    pub last_run_ms: Option<i64>,
}

/// One change of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The change's hash: `Notebook::at` shows the notebook as it was then.
    pub hash: String,
    /// Who made it: as the change's message claims, unless `attested`.
    pub author: String,
    pub what: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The author is the one alyxd authenticated for the session that sent the change (a
    /// server's history), not just what the change claims.
    #[serde(default)]
    pub attested: bool,
}

pub struct Notebook {
    doc: AutoCommit,
    /// Who makes the changes committed from here.
    author: String,
}

fn am(e: automerge::AutomergeError) -> Error {
    Error::Invalid(format!("notebook: {e}"))
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A list element that is a string.
fn item_str(v: automerge::ValueRef<'_>) -> Option<String> {
    match v {
        automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => Some(s.into_owned()),
        _ => None,
    }
}

/// A random cell id (64 bits, hex).
fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn parse_heads(heads: &[String]) -> Result<Vec<ChangeHash>> {
    heads
        .iter()
        .map(|h| {
            h.parse()
                .map_err(|_| Error::Invalid(format!("`{h}` is not a version of this notebook")))
        })
        .collect()
}

impl Notebook {
    /// A new notebook (made once, by whoever creates it; everyone else loads it).
    pub fn new(title: &str, author: &str) -> Self {
        let mut doc = AutoCommit::new();
        // These cannot fail on a fresh document.
        let _ = doc.put(ROOT, "title", title);
        let _ = doc.put_object(ROOT, "order", ObjType::List);
        let _ = doc.put_object(ROOT, "cells", ObjType::Map);
        let mut nb = Self {
            doc,
            author: author.to_owned(),
        };
        nb.commit("created the notebook");
        nb
    }

    /// Loads a notebook saved with [`Notebook::save`] (or the bytes a server sends).
    pub fn load(bytes: &[u8], author: &str) -> Result<Self> {
        let doc = AutoCommit::load(bytes).map_err(am)?;
        let nb = Self {
            doc,
            author: author.to_owned(),
        };
        nb.root_object("order")?;
        nb.root_object("cells")?;
        Ok(nb)
    }

    /// An empty document that fills in by syncing with a peer holding the notebook.
    pub fn empty(author: &str) -> Self {
        Self {
            doc: AutoCommit::new(),
            author: author.to_owned(),
        }
    }

    /// The whole notebook in Automerge's binary format (history included).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn author(&self) -> &str {
        &self.author
    }

    fn root_object(&self, key: &str) -> Result<ObjId> {
        match self.doc.get(ROOT, key).map_err(am)? {
            Some((automerge::Value::Object(_), id)) => Ok(id),
            _ => Err(Error::Invalid(format!("not a notebook: no `{key}`"))),
        }
    }

    fn commit(&mut self, what: &str) -> Option<ChangeHash> {
        self.doc.commit_with(
            CommitOptions::default()
                .with_message(format!("{}: {what}", self.author))
                .with_time(now_s()),
        )
    }

    fn str_at(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.doc.get(obj, key).ok()?? {
            (automerge::Value::Scalar(s), _) => s.to_str().map(str::to_owned),
            _ => None,
        }
    }

    pub fn title(&self) -> String {
        self.str_at(&ROOT, "title").unwrap_or_default()
    }

    pub fn set_title(&mut self, title: &str) -> Result<()> {
        self.doc.put(ROOT, "title", title).map_err(am)?;
        self.commit("renamed the notebook");
        Ok(())
    }

    /// The ids in `order`, each once (two people moving one cell at once may leave it twice).
    pub fn order(&self) -> Vec<String> {
        let Ok(order) = self.root_object("order") else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        self.doc
            .list_range(&order, ..)
            .filter_map(|item| item_str(item.value))
            .filter(|id| seen.insert(id.clone()))
            .collect()
    }

    fn cell_obj(&self, id: &str) -> Result<ObjId> {
        let cells = self.root_object("cells")?;
        match self.doc.get(&cells, id).map_err(am)? {
            Some((automerge::Value::Object(ObjType::Map), obj)) => Ok(obj),
            _ => Err(Error::NotFound(format!("no cell `{id}` in the notebook"))),
        }
    }

    fn source_obj(&self, id: &str) -> Result<ObjId> {
        let cell = self.cell_obj(id)?;
        match self.doc.get(&cell, "source").map_err(am)? {
            Some((automerge::Value::Object(ObjType::Text), obj)) => Ok(obj),
            _ => Err(Error::Invalid(format!("cell `{id}` has no source text"))),
        }
    }

    pub fn cell(&self, id: &str) -> Result<Cell> {
        let obj = self.cell_obj(id)?;
        let source = self.doc.text(self.source_obj(id)?).map_err(am)?;
        let output = self
            .str_at(&obj, "output")
            .filter(|s| !s.is_empty())
            .map(|s| CellOutput::read(&s));
        let last_run_ms = match self.doc.get(&obj, "last_run_ms").ok().flatten() {
            Some((automerge::Value::Scalar(s), _)) => s.to_i64(),
            _ => None,
        };
        Ok(Cell {
            id: id.to_owned(),
            kind: self
                .str_at(&obj, "kind")
                .and_then(|k| CellKind::parse(&k))
                .unwrap_or(CellKind::Markdown),
            source,
            output,
            author: self.str_at(&obj, "author").unwrap_or_default(),
            engine: self.str_at(&obj, "engine").unwrap_or_default(),
            last_run_ms,
        })
    }

    /// The cells shown, in order.
    pub fn cells(&self) -> Vec<Cell> {
        self.order()
            .iter()
            .filter_map(|id| self.cell(id).ok())
            .collect()
    }

    /// Adds a cell at position `at` (clamped to the end); its id.
    pub fn insert_cell(&mut self, at: usize, kind: CellKind, source: &str) -> Result<String> {
        let id = new_id();
        let cells = self.root_object("cells")?;
        let order = self.root_object("order")?;
        let cell = self
            .doc
            .put_object(&cells, id.as_str(), ObjType::Map)
            .map_err(am)?;
        self.doc.put(&cell, "kind", kind.name()).map_err(am)?;
        self.doc
            .put(&cell, "author", self.author.as_str())
            .map_err(am)?;
        self.doc.put(&cell, "output", "").map_err(am)?;
        let text = self
            .doc
            .put_object(&cell, "source", ObjType::Text)
            .map_err(am)?;
        self.doc.splice_text(&text, 0, 0, source).map_err(am)?;
        let at = at.min(self.doc.length(&order));
        self.doc.insert(&order, at, id.as_str()).map_err(am)?;
        self.commit(&format!("added {} cell {id}", kind.name()));
        Ok(id)
    }

    /// Positions of `id` in the raw `order` list.
    fn positions(&self, id: &str) -> Result<Vec<usize>> {
        let order = self.root_object("order")?;
        Ok(self
            .doc
            .list_range(&order, ..)
            .enumerate()
            .filter(|(_, item)| item_str(item.value.clone()).as_deref() == Some(id))
            .map(|(i, _)| i)
            .collect())
    }

    /// Removes a cell from the notebook (its content stays in the history).
    pub fn delete_cell(&mut self, id: &str) -> Result<()> {
        let order = self.root_object("order")?;
        let at = self.positions(id)?;
        if at.is_empty() {
            return Err(Error::NotFound(format!("no cell `{id}` in the notebook")));
        }
        for i in at.into_iter().rev() {
            self.doc.delete(&order, i).map_err(am)?;
        }
        self.commit(&format!("deleted cell {id}"));
        Ok(())
    }

    /// Shows a deleted cell again at position `at` (its content was kept).
    pub fn undelete_cell(&mut self, id: &str, at: usize) -> Result<()> {
        self.cell_obj(id)?;
        if !self.positions(id)?.is_empty() {
            return Ok(());
        }
        let order = self.root_object("order")?;
        let at = at.min(self.doc.length(&order));
        self.doc.insert(&order, at, id).map_err(am)?;
        self.commit(&format!("restored cell {id}"));
        Ok(())
    }

    /// Moves a cell to position `to` among the cells shown.
    pub fn move_cell(&mut self, id: &str, to: usize) -> Result<()> {
        let order = self.root_object("order")?;
        let at = self.positions(id)?;
        if at.is_empty() {
            return Err(Error::NotFound(format!("no cell `{id}` in the notebook")));
        }
        for i in at.into_iter().rev() {
            self.doc.delete(&order, i).map_err(am)?;
        }
        // `to` counts shown cells; find the raw index before the cell now at `to`.
        let shown = self.order();
        let raw = match shown.get(to) {
            Some(next) => self.positions(next)?.first().copied().unwrap_or(0),
            None => self.doc.length(&order),
        };
        self.doc.insert(&order, raw, id).map_err(am)?;
        self.commit(&format!("moved cell {id} to {to}"));
        Ok(())
    }

    /// Replaces `del` characters at `pos` of a cell's source with `text` (a keystroke).
    pub fn splice_source(&mut self, id: &str, pos: usize, del: usize, text: &str) -> Result<()> {
        let obj = self.source_obj(id)?;
        let len = self.doc.length(&obj);
        if pos > len || pos + del > len {
            return Err(Error::Invalid(format!(
                "cell `{id}`: characters {pos}..{} are outside its {len}",
                pos + del
            )));
        }
        self.doc
            .splice_text(&obj, pos, del as isize, text)
            .map_err(am)?;
        self.commit(&format!("edited cell {id}"));
        Ok(())
    }

    /// Makes a cell's source `text`, as the smallest splices from what it is (an editor that
    /// hands over the whole text): concurrent edits elsewhere in the text are kept.
    pub fn set_source(&mut self, id: &str, text: &str) -> Result<()> {
        let obj = self.source_obj(id)?;
        if self.doc.text(&obj).map_err(am)? == text {
            return Ok(());
        }
        self.doc.update_text(&obj, text).map_err(am)?;
        self.commit(&format!("edited cell {id}"));
        Ok(())
    }

    pub fn set_kind(&mut self, id: &str, kind: CellKind) -> Result<()> {
        let obj = self.cell_obj(id)?;
        self.doc.put(&obj, "kind", kind.name()).map_err(am)?;
        self.commit(&format!("made cell {id} {}", kind.name()));
        Ok(())
    }

    /// Records a cell's output and where and when it ran.
    pub fn set_output(
        &mut self,
        id: &str,
        output: &CellOutput,
        engine: &str,
        run_ms: i64,
    ) -> Result<()> {
        let obj = self.cell_obj(id)?;
        let json = serde_json::to_string(output)
            .map_err(|e| Error::Invalid(format!("cell output to JSON: {e}")))?;
        self.doc.put(&obj, "output", json).map_err(am)?;
        self.doc.put(&obj, "engine", engine).map_err(am)?;
        self.doc.put(&obj, "last_run_ms", run_ms).map_err(am)?;
        self.commit(&format!("ran cell {id} on {engine}"));
        Ok(())
    }

    /// A stable place in a cell's source (for a cursor others see): it stays on the same
    /// character while text is inserted or deleted before it.
    pub fn cursor(&self, id: &str, pos: usize) -> Result<String> {
        let obj = self.source_obj(id)?;
        let pos = pos.min(self.doc.length(&obj));
        let c = if pos == self.doc.length(&obj) {
            self.doc
                .get_cursor(&obj, automerge::CursorPosition::End, None)
        } else {
            self.doc.get_cursor(&obj, pos, None)
        };
        Ok(c.map_err(am)?.to_string())
    }

    /// Where `cursor` (from [`Notebook::cursor`]) is now in a cell's source.
    pub fn cursor_position(&self, id: &str, cursor: &str) -> Option<usize> {
        let obj = self.source_obj(id).ok()?;
        // (Automerge's parser slices the first byte: anything but ASCII is no cursor of ours.)
        if cursor.is_empty() || !cursor.is_ascii() {
            return None;
        }
        let c = automerge::Cursor::try_from(cursor).ok()?;
        self.doc.get_cursor_position(&obj, &c, None).ok()
    }

    /// The heads: the version the notebook is at.
    pub fn heads(&mut self) -> Vec<String> {
        self.doc
            .get_heads()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every change, oldest first.
    pub fn history(&mut self) -> Vec<Version> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|c| {
                let message = c.message().cloned().unwrap_or_default();
                let (author, what) = message
                    .split_once(": ")
                    .map_or((String::new(), message.clone()), |(a, w)| {
                        (a.to_owned(), w.to_owned())
                    });
                Version {
                    hash: c.hash().to_string(),
                    author,
                    what,
                    time: c.timestamp(),
                    attested: false,
                }
            })
            .collect()
    }

    /// The notebook as it was at `heads` (a version from [`Notebook::history`]).
    pub fn at(&mut self, heads: &[String]) -> Result<Notebook> {
        let heads = parse_heads(heads)?;
        let doc = self.doc.fork_at(&heads).map_err(am)?;
        Ok(Notebook {
            doc,
            author: self.author.clone(),
        })
    }

    /// Makes the notebook look as it did at `heads` again, as a new change (nothing in between
    /// is forgotten: it stays in the history).
    pub fn restore(&mut self, heads: &[String]) -> Result<()> {
        let old = self.at(heads)?;
        let order = self.root_object("order")?;
        let now_shown = self.doc.length(&order);
        for i in (0..now_shown).rev() {
            self.doc.delete(&order, i).map_err(am)?;
        }
        let cells = self.root_object("cells")?;
        for (i, cell) in old.cells().into_iter().enumerate() {
            // A cell made after the version is gone from the order; a cell of the version is
            // always still in `cells` (deleting only leaves the order).
            let obj = match self.cell_obj(&cell.id) {
                Ok(obj) => obj,
                Err(_) => {
                    let obj = self
                        .doc
                        .put_object(&cells, cell.id.as_str(), ObjType::Map)
                        .map_err(am)?;
                    self.doc
                        .put_object(&obj, "source", ObjType::Text)
                        .map_err(am)?;
                    obj
                }
            };
            self.doc.put(&obj, "kind", cell.kind.name()).map_err(am)?;
            let output = match &cell.output {
                Some(o) => serde_json::to_string(o).unwrap_or_default(),
                None => String::new(),
            };
            self.doc.put(&obj, "output", output).map_err(am)?;
            let text = self.source_obj(&cell.id)?;
            self.doc.update_text(&text, &cell.source).map_err(am)?;
            self.doc.insert(&order, i, cell.id.as_str()).map_err(am)?;
        }
        self.doc.put(ROOT, "title", old.title()).map_err(am)?;
        self.commit(&format!(
            "restored the version of {}",
            heads.first().map_or("", |h| &h[..h.len().min(12)])
        ));
        Ok(())
    }

    /// Merges another copy's changes into this one (offline work, a file).
    pub fn merge(&mut self, other: &mut Notebook) -> Result<()> {
        self.doc.merge(&mut other.doc).map_err(am)?;
        Ok(())
    }

    /// Changes since `heads` (none: all), each in Automerge's change format.
    pub fn changes_since(&mut self, heads: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
        let heads = parse_heads(heads)?;
        Ok(self
            .doc
            .get_changes(&heads)
            .into_iter()
            .map(|mut c| (c.hash().to_string(), c.bytes().into_owned()))
            .collect())
    }

    /// Applies changes in Automerge's change format (known ones are ignored).
    pub fn apply_changes(&mut self, changes: &[Vec<u8>]) -> Result<()> {
        let changes = changes
            .iter()
            .map(|b| {
                automerge::Change::from_bytes(b.clone())
                    .map_err(|e| Error::Invalid(format!("not an Automerge change: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.doc.apply_changes(changes).map_err(am)?;
        Ok(())
    }

    /// The next message of the sync protocol for the peer whose state is `state`; None when the
    /// peer is up to date (or an answer is awaited).
    pub fn sync_message(&mut self, state: &mut sync::State) -> Option<Vec<u8>> {
        self.doc
            .sync()
            .generate_sync_message(state)
            .map(sync::Message::encode)
    }

    /// Applies a sync protocol message from the peer whose state is `state`.
    pub fn receive_sync(&mut self, state: &mut sync::State, message: &[u8]) -> Result<()> {
        let m = sync::Message::decode(message)
            .map_err(|e| Error::Invalid(format!("not a sync message: {e}")))?;
        self.doc.sync().receive_sync_message(state, m).map_err(am)
    }

    /// Whether a sync message carries changes (a reader may send only requests).
    pub fn message_has_changes(message: &[u8]) -> bool {
        sync::Message::decode(message).is_ok_and(|m| !m.changes.is_empty())
    }

    /// The notebook as Markdown: text cells as they are, the others as fenced blocks with
    /// their outputs.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n", self.title());
        for cell in self.cells() {
            out.push('\n');
            match cell.kind {
                CellKind::Markdown => out.push_str(cell.source.trim_end()),
                kind => {
                    let lang = if kind == CellKind::Event {
                        "json"
                    } else {
                        "sql"
                    };
                    out.push_str(&format!("```{lang}\n{}\n```", cell.source.trim_end()));
                    if let Some(o) = &cell.output {
                        out.push_str("\n\n");
                        out.push_str(&output_text(o));
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// The notebook as a Jupyter notebook (nbformat 4) with its outputs as text, so the work can
    /// leave ALYX.
    pub fn to_ipynb(&self) -> serde_json::Value {
        let lines =
            |s: &str| -> Vec<String> { s.split_inclusive('\n').map(str::to_owned).collect() };
        let cells: Vec<serde_json::Value> = self
            .cells()
            .iter()
            .map(|c| match c.kind {
                CellKind::Markdown => serde_json::json!({
                    "cell_type": "markdown", "id": c.id, "metadata": {}, "source": lines(&c.source),
                }),
                kind => {
                    let outputs: Vec<serde_json::Value> = c
                        .output
                        .iter()
                        .map(|o| {
                            serde_json::json!({
                                "output_type": "execute_result", "execution_count": null, "metadata": {},
                                "data": {"text/plain": lines(&output_text(o))},
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "cell_type": "code", "id": c.id, "execution_count": null, "outputs": outputs,
                        "metadata": {"alyx": {"kind": kind.name(), "engine": c.engine, "author": c.author}},
                        "source": lines(&c.source),
                    })
                }
            })
            .collect();
        serde_json::json!({
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"title": self.title(), "language_info": {"name": "sql"}},
            "cells": cells,
        })
    }
}

/// A cell output as plain text (Markdown and .ipynb exports).
pub fn output_text(o: &CellOutput) -> String {
    match o {
        CellOutput::Table {
            columns,
            rows,
            total,
        } => {
            let mut s = format!(
                "| {} |\n|{}\n",
                columns.join(" | "),
                "---|".repeat(columns.len())
            );
            for r in rows {
                s.push_str(&format!("| {} |\n", r.join(" | ")));
            }
            if *total > rows.len() as u64 {
                s.push_str(&format!("\n{} of {total} rows\n", rows.len()));
            }
            s
        }
        CellOutput::Histograms(hs) => hs
            .iter()
            .map(|(col, h)| {
                format!(
                    "histogram of {col}: {} entries in {} bins, {} underflow, {} overflow\n",
                    h.entries.iter().sum::<u64>(),
                    h.entries.len(),
                    h.underflow,
                    h.overflow
                )
            })
            .collect(),
        CellOutput::Plots {
            histograms,
            maps,
            fits,
        } => {
            let mut s = output_text(&CellOutput::Histograms(histograms.clone()));
            for m in maps {
                let h = &m.histogram;
                s.push_str(&format!(
                    "2-D histogram of {} against {}: {} entries in {} × {} cells, {} outside\n",
                    m.y,
                    m.x,
                    h.entries.iter().sum::<u64>(),
                    h.x.bins(),
                    h.y.bins(),
                    h.outside
                ));
            }
            for f in fits {
                match &f.result {
                    Ok(r) => {
                        s.push_str(&format!(
                            "fit of {} to {} in {}:{}: χ²/ndf {:.1}/{}{}\n",
                            f.column,
                            f.model,
                            r.range.0,
                            r.range.1,
                            r.chi2,
                            r.ndf,
                            r.message
                                .as_ref()
                                .map_or(String::new(), |m| format!(" (not converged: {m})"))
                        ));
                        for p in &r.params {
                            let error = if p.fixed {
                                " (fixed)".to_owned()
                            } else {
                                format!(" ± {:.4}", p.error)
                            };
                            s.push_str(&format!("  {} = {:.6}{error}\n", p.name, p.value));
                        }
                    }
                    Err(e) => s.push_str(&format!("fit of {} to {}: {e}\n", f.column, f.model)),
                }
            }
            s
        }
        CellOutput::Job { id, state } => format!("job {id}: {state}\n"),
        CellOutput::Error(e) => format!("error: {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One client's edit. Positions are taken modulo what there is.
    #[derive(Clone, Debug)]
    enum Edit {
        AddCell(usize, bool),
        Type(usize, usize),
        Move(usize, usize),
        Delete(usize),
        Title,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), any::<bool>()).prop_map(|(a, md)| Edit::AddCell(a, md)),
            (any::<usize>(), any::<usize>()).prop_map(|(c, p)| Edit::Type(c, p)),
            (any::<usize>(), any::<usize>()).prop_map(|(c, to)| Edit::Move(c, to)),
            any::<usize>().prop_map(Edit::Delete),
            Just(Edit::Title),
        ]
    }

    /// Applies `e` as client `who`'s `n`-th edit; the token it typed, if it typed one.
    fn apply(nb: &mut Notebook, e: &Edit, who: usize, n: usize, deletes: bool) -> Option<String> {
        let token = format!("<{who}.{n}>");
        let cells = nb.order();
        match e {
            Edit::AddCell(at, md) => {
                let kind = if *md {
                    CellKind::Markdown
                } else {
                    CellKind::Query
                };
                nb.insert_cell(*at % (cells.len() + 1), kind, &token).ok()?;
                Some(token)
            }
            Edit::Type(c, p) if !cells.is_empty() => {
                let id = &cells[*c % cells.len()];
                let len = nb.cell(id).ok()?.source.chars().count();
                nb.splice_source(id, *p % (len + 1), 0, &token).ok()?;
                Some(token)
            }
            Edit::Move(c, to) if !cells.is_empty() => {
                nb.move_cell(&cells[*c % cells.len()], *to % cells.len())
                    .ok()?;
                None
            }
            Edit::Delete(c) if deletes && !cells.is_empty() => {
                nb.delete_cell(&cells[*c % cells.len()]).ok()?;
                None
            }
            Edit::Title => {
                nb.set_title(&format!("title by {who}")).ok()?;
                None
            }
            _ => None,
        }
    }

    fn everything(nb: &Notebook) -> String {
        let mut s = nb.title();
        for c in nb.cells() {
            s.push_str(&format!("|{}:{}:{}", c.id, c.kind.name(), c.source));
        }
        s
    }

    /// Clients edit concurrently; every change reaches every client in a random order, some
    /// twice. All converge to one document.
    fn run(
        clients: usize,
        edits: Vec<(usize, Edit)>,
        order: Vec<usize>,
        deletes: bool,
    ) -> (Vec<Notebook>, Vec<String>) {
        let mut origin = Notebook::new("shared", "origin");
        let base = origin.save();
        let mut nbs: Vec<Notebook> = (0..clients)
            .map(|i| Notebook::load(&base, &format!("user{i}")).expect("load"))
            .collect();
        let mut typed = Vec::new();
        // Each client's changes as they are made (bytes), to deliver later.
        let mut outbox: Vec<Vec<u8>> = Vec::new();
        for (n, (who, e)) in edits.iter().enumerate() {
            let who = who % clients;
            let before = nbs[who].heads();
            if let Some(t) = apply(&mut nbs[who], e, who, n, deletes) {
                typed.push(t);
            }
            for (_, bytes) in nbs[who].changes_since(&before).expect("changes") {
                outbox.push(bytes);
            }
        }
        // Delivery: for each client, the changes in a random order with duplicates, one by one
        // (a change may arrive before the ones it depends on).
        for (c, nb) in nbs.iter_mut().enumerate() {
            let mut delivery: Vec<usize> = (0..outbox.len()).collect();
            for (i, r) in order.iter().enumerate() {
                let len = delivery.len();
                if len > 1 {
                    delivery.swap(i % len, (r + c) % len);
                }
                if r % 3 == 0 && len > 0 {
                    delivery.push(delivery[r % len]); // a duplicate
                }
            }
            for i in delivery {
                nb.apply_changes(&[outbox[i].clone()]).expect("apply");
            }
        }
        (nbs, typed)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn concurrent_edits_converge_and_keep_every_keystroke(
            clients in 2usize..5,
            edits in proptest::collection::vec((any::<usize>(), edit()), 1..40),
            order in proptest::collection::vec(any::<usize>(), 0..60),
        ) {
            let (mut nbs, typed) = run(clients, edits, order, false);
            let first = everything(&nbs[0]);
            let heads = nbs[0].heads();
            for nb in &mut nbs[1..] {
                prop_assert_eq!(everything(nb), first.clone());
                prop_assert_eq!(nb.heads(), heads.clone());
            }
            // No cell deleted: every keystroke typed anywhere is in the document, once. A
            // token typed inside another splits it, so each is looked for as a subsequence of
            // one cell's text, and the lengths add up.
            let sources: Vec<String> = nbs[0].cells().into_iter().map(|c| c.source).collect();
            let subsequence = |t: &str, s: &str| {
                let mut it = s.chars();
                t.chars().all(|c| it.any(|x| x == c))
            };
            for t in &typed {
                prop_assert!(sources.iter().any(|s| subsequence(t, s)), "{} in {:?}", t, sources);
            }
            let typed_len: usize = typed.iter().map(|t| t.chars().count()).sum();
            let stored_len: usize = sources.iter().map(|s| s.chars().count()).sum();
            prop_assert_eq!(typed_len, stored_len);
        }

        #[test]
        fn concurrent_deletes_and_moves_converge(
            clients in 2usize..5,
            edits in proptest::collection::vec((any::<usize>(), edit()), 1..40),
            order in proptest::collection::vec(any::<usize>(), 0..60),
        ) {
            let (nbs, _) = run(clients, edits, order, true);
            let first = everything(&nbs[0]);
            for nb in &nbs[1..] {
                prop_assert_eq!(everything(nb), first.clone());
            }
        }
    }

    /// Two peers with the sync protocol, until neither has anything to send.
    fn sync_pair(a: &mut Notebook, sa: &mut sync::State, b: &mut Notebook, sb: &mut sync::State) {
        for _ in 0..20 {
            let ma = a.sync_message(sa);
            let mb = b.sync_message(sb);
            if ma.is_none() && mb.is_none() {
                return;
            }
            if let Some(m) = ma {
                b.receive_sync(sb, &m).expect("b receives");
            }
            if let Some(m) = mb {
                a.receive_sync(sa, &m).expect("a receives");
            }
        }
        panic!("sync did not settle");
    }

    #[test]
    fn the_same_sentence_edited_offline_by_two_people_merges_without_loss() {
        let mut server = Notebook::new("Z analysis", "ada");
        let cell = server
            .insert_cell(0, CellKind::Markdown, "The Z peak is at 91 GeV.")
            .expect("cell");
        let (mut ada, mut bob) = (Notebook::empty("ada"), Notebook::empty("bob"));
        let (mut s_ada, mut a_srv, mut s_bob, mut b_srv) = (
            sync::State::new(),
            sync::State::new(),
            sync::State::new(),
            sync::State::new(),
        );
        sync_pair(&mut server, &mut s_ada, &mut ada, &mut a_srv);
        sync_pair(&mut server, &mut s_bob, &mut bob, &mut b_srv);
        // Offline, both edit the same sentence.
        ada.set_source(&cell, "The Z peak is at 91.19 GeV.")
            .expect("ada");
        bob.set_source(&cell, "The dimuon Z peak is at 91 GeV.")
            .expect("bob");
        let cursor = bob.cursor(&cell, 4).expect("cursor before `dimuon`");
        sync_pair(&mut server, &mut s_ada, &mut ada, &mut a_srv);
        sync_pair(&mut server, &mut s_bob, &mut bob, &mut b_srv);
        sync_pair(&mut server, &mut s_ada, &mut ada, &mut a_srv);
        let text = |nb: &Notebook| nb.cell(&cell).expect("cell").source;
        assert_eq!(text(&server), "The dimuon Z peak is at 91.19 GeV.");
        assert_eq!(text(&ada), text(&server));
        assert_eq!(text(&bob), text(&server));
        // Bob's cursor stayed before "dimuon" in everyone's copy.
        assert_eq!(ada.cursor_position(&cell, &cursor), Some(4));
    }

    #[test]
    fn history_shows_and_restores_earlier_versions() {
        let mut nb = Notebook::new("Dimuons", "ada");
        let q = nb
            .insert_cell(0, CellKind::Query, "SELECT pt FROM muons")
            .expect("cell");
        let v1 = nb.heads();
        nb.set_source(&q, "SELECT pt, eta FROM muons WHERE pt > 20")
            .expect("edit");
        nb.insert_cell(1, CellKind::Markdown, "notes")
            .expect("cell");
        nb.delete_cell(&q).expect("delete");
        assert_eq!(nb.cells().len(), 1);
        let history = nb.history();
        assert!(history.len() >= 5, "{history:?}");
        assert!(history.iter().all(|v| v.author == "ada" && v.time > 0));
        assert!(history.iter().any(|v| v.what.starts_with("deleted cell")));
        // The version after the first cell, as it was.
        let old = nb.at(&v1).expect("old version");
        assert_eq!(old.cells().len(), 1);
        assert_eq!(old.cells()[0].source, "SELECT pt FROM muons");
        // Restored as a new change: the history keeps everything.
        let before = nb.history().len();
        nb.restore(&v1).expect("restore");
        let cells = nb.cells();
        assert_eq!(cells.len(), 1);
        assert_eq!(
            (cells[0].id.as_str(), cells[0].source.as_str()),
            (q.as_str(), "SELECT pt FROM muons")
        );
        assert_eq!(nb.history().len(), before + 1);
        assert!(nb.at(&["nothex".into()]).is_err());
    }

    #[test]
    fn saves_loads_and_exports() {
        let mut nb = Notebook::new("Z → μμ", "ada");
        let md = nb
            .insert_cell(
                0,
                CellKind::Markdown,
                "## Selection\nOpposite-charge muons.",
            )
            .expect("md");
        let q = nb
            .insert_cell(1, CellKind::Query, "SELECT COUNT(*) AS n FROM muons")
            .expect("q");
        nb.set_output(
            &q,
            &CellOutput::Table {
                columns: vec!["n".into()],
                rows: vec![vec!["2304".into()]],
                total: 1,
            },
            "local",
            1_700_000_000_000,
        )
        .expect("output");
        nb.move_cell(&q, 0).expect("move");
        let bytes = nb.save();
        let back = Notebook::load(&bytes, "bob").expect("load");
        assert_eq!(back.cells(), nb.cells());
        assert_eq!(back.order(), vec![q.clone(), md.clone()]);
        assert!(Notebook::load(b"not a notebook", "bob").is_err());
        let md_text = back.to_markdown();
        assert!(md_text.starts_with("# Z → μμ\n"), "{md_text}");
        assert!(
            md_text.contains("```sql\nSELECT COUNT(*) AS n FROM muons\n```"),
            "{md_text}"
        );
        assert!(md_text.contains("| 2304 |"), "{md_text}");
        let ipynb = back.to_ipynb();
        assert_eq!(ipynb["nbformat"], 4);
        assert_eq!(ipynb["cells"][0]["cell_type"], "code");
        assert_eq!(
            ipynb["cells"][0]["outputs"][0]["output_type"],
            "execute_result"
        );
        assert_eq!(ipynb["cells"][1]["cell_type"], "markdown");
        assert_eq!(ipynb["cells"][1]["source"][0], "## Selection\n");
    }

    #[test]
    fn outputs_a_peer_wrote_wrong_read_as_errors() {
        let mut nb = Notebook::new("hostile", "mallory");
        let q = nb.insert_cell(0, CellKind::Query, "SELECT 1").expect("q");
        let fixed = r#"{"Fixed":{"bins":3,"lo":0.0,"hi":3.0}}"#;
        let hist = |binning: &str, sums: &str| {
            format!(
                r#"{{"histograms":[["pt",{{"binning":{binning},"sum_w":{sums},"sum_w2":{sums},"entries":[1,1,1],"underflow":0,"overflow":0,"missing":0}}]]}}"#
            )
        };
        let good = hist(fixed, "[1.0,1.0,1.0]");
        let obj = nb.cell_obj(&q).expect("cell");
        nb.doc.put(&obj, "output", good.as_str()).expect("put");
        assert!(matches!(
            nb.cell(&q).expect("cell").output,
            Some(CellOutput::Histograms(_))
        ));
        for bad in [
            hist(fixed, "[1.0]"),
            hist(
                r#"{"Fixed":{"bins":1000000000000,"lo":0.0,"hi":3.0}}"#,
                "[1.0,1.0,1.0]",
            ),
            hist(r#"{"Variable":[3.0,2.0,1.0,0.0]}"#, "[1.0,1.0,1.0]"),
            r#"{"table":{"columns":["a","b"],"rows":[["1"]],"total":1}}"#.to_owned(),
            "not json".to_owned(),
            "[".repeat(100_000),
        ] {
            nb.doc.put(&obj, "output", bad.as_str()).expect("put");
            let output = nb.cell(&q).expect("cell").output;
            assert!(
                matches!(&output, Some(CellOutput::Error(m)) if m.contains("cannot be shown")),
                "{output:?}"
            );
        }
    }
}
