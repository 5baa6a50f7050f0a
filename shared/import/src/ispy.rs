//! CMS iSpy event files (`.ig`): import.
//!
//! An `.ig` file is a zip archive holding a `Header` (the CMSSW release that wrote it) and one
//! member per event, `Events/Run_<run>/Event_<event>`. An event is a document
//! `{"Types": {collection: [[field, type], ...]}, "Collections": {collection: [[value, ...], ...]},
//! "Associations": {name: [[[collection, row], [collection, row]], ...]}}`: each collection is a
//! table whose columns its `Types` entry names in order (fields are looked up by name, never by
//! position), and an association links a row of one collection to a row of another, each
//! collection named by its position in `Types`.
//!
//! The text is JSON but for what iSpy's C++ writer does, all seen in CMS's own files: strings in
//! single quotes (the top-level keys), 3-vectors written as tuples `(x, y, z)`, `nan` for numbers
//! it could not compute, and (in minified files) no whitespace even inside strings. [`dialect_to_json`]
//! rewrites quotes, tuples and non-finite numbers (`nan`, `inf`, `-inf`, which become NaN: not
//! measured) outside strings and nothing else; serde_json reads the rest.
//!
//! Units: iSpy lengths are in **metres** (the ECAL barrel's crystals start at r = 1.29), energies
//! and momenta in GeV; lengths are multiplied by 100 on the way in.
//!
//! What becomes what, taking the newest version of each collection (`Tracks_V3` over
//! `Tracks_V2`; older versions hold the same objects):
//! - `Tracks_V*` → tracks: pT, η, φ, charge at the reference point `pos`, with perigee parameters
//!   for CMS's 3.8 T field, and as polyline the cubic Bézier curve iSpy draws through the
//!   track's innermost and outermost states (`Extras_V1` via `TrackExtras_V1`).
//! - `GlobalMuons_V*`, `TrackerMuons_V*`, `StandaloneMuons_V*` → muons, one entry per muon: a
//!   tracker or standalone muon with the same charge as a global (or, for standalone ones, a
//!   tracker) muon within ΔR < 0.2 is the same particle seen by another algorithm and is kept
//!   once, as the higher-priority one. A muon with drawn points or an extrapolation also gets a
//!   track in a collection named after its own (`GlobalMuons_V1`), which its `track` links.
//! - `GsfElectrons_V*` → electrons (tracks from `GsfElectronExtras_V1` likewise), `Photons_V*`
//!   → photons (massless, pT = Eᴛ).
//! - `PFJets_V*` → jets (massless, pT = Eᴛ); calorimeter jets (`CaloJets_V*`, `Jets_V*`) only in
//!   an event without PF jets, so that each jet is counted once.
//! - `PFMETs_V*` (else `METs_V*`, else `CaloMETs_V*`) → missing energy, as the file gives it.
//! - `PrimaryVertices_V*` or `Vertices_V*`: the first (CMS's primary vertex, highest Σpᴛ²) is the
//!   header's vertex; the others (pile-up) are `vertices`.
//! - `EBRecHits`, `EERecHits`, `HBRecHits`, `HERecHits` → calorimeter clusters, one per hit,
//!   collection named after the detector's, at the hit's η and φ (or the centre of its eight
//!   corners when the file has none).
//!
//! Events are pp collisions of unknown √s (iSpy does not say). A hostile archive is bounded:
//! at most [`Limits::members`] members, each at most [`Limits::member_bytes`] decompressed,
//! whatever its header claims; every value is checked for its type and every row and index for
//! its range, and a bad one is an error naming the member and the collection.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::report::ImportReport;
use alyx_core::helix::Helix;
use alyx_core::model::{
    CaloCluster, CollisionEvent, CollisionSystem, EventHeader, MissingEnergy, ParticleTrack,
    PhysicsObject, Vertex,
};
use alyx_core::physics::{delta_r, mass};

const CM_PER_M: f64 = 100.0;

/// CMS's solenoid field along +z, for the tracks' perigee parameters.
const FIELD_TESLA: f64 = 3.8;

/// A tracker or standalone muon this close (same charge) to a kept muon is that muon again.
const MUON_MATCH_DR: f64 = 0.2;

/// Muon pairs compared for the same-muon test before an event is refused as hostile (an event
/// holds a handful of muons; a forged one with millions would take hours to match).
const MAX_MUON_COMPARISONS: usize = 100_000_000;

/// Points of a track's drawn Bézier curve (iSpy's and Phoenix's 24 segments).
const CURVE_POINTS: usize = 25;

/// What an archive may hold before it is refused as hostile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes of one member (one event's text).
    pub member_bytes: u64,
    /// Members of the archive.
    pub members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            member_bytes: 256 << 20,
            members: 200_000,
        }
    }
}

/// Imports every event of an iSpy archive at once.
pub fn import(path: &Path) -> Result<(Vec<CollisionEvent>, ImportReport)> {
    let mut events = Vec::new();
    let report = import_batches(path, usize::MAX, &mut |batch| {
        events.extend(batch);
        Ok(())
    })?;
    Ok((events, report))
}

/// Imports the events of an iSpy archive in archive order, member by member, handing them to
/// `sink` at most `batch` at a time: memory holds one member's text and one batch of events.
pub fn import_batches(
    path: &Path,
    batch: usize,
    sink: &mut dyn FnMut(Vec<CollisionEvent>) -> Result<()>,
) -> Result<ImportReport> {
    import_batches_with(path, Limits::default(), batch, sink)
}

/// [`import_batches`] under explicit limits.
pub fn import_batches_with(
    path: &Path,
    limits: Limits,
    batch: usize,
    sink: &mut dyn FnMut(Vec<CollisionEvent>) -> Result<()>,
) -> Result<ImportReport> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| Error::malformed(path, format!("not a readable zip archive: {e}")))?;
    if archive.len() > limits.members {
        return Err(Error::malformed(
            path,
            format!(
                "{} zip members, more than the {} an iSpy archive may have",
                archive.len(),
                limits.members
            ),
        ));
    }
    let mut notes = Notes::default();
    let mut pending: Vec<CollisionEvent> = Vec::new();
    let mut imported = 0usize;
    for index in 0..archive.len() {
        let name = archive.name_for_index(index).unwrap_or_default().to_owned();
        let kind = member_kind(&name);
        if kind == MemberKind::Other {
            if !name.ends_with('/') {
                notes.other_members += 1;
                notes.other_example.get_or_insert(name);
            }
            continue;
        }
        let bad = |reason: String| Error::malformed(path, format!("member `{name}`: {reason}"));
        let text = {
            let mut member = archive.by_index(index).map_err(|e| bad(e.to_string()))?;
            let declared = member.size();
            read_member(&mut member, declared, limits.member_bytes).map_err(bad)?
        };
        if kind == MemberKind::Header {
            notes.writer = serde_json::from_str::<String>(text.trim()).ok();
            continue;
        }
        pending.push(read_event(&name, text, &mut notes).map_err(bad)?);
        imported += 1;
        if pending.len() >= batch.max(1) {
            sink(std::mem::take(&mut pending))?;
        }
    }
    if imported == 0 {
        return Err(Error::malformed(
            path,
            "holds no iSpy events (zip members named Events/Run_<run>/Event_<event>)",
        ));
    }
    if !pending.is_empty() {
        sink(pending)?;
    }
    Ok(notes.into_report(imported))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemberKind {
    Event,
    Header,
    Other,
}

