/* test_ingest.c - L2 images and PSFs from files into the database, bad
 * files, and the faults: two processes at once, a process killed half-way.
 * Runs on SQLite, and on PostgreSQL when RAPID_TEST_PG is set. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dbtest.h"
#include "rapid/ingest.h"
#include "rapid/md5.h"
#include "testutil.h"

static int use_pg;

/* A fresh directory for one test's files. */
static const char *dir(const char *name)
{
    static char path[8][600];
    static int k;
    char cmd[700];

    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s", test_path(name));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path[k]);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(path[k], 0777), 0);
    return path[k];
}

/* A small L2 file (size 32) of exposure e, detector sca. */
static void l2_file(const char *path, int e, int sca, float level, int keys_in_primary)
{
    test_l2 p;

    test_l2_init(&p, 150 + 0.01 * e, 2.0, 62100 + e * 0.001, "H158", sca);
    p.size = 32;
    assert_int_equal(test_l2_file(&p, path, level, keys_in_primary), 0);
}

/* What the run reported, file by file. */
typedef struct log_entry {
    char path[600];
    int outcome, skipped, failed, version;
    int64_t id;
    char msg[RAPID_ERR_MAX];
} log_entry;

typedef struct run_log {
    log_entry e[512];
    int n;
} run_log;

static void on_report(const rapid_ingest_event *ev, void *arg)
{
    run_log *L = arg;
    log_entry *e;

    assert_true(L->n < 512);
    e = &L->e[L->n++];
    snprintf(e->path, sizeof e->path, "%s", ev->path);
    e->outcome = ev->outcome, e->skipped = ev->skipped;
    e->failed = ev->err != NULL, e->id = ev->id, e->version = ev->version;
    snprintf(e->msg, sizeof e->msg, "%s", ev->err ? ev->err->msg : "");
}

static const log_entry *find(const run_log *L, const char *suffix)
{
    size_t m = strlen(suffix);
    int i;

    for (i = 0; i < L->n; i++) {
        size_t n = strlen(L->e[i].path);
        if (n >= m && strcmp(L->e[i].path + n - m, suffix) == 0)
            return &L->e[i];
    }
    fail_msg("no report for %s", suffix);
    return NULL;
}

