/* modelerr.c - the PSF-model (undersampling) error of a difference image
 * (modelerr.h). */
#include <math.h>
#include <stdlib.h>

#include "../core/stats.h"
#include "modelerr.h"
#include "rapid/error.h"

#define MEDIAN_CHI2_1 0.45493642311957 /* median of a chi^2 with 1 dof */

static int clear_of_gaps(int nx, int ny, const unsigned char *ok, int x,
                         int y)
{
    int i, j, r = MODELERR_CLEAR;

    if (x < r || y < r || x >= nx - r || y >= ny - r)
        return 0;
    for (j = -r; j <= r; j++)
        for (i = -r; i <= r; i++)
            if (!ok[(size_t)(y + j) * nx + x + i])
                return 0;
    return 1;
}

static int is_peak(int nx, int ny, const float *l, int x, int y)
{
    float c = l[(size_t)y * nx + x];
    int i, j, r = MODELERR_SEP;

    for (j = -r; j <= r; j++)
        for (i = -r; i <= r; i++) {
            int xx = x + i, yy = y + j;
            if ((i || j) && xx >= 0 && yy >= 0 && xx < nx && yy < ny) {
                float o = l[(size_t)yy * nx + xx];
                /* ties broken by position: one peak per plateau */
                if (o > c || (o == c && (j < 0 || (j == 0 && i < 0))))
                    return 0;
            }
        }
    return 1;
}

typedef struct star_list {
    size_t *idx, cap;
    int n;
} star_list;

static int keep(star_list *s, size_t q)
{
    if (s->n == (int)s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        size_t *t = realloc(s->idx, cap * sizeof *t);
        if (!t)
            return RAPID_E_NOMEM;
        s->idx = t;
        s->cap = cap;
    }
    s->idx[s->n++] = q;
    return 0;
}

int modelerr_stars(int nx, int ny, const float *l, const float *v,
                   const unsigned char *ok, const double *sx,
                   const double *sy, int ns, size_t **idx, int *n)
{
    star_list s = {NULL, 0, 0};
    int x, y, i, rc = 0;

    *idx = NULL;
    *n = 0;
    if (sx) {
        for (i = 0; i < ns && !rc; i++) {
            size_t q;
            if (!isfinite(sx[i]) || !isfinite(sy[i]) || sx[i] < 0 ||
                sy[i] < 0 || sx[i] > nx - 1 || sy[i] > ny - 1)
                continue;
            x = (int)lround(sx[i]);
            y = (int)lround(sy[i]);
            q = (size_t)y * nx + x;
            if (isfinite(l[q]) && v[q] > 0 && clear_of_gaps(nx, ny, ok, x, y))
                rc = keep(&s, q);
        }
    } else {
        for (y = MODELERR_CLEAR; y < ny - MODELERR_CLEAR && !rc; y++)
            for (x = MODELERR_CLEAR; x < nx - MODELERR_CLEAR && !rc; x++) {
                size_t q = (size_t)y * nx + x;
                /* l > 0 first: the test below fails without it, and
                 * most pixels (noise, or the zeros of a denoised light)
                 * need no square root then */
                if (l[q] > 0 && isfinite(l[q]) && v[q] > 0 &&
                    l[q] >= MODELERR_SNR * sqrt(v[q]) &&
                    is_peak(nx, ny, l, x, y) && clear_of_gaps(nx, ny, ok, x, y))
                    rc = keep(&s, q);
            }
    }
    if (rc || s.n == 0) {
        free(s.idx);
        return rc;
    }
    *idx = s.idx;
    *n = s.n;
    return 0;
}

/* |grad L|^2 at (x, y) by central differences (one-sided at the edges;
 * 0 where a neighbour is not finite).  The differences are over 2 px or
 * 1: halved by a product, which is exact as the division is. */
