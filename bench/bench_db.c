/* bench_db.c - the operations database: header ingest and the queries the
 * launch step makes, on SQLite and (with --pg) PostgreSQL.
 *
 *   bench_db [--files N] [--rows N] [--pg ADMIN_URL] [--tmp DIR]
 *
 * 1. N small L2 files (16x16 pixels, full L2 headers, 4th-order SIP, the
 *    footprint of a real 4088x4088 detector) are written beforehand, then
 *    ingested into an empty database (timed: reading, MD5, WCS, footprint,
 *    database), and ingested again (all unchanged).
 * 2. The database is filled to --rows images of a synthetic survey (18
 *    detectors per pointing over ~4 square degrees, 8 filters, one year),
 *    then two queries are timed: the best L2 files of one night (range), and
 *    the 25 prior images of a filter nearest a tile centre (prior).
 * One line per figure: back end, what, count, seconds, rate or ms.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "benchutil.h"
#include "rapid/db.h"
#include "rapid/filters.h"
#include "rapid/fits.h"
#include "rapid/ingest.h"
#include "rapid/tile.h"
#include "rapid/wcs.h"

#define FIELD_RA 10.0
#define FIELD_DEC -44.0
#define FIELD_HALF 1.0 /* degrees of Dec either side; RA scaled */
#define MJD0 62000.0

/* Pointing k of the survey: boresight, roll and time; detector sca's
 * centre sits on a 6x3 grid around the boresight. */
typedef struct pointing {
    double ra, dec, pa, mjd;
    int fid;
} pointing;

static void survey_pointing(int k, int npointings, pointing *p)
{
    uint64_t s = 0x5eed0000ull + (uint64_t)k;

    p->dec = FIELD_DEC + FIELD_HALF * (2 * bench_uniform(&s) - 1);
    p->ra = FIELD_RA + FIELD_HALF * (2 * bench_uniform(&s) - 1) /
                           cos(FIELD_DEC * M_PI / 180);
    p->pa = 360 * bench_uniform(&s);
    p->mjd = MJD0 + 365.0 * k / npointings;
    p->fid = 1 + k % RAPID_NFILTERS;
}

static int detector_wcs(const pointing *p, int sca, int size, rapid_wcs *w)
{
    double step = 0.13, c = cos(p->pa * M_PI / 180), s = sin(p->pa * M_PI / 180);
    double dx = ((sca - 1) % 6 - 2.5) * step, dy = ((sca - 1) / 6 - 1) * step;
    double crval[2], crpix[2], cd[2][2], scale;
    rapid_sip sip;

    crval[1] = p->dec + (dx * s + dy * c);
    crval[0] = p->ra + (dx * c - dy * s) / cos(crval[1] * M_PI / 180);
    scale = RAPID_PIXSCALE * RAPID_SCA_PIX / size / 3600.0;
    crpix[0] = crpix[1] = (size + 1) / 2.0;
    cd[0][0] = -scale * c, cd[0][1] = scale * s;
    cd[1][0] = scale * s, cd[1][1] = scale * c;
    memset(&sip, 0, sizeof sip);
    sip.a_order = sip.b_order = 4;
    sip.a[2][0] = 2e-8 * (4088.0 / size) * (4088.0 / size);
    sip.b[0][2] = 1.5e-8 * (4088.0 / size) * (4088.0 / size);
    return rapid_wcs_from_terms(w, crval, crpix, cd, &sip, size, size, NULL);
}

static void l2_header(const pointing *p, int sca, rapid_header *h)
{
    char date[RAPID_DB_TIME_MAX];

    rapid_time_format(rapid_time_from_mjd(p->mjd), date);
    rapid_header_set_str(h, "DATE-OBS", date, NULL);
    rapid_header_set_double(h, "MJD-OBS", p->mjd, NULL);
    rapid_header_set_str(h, "FILTER", rapid_filter_by_fid(p->fid)->name, NULL);
    rapid_header_set_double(h, "EXPTIME", 140.0, NULL);
    rapid_header_set_long(h, "SCA_NUM", sca, NULL);
    rapid_header_set_double(h, "RA_TARG", p->ra, NULL);
    rapid_header_set_double(h, "DEC_TARG", p->dec, NULL);
    rapid_header_set_double(h, "PA_OBSY", p->pa, NULL);
    rapid_header_set_double(h, "PA_FPA", p->pa, NULL);
    rapid_header_set_double(h, "ZPTMAG", 26.3, NULL);
    rapid_header_set_double(h, "SKY_MEAN", 40.0, NULL);
}

