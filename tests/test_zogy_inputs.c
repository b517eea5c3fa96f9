/* test_zogy_inputs.c - the ZOGY inputs of a prepared pair, kept: on two
 * simulated visits of the same sky, rapid_zogy on what
 * rapid_diff_zogy_inputs gives must produce rapid_diff_zogy's products bit
 * for bit (what bench/zogy_dump.c writes for the independent numpy check
 * is then what rapid_diff_zogy computes from); the inputs are the
 * documented ones (background-subtracted science, scaled reference, NaN
 * where the reference's coverage is below 0.5); bad arguments are refused
 * with nothing allocated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"
#include "rapid/sim.h"
#include "testutil.h"

typedef struct fixture {
    rapid_science sci, ref;
    rapid_wcs sw, rw;
    rapid_diff_pair p;
    rapid_image psf;
} fixture;

static fixture fx;

static void read_wcs(const char *path, rapid_wcs *w)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_fits_read_header(path, "SCI", &h, &err), err);
    assert_ok(rapid_wcs_from_header(w, &h, &err), err);
    rapid_header_release(&h);
}

static int setup(void **state)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_sim_pointing *pt = NULL;
    rapid_diff_ref r;
    const char *dir = test_path("sim");
    char a[1024], b[1024], psf[1024];
    int np;

    (void)state;
    memset(&fx, 0, sizeof fx);
    rapid_sim_config_init(&c);
    c.size = 256;
    c.nscas = 1;
    c.epochs = 2;
    c.star_density = 3;
    c.sn_rate = 0;
    assert_ok(rapid_sim_run(&c, dir, NULL, NULL, &err), err);
    np = rapid_sim_plan(&c, &pt, &err);
    assert_int_equal(np, 2);
    snprintf(a, sizeof a, "%s/Roman_TDS_simple_model_H158_%d_1.fits", dir,
             pt[1].id);
    snprintf(b, sizeof b, "%s/Roman_TDS_simple_model_H158_%d_1.fits", dir,
             pt[0].id);
    snprintf(psf, sizeof psf, "%s/psf/Roman_WFI_PSF_H158_1.fits", dir);
    free(pt);
    assert_ok(rapid_science_read(a, NULL, &fx.sci, &err), err);
    assert_ok(rapid_science_read(b, NULL, &fx.ref, &err), err);
    assert_ok(rapid_fits_read_image(psf, "0", &fx.psf, &err), err);
    read_wcs(a, &fx.sw);
    read_wcs(b, &fx.rw);
    r = (rapid_diff_ref){fx.ref.rate.data, NULL, fx.ref.unc.data,
                         fx.ref.rate.nx, fx.ref.rate.ny, &fx.rw, 1.0};
    assert_ok(rapid_diff_prepare(&fx.sci, &fx.sw, &r, &fx.p, &err), err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rapid_diff_pair_release(&fx.p);
    rapid_science_release(&fx.sci);
    rapid_science_release(&fx.ref);
    rapid_image_release(&fx.psf);
    rapid_wcs_release(&fx.sw);
    rapid_wcs_release(&fx.rw);
    return 0;
}

static void assert_same(const float *a, const float *b, size_t n)
{
    /* bit for bit, NaN included */
    assert_memory_equal(a, b, n * sizeof *a);
}

static void test_same_as_diff_zogy(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_zogy_inputs zi;
    rapid_zogy_out a = RAPID_ZOGY_OUT_INIT, b = RAPID_ZOGY_OUT_INIT;
    size_t n = (size_t)fx.p.nx * fx.p.ny;
    int npsf = fx.psf.nx;

    (void)state;
    assert_ok(rapid_diff_zogy(&fx.sci, &fx.p, fx.psf.data, npsf, fx.psf.data,
                              npsf, NULL, &a, &err), err);
    assert_ok(rapid_diff_zogy_inputs(&fx.sci, &fx.p, fx.psf.data, npsf,
                                     fx.psf.data, npsf, &zi, &err), err);
    assert_ok(rapid_zogy(&zi.in, NULL, &b, &err), err);
    assert_same(a.d, b.d, n);
    assert_same(a.unc, b.unc, n);
    assert_same(a.scorr, b.scorr, n);
    assert_int_equal(a.npd, b.npd);
    assert_same(a.pd, b.pd, (size_t)a.npd * a.npd);
    assert_true(a.sigma_n == b.sigma_n && a.sigma_r == b.sigma_r);
    rapid_zogy_inputs_release(&zi);
    rapid_zogy_out_release(&a);
    rapid_zogy_out_release(&b);
}

static void test_inputs_as_documented(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_zogy_inputs zi;
    float *bs, *br;
    size_t i, n = (size_t)fx.p.nx * fx.p.ny, nocov = 0, checked = 0;
    double s = fx.p.match.scale;
    int npsf = fx.psf.nx;

    (void)state;
    assert_ok(rapid_diff_zogy_inputs(&fx.sci, &fx.p, fx.psf.data, npsf,
                                     fx.psf.data, npsf, &zi, &err), err);
    assert_int_equal(zi.in.nx, fx.p.nx);
    assert_int_equal(zi.in.ny, fx.p.ny);
    assert_ptr_equal(zi.in.pn, fx.psf.data);
    assert_ptr_equal(zi.in.pr, fx.psf.data);
    assert_true(zi.in.sigma_n == 0 && zi.in.sigma_r == 0);
    assert_true(zi.in.sx >= 0 && zi.in.sy >= 0);
    bs = malloc(n * sizeof *bs);
    br = malloc(n * sizeof *br);
    assert_true(bs && br);
    rapid_background_fill(&fx.p.bkg_sci, bs);
    rapid_background_fill(&fx.p.bkg_ref, br);
    for (i = 0; i < n; i++) {
        if (isfinite(fx.sci.rate.data[i])) {
            assert_float_equal(zi.n[i], fx.sci.rate.data[i] - bs[i], 1e-6);
            assert_float_equal(zi.vn[i], fx.sci.unc.data[i] * fx.sci.unc.data[i],
                               1e-9);
        }
        if (fx.p.cov.data[i] < 0.5 || !isfinite(fx.p.ref.data[i])) {
            assert_true(isnan(zi.r[i]) && isnan(zi.vr[i]));
            nocov++;
        } else {
            assert_float_equal(zi.r[i], s * (fx.p.ref.data[i] - br[i]),
                               1e-5 * (1 + fabs(zi.r[i])));
            checked++;
        }
    }
    /* the dithered second visit leaves part of the first uncovered */
    print_message("%zu pixels without reference, %zu with; scale %.4f\n",
                  nocov, checked, s);
    assert_true(checked > n / 2);
    free(bs);
    free(br);
    rapid_zogy_inputs_release(&zi);
}

static void test_refused(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_zogy_inputs zi;
    rapid_diff_pair q = fx.p;
    int npsf = fx.psf.nx;

    (void)state;
    assert_int_equal(rapid_diff_zogy_inputs(&fx.sci, &fx.p, fx.psf.data, npsf,
                                            fx.psf.data, npsf - 1, &zi, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "ZOGY inputs"));
    assert_null(zi.n);
    assert_null(zi.vr);
    q.match.scale = 0;
    assert_int_equal(rapid_diff_zogy_inputs(&fx.sci, &q, fx.psf.data, npsf,
                                            fx.psf.data, npsf, &zi, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "flux scale"));
    assert_null(zi.r);
    rapid_zogy_inputs_release(&zi); /* harmless on an empty one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_diff_zogy),
        cmocka_unit_test(test_inputs_as_documented),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
