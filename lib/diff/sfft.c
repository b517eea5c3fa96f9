/* sfft.c - image subtraction by a fitted kernel on cross-convolved images
 * (rapid/diff.h).
 *
 * The steps, on whole-image transforms in single precision:
 *   1. N and R (holes filled from each other) and the two PSFs transformed;
 *      N~ = P_r x N and R~ = P_n x R back to real space, R~'s transform
 *      kept (planes a: N~, b: R~^, c: R~);
 *   2. R's noise correlation measured (for the errors in the variables),
 *      stamps and the fit (sfft_stamps.c, sfft_fit.c) on N~ and R~, with
 *      the kernel's own error on a grid;
 *   3. D_cc = N~ - sum_j phi_j (K_j x R~) - B: each K_j transformed, times
 *      R~^, back, weighted by its monomial per pixel (planes a, b);
 *   4. the decorrelation kernel made on a small grid from the PSFs' and
 *      K_c's transforms there, laid on the full grid: D = DK x D_cc, and
 *      P_D;
 *   5. sigma_D^2 = V_N x k_N^2 + V_R x k_R^2 (planes a, b, c), plus the
 *      kernel's own error and the PSF-model error times the model's
 *      light.
 * Transforms are unnormalised: every round trip is divided by the number
 * of padded pixels.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "../core/bigmem.h"
#include "../core/stats.h"
#include "rapid/psfops.h"
#include "modelerr.h"
#include "sfft_internal.h"

#define COVER_MIN 0.5        /* reference coverage below this: no data */
#define SIGMA_SAMPLE 1000000 /* pixels sampled to estimate a noise */
#define REACH_VAR 0.01       /* the PSF's square: to 1 % of the peak */
#define REACH_HOLE 0.1       /* a filled hole spoils the convolved image
                              * where the PSF is above 10 % of its peak
                              * (there by more than ~0.1 of its noise) */
#define DK_FLOOR 1e-10       /* relative floor under the decorrelation's
                              * denominator: no division by frequencies
                              * neither PSF has */
#define NPLANES 3
#define RC_L 2             /* R's noise correlation: lags measured, px */
#define RC_N (2 * RC_L + 1)
#define RC_MIN 1000        /* source-free pixels it needs */
#define RC_B 16            /* px: blocks whose mean is taken out (what
                            * varies slowly is not the pixels' noise) */
#define RC_STEP 4          /* rows: one in this many measured */

void rapid_sfft_opts_init(rapid_sfft_opts *o)
{
    o->nthreads = 1;
    o->fft = NULL;
    o->stop = NULL;
    o->half_width = 9;
    o->order = 2;
    o->bg_order = 2;
    o->stamp_half = 11;
    o->max_stamps = 1000;
    o->min_snr = 20;
    o->isolation = 6;
    o->max_peak = 0;
    o->clip_sigma = 3;
    o->max_iter = 3;
    o->max_cond = 1e12;
    o->eps_model = -1;
    o->pos_model = 0;
    o->eiv = 1;
}

void rapid_sfft_out_release(rapid_sfft_out *out)
{
    if (!out)
        return;
    rapid_big_free(out->d);
    rapid_big_free(out->cconv);
    rapid_big_free(out->unc);
    free(out->pd);
    free(out->kernel);
    memset(out, 0, sizeof *out);
}

/* A grid's plans.  The full grid's 2-D transforms are made of their two
 * passes: the row pass over the rows that hold data only (the image's,
 * or a compact kernel's at each edge), and the column pass on blocks of
 * COLB columns copied into a buffer of their own (where FFTW's estimate
 * of the whole transform strides down every column of the plane: two
 * and a half times slower); the small grid's are whole. */
#define COLB 16

typedef struct grid {
    int px, py, hx;
    size_t stride, nfloat;
    double norm;
    const rapid_fft_plan *fwd, *bwd;   /* whole (the small grid's) */
    const rapid_fft_plan *rows_img;    /* rows [0, ny_img): r2c */
    const rapid_fft_plan *rows_back;   /* ... and c2r */
    const rapid_fft_plan *rows_edge;   /* nedge rows: r2c */
    const rapid_fft_plan *cols, *cols_back; /* COLB columns */
    int ny_img, nedge;                 /* nedge == py: one block */
    float complex *colbuf;             /* py x COLB (NULL: whole plans) */
} grid;

static int grid_plans(rapid_fft_cache *c, grid *g, rapid_err *err)
{
    int rc;

    g->hx = g->px / 2 + 1;
    g->stride = rapid_fft_real_stride(g->px);
    g->nfloat = (size_t)g->py * g->stride;
    g->norm = 1.0 / ((double)g->px * g->py);
    g->colbuf = NULL;
    rc = rapid_fft_plan_get(c, RAPID_FFT_R2C, g->py, g->px, 1, &g->fwd, err);
    return rc ? rc : rapid_fft_plan_get(c, RAPID_FFT_C2R, g->py, g->px, 1,
                                        &g->bwd, err);
}

/* The full grid's passes: the image's ny rows, and compact kernels that
 * reach `need` rows from the origin (each edge's block of rows starting
 * at a multiple of 8, aligned as the plane). */
static int grid_passes(rapid_fft_cache *c, grid *g, int ny, int need,
                       rapid_err *err)
{
    int rc;

    g->hx = g->px / 2 + 1;
    g->stride = rapid_fft_real_stride(g->px);
    g->nfloat = (size_t)g->py * g->stride;
    g->norm = 1.0 / ((double)g->px * g->py);
    g->fwd = g->bwd = NULL;
    g->ny_img = ny;
    g->nedge = need <= g->py ? g->py - ((g->py - need) & ~7) : g->py;
    if (2 * g->nedge > g->py)
        g->nedge = g->py;
    if ((rc = rapid_fft_plan_get(c, RAPID_FFT_ROWS, ny, g->px, 1,
                                 &g->rows_img, err)) ||
        (rc = rapid_fft_plan_get(c, RAPID_FFT_ROWS_C2R, ny, g->px, 1,
                                 &g->rows_back, err)) ||
        (rc = rapid_fft_plan_get(c, RAPID_FFT_ROWS, g->nedge, g->px, 1,
                                 &g->rows_edge, err)) ||
        (rc = rapid_fft_plan_get(c, RAPID_FFT_COLUMNS, g->py, COLB, 1,
                                 &g->cols, err)) ||
        (rc = rapid_fft_plan_get(c, RAPID_FFT_COLUMNS_BACKWARD, g->py, COLB,
                                 1, &g->cols_back, err)))
        return rc;
    if (!(g->colbuf = rapid_fft_alloc((size_t)g->py * COLB *
                                      sizeof *g->colbuf)))
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    return 0;
}

