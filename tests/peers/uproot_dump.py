"""Dumps TTree branches as uproot reads them, for ALYX's differential import test.

Usage: uproot_dump.py FILE TREE BRANCH...

Prints one JSON object: {"entries": N, "branches": {name: {"kind": "f" | "i", "values": [...]}}}
with one value per entry, or one list per entry for jagged branches. Floats are written as the
bit patterns of their float64 values (exact, NaN and infinities included); integers as integers.
"""
import json
import sys

import awkward as ak
import numpy as np
import uproot


def encode(array):
    jagged = array.ndim > 1
    flat = ak.to_numpy(ak.flatten(array)) if jagged else ak.to_numpy(array)
    if flat.dtype.kind == "f":
        kind, flat = "f", flat.astype(np.float64).view(np.uint64).tolist()
    else:
        kind, flat = "i", flat.astype(np.int64 if flat.dtype.kind != "u" else np.uint64).tolist()
    if not jagged:
        return {"kind": kind, "values": flat}
    counts = ak.to_numpy(ak.num(array)).tolist()
    values, at = [], 0
    for n in counts:
        values.append(flat[at:at + n])
        at += n
    return {"kind": kind, "values": values}


def main():
    path, tree, branches = sys.argv[1], sys.argv[2], sys.argv[3:]
    t = uproot.open(path)[tree]
    out = {"entries": int(t.num_entries), "branches": {}}
    for name in branches:
        out["branches"][name] = encode(t[name].array(library="ak"))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