static void ingest(rapid_db *db, rapid_ingest_kind kind, const char *const *paths,
                   int n, run_log *L, rapid_ingest_stats *st)
{
    rapid_ingest_opts o;
    rapid_err err = RAPID_ERR_INIT;
    int rc;

    rapid_ingest_opts_init(&o);
    o.batch = 4; /* several batches even for a few files */
    o.report = on_report, o.arg = L;
    L->n = 0;
    rc = rapid_ingest(db, kind, paths, n, &o, st, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------------ MD5 */

static void md5_is(const char *s, const char *want)
{
    unsigned char d[16];
    char hex[33];
    rapid_md5 m;
    size_t i;

    rapid_md5_init(&m);
    rapid_md5_update(&m, s, strlen(s));
    rapid_md5_final(&m, d);
    rapid_md5_hex(d, hex);
    assert_string_equal(hex, want);
    /* the same, fed a byte at a time */
    rapid_md5_init(&m);
    for (i = 0; s[i]; i++)
        rapid_md5_update(&m, s + i, 1);
    rapid_md5_final(&m, d);
    rapid_md5_hex(d, hex);
    assert_string_equal(hex, want);
}

static void test_md5(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    char hex[33], *big;
    FILE *fp;
    size_t i;

    (void)state;
    /* RFC 1321, appendix A.5 */
    md5_is("", "d41d8cd98f00b204e9800998ecf8427e");
    md5_is("a", "0cc175b9c0f1b6a831c399e269772661");
    md5_is("abc", "900150983cd24fb0d6963f7d28e17f72");
    md5_is("message digest", "f96b697d7cb7938d525a2f31aaf161d0");
    md5_is("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
    md5_is("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
           "d174ab98d277d9f5a5611c2c9f419d9f");
    md5_is("1234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890", "57edf4a22be3c955ac49da2e2107b67a");
    /* a file of a million 'a's, as md5sum gives it */
    big = malloc(1000000);
    memset(big, 'a', 1000000);
    fp = fopen(test_path("million"), "wb");
    for (i = 0; i < 1000000; i += 4096)
        fwrite(big + i, 1, 1000000 - i < 4096 ? 1000000 - i : 4096, fp);
    fclose(fp);
    free(big);
    assert_int_equal(rapid_md5_file(test_path("million"), hex, &err), 0);
    assert_string_equal(hex, "7707d6ae4e027c70eea2a935c2296f21");
    assert_int_equal(rapid_md5_file(test_path("none"), hex, &err), RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "none"));
}

/* --------------------------------------------------------------- files */

static void test_ingest_and_reingest(void **state)
{
    rapid_db *db = ((test_db *)*state)->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_stats st;
    rapid_l2file got;
    run_log *L = calloc(1, sizeof *L);
    int64_t rids[8];
    char path[700], hex[33];
    const char *d = dir("l2"), *paths[1] = {d};
    int e, s, i;

    for (e = 0; e < 3; e++)
        for (s = 1; s <= 2; s++) {
            snprintf(path, sizeof path, "%s/img_%d_%d.fits", d, e, s);
            l2_file(path, e, s, 10.0f, 0);
        }
    snprintf(path, sizeof path, "%s/sub", d);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/sub/img_3_1.fits.gz", d);
    l2_file(path, 3, 1, 10.0f, 0);
    snprintf(path, sizeof path, "%s/sub/img_4_5.fits", d);
    l2_file(path, 4, 5, 10.0f, 1); /* keywords in the primary header */

    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.files, 8);
    assert_int_equal(st.added, 8);
    assert_int_equal(st.failed + st.skipped + st.unchanged + st.versions, 0);
    assert_int_equal(L->n, 8);
    assert_int_equal(test_db_count(db, "l2files"), 8);
    assert_int_equal(test_db_count(db, "l2filemeta"), 8);
    assert_int_equal(test_db_count(db, "exposures"), 5);
    for (i = 0; i < 8; i++) {
        assert_int_equal(L->e[i].outcome, RAPID_DB_ADDED);
        assert_int_equal(L->e[i].version, 1);
        rids[i] = L->e[i].id;
    }
    /* what was recorded about the gzipped one */
    assert_int_equal(rapid_db_get_l2file(db, find(L, "img_3_1.fits.gz")->id, &got,
                                         &err), 0);
    snprintf(path, sizeof path, "%s/sub/img_3_1.fits.gz", d);
    assert_int_equal(rapid_md5_file(path, hex, &err), 0);
    assert_string_equal(got.checksum, hex);
    assert_true(got.filename[0] == '/');
    assert_non_null(strstr(got.filename, "/sub/img_3_1.fits.gz"));
    assert_int_equal(got.naxis1, 32);
    assert_int_equal(got.sca, 1);
    assert_int_equal(got.a_order, 4);
    assert_true(fabs(got.zptmag - 26.3) < 1e-12 && fabs(got.skymean - 45.5) < 1e-12);
    assert_true(fabs(got.mjdobs - 62100.003) < 1e-9);
    assert_string_equal(got.dateobs, "2028-11-25T00:04:19.200000");
    /* and about the one with its keywords in the primary header */
    assert_int_equal(rapid_db_get_l2file(db, find(L, "img_4_5.fits")->id, &got,
                                         &err), 0);
    snprintf(path, sizeof path, "%s/sub/img_4_5.fits", d);
    assert_int_equal(rapid_md5_file(path, hex, &err), 0);
    assert_string_equal(got.checksum, hex);
    assert_int_equal(got.sca, 5);

    /* again: nothing changes, the same rids */
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.unchanged, 8);
    assert_int_equal(st.added + st.versions + st.failed, 0);
    for (i = 0; i < 8; i++)
        assert_int_equal(L->e[i].id, rids[i]);
    assert_int_equal(test_db_count(db, "l2files"), 8);

    /* one file changed: its new version */
    snprintf(path, sizeof path, "%s/img_1_2.fits", d);
    l2_file(path, 1, 2, 11.0f, 0);
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.versions, 1);
    assert_int_equal(st.unchanged, 7);
    assert_int_equal(find(L, "img_1_2.fits")->outcome, RAPID_DB_NEW_VERSION);
    assert_int_equal(find(L, "img_1_2.fits")->version, 2);
    assert_int_equal(rapid_db_get_l2file(db, find(L, "img_1_2.fits")->id, &got,
                                         &err), 0);
    assert_int_equal(got.vbest, 1);
    assert_int_equal(test_db_count(db, "l2files"), 9);
    assert_int_equal(test_db_count(db, "exposures"), 5);
    free(L);
}

/* File names that are not UTF-8, or hold a '%', go in with the good files
 * of their batch on both back ends and come back byte for byte; a copy of
 * a file under such a name is that file, unchanged. */
static void test_odd_names(void **state)
{
    static const char *const odd[] = {"50%.fits", "caf\xe9.fits",
                                      "\xff\xfe.fits"};
    rapid_db *db = ((test_db *)*state)->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_stats st;
    rapid_l2file got;
    run_log *L = calloc(1, sizeof *L);
    char path[700], real[PATH_MAX], cmd[1500];
    const char *d = dir("names"), *paths[1] = {d};
    const log_entry *e;
    int i;

    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/img_0_%d.fits", d, i + 1);
        l2_file(path, 0, i + 1, 10.0f, 0);
    }
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", d, odd[i]);
        l2_file(path, i + 1, 1, 10.0f, 0);
    }
    snprintf(cmd, sizeof cmd, "cp '%s/img_0_1.fits' '%s/\xfe\xff copy.fits'", d, d);
    assert_int_equal(system(cmd), 0);

    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.files, 6);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.added, 5);
    assert_int_equal(st.unchanged, 1);
    assert_int_equal(test_db_count(db, "l2files"), 5);
    for (i = 0; i < 3; i++) {
        e = find(L, odd[i]);
        assert_int_equal(e->outcome, RAPID_DB_ADDED);
        assert_int_equal(rapid_db_get_l2file(db, e->id, &got, &err), 0);
        snprintf(path, sizeof path, "%s/%s", d, odd[i]);
        assert_non_null(realpath(path, real));
        assert_string_equal(got.filename, real);
    }
    assert_int_equal(find(L, "\xfe\xff copy.fits")->id, find(L, "img_0_1.fits")->id);
    free(L);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

