/* coadd_reject.c - outliers taken out of the running sums of a reference
 * image.  At each pixel only the largest value can be rejected: cosmic
 * rays, transients, satellite trails and hot pixels are positive and, with
 * inputs from different epochs and detectors, rarely hit one output pixel
 * twice.  It is rejected when it stands out from the mean of the others by
 * more than the noise and the local gradient allow, and the rejection grows
 * to neighbours whose largest value came from the same input.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clones.h"
#include "coadd_internal.h"

/* "covered by at least three inputs" */
#define MIN_COVER 2.5f

/* ----------------------------------------------------------- one pixel */

/* The weight w a and the variance w^2 av of the largest value at i. */
static double pix_wM(const coadd_sums *s, size_t i)
{
    uint32_t mx = s->mx[i];

    return mx ? s->in[MX_INPUT(mx)].weight * MX_A(mx) : 0;
}

static double pix_vM(const coadd_sums *s, size_t i)
{
    uint32_t mx = s->mx[i];
    const coadd_input *in = &s->in[MX_INPUT(mx)];
    double w = in->weight;

    if (!mx)
        return 0;
    return w * w * MX_G(mx) * MX_A(mx) *
           (fabs(s->M[i]) * in->vc1 + in->vc0 * in->via);
}

/* Mean of the others (all but the largest value) along row y. */
static void others_mean(const coadd_sums *s, int y, float *mu)
{
    size_t i0 = (size_t)y * s->size;
    int x;

    for (x = 0; x < s->size; x++) {
        size_t i = i0 + x;
        double wM = pix_wM(s, i), w = s->W[i] - wM;
        if (s->C[i] >= MIN_COVER && w > 0)
            mu[x] = (float)((s->S[i] - wM * s->M[i]) / w);
        else
            mu[x] = s->W[i] > 0 ? s->S[i] / s->W[i] : NAN;
    }
}

/* Does the largest value at (x, y) stand out by more than k sigma plus the
 * local gradient (sub-pixel shifts between inputs of a sharp, undersampled
 * star change its peak a lot; a cosmic ray on flat sky does not have that
 * excuse)?  mu[r & 3]: the means of row r, for the rows y - 1 .. y + 1. */
static int stands_out(const coadd_sums *s, float *const *mu, int x, int y, double k)
{
    int n = s->size, d;
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    size_t i = (size_t)y * n + x;
    double wM = pix_wM(s, i), w = s->W[i] - wM, vM, grad = 0, var, dev;
    float m = mu[y & 3][x];

    if (s->C[i] < MIN_COVER || !(w > 0) || !(wM > 0) || !isfinite(m))
        return 0;
    vM = pix_vM(s, i);
    var = vM / (wM * wM) + (s->V[i] - vM) / (w * w);
    dev = s->M[i] - m;
    if (s->o->reject_grad >= 0 && /* then the gradient only adds */
        (!(dev > 0) || dev * dev <= k * k * fmax(var, 0)))
        return 0;
    for (d = 0; d < 4; d++) {
        int xx = x + dx[d], yy = y + dy[d];
        float mj;
        if (xx < 0 || yy < 0 || xx >= n || yy >= n)
            continue;
        mj = mu[yy & 3][xx];
        if (isfinite(mj))
            grad = fmax(grad, fabs(mj - m));
    }
    return dev > k * sqrt(fmax(var, 0)) + s->o->reject_grad * grad;
}

/* Which pixels of row y might stand out by k sigma: the test of
 * stands_out before the gradient (which can only raise the bar when
 * reject_grad >= 0), with a little to spare for rounding, in a loop that
 * vectorises; stands_out decides for these few.  wt, c1, c0: each input's
 * weight, vc1 and vc0 via, by its number. */
RAPID_CLONES
static void might_stand_out(const coadd_sums *s, const float *mu, int y, double k,
                            const double *wt, const double *c1,
                            const double *c0, unsigned char *restrict cand)
{
    size_t i0 = (size_t)y * s->size;
    const float *restrict W = s->W + i0, *restrict V = s->V + i0;
    const float *restrict C = s->C + i0, *restrict M = s->M + i0;
    const uint32_t *restrict mx = s->mx + i0;
    int x, n = s->size;

    for (x = 0; x < n; x++) {
        /* no value yet (mx 0): a and g are 0, so are wM and vM */
        int in = MX_INPUT(mx[x]);
        double a = MX_A(mx[x]), g = MX_G(mx[x]), wk = wt[in];
        double wM = wk * a, w = W[x] - wM;
        double vM = wk * wk * g * a * (fabs(M[x]) * c1[in] + c0[in]);
        double wd = w > 0 ? w : 1, wMd = wM > 0 ? wM : 1;
        double var = vM / (wMd * wMd) + (V[x] - vM) / (wd * wd), dev = M[x] - mu[x];
        var = var > 0 ? var : 0;
        cand[x] = (unsigned char)((C[x] >= MIN_COVER) & (w > 0) & (wM > 0) &
                                  (dev > 0) & (dev * dev > 0.99 * k * k * var));
    }
}

