/* bench_tile.c - tessellation throughput on one core.
 *
 * Prints one line per measurement: what, count, seconds, rate.  Positions
 * are drawn uniformly on the sphere beforehand so that only the lookups are
 * timed; a checksum of the results keeps the compiler from skipping work.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "benchutil.h"
#include "rapid/tile.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000000, i, rep;
    double *ra = malloc((size_t)n * sizeof *ra), *dec = malloc((size_t)n * sizeof *dec);
    int64_t sum = 0, total = rapid_tile_count(RAPID_TILE_NSIDE);
    double t0, best = 1e30;
    uint64_t s = 42;
    rapid_tile t;

    if (!ra || !dec || n <= 0)
        return 1;
    for (i = 0; i < n; i++) {
        ra[i] = 360 * bench_uniform(&s);
        dec[i] = asin(2 * bench_uniform(&s) - 1) * 180 / M_PI;
    }
    for (rep = 0; rep < 3; rep++) { /* best of three */
        t0 = bench_now();
        for (i = 0; i < n; i++)
            sum += rapid_tile_rtid(RAPID_TILE_NSIDE, ra[i], dec[i]);
        best = fmin(best, bench_now() - t0);
    }
    printf("rtid_lookup %d %.4f %.1f Mlookups/s\n", n, best, n / best / 1e6);
    best = 1e30;
    for (rep = 0; rep < 3; rep++) {
        t0 = bench_now();
        for (i = 0; i < n; i++) {
            rapid_tile_get(RAPID_TILE_NSIDE, 1 + (int64_t)(i * 7919LL % total), &t, NULL);
            sum += t.dbid;
        }
        best = fmin(best, bench_now() - t0);
    }
    printf("tile_get %d %.4f %.1f Mtiles/s\n", n, best, n / best / 1e6);
    fprintf(stderr, "checksum %lld\n", (long long)sum);
    free(ra);
    free(dec);
    return 0;
}
