/* candidates.c - the candidate stage of a difference image: detection (SEP)
 * on the matched-filter image or the difference, measurement on the
 * difference with its uncertainty, PSF-fit photometry (psfphot.c), vetting
 * metrics and cuts (vet.c).
 *
 * Each sign is one pass: the negative candidates are the positive ones of
 * the negated images, so every measurement and metric is made on s * D and
 * the fluxes are multiplied by s at the end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/candidates.h"
#include "core/bigmem.h"
#include "core/stats.h"
#include "image/candidates_internal.h"
#include "image/extract_internal.h"

static const double aper_diam[CAND_NAPER] = {2, 3, 4, 6, 10, 14};

void rapid_cand_opts_init(rapid_cand_opts *o)
{
    memset(o, 0, sizeof *o);
    o->thresh = 2.5;
    o->minarea = 5;
    o->deblend_nthresh = 32;
    /* lower than SExtractor's 0.005: on S_corr a point source often sits in
     * a low plateau (a galaxy's residual, correlated noise) whose total
     * flux dwarfs it */
    o->deblend_cont = 0.0001;
    o->filter_fwhm = 2.0;
    o->negative = 0;
    o->noise_cal = 1;
    rapid_psfphot_opts_init(&o->psf);
    rapid_cuts_init(&o->cuts);
}

/* The images every sign shares: D with NaN where a pixel is unusable,
 * its 1-sigma uncertainty (1 there), and the mask (1 = unusable). */
typedef struct base {
    float *fit, *noise;
    unsigned char *mask;
    unsigned char *src; /* 1: a pixel of a candidate with snr_aper_3 >= 5
                         * (kept out of the noise measurement) */
} base;

/* The working images of one sign. */
typedef struct pass {
    float *meas;       /* s D, 0 where unusable (what SEP reads) */
    const unsigned char *mask;
    float *det;        /* s detect, 0 where it has no data */
    unsigned char *dmask;
} pass;

static void base_free(base *b)
{
    rapid_big_free(b->fit);
    rapid_big_free(b->noise);
    rapid_big_free(b->mask);
    rapid_big_free(b->src);
    memset(b, 0, sizeof *b);
}

static int base_make(const rapid_cand_input *in, double rms, base *b)
{
    size_t n = (size_t)in->nx * (size_t)in->ny, i;

    b->fit = rapid_big_malloc(n * sizeof *b->fit);
    b->noise = rapid_big_malloc(n * sizeof *b->noise);
    b->mask = rapid_big_malloc(n);
    b->src = rapid_big_malloc(n);
    if (!b->fit || !b->noise || !b->mask || !b->src)
        return RAPID_E_NOMEM;
    memset(b->src, 0, n);
    for (i = 0; i < n; i++) {
        float d = in->diff[i], u = in->unc ? in->unc[i] : (float)rms;
        int bad = !isfinite(d) || !isfinite(u) || !(u > 0) || (in->bad && in->bad[i]);
        b->mask[i] = (unsigned char)bad;
        b->fit[i] = bad ? NAN : d;
        b->noise[i] = bad ? 1.0f : u;
    }
    return 0;
}

static void pass_free(pass *p)
{
    rapid_big_free(p->meas);
    rapid_big_free(p->det);
    rapid_big_free(p->dmask);
    memset(p, 0, sizeof *p);
}

static int pass_make(const rapid_cand_input *in, const base *b, int s, pass *p)
{
    size_t n = (size_t)in->nx * (size_t)in->ny, i;

    memset(p, 0, sizeof *p);
    p->mask = b->mask;
    p->meas = rapid_big_malloc(n * sizeof *p->meas);
    if (in->detect) {
        p->det = rapid_big_malloc(n * sizeof *p->det);
        p->dmask = rapid_big_malloc(n);
    }
    if (!p->meas || (in->detect && (!p->det || !p->dmask)))
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i++)
        p->meas[i] = b->mask[i] ? 0.0f : (float)s * b->fit[i];
    if (in->detect)
        for (i = 0; i < n; i++) {
            float d = in->detect[i];
            int bad = !isfinite(d);
            p->dmask[i] = (unsigned char)bad;
            p->det[i] = bad ? 0.0f : (float)s * d;
        }
    return 0;
}

