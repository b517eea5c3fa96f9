/* regrid.c - one image onto another's pixels through the mesh of its
 * pixel edges (resample.h): the part of the input that can reach the
 * output (read in place), mapped, deposited, and taken row by row as the
 * rows are done. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/pixmap.h"
#include "rapid/regrid.h"
#include "resample.h"

#define EDGE_SAMPLES 33 /* points along each side of the output probed */
#define CUT_MARGIN 2    /* input pixels kept beyond the probed bounds */
#define REGRID_BATCH 0  /* rows the mesh's ring lets finish before they
                         * are taken (resample.h) */

/* The input pixels [x0, x1] x [y0, y1] that can reach the output grid;
 * RAPID_E_RANGE if none. */
static int input_window(rapid_wcs *in_wcs, int inx, int iny, rapid_wcs *out_wcs,
                        int onx, int ony, int win[4], rapid_err *err)
{
    enum { N = EDGE_SAMPLES * EDGE_SAMPLES };
    double x[N], y[N], ra[N], dec[N], u[N], w[N];
    double umin = INFINITY, umax = -INFINITY, wmin = INFINITY, wmax = -INFINITY;
    int i, j, k = 0;

    for (j = 0; j < EDGE_SAMPLES; j++)
        for (i = 0; i < EDGE_SAMPLES; i++, k++) {
            x[k] = -0.5 + onx * (double)i / (EDGE_SAMPLES - 1);
            y[k] = -0.5 + ony * (double)j / (EDGE_SAMPLES - 1);
        }
    /* points off either projection come back NaN and are passed over */
    rapid_wcs_pix2sky(out_wcs, N, x, y, ra, dec, NULL);
    rapid_wcs_sky2pix(in_wcs, N, ra, dec, u, w, NULL);
    for (k = 0; k < N; k++)
        if (isfinite(u[k]) && isfinite(w[k])) {
            umin = fmin(umin, u[k]), umax = fmax(umax, u[k]);
            wmin = fmin(wmin, w[k]), wmax = fmax(wmax, w[k]);
        }
    if (!(umin <= umax))
        return rapid_fail(err, RAPID_E_RANGE, "regrid: the output grid does "
                          "not map onto the input");
    win[0] = (int)fmax(0, floor(umin) - CUT_MARGIN);
    win[1] = (int)fmin(inx - 1, ceil(umax) + CUT_MARGIN);
    win[2] = (int)fmax(0, floor(wmin) - CUT_MARGIN);
    win[3] = (int)fmin(iny - 1, ceil(wmax) + CUT_MARGIN);
    if (win[0] > win[1] || win[2] > win[3])
        return rapid_fail(err, RAPID_E_NOOVERLAP, "regrid: the images do not "
                          "overlap (the output falls on input pixels %.0f..%.0f"
                          " x %.0f..%.0f of %d x %d)", umin, umax, wmin, wmax,
                          inx, iny);
    return 0;
}

/* The input WCS for its window: the same terms, CRPIX moved with the
 * origin (SIP is a polynomial of the offset from CRPIX: unchanged). */
static int window_wcs(const rapid_wcs *in, const int win[4], rapid_wcs *w,
                      rapid_err *err)
{
    double crpix[2] = {in->crpix[0] - win[0], in->crpix[1] - win[2]};

    if (in->kind != RAPID_WCS_TAN && in->kind != RAPID_WCS_TAN_SIP)
        return rapid_fail(err, RAPID_E_WCS, "regrid: the input WCS must be "
                          "TAN or TAN-SIP");
    return rapid_wcs_from_terms(w, in->crval, crpix, in->cd,
                                in->kind == RAPID_WCS_TAN_SIP ? &in->sip : NULL,
                                win[1] - win[0] + 1, win[3] - win[2] + 1, err);
}

