#!/usr/bin/python3
"""What the reference's inputs hold where a false positive lies in an area
the reference has from a single input.

usage: fp_refinputs.py EVALDIR FP.npz [METHOD]

FP.npz is fp_classify.py's --out of the same run.  For each false
positive of the class "single-input reference" (fp_classify's classes, in
its order) -- counted once per site, since the eval's repeats of a science
image share its false positives -- the sky position is taken into every
input of the job's reference (the reference job's configuration lists
them) and, in each input that has data there, the 7 x 7 pixels around it
are searched for:
  spike  an unflagged single pixel that the spike test of rapid/spikes.h
         (5 sigma, margin 1.5, the PSF's peak-to-neighbour ratio) finds;
  pers   a PERSISTENCE pixel within 4.5 px;
  jump   a JUMP_DET pixel within 3 px;
otherwise the largest excess there, in sigma of the sky's noise (bright:
above 8, low-level: 4.5 to 8, noise: below).  Prints one line per site
and the totals, weighted by the false positives of each site.
Reads only.
"""
import glob
import os
import sys
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

sys.dont_write_bytecode = True  # no __pycache__ in the repository
from fp_classify import ini  # the job configurations' reader (same directory)

warnings.filterwarnings('ignore')
UNUSABLE = 0x2C23  # DO_NOT_USE SATURATED PERSISTENCE DEAD HOT LOW_QE




def single_input(z, m):
    """fp_classify's exclusive classes: the rows of 'single-input reference'."""
    g = lambda k: z[m + '__' + k]
    x, y, img = g('x'), g('y'), g('img')
    sca = np.array([s.split('_r')[0].rsplit('_', 1)[1] for s in img])
    vis = np.array([s.split('_r')[0].rsplit('_', 2)[1] for s in img])
    fixed = np.array([np.any((sca == sca[i]) & (vis != vis[i]) &
                             (np.hypot(x - x[i], y - y[i]) < 0.6)) for i in range(len(x))])
    earlier = [g('dpers') <= 5, fixed | (g('fwhm') < 0.7 * 1.51), g('d19') < 15,
               g('ongal'), g('djump') <= 5, (g('edge') < 20) | (g('covedge') < 10)]
    left = np.ones(len(x), bool)
    for s in earlier:
        left &= ~s
    return left & (g('cov') <= 1.5)


def psf_ratio(path):
    p = fits.getdata(path)
    c = p.shape[0] // 2
    return p[c, c] / max(p[c, c - 1], p[c, c + 1], p[c - 1, c], p[c + 1, c])


def main():
    ev, npz = sys.argv[1], sys.argv[2]
    m = sys.argv[3] if len(sys.argv) > 3 else 'zogy'
    z = np.load(npz)
    sel = single_input(z, m)
    x, y, img, sign = z[m + '__x'], z[m + '__y'], z[m + '__img'].astype(str), z[m + '__sign']
    refinputs = {}
    for p in glob.glob(os.path.join(ev, 'pipeline', 'jobs', '*', 'jid*.ini')):
        c = ini(p)
        if ('reference', 'ninputs') in c:
            n = int(c[('reference', 'ninputs')])
            refinputs[c[('job', 'out')]] = [
                (c[('reference', 'input.%d.image' % k)], c[('reference', 'input.%d.psf' % k)])
                for k in range(1, n + 1)]
    opened, ratios, sites = {}, {}, {}

    def op(p):
        if p not in opened:
            h = fits.open(p, memmap=True, do_not_scale_image_data=True)
            opened[p] = (h, WCS(h[1].header))
        return opened[p]

    for i in np.nonzero(sel)[0]:
        base = img[i].rsplit('_r', 1)[0]
        key = next((k for k in sites if k[0] == base and
                    np.hypot(k[1] - x[i], k[2] - y[i]) < 1), None)
        if key:
            sites[key]['n'] += 1
            continue
        rdir = ini(os.path.join(ev, 'jobs', img[i] + '.ini'))[('reference', 'dir')]
        h, w = op(os.path.join(ev, 'sim', base + '.fits'))
        ra, dec = w.wcs_pix2world([[x[i], y[i]]], 0)[0]
        tags = []
        for path, psf in refinputs[rdir]:
            ih, iw = op(path)
            jx, jy = (int(round(v)) for v in iw.wcs_world2pix([[ra, dec]], 0)[0])
            ny, nx = ih[1].data.shape
            if not (25 <= jx < nx - 25 and 25 <= jy < ny - 25):
                continue
            dq = ih[3].data[jy - 25:jy + 26, jx - 25:jx + 26].astype(np.int64) + 2 ** 31
            if dq[25, 25] & 1:
                continue
            if psf not in ratios:
                ratios[psf] = psf_ratio(psf)
            s = ih[1].data[jy - 25:jy + 26, jx - 25:jx + 26].astype(float)
            b = np.median(s)
            g_ = ih[1].header.get('GAIN', 1.0)
            sd = np.sqrt((ih[1].header['RDNOISE'] / g_) ** 2 + max(b, 0) / g_)
            e = np.where(dq & UNUSABLE, np.nan, s) - b
            spike = 0
            for yy in range(22, 29):
                for xx in range(22, 29):
                    nb = [e[yy, xx - 1], e[yy, xx + 1], e[yy - 1, xx], e[yy + 1, xx]]
                    if (np.isfinite(e[yy, xx]) and np.all(np.isfinite(nb)) and e[yy, xx] > 5 * sd
                            and e[yy, xx] - 1.5 * ratios[psf] * max(nb) > 5 * sd):
                        spike = max(spike, e[yy, xx] / sd)
            near = lambda bit, r: np.any(np.hypot(*(np.nonzero(dq[19:32, 19:32] & bit) -
                                                    np.array([[6], [6]]))) <= r)
            if spike:
                tags.append('spike')
            elif near(32, 4.5):
                tags.append('pers')
            elif near(4, 3):
                tags.append('jump')
            else:
                mx = np.nanmax(e[22:29, 22:29]) / sd
                tags.append('bright' if mx > 8 else 'low-level' if mx > 4.5 else 'noise')
        order = ['spike', 'pers', 'jump', 'bright', 'low-level', 'noise']
        cls = min(tags, key=order.index) if tags else 'no input'
        sites[(base, x[i], y[i])] = dict(n=1, sign=int(sign[i]), cls=cls, tags=tags)
    tot = {}
    for k, v in sites.items():
        print('%s %7.1f %7.1f sign %+d x%d: %s (%s)' % (k[0], k[1], k[2], v['sign'], v['n'],
                                                      v['cls'], ', '.join(v['tags'])))
        t = tot.setdefault(v['cls'], [0, 0, 0])
        t[0] += 1
        t[1] += v['n']
        t[2] += v['n'] if v['sign'] < 0 else 0
    nfp = sum(v['n'] for v in sites.values())
    print('\n| what the input holds there | sites | false positives | of them negative | share |')
    print('|---|---|---|---|---|')
    for c in sorted(tot, key=lambda c: -tot[c][1]):
        print('| %s | %d | %d | %d | %.0f %% |' % (c, tot[c][0], tot[c][1], tot[c][2],
                                                100.0 * tot[c][1] / nfp))


if __name__ == '__main__':
    main()
