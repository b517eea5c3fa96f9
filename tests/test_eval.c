/* test_eval.c - the evaluation's figures on synthetic match tables whose
 * answers are known, and its plots. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "eval/eval_internal.h"
#include "rapid/candidates.h"
#include "rapid/eval.h"
#include "rapid/sim.h"
#include "testutil.h"

static const rapid_eval_bins bins = {21.0, 28.0, 0.25};

/* Completeness 1 brighter than 23, falling linearly to 0 at 25, measured
 * in 0.25-mag bins of 1000 injections each: at the bin centres it is the
 * line exactly, so m80 = 23.4 and m20 = 24.6 to rounding. */
static double truth_completeness(double m)
{
    return m < 23 ? 1.0 : m > 25 ? 0.0 : (25 - m) / 2;
}

/* precision 0.02 at 21, growing by 0.04 per magnitude: 0.1 at 23.0 */
static double truth_precision(double m) { return 0.02 + 0.04 * (m - 21); }

#define PERBIN 1000

static rapid_eval_inj *make_table(long *n, int nuclear_every)
{
    int nb = 28, b, i;
    rapid_eval_inj *t = calloc((size_t)nb * PERBIN, sizeof *t);
    long k = 0;

    assert_non_null(t);
    for (b = 0; b < nb; b++) {
        double centre = bins.mag_lo + (b + 0.5) * bins.dmag;
        int nfound = (int)lround(truth_completeness(centre) * PERBIN);
        for (i = 0; i < PERBIN; i++, k++) {
            /* the found ones' flux errors: normal quantiles, so that the
             * bin's scatter is the precision asked for */
            double z = nfound ? gsl_cdf_ugaussian_Pinv((i % nfound + 0.5) / nfound) : 0;
            t[k].mag = bins.mag_lo + b * bins.dmag + (i + 0.5) * bins.dmag / PERBIN;
            t[k].group = nuclear_every && i % nuclear_every == 0 ? RAPID_EVAL_NUCLEAR
                                                                : RAPID_EVAL_FIELD;
            t[k].flux_true = pow(10, -0.4 * (t[k].mag - 25));
            t[k].found = i < nfound;
            t[k].flux_psf = t[k].flux_true * (1 + truth_precision(centre) * z);
            t[k].fluxerr_psf = t[k].flux_true * truth_precision(centre);
        }
    }
    *n = k;
    return t;
}

static void test_completeness_and_precision(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result r;
    long n;
    rapid_eval_inj *t = make_table(&n, 0);
    int b;

    (void)state;
    assert_ok(rapid_eval_metrics(t, n, RAPID_EVAL_ALL, NULL, 0, 20, 26.5, &bins, &r, &err),
              err);
    assert_int_equal(r.nbins, 28);
    assert_int_equal(r.n_injected, n);
    assert_true(fabs(r.m80 - 23.4) < 5e-3); /* bins of 1000: rounding */
    assert_true(fabs(r.m20 - 24.6) < 5e-3);
    /* robust sigma of normal quantiles: within 1 % of the precision */
    assert_true(fabs(r.m_ph10 - 23.0) < 0.03);
    for (b = 0; b < r.nbins; b++) {
        if (r.nfound[b] < 100)
            continue;
        assert_true(fabs(r.precision[b] / truth_precision(r.mag[b]) - 1) < 0.02);
        assert_true(fabs(r.pull_median[b]) < 0.01);
        assert_true(fabs(r.pull_sigma[b] - 1) < 0.02);
    }
    /* no false positives: m_th is the bins' faint edge */
    assert_true(r.m_th == 28.0);
    assert_true(r.fp_per_image == 0);
    assert_true(fabs(r.fom - rapid_eval_fom(28.0, r.m80, r.m20, 26.5, r.m_ph10)) < 1e-12);
    assert_true(fabs(r.fom - rapid_eval_fom(28.0, 23.4, 24.6, 26.5, 23.0)) < 0.01);
    free(t);
}

static void test_groups(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result all, field, nuc;
    long n;
    rapid_eval_inj *t = make_table(&n, 4);

    (void)state;
    assert_ok(rapid_eval_metrics(t, n, RAPID_EVAL_ALL, NULL, 0, 1, NAN, &bins, &all, &err), err);
    assert_ok(rapid_eval_metrics(t, n, RAPID_EVAL_FIELD, NULL, 0, 1, NAN, &bins, &field, &err),
              err);
    assert_ok(rapid_eval_metrics(t, n, RAPID_EVAL_NUCLEAR, NULL, 0, 1, NAN, &bins, &nuc, &err),
              err);
    assert_int_equal(field.n_injected + nuc.n_injected, all.n_injected);
    assert_int_equal(nuc.n_injected, n / 4);
    assert_int_equal(field.n_recovered + nuc.n_recovered, all.n_recovered);
    /* m5sigma unknown: no FOM */
    assert_true(isnan(all.fom));
    free(t);
}

