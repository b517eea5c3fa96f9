/* dq.c - DQ masks of L2 files (rapid/dq.h).
 *
 * The mask is read a band of rows at a time, straight onto the science
 * image: a reader of many inputs holds no second full-size image for it.
 */
#include <math.h>
#include <stdlib.h>

#include "core/fits_internal.h"
#include "rapid/dq.h"

#define BAND_PIXELS ((size_t)1 << 16)

double rapid_dq_err(double sci, double gain, double rn)
{
    return sqrt(fmax(sci, 0) * gain + rn * rn) / gain;
}

/* The pixels within half px (a square) of the ng pixels at grow[] to
 * NaN; how many were not already. */
static long grow_mask(rapid_image *sci, const size_t *grow, size_t ng, int half)
{
    long k = 0;
    size_t g;
    int a, b;

    for (g = 0; g < ng; g++) {
        int x = (int)(grow[g] % (size_t)sci->nx), y = (int)(grow[g] / (size_t)sci->nx);
        for (b = y - half; b <= y + half; b++)
            for (a = x - half; a <= x + half; a++) {
                float *v;
                if (a < 0 || b < 0 || a >= sci->nx || b >= sci->ny)
                    continue;
                v = &sci->data[(size_t)b * sci->nx + a];
                if (!isnan(*v)) {
                    *v = NAN;
                    k++;
                }
            }
    }
    return k;
}

int rapid_dq_mask_file(const char *path, rapid_image *sci,
                       rapid_dq_counts *counts, rapid_err *err)
{
    return rapid_dq_mask_file_grow(path, sci, 0, counts, err);
}

int rapid_dq_mask_file_grow(const char *path, rapid_image *sci, uint32_t grow_bits,
                            rapid_dq_counts *counts, rapid_err *err)
{
    return rapid_dq_mask_file_grow_by(path, sci, grow_bits, 1, counts, err);
}

int rapid_dq_mask_file_grow_by(const char *path, rapid_image *sci, uint32_t grow_bits,
                               int half, rapid_dq_counts *counts, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    long naxes[2] = {0, 0}, k = 0, nsat = 0;
    uint32_t *band = NULL, nulval = 0;
    size_t n, at, m, i, ng = 0, gcap = 0, *grow = NULL;
    int rc, status = 0, anynul = 0, naxis = 0;

    if (counts)
        counts->unusable = counts->saturated = counts->grown = 0;
    if (half < 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: DQ mask grown by %d px", path, half);
    if ((rc = rapid_fits_has_hdu(path, "DQ", err)) <= 0)
        return rc;
    if ((rc = rapid_fits_open_hdu(&f, path, "DQ", RAPID_WANT_IMAGE, label,
                                  sizeof label, err)) != 0)
        return rc;
    if (fits_get_img_dim(f, &naxis, &status) ||
        fits_get_img_size(f, 2, naxes, &status)) {
        rc = rapid_cfitsio_fail(err, status, label, "cannot read image size");
        goto cleanup;
    }
    if (naxis != 2 || naxes[0] != sci->nx || naxes[1] != sci->ny) {
        rc = rapid_fail(err, RAPID_E_FITS, "%s: %ld x %ld pixels, but SCI has "
                        "%d x %d", label, naxes[0], naxes[1], sci->nx, sci->ny);
        goto cleanup;
    }
    n = (size_t)sci->nx * sci->ny;
    if (!(band = malloc(BAND_PIXELS * sizeof *band))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", label);
        goto cleanup;
    }
    for (at = 0; at < n; at += m) {
        m = n - at < BAND_PIXELS ? n - at : BAND_PIXELS;
        if (fits_read_img(f, TUINT, (LONGLONG)at + 1, (LONGLONG)m, &nulval,
                          band, &anynul, &status)) {
            rc = status == NUM_OVERFLOW
                     ? rapid_fail(err, RAPID_E_RANGE, "%s: pixel values do not "
                                  "fit an unsigned 32-bit integer", label)
                     : rapid_cfitsio_fail(err, status, label,
                                          "cannot read pixels");
            goto cleanup;
        }
        for (i = 0; i < m; i++) {
            if (rapid_dq_unusable(band[i])) {
                sci->data[at + i] = NAN;
                k++;
                nsat += (band[i] & RAPID_DQ_SATURATED) != 0;
            }
            if (band[i] & grow_bits) { /* few: a list, grown at the end */
                if (ng == gcap) {
                    size_t nc = gcap ? 2 * gcap : 1024, *t = realloc(grow, nc * sizeof *t);
                    if (!t) {
                        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", label);
                        goto cleanup;
                    }
                    grow = t, gcap = nc;
                }
                grow[ng++] = at + i;
            }
        }
    }
    if (counts)
        counts->unusable = k, counts->saturated = nsat;
    if (ng) {
        long kg = grow_mask(sci, grow, ng, half);
        if (counts)
            counts->grown = kg;
    }
cleanup:
    free(grow);
    free(band);
    rapid_fits_close(f);
    return rc;
}