/* The first n bytes of a file, into another. */
static void cut(const char *from, const char *to, long n)
{
    char *buf = malloc((size_t)n);
    FILE *fp = fopen(from, "rb");

    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    write_bytes(to, buf, (size_t)n);
    free(buf);
}

/* A file with the header of exposure e but some keywords removed. */
static void l2_without(const char *path, int e, const char *const *drop)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    test_l2 p;

    test_l2_init(&p, 150, 2, 62100 + e * 0.001, "H158", 3);
    p.size = 32;
    assert_int_equal(rapid_image_alloc(&img, 32, 32, 1.0f, &err), 0);
    assert_int_equal(test_l2_header(&p, &img.hdr), 0);
    for (; *drop; drop++)
        rapid_header_delete(&img.hdr, *drop);
    assert_int_equal(rapid_fits_write_image(path, &img, "SCI", &err), 0);
    rapid_image_release(&img);
}

static void test_bad_files(void **state)
{
    static const char *const nokeys[] = {"FILTER", "ZPTMAG", NULL};
    static const char *const nowcs[] = {"CTYPE1", "CTYPE2", NULL};
    rapid_db *db = ((test_db *)*state)->db;
    rapid_ingest_stats st;
    run_log *L = calloc(1, sizeof *L);
    char path[700], good[700], missing[700];
    const char *d = dir("bad"), *paths[2];
    const log_entry *e;
    struct stat sb;

    snprintf(good, sizeof good, "%s/good.fits", d);
    l2_file(good, 0, 1, 1.0f, 0);
    snprintf(path, sizeof path, "%s/good2.fits.gz", d);
    l2_file(path, 1, 1, 1.0f, 0);
    snprintf(path, sizeof path, "%s/text.fits", d);
    write_bytes(path, "this is not FITS at all\n", 24);
    snprintf(path, sizeof path, "%s/empty.fits", d);
    write_bytes(path, "", 0);
    /* cut inside its data, and cut at a block boundary before the end */
    l2_file(test_path("whole.fits"), 10, 1, 1.0f, 0);
    assert_int_equal(stat(test_path("whole.fits"), &sb), 0);
    snprintf(path, sizeof path, "%s/cut.fits", d);
    cut(test_path("whole.fits"), path, (long)sb.st_size - 1000);
    snprintf(path, sizeof path, "%s/cutblock.fits", d);
    l2_file(test_path("whole2.fits"), 11, 1, 1.0f, 0);
    /* 64x64 floats: two data blocks after the two header HDUs */
    {
        test_l2 p;
        test_l2_init(&p, 150, 2, 62200, "H158", 1);
        p.size = 64;
        assert_int_equal(test_l2_file(&p, test_path("big.fits"), 1.0f, 0), 0);
        assert_int_equal(stat(test_path("big.fits"), &sb), 0);
        cut(test_path("big.fits"), path, (long)sb.st_size - 2880 * 3);
    }
    snprintf(path, sizeof path, "%s/nokeys.fits", d);
    l2_without(path, 12, nokeys);
    snprintf(path, sizeof path, "%s/nowcs.fits", d);
    l2_without(path, 13, nowcs);
    snprintf(missing, sizeof missing, "%s/missing.fits", test_tmpdir());

    paths[0] = d, paths[1] = missing;
    ingest(db, RAPID_INGEST_L2, paths, 2, L, &st);
    assert_int_equal(st.files, 9);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.failed, 7);
    assert_int_equal(test_db_count(db, "l2files"), 2);
    assert_int_equal(test_db_count(db, "l2filemeta"), 2);
    assert_int_equal(test_db_count(db, "exposures"), 2); /* nothing of the bad ones */
    e = find(L, "/text.fits");
    assert_true(e->failed && strstr(e->msg, "text.fits") && strstr(e->msg, "not a FITS file"));
    e = find(L, "/empty.fits");
    assert_true(e->failed && strstr(e->msg, "empty"));
    e = find(L, "/cut.fits");
    assert_true(e->failed && strstr(e->msg, "cut.fits") && strstr(e->msg, "truncated"));
    e = find(L, "/cutblock.fits");
    assert_true(e->failed && strstr(e->msg, "cutblock.fits") && strstr(e->msg, "truncated"));
    e = find(L, "/nokeys.fits");
    assert_true(e->failed && strstr(e->msg, "nokeys.fits") &&
                strstr(e->msg, "missing header keywords FILTER, ZPTMAG"));
    e = find(L, "/nowcs.fits");
    assert_true(e->failed && strstr(e->msg, "nowcs.fits") && strstr(e->msg, "WCS"));
    e = find(L, "/missing.fits");
    assert_true(e->failed && strstr(e->msg, "missing.fits") && strstr(e->msg, "no such file"));
    assert_int_equal(find(L, "/good.fits")->outcome, RAPID_DB_ADDED);
    free(L);
}