/* The column pass: COLB columns at a time through the buffer. */
static void cols_pass(const grid *g, float complex *P, const rapid_fft_plan *p)
{
    float complex *b = g->colbuf;
    int c0, y, i;

    for (c0 = 0; c0 < g->hx; c0 += COLB) {
        int w = g->hx - c0 < COLB ? g->hx - c0 : COLB;
        for (y = 0; y < g->py; y++) {
            const float complex *r = P + (size_t)y * g->hx + c0;
            for (i = 0; i < w; i++)
                b[(size_t)y * COLB + i] = r[i];
        }
        rapid_fft_c2c(p, b, b);
        for (y = 0; y < g->py; y++) {
            float complex *r = P + (size_t)y * g->hx + c0;
            for (i = 0; i < w; i++)
                r[i] = b[(size_t)y * COLB + i];
        }
    }
}

/* A plane's forward transform in place: the image's rows hold data
 * (compact 0), or only a compact kernel's rows at the edges (1); every
 * other row is zero. */
static void fwd(const grid *g, float *pl, int compact)
{
    float complex *P = (float complex *)pl;
    size_t b = (size_t)(g->py - g->nedge);

    if (!g->colbuf) {
        rapid_fft_r2c(g->fwd, pl, P);
        return;
    }
    if (!compact) {
        rapid_fft_r2c(g->rows_img, pl, P);
    } else {
        rapid_fft_r2c(g->rows_edge, pl, P);
        if (b > 0)
            rapid_fft_r2c(g->rows_edge, pl + b * g->stride, P + b * g->hx);
    }
    cols_pass(g, P, g->cols);
}

/* Back to real space in place, unnormalised; on the full grid the image's
 * rows only (the others are left as they are). */
static void bwd(const grid *g, float *pl)
{
    float complex *P = (float complex *)pl;

    if (!g->colbuf) {
        rapid_fft_c2r(g->bwd, P, pl);
        return;
    }
    cols_pass(g, P, g->cols_back);
    rapid_fft_c2r(g->rows_back, P, pl);
}

static float *plane_new(const grid *g)
{
    return rapid_fft_alloc(g->nfloat * sizeof(float));
}

/* An odd n x n stamp (scaled by 1 / sum) at the origin of a zeroed plane,
 * wrapped, transformed. */
static void stamp_to_plane(const grid *g, const float *k, int n, double sum,
                           float *pl)
{
    int h = n / 2, i, j;

    memset(pl, 0, g->nfloat * sizeof *pl);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            pl[(size_t)((j - h + g->py) % g->py) * g->stride +
               (size_t)((i - h + g->px) % g->px)] =
                (float)(k[(size_t)j * n + i] / sum);
    fwd(g, pl, 1);
}

static double stamp_sum(const float *k, int n)
{
    double s = 0;
    int i;

    for (i = 0; i < n * n; i++)
        s += k[i];
    return s;
}

static void mul(const grid *g, float complex *a, const float complex *b)
{
    size_t i, n = (size_t)g->py * g->hx;

    for (i = 0; i < n; i++)
        a[i] *= b[i];
}

/* The two images (or variances, scale s2 between them) into planes x, y,
 * each one's holes filled from the other. */
static void fill_pair(const rapid_sfft_in *in, const grid *g, float *x,
                      float *y, int variance, double s)
{
    const float *a = variance ? in->vn : in->n, *b = variance ? in->vr : in->r;
    float f = (float)(variance ? s * s : s);
    int i, j;

    memset(x, 0, g->nfloat * sizeof *x);
    memset(y, 0, g->nfloat * sizeof *y);
    for (j = 0; j < in->ny; j++) {
        const float *ar = a + (size_t)j * in->nx, *br = b + (size_t)j * in->nx;
        float *xr = x + (size_t)j * g->stride, *yr = y + (size_t)j * g->stride;
        for (i = 0; i < in->nx; i++) {
            float u = ar[i], v = br[i];
            int fu = isfinite(u), fv = isfinite(v);
            xr[i] = fu ? u : fv ? v * f : 0;
            yr[i] = fv ? v : fu ? u / f : 0;
        }
    }
}

/* Back to real space, normalised over the image's pixels. */
static void to_real(const grid *g, const rapid_sfft_in *in, float *pl)
{
    float nrm = (float)g->norm;
    int i, j;

    bwd(g, pl);
    for (j = 0; j < in->ny; j++) {
        float *r = pl + (size_t)j * g->stride;
        for (i = 0; i < in->nx; i++)
            r[i] *= nrm;
    }
}

/* The farthest pixel (Chebyshev distance) of a PSF above frac of its
 * peak. */
static int reach_of(const float *p, int n, double frac)
{
    int h = n / 2, i, j, r = 0;
    double peak = 0;

    for (i = 0; i < n * n; i++)
        peak = p[i] > peak ? p[i] : peak;
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            if (p[(size_t)j * n + i] > frac * peak) {
                int d = abs(i - h) > abs(j - h) ? abs(i - h) : abs(j - h);
                r = d > r ? d : r;
            }
    return r;
}

/* The PSF's reach for its square (REACH_VAR), and the square (of the PSF
 * normalised to unit sum) cut to it. */
static int psf_reach(const float *p, int n, float **sq)
{
    int h = n / 2, i, j, r = reach_of(p, n, REACH_VAR), l = 2 * r + 1;
    double sum = stamp_sum(p, n);

    if (!(*sq = malloc((size_t)l * l * sizeof **sq)))
        return -1;
    for (j = 0; j < l; j++)
        for (i = 0; i < l; i++) {
            double v = p[(size_t)(j - r + h) * n + (i - r + h)] / sum;
            (*sq)[(size_t)j * l + i] = (float)(v * v);
        }
    return r;
}

static int check(const rapid_sfft_in *in, const rapid_sfft_opts *o,
                 rapid_err *err)
{
    const float *ps[2];
    int ns[2], k, i;

    if (!in || in->nx < 1 || in->ny < 1 || !in->n || !in->r || !in->vn ||
        !in->vr || !in->pn || !in->pr)
        return rapid_fail(err, RAPID_E_ARG, "kernel fit: missing images, "
                          "variances or PSFs");
    if (in->npn < 3 || in->npn % 2 == 0 || in->npr < 3 || in->npr % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "kernel fit: the PSFs must be "
                          "odd-sized and at least 3 x 3 (got %d and %d)",
                          in->npn, in->npr);
    ps[0] = in->pn, ps[1] = in->pr, ns[0] = in->npn, ns[1] = in->npr;
    for (k = 0; k < 2; k++) {
        for (i = 0; i < ns[k] * ns[k]; i++)
            if (!isfinite(ps[k][i]))
                return rapid_fail(err, RAPID_E_ARG, "kernel fit: the %s PSF "
                                  "has a value that is not finite",
                                  k ? "reference" : "science");
        if (!(stamp_sum(ps[k], ns[k]) > 0))
            return rapid_fail(err, RAPID_E_ARG, "kernel fit: the %s PSF does "
                              "not sum to a positive value",
                              k ? "reference" : "science");
    }
    if (o->half_width < 1 || o->half_width > 30 || o->order < 0 ||
        o->order > 2 || o->bg_order < 0 || o->bg_order > 2 ||
        o->stamp_half < 1 || o->stamp_half > 30 || o->max_stamps < 1 ||
        !(o->min_snr > 0) || !(o->isolation >= 0) || !(o->max_peak >= 0) ||
        !(o->clip_sigma > 0) || o->max_iter < 0 || !(o->max_cond > 1) ||
        o->nthreads < 1)
        return rapid_fail(err, RAPID_E_ARG, "kernel fit: bad options "
                          "(kernel half-width %d (1-30), order %d and "
                          "background order %d (0-2), stamp half-size %d "
                          "(1-30), %d stamps, S/N "
                          "%g, clip %g, condition limit %g, %d threads)",
                          o->half_width, o->order, o->bg_order, o->stamp_half,
                          o->max_stamps, o->min_snr, o->clip_sigma,
                          o->max_cond, o->nthreads);
    return 0;
}

