/* sim_render.c - one detector image of the simulated sky, and injection.
 *
 * An image is first the expected charge per pixel in electrons: galaxies,
 * stars, transients and hot pixels (the "source" image), on top of a flat
 * sky + dark level.  It is then observed: Poisson noise on the charge,
 * the detector's defects (sim_defects.c), cosmic rays (those the
 * up-the-ramp fit would find left out and flagged), read noise, gain and
 * saturation, with the DQ flags of each, and ERR from the result.
 *
 * Galaxies are Sersic profiles integrated over sub-pixels into a layer of
 * their own, which is convolved once, by FFT, with the PSF of the detector
 * centre; stars and transients use the PSF at their own position
 * (rapid_psf_field_add).  The galaxy PSF is therefore exact only at the
 * centre -- a price paid for one convolution per image instead of one per
 * galaxy (docs/simulator.md).
 */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/dq.h"
#include "rapid/fft.h"
#include "rapid/rng.h"
#include "rapid/timeutil.h"
#include "rapid/version.h"
#include "sim_internal.h"

/* Names of the random streams, rapid_rng_derive(seed, pointing, sca, name):
 * each image draws from its own, so it comes out the same whatever order
 * images are made in.  "REND" + n keeps them apart from other modules'. */
#define RNG_NOISE 0x52454e4400000001ull
#define RNG_COSMIC 0x52454e4400000002ull
#define RNG_HOT 0x52454e4400000003ull
#define RNG_INJECT 0x52454e4400000004ull
#define RNG_DEFECT_NOISE 0x52454e4400000005ull
#define RNG_JUMP_NOISE 0x52454e4400000006ull
/* Hot pixels belong to the detector, not to a pointing. */
#define RNG_ANY_POINTING UINT64_MAX

/* A galaxy stamp reaches out until it holds this fraction of the light, or
 * leaves out less than GAL_LEFT_E electrons (then it is renormalised to
 * the total), but no further than GAL_MAX_RADIUS pixels. */
#define GAL_ENCLOSED 0.995
#define GAL_LEFT_E 2.0
#define GAL_MAX_RADIUS 96
#define GAL_MAX_BOX (2 * GAL_MAX_RADIUS + 3)
/* ... tapered smoothly to zero from this fraction of that radius */
#define GAL_TAPER 0.8
/* Galaxies of fewer electrons are integrated more coarsely. */
#define GAL_FINE_E 1000.0
/* Levels of 3 x 3 refinement of sub-pixels at the centre of a profile. */
#define CUSP_DEPTH 5
/* A galaxy's core: the light above the profile's value this far from the
 * centre (pixels, minor axis), drawn as a Gaussian of this rms (pixels)
 * over the pixels up to CORE_REACH from the centre's. */
#define CORE_RADIUS 0.75
#define CORE_SIGMA 0.5
#define CORE_REACH 3

/* PA_FPA = PA_OBSY + 90 + theta_fpa with theta_fpa = -60 degrees
 * (GalSim's galsim.roman WCS, Roman cycle 7 focal plane). */
#define FPA_MINUS_OBSY 30.0

typedef struct render {
    const rapid_sim_config *c;
    const rapid_sim_scene *s;
    const rapid_sim_pointing *p;
    const rapid_psf_field *psf;
    int sca, nx, ny;
    int half;           /* PSF stamp half-size, native pixels */
    int fi;             /* filter index, fid - 1 */
    double t_mid;       /* MJD at mid-exposure */
    double gain;
    rapid_wcs wcs;
    double foot_ra[5], foot_dec[5];
    float *mu;          /* expected source electrons per pixel, nx*ny */
    uint32_t *dq;       /* DQ bits per pixel, nx*ny */
    long ndefect;       /* pixels of the defect map */
    long nsat, njump;   /* pixels saturated; cosmic-ray pixels fitted out */
    long npersist;      /* pixels flagged PERSISTENCE */
} render;

/* Sources (indices into s->src) at their pixel positions. */
typedef struct placed {
    int64_t *idx;
    double *x, *y;
    int n;
} placed;

/* A transient or variable near the image, as it is at mid-exposure. */
typedef struct hit {
    int64_t k;          /* index into s->tr */
    double x, y, mag, flux_e;
} hit;

typedef struct hits {
    hit *h;
    int n;
} hits;

double sim_mag_to_dn(const rapid_filter *f, int sca, double mag,
                     double exptime, double gain)
{
    return pow(10.0, -0.4 * (mag - rapid_zero_point(f, sca))) * exptime /
           gain;
}

static double mag_to_e(const render *r, double mag)
{
    return sim_mag_to_dn(r->p->filter, r->sca, mag, r->p->exptime, 1.0);
}

/* ------------------------------------------------------------ selection */

static double margin_pixels(const render *r)
{
    return r->half + GAL_MAX_RADIUS + 2;
}

static void placed_release(placed *pl)
{
    free(pl->idx);
    free(pl->x);
    free(pl->y);
    memset(pl, 0, sizeof *pl);
}

/* Every static source whose light can reach the image. */
static int place_sources(render *r, placed *pl, rapid_err *err)
{
    double margin = margin_pixels(r) * rapid_wcs_pixscale(&r->wcs) / 3600.0;
    double *ra = NULL, *dec = NULL;
    int64_t n, i;
    int rc = 0;

    n = sim_scene_select(r->s, r->foot_ra, r->foot_dec, margin, &pl->idx, err);
    if (n < 0)
        return (int)n;
    if (n > INT32_MAX)
        return rapid_fail(err, RAPID_E_RANGE,
                          "%" PRId64 " sources on one detector: too many", n);
    pl->n = (int)n;
    ra = malloc(((size_t)n + 1) * sizeof *ra);
    dec = malloc(((size_t)n + 1) * sizeof *dec);
    pl->x = malloc(((size_t)n + 1) * sizeof *pl->x);
    pl->y = malloc(((size_t)n + 1) * sizeof *pl->y);
    if (!ra || !dec || !pl->x || !pl->y) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory placing %" PRId64
                        " sources", n);
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        ra[i] = r->s->src[pl->idx[i]].ra;
        dec[i] = r->s->src[pl->idx[i]].dec;
    }
    rc = rapid_wcs_sky2pix(&r->wcs, pl->n, ra, dec, pl->x, pl->y, err);
cleanup:
    free(ra);
    free(dec);
    return rc;
}

/* ------------------------------------------------------------- galaxies */

/* A Sersic profile on the pixel grid: w = (r/r_e)^2 is a quadratic form in
 * the pixel offset, and the surface brightness is exp(-b w^(1/2n)).
 *
 * The layer holds pixel integrals, which put all the light of a cusp
 * smaller than a pixel at that pixel's centre: convolved with the PSF, a
 * compact n = 4 galaxy would come out up to 0.05 px towards the nearest
 * pixel centre (aliasing).  So the profile is clipped at its value on the
 * ellipse 0.75 px from the centre (along the minor axis), and the excess
 * above the clip -- the core -- is put in the layer as a Gaussian of
 * 0.5 px rms at the exact centre: its pixel integrals are nearly free of
 * aliasing (its transform is 0.007 at one cycle per pixel), so the centre
 * stays put to ~0.002 px, at the price of a core a little rounder than
 * the profile's. */
typedef struct sersic {
    double xc, yc;      /* centre, image pixels */
    double m[3];        /* w = m0 dx^2 + 2 m1 dx dy + m2 dy^2 */
    float mf[3];        /* the same in float, for the inner loops */
    float bn, expo;     /* b_n and 1/(2n) */
    float wmax;         /* edge of the stamp, in w */
    float wtaper;       /* where the taper to the edge starts */
    float vclip;        /* the profile on the core ellipse */
    int x0, x1, y0, y1; /* pixel box, inclusive */
    float core_r2;      /* pixels within this squared distance ... */
    int core_sub;       /* ... get this many sub-pixels per axis, */
    float mid_r2;       /* those within this one 3, the others 1 */
    int depth;          /* refinements of sub-pixels at the cusp */
} sersic;

/* b_n such that r_e holds half the light: P(2n, b_n) = 1/2.  Ciotti &
 * Bertin (1999) give it to 1e-6 for n > 0.36; one Newton step on the
 * incomplete gamma function makes it exact. */
static double sersic_bn(double n)
{
    double b = 2 * n - 1.0 / 3 + 4 / (405 * n) + 46 / (25515 * n * n) +
               131 / (1148175 * n * n * n);
    double f = gsl_sf_gamma_inc_P(2 * n, b) - 0.5;
    double df = exp((2 * n - 1) * log(b) - b - gsl_sf_lngamma(2 * n));

    return b - f / df;
}

/* Pixel offsets per arcsec east (je) and north (jn) at each galaxy:
 * finite differences of the WCS over one arcsec. */
