/* test_science.c - an L2 image to DN/s with its uncertainty: on a
 * simulated file with ERR and DQ, and on the same pixels without them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/dq.h"
#include "rapid/science.h"
#include "rapid/sim.h"
#include "testutil.h"

static const char *simulate(void)
{
    static char path[1024];
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;

    rapid_sim_config_init(&c);
    c.size = 256;
    c.nscas = 1;
    c.epochs = 1;
    assert_ok(rapid_sim_run(&c, test_path("sim"), NULL, NULL, &err), err);
    snprintf(path, sizeof path, "%s/Roman_TDS_simple_model_H158_1_1.fits",
             test_path("sim"));
    return path;
}

static void test_with_err_and_dq(void **state)
{
    const char *path = simulate();
    rapid_science s = RAPID_SCIENCE_INIT;
    rapid_image sci = RAPID_IMAGE_INIT, e = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_err err = RAPID_ERR_INIT;
    char unit[80];
    long flagged = 0;
    size_t i, n;

    (void)state;
    assert_ok(rapid_science_read(path, NULL, &s, &err), err);
    assert_ok(rapid_fits_read_image(path, "SCI", &sci, &err), err);
    assert_ok(rapid_fits_read_image(path, "ERR", &e, &err), err);
    assert_ok(rapid_fits_read_image_u32(path, "DQ", &dq, &err), err);
    assert_true(s.exptime == 302 && s.from_err == 1);
    assert_ok(rapid_header_get_str(&s.rate.hdr, "BUNIT", unit, sizeof unit,
                                   &err), err);
    assert_string_equal(unit, "DN/s");
    n = (size_t)sci.nx * sci.ny;
    for (i = 0; i < n; i++) {
        if (rapid_dq_unusable(dq.data[i])) {
            flagged++;
            assert_true(isnan(s.rate.data[i]) && isnan(s.unc.data[i]));
        } else {
            assert_true(s.rate.data[i] == sci.data[i] / 302.0f);
            assert_true(s.unc.data[i] == e.data[i] / 302.0f);
        }
    }
    print_message("%ld pixels flagged unusable (%.2f %%)\n", flagged,
                  100.0 * flagged / n);
    assert_true(flagged == s.nunusable && flagged > 0);
    rapid_science_release(&s);
    rapid_image_release(&sci);
    rapid_image_release(&e);
    rapid_image_u32_release(&dq);
}

/* Without ERR: the uncertainty from the data agrees with the simulator's
 * ERR (which holds the same formula, with sqrt 2 the read noise where a
 * cosmic-ray jump was fitted out) on the sky. */
static void test_without_err(void **state)
{
    const char *path = simulate();
    const char *bare = test_path("bare.fits");
    rapid_science a = RAPID_SCIENCE_INIT, b = RAPID_SCIENCE_INIT;
    rapid_image sci = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0;
    size_t i, n, same = 0, used = 0;

    (void)state;
    assert_ok(rapid_science_read(path, NULL, &a, &err), err);
    assert_ok(rapid_fits_read_image(path, "SCI", &sci, &err), err);
    assert_ok(rapid_fits_write_image(bare, &sci, "SCI", &err), err);
    assert_ok(rapid_science_read(bare, NULL, &b, &err), err);
    assert_true(b.from_err == 0 && b.nunusable == 0);
    n = (size_t)sci.nx * sci.ny;
    for (i = 0; i < n; i++)
        if (isfinite(a.unc.data[i]) && a.rate.data[i] > 0) {
            double r = b.unc.data[i] / a.unc.data[i];
            worst = fmax(worst, fabs(r - 1));
            same += fabs(r - 1) < 1e-4;
            used++;
        }
    print_message("uncertainty from the data = ERR / t at %zu of %zu pixels\n",
                  same, used);
    /* the same almost everywhere; the read noise differs (sqrt 2 in ERR) only
     * where a cosmic-ray jump was fitted out */
    assert_true(same > 0.98 * used);
    assert_true(worst <= 1 - 1 / M_SQRT2 + 1e-4);
    rapid_science_release(&a);
    rapid_science_release(&b);
    rapid_image_release(&sci);
}

