/* sim_survey.c - the simulated focal plane, its detector WCSs and the survey
 * plan (which pointings, when, at which roll).
 *
 * Focal plane.  Coordinates (u, v) are in nominal pixels (RAPID_PIXSCALE
 * before distortion) with the boresight at the origin; +v is the focal-plane
 * "Y" axis whose position angle east of north is PA_FPA (rapid_sim_pointing
 * .pa), and +u points west when PA_FPA = 0, so that detector images have the
 * usual parity (north up, east left at PA 0; CD1_1 < 0).
 *
 * The 18 detectors (SCAs) sit as in the Roman WFI: six columns of three, the
 * columns mirrored about v, the middle and outer pairs of columns shifted
 * down so that the array forms a wide chevron with SCAs 3 and 12 at its top:
 *
 *                        +v (PA_FPA)
 *                  12          3
 *            15    11          2     6
 *      18    14    10          1     5     9
 *      17    13                      4     8
 *      16                                  7
 *                         ---> +u (west at PA 0)
 *      (u < 0, east, holds SCAs 1-9 at PA 0; SCA 1 is the innermost
 *      column's lowest detector, numbers rising up each column and then
 *      outwards: 1-3 inner, 4-6 middle, 7-9 outer; 10-18 mirror them.)
 *
 * Positions follow the Roman design (column pitch 1.09 detector sizes, row
 * pitch 1.10, middle columns 0.21 and outer columns 0.74 sizes lower) and are
 * given in units of the detector size, so a small --size keeps a compact
 * array with ~9-10% gaps.  Each detector also carries a small mounting
 * rotation (hundredths of a degree), as real ones do.
 *
 * Distortion.  A smooth polynomial of the focal plane, in coordinates
 * normalised by FP_RADIUS detector sizes: a radial cubic (pincushion) plus
 * an asymmetric quadratic and quartic term, as an off-axis telescope has.
 * Across the field the pixel area changes by ~1% and the radial plate
 * scale by ~3%; for 4088-px detectors points move by up to ~130 px (rms
 * ~40 px) from the best linear model of the whole field, and a detector's
 * corners by 4-11 px from the linear model at its centre.  Everything
 * scales with the detector size.  The plate scale is normalised so that
 * the mean pixel scale at the 18 detector centres is RAPID_PIXSCALE.
 *
 * Detector WCS.  The exact chain pixel -> focal plane -> distortion -> sky
 * (gnomonic about the boresight, rotated by PA) is sampled on a grid and a
 * 4th-order TAN-SIP (with AP/BP inverse) is fitted by linear least squares.
 * That fitted WCS is the truth the renderer places sources with; it departs
 * from the exact chain by < 1e-6 px (the distortion is a polynomial; what
 * is left comes from the change of tangent point).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit.h>

#include "rapid/rng.h"
#include "rapid/tile.h"
#include "sim_internal.h"
#include "core/sphere.h"

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)
#define ARCSEC_RAD (D2R / 3600.0)

/* ------------------------------------------------------------- layout */

#define FP_COL_PITCH 1.09 /* detector sizes between column centres */
#define FP_ROW_PITCH 1.10 /* and between row centres */
/* Downward shift of the inner, middle and outer columns (the chevron). */
static const double fp_chevron[3] = {0.0, -0.21, -0.74};
/* Mounting rotation of each detector, degrees (1-based; [0] unused). */
static const double fp_rot_deg[RAPID_NSCA + 1] = {
    0,      0.012,  -0.020, 0.008, -0.015, 0.025, -0.006, 0.018, -0.010,
    0.004,  -0.012, 0.016,  -0.022, 0.009, -0.004, 0.021, -0.017, 0.006,
    -0.011};

/* Distortion polynomial in x = u/R, y = v/R, R = FP_RADIUS sizes:
 *   du/R = K1 x r^2 + A1 x y
 *   dv/R = K1 y r^2 + A2 x^2 + A3 y^2 + A4 r^4
 * A3 = -A1/2 keeps the quadratic term area-preserving to first order, so
 * that the plate-scale variation is the radial one. */
#define FP_RADIUS 3.2
#define DIST_K1 0.0036
#define DIST_A1 0.010
#define DIST_A2 0.0075
#define DIST_A3 (-0.005)
#define DIST_A4 0.0012

/* ------------------------------------------------------------- fitting */

#define SIP_ORDER 4
#define FIT_GRID 21  /* points per side sampled for the fit */
#define FIT_TERMS 14 /* monomials of degree 1..4 */

/* ---------------------------------------------------------------- plan */

#define OVERHEAD_S 60.0     /* slew and settle between exposures */
#define DITHER_FRAC 0.8     /* targets land in the inner 80% of a detector */
#define PA_DRIFT 0.9856     /* deg/day: the roll follows the Sun */
#define PA_DITHER 3.0       /* +- degrees of random roll per pointing */
#define COVER_MARGIN 1.0    /* pixels: tolerance of the quick coverage test */

/* Stream names for rapid_rng_derive: the plan does not depend on the
 * order in which its parts are made. */
