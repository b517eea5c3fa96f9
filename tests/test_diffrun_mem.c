/* test_diffrun_mem.c - a reference handed to the difference in memory
 * (rapid_diffrun_opts.ref_mem): planes without pixels or of another size
 * than the reference are refused, naming the plane, and nothing is read;
 * consistent planes are taken. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rapid/diffrun.h"
#include "rapid/fits.h"
#include "rapid/sim.h"
#include "testutil.h"

static const char *science(void)
{
    static char path[1024];
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;

    rapid_sim_config_init(&c);
    c.size = 128;
    c.nscas = 1;
    c.epochs = 1;
    assert_ok(rapid_sim_run(&c, test_path("sim"), NULL, NULL, &err), err);
    snprintf(path, sizeof path, "%s/Roman_TDS_simple_model_H158_1_1.fits",
             test_path("sim"));
    return path;
}

/* rapid_diffrun_read with the science image sci and the reference ref
 * (its maps cov and unc) from memory; the status, the message in err. */
static int read_with(const char *sci, const rapid_image *ref,
                     const rapid_image *cov, const rapid_image *unc,
                     rapid_err *err)
{
    rapid_diffrun_opts o;
    rapid_diffrun *r;
    int rc;

    rapid_diffrun_opts_init(&o);
    o.sci = sci;
    o.ref = "mem/ref.fits";
    o.ref_cov = "mem/ref_cov.fits";
    o.ref_unc = "mem/ref_unc.fits";
    o.ref_mem = ref, o.ref_cov_mem = cov, o.ref_unc_mem = unc;
    assert_non_null(r = rapid_diffrun_new(&o));
    *err = (rapid_err)RAPID_ERR_INIT;
    rc = rapid_diffrun_read(r, err);
    rapid_diffrun_free(r);
    return rc;
}

static void test_refusals(void **state)
{
    const char *sci = science();
    rapid_image ref = RAPID_IMAGE_INIT, small = RAPID_IMAGE_INIT,
                none = RAPID_IMAGE_INIT, cov = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    size_t i, n;

    (void)state;
    /* the science image stands in for a reference on its own grid */
    assert_ok(rapid_fits_read_image(sci, NULL, &ref, &err), err);
    n = (size_t)ref.nx * ref.ny;
    assert_ok(rapid_image_alloc(&cov, ref.nx, ref.ny, 1, &err), err);
    assert_ok(rapid_image_alloc(&small, ref.nx - 1, ref.ny, 1, &err), err);
    /* consistent planes are taken; a NaN of another payload, an infinity
     * and a subnormal number are no obstacle (read as from a file) */
    ref.data[0] = INFINITY, ref.data[1] = 1e-40f, ref.data[2] = -NAN;
    assert_ok(read_with(sci, &ref, &cov, NULL, &err), err);
    /* a coverage map of another size */
    assert_int_equal(read_with(sci, &ref, &small, NULL, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "mem/ref_cov.fits"));
    assert_non_null(strstr(err.msg, "127 x"));
    /* an uncertainty map without pixels */
    none.nx = ref.nx, none.ny = ref.ny;
    assert_int_equal(read_with(sci, &ref, &cov, &none, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "mem/ref_unc.fits: no pixels in memory"));
    /* the planes handed in are left as they were */
    assert_true(isinf(ref.data[0]) && ref.data[1] == 1e-40f);
    for (i = 0; i < n; i++)
        assert_true(cov.data[i] == 1);
    rapid_image_release(&ref);
    rapid_image_release(&cov);
    rapid_image_release(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
