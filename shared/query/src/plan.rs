//! Queries built around a checked query, the same for every engine: its histogram (reduced
//! inside the engine: one row per bin comes back, never the rows), its pages and its row count.
//! Each is itself a [`Checked`] query for the engine the query it wraps was checked for.

use polars::prelude::{DataFrame, DataType};

use super::check::Checked;
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use alyx_core::ast::dsl::*;
use alyx_core::ast::*;
use alyx_core::histogram::{Binning, Histogram, Histogram2};

const ROWS: &str = "alyx_rows";
/// Variable bins are one CASE branch per edge in the engine's SQL.
pub const MAX_VARIABLE_EDGES: usize = 1_001;
const BINNED: &str = "alyx_binned";

/// `checked`'s rows as the last WITH table, so that a query can be put around them.
fn wrapped(checked: &Checked) -> Vec<Cte> {
    let q = checked.query();
    let mut with = q.with.clone();
    let keep_order = q.limit.is_some() || q.offset.is_some();
    with.push(Cte {
        name: ROWS.into(),
        query: Query {
            with: Vec::new(),
            body: q.body.clone(),
            order_by: if keep_order {
                q.order_by.clone()
            } else {
                Vec::new()
            },
            limit: q.limit,
            offset: q.offset,
        },
    });
    with
}

fn from(name: &str) -> Option<From> {
    Some(From {
        table: TableRef::new(name, None),
        joins: Vec::new(),
    })
}

fn numeric_output(
    checked: &Checked,
    name: &str,
    what: &str,
) -> std::result::Result<(), Diagnostic> {
    match checked.columns().iter().find(|(c, _)| c == name) {
        Some((_, t)) if t.is_numeric() => Ok(()),
        Some((_, t)) => Err(Diagnostic::new(
            format!(
                "cannot histogram {what} `{name}`: it is {}, not a number",
                t.name()
            ),
            At::NONE,
        )),
        None => {
            let names: Vec<&str> = checked.columns().iter().map(|(c, _)| c.as_str()).collect();
            Err(Diagnostic::new(
                format!(
                    "the query has no output column `{name}` to histogram (it has {})",
                    names.join(", ")
                ),
                At::NONE,
            ))
        }
    }
}

/// Output column `name` can be binned by `binning`: it is a number, and variable edges (one
/// CASE branch each in the engine's SQL) are at most `MAX_VARIABLE_EDGES`.
fn binned_column(
    checked: &Checked,
    name: &str,
    binning: &Binning,
) -> std::result::Result<(), Diagnostic> {
    numeric_output(checked, name, "column")?;
    match binning {
        Binning::Variable(edges) if edges.len() > MAX_VARIABLE_EDGES => Err(Diagnostic::new(
            format!(
                "{} bin edges for `{name}`: a query histogram takes at most {MAX_VARIABLE_EDGES} variable edges (use equal bins for more)",
                edges.len()
            ),
            At::NONE,
        )),
        _ => Ok(()),
    }
}

/// The bin of `x` under `binning`, as [`Binning::index`] computes it: -2 for null, -1 under,
/// `bins` over.
fn bin_expr(x: &Expr, binning: &Binning) -> Expr {
    let null = (
        Expr::IsNull {
            expr: Box::new(x.clone()),
            negated: false,
        },
        int(-2),
    );
    let mut whens = vec![null];
    match binning {
        Binning::Fixed { bins, lo, hi } => {
            let n = *bins as i64;
            whens.push((bin(BinOp::Lt, x.clone(), float(*lo)), int(-1)));
            whens.push((bin(BinOp::GtEq, x.clone(), float(*hi)), int(n)));
            let scaled = bin(
                BinOp::Mul,
                bin(
                    BinOp::Div,
                    bin(BinOp::Sub, x.clone(), float(*lo)),
                    float(hi - lo),
                ),
                float(*bins as f64),
            );
            let index = Expr::Cast {
                expr: Box::new(call("FLOOR", vec![scaled])),
                to: Type::Int,
            };
            Expr::Case {
                whens,
                otherwise: Some(Box::new(call("LEAST", vec![index, int(n - 1)]))),
            }
        }
        Binning::Variable(edges) => {
            for (i, e) in edges.iter().enumerate().rev() {
                whens.push((bin(BinOp::GtEq, x.clone(), float(*e)), int(i as i64)));
            }
            Expr::Case {
                whens,
                otherwise: Some(Box::new(int(-1))),
            }
        }
    }
}

