/* background.c - sigma-clipped window means, interpolated bilinearly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "rapid/background.h"

void rapid_background_opts_init(rapid_background_opts *o)
{
    o->box = 500;
    o->clip_sigma = 3.0;
    o->max_iter = 10;
    o->min_usable = 0.5;
}

void rapid_background_release(rapid_background *b)
{
    if (!b)
        return;
    free(b->mean);
    free(b->rms);
    memset(b, 0, sizeof *b);
}

int rapid_background_copy(rapid_background *dst, const rapid_background *src,
                          rapid_err *err)
{
    size_t m = (size_t)src->gx * src->gy;
    rapid_background c = *src;

    c.mean = malloc(m * sizeof *c.mean);
    c.rms = malloc(m * sizeof *c.rms);
    if (!c.mean || !c.rms) {
        free(c.mean);
        free(c.rms);
        return rapid_fail(err, RAPID_E_NOMEM, "background: no memory for a copy");
    }
    memcpy(c.mean, src->mean, m * sizeof *c.mean);
    memcpy(c.rms, src->rms, m * sizeof *c.rms);
    rapid_background_release(dst);
    *dst = c;
    return 0;
}

/* First pixel of window i of g along a side of n pixels. */
static int edge(int i, int g, int n)
{
    return (int)((long)i * n / g);
}

/* Centre of window i, in pixels. */
static double centre(int i, int g, int n)
{
    return 0.5 * (edge(i, g, n) + edge(i + 1, g, n) - 1);
}

/* The standard deviation of a Gaussian cut at +-k sigma, in sigma:
 * sqrt(1 - 2 k phi(k) / erf(k / sqrt 2)) (0.9866 at 3 sigma). */
static double truncated_sd(double k)
{
    return sqrt(1 - 2 * k * exp(-0.5 * k * k) / sqrt(2 * M_PI) /
                        erf(k / M_SQRT2));
}

/* Clipped mean and standard deviation of v[0..n) (reordered, shrunk).  The
 * standard deviation of the pixels kept is that of noise cut at the clip:
 * it is divided by truncated_sd() to give the noise's own, once a clip has
 * been made. */
static void clipped_stats(float *v, size_t n, const rapid_background_opts *o,
                          double *mean, double *sd)
{
    double s, s2, med, lim;
    size_t i, m;
    int it;

    for (it = 0;; it++) {
        for (s = 0, i = 0; i < n; i++)
            s += v[i];
        *mean = s / (double)n;
        for (s2 = 0, i = 0; i < n; i++)
            s2 += (v[i] - *mean) * (v[i] - *mean);
        *sd = n > 1 ? sqrt(s2 / (double)(n - 1)) : 0;
        if (it > 0)
            *sd /= truncated_sd(o->clip_sigma);
        if (it == o->max_iter || n < 3)
            return;
        med = rapid_select_f(v, n, n / 2);
        lim = o->clip_sigma * *sd;
        for (m = i = 0; i < n; i++)
            if (fabs(v[i] - med) <= lim)
                v[m++] = v[i];
        if (m == n || m < 3)
            return;
        n = m;
    }
}

int rapid_clipped_mean(float *v, size_t n, double clip_sigma, int max_iter,
                       double *mean, double *sd)
{
    rapid_background_opts o;

    *mean = *sd = NAN;
    if (!v || n < 3 || !(clip_sigma > 0) || max_iter < 0)
        return RAPID_E_ARG;
    rapid_background_opts_init(&o);
    o.clip_sigma = clip_sigma;
    o.max_iter = max_iter;
    clipped_stats(v, n, &o, mean, sd);
    return 0;
}

/* Windows without enough data take the mean of their usable neighbours,
 * ring by ring.  0, or RAPID_E_RANGE when no window is usable. */