/* Output rows on their way from the mesh: what each needs besides it. */
typedef struct regrid_rows {
    rapid_mesh *mesh;
    const rapid_pixmap *inv;     /* output -> input (window) pixels */
    const rapid_mesh_var *mv;    /* VARIANCE: the geometric factor */
    rapid_regrid_mode mode;
    int onx, ony;
    float *out, *cover;
    double *as, *a, *area, *pu, *pw;
    double *cx[2], *cy[2];       /* output pixel corners mapped back: the
                                  * corner row below the last row taken
                                  * and the one above it */
    int ctop;                    /* output row whose top corners cx[1] are
                                  * (INT_MIN: none yet) */
} regrid_rows;

/* Input pixels per output pixel along row y: the area of each output
 * pixel's corners mapped back.  Rows come in order, so the corners above
 * one row are those below the next. */
static void pixel_areas(regrid_rows *g, int y)
{
    double *t;
    int x;

    if (g->ctop == y - 1) {
        t = g->cx[0], g->cx[0] = g->cx[1], g->cx[1] = t;
        t = g->cy[0], g->cy[0] = g->cy[1], g->cy[1] = t;
    } else {
        rapid_pixmap_row(g->inv, y - 0.5, -0.5, 1.0, g->onx + 1, g->cx[0],
                         g->cy[0]);
    }
    rapid_pixmap_row(g->inv, y + 0.5, -0.5, 1.0, g->onx + 1, g->cx[1], g->cy[1]);
    g->ctop = y;
    for (x = 0; x < g->onx; x++) {
        const double *ux0 = g->cx[0], *uy0 = g->cy[0];
        const double *ux1 = g->cx[1], *uy1 = g->cy[1];
        double ax = ux1[x + 1] - ux0[x], ay = uy1[x + 1] - uy0[x];
        double bx = ux1[x] - ux0[x + 1], by = uy1[x] - uy0[x + 1];
        g->area[x] = 0.5 * fabs(ax * by - ay * bx);
    }
}

/* A finished row of the mesh (rapid_mesh_row_fn): on the grid into out
 * and cover, else only cleared. */
static void regrid_row(void *arg, int y)
{
    regrid_rows *g = arg;
    const double *as = g->as, *a = g->a, *area = g->area;
    int x, onx = g->onx;

    if (y < 0 || y >= g->ony) {
        rapid_mesh_row(g->mesh, y, 1, 0, NULL, NULL); /* clear only */
        return;
    }
    rapid_mesh_row(g->mesh, y, 0, onx - 1, g->as, g->a);
    if (g->mode != RAPID_REGRID_FLUX)
        pixel_areas(g, y);
    if (g->mode == RAPID_REGRID_VARIANCE) /* output centres on the input */
        rapid_pixmap_row(g->inv, y, 0, 1.0, onx, g->pu, g->pw);
    for (x = 0; x < onx; x++) {
        size_t o = (size_t)y * onx + x;
        if (!(a[x] > 1e-6))
            continue;
        /* the mesh deposits surface brightness (value per input pixel
         * over its area on the output): as / a is flux per whole output
         * pixel; the mean value per input pixel divides by the input
         * pixels it holds */
        g->out[o] = (float)(as[x] / a[x] /
                            (g->mode == RAPID_REGRID_FLUX ? 1.0 : area[x]));
        if (g->mode == RAPID_REGRID_VARIANCE) {
            /* sum f_p^2 var_p = G / apix^2 x the mean variance, G the
             * sum of the squared overlaps (output-pixel units) and
             * apix an input pixel's area there, 1 / area[x] */
            double apix, gf = rapid_mesh_var_g(g->mv, fmax(g->pu[x], -1.5),
                                               fmax(g->pw[x], -1.5), &apix);
            g->out[o] = (float)(g->out[o] * gf * area[x] * area[x]);
        }
        if (g->cover)
            g->cover[o] = (float)fmin(a[x], 1.0);
    }
}

