use super::*;
use alyx_core::geometry::DetectorGeometry;
use alyx_sim::generator::{EventGenerator, GeneratorConfig};
use proptest::prelude::*;

fn generated(seed: u64, n: u64) -> Vec<CollisionEvent> {
    EventGenerator::new(GeneratorConfig::pp(seed), DetectorGeometry::alice_barrel()).events(0..n)
}

fn fresh(n: u64) -> (tempfile::TempDir, Dataset, Vec<CollisionEvent>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("pp", "test").expect("create");
    let events = generated(11, n);
    ds.append(&events).expect("append");
    (dir, ds, events)
}

fn chunk_file(ds: &Dataset, table: Table) -> PathBuf {
    ds.dir()
        .join(&ds.manifest().chunks[0].files[table.name()].path)
}

#[test]
fn appended_events_read_back_identical_with_sequential_ids() {
    let (_dir, mut ds, events) = fresh(30);
    let more = generated(12, 5);
    ds.append(&more).expect("second append");
    assert_eq!(ds.manifest().event_count(), 35);
    assert_eq!(ds.manifest().chunks.len(), 2);
    let reopened = Dataset::open(ds.dir()).expect("reopen");
    let back = reopened.read_events(0..100).expect("read");
    assert_eq!(
        back.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        (0..35).collect::<Vec<_>>()
    );
    for ((_, b), e) in back.iter().zip(events.iter().chain(&more)) {
        assert!(b.same_as(e), "event changed in the store");
    }
    assert!(reopened.read_event(31).expect("one").same_as(&more[1]));
    assert!(matches!(
        reopened.read_event(35),
        Err(Error::NoSuchEvent(35))
    ));
    // A range inside one chunk reads only those events.
    let mid = reopened.read_events(10..13).expect("range");
    assert_eq!(
        mid.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [10, 11, 12]
    );
}

#[test]
fn scans_push_filters_down_and_agree_with_the_events() {
    let (_dir, ds, events) = fresh(40);
    let expected = events
        .iter()
        .flat_map(|e| &e.tracks)
        .filter(|t| t.pt() > 1.0)
        .count();
    let df = ds
        .scan(Table::Tracks)
        .expect("scan")
        .filter(col("pt").gt(lit(1.0)))
        .select([col("event_id")])
        .collect()
        .expect("collect");
    assert_eq!(df.height(), expected);
    let hits: usize = events.iter().map(|e| e.hits.len()).sum();
    assert_eq!(ds.manifest().rows(Table::Hits), hits as u64);
}

#[test]
fn a_failed_append_leaves_the_previous_dataset_intact() {
    let (_dir, mut ds, events) = fresh(10);
    // A directory where the new chunk's hits file must go: the append fails part-way, after
    // the `events` and `tracks` files of the new chunk were written.
    let blocker = ds.dir().join("hits/chunk-000002.parquet");
    std::fs::create_dir_all(blocker.join("x")).expect("block");
    let err = ds.append(&generated(13, 5)).expect_err("append must fail");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    std::fs::remove_dir_all(&blocker).expect("unblock");

    let reopened = Dataset::open(ds.dir()).expect("reopen");
    assert_eq!(reopened.manifest().event_count(), 10, "manifest unchanged");
    let back = reopened.read_events(0..100).expect("read");
    assert_eq!(back.len(), 10);
    assert!(back.iter().zip(&events).all(|((_, b), e)| b.same_as(e)));
    let report = reopened.verify();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        report.unreferenced.len(),
        2,
        "the new events and tracks files: {report:?}"
    );
    // The next append succeeds and replaces the orphans.
    ds.append(&generated(14, 2)).expect("append after failure");
    assert_eq!(ds.manifest().event_count(), 12);
    assert!(ds.verify().unreferenced.is_empty());
}

#[test]
fn a_crash_before_the_manifest_rename_changes_nothing() {
    let (_dir, ds, events) = fresh(8);
    // What a writer killed mid-way leaves: a half-written temporary manifest and a new chunk file.
    std::fs::write(ds.dir().join("manifest.tmp-424242"), b"{\"schema_ver").expect("tmp");
    std::fs::write(
        ds.dir().join("events/chunk-000002.parquet"),
        b"PAR1 partial",
    )
    .expect("orphan");
    let reopened = Dataset::open(ds.dir()).expect("reopen");
    let back = reopened.read_events(0..8).expect("read");
    assert!(back.iter().zip(&events).all(|((_, b), e)| b.same_as(e)));
    let report = reopened.verify();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.unreferenced.len(), 1);
}

