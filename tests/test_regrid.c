/* test_regrid.c - an image onto another's pixels (a north-up TAN grid onto
 * a simulated detector's TAN-SIP grid), against the WCS directly: a flat
 * sky keeps its value per unit area, flux is conserved, sources land where
 * the two WCS put them, holes stay holes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/regrid.h"
#include "rapid/sim.h"
#include "testutil.h"

enum { RN = 900, SN = 600 }; /* reference side, science side */

typedef struct pair {
    rapid_wcs ref, sci;
} pair;

/* A detector of the simulator (TAN-SIP, rolled) and a north-up TAN grid of
 * the same pixel scale around its centre, large enough to hold it. */
static void make_pair(pair *p)
{
    rapid_sim_config c;
    rapid_sim_pointing *pt = NULL;
    rapid_err err = RAPID_ERR_INIT;
    double x = SN / 2.0 - 0.5, y = SN / 2.0 - 0.5, ra, dec;

    rapid_sim_config_init(&c);
    c.size = SN;
    c.nscas = 1;
    c.epochs = 1;
    assert_true(rapid_sim_plan(&c, &pt, &err) >= 1);
    p->sci = (rapid_wcs)RAPID_WCS_INIT;
    p->ref = (rapid_wcs)RAPID_WCS_INIT;
    assert_ok(rapid_sim_detector_wcs(&c, &pt[0], 1, &p->sci, &err), err);
    assert_ok(rapid_wcs_pix2sky(&p->sci, 1, &x, &y, &ra, &dec, &err), err);
    assert_ok(rapid_wcs_tan_grid(&p->ref, ra, dec, RN, RN, 0.11, &err),
              err);
    free(pt);
}

static void release_pair(pair *p)
{
    rapid_wcs_release(&p->ref);
    rapid_wcs_release(&p->sci);
}

/* Input pixels per output pixel at (x, y), from the WCS: the output pixel's
 * corners mapped onto the input. */
static double area_by_wcs(pair *p, double x, double y)
{
    double cx[4] = {x - 0.5, x + 0.5, x + 0.5, x - 0.5};
    double cy[4] = {y - 0.5, y - 0.5, y + 0.5, y + 0.5};
    double ra[4], dec[4], u[4], w[4];

    assert_int_equal(rapid_wcs_pix2sky(&p->sci, 4, cx, cy, ra, dec, NULL), 0);
    assert_int_equal(rapid_wcs_sky2pix(&p->ref, 4, ra, dec, u, w, NULL), 0);
    return 0.5 * fabs((u[2] - u[0]) * (w[3] - w[1]) -
                      (w[2] - w[0]) * (u[3] - u[1]));
}

static void test_flat(void **state)
{
    pair p;
    float *in = malloc((size_t)RN * RN * sizeof *in);
    float *out = malloc((size_t)SN * SN * sizeof *out);
    float *cov = malloc((size_t)SN * SN * sizeof *cov);
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0, lo = INFINITY, hi = 0;
    int x, y;
    size_t k;

    (void)state;
    make_pair(&p);
    for (k = 0; k < (size_t)RN * RN; k++)
        in[k] = 3.0f;
    assert_ok(rapid_regrid(in, RN, RN, &p.ref, &p.sci, SN, SN,
                           RAPID_REGRID_MEAN, out, cov, &err), err);
    /* the mean divides by the input pixels an output pixel holds, from a
     * second interpolated map: equal to ~1e-5 */
    for (k = 0; k < (size_t)SN * SN; k++) {
        assert_true(fabs(out[k] / 3.0f - 1) < 1e-4);
        assert_true(fabs(cov[k] - 1.0f) < 1e-5);
    }
    /* flux: the value per input pixel times the input pixels each output
     * pixel holds (the SIP distortion makes that vary) */
    assert_ok(rapid_regrid(in, RN, RN, &p.ref, &p.sci, SN, SN,
                           RAPID_REGRID_FLUX, out, cov, &err), err);
    for (y = 0; y < SN; y += 37)
        for (x = 0; x < SN; x += 41) {
            double want = 3.0 * area_by_wcs(&p, x, y);
            worst = fmax(worst, fabs(out[y * SN + x] / want - 1));
            lo = fmin(lo, want / 3), hi = fmax(hi, want / 3);
        }
    print_message("flat sky: output pixels hold %.5f .. %.5f input pixels; "
                  "worst relative error %.2e\n", lo, hi, worst);
    assert_true(worst < 1e-4);
    release_pair(&p);
    free(in);
    free(out);
    free(cov);
}

