//! SQL text → the query AST, through the sqlparser crate. Constructs outside ALYX's subset are
//! refused with their position, never guessed at. Unquoted names are folded to lower case, as
//! PostgreSQL does, so that `PT` and `pt` mean the same column on every engine.

use sqlparser::ast as sql;
use sqlparser::ast::Spanned;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Span;

use crate::diagnostic::Diagnostic;
use alyx_core::ast::*;

type R<T> = std::result::Result<T, Diagnostic>;

/// The longest query text accepted, in bytes.
pub const MAX_TEXT: usize = 256 * 1024;

/// The most operators, keywords that join conditions and parentheses a query may hold. Every
/// step that walks a query (conversion, checking, printing, the engines' own parsers, dropping
/// the tree) recurses on its depth, and a chain of N operators is N deep: the limit keeps the
/// deepest accepted query far inside a thread's stack.
pub const MAX_OPERATORS: usize = 1_000;

/// Refuses text too long or with too many operators before any parser builds a tree of it.
fn within_limits(text: &str) -> R<()> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    if text.len() > MAX_TEXT {
        return Err(Diagnostic::new(
            format!(
                "the query is {} KiB; the most accepted is {} KiB",
                text.len().div_ceil(1024),
                MAX_TEXT / 1024
            ),
            At::NONE,
        ));
    }
    // Text that does not tokenize is left to the parser, which says where it fails.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, text).tokenize() else {
        return Ok(());
    };
    // ALYX SQL has no arrays or subscripts, and a name has at most two parts (`table.column`):
    // sqlparser's attempts at `a.b[c.d[…` and `$.v.E.7.E…` chains backtrack exponentially
    // (found by fuzzing: 114 and 119 bytes took 6 to 13 s of CPU).
    if tokens
        .iter()
        .any(|t| matches!(t, Token::LBracket | Token::RBracket))
    {
        return Err(Diagnostic::new(
            "`[` and `]` are not ALYX SQL: it has no arrays or subscripts",
            At::NONE,
        ));
    }
    // Periods in one chain of names (`a.b.c`): a name or number not right after a period
    // starts a new chain.
    let (mut periods, mut after_period) = (0, false);
    for t in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
        match t {
            Token::Period => periods += 1,
            Token::Word(_) | Token::Number(..) | Token::Placeholder(_) if after_period => {}
            _ => periods = 0,
        }
        after_period = matches!(t, Token::Period);
        if periods > 1 {
            return Err(Diagnostic::new(
                "a name has at most two parts (`table.column`)",
                At::NONE,
            ));
        }
    }
    let operators = tokens
        .iter()
        .filter(|t| match t {
            Token::Word(w) => matches!(
                w.keyword,
                sqlparser::keywords::Keyword::AND
                    | sqlparser::keywords::Keyword::OR
                    | sqlparser::keywords::Keyword::NOT
                    | sqlparser::keywords::Keyword::WHEN
                    | sqlparser::keywords::Keyword::SELECT
            ),
            Token::Number(..)
            | Token::Char(_)
            | Token::Comma
            | Token::Whitespace(_)
            | Token::Period
            | Token::SemiColon
            | Token::EOF => false,
            t => !is_string(t),
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(Diagnostic::new(
            format!(
                "the query has {operators} operators and parentheses; the most accepted is {MAX_OPERATORS}"
            ),
            At::NONE,
        ));
    }
    Ok(())
}

fn is_string(t: &sqlparser::tokenizer::Token) -> bool {
    use sqlparser::tokenizer::Token as T;
    matches!(
        t,
        T::SingleQuotedString(_)
            | T::DoubleQuotedString(_)
            | T::TripleSingleQuotedString(_)
            | T::TripleDoubleQuotedString(_)
            | T::DollarQuotedString(_)
            | T::SingleQuotedByteStringLiteral(_)
            | T::DoubleQuotedByteStringLiteral(_)
            | T::TripleSingleQuotedByteStringLiteral(_)
            | T::TripleDoubleQuotedByteStringLiteral(_)
            | T::SingleQuotedRawStringLiteral(_)
            | T::DoubleQuotedRawStringLiteral(_)
            | T::TripleSingleQuotedRawStringLiteral(_)
            | T::TripleDoubleQuotedRawStringLiteral(_)
            | T::NationalStringLiteral(_)
            | T::EscapedStringLiteral(_)
            | T::UnicodeStringLiteral(_)
            | T::HexStringLiteral(_)
    )
}

