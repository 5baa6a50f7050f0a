//! Validation before anything runs: names resolve, types agree, aggregates sit where SQL allows
//! them, and the engine has the tables. Every problem comes back with its position; a query
//! that passes is returned in the form the engines run (names qualified, `*` expanded, every
//! output column named), with its result columns and their types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use alyx_core::ast::Engine;
use alyx_core::ast::*;
use alyx_store::{Table, tables};

/// Tables and their typed columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: BTreeMap<String, Vec<(String, Type)>>,
}

/// The event catalogue's columns in PostgreSQL, under the store's names.
pub const CATALOGUE_COLUMNS: [&str; 16] = [
    "event_id",
    "run",
    "event_number",
    "timestamp_ns",
    "system",
    "sqrt_s_gev",
    "vx",
    "vy",
    "vz",
    "trigger",
    "n_tracks",
    "n_hits",
    "n_muons",
    "n_electrons",
    "n_jets",
    "flags",
];

impl Schema {
    /// Every table of the columnar store, typed from the store's own frames (so the two never
    /// disagree). Columns of types queries cannot use (lists) are left out.
    pub fn store() -> Schema {
        let mut tables_out = BTreeMap::new();
        if let Ok(frames) = tables::events_to_frames(&[], 0) {
            for (table, df) in frames {
                let cols = df
                    .schema()
                    .iter()
                    .filter_map(|(name, dtype)| Some((name.to_string(), type_of(dtype)?)))
                    .collect();
                tables_out.insert(table.name().to_owned(), cols);
            }
        }
        Schema { tables: tables_out }
    }

    /// What `engine` can read: the whole store, or (PostgreSQL) the event catalogue.
    pub fn for_engine(engine: Engine) -> Schema {
        let mut s = Schema::store();
        if engine == Engine::Postgres {
            s.tables.retain(|t, _| t == Table::Events.name());
            if let Some(cols) = s.tables.get_mut(Table::Events.name()) {
                cols.retain(|(c, _)| CATALOGUE_COLUMNS.contains(&c.as_str()));
                // The Parquet chunk an event is stored in (what a catalogue filter selects).
                cols.push(("chunk_id".into(), Type::Int));
            }
        }
        s
    }

    pub fn columns(&self, table: &str) -> Option<&[(String, Type)]> {
        self.tables.get(table).map(Vec::as_slice)
    }
}

/// The ALYX type of a polars column type (None: not queryable).
pub fn type_of(dtype: &polars::prelude::DataType) -> Option<Type> {
    use polars::prelude::DataType as D;
    Some(match dtype {
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            Type::Int
        }
        D::Float32 | D::Float64 => Type::Float,
        D::Boolean => Type::Bool,
        D::String => Type::Text,
        _ => return None,
    })
}

/// A query that passed validation for one engine: the only thing an engine runs.
///
/// Opaque: only [`check`] makes one from a query, and `plan` builds histogram, page and count
/// queries around one (for the same engine); nothing can change it afterwards. Its query has
/// names qualified, `*` expanded and outputs named; `columns` are the result's names and types.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    query: Query,
    columns: Vec<(String, Type)>,
    engine: Engine,
}

