//! alyxctl as a user runs it: real files in, readable output and one-line errors out.

use std::process::{Command, Output};

use alyx_tests::data_file;

fn alyxctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alyxctl"))
        .args(args)
        .output()
        .expect("runs")
}

fn ok(args: &[&str]) -> String {
    let out = alyxctl(args);
    assert!(
        out.status.success(),
        "alyxctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with exactly one line on stderr, starting `error:`.
fn fails(args: &[&str]) -> String {
    let out = alyxctl(args);
    assert!(!out.status.success(), "alyxctl {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn generate_info_query_verify_and_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    let text = ok(&[
        "generate", "--system", "pp", "--events", "300", "--seed", "9", "--out", out,
    ]);
    assert!(text.contains("generated 300 events"), "{text}");

    let info = ok(&["info", out]);
    assert!(info.contains("dataset pp-seed9"), "{info}");
    assert!(info.contains("events:  300"), "{info}");
    assert!(info.contains("pt:f64"), "columns with types: {info}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["info", out, "--format", "json"])).expect("info json");
    assert_eq!(json[0]["events"], 300, "{json}");
    assert_eq!(json[0]["tables"]["events"]["rows"], 300, "{json}");
    assert!(
        json[0]["tables"]["tracks"]["columns"]["pt"].is_string(),
        "{json}"
    );

    let csv = ok(&[
        "query",
        out,
        "--sql",
        "SELECT COUNT(*) AS n FROM events",
        "--format",
        "csv",
    ]);
    assert_eq!(csv.trim(), "n\n300");
    let json = ok(&[
        "query",
        out,
        "--sql",
        "SELECT event_id FROM events ORDER BY event_id LIMIT 2",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        rows,
        serde_json::json!([{ "event_id": 0 }, { "event_id": 1 }])
    );
    let table = ok(&[
        "query",
        out,
        "--sql",
        "SELECT run, COUNT(*) AS n FROM events GROUP BY run",
    ]);
    assert!(table.contains("545100") && table.contains("300"), "{table}");

    let verify = ok(&["verify", out]);
    assert!(verify.contains("pp-seed9: ok"), "{verify}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["verify", out, "--format", "json"])).expect("verify json");
    assert_eq!(
        (&json[0]["name"], &json[0]["ok"]),
        (&"pp-seed9".into(), &true.into())
    );

    let phoenix = dir.path().join("event.json");
    ok(&[
        "export-phoenix",
        out,
        "--event",
        "3",
        "--out",
        phoenix.to_str().expect("utf8"),
    ]);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&phoenix).expect("file")).expect("json");
    let (_, event) = doc
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("one event");
    assert_eq!(event["event number"], 3);
    assert!(
        event["Hits"]["TPC"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    );
    // Phoenix units: mm. TPC hits sit between 852 and 2457 mm.
    let r = |p: &serde_json::Value| p[0].as_f64().expect("x").hypot(p[1].as_f64().expect("y"));
    assert!(
        event["Hits"]["TPC"]
            .as_array()
            .expect("hits")
            .iter()
            .all(|h| (850.0..2460.0).contains(&r(&h["pos"])))
    );
}

#[test]
fn import_hzz_and_count_opposite_charge_dimuons() {
    let Some(hzz) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    let text = ok(&[
        "import",
        hzz.to_str().expect("utf8"),
        "--out",
        out,
        "--show-mapping",
    ]);
    assert!(text.contains("imported 2421 events"), "{text}");
    assert!(
        text.contains("muons: count ← NMuon, px ← Muon_Px"),
        "{text}"
    );
    let n = ok(&[
        "query",
        out,
        "--format",
        "csv",
        "--sql",
        "SELECT COUNT(*) AS n FROM muons a JOIN muons b ON a.event_id = b.event_id JOIN events e ON e.event_id = a.event_id \
         WHERE e.n_muons = 2 AND a.idx = 0 AND b.idx = 1 AND a.charge * b.charge < 0",
    ]);
    assert_eq!(n.trim(), "n\n1364");
}

#[test]
fn histogram_of_the_hzz_dimuon_mass_shows_the_z_peak() {
    let Some(hzz) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    ok(&["import", hzz.to_str().expect("utf8"), "--out", out]);
    let csv = ok(&[
        "query",
        out,
        "--format",
        "csv",
        "--histogram",
        "m:40:0:200",
        "--sql",
        "SELECT SQRT(POW(a.e + b.e, 2) - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2)) AS m \
         FROM muons a JOIN muons b ON a.event_id = b.event_id WHERE a.idx < b.idx AND a.charge * b.charge < 0",
    ]);
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().expect("number")).collect())
        .collect();
    assert_eq!(rows.len(), 40);
    let peak = rows
        .iter()
        .max_by(|a, b| a[2].total_cmp(&b[2]))
        .expect("bins");
    assert!(
        peak[0] <= 91.19 && 91.19 < peak[1] || (85.0..=95.0).contains(&peak[0]),
        "Z peak bin {peak:?}"
    );
    // Errors are √N for unit weights.
    assert!(
        rows.iter().all(|r| (r[3] - r[4].sqrt()).abs() < 1e-9),
        "{rows:?}"
    );
    let err = fails(&[
        "query",
        out,
        "--sql",
        "SELECT pt FROM muons",
        "--histogram",
        "pt:10:5",
    ]);
    assert!(err.contains("BINS:LO:HI"), "{err}");
}

#[test]
fn zeros_nulls_and_empty_bins_print_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    ok(&["generate", "--events", "20", "--out", out]);
    let sql = "SELECT 0.0 AS zero, -0.0 AS negative_zero, CAST(NULL AS DOUBLE) AS nothing, \
               SQRT(-1.0) AS nan, 1e300 AS huge, 5e-324 AS tiny FROM events LIMIT 2";
    let table = ok(&["query", out, "--sql", sql]);
    let row = table.lines().nth(2).expect("a row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["0", "0", "null", "NaN", "1.00000e300", "4.94066e-324"],
        "{table}"
    );
    for format in ["csv", "json"] {
        let text = ok(&["query", out, "--sql", sql, "--format", format]);
        assert!(
            text.contains("1e300") || text.contains("1e+300"),
            "{format}: {text}"
        );
    }
    // An empty bin is an exact zero in every column of a histogram's table.
    let table = ok(&[
        "query",
        out,
        "--sql",
        "SELECT pt FROM tracks",
        "--histogram",
        "pt:10:1000:2000",
    ]);
    assert_eq!(
        table.lines().filter(|l| l.ends_with(" 0")).count(),
        10,
        "{table}"
    );
}

