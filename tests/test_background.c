/* test_background.c - the sky background against a known sky: a tilted
 * plane with noise and bright sources, and the simulator's sky. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/background.h"
#include "rapid/fits.h"
#include "rapid/sim.h"
#include "testutil.h"

static double gauss(uint64_t *s)
{
    double u = test_uniform(s), v = test_uniform(s);
    return sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* a + bx x + by y, noise sigma, nsrc round sources of peak `peak`, and a
 * block of NaN (no data) over [0, nanw) x [0, nanh). */
static float *plane_image(int nx, int ny, double a, double bx, double by,
                          double sigma, int nsrc, double peak, int nanw,
                          int nanh)
{
    float *img = malloc((size_t)nx * ny * sizeof *img);
    uint64_t s = 42;
    int x, y, k;

    assert_non_null(img);
    for (y = 0; y < ny; y++)
        for (x = 0; x < nx; x++)
            img[(size_t)y * nx + x] =
                (float)(a + bx * x + by * y + sigma * gauss(&s));
    for (k = 0; k < nsrc; k++) {
        double cx = test_uniform(&s) * nx, cy = test_uniform(&s) * ny;
        for (y = (int)cy - 8; y <= (int)cy + 8; y++)
            for (x = (int)cx - 8; x <= (int)cx + 8; x++)
                if (x >= 0 && y >= 0 && x < nx && y < ny)
                    img[(size_t)y * nx + x] += (float)(
                        peak * exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) /
                                   (2 * 1.5 * 1.5)));
    }
    for (y = 0; y < nanh; y++)
        for (x = 0; x < nanw; x++)
            img[(size_t)y * nx + x] = NAN;
    return img;
}

/* The worst error of the background against the plane between the
 * outermost window centres (where a plane is interpolated exactly, so only
 * the window means' noise and the sources' residue are left). */
static double plane_error(const rapid_background *b, int nx, int ny, double a,
                          double bx, double by)
{
    double worst = 0;
    int x, y;

    for (y = 50; y < ny - 50; y += 7)
        for (x = 50; x < nx - 50; x += 7)
            worst = fmax(worst, fabs(rapid_background_at(b, x, y) -
                                     (a + bx * x + by * y)));
    return worst;
}

static void test_plane(void **state)
{
    enum { NX = 1000, NY = 800 };
    const double a = 100, bx = 0.02, by = -0.015, sigma = 5;
    float *img = plane_image(NX, NY, a, bx, by, sigma, 400, 500, 0, 0);
    float *bare = plane_image(NX, NY, a, bx, by, sigma, 0, 0, 0, 0);
    float *map = malloc((size_t)NX * NY * sizeof *map);
    rapid_background_opts o;
    rapid_background b = RAPID_BACKGROUND_INIT;
    rapid_background bare_b = RAPID_BACKGROUND_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0;
    float before;

    (void)state;
    rapid_background_opts_init(&o);
    assert_int_equal(o.box, 500);
    o.box = 100;
    assert_int_equal(rapid_background_make(img, NX, NY, &o, &b, &err), 0);
    assert_int_equal(b.gx, 10);
    assert_int_equal(b.gy, 8);
    assert_int_equal(b.nfilled, 0);
    /* 400 sources of peak 500: the clip takes their cores, their wings below
     * 3 sigma stay in the means (~0.1 a window here) */
    worst = plane_error(&b, NX, NY, a, bx, by);
    assert_int_equal(rapid_background_make(bare, NX, NY, &o, &bare_b, &err), 0);
    print_message("plane: worst error %.3f with sources, %.3f without (sigma "
                  "%.1f / 100 px = %.3f); median rms %.3f\n", worst,
                  plane_error(&bare_b, NX, NY, a, bx, by), sigma, sigma / 100,
                  b.median_rms);
    assert_true(plane_error(&bare_b, NX, NY, a, bx, by) < 5 * sigma / 100);
    assert_true(worst < 0.5);
    rapid_background_release(&bare_b);
    free(bare);
    assert_true(fabs(b.median_rms / sigma - 1) < 0.03);
    assert_true(fabs(rapid_background_rms_at(&b, 500, 400) / sigma - 1) < 0.05);
    /* beyond them it is held at the edge value */
    assert_true(fabs(rapid_background_at(&b, 0, 400) -
                     rapid_background_at(&b, 49.5, 400)) < 1e-6);
    /* the map and the subtraction agree with the point values */
    rapid_background_fill(&b, map);
    assert_true(fabs(map[(size_t)400 * NX + 500] -
                     rapid_background_at(&b, 500, 400)) < 1e-3);
    before = img[(size_t)400 * NX + 500];
    rapid_background_subtract(&b, img);
    assert_true(fabs(img[(size_t)400 * NX + 500] -
                     (before - map[(size_t)400 * NX + 500])) < 1e-4);
    rapid_background_release(&b);
    free(img);
    free(map);
}

