//! The query builder window's state: the selection or SQL being edited and its check, the
//! results' pages and their cursors, the histogram and overlay, history, and the work in
//! flight on the async pool.

use std::path::PathBuf;

use crate::Error;
use alyx_core::histogram::{Binning, Histogram};
use alyx_query::builder::{Collection, Combine, Output, Spec};
use alyx_query::{self as query, Checked, Diagnostic, Engine, plan};
use alyx_store::Dataset;
use bevy::math::URect;
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use polars::prelude::DataFrame;

/// Rows per page of results.
pub const PAGE_ROWS: u64 = 10_000;
pub(super) const HISTORY: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Builder,
    Sql,
}

/// A page of results and what is known of the total.
#[derive(Clone, Debug)]
pub struct ResultsView {
    pub frame: DataFrame,
    pub first_row: u64,
    /// "≈ N": from a one-chunk sample.
    pub estimate: u64,
    pub exact: Option<u64>,
}

/// The window's view model.
#[derive(Clone, Debug)]
pub struct QueryView {
    pub mode: Mode,
    pub spec: Spec,
    pub sql: String,
    /// The query text last checked, its diagnostics, and the checked query when valid.
    pub(super) checked_text: String,
    pub diagnostics: Vec<Diagnostic>,
    pub checked: Option<Checked>,
    pub results: Option<ResultsView>,
    pub selected_row: Option<usize>,
    pub hist_column: String,
    pub bins: usize,
    pub lo: f64,
    pub hi: f64,
    pub log_y: bool,
    /// The histogram shown, and an overlaid one kept from an earlier query.
    pub histogram: Option<(String, Histogram)>,
    pub overlay: Option<(String, Histogram)>,
    pub history: Vec<String>,
    pub export_path: String,
    pub message: Option<String>,
    pub loading: bool,
    pub generation: u64,
    pub plot_rect_px: Option<URect>,
    pub fit: crate::fit::FitState,
}

impl Default for QueryView {
    fn default() -> Self {
        Self {
            mode: Mode::Builder,
            spec: Spec {
                combine: Some(Combine {
                    n: 2,
                    opposite_charge: true,
                    same_flavour: false,
                    mass: Some((60.0, 120.0)),
                    closest_to: None,
                }),
                ..Spec::new(Collection::Muons, Output::Combinations)
            },
            sql: String::new(),
            checked_text: String::new(),
            diagnostics: Vec::new(),
            checked: None,
            results: None,
            selected_row: None,
            hist_column: "mass".into(),
            bins: 60,
            lo: 60.0,
            hi: 120.0,
            log_y: false,
            histogram: None,
            overlay: None,
            history: Vec::new(),
            export_path: "alyx-query".into(),
            message: None,
            loading: false,
            generation: 0,
            plot_rect_px: None,
            fit: crate::fit::FitState::default(),
        }
    }
}

impl QueryView {
    /// The query's SQL text as it stands (the builder's, or what was typed).
    pub fn text(&self) -> Result<String, Diagnostic> {
        match self.mode {
            Mode::Builder => self.spec.sql(),
            Mode::Sql => Ok(self.sql.clone()),
        }
    }

    /// Checks the query again when its text changed.
    pub fn revalidate(&mut self) {
        let text = match self.text() {
            Ok(t) => t,
            Err(d) => {
                self.checked_text.clear();
                self.diagnostics = vec![d];
                self.checked = None;
                return;
            }
        };
        if text == self.checked_text {
            return;
        }
        self.checked_text = text.clone();
        match query::prepare(&text, Engine::Local) {
            Ok(c) => {
                self.diagnostics.clear();
                self.checked = Some(c);
            }
            Err(ds) => {
                self.diagnostics = ds;
                self.checked = None;
            }
        }
    }