impl Checked {
    /// A query `plan` built around a checked query for `engine`, with result `columns`.
    pub(crate) fn planned(query: Query, columns: Vec<(String, Type)>, engine: Engine) -> Self {
        Self {
            query,
            columns,
            engine,
        }
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The result's column names and types, in order.
    pub fn columns(&self) -> &[(String, Type)] {
        &self.columns
    }

    /// The engine the query was checked for.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The SQL its engine runs (ALYX's physics functions expanded, the engine's quoting).
    pub fn engine_sql(&self) -> String {
        super::print::to_sql(&self.query, super::print::Dialect::of(self.engine))
    }

    /// The same query in ALYX's own dialect (what users read).
    pub fn alyx_sql(&self) -> String {
        super::print::to_sql(&self.query, super::print::Dialect::Alyx)
    }

    /// The same query checked for `engine` instead (a job's analysis checked for the local
    /// engine that a cluster runs on Spark).
    pub fn recheck(&self, engine: Engine) -> Result<Checked, Vec<Diagnostic>> {
        if engine == self.engine {
            return Ok(self.clone());
        }
        check(&self.query, engine)
    }
}

/// Validates `query` for `engine`.
pub fn check(query: &Query, engine: Engine) -> Result<Checked, Vec<Diagnostic>> {
    let schema = Schema::for_engine(engine);
    let mut cx = Cx {
        schema: &schema,
        store: Schema::store(),
        engine,
        errors: Vec::new(),
    };
    let checked = cx.query(query, &[]);
    match (checked, cx.errors.is_empty()) {
        (Some((query, columns)), true) => Ok(Checked {
            query,
            columns,
            engine,
        }),
        _ if cx.errors.is_empty() => Err(vec![Diagnostic::new("the query is invalid", At::NONE)]),
        _ => Err(cx.errors),
    }
}

type Cols = Vec<(String, Type)>;

struct Cx<'a> {
    schema: &'a Schema,
    store: Schema,
    engine: Engine,
    errors: Vec<Diagnostic>,
}

/// A relation in a SELECT's FROM: its qualifier and columns.
struct Rel {
    qualifier: String,
    columns: Cols,
}

/// Where an expression stands, for the aggregate rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// WHERE, ON, GROUP BY: no aggregates.
    Row,
    /// SELECT items, HAVING, ORDER BY: aggregates allowed.
    Output,
    /// Inside an aggregate: no nesting.
    InAggregate,
}

struct Scope<'s> {
    rels: &'s [Rel],
    /// Output columns ORDER BY may name.
    outputs: Option<&'s Cols>,
}