static int fill_gaps(rapid_background *b, unsigned char *ok)
{
    int gx = b->gx, gy = b->gy, i, j, di, dj, left = 0, any = 0;
    unsigned char *next = malloc((size_t)gx * gy);

    if (!next)
        return RAPID_E_NOMEM;
    for (i = 0; i < gx * gy; i++)
        left += !ok[i], any |= ok[i];
    if (!any) {
        free(next);
        return RAPID_E_RANGE;
    }
    while (left > 0) {
        memcpy(next, ok, (size_t)gx * gy);
        for (j = 0; j < gy; j++)
            for (i = 0; i < gx; i++) {
                double sm = 0, sr = 0;
                int n = 0, k = j * gx + i;
                if (ok[k])
                    continue;
                for (dj = -1; dj <= 1; dj++)
                    for (di = -1; di <= 1; di++) {
                        int x = i + di, y = j + dj;
                        if (x < 0 || y < 0 || x >= gx || y >= gy ||
                            !ok[y * gx + x])
                            continue;
                        sm += b->mean[y * gx + x];
                        sr += b->rms[y * gx + x];
                        n++;
                    }
                if (n) {
                    b->mean[k] = (float)(sm / n);
                    b->rms[k] = (float)(sr / n);
                    next[k] = 1;
                    left--;
                    b->nfilled++;
                }
            }
        memcpy(ok, next, (size_t)gx * gy);
    }
    free(next);
    return 0;
}

int rapid_background_make(const float *img, int nx, int ny,
                          const rapid_background_opts *o,
                          rapid_background *b, rapid_err *err)
{
    unsigned char *ok = NULL;
    float *buf = NULL;
    size_t maxw;
    int i, j, x, y, rc = 0;

    memset(b, 0, sizeof *b);
    if (!img || nx < 1 || ny < 1 || !o || o->box < 4 ||
        !(o->clip_sigma > 0) || o->max_iter < 0 ||
        !(o->min_usable > 0 && o->min_usable <= 1))
        return rapid_fail(err, RAPID_E_ARG,
                          "background: bad image (%d x %d) or options (box "
                          "%d, clip %g sigma, %d iterations, usable share %g)",
                          nx, ny, o ? o->box : 0, o ? o->clip_sigma : 0,
                          o ? o->max_iter : 0, o ? o->min_usable : 0);
    b->nx = nx;
    b->ny = ny;
    b->gx = (int)lround((double)nx / o->box);
    b->gy = (int)lround((double)ny / o->box);
    b->gx = b->gx < 1 ? 1 : b->gx;
    b->gy = b->gy < 1 ? 1 : b->gy;
    maxw = (size_t)(nx / b->gx + 1) * (size_t)(ny / b->gy + 1);
    b->mean = malloc((size_t)b->gx * b->gy * sizeof *b->mean);
    b->rms = malloc((size_t)b->gx * b->gy * sizeof *b->rms);
    ok = calloc((size_t)b->gx * b->gy, 1);
    buf = malloc(maxw * sizeof *buf);
    if (!b->mean || !b->rms || !ok || !buf) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "background: out of memory for "
                        "%d x %d windows", b->gx, b->gy);
        goto cleanup;
    }
    for (j = 0; j < b->gy; j++)
        for (i = 0; i < b->gx; i++) {
            int x0 = edge(i, b->gx, nx), x1 = edge(i + 1, b->gx, nx);
            int y0 = edge(j, b->gy, ny), y1 = edge(j + 1, b->gy, ny);
            size_t n = 0, area = (size_t)(x1 - x0) * (size_t)(y1 - y0);
            double mean = NAN, sd = NAN;
            for (y = y0; y < y1; y++)
                for (x = x0; x < x1; x++) {
                    float v = img[(size_t)y * nx + x];
                    if (isfinite(v))
                        buf[n++] = v;
                }
            if (n >= 3 && (double)n >= o->min_usable * (double)area) {
                clipped_stats(buf, n, o, &mean, &sd);
                ok[j * b->gx + i] = 1;
            }
            b->mean[j * b->gx + i] = (float)mean;
            b->rms[j * b->gx + i] = (float)sd;
        }
    if ((rc = fill_gaps(b, ok)) != 0) {
        rc = rapid_fail(err, rc, rc == RAPID_E_NOMEM
                                     ? "background: out of memory"
                                     : "background: no window of %d x %d "
                                       "pixels has %.0f%% of its pixels "
                                       "usable", nx / b->gx, ny / b->gy,
                        100 * o->min_usable);
        goto cleanup;
    }
    memcpy(buf, b->rms, (size_t)b->gx * b->gy * sizeof *buf);
    b->median_rms = rapid_select_f(buf, (size_t)b->gx * b->gy,
                                   (size_t)b->gx * b->gy / 2);
