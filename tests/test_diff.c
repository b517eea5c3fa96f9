/* test_diff.c - the naive difference of two simulated exposures of the
 * same sky (the second visit against the first, resampled onto its
 * pixels, its uncertainty resampled as a variance): where nothing
 * changed, D / sigma_D is unit normal. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"
#include "rapid/psfops.h"
#include "rapid/sim.h"
#include "testutil.h"

static void test_naive_static_sky(void **state)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_science sci = RAPID_SCIENCE_INIT, ref = RAPID_SCIENCE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs sw = RAPID_WCS_INIT, rw = RAPID_WCS_INIT;
    rapid_diff_ref r;
    rapid_diff_pair p;
    const char *dir = test_path("sim");
    char a[1024], b[1024];
    float *d, *u, *z;
    double med, sig;
    size_t i, n, nan = 0;
    rapid_sim_pointing *pt = NULL;
    int np;

    (void)state;
    rapid_sim_config_init(&c);
    c.size = 512;
    c.nscas = 1;
    c.epochs = 2;
    c.star_density = 3;
    c.sn_rate = 0;          /* nothing changes between the visits */
    c.variable_fraction = 0;
    c.cosmic_rays = 0;
    assert_ok(rapid_sim_run(&c, dir, NULL, NULL, &err), err);
    np = rapid_sim_plan(&c, &pt, &err);
    assert_true(np == 2);
    snprintf(a, sizeof a, "%s/Roman_TDS_simple_model_H158_%d_1.fits", dir,
             pt[1].id);
    snprintf(b, sizeof b, "%s/Roman_TDS_simple_model_H158_%d_1.fits", dir,
             pt[0].id);
    free(pt);
    assert_ok(rapid_science_read(a, NULL, &sci, &err), err);
    assert_ok(rapid_science_read(b, NULL, &ref, &err), err);
    assert_ok(rapid_fits_read_header(a, "SCI", &h, &err), err);
    assert_ok(rapid_wcs_from_header(&sw, &h, &err), err);
    rapid_header_release(&h);
    assert_ok(rapid_fits_read_header(b, "SCI", &h, &err), err);
    assert_ok(rapid_wcs_from_header(&rw, &h, &err), err);
    rapid_header_release(&h);
    r = (rapid_diff_ref){ref.rate.data, NULL, ref.unc.data, ref.rate.nx,
                         ref.rate.ny, &rw, 1.0};
    assert_ok(rapid_diff_prepare(&sci, &sw, &r, &p, &err), err);
    n = (size_t)p.nx * p.ny;
    /* on two threads the same pair, bit for bit: with the uncertainty
     * map given, with none (made from the reference's background), and
     * with a coverage map given too (any map above 0.5: 1 + 10 times the
     * uncertainty) */
    z = malloc((size_t)ref.rate.nx * ref.rate.ny * sizeof *z);
    assert_non_null(z);
    for (i = 0; i < (size_t)ref.rate.nx * ref.rate.ny; i++)
        z[i] = 1 + 10 * ref.unc.data[i];
    for (i = 0; i < 3; i++) {
        rapid_diff_ref r2 = r;
        rapid_diff_pair p1, p2;
        if (i == 1)
            r2.unc = NULL;
        if (i == 2)
            r2.cov = z;
        assert_ok(rapid_diff_prepare_threads(&sci, &sw, &r2, 0, 1, &p1, &err), err);
        assert_ok(rapid_diff_prepare_threads(&sci, &sw, &r2, 0, 2, &p2, &err), err);
        assert_memory_equal(p1.ref.data, p2.ref.data, n * sizeof *p1.ref.data);
        assert_memory_equal(p1.cov.data, p2.cov.data, n * sizeof *p1.cov.data);
        assert_memory_equal(p1.unc.data, p2.unc.data, n * sizeof *p1.unc.data);
        assert_memory_equal(p1.bkg_sci.mean, p2.bkg_sci.mean,
                            (size_t)p1.bkg_sci.gx * p1.bkg_sci.gy *
                                sizeof *p1.bkg_sci.mean);
        assert_memory_equal(p1.bkg_ref.mean, p2.bkg_ref.mean,
                            (size_t)p1.bkg_ref.gx * p1.bkg_ref.gy *
                                sizeof *p1.bkg_ref.mean);
        assert_true(p1.match.scale == p2.match.scale);
        assert_int_equal(p1.match.nstars, p2.match.nstars);
        if (i == 0) /* and the same as rapid_diff_prepare's */
            assert_memory_equal(p.ref.data, p2.ref.data, n * sizeof *p.ref.data);
        rapid_diff_pair_release(&p1);
        rapid_diff_pair_release(&p2);
    }
    free(z);
    d = malloc(n * sizeof *d), u = malloc(n * sizeof *u), z = malloc(n * sizeof *z);
    assert_true(d && u && z);
    rapid_diff_naive(&sci, &p, d, u);
    for (i = 0; i < n; i++) {
        z[i] = d[i] / u[i];
        nan += !isfinite(z[i]);
    }
    assert_true(test_robust(z, NULL, n, &med, &sig) > 100);
    print_message("naive D / sigma_D: median %+.3f, robust sigma %.3f (%zu of "
                  "%zu pixels without data); scale %.4f from %d %s, offset "
                  "(%+.3f, %+.3f) px\n", med, sig, nan, n, p.match.scale,
                  p.match.nstars, p.match.from, p.match.dx_median,
                  p.match.dy_median);
    assert_true(fabs(med) < 0.05);
    assert_true(fabs(sig - 1) < 0.1);
    /* on this small overlap too few stars pair: the zero points' scale
     * (pairing itself is tested in test_gainmatch) */
    assert_true(p.match.nstars < 20);
    assert_string_equal(p.match.from, "zero points");
    assert_true(p.match.scale == 1.0);
    rapid_diff_pair_release(&p);
    /* a reference covering only a sliver of the image (its first 8 rows;
     * fewer pixels than half a background window): refused as too
     * little overlap, with its own code, nothing kept */
    n = (size_t)ref.rate.nx * ref.rate.ny;
    free(z);
    z = calloc(n, sizeof *z);
    assert_non_null(z);
    for (i = 0; i < (size_t)ref.rate.nx * 8; i++)
        z[i] = 1;
    r.cov = z;
    assert_int_equal(rapid_diff_prepare(&sci, &sw, &r, &p, &err),
                     RAPID_E_NOOVERLAP);
    assert_non_null(strstr(err.msg, "too little overlap"));
    assert_null(p.ref.data);
    free(d);
    free(u);
    free(z);
    rapid_science_release(&sci);
    rapid_science_release(&ref);
    rapid_wcs_release(&sw);
    rapid_wcs_release(&rw);
}

