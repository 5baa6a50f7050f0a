//! Two desktops on one alyxd (real PostgreSQL): both edit the same notebook at the same time
//! through the Notebook window's actions, each sees the other's text and cursor, a plot cell
//! goes to the cluster as a job, and both see its histogram when the job ends. A colleague's
//! client that writes hostile outputs and presence crashes neither desktop.

use std::time::{Duration, Instant};

use alyx_analysis::notebook::{CellKind, CellOutput};
use alyx_backend::auth::{self, Role};
use alyx_backend::collab::store::{Access, share};
use alyx_core::DetectorGeometry;
use alyx_desktop::BackendDataset;
use alyx_desktop::display::Display;
use alyx_desktop::notebooks::{NotebookAction, NotebookPlugin, NotebookState};
use alyx_desktop::remote::{Connection, Remote, RemotePlugin};
use alyx_sim::generator::{EventGenerator, GeneratorConfig};
use alyx_sim::nano::{self, NanoConfig};
use alyx_store::DataStore;
use bevy::prelude::*;
use sqlx::PgPool;

fn desktop(url: &str, token: String) -> App {
    let remote = Remote::connect(&Connection {
        url: url.to_owned(),
        token,
    })
    .expect("client");
    let blank =
        EventGenerator::new(GeneratorConfig::pp(1), DetectorGeometry::alice_barrel()).event(0);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(Display::new(0, blank))
        .insert_resource(remote)
        // What the Backend window would have chosen: cells sent as jobs run over it.
        .insert_resource(BackendDataset("nano".into()))
        .add_plugins((RemotePlugin, NotebookPlugin));
    app
}

