/* db_schema.c - the schema of the operations database: the latest version
 * whole, for a new database; the upgrade of an older one; and how file
 * names are stored.
 *
 * Version 2 over version 1: CHECK constraints on the values the vbest
 * rules and the readers rely on; at most one best version per natural key
 * (a partial unique index); difference images keyed by their method too;
 * file names stored so that any byte string comes back (db_name_encode).
 *
 * Version 3 over version 2: reference jobs (ppid 12, no science image)
 * are one row per tile and filter (the partial unique index jobs_refjob).
 *
 * An upgrade runs inside rapid_db_init's transaction: it happens whole or
 * not at all.  PostgreSQL alters the tables in place, which keeps what an
 * operator may have added to them (privileges, views).  SQLite cannot add
 * a constraint to a table, so there each table is made again from the very
 * text a new database gets and the rows are copied over, keys and all.
 * The tests compare an upgraded database's catalog with a new one's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* ------------------------------------------------------- the schema */

#define DP " DOUBLE PRECISION"
#define SIP_COLS(x)                                                          \
    x "_order INTEGER NOT NULL DEFAULT 0, " x "_0_2" DP ", " x "_0_3" DP     \
    ", " x "_0_4" DP ", " x "_1_1" DP ", " x "_1_2" DP ", " x "_1_3" DP      \
    ", " x "_2_0" DP ", " x "_2_1" DP ", " x "_2_2" DP ", " x "_3_0" DP      \
    ", " x "_3_1" DP ", " x "_4_0" DP
#define FOOTPRINT_COLS                                                       \
    "ra0" DP ", dec0" DP ", ra1" DP ", dec1" DP ", ra2" DP ", dec2" DP       \
    ", ra3" DP ", dec3" DP ", ra4" DP ", dec4" DP

/* The constraints, spelled once for both uses: inside CREATE TABLE (p "")
 * and in PostgreSQL's upgrade (p "ADD "). */
#define CK_STATUS(p, t) p "CONSTRAINT " t "_status CHECK (status IN (0, 1))"
#define CK_VERSIONED(p, t)                                                   \
    p "CONSTRAINT " t "_vbest CHECK (vbest BETWEEN 0 AND 2), "               \
    p "CONSTRAINT " t "_version CHECK (version >= 1), " CK_STATUS(p, t)
#define CK_DEC(p, t, c)                                                      \
    p "CONSTRAINT " t "_" c " CHECK (" c " BETWEEN -90 AND 90)"
#define CK_FOOTPRINT(p, t)                                                   \
    p "CONSTRAINT " t "_footprint CHECK (dec0 BETWEEN -90 AND 90"            \
    " AND dec1 BETWEEN -90 AND 90 AND dec2 BETWEEN -90 AND 90"               \
    " AND dec3 BETWEEN -90 AND 90 AND dec4 BETWEEN -90 AND 90)"
#define CK_METHOD(p, t) p "CONSTRAINT " t "_method CHECK (method IN (1, 2, 3))"
#define CK_CATTYPE(p) p "CONSTRAINT refimcatalogs_cattype CHECK (cattype IN (1, 2))"

/* At most one best version (vbest > 0) per natural key. */
#define BEST(t, key)                                                         \
    "CREATE UNIQUE INDEX " t "_best ON " t "(" key ") WHERE vbest > 0;"
#define BEST_INDEXES                                                         \
    BEST("l2files", "expid, sca") BEST("psfs", "fid, sca")                   \
    BEST("refimages", "field, fid, ppid")                                    \
    BEST("diffimages", "rid, ppid, method")

/* A reference job is keyed by its tile and filter (it has no rid). */
#define JOBS_REFJOB(ifnot)                                                   \
    "CREATE UNIQUE INDEX " ifnot "jobs_refjob ON jobs(ppid, field, fid)"     \
    " WHERE rid IS NULL;"

/* Tokens: @ID@ an identity key, @KEYREF@ a key that is also a reference,
 * @TS@ a timestamp column, @NOW@ the current UTC time (db.c spells them
 * for the back end).  Columns added by an upgrade come last, where
 * PostgreSQL's ALTER TABLE puts them. */
