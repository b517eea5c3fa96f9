#!/usr/bin/python3
"""ZOGY (Zackay, Ofek & Gal-Yam 2016) in numpy, float64, written from the
equations documented in include/rapid/diff.h (not from lib/diff/zogy.c), to
check rapid's products on the same inputs and to time a numpy ZOGY.

    bench/zogy_numpy.py ZOGY_IN.fits [RAPID.fits] [--check TOL] [--out FILE]

ZOGY_IN.fits (bench/zogy_dump.c writes it): extensions N, R, VN, VR, PN, PR,
primary header SIGMA_N, SIGMA_R, CORR_N0..3, CORR_R0..3 (the noises and
their neighbour correlations rapid used), SX, SY (and rapid's PADX, PADY,
FD).  Prints one JSON line: the time of the ZOGY computation (reading
apart; wall and CPU), the process's peak RSS until then, and the
comparison.  RAPID.fits: rapid's D, UNC, SCORR, PD on those inputs.  With
it, prints the largest differences over the pixels with data: |D - D_rapid| in units of
sigma_D, |S_corr - S_corr_rapid| (S_corr is in units of its own sigma), the
relative difference of sigma_D and of P_D.  --check TOL: exit 1 if the D or
the S_corr difference exceeds TOL (away from the selection's near ties,
below), the padded sizes or the pixels without data differ, or the
selection's median width^2 differs from rapid's by more than 1e-4 of it.  --out: the products written as FITS.

The rules, as diff.h gives them: images padded with zeros to the smallest
size without a prime factor above 7 of at least the image plus the larger
PSF's width; a no-data pixel (NaN) of one image takes the other's
value matched to its PSF (the science's holes always, the reference's
where the science's light is significant; diff.h), or the other's own
value, zero where both have none, and a variance the other's variance; every product NaN
where either image or variance has no data; PSFs normalised to unit sum, centred on their middle pixel; kernels zero at
frequencies where Delta^2 <= 1e-12 (sigma_n^2 + sigma_r^2) (rapid's guard
against dividing by zero); the astrometric term from central differences
of S_N and S_R on the padded (periodic) grid; the noise spectra T_n, T_r
from the correlations given (one model for the whole image: rapid's
products for it are the ones bench/zogy_dump writes), T_n through the
science's variance kernels, T_r as a factor on V_R (sum |k^|^2 T_r / sum
|k^|^2 for k_r and for k_Dr); the PSF-model error with the eps, pos
that rapid measured (primary header EPS_D, POS_D, EPS_S, POS_S, EPS_F,
POS_F, EPS_FR, POS_FR: their measurement is rapid's, the term's equations
are checked):
D_R and S_R shrunk by 3 times the robust sigmas rapid measured (NOISE_LD,
NOISE_LS: rapid takes them from an even sample of the image, this script
also measures them on every pixel and reports both; on the full-size bench
pair they differ by 0.06 and 0.24 %, which moves the faint edges of the
light and, through them, the selection below at a few hundred pixels);
the light of extended sources taken out (docs/subtraction.md, "Point
sources only": every lit pixel of D_R to the peak it climbs to, a peak
wider than 6 times the median width^2 of the peaks at D_R >= 20 sigma_D,
with sigma_D the noise's alone, is an extended source's, and its basin
gets no term in D_R, S_R or the fills' errors; written here with
whole-image shifts and pointer jumping, not from lib/diff/modelerr.c;
the median width^2 and the count are compared with rapid's header WIDTH2,
NEXT); eps^2 L^2 + pos^2 |grad L|^2 added to sigma_D^2 and V_S, and the
filled pixels' errors through the squared kernels (on the full grid here;
rapid sums them directly over its small grid's kernels).

A pixel whose way uphill takes a step that a neighbour of the other
verdict loses by less than 1e-3 sigma_D of D_R (or whose peak's width^2 is
within 1e-4 of the limit) can go either way in single precision: the
comparison is reported over all pixels and over those whose term does
not read such a pixel (without_near_ties: the pixel and its four
neighbours, the gradient's), and --check applies to the latter.  The
script also measures the noises and the reference's correlations itself
(its reading of diff.h's rule) and reports them beside the values given,
unchecked.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np
from astropy.io import fits


def fast(n):
    for f in (2, 3, 5, 7):
        while n % f == 0:
            n //= f
    return n == 1


def good_size(n):
    while not fast(n):
        n += 1
    return n


def fill(a, b):
    """a with its no-data pixels taken from b, zero where both have none."""
    return np.where(np.isfinite(a), a, np.where(np.isfinite(b), b, 0.0))


def psf_small(p, m):
    """A PSF normalised to unit sum, its middle pixel at the origin of an
    m x m periodic grid."""
    q = np.zeros((m, m))
    h = p.shape[0] // 2
    for j in range(p.shape[0]):
        for i in range(p.shape[1]):
            q[(j - h) % m, (i - h) % m] += p[j, i]
    return q / p.sum()


def matched(src, want, pt, ps, m):
    """src matched to the PSF pt from its own ps: K^ = Pt^ conj(Ps^) /
    (|Ps^|^2 + 1e-3) on an m x m grid (m: good size of twice the larger
    PSF's width), its taps above 1e-3 of the largest, summed directly at
    the pixels in want; NaN where the taps that fall on pixels without
    data (or off the image) weigh more than 1 % of sum |K|."""
    t, s = np.fft.fft2(psf_small(pt, m)), np.fft.fft2(psf_small(ps, m))
    k = np.real(np.fft.ifft2(t * np.conj(s) / (np.abs(s) ** 2 + 1e-3)))
    ny, nx = src.shape
    ok = np.isfinite(src)
    z = np.where(ok, src, 0.0)
    acc = np.zeros_like(src)
    miss = np.zeros_like(src)
    taps = np.argwhere(np.abs(k) > 1e-3 * np.abs(k).max())
    wsum = 0.0
    for j, i in taps:
        dy = j if j < m // 2 else j - m
        dx = i if i < m // 2 else i - m
        kk = k[j, i]
        wsum += abs(kk)
        # out[y, x] += kk * src[y + dy, x + dx]
        sh = np.zeros_like(src)
        mk = np.zeros(src.shape, dtype=bool)
        ys, ye = max(0, -dy), min(ny, ny - dy)
        xs, xe = max(0, -dx), min(nx, nx - dx)
        if ys < ye and xs < xe:
            sh[ys:ye, xs:xe] = z[ys + dy:ye + dy, xs + dx:xe + dx]
            mk[ys:ye, xs:xe] = ok[ys + dy:ye + dy, xs + dx:xe + dx]
        acc += kk * sh
        miss += abs(kk) * ~mk
    return np.where(want & (miss <= 0.01 * wsum), acc, np.nan)


def fills(n, r, vn, vr, pn, pr):
    """The fills of each image's no-data pixels (diff.h): the science's
    with the reference matched to P_n, the reference's with the science
    matched to P_r where the science's light is significant (|N| > 3
    sigma on the pixel or one of its 8 neighbours), the other image itself
    where the match cannot be made or elsewhere; NaN where no fill."""
    m = good_size(2 * max(pn.shape[0], pr.shape[0]))
    out = np.full(n.shape, np.nan)
    hn = ~np.isfinite(n) & np.isfinite(r)
    mr = matched(r, hn, pn, pr, m)
    out[hn] = np.where(np.isfinite(mr), mr, r)[hn]
    with np.errstate(invalid="ignore"):
        sig = np.isfinite(n) & np.isfinite(vn) & (
            np.abs(np.nan_to_num(n)) > 3 * np.sqrt(np.where(np.isfinite(vn), vn, 0)))
    lit = np.zeros_like(sig)
    ny, nx = n.shape
    for b in (-1, 0, 1):
        for a in (-1, 0, 1):
            ys, ye = max(0, -b), min(ny, ny - b)
            xs, xe = max(0, -a), min(nx, nx - a)
            lit[ys:ye, xs:xe] |= sig[ys + b:ye + b, xs + a:xe + a]
    hr = ~np.isfinite(r) & np.isfinite(n) & lit
    mn = matched(n, hr, pr, pn, m)
    out[hr] = np.where(np.isfinite(mn), mn, n)[hr]
    return out


class Grid:
    def __init__(self, ny, nx, width):
        self.ny, self.nx = ny, nx
        self.py, self.px = good_size(ny + width), good_size(nx + width)

    def rfft(self, a):
        """Transform of a (image-sized or padded plane), zero-padded."""
        p = np.zeros((self.py, self.px))
        p[:a.shape[0], :a.shape[1]] = a
        return np.fft.rfft2(p)

    def irfft(self, h):
        return np.fft.irfft2(h, s=(self.py, self.px))

    def crop(self, a):
        return a[:self.ny, :self.nx]

    def psf_hat(self, psf):
        """A PSF normalised, its middle pixel moved to the origin."""
        psf = np.asarray(psf, dtype=np.float64)
        psf = psf / psf.sum()
        h = psf.shape[0] // 2
        p = np.zeros((self.py, self.px))
        p[:psf.shape[0], :psf.shape[1]] = psf
        return np.fft.rfft2(np.roll(p, (-h, -h), axis=(0, 1)))


def conv_square(g, v_hat, k_hat):
    """V (x) k^2 on the image: the kernel to real space, squared, convolved."""
    k = g.irfft(k_hat)
    return g.crop(g.irfft(v_hat * np.fft.rfft2(k * k)))


def central_diff(a, axis):
    return 0.5 * (np.roll(a, -1, axis) - np.roll(a, 1, axis))


def spectrum(g, r):
    """T(k) of noise with neighbour correlations r at lags (1,0), (0,1),
    (1,1), (1,-1), held above 0.01, on the half spectrum of the grid."""
    kx = 2 * np.pi * np.fft.rfftfreq(g.px)[None, :]
    ky = 2 * np.pi * np.fft.fftfreq(g.py)[:, None]
    t = 1 + 2 * (r[0] * np.cos(kx) + r[1] * np.cos(ky) +
                 r[2] * np.cos(kx + ky) + r[3] * np.cos(kx - ky))
    return np.maximum(t, 0.01)


def robust_sigma(a):
    a = a[np.isfinite(a)]
    return 1.4826 * np.median(np.abs(a - np.median(a)))


def shrink(a, sigma=None, k=3.0):
    """The light's noise taken out: towards 0 by k times sigma (given), or
    k robust sigma of a; with the sigma measured on a."""
    s = robust_sigma(a)
    use = s if sigma is None else sigma
    return np.sign(a) * np.maximum(np.abs(a) - k * use, 0), s


def grad2_edges(a):
    """|grad a|^2 by central differences, one-sided at the image edges."""
    gx = np.empty_like(a)
    gy = np.empty_like(a)
    gx[:, 1:-1] = 0.5 * (a[:, 2:] - a[:, :-2])
    gx[:, 0] = a[:, 1] - a[:, 0]
    gx[:, -1] = a[:, -1] - a[:, -2]
    gy[1:-1, :] = 0.5 * (a[2:, :] - a[:-2, :])
    gy[0, :] = a[1, :] - a[0, :]
    gy[-1, :] = a[-1, :] - a[-2, :]
    return gx * gx + gy * gy


def fill_var(l, a, eps, pos):
    """A filled pixel's error from its (matched) light l and the gradient
    of the image a that fills it: eps^2 l^2 + pos^2 |grad a|^2, a gradient
    only where both neighbours have data (0 otherwise, and at the
    edges)."""
    gx = np.zeros_like(a)
    gy = np.zeros_like(a)
    gx[:, 1:-1] = 0.5 * (a[:, 2:] - a[:, :-2])
    gy[1:-1, :] = 0.5 * (a[2:, :] - a[:-2, :])
    gx[~np.isfinite(gx)] = 0
    gy[~np.isfinite(gy)] = 0
    return eps * eps * l * l + pos * pos * (gx * gx + gy * gy)


def shift(a, dy, dx, fill):
    """b[y, x] = a[y + dy, x + dx], fill where that falls off the image."""
    ny, nx = a.shape
    b = np.full_like(a, fill)
    ys, ye = max(0, -dy), min(ny, ny - dy)
    xs, xe = max(0, -dx), min(nx, nx - dx)
    if ys < ye and xs < xe:
        b[ys:ye, xs:xe] = a[ys + dy:ye + dy, xs + dx:xe + dx]
    return b


def local_peaks(l, r):
    """Pixels whose value no other within r px (a (2r+1)^2 box) exceeds,
    ties going to the first in reading order (row by row, lower y
    first): one per plateau."""
    lo = np.where(np.isfinite(l), l, -np.inf)
    rowmax = lo.copy()
    before = np.full_like(lo, -np.inf)  # the same row, left of the pixel
    for i in range(1, r + 1):
        rowmax = np.maximum(rowmax, np.maximum(shift(lo, 0, i, -np.inf),
                                               shift(lo, 0, -i, -np.inf)))
        before = np.maximum(before, shift(lo, 0, -i, -np.inf))
    above = np.full_like(lo, -np.inf)  # the rows below y (earlier ones)
    below = np.full_like(lo, -np.inf)
    for j in range(1, r + 1):
        above = np.maximum(above, shift(rowmax, -j, 0, -np.inf))
        below = np.maximum(below, shift(rowmax, j, 0, -np.inf))
    earlier = np.maximum(above, before)
    later = np.maximum(below, np.maximum.reduce(
        [shift(lo, 0, i, -np.inf) for i in range(1, r + 1)]))
    return (lo > earlier) & (lo >= later)


def width2(l):
    """The squared width of a peak at every pixel: -1 / (second
    difference of ln l) along x and along y, averaged; 0 along an axis
    where one of the three pixels holds no light, inf where ln l does not
    curve down; NaN on the image's border (no neighbours)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ln = np.where(l > 0, np.log(np.where(l > 0, l, 1)), np.nan)
        out = np.full(l.shape, np.nan)
        c = ln[1:-1, 1:-1]
        acc = np.zeros_like(c)
        for a, b in ((ln[1:-1, :-2], ln[1:-1, 2:]), (ln[:-2, 1:-1], ln[2:, 1:-1])):
            k = a + b - 2 * c
            w = np.where(k < 0, -1 / np.where(k < 0, k, -1), np.inf)
            acc += 0.5 * np.where(np.isnan(k), 0.0, w)
        out[1:-1, 1:-1] = acc
    return out