/* half of the ones not found were detected and cut: by S/N, and every
 * other one also by sumrat; detection completeness (1 + c) / 2 */
static void test_losses(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result r;
    long n, k, cut = 0, snr = 0, sumrat = 0;
    rapid_eval_inj *t = make_table(&n, 0);

    (void)state;
    for (k = 0; k < n; k++) {
        long i = k % PERBIN, nfound = 0, j;
        for (j = k - i; j < k - i + PERBIN; j++)
            nfound += t[j].found;
        t[k].detected = t[k].found || i < nfound + (PERBIN - nfound) / 2;
        if (t[k].detected && !t[k].found) {
            t[k].fail_bits = RAPID_FAIL_SNR | (i % 2 ? RAPID_FAIL_SUMRAT : 0);
            cut++;
            snr++;
            sumrat += i % 2;
        }
    }
    assert_ok(rapid_eval_metrics(t, n, RAPID_EVAL_ALL, NULL, 0, 20, 26.5, &bins, &r, &err),
              err);
    assert_int_equal(r.n_cut, cut);
    assert_int_equal(r.n_detected, r.n_recovered + cut);
    assert_int_equal(r.lost_cut[1], snr);
    assert_int_equal(r.lost_cut[6], sumrat);
    assert_int_equal(r.lost_cut[0] + r.lost_cut[8], 0);
    assert_true(fabs(r.m80 - 23.4) < 5e-3);
    assert_true(fabs(r.m80_detected - 23.8) < 5e-3);
    assert_true(fabs(r.detected[0] - 1) < 1e-12);
    free(t);
}

static void test_false_positives(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result r;
    rapid_eval_inj one = {22.0, RAPID_EVAL_FIELD, 1, 1.0, 1.0, 0.1, 1, 0};
    double fp[64];
    int k;

    (void)state;
    /* 4 images: the tolerance of 10 per image is reached by the 40th
     * false positive in magnitude order (given out of order) */
    for (k = 0; k < 60; k++)
        fp[k] = 22.0 + 0.05 * ((k * 37) % 60);
    assert_ok(rapid_eval_metrics(&one, 1, RAPID_EVAL_ALL, fp, 60, 4, NAN, &bins, &r, &err),
              err);
    assert_true(fabs(r.m_th - (22.0 + 0.05 * 39)) < 1e-9);
    assert_true(fabs(r.fp_per_image - 15.0) < 1e-12);
    /* cumulative per image at the faint edge of the bin 22.0-22.25:
     * 22.00, 22.05, 22.10, 22.15, 22.20 */
    assert_true(fabs(r.fp_cum[4] - 5.0 / 4) < 1e-12);
    /* one short of the tolerance, and non-positive fluxes (NaN) fainter
     * than every bin: m_th is the faint edge */
    fp[39] = NAN;
    assert_ok(rapid_eval_metrics(&one, 1, RAPID_EVAL_ALL, fp, 40, 4, NAN, &bins, &r, &err),
              err);
    assert_true(r.m_th == 28.0);
    assert_true(fabs(r.fp_cum[27] - 39.0 / 4) < 1e-12);
}

static void test_fom_and_m5sigma(void **state)
{
    float box[4] = {0.25f, 0.25f, 0.25f, 0.25f};

    (void)state;
    /* weights 1.0, 0.8, 0.6, 0.3, 0.2 in the order m_th, m80, m20, m5sigma,
     * m_ph10: 72.5 / 2.9 */
    assert_true(fabs(rapid_eval_fom(25, 24, 26, 27, 23) - 25.0) < 1e-12);
    assert_true(fabs(rapid_eval_fom(24, 25, 26, 27, 23) - (24 + 20 + 15.6 + 8.1 + 4.6) / 2.9) <
                1e-12);
    assert_true(isnan(rapid_eval_fom(25, NAN, 26, 27, 23)));
    /* four noise pixels, sigma 1: 25 - 2.5 log10(5 x 2) */
    assert_true(fabs(rapid_eval_m5sigma(25, 1.0, box, 4) - 22.5) < 1e-12);
    assert_true(isnan(rapid_eval_m5sigma(25, 0.0, box, 4)));
}

