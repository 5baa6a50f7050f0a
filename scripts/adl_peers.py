"""The ADL benchmark queries with the field's peers, over an ALYX dataset's events.

    python adl_peers.py DATASET_DIR
    python adl_peers.py --nanoaod FILE.root

The second form reads a NanoAOD TTree with uproot (float64 arrays, as ALYX computes) and
prints only the awkward-array entries of each query (the differential test of the importer).

Reads the dataset's Parquet chunks (events, jets, muons, electrons) into awkward arrays,
writes them once as a NanoAOD-like ROOT TTree (uproot), then times each query with
ROOT's RDataFrame (2 threads) and with awkward-array, filling the same histograms as ALYX.
Prints one JSON line per (peer, query): seconds and the histogram's entries in range.
Needs: root (PyPI root==0.1a12), awkward, uproot, pyarrow, numpy.
"""
import json
import os
import sys
import time

import awkward as ak
import numpy as np

BINS = {  # query: [(column, bins, lo, hi)], as alyx_query::adl
    1: [(100, 0.0, 200.0)],
    2: [(100, 15.0, 215.0)],
    3: [(100, 15.0, 215.0)],
    4: [(100, 0.0, 200.0)],
    5: [(100, 0.0, 200.0)],
    6: [(100, 0.0, 400.0), (100, 0.0, 1.0)],
    7: [(100, 0.0, 500.0)],
    8: [(100, 0.0, 200.0)],
}


def load(dataset):
    import pyarrow.parquet as pq

    manifest = json.load(open(os.path.join(dataset, "manifest.json")))
    chunks = sorted(manifest["chunks"], key=lambda c: c["first_event_id"])

    def table(name, columns):
        parts = [pq.read_table(os.path.join(dataset, c["files"][name]["path"]), columns=columns) for c in chunks]
        t = parts[0] if len(parts) == 1 else __import__("pyarrow").concat_tables(parts)
        return {c: t.column(c).to_numpy() for c in columns}

    ev = table("events", ["event_id", "met_pt", "met_phi"])
    first = ev["event_id"].min()
    n = len(ev["event_id"])

    def jagged(name, fields):
        t = table(name, ["event_id"] + fields)
        counts = np.bincount(t["event_id"] - first, minlength=n)
        order = np.argsort(t["event_id"], kind="stable")
        return ak.zip({f: ak.unflatten(t[f][order], counts) for f in fields})

    jets = jagged("jets", ["pt", "eta", "phi", "mass", "btag"])
    muons = jagged("muons", ["pt", "eta", "phi", "mass", "charge"])
    electrons = jagged("electrons", ["pt", "eta", "phi", "mass", "charge"])
    return n, ev["met_pt"], ev["met_phi"], jets, muons, electrons


def hist(values, spec):
    bins, lo, hi = spec
    if isinstance(values, ak.Array):
        values = ak.to_numpy(ak.fill_none(values, np.nan))
    v = np.asarray(values, dtype=np.float64)
    counts, _ = np.histogram(v[np.isfinite(v)], bins=bins, range=(lo, hi))
    return int(counts.sum())


def p4(o):
    px, py = o.pt * np.cos(o.phi), o.pt * np.sin(o.phi)
    pz = o.pt * np.sinh(o.eta)
    e = np.sqrt((o.pt * np.cosh(o.eta)) ** 2 + o.mass ** 2)
    return px, py, pz, e


def mass_of(*objs):
    px = py = pz = e = 0
    for o in objs:
        a, b, c, d = p4(o)
        px, py, pz, e = px + a, py + b, pz + c, e + d
    return np.sqrt(np.maximum(e ** 2 - px ** 2 - py ** 2 - pz ** 2, 0)), np.sqrt(px ** 2 + py ** 2)


def dphi(a, b):
    d = a - b
    return d - 2 * np.pi * np.floor((d + np.pi) / (2 * np.pi))


