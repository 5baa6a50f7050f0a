//! Notebooks edited together through alyxd (real gRPC clients, PostgreSQL): two people typing in
//! the same cell see each other's text and cursors; an offline client's edits merge when it
//! reconnects; alyxd restarted mid-session loses nothing; a stranger gets PERMISSION_DENIED and a
//! reader cannot write; two alyxd instances on one database fan changes and presence out.

mod support;

use std::time::Duration;

use alyx_analysis::notebook::{CellKind, Notebook};
use alyx_backend::auth::Role;
use alyx_client::collab::Session;
use alyx_client::{Client, ClientError, v1};
use sqlx::PgPool;
use support::*;

// Generous: under a full test run two cores serve alyxd, PostgreSQL, Spark and other tests.
const WAIT: Duration = Duration::from_secs(60);

fn client(server: &Server, token: &str) -> Client {
    Client::new(&server.grpc, token).expect("url")
}

/// The case of a failed call (what the user is told), or "ok".
fn case<T>(r: Result<T, ClientError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(ClientError::PermissionDenied(_)) => "permission denied",
        Err(ClientError::NotFound(_)) => "not found",
        Err(ClientError::Unauthenticated { .. }) => "unauthenticated",
        Err(_) => "other",
    }
}

async fn create(server: &Server, token: &str, title: &str) -> u64 {
    client(server, token)
        .create_notebook(title)
        .await
        .expect("create")
        .id
}

async fn share(
    server: &Server,
    token: &str,
    id: u64,
    user: &str,
    access: v1::Access,
) -> Result<v1::NotebookInfo, ClientError> {
    client(server, token).share(id, user, access).await
}

async fn open(server: &Server, token: &str, id: u64, user: &str) -> Session {
    let mut s = client(server, token)
        .open_notebook(id, Notebook::empty(user))
        .await
        .expect("open");
    assert!(
        s.until(WAIT, |s| !s.notebook.title().is_empty())
            .await
            .expect("first sync"),
        "the notebook arrived"
    );
    s
}

/// The server's copy, through GetNotebook.
async fn server_copy(server: &Server, token: &str, id: u64) -> Notebook {
    let (_, document) = client(server, token).notebook(id).await.expect("get");
    Notebook::load(&document, "test").expect("a notebook")
}

fn source(nb: &Notebook, cell: &str) -> String {
    nb.cell(cell).map(|c| c.source).unwrap_or_default()
}

