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

/* "covered by at least two inputs": with two, the larger value is
 * tested against the other (the smaller, or the one consistent with it,
 * is kept); below, there is nothing to test against */
#define MIN_COVER 1.5f

/* Below this coverage the others' mean is one input's value, sampled at
 * one sub-pixel phase: the core of a sharp star differs between two
 * inputs by more than the gradient of one of them allows, so the gradient
 * counts this many times over there. */
#define FEW_COVER 2.5f
#define FEW_GRAD 3.0

/* Each input's weight, vc1 and vc0 via, by its number: what the weight
 * and the variance of a largest value are rebuilt from. */
typedef struct inputs_by_number {
    double wt[256], c1[256], c0[256];
} inputs_by_number;

/* The rejection's rings of rows (see coadd_reject_outliers). */
typedef struct rows {
    float *mu[4];            /* the means of the others, row r in r & 3 */
    unsigned char *rej[4];   /* decisions: 0 kept, 1 rejected, 2 grown */
    unsigned char *nb;       /* a neighbour rejected first hand */
} rows;

/* ----------------------------------------------------------- one pixel */

/* The weight w a and the variance w^2 av of the largest value M, packed as
 * mx (no value yet, mx 0: both 0). */
RAPID_INLINE void largest(const inputs_by_number *t, uint32_t mx, float M,
                          double *wM, double *vM)
{
    int in = MX_INPUT(mx);
    double a = MX_A(mx), g = MX_G(mx), wk = t->wt[in];
    double w = wk * a, v = wk * wk * g * a * (fabs(M) * t->c1[in] + t->c0[in]);

    *wM = mx ? w : 0;
    *vM = mx ? v : 0;
}

/* How far the largest value at pixel i lies above mu, the mean of the
 * others (*dev), and the variance of that difference (*var, >= 0).  0
 * where there is nothing to test: covered by fewer than two inputs, or
 * no largest value or no other.  In selects, without branches: the
 * pre-filter runs it on every pixel. */
RAPID_INLINE int excess(const coadd_sums *s, const inputs_by_number *t,
                        size_t i, float mu, double *dev, double *var)
{
    double wM, vM, w, wd, wMd, v;

    largest(t, s->mx[i], s->M[i], &wM, &vM);
    w = s->W[i] - wM;
    wd = w > 0 ? w : 1, wMd = wM > 0 ? wM : 1;
    v = vM / (wMd * wMd) + (s->V[i] - vM) / (wd * wd);
    *dev = s->M[i] - mu;
    *var = v > 0 ? v : 0;
    return (s->C[i] >= MIN_COVER) & (w > 0) & (wM > 0);
}

/* Above by more than k sigma? */
RAPID_INLINE int beyond(double dev, double var, double k)
{
    return (dev > 0) & (dev * dev > k * k * var);
}