def awkward_query(q, met, metphi, jets, muons, electrons):
    if q == 1:
        return [hist(met, BINS[1][0])]
    if q == 2:
        return [hist(ak.flatten(jets.pt), BINS[2][0])]
    if q == 3:
        return [hist(ak.flatten(jets.pt[abs(jets.eta) < 1]), BINS[3][0])]
    if q == 4:
        return [hist(met[ak.sum(jets.pt > 40, axis=1) >= 2], BINS[4][0])]
    if q == 5:
        a, b = ak.unzip(ak.combinations(muons, 2))
        m, _ = mass_of(a, b)
        ok = (a.charge != b.charge) & (m >= 60) & (m <= 120)
        return [hist(met[ak.any(ok, axis=1)], BINS[5][0])]
    if q == 6:
        a, b, c = ak.unzip(ak.combinations(jets, 3))
        m, pt = mass_of(a, b, c)
        best = ak.argmin(abs(m - 172.5), axis=1, keepdims=True)
        btag = np.maximum(np.maximum(a.btag, b.btag), c.btag)
        return [hist(ak.flatten(pt[best], axis=None), BINS[6][0]), hist(ak.flatten(btag[best], axis=None), BINS[6][1])]
    if q == 7:
        j = jets[jets.pt > 30]
        lep = ak.concatenate([muons, electrons], axis=1)
        lep = lep[lep.pt > 10]
        jj, ll = ak.unzip(ak.cartesian([j, lep], nested=True))
        dr = np.sqrt((jj.eta - ll.eta) ** 2 + dphi(jj.phi, ll.phi) ** 2)
        clean = ak.all(dr >= 0.4, axis=2)
        return [hist(ak.sum(j.pt[clean], axis=1), BINS[7][0])]
    if q == 8:
        mu = ak.with_field(muons, 13, "flavour")
        el = ak.with_field(electrons, 11, "flavour")
        lep = ak.concatenate([mu, el], axis=1)
        lep = ak.with_field(lep, ak.local_index(lep, axis=1), "i")
        three = ak.num(lep, axis=1) >= 3
        lep, met3, phi3 = lep[three], met[three], metphi[three]
        a, b = ak.unzip(ak.combinations(lep, 2))
        m, _ = mass_of(a, b)
        sfos = (a.flavour == b.flavour) & (a.charge != b.charge)
        d = ak.where(sfos, abs(m - 91.2), np.inf)
        has = ak.any(sfos, axis=1)
        best = ak.argmin(d, axis=1, keepdims=True)
        ia, ib = ak.firsts(a.i[best]), ak.firsts(b.i[best])
        lep, ia, ib, met3, phi3 = lep[has], ia[has], ib[has], met3[has], phi3[has]
        other = lep[(lep.i != ia) & (lep.i != ib)]
        lead = other[ak.argmax(other.pt, axis=1, keepdims=True)]
        lpt, lphi = ak.firsts(lead.pt), ak.firsts(lead.phi)
        mt = np.sqrt(np.maximum(2 * lpt * met3 * (1 - np.cos(dphi(lphi, phi3))), 0))
        return [hist(mt, BINS[8][0])]


