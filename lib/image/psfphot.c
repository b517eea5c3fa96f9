/* psfphot.c - PSF-fit photometry: flux and position by weighted least
 * squares (Levenberg-Marquardt), neighbours fitted together.
 *
 * The model is the sampled PSF interpolated bicubically (Catmull-Rom, whose
 * derivatives are exact for the interpolant, so the Jacobian is that of the
 * model fitted).  The normal equations are solved by Cholesky (LAPACKE),
 * and their inverse at the solution gives the errors.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "rapid/psfphot.h"

void rapid_psfphot_opts_init(rapid_psfphot_opts *o)
{
    memset(o, 0, sizeof *o);
    o->half = 3;
    o->maxiter = 50;
    o->maxgroup = 16;
    o->flux_floor = 0;
    o->model_err = -1;
    o->nthreads = 1;
}

void rapid_psfphot_psf_release(rapid_psfphot_psf *p)
{
    free(p->data);
    p->data = NULL;
    p->n = p->over = p->native = 0;
}

int rapid_psfphot_psf_set(rapid_psfphot_psf *p, const float *data, int nx,
                          int ny, int over, const char *what, rapid_err *err)
{
    double sum = 0;
    size_t i, n;

    p->data = NULL;
    p->n = p->over = p->native = 0;
    if (nx != ny || nx % 2 == 0 || nx < 3 || over < 1)
        return rapid_fail(err, RAPID_E_ARG, "%s: PSF of %d x %d samples: the "
                          "sides must be equal and odd", what, nx, ny);
    n = (size_t)nx * (size_t)nx;
    for (i = 0; i < n; i++) {
        if (!isfinite(data[i]))
            return rapid_fail(err, RAPID_E_ARG, "%s: PSF sample %zu is not a "
                              "number", what, i);
        sum += data[i];
    }
    if (!(sum > 0))
        return rapid_fail(err, RAPID_E_ARG, "%s: PSF sums to %g, not a "
                          "positive number", what, sum);
    if (!(p->data = malloc(n * sizeof *p->data)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for the PSF", what);
    for (i = 0; i < n; i++)
        p->data[i] = (float)(data[i] / sum);
    p->n = nx;
    p->over = over;
    p->native = over == 1;
    return 0;
}

int rapid_psfphot_psf_gauss(rapid_psfphot_psf *p, double fwhm, rapid_err *err)
{
    const int over = 4;
    double sig = fwhm / 2.3548200450309493, s2 = sig * M_SQRT2, c;
    int half = (int)ceil(4 * sig) + 2, n = (2 * half + 1) * over + 1, i, j, rc;
    float *g;

    if (!(fwhm > 0))
        return rapid_fail(err, RAPID_E_ARG, "Gaussian PSF: FWHM %g px is not "
                          "positive", fwhm);
    if (!(g = malloc((size_t)n * n * sizeof *g)))
        return rapid_fail(err, RAPID_E_NOMEM, "Gaussian PSF: no memory");
    c = (n - 1) / 2.0;
    /* the Gaussian integrated over a native pixel centred on each sample */
    for (j = 0; j < n; j++) {
        double y = (j - c) / over, fy = 0.5 * (erf((y + 0.5) / s2) - erf((y - 0.5) / s2));
        for (i = 0; i < n; i++) {
            double x = (i - c) / over;
            g[j * n + i] = (float)(fy * 0.5 * (erf((x + 0.5) / s2) - erf((x - 0.5) / s2)));
        }
    }
    rc = rapid_psfphot_psf_set(p, g, n, n, over, "Gaussian PSF", err);
    if (rc == 0) /* an approximation, whatever its sampling */
        p->native = 1;
    free(g);
    return rc;
}

/* Catmull-Rom weights of the four taps -1..2 around t in [0, 1), and
 * their derivatives. */
static void cubic_weights(double t, double w[4], double d[4])
{
    double t2 = t * t, t3 = t2 * t;

    w[0] = 0.5 * (-t + 2 * t2 - t3);
    w[1] = 0.5 * (2 - 5 * t2 + 3 * t3);
    w[2] = 0.5 * (t + 4 * t2 - 3 * t3);
    w[3] = 0.5 * (-t2 + t3);
    d[0] = 0.5 * (-1 + 4 * t - 3 * t2);
    d[1] = 0.5 * (-10 * t + 9 * t2);
    d[2] = 0.5 * (1 + 8 * t - 9 * t2);
    d[3] = 0.5 * (-2 * t + 3 * t2);
}

