/* pixmap.c - input pixel -> output pixel through a grid of exact nodes.
 *
 * Interpolation is Keys' cubic convolution (a = -1/2) in each axis: it
 * reproduces quadratics exactly and errs as step^3 times the third
 * derivative, which for SIP distortions of realistic size is ~1e-6 px at
 * step 64.  Nodes extend one step before and two after the region, so every
 * evaluation inside it has its four nodes in each axis.
 */
#include <math.h>
#include <stdlib.h>

#include "core/clones.h"
#include "rapid/pixmap.h"

static void keys_weights(double t, double w[4])
{
    w[0] = ((-0.5 * t + 1.0) * t - 0.5) * t;
    w[1] = (1.5 * t - 2.5) * t * t + 1.0;
    w[2] = ((-1.5 * t + 2.0) * t + 0.5) * t;
    w[3] = (0.5 * t - 0.5) * t * t;
}

/* The same cubic as keys_weights applied to p[0..3], as polynomial
 * coefficients in t (constant term first). */
static void cubic_coeffs(const double *p, double c[4])
{
    c[0] = p[1];
    c[1] = 0.5 * (p[2] - p[0]);
    c[2] = p[0] - 2.5 * p[1] + 2.0 * p[2] - 0.5 * p[3];
    c[3] = 0.5 * (3.0 * (p[1] - p[2]) + p[3] - p[0]);
}

void rapid_pixmap_release(rapid_pixmap *m)
{
    if (!m)
        return;
    free(m->ox);
    free(m->oy);
    m->ox = m->oy = NULL;
    m->gx = m->gy = 0;
    m->valid = 0;
}

int rapid_pixmap_make(rapid_pixmap *m, rapid_wcs *in, rapid_wcs *out,
                      double xmin, double xmax, double ymin, double ymax,
                      int step, rapid_err *err)
{
    double *nx = NULL, *ny = NULL, *ra = NULL, *dec = NULL;
    size_t n, k;
    int rc = 0;

    m->ox = m->oy = NULL;
    m->valid = 0;
    if (step <= 0)
        step = 64;
    if (!(xmax >= xmin) || !(ymax >= ymin))
        return rapid_fail(err, RAPID_E_ARG, "pixel map: empty region [%g, %g] x [%g, %g]",
                          xmin, xmax, ymin, ymax);
    m->step = step;
    m->x0 = xmin - step;
    m->y0 = ymin - step;
    m->gx = (int)ceil((xmax - xmin) / step) + 4;
    m->gy = (int)ceil((ymax - ymin) / step) + 4;
    n = (size_t)m->gx * (size_t)m->gy;
    nx = malloc(n * sizeof *nx);
    ny = malloc(n * sizeof *ny);
    ra = malloc(n * sizeof *ra);
    dec = malloc(n * sizeof *dec);
    m->ox = malloc(n * sizeof *m->ox);
    m->oy = malloc(n * sizeof *m->oy);
    if (!nx || !ny || !ra || !dec || !m->ox || !m->oy) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "pixel map: no memory for %zu nodes", n);
        goto cleanup;
    }
    for (k = 0; k < n; k++) {
        nx[k] = m->x0 + (double)(k % (size_t)m->gx) * step;
        ny[k] = m->y0 + (double)(k / (size_t)m->gx) * step;
    }
    if ((rc = rapid_wcs_pix2sky(in, (int)n, nx, ny, ra, dec, err)) != 0 ||
        (rc = rapid_wcs_sky2pix(out, (int)n, ra, dec, m->ox, m->oy, err)) != 0) {
        rapid_err_prefix(err, "pixel map: input region does not map onto the output grid");
        goto cleanup;
    }
    m->valid = 1;
cleanup:
    free(nx);
    free(ny);
    free(ra);
    free(dec);
    if (rc)
        rapid_pixmap_release(m);
    return rc;
}

/* Node index and fraction along one axis, kept inside the node grid. */
static int locate(double u, int g, double *t)
{
    int k = (int)floor(u);

    if (k < 1)
        k = 1;
    if (k > g - 3)
        k = g - 3;
    *t = u - k;
    return k;
}

void rapid_pixmap_eval(const rapid_pixmap *m, double x, double y, double *ox,
                       double *oy)
{
    double tx, ty, wx[4], wy[4], sx = 0, sy = 0;
    int i = locate((x - m->x0) / m->step, m->gx, &tx);
    int j = locate((y - m->y0) / m->step, m->gy, &ty);
    int a, b;

    keys_weights(tx, wx);
    keys_weights(ty, wy);
    for (b = 0; b < 4; b++) {
        size_t row = (size_t)(j - 1 + b) * (size_t)m->gx + (size_t)(i - 1);
        double rx = 0, ry = 0;
        for (a = 0; a < 4; a++) {
            rx += wx[a] * m->ox[row + a];
            ry += wx[a] * m->oy[row + a];
        }
        sx += wy[b] * rx;
        sy += wy[b] * ry;
    }
    *ox = sx;
    *oy = sy;
}

