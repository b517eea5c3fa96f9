/* test_zogy.c - ZOGY on synthetic pairs whose answer is known: Gaussian
 * PSFs, white Gaussian noise, point sources put in by the test.
 *  - where nothing changed, D / sigma_D and S_corr are unit normal;
 *  - a point source of flux f in the science image measures f on D with
 *    P_D, and peaks in S_corr at its position with the S/N the matched
 *    filter gives it;
 *  - P_D has unit sum, and with a noiseless reference it is the science
 *    PSF (the proper difference is then the science image itself, the
 *    reference's PSF undone);
 *  - a hole of no data changes D only near it;
 *  - bad arguments are refused with a message. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/coadd.h"
#include "rapid/diff.h"
#include "rapid/psfops.h"
#include "rapid/sim.h"
#include "rapid/rng.h"
#include "diff/modelerr.h"
#include "testutil.h"

#define NX 200
#define NY 180
#define NP 25

static void gauss_psf(float *p, int n, double sigma, double dx, double dy)
{
    int h = n / 2, i, j;
    double s = 0;

    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double x = i - h - dx, y = j - h - dy;
            p[j * n + i] = (float)exp(-(x * x + y * y) / (2 * sigma * sigma));
            s += p[j * n + i];
        }
    for (i = 0; i < n * n; i++)
        p[i] = (float)(p[i] / s);
}

/* psf added at integer pixel (x0, y0) with flux f */
static void add_source(float *img, const float *psf, int n, int x0, int y0,
                       double f)
{
    int h = n / 2, i, j;

    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            int x = x0 + i - h, y = y0 + j - h;
            if (x >= 0 && x < NX && y >= 0 && y < NY)
                img[y * NX + x] += (float)(f * psf[j * n + i]);
        }
}

typedef struct pair {
    float n[NX * NY], r[NX * NY], vn[NX * NY], vr[NX * NY];
    float pn[NP * NP], pr[NP * NP];
} pair;

static void make_pair(pair *p, double sn, double sr, double wn, double wr,
                      uint64_t seed)
{
    rapid_rng g;
    int i;

    rapid_rng_seed(&g, seed);
    gauss_psf(p->pn, NP, wn, 0, 0);
    gauss_psf(p->pr, NP, wr, 0, 0);
    for (i = 0; i < NX * NY; i++) {
        p->n[i] = (float)(sn * rapid_rng_normal(&g));
        p->r[i] = (float)(sr * rapid_rng_normal(&g));
        p->vn[i] = (float)(sn * sn);
        p->vr[i] = (float)(sr * sr);
    }
}

static void zin(rapid_zogy_in *in, const pair *p)
{
    memset(in, 0, sizeof *in);
    in->nx = NX;
    in->ny = NY;
    in->n = p->n;
    in->r = p->r;
    in->vn = p->vn;
    in->vr = p->vr;
    in->pn = p->pn;
    in->pr = p->pr;
    in->npn = in->npr = NP;
}

/* PSF-weighted least-squares flux of a source at integer (x0, y0) */
static double psf_flux(const float *d, const float *unc, const float *psf,
                       int n, int x0, int y0)
{
    int h = n / 2, i, j;
    double num = 0, den = 0;

    for (j = -h; j <= h; j++)
        for (i = -h; i <= h; i++) {
            double p = psf[(j + h) * n + i + h];
            double w = 1 / ((double)unc[(y0 + j) * NX + x0 + i] *
                            unc[(y0 + j) * NX + x0 + i]);
            num += p * d[(y0 + j) * NX + x0 + i] * w;
            den += p * p * w;
        }
    return num / den;
}

/* median and robust sigma over the inner region (border px left out) */
static void robust_inner(const float *v, int border, double *med, double *sig)
{
    static unsigned char skip[NX * NY];
    int i;

    for (i = 0; i < NX * NY; i++)
        skip[i] = i % NX < border || i % NX >= NX - border ||
                  i / NX < border || i / NX >= NY - border;
    assert_true(test_robust(v, skip, NX * NY, med, sig) > 1000);
}

static void test_noise_is_unit_normal(void **state)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out out = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;
    float *z = malloc(sizeof(float) * NX * NY);
    double med, sig, sum = 0;
    const double widths[3][2] = {{1.2, 1.8}, {1.8, 1.2}, {1.5, 1.5}};
    int i, k;

    (void)state;
    assert_non_null(z);
    for (k = 0; k < 3; k++) {
        make_pair(&p, 2.0, 0.7, widths[k][0], widths[k][1], 11 + (uint64_t)k);
        zin(&in, &p); /* noise estimated by the code */
        assert_ok(rapid_zogy(&in, NULL, &out, &err), err);
        assert_true(fabs(out.sigma_n - 2.0) < 0.05);
        assert_true(fabs(out.sigma_r - 0.7) < 0.02);
        for (i = 0; i < NX * NY; i++)
            z[i] = out.d[i] / out.unc[i];
        robust_inner(z, NP, &med, &sig);
        assert_true(fabs(sig - 1) < 0.05);
        assert_true(fabs(med) < 0.05);
        robust_inner(out.scorr, NP, &med, &sig);
        assert_true(fabs(sig - 1) < 0.05);
        assert_true(fabs(med) < 0.05);
        for (i = 0, sum = 0; i < out.npd * out.npd; i++)
            sum += out.pd[i];
        assert_true(fabs(sum - 1) < 1e-5);
        assert_int_equal(out.npd, NP);
        /* padded against wrap-around, to sizes FFTW does fast */
        assert_true(out.padx >= NX + NP && rapid_fft_is_fast(out.padx, 0));
        assert_true(out.pady >= NY + NP && rapid_fft_is_fast(out.pady, 0));
        rapid_zogy_out_release(&out);
    }
    free(z);
}

