#!/usr/bin/python3
"""Compare a rapid catalog with SExtractor's on the same image.

    catalog_vs_sextractor.py RAPID_CAT.fits SEXTRACTOR_CAT.fits

The SExtractor catalog is FITS_1.0 with NUMBER X_IMAGE Y_IMAGE XWIN_IMAGE
YWIN_IMAGE FLUX_APER(n) FLUX_RADIUS, its apertures in the order of rapid's
FLUX_APER_<d> columns (bench/bench_coadd.sh runs it so).  Sources are
matched one to one, nearest first, within 1 pixel; SExtractor counts pixels
from 1, rapid from 0.  Prints the counts and the median differences.
Bench only: the product never runs Python.
"""
import sys

import numpy as np
from astropy.io import fits


def match(x1, y1, x2, y2, radius):
    """Pairs (i, j) within radius, each source used once, closest first."""
    cell = {}
    for j, (x, y) in enumerate(zip(x2, y2)):
        cell.setdefault((int(x // radius), int(y // radius)), []).append(j)
    pairs = []
    for i, (x, y) in enumerate(zip(x1, y1)):
        cx, cy = int(x // radius), int(y // radius)
        for ax in (-1, 0, 1):
            for ay in (-1, 0, 1):
                for j in cell.get((cx + ax, cy + ay), ()):
                    d = np.hypot(x2[j] - x, y2[j] - y)
                    if d < radius:
                        pairs.append((d, i, j))
    pairs.sort()
    used1, used2, out = set(), set(), []
    for d, i, j in pairs:
        if i not in used1 and j not in used2:
            used1.add(i)
            used2.add(j)
            out.append((i, j))
    return np.array(out, dtype=int).reshape(-1, 2)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with fits.open(sys.argv[1]) as h:
        r = h[1].data
    with fits.open(sys.argv[2]) as h:
        s = h[1].data
    sx, sy = s["X_IMAGE"] - 1, s["Y_IMAGE"] - 1
    m = match(r["X"], r["Y"], sx, sy, 1.0)
    i, j = m[:, 0], m[:, 1]
    print(f"rapid {len(r)} sources, SExtractor {len(s)}; matched within 1 px: "
          f"{len(m)} ({100 * len(m) / max(len(r), 1):.1f} % of rapid's)")
    dx = np.hypot(r["X"][i] - sx[j], r["Y"][i] - sy[j])
    dw = np.hypot(r["XWIN"][i] - (s["XWIN_IMAGE"][j] - 1),
                  r["YWIN"][i] - (s["YWIN_IMAGE"][j] - 1))
    print(f"  median offset: isophotal {np.median(dx):.4f} px, "
          f"windowed {np.median(dw):.4f} px")
    names = [c for c in r.columns.names if c.startswith("FLUX_APER_")]
    for k, name in enumerate(names):
        ok = s["FLUX_APER"][j][:, k] > 0
        ratio = r[name][i][ok] / s["FLUX_APER"][j][:, k][ok]
        # rapid gives no aperture flux (NaN) where the aperture holds pixels
        # without data (masked, saturated); those are left out and counted
        print(f"  {name}: median rapid / SExtractor {np.nanmedian(ratio):.4f}"
              f" ({np.count_nonzero(np.isnan(ratio))} without a rapid flux)")
    ok = s["FLUX_RADIUS"][j] > 0
    print("  FLUX_RADIUS: median rapid / SExtractor "
          f"{np.median(r['FLUX_RADIUS'][i][ok] / s['FLUX_RADIUS'][j][ok]):.4f}")


if __name__ == "__main__":
    main()
