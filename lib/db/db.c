/* db.c - the operations database: URLs, transactions, times, the schema.
 *
 * The schema (db_schema.c) is written once with a few tokens for what the
 * two dialects spell differently (identity keys, timestamps, "now"); init
 * creates it, or upgrades an older version, recording each version in
 * schema_version.  Queries live in
 * db_l2.c (images, PSFs, the spatial search) and db_products.c (versions,
 * reference and difference images, jobs).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <chealpix.h>

#include "db_internal.h"
#include "rapid/filters.h"
#include "rapid/timeutil.h"

/* ------------------------------------------------------------ URLs */

void rapid_db_default_url(char *out, size_t outsz)
{
    const char *url = getenv("RAPID_DB"), *work = getenv("RAPID_WORK");

    if (url && *url)
        snprintf(out, outsz, "%s", url);
    else
        snprintf(out, outsz, "sqlite:%s/rapid.db", work && *work ? work : "work");
}

#define URL_FORMS "use sqlite:PATH or postgresql://[user@]host[:port]/dbname"

/* The port of one host of a PostgreSQL URL (h .. end, "host[:port]" or
 * "[v6addr][:port]") is missing or a number 1..65535. */
static int port_ok(const char *h, const char *end)
{
    const char *p = h;
    long v = 0;

    if (*h == '[' && !(p = memchr(h, ']', (size_t)(end - h))))
        return 0;
    if (!(p = memchr(p, ':', (size_t)(end - p))) || ++p == end)
        return 1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || (v = 10 * v + (*p - '0')) > 65535)
            return 0;
    }
    return v >= 1;
}

static const char *pg_problem(const char *url)
{
    const char *auth = strstr(url, "://") + 3, *end, *h, *at;

    end = auth + strcspn(auth, "/?");
    for (h = auth, at = NULL; h < end; h++) /* the last '@' is the user's */
        if (*h == '@')
            at = h;
    for (h = at ? at + 1 : auth; h < end; h++) {
        const char *comma = memchr(h, ',', (size_t)(end - h));
        const char *stop = comma ? comma : end;
        if (!port_ok(h, stop))
            return "the port must be a number in 1..65535";
        h = stop;
    }
    return NULL;
}

/* A '?' followed by name=: an SQLite URI query such as "?mode=ro", which
 * a plain path would take as part of the file name.  Other '?' are file
 * names' own. */
static int looks_like_query(const char *path)
{
    const char *q, *c;

    for (q = strchr(path, '?'); q; q = strchr(q + 1, '?')) {
        for (c = q + 1; isalnum((unsigned char)*c) || *c == '_'; c++)
            ;
        if (c > q + 1 && *c == '=')
            return 1;
    }
    return 0;
}

const char *rapid_db_url_problem(const char *url)
{
    const char *path;

    if (!url)
        return "no URL";
    if (strncmp(url, "postgresql://", 13) == 0 ||
        strncmp(url, "postgres://", 11) == 0)
        return pg_problem(url);
    if (strncmp(url, "sqlite:", 7) != 0)
        return "not a database URL (" URL_FORMS ")";
    path = url + 7;
    if (strncmp(path, "//", 2) == 0) {
        if (path[2] != '/')
            return "after 'sqlite://' comes an absolute path "
                   "(sqlite:///tmp/x.db is /tmp/x.db); a relative path is "
                   "written sqlite:dir/x.db";
        path += 2;
    }
    if (!*path)
        return "no file name after 'sqlite:'";
    if (looks_like_query(path))
        return "SQLite query options ('?name=value') are not taken: the "
               "path would be the file's name, '?' and all (read-only "
               "commands open the database read-only by themselves)";
    return NULL;
}

/* Copy url with the password of "scheme://user:password@host" and of a
 * "password=" parameter replaced by "***". */
static void mask_url(const char *url, char *out, size_t outsz)
{
    const char *auth = strstr(url, "://"), *at, *colon, *end, *pw;
    char tmp[1024];

    snprintf(out, outsz, "%s", url);
    if (auth) {
        auth += 3;
        end = auth + strcspn(auth, "/?");
        at = memchr(auth, '@', (size_t)(end - auth));
        colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon)
            snprintf(out, outsz, "%.*s***%s", (int)(colon + 1 - url), url, at);
    }
    if ((pw = strstr(out, "password=")) != NULL) {
        end = pw + 9 + strcspn(pw + 9, "&");
        snprintf(tmp, sizeof tmp, "%.*s***%s", (int)(pw + 9 - out), out, end);
        snprintf(out, outsz, "%s", tmp);
    }
}

