/* test_sim_zodi.c - the simulator's zodiacal light against the published
 * figures: the Sun's position, the ecliptic coordinates, Leinert et al.'s
 * (1998) table of the zodiacal brightness, and the sky measured on small
 * empty simulated images at the ecliptic pole, in the ecliptic 90 and 60
 * degrees from the Sun, and at one place on two dates half a year apart. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/sim.h"
#include "testutil.h"

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)
#define EPS_J2000 23.4392911
#define POLE 77.0 /* Leinert's Table 17 at the ecliptic pole */

/* ------------------------------------------------------------ geometry */

/* Ecliptic (lambda, beta) to equatorial, J2000, by rotating the unit
 * vector about the x axis: another route than the library's. */
static void ecl_to_eq(double lam, double beta, double *ra, double *dec)
{
    double e = EPS_J2000 * D2R, x, y, z, y2, z2;

    x = cos(beta * D2R) * cos(lam * D2R);
    y = cos(beta * D2R) * sin(lam * D2R);
    z = sin(beta * D2R);
    y2 = y * cos(e) - z * sin(e);
    z2 = y * sin(e) + z * cos(e);
    *ra = fmod(atan2(y2, x) * R2D + 360.0, 360.0);
    *dec = asin(z2) * R2D;
}

/* The Sun's longitude on the J2000 ecliptic at mjd. */
static double sun_j2000(double mjd)
{
    return rapid_sun_longitude(mjd) - 1.396971 * (mjd - 51544.5) / 36525.0;
}

static double angdiff(double a, double b)
{
    double d = fmod(fabs(a - b), 360.0);

    return d > 180 ? 360 - d : d;
}

static void test_sun_and_ecliptic(void **state)
{
    double lam, beta, ra, dec;
    int k;

    (void)state;
    /* Meeus, Astronomical Algorithms, example 25.a: 1992 October 13.0
     * TD, the Sun's apparent longitude 199.90895 degrees (equinox of date) */
    printf("# Sun 1992-10-13.0: %.5f deg (Meeus 199.90895)\n",
           rapid_sun_longitude(48908.0));
    assert_true(angdiff(rapid_sun_longitude(48908.0), 199.90895) < 0.01);
    /* the March equinox of 2028 falls on March 20 */
    assert_true(rapid_sun_longitude(61850.0) > 359.0);
    assert_true(rapid_sun_longitude(61851.0) < 1.0);
    /* a year later it is back to within a day's motion */
    assert_true(angdiff(rapid_sun_longitude(61850.5 + 365.2422),
                        rapid_sun_longitude(61850.5)) < 0.02);
    /* the poles and the solstice point */
    rapid_ecliptic_from_equatorial(270.0, 90 - EPS_J2000, &lam, &beta);
    assert_true(fabs(beta - 90) < 1e-5);
    rapid_ecliptic_from_equatorial(90.0, -(90 - EPS_J2000), &lam, &beta);
    assert_true(fabs(beta + 90) < 1e-5);
    rapid_ecliptic_from_equatorial(90.0, EPS_J2000, &lam, &beta);
    assert_true(fabs(lam - 90) < 1e-9 && fabs(beta) < 1e-9);
    /* and anywhere, against the rotation */
    for (k = 0; k < 50; k++) {
        double l0 = 7.3 * k, b0 = -85 + 3.4 * k;
        ecl_to_eq(l0, b0, &ra, &dec);
        rapid_ecliptic_from_equatorial(ra, dec, &lam, &beta);
        assert_true(angdiff(lam, l0) < 1e-9 && fabs(beta - b0) < 1e-9);
    }
}

/* ---------------------------------------------------------------- model */

/* At the nodes of the published table the model is the table; between
 * them it lies between its neighbours; it is symmetric about the ecliptic
 * and the Sun-antisun line. */