/// Parses one `SELECT` query (with `WITH`, `UNION ALL`, `ORDER BY` and `LIMIT`).
pub fn parse(text: &str) -> R<Query> {
    if text.trim().is_empty() {
        return Err(Diagnostic::new("the query is empty", At::NONE));
    }
    within_limits(text)?;
    let statements =
        Parser::parse_sql(&GenericDialect {}, text).map_err(|e| parser_error(e, text))?;
    match statements.as_slice() {
        [sql::Statement::Query(q)] => query(q),
        [] => Err(Diagnostic::new("the query is empty", At::NONE)),
        [other] => Err(Diagnostic::new(
            "only SELECT queries can run here; nothing was executed",
            at(other.span()),
        )),
        [_, second, ..] => Err(Diagnostic::new(
            "one query at a time: remove the text after the first `;`",
            match at(second.span()) {
                At(None) => after_first_semicolon(text),
                place => place,
            },
        )),
    }
}

/// Parses one condition (`n_muons >= 2 AND run = 1`), as in a WHERE clause: the whole text is
/// the expression, nothing may follow it.
pub fn condition(text: &str) -> R<Expr> {
    if text.trim().is_empty() {
        return Err(Diagnostic::new("the condition is empty", At::NONE));
    }
    within_limits(text)?;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| parser_error(e, text))?;
    let e = parser.parse_expr().map_err(|e| parser_error(e, text))?;
    let next = parser.peek_token();
    if next.token != sqlparser::tokenizer::Token::EOF {
        return Err(Diagnostic::new(
            format!("the condition ends before `{}`", next.token),
            at(next.span),
        ));
    }
    expr(&e)
}

fn parser_error(e: ParserError, sql: &str) -> Diagnostic {
    let text = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => "the query is nested too deeply".into(),
    };
    // sqlparser ends its messages with " at Line: L, Column: C".
    if let Some(i) = text.rfind(" at Line: ") {
        let place = &text[i + " at Line: ".len()..];
        let mut nums = place
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<u32>().ok());
        if let (Some(line), Some(column)) = (nums.next(), nums.next()) {
            return Diagnostic::new(
                format!("syntax error: {}", &text[..i]),
                At(Some((line, column))),
            );
        }
    }
    // The end of the text has no token to place the message at: point just past it.
    if text.contains("found: EOF") {
        let line = sql.trim_end().lines().count().max(1);
        let column = sql
            .trim_end()
            .lines()
            .last()
            .map_or(0, |l| l.chars().count())
            + 1;
        return Diagnostic::new(
            format!("syntax error: {text} (the query ends too soon)"),
            At(Some((line as u32, column as u32))),
        );
    }
    Diagnostic::new(format!("syntax error: {text}"), At::NONE)
}

