/* test_db.c - the operations database on SQLite, and on PostgreSQL when
 * RAPID_TEST_PG names a server (every test runs on each back end). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include "db_schema_v1.h"
#include "dbtest.h"
#include "rapid/db.h"
#include "rapid/tile.h"
#include "testutil.h"

static int use_pg;

static rapid_db *DB(void **state)
{
    return ((test_db *)*state)->db;
}

/* A record at (ra, dec, mjd) in filter f on detector sca; seed makes the
 * checksum (different seed = different file). */
static void rec_at(rapid_l2file *r, double ra, double dec, double mjd,
                   const char *f, int sca, const char *seed)
{
    test_l2 p;

    test_l2_init(&p, ra, dec, mjd, f, sca);
    assert_int_equal(test_l2_record(&p, seed, r), 0);
}

static int64_t add(rapid_db *db, rapid_l2file *r, int want_outcome)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_db_outcome out = 0;
    int rc = rapid_db_add_l2file(db, r, &out, &err);

    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(out, want_outcome);
    return r->rid;
}

/* ------------------------------------------------------ raw access */

/* SQL on a connection of its own, past the library: 0, or -1 when the
 * database refuses it (quietly: the tests expect some refusals). */
static int raw_exec(int pg, const char *url, const char *sql)
{
    sqlite3 *c = NULL;
    int ok = 0;

    if (pg) {
        PGconn *pc = PQconnectdb(url);
        PGresult *r = NULL;
        PQsetNoticeProcessor(pc, test_pg_quiet, NULL);
        if (PQstatus(pc) == CONNECTION_OK) {
            r = PQexec(pc, sql);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
                 PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
        }
        PQfinish(pc);
    } else {
        ok = sqlite3_open(url + 7, &c) == SQLITE_OK &&
             sqlite3_exec(c, "PRAGMA foreign_keys=ON", NULL, NULL, NULL) ==
                 SQLITE_OK &&
             sqlite3_exec(c, sql, NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(c);
    }
    return ok ? 0 : -1;
}

/* Every row of a query, columns joined by '|' and rows by '\n' (NULL as
 * "NULL"), into out; asserted to succeed. */
static void raw_rows(int pg, const char *url, const char *sql, char *out,
                     size_t outsz)
{
    size_t k = 0;
    int i, j, n;

    out[0] = '\0';
    if (pg) {
        PGconn *pc = PQconnectdb(url);
        PGresult *r = PQexec(pc, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(pc));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        for (i = 0; i < PQntuples(r); i++)
            for (j = 0; j < PQnfields(r); j++)
                k += (size_t)snprintf(out + k, k < outsz ? outsz - k : 0,
                                      "%s%s", PQgetisnull(r, i, j)
                                                  ? "NULL" : PQgetvalue(r, i, j),
                                      j + 1 < PQnfields(r) ? "|" : "\n");
        PQclear(r);
        PQfinish(pc);
    } else {
        sqlite3 *c = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open(url + 7, &c), SQLITE_OK);
        if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK)
            fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(c));
        assert_non_null(st);
        n = sqlite3_column_count(st);
        while (sqlite3_step(st) == SQLITE_ROW)
            for (j = 0; j < n; j++) {
                const char *v = (const char *)sqlite3_column_text(st, j);
                k += (size_t)snprintf(out + k, k < outsz ? outsz - k : 0,
                                      "%s%s", v ? v : "NULL",
                                      j + 1 < n ? "|" : "\n");
            }
        sqlite3_finalize(st);
        sqlite3_close(c);
    }
    assert_true(k < outsz);
}

/* A new empty database (no schema) of the back end; name gets the
 * PostgreSQL database's name, to drop it with drop_empty. */
static void make_empty(int pg, const char *tag, char *url, size_t urlsz,
                       char name[64])
{
    char sql[128];

    if (pg) {
        snprintf(name, 64, "rapid_%s%ld", tag, (long)getpid());
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
        test_pg_admin(sql);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
        assert_int_equal(test_pg_admin(sql), 0);
        test_pg_url(name, url, urlsz);
    } else {
        name[0] = '\0';
        snprintf(url, urlsz, "sqlite:%s/%s.sqlite", test_tmpdir(), tag);
        remove(url + 7);
    }
}

static void drop_empty(int pg, const char *name)
{
    char sql[128];

    if (pg) {
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", name);
        assert_int_equal(test_pg_admin(sql), 0);
    }
}

/* ---------------------------------------------------------- schema */

static void test_init_and_seed(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    int64_t n = 0;
    int from = -1, v = 0;

    /* The fixture made it; again is a no-op that reports the version. */
    assert_int_equal(rapid_db_init(t->db, &from, &err), 0);
    assert_int_equal(from, RAPID_DB_SCHEMA_VERSION);
    assert_int_equal(rapid_db_schema_version(t->db, &v, &err), 0);
    assert_int_equal(v, RAPID_DB_SCHEMA_VERSION);
    assert_int_equal(rapid_db_check_schema(t->db, &err), 0);
    assert_int_equal(test_db_count(t->db, "filters"), 8);
    assert_int_equal(test_db_count(t->db, "scas"), 18);
    assert_int_equal(test_db_count(t->db, "pipelines"), 3);
    assert_int_equal(test_db_count(t->db, "schema_version"), 1);
    assert_string_equal(rapid_db_backend(t->db), use_pg ? "postgresql" : "sqlite");
    /* table names are checked, never spliced */
    assert_int_equal(rapid_db_count(t->db, "filters; DROP TABLE jobs", &n, &err),
                     RAPID_E_ARG);
    /* A second handle on the same database sees the same. */
    assert_int_equal(rapid_db_open(&db, t->url, 0, &err), 0);
    assert_int_equal(rapid_db_check_schema(db, &err), 0);
    rapid_db_close(db);
}

