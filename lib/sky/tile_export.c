/* tile_export.c - the tessellation written as the existing system's tables.
 *
 * Everything is written into a temporary file in one transaction with the
 * journal off (nobody else can see the file yet), then renamed into place,
 * so a killed export leaves nothing that looks complete.
 *
 * The R*Tree is bulk-loaded: SQLite's own insert costs ~11 us a row (over a
 * minute for 6.3 M tiles) because every insert searches and splits nodes.
 * Tiles come in rtid order, which is already spatially sorted (ring by ring,
 * RA ascending), so we pack them into full nodes and write the module's
 * documented shadow tables (%_node, %_parent, %_rowid) ourselves.  The tests
 * check the result with SQLite's rtreecheck() and against plain queries.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rapid/tile.h"
#include "rapid/tile_export.h"

static const char *schema =
    "PRAGMA journal_mode=OFF;"
    "PRAGMA synchronous=OFF;"
    "PRAGMA temp_store=MEMORY;"
    "CREATE TABLE skytiles(cra REAL NOT NULL, cdec REAL NOT NULL,"
    " ramin REAL NOT NULL, ramax REAL NOT NULL, decmax REAL NOT NULL,"
    " decmin REAL NOT NULL, rtid INTEGER PRIMARY KEY, dbid INTEGER NOT NULL);"
    "CREATE TABLE decbins(dbid INTEGER PRIMARY KEY, cdec REAL NOT NULL,"
    " nrabins INTEGER NOT NULL);"
    "CREATE VIRTUAL TABLE vskytiles USING rtree(rtid, ramin, ramax, decmin,"
    " decmax);"
    "BEGIN;";

static int db_fail(rapid_err *err, sqlite3 *db, const char *path,
                   const char *what)
{
    return rapid_fail(err, RAPID_E_DB, "%s: %s: %s", path, what,
                      db ? sqlite3_errmsg(db) : "cannot allocate");
}

/* ------------------------------------------------ R*Tree bulk load */

typedef struct rcell {
    int64_t id;
    float box[4]; /* ramin, ramax, decmin, decmax */
} rcell;

typedef struct rtree_load {
    sqlite3 *db;
    sqlite3_stmt *node, *parent, *rowid;
    int node_size;   /* bytes per node blob, as the module chose */
    int max_cells;   /* cells per node */
    int levels;      /* leaf level 0 .. root level levels-1 */
    int64_t count[64];  /* nodes on each level */
    int64_t first[64];  /* node number of the first node on each level */
    unsigned char *blob;
} rtree_load;

/* The module stores float32 boxes rounded outwards. */
static float round_down(double x)
{
    float f = (float)x;
    return (double)f > x ? nextafterf(f, -INFINITY) : f;
}

