/* db_pg.c - the PostgreSQL back end of the operations database (libpq).
 *
 * Statements are prepared once per connection, their '?' placeholders
 * numbered $1, $2, ... on the way; parameters travel as text, which the
 * server converts to each column's type (so a timestamp is sent as its ISO
 * text).  The session runs in UTC with ISO dates.  libpq's errors are
 * translated here only, to one line each: the connection's URL, what
 * failed, and the server's reason.
 *
 * Inside a transaction, a statement whose rows nobody reads (an INSERT
 * without RETURNING, an UPDATE, a lock) is not waited for: it goes into
 * libpq's pipeline and the next statement that returns rows, the next
 * script (COMMIT among them) or a look at the changes sends it with the
 * rest and reads every result - one round trip for several statements.  A
 * failure among them is the error of that later call and fails the
 * transaction, so a COMMIT after it rolls back with an error.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_internal.h"

#define MAX_PARAMS 96
#define CONNECT_TIMEOUT "10" /* seconds, unless the URL says otherwise */
#define MAX_PENDING 64       /* statements sent, their results not read */

typedef struct pg_stmt {
    const char *sql;
    char name[16];
} pg_stmt;

typedef struct pg_cache {
    pg_stmt *e;
    int n, cap;
    int64_t changes;
    char buf[MAX_PARAMS][32]; /* text of the numeric parameters */
    int piped;                /* in pipeline mode */
    int npend;                /* statements sent, results not read */
    const char *pend[MAX_PENDING]; /* their SQL, for messages */
} pg_cache;

static PGconn *conn(const rapid_db *db)
{
    return (PGconn *)db->conn;
}

/* libpq messages span lines ("...failed: Connection refused\n\tIs the
 * server running...?"): join them into one. */
static void one_line(const char *in, char *out, size_t outsz)
{
    size_t k = 0;
    int space = 0, newline = 0;

    for (; *in && k + 4 < outsz; in++) {
        if (isspace((unsigned char)*in)) {
            space = k > 0;
            newline |= *in == '\n';
            continue;
        }
        if (space) {
            if (newline && out[k - 1] != ':' && out[k - 1] != '.' &&
                out[k - 1] != ';')
                out[k++] = ';';
            out[k++] = ' ';
        }
        space = newline = 0;
        out[k++] = *in;
    }
    out[k] = '\0';
}

static int conn_fail(rapid_db *db, rapid_err *err, const char *what)
{
    char why[RAPID_ERR_MAX];

    one_line(PQerrorMessage(conn(db)), why, sizeof why);
    return db_fail(db, err, what, why[0] ? why : "unknown libpq error");
}

/* A failed statement: the server's primary message and its detail. */
static int result_fail(rapid_db *db, rapid_err *err, PGresult *res,
                       const char *sql)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                          : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)
                             : NULL;
    char what[64], why[RAPID_ERR_MAX];
    size_t n = 0;

    /* 40001 serialization failure, 40P01 deadlock: worth another try;
     * 55P03 lock timeout: the wait is over */
    int timeout = state && strcmp(state, "55P03") == 0;

    db->retryable = state && (strcmp(state, "40001") == 0 ||
                              strcmp(state, "40P01") == 0);
    /* class 22 data exception (e.g. text not valid in the encoding),
     * 23502 NOT NULL, 23514 CHECK */
    db->baddata = state && (strncmp(state, "22", 2) == 0 ||
                            strcmp(state, "23502") == 0 ||
                            strcmp(state, "23514") == 0);
    while (sql[n] && sql[n] != '(' && sql[n] != '\n' && n < 40)
        n++;
    snprintf(what, sizeof what, "%.*s", (int)n, sql);
    while (n > 0 && what[n - 1] == ' ')
        what[--n] = '\0';
    if (!msg) {
        one_line(PQerrorMessage(conn(db)), why, sizeof why);
        return db_fail(db, err, what, why[0] ? why : "connection lost");
    }
    if (timeout)
        snprintf(why, sizeof why, "%s: another session holds a lock, and "
                 "the lock timeout (%g s) ran out", msg, db->lock_timeout);
    else
        snprintf(why, sizeof why, "%s%s%s", msg, detail ? " " : "",
                 detail ? detail : "");
    return db_fail(db, err, what, why);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs such as "already exists, skipping" */
}

/* Send what is in the pipeline with a sync and read every result: the
 * deferred statements' (the first failure is the error; those after it
 * were skipped by the server), then, when sql is not NULL, that of the
 * statement sent last, whose rows go to fn.  Leaves pipeline mode. */
