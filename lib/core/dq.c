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
    rapid_dq_grow g = {grow_bits, half};

    return rapid_dq_mask_file_rules(path, sci, &g, 1, counts, err);
}

int rapid_dq_mask_file_rules(const char *path, rapid_image *sci,
                             const rapid_dq_grow *rules, int nrules,
                             rapid_dq_counts *counts, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    long naxes[2] = {0, 0}, k = 0, nsat = 0, kg = 0;
    uint32_t *band = NULL, nulval = 0, any_bits = 0;
    size_t n, at, m, i, *ng = NULL, *gcap = NULL, **grow = NULL;
    int rc, status = 0, anynul = 0, naxis = 0, r;

    if (counts)
        counts->unusable = counts->saturated = counts->grown = 0;
    if (nrules < 0 || (nrules > 0 && !rules))
        return rapid_fail(err, RAPID_E_ARG, "%s: %d DQ growth rules", path, nrules);
    for (r = 0; r < nrules; r++) {
        if (rules[r].half < 0)
            return rapid_fail(err, RAPID_E_ARG, "%s: DQ mask grown by %d px",
                              path, rules[r].half);
        any_bits |= rules[r].bits;
    }
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
    if (nrules > 0 && (!(ng = calloc((size_t)nrules, sizeof *ng)) ||
                       !(gcap = calloc((size_t)nrules, sizeof *gcap)) ||
                       !(grow = calloc((size_t)nrules, sizeof *grow)))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", label);
        goto cleanup;
    }
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
            if (!(band[i] & any_bits))
                continue;
            for (r = 0; r < nrules; r++) { /* few: lists, grown at the end */
                if (!(band[i] & rules[r].bits))
                    continue;
                if (ng[r] == gcap[r]) {
                    size_t nc = gcap[r] ? 2 * gcap[r] : 1024,
                           *t = realloc(grow[r], nc * sizeof *t);
                    if (!t) {
                        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", label);
                        goto cleanup;
                    }
                    grow[r] = t, gcap[r] = nc;
                }
                grow[r][ng[r]++] = at + i;
            }
        }
    }
    if (counts)
        counts->unusable = k, counts->saturated = nsat;
    for (r = 0; r < nrules; r++) /* in the order given */
        kg += grow_mask(sci, grow[r], ng[r], rules[r].half);
    if (counts)
        counts->grown = kg;
cleanup:
    for (r = 0; grow && r < nrules; r++)
        free(grow[r]);
    free(grow);
    free(ng);
    free(gcap);
    free(band);
    rapid_fits_close(f);
    return rc;
}