enum { STREAM_ROLL = 0x524f4c4c, STREAM_POINT = 0x504f494e };

/* A pointing made ready for fast transforms. */
typedef struct fp_view {
    double size;      /* detector side, pixels */
    double s0;        /* arcsec per focal-plane unit */
    double sp, cp;    /* sin, cos PA */
    double b[3];      /* boresight unit vector */
    double e[3], n[3];/* east and north unit vectors at the boresight */
} fp_view;

/* ---------------------------------------------------- the focal plane */

/* Centre (focal-plane units) and rotation (radians) of detector sca. */
static void sca_place(int sca, double size, double *uc, double *vc,
                      double *rot)
{
    int side = sca <= 9 ? -1 : 1; /* 1-9 east (u < 0) at PA 0 */
    int col = ((sca - 1) % 9) / 3, row = (sca - 1) % 3;
    double mean_shift = (fp_chevron[0] + fp_chevron[1] + fp_chevron[2]) / 3;

    *uc = side * (0.5 + col) * FP_COL_PITCH * size;
    /* The boresight is the centroid of the 18 detector centres. */
    *vc = ((row - 1) * FP_ROW_PITCH + fp_chevron[col] - mean_shift) * size;
    *rot = fp_rot_deg[sca] * D2R;
}

static void det_to_fp(int sca, double size, double x, double y, double *u,
                      double *v)
{
    double uc, vc, rot, dx = x - (size - 1) / 2, dy = y - (size - 1) / 2;

    sca_place(sca, size, &uc, &vc, &rot);
    *u = uc + cos(rot) * dx - sin(rot) * dy;
    *v = vc + sin(rot) * dx + cos(rot) * dy;
}

static void fp_to_det(int sca, double size, double u, double v, double *x,
                      double *y)
{
    double uc, vc, rot;

    sca_place(sca, size, &uc, &vc, &rot);
    u -= uc;
    v -= vc;
    *x = cos(rot) * u + sin(rot) * v + (size - 1) / 2;
    *y = -sin(rot) * u + cos(rot) * v + (size - 1) / 2;
}

/* Distorted focal-plane position of (u, v), and its Jacobian if J. */
static void distort(double size, double u, double v, double *ud, double *vd,
                    double J[2][2])
{
    double R = FP_RADIUS * size, x = u / R, y = v / R, r2 = x * x + y * y;

    *ud = u + R * (DIST_K1 * x * r2 + DIST_A1 * x * y);
    *vd = v + R * (DIST_K1 * y * r2 + DIST_A2 * x * x + DIST_A3 * y * y +
                   DIST_A4 * r2 * r2);
    if (!J)
        return;
    J[0][0] = 1 + DIST_K1 * (3 * x * x + y * y) + DIST_A1 * y;
    J[0][1] = 2 * DIST_K1 * x * y + DIST_A1 * x;
    J[1][0] = 2 * DIST_K1 * x * y + 2 * DIST_A2 * x + 4 * DIST_A4 * r2 * x;
    J[1][1] = 1 + DIST_K1 * (x * x + 3 * y * y) + 2 * DIST_A3 * y +
              4 * DIST_A4 * r2 * y;
}

/* Newton's method; the distortion is a small perturbation of the identity,
 * so a few steps reach rounding error. */
static int undistort(double size, double ud, double vd, double *u, double *v)
{
    double J[2][2], fu, fv, det, du, dv;
    int it;

    *u = ud;
    *v = vd;
    for (it = 0; it < 30; it++) {
        distort(size, *u, *v, &fu, &fv, J);
        fu -= ud;
        fv -= vd;
        det = J[0][0] * J[1][1] - J[0][1] * J[1][0];
        if (!(fabs(det) > 1e-6))
            return RAPID_E_RANGE;
        du = (J[1][1] * fu - J[0][1] * fv) / det;
        dv = (J[0][0] * fv - J[1][0] * fu) / det;
        *u -= du;
        *v -= dv;
        if (fabs(du) + fabs(dv) < 1e-10 * (1 + size))
            return 0;
    }
    return RAPID_E_RANGE;
}

/* arcsec per focal-plane unit, such that the mean pixel scale at the 18
 * detector centres is RAPID_PIXSCALE.  The distortion is scale-free in
 * units of the detector size, so this does not depend on it. */
static double plate_scale(void)
{
    double sum = 0, J[2][2], u, v, ud, vd;
    int s;

    for (s = 1; s <= RAPID_NSCA; s++) {
        det_to_fp(s, 1.0, 0.0, 0.0, &u, &v);
        distort(1.0, u, v, &ud, &vd, J);
        sum += sqrt(fabs(J[0][0] * J[1][1] - J[0][1] * J[1][0]));
    }
    return RAPID_PIXSCALE / (sum / RAPID_NSCA);
}

static void view_init(fp_view *f, double size, double ra, double dec,
                      double pa)
{
    f->size = size;
    f->s0 = plate_scale();
    f->sp = sin(pa * D2R);
    f->cp = cos(pa * D2R);
    sphere_frame(ra, dec, f->b, f->e, f->n);
}

