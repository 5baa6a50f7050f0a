"""A ROOT TGeo geometry as uproot reads it (its own streamer-driven reading, no ALYX code):
every placement from the master volume down, with its node path, volume, shape class, world
matrix (local → world, [R | t] row by row, cm), whether ROOT draws it (kVisThis on the volume,
kVisDaughters on every ancestor, never the master) and, for shapes with a closed formula, the
shape's volume (cm³), computed here from its own parameters.

Usage: tgeo_dump.py FILE.root  →  JSON on stdout
"""
import json
import math
import sys

import uproot

VIS_THIS, VIS_DAUGHTERS = 1 << 2, 1 << 3


def member(obj, name, default=None):
    try:
        return obj.member(name)
    except Exception:
        return default


def matrix(m):
    out = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]
    if m is None:
        return out
    t = member(m, "fTranslation")
    if t is not None:
        for i in range(3):
            out[i][3] = float(t[i])
    r = member(m, "fRotationMatrix")
    if r is None and member(m, "fRotation") is not None:
        r = member(member(m, "fRotation"), "fRotationMatrix")
    if r is not None:
        for i in range(3):
            for j in range(3):
                out[i][j] = float(r[3 * i + j])
    return out


def compose(a, b):
    out = [[0.0] * 4 for _ in range(3)]
    for i in range(3):
        for j in range(4):
            out[i][j] = sum(a[i][k] * b[k][j] for k in range(3)) + (a[i][3] if j == 3 else 0)
    return out


def polygon_area(points):
    return 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1])))


def capacity(shape):
    c = shape.classname.split("_v")[0]
    g = lambda name: float(member(shape, name))
    if c == "TGeoBBox":
        return 8 * g("fDX") * g("fDY") * g("fDZ")
    if c in ("TGeoTube", "TGeoTubeSeg"):
        dphi = 360.0 if c == "TGeoTube" else (g("fPhi2") - g("fPhi1")) % 360 or 360.0
        return dphi / 360 * math.pi * (g("fRmax") ** 2 - g("fRmin") ** 2) * 2 * g("fDz")
    if c in ("TGeoArb8", "TGeoTrap"):
        xy = [float(v) for v in member(shape, "fXY")]
        pts = [(xy[2 * i], xy[2 * i + 1]) for i in range(8)]
        mid = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(pts[:4], pts[4:])]
        # Cross-sections are linear in z per vertex: Simpson's rule is exact.
        return 2 * g("fDz") / 6 * (polygon_area(pts[:4]) + 4 * polygon_area(mid) + polygon_area(pts[4:]))
    return None


def main():
    f = uproot.open(sys.argv[1])
    name = next(k.split(";")[0] for k, c in f.classnames().items() if c == "TGeoManager")
    manager = f[name]
    master = manager.member("fMasterVolume")
    placements = []
    stack = [(master, master.member("fName"), matrix(None), 0, True)]
    while stack:
        vol, path, world, depth, shown = stack.pop()
        att = int(vol.member("fGeoAtt"))
        shape = vol.member("fShape")
        placements.append({
            "path": path,
            "volume": vol.member("fName"),
            "shape": shape.classname.split("_v")[0],
            "matrix": world,
            "visible": bool(shown and depth > 0 and att & VIS_THIS),
            "capacity": capacity(shape),
        })
        nodes = vol.member("fNodes")
        children = []
        for node in nodes or []:
            children.append((
                node.member("fVolume"),
                path + "/" + node.member("fName"),
                compose(world, matrix(member(node, "fMatrix"))),
                depth + 1,
                bool(shown and att & VIS_DAUGHTERS),
            ))
        stack.extend(reversed(children))
    json.dump({"name": name, "placements": placements}, sys.stdout)


if __name__ == "__main__":
    main()
