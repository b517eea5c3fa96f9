/* zogy.c - the proper image difference of Zackay, Ofek & Gal-Yam (2016)
 * (rapid/diff.h).
 *
 * Everything is done on whole-image transforms in single precision:
 *   1. PSFs to the origin of the padded grid, and transformed (planes A,
 *      B); each image's no-data pixels filled with the other image
 *      matched to its PSF (fill_error: directly in real space, at those
 *      pixels only), and the two transformed (X, Y);
 *   2. D^ (plane E), S^ and D_R^ (the reference's share of D) in
 *      place of X, Y, and S_R^ in place of A, in one pass; four
 *      inverse transforms give D, S, D_R and S_R, hence S_N = S + S_R,
 *      the astrometric variance from the gradients of S_N and S_R, and
 *      the light the PSF-model error is made of (D_R, S_R).  X is the
 *      transform of N - R, not of N: a transform's rounding is relative
 *      to the largest values it carries and spreads along their rows and
 *      columns, and static stars cancel in N - R (D^ = (P_r^ (N - R)^ +
 *      (P_r^ - P_n^) R^) / Delta; S^ from D^), so their light reaches D
 *      and S only through R^ times the PSFs' difference;
 *   3. the variance maps transformed (G, H); for each of the kernels k_n,
 *      k_r (S) and k_Dn, k_Dr (D): the kernel made on a small grid (a few
 *      PSF widths: the kernels are compact) and taken to real space there,
 *      squared, laid on the full grid and transformed, times the
 *      variance's transform, and transformed back, each kernel's share
 *      apart: the reference's is scaled by what its correlated noise does
 *      through that kernel, measured on S and D themselves window by
 *      window (measure_factor; Delta is white);
 *   4. the PSF-model error's light, D_R and S_R of the point sources
 *      (modelerr.c: extended sources' light taken out), measured at the
 *      stars and added to sigma_D^2 and S's variance; S_corr.
 * Eighteen full-size transforms in all (seventeen with given noise
 * correlations); those of planes that hold a compact kernel at the origin
 * (the PSFs', the squared kernels') skip the row transforms of their
 * rows of zeros (r2c_edges).  At most five padded planes are alive at
 * once (A, B, X, Y, E in step 2; G, H, K, ACC in step 3); the image-sized
 * buffers come from the big-block pool, whose recycled memory is already
 * faulted in (page faults and zeroing cost as much as a transform per
 * plane on a virtual machine).
 * Transforms are unnormalised, so every round trip is divided by the
 * number of padded pixels.
 */
#include <complex.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../core/bigmem.h"
#include "../core/stats.h"
#include "rapid/diff.h"
#include "rapid/psfops.h"
#include "modelerr.h"

#define SIGMA_SAMPLE 1000000 /* pixels sampled to estimate a noise */
#define NPLANES 5          /* full padded planes */

void rapid_zogy_opts_init(rapid_zogy_opts *o)
{
    o->nthreads = 1;
    o->fft = NULL;
    o->stop = NULL;
}

void rapid_zogy_out_release(rapid_zogy_out *out)
{
    if (!out)
        return;
    rapid_big_free(out->d);
    rapid_big_free(out->unc);
    rapid_big_free(out->scorr);
    free(out->pd);
    memset(out, 0, sizeof *out);
}

/* The padded grid and its plans. */
typedef struct grid {
    int px, py;           /* padded size */
    int hx;               /* complex values per row: px / 2 + 1 */
    size_t stride;        /* floats per real row in place: 2 hx */
    size_t nfloat;        /* floats per plane: py * stride */
    double norm;          /* 1 / (px py) */
    const rapid_fft_plan *fwd, *bwd;
    const rapid_fft_plan *cols;  /* the column pass alone */
    const rapid_fft_plan *rows_img; /* the row pass of the image's rows */
    const rapid_fft_plan *rows_edge; /* ... of nedge rows (NULL: none) */
    int nedge;            /* rows at each edge of a compact kernel's plane */
    float *cx, *sx;       /* cos, sin (2 pi kx) for the hx columns */
    float *cy, *sy;       /* cos, sin (2 pi ky) for the py rows */
} grid;

/* The noise of the two images: per-pixel variances, and the correlation
 * of neighbouring pixels at lags (1,0), (0,1), (1,1), (1,-1), which make
 * the noise's power spectrum
 *   s2 T(k), T = 1 + 2 (r0 cos 2pi kx + r1 cos 2pi ky
 *                      + r2 cos 2pi (kx + ky) + r3 cos 2pi (kx - ky)),
 * held above T_MIN (a spectrum is never negative). */
typedef struct noise_model {
    double s2n, s2r;
    double rn[4], rr[4];
    int white;            /* all correlations 0 */
} noise_model;

#define T_MIN 0.01

static inline float spectrum(const double r[4], float cx, float sx, float cy,
                             float sy)
{
    float t = 1 + 2 * ((float)r[0] * cx + (float)r[1] * cy +
                       (float)r[2] * (cx * cy - sx * sy) +
                       (float)r[3] * (cx * cy + sx * sy));
    return t > T_MIN ? t : T_MIN;
}

/* sigma_n^2 T_n and sigma_r^2 T_r at half-spectrum row j, column i. */
static inline void noise_at(const grid *g, const noise_model *m, int j,
                            int i, float *vn, float *vr)
{
    if (m->white) {
        *vn = (float)m->s2n;
        *vr = (float)m->s2r;
        return;
    }
    *vn = (float)m->s2n * spectrum(m->rn, g->cx[i], g->sx[i], g->cy[j], g->sy[j]);
    *vr = (float)m->s2r * spectrum(m->rr, g->cx[i], g->sx[i], g->cy[j], g->sy[j]);
}

static void grid_release(grid *g)
{
    free(g->cx);
    free(g->sx);
    free(g->cy);
    free(g->sy);
    g->cx = g->sx = g->cy = g->sy = NULL;
}

/* A padded plane: image-sized ones from the big-block pool (2 MB
 * aligned, memory already faulted in when recycled), others aligned for
 * FFTW.  Free with plane_free. */
static float *plane_new(const grid *g)
{
    size_t bytes = g->nfloat * sizeof(float);

    if (bytes >= RAPID_BIG_MIN && rapid_big_pooling())
        return rapid_big_malloc(bytes);
    return rapid_fft_alloc(bytes);
}

static void plane_free(float *p)
{
    rapid_big_free(p); /* free() for rapid_fft_alloc's */
}

/* The forward transform, in place, of a plane whose rows are zero but
 * for the first and the last g->nedge (a compact kernel at the origin):
 * the row pass over those rows only, then the column pass; the whole
 * transform where the grid has no such plans. */
static void r2c_edges(const grid *g, float *pl)
{
    float complex *P = (float complex *)pl;
    size_t b = (size_t)(g->py - g->nedge);

    if (!g->rows_edge) {
        rapid_fft_r2c(g->fwd, pl, P);
        return;
    }
    rapid_fft_r2c(g->rows_edge, pl, P);
    rapid_fft_r2c(g->rows_edge, pl + b * g->stride, P + b * g->hx);
    rapid_fft_c2c(g->cols, P, P);
}

/* v[lo..hi] reordered so that the values below t come first (lt), or
 * those not above t; returns where the others start.  Branch-free: every
 * value is swapped to the boundary and the boundary moved by the
 * comparison (the values come in no order: a branch on it would be
 * mispredicted half the time: three times slower on the windows'
 * fits). */
static long partition_at(float *v, long lo, long hi, float t, int lt)
{
    long s = lo, i;

    if (lt)
        for (i = lo; i <= hi; i++) {
            float x = v[i];
            v[i] = v[s];
            v[s] = x;
            s += x < t;
        }
    else
        for (i = lo; i <= hi; i++) {
            float x = v[i];
            v[i] = v[s];
            v[s] = x;
            s += x <= t;
        }
    return s;
}

/* The k-th smallest of v[lo..hi] (lo <= k <= hi; no NaN), v reordered.
 * The pivot: for more than 600 values, the k-th of a sample about k
 * (Floyd and Rivest, Comm. ACM 18, 1975: one partition then leaves few
 * values around k), else the median of three.  The windows' fits select
 * twice in each of ~16,000 windows of ~1,000 values, the noise and mask
 * estimates on samples of a million. */
static float select_k(float *v, long lo, long hi, long k)
{
    while (hi > lo) {
        long s, e;
        float t;
        if (hi - lo > 600) {
            double n = (double)(hi - lo + 1), m = (double)(k - lo + 1);
            double z = log(n), ss = 0.5 * exp(2 * z / 3);
            double sd = 0.5 * sqrt(z * ss * (n - ss) / n) * (m < n / 2 ? -1 : 1);
            long nl = (long)(k - m * ss / n + sd);
            long nh = (long)(k + (n - m) * ss / n + sd);
            t = select_k(v, nl > lo ? nl : lo, nh < hi ? nh : hi, k);
        } else {
            float a = v[lo], b = v[k], c = v[hi];
            t = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
        }
        s = partition_at(v, lo, hi, t, 1); /* v[lo..s) < t */
        if (k < s) {
            hi = s - 1;
            continue;
        }
        if (s > lo) { /* k among the values from t up: another pivot */
            lo = s;
            continue;
        }
        e = partition_at(v, s, hi, t, 0); /* none below t: v[lo..e) = t */
        if (k < e)
            return t;
        lo = e;
    }
    return v[k];
}

/* The background noise of an image from its variance map: the square
 * root of the median variance over the pixels with data (a sample of at
 * most SIGMA_SAMPLE of them; sources raise the variance of few pixels).
 * NaN when fewer than 10 pixels have data. */
static int map_sigma(const float *img, const float *var, size_t n,
                     double *sigma)
{
    size_t step = rapid_sample_step(n, SIGMA_SAMPLE), i, m = 0;
    float *w = malloc((n / step + 1) * sizeof *w);

    *sigma = NAN;
    if (!w)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step)
        if (isfinite(img[i]) && isfinite(var[i]) && var[i] > 0)
            w[m++] = var[i];
    if (m >= 10)
        *sigma = sqrt(select_k(w, 0, (long)m - 1, (long)(m / 2)));
    free(w);
    return 0;
}

/* The 1-D transform of u (n values at offsets -h..h) at the m
 * frequencies 0..m-1 of a period of N, in double precision: the phase of
 * each term exact, reduced to -N < t < N, its cosine and sine from a
 * table of those 2 N - 1 (made with the same expression).  Returns 0 or
 * RAPID_E_NOMEM. */
static int dft_1d(const double *u, int n, int N, int m, double complex *out)
{
    int h = n / 2, k, j;
    double *c = malloc((size_t)(2 * N) * sizeof *c), *sn = malloc((size_t)(2 * N) * sizeof *sn);

    if (!c || !sn) {
        free(c);
        free(sn);
        return RAPID_E_NOMEM;
    }
    for (k = 1 - N; k < N; k++) {
        double ph = -2 * M_PI * (double)k / N;
        c[k + N] = cos(ph);
        sn[k + N] = sin(ph);
    }
    for (k = 0; k < m; k++) {
        double complex acc = 0;
        for (j = 0; j < n; j++) {
            long t = ((long)k * (j - h)) % N + N; /* exact phase, reduced */
            acc += u[j] * (c[t] + I * sn[t]);
        }
        out[k] = acc;
    }
    free(c);
    free(sn);
    return 0;
}