static void test_point_source(void **state)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out out = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const double sn = 1.0, sr = 0.5, wn = 1.3, wr = 1.7;
    double f_faint, f_bright = 2000, snr, s2 = 0, best = -1, flux;
    int i, j, bx = -1, by = -1;

    (void)state;
    make_pair(&p, sn, sr, wn, wr, 5);
    /* the matched filter's S/N of a source of flux f in the science image
     * of this pair: f sqrt(sum |P_n P_r|^2 / Delta^2) over frequencies,
     * which for Gaussians is an integral done here on a fine grid */
    for (j = -256; j < 256; j++)
        for (i = -256; i < 256; i++) {
            double kx = i / 512.0, ky = j / 512.0, k2 = kx * kx + ky * ky;
            double an = exp(-2 * M_PI * M_PI * wn * wn * k2);
            double ar = exp(-2 * M_PI * M_PI * wr * wr * k2);
            s2 += an * an * ar * ar / (sn * sn * ar * ar + sr * sr * an * an);
        }
    s2 /= 512.0 * 512.0;
    f_faint = 10 / sqrt(s2); /* S/N 10 */
    add_source(p.n, p.pn, NP, 60, 70, f_faint);
    add_source(p.n, p.pn, NP, 140, 100, f_bright);
    for (i = 0; i < NX * NY; i++) /* source noise in the variance */
        p.vn[i] = (float)(sn * sn);
    zin(&in, &p);
    in.sigma_n = sn;
    in.sigma_r = sr;
    assert_ok(rapid_zogy(&in, NULL, &out, &err), err);
    for (j = 55; j <= 85; j++)
        for (i = 45; i <= 75; i++)
            if (out.scorr[j * NX + i] > best) {
                best = out.scorr[j * NX + i];
                bx = i;
                by = j;
            }
    assert_int_equal(bx, 60);
    assert_int_equal(by, 70);
    snr = best;
    assert_true(fabs(snr - 10) < 2); /* within 20 %, one noise draw */
    flux = psf_flux(out.d, out.unc, out.pd, out.npd, 140, 100);
    assert_true(fabs(flux / f_bright - 1) < 0.02);
    rapid_zogy_out_release(&out);
}

/* A reference sharper than the science image and far less noisy: the
 * proper difference is then the science image itself (the reference PSF's
 * filter undone), and P_D the science PSF, to the order of
 * sigma_r^2 / sigma_n^2. */
static void test_noiseless_reference(void **state)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out out = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;
    int i;

    (void)state;
    make_pair(&p, 1.0, 0.0, 1.6, 1.2, 9);
    zin(&in, &p);
    in.sigma_n = 1.0;
    in.sigma_r = 0.05;
    assert_ok(rapid_zogy(&in, NULL, &out, &err), err);
    for (i = 0; i < NP * NP; i++)
        assert_true(fabs(out.pd[i] - p.pn[i]) < 2e-4);
    /* and D is N */
    for (i = NP * NX + NP; i < NX * NY - NP * NX; i += 97)
        if (i % NX > NP && i % NX < NX - NP)
            assert_true(fabs(out.d[i] - p.n[i]) < 1e-2);
    rapid_zogy_out_release(&out);
}

/* A square hole of no data in the science image: D beyond 3 FWHM of it
 * is what it was without the hole, within 0.01 sigma_D; NaN inside. */
static void test_hole(void **state)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out a = RAPID_ZOGY_OUT_INIT, b = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const double wn = 1.2, wr = 1.8, fwhm = 2.3548 * 1.8;
    int i, j, x0 = 80, y0 = 70, w = 12, near;
    double worst = 0;

    (void)state;
    make_pair(&p, 1.0, 0.6, wn, wr, 21);
    add_source(p.n, p.pn, NP, x0 + 5, y0 + 5, 500); /* a star in the hole */
    add_source(p.r, p.pr, NP, x0 + 5, y0 + 5, 500);
    zin(&in, &p);
    in.sigma_n = 1.0;
    in.sigma_r = 0.6;
    assert_ok(rapid_zogy(&in, NULL, &a, &err), err);
    for (j = y0; j < y0 + w; j++)
        for (i = x0; i < x0 + w; i++)
            p.n[j * NX + i] = NAN;
    assert_ok(rapid_zogy(&in, NULL, &b, &err), err);
    for (j = 0; j < NY; j++)
        for (i = 0; i < NX; i++) {
            double dx = i < x0 ? x0 - i : i >= x0 + w ? i - (x0 + w - 1) : 0;
            double dy = j < y0 ? y0 - j : j >= y0 + w ? j - (y0 + w - 1) : 0;
            near = sqrt(dx * dx + dy * dy) <= 3 * fwhm;
            if (dx == 0 && dy == 0) {
                assert_true(isnan(b.d[j * NX + i]) && isnan(b.scorr[j * NX + i]) &&
                            isnan(b.unc[j * NX + i]));
                continue;
            }
            if (!near) {
                double e = fabs(a.d[j * NX + i] - b.d[j * NX + i]) / a.unc[j * NX + i];
                if (e > worst)
                    worst = e;
            }
        }
    assert_true(worst < 0.01);
    rapid_zogy_out_release(&a);
    rapid_zogy_out_release(&b);
}

/* A 2-D DFT in double precision (forward: sign -1), separable, of a
 * px x py complex array in place: the reference the single-precision
 * transforms are checked against. */
