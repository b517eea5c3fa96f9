/* test_extract.c - detection and measurement on images with exact truth. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/extract.h"
#include "rapid/rng.h"
#include "testutil.h"

#define NX 300
#define NY 260
#define NSTAR 25

typedef struct star {
    double x, y, flux;
} star;

/* Pixel-integrated circular Gaussian: exact fluxes per pixel via erf. */
static void add_gauss(float *img, double x, double y, double flux, double sig)
{
    int i, j, h = (int)ceil(6 * sig);
    double s2 = sig * sqrt(2.0);

    for (j = (int)floor(y) - h; j <= (int)floor(y) + h + 1; j++)
        for (i = (int)floor(x) - h; i <= (int)floor(x) + h + 1; i++) {
            double fx, fy;
            if (i < 0 || j < 0 || i >= NX || j >= NY)
                continue;
            fx = 0.5 * (erf((i + 0.5 - x) / s2) - erf((i - 0.5 - x) / s2));
            fy = 0.5 * (erf((j + 0.5 - y) / s2) - erf((j - 0.5 - y) / s2));
            img[j * NX + i] += (float)(flux * fx * fy);
        }
}

/* A grid of isolated stars of known flux on a sky of 100 with sigma 2. */
static float *scene(star *s, double sig, double sky, double noise, uint64_t seed)
{
    float *img = malloc(NX * NY * sizeof *img);
    rapid_rng r;
    int k;

    rapid_rng_seed(&r, seed);
    for (k = 0; k < NX * NY; k++)
        img[k] = (float)(sky + noise * rapid_rng_normal(&r));
    for (k = 0; k < NSTAR; k++) {
        s[k].x = 30 + (k % 5) * 55 + rapid_rng_uniform(&r);
        s[k].y = 25 + (k / 5) * 50 + rapid_rng_uniform(&r);
        s[k].flux = 2000 + 1000 * k;
        add_gauss(img, s[k].x, s[k].y, s[k].flux, sig);
    }
    return img;
}

static long nearest(const rapid_table *t, double x, double y, double *d)
{
    const double *cx = rapid_table_col(t, "XWIN")->data, *cy = rapid_table_col(t, "YWIN")->data;
    long i, best = -1;

    *d = 1e30;
    for (i = 0; i < t->nrows; i++) {
        double e = hypot(cx[i] - x, cy[i] - y);
        if (e < *d)
            *d = e, best = i;
    }
    return best;
}

static void test_truth(void **state)
{
    star s[NSTAR];
    double sig = 1.2, fwhm = 2.3548 * sqrt(sig * sig + 1.0 / 12);
    float *img = scene(s, sig, 100, 2, 1);
    rapid_extract_opts o;
    rapid_extract_stats st;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const float *ap6, *ap14, *fw;
    int k;

    (void)state;
    rapid_extract_opts_init(&o);
    assert_int_equal(rapid_extract(img, NULL, NULL, NX, NY, &o, NULL, &cat, &st, &err), 0);
    assert_true(fabs(st.bkg - 100) < 0.2);
    assert_true(fabs(st.bkg_rms - 2) < 0.1);
    ap6 = rapid_table_col(&cat, "FLUX_APER_6")->data;
    ap14 = rapid_table_col(&cat, "FLUX_APER_14")->data;
    fw = rapid_table_col(&cat, "FWHM")->data;
    assert_non_null(rapid_table_col(&cat, "FLUXERR_APER_2"));
    for (k = 0; k < NSTAR; k++) {
        /* pixel values integrate the Gaussian over the pixel (the box's
         * variance 1/12), and an exact-overlap aperture sum spreads each
         * value uniformly over its pixel (the box once more): close to a
         * Gaussian of variance sig^2 + 2/12 */
        double d, want6 = s[k].flux * (1 - exp(-9 / (2 * (sig * sig + 2.0 / 12))));
        long i = nearest(&cat, s[k].x, s[k].y, &d);
        assert_true(i >= 0);
        if (d > 0.05)
            fail_msg("star %d at (%.3f, %.3f): nearest detection %.3f px away", k,
                     s[k].x, s[k].y, d);
        /* within 4 sigma of the sky noise in the aperture, plus 0.5% for
         * the approximation above */
        if (!(fabs(ap6[i] - want6) < 4 * 2 * sqrt(M_PI * 9) + 0.005 * want6))
            fail_msg("star %d: aperture 6 %.1f, want %.1f; ap14 %.1f of %.1f; d %.3f", k, ap6[i], want6, ap14[i], s[k].flux, d);
        assert_true(fabs(ap14[i] - s[k].flux) < 4 * 2 * sqrt(M_PI * 49) + 0.003 * s[k].flux);
        if (!(fabs(fw[i] - fwhm) < 0.08 * fwhm))
            fail_msg("star %d: FWHM %.3f, want %.3f", k, fw[i], fwhm);
    }
    assert_true(st.nstars >= NSTAR - 2);
    assert_true(fabs(st.fwhm_med - fwhm) < 0.05 * fwhm);
    /* noise peaks at 2.5 sigma over 5 pixels are rare: few spurious sources */
    assert_true(cat.nrows >= NSTAR && cat.nrows <= NSTAR + 10);
    rapid_table_release(&cat);
    free(img);
}

