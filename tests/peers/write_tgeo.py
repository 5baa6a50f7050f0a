"""Writes a small detector as a ROOT TGeo geometry with ROOT itself (PyROOT), one volume of each
shape ALYX draws — box, tube, tube segment, cone, cone segment, polycone, polygon, trapezoids
(TGeoTrd1/2, TGeoTrap), a twisted-free arbitrary 8-vertex solid — placed by translations,
rotations, combined and general matrices, in invisible containers two levels deep, plus one
shape ALYX does not draw (a sphere). Made once with PyPI's `root==0.1a12` (ROOT 6.40) into
tests/data/tgeo-shapes.root, a fixture: the test command needs no ROOT. The differential test
reads the fixture with uproot (tgeo_dump.py) and with ALYX and compares them.

Usage: write_tgeo.py OUT.root
"""
import sys

import ROOT


def main():
    out = sys.argv[1]
    geo = ROOT.TGeoManager("shapes", "one of each shape")
    vacuum = ROOT.TGeoMedium("vacuum", 1, ROOT.TGeoMaterial("vacuum", 0, 0, 0))
    iron = ROOT.TGeoMedium("iron", 2, ROOT.TGeoMaterial("iron", 55.85, 26, 7.87))
    top = geo.MakeBox("TOP", vacuum, 1000, 1000, 1000)
    geo.SetTopVolume(top)
    top.SetVisibility(False)
    barrel = geo.MakeTube("BARREL", vacuum, 0, 500, 600)
    barrel.SetVisibility(False)
    top.AddNode(barrel, 1)
    endcap = geo.MakeBox("ENDCAP", vacuum, 400, 400, 100)
    endcap.SetVisibility(False)
    top.AddNode(endcap, 1, ROOT.TGeoTranslation(0, 0, 800))
    top.AddNode(endcap, 2, ROOT.TGeoCombiTrans(0, 0, -800, ROOT.TGeoRotation("flip", 90, 180, 90, 90, 180, 0)))

    shapes = [
        ("box", geo.MakeBox("box", iron, 10, 20, 30), ROOT.kRed),
        ("tube", geo.MakeTube("tube", iron, 40, 60, 100), ROOT.kBlue),
        ("tubs", geo.MakeTubs("tubs", iron, 70, 90, 50, 30, 150), ROOT.kGreen),
        ("cone", geo.MakeCone("cone", iron, 40, 10, 20, 30, 50), ROOT.kOrange),
        ("cons", geo.MakeCons("cons", iron, 40, 10, 20, 30, 50, -45, 45), ROOT.kMagenta),
        ("trd1", geo.MakeTrd1("trd1", iron, 10, 20, 15, 25), ROOT.kCyan),
        ("trd2", geo.MakeTrd2("trd2", iron, 10, 20, 5, 15, 25), ROOT.kYellow),
        ("trap", geo.MakeTrap("trap", iron, 30, 0, 0, 10, 8, 12, 0, 10, 8, 12, 0), ROOT.kAzure),
        ("sphere", geo.MakeSphere("sphere", iron, 0, 20), ROOT.kGray),
    ]
    pcon = geo.MakePcon("pcon", iron, 0, 360, 4)
    for i, (z, rmin, rmax) in enumerate([(-60, 20, 40), (-20, 20, 30), (20, 10, 30), (60, 10, 50)]):
        pcon.GetShape().DefineSection(i, z, rmin, rmax)
    shapes.append(("pcon", pcon, ROOT.kViolet))
    pgon = geo.MakePgon("pgon", iron, 22.5, 360, 8, 3)
    for i, (z, rmin, rmax) in enumerate([(-40, 30, 60), (0, 30, 70), (40, 35, 60)]):
        pgon.GetShape().DefineSection(i, z, rmin, rmax)
    shapes.append(("pgon", pgon, ROOT.kPink))
    arb8 = ROOT.TGeoArb8("arb8", 25)
    for i, (x, y) in enumerate([(-10, -10), (-10, 10), (10, 10), (10, -10), (-5, -5), (-5, 5), (5, 5), (5, -5)]):
        arb8.SetVertex(i, x, y)
    shapes.append(("arb8", ROOT.TGeoVolume("arb8", arb8, iron), ROOT.kSpring))

    for i, (_name, vol, colour) in enumerate(shapes):
        vol.SetLineColor(colour)
        # Around the barrel, each placed by a different kind of matrix.
        phi = 360.0 * i / len(shapes)
        rot = ROOT.TGeoRotation(f"r{i}", phi, 30 * (i % 3), 15 * i)
        x, y, z = 250 * ROOT.TMath.Cos(phi * ROOT.TMath.DegToRad()), 250 * ROOT.TMath.Sin(phi * ROOT.TMath.DegToRad()), 40.0 * (i - 5)
        kind = i % 4
        if kind == 0:
            matrix = ROOT.TGeoTranslation(x, y, z)
        elif kind == 1:
            matrix = ROOT.TGeoCombiTrans(x, y, z, rot)
        elif kind == 2:
            matrix = ROOT.TGeoHMatrix(ROOT.TGeoCombiTrans(x, y, z, rot))
        else:
            matrix = ROOT.TGeoCombiTrans(ROOT.TGeoTranslation(x, y, z), rot)
        barrel.AddNode(vol, 1, matrix)
    # The same volumes again in each endcap: one logical volume, several placements.
    endcap.AddNode(shapes[0][1], 1, ROOT.TGeoTranslation(100, 0, 0))
    endcap.AddNode(shapes[1][1], 1, ROOT.TGeoRotation("tilt", 0, 45, 0))
    geo.CloseGeometry()
    f = ROOT.TFile(out, "RECREATE")
    geo.Write()
    f.Close()


if __name__ == "__main__":
    main()