static int galaxy_jacobians(render *r, const placed *pl, const int *gal,
                            int ng, double *je, double *jn, rapid_err *err)
{
    double *ra = malloc(2 * (size_t)ng * sizeof *ra + 1);
    double *dec = malloc(2 * (size_t)ng * sizeof *dec + 1);
    double *x = malloc(2 * (size_t)ng * sizeof *x + 1);
    double *y = malloc(2 * (size_t)ng * sizeof *y + 1);
    const double d = 1.0 / 3600;
    int i, rc = 0;

    if (!ra || !dec || !x || !y) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory for %d galaxies", ng);
        goto cleanup;
    }
    for (i = 0; i < ng; i++) {
        const sim_source *g = &r->s->src[pl->idx[gal[i]]];
        double cd = fmax(cos(g->dec * M_PI / 180), 1e-9);
        ra[2 * i] = g->ra + d / cd;
        dec[2 * i] = g->dec;
        ra[2 * i + 1] = g->ra;
        /* step towards the equator so that the pole is never crossed */
        dec[2 * i + 1] = g->dec > 0 ? g->dec - d : g->dec + d;
    }
    if ((rc = rapid_wcs_sky2pix(&r->wcs, 2 * ng, ra, dec, x, y, err)) != 0)
        goto cleanup;
    for (i = 0; i < ng; i++) {
        const sim_source *g = &r->s->src[pl->idx[gal[i]]];
        double sn = g->dec > 0 ? -1 : 1;
        je[2 * i] = x[2 * i] - pl->x[gal[i]];
        je[2 * i + 1] = y[2 * i] - pl->y[gal[i]];
        jn[2 * i] = sn * (x[2 * i + 1] - pl->x[gal[i]]);
        jn[2 * i + 1] = sn * (y[2 * i + 1] - pl->y[gal[i]]);
    }
cleanup:
    free(ra);
    free(dec);
    free(x);
    free(y);
    return rc;
}

/* The quadratic form of galaxy g in pixel offsets, given the local
 * Jacobian [je jn] (pixels per arcsec east and north). */
static void sersic_shape(const sim_source *g, const double je[2],
                         const double jn[2], double m[3])
{
    /* (dx, dy) -> (east, north) arcsec is the inverse of [je jn] */
    double det = je[0] * jn[1] - jn[0] * je[1];
    double ie[2] = {jn[1] / det, -jn[0] / det}; /* east  = ie . d */
    double in[2] = {-je[1] / det, je[0] / det}; /* north = in . d */
    /* a degenerate shape from a caller's scene becomes a tiny one */
    double q = fmin(fmax(g->q, 0.05), 1), re = fmax(g->r_e, 1e-3);
    double pa = g->pa * M_PI / 180, q2 = q * q, re2 = re * re, A[2], B[2];
    int k;

    /* major-axis coordinate a = A . d, minor-axis b = B . d (arcsec) */
    for (k = 0; k < 2; k++) {
        A[k] = sin(pa) * ie[k] + cos(pa) * in[k];
        B[k] = cos(pa) * ie[k] - sin(pa) * in[k];
    }
    m[0] = (A[0] * A[0] + B[0] * B[0] / q2) / re2;
    m[1] = (A[0] * A[1] + B[0] * B[1] / q2) / re2;
    m[2] = (A[1] * A[1] + B[1] * B[1] / q2) / re2;
}

/* How finely to integrate: the effort follows the flux.  A galaxy of a few
 * hundred electrons is lost in its pixels' sky noise (~11 e), where errors
 * of a percent in its pixel integrals cannot be seen (the total is exact
 * either way), and such galaxies are nine in ten of those to 28 mag. */
static void sersic_effort(sersic *sp, double flux, double minor_px)
{
    if (flux >= GAL_FINE_E) {
        sp->core_r2 = 6.25f;
        sp->core_sub = minor_px >= 2 ? 5 : minor_px >= 0.7 ? 7 : 9;
        sp->mid_r2 = 25.0f;
        sp->depth = CUSP_DEPTH;
    } else {
        sp->core_r2 = 4.0f;
        sp->core_sub = 3;
        sp->mid_r2 = 0.0f;
        sp->depth = 2;
    }
}

/* The profile of galaxy g of flux electrons at pixel position (x, y); 0 if
 * its stamp misses [lo, hix) x [lo, hiy) (where the layer holds light). */
static int sersic_setup(const sim_source *g, double flux, double x, double y,
                        const double je[2], const double jn[2], int lo,
                        int hix, int hiy, sersic *sp)
{
    /* where the b_n series holds, and beyond any real galaxy */
    double n = fmin(fmax(g->sersic_n, 0.36), 10), X, det, hx, hy, tr, lmax;
    double lmin, wmax;
    int k;
    /* what the stamp leaves out is put back inside it: keep that small in
     * electrons, and under 5 % */
    double enclosed = fmax(0.95, fmin(GAL_ENCLOSED, 1 - GAL_LEFT_E / flux));

    sersic_shape(g, je, jn, sp->m);
    for (k = 0; k < 3; k++)
        sp->mf[k] = (float)sp->m[k];
    sp->bn = (float)sersic_bn(n);
    sp->expo = (float)(0.5 / n);
    /* eigenvalues of m: the largest along the minor axis */
    det = sp->m[0] * sp->m[2] - sp->m[1] * sp->m[1];
    tr = sp->m[0] + sp->m[2];
    lmax = 0.5 * tr + sqrt(fmax(0.25 * tr * tr - det, 0));
    lmin = det / lmax;
    /* the ellipse holding that much of the light, or the largest one that
     * fits in GAL_MAX_RADIUS */
    X = pow(gsl_cdf_gamma_Pinv(enclosed, 2 * n, 1.0) / sp->bn, n);
    wmax = fmin(X * X, GAL_MAX_RADIUS * GAL_MAX_RADIUS * lmin);
    sp->wmax = (float)wmax;
    sp->wtaper = (float)(GAL_TAPER * GAL_TAPER * wmax);
    /* its bounding box */
    hx = sqrt(wmax * sp->m[2] / det);
    hy = sqrt(wmax * sp->m[0] / det);
    sp->xc = x;
    sp->yc = y;
    sp->x0 = (int)floor(x - hx + 0.5);
    sp->x1 = (int)floor(x + hx + 0.5);
    sp->y0 = (int)floor(y - hy + 0.5);
    sp->y1 = (int)floor(y + hy + 0.5);
    sp->vclip = expf(-sp->bn * powf((float)(CORE_RADIUS * CORE_RADIUS * lmax),
                                    sp->expo));
    sersic_effort(sp, flux, 1 / sqrt(lmax));
    return sp->x1 >= lo && sp->y1 >= lo && sp->x0 < hix && sp->y0 < hiy;
}

/* The profile, tapered smoothly to 0 between wtaper and wmax: a hard edge
 * that pixel centres cross unevenly would move a big galaxy's centroid. */
static float profile(const sersic *sp, float dx, float dy)
{
    float w = sp->mf[0] * dx * dx + 2 * sp->mf[1] * dx * dy +
              sp->mf[2] * dy * dy, v, t;

    if (w >= sp->wmax)
        return 0.0f;
    v = expf(-sp->bn * powf(w, sp->expo));
    if (w <= sp->wtaper)
        return v;
    t = (sp->wmax - w) / (sp->wmax - sp->wtaper);
    return v * t * t * (3 - 2 * t);
}

/* Means of the profile and of the profile clipped at vclip over a square
 * cell of side h centred (cx, cy) from the galaxy centre.  A cell on or
 * next to the centre is cut 3 x 3, again and again, so that the light of
 * the cusp is counted right. */
static void cell_mean(const sersic *sp, float cx, float cy, float h,
                      int depth, float v[2])
{
    float t = h / 3, u[2];
    int i, j;

    if (depth == 0 || cx * cx + cy * cy >= 2.25f * h * h) {
        v[0] = profile(sp, cx, cy);
        v[1] = v[0] < sp->vclip ? v[0] : sp->vclip;
        return;
    }
    v[0] = v[1] = 0;
    for (j = -1; j <= 1; j++)
        for (i = -1; i <= 1; i++) {
            cell_mean(sp, cx + (float)i * t, cy + (float)j * t, t, depth - 1, u);
            v[0] += u[0] / 9;
            v[1] += u[1] / 9;
        }
}

/* The same over a pixel whose centre is (cx, cy) from the galaxy centre,
 * on an s x s sub-pixel grid. */
static void pixel_mean(const sersic *sp, float cx, float cy, int s, float v[2])
{
    float step = 1.0f / (float)s, o = 0.5f * step - 0.5f, u[2];
    int i, j;

    v[0] = v[1] = 0;
    for (j = 0; j < s; j++)
        for (i = 0; i < s; i++) {
            cell_mean(sp, cx + o + (float)i * step, cy + o + (float)j * step,
                      step, sp->depth, u);
            v[0] += u[0];
            v[1] += u[1];
        }
    v[0] /= (float)(s * s);
    v[1] /= (float)(s * s);
}

/* The same for a pixel: sub-pixels per axis fine near the cusp, coarse in
 * the smooth wings, and in the far wings (most pixels of a big galaxy) one
 * sample, taken without ceremony. */
