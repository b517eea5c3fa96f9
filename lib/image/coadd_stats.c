/* coadd_stats.c - the refimmeta statistics of a reference image's maps:
 * extremes, clipped mean and deviation, medians and the robust scale, each
 * from an even sample of the pixels where a sample is all it needs.
 */
#include <math.h>
#include <stdlib.h>

#include "core/stats.h"
#include "coadd_internal.h"

/* Median of the finite values (a sample of at most a million). */
static int sample_median(const float *v, size_t n, double *med)
{
    return rapid_median_sample(v, n, 1000000, med, NULL);
}

/* 3-sigma clipped mean and deviation of an even sample of at most 2
 * million of v's finite values.  The sample is gathered once: strided
 * reads of the whole image in each of up to 10 iterations cost more than
 * the arithmetic. */
static int clipped_stats(const float *v, size_t n, double *mean, double *sd)
{
    size_t step = rapid_sample_step(n, 2000000), i, m = 0;
    float *x = malloc((n / step + 1) * sizeof *x);
    double mu = 0, s = 1e30;
    int it;

    *mean = *sd = NAN;
    if (!x)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step)
        if (isfinite(v[i]))
            x[m++] = v[i];
    for (it = 0; it < 10; it++) { /* to convergence */
        double sum = 0, sum2 = 0, nm, ns;
        long k = 0;
        for (i = 0; i < m; i++) {
            double y = x[i];
            if (it > 0 && fabs(y - mu) > 3 * s)
                continue;
            sum += y, sum2 += y * y, k++;
        }
        if (k < 2) {
            free(x);
            return 0;
        }
        nm = sum / k;
        ns = sqrt(fmax(sum2 / k - nm * nm, 0));
        if (it > 0 && fabs(ns - s) < 1e-6 * s)
            break;
        mu = nm, s = ns;
    }
    free(x);
    *mean = mu;
    *sd = s;
    return 0;
}

/* *med: the median over the same sample of indices as sample_median of
 * |v[i] - ref| where v[i] is finite (absdev), or of v[i] where it is
 * positive; NaN if there are none.  The sample is all a median needs: no
 * full-size copy.  0 or RAPID_E_NOMEM. */
static int sample_median_of(const float *v, size_t n, float ref, int absdev,
                            double *med)
{
    size_t step = rapid_sample_step(n, 1000000), i, m = 0;
    float *x = malloc((n / step + 1) * sizeof *x);

    *med = NAN;
    if (!x)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step) {
        if (absdev && isfinite(v[i]))
            x[m++] = fabsf(v[i] - ref);
        else if (!absdev && v[i] > 0)
            x[m++] = v[i];
    }
    if (m)
        *med = rapid_select_f(x, m, m / 2);
    free(x);
    return 0;
}

/* ------------------------------------------------------------ the maps */

int coadd_image_stats(rapid_coadd *c)
{
    size_t n = (size_t)c->image.nx * c->image.ny, i, ncov = 0, n5 = 0;
    float lo = INFINITY, hi = -INFINITY;
    double mad;
    int rc;

    c->meta.npixnan = 0;
    for (i = 0; i < n; i++) {
        float v = c->image.data[i];
        if (!isfinite(v)) {
            c->meta.npixnan++;
            continue;
        }
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        ncov++;
        n5 += c->coverage.data[i] >= 5;
    }
    c->meta.gmin = lo, c->meta.gmax = hi;
    c->meta.cov5percent = n ? 100.0 * n5 / n : 0;
    if (!ncov)
        c->meta.gmin = c->meta.gmax = NAN;
    /* datascale: robust sigma, 1.4826 x median absolute deviation */
    if ((rc = clipped_stats(c->image.data, n, &c->meta.clmean, &c->meta.clstddev)) != 0 ||
        (rc = sample_median(c->image.data, n, &c->meta.gmedian)) != 0 ||
        (rc = sample_median_of(c->image.data, n, (float)c->meta.gmedian, 1, &mad)) != 0 ||
        (rc = sample_median_of(c->coverage.data, n, 0, 0, &c->meta.medncov)) != 0 ||
        (rc = sample_median(c->uncertainty.data, n, &c->meta.medpixunc)) != 0)
        return rc;
    c->meta.datascale = 1.4826 * mad;
    return 0;
}