/// Runs both apps (yielding to the in-process alyxd) until `done` holds.
async fn until(apps: &mut [&mut App], what: &str, done: impl Fn(&[&mut App]) -> bool) {
    let started = Instant::now();
    while !done(apps) {
        for app in apps.iter_mut() {
            app.update();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn state(app: &App) -> &NotebookState {
    app.world().resource::<NotebookState>()
}

fn push(app: &mut App, action: NotebookAction) {
    app.world_mut().resource_mut::<NotebookState>().push(action);
}

#[sqlx::test(migrations = false)]
async fn two_desktops_edit_one_notebook_and_both_see_a_cluster_cells_result(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    for part in nano::events(&NanoConfig::new(4), 0..2000).chunks(500) {
        ds.append(part).expect("append");
    }
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let base = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(b, _)| b)
        .to_owned();
    let mut config = alyx_backend::Config::default();
    config.database_url = format!(
        "{base}/{}",
        pool.connect_options().get_database().expect("db name")
    );
    config.database_pool = 4;
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.metrics_listen = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = dir.path().to_path_buf();
    config.ingest.enabled = false;
    let (grpc, metrics) = alyx_backend::server::bind(&config).await.expect("bind");
    let url = format!("http://{}", grpc.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(alyx_backend::server::run(
        config,
        grpc,
        metrics,
        async move {
            let _ = stopped.await;
        },
    ));
    let ada = loop {
        if let Ok(t) = auth::create_user(&pool, "ada", Role::Physicist).await {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bob = auth::create_user(&pool, "bob", Role::Physicist)
        .await
        .expect("bob");
    let (mut a, mut b) = (desktop(&url, ada), desktop(&url, bob.clone()));

    // Ada makes a notebook in her window and shares it with Bob, who opens it in his.
    push(&mut a, NotebookAction::New("Z study".into()));
    until(&mut [&mut a], "Ada's notebook opens", |apps| {
        state(&apps[0]).remote.is_some()
    })
    .await;
    let id = state(&a).remote.expect("id");
    share(&pool, id as i64, "ada", "bob", Access::Write)
        .await
        .expect("share");
    push(&mut b, NotebookAction::OpenRemote(id));
    until(&mut [&mut b], "Bob's copy opens", |apps| {
        state(&apps[0]).remote == Some(id)
    })
    .await;

    // Both type at once: Ada adds a plot cell, Bob a note; each sees the other's.
    push(&mut a, NotebookAction::Add(0, CellKind::Plot));
    push(&mut b, NotebookAction::Add(0, CellKind::Markdown));
    let cells = |app: &App| {
        state(app)
            .notebook
            .as_ref()
            .map(|nb| nb.cells())
            .unwrap_or_default()
    };
    until(&mut [&mut a, &mut b], "both cells everywhere", |apps| {
        cells(&apps[0]).len() == 2 && cells(&apps[1]).len() == 2
    })
    .await;
    let plot = cells(&a)
        .into_iter()
        .find(|c| c.kind == CellKind::Plot)
        .expect("plot")
        .id;
    let note = cells(&b)
        .into_iter()
        .find(|c| c.kind == CellKind::Markdown)
        .expect("note")
        .id;
    push(
        &mut b,
        NotebookAction::Edit(note.clone(), "MET of all events".into()),
    );
    push(
        &mut a,
        NotebookAction::Edit(
            plot.clone(),
            "-- histogram met_pt:40:0:200\nSELECT met_pt FROM events".into(),
        ),
    );
    until(&mut [&mut a, &mut b], "both edits everywhere", |apps| {
        apps.iter().all(|app| {
            let c = cells(app);
            c.iter().any(|c| c.source == "MET of all events")
                && c.iter()
                    .any(|c| c.source.starts_with("-- histogram met_pt:40"))
        })
    })
    .await;

    // Ada's cursor shows in Bob's window, in the cell and at the character she is on.
    push(&mut a, NotebookAction::Cursor(plot.clone(), 3));
    until(&mut [&mut a, &mut b], "Ada's cursor at Bob's", |apps| {
        state(&apps[1])
            .peers
            .iter()
            .any(|p| p.user == "ada" && p.cell == plot && p.at == Some(3))
    })
    .await;

    // The plot cell runs on the cluster (no local data here): both see its histogram.
    push(&mut a, NotebookAction::Run(plot.clone()));
    until(&mut [&mut a, &mut b], "the job's histogram everywhere", |apps| {
        apps.iter().all(|app| {
            cells(app).iter().any(|c| {
                matches!(&c.output, Some(CellOutput::Histograms(hs))
                    if hs[0].1.entries.iter().sum::<u64>() as f64 + hs[0].1.overflow + hs[0].1.underflow == 2000.0)
            })
        })
    })
    .await;
    let engine = cells(&b)
        .into_iter()
        .find(|c| c.id == plot)
        .expect("plot")
        .engine;
    assert_eq!(engine, "cluster");

    // Bob's own client (not a desktop) writes what no desktop would: outputs that lie about
    // their sizes, a cell whose source is not text, an order naming cells twice or not at all,
    // and presence with a camera of 300 NaNs. Ada's window shows errors, not a crash.
    let raw = alyx_client::Client::new(&url, &bob).expect("client");
    let (_, bytes) = raw.notebook(id).await.expect("document");
    let mut doc = automerge::AutoCommit::load(&bytes).expect("automerge");
    hostile(&mut doc, &plot);
    let forged = alyx_analysis::notebook::Notebook::load(&doc.save(), "bob").expect("loads");
    let mut session = raw.open_notebook(id, forged).await.expect("open");
    // The sync protocol takes a round or two before the changes go: until alyxd has them.
    let started = Instant::now();
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(200), session.next()).await;
        let (_, stored) = raw.notebook(id).await.expect("document");
        let stored = alyx_analysis::notebook::Notebook::load(&stored, "test").expect("loads");
        if stored.order().iter().any(|c| c == "evil") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "alyxd took the changes"
        );
    }
    session
        .send_presence(alyx_client::v1::Presence {
            cell: "ghost".into(),
            cursor: "\u{0}".repeat(500),
            camera: vec![f32::NAN; 300],
            cuts: "{".repeat(1000),
            has_event: true,
            event_id: u64::MAX,
            ..Default::default()
        })
        .await
        .expect("presence");
    until(&mut [&mut a, &mut b], "the hostile output everywhere", |apps| {
        apps.iter().all(|app| {
            cells(app).iter().any(|c| {
                c.id == plot
                    && matches!(&c.output, Some(CellOutput::Error(m)) if m.contains("cannot be shown"))
            })
        })
    })
    .await;
    for app in [&mut a, &mut b] {
        for _ in 0..20 {
            app.update();
        }
        let mut state = app.world_mut().resource_mut::<NotebookState>();
        let ctx = bevy_egui::egui::Context::default();
        ctx.run_ui(bevy_egui::egui::RawInput::default(), |ui| {
            alyx_desktop::notebooks::notebook_panel(ui, &mut state, true);
        })
        .drop_without_applying_deltas();
    }
    drop(session);
    drop((a, b));
    let _ = stop.send(());
    server.await.expect("task").expect("clean stop");
}

/// What a hostile client writes into a notebook: a histogram output of 10¹² bins over three
/// numbers in `plot`, and a cell "evil" listed twice (and a "ghost" listed, never made) whose
/// source is a plain string and whose output is 100,000 open brackets.
fn hostile(doc: &mut automerge::AutoCommit, plot: &str) {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let object = |doc: &automerge::AutoCommit, parent: &automerge::ObjId, key: &str| match doc
        .get(parent, key)
        .expect("get")
    {
        Some((automerge::Value::Object(_), id)) => id,
        _ => panic!("no {key}"),
    };
    let cells = object(doc, &ROOT, "cells");
    let order = object(doc, &ROOT, "order");
    let cell = object(doc, &cells, plot);
    doc.put(
        &cell,
        "output",
        r#"{"histograms":[["met_pt",{"binning":{"Fixed":{"bins":1000000000000,"lo":0.0,"hi":3.0}},"sum_w":[1.0,1.0,1.0],"sum_w2":[1.0,1.0,1.0],"entries":[1,1,1],"underflow":0,"overflow":0,"missing":0}]]}"#,
    )
    .expect("output");
    let evil = doc.put_object(&cells, "evil", ObjType::Map).expect("evil");
    doc.put(&evil, "kind", "plot").expect("kind");
    doc.put(&evil, "source", "SELECT 1").expect("source");
    doc.put(&evil, "output", "[".repeat(100_000))
        .expect("output");
    for (i, id) in ["evil", "ghost", "evil"].into_iter().enumerate() {
        doc.insert(&order, i, id).expect("order");
    }
    doc.commit();
}
