/* test_overlap.c - exact polygon/grid overlaps against per-cell clipping. */
#include <math.h>
#include <string.h>

#include "sky/overlap.h"
#include "testutil.h"

/* Independent reference: clip the polygon to one cell (Sutherland-Hodgman)
 * and take the shoelace area. */
static int clip(const double *x, const double *y, int n, int axis, double v,
                int keep_below, double *ox, double *oy)
{
    int k, m = 0;

    for (k = 0; k < n; k++) {
        int j = (k + 1) % n;
        double a = axis ? y[k] : x[k], b = axis ? y[j] : x[j];
        int ina = keep_below ? a <= v : a >= v, inb = keep_below ? b <= v : b >= v;
        if (ina) {
            ox[m] = x[k], oy[m] = y[k], m++;
        }
        if (ina != inb) {
            double t = (v - a) / (b - a);
            ox[m] = x[k] + t * (x[j] - x[k]);
            oy[m] = y[k] + t * (y[j] - y[k]);
            m++;
        }
    }
    return m;
}

static double cell_area(const double *x, const double *y, int n, int i, int j)
{
    double ax[32], ay[32], bx[32], by[32], s = 0;
    int k;

    n = clip(x, y, n, 0, i - 0.5, 0, ax, ay);
    n = clip(ax, ay, n, 0, i + 0.5, 1, bx, by);
    n = clip(bx, by, n, 1, j - 0.5, 0, ax, ay);
    n = clip(ax, ay, n, 1, j + 0.5, 1, bx, by);
    for (k = 0; k < n; k++)
        s += bx[k] * by[(k + 1) % n] - bx[(k + 1) % n] * by[k];
    return fabs(s) / 2;
}

static double poly_area(const double *x, const double *y, int n)
{
    double s = 0;
    int k;
    for (k = 0; k < n; k++)
        s += x[k] * y[(k + 1) % n] - x[(k + 1) % n] * y[k];
    return fabs(s) / 2;
}

static void check(const double *x, const double *y, int n)
{
    float area[RAPID_OVERLAP_MAXCELLS];
    int i0, j0, w, h, r, c;
    double total = -1, sum = 0;

    assert_int_equal(rapid_overlap_cells(x, y, n, &i0, &j0, &w, &h, area, &total), 0);
    assert_true(total >= 0);
    if (fabs(total - poly_area(x, y, n)) > 1e-9)
        fail_msg("total %.12f, polygon area %.12f", total, poly_area(x, y, n));
    for (r = 0; r < h; r++)
        for (c = 0; c < w; c++) {
            double want = cell_area(x, y, n, i0 + c, j0 + r);
            sum += area[r * w + c];
            if (fabs(area[r * w + c] - want) > 2e-6)
                fail_msg("cell (%d,%d): %.9f, clipping gives %.9f", i0 + c, j0 + r,
                         area[r * w + c], want);
        }
    /* nothing outside the box */
    assert_true(cell_area(x, y, n, i0 - 1, j0) < 1e-12);
    assert_true(cell_area(x, y, n, i0 + w, j0 + h - 1) < 1e-12);
    assert_true(fabs(sum - total) < 1e-5);
}

/* Pixel-sized quadrilaterals at every rotation, scale, skew and offset: the
 * shape of an input pixel on an output grid. */
static void test_random_quads(void **state)
{
    uint64_t s = 1;
    int k;

    (void)state;
    for (k = 0; k < 20000; k++) {
        double cx = 200 * test_uniform(&s) - 100, cy = 200 * test_uniform(&s) - 100;
        double th = 2 * M_PI * test_uniform(&s), sc = 0.3 + 2.2 * test_uniform(&s);
        double sk = 0.3 * (test_uniform(&s) - 0.5), x[4], y[4];
        double u[4] = {-0.5, 0.5, 0.5, -0.5}, v[4] = {-0.5, -0.5, 0.5, 0.5};
        int m;
        for (m = 0; m < 4; m++) {
            double uu = sc * (u[m] + sk * v[m]), vv = sc * v[m] * (1 + sk);
            x[m] = cx + uu * cos(th) - vv * sin(th);
            y[m] = cy + uu * sin(th) + vv * cos(th);
        }
        if (k & 1) { /* clockwise too */
            double t = x[1];
            x[1] = x[3], x[3] = t;
            t = y[1], y[1] = y[3], y[3] = t;
        }
        check(x, y, 4);
    }
}

static void test_other_polygons(void **state)
{
    double tx[3] = {0.1, 3.7, 1.2}, ty[3] = {-0.4, 0.9, 2.8};
    double hx[6], hy[6];
    int k;

    (void)state;
    check(tx, ty, 3);
    for (k = 0; k < 6; k++) {
        hx[k] = 5 + 2.3 * cos(k * M_PI / 3 + 0.1);
        hy[k] = -3 + 2.3 * sin(k * M_PI / 3 + 0.1);
    }
    check(hx, hy, 6);
}

/* Edges and vertices exactly on cell boundaries. */
static void test_boundaries(void **state)
{
    double sx[4] = {-0.5, 0.5, 0.5, -0.5}, sy[4] = {-0.5, -0.5, 0.5, 0.5};
    double bx[4] = {-0.5, 1.5, 1.5, -0.5}, by[4] = {0.5, 0.5, 1.5, 1.5};
    double dx[4] = {0, 1, 0, -1}, dy[4] = {-1, 0, 1, 0};
    float area[RAPID_OVERLAP_MAXCELLS];
    double total = -1;
    int i0, j0, w, h, k;

    (void)state;
    /* exactly pixel (0,0) */
    assert_int_equal(rapid_overlap_cells(sx, sy, 4, &i0, &j0, &w, &h, area, &total), 0);
    assert_true(fabs(total - 1) < 1e-12);
    for (k = 0; k < w * h; k++)
        assert_true(fabs(area[k] - ((i0 + k % w == 0 && j0 + k / w == 0) ? 1 : 0)) < 1e-9);
    check(sx, sy, 4);
    check(bx, by, 4);
    check(dx, dy, 4); /* a diamond with vertices on pixel centres */
    for (k = 0; k < 4; k++)
        sx[k] += 0.25, sy[k] -= 0.125;
    check(sx, sy, 4);
}

static void test_refusals(void **state)
{
    double x[4] = {0, 100, 100, 0}, y[4] = {0, 0, 1, 1};
    float area[RAPID_OVERLAP_MAXCELLS];
    double total;
    int i0, j0, w, h;

    (void)state;
    assert_int_equal(rapid_overlap_cells(x, y, 4, &i0, &j0, &w, &h, area, &total),
                     RAPID_E_RANGE);
    x[1] = NAN;
    assert_int_equal(rapid_overlap_cells(x, y, 4, &i0, &j0, &w, &h, area, &total),
                     RAPID_E_RANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_quads),
        cmocka_unit_test(test_other_polygons),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
