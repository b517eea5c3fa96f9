#!/usr/bin/python3
"""Classify the passing false positives of a `rapid eval` run by cause.

usage: fp_classify.py EVALDIR [METHOD ...] [--out FILE.npz]
       fp_classify.py --summary FILE.npz

Reproduces rapid eval's matching (lib/eval/match.c: injections within
0.5 px, the simulator's transients within 1 px, DQ artefact bits within
1 px) on the kept catalogs, then for every false positive measures what
lies around it: bright stars, galaxies (static truth), DQ flags of the
science image (JUMP_DET, PERSISTENCE, ...), the reference's coverage
(its _cov map) and the distance to the image and coverage edges.  Prints
a table of classes and the S/N distribution against a Gaussian's
expectation.  Reads only; needs the eval directory's sim/ and pipeline/.
"""
import glob
import json
import os
import sys

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

ART_BITS = 0x3C04
JUMP, PERSIST, SAT = 4, 32, 2


def ini(path):
    out, sec = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith('['):
            sec = line[1:-1]
        elif '=' in line and sec:
            k, v = line.split('=', 1)
            out[(sec, k.strip())] = v.strip()
    return out


def dist_to_mask(mask, x, y, rmax=20):
    """Distance (px) from (x, y) to the nearest True pixel within rmax."""
    ny, nx = mask.shape
    ix, iy = int(round(x)), int(round(y))
    x0, x1, y0, y1 = max(ix - rmax, 0), min(ix + rmax + 1, nx), max(iy - rmax, 0), min(iy + rmax + 1, ny)
    jj, ii = np.nonzero(mask[y0:y1, x0:x1])
    if len(ii) == 0:
        return np.inf
    return float(np.min(np.hypot(ii + x0 - x, jj + y0 - y)))