static void test_never_complete(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result r;
    rapid_eval_inj t[40];
    int k;

    (void)state;
    /* half found in every bin: never at 80 %, never below 20 % */
    for (k = 0; k < 40; k++)
        t[k] = (rapid_eval_inj){21.1 + 0.25 * (k / 2), RAPID_EVAL_FIELD, k % 2, 1, 1, 0.1, k % 2, 0};
    assert_ok(rapid_eval_metrics(t, 40, RAPID_EVAL_ALL, NULL, 0, 1, 26, &bins, &r, &err), err);
    assert_true(isnan(r.m80));
    assert_true(fabs(r.m20 - (21.0 + 0.25 * 19.5)) < 1e-9);
    assert_true(isnan(r.m_ph10)); /* no bin with 5 recovered */
    assert_true(isnan(r.completeness[27]));
}

static void test_bad_arguments(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result r;
    rapid_eval_bins bad = {25, 21, 0.25};

    (void)state;
    assert_int_equal(rapid_eval_metrics(NULL, 0, RAPID_EVAL_ALL, NULL, 0, 1, NAN, &bad, &r, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_eval_metrics(NULL, 0, RAPID_EVAL_ALL, NULL, 0, 0, NAN, &bins, &r, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "0 images"));
}

static void test_match(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_inj inj[3] = {{22, RAPID_EVAL_FIELD, 0, 100, 0, 0, 0, 0},
                             {23, RAPID_EVAL_NUCLEAR, 0, 40, 0, 0, 0, 0},
                             {24, RAPID_EVAL_FIELD, 0, 16, 0, 0, 0, 0}};
    double ix[3] = {10, 50, 90}, iy[3] = {10, 50, 90};
    /* 0: injection 0, 0.3 px off; 1: a second, farther candidate on it
     * (a false positive); 2: on injection 1 but failing the cuts; 3: a
     * known transient 0.8 px away; 4: on a cosmic ray; 5: a negative
     * false positive of flux -10; 6: injection 2 at 0.6 px: too far */
    rapid_eval_cand c[7] = {{10.3, 10, 101, 5, 1, 0, 1, 9},        {10, 10.45, 90, 5, 1, 0, 1, 9},
                            {50, 50.2, 41, 4, 0, 64 | 256, 1, 9}, {70.8, 20, 30, 3, 1, 0, 1, 9},
                            {30, 70.5, 20, 3, 1, 0, 1, 9},        {5, 80, -10, 2, 1, 0, -1, 9},
                            {90.6, 90, 15, 2, 1, 0, 1, 9}};
    const int fate[7] = {RAPID_EVAL_INJECTION, RAPID_EVAL_FALSE, RAPID_EVAL_NOT_PASSING,
                         RAPID_EVAL_KNOWN, RAPID_EVAL_ARTEFACT, RAPID_EVAL_FALSE,
                         RAPID_EVAL_FALSE};
    int j;
    double kx[1] = {70}, ky[1] = {20}, *fp = NULL;
    uint32_t dq[100 * 100] = {0};
    rapid_eval_counts n;
    long nfp = 0;

    (void)state;
    dq[71 * 100 + 30] = 4u; /* JUMP_DET one pixel from candidate 4 */
    assert_ok(rapid_eval_match(inj, ix, iy, 3, c, 7, kx, ky, 1, dq, 100, 100, 0.5, 25, &fp,
                               &nfp, &n, &err), err);
    assert_true(inj[0].found && inj[0].flux_psf == 101 && inj[0].fluxerr_psf == 5);
    assert_false(inj[1].found);
    assert_false(inj[2].found);
    /* injection 1 was detected and lost to the cuts; 2 was not detected */
    assert_true(inj[0].detected && inj[1].detected && !inj[2].detected);
    assert_int_equal(inj[1].fail_bits, 64 | 256);
    assert_int_equal(inj[0].fail_bits, 0);
    assert_int_equal(n.injected, 1);
    assert_int_equal(n.known, 1);
    assert_int_equal(n.artefact, 1);
    assert_int_equal(n.fp, 3); /* candidates 1, 5 and 6 */
    assert_int_equal(n.fp_negative, 1); /* 5 */
    for (j = 0; j < 7; j++)
        assert_int_equal(c[j].fate, fate[j]);
    assert_int_equal(nfp, 3);
    assert_true(fabs(fp[0] - (25 - 2.5 * log10(90))) < 1e-12);
    assert_true(fabs(fp[1] - 22.5) < 1e-12);
    /* without the DQ map the cosmic ray is a false positive; the list
     * grows */
    assert_ok(rapid_eval_match(inj, ix, iy, 3, c, 7, kx, ky, 1, NULL, 0, 0, 0.5, 25, &fp, &nfp,
                               &n, &err), err);
    assert_int_equal(n.fp, 4);
    assert_int_equal(nfp, 7);
    free(fp);
}

/* A 200^2 north-up image; three galaxies that may host (r_e 0.55" = 5 px,
 * H158 22), a star, a faint galaxy and one off the image that may not. */
static void host_table(rapid_wcs *w, rapid_table *t)
{
    rapid_err err = RAPID_ERR_INIT;
    double px[6] = {50, 100, 150, 120, 80, 400}, py[6] = {50, 150, 60, 120, 30, 50};
    double ra[6], dec[6], *cra, *cdec;
    float *cre, *cmag;
    int32_t *type;
    int64_t *id;
    int k;

    assert_ok(rapid_wcs_tan_grid(w, 10.0, -40.0, 200, 200, 0.11, &err), err);
    assert_ok(rapid_wcs_pix2sky(w, 6, px, py, ra, dec, &err), err);
    assert_int_equal(rapid_table_init(t, 6), 0);
    id = rapid_table_add_i64(t, "id", "");
    type = rapid_table_add_i32(t, "type", "");
    cra = rapid_table_add_f64(t, "ra", "deg");
    cdec = rapid_table_add_f64(t, "dec", "deg");
    cmag = rapid_table_add_f32(t, "mag_H158", "mag");
    cre = rapid_table_add_f32(t, "r_e", "arcsec");
    for (k = 0; k < 6; k++) {
        id[k] = 100 + k;
        type[k] = k == 3 ? 1 : 2;
        cra[k] = ra[k];
        cdec[k] = dec[k];
        cmag[k] = k == 4 ? 26.0f : 22.0f;
        cre[k] = 0.55f;
    }
}

static void test_plan(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_eval_plan_opts o;
    static rapid_eval_source src[2000];
    double hx[3] = {50, 100, 150}, hy[3] = {50, 150, 60}, msum = 0;
    int k, nnuc = 0;

    (void)state;
    host_table(&w, &t);
    rapid_eval_plan_opts_init(&o);
    o.n = 2000;
    o.seed = 3;
    assert_ok(rapid_eval_plan(&w, 200, 200, "H158", &t, &o, src, &err), err);
    for (k = 0; k < o.n; k++) {
        double x, y;
        assert_true(src[k].x >= 10 && src[k].x <= 189 && src[k].y >= 10 && src[k].y <= 189);
        assert_true(src[k].mag >= 21 && src[k].mag < 28);
        msum += src[k].mag;
        assert_ok(rapid_wcs_sky2pix(&w, 1, &src[k].ra, &src[k].dec, &x, &y, &err), err);
        assert_true(fabs(x - src[k].x) < 1e-6 && fabs(y - src[k].y) < 1e-6);
        if (src[k].group == RAPID_EVAL_NUCLEAR) {
            int g = (int)(src[k].host - 100);
            nnuc++;
            /* only the three bright galaxies on the image host, within
             * 1.5 r_e */
            assert_true(g >= 0 && g <= 2);
            assert_true(hypot(src[k].x - hx[g], src[k].y - hy[g]) <= 1.5 * 5 + 1e-6);
        } else {
            assert_int_equal(src[k].host, 0);
        }
    }
    /* half of them nuclear: binomial sd 22 */
    assert_true(abs(nnuc - 1000) < 90);
    assert_true(fabs(msum / o.n - 24.5) < 0.15);
    /* without a truth table, all in the field */
    assert_ok(rapid_eval_plan(&w, 200, 200, "H158", NULL, &o, src, &err), err);
    for (k = 0; k < o.n; k++)
        assert_int_equal(src[k].group, RAPID_EVAL_FIELD);
    /* a filter the table lacks is named */
    assert_int_equal(rapid_eval_plan(&w, 200, 200, "K213", &t, &o, src, &err), RAPID_E_TABLE);
    assert_non_null(strstr(err.msg, "mag_K213"));
    rapid_table_release(&t);
    rapid_wcs_release(&w);
}

/* What lies under a position: a star's 15 px first, then a galaxy's
 * 1.5 r_e (at least 2 px); from the static truth through the WCS. */
static void test_scene(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    /* one star at (50, 50); galaxies at (100, 100), r_e 4, and (10, 60) */
    double sx[1] = {50}, sy[1] = {50}, gx[2] = {100, 10}, gy[2] = {100, 60}, gre[2] = {4, 0.5};
    eval_scene s = {1, 2, sx, sy, gx, gy, gre};
    rapid_sim_config c;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_image a = RAPID_IMAGE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    eval_scijob j;
    const rapid_column *ctype, *cmag, *cre;
    long k, ngal = 0;

    (void)state;
    assert_int_equal(eval_scene_under(&s, 60, 50), EVAL_UNDER_STAR);
    assert_int_equal(eval_scene_under(&s, 50, 65.5), EVAL_UNDER_FIELD);
    assert_int_equal(eval_scene_under(&s, 105.9, 100), EVAL_UNDER_GALAXY); /* 1.5 x 4 */
    assert_int_equal(eval_scene_under(&s, 106.1, 100), EVAL_UNDER_FIELD);
    assert_int_equal(eval_scene_under(&s, 11.9, 60), EVAL_UNDER_GALAXY);   /* 2 px floor */
    assert_int_equal(eval_scene_under(&s, 12.1, 60), EVAL_UNDER_FIELD);

    /* from a simulation: every galaxy brighter than 25 whose centre is on
     * the image is found under itself */
    rapid_sim_config_init(&c);
    c.size = 256;
    c.nscas = 1;
    c.epochs = 1;
    assert_ok(rapid_sim_run(&c, test_path("scene"), NULL, NULL, &err), err);
    memset(&j, 0, sizeof j);
    snprintf(j.l2, sizeof j.l2, "%s/Roman_TDS_simple_model_H158_1_1.fits", test_path("scene"));
    assert_ok(rapid_fits_read_table(test_path("scene/truth/static.fits"), NULL, &t, &err), err);
    assert_ok(eval_scene_load(&j, 1, &t, "H158", &err), err);
    assert_ok(rapid_fits_read_image(j.l2, "SCI", &a, &err), err);
    assert_ok(rapid_wcs_from_header(&w, &a.hdr, &err), err);
    ctype = rapid_table_col(&t, "type");
    cmag = rapid_table_col(&t, "mag_H158");
    cre = rapid_table_col(&t, "r_e");
    for (k = 0; k < t.nrows; k++) {
        double ra = ((const double *)rapid_table_col(&t, "ra")->data)[k],
               dec = ((const double *)rapid_table_col(&t, "dec")->data)[k], x, y;
        if (eval_colval(ctype, k) != 2 || !(eval_colval(cmag, k) < EVAL_GALAXY_MAG) ||
            !(eval_colval(cre, k) > 0))
            continue;
        assert_ok(rapid_wcs_sky2pix(&w, 1, &ra, &dec, &x, &y, &err), err);
        if (x < 0 || y < 0 || x > 255 || y > 255)
            continue;
        ngal++;
        assert_int_not_equal(eval_scene_under(&j.scene, x, y), EVAL_UNDER_FIELD);
    }
    assert_true(ngal > 5);
    assert_true(j.scene.ngal >= ngal);
    free(j.scene.sx);
    rapid_image_release(&a);
    rapid_wcs_release(&w);
    rapid_table_release(&t);
}

static void test_inject_l2(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_sim_config c;
    rapid_image a = RAPID_IMAGE_INIT, b = RAPID_IMAGE_INIT, ea = RAPID_IMAGE_INIT,
                eb = RAPID_IMAGE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_eval_plan_opts o;
    rapid_eval_source src[20];
    char l2[1024];
    double added = 0, truth = 0;
    long k;
    int i, grew = 0;

    (void)state;
    rapid_sim_config_init(&c);
    c.size = 256;
    c.nscas = 1;
    c.epochs = 1;
    assert_ok(rapid_sim_run(&c, test_path("sim"), NULL, NULL, &err), err);
    snprintf(l2, sizeof l2, "%s/Roman_TDS_simple_model_H158_1_1.fits", test_path("sim"));
    assert_ok(rapid_fits_read_image(l2, "SCI", &a, &err), err);
    assert_ok(rapid_fits_read_image(l2, "ERR", &ea, &err), err);
    assert_ok(rapid_wcs_from_header(&w, &a.hdr, &err), err);
    rapid_eval_plan_opts_init(&o);
    o.n = 20;
    o.mag_min = o.mag_max = 20; /* bright: the sum of the added counts
                                 * dominates the Poisson noise */
    o.nuclear_frac = 0;
    assert_ok(rapid_eval_plan(&w, a.nx, a.ny, "H158", NULL, &o, src, &err), err);
    assert_ok(rapid_eval_inject_l2(l2, test_path("inj.fits"), src, 20, 5, &err), err);
    assert_ok(rapid_fits_read_image(test_path("inj.fits"), "SCI", &b, &err), err);
    assert_ok(rapid_fits_read_image(test_path("inj.fits"), "ERR", &eb, &err), err);
    assert_int_equal(rapid_fits_has_hdu(test_path("inj.fits"), "DQ", &err), 1);
    for (k = 0; k < (long)a.nx * a.ny; k++) {
        if (isfinite(a.data[k]) && isfinite(b.data[k]))
            added += (double)b.data[k] - a.data[k];
        grew += eb.data[k] > ea.data[k];
    }
    for (i = 0; i < 20; i++) {
        assert_true(src[i].flux_dn > 0);
        truth += src[i].flux_dn;
    }
    /* the PSF's wings beyond its stamp and NaN pixels lose a little */
    assert_true(fabs(added / truth - 1) < 0.03);
    assert_true(grew > 20 * 9);
    assert_int_equal(rapid_fits_verify_checksums(test_path("inj.fits"), &err), 0);
    /* an unreadable input is named, nothing written */
    assert_int_not_equal(rapid_eval_inject_l2(test_path("nope.fits"), test_path("x.fits"),
                                              src, 20, 5, &err), 0);
    assert_non_null(strstr(err.msg, "nope.fits"));
    assert_int_equal(test_count_prefixed(test_tmpdir(), "x.fits"), 0);
    rapid_image_release(&a);
    rapid_image_release(&b);
    rapid_image_release(&ea);
    rapid_image_release(&eb);
    rapid_wcs_release(&w);
}

static int is_png(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    int ok = f && fread(b, 1, 8, f) == 8 && memcmp(b, sig, 8) == 0;

    if (f)
        fclose(f);
    return ok;
}

static void test_plots(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_eval_result r[2];
    const char *names[2] = {"zogy", "naive"};
    double fp[100];
    long n;
    rapid_eval_inj *t = make_table(&n, 0);
    int k;

    (void)state;
    for (k = 0; k < 100; k++)
        fp[k] = 22 + 0.06 * k;
    assert_ok(rapid_eval_metrics(t, n, RAPID_EVAL_ALL, fp, 100, 5, 26.4, &bins, &r[0], &err),
              err);
    assert_ok(rapid_eval_metrics(t, n / 2, RAPID_EVAL_ALL, fp, 30, 5, 26.4, &bins, &r[1], &err),
              err);
    assert_ok(rapid_eval_plot(test_path("c.png"), RAPID_EVAL_PLOT_COMPLETENESS, r, names, 2,
                              "H158, field", &err), err);
    assert_ok(rapid_eval_plot(test_path("f.png"), RAPID_EVAL_PLOT_FP, r, names, 2, "H158", &err),
              err);
    assert_ok(rapid_eval_plot(test_path("p.png"), RAPID_EVAL_PLOT_PRECISION, r, names, 2, NULL,
                              &err), err);
    assert_true(is_png(test_path("c.png")));
    assert_true(is_png(test_path("f.png")));
    assert_true(is_png(test_path("p.png")));
    /* nothing left beside them; an unwritable place is an error */
    assert_int_equal(test_count_prefixed(test_tmpdir(), "c.png"), 1);
    assert_int_equal(test_count_prefixed(test_tmpdir(), "f.png"), 1);
    assert_int_equal(test_count_prefixed(test_tmpdir(), "p.png"), 1);
    assert_int_equal(test_count_prefixed(test_tmpdir(), "c.png.tmp"), 0);
    assert_int_equal(rapid_eval_plot("/nonexistent/dir/x.png", RAPID_EVAL_PLOT_FP, r, names, 2,
                                     NULL, &err), RAPID_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.png"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completeness_and_precision),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_losses),
        cmocka_unit_test(test_false_positives),
        cmocka_unit_test(test_fom_and_m5sigma),
        cmocka_unit_test(test_never_complete),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_scene),
        cmocka_unit_test(test_inject_l2),
        cmocka_unit_test(test_plots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