RDF_HELPERS = r"""
using ROOT::RVec;
using P4 = ROOT::Math::PtEtaPhiMVector;
bool alyx_q5(const RVec<float>& pt, const RVec<float>& eta, const RVec<float>& phi, const RVec<float>& m, const RVec<int>& q) {
  for (size_t a = 0; a < pt.size(); a++) for (size_t b = a + 1; b < pt.size(); b++) {
    if (q[a] == q[b]) continue;
    double mass = (P4(pt[a], eta[a], phi[a], m[a]) + P4(pt[b], eta[b], phi[b], m[b])).M();
    if (mass >= 60 && mass <= 120) return true;
  }
  return false;
}
RVec<double> alyx_q6(const RVec<float>& pt, const RVec<float>& eta, const RVec<float>& phi, const RVec<float>& m, const RVec<float>& btag) {
  double best = 1e300, bpt = 0, bb = 0;
  for (size_t a = 0; a < pt.size(); a++) for (size_t b = a + 1; b < pt.size(); b++) for (size_t c = b + 1; c < pt.size(); c++) {
    auto s = P4(pt[a], eta[a], phi[a], m[a]) + P4(pt[b], eta[b], phi[b], m[b]) + P4(pt[c], eta[c], phi[c], m[c]);
    double d = std::abs(s.M() - 172.5);
    if (d < best) { best = d; bpt = s.Pt(); bb = std::max({btag[a], btag[b], btag[c]}); }
  }
  if (best == 1e300) return {};
  return {bpt, bb};
}
double alyx_q7(const RVec<float>& jpt, const RVec<float>& jeta, const RVec<float>& jphi,
               const RVec<float>& mpt, const RVec<float>& meta, const RVec<float>& mphi,
               const RVec<float>& ept, const RVec<float>& eeta, const RVec<float>& ephi) {
  double sum = 0;
  for (size_t j = 0; j < jpt.size(); j++) {
    if (jpt[j] <= 30) continue;
    bool near = false;
    for (size_t l = 0; l < mpt.size() && !near; l++) if (mpt[l] > 10 && ROOT::VecOps::DeltaR(jeta[j], meta[l], jphi[j], mphi[l]) < 0.4) near = true;
    for (size_t l = 0; l < ept.size() && !near; l++) if (ept[l] > 10 && ROOT::VecOps::DeltaR(jeta[j], eeta[l], jphi[j], ephi[l]) < 0.4) near = true;
    if (!near) sum += jpt[j];
  }
  return sum;
}
RVec<double> alyx_q8(const RVec<float>& mpt, const RVec<float>& meta, const RVec<float>& mphi, const RVec<float>& mm, const RVec<int>& mq,
                     const RVec<float>& ept, const RVec<float>& eeta, const RVec<float>& ephi, const RVec<float>& em, const RVec<int>& eq,
                     float met, float metphi) {
  size_t nm = mpt.size(), n = nm + ept.size();
  if (n < 3) return {};
  auto get = [&](size_t i) { return i < nm ? P4(mpt[i], meta[i], mphi[i], mm[i]) : P4(ept[i-nm], eeta[i-nm], ephi[i-nm], em[i-nm]); };
  auto charge = [&](size_t i) { return i < nm ? mq[i] : eq[i-nm]; };
  double best = 1e300; size_t ba = 0, bb = 0;
  for (size_t a = 0; a < n; a++) for (size_t b = a + 1; b < n; b++) {
    if ((a < nm) != (b < nm) || charge(a) == charge(b)) continue;
    double d = std::abs((get(a) + get(b)).M() - 91.2);
    if (d < best) { best = d; ba = a; bb = b; }
  }
  if (best == 1e300) return {};
  double lpt = -1, lphi = 0;
  for (size_t i = 0; i < n; i++) if (i != ba && i != bb && get(i).Pt() > lpt) { lpt = get(i).Pt(); lphi = get(i).Phi(); }
  double dphi = ROOT::VecOps::DeltaPhi((double)lphi, (double)metphi);
  return {std::sqrt(std::max(2 * lpt * met * (1 - std::cos(dphi)), 0.0))};
}
"""


def rdf_query(ROOT, path, q):
    df = ROOT.RDataFrame("Events", path)
    model = lambda i=0: ("h", "", *BINS[q][i])
    if q == 1:
        hs = [df.Histo1D(model(), "MET_pt")]
    elif q == 2:
        hs = [df.Histo1D(model(), "Jet_pt")]
    elif q == 3:
        hs = [df.Define("good", "Jet_pt[abs(Jet_eta) < 1]").Histo1D(model(), "good")]
    elif q == 4:
        hs = [df.Filter("Sum(Jet_pt > 40) >= 2").Histo1D(model(), "MET_pt")]
    elif q == 5:
        hs = [df.Filter("alyx_q5(Muon_pt, Muon_eta, Muon_phi, Muon_mass, Muon_charge)").Histo1D(model(), "MET_pt")]
    elif q == 6:
        d = df.Filter("nJet >= 3").Define("t", "alyx_q6(Jet_pt, Jet_eta, Jet_phi, Jet_mass, Jet_btag)")
        d = d.Filter("t.size() == 2").Define("tpt", "t[0]").Define("tb", "t[1]")
        hs = [d.Histo1D(model(0), "tpt"), d.Histo1D(model(1), "tb")]
    elif q == 7:
        hs = [df.Define("ht", "alyx_q7(Jet_pt, Jet_eta, Jet_phi, Muon_pt, Muon_eta, Muon_phi, Electron_pt, Electron_eta, Electron_phi)").Histo1D(model(), "ht")]
    elif q == 8:
        d = df.Define("mt", "alyx_q8(Muon_pt, Muon_eta, Muon_phi, Muon_mass, Muon_charge, Electron_pt, Electron_eta, Electron_phi, Electron_mass, Electron_charge, MET_pt, MET_phi)")
        hs = [d.Filter("mt.size() == 1").Define("m", "mt[0]").Histo1D(model(), "m")]
    ROOT.RDF.RunGraphs(hs)
    return [int(round(h.GetValue().Integral())) for h in hs]