static void dft2(double complex *a, int px, int py, int sign)
{
    double complex *t = malloc((size_t)(px > py ? px : py) * sizeof *t);
    int i, j, k;

    assert_non_null(t);
    for (j = 0; j < py; j++) {
        for (k = 0; k < px; k++) {
            double complex s = 0;
            for (i = 0; i < px; i++)
                s += a[(size_t)j * px + i] *
                     cexp(sign * 2 * M_PI * I * (double)((long)k * i % px) / px);
            t[k] = s;
        }
        memcpy(a + (size_t)j * px, t, (size_t)px * sizeof *t);
    }
    for (i = 0; i < px; i++) {
        for (k = 0; k < py; k++) {
            double complex s = 0;
            for (j = 0; j < py; j++)
                s += a[(size_t)j * px + i] *
                     cexp(sign * 2 * M_PI * I * (double)((long)k * j % py) / py);
            t[k] = s;
        }
        for (k = 0; k < py; k++)
            a[(size_t)k * px + i] = t[k];
    }
    free(t);
}

/* A PSF to the origin of a zeroed px x py array (wrapped), unit sum. */
static void psf_origin(const float *p, double complex *a, int px, int py)
{
    int h = NP / 2, i, j;
    double s = 0;

    for (i = 0; i < NP * NP; i++)
        s += p[i];
    memset(a, 0, (size_t)px * py * sizeof *a);
    for (j = 0; j < NP; j++)
        for (i = 0; i < NP; i++)
            a[(size_t)((j - h + py) % py) * px + (i - h + px) % px] = p[j * NP + i] / s;
}

/* Single precision against a bright star: the largest difference
 * between D and the proper difference computed in double precision from
 * the same padded images, in sigma_D, for a pair with a static star 10^6
 * sigma bright at its peak.  A transform's rounding is relative to the
 * largest values it carries, and spreads along their rows and columns:
 * D is formed from the transforms of N - R, in which the star cancels up
 * to the PSFs' difference, and of R through B - A (instead of N and R
 * through B and A), and S from D's transform. */
static double bright_star_error(double wn, double wr)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out z = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double complex *a, *b, *x, *y;
    double s2n = 1, s2r = 0.36, fd, worst = 0;
    int px, py, i, j;
    size_t np, k;

    make_pair(&p, 1.0, 0.6, wn, wr, 41);
    add_source(p.n, p.pn, NP, 100, 90, 1e7);
    add_source(p.r, p.pr, NP, 100, 90, 1e7);
    zin(&in, &p);
    in.sigma_n = 1.0;
    in.sigma_r = 0.6;
    assert_ok(rapid_zogy(&in, NULL, &z, &err), err);
    px = z.padx;
    py = z.pady;
    np = (size_t)px * py;
    a = calloc(np, sizeof *a);
    b = calloc(np, sizeof *b);
    x = calloc(np, sizeof *x);
    y = calloc(np, sizeof *y);
    assert_true(a && b && x && y);
    psf_origin(p.pn, a, px, py);
    psf_origin(p.pr, b, px, py);
    for (j = 0; j < NY; j++)
        for (i = 0; i < NX; i++) {
            x[(size_t)j * px + i] = p.n[j * NX + i];
            y[(size_t)j * px + i] = p.r[j * NX + i];
        }
    dft2(a, px, py, -1);
    dft2(b, px, py, -1);
    dft2(x, px, py, -1);
    dft2(y, px, py, -1);
    fd = 1 / sqrt(s2n + s2r);
    for (k = 0; k < np; k++) {
        double d2 = s2n * creal(b[k] * conj(b[k])) + s2r * creal(a[k] * conj(a[k]));
        x[k] = (b[k] * x[k] - a[k] * y[k]) / sqrt(d2); /* D, unnormalised */
    }
    dft2(x, px, py, 1);
    for (j = 0; j < NY; j++)
        for (i = 0; i < NX; i++) {
            size_t q = (size_t)j * NX + i, r = (size_t)j * px + i;
            double d = creal(x[r]) / (double)np / fd;
            double e = fabs(z.d[q] - d) / z.unc[q];
            worst = e > worst ? e : worst;
        }
    print_message("bright star, PSF widths %.1f and %.1f px: D within %.4f "
                  "sigma_D of double precision\n", wn, wr, worst);
    free(a);
    free(b);
    free(x);
    free(y);
    rapid_zogy_out_release(&z);
    return worst;
}

static void test_bright_star_precision(void **state)
{
    (void)state;
    /* the same PSF (two visits of one pointing): the star cancels in
     * N - R and B - A is 0, so its light is in no transform (0.096 sigma_D
     * when D was formed from the transforms of N and R) */
    assert_true(bright_star_error(1.0, 1.0) < 0.002);
    /* different PSFs: the transforms of R and of the PSFs still carry the
     * star's light (0.10 sigma_D here, 10^6 sigma at the peak; in
     * proportion, 6e-4 sigma_D next to a star at saturation) */
    assert_true(bright_star_error(0.9, 1.1) < 0.09);
}

static void test_bad_arguments(void **state)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out out = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    make_pair(&p, 1, 1, 1.5, 1.5, 3);
    zin(&in, &p);
    in.npn = 24;
    assert_int_equal(rapid_zogy(&in, NULL, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "odd-sized"));
    zin(&in, &p);
    memset(p.pr, 0, sizeof p.pr);
    assert_int_equal(rapid_zogy(&in, NULL, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "reference PSF"));
    make_pair(&p, 1, 1, 1.5, 1.5, 3);
    for (int i = 0; i < NX * NY; i++)
        p.r[i] = NAN;
    zin(&in, &p);
    assert_int_equal(rapid_zogy(&in, NULL, &out, &err), RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "noise"));
    assert_null(out.d);
}

