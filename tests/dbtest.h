/* dbtest.h - what the database tests share: a fresh database per test on
 * either back end, and L2 images made with the library (headers, records
 * and files) carrying the L2 keywords (docs/database.md).
 *
 * PostgreSQL: RAPID_TEST_PG is the URL of a server where we may create
 * databases (scripts/pg-local.sh start prints one); every test gets its own
 * database, dropped afterwards.
 */
#ifndef RAPID_DBTEST_H
#define RAPID_DBTEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "rapid/db.h"
#include "rapid/filters.h"
#include "rapid/fits.h"
#include "rapid/ingest.h"
#include "rapid/md5.h"
#include "rapid/wcs.h"
#include "testutil.h"

typedef struct test_db {
    rapid_db *db;
    int pg;
    char url[1024];
    char name[64];  /* PostgreSQL database name */
} test_db;

static inline void test_pg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Run a statement on a connection of its own (no values: names are ours). */
static inline int test_pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = NULL;
    int ok = 0;

    if (PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, test_pg_quiet, NULL);
        r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    } else {
        fprintf(stderr, "%s: %s", url, PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* ... on the admin database of RAPID_TEST_PG. */
static inline int test_pg_admin(const char *sql)
{
    return test_pg_exec(getenv("RAPID_TEST_PG"), sql);
}

/* The admin URL with its database name replaced. */
static inline void test_pg_url(const char *name, char *out, size_t outsz)
{
    const char *admin = getenv("RAPID_TEST_PG");
    const char *host = strstr(admin, "://");
    const char *slash = strchr(host ? host + 3 : admin, '/');
    const char *query = strchr(admin, '?');
    size_t n = slash ? (size_t)(slash - admin)
                     : query ? (size_t)(query - admin) : strlen(admin);

    snprintf(out, outsz, "%.*s/%s%s", (int)n, admin, name, query ? query : "");
}

/* A new, initialised database; 0 on success. */
static inline int test_db_make(test_db *t, int pg)
{
    static int serial;
    rapid_err err = RAPID_ERR_INIT;
    char sql[160];

    memset(t, 0, sizeof *t);
    t->pg = pg;
    serial++;
    if (pg) {
        snprintf(t->name, sizeof t->name, "rapid_t%ld_%d", (long)getpid(),
                 serial);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->name);
        if (test_pg_admin(sql))
            return -1;
        test_pg_url(t->name, t->url, sizeof t->url);
    } else {
        snprintf(t->url, sizeof t->url, "sqlite:%s/db%d.sqlite",
                 test_tmpdir(), serial);
    }
    if (rapid_db_open(&t->db, t->url, RAPID_DB_CREATE, &err) ||
        rapid_db_init(t->db, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline void test_db_drop(test_db *t)
{
    char sql[160];

    rapid_db_close(t->db);
    t->db = NULL;
    if (t->pg && t->name[0]) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                 t->name);
        test_pg_admin(sql);
    }
}

/* cmocka setup: *state, which comes in as the back end to use (a pointer to
 * an int, nonzero for PostgreSQL: see TEST_DB), becomes a fresh test_db. */
static inline int test_db_setup(void **state)
{
    int pg = *state ? *(const int *)*state : 0;
    test_db *t = calloc(1, sizeof *t);

    if (!t || test_db_make(t, pg)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static inline int test_db_teardown(void **state)
{
    test_db *t = *state;

    test_db_drop(t);
    free(t);
    return 0;
}

/* A test f on a fresh database of the back end *use_pg names when the test
 * starts (so that main can run the same list on each back end). */
#define TEST_DB(f, use_pg)                                                   \
    cmocka_unit_test_prestate_setup_teardown(f, test_db_setup,               \
                                             test_db_teardown, use_pg)

/* Rows in a table, asserted to be readable. */
static inline int64_t test_db_count(rapid_db *db, const char *table)
{
    rapid_err err = RAPID_ERR_INIT;
    int64_t n = -1;

    assert_int_equal(rapid_db_count(db, table, &n, &err), 0);
    return n;
}

/* Back ends to run: SQLite, and PostgreSQL when RAPID_TEST_PG is set. */
static inline int test_backends(void)
{
    const char *pg = getenv("RAPID_TEST_PG");
    return pg && *pg ? 2 : 1;
}

/* ---------------------------------------------------- L2 images */

typedef struct test_l2 {
    double ra, dec;      /* pointing of the detector centre */
    double pa;           /* rotation, degrees */
    double mjd;
    const char *filter;  /* "H158" */
    int sca;
    int size;            /* pixels per side (the footprint's size) */
    double scale;        /* arcsec/pixel (0.11) */
} test_l2;

static inline void test_l2_init(test_l2 *p, double ra, double dec, double mjd,
                                const char *filter, int sca)
{
    p->ra = ra, p->dec = dec, p->pa = 30.0, p->mjd = mjd;
    p->filter = filter, p->sca = sca, p->size = RAPID_SCA_PIX;
    p->scale = RAPID_PIXSCALE;
}

/* The header of such an image: the L2 keywords (docs/database.md) and a 4th-order
 * TAN-SIP WCS with a small distortion. */
static inline int test_l2_header(const test_l2 *p, rapid_header *h)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_sip sip;
    char date[RAPID_DB_TIME_MAX];
    double crval[2] = {p->ra, p->dec}, crpix[2], cd[2][2];
    double s = p->scale / 3600.0, c = cos(p->pa * M_PI / 180),
           sn = sin(p->pa * M_PI / 180);
    int rc;

    crpix[0] = crpix[1] = (p->size + 1) / 2.0;
    cd[0][0] = -s * c, cd[0][1] = s * sn, cd[1][0] = s * sn, cd[1][1] = s * c;
    memset(&sip, 0, sizeof sip);
    sip.a_order = sip.b_order = 4;
    sip.a[2][0] = 2e-8, sip.a[0][2] = -1e-8, sip.a[1][1] = 5e-9;
    sip.b[0][2] = 1.5e-8, sip.b[1][1] = -3e-9, sip.a[3][0] = 1e-12;
    sip.b[0][4] = 2e-16;
    rapid_header_init(h);
    if ((rc = rapid_wcs_from_terms(&w, crval, crpix, cd, &sip, p->size,
                                   p->size, &err)) ||
        (rc = rapid_wcs_to_header(&w, h, &err))) {
        fprintf(stderr, "%s\n", err.msg);
        rapid_wcs_release(&w);
        return rc;
    }
    rapid_wcs_release(&w);
    rapid_time_format(rapid_time_from_mjd(p->mjd), date);
    rapid_header_set_str(h, "DATE-OBS", date, "UTC start of exposure");
    rapid_header_set_double(h, "MJD-OBS", p->mjd, NULL);
    rapid_header_set_str(h, "FILTER", p->filter, NULL);
    rapid_header_set_double(h, "EXPTIME", 140.0, "s");
    rapid_header_set_long(h, "SCA_NUM", p->sca, NULL);
    rapid_header_set_double(h, "RA_TARG", p->ra + 0.1, NULL);
    rapid_header_set_double(h, "DEC_TARG", p->dec > 0 ? p->dec - 0.1 : p->dec + 0.1,
                            NULL);
    rapid_header_set_double(h, "PA_OBSY", p->pa + 60, NULL);
    rapid_header_set_double(h, "PA_FPA", p->pa, NULL);
    rapid_header_set_double(h, "ZPTMAG", 26.3, NULL);
    rapid_header_set_double(h, "SKY_MEAN", 45.5, "DN");
    return 0;
}

/* A database record of such an image, with a checksum made from seed (no
 * file). */
static inline int test_l2_record(const test_l2 *p, const char *seed,
                                 rapid_l2file *rec)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;
    unsigned char d[16];
    rapid_md5 m;
    int rc;

    if ((rc = test_l2_header(p, &h)) != 0)
        return rc;
    rc = rapid_l2file_from_headers(&h, NULL, p->size, p->size, rec, &err);
    rapid_header_release(&h);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return rc;
    }
    rapid_md5_init(&m);
    rapid_md5_update(&m, seed, strlen(seed));
    rapid_md5_final(&m, d);
    rapid_md5_hex(d, rec->checksum);
    snprintf(rec->filename, sizeof rec->filename, "/data/%s.fits", seed);
    return 0;
}

/* The image as a file: header-only primary HDU and an nx = ny = p->size
 * float image "SCI" holding the keywords (in the primary header instead
 * when keys_in_primary), pixels level + a gradient. */
static inline int test_l2_file(const test_l2 *p, const char *path, float level,
                               int keys_in_primary)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_fits_out *out = NULL;
    int rc, i;

    if ((rc = test_l2_header(p, &h)) != 0)
        return rc;
    if ((rc = rapid_image_alloc(&img, p->size, p->size, level, &err)) != 0)
        goto cleanup;
    for (i = 0; i < p->size * p->size; i++)
        img.data[i] += (float)(i % 97);
    if (keys_in_primary) {
        /* The WCS stays with the pixels, the rest goes to the primary. */
        rapid_header prim = RAPID_HEADER_INIT;
        const char *const *k;
        char v[80];
        double d;
        for (k = rapid_l2_keywords; *k; k++) {
            if (rapid_header_get_str(&h, *k, v, sizeof v, NULL) == 0)
                rapid_header_set_str(&prim, *k, v, NULL);
            else if (rapid_header_get_double(&h, *k, &d, NULL) == 0)
                rapid_header_set_double(&prim, *k, d, NULL);
            rapid_header_delete(&h, *k);
        }
        rapid_header_copy(&img.hdr, &h);
        if ((rc = rapid_fits_create(&out, path, &err)) == 0 &&
            (rc = rapid_fits_set_primary_header(out, &prim, &err)) == 0 &&
            (rc = rapid_fits_append_image(out, &img, "SCI", &err)) == 0)
            rc = rapid_fits_commit(out, &err);
        else if (out)
            rapid_fits_abort(out);
        rapid_header_release(&prim);
    } else {
        rapid_header_copy(&img.hdr, &h);
        rc = rapid_fits_write_image(path, &img, "SCI", &err);
    }
cleanup:
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    rapid_image_release(&img);
    rapid_header_release(&h);
    return rc;
}

#endif