static int pipe_sync(rapid_db *db, const char *sql, db_row_fn fn, void *arg,
                     rapid_err *err)
{
    pg_cache *pc = db->cache;
    PGresult *res;
    ExecStatusType st;
    db_row row = {db, NULL, 0};
    int rc = 0, frc = 0, k, i, total = pc->npend + (sql != NULL);

    if (!pc->piped)
        return 0;
    if (!PQpipelineSync(conn(db)))
        rc = conn_fail(db, err, "pipeline");
    for (k = 0; k < total && !rc; k++) {
        const char *what = k < pc->npend ? pc->pend[k] : sql;
        if (!(res = PQgetResult(conn(db)))) {
            rc = conn_fail(db, err, what);
            break;
        }
        st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_ABORTED) {
            rc = db_fail(db, err, what, "skipped after an earlier failure");
        } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            rc = result_fail(db, err, res, what);
        } else {
            pc->changes = strtoll(PQcmdTuples(res), NULL, 10);
            row.impl = res;
            for (i = 0; k == pc->npend && fn && i < PQntuples(res); i++) {
                row.index = i;
                if ((frc = fn(&row, arg)) != 0)
                    break;
            }
        }
        PQclear(res);
        while ((res = PQgetResult(conn(db))) != NULL) /* the end of one */
            PQclear(res);
    }
    /* the rest: skipped statements, the sync */
    for (;;) {
        if (!(res = PQgetResult(conn(db)))) {
            if (PQstatus(conn(db)) != CONNECTION_OK)
                break;
            continue;
        }
        st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    pc->npend = 0;
    if (!PQexitPipelineMode(conn(db)) && !rc)
        rc = conn_fail(db, err, "pipeline");
    pc->piped = 0;
    if (rc && db->txdepth > 0)
        db->txfailed = 1;
    return rc ? rc : frc;
}

static int pg_script(rapid_db *db, const char *sql, rapid_err *err)
{
    PGresult *res;
    ExecStatusType st;
    int rc = 0;
    rapid_err ignore = RAPID_ERR_INIT;

    /* deferred statements first; their failure stops a COMMIT, not a
     * ROLLBACK */
    if ((rc = pipe_sync(db, NULL, NULL, NULL,
                        strcmp(sql, "ROLLBACK") == 0 ? &ignore : err)) != 0 &&
        strcmp(sql, "ROLLBACK") != 0)
        return rc;
    rc = 0;
    res = PQexec(conn(db), sql);
    st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = result_fail(db, err, res, sql);
    PQclear(res);
    return rc;
}

/* A statement waits at most this long for a lock (PostgreSQL's own
 * default is for ever). */
static int pg_set_lock_timeout(rapid_db *db, rapid_err *err)
{
    static const char sql[] = "SELECT set_config('lock_timeout', ?, false)";
    char ms[32];
    db_val p[1] = {DV_TEXT(ms)};

    snprintf(ms, sizeof ms, "%.0fms", ceil(db->lock_timeout * 1000));
    return db_query(db, sql, p, 1, NULL, NULL, err);
}

static int pg_open(rapid_db *db, const char *url, int flags, rapid_err *err)
{
    /* Later entries override earlier ones, and the expanded URL sits
     * last, so that its own connect_timeout wins over ours. */
    const char *keys[] = {"connect_timeout", "fallback_application_name",
                          "dbname", NULL};
    const char *vals[] = {CONNECT_TIMEOUT, "rapid", url, NULL};
    int rc;

    if (!(db->cache = calloc(1, sizeof(pg_cache))))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", db->url);
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (!db->conn)
        return db_fail(db, err, "cannot connect", "out of memory");
    if (PQstatus(conn(db)) != CONNECTION_OK)
        return conn_fail(db, err, "cannot connect");
    PQsetNoticeProcessor(conn(db), quiet, NULL);
    if ((rc = pg_script(db,
                        "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD';"
                        " SET client_min_messages = warning",
                        err)) != 0 ||
        ((flags & RAPID_DB_READONLY) &&
         (rc = pg_script(db, "SET default_transaction_read_only = on",
                         err)) != 0))
        return rc;
    return pg_set_lock_timeout(db, err);
}

static void pg_close(rapid_db *db)
{
    pg_cache *pc = db->cache;

    if (pc) {
        free(pc->e);
        free(pc);
    }
    if (db->conn)
        PQfinish(conn(db));
    db->cache = db->conn = NULL;
}

/* Number the '?' placeholders ($1, $2, ...); SQL text of ours has no '?'
 * inside literals, but skip quoted text anyway. */
static char *number_params(const char *sql)
{
    size_t n = strlen(sql), k = 0;
    char *out = malloc(4 * n + 1);
    int quoted = 0, next = 1;

    if (!out)
        return NULL;
    for (; *sql; sql++) {
        if (*sql == '\'')
            quoted = !quoted;
        if (*sql == '?' && !quoted)
            k += (size_t)sprintf(out + k, "$%d", next++);
        else
            out[k++] = *sql;
    }
    out[k] = '\0';
    return out;
}