impl Cx<'_> {
    fn err(&mut self, message: impl Into<String>, at: At) {
        self.errors.push(Diagnostic::new(message, at));
    }

    fn query(&mut self, q: &Query, outer: &[(String, Cols)]) -> Option<(Query, Cols)> {
        let mut ctes: Vec<(String, Cols)> = outer.to_vec();
        let mut with = Vec::new();
        for cte in &q.with {
            if with.iter().any(|c: &Cte| c.name == cte.name) {
                self.err(format!("WITH names `{}` twice", cte.name), At::NONE);
                continue;
            }
            if let Some((query, cols)) = self.query(&cte.query, &ctes) {
                ctes.retain(|(n, _)| n != &cte.name);
                ctes.push((cte.name.clone(), cols));
                with.push(Cte {
                    name: cte.name.clone(),
                    query,
                });
            }
        }
        let mut body = Vec::new();
        let mut columns: Option<Cols> = None;
        let mut scopes = Vec::new();
        for (i, s) in q.body.iter().enumerate() {
            let Some((sel, cols, rels)) = self.select(s, &ctes) else {
                continue;
            };
            match &mut columns {
                None => columns = Some(cols),
                Some(first) => {
                    if first.len() != cols.len() {
                        self.err(
                            format!(
                                "UNION ALL part {} has {} columns, the first has {}",
                                i + 1,
                                cols.len(),
                                first.len()
                            ),
                            At::NONE,
                        );
                    } else {
                        for (a, b) in first.iter_mut().zip(&cols) {
                            match unify(Some(a.1), Some(b.1)) {
                                Ok(Some(t)) => a.1 = t,
                                Ok(None) => {}
                                Err(()) => self.err(
                                    format!(
                                        "UNION ALL column `{}` is {} in one part and {} in another",
                                        a.0,
                                        a.1.name(),
                                        b.1.name()
                                    ),
                                    At::NONE,
                                ),
                            }
                        }
                    }
                }
            }
            body.push(sel);
            scopes.push(rels);
        }
        let columns = columns?;
        let mut order_by = Vec::new();
        for o in &q.order_by {
            // An output column by name, or (one SELECT) any expression over its tables.
            if let Expr::Column {
                table: None, name, ..
            } = &o.expr
            {
                if columns.iter().any(|(c, _)| c == name) {
                    order_by.push(o.clone());
                    continue;
                }
            }
            if q.body.len() > 1 {
                self.err(
                    "order a UNION ALL by the names of its output columns",
                    o.expr.at(),
                );
                continue;
            }
            let Some(rels) = scopes.first() else { continue };
            let scope = Scope {
                rels,
                outputs: Some(&columns),
            };
            let mut expr = o.expr.clone();
            self.expr(&mut expr, &scope, Place::Output);
            order_by.push(Order { expr, desc: o.desc });
        }
        Some((
            Query {
                with,
                body,
                order_by,
                limit: q.limit,
                offset: q.offset,
            },
            columns,
        ))
    }

    fn relation(&mut self, t: &TableRef, ctes: &[(String, Cols)]) -> Option<Rel> {
        let columns = if let Some((_, cols)) = ctes.iter().rev().find(|(n, _)| n == &t.name) {
            cols.clone()
        } else if let Some(cols) = self.schema.columns(&t.name) {
            cols.to_vec()
        } else if self.store.columns(&t.name).is_some() {
            self.err(
                format!(
                    "table `{}` is not available on the {} engine (the PostgreSQL catalogue holds `events` only); use the local or Spark engine",
                    t.name,
                    self.engine.name()
                ),
                t.at,
            );
            return None;
        } else {
            let known: Vec<&str> = self
                .schema
                .tables
                .keys()
                .map(String::as_str)
                .chain(ctes.iter().map(|(n, _)| n.as_str()))
                .collect();
            self.err(
                format!("unknown table `{}`{}", t.name, suggest(&t.name, &known)),
                t.at,
            );
            return None;
        };
        Some(Rel {
            qualifier: t.qualifier().to_owned(),
            columns,
        })
    }

    fn select(&mut self, s: &Select, ctes: &[(String, Cols)]) -> Option<(Select, Cols, Vec<Rel>)> {
        let before = self.errors.len();
        let mut rels: Vec<Rel> = Vec::new();
        let mut from = None;
        if let Some(f) = &s.from {
            let mut ok = true;
            match self.relation(&f.table, ctes) {
                Some(r) => rels.push(r),
                None => ok = false,
            }
            let mut joins = Vec::new();
            for j in &f.joins {
                match self.relation(&j.table, ctes) {
                    Some(r) => {
                        if rels.iter().any(|x| x.qualifier == r.qualifier) {
                            self.err(
                                format!(
                                    "`{}` appears twice in FROM: give one an alias (JOIN {} AS b)",
                                    r.qualifier, j.table.name
                                ),
                                j.table.at,
                            );
                            ok = false;
                        }
                        rels.push(r);
                    }
                    None => ok = false,
                }
                let mut on = j.on.clone();
                if ok {
                    let scope = Scope {
                        rels: &rels,
                        outputs: None,
                    };
                    let t = self.expr(&mut on, &scope, Place::Row);
                    self.want_bool(t, &on, "a join condition");
                }
                joins.push(Join {
                    kind: j.kind,
                    table: j.table.clone(),
                    on,
                });
            }
            if !ok {
                return None;
            }
            from = Some(From {
                table: f.table.clone(),
                joins,
            });
        }
        let scope = Scope {
            rels: &rels,
            outputs: None,
        };
        let filter = s.filter.clone().map(|mut f| {
            let t = self.expr(&mut f, &scope, Place::Row);
            self.want_bool(t, &f, "WHERE");
            f
        });
        let mut group_by = s.group_by.clone();
        for g in &mut group_by {
            self.expr(g, &scope, Place::Row);
        }
        let mut items = Vec::new();
        let mut columns: Cols = Vec::new();
        for (i, item) in s.items.iter().enumerate() {
            match item {
                Item::Wildcard { table } => {
                    let chosen: Vec<&Rel> = match table {
                        None => rels.iter().collect(),
                        Some(t) => rels.iter().filter(|r| &r.qualifier == t).collect(),
                    };
                    if chosen.is_empty() {
                        self.err(
                            match table {
                                None => "`*` needs a FROM table".to_owned(),
                                Some(t) => format!("`{t}.*`: no table `{t}` in FROM"),
                            },
                            At::NONE,
                        );
                    }
                    for r in chosen {
                        for (c, t) in &r.columns {
                            items.push(Item::Expr {
                                expr: Expr::Column {
                                    table: Some(r.qualifier.clone()),
                                    name: c.clone(),
                                    at: At::NONE,
                                },
                                alias: Some(c.clone()),
                            });
                            columns.push((c.clone(), *t));
                        }
                    }
                }
                Item::Expr { expr, alias } => {
                    let mut e = expr.clone();
                    let t = self.expr(&mut e, &scope, Place::Output);
                    let name = alias.clone().unwrap_or_else(|| output_name(expr, i));
                    // A bare NULL has no type of its own; call it text.
                    columns.push((name.clone(), t.unwrap_or(Type::Text)));
                    items.push(Item::Expr {
                        expr: e,
                        alias: Some(name),
                    });
                }
            }
        }
        let having = s.having.clone().map(|mut h| {
            let t = self.expr(&mut h, &scope, Place::Output);
            self.want_bool(t, &h, "HAVING");
            h
        });
        for (i, (name, _)) in columns.iter().enumerate() {
            if columns[..i].iter().any(|(n, _)| n == name) {
                let at = match s.items.get(i) {
                    Some(Item::Expr { expr, .. }) => expr.at(),
                    _ => At::NONE,
                };
                self.err(
                    format!("two output columns are named `{name}`: name one with AS"),
                    at,
                );
                break;
            }
        }
        let grouped = !group_by.is_empty()
            || items
                .iter()
                .any(|i| matches!(i, Item::Expr { expr, .. } if expr.has_aggregate()))
            || having.as_ref().is_some_and(Expr::has_aggregate);
        if grouped {
            for item in &items {
                if let Item::Expr { expr, .. } = item {
                    self.grouped(expr, &group_by);
                }
            }
            if let Some(h) = &having {
                self.grouped(h, &group_by);
            }
        } else if having.is_some() {
            self.err("HAVING needs GROUP BY or an aggregate", At::NONE);
        }
        if self.errors.len() > before {
            return None;
        }
        Some((
            Select {
                distinct: s.distinct,
                items,
                from,
                filter,
                group_by,
                having,
            },
            columns,
            rels,
        ))
    }

    /// In a grouped SELECT, column references outside aggregates must be grouped.
    fn grouped(&mut self, e: &Expr, group_by: &[Expr]) {
        if group_by.contains(e) {
            return;
        }
        match e {
            Expr::Agg { .. } => {}
            Expr::Column { table, name, at } => {
                let full = match table {
                    Some(t) => format!("{t}.{name}"),
                    None => name.clone(),
                };
                self.err(
                    format!("`{full}` must appear in GROUP BY or be inside an aggregate"),
                    *at,
                );
            }
            other => {
                let mut children = Vec::new();
                direct_children(other, &mut children);
                for c in children {
                    self.grouped(c, group_by);
                }
            }
        }
    }

    fn want_bool(&mut self, t: Option<Type>, e: &Expr, what: &str) {
        if let Some(t) = t {
            if t != Type::Bool {
                self.err(
                    format!("{what} must be a condition, not {}", t.name()),
                    e.at(),
                );
            }
        }
    }

    fn resolve(
        &mut self,
        table: &mut Option<String>,
        name: &str,
        at: At,
        scope: &Scope,
    ) -> Option<Type> {
        match table {
            Some(q) => {
                let Some(rel) = scope.rels.iter().find(|r| &r.qualifier == q) else {
                    let known: Vec<&str> =
                        scope.rels.iter().map(|r| r.qualifier.as_str()).collect();
                    self.err(format!("no table `{q}` in FROM{}", suggest(q, &known)), at);
                    return None;
                };
                match rel.columns.iter().find(|(c, _)| c == name) {
                    Some((_, t)) => Some(*t),
                    None => {
                        let known: Vec<&str> =
                            rel.columns.iter().map(|(c, _)| c.as_str()).collect();
                        self.err(
                            format!("`{q}` has no column `{name}`{}", suggest(name, &known)),
                            at,
                        );
                        None
                    }
                }
            }
            None => {
                let found: Vec<(&Rel, Type)> = scope
                    .rels
                    .iter()
                    .filter_map(|r| {
                        r.columns
                            .iter()
                            .find(|(c, _)| c == name)
                            .map(|(_, t)| (r, *t))
                    })
                    .collect();
                match found.as_slice() {
                    [(rel, t)] => {
                        *table = Some(rel.qualifier.clone());
                        Some(*t)
                    }
                    [] => {
                        if let Some((_, t)) = scope
                            .outputs
                            .and_then(|o| o.iter().find(|(c, _)| c == name))
                        {
                            return Some(*t);
                        }
                        let known: Vec<&str> = scope
                            .rels
                            .iter()
                            .flat_map(|r| r.columns.iter().map(|(c, _)| c.as_str()))
                            .collect();
                        let tables: Vec<&str> =
                            scope.rels.iter().map(|r| r.qualifier.as_str()).collect();
                        self.err(
                            if tables.is_empty() {
                                format!("unknown column `{name}`: the query has no FROM table")
                            } else {
                                format!(
                                    "unknown column `{name}` in {}{}",
                                    tables.join(", "),
                                    suggest(name, &known)
                                )
                            },
                            at,
                        );
                        None
                    }
                    _ => {
                        let which: Vec<String> = found
                            .iter()
                            .map(|(r, _)| format!("{}.{name}", r.qualifier))
                            .collect();
                        self.err(
                            format!("`{name}` is ambiguous: write {}", which.join(" or ")),
                            at,
                        );
                        None
                    }
                }
            }
        }
    }

    /// Types `e` (qualifying its columns in place); None for NULL or after an error.
    fn expr(&mut self, e: &mut Expr, scope: &Scope, place: Place) -> Option<Type> {
        let at = e.at();
        match e {
            Expr::Column { table, name, at } => {
                let (name, at) = (name.clone(), *at);
                self.resolve(table, &name, at, scope)
            }
            Expr::Int(_) => Some(Type::Int),
            Expr::Float(v) => {
                if !v.is_finite() {
                    self.err("numbers must be finite", at);
                }
                Some(Type::Float)
            }
            Expr::Text(_) => Some(Type::Text),
            Expr::Bool(_) => Some(Type::Bool),
            Expr::Null => None,
            Expr::Neg(x) => {
                let t = self.expr(x, scope, place);
                self.want(t, Type::is_numeric, "unary minus needs a number", at);
                t
            }
            Expr::Not(x) => {
                let t = self.expr(x, scope, place);
                self.want(t, |t| t == Type::Bool, "NOT needs a condition", at);
                Some(Type::Bool)
            }
            Expr::Binary { op, left, right } => {
                let op = *op;
                let l = self.expr(left, scope, place);
                let r = self.expr(right, scope, place);
                if op.is_logical() {
                    for t in [l, r] {
                        self.want(
                            t,
                            |t| t == Type::Bool,
                            &format!("{} joins conditions", op.symbol()),
                            at,
                        );
                    }
                    Some(Type::Bool)
                } else if op.is_comparison() {
                    if unify(l, r).is_err() {
                        self.err(
                            format!(
                                "cannot compare {} with {}",
                                l.map_or("null", Type::name),
                                r.map_or("null", Type::name)
                            ),
                            at,
                        );
                    }
                    Some(Type::Bool)
                } else {
                    for t in [l, r] {
                        self.want(
                            t,
                            Type::is_numeric,
                            &format!("`{}` needs numbers", op.symbol()),
                            at,
                        );
                    }
                    if op == BinOp::Mod {
                        for t in [l, r] {
                            self.want(t, |t| t == Type::Int, "`%` needs integers", at);
                        }
                        return Some(Type::Int);
                    }
                    match (l, r, op) {
                        (_, _, BinOp::Div) => Some(Type::Float),
                        (Some(Type::Int), Some(Type::Int), _) => Some(Type::Int),
                        _ => Some(Type::Float),
                    }
                }
            }
            Expr::Call { func, args, at } => {
                let (func, at) = (func.clone(), *at);
                let types: Vec<Option<Type>> = args
                    .iter_mut()
                    .map(|a| self.expr(a, scope, place))
                    .collect();
                self.call(&func, &types, at)
            }
            Expr::Agg { func, arg, at, .. } => {
                let (func, at) = (*func, *at);
                if place != Place::Output {
                    self.err(
                        match place {
                            Place::InAggregate => format!("{} inside another aggregate", func.name()),
                            _ => format!(
                                "{} is not allowed here (WHERE, ON and GROUP BY see single rows; use HAVING)",
                                func.name()
                            ),
                        },
                        at,
                    );
                }
                let t = match arg {
                    Some(a) => self.expr(a, scope, Place::InAggregate),
                    None => None,
                };
                match func {
                    Agg::Count => Some(Type::Int),
                    Agg::Min | Agg::Max => t,
                    Agg::Sum => {
                        self.want(t, Type::is_numeric, "SUM needs numbers", at);
                        t
                    }
                    Agg::Avg | Agg::Stddev => {
                        self.want(
                            t,
                            Type::is_numeric,
                            &format!("{} needs numbers", func.name()),
                            at,
                        );
                        Some(Type::Float)
                    }
                }
            }
            Expr::Between { expr, lo, hi, .. } => {
                let ts = [
                    self.expr(expr, scope, place),
                    self.expr(lo, scope, place),
                    self.expr(hi, scope, place),
                ];
                if unify(unify(ts[0], ts[1]).unwrap_or(None), ts[2]).is_err()
                    || unify(ts[0], ts[1]).is_err()
                {
                    self.err("BETWEEN needs values of one type", at);
                }
                Some(Type::Bool)
            }
            Expr::InList { expr, list, .. } => {
                let mut t = self.expr(expr, scope, place);
                for x in list.iter_mut() {
                    let u = self.expr(x, scope, place);
                    match unify(t, u) {
                        Ok(v) => t = v.or(t),
                        Err(()) => self.err("IN needs values of one type", x.at()),
                    }
                }
                Some(Type::Bool)
            }
            Expr::IsNull { expr, .. } => {
                self.expr(expr, scope, place);
                Some(Type::Bool)
            }
            Expr::Case { whens, otherwise } => {
                let mut t = None;
                for (c, v) in whens.iter_mut() {
                    let ct = self.expr(c, scope, place);
                    self.want_bool(ct, c, "CASE WHEN");
                    let vt = self.expr(v, scope, place);
                    match unify(t, vt) {
                        Ok(u) => t = u.or(t),
                        Err(()) => self.err("CASE branches give different types", v.at()),
                    }
                }
                if let Some(o) = otherwise {
                    let ot = self.expr(o, scope, place);
                    match unify(t, ot) {
                        Ok(u) => t = u.or(t),
                        Err(()) => self.err("CASE branches give different types", o.at()),
                    }
                }
                t
            }
            Expr::Cast { expr, to } => {
                let to = *to;
                self.expr(expr, scope, place);
                Some(to)
            }
        }
    }

    fn want(&mut self, t: Option<Type>, ok: impl Fn(Type) -> bool, message: &str, at: At) {
        if let Some(t) = t {
            if !ok(t) {
                self.err(format!("{message}, not {}", t.name()), at);
            }
        }
    }

    fn call(&mut self, func: &str, args: &[Option<Type>], at: At) -> Option<Type> {
        let Some(sig) = FUNCTIONS.iter().find(|f| f.name == func) else {
            let known: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            self.err(
                format!("unknown function {func}{}", suggest(func, &known)),
                at,
            );
            return None;
        };
        let n = args.len();
        let arity_ok = match sig.arity {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
            Arity::Objects => n >= 8 && n % 4 == 0,
        };
        if !arity_ok {
            self.err(
                format!(
                    "{func} takes {}",
                    match sig.arity {
                        Arity::Exactly(1) => "one argument".to_owned(),
                        Arity::Exactly(k) => format!("{k} arguments"),
                        Arity::AtLeast(k) => format!("at least {k} arguments"),
                        Arity::Objects =>
                            "two or more objects as pt, eta, phi, mass (8, 12, … arguments)"
                                .to_owned(),
                    }
                ),
                at,
            );
            return None;
        }
        match sig.result {
            Result_::Float | Result_::SameNumeric => {
                for t in args {
                    self.want(*t, Type::is_numeric, &format!("{func} needs numbers"), at);
                }
                if sig.result == Result_::Float {
                    return Some(Type::Float);
                }
                args.iter()
                    .copied()
                    .try_fold(None, unify)
                    .unwrap_or(Some(Type::Float))
            }
            Result_::Common => match args.iter().copied().try_fold(None, unify) {
                Ok(t) => t,
                Err(()) => {
                    self.err(format!("{func} needs arguments of one type"), at);
                    None
                }
            },
        }
    }
}

