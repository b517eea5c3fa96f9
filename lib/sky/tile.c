/* tile.c - the Roman sky tessellation (docs/tessellation.md) in closed form.
 *
 * Rings j = 1 .. 4N-1 run north to south.  The continuous "ring coordinate"
 * jf(dec) inverts the ring-centre formula, so the ring of a declination is
 * the nearest integer to jf and ring edges sit at half-integers.  Near the
 * poles jf is computed from sin(colatitude/2) instead of 1 - sin(dec), which
 * keeps full precision right up to the caps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/tile.h"
#include "core/sphere.h"

#define DEG (M_PI / 180.0)

static int nside_ok(int n)
{
    /* 24N^2+2 tiles must fit comfortably; rtid arithmetic is 64-bit. */
    return n >= 1 && n <= (1 << 20);
}

int64_t rapid_tile_count(int nside)
{
    int64_t n = nside;
    return nside_ok(nside) ? 24 * n * n + 2 : 0;
}

/* Tiles in ring j (1 .. 4N-1). */
static int64_t ring_size(int64_t n, int64_t j)
{
    int64_t m = j < n ? j : n;
    if (4 * n - j < m)
        m = 4 * n - j;
    return 8 * m;
}

/* Tiles in all rings north of ring j (rings 1 .. j-1). */
static int64_t tiles_before(int64_t n, int64_t j)
{
    int64_t k;

    if (j <= n)
        return 4 * j * (j - 1);
    if (j <= 3 * n)
        return 4 * n * (n - 1) + 8 * n * (j - n);
    k = 4 * n - j; /* rings j .. 4N-1 hold 8*(k + (k-1) + ... + 1) tiles */
    return 24 * n * n - 4 * k * (k + 1);
}

double rapid_tile_ring_dec(int nside, double jf)
{
    double n = nside, z;

    if (jf <= 0)
        return 90.0;
    if (jf >= 4 * n)
        return -90.0;
    if (jf < n) /* 1 - z = jf^2/(3N^2) = 2 sin^2(colat/2) */
        return 90.0 - 2.0 * asin(jf / (n * sqrt(6.0))) / DEG;
    if (jf > 3 * n)
        return -90.0 + 2.0 * asin((4 * n - jf) / (n * sqrt(6.0))) / DEG;
    z = 4.0 / 3.0 - 2.0 * jf / (3.0 * n);
    return asin(z) / DEG;
}

/* The continuous ring coordinate of a declination (inverse of ring_dec). */
static double ring_coord(double n, double dec)
{
    double z = sin(dec * DEG);

    if (z > 2.0 / 3.0)
        return n * sqrt(6.0) * sin((90.0 - dec) * DEG / 2.0);
    if (z < -2.0 / 3.0)
        return 4 * n - n * sqrt(6.0) * sin((90.0 + dec) * DEG / 2.0);
    return 2 * n - 1.5 * n * z;
}

int64_t rapid_tile_rtid(int nside, double ra, double dec)
{
    int64_t n = nside, j, nr, i;
    double jf, r;

    if (!nside_ok(nside) || !isfinite(ra) || !isfinite(dec) || dec > 90.0 ||
        dec < -90.0)
        return 0;
    jf = ring_coord((double)n, dec);
    if (jf <= 0.5)
        return 1;
    if (jf >= 4 * n - 0.5)
        return 24 * n * n + 2;
    /* Edges (half-integers) belong to the northern ring. */
    j = (int64_t)ceil(jf - 0.5);
    nr = ring_size(n, j);
    r = fmod(ra, 360.0);
    if (r < 0)
        r += 360.0;
    i = (int64_t)floor(r * (double)nr / 360.0 + 0.5);
    if (i >= nr)
        i -= nr;
    return 2 + tiles_before(n, j) + i;
}