int db_fail(rapid_db *db, rapid_err *err, const char *what, const char *why)
{
    return rapid_fail(err, RAPID_E_DB, "%s: %s: %s", db->url, what, why);
}

static int check_q3c(rapid_db *db, rapid_err *err);

int rapid_db_check_url(const char *url, rapid_err *err)
{
    char shown[1024];
    const char *why = rapid_db_url_problem(url);

    if (!why)
        return 0;
    mask_url(url ? url : "", shown, sizeof shown);
    return rapid_fail(err, RAPID_E_ARG, "%s: %s", shown, why);
}

int rapid_db_open(rapid_db **out, const char *url, int flags, rapid_err *err)
{
    char def[1024];
    rapid_db *db = NULL;
    const char *target = NULL;
    int rc = 0;

    *out = NULL;
    if ((flags & RAPID_DB_CREATE) && (flags & RAPID_DB_READONLY))
        return rapid_fail(err, RAPID_E_ARG, "a database cannot be opened to "
                          "be created and read only at once");
    if (!url || !*url) {
        rapid_db_default_url(def, sizeof def);
        url = def;
    }
    if (!(db = calloc(1, sizeof *db)))
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory");
    mask_url(url, db->url, sizeof db->url);
    db->lock_timeout = RAPID_DB_LOCK_TIMEOUT;
    if ((rc = rapid_db_check_url(url, err)) != 0) {
        free(db);
        return rc;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        db->ops = &rapid_db_sqlite_ops;
        target = url + 7;
        if (strncmp(target, "//", 2) == 0) /* sqlite:///abs/path */
            target += 2;
    } else if (strncmp(url, "postgresql://", 13) == 0 ||
               strncmp(url, "postgres://", 11) == 0) {
        db->ops = &rapid_db_pg_ops;
        db->pg = 1;
        target = url;
    }
    if ((rc = db->ops->open(db, target, flags, err)) != 0 ||
        (rc = check_q3c(db, err)) != 0) {
        rapid_db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void rapid_db_close(rapid_db *db)
{
    if (!db)
        return;
    if (db->txdepth > 0 && db->conn)
        db->ops->script(db, "ROLLBACK", NULL);
    db->ops->close(db);
    free(db);
}

const char *rapid_db_url(const rapid_db *db)
{
    return db->url;
}

const char *rapid_db_backend(const rapid_db *db)
{
    return db->ops->name;
}

int rapid_db_has_q3c(const rapid_db *db)
{
    return db->q3c;
}

int rapid_db_retryable(const rapid_db *db)
{
    return db->retryable;
}

int rapid_db_set_lock_timeout(rapid_db *db, double seconds, rapid_err *err)
{
    double old = db->lock_timeout;
    int rc;

    if (!(seconds > 0 && seconds <= 86400))
        return rapid_fail(err, RAPID_E_ARG, "%s: lock timeout %g s: must be "
                          "more than 0 and at most a day (86400 s)", db->url,
                          seconds);
    db->lock_timeout = seconds;
    if ((rc = db->ops->set_lock_timeout(db, err)) != 0)
        db->lock_timeout = old;
    return rc;
}

double rapid_db_lock_timeout(const rapid_db *db)
{
    return db->lock_timeout;
}

/* ------------------------------------------------- statements, rows */

int db_query(rapid_db *db, const char *sql, const db_val *p, int np,
             db_row_fn fn, void *arg, rapid_err *err)
{
    int rc;

    db->retryable = db->baddata = 0;
    rc = db->ops->query(db, sql, p, np, fn, arg, err);
    /* A value the schema refuses is the caller's, like any bad argument:
     * ingest then leaves out that file alone. */
    if (rc < 0 && db->baddata) {
        rc = RAPID_E_ARG;
        if (err)
            err->code = rc;
    }
    if (rc < 0 && db->txdepth > 0) /* > 0: a row visitor stopped early */
        db->txfailed = 1;
    return rc;
}

int db_col_null(const db_row *r, int c)
{
    return r->db->ops->col_null(r, c);
}

int64_t db_col_int(const db_row *r, int c)
{
    return db_col_null(r, c) ? 0 : r->db->ops->col_int(r, c);
}

double db_col_dbl(const db_row *r, int c)
{
    return db_col_null(r, c) ? NAN : r->db->ops->col_dbl(r, c);
}

const char *db_col_text(const db_row *r, int c)
{
    const char *s = db_col_null(r, c) ? NULL : r->db->ops->col_text(r, c);
    return s ? s : "";
}

static int row_int(const db_row *r, void *arg)
{
    *(int64_t *)arg = db_col_int(r, 0);
    return 0;
}

static int check_q3c(rapid_db *db, rapid_err *err)
{
    static const char sql[] =
        "SELECT count(*) FROM pg_extension WHERE extname = 'q3c'";
    int64_t n = 0;
    int rc;

    if (!db->pg)
        return 0;
    if ((rc = db_query(db, sql, NULL, 0, row_int, &n, err)) != 0)
        return rc;
    db->q3c = n > 0;
    return 0;
}

/* ------------------------------------------------------ transactions */

int db_tx_begin(rapid_db *db, rapid_err *err)
{
    int rc;

    if (db->txdepth++ > 0)
        return 0;
    db->txfailed = 0;
    db->retryable = 0;
    if ((rc = db->ops->script(db, db->ops->begin_sql, err)) != 0)
        db->txdepth = 0;
    return rc;
}

static const char commit_sql[] = "COMMIT";

int db_tx_end(rapid_db *db, int rc, rapid_err *err)
{
    int retry;

    if (rc)
        db->txfailed = 1;
    if (db->txdepth <= 0 || --db->txdepth > 0)
        return rc;
    if (!db->txfailed) {
        /* PostgreSQL: the COMMIT travels with the statements still in
         * the pipeline, one round trip for them all */
        if ((rc = db->pg ? db_query(db, commit_sql, NULL, 0, NULL, NULL, err)
                         : db->ops->script(db, commit_sql, err)) == 0)
            return 0;
    } else if (!rc) {
        rc = rapid_fail(err, RAPID_E_DB,
                        "%s: transaction rolled back: a statement in it "
                        "failed earlier", db->url);
    }
    /* The rollback must not hide why, or whether to retry. */
    retry = db->retryable;
    db->ops->script(db, "ROLLBACK", NULL);
    db->retryable = retry;
    return rc;
}

int rapid_db_begin(rapid_db *db, rapid_err *err)
{
    return db_tx_begin(db, err);
}

int rapid_db_begin_async(rapid_db *db, rapid_err *err)
{
    static const char begin[] = "BEGIN",
                      async[] = "SET LOCAL synchronous_commit = off";
    int rc;

    if (db->txdepth > 0 || !db->pg)
        return db_tx_begin(db, err);
    /* db_tx_begin's work, both statements in the pipeline: they travel
     * with the transaction's first statement that returns rows */
    db->txfailed = 0;
    db->retryable = 0;
    db->txdepth = 1;
    if ((rc = db_query(db, begin, NULL, 0, NULL, NULL, err)) != 0 ||
        (rc = db_query(db, async, NULL, 0, NULL, NULL, err)) != 0) {
        db->txdepth = 0;
        db->ops->script(db, "ROLLBACK", NULL);
        return rc;
    }
    return 0;
}

int rapid_db_commit(rapid_db *db, rapid_err *err)
{
    return db_tx_end(db, 0, err);
}

void rapid_db_rollback(rapid_db *db)
{
    if (db->txdepth > 0) {
        db->txdepth = 1;
        db_tx_end(db, RAPID_E_DB, NULL);
    }
}

/* ------------------------------------------------------------- times */

static void format_time_us(int64_t us, char out[RAPID_DB_TIME_MAX])
{
    int64_t day = us >= 0 ? us / 86400000000LL : -((-us + 86399999999LL) / 86400000000LL);
    int64_t rest = us - day * 86400000000LL;
    char buf[96]; /* room for any int, to keep the compiler's checks quiet */
    int y, m, d;

    rapid_civil_from_days(day, &y, &m, &d);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06d", y, m, d,
             (int)(rest / 3600000000LL), (int)(rest / 60000000 % 60),
             (int)(rest / 1000000 % 60), (int)(rest % 1000000));
    snprintf(out, RAPID_DB_TIME_MAX, "%.*s", RAPID_DB_TIME_MAX - 1, buf);
}

int rapid_time_parse(const char *s, double *unix_seconds, rapid_err *err)
{
    int64_t us = 0;

    if (!s || rapid_iso_parse_us(s, &us, NULL))
        return rapid_fail(err, RAPID_E_ARG,
                          "'%s' is not a date-time (YYYY-MM-DDThh:mm:ss[.f])",
                          s ? s : "(null)");
    *unix_seconds = (double)us / 1e6;
    return 0;
}

void rapid_time_format(double unix_seconds, char out[RAPID_DB_TIME_MAX])
{
    format_time_us((int64_t)llround(unix_seconds * 1e6), out);
}

double rapid_time_to_mjd(double unix_seconds)
{
    return unix_seconds / 86400.0 + RAPID_MJD_1970;
}

double rapid_time_from_mjd(double mjd)
{
    return (mjd - RAPID_MJD_1970) * 86400.0;
}

double rapid_time_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The canonical text of a date-time (as both back ends store and return
 * it); "" stays "" (a NULL timestamp). */
int db_time_canon(const char *in, char out[RAPID_DB_TIME_MAX])
{
    int64_t us = 0;
    int rc;

    out[0] = '\0';
    if (!in || !*in)
        return 0;
    if ((rc = rapid_iso_parse_us(in, &us, NULL)) != 0)
        return rc;
    format_time_us(us, out);
    return 0;
}

/* ------------------------------------------------------------ schema */

/* The schema's text is in db_schema.c; here, how the two dialects spell
 * its tokens, and how it is applied. */
static const struct {
    const char *token, *sqlite, *pg;
} dialect[] = {
    {"@ID@", "INTEGER PRIMARY KEY",
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
    {"@KEYREF@", "INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"},
    {"@TS@", "TEXT", "TIMESTAMP"},
    {"@NOW@", "(strftime('%Y-%m-%dT%H:%M:%f000', 'now'))",
     "(now() AT TIME ZONE 'UTC')"},
};

/* The schema text with the dialect's spelling of each token; caller frees. */
static char *expand(const char *tmpl, int pg)
{
    size_t n = strlen(tmpl) * 3 + 1, k = 0, i, len;
    char *out = malloc(n);

    if (!out)
        return NULL;
    while (*tmpl) {
        for (i = 0; i < sizeof dialect / sizeof dialect[0]; i++) {
            len = strlen(dialect[i].token);
            if (strncmp(tmpl, dialect[i].token, len) == 0)
                break;
        }
        if (i < sizeof dialect / sizeof dialect[0]) {
            const char *w = pg ? dialect[i].pg : dialect[i].sqlite;
            memcpy(out + k, w, strlen(w));
            k += strlen(w);
            tmpl += len;
        } else {
            out[k++] = *tmpl++;
        }
    }
    out[k] = '\0';
    return out;
}

int db_script(rapid_db *db, const char *tmpl, rapid_err *err)
{
    char *sql = expand(tmpl, db->pg);
    int rc;

    if (!sql)
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory");
    rc = db->ops->script(db, sql, err);
    if (rc && db->txdepth > 0)
        db->txfailed = 1;
    free(sql);
    return rc;
}

static int has_version_table(rapid_db *db, int *yes, rapid_err *err)
{
    static const char sq[] = "SELECT count(*) FROM sqlite_master"
                             " WHERE type = 'table' AND name = 'schema_version'";
    static const char pg[] =
        "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_version'"
        " AND schemaname = current_schema()";
    int64_t n = 0;
    int rc = db_query(db, db->pg ? pg : sq, NULL, 0, row_int, &n, err);

    *yes = n > 0;
    return rc;
}

int rapid_db_schema_version(rapid_db *db, int *version, rapid_err *err)
{
    static const char sql[] = "SELECT coalesce(max(version), 0) FROM schema_version";
    int64_t v = 0;
    int rc, yes = 0;

    *version = 0;
    if ((rc = has_version_table(db, &yes, err)) != 0 || !yes)
        return rc;
    if ((rc = db_query(db, sql, NULL, 0, row_int, &v, err)) == 0)
        *version = (int)v;
    return rc;
}

int rapid_db_check_schema(rapid_db *db, rapid_err *err)
{
    int rc, v = 0;

    if ((rc = rapid_db_schema_version(db, &v, err)) != 0)
        return rc;
    if (v == 0)
        return rapid_fail(err, RAPID_E_DB,
                          "%s: holds no rapid schema (create it with 'rapid "
                          "db init --db %s')", db->url, db->url);
    if (v < RAPID_DB_SCHEMA_VERSION)
        return rapid_fail(err, RAPID_E_DB,
                          "%s: schema version %d is older than this rapid's "
                          "%d (upgrade it with 'rapid db init --db %s')",
                          db->url, v, RAPID_DB_SCHEMA_VERSION, db->url);
    if (v > RAPID_DB_SCHEMA_VERSION)
        return rapid_fail(err, RAPID_E_DB,
                          "%s: schema version %d is newer than this rapid's "
                          "%d: use a newer rapid", db->url, v,
                          RAPID_DB_SCHEMA_VERSION);
    return 0;
}

/* The fixed rows: filters, detectors and pipelines.  Bound values, and
 * no-ops when present, so that init can run again. */
static int seed(rapid_db *db, rapid_err *err)
{
    static const char f_sql[] = "INSERT INTO filters(fid, filter) VALUES(?, ?)"
                                " ON CONFLICT (fid) DO NOTHING";
    static const char s_sql[] = "INSERT INTO scas(sca) VALUES(?)"
                                " ON CONFLICT (sca) DO NOTHING";
    static const char p_sql[] = "INSERT INTO pipelines(ppid, priority, script)"
                                " VALUES(?, ?, ?) ON CONFLICT (ppid) DO NOTHING";
    static const struct {
        int ppid, priority;
        const char *script;
    } pipes[] = {{RAPID_PPID_REFIMAGE, 1, "refimage"},
                 {RAPID_PPID_SCIENCE, 2, "science"},
                 {RAPID_PPID_POSTPROC, 3, "postproc"}};
    int rc = 0, i;

    for (i = 1; i <= RAPID_NFILTERS && !rc; i++) {
        db_val p[2] = {DV_INT(i), DV_TEXT(rapid_filter_by_fid(i)->name)};
        rc = db_query(db, f_sql, p, 2, NULL, NULL, err);
    }
    for (i = 1; i <= RAPID_NSCA && !rc; i++) {
        db_val p[1] = {DV_INT(i)};
        rc = db_query(db, s_sql, p, 1, NULL, NULL, err);
    }
    for (i = 0; i < 3 && !rc; i++) {
        db_val p[3] = {DV_INT(pipes[i].ppid), DV_INT(pipes[i].priority),
                       DV_TEXT(pipes[i].script)};
        rc = db_query(db, p_sql, p, 3, NULL, NULL, err);
    }
    return rc;
}

/* Q3C on PostgreSQL when the server has it: the extension (if we may
 * create it) and cone-search indexes on the image centres.  Without it
 * the spatial search falls back to a declination band (db_l2.c). */
static int setup_q3c(rapid_db *db, rapid_err *err)
{
    static const char avail[] =
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'q3c'";
    static const char indexes[] =
        "CREATE INDEX IF NOT EXISTS l2filemeta_q3c ON l2filemeta"
        " (q3c_ang2ipix(ra0, dec0));"
        "CREATE INDEX IF NOT EXISTS l2files_q3c ON l2files (q3c_ang2ipix(ra, dec));"
        "CREATE INDEX IF NOT EXISTS diffimages_q3c ON diffimages"
        " (q3c_ang2ipix(ra0, dec0));";
    int64_t n = 0;
    int rc;

    if ((rc = db_query(db, avail, NULL, 0, row_int, &n, err)) != 0 || n == 0)
        return rc;
    /* Creating an extension may need rights we lack: then go on without. */
    if ((rc = db->ops->script(db, "SAVEPOINT q3c", err)) != 0)
        return rc;
    if (db->ops->script(db, "CREATE EXTENSION IF NOT EXISTS q3c", NULL) != 0 &&
        (rc = db->ops->script(db, "ROLLBACK TO SAVEPOINT q3c", err)) != 0)
        return rc;
    if ((rc = check_q3c(db, err)) != 0)
        return rc;
    return db->q3c ? db_script(db, indexes, err) : 0;
}

/* A new database gets the latest schema whole; an older one is upgraded
 * step by step (db_schema.c). */
static int migrate(rapid_db *db, int from, rapid_err *err)
{
    if (from == RAPID_DB_SCHEMA_VERSION)
        return 0;
    return from == 0 ? db_schema_create(db, err)
                     : db_schema_upgrade(db, from, err);
}

int rapid_db_init(rapid_db *db, int *from, rapid_err *err)
{
    static const char create[] =
        "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY,"
        " applied @TS@ NOT NULL DEFAULT @NOW@)";
    /* Two inits at once on PostgreSQL: the second waits here, then finds
     * the schema made (SQLite's BEGIN IMMEDIATE already serialises). */
    static const char lock[] = "SELECT pg_advisory_xact_lock(5394401)";
    int rc, v = 0;

    if (from)
        *from = 0;
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if (db->pg && (rc = db_query(db, lock, NULL, 0, NULL, NULL, err)) != 0)
        goto cleanup;
    if ((rc = db_script(db, create, err)) != 0 ||
        (rc = rapid_db_schema_version(db, &v, err)) != 0)
        goto cleanup;
    if (from)
        *from = v;
    if (v > RAPID_DB_SCHEMA_VERSION) {
        rc = rapid_db_check_schema(db, err);
        goto cleanup;
    }
    if ((rc = migrate(db, v, err)) != 0 || (rc = seed(db, err)) != 0)
        goto cleanup;
    if (db->pg)
        rc = setup_q3c(db, err);
cleanup:
    return db_tx_end(db, rc, err);
}

int rapid_db_count(rapid_db *db, const char *table, int64_t *n,
                   rapid_err *err)
{
    /* Table names cannot be bound: pick the statement from a fixed list. */
    static const struct {
        const char *name, *sql;
    } counts[] = {
#define COUNT(t) {t, "SELECT count(*) FROM " t}
        COUNT("filters"),    COUNT("scas"),          COUNT("pipelines"),
        COUNT("swversions"), COUNT("exposures"),     COUNT("l2files"),
        COUNT("l2filemeta"), COUNT("psfs"),          COUNT("refimages"),
        COUNT("refimcatalogs"), COUNT("refimimages"), COUNT("refimmeta"),
        COUNT("diffimages"), COUNT("diffimmeta"),    COUNT("jobs"),
        COUNT("schema_version"),
#undef COUNT
    };
    size_t i;

    *n = 0;
    for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (strcmp(table, counts[i].name) == 0)
            return db_query(db, counts[i].sql, NULL, 0, row_int, n, err);
    return rapid_fail(err, RAPID_E_ARG, "'%s' is not a table of the schema",
                      table);
}

/* -------------------------------------------------- shared helpers */

int64_t db_healpix(int64_t nside, double ra, double dec)
{
    int64_t ipix = 0;
    double phi = fmod(ra, 360.0);

    if (phi < 0)
        phi += 360.0;
    ang2pix_nest64(nside, (90.0 - dec) * M_PI / 180.0, phi * M_PI / 180.0,
                   &ipix);
    return ipix;
}

int db_lock_key(rapid_db *db, rapid_product kind, const int64_t *key, int n,
                rapid_err *err)
{
    static const char sql[] = "SELECT pg_advisory_xact_lock(?, ?)";
    uint64_t h = 0x9E3779B97F4A7C15ull * (uint64_t)(kind + 1);
    int i;

    if (!db->pg)
        return 0;
    for (i = 0; i < n; i++) { /* splitmix64 of the key values */
        h ^= (uint64_t)key[i];
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
        h ^= h >> 31;
    }
    {
        db_val p[2] = {DV_INT(0x52410000 + (int)kind),
                       DV_INT((int32_t)(uint32_t)(h >> 32))};
        return db_query(db, sql, p, 2, NULL, NULL, err);
    }
}
