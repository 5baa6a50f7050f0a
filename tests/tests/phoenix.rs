//! Phoenix event-data JSON: import of the HSF example files (ATLAS, mm and MeV), export, and
//! the round trip. CMS iSpy archives (`.ig`, Phoenix's other example files): import against a
//! standard-library Python reading of the same files, the dilepton masses, hostile archives.

use std::collections::BTreeMap;

use alyx_core::DetectorGeometry;
use alyx_core::model::{CollisionEvent, Detector, PhysicsObject};
use alyx_core::physics::invariant_mass;
use alyx_core::validate::{Rule, validate};
use alyx_import::{Format, ispy, phoenix};
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

const ISPY_FILES: [&str; 2] = ["phoenix/CMS_EventData_test.ig", "phoenix/CMS_EventData.ig"];

/// The events of an iSpy file as `tests/peers/ispy_dump.py` reads them (zipfile and its own
/// reading of the dialect; no ALYX code).
fn ispy_peer(path: &std::path::Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("python3")
        .arg(alyx_tests::peer_script("ispy_dump.py"))
        .arg(path)
        .output()
        .expect("python3 runs the standard-library peer");
    assert!(
        out.status.success(),
        "ispy_dump.py failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the peer's JSON");
    v["events"].as_array().expect("events").clone()
}

type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// Objects per ALYX list and collection name, non-empty ones only (as the peer prints them).
fn ispy_counts(e: &CollisionEvent) -> Counts {
    fn count<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for n in names {
            *m.entry(n.to_owned()).or_insert(0) += 1;
        }
        m
    }
    fn objects(list: &[PhysicsObject]) -> BTreeMap<String, u64> {
        count(list.iter().map(|o| o.collection.as_str()))
    }
    Counts::from([
        (
            "tracks".into(),
            count(e.tracks.iter().map(|t| t.collection.as_str())),
        ),
        ("muons".into(), objects(&e.muons)),
        ("electrons".into(), objects(&e.electrons)),
        ("photons".into(), objects(&e.photons)),
        ("jets".into(), objects(&e.jets)),
        (
            "clusters".into(),
            count(e.clusters.iter().map(|c| c.collection.as_str())),
        ),
        (
            "vertices".into(),
            count(e.vertices.iter().map(|v| v.collection.as_str())),
        ),
    ])
}