double rapid_psfphot_psf_eval(const rapid_psfphot_psf *p, double dx, double dy,
                              double *gx, double *gy)
{
    double c = (p->n - 1) / 2.0, u = c + dx * p->over, v = c + dy * p->over;
    double wx[4], dwx[4], wy[4], dwy[4], val = 0, vx = 0, vy = 0;
    double scale = (double)p->over * p->over;
    int iu, iv, a, b;

    if (gx)
        *gx = 0;
    if (gy)
        *gy = 0;
    if (!(u > -1 && v > -1 && u < p->n && v < p->n))
        return 0;
    iu = (int)floor(u);
    iv = (int)floor(v);
    cubic_weights(u - iu, wx, dwx);
    cubic_weights(v - iv, wy, dwy);
    for (b = 0; b < 4; b++) {
        int jj = iv - 1 + b;
        double rx = 0, rdx = 0;
        if (jj < 0 || jj >= p->n)
            continue;
        for (a = 0; a < 4; a++) {
            int ii = iu - 1 + a;
            double s;
            if (ii < 0 || ii >= p->n)
                continue;
            s = p->data[(size_t)jj * p->n + ii];
            rx += wx[a] * s;
            rdx += dwx[a] * s;
        }
        val += wy[b] * rx;
        vx += wy[b] * rdx;
        vy += dwy[b] * rx;
    }
    if (gx)
        *gx = vx * scale * p->over;
    if (gy)
        *gy = vy * scale * p->over;
    return val * scale;
}

double rapid_psfphot_aperture_fraction(const rapid_psfphot_psf *p, double diam)
{
    const int sub = 16;
    double r = diam / 2, sum = 0;
    int h = (int)ceil(r) + 1, i, j, a, b;

    for (j = -h; j <= h; j++)
        for (i = -h; i <= h; i++) {
            int in = 0;
            for (b = 0; b < sub; b++)
                for (a = 0; a < sub; a++) {
                    double x = i - 0.5 + (a + 0.5) / sub, y = j - 0.5 + (b + 0.5) / sub;
                    in += x * x + y * y < r * r;
                }
            if (in)
                sum += rapid_psfphot_psf_eval(p, i, j, NULL, NULL) * in / (sub * sub);
        }
    return sum;
}

double rapid_psfphot_psf_fwhm(const rapid_psfphot_psf *p)
{
    double peak = rapid_psfphot_psf_eval(p, 0, 0, NULL, NULL), w = 0;
    int axis;

    for (axis = 0; axis < 2; axis++) {
        double lo = 0, hi = (p->n - 1) / 2.0 / p->over, m;
        int k;
        if (!(peak > 0))
            return NAN;
        for (k = 0; k < 60; k++) { /* bisection on one side of the peak */
            m = 0.5 * (lo + hi);
            if ((axis ? rapid_psfphot_psf_eval(p, 0, m, NULL, NULL)
                      : rapid_psfphot_psf_eval(p, m, 0, NULL, NULL)) > 0.5 * peak)
                lo = m;
            else
                hi = m;
        }
        w += lo;
    }
    return w; /* (2 lo_x + 2 lo_y) / 2 */
}

/* ------------------------------------------------------------ fitting */

/* How far (px, either axis) a fitted position may run from its start
 * before it is held there. */
#define RUNAWAY 2.0

typedef struct pixel {
    int i, j;
    double d, w;   /* value, 1/sigma^2 */
} pixel;

typedef struct group_fit {
    int m;             /* sources */
    const int *idx;    /* their indices */
    pixel *px;
    int npx;
    double *p, *trial, *A, *g, *delta, *M, *Gx, *Gy; /* 3m params etc. */
    int *cx, *cy;      /* the pixel of each source's starting position */
    unsigned char *fixed; /* 1: the source's position is held at its start */
    int reach;         /* a source's model is evaluated within this many
                        * px of it (in both axes), 0 beyond */
} group_fit;

