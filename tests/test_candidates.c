/* test_candidates.c - the candidate stage against the truth: PSF-fit
 * photometry of injected point sources of known flux on white noise of
 * known (varying) sigma, fitted at their detected positions; negative
 * candidates; blended pairs fitted together; vetting metrics and cuts on
 * a real source, a cosmic ray, a dipole and a source at the edge; cuts
 * from INI files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/candidates.h"
#include "rapid/psf.h"
#include "rapid/rng.h"
#include "testutil.h"

/* The H158 PSF of one detector, the same everywhere (ngrid 1), and its
 * oversampled image as psfphot fits it. */
static rapid_psf_field field;
static rapid_psfphot_psf psf_over, psf_native;

static int setup(void **state)
{
    rapid_psf_opts po;
    rapid_image ov = RAPID_IMAGE_INIT, nat = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    rapid_psf_opts_init(&po);
    po.ngrid = 1;
    po.half = 12;
    if (rapid_psf_field_make(&field, rapid_filter_by_name("H158"), 1, 1024, 1024,
                             &po, &err) ||
        rapid_psf_field_oversampled(&field, &ov, &err) ||
        rapid_psf_field_image(&field, 25, &nat, &err) ||
        rapid_psfphot_psf_set(&psf_over, ov.data, ov.nx, ov.ny, 4, "oversampled", &err) ||
        rapid_psfphot_psf_set(&psf_native, nat.data, nat.nx, nat.ny, 1, "native", &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    rapid_image_release(&ov);
    rapid_image_release(&nat);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rapid_psf_field_release(&field);
    rapid_psfphot_psf_release(&psf_over);
    rapid_psfphot_psf_release(&psf_native);
    return 0;
}

/* The stage's input on an n x n difference img with its uncertainty unc
 * and the oversampled PSF; the options at their defaults. */
static void cand_setup(rapid_cand_input *in, rapid_cand_opts *o, float *img,
                       float *unc, int n)
{
    memset(in, 0, sizeof *in);
    in->diff = img;
    in->unc = unc;
    in->nx = in->ny = n;
    in->psf = &psf_over;
    rapid_cand_opts_init(o);
}

typedef struct truth {
    double x, y, flux, snr;
} truth;

/* sum of the squared PSF: a point source of flux f on white noise sigma
 * has S/N f sqrt(sum P^2) / sigma in an optimal (PSF) fit */
static double psf_norm2(void)
{
    double s = 0;
    int i, j;
    for (j = -12; j <= 12; j++)
        for (i = -12; i <= 12; i++) {
            double v = rapid_psfphot_psf_eval(&psf_over, i, j, NULL, NULL);
            s += v * v;
        }
    return s;
}

/* White noise of sigma = 1 + 0.5 x / nx (the uncertainty map exact), plus
 * sources on a grid of `step` px, S/N in the bins 10-20, 20-50, 50-100 in
 * turn, each with a random sub-pixel position, sign s. */
static void scene(int n, int step, uint64_t seed, int s, const double *edges,
                  float *img, float *unc, truth *t, int *nt)
{
    rapid_rng r;
    double p2 = sqrt(psf_norm2());
    const double *lo = edges, *hi = edges + 1;
    int i, j, k = 0;

    rapid_rng_seed(&r, seed);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            unc[j * n + i] = (float)(1 + 0.5 * i / n);
            img[j * n + i] = (float)(unc[j * n + i] * rapid_rng_normal(&r));
        }
    for (j = step; j <= n - step; j += step)
        for (i = step; i <= n - step; i += step) {
            int b = k % 3;
            double x = i + rapid_rng_uniform(&r) - 0.5, y = j + rapid_rng_uniform(&r) - 0.5;
            double snr = lo[b] + (hi[b] - lo[b]) * rapid_rng_uniform(&r);
            double sig = 1 + 0.5 * x / n;
            t[k].x = x;
            t[k].y = y;
            t[k].snr = snr;
            t[k].flux = s * snr * sig / p2;
            rapid_psf_field_add(&field, img, n, n, x, y, t[k].flux);
            k++;
        }
    *nt = k;
}

/* The matched-filter S/N image of img (as ZOGY's S_corr for a difference
 * with white noise): (img / unc^2) (x) P / sqrt((1 / unc^2) (x) P^2), P
 * the native PSF in a 7x7 box. */
static float *matched_filter(const float *img, const float *unc, int n)
{
    float *s = malloc((size_t)n * n * sizeof *s);
    double k[7][7];
    int i, j, a, b;

    for (b = 0; b < 7; b++)
        for (a = 0; a < 7; a++)
            k[b][a] = rapid_psfphot_psf_eval(&psf_over, a - 3, b - 3, NULL, NULL);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double num = 0, den = 0;
            for (b = 0; b < 7; b++)
                for (a = 0; a < 7; a++) {
                    int x = i + a - 3, y = j + b - 3;
                    double w;
                    if (x < 0 || y < 0 || x >= n || y >= n || !isfinite(img[y * n + x]))
                        continue;
                    w = 1.0 / ((double)unc[y * n + x] * unc[y * n + x]);
                    num += img[y * n + x] * w * k[b][a];
                    den += w * k[b][a] * k[b][a];
                }
            s[j * n + i] = den > 0 ? (float)(num / sqrt(den)) : NAN;
        }
    return s;
}

