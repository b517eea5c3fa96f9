/* bench_resample.c - the resampling kernel on one real input, by stage.
 *   bench_resample INPUT.fits [REPEATS [masked]]
 * Maps a 4088^2 simulated input onto the 7000^2 grid of its tile (the
 * reference-image case) and times the mesh's stages per input pixel: with
 * every row of the footprint held, the edges and then the rows; and with a
 * ring of rows, each taken as soon as it is done (what the coadd does).
 * With "masked", the pixels the coadd leaves out (its DQ masks, grown as it
 * grows them) are holes in the mesh, as in the coadd.
 * Each stage's best time of the repeats: CPU time (the thread's), then
 * wall clock. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "rapid/dq.h"
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
    double best[4] = {1e9, 1e9, 1e9, 1e9}, cpu[4] = {1e9, 1e9, 1e9, 1e9};
    double *as, *a, sum = 0, ringsum;
    size_t full;
    long nsat, nmask = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_resample INPUT.fits [REPEATS [masked]]\n");
        return 2;
    }
    if (rapid_fits_read_image(argv[1], NULL, &img, &err) ||
        rapid_wcs_from_header(&in, &img.hdr, &err) ||
        rapid_tile_get(RAPID_TILE_NSIDE, rapid_tile_rtid(RAPID_TILE_NSIDE, 9.6, -44.0), &t, &err) ||
        rapid_wcs_tan_grid(&grid, t.cra, t.cdec, size, size, 0.11, &err)) {
        fprintf(stderr, "bench_resample: %s\n", err.msg);
        return 1;
    }
    /* the coadd's masks (coadd_sums.c): PERSISTENCE grown by 3 px,
     * JUMP_DET by 1 */
    if (argc > 3 && !strcmp(argv[3], "masked")) {
        size_t q;
        if (rapid_dq_mask_file_grow_by(argv[1], &img, RAPID_DQ_PERSISTENCE, 3, NULL, &err) ||
            rapid_dq_mask_file_grow_by(argv[1], &img, RAPID_DQ_JUMP_DET, 1, NULL, &err)) {
            fprintf(stderr, "bench_resample: %s\n", err.msg);
            return 1;
        }
        for (q = 0; q < (size_t)img.nx * img.ny; q++)
            nmask += isnan(img.data[q]);
    }
    as = malloc(sizeof(double) * 16384);
    a = malloc(sizeof(double) * 16384);
    for (k = 0; k < reps; k++) {
        double t0 = bench_now(), t1, t2, t3, c0 = bench_cpu(), c1, c2;
        rapid_pixmap_release(&m);
        if (rapid_pixmap_make(&m, &in, &grid, -0.5, img.nx - 0.5, -0.5, img.ny - 0.5, 64, &err) ||
            rapid_mesh_place(&p, &m, img.nx, img.ny, (size_t)1 << 26, -1)) {
            fprintf(stderr, "bench_resample: cannot place the mesh\n");
            return 1;
        }
        t1 = bench_now(), c1 = bench_cpu();
        rapid_mesh_add(&p, &m, img.data, img.nx, img.ny, 1.0, 1e30, NULL, NULL, &nsat);
        t2 = bench_now(), c2 = bench_cpu();
        for (r = 0; r < p.h; r++) {
            int y = p.y0 + r, x0 = p.xb + p.c0[r], x1 = p.xb + p.c1[r], c;
            rapid_mesh_row(&p, y, x0, x1, as, a);
            for (c = 0; c <= x1 - x0; c++)
                sum += a[c];
        }
        t3 = bench_now();
        cpu[0] = fmin(cpu[0], c1 - c0);
        cpu[1] = fmin(cpu[1], c2 - c1);
        cpu[2] = fmin(cpu[2], bench_cpu() - c2);
        best[0] = fmin(best[0], t1 - t0);
        best[1] = fmin(best[1], t2 - t1);
        best[2] = fmin(best[2], t3 - t2);
    }
    full = p.n;
    {
        taker tk = {&p, as, a, 0};
        rapid_mesh_release(&p);
        for (k = 0; k < reps; k++) {
            double t0, c0;
            if (rapid_mesh_place(&p, &m, img.nx, img.ny, (size_t)1 << 26,
                                 RAPID_MESH_BATCH)) {
                fprintf(stderr, "bench_resample: cannot place the mesh\n");
                return 1;
            }
            t0 = bench_now(), c0 = bench_cpu();
            rapid_mesh_add(&p, &m, img.data, img.nx, img.ny, 1.0, 1e30, take, &tk, &nsat);
            cpu[3] = fmin(cpu[3], bench_cpu() - c0);
            best[3] = fmin(best[3], bench_now() - t0);
        }
        ringsum = tk.sum / reps;
    }
    {
        double npix = (double)img.nx * img.ny;
        printf("input %d x %d onto %d^2: mesh %zu cells; %.2f %% of the pixels masked\n",
               img.nx, img.ny, size, full, 100.0 * nmask / npix);
        printf("  (best of %d: CPU time, ns per input pixel; wall clock)\n", reps);
        printf("  map + place   %7.3f s CPU  %5.1f ns  (%.3f s)\n", cpu[0], 1e9 * cpu[0] / npix, best[0]);
        printf("  edges         %7.3f s CPU  %5.1f ns  (%.3f s)\n", cpu[1], 1e9 * cpu[1] / npix, best[1]);
        printf("  rows (sums)   %7.3f s CPU  %5.1f ns  (%.3f s)\n", cpu[2], 1e9 * cpu[2] / npix, best[2]);
        printf("  total area %.6g = %.6f of the input's pixels\n", sum / reps, sum / reps / npix);
        printf("ring of %d rows (%zu cells):\n", p.win, p.n);
        printf("  edges + rows  %7.3f s CPU  %5.1f ns  (%.3f s)\n", cpu[3], 1e9 * cpu[3] / npix, best[3]);
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