/* A PSF stamp (odd n x n, normalised to unit sum) to the origin of a
 * zeroed plane, wrapped, and transformed.  The transform's rounding is
 * relative to the largest values it carries, and the PSF's transform
 * multiplies the images' (stars thousands of sigma bright): the PSF's
 * best separable approximation u v^T (power iteration) is transformed
 * exactly, in double precision (two 1-D transforms), and only the
 * residual, a small fraction of the PSF, through the single-precision
 * plan.  Returns 0, or RAPID_E_NOMEM. */
static int psf_to_plane(const grid *g, const float *psf, int n, float *pl)
{
    int h = n / 2, i, j, it;
    double sum = 0, *p = malloc((size_t)n * n * sizeof *p);
    double *u = malloc((size_t)n * sizeof *u), *v = malloc((size_t)n * sizeof *v);
    double complex *uy = malloc((size_t)g->py * sizeof *uy);
    double complex *vx = malloc((size_t)g->hx * sizeof *vx);
    float *vf;
    int rc = 0;

    if (!p || !u || !v || !uy || !vx) {
        rc = RAPID_E_NOMEM;
        goto done;
    }
    for (i = 0; i < n * n; i++)
        sum += psf[i];
    for (i = 0; i < n * n; i++)
        p[i] = psf[i] / sum;
    for (i = 0; i < n; i++) /* start: the column sums */
        for (v[i] = 0, j = 0; j < n; j++)
            v[i] += p[(size_t)j * n + i];
    for (it = 0; it < 50; it++) { /* p ~ u v^T: u = p v / |v|^2, v = p^T u / |u|^2 */
        double vv = 0, uu = 0;
        for (i = 0; i < n; i++)
            vv += v[i] * v[i];
        for (j = 0; j < n; j++) {
            double a = 0;
            for (i = 0; i < n; i++)
                a += p[(size_t)j * n + i] * v[i];
            u[j] = vv > 0 ? a / vv : 0;
        }
        for (j = 0; j < n; j++)
            uu += u[j] * u[j];
        for (i = 0; i < n; i++) {
            double a = 0;
            for (j = 0; j < n; j++)
                a += p[(size_t)j * n + i] * u[j];
            v[i] = uu > 0 ? a / uu : 0;
        }
    }
    memset(pl, 0, g->nfloat * sizeof *pl);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            pl[(size_t)((j - h + g->py) % g->py) * g->stride +
               (size_t)((i - h + g->px) % g->px)] =
                (float)(p[(size_t)j * n + i] - u[j] * v[i]);
    r2c_edges(g, pl);
    if (dft_1d(u, n, g->py, g->py, uy) || dft_1d(v, n, g->px, g->hx, vx)) {
        rc = RAPID_E_NOMEM;
        goto done;
    }
    vf = (float *)vx; /* v's transform as floats, re/im, in place */
    for (i = 0; i < g->hx; i++) {
        double complex t = vx[i];
        vf[2 * i] = (float)creal(t);
        vf[2 * i + 1] = (float)cimag(t);
    }
    for (j = 0; j < g->py; j++) { /* real arithmetic: no complex-multiply calls */
        float ur = (float)creal(uy[j]), ui = (float)cimag(uy[j]);
        float *row = pl + (size_t)j * 2 * g->hx;
        for (i = 0; i < g->hx; i++) {
            row[2 * i] += ur * vf[2 * i] - ui * vf[2 * i + 1];
            row[2 * i + 1] += ur * vf[2 * i + 1] + ui * vf[2 * i];
        }
    }
done:
    free(p);
    free(u);
    free(v);
    free(uy);
    free(vx);
    return rc;
}

/* What the reference's correlated noise does to the variance through the
 * kernels of S (fs) and of D (fd), as factors on its share V_R (x) k^2,
 * window by window; between window centres the factors are interpolated
 * bilinearly, beyond the outermost held.  Either measured on S and D
 * themselves (windows of about CALIB_BOX px: measure_factor), or, for
 * given correlations (one window), the ratio of sum |k^|^2 T to sum
 * |k^|^2 for their spectrum T (corr_factors). */
#define CALIB_BOX 32

typedef struct corr_map {
    int gx, gy;           /* windows */
    double wx, wy;        /* their size, px */
    double (*r)[4];       /* correlations per window (given) */
    float *fs, *fd;       /* variance factors per window */
    int measured;         /* fs, fd measured on S and D (measure_factor) */
} corr_map;

static void corr_map_release(corr_map *c)
{
    free(c->r);
    free(c->fs);
    free(c->fd);
    memset(c, 0, sizeof *c);
}

static float corr_factor(const corr_map *c, const float *f, int x, int y)
{
    double u = (x + 0.5) / c->wx - 0.5, v = (y + 0.5) / c->wy - 0.5;
    int i0, j0, i1, j1;

    u = u < 0 ? 0 : u > c->gx - 1 ? c->gx - 1 : u;
    v = v < 0 ? 0 : v > c->gy - 1 ? c->gy - 1 : v;
    i0 = (int)u;
    j0 = (int)v;
    i1 = i0 + 1 < c->gx ? i0 + 1 : i0;
    j1 = j0 + 1 < c->gy ? j0 + 1 : j0;
    u -= i0;
    v -= j0;
    return (float)((1 - v) * ((1 - u) * f[j0 * c->gx + i0] + u * f[j0 * c->gx + i1]) +
                   v * ((1 - u) * f[j1 * c->gx + i0] + u * f[j1 * c->gx + i1]));
}

/* The error of a filled pixel: the other image's light there, matched
 * to this one's PSF (matched), stands in for this one's, wrong by the two
 * images' PSF-model difference at that pixel, fe->eps of the light lq
 * and fe->pos px through its gradient (of img, the image that fills it;
 * measured at the stars: fill_error). */
typedef struct fill_err {
    double eps, pos;
} fill_err;

static float fill_var(const fill_err *fe, float lq, const float *img, int nx,
                      int ny, int x, int y)
{
    const float *row = img + (size_t)y * nx;
    double v = lq, gx = 0, gy = 0;

    if (!fe || (fe->eps == 0 && fe->pos == 0) || !isfinite(lq))
        return 0;
    if (x > 0 && x < nx - 1 && isfinite(row[x - 1]) && isfinite(row[x + 1]))
        gx = 0.5 * ((double)row[x + 1] - row[x - 1]);
    if (y > 0 && y < ny - 1 && isfinite(row[x - (ptrdiff_t)nx]) &&
        isfinite(row[x + nx]))
        gy = 0.5 * ((double)row[x + nx] - row[x - (ptrdiff_t)nx]);
    return (float)(fe->eps * fe->eps * v * v +
                   fe->pos * fe->pos * (gx * gx + gy * gy));
}

/* A pixel's own error beyond the noise: index and variance. */
typedef struct pix_var {
    size_t q;
    float w;
} pix_var;

/* A variance map's outliers: the part of each pixel's variance above
 * VAR_CLIP times the image's typical variance (sigma^2), taken out of the
 * map before it is transformed and spread through the squared kernels
 * directly in real space instead (fill_variance).  A single-precision
 * transform's rounding is relative to the largest value it carries and
 * spreads along its row and column: a coadd's pixel with a tiny weight
 * has a variance millions of times the typical one (5.7e6 on the 4088^2
 * benchmark pair), and S_corr along its row was 8e-3 off. */
#define VAR_CLIP 1000.0

typedef struct excess {
    pix_var *p;
    size_t n, cap;
    int nomem;
} excess;

static void excess_add(excess *e, size_t q, float w)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        pix_var *p = realloc(e->p, cap * sizeof *p);
        if (!p) {
            e->nomem = 1;
            return;
        }
        e->p = p;
        e->cap = cap;
    }
    e->p[e->n++] = (pix_var){q, w};
}

/* v, clipped at lim (0: no limit), its excess into e (NULL: none). */
static inline float clip_var(float v, double lim, excess *e, size_t q)
{
    if (lim > 0 && e && v > lim) {
        excess_add(e, q, (float)(v - lim));
        return (float)lim;
    }
    return v;
}

/* With the reference's noise measured on the outputs (corr_map's
 * measured), its variance map's outliers were clipped unscaled into
 * ex[1]: they become the reference's for D (ex[2], times the factor for
 * D there) and for S (ex[1], times the factor for S).  Returns 0 or
 * RAPID_E_NOMEM. */
static int excess_factors(excess ex[3], const corr_map *c, int nx)
{
    size_t k;

    if (ex[1].nomem)
        return RAPID_E_NOMEM;
    for (k = 0; k < ex[1].n; k++) {
        pix_var *e = &ex[1].p[k];
        int x = (int)(e->q % (size_t)nx), y = (int)(e->q / (size_t)nx);
        excess_add(&ex[2], e->q, e->w * corr_factor(c, c->fd, x, y));
        e->w *= corr_factor(c, c->fs, x, y);
    }
    return ex[2].nomem ? RAPID_E_NOMEM : 0;
}

/* The two images with each one's no-data pixels taken from the other
 * (zero where both have none): from mf where that is finite (the other
 * image matched to this one's PSF: fill_error).  Or
 * their variances, the reference's times the factor f of c (NULL: none)
 * for its correlated noise. */
static void fill_pair(const rapid_zogy_in *in, const grid *g, float *x,
                      float *y, int variance, const corr_map *c,
                      const float *f, const float *mf, double limx,
                      double limy, excess *ex, excess *ey)
{
    const float *a = variance ? in->vn : in->n, *b = variance ? in->vr : in->r;
    int i, j;

    if (x)
        memset(x, 0, g->nfloat * sizeof *x);
    memset(y, 0, g->nfloat * sizeof *y);
    for (j = 0; j < in->ny; j++) {
        const float *ar = a + (size_t)j * in->nx, *br = b + (size_t)j * in->nx;
        float *xr = x ? x + (size_t)j * g->stride : NULL;
        float *yr = y + (size_t)j * g->stride;
        for (i = 0; i < in->nx; i++) {
            float u = ar[i], v = br[i];
            int fu = isfinite(u), fv = isfinite(v);
            float w = mf ? mf[(size_t)j * in->nx + i] : NAN;
            size_t q = (size_t)j * in->nx + i;
            if (xr)
                xr[i] = clip_var(fu ? u : isfinite(w) ? w : fv ? v : 0, limx,
                                 ex, q);
            yr[i] = clip_var(fv ? (f ? v * corr_factor(c, f, i, j) : v)
                                : isfinite(w) ? w : fu ? u : 0,
                             limy, ey, q);
        }
    }
}

/* Per frequency: |P_n^|^2, |P_r^|^2 and Delta^2 (vn, vr the noises'
 * power there). */
static inline float delta2(float complex a, float complex b, float vn,
                           float vr, float *aa, float *bb)
{
    *aa = crealf(a) * crealf(a) + cimagf(a) * cimagf(a);
    *bb = crealf(b) * crealf(b) + cimagf(b) * cimagf(b);
    return vn * *bb + vr * *aa;
}

typedef enum kernel { K_N, K_R, K_DN, K_DR, K_PD } kernel;

/* A kernel's transform from the PSFs' (A, B) into k.  The science
 * kernels that make variances are filtered by the square root of its
 * noise spectrum, so that its variance map convolved with their squares
 * is the variance of a correlated noise; the reference's correlation,
 * which varies across the image, enters as a factor on its variance map
 * instead (corr_map). */
