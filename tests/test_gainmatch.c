/* test_gainmatch.c - the flux scale and offset between two catalogs, on
 * made-up catalogs with decoys and on two simulated exposures of the same
 * sky whose exposure times give the true scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/extract.h"
#include "rapid/gainmatch.h"
#include "rapid/psf.h"
#include "rapid/sim.h"
#include "testutil.h"

static double gauss(uint64_t *s)
{
    double u = test_uniform(s), v = test_uniform(s);
    return sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

typedef struct src {
    double x, y, flux, err, elong, peak;
    int flags;
} src;

static void make_table(rapid_table *t, const src *s, long n)
{
    double *x, *y;
    float *f, *fe, *e, *p;
    int32_t *fl;
    long i;

    assert_int_equal(rapid_table_init(t, n), 0);
    x = rapid_table_add_f64(t, "XWIN", "pix");
    y = rapid_table_add_f64(t, "YWIN", "pix");
    f = rapid_table_add_f32(t, "FLUX_APER_6", "");
    fe = rapid_table_add_f32(t, "FLUXERR_APER_6", "");
    e = rapid_table_add_f32(t, "ELONGATION", "");
    p = rapid_table_add_f32(t, "PEAK", "");
    fl = rapid_table_add_i32(t, "FLAGS", "");
    assert_true(x && y && f && fe && e && p && fl);
    for (i = 0; i < n; i++) {
        x[i] = s[i].x, y[i] = s[i].y;
        f[i] = (float)s[i].flux, fe[i] = (float)s[i].err;
        e[i] = (float)s[i].elong, p[i] = (float)s[i].peak;
        fl[i] = s[i].flags;
    }
}

/* ref: nstar good stars plus decoys; sci: the same sky with every flux x
 * scale (stars; decoys otherwise) and positions moved by (ox, oy) with
 * 0.02 px scatter. */
static void make_pair(int nstar, double scale, double ox, double oy,
                      rapid_table *sci, rapid_table *ref)
{
    enum { NGAL = 20, NSAT = 10, NPAIR = 10, NVAR = 6, NONLY = 10 };
    long n = nstar + NGAL + NSAT + 2 * NPAIR + NVAR, i, k = 0;
    src *r = calloc((size_t)n, sizeof *r), *s = calloc((size_t)n + NONLY, sizeof *s);
    uint64_t g = 7;

    assert_true(r && s);
    for (i = 0; i < n; i++) {
        r[i].x = 20 + test_uniform(&g) * 3960;
        r[i].y = 20 + test_uniform(&g) * 3960;
        r[i].flux = 2e3 * pow(10, 2.5 * test_uniform(&g));
        r[i].err = sqrt(r[i].flux + 400);
        r[i].elong = 1.05;
        r[i].peak = 0.3 * r[i].flux;
    }
    for (i = 0; i < n; i++) {
        double ratio = scale;
        s[i] = r[i];
        k = i - nstar;
        if (k >= 0 && k < NGAL) /* galaxies: elongated, another ratio */
            s[i].elong = r[i].elong = 2.0, ratio = 3;
        else if ((k -= NGAL) >= 0 && k < NSAT) /* saturated cores */
            s[i].peak = r[i].peak = 1e7, ratio = 0.5;
        else if ((k -= NSAT) >= 0 && k < 2 * NPAIR) { /* close pairs */
            if (k % 2)
                r[i].x = r[i - 1].x + 4, r[i].y = r[i - 1].y;
            ratio = 2;
        } else if ((k -= 2 * NPAIR) >= 0 && k < NVAR) /* variable stars */
            ratio = scale * 4;
        s[i].flux = r[i].flux * ratio + s[i].err * gauss(&g) * 0.2;
        s[i].err = sqrt(s[i].flux + 400);
        s[i].peak = fmin(s[i].peak, 0.3 * s[i].flux);
        if (k == 0 && i >= nstar + NGAL && i < nstar + NGAL + NSAT)
            s[i].peak = 1e7;
        s[i].x = r[i].x + ox + 0.02 * gauss(&g);
        s[i].y = r[i].y + oy + 0.02 * gauss(&g);
    }
    for (i = n; i < n + NONLY; i++) { /* only in the science image */
        s[i] = s[i - n];
        s[i].x = 5 + test_uniform(&g) * 10, s[i].y = 4000 * test_uniform(&g);
    }
    for (i = nstar + NGAL; i < nstar + NGAL + NSAT; i++)
        s[i].peak = r[i].peak = 1e7;
    make_table(ref, r, n);
    make_table(sci, s, n + NONLY);
    free(r);
    free(s);
}