/* Isophotal moments of s D over the object's pixels (positive values
 * only): barycentre, a, b, theta (radians) and the peak.  0, or -1 when
 * the object holds no positive flux there. */
static int iso_moments(const pass *p, int nx, const sep_catalog *sc, int k,
                       cand_row *r, double *theta_rad)
{
    double sw = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, x2, y2, xy, t1, t2;
    float peak = -INFINITY;
    int q;

    for (q = 0; q < sc->npix[k]; q++) {
        int o = sc->pix[k][q], i = o % nx, j = o / nx;
        double v = p->meas[o];
        if (p->mask[o])
            continue;
        if (v > peak)
            peak = (float)v;
        if (v <= 0)
            continue;
        sw += v;
        sx += v * i;
        sy += v * j;
        sxx += v * i * i;
        syy += v * j * j;
        sxy += v * i * j;
    }
    r->peak = isfinite(peak) ? peak : NAN;
    if (!(sw > 0))
        return -1;
    r->xbar = sx / sw;
    r->ybar = sy / sw;
    x2 = sxx / sw - r->xbar * r->xbar;
    y2 = syy / sw - r->ybar * r->ybar;
    xy = sxy / sw - r->xbar * r->ybar;
    if (x2 * y2 - xy * xy < 1.0 / 144) { /* SExtractor's guard: a pixel's own size */
        x2 += 1.0 / 12;
        y2 += 1.0 / 12;
    }
    t1 = 0.5 * (x2 + y2);
    t2 = sqrt(0.25 * (x2 - y2) * (x2 - y2) + xy * xy);
    r->a = (float)sqrt(t1 + t2);
    r->b = (float)sqrt(fmax(t1 - t2, 0));
    *theta_rad = 0.5 * atan2(2 * xy, x2 - y2);
    r->theta = (float)(*theta_rad * 180 / M_PI);
    r->elongation = r->b > 0 ? r->a / r->b : NAN;
    return 0;
}

/* Windowed second moments of s D about (x, y) with a Gaussian window of
 * sigma sw (SExtractor's X2WIN_IMAGE, twice the weighted moments, so that
 * a Gaussian as wide as the window gives its own): a, b (px), theta
 * (radians).  0, or -1 when they are not positive definite. */
static int win_moments(const pass *p, int nx, int ny, double x, double y,
                       double sw, double *a, double *b, double *theta)
{
    int r = (int)ceil(4 * sw), i, j;
    double s = 0, sxx = 0, syy = 0, sxy = 0, x2, y2, xy, t1, t2;

    for (j = (int)floor(y) - r; j <= (int)floor(y) + r + 1; j++)
        for (i = (int)floor(x) - r; i <= (int)floor(x) + r + 1; i++) {
            double dx = i - x, dy = j - y, d2 = dx * dx + dy * dy, w, v;
            size_t o;
            if (i < 0 || j < 0 || i >= nx || j >= ny || d2 > 16 * sw * sw)
                continue;
            o = (size_t)j * nx + i;
            if (p->mask[o])
                continue;
            w = exp(-d2 / (2 * sw * sw));
            v = w * p->meas[o];
            s += v;
            sxx += v * dx * dx;
            syy += v * dy * dy;
            sxy += v * dx * dy;
        }
    if (!(s > 0))
        return -1;
    x2 = 2 * sxx / s;
    y2 = 2 * syy / s;
    xy = 2 * sxy / s;
    if (!(x2 > 0) || !(y2 > 0) || x2 * y2 - xy * xy <= 0)
        return -1;
    t1 = 0.5 * (x2 + y2);
    t2 = sqrt(0.25 * (x2 - y2) * (x2 - y2) + xy * xy);
    *a = sqrt(t1 + t2);
    *b = sqrt(fmax(t1 - t2, 0));
    *theta = 0.5 * atan2(2 * xy, x2 - y2);
    return *b > 0 ? 0 : -1;
}

