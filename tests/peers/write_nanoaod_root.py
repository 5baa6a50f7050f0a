"""Writes a NanoAOD-shaped TTree with ROOT itself (PyROOT), as CMS's NanoAOD files are written:
UInt_t counters (nJet, nMuon, nElectron), `Jet_pt[nJet]/F` arrays, ULong64_t event numbers,
small baskets (several per branch) and ROOT's own basket layout. Made once with PyPI's
`root==0.1a12` (ROOT 6.36) into tests/data/nanoaod-root-written.root, a fixture: the test
command needs no ROOT. Its streamer infos (version 10) are newer than oxyroot reads, so today
the test checks that ALYX refuses it with that reason; once the reader knows them, the
differential test should compare it value for value.

Usage: write_nanoaod_root.py OUT.root [EVENTS] [SEED]
"""
import array
import random
import sys

import ROOT


def main():
    out = sys.argv[1]
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 1200
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 2026)
    f = ROOT.TFile(out, "RECREATE", "", 101)  # zlib, level 1
    t = ROOT.TTree("Events", "Events")
    t.SetAutoFlush(0)
    scalars = {
        "run": ("i", "I"), "luminosityBlock": ("i", "I"), "event": ("l", "L"),
        "genWeight": ("F", "f"), "MET_pt": ("F", "f"), "MET_phi": ("F", "f"),
    }
    buffers = {}
    for name, (leaf, code) in scalars.items():
        buffers[name] = array.array(code, [0])
        t.Branch(name, buffers[name], f"{name}/{leaf}", 256)
    collections = {
        "Jet": (["pt", "eta", "phi", "mass", "btagDeepB"], []),
        "Muon": (["pt", "eta", "phi", "mass", "pfRelIso03_all"], ["charge"]),
        "Electron": (["pt", "eta", "phi", "mass"], ["charge"]),
    }
    for coll, (floats, ints) in collections.items():
        buffers["n" + coll] = array.array("I", [0])
        t.Branch("n" + coll, buffers["n" + coll], f"n{coll}/i", 256)
        for field in floats:
            buffers[f"{coll}_{field}"] = array.array("f", [0.0] * 128)
            t.Branch(f"{coll}_{field}", buffers[f"{coll}_{field}"], f"{coll}_{field}[n{coll}]/F", 512)
        for field in ints:
            buffers[f"{coll}_{field}"] = array.array("i", [0] * 128)
            t.Branch(f"{coll}_{field}", buffers[f"{coll}_{field}"], f"{coll}_{field}[n{coll}]/I", 512)
    for i in range(events):
        buffers["run"][0] = 362760 + i // 500
        buffers["luminosityBlock"][0] = i // 50
        buffers["event"][0] = 1000 + 7919 * i + (2**53 + 1 if i % 5 == 1 else 0)
        buffers["genWeight"][0] = rng.gauss(1.0, 0.1)
        buffers["MET_pt"][0] = rng.expovariate(1 / 30.0)
        buffers["MET_phi"][0] = rng.uniform(-3.14159, 3.14159)
        for coll, (floats, ints) in collections.items():
            mean = {"Jet": 4.0, "Muon": 1.2, "Electron": 0.8}[coll]
            n = 0 if i % 97 == 0 else min(int(rng.expovariate(1 / mean)), 20)
            if coll == "Jet" and i % 50 == 7:
                n = rng.randint(40, 100)
            buffers["n" + coll][0] = n
            for k in range(n):
                buffers[f"{coll}_pt"][k] = 5.0 + rng.expovariate(1 / 35.0)
                buffers[f"{coll}_eta"][k] = rng.uniform(-2.5, 2.5)
                buffers[f"{coll}_phi"][k] = rng.uniform(-3.14159, 3.14159)
                buffers[f"{coll}_mass"][k] = {"Jet": rng.uniform(2, 20), "Muon": 0.10566, "Electron": 0.000511}[coll]
                for field in floats[4:]:
                    buffers[f"{coll}_{field}"][k] = rng.random()
                for field in ints:
                    buffers[f"{coll}_{field}"][k] = rng.choice([-1, 1])
        t.Fill()
    t.Write()
    f.Close()


if __name__ == "__main__":
    main()