static void pixel_value(const sersic *sp, float cx, float cy, float v[2])
{
    float d2 = cx * cx + cy * cy;

    if (d2 >= sp->core_r2 && d2 >= sp->mid_r2) {
        v[0] = profile(sp, cx, cy);
        v[1] = v[0] < sp->vclip ? v[0] : sp->vclip;
        return;
    }
    pixel_mean(sp, cx, cy, d2 < sp->core_r2 ? sp->core_sub : 3, v);
}

/* The pixels of the row cy (offset from the centre) that the edge ellipse
 * w = wmax touches: i0 .. i1 in the box.  The ellipse's x extent over the
 * row's band of dy is reached at the band's edges or at the ellipse's own
 * leftmost and rightmost points, if they are in the band. */
static void row_span(const sersic *sp, double cy, int *i0, int *i1)
{
    double m0 = sp->m[0], m1 = sp->m[1], m2 = sp->m[2], w = sp->wmax;
    double det = m0 * m2 - m1 * m1, hy = sqrt(w * m0 / det);
    double hx = sqrt(w * m2 / det), lo = INFINITY, hi = -INFINITY;
    double dys[4] = {cy - 0.5, cy + 0.5, -m1 * hx / m2, m1 * hx / m2};
    int k;

    for (k = 0; k < 4; k++) {
        double dy = dys[k], r;
        if (k >= 2 && (dy < cy - 0.5 || dy > cy + 0.5))
            continue;
        dy = fmax(-hy, fmin(hy, dy));
        r = sqrt(fmax(w * m0 - det * dy * dy, 0));
        lo = fmin(lo, (-m1 * dy - r) / m0);
        hi = fmax(hi, (-m1 * dy + r) / m0);
    }
    *i0 = (int)fmax(0, ceil(lo - 0.5 + sp->xc - sp->x0));
    *i1 = (int)fmin(sp->x1 - sp->x0, floor(hi + 0.5 + sp->xc - sp->x0));
}

/* Integrate the profile over its stamp: body[] gets the clipped pixel
 * means (0 outside the edge ellipse); *all and *clipped the sums with and
 * without the clip. */
static void sersic_stamp(const sersic *sp, float *body, double *all,
                         double *clipped)
{
    int bw = sp->x1 - sp->x0 + 1, bh = sp->y1 - sp->y0 + 1, i, j, i0, i1;

    *all = *clipped = 0;
    memset(body, 0, (size_t)bw * bh * sizeof *body);
    for (j = 0; j < bh; j++) {
        float cy = (float)(sp->y0 + j - sp->yc);
        row_span(sp, cy, &i0, &i1);
        for (i = i0; i <= i1; i++) {
            float cx = (float)(sp->x0 + i - sp->xc), v[2];
            pixel_value(sp, cx, cy, v);
            body[(size_t)j * bw + i] = v[1];
            *all += v[0];
            *clipped += v[1];
        }
    }
}

/* Where galaxies are painted: image pixel (x, y) is element (x + off,
 * y + off) of rows of stride floats; only w x h of them hold light. */
typedef struct layer_view {
    float *data;
    size_t stride;
    int off, w, h;
} layer_view;

static void layer_add(const layer_view *lv, int x, int y, float v)
{
    x += lv->off;
    y += lv->off;
    if (x >= 0 && x < lv->w && y >= 0 && y < lv->h)
        lv->data[(size_t)y * lv->stride + x] += v;
}

/* Pixel integrals of a unit Gaussian of CORE_SIGMA centred at c, for the
 * pixels c0 .. c0 + 2 CORE_REACH. */
static void gauss_integrals(double c, int c0, double *w)
{
    double s = CORE_SIGMA * M_SQRT2;
    int k;

    for (k = 0; k <= 2 * CORE_REACH; k++)
        w[k] = 0.5 * (erf((c0 + k + 0.5 - c) / s) - erf((c0 + k - 0.5 - c) / s));
}

/* Add the galaxy, normalised to flux, to the layer: the clipped body, then
 * the core as a Gaussian at the centre. */
static void sersic_paint(const sersic *sp, double flux, float *body,
                         const layer_view *lv)
{
    int bw = sp->x1 - sp->x0 + 1, bh = sp->y1 - sp->y0 + 1, i, j;
    int cx0 = (int)floor(sp->xc + 0.5) - CORE_REACH;
    int cy0 = (int)floor(sp->yc + 0.5) - CORE_REACH;
    double all, clipped, core, wx[2 * CORE_REACH + 1], wy[2 * CORE_REACH + 1];
    float scale;

    sersic_stamp(sp, body, &all, &clipped);
    if (!(all > 0))
        return;
    scale = (float)(flux / all);
    for (j = 0; j < bh; j++)
        for (i = 0; i < bw; i++)
            layer_add(lv, sp->x0 + i, sp->y0 + j, scale * body[(size_t)j * bw + i]);
    core = flux * (1 - clipped / all);
    gauss_integrals(sp->xc, cx0, wx);
    gauss_integrals(sp->yc, cy0, wy);
    for (j = 0; j <= 2 * CORE_REACH; j++)
        for (i = 0; i <= 2 * CORE_REACH; i++)
            layer_add(lv, cx0 + i, cy0 + j, (float)(core * wx[i] * wy[j]));
}

/* The galaxy layer: (nx + 2 half) x (ny + 2 half) with room for the PSF
 * wings on every side, padded to FFT-friendly sizes, in FFTW's in-place
 * r2c layout (rows of 2 (Nx/2 + 1) floats). */
typedef struct layer {
    int Nx, Ny, w, h;   /* FFT grid; the part that holds light */
    size_t stride;      /* floats per row */
    float *data;        /* rapid_fft_alloc'd, Ny * stride */
} layer;

static int layer_alloc(layer *L, int nx, int ny, int half, rapid_err *err)
{
    L->w = nx + 2 * half;
    L->h = ny + 2 * half;
    L->Nx = rapid_fft_good_size(L->w);
    L->Ny = rapid_fft_good_size(L->h);
    L->stride = rapid_fft_real_stride(L->Nx);
    L->data = rapid_fft_alloc((size_t)L->Ny * L->stride * sizeof(float));
    if (!L->data)
        return rapid_fail(err, RAPID_E_NOMEM,
                          "out of memory for a %d x %d galaxy layer", L->Nx,
                          L->Ny);
    memset(L->data, 0, (size_t)L->Ny * L->stride * sizeof(float));
    return 0;
}

/* 1/sinc(k/N) for k = 0..N/2 and the negative frequencies after. */
static void inverse_sinc(double *out, int N, int nfreq)
{
    int k;

    for (k = 0; k < nfreq; k++) {
        double f = (k <= N / 2 ? k : k - N) / (double)N;
        out[k] = f == 0 ? 1.0 : M_PI * f / sin(M_PI * f);
    }
}

/* Multiply the layer's transform by the kernel's, divided by the pixel
 * box's: the layer already holds pixel integrals and the PSF file is
 * pixel-convolved too, and the box must count once. */
static int multiply_spectra(layer *L, const float *kern, rapid_err *err)
{
    int nfx = L->Nx / 2 + 1, i, j;
    double *sx = malloc((size_t)nfx * sizeof *sx);
    double *sy = malloc((size_t)L->Ny * sizeof *sy);
    double norm = 1.0 / ((double)L->Nx * L->Ny);
    float (*a)[2] = (float (*)[2])L->data;
    const float (*b)[2] = (const float (*)[2])kern;

    if (!sx || !sy) {
        free(sx);
        free(sy);
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for the galaxy "
                          "convolution");
    }
    inverse_sinc(sx, L->Nx, nfx);
    inverse_sinc(sy, L->Ny, L->Ny);
    for (j = 0; j < L->Ny; j++)
        for (i = 0; i < nfx; i++) {
            size_t k = (size_t)j * nfx + i;
            float s = (float)(norm * sx[i] * sy[j]);
            float re = a[k][0] * b[k][0] - a[k][1] * b[k][1];
            float im = a[k][0] * b[k][1] + a[k][1] * b[k][0];
            a[k][0] = re * s;
            a[k][1] = im * s;
        }
    free(sx);
    free(sy);
    return 0;
}

/* The PSF file image, wrapped around the origin of an FFT grid. */
static int kernel_fill(const render *r, const layer *L, float *kern,
                       rapid_err *err)
{
    rapid_image p = RAPID_IMAGE_INIT;
    int m = 2 * r->half + 1, i, j, rc;

    if ((rc = rapid_psf_field_image(r->psf, m, &p, err)) != 0)
        return rc;
    memset(kern, 0, (size_t)L->Ny * L->stride * sizeof(float));
    for (j = 0; j < m; j++)
        for (i = 0; i < m; i++) {
            int kx = (i - r->half + L->Nx) % L->Nx;
            int ky = (j - r->half + L->Ny) % L->Ny;
            kern[(size_t)ky * L->stride + kx] = p.data[(size_t)j * m + i];
        }
    rapid_image_release(&p);
    return 0;
}

/* Convolve the layer with the centre PSF (circularly: the zero margins make
 * it linear) and add the part over the image to mu. */