fn direct_children<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Column { .. }
        | Expr::Int(_)
        | Expr::Float(_)
        | Expr::Text(_)
        | Expr::Bool(_)
        | Expr::Null
        | Expr::Agg { .. } => {}
        Expr::Neg(x) | Expr::Not(x) | Expr::IsNull { expr: x, .. } | Expr::Cast { expr: x, .. } => {
            out.push(x)
        }
        Expr::Binary { left, right, .. } => out.extend([left.as_ref(), right.as_ref()]),
        Expr::Call { args, .. } => out.extend(args.iter()),
        Expr::Between { expr, lo, hi, .. } => out.extend([expr.as_ref(), lo.as_ref(), hi.as_ref()]),
        Expr::InList { expr, list, .. } => {
            out.push(expr);
            out.extend(list.iter());
        }
        Expr::Case { whens, otherwise } => {
            for (c, v) in whens {
                out.extend([c, v]);
            }
            out.extend(otherwise.as_deref());
        }
    }
}

/// The common type of two values (None: NULL); an error when they cannot meet.
fn unify(a: Option<Type>, b: Option<Type>) -> Result<Option<Type>, ()> {
    match (a, b) {
        (None, x) | (x, None) => Ok(x),
        (Some(x), Some(y)) if x == y => Ok(Some(x)),
        (Some(x), Some(y)) if x.is_numeric() && y.is_numeric() => Ok(Some(Type::Float)),
        _ => Err(()),
    }
}

