/* science.c - an L2 image to DN/s with its uncertainty (rapid/science.h). */
#include <math.h>
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