static void kernel_hat(const grid *g, const float complex *A,
                       const float complex *B, kernel which,
                       const noise_model *m, double fd, float complex *k)
{
    float tiny = (float)(1e-12 * (m->s2n + m->s2r));
    int i, j;

    for (j = 0; j < g->py; j++)
        for (i = 0; i < g->hx; i++) {
            size_t q = (size_t)j * g->hx + i;
            float vn, vr, aa, bb, d2;
            float complex v = 0;
            noise_at(g, m, j, i, &vn, &vr);
            d2 = delta2(A[q], B[q], vn, vr, &aa, &bb);
            if (d2 > tiny) {
                switch (which) {
                case K_N: v = conjf(A[q]) * bb / d2 * sqrtf(vn / (float)m->s2n); break;
                case K_R: v = conjf(B[q]) * aa / d2; break;
                case K_DN: v = B[q] / sqrtf(d2) * sqrtf(vn / (float)m->s2n); break;
                case K_DR: v = A[q] / sqrtf(d2); break;
                case K_PD: v = A[q] * B[q] / ((float)fd * sqrtf(d2)); break;
                }
            }
            k[q] = v;
        }
}

/* A kernel to real space on the small grid, squared, laid at the origin
 * of the (zeroed) full plane k, and transformed there. */
static void kernel_square_hat(const grid *g, const grid *sg, float *ks,
                              float *k)
{
    int i, j;
    float nrm = (float)sg->norm;

    rapid_fft_c2r(sg->bwd, (float complex *)ks, ks);
    memset(k, 0, g->nfloat * sizeof *k);
    for (j = 0; j < sg->py; j++) {
        int fj = j < sg->py / 2 ? j : j - sg->py + g->py;
        for (i = 0; i < sg->px; i++) {
            int fi = i < sg->px / 2 ? i : i - sg->px + g->px;
            float v = ks[(size_t)j * sg->stride + i] * nrm;
            k[(size_t)fj * g->stride + fi] = v * v;
        }
    }
    r2c_edges(g, k);
}

/* acc (+)= v^ k^ over the half spectrum, in real arithmetic: C's
 * complex product (re re - im im, re im + im re) without its check for
 * infinities, which keeps the loop from vectorising; the values are
 * finite. */
static void mul_acc(const grid *g, const float complex *v,
                    const float complex *k, float complex *acc, int add)
{
    const float *a = (const float *)v, *b = (const float *)k;
    float *c = (float *)acc;
    size_t i, n = 2 * (size_t)g->py * g->hx;

    if (add)
        for (i = 0; i < n; i += 2) {
            c[i] += a[i] * b[i] - a[i + 1] * b[i + 1];
            c[i + 1] += a[i] * b[i + 1] + a[i + 1] * b[i];
        }
    else
        for (i = 0; i < n; i += 2) {
            c[i] = a[i] * b[i] - a[i + 1] * b[i + 1];
            c[i + 1] = a[i] * b[i + 1] + a[i + 1] * b[i];
        }
}

/* sum_k V (x) k^2 for two variance transforms (G, H) and two kernels
 * (made on the small grid from its PSF transforms As, Bs), to real space
 * in acc (normalised). */
static void variance_map(const grid *g, const grid *sg,
                         const float complex *As, const float complex *Bs,
                         const float complex *G, const float complex *H,
                         kernel k1, kernel k2, const noise_model *m,
                         float *ks, float *K, float *acc)
{
    kernel_hat(sg, As, Bs, k1, m, 0, (float complex *)ks);
    kernel_square_hat(g, sg, ks, K);
    mul_acc(g, G, (const float complex *)K, (float complex *)acc, 0);
    kernel_hat(sg, As, Bs, k2, m, 0, (float complex *)ks);
    kernel_square_hat(g, sg, ks, K);
    mul_acc(g, H, (const float complex *)K, (float complex *)acc, 1);
    rapid_fft_c2r(g->bwd, (float complex *)acc, acc);
}

static int grid_plans(rapid_fft_cache *c, grid *g, rapid_err *err)
{
    int rc, i;

    g->hx = g->px / 2 + 1;
    g->stride = rapid_fft_real_stride(g->px);
    g->nfloat = (size_t)g->py * g->stride;
    g->norm = 1.0 / ((double)g->px * g->py);
    g->cx = malloc((size_t)g->hx * sizeof *g->cx);
    g->sx = malloc((size_t)g->hx * sizeof *g->sx);
    g->cy = malloc((size_t)g->py * sizeof *g->cy);
    g->sy = malloc((size_t)g->py * sizeof *g->sy);
    if (!g->cx || !g->sx || !g->cy || !g->sy)
        return rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
    for (i = 0; i < g->hx; i++) {
        g->cx[i] = (float)cos(2 * M_PI * i / g->px);
        g->sx[i] = (float)sin(2 * M_PI * i / g->px);
    }
    for (i = 0; i < g->py; i++) { /* periodic: row py - j is frequency -j */
        g->cy[i] = (float)cos(2 * M_PI * i / g->py);
        g->sy[i] = (float)sin(2 * M_PI * i / g->py);
    }
    rc = rapid_fft_plan_get(c, RAPID_FFT_R2C, g->py, g->px, 1, &g->fwd, err);
    if (!rc)
        rc = rapid_fft_plan_get(c, RAPID_FFT_C2R, g->py, g->px, 1, &g->bwd, err);
    return rc ? rc : rapid_fft_plan_get(c, RAPID_FFT_COLUMNS, g->py, g->hx, 1,
                                        &g->cols, err);
}

/* The full grid: the image padded against wrap-around by the larger
 * PSF's width (the kernels reach that far at most) to a size FFTW
 * transforms fast.  The small grid: the kernels, made from the PSFs'
 * transforms on twice that width (they are compact: the small grid's
 * wrap-around costs nothing measurable, and transforms there cost
 * nothing next to the full ones). */
static int grid_make(const rapid_zogy_in *in, rapid_fft_cache *c, grid *g,
                     grid *sg, rapid_err *err)
{
    int pad = (in->npn > in->npr ? in->npn : in->npr), rc, rows;

    g->px = rapid_fft_smooth_size(in->nx + pad);
    g->py = rapid_fft_smooth_size(in->ny + pad);
    sg->px = sg->py = rapid_fft_good_size(2 * pad);
    if ((rc = grid_plans(c, g, err)) ||
        (rc = rapid_fft_plan_get(c, RAPID_FFT_ROWS, in->ny, g->px, 1,
                                 &g->rows_img, err)))
        return rc;
    /* the compact kernels' planes (the PSFs', the squared kernels'): rows
     * [0, nedge) and [py - nedge, py), the second block's first row a
     * multiple of 8 (aligned as the plane), the two apart */
    rows = g->py - (sg->py - sg->py / 2); /* where the last block may start */
    g->nedge = rows >= 0 ? g->py - (rows & ~7) : g->py;
    if (2 * g->nedge <= g->py &&
        (rc = rapid_fft_plan_get(c, RAPID_FFT_ROWS, g->nedge, g->px, 1,
                                 &g->rows_edge, err)))
        return rc;
    /* the small transforms through the shared cache: planning them costs
     * nothing, measuring them nothing worth it */
    return grid_plans(NULL, sg, err);
}

/* The windows of the measured model (estimate_corr): about CALIB_BOX px
 * each, their factors f_S, f_D to be measured (measure_factor). */
static int windows_make(const rapid_zogy_in *in, corr_map *c)
{
    int nw;

    c->gx = (int)lround((double)in->nx / CALIB_BOX);
    c->gy = (int)lround((double)in->ny / CALIB_BOX);
    c->gx = c->gx < 1 ? 1 : c->gx;
    c->gy = c->gy < 1 ? 1 : c->gy;
    c->wx = (double)in->nx / c->gx;
    c->wy = (double)in->ny / c->gy;
    nw = c->gx * c->gy;
    c->measured = 1;
    c->fs = malloc((size_t)nw * sizeof *c->fs);
    c->fd = malloc((size_t)nw * sizeof *c->fd);
    return c->fs && c->fd ? 0 : RAPID_E_NOMEM;
}

/* The pixels on which the reference's noise is measured (ok): data in
 * both images, and away (CALIB_GROW px) from the reference's significant
 * light (|D_R| above CALIB_LIGHT times its robust sigma over the image),
 * where the PSF-model error, not the noise, makes the residual. */
#define CALIB_LIGHT 3.0
#define CALIB_GROW 2

/* o[x] = the OR of r[x - CALIB_GROW .. x + CALIB_GROW] within the row
 * (values 0 or 1). */
static void grow_row(const unsigned char *r, unsigned char *o, int nx)
{
    int x0 = CALIB_GROW < nx ? CALIB_GROW : nx;
    int x1 = nx - CALIB_GROW > x0 ? nx - CALIB_GROW : x0, x, d;

    for (x = x0; x < x1; x++) { /* the whole reach within the row */
        unsigned char b = 0;
        for (d = -CALIB_GROW; d <= CALIB_GROW; d++)
            b |= r[x + d];
        o[x] = b;
    }
    for (x = 0; x < nx; x++) { /* the ends */
        unsigned char b = 0;
        if (x == x0)
            x = x1;
        if (x >= nx)
            break;
        for (d = -CALIB_GROW; d <= CALIB_GROW; d++)
            b |= x + d >= 0 && x + d < nx ? r[x + d] : 0;
        o[x] = b;
    }
}

static int calib_mask(const rapid_zogy_in *in, const float *dl,
                      unsigned char *ok)
{
    int nx = in->nx, ny = in->ny, x, y, d;
    size_t n = (size_t)nx * ny, i, m = 0, step = rapid_sample_step(n, SIGMA_SAMPLE);
    float *w = malloc((n / step + 1) * sizeof *w), med, sig = INFINITY;
    unsigned char *t = malloc(n);

    if (!w || !t) {
        free(w);
        free(t);
        return RAPID_E_NOMEM;
    }
    for (i = 0; i < n; i += step)
        if (isfinite(dl[i]))
            w[m++] = dl[i];
    if (m >= 100) {
        med = select_k(w, 0, (long)m - 1, (long)(m / 2));
        for (i = 0; i < m; i++)
            w[i] = fabsf(w[i] - med);
        sig = 1.4826f * select_k(w, 0, (long)m - 1, (long)(m / 2));
    }
    for (i = 0; i < n; i++) /* t: light (or no data), 0 or 1 */
        t[i] = (unsigned char)(!isfinite(in->n[i]) | !isfinite(in->r[i]) |
                               !isfinite(in->vn[i]) | !isfinite(in->vr[i]) |
                               !isfinite(dl[i]) |
                               (fabsf(dl[i]) > CALIB_LIGHT * sig));
    for (y = 0; y < ny; y++) /* grown along x into ok (1: bad) */
        grow_row(t + (size_t)y * nx, ok + (size_t)y * nx, nx);
    for (y = 0; y < ny; y++) { /* then along y, inverted */
        unsigned char *tr = t + (size_t)y * nx;
        memset(tr, 0, (size_t)nx);
        for (d = -CALIB_GROW; d <= CALIB_GROW; d++) {
            const unsigned char *orow;
            if (y + d < 0 || y + d >= ny)
                continue;
            orow = ok + (size_t)(y + d) * nx;
            for (x = 0; x < nx; x++)
                tr[x] |= orow[x];
        }
        for (x = 0; x < nx; x++)
            tr[x] ^= 1;
    }
    memcpy(ok, t, n);
    free(w);
    free(t);
    return 0;
}

/* The factor g for which x / sqrt(a + g b) has robust sigma 1 over the m
 * pixels (x, a, b) given: the median of x^2 / (a + g b) that of a chi^2
 * with one degree of freedom, CALIB_CHI2 (1.4826 MAD about 0: the
 * output's median is 0 to far better than its noise).  From g = 1, the
 * step that would make it so if the window's mean variances scaled with
 * that median (its fixed point is the answer), CALIB_ITER times; within
 * [0, CALIB_MAX]. */
