/* test_tile.c - the sky tessellation against docs/tessellation.md and its own invariants. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <unistd.h>

#include "rapid/tile.h"
#include "rapid/tile_export.h"
#include "testutil.h"

#define N RAPID_TILE_NSIDE

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9f, want %.9f (tol %g)", got, want, tol);
}

/* The checks published with the tessellation (docs/tessellation.md). */
static void test_published(void **state)
{
    rapid_tile t;
    int64_t r;

    (void)state;
    r = rapid_tile_rtid(N, 11.1, -43.8);
    assert_int_equal(r, 5321355);
    assert_int_equal(rapid_tile_get(N, r, &t, NULL), 0);
    near(t.cra, 11.067073, 1e-6);
    near(t.cdec, -43.80449, 1e-5);
    near(t.ramin, 11.021341, 1e-6);
    near(t.ramax, 11.112804, 1e-6);
    near(t.decmin, -43.85415, 1e-5);
    near(t.decmax, -43.754818, 2e-6);
    assert_int_equal(t.nrabins, 3936);
    assert_int_equal(t.dbid, 493);

    assert_int_equal(rapid_tile_get(N, 2, &t, NULL), 0);
    near(t.cra, 0, 1e-12);
    near(t.cdec, 89.90863, 1e-5);
    near(t.ramin, -22.5, 1e-12);
    near(t.ramax, 22.5, 1e-12);

    for (r = 226; r <= 289; r++) {
        assert_int_equal(rapid_tile_get(N, r, &t, NULL), 0);
        assert_int_equal(t.nrabins, 64);
        assert_int_equal(t.dbid, 2041);
        near(t.cdec, 89.26903, 1e-5);
    }
    assert_int_equal(rapid_tile_get(N, 225, &t, NULL), 0);
    assert_int_not_equal(t.nrabins, 64);
    assert_int_equal(rapid_tile_get(N, 290, &t, NULL), 0);
    assert_int_not_equal(t.nrabins, 64);

    assert_int_equal(rapid_tile_count(N), 6291458);
}

static void test_caps(void **state)
{
    rapid_tile t;

    (void)state;
    assert_int_equal(rapid_tile_rtid(N, 123.0, 90.0), 1);
    assert_int_equal(rapid_tile_rtid(N, 0.0, 89.9544), 1);
    assert_int_equal(rapid_tile_rtid(N, 0.0, 89.9542), 2);
    assert_int_equal(rapid_tile_rtid(N, 5.0, -90.0), 6291458);
    assert_int_equal(rapid_tile_rtid(N, 5.0, -89.9544), 6291458);
    assert_int_not_equal(rapid_tile_rtid(N, 5.0, -89.9542), 6291458);
    assert_int_equal(rapid_tile_get(N, 1, &t, NULL), 0);
    near(t.decmin, 89.954315, 2e-6);
    assert_int_equal(t.dbid, 2049);
    assert_int_equal(rapid_tile_get(N, 6291458, &t, NULL), 0);
    assert_int_equal(t.dbid, 1);
    near(t.decmax, -89.954315, 2e-6);
}

static void test_invalid(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_tile t;

    (void)state;
    assert_int_equal(rapid_tile_rtid(N, 0, 90.0001), 0);
    assert_int_equal(rapid_tile_rtid(N, 0, -91), 0);
    assert_int_equal(rapid_tile_rtid(N, NAN, 0), 0);
    assert_int_equal(rapid_tile_get(N, 0, &t, &err), RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "rtid 0"));
    assert_int_equal(rapid_tile_get(N, 6291459, &t, &err), RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "6291459"));
    assert_int_equal(rapid_tile_get(0, 5, &t, &err), RAPID_E_ARG);
}

