//! Paging a checked query's result: keyset pages one after the other, the first with an
//! estimate of the total and the last with the exact count, pushed into a bounded channel so a
//! slow reader slows the engine down instead of piling pages up. QueryService's `Execute`
//! streams these pages; nothing here knows the wire.

use alyx_query::{Checked, Type, plan};
use polars::prelude::DataFrame;
use tokio::sync::mpsc;

use crate::engines::Engines;
use crate::error::{Error, Result};

/// One page of a result.
pub struct Page {
    pub rows: DataFrame,
    pub columns: Vec<(String, Type)>,
    /// Rows of the result before this page.
    pub first_row: u64,
    /// On the first page: the engine's estimate of the result's size.
    pub estimated_total: Option<u64>,
    /// Once known (a short page, or the last page asked for): the exact number of rows.
    pub exact_total: Option<u64>,
    /// No page follows in this call.
    pub last: bool,
    /// Where the next page starts, when there are more rows.
    pub next_cursor: Option<plan::Cursor>,
}

/// What to page through, and how.
pub struct Pages {
    pub engines: Engines,
    pub dataset: String,
    pub checked: Checked,
    pub user: String,
    /// The chunks a catalogue filter selected (all when `None`).
    pub chunks: Option<Vec<u32>>,
    pub size: u64,
    /// At most this many pages (0: until the result ends).
    pub max_pages: u32,
}

impl Pages {
    /// Pages from `start` on, produced by a task of their own into the returned channel; an
    /// error ends the pages. The task stops when the receiver is dropped, mid-query too: the
    /// engine's future is dropped (a Spark session is released, which interrupts its
    /// operations; a local scan already on a blocking thread finishes its page first).
    pub fn spawn(self, start: plan::Cursor) -> mpsc::Receiver<Result<Page>> {
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            tokio::select! {
                result = self.send(start, &tx) => {
                    if let Err(e) = result {
                        let _ = tx.send(Err(e)).await;
                    }
                }
                () = tx.closed() => {}
            }
        });
        rx
    }

    async fn run(&self, q: &Checked) -> Result<DataFrame> {
        self.engines
            .run(&self.dataset, q, &self.user, self.chunks.as_deref())
            .await
    }

    async fn send(&self, start: plan::Cursor, tx: &mpsc::Sender<Result<Page>>) -> Result<()> {
        let checked = &self.checked;
        let invalid = |d: alyx_query::Diagnostic| Error::InvalidArgument(d.to_string());
        let estimate = self.engines.estimate(&self.dataset, checked).await.ok();
        let mut cursor = start;
        let mut sent = 0u32;
        loop {
            let q = plan::page(checked, &cursor, self.size).map_err(invalid)?;
            let rows = self.run(&q).await?;
            let n = rows.height() as u64;
            let first = cursor.first_row;
            let last = n < self.size || (self.max_pages > 0 && sent + 1 >= self.max_pages);
            let exact = if n < self.size {
                Some(first.checked_add(n).ok_or_else(|| {
                    Error::InvalidArgument(
                        "not a cursor from a result page: row beyond the end".into(),
                    )
                })?)
            } else if last {
                Some(plan::count_from_rows(
                    &self.run(&plan::count(checked)).await?,
                ))
            } else {
                None
            };
            cursor = plan::next_cursor(checked, &cursor, &rows).map_err(invalid)?;
            let more = exact.is_none_or(|total| total > cursor.first_row);
            let page = Page {
                rows,
                columns: checked.columns().to_vec(),
                first_row: first,
                estimated_total: (sent == 0).then_some(estimate.unwrap_or(n)),
                exact_total: exact,
                last,
                next_cursor: more.then(|| cursor.clone()),
            };
            if tx.send(Ok(page)).await.is_err() {
                return Ok(()); // the reader went away
            }
            sent += 1;
            if last {
                return Ok(());
            }
        }
    }
}