#define CALIB_ITER 2
#define CALIB_MAX 10.0
#define CALIB_CHI2 0.45493642311957


static double solve_factor(const float (*p)[3], size_t m, float *z)
{
    double g = 1, ma = 0, mb = 0;
    size_t i, k;
    int it;

    for (i = 0; i < m; i++) {
        ma += p[i][1];
        mb += p[i][2];
    }
    if (!(mb > 0))
        return 1;
    for (it = 0; it < CALIB_ITER; it++) {
        double s2;
        for (i = k = 0; i < m; i++) {
            float v = p[i][1] + (float)g * p[i][2];
            if (v > 0)
                z[k++] = p[i][0] * p[i][0] / v;
        }
        if (k < 100)
            break;
        s2 = select_k(z, 0, (long)k - 1, (long)(k / 2)) / CALIB_CHI2;
        g = (s2 * (ma + g * mb) - ma) / mb;
        g = g < 0 ? 0 : g > CALIB_MAX ? CALIB_MAX : g;
    }
    return g;
}

/* a += f b * bn, f interpolated bilinearly between the windows' centres
 * as corr_factor does (its column weights made once).  Returns 0 or
 * RAPID_E_NOMEM. */
static int apply_factor(const corr_map *c, const float *f, int nx, int ny,
                        float *a, const float *b, size_t bs, float bn)
{
    int *c0 = malloc((size_t)nx * 2 * sizeof *c0), i, j;
    float *cu = malloc((size_t)nx * sizeof *cu), *row = NULL;

    if (!c0 || !cu || !(row = malloc((size_t)c->gx * sizeof *row))) {
        free(c0);
        free(cu);
        return RAPID_E_NOMEM;
    }
    for (i = 0; i < nx; i++) {
        double u = (i + 0.5) / c->wx - 0.5;
        int i0;
        u = u < 0 ? 0 : u > c->gx - 1 ? c->gx - 1 : u;
        i0 = (int)u;
        c0[2 * i] = i0;
        c0[2 * i + 1] = i0 + 1 < c->gx ? i0 + 1 : i0;
        cu[i] = (float)(u - i0);
    }
    for (j = 0; j < ny; j++) {
        double v = (j + 0.5) / c->wy - 0.5;
        int j0, j1, k;
        float *ar = a + (size_t)j * nx;
        const float *br = b + (size_t)j * bs;
        v = v < 0 ? 0 : v > c->gy - 1 ? c->gy - 1 : v;
        j0 = (int)v;
        j1 = j0 + 1 < c->gy ? j0 + 1 : j0;
        v -= j0;
        for (k = 0; k < c->gx; k++) /* the row of factors at this y */
            row[k] = (float)((1 - v) * f[j0 * c->gx + k] + v * f[j1 * c->gx + k]);
        for (i = 0; i < nx; i++) {
            float u = cu[i];
            float g = (1 - u) * row[c0[2 * i]] + u * row[c0[2 * i + 1]];
            ar[i] += g * br[i] * bn;
        }
    }
    free(c0);
    free(cu);
    free(row);
    return 0;
}

/* The reference's noise as it reaches an output, measured window by
 * window: x the output (S, or D F_D), a its variance from the science's
 * noise (and V_ast), b = V_R (x) k^2 from the reference's variance map
 * (row stride bs, times bn); f[w] the factor g of the window (solve_factor,
 * over at most CALIB_SAMPLE of its usable pixels ok, evenly spread; a
 * window with fewer than CALIB_MIN takes the median of the others', 1
 * without any), *fmed their median, and a += g b, g interpolated between
 * the windows' centres (corr_factor).  Returns 0 or RAPID_E_NOMEM. */
#define CALIB_SAMPLE 2048
#define CALIB_MIN 300

static int measure_factor(const rapid_zogy_in *in, const corr_map *c,
                          const float *x, double xs, float *a, const float *b,
                          size_t bs, float bn, const unsigned char *ok,
                          float *f, double *fmed)
{
    int nx = in->nx, ny = in->ny, wi, wj, i, j, nw = c->gx * c->gy, ng = 0;
    size_t cap = (size_t)(c->wx + 2) * (size_t)(c->wy + 2), m;
    float (*p)[3] = malloc(cap * sizeof *p), *z = malloc(cap * sizeof *z);
    float *gs = malloc((size_t)nw * sizeof *gs);

    if (!p || !z || !gs) {
        free(p);
        free(z);
        free(gs);
        return RAPID_E_NOMEM;
    }
    for (wj = 0; wj < c->gy; wj++)
        for (wi = 0; wi < c->gx; wi++) {
            int x0 = (int)(wi * c->wx), x1 = (int)((wi + 1) * c->wx);
            int y0 = (int)(wj * c->wy), y1 = (int)((wj + 1) * c->wy), st;
            x1 = wi == c->gx - 1 ? nx : x1;
            y1 = wj == c->gy - 1 ? ny : y1;
            st = (int)ceil(sqrt((double)(x1 - x0) * (y1 - y0) / CALIB_SAMPLE));
            st = st < 1 ? 1 : st;
            for (m = 0, j = y0; j < y1; j += st)
                for (i = x0; i < x1; i += st) {
                    size_t q = (size_t)j * nx + i;
                    float bv = b[(size_t)j * bs + i] * bn;
                    if (!ok[q] || !isfinite(x[q]) || !isfinite(a[q]) ||
                        !isfinite(bv))
                        continue;
                    p[m][0] = (float)(x[q] * xs);
                    p[m][1] = a[q];
                    p[m][2] = bv;
                    m++;
                }
            f[wj * c->gx + wi] = m >= CALIB_MIN ? (float)solve_factor(
                                                      (const float (*)[3])p, m, z)
                                                : NAN;
            if (m >= CALIB_MIN)
                gs[ng++] = f[wj * c->gx + wi];
        }
    {
        float med = ng > 0 ? rapid_select_f(gs, (size_t)ng, (size_t)ng / 2) : 1;
        *fmed = med;
        for (wi = 0; wi < nw; wi++)
            if (!isfinite(f[wi]))
                f[wi] = med;
    }
    if (apply_factor(c, f, nx, ny, a, b, bs, bn)) {
        free(p);
        free(z);
        free(gs);
        return RAPID_E_NOMEM;
    }
    free(p);
    free(z);
    free(gs);
    return 0;
}

/* The variance factors of the windows of c: for the kernels k_r (S) and
 * k_Dr (D), made on the small grid with the whole image's noise model,
 * sum |k^|^2 T_window / sum |k^|^2 over the frequencies. */
static void corr_factors(const grid *sg, const float complex *As,
                         const float complex *Bs, const noise_model *m,
                         corr_map *c)
{
    int nw = c->gx * c->gy, wi, i, j;
    double *ss = calloc((size_t)nw * 2, sizeof *ss), s0 = 0, d0 = 0;
    float tiny = (float)(1e-12 * (m->s2n + m->s2r));

    if (!ss) { /* the whole image's spectrum everywhere: still a model */
        for (wi = 0; wi < nw; wi++)
            c->fs[wi] = c->fd[wi] = 1;
        return;
    }
    for (j = 0; j < sg->py; j++)
        for (i = 0; i < sg->hx; i++) {
            size_t q = (size_t)j * sg->hx + i;
            float vn, vr, aa, bb, d2, ks, kd, wt;
            noise_at(sg, m, j, i, &vn, &vr);
            d2 = delta2(As[q], Bs[q], vn, vr, &aa, &bb);
            if (!(d2 > tiny))
                continue;
            wt = (i == 0 || 2 * i == sg->px) ? 1 : 2; /* the other half */
            ks = wt * bb * aa * aa / (d2 * d2);
            kd = wt * aa / d2;
            s0 += ks;
            d0 += kd;
            for (wi = 0; wi < nw; wi++) {
                float t = spectrum(c->r[wi], sg->cx[i], sg->sx[i], sg->cy[j],
                                   sg->sy[j]);
                ss[2 * wi] += ks * t;
                ss[2 * wi + 1] += kd * t;
            }
        }
    for (wi = 0; wi < nw; wi++) {
        c->fs[wi] = s0 > 0 ? (float)(ss[2 * wi] / s0) : 1;
        c->fd[wi] = d0 > 0 ? (float)(ss[2 * wi + 1] / d0) : 1;
    }
    free(ss);
}

static int check_in(const rapid_zogy_in *in, rapid_err *err)
{
    if (!in || in->nx < 1 || in->ny < 1 || !in->n || !in->r || !in->vn ||
        !in->vr || !in->pn || !in->pr)
        return rapid_fail(err, RAPID_E_ARG, "ZOGY: missing images, "
                          "variances or PSFs");
    if (in->npn < 3 || in->npn % 2 == 0 || in->npr < 3 || in->npr % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "ZOGY: the PSFs must be odd-sized "
                          "and at least 3 x 3 (got %d and %d)", in->npn,
                          in->npr);
    if (!isfinite(in->sx) || !isfinite(in->sy) || in->sx < 0 || in->sy < 0)
        return rapid_fail(err, RAPID_E_ARG, "ZOGY: the registration error must "
                          "be finite and not negative (got %g, %g)", in->sx,
                          in->sy);
    return 0;
}

/* The PSF's transform must have its full sum: a stamp of zeros or NaN is
 * no PSF. */
static int check_psf(const float *p, int n, const char *which, rapid_err *err)
{
    double s = 0;
    int i;

    for (i = 0; i < n * n; i++) {
        if (!isfinite(p[i]))
            return rapid_fail(err, RAPID_E_ARG, "ZOGY: the %s PSF has a value "
                              "that is not finite", which);
        s += p[i];
    }
    if (!(s > 0))
        return rapid_fail(err, RAPID_E_ARG, "ZOGY: the %s PSF does not sum to "
                          "a positive value (%g)", which, s);
    return 0;
}

static int noise(const rapid_zogy_in *in, double *sn, double *sr,
                 rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny;

    *sn = in->sigma_n;
    *sr = in->sigma_r;
    if (!(*sn > 0) && map_sigma(in->n, in->vn, n, sn))
        return rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
    if (!(*sr > 0) && map_sigma(in->r, in->vr, n, sr))
        return rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
    if (!(*sn > 0) || !(*sr > 0) || !isfinite(*sn) || !isfinite(*sr))
        return rapid_fail(err, RAPID_E_RANGE, "ZOGY: no usable background "
                          "noise (science %g, reference %g DN/s): too few "
                          "pixels with data", *sn, *sr);
    return 0;
}

/* R's transform in single precision rounds relative to the largest
 * values of each row in its first pass (along the rows), and those errors
 * stay on their rows: on the rows of the brightest stars (48,000 sigma_r
 * on the 4088^2 benchmark pair) D was 1.2e-3 sigma_D off the numpy
 * (float64) ZOGY.  So the part of R beyond R_CLIP sigma_r (its brightest
 * pixels, few) is taken out of y, and its rows' transforms are made
 * exactly, in double precision (a direct sum over those pixels, the
 * phases from a table), into e, one after the other (the half spectrum
 * of row rows[k] at row k); they are added to y's after y's row pass, and
 * the column pass (single precision, whose rounding no longer gathers on
 * a row) takes both.  Returns the number of such rows: 0 when nothing is
 * that bright or on no memory (y unchanged then: only less precise). */
#define R_CLIP 2000.0