/* An L2 file observed at DATE-OBS of mjd, whose MJD-OBS says mjdobs. */
static void l2_mjd(const char *path, double mjd, double mjdobs, float level)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    test_l2 p;

    test_l2_init(&p, 150, 2, mjd, "H158", 3);
    p.size = 32;
    assert_int_equal(rapid_image_alloc(&img, 32, 32, level, &err), 0);
    assert_int_equal(test_l2_header(&p, &img.hdr), 0);
    rapid_header_set_double(&img.hdr, "MJD-OBS", mjdobs, NULL);
    assert_int_equal(rapid_fits_write_image(path, &img, "SCI", &err), 0);
    rapid_image_release(&img);
}

/* MJD-OBS and DATE-OBS that disagree by more than 1 s: refused, with both
 * values in the message, and never a new best version. */
static void test_mjd_vs_dateobs(void **state)
{
    rapid_db *db = ((test_db *)*state)->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_stats st;
    rapid_l2file rec, *v = NULL;
    run_log *L = calloc(1, sizeof *L);
    const char *d = dir("mjd"), *paths[1] = {d};
    int n = 0;
    const double mjd = 62271.0; /* 2029-05-15T00:00:00 */
    char path[700];
    const log_entry *e;

    snprintf(path, sizeof path, "%s/a_good.fits", d);
    l2_mjd(path, mjd, mjd, 1.0f);
    snprintf(path, sizeof path, "%s/b_near.fits", d); /* 0.9 s: agrees */
    l2_mjd(path, mjd + 0.01, mjd + 0.01 + 0.9 / 86400, 1.0f);
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.failed, 0);
    /* another version of a_good's exposure, with MJD-OBS 1.0 */
    snprintf(path, sizeof path, "%s/c_wrong.fits", d);
    l2_mjd(path, mjd, 1.0, 2.0f);
    snprintf(path, sizeof path, "%s/d_far.fits", d); /* 1.5 s: does not */
    l2_mjd(path, mjd, mjd + 1.5 / 86400, 3.0f);
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.unchanged, 2);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.versions, 0);
    e = find(L, "/c_wrong.fits");
    assert_true(e->failed && strstr(e->msg, "c_wrong.fits: ") &&
                strstr(e->msg, "MJD-OBS 1 ") &&
                strstr(e->msg, "DATE-OBS '2029-05-15T00:00:00.000000'") &&
                strstr(e->msg, "disagree"));
    e = find(L, "/d_far.fits");
    assert_true(e->failed && strstr(e->msg, "disagree by 1.5 s"));
    assert_int_equal(test_db_count(db, "l2files"), 2);
    assert_int_equal(rapid_db_l2files_by_time(db, 0, 1e6, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0].mjdobs == mjd && v[0].version == 1);
    free(v);
    assert_int_equal(rapid_l2file_read(path, &rec, &err), RAPID_E_KEY);
    free(L);
}

/* An L2 file of exposure e (detector centre ra, dec) with keywords removed
 * and one number set (set may be NULL). */
static void l2_edited(const char *path, double ra, double dec, int e,
                      float level, const char *const *drop, const char *set,
                      double value)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    test_l2 p;

    test_l2_init(&p, ra, dec, 62100 + e * 0.001, "H158", 3);
    p.size = 32;
    assert_int_equal(rapid_image_alloc(&img, 32, 32, level, &err), 0);
    assert_int_equal(test_l2_header(&p, &img.hdr), 0);
    for (; drop && *drop; drop++)
        rapid_header_delete(&img.hdr, *drop);
    if (set)
        rapid_header_set_double(&img.hdr, set, value, NULL);
    assert_int_equal(rapid_fits_write_image(path, &img, "SCI", &err), 0);
    rapid_image_release(&img);
}

/* A WCS that lost CRVAL, CRPIX or CD1_1, or one far from the boresight,
 * is that file's failure: never a new best version at the wrong place. */