/* Windowed position, apertures, FWHM and Kron flux of object k. */
static void measure(const sep_image *im, const pass *p, int nx,
                    const sep_catalog *sc, int k, double psf_sig, cand_row *r)
{
    double sum, sumerr, area, tot, frac = 0.5, r50, xw, yw, th = 0, kr = 0;
    double cxx, cyy, cxy, wsig, x0, y0;
    short f = 0, flag = sc->flag[k];
    int a, niter;

    if (iso_moments(p, nx, sc, k, r, &th) != 0) {
        r->xbar = sc->x[k];
        r->ybar = sc->y[k];
        r->a = sc->a[k];
        r->b = sc->b[k];
        th = sc->theta[k];
        r->theta = (float)(th * 180 / M_PI);
        r->elongation = sc->b[k] > 0 ? sc->a[k] / sc->b[k] : NAN;
    }
    r->isoarea = sc->npix[k];
    /* FWHM: twice the half-light radius within 4 a (at least 3 px) about
     * the barycentre; the window of the windowed position is the Gaussian
     * of that FWHM, as SExtractor's XWIN (the PSF's when there is none) */
    f = 0;
    r->fwhm = NAN;
    sep_sum_circle(im, r->xbar, r->ybar, fmax(3.0, 4.0 * r->a), 0, 0, 0, &tot,
                   &sumerr, &area, &f);
    if (tot > 0 && sep_flux_radius(im, r->xbar, r->ybar, fmax(3.0, 4.0 * r->a), 0,
                                   5, 0, &tot, &frac, 1, &r50, &f) == 0 && r50 > 0)
        r->fwhm = (float)(2 * r50);
    wsig = isfinite(r->fwhm) ? r->fwhm / 2.3548200450309493 : psf_sig;
    /* the window starts at the barycentre, or at the detection's peak when
     * that is further than 1.5 px away (an object with a faint extension,
     * or merged with a plateau: the candidate is the peak) */
    x0 = r->xbar, y0 = r->ybar;
    if (hypot(sc->xcpeak[k] - x0, sc->ycpeak[k] - y0) > 1.5)
        x0 = sc->xcpeak[k], y0 = sc->ycpeak[k];
    xw = x0, yw = y0;
    f = 0;
    if (sep_windowed(im, x0, y0, wsig, 11, 0, &xw, &yw, &niter, &f) != 0 ||
        !isfinite(xw) || !isfinite(yw) || fabs(xw - x0) > 2 || fabs(yw - y0) > 2) {
        xw = x0, yw = y0;
        r->flags |= RAPID_CAND_WIN_FAILED;
    }
    r->x = xw;
    r->y = yw;
    {
        double wa, wb, wt;
        if (win_moments(p, nx, im->h, xw, yw, wsig, &wa, &wb, &wt) == 0) {
            r->a = (float)wa;
            r->b = (float)wb;
            th = wt;
            r->theta = (float)(wt * 180 / M_PI);
            r->elongation = (float)(wa / wb);
        }
    }
    for (a = 0; a < CAND_NAPER; a++) {
        f = 0;
        sep_sum_circle(im, xw, yw, aper_diam[a] / 2, 0, 0, 0, &sum, &sumerr, &area, &f);
        r->flux_aper[a] = (float)sum;
        r->fluxerr_aper[a] = (float)sumerr;
        flag |= f;
    }
    /* Kron flux: 2.5 Kron radii, at least a circle of 1.75 px (SExtractor's
     * PHOT_AUTOPARAMS 2.5, 3.5) */
    f = 0;
    sep_ellipse_coeffs(r->a, r->b > 0 ? r->b : 0.01, th, &cxx, &cyy, &cxy);
    if (sep_kron_radius(im, xw, yw, cxx, cyy, cxy, 6.0, 0, &kr, &f) != 0 || !(kr > 0))
        kr = 0;
    flag |= f & SEP_APER_NONPOSITIVE;
    f = 0;
    if (kr * sqrt(r->a * r->b) < 1.75)
        sep_sum_circle(im, xw, yw, 1.75, 0, 0, 0, &sum, &sumerr, &area, &f);
    else
        sep_sum_ellipse(im, xw, yw, r->a, r->b > 0 ? r->b : 0.01, th, 2.5 * kr, 0, 0,
                        0, &sum, &sumerr, &area, &f);
    r->flux_auto = (float)sum;
    r->fluxerr_auto = (float)sumerr;
    r->area_auto = (float)area;
    r->snr = sumerr > 0 ? (float)(sum / sumerr) : NAN;
    r->flags |= flag;
}