static const char schema[] =
    "CREATE TABLE filters(fid INTEGER PRIMARY KEY,"
    " filter TEXT NOT NULL UNIQUE);"
    "CREATE TABLE scas(sca INTEGER PRIMARY KEY);"
    "CREATE TABLE pipelines(ppid INTEGER PRIMARY KEY,"
    " priority INTEGER NOT NULL, script TEXT NOT NULL);"
    "CREATE TABLE swversions(svid @ID@, gitcommit TEXT NOT NULL UNIQUE,"
    " version TEXT, created @TS@ NOT NULL DEFAULT @NOW@);"
    "CREATE TABLE exposures(expid @ID@, dateobs @TS@ NOT NULL UNIQUE,"
    " mjdobs" DP " NOT NULL, field BIGINT NOT NULL, hp6 BIGINT NOT NULL,"
    " hp9 BIGINT NOT NULL, fid INTEGER NOT NULL REFERENCES filters(fid),"
    " exptime" DP " NOT NULL, ra_targ" DP ", dec_targ" DP ", pa_obsy" DP
    ", pa_fpa" DP ", status INTEGER NOT NULL DEFAULT 1,"
    " infobits INTEGER NOT NULL DEFAULT 0,"
    " created @TS@ NOT NULL DEFAULT @NOW@, " CK_STATUS("", "exposures") ", "
    CK_DEC("", "exposures", "dec_targ") ");"
    "CREATE INDEX exposures_mjdobs ON exposures(mjdobs);"
    "CREATE TABLE l2files(rid @ID@,"
    " expid BIGINT NOT NULL REFERENCES exposures(expid),"
    " sca INTEGER NOT NULL REFERENCES scas(sca),"
    " fid INTEGER NOT NULL REFERENCES filters(fid), field BIGINT NOT NULL,"
    " hp6 BIGINT NOT NULL, hp9 BIGINT NOT NULL, dateobs @TS@ NOT NULL,"
    " mjdobs" DP " NOT NULL, exptime" DP " NOT NULL,"
    " infobits INTEGER NOT NULL DEFAULT 0, filename TEXT NOT NULL,"
    " checksum TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 1,"
    " vbest INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL,"
    " naxis1 INTEGER NOT NULL, naxis2 INTEGER NOT NULL,"
    " ctype1 TEXT NOT NULL, ctype2 TEXT NOT NULL,"
    " crval1" DP " NOT NULL, crval2" DP " NOT NULL, crpix1" DP " NOT NULL,"
    " crpix2" DP " NOT NULL, cd1_1" DP " NOT NULL, cd1_2" DP " NOT NULL,"
    " cd2_1" DP " NOT NULL, cd2_2" DP " NOT NULL, " SIP_COLS("a") ", "
    SIP_COLS("b") ", ra" DP " NOT NULL, dec" DP " NOT NULL, ra_targ" DP
    ", dec_targ" DP ", pa_obsy" DP ", pa_fpa" DP ", zptmag" DP ", skymean" DP
    ", created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(expid, sca, version), "
    CK_VERSIONED("", "l2files") ", " CK_DEC("", "l2files", "dec") ", "
    CK_DEC("", "l2files", "dec_targ") ");"
    "CREATE INDEX l2files_mjdobs ON l2files(mjdobs);"
    "CREATE INDEX l2files_field ON l2files(field, fid);"
    "CREATE TABLE l2filemeta(rid @KEYREF@ REFERENCES l2files(rid), "
    FOOTPRINT_COLS ", x" DP " NOT NULL, y" DP " NOT NULL, z" DP " NOT NULL,"
    " radius" DP " NOT NULL, hp6 BIGINT NOT NULL, hp9 BIGINT NOT NULL,"
    " fid INTEGER NOT NULL, sca INTEGER NOT NULL, mjdobs" DP " NOT NULL, "
    CK_FOOTPRINT("", "l2filemeta") ");"
    "CREATE INDEX l2filemeta_fid_mjdobs ON l2filemeta(fid, mjdobs);"
    "CREATE INDEX l2filemeta_dec0 ON l2filemeta(dec0);"
    "CREATE INDEX l2filemeta_radius ON l2filemeta(radius);"
    "CREATE INDEX l2filemeta_hp9 ON l2filemeta(hp9);"
    "CREATE TABLE psfs(psfid @ID@, fid INTEGER NOT NULL REFERENCES"
    " filters(fid), sca INTEGER NOT NULL REFERENCES scas(sca),"
    " version INTEGER NOT NULL, vbest INTEGER NOT NULL DEFAULT 0,"
    " filename TEXT NOT NULL, checksum TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(fid, sca, version), "
    CK_VERSIONED("", "psfs") ");"
    "CREATE TABLE refimages(rfid @ID@, field BIGINT NOT NULL, hp6 BIGINT,"
    " hp9 BIGINT, fid INTEGER NOT NULL REFERENCES filters(fid),"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " version INTEGER NOT NULL, vbest INTEGER NOT NULL DEFAULT 0,"
    " filename TEXT, checksum TEXT, status INTEGER NOT NULL DEFAULT 0,"
    " infobits INTEGER NOT NULL DEFAULT 0,"
    " svid BIGINT REFERENCES swversions(svid),"
    " created @TS@ NOT NULL DEFAULT @NOW@,"
    " UNIQUE(field, fid, ppid, version), " CK_VERSIONED("", "refimages") ");"
    "CREATE TABLE refimcatalogs(rfcatid @ID@,"
    " rfid BIGINT NOT NULL REFERENCES refimages(rfid),"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " cattype INTEGER NOT NULL, filename TEXT NOT NULL, checksum TEXT,"
    " status INTEGER NOT NULL DEFAULT 1,"
    " created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(rfid, ppid, cattype), "
    CK_CATTYPE("") ", " CK_STATUS("", "refimcatalogs") ");"
    "CREATE TABLE refimimages(rfid BIGINT NOT NULL REFERENCES"
    " refimages(rfid), rid BIGINT NOT NULL REFERENCES l2files(rid),"
    " PRIMARY KEY(rfid, rid));"
    "CREATE TABLE refimmeta(rfid @KEYREF@ REFERENCES refimages(rfid),"
    " nframes INTEGER, mjdobsmin" DP ", mjdobsmax" DP ", npixsat BIGINT,"
    " npixnan BIGINT, clmean" DP ", clstddev" DP ", clnoutliers BIGINT,"
    " gmedian" DP ", datascale" DP ", gmin" DP ", gmax" DP ", cov5percent" DP
    ", medncov" DP ", medpixunc" DP ", fwhmmedpix" DP ", fwhmminpix" DP
    ", fwhmmaxpix" DP ", nsexcatsources BIGINT);"
    "CREATE TABLE diffimages(pid @ID@,"
    " rid BIGINT NOT NULL REFERENCES l2files(rid),"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " version INTEGER NOT NULL, vbest INTEGER NOT NULL DEFAULT 0,"
    " rfid BIGINT REFERENCES refimages(rfid), expid BIGINT NOT NULL,"
    " sca INTEGER NOT NULL, fid INTEGER NOT NULL, field BIGINT NOT NULL,"
    " hp6 BIGINT, hp9 BIGINT, jd" DP ", " FOOTPRINT_COLS
    ", infobitssci INTEGER NOT NULL DEFAULT 0,"
    " infobitsref INTEGER NOT NULL DEFAULT 0, filename TEXT, checksum TEXT,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " svid BIGINT REFERENCES swversions(svid),"
    " created @TS@ NOT NULL DEFAULT @NOW@, method INTEGER NOT NULL,"
    " UNIQUE(rid, ppid, method, version), UNIQUE(pid, method), "
    CK_VERSIONED("", "diffimages") ", " CK_METHOD("", "diffimages") ", "
    CK_FOOTPRINT("", "diffimages") ");"
    "CREATE TABLE diffimmeta(pid @KEYREF@ REFERENCES diffimages(pid),"
    " nsexcatsources BIGINT, scalefacref" DP ", dxrmsfin" DP ", dyrmsfin" DP
    ", dxmedianfin" DP ", dymedianfin" DP ", nmatches BIGINT,"
    " method INTEGER NOT NULL,"
    " FOREIGN KEY (pid, method) REFERENCES diffimages(pid, method));"
    "CREATE TABLE jobs(jid @ID@,"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " rid BIGINT REFERENCES l2files(rid), fid INTEGER, expid BIGINT,"
    " sca INTEGER, field BIGINT, procdate INTEGER NOT NULL, machine TEXT,"
    " launched @TS@, qwaited" DP ", started @TS@, ended @TS@, elapsed" DP
    ", exitcode INTEGER, status INTEGER NOT NULL DEFAULT 0, slurm TEXT,"
    " awsbatchjobid TEXT, UNIQUE(ppid, rid), " CK_STATUS("", "jobs") ");"
    "CREATE INDEX jobs_procdate ON jobs(procdate, status);" JOBS_REFJOB("")
    BEST_INDEXES;

