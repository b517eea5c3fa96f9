/* db_internal.h - what db.c shares with its two back ends (not public).
 *
 *   db.c         URL dispatch, transactions, times, applying the schema
 *   db_schema.c  the schema's text, upgrades, how file names are stored
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
    /* Apply db->lock_timeout to the connection. */
    int (*set_lock_timeout)(rapid_db *db, rapid_err *err);
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
    double lock_timeout;  /* seconds a statement waits for a lock */
    int baddata;          /* the last failure was a value the schema
                           * refuses (a CHECK, a NOT NULL, malformed text) */
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
 * or serialization failure) that is worth retrying from the start?  A
 * PostgreSQL lock timeout is not: it is the end of the wait.  (An SQLite
 * busy failure comes after the busy wait ran out, or at once in the few
 * cases where waiting could deadlock: callers retry it only while their
 * own wait is shorter than db->lock_timeout.) */
int rapid_db_retryable(const rapid_db *db);

/* The canonical text of a date-time as both back ends store it
 * ("YYYY-MM-DDTHH:MM:SS.ffffff"); "" and NULL give "".  A rapid_status
 * (< 0) if malformed. */
int db_time_canon(const char *in, char out[RAPID_DB_TIME_MAX]);

/* Several ';'-separated statements without parameters, the dialect's
 * tokens (@ID@, @TS@, ...) spelled for the back end. */
int db_script(rapid_db *db, const char *tmpl, rapid_err *err);

/* The schema (db_schema.c), inside an open transaction: create the latest
 * version in an empty database, or upgrade one of version `from`. */
int db_schema_create(rapid_db *db, rapid_err *err);
int db_schema_upgrade(rapid_db *db, int from, rapid_err *err);

/* File names as stored: text that any SQL client can read, which both back
 * ends accept whatever the bytes of the name.  Well-formed UTF-8 is kept as
 * it is, except '%'; '%' and every byte that is not part of well-formed
 * UTF-8 are written %XX (two upper-case hex digits).  Encoding fails (RAPID_E_RANGE)
 * when out is too small (DB_NAME_MAX holds any name shorter than
 * RAPID_DB_PATH_MAX); decoding truncates to outsz. */
#define DB_NAME_MAX (3 * RAPID_DB_PATH_MAX)
int db_name_encode(const char *in, char *out, size_t outsz);
void db_name_decode(const char *in, char *out, size_t outsz);
/* A name given to the database in its stored form; RAPID_E_ARG when it is
 * empty or not shorter than RAPID_DB_PATH_MAX. */
int db_name_store(const char *name, char out[DB_NAME_MAX], rapid_err *err);

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