static void test_wcs_keys_and_boresight(void **state)
{
    static const char *const lost[][3] = {
        {"CRVAL1", NULL}, {"CRVAL2", NULL}, {"CRPIX1", "CRPIX2", NULL},
        {"CD1_1", NULL}};
    rapid_db *db = ((test_db *)*state)->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_stats st;
    rapid_l2file *v = NULL;
    run_log *L = calloc(1, sizeof *L);
    const char *d = dir("wcskeys"), *paths[1] = {d};
    char path[700], want[64];
    const log_entry *e;
    int n = 0;
    size_t k;

    snprintf(path, sizeof path, "%s/a_good.fits", d);
    l2_edited(path, 150, 2, 0, 1.0f, NULL, NULL, 0);
    /* across RA 0 from its boresight (RA_TARG 0.05, centre 359.95) */
    snprintf(path, sizeof path, "%s/b_wrap.fits", d);
    l2_edited(path, 359.95, 2, 1, 1.0f, NULL, "RA_TARG", 0.05);
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.failed, 0);

    /* new versions of a_good's image, each with something wrong */
    for (k = 0; k < sizeof lost / sizeof lost[0]; k++) {
        snprintf(path, sizeof path, "%s/c_lost%zu.fits", d, k);
        l2_edited(path, 150, 2, 0, 2.0f + (float)k, lost[k], NULL, 0);
    }
    snprintf(path, sizeof path, "%s/d_far.fits", d);
    l2_edited(path, 150, 2, 0, 9.0f, NULL, "DEC_TARG", 3.5);
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.unchanged, 2);
    assert_int_equal(st.versions, 0);
    assert_int_equal(st.failed, 5);
    for (k = 0; k < sizeof lost / sizeof lost[0]; k++) {
        snprintf(path, sizeof path, "/c_lost%zu.fits", k);
        snprintf(want, sizeof want, "missing %s%s%s", lost[k][0],
                 lost[k][1] ? ", " : "", lost[k][1] ? lost[k][1] : "");
        e = find(L, path);
        if (!e->failed || !strstr(e->msg, want) || !strstr(e->msg, "WCS"))
            fail_msg("%s: \"%s\" does not say \"%s\"", path, e->msg, want);
    }
    e = find(L, "/d_far.fits");
    if (!e->failed || !strstr(e->msg, "d_far.fits: ") ||
        !strstr(e->msg, "(150.000000, 2.000000)") ||
        !strstr(e->msg, "(150.100000, 3.500000)") ||
        !strstr(e->msg, "boresight"))
        fail_msg("d_far: %s", e->msg);
    assert_int_equal(test_db_count(db, "l2files"), 2);
    assert_int_equal(rapid_db_l2files_by_time(db, 0, 1e6, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0].version == 1 && fabs(v[0].crval[0] - 150) < 1e-9);
    free(v);
    free(L);
}

/* A message that holds the whole why after a shortened path: starts with
 * head, holds "…" and each of parts. */
static void message_keeps(const char *msg, const char *head,
                          const char *const *parts)
{
    if (strlen(msg) >= RAPID_ERR_MAX || strncmp(msg, head, strlen(head)) != 0 ||
        !strstr(msg, "\xe2\x80\xa6"))
        fail_msg("shortened wrong (%zu bytes): %.200s ... %s", strlen(msg), msg, msg + (strlen(msg) > 200 ? strlen(msg) - 200 : 0));
    for (; *parts; parts++)
        if (!strstr(msg, *parts))
            fail_msg("'%s' lost from: %s", *parts, msg);
}

/* Error messages keep their reason when a path fills most of the record:
 * the path is shortened in the middle instead. */
static void test_long_paths(void **state)
{
    static const char *const nokeys[] = {"FILTER", NULL};
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file rec;
    char path[1100], seg[201], *big;
    const char *d = dir("long");
    int i;

    (void)state;
    memset(seg, 'p', 200);
    seg[200] = '\0';
    snprintf(path, sizeof path, "%s", d);
    for (i = 0; strlen(path) + 202 < 1000; i++) {
        snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", seg);
        assert_int_equal(mkdir(path, 0777), 0);
    }
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%.*s_text.fits",
             (int)(1010 - strlen(path) - 11), seg);
    assert_int_equal(strlen(path), 1010);
    write_bytes(path, "this is not FITS at all\n", 24);
    assert_int_equal(rapid_l2file_read(path, &rec, &err), RAPID_E_NOTFITS);
    {
        const char *want[] = {"_text.fits: ", "not a FITS file", NULL};
        message_keeps(err.msg, d, want);
    }
    strcpy(path + strlen(path) - 10, "_nokeys.fits");
    l2_without(test_path("nokeys.fits"), 1, nokeys); /* CFITSIO writes */
    assert_int_equal(rename(test_path("nokeys.fits"), path), 0); /* < 1 KiB */
    assert_int_equal(rapid_l2file_read(path, &rec, &err), RAPID_E_KEY);
    {
        const char *want[] = {"_nokeys.fits: ", "missing header keyword FILTER",
                              NULL};
        message_keeps(err.msg, d, want);
    }
    /* the record itself: a long argument, then a longer prefix */
    big = malloc(3001);
    memset(big, 'q', 3000);
    big[3000] = '\0';
    assert_int_equal(rapid_fail(&err, RAPID_E_IO, "%s: cannot write: %s", big,
                                "disk full"), RAPID_E_IO);
    {
        const char *want[] = {"q: cannot write: disk full", NULL};
        message_keeps(err.msg, "qqqq", want);
    }
    assert_int_equal(rapid_err_prefix(&err, "registering %s", big), RAPID_E_IO);
    {
        const char *want[] = {"q: cannot write: disk full", NULL};
        message_keeps(err.msg, "registering qqq", want);
    }
    free(big);
}

