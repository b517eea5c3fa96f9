/* bench_resample_regrid.c - the pair's resampling: a reference image onto
 * a science image's pixels (rapid_regrid), by mode.
 *   bench_resample_regrid REFERENCE.fits SCIENCE.fits [REPEATS]
 * Each mode's best time of the repeats: CPU time (the thread's), then wall
 * clock; and the count and sum of the output's finite values, which two
 * builds that make the same products print alike. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "rapid/fits.h"
#include "rapid/regrid.h"
#include "rapid/wcs.h"

int main(int argc, char **argv)
{
    static const char *name[3] = {"flux", "mean", "variance"};
    rapid_image ref = RAPID_IMAGE_INIT, sci = RAPID_IMAGE_INIT;
    rapid_wcs rw = RAPID_WCS_INIT, sw = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    int reps = argc > 3 ? atoi(argv[3]) : 3, k, mode, rc = 0;
    float *out = NULL, *cover = NULL;
    size_t n, i;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_resample_regrid REFERENCE.fits SCIENCE.fits [REPEATS]\n");
        return 2;
    }
    if (rapid_fits_read_image(argv[1], NULL, &ref, &err) ||
        rapid_wcs_from_header(&rw, &ref.hdr, &err) ||
        rapid_fits_read_image(argv[2], NULL, &sci, &err) ||
        rapid_wcs_from_header(&sw, &sci.hdr, &err)) {
        fprintf(stderr, "bench_resample_regrid: %s\n", err.msg);
        return 1;
    }
    n = (size_t)sci.nx * sci.ny;
    out = malloc(n * sizeof *out);
    cover = malloc(n * sizeof *cover);
    if (!out || !cover) {
        fprintf(stderr, "bench_resample_regrid: out of memory\n");
        return 1;
    }
    printf("%d x %d onto %d x %d (best of %d: CPU time; wall clock)\n", ref.nx,
           ref.ny, sci.nx, sci.ny, reps);
    for (mode = 0; mode < 3 && rc == 0; mode++) {
        double cpu = 1e9, wall = 1e9, sum = 0;
        size_t nf = 0;
        for (k = 0; k < reps && rc == 0; k++) {
            double t0 = bench_now(), c0 = bench_cpu();
            rc = rapid_regrid(ref.data, ref.nx, ref.ny, &rw, &sw, sci.nx, sci.ny,
                              (rapid_regrid_mode)mode, out, mode ? NULL : cover,
                              &err);
            cpu = fmin(cpu, bench_cpu() - c0);
            wall = fmin(wall, bench_now() - t0);
        }
        if (rc) {
            fprintf(stderr, "bench_resample_regrid: %s\n", err.msg);
            break;
        }
        for (i = 0; i < n; i++)
            if (isfinite(out[i]))
                sum += out[i], nf++;
        printf("  %-8s  %7.3f s CPU  (%.3f s)  %zu values, sum %.17g\n", name[mode],
               cpu, wall, nf, sum);
    }
    free(out);
    free(cover);
    rapid_image_release(&ref);
    rapid_image_release(&sci);
    rapid_wcs_release(&rw);
    rapid_wcs_release(&sw);
    return rc ? 1 : 0;
}