/* NaN holes are ignored, a noise map gives per-pixel thresholds, sky
 * positions come from the WCS. */
static void test_nan_noise_wcs(void **state)
{
    star s[NSTAR];
    float *img = scene(s, 1.0, 50, 3, 2), *noise = malloc(NX * NY * sizeof *noise);
    rapid_extract_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    const double *ra, *dec, *xw, *yw;
    int k, i, j;

    (void)state;
    for (k = 0; k < NX * NY; k++)
        noise[k] = 3;
    for (j = 100; j < 140; j++) /* a hole with no star in it */
        for (i = 0; i < NX; i++)
            img[j * NX + i] = NAN;
    assert_int_equal(rapid_wcs_tan_grid(&w, 150.0, 2.0, NX, NY, 0.11, NULL), 0);
    rapid_extract_opts_init(&o);
    assert_int_equal(rapid_extract(img, noise, NULL, NX, NY, &o, &w, &cat, NULL, NULL), 0);
    ra = rapid_table_col(&cat, "RA")->data;
    dec = rapid_table_col(&cat, "DEC")->data;
    xw = rapid_table_col(&cat, "XWIN")->data;
    yw = rapid_table_col(&cat, "YWIN")->data;
    for (k = 0; k < cat.nrows; k++) {
        double wr, wd;
        assert_false(yw[k] > 100 && yw[k] < 139);
        rapid_wcs_pix2sky(&w, 1, &xw[k], &yw[k], &wr, &wd, NULL);
        assert_true(fabs(wr - ra[k]) < 1e-10 && fabs(wd - dec[k]) < 1e-10);
    }
    assert_true(cat.nrows >= NSTAR - 5); /* the stars in the hole's rows are gone */
    rapid_table_release(&cat);
    rapid_wcs_release(&w);
    free(img);
    free(noise);
}

/* Detect on one image, measure on another: negative sources of a
 * difference image are found by detecting on its negation. */
static void test_detect_image(void **state)
{
    star s[NSTAR];
    float *img = scene(s, 1.2, 0, 1, 3), *neg = malloc(NX * NY * sizeof *neg);
    rapid_extract_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    int k;

    (void)state;
    for (k = 0; k < NX * NY; k++)
        neg[k] = -img[k];
    rapid_extract_opts_init(&o);
    o.bkg_mesh = 0;
    o.filter_fwhm = 0;
    o.thresh = 5;
    assert_int_equal(rapid_extract(neg, NULL, img, NX, NY, &o, NULL, &cat, NULL, NULL), 0);
    assert_true(cat.nrows >= NSTAR);
    for (k = 0; k < cat.nrows; k++) /* measured on neg: fluxes are negative */
        assert_true(((const float *)rapid_table_col(&cat, "FLUX_APER_6")->data)[k] < 0);
    rapid_table_release(&cat);
    free(img);
    free(neg);
}

/* One object larger than the pixel stack SEP starts with (300 000 pixels
 * for this image): detection must grow the stack and try again. */
