#!/usr/bin/python3
"""Compare rapid's WCS (WCSLIB through lib/core/wcs.c) with astropy on the same
headers: TAN, a 4th-order TAN-SIP with Roman-like distortion, and TPV.

    bench/wcs_vs_astropy.py BUILD_DIR

Prints the largest sky difference (milliarcsec) and pixel round-trip error
for each header.  Astropy is the independent reference (it evaluates SIP
itself and calls its own bundled WCSLIB for the projection)."""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

build = sys.argv[1] if len(sys.argv) > 1 else "build"
dump = os.path.join(build, "bench", "wcs_dump")
N = 4088


def base(ctype):
    h = fits.Header()
    h["NAXIS"] = 2
    h["NAXIS1"] = N
    h["NAXIS2"] = N
    h["CTYPE1"] = "RA---" + ctype
    h["CTYPE2"] = "DEC--" + ctype
    h["CRVAL1"] = 9.61
    h["CRVAL2"] = -44.02
    h["CRPIX1"] = (N + 1) / 2
    h["CRPIX2"] = (N + 1) / 2
    s, t = 0.11 / 3600, np.radians(33.0)
    h["CD1_1"] = -s * np.cos(t)
    h["CD1_2"] = s * np.sin(t)
    h["CD2_1"] = s * np.sin(t)
    h["CD2_2"] = s * np.cos(t)
    h["RADESYS"] = "ICRS"
    return h


def headers():
    yield "TAN", base("TAN")
    h = base("TAN-SIP")
    h["A_ORDER"] = 4
    h["B_ORDER"] = 4
    terms = {(2, 0): 2.1e-7, (1, 1): -1.3e-7, (0, 2): 0.8e-7, (3, 0): 3.0e-11,
             (2, 1): -1.1e-11, (1, 2): 2.2e-11, (0, 3): -0.7e-11,
             (4, 0): 4e-15, (2, 2): -3e-15, (0, 4): 2e-15}
    for (p, q), v in terms.items():
        h[f"A_{p}_{q}"] = v
        h[f"B_{q}_{p}"] = -0.8 * v
    yield "TAN-SIP (4th order)", h
    h = base("TPV")
    for i, v in {0: 0.0, 1: 1.0, 2: 0.0, 4: 2e-3, 5: -1e-3, 6: 5e-4, 7: 3e-2, 10: -2e-2}.items():
        h[f"PV1_{i}"] = v
    for i, v in {0: 0.0, 1: 1.0, 2: 0.0, 4: -1e-3, 5: 2e-3, 6: 1e-3, 7: 1e-2, 10: 3e-2}.items():
        h[f"PV2_{i}"] = v
    yield "TPV", h


def main():
    g = np.linspace(-0.5, N - 0.5, 41)
    xs, ys = [a.ravel() for a in np.meshgrid(g, g)]
    pts = "".join(f"{x} {y}\n" for x, y in zip(xs, ys))
    print(f"{'header':22s} {'max |sky diff| mas':>20s} {'rapid round trip px':>20s} {'astropy round trip px':>22s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, h in headers():
            path = os.path.join(tmp, "w.fits")
            fits.PrimaryHDU(np.zeros((1, 1), np.float32), header=h).writeto(path, overwrite=True)
            out = subprocess.run([dump, path], input=pts, capture_output=True, text=True, check=True).stdout
            r = np.loadtxt(out.splitlines())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = WCS(h)
            ra, dec = w.all_pix2world(xs, ys, 0)
            dra = (r[:, 2] - ra) * np.cos(np.radians(dec))
            dsky = np.hypot(dra, r[:, 3] - dec) * 3.6e6
            xb, yb = w.all_world2pix(ra, dec, 0, tolerance=1e-12, maxiter=100)
            print(f"{name:22s} {dsky.max():20.3e} {np.hypot(r[:, 4] - xs, r[:, 5] - ys).max():20.3e} "
                  f"{np.hypot(xb - xs, yb - ys).max():22.3e}")


main()