static void test_no_schema(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    char url[1200], name[64], sql[128];
    int v = -1;

    (void)state;
    if (use_pg) { /* a database without the schema */
        snprintf(name, sizeof name, "rapid_e%ld", (long)getpid());
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
        assert_int_equal(test_pg_admin(sql), 0);
        test_pg_url(name, url, sizeof url);
    } else {
        snprintf(url, sizeof url, "sqlite:%s", test_path("empty.sqlite"));
        assert_int_not_equal(rapid_db_open(&db, url, 0, &err), 0);
        assert_non_null(strstr(err.msg, "rapid db init"));
        assert_int_equal(rapid_db_open(&db, url, RAPID_DB_CREATE, &err), 0);
        rapid_db_close(db);
    }
    assert_int_equal(rapid_db_open(&db, url, 0, &err), 0);
    assert_int_equal(rapid_db_schema_version(db, &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rapid_db_check_schema(db, &err), RAPID_E_DB);
    assert_non_null(strstr(err.msg, "rapid db init"));
    rapid_db_close(db);
    if (use_pg) {
        snprintf(sql, sizeof sql, "DROP DATABASE %s", name);
        assert_int_equal(test_pg_admin(sql), 0);
    }
}

/* A database made by a newer rapid is left alone. */
static void test_schema_newer(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    sqlite3 *raw = NULL;
    int from = 0;

    if (t->pg) {
        assert_int_equal(test_pg_exec(t->url, "INSERT INTO schema_version(version)"
                                              " VALUES (99)"), 0);
    } else {
        assert_int_equal(sqlite3_open(t->url + 7, &raw), SQLITE_OK);
        assert_int_equal(sqlite3_exec(raw, "INSERT INTO schema_version(version)"
                                           " VALUES (99)", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(raw);
    }
    assert_int_equal(rapid_db_check_schema(t->db, &err), RAPID_E_DB);
    assert_non_null(strstr(err.msg, "newer"));
    assert_int_equal(rapid_db_init(t->db, &from, &err), RAPID_E_DB);
    assert_int_equal(from, 99);
    assert_non_null(strstr(err.msg, "newer"));
}

/* Inits at once on a new SQLite file: all of them succeed.  The children
 * wait on a pipe so that they start together; the race ("database is
 * locked" from the WAL pragma) showed about once in 25 pairs. */
static void test_inits_at_once(void **state)
{
    enum { ROUNDS = 60, KIDS = 3 };
    char path[700], url[720], side[720];
    int round, k, failed = 0;

    (void)state;
    if (use_pg)
        skip(); /* PostgreSQL inits queue on an advisory lock */
    for (round = 0; round < ROUNDS; round++) {
        pid_t kid[KIDS];
        int go[2], status = 0;

        snprintf(path, sizeof path, "%s", test_path("race.sqlite"));
        snprintf(url, sizeof url, "sqlite:%s", path);
        remove(path);
        snprintf(side, sizeof side, "%s-wal", path);
        remove(side);
        snprintf(side, sizeof side, "%s-shm", path);
        remove(side);
        assert_int_equal(pipe(go), 0);
        for (k = 0; k < KIDS; k++) {
            assert_true((kid[k] = fork()) >= 0);
            if (kid[k] == 0) {
                rapid_err err = RAPID_ERR_INIT;
                rapid_db *db = NULL;
                char c;
                int rc;

                close(go[1]);
                if (read(go[0], &c, 1) < 0)
                    _exit(3);
                rc = rapid_db_open(&db, url, RAPID_DB_CREATE, &err) ||
                     rapid_db_init(db, NULL, &err);
                if (rc)
                    fprintf(stderr, "round %d: %s\n", round, err.msg);
                rapid_db_close(db);
                _exit(rc ? 1 : 0);
            }
        }
        close(go[0]);
        close(go[1]); /* all of them go */
        for (k = 0; k < KIDS; k++) {
            assert_int_equal(waitpid(kid[k], &status, 0), kid[k]);
            failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
    }
    assert_int_equal(failed, 0);
}

static int side_file(const char *path, const char *suffix)
{
    char side[800];
    struct stat sb;

    snprintf(side, sizeof side, "%s%s", path, suffix);
    return stat(side, &sb) == 0;
}

/* Read through a read-only handle: the schema version, want l2files rows,
 * a write refused, and (no_files) no -wal, -shm or -journal made.  0 or
 * the number of the step that failed: it also runs in a child. */
static int readonly_check(const char *url, const char *path, int64_t want,
                          int no_files)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    int64_t n = -1, svid = 0;
    int v = 0, rc = 0;

    if (rapid_db_open(&db, url, RAPID_DB_READONLY, &err))
        rc = 1;
    else if (rapid_db_schema_version(db, &v, &err) ||
             v != RAPID_DB_SCHEMA_VERSION)
        rc = 2;
    else if (rapid_db_count(db, "l2files", &n, &err) || n != want)
        rc = 3;
    else if (path && no_files && (side_file(path, "-wal") ||
                                  side_file(path, "-shm")))
        rc = 4;
    else if (rapid_db_swversion(db, "0ff1ce", "x", &svid, &err) == 0)
        rc = 5;
    rapid_db_close(db);
    if (!rc && path && no_files &&
        (side_file(path, "-wal") || side_file(path, "-shm") ||
         side_file(path, "-journal")))
        rc = 6;
    if (rc)
        fprintf(stderr, "read-only step %d (%" PRId64 " rows): %s\n", rc, n,
                err.msg);
    return rc;
}

/* The same as another user (nobody) when we are root, so that file modes
 * count; as ourselves otherwise. */
static int readonly_check_as_other(const char *url, const char *path,
                                   int64_t want)
{
    pid_t pid = fork();
    int status = 0;

    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(90);
        _exit(readonly_check(url, path, want, 1));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

/* Read-only commands on a database the user may only read: they work
 * and create no file, in a writable directory or a read-only one. */
static void test_readonly(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    rapid_l2file a;
    char d[64] = "/tmp/rapid-ro-XXXXXX", path[128], url[160], cmd[160];

    if (t->pg) { /* a read-only session: reads work, writes are refused */
        rec_at(&a, 10, 10, 62000, "H158", 1, "ro1");
        add(t->db, &a, RAPID_DB_ADDED);
        assert_int_equal(readonly_check(t->url, NULL, 1, 0), 0);
        return;
    }
    /* in /tmp: a directory that another user can reach */
    assert_non_null(mkdtemp(d));
    assert_int_equal(chmod(d, 0755), 0);
    snprintf(path, sizeof path, "%s/ops ?#%%41.db", d); /* URI escapes */
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_int_equal(rapid_db_open(&db, url, RAPID_DB_CREATE, &err), 0);
    assert_int_equal(rapid_db_init(db, NULL, &err), 0);
    rec_at(&a, 10, 10, 62000, "H158", 1, "ro1");
    add(db, &a, RAPID_DB_ADDED);
    rapid_db_close(db);
    assert_false(side_file(path, "-wal"));
    assert_int_equal(chmod(path, 0644), 0);
    /* ours, opened read-only */
    assert_int_equal(readonly_check(url, path, 1, 1), 0);
    /* while a writer works, its last commit is read (from the -wal) */
    assert_int_equal(rapid_db_open(&db, url, 0, &err), 0);
    rec_at(&a, 10, 10, 62001, "H158", 1, "ro2");
    add(db, &a, RAPID_DB_ADDED);
    assert_true(side_file(path, "-wal"));
    assert_int_equal(readonly_check(url, path, 2, 0), 0);
    rapid_db_close(db);
    assert_false(side_file(path, "-wal"));
    /* another user's, in a directory we may write */
    assert_int_equal(chmod(d, 0777), 0);
    assert_int_equal(readonly_check_as_other(url, path, 2), 0);
    /* ... and in one we may not */
    assert_int_equal(chmod(d, 0555), 0);
    assert_int_equal(chmod(path, 0444), 0);
    assert_int_equal(readonly_check_as_other(url, path, 2), 0);
    assert_int_equal(chmod(d, 0755), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------- upgrade from version 1 */

#define V1_L2(expid, sca, version, vbest, name)                              \
    "INSERT INTO l2files(expid, sca, fid, field, hp6, hp9, dateobs, mjdobs," \
    " exptime, filename, checksum, vbest, version, naxis1, naxis2, ctype1,"  \
    " ctype2, crval1, crval2, crpix1, crpix2, cd1_1, cd1_2, cd2_1, cd2_2,"   \
    " ra, dec, dec_targ) VALUES(" expid ", " sca ", 2, 100, 1, 2,"           \
    " '2029-05-15T00:00:00.000000', 62271.0, 140, " name ","                 \
    " '0123456789abcdef0123456789abcdef', " vbest ", " version ", 4088,"     \
    " 4088, 'RA---TAN', 'DEC--TAN', 10, 20, 2044.5, 2044.5, -3e-5, 0, 0,"    \
    " 3e-5, 10, 20, 19.9);"
#define V1_META(rid)                                                         \
    "INSERT INTO l2filemeta(rid, ra0, dec0, ra1, dec1, x, y, z, radius, hp6," \
    " hp9, fid, sca, mjdobs) VALUES(" rid ", 10, 20, 10.1, 20.1, 0.9, 0.2,"  \
    " 0.3, 0.09, 1, 2, 2, 1, 62271.0);"

/* Rows in every table of version 1, as its library wrote them, and a few
 * it could hold but version 2 treats otherwise: two best versions of one
 * key (l2files 4 and 5; psfs 1 and the locked 2), names with '%' and (on
 * SQLite, which took any bytes) with bytes that are not UTF-8. */
static void fill_v1(int pg, const char *url)
{
    static const char rows[] =
        "INSERT INTO swversions(gitcommit, version) VALUES('abc123', '0.1.0');"
        "INSERT INTO exposures(dateobs, mjdobs, field, hp6, hp9, fid, exptime,"
        " ra_targ, dec_targ) VALUES('2029-05-15T00:00:00.000000', 62271.0,"
        " 100, 1, 2, 2, 140, 10.1, 19.9), ('2029-05-16T00:00:00.000000',"
        " 62272.0, 100, 1, 2, 2, 140, 10.1, 19.9);"
        V1_L2("1", "1", "1", "0", "'/d/a.fits'")
        V1_L2("1", "1", "2", "1", "'/d/100%.fits'")
        "@3@"
        V1_L2("2", "2", "1", "1", "'/d/c.fits'")
        V1_L2("2", "2", "2", "1", "'/d/c2.fits'")
        V1_META("1") V1_META("2") V1_META("3") V1_META("4") V1_META("5")
        "INSERT INTO psfs(fid, sca, version, vbest, filename, checksum, status)"
        " VALUES(2, 1, 1, 1, '/p/a.fits', '0123456789abcdef0123456789abcdef',"
        " 1), (2, 1, 2, 2, '/p/b.fits', '1123456789abcdef0123456789abcdef', 1);"
        "INSERT INTO refimages(field, hp6, hp9, fid, ppid, version, vbest,"
        " filename, checksum, status, svid) VALUES(100, 1, 2, 2, 15, 1, 1,"
        " '/r/a%b.fits', '0123456789abcdef0123456789abcdef', 1, 1);"
        "INSERT INTO refimcatalogs(rfid, ppid, cattype, filename) VALUES(1, 15,"
        " 1, '/r/cat.fits');"
        "INSERT INTO refimimages(rfid, rid) VALUES(1, 1), (1, 3);"
        "INSERT INTO refimmeta(rfid, nframes, mjdobsmin, npixsat) VALUES(1, 2,"
        " 62271.0, 5000000000);"
        "INSERT INTO diffimages(rid, ppid, version, vbest, expid, sca, fid,"
        " field, dec0, filename, status) VALUES(2, 15, 1, 0, 1, 1, 2, 100, 20,"
        " '/x/d1.fits', 1), (2, 15, 2, 1, 1, 1, 2, 100, 20, '/x/d2.fits', 1);"
        "INSERT INTO diffimmeta(pid, nmatches) VALUES(2, 40);"
        "INSERT INTO jobs(ppid, rid, procdate, machine, status, exitcode)"
        " VALUES(15, 2, 20290515, 'n1', 1, 0), (15, 3, 20290515, NULL, 0,"
        " NULL);";
    /* l2files 3: on SQLite the bytes "/d/\xff\xfe.fits" as text */
    const char *bad = pg ? V1_L2("2", "1", "1", "1", "'/d/b.fits'")
                         : V1_L2("2", "1", "1", "1",
                                 "CAST(X'2F642FFFFE2E66697473' AS TEXT)");
    char *ddl = test_v1_expand(test_schema_v1, pg);
    char *ver = test_v1_expand(test_schema_v1_version, pg);
    char seed[2048], all[8192];
    const char *at = strstr(rows, "@3@");
    int i, k = 0;

    assert_non_null(ddl);
    assert_non_null(ver);
    assert_int_equal(raw_exec(pg, url, ddl), 0);
    if (!pg)
        assert_int_equal(raw_exec(pg, url, test_schema_v1_sqlite), 0);
    assert_int_equal(raw_exec(pg, url, ver), 0);
    /* version 1's fixed rows */
    for (i = 1; i <= RAPID_NFILTERS; i++)
        k += snprintf(seed + k, sizeof seed - (size_t)k,
                      "INSERT INTO filters VALUES(%d, '%s');", i,
                      rapid_filter_by_fid(i)->name);
    for (i = 1; i <= RAPID_NSCA; i++)
        k += snprintf(seed + k, sizeof seed - (size_t)k,
                      "INSERT INTO scas VALUES(%d);", i);
    snprintf(seed + k, sizeof seed - (size_t)k,
             "INSERT INTO pipelines VALUES(12, 1, 'refimage'), (15, 2,"
             " 'science'), (17, 3, 'postproc');");
    assert_int_equal(raw_exec(pg, url, seed), 0);
    snprintf(all, sizeof all, "%.*s%s%s", (int)(at - rows), rows, bad, at + 3);
    assert_int_equal(raw_exec(pg, url, all), 0);
    if (!pg)
        assert_int_equal(raw_exec(pg, url, "INSERT INTO l2filemeta_box"
                                           " VALUES(1, 0, 1, 0, 1, 0, 1), (2, 0,"
                                           " 1, 0, 1, 0, 1), (3, 0, 1, 0, 1, 0,"
                                           " 1), (4, 0, 1, 0, 1, 0, 1), (5, 0,"
                                           " 1, 0, 1, 0, 1)"), 0);
    free(ddl);
    free(ver);
}

/* Per table, the columns an upgrade must leave exactly as they were (all
 * but vbest where two were best, file names, and the new method). */
static const char *const kept[] = {
    "SELECT * FROM filters ORDER BY 1",
    "SELECT * FROM scas ORDER BY 1",
    "SELECT * FROM pipelines ORDER BY 1",
    "SELECT * FROM swversions ORDER BY 1",
    "SELECT * FROM exposures ORDER BY 1",
    "SELECT rid, expid, sca, fid, field, hp6, hp9, dateobs, mjdobs, exptime,"
    " checksum, status, version, naxis1, ctype1, crval1, crpix2, cd1_1, ra,"
    " dec, dec_targ, created FROM l2files ORDER BY 1",
    "SELECT * FROM l2filemeta ORDER BY 1",
    "SELECT psfid, fid, sca, version, checksum, status, created FROM psfs"
    " ORDER BY 1",
    "SELECT rfid, field, hp6, hp9, fid, ppid, version, vbest, checksum,"
    " status, infobits, svid, created FROM refimages ORDER BY 1",
    "SELECT rfcatid, rfid, ppid, cattype, checksum, status, created FROM"
    " refimcatalogs ORDER BY 1",
    "SELECT * FROM refimimages ORDER BY 1, 2",
    "SELECT * FROM refimmeta ORDER BY 1",
    "SELECT pid, rid, ppid, version, vbest, rfid, expid, sca, fid, field,"
    " dec0, infobitssci, status, svid, created FROM diffimages ORDER BY 1",
    "SELECT pid, nsexcatsources, scalefacref, nmatches FROM diffimmeta"
    " ORDER BY 1",
    "SELECT * FROM jobs ORDER BY 1",
};
#define NKEPT (int)(sizeof kept / sizeof kept[0])
#define DUMP 65536

static void dump_kept(int pg, const char *url, char *out)
{
    size_t k = 0;
    int i;

    for (i = 0; i < NKEPT; i++) {
        raw_rows(pg, url, kept[i], out + k, DUMP - k);
        k += strlen(out + k);
        k += (size_t)snprintf(out + k, DUMP - k, "--\n");
    }
}

/* The schema as the database's catalog describes it: tables, columns,
 * constraints and indexes. */
static void dump_schema(int pg, const char *url, char *out)
{
    static const char sq[] =
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY 1, 2";
    static const char *const pgq[] = {
        "SELECT table_name, ordinal_position, column_name, data_type,"
        " is_nullable, column_default, is_identity FROM"
        " information_schema.columns WHERE table_schema = current_schema()"
        " ORDER BY 1, 2",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE connamespace ="
        " current_schema()::regnamespace ORDER BY 1, 2",
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE"
        " schemaname = current_schema() ORDER BY 1, 2"};
    size_t k = 0;
    int i;

    if (!pg) {
        raw_rows(pg, url, sq, out, DUMP);
        return;
    }
    for (i = 0; i < 3; i++) {
        raw_rows(pg, url, pgq[i], out + k, DUMP - k);
        k += strlen(out + k);
    }
}

static void raw_is(int pg, const char *url, const char *sql, const char *want)
{
    char got[4096];

    raw_rows(pg, url, sql, got, sizeof got);
    assert_string_equal(got, want);
}

/* A real version-1 database, filled, upgraded by `rapid db init`: every row
 * survives, the new constraints bite, the library works on it, and its
 * schema is that of a new database. */
static void test_upgrade_from_v1(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    rapid_l2file got, r;
    rapid_refimage ref;
    rapid_diffimage d;
    char url[1200], name[64];
    char *before = malloc(DUMP), *after = malloc(DUMP);
    int from = -1, v = 0, vb = -1, found = 0;

    assert_non_null(before);
    assert_non_null(after);
    make_empty(t->pg, "v1", url, sizeof url, name);
    fill_v1(t->pg, url);
    dump_kept(t->pg, url, before);
    assert_int_equal(rapid_db_open(&db, url, 0, &err), 0);
    assert_int_equal(rapid_db_schema_version(db, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(rapid_db_check_schema(db, &err), RAPID_E_DB);
    assert_non_null(strstr(err.msg, "rapid db init"));

    /* A row version 2 refuses: the upgrade fails whole, naming why. */
    assert_int_equal(raw_exec(t->pg, url, "UPDATE jobs SET status = 7 WHERE"
                                          " jid = 2"), 0);
    assert_int_not_equal(rapid_db_init(db, &from, &err), 0);
    assert_int_equal(from, 1);
    assert_non_null(strstr(err.msg, "jobs_status"));
    assert_non_null(strstr(err.msg, "version 1 to 2"));
    raw_is(t->pg, url, "SELECT version FROM schema_version", "1\n");
    assert_int_equal(raw_exec(t->pg, url, "UPDATE jobs SET status = 0 WHERE"
                                          " jid = 2"), 0);
    dump_kept(t->pg, url, after);
    assert_string_equal(after, before);

    /* The upgrade. */
    assert_int_equal(rapid_db_init(db, &from, &err), 0);
    assert_int_equal(from, 1);
    assert_int_equal(rapid_db_check_schema(db, &err), 0);
    raw_is(t->pg, url, "SELECT version FROM schema_version ORDER BY 1",
           "1\n2\n3\n");
    dump_kept(t->pg, url, after);
    assert_string_equal(after, before);
    /* one best per key: the locked one, else the highest version */
    raw_is(t->pg, url, "SELECT rid, vbest FROM l2files ORDER BY 1",
           "1|0\n2|1\n3|1\n4|0\n5|1\n");
    raw_is(t->pg, url, "SELECT psfid, vbest FROM psfs ORDER BY 1", "1|0\n2|2\n");
    /* difference images of version 1 are ZOGY's */
    raw_is(t->pg, url, "SELECT pid, method FROM diffimages ORDER BY 1",
           "1|1\n2|1\n");
    raw_is(t->pg, url, "SELECT pid, method FROM diffimmeta", "2|1\n");
    /* names in the stored form, and as they were through the library */
    raw_is(t->pg, url, "SELECT filename FROM l2files ORDER BY rid",
           t->pg ? "/d/a.fits\n/d/100%25.fits\n/d/b.fits\n/d/c.fits\n"
                   "/d/c2.fits\n"
                 : "/d/a.fits\n/d/100%25.fits\n/d/%FF%FE.fits\n/d/c.fits\n"
                   "/d/c2.fits\n");
    raw_is(t->pg, url, "SELECT filename FROM refimages", "/r/a%25b.fits\n");
    assert_int_equal(rapid_db_get_l2file(db, 2, &got, &err), 0);
    assert_string_equal(got.filename, "/d/100%.fits");
    assert_int_equal(rapid_db_get_l2file(db, 3, &got, &err), 0);
    assert_string_equal(got.filename, t->pg ? "/d/b.fits" : "/d/\xff\xfe.fits");
    assert_int_equal(rapid_db_best_refimage(db, 100, 2, &ref, &found, &err), 0);
    assert_int_equal(found, 1);
    assert_string_equal(ref.filename, "/r/a%b.fits");

    /* The constraints bite. */
    assert_int_equal(raw_exec(t->pg, url, "UPDATE l2files SET vbest = 2"
                                          " WHERE rid = 2"), 0); /* allowed */
    assert_int_equal(raw_exec(t->pg, url, "UPDATE l2files SET vbest = 1"
                                          " WHERE rid = 1"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE l2files SET vbest = 3"
                                          " WHERE rid = 2"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE psfs SET version = 0"
                                          " WHERE psfid = 1"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE refimages SET status = 2"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE l2filemeta SET dec3 = 90.5"
                                          " WHERE rid = 1"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE exposures SET dec_targ = -91"
                                          " WHERE expid = 1"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE refimcatalogs SET"
                                          " cattype = 3"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE diffimages SET method = 4"
                                          " WHERE pid = 1"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE diffimmeta SET method = 2"),
                     -1); /* no such (pid, method) */
    assert_int_equal(raw_exec(t->pg, url, "UPDATE jobs SET status = 3"), -1);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE l2files SET vbest = 1"
                                          " WHERE rid = 2"), 0);

    /* The library on the upgraded database: new keys after the old ones,
     * the vbest rules, one key per difference method. */
    rec_at(&r, 150.1, 2.2, 62300.25, "H158", 7, "after-upgrade");
    add(db, &r, RAPID_DB_ADDED);
    assert_true(r.rid > 5);
    assert_int_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_L2FILE, 4, 1, &err), 0);
    raw_is(t->pg, url, "SELECT rid, vbest FROM l2files WHERE expid = 2"
                       " ORDER BY 1", "3|1\n4|1\n5|0\n");
    memset(&d, 0, sizeof d);
    d.rid = 2, d.ppid = RAPID_PPID_SCIENCE, d.method = RAPID_DIFF_KERNELFIT;
    strcpy(d.filename, "/x/k1.fits");
    assert_int_equal(rapid_db_add_diffimage(db, &d, NULL, &err), 0);
    assert_int_equal(d.version, 1);
    assert_true(d.pid > 2);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_DIFFIMAGE, d.pid, &vb,
                                      &err), 0);
    assert_int_equal(vb, 1);
    d.method = RAPID_DIFF_ZOGY;
    assert_int_equal(rapid_db_add_diffimage(db, &d, NULL, &err), 0);
    assert_int_equal(d.version, 3);
    raw_is(t->pg, url, "SELECT pid, method, version, vbest FROM diffimages"
                       " ORDER BY 1", "1|1|1|0\n2|1|2|1\n3|2|1|1\n4|1|3|0\n");
    rapid_db_close(db);

    /* The same schema as a new database's (the fixture's). */
    dump_schema(t->pg, url, after);
    dump_schema(t->pg, t->url, before);
    assert_string_equal(after, before);
    free(before);
    free(after);
    drop_empty(t->pg, name);
}

/* A version-2 database upgraded: its rows kept, reference jobs one per
 * tile and filter by the schema too, the schema that of a new database. */
static void test_upgrade_from_v2(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    rapid_l2file a;
    char url[1200], name[64], want[160];
    char *before = malloc(DUMP), *after = malloc(DUMP);
    int64_t jid = 0, ref = 0;
    int from = -1;

    assert_non_null(before);
    assert_non_null(after);
    make_empty(t->pg, "v2", url, sizeof url, name);
    assert_int_equal(rapid_db_open(&db, url, RAPID_DB_CREATE, &err), 0);
    assert_int_equal(rapid_db_init(db, NULL, &err), 0);
    rec_at(&a, 70, 20, 62006, "H158", 3, "v2");
    add(db, &a, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_start_job(db, 15, a.rid, 20280907, NULL, &jid, &err), 0);
    rapid_db_close(db);
    /* what version 2 was */
    assert_int_equal(raw_exec(t->pg, url, "DROP INDEX jobs_refjob"), 0);
    assert_int_equal(raw_exec(t->pg, url, "UPDATE schema_version SET version = 2"), 0);
    assert_int_equal(rapid_db_open(&db, url, 0, &err), 0);
    assert_int_equal(rapid_db_check_schema(db, &err), RAPID_E_DB);
    assert_int_equal(rapid_db_init(db, &from, &err), 0);
    assert_int_equal(from, 2);
    assert_int_equal(rapid_db_check_schema(db, &err), 0);
    raw_is(t->pg, url, "SELECT version FROM schema_version ORDER BY 1", "2\n3\n");
    snprintf(want, sizeof want, "%lld|15|%lld\n", (long long)jid, (long long)a.rid);
    raw_is(t->pg, url, "SELECT jid, ppid, rid FROM jobs", want);
    assert_int_equal(rapid_db_start_refjob(db, a.field, 2, 20280907, NULL, &ref, &err), 0);
    assert_true(ref > jid);
    snprintf(want, sizeof want, "INSERT INTO jobs(ppid, field, fid, procdate)"
             " VALUES(12, %lld, 2, 20280907)", (long long)a.field);
    assert_int_equal(raw_exec(t->pg, url, want), -1);
    rapid_db_close(db);
    dump_schema(t->pg, url, after);
    dump_schema(t->pg, t->url, before);
    assert_string_equal(after, before);
    free(before);
    free(after);
    drop_empty(t->pg, name);
}

static void test_bad_urls(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;

    (void)state;
    assert_int_equal(rapid_db_open(&db, "mysql://x/y", 0, &err), RAPID_E_ARG);
    assert_null(db);
    assert_non_null(strstr(err.msg, "mysql://x/y"));
    /* unreachable: one line naming the server, and no password */
    assert_int_equal(rapid_db_open(&db, "postgresql://u:secret@127.0.0.1:1/x",
                                   0, &err), RAPID_E_DB);
    assert_null(db);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    assert_non_null(strstr(err.msg, "u:***@"));
    assert_null(strstr(err.msg, "secret"));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(rapid_db_open(&db, "sqlite:/nonexistent/dir/x.db", 0, &err),
                     RAPID_E_DB);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.db"));
}

/* URLs refused before anything is opened or created: no file named
 * "r.db?mode=ro", no port 0 or 70000, no ambiguous sqlite://relative. */
static void test_url_checks(void **state)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"sqlite:r.db?mode=ro", "query options"},
        {"sqlite:///tmp/r.db?cache=shared&mode=ro", "query options"},
        {"sqlite://tmp/x.db", "absolute path"},
        {"sqlite:", "no file name"},
        {"postgresql://h:0/x", "port"},
        {"postgresql://h:65536/x", "port"},
        {"postgresql://u:pw@h:99999/x", "port"},
        {"postgres://h:12ab/x", "port"},
        {"postgresql://[::1]:70000/x", "port"},
        {"postgresql://a:5432,b:0/x", "port"},
        {"mysql://x/y", "not a database URL"},
    };
    static const char *const good[] = {
        "sqlite:r.db", "sqlite:///tmp/r.db", "sqlite:what?.db",
        "sqlite:a ?#%41.db", "sqlite:x?=1.db", "postgresql://h/x",
        "postgresql://h:1/x", "postgresql://u:p@h:65535/x?sslmode=disable",
        "postgresql://[::1]:5432/x", "postgresql://a:5432,b/x",
        "postgres://h:/x"};
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    char path[700];
    struct stat sb;
    size_t k;

    (void)state;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        if (rapid_db_check_url(bad[k].url, &err) != RAPID_E_ARG ||
            !strstr(err.msg, bad[k].why))
            fail_msg("%s: not refused for %s (%s)", bad[k].url, bad[k].why,
                     err.msg);
        assert_int_equal(rapid_db_open(&db, bad[k].url, RAPID_DB_CREATE,
                                       &err), RAPID_E_ARG);
        assert_null(db);
    }
    assert_null(strstr(err.msg, "pw@"));
    for (k = 0; k < sizeof good / sizeof good[0]; k++)
        if (rapid_db_check_url(good[k], &err) != 0)
            fail_msg("%s refused: %s", good[k], err.msg);
    /* nothing was created for the refused '?' */
    snprintf(path, sizeof path, "%s/q.db?mode=ro", test_tmpdir());
    {
        char url[720];
        snprintf(url, sizeof url, "sqlite:%s", path);
        assert_int_equal(rapid_db_open(&db, url, RAPID_DB_CREATE, &err),
                         RAPID_E_ARG);
    }
    assert_int_not_equal(stat(path, &sb), 0);
}