static void test_huge_object(void **state)
{
    const int n = 800;
    float *img = malloc((size_t)n * n * sizeof *img);
    rapid_extract_opts o;
    rapid_extract_stats st;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    int i, j;

    (void)state;
    rapid_rng_seed(&r, 11);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double d = hypot(i - n / 2.0, j - n / 2.0);
            img[j * n + i] = (float)(rapid_rng_normal(&r) + (d < 350 ? 50 : 0));
        }
    rapid_extract_opts_init(&o);
    o.bkg_mesh = 0;
    o.naper = 1;
    assert_int_equal(rapid_extract(img, NULL, NULL, n, n, &o, NULL, &cat, &st, &err), 0);
    assert_true(cat.nrows >= 1);
    rapid_table_release(&cat);
    free(img);
}

static void test_errors(void **state)
{
    float img[16] = {0};
    rapid_extract_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    rapid_extract_opts_init(&o);
    assert_int_equal(rapid_extract(img, NULL, NULL, 0, 4, &o, NULL, &cat, NULL, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "0 x 4"));
    /* an all-NaN image: no sources, no crash */
    for (int k = 0; k < 16; k++)
        img[k] = NAN;
    o.bkg_mesh = 0;
    assert_int_equal(rapid_extract(img, NULL, NULL, 4, 4, &o, NULL, &cat, NULL, &err), 0);
    assert_int_equal(cat.nrows, 0);
    rapid_table_release(&cat);
}

/* Catalogs made side by side on several threads (SEP's background and
 * measurements run outside its lock, its detection inside) are bit for
 * bit those made one at a time. */
typedef struct side_job {
    const float *img, *noise;
    rapid_table cat[3];
    int rc;
} side_job;

static void *side_run(void *arg)
{
    side_job *j = arg;
    rapid_extract_opts o;
    int k;

    rapid_extract_opts_init(&o);
    o.bkg_mesh = 32;
    for (k = 0; k < 3 && j->rc == 0; k++)
        j->rc = rapid_extract(j->img, j->noise, NULL, NX, NY, &o, NULL, &j->cat[k],
                              NULL, NULL);
    return NULL;
}

static int same_table(const rapid_table *a, const rapid_table *b)
{
    int k;

    if (a->nrows != b->nrows || a->ncols != b->ncols)
        return 0;
    for (k = 0; k < a->ncols; k++) {
        const rapid_column *x = &a->cols[k], *y = &b->cols[k];
        size_t w = x->type == RAPID_COL_F32 || x->type == RAPID_COL_I32 ? 4
                   : x->type == RAPID_COL_STR ? (size_t)x->width : 8;
        if (x->type != y->type || strcmp(x->name, y->name) != 0 ||
            memcmp(x->data, y->data, w * (size_t)a->nrows) != 0)
            return 0;
    }
    return 1;
}

static void test_side_by_side(void **state)
{
    enum { NJOB = 4 };
    star s[NSTAR];
    float *img[2], *noise = malloc(NX * NY * sizeof *noise);
    side_job one[2], many[NJOB];
    pthread_t th[NJOB];
    int i, k;

    (void)state;
    img[0] = scene(s, 1.2, 100, 2, 11);
    img[1] = scene(s, 1.6, 50, 3, 12);
    for (i = 0; i < NX * NY; i++)
        noise[i] = 2.5f;
    memset(one, 0, sizeof one);
    memset(many, 0, sizeof many);
    for (i = 0; i < 2; i++) { /* alone: the answers */
        one[i].img = img[i], one[i].noise = i ? noise : NULL;
        side_run(&one[i]);
        assert_int_equal(one[i].rc, 0);
        assert_true(one[i].cat[0].nrows >= NSTAR);
    }
    for (i = 0; i < NJOB; i++) {
        many[i].img = img[i % 2], many[i].noise = i % 2 ? noise : NULL;
        assert_int_equal(pthread_create(&th[i], NULL, side_run, &many[i]), 0);
    }
    for (i = 0; i < NJOB; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < NJOB; i++) {
        assert_int_equal(many[i].rc, 0);
        for (k = 0; k < 3; k++)
            assert_true(same_table(&many[i].cat[k], &one[i % 2].cat[0]));
    }
    for (i = 0; i < NJOB; i++)
        for (k = 0; k < 3; k++)
            rapid_table_release(&many[i].cat[k]);
    for (i = 0; i < 2; i++)
        for (k = 0; k < 3; k++)
            rapid_table_release(&one[i].cat[k]);
    free(img[0]), free(img[1]), free(noise);
}


