/* science.c - an L2 image to DN/s with its uncertainty (rapid/science.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/dq.h"
#include "rapid/filters.h"
#include "rapid/science.h"

void rapid_science_release(rapid_science *s)
{
    if (!s)
        return;
    rapid_image_release(&s->rate);
    rapid_image_release(&s->unc);
    rapid_background_release(&s->bkg);
    memset(s, 0, sizeof *s);
}

static double key_or(const rapid_header *h, const char *key, double dflt)
{
    double v;

    return rapid_header_has(h, key) &&
                   rapid_header_get_double(h, key, &v, NULL) == 0 &&
                   isfinite(v)
               ? v
               : dflt;
}

/* ERR / t where the file has ERR (of SCI's size), else from the data. */
static int uncertainty(const char *path, rapid_science *s, rapid_err *err)
{
    rapid_image e = RAPID_IMAGE_INIT;
    size_t i, n = (size_t)s->rate.nx * s->rate.ny;
    double t = s->exptime, g = s->gain, rn = s->rdnoise;
    int has, rc;

    if ((has = rapid_fits_has_hdu(path, "ERR", err)) < 0)
        return has;
    if (has) {
        if ((rc = rapid_fits_read_image(path, "ERR", &e, err)) != 0)
            return rc;
        if (e.nx != s->rate.nx || e.ny != s->rate.ny) {
            rc = rapid_fail(err, RAPID_E_ARG, "%s: ERR is %d x %d, SCI %d x %d",
                            path, e.nx, e.ny, s->rate.nx, s->rate.ny);
            rapid_image_release(&e);
            return rc;
        }
        for (i = 0; i < n; i++)
            e.data[i] /= (float)t;
        rapid_image_release(&s->unc);
        s->unc = e;
        s->from_err = 1;
        return 0;
    }
    if ((rc = rapid_image_alloc(&s->unc, s->rate.nx, s->rate.ny, NAN, err)))
        return rc;
    for (i = 0; i < n; i++) {
        double d = s->rate.data[i];
        s->unc.data[i] = (float)(sqrt(fabs(d) * t / g + rn * rn / (g * g)) / t);
    }
    return 0;
}

/* A pixel is a source's where the mean of the 3 x 3 pixels around it lies
 * this many sigma of that mean above the background (and so are its
 * neighbours). */
#define SOURCE_NSIGMA 3.0

/* 1 where the 3 x 3 mean of rate around pixel i is a source's (bk: the
 * background; vr: the read noise's variance, gt: gain x time). */
static unsigned char source_pixel(const rapid_image *rate, const float *bk,
                                  size_t i, double vr, double gt)
{
    int nx = rate->nx, ny = rate->ny, x = (int)(i % (size_t)nx),
        y = (int)(i / (size_t)nx), a, b, k = 0;
    double sum = 0, sd;

    for (b = y - 1; b <= y + 1; b++)
        for (a = x - 1; a <= x + 1; a++)
            if (a >= 0 && b >= 0 && a < nx && b < ny &&
                isfinite(rate->data[(size_t)b * nx + a])) {
                sum += rate->data[(size_t)b * nx + a];
                k++;
            }
    if (k == 0)
        return 0;
    sd = sqrt((vr + fmax(bk[i], 0) / gt) / k);
    return sum / k - bk[i] > SOURCE_NSIGMA * sd;
}

/* Whether pixel i or a neighbour is marked in src. */
static int near_source(const unsigned char *src, int nx, int ny, size_t i)
{
    int x = (int)(i % (size_t)nx), y = (int)(i / (size_t)nx), a, b;

    for (b = y - 1; b <= y + 1; b++)
        for (a = x - 1; a <= x + 1; a++)
            if (a >= 0 && b >= 0 && a < nx && b < ny && src[(size_t)b * nx + a])
                return 1;
    return 0;
}

/* The Poisson part of the uncertainty of each sky pixel from the sky's
 * expected rate instead of the pixel's own (rapid/science.h).  An image
 * without a window of data keeps its uncertainty. */