/// The name an unaliased output column gets: its column name, or its function's.
fn output_name(e: &Expr, i: usize) -> String {
    match e {
        Expr::Column { name, .. } => name.clone(),
        Expr::Call { func, .. } => func.to_ascii_lowercase(),
        Expr::Agg {
            func, arg: None, ..
        } => func.name().to_ascii_lowercase(),
        Expr::Agg {
            func, arg: Some(a), ..
        } => match a.as_ref() {
            Expr::Column { name, .. } => format!("{}_{name}", func.name().to_ascii_lowercase()),
            _ => func.name().to_ascii_lowercase(),
        },
        _ => format!("col{}", i + 1),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
    /// pt, eta, phi, mass of two or more objects.
    Objects,
}

#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
enum Result_ {
    Float,
    /// The arguments' numeric type (ABS, FLOOR, GREATEST).
    SameNumeric,
    /// The arguments' common type (COALESCE).
    Common,
}

struct Function {
    name: &'static str,
    arity: Arity,
    result: Result_,
    pub help: &'static str,
}

const fn f(name: &'static str, arity: Arity, result: Result_, help: &'static str) -> Function {
    Function {
        name,
        arity,
        result,
        help,
    }
}

/// Every scalar function ALYX queries may call, on every engine.
const FUNCTIONS: &[Function] = &[
    f(
        "ABS",
        Arity::Exactly(1),
        Result_::SameNumeric,
        "absolute value",
    ),
    f("SQRT", Arity::Exactly(1), Result_::Float, "square root"),
    f("EXP", Arity::Exactly(1), Result_::Float, "e to the power x"),
    f("LN", Arity::Exactly(1), Result_::Float, "natural logarithm"),
    f(
        "LOG10",
        Arity::Exactly(1),
        Result_::Float,
        "base-10 logarithm",
    ),
    f(
        "POWER",
        Arity::Exactly(2),
        Result_::Float,
        "x to the power y",
    ),
    f("SIN", Arity::Exactly(1), Result_::Float, "sine"),
    f("COS", Arity::Exactly(1), Result_::Float, "cosine"),
    f("TAN", Arity::Exactly(1), Result_::Float, "tangent"),
    f("ASIN", Arity::Exactly(1), Result_::Float, "arcsine"),
    f("ACOS", Arity::Exactly(1), Result_::Float, "arccosine"),
    f("ATAN", Arity::Exactly(1), Result_::Float, "arctangent"),
    f(
        "ATAN2",
        Arity::Exactly(2),
        Result_::Float,
        "arctangent of y/x in the right quadrant",
    ),
    f("SINH", Arity::Exactly(1), Result_::Float, "hyperbolic sine"),
    f(
        "COSH",
        Arity::Exactly(1),
        Result_::Float,
        "hyperbolic cosine",
    ),
    f(
        "TANH",
        Arity::Exactly(1),
        Result_::Float,
        "hyperbolic tangent",
    ),
    f(
        "FLOOR",
        Arity::Exactly(1),
        Result_::SameNumeric,
        "largest whole number ≤ x",
    ),
    f(
        "CEIL",
        Arity::Exactly(1),
        Result_::SameNumeric,
        "smallest whole number ≥ x",
    ),
    f(
        "ROUND",
        Arity::Exactly(1),
        Result_::SameNumeric,
        "nearest whole number",
    ),
    f(
        "GREATEST",
        Arity::AtLeast(2),
        Result_::SameNumeric,
        "largest argument",
    ),
    f(
        "LEAST",
        Arity::AtLeast(2),
        Result_::SameNumeric,
        "smallest argument",
    ),
    f(
        "COALESCE",
        Arity::AtLeast(1),
        Result_::Common,
        "first argument that is not null",
    ),
    f(
        "DELTA_PHI",
        Arity::Exactly(2),
        Result_::Float,
        "φ1 − φ2 wrapped into [−π, π)",
    ),
    f(
        "DELTA_R",
        Arity::Exactly(4),
        Result_::Float,
        "ΔR of (η1, φ1) and (η2, φ2)",
    ),
    f(
        "MT",
        Arity::Exactly(4),
        Result_::Float,
        "transverse mass of (pT1, φ1) and (pT2, φ2)",
    ),
    f(
        "INV_MASS",
        Arity::Objects,
        Result_::Float,
        "invariant mass of objects given as pt, eta, phi, mass",
    ),
    f(
        "SUM_PT",
        Arity::Objects,
        Result_::Float,
        "pT of the sum of objects given as pt, eta, phi, mass",
    ),
];

/// Names and one-line help of the functions queries may call (for the builder and `--help`).
pub fn functions() -> impl Iterator<Item = (&'static str, &'static str)> {
    FUNCTIONS.iter().map(|f| (f.name, f.help))
}

/// " (did you mean `x`?)" when a known name is close to `name`.
fn suggest(name: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| {
            (
                edit_distance(&name.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .min();
    match best {
        Some((d, k)) if d <= 2.max(name.len() / 3) => format!(" (did you mean `{k}`?)"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
