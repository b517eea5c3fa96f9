/* db_internal.h - what db.c shares with its two back ends (not public).
 *
 *   db.c         URL dispatch, schema text and migrations, every query of
 *                rapid/db.h written once in portable SQL
 *   db_sqlite.c  the SQLite back end (statement cache, WAL, busy waits)
 *   db_pg.c      the PostgreSQL back end (libpq, prepared statements)
 *
 * SQL is written with '?' placeholders (the PostgreSQL back end numbers
 * them); values are always bound, never spliced into the text.  Each SQL
 * text must have static storage: its address keys the statement caches.
 */
#ifndef RAPID_DB_INTERNAL_H
#define RAPID_DB_INTERNAL_H

#include <stdint.h>

#include "rapid/db.h"

typedef enum db_type { DB_NULL, DB_INT, DB_DBL, DB_TEXT } db_type;

typedef struct db_val {
    db_type t;
    int64_t i;
    double d;
    const char *s;
} db_val;

#define DV_INT(v) ((db_val){DB_INT, (int64_t)(v), 0.0, NULL})
#define DV_DBL(v) ((db_val){DB_DBL, 0, (double)(v), NULL})
#define DV_TEXT(v) ((db_val){DB_TEXT, 0, 0.0, (v)})
#define DV_NULL ((db_val){DB_NULL, 0, 0.0, NULL})

/* A result row while a query's rows are visited. */
typedef struct db_row {
    const rapid_db *db;
    void *impl;  /* sqlite3_stmt * or PGresult * */
    int index;   /* row number (PostgreSQL) */
} db_row;

/* Called for each row; a non-zero return stops the query and is returned. */
typedef int (*db_row_fn)(const db_row *row, void *arg);

typedef struct db_ops {
    const char *name;
    int (*open)(rapid_db *db, const char *target, int flags, rapid_err *err);
    void (*close)(rapid_db *db);
    /* Several ';'-separated statements without parameters. */
    int (*script)(rapid_db *db, const char *sql, rapid_err *err);
    /* One statement; fn (may be NULL) sees each row. */
    int (*query)(rapid_db *db, const char *sql, const db_val *p, int np,
                 db_row_fn fn, void *arg, rapid_err *err);
    /* Rows changed by the last INSERT/UPDATE/DELETE. */
    int64_t (*changes)(rapid_db *db);
    int (*col_null)(const db_row *r, int c);
    int64_t (*col_int)(const db_row *r, int c);
    double (*col_dbl)(const db_row *r, int c);
    const char *(*col_text)(const db_row *r, int c);
    /* BEGIN of a write transaction (SQLite: IMMEDIATE, so that writers
     * queue on the lock instead of failing when they upgrade). */
    const char *begin_sql;
} db_ops;

struct rapid_db {
    const db_ops *ops;
    int pg;               /* PostgreSQL back end */
    int q3c;              /* Q3C is installed in this database */
    char url[1024];       /* password masked, for messages */
    void *conn;           /* sqlite3 * or PGconn * */
    void *cache;          /* the back end's statement cache */
    int txdepth;          /* nesting of db_tx_begin */
    int txfailed;         /* a call inside the open transaction failed */
    int retryable;        /* the last failure was a lock conflict */
};

extern const db_ops rapid_db_sqlite_ops;
extern const db_ops rapid_db_pg_ops;

/* Run one statement (see db_ops.query). */
int db_query(rapid_db *db, const char *sql, const db_val *p, int np,
             db_row_fn fn, void *arg, rapid_err *err);
int db_col_null(const db_row *r, int c);
int64_t db_col_int(const db_row *r, int c);   /* NULL reads 0 */
double db_col_dbl(const db_row *r, int c);    /* NULL reads NaN */
const char *db_col_text(const db_row *r, int c); /* NULL reads "" */

/* Transactions nest: the outermost begin starts one, the outermost end
 * commits it when rc is 0 (and nothing inside failed) and otherwise rolls
 * it back.  db_tx_end returns rc, or the commit's failure. */
int db_tx_begin(rapid_db *db, rapid_err *err);
int db_tx_end(rapid_db *db, int rc, rapid_err *err);

/* Was the last failure a lock conflict (SQLite busy, PostgreSQL deadlock
 * or serialization failure) that is worth retrying from the start? */
int rapid_db_retryable(const rapid_db *db);

/* The canonical text of a date-time as both back ends store it
 * ("YYYY-MM-DDTHH:MM:SS.ffffff"); "" and NULL give "".  A rapid_status
 * (< 0) if malformed. */
int db_time_canon(const char *in, char out[RAPID_DB_TIME_MAX]);

/* NESTED HEALPix index of a position at nside. */
int64_t db_healpix(int64_t nside, double ra, double dec);

/* PostgreSQL: hold a transaction-long lock on the natural key of a
 * versioned product, so that two writers of the same key take turns
 * (SQLite's writers are serialised already).  Needs an open transaction. */
int db_lock_key(rapid_db *db, rapid_product kind, const int64_t *key, int n,
                rapid_err *err);

/* The back ends' way to report a failure: "url: what: why" on one line. */
int db_fail(rapid_db *db, rapid_err *err, const char *what, const char *why);

#endif
