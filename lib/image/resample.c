/* resample.c - exact-overlap resampling through the mesh of pixel edges.
 *
 * Conventions.  Output pixel (I, J) spans [I-1/2, I+1/2) x [J-1/2, J+1/2).
 * Inside the accumulators coordinates are local and shifted so that cell c
 * of row r spans [c, c+1) x [r, r+1) and every coordinate is positive:
 * X = x + 1/2 - xb, Y = y + 1/2 - y0.
 *
 * An edge piece inside row r running from x_a to x_b with height dy gives
 * cell c the area between itself and the cell's right side,
 *   cover(c) = integral clamp(c + 1 - x(y), 0, 1) dy,
 * positive for an upward edge; summed over a closed polygon this is minus
 * (counter-clockwise) or plus (clockwise) the polygon's area in the cell.
 * With x linear in y (dy = K dx) it is K [Q(c+1-x_a) - Q(c+1-x_b)], Q the
 * integral of clamp(t, 0, 1): the second difference of cover along the row
 * is +K B(x_a) - K B(x_b), B the quadratic B-spline on the three cells from
 * floor(x).  So each end of each piece costs three additions, however many
 * columns the piece crosses, and two running sums recover the areas.  A
 * nearly vertical piece (K huge) goes instead as a vertical step inside one
 * column, split at a column boundary if it crosses one.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/clones.h"
#include "sky/overlap.h"
#include "rapid/error.h"
#include "resample.h"

void rapid_mesh_release(rapid_mesh *p)
{
    if (!p)
        return;
    free(p->c0);
    free(p->c1);
    free(p->at);
    free(p->tile);
    rapid_big_free(p->v);
    rapid_big_free(p->a);
    memset(p, 0, sizeof *p);
}

static int grow_rows(rapid_mesh *p, int rows)
{
    int *c0, *c1;
    ptrdiff_t *at;

    if (rows <= p->rcap)
        return 0;
    if ((c0 = realloc(p->c0, (size_t)rows * sizeof *c0)) != NULL)
        p->c0 = c0;
    if ((c1 = realloc(p->c1, (size_t)rows * sizeof *c1)) != NULL)
        p->c1 = c1;
    if ((at = realloc(p->at, (size_t)rows * sizeof *at)) != NULL)
        p->at = at;
    if (!c0 || !c1 || !at)
        return RAPID_E_NOMEM;
    p->rcap = rows;
    return 0;
}

/* ring: the accumulators are a ring of rows that every input goes round
 * (the coadd's), else they hold the whole footprint once (regrid's). */
static int grow_cells(rapid_mesh *p, size_t n, int ring)
{
    double *v, *a;

    if (n <= p->cap)
        return 0;
    /* calloc, not realloc: the accumulators must start at zero, and every
     * use leaves them zero again (rapid_mesh_row clears what it reads);
     * the old ones first, so that the new ones can reuse their memory,
     * and an eighth more than asked, so that the next footprint, a little
     * larger, still fits */
    rapid_big_free(p->v);
    rapid_big_free(p->a);
    p->v = p->a = NULL, p->cap = 0;
    n += n / 8;
    v = rapid_big_calloc(n, sizeof *v);
    /* the area's only at the outline of the valid pixels: sparse, when
     * the footprint is held whole; a ring's rows, each read (and cleared)
     * once done, are all visited again and again, so in small pages they
     * cost two faults each on the first round and a TLB miss at every
     * hole's edge after (the holes of masked pixels are everywhere) */
    a = ring ? rapid_big_calloc(n, sizeof *a) : rapid_big_calloc_sparse(n, sizeof *a);
    if (!v || !a) {
        rapid_big_free(v);
        rapid_big_free(a);
        return RAPID_E_NOMEM;
    }
    p->v = v, p->a = a;
    p->cap = n;
    return 0;
}

/* Tiles of the edge pass, input pixels; GS divides both. */
#define TILE_W 256
#define TILE_H 64
#define GS 8
#define TILE_INTS 6 /* per tile in p->tile (resample.h) */