static void geom_make(const rapid_sfft_in *in, const rapid_sfft_opts *o,
                      sfft_geom *g)
{
    g->hw = o->half_width;
    g->nk = (2 * g->hw + 1) * (2 * g->hw + 1);
    g->sh = o->stamp_half;
    g->order = o->order;
    g->bg_order = o->bg_order;
    g->nterms = (g->order + 1) * (g->order + 2) / 2;
    g->nbg = (g->bg_order + 1) * (g->bg_order + 2) / 2;
    g->nb = g->nk + g->nbg;
    g->nunk = g->nk * g->nterms + g->nbg;
    g->xc = (in->nx - 1) / 2.0;
    g->yc = (in->ny - 1) / 2.0;
    g->hx = in->nx > 1 ? in->nx / 2.0 : 1;
    g->hy = in->ny > 1 ? in->ny / 2.0 : 1;
}

/* Per column, u^a (a = 0..2), and per row v^b. */
static int powers(const sfft_geom *g, int nx, int ny, double **pu, double **pv)
{
    int i;

    *pu = malloc((size_t)3 * nx * sizeof **pu);
    *pv = malloc((size_t)3 * ny * sizeof **pv);
    if (!*pu || !*pv)
        return -1;
    for (i = 0; i < nx; i++) {
        double u = (i - g->xc) / g->hx;
        (*pu)[i] = 1, (*pu)[nx + i] = u, (*pu)[2 * nx + i] = u * u;
    }
    for (i = 0; i < ny; i++) {
        double v = (i - g->yc) / g->hy;
        (*pv)[i] = 1, (*pv)[ny + i] = v, (*pv)[2 * ny + i] = v * v;
    }
    return 0;
}

/* Step 3: out->cconv = N~ (plane a) - the model, R~^ in plane b; the
 * model without its background (the reference's light) into lm. */
static void model(const rapid_sfft_in *in, const grid *g, const sfft_geom *sg,
                  const double *coef, const double *pu, const double *pv,
                  float *a, const float *b, float *lm, rapid_sfft_out *out)
{
    int side = 2 * sg->hw + 1, j, x, y, ea, eb;
    float *cc = out->cconv;

    memset(lm, 0, (size_t)in->nx * in->ny * sizeof *lm);

    for (y = 0; y < in->ny; y++)
        memcpy(cc + (size_t)y * in->nx, a + (size_t)y * g->stride,
               (size_t)in->nx * sizeof *cc);
    for (j = 0; j < sg->nterms; j++) {
        memset(a, 0, g->nfloat * sizeof *a);
        for (y = -sg->hw; y <= sg->hw; y++)
            for (x = -sg->hw; x <= sg->hw; x++)
                a[(size_t)((y + g->py) % g->py) * g->stride +
                  (size_t)((x + g->px) % g->px)] =
                    (float)coef[(size_t)j * sg->nk +
                                (size_t)(y + sg->hw) * side + (x + sg->hw)];
        fwd(g, a, 1);
        mul(g, (float complex *)a, (const float complex *)b);
        to_real(g, in, a);
        sfft_mono_exps(j, &ea, &eb);
        for (y = 0; y < in->ny; y++) {
            double vb = pv[(size_t)eb * in->ny + y];
            const double *ua = pu + (size_t)ea * in->nx;
            const float *ar = a + (size_t)y * g->stride;
            float *cr = cc + (size_t)y * in->nx, *lr = lm + (size_t)y * in->nx;
            for (x = 0; x < in->nx; x++) {
                float t = (float)(ua[x] * vb * ar[x]);
                cr[x] -= t;
                lr[x] += t;
            }
        }
    }
    for (j = 0; j < sg->nbg; j++) {
        double c = coef[(size_t)sg->nterms * sg->nk + j];
        sfft_mono_exps(j, &ea, &eb);
        for (y = 0; y < in->ny; y++) {
            double vb = c * pv[(size_t)eb * in->ny + y];
            const double *ua = pu + (size_t)ea * in->nx;
            float *cr = cc + (size_t)y * in->nx;
            for (x = 0; x < in->nx; x++)
                cr[x] -= (float)(ua[x] * vb);
        }
    }
}

/* The small grid's transforms: PSFs (A: P_n, B: P_r), K_c (C), and the
 * decorrelation kernel DK (E). */
typedef struct small {
    grid g;
    float *a, *b, *c, *e, *t;  /* t: scratch */
} small;

static void small_free(small *s)
{
    rapid_fft_free(s->a);
    rapid_fft_free(s->b);
    rapid_fft_free(s->c);
    rapid_fft_free(s->e);
    rapid_fft_free(s->t);
}

static void make_dk(small *s, double s2n, double s2r, double kappa)
{
    const float complex *A = (const float complex *)s->a,
                        *B = (const float complex *)s->b,
                        *C = (const float complex *)s->c;
    float complex *E = (float complex *)s->e;
    size_t i, n = (size_t)s->g.py * s->g.hx;
    double c2 = s2n + kappa * kappa * s2r, floor = DK_FLOOR * c2;

    for (i = 0; i < n; i++) {
        float complex kp = C[i] * A[i];
        double bb = crealf(B[i]) * crealf(B[i]) + cimagf(B[i]) * cimagf(B[i]);
        double kk = crealf(kp) * crealf(kp) + cimagf(kp) * cimagf(kp);
        double den = s2n * bb + s2r * kk;
        E[i] = (float)sqrt(c2 / (den + floor));
    }
}

/* A kernel given by its small-grid transform (times E, times `with`)
 * to real space, squared if `square`, laid at the origin of the full
 * plane pl and transformed there. */
