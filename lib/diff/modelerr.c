/* modelerr.c - the PSF-model (undersampling) error of a difference image
 * (modelerr.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    double d2, v, l2, g2;
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

int modelerr_fit(int nx, int ny, const float *d, const float *v,
                 const float *l, const size_t *idx, int n, double *eps,
                 double *pos, int *nused)
{
    size_t cap = (size_t)(n > 0 ? n : 1);
    mpix *pc = malloc(cap * sizeof *pc), *pf = malloc(cap * 8 * sizeof *pf);
    float *w = malloc(cap * 8 * sizeof *w);
    int i, nstar = 0;

    *eps = *pos = 0;
    *nused = 0;
    if (!pc || !pf || !w) {
        free(pc);
        free(pf);
        free(w);
        return RAPID_E_NOMEM;
    }
    for (i = 0; i < n; i++) {
        int x0 = (int)(idx[i] % (size_t)nx), y0 = (int)(idx[i] / (size_t)nx);
        int a, b, k = 0;
        mpix t[9];
        if (x0 < 1 || y0 < 1 || x0 >= nx - 1 || y0 >= ny - 1)
            continue;
        for (b = -1; b <= 1; b++)
            for (a = -1; a <= 1; a++) {
                size_t q = (size_t)(y0 + b) * nx + x0 + a;
                if (!isfinite(d[q]) || !isfinite(l[q]) || !(v[q] > 0))
                    continue;
                t[k].d2 = (double)d[q] * d[q];
                t[k].v = v[q];
                t[k].l2 = (double)l[q] * l[q];
                t[k].g2 = grad2(nx, ny, l, x0 + a, y0 + b);
                k++;
            }
        if (k == 9) { /* the whole 3 x 3 or nothing; the centre is t[4] */
            pc[nstar] = t[4];
            memcpy(&pf[8 * nstar], t, 4 * sizeof *t);
            memcpy(&pf[8 * nstar + 4], t + 5, 4 * sizeof *t);
            nstar++;
        }
    }
    if (nstar >= MODELERR_MIN) {
        *nused = nstar;
        /* eps from the centres, pos from the flanks, each with the other
         * held, alternately until both settle.  A term the noise alone
         * explains (on its pixels) stays 0; the other is solved for with
         * it held, not gated again: with the other term in, a
         * significant share can fall within the gate and would drop to 0
         * while it is still needed */
        int fit_e = beyond_noise(pc, nstar, w);
        int fit_s = beyond_noise(pf, 8 * nstar, w), it;
        for (it = 0; it < 30 && (fit_e || fit_s); it++) {
            double e = fit_e ? solve1(pc, nstar, 0, *pos, 1.0, w) : 0;
            double s = fit_s ? solve1(pf, 8 * nstar, 1, e, 2.0, w) : 0;
            int done = fabs(e - *eps) < 1e-4 && fabs(s - *pos) < 1e-4;
            *eps = e;
            *pos = s;
            if (done)
                break;
        }
    }
    free(pc);
    free(pf);
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
    {
        const float t = (float)(MODELERR_SHRINK * s);
        /* without a branch (vectorised): NaN is kept as it is, and an
         * infinity shrinks to itself */
        for (i = 0; i < n; i++) {
            float x = l[i], a = fabsf(x) - t;
            l[i] = a > 0 ? copysignf(a, x) : (x != x ? x : 0.0f);
        }
    }
    return 0;
}

/* The squared width of l's peak at q along one axis (step s: 1 or nx),
 * from the curvature of ln l over the peak and its two neighbours (a
 * Gaussian's sigma^2 at any phase); 0 (sharp) where a neighbour holds no
 * light or no data, HUGE_VAL where ln l does not curve down. */
static double axis_width2(const float *l, size_t q, size_t s)
{
    double a = l[q - s], b = l[q], c = l[q + s], k;

    if (!(a > 0) || !(c > 0) || !(b > 0))
        return 0;
    k = log(a) + log(c) - 2 * log(b);
    return k < 0 ? -1 / k : HUGE_VAL;
}

static double peak_width2(int nx, const float *l, size_t q)
{
    return 0.5 * (axis_width2(l, q, 1) + axis_width2(l, q, (size_t)nx));
}

/* The brightest of the 3 x 3 pixels around (x, y), the pixel itself
 * included (ties broken by index: one peak per plateau), as an index. */
static inline uint32_t brightest(int nx, int ny, const float *l, int x,
                                 int y)
{
    int a0 = x > 0 ? -1 : 0, a1 = x < nx - 1 ? 1 : 0;
    int b0 = y > 0 ? -1 : 0, b1 = y < ny - 1 ? 1 : 0, a, b;
    uint32_t best = (uint32_t)y * (uint32_t)nx + (uint32_t)x;

    for (b = b0; b <= b1; b++)
        for (a = a0; a <= a1; a++) {
            uint32_t o = (uint32_t)(y + b) * (uint32_t)nx + (uint32_t)(x + a);
            if (l[o] > l[best] || (l[o] == l[best] && o < best))
                best = o;
        }
    return best;
}