#[test]
fn altered_truncated_or_missing_files_are_reported_never_read() {
    let (_dir, ds, _) = fresh(12);
    let tracks = chunk_file(&ds, Table::Tracks);
    let mut bytes = std::fs::read(&tracks).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&tracks, &bytes).expect("alter");

    // A fresh process would not have the file in its verified cache: open anew.
    let reopened = Dataset::open(ds.dir()).expect("reopen");
    let err = reopened
        .read_event(0)
        .expect_err("altered file must not be read");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(reopened.scan(Table::Tracks).is_err());

    let hits = chunk_file(&ds, Table::Hits);
    let len = std::fs::metadata(&hits).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&hits)
        .expect("open")
        .set_len(len / 3)
        .expect("truncate");
    std::fs::remove_file(chunk_file(&ds, Table::Muons)).expect("remove");

    let report = reopened.verify();
    let whats: Vec<&str> = report.problems.iter().map(|p| p.what.as_str()).collect();
    assert_eq!(report.problems.len(), 3, "{whats:?}");
    assert!(whats.iter().any(|w| w.starts_with("checksum mismatch")));
    assert!(whats.iter().any(|w| w.starts_with("truncated")));
    assert!(whats.iter().any(|w| *w == "missing"));
}

#[test]
fn a_live_writer_lock_blocks_and_a_stale_one_is_taken_over() {
    let (_dir, mut ds, _) = fresh(3);
    let lock = ds.dir().join(LOCK);
    std::fs::write(&lock, std::process::id().to_string()).expect("lock");
    assert!(matches!(
        ds.append(&generated(1, 1)),
        Err(Error::Locked { .. })
    ));
    // A pid that cannot exist: the writer died.
    std::fs::write(&lock, "4294967294").expect("stale");
    ds.append(&generated(1, 1)).expect("stale lock taken over");
    assert!(!lock.exists(), "lock released");
    assert_eq!(ds.manifest().event_count(), 4);
}

#[test]
fn resolve_finds_the_one_dataset_or_asks_which() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    assert!(Dataset::resolve(dir.path(), None).is_err());
    store.create_dataset("a", "t").expect("a");
    assert_eq!(Dataset::resolve(dir.path(), None).expect("one").name(), "a");
    store.create_dataset("b", "t").expect("b");
    let err = Dataset::resolve(dir.path(), None).expect_err("two");
    assert!(err.to_string().contains("--dataset"), "{err}");
    assert_eq!(
        Dataset::resolve(dir.path(), Some("b"))
            .expect("named")
            .name(),
        "b"
    );
    assert!(store.create_dataset("a", "t").is_err(), "no overwrite");
    assert!(store.create_dataset("../x", "t").is_err());
}

#[test]
fn an_event_breaking_a_rule_is_stored_with_its_reason_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ds = DataStore::open(dir.path())
        .expect("store")
        .create_dataset("f", "t")
        .expect("create");
    let mut events = generated(21, 40);
    let broken = events
        .iter()
        .position(|e| !e.truth.is_empty())
        .expect("an event with a decay");
    events[broken].truth[1].p4.pz += 0.5;
    ds.append(&events).expect("append");
    assert_eq!(ds.manifest().event_count(), 40, "kept");
    assert_eq!(ds.manifest().flagged_count(), 1);
    let flagged = ds
        .scan(Table::Events)
        .expect("scan")
        .filter(col("flags").neq(lit("")))
        .collect()
        .expect("collect");
    assert_eq!(flagged.height(), 1);
    let reason = flagged
        .column("flags")
        .expect("flags")
        .str()
        .expect("str")
        .get(0)
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("four-momentum differs"), "{reason}");
    let back = ds.read_event(broken as u64).expect("read");
    assert!(back.same_as(&events[broken]), "stored as it was, not fixed");
}

