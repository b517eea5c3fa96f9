/* test_psfops.c - a sampled PSF through one more pixel box: the light is
 * kept, the centre stays, the second moment grows by w^2 / 12 per axis;
 * the blur of resampling, from the samples and from an oversampled model. */
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "rapid/psfops.h"
#include "testutil.h"

enum { N = 41 };

static void moments(const float *p, double *sum, double *mx, double *my,
                    double *vx, double *vy)
{
    double s = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
    int i, j, h = N / 2;

    for (j = 0; j < N; j++)
        for (i = 0; i < N; i++) {
            double v = p[j * N + i];
            s += v, sx += v * (i - h), sy += v * (j - h);
            sxx += v * (i - h) * (i - h), syy += v * (j - h) * (j - h);
        }
    *sum = s, *mx = sx / s, *my = sy / s;
    *vx = sxx / s - *mx * *mx, *vy = syy / s - *my * *my;
}

static void test_gaussian(void **state)
{
    float psf[N * N], out[N * N];
    const double sx = 1.5, sy = 2.0, widths[3] = {1.0, 0.5, 2.0};
    double s0, mx0, my0, vx0, vy0, s, mx, my, vx, vy;
    rapid_err err = RAPID_ERR_INIT;
    int i, j, k, h = N / 2;

    (void)state;
    /* pixel-integrated elliptical Gaussian, unit sum */
    for (j = 0; j < N; j++)
        for (i = 0; i < N; i++)
            psf[j * N + i] =
                (float)(0.25 *
                        (erf((i - h + 0.5) / (M_SQRT2 * sx)) -
                         erf((i - h - 0.5) / (M_SQRT2 * sx))) *
                        (erf((j - h + 0.5) / (M_SQRT2 * sy)) -
                         erf((j - h - 0.5) / (M_SQRT2 * sy))));
    moments(psf, &s0, &mx0, &my0, &vx0, &vy0);
    for (k = 0; k < 3; k++) {
        double w = widths[k];
        assert_ok(rapid_psf_box_blur(psf, N, w, out, &err), err);
        moments(out, &s, &mx, &my, &vx, &vy);
        print_message("box %.1f px: sum %.7f, centre (%.1e, %.1e), variance "
                      "+%.5f, +%.5f (w^2/12 = %.5f)\n", w, s, mx, my, vx - vx0,
                      vy - vy0, w * w / 12);
        assert_true(fabs(s - s0) < 1e-5);
        assert_true(fabs(mx) < 1e-6 && fabs(my) < 1e-6);
        assert_true(fabs((vx - vx0) - w * w / 12) < 2e-4);
        assert_true(fabs((vy - vy0) - w * w / 12) < 2e-4);
    }
    /* in place */
    memcpy(out, psf, sizeof psf);
    assert_ok(rapid_psf_box_blur(out, N, 1.0, out, &err), err);
    moments(out, &s, &mx, &my, &vx, &vy);
    assert_true(fabs((vx - vx0) - 1.0 / 12) < 2e-4);
}

/* Exact-overlap resampling onto equal pixels at a random phase (u, v):
 * out(m) = (1-u)(1-v) in(m) + u(1-v) in(m+1,.) + ...  Averaged over
 * sources at random positions and random phases, a star's second moment
 * about its centroid on the new grid is rapid_psf_resample_blur's (2/12
 * more per axis than the input PSF's); one box (1/12) falls short. */
static void test_resample_blur_matches_resampling(void **state)
{
    const double sig = 0.6; /* undersampled, as Roman's */
    float psf[N * N], one[N * N], two[N * N];
    double s, mx, my, v0, vy, v1, v2, mean = 0;
    uint64_t rng = 7;
    rapid_err err = RAPID_ERR_INIT;
    int i, k, trials = 4000, h = N / 2;

    (void)state;
    for (i = 0; i < N * N; i++) {
        int x = i % N - h, y = i / N - h;
        psf[i] = (float)(0.25 *
                         (erf((x + 0.5) / (M_SQRT2 * sig)) -
                          erf((x - 0.5) / (M_SQRT2 * sig))) *
                         (erf((y + 0.5) / (M_SQRT2 * sig)) -
                          erf((y - 0.5) / (M_SQRT2 * sig))));
    }
    moments(psf, &s, &mx, &my, &v0, &vy);
    assert_ok(rapid_psf_box_blur(psf, N, 1.0, one, &err), err);
    moments(one, &s, &mx, &my, &v1, &vy);
    assert_ok(rapid_psf_resample_blur(psf, N, two, &err), err);
    moments(two, &s, &mx, &my, &v2, &vy);
    for (k = 0; k < trials; k++) {
        /* 1-D is enough: the blur is separable */
        double c = test_uniform(&rng) - 0.5, u = test_uniform(&rng);
        double in[N], out[N - 1], t = 0, t1 = 0, t2 = 0;
        for (i = 0; i < N; i++)
            in[i] = 0.5 * (erf((i - h - c + 0.5) / (M_SQRT2 * sig)) -
                           erf((i - h - c - 0.5) / (M_SQRT2 * sig)));
        for (i = 0; i < N - 1; i++) {
            out[i] = (1 - u) * in[i] + u * in[i + 1];
            t += out[i];
            t1 += out[i] * i;
            t2 += out[i] * i * i;
        }
        mean += t2 / t - (t1 / t) * (t1 / t);
    }
    mean /= trials;
    print_message("second moment: input PSF %.4f, one box %.4f, "
                  "resample blur %.4f, resampled stars %.4f\n", v0, v1, v2,
                  mean);
    assert_true(fabs(v2 - mean) < 0.01);
    assert_true(fabs(v1 - mean) > 0.05);
    (void)mx;
    (void)my;
}