static void test_times(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    char s[RAPID_DB_TIME_MAX];
    double t = 0;

    (void)state;
    assert_int_equal(rapid_time_parse("2000-01-01T12:00:00", &t, &err), 0);
    assert_true(fabs(rapid_time_to_mjd(t) - 51544.5) < 1e-9);
    assert_int_equal(rapid_time_parse("2028-09-07 01:02:03.1234565Z", &t, &err), 0);
    rapid_time_format(t, s);
    assert_string_equal(s, "2028-09-07T01:02:03.123457");
    assert_int_equal(rapid_time_parse("2024-02-29", &t, &err), 0);
    rapid_time_format(t, s);
    assert_string_equal(s, "2024-02-29T00:00:00.000000");
    assert_int_equal(rapid_time_parse("2023-02-29", &t, &err), RAPID_E_ARG);
    assert_int_equal(rapid_time_parse("2023-13-01", &t, &err), RAPID_E_ARG);
    assert_int_equal(rapid_time_parse("2023-01-01T25:00", &t, &err), RAPID_E_ARG);
    assert_int_equal(rapid_time_parse("yesterday", &t, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "yesterday"));
    rapid_time_format(rapid_time_from_mjd(40587.0), s);
    assert_string_equal(s, "1970-01-01T00:00:00.000000");
    rapid_time_format(-0.5, s);
    assert_string_equal(s, "1969-12-31T23:59:59.500000");
}