/* SQLite's spatial index: the bounding box of each footprint on the unit
 * sphere (x, y, z), kept by db_l2.c next to every l2filemeta row.  A 3-D
 * box has no RA wrap-around and no pole to treat specially. */
static const char schema_sqlite[] =
    "CREATE VIRTUAL TABLE l2filemeta_box USING rtree(rid, xmin, xmax,"
    " ymin, ymax, zmin, zmax);";

/* The tables of every version so far, each after those it refers to. */
static const char *const tables[] = {
    "filters",    "scas",          "pipelines",   "swversions", "exposures",
    "l2files",    "l2filemeta",    "psfs",        "refimages",  "refimcatalogs",
    "refimimages", "refimmeta",    "diffimages",  "diffimmeta", "jobs"};
#define NTABLES (int)(sizeof tables / sizeof tables[0])

static int record(rapid_db *db, int version, rapid_err *err)
{
    static const char sql[] = "INSERT INTO schema_version(version) VALUES(?)";
    db_val p[1] = {DV_INT(version)};

    return db_query(db, sql, p, 1, NULL, NULL, err);
}

int db_schema_create(rapid_db *db, rapid_err *err)
{
    int rc;

    if ((rc = db_script(db, schema, err)) == 0 &&
        (db->pg || (rc = db_script(db, schema_sqlite, err)) == 0))
        rc = record(db, RAPID_DB_SCHEMA_VERSION, err);
    if (rc)
        rapid_err_prefix(err, "creating the schema (version %d)",
                         RAPID_DB_SCHEMA_VERSION);
    return rc;
}