/* Distorted focal plane to gnomonic coordinates about the boresight. */
static void fp_to_tan(const fp_view *f, double ud, double vd, double *xi,
                      double *eta)
{
    double au = ud * f->s0 * ARCSEC_RAD, av = vd * f->s0 * ARCSEC_RAD;

    *xi = -au * f->cp + av * f->sp;
    *eta = au * f->sp + av * f->cp;
}

static void tan_to_fp(const fp_view *f, double xi, double eta, double *ud,
                      double *vd)
{
    double k = 1.0 / (f->s0 * ARCSEC_RAD);

    *ud = (-xi * f->cp + eta * f->sp) * k;
    *vd = (xi * f->sp + eta * f->cp) * k;
}

static void view_pix2sky(const fp_view *f, int sca, double x, double y,
                         double *ra, double *dec)
{
    double u, v, ud, vd, xi, eta, w[3];

    det_to_fp(sca, f->size, x, y, &u, &v);
    distort(f->size, u, v, &ud, &vd, NULL);
    fp_to_tan(f, ud, vd, &xi, &eta);
    sphere_deproject(f->b, f->e, f->n, xi, eta, w);
    sphere_radec(w, ra, dec);
}

/* Undistorted focal-plane position of a sky point; RAPID_E_RANGE if it is
 * not in front of the focal plane. */
static int view_sky2fp(const fp_view *f, double ra, double dec, double *u,
                       double *v)
{
    double w[3], xi, eta, ud, vd;

    sphere_vec(ra, dec, w);
    if (sphere_project(f->b, f->e, f->n, w, &xi, &eta) != 0)
        return RAPID_E_RANGE;
    tan_to_fp(f, xi, eta, &ud, &vd);
    return undistort(f->size, ud, vd, u, v);
}

static int check_sca(const rapid_sim_config *c, const rapid_sim_pointing *p,
                     int sca, rapid_err *err)
{
    if (!c || !p)
        return rapid_fail(err, RAPID_E_ARG, "simulated detector: NULL %s",
                          c ? "pointing" : "configuration");
    if (c->size < 1)
        return rapid_fail(err, RAPID_E_ARG,
                          "simulated detector: size %d pixels is not positive",
                          c->size);
    if (sca < 1 || sca > RAPID_NSCA || (c->nscas > 0 && sca > c->nscas))
        return rapid_fail(err, RAPID_E_RANGE,
                          "simulated detector: SCA %d outside 1..%d", sca,
                          c->nscas > 0 && c->nscas < RAPID_NSCA ? c->nscas
                                                                : RAPID_NSCA);
    if (!isfinite(p->ra) || !isfinite(p->dec) || fabs(p->dec) > 90 ||
        !isfinite(p->pa))
        return rapid_fail(err, RAPID_E_ARG,
                          "pointing %d: bad boresight (%g, %g) or PA %g",
                          p->id, p->ra, p->dec, p->pa);
    return 0;
}

int sim_focal_pix2sky(const rapid_sim_config *c, const rapid_sim_pointing *p,
                      int sca, int n, const double *x, const double *y,
                      double *ra, double *dec, rapid_err *err)
{
    fp_view f;
    int k, rc;

    if ((rc = check_sca(c, p, sca, err)) != 0)
        return rc;
    if (n < 0 || (n > 0 && (!x || !y || !ra || !dec)))
        return rapid_fail(err, RAPID_E_ARG, "sim_focal_pix2sky: bad arrays");
    view_init(&f, c->size, p->ra, p->dec, p->pa);
    for (k = 0; k < n; k++)
        view_pix2sky(&f, sca, x[k], y[k], &ra[k], &dec[k]);
    return 0;
}

int sim_focal_sky2pix(const rapid_sim_config *c, const rapid_sim_pointing *p,
                      int sca, int n, const double *ra, const double *dec,
                      double *x, double *y, rapid_err *err)
{
    fp_view f;
    double u, v;
    int k, rc, bad = 0;

    if ((rc = check_sca(c, p, sca, err)) != 0)
        return rc;
    if (n < 0 || (n > 0 && (!x || !y || !ra || !dec)))
        return rapid_fail(err, RAPID_E_ARG, "sim_focal_sky2pix: bad arrays");
    view_init(&f, c->size, p->ra, p->dec, p->pa);
    for (k = 0; k < n; k++) {
        if (view_sky2fp(&f, ra[k], dec[k], &u, &v) != 0) {
            x[k] = y[k] = NAN;
            bad++;
            continue;
        }
        fp_to_det(sca, f.size, u, v, &x[k], &y[k]);
    }
    if (bad)
        return rapid_fail(err, RAPID_E_RANGE,
                          "pointing %d SCA %d: %d of %d sky positions are "
                          "not in front of the focal plane",
                          p->id, sca, bad, n);
    return 0;
}

/* ------------------------------------------------------- the SIP fit */

/* Exponents of the fitted monomials, degree 1..4. */
static void term_powers(int pw[FIT_TERMS][2])
{
    int d, p, k = 0;

    for (d = 1; d <= SIP_ORDER; d++)
        for (p = d; p >= 0; p--) {
            pw[k][0] = p;
            pw[k][1] = d - p;
            k++;
        }
}