/* A PSF file: odd size, FILTER and SCA_NUM. */
static void psf_file(const char *path, const char *filter, int sca, int size,
                     float peak)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;

    assert_int_equal(rapid_image_alloc(&img, size, size, 0.0f, &err), 0);
    img.data[size * size / 2] = peak;
    rapid_header_set_str(&img.hdr, "FILTER", filter, NULL);
    rapid_header_set_long(&img.hdr, "SCA_NUM", sca, NULL);
    assert_int_equal(rapid_fits_write_image(path, &img, NULL, &err), 0);
    rapid_image_release(&img);
}

static void test_psfs_and_mixed_dirs(void **state)
{
    rapid_db *db = ((test_db *)*state)->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_stats st;
    rapid_psffile best;
    rapid_table tab = RAPID_TABLE_INIT;
    run_log *L = calloc(1, sizeof *L);
    char path[700], even[700];
    const char *d = dir("mixed"), *paths[2] = {d, NULL};
    int found = 0, s;

    for (s = 1; s <= 3; s++) {
        snprintf(path, sizeof path, "%s/psf_H158_%d.fits", d, s);
        psf_file(path, "H158", s, 15, 1.0f);
        snprintf(path, sizeof path, "%s/img_%d.fits", d, s);
        l2_file(path, 0, s, 1.0f, 0);
    }
    snprintf(path, sizeof path, "%s/truth.fits", d); /* a catalog */
    assert_int_equal(rapid_table_init(&tab, 3), 0);
    assert_non_null(rapid_table_add_f64(&tab, "ra", "deg"));
    assert_int_equal(rapid_fits_write_table(path, &tab, "TRUTH", &err), 0);
    rapid_table_release(&tab);
    snprintf(path, sizeof path, "%s/notes.txt", d); /* not a FITS name */
    write_bytes(path, "x", 1);

    ingest(db, RAPID_INGEST_PSF, paths, 1, L, &st);
    assert_int_equal(st.added, 3);
    assert_int_equal(st.skipped, 4); /* three images, one catalog */
    assert_int_equal(st.failed, 0);
    assert_int_equal(test_db_count(db, "psfs"), 3);
    assert_int_equal(test_db_count(db, "l2files"), 0);
    assert_true(find(L, "/img_2.fits")->skipped);
    ingest(db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.added, 3);
    assert_int_equal(st.skipped, 4);
    assert_int_equal(test_db_count(db, "l2files"), 3);
    assert_int_equal(test_db_count(db, "psfs"), 3);

    /* a new PSF for (H158, 2), and an even-sized one named explicitly */
    snprintf(path, sizeof path, "%s/psf_H158_2.fits", d);
    psf_file(path, "H158", 2, 15, 2.0f);
    snprintf(even, sizeof even, "%s/even.fits", test_tmpdir());
    psf_file(even, "H158", 4, 16, 1.0f);
    paths[1] = even;
    ingest(db, RAPID_INGEST_PSF, paths, 2, L, &st);
    assert_int_equal(st.versions, 1);
    assert_int_equal(st.unchanged, 2);
    assert_int_equal(st.failed, 1);
    assert_non_null(strstr(find(L, "/even.fits")->msg, "odd"));
    assert_int_equal(rapid_db_best_psffile(db, 2, 2, &best, &found, &err), 0);
    assert_int_equal(found, 1);
    assert_int_equal(best.version, 2);
    assert_non_null(strstr(best.filename, "psf_H158_2.fits"));
    /* an image named explicitly is tried, and refused as a PSF */
    snprintf(path, sizeof path, "%s/img_1.fits", d);
    paths[0] = path;
    ingest(db, RAPID_INGEST_PSF, paths, 1, L, &st);
    assert_int_equal(st.failed, 1);
    free(L);
}

/* PSF files without FILTER or SCA_NUM: each is that file's failure, named
 * with the keyword, and the good ones of the same run go in. */