static double grad2(int nx, int ny, const float *l, int x, int y)
{
    int xl = x > 0 ? x - 1 : x, xr = x < nx - 1 ? x + 1 : x;
    int yd = y > 0 ? y - 1 : y, yu = y < ny - 1 ? y + 1 : y;
    double gx = xr > xl ? ((double)l[(size_t)y * nx + xr] -
                           l[(size_t)y * nx + xl]) * (xr - xl == 2 ? 0.5 : 1)
                        : 0;
    double gy = yu > yd ? ((double)l[(size_t)yu * nx + x] -
                           l[(size_t)yd * nx + x]) * (yu - yd == 2 ? 0.5 : 1)
                        : 0;
    double g = gx * gx + gy * gy;

    return isfinite(g) ? g : 0;
}

/* One pixel of a star: its residual, noise variance, light and light
 * gradient squared. */
typedef struct mpix {
    double d2, v, l2, g2, ratio;
} mpix;

/* The median of d^2 / (v + e2 l^2 + p2 g^2) over pixels p[0..n). */
static double median_z2(const mpix *p, int n, double e2, double p2, float *w)
{
    int i;

    for (i = 0; i < n; i++)
        w[i] = (float)(p[i].d2 / (p[i].v + e2 * p[i].l2 + p2 * p[i].g2));
    if (n % 2)
        return rapid_select_f(w, (size_t)n, (size_t)n / 2);
    return 0.5 * (rapid_select_f(w, (size_t)n, (size_t)n / 2 - 1) +
                  rapid_select_f(w, (size_t)n, (size_t)n / 2));
}

/* The parameter (eps when which = 0, the position scatter otherwise, the
 * other held) in [0, hi] for which the median of z^2 over p is that of a
 * unit normal; 0 when it already is at most that, hi when still above. */
static double solve1(const mpix *p, int n, int which, double other,
                     double hi, float *w)
{
    double lo = 0;
    int it;

#define Z2(t) (which ? median_z2(p, n, other * other, (t) * (t), w)         \
                     : median_z2(p, n, (t) * (t), other * other, w))
    if (!(Z2(0.0) > MEDIAN_CHI2_1))
        return 0;
    if (Z2(hi) > MEDIAN_CHI2_1)
        return hi;
    for (it = 0; it < 40; it++) {
        double mid = 0.5 * (lo + hi);
        if (Z2(mid) > MEDIAN_CHI2_1)
            lo = mid;
        else
            hi = mid;
    }
#undef Z2
    return 0.5 * (lo + hi);
}

/* Whether the noise alone leaves the median of z^2 over p significantly
 * above that of a unit normal: the sample median of n chi^2_1 values has
 * a standard error of 1.06 / sqrt(n) (0.5 / sqrt(n) over the density at
 * the median, 0.471); within three times that, the noise explains it. */
static int beyond_noise(const mpix *p, int n, float *w)
{
    return n > 0 &&
           median_z2(p, n, 0, 0, w) > MEDIAN_CHI2_1 + 3 * 1.06 / sqrt((double)n);
}

static int cmp_ratio(const void *a, const void *b)
{
    double x = ((const mpix *)a)->ratio, y = ((const mpix *)b)->ratio;

    return (x > y) - (x < y);
}