/* Least squares of two right-hand sides over the same monomials of
 * (a, b) / h; coefficients come back in unnormalised units. */
static int fit_poly2(int n, const double *a, const double *b, double h,
                     const double *r1, const double *r2,
                     double c1[FIT_TERMS], double c2[FIT_TERMS])
{
    int pw[FIT_TERMS][2], i, k, rc = 0;
    gsl_multifit_linear_workspace *ws = NULL;
    gsl_matrix *X = NULL, *cov = NULL;
    gsl_vector *y = NULL, *cf = NULL;
    double chisq;

    term_powers(pw);
    ws = gsl_multifit_linear_alloc((size_t)n, FIT_TERMS);
    X = gsl_matrix_alloc((size_t)n, FIT_TERMS);
    cov = gsl_matrix_alloc(FIT_TERMS, FIT_TERMS);
    y = gsl_vector_alloc((size_t)n);
    cf = gsl_vector_alloc(FIT_TERMS);
    if (!ws || !X || !cov || !y || !cf) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    /* Normalised coordinates keep the 4th powers near 1 and the normal
     * equations well conditioned. */
    for (i = 0; i < n; i++)
        for (k = 0; k < FIT_TERMS; k++)
            gsl_matrix_set(X, (size_t)i, (size_t)k,
                           pow(a[i] / h, pw[k][0]) * pow(b[i] / h, pw[k][1]));
    for (i = 0; i < n; i++)
        gsl_vector_set(y, (size_t)i, r1[i]);
    if (gsl_multifit_linear(X, y, cf, cov, &chisq, ws) != GSL_SUCCESS) {
        rc = RAPID_E_RANGE;
        goto cleanup;
    }
    for (k = 0; k < FIT_TERMS; k++)
        c1[k] = gsl_vector_get(cf, (size_t)k) / pow(h, pw[k][0] + pw[k][1]);
    for (i = 0; i < n; i++)
        gsl_vector_set(y, (size_t)i, r2[i]);
    if (gsl_multifit_linear(X, y, cf, cov, &chisq, ws) != GSL_SUCCESS) {
        rc = RAPID_E_RANGE;
        goto cleanup;
    }
    for (k = 0; k < FIT_TERMS; k++)
        c2[k] = gsl_vector_get(cf, (size_t)k) / pow(h, pw[k][0] + pw[k][1]);
cleanup:
    gsl_vector_free(cf);
    gsl_vector_free(y);
    gsl_matrix_free(cov);
    gsl_matrix_free(X);
    gsl_multifit_linear_free(ws);
    return rc;
}

/* Grid samples of one detector: pixel offsets from the centre (u, v) and
 * intermediate world coordinates (degrees) about its centre, crval. */
typedef struct fit_grid {
    int n;
    double u[FIT_GRID * FIT_GRID], v[FIT_GRID * FIT_GRID];
    double xi[FIT_GRID * FIT_GRID], eta[FIT_GRID * FIT_GRID];
    double crval[2];
} fit_grid;

static void sample_detector(const fp_view *f, int sca, fit_grid *g)
{
    double half = (f->size - 1) / 2, b[3], e[3], n[3], w[3], ra, dec;
    int i, j, k = 0;

    view_pix2sky(f, sca, half, half, &g->crval[0], &g->crval[1]);
    sphere_frame(g->crval[0], g->crval[1], b, e, n);
    for (j = 0; j < FIT_GRID; j++)
        for (i = 0; i < FIT_GRID; i++) {
            /* From the outer edge of the first pixel to that of the last. */
            double x = -0.5 + f->size * i / (FIT_GRID - 1.0);
            double y = -0.5 + f->size * j / (FIT_GRID - 1.0);
            view_pix2sky(f, sca, x, y, &ra, &dec);
            sphere_vec(ra, dec, w);
            /* A detector spans well under a degree: always in front. */
            sphere_project(b, e, n, w, &g->xi[k], &g->eta[k]);
            g->xi[k] *= R2D;
            g->eta[k] *= R2D;
            g->u[k] = x - half;
            g->v[k] = y - half;
            k++;
        }
    g->n = k;
}

/* CD and the forward SIP from the fitted IWC polynomials: the linear terms
 * are CD; the rest, brought back to pixels by CD^-1, are A and B. */
static int split_cd_sip(const double cx[FIT_TERMS], const double cy[FIT_TERMS],
                        double cd[2][2], rapid_sip *sip)
{
    int pw[FIT_TERMS][2], k;
    double det, inv[2][2];

    term_powers(pw);
    cd[0][0] = cx[0]; /* terms 0, 1 are u, v */
    cd[0][1] = cx[1];
    cd[1][0] = cy[0];
    cd[1][1] = cy[1];
    det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
    if (!isfinite(det) || det == 0.0)
        return RAPID_E_WCS;
    inv[0][0] = cd[1][1] / det;
    inv[0][1] = -cd[0][1] / det;
    inv[1][0] = -cd[1][0] / det;
    inv[1][1] = cd[0][0] / det;
    sip->a_order = sip->b_order = SIP_ORDER;
    for (k = 2; k < FIT_TERMS; k++) {
        sip->a[pw[k][0]][pw[k][1]] = inv[0][0] * cx[k] + inv[0][1] * cy[k];
        sip->b[pw[k][0]][pw[k][1]] = inv[1][0] * cx[k] + inv[1][1] * cy[k];
    }
    return 0;
}