static void read_psf(const char *l2, rapid_image *psf)
{
    rapid_err err = RAPID_ERR_INIT;
    char path[1024];

    assert_ok(rapid_coadd_find_psf(l2, "H158", 1, path, sizeof path, &err),
              err);
    assert_ok(rapid_fits_read_image(path, "0", psf, &err), err);
}

/* Two simulated visits of the same sky (nothing changes between them),
 * the second against the first: D / sigma_D and S_corr are unit normal
 * with the noises estimated by the code. */
static void test_simulated_pair(void **state)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_science sci = RAPID_SCIENCE_INIT, ref = RAPID_SCIENCE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs sw = RAPID_WCS_INIT, rw = RAPID_WCS_INIT;
    rapid_image ps = RAPID_IMAGE_INIT, pr = RAPID_IMAGE_INIT;
    rapid_diff_ref r;
    rapid_diff_pair p;
    rapid_zogy_out out = RAPID_ZOGY_OUT_INIT;
    const char *dir = test_path("sim");
    char a[1024], b[1024];
    double med, sig;
    float *z;
    size_t i, n;
    rapid_sim_pointing *pt = NULL;

    (void)state;
    rapid_sim_config_init(&c);
    c.size = 512;
    c.nscas = 1;
    c.epochs = 2;
    c.sn_rate = 0;
    c.variable_fraction = 0;
    c.cosmic_rays = 0;
    c.persistence = 0;
    assert_ok(rapid_sim_run(&c, dir, NULL, NULL, &err), err);
    assert_int_equal(rapid_sim_plan(&c, &pt, &err), 2);
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
    read_psf(a, &ps);
    read_psf(b, &pr);
    {   /* the reference PSF as the science pixels see it, from its model
         * before sampling */
        rapid_image ov = RAPID_IMAGE_INIT;
        char path[1024];
        long over;
        assert_ok(rapid_coadd_find_psf(b, "H158", 1, path, sizeof path, &err),
                  err);
        assert_ok(rapid_fits_read_image(path, "OVERSAMP", &ov, &err), err);
        assert_ok(rapid_header_get_long(&ov.hdr, "OVERSAMP", &over, &err), err);
        assert_ok(rapid_psf_on_science(pr.data, pr.nx, ov.data, ov.nx,
                                       (int)over, pr.data, NULL, &err), err);
        rapid_image_release(&ov);
    }
    r = (rapid_diff_ref){ref.rate.data, NULL, ref.unc.data, ref.rate.nx,
                         ref.rate.ny, &rw, 1.0};
    assert_ok(rapid_diff_prepare(&sci, &sw, &r, &p, &err), err);
    assert_ok(rapid_diff_zogy(&sci, &p, ps.data, ps.nx, pr.data, pr.nx, NULL,
                              &out, &err), err);
    n = (size_t)p.nx * p.ny;
    z = malloc(n * sizeof *z);
    assert_non_null(z);
    for (i = 0; i < n; i++)
        z[i] = out.d[i] / out.unc[i];
    assert_true(test_robust(z, NULL, n, &med, &sig) > 1000);
    print_message("ZOGY D / sigma_D: median %+.3f, robust sigma %.3f "
                  "(sigma_n %.4f, sigma_r %.4f)\n", med, sig, out.sigma_n,
                  out.sigma_r);
    assert_true(fabs(med) < 0.05 && fabs(sig - 1) < 0.1);
    assert_true(test_robust(out.scorr, NULL, n, &med, &sig) > 1000);
    print_message("ZOGY S_corr: median %+.3f, robust sigma %.3f; reference "
                  "noise in S %.3f and in D %.3f of its map's\n", med, sig,
                  out.ref_fs, out.ref_fd);
    /* the resampled reference's noise is correlated between neighbours
     * (positively): the matched filter sums that covariance, the
     * whitening cancels part of it; Delta white */
    assert_true(out.ref_fs > 1.2 && out.ref_fd < 1);
    assert_true(out.corr_r[0] == 0 && out.corr_n[0] == 0);
    assert_true(fabs(med) < 0.05 && fabs(sig - 1) < 0.1);
    free(z);
    rapid_zogy_out_release(&out);
    rapid_diff_pair_release(&p);
    rapid_image_release(&ps);
    rapid_image_release(&pr);
    rapid_science_release(&sci);
    rapid_science_release(&ref);
    rapid_wcs_release(&sw);
    rapid_wcs_release(&rw);
}

/* The PSF-model error's estimator (diff/modelerr.h) on stars whose
 * residuals are drawn with a known model error: 144 Gaussian stars (sigma
 * 0.7 px) of peak 20-300 times a unit noise, each pixel's residual the
 * noise plus eps_true L times a unit normal.  The estimate recovers
 * eps_true within 15 % and puts no position scatter where there is none;
 * with the noise alone it is 0 (to 0.01); and the term vanishes where
 * the light, shrunk by 3 robust sigma of its noise, is noise. */
/* A Gaussian star of rms 0.7 px and the given peak at (x0, y0) added to
 * the n-wide light l (out to 5 px of its nearest pixel). */
static void add_star(float *l, int n, double x0, double y0, double peak)
{
    int a, b;

    for (b = -5; b <= 5; b++)
        for (a = -5; a <= 5; a++) {
            int x = (int)lround(x0) + a, y = (int)lround(y0) + b;
            double dx = x - x0, dy = y - y0;
            l[y * n + x] += (float)(peak * exp(-(dx * dx + dy * dy) /
                                               (2 * 0.49)));
        }
}