fn member_kind(name: &str) -> MemberKind {
    if name.ends_with('/') {
        MemberKind::Other
    } else if name
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("events/"))
    {
        MemberKind::Event
    } else if name == "Header" {
        MemberKind::Header
    } else {
        MemberKind::Other
    }
}

/// A member's text, refused when its header claims more than `limit` bytes and cut off (and
/// refused) when it inflates past `limit` whatever the header said.
fn read_member(reader: impl Read, declared: u64, limit: u64) -> Result<String, String> {
    if declared > limit {
        return Err(format!(
            "claims {declared} bytes decompressed, more than the {limit} one event may have"
        ));
    }
    let mut bytes = Vec::with_capacity(declared.min(1 << 24) as usize);
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be decompressed: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "decompresses to more than {limit} bytes (its header claimed {declared})"
        ));
    }
    // iSpy writes ASCII; a stray Latin-1 byte in a trigger name is not worth refusing the event.
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// What the import saw across the file, for the report.
#[derive(Default)]
struct Notes {
    mapped: BTreeSet<String>,
    skipped: BTreeSet<String>,
    /// Tracker or standalone muons kept once, as the global (or tracker) muon they matched.
    merged_muons: usize,
    /// The `Header` member: the CMSSW release that wrote the file.
    writer: Option<String>,
    /// Members that are neither events nor the header (geometry, say), and the first one's name.
    other_members: usize,
    other_example: Option<String>,
}

impl Notes {
    fn into_report(self, events: usize) -> ImportReport {
        let mut mapped = vec![format!(
            "{events} events (zip members Events/Run_<run>/Event_<event>); lengths m → cm, \
             energies in GeV; pp, √s unknown"
        )];
        if let Some(writer) = self.writer {
            mapped.push(format!("written by {writer}"));
        }
        mapped.extend(self.mapped);
        let mut skipped: Vec<String> = self.skipped.into_iter().collect();
        if let Some(example) = self.other_example {
            skipped.push(format!(
                "{} zip members that are not events (`{example}`, ...)",
                self.other_members
            ));
        }
        if self.merged_muons > 0 {
            skipped.push(format!(
                "{} tracker or standalone muons: the same charge and within ΔR < {MUON_MATCH_DR} \
                 of a global (or tracker) muon, so that muon again; kept once",
                self.merged_muons
            ));
        }
        ImportReport {
            mapped,
            skipped,
            mapping: None,
        }
    }
}

/// Rewrites an iSpy event document as JSON: outside strings, `(`/`)` become `[`/`]` and the
/// non-finite numbers C++ writes (`nan`, `-nan`, `inf`, `-inf`, any case) become `null`; a
/// single-quoted string becomes a double-quoted one. Everything else is copied as it is, for
/// serde_json to judge.
pub fn dialect_to_json(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + b.len() / 16);
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                let end = string_end(b, i)?;
                out.extend_from_slice(b.get(i..=end).unwrap_or_default());
                i = end + 1;
            }
            b'\'' => {
                let end = string_end(b, i)?;
                let body = b.get(i + 1..end).unwrap_or_default();
                out.push(b'"');
                let mut k = 0;
                while let Some(&d) = body.get(k) {
                    match (d, body.get(k + 1).copied()) {
                        (b'\\', Some(b'\'')) => {
                            out.push(b'\'');
                            k += 2;
                        }
                        (b'\\', Some(e)) => {
                            out.extend_from_slice(&[b'\\', e]);
                            k += 2;
                        }
                        (b'"', _) => {
                            out.extend_from_slice(b"\\\"");
                            k += 1;
                        }
                        _ => {
                            out.push(d);
                            k += 1;
                        }
                    }
                }
                out.push(b'"');
                i = end + 1;
            }
            b'(' => {
                out.push(b'[');
                i += 1;
            }
            b')' => {
                out.push(b']');
                i += 1;
            }
            // A number is copied whole, so that the `e` of `1e-05` is never taken for a word.
            b'0'..=b'9' => {
                let start = i;
                while b
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || matches!(*d, b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
                out.extend_from_slice(b.get(start..i).unwrap_or_default());
            }
            _ if c.is_ascii_alphabetic()
                || (matches!(c, b'-' | b'+')
                    && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)) =>
            {
                let start = i;
                if !c.is_ascii_alphabetic() {
                    i += 1;
                }
                let word_start = i;
                while b
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == b'_')
                {
                    i += 1;
                }
                let word = b.get(word_start..i).unwrap_or_default();
                if NON_FINITE.iter().any(|w| word.eq_ignore_ascii_case(w)) {
                    out.extend_from_slice(b"null");
                } else {
                    out.extend_from_slice(b.get(start..i).unwrap_or_default());
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only whole UTF-8 sequences were copied, so this cannot fail; no panic if it somehow did.
    String::from_utf8(out).map_err(|e| format!("not text: {e}"))
}

/// The words C++ streams write for non-finite numbers (compared ignoring case, after a sign).
const NON_FINITE: [&[u8]; 3] = [b"nan", b"inf", b"infinity"];

/// The index of the quote closing the string that opens at `start`.
fn string_end(b: &[u8], start: usize) -> Result<usize, String> {
    let quote = b.get(start).copied();
    let mut j = start + 1;
    while let Some(&d) = b.get(j) {
        if d == b'\\' {
            j += 2;
        } else if Some(d) == quote {
            return Ok(j);
        } else {
            j += 1;
        }
    }
    Err(format!("the string opened at byte {start} is never closed"))
}

fn read_event(member: &str, text: String, notes: &mut Notes) -> Result<CollisionEvent, String> {
    let json = dialect_to_json(&text)?;
    drop(text);
    let root: Value =
        serde_json::from_str(&json).map_err(|e| format!("not an iSpy event document: {e}"))?;
    drop(json);
    let doc = Document::new(&root)?;
    build_event(member, &doc, notes)
}

/// An event document's three sections.
struct Document<'a> {
    types: &'a Map<String, Value>,
    collections: &'a Map<String, Value>,
    associations: Option<&'a Map<String, Value>>,
    /// Collection names in the order of `Types`: an association names a collection by its
    /// position here. (serde_json keeps the file's key order: the workspace enables its
    /// `preserve_order` feature.)
    order: Vec<&'a str>,
}

fn section<'a>(
    root: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(format!("`{key}` is not an object")),
    }
}

