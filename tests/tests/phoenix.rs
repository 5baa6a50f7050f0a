//! Phoenix event-data JSON: import of the HSF example files (ATLAS, mm and MeV), export, and
//! the round trip.

use alyx_core::DetectorGeometry;
use alyx_core::model::Detector;
use alyx_core::validate::{Rule, validate};
use alyx_import::phoenix;
use alyx_sim::generator::{EventGenerator, GeneratorConfig};
use alyx_tests::data_file;

#[test]
fn atlas_event_dump_imports_with_units_converted() {
    let Some(path) = data_file("phoenix/ATLAS_atlaseventdump2.json") else {
        return;
    };
    let (events, _report) = phoenix::import(&path).expect("import");
    assert_eq!(events.len(), 4);
    let full = events
        .iter()
        .find(|e| e.header.event_number == 234)
        .expect("event 234");
    assert_eq!(full.tracks.len(), 151);
    assert_eq!(full.clusters.len(), 13);
    assert_eq!(full.jets.len(), 1);
    assert_eq!(full.muons.len(), 2);
    assert_eq!(full.hits.len(), 5);
    // Jet: 5943.56 MeV → 5.94356 GeV, cone 0.4.
    let jet = &full.jets[0];
    assert!(
        (jet.e_gev - 5.94356).abs() < 1e-9
            && jet.cone_r == 0.4
            && jet.collection == "AntiKt4EMTopoJets"
    );
    // The combined muon track: q/p = −2.3769e-05 /MeV → p = 42.07 GeV, negative.
    let mu_track = full
        .tracks
        .iter()
        .find(|t| t.collection == "CombinedMuonTrackParticles")
        .expect("muon track");
    assert_eq!(mu_track.charge, -1);
    let p = mu_track.momentum.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((p - 1.0 / 2.3769e-05 / 1000.0).abs() < 1e-6, "{p}");
    // Polyline points in cm: the first is (−21.8387, −16.2481, 68.9534) mm.
    assert!((mu_track.polyline_cm[0][0] - -2.18387).abs() < 1e-5);
    // ATLAS muons carry a direction; pT and charge come from their linked inner-detector track.
    let linked = full
        .muons
        .iter()
        .find(|m| m.track.is_some())
        .expect("linked muon");
    let t = &full.tracks[linked.track.expect("link") as usize];
    assert_eq!(t.collection, "InDetTrackParticles");
    assert!((linked.pt_gev - t.pt()).abs() < 1e-12 && linked.charge == t.charge);
    assert!(full.hits.iter().all(|h| h.detector == Detector::Other));
    assert_eq!(full.header.hit_collections, ["Some Hits"]);
}

#[test]
fn calibration_event_with_infinite_momentum_is_flagged_not_dropped() {
    let Some(path) = data_file("phoenix/ATLAS_calibration.json") else {
        return;
    };
    let (events, _) = phoenix::import(&path).expect("import");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tracks.len(), 9);
    let violations = validate(&events[0]);
    assert!(
        violations.iter().any(|v| v.rule == Rule::NonFinite),
        "q/p = 0 tracks flagged: {violations:?}"
    );
}

#[test]
fn export_then_import_reproduces_the_event() {
    let Some(path) = data_file("phoenix/ATLAS_atlaseventdump2.json") else {
        return;
    };
    let (events, _) = phoenix::import(&path).expect("import");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("export.json");
    std::fs::write(
        &out,
        serde_json::to_string(&phoenix::export(&events)).expect("json"),
    )
    .expect("write");
    let (back, _) = phoenix::import(&out).expect("re-import");
    assert_eq!(back.len(), events.len());
    for (a, b) in events.iter().zip(&back) {
        assert_close(a, b);
    }
}

#[test]
fn generated_event_survives_phoenix_export_and_import() {
    let g = EventGenerator::new(GeneratorConfig::pp(5), DetectorGeometry::alice_barrel());
    let events = g.events(0..5);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("gen.json");
    std::fs::write(
        &out,
        serde_json::to_string(&phoenix::export(&events)).expect("json"),
    )
    .expect("write");
    let (back, _) = phoenix::import(&out).expect("import");
    for (a, b) in events.iter().zip(&back) {
        // Hits come back grouped by detector; each track's hits, in order, are unchanged.
        assert_eq!(a.hits.len(), b.hits.len());
        let per_track = |e: &alyx_core::CollisionEvent| -> Vec<Vec<alyx_core::model::DetectorHit>> {
            e.hits_by_track()
                .iter()
                .map(|list| list.iter().map(|&i| e.hits[i as usize]).collect())
                .collect()
        };
        assert_eq!(
            per_track(a),
            per_track(b),
            "hits with detector, layer, time and track links"
        );
        assert_close(a, b);
        assert_eq!(a.header.timestamp_ns, b.header.timestamp_ns);
        assert_eq!(a.header.trigger_bits, b.header.trigger_bits);
    }
}

