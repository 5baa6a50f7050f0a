//! The query AST: a small, typed subset of SQL that the builder edits, that prints as SQL text
//! (`print`) and that SQL typed by hand parses into (`parse`). It serialises as JSON for query
//! files and the gRPC API.
//!
//! Physics lives in functions every engine understands after lowering: `INV_MASS`, `SUM_PT`
//! (objects given as `pt, eta, phi, mass` quadruples), `DELTA_PHI`, `DELTA_R` and `MT`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A place in the query text (1-based), kept for messages. Two positions always compare equal,
/// so that a parsed query equals the query it was printed from.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct At(pub Option<(u32, u32)>);

impl PartialEq for At {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl At {
    pub const NONE: At = At(None);

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

/// `WITH … SELECT … UNION ALL SELECT … ORDER BY … LIMIT …`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<Cte>,
    /// One `SELECT`, or several joined by `UNION ALL`.
    pub body: Vec<Select>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Query {
    /// A query of one SELECT.
    pub fn select(s: Select) -> Self {
        Self {
            with: Vec::new(),
            body: vec![s],
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cte {
    pub name: String,
    pub query: Query,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Select {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distinct: bool,
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<From>,
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Expr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub having: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct From {
    pub table: TableRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<Join>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "At::is_none")]
    pub at: At,
}

impl TableRef {
    pub fn new(name: &str, alias: Option<&str>) -> Self {
        Self {
            name: name.into(),
            alias: alias.map(Into::into),
            at: At::NONE,
        }
    }

    /// The name columns are qualified with.
    pub fn qualifier(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub kind: JoinKind,
    pub table: TableRef,
    pub on: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinKind {
    Inner,
    Left,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Item {
    /// `*` or `t.*`.
    Wildcard {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
    },
    Expr {
        expr: Expr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
    },
}

impl Item {
    pub fn expr(expr: Expr, alias: Option<&str>) -> Self {
        Self::Expr {
            expr,
            alias: alias.map(Into::into),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub expr: Expr,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub desc: bool,
}

/// Column types, the same on every engine (results are cast to them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Int,
    Float,
    Bool,
    Text,
}

impl Type {
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float)
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::Int => "integer",
            Type::Float => "float",
            Type::Bool => "boolean",
            Type::Text => "text",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "OR",
            BinOp::And => "AND",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
        }
    }

    /// Binding strength, as SQL parsers read it.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 6,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 4
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or)
    }

    pub const ALL: [BinOp; 13] = [
        BinOp::Or,
        BinOp::And,
        BinOp::Eq,
        BinOp::NotEq,
        BinOp::Lt,
        BinOp::LtEq,
        BinOp::Gt,
        BinOp::GtEq,
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Mod,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Stddev,
}

impl Agg {
    pub const ALL: [Agg; 6] = [
        Agg::Count,
        Agg::Sum,
        Agg::Min,
        Agg::Max,
        Agg::Avg,
        Agg::Stddev,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Agg::Count => "COUNT",
            Agg::Sum => "SUM",
            Agg::Min => "MIN",
            Agg::Max => "MAX",
            Agg::Avg => "AVG",
            Agg::Stddev => "STDDEV",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|a| a.name() == upper)
            .or((upper == "STDDEV_SAMP").then_some(Agg::Stddev))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Column {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "At::is_none")]
        at: At,
    },
    Int(i64),
    /// Written in JSON as the shortest text that reads back as the same double (JSON parsers
    /// may round numbers); a JSON number is accepted too.
    Float(#[serde(with = "exact_float")] f64),
    Text(String),
    Bool(bool),
    Null,
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// A scalar function (`SQRT`, `DELTA_R`, …), by its upper-case name.
    Call {
        func: String,
        args: Vec<Expr>,
        #[serde(default, skip_serializing_if = "At::is_none")]
        at: At,
    },
    /// An aggregate; `arg: None` is `COUNT(*)`.
    Agg {
        func: Agg,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arg: Option<Box<Expr>>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        distinct: bool,
        #[serde(default, skip_serializing_if = "At::is_none")]
        at: At,
    },
    Between {
        expr: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        negated: bool,
    },
    Case {
        whens: Vec<(Expr, Expr)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otherwise: Option<Box<Expr>>,
    },
    Cast {
        expr: Box<Expr>,
        to: Type,
    },
}

mod exact_float {
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, or a number as text")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                v.trim()
                    .parse()
                    .map_err(|_| E::custom(format!("`{v}` is not a number")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a query runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// polars over the local Parquet chunks (the embedded default).
    Local,
    /// The event catalogue in PostgreSQL.
    Postgres,
    /// A Spark cluster through Spark Connect, reading the same Parquet chunks.
    Spark,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Local, Engine::Postgres, Engine::Spark];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Local => "local",
            Engine::Postgres => "postgres",
            Engine::Spark => "spark",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }
}

/// A problem with a query, at a place in its text when it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub message: String,
    /// 1-based line and column; 0 when the problem has no single place.
    pub line: u32,
    pub column: u32,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, at: At) -> Self {
        let (line, column) = at.0.unwrap_or((0, 0));
        Self {
            message: message.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

/// Shorthands for building expressions (the builder and the ADL queries use them).
pub mod dsl {
    use super::*;

    pub fn col(name: &str) -> Expr {
        match name.split_once('.') {
            Some((t, c)) => Expr::Column {
                table: Some(t.into()),
                name: c.into(),
                at: At::NONE,
            },
            None => Expr::Column {
                table: None,
                name: name.into(),
                at: At::NONE,
            },
        }
    }

    pub fn int(v: i64) -> Expr {
        Expr::Int(v)
    }

    pub fn float(v: f64) -> Expr {
        Expr::Float(v)
    }

    pub fn call(func: &str, args: Vec<Expr>) -> Expr {
        Expr::Call {
            func: func.to_ascii_uppercase(),
            args,
            at: At::NONE,
        }
    }

    pub fn agg(func: Agg, arg: Expr) -> Expr {
        Expr::Agg {
            func,
            arg: Some(Box::new(arg)),
            distinct: false,
            at: At::NONE,
        }
    }

    pub fn count_star() -> Expr {
        Expr::Agg {
            func: Agg::Count,
            arg: None,
            distinct: false,
            at: At::NONE,
        }
    }

    pub fn bin(op: BinOp, left: Expr, right: Expr) -> Expr {
        Expr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    /// `a AND b AND …` (None for no terms).
    pub fn all(terms: impl IntoIterator<Item = Expr>) -> Option<Expr> {
        terms.into_iter().reduce(|a, b| bin(BinOp::And, a, b))
    }

    /// `pt, eta, phi, mass` of the object `q` (an alias of a collection table).
    pub fn p4(q: &str) -> [Expr; 4] {
        ["pt", "eta", "phi", "mass"].map(|c| col(&format!("{q}.{c}")))
    }

    /// `INV_MASS` of the objects aliased `qs`.
    pub fn inv_mass(qs: &[&str]) -> Expr {
        call("INV_MASS", qs.iter().flat_map(|q| p4(q)).collect())
    }

    pub fn delta_r(a: &str, b: &str) -> Expr {
        call(
            "DELTA_R",
            vec![
                col(&format!("{a}.eta")),
                col(&format!("{a}.phi")),
                col(&format!("{b}.eta")),
                col(&format!("{b}.phi")),
            ],
        )
    }
}

impl Expr {
    /// The first position recorded in this expression (for messages).
    pub fn at(&self) -> At {
        let mut found = At::NONE;
        self.visit(&mut |e| {
            if found.is_none() {
                match e {
                    Expr::Column { at, .. } | Expr::Call { at, .. } | Expr::Agg { at, .. } => {
                        found = *at
                    }
                    _ => {}
                }
            }
        });
        found
    }

    /// Calls `f` on this expression and every expression inside it, parents first.
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column { .. }
            | Expr::Int(_)
            | Expr::Float(_)
            | Expr::Text(_)
            | Expr::Bool(_)
            | Expr::Null => {}
            Expr::Neg(e)
            | Expr::Not(e)
            | Expr::IsNull { expr: e, .. }
            | Expr::Cast { expr: e, .. } => e.visit(f),
            Expr::Binary { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            Expr::Call { args, .. } => args.iter().for_each(|a| a.visit(f)),
            Expr::Agg { arg, .. } => {
                if let Some(a) = arg {
                    a.visit(f)
                }
            }
            Expr::Between { expr, lo, hi, .. } => {
                expr.visit(f);
                lo.visit(f);
                hi.visit(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.visit(f);
                list.iter().for_each(|a| a.visit(f));
            }
            Expr::Case { whens, otherwise } => {
                for (c, v) in whens {
                    c.visit(f);
                    v.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f)
                }
            }
        }
    }

    pub fn has_aggregate(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, Expr::Agg { .. }));
        found
    }
}