static float round_up(double x)
{
    float f = (float)x;
    return (double)f < x ? nextafterf(f, INFINITY) : f;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Node counts per level for n entries, with every node as full as an even
 * spread allows. */
static void plan_levels(rtree_load *L, int64_t n)
{
    int l;

    L->levels = 0;
    do {
        n = (n + L->max_cells - 1) / L->max_cells;
        L->count[L->levels++] = n;
    } while (n > 1);
    L->first[L->levels - 1] = 1; /* the root is always node 1 */
    for (l = L->levels - 2; l >= 0; l--)
        L->first[l] = L->first[l + 1] + L->count[l + 1];
}

/* Write node `nodeno` holding cells; box gets their union. */
static int write_node(rtree_load *L, int64_t nodeno, int depth,
                      const rcell *cells, int n, float box[4])
{
    unsigned char *p = L->blob;
    int i, k;

    memset(p, 0, (size_t)L->node_size);
    if (nodeno == 1) /* only the root records the depth of the tree */
        p[0] = (unsigned char)(depth >> 8), p[1] = (unsigned char)depth;
    p[2] = (unsigned char)(n >> 8), p[3] = (unsigned char)n;
    box[0] = box[2] = INFINITY;
    box[1] = box[3] = -INFINITY;
    for (i = 0; i < n; i++) {
        unsigned char *c = p + 4 + 24 * i;
        put_be64(c, (uint64_t)cells[i].id);
        for (k = 0; k < 4; k++) {
            uint32_t bits;
            memcpy(&bits, &cells[i].box[k], 4);
            put_be32(c + 8 + 4 * k, bits);
        }
        box[0] = fminf(box[0], cells[i].box[0]);
        box[1] = fmaxf(box[1], cells[i].box[1]);
        box[2] = fminf(box[2], cells[i].box[2]);
        box[3] = fmaxf(box[3], cells[i].box[3]);
    }
    sqlite3_bind_int64(L->node, 1, nodeno);
    sqlite3_bind_blob(L->node, 2, p, L->node_size, SQLITE_STATIC);
    if (sqlite3_step(L->node) != SQLITE_DONE)
        return RAPID_E_DB;
    sqlite3_reset(L->node);
    return 0;
}

/* A %_parent row for a node, or a %_rowid row (leaf of an entry). */
static int write_link(sqlite3_stmt *st, int64_t child, int64_t parent)
{
    sqlite3_bind_int64(st, 1, child);
    sqlite3_bind_int64(st, 2, parent);
    if (sqlite3_step(st) != SQLITE_DONE)
        return RAPID_E_DB;
    sqlite3_reset(st);
    return 0;
}

/* Pack the n cells of `level` into nodes of level+1 (or the leaves when
 * level is -1, i.e. cells are tiles); returns the cells of the new level. */
static rcell *pack_level(rtree_load *L, int level, const rcell *cells,
                         int64_t n)
{
    int l = level + 1; /* the level of the nodes made here */
    int64_t k = L->count[l], t;
    rcell *up = malloc((size_t)k * sizeof *up);

    if (!up)
        return NULL;
    for (t = 0; t < k; t++) {
        int64_t a = t * n / k, b = (t + 1) * n / k, e;
        up[t].id = L->first[l] + t;
        if (write_node(L, up[t].id, L->levels - 1, cells + a, (int)(b - a),
                       up[t].box)) {
            free(up);
            return NULL;
        }
        for (e = a; e < b; e++)
            if (write_link(level < 0 ? L->rowid : L->parent, cells[e].id,
                           up[t].id)) {
                free(up);
                return NULL;
            }
    }
    return up;
}

static int load_rtree(sqlite3 *db, const rcell *tiles, int64_t n,
                      const char *path, rapid_err *err)
{
    rtree_load L;
    sqlite3_stmt *q = NULL;
    rcell *cur = NULL, *next;
    int64_t ncur = n;
    int l, rc = 0;

    memset(&L, 0, sizeof L);
    L.db = db;
    /* The module sized its (empty) root node when the table was made. */
    if (sqlite3_prepare_v2(db, "SELECT length(data) FROM vskytiles_node "
                               "WHERE nodeno=1", -1, &q, NULL) ||
        sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return db_fail(err, db, path, "reading the R*Tree node size");
    }
    L.node_size = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    L.max_cells = (L.node_size - 4) / 24;
    if (L.max_cells < 4)
        return rapid_fail(err, RAPID_E_DB, "%s: R*Tree nodes of %d bytes",
                          path, L.node_size);
    plan_levels(&L, n);
    if (!(L.blob = malloc((size_t)L.node_size)))
        return RAPID_E_NOMEM;
    if (sqlite3_exec(db, "DELETE FROM vskytiles_node", NULL, NULL, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO vskytiles_node VALUES(?,?)", -1,
                           &L.node, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO vskytiles_parent VALUES(?,?)", -1,
                           &L.parent, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO vskytiles_rowid VALUES(?,?)", -1,
                           &L.rowid, NULL)) {
        rc = db_fail(err, db, path, "preparing the R*Tree load");
        goto cleanup;
    }
    for (l = -1; l < L.levels - 1; l++) {
        next = pack_level(&L, l, l < 0 ? tiles : cur, ncur);
        if (!next) {
            rc = db_fail(err, db, path, "writing R*Tree nodes");
            goto cleanup;
        }
        free(cur);
        cur = next;
        ncur = L.count[l + 1];
    }
cleanup:
    free(cur);
    free(L.blob);
    sqlite3_finalize(L.node);
    sqlite3_finalize(L.parent);
    sqlite3_finalize(L.rowid);
    return rc;
}

/* ----------------------------------------------------------- tables */

static int write_tiles(sqlite3 *db, int nside, const char *path,
                       rapid_progress_fn progress, void *arg, rapid_err *err)
{
    sqlite3_stmt *st = NULL, *bins = NULL;
    int64_t rtid, total = rapid_tile_count(nside);
    rcell *cells = malloc((size_t)total * sizeof *cells);
    int rc = 0, lastdb = 0;
    rapid_tile t = {0};

    if (!cells)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for %lld tiles",
                          path, (long long)total);
    if (sqlite3_prepare_v2(db, "INSERT INTO skytiles VALUES(?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO decbins VALUES(?,?,?)", -1, &bins,
                           NULL)) {
        rc = db_fail(err, db, path, "preparing inserts");
        goto cleanup;
    }
    for (rtid = 1; rtid <= total; rtid++) {
        rcell *c = &cells[rtid - 1];
        if (rapid_tile_get(nside, rtid, &t, err) != 0) {
            rc = err ? err->code : RAPID_E_RANGE;
            goto cleanup;
        }
        sqlite3_bind_double(st, 1, t.cra);
        sqlite3_bind_double(st, 2, t.cdec);
        sqlite3_bind_double(st, 3, t.ramin);
        sqlite3_bind_double(st, 4, t.ramax);
        sqlite3_bind_double(st, 5, t.decmax);
        sqlite3_bind_double(st, 6, t.decmin);
        sqlite3_bind_int64(st, 7, t.rtid);
        sqlite3_bind_int(st, 8, t.dbid);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(err, db, path, "inserting a tile");
            goto cleanup;
        }
        sqlite3_reset(st);
        c->id = t.rtid;
        c->box[0] = round_down(t.ramin), c->box[1] = round_up(t.ramax);
        c->box[2] = round_down(t.decmin), c->box[3] = round_up(t.decmax);
        if (t.dbid != lastdb) {
            lastdb = t.dbid;
            sqlite3_bind_int(bins, 1, t.dbid);
            sqlite3_bind_double(bins, 2, t.cdec);
            sqlite3_bind_int64(bins, 3, t.nrabins);
            if (sqlite3_step(bins) != SQLITE_DONE) {
                rc = db_fail(err, db, path, "inserting a declination bin");
                goto cleanup;
            }
            sqlite3_reset(bins);
        }
        if (progress && rtid % 65536 == 0)
            progress(rtid, total, arg);
    }
    rc = load_rtree(db, cells, total, path, err);
    if (progress && rc == 0)
        progress(total, total, arg);
