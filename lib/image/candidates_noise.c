/* candidates_noise.c - the noise of the apertures and of the PSF fit
 * measured on the difference itself.
 *
 * A difference image's noise is correlated between pixels (the reference
 * is resampled and convolved, ZOGY and the kernel fit convolve both
 * images), so the per-pixel uncertainties summed in quadrature
 * underestimate the error of a sum over several pixels.  The stage places
 * random apertures (each diameter) and PSF fits of the flux alone (the
 * fit's own estimator, at a fixed position) on empty sky: no unusable
 * pixel and no pixel of a candidate of 3-px S/N >= 5 (by the map) within
 * 2 px.  The factor k the sky's part of every error of that measurement
 * is multiplied by is measured on the tail of flux / error there rather
 * than its core: the spread of |flux / error - median| below which
 * 98.758 % of the samples lie (a Gaussian's 2.5 sigma), divided by 2.5.
 * Where the map's error is off by different factors in different parts
 * of the image (the reference's coverage, the resampling, the matching
 * kernel), flux / error is a mixture of Gaussians whose core is narrower
 * than its tail, and the cuts at S/N 5 see the tail: a core estimate (the
 * median absolute deviation) let noise peaks beyond the cuts through at
 * several times the Gaussian rate.  2.5 sigma is as far out as the
 * samples hold enough points (NOISE_TARGET: ~200 beyond it) and the few
 * faint sources left among them do not reach.  With fewer than
 * NOISE_TAIL_MIN samples the factor is the core's (1.4826 x the median
 * absolute deviation).  A candidate's variance var becomes var + (k^2 - 1)
 * var_sky, var_sky the median variance the map gives that measurement on
 * empty sky, kept between var and k^2 var.  A faint candidate's error is
 * thus k times the map's, a bright source's Poisson part (which the map
 * models) is left as it is.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/candidates_internal.h"
#include "image/extract_internal.h"

#define NOISE_TARGET 16000  /* samples per measurement */
#define NOISE_TRIES 40      /* attempts per sample at most */
#define NOISE_MIN 100       /* fewer samples: factor 1 */
#define NOISE_TAIL_MIN 2000 /* fewer: the core's factor */
#define NOISE_TAIL_Z 2.5    /* the tail's quantile, in Gaussian sigma */
#define NOISE_TAIL_P 0.98758066934844773 /* erf(2.5 / sqrt 2) */
#define NOISE_MARGIN 2    /* px of empty sky beyond the aperture */

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The noise factor of the samples v[0..n) (reordered): the quantile
 * NOISE_TAIL_P of |v - median| / NOISE_TAIL_Z, or with fewer than
 * NOISE_TAIL_MIN samples 1.4826 x the median absolute deviation. */
