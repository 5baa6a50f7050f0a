use proptest::prelude::*;

use super::{Dialect, Engine, adl, check, parse, plan, prepare, to_sql};
use alyx_core::ast::dsl::*;
use alyx_core::ast::*;

fn roundtrip(q: &Query) -> Query {
    let text = to_sql(q, Dialect::Alyx);
    parse(&text).unwrap_or_else(|d| panic!("{text}\n  does not parse: {d}"))
}

const NAMES: &[&str] = &[
    "pt", "eta", "event_id", "a", "b", "select", "Mixed", "my col", "order", "x1",
];

fn ident() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (prop::option::of(ident()), ident()).prop_map(|(table, name)| Expr::Column {
            table,
            name,
            at: At::NONE
        }),
        any::<i64>().prop_map(Expr::Int),
        prop_oneof![
            -1e6..1e6f64,
            prop::sample::select(vec![0.0, -0.0, 1e-300, 1e300, 2.5e-7, -123456.789, 91.2]),
        ]
        .prop_map(Expr::Float),
        "[a-z' \\\\é]{0,6}".prop_map(Expr::Text),
        any::<bool>().prop_map(Expr::Bool),
        Just(Expr::Null),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 40, 4, |inner| {
        let b = || inner.clone().prop_map(Box::new);
        prop_oneof![
            b().prop_map(Expr::Neg),
            b().prop_map(Expr::Not),
            (prop::sample::select(BinOp::ALL.to_vec()), b(), b())
                .prop_map(|(op, left, right)| Expr::Binary { op, left, right }),
            (
                prop::sample::select(vec![
                    "SQRT", "ABS", "INV_MASS", "DELTA_R", "GREATEST", "COALESCE", "POWER"
                ]),
                prop::collection::vec(inner.clone(), 1..4)
            )
                .prop_map(|(f, args)| call(f, args)),
            // FLOOR and CEIL have a syntax of their own in SQL: one argument.
            (prop::sample::select(vec!["FLOOR", "CEIL"]), b()).prop_map(|(f, x)| call(f, vec![*x])),
            (
                prop::sample::select(Agg::ALL.to_vec()),
                prop::option::of(b()),
                any::<bool>()
            )
                .prop_map(|(func, arg, distinct)| Expr::Agg {
                    func,
                    distinct: distinct && arg.is_some(),
                    arg: if func == Agg::Count {
                        arg
                    } else {
                        arg.or(Some(Box::new(Expr::Int(1))))
                    },
                    at: At::NONE
                }),
            (b(), b(), b(), any::<bool>()).prop_map(|(expr, lo, hi, negated)| Expr::Between {
                expr,
                lo,
                hi,
                negated
            }),
            (
                b(),
                prop::collection::vec(inner.clone(), 1..3),
                any::<bool>()
            )
                .prop_map(|(expr, list, negated)| Expr::InList {
                    expr,
                    list,
                    negated
                }),
            (b(), any::<bool>()).prop_map(|(expr, negated)| Expr::IsNull { expr, negated }),
            (
                prop::collection::vec((inner.clone(), inner.clone()), 1..3),
                prop::option::of(b())
            )
                .prop_map(|(whens, otherwise)| Expr::Case { whens, otherwise }),
            (
                b(),
                prop::sample::select(vec![Type::Int, Type::Float, Type::Bool, Type::Text])
            )
                .prop_map(|(expr, to)| Expr::Cast { expr, to }),
        ]
    })
}

fn table_ref() -> impl Strategy<Value = TableRef> {
    (ident(), prop::option::of(ident())).prop_map(|(name, alias)| TableRef {
        name,
        alias,
        at: At::NONE,
    })
}