static int sky_noise(const char *path, rapid_science *s, rapid_err *err)
{
    int nx = s->rate.nx, ny = s->rate.ny, rc = 0;
    size_t i, n = (size_t)nx * ny;
    double gt = s->gain * s->exptime, vr = s->rdnoise / gt;
    float *bk = NULL;
    unsigned char *src = NULL;
    rapid_background_opts bo;

    vr *= vr;
    rapid_background_opts_init(&bo);
    rc = rapid_background_make(s->rate.data, nx, ny, &bo, &s->bkg, err);
    if (rc == RAPID_E_RANGE) { /* no data to tell the sky by */
        rapid_err_clear(err);
        return 0;
    }
    if (rc) {
        rapid_err_prefix(err, "%s: the background", path);
        return rc;
    }
    bk = malloc(n * sizeof *bk);
    src = malloc(n);
    if (!bk || !src) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for the sky's noise",
                        path);
        goto cleanup;
    }
    rapid_background_fill(&s->bkg, bk);
    for (i = 0; i < n; i++)
        src[i] = source_pixel(&s->rate, bk, i, vr, gt);
    for (i = 0; i < n; i++) {
        double u = s->unc.data[i], d = s->rate.data[i], own;
        if (!isfinite(u) || !isfinite(d) || near_source(src, nx, ny, i))
            continue;
        own = (s->from_err ? fmax(d, 0) : fabs(d)) / gt;
        s->unc.data[i] = (float)sqrt(fmax(u * u - own, 0) + fmax(bk[i], 0) / gt);
        s->nsky++;
    }
cleanup:
    free(bk);
    free(src);
    return rc;
}

int rapid_science_read(const char *path, const char *hdu, rapid_science *s,
                       rapid_err *err)
{
    rapid_dq_counts dq = {0, 0, 0};
    size_t i, n;
    int rc;

    memset(s, 0, sizeof *s);
    if ((rc = rapid_fits_read_image(path, hdu ? hdu : "SCI", &s->rate, err)))
        return rc;
    if ((rc = rapid_header_get_double(&s->rate.hdr, "EXPTIME", &s->exptime,
                                      err)) != 0) {
        rapid_err_prefix(err, "%s", path);
        goto fail;
    }
    if (!(s->exptime > 0)) {
        rc = rapid_fail(err, RAPID_E_KEY, "%s: EXPTIME %g is not positive",
                        path, s->exptime);
        goto fail;
    }
    s->gain = key_or(&s->rate.hdr, "GAIN", RAPID_GAIN);
    s->rdnoise = key_or(&s->rate.hdr, "RDNOISE", RAPID_READNOISE);
    if (!(s->gain > 0)) {
        rc = rapid_fail(err, RAPID_E_KEY, "%s: GAIN %g is not positive", path,
                        s->gain);
        goto fail;
    }
    if ((rc = rapid_dq_mask_file_grow_by(path, &s->rate, RAPID_DQ_PERSISTENCE,
                                         RAPID_SCIENCE_PERSIST_GROW, &dq, err)) != 0)
        goto fail;
    s->nunusable = dq.unusable;
    s->npersist_grown = dq.grown;
    n = (size_t)s->rate.nx * s->rate.ny;
    for (i = 0; i < n; i++)
        s->rate.data[i] /= (float)s->exptime;
    if ((rc = uncertainty(path, s, err)) != 0)
        goto fail;
    for (i = 0; i < n; i++)
        if (isnan(s->rate.data[i]))
            s->unc.data[i] = NAN;
    if ((rc = sky_noise(path, s, err)) != 0)
        goto fail;
    if ((rc = rapid_header_set_str(&s->rate.hdr, "BUNIT", "DN/s",
                                   "counts per second")) != 0) {
        rc = rapid_header_fail(err, rc, path, "BUNIT");
        goto fail;
    }
    return 0;
fail:
    rapid_science_release(s);
    return rc;
}

int rapid_science_mask_spikes(rapid_science *s, const float *psf, int psf_n,
                              rapid_err *err)
{
    double gt = s->gain * s->exptime, ratio = rapid_spike_psf_ratio(psf, psf_n);
    rapid_spike_noise nz;
    float *bk = NULL;
    int rc;

    s->nspike = 0;
    if (!isfinite(ratio))
        return rapid_fail(err, RAPID_E_ARG, "spikes: a PSF of %d x %d pixels "
                          "without a peak in its middle", psf_n, psf_n);
    if (!s->bkg.mean)
        return 0;
    if (!(bk = malloc((size_t)s->rate.nx * s->rate.ny * sizeof *bk)))
        return rapid_fail(err, RAPID_E_NOMEM, "spikes: no memory");
    rapid_background_fill(&s->bkg, bk);
    nz.bkg = bk, nz.bkg0 = 0;
    nz.var_read = (s->rdnoise / gt) * (s->rdnoise / gt), nz.var_per_unit = 1 / gt;
    rc = rapid_spike_mask(s->rate.data, s->unc.data, s->rate.nx, s->rate.ny, &nz,
                          ratio, &s->nspike, err);
    free(bk);
    return rc;
}