def main():
    args = [a for a in sys.argv[1:]]
    out = None
    if '--out' in args:
        k = args.index('--out')
        out = args[k + 1]
        del args[k:k + 2]
    ev = args[0]
    methods = args[1:] or ['zogy', 'sfft', 'naive']
    sim = os.path.join(ev, 'sim')
    st = fits.getdata(os.path.join(sim, 'truth', 'static.fits'))
    tr = fits.getdata(os.path.join(sim, 'truth', 'transients.fits'))
    # the truth names images by file name (with .fits); jobs by base name
    trimg = np.array([os.path.basename(v.strip()).rsplit('.fits', 1)[0]
                      for v in tr['image'].astype(str)])
    inis = sorted(glob.glob(os.path.join(ev, 'jobs', '*.ini')))
    rows = {m: [] for m in methods}
    nimg = {m: 0 for m in methods}
    cache = {}
    for ip in inis:
        cfg = ini(ip)
        name = os.path.basename(ip)[:-4]
        base = name.rsplit('_r', 1)[0]
        jdir = ip[:-4]
        man = json.load(open(os.path.join(jdir, 'manifest.json')))
        l2 = os.path.join(sim, base + '.fits')
        if base not in cache:
            with fits.open(l2) as h:
                hdr = h[1].header
                dq = h['DQ'].data.astype(np.uint32)
            w = WCS(hdr)
            ny, nx = dq.shape
            ra0, dec0 = w.wcs_pix2world([[nx / 2, ny / 2]], 0)[0]
            sel = (np.abs(st['dec'] - dec0) < 0.3) & (np.abs((st['ra'] - ra0) * np.cos(np.radians(dec0))) < 0.3)
            s = st[sel]
            sx, sy = w.wcs_world2pix(s['ra'], s['dec'], 0)
            on = (sx > -30) & (sy > -30) & (sx < nx + 30) & (sy < ny + 30)
            s, sx, sy = s[on], sx[on], sy[on]
            scale = np.sqrt(abs(np.linalg.det(w.pixel_scale_matrix))) * 3600
            # reference coverage through the reference's WCS
            refdir = cfg[('reference', 'dir')]
            covp = glob.glob(os.path.join(refdir, '*_cov.fits'))
            cov = covw = None
            if covp:
                with fits.open(covp[0]) as h:
                    for hh in h:
                        if hh.data is not None and hh.data.ndim == 2:
                            cov = hh.data.astype(np.float32)
                            covw = WCS(hh.header)
                            break
            t = tr[trimg == base]
            cache[base] = dict(hdr=hdr, dq=dq, w=w, s=s, sx=sx, sy=sy, scale=scale,
                               zp=hdr['ZPTMAG'], cov=cov, covw=covw, tx=t['x'], ty=t['y'],
                               jump=(dq & JUMP) != 0, pers=(dq & PERSIST) != 0,
                               sat=(dq & SAT) != 0)
            if len(cache) > 2:  # keep memory bounded: jobs come in base order
                for k in list(cache)[:-2]:
                    del cache[k]
        c = cache[base]
        inj = fits.getdata(os.path.join(jdir, 'injections.fits'))
        for d in man['diffs']:
            m = d['method']
            if m not in rows or d.get('status') != 'ok':
                continue
            catp = d['products']['catalog']['path']
            if not os.path.exists(catp):
                continue
            cat = fits.getdata(catp)
            nimg[m] += 1
            ps = cat['pass'] != 0
            used = np.zeros(len(cat), bool)
            # injections: nearest pairs first within 0.5 px
            pairs = []
            cx, cy = cat['x'], cat['y']
            for k in range(len(inj)):
                dd = np.hypot(cx - inj['x'][k], cy - inj['y'][k])
                for j in np.nonzero((dd <= 0.5) & ps)[0]:
                    pairs.append((dd[j], k, j))
            pairs.sort()
            found = set()
            for dd, k, j in pairs:
                if k in found or used[j]:
                    continue
                used[j] = True
                found.add(k)
            for j in np.nonzero(ps & ~used)[0]:
                x, y = cx[j], cy[j]
                if len(c['tx']) and np.min(np.hypot(c['tx'] - x, c['ty'] - y)) <= 1.0:
                    continue
                i0, j0 = int(np.floor(x - 1 + 0.5)), int(np.floor(y - 1 + 0.5))
                win = c['dq'][max(j0, 0):j0 + 3, max(i0, 0):i0 + 3]
                if np.any(win & ART_BITS):
                    continue
                # what lies around
                st_ = c['s']
                dstar = np.hypot(c['sx'] - x, c['sy'] - y)
                isstar = st_['type'] == 1
                mags = st_['mag_H158']
                def nearest(sel):
                    if not np.any(sel):
                        return np.inf, np.nan
                    k = np.argmin(np.where(sel, dstar, np.inf))
                    return dstar[k], mags[k]
                d19, m19 = nearest(isstar & (mags < 19))
                d16, m16 = nearest(isstar & (mags < 16))
                dany, many = nearest(isstar)
                re_px = st_['r_e'] / c['scale']
                gal = (~isstar) & (mags < 25)
                g_in = gal & (dstar <= np.maximum(1.5 * re_px, 2))
                g_any = (~isstar) & (dstar <= np.maximum(1.5 * re_px, 2))
                gmag = np.min(mags[g_any]) if np.any(g_any) else np.nan
                # reference coverage at the candidate
                covv = np.nan
                covmin = np.nan
                covedge = np.inf
                if c['cov'] is not None:
                    ra, dec = c['w'].wcs_pix2world([[x, y]], 0)[0]
                    rx, ry = c['covw'].wcs_world2pix([[ra, dec]], 0)[0]
                    irx, iry = int(round(rx)), int(round(ry))
                    cv = c['cov']
                    if 0 <= irx < cv.shape[1] and 0 <= iry < cv.shape[0]:
                        covv = cv[iry, irx]
                        win = cv[max(iry - 3, 0):iry + 4, max(irx - 3, 0):irx + 4]
                        covmin = float(np.min(win))
                        covedge = dist_to_mask(cv <= 0, rx, ry, 30) if covmin <= 0 or True else np.inf
                ny, nx = c['dq'].shape
                rows[m].append(dict(
                    img=name, x=x, y=y, sign=int(cat['sign'][j]),
                    snr3=float(cat['snr_aper_3'][j]), snrpsf=float(cat['snr_psf'][j]),
                    snr=float(cat['snr'][j]), flux=float(cat['flux_psf'][j]),
                    mag=c['zp'] - 2.5 * np.log10(abs(cat['flux_psf'][j])) if cat['flux_psf'][j] != 0 else np.nan,
                    chi2=float(cat['chi2_psf'][j]), elong=float(cat['elongation'][j]),
                    fwhm=float(cat['fwhm'][j]), ratio=float(cat['aper_ratio_3_6'][j]),
                    sumrat=float(cat['sumrat'][j]), nneg=int(cat['nneg'][j]),
                    isoarea=int(cat['isoarea'][j]), peak=float(cat['peak'][j]),
                    d19=d19, m19=m19, d16=d16, m16=m16, dany=dany, many=many,
                    ongal=bool(np.any(g_in)), gmag=gmag,
                    djump=dist_to_mask(c['jump'], x, y), dpers=dist_to_mask(c['pers'], x, y),
                    dsat=dist_to_mask(c['sat'], x, y, 60),
                    cov=covv, covmin=covmin, covedge=covedge,
                    edge=min(x, y, nx - 1 - x, ny - 1 - y)))
    res = {}
    for m in methods:
        keys = rows[m][0].keys() if rows[m] else []
        res[m] = {k: np.array([r[k] for r in rows[m]]) for k in keys}
        print('%s: %d images, %d false positives, %.1f per image' % (
            m, nimg[m], len(rows[m]), len(rows[m]) / max(nimg[m], 1)))
    if out:
        np.savez(out, **{'%s__%s' % (m, k): v for m in res for k, v in res[m].items()},
                 **{'nimg__%s' % m: nimg[m] for m in methods})
    return res, nimg




