#!/usr/bin/python3
"""What an extra vetting cut would do to a `rapid eval` run, offline.

usage: fp_cuts.py EVALDIR --collect FILE.npz     (reads the eval directory)
       fp_cuts.py --table FILE.npz [EVAL.json]   (the cuts' effects)

--collect reads every kept candidate catalog of the run with the
injections (jobs/*/injections.fits), the simulator's transients of the
image, the science image's DQ plane and the difference's data footprint
(the pipeline's product of the same science image: the injected job's
images are deleted), and stores each candidate's metrics and the matching
inputs.  --table redoes rapid eval's matching (lib/eval/match.c: passing
candidates to injections within 0.5 px, nearest pairs first; the rest to
the simulator's transients within 1 px, to DQ artefact bits in the 3x3
pixels, else a false positive) and its metrics (lib/eval/metrics.c:
completeness in 0.25-mag bins over 21-28, m80, m20, m_ph10, m_th at 10
false positives per image, the FOM with eval.json's m5sigma), first with
the catalogs' own pass flags (compare with eval.json), then with each
candidate cut added.  Reads only.
"""
import glob
import json
import os
import sys

import numpy as np
from astropy.io import fits

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fp_classify import ini  # noqa: E402

ART_BITS = 0x3C04
COLS = ['x', 'y', 'flux_psf', 'fluxerr_psf', 'sign', 'pass', 'fail_bits', 'fwhm',
        'a', 'b', 'elongation', 'chi2_psf', 'snr_aper_3', 'snr_psf', 'snr', 'isoarea',
        'aper_ratio_3_6', 'sumrat', 'nneg', 'peak', 'flags', 'satrad', 'dmag',
        'flux_aper_3', 'flux_aper_6', 'fluxerr_aper_6', 'flux_aper_10',
        'fluxerr_aper_10', 'flux_auto', 'npix_psf']
METHODS = ['zogy', 'sfft', 'naive']


def near_artefact(dq, x, y):
    ny, nx = dq.shape
    i0, j0 = int(np.floor(x - 1 + 0.5)), int(np.floor(y - 1 + 0.5))
    w = dq[max(j0, 0):max(j0 + 3, 0), max(i0, 0):max(i0 + 3, 0)]
    return bool(np.any(w & ART_BITS))


def aperture_fraction(psf, diam, sub=16):
    """The share of a native-pixel PSF (odd n x n, centred) inside a
    circle of this diameter, pixels counted by area (psfphot.c)."""
    n = psf.shape[0]
    c, r = (n - 1) // 2, diam / 2
    h = int(np.ceil(r)) + 1
    t = (np.arange(sub) + 0.5) / sub - 0.5
    tot = 0.0
    for j in range(-h, h + 1):
        for i in range(-h, h + 1):
            xx, yy = np.meshgrid(i + t, j + t)
            inside = np.count_nonzero(xx * xx + yy * yy < r * r)
            if inside:
                tot += float(psf[c + j, c + i]) * inside / sub ** 2
    return tot