/* -------------------------------------------------------- L2 files */

static void test_l2_versions(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file a, b, got;
    rapid_wcs w1 = RAPID_WCS_INIT, w2 = RAPID_WCS_INIT;
    double x[2] = {0, 4000}, y[2] = {0, 100}, ra1[2], de1[2], ra2[2], de2[2];
    int64_t rid;
    int i;

    rec_at(&a, 150.1, 2.2, 62000.25, "H158", 7, "v1");
    rid = add(db, &a, RAPID_DB_ADDED);
    assert_true(rid > 0);
    assert_int_equal(a.version, 1);
    assert_int_equal(a.vbest, 1);
    assert_int_equal(a.status, 1);
    /* the same file again: nothing changes, same rid */
    rec_at(&b, 150.1, 2.2, 62000.25, "H158", 7, "v1");
    assert_int_equal(add(db, &b, RAPID_DB_UNCHANGED), rid);
    assert_int_equal(test_db_count(db, "l2files"), 1);
    assert_int_equal(test_db_count(db, "exposures"), 1);
    /* what was stored comes back */
    assert_int_equal(rapid_db_get_l2file(db, rid, &got, &err), 0);
    assert_string_equal(got.dateobs, a.dateobs);
    assert_string_equal(got.checksum, a.checksum);
    assert_int_equal(got.fid, rapid_filter_by_name("H158")->fid);
    assert_int_equal(got.sca, 7);
    assert_int_equal(got.a_order, 4);
    assert_true(got.a[2][0] == a.a[2][0] && got.b[0][4] == a.b[0][4]);
    assert_int_equal(got.field, rapid_tile_rtid(512, got.ra, got.dec));
    assert_true(got.hp9 >= 0 && got.hp9 < 12L * 512 * 512);
    assert_int_equal(got.hp6, got.hp9 >> 6); /* NESTED: parent pixel */
    for (i = 0; i < 5; i++)
        assert_true(got.fp_ra[i] == a.fp_ra[i] && got.fp_dec[i] == a.fp_dec[i]);
    assert_true(fabs(got.radius - 0.0883) < 0.002); /* half a diagonal */
    /* the stored WCS maps pixels as the original */
    assert_int_equal(rapid_l2file_wcs(&a, &w1, &err), 0);
    assert_int_equal(rapid_l2file_wcs(&got, &w2, &err), 0);
    assert_int_equal(rapid_wcs_pix2sky(&w1, 2, x, y, ra1, de1, &err), 0);
    assert_int_equal(rapid_wcs_pix2sky(&w2, 2, x, y, ra2, de2, &err), 0);
    for (i = 0; i < 2; i++)
        assert_true(rapid_sky_distance(ra1[i], de1[i], ra2[i], de2[i]) < 1e-10);
    rapid_wcs_release(&w1);
    rapid_wcs_release(&w2);
    /* a changed file: version 2 becomes the best */
    rec_at(&b, 150.1, 2.2, 62000.25, "H158", 7, "v2");
    add(db, &b, RAPID_DB_NEW_VERSION);
    assert_int_equal(b.version, 2);
    assert_int_equal(b.vbest, 1);
    assert_int_equal(rapid_db_get_l2file(db, rid, &got, &err), 0);
    assert_int_equal(got.vbest, 0);
    assert_int_equal(test_db_count(db, "l2files"), 2);
    assert_int_equal(test_db_count(db, "l2filemeta"), 2);
    assert_int_equal(test_db_count(db, "exposures"), 1);
    /* lock version 1 by hand: a version 3 stays 0 */
    assert_int_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_L2FILE, rid, 2, &err), 0);
    assert_int_equal(rapid_db_get_l2file(db, b.rid, &got, &err), 0);
    assert_int_equal(got.vbest, 0);
    rec_at(&b, 150.1, 2.2, 62000.25, "H158", 7, "v3");
    add(db, &b, RAPID_DB_NEW_VERSION);
    assert_int_equal(b.version, 3);
    assert_int_equal(b.vbest, 0);
    assert_int_equal(rapid_db_get_l2file(db, rid, &got, &err), 0);
    assert_int_equal(got.vbest, 2);
    /* no such row */
    assert_int_equal(rapid_db_get_l2file(db, 999999, &got, &err), RAPID_E_NOENT);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_L2FILE, 999999, NULL,
                                      &err), RAPID_E_NOENT);
}

static void test_l2_conflicts(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_db_outcome out;
    rapid_l2file a, b;

    rec_at(&a, 10, -40, 62001.0, "H158", 1, "x1");
    add(db, &a, RAPID_DB_ADDED);
    /* another detector of the same exposure: same expid */
    rec_at(&b, 10.2, -40, 62001.0, "H158", 2, "x2");
    add(db, &b, RAPID_DB_ADDED);
    assert_int_equal(b.expid, a.expid);
    /* the same exposure time in another filter is refused, writes nothing */
    rec_at(&b, 10.2, -40, 62001.0, "F184", 3, "x3");
    assert_int_equal(rapid_db_add_l2file(db, &b, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "F184"));
    assert_non_null(strstr(err.msg, "/data/x3.fits"));
    assert_int_equal(test_db_count(db, "l2files"), 2);
    /* bad records */
    rec_at(&b, 10.2, -40, 62002.0, "H158", 3, "x4");
    b.sca = 19;
    assert_int_equal(rapid_db_add_l2file(db, &b, &out, &err), RAPID_E_ARG);
    rec_at(&b, 10.2, -40, 62002.0, "H158", 3, "x4");
    strcpy(b.checksum, "not-a-checksum");
    assert_int_equal(rapid_db_add_l2file(db, &b, &out, &err), RAPID_E_ARG);
    assert_int_equal(test_db_count(db, "l2files"), 2);
    assert_int_equal(test_db_count(db, "exposures"), 1);
}

/* A boresight beyond the pole is refused before it reaches the database
 * (its HEALPix index would end the process); a value that only the schema
 * refuses (a difference image's footprint beyond the pole) is the
 * caller's error too, like any bad argument, and writes nothing. */
static void test_schema_refuses(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_db_outcome out;
    rapid_diffimage d;
    rapid_l2file a;
    int i;

    rec_at(&a, 10, 80, 62001.0, "H158", 1, "pole");
    a.dec_targ = 95;
    assert_int_equal(rapid_db_add_l2file(db, &a, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "DEC_TARG 95"));
    assert_non_null(strstr(err.msg, "/data/pole.fits"));
    assert_int_equal(test_db_count(db, "exposures"), 0);
    assert_int_equal(test_db_count(db, "l2files"), 0);
    a.dec_targ = NAN; /* not known: the image centre stands in */
    add(db, &a, RAPID_DB_ADDED);
    memset(&d, 0, sizeof d);
    d.rid = a.rid, d.ppid = RAPID_PPID_SCIENCE, d.method = RAPID_DIFF_ZOGY;
    strcpy(d.filename, "/diff/pole.fits");
    for (i = 0; i < 5; i++)
        d.ra[i] = a.fp_ra[i], d.dec[i] = a.fp_dec[i];
    d.dec[3] = 90.2;
    assert_int_equal(rapid_db_add_diffimage(db, &d, NULL, &err), RAPID_E_ARG);
    assert_int_equal(err.code, RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "diffimages_footprint"));
    assert_int_equal(test_db_count(db, "diffimages"), 0);
    d.dec[3] = 89.9;
    assert_int_equal(rapid_db_add_diffimage(db, &d, NULL, &err), 0);
}