/* Missing pieces are refused with a message, nothing half made. */
static void test_errors(void **state)
{
    rapid_science sci = RAPID_SCIENCE_INIT;
    rapid_diff_pair p;
    rapid_diff_ref r;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    float px[16] = {0};

    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(rapid_diff_prepare(&sci, &w, &r, &p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "diff"));
    assert_null(p.ref.data);
    r = (rapid_diff_ref){px, NULL, NULL, 4, 4, &w, 0.0};
    assert_int_equal(rapid_diff_prepare(&sci, &w, &r, &p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "zero-point scale"));
}

static void gaussian(float *p, int n, double sigma)
{
    int i, h = n / 2;

    for (i = 0; i < n * n; i++) {
        double x = i % n - h, y = i / n - h;
        p[i] = (float)exp(-(x * x + y * y) / (2 * sigma * sigma));
    }
}

/* The stars' scale corrected for the two PSFs' light in the 6 px
 * aperture: times EE_ref / EE_sci (sampled Gaussians: about
 * 1 - exp(-r^2 / 2 (s^2 + 1/12)));
 * a scale from the zero points is left alone; PSFs that cannot be used
 * are refused. */
static void test_aperture_correction(void **state)
{
    enum { N = 41 };
    static float ps[N * N], pr[N * N], zero[N * N];
    rapid_diff_pair p;
    rapid_err err = RAPID_ERR_INIT;
    double es, er;

    (void)state;
    gaussian(ps, N, 1.2);
    gaussian(pr, N, 1.8);
    es = rapid_psf_aperture_fraction(ps, N, 6);
    er = rapid_psf_aperture_fraction(pr, N, 6);
    /* each sample spread over its pixel: variance s^2 + 1/12 */
    assert_true(fabs(es - (1 - exp(-9 / (2 * (1.44 + 1.0 / 12))))) < 0.005);
    assert_true(fabs(er - (1 - exp(-9 / (2 * (3.24 + 1.0 / 12))))) < 0.005);
    memset(&p, 0, sizeof p);
    p.match.scale = 1.05;
    p.match.scale_err = 0.01;
    p.match.from = "stars";
    assert_ok(rapid_diff_aperture_correct(&p, ps, N, pr, N, &err), err);
    assert_true(fabs(p.apcorr - er / es) < 1e-12);
    assert_true(fabs(p.match.scale - 1.05 * er / es) < 1e-12);
    assert_true(fabs(p.match.scale_err - 0.01 * er / es) < 1e-12);
    p.match.scale = 1.05;
    p.match.from = "zero points";
    assert_ok(rapid_diff_aperture_correct(&p, ps, N, pr, N, &err), err);
    assert_true(p.apcorr == 1 && p.match.scale == 1.05);
    p.match.from = "stars";
    assert_int_equal(rapid_diff_aperture_correct(&p, ps, N, zero, N, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "no light"));
    assert_int_equal(rapid_diff_aperture_correct(&p, ps, N - 1, pr, N, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "odd-sized"));
    assert_true(p.match.scale == 1.05);
}