impl<'a> Document<'a> {
    fn new(root: &'a Value) -> Result<Self, String> {
        let Value::Object(root) = root else {
            return Err("is not an object of Types, Collections and Associations".into());
        };
        let types = section(root, "Types")?.ok_or("has no `Types`")?;
        let collections = section(root, "Collections")?.ok_or("has no `Collections`")?;
        Ok(Self {
            types,
            collections,
            associations: section(root, "Associations")?,
            order: types.keys().map(String::as_str).collect(),
        })
    }

    /// The newest version of `family` in this event (`Tracks_V3` over `Tracks_V2`).
    fn newest(&self, family: &str) -> Option<&'a str> {
        self.collections
            .keys()
            .filter_map(|name| Some((version(name, family)?, name.as_str())))
            .max_by_key(|(v, _)| *v)
            .map(|(_, name)| name)
    }

    /// Collection `name` as a table, each row checked to hold one value per field of its
    /// `Types` entry; `None` when the event has no such collection.
    fn table(&self, name: &'a str) -> Result<Option<Table<'a>>, String> {
        let Some(rows) = self.collections.get(name) else {
            return Ok(None);
        };
        let Value::Array(rows) = rows else {
            return Err(format!("collection `{name}` is not a list of rows"));
        };
        let Some(Value::Array(types)) = self.types.get(name) else {
            return Err(format!(
                "collection `{name}` has no list of fields in `Types`"
            ));
        };
        let mut fields = Vec::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            let Some(field) = t.as_array().and_then(|t| t.first()).and_then(Value::as_str) else {
                return Err(format!(
                    "field {i} of `{name}` in `Types` is not a [name, type] pair"
                ));
            };
            fields.push(field);
        }
        let mut checked = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match row {
                Value::Array(values) if values.len() == fields.len() => {
                    checked.push(values.as_slice());
                }
                Value::Array(values) => {
                    return Err(format!(
                        "collection `{name}`: row {i} has {} values, but `Types` names {} fields",
                        values.len(),
                        fields.len()
                    ));
                }
                _ => return Err(format!("collection `{name}`: row {i} is not a list")),
            }
        }
        Ok(Some(Table {
            name,
            fields,
            rows: checked,
        }))
    }

    /// Polylines (cm) of the rows of `object` that the named associations draw: a Bézier curve
    /// through an `Extras` row (the track's states at its innermost and outermost measurements),
    /// or the `Points` rows in association order. The first association that draws a row wins.
    fn paths(
        &self,
        object: &Table<'a>,
        associations: &[&str],
        used: &mut HashSet<&'a str>,
    ) -> Result<HashMap<usize, Vec<[f32; 3]>>, String> {
        let mut out: HashMap<usize, Vec<[f32; 3]>> = HashMap::new();
        let (Some(all), Some(object_id)) = (
            self.associations,
            self.order.iter().position(|n| *n == object.name),
        ) else {
            return Ok(out);
        };
        let mut targets: HashMap<usize, Option<Table<'a>>> = HashMap::new();
        for &assoc in associations {
            let Some(entries) = all.get(assoc) else {
                continue;
            };
            let Value::Array(entries) = entries else {
                return Err(format!("association `{assoc}` is not a list"));
            };
            let mut drawn: HashMap<usize, Vec<[f32; 3]>> = HashMap::new();
            for (i, entry) in entries.iter().enumerate() {
                let Some([(from_id, from_row), (to_id, to_row)]) = link(entry) else {
                    return Err(format!(
                        "association `{assoc}`: entry {i} is not [[collection, row], [collection, row]]"
                    ));
                };
                let name_of = |id: usize| {
                    self.order.get(id).copied().ok_or_else(|| {
                        format!(
                            "association `{assoc}`: entry {i} names collection #{id}, but `Types` has {}",
                            self.order.len()
                        )
                    })
                };
                let (from, to) = (name_of(from_id)?, name_of(to_id)?);
                if from_id != object_id || out.contains_key(&from_row) {
                    continue;
                }
                if from_row >= object.len() {
                    return Err(format!(
                        "association `{assoc}`: entry {i} links row {from_row} of `{from}`, which has {} rows",
                        object.len()
                    ));
                }
                let target = match targets.entry(to_id) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(self.table(to)?),
                };
                let Some(target) = target else {
                    continue;
                };
                if to_row >= target.len() {
                    return Err(format!(
                        "association `{assoc}`: entry {i} links row {to_row} of `{to}`, which has {} rows",
                        target.len()
                    ));
                }
                match target.drawing() {
                    Drawing::Curve => {
                        used.insert(to);
                        if let Some(curve) = target.curve(to_row)? {
                            drawn.entry(from_row).or_insert(curve);
                        }
                    }
                    Drawing::Point => {
                        used.insert(to);
                        if let Some(p) = target.point(to_row)? {
                            drawn.entry(from_row).or_default().push(p);
                        }
                    }
                    Drawing::Nothing => {}
                }
            }
            for (row, path) in drawn {
                if !path.is_empty() {
                    out.entry(row).or_insert(path);
                }
            }
        }
        Ok(out)
    }
}