fn peer_counts(v: &serde_json::Value) -> Counts {
    serde_json::from_value(v.clone()).expect("counts: {list: {collection: n}}")
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// The mass of the leading muon and the leading muon of opposite charge, if there is one.
fn leading_opposite_mass(muons: &[&PhysicsObject]) -> Option<f64> {
    let mut ranked = muons.to_vec();
    ranked.sort_by(|a, b| b.pt_gev.total_cmp(&a.pt_gev));
    let (lead, rest) = ranked.split_first()?;
    let other = rest.iter().find(|m| m.charge * lead.charge < 0)?;
    Some(invariant_mass(&[lead.p4(), other.p4()]))
}

/// The dilepton masses ALYX computes from the imported objects: (μμ, μμ of global muons, ee).
fn dilepton_masses(e: &CollisionEvent) -> [Option<f64>; 3] {
    let muons: Vec<&PhysicsObject> = e.muons.iter().collect();
    let global: Vec<&PhysicsObject> = e
        .muons
        .iter()
        .filter(|m| m.collection.starts_with("GlobalMuons_"))
        .collect();
    let mut electrons: Vec<&PhysicsObject> = e.electrons.iter().collect();
    electrons.sort_by(|a, b| b.pt_gev.total_cmp(&a.pt_gev));
    let ee = match electrons.as_slice() {
        [a, b, ..] => Some(invariant_mass(&[a.p4(), b.p4()])),
        _ => None,
    };
    [
        leading_opposite_mass(&muons),
        leading_opposite_mass(&global),
        ee,
    ]
}

#[test]
fn ispy_files_import_as_the_stdlib_peer_reads_them() {
    for rel in ISPY_FILES {
        let Some(path) = data_file(rel) else { return };
        assert_eq!(
            alyx_import::detect_format(&path).expect("format"),
            Format::Ispy
        );
        let peer = ispy_peer(&path);
        assert_eq!(peer.len(), 2, "{rel}: the peer reads two events");
        // Through the format detection, one event per batch.
        let mut events: Vec<CollisionEvent> = Vec::new();
        let mut batches = 0;
        let report = alyx_import::import_file_batches(&path, None, None, 1, &mut |batch| {
            assert_eq!(batch.len(), 1, "{rel}: batches of one");
            batches += 1;
            events.extend(batch);
            Ok(())
        })
        .expect("import");
        assert_eq!((batches, events.len()), (peer.len(), peer.len()), "{rel}");
        assert!(
            report.mapped.iter().any(|l| l.contains("CMSSW_5_3_36")),
            "{:?}",
            report.mapped
        );
        let (whole, _) = ispy::import(&path).expect("import at once");
        assert!(
            whole.iter().zip(&events).all(|(a, b)| a.same_as(b)),
            "{rel}: batching changes nothing"
        );

        for (e, p) in events.iter().zip(&peer) {
            let name = p["member"].as_str().expect("member");
            let h = &e.header;
            assert_eq!(
                u64::from(h.run),
                p["run"].as_u64().expect("run"),
                "{rel} {name}"
            );
            assert_eq!(
                h.event_number,
                p["event"].as_u64().expect("event"),
                "{rel} {name}"
            );
            assert_eq!(
                h.timestamp_ns,
                p["timestamp_ns"].as_i64().expect("time"),
                "{rel} {name}"
            );
            assert!(h.sqrt_s_gev.is_nan(), "iSpy does not give √s");
            assert_eq!(ispy_counts(e), peer_counts(&p["counts"]), "{rel} {name}");
            let vertex: Vec<f64> = p["vertex_cm"]
                .as_array()
                .expect("a primary vertex")
                .iter()
                .map(|c| c.as_f64().expect("cm"))
                .collect();
            assert!(
                h.vertex_cm
                    .iter()
                    .zip(&vertex)
                    .all(|(a, b)| close(*a, *b, 1e-12))
                    && vertex.len() == 3,
                "{rel} {name}: vertex {:?} vs {vertex:?}",
                h.vertex_cm
            );
            let met = e.met.expect("missing energy");
            let (px, py) = (
                p["met"][0].as_f64().expect("px"),
                p["met"][1].as_f64().expect("py"),
            );
            assert!(
                close(met.px_gev, px, 1e-12) && close(met.py_gev, py, 1e-12),
                "{rel} {name}: MET"
            );
            // Lengths in cm (iSpy's are in m): the drawn curves reach past the tracker's middle
            // (r > 50 cm; the tracker ends at 1.1 m) and stay inside CMS (r < 7.5 m, |z| < 11 m).
            let points: Vec<[f32; 3]> = e
                .tracks
                .iter()
                .flat_map(|t| t.polyline_cm.iter().copied())
                .collect();
            let reach = points
                .iter()
                .map(|p| p[0].hypot(p[1]))
                .fold(0.0f32, f32::max);
            assert!(
                (50.0..750.0).contains(&reach) && points.iter().all(|p| p[2].abs() < 1100.0),
                "{rel} {name}: drawn tracks reach r = {reach} cm"
            );
            // Calorimeter hits sit at their cells: the distance from the beam of each
            // collection's nearest and farthest front face, as the peer computes it.
            let peer_rho = p["calo_rho_cm"].as_object().expect("calo_rho_cm");
            for (collection, range) in peer_rho {
                let rho: Vec<f64> = e
                    .clusters
                    .iter()
                    .filter(|c| c.collection == *collection)
                    .map(|c| c.position_cm[0].hypot(c.position_cm[1]))
                    .collect();
                let (lo, hi) = (
                    rho.iter().copied().fold(f64::INFINITY, f64::min),
                    rho.iter().copied().fold(0.0, f64::max),
                );
                let (plo, phi) = (
                    range[0].as_f64().expect("min"),
                    range[1].as_f64().expect("max"),
                );
                assert!(
                    close(lo, plo, 1e-9) && close(hi, phi, 1e-9),
                    "{rel} {name} {collection}: front faces at ρ {lo:.2}–{hi:.2} cm, \
                     the peer says {plo:.2}–{phi:.2}"
                );
            }
        }
    }
}

#[test]
fn ispy_dilepton_masses_agree_with_the_peer_and_find_the_z_and_the_jpsi() {
    for rel in ISPY_FILES {
        let Some(path) = data_file(rel) else { return };
        let peer = ispy_peer(&path);
        let (events, _) = ispy::import(&path).expect("import");
        assert_eq!(events.len(), peer.len(), "{rel}");
        for (e, p) in events.iter().zip(&peer) {
            let name = p["member"].as_str().expect("member");
            let ours = dilepton_masses(e);
            for (key, mine) in ["mumu", "mumu_global", "ee"].into_iter().zip(ours) {
                let theirs = p[key].as_f64();
                match (mine, theirs) {
                    (None, None) => {}
                    (Some(a), Some(b)) => {
                        assert!(
                            close(a, b, 1e-9),
                            "{rel} {name} {key}: {a} vs the peer's {b}"
                        )
                    }
                    _ => panic!("{rel} {name} {key}: {mine:?} vs the peer's {theirs:?}"),
                }
            }
        }
        // What the two events are: a Z → ee candidate and a J/ψ → μμ one.
        let by_number = |n: u64| {
            let e = events
                .iter()
                .find(|e| e.header.event_number == n)
                .expect("event");
            dilepton_masses(e)
        };
        let [_, _, ee] = by_number(421_267_699);
        assert!(
            ee.is_some_and(|m| (80.0..100.0).contains(&m)),
            "Z → ee: {ee:?}"
        );
        let [mumu, _, _] = by_number(876_295_434);
        assert!(
            mumu.is_some_and(|m| (2.9..3.3).contains(&m)),
            "J/ψ → μμ: {mumu:?}"
        );
    }
}

/// One member of a hand-written zip archive, stored uncompressed; `claimed` overrides the
/// decompressed size its directory entry gives and `crc` its checksum, so a test can lie.
struct RawMember<'a> {
    name: &'a str,
    data: &'a [u8],
    claimed: Option<u32>,
    crc: Option<u32>,
}