static void test_psf_missing_keys(void **state)
{
    rapid_db *db = ((test_db *)*state)->db;
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_ingest_stats st;
    run_log *L = calloc(1, sizeof *L);
    char path[700], named[700];
    const char *d = dir("psfkeys"), *paths[2] = {d, named};
    const log_entry *e;

    snprintf(path, sizeof path, "%s/psf_good_1.fits", d);
    psf_file(path, "H158", 1, 15, 1.0f);
    snprintf(path, sizeof path, "%s/psf_good_2.fits", d);
    psf_file(path, "H158", 2, 15, 1.0f);
    assert_int_equal(rapid_image_alloc(&img, 15, 15, 0.0f, &err), 0);
    rapid_header_set_long(&img.hdr, "SCA_NUM", 3, NULL);
    snprintf(path, sizeof path, "%s/psf_nofilter.fits", d);
    assert_int_equal(rapid_fits_write_image(path, &img, NULL, &err), 0);
    rapid_header_delete(&img.hdr, "SCA_NUM");
    rapid_header_set_str(&img.hdr, "FILTER", "H158", NULL);
    snprintf(named, sizeof named, "%s/psf_nosca.fits", test_tmpdir());
    assert_int_equal(rapid_fits_write_image(named, &img, NULL, &err), 0);
    rapid_image_release(&img);

    ingest(db, RAPID_INGEST_PSF, paths, 2, L, &st);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.failed, 2);
    assert_int_equal(test_db_count(db, "psfs"), 2);
    e = find(L, "/psf_nofilter.fits");
    assert_true(e->failed && strstr(e->msg, "psf_nofilter.fits: ") &&
                strstr(e->msg, "missing header keyword FILTER"));
    e = find(L, "/psf_nosca.fits");
    assert_true(e->failed && strstr(e->msg, "psf_nosca.fits: ") &&
                strstr(e->msg, "missing header keyword SCA_NUM"));
    {
        rapid_psffile rec;
        assert_int_equal(rapid_psffile_read(path, &rec, &err), RAPID_E_KEY);
    }
    free(L);
}

/* -------------------------------------------------------------- faults */

/* n files, exposures e0.. with two detectors each. */
static void many_files(const char *d, int n)
{
    char path[700];
    int i;

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%04d.fits", d, i);
        l2_file(path, i / 2, 1 + i % 2, (float)i, 0);
    }
}

static void slow_progress(long done, long total, void *arg)
{
    struct timespec ts = {0, 3000000};

    (void)done, (void)total, (void)arg;
    nanosleep(&ts, NULL); /* so that the kill lands inside a transaction */
}

/* In a child: ingest paths into url and exit (0: all went in).  _exit, so
 * that nothing of the parent's (cmocka, its connection) is touched. */
static pid_t child_ingest(const char *url, const char *const *paths, int n,
                          int batch, int slow)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        rapid_err err = RAPID_ERR_INIT;
        rapid_ingest_opts o;
        rapid_ingest_stats st;
        rapid_db *db = NULL;
        int rc;

        rapid_ingest_opts_init(&o);
        o.batch = batch;
        o.progress = slow ? slow_progress : NULL;
        rc = rapid_db_open(&db, url, 0, &err) ||
             rapid_ingest(db, RAPID_INGEST_L2, paths, n, &o, &st, &err);
        if (rc)
            fprintf(stderr, "child: %s\n", err.msg);
        rapid_db_close(db);
        _exit(rc || st.failed ? 1 : 0);
    }
    return pid;
}