static void small_to_full(small *s, const grid *g, const float complex *with1,
                          const float complex *with2, int square, float *pl)
{
    float complex *T = (float complex *)s->t;
    const float complex *E = (const float complex *)s->e;
    size_t i, n = (size_t)s->g.py * s->g.hx;
    int x, y;
    float nrm = (float)s->g.norm;

    for (i = 0; i < n; i++)
        T[i] = E[i] * (with1 ? with1[i] : 1) * (with2 ? with2[i] : 1);
    rapid_fft_c2r(s->g.bwd, T, s->t);
    memset(pl, 0, g->nfloat * sizeof *pl);
    for (y = 0; y < s->g.py; y++) {
        int fy = y < s->g.py / 2 ? y : y - s->g.py + g->py;
        for (x = 0; x < s->g.px; x++) {
            int fx = x < s->g.px / 2 ? x : x - s->g.px + g->px;
            float v = s->t[(size_t)y * s->g.stride + x] * nrm;
            pl[(size_t)fy * g->stride + fx] = square ? v * v : v;
        }
    }
    fwd(g, pl, 1);
}

/* P_D: A B E on the small grid, cut to npd x npd about the origin, unit
 * sum. */
static void make_pd(small *s, rapid_sfft_out *out)
{
    float complex *T = (float complex *)s->t;
    const float complex *A = (const float complex *)s->a,
                        *B = (const float complex *)s->b,
                        *E = (const float complex *)s->e;
    size_t i, n = (size_t)s->g.py * s->g.hx;
    int x, y, h = out->npd / 2;
    double sum = 0;

    for (i = 0; i < n; i++)
        T[i] = A[i] * B[i] * E[i];
    rapid_fft_c2r(s->g.bwd, T, s->t);
    for (y = 0; y < out->npd; y++)
        for (x = 0; x < out->npd; x++) {
            size_t k = (size_t)((y - h + s->g.py) % s->g.py) * s->g.stride +
                       (size_t)((x - h + s->g.px) % s->g.px);
            double v = s->t[k];
            out->pd[(size_t)y * out->npd + x] = (float)v;
            sum += v;
        }
    for (i = 0; i < (size_t)out->npd * out->npd; i++)
        out->pd[i] = (float)(out->pd[i] / sum);
}

/* Steps 4 and 5: D, sigma_D (the noise's) and P_D; the model's light lm
 * (NULL: none) taken into D's (DK x lm); planes a, b, c free. */
static void decorrelate(const rapid_sfft_in *in, const grid *g, small *s,
                        double s0, float *a, float *b, float *c, float *lm,
                        rapid_sfft_out *out)
{
    int x, y;
    float nrm = (float)g->norm;

    memset(a, 0, g->nfloat * sizeof *a);
    for (y = 0; y < in->ny; y++) {
        const float *cr = out->cconv + (size_t)y * in->nx;
        float *ar = a + (size_t)y * g->stride;
        for (x = 0; x < in->nx; x++)
            ar[x] = isfinite(cr[x]) ? cr[x] : 0;
    }
    fwd(g, a, 0);
    small_to_full(s, g, NULL, NULL, 0, b);
    mul(g, (float complex *)a, (const float complex *)b);
    to_real(g, in, a);
    for (y = 0; y < in->ny; y++)
        memcpy(out->d + (size_t)y * in->nx, a + (size_t)y * g->stride,
               (size_t)in->nx * sizeof *out->d);
    if (lm) { /* the reference's light in D: DK x the model */
        memset(c, 0, g->nfloat * sizeof *c);
        for (y = 0; y < in->ny; y++)
            memcpy(c + (size_t)y * g->stride, lm + (size_t)y * in->nx,
                   (size_t)in->nx * sizeof *c);
        fwd(g, c, 0);
        mul(g, (float complex *)c, (const float complex *)b);
        to_real(g, in, c);
        for (y = 0; y < in->ny; y++)
            memcpy(lm + (size_t)y * in->nx, c + (size_t)y * g->stride,
                   (size_t)in->nx * sizeof *lm);
    }
    make_pd(s, out);
    /* sigma_D^2 = V_N x (DK x P_r)^2 + V_R x (DK x K_c x P_n)^2 */
    fill_pair(in, g, a, c, 1, s0);
    fwd(g, a, 0);
    fwd(g, c, 0);
    small_to_full(s, g, (const float complex *)s->b, NULL, 1, b);
    mul(g, (float complex *)a, (const float complex *)b);
    small_to_full(s, g, (const float complex *)s->c,
                  (const float complex *)s->a, 1, b);
    mul(g, (float complex *)c, (const float complex *)b);
    {
        float complex *A = (float complex *)a, *C = (float complex *)c;
        size_t i, n = (size_t)g->py * g->hx;
        for (i = 0; i < n; i++)
            A[i] += C[i];
    }
    bwd(g, a);
    for (y = 0; y < in->ny; y++) {
        const float *ar = a + (size_t)y * g->stride;
        float *ur = out->unc + (size_t)y * in->nx;
        for (x = 0; x < in->nx; x++) {
            float v = ar[x] * nrm;
            ur[x] = v > 0 ? sqrtf(v) : NAN;
        }
    }
}

/* The small grid, its PSF and K_c transforms. */
static int small_make(const rapid_sfft_in *in, const sfft_geom *sg,
                      const double *coef, int pad, small *s, rapid_err *err)
{
    int side = 2 * sg->hw + 1, i, rc;
    float *kc = malloc((size_t)side * side * sizeof *kc);

    memset(s, 0, sizeof *s);
    if (!kc)
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    s->g.px = s->g.py = rapid_fft_good_size(2 * pad);
    if ((rc = grid_plans(NULL, &s->g, err))) {
        free(kc);
        return rc;
    }
    s->a = plane_new(&s->g);
    s->b = plane_new(&s->g);
    s->c = plane_new(&s->g);
    s->e = plane_new(&s->g);
    s->t = plane_new(&s->g);
    if (!s->a || !s->b || !s->c || !s->e || !s->t) {
        free(kc);
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    }
    for (i = 0; i < side * side; i++)
        kc[i] = (float)coef[i]; /* term 0: the kernel at u = v = 0 */
    stamp_to_plane(&s->g, in->pn, in->npn, stamp_sum(in->pn, in->npn), s->a);
    stamp_to_plane(&s->g, in->pr, in->npr, stamp_sum(in->pr, in->npr), s->b);
    stamp_to_plane(&s->g, kc, side, 1.0, s->c);
    free(kc);
    return 0;
}

static int noise(const rapid_sfft_in *in, double *sn, double *sr,
                 rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny;

    *sn = in->sigma_n;
    *sr = in->sigma_r;
    if ((!(*sn > 0) && rapid_robust_sigma_sample(in->n, n, SIGMA_SAMPLE, 10, sn)) ||
        (!(*sr > 0) && rapid_robust_sigma_sample(in->r, n, SIGMA_SAMPLE, 10, sr)))
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    if (!(*sn > 0) || !(*sr > 0) || !isfinite(*sn) || !isfinite(*sr))
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: no usable "
                          "background noise (science %g, reference %g): too "
                          "few pixels with data", *sn, *sr);
    return 0;
}