def climb_steps(l):
    """Each pixel's step uphill: the brightest of the 3 x 3 around it
    (itself included; ties to the lowest index) and the runner-up, as
    flat indices, with their values."""
    ny, nx = l.shape
    lo = np.where(np.isfinite(l), l, -np.inf)
    idx = np.arange(ny * nx, dtype=np.int64).reshape(ny, nx)
    big = np.iinfo(np.int64).max
    b1v, b1i = lo.copy(), idx.copy()
    b2v, b2i = np.full_like(lo, -np.inf), np.full_like(idx, big)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            v = shift(lo, dy, dx, -np.inf)
            i = shift(idx, dy, dx, big)
            first = (v > b1v) | ((v == b1v) & (i < b1i))
            second = ~first & ((v > b2v) | ((v == b2v) & (i < b2i)))
            b2v = np.where(first, b1v, np.where(second, v, b2v))
            b2i = np.where(first, b1i, np.where(second, i, b2i))
            b1v = np.where(first, v, b1v)
            b1i = np.where(first, i, b1i)
    return b1i.ravel(), b1v.ravel(), b2i.ravel(), b2v.ravel()


def follow(up, flag=None):
    """Pointer jumping along the steps up (up[root] = root): every
    pixel's root, and with flag, whether any pixel on its way (itself and
    its root included) has flag set.  Each round doubles the way
    covered."""
    f = None if flag is None else flag.copy()
    while True:
        if f is not None:
            f |= f[up]
        nxt = up[up]
        if np.array_equal(nxt, up):
            return up, f
        up = nxt


