/* overlap.c - exact polygon/pixel-grid overlap by signed-area accumulation.
 *
 * The technique of exact-coverage font rasterisers: every edge deposits, in
 * each cell it crosses, the signed area between itself and the cell's right
 * side; a running sum along each row then gives, for every cell, the area
 * of the polygon inside it.  The cost grows with the number of cell
 * boundaries the edges cross, not with the number of cells, which makes it
 * several times cheaper than clipping the polygon against every cell.
 */
#include <math.h>
#include <string.h>

#include "overlap.h"

/* One piece of an edge inside cell column c of a row, x in [x0, x1]
 * (cell-local coordinates start at 0), signed height dy. */
static void deposit(double *acc, int c, double x0, double x1, double dy)
{
    double mid = 0.5 * (x0 + x1) - c; /* 0..1 across the cell */

    acc[c] += dy * (1.0 - mid);
    acc[c + 1] += dy * mid;
}

/* The part of one edge inside one row: from xa to xb, signed height dy. */
static void row_segment(double *acc, double xa, double xb, double dy)
{
    double x0 = xa < xb ? xa : xb, x1 = xa < xb ? xb : xa;
    int c0 = (int)floor(x0), c1 = (int)floor(x1), c;

    if (c1 > c0 && x1 == (double)c1) /* ends exactly on a boundary */
        c1--;
    if (c0 == c1) {
        deposit(acc, c0, x0, x1, dy);
        return;
    }
    /* Split at the vertical cell boundaries, shares of dy by x extent. */
    for (c = c0; c <= c1; c++) {
        double p0 = c == c0 ? x0 : (double)c;
        double p1 = c == c1 ? x1 : (double)(c + 1);
        deposit(acc, c, p0, p1, dy * (p1 - p0) / (x1 - x0));
    }
}

static void edge(double *acc, int stride, double X0, double Y0, double X1,
                 double Y1)
{
    double sign = 1, dxdy;
    int r, r0, r1;

    if (Y0 == Y1)
        return;
    if (Y0 > Y1) { /* walk upwards; the direction is kept in sign */
        double t = X0;
        X0 = X1, X1 = t;
        t = Y0, Y0 = Y1, Y1 = t;
        sign = -1;
    }
    dxdy = (X1 - X0) / (Y1 - Y0);
    r0 = (int)floor(Y0);
    r1 = (int)ceil(Y1) - 1;
    for (r = r0; r <= r1; r++) {
        double ya = Y0 > r ? Y0 : r, yb = Y1 < r + 1 ? Y1 : r + 1;
        double xa = X0 + (ya - Y0) * dxdy, xb = X0 + (yb - Y0) * dxdy;
        if (yb > ya)
            row_segment(acc + (size_t)r * stride, xa, xb, sign * (yb - ya));
    }
}

double rapid_overlap_cells(const double *x, const double *y, int n, int *i0,
                           int *j0, int *w, int *h, float *area)
{
    double acc[RAPID_OVERLAP_MAXCELLS + 16]; /* (W+1)*H <= 64 + 16 */
    double xmin = x[0], xmax = x[0], ymin = y[0], ymax = y[0], total = 0;
    int k, r, c, W, H, stride;

    for (k = 1; k < n; k++) {
        xmin = fmin(xmin, x[k]), xmax = fmax(xmax, x[k]);
        ymin = fmin(ymin, y[k]), ymax = fmax(ymax, y[k]);
    }
    if (!isfinite(xmin + xmax + ymin + ymax))
        return -1;
    *i0 = (int)floor(xmin + 0.5);
    *j0 = (int)floor(ymin + 0.5);
    W = (int)floor(xmax + 0.5) - *i0 + 1;
    H = (int)floor(ymax + 0.5) - *j0 + 1;
    if (W * H > RAPID_OVERLAP_MAXCELLS || W > 16 || H > 16)
        return -1;
    stride = W + 1; /* one spill column: what crosses the right edge */
    memset(acc, 0, sizeof(double) * (size_t)(stride * H));
    for (k = 0; k < n; k++) {
        int m = k + 1 == n ? 0 : k + 1;
        edge(acc, stride, x[k] + 0.5 - *i0, y[k] + 0.5 - *j0,
             x[m] + 0.5 - *i0, y[m] + 0.5 - *j0);
    }
    for (r = 0; r < H; r++) {
        double run = 0;
        for (c = 0; c < W; c++) {
            run += acc[r * stride + c];
            area[r * W + c] = (float)run;
            total += run;
        }
    }
    /* Counter-clockwise and clockwise polygons give opposite signs. */
    if (total < 0) {
        for (k = 0; k < W * H; k++)
            area[k] = -area[k];
        total = -total;
    }
    for (k = 0; k < W * H; k++) /* rounding can leave -1e-8 in empty cells */
        if (area[k] < 0)
            area[k] = 0;
    *w = W;
    *h = H;
    return total;
}