/// A query giving `value`'s histogram as rows (bin, entries, sumw, sumw2), weighted by output
/// column `weight` (or 1).
pub fn histogram(
    checked: &Checked,
    value: &str,
    weight: Option<&str>,
    binning: &Binning,
) -> std::result::Result<Checked, Diagnostic> {
    binned_column(checked, value, binning)?;
    if let Some(w) = weight {
        numeric_output(checked, w, "weight")?;
    }
    let mut with = wrapped(checked);
    let x = col(value);
    let w = weight.map_or(float(1.0), col);
    with.push(Cte {
        name: BINNED.into(),
        query: Query::select(Select {
            items: vec![
                Item::expr(bin_expr(&x, binning), Some("bin")),
                Item::expr(w, Some("w")),
            ],
            from: from(ROWS),
            ..Select::default()
        }),
    });
    let mut q = Query::select(Select {
        items: vec![
            Item::expr(col("bin"), None),
            Item::expr(count_star(), Some("entries")),
            Item::expr(agg(Agg::Sum, col("w")), Some("sumw")),
            Item::expr(
                agg(Agg::Sum, bin(BinOp::Mul, col("w"), col("w"))),
                Some("sumw2"),
            ),
        ],
        from: from(BINNED),
        group_by: vec![col("bin")],
        ..Select::default()
    });
    q.with = with;
    Ok(Checked::planned(q, histogram_columns(), checked.engine()))
}

/// A query giving the 2-D histogram of `x` against `y` as rows (binx, biny, entries, sumw,
/// sumw2): one row per filled cell leaves the engine.
pub fn histogram2(
    checked: &Checked,
    (x, bx): (&str, &Binning),
    (y, by): (&str, &Binning),
) -> std::result::Result<Checked, Diagnostic> {
    binned_column(checked, x, bx)?;
    binned_column(checked, y, by)?;
    Histogram2::new(bx.clone(), by.clone())
        .map_err(|e| Diagnostic::new(e.to_string(), At::NONE))?;
    let mut with = wrapped(checked);
    with.push(Cte {
        name: BINNED.into(),
        query: Query::select(Select {
            items: vec![
                Item::expr(bin_expr(&col(x), bx), Some("binx")),
                Item::expr(bin_expr(&col(y), by), Some("biny")),
            ],
            from: from(ROWS),
            ..Select::default()
        }),
    });
    let mut q = Query::select(Select {
        items: vec![
            Item::expr(col("binx"), None),
            Item::expr(col("biny"), None),
            Item::expr(count_star(), Some("entries")),
        ],
        from: from(BINNED),
        group_by: vec![col("binx"), col("biny")],
        ..Select::default()
    });
    q.with = with;
    let columns = vec![
        ("binx".into(), Type::Int),
        ("biny".into(), Type::Int),
        ("entries".into(), Type::Int),
    ];
    Ok(Checked::planned(q, columns, checked.engine()))
}

/// Column `name` of a histogram query's rows as integers.
fn ints(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .collect())
}

/// Fills a 2-D histogram of `bx` × `by` from the rows of a [`histogram2`] query.
pub fn histogram2_from_rows(df: &DataFrame, bx: Binning, by: Binning) -> Result<Histogram2> {
    let mut h = Histogram2::new(bx, by)?;
    let int = |name| ints(df, name);
    let (binx, biny, entries) = (int("binx")?, int("biny")?, int("entries")?);
    for k in 0..df.height() {
        if let Some(i) = [binx[k], biny[k]].into_iter().flatten().find(|i| *i < -2) {
            return Err(Error::Invalid(format!("histogram query returned bin {i}")));
        }
        let n = entries[k].unwrap_or(0).max(0) as u64;
        h.add_bin(binx[k], biny[k], n, n as f64, n as f64);
    }
    Ok(h)
}