static long nearest(const rapid_table *c, double x, double y, double *d)
{
    const double *cx = rapid_table_col(c, "x")->data, *cy = rapid_table_col(c, "y")->data;
    long i, best = -1;

    *d = 1e30;
    for (i = 0; i < c->nrows; i++) {
        double e = hypot(cx[i] - x, cy[i] - y);
        if (e < *d)
            *d = e, best = i;
    }
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double robust_sd(const double *v, int n)
{
    double *w = malloc((size_t)n * sizeof *w), m, s;
    int i;
    memcpy(w, v, (size_t)n * sizeof *w);
    m = median(w, n);
    for (i = 0; i < n; i++)
        w[i] = fabs(v[i] - m);
    s = 1.4826 * median(w, n);
    free(w);
    return s;
}

#define N 720
#define STEP 20
#define MAXT ((N / STEP) * (N / STEP))

#define NIMG 3

/* Pulls of the PSF fit in three S/N bins (>= 300 sources each: 1200 on
 * NIMG images, so that the robust sd, known to +-0.035 from that many, is
 * tested to 3 of its errors), fluxes unbiased at S/N > 50; sources of sign
 * s (negative candidates when s < 0). */
static void check_pulls(const rapid_psfphot_psf *psf, int s, uint64_t seed,
                        const double edges[4])
{
    float *img = malloc((size_t)N * N * sizeof *img), *unc = malloc((size_t)N * N * sizeof *unc), *det;
    truth *t = malloc(MAXT * sizeof *t);
    double *pf[3], *px[3], *ratio = malloc(NIMG * MAXT * sizeof *ratio);
    int np[3] = {0, 0, 0}, npass[3] = {0, 0, 0}, nt, k, b, nr = 0, missed = 0, ntot = 0, im;
    long failc[3][9];
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_err err = RAPID_ERR_INIT;

    memset(failc, 0, sizeof failc);
    for (b = 0; b < 3; b++) {
        pf[b] = malloc(NIMG * MAXT * sizeof *pf[b]);
        px[b] = malloc(NIMG * MAXT * sizeof *px[b]);
    }
    for (im = 0; im < NIMG; im++) {
        rapid_table cat = RAPID_TABLE_INIT;
        const float *fp, *fe, *xe;
        const double *xp;
        const int32_t *sign, *fb;

        scene(N, STEP, seed + 100 * im, s, edges, img, unc, t, &nt);
        ntot += nt;
        det = matched_filter(img, unc, N);
        memset(&in, 0, sizeof in);
        in.detect = det;
        in.diff = img;
        in.unc = unc;
        in.nx = in.ny = N;
        in.psf = psf;
        in.bunit = "DN/s";
        rapid_cand_opts_init(&o);
        o.negative = s < 0;
        assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
        {
            double kp = 0, k3 = 0;
            assert_ok(rapid_header_get_double(&cat.hdr, "ERRCORPS", &kp, &err), err);
            assert_ok(rapid_header_get_double(&cat.hdr, "ERRCOR3", &k3, &err), err);
            printf("  image %d: ERRCOR3 %.3f ERRCORPS %.3f\n", im, k3, kp);
        }
        fp = rapid_table_col(&cat, "flux_psf")->data;
        fe = rapid_table_col(&cat, "fluxerr_psf")->data;
        xp = rapid_table_col(&cat, "x_psf")->data;
        xe = rapid_table_col(&cat, "xerr_psf")->data;
        sign = rapid_table_col(&cat, "sign")->data;
        fb = rapid_table_col(&cat, "fail_bits")->data;
        for (k = 0; k < nt; k++) {
            double d;
            long i = nearest(&cat, t[k].x, t[k].y, &d);
            b = t[k].snr < edges[1] ? 0 : t[k].snr < edges[2] ? 1 : 2;
            if (i < 0 || d > 1 || sign[i] != s) {
                missed++;
                continue;
            }
            pf[b][np[b]] = (fp[i] - t[k].flux) / fe[i];
            px[b][np[b]] = (xp[i] - t[k].x) / xe[i];
            np[b]++;
            npass[b] += fb[i] == 0;
            for (int q = 0; q < 9; q++)
                failc[b][q] += (fb[i] >> q) & 1;
            if (t[k].snr > 50)
                ratio[nr++] = fp[i] / t[k].flux;
        }
        rapid_table_release(&cat);
        free(det);
    }
    printf("sign %+d, PSF sampled %dx: %d sources, %d not found\n", s, psf->over,
           ntot, missed);
    assert_true(missed <= ntot / 200); /* S/N >= 10 at 2.5 sigma: all found */
    for (b = 0; b < 3; b++) {
        double sd = robust_sd(pf[b], np[b]), med = median(pf[b], np[b]);
        double sdx = robust_sd(px[b], np[b]), medx = median(px[b], np[b]);
        printf("  S/N %g-%g: %.1f %% pass the cuts (fail edge %ld snr %ld elong %ld "
               "ratio %ld nneg %ld nbad %ld sumrat %ld chi2 %ld dmag %ld)\n", edges[b],
               edges[b + 1], 100.0 * npass[b] / np[b], failc[b][0], failc[b][1], failc[b][2],
               failc[b][3], failc[b][4], failc[b][5], failc[b][6], failc[b][7], failc[b][8]);
        printf("  S/N %g-%g: %d sources, flux pull median %.3f robust sd %.3f; "
               "x pull median %.3f sd %.3f\n", edges[b], edges[b + 1], np[b], med, sd, medx, sdx);
        assert_true(np[b] >= 300);
        assert_true(npass[b] >= 0.95 * np[b]); /* clean point sources pass */
        assert_true(fabs(sd - 1) < 0.1);
        assert_true(fabs(med) < 0.2);
        assert_true(fabs(sdx - 1) < 0.1);
        assert_true(fabs(medx) < 0.2);
    }
    {
        double mr = median(ratio, nr);
        printf("  flux ratio at S/N > 50: median %.5f over %d\n", mr, nr);
        assert_true(fabs(mr - 1) < 0.01);
    }
    for (b = 0; b < 3; b++) {
        free(pf[b]);
        free(px[b]);
    }
    free(ratio);
    free(img);
    free(unc);
    free(t);
}

static const double faint[4] = {10, 20, 50, 100}, bright[4] = {100, 300, 1000, 3000};

static void test_pulls_oversampled(void **state)
{
    (void)state;
    check_pulls(&psf_over, +1, 1, faint);
}

static void test_pulls_negative(void **state)
{
    (void)state;
    check_pulls(&psf_over, -1, 2, faint);
}

/* Above S/N 100 the errors need no floor when the PSF is the sources'
 * (docs/candidates.md): the pulls stay honest up to S/N 3000. */
static void test_pulls_bright(void **state)
{
    (void)state;
    check_pulls(&psf_over, +1, 3, bright);
}

#define V 200

/* npix pixels of white noise of sigma 1 from r, the map exact. */
static void noise_fill(float *img, float *unc, long npix, rapid_rng *r)
{
    long k;
    for (k = 0; k < npix; k++) {
        unc[k] = 1;
        img[k] = (float)rapid_rng_normal(r);
    }
}

/* The first of the nt targets within rmax of (x, y); nt if none. */
static int near_target(const double *tx, const double *ty, int nt, double x, double y,
                       double rmax)
{
    int k;
    for (k = 0; k < nt; k++)
        if (hypot(x - tx[k], y - ty[k]) < rmax)
            break;
    return k;
}

/* White noise of sigma 1 (map exact), nothing else. */
static void blank(float *img, float *unc, uint64_t seed)
{
    rapid_rng r;
    rapid_rng_seed(&r, seed);
    noise_fill(img, unc, V * V, &r);
}

static long row_at(const rapid_table *c, double x, double y, double tol)
{
    double d;
    long i = nearest(c, x, y, &d);
    if (i < 0 || d > tol)
        fail_msg("no candidate within %.1f px of (%.1f, %.1f)", tol, x, y);
    return i;
}

static int32_t i32(const rapid_table *c, const char *name, long i)
{
    return ((const int32_t *)rapid_table_col(c, name)->data)[i];
}

static float f32(const rapid_table *c, const char *name, long i)
{
    return ((const float *)rapid_table_col(c, name)->data)[i];
}

/* A point source passes the default cuts; a cosmic ray (one pixel), a
 * dipole and a source 3 px from the edge do not, each for its reason;
 * detection on the difference itself. */
static void test_vetting(void **state)
{
    float *img = malloc(V * V * sizeof *img), *unc = malloc(V * V * sizeof *unc);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long i;

    (void)state;
    blank(img, unc, 7);
    rapid_psf_field_add(&field, img, V, V, 100.3, 60.2, 400);   /* real, S/N ~ 40 */
    img[150 * V + 50] += 80;                                     /* cosmic ray */
    rapid_psf_field_add(&field, img, V, V, 150.0, 150.0, 600);   /* dipole */
    rapid_psf_field_add(&field, img, V, V, 151.6, 150.0, -600);
    rapid_psf_field_add(&field, img, V, V, 3.2, 100.4, 600);     /* at the edge */
    cand_setup(&in, &o, img, unc, V);
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    i = row_at(&cat, 100.3, 60.2, 0.5);
    printf("real: fail_bits %d snr3 %.1f ratio %.2f sumrat %.2f chi2 %.2f dmag %.3f "
           "elong %.2f nneg %d\n", i32(&cat, "fail_bits", i), f32(&cat, "snr_aper_3", i),
           f32(&cat, "aper_ratio_3_6", i), f32(&cat, "sumrat", i),
           f32(&cat, "chi2_psf", i), f32(&cat, "dmag", i), f32(&cat, "elongation", i),
           i32(&cat, "nneg", i));
    assert_int_equal(i32(&cat, "pass", i), 1);
    assert_int_equal(i32(&cat, "fail_bits", i), 0);
    assert_int_equal(i32(&cat, "sign", i), 1);
    assert_true(fabs(f32(&cat, "flux_psf", i) - 400) < 5 * f32(&cat, "fluxerr_psf", i));
    i = row_at(&cat, 50, 150, 0.5);
    printf("cosmic ray: fail_bits %d chi2 %.1f dmag %.2f ratio %.2f\n",
           i32(&cat, "fail_bits", i), f32(&cat, "chi2_psf", i), f32(&cat, "dmag", i),
           f32(&cat, "aper_ratio_3_6", i));
    assert_int_equal(i32(&cat, "pass", i), 0);
    assert_true(i32(&cat, "fail_bits", i) & RAPID_FAIL_CHI2);
    i = row_at(&cat, 150, 150, 1.5);
    printf("dipole: fail_bits %d sumrat %.2f chi2 %.2f\n", i32(&cat, "fail_bits", i),
           f32(&cat, "sumrat", i), f32(&cat, "chi2_psf", i));
    assert_int_equal(i32(&cat, "pass", i), 0);
    i = row_at(&cat, 3.2, 100.4, 0.5);
    assert_int_equal(i32(&cat, "pass", i), 0);
    assert_true(i32(&cat, "fail_bits", i) & RAPID_FAIL_EDGE);
    assert_true(fabs(f32(&cat, "edge_dist", i) - 3.2) < 0.2);
    /* no negative candidates unless asked; with them, the dipole's
     * negative half is one */
    for (i = 0; i < cat.nrows; i++)
        assert_int_equal(i32(&cat, "sign", i), 1);
    rapid_table_release(&cat);
    o.negative = 1;
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    i = row_at(&cat, 151.6, 150, 1.0);
    assert_int_equal(i32(&cat, "sign", i), -1);
    assert_true(f32(&cat, "flux_aper_6", i) < 0 && f32(&cat, "flux_psf", i) < 0);
    assert_true(f32(&cat, "peak", i) < 0);
    rapid_table_release(&cat);
    free(img);
    free(unc);
}

/* A difference with no reference over most of it (NaN there, as every
 * product is where the reference covers less than half a pixel): the
 * detection image's noise comes from where it has data, and the source
 * in the covered part is found. */
static void test_partial_coverage(void **state)
{
    float *img = malloc(V * V * sizeof *img), *unc = malloc(V * V * sizeof *unc),
          *det = malloc(V * V * sizeof *det);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long i;

    (void)state;
    blank(img, unc, 11);
    rapid_psf_field_add(&field, img, V, V, 40.3, 60.2, 400);
    for (i = 0; i < V * V; i++) {
        if (i % V >= V * 4 / 10)
            img[i] = unc[i] = NAN;
        det[i] = img[i] / unc[i];
    }
    memset(&in, 0, sizeof in);
    in.diff = img;
    in.unc = unc;
    in.detect = det;
    in.nx = in.ny = V;
    in.psf = &psf_over;
    rapid_cand_opts_init(&o);
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    i = row_at(&cat, 40.3, 60.2, 0.5);
    assert_int_equal(i32(&cat, "pass", i), 1);
    rapid_table_release(&cat);
    free(img);
    free(unc);
    free(det);
}

/* Two sources 4.6 px apart (closer than the 7 px box) are fitted together
 * and both fluxes come back. */
static void test_blend(void **state)
{
    float *img = malloc(V * V * sizeof *img), *unc = malloc(V * V * sizeof *unc);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long i, j;

    (void)state;
    blank(img, unc, 8);
    rapid_psf_field_add(&field, img, V, V, 100.2, 100.4, 3000);
    rapid_psf_field_add(&field, img, V, V, 104.6, 101.9, 1500);
    cand_setup(&in, &o, img, unc, V);
    o.deblend_cont = 0.0001;
    o.filter_fwhm = 0;
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    i = row_at(&cat, 100.2, 100.4, 0.7);
    j = row_at(&cat, 104.6, 101.9, 0.7);
    assert_true(i != j);
    printf("blend: %.1f +- %.1f (3000), %.1f +- %.1f (1500), flags %x %x\n",
           f32(&cat, "flux_psf", i), f32(&cat, "fluxerr_psf", i), f32(&cat, "flux_psf", j),
           f32(&cat, "fluxerr_psf", j), i32(&cat, "flags", i), i32(&cat, "flags", j));
    assert_true(i32(&cat, "flags", i) & RAPID_CAND_PSF_GROUP);
    assert_true(i32(&cat, "flags", j) & RAPID_CAND_PSF_GROUP);
    assert_false(i32(&cat, "flags", i) & RAPID_CAND_PSF_NOCONV);
    assert_true(fabs(f32(&cat, "flux_psf", i) - 3000) < 4 * f32(&cat, "fluxerr_psf", i));
    assert_true(fabs(f32(&cat, "flux_psf", j) - 1500) < 4 * f32(&cat, "fluxerr_psf", j));
    rapid_table_release(&cat);
    /* a negative residual beside a positive source: fitted together even
     * when negative candidates are not asked for, so that the positive
     * one's fit is good */
    blank(img, unc, 9);
    rapid_psf_field_add(&field, img, V, V, 100.2, 100.4, 1000);
    rapid_psf_field_add(&field, img, V, V, 104.1, 102.3, -1500);
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    i = row_at(&cat, 100.2, 100.4, 0.5);
    printf("beside a negative source: %.1f +- %.1f (1000), chi2 %.2f, flags %x, rows %ld\n",
           f32(&cat, "flux_psf", i), f32(&cat, "fluxerr_psf", i), f32(&cat, "chi2_psf", i),
           i32(&cat, "flags", i), cat.nrows);
    assert_true(i32(&cat, "flags", i) & RAPID_CAND_PSF_GROUP);
    assert_true(f32(&cat, "chi2_psf", i) < 2);
    assert_true(fabs(f32(&cat, "flux_psf", i) - 1000) < 4 * f32(&cat, "fluxerr_psf", i));
    for (j = 0; j < cat.nrows; j++)
        assert_int_equal(i32(&cat, "sign", j), 1);
    rapid_table_release(&cat);
    free(img);
    free(unc);
}

/* Bright sources of another PSF than the one fitted (a model mismatch, as
 * for stars across a detector whose PSF varies), some cut by the image
 * edge: the fits still converge. */
static void test_mismatch_converges(void **state)
{
    float *img = malloc(V * V * sizeof *img), *unc = malloc(V * V * sizeof *unc);
    rapid_psfphot_psf gauss = RAPID_PSFPHOT_PSF_INIT;
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    long i, noconv = 0;
    int k;

    (void)state;
    blank(img, unc, 10);
    rapid_rng_seed(&r, 10);
    assert_ok(rapid_psfphot_psf_gauss(&gauss, 1.9, &err), err);
    for (k = 0; k < 64; k++) {
        double x = 12 + (k % 8) * 25 + rapid_rng_uniform(&r);
        double y = k < 8 ? rapid_rng_uniform(&r) - 0.5 : 12 + (k / 8) * 25 + rapid_rng_uniform(&r);
        int a, b;
        for (b = -8; b <= 8; b++)
            for (a = -8; a <= 8; a++) {
                int ix = (int)floor(x + 0.5) + a, iy = (int)floor(y + 0.5) + b;
                if (iy < 0)
                    continue;
                img[iy * V + ix] += (float)(30000 * rapid_psfphot_psf_eval(&gauss, ix - x, iy - y,
                                                                          NULL, NULL));
            }
    }
    cand_setup(&in, &o, img, unc, V);
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    for (i = 0; i < cat.nrows; i++)
        noconv += (i32(&cat, "flags", i) & RAPID_CAND_PSF_NOCONV) != 0;
    printf("mismatched PSF: %ld of %ld fits did not converge\n", noconv, cat.nrows);
    assert_true(cat.nrows >= 64);
    assert_int_equal(noconv, 0);
    rapid_table_release(&cat);
    rapid_psfphot_psf_release(&gauss);
    free(img);
    free(unc);
}

/* The PSF fits on two threads give the same catalog, bit for bit. */
static void test_threads(void **state)
{
    float *img = malloc((size_t)N * N * sizeof *img), *unc = malloc((size_t)N * N * sizeof *unc);
    truth *t = malloc(MAXT * sizeof *t);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table one = RAPID_TABLE_INIT, two = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    int nt, k;

    (void)state;
    scene(N, STEP, 4, 1, faint, img, unc, t, &nt);
    cand_setup(&in, &o, img, unc, N);
    o.negative = 1;
    assert_ok(rapid_candidates(&in, &o, &one, &err), err);
    o.psf.nthreads = 2;
    assert_ok(rapid_candidates(&in, &o, &two, &err), err);
    assert_true(one.nrows > nt / 2);
    assert_int_equal(one.nrows, two.nrows);
    assert_int_equal(one.ncols, two.ncols);
    for (k = 0; k < one.ncols; k++) {
        size_t w = one.cols[k].type == RAPID_COL_F64 ? 8 : 4;
        assert_memory_equal(one.cols[k].data, two.cols[k].data, w * (size_t)one.nrows);
    }
    rapid_table_release(&one);
    rapid_table_release(&two);
    free(img);
    free(unc);
    free(t);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Cuts from INI files: values replace the defaults; mistakes name the
 * file, the line and the key. */
static void test_cuts_ini(void **state)
{
    rapid_cuts c;
    rapid_err err = RAPID_ERR_INIT;
    const char *p = test_path("cuts.ini");

    (void)state;
    rapid_cuts_init(&c);
    assert_true(c.snr_min == 5 && c.ratio_min == 0.35 && c.dmag_max == 0.3);
    write_file(p, "; stricter\n[cuts]\nsnr_min = 7.5\nchi2_max=4\n");
    assert_ok(rapid_cuts_read(&c, p, &err), err);
    assert_true(c.snr_min == 7.5 && c.chi2_max == 4 && c.edge_min == 5);
    write_file(p, "[cuts]\nsat_rmin = 12\nsat_scale = 3\nsatrad_min = 0.5\n");
    assert_ok(rapid_cuts_read(&c, p, &err), err);
    assert_true(c.sat_rmin == 12 && c.sat_scale == 3 && c.satrad_min == 0.5);
    assert_true(c.snr_min == 7.5);
    write_file(p, "[cuts]\nsnr_min = 6\nsnr_mni = 7\n");
    assert_int_equal(rapid_cuts_read(&c, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "line 3"));
    assert_non_null(strstr(err.msg, "snr_mni"));
    assert_true(c.snr_min == 7.5); /* unchanged on failure */
    write_file(p, "[cuts]\nelong_max = two\n");
    assert_int_equal(rapid_cuts_read(&c, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "not a finite number"));
    write_file(p, "[extract]\nsnr_min = 3\n");
    assert_int_equal(rapid_cuts_read(&c, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "[cuts]"));
    write_file(p, "[cuts]\nratio_min = 2\n");
    assert_int_equal(rapid_cuts_read(&c, p, &err), RAPID_E_ARG);
    assert_int_equal(rapid_cuts_read(&c, test_path("none.ini"), &err), RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "none.ini"));
}

/* Bad inputs are refused with a reason: no PSF, an image without data. */
static void test_errors(void **state)
{
    float *img = malloc(V * V * sizeof *img);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_psfphot_psf p = RAPID_PSFPHOT_PSF_INIT;
    float even[16] = {0}, nan9[9] = {0, 0, 0, 0, NAN, 0, 0, 0, 0};
    int k;

    (void)state;
    for (k = 0; k < V * V; k++)
        img[k] = NAN;
    memset(&in, 0, sizeof in);
    in.diff = img;
    in.nx = in.ny = V;
    rapid_cand_opts_init(&o);
    assert_int_equal(rapid_candidates(&in, &o, &cat, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "no PSF"));
    in.psf = &psf_over;
    assert_int_equal(rapid_candidates(&in, &o, &cat, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "no data"));
    assert_int_equal(rapid_psfphot_psf_set(&p, even, 4, 4, 1, "p.fits", &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "p.fits"));
    assert_int_equal(rapid_psfphot_psf_set(&p, nan9, 3, 3, 1, "q.fits", &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "not a number"));
    free(img);
}

#define C 512
#define CSTEP 32

/* Noise correlated between pixels as a difference image's is (a
 * resampled, convolved reference): white noise smoothed by a Gaussian of
 * sigma 1 px, scaled to a per-pixel sigma of 1, with an uncertainty map of
 * exactly that per-pixel sigma.  Summing the map in quadrature
 * underestimates an aperture's error; the stage measures the aperture
 * noise itself with random apertures on empty sky (ERRCOR* cards).  On
 * that noise alone at most one candidate passes (honest errors give ~0.03
 * per 512^2 image and sign at S/N >= 5), and point sources on it have PSF
 * flux pulls of robust sd 1 +- 0.15 and 3-px aperture flux pulls likewise. */
static void correlated(float *img, float *unc, uint64_t seed)
{
    float *w = malloc((size_t)C * C * sizeof *w);
    double k[7], norm = 0;
    rapid_rng r;
    int i, j, a, b;

    rapid_rng_seed(&r, seed);
    for (i = 0; i < C * C; i++)
        w[i] = (float)rapid_rng_normal(&r);
    for (a = 0; a < 7; a++)
        k[a] = exp(-0.5 * (a - 3) * (a - 3));
    for (b = 0; b < 7; b++)
        for (a = 0; a < 7; a++)
            norm += k[a] * k[a] * k[b] * k[b];
    norm = sqrt(norm);
    for (j = 0; j < C; j++)
        for (i = 0; i < C; i++) {
            double v = 0;
            for (b = 0; b < 7; b++)
                for (a = 0; a < 7; a++)
                    v += k[a] * k[b] * w[((j + b - 3 + C) % C) * C + (i + a - 3 + C) % C];
            img[j * C + i] = (float)(v / norm);
            unc[j * C + i] = 1;
        }
    free(w);
}

static void test_correlated_noise(void **state)
{
    float *img = malloc((size_t)C * C * sizeof *img), *unc = malloc((size_t)C * C * sizeof *unc);
    double *pp = malloc(C * C / (CSTEP * CSTEP) * sizeof *pp),
           *pa = malloc(C * C / (CSTEP * CSTEP) * sizeof *pa);
    double p2 = sqrt(psf_norm2()), frac3 = rapid_psfphot_aperture_fraction(&psf_over, 3);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    long i, npass = 0;
    int np = 0, pass, x, y;

    (void)state;
    cand_setup(&in, &o, img, unc, C);
    o.negative = 1;
    for (pass = 0; pass < 2; pass++) {
        correlated(img, unc, 40 + (uint64_t)pass);
        assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
        for (i = 0; i < cat.nrows; i++)
            npass += i32(&cat, "pass", i);
        if (pass == 0) {
            double c3 = 0;
            assert_ok(rapid_header_get_double(&cat.hdr, "ERRCOR3", &c3, &err), err);
            printf("correlated noise: ERRCOR3 %.3f\n", c3);
            assert_true(c3 > 1.5);
        }
        rapid_table_release(&cat);
    }
    printf("correlated noise: %ld candidates pass on two %d^2 images\n", npass, C);
    assert_true(npass <= 1);
    /* sources of S/N 20-60 by the per-pixel map: their flux pulls */
    correlated(img, unc, 50);
    rapid_rng_seed(&r, 51);
    {
        double tx[C * C / (CSTEP * CSTEP)], ty[C * C / (CSTEP * CSTEP)], tf[C * C / (CSTEP * CSTEP)];
        int nt = 0, k;
        for (y = CSTEP; y < C - CSTEP / 2; y += CSTEP)
            for (x = CSTEP; x < C - CSTEP / 2; x += CSTEP) {
                tx[nt] = x + rapid_rng_uniform(&r) - 0.5;
                ty[nt] = y + rapid_rng_uniform(&r) - 0.5;
                tf[nt] = (20 + 40 * rapid_rng_uniform(&r)) / p2;
                rapid_psf_field_add(&field, img, C, C, tx[nt], ty[nt], tf[nt]);
                nt++;
            }
        assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
        for (k = 0; k < nt; k++) {
            double d;
            i = nearest(&cat, tx[k], ty[k], &d);
            if (i < 0 || d > 1)
                continue;
            pp[np] = (f32(&cat, "flux_psf", i) - tf[k]) / f32(&cat, "fluxerr_psf", i);
            pa[np] = (f32(&cat, "flux_aper_3", i) - tf[k] * frac3) /
                     f32(&cat, "fluxerr_aper_3", i);
            np++;
        }
        rapid_table_release(&cat);
        printf("correlated noise: %d of %d sources, PSF pull sd %.3f median %.3f, "
               "3-px aperture pull sd %.3f\n", np, nt, robust_sd(pp, np), median(pp, np),
               robust_sd(pa, np));
        assert_true(np >= nt * 9 / 10);
        assert_true(fabs(robust_sd(pp, np) - 1) < 0.15);
        assert_true(fabs(robust_sd(pa, np) - 1) < 0.15);
    }
    free(pp);
    free(pa);
    free(img);
    free(unc);
}

/* Noise whose level the map gets wrong in part of the image: white noise
 * of sigma 1 on the left half and 1.5 on the right, the map 1 everywhere.
 * The empty sky's flux / error is then a mixture of two Gaussians, whose
 * core (a median absolute deviation, 1.211 for a fixed-position PSF fit)
 * underestimates the tail: the factor is the one whose 2.5-sigma tail
 * holds the Gaussian fraction (1.2420 %), 1.353 here (solving
 * 0.5 erfc(2.5 k / sqrt 2) + 0.5 erfc(2.5 k / (1.5 sqrt 2)) = erfc(2.5 /
 * sqrt 2)), so that noise peaks beyond the cuts are no more frequent than
 * the Gaussian's at the threshold's own level. */
static void test_mixture_noise(void **state)
{
    float *img = malloc((size_t)C * C * sizeof *img), *unc = malloc((size_t)C * C * sizeof *unc);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    double kp = 0;
    long i;

    (void)state;
    rapid_rng_seed(&r, 61);
    for (i = 0; i < (long)C * C; i++) {
        img[i] = (float)(rapid_rng_normal(&r) * (i % C < C / 2 ? 1.0 : 1.5));
        unc[i] = 1;
    }
    cand_setup(&in, &o, img, unc, C);
    o.negative = 1;
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    assert_ok(rapid_header_get_double(&cat.hdr, "ERRCORPS", &kp, &err), err);
    printf("mixture noise: ERRCORPS %.3f (tail 1.353, core 1.211)\n", kp);
    assert_true(fabs(kp - 1.353) < 0.05);
    rapid_table_release(&cat);
    free(img);
    free(unc);
}

/* The S/N cuts of the PSF fit and the Kron flux: a noise peak that reaches
 * the 3-px aperture's threshold falls short in the other two more often
 * than a point source of the same 3-px S/N, whose PSF-fit S/N is higher
 * (the optimal estimator) and whose flux grows with the aperture.  White
 * noise gives too few peaks at S/N 5 for a count, so the three thresholds
 * are scaled down together (5, 5, 3 -> 3.5, 3.5, 2.1): point sources of
 * PSF-fit S/N 4.5-7 on a grid of 32 px, three 512^2 images, detected on
 * the matched-filter image as ZOGY's S_corr. */
#define NPK 512
#define NPKSTEP 32
static void test_snr_cuts(void **state)
{
    float *img = malloc((size_t)NPK * NPK * sizeof *img),
          *unc = malloc((size_t)NPK * NPK * sizeof *unc), *det;
    double p2 = sqrt(psf_norm2());
    double tx[(NPK / NPKSTEP) * (NPK / NPKSTEP)], ty[(NPK / NPKSTEP) * (NPK / NPKSTEP)];
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    long i, noise_old = 0, noise_new = 0, src_old = 0, src_new = 0;
    int pass, x, y, nt;
    const int newbits = RAPID_FAIL_SNR_PSF | RAPID_FAIL_SNR_AUTO;

    (void)state;
    cand_setup(&in, &o, img, unc, NPK);
    assert_true(o.cuts.snr_psf_min == 5 && o.cuts.snr_auto_min == 3);
    o.negative = 1;
    o.cuts.snr_min = 3.5;
    o.cuts.snr_psf_min = 3.5;
    o.cuts.snr_auto_min = 2.1;
    o.cuts.broad_min = 0; /* judged in test_broad_cut; at 3-px S/N 3.5 it
                           * would remove noise peaks of either set */
    for (pass = 0; pass < 3; pass++) {
        rapid_rng_seed(&r, 70 + (uint64_t)pass);
        noise_fill(img, unc, NPK * NPK, &r);
        nt = 0;
        for (y = NPKSTEP; y < NPK - NPKSTEP / 2; y += NPKSTEP)
            for (x = NPKSTEP; x < NPK - NPKSTEP / 2; x += NPKSTEP) {
                tx[nt] = x + rapid_rng_uniform(&r) - 0.5;
                ty[nt] = y + rapid_rng_uniform(&r) - 0.5;
                rapid_psf_field_add(&field, img, NPK, NPK, tx[nt], ty[nt],
                                    (4.5 + 2.5 * rapid_rng_uniform(&r)) / p2);
                nt++;
            }
        in.detect = det = matched_filter(img, unc, NPK);
        assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
        free(det);
        for (i = 0; i < cat.nrows; i++) {
            const double *cx = rapid_table_col(&cat, "x")->data,
                         *cy = rapid_table_col(&cat, "y")->data;
            int fb = i32(&cat, "fail_bits", i), src = 0, old;
            double snr = f32(&cat, "snr_psf", i);
            assert_true(isnan(snr) ||
                        fabs(snr - i32(&cat, "sign", i) * f32(&cat, "flux_psf", i) /
                                       f32(&cat, "fluxerr_psf", i)) < 1e-3 * fabs(snr) + 1e-5);
            src = near_target(tx, ty, nt, cx[i], cy[i],
                              i32(&cat, "sign", i) > 0 ? 0.5 : 3) < nt;
            if (src && i32(&cat, "sign", i) < 0)
                continue; /* a negative peak beside a source */
            if (!(fb & RAPID_FAIL_SNR) && (snr < 3.5) != !!(fb & RAPID_FAIL_SNR_PSF))
                fail_msg("row %ld: snr_psf %.2f but fail_bits %d", i, snr, fb);
            old = (fb & ~newbits) == 0;
            if (src) {
                src_old += old;
                src_new += old && fb == 0;
            } else {
                noise_old += old;
                noise_new += old && fb == 0;
            }
        }
        rapid_table_release(&cat);
    }
    printf("S/N cuts: noise peaks passing %ld without them, %ld with; point sources "
           "%ld, %ld\n", noise_old, noise_new, src_old, src_new);
    assert_true(noise_old >= 20);
    /* the noise peaks lose a larger share than the sources (the errors'
     * calibration on the tail already keeps some of them below 3.5) */
    assert_true(noise_new < noise_old);
    assert_true((double)(noise_old - noise_new) / noise_old >=
                2.0 * (src_old - src_new) / src_old);
    assert_true(src_new >= src_old * 95 / 100);
    free(img);
    free(unc);
}

/* A single hot pixel (charge the detector's dark map does not flag,
 * always on the same pixel: the reference, from other pointings, does not
 * have it) is sharper than any point source: in the simulated H158 survey
 * such false positives had FWHM 0.83-0.94 px, the recovered injections
 * 1.03 px and more (PSF 1.51 px), and passed every cut.  Here (a bare
 * spike, which the PSF-fit cuts also catch) nearly all fail
 * RAPID_FAIL_SHARP (fwhm below sharp_min times the PSF's); point sources
 * of the same 3-px S/N never do. */
static void test_sharp_cut(void **state)
{
    float *img = malloc((size_t)NPK * NPK * sizeof *img),
          *unc = malloc((size_t)NPK * NPK * sizeof *unc), *det;
    double p2 = sqrt(psf_norm2());
    double tx[(NPK / NPKSTEP) * (NPK / NPKSTEP)], ty[(NPK / NPKSTEP) * (NPK / NPKSTEP)];
    int hot[(NPK / NPKSTEP) * (NPK / NPKSTEP)];
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    long i, nhot = 0, nhot_sharp = 0, nhot_other = 0, nsrc = 0, nsrc_sharp = 0;
    int x, y, k, nt = 0;

    (void)state;
    cand_setup(&in, &o, img, unc, NPK);
    assert_true(o.cuts.sharp_min == 0.7);
    rapid_rng_seed(&r, 91);
    noise_fill(img, unc, NPK * NPK, &r);
    for (y = NPKSTEP; y < NPK - NPKSTEP / 2; y += NPKSTEP)
        for (x = NPKSTEP; x < NPK - NPKSTEP / 2; x += NPKSTEP) {
            hot[nt] = nt % 2;
            if (hot[nt]) { /* 3-px S/N 8-25 */
                tx[nt] = x;
                ty[nt] = y;
                img[y * NPK + x] += (float)(45 + 90 * rapid_rng_uniform(&r));
            } else {
                tx[nt] = x + rapid_rng_uniform(&r) - 0.5;
                ty[nt] = y + rapid_rng_uniform(&r) - 0.5;
                rapid_psf_field_add(&field, img, NPK, NPK, tx[nt], ty[nt],
                                    (8 + 17 * rapid_rng_uniform(&r)) / p2);
            }
            nt++;
        }
    in.detect = det = matched_filter(img, unc, NPK);
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    free(det);
    for (i = 0; i < cat.nrows; i++) {
        const double *cx = rapid_table_col(&cat, "x")->data,
                     *cy = rapid_table_col(&cat, "y")->data;
        int fb = i32(&cat, "fail_bits", i);
        k = near_target(tx, ty, nt, cx[i], cy[i], 0.5);
        if (k == nt || i32(&cat, "sign", i) < 0)
            continue;
        if (hot[k]) {
            nhot++;
            nhot_sharp += (fb & RAPID_FAIL_SHARP) != 0;
            if ((fb & ~RAPID_FAIL_SHARP) == 0) {
                nhot_other++;
                if (!(fb & RAPID_FAIL_SHARP))
                    fail_msg("hot pixel at %.0f %.0f passes: fwhm %.2f", tx[k], ty[k],
                             f32(&cat, "fwhm", i));
            }
        } else if (!(fb & ~RAPID_FAIL_SHARP)) {
            nsrc++;
            nsrc_sharp += (fb & RAPID_FAIL_SHARP) != 0;
        }
    }
    printf("sharp cut: %ld hot pixels found, %ld failing it, %ld passing every other "
           "cut; %ld point sources passing the others, %ld of them failing it\n", nhot,
           nhot_sharp, nhot_other, nsrc, nsrc_sharp);
    assert_true(nhot >= 80 && nhot_sharp >= nhot * 9 / 10);
    assert_true(nsrc >= 80 && nsrc_sharp == 0);
    rapid_table_release(&cat);
    free(img);
    free(unc);
}

/* A broad residual (a PSF core on a Gaussian halo of FWHM 4.5 px with 3
 * times its flux: what an imperfect subtraction leaves of a galaxy or a
 * star's wings) has more of its light between 3 and 6 px than any point
 * source: in the simulated H158 survey such false positives passed every
 * other cut (aper_ratio_3_6 down to 0.4 against the PSF's 0.73).  Here
 * at least 3/4 of the halos that pass the other cuts fail
 * RAPID_FAIL_BROAD (aper_ratio_3_6 below broad_min times the PSF's own);
 * of the point sources (PSF-fit S/N 5-12, where the ratio is noisiest)
 * at most 2 % do. */
static void test_broad_cut(void **state)
{
    float *img = malloc((size_t)NPK * NPK * sizeof *img),
          *unc = malloc((size_t)NPK * NPK * sizeof *unc), *det;
    double p2 = sqrt(psf_norm2());
    double tx[(NPK / NPKSTEP) * (NPK / NPKSTEP)], ty[(NPK / NPKSTEP) * (NPK / NPKSTEP)];
    int broad[(NPK / NPKSTEP) * (NPK / NPKSTEP)];
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng r;
    long i, nb = 0, nb_broad = 0, nb_other = 0, nsrc = 0, nsrc_broad = 0;
    int x, y, k, nt = 0, rep;

    (void)state;
    cand_setup(&in, &o, img, unc, NPK);
    assert_true(o.cuts.broad_min == 0.7);
    rapid_rng_seed(&r, 93);
    for (rep = 0; rep < 3; rep++) {
        nt = 0;
        noise_fill(img, unc, NPK * NPK, &r);
        for (y = NPKSTEP; y < NPK - NPKSTEP / 2; y += NPKSTEP)
            for (x = NPKSTEP; x < NPK - NPKSTEP / 2; x += NPKSTEP) {
                double f = (5 + 7 * rapid_rng_uniform(&r)) / p2;
                broad[nt] = nt % 2;
                tx[nt] = x + rapid_rng_uniform(&r) - 0.5;
                ty[nt] = y + rapid_rng_uniform(&r) - 0.5;
                rapid_psf_field_add(&field, img, NPK, NPK, tx[nt], ty[nt], f);
                if (broad[nt]) { /* a Gaussian halo of FWHM 4.5 px, 3 x the core's flux */
                    double sg = 4.5 / 2.3548200450309493;
                    int a, b;
                    for (b = -12; b <= 12; b++)
                        for (a = -12; a <= 12; a++) {
                            double dx = x + a - tx[nt], dy = y + b - ty[nt];
                            img[(y + b) * NPK + x + a] +=
                                (float)(3 * f * exp(-0.5 * (dx * dx + dy * dy) / (sg * sg)) /
                                        (6.283185307179586 * sg * sg));
                        }
                }
                nt++;
            }
        in.detect = det = matched_filter(img, unc, NPK);
        assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
        free(det);
        for (i = 0; i < cat.nrows; i++) {
            const double *cx = rapid_table_col(&cat, "x")->data,
                         *cy = rapid_table_col(&cat, "y")->data;
            int fb = i32(&cat, "fail_bits", i);
            k = near_target(tx, ty, nt, cx[i], cy[i], 1.0);
            if (k == nt || i32(&cat, "sign", i) < 0 || (fb & ~RAPID_FAIL_BROAD))
                continue;
            if (broad[k]) {
                nb++;
                nb_broad += (fb & RAPID_FAIL_BROAD) != 0;
            } else {
                nsrc++;
                nsrc_broad += (fb & RAPID_FAIL_BROAD) != 0;
            }
        }
        rapid_table_release(&cat);
    }
    nb_other = nb - nb_broad;
    printf("broad cut: %ld halos pass every other cut, %ld of them fail it (%ld pass); "
           "%ld point sources pass the others, %ld of them fail it\n", nb, nb_broad,
           nb_other, nsrc, nsrc_broad);
    assert_true(nb >= 60 && nb_broad >= nb * 3 / 4);
    assert_true(nsrc >= 100 && nsrc_broad <= nsrc / 50);
    free(img);
    free(unc);
}

/* Saturated stars: a candidate closer to a cluster of saturated pixels
 * than sat_rmin + sat_scale x sqrt(its pixels) fails RAPID_FAIL_SAT
 * (satrad < 1), one further away passes; without the map both pass. */
static void test_saturated(void **state)
{
    float *img = malloc(V * V * sizeof *img), *unc = malloc(V * V * sizeof *unc);
    unsigned char *sat = calloc(V * V, 1);
    rapid_cand_input in;
    rapid_cand_opts o;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long i, near, far;
    int a, b;

    (void)state;
    blank(img, unc, 13);
    rapid_psf_field_add(&field, img, V, V, 115.3, 100.2, 400); /* 15 px away */
    rapid_psf_field_add(&field, img, V, V, 140.4, 100.3, 400); /* 40 px away */
    for (b = 99; b <= 101; b++) /* 9 saturated pixels: radius 30 + 2 x 3 = 36 px */
        for (a = 99; a <= 101; a++)
            sat[b * V + a] = 1;
    cand_setup(&in, &o, img, unc, V);
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    near = row_at(&cat, 115.3, 100.2, 0.5);
    far = row_at(&cat, 140.4, 100.3, 0.5);
    assert_int_equal(i32(&cat, "pass", near), 1);
    assert_int_equal(i32(&cat, "pass", far), 1);
    rapid_table_release(&cat);
    in.sat = sat;
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    near = row_at(&cat, 115.3, 100.2, 0.5);
    far = row_at(&cat, 140.4, 100.3, 0.5);
    printf("saturated: satrad %.3f and %.3f\n", f32(&cat, "satrad", near),
           f32(&cat, "satrad", far));
    assert_int_equal(i32(&cat, "fail_bits", near), RAPID_FAIL_SAT);
    assert_true(fabs(f32(&cat, "satrad", near) - 15.3 / 36) < 0.02);
    assert_int_equal(i32(&cat, "pass", far), 1);
    assert_true(fabs(f32(&cat, "satrad", far) - 40.4 / 36) < 0.02);
    {
        long nsat = 0;
        assert_ok(rapid_header_get_long(&cat.hdr, "NSATSTAR", &nsat, &err), err);
        assert_int_equal(nsat, 1);
    }
    rapid_table_release(&cat);
    /* satrad_min 0 turns the cut off */
    o.cuts.satrad_min = 0;
    assert_ok(rapid_candidates(&in, &o, &cat, &err), err);
    for (i = 0; i < cat.nrows; i++)
        assert_false(i32(&cat, "fail_bits", i) & RAPID_FAIL_SAT);
    rapid_table_release(&cat);
    free(sat);
    free(img);
    free(unc);
}

/* The saturated pixels of an L2 file: its DQ's SATURATED bit; none
 * without a DQ; a DQ of another size is an error naming the file. */
static void test_saturated_l2(void **state)
{
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_image sci = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;
    unsigned char *sat = NULL;
    const char *path = test_path("l2sat.fits"), *bare = test_path("l2bare.fits");

    (void)state;
    assert_ok(rapid_image_u32_alloc(&dq, 4, 3, 0, &err), err);
    assert_ok(rapid_image_alloc(&sci, 4, 3, 1.0f, &err), err);
    dq.data[1] = 2;     /* SATURATED */
    dq.data[5] = 3;     /* DO_NOT_USE | SATURATED */
    dq.data[7] = 1;     /* DO_NOT_USE alone */
    dq.data[11] = 2048; /* HOT */
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_image(out, &sci, "SCI", &err), err);
    assert_ok(rapid_fits_append_image_u32(out, &dq, "DQ", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_cand_saturated_l2(path, 4, 3, &sat, &err), err);
    assert_non_null(sat);
    for (int k = 0; k < 12; k++)
        assert_int_equal(sat[k], k == 1 || k == 5);
    free(sat);
    assert_int_equal(rapid_cand_saturated_l2(path, 5, 3, &sat, &err), RAPID_E_ARG);
    assert_null(sat);
    assert_non_null(strstr(err.msg, path));
    assert_ok(rapid_fits_write_image(bare, &sci, NULL, &err), err);
    assert_ok(rapid_cand_saturated_l2(bare, 4, 3, &sat, &err), err);
    assert_null(sat);
    rapid_image_u32_release(&dq);
    rapid_image_release(&sci);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pulls_oversampled),
        cmocka_unit_test(test_pulls_negative),
        cmocka_unit_test(test_pulls_bright),
        cmocka_unit_test(test_vetting),
        cmocka_unit_test(test_partial_coverage),
        cmocka_unit_test(test_blend),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_mismatch_converges),
        cmocka_unit_test(test_cuts_ini),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_correlated_noise),
        cmocka_unit_test(test_mixture_noise),
        cmocka_unit_test(test_snr_cuts),
        cmocka_unit_test(test_sharp_cut),
        cmocka_unit_test(test_broad_cut),
        cmocka_unit_test(test_saturated),
        cmocka_unit_test(test_saturated_l2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
