/* test_resample.c - the edge-mesh resampler against pixel-by-pixel exact
 * overlaps (each input quadrilateral clipped to the output grid by
 * rapid_overlap_cells, itself checked against polygon clipping in
 * test_overlap), and its variance factor against the exact sum of squared
 * overlaps. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sky/overlap.h"
#include "rapid/rng.h"
#include "image/resample.h"
#include "testutil.h"

typedef struct mapdef {
    double theta, scale, ox, oy, dist; /* rotation (deg), scale, offset, distortion */
    double dist3;                      /* cubic distortion (as SIP's third order) */
    int blobs;                         /* masked blobs and runs (as the DQ masks) */
} mapdef;

/* A pixel map sampled from an analytic map: rotation, scale, offset and a
 * quadratic and cubic distortion about the image centre. */
static void make_map(rapid_pixmap *m, const mapdef *d, int nx, int ny)
{
    double t = d->theta * M_PI / 180, c = cos(t), s = sin(t);
    int k;

    m->step = 16;
    m->x0 = -0.5 - m->step;
    m->y0 = -0.5 - m->step;
    m->gx = nx / m->step + 5;
    m->gy = ny / m->step + 5;
    m->ox = malloc(sizeof(double) * m->gx * m->gy);
    m->oy = malloc(sizeof(double) * m->gx * m->gy);
    assert_non_null(m->ox);
    assert_non_null(m->oy);
    for (k = 0; k < m->gx * m->gy; k++) {
        double x = m->x0 + (k % m->gx) * m->step - nx / 2.0;
        double y = m->y0 + (k / m->gx) * m->step - ny / 2.0;
        double u = x + d->dist * (x * x - 0.5 * y * y) +
                   d->dist3 * (x * x * x + 0.3 * x * y * y);
        double v = y + d->dist * (0.7 * x * y) +
                   d->dist3 * (-0.4 * x * x * y + 0.8 * y * y * y);
        m->ox[k] = d->ox + d->scale * (c * u - s * v);
        m->oy[k] = d->oy + d->scale * (s * u + c * v);
    }
    m->valid = 1;
}

/* The reference: every input pixel's quadrilateral on its own, into a
 * dense grid [gx0, gx0 + gw) x [gy0, gy0 + gh); also sum a^2. */
static void brute(const rapid_pixmap *m, const float *img, int nx, int ny,
                  double sat, int gx0, int gy0, int gw, int gh, double *as,
                  double *a, double *a2)
{
    double *bx = malloc(sizeof(double) * (nx + 1)), *by = malloc(sizeof(double) * (nx + 1));
    double *tx = malloc(sizeof(double) * (nx + 1)), *ty = malloc(sizeof(double) * (nx + 1));
    int i, j;

    rapid_pixmap_row(m, -0.5, -0.5, 1.0, nx + 1, bx, by);
    for (j = 0; j < ny; j++) {
        double *t;
        rapid_pixmap_row(m, j + 0.5, -0.5, 1.0, nx + 1, tx, ty);
        for (i = 0; i < nx; i++) {
            double qx[4] = {bx[i], bx[i + 1], tx[i + 1], tx[i]};
            double qy[4] = {by[i], by[i + 1], ty[i + 1], ty[i]};
            float area[RAPID_OVERLAP_MAXCELLS];
            int i0, j0, w, h, r, c;
            double A, d = img[(size_t)j * nx + i];
            if (!isfinite(d) || d >= sat)
                continue;
            assert_int_equal(rapid_overlap_cells(qx, qy, 4, &i0, &j0, &w, &h, area, &A), 0);
            assert_true(A > 0);
            for (r = 0; r < h; r++)
                for (c = 0; c < w; c++) {
                    int gx = i0 + c - gx0, gy = j0 + r - gy0;
                    double ar = area[r * w + c];
                    assert_true(gx >= 0 && gx < gw && gy >= 0 && gy < gh);
                    as[(size_t)gy * gw + gx] += ar * d / A;
                    a[(size_t)gy * gw + gx] += ar;
                    a2[(size_t)gy * gw + gx] += ar * ar;
                }
        }
        t = bx, bx = tx, tx = t;
        t = by, by = ty, ty = t;
    }
    free(bx), free(by), free(tx), free(ty);
}