/* Detection and measurement of one sign; rows appended to *rows. */
static int one_sign(const rapid_cand_input *in, const rapid_cand_opts *o,
                    const base *bs, int s, const float *kern, int side,
                    double psf_sig, cand_rows *rows, rapid_err *err)
{
    pass p;
    sep_image im, dim;
    sep_catalog *sc = NULL;
    rapid_extract_opts eo;
    double thresh;
    int rc, st, k, type;

    if ((rc = pass_make(in, bs, s, &p)) != 0) {
        rc = rapid_fail(err, rc, "candidates: no memory for a %d x %d image",
                        in->nx, in->ny);
        goto cleanup;
    }
    memset(&im, 0, sizeof im);
    im.data = p.meas;
    im.dtype = SEP_TFLOAT;
    im.mask = p.mask;
    im.mdtype = SEP_TBYTE;
    im.noise = bs->noise;
    im.ndtype = SEP_TFLOAT;
    im.noise_type = SEP_NOISE_STDDEV;
    im.w = in->nx;
    im.h = in->ny;
    dim = im;
    thresh = o->thresh;
    type = SEP_THRESH_REL;
    if (in->detect) {
        double drms;
        /* where it has data (p.det holds 0 where it has none) */
        rapid_robust_sigma_sample(in->detect, (size_t)in->nx * in->ny, 400000, 1,
                                  &drms);
        if (!(drms > 0)) {
            rc = rapid_fail(err, RAPID_E_ARG, "candidates: the detection image "
                            "has no spread (robust rms %g)", drms);
            goto cleanup;
        }
        dim.data = p.det;
        dim.mask = p.dmask;
        dim.noise = NULL;
        dim.noise_type = SEP_NOISE_NONE;
        thresh = o->thresh * drms;
        type = SEP_THRESH_ABS;
        kern = NULL;
    }
    rapid_extract_opts_init(&eo);
    eo.minarea = o->minarea;
    eo.deblend_nthresh = o->deblend_nthresh;
    eo.deblend_cont = o->deblend_cont;
    if ((st = rapid_sep_detect(&dim, thresh, type, kern, side, &eo, &sc)) != 0) {
        rc = rapid_sep_fail(err, st, "candidate detection");
        goto cleanup;
    }
    if ((rc = cand_rows_grow(rows, rows->n + sc->nobj)) != 0) {
        rc = rapid_fail(err, rc, "candidates: no memory for %d more", sc->nobj);
        goto cleanup;
    }
    for (k = 0; k < sc->nobj; k++) {
        cand_row *r = &rows->r[rows->n++];
        memset(r, 0, sizeof *r);
        r->sign = s;
        measure(&im, &p, in->nx, sc, k, psf_sig, r);
        if (r->fluxerr_aper[CAND_AP3] > 0 &&
            r->flux_aper[CAND_AP3] >= 5 * r->fluxerr_aper[CAND_AP3]) {
            int q;
            for (q = 0; q < sc->npix[k]; q++)
                bs->src[sc->pix[k][q]] = 1;
        }
    }
cleanup:
    if (sc)
        sep_catalog_free(sc);
    pass_free(&p);
    return rc;
}

int cand_rows_grow(cand_rows *rows, long n)
{
    cand_row *r;
    long cap;

    if (n <= rows->cap)
        return 0;
    cap = rows->cap ? rows->cap : 256;
    while (cap < n)
        cap *= 2;
    if (!(r = realloc(rows->r, (size_t)cap * sizeof *r)))
        return RAPID_E_NOMEM;
    rows->r = r;
    rows->cap = cap;
    return 0;
}