static void test_leinert_table(void **state)
{
    static const struct { double beta, dl, s10; } node[] = {
        {90, 0, 77},   {90, 120, 77}, {0, 90, 259},  {0, 60, 505},
        {0, 180, 230}, {0, 135, 179}, {30, 90, 132}, {45, 45, 166},
        {60, 120, 77}, {75, 165, 72}, {15, 15, 1860}, {20, 0, 1610},
    };
    size_t i;
    double a, b, m;

    (void)state;
    for (i = 0; i < sizeof node / sizeof node[0]; i++)
        assert_true(fabs(rapid_zodi_relative(node[i].beta, node[i].dl) /
                         (node[i].s10 / POLE) - 1) < 1e-12);
    a = rapid_zodi_relative(0, 60);
    b = rapid_zodi_relative(0, 75);
    m = rapid_zodi_relative(0, 67);
    assert_true(m < a && m > b);
    assert_true(rapid_zodi_relative(-30, 90) == rapid_zodi_relative(30, 90));
    assert_true(fabs(rapid_zodi_relative(10, 250) -
                     rapid_zodi_relative(10, 110)) < 1e-12);
    assert_true(fabs(rapid_zodi_relative(10, -110) -
                     rapid_zodi_relative(10, 110)) < 1e-12);
    /* next to the Sun, where the table stops: finite and bright */
    assert_true(rapid_zodi_relative(0, 0) > 100);
    assert_true(isnan(rapid_zodi_relative(NAN, 90)));
}

/* ---------------------------------------------------------------- images */

typedef struct sky {
    double zodi;     /* measured zodiacal light, e/pixel/s */
    double zodifac;  /* ZODIFAC of the header */
    double dlon;     /* SUN_DLON of the header */
    double beta;     /* ECL_LAT of the header */
} sky;

static double hdr_double(const rapid_header *h, const char *key)
{
    rapid_err err = RAPID_ERR_INIT;
    double v = 0;

    assert_ok(rapid_header_get_double(h, key, &v, &err), err);
    return v;
}

/* A 256 x 256 H158 image of SCA 1, 302 s, sky, dark and noise only,
 * looking at (ra, dec) with mid-exposure at mjd: its zodiacal light
 * measured from the mean, less the dark current and the thermal
 * background.  Each seed its own noise. */
static sky measure(double ra, double dec, double mjd, uint64_t seed)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *scene = NULL;
    rapid_psf_field psf;
    rapid_image img = RAPID_IMAGE_INIT;
    const rapid_filter *f = rapid_filter_by_name("H158");
    double s = 0, t;
    size_t i, n;
    sky out;
    int np;

    rapid_sim_config_init(&c);
    c.seed = seed;
    c.size = 256;
    c.ra = ra;
    c.dec = dec;
    c.mjd_start = mjd;
    c.epochs = 1;
    c.nscas = 1;
    c.with_sources = 0;
    c.cosmic_rays = 0;
    c.hot_pixels = 0;
    c.defects = 0;
    c.persistence = 0;
    np = rapid_sim_plan(&c, &p, &err);
    if (np <= 0)
        fail_msg("plan: %d: %s", np, err.msg);
    /* exactly there, not dithered */
    p[0].ra = ra;
    p[0].dec = dec;
    p[0].mjd = mjd - p[0].exptime / 2 / 86400.0;
    assert_ok(rapid_sim_scene_make(&c, p, 1, &scene, &err), err);
    memset(&psf, 0, sizeof psf);
    assert_ok(rapid_psf_field_make(&psf, f, 1, c.size, c.size, NULL, &err), err);
    assert_ok(rapid_sim_render(&c, scene, &p[0], 1, &psf, &img, NULL, &err),
              err);
    t = p[0].exptime;
    assert_true(t == 302);
    n = (size_t)img.nx * img.ny;
    for (i = 0; i < n; i++)
        s += img.data[i];
    out.zodi = s / n * RAPID_GAIN / t - RAPID_DARK - f->thermal;
    out.zodifac = hdr_double(&img.hdr, "ZODIFAC");
    out.dlon = hdr_double(&img.hdr, "SUN_DLON");
    out.beta = hdr_double(&img.hdr, "ECL_LAT");
    printf("# H158 at (%.4f, %.4f) MJD %.3f: beta %.3f, lambda - lambda_sun "
           "%.3f, Sun %.1f deg away: zodiacal light %.5f e/s (ZODIFAC "
           "%.5f)\n", ra, dec, mjd, out.beta, out.dlon,
           hdr_double(&img.hdr, "SUNANGLE"), out.zodi, out.zodifac);
    rapid_image_release(&img);
    rapid_psf_field_release(&psf);
    rapid_sim_scene_free(scene);
    free(p);
    return out;
}

/* H158's count rate at minimum zodiacal light (roman-technical-information)
 * and the factors of Leinert et al.'s table.  Statistical error of a mean
 * over 65536 pixels: 0.06 % of the zodiacal light at the pole; the
 * tolerance, 1 %, is the table's own rounding at these levels. */
#define H158_MIN_ZODI 0.24
#define TOL 0.01