/// The columns of a [`histogram`] query's result.
fn histogram_columns() -> Vec<(String, Type)> {
    vec![
        ("bin".into(), Type::Int),
        ("entries".into(), Type::Int),
        ("sumw".into(), Type::Float),
        ("sumw2".into(), Type::Float),
    ]
}

/// Fills a histogram from the rows of a [`histogram`] query.
pub fn histogram_from_rows(df: &DataFrame, binning: Binning) -> Result<Histogram> {
    let mut h = Histogram::new(binning);
    let flt = |name: &str| -> Result<Vec<Option<f64>>> {
        Ok(df
            .column(name)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .collect())
    };
    let int = |name| ints(df, name);
    let (bins, entries, sw, sw2) = (int("bin")?, int("entries")?, flt("sumw")?, flt("sumw2")?);
    for k in 0..df.height() {
        let count = entries[k].unwrap_or(0).max(0) as u64;
        let (s, s2) = (sw[k].unwrap_or(0.0), sw2[k].unwrap_or(0.0));
        if let Some(i) = bins[k].filter(|i| *i < -2) {
            return Err(Error::Invalid(format!("histogram query returned bin {i}")));
        }
        h.add_bin(bins[k], count, s, s2);
    }
    Ok(h)
}

/// The order pages follow: the query's own ORDER BY (which must name output columns), then
/// every output column, so that the order is total and pages never overlap or miss a row.
fn page_order(checked: &Checked) -> std::result::Result<Vec<Order>, Diagnostic> {
    let mut order = Vec::new();
    for o in &checked.query().order_by {
        match &o.expr {
            Expr::Column {
                table: None, name, ..
            } if checked.columns().iter().any(|(c, _)| c == name) => {
                order.push(Order {
                    expr: col(name),
                    desc: o.desc,
                });
            }
            other => {
                return Err(Diagnostic::new(
                    "to page ordered results, ORDER BY output columns (add the expression to SELECT with AS)",
                    other.at(),
                ));
            }
        }
    }
    for (c, _) in checked.columns() {
        if !order.iter().any(|o| o.expr == col(c)) {
            order.push(Order {
                expr: col(c),
                desc: false,
            });
        }
    }
    Ok(order)
}

/// Where a page starts. Pages are keyset pages: each starts after the last row of the page
/// before in the page order, so the engine filters and takes the top `size` rows instead of
/// sorting and skipping every row before the page (OFFSET). A cursor with no key (the first
/// page, a jump to a row, a key holding NaN) falls back to OFFSET.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Rows before the page.
    pub first_row: u64,
    /// The page-order key (every output column, in page order) of the row before the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<Expr>>,
    /// Rows equal to `after` that came before the page: rows that are equal in every column
    /// cannot be told apart by a key, so the page skips that many of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Cursor {
    /// The page starting at row `first_row`, reached by OFFSET.
    pub fn at(first_row: u64) -> Cursor {
        Cursor {
            first_row,
            ..Cursor::default()
        }
    }
}

/// The page of at most `size` rows of `checked`'s result that starts at `cursor`, in a total
/// order.
pub fn page(
    checked: &Checked,
    cursor: &Cursor,
    size: u64,
) -> std::result::Result<Checked, Diagnostic> {
    let order_by = page_order(checked)?;
    let mut select = Select {
        items: checked
            .columns()
            .iter()
            .map(|(c, _)| Item::expr(col(c), None))
            .collect(),
        from: from(ROWS),
        ..Select::default()
    };
    let offset = match &cursor.after {
        Some(key) if key.len() == order_by.len() => {
            // A cursor comes back from the client: its key goes into the page's WHERE, so it
            // may hold values only, never expressions (a function name is printed as is), and
            // each a value of its column's type (an engine would otherwise fail on the
            // comparison and tell the caller why, with the value in its message).
            for (o, v) in order_by.iter().zip(key) {
                let column = match &o.expr {
                    Expr::Column { name, .. } => checked.columns().iter().find(|(c, _)| c == name),
                    _ => None,
                };
                if !column.is_some_and(|(_, t)| fits(v, *t)) {
                    return Err(Diagnostic::new(
                        "not a cursor from a result page: its key does not match the result's columns",
                        At::NONE,
                    ));
                }
            }
            select.filter = Some(not_before(&order_by, key));
            cursor.skip
        }
        _ => cursor.first_row,
    };
    let mut q = Query::select(select);
    q.with = wrapped(checked);
    q.order_by = order_by;
    q.limit = Some(size);
    q.offset = (offset > 0).then_some(offset);
    Ok(Checked::planned(
        q,
        checked.columns().to_vec(),
        checked.engine(),
    ))
}