#[test]
fn user_mistakes_get_one_clear_line_and_a_failure_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    let err = fails(&["import", "/no/such/file.root", "--out", out]);
    assert!(err.contains("no such file"), "{err}");
    let err = fails(&["info", "/no/such/dir"]);
    assert!(err.contains("no such directory"), "{err}");
    ok(&["generate", "--events", "20", "--out", out]);
    let err = fails(&["query", out, "--sql", "SELECT nonsense_column FROM events"]);
    assert!(
        err.contains("nonsense_column"),
        "names the unknown column: {err}"
    );
    let err = fails(&["query", out, "--sql", "SELEC * FROM events"]);
    assert!(err.contains("invalid query"), "{err}");
    // A closed choice is checked by the parser, which lists the choices (and completes them).
    let out_xenon = alyxctl(&[
        "generate", "--system", "xenon", "--events", "1", "--out", out,
    ]);
    let err = String::from_utf8_lossy(&out_xenon.stderr);
    assert!(!out_xenon.status.success());
    assert!(
        err.starts_with("error: invalid value 'xenon'") && err.contains("pp, pbpb, nano"),
        "{err}"
    );
    let err = fails(&[
        "generate", "--events", "1", "--out", out, "--rates", "k0s=-1",
    ]);
    assert!(err.contains("non-negative"), "{err}");
    let err = fails(&[
        "export-phoenix",
        out,
        "--event",
        "999",
        "--out",
        "/tmp/x.json",
    ]);
    assert!(err.contains("no event with id 999"), "{err}");
}

#[test]
fn verify_reports_an_altered_file_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    ok(&["generate", "--events", "50", "--out", out, "--name", "d"]);
    let file = dir.path().join("d/tracks/chunk-000001.parquet");
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes.len() / 2;
    bytes[at] = bytes[at].wrapping_add(1);
    std::fs::write(&file, bytes).expect("write");
    let out_verify = alyxctl(&["verify", out]);
    assert!(!out_verify.status.success());
    let stdout = String::from_utf8_lossy(&out_verify.stdout);
    assert!(
        stdout.contains("DAMAGED") && stdout.contains("checksum mismatch"),
        "{stdout}"
    );
    let err = fails(&["query", out, "--sql", "SELECT COUNT(*) FROM tracks"]);
    assert!(err.contains("checksum mismatch"), "{err}");
    let as_json = alyxctl(&["verify", out, "--format", "json"]);
    assert!(!as_json.status.success(), "damage fails in JSON too");
    let report: serde_json::Value = serde_json::from_slice(&as_json.stdout).expect("json");
    assert_eq!(report[0]["ok"], false);
    assert!(
        report[0]["problems"][0]["what"]
            .as_str()
            .is_some_and(|w| w.contains("checksum mismatch")),
        "{report}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_binary() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("_alyxctl"), "{bash}");
    assert!(
        bash.contains("pp pbpb nano"),
        "closed choices complete: {bash}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    ok(&["man", dir.path().to_str().expect("utf8")]);
    let page = std::fs::read_to_string(dir.path().join("alyxctl.1")).expect("alyxctl.1");
    assert!(
        page.starts_with(".ie") || page.contains(".TH alyxctl"),
        "{page}"
    );
    assert!(dir.path().join("alyxctl-query.1").is_file());
}

#[test]
fn demo_makes_the_embedded_default_and_finds_the_peaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = ok(&["demo", "--data-dir", dir.path().to_str().expect("utf8")]);
    assert!(
        text.contains("demo-pp") && text.contains("demo-pbpb"),
        "{text}"
    );
    assert!(
        text.contains("K0s → π+π−") && text.contains("PDG 0.4976"),
        "{text}"
    );
    // A second run reuses the data.
    let again = ok(&["demo", "--data-dir", dir.path().to_str().expect("utf8")]);
    assert!(again.contains("demo-pp"), "{again}");
}