/* File names are any bytes (but NUL): every one comes back as given, from
 * every table that keeps one, and is stored in the documented form. */
static void test_file_names(void **state)
{
    static const char *const names[][2] = {
        {"/data/plain.fits", "/data/plain.fits"},
        {"/data/caf\xc3\xa9 \xe6\x98\x9f.fits", "/data/caf\xc3\xa9 \xe6\x98\x9f.fits"},
        {"/data/\xff\xfe.fits", "/data/%FF%FE.fits"},
        {"/data/100%.fits", "/data/100%25.fits"},
        {"/data/a%25b.fits", "/data/a%2525b.fits"},    /* looks escaped */
        {"/data/caf\xe9.fits", "/data/caf%E9.fits"},    /* Latin-1 */
        {"/data/\xc0\xaf.fits", "/data/%C0%AF.fits"},   /* overlong '/' */
        {"/data/\xed\xa0\x80.fits", "/data/%ED%A0%80.fits"}, /* surrogate */
        {"/data/\xf4\x90\x80\x80.fits", "/data/%F4%90%80%80.fits"}, /* > U+10FFFF */
        {"/data/\xe6\x98.fits", "/data/%E6%98.fits"},   /* cut short */
        {"/data/tab\there\x01.fits", "/data/tab\there\x01.fits"},
        {"/data/\xf0\x9f\x94\xad\xf4\x8f\xbf\xbf.fits",       /* 4 bytes */
         "/data/\xf0\x9f\x94\xad\xf4\x8f\xbf\xbf.fits"},
    };
    test_db *t = *state;
    rapid_db *db = t->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file r, got;
    rapid_psffile p, best;
    rapid_refimage ref, bref;
    rapid_diffimage d;
    rapid_db_outcome out;
    char sql[200], want[200], longname[RAPID_DB_PATH_MAX + 8];
    int64_t cat = 0;
    int i, n = (int)(sizeof names / sizeof names[0]), found = 0;

    for (i = 0; i < n; i++) {
        char seed[16];
        snprintf(seed, sizeof seed, "fn%d", i);
        rec_at(&r, 40, 10, 62400 + i, "H158", 3, seed);
        snprintf(r.filename, sizeof r.filename, "%s", names[i][0]);
        add(db, &r, RAPID_DB_ADDED);
        assert_int_equal(rapid_db_get_l2file(db, r.rid, &got, &err), 0);
        assert_string_equal(got.filename, names[i][0]);
        snprintf(sql, sizeof sql, "SELECT filename FROM l2files WHERE rid = %lld",
                 (long long)r.rid);
        snprintf(want, sizeof want, "%s\n", names[i][1]);
        raw_is(t->pg, t->url, sql, want);
    }
    /* PSFs, reference images (as added and as renamed), catalogs,
     * difference images */
    memset(&p, 0, sizeof p);
    p.fid = 2, p.sca = 5;
    strcpy(p.filename, names[2][0]);
    strcpy(p.checksum, "0123456789abcdef0123456789abcdef");
    assert_int_equal(rapid_db_add_psffile(db, &p, &out, &err), 0);
    assert_int_equal(rapid_db_best_psffile(db, 2, 5, &best, &found, &err), 0);
    assert_string_equal(best.filename, names[2][0]);
    memset(&ref, 0, sizeof ref);
    ref.field = rapid_tile_rtid(512, 40, 10), ref.fid = 2;
    ref.ppid = RAPID_PPID_REFIMAGE;
    strcpy(ref.filename, names[3][0]);
    strcpy(ref.checksum, "0123456789abcdef0123456789abcdef");
    assert_int_equal(rapid_db_add_refimage(db, &ref, NULL, NULL, 0, &err), 0);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_REFIMAGE, ref.rfid, NULL,
                                      &err), 0);
    assert_int_equal(rapid_db_best_refimage(db, ref.field, 2, &bref, &found,
                                            &err), 0);
    assert_string_equal(bref.filename, names[3][0]);
    assert_int_equal(rapid_db_set_file(db, RAPID_PRODUCT_REFIMAGE, ref.rfid,
                                       names[7][0], ref.checksum, &err), 0);
    assert_int_equal(rapid_db_best_refimage(db, ref.field, 2, &bref, &found,
                                            &err), 0);
    assert_string_equal(bref.filename, names[7][0]);
    assert_int_equal(rapid_db_add_refimcatalog(db, ref.rfid, 12, 1, names[5][0],
                                               NULL, &cat, &err), 0);
    raw_is(t->pg, t->url, "SELECT filename FROM refimcatalogs",
           "/data/caf%E9.fits\n");
    memset(&d, 0, sizeof d);
    d.rid = r.rid, d.ppid = RAPID_PPID_SCIENCE, d.method = RAPID_DIFF_NAIVE;
    strcpy(d.filename, names[6][0]);
    assert_int_equal(rapid_db_add_diffimage(db, &d, NULL, &err), 0);
    raw_is(t->pg, t->url, "SELECT filename FROM diffimages", "/data/%C0%AF.fits\n");
    /* a name longer than the records hold is refused, naming the limit */
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(rapid_db_set_file(db, RAPID_PRODUCT_REFIMAGE, ref.rfid,
                                       longname, ref.checksum, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "1023"));
}

static void test_transactions(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_db_outcome out;
    rapid_l2file a, b;

    rec_at(&a, 20, 5, 62003.0, "J129", 4, "t1");
    rec_at(&b, 20, 5, 62003.1, "J129", 4, "t2");
    assert_int_equal(rapid_db_begin(db, &err), 0);
    add(db, &a, RAPID_DB_ADDED);
    add(db, &b, RAPID_DB_ADDED);
    rapid_db_rollback(db);
    assert_int_equal(test_db_count(db, "l2files"), 0);
    assert_int_equal(test_db_count(db, "exposures"), 0);
    /* a refused argument or a lookup that finds nothing writes nothing and
     * does not spoil the transaction ... */
    assert_int_equal(rapid_db_begin(db, &err), 0);
    add(db, &a, RAPID_DB_ADDED);
    b.fid = 99;
    assert_int_not_equal(rapid_db_add_l2file(db, &b, &out, &err), 0);
    assert_int_equal(rapid_db_get_l2file(db, 424242, &b, &err), RAPID_E_NOENT);
    assert_int_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(test_db_count(db, "l2files"), 1);
    /* ... but a failed write inside makes the commit roll it all back */
    assert_int_equal(rapid_db_begin(db, &err), 0);
    rec_at(&b, 20, 5, 62003.1, "J129", 4, "t2");
    add(db, &b, RAPID_DB_ADDED);
    assert_int_not_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_L2FILE, 777777, 2,
                                            &err), 0);
    assert_int_not_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(test_db_count(db, "l2files"), 1);
}

/* rapid_db_begin_async: a transaction like any other, only its commit
 * does not wait for the disk (on PostgreSQL). */
static void test_transactions_async(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file a, b;

    rec_at(&a, 20, 5, 62003.0, "J129", 4, "t1");
    rec_at(&b, 20, 5, 62003.1, "J129", 4, "t2");
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    add(db, &a, RAPID_DB_ADDED);
    rapid_db_rollback(db);
    assert_int_equal(test_db_count(db, "l2files"), 0);
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    add(db, &a, RAPID_DB_ADDED);
    /* nested: one transaction */
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    add(db, &b, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(test_db_count(db, "l2files"), 2);
    /* a failure inside rolls it all back */
    rec_at(&b, 21, 5, 62003.2, "J129", 4, "t3");
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    add(db, &b, RAPID_DB_ADDED);
    assert_int_not_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_L2FILE, 777777, 2,
                                            &err), 0);
    assert_int_not_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(test_db_count(db, "l2files"), 2);
    /* and the session goes on */
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    add(db, &b, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(test_db_count(db, "l2files"), 3);
}