/// Whether `e` is a literal value of type `t` or null (what `next_cursor` writes into a key
/// for a column of that type).
fn fits(e: &Expr, t: Type) -> bool {
    match (e, t) {
        (Expr::Null, _) => true,
        (Expr::Int(_), Type::Int | Type::Float) | (Expr::Float(_), Type::Float) => true,
        (Expr::Text(_), Type::Text) | (Expr::Bool(_), Type::Bool) => true,
        (Expr::Neg(inner), Type::Int) => matches!(**inner, Expr::Int(_)),
        (Expr::Neg(inner), Type::Float) => matches!(**inner, Expr::Int(_) | Expr::Float(_)),
        _ => false,
    }
}

/// Rows at or after `key` in `order` (ascending puts nulls last, descending first: a null is
/// above every value either way, as the printed ORDER BY says).
fn not_before(order: &[Order], key: &[Expr]) -> Expr {
    let is_null = |c: &Expr, negated| Expr::IsNull {
        expr: Box::new(c.clone()),
        negated,
    };
    // From the last key column outwards: at or after = strictly after, or equal and at or
    // after on the columns that follow.
    let mut rest: Option<Expr> = None;
    for (o, v) in order.iter().zip(key).rev() {
        let c = &o.expr;
        let equal = match v {
            Expr::Null => is_null(c, false),
            v => bin(BinOp::Eq, c.clone(), v.clone()),
        };
        let after = match (v, o.desc) {
            (Expr::Null, false) => None,
            (Expr::Null, true) => Some(is_null(c, true)),
            (v, false) => Some(bin(
                BinOp::Or,
                bin(BinOp::Gt, c.clone(), v.clone()),
                is_null(c, false),
            )),
            (v, true) => Some(bin(BinOp::Lt, c.clone(), v.clone())),
        };
        let here = match rest {
            Some(r) => bin(BinOp::And, equal, r),
            None => equal,
        };
        rest = Some(match after {
            Some(a) => bin(BinOp::Or, a, here),
            None => here,
        });
    }
    rest.unwrap_or(Expr::Bool(true))
}

/// The cursor of the page after `page`, the rows `checked`'s page query returned at `cursor`.
pub fn next_cursor(
    checked: &Checked,
    cursor: &Cursor,
    page: &DataFrame,
) -> std::result::Result<Cursor, Diagnostic> {
    let rows = page.height() as u64;
    let first_row = cursor.first_row.checked_add(rows).ok_or_else(|| {
        Diagnostic::new(
            "not a cursor from a result page: row beyond the end",
            At::NONE,
        )
    })?;
    let order = page_order(checked)?;
    let key_of = |row: usize| -> Option<Vec<Expr>> {
        order
            .iter()
            .map(|o| {
                let Expr::Column { name, .. } = &o.expr else {
                    return None;
                };
                literal(page.column(name).ok()?.get(row).ok()?)
            })
            .collect()
    };
    let Some(last) = rows.checked_sub(1).and_then(|r| key_of(r as usize)) else {
        return Ok(Cursor::at(first_row));
    };
    // Rows at the end of the page equal to the last one, and those before the page when the
    // whole page is equal to the key it started after.
    let mut same = 0u64;
    while same < rows && key_of((rows - 1 - same) as usize).as_ref() == Some(&last) {
        same += 1;
    }
    if same == rows && cursor.after.as_ref() == Some(&last) {
        same += cursor.skip;
    }
    Ok(Cursor {
        first_row,
        after: Some(last),
        skip: same,
    })
}

