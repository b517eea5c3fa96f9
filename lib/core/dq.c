/* dq.c - DQ masks of L2 files (rapid/dq.h). */
#include <math.h>

#include "rapid/dq.h"

double rapid_dq_err(double sci, double gain, double rn)
{
    return sqrt(fmax(sci, 0) * gain + rn * rn) / gain;
}

int rapid_dq_mask_file(const char *path, rapid_image *sci, long *nflagged,
                       rapid_err *err)
{
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    size_t i, n;
    long k = 0;
    int rc;

    if (nflagged)
        *nflagged = 0;
    if ((rc = rapid_fits_has_hdu(path, "DQ", err)) <= 0)
        return rc;
    if ((rc = rapid_fits_read_image_u32(path, "DQ", &dq, err)) != 0)
        return rc;
    if (dq.nx != sci->nx || dq.ny != sci->ny) {
        rc = rapid_fail(err, RAPID_E_FITS, "%s[DQ]: %d x %d pixels, but SCI "
                        "has %d x %d", path, dq.nx, dq.ny, sci->nx, sci->ny);
        goto cleanup;
    }
    n = (size_t)dq.nx * dq.ny;
    for (i = 0; i < n; i++)
        if (rapid_dq_unusable(dq.data[i])) {
            sci->data[i] = NAN;
            k++;
        }
    if (nflagged)
        *nflagged = k;
cleanup:
    rapid_image_u32_release(&dq);
    return rc;
}
