//! Two desktops on one alyxd (real PostgreSQL): both edit the same notebook at the same time
//! through the Notebook window's actions, each sees the other's text and cursor, a plot cell
//! goes to the cluster as a job, and both see its histogram when the job ends.

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
    let (mut a, mut b) = (desktop(&url, ada), desktop(&url, bob));

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
    drop((a, b));
    let _ = stop.send(());
    server.await.expect("task").expect("clean stop");
}