static int exact_bright(const rapid_zogy_in *in, const grid *g, double sr,
                        float *y, float *e, int *rows)
{
    float complex *E = (float complex *)e;
    double lim = R_CLIP * sr;
    double complex *acc = NULL, *w = NULL;
    int i, j, k, nb = 0;

    if (!(lim > 0))
        return 0;
    for (j = 0; j < in->ny; j++) {
        float *yr = y + (size_t)j * g->stride;
        int n = 0;
        for (i = 0; i < in->nx; i++) {
            double v = yr[i], ex;
            int t;
            if (!(fabs(v) > lim))
                continue;
            if (!acc) { /* the first: exp(-2 pi i t / px) for every t */
                acc = malloc((size_t)g->hx * sizeof *acc);
                w = malloc((size_t)g->px * sizeof *w);
                if (!acc || !w) {
                    free(acc);
                    free(w);
                    return 0;
                }
                for (t = 0; t < g->px; t++) {
                    double ph = -2 * M_PI * t / g->px;
                    w[t] = cos(ph) + I * sin(ph);
                }
            }
            if (!n++)
                memset(acc, 0, (size_t)g->hx * sizeof *acc);
            ex = v - copysign(lim, v);
            yr[i] = (float)copysign(lim, v);
            for (k = 0, t = 0; k < g->hx; k++) { /* t = i k mod px */
                acc[k] += ex * w[t];
                t += i;
                t -= t >= g->px ? g->px : 0;
            }
        }
        if (n) {
            float complex *er = E + (size_t)nb * g->hx;
            for (k = 0; k < g->hx; k++)
                er[k] = (float complex)acc[k];
            rows[nb++] = j;
        }
    }
    free(acc);
    free(w);
    return nb;
}

/* Step 2: D, S and the astrometric variance into the outputs (unc holds
 * V_ast until step 3), and the reference's light as it enters D and S
 * (D_R into dl, S_R into sl).  x, y, e: three free planes; x holds
 * N - R (the top of the file says why).  S^ = conj(P_n^ P_r^) D^ F_D /
 * Delta and S_R^ = conj(P_n^ P_r^) D_R^ F_D / Delta: D^ into E, S^ into
 * X, D_R^ into Y and S_R^ into A (the full grid's PSFs are not needed
 * after this). */
static void step_d_s(const rapid_zogy_in *in, const grid *g,
                     float complex *A, const float complex *B,
                     const noise_model *m, double fd, const float *mf,
                     float *x, float *y, float *e, float *dl, float *sl,
                     rapid_zogy_out *out)
{
    float complex *X = (float complex *)x, *Y = (float complex *)y,
                  *E = (float complex *)e;
    float *a = (float *)A;
    float tiny = (float)(1e-12 * (m->s2n + m->s2r)), nrm = (float)g->norm;
    double sx2 = in->sx * in->sx, sy2 = in->sy * in->sy;
    int ix, j, k, nb, *rows;

    fill_pair(in, g, x, y, 0, NULL, NULL, mf, 0, 0, NULL, NULL);
    for (j = 0; j < in->ny; j++) { /* x = N - R */
        float *xr = x + (size_t)j * g->stride;
        const float *yr = y + (size_t)j * g->stride;
        for (ix = 0; ix < in->nx; ix++)
            xr[ix] -= yr[ix];
    }
    rapid_fft_r2c(g->fwd, x, X);
    /* y's transform: its rows (those below the image are zero), the
     * bright part's rows added, then the columns */
    rows = malloc((size_t)in->ny * sizeof *rows);
    nb = rows ? exact_bright(in, g, sqrt(m->s2r), y, e, rows) : 0;
    rapid_fft_r2c(g->rows_img, y, Y);
    for (k = 0; k < nb; k++) {
        float complex *yr = Y + (size_t)rows[k] * g->hx;
        const float complex *er = E + (size_t)k * g->hx;
        for (ix = 0; ix < g->hx; ix++)
            yr[ix] += er[ix];
    }
    free(rows);
    rapid_fft_c2c(g->cols, Y, Y);
    for (j = 0; j < g->py; j++)
        for (ix = 0; ix < g->hx; ix++) {
            size_t i = (size_t)j * g->hx + ix;
            float vn, vr, aa, bb, d2;
            noise_at(g, m, j, ix, &vn, &vr);
            d2 = delta2(A[i], B[i], vn, vr, &aa, &bb);
            if (d2 > tiny) {
                /* in real arithmetic, as C's complex products (re re -
                 * im im, re im + im re) and quotients by a real make them
                 * (without their checks for infinities: the values are
                 * finite): E = (B X + (B - A) Y) / q, X = conj(A B) E / q,
                 * Y = A Y / q, A = conj(A B) Y / q, q = sqrt(Delta^2) */
                float q = sqrtf(d2), ar = crealf(A[i]), ai = cimagf(A[i]);
                float br = crealf(B[i]), bi = cimagf(B[i]);
                float zr = crealf(X[i]), zi = cimagf(X[i]);
                float yr = crealf(Y[i]), yi = cimagf(Y[i]);
                float dr = br - ar, di = bi - ai;
                float cr = ar * br - ai * bi, ci = -(ar * bi + ai * br);
                float er = (br * zr - bi * zi + (dr * yr - di * yi)) / q;
                float ei = (br * zi + bi * zr + (dr * yi + di * yr)) / q;
                float ur = (ar * yr - ai * yi) / q, ui = (ar * yi + ai * yr) / q;
                E[i] = CMPLXF(er, ei);
                X[i] = CMPLXF((cr * er - ci * ei) / q, (cr * ei + ci * er) / q);
                Y[i] = CMPLXF(ur, ui);
                A[i] = CMPLXF((cr * ur - ci * ui) / q, (cr * ui + ci * ur) / q);
            } else {
                E[i] = X[i] = Y[i] = A[i] = 0;
            }
        }
    rapid_fft_c2r(g->bwd, E, e);
    for (j = 0; j < in->ny; j++) {
        const float *er = e + (size_t)j * g->stride;
        float *dr = out->d + (size_t)j * in->nx;
        for (ix = 0; ix < in->nx; ix++)
            dr[ix] = (float)(er[ix] * nrm / fd);
    }
    rapid_fft_c2r(g->bwd, X, x);
    rapid_fft_c2r(g->bwd, Y, y);
    rapid_fft_c2r(g->bwd, A, a);
    for (j = 0; j < in->ny; j++) {
        const float *xr = x + (size_t)j * g->stride, *yr = a + (size_t)j * g->stride;
        const float *lr = y + (size_t)j * g->stride;
        /* rows above and below (the padding is there beyond the image) */
        const float *xu = x + (size_t)((j + 1) % g->py) * g->stride;
        const float *xd = x + (size_t)((j - 1 + g->py) % g->py) * g->stride;
        const float *yu = a + (size_t)((j + 1) % g->py) * g->stride;
        const float *yd = a + (size_t)((j - 1 + g->py) % g->py) * g->stride;
        float *sr = out->scorr + (size_t)j * in->nx;
        float *vr = out->unc + (size_t)j * in->nx;
        float *dlr = dl + (size_t)j * in->nx, *slr = sl + (size_t)j * in->nx;
        for (ix = 0; ix < in->nx; ix++) {
            /* the columns left and right (px > nx: ix + 1 is in the
             * grid, and column px - 1 is left of column 0) */
            int l = ix > 0 ? ix - 1 : g->px - 1, r = ix + 1;
            /* S_N = S + S_R */
            double gxr = 0.5 * (yr[r] - yr[l]) * nrm, gyr = 0.5 * (yu[ix] - yd[ix]) * nrm;
            double gxn = 0.5 * (xr[r] - xr[l]) * nrm + gxr;
            double gyn = 0.5 * (xu[ix] - xd[ix]) * nrm + gyr;
            sr[ix] = xr[ix] * nrm;
            slr[ix] = yr[ix] * nrm;
            dlr[ix] = (float)(lr[ix] * nrm / fd);
            vr[ix] = (float)(sx2 * (gxn * gxn + gxr * gxr) +
                             sy2 * (gyn * gyn + gyr * gyr));
        }
    }
}

/* One kernel's share of a variance: V (x) k^2 (V^ in G; the kernel made
 * on the small grid from As, Bs) to real space in acc (not normalised). */
static void variance_one(const grid *g, const grid *sg,
                         const float complex *As, const float complex *Bs,
                         const float complex *G, kernel k1,
                         const noise_model *m, float *ks, float *K, float *acc)
{
    kernel_hat(sg, As, Bs, k1, m, 0, (float complex *)ks);
    kernel_square_hat(g, sg, ks, K);
    mul_acc(g, G, (const float complex *)K, (float complex *)acc, 0);
    rapid_fft_c2r(g->bwd, (float complex *)acc, acc);
}

/* Step 3: the noise's variances of S (into vs, V_ast included) and D
 * (sigma_D into out->unc), and P_D, but for the variance maps' outliers
 * (into ex: the science's, the reference's for S and for D; VAR_CLIP,
 * the reference's with its factor for S and for D).  As, Bs: the PSFs'
 * transforms on the small grid; gp, hp, k, acc: four free full planes, ks
 * a small one.
 * With the reference's noise measured (c->measured), each output's two
 * shares are made apart and the reference's scaled by the factor
 * measure_factor finds on the output itself (ok: the pixels it uses);
 * else the reference's variance map carries the given correlations'
 * factors.  Returns 0 or RAPID_E_NOMEM. */
static int step_variance(const rapid_zogy_in *in, const grid *g,
                         const grid *sg, const float complex *As,
                         const float complex *Bs, const noise_model *m,
                         corr_map *c, double fd, float *gp, float *hp,
                         float *k, float *acc, float *ks, float *vs,
                         const unsigned char *ok, excess ex[3],
                         rapid_zogy_out *out)
{
    float complex *G = (float complex *)gp, *H = (float complex *)hp;
    float nrm = (float)g->norm;
    int i, j, h = out->npd / 2, meas = c->measured, rc;
    size_t n = (size_t)in->nx * in->ny, q;
    double sum = 0;

    fill_pair(in, g, gp, hp, 1, c, meas ? NULL : c->fs, NULL,
              VAR_CLIP * m->s2n, VAR_CLIP * m->s2r, &ex[0], &ex[1]);
    rapid_fft_r2c(g->fwd, gp, G);
    rapid_fft_r2c(g->fwd, hp, H);
    if (meas)
        variance_one(g, sg, As, Bs, G, K_N, m, ks, k, acc);
    else
        variance_map(g, sg, As, Bs, G, H, K_N, K_R, m, ks, k, acc);
    for (j = 0; j < in->ny; j++) {
        const float *ar = acc + (size_t)j * g->stride;
        const float *vr = out->unc + (size_t)j * in->nx;
        float *vsr = vs + (size_t)j * in->nx;
        for (i = 0; i < in->nx; i++)
            vsr[i] = (float)(ar[i] * nrm + vr[i]);
    }
    if (meas) {
        variance_one(g, sg, As, Bs, H, K_R, m, ks, k, acc);
        if ((rc = measure_factor(in, c, out->scorr, 1, vs, acc, g->stride,
                                 nrm, ok, c->fs, &out->ref_fs)))
            return rc;
        /* D's shares: the science's, then the reference's (H is still
         * the reference's variance map's transform) */
        variance_one(g, sg, As, Bs, G, K_DN, m, ks, k, acc);
        for (j = 0; j < in->ny; j++)
            for (i = 0; i < in->nx; i++)
                out->unc[(size_t)j * in->nx + i] =
                    acc[(size_t)j * g->stride + i] * nrm;
        variance_one(g, sg, As, Bs, H, K_DR, m, ks, k, acc);
        if ((rc = measure_factor(in, c, out->d, fd, out->unc, acc, g->stride,
                                 nrm, ok, c->fd, &out->ref_fd)) ||
            (rc = excess_factors(ex, c, in->nx)))
            return rc;
    } else {
        /* the reference's for D */
        fill_pair(in, g, NULL, hp, 1, c, c->fd, NULL, 0, VAR_CLIP * m->s2r,
                  NULL, &ex[2]);
        rapid_fft_r2c(g->fwd, hp, H);
        variance_map(g, sg, As, Bs, G, H, K_DN, K_DR, m, ks, k, acc);
        for (j = 0; j < in->ny; j++)
            for (i = 0; i < in->nx; i++)
                out->unc[(size_t)j * in->nx + i] =
                    acc[(size_t)j * g->stride + i] * nrm;
    }
    for (q = 0; q < n; q++) {
        double v = out->unc[q];
        out->unc[q] = v > 0 ? (float)(sqrt(v) / fd) : NAN;
        vs[q] = vs[q] > 0 ? vs[q] : NAN;
    }
    /* P_D, cut to npd x npd about the origin of the small grid */
    kernel_hat(sg, As, Bs, K_PD, m, fd, (float complex *)ks);
    rapid_fft_c2r(sg->bwd, (float complex *)ks, ks);
    for (j = 0; j < out->npd; j++)
        for (i = 0; i < out->npd; i++) {
            double v = ks[(size_t)((j - h + sg->py) % sg->py) * sg->stride +
                          (size_t)((i - h + sg->px) % sg->px)] * sg->norm;
            out->pd[(size_t)j * out->npd + i] = (float)v;
            sum += v;
        }
    for (i = 0; i < out->npd * out->npd; i++)
        out->pd[i] = (float)(out->pd[i] / sum);
    return 0;
}