static void test_killed_halfway(void **state)
{
    test_db *t = *state;
    rapid_ingest_stats st;
    run_log *L = calloc(1, sizeof *L);
    const char *d = dir("kill"), *paths[1] = {d};
    struct timespec ts = {0, 2000000};
    int64_t n = 0, files, meta, exps;
    int status = 0, i;
    pid_t pid;

    many_files(d, 300);
    pid = child_ingest(t->url, paths, 1, 25, 1);
    for (i = 0; i < 5000 && n < 50; i++) {
        nanosleep(&ts, NULL);
        n = test_db_count(t->db, "l2files");
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* whole batches only: each image with its meta and exposure, or not */
    files = test_db_count(t->db, "l2files");
    meta = test_db_count(t->db, "l2filemeta");
    exps = test_db_count(t->db, "exposures");
    assert_true(files >= 50 && files < 300);
    assert_int_equal(files % 25, 0);
    assert_int_equal(meta, files);
    assert_int_equal(exps, files / 2);
    /* run again: the rest goes in, nothing twice */
    ingest(t->db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.unchanged, files);
    assert_int_equal(st.added, 300 - files);
    assert_int_equal(test_db_count(t->db, "l2files"), 300);
    assert_int_equal(test_db_count(t->db, "l2filemeta"), 300);
    assert_int_equal(test_db_count(t->db, "exposures"), 150);
    free(L);
}

static void test_two_at_once(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file *v = NULL;
    const char *d = dir("two"), *paths[1] = {d};
    const char **rev = calloc(200, sizeof *rev);
    char (*names)[700] = calloc(200, sizeof *names);
    int status[2] = {-1, -1}, i, n = 0;
    pid_t a, b;

    many_files(d, 200);
    for (i = 0; i < 200; i++) { /* the other one takes them backwards */
        snprintf(names[i], sizeof names[i], "%s/f%04d.fits", d, 199 - i);
        rev[i] = names[i];
    }
    a = child_ingest(t->url, paths, 1, 20, 0);
    b = child_ingest(t->url, rev, 200, 30, 0);
    assert_int_equal(waitpid(a, &status[0], 0), a);
    assert_int_equal(waitpid(b, &status[1], 0), b);
    assert_true(WIFEXITED(status[0]) && WEXITSTATUS(status[0]) == 0);
    assert_true(WIFEXITED(status[1]) && WEXITSTATUS(status[1]) == 0);
    assert_int_equal(test_db_count(t->db, "l2files"), 200);
    assert_int_equal(test_db_count(t->db, "l2filemeta"), 200);
    assert_int_equal(test_db_count(t->db, "exposures"), 100);
    assert_int_equal(rapid_db_l2files_by_time(t->db, 0, 1e6, &v, &n, &err), 0);
    assert_int_equal(n, 200);
    for (i = 0; i < n; i++) {
        assert_int_equal(v[i].version, 1);
        assert_int_equal(v[i].vbest, 1);
    }
    free(v);
    free(rev);
    free(names);
}

/* Another session takes a lock once the first batch is in: PostgreSQL an
 * exclusive lock on l2files, SQLite a write transaction. */
typedef struct locker {
    const test_db *t;
    run_log *log;
    PGconn *pg;
    sqlite3 *sq;
} locker;

static void lock_after_first_batch(const rapid_ingest_event *ev, void *arg)
{
    locker *k = arg;
    PGresult *r = NULL;

    on_report(ev, k->log);
    if (k->pg || k->sq)
        return;
    if (k->t->pg) {
        k->pg = PQconnectdb(k->t->url);
        assert_int_equal(PQstatus(k->pg), CONNECTION_OK);
        r = PQexec(k->pg, "BEGIN; LOCK TABLE l2files IN ACCESS EXCLUSIVE MODE");
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    } else {
        assert_int_equal(sqlite3_open(k->t->url + 7, &k->sq), SQLITE_OK);
        assert_int_equal(sqlite3_exec(k->sq, "BEGIN IMMEDIATE", NULL, NULL,
                                      NULL), SQLITE_OK);
    }
}

/* A lock held by another session: the ingest waits the lock timeout, then
 * stops with a message that says so and what was committed before. */
static void test_lock_held(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_opts o;
    rapid_ingest_stats st;
    run_log *L = calloc(1, sizeof *L);
    locker k = {t, L, NULL, NULL};
    const char *d = dir("locked"), *paths[1] = {d};
    int rc;

    many_files(d, 6);
    rapid_ingest_opts_init(&o);
    o.batch = 2;
    o.report = lock_after_first_batch, o.arg = &k;
    assert_int_equal(rapid_db_set_lock_timeout(t->db, 0.5, &err), 0);
    assert_true(rapid_db_lock_timeout(t->db) == 0.5);
    alarm(120); /* a wait that never ends fails the test */
    rc = rapid_ingest(t->db, RAPID_INGEST_L2, paths, 1, &o, &st, &err);
    alarm(0);
    assert_int_equal(rc, RAPID_E_DB);
    fprintf(stderr, "  (%s)\n", err.msg);
    assert_non_null(strstr(err.msg, "lock timeout (0.5 s) ran out"));
    assert_non_null(strstr(err.msg, "; committed before the failure: 2 of 6 "
                                    "files"));
    assert_int_equal(L->n, 2);
    if (k.pg)
        PQfinish(k.pg); /* the lock goes with its session */
    else
        sqlite3_close(k.sq);
    assert_int_equal(test_db_count(t->db, "l2files"), 2);
    /* the lock gone, running it again does the rest */
    ingest(t->db, RAPID_INGEST_L2, paths, 1, L, &st);
    assert_int_equal(st.unchanged, 2);
    assert_int_equal(st.added, 4);
    assert_int_equal(rapid_db_set_lock_timeout(t->db, 0, &err), RAPID_E_ARG);
    free(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) TEST_DB(f, &use_pg)
        T(test_md5),
        T(test_ingest_and_reingest),
        T(test_odd_names),
        T(test_bad_files),
        T(test_psfs_and_mixed_dirs),
        T(test_psf_missing_keys),
        T(test_mjd_vs_dateobs),
        T(test_wcs_keys_and_boresight),
        T(test_long_paths),
        T(test_killed_halfway),
        T(test_two_at_once),
        T(test_lock_held),
#undef T
    };
    int rc;

    use_pg = 0;
    rc = cmocka_run_group_tests_name("ingest sqlite", tests, NULL, NULL);
    if (test_backends() > 1) {
        use_pg = 1;
        rc |= cmocka_run_group_tests_name("ingest postgresql", tests, NULL, NULL);
    }
    return rc;
}