static int convolve_layer(render *r, layer *L, rapid_err *err)
{
    float *kern = rapid_fft_alloc((size_t)L->Ny * L->stride * sizeof(float));
    const rapid_fft_plan *fwd = NULL, *bwd = NULL;
    int i, j, rc = 0;

    if (!kern)
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for the PSF "
                          "kernel");
    /* in place, from the shared cache: every detector of a run has the
     * same layer size, so the plans are made once */
    if ((rc = rapid_fft_plan_get(NULL, RAPID_FFT_R2C, L->Ny, L->Nx, 1, &fwd,
                                 err)) < 0 ||
        (rc = rapid_fft_plan_get(NULL, RAPID_FFT_C2R, L->Ny, L->Nx, 1, &bwd,
                                 err)) < 0 ||
        (rc = kernel_fill(r, L, kern, err)) != 0)
        goto cleanup;
    rapid_fft_r2c(fwd, L->data, (float _Complex *)L->data);
    rapid_fft_r2c(fwd, kern, (float _Complex *)kern);
    if ((rc = multiply_spectra(L, kern, err)) != 0)
        goto cleanup;
    rapid_fft_c2r(bwd, (float _Complex *)L->data, L->data);
    for (j = 0; j < r->ny; j++) {
        const float *src = L->data + (size_t)(j + r->half) * L->stride + r->half;
        float *dst = r->mu + (size_t)j * r->nx;
        for (i = 0; i < r->nx; i++)
            dst[i] += src[i];
    }
cleanup:
    rapid_fft_free(kern);
    return rc;
}

/* Indices (into pl) of the galaxies, *n of them.  0 or RAPID_E_NOMEM. */
static int list_galaxies(const render *r, const placed *pl, int **gal, int *n)
{
    int i;

    *n = 0;
    *gal = malloc(((size_t)pl->n + 1) * sizeof **gal);
    if (!*gal)
        return RAPID_E_NOMEM;
    for (i = 0; i < pl->n; i++)
        if (r->s->src[pl->idx[i]].type == SIM_GALAXY)
            (*gal)[(*n)++] = i;
    return 0;
}

static int add_galaxies(render *r, const placed *pl, rapid_err *err)
{
    layer L = {0, 0, 0, 0, 0, NULL};
    layer_view lv;
    double *je = NULL, *jn = NULL;
    float *body = NULL;
    int *gal = NULL, ng, i, rc = 0;

    if (list_galaxies(r, pl, &gal, &ng) != 0)
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory listing galaxies");
    if (ng == 0)
        goto cleanup;
    je = malloc(2 * (size_t)ng * sizeof *je);
    jn = malloc(2 * (size_t)ng * sizeof *jn);
    body = malloc((size_t)GAL_MAX_BOX * GAL_MAX_BOX * sizeof *body);
    if (!je || !jn || !body) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory for %d galaxies", ng);
        goto cleanup;
    }
    if ((rc = galaxy_jacobians(r, pl, gal, ng, je, jn, err)) != 0 ||
        (rc = layer_alloc(&L, r->nx, r->ny, r->half, err)) != 0)
        goto cleanup;
    lv = (layer_view){L.data, L.stride, r->half, L.w, L.h};
    for (i = 0; i < ng; i++) {
        const sim_source *g = &r->s->src[pl->idx[gal[i]]];
        double flux = mag_to_e(r, g->mag[r->fi]);
        sersic sp;
        if (flux > 0 &&
            sersic_setup(g, flux, pl->x[gal[i]], pl->y[gal[i]], je + 2 * i,
                         jn + 2 * i, -r->half, r->nx + r->half,
                         r->ny + r->half, &sp))
            sersic_paint(&sp, flux, body, &lv);
    }
    rc = convolve_layer(r, &L, err);
cleanup:
    rapid_fft_free(L.data);
    free(je);
    free(jn);
    free(body);
    free(gal);
    return rc;
}

/* -------------------------------------------------- stars and transients */

/* Transients and variables whose light can reach the image, with their
 * brightness at mid-exposure. */
static int find_transients(render *r, hits *out, rapid_err *err)
{
    double reach = 0, margin = margin_pixels(r);
    double *ra = NULL, *dec = NULL, *x = NULL, *y = NULL;
    int64_t k, *cand = NULL;
    int n = 0, i, rc = 0;

    for (i = 1; i < 5; i++)
        reach = fmax(reach, rapid_sky_distance(r->foot_ra[0], r->foot_dec[0],
                                               r->foot_ra[i], r->foot_dec[i]));
    reach += margin * rapid_wcs_pixscale(&r->wcs) / 3600.0;
    cand = malloc(((size_t)r->s->ntr + 1) * sizeof *cand);
    if (!cand)
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for transients");
    for (k = 0; k < r->s->ntr; k++)
        if (rapid_sky_distance(r->foot_ra[0], r->foot_dec[0], r->s->tr[k].ra,
                               r->s->tr[k].dec) < reach)
            cand[n++] = k;
    ra = malloc(((size_t)n + 1) * sizeof *ra);
    dec = malloc(((size_t)n + 1) * sizeof *dec);
    x = malloc(((size_t)n + 1) * sizeof *x);
    y = malloc(((size_t)n + 1) * sizeof *y);
    out->h = malloc(((size_t)n + 1) * sizeof *out->h);
    out->n = 0;
    if (!ra || !dec || !x || !y || !out->h) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory for %d transients", n);
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        ra[i] = r->s->tr[cand[i]].ra;
        dec[i] = r->s->tr[cand[i]].dec;
    }
    if ((rc = rapid_wcs_sky2pix(&r->wcs, n, ra, dec, x, y, err)) != 0)
        goto cleanup;
    for (i = 0; i < n; i++) {
        hit *h = &out->h[out->n];
        if (x[i] < -margin || x[i] > r->nx + margin || y[i] < -margin ||
            y[i] > r->ny + margin)
            continue;
        h->k = cand[i];
        h->x = x[i];
        h->y = y[i];
        h->mag = sim_transient_mag(&r->s->tr[cand[i]], r->fi + 1, r->t_mid);
        h->flux_e = h->mag < 99 ? mag_to_e(r, h->mag) : 0;
        out->n++;
    }
cleanup:
    free(cand);
    free(ra);
    free(dec);
    free(x);
    free(y);
    return rc;
}

/* Stars at their magnitudes -- except those that vary, which are drawn as
 * their variable -- then transients, each with the PSF where it is. */
static void add_stars(render *r, const placed *pl, const hits *tr)
{
    int i;

    for (i = 0; i < pl->n; i++) {
        const sim_source *s = &r->s->src[pl->idx[i]];
        if (s->type != SIM_STAR || sim_scene_variable(r->s, s->id))
            continue;
        rapid_psf_field_add(r->psf, r->mu, r->nx, r->ny, pl->x[i], pl->y[i],
                            mag_to_e(r, s->mag[r->fi]));
    }
    for (i = 0; i < tr->n; i++)
        if (tr->h[i].flux_e > 0)
            rapid_psf_field_add(r->psf, r->mu, r->nx, r->ny, tr->h[i].x,
                                tr->h[i].y, tr->h[i].flux_e);
}

/* --------------------------------------------------- detector and noise */

/* Hot pixels: the same pixels and rates on every image of a detector.
 * Their dark current joins the expected charge.  Returns how many. */
static int add_hot_pixels(render *r)
{
    rapid_rng g;
    int i;

    rapid_rng_derive(&g, r->c->seed, RNG_ANY_POINTING, (uint64_t)r->sca,
                     RNG_HOT);
    for (i = 0; i < r->c->hot_pixels; i++) {
        int x = (int)(rapid_rng_uniform(&g) * r->nx);
        int y = (int)(rapid_rng_uniform(&g) * r->ny);
        double rate = SIM_HOT_RATE_MIN *
                      pow(SIM_HOT_RATE_MAX / SIM_HOT_RATE_MIN, rapid_rng_uniform(&g));
        r->mu[(size_t)y * r->nx + x] += (float)(rate * r->p->exptime);
    }
    return r->c->hot_pixels > 0 ? r->c->hot_pixels : 0;
}

/* The charge cosmic rays leave, pixel by pixel, before it is added. */
typedef struct cr_deposit {
    size_t i;           /* pixel */
    size_t seq;         /* order of deposit, for a stable sort */
    double q;           /* electrons */
} cr_deposit;

typedef struct cr_list {
    cr_deposit *d;
    size_t n, cap;
    int failed;
} cr_list;

static void deposit(cr_list *l, int nx, int ny, double x, double y, double q)
{
    int ix = (int)floor(x + 0.5), iy = (int)floor(y + 0.5);

    if (ix < 0 || ix >= nx || iy < 0 || iy >= ny || l->failed)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        cr_deposit *d = realloc(l->d, cap * sizeof *d);
        if (!d) {
            l->failed = 1;
            return;
        }
        l->d = d, l->cap = cap;
    }
    l->d[l->n].i = (size_t)iy * nx + ix;
    l->d[l->n].seq = l->n;
    l->d[l->n++].q = q;
}

/* One cosmic ray: a short straight track (most) or a compact blob of
 * charge, in electrons. */