/* Strips against one pass, on a tall crowded scene: faint stars (a
 * cluster of them blended), galaxies, bright stars with wide halos, a NaN
 * patch across a strip boundary, and a galaxy too big for the overlap on
 * another.  Every source outside deblended blends is the one pass's in
 * every column, but for the few that SEP's cleaning treats otherwise
 * beside a blend whose faint pixels were shared out by another draw
 * (rapid/extract.h); members of blends keep their positions and
 * apertures; the strips' catalog is the same on 1 and 3 threads. */
#define SW 400
#define SH 2600

static void add_blob(float *img, double x, double y, double flux, double sx,
                     double sy)
{
    int i, j, h = (int)ceil(5 * fmax(sx, sy));

    for (j = (int)y - h; j <= (int)y + h; j++)
        for (i = (int)x - h; i <= (int)x + h; i++)
            if (i >= 0 && j >= 0 && i < SW && j < SH)
                img[(size_t)j * SW + i] +=
                    (float)(flux / (2 * M_PI * sx * sy) *
                            exp(-0.5 * ((i - x) * (i - x) / (sx * sx) +
                                        (j - y) * (j - y) / (sy * sy))));
}

static float *tall_scene(void)
{
    float *img = malloc((size_t)SW * SH * sizeof *img);
    rapid_rng r;
    int k, i, j;

    rapid_rng_seed(&r, 21);
    for (k = 0; k < SW * SH; k++)
        img[k] = (float)(10 + rapid_rng_normal(&r));
    for (k = 0; k < 2100; k++) /* faint stars */
        add_blob(img, SW * rapid_rng_uniform(&r), SH * rapid_rng_uniform(&r),
                 20 + 300 * rapid_rng_uniform(&r), 1.2, 1.2);
    for (k = 0; k < 250; k++) { /* a cluster across a strip boundary */
        double a = 2 * M_PI * rapid_rng_uniform(&r), d = 70 * rapid_rng_uniform(&r);
        add_blob(img, 200 + d * cos(a), 433 + d * sin(a),
                 50 + 500 * rapid_rng_uniform(&r), 1.2, 1.2);
    }
    for (k = 0; k < 60; k++) { /* galaxies */
        double sx = 2 + 5 * rapid_rng_uniform(&r), sy = 1.5 + 3 * rapid_rng_uniform(&r);
        if (k % 2)
            sx = sy, sy = 2 + 5 * rapid_rng_uniform(&r);
        add_blob(img, SW * rapid_rng_uniform(&r), SH * rapid_rng_uniform(&r),
                 300 + 5000 * rapid_rng_uniform(&r), sx, sy);
    }
    for (k = 0; k < 15; k++) { /* bright stars with halos */
        double x = SW * rapid_rng_uniform(&r), y = SH * rapid_rng_uniform(&r);
        double f = 2e4 + 3e5 * rapid_rng_uniform(&r);
        add_blob(img, x, y, f, 1.3, 1.3);
        add_blob(img, x, y, 0.05 * f, 8, 8);
    }
    add_blob(img, 200, 1300, 1e7, 40, 70); /* taller than the overlap */
    for (j = 2146; j < 2186; j++) /* no data across the boundary at 2166 */
        for (i = 100; i < 200; i++)
            img[(size_t)j * SW + i] = NAN;
    return img;
}

typedef struct strip_case {
    const float *img, *noise;
    int nthreads, strip_rows;
    rapid_table cat;
    rapid_extract_stats st;
    int rc;
} strip_case;

static void strip_extract(strip_case *c)
{
    rapid_extract_opts o;

    rapid_extract_opts_init(&o);
    o.strip_rows = c->strip_rows;
    o.nthreads = c->nthreads;
    c->rc = rapid_extract(c->img, c->noise, NULL, SW, SH, &o, NULL, &c->cat,
                          &c->st, NULL);
}

static double cell(const rapid_column *c, long i)
{
    return c->type == RAPID_COL_F64   ? ((const double *)c->data)[i]
           : c->type == RAPID_COL_F32 ? ((const float *)c->data)[i]
                                      : ((const int32_t *)c->data)[i];
}