/* Model of every source at every pixel (M, and derivatives Gx, Gy with
 * respect to the source's x, y) for parameters p; returns chi^2. */
static double model(group_fit *gf, const rapid_psfphot_psf *psf, const double *p,
                    int derivs)
{
    double chi2 = 0;
    int q, k;

    for (q = 0; q < gf->npx; q++) {
        double r = gf->px[q].d;
        for (k = 0; k < gf->m; k++) {
            double gx = 0, gy = 0, v = 0;
            /* beyond the reach, measured from the fixed starting pixel so
             * that the model stays a smooth function of the parameters,
             * the PSF's far wing is left out */
            if (abs(gf->px[q].i - gf->cx[k]) <= gf->reach &&
                abs(gf->px[q].j - gf->cy[k]) <= gf->reach)
                v = rapid_psfphot_psf_eval(psf, gf->px[q].i - p[3 * k + 1],
                                           gf->px[q].j - p[3 * k + 2],
                                           derivs ? &gx : NULL, derivs ? &gy : NULL);
            if (derivs) {
                size_t o = (size_t)q * gf->m + k;
                gf->M[o] = v;
                gf->Gx[o] = -gx; /* d/dx0 of M(i - x0) */
                gf->Gy[o] = -gy;
            }
            r -= p[3 * k] * v;
        }
        chi2 += r * r * gf->px[q].w;
    }
    return chi2;
}

/* Normal matrix A = J^T W J and gradient g = J^T W r at gf->p (model()
 * with derivs called just before). */
static void normal_equations(group_fit *gf)
{
    int np = 3 * gf->m, q, k, a, b;
    double *J = gf->delta; /* scratch row of 3m */

    memset(gf->A, 0, (size_t)np * np * sizeof *gf->A);
    memset(gf->g, 0, (size_t)np * sizeof *gf->g);
    for (q = 0; q < gf->npx; q++) {
        double r = gf->px[q].d, w = gf->px[q].w;
        for (k = 0; k < gf->m; k++) {
            size_t o = (size_t)q * gf->m + k;
            double f = gf->p[3 * k];
            J[3 * k] = gf->M[o];
            J[3 * k + 1] = gf->fixed[k] ? 0 : f * gf->Gx[o];
            J[3 * k + 2] = gf->fixed[k] ? 0 : f * gf->Gy[o];
            r -= f * gf->M[o];
        }
        for (a = 0; a < np; a++) {
            if (J[a] == 0)
                continue;
            gf->g[a] += w * J[a] * r;
            for (b = 0; b <= a; b++)
                gf->A[a * np + b] += w * J[a] * J[b];
        }
    }
    for (a = 0; a < np; a++)
        for (b = a + 1; b < np; b++)
            gf->A[a * np + b] = gf->A[b * np + a];
    /* a held position: its row and column are 0; 1 on the diagonal keeps
     * the matrix positive definite and its step 0 (g is 0 there) */
    for (k = 0; k < gf->m; k++)
        if (gf->fixed[k])
            for (a = 3 * k + 1; a <= 3 * k + 2; a++)
                gf->A[a * np + a] = 1;
}

/* Solve (A + lambda diag A) delta = g; 0 or -1 if not positive definite. */
static int lm_step(group_fit *gf, double lambda, double *work)
{
    int np = 3 * gf->m, a;

    memcpy(work, gf->A, (size_t)np * np * sizeof *work);
    for (a = 0; a < np; a++) {
        if (!(gf->A[a * np + a] > 0))
            return -1;
        work[a * np + a] *= 1 + lambda;
    }
    memcpy(gf->delta, gf->g, (size_t)np * sizeof *gf->delta);
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', np, work, np) != 0 ||
        LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', np, 1, work, np, gf->delta, 1) != 0)
        return -1;
    return 0;
}