static void cosmic_ray(cr_list *l, int nx, int ny, rapid_rng *g)
{
    double x = rapid_rng_uniform(g) * nx - 0.5, y = rapid_rng_uniform(g) * ny - 0.5;
    int i, j, steps;

    if (rapid_rng_uniform(g) < 0.7) {
        /* track: ~1500 e per pixel crossed, log-normal scatter */
        double len = 1 + fmin(-4 * log(1 - rapid_rng_uniform(g)), 30);
        double th = 2 * M_PI * rapid_rng_uniform(g);
        double dq = 1500 * exp(0.5 * rapid_rng_normal(g)) * 0.25;
        steps = (int)(len * 4) + 1;
        for (i = 0; i < steps; i++)
            deposit(l, nx, ny, x + 0.25 * i * cos(th), y + 0.25 * i * sin(th),
                    dq);
    } else {
        /* blob: a Gaussian of 0.4-1.2 px holding 1e3-3e4 e */
        double sig = 0.4 + 0.8 * rapid_rng_uniform(g);
        double q = 1e3 * pow(30, rapid_rng_uniform(g)), norm = 0;
        double w[5][5];
        for (j = 0; j < 5; j++)
            for (i = 0; i < 5; i++)
                norm += w[j][i] = exp(-((i - 2) * (i - 2) + (j - 2) * (j - 2)) /
                                      (2 * sig * sig));
        for (j = 0; j < 5; j++)
            for (i = 0; i < 5; i++)
                deposit(l, nx, ny, x + i - 2, y + j - 2, q * w[j][i] / norm);
    }
}

