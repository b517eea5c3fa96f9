/* test_science.c - an L2 image to DN/s with its uncertainty: on a
 * simulated file with ERR and DQ, and on the same pixels without them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/dq.h"
#include "rapid/rng.h"
#include "rapid/science.h"
#include "rapid/sim.h"
#include "rapid/spikes.h"
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
    long flagged = 0, kept = 0;
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
            /* ERR / t, or on the sky its Poisson part from the
             * background instead of the pixel */
            double u = e.data[i] / 302.0, gt = s.gain * 302,
                   b = rapid_background_at(&s.bkg, (double)(i % (size_t)sci.nx),
                                           (double)(i / (size_t)sci.nx)),
                   sky = sqrt(fmax(u * u - fmax(s.rate.data[i], 0) / gt, 0) +
                              fmax(b, 0) / gt);
            assert_true(s.rate.data[i] == sci.data[i] / 302.0f);
            if (s.unc.data[i] == (float)u)
                kept++;
            else
                assert_true(fabs(s.unc.data[i] / sky - 1) < 1e-4);
        }
    }
    print_message("%ld pixels flagged unusable (%.2f %%); %ld of the others "
                  "sky, %ld keep ERR / t\n", flagged, 100.0 * flagged / n,
                  s.nsky, kept);
    assert_true(flagged == s.nunusable && flagged > 0);
    assert_true(s.nsky > 0.8 * (long)n && kept + s.nsky >= (long)n - flagged);
    rapid_science_release(&s);
    rapid_image_release(&sci);
    rapid_image_release(&e);
    rapid_image_u32_release(&dq);
}

/* Without ERR: the uncertainty from the data agrees with the simulator's
 * ERR (which holds the same formula, with sqrt 2 the read noise where a
 * cosmic-ray jump was fitted out), sources and sky alike (the file
 * without ERR has NaN where DQ made them, so that its sky is the same). */
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
    n = (size_t)sci.nx * sci.ny;
    for (i = 0; i < n; i++) /* the same holes: the same sky */
        if (isnan(a.rate.data[i]))
            sci.data[i] = NAN;
    assert_ok(rapid_fits_write_image(bare, &sci, "SCI", &err), err);
    assert_ok(rapid_science_read(bare, NULL, &b, &err), err);
    assert_true(b.from_err == 0 && b.nunusable == 0);
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

/* A flat sky of SKY_E electrons per pixel with Poisson and read noise,
 * and NSTAR bright Gaussian stars, written as an L2 file whose ERR is what
 * a ramp fit gives: the Poisson part from each pixel's own value
 * (rapid_dq_err).  The true sky and star centres come back. */
#define SKY_E 130.0
#define GAIN_E 1.0
#define RN_E 4.2
#define EXPT 300.0
#define NSTAR 4

/* One pixel of mean mu electrons read out (DN), and its error as a ramp
 * fit gives it. */
static float ramp_pixel(rapid_rng *g, double mu, float *err_out)
{
    float v = (float)((rapid_rng_poisson(g, mu) + RN_E * rapid_rng_normal(g)) /
                      GAIN_E);

    *err_out = (float)rapid_dq_err(v, GAIN_E, RN_E);
    return v;
}

/* Write sci and e as an L2 file's SCI and ERR, with its exposure keys, and
 * release them. */