static int fit_group(group_fit *gf, const rapid_psfphot_psf *psf,
                     const rapid_psfphot_opts *o, const double *x0,
                     const double *y0, rapid_psfphot_result *out, double *work)
{
    int m = gf->m, np = 3 * m, it, k, q, converged = 0, a;
    double chi2, lambda = 1e-3;
    double model_err = o->model_err >= 0 ? o->model_err
                       : psf->native ? RAPID_PSFPHOT_NATIVE_MODEL_ERR : 0;

    /* start: the detected positions, and the flux each source alone would
     * have there */
    for (k = 0; k < m; k++) {
        double sdm = 0, smm = 0;
        int s = gf->idx[k];
        gf->p[3 * k + 1] = x0[s];
        gf->p[3 * k + 2] = y0[s];
        for (q = 0; q < gf->npx; q++) {
            double v = rapid_psfphot_psf_eval(psf, gf->px[q].i - x0[s],
                                              gf->px[q].j - y0[s], NULL, NULL);
            sdm += gf->px[q].w * gf->px[q].d * v;
            smm += gf->px[q].w * v * v;
        }
        gf->p[3 * k] = smm > 0 ? sdm / smm : 0;
    }
    chi2 = model(gf, psf, gf->p, 1);
    for (it = 0; it < o->maxiter && !converged; it++) {
        double chi2t = chi2, before = chi2;
        int small = 1, stuck = 0, ran = 0;
        normal_equations(gf);
        for (;;) {
            if (lambda > 1e8) { /* no step lowers chi^2: at its minimum */
                stuck = 1;
                break;
            }
            if (lm_step(gf, lambda, work) != 0) {
                lambda *= 10;
                continue;
            }
            for (a = 0; a < np; a++)
                gf->trial[a] = gf->p[a] + gf->delta[a];
            chi2t = model(gf, psf, gf->trial, 0);
            if (chi2t <= chi2)
                break;
            lambda *= 10;
        }
        if (stuck) {
            converged = 1;
            break;
        }
        for (k = 0; k < m; k++) {
            double ef = gf->A[(3 * k) * np + 3 * k] > 0
                            ? 1 / sqrt(gf->A[(3 * k) * np + 3 * k]) : 1;
            /* a thousandth of the flux error, 1e-4 px: far below the
             * statistical errors */
            if (fabs(gf->delta[3 * k]) > 1e-3 * ef ||
                fabs(gf->delta[3 * k + 1]) > 1e-4 || fabs(gf->delta[3 * k + 2]) > 1e-4)
                small = 0;
        }
        memcpy(gf->p, gf->trial, (size_t)np * sizeof *gf->p);
        /* a source that runs more than RUNAWAY px from its start (a noise
         * peak, a residual's edge) is put back and held there: its flux is
         * then fitted at the detected position */
        for (k = 0; k < m; k++)
            if (!gf->fixed[k] && (fabs(gf->p[3 * k + 1] - x0[gf->idx[k]]) > RUNAWAY ||
                                  fabs(gf->p[3 * k + 2] - y0[gf->idx[k]]) > RUNAWAY)) {
                gf->fixed[k] = 1;
                gf->p[3 * k + 1] = x0[gf->idx[k]];
                gf->p[3 * k + 2] = y0[gf->idx[k]];
                ran = 1;
            }
        chi2 = model(gf, psf, gf->p, 1);
        if (ran) {
            lambda = 1e-3;
            converged = 0;
            continue;
        }
        /* the damping follows how well the quadratic model predicted the
         * fall of chi^2 (a zig-zag about the minimum falls much less) */
        {
            double pred = 0, rho;
            int b;
            for (a = 0; a < np; a++) {
                double ad = 0;
                for (b = 0; b < np; b++)
                    ad += gf->A[a * np + b] * gf->delta[b];
                pred += gf->delta[a] * (2 * gf->g[a] - ad);
            }
            rho = pred > 0 ? (before - chi2) / pred : 0;
            if (rho > 0.75)
                lambda = fmax(lambda / 3, 1e-7);
            else if (rho < 0.25)
                lambda *= 2;
        }
        /* steps too small to matter, or chi^2 no longer falling */
        converged = small || before - chi2 < 1e-6; /* chi^2 differences that
                                                    * small mean nothing */
    }
    /* errors: the inverse of the normal matrix at the solution */
    normal_equations(gf);
    memcpy(work, gf->A, (size_t)np * np * sizeof *work);
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', np, work, np) != 0 ||
        LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', np, work, np) != 0) {
        for (a = 0; a < np * np; a++)
            work[a] = NAN;
        converged = 0;
    }
    for (k = 0; k < m; k++) {
        rapid_psfphot_result *r = &out[gf->idx[k]];
        int s = gf->idx[k], n = 0;
        double c2 = 0, vf = work[(3 * k) * np + 3 * k];
        r->flux = gf->p[3 * k];
        r->x = gf->p[3 * k + 1];
        r->y = gf->p[3 * k + 2];
        r->fluxerr = sqrt(vf + pow(o->flux_floor * r->flux, 2));
        r->xerr = gf->fixed[k] ? NAN : sqrt(work[(3 * k + 1) * np + 3 * k + 1]);
        r->yerr = gf->fixed[k] ? NAN : sqrt(work[(3 * k + 2) * np + 3 * k + 2]);
        if (!converged)
            r->flags |= RAPID_PSFPHOT_NOCONV;
        if (gf->fixed[k])
            r->flags |= RAPID_PSFPHOT_FIXED;
        if (m > 1)
            r->flags |= RAPID_PSFPHOT_GROUP;
        /* chi^2 over the source's own box, with every member's model */
        for (q = 0; q < gf->npx; q++) {
            double res = gf->px[q].d, mod = 0, var;
            int l;
            if (abs(gf->px[q].i - (int)floor(x0[s] + 0.5)) > o->half ||
                abs(gf->px[q].j - (int)floor(y0[s] + 0.5)) > o->half)
                continue;
            for (l = 0; l < m; l++)
                mod += gf->p[3 * l] * gf->M[(size_t)q * m + l];
            res -= mod;
            var = 1 / gf->px[q].w + model_err * model_err * mod * mod;
            c2 += res * res / var;
            n++;
        }
        r->npix = n;
        r->chi2 = n > 3 ? c2 / (n - 3) : NAN;
    }
    return 0;
}