impl<'a> RawMember<'a> {
    fn new(name: &'a str, data: &'a [u8]) -> Self {
        Self {
            name,
            data,
            claimed: None,
            crc: None,
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive (no compression, no zip64) of `members`.
fn stored_zip(members: &[RawMember<'_>]) -> Vec<u8> {
    let (mut out, mut directory) = (Vec::new(), Vec::new());
    let u16le = |v: usize| u16::try_from(v).expect("u16").to_le_bytes();
    let u32le = |v: usize| u32::try_from(v).expect("u32").to_le_bytes();
    for m in members {
        let offset = out.len();
        let crc = m.crc.unwrap_or_else(|| crc32(m.data)).to_le_bytes();
        let size = u32le(m.data.len());
        let claimed = m.claimed.map_or(size, u32::to_le_bytes);
        // Version 2.0, no flags, stored, 1980-01-01 00:00; then no extra field.
        let parts: [&[u8]; 6] = [
            &[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0],
            &crc,
            &size,
            &claimed,
            &u16le(m.name.len()),
            &[0, 0],
        ];
        let common = parts.concat();
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(m.data);
        directory.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        directory.extend_from_slice(&[20, 0]); // made by: version 2.0, MS-DOS
        directory.extend_from_slice(&common);
        // Comment length, disk, internal and external attributes, then the local header's offset.
        directory.extend_from_slice(&[0; 10]);
        directory.extend_from_slice(&u32le(offset));
        directory.extend_from_slice(m.name.as_bytes());
    }
    let (start, len) = (out.len(), directory.len());
    out.extend_from_slice(&directory);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&u16le(members.len()));
    out.extend_from_slice(&u16le(members.len()));
    out.extend_from_slice(&u32le(len));
    out.extend_from_slice(&u32le(start));
    out.extend_from_slice(&[0, 0]);
    out
}

/// A valid iSpy event: one track and the run and event numbers.
const ISPY_EVENT: &str = r#"{'Types': {"Event_V2": [["run", "int"], ["event", "int"]],
    "Tracks_V2": [["pos", "v3d"], ["dir", "v3d"], ["pt", "double"], ["phi", "double"], ["eta", "double"], ["charge", "int"], ["chi2", "double"], ["ndof", "double"]]},
  'Collections': {"Event_V2": [[1, 2]],
    "Tracks_V2": [[(0, 0, 0), (1, 0, 0), 3.5, 0.1, nan, -1, 2.0, 4.0]]},
  'Associations': {}}"#;

#[test]
fn hostile_ispy_archives_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hostile.ig");
    let import = |bytes: &[u8]| {
        std::fs::write(&file, bytes).expect("write");
        alyx_import::import_file(&file, None, None)
    };
    // The hand-written archive is a real one: its event imports.
    let good = stored_zip(&[
        RawMember::new("Header", b"\"CMSSW_5_3_36\""),
        RawMember::new("Events/Run_1/Event_2", ISPY_EVENT.as_bytes()),
    ]);
    let (events, _) = import(&good).expect("a valid archive");
    assert_eq!(
        (events.len(), events[0].header.run, events[0].tracks.len()),
        (1, 1, 1)
    );