static void test_by_time(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file r, *v = NULL;
    char seed[32];
    int n = 0, i, k;
    /* times out of order, two detectors each */
    static const double mjd[6] = {62010.5, 62010.1, 62010.3, 62011.0, 62009.9,
                                  62010.7};

    for (i = 0; i < 6; i++)
        for (k = 2; k >= 1; k--) {
            snprintf(seed, sizeof seed, "bt%d_%d", i, k);
            rec_at(&r, 30, 10, mjd[i], "Y106", k, seed);
            add(db, &r, RAPID_DB_ADDED);
        }
    /* a second version of one: only the best is listed */
    rec_at(&r, 30, 10, 62010.3, "Y106", 1, "bt-new");
    add(db, &r, RAPID_DB_NEW_VERSION);
    assert_int_equal(rapid_db_l2files_by_time(db, 62010.0, 62010.7, &v, &n,
                                              &err), 0);
    assert_int_equal(n, 6); /* 62010.1, .3, .5 (not .7: the end is open) */
    for (i = 0; i < n; i++) {
        assert_true(v[i].mjdobs >= 62010.0 && v[i].mjdobs < 62010.7);
        assert_int_equal(v[i].vbest, 1);
        if (i)
            assert_true(v[i - 1].mjdobs < v[i].mjdobs ||
                        (v[i - 1].mjdobs == v[i].mjdobs && v[i - 1].sca < v[i].sca));
    }
    assert_string_equal(v[2].checksum, r.checksum); /* 62010.3 sca 1 */
    free(v);
    assert_int_equal(rapid_db_l2files_by_time(db, 63000, 63001, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(rapid_db_l2files_by_time(db, NAN, 1, &v, &n, &err),
                     RAPID_E_ARG);
}

/* ------------------------------------------------------ prior images */

static int overlaps_by_tessellation(const rapid_l2file *r, int64_t rtid)
{
    int64_t *t = NULL;
    int n, i, yes = 0;

    n = rapid_tile_overlaps(512, r->fp_ra, r->fp_dec, &t, NULL);
    assert_true(n >= 0);
    for (i = 0; i < n; i++)
        yes |= t[i] == rtid;
    free(t);
    return yes;
}

/* Images scattered around a tile: the search must return exactly those
 * whose footprint the tessellation's own overlap test puts on the tile
 * (an independent implementation), nearest first. */
static void prior_check(rapid_db *db, double ra0, double dec0, uint64_t seed)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_prior_query q;
    rapid_l2file *all, *v = NULL;
    rapid_tile t;
    char name[64];
    int nall = 160, n = 0, i, k, want = 0;
    uint64_t rng = seed;

    all = calloc((size_t)nall, sizeof *all);
    q.field = rapid_tile_rtid(512, ra0, dec0);
    assert_int_equal(rapid_tile_get(512, q.field, &t, &err), 0);
    for (i = 0; i < nall; i++) {
        test_l2 p;
        double r = 0.35 * sqrt(test_uniform(&rng)), a = 2 * M_PI * test_uniform(&rng);
        double dec = t.cdec + r * sin(a);
        if (dec > 89.99)
            dec = 89.99;
        if (dec < -89.99)
            dec = -89.99;
        test_l2_init(&p, t.cra + r * cos(a) / fmax(cos(dec * M_PI / 180), 0.05),
                     dec, 62000 + (double)seed * 10 + i * 0.01, i % 5 == 4 ? "F184" : "H158",
                     1 + i % 18);
        p.pa = 360 * test_uniform(&rng);
        snprintf(name, sizeof name, "p%llu_%d", (unsigned long long)seed, i);
        assert_int_equal(test_l2_record(&p, name, &all[i]), 0);
        add(db, &all[i], RAPID_DB_ADDED);
    }
    q.fid = rapid_filter_by_name("H158")->fid;
    q.mjd_min = -INFINITY, q.mjd_max = 62000 + (double)seed * 10 + 150 * 0.01;
    q.limit = 0;
    assert_int_equal(rapid_db_prior_l2files(db, &q, &v, &n, &err), 0);
    for (i = 0; i < 150; i++) /* images 150.. are after the window */
        if (i % 5 != 4 && overlaps_by_tessellation(&all[i], q.field))
            want++;
    assert_true(want >= 5);
    assert_int_equal(n, want);
    for (i = 0; i < n; i++) {
        assert_true(overlaps_by_tessellation(&v[i], q.field));
        assert_int_equal(v[i].fid, q.fid);
        assert_true(v[i].mjdobs < q.mjd_max);
        assert_true(fabs(v[i].dist - rapid_sky_distance(v[i].ra, v[i].dec,
                                                        t.cra, t.cdec)) < 1e-12);
        if (i)
            assert_true(v[i - 1].dist <= v[i].dist);
        for (k = 0; k < i; k++)
            assert_true(v[k].rid != v[i].rid);
    }
    free(v);
    /* limited to the nearest N, and a time window */
    q.limit = 3;
    assert_int_equal(rapid_db_prior_l2files(db, &q, &v, &n, &err), 0);
    assert_int_equal(n, 3);
    free(v);
    /* images 40 .. 99 */
    q.limit = 0, q.mjd_min = all[40].mjdobs, q.mjd_max = all[100].mjdobs;
    assert_int_equal(rapid_db_prior_l2files(db, &q, &v, &n, &err), 0);
    for (i = 40, want = 0; i < 100; i++)
        if (i % 5 != 4 && overlaps_by_tessellation(&all[i], q.field))
            want++;
    assert_int_equal(n, want);
    for (i = 0; i < n; i++)
        assert_true(v[i].mjdobs >= q.mjd_min && v[i].mjdobs < q.mjd_max);
    free(v);
    free(all);
}

static void test_prior_images(void **state)
{
    prior_check(DB(state), 11.1, -43.8, 1);
}

/* PostgreSQL without Q3C: the declination band and cone instead. */
static void test_prior_without_q3c(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;

    if (use_pg) {
        assert_true(rapid_db_has_q3c(t->db));
        rapid_db_close(t->db);
        t->db = NULL;
        assert_int_equal(test_pg_exec(t->url, "DROP EXTENSION q3c CASCADE"), 0);
        assert_int_equal(rapid_db_open(&t->db, t->url, 0, &err), 0);
        assert_false(rapid_db_has_q3c(t->db));
    }
    prior_check(t->db, 250.0, 30.0, 5);
    prior_check(t->db, 359.99, -60.0, 6);
}

static void test_prior_wrap_and_poles(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_prior_query q = {0, 2, -INFINITY, INFINITY, 0};
    rapid_l2file r, *v = NULL;
    int n = 0;

    prior_check(db, 0.01, 0.3, 2);     /* the tile straddling RA 0 */
    prior_check(db, 45.0, 89.95, 3);   /* the north cap and ring 1 */
    prior_check(db, 200.0, -89.7, 4);  /* near the south cap */
    /* an image on the other side of RA 0 from its tile's centre */
    q.field = rapid_tile_rtid(512, 0.0, -10.0);
    rec_at(&r, 359.98, -10.0, 61000, "H158", 5, "wrap");
    add(db, &r, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_prior_l2files(db, &q, &v, &n, &err), 0);
    assert_true(n >= 1);
    assert_int_equal(v[0].rid, r.rid);
    free(v);
    /* a tile far from every image */
    q.field = rapid_tile_rtid(512, 100.0, 40.0);
    assert_int_equal(rapid_db_prior_l2files(db, &q, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    free(v);
    q.field = 0;
    assert_int_equal(rapid_db_prior_l2files(db, &q, &v, &n, &err), RAPID_E_RANGE);
}

/* ------------------------------------------------------------ products */

static void test_refimages(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_refimage r1, r2, r3, best;
    rapid_refimmeta meta;
    rapid_l2file a, b;
    int64_t rids[2], *in = NULL, svid = 0, svid2 = 0, cat = 0, cat2 = 0;
    int64_t field = rapid_tile_rtid(512, 11.1, -43.8);
    int found = -1, n = 0, vb = -1;

    rec_at(&a, 11.1, -43.8, 62000, "H158", 1, "ri1");
    rec_at(&b, 11.12, -43.8, 62001, "H158", 2, "ri2");
    rids[0] = add(db, &a, RAPID_DB_ADDED), rids[1] = add(db, &b, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_swversion(db, "abc123", "0.1.0", &svid, &err), 0);
    assert_int_equal(rapid_db_swversion(db, "abc123", "0.1.0", &svid2, &err), 0);
    assert_true(svid > 0 && svid == svid2);
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_int_equal(found, 0);

    memset(&r1, 0, sizeof r1);
    r1.field = field, r1.fid = 2, r1.ppid = RAPID_PPID_SCIENCE, r1.svid = svid;
    strcpy(r1.filename, "/ref/r1.fits");
    strcpy(r1.checksum, "0123456789abcdef0123456789abcdef");
    memset(&meta, 0, sizeof meta);
    meta.nframes = 2, meta.mjdobsmin = 62000, meta.mjdobsmax = 62001;
    meta.fwhmmedpix = 1.5;
    assert_int_equal(rapid_db_add_refimage(db, &r1, &meta, rids, 2, &err), 0);
    assert_int_equal(r1.version, 1);
    assert_int_equal(r1.vbest, 0);
    assert_true(strlen(r1.created) == 26);
    /* not confirmed yet: readers do not see it */
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_int_equal(found, 0);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_REFIMAGE, r1.rfid, &vb,
                                      &err), 0);
    assert_int_equal(vb, 1);
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_int_equal(found, 1);
    assert_int_equal(best.rfid, r1.rfid);
    assert_int_equal(best.svid, svid);
    assert_string_equal(best.filename, "/ref/r1.fits");
    assert_int_equal(rapid_db_refimage_inputs(db, r1.rfid, &in, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(in[0] == rids[0] && in[1] == rids[1]);
    free(in);
    assert_int_equal(test_db_count(db, "refimmeta"), 1);
    /* catalogs: one per (rfid, ppid, cattype), replaced when made again */
    assert_int_equal(rapid_db_add_refimcatalog(db, r1.rfid, 15, 1, "/ref/c1.fits",
                                               NULL, &cat, &err), 0);
    assert_int_equal(rapid_db_add_refimcatalog(db, r1.rfid, 15, 1, "/ref/c1b.fits",
                                               "0123456789abcdef0123456789abcdef",
                                               &cat2, &err), 0);
    assert_int_equal(cat, cat2);
    assert_int_equal(rapid_db_add_refimcatalog(db, r1.rfid, 15, 2, "/ref/c2.fits",
                                               NULL, &cat2, &err), 0);
    assert_int_not_equal(cat, cat2);
    assert_int_equal(test_db_count(db, "refimcatalogs"), 2);
    assert_int_equal(rapid_db_add_refimcatalog(db, r1.rfid, 15, 3, "/x", NULL,
                                               &cat2, &err), RAPID_E_ARG);
    /* version 2 takes over */
    r2 = r1;
    strcpy(r2.filename, "/ref/r2.fits");
    assert_int_equal(rapid_db_add_refimage(db, &r2, NULL, rids, 1, &err), 0);
    assert_int_equal(r2.version, 2);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_REFIMAGE, r2.rfid, &vb,
                                      &err), 0);
    assert_int_equal(vb, 1);
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_int_equal(best.rfid, r2.rfid);
    /* locked by hand: version 3 is kept but not used */
    assert_int_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_REFIMAGE, r2.rfid, 2,
                                        &err), 0);
    r3 = r1;
    strcpy(r3.filename, "/ref/r3.fits");
    assert_int_equal(rapid_db_add_refimage(db, &r3, NULL, NULL, 0, &err), 0);
    assert_int_equal(r3.version, 3);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_REFIMAGE, r3.rfid, &vb,
                                      &err), 0);
    assert_int_equal(vb, 0);
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_int_equal(best.rfid, r2.rfid);
    assert_int_equal(best.vbest, 2);
    /* confirming the locked one keeps it locked */
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_REFIMAGE, r2.rfid, &vb,
                                      &err), 0);
    assert_int_equal(vb, 2);
    /* unlocked, a new confirm wins again */
    assert_int_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_REFIMAGE, r3.rfid, 1,
                                        &err), 0);
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_int_equal(best.rfid, r3.rfid);
    assert_int_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_REFIMAGE, r3.rfid, 5,
                                        &err), RAPID_E_ARG);
    /* post-processing renames the file */
    assert_int_equal(rapid_db_set_file(db, RAPID_PRODUCT_REFIMAGE, r3.rfid,
                                       "/final/r3.fits",
                                       "fedcba9876543210fedcba9876543210", &err), 0);
    assert_int_equal(rapid_db_best_refimage(db, field, 2, &best, &found, &err), 0);
    assert_string_equal(best.filename, "/final/r3.fits");
    assert_int_equal(rapid_db_set_file(db, RAPID_PRODUCT_REFIMAGE, 99999, "/x",
                                       "y", &err), RAPID_E_NOENT);
    /* another filter has none */
    assert_int_equal(rapid_db_best_refimage(db, field, 1, &best, &found, &err), 0);
    assert_int_equal(found, 0);
}