/* A kernel (which) in real space on the small grid, squared, into k2
 * (sg->px * sg->py floats, origin at 0, periodic); ks: a small plane. */
static void kernel_square_real(const grid *sg, const float complex *As,
                               const float complex *Bs, kernel which,
                               const noise_model *m, float *ks, float *k2)
{
    int i, j;
    float nrm = (float)sg->norm;

    kernel_hat(sg, As, Bs, which, m, 0, (float complex *)ks);
    rapid_fft_c2r(sg->bwd, (float complex *)ks, ks);
    for (j = 0; j < sg->py; j++)
        for (i = 0; i < sg->px; i++) {
            float v = ks[(size_t)j * sg->stride + i] * nrm;
            k2[(size_t)j * sg->px + i] = v * v;
        }
}

/* The squared kernel k2's taps worth keeping (above 1e-9 of its largest:
 * a saturated core's error, 10^7 times the noise's variance, still
 * counts there): offsets and values. */
typedef struct tap {
    int dx, dy;
    float k;
} tap;

static int cmp_tap(const void *a, const void *b)
{
    float x = ((const tap *)a)->k, y = ((const tap *)b)->k;

    return (x < y) - (x > y); /* largest first */
}

static int kernel_taps(const grid *sg, const float *k2, float rel, tap **t,
                       int *nt)
{
    int a, b, m = 0;
    float kmax = 0;
    size_t i;

    for (i = 0; i < (size_t)sg->px * sg->py; i++)
        kmax = k2[i] > kmax ? k2[i] : kmax;
    if (!(*t = malloc((size_t)sg->px * sg->py * sizeof **t)))
        return RAPID_E_NOMEM;
    for (b = 0; b < sg->py; b++)
        for (a = 0; a < sg->px; a++) {
            float k = k2[(size_t)b * sg->px + a];
            if (k > rel * kmax) {
                (*t)[m].dx = a < sg->px / 2 ? a : a - sg->px;
                (*t)[m].dy = b < sg->py / 2 ? b : b - sg->py;
                (*t)[m].k = k;
                m++;
            }
        }
    qsort(*t, (size_t)m, sizeof **t, cmp_tap);
    *nt = m;
    return 0;
}

/* The pixels' errors p[0..np) spread by the kernel's taps (largest
 * first) into var (times scale), directly in real space: the pixels are
 * few, and a saturated core's variance is too large next to the noise
 * for single-precision transforms to carry both.  A pixel's spread stops
 * at the taps where it adds less than floor (1e-5 of the noise's
 * typical variance). */
static void spread_var(int nx, int ny, const tap *t, int nt,
                       const pix_var *p, size_t np, double scale,
                       double floor, float *var)
{
    size_t i;
    int k;

    for (i = 0; i < np; i++) {
        int x = (int)(p[i].q % (size_t)nx), y = (int)(p[i].q / (size_t)nx);
        double w = p[i].w * scale;
        for (k = 0; k < nt && w * t[k].k >= floor; k++) {
            int xx = x + t[k].dx, yy = y + t[k].dy;
            if (xx >= 0 && yy >= 0 && xx < nx && yy < ny)
                var[(size_t)yy * nx + xx] += (float)(w * t[k].k);
        }
    }
}

/* The pixels' own errors beyond the noise, per image (allocated lists):
 * a filled pixel's (fill_var of the image that fills it), where its
 * light is significant (|value| > 3 sigma of the image that has it); 0
 * where it is an extended source's (ext, when given: model_light). */
static int pixel_errors(const rapid_zogy_in *in, const fill_err *fe_n,
                        const fill_err *fe_r, const float *mf,
                        const unsigned char *ext, pix_var **pn,
                        size_t *nn, pix_var **pr, size_t *nr)
{
    int nx = in->nx, ny = in->ny, x, y, pass;

    *pn = *pr = NULL;
    for (pass = 0; pass < 2; pass++) { /* count, then fill */
        *nn = *nr = 0;
        for (y = 0; y < ny; y++)
            for (x = 0; x < nx; x++) {
                size_t q = (size_t)y * nx + x;
                int fn = isfinite(in->n[q]), fr = isfinite(in->r[q]);
                if (!fn && fr && isfinite(in->vr[q]) &&
                    fabs(in->r[q]) > 3 * sqrt(in->vr[q])) {
                    if (pass)
                        (*pn)[*nn] = (pix_var){q, ext && ext[q] ? 0 : fill_var(fe_n, mf[q], in->r, nx, ny, x, y)};
                    (*nn)++;
                }
                if (!fr && fn && isfinite(in->vn[q]) &&
                    fabs(in->n[q]) > 3 * sqrt(in->vn[q])) {
                    if (pass)
                        (*pr)[*nr] = (pix_var){q, ext && ext[q] ? 0 : fill_var(fe_r, mf[q], in->n, nx, ny, x, y)};
                    (*nr)++;
                }
            }
        if (!pass) {
            *pn = malloc((*nn ? *nn : 1) * sizeof **pn);
            *pr = malloc((*nr ? *nr : 1) * sizeof **pr);
            if (!*pn || !*pr) {
                free(*pn);
                free(*pr);
                *pn = *pr = NULL;
                return RAPID_E_NOMEM;
            }
        }
    }
    return 0;
}

/* The median of the finite values of v (a sample of at most
 * SIGMA_SAMPLE), 0 with none. */
static int median_finite(const float *v, size_t n, double *med)
{
    size_t step = rapid_sample_step(n, SIGMA_SAMPLE), i, m = 0;
    float *w = malloc((n / step + 1) * sizeof *w);

    *med = 0;
    if (!w)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step)
        if (isfinite(v[i]))
            w[m++] = v[i];
    if (m)
        *med = select_k(w, 0, (long)m - 1, (long)(m / 2));
    free(w);
    return 0;
}

/* The variance maps' outliers (ex: the science's through k_n, k_Dn; the
 * reference's, with its window factor for S and for D, through k_r,
 * k_Dr) spread into vs and sigma_D^2 (out->unc), floors fs, fdd as
 * fill_variance's.  Their variances reach millions of times the typical
 * one, so the kernels are made on a grid four times the small one's
 * width (the squared kernels' tails there: below 1e-13 of their peaks),
 * and spread down to taps of 1e-14 of the largest. */
#define SPREAD_FLOOR 1e-7 /* of the typical variance: where a pixel's
                            * spread stops (the filled cores' pixels are
                            * hundreds, their sum counts) */

static int excess_variance(const rapid_zogy_in *in, const grid *sg,
                           const noise_model *m, const excess ex[3],
                           const pix_var *pn, size_t nn, const pix_var *pr,
                           size_t nr, double fd, double fs, double fdd,
                           float *vs, rapid_zogy_out *out)
{
    static const kernel kk[4] = {K_N, K_R, K_DN, K_DR};
    grid lg;
    float *al = NULL, *bl = NULL, *kl = NULL, *k2 = NULL;
    tap *t = NULL;
    int j, nt, rc = 0;
    rapid_err e2 = RAPID_ERR_INIT;

    memset(&lg, 0, sizeof lg);
    lg.px = lg.py = rapid_fft_good_size(4 * sg->px);
    if (grid_plans(NULL, &lg, &e2) || !(al = plane_new(&lg)) ||
        !(bl = plane_new(&lg)) || !(kl = plane_new(&lg)) ||
        !(k2 = malloc((size_t)lg.px * lg.py * sizeof *k2)) ||
        psf_to_plane(&lg, in->pn, in->npn, al) ||
        psf_to_plane(&lg, in->pr, in->npr, bl)) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    for (j = 0; j < 4; j++) {
        int sci = kk[j] == K_N || kk[j] == K_DN, dd = kk[j] == K_DN || kk[j] == K_DR;
        const excess *e = sci ? &ex[0] : dd ? &ex[2] : &ex[1];
        if (!e->n && !(sci ? nn : nr))
            continue;
        kernel_square_real(&lg, (float complex *)al, (float complex *)bl,
                           kk[j], m, kl, k2);
        if ((rc = kernel_taps(&lg, k2, 1e-14f, &t, &nt)))
            goto cleanup;
        spread_var(in->nx, in->ny, t, nt, e->p, e->n, dd ? 1 / (fd * fd) : 1,
                   SPREAD_FLOOR * (dd ? fdd : fs), dd ? out->unc : vs);
        spread_var(in->nx, in->ny, t, nt, sci ? pn : pr, sci ? nn : nr,
                   dd ? 1 / (fd * fd) : 1, SPREAD_FLOOR * (dd ? fdd : fs),
                   dd ? out->unc : vs);
        free(t);
        t = NULL;
    }
cleanup:
    plane_free(al);
    plane_free(bl);
    plane_free(kl);
    free(k2);
    free(t);
    grid_release(&lg);
    return rc;
}

/* The pixels' own errors (pixel_errors) added to sigma_D^2 (out->unc
 * holds the variance here) and to S's variance vs: the science's through
 * k_Dn and k_n, the reference's through k_Dr and k_r. */