/// `Tracks_V3` → 3 for family `Tracks`.
fn version(name: &str, family: &str) -> Option<u32> {
    let v = name.strip_prefix(family)?.strip_prefix("_V")?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `Tracks` for `Tracks_V3`.
fn family(name: &str) -> &str {
    match name.rsplit_once("_V") {
        Some((stem, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => name,
    }
}

/// An association entry `[[collection, row], [collection, row]]`.
fn link(entry: &Value) -> Option<[(usize, usize); 2]> {
    let pair = |v: &Value| -> Option<(usize, usize)> {
        match v.as_array()?.as_slice() {
            [c, r] => Some((
                usize::try_from(c.as_u64()?).ok()?,
                usize::try_from(r.as_u64()?).ok()?,
            )),
            _ => None,
        }
    };
    match entry.as_array()?.as_slice() {
        [a, b] => Some([pair(a)?, pair(b)?]),
        _ => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// How an association's target collection is drawn.
enum Drawing {
    /// An `Extras` row: position and direction at both ends.
    Curve,
    /// A `Points` row: one position.
    Point,
    Nothing,
}

/// One collection of an event, its rows checked against its `Types`.
struct Table<'a> {
    name: &'a str,
    fields: Vec<&'a str>,
    rows: Vec<&'a [Value]>,
}

impl<'a> Table<'a> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn has(&self, field: &str) -> bool {
        self.fields.contains(&field)
    }

    /// Notes the fields of `wanted` this collection lacks (their values will be NaN).
    fn require(&self, wanted: &[&str], notes: &mut Notes) {
        for field in wanted {
            if !self.has(field) {
                notes
                    .skipped
                    .insert(format!("`{}` has no `{field}` field: left NaN", self.name));
            }
        }
    }

    fn value(&self, row: usize, field: &str) -> Option<&'a Value> {
        let col = self.fields.iter().position(|f| *f == field)?;
        self.rows.get(row).copied().and_then(|r| r.get(col))
    }

    fn wrong(&self, row: usize, field: &str, v: &Value, expected: &str) -> String {
        format!(
            "collection `{}`: row {row}: `{field}` is {}, expected {expected}",
            self.name,
            kind_of(v)
        )
    }

    /// A number; NaN when the field is absent or null (`nan` in the file).
    fn number(&self, row: usize, field: &str) -> Result<f64, String> {
        match self.value(row, field) {
            None | Some(Value::Null) => Ok(f64::NAN),
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            Some(v) => Err(self.wrong(row, field, v, "a number")),
        }
    }

    /// A whole number; `None` when the field is absent or null.
    fn integer(&self, row: usize, field: &str) -> Result<Option<i64>, String> {
        match self.value(row, field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(Some(i)),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(format!(
                    "collection `{}`: row {row}: `{field}` = {n} is not a whole number that fits 64 bits",
                    self.name
                )),
            },
            Some(v) => Err(self.wrong(row, field, v, "a whole number")),
        }
    }

    /// A non-negative whole number (run and event numbers use all 64 bits).
    fn unsigned(&self, row: usize, field: &str) -> Result<Option<u64>, String> {
        match self.value(row, field) {
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            _ => match self.integer(row, field)? {
                None => Ok(None),
                Some(i) => u64::try_from(i).map(Some).map_err(|_| {
                    format!(
                        "collection `{}`: row {row}: `{field}` = {i} is negative",
                        self.name
                    )
                }),
            },
        }
    }

    /// A charge: 0 when absent or null.
    fn charge(&self, row: usize) -> Result<i32, String> {
        match self.integer(row, "charge")? {
            None => Ok(0),
            Some(q) => i32::try_from(q).map_err(|_| {
                format!(
                    "collection `{}`: row {row}: charge {q} does not fit 32 bits",
                    self.name
                )
            }),
        }
    }

    /// A 3-vector `(x, y, z)`; NaN components where the field is absent or a value null.
    fn vector(&self, row: usize, field: &str) -> Result<[f64; 3], String> {
        let expected = "a 3-vector (x, y, z)";
        match self.value(row, field) {
            None | Some(Value::Null) => Ok([f64::NAN; 3]),
            Some(Value::Array(a)) if a.len() == 3 => {
                let mut out = [f64::NAN; 3];
                for (slot, v) in out.iter_mut().zip(a) {
                    *slot = match v {
                        Value::Null => f64::NAN,
                        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                        other => return Err(self.wrong(row, field, other, expected)),
                    };
                }
                Ok(out)
            }
            Some(v) => Err(self.wrong(row, field, v, expected)),
        }
    }

    fn text(&self, row: usize, field: &str) -> Option<&'a str> {
        self.value(row, field).and_then(Value::as_str)
    }

    fn drawing(&self) -> Drawing {
        if ["pos_1", "dir_1", "pos_2", "dir_2"]
            .iter()
            .all(|f| self.has(f))
        {
            Drawing::Curve
        } else if self.has("pos") {
            Drawing::Point
        } else {
            Drawing::Nothing
        }
    }

    fn curve(&self, row: usize) -> Result<Option<Vec<[f32; 3]>>, String> {
        Ok(bezier_cm(
            self.vector(row, "pos_1")?,
            self.vector(row, "dir_1")?,
            self.vector(row, "pos_2")?,
            self.vector(row, "dir_2")?,
        ))
    }

    fn point(&self, row: usize) -> Result<Option<[f32; 3]>, String> {
        let p = self.vector(row, "pos")?;
        Ok(p.iter()
            .all(|c| c.is_finite())
            .then(|| p.map(|c| (c * CM_PER_M) as f32)))
    }

    /// η and φ of the centre of a calorimeter cell's eight corners.
    /// The centre of a calorimeter cell's front face, cm, when the table gives its corners.
    fn front_centre_cm(&self, row: usize) -> Result<Option<[f64; 3]>, String> {
        if !self.has("front_1") {
            return Ok(None);
        }
        let mut sum = [0.0f64; 3];
        for corner in ["front_1", "front_2", "front_3", "front_4"] {
            let c = self.vector(row, corner)?;
            for (s, v) in sum.iter_mut().zip(c) {
                *s += v * CM_PER_M / 4.0;
            }
        }
        Ok(sum.iter().all(|c| c.is_finite()).then_some(sum))
    }

    fn centre_eta_phi(&self, row: usize) -> Result<Option<(f64, f64)>, String> {
        let mut sum = [0.0f64; 3];
        for corner in [
            "front_1", "front_2", "front_3", "front_4", "back_1", "back_2", "back_3", "back_4",
        ] {
            let c = self.vector(row, corner)?;
            for (s, v) in sum.iter_mut().zip(c) {
                *s += v / 8.0;
            }
        }
        let [x, y, z] = sum;
        if !sum.iter().all(|c| c.is_finite()) {
            return Ok(None);
        }
        Ok(Some(((z / x.hypot(y)).asinh(), y.atan2(x))))
    }
}

/// The cubic Bézier curve iSpy draws for a track from its states at two points: from `p1`
/// along `d1` to `p2` arriving along `d2`, the control points a quarter of the chord along each
/// direction. Metres in, cm out; `None` unless every value is finite and both directions have
/// a length.
fn bezier_cm(p1: [f64; 3], d1: [f64; 3], p2: [f64; 3], d2: [f64; 3]) -> Option<Vec<[f32; 3]>> {
    let unit = |d: [f64; 3]| {
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        (n > 0.0 && n.is_finite()).then(|| d.map(|c| c / n))
    };
    if !p1.iter().chain(&p2).all(|c| c.is_finite()) {
        return None;
    }
    let (d1, d2) = (unit(d1)?, unit(d2)?);
    let chord =
        ((p2[0] - p1[0]).powi(2) + (p2[1] - p1[1]).powi(2) + (p2[2] - p1[2]).powi(2)).sqrt();
    let s = 0.25 * chord;
    let c1: [f64; 3] = std::array::from_fn(|k| p1[k] + s * d1[k]);
    let c2: [f64; 3] = std::array::from_fn(|k| p2[k] - s * d2[k]);
    let last = (CURVE_POINTS - 1) as f64;
    Some(
        (0..CURVE_POINTS)
            .map(|i| {
                let t = i as f64 / last;
                let u = 1.0 - t;
                let (b0, b1, b2, b3) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
                std::array::from_fn(|k| {
                    ((b0 * p1[k] + b1 * c1[k] + b2 * c2[k] + b3 * p2[k]) * CM_PER_M) as f32
                })
            })
            .collect(),
    )
}