static double noise_factor(double *v, long n)
{
    double med, q, f;
    long i, lo;

    qsort(v, (size_t)n, sizeof *v, cmp_double);
    med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    for (i = 0; i < n; i++)
        v[i] = fabs(v[i] - med);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (n < NOISE_TAIL_MIN)
        return 1.4826 * (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
    /* linear between the order statistics around the quantile */
    q = NOISE_TAIL_P * (n - 1);
    lo = (long)floor(q);
    f = q - lo;
    return (v[lo] + (lo + 1 < n ? f * (v[lo + 1] - v[lo]) : 0)) / NOISE_TAIL_Z;
}

/* A random centre whose box of half-side rad + NOISE_MARGIN holds no
 * unusable or source pixel; 0, or -1 after NOISE_TRIES attempts. */
static int empty_spot(const rapid_cand_input *in, const unsigned char *mask,
                      const unsigned char *src, double rad, uint64_t *st,
                      double *x, double *y)
{
    int h = (int)ceil(rad) + NOISE_MARGIN, t, i, j;

    if (in->nx <= 2 * h + 2 || in->ny <= 2 * h + 2)
        return -1;
    for (t = 0; t < NOISE_TRIES; t++) {
        int ok = 1, i0, j0;
        *x = h + 0.5 + uniform(st) * (in->nx - 2 * h - 2);
        *y = h + 0.5 + uniform(st) * (in->ny - 2 * h - 2);
        i0 = (int)floor(*x + 0.5);
        j0 = (int)floor(*y + 0.5);
        for (j = j0 - h; ok && j <= j0 + h; j++)
            for (i = i0 - h; i <= i0 + h; i++) {
                size_t o = (size_t)j * in->nx + i;
                if (mask[o] || src[o]) {
                    ok = 0;
                    break;
                }
            }
        if (ok)
            return 0;
    }
    return -1;
}

void cand_noise_measure(const rapid_cand_input *in, const rapid_cand_opts *o,
                        const float *fit, const float *noise,
                        const unsigned char *mask, const unsigned char *src,
                        const double *diam, cand_noise *nc)
{
    double *t = malloc(NOISE_TARGET * sizeof *t), *v = malloc(NOISE_TARGET * sizeof *v);
    uint64_t st = 0x5eedc0ffee123457ULL;
    sep_image im;
    int a, h = o->psf.half;
    long n, k;

    for (a = 0; a < CAND_NAPER; a++) {
        nc->aper[a] = 1;
        nc->naper[a] = 0;
        nc->vsky[a] = 0;
    }
    nc->psf = 1;
    nc->npsf = 0;
    nc->vsky_psf = 0;
    if (!t || !v || !o->noise_cal) {
        free(t);
        free(v);
        return;
    }
    memset(&im, 0, sizeof im);
    im.data = fit; /* NaN only on unusable pixels, which no aperture holds */
    im.dtype = SEP_TFLOAT;
    im.mask = mask;
    im.mdtype = SEP_TBYTE;
    im.noise = noise;
    im.ndtype = SEP_TFLOAT;
    im.noise_type = SEP_NOISE_STDDEV;
    im.w = in->nx;
    im.h = in->ny;
    for (a = 0; a < CAND_NAPER; a++) {
        n = 0;
        for (k = 0; k < NOISE_TARGET; k++) {
            double x, y, sum, sumerr, area;
            short f = 0;
            if (empty_spot(in, mask, src, diam[a] / 2, &st, &x, &y) != 0)
                continue;
            if (sep_sum_circle(&im, x, y, diam[a] / 2, 0, 0, 0, &sum, &sumerr, &area,
                               &f) == 0 && sumerr > 0 && isfinite(sum)) {
                v[n] = sumerr * sumerr;
                t[n++] = sum / sumerr;
            }
        }
        nc->naper[a] = n;
        if (n >= NOISE_MIN) {
            nc->aper[a] = noise_factor(t, n);
            qsort(v, (size_t)n, sizeof *v, cmp_double);
            nc->vsky[a] = v[n / 2];
        }
    }
    /* the PSF fit's flux at a fixed position: sum(P D / s^2) / sum(P^2 / s^2),
     * error sum(P^2 / s^2)^-1/2 */
    n = 0;
    for (k = 0; k < NOISE_TARGET; k++) {
        double x, y, num = 0, den = 0;
        int i, j, i0, j0;
        if (empty_spot(in, mask, src, h, &st, &x, &y) != 0)
            continue;
        i0 = (int)floor(x + 0.5);
        j0 = (int)floor(y + 0.5);
        for (j = j0 - h; j <= j0 + h; j++)
            for (i = i0 - h; i <= i0 + h; i++) {
                size_t q = (size_t)j * in->nx + i;
                double p = rapid_psfphot_psf_eval(in->psf, i - x, j - y, NULL, NULL);
                double w = 1.0 / ((double)noise[q] * noise[q]);
                num += p * fit[q] * w;
                den += p * p * w;
            }
        if (den > 0) {
            v[n] = 1 / den;
            t[n++] = num / sqrt(den);
        }
    }
    nc->npsf = n;
    if (n >= NOISE_MIN) {
        nc->psf = noise_factor(t, n);
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        nc->vsky_psf = v[n / 2];
    }
    free(t);
    free(v);
}

/* var + (k^2 - 1) vsky, between var and k^2 var. */
static double calibrated(double err, double k, double vsky)
{
    double var = err * err, nv = var + (k * k - 1) * vsky;
    double lo = fmin(1, k * k) * var, hi = fmax(1, k * k) * var;

    if (!isfinite(err))
        return err;
    return sqrt(fmin(fmax(nv, lo), hi));
}

void cand_noise_apply(const cand_noise *nc, const double *diam, double flux_floor,
                      cand_rows *rows, long first)
{
    /* the sky's variance per pixel, from the largest aperture's */
    double rl = diam[CAND_NAPER - 1] / 2;
    double vpix = nc->vsky[CAND_NAPER - 1] / (M_PI * rl * rl);
    long k;
    int a;

    for (k = first; k < rows->n; k++) {
        cand_row *r = &rows->r[k];
        double d = 2 * sqrt(r->area_auto / M_PI), c, ek;
        for (a = 0; a < CAND_NAPER; a++)
            r->fluxerr_aper[a] = (float)calibrated(r->fluxerr_aper[a], nc->aper[a],
                                                   nc->vsky[a]);
        /* the Kron aperture: the factor of its equivalent diameter,
         * interpolated between the apertures' */
        if (!(d > diam[0]))
            c = nc->aper[0];
        else if (d >= diam[CAND_NAPER - 1])
            c = nc->aper[CAND_NAPER - 1];
        else {
            for (a = 1; a < CAND_NAPER - 1 && diam[a] < d; a++)
                ;
            c = nc->aper[a - 1] + (nc->aper[a] - nc->aper[a - 1]) *
                                      (d - diam[a - 1]) / (diam[a] - diam[a - 1]);
        }
        r->fluxerr_auto = (float)calibrated(r->fluxerr_auto, c, vpix * r->area_auto);
        r->snr = r->fluxerr_auto > 0 ? r->flux_auto / r->fluxerr_auto : NAN;
        /* the positions' errors scale as the flux's */
        ek = calibrated(r->psf.fluxerr, nc->psf, nc->vsky_psf);
        if (r->psf.fluxerr > 0) {
            r->psf.xerr *= ek / r->psf.fluxerr;
            r->psf.yerr *= ek / r->psf.fluxerr;
        }
        r->psf.fluxerr = ek;
        if (flux_floor > 0 && isfinite(r->psf.flux))
            r->psf.fluxerr = hypot(r->psf.fluxerr, flux_floor * r->psf.flux);
    }
}