/* The basin of the peak at q (the lit pixels whose steps up lead to
 * it: up[] holds each lit pixel's step) cleared: its light set to 0 in l
 * and l2, its pixels to 1 in ext.  Walked down from the peak, each pixel
 * to the neighbours whose step is that pixel; a cleared pixel, no longer
 * lit, is not walked again.  stack: a growing array.  Returns 0 or
 * RAPID_E_NOMEM. */
static int clear_basin(int nx, int ny, float *l, float *l2,
                       unsigned char *ext, const uint32_t *up, uint32_t q,
                       uint32_t **stack, size_t *cap)
{
    size_t top = 0;

#define CLEAR_PUSH(o)                                                        \
    do {                                                                     \
        if (top == *cap) {                                                   \
            size_t c = *cap ? 2 * *cap : 4096;                               \
            uint32_t *t = realloc(*stack, c * sizeof *t);                    \
            if (!t)                                                          \
                return RAPID_E_NOMEM;                                        \
            *stack = t;                                                      \
            *cap = c;                                                        \
        }                                                                    \
        (*stack)[top++] = (o);                                               \
        l[o] = 0;                                                            \
        if (l2)                                                              \
            l2[o] = 0;                                                       \
        if (ext)                                                             \
            ext[o] = 1;                                                      \
    } while (0)
    CLEAR_PUSH(q);
    while (top > 0) {
        uint32_t p = (*stack)[--top];
        int x = (int)(p % (uint32_t)nx), y = (int)(p / (uint32_t)nx), a, b;
        for (b = -1; b <= 1; b++)
            for (a = -1; a <= 1; a++) {
                uint32_t o;
                if ((!a && !b) || x + a < 0 || y + b < 0 || x + a >= nx ||
                    y + b >= ny)
                    continue;
                o = (uint32_t)(y + b) * (uint32_t)nx + (uint32_t)(x + a);
                if (l[o] > 0 && up[o] == p)
                    CLEAR_PUSH(o);
            }
    }
#undef CLEAR_PUSH
    return 0;
}

/* A growing array of the 3 x 3 peaks (index, width^2) and of the bright
 * peaks' widths. */
typedef struct peaks {
    uint32_t *q;
    double *w2;
    size_t n, cap;
    float *wb;
    size_t nb, capb;
} peaks;

static int add_peak(peaks *p, uint32_t q, double w2)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 4096;
        uint32_t *a = realloc(p->q, cap * sizeof *a);
        double *b;
        if (!a)
            return RAPID_E_NOMEM;
        p->q = a;
        if (!(b = realloc(p->w2, cap * sizeof *b)))
            return RAPID_E_NOMEM;
        p->w2 = b;
        p->cap = cap;
    }
    p->q[p->n] = q;
    p->w2[p->n++] = w2;
    return 0;
}

static int add_bright(peaks *p, float w2)
{
    if (p->nb == p->capb) {
        size_t cap = p->capb ? 2 * p->capb : 1024;
        float *a = realloc(p->wb, cap * sizeof *a);
        if (!a)
            return RAPID_E_NOMEM;
        p->wb = a;
        p->capb = cap;
    }
    p->wb[p->nb++] = w2;
    return 0;
}

int modelerr_point_light(int nx, int ny, float *l, float *l2,
                         const float *v, void *scratch, unsigned char *ext,
                         double *width2, long *nextended)
{
    size_t n = (size_t)nx * ny, q, k, cap = 0;
    uint32_t *up = scratch, *stack = NULL;
    peaks pk;
    int x, y, rc = 0;
    double lim;

    *width2 = 0;
    *nextended = 0;
    if (nx < 3 || ny < 3 || n >= ((size_t)1 << 32))
        return 0;
    memset(&pk, 0, sizeof pk);
    /* one pass: each lit pixel's step up (only lit pixels are ever looked
     * at: a lit pixel's steps lead through brighter, lit ones), the
     * peaks' widths, and the bright peaks' (the point sources' width:
     * their median).  A bright peak (no larger value within
     * MODELERR_SEP px, ties as the steps') is its own step. */
    for (y = 0; y < ny && !rc; y++)
        for (x = 0; x < nx && !rc; x++) {
            uint32_t s;
            double w;
            q = (size_t)y * nx + x;
            if (!(l[q] > 0))
                continue;
            up[q] = s = brightest(nx, ny, l, x, y);
            if (s != q || x < 1 || y < 1 || x >= nx - 1 || y >= ny - 1)
                continue;
            w = peak_width2(nx, l, q);
            rc = add_peak(&pk, (uint32_t)q, w);
            if (!rc && v[q] > 0 && !(l[q] < MODELERR_SNR * sqrt(v[q])) &&
                is_peak(nx, ny, l, x, y))
                rc = add_bright(&pk, (float)w);
        }
    if (rc || pk.nb < MODELERR_MIN)
        goto done;
    *width2 = rapid_select_f(pk.wb, pk.nb, pk.nb / 2);
    if (!(*width2 > 0))
        goto done;
    lim = MODELERR_EXTENDED * *width2;
    for (k = 0; k < pk.n && !rc; k++) /* the extended peaks' basins */
        if (pk.w2[k] > lim) {
            (*nextended)++;
            rc = clear_basin(nx, ny, l, l2, ext, up, pk.q[k], &stack, &cap);
        }
done:
    free(stack);
    free(pk.q);
    free(pk.w2);
    free(pk.wb);
    return rc;
}