static int by_pixel(const void *a, const void *b)
{
    const cr_deposit *x = a, *y = b;

    if (x->i != y->i)
        return x->i < y->i ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A random number of cosmic rays (Poisson, mean c->cosmic_rays), their
 * charge in l sorted by pixel.  Returns how many, or RAPID_E_NOMEM. */
static int draw_cosmic_rays(const render *r, cr_list *l)
{
    rapid_rng g;
    int i, n;

    if (r->c->cosmic_rays <= 0)
        return 0;
    rapid_rng_derive(&g, r->c->seed, (uint64_t)r->p->id, (uint64_t)r->sca,
                     RNG_COSMIC);
    n = (int)rapid_rng_poisson(&g, r->c->cosmic_rays);
    for (i = 0; i < n; i++)
        cosmic_ray(l, r->nx, r->ny, &g);
    if (l->failed)
        return RAPID_E_NOMEM;
    if (l->n > 1)
        qsort(l->d, l->n, sizeof *l->d, by_pixel);
    return n;
}

/* Poisson deviates of the one mean every pixel shares (sky + dark), by
 * inversion of a tabulated CDF through a guide table (Chen & Asau 1974):
 * exact, and several times faster than rapid_rng_poisson's rejection. */
typedef struct poisson_table {
    int k0, n;          /* cdf[i] = P(X <= k0 + i), i < n */
    double *cdf;
    int *guide;         /* guide[j]: smallest i with cdf[i] > j / n */
} poisson_table;

static int poisson_table_make(poisson_table *t, double mu)
{
    /* 13 sigma each side: the mass outside is below 1e-30 */
    double w = 13 * sqrt(mu) + 15, c = 0, lmu = log(fmax(mu, 1e-300));
    int i, j;

    t->k0 = (int)fmax(0, floor(mu - w));
    t->n = (int)ceil(mu + w) - t->k0 + 1;
    t->cdf = malloc((size_t)t->n * sizeof *t->cdf);
    t->guide = malloc((size_t)t->n * sizeof *t->guide);
    if (!t->cdf || !t->guide)
        return RAPID_E_NOMEM;
    for (i = 0; i < t->n; i++) {
        double k = t->k0 + i;
        c += mu > 0 ? exp(k * lmu - mu - lgamma(k + 1)) : (k == 0);
        t->cdf[i] = c;
    }
    t->cdf[t->n - 1] = 2; /* the tail beyond 13 sigma, folded in */
    for (i = j = 0; j < t->n; j++) {
        while (t->cdf[i] <= (double)j / t->n)
            i++;
        t->guide[j] = i;
    }
    return 0;
}

static void poisson_table_free(poisson_table *t)
{
    free(t->cdf);
    free(t->guide);
}

static double poisson_table_draw(const poisson_table *t, rapid_rng *g)
{
    double u = rapid_rng_uniform(g);
    int i = t->guide[(int)(u * t->n)];

    while (t->cdf[i] <= u)
        i++;
    return t->k0 + i;
}

/* Poisson deviate of a small mean x (the sources' share of a pixel):
 * inversion, where almost always the first uniform already says 0. */
static double poisson_small_mean(rapid_rng *g, double x)
{
    double u, p, c;
    int k = 0;

    if (!(x > 0))
        return 0;
    if (x >= 1)
        return rapid_rng_poisson(g, x);
    u = rapid_rng_uniform(g);
    if (u <= 1 - x) /* 1 - x <= exp(-x) = P(0) */
        return 0;
    p = c = exp(-x);
    while (u >= c) {
        p *= x / ++k;
        c += p;
    }
    return k;
}

/* The expected charge of pixel i (e): sky, dark and sources, as the
 * pixel's defect lets it collect them. */
static double expected_e(const render *r, size_t i, double sky_e, double dark_e)
{
    if (r->dq[i] & (RAPID_DQ_DEAD | RAPID_DQ_HOT | RAPID_DQ_LOW_QE))
        return sim_defect_charge(r->c, r->sca, i, r->dq[i], sky_e + r->mu[i],
                                 dark_e, r->p->exptime);
    return sky_e + dark_e + r->mu[i];
}

/* The pixels of the defect map: their charge drawn again, from what they
 * collect (a stream of their own, so the others' noise is unchanged). */
static void observe_defects(render *r, double sky_e, double dark_e, float *out)
{
    size_t i, n = (size_t)r->nx * r->ny;
    rapid_rng g;

    if (r->ndefect == 0)
        return;
    rapid_rng_derive(&g, r->c->seed, (uint64_t)r->p->id, (uint64_t)r->sca,
                     RNG_DEFECT_NOISE);
    for (i = 0; i < n; i++)
        if (r->dq[i] & (RAPID_DQ_DEAD | RAPID_DQ_HOT | RAPID_DQ_LOW_QE))
            out[i] = (float)rapid_rng_poisson(&g, expected_e(r, i, sky_e, dark_e));
}

/* Cosmic-ray charge, pixel by pixel: a jump above c->jump_sigma times the
 * pixel's ramp noise (its expected charge's Poisson noise and the read
 * noise) is found by the up-the-ramp fit, which then leaves it out and
 * flags JUMP_DET; a smaller one stays in the pixel.  Dead pixels collect
 * none. */
static void add_cosmic_charge(render *r, const cr_list *l, double sky_e,
                              double dark_e, double rn, float *out)
{
    size_t k = 0;

    while (k < l->n) {
        size_t i = l->d[k].i;
        double q = 0, sig;
        for (; k < l->n && l->d[k].i == i; k++)
            q += l->d[k].q;
        if (r->dq[i] & RAPID_DQ_DEAD)
            continue;
        sig = sqrt(expected_e(r, i, sky_e, dark_e) + rn * rn);
        if (r->c->jump_sigma > 0 && q > r->c->jump_sigma * sig) {
            r->dq[i] |= RAPID_DQ_JUMP_DET;
            r->njump++;
        } else {
            out[i] += (float)q;
        }
    }
}

/* Electrons to DN, and saturation at the full well, flagged. */
static void to_dn(render *r, float *out)
{
    size_t i, n = (size_t)r->nx * r->ny;
    float sat = (float)RAPID_FULL_WELL, ig = (float)(1 / r->gain);

    for (i = 0; i < n; i++) {
        out[i] *= ig;
        if (out[i] >= sat) {
            out[i] = sat;
            r->dq[i] |= RAPID_DQ_SATURATED | RAPID_DQ_DO_NOT_USE;
            r->nsat++;
        }
    }
}

/* The read noise of a pixel's fitted slope: a pixel whose cosmic-ray jump
 * was fitted out has its ramp cut in two, taken as twice the variance. */
static double pixel_read_noise(const render *r, size_t i, double rn)
{
    return r->dq[i] & RAPID_DQ_JUMP_DET ? rn * M_SQRT2 : rn;
}

/* Observe the expected charge: Poisson noise (the sum of the deviates of
 * the sky + dark and of mu is one of their sum), defects, cosmic rays,
 * read noise, gain and saturation, into out (DN); the flags into r->dq.
 * Returns the number of cosmic rays, or a negative status. */
static int observe(render *r, float *out)
{
    size_t i, n = (size_t)r->nx * r->ny;
    double t = r->p->exptime, sky_e = rapid_sim_sky_rate(r->p, r->sca) * t;
    double dark_e = RAPID_DARK * t, base = sky_e + dark_e;
    double rn = rapid_read_noise(t);
    cr_list crs = {NULL, 0, 0, 0};
    poisson_table sky;
    rapid_rng g, gj;
    int ncr = 0;

    if (!r->c->with_noise) {
        for (i = 0; i < n; i++)
            out[i] = (float)expected_e(r, i, sky_e, dark_e);
        to_dn(r, out);
        return 0;
    }
    if (poisson_table_make(&sky, base)) {
        poisson_table_free(&sky);
        return RAPID_E_NOMEM;
    }
    rapid_rng_derive(&g, r->c->seed, (uint64_t)r->p->id, (uint64_t)r->sca,
                     RNG_NOISE);
    for (i = 0; i < n; i++)
        out[i] = (float)(poisson_table_draw(&sky, &g) +
                         poisson_small_mean(&g, r->mu[i]));
    poisson_table_free(&sky);
    observe_defects(r, sky_e, dark_e, out);
    if ((ncr = draw_cosmic_rays(r, &crs)) < 0) {
        free(crs.d);
        return ncr;
    }
    add_cosmic_charge(r, &crs, sky_e, dark_e, rn, out);
    free(crs.d);
    rapid_rng_derive(&gj, r->c->seed, (uint64_t)r->p->id, (uint64_t)r->sca,
                     RNG_JUMP_NOISE);
    for (i = 0; i < n; i++) {
        out[i] += (float)(rn * rapid_rng_normal(&g));
        if (r->dq[i] & RAPID_DQ_JUMP_DET) /* the rest of its read noise */
            out[i] += (float)(rn * rapid_rng_normal(&gj));
    }
    to_dn(r, out);
    return ncr;
}

/* ERR: what a pipeline computes from the data, sqrt(max(SCI, 0) gain +
 * rn^2) / gain, with the read noise of the pixel's fitted ramp. */
static void make_err(const render *r, const float *sci, float *e)
{
    size_t i, n = (size_t)r->nx * r->ny;
    double rn = rapid_read_noise(r->p->exptime);

    for (i = 0; i < n; i++)
        e[i] = (float)rapid_dq_err(sci[i], r->gain, pixel_read_noise(r, i, rn));
}

/* ---------------------------------------------------------------- header */

static int put_header(render *r, rapid_image *img, int ncr, int nhot,
                      rapid_err *err)
{
    const rapid_sim_pointing *p = r->p;
    const rapid_filter *f = p->filter;
    rapid_header *h = &img->hdr;
    double t = r->p->exptime, pa_obsy = fmod(p->pa - FPA_MINUS_OBSY + 720, 360);
    char date[64], what[64], seed[32] = "";
    const char *k = NULL;
    rapid_zodi_geom g;
    double zodi = rapid_zodi_factor(p->ra, p->dec, p->mjd + t / 2 / 86400.0, &g);
    int rc;

    rapid_iso_from_mjd(p->mjd, date, sizeof date);
    snprintf(what, sizeof what, "header of pointing %d SCA %d", p->id, r->sca);
    if (r->c->seed > (uint64_t)INT64_MAX) /* a string: a long cannot hold it */
        snprintf(seed, sizeof seed, "%" PRIu64, r->c->seed);
    if ((rc = rapid_header_set_str(h, k = "ORIGIN", "rapid", "simulated by rapid sim")) ||
        (rc = rapid_header_set_str(h, k = "TELESCOP", "ROMAN", NULL)) ||
        (rc = rapid_header_set_str(h, k = "INSTRUME", "WFI", NULL)) ||
        (rc = rapid_header_set_str(h, k = "DATE-OBS", date, "start of exposure (UTC)")) ||
        (rc = rapid_header_set_double(h, k = "MJD-OBS", p->mjd, "start of exposure (UTC)")) ||
        (rc = rapid_header_set_str(h, k = "FILTER", f->name, f->alias)) ||
        (rc = rapid_header_set_double(h, k = "EXPTIME", t, "exposure time (s)")) ||
        (rc = rapid_header_set_long(h, k = "SCA_NUM", r->sca, "detector (1-18)")) ||
        (rc = rapid_header_set_double(h, k = "RA_TARG", p->ra, "boresight RA (deg)")) ||
        (rc = rapid_header_set_double(h, k = "DEC_TARG", p->dec, "boresight Dec (deg)")) ||
        (rc = rapid_header_set_double(h, k = "PA_OBSY", pa_obsy,
                                      "position angle of observatory Y axis (deg)")) ||
        (rc = rapid_header_set_double(h, k = "PA_FPA", p->pa,
                                      "position angle of focal plane Y axis (deg)")) ||
        (rc = rapid_header_set_double(h, k = "ZPTMAG",
                                      rapid_zero_point(f, r->sca) -
                                          2.5 * log10(r->gain),
                                      "AB mag of 1 DN/s")) ||
        (rc = rapid_header_set_double(h, k = "SKY_MEAN",
                                      (rapid_sim_sky_rate(p, r->sca) + RAPID_DARK) * t / r->gain,
                                      "sky + dark level (DN)")) ||
        (rc = rapid_header_set_double(h, k = "SKYRATE", rapid_sim_sky_rate(p, r->sca),
                                      "zodiacal + thermal (e/pixel/s)")) ||
        (rc = rapid_header_set_double(h, k = "ZODIFAC", zodi,
                                      "zodiacal light / its ecliptic-pole level")) ||
        (rc = rapid_header_set_double(h, k = "ECL_LAT", g.beta,
                                      "ecliptic latitude of the boresight (deg)")) ||
        (rc = rapid_header_set_double(h, k = "SUN_DLON", g.dlambda,
                                      "|lambda - lambda_sun| of the boresight (deg)")) ||
        (rc = rapid_header_set_double(h, k = "SUNANGLE", g.elong,
                                      "boresight to Sun (deg)")) ||
        (rc = rapid_header_set_double(h, k = "DARKCUR", RAPID_DARK, "dark current (e/s)")) ||
        (rc = rapid_header_set_double(h, k = "GAIN", r->gain, "e/DN")) ||
        (rc = rapid_header_set_double(h, k = "RDNOISE", rapid_read_noise(t),
                                       "read noise, up the ramp (e)")) ||
        (rc = rapid_header_set_double(h, k = "SATURATE", RAPID_FULL_WELL,
                                      "DN: pixels saturate here (DQ SATURATED)")) ||
        (rc = rapid_header_set_str(h, k = "BUNIT", "DN", NULL)) ||
        (rc = rapid_header_set_long(h, k = "POINTING", p->id, "pointing number")) ||
        (rc = rapid_header_set_long(h, k = "VISIT", p->visit, "epoch 0..n-1")) ||
        (rc = r->c->seed <= (uint64_t)INT64_MAX
                  ? rapid_header_set_long(h, k = "SIMSEED", (long)r->c->seed,
                                          "simulation seed")
                  : rapid_header_set_str(h, k = "SIMSEED", seed, "simulation seed")) ||
        (rc = rapid_header_set_long(h, k = "NCOSMIC", ncr, "cosmic rays added")) ||
        (rc = rapid_header_set_long(h, k = "NHOTPIX", nhot, "hot pixels on the detector")) ||
        (rc = rapid_header_set_long(h, k = "NDEFECT", r->ndefect,
                                    "pixels of the defect map (DQ)")) ||
        (rc = rapid_header_set_long(h, k = "NSATPIX", r->nsat, "saturated pixels")) ||
        (rc = rapid_header_set_long(h, k = "NPERSIST", r->npersist,
                                    "pixels flagged for persistence")) ||
        (rc = rapid_header_set_long(h, k = "NJUMP", r->njump,
                                    "cosmic-ray pixels fitted out (JUMP_DET)")) ||
        (rc = rapid_header_set_double(h, k = "JUMPSIG", r->c->jump_sigma,
                                      "jumps above this x ramp noise are found")) ||
        (rc = rapid_header_set_bool(h, k = "SIMNOISE", r->c->with_noise != 0, NULL)) ||
        (rc = rapid_header_set_bool(h, k = "SIMSRCS", r->c->with_sources != 0, NULL)) ||
        (rc = rapid_header_set_str(h, k = "RAPIDVER", rapid_version(), "rapid version")) ||
        (rc = rapid_header_set_str(h, k = "RAPIDGIT", rapid_git_commit(), "rapid commit")) ||
        (rc = rapid_header_add_text(h, k = "COMMENT", "Galaxies are convolved with the "
                                    "PSF at the detector centre;")) ||
        (rc = rapid_header_add_text(h, k = "COMMENT", "stars and transients with the "
                                    "PSF at their position.")))
        return rapid_header_fail(err, rc, what, k);
    return rapid_wcs_to_header(&r->wcs, h, err);
}

/* ----------------------------------------------------------------- truth */

static int put_truth(const render *r, const hits *tr, rapid_table *t,
                     rapid_err *err)
{
    char name[256];
    const int w = 64;
    long n = 0, k = 0;
    int i;
    char *image;
    int64_t *id, *host;
    int32_t *kind, *sntype;
    double *ra, *dec, *x, *y, *flux, *mag, *z;

    for (i = 0; i < tr->n; i++)
        n += tr->h[i].x >= -0.5 && tr->h[i].x < r->nx - 0.5 &&
             tr->h[i].y >= -0.5 && tr->h[i].y < r->ny - 0.5;
    rapid_sim_l2_name(r->c, r->p, r->sca, name, sizeof name);
    rapid_table_init(t, n);
    image = rapid_table_add_str(t, "image", w);
    id = rapid_table_add_i64(t, "id", NULL);
    kind = rapid_table_add_i32(t, "kind", NULL);
    host = rapid_table_add_i64(t, "host", NULL);
    ra = rapid_table_add_f64(t, "ra", "deg");
    dec = rapid_table_add_f64(t, "dec", "deg");
    x = rapid_table_add_f64(t, "x", "pix");
    y = rapid_table_add_f64(t, "y", "pix");
    flux = rapid_table_add_f64(t, "flux_dn", "DN");
    mag = rapid_table_add_f64(t, "mag", "mag(AB)");
    sntype = rapid_table_add_i32(t, "sntype", NULL);
    z = rapid_table_add_f64(t, "z", NULL);
    if (!image || !id || !kind || !host || !ra || !dec || !x || !y || !flux ||
        !mag || !sntype || !z) {
        rapid_table_release(t);
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for the truth of "
                          "%s", name);
    }
    for (i = 0; i < tr->n; i++) {
        const hit *h = &tr->h[i];
        const sim_transient *s = &r->s->tr[h->k];
        if (!(h->x >= -0.5 && h->x < r->nx - 0.5 && h->y >= -0.5 &&
              h->y < r->ny - 0.5))
            continue;
        memcpy(image + k * w, name, strnlen(name, (size_t)w - 1));
        id[k] = s->id;
        kind[k] = s->kind;
        host[k] = s->host;
        ra[k] = s->ra;
        dec[k] = s->dec;
        x[k] = h->x;
        y[k] = h->y;
        flux[k] = h->flux_e / r->gain;
        mag[k] = h->mag;
        sntype[k] = s->sntype;
        z[k] = s->kind == SIM_VARIABLE ? 0 : s->z;
        k++;
    }
    return 0;
}

