/* test_pixmap.c - the interpolated pixel map against the WCS itself. */
#include <math.h>
#include <string.h>

#include "rapid/pixmap.h"
#include "testutil.h"

/* A Roman-like detector: 4088^2, 0.11"/px, rotated 33 deg, 4th-order SIP
 * giving several pixels of distortion at the corners. */
static void detector(rapid_wcs *w, double ra, double dec)
{
    double crval[2] = {ra, dec}, crpix[2] = {2044.5, 2044.5}, cd[2][2];
    double s = 0.11 / 3600, t = 33 * M_PI / 180;
    rapid_sip sip;

    memset(&sip, 0, sizeof sip);
    cd[0][0] = -s * cos(t), cd[0][1] = s * sin(t);
    cd[1][0] = s * sin(t), cd[1][1] = s * cos(t);
    sip.a_order = sip.b_order = 4;
    sip.a[2][0] = 2.1e-7, sip.a[1][1] = -1.3e-7, sip.a[0][2] = 0.8e-7;
    sip.a[3][0] = 3.0e-11, sip.a[2][1] = -1.1e-11, sip.a[0][3] = -0.7e-11;
    sip.a[4][0] = 4e-15, sip.a[2][2] = -3e-15;
    sip.b[0][2] = -1.7e-7, sip.b[1][1] = 1.0e-7, sip.b[2][0] = -0.6e-7;
    sip.b[0][3] = 2.4e-11, sip.b[1][2] = 0.9e-11, sip.b[0][4] = -3e-15;
    assert_int_equal(rapid_wcs_from_terms(w, crval, crpix, cd, &sip, 4088, 4088, NULL), 0);
}

static void test_against_wcs(void **state)
{
    rapid_wcs in = RAPID_WCS_INIT, out = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0, rowx[512], rowy[512];
    uint64_t s = 5;
    int k;

    (void)state;
    detector(&in, 11.08, -43.79);
    assert_int_equal(rapid_wcs_tan_grid(&out, 11.067073, -43.80449, 7000, 7000, 0.11, NULL), 0);
    assert_int_equal(rapid_pixmap_make(&m, &in, &out, -0.5, 4087.5, -0.5, 4087.5, 64, &err), 0);
    for (k = 0; k < 3000; k++) {
        double x = -0.5 + 4088 * test_uniform(&s), y = -0.5 + 4088 * test_uniform(&s);
        double ra, dec, wx, wy, px, py;
        if (k < 4) { /* the outer corners */
            x = k & 1 ? 4087.5 : -0.5;
            y = k & 2 ? 4087.5 : -0.5;
        }
        assert_int_equal(rapid_wcs_pix2sky(&in, 1, &x, &y, &ra, &dec, NULL), 0);
        assert_int_equal(rapid_wcs_sky2pix(&out, 1, &ra, &dec, &wx, &wy, NULL), 0);
        rapid_pixmap_eval(&m, x, y, &px, &py);
        worst = fmax(worst, hypot(px - wx, py - wy));
    }
    print_message("pixel map worst error %.3g px\n", worst);
    if (worst > 1e-4)
        fail_msg("pixel map error %.3g px", worst);
    /* a row at a time gives the same as point by point */
    rapid_pixmap_row(&m, 1234.5, -0.5, 1.0, 512, rowx, rowy);
    for (k = 0; k < 512; k++) {
        double px, py;
        rapid_pixmap_eval(&m, -0.5 + k, 1234.5, &px, &py);
        assert_true(fabs(px - rowx[k]) < 1e-9 && fabs(py - rowy[k]) < 1e-9);
    }
    rapid_pixmap_release(&m);
    rapid_wcs_release(&in);
    rapid_wcs_release(&out);
}

/* The same grid in and out: the identity, to rounding. */
static void test_identity(void **state)
{
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    uint64_t s = 8;
    int k;

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&w, 200.0, 30.0, 1000, 800, 0.11, NULL), 0);
    assert_int_equal(rapid_pixmap_make(&m, &w, &w, 0, 999, 0, 799, 0, NULL), 0);
    for (k = 0; k < 1000; k++) {
        double x = 999 * test_uniform(&s), y = 799 * test_uniform(&s), px, py;
        rapid_pixmap_eval(&m, x, y, &px, &py);
        assert_true(fabs(px - x) < 1e-7 && fabs(py - y) < 1e-7);
    }
    rapid_pixmap_release(&m);
    rapid_wcs_release(&w);
}

/* Rows in steps forwards and backwards, across many node intervals and
 * beyond the grid on either side (where the end intervals extrapolate),
 * give the same as point by point. */