def extended_light(l, v, tie=1e-3):
    """The pixels of l (D_R, its noise shrunk out) whose light is an
    extended source's (docs/subtraction.md, "Point sources only"): a
    boolean map; the bright peaks' median width^2; how many peaks are
    extended; and the pixels whose verdict hangs on a near tie: on their
    way up, a step to a pixel whose basin has the other verdict lost by
    less than tie sigma_D (v = sigma_D^2) of D_R, which single precision
    cannot tell from a win (rapid's D_R is single precision)."""
    ny, nx = l.shape
    w2 = width2(l)
    with np.errstate(invalid="ignore"):
        sd = np.sqrt(np.where(v > 0, v, 0))
        bright = (l > 0) & (v > 0) & (l >= 20 * sd) & local_peaks(l, 3)
    bright[[0, -1], :] = False
    bright[:, [0, -1]] = False
    wb = w2[bright].astype(np.float32)
    none = np.zeros(l.shape, dtype=bool)
    if wb.size < 10:
        return none, 0.0, 0, none
    med = float(np.partition(wb, wb.size // 2)[wb.size // 2])
    if not med > 0:
        return none, med, 0, none
    lit = (l > 0).ravel()
    self_ = np.arange(l.size, dtype=np.int64)
    b1i, b1v, b2i, b2v = climb_steps(l)
    roots, _ = follow(np.where(lit, b1i, self_))
    peak = lit & (roots == self_)
    wide = peak & (w2.ravel() > 6 * med)  # NaN on the border: never
    ext = lit & wide[roots]
    # the runner-up step's verdict: its own basin's (itself a peak when
    # the runner-up is the pixel itself)
    alt = np.where(b2i == self_, (w2.ravel() > 6 * med),
                   wide[roots[np.minimum(b2i, l.size - 1)]])
    near = (lit & (b2v > 0) & (b1v - b2v < tie * sd.ravel()) & (alt != ext))
    # and a peak whose width is 6 times the median within single
    # precision's rounding of it (ln of floats: about 1e-5 relative)
    near |= peak & (np.abs(w2.ravel() - 6 * med) < 1e-4 * 6 * med)
    _, fragile = follow(np.where(lit, b1i, self_), near)
    return (ext.reshape(ny, nx), med, int(wide.sum()),
            (fragile & lit).reshape(ny, nx))


def zogy(n, r, vn, vr, pn, pr, sn, sr, sx, sy, rn=(0, 0, 0, 0),
         rr=(0, 0, 0, 0), model=None, noise_given=(None, None)):
    """model: the PSF-model error's eps_d, pos_d, eps_s, pos_s, eps_f,
    pos_f (rapid's, as diff.h states the term); None: none.  noise_given:
    the robust sigmas of D_R and S_R to shrink them by (rapid's, which it
    takes from an even sample of the image; None: measured here on every
    pixel).  Either way the sigmas measured here are returned."""
    ny, nx = n.shape
    g = Grid(ny, nx, max(pn.shape[0], pr.shape[0]))
    nodata = ~(np.isfinite(n) & np.isfinite(r) & np.isfinite(vn) &
               np.isfinite(vr))
    s2n, s2r = sn * sn, sr * sr
    tn, tr = spectrum(g, rn), spectrum(g, rr)
    fd = 1 / np.sqrt(s2n * tn[0, 0] + s2r * tr[0, 0])
    Pn, Pr = g.psf_hat(pn), g.psf_hat(pr)
    delta2 = s2n * tn * np.abs(Pr) ** 2 + s2r * tr * np.abs(Pn) ** 2
    ok = delta2 > 1e-12 * (s2n + s2r)
    inv_delta = np.zeros_like(delta2)
    inv_delta[ok] = 1 / np.sqrt(delta2[ok])
    del delta2, ok

    mf = fills(n, r, vn, vr, pn, pr)
    Nh = g.rfft(fill(n, fill(mf, r)))
    Rh = g.rfft(fill(r, fill(mf, n)))
    Dh = (Pr * Nh - Pn * Rh) * inv_delta
    PDh = Pr * Pn * inv_delta / fd
    d = g.crop(g.irfft(Dh)) / fd
    s = g.crop(g.irfft(fd * Dh * np.conj(PDh)))
    del Dh
    # S = S_N - S_R: its two terms, for the astrometric variance
    sN = g.irfft(np.conj(Pn) * np.abs(Pr) ** 2 * inv_delta ** 2 * Nh)
    sR = g.irfft(np.conj(Pr) * np.abs(Pn) ** 2 * inv_delta ** 2 * Rh)
    # the reference's light as it enters D and S, for the model error
    d_r = g.crop(g.irfft(Pn * inv_delta * Rh)) / fd
    s_r = g.crop(sR).copy()
    del Nh, Rh
    v_ast = g.crop(sx * sx * (central_diff(sN, 1) ** 2 + central_diff(sR, 1) ** 2) +
                   sy * sy * (central_diff(sN, 0) ** 2 + central_diff(sR, 0) ** 2))
    del sN, sR

    # the variance kernels: the science's filtered by the square root of
    # its noise spectrum; the reference's correlation enters as a factor
    # on its variance map, sum |k^|^2 T_r / sum |k^|^2 over the frequencies
    # (one window: the correlations are given for the whole image)
    rtn = np.sqrt(tn)
    kn = np.conj(Pn) * np.abs(Pr) ** 2 * rtn * inv_delta ** 2
    kr = np.conj(Pr) * np.abs(Pn) ** 2 * inv_delta ** 2
    kdn, kdr = Pr * rtn * inv_delta, Pn * inv_delta
    w = np.full(kr.shape[1], 2.0)  # the half spectrum's other half
    w[0] = 1
    if g.px % 2 == 0:
        w[-1] = 1
    fs = np.sum(w * np.abs(kr) ** 2 * tr) / np.sum(w * np.abs(kr) ** 2)
    fdr = np.sum(w * np.abs(kdr) ** 2 * tr) / np.sum(w * np.abs(kdr) ** 2)
    del tn, tr
    VNh = g.rfft(fill(vn, vr))
    VRh = g.rfft(np.where(np.isfinite(vr), vr * fs, fill(vr, vn)))
    v_s = conv_square(g, VNh, kn) + conv_square(g, VRh, kr) + v_ast
    del v_ast
    VRh = g.rfft(np.where(np.isfinite(vr), vr * fdr, fill(vr, vn)))
    v_d = conv_square(g, VNh, kdn) + conv_square(g, VRh, kdr)
    del VRh
    noise_l = (0.0, 0.0)
    sel = (0.0, 0)
    fragile = np.zeros(n.shape, dtype=bool)
    if model is not None:
        eps_d, pos_d, eps_s, pos_s, eps_f, pos_f, eps_fr, pos_fr = model
        # the filled pixels' own errors, where their light is significant
        wn = np.zeros_like(n)
        wr = np.zeros_like(n)
        if eps_f > 0 or pos_f > 0 or eps_fr > 0 or pos_fr > 0:
            with np.errstate(invalid="ignore"):
                hn = (~np.isfinite(n) & np.isfinite(r) & np.isfinite(vr) &
                      (np.abs(r) > 3 * np.sqrt(np.where(np.isfinite(vr), vr, 0))))
                hr = (~np.isfinite(r) & np.isfinite(n) & np.isfinite(vn) &
                      (np.abs(n) > 3 * np.sqrt(np.where(np.isfinite(vn), vn, 0))))
            wn[hn] = fill_var(mf, r, eps_f, pos_f)[hn]
            wr[hr] = fill_var(mf, n, eps_fr, pos_fr)[hr]
        d_r, nd = shrink(d_r, noise_given[0])
        s_r, ns = shrink(s_r, noise_given[1])
        noise_l = (nd, ns)
        # point sources only: the extended sources' light (found on D_R,
        # against the noise's sigma_D^2) gets no term anywhere
        ext, w2med, next_, fragile = extended_light(d_r, v_d / (fd * fd))
        sel = (w2med, next_)
        for a in (d_r, s_r, wn, wr):
            a[ext] = 0
        del ext
        v_s = (v_s + conv_square(g, g.rfft(wn), kn) +
               conv_square(g, g.rfft(wr), kr) +
               eps_s * eps_s * s_r * s_r + pos_s * pos_s * grad2_edges(s_r))
        v_d = (v_d + (conv_square(g, g.rfft(wn), kdn) +
                      conv_square(g, g.rfft(wr), kdr)) +
               (eps_d * eps_d * d_r * d_r + pos_d * pos_d * grad2_edges(d_r)) *
               fd * fd)
    del kn, kr
    with np.errstate(invalid="ignore", divide="ignore"):
        scorr = np.where(v_s > 0, s / np.sqrt(np.where(v_s > 0, v_s, 1)), np.nan)
    unc = np.where(v_d > 0, np.sqrt(np.where(v_d > 0, v_d, 1)) / fd, np.nan)

    npd = max(pn.shape[0], pr.shape[0])
    h = npd // 2
    pd = np.roll(g.irfft(PDh), (h, h), axis=(0, 1))[:npd, :npd]
    pd = pd / pd.sum()
    for a in (d, unc, scorr):
        a[nodata] = np.nan
    return {"d": d, "unc": unc, "scorr": scorr, "pd": pd, "pad": (g.px, g.py),
            "fd": fd, "noise_l": noise_l, "point_light": sel,
            "fragile": fragile}


def noise_corr(v, sigma):
    """Correlations of neighbouring pixels at lags (1,0), (0,1), (1,1),
    (1,-1) away from outliers, as diff.h describes their measurement (on
    N - R for the reference's): pixels beyond 4 sigma, without data, or
    within 2 px of either left out."""
    bad = ~np.isfinite(v) | (np.abs(np.nan_to_num(v)) > 4 * sigma)
    grown = bad.copy()
    for d in (1, 2):  # a 5 x 5 box: along x, then along y
        grown[:, d:] |= bad[:, :-d]
        grown[:, :-d] |= bad[:, d:]
    bad = grown.copy()
    for d in (1, 2):
        grown[d:, :] |= bad[:-d, :]
        grown[:-d, :] |= bad[d:, :]
    good = ~grown
    w = v[good].astype(np.float64)
    if w.size < 1000:
        return [0.0] * 4
    mean, var = w.mean(), w.var()
    ny, nx = v.shape
    out = []
    for lx, ly in ((1, 0), (0, 1), (1, 1), (1, -1)):
        p = np.s_[1:ny - 1, 0:nx - 1]
        q = np.s_[1 + ly:ny - 1 + ly, lx:nx - 1 + lx]
        m = good[p] & good[q]
        out.append(float(((v[p][m] - mean) * (v[q][m] - mean)).mean() / var))
    return out


def sigma_from_variance(v):
    """A background noise as diff.h gives it: the square root of the
    median variance over the pixels with data."""
    return float(np.sqrt(np.median(v[np.isfinite(v)])))


def cross(m):
    """m grown by one pixel along x and y (the pixels whose term reads a
    pixel of m: its own light and the central differences)."""
    g = m.copy()
    g[1:, :] |= m[:-1, :]
    g[:-1, :] |= m[1:, :]
    g[:, 1:] |= m[:, :-1]
    g[:, :-1] |= m[:, 1:]
    return g


def differences(z, d, unc, sc, keep):
    both = np.isfinite(z["d"]) & np.isfinite(d) & np.isfinite(z["unc"]) & keep
    dd = np.abs(z["d"] - d)[both] / z["unc"][both]
    sboth = np.isfinite(z["scorr"]) & np.isfinite(sc) & keep
    ds = np.abs(z["scorr"] - sc)[sboth]
    zs = np.abs(z["scorr"][sboth])
    du = np.abs(z["unc"] - unc)[both] / z["unc"][both]
    imax = int(np.argmax(ds))
    return {
        "pixels": int(both.sum()),
        "d_max_sigma": float(dd.max()),
        "d_p99_sigma": float(np.percentile(dd, 99)),
        "scorr_max": float(ds.max()),
        "scorr_p99": float(np.percentile(ds, 99)),
        "scorr_at_max": float(zs[imax]),
        "scorr_max_over_1_plus_abs": float((ds / (1 + zs)).max()),
        "scorr_max_where_abs_below_100": float(ds[zs < 100].max()) if (zs < 100).any() else 0.0,
        "scorr_pixels_over_1e-3": int((ds > 1e-3).sum()),
        "unc_max_rel": float(du.max()),
        "unc_pixels_over_1e-3": int((du > 1e-3).sum()),
    }


def compare(z, rapid):
    """Over the pixels with data; and over those whose model-error term
    does not hang on a near tie of the extended-source selection (rapid's
    D_R is single precision: where the selection's step uphill is decided
    by less than 1e-3 sigma_D, either verdict is right)."""
    with fits.open(rapid) as f:
        d, unc, sc, pd = (f[k].data.astype(np.float64) for k in
                          ("D", "UNC", "SCORR", "PD"))
    c = differences(z, d, unc, sc, np.ones(d.shape, dtype=bool))
    c["nan_mask_differs"] = int(np.count_nonzero(np.isfinite(z["d"]) != np.isfinite(d)))
    c["pd_max_rel"] = float(np.abs(z["pd"] - pd).max() / np.abs(pd).max())
    near = cross(z["fragile"])
    c["selection_near_tie_pixels"] = int(z["fragile"].sum())
    c["without_near_ties"] = differences(z, d, unc, sc, ~near)
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs")
    ap.add_argument("rapid", nargs="?")
    ap.add_argument("--check", type=float)
    ap.add_argument("--out")
    a = ap.parse_args()
    t0 = time.monotonic()
    with fits.open(a.inputs) as f:
        h = f[0].header
        x = {k: f[k].data.astype(np.float64) for k in
             ("N", "R", "VN", "VR", "PN", "PR")}
    t_read = time.monotonic() - t0
    t0, c0 = time.monotonic(), time.process_time()
    rn = [h.get("CORR_N%d" % i, 0.0) for i in range(4)]
    rr = [h.get("CORR_R%d" % i, 0.0) for i in range(4)]
    model = tuple(h.get(k, 0.0) for k in
                  ("EPS_D", "POS_D", "EPS_S", "POS_S", "EPS_F", "POS_F",
                   "EPS_FR", "POS_FR"))
    z = zogy(x["N"], x["R"], x["VN"], x["VR"], x["PN"], x["PR"],
             h["SIGMA_N"], h["SIGMA_R"], h["SX"], h["SY"], rn, rr,
             model if any(model) else None,
             (h.get("NOISE_LD"), h.get("NOISE_LS")))
    t_zogy, c_zogy = time.monotonic() - t0, time.process_time() - c0
    # before the comparison reads rapid's products: the numpy ZOGY's own peak
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rep = {"nx": x["N"].shape[1], "ny": x["N"].shape[0], "pad": z["pad"],
           "pad_rapid": (h.get("PADX"), h.get("PADY")),
           "read_s": round(t_read, 2), "zogy_s": round(t_zogy, 2),
           "zogy_cpu_s": round(c_zogy, 2),
           "peak_rss_mb": round(peak_mb),
           "sigma_n": h["SIGMA_N"], "sigma_r": h["SIGMA_R"],
           "sigma_n_numpy": sigma_from_variance(x["VN"]),
           "sigma_r_numpy": sigma_from_variance(x["VR"]),
           "corr_n": rn, "corr_r": rr, "model_error": model,
           "noise_l": [h.get("NOISE_LD", 0.0), h.get("NOISE_LS", 0.0)],
           "noise_l_numpy": list(z["noise_l"]),
           "width2_nextended": [h.get("WIDTH2", 0.0), h.get("NEXT", 0)],
           "width2_nextended_numpy": list(z["point_light"]),
           "corr_r_numpy": noise_corr(x["N"] - x["R"], np.hypot(h["SIGMA_N"], h["SIGMA_R"]))}
    del x
    if a.out:
        hdus = [fits.PrimaryHDU()] + [
            fits.ImageHDU(z[k].astype(np.float32), name=n) for k, n in
            (("d", "D"), ("unc", "UNC"), ("scorr", "SCORR"), ("pd", "PD"))]
        fits.HDUList(hdus).writeto(a.out, overwrite=True)
    bad = False
    if a.rapid:
        c = compare(z, a.rapid)
        rep["vs_rapid"] = c
        if a.check is not None:
            w = c["without_near_ties"]
            w2r, w2n = rep["width2_nextended"][0], z["point_light"][0]
            bad = (w["d_max_sigma"] > a.check or w["scorr_max"] > a.check or
                   c["nan_mask_differs"] > 0 or
                   tuple(z["pad"]) != rep["pad_rapid"] or
                   (z["point_light"] != (0.0, 0) and
                    abs(w2r - w2n) > 1e-4 * abs(w2r)))
    print(json.dumps(rep))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