static void test_synthetic(void **state)
{
    rapid_table sci = RAPID_TABLE_INIT, ref = RAPID_TABLE_INIT;
    rapid_gainmatch_opts o;
    rapid_gainmatch m;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    make_pair(300, 1.37, 0.07, -0.04, &sci, &ref);
    rapid_gainmatch_opts_init(&o);
    o.max_peak_sci = o.max_peak_ref = 1e6;
    assert_int_equal(rapid_gainmatch_catalogs(&sci, &ref, &o, 1.0, &m, &err),
                     0);
    print_message("scale %.5f +- %.5f from %d %s; offset (%.4f, %.4f) rms "
                  "(%.4f, %.4f)\n", m.scale, m.scale_err, m.nstars, m.from,
                  m.dx_median, m.dy_median, m.dx_rms, m.dy_rms);
    assert_string_equal(m.from, "stars");
    /* the galaxies, saturated stars, pairs and variables are left out */
    assert_true(fabs(m.scale / 1.37 - 1) < 0.002);
    assert_true(m.scale_err > 0 && m.scale_err < 0.002);
    assert_true(m.nstars > 250 && m.nstars <= 300);
    assert_true(fabs(m.dx_median - 0.07) < 0.005);
    assert_true(fabs(m.dy_median + 0.04) < 0.005);
    assert_true(fabs(m.dx_rms / 0.02 - 1) < 0.2);
    rapid_table_release(&sci);
    rapid_table_release(&ref);

    /* too few stars: the zero points' scale, the offsets all the same */
    make_pair(12, 1.37, 0.07, -0.04, &sci, &ref);
    assert_int_equal(rapid_gainmatch_catalogs(&sci, &ref, &o, 1.41, &m, &err),
                     0);
    assert_string_equal(m.from, "zero points");
    assert_true(m.scale == 1.41 && isnan(m.scale_err));
    assert_true(m.nstars > 0 && m.nstars < 20);
    assert_true(fabs(m.dx_median - 0.07) < 0.03);
    rapid_table_release(&sci);
    rapid_table_release(&ref);
}

static void test_errors(void **state)
{
    rapid_table sci = RAPID_TABLE_INIT, ref = RAPID_TABLE_INIT, bare;
    rapid_gainmatch_opts o;
    rapid_gainmatch m;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    make_pair(30, 1.0, 0, 0, &sci, &ref);
    rapid_gainmatch_opts_init(&o);
    o.aperture = 4; /* FLUX_APER_4 is not there */
    assert_int_equal(rapid_gainmatch_catalogs(&sci, &ref, &o, 1.0, &m, &err),
                     RAPID_E_TABLE);
    assert_non_null(strstr(err.msg, "FLUX_APER_4"));
    assert_non_null(strstr(err.msg, "science"));
    rapid_gainmatch_opts_init(&o);
    assert_int_equal(rapid_gainmatch_catalogs(&sci, &ref, &o, 0.0, &m, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_gainmatch_catalogs(&sci, &ref, &o, NAN, &m, &err),
                     RAPID_E_ARG);
    rapid_table_init(&bare, 0);
    assert_int_equal(rapid_gainmatch_catalogs(&sci, &bare, &o, 1.0, &m, &err),
                     RAPID_E_TABLE);
    assert_non_null(strstr(err.msg, "reference"));
    rapid_table_release(&bare);
    rapid_table_release(&sci);
    rapid_table_release(&ref);
}

/* Two exposures of the same sky and detector, 140 s and 302 s: in DN the
 * scale is the ratio of the exposure times, and the offset zero. */
static void test_simulated_pair(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *scene = NULL;
    rapid_psf_field psf;
    rapid_image img[2] = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT};
    rapid_table cat[2] = {RAPID_TABLE_INIT, RAPID_TABLE_INIT};
    rapid_extract_opts eo;
    rapid_gainmatch_opts o;
    rapid_gainmatch m;
    rapid_err err = RAPID_ERR_INIT;
    const double t[2] = {302, 140};
    int np, k;

    (void)state;
    rapid_sim_config_init(&c);
    c.size = 1024;
    c.nscas = 1;
    c.epochs = 1;
    c.star_density = 5;
    c.sn_rate = 0;
    c.variable_fraction = 0;
    np = rapid_sim_plan(&c, &p, &err);
    assert_true(np >= 1);
    assert_int_equal(rapid_sim_scene_make(&c, p, np, &scene, &err), 0);
    memset(&psf, 0, sizeof psf);
    assert_int_equal(rapid_psf_field_make(&psf, p[0].filter, 1, c.size, c.size,
                                          NULL, &err), 0);
    rapid_extract_opts_init(&eo);
    for (k = 0; k < 2; k++) {
        p[0].exptime = t[k];
        assert_int_equal(rapid_sim_render(&c, scene, &p[0], 1, &psf, &img[k],
                                          NULL, &err), 0);
        assert_int_equal(rapid_extract(img[k].data, NULL, NULL, img[k].nx,
                                       img[k].ny, &eo, NULL, &cat[k], NULL,
                                       &err), 0);
    }
    rapid_gainmatch_opts_init(&o);
    o.max_peak_sci = o.max_peak_ref = 0.5 * 65535;
    assert_int_equal(rapid_gainmatch_catalogs(&cat[0], &cat[1], &o, 1.0, &m,
                                              &err), 0);
    print_message("simulated 302 s / 140 s: scale %.4f +- %.4f (truth %.4f) "
                  "from %d %s; offset (%.4f, %.4f) rms (%.4f, %.4f)\n",
                  m.scale, m.scale_err, t[0] / t[1], m.nstars, m.from,
                  m.dx_median, m.dy_median, m.dx_rms, m.dy_rms);
    assert_string_equal(m.from, "stars");
    assert_true(m.nstars >= 20);
    assert_true(fabs(m.scale / (t[0] / t[1]) - 1) < 0.01);
    assert_true(fabs(m.dx_median) < 0.01 && fabs(m.dy_median) < 0.01);
    for (k = 0; k < 2; k++) {
        rapid_image_release(&img[k]);
        rapid_table_release(&cat[k]);
    }
    rapid_psf_field_release(&psf);
    rapid_sim_scene_free(scene);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_simulated_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