/// A result value as a literal that compares equal to it in every engine; None for NaN and
/// infinities (no literal for them in every dialect) and other types.
fn literal(v: polars::prelude::AnyValue) -> Option<Expr> {
    use polars::prelude::AnyValue as V;
    Some(match v {
        V::Null => Expr::Null,
        V::Boolean(b) => Expr::Bool(b),
        V::Int8(i) => Expr::Int(i.into()),
        V::Int16(i) => Expr::Int(i.into()),
        V::Int32(i) => Expr::Int(i.into()),
        V::Int64(i) => Expr::Int(i),
        V::UInt8(i) => Expr::Int(i.into()),
        V::UInt16(i) => Expr::Int(i.into()),
        V::UInt32(i) => Expr::Int(i.into()),
        V::UInt64(i) => Expr::Int(i64::try_from(i).ok()?),
        V::Float32(f) if f.is_finite() => Expr::Float(f.into()),
        V::Float64(f) if f.is_finite() => Expr::Float(f),
        V::String(s) => Expr::Text(s.into()),
        V::StringOwned(s) => Expr::Text(s.as_str().into()),
        _ => return None,
    })
}

/// The result columns of [`count`].
fn count_columns() -> Vec<(String, Type)> {
    vec![("n".into(), Type::Int)]
}

/// The count in the rows [`count`] returned (0 when there are none).
pub fn count_from_rows(df: &DataFrame) -> u64 {
    df.column("n")
        .ok()
        .and_then(|c| c.i64().ok()?.get(0))
        .unwrap_or(0)
        .max(0) as u64
}

/// The number of rows `checked` returns, as one row with column `n`.
pub fn count(checked: &Checked) -> Checked {
    let mut q = Query::select(Select {
        items: vec![Item::expr(count_star(), Some("n"))],
        from: from(ROWS),
        ..Select::default()
    });
    q.with = wrapped(checked);
    Checked::planned(q, count_columns(), checked.engine())
}

/// `query` with each result column cast to its ALYX type, in the same order: engines whose own
/// types differ (Spark reads unsigned Parquet columns as decimals, PostgreSQL sums integers
/// as numeric) return the same table as the local engine.
pub fn typed(checked: &Checked) -> Checked {
    const SOURCE: &str = "alyx_typed";
    let (query, columns) = (checked.query(), checked.columns());
    let mut with = query.with.clone();
    with.push(Cte {
        name: SOURCE.into(),
        query: Query {
            with: Vec::new(),
            body: query.body.clone(),
            order_by: query.order_by.clone(),
            limit: query.limit,
            offset: query.offset,
        },
    });
    let mut q = Query::select(Select {
        items: columns
            .iter()
            .map(|(c, t)| {
                Item::expr(
                    Expr::Cast {
                        expr: Box::new(col(c)),
                        to: *t,
                    },
                    Some(c),
                )
            })
            .collect(),
        from: from(SOURCE),
        ..Select::default()
    });
    q.with = with;
    // The order survives when it names output columns (as pages' orders do).
    let names_outputs = query.order_by.iter().all(|o| {
        matches!(&o.expr, Expr::Column { table: None, name, .. } if columns.iter().any(|(c, _)| c == name))
    });
    if names_outputs {
        q.order_by = query.order_by.clone();
    }
    Checked::planned(q, columns.to_vec(), checked.engine())
}

/// The base tables `query` reads (names in FROM and JOIN that are not its WITH tables).
pub fn tables_read(query: &Query) -> Vec<String> {
    fn walk(q: &Query, ctes: &mut Vec<String>, out: &mut Vec<String>) {
        for c in &q.with {
            walk(&c.query, ctes, out);
            ctes.push(c.name.clone());
        }
        for s in &q.body {
            if let Some(f) = &s.from {
                for t in std::iter::once(&f.table).chain(f.joins.iter().map(|j| &j.table)) {
                    if !ctes.contains(&t.name) && !out.contains(&t.name) {
                        out.push(t.name.clone());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(query, &mut Vec::new(), &mut out);
    out
}
