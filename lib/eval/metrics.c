/* metrics.c - completeness, false positives, precision and the figure of
 * merit of injected-source recovery (rapid/eval.h). */
#include "rapid/eval.h"

#include <math.h>
#include <stdlib.h>

#include "core/stats.h"

#define MIN_PRECISION 5 /* recovered sources a bin needs for its precision */

static const double fom_w[5] = {1.0, 0.8, 0.6, 0.3, 0.2};

double rapid_eval_fom(double m_th, double m80, double m20, double m5sigma,
                      double m_ph10)
{
    const double m[5] = {m_th, m80, m20, m5sigma, m_ph10};
    double s = 0, w = 0;
    int k;

    for (k = 0; k < 5; k++) {
        if (!isfinite(m[k]))
            return NAN;
        s += fom_w[k] * m[k];
        w += fom_w[k];
    }
    return s / w;
}

double rapid_eval_m5sigma(double zp, double sigma_bkg, const float *psf,
                          long n)
{
    double s2 = 0;
    long k;

    for (k = 0; psf && k < n; k++)
        if (isfinite(psf[k]))
            s2 += (double)psf[k] * psf[k];
    if (!(sigma_bkg > 0) || !(s2 > 0) || !isfinite(zp))
        return NAN;
    return zp - 2.5 * log10(5.0 * sqrt(1.0 / s2) * sigma_bkg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Where y[] (at x[], bins with NaN skipped) first falls through level
 * going to larger x, linear between the two bins; NaN if y never reaches
 * the level, the last finite x if it never falls below.  rising: the
 * same for a curve that grows through the level. */
static double crossing(const double *x, const double *y, int n, double level,
                       int rising)
{
    double px = NAN, py = NAN, last = NAN;
    int k, reached = 0;

    for (k = 0; k < n; k++) {
        int beyond;
        if (!isfinite(y[k]))
            continue;
        beyond = rising ? y[k] >= level : y[k] < level;
        if (!reached) {
            if (beyond && !rising)
                return NAN; /* below the level from the start */
            reached = 1;
            if (beyond)     /* rising: at or above it already */
                return x[k];
        } else if (beyond) {
            return px + (x[k] - px) * (py - level) / (py - y[k]);
        }
        px = x[k];
        py = y[k];
        last = x[k];
    }
    return last;
}

int rapid_eval_metrics(const rapid_eval_inj *inj, long n, int group,
                       const double *fp_mag, long nfp, int nimages,
                       double m5sigma, const rapid_eval_bins *bins,
                       rapid_eval_result *res, rapid_err *err)
{
    double *fps = NULL;
    float *ratio = NULL, *pull = NULL;
    long k, nf = 0, i;
    int nb, b;

    if (!bins || !(bins->dmag > 0) || !(bins->mag_hi > bins->mag_lo) ||
        !isfinite(bins->mag_lo) || !isfinite(bins->mag_hi))
        return rapid_fail(err, RAPID_E_ARG, "evaluation: bad magnitude bins");
    nb = (int)ceil((bins->mag_hi - bins->mag_lo) / bins->dmag - 1e-9);
    if (nb < 1 || nb > RAPID_EVAL_MAXBINS || nimages < 1 || n < 0 || nfp < 0 ||
        (n > 0 && !inj) || (nfp > 0 && !fp_mag))
        return rapid_fail(err, RAPID_E_ARG, "evaluation: %d bins (1..%d), %d "
                          "images, %ld injections, %ld false positives", nb,
                          RAPID_EVAL_MAXBINS, nimages, n, nfp);
    *res = (rapid_eval_result){0};
    res->nbins = nb;
    res->n_images = nimages;
    res->m5sigma = m5sigma;
    ratio = malloc((size_t)(n > 0 ? n : 1) * sizeof *ratio);
    pull = malloc((size_t)(n > 0 ? n : 1) * sizeof *pull);
    fps = malloc((size_t)(nfp > 0 ? nfp : 1) * sizeof *fps);
    if (!ratio || !pull || !fps) {
        free(ratio);
        free(pull);
        free(fps);
        return rapid_fail(err, RAPID_E_NOMEM, "evaluation: no memory for %ld "
                          "injections", n);
    }

    /* the curves: each bin's injections, found, precision and pulls */
    for (b = 0; b < nb; b++) {
        double lo = bins->mag_lo + b * bins->dmag, hi = lo + bins->dmag;
        long m = 0, nfound = 0, ndet = 0;
        res->mag[b] = lo + 0.5 * bins->dmag;
        for (k = 0; k < n; k++) {
            const rapid_eval_inj *e = &inj[k];
            if ((group != RAPID_EVAL_ALL && e->group != group) ||
                !(e->mag >= lo && e->mag < hi))
                continue;
            res->ninj[b]++;
            ndet += e->detected != 0;
            if (!e->found)
                continue;
            nfound++;
            if (e->flux_true > 0 && isfinite(e->flux_psf)) {
                ratio[m] = (float)((e->flux_psf - e->flux_true) / e->flux_true);
                pull[m] = e->fluxerr_psf > 0
                              ? (float)((e->flux_psf - e->flux_true) / e->fluxerr_psf)
                              : NAN;
                m++;
            }
        }
        res->nfound[b] = nfound;
        res->ndet[b] = ndet;
        res->n_detected += ndet;
        res->detected[b] = res->ninj[b] ? (double)ndet / res->ninj[b] : NAN;
        res->n_injected += res->ninj[b];
        res->n_recovered += nfound;
        res->completeness[b] = res->ninj[b] ? (double)nfound / res->ninj[b] : NAN;
        res->precision[b] = res->pull_median[b] = res->pull_sigma[b] = NAN;
        if (m >= MIN_PRECISION) {
            rapid_robust_sigma_sample(ratio, (size_t)m, 0, MIN_PRECISION,
                                      &res->precision[b]);
            rapid_median_sample(pull, (size_t)m, 0, &res->pull_median[b], NULL);
            rapid_robust_sigma_sample(pull, (size_t)m, 0, MIN_PRECISION,
                                      &res->pull_sigma[b]);
        }
    }
    /* injections outside the bins still count */
    for (k = 0; k < n; k++)
        if ((group == RAPID_EVAL_ALL || inj[k].group == group) &&
            !(inj[k].mag >= bins->mag_lo &&
              inj[k].mag < bins->mag_lo + nb * bins->dmag)) {
            res->n_injected++;
            res->n_recovered += inj[k].found != 0;
            res->n_detected += inj[k].detected != 0;
        }
    /* the ones the cuts removed, per cut */
    for (k = 0; k < n; k++) {
        int bit;
        if ((group != RAPID_EVAL_ALL && inj[k].group != group) || inj[k].found ||
            !inj[k].detected)
            continue;
        res->n_cut++;
        for (bit = 0; bit < RAPID_EVAL_NCUTBITS; bit++)
            res->lost_cut[bit] += (inj[k].fail_bits >> bit) & 1u;
    }
    res->m80 = crossing(res->mag, res->completeness, nb, 0.8, 0);
    res->m80_detected = crossing(res->mag, res->detected, nb, 0.8, 0);
    res->m20 = crossing(res->mag, res->completeness, nb, 0.2, 0);
    res->m_ph10 = crossing(res->mag, res->precision, nb, 0.1, 1);

    /* false positives: the cumulative count per image, and where it
     * reaches the tolerance */
    for (k = 0; k < nfp; k++)
        fps[nf++] = isnan(fp_mag[k]) ? INFINITY : fp_mag[k];
    qsort(fps, (size_t)nf, sizeof *fps, cmp_double);
    res->fp_per_image = (double)nf / nimages;
    for (b = 0, i = 0; b < nb; b++) {
        double edge = bins->mag_lo + (b + 1) * bins->dmag;
        while (i < nf && fps[i] < edge)
            i++;
        res->fp_cum[b] = (double)i / nimages;
    }
    {
        long need = (long)ceil(RAPID_EVAL_TOLERANCE * nimages - 1e-9);
        double faint = bins->mag_lo + nb * bins->dmag;
        res->m_th = need >= 1 && need <= nf && fps[need - 1] < faint
                        ? fps[need - 1] : faint;
    }
    res->fom = rapid_eval_fom(res->m_th, res->m80, res->m20, res->m5sigma,
                              res->m_ph10);
    free(ratio);
    free(pull);
    free(fps);
    return 0;
}