static void drop_largest(coadd_sums *s, size_t i)
{
    double wM = pix_wM(s, i);

    s->S[i] -= (float)(wM * s->M[i]);
    s->V[i] -= (float)pix_vM(s, i);
    if (s->V[i] < 0)
        s->V[i] = 0;
    s->C[i] -= (float)MX_A(s->mx[i]);
    s->W[i] -= (float)wM;
    if (s->W[i] < 0)
        s->W[i] = 0;
    if (s->C[i] < 0)
        s->C[i] = 0;
}

/* nb[x]: whether any of the eight neighbours of pixel x of a row was
 * rejected first hand (1), from the decisions of the rows below, of the
 * row, and above (NULL: no such row). */
static void near_any(const unsigned char *below, const unsigned char *row,
                     const unsigned char *above, int n, unsigned char *nb)
{
    int x;

    for (x = 0; x < n; x++) {
        int l = x > 0 ? x - 1 : x, r = x < n - 1 ? x + 1 : x;
        unsigned char v = (unsigned char)((row[l] == 1) & (l != x)) |
                          (unsigned char)((row[r] == 1) & (r != x));
        if (below)
            v |= (below[l] == 1) | (below[x] == 1) | (below[r] == 1);
        if (above)
            v |= (above[l] == 1) | (above[x] == 1) | (above[r] == 1);
        nb[x] = v;
    }
}

/* ------------------------------------------------------------ all rows */

/* Returns the number of values rejected, or -1 when out of memory.  The
 * rows flow through four-row rings: the means two rows ahead of row y,
 * the first test one row ahead, and row y is decided (and its values
 * dropped) once its neighbours on both sides have been tested. */
long coadd_reject_outliers(coadd_sums *s)
{
    static const int dx[8] = {1, -1, 0, 0, 1, 1, -1, -1};
    static const int dy[8] = {0, 0, 1, -1, 1, -1, 1, -1};
    int n = s->size, x, y, d, r;
    float *mu[4] = {NULL};
    unsigned char *rej[4] = {NULL}, *nb = malloc((size_t)n);
    double wt[256] = {0}, c1[256] = {0}, c0[256] = {0};
    long nrej = 0;

    for (r = 0; r < 4; r++)
        if (!nb || !(mu[r] = malloc((size_t)n * sizeof **mu)) ||
            !(rej[r] = malloc((size_t)n))) {
            nrej = -1;
            goto cleanup;
        }
    for (r = 0; r < s->nin && r < 256; r++) {
        wt[r] = s->in[r].weight;
        c1[r] = s->in[r].vc1;
        c0[r] = s->in[r].vc0 * s->in[r].via;
    }
    for (y = -2; y < n; y++) {
        if (y + 2 < n)
            others_mean(s, y + 2, mu[(y + 2) & 3]);
        if (y + 1 >= 0 && y + 1 < n) {
            unsigned char *rj = rej[(y + 1) & 3];
            if (s->o->reject_grad >= 0) /* the few that might, first */
                might_stand_out(s, mu[(y + 1) & 3], y + 1, s->o->reject_sigma,
                                wt, c1, c0, rj);
            else
                memset(rj, 1, (size_t)n);
            for (x = 0; x < n; x++)
                if (rj[x])
                    rj[x] = (unsigned char)stands_out(s, mu, x, y + 1, s->o->reject_sigma);
        }
        if (y < 0)
            continue;
        /* The edges of a cosmic ray are fainter than its core: a neighbour
         * of a rejected value that came from the same input needs less.
         * Which pixels have one at all, first, in a loop that vectorises
         * (most have none). */
        near_any(y > 0 ? rej[(y - 1) & 3] : NULL, rej[y & 3],
                 y + 1 < n ? rej[(y + 1) & 3] : NULL, n, nb);
        for (x = 0; x < n; x++) {
            size_t j = (size_t)y * n + x;
            int near = 0;
            if (!nb[x] || rej[y & 3][x] || !s->mx[j])
                continue;
            for (d = 0; d < 8 && !near; d++) {
                int xx = x + dx[d], yy = y + dy[d];
                size_t i = (size_t)yy * n + xx;
                near = xx >= 0 && yy >= 0 && xx < n && yy < n && rej[yy & 3][xx] == 1 &&
                       s->mx[i] && MX_INPUT(s->mx[i]) == MX_INPUT(s->mx[j]);
            }
            if (near && stands_out(s, mu, x, y, s->o->grow_sigma))
                rej[y & 3][x] = 2;
        }
        for (x = 0; x < n; x++)
            if (rej[y & 3][x]) {
                drop_largest(s, (size_t)y * n + x);
                nrej++;
            }
    }
cleanup:
    for (r = 0; r < 4; r++)
        free(mu[r]), free(rej[r]);
    free(nb);
    return nrej;
}