static void fill_image(float *img, int nx, int ny, uint64_t seed)
{
    rapid_rng r;
    int k;

    rapid_rng_derive(&r, seed, 0, 0, 0);
    for (k = 0; k < nx * ny; k++)
        img[k] = (float)(100 + 20 * rapid_rng_normal(&r));
    img[3 * nx + 5] = 5e4f;                /* a star's core */
    img[3 * nx + 6] = NAN;                 /* a dead pixel */
    img[(ny / 2) * nx + nx / 2] = 1e6f;    /* saturated */
    img[(ny / 2) * nx + nx / 2 + 1] = NAN; /* and holes next to each other */
    img[(ny / 2 + 1) * nx + nx / 2] = NAN;
}

/* Holes as the coadd's masks make them: squares of 1 to 7 pixels (a DQ
 * flag grown by 0 to 3), runs along rows and columns, single pixels, some
 * touching the image's sides, some saturated rather than NaN; how many
 * saturated into *nsat. */
static void mask_blobs(float *img, int nx, int ny, int n, uint64_t seed, long *nsat)
{
    rapid_rng r;
    int k, i, j;

    rapid_rng_derive(&r, seed, 1, 0, 0);
    for (k = 0; k < n; k++) {
        int kind = k % 4, x = (int)(rapid_rng_uniform(&r) * nx);
        int y = (int)(rapid_rng_uniform(&r) * ny), w = 1, h = 1;
        float v = k % 7 == 3 ? 2e5f : NAN;
        if (kind == 0)
            w = h = 1 + 2 * (int)(rapid_rng_uniform(&r) * 4);
        else if (kind == 1)
            w = 2 + (int)(rapid_rng_uniform(&r) * 20);
        else if (kind == 2)
            h = 2 + (int)(rapid_rng_uniform(&r) * 20);
        for (j = y - h / 2; j <= y + h / 2; j++)
            for (i = x - w / 2; i <= x + w / 2; i++)
                if (i >= 0 && i < nx && j >= 0 && j < ny)
                    img[(size_t)j * nx + i] = v;
    }
    *nsat = 0;
    for (k = 0; k < nx * ny; k++)
        *nsat += img[k] >= 1e5f && isfinite(img[k]);
}

/* Rows taken from a ring as the edge pass finishes them. */
typedef struct taken {
    rapid_mesh *p;
    int gx0, gy0, gw, next;
    double *as, *a;
} taken;

static void take_row(void *arg, int y)
{
    taken *t = arg;

    assert_int_equal(y, t->next); /* every row, in order */
    t->next++;
    rapid_mesh_row(t->p, y, t->gx0, t->gx0 + t->gw - 1,
                   t->as + (size_t)(y - t->gy0) * t->gw,
                   t->a + (size_t)(y - t->gy0) * t->gw);
}

static int rings; /* maps whose ring held fewer rows than the footprint */
static int clipped; /* maps whose clipped mesh skipped some tiles */

/* Mesh against brute force for one map; the mesh is reused across calls
 * (its accumulators must come back clean).  Then the same through a ring
 * of rows, which must give the same values, bit for bit. */