/* The inverse polynomials AP, BP (with linear terms): u - U as a function
 * of the corrected pixel offsets U = u + A(u, v). */
static int fit_inverse(const fit_grid *g, double h, rapid_sip *sip)
{
    double U[FIT_GRID * FIT_GRID], V[FIT_GRID * FIT_GRID];
    double du[FIT_GRID * FIT_GRID], dv[FIT_GRID * FIT_GRID];
    double ca[FIT_TERMS], cb[FIT_TERMS], fa, fb;
    int pw[FIT_TERMS][2], i, p, q, k, rc;

    for (i = 0; i < g->n; i++) {
        fa = fb = 0;
        for (p = 0; p <= SIP_ORDER; p++)
            for (q = 0; p + q <= SIP_ORDER; q++) {
                double m = pow(g->u[i], p) * pow(g->v[i], q);
                fa += sip->a[p][q] * m;
                fb += sip->b[p][q] * m;
            }
        U[i] = g->u[i] + fa;
        V[i] = g->v[i] + fb;
        du[i] = -fa;
        dv[i] = -fb;
    }
    if ((rc = fit_poly2(g->n, U, V, h, du, dv, ca, cb)) != 0)
        return rc;
    term_powers(pw);
    sip->ap_order = sip->bp_order = SIP_ORDER;
    for (k = 0; k < FIT_TERMS; k++) {
        sip->ap[pw[k][0]][pw[k][1]] = ca[k];
        sip->bp[pw[k][0]][pw[k][1]] = cb[k];
    }
    return 0;
}

int rapid_sim_detector_wcs(const rapid_sim_config *c,
                           const rapid_sim_pointing *p, int sca, rapid_wcs *w,
                           rapid_err *err)
{
    rapid_wcs empty = RAPID_WCS_INIT;
    fp_view f;
    fit_grid *g = NULL;
    rapid_sip *sip = NULL;
    double cx[FIT_TERMS], cy[FIT_TERMS], cd[2][2], crpix[2], h;
    int rc;

    if (!w)
        return rapid_fail(err, RAPID_E_ARG, "rapid_sim_detector_wcs: NULL WCS");
    *w = empty; /* safe to release whatever happens */
    if ((rc = check_sca(c, p, sca, err)) != 0)
        return rc;
    g = malloc(sizeof *g);
    sip = calloc(1, sizeof *sip);
    if (!g || !sip) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "pointing %d SCA %d: WCS fit: "
                        "out of memory", p->id, sca);
        goto cleanup;
    }
    view_init(&f, c->size, p->ra, p->dec, p->pa);
    sample_detector(&f, sca, g);
    h = f.size / 2;
    if ((rc = fit_poly2(g->n, g->u, g->v, h, g->xi, g->eta, cx, cy)) != 0 ||
        split_cd_sip(cx, cy, cd, sip) != 0 ||
        (rc = fit_inverse(g, h, sip)) != 0) {
        rc = rapid_fail(err, rc ? rc : RAPID_E_WCS,
                        "pointing %d SCA %d: the TAN-SIP fit failed (%s)",
                        p->id, sca, rc == RAPID_E_NOMEM ? "out of memory"
                                                        : "singular system");
        goto cleanup;
    }
    /* The centre of the detector, (size-1)/2 0-based, is FITS (size+1)/2. */
    crpix[0] = crpix[1] = (f.size + 1) / 2;
    rc = rapid_wcs_from_terms(w, g->crval, crpix, cd, sip, c->size, c->size,
                              err);
    if (rc)
        rapid_err_prefix(err, "pointing %d SCA %d", p->id, sca);
cleanup:
    free(sip);
    free(g);
    return rc;
}

/* ------------------------------------------------------------- config */

/* Exposure times of the OpenUniverse time-domain survey simulation:
 * R062 161 s, Y106/J129/H158 302 s, F184/K213 901 s.  Z087 and W146 are
 * not among its filters: Z087 takes R062's time and W146 that of the
 * other near-infrared wide bands. */
double rapid_sim_exptime(const rapid_sim_config *c, const rapid_filter *f)
{
    if (c && c->exptime > 0)
        return c->exptime;
    if (!f)
        return 0;
    switch (f->fid) {
    case 5: /* R062 */
    case 7: /* Z087 */
        return 161.0;
    case 1: /* F184 */
    case 4: /* K213 */
        return 901.0;
    default: /* Y106, J129, H158, W146 */
        return 302.0;
    }
}