/* Windows without data are filled from their neighbours; NaN pixels stay
 * NaN after the subtraction. */
static void test_gaps(void **state)
{
    enum { NX = 600, NY = 600 };
    float *img = plane_image(NX, NY, 50, 0, 0, 3, 0, 0, 250, 250);
    rapid_background_opts o;
    rapid_background b = RAPID_BACKGROUND_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    rapid_background_opts_init(&o);
    o.box = 100;
    assert_int_equal(rapid_background_make(img, NX, NY, &o, &b, &err), 0);
    /* windows of 100 x 100: the 2 x 2 in the corner are empty, the 2 + 2
     * beside them half empty (still usable at 50 %): 4 filled */
    assert_int_equal(b.nfilled, 4);
    assert_true(fabs(rapid_background_at(&b, 10, 10) - 50) < 0.2);
    rapid_background_subtract(&b, img);
    assert_true(isnan(img[0]));
    assert_true(fabs(img[(size_t)400 * NX + 400]) < 15);
    rapid_background_release(&b);
    free(img);
}

static void test_errors(void **state)
{
    float *img = plane_image(64, 64, 1, 0, 0, 1, 0, 0, 64, 64); /* all NaN */
    rapid_background_opts o;
    rapid_background b = RAPID_BACKGROUND_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    rapid_background_opts_init(&o);
    assert_int_equal(rapid_background_make(img, 64, 64, &o, &b, &err),
                     RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "usable"));
    assert_null(b.mean);
    o.box = 2;
    assert_int_equal(rapid_background_make(img, 64, 64, &o, &b, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_background_make(NULL, 64, 64, &o, &b, &err),
                     RAPID_E_ARG);
    rapid_background_release(&b);
    rapid_background_release(NULL);
    free(img);
}

/* The background of a simulated H158 image: with the sky alone it is the
 * simulator's sky level (SKY_MEAN) and its noise that of sky and read
 * noise; with stars and galaxies the faint ones below the clip raise it a
 * little, never lower it. */
static void simulated(int with_sources, double *level, double *rms,
                      double *sky, double *want_rms)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_background_opts o;
    rapid_background b = RAPID_BACKGROUND_INIT;
    const char *dir = test_path(with_sources ? "sim1" : "sim0");
    char path[1024];
    double rn;

    rapid_sim_config_init(&c);
    c.size = 1024;
    c.nscas = 1;
    c.epochs = 1;
    c.cosmic_rays = 0;
    c.hot_pixels = 0;
    c.with_sources = with_sources;
    assert_int_equal(rapid_sim_run(&c, dir, NULL, NULL, &err), 0);
    snprintf(path, sizeof path, "%s/Roman_TDS_simple_model_H158_1_1.fits",
             dir);
    assert_int_equal(rapid_fits_read_image(path, "SCI", &img, &err), 0);
    assert_int_equal(rapid_header_get_double(&img.hdr, "SKY_MEAN", sky, &err),
                     0);
    assert_int_equal(rapid_header_get_double(&img.hdr, "RDNOISE", &rn, &err),
                     0);
    rapid_background_opts_init(&o);
    assert_int_equal(rapid_background_make(img.data, img.nx, img.ny, &o, &b,
                                           &err), 0);
    *want_rms = sqrt(*sky + rn * rn); /* gain 1 */
    *level = rapid_background_at(&b, 512, 512);
    *rms = b.median_rms;
    print_message("simulated H158 %s sources: background %.3f DN (SKY_MEAN "
                  "%.3f), rms %.3f (sky + read noise %.3f)\n",
                  with_sources ? "with" : "without", *level, *sky, *rms,
                  *want_rms);
    rapid_background_release(&b);
    rapid_image_release(&img);
}

static void test_simulated_sky(void **state)
{
    double level, rms, sky, want_rms;

    (void)state;
    simulated(0, &level, &rms, &sky, &want_rms);
    /* 2 x 2 windows of 512^2: the means' noise is ~0.02 % */
    assert_true(fabs(level / sky - 1) < 0.002);
    assert_true(fabs(rms / want_rms - 1) < 0.01);
    simulated(1, &level, &rms, &sky, &want_rms);
    assert_true(level > sky && level / sky - 1 < 0.03);
    assert_true(rms > want_rms && rms / want_rms - 1 < 0.06);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plane),
        cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_simulated_sky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