/// Where the text after the first `;` starts (sqlparser gives some statements no span).
fn after_first_semicolon(text: &str) -> At {
    let Some(semi) = text.find(';') else {
        return At::NONE;
    };
    let rest = &text[semi + 1..];
    let start = semi + 1 + (rest.len() - rest.trim_start().len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    At(Some((line as u32, column as u32)))
}

fn at(span: Span) -> At {
    if span.start.line == 0 {
        At::NONE
    } else {
        At(Some((span.start.line as u32, span.start.column as u32)))
    }
}

fn unsupported(what: &str, span: Span) -> Diagnostic {
    Diagnostic::new(format!("{what} is not supported in ALYX queries"), at(span))
}

fn name(ident: &sql::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

fn object_name(n: &sql::ObjectName) -> R<String> {
    match n.0.as_slice() {
        [sql::ObjectNamePart::Identifier(i)] => Ok(name(i)),
        _ => Err(unsupported("a qualified name", n.span())),
    }
}

fn query(q: &sql::Query) -> R<Query> {
    if q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty()
    {
        return Err(unsupported("this clause", q.span()));
    }
    let mut with = Vec::new();
    if let Some(w) = &q.with {
        if w.recursive {
            return Err(unsupported("WITH RECURSIVE", w.span()));
        }
        for cte in &w.cte_tables {
            if !cte.alias.columns.is_empty() {
                return Err(unsupported(
                    "a column list after a WITH name",
                    cte.alias.span(),
                ));
            }
            with.push(Cte {
                name: name(&cte.alias.name),
                query: query(&cte.query)?,
            });
        }
    }
    let mut body = Vec::new();
    set_expr(&q.body, &mut body)?;
    let mut order_by = Vec::new();
    if let Some(o) = &q.order_by {
        match &o.kind {
            sql::OrderByKind::Expressions(list) => {
                for e in list {
                    if e.options.nulls_first.is_some() || e.with_fill.is_some() {
                        return Err(unsupported(
                            "NULLS FIRST/LAST (nulls always sort last)",
                            e.span(),
                        ));
                    }
                    order_by.push(Order {
                        expr: expr(&e.expr)?,
                        desc: e.options.asc == Some(false),
                    });
                }
            }
            sql::OrderByKind::All(_) => return Err(unsupported("ORDER BY ALL", o.span())),
        }
    }
    let (limit, offset) = match &q.limit_clause {
        None => (None, None),
        Some(sql::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT BY", q.span()));
            }
            if offset
                .as_ref()
                .is_some_and(|o| o.rows != sql::OffsetRows::None)
            {
                return Err(unsupported("OFFSET … ROWS", q.span()));
            }
            (
                limit.as_ref().map(limit_value).transpose()?,
                offset.as_ref().map(|o| limit_value(&o.value)).transpose()?,
            )
        }
        Some(other) => return Err(unsupported("this LIMIT form", other.span())),
    };
    Ok(Query {
        with,
        body,
        order_by,
        limit,
        offset,
    })
}

fn limit_value(e: &sql::Expr) -> R<u64> {
    if let sql::Expr::Value(v) = e {
        if let sql::Value::Number(s, _) = &v.value {
            if let Ok(n) = s.parse::<u64>() {
                return Ok(n);
            }
        }
    }
    Err(Diagnostic::new(
        "LIMIT and OFFSET take a whole number",
        at(e.span()),
    ))
}

fn set_expr(s: &sql::SetExpr, out: &mut Vec<Select>) -> R<()> {
    match s {
        sql::SetExpr::Select(sel) => {
            out.push(select(sel)?);
            Ok(())
        }
        sql::SetExpr::SetOperation {
            left,
            op: sql::SetOperator::Union,
            set_quantifier: sql::SetQuantifier::All,
            right,
        } => {
            set_expr(left, out)?;
            set_expr(right, out)
        }
        sql::SetExpr::SetOperation { op, right, .. } => Err(unsupported(
            &format!("{op} (only UNION ALL is)"),
            right.span(),
        )),
        sql::SetExpr::Query(q) => Err(unsupported("a query in parentheses", q.span())),
        other => Err(Diagnostic::new(
            "only SELECT queries can run here; nothing was executed",
            at(other.span()),
        )),
    }
}

fn select(s: &sql::Select) -> R<Select> {
    if s.top.is_some()
        || s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || !s.named_window.is_empty()
        || s.qualify.is_some()
        || !s.connect_by.is_empty()
        || s.exclude.is_some()
    {
        return Err(unsupported("this SELECT clause", s.span()));
    }
    let distinct = match &s.distinct {
        None | Some(sql::Distinct::All) => false,
        Some(sql::Distinct::Distinct) => true,
        Some(sql::Distinct::On(_)) => return Err(unsupported("DISTINCT ON", s.span())),
    };
    let mut items = Vec::new();
    for item in &s.projection {
        items.push(match item {
            sql::SelectItem::UnnamedExpr(e) => Item::Expr {
                expr: expr(e)?,
                alias: None,
            },
            sql::SelectItem::ExprWithAlias { expr: e, alias } => Item::Expr {
                expr: expr(e)?,
                alias: Some(name(alias)),
            },
            sql::SelectItem::Wildcard(_) => Item::Wildcard { table: None },
            sql::SelectItem::QualifiedWildcard(
                sql::SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) => Item::Wildcard {
                table: Some(object_name(n)?),
            },
            other => return Err(unsupported("this select item", other.span())),
        });
    }
    let from = match s.from.as_slice() {
        [] => None,
        [twj] => Some(from(twj)?),
        [_, second, ..] => {
            return Err(Diagnostic::new(
                "list tables with JOIN … ON, not commas",
                at(second.span()),
            ));
        }
    };
    let group_by = match &s.group_by {
        sql::GroupByExpr::Expressions(list, modifiers) if modifiers.is_empty() => {
            list.iter().map(expr).collect::<R<Vec<_>>>()?
        }
        other => return Err(unsupported("this GROUP BY form", other.span())),
    };
    Ok(Select {
        distinct,
        items,
        from,
        filter: s.selection.as_ref().map(expr).transpose()?,
        group_by,
        having: s.having.as_ref().map(expr).transpose()?,
    })
}

fn from(twj: &sql::TableWithJoins) -> R<From> {
    let first = table(&twj.relation)?;
    let mut joins = Vec::new();
    for j in &twj.joins {
        let (kind, constraint) = match &j.join_operator {
            sql::JoinOperator::Join(c) | sql::JoinOperator::Inner(c) => (JoinKind::Inner, c),
            sql::JoinOperator::Left(c) | sql::JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
            _ => {
                return Err(unsupported(
                    "this kind of join (JOIN and LEFT JOIN are)",
                    j.span(),
                ));
            }
        };
        let sql::JoinConstraint::On(on) = constraint else {
            return Err(Diagnostic::new(
                "a join needs an ON condition",
                at(j.span()),
            ));
        };
        joins.push(Join {
            kind,
            table: table(&j.relation)?,
            on: expr(on)?,
        });
    }
    Ok(From {
        table: first,
        joins,
    })
}

fn table(t: &sql::TableFactor) -> R<TableRef> {
    match t {
        sql::TableFactor::Table {
            name: n,
            alias,
            args: None,
            with_hints,
            ..
        } if with_hints.is_empty() => {
            if let Some(a) = alias {
                if !a.columns.is_empty() {
                    return Err(unsupported("a column list after a table alias", a.span()));
                }
            }
            Ok(TableRef {
                name: object_name(n)?,
                alias: alias.as_ref().map(|a| name(&a.name)),
                at: at(n.span()),
            })
        }
        sql::TableFactor::Derived { .. } => Err(Diagnostic::new(
            "a subquery in FROM is not supported: give it a name with WITH",
            at(t.span()),
        )),
        other => Err(unsupported("this table expression", other.span())),
    }
}

fn boxed(e: &sql::Expr) -> R<Box<Expr>> {
    expr(e).map(Box::new)
}

fn number(s: &str, span: Span) -> R<Expr> {
    if let Ok(v) = s.parse::<i64>() {
        return Ok(Expr::Int(v));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Expr::Float(v)),
        _ => Err(Diagnostic::new(
            format!("`{s}` is not a usable number"),
            at(span),
        )),
    }
}