/// A charged particle's track from its pT, η, φ and charge at `origin_m`.
struct Charged<'s> {
    pt: f64,
    eta: f64,
    phi: f64,
    charge: i32,
    origin_m: [f64; 3],
    pid: i32,
    chi2_ndf: f64,
    collection: &'s str,
}

impl Charged<'_> {
    fn track(&self, polyline_cm: Vec<[f32; 3]>) -> ParticleTrack {
        let (pt, eta, phi) = (self.pt, self.eta, self.phi);
        let momentum = [pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()];
        let origin_cm = self.origin_m.map(|c| c * CM_PER_M);
        let helix =
            Helix::new(origin_cm, momentum, self.charge, FIELD_TESLA).perigee(self.charge, pt);
        ParticleTrack {
            charge: self.charge,
            momentum,
            origin_cm,
            helix,
            pid: self.pid,
            chi2_ndf: self.chi2_ndf,
            n_hits: 0,
            polyline_cm,
            collection: self.collection.to_owned(),
        }
    }
}

/// Appends `track`, returning its index.
fn push_track(event: &mut CollisionEvent, track: ParticleTrack) -> Result<u32, String> {
    let index = u32::try_from(event.tracks.len())
        .map_err(|_| "more tracks than ALYX can index (2³²)".to_owned())?;
    event.tracks.push(track);
    Ok(index)
}

/// The PDG code of a lepton of `charge` (`code` for the negative one: 13 is μ⁻).
fn lepton_pid(code: i32, charge: i32) -> i32 {
    -code * charge.signum()
}

/// Run and event numbers from a member name `Events/Run_<run>/Event_<event>`.
fn numbers_from_name(member: &str) -> Option<(u64, u64)> {
    let digits = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut parts = member.rsplit('/');
    let event = digits(parts.next()?.strip_prefix("Event_")?)?;
    let run = digits(parts.next()?.strip_prefix("Run_")?)?;
    Some((run, event))
}

/// ns since the Unix epoch of an iSpy time, `2012-Sep-06 10:45:27.376966 GMT` (minified files
/// lose the spaces: `2010-Jul-1407:55:17.215593GMT`); `None` if it is not one.
fn parse_time_ns(text: &str) -> Option<i64> {
    let t = text.trim();
    let t = t.strip_suffix("GMT").or_else(|| t.strip_suffix("UTC"))?;
    let t = t.strip_suffix(' ').unwrap_or(t);
    let number = |s: Option<&str>| -> Option<i64> {
        let s = s?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    // YYYY-Mon-DD
    if t.get(4..5)? != "-" || t.get(8..9)? != "-" {
        return None;
    }
    let year = number(t.get(0..4))?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month_name = t.get(5..8)?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as i64
        + 1;
    let day = number(t.get(9..11))?;
    let rest = t.get(11..)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    // hh:mm:ss[.fraction]
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" {
        return None;
    }
    let (hour, minute, second) = (
        number(rest.get(0..2))?,
        number(rest.get(3..5))?,
        number(rest.get(6..8))?,
    );
    let fraction = rest.get(8..)?;
    let ns = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        None => return None,
        Some(f) if f.len() > 9 => return None,
        Some(f) => number(Some(f))? * 10i64.pow(9 - f.len() as u32),
    };
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    seconds.checked_mul(1_000_000_000)?.checked_add(ns)
}

fn header<'a>(
    member: &str,
    doc: &Document<'a>,
    used: &mut HashSet<&'a str>,
) -> Result<EventHeader, String> {
    let (mut run, mut number, mut timestamp_ns) = (None, None, 0);
    if let Some(name) = doc.newest("Event")
        && let Some(t) = doc.table(name)?
        && t.len() > 0
    {
        used.insert(name);
        run = t.unsigned(0, "run")?;
        number = t.unsigned(0, "event")?;
        timestamp_ns = t.text(0, "time").and_then(parse_time_ns).unwrap_or(0);
    }
    let from_name = numbers_from_name(member);
    let (Some(run), Some(event_number)) = (
        run.or(from_name.map(|n| n.0)),
        number.or(from_name.map(|n| n.1)),
    ) else {
        return Err(
            "has no run and event numbers: no `Event_V2` collection, and the member is not \
             named Events/Run_<run>/Event_<event>"
                .into(),
        );
    };
    Ok(EventHeader {
        run: u32::try_from(run).map_err(|_| format!("run number {run} does not fit 32 bits"))?,
        event_number,
        timestamp_ns,
        system: CollisionSystem::Pp,
        sqrt_s_gev: f64::NAN,
        vertex_cm: [f64::NAN; 3],
        trigger_bits: 0,
        weight: 1.0,
        hit_collections: Vec::new(),
    })
}

/// Why a collection with objects was left out.
fn unused_reason(name: &str, used: &HashSet<&str>) -> String {
    let fam = family(name);
    if let Some(newer) = used.iter().find(|u| family(u) == fam) {
        return format!("an older version of `{newer}`, the same objects");
    }
    let has = |f: &str| used.iter().any(|u| family(u) == f);
    match fam {
        "Jets" | "CaloJets" if has("PFJets") => {
            "calorimeter jets: the event's PF jets are imported (one jet list)".into()
        }
        "PFMETs" | "METs" | "CaloMETs" => {
            "another missing-energy estimate: ALYX keeps one per event (PF first)".into()
        }
        _ => "no ALYX counterpart".into(),
    }
}