static void test_rows(void **state)
{
    static const struct { double x0, dx; int n; } rows[] = {
        {-0.5, 1.0, 4089}, {-300.0, 1.0, 700}, {3900.25, 1.0, 600}, {-0.5, 16.0, 257},
        {4200.0, -1.0, 4500}, {1000.0, -16.0, 40}, {17.3, 0.37, 3000}, {64.0, 64.0, 64},
        {2000.0, 0.0, 5}, {1234.5, 1.0, 1}, {-0.5, 1.0, 0},
    };
    rapid_wcs in = RAPID_WCS_INIT, out = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    static double rowx[5000], rowy[5000];
    int r, k;

    (void)state;
    detector(&in, 11.08, -43.79);
    assert_int_equal(rapid_wcs_tan_grid(&out, 11.067073, -43.80449, 7000, 7000, 0.11, NULL), 0);
    assert_int_equal(rapid_pixmap_make(&m, &in, &out, -0.5, 4087.5, -0.5, 4087.5, 64, NULL), 0);
    for (r = 0; r < (int)(sizeof rows / sizeof rows[0]); r++) {
        double y = 100.5 + 397 * r;
        rowx[rows[r].n] = rowy[rows[r].n] = -1; /* past the end: untouched */
        rapid_pixmap_row(&m, y, rows[r].x0, rows[r].dx, rows[r].n, rowx, rowy);
        for (k = 0; k < rows[r].n; k++) {
            double px, py;
            rapid_pixmap_eval(&m, rows[r].x0 + k * rows[r].dx, y, &px, &py);
            if (!(fabs(px - rowx[k]) < 1e-9 && fabs(py - rowy[k]) < 1e-9))
                fail_msg("row %d point %d: (%.12g, %.12g) point by point (%.12g, %.12g)",
                         r, k, rowx[k], rowy[k], px, py);
        }
        assert_true(rowx[rows[r].n] == -1 && rowy[rows[r].n] == -1);
    }
    rapid_pixmap_release(&m);
    rapid_wcs_release(&in);
    rapid_wcs_release(&out);
}

/* A row across more node columns than rapid_pixmap_row keeps on its stack
 * (nodes every 4 pixels: 1000 columns over a detector's width) is the same
 * as point by point too. */
static void test_rows_wide(void **state)
{
    rapid_wcs in = RAPID_WCS_INIT, out = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    static double rowx[4089], rowy[4089];
    int r, k;

    (void)state;
    detector(&in, 11.08, -43.79);
    assert_int_equal(rapid_wcs_tan_grid(&out, 11.067073, -43.80449, 7000, 7000, 0.11, NULL), 0);
    assert_int_equal(rapid_pixmap_make(&m, &in, &out, -0.5, 4087.5, 90, 140, 4, NULL), 0);
    assert_true(m.gx > 1000);
    for (r = 0; r < 3; r++) {
        double y = 100.5 + 13.25 * r, x0 = r == 2 ? 4087.5 : -0.5, dx = r == 2 ? -1 : 1;
        rapid_pixmap_row(&m, y, x0, dx, 4088, rowx, rowy);
        for (k = 0; k < 4088; k++) {
            double px, py;
            rapid_pixmap_eval(&m, x0 + k * dx, y, &px, &py);
            if (!(fabs(px - rowx[k]) < 1e-9 && fabs(py - rowy[k]) < 1e-9))
                fail_msg("row %d point %d: (%.12g, %.12g) point by point (%.12g, %.12g)",
                         r, k, rowx[k], rowy[k], px, py);
        }
    }
    rapid_pixmap_release(&m);
    rapid_wcs_release(&in);
    rapid_wcs_release(&out);
}

static void test_errors(void **state)
{
    rapid_wcs a = RAPID_WCS_INIT, b = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&a, 10.0, 0.0, 100, 100, 0.11, NULL), 0);
    assert_int_equal(rapid_wcs_tan_grid(&b, 190.0, 0.0, 100, 100, 0.11, NULL), 0);
    /* the far side of the sky has no place on a tangent plane */
    assert_int_not_equal(rapid_pixmap_make(&m, &a, &b, 0, 99, 0, 99, 16, &err), 0);
    assert_non_null(strstr(err.msg, "pixel map"));
    assert_null(m.ox);
    assert_int_equal(rapid_pixmap_make(&m, &a, &a, 10, 5, 0, 99, 16, &err), RAPID_E_ARG);
    rapid_wcs_release(&a);
    rapid_wcs_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_wcs),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_rows_wide),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