/* Gaussian sources on the input: the total flux over the output equals
 * the input's (they lie well inside), and each lands where the WCS put it. */
static void test_sources(void **state)
{
    pair p;
    float *in = calloc((size_t)RN * RN, sizeof *in);
    float *out = malloc((size_t)SN * SN * sizeof *out);
    rapid_err err = RAPID_ERR_INIT;
    const double flux = 1e4, s = 1.2;
    double tin = 0, tout = 0, worst = 0;
    uint64_t g = 3;
    int n, i, x, y;

    (void)state;
    make_pair(&p);
    for (n = 0; n < 12; n++) {
        double ox = 200 + 400 * test_uniform(&g), oy = 200 + 400 * test_uniform(&g);
        double ra, dec, sx, sy, mx = 0, my = 0, m = 0;
        float *one = calloc((size_t)RN * RN, sizeof *one);
        for (y = (int)oy - 10; y <= (int)oy + 10; y++)
            for (x = (int)ox - 10; x <= (int)ox + 10; x++) {
                double v = flux / (2 * M_PI * s * s) *
                           exp(-((x - ox) * (x - ox) + (y - oy) * (y - oy)) /
                               (2 * s * s));
                one[y * RN + x] = (float)v;
                in[y * RN + x] += (float)v;
            }
        /* where the WCS puts it on the output, and where the regrid does */
        assert_ok(rapid_wcs_pix2sky(&p.ref, 1, &ox, &oy, &ra, &dec, &err), err);
        assert_ok(rapid_wcs_sky2pix(&p.sci, 1, &ra, &dec, &sx, &sy, &err), err);
        assert_ok(rapid_regrid(one, RN, RN, &p.ref, &p.sci, SN, SN,
                               RAPID_REGRID_FLUX, out, NULL, &err), err);
        for (i = 0; i < SN * SN; i++)
            if (isfinite(out[i]) && out[i] != 0) {
                m += out[i];
                mx += out[i] * (i % SN);
                my += out[i] * (i / SN);
            }
        if (sx > 20 && sy > 20 && sx < SN - 20 && sy < SN - 20) {
            worst = fmax(worst, hypot(mx / m - sx, my / m - sy));
            assert_true(fabs(m / flux - 1) < 2e-3);
        }
        free(one);
    }
    for (i = 0; i < RN * RN; i++)
        tin += in[i];
    assert_ok(rapid_regrid(in, RN, RN, &p.ref, &p.sci, SN, SN,
                           RAPID_REGRID_FLUX, out, NULL, &err), err);
    for (i = 0; i < SN * SN; i++)
        if (isfinite(out[i]))
            tout += out[i];
    print_message("sources: centroids within %.4f px of the WCS; total flux "
                  "%.6g in, %.6g out\n", worst, tin, tout);
    assert_true(worst < 0.01);
    release_pair(&p);
    free(in);
    free(out);
}

/* White noise of variance 1 on the input: the variance the regrid says
 * each output pixel has (VARIANCE of the variance map) is what the
 * resampled noise shows - on average, and pixel by pixel (out^2 / predicted
 * averages 1), though the exact-overlap shares leave some pixels with
 * half the variance of others. */
static void test_variance(void **state)
{
    pair p;
    float *in = malloc((size_t)RN * RN * sizeof *in);
    float *var = malloc((size_t)RN * RN * sizeof *var);
    float *out = malloc((size_t)SN * SN * sizeof *out);
    float *pred = malloc((size_t)SN * SN * sizeof *pred);
    rapid_err err = RAPID_ERR_INIT;
    double s2 = 0, sp = 0, ratio = 0, lo = INFINITY, hi = 0;
    uint64_t g = 17;
    size_t k, n = 0;

    (void)state;
    make_pair(&p);
    for (k = 0; k < (size_t)RN * RN; k++) {
        double u = test_uniform(&g), v = test_uniform(&g);
        in[k] = (float)(sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v));
        var[k] = 1.0f;
    }
    assert_ok(rapid_regrid(in, RN, RN, &p.ref, &p.sci, SN, SN,
                           RAPID_REGRID_FLUX, out, NULL, &err), err);
    assert_ok(rapid_regrid(var, RN, RN, &p.ref, &p.sci, SN, SN,
                           RAPID_REGRID_VARIANCE, pred, NULL, &err), err);
    for (k = 0; k < (size_t)SN * SN; k++) {
        s2 += (double)out[k] * out[k];
        sp += pred[k];
        ratio += (double)out[k] * out[k] / pred[k];
        lo = fmin(lo, pred[k]), hi = fmax(hi, pred[k]);
        n++;
    }
    print_message("resampled white noise: variance %.4f measured, %.4f "
                  "predicted (per pixel %.3f .. %.3f); mean out^2 / "
                  "predicted %.4f\n", s2 / n, sp / n, lo, hi, ratio / n);
    assert_true(fabs(s2 / sp - 1) < 0.02);
    assert_true(fabs(ratio / n - 1) < 0.02);
    assert_true(hi > 1.3 * lo); /* the phase matters, and it is followed */
    release_pair(&p);
    free(in);
    free(var);
    free(out);
    free(pred);
}