/* Step 1: N~ into a, R~^ into b, R~ into c. */
static void cross_convolve(const rapid_sfft_in *in, const grid *g, double s0,
                           float *a, float *b, float *c)
{
    fill_pair(in, g, a, b, 0, s0);
    fwd(g, a, 0);
    fwd(g, b, 0);
    stamp_to_plane(g, in->pr, in->npr, stamp_sum(in->pr, in->npr), c);
    mul(g, (float complex *)a, (const float complex *)c);
    stamp_to_plane(g, in->pn, in->npn, stamp_sum(in->pn, in->npn), c);
    mul(g, (float complex *)b, (const float complex *)c);
    memcpy(c, b, g->nfloat * sizeof *c);
    to_real(g, in, a);
    to_real(g, in, c);
}

typedef struct work {
    float *pl[NPLANES];
    float *pn2, *pr2;
    double *coef, *pu, *pv, *racf, *tmpl;
    double gam2[SFFT_EGRID * SFFT_EGRID]; /* the kernel's own error */
    double rv[RC_N * RC_N]; /* R's noise correlation */
    sfft_stamp *st;
    int nst;
    small s;
    float *lm;            /* the model's light, then D's share of it */
} work;

static void work_free(work *w)
{
    int k;

    for (k = 0; k < NPLANES; k++)
        rapid_fft_free(w->pl[k]);
    free(w->pn2);
    free(w->pr2);
    free(w->racf);
    free(w->tmpl);
    free(w->coef);
    free(w->pu);
    free(w->pv);
    sfft_stamps_free(w->st, w->nst);
    small_free(&w->s);
    rapid_big_free(w->lm);
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The mean of v's pixels not masked, per block of RC_B x RC_B px (0
 * where none): (nx / RC_B + 1) x (ny / RC_B + 1), allocated. */
static float *local_mean(const float *v, const unsigned char *mask, int nx,
                         int ny)
{
    int bx = nx / RC_B + 1, by = ny / RC_B + 1, x, y;
    float *m = calloc((size_t)bx * by, sizeof *m);
    int *c = calloc((size_t)bx * by, sizeof *c);

    if (!m || !c) {
        free(m);
        free(c);
        return NULL;
    }
    for (y = 0; y < ny; y++)
        for (x = 0; x < nx; x++)
            if (!mask[(size_t)y * nx + x]) {
                size_t b = (size_t)(y / RC_B) * bx + (size_t)(x / RC_B);
                m[b] += v[(size_t)y * nx + x];
                c[b]++;
            }
    for (x = 0; x < bx * by; x++)
        m[x] = c[x] ? m[x] / (float)c[x] : 0;
    free(c);
    return m;
}

/* The block means interpolated bilinearly between the blocks' centres. */
static double lmean(const float *m, int nx, int ny, int x, int y)
{
    int bx = nx / RC_B + 1, by = ny / RC_B + 1, i0, j0, i1, j1;
    double u = (x + 0.5) / RC_B - 0.5, v = (y + 0.5) / RC_B - 0.5, fu, fv;

    u = u < 0 ? 0 : u > bx - 1 ? bx - 1 : u;
    v = v < 0 ? 0 : v > by - 1 ? by - 1 : v;
    i0 = (int)u, j0 = (int)v;
    i1 = i0 + 1 < bx ? i0 + 1 : i0;
    j1 = j0 + 1 < by ? j0 + 1 : j0;
    fu = u - i0, fv = v - j0;
    return (1 - fv) * ((1 - fu) * m[(size_t)j0 * bx + i0] +
                       fu * m[(size_t)j0 * bx + i1]) +
           fv * ((1 - fu) * m[(size_t)j1 * bx + i0] +
                 fu * m[(size_t)j1 * bx + i1]);
}

/* R's noise correlation (for the errors in the variables, sfft_fit.c):
 * the reference is resampled onto the science pixels, so its noise is
 * not white.  Measured on R's pixels away from its sources (beyond 3
 * sigma, and 2 px around), less their RC_B-px block means, as the
 * covariance at lags up to RC_L px per unit of R's variance map: rv,
 * (2 RC_L + 1)^2, lag (0, 0) in the middle, symmetric.  White (a delta)
 * when too few pixels tell.  0 or RAPID_E_NOMEM. */