/* PSF fits of rows[first..n) at their windowed positions on D (fit), both
 * signs together: a dipole's halves are neighbours in one fit.  Fluxes are
 * given as measured on s D, as every other measurement. */
int cand_psf_fit(const rapid_cand_input *in, const rapid_cand_opts *o,
                 const float *fit, const float *noise, cand_rows *rows,
                 long first, rapid_err *err)
{
    long m = rows->n - first, k;
    double *x = malloc((size_t)(m > 0 ? m : 1) * 2 * sizeof *x), *y;
    rapid_psfphot_result *res = malloc((size_t)(m > 0 ? m : 1) * sizeof *res);
    rapid_psfphot_opts po = o->psf;
    int rc;

    if (!x || !res) {
        free(x);
        free(res);
        return rapid_fail(err, RAPID_E_NOMEM, "candidates: no memory for PSF fits");
    }
    y = x + m;
    for (k = 0; k < m; k++) {
        x[k] = rows->r[first + k].x;
        y[k] = rows->r[first + k].y;
    }
    po.flux_floor = 0; /* added once the errors are calibrated (cand_noise_apply) */
    rc = rapid_psfphot(fit, noise, in->nx, in->ny, in->psf, &po, (int)m, x, y,
                       res, err);
    for (k = 0; rc == 0 && k < m; k++) {
        cand_row *r = &rows->r[first + k];
        r->psf = res[k];
        r->psf.flux *= r->sign;
        if (res[k].flags & RAPID_PSFPHOT_NOCONV)
            r->flags |= RAPID_CAND_PSF_NOCONV;
        if (res[k].flags & RAPID_PSFPHOT_GROUP)
            r->flags |= RAPID_CAND_PSF_GROUP;
        if (res[k].flags & RAPID_PSFPHOT_CROWDED)
            r->flags |= RAPID_CAND_PSF_CROWDED;
        if (res[k].flags & RAPID_PSFPHOT_NODATA)
            r->flags |= RAPID_CAND_PSF_NODATA;
        if (res[k].flags & RAPID_PSFPHOT_FIXED)
            r->flags |= RAPID_CAND_PSF_FIXED;
    }
    free(x);
    free(res);
    return rc;
}

/* diff less its background (SEP's mesh), NaN kept: a new image. */
static int subtract_background(const rapid_cand_input *in, int mesh,
                               float **out, rapid_err *err)
{
    size_t n = (size_t)in->nx * in->ny, i;
    float *w = rapid_big_malloc(n * sizeof *w);
    unsigned char *mask = rapid_big_malloc(n);
    sep_image im;
    sep_bkg *bkg = NULL;
    int st, rc = 0;

    if (!w || !mask) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "candidates: no memory for the "
                        "background");
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        int bad = !isfinite(in->diff[i]) || (in->bad && in->bad[i]);
        w[i] = bad ? 0.0f : in->diff[i];
        mask[i] = (unsigned char)bad;
    }
    memset(&im, 0, sizeof im);
    im.data = w;
    im.dtype = SEP_TFLOAT;
    im.mask = mask;
    im.mdtype = SEP_TBYTE;
    im.w = in->nx;
    im.h = in->ny;
    st = sep_background(&im, mesh, mesh, 3, 3, 0.0, &bkg);
    if (st == 0)
        st = sep_bkg_subarray(bkg, w, SEP_TFLOAT);
    if (st != 0)
        rc = rapid_sep_fail(err, st, "candidate background");
    for (i = 0; i < n; i++)
        if (!isfinite(in->diff[i]))
            w[i] = NAN;
cleanup:
    if (bkg)
        sep_bkg_free(bkg);
    rapid_big_free(mask);
    if (rc) {
        rapid_big_free(w);
        w = NULL;
    }
    *out = w;
    return rc;
}

