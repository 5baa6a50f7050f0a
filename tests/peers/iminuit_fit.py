"""The fit-bench's peer: the same binned fits as ALYX, with iminuit (MINUIT2).

Reads JSON on stdin: a list of fits, each with the in-range bin edges and counts, the model as
components (shape, parameter names, yield name) and the starting parameters (value, step,
limits, fixed) ALYX starts from. Fits each with iminuit's ExtendedBinnedNLL (the Baker-Cousins
Poisson chi2, as ALYX's extended likelihood), MIGRAD then HESSE, and writes JSON on stdout:
values, errors, the minimum and the time of MIGRAD + HESSE (best of `repeat`).

The shapes are written out here independently of ALYX (scipy's erf and Voigt profile), with
the same bin integrals: analytic where ALYX's are, 10-point Gauss-Legendre otherwise.
"""

import json
import math
import sys
import time

import numpy as np
from iminuit import Minuit
from iminuit.cost import ExtendedBinnedNLL
from scipy.special import erf, voigt_profile

GL_X, GL_W = np.polynomial.legendre.leggauss(10)


def quadrature(density, a, b, scale):
    """Integral of density over each [a, b], in pieces of at most a quarter of scale."""
    out = np.empty(len(a))
    for i, (lo, hi) in enumerate(zip(a, b)):
        pieces = int(min(max(math.ceil(4.0 * (hi - lo) / scale), 1), 32)) if scale > 0 else 1
        edges = np.linspace(lo, hi, pieces + 1)
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
        x = mid[:, None] + half[:, None] * GL_X[None, :]
        out[i] = np.sum(half[:, None] * GL_W[None, :] * density(x))
    return out


def cheb_antiderivative(k, t):
    tn = lambda n: np.cos(n * np.arccos(np.clip(t, -1, 1)))
    if k == 0:
        return t
    if k == 1:
        return 0.5 * t * t
    return 0.5 * (tn(k + 1) / (k + 1) - tn(k - 1) / (k - 1))


def integrals(shape, p, a, b, lo, hi):
    if shape == "gauss":
        m, s = p
        r2 = math.sqrt(2) * s
        return s * math.sqrt(math.pi / 2) * (erf((b - m) / r2) - erf((a - m) / r2))
    if shape == "bw":
        m, w = p
        h = 0.5 * w
        return (np.arctan((b - m) / h) - np.arctan((a - m) / h)) / h
    if shape == "voigt":
        m, w, s = p
        return quadrature(lambda x: voigt_profile(x - m, s, 0.5 * w), a, b, max(abs(w), abs(s)))
    if shape == "exp":
        (c,) = p
        ea, eb = c * (a - lo), c * (b - lo)
        if abs(c * (hi - lo)) < 1e-8:
            return (b - a) * np.exp(0.5 * (ea + eb))
        return (np.exp(eb) - np.exp(ea)) / c
    if shape.startswith("cheb"):
        order = int(shape[4:])
        ta, tb = (2 * a - lo - hi) / (hi - lo), (2 * b - lo - hi) / (hi - lo)
        total = tb - ta
        for k in range(1, order + 1):
            total = total + p[k - 1] * (cheb_antiderivative(k, tb) - cheb_antiderivative(k, ta))
        return total * 0.5 * (hi - lo)
    raise ValueError(f"shape {shape} is not in the peer")


def fit(job, repeat):
    edges = np.array(job["edges"], dtype=float)
    counts = np.array(job["counts"], dtype=float)
    lo, hi = edges[0], edges[-1]
    names = [p["name"] for p in job["params"]]
    index = {n: i for i, n in enumerate(names)}
    components = job["components"]

    def scaled_cdf(xe, *par):
        a, b = xe[:-1], xe[1:]
        mu = np.zeros(len(a))
        for c in components:
            shares = integrals(c["shape"], [par[index[n]] for n in c["params"]], a, b, lo, hi)
            mu = mu + par[index[c["yield"]]] * shares / np.sum(shares)
        return np.concatenate([[0.0], np.cumsum(mu)])

    best = None
    for _ in range(repeat):
        cost = ExtendedBinnedNLL(counts, edges, scaled_cdf, name=names)
        m = Minuit(cost, *[p["value"] for p in job["params"]], name=names)
        # EDM < 0.002 * tol * errordef = 1e-6: the goal ALYX converges to.
        m.tol = 0.0005
        for p in job["params"]:
            m.errors[p["name"]] = p["step"]
            m.limits[p["name"]] = (
                -math.inf if p["lower"] is None else p["lower"],
                math.inf if p["upper"] is None else p["upper"],
            )
            m.fixed[p["name"]] = p["fixed"]
        start = time.perf_counter()
        m.migrad()
        m.hesse()
        elapsed = time.perf_counter() - start
        if best is None or elapsed < best:
            best = elapsed
    return {
        "name": job["name"],
        "valid": bool(m.valid),
        "fval": float(m.fval),
        "edm": float(m.fmin.edm),
        "nfcn": int(m.nfcn),
        "seconds": best,
        "values": {n: float(m.values[n]) for n in names},
        "errors": {n: float(m.errors[n]) for n in names},
    }


def main():
    jobs = json.load(sys.stdin)
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    json.dump([fit(j, repeat) for j in jobs], sys.stdout)


if __name__ == "__main__":
    main()