/* ------------------------------------------------------- file names */

/* Length of the well-formed UTF-8 sequence at s (1-4), or 0 when the bytes
 * there are not one (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF; what PostgreSQL accepts as text).  Stops at the NUL. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0], lo, hi;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                       (s[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

int db_name_encode(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)in;
    size_t k = 0;
    int n;

    while (*s) {
        n = *s == '%' ? 0 : utf8_len(s);
        if (k + (n ? (size_t)n : 3) >= outsz)
            return RAPID_E_RANGE;
        if (n) {
            memcpy(out + k, s, (size_t)n);
            k += (size_t)n, s += n;
        } else {
            out[k++] = '%', out[k++] = hex[*s >> 4], out[k++] = hex[*s & 15];
            s++;
        }
    }
    out[k] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void db_name_decode(const char *in, char *out, size_t outsz)
{
    size_t k = 0;
    int hi, lo;

    if (!outsz)
        return;
    while (*in && k + 1 < outsz) {
        hi = in[0] == '%' ? hexval(in[1]) : -1;
        lo = hi >= 0 ? hexval(in[2]) : -1;
        if (lo >= 0 && (hi | lo)) { /* %00 stays as it is: no NUL */
            out[k++] = (char)(hi << 4 | lo);
            in += 3;
        } else {
            out[k++] = *in++;
        }
    }
    out[k] = '\0';
}

int db_name_store(const char *name, char out[DB_NAME_MAX], rapid_err *err)
{
    size_t n = name ? strlen(name) : 0;

    if (!n)
        return rapid_fail(err, RAPID_E_ARG, "no file name");
    if (n >= RAPID_DB_PATH_MAX || db_name_encode(name, out, DB_NAME_MAX))
        return rapid_fail(err, RAPID_E_ARG, "file name of %zu bytes is longer"
                          " than the %d the database keeps: %.200s...", n,
                          RAPID_DB_PATH_MAX - 1, name);
    return 0;
}

/* ------------------------------------------ upgrade from version 1 */

/* A list of strings, each malloc'd. */
typedef struct str_list {
    char **v;
    int64_t *id;
    int n, cap;
} str_list;

