/* bench_extract.c - the reference catalog alone: SEP's background,
 * detection and the per-source measurements on a coadd, in one pass and
 * in strips, and how the two catalogs compare.
 *   bench_extract IMAGE.fits UNC.fits [REPEATS] [THREADS] [STRIP_ROWS] [OUT.fits]
 * (the products of `rapid coadd`; bench/bench_coadd.sh makes them).
 * Each run: wall clock and the process's CPU time; THREADS (1) for the
 * strips and measurements, STRIP_ROWS (the reference catalog's, 1536).  Then the
 * strips' catalog against the one pass's: sources matched by position,
 * those outside deblended blends compared column by column; OUT.fits gets
 * the strips' catalog (for bench/catalog_vs_sextractor.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "rapid/extract.h"
#include "rapid/fits.h"
#include "rapid/wcs.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run(const rapid_image *img, const rapid_image *unc, rapid_wcs *wcs,
               const rapid_extract_opts *o, const char *what, int reps,
               rapid_table *keep)
{
    rapid_err err = RAPID_ERR_INIT;
    double best = 1e9, bestcpu = 1e9;
    int k;

    for (k = 0; k < reps; k++) {
        rapid_table cat;
        rapid_extract_stats st;
        double t0 = bench_now(), c0 = cpu_now(), t, c;
        if (rapid_extract(img->data, unc->data, NULL, img->nx, img->ny, o, wcs,
                          &cat, &st, &err)) {
            fprintf(stderr, "bench_extract: %s\n", err.msg);
            return 1;
        }
        t = bench_now() - t0;
        c = cpu_now() - c0;
        best = t < best ? t : best;
        bestcpu = c < bestcpu ? c : bestcpu;
        printf("%s run %d: %.3f s wall, %.3f s CPU, %d strip(s), %ld sources, "
               "%ld stars, median FWHM %.4f px\n", what, k + 1, t, c, st.nstrips,
               st.nsources, st.nstars, st.fwhm_med);
        if (k == 0 && keep)
            *keep = cat;
        else
            rapid_table_release(&cat);
    }
    printf("%s, %d x %d coadd: best %.3f s wall, %.3f s CPU\n", what, img->nx,
           img->ny, best, bestcpu);
    return 0;
}

static int cmp_double(const void *p, const void *q)
{
    double x = *(const double *)p, y = *(const double *)q;
    return (x > y) - (x < y);
}

/* The strips' catalog b against the one pass's a. */
static void compare(const rapid_table *a, const rapid_table *b)
{
    const double *ax = rapid_table_col(a, "X")->data, *ay = rapid_table_col(a, "Y")->data;
    const double *bx = rapid_table_col(b, "X")->data, *by = rapid_table_col(b, "Y")->data;
    const int32_t *af = rapid_table_col(a, "FLAGS")->data;
    long *cell, *next, nc = 0, i, j, same = 0, plain = 0, merged = 0, lost = 0;
    long mlost = 0, mn = 0;
    int gw = 1 + (int)(8192 / 4), k;
    double *dflux = malloc((size_t)(a->nrows + 1) * sizeof *dflux);
    double *dpos = malloc((size_t)(a->nrows + 1) * sizeof *dpos);
    long nd = 0, nsame = 0;

    cell = malloc((size_t)gw * gw * sizeof *cell);
    next = malloc((size_t)(b->nrows + 1) * sizeof *next);
    for (i = 0; i < (long)gw * gw; i++)
        cell[i] = -1;
    for (j = 0; j < b->nrows; j++) { /* 4-px cells of b's positions */
        long c = (long)(by[j] / 4) * gw + (long)(bx[j] / 4);
        next[j] = cell[c];
        cell[c] = j;
    }
    for (i = 0; i < a->nrows; i++) {
        long best = -1, cx = (long)(ax[i] / 4), cy = (long)(ay[i] / 4), dx, dy;
        double dmin = 1.0;
        for (dy = -1; dy <= 1; dy++)
            for (dx = -1; dx <= 1; dx++) {
                if (cx + dx < 0 || cy + dy < 0 || cx + dx >= gw || cy + dy >= gw)
                    continue;
                for (j = cell[(cy + dy) * gw + cx + dx]; j >= 0; j = next[j]) {
                    double d = hypot(bx[j] - ax[i], by[j] - ay[i]);
                    if (d < dmin)
                        dmin = d, best = j;
                }
            }
        if (af[i] & 1) { /* a member of a deblended blend */
            mn++;
            if (best < 0) {
                    mlost++;
                continue;
            }
            merged++;
            {
                const float *fa = rapid_table_col(a, "FLUX")->data;
                const float *fb = rapid_table_col(b, "FLUX")->data;
                dflux[nd] = fabs(fb[best] - fa[i]) / fabs(fa[i]);
                dpos[nd] = dmin;
                nsame += dflux[nd] == 0 && dmin == 0;
                nd++;
            }
            continue;
        }
        plain++;
        if (best < 0) {
            lost++;
            continue;
        }
        for (k = 0; k < a->ncols; k++) { /* every column but NUMBER */
            const rapid_column *u = &a->cols[k], *v = &b->cols[k];
            double p, q;
            if (!strcmp(u->name, "NUMBER"))
                continue;
            p = u->type == RAPID_COL_F64   ? ((const double *)u->data)[i]
                : u->type == RAPID_COL_F32 ? ((const float *)u->data)[i]
                                           : ((const int32_t *)u->data)[i];
            q = v->type == RAPID_COL_F64   ? ((const double *)v->data)[best]
                : v->type == RAPID_COL_F32 ? ((const float *)v->data)[best]
                                           : ((const int32_t *)v->data)[best];
            if (!(p == q || fabs(p - q) <= 1e-6 * fabs(p) || (isnan(p) && isnan(q))))
                break;
        }
        same += k == a->ncols;
        nc++;
    }
    printf("one pass %ld sources, strips %ld; outside blends %ld: %ld found, %ld "
           "the same in every column (1e-6); members of blends %ld: %ld found "
           "within 1 px, %ld not\n", a->nrows, b->nrows, plain, plain - lost, same,
           mn, merged, mlost);
    if (nd > 0) {
        qsort(dflux, (size_t)nd, sizeof *dflux, cmp_double);
        qsort(dpos, (size_t)nd, sizeof *dpos, cmp_double);
        printf("  members of blends found: %ld with the same FLUX and X, Y; "
               "|dFLUX|/FLUX median %.2e, 90%% %.2e, max %.2e; offset of X, Y "
               "median %.4f, 90%% %.4f, max %.4f px\n", nsame, dflux[nd / 2],
               dflux[nd * 9 / 10], dflux[nd - 1], dpos[nd / 2], dpos[nd * 9 / 10],
               dpos[nd - 1]);
    }
    free(dflux);
    free(dpos);
    free(cell);
    free(next);
}