/* The pixel-integrated Gaussian of sigma sig at x pixels from its centre. */
static double gauss_pixel(double x, double sig)
{
    return 0.5 * (erf((x + 0.5) / (M_SQRT2 * sig)) - erf((x - 0.5) / (M_SQRT2 * sig)));
}

/* The reference PSF on the science pixels from its oversampled model,
 * against resampling itself: a star centred on a science pixel, on a
 * reference grid shifted by u, is sum_k E(k - u) tent(m - k + u) on the
 * science pixel m; averaged over u (a fine regular grid of phases) that
 * is the profile rapid_psf_resample_blur_oversampled must give.  E is an
 * undersampled Gaussian (sigma 0.6 px) through its pixel, 1-D for the
 * sums (the blur is separable).  The kernel on the samples,
 * rapid_psf_resample_blur, keeps too much light in the core. */
static void test_resample_blur_oversampled(void **state)
{
    enum { OVER = 4, M = 4 * 20 + 1, NP = 21 };
    const double sig = 0.6;
    float ovs[M * M], out[NP * NP], samp[NP * NP], old[NP * NP];
    double prof[NP], sum = 0, worst = 0, want_c;
    rapid_err err = RAPID_ERR_INIT;
    int i, j, k, q, h = NP / 2, c = M / 2, nu = 2000;

    (void)state;
    for (j = 0; j < M; j++)
        for (i = 0; i < M; i++)
            ovs[j * M + i] = (float)(gauss_pixel((i - c) / (double)OVER, sig) *
                                     gauss_pixel((j - c) / (double)OVER, sig));
    for (i = 0; i < NP; i++) {
        prof[i] = 0;
        for (q = 0; q < nu; q++) {
            double u = (q + 0.5) / nu;
            for (k = -h - 2; k <= h + 2; k++) { /* reference pixel k at k - u */
                double d = fabs(i - h - (k - u));
                if (d < 1)
                    prof[i] += gauss_pixel(k - u, sig) * (1 - d) / nu;
            }
        }
        sum += prof[i];
    }
    assert_ok(rapid_psf_resample_blur_oversampled(ovs, M, OVER, NP, out, &err), err);
    for (j = 0; j < NP; j++)
        for (i = 0; i < NP; i++) {
            worst = fmax(worst, fabs(out[j * NP + i] - prof[i] * prof[j] / (sum * sum)));
            samp[j * NP + i] = ovs[(c + (j - h) * OVER) * M + c + (i - h) * OVER];
        }
    assert_ok(rapid_psf_resample_blur(samp, NP, old, &err), err);
    want_c = prof[h] * prof[h] / (sum * sum);
    print_message("resampled star's central pixel %.5f: from the oversampled "
                  "model %.5f (worst pixel off by %.1e), the kernel on the "
                  "samples %.5f\n", want_c, out[h * NP + h], worst,
                  old[h * NP + h]);
    assert_true(worst < 1e-3 * want_c);
    assert_true(old[h * NP + h] > 1.04 * want_c);
    /* errors */
    assert_int_equal(rapid_psf_resample_blur_oversampled(ovs, M - 1, OVER, NP, out, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_psf_resample_blur_oversampled(ovs, M, 0, NP, out, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_psf_resample_blur_oversampled(ovs, M, OVER, NP - 1, out, &err),
                     RAPID_E_ARG);
}

static void test_errors(void **state)
{
    float p[16] = {0};
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_int_equal(rapid_psf_box_blur(p, 4, 1.0, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "odd"));
    assert_int_equal(rapid_psf_box_blur(p, 3, 0.0, p, &err), RAPID_E_ARG);
    assert_int_equal(rapid_psf_box_blur(NULL, 3, 1.0, p, &err), RAPID_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaussian),
        cmocka_unit_test(test_resample_blur_matches_resampling),
        cmocka_unit_test(test_resample_blur_oversampled),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