/* ---------------------------------------------------------------- render */

/* ----------------------------------------------------------- persistence */

/* Persistence of the Roman H4RG-10 detectors: after a pixel is filled
 * close to or past its full well, trapped charge is released for hours,
 * a current falling as 1/t, of order 0.1-1 e/s a few minutes later
 * (Mosby et al. 2020, JATIS 6, 046001).  Here: PERSIST_A e/s PERSIST_T0 s
 * after a pixel filled to the full well, nothing below PERSIST_MIN_FILL
 * of it, growing as the square of the fill above that, and past
 * saturation slowly (a quarter more per decade of overfill) up to twice
 * the full-well value, where the traps are all filled. */
#define PERSIST_A 0.5
#define PERSIST_T0 300.0
#define PERSIST_MIN_FILL 0.3
#define PERSIST_WINDOW (6 * 3600.0)
#define PERSIST_FLAG_E 1.0 /* e: what a pipeline would flag, at least */
#define PERSIST_PEAK 0.6   /* no native pixel holds more of a star's light */

static double persist_gain(double fill)
{
    if (fill < PERSIST_MIN_FILL)
        return 0;
    if (fill < 1) {
        double u = (fill - PERSIST_MIN_FILL) / (1 - PERSIST_MIN_FILL);
        return u * u;
    }
    return fmin(2.0, 1 + 0.25 * log10(fill));
}

/* The persistence that exposure q, ended dt seconds before this one
 * began, leaves in it: the stars that filled pixels then (through the
 * current PSF field: the detector's, in this image's filter), their charge
 * added to mu over this exposure, and the flags. */
static int persist_from(render *r, const rapid_sim_pointing *q, double dt,
                        float *stamp, rapid_err *err)
{
    double fw = RAPID_FULL_WELL * r->gain, t = r->p->exptime;
    double decay = PERSIST_A * PERSIST_T0 * log((dt + t) / dt);
    double zp = rapid_zero_point(q->filter, r->sca);
    double sky = (rapid_sim_sky_rate(q, r->sca) + RAPID_DARK) * q->exptime;
    double fra[5], fdec[5];
    rapid_wcs w = RAPID_WCS_INIT;
    int64_t *idx = NULL, n, j;
    int half = r->half, m = 2 * half + 1, rc;

    if ((rc = rapid_sim_detector_wcs(r->c, q, r->sca, &w, err)) != 0 ||
        (rc = rapid_wcs_footprint(&w, r->nx, r->ny, fra, fdec, err)) != 0)
        goto cleanup;
    if ((n = sim_scene_select(r->s, fra, fdec, half * RAPID_PIXSCALE / 3600.0,
                              &idx, err)) < 0) {
        rc = (int)n;
        goto cleanup;
    }
    for (j = 0; j < n; j++) {
        const sim_source *src = &r->s->src[idx[j]];
        double e, x, y;
        int ix0, iy0, a, b;
        if (src->type != SIM_STAR)
            continue;
        e = pow(10, -0.4 * (src->mag[q->filter->fid - 1] - zp)) * q->exptime;
        if (e * PERSIST_PEAK + sky < PERSIST_MIN_FILL * fw ||
            rapid_wcs_sky2pix(&w, 1, &src->ra, &src->dec, &x, &y, NULL) != 0)
            continue;
        rapid_psf_field_stamp(r->psf, x, y, half, stamp, &ix0, &iy0);
        for (b = 0; b < m; b++)
            for (a = 0; a < m; a++) {
                int px = ix0 + a, py = iy0 + b;
                double fill, g;
                size_t i;
                if (px < 0 || py < 0 || px >= r->nx || py >= r->ny)
                    continue;
                fill = (e * stamp[b * m + a] + sky) / fw;
                if ((g = persist_gain(fill)) == 0)
                    continue;
                i = (size_t)py * r->nx + px;
                r->mu[i] += (float)(g * decay);
                if (fill >= 1 && g * decay >= PERSIST_FLAG_E &&
                    !(r->dq[i] & RAPID_DQ_PERSISTENCE)) {
                    r->dq[i] |= RAPID_DQ_PERSISTENCE | RAPID_DQ_DO_NOT_USE;
                    r->npersist++;
                }
            }
    }
cleanup:
    free(idx);
    rapid_wcs_release(&w);
    return rc;
}

/* Persistence from the earlier exposures of the detector. */
static int add_persistence(render *r, const rapid_sim_pointing *prev,
                           int nprev, rapid_err *err)
{
    int m = 2 * r->half + 1, k, rc = 0;
    float *stamp;

    if (!r->c->persistence || !r->c->with_sources || nprev <= 0)
        return 0;
    if (!(stamp = malloc((size_t)m * m * sizeof *stamp)))
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for persistence");
    for (k = 0; k < nprev && rc == 0; k++) {
        double dt = (r->p->mjd - prev[k].mjd) * 86400.0 - prev[k].exptime;
        if (&prev[k] != r->p && dt > 0 && dt <= PERSIST_WINDOW)
            rc = persist_from(r, &prev[k], dt, stamp, err);
    }
    free(stamp);
    return rc;
}

static int render_check(const rapid_sim_config *c, const rapid_sim_scene *s,
                        const rapid_sim_pointing *p, int sca,
                        const rapid_psf_field *psf, rapid_err *err)
{
    if (!c || !s || !p || !psf || !p->filter)
        return rapid_fail(err, RAPID_E_ARG, "sim render: missing %s",
                          !c ? "config" : !s ? "scene" : !p ? "pointing"
                          : !psf ? "PSF" : "filter of the pointing");
    if (sca < 1 || sca > RAPID_NSCA || (c->nscas > 0 && sca > c->nscas))
        return rapid_fail(err, RAPID_E_ARG, "sim render: SCA %d is not one of "
                          "1..%d", sca, c->nscas);
    if (c->size < 1 || !(p->exptime > 0))
        return rapid_fail(err, RAPID_E_ARG, "sim render: bad size %d or "
                          "exposure time %g", c->size, p->exptime);
    if (psf->filter != p->filter || psf->sca != sca || psf->nx != c->size ||
        psf->ny != c->size)
        return rapid_fail(err, RAPID_E_ARG, "sim render: the PSF is for %s SCA "
                          "%d on %dx%d pixels, the image %s SCA %d on %dx%d",
                          psf->filter ? psf->filter->name : "?", psf->sca,
                          psf->nx, psf->ny, p->filter->name, sca, c->size,
                          c->size);
    return 0;
}

/* The expected source charge: galaxies, stars, transients (none of them,
 * and no truth, when the configuration asks for sky and noise only). */
static int render_sources(render *r, hits *tr, rapid_err *err)
{
    placed pl = {NULL, NULL, NULL, 0};
    int rc = 0;

    if (!r->c->with_sources)
        return 0;
    if ((rc = find_transients(r, tr, err)) != 0)
        return rc;
    if ((rc = place_sources(r, &pl, err)) == 0 &&
        (rc = add_galaxies(r, &pl, err)) == 0)
        add_stars(r, &pl, tr);
    placed_release(&pl);
    return rc;
}