static int list_push(str_list *L, int64_t id, const char *s)
{
    char **v;
    int64_t *ids;

    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 16;
        if (!(v = realloc(L->v, (size_t)cap * sizeof *v)))
            return RAPID_E_NOMEM;
        L->v = v;
        if (!(ids = realloc(L->id, (size_t)cap * sizeof *ids)))
            return RAPID_E_NOMEM;
        L->id = ids, L->cap = cap;
    }
    if (!(L->v[L->n] = strdup(s)))
        return RAPID_E_NOMEM;
    L->id[L->n++] = id;
    return 0;
}

static void list_free(str_list *L)
{
    int i;

    for (i = 0; i < L->n; i++)
        free(L->v[i]);
    free(L->v);
    free(L->id);
    memset(L, 0, sizeof *L);
}

static int row_name(const db_row *r, void *arg)
{
    return list_push(arg, 0, db_col_text(r, 0));
}

/* A query's first column, every row, into L; out-of-memory reported. */
static int collect(rapid_db *db, const char *sql, const char *param,
                   str_list *L, rapid_err *err)
{
    db_val p[1] = {DV_TEXT(param)};
    int rc = db_query(db, sql, p, 1, row_name, L, err);

    return rc == RAPID_E_NOMEM ? rapid_fail(err, rc, "out of memory") : rc;
}

/* A piece of SQL text made here (identifiers only: never a value). */
typedef struct sql_buf {
    char *s;
    size_t n, cap;
} sql_buf;

static int put(sql_buf *b, const char *s)
{
    size_t m = strlen(s);
    char *grown;

    if (b->n + m + 1 > b->cap) {
        size_t cap = 2 * (b->n + m + 1) + 256;
        if (!(grown = realloc(b->s, cap)))
            return RAPID_E_NOMEM;
        b->s = grown, b->cap = cap;
    }
    memcpy(b->s + b->n, s, m + 1);
    b->n += m;
    return 0;
}

/* An identifier from the catalog, double-quoted; ours never hold a '"'. */
static int put_ident(sql_buf *b, const char *name)
{
    if (strchr(name, '"'))
        return RAPID_E_ARG;
    return put(b, "\"") || put(b, name) || put(b, "\"") ? RAPID_E_NOMEM : 0;
}

/* Keep every version, but at most one best per key: where version 1 held
 * two, the one readers put first keeps it (a locked one, then the highest
 * version) and the others drop to 0. */
#define ONE_BEST(t, key)                                                     \
    "UPDATE " t " SET vbest = 0 WHERE vbest > 0 AND EXISTS (SELECT 1 FROM "  \
    t " o WHERE " key " AND o.vbest > 0 AND (o.vbest > " t ".vbest OR"       \
    " (o.vbest = " t ".vbest AND o.version > " t ".version)));"
static const char one_best_v1[] =
    ONE_BEST("l2files", "o.expid = l2files.expid AND o.sca = l2files.sca")
    ONE_BEST("psfs", "o.fid = psfs.fid AND o.sca = psfs.sca")
    ONE_BEST("refimages", "o.field = refimages.field AND o.fid ="
             " refimages.fid AND o.ppid = refimages.ppid")
    ONE_BEST("diffimages", "o.rid = diffimages.rid AND o.ppid ="
             " diffimages.ppid");

/* PostgreSQL: the same constraints and columns, added in place.  Version
 * 1's difference images become method 1 (ZOGY). */
