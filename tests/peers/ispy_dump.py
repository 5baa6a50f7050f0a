"""Reads a CMS iSpy (.ig) archive with the standard library alone, for ALYX's iSpy import test.

Usage: ispy_dump.py FILE.ig

An .ig file is a zip archive; each member `Events/Run_<run>/Event_<event>` is one event written
in a JSON-like dialect: single-quoted strings, 3-vectors as parenthesised tuples `(x, y, z)` and
`nan` for missing numbers (C++ iostream output; `inf` and `-inf` are read too). Lengths are in
metres, energies in GeV.

Prints one JSON object: {"events": [...]} in archive order, each event with its member name,
run, event, timestamp_ns (from Event_V2's `time`, 0 if absent), the primary vertex in cm, the
number of objects per ALYX collection ({"tracks": {"Tracks_V3": 168, ...}, "muons": ...}), the
missing transverse momentum (px, py), the range of distances from the beam (cm) of the
calorimeter rec-hits' front faces per collection ("calo_rho_cm") and three invariant masses,
null where undefined:
  mumu:        the leading muon and the leading muon of opposite charge, among the muons ALYX
               keeps (global muons, then tracker and standalone muons that are not one of them),
  mumu_global: the same among the global muons alone,
  ee:          the two leading GSF electrons,
all from (pT, eta, phi) with the PDG masses, as ALYX's four-momenta are.

The selection rules are the importer's, written out independently: the highest version of each
collection (`Tracks_V3` over `Tracks_V2`), PF jets and PF MET in preference to calorimeter ones,
the first vertex as the primary one, muon candidates of lower priority (tracker, then
standalone) dropped when a kept muon of a higher-priority collection has the same charge and lies
within dR < 0.2.
"""
import calendar
import datetime
import json
import math
import re
import sys
import zipfile

MUON_MASS = 0.1056583755
ELECTRON_MASS = 0.00051099895
MUON_MATCH_DR = 0.2
CM_PER_M = 100.0

TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[()]|-?\b(?:nan|inf)\b", re.S)


