/* regrid.c - one image onto another's pixels through the mesh of its
 * pixel edges (resample.h): the input cut to the part that can reach the
 * output, mapped, deposited, and taken row by row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/pixmap.h"
#include "rapid/regrid.h"
#include "resample.h"

#define EDGE_SAMPLES 33 /* points along each side of the output probed */
#define CUT_MARGIN 2    /* input pixels kept beyond the probed bounds */

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

/* Input pixels per output pixel along row y: the area of each output
 * pixel's corners mapped back (inv: output -> input). */
static void pixel_areas(const rapid_pixmap *inv, int y, int onx, double *ux0,
                        double *uy0, double *ux1, double *uy1, double *area)
{
    int x;

    rapid_pixmap_row(inv, y - 0.5, -0.5, 1.0, onx + 1, ux0, uy0);
    rapid_pixmap_row(inv, y + 0.5, -0.5, 1.0, onx + 1, ux1, uy1);
    for (x = 0; x < onx; x++) {
        double ax = ux1[x + 1] - ux0[x], ay = uy1[x + 1] - uy0[x];
        double bx = ux1[x] - ux0[x + 1], by = uy1[x] - uy0[x + 1];
        area[x] = 0.5 * fabs(ax * by - ay * bx);
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
    float *sub = NULL;
    double *as = NULL, *a = NULL, *buf = NULL, *area = NULL, *pu = NULL;
    double *pw = NULL;
    int win[4], w, h, x, y, rc;
    long nsat = 0;
    size_t k;

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
    sub = malloc((size_t)w * h * sizeof *sub);
    as = malloc((size_t)onx * sizeof *as);
    a = malloc((size_t)onx * sizeof *a);
    buf = malloc(4 * ((size_t)onx + 1) * sizeof *buf);
    area = malloc((size_t)onx * sizeof *area);
    pu = malloc((size_t)onx * sizeof *pu);
    pw = malloc((size_t)onx * sizeof *pw);
    if (!sub || !as || !a || !buf || !area || !pu || !pw) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "regrid: out of memory for %d x %d "
                        "input pixels", w, h);
        goto cleanup;
    }
    for (y = 0; y < h; y++)
        memcpy(sub + (size_t)y * w, in + (size_t)(y + win[2]) * inx + win[0],
               (size_t)w * sizeof *sub);
    if ((rc = rapid_pixmap_make(&m, &sw, out_wcs, -0.5, w - 0.5, -0.5, h - 0.5,
                                64, err)) != 0 ||
        (rc = rapid_pixmap_make(&inv, out_wcs, &sw, -0.5, onx - 0.5, -0.5,
                                ony - 0.5, 64, err)) != 0)
        goto cleanup;
    if ((rc = rapid_mesh_place(&mesh, &m, w, h,
                               4 * ((size_t)onx + 64) * ((size_t)ony + 64), -1)) ||
        (rc = rapid_mesh_add(&mesh, &m, sub, w, h, 1.0, INFINITY, NULL, NULL,
                             &nsat))) {
        rc = rapid_fail(err, rc, rc == RAPID_E_NOMEM
                                     ? "regrid: out of memory for the mesh"
                                     : "regrid: the input's pixels do not map "
                                       "onto the output's at a comparable "
                                       "scale");
        goto cleanup;
    }
    if (mode == RAPID_REGRID_VARIANCE &&
        (rc = rapid_mesh_var_make(&mv, &m, w, h)) != 0) {
        rc = rapid_fail(err, rc, "regrid: %s", rc == RAPID_E_NOMEM
                                                   ? "out of memory"
                                                   : "a singular map");
        goto cleanup;
    }
    for (y = mesh.y0; y < mesh.y0 + mesh.h; y++) {
        if (y < 0 || y >= ony) {
            rapid_mesh_row(&mesh, y, 1, 0, NULL, NULL); /* clear only */
            continue;
        }
        rapid_mesh_row(&mesh, y, 0, onx - 1, as, a);
        if (mode != RAPID_REGRID_FLUX)
            pixel_areas(&inv, y, onx, buf, buf + onx + 1, buf + 2 * (onx + 1),
                        buf + 3 * (onx + 1), area);
        if (mode == RAPID_REGRID_VARIANCE) /* output centres on the input */
            rapid_pixmap_row(&inv, y, 0, 1.0, onx, pu, pw);
        for (x = 0; x < onx; x++) {
            size_t o = (size_t)y * onx + x;
            if (!(a[x] > 1e-6))
                continue;
            /* the mesh deposits surface brightness (value per input pixel
             * over its area on the output): as / a is flux per whole output
             * pixel; the mean value per input pixel divides by the input
             * pixels it holds */
            out[o] = (float)(as[x] / a[x] /
                             (mode == RAPID_REGRID_FLUX ? 1.0 : area[x]));
            if (mode == RAPID_REGRID_VARIANCE) {
                /* sum f_p^2 var_p = G / apix^2 x the mean variance, G the
                 * sum of the squared overlaps (output-pixel units) and
                 * apix an input pixel's area there, 1 / area[x] */
                double apix, g = rapid_mesh_var_g(&mv, fmax(pu[x], -1.5),
                                                  fmax(pw[x], -1.5), &apix);
                out[o] = (float)(out[o] * g * area[x] * area[x]);
            }
            if (cover)
                cover[o] = (float)fmin(a[x], 1.0);
        }
    }
cleanup:
    rapid_mesh_release(&mesh);
    rapid_mesh_var_release(&mv);
    rapid_pixmap_release(&m);
    rapid_pixmap_release(&inv);
    rapid_wcs_release(&sw);
    free(sub);
    free(as);
    free(a);
    free(buf);
    free(area);
    free(pu);
    free(pw);
    return rc;
}