/* RA wraps: the same tile for ra, ra+360, ra-360. */
static void test_ra_wrap(void **state)
{
    uint64_t s = 7;
    int k;

    (void)state;
    for (k = 0; k < 10000; k++) {
        double ra = 360 * test_uniform(&s), dec = 180 * test_uniform(&s) - 90;
        int64_t r = rapid_tile_rtid(N, ra, dec);
        assert_int_equal(rapid_tile_rtid(N, ra + 360, dec), r);
        assert_int_equal(rapid_tile_rtid(N, ra - 360, dec), r);
    }
    /* the first tile of a ring straddles RA 0 */
    assert_int_equal(rapid_tile_rtid(N, 359.99, 0.0), rapid_tile_rtid(N, 0.01, 0.0));
}

/* Every tile's centre maps back to its own rtid; ring bookkeeping adds up. */
static void check_all_centres(int nside)
{
    int64_t total = rapid_tile_count(nside), r, prev_ring = -1, in_ring = 0;
    rapid_tile t;

    assert_int_equal(total, 24 * (int64_t)nside * nside + 2);
    for (r = 1; r <= total; r++) {
        assert_int_equal(rapid_tile_get(nside, r, &t, NULL), 0);
        if (rapid_tile_rtid(nside, t.cra, t.cdec) != r)
            fail_msg("nside %d: centre of rtid %lld maps to %lld", nside,
                     (long long)r, (long long)rapid_tile_rtid(nside, t.cra, t.cdec));
        if (t.ring != prev_ring) {
            if (prev_ring >= 0 && r > 1)
                assert_true(t.ring == prev_ring + 1);
            prev_ring = t.ring;
            in_ring = 0;
        }
        assert_int_equal(t.index, in_ring);
        in_ring++;
        assert_int_equal(t.dbid, 4 * nside + 1 - t.ring);
        assert_true(t.decmin < t.cdec || t.ring == 4 * nside);
        assert_true(t.cdec < t.decmax || t.ring == 0);
    }
    assert_int_equal(prev_ring, 4 * nside);
}

static void test_all_centres(void **state)
{
    int sizes[] = {1, 2, 3, 8, 64, N};
    size_t k;

    (void)state;
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        check_all_centres(sizes[k]);
}

/* Random points lie inside the bounds of the tile they map to. */
static void test_points_inside(void **state)
{
    uint64_t s = 11;
    rapid_tile t;
    int k;

    (void)state;
    for (k = 0; k < 200000; k++) {
        double ra = 360 * test_uniform(&s);
        double dec = asin(2 * test_uniform(&s) - 1) * 180 / M_PI;
        int64_t r = rapid_tile_rtid(N, ra, dec);
        double rr;
        assert_int_equal(rapid_tile_get(N, r, &t, NULL), 0);
        assert_true(dec >= t.decmin - 1e-12 && dec <= t.decmax + 1e-12);
        rr = ra;
        if (rr >= t.ramax)
            rr -= 360; /* the first tile of a ring has ramin < 0 */
        assert_true(rr >= t.ramin - 1e-12 && rr < t.ramax + 1e-12);
    }
}

/* Tiles have equal areas (pi/(6N^2) sr, the caps too), except rings N and 3N:
 * there the polar and equatorial ring formulas meet, and the published edges
 * make those two rings narrower by exactly 1/(8N). */
static void test_equal_area(void **state)
{
    uint64_t s = 3;
    double want = 41252.96124941928 / (24.0 * N * N);
    rapid_tile t;
    int k;

    (void)state;
    for (k = 0; k < 2000; k++) {
        int64_t r = 2 + (int64_t)(test_uniform(&s) * (24.0 * N * N));
        double area;
        assert_int_equal(rapid_tile_get(N, r, &t, NULL), 0);
        area = (t.ramax - t.ramin) * (180 / M_PI) *
               (sin(t.decmax * M_PI / 180) - sin(t.decmin * M_PI / 180));
        near(area / want, t.ring == N || t.ring == 3 * N ? 1 - 1.0 / (8 * N) : 1.0,
             1e-9);
    }
    for (k = 0; k < 3; k++) { /* the caps, and one tile of each short ring */
        int64_t r = k == 0 ? 1 : rapid_tile_rtid(N, 10.0, k == 1 ? 41.81 : -41.81);
        double area;
        rapid_tile_get(N, r, &t, NULL);
        if (k)
            assert_int_equal(t.ring, k == 1 ? N : 3 * N);
        area = (t.ramax - t.ramin) * (180 / M_PI) *
               (sin(t.decmax * M_PI / 180) - sin(t.decmin * M_PI / 180));
        near(area / want, k == 0 ? 1.0 : 1 - 1.0 / (8 * N), 1e-9);
    }
}