static void check_map(rapid_mesh *p, const mapdef *d, int nx, int ny, uint64_t seed)
{
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    float *img = malloc(sizeof(float) * nx * ny);
    const double sat = 1e5;
    int gx0, gy0, gw, gh, r, c;
    double *as, *a, *a2, *ms, *ma, worst_s = 0, worst_a = 0, tot = 0, totref = 0;
    double *fs, *fa;
    long nsat, nsat_want = 1;
    int batch;
    rapid_mesh ring = RAPID_MESH_INIT;

    assert_non_null(img);
    fill_image(img, nx, ny, seed);
    if (d->blobs)
        mask_blobs(img, nx, ny, d->blobs, seed, &nsat_want);
    make_map(&m, d, nx, ny);
    assert_int_equal(rapid_mesh_place(p, &m, nx, ny, (size_t)1 << 24, -1), 0);
    assert_int_equal(rapid_mesh_add(p, &m, img, nx, ny, 1.0, sat, NULL, NULL, &nsat), 0);
    assert_int_equal(nsat, nsat_want);
    gx0 = p->xb, gy0 = p->y0, gh = p->h, gw = 0;
    for (r = 0; r < p->h; r++)
        gw = p->c1[r] + 1 > gw ? p->c1[r] + 1 : gw;
    as = calloc((size_t)gw * gh, sizeof *as);
    a = calloc((size_t)gw * gh, sizeof *a);
    a2 = calloc((size_t)gw * gh, sizeof *a2);
    ms = calloc((size_t)gw, sizeof *ms);
    ma = calloc((size_t)gw, sizeof *ma);
    fs = calloc((size_t)gw * gh, sizeof *fs);
    fa = calloc((size_t)gw * gh, sizeof *fa);
    brute(&m, img, nx, ny, sat, gx0, gy0, gw, gh, as, a, a2);
    for (r = 0; r < gh; r++) {
        rapid_mesh_row(p, gy0 + r, gx0, gx0 + gw - 1, ms, ma);
        for (c = 0; c < gw; c++) {
            size_t k = (size_t)r * gw + c;
            worst_s = fmax(worst_s, fabs(ms[c] - as[k]));
            worst_a = fmax(worst_a, fabs(ma[c] - a[k]));
            tot += ms[c], totref += as[k];
            fs[k] = ms[c], fa[k] = ma[c];
        }
    }
    print_message("mesh, rotation %g deg, %d blobs: worst |sum a s| error %.2e (values ~1e2..5e4), "
                  "worst area error %.2e\n", d->theta, d->blobs, worst_s, worst_a);
    assert_true(worst_a < 1e-6); /* the reference's areas are floats */
    assert_true(worst_s < 1e-6 * 5e4);
    assert_true(fabs(tot / totref - 1) < 1e-7);
    /* taken rows are clear: a second pass gives nothing */
    for (r = 0; r < gh; r++) {
        rapid_mesh_row(p, gy0 + r, gx0, gx0 + gw - 1, ms, ma);
        for (c = 0; c < gw; c++)
            assert_true(ms[c] == 0 && ma[c] == 0);
    }
    /* the variance factor: G = sum a^2 where the pixel is fully covered
     * (by valid pixels: away from the holes) */
    if (d->dist == 0 && d->dist3 == 0 && d->blobs == 0) {
        rapid_mesh_var mv;
        double worst = 0;
        long n = 0;
        assert_int_equal(rapid_mesh_var_make(&mv, &m, nx, ny), 0);
        for (r = 0; r < gh; r++)
            for (c = 0; c < gw; c++) {
                size_t k = (size_t)r * gw + c;
                double X = gx0 + c - d->ox, Y = gy0 + r - d->oy, t = d->theta * M_PI / 180;
                double u = (cos(t) * X + sin(t) * Y) / d->scale + nx / 2.0;
                double w = (-sin(t) * X + cos(t) * Y) / d->scale + ny / 2.0, apix;
                double G;
                if (fabs(a[k] - 1) > 1e-6 || u < 2 ||
                    w < 2 || u > nx - 3 || w > ny - 3)
                    continue;
                if (fabs(u - nx / 2.0) < 4 && fabs(w - ny / 2.0) < 4)
                    continue; /* the holes */
                if (fabs(u - 5) < 4 && fabs(w - 3) < 4)
                    continue;
                G = rapid_mesh_var_g(&mv, u, w, &apix);
                worst = fmax(worst, fabs(G / a2[k] - 1));
                assert_true(fabs(apix - d->scale * d->scale) < 1e-6);
                n++;
            }
        print_message("variance factor: worst G error %.2e%% over %ld pixels\n",
                      100 * worst, n);
        if (d->scale == 1.0) /* else the grid's pixels are not fully covered */
            assert_true(n > 100);
        assert_true(worst < 0.01);
        /* by rows, from positions at every 16th pixel (the map is linear
         * here): the same G as point by point */
        {
            int ns = (gw + 15) / 16 + 1, j;
            double *su = malloc(ns * sizeof *su), *sw = malloc(ns * sizeof *sw), t = d->theta * M_PI / 180;
            float *g = malloc(gw * sizeof *g), *ia = malloc(gw * sizeof *ia);
            float *g2 = malloc(gw * sizeof *g2), *ia2 = malloc(gw * sizeof *ia2);
            double rworst = 0;
            assert_non_null(su), assert_non_null(sw), assert_non_null(g), assert_non_null(ia);
            assert_non_null(g2), assert_non_null(ia2);
            for (r = 0; r < gh; r++) {
                double Y = gy0 + r - d->oy;
                for (j = 0; j < ns; j++) {
                    double X = gx0 + 16 * j - d->ox;
                    su[j] = (cos(t) * X + sin(t) * Y) / d->scale + nx / 2.0;
                    sw[j] = (-sin(t) * X + cos(t) * Y) / d->scale + ny / 2.0;
                }
                rapid_mesh_var_row(&mv, su, sw, gw, g, ia);
                /* the portable code gives the same values */
                rapid_mesh_var_row_with(&mv, su, sw, gw, g2, ia2, 0);
                assert_memory_equal(g, g2, gw * sizeof *g);
                assert_memory_equal(ia, ia2, gw * sizeof *ia);
                for (c = 0; c < gw; c++) {
                    double X = gx0 + c - d->ox, apix, G;
                    double u = (cos(t) * X + sin(t) * Y) / d->scale + nx / 2.0;
                    double w = (-sin(t) * X + cos(t) * Y) / d->scale + ny / 2.0;
                    if (u < -1.5 || w < -1.5)
                        continue;
                    G = rapid_mesh_var_g(&mv, u, w, &apix);
                    rworst = fmax(rworst, fabs(g[c] - G));
                    assert_true(fabs(ia[c] * apix - 1) < 1e-6);
                }
            }
            print_message("variance factor by rows: worst difference %.2e\n", rworst);
            assert_true(rworst < 2e-3);
            free(su), free(sw), free(g), free(ia), free(g2), free(ia2);
        }
        rapid_mesh_var_release(&mv);
    }
    /* the same through a ring of rows, taken as soon as they are done or
     * in batches, one ring after the other in the same memory (as and a
     * reused: every cell is set) */
    for (batch = 0; batch < 50; batch += 7) {
        taken t = {p, gx0, gy0, gw, gy0, as, a};
        assert_int_equal(rapid_mesh_place(&ring, &m, nx, ny, (size_t)1 << 24, batch), 0);
        assert_int_equal(ring.y0, gy0);
        assert_int_equal(ring.h, gh);
        assert_true(ring.win <= ring.h);
        rings += ring.win < ring.h;
        t.p = &ring;
        assert_int_equal(rapid_mesh_add(&ring, &m, img, nx, ny, 1.0, sat, take_row, &t, &nsat), 0);
        assert_int_equal(nsat, nsat_want);
        assert_int_equal(t.next, gy0 + gh);
        assert_memory_equal(as, fs, (size_t)gw * gh * sizeof *fs);
        assert_memory_equal(a, fa, (size_t)gw * gh * sizeof *fa);
        /* without a row function a ring cannot give its rows back */
        if (ring.win < ring.h)
            assert_int_equal(rapid_mesh_add(&ring, &m, img, nx, ny, 1.0, sat, NULL, NULL, &nsat),
                             RAPID_E_ARG);
    }
    /* clipped to windows of the footprint, from an image whose rows are
     * further apart than its width: the same values in the window, bit
     * for bit, and the same saturated pixels; outside it some rows hold
     * less where tiles were skipped.  The windows end just short of each
     * tile's bounds (resample.h), which skips the tile. */
    {
        size_t stride = (size_t)nx + 7;
        float *wide = malloc(sizeof(float) * stride * ny);
        int k, ntile, q, diff = 0;
        assert_non_null(wide);
        for (r = 0; r < ny; r++) {
            memcpy(wide + r * stride, img + (size_t)r * nx, sizeof(float) * nx);
            for (c = nx; c < (int)stride; c++)
                wide[r * stride + c] = NAN; /* never read */
        }
        assert_int_equal(rapid_mesh_place(&ring, &m, nx, ny, (size_t)1 << 24, 0), 0);
        ntile = ring.ntile;
        for (k = 0; k < ntile; k++)
            for (q = 0; q < 4; q++) {
                const int *tl;
                int y0 = INT_MIN / 4, y1 = INT_MAX / 4, x1 = INT_MAX / 4;
                taken t = {&ring, gx0, gy0, gw, gy0, as, a};
                assert_int_equal(rapid_mesh_place(&ring, &m, nx, ny, (size_t)1 << 24, 0), 0);
                tl = ring.tile + 6 * k;
                if (q == 0)
                    x1 = ring.xb + tl[4] - 1;
                else if (q == 1)
                    y1 = ring.y0 + tl[2] - 1;
                else if (q == 2)
                    y0 = ring.y0 + tl[3] + 1;
                else /* a window inside the footprint */
                    y0 = gy0 + gh / 3, y1 = gy0 + 2 * gh / 3, x1 = gx0 + gw / 2;
                rapid_mesh_clip(&ring, y0, y1, x1);
                assert_int_equal(rapid_mesh_add_strided(&ring, &m, wide, stride, nx, ny,
                                                        1.0, sat, take_row, &t, &nsat), 0);
                assert_int_equal(nsat, nsat_want);
                assert_int_equal(t.next, gy0 + gh);
                for (r = 0; r < gh; r++)
                    for (c = 0; c < gw; c++) {
                        size_t o = (size_t)r * gw + c;
                        if (gy0 + r >= y0 && gy0 + r <= y1 && gx0 + c <= x1) {
                            assert_memory_equal(&as[o], &fs[o], sizeof *fs);
                            assert_memory_equal(&a[o], &fa[o], sizeof *fa);
                        } else
                            diff |= as[o] != fs[o] || a[o] != fa[o];
                    }
            }
        clipped += diff;
        free(wide);
    }
    rapid_mesh_release(&ring);
    free(as), free(a), free(a2), free(ms), free(ma), free(img);
    free(fs), free(fa);
    rapid_pixmap_release(&m);
}