def summary(npz, covarea=None):
    """The classes, exclusive in this order, per image, by sign and
    magnitude (brighter / fainter than 25.5): persistence (within 5 px of
    a PERSISTENCE pixel of the science image), hot pixel (the same
    detector pixel in another visit's image of the detector, or FWHM below
    0.7 of the PSF's), bright star (within 15 px of one brighter than 19),
    galaxy (within 1.5 r_e of one brighter than 25), cosmic ray (within
    5 px of a JUMP_DET pixel), image edge (within 20 px) or reference
    edge (within 10 px of no coverage), single-input reference (coverage
    <= 1.5), the rest."""
    z = np.load(npz)
    methods = sorted({k.split('__')[1] for k in z.files if k.startswith('nimg__')})
    for m in methods:
        n = int(z['nimg__' + m])
        g = lambda k: z[m + '__' + k]
        if (m + '__x') not in z.files:
            continue
        x, y, img, mag, sign = g('x'), g('y'), g('img'), g('mag'), g('sign')
        sca = np.array([s.split('_r')[0].rsplit('_', 1)[1] for s in img])
        vis = np.array([s.split('_r')[0].rsplit('_', 2)[1] for s in img])
        fixed = np.zeros(len(x), bool)
        for i in range(len(x)):
            fixed[i] = np.any((sca == sca[i]) & (vis != vis[i]) &
                              (np.hypot(x - x[i], y - y[i]) < 0.6))
        classes = [
            ('persistence', g('dpers') <= 5),
            ('hot pixel', fixed | (g('fwhm') < 0.7 * 1.51)),
            ('bright star', g('d19') < 15),
            ('galaxy', g('ongal')),
            ('cosmic ray', g('djump') <= 5),
            ('image/reference edge', (g('edge') < 20) | (g('covedge') < 10)),
            ('single-input reference', g('cov') <= 1.5),
            ('rest', np.ones(len(x), bool)),
        ]
        left = np.ones(len(x), bool)
        print('\n%s: %d images, %.1f false positives per image' % (m, n, len(x) / n))
        print('| class | all | positive | negative | brighter than 25.5 | median snr_aper_3 |')
        print('|---|---|---|---|---|---|')
        for name, sel in classes:
            s = sel & left
            left &= ~sel
            print('| %s | %.2f | %.2f | %.2f | %.2f | %s |' % (
                name, s.sum() / n, (s & (sign > 0)).sum() / n, (s & (sign < 0)).sum() / n,
                (s & (mag < 25.5)).sum() / n,
                '%.1f' % np.median(g('snr3')[s]) if s.any() else '-'))


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--summary':
        summary(sys.argv[2])
    else:
        main()