static int noise_corr(const rapid_sfft_in *in, double sigma_r, double *rv)
{
    int nx = in->nx, ny = in->ny, x, y, dx, dy, d;
    size_t n = (size_t)nx * ny;
    unsigned char *bad = malloc(n), *tmp = malloc(n);
    float *hp = malloc(n * sizeof *hp);
    double cov[RC_N * RC_N] = {0}, vsum = 0;
    float *lo = NULL;
    long cnt[RC_N * RC_N] = {0}, nv = 0;

    memset(rv, 0, RC_N * RC_N * sizeof *rv);
    rv[RC_L * RC_N + RC_L] = 1;
    if (!bad || !tmp || !hp) {
        free(bad);
        free(tmp);
        free(hp);
        return RAPID_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = !isfinite(in->r[i]) || !isfinite(in->vr[i]) ||
                 fabsf(in->r[i]) > 3 * sigma_r;
    for (y = 0; y < ny; y++) /* dilated by 2 px: along x, then along y */
        for (x = 0; x < nx; x++) {
            int b = 0;
            for (d = -2; d <= 2 && !b; d++)
                b = x + d >= 0 && x + d < nx && tmp[(size_t)y * nx + x + d];
            bad[(size_t)y * nx + x] = (unsigned char)b;
        }
    for (y = 0; y < ny; y++)
        for (x = 0; x < nx; x++) {
            int b = 0;
            for (d = -2; d <= 2 && !b; d++)
                b = y + d >= 0 && y + d < ny && bad[(size_t)(y + d) * nx + x];
            tmp[(size_t)y * nx + x] = (unsigned char)b;
        }
    if (!(lo = local_mean(in->r, tmp, nx, ny))) {
        free(bad);
        free(tmp);
        free(hp);
        return RAPID_E_NOMEM;
    }
    /* R less its local mean, rows RC_STEP apart with the RC_L rows
     * below each (NaN where masked or not kept), in hp */
    for (y = 0; y < ny; y++) {
        int keep = y % RC_STEP <= RC_L;
        float *hr = hp + (size_t)y * nx;
        for (x = 0; x < nx; x++) {
            size_t p = (size_t)y * nx + x;
            hr[x] = keep && !tmp[p] ? (float)(in->r[p] -
                                              lmean(lo, nx, ny, x, y))
                                    : NAN;
        }
    }
    for (y = 0; y < ny - RC_L; y += RC_STEP)
        for (x = RC_L; x < nx - RC_L; x++) {
            size_t p = (size_t)y * nx + x;
            double a = hp[p];
            if (!isfinite(a))
                continue;
            vsum += in->vr[p];
            nv++;
            for (dy = 0; dy <= RC_L; dy++)
                for (dx = dy ? -RC_L : 0; dx <= RC_L; dx++) {
                    float b = hp[p + (size_t)dy * nx + (size_t)dx];
                    if (isfinite(b)) {
                        cov[(dy + RC_L) * RC_N + dx + RC_L] += a * b;
                        cnt[(dy + RC_L) * RC_N + dx + RC_L]++;
                    }
                }
        }
    free(bad);
    free(tmp);
    free(hp);
    free(lo);
    if (nv < RC_MIN || !(vsum > 0))
        return 0;
    for (dy = 0; dy <= RC_L; dy++)
        for (dx = dy ? -RC_L : 0; dx <= RC_L; dx++) {
            int k = (dy + RC_L) * RC_N + dx + RC_L, m = RC_N * RC_N - 1 - k;
            if (cnt[k] < RC_MIN)
                return 0;
            cov[k] /= (double)cnt[k];
            cov[m] = cov[k];
        }
    if (!(cov[RC_L * RC_N + RC_L] > 0))
        return 0;
    for (d = 0; d < RC_N * RC_N; d++)
        rv[d] = cov[d] / (vsum / (double)nv);
    return 0;
}

/* The covariance of R~ = P_n x R's noise between two pixels d apart
 * (|d| <= 2 hw), per unit of R's variance map: the autocorrelation of
 * P_n (unit sum) convolved with R's noise correlation rv; (4 hw + 1)^2,
 * d = 0 in the middle. */
static double *noise_acf(const rapid_sfft_in *in, int hw, const double *rv)
{
    int l = 4 * hw + 1, la = l + 2 * RC_L, h = 2 * hw + RC_L, n = in->npn;
    int dx, dy, x, y, ex, ey;
    double *a = malloc((size_t)l * l * sizeof *a),
           *p = malloc((size_t)la * la * sizeof *p),
           s = stamp_sum(in->pn, n);

    if (!a || !p) {
        free(a);
        free(p);
        return NULL;
    }
    for (dy = -h; dy <= h; dy++) /* P_n's autocorrelation, to 2 hw + RC_L */
        for (dx = -h; dx <= h; dx++) {
            double t = 0;
            for (y = 0; y < n; y++)
                for (x = 0; x < n; x++)
                    if (x + dx >= 0 && x + dx < n && y + dy >= 0 &&
                        y + dy < n)
                        t += (double)in->pn[(size_t)y * n + x] *
                             in->pn[(size_t)(y + dy) * n + x + dx];
            p[(size_t)(dy + h) * la + dx + h] = t / (s * s);
        }
    for (dy = -2 * hw; dy <= 2 * hw; dy++)
        for (dx = -2 * hw; dx <= 2 * hw; dx++) {
            double t = 0;
            for (ey = -RC_L; ey <= RC_L; ey++)
                for (ex = -RC_L; ex <= RC_L; ex++)
                    t += rv[(ey + RC_L) * RC_N + ex + RC_L] *
                         p[(size_t)(dy - ey + h) * la + dx - ex + h];
            a[(size_t)(dy + 2 * hw) * l + dx + 2 * hw] = t;
        }
    free(p);
    return a;
}

/* A point source of unit flux in R~ = P_n x R (R's PSF P_r) at the
 * origin, as the kernel reads it there: tmpl[k] = (P_n x P_r)(-k) over the
 * kernel's (2 hw + 1)^2 offsets. */
static double *point_template(const rapid_sfft_in *in, int hw)
{
    int side = 2 * hw + 1, hn = in->npn / 2, hr = in->npr / 2, kx, ky, x, y;
    double *t = malloc((size_t)side * side * sizeof *t);
    double sn = stamp_sum(in->pn, in->npn), sr = stamp_sum(in->pr, in->npr);

    if (!t)
        return NULL;
    for (ky = -hw; ky <= hw; ky++)
        for (kx = -hw; kx <= hw; kx++) {
            double c = 0; /* sum_q P_n(q) P_r(-k - q) */
            for (y = -hn; y <= hn; y++)
                for (x = -hn; x <= hn; x++) {
                    int rx = -kx - x, ry = -ky - y;
                    if (rx < -hr || rx > hr || ry < -hr || ry > hr)
                        continue;
                    c += (double)in->pn[(size_t)(y + hn) * in->npn + x + hn] *
                         in->pr[(size_t)(ry + hr) * in->npr + rx + hr];
                }
            t[(size_t)(ky + hw) * side + kx + hw] = c / (sn * sr);
        }
    return t;
}

/* Steps 1 and 2: the fit's images and the fit itself. */
/* RAPID_E_INTERRUPTED if the caller asked to stop (after step what). */
static int sfft_interrupted(const rapid_sfft_opts *o, const char *what,
                            rapid_err *err)
{
    return o->stop && *o->stop ? rapid_fail(err, RAPID_E_INTERRUPTED, "kernel "
                                            "fit: interrupted after %s", what)
                               : 0;
}

static int fit(const rapid_sfft_in *in, const rapid_sfft_opts *o,
               const grid *g, const sfft_geom *sg, double s0, work *w,
               rapid_sfft_out *out, rapid_err *err)
{
    sfft_images im;
    double t0 = now();

    cross_convolve(in, g, s0, w->pl[0], w->pl[1], w->pl[2]);
    out->sec_conv += now() - t0;
    if (sfft_interrupted(o, "the cross-convolution", err))
        return RAPID_E_INTERRUPTED;
    t0 = now();
    memset(&im, 0, sizeof im);
    im.nx = in->nx;
    im.ny = in->ny;
    im.nt.v = w->pl[0];
    im.nt.stride = g->stride;
    im.rt.v = w->pl[2];
    im.rt.stride = g->stride;
    im.n = in->n;
    im.r = in->r;
    im.vn = in->vn;
    im.vr = in->vr;
    im.cov = in->cov;
    im.s0 = s0;
    if ((im.reach_n = psf_reach(in->pn, in->npn, &w->pn2)) < 0 ||
        (im.reach_r = psf_reach(in->pr, in->npr, &w->pr2)) < 0)
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    im.mask_n = reach_of(in->pn, in->npn, REACH_HOLE);
    im.mask_r = reach_of(in->pr, in->npr, REACH_HOLE);
    im.pn2 = w->pn2;
    im.pr2 = w->pr2;
    if (noise_corr(in, out->sigma_r, w->rv) ||
        !(w->racf = noise_acf(in, sg->hw, w->rv)))
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    im.racf = o->eiv ? w->racf : NULL;
    if (!(w->tmpl = point_template(in, sg->hw)))
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    im.tmpl = w->tmpl;
    {
        double sp = 0, sr = 0;
        int i, ln = 2 * im.reach_n + 1, lr = 2 * im.reach_r + 1;
        for (i = 0; i < ln * ln; i++)
            sp += w->pn2[i];
        for (i = 0; i < lr * lr; i++)
            sr += w->pr2[i];
        im.sig_nt = out->sigma_n * sqrt(sr);
        im.sig_rt = out->sigma_r * sqrt(sp);
    }
    if (o->nthreads > 0)
        openblas_set_num_threads(o->nthreads);
    {
        int rc = sfft_stamps_find(&im, sg, o, &w->st, &w->nst, err);
        if (!rc)
            rc = sfft_fit(&im, sg, o, w->st, w->nst, w->coef, w->gam2, out,
                          err);
        out->sec_fit = now() - t0;
        return rc;
    }
}

/* The kernel's own error (sfft_fit.c): its variance relative to the
 * model's light, gam2 at the centres of SFFT_EGRID^2 cells (interpolated
 * bilinearly between them, the nearest beyond), times the model's light
 * in D squared (l), added to sigma_D^2.  The interpolation along x is
 * made once per column for each row of cells (h), then per pixel only
 * the one along y.  0 or RAPID_E_NOMEM. */
static int kernel_error(const rapid_sfft_in *in, const sfft_geom *sg,
                        const double *gam2, const float *l,
                        rapid_sfft_out *out)
{
    int x, y, j, G = SFFT_EGRID;
    double *h = malloc((size_t)G * in->nx * sizeof *h);

    if (!h)
        return RAPID_E_NOMEM;
    for (x = 0; x < in->nx; x++) {
        double u = ((x - sg->xc) / sg->hx + 1) * G / 2 - 0.5, fu;
        int i0, i1;
        u = u < 0 ? 0 : u > G - 1 ? G - 1 : u;
        i0 = (int)u;
        i1 = i0 + 1 < G ? i0 + 1 : i0;
        fu = u - i0;
        for (j = 0; j < G; j++)
            h[(size_t)j * in->nx + x] = (1 - fu) * gam2[j * G + i0] +
                                        fu * gam2[j * G + i1];
    }
    for (y = 0; y < in->ny; y++) {
        double v = ((y - sg->yc) / sg->hy + 1) * G / 2 - 0.5, fv;
        const double *h0, *h1;
        const float *lr = l + (size_t)y * in->nx;
        float *ur = out->unc + (size_t)y * in->nx;
        int j0, j1;
        v = v < 0 ? 0 : v > G - 1 ? G - 1 : v;
        j0 = (int)v;
        j1 = j0 + 1 < G ? j0 + 1 : j0;
        fv = v - j0;
        h0 = h + (size_t)j0 * in->nx;
        h1 = h + (size_t)j1 * in->nx;
        for (x = 0; x < in->nx; x++) {
            float s = ur[x], lx = lr[x];
            double g2 = (1 - fv) * h0[x] + fv * h1[x];
            float e = (float)sqrt((double)s * s + g2 * lx * lx);
            ur[x] = isfinite(s) && isfinite(lx) ? e : s;
        }
    }
    free(h);
    return 0;
}

/* The PSF-model error (rapid/diff.h): given, or measured at the peaks
 * of the model's light l (its point sources': modelerr_point_light) in D;
 * added to sigma_D.  scratch: nx * ny 32-bit words (a plane no longer
 * needed).  0 or RAPID_E_NOMEM. */
static int model_error(const rapid_sfft_in *in, const rapid_sfft_opts *o,
                       float *l, void *scratch, rapid_sfft_out *out)
{
    size_t n = (size_t)in->nx * in->ny, i, *idx = NULL;
    unsigned char *ok = NULL;
    double sl;
    int ns = 0, rc = 0;

    out->eps_model = o->eps_model >= 0 ? o->eps_model : 0;
    out->pos_model = o->eps_model >= 0 && o->pos_model > 0 ? o->pos_model : 0;
    out->neps = 0;
    if (!(o->eps_model < 0) && out->eps_model == 0 && out->pos_model == 0)
        return 0;
    for (i = 0; i < n; i++) /* sigma_D^2 for now */
        out->unc[i] *= out->unc[i];
    if ((rc = modelerr_denoise(l, n, &sl)))
        goto cleanup;
    /* point sources' light only: an extended source's smooth light has no
     * phase-dependent profile error (as ZOGY's term) */
    if ((rc = modelerr_point_light(in->nx, in->ny, l, NULL, out->unc,
                                   scratch, NULL, &out->width2_ld,
                                   &out->nextended)))
        goto cleanup;
    if (o->eps_model < 0) {
        if (!(ok = malloc(n))) {
            rc = RAPID_E_NOMEM;
            goto cleanup;
        }
        for (i = 0; i < n; i++)
            ok[i] = isfinite(out->d[i]) && isfinite(out->unc[i]);
        if ((rc = modelerr_stars(in->nx, in->ny, l, out->unc, ok, NULL, NULL,
                                 0, &idx, &ns)) ||
            (rc = modelerr_fit(in->nx, in->ny, out->d, out->unc, l, idx, ns,
                               &out->eps_model, &out->pos_model, &out->neps)))
            goto cleanup;
    }
    modelerr_apply(in->nx, in->ny, l, out->eps_model, out->pos_model,
                   out->unc);
cleanup:
    for (i = 0; i < n; i++)
        out->unc[i] = sqrtf(out->unc[i]);
    free(ok);
    free(idx);
    return rc;
}

static int outputs_alloc(const rapid_sfft_in *in, const sfft_geom *sg,
                         rapid_sfft_out *out, rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny;

    out->d = rapid_big_malloc(n * sizeof *out->d);
    out->cconv = rapid_big_malloc(n * sizeof *out->cconv);
    out->unc = rapid_big_malloc(n * sizeof *out->unc);
    out->npd = in->npn > in->npr ? in->npn : in->npr;
    out->pd = malloc((size_t)out->npd * out->npd * sizeof *out->pd);
    out->kernel = malloc((size_t)sg->nterms * sg->nk * sizeof *out->kernel);
    if (!out->d || !out->cconv || !out->unc || !out->pd || !out->kernel)
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory for "
                          "a %d x %d image", in->nx, in->ny);
    return 0;
}

