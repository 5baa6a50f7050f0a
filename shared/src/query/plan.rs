//! Queries built around a checked query, the same for every engine: its histogram (reduced
//! inside the engine: one row per bin comes back, never the rows), its pages and its row count.

use polars::prelude::{DataFrame, DataType};

use super::Diagnostic;
use super::ast::dsl::*;
use super::ast::*;
use super::check::Checked;
use crate::error::{Error, Result};
use crate::histogram::{Binning, Histogram};

const ROWS: &str = "alyx_rows";
const BINNED: &str = "alyx_binned";

/// `checked`'s rows as the last WITH table, so that a query can be put around them.
fn wrapped(checked: &Checked) -> Vec<Cte> {
    let q = &checked.query;
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
    match checked.columns.iter().find(|(c, _)| c == name) {
        Some((_, t)) if t.is_numeric() => Ok(()),
        Some((_, t)) => Err(Diagnostic::new(
            format!(
                "cannot histogram {what} `{name}`: it is {}, not a number",
                t.name()
            ),
            At::NONE,
        )),
        None => {
            let names: Vec<&str> = checked.columns.iter().map(|(c, _)| c.as_str()).collect();
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
) -> std::result::Result<Query, Diagnostic> {
    numeric_output(checked, value, "column")?;
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
    Ok(q)
}

/// The columns of a [`histogram`] query's result.
pub fn histogram_columns() -> Vec<(String, Type)> {
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
    let int = |name: &str| -> Result<Vec<Option<i64>>> {
        Ok(df
            .column(name)?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .collect())
    };
    let flt = |name: &str| -> Result<Vec<Option<f64>>> {
        Ok(df
            .column(name)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .collect())
    };
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
    for o in &checked.query.order_by {
        match &o.expr {
            Expr::Column {
                table: None, name, ..
            } if checked.columns.iter().any(|(c, _)| c == name) => {
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
    for (c, _) in &checked.columns {
        if !order.iter().any(|o| o.expr == col(c)) {
            order.push(Order {
                expr: col(c),
                desc: false,
            });
        }
    }
    Ok(order)
}

/// Rows `first..first + size` of `checked`'s result, in a total order.
pub fn page(checked: &Checked, first: u64, size: u64) -> std::result::Result<Query, Diagnostic> {
    let order_by = page_order(checked)?;
    let mut q = Query::select(Select {
        items: checked
            .columns
            .iter()
            .map(|(c, _)| Item::expr(col(c), None))
            .collect(),
        from: from(ROWS),
        ..Select::default()
    });
    q.with = wrapped(checked);
    q.order_by = order_by;
    q.limit = Some(size);
    q.offset = (first > 0).then_some(first);
    Ok(q)
}

/// The number of rows `checked` returns, as one row with column `n`.
pub fn count(checked: &Checked) -> Query {
    let mut q = Query::select(Select {
        items: vec![Item::expr(count_star(), Some("n"))],
        from: from(ROWS),
        ..Select::default()
    });
    q.with = wrapped(checked);
    q
}

/// `query` with each result column cast to its ALYX type, in the same order: engines whose own
/// types differ (Spark reads unsigned Parquet columns as decimals, PostgreSQL sums integers
/// as numeric) return the same table as the local engine.
pub fn typed(query: &Query, columns: &[(String, Type)]) -> Query {
    const SOURCE: &str = "alyx_typed";
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
    q
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