cleanup:
    free(ok);
    free(buf);
    if (rc)
        rapid_background_release(b);
    return rc;
}

/* The windows i, i + 1 around coordinate u along a side, and the weight
 * of i + 1 (held at the edges). */
static void bracket(double u, int g, int n, int *i, double *t)
{
    int k = 0;

    if (g == 1 || u <= centre(0, g, n)) {
        *i = 0, *t = 0;
        return;
    }
    if (u >= centre(g - 1, g, n)) {
        *i = g - 2, *t = 1;
        return;
    }
    k = (int)(u * g / n); /* close to the right window; then exact */
    if (k > g - 2)
        k = g - 2;
    while (k > 0 && centre(k, g, n) > u)
        k--;
    while (k < g - 2 && centre(k + 1, g, n) <= u)
        k++;
    *i = k;
    *t = (u - centre(k, g, n)) / (centre(k + 1, g, n) - centre(k, g, n));
}

static double interp(const rapid_background *b, const float *grid, double x,
                     double y)
{
    int i, j, i1, j1;
    double tx, ty;

    bracket(x, b->gx, b->nx, &i, &tx);
    bracket(y, b->gy, b->ny, &j, &ty);
    i1 = b->gx > 1 ? i + 1 : i;
    j1 = b->gy > 1 ? j + 1 : j;
    return (1 - ty) * ((1 - tx) * grid[j * b->gx + i] +
                       tx * grid[j * b->gx + i1]) +
           ty * ((1 - tx) * grid[j1 * b->gx + i] + tx * grid[j1 * b->gx + i1]);
}

double rapid_background_at(const rapid_background *b, double x, double y)
{
    return interp(b, b->mean, x, y);
}

double rapid_background_rms_at(const rapid_background *b, double x, double y)
{
    return interp(b, b->rms, x, y);
}

/* The map row by row, with the weights along x worked out once: out is
 * set (sign 0) or has the map subtracted (sign -1). */
static void apply(const rapid_background *b, float *out, int subtract)
{
    int *ix = malloc((size_t)b->nx * sizeof *ix), x, y, j, j1;
    double *tx = malloc((size_t)b->nx * sizeof *tx), ty;

    if (!ix || !tx) { /* no room for the tables: pixel by pixel */
        for (y = 0; y < b->ny; y++)
            for (x = 0; x < b->nx; x++) {
                float v = (float)interp(b, b->mean, x, y);
                float *p = out + (size_t)y * b->nx + x;
                *p = subtract ? *p - v : v;
            }
        free(ix);
        free(tx);
        return;
    }
    for (x = 0; x < b->nx; x++)
        bracket(x, b->gx, b->nx, &ix[x], &tx[x]);
    for (y = 0; y < b->ny; y++) {
        float *row = out + (size_t)y * b->nx;
        const float *g0, *g1;
        bracket(y, b->gy, b->ny, &j, &ty);
        j1 = b->gy > 1 ? j + 1 : j;
        g0 = b->mean + (size_t)j * b->gx;
        g1 = b->mean + (size_t)j1 * b->gx;
        for (x = 0; x < b->nx; x++) {
            int i = ix[x], i1 = b->gx > 1 ? i + 1 : i;
            double t = tx[x];
            float v = (float)((1 - ty) * ((1 - t) * g0[i] + t * g0[i1]) +
                              ty * ((1 - t) * g1[i] + t * g1[i1]));
            row[x] = subtract ? row[x] - v : v;
        }
    }
    free(ix);
    free(tx);
}

void rapid_background_fill(const rapid_background *b, float *out)
{
    apply(b, out, 0);
}

void rapid_background_subtract(const rapid_background *b, float *img)
{
    apply(b, img, 1);
}
