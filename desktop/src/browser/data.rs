//! The event table as data: its columns, the query a view asks for (built as a query AST and checked), a page of rows.

use crate::Error;
use alyx_query::ast::dsl::{all, bin, col, count_star, int};
use alyx_query::ast::{BinOp, Expr, From, Item, Order, Query, Select, TableRef};
use alyx_query::{self as query, Checked, Engine};
use alyx_store::Dataset;
use bevy::prelude::*;

/// A column of the event table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Column {
    #[default]
    EventId,
    Run,
    EventNumber,
    System,
    Tracks,
    Hits,
    Muons,
    Electrons,
    Jets,
    MetPt,
    Flags,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::EventId,
        Column::Run,
        Column::EventNumber,
        Column::System,
        Column::Tracks,
        Column::Hits,
        Column::Muons,
        Column::Electrons,
        Column::Jets,
        Column::MetPt,
        Column::Flags,
    ];

    /// The column of the `events` table it shows.
    pub fn sql_name(self) -> &'static str {
        match self {
            Column::EventId => "event_id",
            Column::Run => "run",
            Column::EventNumber => "event_number",
            Column::System => "system",
            Column::Tracks => "n_tracks",
            Column::Hits => "n_hits",
            Column::Muons => "n_muons",
            Column::Electrons => "n_electrons",
            Column::Jets => "n_jets",
            Column::MetPt => "met_pt",
            Column::Flags => "flags",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Column::EventId => "id",
            Column::Run => "run",
            Column::EventNumber => "event",
            Column::System => "system",
            Column::Tracks => "tracks",
            Column::Hits => "hits",
            Column::Muons => "μ",
            Column::Electrons => "e",
            Column::Jets => "jets",
            Column::MetPt => "MET (GeV)",
            Column::Flags => "flags",
        }
    }
}

/// What the browser shows: filters, order and page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserQuery {
    pub run: Option<u32>,
    /// Inclusive bounds on `n_tracks`.
    pub min_tracks: Option<u32>,
    pub max_tracks: Option<u32>,
    pub sort: Column,
    pub descending: bool,
    /// Zero-based.
    pub page: usize,
    pub page_size: usize,
}

impl Default for BrowserQuery {
    fn default() -> Self {
        Self {
            run: None,
            min_tracks: None,
            max_tracks: None,
            sort: Column::EventId,
            descending: false,
            page: 0,
            page_size: 50,
        }
    }
}

impl BrowserQuery {
    /// The filters as a condition on `events` (None: every event).
    pub(super) fn filter(&self) -> Option<Expr> {
        let n_tracks = |op, v: u32| bin(op, col("n_tracks"), int(v.into()));
        all([
            self.run
                .map(|run| bin(BinOp::Eq, col("run"), int(run.into()))),
            self.min_tracks.map(|min| n_tracks(BinOp::GtEq, min)),
            self.max_tracks.map(|max| n_tracks(BinOp::LtEq, max)),
        ]
        .into_iter()
        .flatten())
    }

    /// Sorts by `sort` with missing values last in either direction, then by event id so that
    /// pages never overlap.
    pub(super) fn order(&self) -> Vec<Order> {
        let by = |expr, desc| Order { expr, desc };
        if self.sort == Column::EventId {
            return vec![by(col("event_id"), self.descending)];
        }
        let sort = col(self.sort.sql_name());
        let missing = Expr::IsNull {
            expr: Box::new(sort.clone()),
            negated: false,
        };
        vec![
            by(missing, false),
            by(sort, self.descending),
            by(col("event_id"), false),
        ]
    }

    /// `SELECT items FROM events WHERE filters`, checked for the local engine.
    pub(super) fn events_query(
        &self,
        items: Vec<Item>,
        order: Vec<Order>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Checked, Error> {
        let mut q = Query::select(Select {
            items,
            from: Some(From {
                table: TableRef::new("events", None),
                joins: Vec::new(),
            }),
            filter: self.filter(),
            ..Select::default()
        });
        q.order_by = order;
        q.limit = limit;
        q.offset = offset.filter(|o| *o > 0);
        query::check(&q, Engine::Local).map_err(|d| query::invalid_query(&d).into())
    }
}

/// One row of the event table.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub event_id: u64,
    pub run: u32,
    pub event_number: u64,
    pub system: String,
    pub n_tracks: u32,
    pub n_hits: u32,
    pub n_muons: u32,
    pub n_electrons: u32,
    pub n_jets: u32,
    /// `None` where the event has no missing-energy measurement.
    pub met_pt_gev: Option<f64>,
    /// Validation flags (empty for a valid event).
    pub flags: String,
}