static int get_stmt(rapid_db *db, const char *sql, const char **name,
                    rapid_err *err)
{
    pg_cache *pc = db->cache;
    pg_stmt *grown;
    PGresult *res = NULL;
    char *text = NULL;
    int i, rc = 0;

    for (i = 0; i < pc->n; i++)
        if (pc->e[i].sql == sql) {
            *name = pc->e[i].name;
            return 0;
        }
    if ((rc = pipe_sync(db, NULL, NULL, NULL, err)) != 0)
        return rc; /* PQprepare waits: not in pipeline mode */
    if (pc->n == pc->cap) {
        int cap = pc->cap ? 2 * pc->cap : 32;
        if (!(grown = realloc(pc->e, (size_t)cap * sizeof *grown)))
            return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", db->url);
        pc->e = grown, pc->cap = cap;
    }
    if (!(text = number_params(sql)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", db->url);
    snprintf(pc->e[pc->n].name, sizeof pc->e[pc->n].name, "rapid%d", pc->n);
    res = PQprepare(conn(db), pc->e[pc->n].name, text, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = result_fail(db, err, res, sql);
        goto cleanup;
    }
    pc->e[pc->n].sql = sql;
    *name = pc->e[pc->n++].name;
cleanup:
    PQclear(res);
    free(text);
    return rc;
}

/* Text forms of the parameters; doubles with 17 digits round-trip, and
 * NaN goes as NULL, as SQLite stores it. */
static void format_params(const db_val *p, int np, char buf[][32],
                          const char **vals)
{
    int i;

    for (i = 0; i < np; i++) {
        vals[i] = buf[i];
        switch (p[i].t) {
        case DB_INT:
            snprintf(buf[i], 32, "%lld", (long long)p[i].i);
            break;
        case DB_DBL:
            if (isnan(p[i].d))
                vals[i] = NULL;
            else if (isinf(p[i].d))
                snprintf(buf[i], 32, "%s", p[i].d > 0 ? "Infinity" : "-Infinity");
            else
                snprintf(buf[i], 32, "%.17g", p[i].d);
            break;
        case DB_TEXT:
            vals[i] = p[i].s;
            break;
        default:
            vals[i] = NULL;
        }
    }
}

static int pg_query(rapid_db *db, const char *sql, const db_val *p, int np,
                    db_row_fn fn, void *arg, rapid_err *err)
{
    const char *vals[MAX_PARAMS], *name = NULL;
    pg_cache *pc = db->cache;
    PGresult *res = NULL;
    ExecStatusType st;
    db_row row = {db, NULL, 0};
    int rc = 0, i, nrows;

    if (np > MAX_PARAMS)
        return db_fail(db, err, "statement", "too many parameters");
    if ((rc = get_stmt(db, sql, &name, err)) != 0)
        return rc;
    format_params(p, np, pc->buf, vals);
    if ((!fn && db->txdepth > 0) || pc->piped) {
        if (!pc->piped && !PQenterPipelineMode(conn(db)))
            return conn_fail(db, err, "pipeline");
        pc->piped = 1;
        if (!PQsendQueryPrepared(conn(db), name, np, vals, NULL, NULL, 0)) {
            rc = conn_fail(db, err, sql);
            pipe_sync(db, NULL, NULL, NULL, NULL);
            if (db->txdepth > 0)
                db->txfailed = 1;
            return rc;
        }
        if (fn || db->txdepth == 0)
            return pipe_sync(db, sql, fn, arg, err);
        pc->pend[pc->npend++] = sql;
        if (pc->npend == MAX_PENDING)
            return pipe_sync(db, NULL, NULL, NULL, err);
        return 0;
    }
    res = PQexecPrepared(conn(db), name, np, vals, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = result_fail(db, err, res, sql);
        goto cleanup;
    }
    pc->changes = strtoll(PQcmdTuples(res), NULL, 10);
    row.impl = res;
    nrows = PQntuples(res);
    for (i = 0; i < nrows && fn; i++) {
        row.index = i;
        if ((rc = fn(&row, arg)) != 0)
            break;
    }
cleanup:
    PQclear(res);
    return rc;
}

static int64_t pg_changes(rapid_db *db)
{
    /* a failure marks the transaction failed: its COMMIT reports it */
    pipe_sync(db, NULL, NULL, NULL, NULL);
    return ((pg_cache *)db->cache)->changes;
}

static int pg_col_null(const db_row *r, int c)
{
    return PQgetisnull(r->impl, r->index, c);
}

static int64_t pg_col_int(const db_row *r, int c)
{
    return strtoll(PQgetvalue(r->impl, r->index, c), NULL, 10);
}

static double pg_col_dbl(const db_row *r, int c)
{
    return strtod(PQgetvalue(r->impl, r->index, c), NULL);
}

static const char *pg_col_text(const db_row *r, int c)
{
    return PQgetvalue(r->impl, r->index, c);
}

const db_ops rapid_db_pg_ops = {
    "postgresql", pg_open,     pg_close,   pg_script,  pg_query,
    pg_changes,   pg_col_null, pg_col_int, pg_col_dbl, pg_col_text,
    "BEGIN",      pg_set_lock_timeout,
};