/* Union-find over sources whose boxes overlap. */
static int find(int *parent, int a)
{
    while (parent[a] != a)
        a = parent[a] = parent[parent[a]];
    return a;
}

typedef struct keyed {
    double key;
    int i;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *u = a, *v = b;
    if (u->key != v->key)
        return (u->key > v->key) - (u->key < v->key);
    return (u->i > v->i) - (u->i < v->i);
}

/* Pixels of the boxes of members idx[0..m) (no repeats, usable only). */
static int gather_pixels(const float *img, const float *sigma, int nx, int ny,
                         int half, const double *x0, const double *y0,
                         const int *idx, int m, pixel **px, int *npx)
{
    int xlo = nx, xhi = -1, ylo = ny, yhi = -1, k, i, j, w, h, n = 0;
    unsigned char *seen;

    for (k = 0; k < m; k++) {
        int cx = (int)floor(x0[idx[k]] + 0.5), cy = (int)floor(y0[idx[k]] + 0.5);
        xlo = cx - half < xlo ? cx - half : xlo;
        xhi = cx + half > xhi ? cx + half : xhi;
        ylo = cy - half < ylo ? cy - half : ylo;
        yhi = cy + half > yhi ? cy + half : yhi;
    }
    xlo = xlo < 0 ? 0 : xlo;
    ylo = ylo < 0 ? 0 : ylo;
    xhi = xhi >= nx ? nx - 1 : xhi;
    yhi = yhi >= ny ? ny - 1 : yhi;
    *npx = 0;
    if (xhi < xlo || yhi < ylo)
        return 0;
    w = xhi - xlo + 1;
    h = yhi - ylo + 1;
    if (!(seen = calloc((size_t)w * h, 1)) ||
        !(*px = realloc(*px, (size_t)w * h * sizeof **px))) {
        free(seen);
        return -1;
    }
    for (k = 0; k < m; k++) {
        int cx = (int)floor(x0[idx[k]] + 0.5), cy = (int)floor(y0[idx[k]] + 0.5);
        for (j = cy - half; j <= cy + half; j++)
            for (i = cx - half; i <= cx + half; i++) {
                size_t o;
                float s;
                if (i < xlo || i > xhi || j < ylo || j > yhi ||
                    seen[(j - ylo) * w + (i - xlo)])
                    continue;
                seen[(j - ylo) * w + (i - xlo)] = 1;
                o = (size_t)j * nx + i;
                s = sigma[o];
                if (!isfinite(img[o]) || !(s > 0) || !isfinite(s))
                    continue;
                (*px)[n].i = i;
                (*px)[n].j = j;
                (*px)[n].d = img[o];
                (*px)[n].w = 1.0 / ((double)s * s);
                n++;
            }
    }
    free(seen);
    *npx = n;
    return 0;
}