fn data_type(t: &sql::DataType, span: Span) -> R<Type> {
    use sql::DataType as D;
    Ok(match t {
        D::TinyInt(_)
        | D::SmallInt(_)
        | D::Int(_)
        | D::Integer(_)
        | D::BigInt(_)
        | D::Int2(_)
        | D::Int4(_)
        | D::Int8(_)
        | D::Int64 => Type::Int,
        D::Float(_)
        | D::Real
        | D::Float4
        | D::Float8
        | D::Float64
        | D::Double(_)
        | D::DoublePrecision => Type::Float,
        D::Bool | D::Boolean => Type::Bool,
        D::Text | D::String(_) | D::Varchar(_) => Type::Text,
        other => return Err(unsupported(&format!("the type {other}"), span)),
    })
}

fn expr(e: &sql::Expr) -> R<Expr> {
    use sql::Expr as E;
    Ok(match e {
        E::Identifier(i) => Expr::Column {
            table: None,
            name: name(i),
            at: at(i.span),
        },
        E::CompoundIdentifier(parts) => match parts.as_slice() {
            [t, c] => Expr::Column {
                table: Some(name(t)),
                name: name(c),
                at: at(t.span),
            },
            _ => return Err(unsupported("a name with more than two parts", e.span())),
        },
        E::Value(v) => match &v.value {
            sql::Value::Number(s, _) => number(s, v.span)?,
            sql::Value::SingleQuotedString(s) => Expr::Text(s.clone()),
            sql::Value::Boolean(b) => Expr::Bool(*b),
            sql::Value::Null => Expr::Null,
            _ => return Err(unsupported("this literal", v.span)),
        },
        E::UnaryOp { op, expr: inner } => match op {
            sql::UnaryOperator::Minus => match inner.as_ref() {
                E::Value(v) => match &v.value {
                    sql::Value::Number(s, _) => number(&format!("-{s}"), v.span)?,
                    _ => Expr::Neg(boxed(inner)?),
                },
                _ => Expr::Neg(boxed(inner)?),
            },
            sql::UnaryOperator::Plus => expr(inner)?,
            sql::UnaryOperator::Not => Expr::Not(boxed(inner)?),
            _ => return Err(unsupported(&format!("the operator {op}"), e.span())),
        },
        E::BinaryOp { left, op, right } => {
            use sql::BinaryOperator as B;
            let op = match op {
                B::Or => BinOp::Or,
                B::And => BinOp::And,
                B::Eq => BinOp::Eq,
                B::NotEq => BinOp::NotEq,
                B::Lt => BinOp::Lt,
                B::LtEq => BinOp::LtEq,
                B::Gt => BinOp::Gt,
                B::GtEq => BinOp::GtEq,
                B::Plus => BinOp::Add,
                B::Minus => BinOp::Sub,
                B::Multiply => BinOp::Mul,
                B::Divide => BinOp::Div,
                B::Modulo => BinOp::Mod,
                other => return Err(unsupported(&format!("the operator {other}"), e.span())),
            };
            Expr::Binary {
                op,
                left: boxed(left)?,
                right: boxed(right)?,
            }
        }
        E::Nested(inner) => expr(inner)?,
        E::Function(f) => function(f)?,
        E::Floor { expr: x, field } | E::Ceil { expr: x, field } => {
            if !matches!(
                field,
                sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime)
            ) {
                return Err(unsupported("FLOOR/CEIL with a scale or unit", e.span()));
            }
            let func = if matches!(e, E::Floor { .. }) {
                "FLOOR"
            } else {
                "CEIL"
            };
            Expr::Call {
                func: func.into(),
                args: vec![expr(x)?],
                at: at(e.span()),
            }
        }
        E::Between {
            expr: x,
            negated,
            low,
            high,
        } => Expr::Between {
            expr: boxed(x)?,
            lo: boxed(low)?,
            hi: boxed(high)?,
            negated: *negated,
        },
        E::InList {
            expr: x,
            list,
            negated,
        } => Expr::InList {
            expr: boxed(x)?,
            list: list.iter().map(expr).collect::<R<_>>()?,
            negated: *negated,
        },
        E::IsNull(x) => Expr::IsNull {
            expr: boxed(x)?,
            negated: false,
        },
        E::IsNotNull(x) => Expr::IsNull {
            expr: boxed(x)?,
            negated: true,
        },
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let operand = operand.as_ref().map(|o| expr(o)).transpose()?;
            let mut whens = Vec::new();
            for w in conditions {
                let c = expr(&w.condition)?;
                let c = match &operand {
                    Some(o) => Expr::Binary {
                        op: BinOp::Eq,
                        left: Box::new(o.clone()),
                        right: Box::new(c),
                    },
                    None => c,
                };
                whens.push((c, expr(&w.result)?));
            }
            Expr::Case {
                whens,
                otherwise: else_result.as_ref().map(|x| boxed(x)).transpose()?,
            }
        }
        E::Cast {
            kind,
            expr: x,
            data_type: t,
            ..
        } => {
            if !matches!(kind, sql::CastKind::Cast | sql::CastKind::DoubleColon) {
                return Err(unsupported("TRY_CAST", e.span()));
            }
            Expr::Cast {
                expr: boxed(x)?,
                to: data_type(t, e.span())?,
            }
        }
        E::Exists { .. } | E::Subquery(_) | E::InSubquery { .. } => {
            return Err(Diagnostic::new(
                "subqueries in expressions are not supported: join a WITH table instead",
                at(e.span()),
            ));
        }
        other => return Err(unsupported(&format!("`{other}`"), other.span())),
    })
}

