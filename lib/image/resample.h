/* resample.h - flux-conserving resampling of one image onto a pixel grid
 * through the mesh of its pixel edges.
 *
 * Each input pixel, mapped onto the output grid, is the quadrilateral of
 * its four mapped corners; its flux spreads over the output pixels in
 * proportion to the exact overlap areas.  Instead of clipping every
 * quadrilateral (four edges each), the sums over all of them are built
 * from Green's theorem: every edge of the mesh is shared by two input
 * pixels, so it is visited once, weighted by the difference of their
 * surface brightnesses, and deposits its signed area into per-row
 * accumulators.  The accumulators hold second differences along the row
 * (a quadratic B-spline of the edge's ends per row it crosses, no splitting
 * at column boundaries), and two running sums along each output row give,
 * for every output pixel, sum_p a_p s_p and sum_p a_p (a_p the overlap
 * area of input pixel p, s_p its surface brightness).
 *
 * The variance of a resampled pixel, sum_p a_p^2 var_p, is not linear in
 * the areas; it is the local variance times the geometric factor
 * G = sum_p a_p^2, which depends only on where the output pixel falls on
 * the input's pixel lattice and on the local shape of the mapped pixels.
 * G is tabulated exactly (from exact overlaps) over that phase for blocks
 * of the input and interpolated (rapid_mesh_var).
 */
#ifndef RAPID_RESAMPLE_H
#define RAPID_RESAMPLE_H

#include <stddef.h>

#include "rapid/pixmap.h"

typedef struct rapid_mesh {
    int y0, h;           /* output rows y0 .. y0+h-1 (may lie off the grid) */
    int xb;              /* output column of local column 0 */
    int *c0, *c1;        /* per row: first and last local column held */
    ptrdiff_t *at;       /* per row: index of local column 0 in v and a */
    int rcap;            /* rows allocated */
    size_t n, cap;       /* cells in use, allocated (all zero between uses) */
    double *v, *a;       /* second differences of the value and area sums */
    double sign;         /* +1 or -1: orientation of the mapped pixels */
    int win;             /* rows held at once: h, or fewer in a ring */
    int batch;           /* rows a ring lets finish before they are taken */
    int *tile;           /* ntile tiles of the input, 6 ints each: first
                          * column and row, first and last row they touch,
                          * first and last column they touch (local), in
                          * the order of their first row */
    int ntile, tcap;
    int clip_r0, clip_r1, clip_c1; /* local rows and last column read
                          * (rapid_mesh_clip); all of them after a place */
} rapid_mesh;

#define RAPID_MESH_INIT {0}

void rapid_mesh_release(rapid_mesh *p);

/* Lay the accumulators over the footprint of an nx x ny input (through its
 * map m to output pixels), reusing the memory of earlier calls: every row
 * of it (batch < 0), or a ring of as few rows as the edge pass has in hand
 * at once (a few hundred, whatever the footprint) and batch more, from
 * which a row function given to rapid_mesh_add takes the rows as they are
 * done, batch rows or more at a time (0: each as soon as done).  Fails
 * (RAPID_E_NOMEM, or RAPID_E_ARG when the footprint would need more than
 * maxcells output pixels) without touching the previous layout's zeroes. */
int rapid_mesh_place(rapid_mesh *p, const rapid_pixmap *m, int nx, int ny,
                     size_t maxcells, int batch);

/* Only output rows y0..y1 and columns up to x1 (global) will be read:
 * rapid_mesh_add skips the tiles of the input that deposit nowhere else
 * (those wholly above, below or right of that window; a tile left of it
 * reaches the cells right of it through the running sums, so it stays).
 * The rows read and the values there are the same as without (what the
 * skipped tiles would have deposited lies in cells no row read reaches);
 * the rows outside hold less.  Until the next rapid_mesh_place. */
void rapid_mesh_clip(rapid_mesh *p, int y0, int y1, int x1);

/* The batch for a ring that the coadd uses: rows taken this many at a
 * time stream their sums through the cache in long runs, and the edge pass
 * keeps the cache to itself in between (0.5 s less per 25 inputs of
 * 4088^2 than row by row, for 1000 rows of 33 kB more in the ring). */
#define RAPID_MESH_BATCH 1024

/* Called with each output row y (global), in order, once no more edges
 * will reach it: it must take the row (rapid_mesh_row). */
typedef void (*rapid_mesh_row_fn)(void *arg, int y);