/* Mean of the others (all but the largest value) along row y. */
static void others_mean(const coadd_sums *s, const inputs_by_number *t, int y,
                        float *mu)
{
    size_t i0 = (size_t)y * s->size;
    int x;

    for (x = 0; x < s->size; x++) {
        size_t i = i0 + x;
        double wM, vM, w;
        largest(t, s->mx[i], s->M[i], &wM, &vM);
        w = s->W[i] - wM;
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
static int stands_out(const coadd_sums *s, const inputs_by_number *t,
                      float *const *mu, int x, int y, double k)
{
    int n = s->size, d;
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    double grad = 0, var, dev;
    float m = mu[y & 3][x];

    if (!excess(s, t, (size_t)y * n + x, m, &dev, &var) || !isfinite(m))
        return 0;
    if (s->o->reject_grad >= 0 && /* then the gradient only adds */
        !beyond(dev, var, k))
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
    if (s->C[(size_t)y * n + x] < FEW_COVER)
        grad *= FEW_GRAD;
    return dev > k * sqrt(var) + s->o->reject_grad * grad;
}

/* Which pixels of row y might stand out by k sigma: the test of stands_out
 * before the gradient (which can only raise the bar when reject_grad >= 0),
 * the same helpers on the same values, so the same answer, in a loop
 * without branches; stands_out decides for these few. */
RAPID_CLONES
static void might_stand_out(const coadd_sums *s, const inputs_by_number *t,
                            const float *mu, int y, double k,
                            unsigned char *restrict cand)
{
    size_t i0 = (size_t)y * s->size;
    int x, n = s->size;

    for (x = 0; x < n; x++) {
        double dev, var;
        int ok = excess(s, t, i0 + x, mu[x], &dev, &var);
        cand[x] = (unsigned char)(ok & beyond(dev, var, k));
    }
}

static void drop_largest(coadd_sums *s, const inputs_by_number *t, size_t i)
{
    double wM, vM;

    largest(t, s->mx[i], s->M[i], &wM, &vM);
    s->S[i] -= (float)(wM * s->M[i]);
    s->V[i] -= (float)vM;
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

/* ------------------------------------------------------------ one row */

int coadd_reject_prefilter = 1;

/* The first test of row y: which values stand out by reject_sigma. */
static void test_row(const coadd_sums *s, const inputs_by_number *t, rows *b,
                     int y)
{
    unsigned char *rj = b->rej[y & 3];
    double k = s->o->reject_sigma;
    int x, n = s->size;

    if (s->o->reject_grad >= 0 && coadd_reject_prefilter)
        might_stand_out(s, t, b->mu[y & 3], y, k, rj); /* the few that might */
    else
        memset(rj, 1, (size_t)n);
    for (x = 0; x < n; x++)
        if (rj[x])
            rj[x] = (unsigned char)stands_out(s, t, b->mu, x, y, k);
}

/* The edges of a cosmic ray are fainter than its core: a neighbour of a
 * value rejected first hand that came from the same input needs only
 * grow_sigma.  Which pixels of row y have such a neighbour at all, first,
 * in a loop that vectorises (most have none). */
static void grow_row(const coadd_sums *s, const inputs_by_number *t, rows *b,
                     int y)
{
    static const int dx[8] = {1, -1, 0, 0, 1, 1, -1, -1};
    static const int dy[8] = {0, 0, 1, -1, 1, -1, 1, -1};
    unsigned char *const *rej = b->rej;
    int x, d, n = s->size;

    near_any(y > 0 ? rej[(y - 1) & 3] : NULL, rej[y & 3],
             y + 1 < n ? rej[(y + 1) & 3] : NULL, n, b->nb);
    for (x = 0; x < n; x++) {
        size_t j = (size_t)y * n + x;
        int near = 0;
        if (!b->nb[x] || rej[y & 3][x] || !s->mx[j])
            continue;
        for (d = 0; d < 8 && !near; d++) {
            int xx = x + dx[d], yy = y + dy[d];
            size_t i = (size_t)yy * n + xx;
            near = xx >= 0 && yy >= 0 && xx < n && yy < n && rej[yy & 3][xx] == 1 &&
                   s->mx[i] && MX_INPUT(s->mx[i]) == MX_INPUT(s->mx[j]);
        }
        if (near && stands_out(s, t, b->mu, x, y, s->o->grow_sigma))
            rej[y & 3][x] = 2;
    }
}

/* ------------------------------------------------------------ all rows */

/* The rows flow through four-row rings: the means two rows ahead of row
 * y, the first test one row ahead, and row y is decided (and its values
 * dropped) once its neighbours on both sides have been tested. */
int coadd_reject_outliers(coadd_sums *s, long *nrej)
{
    int n = s->size, x, y, r, rc = 0;
    inputs_by_number *t = calloc(1, sizeof *t);
    rows b;

    memset(&b, 0, sizeof b);
    *nrej = 0;
    if (!t || !(b.nb = malloc((size_t)n))) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    for (r = 0; r < 4; r++)
        if (!(b.mu[r] = malloc((size_t)n * sizeof *b.mu[r])) ||
            !(b.rej[r] = malloc((size_t)n))) {
            rc = RAPID_E_NOMEM;
            goto cleanup;
        }
    for (r = 0; r < s->nin && r < 256; r++) {
        t->wt[r] = s->in[r].weight;
        t->c1[r] = s->in[r].vc1;
        t->c0[r] = s->in[r].vc0 * s->in[r].via;
    }
    for (y = -2; y < n; y++) {
        if (y + 2 < n)
            others_mean(s, t, y + 2, b.mu[(y + 2) & 3]);
        if (y + 1 >= 0 && y + 1 < n)
            test_row(s, t, &b, y + 1);
        if (y < 0)
            continue;
        grow_row(s, t, &b, y);
        for (x = 0; x < n; x++)
            if (b.rej[y & 3][x]) {
                drop_largest(s, t, (size_t)y * n + x);
                (*nrej)++;
            }
    }
cleanup:
    for (r = 0; r < 4; r++)
        free(b.mu[r]), free(b.rej[r]);
    free(b.nb);
    free(t);
    return rc;
}