static const char upgrade2_pg[] =
    "ALTER TABLE exposures " CK_STATUS("ADD ", "exposures") ", "
    CK_DEC("ADD ", "exposures", "dec_targ") ";"
    "ALTER TABLE l2files " CK_VERSIONED("ADD ", "l2files") ", "
    CK_DEC("ADD ", "l2files", "dec") ", "
    CK_DEC("ADD ", "l2files", "dec_targ") ";"
    "ALTER TABLE l2filemeta " CK_FOOTPRINT("ADD ", "l2filemeta") ";"
    "ALTER TABLE psfs " CK_VERSIONED("ADD ", "psfs") ";"
    "ALTER TABLE refimages " CK_VERSIONED("ADD ", "refimages") ";"
    "ALTER TABLE refimcatalogs " CK_CATTYPE("ADD ") ", "
    CK_STATUS("ADD ", "refimcatalogs") ";"
    "ALTER TABLE diffimages ADD COLUMN method INTEGER NOT NULL DEFAULT 1,"
    " DROP CONSTRAINT diffimages_rid_ppid_version_key,"
    " ADD UNIQUE(rid, ppid, method, version), ADD UNIQUE(pid, method), "
    CK_VERSIONED("ADD ", "diffimages") ", " CK_METHOD("ADD ", "diffimages")
    ", " CK_FOOTPRINT("ADD ", "diffimages") ";"
    "ALTER TABLE diffimages ALTER COLUMN method DROP DEFAULT;"
    "ALTER TABLE diffimmeta ADD COLUMN method INTEGER NOT NULL DEFAULT 1,"
    " ADD FOREIGN KEY (pid, method) REFERENCES diffimages(pid, method);"
    "ALTER TABLE diffimmeta ALTER COLUMN method DROP DEFAULT;"
    "ALTER TABLE jobs " CK_STATUS("ADD ", "jobs") ";" BEST_INDEXES;

/* SQLite: copy version 1's table t, now t_v1, into the new t, column by
 * column as version 1 had them. */
static int copy_table(rapid_db *db, const char *t, rapid_err *err)
{
    static const char cols[] = "SELECT name FROM pragma_table_info(?)";
    char old[64];
    str_list L = {NULL, NULL, 0, 0};
    sql_buf b = {NULL, 0, 0}, c = {NULL, 0, 0};
    int rc, bad = 0, i;
    int method = strcmp(t, "diffimages") == 0 || strcmp(t, "diffimmeta") == 0;

    snprintf(old, sizeof old, "%s_v1", t);
    if ((rc = collect(db, cols, old, &L, err)) != 0)
        return rc;
    for (i = 0; i < L.n && !bad; i++)
        bad = (i && put(&c, ", ")) || put_ident(&c, L.v[i]);
    if (!bad && L.n > 0)
        bad = put(&b, "INSERT INTO ") || put(&b, t) || put(&b, "(") ||
              put(&b, c.s) || put(&b, method ? ", method" : "") ||
              put(&b, ") SELECT ") || put(&b, c.s) ||
              put(&b, method ? ", 1" : "") || put(&b, " FROM ") ||
              put(&b, old);
    if (bad || L.n == 0)
        rc = rapid_fail(err, RAPID_E_DB, "%s: copying table %s: %s", db->url,
                        old, L.n == 0 ? "no columns" : "out of memory or an "
                        "unexpected column name");
    else
        rc = db_script(db, b.s, err);
    list_free(&L);
    free(b.s);
    free(c.s);
    return rc;
}

/* SQLite: every table made anew from the schema of a new database, the rows
 * copied over (their keys with them), version 1's tables dropped.  The
 * foreign keys are checked at the commit. */
static int rebuild_sqlite(rapid_db *db, rapid_err *err)
{
    static const char indexes[] = "SELECT name FROM sqlite_master WHERE"
                                  " type = 'index' AND sql IS NOT NULL"
                                  " AND tbl_name = ?";
    char sql[160];
    str_list L = {NULL, NULL, 0, 0};
    int rc, i, k;

    if ((rc = db_script(db, "PRAGMA defer_foreign_keys = ON", err)) != 0)
        return rc;
    /* Index names are the database's: version 1's go first, then its
     * tables step aside. */
    for (i = 0; i < NTABLES && !rc; i++) {
        if ((rc = collect(db, indexes, tables[i], &L, err)) != 0)
            break;
        for (k = 0; k < L.n && !rc; k++) {
            if (strchr(L.v[k], '"') || strlen(L.v[k]) > 100) {
                rc = rapid_fail(err, RAPID_E_DB, "%s: index '%s' of table %s:"
                                " unexpected name", db->url, L.v[k], tables[i]);
                break;
            }
            snprintf(sql, sizeof sql, "DROP INDEX \"%s\"", L.v[k]);
            rc = db_script(db, sql, err);
        }
        list_free(&L);
        snprintf(sql, sizeof sql, "ALTER TABLE %s RENAME TO %s_v1", tables[i],
                 tables[i]);
        if (!rc)
            rc = db_script(db, sql, err);
    }
    if (!rc)
        rc = db_script(db, schema, err);
    for (i = 0; i < NTABLES && !rc; i++)
        rc = copy_table(db, tables[i], err);
    for (i = NTABLES - 1; i >= 0 && !rc; i--) {
        snprintf(sql, sizeof sql, "DROP TABLE %s_v1", tables[i]);
        rc = db_script(db, sql, err);
    }
    list_free(&L);
    return rc;
}