fn build_event(
    member: &str,
    doc: &Document<'_>,
    notes: &mut Notes,
) -> Result<CollisionEvent, String> {
    let mut used: HashSet<&str> = HashSet::new();
    let mut event = CollisionEvent::new(header(member, doc, &mut used)?);

    if let Some(name) = doc.newest("Tracks")
        && let Some(t) = doc.table(name)?
    {
        used.insert(name);
        t.require(&["pt", "eta", "phi", "charge", "pos"], notes);
        notes.mapped.insert(format!(
            "`{name}` → tracks (perigee for {FIELD_TESLA} T; polylines from `TrackExtras_V1`)"
        ));
        let mut paths = doc.paths(&t, &["TrackExtras_V1"], &mut used)?;
        for row in 0..t.len() {
            let ndof = t.number(row, "ndof")?;
            let chi2_ndf = if ndof > 0.0 {
                t.number(row, "chi2")? / ndof
            } else {
                f64::NAN
            };
            let charged = Charged {
                pt: t.number(row, "pt")?,
                eta: t.number(row, "eta")?,
                phi: t.number(row, "phi")?,
                charge: t.charge(row)?,
                origin_m: t.vector(row, "pos")?,
                pid: 0,
                chi2_ndf,
                collection: name,
            };
            push_track(
                &mut event,
                charged.track(paths.remove(&row).unwrap_or_default()),
            )?;
        }
    }

    // Muons: one entry per particle, the global muon first (see the module's documentation).
    for (priority, kind, associations) in [
        (0, "GlobalMuons", &["MuonGlobalPoints_V1"][..]),
        (
            1,
            "TrackerMuons",
            &["MuonTrackerPoints_V1", "MuonTrackerExtras_V1"][..],
        ),
        (
            2,
            "StandaloneMuons",
            &["MuonStandalonePoints_V1", "MuonTrackExtras_V1"][..],
        ),
    ] {
        let Some(name) = doc.newest(kind) else {
            continue;
        };
        let Some(t) = doc.table(name)? else { continue };
        used.insert(name);
        t.require(&["pt", "eta", "phi", "charge"], notes);
        notes.mapped.insert(format!("`{name}` → muons"));
        let mut paths = doc.paths(&t, associations, &mut used)?;
        let earlier = event.muons.len();
        if priority > 0 && earlier.saturating_mul(t.len()) > MAX_MUON_COMPARISONS {
            return Err(format!(
                "`{name}`: {} muons to match against {earlier} others, more than an event holds",
                t.len()
            ));
        }
        for row in 0..t.len() {
            let (pt, eta, phi, charge) = (
                t.number(row, "pt")?,
                t.number(row, "eta")?,
                t.number(row, "phi")?,
                t.charge(row)?,
            );
            let seen =
                priority > 0
                    && event.muons.iter().take(earlier).any(|m| {
                        m.charge == charge && delta_r(m.eta, m.phi, eta, phi) < MUON_MATCH_DR
                    });
            if seen {
                notes.merged_muons += 1;
                continue;
            }
            let mut muon = PhysicsObject::from_pt_eta_phi_m(pt, eta, phi, mass::MUON, charge);
            muon.collection = name.to_owned();
            if let Some(path) = paths.remove(&row) {
                // Version 1 calls the reference point `rp`, version 2 `pos`.
                let origin_field = if t.has("pos") { "pos" } else { "rp" };
                let charged = Charged {
                    pt,
                    eta,
                    phi,
                    charge,
                    origin_m: t.vector(row, origin_field)?,
                    pid: lepton_pid(13, charge),
                    chi2_ndf: f64::NAN,
                    collection: name,
                };
                muon.track = Some(push_track(&mut event, charged.track(path))?);
            }
            event.muons.push(muon);
        }
    }

    if let Some(name) = doc.newest("GsfElectrons")
        && let Some(t) = doc.table(name)?
    {
        used.insert(name);
        t.require(&["pt", "eta", "phi", "charge"], notes);
        notes.mapped.insert(format!("`{name}` → electrons"));
        let mut paths = doc.paths(&t, &["GsfElectronExtras_V1"], &mut used)?;
        for row in 0..t.len() {
            let (pt, eta, phi, charge) = (
                t.number(row, "pt")?,
                t.number(row, "eta")?,
                t.number(row, "phi")?,
                t.charge(row)?,
            );
            let mut electron =
                PhysicsObject::from_pt_eta_phi_m(pt, eta, phi, mass::ELECTRON, charge);
            electron.collection = name.to_owned();
            if let Some(path) = paths.remove(&row) {
                let charged = Charged {
                    pt,
                    eta,
                    phi,
                    charge,
                    origin_m: t.vector(row, "pos")?,
                    pid: lepton_pid(11, charge),
                    chi2_ndf: f64::NAN,
                    collection: name,
                };
                electron.track = Some(push_track(&mut event, charged.track(path))?);
            }
            event.electrons.push(electron);
        }
    }

    if let Some(name) = doc.newest("Photons")
        && let Some(t) = doc.table(name)?
    {
        used.insert(name);
        t.require(&["eta", "phi"], notes);
        notes.mapped.insert(format!("`{name}` → photons"));
        for row in 0..t.len() {
            let (eta, phi) = (t.number(row, "eta")?, t.number(row, "phi")?);
            let et = if t.has("et") {
                t.number(row, "et")?
            } else {
                t.number(row, "energy")? / eta.cosh()
            };
            let mut photon = PhysicsObject::from_pt_eta_phi_m(et, eta, phi, 0.0, 0);
            photon.collection = name.to_owned();
            event.photons.push(photon);
        }
    }

    let jets = doc
        .newest("PFJets")
        .or_else(|| doc.newest("CaloJets"))
        .or_else(|| doc.newest("Jets"));
    if let Some(name) = jets
        && let Some(t) = doc.table(name)?
    {
        used.insert(name);
        t.require(&["et", "phi"], notes);
        notes.mapped.insert(format!("`{name}` → jets"));
        for row in 0..t.len() {
            let eta = if t.has("eta") {
                t.number(row, "eta")?
            } else {
                -(t.number(row, "theta")? / 2.0).tan().ln()
            };
            let mut jet = PhysicsObject::from_pt_eta_phi_m(
                t.number(row, "et")?,
                eta,
                t.number(row, "phi")?,
                0.0,
                0,
            );
            jet.collection = name.to_owned();
            event.jets.push(jet);
        }
    }

    for detector in ["EBRecHits", "EERecHits", "HBRecHits", "HERecHits"] {
        let Some(name) = doc.newest(detector) else {
            continue;
        };
        let Some(t) = doc.table(name)? else { continue };
        used.insert(name);
        t.require(&["energy"], notes);
        notes
            .mapped
            .insert(format!("`{name}` → calorimeter clusters"));
        for row in 0..t.len() {
            let (mut eta, mut phi) = (t.number(row, "eta")?, t.number(row, "phi")?);
            if !(eta.is_finite() && phi.is_finite())
                && let Some((e, p)) = t.centre_eta_phi(row)?
            {
                (eta, phi) = (e, p);
            }
            event.clusters.push(CaloCluster {
                energy_gev: t.number(row, "energy")?,
                eta,
                phi,
                position_cm: t.front_centre_cm(row)?.unwrap_or([f64::NAN; 3]),
                collection: name.to_owned(),
            });
        }
    }

    let vertices = doc
        .newest("PrimaryVertices")
        .or_else(|| doc.newest("Vertices"));
    if let Some(name) = vertices
        && let Some(t) = doc.table(name)?
    {
        used.insert(name);
        t.require(&["pos"], notes);
        notes.mapped.insert(format!(
            "`{name}` → the primary vertex (the first) and vertices (the others)"
        ));
        for row in 0..t.len() {
            let position_cm = t.vector(row, "pos")?.map(|c| c * CM_PER_M);
            if row == 0 {
                event.header.vertex_cm = position_cm;
            } else {
                event.vertices.push(Vertex {
                    position_cm,
                    n_tracks: 0,
                    collection: name.to_owned(),
                });
            }
        }
    }

    let met = doc
        .newest("PFMETs")
        .or_else(|| doc.newest("METs"))
        .or_else(|| doc.newest("CaloMETs"));
    if let Some(name) = met
        && let Some(t) = doc.table(name)?
        && t.len() > 0
    {
        used.insert(name);
        notes.mapped.insert(format!("`{name}` → missing energy"));
        let (px, py, pt, phi) = (
            t.number(0, "px")?,
            t.number(0, "py")?,
            t.number(0, "pt")?,
            t.number(0, "phi")?,
        );
        let xy = px.is_finite() && py.is_finite();
        let polar = pt.is_finite() && phi.is_finite();
        event.met = Some(match (xy, polar) {
            (true, false) => MissingEnergy::from_xy(px, py),
            (false, true) => MissingEnergy::from_pt_phi(pt, phi),
            // Both as the file gives them, or NaN where it has neither.
            _ => MissingEnergy {
                px_gev: px,
                py_gev: py,
                pt_gev: pt,
                phi,
            },
        });
    }

    for (name, rows) in doc.collections {
        if used.contains(name.as_str()) || rows.as_array().is_none_or(|r| r.is_empty()) {
            continue;
        }
        notes
            .skipped
            .insert(format!("`{name}`: {}", unused_reason(name, &used)));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(text: &str) -> Value {
        serde_json::from_str(&dialect_to_json(text).expect("dialect")).expect("json")
    }

    fn event(member: &str, text: &str) -> Result<CollisionEvent, String> {
        read_event(member, text.to_owned(), &mut Notes::default())
    }

    #[test]
    fn dialect_quotes_tuples_and_nan_become_json() {
        // As CMS writes it: single-quoted top-level keys, tuples for 3-vectors, bare `nan`.
        let v = parse(
            "{'Types': {\"A_V1\": [[\"pos\", \"v3d\"], [\"e\", \"double\"]]},\n\
             'Collections': {\"A_V1\": [[(1, -2.5e-3, 3E+2), nan], [(0.5,nan,-nan), -inf]]}}",
        );
        let row = &v["Collections"]["A_V1"][0];
        let pos: Vec<f64> = row[0]
            .as_array()
            .expect("tuple")
            .iter()
            .map(|c| c.as_f64().expect("number"))
            .collect();
        assert_eq!(pos, [1.0, -2.5e-3, 300.0]);
        assert!(row[1].is_null());
        let row = &v["Collections"]["A_V1"][1];
        assert_eq!(row[0][0].as_f64(), Some(0.5));
        assert!(row[0][1].is_null() && row[0][2].is_null() && row[1].is_null());
    }

    #[test]
    fn dialect_leaves_strings_alone() {
        let v =
            parse(r#"["(nan) 'x' inf", 'say "hi" (nan)', 'it\'s', "a\"b", Infinity, NaN, true]"#);
        assert_eq!(v[0], "(nan) 'x' inf");
        assert_eq!(v[1], "say \"hi\" (nan)");
        assert_eq!(v[2], "it's");
        assert_eq!(v[3], "a\"b");
        assert!(v[4].is_null() && v[5].is_null());
        assert_eq!(v[6], true);
    }

    #[test]
    fn dialect_refuses_an_unclosed_string_and_leaves_junk_to_serde() {
        let err = dialect_to_json("{'Types': {\"A").expect_err("unclosed");
        assert!(err.contains("never closed"), "{err}");
        let junk = dialect_to_json("[nano, 1e-05]").expect("copied");
        assert_eq!(junk, "[nano, 1e-05]");
        assert!(serde_json::from_str::<Value>(&junk).is_err());
    }

    #[test]
    fn times_with_and_without_spaces() {
        let ns = parse_time_ns("2012-Sep-06 10:45:27.376966 GMT").expect("time");
        assert_eq!(ns, 1_346_928_327_376_966_000);
        assert_eq!(alyx_core::utc(ns), "2012-09-06 10:45:27.376 UTC");
        assert_eq!(
            parse_time_ns("2010-Jul-1407:55:17.215593GMT"),
            Some(1_279_094_117_215_593_000)
        );
        assert_eq!(
            parse_time_ns("2000-Feb-29 00:00:00 UTC"),
            Some(951_782_400_000_000_000)
        );
        for bad in [
            "",
            "Thu Sep  6 12:45:27 2012 CEST",
            "2012-Foo-06 10:45:27 GMT",
            "2012-Sep-06 10:45 GMT",
        ] {
            assert_eq!(parse_time_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn bezier_runs_from_the_first_state_to_the_second_in_cm() {
        let curve = bezier_cm(
            [0.0, 0.0, 0.0],
            [2.0, 0.0, 0.0],
            [1.0, 1.0, 0.0],
            [0.0, 3.0, 0.0],
        )
        .expect("curve");
        assert_eq!(curve.len(), CURVE_POINTS);
        assert_eq!(curve[0], [0.0, 0.0, 0.0]);
        assert_eq!(curve[CURVE_POINTS - 1], [100.0, 100.0, 0.0]);
        // Leaves along +x, arrives along +y: the curve bulges below the chord y = x.
        assert!(curve[CURVE_POINTS / 2][1] < curve[CURVE_POINTS / 2][0]);
        assert!(bezier_cm([0.0; 3], [0.0; 3], [1.0; 3], [1.0; 3]).is_none());
        assert!(bezier_cm([f64::NAN; 3], [1.0; 3], [1.0; 3], [1.0; 3]).is_none());
    }

    /// A small event: two tracks (one with extras), a global muon, a tracker muon that is the
    /// same particle and one that is not, a vertex pair.
    const EVENT: &str = r#"{'Types': {"Event_V2": [["run", "int"], ["event", "int"], ["time", "string"]],
        "Tracks_V2": [["pos", "v3d"], ["dir", "v3d"], ["pt", "double"], ["phi", "double"], ["eta", "double"], ["charge", "int"], ["chi2", "double"], ["ndof", "double"]],
        "Extras_V1": [["pos_1", "v3d"], ["dir_1", "v3d"], ["pos_2", "v3d"], ["dir_2", "v3d"]],
        "GlobalMuons_V1": [["pt", "double"], ["charge", "int"], ["rp", "v3d"], ["phi", "double"], ["eta", "double"]],
        "TrackerMuons_V1": [["pt", "double"], ["charge", "int"], ["rp", "v3d"], ["phi", "double"], ["eta", "double"]],
        "Vertices_V1": [["pos", "v3d"]]},
     'Collections': {"Event_V2": [[202299, 421267699, "2012-Sep-06 10:45:27.376966 GMT"]],
        "Tracks_V2": [[(0, 0.001, 0.05), (1, 0, 0), 10.0, 0.0, 0.0, 1, 8.0, 4.0], [(0, 0, 0), (0, 1, 0), 2.0, 1.5, nan, -1, 1.0, 0.0]],
        "Extras_V1": [[(0, 0, 0), (1, 0, 0), (1, 0.1, 0), (1, 0.2, 0)]],
        "GlobalMuons_V1": [[20.0, -1, (0, 0, 0.01), 0.5, 1.0]],
        "TrackerMuons_V1": [[20.5, -1, (0, 0, 0.01), 0.51, 1.01], [5.0, 1, (0, 0, 0.01), 0.52, 1.0]],
        "Vertices_V1": [[(0.001, 0.002, 0.05)], [(0.001, 0.002, -0.03)]]},
     'Associations': {"TrackExtras_V1": [[[1, 0], [2, 0]]]}}"#;

    #[test]
    fn an_event_maps_by_field_name_and_keeps_each_muon_once() {
        let mut notes = Notes::default();
        let e = read_event("Events/Run_1/Event_2", EVENT.to_owned(), &mut notes).expect("event");
        assert_eq!(
            (e.header.run, e.header.event_number),
            (202_299, 421_267_699)
        );
        assert_eq!(e.header.timestamp_ns, 1_346_928_327_376_966_000);
        assert_eq!(e.header.vertex_cm, [0.1, 0.2, 5.0]);
        assert_eq!(e.vertices.len(), 1);
        assert_eq!(e.tracks.len(), 2);
        let t = &e.tracks[0];
        assert_eq!(
            (t.charge, t.chi2_ndf, t.collection.as_str()),
            (1, 2.0, "Tracks_V2")
        );
        assert!((t.pt() - 10.0).abs() < 1e-12);
        assert_eq!(t.origin_cm, [0.0, 0.1, 5.0]);
        assert_eq!(t.polyline_cm.len(), CURVE_POINTS);
        assert_eq!(t.polyline_cm[CURVE_POINTS - 1], [100.0, 10.0, 0.0]);
        // A track leaving (0, 0.1, 5) cm along +x passes the z axis at |d0| = 0.1 cm.
        assert!((t.helix.d0_cm.abs() - 0.1).abs() < 1e-6, "{:?}", t.helix);
        assert!(e.tracks[1].polyline_cm.is_empty() && e.tracks[1].chi2_ndf.is_nan());
        // The first tracker muon is the global one again; the second is another muon.
        let muons: Vec<(&str, i32)> = e
            .muons
            .iter()
            .map(|m| (m.collection.as_str(), m.charge))
            .collect();
        assert_eq!(muons, [("GlobalMuons_V1", -1), ("TrackerMuons_V1", 1)]);
        assert_eq!(notes.merged_muons, 1);
        assert!((e.muons[0].mass_gev - mass::MUON).abs() < 1e-15);
        assert!(notes.skipped.is_empty(), "{:?}", notes.skipped);
    }

    #[test]
    fn numbers_come_from_the_member_name_without_an_event_collection() {
        let e = event(
            "Events/Run_7/Event_12345678901",
            "{'Types': {}, 'Collections': {}, 'Associations': {}}",
        )
        .expect("event");
        assert_eq!((e.header.run, e.header.event_number), (7, 12_345_678_901));
        assert!(e.header.sqrt_s_gev.is_nan() && e.header.system == CollisionSystem::Pp);
        let err =
            event("Events/whatever", "{'Types': {}, 'Collections': {}}").expect_err("no numbers");
        assert!(err.contains("run and event numbers"), "{err}");
    }

    #[test]
    fn malformed_documents_are_errors_naming_the_collection() {
        let cases = [
            // A row one value short of its Types.
            (
                EVENT.replace(
                    "[[20.0, -1, (0, 0, 0.01), 0.5, 1.0]]",
                    "[[20.0, -1, (0, 0, 0.01), 0.5]]",
                ),
                "GlobalMuons_V1",
            ),
            // A number where a 3-vector belongs, and a string where a number does.
            (
                EVENT.replace("[[(0.001, 0.002, 0.05)],", "[[0.001],"),
                "Vertices_V1",
            ),
            (EVENT.replace("20.0, -1", "\"20\", -1"), "`pt` is a string"),
            // Associations to a collection that does not exist and to a row past the end.
            (
                EVENT.replace("[[[1, 0], [2, 0]]]", "[[[1, 0], [99, 0]]]"),
                "collection #99",
            ),
            (
                EVENT.replace("[[[1, 0], [2, 0]]]", "[[[1, 0], [2, 5]]]"),
                "row 5 of `Extras_V1`",
            ),
            (
                EVENT.replace("[[[1, 0], [2, 0]]]", "[[1, 0]]"),
                "TrackExtras_V1",
            ),
            (EVENT.replace("'Types'", "'Typos'"), "no `Types`"),
            ("[1, 2]".to_owned(), "not an object"),
            ("{'Types': {".to_owned(), "not an iSpy event document"),
        ];
        for (text, why) in cases {
            let err = event("Events/Run_1/Event_2", &text).expect_err(why);
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn a_member_is_bounded_whatever_its_header_claims() {
        let err = read_member(std::io::repeat(b'x'), 10, 1000).expect_err("endless");
        assert!(err.contains("more than 1000"), "{err}");
        let err = read_member(&b"{}"[..], 5000, 1000).expect_err("claims too much");
        assert!(err.contains("claims 5000"), "{err}");
        assert_eq!(read_member(&b"{}"[..], 2, 1000).expect("small"), "{}");
    }

    fn write_archive(path: &Path, members: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            zip.start_file(*name, options).expect("start");
            zip.write_all(data).expect("write");
        }
        zip.finish().expect("finish");
    }

    #[test]
    fn archives_import_in_batches_and_big_members_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.ig");
        let other = EVENT.replace("421267699", "5");
        write_archive(
            &path,
            &[
                ("Header", b"\"CMSSW_5_3_36\"".as_slice()),
                ("Events/Run_202299/Event_421267699", EVENT.as_bytes()),
                ("Events/Run_202299/Event_5", other.as_bytes()),
                ("Geometry/Tracker", b"{}".as_slice()),
            ],
        );
        let mut batches = Vec::new();
        let report = import_batches(&path, 1, &mut |b| {
            batches.push(b.iter().map(|e| e.header.event_number).collect::<Vec<_>>());
            Ok(())
        })
        .expect("import");
        assert_eq!(batches, [vec![421_267_699], vec![5]]);
        assert!(
            report.mapped.iter().any(|l| l.contains("CMSSW_5_3_36")),
            "{:?}",
            report.mapped
        );
        assert!(
            report
                .skipped
                .iter()
                .any(|l| l.contains("Geometry/Tracker"))
        );

        // A megabyte of blanks deflates to a kilobyte: refused above a 64 KiB limit.
        let bomb = dir.path().join("bomb.ig");
        let blanks = vec![b' '; 1 << 20];
        write_archive(&bomb, &[("Events/Run_1/Event_1", blanks.as_slice())]);
        let limits = Limits {
            member_bytes: 1 << 16,
            members: 10,
        };
        let err = import_batches_with(&bomb, limits, 1, &mut |_| Ok(())).expect_err("bomb");
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("Events/Run_1/Event_1"), "{err}");
        let few = Limits {
            member_bytes: 1 << 30,
            members: 2,
        };
        let err = import_batches_with(&path, few, 1, &mut |_| Ok(())).expect_err("members");
        assert!(err.to_string().contains("4 zip members"), "{err}");
    }
}