/* Ring (0 = north cap, 4N = south cap) and index of rtid, known valid. */
static void ring_of(int64_t n, int64_t rtid, int64_t *j, int64_t *i)
{
    int64_t r = rtid - 2, polar = 4 * n * (n - 1), jj;

    if (rtid == 1) {
        *j = 0, *i = 0;
        return;
    }
    if (rtid == 24 * n * n + 2) {
        *j = 4 * n, *i = 0;
        return;
    }
    if (r < polar) {
        jj = (int64_t)((1.0 + sqrt(1.0 + (double)r)) / 2.0);
        while (jj > 1 && tiles_before(n, jj) > r)
            jj--;
        while (tiles_before(n, jj + 1) <= r)
            jj++;
    } else if (r < 24 * n * n - polar) {
        jj = n + (r - polar) / (8 * n);
    } else { /* mirror of the north: ring k = 4N - j counted from the south */
        int64_t rm = 24 * n * n - 1 - r, k;
        k = (int64_t)((1.0 + sqrt(1.0 + (double)rm)) / 2.0);
        while (k > 1 && 4 * k * (k - 1) > rm)
            k--;
        while (4 * (k + 1) * k <= rm)
            k++;
        jj = 4 * n - k;
    }
    *j = jj;
    *i = r - tiles_before(n, jj);
}

int rapid_tile_get(int nside, int64_t rtid, rapid_tile *t, rapid_err *err)
{
    int64_t n = nside, j, i, nr;
    double d;

    if (!nside_ok(nside))
        return rapid_fail(err, RAPID_E_ARG, "invalid NSIDE %d", nside);
    if (rtid < 1 || rtid > rapid_tile_count(nside))
        return rapid_fail(err, RAPID_E_RANGE,
                          "rtid %lld is not a tile (valid: 1 .. %lld for "
                          "NSIDE %d)",
                          (long long)rtid, (long long)rapid_tile_count(nside),
                          nside);
    memset(t, 0, sizeof *t);
    t->rtid = rtid;
    ring_of(n, rtid, &j, &i);
    t->ring = (int)j;
    t->index = i;
    t->dbid = (int)(4 * n + 1 - j);
    if (j == 0 || j == 4 * n) {
        double edge = rapid_tile_ring_dec(nside, 0.5);
        t->cra = 0.0;
        t->ramin = 0.0;
        t->ramax = 360.0;
        t->nrabins = 1;
        t->cdec = j == 0 ? 90.0 : -90.0;
        t->decmin = j == 0 ? edge : -90.0;
        t->decmax = j == 0 ? 90.0 : -edge;
        return 0;
    }
    nr = ring_size(n, j);
    d = 360.0 / (double)nr;
    t->nrabins = nr;
    t->cra = (double)i * d;
    t->ramin = ((double)i - 0.5) * d;
    t->ramax = ((double)i + 0.5) * d;
    t->cdec = rapid_tile_ring_dec(nside, (double)j);
    t->decmax = rapid_tile_ring_dec(nside, (double)j - 0.5);
    t->decmin = rapid_tile_ring_dec(nside, (double)j + 0.5);
    return 0;
}

void rapid_tile_corners(const rapid_tile *t, double ra[4], double dec[4])
{
    ra[0] = t->ramin, dec[0] = t->decmin;
    ra[1] = t->ramax, dec[1] = t->decmin;
    ra[2] = t->ramax, dec[2] = t->decmax;
    ra[3] = t->ramin, dec[3] = t->decmax;
}

/* ------------------------------------------------------------ neighbours */

