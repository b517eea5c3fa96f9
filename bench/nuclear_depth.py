#!/usr/bin/python3
"""What costs the nuclear injections of a `rapid eval` run their depth.

usage: nuclear_depth.py EVALDIR [METHOD]      (METHOD: zogy by default)

The nuclear group sits on galaxies, whose own photons add noise that the
field group does not have.  For every injection that the difference can
see (the reference's coverage >= 0.5 there, as rapid eval counts them),
this computes the host's surface brightness at the injection from the
static truth (Sersic profile, n, r_e, q, PA; no PSF smoothing), in
science DN per pixel, and the noise inflation

    f = sqrt(1 + SB / sigma_sky^2)

with sigma_sky^2 the science image's median ERR^2 (the sky, dark and
read noise of one exposure; the reference scales both terms alike).  An
injection of magnitude m on its host is as hard to see as one of
m_eff = m + 2.5 log10 f in empty sky.  It prints, per 0.25-mag bin, the
field group's detection and pass fractions against m, and the nuclear
group's against m and against m_eff: where the nuclear fractions against
m_eff reach the field's, the host's photon noise explains the loss; what
is left is the subtraction's (residuals of the host) or the blend's.
Then, for the nuclear injections of 24.5-26 mag not detected, their
inflation, their expected S/N with the host's noise and the distance to
the nearest positive candidate.  Reads only.
"""
import glob
import json
import math
import os
import sys
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fp_classify import ini  # noqa: E402

PIXSCALE = 0.11  # arcsec