def collect(ev, out):
    sim = os.path.join(ev, 'sim')
    tr = fits.getdata(os.path.join(sim, 'truth', 'transients.fits'))
    trimg = np.array([os.path.basename(v.strip()).rsplit('.fits', 1)[0]
                      for v in tr['image'].astype(str)])
    prod = {}
    for p in glob.glob(os.path.join(ev, 'pipeline', 'products', '*', 'jid*', '*_diff.fits')):
        prod[os.path.basename(p)] = p
    cand = {m: {k: [] for k in COLS + ['img', 'known', 'art', 'zp', 'psffwhm', 'apfrac3', 'apfrac6']} for m in METHODS}
    inj = {m: {k: [] for k in ['img', 'x', 'y', 'mag', 'nuclear', 'kept']} for m in METHODS}
    nimg = {m: 0 for m in METHODS}
    for ii, ip in enumerate(sorted(glob.glob(os.path.join(ev, 'jobs', '*.ini')))):
        name = os.path.basename(ip)[:-4]
        base = name.rsplit('_r', 1)[0]
        jdir = ip[:-4]
        man = json.load(open(os.path.join(jdir, 'manifest.json')))
        with fits.open(os.path.join(sim, base + '.fits')) as h:
            zp = h[1].header['ZPTMAG']
            dq = h['DQ'].data.astype(np.uint32)
        t = tr[trimg == base]
        ij = fits.getdata(os.path.join(jdir, 'injections.fits'))
        for d in man['diffs']:
            m = d['method']
            if m not in cand or d.get('status') != 'ok':
                continue
            catp = os.path.join(jdir, os.path.basename(d['products']['catalog']['path']))
            if not os.path.exists(catp):
                continue
            with fits.open(catp) as h:
                cat = h[1].data
                pf = h[1].header.get('PSFFWHM', np.nan)
                af3 = 10 ** (-0.4 * h[1].header.get('APCOR3', np.nan))
            psfp = prod['%s_%s_diff.fits' % (base, m)].replace('_diff.fits', '_psf.fits')
            af6 = aperture_fraction(fits.getdata(psfp), 6.0) if os.path.exists(psfp) else np.nan
            dif = fits.getdata(prod['%s_%s_diff.fits' % (base, m)])
            nimg[m] += 1
            c = cand[m]
            for k in COLS:
                c[k].append(np.asarray(cat[k], dtype=float))
            n = len(cat)
            c['img'].append(np.full(n, ii))
            c['zp'].append(np.full(n, zp))
            c['psffwhm'].append(np.full(n, pf))
            c['apfrac3'].append(np.full(n, af3))
            c['apfrac6'].append(np.full(n, af6))
            kn = np.zeros(n, bool)
            for j in range(n):
                if len(t):
                    kn[j] = np.min(np.hypot(t['x'] - cat['x'][j], t['y'] - cat['y'][j])) <= 1.0
            c['known'].append(kn)
            c['art'].append(np.array([near_artefact(dq, cat['x'][j], cat['y'][j]) for j in range(n)], bool))
            px, py = np.round(ij['x']).astype(int), np.round(ij['y']).astype(int)
            ok = (ij['flux_dn'] > 0) & (px >= 0) & (py >= 0) & (px < dif.shape[1]) & (py < dif.shape[0])
            ok[ok] = np.isfinite(dif[py[ok], px[ok]])
            g = inj[m]
            g['img'].append(np.full(len(ij), ii))
            g['x'].append(np.asarray(ij['x'], float))
            g['y'].append(np.asarray(ij['y'], float))
            g['mag'].append(np.asarray(ij['mag'], float))
            g['nuclear'].append(np.asarray(ij['nuclear'], int))
            g['kept'].append(ok)
        print(name, file=sys.stderr)
    arrs = {}
    for m in METHODS:
        for k, v in cand[m].items():
            arrs['c_%s__%s' % (m, k)] = np.concatenate(v) if v else np.zeros(0)
        for k, v in inj[m].items():
            arrs['i_%s__%s' % (m, k)] = np.concatenate(v) if v else np.zeros(0)
        arrs['nimg__' + m] = nimg[m]
    np.savez_compressed(out, **arrs)


class Data:
    def __init__(self, z, m):
        self.c = {k.split('__')[1]: z[k] for k in z.files if k.startswith('c_%s__' % m)}
        self.i = {k.split('__')[1]: z[k] for k in z.files if k.startswith('i_%s__' % m)}
        self.nimg = int(z['nimg__' + m])
        c, i = self.c, self.i
        # candidate-injection pairs within 0.5 px, whatever passes
        self.pairs = {}
        for im in np.unique(i['img']):
            ci = np.nonzero(c['img'] == im)[0]
            ii = np.nonzero(i['img'] == im)[0]
            dx = c['x'][ci][None, :] - i['x'][ii][:, None]
            dy = c['y'][ci][None, :] - i['y'][ii][:, None]
            d2 = dx * dx + dy * dy
            a, b = np.nonzero(d2 <= 0.25)
            order = np.lexsort((ci[b], ii[a], d2[a, b]))
            self.pairs[im] = (d2[a, b][order], ii[a][order], ci[b][order])


def match(D, passing):
    """found per injection, the false positives and their magnitudes, and
    the matched candidate's PSF flux per injection (match.c)."""
    found = np.zeros(len(D.i['x']), bool)
    fl = np.full(len(D.i['x']), np.nan)
    used = np.zeros(len(D.c['x']), bool)
    for im, (d2, ik, cj) in D.pairs.items():
        for k, j in zip(ik, cj):
            if not passing[j] or found[k] or used[j]:
                continue
            used[j] = found[k] = True
            fl[k] = D.c['flux_psf'][j]
    c = D.c
    fp = passing & ~used & ~c['known'] & ~c['art']
    f = np.abs(c['flux_psf'][fp])
    mag = np.where((f > 0) & np.isfinite(f), c['zp'][fp] - 2.5 * np.log10(np.where(f > 0, f, 1)), np.nan)
    return found, fp, mag, fl