int rapid_regrid(const float *in, int inx, int iny, rapid_wcs *in_wcs,
                 rapid_wcs *out_wcs, int onx, int ony, rapid_regrid_mode mode,
                 float *out, float *cover, rapid_err *err)
{
    rapid_wcs sw = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT, inv = RAPID_PIXMAP_INIT;
    rapid_mesh mesh = RAPID_MESH_INIT;
    rapid_mesh_var mv = RAPID_MESH_VAR_INIT;
    regrid_rows g;
    double *buf = NULL;
    int win[4], w, h, rc;
    long nsat = 0;
    size_t k, nb;

    if (!in || !out || !in_wcs || !out_wcs || inx < 1 || iny < 1 || onx < 1 ||
        ony < 1)
        return rapid_fail(err, RAPID_E_ARG, "regrid: missing image or WCS, or "
                          "an empty image (%d x %d onto %d x %d)", inx, iny,
                          onx, ony);
    for (k = 0; k < (size_t)onx * ony; k++) {
        out[k] = NAN;
        if (cover)
            cover[k] = 0;
    }
    if ((rc = input_window(in_wcs, inx, iny, out_wcs, onx, ony, win, err)) ||
        (rc = window_wcs(in_wcs, win, &sw, err)))
        goto cleanup;
    w = win[1] - win[0] + 1;
    h = win[3] - win[2] + 1;
    /* as, a, area, pu, pw: onx each; the corners: 4 rows of onx + 1 */
    nb = 5 * (size_t)onx + 4 * ((size_t)onx + 1);
    if (!(buf = malloc(nb * sizeof *buf))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "regrid: out of memory for %d x %d "
                        "input pixels", w, h);
        goto cleanup;
    }
    memset(&g, 0, sizeof g);
    g.as = buf, g.a = g.as + onx, g.area = g.a + onx, g.pu = g.area + onx;
    g.pw = g.pu + onx, g.cx[0] = g.pw + onx, g.cy[0] = g.cx[0] + onx + 1;
    g.cx[1] = g.cy[0] + onx + 1, g.cy[1] = g.cx[1] + onx + 1;
    g.ctop = INT_MIN;
    g.mesh = &mesh, g.inv = &inv, g.mv = &mv, g.mode = mode;
    g.onx = onx, g.ony = ony, g.out = out, g.cover = cover;
    if ((rc = rapid_pixmap_make(&m, &sw, out_wcs, -0.5, w - 0.5, -0.5, h - 0.5,
                                64, err)) != 0 ||
        (rc = rapid_pixmap_make(&inv, out_wcs, &sw, -0.5, onx - 0.5, -0.5,
                                ony - 0.5, 64, err)) != 0)
        goto cleanup;
    if (mode == RAPID_REGRID_VARIANCE &&
        (rc = rapid_mesh_var_make(&mv, &m, w, h)) != 0) {
        rc = rapid_fail(err, rc, "regrid: %s", rc == RAPID_E_NOMEM
                                                   ? "out of memory"
                                                   : "a singular map");
        goto cleanup;
    }
    /* a ring of rows, each taken as soon as it is done; the window's
     * corners beyond the output's rows and right side are never
     * deposited (it is the bounding box of the output on the input: with
     * a roll, up to half of it lies off the output) */
    if ((rc = rapid_mesh_place(&mesh, &m, w, h,
                               4 * ((size_t)onx + 64) * ((size_t)ony + 64),
                               REGRID_BATCH)) == 0) {
        rapid_mesh_clip(&mesh, 0, ony - 1, onx - 1);
        rc = rapid_mesh_add_strided(&mesh, &m, in + (size_t)win[2] * inx + win[0],
                                    (size_t)inx, w, h, 1.0, INFINITY, regrid_row,
                                    &g, &nsat);
    }
    if (rc)
        rc = rapid_fail(err, rc, rc == RAPID_E_NOMEM
                                     ? "regrid: out of memory for the mesh"
                                     : "regrid: the input's pixels do not map "
                                       "onto the output's at a comparable "
                                       "scale");
cleanup:
    rapid_mesh_release(&mesh);
    rapid_mesh_var_release(&mv);
    rapid_pixmap_release(&m);
    rapid_pixmap_release(&inv);
    rapid_wcs_release(&sw);
    free(buf);
    return rc;
}