cleanup:
    free(cells);
    sqlite3_finalize(st);
    sqlite3_finalize(bins);
    return rc;
}

int rapid_tile_export_sqlite(int nside, const char *path,
                             rapid_progress_fn progress, void *arg,
                             rapid_err *err)
{
    sqlite3 *db = NULL;
    char tmp[4096];
    struct stat sb;
    int rc = 0, fd;

    if (rapid_tile_count(nside) == 0)
        return rapid_fail(err, RAPID_E_ARG, "invalid NSIDE %d", nside);
    if (stat(path, &sb) == 0)
        return rapid_fail(err, RAPID_E_IO,
                          "%s: already exists; remove it first", path);
    /* Written beside the target and renamed into place, so that the target
     * is never half-written; messages name the target, which the user
     * gave. */
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >=
        (int)sizeof tmp)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", path);
    unlink(tmp);
    /* Made here first: SQLite's "unable to open database file" would not
     * say why. */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666)) < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot create: %s", path,
                          strerror(errno));
    close(fd);
    if (sqlite3_open(tmp, &db) != SQLITE_OK) {
        rc = db_fail(err, db, path, "cannot create");
        goto cleanup;
    }
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, path, "creating tables");
        goto cleanup;
    }
    if ((rc = write_tiles(db, nside, path, progress, arg, err)) != 0)
        goto cleanup;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, path, "committing");
        goto cleanup;
    }
    if (sqlite3_close(db) != SQLITE_OK) {
        rc = db_fail(err, db, path, "closing");
        goto cleanup;
    }
    db = NULL;
    if (rename(tmp, path) != 0)
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot move the finished file "
                        "into place: %s", path, strerror(errno));
cleanup:
    if (db)
        sqlite3_close(db);
    if (rc)
        unlink(tmp);
    return rc;
}