static void test_model_error_estimator(void **state)
{
    enum { N = 240, G = 12 };
    static float d[N * N], v[N * N], l[N * N], d0[N * N];
    static const double eps_true = 0.15;
    size_t *idx;
    unsigned char *ok = malloc(N * N);
    rapid_rng g;
    double eps, pos, sig;
    int i, j, k, ns, nu;

    (void)state;
    assert_non_null(ok);
    rapid_rng_seed(&g, 77);
    for (k = 0; k < N * N; k++) {
        v[k] = 1;
        l[k] = 0;
        ok[k] = 1;
    }
    for (j = 0; j < G; j++)
        for (i = 0; i < G; i++) {
            double x0 = 10 + 20 * i + rapid_rng_uniform(&g) - 0.5;
            double y0 = 10 + 20 * j + rapid_rng_uniform(&g) - 0.5;
            double peak = 20 + 280 * rapid_rng_uniform(&g);
            add_star(l, N, x0, y0, peak);
        }
    for (k = 0; k < N * N; k++) {
        d0[k] = (float)rapid_rng_normal(&g);
        d[k] = (float)(d0[k] + eps_true * l[k] * rapid_rng_normal(&g));
    }
    assert_int_equal(modelerr_stars(N, N, l, v, ok, NULL, NULL, 0, &idx, &ns),
                     0);
    assert_true(ns >= G * G - 2);
    assert_int_equal(modelerr_fit(N, N, d, v, l, idx, ns, &eps, &pos, &nu), 0);
    print_message("  eps %.4f (true %.2f), pos %.4f px from %d stars\n", eps,
                  eps_true, pos, nu);
    assert_int_equal(nu, ns);
    assert_true(fabs(eps / eps_true - 1) < 0.15);
    assert_true(pos < 0.05);
    assert_int_equal(modelerr_fit(N, N, d0, v, l, idx, ns, &eps, &pos, &nu), 0);
    print_message("  noise alone: eps %.4f, pos %.4f px\n", eps, pos);
    assert_true(eps < 0.01 && pos < 0.01);
    free(idx);
    /* the light's noise shrunk out: pure noise becomes 0 but for 0.3 % */
    for (k = 0; k < N * N; k++)
        l[k] = (float)rapid_rng_normal(&g);
    assert_int_equal(modelerr_denoise(l, N * N, &sig), 0);
    for (k = 0, i = 0; k < N * N; k++)
        i += l[k] != 0;
    print_message("  light of pure noise (sigma %.3f): %d of %d pixels left\n",
                  sig, i, N * N);
    assert_true(fabs(sig - 1) < 0.02 && i < 0.004 * N * N);
    free(ok);
}

/* Both terms at once: 42 Gaussian stars (sigma 0.7 px, peak 20-300),
 * each pixel's residual the noise plus eps_true L and pos_true |grad L|
 * times unit normals.  Each term is kept when the noise alone does not
 * explain its half of the pixels, however much of it the other term
 * takes: the estimate finds both (a gate tested again with the other
 * term held dropped eps to 0 once pos took part of the centres'
 * residuals). */
static void test_model_error_both_terms(void **state)
{
    enum { N = 140, G = 7 };
    static float d[N * N], v[N * N], l[N * N];
    static const double eps_true = 0.08, pos_true = 0.3;
    size_t *idx;
    unsigned char *ok = malloc(N * N);
    rapid_rng g;
    double eps, pos;
    int i, j, k, ns, nu, x, y;

    (void)state;
    assert_non_null(ok);
    rapid_rng_seed(&g, 78);
    for (k = 0; k < N * N; k++) {
        v[k] = 1;
        l[k] = 0;
        ok[k] = 1;
    }
    for (j = 0; j < G; j++)
        for (i = 0; i < G - 1; i++) {
            double x0 = 10 + 20 * i + rapid_rng_uniform(&g) - 0.5;
            double y0 = 10 + 20 * j + rapid_rng_uniform(&g) - 0.5;
            double peak = 20 + 280 * rapid_rng_uniform(&g);
            add_star(l, N, x0, y0, peak);
        }
    for (y = 0; y < N; y++)
        for (x = 0; x < N; x++) {
            k = y * N + x;
            double gx = x > 0 && x < N - 1 ? 0.5 * (l[k + 1] - l[k - 1]) : 0;
            double gy = y > 0 && y < N - 1 ? 0.5 * (l[k + N] - l[k - N]) : 0;
            d[k] = (float)(rapid_rng_normal(&g) +
                           eps_true * l[k] * rapid_rng_normal(&g) +
                           pos_true * sqrt(gx * gx + gy * gy) *
                               rapid_rng_normal(&g));
        }
    assert_int_equal(modelerr_stars(N, N, l, v, ok, NULL, NULL, 0, &idx, &ns),
                     0);
    assert_true(ns >= G * (G - 1) - 2);
    assert_int_equal(modelerr_fit(N, N, d, v, l, idx, ns, &eps, &pos, &nu), 0);
    print_message("  both terms: eps %.4f (true %.2f), pos %.4f px (true "
                  "%.2f) from %d stars\n", eps, eps_true, pos, pos_true, nu);
    assert_true(eps > 0.5 * eps_true && eps < 1.5 * eps_true);
    assert_true(pos > 0.5 * pos_true && pos < 1.5 * pos_true);
    free(idx);
    free(ok);
}

/* A pair without model error (the same Gaussian stars in both images,
 * noise only): ZOGY measures no model error, and sigma_D and S_corr are
 * those of the paper's equations (eps 0) to 1e-6. */