def sersic_bn(n):
    """b_n of a Sersic profile (asymptotic series, good to 1e-4 for n > 0.36)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n)


def host_sb(inj, st, zp, exptime):
    """The host's surface brightness at each injection, DN per pixel."""
    ids = np.asarray(st['id'])
    order = np.argsort(ids)
    k = order[np.searchsorted(ids[order], inj['host'])]
    g = st[k]
    n = np.clip(g['sersic_n'], 0.36, 10)
    q = np.clip(g['q'], 0.05, 1)
    re = np.maximum(g['r_e'], 1e-3)
    pa = np.radians(g['pa'])
    east = (inj['ra'] - g['ra']) * np.cos(np.radians(g['dec'])) * 3600
    north = (inj['dec'] - g['dec']) * 3600
    a = np.sin(pa) * east + np.cos(pa) * north
    b = np.cos(pa) * east - np.sin(pa) * north
    r = np.sqrt(a ** 2 + (b / q) ** 2) / re
    bn = sersic_bn(n)
    flux = 10 ** (-0.4 * (g['mag_H158'] - zp)) * exptime
    gam = np.array([math.gamma(2 * v) for v in n])
    ie = flux / (2 * np.pi * q * re ** 2 * n * np.exp(bn) * bn ** (-2 * n) * gam)
    return ie * np.exp(-bn * (r ** (1 / n) - 1)) * PIXSCALE ** 2, r


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith('-'):
        sys.exit(__doc__)
    ev = sys.argv[1]
    meth = sys.argv[2] if len(sys.argv) > 2 else 'zogy'
    warnings.simplefilter('ignore')
    st = fits.getdata(os.path.join(ev, 'sim/truth/static.fits'))
    covs, sky = {}, {}
    rows, nearest = [], []
    for cfg in sorted(glob.glob(os.path.join(ev, 'jobs/*.ini'))):
        c = ini(cfg)
        job = cfg[:-4]
        injf = os.path.join(job, 'injections.fits')
        if not os.path.exists(injf):
            continue
        ref = c[('reference', 'dir')]
        if ref not in covs:
            f = glob.glob(os.path.join(ref, '*_cov.fits'))[0]
            covs[ref] = (fits.getdata(f, 1), WCS(fits.getheader(f, 1)))
        cov, cw = covs[ref]
        d = np.asarray(fits.getdata(injf))
        x, y = cw.all_world2pix(d['ra'], d['dec'], 0)
        ix, iy = np.round(x).astype(int), np.round(y).astype(int)
        ok = (ix >= 0) & (iy >= 0) & (ix < cov.shape[1]) & (iy < cov.shape[0])
        cv = np.zeros(len(d))
        cv[ok] = cov[iy[ok], ix[ok]]
        d = d[cv >= 0.5]
        base = os.path.basename(job).rsplit('_r', 1)[0] + '.fits'
        l2 = os.path.join(ev, 'sim', base)
        if l2 not in sky:
            h = fits.open(l2)
            e = h['ERR'].data
            sky[l2] = (float(np.nanmedian(e[::7, ::7])) ** 2, h['SCI'].header['ZPTMAG'],
                       h['SCI'].header['EXPTIME'])
        sig2, zp, texp = sky[l2]
        f = np.ones(len(d))
        nuc = d['nuclear'] == 1
        if nuc.any():
            sb, _ = host_sb(d[nuc], st, zp, texp)
            f[nuc] = np.sqrt(1 + sb / sig2)
        rows.append((d, f))
        cat = glob.glob(os.path.join(job, '*_%s_cat.fits' % meth))
        if cat:
            t = fits.getdata(cat[0])
            pos = np.asarray(t['sign']) > 0
            cx, cy = np.asarray(t['x'])[pos], np.asarray(t['y'])[pos]
            for s, fs in zip(d[nuc], f[nuc]):
                if 24.5 <= s['mag'] < 26 and not s['detected_' + meth]:
                    dd = np.hypot(cx - s['x'], cy - s['y'])
                    nearest.append((s['mag'], fs, dd.min() if len(dd) else np.inf))
    d = np.concatenate([r[0] for r in rows])
    f = np.concatenate([r[1] for r in rows])
    fld, nuc = d['nuclear'] == 0, d['nuclear'] == 1
    meff = d['mag'] + 2.5 * np.log10(f)
    det, fnd = d['detected_' + meth] == 1, d['found_' + meth] == 1
    print('%s: %d field and %d nuclear injections the difference sees' %
          (meth, fld.sum(), nuc.sum()))
    print('host noise inflation f of the nuclear group, 10/25/50/75/90 %%: %s' %
          np.round(np.percentile(f[nuc], [10, 25, 50, 75, 90]), 2))
    print('%-6s %21s %21s %27s' % ('mag', 'field det / pass', 'nuclear by m',
                                   'nuclear by m_eff (n)'))
    for lo in np.arange(24.0, 27.0, 0.25):
        a = fld & (d['mag'] >= lo) & (d['mag'] < lo + 0.25)
        b = nuc & (d['mag'] >= lo) & (d['mag'] < lo + 0.25)
        e = nuc & (meff >= lo) & (meff < lo + 0.25)
        print('%-6.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f (%d)' %
              (lo, det[a].mean(), fnd[a].mean(), det[b].mean(), fnd[b].mean(),
               det[e].mean(), fnd[e].mean(), e.sum()))
    if nearest:
        m, fs, dist = np.array(nearest).T
        m5 = json.load(open(os.path.join(ev, 'eval.json')))['H158'][meth]['field']['m5sigma']
        snr = 5 * 10 ** (-0.4 * (m - m5)) / fs
        print('nuclear, 24.5-26 mag, not detected: %d; f median %.2f; expected S/N with '
              'the host 25/50/75 %%: %s' % (len(m), np.median(fs),
                                           np.round(np.percentile(snr, [25, 50, 75]), 1)))
        print('  nearest positive candidate: 0.5-4 px %.2f, beyond 4 px %.2f; '
              'expected S/N >= 10 and nothing within 4 px: %.2f' %
              (np.mean(dist < 4), np.mean(dist >= 4), np.mean((snr >= 10) & (dist >= 4))))


if __name__ == '__main__':
    main()