static int fill_variance(const rapid_zogy_in *in, const grid *sg,
                         const float complex *As, const float complex *Bs,
                         const noise_model *m, const fill_err *fe_n,
                         const fill_err *fe_r, const float *mf,
                         const unsigned char *ext, double fd,
                         const excess ex[3], float *ks, float *vs,
                         rapid_zogy_out *out, rapid_err *err)
{
    pix_var *pn = NULL, *pr = NULL;
    size_t nn = 0, nr = 0;
    double fs = 0, fdd = 0;
    int rc = 0;

    (void)As;
    (void)Bs;
    (void)ks;
    if (ex[0].nomem || ex[1].nomem || ex[2].nomem) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    if (fe_n->eps == 0 && fe_n->pos == 0 && fe_r->eps == 0 &&
        fe_r->pos == 0 && !ex[0].n && !ex[1].n && !ex[2].n)
        return 0;
    /* the floors: 1e-5 of the typical noise variance of S and D */
    if ((rc = median_finite(vs, (size_t)in->nx * in->ny, &fs)) ||
        (rc = median_finite(out->unc, (size_t)in->nx * in->ny, &fdd)))
        goto cleanup;
    if ((rc = pixel_errors(in, fe_n, fe_r, mf, ext, &pn, &nn, &pr, &nr)))
        goto cleanup;
    if (nn == 0 && nr == 0 && !ex[0].n && !ex[1].n && !ex[2].n)
        goto cleanup;
    rc = excess_variance(in, sg, m, ex, pn, nn, pr, nr, fd, fs, fdd, vs, out);
cleanup:
    free(pn);
    free(pr);
    return rc ? rapid_fail(err, rc, "ZOGY: out of memory") : 0;
}

/* One image (src, PSF transform Ss) matched to the other's PSF (Ts),
 * M = K (x) src with K^ = Ts^ conj(Ss^) / (|Ss^|^2 + MATCH_REG): Ts^ /
 * Ss^ where the source's PSF carries the frequency, damped where it does
 * not (a sharper target PSF is a regularised deconvolution).  Into mf at
 * the pixels marked in want (the others untouched): what the other image
 * would hold there but for its noise and the PSF models' error.  A pixel
 * whose kernel reaches more than MATCH_MISS of its weight (sum |K|) into
 * pixels without data is NaN.  Made directly in real space over the
 * kernel's taps above MATCH_TAP of its largest (the pixels wanted are
 * few: holes, stars, the light in the reference's no-data areas); ks: a
 * small plane. */
#define MATCH_REG 1e-3
#define MATCH_TAP 1e-3
#define MATCH_MISS 0.01

static int matched(const rapid_zogy_in *in, const grid *sg,
                   const float complex *Ts, const float complex *Ss,
                   const float *src, float *ks, const unsigned char *want,
                   float *mf)
{
    float complex *K = (float complex *)ks;
    size_t q, n = (size_t)in->nx * in->ny;
    tap *t;
    int i, j, nt = 0, k;
    float kmax = 0;
    double wsum = 0;

    for (j = 0; j < sg->py; j++)
        for (i = 0; i < sg->hx; i++) {
            size_t p = (size_t)j * sg->hx + i;
            float ss = crealf(Ss[p]) * crealf(Ss[p]) + cimagf(Ss[p]) * cimagf(Ss[p]);
            K[p] = Ts[p] * conjf(Ss[p]) / (ss + (float)MATCH_REG);
        }
    rapid_fft_c2r(sg->bwd, K, ks);
    for (j = 0; j < sg->py; j++)
        for (i = 0; i < sg->px; i++)
            kmax = fmaxf(kmax, fabsf(ks[(size_t)j * sg->stride + i]));
    if (!(t = malloc((size_t)sg->px * sg->py * sizeof *t)))
        return RAPID_E_NOMEM;
    for (j = 0; j < sg->py; j++)
        for (i = 0; i < sg->px; i++) {
            float v = ks[(size_t)j * sg->stride + i];
            if (fabsf(v) > (float)MATCH_TAP * kmax) {
                t[nt].dx = i < sg->px / 2 ? i : i - sg->px;
                t[nt].dy = j < sg->py / 2 ? j : j - sg->py;
                t[nt].k = (float)(v * sg->norm);
                wsum += fabs(t[nt].k);
                nt++;
            }
        }
    for (q = 0; q < n; q++) {
        int x = (int)(q % (size_t)in->nx), y = (int)(q / (size_t)in->nx);
        double sum = 0, miss = 0;
        if (!want[q])
            continue;
        for (k = 0; k < nt; k++) {
            int xx = x + t[k].dx, yy = y + t[k].dy;
            float r = xx >= 0 && yy >= 0 && xx < in->nx && yy < in->ny
                          ? src[(size_t)yy * in->nx + xx] : NAN;
            if (isfinite(r))
                sum += (double)t[k].k * r;
            else
                miss += fabs(t[k].k);
        }
        mf[q] = miss <= MATCH_MISS * wsum ? (float)sum : NAN;
    }
    free(t);
    return 0;
}

/* want = the 5 x 5 pixels about each star (its 3 x 3 and their
 * gradients). */
static void mark_stars(const rapid_zogy_in *in, const size_t *idx, int ns,
                       unsigned char *want)
{
    int k, a, b;

    memset(want, 0, (size_t)in->nx * in->ny);
    for (k = 0; k < ns; k++) {
        int x = (int)(idx[k] % (size_t)in->nx), y = (int)(idx[k] / (size_t)in->nx);
        for (b = -2; b <= 2; b++)
            for (a = -2; a <= 2; a++)
                if (x + a >= 0 && y + b >= 0 && x + a < in->nx && y + b < in->ny)
                    want[(size_t)(y + b) * in->nx + x + a] = 1;
    }
}

/* The fills and their errors (rapid/diff.h).  Each image's no-data
 * pixels are filled with the other image matched to its PSF (matched):
 * the science's holes with M_R (the reference matched to P_n), the
 * reference's with M_N (the science matched to P_r) where the science's
 * light is significant (|N| > 3 sigma on the pixel or a neighbour: the
 * fill is N itself elsewhere, sky whose matching changes nothing but its
 * noise), or the other image itself where the kernel reaches no data;
 * into mf (NaN where no fill).  Measured with the model error (eps_d or
 * eps_s < 0) at the peaks of R: fe_n, the science's fill's error, from
 * N - M_R with the light M_R; fe_r, the reference's, from R - M_N with
 * the light M_N; otherwise none.  Scratch d, v: nx * ny floats each. */
static int fill_error(const rapid_zogy_in *in, const grid *sg,
                      const float complex *As, const float complex *Bs,
                      float *ks, float *mf, float *d, float *v,
                      fill_err *fe_n, fill_err *fe_r, rapid_zogy_out *out,
                      rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny, i, *idx = NULL;
    unsigned char *ok = NULL, *want = NULL;
    int ns = 0, rc = 0, x, y, a, b, nu = 0, pass;

    fe_n->eps = fe_n->pos = fe_r->eps = fe_r->pos = 0;
    out->eps_fill = out->pos_fill = 0;
    out->eps_fill_ref = out->pos_fill_ref = 0;
    out->nfill = 0;
    if (!(ok = malloc(n)) || !(want = calloc(n, 1))) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    if (in->eps_d < 0 || in->eps_s < 0) {
        for (i = 0; i < n; i++) {
            v[i] = in->vn[i] + in->vr[i];
            ok[i] = isfinite(in->n[i]) && isfinite(in->r[i]) &&
                    isfinite(v[i]) && v[i] > 0;
        }
        if ((rc = modelerr_stars(in->nx, in->ny, in->r, v, ok, NULL, NULL, 0,
                                 &idx, &ns)))
            goto cleanup;
        mark_stars(in, idx, ns, want);
        for (pass = 0; pass < 2; pass++) { /* the science's fill, the reference's */
            for (i = 0; i < n; i++)
                mf[i] = NAN;
            if ((rc = matched(in, sg, pass ? Bs : As, pass ? As : Bs,
                              pass ? in->n : in->r, ks, want, mf)))
                goto cleanup;
            for (i = 0; i < n; i++)
                d[i] = (pass ? in->r[i] : in->n[i]) - mf[i];
            if ((rc = modelerr_fit(in->nx, in->ny, d, v, mf, idx, ns,
                                   pass ? &fe_r->eps : &fe_n->eps,
                                   pass ? &fe_r->pos : &fe_n->pos,
                                   pass ? &nu : &out->nfill)))
                goto cleanup;
        }
    }
    out->eps_fill = fe_n->eps;
    out->pos_fill = fe_n->pos;
    out->eps_fill_ref = fe_r->eps;
    out->pos_fill_ref = fe_r->pos;
    /* the fills: the science's holes, then the reference's */
    for (i = 0; i < n; i++)
        mf[i] = NAN;
    for (pass = 0; pass < 2; pass++) {
        const float *hole = pass ? in->r : in->n, *src = pass ? in->n : in->r;
        const float *vsrc = pass ? in->vn : in->vr;
        memset(want, 0, n);
        for (y = 0; y < in->ny; y++)
            for (x = 0; x < in->nx; x++) {
                size_t q = (size_t)y * in->nx + x;
                int lit = !pass;
                if (isfinite(hole[q]) || !isfinite(src[q]))
                    continue;
                for (b = -1; b <= 1 && !lit; b++)
                    for (a = -1; a <= 1 && !lit; a++) {
                        size_t o;
                        if (x + a < 0 || y + b < 0 || x + a >= in->nx ||
                            y + b >= in->ny)
                            continue;
                        o = (size_t)(y + b) * in->nx + x + a;
                        lit = isfinite(src[o]) && isfinite(vsrc[o]) &&
                              fabs(src[o]) > 3 * sqrt(vsrc[o]);
                    }
                want[q] = (unsigned char)lit;
            }
        if ((rc = matched(in, sg, pass ? Bs : As, pass ? As : Bs, src, ks,
                          want, mf)))
            goto cleanup;
        for (i = 0; i < n; i++) /* where M cannot be made, the image itself */
            if (want[i] && !isfinite(mf[i]))
                mf[i] = src[i];
    }
cleanup:
    free(ok);
    free(want);
    free(idx);
    return rc ? rapid_fail(err, rc, "ZOGY: out of memory") : 0;
}

/* Whether the PSF-model error term is wanted (given or measured). */
static int model_error_on(const rapid_zogy_in *in)
{
    return in->eps_d != 0 || in->pos_d > 0 || in->eps_s != 0 || in->pos_s > 0;
}

/* The term's light (rapid/diff.h): D_R (dl) and S_R (sl) with their
 * noise shrunk out, and the extended sources' light taken out of both
 * (modelerr_point_light, on D_R; their pixels marked in ext, which the
 * fills' errors leave out too).  out->unc holds sigma_D^2; scratch: nx
 * * ny 32-bit words. */
static int model_light(const rapid_zogy_in *in, float *dl, float *sl,
                       void *scratch, unsigned char *ext,
                       rapid_zogy_out *out, rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny;
    int rc;

    if ((rc = modelerr_denoise(dl, n, &out->noise_ld)) ||
        (rc = modelerr_denoise(sl, n, &out->noise_ls)) ||
        (rc = modelerr_point_light(in->nx, in->ny, dl, sl, out->unc, scratch,
                                   ext, &out->width2_ld, &out->nextended)))
        return rapid_fail(err, rc, "ZOGY: out of memory");
    return 0;
}

/* The model error's shares eps_d, eps_s (rapid/diff.h): given, or
 * measured at the stars from D (out->d, out->unc the noise's sigma_D^2,
 * dl = D_R's point sources) and S (out->scorr still S, vs its noise
 * variance, sl = S_R's). */