static void nodata(rapid_psfphot_result *r)
{
    r->flux = r->fluxerr = r->x = r->y = r->xerr = r->yerr = r->chi2 = NAN;
    r->npix = 0;
    r->flags |= RAPID_PSFPHOT_NODATA;
}

/* Fit the sources idx[0..m) together. */
static int fit_members(const float *img, const float *sigma, int nx, int ny,
                       const rapid_psfphot_psf *psf, const rapid_psfphot_opts *o,
                       const double *x0, const double *y0, const int *idx, int m,
                       rapid_psfphot_result *out, pixel **pxbuf)
{
    group_fit gf;
    double *mem = NULL, *work;
    int np = 3 * m, npx, k, rc = 0;
    size_t per;

    memset(&gf, 0, sizeof gf);
    if (gather_pixels(img, sigma, nx, ny, o->half, x0, y0, idx, m, pxbuf, &npx))
        return RAPID_E_NOMEM;
    if (npx < 3 * m + 1) {
        for (k = 0; k < m; k++)
            nodata(&out[idx[k]]);
        return 0;
    }
    per = (size_t)npx * m;
    mem = malloc((4 * (size_t)np + 2 * (size_t)np * np + 3 * per) * sizeof *mem);
    if (!mem)
        return RAPID_E_NOMEM;
    gf.m = m;
    gf.idx = idx;
    gf.px = *pxbuf;
    gf.npx = npx;
    gf.p = mem;
    gf.trial = gf.p + np;
    gf.g = gf.trial + np;
    gf.delta = gf.g + np;
    gf.A = gf.delta + np;
    work = gf.A + (size_t)np * np;
    gf.M = work + (size_t)np * np;
    gf.Gx = gf.M + per;
    gf.Gy = gf.Gx + per;
    if (!(gf.cx = malloc(2 * (size_t)m * sizeof *gf.cx)) ||
        !(gf.fixed = calloc((size_t)m, 1))) {
        free(gf.cx);
        free(mem);
        return RAPID_E_NOMEM;
    }
    gf.cy = gf.cx + m;
    for (k = 0; k < m; k++) {
        gf.cx[k] = (int)floor(x0[idx[k]] + 0.5);
        gf.cy[k] = (int)floor(y0[idx[k]] + 0.5);
    }
    gf.reach = o->half + 3;
    rc = fit_group(&gf, psf, o, x0, y0, out, work);
    free(gf.cx);
    free(gf.fixed);
    free(mem);
    return rc;
}

/* What the workers share (read-only but for the disjoint out entries of
 * their groups). */
typedef struct shared {
    const float *img, *sigma;
    int nx, ny;
    const rapid_psfphot_psf *psf;
    const rapid_psfphot_opts *o;
    const double *x0, *y0;
    const int *order;         /* source indices, grouped */
    const keyed *start;       /* start[g].i: the first of group g in order */
    int ngroups, n;
    rapid_psfphot_result *out;
} shared;

typedef struct worker {
    shared *sh;
    int first, step, rc;      /* groups first, first + step, ... */
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    const shared *sh = w->sh;
    pixel *pxbuf = NULL;
    int g;

    for (g = w->first; g < sh->ngroups && w->rc == 0; g += w->step) {
        int i = sh->start[g].i, j = g + 1 < sh->ngroups ? sh->start[g + 1].i : sh->n;
        int m = j - i, k;
        if (m <= sh->o->maxgroup) {
            w->rc = fit_members(sh->img, sh->sigma, sh->nx, sh->ny, sh->psf, sh->o,
                                sh->x0, sh->y0, sh->order + i, m, sh->out, &pxbuf);
            continue;
        }
        for (k = i; k < j && w->rc == 0; k++) {
            w->rc = fit_members(sh->img, sh->sigma, sh->nx, sh->ny, sh->psf, sh->o,
                                sh->x0, sh->y0, sh->order + k, 1, sh->out, &pxbuf);
            sh->out[sh->order[k]].flags |= RAPID_PSFPHOT_CROWDED;
        }
    }
    free(pxbuf);
    return NULL;
}