def crossing(x, y, level, rising=False):
    px = py = last = np.nan
    reached = False
    for xk, yk in zip(x, y):
        if not np.isfinite(yk):
            continue
        beyond = yk >= level if rising else yk < level
        if not reached:
            if beyond and not rising:
                return np.nan
            reached = True
            if beyond:
                return xk
        elif beyond:
            return px + (xk - px) * (py - level) / (py - yk)
        px, py, last = xk, yk, xk
    return last


def rsig(v):
    v = np.sort(v[np.isfinite(v)])
    if len(v) < 5:
        return np.nan
    med = v[len(v) // 2]
    return 1.4826 * np.sort(np.abs(v - med))[len(v) // 2]


def metrics(D, found, fpmag, group, m5, flux_psf=None):
    i = D.i
    sel = i['kept'].astype(bool)
    if group == 'field':
        sel &= i['nuclear'] == 0
    elif group == 'nuclear':
        sel &= i['nuclear'] != 0
    lo, dm, nb = 21.0, 0.25, 28
    mags = lo + dm * (np.arange(nb) + 0.5)
    comp = np.full(nb, np.nan)
    prec = np.full(nb, np.nan)
    for b in range(nb):
        s = sel & (i['mag'] >= lo + b * dm) & (i['mag'] < lo + (b + 1) * dm)
        if s.sum():
            comp[b] = found[s].sum() / s.sum()
        if flux_psf is not None:
            s2 = s & found
            ft = 10 ** (-0.4 * (i['mag'][s2] - i['zp'][s2]))
            r = (flux_psf[s2] - ft) / ft
            prec[b] = rsig(r)
    m80 = crossing(mags, comp, 0.8)
    m20 = crossing(mags, comp, 0.2)
    mph = crossing(mags, prec, 0.1, True) if flux_psf is not None else np.nan
    fps = np.sort(np.where(np.isnan(fpmag), np.inf, fpmag))
    need = int(np.ceil(10 * D.nimg - 1e-9))
    faint = lo + nb * dm
    mth = fps[need - 1] if need <= len(fps) and fps[need - 1] < faint else faint
    return dict(m80=m80, m20=m20, m_th=mth, m_ph10=mph, fp=len(fps) / D.nimg,
                n_inj=int(sel.sum()), n_rec=int(found[sel].sum()),
                comp=found[sel].sum() / sel.sum())


def fom(r, m5):
    w = [1.0, 0.8, 0.6, 0.3, 0.2]
    v = [r['m_th'], r['m80'], r['m20'], m5, r['m_ph10']]
    return sum(a * b for a, b in zip(w, v)) / sum(w)


def matched(D, passing):
    """Candidates matched to an injection."""
    used = np.zeros(len(D.c['x']), bool)
    found = np.zeros(len(D.i['x']), bool)
    for im, (d2, ik, cj) in D.pairs.items():
        for k, j in zip(ik, cj):
            if passing[j] and not found[k] and not used[j]:
                used[j] = found[k] = True
    return used


def extend(c, floor=0.05):
    """The flux in the 6-px aperture beyond what the PSF fit puts there, in
    units of the PSF fit's error with a floor of `floor` x the flux (the
    catalog column `extend`, lib/image/vet.c)."""
    return c['sign'] * (c['flux_aper_6'] / c['apfrac6'] - c['flux_psf']) / np.hypot(
        c['fluxerr_psf'], floor * c['flux_psf'])


def psf_r36(c, found):
    """The PSF's own aper_ratio_3_6 per candidate: from the difference
    PSF's aperture fractions (header APCOR3, the product PSF), else (no
    PSF file: the naive difference) the median of the image's recovered
    injections of 3-px S/N above 50."""
    r = c['apfrac3'] / c['apfrac6']
    for im in np.unique(c['img']):
        q = c['img'] == im
        if not np.all(np.isfinite(r[q])):
            b = q & found & (c['snr_aper_3'] > 50)
            r[q] = np.median(c['aper_ratio_3_6'][b]) if b.any() else np.nan
    return r


def cuts(c, found):
    """Candidate extra cuts: name -> boolean array of rows that fail."""
    fw = c['fwhm'] / c['psffwhm']
    rel = c['aper_ratio_3_6'] / psf_r36(c, found)
    return {
        'none (eval.json)': np.zeros(len(fw), bool),
        'fwhm > 2.2 x PSFFWHM': fw > 2.2,
        'fwhm > 2.0 x PSFFWHM': fw > 2.0,
        'chi2_psf > 4': c['chi2_psf'] > 4,
        'chi2_psf > 3': c['chi2_psf'] > 3,
        'elongation > 1.5': c['elongation'] > 1.5,
        'extend > 3': extend(c) > 3,
        'extend > 2.5': extend(c) > 2.5,
        'aper_ratio_3_6 < 0.5': c['aper_ratio_3_6'] < 0.5,
        'broad_min 0.6': rel < 0.6,
        'broad_min 0.65': rel < 0.65,
        'broad_min 0.7 (default)': rel < 0.7,
        'broad_min 0.75': rel < 0.75,
        'broad_min 0.8': rel < 0.8,
    }


def table(npz, evjson=None):
    z = np.load(npz)
    ev = json.load(open(evjson)) if evjson else None
    for m in METHODS:
        if ('nimg__' + m) not in z.files or int(z['nimg__' + m]) == 0:
            continue
        D = Data(z, m)
        D.i['zp'] = np.zeros(len(D.i['x']))
        zpi = {}
        for im, zp in zip(D.c['img'], D.c['zp']):
            zpi[im] = zp
        D.i['zp'] = np.array([zpi.get(im, np.nan) for im in D.i['img']])
        m5 = ev['H158'][m]['all']['m5sigma'] if ev else np.nan
        base = D.c['pass'] != 0
        print('\n## %s (%d images, m5sigma %.3f)\n' % (m, D.nimg, m5))
        if ev:
            found, fp, fpm, fl = match(D, base)
            for g in ['all', 'field', 'nuclear']:
                r = metrics(D, found, fpm, g, m5, fl)
                e = ev['H158'][m][g]
                print('check %s: n_inj %d/%d n_rec %d/%d fp %.4f/%.4f m80 %.4f/%.4f m20 %.4f/%.4f '
                      'm_th %.4f/%.4f m_ph10 %.4f/%.4f fom %.4f/%.4f' % (
                          g, r['n_inj'], e['n_injected'], r['n_rec'], e['n_recovered'],
                          r['fp'], e['fp_per_image'], r['m80'], e['m80'], r['m20'], e['m20'],
                          r['m_th'], e['m_th'], r['m_ph10'], e['m_ph10'], fom(r, m5), e['fom']))
            print()
        print('| cut | FP/image | neg. | field compl. | nuclear compl. | field m80 | m5σ−m80 '
              '| m_th | m5σ−m_th | field FOM | nuclear m80 | nuclear FOM | injections lost |')
        print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
        n0 = metrics(D, match(D, base)[0], np.zeros(0), 'all', m5)['n_rec']
        rep = D.c['img'] % 2  # jobs sorted: each image's _r0, then _r1
        rows = []
        for name, fail in cuts(D.c, matched(D, base)).items():
            p = base & ~fail
            found, fp, fpm, fl = match(D, p)
            rf = metrics(D, found, fpm, 'field', m5, fl)
            rn = metrics(D, found, fpm, 'nuclear', m5, fl)
            ra = metrics(D, found, fpm, 'all', m5, fl)
            neg = (fp & (D.c['sign'] < 0)).sum() / D.nimg
            print('| %s | %.2f | %.2f | %.4f | %.4f | %.3f | %.2f | %.3f | %.2f | %.3f | %.3f | %.3f | %d |' % (
                name, rf['fp'], neg, rf['comp'], rn['comp'], rf['m80'], m5 - rf['m80'],
                rf['m_th'], m5 - rf['m_th'], fom(rf, m5), rn['m80'], fom(rn, m5),
                n0 - ra['n_rec']))
            rows.append((name, [(fp & (rep == k)).sum() / (D.nimg / 2) for k in (0, 1)]))
        print('\nfalse positives per image, first / second injection seed:')
        for name, v in rows:
            print('  %s: %.2f / %.2f' % (name, v[0], v[1]))


if __name__ == '__main__':
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == '--table':
        table(a[1], a[2] if len(a) > 2 else None)
    elif len(a) == 3 and a[1] == '--collect':
        collect(a[0], a[2])
    else:
        sys.exit(__doc__)