    pub(super) fn numeric_columns(&self) -> Vec<String> {
        self.checked
            .iter()
            .flat_map(|c| c.columns().iter())
            .filter(|(_, t)| t.is_numeric())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// What the user asked for in the window.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryAction {
    Run,
    Page(u64),
    Histogram,
    KeepAsOverlay,
    ClearOverlay,
    Show(u64),
    ExportCsv(PathBuf),
    ExportParquet(PathBuf),
    ExportPng(PathBuf),
    /// The plot and its fit as a vector figure (SVG or PDF, by extension).
    ExportFigure(PathBuf),
    /// Run the histogram as a job (the local pool, or alyxd with `--backend`) on `target`.
    SubmitJob(String),
}

/// A page, the estimate (first page), the exact total when known, and the next page's cursor.
pub(super) type PageResult = Result<(DataFrame, u64, Option<u64>, plan::Cursor), Error>;

/// The window's state: the view model, the dataset, work in flight.
#[derive(Resource, Default)]
pub struct QueryState {
    pub view: QueryView,
    pub(super) dataset: Option<Dataset>,
    pub(super) actions: Vec<QueryAction>,
    pub(super) page_task: Option<Task<(u64, PageResult)>>,
    /// Keyset cursors of the pages reached so far, by page number.
    pub(super) cursors: Vec<plan::Cursor>,
    pub(super) count_task: Option<Task<Result<u64, Error>>>,
    pub(super) histogram_task: Option<Task<(String, Result<Histogram, Error>)>>,
    pub(super) export_task: Option<Task<String>>,
}

impl QueryState {
    /// The dataset queries run on (the open one).
    pub fn dataset(&self) -> Option<Dataset> {
        self.dataset.clone()
    }

    /// Queues an action, as a click in the window does.
    pub fn push(&mut self, action: QueryAction) {
        self.actions.push(action);
    }

    pub(super) fn run_page(&mut self, first: u64, fresh: bool) {
        let (Some(ds), Some(checked)) = (self.dataset.clone(), self.view.checked.clone()) else {
            self.view.message = Some("open a dataset and write a valid query first".into());
            return;
        };
        if fresh {
            let text = self.view.checked_text.clone();
            self.view.history.retain(|h| h != &text);
            self.view.history.push(text);
            if self.view.history.len() > HISTORY {
                self.view.history.remove(0);
            }
            let (ds2, c2) = (ds.clone(), checked.clone());
            self.count_task = Some(AsyncComputeTaskPool::get().spawn(async move {
                let df = query::run_local(&ds2, &plan::count(&c2))?;
                Ok(plan::count_from_rows(&df))
            }));
        }
        if fresh {
            self.cursors = vec![plan::Cursor::default()];
        }
        // A page reached before (or the one after it) starts from its keyset cursor.
        let cursor = self
            .cursors
            .get((first / PAGE_ROWS) as usize)
            .filter(|c| c.first_row == first)
            .cloned()
            .unwrap_or_else(|| plan::Cursor::at(first));
        self.view.loading = true;
        self.page_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            let result = (|| {
                let q = plan::page(&checked, &cursor, PAGE_ROWS)
                    .map_err(|d| query::invalid_query(&[d]))?;
                let df = query::run_local(&ds, &q)?;
                let estimate = if fresh {
                    query::estimate_rows(&ds, &checked)?
                } else {
                    0
                };
                let exact = (df.height() as u64) < PAGE_ROWS;
                let exact = exact.then(|| first + df.height() as u64);
                let next = plan::next_cursor(&checked, &cursor, &df)
                    .map_err(|d| query::invalid_query(&[d]))?;
                Ok((df, estimate, exact, next))
            })();
            (first, result)
        }));
    }

    pub(super) fn fill_histogram(&mut self) {
        let (Some(ds), Some(checked)) = (self.dataset.clone(), self.view.checked.clone()) else {
            return;
        };
        let binning = match Binning::fixed(self.view.bins, self.view.lo, self.view.hi) {
            Ok(b) => b,
            Err(e) => {
                self.view.message = Some(e.to_string());
                return;
            }
        };
        let column = self.view.hist_column.clone();
        self.view.loading = true;
        self.histogram_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            let h = query::histogram_local(&ds, &checked, &column, None, binning);
            (column, h.map_err(Error::from))
        }));
    }

    pub(super) fn export(
        &mut self,
        path: PathBuf,
        export: impl FnOnce(&std::path::Path) -> Result<(), Error> + Send + 'static,
    ) {
        self.export_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            match export(&path) {
                Ok(()) => format!("saved {}", path.display()),
                Err(e) => e.to_string(),
            }
        }));
    }
}