static void test_strips(void **state)
{
    float *img = tall_scene(), *noise = malloc((size_t)SW * SH * sizeof *noise);
    strip_case one, s1, s3;
    const rapid_table *a, *b;
    const double *ax, *ay, *bx, *by;
    const int32_t *af;
    long i, j, plain = 0, lost = 0, mlost = 0, blends = 0, extra = 0;
    int k;

    (void)state;
    for (i = 0; i < SW * SH; i++)
        noise[i] = 1.0f;
    memset(&one, 0, sizeof one);
    one.img = img, one.noise = noise, one.nthreads = 1, one.strip_rows = 0;
    s1 = one, s1.strip_rows = 400;
    s3 = s1, s3.nthreads = 3;
    strip_extract(&one);
    strip_extract(&s1);
    strip_extract(&s3);
    assert_int_equal(one.rc, 0);
    assert_int_equal(s1.rc, 0);
    assert_int_equal(s3.rc, 0);
    assert_int_equal(one.st.nstrips, 1);
    /* 6 strips of 433 rows; the big galaxy joins those its cleaning
     * reaches */
    if (s1.st.nstrips != 3)
        fail_msg("%d strips", s1.st.nstrips);
    assert_true(same_table(&s1.cat, &s3.cat));
    assert_int_equal(s1.st.nstrips, s3.st.nstrips);
    a = &one.cat, b = &s1.cat;
    if (!(a->nrows > 1200))
        fail_msg("%ld sources", a->nrows);
    ax = rapid_table_col(a, "X")->data, ay = rapid_table_col(a, "Y")->data;
    bx = rapid_table_col(b, "X")->data, by = rapid_table_col(b, "Y")->data;
    af = rapid_table_col(a, "FLAGS")->data;
    for (i = 0; i < a->nrows; i++) {
        long best = -1;
        for (j = 0; j < b->nrows && best < 0; j++) /* the same barycentre */
            if (fabs(bx[j] - ax[i]) <= 1e-9 && fabs(by[j] - ay[i]) <= 1e-9)
                best = j;
        if (af[i] & 1) { /* a member of a blend: positions and apertures */
            blends++;
            if (best < 0) {
                mlost++;
                continue;
            }
            for (k = 0; k < a->ncols; k++) {
                const char *nm = a->cols[k].name;
                double p = cell(&a->cols[k], i), q = cell(&b->cols[k], best);
                if (strncmp(nm, "FLUX_APER_", 10) && strncmp(nm, "FLUXERR_APER_", 13))
                    continue;
                if (!(fabs(p - q) <= 1e-6 * fabs(p) || (isnan(p) && isnan(q))))
                    fail_msg("blend member at (%.2f, %.2f): %s %g, one pass %g",
                             ax[i], ay[i], nm, q, p);
            }
            continue;
        }
        plain++;
        if (best < 0) {
            lost++;
            continue;
        }
        for (k = 0; k < a->ncols; k++) { /* every column but NUMBER */
            double p = cell(&a->cols[k], i), q = cell(&b->cols[k], best);
            if (!strcmp(a->cols[k].name, "NUMBER"))
                continue;
            if (!(p == q || fabs(p - q) <= 1e-6 * fabs(p) || (isnan(p) && isnan(q))))
                fail_msg("source at (%.2f, %.2f): %s %.9g, one pass %.9g", ax[i],
                         ay[i], a->cols[k].name, q, p);
        }
    }
    for (j = 0; j < b->nrows; j++) { /* and the other way round */
        long q, f = 0;
        for (q = 0; q < a->nrows && !f; q++)
            f = fabs(bx[j] - ax[q]) <= 1e-9 && fabs(by[j] - ay[q]) <= 1e-9;
        extra += !f;
    }
    /* blends there are, and the cleaning's differences beside them few */
    assert_true(blends > 50);
    if (lost + mlost + extra > 2)
        fail_msg("one pass %ld sources, strips %ld: %ld of %ld outside blends and "
                 "%ld of %ld members of blends not found, %ld more", a->nrows,
                 b->nrows, lost, plain, mlost, blends, extra);
    rapid_table_release(&one.cat);
    rapid_table_release(&s1.cat);
    rapid_table_release(&s3.cat);
    free(img);
    free(noise);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truth),
        cmocka_unit_test(test_nan_noise_wcs),
        cmocka_unit_test(test_detect_image),
        cmocka_unit_test(test_huge_object),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_side_by_side),
        cmocka_unit_test(test_strips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