fn function(f: &sql::Function) -> R<Expr> {
    let span = f.span();
    let fname = match f.name.0.as_slice() {
        [sql::ObjectNamePart::Identifier(i)] => i.value.to_ascii_uppercase(),
        _ => return Err(unsupported("a qualified function name", span)),
    };
    let place = at(f.name.span());
    if f.over.is_some() {
        return Err(unsupported("a window function (OVER …)", span));
    }
    if f.filter.is_some() || f.null_treatment.is_some() || !f.within_group.is_empty() {
        return Err(unsupported("this function clause", span));
    }
    if !matches!(f.parameters, sql::FunctionArguments::None) {
        return Err(unsupported("function parameters", span));
    }
    let (args, distinct, star) = match &f.args {
        sql::FunctionArguments::None => (Vec::new(), false, false),
        sql::FunctionArguments::Subquery(_) => {
            return Err(unsupported("a subquery as a function argument", span));
        }
        sql::FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(unsupported("this function clause", span));
            }
            let distinct = matches!(
                list.duplicate_treatment,
                Some(sql::DuplicateTreatment::Distinct)
            );
            let mut args = Vec::new();
            let mut star = false;
            for a in &list.args {
                match a {
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(x)) => args.push(expr(x)?),
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard) => star = true,
                    other => return Err(unsupported("this function argument", other.span())),
                }
            }
            (args, distinct, star)
        }
    };
    if let Some(func) = Agg::from_name(&fname) {
        let arg = match (star, args.as_slice()) {
            (true, []) if func == Agg::Count && !distinct => None,
            (false, [a]) => Some(Box::new(a.clone())),
            _ => {
                return Err(Diagnostic::new(
                    format!(
                        "{} takes one argument{}",
                        func.name(),
                        if func == Agg::Count { " or *" } else { "" }
                    ),
                    place,
                ));
            }
        };
        return Ok(Expr::Agg {
            func,
            arg,
            distinct,
            at: place,
        });
    }
    if star || distinct {
        return Err(Diagnostic::new(
            format!("{fname} is not an aggregate: * and DISTINCT do not apply"),
            place,
        ));
    }
    let fname = match fname.as_str() {
        "POW" => "POWER".to_owned(),
        "CEILING" => "CEIL".to_owned(),
        _ => fname,
    };
    Ok(Expr::Call {
        func: fname,
        args,
        at: place,
    })
}