static void test_model_error_none(void **state)
{
    static pair p;
    rapid_zogy_in in;
    rapid_zogy_out a = RAPID_ZOGY_OUT_INIT, b = RAPID_ZOGY_OUT_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0;
    int i, j;

    (void)state;
    make_pair(&p, 1.0, 0.5, 1.2, 1.5, 5);
    for (j = 0; j < 8; j++)
        for (i = 0; i < 8; i++) {
            add_source(p.n, p.pn, NP, 20 + 28 * i, 20 + 28 * j, 300 + 40 * i);
            add_source(p.r, p.pr, NP, 20 + 28 * i, 20 + 28 * j, 300 + 40 * i);
        }
    zin(&in, &p);
    assert_ok(rapid_zogy(&in, NULL, &a, &err), err);
    in.eps_d = in.eps_s = -1;
    assert_ok(rapid_zogy(&in, NULL, &b, &err), err);
    print_message("  measured: eps_d %.4f pos_d %.4f eps_s %.4f pos_s %.4f "
                  "from %d stars; fill %.4f\n", b.eps_d, b.pos_d, b.eps_s,
                  b.pos_s, b.neps, b.eps_fill);
    assert_true(b.neps >= 10);
    for (i = 0; i < NX * NY; i++) {
        worst = fmax(worst, fabs(b.unc[i] / a.unc[i] - 1));
        worst = fmax(worst, fabs(b.scorr[i] - a.scorr[i]));
    }
    print_message("  sigma_D and S_corr against eps 0: %.2g at most\n", worst);
    assert_true(b.eps_d < 0.02 && b.eps_s < 0.02);
    assert_true(worst < 1e-6);
    rapid_zogy_out_release(&a);
    rapid_zogy_out_release(&b);
}

/* modelerr_apply's fast paths against the term written out directly:
 * var + eps^2 l^2 + pos^2 |grad l|^2 where l is finite, the gradient by
 * central differences (one-sided at the edges) and 0 where a neighbour is
 * not finite, bit for bit; on a light of zeros (a denoised sky), stars,
 * NaN and infinite pixels, edges and tiny images.  And modelerr_stars
 * against its rule written out. */
static double grad2_direct(int nx, int ny, const float *l, int x, int y)
{
    int xl = x > 0 ? x - 1 : x, xr = x < nx - 1 ? x + 1 : x;
    int yd = y > 0 ? y - 1 : y, yu = y < ny - 1 ? y + 1 : y;
    double gx = xr > xl ? ((double)l[y * nx + xr] - l[y * nx + xl]) / (xr - xl) : 0;
    double gy = yu > yd ? ((double)l[yu * nx + x] - l[yd * nx + x]) / (yu - yd) : 0;
    double g = gx * gx + gy * gy;

    return isfinite(g) ? g : 0;
}

static void test_model_error_apply(void **state)
{
    static const int sizes[][2] = {{37, 29}, {1, 6}, {2, 2}, {3, 5}, {7, 1}};
    uint64_t s = 17;
    int c, k;

    (void)state;
    for (c = 0; c < 5; c++)
        for (k = 0; k < 3; k++) {
            int nx = sizes[c][0], ny = sizes[c][1], i, x, y, ns = 0, nd = 0;
            float *l = malloc((size_t)nx * ny * sizeof *l);
            float *v = malloc((size_t)nx * ny * sizeof *v);
            float *w = malloc((size_t)nx * ny * sizeof *w);
            unsigned char *ok = malloc((size_t)nx * ny);
            double e = k == 1 ? 0 : 0.1, p = k == 2 ? 0 : 0.3;
            size_t *idx = NULL;
            assert_true(l && v && w && ok);
            for (i = 0; i < nx * ny; i++) {
                double u = test_uniform(&s);
                l[i] = u < 0.6 ? 0 : u < 0.9 ? (float)(200 * test_uniform(&s) - 50)
                     : u < 0.95 ? NAN : u < 0.97 ? INFINITY : -1e30f;
                v[i] = w[i] = (float)(0.5 + test_uniform(&s));
                ok[i] = 1;
            }
            modelerr_apply(nx, ny, l, e, p, v);
            for (y = 0; y < ny; y++)
                for (x = 0; x < nx; x++) {
                    i = y * nx + x;
                    if (isfinite(l[i]))
                        w[i] = (float)(w[i] + e * e * (double)l[i] * l[i] +
                                       (p > 0 ? p * p * grad2_direct(nx, ny, l, x, y) : 0));
                    assert_memory_equal(&v[i], &w[i], sizeof v[i]);
                }
            assert_int_equal(modelerr_stars(nx, ny, l, v, ok, NULL, NULL, 0,
                                            &idx, &ns), 0);
            for (y = MODELERR_CLEAR; y < ny - MODELERR_CLEAR; y++)
                for (x = MODELERR_CLEAR; x < nx - MODELERR_CLEAR; x++) {
                    int a, b, peak = 1;
                    i = y * nx + x;
                    if (!(isfinite(l[i]) && v[i] > 0 &&
                          l[i] >= MODELERR_SNR * sqrt(v[i])))
                        continue;
                    for (b = -MODELERR_SEP; b <= MODELERR_SEP; b++)
                        for (a = -MODELERR_SEP; a <= MODELERR_SEP; a++) {
                            int xx = x + a, yy = y + b;
                            float o;
                            if ((!a && !b) || xx < 0 || yy < 0 || xx >= nx || yy >= ny)
                                continue;
                            o = l[yy * nx + xx];
                            if (o > l[i] || (o == l[i] && (b < 0 || (b == 0 && a < 0))))
                                peak = 0;
                        }
                    if (peak) {
                        assert_true(nd < ns);
                        assert_int_equal(idx[nd], (size_t)i);
                        nd++;
                    }
                }
            assert_int_equal(nd, ns);
            free(idx);
            free(l);
            free(v);
            free(w);
            free(ok);
        }
}

/* modelerr_point_light: 64 Gaussian stars (sigma 0.7 px, peak 30-300,
 * random phases; one with a no-data neighbour) and three extended
 * sources (Gaussians of sigma 2.5 px), one with a star on its flank.
 * The stars' light stays as it is, bit for bit, the extended sources'
 * basins are cleared in both lights and marked, and the star on the
 * flank keeps its own basin; with fewer than MODELERR_MIN bright peaks
 * nothing is cleared. */
