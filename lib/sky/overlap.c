/* overlap.c - exact polygon/pixel-grid overlap by signed-area accumulation.
 *
 * The technique of exact-coverage font rasterisers: every edge deposits, in
 * each cell it crosses, the signed area between itself and the cell's right
 * side; a running sum along each row then gives, for every cell, the area
 * of the polygon inside it.  The cost grows with the number of cell
 * boundaries the edges cross, not with the number of cells, which makes it
 * several times cheaper than clipping the polygon against every cell.
 *
 * This is the inner loop of resampling (one call per input pixel), so it
 * avoids libm's floor (coordinates are made non-negative first and
 * truncated) and divisions in the per-cell work.
 */
#include <math.h>
#include <string.h>

#include "overlap.h"

/* floor() for |x| < 2^20 without a library call. */
static inline int ifloor(double x)
{
    return (int)(x + 1048576.0) - 1048576;
}

/* One piece of an edge inside cell column c of a row, x in [x0, x1]
 * (cell-local coordinates start at 0), signed height dy. */
static inline void deposit(double *acc, int c, double x0, double x1, double dy)
{
    double mid = 0.5 * (x0 + x1) - c; /* 0..1 across the cell */

    acc[c] += dy - dy * mid;
    acc[c + 1] += dy * mid;
}

/* The part of one edge inside one row: from xa to xb (>= 0), signed height
 * dy. */
static inline void row_segment(double *acc, double xa, double xb, double dy)
{
    double x0 = xa < xb ? xa : xb, x1 = xa < xb ? xb : xa, per;
    int c0 = (int)x0, c1 = (int)x1, c;

    if (c1 > c0 && x1 == (double)c1) /* ends exactly on a boundary */
        c1--;
    if (c0 == c1) {
        deposit(acc, c0, x0, x1, dy);
        return;
    }
    /* Split at the vertical cell boundaries, shares of dy by x extent. */
    per = dy / (x1 - x0);
    deposit(acc, c0, x0, c0 + 1, per * (c0 + 1 - x0));
    for (c = c0 + 1; c < c1; c++)
        deposit(acc, c, c, c + 1, per);
    deposit(acc, c1, c1, x1, per * (x1 - c1));
}

static inline void edge(double *acc, int stride, double X0, double Y0,
                        double X1, double Y1)
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
    r0 = (int)Y0;
    r1 = (int)Y1;
    if ((double)r1 == Y1)
        r1--;
    if (r0 == r1) { /* the common case: inside one row */
        row_segment(acc + (size_t)r0 * stride, X0, X1, sign * (Y1 - Y0));
        return;
    }
    dxdy = (X1 - X0) / (Y1 - Y0);
    for (r = r0; r <= r1; r++) {
        double ya = Y0 > r ? Y0 : r, yb = Y1 < r + 1 ? Y1 : r + 1;
        double xa = X0 + (ya - Y0) * dxdy, xb = X0 + (yb - Y0) * dxdy;
        if (yb > ya)
            row_segment(acc + (size_t)r * stride, xa, xb, sign * (yb - ya));
    }
}

int rapid_overlap_cells(const double *x, const double *y, int n, int *i0,
                        int *j0, int *w, int *h, float *area, double *total)
{
    double acc[RAPID_OVERLAP_MAXCELLS + 16]; /* (W+1)*H <= 64 + 16 */
    double xmin = x[0], xmax = x[0], ymin = y[0], ymax = y[0], twice = 0;
    double ox, oy, sign, sum = 0;
    int k, r, c, W, H, stride;

    for (k = 1; k < n; k++) {
        xmin = x[k] < xmin ? x[k] : xmin, xmax = x[k] > xmax ? x[k] : xmax;
        ymin = y[k] < ymin ? y[k] : ymin, ymax = y[k] > ymax ? y[k] : ymax;
    }
    if (!isfinite(xmin + xmax + ymin + ymax) || fabs(xmin) > 1e6 ||
        fabs(xmax) > 1e6 || fabs(ymin) > 1e6 || fabs(ymax) > 1e6)
        return RAPID_E_RANGE;
    *i0 = ifloor(xmin + 0.5);
    *j0 = ifloor(ymin + 0.5);
    W = ifloor(xmax + 0.5) - *i0 + 1;
    H = ifloor(ymax + 0.5) - *j0 + 1;
    if (W * H > RAPID_OVERLAP_MAXCELLS || W > 16 || H > 16)
        return RAPID_E_RANGE;
    for (k = 0; k < n; k++) { /* orientation, from the shoelace */
        int m = k + 1 == n ? 0 : k + 1;
        twice += x[k] * y[m] - x[m] * y[k];
    }
    /* edges deposit the area to their right: counter-clockwise polygons
     * (positive shoelace) accumulate negative coverage */
    sign = twice > 0 ? -1.0 : 1.0;
    stride = W + 1; /* one spill column: what crosses the right edge */
    memset(acc, 0, sizeof(double) * (size_t)(stride * H));
    ox = 0.5 - *i0;
    oy = 0.5 - *j0;
    for (k = 0; k < n; k++) {
        int m = k + 1 == n ? 0 : k + 1;
        edge(acc, stride, x[k] + ox, y[k] + oy, x[m] + ox, y[m] + oy);
    }
    for (r = 0; r < H; r++) {
        double run = 0;
        for (c = 0; c < W; c++) {
            double a;
            run += acc[r * stride + c];
            a = sign * run;
            a = a > 0 ? a : 0; /* rounding can leave -1e-17 in empty cells */
            area[r * W + c] = (float)a;
            sum += a;
        }
    }
    *w = W;
    *h = H;
    *total = sum;
    return 0;
}