/* NaN input pixels are holes: less cover there, the rest unchanged; an
 * output off the input is refused. */
static void test_holes_and_errors(void **state)
{
    pair p;
    float *in = malloc((size_t)RN * RN * sizeof *in);
    float *out = malloc((size_t)SN * SN * sizeof *out);
    float *cov = malloc((size_t)SN * SN * sizeof *cov);
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs far = RAPID_WCS_INIT;
    long partial = 0, empty = 0;
    size_t k;
    int x, y;

    (void)state;
    make_pair(&p);
    for (k = 0; k < (size_t)RN * RN; k++)
        in[k] = 1.0f;
    for (y = 440; y < 460; y++) /* a 20 x 20 hole in the middle */
        for (x = 440; x < 460; x++)
            in[y * RN + x] = NAN;
    assert_ok(rapid_regrid(in, RN, RN, &p.ref, &p.sci, SN, SN,
                           RAPID_REGRID_MEAN, out, cov, &err), err);
    for (k = 0; k < (size_t)SN * SN; k++) {
        if (cov[k] < 0.999f)
            partial++;
        if (cov[k] == 0)
            empty++, assert_true(isnan(out[k]));
        else
            assert_true(fabs(out[k] - 1.0f) < 1e-4);
    }
    print_message("hole: %ld output pixels partly covered, %ld not at all\n",
                  partial, empty);
    assert_true(empty > 250 && empty < 400 && partial > empty);
    assert_ok(rapid_wcs_tan_grid(&far, 180, 10, RN, RN, 0.11, &err),
              err);
    assert_int_equal(rapid_regrid(in, RN, RN, &far, &p.sci, SN, SN,
                                  RAPID_REGRID_FLUX, out, cov, &err),
                     RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "regrid"));
    rapid_wcs_release(&far);
    /* an input WCS that is neither TAN nor TAN-SIP */
    {
        rapid_header h = RAPID_HEADER_INIT;
        rapid_wcs car = RAPID_WCS_INIT;
        assert_ok(rapid_header_set_str(&h, "CTYPE1", "RA---CAR", NULL), err);
        assert_ok(rapid_header_set_str(&h, "CTYPE2", "DEC--CAR", NULL), err);
        assert_ok(rapid_header_set_double(&h, "CRVAL1", p.ref.crval[0], NULL), err);
        assert_ok(rapid_header_set_double(&h, "CRVAL2", 0, NULL), err);
        assert_ok(rapid_header_set_double(&h, "CRPIX1", RN / 2.0, NULL), err);
        assert_ok(rapid_header_set_double(&h, "CRPIX2",
                                          RN / 2.0 - p.ref.crval[1] / (0.11 / 3600),
                                          NULL), err);
        assert_ok(rapid_header_set_double(&h, "CD1_1", -0.11 / 3600, NULL), err);
        assert_ok(rapid_header_set_double(&h, "CD2_2", 0.11 / 3600, NULL), err);
        assert_ok(rapid_wcs_from_header(&car, &h, &err), err);
        assert_int_equal(rapid_regrid(in, RN, RN, &car, &p.sci, SN, SN,
                                      RAPID_REGRID_FLUX, out, cov, &err),
                         RAPID_E_WCS);
        assert_non_null(strstr(err.msg, "TAN or TAN-SIP"));
        rapid_wcs_release(&car);
        rapid_header_release(&h);
    }
    release_pair(&p);
    free(in);
    free(out);
    free(cov);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_variance),
        cmocka_unit_test(test_holes_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