int rapid_candidates(const rapid_cand_input *in0, const rapid_cand_opts *o,
                     rapid_table *cat, rapid_err *err)
{
    rapid_cand_input local, *in = &local;
    float *nobkg = NULL;
    base bs = {NULL, NULL, NULL, NULL};
    cand_noise nc;
    cand_sat sat = {NULL, NULL, NULL, 0};
    cand_rows rows = {NULL, 0, 0};
    float *kern = NULL;
    double rms, psf_fwhm, apfrac3, psf_r36;
    int rc = 0, side = 0, s;

    rapid_table_init(cat, 0);
    if (!in0 || !o || !in0->diff || in0->nx <= 0 || in0->ny <= 0 || !in0->psf ||
        !in0->psf->data)
        return rapid_fail(err, RAPID_E_ARG, "candidates: bad arguments (image "
                          "%d x %d%s)", in0 ? in0->nx : 0, in0 ? in0->ny : 0,
                          in0 && !in0->psf ? ", no PSF" : "");
    local = *in0;
    if (o->bkg_mesh > 0) {
        if ((rc = subtract_background(in0, o->bkg_mesh, &nobkg, err)) != 0)
            return rc;
        local.diff = nobkg;
    }
    rapid_robust_sigma_sample(in->diff, (size_t)in->nx * in->ny, 400000, 1,
                              &rms);
    psf_fwhm = rapid_psfphot_psf_fwhm(in->psf);
    apfrac3 = rapid_psfphot_aperture_fraction(in->psf, 3.0);
    psf_r36 = apfrac3 / rapid_psfphot_aperture_fraction(in->psf, 6.0);
    if (!(rms > 0))
        rc = rapid_fail(err, RAPID_E_ARG, "candidates: the difference image "
                        "has no data or no spread (robust rms %g)", rms);
    else if (!(psf_fwhm > 0) || !(apfrac3 > 0))
        rc = rapid_fail(err, RAPID_E_ARG, "candidates: the PSF has no "
                        "measurable width (FWHM %g px)", psf_fwhm);
    else if (!in->detect && o->filter_fwhm > 0 &&
             !(kern = rapid_sep_gauss_kernel(o->filter_fwhm, &side)))
        rc = rapid_fail(err, RAPID_E_NOMEM, "candidates: no memory");
    if (rc == 0 && base_make(in, rms, &bs) != 0)
        rc = rapid_fail(err, RAPID_E_NOMEM, "candidates: no memory for a %d x %d "
                        "image", in->nx, in->ny);
    /* the negative candidates are found even when not asked for: they are
     * the positive ones' neighbours in the PSF fits */
    for (s = 1; s >= -1 && rc == 0; s -= 2)
        rc = one_sign(in, o, &bs, s, kern, side, psf_fwhm / 2.3548200450309493,
                      &rows, err);
    if (rc == 0)
        rc = cand_psf_fit(in, o, bs.fit, bs.noise, &rows, 0, err);
    if (rc == 0) {
        long k, n = 0;
        cand_noise_measure(in, o, bs.fit, bs.noise, bs.mask, bs.src, aper_diam, &nc);
        cand_noise_apply(&nc, aper_diam, o->psf.flux_floor, &rows, 0);
        cand_metrics(in, o, bs.fit, bs.mask, &rows, 0);
        if ((rc = cand_sat_find(in, o->cuts.sat_rmin, o->cuts.sat_scale, &sat)) != 0)
            rc = rapid_fail(err, rc, "candidates: no memory for the saturated stars");
        cand_sat_metric(&sat, &rows, 0);
        cand_vet(o, apfrac3, psf_r36, psf_fwhm, &rows, 0);
        for (k = 0; k < rows.n; k++)
            if (o->negative || rows.r[k].sign > 0)
                rows.r[n++] = rows.r[k];
        rows.n = n;
    }
    if (rc == 0)
        rc = cand_table(in, o, &rows, rms, psf_fwhm, apfrac3, psf_r36, &nc, sat.n, cat, err);
    cand_sat_free(&sat);
    free(kern);
    free(rows.r);
    base_free(&bs);
    rapid_big_free(nobkg);
    if (rc)
        rapid_table_release(cat);
    return rc;
}