static int contains(const int64_t *v, int n, int64_t x)
{
    int i;
    for (i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Neighbours are ascending, exclude the tile, are mutual, and every point
 * just outside a tile's edge lies in one of them. */
static void check_neighbors(int nside, int64_t r)
{
    int64_t nb[64], nb2[64];
    int n, i, k;
    rapid_tile t;

    n = rapid_tile_neighbors(nside, r, nb, NULL);
    assert_true(n >= 3 && n <= rapid_tile_max_neighbors(nside));
    for (i = 0; i < n; i++) {
        assert_true(nb[i] != r);
        if (i)
            assert_true(nb[i] > nb[i - 1]);
        k = rapid_tile_neighbors(nside, nb[i], nb2, NULL);
        if (!contains(nb2, k, r))
            fail_msg("nside %d: %lld lists %lld but not back", nside,
                     (long long)r, (long long)nb[i]);
    }
    rapid_tile_get(nside, r, &t, NULL);
    if (t.nrabins > 1) {
        double eps = 1e-7, f;
        for (f = 0.02; f < 1; f += 0.06) {
            double ra = t.ramin + f * (t.ramax - t.ramin);
            double dec = t.decmin + f * (t.decmax - t.decmin);
            int64_t out[4];
            out[0] = rapid_tile_rtid(nside, ra, t.decmax + eps);
            out[1] = rapid_tile_rtid(nside, ra, t.decmin - eps);
            out[2] = rapid_tile_rtid(nside, t.ramin - eps, dec);
            out[3] = rapid_tile_rtid(nside, t.ramax + eps, dec);
            for (k = 0; k < 4; k++)
                if (!contains(nb, n, out[k]))
                    fail_msg("nside %d rtid %lld: %lld across an edge is "
                             "not a neighbour", nside, (long long)r,
                             (long long)out[k]);
        }
    }
}

static void test_neighbors(void **state)
{
    uint64_t s = 5;
    int64_t r, nb[64];
    int k, n;

    (void)state;
    /* caps, polar rings, the ring boundaries, RA 0, the equator */
    for (r = 1; r <= 400; r++)
        check_neighbors(N, r);
    for (r = rapid_tile_count(N) - 400; r <= rapid_tile_count(N); r++)
        check_neighbors(N, r);
    for (k = 0; k < 20000; k++)
        check_neighbors(N, 1 + (int64_t)(test_uniform(&s) * rapid_tile_count(N)));
    for (r = 1; r <= rapid_tile_count(2); r++)
        check_neighbors(2, r);
    for (r = 1; r <= rapid_tile_count(1); r++)
        check_neighbors(1, r);
    /* equatorial tiles have 8 neighbours; the north cap touches ring 1 */
    n = rapid_tile_neighbors(N, rapid_tile_rtid(N, 30.0, 0.0), nb, NULL);
    assert_int_equal(n, 8);
    n = rapid_tile_neighbors(N, 1, nb, NULL);
    assert_int_equal(n, 8);
    assert_int_equal(nb[0], 2);
    assert_int_equal(nb[7], 9);
}

/* Tangent-plane offset (x east, y north, degrees) -> sky, about (ra0, dec0). */
static void deproject(double ra0, double dec0, double x, double y, double *ra,
                      double *dec)
{
    double d = M_PI / 180, X = tan(x * d), Y = tan(y * d);
    double s0 = sin(dec0 * d), c0 = cos(dec0 * d);
    double den = c0 - Y * s0;

    *ra = ra0 + atan2(X, den) / d;
    *dec = atan2(s0 + Y * c0, hypot(X, den)) / d;
}

/* A footprint's tiles: all tiles under any point of it, nothing far away. */
static void check_overlaps(double ra0, double dec0, double half, double rot)
{
    double ra[5], dec[5], c = cos(rot), s = sin(rot);
    double dx[4] = {-1, 1, 1, -1}, dy[4] = {-1, -1, 1, 1};
    int64_t *tiles = NULL;
    uint64_t st = 99;
    int n, k, i;

    ra[0] = ra0, dec[0] = dec0;
    for (k = 0; k < 4; k++)
        deproject(ra0, dec0, half * (c * dx[k] - s * dy[k]),
                  half * (s * dx[k] + c * dy[k]), &ra[k + 1], &dec[k + 1]);
    n = rapid_tile_overlaps(N, ra, dec, &tiles, NULL);
    assert_true(n > 0);
    for (i = 1; i < n; i++)
        assert_true(tiles[i] > tiles[i - 1]);
    /* points inside (bilinear interpolation of the corners, shrunk a hair) */
    for (k = 0; k < 5000; k++) {
        double u = 0.001 + 0.998 * test_uniform(&st), v = 0.001 + 0.998 * test_uniform(&st);
        double x = half * (2 * u - 1), y = half * (2 * v - 1), pr, pd;
        int64_t r;
        deproject(ra0, dec0, c * x - s * y, s * x + c * y, &pr, &pd);
        r = rapid_tile_rtid(N, pr, pd);
        if (!contains(tiles, n, r))
            fail_msg("footprint at (%g, %g): point in tile %lld not listed", ra0,
                     dec0, (long long)r);
    }
    /* nothing listed is far from the footprint: every tile centre is within
     * the footprint radius plus a tile diagonal */
    for (i = 0; i < n; i++) {
        rapid_tile t;
        double d;
        rapid_tile_get(N, tiles[i], &t, NULL);
        if (t.nrabins == 1)
            continue;
        d = acos(fmin(1, sin(dec0 * M_PI / 180) * sin(t.cdec * M_PI / 180) +
                             cos(dec0 * M_PI / 180) * cos(t.cdec * M_PI / 180) *
                                 cos((t.cra - ra0) * M_PI / 180))) * 180 / M_PI;
        assert_true(d < half * 1.4143 + 0.2);
    }
    free(tiles);
}

static void test_overlaps(void **state)
{
    int64_t *tiles = NULL;
    double ra[5] = {11.1, 11.0, 11.2, 11.2, 11.0};
    double dec[5] = {-43.8, -43.9, -43.9, -43.7, -43.7};
    rapid_err err = RAPID_ERR_INIT;
    int n;

    (void)state;
    check_overlaps(11.1, -43.8, 0.0625, 0.3);      /* a detector, rotated */
    check_overlaps(0.01, 10.0, 0.107, 1.0);        /* straddling RA 0 */
    check_overlaps(359.99, -10.0, 0.107, 2.0);
    check_overlaps(180.0, 41.81, 0.0625, 0.0);     /* across the polar/equatorial boundary */
    check_overlaps(45.0, 89.9, 0.0625, 0.7);       /* over the north cap */
    check_overlaps(200.0, -89.93, 0.0625, 0.2);    /* over the south cap */
    check_overlaps(30.0, 0.0, 0.0001, 0.0);        /* tiny */
    /* a tile's own corners overlap at least that tile */
    n = rapid_tile_overlaps(N, ra, dec, &tiles, &err);
    assert_true(n >= 4);
    assert_true(contains(tiles, n, 5321355));
    free(tiles);
    /* refused: corners on the far side of the sky */
    dec[2] = 60;
    ra[2] = 200;
    assert_int_equal(rapid_tile_overlaps(N, ra, dec, &tiles, &err), RAPID_E_ARG);
    assert_null(tiles);
    assert_non_null(strstr(err.msg, "corner 2"));
}

static int64_t query_count(sqlite3 *db, const char *sql, double a, double b,
                           double c, double d)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_double(st, 1, a);
    sqlite3_bind_double(st, 2, b);
    sqlite3_bind_double(st, 3, c);
    sqlite3_bind_double(st, 4, d);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The exported tables: complete, a valid R*Tree, same answers as a scan. */
static void test_export(void **state)
{
    const char *path = test_path("tiles16.db");
    rapid_err err = RAPID_ERR_INIT;
    sqlite3 *db = NULL;
    uint64_t s = 21;
    int k;

    (void)state;
    assert_int_equal(rapid_tile_export_sqlite(16, path, NULL, NULL, &err), 0);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(query_count(db, "SELECT count(*) FROM skytiles", 0, 0, 0, 0),
                     rapid_tile_count(16));
    assert_int_equal(query_count(db, "SELECT count(*) FROM vskytiles", 0, 0, 0, 0),
                     rapid_tile_count(16));
    assert_int_equal(query_count(db, "SELECT count(*) FROM decbins", 0, 0, 0, 0),
                     4 * 16 + 1);
    assert_int_equal(query_count(db, "SELECT sum(nrabins) FROM decbins", 0, 0, 0, 0),
                     rapid_tile_count(16));
    assert_int_equal(query_count(db, "SELECT rtreecheck('vskytiles') = 'ok'", 0, 0, 0, 0), 1);
    /* every tile row agrees with the library */
    assert_int_equal(query_count(db, "SELECT count(*) FROM skytiles s JOIN vskytiles v"
                                     " USING(rtid) WHERE v.ramin <= s.ramin AND"
                                     " v.ramax >= s.ramax AND v.decmin <= s.decmin"
                                     " AND v.decmax >= s.decmax", 0, 0, 0, 0),
                     rapid_tile_count(16));
    for (k = 0; k < 300; k++) {
        double ra = 360 * test_uniform(&s) - 5, dec = 180 * test_uniform(&s) - 90;
        double w = 3 * test_uniform(&s), h = 3 * test_uniform(&s);
        /* the R*Tree may round boxes outwards by a float ulp; use margins
         * well inside a tile so both queries must agree exactly */
        int64_t a = query_count(db, "SELECT count(*) FROM vskytiles WHERE ramax >= ?1"
                                    " AND ramin <= ?2 AND decmax >= ?3 AND decmin <= ?4",
                                ra, ra + w, dec, dec + h);
        int64_t b = query_count(db, "SELECT count(*) FROM skytiles WHERE ramax >= ?1"
                                    " AND ramin <= ?2 AND decmax >= ?3 AND decmin <= ?4",
                                ra, ra + w, dec, dec + h);
        assert_true(a >= b && a <= b + 2);
    }
    {   /* the point lookup of the published check, through the R*Tree */
        sqlite3_stmt *st = NULL;
        int64_t r = rapid_tile_rtid(16, 11.1, -43.8);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT rtid FROM vskytiles WHERE"
                                                " ramin <= 11.1 AND ramax > 11.1 AND"
                                                " decmin <= -43.8 AND decmax > -43.8",
                                            -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(st, 0), r);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    /* an existing file is never overwritten */
    assert_int_equal(rapid_tile_export_sqlite(16, path, NULL, NULL, &err), RAPID_E_IO);
    assert_non_null(strstr(err.msg, path));
    /* an unwritable place fails cleanly, leaving nothing */
    assert_int_equal(rapid_tile_export_sqlite(4, "/nonexistent-dir/t.db", NULL, NULL, &err),
                     RAPID_E_IO);
    /* named as the user gave it, not by its temporary file, with the why */
    if (strncmp(err.msg, "/nonexistent-dir/t.db: ", 23) != 0 ||
        strstr(err.msg, ".tmp") || !strstr(err.msg, "No such file or directory"))
        fail_msg("%s", err.msg);
    assert_int_not_equal(access("/nonexistent-dir/t.db", F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published),  cmocka_unit_test(test_caps),
        cmocka_unit_test(test_invalid),    cmocka_unit_test(test_ra_wrap),
        cmocka_unit_test(test_all_centres), cmocka_unit_test(test_points_inside),
        cmocka_unit_test(test_equal_area), cmocka_unit_test(test_neighbors),
        cmocka_unit_test(test_overlaps),   cmocka_unit_test(test_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
