"""Writes a NanoAOD-shaped TTree with uproot, for ALYX's differential import test.

Usage: write_nanoaod.py OUT.root EVENTS SEED [BASKET]

Tree `Events` as CMS NanoAOD names it: run, luminosityBlock, event (uint64, some above 2^53),
genWeight, MET_pt/MET_phi, and the jagged collections Jet_*, Muon_*, Electron_* sized by the
counter branches nJet, nMuon, nElectron. Multiplicities include empty events and events with
many objects; the tree is written in baskets of BASKET entries (default 997).
"""
import sys

import awkward as ak
import numpy as np
import uproot


def collection(rng, counts, fields):
    n = int(counts.sum())
    flat = {}
    for name, (kind, make) in fields.items():
        flat[name] = make(rng, n).astype(kind)
    return ak.zip({k: ak.unflatten(v, counts) for k, v in flat.items()})


def main():
    out, events, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    basket = int(sys.argv[4]) if len(sys.argv) > 4 else 997
    rng = np.random.default_rng(seed)
    f32, i32 = np.float32, np.int32

    # Multiplicities: mostly few objects, many empty events, a tail of crowded ones.
    n_jet = rng.poisson(4.0, events)
    crowded = rng.random(events) < 0.02
    n_jet[crowded] = rng.integers(30, 80, int(crowded.sum()))
    n_jet[::97] = 0
    n_mu = rng.poisson(1.2, events)
    n_mu[::13] = rng.integers(2, 5)
    n_el = rng.poisson(0.8, events)

    pt = lambda scale: (lambda r, n: 5.0 + r.exponential(scale, n))
    eta = lambda r, n: r.uniform(-2.5, 2.5, n)
    phi = lambda r, n: r.uniform(-np.pi, np.pi, n)
    charge = lambda r, n: r.choice([-1, 1], n)
    jets = collection(rng, n_jet, {
        "pt": (f32, pt(40.0)), "eta": (f32, eta), "phi": (f32, phi),
        "mass": (f32, lambda r, n: r.uniform(2.0, 20.0, n)),
        "btagDeepB": (f32, lambda r, n: r.random(n)),
    })
    muons = collection(rng, n_mu, {
        "pt": (f32, pt(35.0)), "eta": (f32, eta), "phi": (f32, phi),
        "mass": (f32, lambda r, n: np.full(n, 0.10566)), "charge": (i32, charge),
        "pfRelIso03_all": (f32, lambda r, n: r.exponential(0.1, n)),
    })
    electrons = collection(rng, n_el, {
        "pt": (f32, pt(30.0)), "eta": (f32, eta), "phi": (f32, phi),
        "mass": (f32, lambda r, n: np.full(n, 0.000511)), "charge": (i32, charge),
    })
    event = (np.arange(events, dtype=np.uint64) * np.uint64(7919) + np.uint64(1000))
    event[1::5] += np.uint64(2**53 + 1)  # beyond what a double holds exactly
    data = {
        "run": np.full(events, 362_760, dtype=np.uint32) + (np.arange(events) // 1500).astype(np.uint32),
        "luminosityBlock": (np.arange(events) // 100).astype(np.uint32),
        "event": event,
        "genWeight": rng.normal(1.0, 0.1, events).astype(f32),
        "MET_pt": rng.exponential(30.0, events).astype(f32),
        "MET_phi": rng.uniform(-np.pi, np.pi, events).astype(f32),
        "Jet": jets, "Muon": muons, "Electron": electrons,
    }
    types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()}
    with uproot.recreate(out) as f:
        f.mktree("Events", types, counter_name=lambda c: "n" + c,
                 field_name=lambda outer, inner: outer + "_" + inner)
        for start in range(0, events, basket):
            f["Events"].extend({k: v[start:start + basket] for k, v in data.items()})


if __name__ == "__main__":
    main()