int main(int argc, char **argv)
{
    rapid_image img = RAPID_IMAGE_INIT, unc = RAPID_IMAGE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_extract_opts o;
    rapid_table one, strips;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    char what[64];

    if (argc < 3) {
        fprintf(stderr, "usage: bench_extract IMAGE.fits UNC.fits [REPEATS] "
                        "[THREADS] [STRIP_ROWS] [OUT.fits]\n");
        return 2;
    }
    if (rapid_fits_read_image(argv[1], NULL, &img, &err) ||
        rapid_fits_read_image(argv[2], NULL, &unc, &err) ||
        rapid_wcs_from_header(&wcs, &img.hdr, &err)) {
        fprintf(stderr, "bench_extract: %s\n", err.msg);
        return 1;
    }
    rapid_extract_opts_init(&o);
    o.nthreads = argc > 4 ? atoi(argv[4]) : 1;
    o.strip_rows = argc > 5 ? atoi(argv[5]) : RAPID_EXTRACT_REF_STRIP_ROWS;
    snprintf(what, sizeof what, "strips of %d rows, %d thread(s)", o.strip_rows,
             o.nthreads);
    if (run(&img, &unc, &wcs, &o, what, reps, &strips))
        return 1;
    o.strip_rows = 0;
    o.nthreads = 1;
    if (run(&img, &unc, &wcs, &o, "one pass, 1 thread", reps, &one))
        return 1;
    compare(&one, &strips);
    if (argc > 6 && rapid_fits_write_table(argv[6], &strips, "CATALOG", &err)) {
        fprintf(stderr, "bench_extract: %s\n", err.msg);
        return 1;
    }
    rapid_table_release(&one);
    rapid_table_release(&strips);
    rapid_image_release(&img);
    rapid_image_release(&unc);
    rapid_wcs_release(&wcs);
    return 0;
}