static void write_ramp_l2(const char *path, rapid_image *sci, rapid_image *e)
{
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_header_set_double(&sci->hdr, "EXPTIME", EXPT, NULL), err);
    assert_ok(rapid_header_set_double(&sci->hdr, "GAIN", GAIN_E, NULL), err);
    assert_ok(rapid_header_set_double(&sci->hdr, "RDNOISE", RN_E, NULL), err);
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_image(out, sci, "SCI", &err), err);
    assert_ok(rapid_fits_append_image(out, e, "ERR", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    rapid_image_release(sci);
    rapid_image_release(e);
}

static void flat_sky_l2(const char *path, int nx, double sx[NSTAR],
                        double sy[NSTAR])
{
    rapid_image sci = RAPID_IMAGE_INIT, e = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng g;
    int x, y, k;

    rapid_rng_seed(&g, 18);
    for (k = 0; k < NSTAR; k++) {
        sx[k] = 60 + (nx - 120) * (k % 2) + 0.3 * k;
        sy[k] = 60 + (nx - 120) * (k / 2) + 0.2 * k;
    }
    assert_ok(rapid_image_alloc(&sci, nx, nx, 0, &err), err);
    assert_ok(rapid_image_alloc(&e, nx, nx, 0, &err), err);
    for (y = 0; y < nx; y++)
        for (x = 0; x < nx; x++) {
            double mu = SKY_E;
            size_t i = (size_t)y * nx + x;
            for (k = 0; k < NSTAR; k++) /* peak 20000 e, sigma 1 px */
                mu += 20000 * exp(-0.5 * ((x - sx[k]) * (x - sx[k]) +
                                          (y - sy[k]) * (y - sy[k])));
            sci.data[i] = ramp_pixel(&g, mu, &e.data[i]);
        }
    write_ramp_l2(path, &sci, &e);
}

/* The uncertainty of an empty-sky pixel is that of the sky's expected
 * rate, not of the pixel's own noisy value: the ERR of a ramp fit takes
 * its Poisson part from the pixel itself, so a pixel that fluctuates low
 * gets a smaller error than one that fluctuates high, and negative noise
 * peaks look more significant than positive ones (on a simulated pair,
 * 3 sigma below the difference's zero were 2-5 times as frequent as 3
 * sigma above, and every false positive of the clean pair was negative).
 * Checks, on a 400^2 flat sky: the uncertainty of 97 % of the sky pixels
 * within 1 % of the expected one (the ERR's: 18 %); (rate - sky) / unc as often below -3 as above +3
 * (within the Poisson skew: their difference under 25 % of their sum);
 * at the stars' cores, where the pixel's own value is the best estimate
 * of its expected counts, ERR / t kept. */
static void test_sky_noise_from_expected_rate(void **state)
{
    const char *path = test_path("flatsky.fits");
    const int nx = 400;
    const double sky = SKY_E / GAIN_E / EXPT;
    const double expect = sqrt(SKY_E + RN_E * RN_E) / GAIN_E / EXPT;
    rapid_science s = RAPID_SCIENCE_INIT;
    rapid_image e = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double sx[NSTAR], sy[NSTAR];
    long below = 0, above = 0, nsky = 0, close = 0;
    int x, y, k;

    (void)state;
    flat_sky_l2(path, nx, sx, sy);
    assert_ok(rapid_science_read(path, NULL, &s, &err), err);
    assert_ok(rapid_fits_read_image(path, "ERR", &e, &err), err);
    for (y = 0; y < nx; y++)
        for (x = 0; x < nx; x++) {
            size_t i = (size_t)y * nx + x;
            double z, dmin = 1e9;
            for (k = 0; k < NSTAR; k++)
                dmin = fmin(dmin, hypot(x - sx[k], y - sy[k]));
            if (dmin < 1) { /* a star's core: its own value */
                assert_true(fabs(s.unc.data[i] / (e.data[i] / EXPT) - 1) < 1e-5);
                continue;
            }
            if (dmin < 10)
                continue;
            nsky++;
            close += fabs(s.unc.data[i] / expect - 1) < 0.01;
            z = (s.rate.data[i] - sky) / s.unc.data[i];
            below += z < -3;
            above += z > 3;
        }
    print_message("sky: %ld pixels, %.1f %% of them with an uncertainty within "
                  "1 %% of the expected; beyond 3 sigma: %ld below, %ld above\n",
                  nsky, 100.0 * close / nsky, below, above);
    /* (a positive fluctuation of 3 sigma over 3 x 3 pixels is taken for a
     * source: about 1 % of the pixels keep their own value) */
    assert_true(close > 0.97 * nsky);
    assert_true(labs(below - above) < 0.25 * (below + above));
    rapid_science_release(&s);
    rapid_image_release(&e);
}

/* The integral over pixel [x0 - 0.5, x0 + 0.5] of a unit 1-D Gaussian of
 * sigma sg centred at c. */
static double pix_gauss(double x0, double c, double sg)
{
    double a = (x0 - 0.5 - c) / (sg * M_SQRT2), b = (x0 + 0.5 - c) / (sg * M_SQRT2);
    return 0.5 * (erf(b) - erf(a));
}

/* Unflagged spikes (hot pixels, cosmic-ray charge) are masked, point
 * sources are not.  A 300^2 flat sky (SKY_E, read noise) with an
 * undersampled Gaussian PSF (sigma 0.6 px: FWHM 1.4 px, as Roman's H158)
 * and, on a grid, 60 point sources of peak S/N 6-2000 at every sub-pixel
 * phase, and 40 single-pixel spikes of 25-500 sigma (12 or 9 px from a
 * source).  Checks: every spike NaN in rate and unc; no pixel
 * within 3 px of a source masked; nothing else masked. */
static void test_spikes(void **state)
{
    const char *path = test_path("spikes.fits");
    const int nx = 300, ns = 60, nh = 40;
    const double sg = 0.6, sky_sd = sqrt(SKY_E + RN_E * RN_E);
    rapid_image sci = RAPID_IMAGE_INIT, e = RAPID_IMAGE_INIT;
    rapid_science s = RAPID_SCIENCE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double sx[60], sy[60], sf[60];
    int hx[40], hy[40], x, y, k, near_masked = 0, other = 0, spikes = 0;
    float fpsf[9 * 9];
    rapid_rng g;

    (void)state;
    rapid_rng_seed(&g, 1018);
    for (k = 0; k < ns; k++) {
        sx[k] = 15 + 30 * (k % 10) + 0.1 * (k % 6);   /* phases 0 .. 0.5 */
        sy[k] = 25 + 45 * (k / 10) + 0.1 * (k / 10);
        /* peak S/N 6 .. 2000 at a centred phase */
        sf[k] = sky_sd * 6 * pow(2000 / 6.0, (double)k / (ns - 1)) /
                (pix_gauss(0, 0, sg) * pix_gauss(0, 0, sg));
    }
    for (k = 0; k < nh; k++) {
        hx[k] = 15 + 30 * (k % 10) + (k < nh / 2 ? 12 : 9);
        hy[k] = 25 + 45 * (k / 10) + (k < nh / 2 ? 0 : 20);
    }
    for (y = 0; y < 9; y++)
        for (x = 0; x < 9; x++)
            fpsf[y * 9 + x] = (float)(pix_gauss(x, 4, sg) * pix_gauss(y, 4, sg));
    assert_ok(rapid_image_alloc(&sci, nx, nx, 0, &err), err);
    assert_ok(rapid_image_alloc(&e, nx, nx, 0, &err), err);
    for (y = 0; y < nx; y++)
        for (x = 0; x < nx; x++) {
            double mu = SKY_E;
            size_t i = (size_t)y * nx + x;
            for (k = 0; k < ns; k++)
                if (fabs(x - sx[k]) < 6 && fabs(y - sy[k]) < 6)
                    mu += sf[k] * pix_gauss(x, sx[k], sg) * pix_gauss(y, sy[k], sg);
            for (k = 0; k < nh; k++)
                if (x == hx[k] && y == hy[k])
                    mu += sky_sd * 25 * pow(500 / 25.0, (double)k / (nh - 1));
            sci.data[i] = ramp_pixel(&g, mu, &e.data[i]);
        }
    write_ramp_l2(path, &sci, &e);

    assert_ok(rapid_science_read(path, NULL, &s, &err), err);
    assert_ok(rapid_science_mask_spikes(&s, fpsf, 9, &err), err);
    for (y = 0; y < nx; y++)
        for (x = 0; x < nx; x++) {
            size_t i = (size_t)y * nx + x;
            int masked = isnan(s.rate.data[i]), hot = 0, near = 0;
            for (k = 0; k < nh; k++)
                hot |= x == hx[k] && y == hy[k];
            for (k = 0; k < ns; k++)
                near |= hypot(x - sx[k], y - sy[k]) < 3;
            if (hot) {
                spikes += masked;
                if (!masked)
                    print_message("spike at (%d, %d) not masked\n", x, y);
                assert_true(isnan(s.unc.data[i]) == masked);
            } else if (masked) {
                near_masked += near;
                other += !near;
            }
        }
    print_message("spikes masked: %d of %d; pixels masked near sources %d, "
                  "elsewhere %d\n", spikes, nh, near_masked, other);
    assert_int_equal(spikes, nh);
    assert_int_equal(s.nspike, nh);
    assert_int_equal(near_masked, 0);
    assert_int_equal(other, 0);
    /* a PSF without a peak in its middle is refused */
    fpsf[4 * 9 + 4] = 0;
    assert_int_equal(rapid_science_mask_spikes(&s, fpsf, 9, &err), RAPID_E_ARG);
    rapid_science_release(&s);
    rapid_image_release(&sci);
    rapid_image_release(&e);
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

/* rapid_spike_mask against the rule read literally (rapid/spikes.h), pixel
 * by pixel, on 60 random images: noise around a background (constant or a
 * map with negative and NaN values), spikes, sources, NaN pixels, and
 * values on the threshold's edge; with and without the second plane. */
static void literal_spikes(const float *d, int nx, int ny,
                           const rapid_spike_noise *nz, double ratio,
                           unsigned char *spike)
{
    static const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    int x, y, k;

    memset(spike, 0, (size_t)nx * ny);
    for (y = 1; y < ny - 1; y++)
        for (x = 1; x < nx - 1; x++) {
            size_t i = (size_t)y * nx + x;
            double b = nz->bkg ? nz->bkg[i] : nz->bkg0, e = d[i] - b;
            double var = nz->var_read + fmax(b, 0) * nz->var_per_unit;
            double sd = sqrt(var), nb = 0;
            /* e > NSIGMA sd, squared as the library compares it */
            if (!(e * fabs(e) > RAPID_SPIKE_NSIGMA * RAPID_SPIKE_NSIGMA * var))
                continue;
            for (k = 0; k < 4; k++) {
                size_t j = (size_t)(y + dy[k]) * nx + x + dx[k];
                double v = d[j] - (nz->bkg ? nz->bkg[j] : nz->bkg0);
                if (!isfinite(v))
                    break;
                nb = fmax(nb, v);
            }
            spike[i] = k == 4 && e - RAPID_SPIKE_MARGIN * ratio * nb >
                                     RAPID_SPIKE_NSIGMA * sd;
        }
}

static void test_spike_rule(void **state)
{
    rapid_rng r;
    rapid_err err = RAPID_ERR_INIT;
    int t, masked = 0;

    rapid_rng_seed(&r, 77);
    for (t = 0; t < 60; t++) {
        int nx = 3 + (int)(rapid_rng_uniform(&r) * 90), ny = 3 + (int)(rapid_rng_uniform(&r) * 40);
        size_t i, n = (size_t)nx * ny;
        float *d = malloc(n * sizeof *d), *u = malloc(n * sizeof *u),
              *bk = malloc(n * sizeof *bk), *d0 = malloc(n * sizeof *d0);
        unsigned char *want = malloc(n);
        rapid_spike_noise nz = {t % 2 ? bk : NULL, 20.0, 4.0, 0.5};
        double ratio = 1.5 + 3 * rapid_rng_uniform(&r), sd;
        long nm = -1, nwant = 0;

        assert_non_null(d && u && bk && d0 && want);
        for (i = 0; i < n; i++) {
            double w = rapid_rng_uniform(&r);
            bk[i] = w < 0.05 ? NAN : (float)(30 * rapid_rng_uniform(&r) - 5);
            sd = sqrt(nz.var_read + fmax(nz.bkg ? bk[i] : nz.bkg0, 0) * nz.var_per_unit);
            d[i] = (float)((nz.bkg ? bk[i] : nz.bkg0) + sd * rapid_rng_normal(&r));
            w = rapid_rng_uniform(&r);
            if (w < 0.03)
                d[i] = NAN;
            else if (w < 0.12) /* spikes and sources of every height */
                d[i] += (float)(sd * 40 * rapid_rng_uniform(&r));
            else if (w < 0.15) /* on the first test's edge */
                d[i] = (float)((nz.bkg ? bk[i] : nz.bkg0) + RAPID_SPIKE_NSIGMA * sd);
            u[i] = (float)i;
        }
        memcpy(d0, d, n * sizeof *d);
        literal_spikes(d0, nx, ny, &nz, ratio, want);
        assert_int_equal(rapid_spike_mask(d, t % 3 ? u : NULL, nx, ny, &nz,
                                          ratio, &nm, &err), 0);
        for (i = 0; i < n; i++) {
            nwant += want[i];
            if (want[i]) {
                assert_true(isnan(d[i]));
                assert_true(t % 3 ? isnan(u[i]) : u[i] == (float)i);
            } else {
                assert_memory_equal(&d[i], &d0[i], sizeof *d);
                assert_true(u[i] == (float)i);
            }
        }
        assert_int_equal(nm, nwant);
        masked += (int)nwant;
        free(d), free(u), free(bk), free(d0), free(want);
    }
    print_message("spikes by the literal rule, all found: %d\n", masked);
    assert_true(masked > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_with_err_and_dq),
        cmocka_unit_test(test_without_err),
        cmocka_unit_test(test_sky_noise_from_expected_rate),
        cmocka_unit_test(test_spikes),
        cmocka_unit_test(test_spike_rule),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_persistence_grown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