/* The file-name columns, read and rewritten in the stored form.  On
 * PostgreSQL version 1 could only hold valid UTF-8, so only names with a
 * '%' change; SQLite could hold any bytes, so every name is looked at. */
typedef struct name_col {
    const char *all, *pct, *update;
} name_col;

#define NAME_COL(t, id)                                                      \
    {"SELECT " id ", filename FROM " t " WHERE filename IS NOT NULL",        \
     "SELECT " id ", filename FROM " t " WHERE filename LIKE '%!%%'"         \
     " ESCAPE '!'",                                                          \
     "UPDATE " t " SET filename = ? WHERE " id " = ?"}

static const name_col name_cols[] = {
    NAME_COL("l2files", "rid"),          NAME_COL("psfs", "psfid"),
    NAME_COL("refimages", "rfid"),       NAME_COL("refimcatalogs", "rfcatid"),
    NAME_COL("diffimages", "pid"),
};

/* Rows whose stored name changes: (id, new text).  Any length: version 1
 * did not limit what rapid_db_set_file took. */
static int row_rename(const db_row *r, void *arg)
{
    const char *name = db_col_text(r, 1);
    size_t n = 3 * strlen(name) + 1;
    char *enc = malloc(n);
    int rc;

    if (!enc)
        return RAPID_E_NOMEM;
    db_name_encode(name, enc, n); /* cannot fail: room for the worst case */
    rc = strcmp(enc, name) ? list_push(arg, db_col_int(r, 0), enc) : 0;
    free(enc);
    return rc;
}

static int encode_names(rapid_db *db, rapid_err *err)
{
    str_list L = {NULL, NULL, 0, 0};
    size_t t;
    int rc = 0, i;

    for (t = 0; t < sizeof name_cols / sizeof name_cols[0] && !rc; t++) {
        rc = db_query(db, db->pg ? name_cols[t].pct : name_cols[t].all, NULL,
                      0, row_rename, &L, err);
        if (rc == RAPID_E_NOMEM)
            rc = rapid_fail(err, rc, "%s: re-encoding file names: out of "
                            "memory", db->url);
        for (i = 0; i < L.n && !rc; i++) {
            db_val p[2] = {DV_TEXT(L.v[i]), DV_INT(L.id[i])};
            rc = db_query(db, name_cols[t].update, p, 2, NULL, NULL, err);
        }
        list_free(&L);
    }
    return rc;
}

static int upgrade_1_to_2(rapid_db *db, rapid_err *err)
{
    int rc;

    if ((rc = db_script(db, one_best_v1, err)) != 0)
        return rc;
    if ((rc = db->pg ? db_script(db, upgrade2_pg, err)
                     : rebuild_sqlite(db, err)) != 0)
        return rc;
    return encode_names(db, err);
}

/* ------------------------------------------ upgrade from version 2 */

/* The index may be there already: SQLite's upgrade from version 1 makes
 * the tables from the latest schema's text. */
static int upgrade_2_to_3(rapid_db *db, rapid_err *err)
{
    return db_script(db, JOBS_REFJOB("IF NOT EXISTS "), err);
}

typedef int (*upgrade_fn)(rapid_db *db, rapid_err *err);

/* upgrades[v - 1] takes a database from version v to v + 1. */
static const upgrade_fn upgrades[RAPID_DB_SCHEMA_VERSION - 1] = {
    upgrade_1_to_2,
    upgrade_2_to_3,
};

int db_schema_upgrade(rapid_db *db, int from, rapid_err *err)
{
    int rc = 0, v;

    for (v = from; v < RAPID_DB_SCHEMA_VERSION && !rc; v++) {
        if ((rc = upgrades[v - 1](db, err)) == 0)
            rc = record(db, v + 1, err);
        if (rc)
            rapid_err_prefix(err, "upgrading the schema from version %d to %d",
                             v, v + 1);
    }
    return rc;
}