/* Node interval of one point of a row: floor(u), kept inside the grid. */
static inline int row_interval(double u, int gx)
{
    int i = u >= 0 ? (int)u : (int)floor(u);

    return i < 1 ? 1 : i > gx - 3 ? gx - 3 : i;
}

/* The node columns a row keeps on the stack (8 kB, for the threads' small
 * stacks); a row across more (about 30,000 pixels at step 64) has them on
 * the heap. */
#define PIXMAP_ROW_NODES 512

RAPID_CLONES
void rapid_pixmap_row(const rapid_pixmap *m, double y, double x0, double dx,
                      int n, double *ox, double *oy)
{
    double ty, wy[4], cx[PIXMAP_ROW_NODES], cy[PIXMAP_ROW_NODES];
    double *colx = cx, *coly = cy;
    double u0 = (x0 - m->x0) / m->step, du = dx / m->step;
    int j = locate((y - m->y0) / m->step, m->gy, &ty), c, k, b, ilo, ihi, nc;

    if (n <= 0)
        return;
    /* the node intervals the points fall in: u = u0 + k du is monotonic in
     * k (so is its rounding), so the first and last points bound them */
    ilo = row_interval(u0, m->gx);
    ihi = row_interval(u0 + (n - 1) * du, m->gx);
    if (ihi < ilo)
        b = ilo, ilo = ihi, ihi = b;
    nc = ihi - ilo + 4; /* node columns ilo - 1 .. ihi + 2 */
    if (nc > PIXMAP_ROW_NODES) {
        colx = malloc((size_t)nc * sizeof *colx);
        coly = malloc((size_t)nc * sizeof *coly);
        if (!colx || !coly) { /* fall back to single points */
            for (k = 0; k < n; k++)
                rapid_pixmap_eval(m, x0 + k * dx, y, &ox[k], &oy[k]);
            goto cleanup;
        }
    }
    /* Collapse the four node rows onto this y once, over those columns... */
    keys_weights(ty, wy);
    {
        const double *nx = m->ox + (size_t)(j - 1) * (size_t)m->gx + (size_t)(ilo - 1);
        const double *ny = m->oy + (size_t)(j - 1) * (size_t)m->gx + (size_t)(ilo - 1);
        size_t g = (size_t)m->gx;
        for (c = 0; c < nc; c++) {
            double sx = 0, sy = 0;
            for (b = 0; b < 4; b++) {
                sx += wy[b] * nx[b * g + c];
                sy += wy[b] * ny[b * g + c];
            }
            colx[c] = sx, coly[c] = sy;
        }
    }
    /* ...then each point needs only a 1-D cubic along x, whose
     * coefficients change only from one node interval to the next: the
     * points go by runs of one interval, each run a loop that vectorises. */
    for (k = 0; k < n;) {
        double cxp[4], cyp[4], u = u0 + k * du, lim, g;
        int i = row_interval(u, m->gx), e = n, q;
        if (du > 0 && i < ihi) {
            /* the run ends at the first point with u >= i + 1: a guess
             * from the step, then corrected on the points themselves */
            lim = i + 1;
            g = (lim - u) / du;
            e = g < n - k ? k + 1 + (int)g : n;
            e = e > n ? n : e;
            while (e > k + 1 && u0 + (e - 1) * du >= lim)
                e--;
            while (e < n && u0 + e * du < lim)
                e++;
        } else if (du < 0 && i > ilo) {
            lim = i; /* decreasing: ends at the first u < i */
            g = (u - lim) / -du;
            e = g < n - k ? k + 1 + (int)g : n;
            e = e > n ? n : e;
            while (e > k + 1 && u0 + (e - 1) * du < lim)
                e--;
            while (e < n && u0 + e * du >= lim)
                e++;
        }
        cubic_coeffs(colx + i - ilo, cxp);
        cubic_coeffs(coly + i - ilo, cyp);
        for (q = k; q < e; q++) {
            double t = (u0 + q * du) - i;
            ox[q] = ((cxp[3] * t + cxp[2]) * t + cxp[1]) * t + cxp[0];
            oy[q] = ((cyp[3] * t + cyp[2]) * t + cyp[1]) * t + cyp[0];
        }
        k = e;
    }
cleanup:
    if (colx != cx)
        free(colx);
    if (coly != cy)
        free(coly);
}