static int model_error(const rapid_zogy_in *in, const float *dl,
                       const float *sl, const float *vs, rapid_zogy_out *out,
                       rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny, i, *idx = NULL;
    unsigned char *ok = NULL;
    int ns = 0, nd = 0, nsu = 0, rc = 0;

    out->eps_d = in->eps_d >= 0 ? in->eps_d : 0;
    out->eps_s = in->eps_s >= 0 ? in->eps_s : 0;
    out->pos_d = in->eps_d >= 0 && in->pos_d >= 0 ? in->pos_d : 0;
    out->pos_s = in->eps_s >= 0 && in->pos_s >= 0 ? in->pos_s : 0;
    out->neps = 0;
    if (!(in->eps_d < 0) && !(in->eps_s < 0))
        goto cleanup;
    if (!(ok = malloc(n))) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    for (i = 0; i < n; i++)
        ok[i] = isfinite(out->d[i]) && isfinite(out->unc[i]);
    if ((rc = modelerr_stars(in->nx, in->ny, dl, out->unc, ok,
                             in->nstars > 0 ? in->star_x : NULL,
                             in->nstars > 0 ? in->star_y : NULL, in->nstars,
                             &idx, &ns)))
        goto cleanup;
    if (in->eps_d < 0 &&
        (rc = modelerr_fit(in->nx, in->ny, out->d, out->unc, dl, idx, ns,
                           &out->eps_d, &out->pos_d, &nd)))
        goto cleanup;
    if (in->eps_s < 0 &&
        (rc = modelerr_fit(in->nx, in->ny, out->scorr, vs, sl, idx, ns,
                           &out->eps_s, &out->pos_s, &nsu)))
        goto cleanup;
    out->neps = nd > nsu ? nd : nsu;
cleanup:
    free(ok);
    free(idx);
    return rc ? rapid_fail(err, rc, "ZOGY: out of memory") : 0;
}

/* RAPID_E_INTERRUPTED if the caller asked to stop (after step what). */
static int zogy_interrupted(const rapid_zogy_opts *o, const char *what,
                            rapid_err *err)
{
    return o->stop && *o->stop ? rapid_fail(err, RAPID_E_INTERRUPTED, "ZOGY: "
                                            "interrupted after %s", what)
                               : 0;
}

int rapid_zogy(const rapid_zogy_in *in, const rapid_zogy_opts *o,
               rapid_zogy_out *out, rapid_err *err)
{
    rapid_zogy_opts def;
    rapid_fft_cache *own = NULL, *c;
    grid g, sg;
    noise_model m;
    corr_map cm;
    float *pl[NPLANES] = {NULL}, *as = NULL, *bs = NULL, *ks = NULL;
    float *dl = NULL, *sl = NULL, *vs = NULL, *mf = NULL;
    unsigned char *ok = NULL, *ext = NULL;
    fill_err fe_n = {0, 0}, fe_r = {0, 0};
    excess ex[3];
    double sn, sr, fd;
    size_t i, n;
    int rc, k;

    memset(out, 0, sizeof *out);
    memset(ex, 0, sizeof ex);
    memset(&g, 0, sizeof g);
    memset(&sg, 0, sizeof sg);
    if ((rc = check_in(in, err)) ||
        (rc = check_psf(in->pn, in->npn, "science", err)) ||
        (rc = check_psf(in->pr, in->npr, "reference", err)) ||
        (rc = noise(in, &sn, &sr, err)))
        return rc;
    if (!o) {
        rapid_zogy_opts_init(&def);
        o = &def;
    }
    memset(&m, 0, sizeof m);
    memset(&cm, 0, sizeof cm);
    m.s2n = sn * sn;
    m.s2r = sr * sr;
    if (in->estimate_corr) {
        /* Delta white (the paper's): a spectrum measured on the images
         * would make D at a bright star depend on every pixel the
         * measurement used (a hole anywhere would move it); the
         * reference's correlated noise is measured in the variances
         * (measure_factor) */
        if (windows_make(in, &cm)) {
            corr_map_release(&cm);
            return rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
        }
    } else {
        memcpy(m.rn, in->corr_n, sizeof m.rn);
        memcpy(m.rr, in->corr_r, sizeof m.rr);
        cm.gx = cm.gy = 1; /* the reference's correlation the same everywhere */
        cm.wx = in->nx;
        cm.wy = in->ny;
        cm.r = malloc(sizeof *cm.r);
        cm.fs = malloc(sizeof *cm.fs);
        cm.fd = malloc(sizeof *cm.fd);
        if (!cm.r || !cm.fs || !cm.fd) {
            corr_map_release(&cm);
            return rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
        }
        memcpy(cm.r[0], in->corr_r, sizeof cm.r[0]);
    }
    for (k = 0, m.white = 1; k < 4; k++) {
        if (!isfinite(m.rn[k]) || !isfinite(m.rr[k]) || fabs(m.rn[k]) >= 1 ||
            fabs(m.rr[k]) >= 1) {
            corr_map_release(&cm);
            return rapid_fail(err, RAPID_E_ARG, "ZOGY: noise correlations must "
                              "lie strictly within +-1 (got %g, %g at lag %d)",
                              m.rn[k], m.rr[k], k);
        }
        if (m.rn[k] != 0 || m.rr[k] != 0)
            m.white = 0;
    }
    if (!(c = o->fft) &&
        !(c = own = rapid_fft_cache_new(RAPID_FFT_ESTIMATE, o->nthreads))) {
        corr_map_release(&cm);
        return rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
    }
    n = (size_t)in->nx * in->ny;
    out->npd = in->npn > in->npr ? in->npn : in->npr;
    out->sigma_n = sn;
    out->sigma_r = sr;
    memcpy(out->corr_n, m.rn, sizeof m.rn);
    memcpy(out->corr_r, m.rr, sizeof m.rr);
    {
        double tn = 1 + 2 * (m.rn[0] + m.rn[1] + m.rn[2] + m.rn[3]);
        double tr = 1 + 2 * (m.rr[0] + m.rr[1] + m.rr[2] + m.rr[3]);
        tn = tn > T_MIN ? tn : T_MIN;
        tr = tr > T_MIN ? tr : T_MIN;
        out->fd = fd = 1 / sqrt(m.s2n * tn + m.s2r * tr); /* 1 / Delta(0) */
    }
    if ((rc = grid_make(in, c, &g, &sg, err)) ||
        (rc = zogy_interrupted(o, "planning", err)))
        goto done;
    out->padx = g.px;
    out->pady = g.py;
    out->d = rapid_big_malloc(n * sizeof *out->d);
    out->unc = rapid_big_malloc(n * sizeof *out->unc);
    out->scorr = rapid_big_malloc(n * sizeof *out->scorr);
    out->pd = malloc((size_t)out->npd * out->npd * sizeof *out->pd);
    dl = rapid_big_malloc(n * sizeof *dl);
    sl = rapid_big_malloc(n * sizeof *sl);
    vs = rapid_big_malloc(n * sizeof *vs);
    mf = rapid_big_malloc(n * sizeof *mf);
    for (k = 0; k < NPLANES; k++)
        if (!(pl[k] = plane_new(&g)))
            break;
    as = plane_new(&sg);
    bs = plane_new(&sg);
    ks = plane_new(&sg);
    if (!out->d || !out->unc || !out->scorr || !out->pd || k < NPLANES ||
        !as || !bs || !ks || !dl || !sl || !vs || !mf) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory for a "
                        "%d x %d image", in->nx, in->ny);
        goto done;
    }
    if (psf_to_plane(&g, in->pn, in->npn, pl[0]) ||
        psf_to_plane(&g, in->pr, in->npr, pl[1]) ||
        psf_to_plane(&sg, in->pn, in->npn, as) ||
        psf_to_plane(&sg, in->pr, in->npr, bs)) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
        goto done;
    }
    if ((rc = fill_error(in, &sg, (float complex *)as, (float complex *)bs,
                         ks, mf, dl, sl, &fe_n, &fe_r, out, err)) ||
        (rc = zogy_interrupted(o, "the fill error", err)))
        goto done;
    /* the planes reused: step 3's take the places of step 2's */
    step_d_s(in, &g, (float complex *)pl[0], (float complex *)pl[1], &m, fd,
             mf, pl[2], pl[3], pl[4], dl, sl, out);
    if ((rc = zogy_interrupted(o, "D and S", err)))
        goto done;
    if (cm.measured) {
        if (!(ok = malloc(n)) || calib_mask(in, dl, ok)) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
            goto done;
        }
    } else {
        corr_factors(&sg, (float complex *)as, (float complex *)bs, &m, &cm);
        out->ref_fs = cm.fs[0];
        out->ref_fd = cm.fd[0];
    }
    if (step_variance(in, &g, &sg, (float complex *)as, (float complex *)bs,
                      &m, &cm, fd, pl[0], pl[1], pl[2], pl[3], ks, vs, ok,
                      ex, out)) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
        goto done;
    }
    free(ok);
    ok = NULL;
    if ((rc = zogy_interrupted(o, "the variances", err)))
        goto done;
    for (i = 0; i < n; i++) /* sigma_D^2 from here on */
        out->unc[i] *= out->unc[i];
    for (k = 1; k < NPLANES; k++) { /* the padded planes are done with */
        plane_free(pl[k]);
        pl[k] = NULL;
    }
    /* the term's light, the last padded plane its scratch */
    if (model_error_on(in) &&
        (!(ext = calloc(n, 1)) ||
         (rc = model_light(in, dl, sl, pl[0], ext, out, err)))) {
        if (!ext)
            rc = rapid_fail(err, RAPID_E_NOMEM, "ZOGY: out of memory");
        goto done;
    }
    plane_free(pl[0]);
    pl[0] = NULL;
    if ((rc = fill_variance(in, &sg, (float complex *)as, (float complex *)bs,
                            &m, &fe_n, &fe_r, mf, ext, fd, ex, ks, vs, out,
                            err)) ||
        (rc = zogy_interrupted(o, "the variances' fill", err)))
        goto done;
    free(ext);
    ext = NULL;
    for (i = 0; i < n; i++) /* no data in either image: no difference */
        if (!isfinite(in->n[i]) || !isfinite(in->r[i]) ||
            !isfinite(in->vn[i]) || !isfinite(in->vr[i]))
            out->d[i] = out->unc[i] = out->scorr[i] = NAN;
    if ((rc = model_error(in, dl, sl, vs, out, err)))
        goto done;
    modelerr_apply(in->nx, in->ny, dl, out->eps_d, out->pos_d, out->unc);
    modelerr_apply(in->nx, in->ny, sl, out->eps_s, out->pos_s, vs);
    for (i = 0; i < n; i++) {
        out->unc[i] = sqrtf(out->unc[i]); /* NaN stays NaN */
        out->scorr[i] = vs[i] > 0 ? (float)(out->scorr[i] / sqrt(vs[i])) : NAN;
    }
done:
    free(ok);
    free(ext);
    for (k = 0; k < 3; k++)
        free(ex[k].p);
    rapid_big_free(mf);
    rapid_big_free(dl);
    rapid_big_free(sl);
    rapid_big_free(vs);
    for (k = 0; k < NPLANES; k++)
        plane_free(pl[k]);
    plane_free(as);
    plane_free(bs);
    plane_free(ks);
    grid_release(&g);
    grid_release(&sg);
    corr_map_release(&cm);
    rapid_fft_cache_free(own);
    if (rc)
        rapid_zogy_out_release(out);
    return rc;
}

int rapid_diff_zogy(const rapid_science *sci, const rapid_diff_pair *p,
                    const float *sci_psf, int nsp, const float *ref_psf,
                    int nrp, const rapid_zogy_opts *o, rapid_zogy_out *out,
                    rapid_err *err)
{
    rapid_zogy_inputs zi;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = rapid_diff_zogy_inputs(sci, p, sci_psf, nsp, ref_psf, nrp, &zi,
                                     err)))
        return rc;
    rc = rapid_zogy(&zi.in, o, out, err);
    rapid_zogy_inputs_release(&zi);
    return rc;
}