/* File i of the ingest set: pointing i / 18, detector 1 + i % 18. */
static int write_files(const char *dir, int n, int npointings)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    char path[1100];
    pointing p;
    int i, rc = 0;

    for (i = 0; i < n && !rc; i++) {
        survey_pointing(i / RAPID_NSCA, npointings, &p);
        if ((rc = rapid_image_alloc(&img, 16, 16, 30.0f, &err)) ||
            (rc = detector_wcs(&p, 1 + i % RAPID_NSCA, 16, &w)) ||
            (rc = rapid_wcs_to_header(&w, &img.hdr, &err)))
            break;
        l2_header(&p, 1 + i % RAPID_NSCA, &img.hdr);
        snprintf(path, sizeof path, "%s/l2_%06d.fits", dir, i);
        rc = rapid_fits_write_image(path, &img, "SCI", &err);
        rapid_wcs_release(&w);
        rapid_image_release(&img);
    }
    if (rc)
        fprintf(stderr, "bench_db: writing files: %s\n", err.msg);
    return rc;
}

/* Rows first..last-1 of the survey straight into the database, a thousand
 * to a transaction (not timed: this only makes the table large). */
static int fill(rapid_db *db, int first, int last, int npointings)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_l2file r;
    rapid_db_outcome out;
    rapid_header h = RAPID_HEADER_INIT;
    pointing p;
    int i, rc = 0;

    for (i = first; i < last && !rc; i++) {
        if ((i - first) % 1000 == 0 && (rc = rapid_db_begin(db, &err)))
            break;
        survey_pointing(i / RAPID_NSCA, npointings, &p);
        rapid_header_init(&h);
        if ((rc = detector_wcs(&p, 1 + i % RAPID_NSCA, RAPID_SCA_PIX, &w)) ||
            (rc = rapid_wcs_to_header(&w, &h, &err)))
            break;
        l2_header(&p, 1 + i % RAPID_NSCA, &h);
        rc = rapid_l2file_from_headers(&h, NULL, RAPID_SCA_PIX, RAPID_SCA_PIX,
                                       &r, &err);
        rapid_wcs_release(&w);
        rapid_header_release(&h);
        if (rc)
            break;
        snprintf(r.filename, sizeof r.filename, "/survey/l2_%06d.fits", i);
        snprintf(r.checksum, sizeof r.checksum, "%032x", (unsigned)i);
        if ((rc = rapid_db_add_l2file(db, &r, &out, &err)))
            break;
        if ((i - first + 1) % 1000 == 0 || i + 1 == last)
            rc = rapid_db_commit(db, &err);
    }
    if (rc) {
        rapid_db_rollback(db);
        fprintf(stderr, "bench_db: filling: %s\n", err.msg);
    }
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report_times(const char *be, const char *what, double *t, int n,
                         double rows)
{
    double sum = 0;
    int i;

    qsort(t, (size_t)n, sizeof *t, cmp_double);
    for (i = 0; i < n; i++)
        sum += t[i];
    printf("%-10s %-22s %d queries: mean %.2f ms, median %.2f ms, p95 %.2f ms,"
           " max %.2f ms (%.0f rows each on average)\n", be, what, n,
           1e3 * sum / n, 1e3 * t[n / 2], 1e3 * t[(int)(0.95 * n)],
           1e3 * t[n - 1], rows / n);
}

static int queries(rapid_db *db, const char *be, int npointings)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_l2file *v = NULL;
    rapid_prior_query q;
    double t[200], t0, rows = 0;
    uint64_t s = 7;
    int i, n = 0, nq = 200, rc = 0;

    (void)npointings;
    for (i = 0; i < nq && !rc; i++) { /* one night, anywhere in the year */
        double m = MJD0 + floor(364 * bench_uniform(&s));
        t0 = bench_now();
        rc = rapid_db_l2files_by_time(db, m, m + 1, &v, &n, &err);
        t[i] = bench_now() - t0;
        rows += n;
        free(v);
    }
    if (!rc)
        report_times(be, "range (one night)", t, nq, rows);
    for (i = 0, rows = 0; i < nq && !rc; i++) { /* a tile inside the field */
        double dec = FIELD_DEC + 0.8 * (2 * bench_uniform(&s) - 1);
        double ra = FIELD_RA + 0.8 * (2 * bench_uniform(&s) - 1) / cos(dec * M_PI / 180);
        q.field = rapid_tile_rtid(RAPID_TILE_NSIDE, ra, dec);
        q.fid = 1 + (int)(8 * bench_uniform(&s));
        q.mjd_min = -INFINITY;
        q.mjd_max = MJD0 + 365 * bench_uniform(&s);
        q.limit = 25;
        t0 = bench_now();
        rc = rapid_db_prior_l2files(db, &q, &v, &n, &err);
        t[i] = bench_now() - t0;
        rows += n;
        free(v);
    }
    if (!rc)
        report_times(be, "prior (25 nearest)", t, nq, rows);
    if (rc)
        fprintf(stderr, "bench_db: %s\n", err.msg);
    return rc;
}