void rapid_sim_config_init(rapid_sim_config *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->size = RAPID_SCA_PIX;
    c->ra = 9.6;
    c->dec = -44.0;
    c->ntiles = 1;
    c->nfilters = 1;
    c->filters[0] = rapid_filter_by_name("H158");
    c->epochs = 5;
    c->cadence_days = 5.0;
    c->mjd_start = 62021.0; /* 2028-09-07T00:00:00 UTC */
    c->nscas = RAPID_NSCA;
    c->exptime = 0.0; /* per filter: rapid_sim_exptime() */
    c->gzip = 0;
    c->star_density = 1.0;
    c->galaxy_density = 1.0;
    c->mag_faint = 28.0;
    c->mag_bright = 8.0;
    c->sn_rate = 1.0;
    c->variable_fraction = 0.05;
    c->cosmic_rays = 30;
    c->jump_sigma = 5.0;
    c->hot_pixels = 20;
    c->defects = 1;
    c->persistence = 1;
    c->with_sources = 1;
    c->with_noise = 1;
    c->psf_visit_blur = 0;
}

static int check_plan_config(const rapid_sim_config *c, rapid_err *err)
{
    int f;

    if (!c)
        return rapid_fail(err, RAPID_E_ARG, "survey plan: NULL configuration");
    if (c->size < 1)
        return rapid_fail(err, RAPID_E_ARG,
                          "survey plan: size %d pixels is not positive",
                          c->size);
    if (c->nscas < 1 || c->nscas > RAPID_NSCA)
        return rapid_fail(err, RAPID_E_RANGE,
                          "survey plan: %d detectors, want 1..%d", c->nscas,
                          RAPID_NSCA);
    if (c->epochs < 1 || c->ntiles < 1 || c->ntiles > 100000 ||
        (double)c->epochs * c->ntiles * RAPID_NFILTERS > 1e8)
        return rapid_fail(err, RAPID_E_RANGE,
                          "survey plan: %d epochs and %d tiles; want at least "
                          "one of each, at most 100000 tiles and 1e8 "
                          "pointings", c->epochs, c->ntiles);
    if (c->nfilters < 1 || c->nfilters > RAPID_NFILTERS)
        return rapid_fail(err, RAPID_E_RANGE,
                          "survey plan: %d filters, want 1..%d", c->nfilters,
                          RAPID_NFILTERS);
    for (f = 0; f < c->nfilters; f++)
        if (!c->filters[f])
            return rapid_fail(err, RAPID_E_ARG,
                              "survey plan: filter %d of %d is not set", f + 1,
                              c->nfilters);
    if (!(c->cadence_days >= 0) || !(c->exptime >= 0) ||
        !isfinite(c->mjd_start) || !isfinite(c->cadence_days) ||
        !isfinite(c->exptime))
        return rapid_fail(err, RAPID_E_ARG,
                          "survey plan: bad cadence %g d, exposure %g s or "
                          "start MJD %g",
                          c->cadence_days, c->exptime, c->mjd_start);
    if (!isfinite(c->ra) || !(fabs(c->dec) <= 90))
        return rapid_fail(err, RAPID_E_ARG,
                          "survey plan: bad field centre (%g, %g)", c->ra,
                          c->dec);
    return 0;
}

/* --------------------------------------------------------- target tiles */

/* Tiles collected so far (sorted, for lookups) and the last ring added. */
typedef struct tile_set {
    int64_t *all, *ring;
    int nall, nring;
} tile_set;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Add the neighbours of the last ring that are not in yet: the next ring. */
static int tile_set_grow(tile_set *s, int64_t *nb, rapid_err *err)
{
    int64_t *cand = NULL, *all = NULL;
    int maxnb = rapid_tile_max_neighbors(RAPID_TILE_NSIDE);
    int k, j, m, nc = 0, nu = 0;

    cand = malloc(((size_t)s->nring * maxnb + 1) * sizeof *cand);
    if (!cand)
        return rapid_fail(err, RAPID_E_NOMEM, "survey plan: out of memory");
    for (k = 0; k < s->nring; k++) {
        if ((m = rapid_tile_neighbors(RAPID_TILE_NSIDE, s->ring[k], nb, err)) < 0) {
            free(cand);
            return m;
        }
        for (j = 0; j < m; j++)
            if (!bsearch(&nb[j], s->all, (size_t)s->nall, sizeof *s->all,
                         cmp_i64))
                cand[nc++] = nb[j];
    }
    qsort(cand, (size_t)nc, sizeof *cand, cmp_i64);
    for (k = 0; k < nc; k++)
        if (nu == 0 || cand[k] != cand[nu - 1])
            cand[nu++] = cand[k];
    all = realloc(s->all, ((size_t)s->nall + nu + 1) * sizeof *all);
    if (!all) {
        free(cand);
        return rapid_fail(err, RAPID_E_NOMEM, "survey plan: out of memory");
    }
    memcpy(all + s->nall, cand, (size_t)nu * sizeof *cand);
    s->all = all;
    s->nall += nu;
    qsort(s->all, (size_t)s->nall, sizeof *s->all, cmp_i64);
    free(s->ring);
    s->ring = cand;
    s->nring = nu;
    return 0;
}

