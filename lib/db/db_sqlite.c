/* db_sqlite.c - the SQLite back end of the operations database.
 *
 * WAL journal (readers never wait for the writer), synchronous=NORMAL
 * (a committed transaction survives a killed process; only a power cut can
 * lose the last few), foreign keys on.  Writers take the lock when their
 * transaction begins (BEGIN IMMEDIATE) and wait for it up to the lock
 * timeout (a minute by default), so two processes writing at once queue
 * instead of failing half-way.  A read-only handle writes no file at all.
 * Prepared statements are kept for the life of the connection.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_internal.h"

typedef struct stmt_entry {
    const char *sql;
    sqlite3_stmt *st;
} stmt_entry;

typedef struct stmt_cache {
    stmt_entry *e;
    int n, cap;
} stmt_cache;

static sqlite3 *conn(const rapid_db *db)
{
    return (sqlite3 *)db->conn;
}

static int explain_readonly(const char *path, char *why, size_t whysz);

/* A statement's first words, enough to tell which one failed. */
static void sql_head(const char *sql, char *out, size_t outsz)
{
    size_t n = 0;

    while (*sql == ' ' || *sql == '\n')
        sql++;
    while (sql[n] && sql[n] != '(' && sql[n] != '\n' && n + 1 < outsz &&
           n < 40)
        n++;
    memcpy(out, sql, n);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
}

/* SQLite's reason for a failure; "database is locked" says whose lock and
 * how long it was waited for. */
