/* psfops.c - operations on sampled PSF images (rapid/psfops.h). */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/fft.h"
#include "rapid/psfops.h"

static double sinc(double x)
{
    return x == 0 ? 1.0 : sin(x) / x;
}

int rapid_psf_box_blur(const float *psf, int n, double width, float *out,
                       rapid_err *err)
{
    const rapid_fft_plan *fwd = NULL, *bwd = NULL;
    int m, h = n / 2, mh, i, j, rc;
    size_t st;
    float *buf;
    float complex *spec;

    if (!psf || !out || n < 1 || n % 2 == 0 || !(width > 0))
        return rapid_fail(err, RAPID_E_ARG, "PSF box blur: the PSF must be "
                          "odd-sized (got %d) and the box positive (%g)", n,
                          width);
    /* padded so that the box's ringing does not wrap onto the PSF */
    m = rapid_fft_good_size(2 * n);
    mh = m / 2 + 1;
    st = rapid_fft_real_stride(m);
    if (!(buf = rapid_fft_alloc((size_t)m * st * sizeof *buf)))
        return rapid_fail(err, RAPID_E_NOMEM, "PSF box blur: out of memory");
    if ((rc = rapid_fft_plan_get(NULL, RAPID_FFT_R2C, m, m, 1, &fwd, err)) ||
        (rc = rapid_fft_plan_get(NULL, RAPID_FFT_C2R, m, m, 1, &bwd, err))) {
        rapid_fft_free(buf);
        return rc;
    }
    memset(buf, 0, (size_t)m * st * sizeof *buf);
    /* the PSF's centre at the origin, wrapped */
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            buf[(size_t)((j - h + m) % m) * st + (size_t)((i - h + m) % m)] =
                psf[(size_t)j * n + i];
    spec = (float complex *)buf;
    rapid_fft_r2c(fwd, buf, spec);
    for (j = 0; j < m; j++) {
        double ky = (j <= m / 2 ? j : j - m) / (double)m;
        double sy = sinc(M_PI * width * ky);
        for (i = 0; i < mh; i++) {
            double kx = i / (double)m;
            spec[(size_t)j * mh + i] *=
                (float)(sy * sinc(M_PI * width * kx) / ((double)m * m));
        }
    }
    rapid_fft_c2r(bwd, spec, buf);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            out[(size_t)j * n + i] =
                buf[(size_t)((j - h + m) % m) * st + (size_t)((i - h + m) % m)];
    rapid_fft_free(buf);
    return 0;
}

/* Exact-overlap resampling at a phase u moves a fraction u of each pixel's
 * light one pixel over (per axis): the kernel (1 - u, u), whose variance
 * u (1 - u) averages 1/6 over the phases.  The symmetric three-tap kernel
 * with that variance, [1/12, 5/6, 1/12], gives a PSF of exactly the
 * resampled stars' mean second moment (the tent box * box applied to the
 * sampled PSF by its transform would fall short for an undersampled PSF,
 * whose spectrum is aliased). */
int rapid_psf_resample_blur(const float *psf, int n, float *out,
                            rapid_err *err)
{
    static const double k[3] = {1.0 / 12, 5.0 / 6, 1.0 / 12};
    double *tmp;
    int i, j, d;

    if (!psf || !out || n < 1 || n % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "PSF resampling blur: the PSF "
                          "must be odd-sized (got %d)", n);
    if (!(tmp = calloc((size_t)n * n, sizeof *tmp)))
        return rapid_fail(err, RAPID_E_NOMEM, "PSF resampling blur: out of "
                          "memory");
    for (j = 0; j < n; j++) /* along x into tmp */
        for (i = 0; i < n; i++)
            for (d = -1; d <= 1; d++)
                if (i + d >= 0 && i + d < n)
                    tmp[(size_t)j * n + i + d] += k[d + 1] * psf[(size_t)j * n + i];
    for (i = 0; i < n * n; i++)
        out[i] = 0;
    for (j = 0; j < n; j++) /* along y into out */
        for (d = -1; d <= 1; d++)
            if (j + d >= 0 && j + d < n)
                for (i = 0; i < n; i++)
                    out[(size_t)(j + d) * n + i] +=
                        (float)(k[d + 1] * tmp[(size_t)j * n + i]);
    free(tmp);
    return 0;
}

int rapid_psf_resample_blur_oversampled(const float *ovs, int m, int over,
                                        int n, float *out, rapid_err *err)
{
    float *f;
    double sum = 0;
    int i, j, k, c = m / 2, h = n / 2, rc = 0;

    if (!ovs || !out || m < 1 || m % 2 == 0 || over < 1 || n < 1 || n % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "PSF resampling blur: the "
                          "oversampled PSF (%d, %d per pixel) and the output "
                          "(%d) must be odd-sized", m, over, n);
    if (!(f = malloc((size_t)m * m * sizeof *f)))
        return rapid_fail(err, RAPID_E_NOMEM, "PSF resampling blur: out of "
                          "memory");
    memcpy(f, ovs, (size_t)m * m * sizeof *f);
    /* the reference's pixel spread over the science pixels it overlaps:
     * two boxes of one pixel, on the well-sampled model */
    for (k = 0; k < 2 && rc == 0; k++)
        rc = rapid_psf_box_blur(f, m, over, f, err);
    if (rc == 0) {
        for (j = 0; j < n; j++)
            for (i = 0; i < n; i++) {
                int x = c + (i - h) * over, y = c + (j - h) * over;
                out[(size_t)j * n + i] =
                    x >= 0 && y >= 0 && x < m && y < m ? f[(size_t)y * m + x] : 0;
                sum += out[(size_t)j * n + i];
            }
        if (!(sum > 0))
            rc = rapid_fail(err, RAPID_E_ARG, "PSF resampling blur: the "
                            "oversampled PSF has no light at the pixel centres");
        for (i = 0; rc == 0 && i < n * n; i++)
            out[i] = (float)(out[i] / sum);
    }
    free(f);
    return rc;
}

int rapid_psf_on_science(const float *psf, int n, const float *ovs, int m,
                         int over, float *out, int *exact, rapid_err *err)
{
    int rc;
    double sum = 0;
    int i;

    if (exact)
        *exact = 0;
    if (ovs) {
        if ((rc = rapid_psf_resample_blur_oversampled(ovs, m, over, n, out,
                                                      err)) == 0 && exact)
            *exact = 1;
        return rc;
    }
    if ((rc = rapid_psf_resample_blur(psf, n, out, err)))
        return rc;
    for (i = 0; i < n * n; i++)
        sum += out[i];
    for (i = 0; i < n * n && sum > 0; i++)
        out[i] = (float)(out[i] / sum);
    return 0;
}

double rapid_psf_aperture_fraction(const float *psf, int n, double diameter)
{
    const int sub = 16;
    double r2 = 0.25 * diameter * diameter, in = 0, all = 0;
    int h = n / 2, i, j, a, b;

    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double v = psf[(size_t)j * n + i], f = 0;
            all += v;
            if (v == 0)
                continue;
            for (b = 0; b < sub; b++)
                for (a = 0; a < sub; a++) {
                    double x = i - h - 0.5 + (a + 0.5) / sub;
                    double y = j - h - 0.5 + (b + 0.5) / sub;
                    f += x * x + y * y <= r2;
                }
            in += v * f / (sub * sub);
        }
    return all > 0 ? in / all : NAN;
}