static void test_diffimages_and_psfs(void **state)
{
    test_db *t = *state;
    rapid_db *db = t->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_diffimage d1, d2;
    rapid_diffimmeta m;
    rapid_psffile p, best;
    rapid_db_outcome out;
    rapid_l2file a;
    int vb = -1, found = 0, i;

    rec_at(&a, 50, -30, 62005.5, "Z087", 9, "di");
    add(db, &a, RAPID_DB_ADDED);
    memset(&d1, 0, sizeof d1);
    d1.rid = a.rid, d1.ppid = RAPID_PPID_SCIENCE, d1.method = RAPID_DIFF_ZOGY;
    for (i = 0; i < 5; i++)
        d1.ra[i] = a.fp_ra[i], d1.dec[i] = a.fp_dec[i];
    strcpy(d1.filename, "/diff/d1.fits");
    strcpy(d1.checksum, "0123456789abcdef0123456789abcdef");
    memset(&m, 0, sizeof m);
    m.scalefacref = 1.02, m.nmatches = 40;
    assert_int_equal(rapid_db_add_diffimage(db, &d1, &m, &err), 0);
    assert_int_equal(d1.version, 1);
    d2 = d1;
    assert_int_equal(rapid_db_add_diffimage(db, &d2, NULL, &err), 0);
    assert_int_equal(d2.version, 2);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_DIFFIMAGE, d1.pid, &vb, &err), 0);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_DIFFIMAGE, d2.pid, &vb, &err), 0);
    assert_int_equal(vb, 1);
    assert_int_equal(test_db_count(db, "diffimages"), 2);
    assert_int_equal(test_db_count(db, "diffimmeta"), 1);
    /* each method is a key of its own: its first version, its own best */
    d2 = d1;
    d2.method = RAPID_DIFF_NAIVE;
    assert_int_equal(rapid_db_add_diffimage(db, &d2, &m, &err), 0);
    assert_int_equal(d2.version, 1);
    assert_int_equal(rapid_db_confirm(db, RAPID_PRODUCT_DIFFIMAGE, d2.pid, &vb, &err), 0);
    assert_int_equal(vb, 1);
    d2.method = RAPID_DIFF_KERNELFIT;
    assert_int_equal(rapid_db_add_diffimage(db, &d2, NULL, &err), 0);
    assert_int_equal(d2.version, 1);
    assert_int_equal(test_db_count(db, "diffimages"), 4);
    assert_int_equal(test_db_count(db, "diffimmeta"), 2);
    /* ZOGY's version 2 is still its key's best */
    raw_is(t->pg, t->url, "SELECT method, version, vbest FROM diffimages"
                          " ORDER BY pid", "1|1|0\n1|2|1\n3|1|1\n2|1|0\n");
    raw_is(t->pg, t->url, "SELECT method, nmatches FROM diffimmeta ORDER BY pid",
           "1|40\n3|40\n");
    d2.method = 0;
    assert_int_equal(rapid_db_add_diffimage(db, &d2, NULL, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "method 0"));
    d2.method = 4;
    assert_int_equal(rapid_db_add_diffimage(db, &d2, NULL, &err), RAPID_E_ARG);
    d2.method = RAPID_DIFF_ZOGY;
    d2.rid = 123456;
    assert_int_equal(rapid_db_add_diffimage(db, &d2, NULL, &err), RAPID_E_NOENT);

    memset(&p, 0, sizeof p);
    p.fid = 2, p.sca = 3;
    strcpy(p.filename, "/psf/a.fits");
    strcpy(p.checksum, "0123456789abcdef0123456789abcdef");
    assert_int_equal(rapid_db_add_psffile(db, &p, &out, &err), 0);
    assert_int_equal(out, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_add_psffile(db, &p, &out, &err), 0);
    assert_int_equal(out, RAPID_DB_UNCHANGED);
    strcpy(p.checksum, "1123456789abcdef0123456789abcdef");
    assert_int_equal(rapid_db_add_psffile(db, &p, &out, &err), 0);
    assert_int_equal(out, RAPID_DB_NEW_VERSION);
    assert_int_equal(rapid_db_best_psffile(db, 2, 3, &best, &found, &err), 0);
    assert_int_equal(found, 1);
    assert_int_equal(best.version, 2);
    assert_string_equal(best.checksum, p.checksum);
    assert_int_equal(rapid_db_best_psffile(db, 2, 4, &best, &found, &err), 0);
    assert_int_equal(found, 0);
}

/* Versions added and confirmed at once (registration's way), inside one
 * transaction as registration has them: the same vbest rules as
 * rapid_db_add_* then rapid_db_confirm, metadata on the right row, and a
 * failure among the statements not waited for fails the commit. */
static void test_confirmed_at_once(void **state)
{
    test_db *t = *state;
    rapid_db *db = t->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_refimage r1, r2;
    rapid_refimmeta rm;
    rapid_diffimage d;
    rapid_diffimmeta m;
    rapid_l2file a;
    rapid_job j;
    int64_t rid, jid = 0, n;
    int i, rc;

    rec_at(&a, 33, 12, 62007.25, "F184", 4, "atonce");
    rid = add(db, &a, RAPID_DB_ADDED);
    memset(&d, 0, sizeof d);
    d.rid = rid, d.ppid = RAPID_PPID_SCIENCE, d.method = RAPID_DIFF_KERNELFIT;
    for (i = 0; i < 5; i++)
        d.ra[i] = a.fp_ra[i], d.dec[i] = a.fp_dec[i];
    strcpy(d.filename, "/diff/a1.fits");
    strcpy(d.checksum, "0123456789abcdef0123456789abcdef");
    memset(&m, 0, sizeof m);
    m.nmatches = 7;
    /* version 1, then 2 (1 drops), inside transactions */
    for (i = 1; i <= 2; i++) {
        m.nmatches = 7 * i;
        assert_int_equal(rapid_db_begin_async(db, &err), 0);
        assert_int_equal(rapid_db_add_diffimage_confirmed(db, &d, &m, &err), 0);
        assert_int_equal(d.pid, 0);
        assert_int_equal(rapid_db_commit(db, &err), 0);
    }
    /* the science image's columns copied */
    raw_is(t->pg, t->url, "SELECT d.version, d.vbest, d.status, d.sca, CASE"
           " WHEN d.fid = l.fid AND d.expid = l.expid AND d.field = l.field"
           " AND d.hp6 = l.hp6 AND d.hp9 = l.hp9"
           " AND abs(d.jd - 2400000.5 - l.mjdobs) < 1e-6 THEN 1 ELSE 0 END"
           " FROM diffimages d JOIN l2files l ON l.rid = d.rid"
           " WHERE d.method = 2 ORDER BY d.pid", "1|0|1|4|1\n2|1|1|4|1\n");
    raw_is(t->pg, t->url, "SELECT d.version, m.nmatches FROM diffimmeta m"
           " JOIN diffimages d ON d.pid = m.pid AND d.method = m.method"
           " WHERE d.method = 2 ORDER BY d.pid", "1|7\n2|14\n");
    /* beside a locked version: kept, confirmed, not the best */
    assert_int_equal(rapid_db_set_vbest(db, RAPID_PRODUCT_DIFFIMAGE,
                                        test_db_count(db, "diffimages"), 2,
                                        &err), 0);
    assert_int_equal(rapid_db_add_diffimage_confirmed(db, &d, NULL, &err), 0);
    raw_is(t->pg, t->url, "SELECT version, vbest, status FROM diffimages"
           " WHERE method = 2 ORDER BY pid", "1|0|1\n2|2|1\n3|0|1\n");
    /* no such science image: the commit at the latest fails, nothing kept */
    n = test_db_count(db, "diffimages");
    d.rid = 987654;
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    rc = rapid_db_add_diffimage_confirmed(db, &d, &m, &err);
    if (rc == 0)
        rc = rapid_db_commit(db, &err);
    else
        rapid_db_rollback(db);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, "expid"));
    assert_int_equal(test_db_count(db, "diffimages"), n);
    /* the connection goes on */
    d.rid = rid, d.method = RAPID_DIFF_NAIVE;
    assert_int_equal(rapid_db_add_diffimage_confirmed(db, &d, NULL, &err), 0);
    raw_is(t->pg, t->url, "SELECT version, vbest, status FROM diffimages"
           " WHERE method = 3", "1|1|1\n");

    /* reference images: rfid, version, vbest read back; inputs, meta */
    memset(&r1, 0, sizeof r1);
    r1.field = a.field, r1.fid = a.fid, r1.ppid = RAPID_PPID_REFERENCE;
    strcpy(r1.filename, "/ref/at1.fits");
    strcpy(r1.checksum, "0123456789abcdef0123456789abcdef");
    memset(&rm, 0, sizeof rm);
    rm.nframes = 1;
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    assert_int_equal(rapid_db_add_refimage_confirmed(db, &r1, &rm, &rid, 1,
                                                     &err), 0);
    assert_int_equal(rapid_db_add_refimcatalog(db, r1.rfid, r1.ppid, 1,
                                               "/ref/at1_cat.fits", NULL, NULL,
                                               &err), 0);
    assert_int_equal(rapid_db_commit(db, &err), 0);
    assert_true(r1.rfid > 0 && r1.version == 1 && r1.vbest == 1 &&
                r1.status == 1 && strlen(r1.created) == 26);
    r2 = r1;
    assert_int_equal(rapid_db_add_refimage_confirmed(db, &r2, NULL, NULL, 0,
                                                     &err), 0);
    assert_true(r2.rfid > r1.rfid && r2.version == 2 && r2.vbest == 1);
    raw_is(t->pg, t->url, "SELECT r.version, r.vbest, r.status,"
           " (SELECT count(*) FROM refimimages i WHERE i.rfid = r.rfid),"
           " (SELECT count(*) FROM refimmeta i WHERE i.rfid = r.rfid),"
           " (SELECT count(*) FROM refimcatalogs i WHERE i.rfid = r.rfid)"
           " FROM refimages r WHERE r.filename = '/ref/at1.fits'"
           " ORDER BY r.rfid", "1|0|1|1|1|1\n2|1|1|0|0|0\n");

    /* a job ended in the transaction that locked it */
    assert_int_equal(rapid_db_start_job(db, 15, rid, 20280909, NULL, &jid,
                                        &err), 0);
    assert_int_equal(rapid_db_get_job(db, jid, &j, &err), 0);
    assert_int_equal(rapid_db_end_locked_job(db, &j, 0, 1.0, 2.0, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_db_begin_async(db, &err), 0);
    assert_int_equal(rapid_db_lock_job(db, jid, &j, &err), 0);
    {
        double launched = 0;
        assert_int_equal(rapid_time_parse(j.launched, &launched, &err), 0);
        assert_int_equal(rapid_db_end_locked_job(db, &j, 4, launched + 3,
                                                 launched + 10.5, &err), 0);
    }
    assert_int_equal(rapid_db_commit(db, &err), 0);
    assert_int_equal(rapid_db_get_job(db, jid, &j, &err), 0);
    assert_true(j.status == 1 && j.exitcode == 4);
    assert_true(fabs(j.qwaited - 3) < 1e-5 && fabs(j.elapsed - 7.5) < 1e-5);
}

/* ----------------------------------------------------------------- jobs */

/* Two sessions locking the same job take turns: the second waits (here:
 * its lock timeout runs out on PostgreSQL; SQLite's second writer waits
 * for the first's transaction as a whole). */
