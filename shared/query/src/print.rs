//! Queries as SQL text, in ALYX's own dialect (what the builder previews and `parse` reads back)
//! and lowered for each engine: polars, PostgreSQL and Spark SQL.
//!
//! Lowering is where "the same query means the same thing on every engine" is made true:
//! physics and hyperbolic functions become the same arithmetic everywhere, `/` always divides
//! as floating point, and types and quoting follow the engine.

use std::fmt::Write;

use alyx_core::ast::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// ALYX's SQL: physics functions kept as they were written.
    Alyx,
    Polars,
    Postgres,
    Spark,
}

impl Dialect {
    /// What `engine` runs.
    pub fn of(engine: alyx_core::ast::Engine) -> Self {
        use alyx_core::ast::Engine;
        match engine {
            Engine::Local => Dialect::Polars,
            Engine::Postgres => Dialect::Postgres,
            Engine::Spark => Dialect::Spark,
        }
    }

    fn lowers(self) -> bool {
        self != Dialect::Alyx
    }

    fn quote(self) -> char {
        if self == Dialect::Spark { '`' } else { '"' }
    }

    fn type_name(self, t: Type) -> &'static str {
        match (self, t) {
            (_, Type::Int) => "BIGINT",
            (Dialect::Spark, Type::Float) => "DOUBLE",
            (_, Type::Float) => "DOUBLE PRECISION",
            (_, Type::Bool) => "BOOLEAN",
            (Dialect::Spark, Type::Text) => "STRING",
            (_, Type::Text) => "TEXT",
        }
    }
}

/// `query` as SQL text in `dialect`.
pub fn to_sql(query: &Query, dialect: Dialect) -> String {
    let mut p = Printer {
        d: dialect,
        out: String::new(),
    };
    p.query(query, &[]);
    p.out
}

/// Like [`to_sql`], with `prefix` (name, SQL text) common table expressions put before the
/// query's own: the engines use it to stand a view in for a table.
pub fn to_sql_with(query: &Query, dialect: Dialect, prefix: &[(String, String)]) -> String {
    let mut p = Printer {
        d: dialect,
        out: String::new(),
    };
    p.query(query, prefix);
    p.out
}

/// An expression alone, in `dialect` (the builder shows conditions this way).
pub fn expr_to_sql(expr: &Expr, dialect: Dialect) -> String {
    let mut p = Printer {
        d: dialect,
        out: String::new(),
    };
    p.expr(expr);
    p.out
}

/// Whether `name` can be written without quotes: lower case, not a keyword.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !is_keyword(name)
}

fn is_keyword(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    sqlparser::keywords::ALL_KEYWORDS
        .binary_search(&upper.as_str())
        .is_ok()
}

struct Printer {
    d: Dialect,
    out: String,
}