#[sqlx::test(migrations = false)]
async fn two_people_edit_one_notebook_and_see_each_others_text_and_cursors(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let bob = token(&pool, "bob", Role::Physicist).await;
    let id = create(&server, &ada, "Z analysis").await;
    share(&server, &ada, id, "bob", v1::Access::Write)
        .await
        .expect("share");

    let mut a = open(&server, &ada, id, "ada").await;
    let mut b = open(&server, &bob, id, "bob").await;
    assert_eq!(b.notebook.title(), "Z analysis");
    assert_eq!(b.info.access, v1::Access::Write as i32);

    let cell = a
        .notebook
        .insert_cell(0, CellKind::Markdown, "The Z peak is at 91 GeV.")
        .expect("cell");
    a.flush().await.expect("flush");
    assert!(
        b.until(WAIT, |s| source(&s.notebook, &cell)
            == "The Z peak is at 91 GeV.")
            .await
            .expect("sync")
    );

    // Both type in the same sentence at the same time.
    a.notebook
        .set_source(&cell, "The Z peak is at 91.19 GeV.")
        .expect("ada types");
    b.notebook
        .set_source(&cell, "The dimuon Z peak is at 91 GeV.")
        .expect("bob types");
    a.flush().await.expect("flush");
    b.flush().await.expect("flush");
    let merged = "The dimuon Z peak is at 91.19 GeV.";
    assert!(
        a.until(WAIT, |s| source(&s.notebook, &cell) == merged)
            .await
            .expect("a"),
        "{}",
        source(&a.notebook, &cell)
    );
    assert!(
        b.until(WAIT, |s| source(&s.notebook, &cell) == merged)
            .await
            .expect("b"),
        "{}",
        source(&b.notebook, &cell)
    );

    // Ada's cursor, after "dimuon", reaches Bob with her name and colour; it moves with the text.
    let cursor = a.notebook.cursor(&cell, 10).expect("cursor");
    a.send_presence(v1::Presence {
        cell: cell.clone(),
        cursor: cursor.clone(),
        dataset: "nano".into(),
        event_id: 42,
        has_event: true,
        ..Default::default()
    })
    .await
    .expect("presence");
    assert!(
        b.until(WAIT, |s| s.presence.values().any(|p| p.user == "ada"))
            .await
            .expect("presence")
    );
    let p = b
        .presence
        .values()
        .find(|p| p.user == "ada")
        .expect("ada")
        .clone();
    assert_eq!(
        (p.cell.as_str(), p.event_id, p.colour.len()),
        (cell.as_str(), 42, 7)
    );
    b.notebook
        .splice_source(&cell, 0, 0, "Look: ")
        .expect("bob types before it");
    assert_eq!(b.notebook.cursor_position(&cell, &p.cursor), Some(16));

    // Ada leaves: Bob sees it.
    let session = p.session.clone();
    drop(a);
    assert!(
        b.until(WAIT, |s| !s.presence.contains_key(&session))
            .await
            .expect("left")
    );

    // Bob's client writes a change that says Ada made it. The document keeps the claim (the
    // change is signed by its hash, not rewritten), but alyxd's history names who sent it.
    let mut forger = open(&server, &bob, id, "ada").await;
    forger
        .notebook
        .insert_cell(0, CellKind::Markdown, "Ada agrees the peak is at 95 GeV.")
        .expect("forged cell");
    forger.flush().await.expect("flush");
    let forged = |v: &alyx_analysis::notebook::Version| v.what.starts_with("added");
    let claimed = forger.notebook.history();
    assert_eq!(
        claimed
            .iter()
            .rev()
            .find(|v| forged(v))
            .map(|v| v.author.as_str()),
        Some("ada")
    );
    let attested = eventually(WAIT, "the forged change stored", || async {
        let h = client(&server, &ada).notebook_history(id).await.ok()?;
        (h.iter().filter(|v| forged(v)).count() == 2).then_some(h)
    })
    .await;
    let last = attested
        .iter()
        .rev()
        .find(|v| forged(v))
        .expect("the forged change");
    assert_eq!(
        (last.author.as_str(), last.attested),
        ("bob", true),
        "{last:?}"
    );
    assert!(attested.iter().all(|v| v.attested), "{attested:?}");
    assert_eq!(
        attested.first().map(|v| v.author.as_str()),
        Some("ada"),
        "the creation"
    );
    let stranger = token(&pool, "eve", Role::Physicist).await;
    assert_eq!(
        case(client(&server, &stranger).notebook_history(id).await),
        "permission denied"
    );
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn offline_edits_merge_on_reconnect_and_a_restart_loses_nothing(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let bob = token(&pool, "bob", Role::Physicist).await;
    let id = create(&server, &ada, "Offline").await;
    share(&server, &ada, id, "bob", v1::Access::Write)
        .await
        .expect("share");
    let mut a = open(&server, &ada, id, "ada").await;
    let cell = a
        .notebook
        .insert_cell(0, CellKind::Query, "SELECT pt FROM muons")
        .expect("cell");
    a.flush().await.expect("flush");
    let mut b = open(&server, &bob, id, "bob").await;
    assert!(
        b.until(WAIT, |s| source(&s.notebook, &cell)
            == "SELECT pt FROM muons")
            .await
            .expect("sync")
    );

    // Bob goes offline and keeps working; Ada goes on online.
    let mut offline = b.into_notebook();
    offline
        .set_source(&cell, "SELECT pt, eta FROM muons")
        .expect("bob offline");
    let notes = offline
        .insert_cell(1, CellKind::Markdown, "written on the train")
        .expect("cell");
    a.notebook
        .set_source(&cell, "SELECT pt FROM muons WHERE pt > 20")
        .expect("ada");
    a.flush().await.expect("flush");
    // Ada's edit is stored before Bob is back.
    let started = std::time::Instant::now();
    while source(&server_copy(&server, &ada, id).await, &cell)
        != "SELECT pt FROM muons WHERE pt > 20"
    {
        assert!(started.elapsed() < WAIT, "Ada's edit was not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bob reconnects with his copy: the two merge.
    let mut b = client(&server, &bob)
        .open_notebook(id, offline)
        .await
        .expect("reconnect");
    let merged = "SELECT pt, eta FROM muons WHERE pt > 20";
    assert!(
        b.until(WAIT, |s| source(&s.notebook, &cell) == merged)
            .await
            .expect("b"),
        "{}",
        source(&b.notebook, &cell)
    );
    // Bob may have seen the merge before his client sent its own changes: send them now.
    b.flush().await.expect("flush");
    assert!(
        a.until(WAIT, |s| source(&s.notebook, &notes)
            == "written on the train"
            && source(&s.notebook, &cell) == merged)
            .await
            .expect("a")
    );
    drop((a, b));

    // alyxd restarts: everything is still there, from PostgreSQL.
    server.stop().await;
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let a = open(&server, &ada, id, "ada").await;
    let mut a = a;
    assert!(
        a.until(WAIT, |s| s.notebook.cells().len() == 2)
            .await
            .expect("reloaded")
    );
    assert_eq!(source(&a.notebook, &cell), merged);
    assert_eq!(source(&a.notebook, &notes), "written on the train");
    let history = a.notebook.history();
    assert!(history.iter().any(|v| v.author == "bob"), "{history:?}");
    assert!(history.iter().any(|v| v.author == "ada"), "{history:?}");
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn strangers_cannot_read_and_readers_cannot_write(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let bob = token(&pool, "bob", Role::Physicist).await;
    let eve = token(&pool, "eve", Role::Operator).await;
    let id = create(&server, &ada, "Private").await;

    let denied = client(&server, &eve)
        .open_notebook(id, Notebook::empty("eve"))
        .await;
    assert_eq!(case(denied), "permission denied");
    let get = client(&server, &eve).notebook(id).await;
    assert_eq!(case(get), "permission denied");
    let list = client(&server, &eve).notebooks().await.expect("list");
    assert!(list.is_empty());
    // Only the owner shares; unknown users and ids are reported.
    assert_eq!(
        share(&server, &bob, id, "bob", v1::Access::Write)
            .await
            .err()
            .map(|e| case::<()>(Err(e))),
        Some("permission denied")
    );
    assert_eq!(
        share(&server, &ada, id, "nobody", v1::Access::Read)
            .await
            .err()
            .map(|e| case::<()>(Err(e))),
        Some("not found")
    );
    let missing = client(&server, &ada)
        .open_notebook(999, Notebook::empty("ada"))
        .await;
    assert_eq!(case(missing), "not found");
    let unauthenticated = client(&server, "wrong")
        .open_notebook(id, Notebook::empty("x"))
        .await;
    assert_eq!(case(unauthenticated), "unauthenticated");

    // Bob may read: he gets the notebook, and his changes are refused.
    let info = share(&server, &ada, id, "bob", v1::Access::Read)
        .await
        .expect("share");
    assert_eq!(
        info.grants,
        vec![v1::Grant {
            user: "bob".into(),
            access: v1::Access::Read as i32
        }]
    );
    let mut b = open(&server, &bob, id, "bob").await;
    assert_eq!(b.notebook.title(), "Private");
    b.notebook
        .insert_cell(0, CellKind::Markdown, "vandalism")
        .expect("local edit");
    let refused = b.until(WAIT, |_| false).await;
    assert_eq!(case(refused), "permission denied");
    let mut a = open(&server, &ada, id, "ada").await;
    assert!(
        !a.until(Duration::from_millis(500), |s| !s
            .notebook
            .cells()
            .is_empty())
            .await
            .expect("a")
    );

    // Access taken away: Bob cannot open it any more.
    share(&server, &ada, id, "bob", v1::Access::None)
        .await
        .expect("unshare");
    let gone = client(&server, &bob)
        .open_notebook(id, Notebook::empty("bob"))
        .await;
    assert_eq!(case(gone), "permission denied");
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn two_alyxd_instances_share_changes_and_presence(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut one = config(&pool, dir.path(), None, "unused");
    one.ingest.instance = Some("one".into());
    let mut two = config(&pool, dir.path(), None, "unused");
    two.ingest.instance = Some("two".into());
    let (one, two) = (Server::start(one).await, Server::start(two).await);
    let ada = token(&pool, "ada", Role::Physicist).await;
    let bob = token(&pool, "bob", Role::Physicist).await;
    let id = create(&one, &ada, "Across instances").await;
    share(&one, &ada, id, "bob", v1::Access::Write)
        .await
        .expect("share");
    let mut a = open(&one, &ada, id, "ada").await;
    let mut b = open(&two, &bob, id, "bob").await;
    let cell = a
        .notebook
        .insert_cell(0, CellKind::Plot, "SELECT mass FROM dimuons")
        .expect("cell");
    a.flush().await.expect("flush");
    assert!(
        b.until(WAIT, |s| source(&s.notebook, &cell)
            == "SELECT mass FROM dimuons")
            .await
            .expect("b")
    );
    b.notebook
        .splice_source(&cell, 0, 0, "-- histogram mass:60:60:120\n")
        .expect("bob");
    b.flush().await.expect("flush");
    assert!(
        a.until(WAIT, |s| source(&s.notebook, &cell)
            .starts_with("-- histogram"))
            .await
            .expect("a")
    );
    b.send_presence(v1::Presence {
        cell: cell.clone(),
        ..Default::default()
    })
    .await
    .expect("presence");
    assert!(
        a.until(WAIT, |s| s.presence.values().any(|p| p.user == "bob"))
            .await
            .expect("presence")
    );
    drop((a, b));
    one.stop().await;
    two.stop().await;
}
