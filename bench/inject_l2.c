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
 * The library's injection (rapid/eval.h) with every source in the field.
 * Bench only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/eval.h"
#include "rapid/fits.h"
#include "rapid/wcs.h"

static int fail(const rapid_err *e)
{
    fprintf(stderr, "inject_l2: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    rapid_image sci = RAPID_IMAGE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_eval_plan_opts o;
    rapid_eval_source *src;
    char filt[32], *img;
    const char *base;
    uint64_t seed;
    int n, i;

    if (argc != 8) {
        fprintf(stderr, "usage: inject_l2 IN.fits OUT.fits TRUTH.fits N MAGMIN MAGMAX SEED\n");
        return 2;
    }
    n = atoi(argv[4]);
    seed = (uint64_t)atol(argv[7]);
    rapid_eval_plan_opts_init(&o);
    o.n = n;
    o.mag_min = atof(argv[5]);
    o.mag_max = atof(argv[6]);
    o.nuclear_frac = 0;
    o.seed = seed;
    if (!(src = malloc((size_t)(n > 0 ? n : 1) * sizeof *src)))
        return 1;
    if (rapid_fits_read_image(argv[1], "SCI", &sci, &err) ||
        rapid_wcs_from_header(&wcs, &sci.hdr, &err) ||
        rapid_header_get_str(&sci.hdr, "FILTER", filt, sizeof filt, &err) ||
        rapid_eval_plan(&wcs, sci.nx, sci.ny, filt, NULL, &o, src, &err) ||
        rapid_eval_inject_l2(argv[1], argv[2], src, n, seed + 1, &err))
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
            cx[i] = src[i].x;
            cy[i] = src[i].y;
            cf[i] = src[i].flux_dn;
            cm[i] = src[i].mag;
        }
    }
    if (rapid_fits_write_table(argv[3], &t, "TRUTH", &err))
        return fail(&err);
    printf("%d sources injected into %s\n", n, argv[2]);
    rapid_table_release(&t);
    rapid_image_release(&sci);
    rapid_wcs_release(&wcs);
    free(src);
    return 0;
}