static int cmp_tile(const void *a, const void *b)
{
    const int *x = a, *y = b;

    if (x[2] != y[2])
        return x[2] < y[2] ? -1 : 1;
    if (x[1] != y[1])
        return x[1] < y[1] ? -1 : 1;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* The tiles, each with the rows its corners fall in, from the corners
 * every GS pixels (one row more each side: the map is smooth, so what
 * lies between strays a tiny fraction of a pixel from the straight line),
 * in the order of their first row; the most rows a tile spans into *span.
 * A map that bends within a few pixels (second differences of the rows
 * over GS pixels above 1/4) could stray more: *span is then the whole
 * footprint, so that every row stays in hand. */
static int place_tiles(rapid_mesh *p, const rapid_pixmap *m, int nx, int ny,
                       int *span)
{
    int gx = (nx + GS - 1) / GS + 1, gy = (ny + GS - 1) / GS + 1;
    int tw = (nx + TILE_W - 1) / TILE_W, th = (ny + TILE_H - 1) / TILE_H;
    int n = tw * th, i, j, k, smooth = 1;
    double *gxv = malloc((size_t)gx * gy * sizeof *gxv), *g;
    double *gyv = malloc((size_t)gx * gy * sizeof *gyv);

    if (gxv && gyv && n > p->tcap) {
        int *t = realloc(p->tile, (size_t)n * TILE_INTS * sizeof *t);
        if (t)
            p->tile = t, p->tcap = n;
    }
    if (!gxv || !gyv || n > p->tcap) {
        free(gxv);
        free(gyv);
        return RAPID_E_NOMEM;
    }
    g = gyv;
    for (j = 0; j < gy; j++)
        rapid_pixmap_row(m, j * GS - 0.5, -0.5, GS, gx, gxv + (size_t)j * gx,
                         g + (size_t)j * gx);
    for (k = 0; k < gx * gy; k++) {
        g[k] += 0.5 - p->y0;
        gxv[k] += 0.5 - p->xb;
    }
    for (j = 0; j < gy && smooth; j++)
        for (i = 0; i < gx && smooth; i++) {
            const double *c = g + (size_t)j * gx + i;
            if ((i > 0 && i < gx - 1 && fabs(c[-1] - 2 * c[0] + c[1]) > 0.25) ||
                (j > 0 && j < gy - 1 && fabs(c[-gx] - 2 * c[0] + c[gx]) > 0.25))
                smooth = 0;
        }
    *span = 0;
    for (k = 0; k < n; k++) {
        int *t = p->tile + TILE_INTS * k, ti = k % tw, tj = k / tw;
        int ga = ti * TILE_W / GS, gb = ((ti + 1) * TILE_W + GS - 1) / GS;
        int ha = tj * TILE_H / GS, hb = ((tj + 1) * TILE_H + GS - 1) / GS;
        double lo = 1e300, hi = -1e300, xlo = 1e300, xhi = -1e300;
        gb = gb < gx - 1 ? gb : gx - 1, hb = hb < gy - 1 ? hb : gy - 1;
        for (j = ha; j <= hb; j++)
            for (i = ga; i <= gb; i++) {
                double y = g[(size_t)j * gx + i], x = gxv[(size_t)j * gx + i];
                lo = y < lo ? y : lo, hi = y > hi ? y : hi;
                xlo = x < xlo ? x : xlo, xhi = x > xhi ? x : xhi;
            }
        t[0] = ti * TILE_W, t[1] = tj * TILE_H;
        t[2] = (int)lo - 1, t[3] = (int)hi + 1;
        t[2] = t[2] < 0 ? 0 : t[2], t[3] = t[3] > p->h - 1 ? p->h - 1 : t[3];
        /* a deposit at x reaches cells floor(x) on (three for a tap) */
        t[4] = (int)xlo - 1, t[5] = (int)xhi + 3;
        if (!smooth) /* (as for the rows) */
            t[4] = INT_MIN / 2, t[5] = INT_MAX / 2;
        if (t[3] - t[2] + 1 > *span)
            *span = t[3] - t[2] + 1;
    }
    if (!smooth)
        *span = p->h;
    qsort(p->tile, (size_t)n, TILE_INTS * sizeof *p->tile, cmp_tile);
    p->ntile = n;
    free(gxv);
    free(gyv);
    return 0;
}

/* The footprint's outline (every 8 input pixels) bounds each row's span;
 * the footprint of a detector is convex, so the span between the outline's
 * crossings holds every edge of the mesh in that row. */
int rapid_mesh_place(rapid_mesh *p, const rapid_pixmap *m, int nx, int ny,
                     size_t maxcells, int batch)
{
    const double margin = 2.5;
    double xmin = 1e300, ymin = 1e300, xmax = -1e300, ymax = -1e300;
    double *bx, *by, jx[2], jy[2];
    int e, k, nb = 0, r, cap = 2 * (nx + ny) / 8 + 8, h, rc = 0, span, wmax = 0;
    size_t n = 0;

    bx = malloc((size_t)cap * sizeof *bx);
    by = malloc((size_t)cap * sizeof *by);
    if (!bx || !by) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    for (e = 0; e < 4; e++) {
        int steps = (e % 2 ? ny : nx) / 8 + 1;
        for (k = 0; k < steps && nb < cap; k++, nb++) {
            double t = (double)k / steps, x, y;
            x = e == 0 ? -0.5 + t * nx : e == 1 ? nx - 0.5 : e == 2 ? nx - 0.5 - t * nx : -0.5;
            y = e == 0 ? -0.5 : e == 1 ? -0.5 + t * ny : e == 2 ? ny - 0.5 : ny - 0.5 - t * ny;
            rapid_pixmap_eval(m, x, y, &bx[nb], &by[nb]);
            if (!isfinite(bx[nb]) || !isfinite(by[nb]) || fabs(bx[nb]) > 1e8 ||
                fabs(by[nb]) > 1e8) {
                rc = RAPID_E_ARG;
                goto cleanup;
            }
            xmin = fmin(xmin, bx[nb]), xmax = fmax(xmax, bx[nb]);
            ymin = fmin(ymin, by[nb]), ymax = fmax(ymax, by[nb]);
        }
    }
    if ((xmax - xmin + 8) * (ymax - ymin + 8) > 4.0 * (double)maxcells) {
        rc = RAPID_E_ARG;
        goto cleanup;
    }
    /* orientation of the mapped pixels: the Jacobian's sign at the centre */
    rapid_pixmap_eval(m, nx / 2.0 + 0.5, ny / 2.0, &jx[0], &jy[0]);
    rapid_pixmap_eval(m, nx / 2.0, ny / 2.0 + 0.5, &jx[1], &jy[1]);
    {
        double cx, cy;
        rapid_pixmap_eval(m, nx / 2.0, ny / 2.0, &cx, &cy);
        /* counter-clockwise pixels (det > 0) accumulate minus their area */
        p->sign = (jx[0] - cx) * (jy[1] - cy) - (jy[0] - cy) * (jx[1] - cx) > 0 ? -1 : 1;
    }
    p->y0 = (int)floor(ymin + 0.5 - margin) - 1;
    p->xb = (int)floor(xmin + 0.5 - margin) - 1;
    h = (int)floor(ymax + 0.5 + margin) + 2 - p->y0;
    if ((rc = grow_rows(p, h)) != 0)
        goto cleanup;
    p->h = h;
    for (r = 0; r < h; r++)
        p->c0[r] = 1 << 30, p->c1[r] = -1;
    for (k = 0; k < nb; k++) {
        int j = (k + 1) % nb;
        double X0 = bx[k] + 0.5 - p->xb, X1 = bx[j] + 0.5 - p->xb;
        double Y0 = by[k] + 0.5 - p->y0, Y1 = by[j] + 0.5 - p->y0;
        int rlo = (int)(fmin(Y0, Y1) - margin), rhi = (int)(fmax(Y0, Y1) + margin);
        int clo = (int)(fmin(X0, X1) - margin), chi = (int)(fmax(X0, X1) + margin) + 2;
        for (r = rlo; r <= rhi; r++) {
            if (clo < p->c0[r])
                p->c0[r] = clo;
            if (chi > p->c1[r])
                p->c1[r] = chi;
        }
    }
    for (r = 0; r < h; r++) {
        if (p->c1[r] < p->c0[r]) /* cannot happen for a closed outline */
            p->c0[r] = 0, p->c1[r] = -1;
        p->at[r] = (ptrdiff_t)n - p->c0[r];
        n += (size_t)(p->c1[r] - p->c0[r] + 1);
        wmax = p->c1[r] - p->c0[r] + 1 > wmax ? p->c1[r] - p->c0[r] + 1 : wmax;
    }
    if (n > maxcells) {
        rc = RAPID_E_ARG;
        goto cleanup;
    }
    if ((rc = place_tiles(p, m, nx, ny, &span)) != 0)
        goto cleanup;
    p->win = h;
    p->batch = batch > 0 ? batch : 0;
    span += p->batch; /* and the rows done but not yet taken */
    if (batch >= 0 && span < h) { /* row r in slot r % win, each wmax wide */
        p->win = span;
        for (r = 0; r < h; r++)
            p->at[r] = (ptrdiff_t)(r % span) * wmax - p->c0[r];
        n = (size_t)span * (size_t)wmax;
    }
    rc = grow_cells(p, n ? n : 1, p->win < p->h);
    p->n = n;
    p->clip_r0 = INT_MIN / 2, p->clip_r1 = INT_MAX / 2, p->clip_c1 = INT_MAX / 2;
cleanup:
    if (rc)
        p->h = 0, p->n = 0;
    free(bx);
    free(by);
    return rc;
}

/* +k times the quadratic B-spline of x: three cells from floor(x). */
static inline void tap(double *d, double x, double k)
{
    int n = (int)x;
    double f = x - n, h = 0.5 * k, e0 = h * (1 - f) * (1 - f), e2 = h * f * f;

    d[n] += e0;
    d[n + 1] += k - e0 - e2;
    d[n + 2] += e2;
}

/* A vertical step of height dy at x: area dy (1 - frac x) in its cell and
 * dy in every cell to the right. */
static inline void vstep(double *d, double x, double dy)
{
    int n = (int)x;
    double f = x - n;

    d[n] += dy - dy * f;
    d[n + 1] += dy * (2 * f - 1);
    d[n + 2] -= dy * f;
}

/* A nearly vertical piece from (xa, ya) to (xb, yb) inside one row. */
static void steep_piece(double *d, double xa, double ya, double xb, double yb)
{
    int na = (int)xa, nb = (int)xb;

    if (na == nb) {
        vstep(d, 0.5 * (xa + xb), yb - ya);
    } else { /* crosses the boundary at the larger floor */
        double xs = na > nb ? na : nb;
        double ys = ya + (xs - xa) / (xb - xa) * (yb - ya);
        vstep(d, 0.5 * (xa + xs), ys - ya);
        vstep(d, 0.5 * (xs + xb), yb - ys);
    }
}

/* One directed mesh edge, weight w, into accumulator D (rows at[]). */
static inline void edge(double *D, const ptrdiff_t *at, double X0, double Y0,
                        double X1, double Y1, double w)
{
    double dx = X1 - X0, dy = Y1 - Y0;
    int r0 = (int)Y0, r1 = (int)Y1, r, step;

    if (dy == 0)
        return;
    step = r1 > r0 ? 1 : -1;
    if (fabs(dx) > 1e-4) {
        double k = w * dy / dx, dxdy;
        tap(D + at[r0], X0, k);
        if (r0 != r1) {
            dxdy = dx / dy;
            for (r = r0; r != r1; r += step) {
                double xm = X0 + ((step > 0 ? r + 1 : r) - Y0) * dxdy;
                tap(D + at[r], xm, -k);
                tap(D + at[r + step], xm, k);
            }
        }
        tap(D + at[r1], X1, -k);
        return;
    }
    /* nearly vertical: row by row */
    {
        double xa = X0, ya = Y0, dxdy = dx / dy;
        for (r = r0;; r += step) {
            double yb = r == r1 ? Y1 : (step > 0 ? r + 1 : r);
            double xb = r == r1 ? X1 : X0 + (yb - Y0) * dxdy;
            steep_piece(D + at[r], xa, w * ya, xb, w * yb);
            if (r == r1)
                break;
            xa = xb, ya = yb;
        }
    }
}

/* +k B(x) in row r and -k B(x) in row r2: an edge crossing between them. */
static inline void cross_tap(double *D, ptrdiff_t ar, ptrdiff_t ar2, double x,
                             double k)
{
    int n = (int)x;
    double f = x - n, h = 0.5 * k, e0 = h * (1 - f) * (1 - f), e2 = h * f * f;
    double e1 = k - e0 - e2, *d = D + ar + n, *d2 = D + ar2 + n;

    /* one cell at a time in both rows: the next crossing often hits some
     * of the same cells, and a vector load of two cells that were stored
     * one by one (or at another offset) waits for the stores to retire;
     * interleaved with the other row (which may alias), they stay scalar */
    d[0] += e0, d2[0] -= e0;
    d[1] += e1, d2[1] -= e1;
    d[2] += e2, d2[2] -= e2;
}

/* The coefficients of a row of edges from (x0[i], y0[i]) to (x1[i], y1[i])
 * with weights w[i], i < n, in one pass the compiler can vectorise: k (the
 * ends' tap, w dy / dx; 0 for the slow path, which taps the ends itself),
 * the x where the edge crosses a row boundary (if it crosses exactly one)
 * and what it needs besides: cross[i] = 1 for that crossing, slow[i] = 1
 * for the slow path (steep, or two boundaries); neither for w = 0. */
RAPID_INLINE void edge_coeffs(const double *restrict x0,
                              const double *restrict y0,
                              const double *restrict x1,
                              const double *restrict y1,
                              const double *restrict r0,
                              const double *restrict r1,
                              const double *restrict w, int n,
                              double *restrict k, double *restrict xm,
                              double *restrict cross, double *restrict slow)
{
    int i;

    /* all in doubles, selects instead of branches: it vectorises */
    for (i = 0; i < n; i++) {
        double dx = x1[i] - x0[i], dy = y1[i] - y0[i], den = dx * dy, inv;
        double adr = fabs(r1[i] - r0[i]);
        double nz = w[i] != 0 ? 1.0 : 0.0, one = adr == 1.0 ? 1.0 : 0.0;
        double sl = fabs(dx) > 1e-4 ? (adr > 1.0 ? 1.0 : 0.0) : 1.0;
        inv = 1.0 / (den != 0 ? den : 1.0);
        k[i] = (1.0 - sl) * w[i] * dy * dy * inv;
        xm[i] = x0[i] + ((r1[i] > r0[i] ? r1[i] : r0[i]) - y0[i]) * dx * dx * inv;
        cross[i] = nz * (1.0 - sl) * one;
        slow[i] = nz * sl;
    }
}

/* image rows read ahead of the edge pass (see pixels_in) */
#define PREFETCH_ROWS 4

/* The columns of a tile's rows: corners i0 - 1 .. i1 (at index 0 .. nc - 1,
 * nc <= TILE_COLS); pixel i (i0 - 1 .. i1 - 1, the one left of corner
 * i + 1) at index i - i0 + 1; edge i along a corner row from corner i to
 * i + 1, edge i across a pixel row from corner i up. */
#define TILE_COLS (TILE_W + 2)

/* A row of corners, in the accumulators' local coordinates. */
typedef struct corner_row {
    double x[TILE_COLS], y[TILE_COLS];
    int r[TILE_COLS];        /* the accumulator row each lies in */
    double fr[TILE_COLS];    /* the same, as a double for edge_coeffs */
} corner_row;

/* A row of pixels; the pixel left of the image is a hole. */
typedef struct pixel_row {
    double s[TILE_COLS];     /* surface brightness (x scale); 0 in a hole */
    double ok[TILE_COLS];    /* 1 valid, 0 a hole */
} pixel_row;

/* A row of edges: along a corner row, or across a pixel row.  w, k, xm,
 * cross, slow as edge_coeffs makes them; list: those that cross. */
typedef struct edge_row {
    double w[TILE_COLS], k[TILE_COLS], xm[TILE_COLS];
    double cross[TILE_COLS], slow[TILE_COLS];
    int list[TILE_COLS];
} edge_row;

/* Everything the edge pass keeps of a tile, sized in one place: the corner
 * row below the current pixel row and the one above it, the pixel row
 * below and the current one (each pair swapped as the pass moves up), the
 * edges of the current rows, and per corner the sum of the taps of the
 * edge ends there (coef) and of those still to come from the edges going
 * up to it (pend). */
typedef struct tile_rows {
    corner_row corner[2];
    pixel_row pixel[2];
    edge_row along, across;
    double coef[TILE_COLS], pend[TILE_COLS];
    int hole_h[TILE_COLS], hole_v[TILE_COLS]; /* the area's edges (list_areas) */
    int nhole_h, nhole_v;
} tile_rows;

/* Where nc corners of a row at image y (corner row j at y = j - 1/2),
 * from corner i0 - 1 on, fall in the accumulators. */
RAPID_INLINE void corners_in(const rapid_mesh *p, const rapid_pixmap *m,
                             double y, int i0, int nc, corner_row *c)
{
    double ox = 0.5 - p->xb, oy = 0.5 - p->y0;
    int i;

    rapid_pixmap_row(m, y, i0 - 1.5, 1.0, nc, c->x, c->y);
    for (i = 0; i < nc; i++) {
        c->x[i] += ox, c->y[i] += oy;
        c->r[i] = (int)c->y[i];
        c->fr[i] = c->r[i];
    }
}

/* Pixel row j of the image under the tile's columns, between corner rows
 * b (below) and t (above): each pixel's surface brightness and whether it
 * is valid, from its quadrilateral's area (by the diagonals).  Returns
 * how many of the tile's own pixels are saturated. */
RAPID_INLINE int pixels_in(const float *data, size_t stride, int ny, int i0,
                           int nc, int j, double scale, double sat, float fsat,
                           const corner_row *b, const corner_row *t,
                           pixel_row *pc)
{
    const float *row = data + (size_t)j * stride + i0 - 1;
    const double *bx = b->x, *by = b->y, *tx = t->x, *ty = t->y;
    int i, ns = 0;

    /* the tile's part of a row a few rows on: rows are stride floats apart,
     * too far for the hardware to see the pattern */
    if (j + PREFETCH_ROWS < ny) {
        const char *pf = (const char *)(row + (size_t)PREFETCH_ROWS * stride);
        int k, nb = (int)((size_t)(nc - 1) * sizeof *row);
        for (k = 0; k < nb + 64; k += 64)
            RAPID_PREFETCH(pf + k);
    }
    /* in selects and doubles only, so that it vectorises */
    for (i = i0 == 0; i < nc - 1; i++) { /* pixel i0 - 1 + i */
        double d = row[i], inv;
        double a = 0.5 * fabs((tx[i + 1] - bx[i]) * (ty[i] - by[i + 1]) -
                              (ty[i + 1] - by[i]) * (tx[i] - bx[i + 1]));
        double ok = fabs(d) <= 1e300 ? (d < sat ? (a > 0 ? 1.0 : 0.0) : 0.0) : 0.0;
        inv = scale / (a > 0 ? a : 1.0);
        pc->s[i] = ok != 0 ? d * inv : 0.0;
        pc->ok[i] = ok;
    }
    /* the saturated ones, in floats: fsat is sat's equivalent */
    for (i = 1; i < nc - 1; i++)
        ns += (fabsf(row[i]) <= FLT_MAX) & (row[i] >= fsat);
    if (i0 == 0)
        pc->s[0] = 0, pc->ok[0] = 0;
    pc->s[nc - 1] = 0, pc->ok[nc - 1] = 0; /* right of the tile: unused */
    return ns;
}

/* The edges of the current rows and their coefficients: along corner row
 * b (nc - 2 edges, weighted by the pixel above minus the one below), and,
 * below the image's top (across), across the pixel row from b up to t (nv
 * edges, the left pixel minus the right one). */
RAPID_INLINE void edges_of(tile_rows *R, const corner_row *b,
                           const corner_row *t, const pixel_row *pp,
                           const pixel_row *pc, int nc, int nv, int across,
                           double sg)
{
    edge_row *h = &R->along, *v = &R->across;
    int i;

    for (i = 1; i < nc - 1; i++)
        h->w[i] = sg * (pc->s[i] - pp->s[i]);
    edge_coeffs(b->x + 1, b->y + 1, b->x + 2, b->y + 2, b->fr + 1, b->fr + 2,
                h->w + 1, nc - 2, h->k + 1, h->xm + 1, h->cross + 1, h->slow + 1);
    if (across) {
        for (i = 1; i < nc; i++)
            v->w[i] = sg * (pc->s[i - 1] - pc->s[i]);
        edge_coeffs(b->x + 1, b->y + 1, t->x + 1, t->y + 1, b->fr + 1, t->fr + 1,
                    v->w + 1, nv - 1, v->k + 1, v->xm + 1, v->cross + 1,
                    v->slow + 1);
    } else {
        memset(v->k, 0, (size_t)nc * sizeof *v->k);
        memset(v->cross, 0, (size_t)nc * sizeof *v->cross);
        memset(v->slow, 0, (size_t)nc * sizeof *v->slow);
    }
}

/* The edges' values into the accumulator V: the merged ends, one tap per
 * corner; the crossings of one row boundary; the slow edges (rare). */
RAPID_INLINE void deposit_values(double *V, const ptrdiff_t *at, tile_rows *R,
                                 const corner_row *b, const corner_row *t,
                                 int nc)
{
    edge_row *h = &R->along, *v = &R->across;
    int i, q, mh = 0, mv = 0;
    double nslow = 0;

    for (i = 1; i < nc; i++) {
        R->coef[i] = R->pend[i] + h->k[i] - h->k[i - 1] + v->k[i];
        R->pend[i] = -v->k[i];
    }
    for (i = 1; i < nc; i++)
        tap(V + at[b->r[i]], b->x[i], R->coef[i]);
    /* whether an edge crosses a row boundary is hard to predict, so the
     * crossing edges are listed without branches */
    for (i = 1; i < nc; i++) {
        h->list[mh] = i, mh += h->cross[i] != 0;
        v->list[mv] = i, mv += v->cross[i] != 0;
        nslow += h->slow[i] + v->slow[i];
    }
    for (q = 0; q < mh; q++) {
        i = h->list[q];
        cross_tap(V, at[b->r[i + 1]], at[b->r[i]], h->xm[i], h->k[i]);
    }
    for (q = 0; q < mv; q++) {
        i = v->list[q];
        cross_tap(V, at[t->r[i]], at[b->r[i]], v->xm[i], v->k[i]);
    }
    if (nslow)
        for (i = 1; i < nc; i++) {
            if (h->slow[i])
                edge(V, at, b->x[i], b->y[i], b->x[i + 1], b->y[i + 1], h->w[i]);
            if (v->slow[i])
                edge(V, at, b->x[i], b->y[i], t->x[i], t->y[i], v->w[i]);
        }
}

/* The edges of the area sums: only where valid meets a hole.  They are
 * listed (without branches: where the holes are cannot be predicted) and
 * their cells fetched before the values are deposited, and deposited
 * after (deposit_areas): the area's cells are touched nowhere else, so
 * they are never in the cache when a hole comes.  The image's sides
 * always border a hole. */
RAPID_INLINE void list_areas(const double *A, const ptrdiff_t *at,
                             tile_rows *R, const corner_row *b,
                             const corner_row *t, const pixel_row *pp,
                             const pixel_row *pc, int nc, int nv, int across)
{
    const double *op = pp->ok, *oc = pc->ok;
    int i, q, mh = 0, mv = 0;

    for (i = 1; i < nc - 1; i++) {
        R->hole_h[mh] = i;
        mh += oc[i] != op[i];
    }
    if (across)
        for (i = 1; i < nv; i++) {
            R->hole_v[mv] = i;
            mv += oc[i - 1] != oc[i];
        }
    R->nhole_h = mh, R->nhole_v = mv;
    for (q = 0; q < mh; q++) {
        i = R->hole_h[q];
        RAPID_PREFETCH(A + at[b->r[i]] + (int)b->x[i]);
        RAPID_PREFETCH(A + at[b->r[i + 1]] + (int)b->x[i + 1] + 2);
    }
    for (q = 0; q < mv; q++) {
        i = R->hole_v[q];
        RAPID_PREFETCH(A + at[t->r[i]] + (int)t->x[i]);
        RAPID_PREFETCH(A + at[t->r[i]] + (int)t->x[i] + 2);
    }
}

RAPID_INLINE void deposit_areas(double *A, const ptrdiff_t *at,
                                const tile_rows *R, const corner_row *b,
                                const corner_row *t, const pixel_row *pp,
                                const pixel_row *pc, double sg)
{
    const double *op = pp->ok, *oc = pc->ok;
    int i, q;

    for (q = 0; q < R->nhole_h; q++) {
        i = R->hole_h[q];
        edge(A, at, b->x[i], b->y[i], b->x[i + 1], b->y[i + 1],
             sg * (oc[i] - op[i]));
    }
    for (q = 0; q < R->nhole_v; q++) {
        i = R->hole_v[q];
        edge(A, at, b->x[i], b->y[i], t->x[i], t->y[i], sg * (oc[i - 1] - oc[i]));
    }
}

/* Fetch the value cells of the corners of row t, where the next pass
 * deposits (its corner taps, and the crossings next to them), while this
 * one works: the cells a row of corners takes lie along a line across the
 * accumulator's rows, which the hardware does not foresee unless that line
 * runs along the rows (at a roll of 30-60 deg the edge pass took a third
 * more time without).  A hint only: the values are the same without it. */
RAPID_INLINE void prefetch_corners(const double *V, const ptrdiff_t *at,
                                   const corner_row *t, int nc)
{
    int i;

    for (i = 1; i < nc; i++)
        RAPID_PREFETCH(V + at[t->r[i]] + (int)t->x[i]);
}

/* The float f >= the result exactly when (double)f >= sat. */
static float sat_float(double sat)
{
    float f = (float)sat;

    return (double)f < sat ? nextafterf(f, INFINITY) : f;
}

/* One tile of the image, pixels i0 <= i < i1, j0 <= j < j1: the edges
 * along corner rows j0 .. j1 - 1 (and j1 = ny, the image's top, for the
 * top tiles) under each of its pixels, and the edges across each pixel row
 * at corners i0 .. i1 - 1 (and i1 = nx, the image's right side, for the
 * right tiles).  Each edge belongs to one tile and is weighted by the
 * pixels on both sides, in the tile or not: the first pixel row below the
 * tile and the pixel left of it are read for that.  A tile keeps the
 * accumulator cells a row of edges touches in the cache until the next
 * rows come back to them.
 *
 * Every corner of the mesh is the end of up to four edges, and each end of
 * an edge is a tap of +-k B(x) at that corner: they are summed per corner
 * (coef) and deposited once.  The edge going up from a corner ends at the
 * same corner of the next corner row (pend).  Steep edges and the rare ones
 * crossing two row boundaries go through edge() instead. */
RAPID_INLINE void mesh_tile(rapid_mesh *p, const rapid_pixmap *m,
                            const float *data, size_t stride, int nx, int ny,
                            int i0, int i1, int j0, int j1, double scale,
                            double satlevel, tile_rows *R, long *nsat)
{
    int nc = i1 - i0 + 2, i, j, nv = i1 == nx ? nc : nc - 1;
    int jp = j0 > 0 ? j0 - 1 : 0;
    corner_row *b = &R->corner[0], *t = &R->corner[1], *ct;
    pixel_row *pp = &R->pixel[0], *pc = &R->pixel[1], *pt;
    double sg = p->sign;
    float fsat = sat_float(satlevel);

    memset(pp->s, 0, (size_t)nc * sizeof *pp->s);
    memset(pp->ok, 0, (size_t)nc * sizeof *pp->ok);
    memset(R->pend, 0, (size_t)nc * sizeof *R->pend);
    memset(R->along.k, 0, (size_t)nc * sizeof *R->along.k);
    memset(R->across.k, 0, (size_t)nc * sizeof *R->across.k);
    memset(R->along.cross, 0, (size_t)nc * sizeof *R->along.cross);
    memset(R->along.slow, 0, (size_t)nc * sizeof *R->along.slow);
    memset(R->across.cross, 0, (size_t)nc * sizeof *R->across.cross);
    memset(R->across.slow, 0, (size_t)nc * sizeof *R->across.slow);
    corners_in(p, m, jp - 0.5, i0, nc, b);
    for (j = jp; j <= j1; j++) {
        if (j == j1 && j1 < ny) {
            /* the corner row j1 belongs to the tile above, but for the
             * ends of this tile's edges coming up to it */
            for (i = 1; i < nc; i++)
                tap(p->v + p->at[b->r[i]], b->x[i], R->pend[i]);
            break;
        }
        if (j < ny) {
            int ns;
            corners_in(p, m, j + 0.5, i0, nc, t);
            ns = pixels_in(data, stride, ny, i0, nc, j, scale, satlevel, fsat, b, t, pc);
            if (j >= j0)
                *nsat += ns;
            prefetch_corners(p->v, p->at, t, nc);
        } else {
            memset(pc->s, 0, (size_t)nc * sizeof *pc->s);
            memset(pc->ok, 0, (size_t)nc * sizeof *pc->ok);
        }
        if (j >= j0) { /* not the row below the tile: its pixels only */
            list_areas(p->a, p->at, R, b, t, pp, pc, nc, nv, j < ny);
            edges_of(R, b, t, pp, pc, nc, nv, j < ny, sg);
            deposit_values(p->v, p->at, R, b, t, nc);
            deposit_areas(p->a, p->at, R, b, t, pp, pc, sg);
        }
        ct = b, b = t, t = ct;
        pt = pp, pp = pc, pc = pt;
    }
}

void rapid_mesh_clip(rapid_mesh *p, int y0, int y1, int x1)
{
    p->clip_r0 = y0 - p->y0, p->clip_r1 = y1 - p->y0, p->clip_c1 = x1 - p->xb;
}

/* Whether tile t deposits only where rapid_mesh_clip said nothing is read
 * (never for a map that bends: its tiles' bounds are not known). */
static int tile_clipped(const rapid_mesh *p, const int *t)
{
    if (t[5] >= INT_MAX / 2)
        return 0;
    return t[3] < p->clip_r0 || t[2] > p->clip_r1 || t[4] > p->clip_c1;
}

/* The saturated pixels of a tile that is skipped, counted as pixels_in
 * counts them. */
static long tile_saturated(const float *data, size_t stride, int i0, int i1,
                           int j0, int j1, float fsat)
{
    long ns = 0;
    int i, j;

    for (j = j0; j < j1; j++) {
        const float *row = data + (size_t)j * stride;
        for (i = i0; i < i1; i++)
            ns += (fabsf(row[i]) <= FLT_MAX) & (row[i] >= fsat);
    }
    return ns;
}

/* Tile by tile in the order of their first rows: when a tile starts,
 * no later one reaches the rows before its first, so they are done (and
 * taken once there are a batch of them). */
RAPID_CLONES
int rapid_mesh_add_strided(rapid_mesh *p, const rapid_pixmap *m,
                           const float *data, size_t stride, int nx, int ny,
                           double scale, double satlevel, rapid_mesh_row_fn fn,
                           void *arg, long *nsat)
{
    tile_rows *R;
    int k, front = 0;

    *nsat = 0;
    if (p->win < p->h && !fn)
        return RAPID_E_ARG;
    if (!(R = malloc(sizeof *R)))
        return RAPID_E_NOMEM;
    for (k = 0; k < p->ntile; k++) {
        const int *t = p->tile + TILE_INTS * k;
        int i1 = t[0] + TILE_W < nx ? t[0] + TILE_W : nx;
        int j1 = t[1] + TILE_H < ny ? t[1] + TILE_H : ny;
        if (t[2] - front >= p->batch)
            for (; fn && front < t[2]; front++)
                fn(arg, p->y0 + front);
        if (tile_clipped(p, t))
            *nsat += tile_saturated(data, stride, t[0], i1, t[1], j1,
                                    sat_float(satlevel));
        else
            mesh_tile(p, m, data, stride, nx, ny, t[0], i1, t[1], j1, scale,
                      satlevel, R, nsat);
    }
    for (; fn && front < p->h; front++)
        fn(arg, p->y0 + front);
    free(R);
    return 0;
}

int rapid_mesh_add(rapid_mesh *p, const rapid_pixmap *m, const float *data,
                   int nx, int ny, double scale, double satlevel,
                   rapid_mesh_row_fn fn, void *arg, long *nsat)
{
    return rapid_mesh_add_strided(p, m, data, (size_t)nx, nx, ny, scale,
                                  satlevel, fn, arg, nsat);
}

void rapid_mesh_row(rapid_mesh *p, int y, int x0, int x1, double *as, double *a)
{
    int r = y - p->y0, c, c0, c1, ce, k;
    double s1 = 0, s2 = 0, t1 = 0, t2 = 0, *v, *ar;

    if (r < 0 || r >= p->h || p->c1[r] < p->c0[r]) {
        for (k = 0; k <= x1 - x0; k++)
            as[k] = a[k] = 0;
        return;
    }
    c0 = p->c0[r], c1 = p->c1[r];
    v = p->v + p->at[r];
    ar = p->a + p->at[r];
    x0 -= p->xb, x1 -= p->xb; /* local columns */
    for (c = x0; c < c0 && c <= x1; c++) /* left of the span: nothing yet */
        as[c - x0] = a[c - x0] = 0;
    /* the running sums as far as the last column asked for; beyond it the
     * cells are only cleared */
    ce = c1 < x1 ? c1 : x1;
    for (c = c0; c <= ce; c++) {
        s1 += v[c], s2 += s1, v[c] = 0;
        t1 += ar[c], t2 += t1;
        if (ar[c] != 0) /* no write where there is nothing: most pages of
                         * the area's cells are never written at all */
            ar[c] = 0;
        if (c >= x0)
            as[c - x0] = s2, a[c - x0] = t2;
    }
    for (c = ce + 1 > c0 ? ce + 1 : c0; c <= c1; c++) {
        v[c] = 0;
        if (ar[c] != 0)
            ar[c] = 0;
    }
    for (c = c1 + 1 > x0 ? c1 + 1 : x0; c <= x1; c++)
        as[c - x0] = a[c - x0] = 0; /* right of it: nothing either */
}

void rapid_mesh_clear(rapid_mesh *p)
{
    if (p->n) {
        memset(p->v, 0, p->n * sizeof *p->v);
        memset(p->a, 0, p->n * sizeof *p->a);
    }
}

/* ------------------------------------------------------- variance factor */

void rapid_mesh_var_release(rapid_mesh_var *v)
{
    if (!v)
        return;
    free(v->g);
    free(v->q);
    free(v->apix);
    memset(v, 0, sizeof *v);
}

/* G over the phase of the output pixel on the input lattice, for the local
 * linear map of block (bi, bj): the output pixel, mapped back, is a
 * parallelogram; its exact overlaps with the input pixels (in input pixel
 * areas) over the input pixel's own area in output pixels are the a_p. */
int rapid_mesh_var_make(rapid_mesh_var *v, const rapid_pixmap *m, int nx, int ny)
{
    int b, i, j, t = 32;

    memset(v, 0, sizeof *v);
    v->nb = 4;
    v->t = t;
    v->bw = (double)nx / v->nb;
    v->bh = (double)ny / v->nb;
    v->ibw = 1 / v->bw;
    v->ibh = 1 / v->bh;
    v->g = malloc((size_t)v->nb * v->nb * (size_t)(t + 1) * (t + 1) * sizeof *v->g);
    v->apix = malloc((size_t)v->nb * v->nb * sizeof *v->apix);
    if (!v->g || !v->apix) {
        rapid_mesh_var_release(v);
        return RAPID_E_NOMEM;
    }
    for (b = 0; b < v->nb * v->nb; b++) {
        double cu = ((b % v->nb) + 0.5) * v->bw - 0.5, cw = ((b / v->nb) + 0.5) * v->bh - 0.5;
        double x0, y0, xu, yu, xw, yw, J[2][2], det, inv[2][2];
        float *g = v->g + (size_t)b * (t + 1) * (t + 1);
        rapid_pixmap_eval(m, cu - 0.5, cw, &x0, &y0);
        rapid_pixmap_eval(m, cu + 0.5, cw, &xu, &yu);
        J[0][0] = xu - x0, J[1][0] = yu - y0;
        rapid_pixmap_eval(m, cu, cw - 0.5, &x0, &y0);
        rapid_pixmap_eval(m, cu, cw + 0.5, &xw, &yw);
        J[0][1] = xw - x0, J[1][1] = yw - y0;
        det = J[0][0] * J[1][1] - J[0][1] * J[1][0];
        if (!(fabs(det) > 1e-12)) {
            rapid_mesh_var_release(v);
            return RAPID_E_ARG;
        }
        inv[0][0] = J[1][1] / det, inv[0][1] = -J[0][1] / det;
        inv[1][0] = -J[1][0] / det, inv[1][1] = J[0][0] / det;
        v->apix[b] = fabs(det);
        for (j = 0; j <= t; j++)
            for (i = 0; i <= t; i++) {
                static const double sx[4] = {-0.5, 0.5, 0.5, -0.5};
                static const double sy[4] = {-0.5, -0.5, 0.5, 0.5};
                double qx[4], qy[4], pu = -0.5 + (double)i / t, pw = -0.5 + (double)j / t;
                double G = 0, A = 0;
                float area[RAPID_OVERLAP_MAXCELLS];
                int k, i0, j0, w, h;
                for (k = 0; k < 4; k++) {
                    qx[k] = pu + inv[0][0] * sx[k] + inv[0][1] * sy[k];
                    qy[k] = pw + inv[1][0] * sx[k] + inv[1][1] * sy[k];
                }
                if (rapid_overlap_cells(qx, qy, 4, &i0, &j0, &w, &h, area, &A) == 0 &&
                    A > 0)
                    for (k = 0; k < w * h; k++)
                        G += area[k] * area[k];
                /* areas in input pixels -> output pixels: times |det J| */
                g[j * (t + 1) + i] = (float)(G * det * det);
            }
    }
    /* the four corners of each cell side by side, for the row form */
    v->q = malloc((size_t)v->nb * v->nb * (size_t)t * t * 4 * sizeof *v->q);
    if (!v->q) {
        rapid_mesh_var_release(v);
        return RAPID_E_NOMEM;
    }
    for (b = 0; b < v->nb * v->nb; b++) {
        const float *g = v->g + (size_t)b * (t + 1) * (t + 1);
        float *q = v->q + (size_t)b * t * t * 4;
        for (j = 0; j < t; j++)
            for (i = 0; i < t; i++, q += 4) {
                const float *c = g + j * (t + 1) + i;
                q[0] = c[0], q[1] = c[1], q[2] = c[t + 1], q[3] = c[t + 2];
            }
    }
    return 0;
}

/* Sixteen pixels of one block: G bilinear in the cell's four corners q. */
static void var16(const float *qb, int t, float fu0, float fw0, float du,
                  float dw, float *g)
{
    const float ft = (float)t;
    int i;

    for (i = 0; i < 16; i++) {
        float fu = fu0 + (float)i * du, fw = fw0 + (float)i * dw, a, b;
        const float *q;
        int iu, iw;
        fu = (fu - (float)(int)fu) * ft; /* the phase, in table cells */
        fw = (fw - (float)(int)fw) * ft;
        iu = (int)fu, iw = (int)fw;
        iu = iu < 0 ? 0 : iu > t - 1 ? t - 1 : iu;
        iw = iw < 0 ? 0 : iw > t - 1 ? t - 1 : iw;
        fu -= (float)iu, fw -= (float)iw;
        q = qb + 4 * (iw * t + iu);
        a = (1 - fu) * q[0] + fu * q[1];
        b = (1 - fu) * q[2] + fu * q[3];
        g[i] = (1 - fw) * a + fw * b;
    }
}

#if !defined(RAPID_PORTABLE) && defined(__GNUC__) && defined(__x86_64__) && \
    defined(__linux__)
#include <immintrin.h>
#define VAR_AVX2 1

/* The same, eight pixels a vector: each cell's four corners are one
 * 16-byte load, and four loads transposed give the corners of four pixels
 * (gathers, one value a time, cost four times more).  The same operations
 * in the same order as var16, so the same values. */
__attribute__((target("avx2"))) static void var16_avx2(const float *qb, int t,
                                                      float fu0, float fw0,
                                                      float du, float dw,
                                                      float *g)
{
    const __m256 ft = _mm256_set1_ps((float)t), one = _mm256_set1_ps(1);
    const __m256i lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(t - 1);
    const __m256i vt = _mm256_set1_epi32(t);
    int h;

    for (h = 0; h < 16; h += 8) {
        __m256 i8 = _mm256_setr_ps(h, h + 1, h + 2, h + 3, h + 4, h + 5, h + 6, h + 7);
        __m256 fu = _mm256_add_ps(_mm256_set1_ps(fu0), _mm256_mul_ps(i8, _mm256_set1_ps(du)));
        __m256 fw = _mm256_add_ps(_mm256_set1_ps(fw0), _mm256_mul_ps(i8, _mm256_set1_ps(dw)));
        __m256i iu, iw, o;
        __m256 r0, r1, r2, r3, t0, t1, t2, t3, A, B, C, D, a, b, gu, gw;
        int k[8];
        fu = _mm256_mul_ps(_mm256_sub_ps(fu, _mm256_cvtepi32_ps(_mm256_cvttps_epi32(fu))), ft);
        fw = _mm256_mul_ps(_mm256_sub_ps(fw, _mm256_cvtepi32_ps(_mm256_cvttps_epi32(fw))), ft);
        iu = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(fu), lo), hi);
        iw = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(fw), lo), hi);
        fu = _mm256_sub_ps(fu, _mm256_cvtepi32_ps(iu));
        fw = _mm256_sub_ps(fw, _mm256_cvtepi32_ps(iw));
        o = _mm256_slli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(iw, vt), iu), 2);
        _mm256_storeu_si256((__m256i *)k, o);
        /* pixels j and j + 4 in the two lanes of r_j */
        r0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(qb + k[0])), _mm_loadu_ps(qb + k[4]), 1);
        r1 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(qb + k[1])), _mm_loadu_ps(qb + k[5]), 1);
        r2 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(qb + k[2])), _mm_loadu_ps(qb + k[6]), 1);
        r3 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(qb + k[3])), _mm_loadu_ps(qb + k[7]), 1);
        t0 = _mm256_unpacklo_ps(r0, r1); /* q0 of 0 1, q1 of 0 1 */
        t1 = _mm256_unpackhi_ps(r0, r1); /* q2 of 0 1, q3 of 0 1 */
        t2 = _mm256_unpacklo_ps(r2, r3);
        t3 = _mm256_unpackhi_ps(r2, r3);
        A = _mm256_shuffle_ps(t0, t2, 0x44);
        B = _mm256_shuffle_ps(t0, t2, 0xee);
        C = _mm256_shuffle_ps(t1, t3, 0x44);
        D = _mm256_shuffle_ps(t1, t3, 0xee);
        gu = _mm256_sub_ps(one, fu);
        gw = _mm256_sub_ps(one, fw);
        a = _mm256_add_ps(_mm256_mul_ps(gu, A), _mm256_mul_ps(fu, B));
        b = _mm256_add_ps(_mm256_mul_ps(gu, C), _mm256_mul_ps(fu, D));
        _mm256_storeu_ps(g + h, _mm256_add_ps(_mm256_mul_ps(gw, a), _mm256_mul_ps(fw, b)));
    }
}
#endif