/* The headers of ERR and DQ. */
static int put_ext_headers(rapid_image *e, rapid_image_u32 *dq, rapid_err *err)
{
    const char *k = "BUNIT";
    int rc = 0;

    if (e)
        rc = rapid_header_set_str(&e->hdr, k, "DN", "1-sigma uncertainty of SCI");
    if (!rc && dq && !(rc = rapid_header_add_text(&dq->hdr, k = "COMMENT",
                                                  "Roman/JWST DQ bits: 1 DO_NOT_USE, "
                                                  "2 SATURATED, 4 JUMP_DET,")))
        rc = rapid_header_add_text(&dq->hdr, k, "32 PERSISTENCE, 1024 DEAD, "
                                   "2048 HOT, 4096 WARM, 8192 LOW_QE");
    return rc ? rapid_header_fail(err, rc, "ERR and DQ headers", k) : 0;
}

static int render_alloc(render *r, rapid_image *img, rapid_image *e,
                        rapid_image_u32 *dq, rapid_image_u32 *own_dq,
                        rapid_err *err)
{
    int rc;

    if ((rc = rapid_image_alloc(img, r->nx, r->ny, 0.0f, err)) != 0 ||
        (e && (rc = rapid_image_alloc(e, r->nx, r->ny, 0.0f, err)) != 0) ||
        (rc = rapid_image_u32_alloc(dq ? dq : own_dq, r->nx, r->ny, 0, err)) != 0)
        return rc;
    r->dq = dq ? dq->data : own_dq->data;
    if (!(r->mu = calloc((size_t)r->nx * r->ny, sizeof *r->mu)))
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for a %dx%d image",
                          r->nx, r->ny);
    return 0;
}

int rapid_sim_render_after(const rapid_sim_config *c,
                           const rapid_sim_scene *s,
                           const rapid_sim_pointing *p,
                           const rapid_sim_pointing *prev, int nprev, int sca,
                           const rapid_psf_field *psf, rapid_image *img,
                           rapid_image *err_img, rapid_image_u32 *dq,
                           rapid_table *truth, rapid_err *err)
{
    rapid_image_u32 own_dq = RAPID_IMAGE_U32_INIT;
    render r;
    hits tr = {NULL, 0};
    int rc, nhot, ncr;

    *img = (rapid_image)RAPID_IMAGE_INIT;
    if (err_img)
        *err_img = (rapid_image)RAPID_IMAGE_INIT;
    if (dq)
        *dq = (rapid_image_u32)RAPID_IMAGE_U32_INIT;
    if ((rc = render_check(c, s, p, sca, psf, err)) != 0)
        return rc;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.s = s;
    r.p = p;
    r.psf = psf;
    r.sca = sca;
    r.nx = r.ny = c->size;
    r.half = psf->opts.half;
    r.fi = p->filter->fid - 1;
    r.t_mid = p->mjd + 0.5 * p->exptime / 86400.0;
    r.gain = RAPID_GAIN;
    r.wcs = (rapid_wcs)RAPID_WCS_INIT;
    if ((rc = rapid_sim_detector_wcs(c, p, sca, &r.wcs, err)) != 0 ||
        (rc = rapid_wcs_footprint(&r.wcs, r.nx, r.ny, r.foot_ra, r.foot_dec,
                                  err)) != 0 ||
        (rc = render_alloc(&r, img, err_img, dq, &own_dq, err)) != 0)
        goto cleanup;
    if ((rc = render_sources(&r, &tr, err)) != 0)
        goto cleanup;
    nhot = add_hot_pixels(&r);
    r.ndefect = rapid_sim_defect_map(c, sca, r.nx, r.ny, r.dq);
    if ((rc = add_persistence(&r, prev, nprev, err)) != 0)
        goto cleanup;
    if ((ncr = observe(&r, img->data)) < 0) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory for the noise");
        goto cleanup;
    }
    if (err_img)
        make_err(&r, img->data, err_img->data);
    if ((rc = put_header(&r, img, ncr, nhot, err)) != 0 ||
        (rc = put_ext_headers(err_img, dq, err)) != 0)
        goto cleanup;
    if (truth)
        rc = put_truth(&r, &tr, truth, err);
cleanup:
    if (rc) {
        rapid_err_prefix(err, "simulating pointing %d SCA %d", p->id, sca);
        rapid_image_release(img);
        if (err_img)
            rapid_image_release(err_img);
        if (dq)
            rapid_image_u32_release(dq);
    }
    rapid_image_u32_release(&own_dq);
    free(r.mu);
    free(tr.h);
    rapid_wcs_release(&r.wcs);
    return rc;
}

int rapid_sim_render_l2(const rapid_sim_config *c, const rapid_sim_scene *s,
                        const rapid_sim_pointing *p, int sca,
                        const rapid_psf_field *psf, rapid_image *img,
                        rapid_image *err_img, rapid_image_u32 *dq,
                        rapid_table *truth, rapid_err *err)
{
    return rapid_sim_render_after(c, s, p, NULL, 0, sca, psf, img, err_img,
                                  dq, truth, err);
}

int rapid_sim_render(const rapid_sim_config *c, const rapid_sim_scene *s,
                     const rapid_sim_pointing *p, int sca,
                     const rapid_psf_field *psf, rapid_image *img,
                     rapid_table *truth, rapid_err *err)
{
    return rapid_sim_render_l2(c, s, p, sca, psf, img, NULL, NULL, truth, err);
}

/* ------------------------------------------------------------- injection */

typedef struct inject_hdr {
    double exptime, zpt, gain;
} inject_hdr;

static int inject_header(const rapid_image *img, inject_hdr *ih, rapid_err *err)
{
    int rc;

    if ((rc = rapid_header_get_double(&img->hdr, "EXPTIME", &ih->exptime, err)) ||
        (rc = rapid_header_get_double(&img->hdr, "ZPTMAG", &ih->zpt, err)))
        return rc;
    ih->gain = 1.0;
    if (rapid_header_has(&img->hdr, "GAIN") &&
        (rc = rapid_header_get_double(&img->hdr, "GAIN", &ih->gain, err)))
        return rc;
    if (!(ih->exptime > 0) || !(ih->gain > 0))
        return rapid_fail(err, RAPID_E_KEY, "EXPTIME %g and GAIN %g must be "
                          "positive", ih->exptime, ih->gain);
    return 0;
}

/* One source: its PSF stamp times the expected charge, Poisson-sampled,
 * added in DN to the pixels that exist and hold data. */
static void inject_one(rapid_image *img, const rapid_psf_field *psf,
                       const rapid_sim_injected *t, double gain, float *stamp,
                       int half, rapid_rng *g)
{
    int m = 2 * half + 1, ix0, iy0, i, j;

    rapid_psf_field_stamp(psf, t->x, t->y, half, stamp, &ix0, &iy0);
    for (j = 0; j < m; j++) {
        int y = iy0 + j;
        if (y < 0 || y >= img->ny)
            continue;
        for (i = 0; i < m; i++) {
            int x = ix0 + i;
            float *px = img->data + (size_t)y * img->nx + x;
            if (x < 0 || x >= img->nx || isnan(*px))
                continue;
            *px += (float)(rapid_rng_poisson(g, t->flux_dn * gain *
                                                   fmax(stamp[j * m + i], 0)) /
                           gain);
        }
    }
}

int rapid_sim_inject(rapid_image *img, rapid_wcs *wcs,
                     const rapid_psf_field *psf, int n, const double *ra,
                     const double *dec, const double *mag, uint64_t seed,
                     rapid_sim_injected *truth, rapid_err *err)
{
    inject_hdr ih;
    float *stamp = NULL;
    int half, i, rc;

    if (!img || !img->data || !wcs || !psf || n < 0 ||
        (n > 0 && (!ra || !dec || !mag || !truth)))
        return rapid_fail(err, RAPID_E_ARG, "sim inject: missing image, WCS, "
                          "PSF or source list");
    if ((rc = inject_header(img, &ih, err)) != 0) {
        rapid_err_prefix(err, "sim inject");
        return rc;
    }
    half = psf->opts.half;
    stamp = malloc((size_t)(2 * half + 1) * (2 * half + 1) * sizeof *stamp);
    if (!stamp)
        return rapid_fail(err, RAPID_E_NOMEM, "sim inject: out of memory");
    for (i = 0; i < n; i++) {
        rapid_sim_injected *t = &truth[i];
        rapid_rng g;
        t->ra = ra[i];
        t->dec = dec[i];
        t->mag = mag[i];
        t->flux_dn = pow(10.0, -0.4 * (mag[i] - ih.zpt)) * ih.exptime;
        /* a position the WCS cannot map is simply not on the image */
        if (rapid_wcs_sky2pix(wcs, 1, &ra[i], &dec[i], &t->x, &t->y, NULL))
            t->x = t->y = NAN;
        t->on_image = t->x >= -0.5 && t->x < img->nx - 0.5 &&
                      t->y >= -0.5 && t->y < img->ny - 0.5;
        if (!t->on_image || !(t->flux_dn > 0))
            continue;
        rapid_rng_derive(&g, seed, (uint64_t)i, 0, RNG_INJECT);
        inject_one(img, psf, t, ih.gain, stamp, half, &g);
    }
    free(stamp);
    return 0;
}