fn select() -> impl Strategy<Value = Select> {
    let item = prop_oneof![
        prop::option::of(ident()).prop_map(|table| Item::Wildcard { table }),
        (expr(), prop::option::of(ident())).prop_map(|(expr, alias)| Item::Expr { expr, alias }),
    ];
    let join = (any::<bool>(), table_ref(), expr()).prop_map(|(left, table, on)| Join {
        kind: if left {
            JoinKind::Left
        } else {
            JoinKind::Inner
        },
        table,
        on,
    });
    (
        any::<bool>(),
        prop::collection::vec(item, 1..4),
        prop::option::of((table_ref(), prop::collection::vec(join, 0..3))),
        prop::option::of(expr()),
        prop::collection::vec(expr(), 0..3),
        prop::option::of(expr()),
    )
        .prop_map(|(distinct, items, from, filter, group_by, having)| Select {
            distinct,
            items,
            from: from.map(|(table, joins)| From { table, joins }),
            filter,
            group_by,
            having,
        })
}

fn query() -> impl Strategy<Value = Query> {
    let order = (expr(), any::<bool>()).prop_map(|(expr, desc)| Order { expr, desc });
    let cte = (ident(), select()).prop_map(|(name, s)| Cte {
        name,
        query: Query::select(s),
    });
    (
        prop::collection::vec(cte, 0..3),
        prop::collection::vec(select(), 1..3),
        prop::collection::vec(order, 0..3),
        prop::option::of(0..1_000_000u64),
        prop::option::of(0..1_000_000u64),
    )
        .prop_map(|(with, body, order_by, limit, offset)| Query {
            with,
            body,
            order_by,
            limit,
            offset,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// AST → SQL → AST gives the AST back, whatever the names, literals and nesting.
    #[test]
    fn ast_sql_ast_round_trip(q in query()) {
        prop_assert_eq!(roundtrip(&q), q);
    }

    /// JSON (query files, the gRPC API) round-trips too.
    #[test]
    fn ast_json_round_trip(q in query()) {
        let json = serde_json::to_string(&q).expect("json");
        let back: Query = serde_json::from_str(&json).expect("parse json");
        prop_assert_eq!(back, q);
    }

    /// SQL → AST → SQL is stable: printing what was parsed prints the same text.
    #[test]
    fn printed_sql_is_a_fixed_point(q in query()) {
        let text = to_sql(&q, Dialect::Alyx);
        let again = to_sql(&roundtrip(&q), Dialect::Alyx);
        prop_assert_eq!(again, text);
    }
}

#[test]
fn builder_selections_and_adl_queries_round_trip_through_sql() {
    for n in 1..=8 {
        let (_, spec, _) = adl::query(n).expect("adl");
        let q = spec
            .query()
            .unwrap_or_else(|d| panic!("ADL {n}: {d}\n{}", spec.sql().unwrap_or_default()));
        assert_eq!(roundtrip(&q), q, "ADL {n}");
        for engine in [Engine::Local, Engine::Spark] {
            check(&q, engine).unwrap_or_else(|e| {
                panic!(
                    "ADL {n} on {engine:?}: {e:?}\n{}",
                    to_sql(&q, Dialect::Alyx)
                )
            });
        }
    }
}

/// (query, expected message fragment, expected line and column; 0 when there is no place).
const BAD: &[(&str, &str, u32, u32)] = &[
    (
        "SELECT pt FROM muon",
        "unknown table `muon` (did you mean `muons`?)",
        1,
        16,
    ),
    (
        "SELECT ptt FROM muons",
        "unknown column `ptt` in muons (did you mean `pt`?)",
        1,
        8,
    ),
    ("SELECT m.pt FROM muons AS mu", "no table `m` in FROM", 1, 8),
    (
        "SELECT pt FROM muons WHERE system = 'pp'",
        "unknown column `system`",
        1,
        28,
    ),
    (
        "SELECT event_id FROM muons AS a JOIN electrons AS b ON a.event_id = b.event_id",
        "`event_id` is ambiguous",
        1,
        8,
    ),
    (
        "SELECT pt FROM muons WHERE pt",
        "WHERE must be a condition, not float",
        1,
        28,
    ),
    (
        "SELECT pt FROM muons WHERE collection > 3",
        "cannot compare text with integer",
        1,
        28,
    ),
    (
        "SELECT pt + collection FROM muons",
        "`+` needs numbers, not text",
        1,
        8,
    ),
    (
        "SELECT pt FROM muons WHERE COUNT(*) > 2",
        "COUNT is not allowed here",
        1,
        28,
    ),
    (
        "SELECT event_id, pt FROM muons GROUP BY event_id",
        "`muons.pt` must appear in GROUP BY",
        1,
        18,
    ),
    (
        "SELECT MAX(SUM(pt)) FROM muons",
        "SUM inside another aggregate",
        1,
        12,
    ),
    (
        "SELECT SQRTT(pt) FROM muons",
        "unknown function SQRTT (did you mean `SQRT`?)",
        1,
        8,
    ),
    (
        "SELECT INV_MASS(pt, eta, phi) FROM muons",
        "INV_MASS takes two or more objects",
        1,
        8,
    ),
    ("SELECT pt FROM muons\nWHERE eta >", "syntax error", 2, 12),
    (
        "DELETE FROM muons",
        "only SELECT queries can run here",
        1,
        1,
    ),
    (
        "SELECT pt FROM muons; DROP TABLE muons",
        "one query at a time",
        1,
        23,
    ),
    (
        "SELECT pt FROM muons UNION SELECT pt FROM jets",
        "only UNION ALL",
        1,
        28,
    ),
    (
        "SELECT pt, eta AS pt FROM muons",
        "two output columns are named `pt`",
        1,
        12,
    ),
    (
        "SELECT pt FROM muons UNION ALL SELECT pt, eta FROM jets",
        "UNION ALL part 2 has 2 columns",
        0,
        0,
    ),
    (
        "SELECT pt FROM (SELECT pt FROM muons) AS m",
        "give it a name with WITH",
        1,
        17,
    ),
    (
        "SELECT pt FROM muons WHERE pt IN (SELECT pt FROM jets)",
        "subqueries in expressions are not supported",
        1,
        28,
    ),
    ("SELECT pt FROM muons, jets", "list tables with JOIN", 1, 23),
    (
        "SELECT pt % 2 FROM muons",
        "`%` needs integers, not float",
        1,
        8,
    ),
    (
        "SELECT a.pt FROM muons AS a JOIN muons AS a ON a.event_id = a.event_id",
        "`a` appears twice in FROM",
        1,
        34,
    ),
    (
        "SELECT ROW_NUMBER() OVER (ORDER BY pt) FROM muons",
        "a window function",
        1,
        8,
    ),
    ("", "the query is empty", 0, 0),
];

#[test]
fn invalid_queries_get_a_message_and_a_place() {
    for (text, fragment, line, column) in BAD {
        let errors = prepare(text, Engine::Local).expect_err(text);
        let hit = errors
            .iter()
            .find(|d| d.message.contains(fragment))
            .unwrap_or_else(|| panic!("{text:?}: expected {fragment:?}, got {errors:?}"));
        assert_eq!((hit.line, hit.column), (*line, *column), "{text:?}: {hit}");
    }
}

#[test]
fn postgres_engine_sees_the_catalogue_only() {
    let errors = prepare("SELECT pt FROM muons", Engine::Postgres).expect_err("muons");
    assert!(
        errors[0]
            .message
            .contains("not available on the postgres engine"),
        "{errors:?}"
    );
    let errors = prepare("SELECT met_pt FROM events", Engine::Postgres).expect_err("met");
    assert!(
        errors[0].message.contains("unknown column `met_pt`"),
        "{errors:?}"
    );
    let ok = prepare(
        "SELECT run, COUNT(*) AS n FROM events WHERE n_muons >= 2 GROUP BY run",
        Engine::Postgres,
    )
    .expect("catalogue query");
    assert_eq!(
        ok.columns(),
        vec![("run".into(), Type::Int), ("n".into(), Type::Int)]
    );
}

#[test]
fn checking_qualifies_names_expands_stars_and_names_outputs() {
    let c = prepare(
        "SELECT *, pt * 2, COUNT(*) FROM muons GROUP BY event_id",
        Engine::Local,
    );
    assert!(c.is_err(), "ungrouped star");
    let c = prepare("SELECT a.*, SQRT(pt) FROM muons AS a", Engine::Local).expect("ok");
    let names: Vec<&str> = c.columns().iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.starts_with(&["event_id", "idx", "pt"]), "{names:?}");
    assert_eq!(names.last(), Some(&"sqrt"));
    let printed = to_sql(c.query(), Dialect::Alyx);
    assert!(printed.contains(r#"SQRT(a.pt) AS "sqrt""#), "{printed}");
    assert!(
        printed.starts_with("SELECT a.event_id AS event_id, a.idx AS idx"),
        "{printed}"
    );
}

#[test]
fn lowering_expands_physics_and_divides_as_floats() {
    let q = parse("SELECT DELTA_R(eta, phi, 0.5, 1.0) AS dr, n_tracks / 2 AS half FROM events")
        .expect("parse");
    let polars = to_sql(&q, Dialect::Polars);
    assert!(
        !polars.contains("DELTA_R") && polars.contains("FLOOR") && polars.contains("SQRT"),
        "{polars}"
    );
    assert!(
        polars.contains("n_tracks / CAST(2 AS DOUBLE PRECISION)"),
        "{polars}"
    );
    let spark = to_sql(&q, Dialect::Spark);
    assert!(spark.contains("CAST(2 AS DOUBLE)"), "{spark}");
    let alyx = to_sql(&q, Dialect::Alyx);
    assert!(alyx.contains("DELTA_R(eta, phi, 0.5, 1.0)"), "{alyx}");
    // Identifiers that need quoting get each engine's quotes.
    let q = parse(r#"SELECT "My Col" FROM "select""#).expect("parse");
    assert_eq!(to_sql(&q, Dialect::Spark), "SELECT `My Col` FROM `select`");
    assert_eq!(
        to_sql(&q, Dialect::Postgres),
        r#"SELECT "My Col" FROM "select""#
    );
}

#[test]
fn histogram_plan_bins_like_the_histogram_type() {
    use alyx_core::histogram::Binning;
    let c = prepare("SELECT pt FROM muons", Engine::Local).expect("ok");
    let q = plan::histogram(
        &c,
        "pt",
        None,
        &Binning::Fixed {
            bins: 10,
            lo: 0.0,
            hi: 50.0,
        },
    )
    .expect("plan");
    let sql = to_sql(q.query(), Dialect::Alyx);
    assert!(sql.contains("GROUP BY bin"), "{sql}");
    assert!(
        plan::histogram(
            &c,
            "eta",
            None,
            &Binning::Fixed {
                bins: 10,
                lo: 0.0,
                hi: 1.0
            }
        )
        .is_err()
    );
    let c = prepare("SELECT collection FROM muons", Engine::Local).expect("ok");
    let e = plan::histogram(
        &c,
        "collection",
        None,
        &Binning::Fixed {
            bins: 1,
            lo: 0.0,
            hi: 1.0,
        },
    )
    .expect_err("text");
    assert!(e.message.contains("not a number"), "{e}");
}

/// Every output format carries zeros of both signs, nulls, NaN, infinities and the extremes of
/// f64 through a write and a read back (the table as its readable spelling).
#[test]
fn every_output_format_round_trips_zeros_nulls_and_nan() {
    use super::{OutputFormat, write};
    use polars::prelude::*;

    let floats = [
        Some(0.0),
        Some(-0.0),
        None,
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(1e300),
        Some(5e-324),
        Some(91.1876),
    ];
    let n = floats.len();
    let ints: Vec<Option<i64>> = (0..n as i64).map(|i| (i != 2).then_some(i - 4)).collect();
    let names: Vec<Option<String>> = (0..n).map(|i| (i != 3).then(|| format!("r{i}"))).collect();
    let original = DataFrame::new(
        n,
        vec![
            Column::new("x".into(), floats.to_vec()),
            Column::new("k".into(), ints),
            Column::new("name".into(), names),
        ],
    )
    .expect("frame");
    let same_float = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
        (a, b) => a.is_none() && b.is_none(),
    };
    let check = |format: &str, back: &DataFrame| {
        let x = back
            .column("x")
            .and_then(|c| c.cast(&DataType::Float64))
            .expect("x");
        let x: Vec<Option<f64>> = x.f64().expect("f64").iter().collect();
        assert_eq!(x.len(), n, "{format}");
        for (a, b) in floats.iter().zip(&x) {
            assert!(same_float(*a, *b), "{format}: {a:?} came back as {b:?}");
        }
        let k = back
            .column("k")
            .and_then(|c| c.cast(&DataType::Int64))
            .expect("k");
        assert!(
            k.equals_missing(original.column("k").expect("k")),
            "{format}: {k:?}"
        );
        let name = back.column("name").expect("name");
        assert!(
            name.equals_missing(original.column("name").expect("name")),
            "{format}: {name:?}"
        );
    };

    let written = |format| {
        let mut out = Vec::new();
        write(&mut original.clone(), format, usize::MAX, &mut out).expect("write");
        out
    };
    let csv = written(OutputFormat::Csv);
    let back = CsvReadOptions::default()
        .with_has_header(true)
        .into_reader_with_file_handle(std::io::Cursor::new(csv))
        .finish()
        .expect("csv reads back");
    check("csv", &back);
    // JSON has no NaN or infinity: NaN comes back as null (ALYX's "not measured"), and a
    // result holding an infinity is refused, never written as a null.
    let mut err = Vec::new();
    let refused = write(
        &mut original.clone(),
        OutputFormat::Json,
        usize::MAX,
        &mut err,
    )
    .expect_err("infinities in JSON");
    assert!(refused.to_string().contains("infinite"), "{refused}");
    let finite = original
        .clone()
        .lazy()
        .filter(col("x").is_infinite().not().or(col("x").is_null()))
        .collect()
        .expect("finite rows");
    let mut json = Vec::new();
    write(
        &mut finite.clone(),
        OutputFormat::Json,
        usize::MAX,
        &mut json,
    )
    .expect("json");
    let back = JsonReader::new(std::io::Cursor::new(json))
        .finish()
        .expect("json reads back");
    let x: Vec<Option<f64>> = back
        .column("x")
        .expect("x")
        .f64()
        .expect("f64")
        .iter()
        .collect();
    let want: Vec<Option<f64>> = finite
        .column("x")
        .expect("x")
        .f64()
        .expect("f64")
        .iter()
        .map(|v| v.filter(|v| !v.is_nan()))
        .collect();
    assert_eq!(x.len(), want.len());
    for (a, b) in want.iter().zip(&x) {
        assert!(same_float(*a, *b), "json: {a:?} came back as {b:?}");
    }
    let parquet = written(OutputFormat::Parquet);
    let back = ParquetReader::new(std::io::Cursor::new(parquet))
        .finish()
        .expect("parquet reads back");
    check("parquet", &back);

    let table = String::from_utf8(written(OutputFormat::Table)).expect("utf8");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(2)
        .take(n)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let shown: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        shown,
        [
            "0",
            "0",
            "null",
            "NaN",
            "inf",
            "-inf",
            "1.00000e300",
            "4.94066e-324",
            "91.1876"
        ],
        "{table}"
    );
    assert_eq!(rows[2][1], "null", "{table}");
    assert_eq!(rows[3][2], "null", "{table}");
}

#[test]
fn bracket_chains_are_refused_before_the_parser_backtracks_on_them() {
    // Found by fuzzing (sql_check): sqlparser took 6 s of CPU on these 119 bytes.
    let slow = "EESSEv.EEE.EEv.EEE.EES[ev.EEv.EEE.EEESSEv.EEE.EEv.EEE.EES[Ev.EEv.EEEEEE.EEv.EEE.\
                EES[ev.EEv.EEE.EEES.EES[ES[Ev.E]\0\0\0\0\0\0\0";
    let e = super::parse::condition(slow).expect_err("brackets");
    assert!(e.message.contains("no arrays"), "{e:?}");
    let e = parse(&format!("SELECT run FROM events WHERE {slow}")).expect_err("brackets");
    assert!(e.message.contains("no arrays"), "{e:?}");
    // And 13 s on these 114 bytes: a name of many parts.
    let slow = "$.v.E.EEEv.E.EE7.ECv.E.v.E.EEEv.E.EE7.ECv.E.EEE.ECE.Ev.EcE.E.EEE.ECE.Ev.EcE..EEE.\
                ECE.Ev.EcE.E.EEE.ECE.Ev.EcE.Ev.Ec";
    let e = super::parse::condition(slow).expect_err("a long name");
    assert!(e.message.contains("at most two parts"), "{e:?}");
    // Two-part names and decimals stay fine.
    parse("SELECT m.pt FROM muons AS m WHERE m.pt > 1.5 AND m.eta < 2.4e0").expect("two parts");
}

#[test]
fn huge_and_deep_queries_are_refused_before_parsing() {
    let terms = vec!["1"; 200_000].join(" + ");
    let errors = prepare(&format!("SELECT {terms} AS x"), Engine::Local).expect_err("huge");
    assert!(
        errors[0].message.contains("the most accepted"),
        "{errors:?}"
    );
    let chain = vec!["pt"; 20_000].join(" + ");
    let errors = prepare(&format!("SELECT {chain} FROM muons"), Engine::Local).expect_err("deep");
    assert!(errors[0].message.contains("operators"), "{errors:?}");
    let conditions = vec!["pt > 1"; 2_000].join(" AND ");
    let errors = super::parse::condition(&conditions).expect_err("deep condition");
    assert!(errors.message.contains("operators"), "{errors}");
}

#[test]
fn the_deepest_accepted_query_checks_prints_and_pages_on_a_small_stack() {
    // Every walk of the tree recurses on its depth: the deepest query the limit lets through
    // must get through all of them on a 2 MiB thread (the tokio and std default).
    let n = super::parse::MAX_OPERATORS / 2 - 10;
    let chain = vec!["pt"; n].join(" + ");
    // Parentheses: the SQL parser itself refuses more than a few dozen levels.
    let nested = format!("{}pt{}", "(".repeat(40), ")".repeat(40));
    for (text, columns) in [
        (format!("SELECT {chain} AS s FROM muons"), n),
        (
            format!("SELECT {nested} AS s FROM muons WHERE NOT NOT NOT pt > 1"),
            2,
        ),
    ] {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let checked = prepare(&text, Engine::Local).expect("accepted");
                let page = plan::page(&checked, &plan::Cursor::default(), 10).expect("page");
                let printed = to_sql(page.query(), Dialect::Polars);
                assert!(printed.matches("pt").count() >= columns, "{printed}");
                let json = serde_json::to_string(page.query()).expect("json");
                drop(json);
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
    }
}

#[test]
fn cursors_hold_only_values_of_their_columns_types() {
    let checked = prepare("SELECT event_id, pt FROM muons", Engine::Local).expect("query");
    let cursor = |after: Vec<Expr>| plan::Cursor {
        first_row: 10,
        after: Some(after),
        skip: 0,
    };
    let good = cursor(vec![int(3), Expr::Neg(Box::new(float(1.5)))]);
    plan::page(&checked, &good, 10).expect("a key of values");
    let null = cursor(vec![Expr::Null, Expr::Null]);
    plan::page(&checked, &null, 10).expect("nulls");
    let injected = call("(SELECT 1 FROM pg_sleep(5)) + ABS", vec![int(1)]);
    for bad in [
        cursor(vec![injected, float(1.0)]),
        cursor(vec![Expr::Text("postgres".into()), float(1.0)]),
        cursor(vec![float(1.5), float(1.0)]),
        cursor(vec![int(1), Expr::Bool(true)]),
        cursor(vec![int(1), col("pt")]),
    ] {
        let e = plan::page(&checked, &bad, 10).expect_err("refused");
        assert!(e.message.contains("not a cursor"), "{e}");
    }
}