/* A unit normal deviate (Box-Muller on test_uniform). */
static double normal(uint64_t *g)
{
    double u = test_uniform(g), v = test_uniform(g);

    return sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v);
}

/* The median of D / sigma_D over columns [x0, x1) and its sampling error
 * (white noise: 1.2533 / sqrt(n)). */
static double strip_median(const float *d, const float *u, int nx, int ny,
                           int x0, int x1, double *e)
{
    float *v = malloc((size_t)nx * ny * sizeof *v);
    double med, sig;
    size_t n = 0;
    int x, y;

    assert_non_null(v);
    for (y = 0; y < ny; y++)
        for (x = x0; x < x1; x++)
            if (isfinite(d[(size_t)y * nx + x]))
                v[n++] = d[(size_t)y * nx + x] / u[(size_t)y * nx + x];
    assert_true(test_robust(v, NULL, n, &med, &sig) > 100);
    *e = 1.2533 * sig / sqrt((double)n);
    free(v);
    return med;
}

/* The differential background across a step in the reference's sky where
 * its coverage changes (a coadd whose inputs have their own skies): on
 * noise alone (no sources), the reference one input deep on the west
 * (x < XSTEP), five deep east of it, its sky STEP (0.3 sigma_D) higher
 * on the west.  The naive difference has no level on either side: its
 * median there is within 3 of its sampling errors of 0 (the windows of
 * the differential background alone left -0.022 +- 0.004 on the west).
 * In the 60 px on each side of the step, where windows of 128 px
 * interpolated between their centres spread it, what is left is printed
 * (-0.06 and +0.04 sigma_D; -0.08 and +0.05 with the windows alone). */
#define NPIX 512
#define XSTEP 160
#define STEP 0.3
static void test_coverage_step(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_science sci = RAPID_SCIENCE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_diff_pair p;
    rapid_diff_ref r;
    double crval[2] = {150, 2}, crpix[2] = {256.5, 256.5};
    double cd[2][2] = {{-0.11 / 3600, 0}, {0, 0.11 / 3600}}, med, e;
    static const int x0[4] = {0, XSTEP, XSTEP - 60, XSTEP};
    static const int x1[4] = {XSTEP, NPIX, XSTEP, XSTEP + 60};
    size_t i, m = (size_t)NPIX * NPIX;
    float *ri = malloc(m * sizeof *ri), *rc = malloc(m * sizeof *rc);
    float *ru = malloc(m * sizeof *ru), *d = malloc(m * sizeof *d);
    float *u = malloc(m * sizeof *u);
    uint64_t g = 77;
    int k, bad = 0;

    (void)state;
    assert_true(ri && rc && ru && d && u);
    assert_ok(rapid_wcs_from_terms(&w, crval, crpix, cd, NULL, NPIX, NPIX,
                                   &err), err);
    assert_ok(rapid_image_alloc(&sci.rate, NPIX, NPIX, 0, &err), err);
    assert_ok(rapid_image_alloc(&sci.unc, NPIX, NPIX, 1, &err), err);
    sci.exptime = 100, sci.gain = 1;
    for (i = 0; i < m; i++) {
        int west = (int)(i % NPIX) < XSTEP;
        sci.rate.data[i] = (float)(2 + normal(&g));
        rc[i] = west ? 1 : 5;
        ru[i] = west ? 1.0f : 0.45f;
        ri[i] = (float)(1 + (west ? STEP : 0) + ru[i] * normal(&g));
    }
    r = (rapid_diff_ref){ri, rc, ru, NPIX, NPIX, &w, 1.0};
    assert_ok(rapid_diff_prepare(&sci, &w, &r, &p, &err), err);
    assert_true(p.match.scale == 1.0);
    rapid_diff_naive(&sci, &p, d, u);
    for (k = 0; k < 4; k++) {
        med = strip_median(d, u, NPIX, NPIX, x0[k], x1[k], &e);
        print_message("columns %d-%d: D / sigma_D median %+.4f +- %.4f\n",
                      x0[k], x1[k] - 1, med, e);
        bad += k < 2 && !(fabs(med) < 3 * e);
    }
    assert_int_equal(bad, 0);
    rapid_diff_pair_release(&p);
    rapid_science_release(&sci);
    rapid_wcs_release(&w);
    free(ri);
    free(rc);
    free(ru);
    free(d);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naive_static_sky),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_aperture_correction),
        cmocka_unit_test(test_coverage_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
