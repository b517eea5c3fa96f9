/* candidates_run.c - the candidate catalog with the PSF given or, without
 * one, a Gaussian of the candidates' median FWHM: what `rapid extract`
 * and the science job run (rapid/candidates.h). */
#include <stdlib.h>

#include "rapid/candidates.h"
#include "rapid/dq.h"

/* A Gaussian of the median FWHM of the bright, unflagged candidates found
 * with a provisional one of 2 px. */
static int gaussian_psf(const rapid_cand_input *in, const rapid_cand_opts *o,
                        rapid_psfphot_psf *psf, rapid_err *err)
{
    rapid_cand_input first = *in;
    rapid_table cat = RAPID_TABLE_INIT;
    float *v = NULL;
    double fwhm = 2;
    long i, n = 0;
    int rc;

    if ((rc = rapid_psfphot_psf_gauss(psf, 2.0, err)) != 0)
        return rc;
    first.psf = psf;
    if ((rc = rapid_candidates(&first, o, &cat, err)) != 0) {
        rapid_table_release(&cat);
        return rc;
    }
    if (cat.nrows > 0 && (v = malloc((size_t)cat.nrows * sizeof *v))) {
        const float *fw = rapid_table_col(&cat, "fwhm")->data;
        const float *snr = rapid_table_col(&cat, "snr")->data;
        const int32_t *fl = rapid_table_col(&cat, "flags")->data;
        for (i = 0; i < cat.nrows; i++)
            if (snr[i] > 20 && (fl[i] & 0xff) == 0 && fw[i] > 0)
                v[n++] = fw[i];
    }
    if (n >= 3) {
        long a, b;
        for (a = 1; a < n; a++) /* few values: insertion sort */
            for (b = a; b > 0 && v[b - 1] > v[b]; b--) {
                float t = v[b];
                v[b] = v[b - 1];
                v[b - 1] = t;
            }
        fwhm = v[n / 2];
    }
    free(v);
    rapid_table_release(&cat);
    rapid_psfphot_psf_release(psf);
    return rapid_psfphot_psf_gauss(psf, fwhm, err);
}

int rapid_candidates_extract(const rapid_cand_input *in,
                             const rapid_cand_opts *o, rapid_table *cat,
                             rapid_err *err)
{
    rapid_psfphot_psf gauss = RAPID_PSFPHOT_PSF_INIT;
    rapid_cand_input use = *in;
    int rc;

    if (!in->psf) {
        if ((rc = gaussian_psf(in, o, &gauss, err)) != 0)
            goto cleanup;
        use.psf = &gauss;
    }
    if ((rc = rapid_candidates(&use, o, cat, err)) == 0 &&
        (rc = rapid_header_set_str(&cat->hdr, "PSFSRC", in->psf ? "FILE" : "GAUSS",
                                   in->psf ? "PSF given"
                                           : "Gaussian of the median FWHM")) != 0)
        rc = rapid_header_fail(err, rc, "candidate catalog", "PSFSRC");
cleanup:
    rapid_psfphot_psf_release(&gauss);
    return rc;
}

int rapid_cand_saturated_l2(const char *path, int nx, int ny,
                            unsigned char **sat, rapid_err *err)
{
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    size_t n = (size_t)nx * ny, k;
    int rc;

    *sat = NULL;
    if ((rc = rapid_fits_has_hdu(path, "DQ", err)) <= 0)
        return rc;
    if ((rc = rapid_fits_read_image_u32(path, "DQ", &dq, err)) != 0)
        return rc;
    if (dq.nx != nx || dq.ny != ny)
        rc = rapid_fail(err, RAPID_E_ARG, "%s: DQ of %d x %d pixels, the image has "
                        "%d x %d", path, dq.nx, dq.ny, nx, ny);
    else if (!(*sat = malloc(n)))
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for the saturated pixels",
                        path);
    for (k = 0; rc == 0 && k < n; k++)
        (*sat)[k] = (unsigned char)((dq.data[k] & RAPID_DQ_SATURATED) != 0);
    rapid_image_u32_release(&dq);
    return rc;
}