static int sq_fail_what(rapid_db *db, rapid_err *err, int code,
                        const char *what)
{
    int ext = sqlite3_extended_errcode(conn(db));
    char why[PATH_MAX + 320];

    db->retryable = (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED;
    db->baddata = ext == SQLITE_CONSTRAINT_CHECK ||
                  ext == SQLITE_CONSTRAINT_NOTNULL ||
                  (code & 0xff) == SQLITE_MISMATCH || (code & 0xff) == SQLITE_TOOBIG;
    if ((code & 0xff) == SQLITE_READONLY &&
        explain_readonly(sqlite3_db_filename(conn(db), "main"), why,
                         sizeof why))
        return db_fail(db, err, what, why);
    if ((code & 0xff) != SQLITE_BUSY)
        return db_fail(db, err, what, sqlite3_errmsg(conn(db)));
    snprintf(why, sizeof why, "%s: another connection holds the lock, and "
             "the lock timeout (%g s) ran out", sqlite3_errmsg(conn(db)),
             db->lock_timeout);
    return db_fail(db, err, what, why);
}

static int sq_fail(rapid_db *db, rapid_err *err, int code, const char *sql)
{
    char what[64];

    sql_head(sql, what, sizeof what);
    return sq_fail_what(db, err, code, what);
}

static int sq_set_lock_timeout(rapid_db *db, rapid_err *err)
{
    (void)err;
    sqlite3_busy_timeout(conn(db), (int)ceil(db->lock_timeout * 1000));
    return 0;
}

/* The parent directory of path, created if missing (one level). */
static int make_parent(rapid_db *db, const char *path, rapid_err *err)
{
    char dir[1024];
    const char *slash = strrchr(path, '/');
    size_t n;

    if (!slash || slash == path)
        return 0;
    n = (size_t)(slash - path);
    if (n >= sizeof dir)
        return db_fail(db, err, "cannot create its directory", "path too long");
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return rapid_fail(err, RAPID_E_DB, "%s: cannot create its directory "
                          "%s: %s", db->url, dir, strerror(errno));
    return 0;
}

/* The directory part of path ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t dirsz)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;

    if (!slash)
        snprintf(dir, dirsz, ".");
    else if (n == 0)
        snprintf(dir, dirsz, "/");
    else
        snprintf(dir, dirsz, "%.*s", (int)(n < dirsz ? n : dirsz - 1), path);
}

/* Why SQLite could not open path ("unable to open database file" says
 * nothing): what the file system says about the file and its directory. */
static void explain_cantopen(const char *path, int create, char *why,
                             size_t whysz)
{
    char dir[PATH_MAX];
    struct stat sb;
    int e;

    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            snprintf(why, whysz, "%s is a directory, not a database file",
                     path);
        else if (access(path, create ? R_OK | W_OK : R_OK) != 0)
            snprintf(why, whysz, "cannot %s %s: %s",
                     create ? "read and write" : "read", path,
                     strerror(errno));
        else
            why[0] = '\0';
        return;
    }
    e = errno;
    dir_of(path, dir, sizeof dir);
    if (e != ENOENT || !create)
        snprintf(why, whysz, "cannot open %s: %s", path, strerror(e));
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        snprintf(why, whysz, "cannot create %s: %s", path,
                 stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(why, whysz, "cannot create %s: %s (directory %s)", path,
                 strerror(errno), dir);
    else
        why[0] = '\0';
}

/* Why a database SQLite opened for writing is "readonly": the file, its
 * directory (where the -wal and -shm files must be made) or a -wal made by
 * another user. */
static int explain_readonly(const char *path, char *why, size_t whysz)
{
    char dir[PATH_MAX], side[PATH_MAX + 8];

    if (!path || !*path)
        return 0;
    dir_of(path, dir, sizeof dir);
    if (access(path, W_OK) != 0)
        snprintf(why, whysz, "%s is not writable: %s", path, strerror(errno));
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(why, whysz, "the directory %s is read-only (%s), so SQLite "
                 "cannot create the database's journal (-wal, -shm) there; "
                 "make it writable, or copy the database to a directory that "
                 "is (read-only commands such as 'rapid db status' work "
                 "as it is)", dir, strerror(errno));
    else if (snprintf(side, sizeof side, "%s-wal", path) < (int)sizeof side &&
             access(side, F_OK) == 0 && access(side, W_OK) != 0)
        snprintf(why, whysz, "its journal %s is not writable: %s", side,
                 strerror(errno));
    else
        return 0;
    return 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* sql, run again while another connection holds a lock, until the lock
 * timeout.  SQLite calls no busy handler where waiting might deadlock:
 * when two processes open a new file at once and both switch it to WAL,
 * one of them fails at once with "database is locked". */
static int exec_waiting(rapid_db *db, const char *sql)
{
    double end = now_s() + db->lock_timeout;
    int rc, k = 0;

    while (((rc = sqlite3_exec(conn(db), sql, NULL, NULL, NULL)) & 0xff) ==
               SQLITE_BUSY &&
           now_s() < end)
        nap_ms(1 + k++ % 20);
    return rc;
}

static int exists(const char *path, const char *suffix)
{
    char side[PATH_MAX + 16];
    struct stat sb;

    if (snprintf(side, sizeof side, "%s%s", path, suffix) >= (int)sizeof side)
        return 1; /* cannot tell: assume it does */
    return stat(side, &sb) == 0 || errno != ENOENT;
}

/* The URI of a read-only open of path.  immutable=1 when the file itself
 * holds everything: no -wal (the last connection to close copies it into
 * the file and removes it) and no -journal.  SQLite then takes no locks and
 * makes no -shm or -wal file, which also lets it read in a directory it may
 * not write.  A -wal is there while a writer works (or after one was
 * killed): it must be read, through the -shm, which exist already, so
 * mode=ro alone creates nothing either.  Caller frees. */
static char *readonly_uri(const char *path)
{
    char *uri = malloc(3 * strlen(path) + 48), *q = uri;
    const char *c;

    if (!uri)
        return NULL;
    q += sprintf(q, "file:%s", path[0] == '/' ? "//" : "");
    for (c = path; *c; c++) { /* what a URI would read otherwise */
        if (*c == '%' || *c == '?' || *c == '#')
            q += sprintf(q, "%%%02X", (unsigned char)*c);
        else
            *q++ = *c;
    }
    sprintf(q, "?mode=ro%s",
            exists(path, "-wal") || exists(path, "-journal") ? ""
                                                             : "&immutable=1");
    return uri;
}

static int sq_open(rapid_db *db, const char *path, int flags, rapid_err *err)
{
    static const char pragmas[] = "PRAGMA journal_mode=WAL;"
                                  "PRAGMA synchronous=NORMAL;"
                                  "PRAGMA foreign_keys=ON;";
    /* The first read of the file: one that is not a database fails here,
     * with SQLite's "file is not a database". */
    static const char first_read[] = "SELECT count(*) FROM sqlite_master";
    struct stat sb;
    sqlite3 *c = NULL;
    char *uri = NULL;
    int oflags = SQLITE_OPEN_READWRITE, rc = 0;

    if (!*path)
        return db_fail(db, err, "cannot open", "no file name after 'sqlite:'");
    if (flags & RAPID_DB_CREATE) {
        oflags |= SQLITE_OPEN_CREATE;
        if ((rc = make_parent(db, path, err)) != 0)
            return rc;
    } else if (stat(path, &sb) != 0) {
        return db_fail(db, err, "cannot open",
                       errno == ENOENT
                           ? "no such database file (create it with 'rapid "
                             "db init')"
                           : strerror(errno));
    }
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return rapid_fail(err, RAPID_E_DB, "%s: cannot open: %s is a "
                          "directory, not a database file", db->url, path);
    if (!(db->cache = calloc(1, sizeof(stmt_cache))))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", db->url);
    if (flags & RAPID_DB_READONLY) {
        if (!(uri = readonly_uri(path)))
            return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", db->url);
        oflags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
    }
    rc = sqlite3_open_v2(uri ? uri : path, &c, oflags, NULL);
    free(uri);
    db->conn = c;
    if (rc != SQLITE_OK) {
        char why[2 * PATH_MAX];
        if ((rc & 0xff) == SQLITE_CANTOPEN)
            explain_cantopen(path, (flags & RAPID_DB_CREATE) != 0, why,
                             sizeof why);
        else
            why[0] = '\0';
        return db_fail(db, err, "cannot open",
                       why[0] ? why : c ? sqlite3_errmsg(c) : "out of memory");
    }
    if ((rc = sq_set_lock_timeout(db, err)) != 0)
        return rc;
    if (!(flags & RAPID_DB_READONLY) &&
        (rc = exec_waiting(db, pragmas)) != SQLITE_OK)
        return sq_fail_what(db, err, rc, "cannot open");
    if ((rc = exec_waiting(db, first_read)) != SQLITE_OK)
        return sq_fail_what(db, err, rc, "cannot open");
    return 0;
}

static void sq_close(rapid_db *db)
{
    stmt_cache *sc = db->cache;
    int i;

    if (sc) {
        for (i = 0; i < sc->n; i++)
            sqlite3_finalize(sc->e[i].st);
        free(sc->e);
        free(sc);
    }
    if (db->conn)
        sqlite3_close(conn(db));
    db->cache = db->conn = NULL;
}

static int sq_script(rapid_db *db, const char *sql, rapid_err *err)
{
    int rc = sqlite3_exec(conn(db), sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return sq_fail(db, err, rc, sql);
    return 0;
}

static int get_stmt(rapid_db *db, const char *sql, sqlite3_stmt **st,
                    rapid_err *err)
{
    stmt_cache *sc = db->cache;
    stmt_entry *grown;
    int i, rc;

    for (i = 0; i < sc->n; i++)
        if (sc->e[i].sql == sql) {
            *st = sc->e[i].st;
            return 0;
        }
    if (sc->n == sc->cap) {
        int cap = sc->cap ? 2 * sc->cap : 32;
        if (!(grown = realloc(sc->e, (size_t)cap * sizeof *grown)))
            return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", db->url);
        sc->e = grown, sc->cap = cap;
    }
    rc = sqlite3_prepare_v3(conn(db), sql, -1, SQLITE_PREPARE_PERSISTENT, st,
                            NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, err, rc, sql);
    sc->e[sc->n].sql = sql;
    sc->e[sc->n++].st = *st;
    return 0;
}

static int bind(sqlite3_stmt *st, int i, const db_val *v)
{
    switch (v->t) {
    case DB_INT: return sqlite3_bind_int64(st, i, v->i);
    case DB_DBL: return sqlite3_bind_double(st, i, v->d);
    case DB_TEXT: return sqlite3_bind_text(st, i, v->s, -1, SQLITE_STATIC);
    default: return sqlite3_bind_null(st, i);
    }
}

static int sq_query(rapid_db *db, const char *sql, const db_val *p, int np,
                    db_row_fn fn, void *arg, rapid_err *err)
{
    sqlite3_stmt *st = NULL;
    db_row row = {db, NULL, 0};
    int rc = 0, s = SQLITE_DONE, i;

    if ((rc = get_stmt(db, sql, &st, err)) != 0)
        return rc;
    if (sqlite3_bind_parameter_count(st) != np)
        return db_fail(db, err, "statement", "wrong number of parameters");
    for (i = 0; i < np; i++)
        if ((s = bind(st, i + 1, &p[i])) != SQLITE_OK) {
            rc = sq_fail(db, err, s, sql);
            goto cleanup;
        }
    row.impl = st;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (fn && (rc = fn(&row, arg)) != 0)
            goto cleanup;
        row.index++;
    }
    if (s != SQLITE_DONE)
        rc = sq_fail(db, err, s, sql);
cleanup:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int64_t sq_changes(rapid_db *db)
{
    return sqlite3_changes(conn(db));
}

static int sq_col_null(const db_row *r, int c)
{
    return sqlite3_column_type(r->impl, c) == SQLITE_NULL;
}

static int64_t sq_col_int(const db_row *r, int c)
{
    return sqlite3_column_int64(r->impl, c);
}

static double sq_col_dbl(const db_row *r, int c)
{
    return sqlite3_column_double(r->impl, c);
}

static const char *sq_col_text(const db_row *r, int c)
{
    return (const char *)sqlite3_column_text(r->impl, c);
}

const db_ops rapid_db_sqlite_ops = {
    "sqlite",     sq_open,    sq_close,   sq_script,   sq_query,
    sq_changes,   sq_col_null, sq_col_int, sq_col_dbl, sq_col_text,
    "BEGIN IMMEDIATE", sq_set_lock_timeout,
};
