/* inject_l2.c - point sources injected into a simulated L2 file, for
 * recovery tests of the candidate stage (bench/candidates_vs_truth).
 *
 *   inject_l2 IN.fits OUT.fits TRUTH.fits N MAGMIN MAGMAX SEED
 *
 * N point sources of AB magnitudes uniform in MAGMIN..MAGMAX at uniform
 * random positions at least 10 px inside the image, through the
 * simulator's PSF of the file's FILTER and SCA_NUM (rapid_sim_inject, with
 * Poisson noise); ERR grows by their Poisson variance.  OUT gets the
 * primary header, SCI, ERR and DQ; TRUTH the sources as the simulator's
 * truth/transients.fits lists transients (image, id, x, y, flux_dn, mag).
 * Bench only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/filters.h"
#include "rapid/fits.h"
#include "rapid/psf.h"
#include "rapid/rng.h"
#include "rapid/sim.h"
#include "rapid/wcs.h"

static int fail(const rapid_err *e)
{
    fprintf(stderr, "inject_l2: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    rapid_header prim = RAPID_HEADER_INIT;
    rapid_image sci = RAPID_IMAGE_INIT, erri = RAPID_IMAGE_INIT, model = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_psf_field field;
    rapid_err err = RAPID_ERR_INIT;
    rapid_fits_out *out = NULL;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_sim_injected *tr;
    rapid_rng r;
    char filt[32], *img;
    const char *base;
    double *ra, *dec, *mag, *x, *y, gain = 1, magmin, magmax;
    long sca, k;
    int n, i;

    if (argc != 8) {
        fprintf(stderr, "usage: inject_l2 IN.fits OUT.fits TRUTH.fits N MAGMIN MAGMAX SEED\n");
        return 2;
    }
    n = atoi(argv[4]);
    magmin = atof(argv[5]);
    magmax = atof(argv[6]);
    if (rapid_fits_read_header(argv[1], "0", &prim, &err) ||
        rapid_fits_read_image(argv[1], "SCI", &sci, &err) ||
        rapid_fits_read_image(argv[1], "ERR", &erri, &err) ||
        rapid_fits_read_image_u32(argv[1], "DQ", &dq, &err) ||
        rapid_wcs_from_header(&wcs, &sci.hdr, &err) ||
        rapid_header_get_str(&sci.hdr, "FILTER", filt, sizeof filt, &err) ||
        rapid_header_get_long(&sci.hdr, "SCA_NUM", &sca, &err))
        return fail(&err);
    if (rapid_header_has(&sci.hdr, "GAIN"))
        rapid_header_get_double(&sci.hdr, "GAIN", &gain, NULL);
    memset(&field, 0, sizeof field);
    if (rapid_psf_field_make(&field, rapid_filter_by_name(filt), (int)sca, sci.nx, sci.ny,
                             NULL, &err))
        return fail(&err);
    ra = malloc((size_t)n * 5 * sizeof *ra);
    dec = ra + n, mag = dec + n, x = mag + n, y = x + n;
    tr = malloc((size_t)n * sizeof *tr);
    rapid_rng_seed(&r, (uint64_t)atol(argv[7]));
    for (i = 0; i < n; i++) {
        x[i] = 10 + (sci.nx - 21) * rapid_rng_uniform(&r);
        y[i] = 10 + (sci.ny - 21) * rapid_rng_uniform(&r);
        mag[i] = magmin + (magmax - magmin) * rapid_rng_uniform(&r);
    }
    if (rapid_wcs_pix2sky(&wcs, n, x, y, ra, dec, &err) ||
        rapid_sim_inject(&sci, &wcs, &field, n, ra, dec, mag, (uint64_t)atol(argv[7]) + 1,
                         tr, &err) ||
        rapid_image_alloc(&model, sci.nx, sci.ny, 0, &err))
        return fail(&err);
    for (i = 0; i < n; i++)
        if (tr[i].on_image)
            rapid_psf_field_add(&field, model.data, sci.nx, sci.ny, tr[i].x, tr[i].y,
                                tr[i].flux_dn);
    for (k = 0; k < (long)sci.nx * sci.ny; k++)
        if (model.data[k] > 0 && isfinite(erri.data[k]))
            erri.data[k] = (float)sqrt((double)erri.data[k] * erri.data[k] +
                                       model.data[k] / gain);
    if (rapid_fits_create(&out, argv[2], &err) ||
        rapid_fits_set_primary_header(out, &prim, &err) ||
        rapid_fits_append_image(out, &sci, "SCI", &err) ||
        rapid_fits_append_image(out, &erri, "ERR", &err) ||
        rapid_fits_append_image_u32(out, &dq, "DQ", &err) ||
        rapid_fits_commit(out, &err))
        return fail(&err);
    base = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
    if (rapid_table_init(&t, n))
        return 1;
    img = rapid_table_add_str(&t, "image", 64);
    {
        int64_t *id = rapid_table_add_i64(&t, "id", "");
        double *cx = rapid_table_add_f64(&t, "x", "pix"), *cy = rapid_table_add_f64(&t, "y", "pix");
        double *cf = rapid_table_add_f64(&t, "flux_dn", "DN"), *cm = rapid_table_add_f64(&t, "mag", "mag");
        for (i = 0; i < n; i++) {
            snprintf(img + (size_t)i * 64, 64, "%s", base);
            id[i] = i + 1;
            cx[i] = tr[i].x;
            cy[i] = tr[i].y;
            cf[i] = tr[i].on_image ? tr[i].flux_dn : 0;
            cm[i] = mag[i];
        }
    }
    if (rapid_fits_write_table(argv[3], &t, "TRUTH", &err))
        return fail(&err);
    printf("%d sources injected into %s\n", n, argv[2]);
    rapid_table_release(&t);
    rapid_image_release(&sci);
    rapid_image_release(&erri);
    rapid_image_release(&model);
    rapid_image_u32_release(&dq);
    rapid_header_release(&prim);
    rapid_wcs_release(&wcs);
    rapid_psf_field_release(&field);
    free(ra);
    free(tr);
    return 0;
}