impl Printer {
    fn w(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn ident(&mut self, name: &str) {
        if is_plain_identifier(name) {
            self.w(name);
        } else {
            let q = self.d.quote();
            let escaped = name.replace(q, &format!("{q}{q}"));
            let _ = write!(self.out, "{q}{escaped}{q}");
        }
    }

    fn query(&mut self, q: &Query, prefix: &[(String, String)]) {
        if !q.with.is_empty() || !prefix.is_empty() {
            self.w("WITH ");
            let mut first = true;
            for (name, sql) in prefix {
                if !first {
                    self.w(", ");
                }
                first = false;
                self.ident(name);
                self.w(" AS (");
                self.w(sql);
                self.w(")");
            }
            for cte in &q.with {
                if !first {
                    self.w(", ");
                }
                first = false;
                self.ident(&cte.name);
                self.w(" AS (");
                self.query(&cte.query, &[]);
                self.w(")");
            }
            self.w(" ");
        }
        for (i, s) in q.body.iter().enumerate() {
            if i > 0 {
                self.w(" UNION ALL ");
            }
            self.select(s);
        }
        if !q.order_by.is_empty() {
            self.w(" ORDER BY ");
            for (i, o) in q.order_by.iter().enumerate() {
                if i > 0 {
                    self.w(", ");
                }
                self.expr(&o.expr);
                self.w(if o.desc { " DESC" } else { " ASC" });
                // Engines disagree on where nulls go; say it.
                if self.d.lowers() {
                    self.w(if o.desc {
                        " NULLS FIRST"
                    } else {
                        " NULLS LAST"
                    });
                }
            }
        }
        if let Some(n) = q.limit {
            let _ = write!(self.out, " LIMIT {n}");
        }
        if let Some(n) = q.offset {
            let _ = write!(self.out, " OFFSET {n}");
        }
    }

    fn select(&mut self, s: &Select) {
        self.w("SELECT ");
        if s.distinct {
            self.w("DISTINCT ");
        }
        for (i, item) in s.items.iter().enumerate() {
            if i > 0 {
                self.w(", ");
            }
            match item {
                Item::Wildcard { table: None } => self.w("*"),
                Item::Wildcard { table: Some(t) } => {
                    self.ident(t);
                    self.w(".*");
                }
                Item::Expr { expr, alias } => {
                    self.expr(expr);
                    if let Some(a) = alias {
                        self.w(" AS ");
                        self.ident(a);
                    }
                }
            }
        }
        if let Some(from) = &s.from {
            self.w(" FROM ");
            self.table(&from.table);
            for j in &from.joins {
                self.w(match j.kind {
                    JoinKind::Inner => " JOIN ",
                    JoinKind::Left => " LEFT JOIN ",
                });
                self.table(&j.table);
                self.w(" ON ");
                self.expr(&j.on);
            }
        }
        if let Some(f) = &s.filter {
            self.w(" WHERE ");
            self.expr(f);
        }
        if !s.group_by.is_empty() {
            self.w(" GROUP BY ");
            for (i, g) in s.group_by.iter().enumerate() {
                if i > 0 {
                    self.w(", ");
                }
                self.expr(g);
            }
        }
        if let Some(h) = &s.having {
            self.w(" HAVING ");
            self.expr(h);
        }
    }

    fn table(&mut self, t: &TableRef) {
        self.ident(&t.name);
        if let Some(a) = &t.alias {
            self.w(" AS ");
            self.ident(a);
        }
    }

    fn list(&mut self, args: &[Expr]) {
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.w(", ");
            }
            self.expr(a);
        }
    }

    /// An operand of a binary operator with precedence `parent`: in parentheses unless it binds
    /// tighter (`right` operands also when equally tight, keeping the tree's shape).
    fn operand(&mut self, e: &Expr, parent: u8, right: bool) {
        let own = match e {
            Expr::Binary { op, .. } => Some(op.precedence()),
            Expr::Not(_) => Some(3),
            Expr::Between { .. } | Expr::InList { .. } | Expr::IsNull { .. } => Some(4),
            _ => None,
        };
        let wrap = match own {
            Some(p) => p < parent || (p == parent && (right || parent == 4)),
            None => false,
        };
        if wrap {
            self.w("(");
            self.expr(e);
            self.w(")");
        } else {
            self.expr(e);
        }
    }

    /// An operand of `BETWEEN`, `IN`, `IS NULL`, `NOT` or unary minus: in parentheses unless
    /// it is atomic.
    fn atom(&mut self, e: &Expr) {
        let atomic = match e {
            Expr::Column { .. }
            | Expr::Call { .. }
            | Expr::Agg { .. }
            | Expr::Case { .. }
            | Expr::Cast { .. }
            | Expr::Text(_)
            | Expr::Bool(_)
            | Expr::Null => true,
            Expr::Int(v) => *v >= 0,
            Expr::Float(v) => *v >= 0.0 && !v.is_sign_negative(),
            _ => false,
        };
        if atomic {
            self.expr(e);
        } else {
            self.w("(");
            self.expr(e);
            self.w(")");
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Column { table, name, .. } => {
                if let Some(t) = table {
                    self.ident(t);
                    self.w(".");
                }
                self.ident(name);
            }
            Expr::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Expr::Float(v) => self.float(*v),
            Expr::Text(s) => {
                let mut escaped = s.replace('\'', "''");
                if self.d == Dialect::Spark {
                    escaped = escaped.replace('\\', "\\\\");
                }
                let _ = write!(self.out, "'{escaped}'");
            }
            Expr::Bool(b) => self.w(if *b { "TRUE" } else { "FALSE" }),
            Expr::Null => self.w("NULL"),
            Expr::Neg(x) => {
                // `-(5)`, not `-5`: that would read back as the literal -5.
                self.w("-");
                if matches!(x.as_ref(), Expr::Int(_) | Expr::Float(_)) {
                    self.w("(");
                    self.expr(x);
                    self.w(")");
                } else {
                    self.atom(x);
                }
            }
            Expr::Not(x) => {
                self.w("NOT ");
                self.atom(x);
            }
            Expr::Binary { op, left, right } => {
                let p = op.precedence();
                if *op == BinOp::Div && self.d.lowers() {
                    // Division is always floating point, as in ALYX's type rules.
                    self.operand(left, p, false);
                    self.w(" / CAST(");
                    self.expr(right);
                    let _ = write!(self.out, " AS {})", self.d.type_name(Type::Float));
                    return;
                }
                self.operand(left, p, false);
                let _ = write!(self.out, " {} ", op.symbol());
                self.operand(right, p, true);
            }
            Expr::Call { func, args, .. } => {
                if self.d.lowers() && self.lower_call(func, args) {
                    return;
                }
                self.w(func);
                self.w("(");
                self.list(args);
                self.w(")");
            }
            Expr::Agg {
                func,
                arg,
                distinct,
                ..
            } => {
                self.w(func.name());
                self.w("(");
                if *distinct {
                    self.w("DISTINCT ");
                }
                match arg {
                    Some(a) => self.expr(a),
                    None => self.w("*"),
                }
                self.w(")");
            }
            Expr::Between {
                expr,
                lo,
                hi,
                negated,
            } => {
                self.atom(expr);
                self.w(if *negated {
                    " NOT BETWEEN "
                } else {
                    " BETWEEN "
                });
                self.atom(lo);
                self.w(" AND ");
                self.atom(hi);
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                self.atom(expr);
                self.w(if *negated { " NOT IN (" } else { " IN (" });
                self.list(list);
                self.w(")");
            }
            Expr::IsNull { expr, negated } => {
                self.atom(expr);
                self.w(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Expr::Case { whens, otherwise } => {
                self.w("CASE");
                for (c, v) in whens {
                    self.w(" WHEN ");
                    self.expr(c);
                    self.w(" THEN ");
                    self.expr(v);
                }
                if let Some(o) = otherwise {
                    self.w(" ELSE ");
                    self.expr(o);
                }
                self.w(" END");
            }
            Expr::Cast { expr, to } => {
                self.w("CAST(");
                self.expr(expr);
                let _ = write!(self.out, " AS {})", self.d.type_name(*to));
            }
        }
    }

    fn float(&mut self, v: f64) {
        // Spark reads `1.5` as a decimal (and decimal arithmetic rounds differently from
        // doubles); with an exponent it is a double, as everywhere else.
        if self.d == Dialect::Spark && v.is_finite() {
            let _ = write!(self.out, "{v:e}");
            return;
        }
        // Shortest text that reads back as the same double; always with a '.' or an exponent
        // so that no engine takes it for an integer.
        // The mantissa keeps its '.' too: polars reads a number without one as an integer
        // and refused `1e300` and `1e-7`.
        let s = format!("{v:?}");
        if s.contains('.') || !v.is_finite() {
            self.w(&s);
        } else if let Some((mantissa, exponent)) = s.split_once('e') {
            let _ = write!(self.out, "{mantissa}.0e{exponent}");
        } else {
            let _ = write!(self.out, "{s}.0");
        }
    }

    /// Writes the engine form of a physics or hyperbolic function; false when `func` needs none.
    fn lower_call(&mut self, func: &str, args: &[Expr]) -> bool {
        let text: Vec<String> = args
            .iter()
            .map(|a| {
                let mut p = Printer {
                    d: self.d,
                    out: String::new(),
                };
                p.expr(a);
                format!("({})", p.out)
            })
            .collect();
        let lowered = match (func, text.as_slice()) {
            ("COSH", [x]) => cosh(x),
            ("SINH", [x]) => sinh(x),
            ("TANH", [x]) => format!("({} / {})", sinh(x), cosh(x)),
            ("DELTA_PHI", [a, b]) => delta_phi(a, b),
            ("DELTA_R", [eta1, phi1, eta2, phi2]) => format!(
                "SQRT(POWER({eta1} - {eta2}, 2) + POWER({}, 2))",
                delta_phi(phi1, phi2)
            ),
            ("MT", [pt1, phi1, pt2, phi2]) => {
                format!("SQRT(GREATEST(2.0 * {pt1} * {pt2} * (1.0 - COS({phi1} - {phi2})), 0.0))")
            }
            ("INV_MASS", objs) if objs.len() >= 8 && objs.len() % 4 == 0 => {
                let sum = |f: &dyn Fn(&[String]) -> String| {
                    objs.chunks(4).map(f).collect::<Vec<_>>().join(" + ")
                };
                let e = sum(&|o| {
                    format!(
                        "SQRT(POWER({} * {}, 2) + POWER({}, 2))",
                        o[0],
                        cosh(&o[1]),
                        o[3]
                    )
                });
                let px = sum(&|o| format!("{} * COS({})", o[0], o[2]));
                let py = sum(&|o| format!("{} * SIN({})", o[0], o[2]));
                let pz = sum(&|o| format!("{} * {}", o[0], sinh(&o[1])));
                format!(
                    "SQRT(GREATEST(POWER({e}, 2) - POWER({px}, 2) - POWER({py}, 2) - POWER({pz}, 2), 0.0))"
                )
            }
            ("SUM_PT", objs) if objs.len() >= 8 && objs.len() % 4 == 0 => {
                let sum = |f: &dyn Fn(&[String]) -> String| {
                    objs.chunks(4).map(f).collect::<Vec<_>>().join(" + ")
                };
                let px = sum(&|o| format!("{} * COS({})", o[0], o[2]));
                let py = sum(&|o| format!("{} * SIN({})", o[0], o[2]));
                format!("SQRT(POWER({px}, 2) + POWER({py}, 2))")
            }
            _ => return false,
        };
        self.w(&lowered);
        true
    }
}

fn cosh(x: &str) -> String {
    format!("((EXP({x}) + EXP(-{x})) / 2.0)")
}

fn sinh(x: &str) -> String {
    format!("((EXP({x}) - EXP(-{x})) / 2.0)")
}

/// `a - b` wrapped into [-π, π). Written with exponents so that every engine (Spark too)
/// reads the constants as doubles.
fn delta_phi(a: &str, b: &str) -> String {
    const PI: f64 = std::f64::consts::PI;
    const TAU: f64 = std::f64::consts::TAU;
    format!("(({a} - {b}) - {TAU:e} * FLOOR((({a} - {b}) + {PI:e}) / {TAU:e}))")
}
