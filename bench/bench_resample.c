/* bench_resample.c - the resampling kernel on one real input, by stage.
 *   bench_resample INPUT.fits [REPEATS]
 * Maps a 4088^2 simulated input onto the 7000^2 grid of its tile (the
 * reference-image case) and times the mesh's stages per input pixel: with
 * every row of the footprint held, the edges and then the rows; and with a
 * ring of rows, each taken as soon as it is done (what the coadd does). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "rapid/fits.h"
#include "rapid/pixmap.h"
#include "rapid/tile.h"
#include "rapid/wcs.h"
#include "image/resample.h"

typedef struct taker {
    rapid_mesh *p;
    double *as, *a, sum;
} taker;

static void take(void *arg, int y)
{
    taker *t = arg;
    rapid_mesh *p = t->p;
    int r = y - p->y0, x0 = p->xb + p->c0[r], x1 = p->xb + p->c1[r], c;

    rapid_mesh_row(p, y, x0, x1, t->as, t->a);
    for (c = 0; c <= x1 - x0; c++)
        t->sum += t->a[c];
}

int main(int argc, char **argv)
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_wcs in = RAPID_WCS_INIT, grid = RAPID_WCS_INIT;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    rapid_mesh p = RAPID_MESH_INIT;
    rapid_tile t;
    rapid_err err = RAPID_ERR_INIT;
    int reps = argc > 2 ? atoi(argv[2]) : 3, k, r, size = 7000;
    double best[4] = {1e9, 1e9, 1e9, 1e9}, *as, *a, sum = 0, ringsum;
    size_t full;
    long nsat;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_resample INPUT.fits [REPEATS]\n");
        return 2;
    }
    if (rapid_fits_read_image(argv[1], NULL, &img, &err) ||
        rapid_wcs_from_header(&in, &img.hdr, &err) ||
        rapid_tile_get(RAPID_TILE_NSIDE, rapid_tile_rtid(RAPID_TILE_NSIDE, 9.6, -44.0), &t, &err) ||
        rapid_wcs_tan_grid(&grid, t.cra, t.cdec, size, size, 0.11, &err)) {
        fprintf(stderr, "bench_resample: %s\n", err.msg);
        return 1;
    }
    as = malloc(sizeof(double) * 16384);
    a = malloc(sizeof(double) * 16384);
    for (k = 0; k < reps; k++) {
        double t0 = bench_now(), t1, t2, t3;
        rapid_pixmap_release(&m);
        if (rapid_pixmap_make(&m, &in, &grid, -0.5, img.nx - 0.5, -0.5, img.ny - 0.5, 64, &err) ||
            rapid_mesh_place(&p, &m, img.nx, img.ny, (size_t)1 << 26, -1)) {
            fprintf(stderr, "bench_resample: cannot place the mesh\n");
            return 1;
        }
        t1 = bench_now();
        rapid_mesh_add(&p, &m, img.data, img.nx, img.ny, 1.0, 1e30, NULL, NULL, &nsat);
        t2 = bench_now();
        for (r = 0; r < p.h; r++) {
            int y = p.y0 + r, x0 = p.xb + p.c0[r], x1 = p.xb + p.c1[r], c;
            rapid_mesh_row(&p, y, x0, x1, as, a);
            for (c = 0; c <= x1 - x0; c++)
                sum += a[c];
        }
        t3 = bench_now();
        best[0] = fmin(best[0], t1 - t0);
        best[1] = fmin(best[1], t2 - t1);
        best[2] = fmin(best[2], t3 - t2);
    }
    full = p.n;
    {
        taker tk = {&p, as, a, 0};
        rapid_mesh_release(&p);
        for (k = 0; k < reps; k++) {
            double t0;
            if (rapid_mesh_place(&p, &m, img.nx, img.ny, (size_t)1 << 26,
                                 RAPID_MESH_BATCH)) {
                fprintf(stderr, "bench_resample: cannot place the mesh\n");
                return 1;
            }
            t0 = bench_now();
            rapid_mesh_add(&p, &m, img.data, img.nx, img.ny, 1.0, 1e30, take, &tk, &nsat);
            best[3] = fmin(best[3], bench_now() - t0);
        }
        ringsum = tk.sum / reps;
    }
    {
        double npix = (double)img.nx * img.ny;
        printf("input %d x %d onto %d^2: mesh %zu cells\n", img.nx, img.ny, size, full);
        printf("  map + place   %7.3f s  %5.1f ns/input pixel\n", best[0], 1e9 * best[0] / npix);
        printf("  edges         %7.3f s  %5.1f ns/input pixel\n", best[1], 1e9 * best[1] / npix);
        printf("  rows (sums)   %7.3f s  %5.1f ns/input pixel\n", best[2], 1e9 * best[2] / npix);
        printf("  total area %.6g = %.6f of the input's pixels\n", sum / reps, sum / reps / npix);
        printf("ring of %d rows (%zu cells):\n", p.win, p.n);
        printf("  edges + rows  %7.3f s  %5.1f ns/input pixel\n", best[3], 1e9 * best[3] / npix);
        printf("  total area %.6g\n", ringsum);
    }
    rapid_mesh_release(&p);
    rapid_pixmap_release(&m);
    rapid_image_release(&img);
    rapid_wcs_release(&in);
    rapid_wcs_release(&grid);
    free(as);
    free(a);
    return 0;
}