def load_nanoaod(path):
    import uproot

    t = uproot.open(path)["Events"]
    f64 = lambda a: ak.values_astype(a, np.float64)

    def collection(name, fields):
        return ak.zip({out: f64(t[f"{name}_{branch}"].array()) for out, branch in fields.items()})

    # The b-tag ALYX's automatic mapping takes: the first of these in the file's branch order.
    btag = next(k[4:] for k in t.keys() if k.lower() in ("jet_btag", "jet_btagdeepb", "jet_btagcsvv2"))
    jets = collection("Jet", {"pt": "pt", "eta": "eta", "phi": "phi", "mass": "mass", "btag": btag})
    lepton = {"pt": "pt", "eta": "eta", "phi": "phi", "mass": "mass", "charge": "charge"}
    muons, electrons = collection("Muon", lepton), collection("Electron", lepton)
    met, metphi = (ak.to_numpy(f64(t[b].array())) for b in ("MET_pt", "MET_phi"))
    return t.num_entries, met, metphi, jets, muons, electrons


def main():
    if sys.argv[1] == "--nanoaod":
        n, met, metphi, jets, muons, electrons = load_nanoaod(sys.argv[2])
        for q in range(1, 9):
            entries = awkward_query(q, met, metphi, jets, muons, electrons)
            print(json.dumps({"peer": "awkward", "query": q, "events": n, "entries": entries}), flush=True)
        return
    dataset = sys.argv[1]
    started = time.perf_counter()
    n, met, metphi, jets, muons, electrons = load(dataset)
    print(json.dumps({"peer": "load", "events": n, "seconds": time.perf_counter() - started}), flush=True)
    for q in range(1, 9):
        t = time.perf_counter()
        entries = awkward_query(q, met, metphi, jets, muons, electrons)
        print(json.dumps({"peer": "awkward", "query": q, "seconds": time.perf_counter() - t, "entries": entries}), flush=True)

    import uproot
    path = os.path.join(dataset, "..", os.path.basename(os.path.normpath(dataset)) + "-nanoaod.root")
    if not os.path.exists(path):
        data = {
            "MET_pt": met.astype(np.float32), "MET_phi": metphi.astype(np.float32),
            "Jet": ak.zip({k: ak.values_astype(jets[k], np.float32) for k in ["pt", "eta", "phi", "mass", "btag"]}),
            "Muon": ak.zip({**{k: ak.values_astype(muons[k], np.float32) for k in ["pt", "eta", "phi", "mass"]}, "charge": ak.values_astype(muons.charge, np.int32)}),
            "Electron": ak.zip({**{k: ak.values_astype(electrons[k], np.float32) for k in ["pt", "eta", "phi", "mass"]}, "charge": ak.values_astype(electrons.charge, np.int32)}),
        }
        with uproot.recreate(path) as f:
            # NanoAOD's naming: counters nJet, branches Jet_pt.
            f.mktree("Events", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()},
                     counter_name=lambda c: "n" + c, field_name=lambda outer, inner: outer + "_" + inner)
            f["Events"].extend(data)
    import ROOT
    ROOT.gROOT.SetBatch(True)
    ROOT.EnableImplicitMT(2)
    ROOT.gInterpreter.Declare(RDF_HELPERS)
    for q in range(1, 9):
        t = time.perf_counter()
        entries = rdf_query(ROOT, path, q)
        print(json.dumps({"peer": "rdataframe", "query": q, "seconds": time.perf_counter() - t, "entries": entries}), flush=True)


if __name__ == "__main__":
    main()