static void test_model_error_point_light(void **state)
{
    enum { N = 170 };
    static float l[N * N], l2[N * N], l0[N * N], v[N * N];
    static uint32_t scratch[N * N];
    static unsigned char ext[N * N];
    static const double gx[3] = {30, 90, 150}, gy[3] = {150, 90, 30};
    double sx[65], sy[65], w2;
    long next;
    rapid_rng g;
    int i, j, k, a, b, ns = 0;

    (void)state;
    rapid_rng_seed(&g, 5);
    for (k = 0; k < N * N; k++) {
        l[k] = 0;
        v[k] = 1;
    }
    for (j = 0; j < 8; j++)
        for (i = 0; i < 8; i++) {
            double x0 = 15 + 20 * i + rapid_rng_uniform(&g) - 0.5;
            double y0 = 15 + 20 * j + rapid_rng_uniform(&g) - 0.5;
            double peak = 30 + 270 * rapid_rng_uniform(&g);
            sx[ns] = x0, sy[ns++] = y0;
            add_star(l, N, x0, y0, peak);
        }
    sx[ns] = gx[0] + 4, sy[ns++] = gy[0]; /* on the first galaxy's flank */
    for (k = 0; k < 4; k++) {
        double x0 = k < 3 ? gx[k] : sx[64], y0 = k < 3 ? gy[k] : sy[64];
        double s2 = k < 3 ? 2.5 * 2.5 : 0.49, peak = k < 3 ? 100 : 200;
        for (b = -12; b <= 12; b++)
            for (a = -12; a <= 12; a++) {
                int x = (int)lround(x0) + a, y = (int)lround(y0) + b;
                l[y * N + x] += (float)(peak * exp(-(a * a + b * b) / (2 * s2)));
            }
    }
    /* a no-data pixel beside a star's peak: its width is not measured
     * there, and the star is kept */
    l[(int)lround(sy[9]) * N + (int)lround(sx[9]) + 1] = NAN;
    for (k = 0; k < N * N; k++)
        l2[k] = 0.5f * (l0[k] = l[k]);
    memset(ext, 0, sizeof ext);
    assert_int_equal(modelerr_point_light(N, N, l, l2, v, scratch, ext, &w2,
                                          &next), 0);
    print_message("  point sources' width^2 %.3f px^2, %ld extended\n", w2,
                  next);
    assert_true(w2 > 0.3 && w2 < 0.7);
    assert_int_equal(next, 3);
    for (k = 0; k < N * N; k++) {
        int x = k % N, y = k / N, near_star = 0, near_gal = 0;
        for (i = 0; i < ns; i++)
            near_star |= hypot(x - sx[i], y - sy[i]) <= 1.5;
        for (i = 0; i < 3; i++) /* (the flank star's basin reaches
                                  * 2 px towards its galaxy) */
            near_gal |= hypot(x - gx[i], y - gy[i]) <= 2.5 &&
                        hypot(x - sx[64], y - sy[64]) > 2.5;
        if (near_star) {
            assert_memory_equal(&l[k], &l0[k], sizeof l[k]);
            assert_false(ext[k]);
        }
        if (near_gal) {
            assert_true(l[k] == 0 && l2[k] == 0 && ext[k]);
        }
        if (ext[k])
            assert_true(l[k] == 0 && l2[k] == 0);
        else if (!isnan(l0[k]))
            assert_true(l[k] == l0[k] && l2[k] == 0.5f * l0[k]);
    }
    /* too few bright peaks to know a point source's width: all kept */
    for (k = 0; k < N * N; k++)
        l[k] = l0[k] * (k < 25 * N ? 1 : 0.01f); /* 8 stars */
    memset(ext, 0, sizeof ext);
    assert_int_equal(modelerr_point_light(N, N, l, NULL, v, scratch, ext,
                                          &w2, &next), 0);
    assert_true(w2 == 0 && next == 0);
    for (k = 0; k < N * N; k++)
        assert_false(ext[k]);
}

/* The rule of modelerr_point_light by the plainest reading of it (each
 * lit pixel climbed to its peak step by step; every peak's width; the
 * bright peaks' median), against the library on small images with
 * plateaus and ties (values on a coarse grid), light at the edges, NaN
 * and pixels without noise: the same light, marks, width and count. */
static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;

    return (x > y) - (x < y);
}

static double ref_axis_w2(double a, double b, double c)
{
    double k;

    if (!(a > 0) || !(b > 0) || !(c > 0))
        return 0;
    k = log(a) + log(c) - 2 * log(b);
    return k < 0 ? -1 / k : HUGE_VAL;
}

