/* bench_candidates.c - the candidate stage's time on one image: the whole
 * stage (rapid_candidates: detection, measurement, PSF fits, vetting) on
 * 1 and 2 threads, and the PSF fits alone at the catalog's positions, so
 * that extraction = whole - fits.  bench/run.sh times source-extractor on
 * the same image beside it.
 *
 *   bench_candidates IMAGE[EXT] UNC[EXT] PSF [BKG_MESH]
 *
 * EXT as `rapid extract` takes it (a name or number).  Prints one line per
 * figure (best of 3 runs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rapid/candidates.h"
#include "rapid/fits.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int read_arg(const char *arg, rapid_image *img, rapid_err *err)
{
    char path[4096], hdu[256] = "";
    const char *b = strrchr(arg, '[');
    size_t n = strlen(arg);

    if (b && arg[n - 1] == ']') {
        snprintf(path, sizeof path, "%.*s", (int)(b - arg), arg);
        snprintf(hdu, sizeof hdu, "%.*s", (int)(n - 2 - (size_t)(b - arg)), b + 1);
    } else {
        snprintf(path, sizeof path, "%s", arg);
    }
    return rapid_fits_read_image(path, hdu[0] ? hdu : NULL, img, err);
}

int main(int argc, char **argv)
{
    rapid_image img = RAPID_IMAGE_INIT, unc = RAPID_IMAGE_INIT, p = RAPID_IMAGE_INIT;
    rapid_psfphot_psf psf = RAPID_PSFPHOT_PSF_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_cand_input in;
    rapid_cand_opts o;
    long over = 1;
    int th, rep;

    if (argc < 4) {
        fprintf(stderr, "usage: bench_candidates IMAGE[EXT] UNC[EXT] PSF [BKG_MESH]\n");
        return 2;
    }
    if (read_arg(argv[1], &img, &err) || read_arg(argv[2], &unc, &err) ||
        read_arg(argv[3], &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (rapid_header_has(&p.hdr, "OVERSAMP"))
        rapid_header_get_long(&p.hdr, "OVERSAMP", &over, NULL);
    if (rapid_psfphot_psf_set(&psf, p.data, p.nx, p.ny, (int)over, argv[3], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    memset(&in, 0, sizeof in);
    in.diff = img.data;
    in.unc = unc.data;
    in.nx = img.nx;
    in.ny = img.ny;
    in.psf = &psf;
    rapid_cand_opts_init(&o);
    o.negative = 1;
    o.bkg_mesh = argc > 4 ? atoi(argv[4]) : 0;
    for (th = 1; th <= 2; th++) {
        double best = 1e30, bestfit = 1e30;
        long nrows = 0;
        o.psf.nthreads = th;
        for (rep = 0; rep < 3; rep++) {
            rapid_table cat = RAPID_TABLE_INIT;
            rapid_psfphot_result *res;
            double t0 = now(), t1, *x, *y;
            if (rapid_candidates(&in, &o, &cat, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            t1 = now() - t0;
            best = t1 < best ? t1 : best;
            nrows = cat.nrows;
            /* the fits alone, at the same positions, on D */
            x = (double *)rapid_table_col(&cat, "x")->data;
            y = (double *)rapid_table_col(&cat, "y")->data;
            res = malloc((size_t)(nrows > 0 ? nrows : 1) * sizeof *res);
            t0 = now();
            rapid_psfphot(img.data, unc.data, img.nx, img.ny, &psf, &o.psf, (int)nrows,
                          x, y, res, &err);
            t1 = now() - t0;
            bestfit = t1 < bestfit ? t1 : bestfit;
            free(res);
            rapid_table_release(&cat);
        }
        printf("%d x %d, %ld candidates (both signs), %d thread%s: whole stage %.3f s, "
               "PSF fits %.3f s, extraction %.3f s\n", img.nx, img.ny, nrows, th,
               th > 1 ? "s" : "", best, bestfit, best - bestfit);
    }
    rapid_image_release(&img);
    rapid_image_release(&unc);
    rapid_image_release(&p);
    rapid_psfphot_psf_release(&psf);
    return 0;
}