impl EventRow {
    pub(super) fn cell(&self, column: Column) -> String {
        match column {
            Column::EventId => self.event_id.to_string(),
            Column::Run => self.run.to_string(),
            Column::EventNumber => self.event_number.to_string(),
            Column::System => self.system.clone(),
            Column::Tracks => self.n_tracks.to_string(),
            Column::Hits => self.n_hits.to_string(),
            Column::Muons => self.n_muons.to_string(),
            Column::Electrons => self.n_electrons.to_string(),
            Column::Jets => self.n_jets.to_string(),
            Column::MetPt => self
                .met_pt_gev
                .map_or_else(String::new, |m| format!("{m:.1}")),
            Column::Flags => self.flags.clone(),
        }
    }
}

/// One page of the event table.
#[derive(Clone, Debug, PartialEq)]
pub struct BrowserPage {
    pub rows: Vec<EventRow>,
    /// Events passing the filters, on all pages.
    pub total: u64,
}

impl BrowserPage {
    /// Number of pages of `page_size` rows (at least one).
    pub fn pages(&self, page_size: usize) -> usize {
        (self.total as usize).div_ceil(page_size.max(1)).max(1)
    }
}

/// The page `q` asks for, and how many events pass its filters.
pub fn browse(dataset: &Dataset, q: &BrowserQuery) -> Result<BrowserPage, Error> {
    if q.page_size == 0 {
        return Err(Error::Invalid("page size must be at least 1".into()));
    }
    let items = Column::ALL
        .iter()
        .map(|c| Item::expr(col(c.sql_name()), None))
        .collect();
    let offset = q
        .page
        .checked_mul(q.page_size)
        .ok_or_else(|| Error::Invalid("page beyond the end".into()))?;
    let page = q.events_query(
        items,
        q.order(),
        Some(q.page_size as u64),
        Some(offset as u64),
    )?;
    let df = query::run_local(dataset, &page)?;
    let number = |name: &str, i: usize| -> Result<Option<f64>, Error> {
        Ok(df.column(name)?.get(i)?.extract::<f64>())
    };
    let integer = |name: &str, i: usize| -> Result<u64, Error> {
        df.column(name)?
            .get(i)?
            .extract::<u64>()
            .ok_or_else(|| Error::Invalid(format!("events.{name} is null in row {i}")))
    };
    let text = |name: &str, i: usize| -> Result<String, Error> {
        Ok(df
            .column(name)?
            .str()?
            .get(i)
            .unwrap_or_default()
            .to_owned())
    };
    let count = |name: &str, i: usize| -> Result<u32, Error> {
        u32::try_from(integer(name, i)?)
            .map_err(|_| Error::Invalid(format!("events.{name} out of range in row {i}")))
    };
    let rows = (0..df.height())
        .map(|i| {
            Ok(EventRow {
                event_id: integer("event_id", i)?,
                run: count("run", i)?,
                event_number: integer("event_number", i)?,
                system: text("system", i)?,
                n_tracks: count("n_tracks", i)?,
                n_hits: count("n_hits", i)?,
                n_muons: count("n_muons", i)?,
                n_electrons: count("n_electrons", i)?,
                n_jets: count("n_jets", i)?,
                met_pt_gev: number("met_pt", i)?,
                flags: text("flags", i)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let count = q.events_query(
        vec![Item::expr(count_star(), Some("n"))],
        Vec::new(),
        None,
        None,
    )?;
    let counted = query::run_local(dataset, &count)?;
    let total = counted.column("n")?.get(0)?.extract::<u64>().unwrap_or(0);
    Ok(BrowserPage { rows, total })
}

/// The id of the first event numbered `event_number` in `run`.
pub fn find(dataset: &Dataset, run: u32, event_number: u64) -> Result<Option<u64>, Error> {
    let event_number = i64::try_from(event_number)
        .map_err(|_| Error::Invalid(format!("no event number {event_number}")))?;
    let mut q = Query::select(Select {
        items: vec![Item::expr(col("event_id"), None)],
        from: Some(From {
            table: TableRef::new("events", None),
            joins: Vec::new(),
        }),
        filter: all([
            bin(BinOp::Eq, col("run"), int(run.into())),
            bin(BinOp::Eq, col("event_number"), int(event_number)),
        ]),
        ..Select::default()
    });
    q.order_by = vec![Order {
        expr: col("event_id"),
        desc: false,
    }];
    q.limit = Some(1);
    let checked = query::check(&q, Engine::Local).map_err(|d| query::invalid_query(&d))?;
    let df = query::run_local(dataset, &checked)?;
    if df.height() == 0 {
        return Ok(None);
    }
    Ok(df.column("event_id")?.get(0)?.extract::<u64>())
}