void rapid_mesh_var_row_with(const rapid_mesh_var *v, const double *su,
                             const double *sw, int n, float *g, float *ia,
                             int simd)
{
    void (*f)(const float *, int, float, float, float, float, float *) = var16;
    int k, i, t = v->t;

#ifdef VAR_AVX2
    if (simd && __builtin_cpu_supports("avx2"))
        f = var16_avx2;
#else
    (void)simd;
#endif
    for (k = 0; 16 * k < n; k++) {
        int m = n - 16 * k < 16 ? n - 16 * k : 16, b;
        int bi = (int)((su[k] + 0.5) * v->ibw), bj = (int)((sw[k] + 0.5) * v->ibh);
        /* the phase, as in rapid_mesh_var_g, from the segment's start on
         * in single precision (64 + a phase: positive while a step is
         * under 4 input pixels; the clamps keep it safe anyway) */
        double pu = su[k] + 2.5, pw = sw[k] + 2.5;
        float fu0 = (float)(pu - (int)pu) + 64, fw0 = (float)(pw - (int)pw) + 64;
        float du = (float)((su[k + 1] - su[k]) / 16), dw = (float)((sw[k + 1] - sw[k]) / 16);
        float gs[16], inv;
        bi = bi < 0 ? 0 : bi >= v->nb ? v->nb - 1 : bi;
        bj = bj < 0 ? 0 : bj >= v->nb ? v->nb - 1 : bj;
        b = bj * v->nb + bi;
        inv = (float)(1 / v->apix[b]);
        f(v->q + (size_t)b * t * t * 4, t, fu0, fw0, du, dw, m == 16 ? g + 16 * k : gs);
        if (m < 16)
            for (i = 0; i < m; i++)
                g[16 * k + i] = gs[i];
        for (i = 0; i < m; i++)
            ia[16 * k + i] = inv;
    }
}

void rapid_mesh_var_row(const rapid_mesh_var *v, const double *su,
                        const double *sw, int n, float *g, float *ia)
{
    rapid_mesh_var_row_with(v, su, sw, n, g, ia, 1);
}