int rapid_psfphot(const float *img, const float *sigma, int nx, int ny,
                  const rapid_psfphot_psf *psf, const rapid_psfphot_opts *o,
                  int n, const double *x0, const double *y0,
                  rapid_psfphot_result *out, rapid_err *err)
{
    int *parent = NULL, *order = NULL, i, j, rc = 0, side, ng = 0;
    keyed *ks = NULL;

    if (!img || !sigma || !psf || !psf->data || !o || o->half < 1 ||
        o->maxgroup < 1 || n < 0 || (n > 0 && (!x0 || !y0 || !out)))
        return rapid_fail(err, RAPID_E_ARG, "PSF photometry: bad arguments");
    if (n == 0)
        return 0;
    parent = malloc((size_t)n * sizeof *parent);
    order = malloc((size_t)n * sizeof *order);
    ks = malloc((size_t)n * sizeof *ks);
    if (!parent || !order || !ks) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    side = 2 * o->half + 1;
    for (i = 0; i < n; i++) {
        parent[i] = i;
        ks[i].key = x0[i];
        ks[i].i = i;
        memset(&out[i], 0, sizeof out[i]);
    }
    /* boxes overlap when both offsets are below the side: a sweep in x */
    qsort(ks, (size_t)n, sizeof *ks, cmp_keyed);
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n && ks[j].key - ks[i].key < side; j++)
            if (fabs(y0[ks[j].i] - y0[ks[i].i]) < side) {
                int a = find(parent, ks[i].i), b = find(parent, ks[j].i);
                if (a != b)
                    parent[a] = b;
            }
    /* the members of each group together, in index order */
    for (i = 0; i < n; i++) {
        ks[i].key = find(parent, i);
        ks[i].i = i;
    }
    qsort(ks, (size_t)n, sizeof *ks, cmp_keyed);
    for (i = 0; i < n; i++)
        order[i] = ks[i].i;
    /* group starts; the groups are fitted by nthreads workers in turn */
    for (i = 0; i < n; i = j) {
        for (j = i; j < n && ks[j].key == ks[i].key; j++)
            ;
        ks[ng++].i = i; /* ks[].key is no longer needed past here */
    }
    {
        worker w[RAPID_PSFPHOT_MAXTHREADS];
        pthread_t tid[RAPID_PSFPHOT_MAXTHREADS];
        int nt = o->nthreads < 1 ? 1 : o->nthreads, created[RAPID_PSFPHOT_MAXTHREADS], t;
        shared sh;

        if (nt > RAPID_PSFPHOT_MAXTHREADS)
            nt = RAPID_PSFPHOT_MAXTHREADS;
        if (nt > ng)
            nt = ng;
        sh.img = img, sh.sigma = sigma, sh.nx = nx, sh.ny = ny, sh.psf = psf;
        sh.o = o, sh.x0 = x0, sh.y0 = y0, sh.order = order, sh.start = ks;
        sh.ngroups = ng, sh.n = n, sh.out = out;
        for (t = 0; t < nt; t++) {
            w[t].sh = &sh, w[t].first = t, w[t].step = nt, w[t].rc = 0;
            created[t] = t > 0 && pthread_create(&tid[t], NULL, run_worker, &w[t]) == 0;
        }
        for (t = 0; t < nt; t++) /* this thread's share, and any not started */
            if (!created[t])
                run_worker(&w[t]);
        for (t = 1; t < nt; t++)
            if (created[t])
                pthread_join(tid[t], NULL);
        for (t = 0; t < nt; t++)
            if (w[t].rc)
                rc = w[t].rc;
    }
cleanup:
    free(parent);
    free(order);
    free(ks);
    if (rc)
        return rapid_fail(err, rc, "PSF photometry of %d sources: no memory", n);
    return 0;
}