int rapid_sfft(const rapid_sfft_in *in, const rapid_sfft_opts *o,
               rapid_sfft_out *out, rapid_err *err)
{
    rapid_sfft_opts def;
    rapid_fft_cache *own = NULL, *c;
    grid g;
    sfft_geom sg;
    work w;
    double s0, kappa = 0;
    size_t i, n;
    int rc, k, pad, sp, need;

    memset(out, 0, sizeof *out);
    memset(&w, 0, sizeof w);
    memset(&g, 0, sizeof g);
    if (!o) {
        rapid_sfft_opts_init(&def);
        o = &def;
    }
    if ((rc = check(in, o, err)) ||
        (rc = noise(in, &out->sigma_n, &out->sigma_r, err)))
        return rc;
    s0 = in->s0 > 0 && isfinite(in->s0) ? in->s0 : 1;
    geom_make(in, o, &sg);
    out->basis = "delta";
    out->order = sg.order;
    out->bg_order = sg.bg_order;
    out->half_width = sg.hw;
    out->nterms = sg.nterms;
    out->nbg = sg.nbg;
    if (!(c = o->fft) &&
        !(c = own = rapid_fft_cache_new(RAPID_FFT_ESTIMATE, o->nthreads)))
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    pad = (in->npn > in->npr ? in->npn : in->npr) + 2 * sg.hw + 1;
    g.px = rapid_fft_smooth_size(in->nx + pad);
    g.py = rapid_fft_smooth_size(in->ny + pad);
    out->padx = g.px;
    out->pady = g.py;
    sp = rapid_fft_good_size(2 * pad); /* small_make's grid */
    need = sp - sp / 2;
    need = need > sg.hw + 1 ? need : sg.hw + 1;
    need = need > pad / 2 + 1 ? need : pad / 2 + 1; /* the PSFs' reach */
    if ((rc = grid_passes(c, &g, in->ny, need, err)) ||
        (rc = sfft_interrupted(o, "planning", err)))
        goto done;
    for (k = 0; k < NPLANES; k++)
        if (!(w.pl[k] = plane_new(&g)))
            break;
    w.coef = malloc((size_t)sg.nunk * sizeof *w.coef);
    if (k < NPLANES || !w.coef || powers(&sg, in->nx, in->ny, &w.pu, &w.pv)) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory for a "
                        "%d x %d image", in->nx, in->ny);
        goto done;
    }
    if ((rc = fit(in, o, &g, &sg, s0, &w, out, err)) ||
        (rc = sfft_interrupted(o, "the fit", err)) ||
        (rc = outputs_alloc(in, &sg, out, err)))
        goto done;
    for (i = 0; i < (size_t)sg.nterms * sg.nk; i++)
        out->kernel[i] = (float)w.coef[i];
    for (k = 0; k < sg.nbg; k++)
        out->bg[k] = w.coef[(size_t)sg.nterms * sg.nk + (size_t)k];
    for (k = 0; k < sg.nk; k++)
        kappa += w.coef[k];
    {
        int m = SFFT_EGRID / 2 - 1, G = SFFT_EGRID;
        double mx = 0;
        out->kerr_centre = sqrt((w.gam2[m * G + m] + w.gam2[m * G + m + 1] +
                                 w.gam2[(m + 1) * G + m] +
                                 w.gam2[(m + 1) * G + m + 1]) / 4);
        for (k = 0; k < G * G; k++)
            mx = w.gam2[k] > mx ? w.gam2[k] : mx;
        out->kerr_edge = sqrt(mx);
    }
    out->ksum = kappa;
    if (!(kappa > 0))
        rc = rapid_fail(err, RAPID_E_RANGE, "kernel fit: the kernel's flux "
                        "normalisation at the image centre is not positive "
                        "(%g)", kappa);
    else if (!(rc = small_make(in, &sg, w.coef, pad, &w.s, err))) {
        double t0 = now();
        n = (size_t)in->nx * in->ny;
        if (!(w.lm = rapid_big_malloc(n * sizeof *w.lm))) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
            goto done;
        }
        model(in, &g, &sg, w.coef, w.pu, w.pv, w.pl[0], w.pl[1], w.lm, out);
        if ((rc = sfft_interrupted(o, "the model", err)))
            goto done;
        make_dk(&w.s, out->sigma_n * out->sigma_n,
                out->sigma_r * out->sigma_r, kappa);
        decorrelate(in, &g, &w.s, s0, w.pl[0], w.pl[1], w.pl[2], w.lm, out);
        for (i = 0; i < n; i++) /* no data in either image: no difference */
            if (!isfinite(in->n[i]) || !isfinite(in->r[i]) ||
                !isfinite(in->vn[i]) || !isfinite(in->vr[i]))
                out->d[i] = out->cconv[i] = out->unc[i] = NAN;
        if ((rc = kernel_error(in, &sg, w.gam2, w.lm, out)) ||
            (rc = model_error(in, o, w.lm, w.pl[0], out)))
            rc = rapid_fail(err, rc, "kernel fit: out of memory");
        out->sec_conv += now() - t0;
    }