/* Deposit the image (nx x ny, row-major; each value is multiplied by
 * `scale`): NaN pixels and those >= satlevel are left out (holes in the
 * mesh).  With a row function (required for a ring) every row y0..y0+h-1
 * goes to it once it is complete, in the batches rapid_mesh_place was
 * given; without, they all wait for the caller.  *nsat: the number of
 * saturated pixels.  0, RAPID_E_NOMEM, or RAPID_E_ARG for a ring without a
 * row function (both failures found before anything is deposited). */
int rapid_mesh_add(rapid_mesh *p, const rapid_pixmap *m, const float *data,
                   int nx, int ny, double scale, double satlevel,
                   rapid_mesh_row_fn fn, void *arg, long *nsat);
/* The same for an image whose rows are `stride` floats apart (>= nx): a
 * window of a larger one, without copying it out. */
int rapid_mesh_add_strided(rapid_mesh *p, const rapid_pixmap *m,
                           const float *data, size_t stride, int nx, int ny,
                           double scale, double satlevel, rapid_mesh_row_fn fn,
                           void *arg, long *nsat);

/* Output row y (global): the value sums sum a*s into as[] and the areas
 * sum a into a[] for global columns x0..x1 (x1 < x0: none), and clear the
 * row for the next input.  Every row y0..y0+h-1 must be taken once after
 * rapid_mesh_add (or by its row function). */
void rapid_mesh_row(rapid_mesh *p, int y, int x0, int x1, double *as, double *a);
/* Clear everything deposited, without taking it (after a failure). */
void rapid_mesh_clear(rapid_mesh *p);

/* The geometric variance factor G over an input's pixels. */
typedef struct rapid_mesh_var {
    int nb;              /* blocks per axis */
    double bw, bh;       /* block size, input pixels */
    double ibw, ibh;     /* their inverses */
    int t;               /* phase steps per pixel */
    float *g;            /* nb*nb tables of (t+1)^2 */
    float *q;            /* the same, the 4 corners of each of t^2 cells */
    double *apix;        /* nb*nb: area of one input pixel, output pixels */
} rapid_mesh_var;

#define RAPID_MESH_VAR_INIT {0, 0, 0, 0, 0, 0, NULL, NULL, NULL}

int rapid_mesh_var_make(rapid_mesh_var *v, const rapid_pixmap *m, int nx, int ny);
void rapid_mesh_var_release(rapid_mesh_var *v);
/* G for the output pixel whose centre falls on input position (u, w), and
 * the area of an input pixel there (output pixels); u, w > -2.  The point
 * form: the coadd uses the row form below (rapid_mesh_var_row), and the
 * tests check one against the other. */
static inline double rapid_mesh_var_g(const rapid_mesh_var *v, double u,
                                      double w, double *apix)
{
    int bi = (int)((u + 0.5) * v->ibw), bj = (int)((w + 0.5) * v->ibh), i, j, t1;
    double fu, fw;
    const float *g;

    bi = bi < 0 ? 0 : bi >= v->nb ? v->nb - 1 : bi;
    bj = bj < 0 ? 0 : bj >= v->nb ? v->nb - 1 : bj;
    t1 = v->t + 1;
    g = v->g + (size_t)(bj * v->nb + bi) * t1 * t1;
    *apix = v->apix[bj * v->nb + bi];
    /* phase in [0, 1): offset from the nearest input pixel centre, + 1/2
     * (floor without libm: u + 2.5 > 0) */
    fu = u + 2.5, fw = w + 2.5;
    fu = (fu - (int)fu) * v->t;
    fw = (fw - (int)fw) * v->t;
    i = (int)fu, j = (int)fw;
    i = i >= v->t ? v->t - 1 : i;
    j = j >= v->t ? v->t - 1 : j;
    fu -= i, fw -= j;
    g += j * t1 + i;
    return (1 - fw) * ((1 - fu) * g[0] + fu * g[1]) +
           fw * ((1 - fu) * g[t1] + fu * g[t1 + 1]);
}

/* The same along a row of n output pixels whose input positions are
 * (su[k], sw[k]) at every 16th pixel, k <= n/16 + 1, linear in between:
 * G into g[i] and the inverse of the input pixel's area into ia[i]. */
void rapid_mesh_var_row(const rapid_mesh_var *v, const double *su,
                        const double *sw, int n, float *g, float *ia);
/* The same in portable code (simd 0) or, where the CPU has it, in AVX2
 * (simd 1, what rapid_mesh_var_row does): the same values either way. */
void rapid_mesh_var_row_with(const rapid_mesh_var *v, const double *su,
                             const double *sw, int n, float *g, float *ia,
                             int simd);

#endif