/* Many holes, in blobs and runs as the coadd's DQ masks make them, under rotations and a distortion of second and
 * third order (6-9 % of the pixels masked): the edges where valid pixels
 * meet holes, in the areas as
 * well as the values, against brute force. */
static void test_mesh_holes(void **state)
{
    static const mapdef maps[] = {
        {0, 1.0, 40.3, 30.7, 0, 0, 150},
        {90.3, 1.0, 40.3, 300.2, 1e-4, 2e-7, 150},
        {21.0, 1.0, 200.25, 50.1, 2e-4, -3e-7, 200},
        {61.0, 0.98, -100.6, -40.3, -1e-4, 4e-7, 200},
        {137.2, 1.02, 150.9, 250.4, 2e-4, 1e-7, 250},
        {-71.5, 1.3, 80.1, 60.8, -3e-4, -2e-7, 250},
    };
    rapid_mesh p = RAPID_MESH_INIT;
    size_t k;

    (void)state;
    for (k = 0; k < sizeof maps / sizeof *maps; k++)
        check_map(&p, &maps[k], k % 2 ? 300 : 130, k % 2 ? 90 : 211, 300 + k);
    rapid_mesh_release(&p);
}

static void test_mesh_vs_brute(void **state)
{
    static const mapdef maps[] = {
        {0, 1.0, 40.3, 30.7, 0, 0, 0},       /* aligned: vertical edges exactly */
        {90, 1.0, 40.3, 300.2, 0, 0, 0},     /* a quarter turn */
        {0.0005, 1.0, 10.5, 20.5, 0, 0, 0},  /* nearly aligned: steep edges */
        {30, 1.0, 200.25, 50.1, 0, 0, 0},
        {45, 1.0, -100.6, -40.3, 0, 0, 0},   /* off the grid's origin */
        {137.2, 1.02, 150.9, 250.4, 2e-4, 0, 0}, /* distorted, slightly larger */
        {-71.5, 0.97, 80.1, 60.8, -3e-4, 0, 0},
        {200, 1.0, 300.3, 100.2, 1e-4, 0, 0},
        {33, 1.6, 20.3, 10.2, 0, 0, 0},       /* coarser: edges crossing two rows */
    };
    rapid_mesh p = RAPID_MESH_INIT;
    size_t k;

    (void)state;
    /* small inputs (one or two tiles of the edge pass), then larger ones:
     * tiles in rows and columns, partial at the right and the top */
    for (k = 0; k < sizeof maps / sizeof *maps; k++)
        check_map(&p, &maps[k], k % 2 ? 300 : 47, k % 2 ? 23 : 61, 100 + k);
    for (k = 0; k < sizeof maps / sizeof *maps; k++)
        check_map(&p, &maps[k], k % 2 ? 530 : 290, k % 2 ? 150 : 213, 200 + k);
    assert_true(rings >= 9);
    assert_true(clipped >= 5);
    /* a map that bends within a few pixels (more than the tiles' rows
     * can be bounded by) keeps every row of the footprint in hand, and
     * still agrees with brute force */
    {
        rapid_pixmap m = RAPID_PIXMAP_INIT;
        rapid_mesh ring = RAPID_MESH_INIT;
        mapdef bent = {90, 1.0, 40.3, 60.2, 5e-3, 0, 0};
        make_map(&m, &bent, 47, 61);
        assert_int_equal(rapid_mesh_place(&ring, &m, 47, 61, (size_t)1 << 20, 0), 0);
        assert_int_equal(ring.win, ring.h);
        rapid_mesh_release(&ring);
        rapid_pixmap_release(&m);
        check_map(&p, &bent, 47, 61, 98);
    }
    /* a footprint larger than allowed (an input of much finer pixels) is
     * refused, and the mesh still works afterwards */
    {
        rapid_pixmap m = RAPID_PIXMAP_INIT;
        mapdef big = {10, 8.0, 0, 0, 0, 0, 0};
        make_map(&m, &big, 47, 61);
        assert_int_equal(rapid_mesh_place(&p, &m, 47, 61, 47 * 61 * 4, -1), RAPID_E_ARG);
        assert_int_equal(p.h, 0);
        rapid_pixmap_release(&m);
        check_map(&p, &maps[3], 47, 61, 99);
    }
    /* what is deposited and then cleared (after a failure) leaves nothing */
    {
        rapid_pixmap m = RAPID_PIXMAP_INIT;
        float img[40 * 30];
        double as[400], a[400];
        int r, c;
        fill_image(img, 40, 30, 7);
        make_map(&m, &maps[4], 40, 30);
        assert_int_equal(rapid_mesh_place(&p, &m, 40, 30, (size_t)1 << 20, -1), 0);
        long nsat;
        assert_int_equal(rapid_mesh_add(&p, &m, img, 40, 30, 1.0, 1e5, NULL, NULL, &nsat), 0);
        rapid_mesh_clear(&p);
        for (r = 0; r < p.h; r++) {
            assert_true(p.c1[r] - p.c0[r] < 400);
            rapid_mesh_row(&p, p.y0 + r, p.xb + p.c0[r], p.xb + p.c1[r], as, a);
            for (c = 0; c <= p.c1[r] - p.c0[r]; c++)
                assert_true(as[c] == 0 && a[c] == 0);
        }
        rapid_pixmap_release(&m);
    }
    rapid_mesh_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh_vs_brute),
        cmocka_unit_test(test_mesh_holes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