static int pg_admin(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        fprintf(stderr, "bench_db: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int run(const char *be, const char *url, const char *dir, int nfiles,
               int nrows, const char *analyze_url)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_ingest_stats st;
    rapid_ingest_opts o;
    rapid_db *db = NULL;
    const char *paths[1] = {dir};
    int npointings = (nrows + RAPID_NSCA - 1) / RAPID_NSCA, rc;
    double t0, dt;

    rapid_ingest_opts_init(&o);
    if ((rc = rapid_db_open(&db, url, RAPID_DB_CREATE, &err)) ||
        (rc = rapid_db_init(db, NULL, &err)))
        goto cleanup;
    t0 = bench_now();
    if ((rc = rapid_ingest(db, RAPID_INGEST_L2, paths, 1, &o, &st, &err)))
        goto cleanup;
    dt = bench_now() - t0;
    printf("%-10s %-22s %ld files: %.2f s, %.0f images/s (%ld added, %ld failed)\n",
           be, "ingest (new)", st.files, dt, st.files / dt, st.added, st.failed);
    t0 = bench_now();
    if ((rc = rapid_ingest(db, RAPID_INGEST_L2, paths, 1, &o, &st, &err)))
        goto cleanup;
    dt = bench_now() - t0;
    printf("%-10s %-22s %ld files: %.2f s, %.0f images/s (%ld unchanged)\n", be,
           "ingest (again)", st.files, dt, st.files / dt, st.unchanged);
    t0 = bench_now();
    if ((rc = fill(db, nfiles, nrows, npointings)))
        goto cleanup;
    fprintf(stderr, "%s: filled to %d rows in %.1f s\n", be, nrows, bench_now() - t0);
    if (analyze_url && (rc = pg_admin(analyze_url, "ANALYZE")))
        goto cleanup;
    rc = queries(db, be, npointings);
cleanup:
    if (rc && err.msg[0])
        fprintf(stderr, "bench_db: %s\n", err.msg);
    rapid_db_close(db);
    return rc;
}

int main(int argc, char **argv)
{
    const char *pg = NULL, *tmpbase = getenv("TMPDIR");
    char dir[1024], url[1200], cmd[1200], pgurl[1200], name[64];
    int nfiles = 10000, nrows = 100000, i, rc = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--files") == 0 && i + 1 < argc)
            nfiles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            nrows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc)
            pg = argv[++i];
        else if (strcmp(argv[i], "--tmp") == 0 && i + 1 < argc)
            tmpbase = argv[++i];
        else {
            fprintf(stderr, "usage: bench_db [--files N] [--rows N] "
                            "[--pg ADMIN_URL] [--tmp DIR]\n");
            return 2;
        }
    }
    if (nfiles < 1 || nrows < nfiles)
        return 2;
    snprintf(dir, sizeof dir, "%s/bench_db.XXXXXX", tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    if (write_files(dir, nfiles, (nrows + RAPID_NSCA - 1) / RAPID_NSCA))
        return 1;
    snprintf(url, sizeof url, "sqlite:%s/rapid.db", dir);
    rc = run("sqlite", url, dir, nfiles, nrows, NULL);
    if (!rc && pg) {
        /* a database of its own on the server, dropped afterwards */
        const char *slash = strchr(strstr(pg, "://") ? strstr(pg, "://") + 3 : pg, '/');
        snprintf(name, sizeof name, "rapid_bench_%ld", (long)getpid());
        snprintf(cmd, sizeof cmd, "CREATE DATABASE %s", name);
        snprintf(pgurl, sizeof pgurl, "%.*s/%s",
                 (int)(slash ? slash - pg : (long)strlen(pg)), pg, name);
        if (!(rc = pg_admin(pg, cmd)))
            rc = run("postgresql", pgurl, dir, nfiles, nrows, pgurl);
        snprintf(cmd, sizeof cmd, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        pg_admin(pg, cmd);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_db: could not remove %s\n", dir);
    return rc ? 1 : 0;
}