#[test]
fn an_empty_dataset_scans_as_empty_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = DataStore::open(dir.path())
        .expect("store")
        .create_dataset("e", "t")
        .expect("e");
    let df = ds
        .scan(Table::Muons)
        .expect("scan")
        .collect()
        .expect("collect");
    assert_eq!(df.height(), 0);
    assert!(df.column("pt").is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn any_generated_batch_round_trips_through_parquet(seed in 0u64..10_000, n in 1u64..6) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ds = DataStore::open(dir.path()).expect("store").create_dataset("p", "t").expect("create");
        let events = generated(seed, n);
        ds.append(&events).expect("append");
        let back = ds.read_events(0..n).expect("read");
        prop_assert_eq!(back.len(), events.len());
        for ((_, b), e) in back.iter().zip(&events) {
            prop_assert!(b.same_as(e));
        }
    }
}

#[test]
fn chunks_written_in_parallel_are_listed_in_event_id_order_whatever_order_they_publish_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("live", "test").expect("create");
    let (a, b) = (generated(21, 4), generated(22, 6));
    // Ids reserved elsewhere: a gets 0..4 as chunk 1, b gets 4..10 as chunk 2; b publishes first.
    let (chunk_a, chunk_b) = std::thread::scope(|s| {
        let wa = s.spawn(|| ds.write_chunk(&a, 0, 1, Some("kafka:t/0@0-3")));
        let wb = s.spawn(|| ds.write_chunk(&b, 4, 2, Some("kafka:t/1@0-5")));
        (
            wa.join().expect("a").expect("a written"),
            wb.join().expect("b").expect("b written"),
        )
    });
    assert_eq!(
        Dataset::open(ds.dir())
            .expect("open")
            .manifest()
            .event_count(),
        0,
        "not listed before publishing"
    );
    ds.publish(chunk_b).expect("publish b");
    ds.publish(chunk_a.clone()).expect("publish a");
    assert!(ds.publish(chunk_a).is_err(), "a chunk is listed once");
    let reopened = Dataset::open(ds.dir()).expect("reopen");
    assert_eq!(
        reopened
            .manifest()
            .chunks
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(reopened.manifest().next_event_id, 10);
    let back = reopened.read_events(0..10).expect("read");
    for ((id, event), original) in back.iter().zip(a.iter().chain(&b)) {
        assert!(event.same_as(original), "event {id} changed");
    }
    assert!(reopened.verify().is_ok());
}

#[test]
fn dataset_names_are_names_never_paths() {
    let (dir, _ds, _) = fresh(3);
    let store = DataStore::open(dir.path()).expect("store");
    let outside = tempfile::tempdir().expect("outside");
    let victim = DataStore::open(outside.path()).expect("victim store");
    victim.create_dataset("secret", "test").expect("victim");
    let absolute = outside.path().join("secret");
    let traversal = format!(
        "../{}/secret",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    for bad in [
        "..",
        "../pp",
        traversal.as_str(),
        absolute.to_str().unwrap(),
        "/etc",
        "a/b",
        "a\\b",
        ".hidden",
        "-rf",
        "",
        "pp\0",
        "x".repeat(MAX_NAME + 1).as_str(),
    ] {
        let e = store.dataset(bad).expect_err(bad);
        assert!(matches!(e, Error::Invalid(_)), "{bad:?}: {e}");
        assert!(store.create_dataset(bad, "x").is_err(), "{bad:?}");
    }
    assert_eq!(store.dataset("pp").expect("pp").name(), "pp");
    let long = "é".repeat(300);
    for stem in [
        "uproot-HZZ",
        "../../etc/passwd",
        ".x",
        "a b/c",
        long.as_str(),
    ] {
        let name = name_from(stem);
        check_name(&name).unwrap_or_else(|e| panic!("{stem:?} → {name:?}: {e}"));
    }
}

#[test]
fn a_manifest_naming_a_file_outside_its_dataset_is_refused() {
    let (_dir, ds, _) = fresh(3);
    let path = ds.dir().join(MANIFEST);
    let text = std::fs::read_to_string(&path).expect("manifest");
    let original = &ds.manifest().chunks[0].files[Table::Events.name()].path;
    for bad in ["../../../etc/passwd", "/etc/passwd", "events/../../x"] {
        std::fs::write(&path, text.replace(original.as_str(), bad)).expect("write");
        let e = Dataset::open(ds.dir()).expect_err(bad);
        assert!(
            e.to_string().contains("leaves the dataset directory"),
            "{e}"
        );
    }
}
