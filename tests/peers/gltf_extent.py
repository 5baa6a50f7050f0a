"""Reads a glTF 2.0 file (embedded base64 buffers) with the standard library alone and prints,
as JSON, each mesh node's extent around the z axis in cm:
{"NAME": [rho_min, rho_max, abs_z_min, abs_z_max]},
from the vertex positions of its primitives (glTF lengths are metres). For ALYX's geometry
screenshot test, which checks what the display drew against it.

Usage: gltf_extent.py FILE.gltf
Nodes with their own transform are refused: this reader does not apply them.
"""
import base64
import json
import math
import struct
import sys

CM_PER_M = 100.0


def main():
    with open(sys.argv[1]) as f:
        g = json.load(f)
    buffers = []
    for b in g["buffers"]:
        head, data = b["uri"].split(",", 1)
        if not head.startswith("data:") or not head.endswith(";base64"):
            sys.exit("only embedded base64 buffers are read")
        buffers.append(base64.b64decode(data))
    out = {}
    for node in g["nodes"]:
        if any(k in node for k in ("matrix", "translation", "rotation", "scale")):
            sys.exit(f"node {node.get('name')} has a transform")
        if "mesh" not in node:
            continue
        lo, hi, zmin, zmax = math.inf, 0.0, math.inf, 0.0
        for prim in g["meshes"][node["mesh"]]["primitives"]:
            acc = g["accessors"][prim["attributes"]["POSITION"]]
            if acc["componentType"] != 5126 or acc["type"] != "VEC3":
                sys.exit("positions are not float VEC3")
            view = g["bufferViews"][acc["bufferView"]]
            data = buffers[view["buffer"]]
            offset = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
            stride = view.get("byteStride", 12)
            for i in range(acc["count"]):
                x, y, z = struct.unpack_from("<3f", data, offset + i * stride)
                rho = math.hypot(x, y) * CM_PER_M
                az = abs(z) * CM_PER_M
                lo, hi, zmin, zmax = min(lo, rho), max(hi, rho), min(zmin, az), max(zmax, az)
        out[node["name"]] = [lo, hi, zmin, zmax]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