done:
    work_free(&w);
    rapid_fft_free(g.colbuf);
    rapid_fft_cache_free(own);
    if (rc) {
        const char *basis = out->basis;
        int nc = out->ncandidates, ns = out->nstamps;
        rapid_sfft_out_release(out);
        out->basis = basis;
        out->ncandidates = nc;
        out->nstamps = ns;
    }
    return rc;
}

int rapid_diff_sfft(const rapid_science *sci, const rapid_diff_pair *p,
                    const float *sci_psf, int nsp, const float *ref_psf,
                    int nrp, const rapid_sfft_opts *o, rapid_sfft_out *out,
                    rapid_err *err)
{
    rapid_sfft_in in;
    size_t i, n;
    float *nb = NULL, *rb = NULL, *vn = NULL, *vr = NULL, *pr = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (!sci || !p || !sci_psf || !ref_psf || nrp < 1 || nrp % 2 == 0 ||
        sci->rate.nx != p->nx || sci->rate.ny != p->ny)
        return rapid_fail(err, RAPID_E_ARG, "kernel fit: the science image, "
                          "the prepared pair or their PSFs do not go "
                          "together");
    n = (size_t)p->nx * p->ny;
    /* the image-sized buffers (these, lm and the outputs) from the
     * big-block pool: the memory the reference as read and the
     * preparation's temporaries went back to, already faulted in, and not
     * fresh mappings on top of it (which set the command's peak) */
    nb = rapid_big_malloc(n * sizeof *nb);
    rb = rapid_big_malloc(n * sizeof *rb);
    vn = rapid_big_malloc(n * sizeof *vn);
    vr = rapid_big_malloc(n * sizeof *vr);
    pr = malloc((size_t)nrp * nrp * sizeof *pr);
    if (!nb || !rb || !vn || !vr || !pr) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
        goto done;
    }
    /* the reference's PSF as resampling onto the science pixels blurs it */
    if ((rc = rapid_psf_resample_blur(ref_psf, nrp, pr, err)))
        goto done;
    rapid_background_fill(&p->bkg_sci, nb);
    rapid_background_fill(&p->bkg_ref, rb);
    for (i = 0; i < n; i++) {
        float u = sci->unc.data[i], w = p->unc.data[i];
        nb[i] = sci->rate.data[i] - nb[i];
        vn[i] = u * u;
        if (p->cov.data[i] >= COVER_MIN && isfinite(p->ref.data[i])) {
            rb[i] = p->ref.data[i] - rb[i];
            vr[i] = w * w;
        } else {
            rb[i] = vr[i] = NAN;
        }
    }
    memset(&in, 0, sizeof in);
    in.nx = p->nx;
    in.ny = p->ny;
    in.n = nb;
    in.r = rb;
    in.vn = vn;
    in.vr = vr;
    in.pn = sci_psf;
    in.npn = nsp;
    in.pr = pr;
    in.npr = nrp;
    in.cov = p->cov.data;
    in.s0 = p->match.scale;
    rc = rapid_sfft(&in, o, out, err);
done:
    rapid_big_free(nb);
    rapid_big_free(rb);
    rapid_big_free(vn);
    rapid_big_free(vr);
    free(pr);
    return rc;
}