static void test_errors(void **state)
{
    const char *path = test_path("noexp.fits");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_science s = RAPID_SCIENCE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_ok(rapid_image_alloc(&img, 16, 16, 1.0f, &err), err);
    assert_ok(rapid_fits_write_image(path, &img, "SCI", &err), err);
    assert_int_equal(rapid_science_read(path, NULL, &s, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "noexp.fits"));
    assert_non_null(strstr(err.msg, "EXPTIME"));
    assert_ok(rapid_header_set_double(&img.hdr, "EXPTIME", 0, NULL), err);
    assert_ok(rapid_fits_write_image(path, &img, "SCI", &err), err);
    assert_int_equal(rapid_science_read(path, NULL, &s, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "not positive"));
    /* an ERR extension of another size than SCI */
    {
        rapid_fits_out *out = NULL;
        rapid_image small = RAPID_IMAGE_INIT;
        assert_ok(rapid_header_set_double(&img.hdr, "EXPTIME", 100, NULL), err);
        assert_ok(rapid_image_alloc(&small, 8, 8, 1.0f, &err), err);
        assert_ok(rapid_fits_create(&out, path, &err), err);
        assert_ok(rapid_fits_append_image(out, &img, "SCI", &err), err);
        assert_ok(rapid_fits_append_image(out, &small, "ERR", &err), err);
        assert_ok(rapid_fits_commit(out, &err), err);
        assert_int_equal(rapid_science_read(path, NULL, &s, &err), RAPID_E_ARG);
        assert_non_null(strstr(err.msg, "ERR is 8 x 8, SCI 16 x 16"));
        assert_null(s.rate.data);
        rapid_image_release(&small);
    }
    rapid_image_release(&img);
}

/* Unflagged persistence lies beside the flagged: the ring of a star that
 * nearly filled its pixels in an earlier exposure.  In the simulated H158
 * survey, the passing false positives of the difference lay within 3 px
 * of a PERSISTENCE pixel for a quarter of them (docs/quality.md).  The
 * science image loses every pixel within RAPID_SCIENCE_PERSIST_GROW px
 * (a square) of one, and only those; JUMP_DET pixels stay (their value
 * is the ramp fit without the jump) and grow nothing. */
static void test_persistence_grown(void **state)
{
    const char *path = test_path("persist.fits");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_fits_out *out = NULL;
    rapid_science s = RAPID_SCIENCE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const int g = RAPID_SCIENCE_PERSIST_GROW;
    int x, y;

    (void)state;
    assert_true(g >= 3);
    assert_ok(rapid_image_alloc(&img, 48, 48, 302.0f, &err), err);
    assert_ok(rapid_header_set_double(&img.hdr, "EXPTIME", 302, NULL), err);
    assert_ok(rapid_image_u32_alloc(&dq, 48, 48, 0, &err), err);
    dq.data[20 * 48 + 12] = RAPID_DQ_PERSISTENCE | RAPID_DQ_DO_NOT_USE;
    dq.data[20 * 48 + 36] = RAPID_DQ_JUMP_DET;
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_image(out, &img, "SCI", &err), err);
    assert_ok(rapid_fits_append_image_u32(out, &dq, "DQ", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_science_read(path, NULL, &s, &err), err);
    for (y = 0; y < 48; y++)
        for (x = 0; x < 48; x++) {
            int near = abs(x - 12) <= g && abs(y - 20) <= g;
            float v = s.rate.data[y * 48 + x];
            assert_true(near ? isnan(v) && isnan(s.unc.data[y * 48 + x]) : v == 1.0f);
        }
    assert_int_equal(s.nunusable, 1);
    assert_int_equal(s.npersist_grown, (2 * g + 1) * (2 * g + 1) - 1);
    rapid_science_release(&s);
    rapid_image_release(&img);
    rapid_image_u32_release(&dq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_with_err_and_dq),
        cmocka_unit_test(test_without_err),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_persistence_grown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
