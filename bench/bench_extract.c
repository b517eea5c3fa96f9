/* bench_extract.c - the reference catalog alone: SEP's background,
 * detection and the per-source measurements on a coadd.
 *   bench_extract IMAGE.fits UNC.fits [REPEATS]
 * (the products of `rapid coadd`; bench/bench_coadd.sh makes them). */
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "rapid/extract.h"
#include "rapid/fits.h"
#include "rapid/wcs.h"

int main(int argc, char **argv)
{
    rapid_image img = RAPID_IMAGE_INIT, unc = RAPID_IMAGE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_extract_opts o;
    int reps = argc > 3 ? atoi(argv[3]) : 3, k;
    double best = 1e9;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_extract IMAGE.fits UNC.fits [REPEATS]\n");
        return 2;
    }
    if (rapid_fits_read_image(argv[1], NULL, &img, &err) ||
        rapid_fits_read_image(argv[2], NULL, &unc, &err) ||
        rapid_wcs_from_header(&wcs, &img.hdr, &err)) {
        fprintf(stderr, "bench_extract: %s\n", err.msg);
        return 1;
    }
    rapid_extract_opts_init(&o);
    for (k = 0; k < reps; k++) {
        rapid_table cat;
        rapid_extract_stats st;
        double t0 = bench_now(), t;
        if (rapid_extract(img.data, unc.data, NULL, img.nx, img.ny, &o, &wcs, &cat,
                          &st, &err)) {
            fprintf(stderr, "bench_extract: %s\n", err.msg);
            return 1;
        }
        t = bench_now() - t0;
        best = t < best ? t : best;
        printf("run %d: %.3f s, %ld sources, %ld stars, median FWHM %.4f px\n", k + 1,
               t, st.nsources, st.nstars, st.fwhm_med);
        rapid_table_release(&cat);
    }
    printf("catalog of a %d x %d coadd: best %.3f s\n", img.nx, img.ny, best);
    rapid_image_release(&img);
    rapid_image_release(&unc);
    rapid_wcs_release(&wcs);
    return 0;
}