static int ref_point_light(int nx, int ny, float *l, float *l2,
                           const float *v, unsigned char *ext, double *w2m,
                           long *next)
{
    int n = nx * ny, q, m = 0, x, y, a, b;
    double *w = malloc((size_t)n * sizeof *w);
    float *wb = malloc((size_t)n * sizeof *wb);
    int *root = malloc((size_t)n * sizeof *root);
    unsigned char *wide = calloc((size_t)n, 1);

    assert_non_null(w);
    assert_non_null(wb);
    assert_non_null(root);
    assert_non_null(wide);
    *w2m = 0;
    *next = 0;
    for (q = 0; q < n; q++) { /* widths, and the bright peaks' */
        x = q % nx, y = q / nx;
        w[q] = NAN;
        if (x < 1 || y < 1 || x >= nx - 1 || y >= ny - 1)
            continue;
        w[q] = 0.5 * (ref_axis_w2(l[q - 1], l[q], l[q + 1]) +
                      ref_axis_w2(l[q - nx], l[q], l[q + nx]));
        if (l[q] > 0 && v[q] > 0 && l[q] >= MODELERR_SNR * sqrt(v[q])) {
            int peak = 1;
            for (b = -MODELERR_SEP; b <= MODELERR_SEP; b++)
                for (a = -MODELERR_SEP; a <= MODELERR_SEP; a++) {
                    int o = q + b * nx + a;
                    if ((!a && !b) || x + a < 0 || y + b < 0 || x + a >= nx ||
                        y + b >= ny)
                        continue;
                    if (l[o] > l[q] || (l[o] == l[q] && o < q))
                        peak = 0;
                }
            if (peak)
                wb[m++] = (float)w[q];
        }
    }
    if (m >= MODELERR_MIN) {
        qsort(wb, (size_t)m, sizeof *wb, cmp_float);
        *w2m = wb[m / 2];
    }
    for (q = 0; q < n; q++) { /* each lit pixel climbed to its peak */
        int r = q, s;
        if (!(l[q] > 0))
            continue;
        for (;;) {
            x = r % nx, y = r / nx, s = r;
            for (b = -1; b <= 1; b++)
                for (a = -1; a <= 1; a++) {
                    int o = r + b * nx + a;
                    if (x + a < 0 || y + b < 0 || x + a >= nx || y + b >= ny)
                        continue;
                    if (l[o] > l[s] || (l[o] == l[s] && o < s))
                        s = o;
                }
            if (s == r)
                break;
            r = s;
        }
        root[q] = r;
        if (r == q && *w2m > 0 && w[q] > MODELERR_EXTENDED * *w2m) {
            wide[q] = 1;
            (*next)++;
        }
    }
    for (q = 0; q < n; q++)
        if (l[q] > 0 && wide[root[q]]) {
            l[q] = 0;
            l2[q] = 0;
            ext[q] = 1;
        }
    free(w);
    free(wb);
    free(root);
    free(wide);
    return 0;
}

static void test_model_error_point_light_rule(void **state)
{
    rapid_rng g;
    int t, nwide = 0;

    (void)state;
    rapid_rng_seed(&g, 11);
    for (t = 0; t < 400; t++) {
        int nx = 20 + (int)(60 * rapid_rng_uniform(&g));
        int ny = 20 + (int)(60 * rapid_rng_uniform(&g)), n = nx * ny, q, k;
        float *l = calloc((size_t)n, sizeof *l), *l2 = malloc((size_t)n * 4);
        float *la = malloc((size_t)n * 4), *l2a = malloc((size_t)n * 4);
        float *v = malloc((size_t)n * sizeof *v);
        uint32_t *scratch = malloc((size_t)n * sizeof *scratch);
        unsigned char *ext = calloc((size_t)n, 1), *exta = calloc((size_t)n, 1);
        double w2, w2a;
        long next, nexta;

        assert_true(l && l2 && la && l2a && v && scratch && ext && exta);
        for (k = 0; k < 40; k++) { /* stars and a few broad sources */
            double x0 = nx * rapid_rng_uniform(&g), y0 = ny * rapid_rng_uniform(&g);
            double s = k < 4 ? 2 + 3 * rapid_rng_uniform(&g)
                             : 0.5 + 0.3 * rapid_rng_uniform(&g);
            double peak = 30 + 300 * rapid_rng_uniform(&g);
            for (q = 0; q < n; q++) {
                double dx = q % nx - x0, dy = q / nx - y0;
                l[q] += (float)(peak * exp(-(dx * dx + dy * dy) / (2 * s * s)));
            }
        }
        for (q = 0; q < n; q++) { /* plateaus and ties; noise's shrinking */
            l[q] = floorf(l[q] * 2) / 2 - 1;
            l[q] = l[q] > 0 ? l[q] : 0;
            v[q] = rapid_rng_uniform(&g) < 0.05 ? 0 : 1;
            l2[q] = (float)q;
        }
        l[(int)(n * rapid_rng_uniform(&g))] = NAN;
        memcpy(la, l, (size_t)n * sizeof *l);
        memcpy(l2a, l2, (size_t)n * sizeof *l2);
        memset(scratch, 0xa5, (size_t)n * sizeof *scratch);
        assert_int_equal(modelerr_point_light(nx, ny, l, l2, v, scratch, ext,
                                              &w2, &next), 0);
        ref_point_light(nx, ny, la, l2a, v, exta, &w2a, &nexta);
        assert_true(w2 == w2a);
        assert_int_equal(next, nexta);
        assert_memory_equal(l, la, (size_t)n * sizeof *l);
        assert_memory_equal(l2, l2a, (size_t)n * sizeof *l2);
        assert_memory_equal(ext, exta, (size_t)n);
        nwide += next > 0;
        free(l);
        free(l2);
        free(la);
        free(l2a);
        free(v);
        free(scratch);
        free(ext);
        free(exta);
    }
    print_message("  %d of 400 images with extended sources\n", nwide);
    assert_true(nwide > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_is_unit_normal),
        cmocka_unit_test(test_point_source),
        cmocka_unit_test(test_noiseless_reference),
        cmocka_unit_test(test_hole),
        cmocka_unit_test(test_bright_star_precision),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_simulated_pair),
        cmocka_unit_test(test_model_error_estimator),
        cmocka_unit_test(test_model_error_both_terms),
        cmocka_unit_test(test_model_error_none),
        cmocka_unit_test(test_model_error_apply),
        cmocka_unit_test(test_model_error_point_light),
        cmocka_unit_test(test_model_error_point_light_rule),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    rapid_fft_shared_release();
    return rc;
}