/// Equal up to floating-point rounding of the unit conversions.
fn assert_close(a: &alyx_core::CollisionEvent, b: &alyx_core::CollisionEvent) {
    let close = |x: f64, y: f64| {
        (x.is_nan() && y.is_nan())
            || x == y
            || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
    };
    assert_eq!(a.header.run, b.header.run);
    assert_eq!(a.header.event_number, b.header.event_number);
    assert_eq!(a.tracks.len(), b.tracks.len());
    // Unnamed (ALYX's own) collections are exported under Phoenix's default names.
    let named = |c: &str, default: &str| {
        if c.is_empty() {
            default.to_owned()
        } else {
            c.to_owned()
        }
    };
    for (s, t) in a.tracks.iter().zip(&b.tracks) {
        assert_eq!(
            (s.charge, s.pid, named(&s.collection, "Tracks"), s.n_hits),
            (t.charge, t.pid, t.collection.clone(), t.n_hits)
        );
        for (x, y) in s.momentum.iter().zip(&t.momentum) {
            assert!(
                close(*x, *y),
                "momentum {:?} vs {:?}",
                s.momentum,
                t.momentum
            );
        }
        assert!(close(s.helix.d0_cm, t.helix.d0_cm) && close(s.helix.z0_cm, t.helix.z0_cm));
        assert!(close(s.chi2_ndf, t.chi2_ndf));
        assert_eq!(s.polyline_cm, t.polyline_cm);
    }
    assert_eq!(a.hits.len(), b.hits.len());
    let positions = |e: &alyx_core::CollisionEvent| {
        let mut p: Vec<[u32; 3]> = e
            .hits
            .iter()
            .map(|h| h.position_cm.map(f32::to_bits))
            .collect();
        p.sort_unstable();
        p
    };
    assert_eq!(positions(a), positions(b));
    assert_eq!(a.clusters.len(), b.clusters.len());
    for (x, y) in a.clusters.iter().zip(&b.clusters) {
        assert!(
            close(x.energy_gev, y.energy_gev)
                && x.eta == y.eta
                && x.phi == y.phi
                && x.collection == y.collection
        );
    }
    for (la, lb, default) in [
        (&a.jets, &b.jets, "Jets"),
        (&a.muons, &b.muons, "Muons"),
        (&a.electrons, &b.electrons, "Electrons"),
        (&a.photons, &b.photons, "Photons"),
    ] {
        assert_eq!(la.len(), lb.len());
        for (x, y) in la.iter().zip(lb.iter()) {
            assert!(
                close(x.pt_gev, y.pt_gev) && close(x.eta, y.eta) && close(x.phi, y.phi),
                "{x:?} vs {y:?}"
            );
            assert!(close(x.isolation, y.isolation));
            assert_eq!(
                (x.charge, x.track, named(&x.collection, default)),
                (y.charge, y.track, y.collection.clone())
            );
        }
    }
}