typedef struct tile_dist {
    rapid_tile t;
    double d;
} tile_dist;

static int by_distance(const void *a, const void *b)
{
    const tile_dist *x = a, *y = b;

    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->t.rtid < y->t.rtid ? -1 : x->t.rtid > y->t.rtid;
}

/* The tile of the field centre and the ntiles-1 nearest others, nearest
 * first.  Neighbour rings are collected until there are enough, then two
 * more, because a diagonal tile of one ring can lie further than a straight
 * one of the next. */
static int target_tiles(const rapid_sim_config *c, rapid_tile **out,
                        rapid_err *err)
{
    tile_set s = {NULL, NULL, 0, 0};
    tile_dist *td = NULL;
    int64_t *nb = NULL, rtid0;
    int k, extra = c->ntiles > 1 ? 2 : 0, rc = 0;

    *out = NULL;
    nb = malloc((size_t)rapid_tile_max_neighbors(RAPID_TILE_NSIDE) *
                sizeof *nb);
    s.all = malloc(sizeof *s.all);
    s.ring = malloc(sizeof *s.ring);
    if (!nb || !s.all || !s.ring) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "survey plan: out of memory");
        goto cleanup;
    }
    rtid0 = rapid_tile_rtid(RAPID_TILE_NSIDE, c->ra, c->dec);
    s.all[0] = s.ring[0] = rtid0;
    s.nall = s.nring = 1;
    while ((s.nall < c->ntiles || extra-- > 0) && s.nring > 0)
        if ((rc = tile_set_grow(&s, nb, err)) != 0)
            goto cleanup;
    if (s.nall < c->ntiles) {
        rc = rapid_fail(err, RAPID_E_RANGE, "survey plan: only %d tiles "
                        "around (%g, %g), %d asked", s.nall, c->ra, c->dec,
                        c->ntiles);
        goto cleanup;
    }
    if (!(td = malloc((size_t)s.nall * sizeof *td))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "survey plan: out of memory");
        goto cleanup;
    }
    for (k = 0; k < s.nall; k++) {
        if ((rc = rapid_tile_get(RAPID_TILE_NSIDE, s.all[k], &td[k].t, err)))
            goto cleanup;
        td[k].d = rapid_sky_distance(c->ra, c->dec, td[k].t.cra, td[k].t.cdec);
        if (td[k].t.rtid == rtid0)
            td[k].d = -1.0; /* the field's own tile comes first, always */
    }
    qsort(td, (size_t)s.nall, sizeof *td, by_distance);
    if (!(*out = malloc((size_t)c->ntiles * sizeof **out))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "survey plan: out of memory");
        goto cleanup;
    }
    for (k = 0; k < c->ntiles; k++)
        (*out)[k] = td[k].t;
cleanup:
    free(td);
    free(nb);
    free(s.all);
    free(s.ring);
    return rc;
}

/* --------------------------------------------------------- pointings */

/* The detector (1..nscas) whose pixels, grown by margin, hold a sky
 * position at pointing p, and where; 0 if none. */
static int find_detector(const rapid_sim_config *c, const rapid_sim_pointing *p,
                         double ra, double dec, double margin, double *x,
                         double *y)
{
    fp_view f;
    double u, v;
    int s;

    view_init(&f, c->size, p->ra, p->dec, p->pa);
    if (view_sky2fp(&f, ra, dec, &u, &v) != 0)
        return 0;
    for (s = 1; s <= c->nscas; s++) {
        fp_to_det(s, f.size, u, v, x, y);
        if (*x >= -0.5 - margin && *x <= c->size - 0.5 + margin &&
            *y >= -0.5 - margin && *y <= c->size - 0.5 + margin)
            return s;
    }
    return 0;
}

/* Whether one of the pointings puts (ra, dec) on a detector, by the
 * detector's WCS (the truth images are made with). */
static int covered(const rapid_sim_config *c, const rapid_sim_pointing *p,
                   int np, double ra, double dec, int *hit, rapid_err *err)
{
    rapid_wcs w = RAPID_WCS_INIT;
    double x, y;
    int k, s, rc;

    *hit = 0;
    for (k = 0; k < np && !*hit; k++) {
        /* The exact model finds the candidate cheaply; the WCS decides. */
        if (!(s = find_detector(c, &p[k], ra, dec, COVER_MARGIN, &x, &y)))
            continue;
        if ((rc = rapid_sim_detector_wcs(c, &p[k], s, &w, err)) != 0)
            return rc;
        rc = rapid_wcs_sky2pix(&w, 1, &ra, &dec, &x, &y, NULL);
        rapid_wcs_release(&w);
        *hit = rc == 0 && x >= -0.5 && x <= c->size - 0.5 && y >= -0.5 &&
               y <= c->size - 0.5;
    }
    return 0;
}

/* The boresight that puts the sky position (ra, dec) at focal-plane
 * gnomonic coordinates (xi, eta) for the pointing's roll.  Moving the
 * boresight by the error in its own tangent plane converges geometrically
 * (the error shrinks by ~ the squared field angle each step). */