int rapid_tile_max_neighbors(int nside)
{
    /* A cap touches the whole first ring; any other tile at most two in its
     * own ring plus the overlaps in the rings on either side. */
    return nside_ok(nside) ? 8 + 16 : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int sort_unique(int64_t *v, int n)
{
    int i, k = 0;

    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    for (i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    return k;
}

/* Append the tiles of ring jo touching, edge or corner, RA span
 * [(2i-1)/(2n), (2i+1)/(2n)] turns of a tile in a ring of n tiles.  Integer
 * arithmetic makes touching corners exact. */
static int add_touching(int64_t nside, int64_t jo, int64_t i, int64_t n,
                        int64_t *out, int k)
{
    int64_t m, lo, hi, q, num;

    if (jo <= 0) {
        out[k++] = 1;
        return k;
    }
    if (jo >= 4 * nside) {
        out[k++] = 24 * nside * nside + 2;
        return k;
    }
    m = ring_size(nside, jo);
    /* tile q of ring jo spans [(2q-1)/(2m), (2q+1)/(2m)]; they touch when
     * (2q+1)n >= (2i-1)m and (2q-1)n <= (2i+1)m. */
    num = (2 * i - 1) * m - n; /* 2n*q >= num */
    lo = num >= 0 ? (num + 2 * n - 1) / (2 * n) : -((-num) / (2 * n));
    num = (2 * i + 1) * m + n; /* 2n*q <= num */
    hi = num >= 0 ? num / (2 * n) : -((-num + 2 * n - 1) / (2 * n));
    if (hi - lo + 1 >= m) {
        lo = 0;
        hi = m - 1;
    }
    for (q = lo; q <= hi; q++)
        out[k++] = 2 + tiles_before(nside, jo) + ((q % m) + m) % m;
    return k;
}

int rapid_tile_neighbors(int nside, int64_t rtid, int64_t *out, rapid_err *err)
{
    int64_t n = nside, j, i, nr, q;
    int k = 0, c;
    rapid_tile t = {0};

    if ((c = rapid_tile_get(nside, rtid, &t, err)) != 0)
        return c;
    j = t.ring;
    i = t.index;
    if (j == 0 || j == 4 * n) {
        int64_t ring = j == 0 ? 1 : 4 * n - 1;
        for (q = 0; q < 8; q++)
            out[k++] = 2 + tiles_before(n, ring) + q;
        return k;
    }
    nr = ring_size(n, j);
    out[k++] = 2 + tiles_before(n, j) + (i + 1) % nr;
    out[k++] = 2 + tiles_before(n, j) + (i + nr - 1) % nr;
    k = add_touching(n, j - 1, i, nr, out, k);
    k = add_touching(n, j + 1, i, nr, out, k);
    k = sort_unique(out, k);
    /* A ring of one... never: the smallest ring has 8 tiles, so the tile
     * itself is never its own neighbour. */
    return k;
}

/* ------------------------------------------------ footprint overlaps */

#define EDGE_STEPS 8 /* samples per tile edge: Dec edges are small circles */

/* The tile's outline on the footprint's tangent plane; -1 if any of it is
 * on the far hemisphere (then it cannot overlap a small footprint). */
static int tile_outline(const rapid_tile *t, double ra0, double dec0,
                        vec2 out[4 * EDGE_STEPS])
{
    double ra[4], dec[4];
    int e, s, k = 0;

    if (t->nrabins == 1) { /* a cap: a circle, circumscribed so as to miss
                            * no overlap */
        double rho = (90.0 - fabs(t->cdec == 90 ? t->decmin : t->decmax)) /
                     cos(M_PI / (4 * EDGE_STEPS));
        double sgn = t->cdec > 0 ? 1 : -1;
        for (k = 0; k < 4 * EDGE_STEPS; k++)
            if (sphere_gnomonic(ra0, dec0, 360.0 * k / (4 * EDGE_STEPS),
                                sgn * (90.0 - rho), &out[k]))
                return RAPID_E_RANGE;
        return 0;
    }
    rapid_tile_corners(t, ra, dec);
    for (e = 0; e < 4; e++) {
        int f = (e + 1) % 4;
        for (s = 0; s < EDGE_STEPS; s++) {
            double u = (double)s / EDGE_STEPS;
            if (sphere_gnomonic(ra0, dec0, ra[e] + u * (ra[f] - ra[e]),
                                dec[e] + u * (dec[f] - dec[e]), &out[k++]))
                return RAPID_E_RANGE;
        }
    }
    return 0;
}

/* Footprints larger than this (degrees from centre to corner) are refused:
 * the tangent-plane test below assumes a detector- or tile-sized patch. */
#define MAX_FOOTPRINT_RADIUS 30.0

int rapid_tile_overlaps(int nside, const double ra[5], const double dec[5],
                        int64_t **out, rapid_err *err)
{
    vec2 poly[4], edge[4 * EDGE_STEPS];
    double decmin = 90, decmax = -90, rlo = 0, rhi = 0;
    int64_t *res = NULL, jlo, jhi, jj;
    int e, s, k = 0, cap = 64, pole = 0, rc = 0;

    *out = NULL;
    if (!nside_ok(nside))
        return rapid_fail(err, RAPID_E_ARG, "invalid NSIDE %d", nside);
    for (e = 0; e < 5; e++)
        if (!isfinite(ra[e]) || !isfinite(dec[e]) || fabs(dec[e]) > 90)
            return rapid_fail(err, RAPID_E_ARG,
                              "footprint point %d (%g, %g) is not a sky "
                              "position",
                              e, ra[e], dec[e]);
    for (e = 0; e < 4; e++)
        if (sphere_gnomonic(ra[0], dec[0], ra[e + 1], dec[e + 1], &poly[e]) ||
            hypot(poly[e].x, poly[e].y) > tan(MAX_FOOTPRINT_RADIUS * DEG))
            return rapid_fail(err, RAPID_E_ARG,
                              "footprint corner %d (%g, %g) is more than %g "
                              "deg from its centre (%g, %g)",
                              e + 1, ra[e + 1], dec[e + 1],
                              MAX_FOOTPRINT_RADIUS, ra[0], dec[0]);
    /* Extent in Dec and RA (relative to the centre) along the great-circle
     * edges, which bow away from the equator between corners. */
    for (e = 0; e < 4; e++) {
        vec2 a = poly[e], b = poly[(e + 1) % 4];
        for (s = 0; s <= 64; s++) {
            double u = s / 64.0, r, d;
            vec2 p = {a.x + u * (b.x - a.x), a.y + u * (b.y - a.y)};
            sphere_ungnomonic(ra[0], dec[0], p, &r, &d);
            r = remainder(r - ra[0], 360.0);
            decmin = fmin(decmin, d), decmax = fmax(decmax, d);
            rlo = fmin(rlo, r), rhi = fmax(rhi, r);
        }
    }
    /* A pole inside the footprint: every RA, and the cap. */
    for (e = -1; e <= 1; e += 2) {
        vec2 p;
        if (sphere_gnomonic(ra[0], dec[0], 0.0, 90.0 * e, &p) == 0 &&
            plane_inside(poly, 4, p)) {
            pole = 1;
            if (e > 0)
                decmax = 90;
            else
                decmin = -90;
        }
    }
    /* Pad by one sampling error's worth; the exact test below decides. */
    decmin = fmax(-90, decmin - 1e-3), decmax = fmin(90, decmax + 1e-3);
    jlo = (int64_t)floor(ring_coord(nside, decmax) + 0.5);
    jhi = (int64_t)ceil(ring_coord(nside, decmin) - 0.5);
    if (!(res = malloc((size_t)cap * sizeof *res)))
        return RAPID_E_NOMEM;
    for (jj = jlo < 0 ? 0 : jlo; jj <= jhi && jj <= 4 * (int64_t)nside; jj++) {
        int64_t nr, q, qlo, qhi;
        double d;
        if (jj == 0 || jj == 4 * (int64_t)nside) {
            qlo = qhi = 0, nr = 1, d = 360;
        } else {
            nr = ring_size(nside, jj);
            d = 360.0 / (double)nr;
            if (pole || rhi - rlo >= 180) {
                qlo = 0, qhi = nr - 1;
            } else {
                qlo = (int64_t)floor((ra[0] + rlo) / d + 0.5) - 1;
                qhi = (int64_t)floor((ra[0] + rhi) / d + 0.5) + 1;
                if (qhi - qlo + 1 > nr)
                    qlo = 0, qhi = nr - 1;
            }
        }
        for (q = qlo; q <= qhi; q++) {
            int64_t rtid = jj == 0 ? 1
                           : jj == 4 * (int64_t)nside
                               ? rapid_tile_count(nside)
                               : 2 + tiles_before(nside, jj) + ((q % nr) + nr) % nr;
            rapid_tile t = {0};
            if (rapid_tile_get(nside, rtid, &t, NULL) != 0 ||
                tile_outline(&t, ra[0], dec[0], edge) != 0)
                continue;
            if (!plane_polygons_meet(poly, 4, edge, 4 * EDGE_STEPS))
                continue;
            if (k == cap) {
                int64_t *more = realloc(res, (size_t)(cap *= 2) * sizeof *res);
                if (!more) {
                    rc = RAPID_E_NOMEM;
                    goto cleanup;
                }
                res = more;
            }
            res[k++] = rtid;
        }
    }
    k = sort_unique(res, k);
    *out = res;
    return k;
cleanup:
    free(res);
    return rc;
}