static void test_job_lock(void **state)
{
    test_db *t = *state;
    rapid_db *db = DB(state), *other = NULL;
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file a;
    rapid_job j;
    int64_t jid = 0;

    rec_at(&a, 71, 20, 62006, "W146", 11, "lock");
    add(db, &a, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_start_job(db, 15, a.rid, 20280907, "n", &jid, &err), 0);
    assert_int_equal(rapid_db_lock_job(db, jid, &j, &err), RAPID_E_ARG);
    assert_int_equal(rapid_db_begin(db, &err), 0);
    assert_int_equal(rapid_db_lock_job(db, jid, &j, &err), 0);
    assert_int_equal(j.jid, jid);
    assert_int_equal(j.status, 0);
    assert_int_equal(rapid_db_open(&other, t->url, 0, &err), 0);
    assert_int_equal(rapid_db_set_lock_timeout(other, 0.2, &err), 0);
    if (t->pg) {
        assert_int_equal(rapid_db_begin(other, &err), 0);
        assert_int_not_equal(rapid_db_lock_job(other, jid, &j, &err), 0);
        rapid_db_rollback(other);
    } else {
        assert_int_not_equal(rapid_db_begin(other, &err), 0);
    }
    assert_int_equal(rapid_db_end_job(db, jid, 0, 1.0, 2.0, &err), 0);
    assert_int_equal(rapid_db_commit(db, &err), 0);
    /* the second, after the first: the end it committed */
    assert_int_equal(rapid_db_begin(other, &err), 0);
    assert_int_equal(rapid_db_lock_job(other, jid, &j, &err), 0);
    assert_int_equal(j.status, 1);
    assert_int_equal(rapid_db_commit(other, &err), 0);
    assert_int_equal(rapid_db_lock_job(db, 987654, &j, &err), RAPID_E_ARG);
    assert_int_equal(rapid_db_begin(db, &err), 0);
    assert_int_equal(rapid_db_lock_job(db, 987654, &j, &err), RAPID_E_NOENT);
    rapid_db_rollback(db);
    rapid_db_close(other);
}

static void test_jobs(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file a, b;
    rapid_job j, *v = NULL;
    int64_t jid = 0, jid2 = 0, jidb = 0, jpost = 0;
    double t0 = rapid_time_now(), launched = 0;
    int n = 0;

    rec_at(&a, 70, 20, 62006, "W146", 11, "j1");
    rec_at(&b, 70, 20, 62006.1, "W146", 11, "j2");
    add(db, &a, RAPID_DB_ADDED);
    add(db, &b, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_start_job(db, 15, a.rid, 20280907, "node1", &jid, &err), 0);
    assert_int_equal(rapid_db_start_job(db, 15, b.rid, 20280907, NULL, &jidb, &err), 0);
    assert_int_equal(rapid_db_start_job(db, 17, a.rid, 20280908, "node2", &jpost, &err), 0);
    assert_true(jid > 0 && jidb != jid && jpost != jid);
    assert_int_equal(rapid_db_get_job(db, jid, &j, &err), 0);
    assert_int_equal(j.rid, a.rid);
    assert_int_equal(j.expid, a.expid);
    assert_int_equal(j.fid, a.fid);
    assert_int_equal(j.sca, 11);
    assert_int_equal(j.field, a.field);
    assert_string_equal(j.machine, "node1");
    assert_int_equal(j.status, 0);
    assert_int_equal(j.exitcode, -1);
    assert_true(isnan(j.elapsed));
    assert_int_equal(rapid_time_parse(j.launched, &launched, &err), 0);
    assert_true(fabs(launched - t0) < 60);
    /* unclosed jobs of a processing date */
    assert_int_equal(rapid_db_unclosed_jobs(db, 20280907, 0, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0].jid == jid && v[1].jid == jidb);
    free(v);
    assert_int_equal(rapid_db_unclosed_jobs(db, 20280908, 17, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    free(v);
    assert_int_equal(rapid_db_unclosed_jobs(db, 20280908, 15, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    free(v);
    /* end: exit code, times, status 1 */
    assert_int_equal(rapid_db_set_job_executor(db, jid, "4242", NULL, &err), 0);
    assert_int_equal(rapid_db_end_job(db, jid, 33, launched + 5, launched + 125.5,
                                      &err), 0);
    assert_int_equal(rapid_db_get_job(db, jid, &j, &err), 0);
    assert_int_equal(j.status, 1);
    assert_int_equal(j.exitcode, 33);
    assert_true(fabs(j.elapsed - 120.5) < 1e-6);
    assert_true(fabs(j.qwaited - 5) < 1e-5);
    assert_string_equal(j.slurm, "4242");
    assert_int_equal(rapid_db_unclosed_jobs(db, 20280907, 15, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].jid, jidb);
    free(v);
    /* restarted: the same jid, its run columns cleared */
    assert_int_equal(rapid_db_start_job(db, 15, a.rid, 20280909, "node3", &jid2, &err), 0);
    assert_int_equal(jid2, jid);
    assert_int_equal(rapid_db_get_job(db, jid, &j, &err), 0);
    assert_int_equal(j.status, 0);
    assert_int_equal(j.exitcode, -1);
    assert_string_equal(j.started, "");
    assert_string_equal(j.slurm, "");
    assert_int_equal(j.procdate, 20280909);
    assert_int_equal(test_db_count(db, "jobs"), 3);
    /* errors */
    assert_int_equal(rapid_db_end_job(db, 99999, 0, t0, t0 + 1, &err), RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "99999"));
    assert_int_equal(rapid_db_start_job(db, 15, 99999, 20280907, NULL, &jid, &err),
                     RAPID_E_NOENT);
    assert_int_equal(rapid_db_start_job(db, 16, a.rid, 20280907, NULL, &jid, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_db_unclosed_jobs(db, 2028, 0, &v, &n, &err), RAPID_E_ARG);
    assert_int_equal(rapid_db_end_job(db, jid2, 0, t0 + 10, t0, &err), RAPID_E_ARG);
}

/* The steps' job and product look-ups: a reference job by (field, fid),
 * every job of a date, a reference image by its file, the newest
 * difference image of each method. */
static void test_pipeline_lookups(void **state)
{
    rapid_db *db = DB(state);
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file a;
    rapid_job j, *v = NULL;
    rapid_refimage r, got;
    rapid_diffimage d, latest[3];
    int64_t ref = 0, ref2 = 0, other = 0, sci = 0;
    double t0 = rapid_time_now();
    int n = 0, found = 0, i;

    rec_at(&a, 70, 20, 62006, "H158", 3, "p1");
    add(db, &a, RAPID_DB_ADDED);
    assert_int_equal(rapid_db_start_refjob(db, a.field, a.fid, 20280907, "n1", &ref, &err), 0);
    assert_int_equal(rapid_db_start_refjob(db, a.field, 1, 20280907, NULL, &other, &err), 0);
    assert_int_equal(rapid_db_start_job(db, 15, a.rid, 20280907, NULL, &sci, &err), 0);
    assert_true(ref > 0 && other != ref && sci != ref);
    assert_int_equal(rapid_db_end_job(db, ref, 0, t0, t0 + 1, &err), 0);
    /* restarted on another date: the same row, its run columns cleared */
    assert_int_equal(rapid_db_start_refjob(db, a.field, a.fid, 20280908, "n2", &ref2, &err), 0);
    assert_int_equal(ref2, ref);
    assert_int_equal(rapid_db_get_job(db, ref, &j, &err), 0);
    assert_true(j.ppid == 12 && j.rid == 0 && j.field == a.field && j.fid == a.fid);
    assert_true(j.status == 0 && j.exitcode == -1 && j.procdate == 20280908);
    assert_int_equal(test_db_count(db, "jobs"), 3);
    assert_int_equal(rapid_db_find_job(db, 12, 0, a.field, a.fid, &j, &found, &err), 0);
    assert_true(found && j.jid == ref);
    assert_int_equal(rapid_db_find_job(db, 15, a.rid, 0, 0, &j, &found, &err), 0);
    assert_true(found && j.jid == sci);
    assert_int_equal(rapid_db_find_job(db, 17, a.rid, 0, 0, &j, &found, &err), 0);
    assert_false(found);
    assert_int_equal(rapid_db_start_refjob(db, a.field, 99, 20280907, NULL, &ref2, &err), RAPID_E_ARG);
    /* every job of a date, ended or not */
    assert_int_equal(rapid_db_end_job(db, sci, 64, t0, t0 + 1, &err), 0);
    assert_int_equal(rapid_db_jobs(db, 20280907, 0, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0].jid == other && v[1].jid == sci && v[1].exitcode == 64);
    free(v);
    assert_int_equal(rapid_db_jobs(db, 20280908, 12, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    free(v);
    /* reference images by file name: the newest version */
    memset(&r, 0, sizeof r);
    r.field = a.field, r.fid = a.fid, r.ppid = 12;
    snprintf(r.filename, sizeof r.filename, "/w/ref%%1.fits");
    snprintf(r.checksum, sizeof r.checksum, "%032d", 1);
    assert_int_equal(rapid_db_add_refimage(db, &r, NULL, NULL, 0, &err), 0);
    assert_int_equal(rapid_db_add_refimage(db, &r, NULL, NULL, 0, &err), 0);
    assert_int_equal(rapid_db_refimage_by_file(db, "/w/ref%1.fits", &got, &found, &err), 0);
    assert_true(found && got.rfid == r.rfid && got.version == 2);
    assert_int_equal(rapid_db_refimage_by_file(db, "/w/none.fits", &got, &found, &err), 0);
    assert_false(found);
    assert_int_equal(rapid_db_get_refimage(db, r.rfid, &got, &err), 0);
    assert_string_equal(got.filename, "/w/ref%1.fits");
    assert_int_equal(rapid_db_get_refimage(db, 999999, &got, &err), RAPID_E_NOENT);
    /* the newest difference image of each method */
    assert_int_equal(rapid_db_latest_diffimages(db, a.rid, 15, latest, &n, &err), 0);
    assert_int_equal(n, 0);
    for (i = 0; i < 4; i++) {
        memset(&d, 0, sizeof d);
        d.rid = a.rid, d.ppid = 15, d.method = i < 3 ? 1 : 3, d.rfid = r.rfid;
        snprintf(d.filename, sizeof d.filename, "/w/diff%d.fits", i);
        snprintf(d.checksum, sizeof d.checksum, "%032d", i);
        assert_int_equal(rapid_db_add_diffimage(db, &d, NULL, &err), 0);
    }
    assert_int_equal(rapid_db_latest_diffimages(db, a.rid, 15, latest, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(latest[0].method == 1 && latest[0].version == 3 && latest[0].rfid == r.rfid);
    assert_string_equal(latest[0].filename, "/w/diff2.fits");
    assert_true(latest[1].method == 3 && latest[1].version == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) TEST_DB(f, &use_pg)
        T(test_init_and_seed),  T(test_no_schema),
        T(test_schema_newer),   T(test_inits_at_once),
        T(test_readonly),       T(test_upgrade_from_v1),
        T(test_upgrade_from_v2),
        T(test_bad_urls),       T(test_url_checks),
        T(test_times),
        T(test_l2_versions),    T(test_l2_conflicts),
        T(test_schema_refuses), T(test_file_names),
        T(test_transactions),   T(test_transactions_async), T(test_by_time),
        T(test_prior_images),   T(test_prior_wrap_and_poles),
        T(test_prior_without_q3c),
        T(test_refimages),      T(test_diffimages_and_psfs),
        T(test_confirmed_at_once),
        T(test_jobs), T(test_job_lock),           T(test_pipeline_lookups),
#undef T
    };
    int rc;

    use_pg = 0;
    rc = cmocka_run_group_tests_name("db sqlite", tests, NULL, NULL);
    if (test_backends() > 1) {
        use_pg = 1;
        rc |= cmocka_run_group_tests_name("db postgresql", tests, NULL, NULL);
    }
    return rc;
}