    let member = "Events/Run_1/Event_2";
    let short_row = ISPY_EVENT.replace("-1, 2.0, 4.0]", "-1, 2.0]");
    let string_pt = ISPY_EVENT.replace("3.5, 0.1", "\"3.5\", 0.1");
    let bad_crc = RawMember {
        crc: Some(0xDEAD_BEEF),
        ..RawMember::new(member, ISPY_EVENT.as_bytes())
    };
    let bomb = RawMember {
        claimed: Some(3_000_000_000),
        ..RawMember::new(member, ISPY_EVENT.as_bytes())
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // The archive cut short: no central directory.
        (
            good[..good.len() / 2].to_vec(),
            "not a readable zip archive",
        ),
        // A member of garbage, and others that are not event documents.
        (
            stored_zip(&[RawMember::new(member, b"\x00\xff{{((garbage")]),
            member,
        ),
        (
            stored_zip(&[RawMember::new(member, b"")]),
            "not an iSpy event document",
        ),
        (
            stored_zip(&[RawMember::new(member, b"{'Types': {\"A")]),
            "never closed",
        ),
        (
            stored_zip(&[RawMember::new(member, b"{'Types': 5, 'Collections': {}}")]),
            "`Types` is not an object",
        ),
        (
            stored_zip(&[RawMember::new(
                member,
                br#"{"Types": {}, "Collections": {"Tracks_V2": [[1]]}}"#,
            )]),
            "Tracks_V2",
        ),
        // A row one value short of its Types, and a value of the wrong type.
        (
            stored_zip(&[RawMember::new(member, short_row.as_bytes())]),
            "row 0 has 7 values",
        ),
        (
            stored_zip(&[RawMember::new(member, string_pt.as_bytes())]),
            "`pt` is a string",
        ),
        // A checksum that does not match, and a member claiming 3 GB decompressed.
        (stored_zip(&[bad_crc]), member),
        (stored_zip(&[bomb]), "claims 3000000000 bytes"),
        // No events at all.
        (
            stored_zip(&[RawMember::new("Header", b"\"CMSSW_5_3_36\"")]),
            "no iSpy events",
        ),
    ];
    for (bytes, why) in cases {
        let err = import(&bytes).expect_err(why);
        assert!(
            matches!(err, alyx_import::Error::Malformed { .. }),
            "{why}: {err:?}"
        );
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}