static void test_sky_by_position(void **state)
{
    const double mjd = 61850.5; /* 2028-03-20 12:00 UTC, at the equinox */
    double ra, dec, sun = sun_j2000(mjd);
    sky pole, quad, sixty;

    (void)state;
    /* the south ecliptic pole: the published level itself */
    pole = measure(90.0, -(90 - EPS_J2000), mjd, 1);
    assert_true(fabs(pole.zodi / H158_MIN_ZODI - 1) < TOL);
    assert_true(fabs(pole.beta + 90) < 1e-3);
    /* in the ecliptic, 90 degrees from the Sun: 259 / 77 */
    ecl_to_eq(sun + 90, 0, &ra, &dec);
    quad = measure(ra, dec, mjd, 2);
    assert_true(fabs(quad.dlon - 90) < 1e-6 && fabs(quad.beta) < 1e-6);
    assert_true(fabs(quad.zodi / (H158_MIN_ZODI * 259 / POLE) - 1) < TOL);
    /* 60 degrees from the Sun, on its other side: 505 / 77 */
    ecl_to_eq(sun - 60, 0, &ra, &dec);
    sixty = measure(ra, dec, mjd, 3);
    assert_true(fabs(sixty.dlon - 60) < 1e-6);
    assert_true(fabs(sixty.zodi / (H158_MIN_ZODI * 505 / POLE) - 1) < TOL);
    /* the header says what the image holds */
    assert_true(fabs(quad.zodi / pole.zodi / (quad.zodifac / pole.zodifac) - 1) < TOL);
    assert_true(fabs(sixty.zodi / pole.zodi / (sixty.zodifac / pole.zodifac) - 1) < TOL);
}

/* One place in the ecliptic 120 degrees east of the Sun at the March
 * equinox; at the September equinox, half a year later, the Sun has gone
 * round to 60 degrees west of it: 188 / 77, then 505 / 77. */
static void test_sky_by_date(void **state)
{
    const double mjd1 = 61850.5;
    double ra, dec, want, dl2, lo = mjd1 + 175, hi = mjd1 + 195, mjd2;
    sky a, b;
    int k;

    (void)state;
    /* when the Sun is 180 degrees on: 186 days later (the Earth is
     * slower in that half of its orbit) */
    for (k = 0; k < 60; k++) {
        mjd2 = (lo + hi) / 2;
        if (fmod(sun_j2000(mjd2) - sun_j2000(mjd1) + 720, 360) < 180)
            lo = mjd2;
        else
            hi = mjd2;
    }
    mjd2 = (lo + hi) / 2;
    printf("# the Sun 180 deg on after %.3f days\n", mjd2 - mjd1);
    assert_true(fabs(mjd2 - mjd1 - 365.2422 / 2) < 5);
    ecl_to_eq(sun_j2000(mjd1) + 120, 0, &ra, &dec);
    a = measure(ra, dec, mjd1, 4);
    b = measure(ra, dec, mjd2, 5);
    dl2 = angdiff(sun_j2000(mjd2), sun_j2000(mjd1) + 120);
    assert_true(fabs(a.dlon - 120) < 1e-6);
    assert_true(fabs(b.dlon - dl2) < 1e-6 && fabs(dl2 - 60) < 1e-6);
    assert_true(fabs(a.zodi / (H158_MIN_ZODI * 188 / POLE) - 1) < TOL);
    want = rapid_zodi_relative(0, dl2) / rapid_zodi_relative(0, 120);
    printf("# half a year later: %.5f times brighter (model %.5f, %.2f deg "
           "from the Sun in longitude; the table at 60 deg: %.4f)\n",
           b.zodi / a.zodi, want, dl2, 505.0 / 188);
    assert_true(fabs(b.zodi / a.zodi / want - 1) < TOL);
    assert_true(fabs(b.zodi / a.zodi / (505.0 / 188) - 1) < TOL);
}

/* The same seed gives the same sky, pixel for pixel. */
static void test_deterministic(void **state)
{
    sky a, b;

    (void)state;
    a = measure(150.0, 10.0, 62100.25, 6);
    b = measure(150.0, 10.0, 62100.25, 6);
    assert_true(a.zodi == b.zodi && a.zodifac == b.zodifac);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sun_and_ecliptic),
        cmocka_unit_test(test_leinert_table),
        cmocka_unit_test(test_sky_by_position),
        cmocka_unit_test(test_sky_by_date),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