static void aim(rapid_sim_pointing *p, double ra, double dec, double xi,
                double eta)
{
    double b[3], e[3], n[3], t[3], w[3], x, y;
    int it;

    sphere_vec(ra, dec, t);
    sphere_frame(ra, dec, b, e, n);
    sphere_deproject(b, e, n, -xi, -eta, w);
    sphere_radec(w, &p->ra, &p->dec);
    for (it = 0; it < 50; it++) {
        sphere_frame(p->ra, p->dec, b, e, n);
        if (sphere_project(b, e, n, t, &x, &y) != 0)
            break;
        x -= xi;
        y -= eta;
        if (fabs(x) + fabs(y) < 1e-15)
            break;
        sphere_deproject(b, e, n, x, y, w);
        sphere_radec(w, &p->ra, &p->dec);
    }
}

/* A new pointing putting tile t at a random place of a random detector.
 * The random numbers come from a stream of its own (visit, filter, tile). */
static void point_at(const rapid_sim_config *c, const rapid_tile *t, int tile,
                     int fi, double pa0, rapid_sim_pointing *p)
{
    rapid_rng r;
    fp_view f;
    double x, y, u, v, ud, vd, xi, eta, pa;
    int sca;

    rapid_rng_derive(&r, c->seed, STREAM_POINT,
                     (uint64_t)p->visit * RAPID_NFILTERS + (uint64_t)fi,
                     (uint64_t)tile);
    sca = 1 + (int)(rapid_rng_uniform(&r) * c->nscas);
    if (sca > c->nscas)
        sca = c->nscas;
    x = c->size * (0.5 - DITHER_FRAC / 2 + DITHER_FRAC * rapid_rng_uniform(&r))
        - 0.5;
    y = c->size * (0.5 - DITHER_FRAC / 2 + DITHER_FRAC * rapid_rng_uniform(&r))
        - 0.5;
    pa = pa0 + PA_DRIFT * (p->mjd - c->mjd_start) +
         PA_DITHER * (2 * rapid_rng_uniform(&r) - 1);
    pa = fmod(pa, 360.0);
    p->pa = pa < 0 ? pa + 360.0 : pa;
    view_init(&f, c->size, 0.0, 0.0, p->pa);
    det_to_fp(sca, f.size, x, y, &u, &v);
    distort(f.size, u, v, &ud, &vd, NULL);
    fp_to_tan(&f, ud, vd, &xi, &eta);
    aim(p, t->cra, t->cdec, xi, eta);
}

/* The pointings of one visit in one filter, appended at p[*np]: one for
 * each tile that no earlier pointing of the group already covers, taken
 * one after the other from *clock on (which moves on past them). */
static int plan_group(const rapid_sim_config *c, const rapid_tile *tiles,
                      int v, int fi, double *clock, double pa0,
                      rapid_sim_pointing *p, int *np, rapid_err *err)
{
    double t = rapid_sim_exptime(c, c->filters[fi]);
    double step = (t + OVERHEAD_S) / 86400.0;
    int group = *np, k, hit, rc;

    for (k = 0; k < c->ntiles; k++) {
        rc = covered(c, p + group, *np - group, tiles[k].cra, tiles[k].cdec,
                     &hit, err);
        if (rc)
            return rc;
        if (hit)
            continue;
        p[*np].visit = v;
        p[*np].filter = c->filters[fi];
        p[*np].exptime = t;
        p[*np].mjd = *clock;
        *clock += step;
        point_at(c, &tiles[k], k, fi, pa0, &p[*np]);
        (*np)++;
    }
    return 0;
}

int rapid_sim_plan(const rapid_sim_config *c, rapid_sim_pointing **out,
                   rapid_err *err)
{
    rapid_tile *tiles = NULL;
    rapid_sim_pointing *p = NULL;
    rapid_rng r;
    double pa0, clock;
    int np = 0, v, f, k, rc;

    if (!out)
        return rapid_fail(err, RAPID_E_ARG, "survey plan: NULL output");
    *out = NULL;
    if ((rc = check_plan_config(c, err)) != 0)
        return rc;
    if ((rc = target_tiles(c, &tiles, err)) != 0)
        goto cleanup;
    p = calloc((size_t)c->epochs * c->nfilters * c->ntiles, sizeof *p);
    if (!p) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "survey plan: out of memory for "
                        "%d pointings", c->epochs * c->nfilters * c->ntiles);
        goto cleanup;
    }
    /* The roll starts anywhere and then follows the Sun. */
    rapid_rng_derive(&r, c->seed, STREAM_ROLL, 0, 0);
    pa0 = 360.0 * rapid_rng_uniform(&r);
    for (v = 0; v < c->epochs; v++) {
        clock = c->mjd_start + v * c->cadence_days;
        for (f = 0; f < c->nfilters; f++)
            if ((rc = plan_group(c, tiles, v, f, &clock, pa0, p, &np, err)))
                goto cleanup;
    }
    for (k = 0; k < np; k++)
        p[k].id = k + 1;
    *out = p;
    p = NULL;
    rc = np;
cleanup:
    free(p);
    free(tiles);
    return rc;
}