int modelerr_fit(int nx, int ny, const float *d, const float *v,
                 const float *l, const size_t *idx, int n, double *eps,
                 double *pos, int *nused)
{
    mpix *p = malloc((size_t)(n > 0 ? n : 1) * 9 * sizeof *p);
    float *w = malloc((size_t)(n > 0 ? n : 1) * 9 * sizeof *w);
    int i, m = 0, nstar = 0, it, half, fit_e, fit_s;

    *eps = *pos = 0;
    *nused = 0;
    if (!p || !w) {
        free(p);
        free(w);
        return RAPID_E_NOMEM;
    }
    for (i = 0; i < n; i++) {
        int x0 = (int)(idx[i] % (size_t)nx), y0 = (int)(idx[i] / (size_t)nx);
        int a, b, k = 0;
        if (x0 < 1 || y0 < 1 || x0 >= nx - 1 || y0 >= ny - 1)
            continue;
        for (b = -1; b <= 1; b++)
            for (a = -1; a <= 1; a++) {
                size_t q = (size_t)(y0 + b) * nx + x0 + a;
                mpix *t = &p[m + k];
                if (!isfinite(d[q]) || !isfinite(l[q]) || !(v[q] > 0))
                    continue;
                t->d2 = (double)d[q] * d[q];
                t->v = v[q];
                t->l2 = (double)l[q] * l[q];
                t->g2 = grad2(nx, ny, l, x0 + a, y0 + b);
                t->ratio = t->g2 / (t->l2 + 1e-30 * t->v);
                k++;
            }
        if (k == 9) { /* the whole 3 x 3 or nothing */
            m += k;
            nstar++;
        }
    }
    if (nstar >= MODELERR_MIN) {
        *nused = nstar;
        /* the pixels where the light is flat for eps (the centres), where
         * it is steep for the position scatter (the flanks) */
        qsort(p, (size_t)m, sizeof *p, cmp_ratio);
        half = m / 2;
        /* a term the noise alone explains (on its half) stays 0; the
         * other is solved for with it held, not gated again: with the
         * other term in, a significant share can fall within the gate
         * and would drop to 0 while it is still needed */
        fit_e = beyond_noise(p, half, w);
        fit_s = beyond_noise(p + half, m - half, w);
        for (it = 0; it < 30 && (fit_e || fit_s); it++) {
            double e = fit_e ? solve1(p, half, 0, *pos, 1.0, w) : 0;
            double s = fit_s ? solve1(p + half, m - half, 1, e, 2.0, w) : 0;
            int done = fabs(e - *eps) < 1e-4 && fabs(s - *pos) < 1e-4;
            *eps = e;
            *pos = s;
            if (done)
                break;
        }
    }
    free(p);
    free(w);
    return 0;
}

/* var[q] + e2 l^2 + p2 |grad l|^2 at pixel q (grad2's sum), or var[q]
 * where l is not finite. */
static inline float apply_one(float var, double lv, double g, double e2,
                              double p2)
{
    if (!isfinite(lv))
        return var;
    return (float)(var + e2 * lv * lv + (p2 > 0 ? p2 * (isfinite(g) ? g : 0) : 0));
}

void modelerr_apply(int nx, int ny, const float *l, double eps, double pos,
                    float *var)
{
    double e2 = eps * eps, p2 = pos * pos;
    int x, y;

    if (e2 == 0 && p2 == 0)
        return;
    for (y = 0; y < ny; y++) {
        size_t r = (size_t)y * nx;
        if (y == 0 || y == ny - 1 || nx < 3) { /* the edges: grad2 */
            for (x = 0; x < nx; x++)
                if (isfinite(l[r + x]))
                    var[r + x] = (float)(var[r + x] + e2 * l[r + x] * l[r + x] +
                                         (p2 > 0 ? p2 * grad2(nx, ny, l, x, y) : 0));
            continue;
        }
        /* within: central differences over 2 px on both axes, the sums in
         * grad2's order (the same values), without its edge cases */
        for (x = 0; x < nx; x += nx - 1)
            if (isfinite(l[r + x]))
                var[r + x] = (float)(var[r + x] + e2 * l[r + x] * l[r + x] +
                                     (p2 > 0 ? p2 * grad2(nx, ny, l, x, y) : 0));
        for (x = 1; x < nx - 1; x++) {
            size_t q = r + x;
            double gx = ((double)l[q + 1] - l[q - 1]) * 0.5;
            double gy = ((double)l[q + nx] - l[q - (size_t)nx]) * 0.5;
            var[q] = apply_one(var[q], l[q], gx * gx + gy * gy, e2, p2);
        }
    }
}

int modelerr_denoise(float *l, size_t n, double *sigma)
{
    double s;
    size_t i;
    int rc = rapid_robust_sigma_sample(l, n, MODELERR_SAMPLE, 10, &s);

    *sigma = 0;
    if (rc)
        return rc;
    if (!(s > 0) || !isfinite(s))
        return 0;
    *sigma = s;
    for (i = 0; i < n; i++) {
        float a = fabsf(l[i]) - (float)(MODELERR_SHRINK * s);
        if (isfinite(l[i]))
            l[i] = a > 0 ? copysignf(a, l[i]) : 0;
    }
    return 0;
}