/// Every imported value of every event against the file's own JSON: header numbers, each
/// track's polyline, each hit, cluster, jet and lepton in order, missing energy (mm → cm,
/// MeV → GeV, exactly the importer's one division).
fn assert_events_match_the_json(path: &std::path::Path) -> Vec<alyx_core::CollisionEvent> {
    use serde_json::Value;
    let (events, _) = phoenix::import(path).expect("import");
    let text = std::fs::read_to_string(path).expect("read");
    let root: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("json");
    assert_eq!(events.len(), root.len(), "{}", path.display());
    let num = |v: &Value| v.as_f64().expect("number");
    let colls = |ev: &Value, kind: &str| -> Vec<(String, Vec<Value>)> {
        ev.get(kind)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_array().cloned().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cm = |p: &Value| -> [f32; 3] {
        let a = p.as_array().expect("point");
        [0, 1, 2].map(|i| (num(&a[i]) / 10.0) as f32)
    };
    for ((name, ev), e) in root.iter().zip(&events) {
        let h = &e.header;
        assert_eq!(
            u64::from(h.run),
            ev["run number"].as_u64().unwrap_or(0),
            "{name}"
        );
        assert_eq!(
            h.event_number,
            ev["event number"].as_u64().unwrap_or(0),
            "{name}"
        );
        let tracks: Vec<(String, Value)> = colls(ev, "Tracks")
            .into_iter()
            .flat_map(|(c, list)| list.into_iter().map(move |t| (c.clone(), t)))
            .collect();
        assert_eq!(e.tracks.len(), tracks.len(), "{name}: tracks");
        for ((coll, t), got) in tracks.iter().zip(&e.tracks) {
            assert_eq!(&got.collection, coll);
            let pos: Vec<[f32; 3]> = t["pos"]
                .as_array()
                .map_or_else(Vec::new, |p| p.iter().map(cm).collect());
            assert_eq!(got.polyline_cm, pos, "{name}: a track of {coll}");
        }
        // A hit is an object with `pos`, a point, or a group of points (a hit "line").
        let hits: Vec<[f32; 3]> = colls(ev, "Hits")
            .into_iter()
            .flat_map(|(_, list)| list)
            .flat_map(|h| match h.get("pos") {
                Some(p) => vec![cm(p)],
                None if h[0].is_array() => h.as_array().expect("group").iter().map(cm).collect(),
                None => vec![cm(&h)],
            })
            .collect();
        let got: Vec<[f32; 3]> = e.hits.iter().map(|h| h.position_cm).collect();
        assert_eq!(got, hits, "{name}: hits");
        let clusters: Vec<Value> = colls(ev, "CaloClusters")
            .into_iter()
            .flat_map(|(_, l)| l)
            .collect();
        assert_eq!(e.clusters.len(), clusters.len(), "{name}: clusters");
        for (c, got) in clusters.iter().zip(&e.clusters) {
            assert_eq!(got.energy_gev, num(&c["energy"]) / 1000.0);
            assert_eq!((got.eta, got.phi), (num(&c["eta"]), num(&c["phi"])));
        }
        let jets: Vec<Value> = colls(ev, "Jets").into_iter().flat_map(|(_, l)| l).collect();
        assert_eq!(e.jets.len(), jets.len(), "{name}: jets");
        for (j, got) in jets.iter().zip(&e.jets) {
            assert_eq!(got.e_gev, num(&j["energy"]) / 1000.0, "{name}: jet energy");
            assert_eq!((got.eta, got.phi), (num(&j["eta"]), num(&j["phi"])));
            if let Some(cone) = j.get("coneR") {
                assert_eq!(got.cone_r, num(cone), "{name}: jet cone");
            }
        }
        let muons: Vec<Value> = colls(ev, "Muons")
            .into_iter()
            .flat_map(|(_, l)| l)
            .collect();
        assert_eq!(e.muons.len(), muons.len(), "{name}: muons");
        for (m, got) in muons.iter().zip(&e.muons) {
            // ATLAS writes `Eta`/`Phi`; Phoenix reads either spelling.
            let get = |k: &str| {
                num(m
                    .get(k)
                    .unwrap_or(&m[k.to_uppercase()[..1].to_owned() + &k[1..]]))
            };
            assert_eq!((got.eta, got.phi), (get("eta"), get("phi")), "{name}: muon");
        }
        if let Some((_, list)) = colls(ev, "MissingEnergy").into_iter().next() {
            let met = e.met.as_ref().expect("missing energy");
            assert_eq!(met.px_gev, num(&list[0]["etx"]) / 1000.0);
            assert_eq!(met.py_gev, num(&list[0]["ety"]) / 1000.0);
        }
    }
    events
}

#[test]
fn phoenix_files_import_value_for_value_in_both_layouts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in [
        "phoenix/ATLAS_atlaseventdump2.json",
        "phoenix/ATLAS_calibration.json",
    ] {
        let Some(path) = data_file(rel) else { return };
        let events = assert_events_match_the_json(&path);
        // Each event on its own, at the top level (the other layout Phoenix reads).
        let text = std::fs::read_to_string(&path).expect("read");
        let root: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).expect("json");
        for ((name, ev), whole) in root.iter().zip(&events) {
            let single = dir.path().join("single.json");
            std::fs::write(&single, serde_json::to_string(ev).expect("json")).expect("write");
            let (one, _) = phoenix::import(&single)
                .unwrap_or_else(|e| panic!("{rel}: event `{name}` alone: {e}"));
            assert_eq!(one.len(), 1, "{name}");
            assert!(one[0].same_as(whole), "{rel}: `{name}` alone differs");
        }
    }
}

#[test]
fn a_single_event_with_run_number_keys_and_a_threejs_scene_are_told_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let single = dir.path().join("single.json");
    std::fs::write(
        &single,
        r#"{"runNumber": 362760, "eventNumber": 12345678901,
            "Jets": {"AntiKt4": [{"eta": 0.5, "phi": 1.0, "energy": 50000.0}]}}"#,
    )
    .expect("write");
    let (events, _) = phoenix::import(&single).expect("one event");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].header.run, 362_760);
    assert_eq!(events[0].header.event_number, 12_345_678_901);
    assert_eq!(events[0].jets.len(), 1);

    let scene = dir.path().join("scene.phnx");
    std::fs::write(
        &scene,
        r#"{"metadata": {"version": 4.6, "type": "Object", "generator": "Object3D.toJSON"},
            "geometries": [], "materials": [], "object": {"type": "Scene", "children": []}}"#,
    )
    .expect("write");
    let err = phoenix::import(&scene).expect_err("not event data");
    assert!(err.to_string().contains("three.js"), "{err}");

    for (bad, why) in [
        (r#"{}"#, "no Phoenix events"),
        (r#"{"a": 5}"#, "not an event"),
        (r#"{"runNumber": 99999999999}"#, "32 bits"),
        (r#"[1, 2]"#, "JSON object"),
    ] {
        std::fs::write(&single, bad).expect("write");
        let err = phoenix::import(&single).expect_err(bad);
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
}