def to_json(text):
    def fix(m):
        t = m.group(0)
        if t[0] == '"':
            return t
        if t[0] == "'":
            body = t[1:-1].replace("\\'", "'").replace('"', '\\"')
            return '"' + body + '"'
        if t == "(":
            return "["
        if t == ")":
            return "]"
        return {"nan": "NaN", "-nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[t]

    return TOKEN.sub(fix, text)


def parse(text):
    return json.loads(to_json(text))


def version(name, family):
    m = re.fullmatch(re.escape(family) + r"_V(\d+)", name)
    return int(m.group(1)) if m else None


def pick(doc, family):
    """The highest version of `family` present in the event, as (name, rows as dicts)."""
    best = None
    for name in doc["Collections"]:
        v = version(name, family)
        if v is not None and (best is None or v > best[0]):
            best = (v, name)
    if best is None:
        return None
    name = best[1]
    fields = [f[0] for f in doc["Types"][name]]
    rows = [dict(zip(fields, row)) for row in doc["Collections"][name]]
    return name, rows


def first_present(doc, families):
    for family in families:
        got = pick(doc, family)
        if got is not None:
            return got
    return None


def num(v):
    return float("nan") if v is None else float(v)


def delta_r(eta1, phi1, eta2, phi2):
    d = (phi1 - phi2) % (2 * math.pi)
    if d > math.pi:
        d -= 2 * math.pi
    return math.hypot(eta1 - eta2, d)


def p4(o, mass):
    pt, eta, phi = o["pt"], o["eta"], o["phi"]
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return px, py, pz, math.sqrt(px * px + py * py + pz * pz + mass * mass)


def pair_mass(a, b, mass):
    s = [x + y for x, y in zip(p4(a, mass), p4(b, mass))]
    p = math.sqrt(s[0] ** 2 + s[1] ** 2 + s[2] ** 2)
    m2 = (s[3] - p) * (s[3] + p)
    return math.sqrt(m2) if m2 >= 0 else -math.sqrt(-m2)


def leading_opposite(muons):
    ranked = sorted(muons, key=lambda m: -m["pt"])
    if not ranked:
        return None
    lead = ranked[0]
    for other in ranked[1:]:
        if other["charge"] * lead["charge"] < 0:
            return pair_mass(lead, other, MUON_MASS)
    return None


def timestamp_ns(text):
    """ns since the epoch of `2012-Sep-06 10:45:27.376966 GMT`; some files have lost the
    spaces (`2010-Jul-1407:55:17.215593GMT`). 0 when unreadable."""
    m = re.fullmatch(r"(\d{4})-([A-Za-z]{3})-(\d{2}) ?(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ?(?:GMT|UTC)", text.strip())
    if not m:
        return 0
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    if m.group(2).lower() not in months:
        return 0
    t = datetime.datetime(int(m.group(1)), months.index(m.group(2).lower()) + 1, int(m.group(3)),
                          int(m.group(4)), int(m.group(5)), int(m.group(6)))
    frac = int((m.group(7) or "0").ljust(9, "0"))
    return calendar.timegm(t.timetuple()) * 1_000_000_000 + frac


def dump_event(member, doc):
    out = {"member": member}
    header = first_present(doc, ["Event"])
    named = re.search(r"Run_(\d+)/Event_(\d+)$", member)
    if header and header[1]:
        h = header[1][0]
        out["run"], out["event"] = int(h["run"]), int(h["event"])
        out["timestamp_ns"] = timestamp_ns(h.get("time", "")) if "time" in h else 0
    else:
        out["run"], out["event"] = int(named.group(1)), int(named.group(2))
        out["timestamp_ns"] = 0
    counts = {k: {} for k in ["tracks", "muons", "electrons", "photons", "jets", "clusters", "vertices"]}

    def count(kind, name, n=1):
        if n > 0:
            counts[kind][name] = counts[kind].get(name, 0) + n

    tracks = pick(doc, "Tracks")
    if tracks:
        count("tracks", tracks[0], len(tracks[1]))

    # Muons, one entry per muon; those with drawn points or an extrapolation also get a track.
    kept = []
    for family in ["GlobalMuons", "TrackerMuons", "StandaloneMuons"]:
        got = pick(doc, family)
        if not got:
            continue
        name, rows = got
        earlier = list(kept)
        paths = muon_paths(doc, name)
        for i, r in enumerate(rows):
            mu = {"pt": num(r["pt"]), "eta": num(r["eta"]), "phi": num(r["phi"]),
                  "charge": int(r["charge"]), "collection": name}
            if family != "GlobalMuons" and any(
                k["charge"] == mu["charge"]
                and delta_r(k["eta"], k["phi"], mu["eta"], mu["phi"]) < MUON_MATCH_DR
                for k in earlier
            ):
                continue
            kept.append(mu)
            count("muons", name)
            if i in paths:
                count("tracks", name)
    electrons = []
    got = pick(doc, "GsfElectrons")
    if got:
        name, rows = got
        paths = linked(doc, name, ["GsfElectronExtras_V1"])
        for i, r in enumerate(rows):
            electrons.append({"pt": num(r["pt"]), "eta": num(r["eta"]), "phi": num(r["phi"])})
            count("electrons", name)
            if i in paths:
                count("tracks", name)
    got = pick(doc, "Photons")
    if got:
        count("photons", got[0], len(got[1]))
    got = first_present(doc, ["PFJets"]) or first_present(doc, ["CaloJets", "Jets"])
    if got:
        count("jets", got[0], len(got[1]))
    out["calo_rho_cm"] = {}
    for family in ["EBRecHits", "EERecHits", "HBRecHits", "HERecHits"]:
        got = pick(doc, family)
        if got:
            count("clusters", got[0], len(got[1]))
            rho = [front_rho_cm(r) for r in got[1] if "front_1" in r]
            rho = [x for x in rho if finite(x)]
            if rho:
                out["calo_rho_cm"][got[0]] = [min(rho), max(rho)]
    got = first_present(doc, ["PrimaryVertices", "Vertices"])
    out["vertex_cm"] = None
    if got and got[1]:
        out["vertex_cm"] = [num(c) * CM_PER_M for c in got[1][0]["pos"]]
        count("vertices", got[0], len(got[1]) - 1)
    met = first_present(doc, ["PFMETs", "METs", "CaloMETs"])
    out["met"] = [num(met[1][0]["px"]), num(met[1][0]["py"])] if met and met[1] else None
    out["counts"] = {k: v for k, v in counts.items()}
    out["mumu"] = leading_opposite(kept)
    out["mumu_global"] = leading_opposite([m for m in kept if m["collection"].startswith("GlobalMuons_")])
    ranked = sorted(electrons, key=lambda e: -e["pt"])
    out["ee"] = pair_mass(ranked[0], ranked[1], ELECTRON_MASS) if len(ranked) >= 2 else None
    return out


def front_rho_cm(hit):
    """The distance from the beam of the centre of a rec-hit's front face (its four front
    corners), cm."""
    x = sum(num(hit[f"front_{i}"][0]) for i in range(1, 5)) / 4 * CM_PER_M
    y = sum(num(hit[f"front_{i}"][1]) for i in range(1, 5)) / 4 * CM_PER_M
    return math.hypot(x, y)


def linked(doc, name, associations):
    """Indices of the objects of collection `name` that an association links to a drawable
    target (Extras_V1 extrapolations or Points_V1 points) with finite values."""
    types = list(doc["Types"])
    index = types.index(name)
    out = set()
    for assoc in associations:
        for (lc, li), (rc, ri) in doc.get("Associations", {}).get(assoc, []):
            if lc != index:
                continue
            target = types[rc]
            fields = [f[0] for f in doc["Types"][target]]
            row = dict(zip(fields, doc["Collections"][target][ri]))
            if target.startswith("Extras_"):
                values = [c for k in ["pos_1", "dir_1", "pos_2", "dir_2"] for c in row[k]]
                if all(v is not None and math.isfinite(v) for v in values) and any(row["dir_1"]) and any(row["dir_2"]):
                    out.add(li)
            elif target.startswith("Points_"):
                if all(v is not None and math.isfinite(v) for v in row["pos"]):
                    out.add(li)
    return out


def muon_paths(doc, name):
    if name.startswith("GlobalMuons_"):
        return linked(doc, name, ["MuonGlobalPoints_V1"])
    if name.startswith("TrackerMuons_"):
        return linked(doc, name, ["MuonTrackerPoints_V1", "MuonTrackerExtras_V1"])
    return linked(doc, name, ["MuonStandalonePoints_V1", "MuonTrackExtras_V1"])


def finite(v):
    """JSON has no NaN: a non-finite number is written as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def main():
    path = sys.argv[1]
    events = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.is_dir() or not info.filename.lower().startswith("events/"):
                continue
            doc = parse(z.read(info).decode("utf-8"))
            events.append(dump_event(info.filename, doc))
    json.dump(finite({"events": events}), sys.stdout, indent=1, allow_nan=False)


if __name__ == "__main__":
    main()
