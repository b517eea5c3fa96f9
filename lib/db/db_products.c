/* db_products.c - versioned products and jobs in the database.
 *
 * The vbest rules (rapid/db.h) are applied here for every kind of product
 * through one table of statements per kind, each kind with its natural key.
 * Writers of the same key take turns (db_lock_key), so that two confirms
 * at once cannot both end as the best.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "rapid/filters.h"
#include "rapid/tile.h"

typedef struct kind_sql {
    const char *table, *idcol;
    int nkey;
    const char *key;      /* the key columns and vbest of a row */
    const char *locked;   /* other versions of the key locked by hand */
    const char *demote;   /* other best versions of the key drop to 0 */
    const char *confirm;  /* vbest = ?, status 1 */
    const char *setvbest; /* vbest = ? */
    const char *setfile;  /* filename, checksum */
    const char *demote_new; /* before a version confirmed as it is added */
} kind_sql;

#define KIND(T, ID, KCOLS, KWHERE, NK)                                       \
    {T, ID, NK, "SELECT " KCOLS ", vbest FROM " T " WHERE " ID " = ?",       \
     "SELECT count(*) FROM " T " WHERE " KWHERE " AND vbest = 2 AND " ID     \
     " <> ?",                                                                \
     "UPDATE " T " SET vbest = 0 WHERE " KWHERE " AND vbest > 0 AND " ID     \
     " <> ?",                                                                \
     "UPDATE " T " SET vbest = ?, status = 1 WHERE " ID " = ?",              \
     "UPDATE " T " SET vbest = ? WHERE " ID " = ?",                          \
     "UPDATE " T " SET filename = ?, checksum = ? WHERE " ID " = ?",         \
     "UPDATE " T " SET vbest = 0 WHERE " KWHERE " AND vbest = 1 AND NOT"     \
     " EXISTS (SELECT 1 FROM " T " WHERE " KWHERE " AND vbest = 2)"}

#define REF_KEY "field = ? AND fid = ? AND ppid = ?"
#define DIFF_KEY "rid = ? AND ppid = ? AND method = ?"

static const kind_sql kinds[] = {
    KIND("l2files", "rid", "expid, sca", "expid = ? AND sca = ?", 2),
    KIND("psfs", "psfid", "fid, sca", "fid = ? AND sca = ?", 2),
    KIND("refimages", "rfid", "field, fid, ppid", REF_KEY, 3),
    KIND("diffimages", "pid", "rid, ppid, method", DIFF_KEY, 3),
};

/* The key of a product row: key[0..nkey-1], then its vbest. */
typedef struct product_key {
    int64_t v[4];
    int found;
} product_key;

static int row_key(const db_row *r, void *arg)
{
    product_key *k = arg;
    int i;

    for (i = 0; i < 4; i++)
        k->v[i] = db_col_int(r, i);
    k->found = 1;
    return 1;
}

/* Look up the row's key and hold the key's lock; in a transaction.  The
 * statements that follow keep the one-best index satisfied at every step:
 * the other versions drop before this one rises. */
static int lock_row(rapid_db *db, const kind_sql *ks, rapid_product kind,
                    int64_t id, product_key *k, rapid_err *err)
{
    db_val p[1] = {DV_INT(id)};
    int rc;

    memset(k, 0, sizeof *k);
    if ((rc = db_query(db, ks->key, p, 1, row_key, k, err)) < 0)
        return rc;
    if (!k->found)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no %s row with %s %lld",
                          db->url, ks->table, ks->idcol, (long long)id);
    return db_lock_key(db, kind, k->v, ks->nkey, err);
}

/* Parameters: the key values, then the id. */
static int key_params(const kind_sql *ks, const product_key *k, int64_t id,
                      db_val *p)
{
    int i;

    for (i = 0; i < ks->nkey; i++)
        p[i] = DV_INT(k->v[i]);
    p[i] = DV_INT(id);
    return i + 1;
}

static int row_count(const db_row *r, void *arg)
{
    *(int64_t *)arg = db_col_int(r, 0);
    return 0;
}

static int bad_kind(rapid_err *err, int kind)
{
    return rapid_fail(err, RAPID_E_ARG, "unknown product kind %d", kind);
}

int rapid_db_confirm(rapid_db *db, rapid_product kind, int64_t id,
                     int *vbest, rapid_err *err)
{
    const kind_sql *ks;
    product_key k;
    db_val p[4];
    int64_t locked = 0;
    int rc, np, best = 0;

    if ((unsigned)kind >= sizeof kinds / sizeof kinds[0])
        return bad_kind(err, kind);
    ks = &kinds[kind];
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = lock_row(db, ks, kind, id, &k, err)) != 0)
        goto cleanup;
    np = key_params(ks, &k, id, p);
    if (k.v[ks->nkey] == 2) {
        best = 2; /* confirming the locked version itself */
    } else {
        if ((rc = db_query(db, ks->locked, p, np, row_count, &locked, err)))
            goto cleanup;
        if (!locked &&
            (rc = db_query(db, ks->demote, p, np, NULL, NULL, err)) != 0)
            goto cleanup;
        best = locked ? 0 : 1;
    }
    {
        db_val q[2] = {DV_INT(best), DV_INT(id)};
        rc = db_query(db, ks->confirm, q, 2, NULL, NULL, err);
    }
cleanup:
    if (!rc && vbest)
        *vbest = best;
    return db_tx_end(db, rc, err);
}

int rapid_db_set_vbest(rapid_db *db, rapid_product kind, int64_t id,
                       int vbest, rapid_err *err)
{
    const kind_sql *ks;
    product_key k;
    db_val p[4];
    int rc;

    if ((unsigned)kind >= sizeof kinds / sizeof kinds[0])
        return bad_kind(err, kind);
    if (vbest < 0 || vbest > 2)
        return rapid_fail(err, RAPID_E_ARG, "vbest %d: must be 0, 1 or 2", vbest);
    ks = &kinds[kind];
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = lock_row(db, ks, kind, id, &k, err)) != 0)
        goto cleanup;
    /* By hand, the operator's choice wins over any earlier lock. */
    if (vbest > 0 && (rc = db_query(db, ks->demote, p,
                                    key_params(ks, &k, id, p), NULL, NULL,
                                    err)) != 0)
        goto cleanup;
    {
        db_val q[2] = {DV_INT(vbest), DV_INT(id)};
        rc = db_query(db, ks->setvbest, q, 2, NULL, NULL, err);
    }
cleanup:
    return db_tx_end(db, rc, err);
}

int rapid_db_set_file(rapid_db *db, rapid_product kind, int64_t id,
                      const char *filename, const char *checksum,
                      rapid_err *err)
{
    const kind_sql *ks;
    char name[DB_NAME_MAX];
    db_val p[3] = {DV_TEXT(name), DV_TEXT(checksum), DV_INT(id)};
    int rc;

    if ((unsigned)kind >= sizeof kinds / sizeof kinds[0])
        return bad_kind(err, kind);
    ks = &kinds[kind];
    if ((rc = db_name_store(filename, name, err)) != 0) {
        rapid_err_prefix(err, "%s %lld", ks->table, (long long)id);
        return rc;
    }
    if ((rc = db_query(db, ks->setfile, p, 3, NULL, NULL, err)) != 0)
        return rc;
    if (db->ops->changes(db) == 0)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no %s row with %s %lld",
                          db->url, ks->table, ks->idcol, (long long)id);
    return 0;
}

int rapid_db_swversion(rapid_db *db, const char *gitcommit,
                       const char *version, int64_t *svid, rapid_err *err)
{
    static const char ins[] = "INSERT INTO swversions(gitcommit, version)"
                              " VALUES(?, ?) ON CONFLICT (gitcommit) DO NOTHING";
    static const char sel[] = "SELECT svid FROM swversions WHERE gitcommit = ?";
    db_val p[2] = {DV_TEXT(gitcommit), version ? DV_TEXT(version) : DV_NULL};
    int rc;

    *svid = 0;
    if (!gitcommit || !*gitcommit)
        return rapid_fail(err, RAPID_E_ARG, "software version: no git commit");
    if ((rc = db_tx_begin(db, err)) == 0 &&
        (rc = db_query(db, ins, p, 2, NULL, NULL, err)) == 0)
        rc = db_query(db, sel, p, 1, row_count, svid, err);
    return db_tx_end(db, rc, err);
}

/* ---------------------------------------------------- reference images */

static int insert_refimmeta(rapid_db *db, int64_t rfid,
                            const rapid_refimmeta *m, rapid_err *err)
{
    static const char sql[] =
        "INSERT INTO refimmeta(rfid, nframes, mjdobsmin, mjdobsmax, npixsat,"
        " npixnan, clmean, clstddev, clnoutliers, gmedian, datascale, gmin,"
        " gmax, cov5percent, medncov, medpixunc, fwhmmedpix, fwhmminpix,"
        " fwhmmaxpix, nsexcatsources) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    db_val p[20] = {
        DV_INT(rfid),          DV_INT(m->nframes),     DV_DBL(m->mjdobsmin),
        DV_DBL(m->mjdobsmax),  DV_INT(m->npixsat),     DV_INT(m->npixnan),
        DV_DBL(m->clmean),     DV_DBL(m->clstddev),    DV_INT(m->clnoutliers),
        DV_DBL(m->gmedian),    DV_DBL(m->datascale),   DV_DBL(m->gmin),
        DV_DBL(m->gmax),       DV_DBL(m->cov5percent), DV_DBL(m->medncov),
        DV_DBL(m->medpixunc),  DV_DBL(m->fwhmmedpix),  DV_DBL(m->fwhmminpix),
        DV_DBL(m->fwhmmaxpix), DV_INT(m->nsexcatsources)};

    return db_query(db, sql, p, 20, NULL, NULL, err);
}

static int insert_inputs(rapid_db *db, int64_t rfid, const int64_t *rids,
                         int n, rapid_err *err)
{
    static const char sql[] = "INSERT INTO refimimages(rfid, rid) VALUES(?, ?)"
                              " ON CONFLICT DO NOTHING";
    int i, rc = 0;

    for (i = 0; i < n && !rc; i++) {
        db_val p[2] = {DV_INT(rfid), DV_INT(rids[i])};
        rc = db_query(db, sql, p, 2, NULL, NULL, err);
    }
    return rc;
}

static int check_product(rapid_err *err, const char *what, int fid, int ppid)
{
    if ((fid && !rapid_filter_by_fid(fid)) ||
        (ppid != RAPID_PPID_REFIMAGE && ppid != RAPID_PPID_SCIENCE &&
         ppid != RAPID_PPID_POSTPROC))
        return rapid_fail(err, RAPID_E_ARG, "%s: fid %d or ppid %d unknown",
                          what, fid, ppid);
    return 0;
}

/* A new version of a product, in its own transaction (or the caller's):
 * version_begin takes the key's lock and, for a version confirmed as it
 * is added, drops the key's other best versions first (unless one of
 * them is locked), so that the one-best index holds at every step; the
 * INSERT, written with NEW_VERSION for its columns version, vbest and
 * status, numbers the version (the key's last + 1) and gives it vbest 1,
 * or 0 beside a locked version - what rapid_db_confirm would give it - or
 * vbest 0 and status 0 when it is left for rapid_db_confirm.  None of
 * these statements needs an answer before the INSERT: PostgreSQL sends
 * them together.  NEW_VERSION's parameters (nver = 2 nkey + 2) come from
 * version_begin, called in the transaction; version_end ends it. */
#define NEW_VERSION(T, KWHERE)                                               \
    "(SELECT coalesce(max(version), 0) + 1 FROM " T " WHERE " KWHERE "),"    \
    " CASE WHEN ? = 0 OR EXISTS (SELECT 1 FROM " T " WHERE " KWHERE          \
    " AND vbest = 2) THEN 0 ELSE 1 END, ?"

static int version_begin(rapid_db *db, rapid_product kind, const int64_t *key,
                         int confirm, db_val *ver, rapid_err *err)
{
    const kind_sql *ks = &kinds[kind];
    int i, n = ks->nkey, rc;

    for (i = 0; i < n; i++)
        ver[i] = ver[n + 1 + i] = DV_INT(key[i]);
    ver[n] = ver[2 * n + 1] = DV_INT(confirm != 0);
    if ((rc = db_lock_key(db, kind, key, n, err)) == 0 && confirm) {
        db_val p[6];
        for (i = 0; i < n; i++)
            p[i] = p[n + i] = DV_INT(key[i]);
        rc = db_query(db, ks->demote_new, p, 2 * n, NULL, NULL, err);
    }
    return rc;
}

static int version_end(rapid_db *db, int rc, const char *what,
                       const char *filename, rapid_err *err)
{
    if (rc)
        rapid_err_prefix(err, "adding %s %s", what, filename);
    return db_tx_end(db, rc, err);
}

typedef struct new_row {
    int64_t id;
    int version, vbest, status;
    char *created; /* NULL: not read */
} new_row;

static int row_new(const db_row *r, void *arg)
{
    new_row *x = arg;

    x->id = db_col_int(r, 0), x->version = (int)db_col_int(r, 1);
    x->vbest = (int)db_col_int(r, 2), x->status = (int)db_col_int(r, 3);
    if (x->created)
        db_time_canon(db_col_text(r, 4), x->created);
    return 0;
}

static int add_refimage(rapid_db *db, rapid_refimage *r,
                        const rapid_refimmeta *meta, const int64_t *rids,
                        int nrids, int confirm, rapid_err *err)
{
    static const char ins[] =
        "INSERT INTO refimages(field, hp6, hp9, fid, ppid, filename,"
        " checksum, infobits, svid, version, vbest, status) VALUES(?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, " NEW_VERSION("refimages", REF_KEY) ")"
        " RETURNING rfid, version, vbest, status, created";
    int64_t key[3] = {r->field, r->fid, r->ppid};
    new_row got = {0, 0, 0, 0, r->created};
    char name[DB_NAME_MAX];
    db_val p[17];
    rapid_tile t;
    int rc;

    if ((rc = check_product(err, r->filename, r->fid, r->ppid)) != 0 ||
        (rc = rapid_tile_get(RAPID_TILE_NSIDE, r->field, &t, err)) != 0)
        return rc;
    if (r->filename[0] && (rc = db_name_store(r->filename, name, err)) != 0) {
        rapid_err_prefix(err, "reference image");
        return rc;
    }
    p[0] = DV_INT(r->field), p[1] = DV_INT(db_healpix(64, t.cra, t.cdec));
    p[2] = DV_INT(db_healpix(512, t.cra, t.cdec)), p[3] = DV_INT(r->fid);
    p[4] = DV_INT(r->ppid), p[5] = r->filename[0] ? DV_TEXT(name) : DV_NULL;
    p[6] = DV_TEXT(r->checksum), p[7] = DV_INT(r->infobits);
    p[8] = r->svid ? DV_INT(r->svid) : DV_NULL;
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = version_begin(db, RAPID_PRODUCT_REFIMAGE, key, confirm, p + 9,
                            err)) != 0 ||
        (rc = db_query(db, ins, p, 17, row_new, &got, err)) != 0)
        goto cleanup;
    r->rfid = got.id, r->version = got.version;
    r->vbest = got.vbest, r->status = got.status;
    if ((meta && (rc = insert_refimmeta(db, r->rfid, meta, err)) != 0) ||
        (rc = insert_inputs(db, r->rfid, rids, nrids, err)) != 0)
        goto cleanup;
cleanup:
    return version_end(db, rc, "reference image", r->filename, err);
}

int rapid_db_add_refimage(rapid_db *db, rapid_refimage *r,
                          const rapid_refimmeta *meta, const int64_t *rids,
                          int nrids, rapid_err *err)
{
    return add_refimage(db, r, meta, rids, nrids, 0, err);
}

int rapid_db_add_refimage_confirmed(rapid_db *db, rapid_refimage *r,
                                    const rapid_refimmeta *meta,
                                    const int64_t *rids, int nrids,
                                    rapid_err *err)
{
    return add_refimage(db, r, meta, rids, nrids, 1, err);
}

int rapid_db_add_refimcatalog(rapid_db *db, int64_t rfid, int ppid,
                              int cattype, const char *filename,
                              const char *checksum, int64_t *rfcatid,
                              rapid_err *err)
{
    static const char sql[] =
        "INSERT INTO refimcatalogs(rfid, ppid, cattype, filename, checksum,"
        " status) VALUES(?, ?, ?, ?, ?, 1) ON CONFLICT (rfid, ppid, cattype)"
        " DO UPDATE SET filename = excluded.filename,"
        " checksum = excluded.checksum, status = 1 RETURNING rfcatid";
    char name[DB_NAME_MAX];
    db_val p[5] = {DV_INT(rfid), DV_INT(ppid), DV_INT(cattype),
                   DV_TEXT(name), checksum ? DV_TEXT(checksum) : DV_NULL};
    int rc;

    if (rfcatid)
        *rfcatid = 0;
    if ((rc = db_name_store(filename, name, err)) != 0) {
        rapid_err_prefix(err, "catalog of reference image %lld",
                         (long long)rfid);
        return rc;
    }
    if ((rc = check_product(err, filename, 0, ppid)) != 0)
        return rc;
    if (cattype != 1 && cattype != 2)
        return rapid_fail(err, RAPID_E_ARG, "%s: catalog type %d: must be 1 "
                          "(source extraction) or 2 (PSF fit)", filename, cattype);
    return db_query(db, sql, p, 5, rfcatid ? row_count : NULL, rfcatid, err);
}

static int row_refimage(const db_row *r, void *arg)
{
    rapid_refimage *x = arg;

    x->rfid = db_col_int(r, 0), x->field = db_col_int(r, 1);
    x->fid = (int)db_col_int(r, 2), x->ppid = (int)db_col_int(r, 3);
    x->version = (int)db_col_int(r, 4), x->vbest = (int)db_col_int(r, 5);
    x->status = (int)db_col_int(r, 6), x->infobits = (int)db_col_int(r, 7);
    x->svid = db_col_int(r, 8);
    db_name_decode(db_col_text(r, 9), x->filename, sizeof x->filename);
    snprintf(x->checksum, sizeof x->checksum, "%s", db_col_text(r, 10));
    db_time_canon(db_col_text(r, 11), x->created);
    return 1;
}

int rapid_db_best_refimage(rapid_db *db, int64_t field, int fid,
                           rapid_refimage *r, int *found, rapid_err *err)
{
    static const char sql[] =
        "SELECT rfid, field, fid, ppid, version, vbest, status, infobits,"
        " svid, filename, checksum, created FROM refimages"
        " WHERE field = ? AND fid = ? AND vbest > 0 AND status > 0"
        " ORDER BY vbest DESC, rfid DESC";
    db_val p[2] = {DV_INT(field), DV_INT(fid)};
    int rc;

    memset(r, 0, sizeof *r);
    rc = db_query(db, sql, p, 2, row_refimage, r, err);
    *found = r->rfid != 0;
    return rc < 0 ? rc : 0;
}

typedef struct id_list {
    int64_t *v;
    int n, cap;
} id_list;

static int add_id(const db_row *r, void *arg)
{
    id_list *L = arg;
    int64_t *grown;

    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 32;
        if (!(grown = realloc(L->v, (size_t)cap * sizeof *grown)))
            return RAPID_E_NOMEM;
        L->v = grown, L->cap = cap;
    }
    L->v[L->n++] = db_col_int(r, 0);
    return 0;
}

int rapid_db_refimage_inputs(rapid_db *db, int64_t rfid, int64_t **rids,
                             int *n, rapid_err *err)
{
    static const char sql[] =
        "SELECT rid FROM refimimages WHERE rfid = ? ORDER BY rid";
    db_val p[1] = {DV_INT(rfid)};
    id_list L = {NULL, 0, 0};
    int rc = db_query(db, sql, p, 1, add_id, &L, err);

    *rids = NULL, *n = 0;
    if (rc) {
        free(L.v);
        return rc == RAPID_E_NOMEM ? rapid_fail(err, rc, "out of memory") : rc;
    }
    *rids = L.v, *n = L.n;
    return 0;
}

/* --------------------------------------------------- difference images */

typedef struct sci_row {
    int64_t expid, field, hp6, hp9;
    int sca, fid, found;
    double mjdobs;
} sci_row;

static int row_sci(const db_row *r, void *arg)
{
    sci_row *s = arg;

    s->expid = db_col_int(r, 0), s->sca = (int)db_col_int(r, 1);
    s->fid = (int)db_col_int(r, 2), s->field = db_col_int(r, 3);
    s->hp6 = db_col_int(r, 4), s->hp9 = db_col_int(r, 5);
    s->mjdobs = db_col_dbl(r, 6);
    s->found = 1;
    return 1;
}

static int science_row(rapid_db *db, int64_t rid, sci_row *s, rapid_err *err)
{
    static const char sql[] = "SELECT expid, sca, fid, field, hp6, hp9, mjdobs"
                              " FROM l2files WHERE rid = ?";
    db_val p[1] = {DV_INT(rid)};
    int rc;

    memset(s, 0, sizeof *s);
    if ((rc = db_query(db, sql, p, 1, row_sci, s, err)) < 0)
        return rc;
    if (!s->found)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no L2 file with rid %lld",
                          db->url, (long long)rid);
    return 0;
}

/* The metadata of the key's last version: the one just added, under the
 * key's lock (its pid is not needed, nor waited for). */
static int insert_diffimmeta(rapid_db *db, const rapid_diffimage *d,
                             const rapid_diffimmeta *m, rapid_err *err)
{
    static const char sql[] =
        "INSERT INTO diffimmeta(pid, method, nsexcatsources, scalefacref,"
        " dxrmsfin, dyrmsfin, dxmedianfin, dymedianfin, nmatches)"
        " SELECT pid, method, ?, ?, ?, ?, ?, ?, ? FROM diffimages WHERE "
        DIFF_KEY " ORDER BY version DESC LIMIT 1";
    db_val p[10] = {DV_INT(m->nsexcatsources), DV_DBL(m->scalefacref),
                    DV_DBL(m->dxrmsfin),        DV_DBL(m->dyrmsfin),
                    DV_DBL(m->dxmedianfin),     DV_DBL(m->dymedianfin),
                    DV_INT(m->nmatches),        DV_INT(d->rid),
                    DV_INT(d->ppid),            DV_INT(d->method)};

    return db_query(db, sql, p, 10, NULL, NULL, err);
}

/* The science image's columns are copied by the INSERT; without an L2
 * row of d->rid they are NULL, and expid's NOT NULL fails it. */
static int add_diffimage(rapid_db *db, rapid_diffimage *d,
                         const rapid_diffimmeta *meta, int confirm,
                         rapid_err *err)
{
    static const char ins[] =
        "INSERT INTO diffimages(rid, ppid, method, rfid, expid, sca, fid,"
        " field, hp6, hp9, jd, ra0, dec0, ra1, dec1, ra2, dec2, ra3, dec3,"
        " ra4, dec4, infobitssci, infobitsref, filename, checksum, svid,"
        " version, vbest, status) SELECT x.rid, ?, ?, ?, l.expid, l.sca,"
        " l.fid, l.field, l.hp6, l.hp9, l.mjdobs + 2400000.5, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " NEW_VERSION("diffimages", DIFF_KEY)
        " FROM (SELECT CAST(? AS BIGINT) AS rid) x LEFT JOIN l2files l"
        " ON l.rid = x.rid RETURNING pid, version, vbest, status";
    int64_t key[3] = {d->rid, d->ppid, d->method};
    new_row got = {0, 0, 0, 0, NULL};
    char name[DB_NAME_MAX];
    db_val p[27];
    int k = 0, i, rc;

    if ((rc = check_product(err, d->filename, 0, d->ppid)) != 0)
        return rc;
    if (d->method < RAPID_DIFF_ZOGY || d->method > RAPID_DIFF_NAIVE)
        return rapid_fail(err, RAPID_E_ARG, "%s: difference method %d: must "
                          "be 1 (ZOGY), 2 (kernel fit) or 3 (naive)",
                          d->filename, d->method);
    if (d->filename[0] && (rc = db_name_store(d->filename, name, err)) != 0) {
        rapid_err_prefix(err, "difference image");
        return rc;
    }
    p[k++] = DV_INT(d->ppid), p[k++] = DV_INT(d->method);
    p[k++] = d->rfid ? DV_INT(d->rfid) : DV_NULL;
    for (i = 0; i < 5; i++)
        p[k++] = DV_DBL(d->ra[i]), p[k++] = DV_DBL(d->dec[i]);
    p[k++] = DV_INT(d->infobitssci), p[k++] = DV_INT(d->infobitsref);
    p[k++] = d->filename[0] ? DV_TEXT(name) : DV_NULL;
    p[k++] = DV_TEXT(d->checksum);
    p[k++] = d->svid ? DV_INT(d->svid) : DV_NULL;
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = version_begin(db, RAPID_PRODUCT_DIFFIMAGE, key, confirm, p + k,
                            err)) != 0)
        goto cleanup;
    k += 8;
    p[k++] = DV_INT(d->rid);
    if (!confirm) {
        /* the answer is read: a missing L2 file said as such */
        sci_row s;
        if ((rc = science_row(db, d->rid, &s, err)) != 0 ||
            (rc = db_query(db, ins, p, k, row_new, &got, err)) != 0)
            goto cleanup;
        d->pid = got.id, d->version = got.version;
        d->vbest = got.vbest, d->status = got.status;
    } else if ((rc = db_query(db, ins, p, k, NULL, NULL, err)) != 0) {
        goto cleanup;
    }
    if (meta)
        rc = insert_diffimmeta(db, d, meta, err);
cleanup:
    return version_end(db, rc, "difference image", d->filename, err);
}

int rapid_db_add_diffimage(rapid_db *db, rapid_diffimage *d,
                           const rapid_diffimmeta *meta, rapid_err *err)
{
    return add_diffimage(db, d, meta, 0, err);
}

int rapid_db_add_diffimage_confirmed(rapid_db *db, rapid_diffimage *d,
                                     const rapid_diffimmeta *meta,
                                     rapid_err *err)
{
    d->pid = 0, d->version = 0, d->vbest = 0, d->status = 0;
    return add_diffimage(db, d, meta, 1, err);
}

/* ------------------------------------------------------------- jobs */

#define JOB_COLS                                                             \
    "jid, ppid, rid, expid, field, fid, sca, procdate, machine, launched,"   \
    " started, ended, qwaited, elapsed, exitcode, status, slurm,"            \
    " awsbatchjobid"

static int read_job(const db_row *r, rapid_job *j)
{
    memset(j, 0, sizeof *j);
    j->jid = db_col_int(r, 0), j->ppid = (int)db_col_int(r, 1);
    j->rid = db_col_int(r, 2), j->expid = db_col_int(r, 3);
    j->field = db_col_int(r, 4), j->fid = (int)db_col_int(r, 5);
    j->sca = (int)db_col_int(r, 6), j->procdate = (int)db_col_int(r, 7);
    snprintf(j->machine, sizeof j->machine, "%s", db_col_text(r, 8));
    db_time_canon(db_col_text(r, 9), j->launched);
    db_time_canon(db_col_text(r, 10), j->started);
    db_time_canon(db_col_text(r, 11), j->ended);
    j->qwaited = db_col_dbl(r, 12), j->elapsed = db_col_dbl(r, 13);
    j->exitcode = db_col_null(r, 14) ? -1 : (int)db_col_int(r, 14);
    j->status = (int)db_col_int(r, 15);
    snprintf(j->slurm, sizeof j->slurm, "%s", db_col_text(r, 16));
    snprintf(j->awsbatchjobid, sizeof j->awsbatchjobid, "%s",
             db_col_text(r, 17));
    return 0;
}

static int row_job(const db_row *r, void *arg)
{
    read_job(r, arg);
    return 1;
}

static int check_procdate(rapid_err *err, int procdate)
{
    int m = procdate / 100 % 100, d = procdate % 100;

    if (procdate < 19000101 || procdate > 99991231 || m < 1 || m > 12 ||
        d < 1 || d > 31)
        return rapid_fail(err, RAPID_E_ARG,
                          "processing date %d is not a date yyyymmdd", procdate);
    return 0;
}

int rapid_db_start_job(rapid_db *db, int ppid, int64_t rid, int procdate,
                       const char *machine, int64_t *jid, rapid_err *err)
{
    /* One row per (ppid, rid): a restart reuses it (and its jid) and
     * clears what the earlier run recorded. */
    static const char sql[] =
        "INSERT INTO jobs(ppid, rid, fid, expid, sca, field, procdate, machine,"
        " launched, status) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
        " ON CONFLICT (ppid, rid) DO UPDATE SET fid = excluded.fid,"
        " expid = excluded.expid, sca = excluded.sca, field = excluded.field,"
        " procdate = excluded.procdate, machine = excluded.machine,"
        " launched = excluded.launched, qwaited = NULL, started = NULL,"
        " ended = NULL, elapsed = NULL, exitcode = NULL, status = 0,"
        " slurm = NULL, awsbatchjobid = NULL RETURNING jid";
    char now[RAPID_DB_TIME_MAX];
    sci_row s;
    int rc;

    *jid = 0;
    if ((rc = check_product(err, "job", 0, ppid)) != 0 ||
        (rc = check_procdate(err, procdate)) != 0)
        return rc;
    rapid_time_format(rapid_time_now(), now);
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = science_row(db, rid, &s, err)) == 0) {
        db_val p[9] = {DV_INT(ppid),     DV_INT(rid),      DV_INT(s.fid),
                       DV_INT(s.expid),  DV_INT(s.sca),    DV_INT(s.field),
                       DV_INT(procdate), machine ? DV_TEXT(machine) : DV_NULL,
                       DV_TEXT(now)};
        rc = db_query(db, sql, p, 9, row_count, jid, err);
    }
    if (rc)
        rapid_err_prefix(err, "starting the job of ppid %d, rid %lld", ppid,
                         (long long)rid);
    return db_tx_end(db, rc, err);
}

int rapid_db_get_job(rapid_db *db, int64_t jid, rapid_job *job,
                     rapid_err *err)
{
    static const char sql[] = "SELECT " JOB_COLS " FROM jobs WHERE jid = ?";
    db_val p[1] = {DV_INT(jid)};
    int rc;

    memset(job, 0, sizeof *job);
    if ((rc = db_query(db, sql, p, 1, row_job, job, err)) < 0)
        return rc;
    if (job->jid != jid)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no job with jid %lld",
                          db->url, (long long)jid);
    return 0;
}

int rapid_db_lock_job(rapid_db *db, int64_t jid, rapid_job *job,
                      rapid_err *err)
{
    static const char sql[] =
        "SELECT " JOB_COLS " FROM jobs WHERE jid = ? FOR UPDATE";
    db_val p[1] = {DV_INT(jid)};
    int rc;

    if (db->txdepth == 0)
        return rapid_fail(err, RAPID_E_ARG, "job %lld: locked outside a"
                          " transaction", (long long)jid);
    if (!db->pg) /* SQLite: one write transaction at a time already */
        return rapid_db_get_job(db, jid, job, err);
    memset(job, 0, sizeof *job);
    if ((rc = db_query(db, sql, p, 1, row_job, job, err)) < 0)
        return rc;
    if (job->jid != jid)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no job with jid %lld",
                          db->url, (long long)jid);
    return 0;
}

static int update_end(rapid_db *db, int64_t jid, const char *launched_at,
                      int exitcode, double started, double ended,
                      rapid_err *err)
{
    static const char sql[] =
        "UPDATE jobs SET exitcode = ?, started = ?, ended = ?, qwaited = ?,"
        " elapsed = ?, status = 1 WHERE jid = ?";
    char t0[RAPID_DB_TIME_MAX], t1[RAPID_DB_TIME_MAX];
    double launched = NAN;

    if (!isfinite(started) || !isfinite(ended) || ended < started)
        return rapid_fail(err, RAPID_E_ARG,
                          "job %lld: end %.6f before start %.6f",
                          (long long)jid, ended, started);
    rapid_time_format(started, t0);
    rapid_time_format(ended, t1);
    if (launched_at[0])
        rapid_time_parse(launched_at, &launched, NULL);
    {
        db_val p[6] = {DV_INT(exitcode), DV_TEXT(t0), DV_TEXT(t1),
                       DV_DBL(started - launched), DV_DBL(ended - started),
                       DV_INT(jid)};
        return db_query(db, sql, p, 6, NULL, NULL, err);
    }
}

int rapid_db_end_job(rapid_db *db, int64_t jid, int exitcode, double started,
                     double ended, rapid_err *err)
{
    rapid_job j;
    int rc;

    if (!isfinite(started) || !isfinite(ended) || ended < started)
        return update_end(db, jid, "", exitcode, started, ended, err);
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = rapid_db_get_job(db, jid, &j, err)) == 0)
        rc = update_end(db, jid, j.launched, exitcode, started, ended, err);
    return db_tx_end(db, rc, err);
}

int rapid_db_end_locked_job(rapid_db *db, const rapid_job *job, int exitcode,
                            double started, double ended, rapid_err *err)
{
    if (db->txdepth == 0)
        return rapid_fail(err, RAPID_E_ARG, "job %lld: ended outside the"
                          " transaction that locked it", (long long)job->jid);
    return update_end(db, job->jid, job->launched, exitcode, started, ended,
                      err);
}

int rapid_db_set_job_executor(rapid_db *db, int64_t jid, const char *slurm,
                              const char *awsbatchjobid, rapid_err *err)
{
    static const char sql[] =
        "UPDATE jobs SET slurm = ?, awsbatchjobid = ? WHERE jid = ?";
    db_val p[3] = {slurm ? DV_TEXT(slurm) : DV_NULL,
                   awsbatchjobid ? DV_TEXT(awsbatchjobid) : DV_NULL,
                   DV_INT(jid)};
    int rc;

    if ((rc = db_query(db, sql, p, 3, NULL, NULL, err)) != 0)
        return rc;
    if (db->ops->changes(db) == 0)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no job with jid %lld",
                          db->url, (long long)jid);
    return 0;
}

typedef struct job_list {
    rapid_job *v;
    int n, cap;
} job_list;

static int add_job(const db_row *r, void *arg)
{
    job_list *L = arg;
    rapid_job *grown;

    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 64;
        if (!(grown = realloc(L->v, (size_t)cap * sizeof *grown)))
            return RAPID_E_NOMEM;
        L->v = grown, L->cap = cap;
    }
    return read_job(r, &L->v[L->n++]);
}

int rapid_db_unclosed_jobs(rapid_db *db, int procdate, int ppid,
                           rapid_job **out, int *n, rapid_err *err)
{
    static const char any[] = "SELECT " JOB_COLS " FROM jobs"
                              " WHERE procdate = ? AND status = 0 ORDER BY jid";
    static const char one[] = "SELECT " JOB_COLS " FROM jobs WHERE procdate = ?"
                              " AND status = 0 AND ppid = ? ORDER BY jid";
    db_val p[2] = {DV_INT(procdate), DV_INT(ppid)};
    job_list L = {NULL, 0, 0};
    int rc;

    *out = NULL, *n = 0;
    if ((rc = check_procdate(err, procdate)) != 0)
        return rc;
    if ((rc = db_query(db, ppid ? one : any, p, ppid ? 2 : 1, add_job, &L,
                       err)) != 0) {
        free(L.v);
        return rc == RAPID_E_NOMEM ? rapid_fail(err, rc, "out of memory") : rc;
    }
    *out = L.v, *n = L.n;
    return 0;
}

/* A reference job has no science image: its row is keyed by its tile and
 * filter instead (rid NULL; the index jobs_refjob), and reused as
 * rapid_db_start_job reuses one - one atomic upsert. */
int rapid_db_start_refjob(rapid_db *db, int64_t field, int fid, int procdate,
                          const char *machine, int64_t *jid, rapid_err *err)
{
    static const char sql[] =
        "INSERT INTO jobs(ppid, fid, field, procdate, machine, launched,"
        " status) VALUES(?, ?, ?, ?, ?, ?, 0)"
        " ON CONFLICT (ppid, field, fid) WHERE rid IS NULL DO UPDATE SET"
        " procdate = excluded.procdate, machine = excluded.machine,"
        " launched = excluded.launched, qwaited = NULL, started = NULL,"
        " ended = NULL, elapsed = NULL, exitcode = NULL, status = 0,"
        " slurm = NULL, awsbatchjobid = NULL RETURNING jid";
    char now[RAPID_DB_TIME_MAX];
    int rc;

    *jid = 0;
    if ((rc = check_product(err, "reference job", fid, RAPID_PPID_REFIMAGE)) ||
        (rc = check_procdate(err, procdate)) != 0)
        return rc;
    rapid_time_format(rapid_time_now(), now);
    {
        db_val p[6] = {DV_INT(RAPID_PPID_REFIMAGE), DV_INT(fid), DV_INT(field),
                       DV_INT(procdate), machine ? DV_TEXT(machine) : DV_NULL,
                       DV_TEXT(now)};
        rc = db_query(db, sql, p, 6, row_count, jid, err);
    }
    if (rc)
        rapid_err_prefix(err, "starting the reference job of field %lld,"
                         " fid %d", (long long)field, fid);
    return rc;
}

int rapid_db_find_job(rapid_db *db, int ppid, int64_t rid, int64_t field,
                      int fid, rapid_job *job, int *found, rapid_err *err)
{
    static const char by_rid[] =
        "SELECT " JOB_COLS " FROM jobs WHERE ppid = ? AND rid = ?";
    static const char by_tile[] =
        "SELECT " JOB_COLS " FROM jobs WHERE ppid = ? AND rid IS NULL"
        " AND field = ? AND fid = ? ORDER BY jid";
    db_val p[3] = {DV_INT(ppid), DV_INT(rid), DV_INT(field)};
    int rc;

    memset(job, 0, sizeof *job);
    *found = 0;
    if (ppid == RAPID_PPID_REFIMAGE) {
        p[1] = DV_INT(field), p[2] = DV_INT(fid);
        rc = db_query(db, by_tile, p, 3, row_job, job, err);
    } else {
        rc = db_query(db, by_rid, p, 2, row_job, job, err);
    }
    if (rc < 0)
        return rc;
    *found = job->jid != 0;
    return 0;
}

int rapid_db_jobs(rapid_db *db, int procdate, int ppid, rapid_job **out,
                  int *n, rapid_err *err)
{
    static const char any[] = "SELECT " JOB_COLS " FROM jobs"
                              " WHERE procdate = ? ORDER BY jid";
    static const char one[] = "SELECT " JOB_COLS " FROM jobs WHERE procdate = ?"
                              " AND ppid = ? ORDER BY jid";
    db_val p[2] = {DV_INT(procdate), DV_INT(ppid)};
    job_list L = {NULL, 0, 0};
    int rc;

    *out = NULL, *n = 0;
    if ((rc = check_procdate(err, procdate)) != 0)
        return rc;
    if ((rc = db_query(db, ppid ? one : any, p, ppid ? 2 : 1, add_job, &L,
                       err)) != 0) {
        free(L.v);
        return rc == RAPID_E_NOMEM ? rapid_fail(err, rc, "out of memory") : rc;
    }
    *out = L.v, *n = L.n;
    return 0;
}

#define REFIMAGE_COLS                                                        \
    "rfid, field, fid, ppid, version, vbest, status, infobits, svid,"        \
    " filename, checksum, created"

int rapid_db_get_refimage(rapid_db *db, int64_t rfid, rapid_refimage *r,
                          rapid_err *err)
{
    static const char sql[] =
        "SELECT " REFIMAGE_COLS " FROM refimages WHERE rfid = ?";
    db_val p[1] = {DV_INT(rfid)};
    int rc;

    memset(r, 0, sizeof *r);
    if ((rc = db_query(db, sql, p, 1, row_refimage, r, err)) < 0)
        return rc;
    if (r->rfid != rfid || !rfid)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no reference image with"
                          " rfid %lld", db->url, (long long)rfid);
    return 0;
}

int rapid_db_refimage_by_file(rapid_db *db, const char *filename,
                              rapid_refimage *r, int *found, rapid_err *err)
{
    static const char sql[] = "SELECT " REFIMAGE_COLS " FROM refimages"
                              " WHERE filename = ? ORDER BY version DESC";
    char name[DB_NAME_MAX];
    db_val p[1] = {DV_TEXT(name)};
    int rc;

    memset(r, 0, sizeof *r);
    *found = 0;
    if ((rc = db_name_store(filename, name, err)) != 0 ||
        (rc = db_query(db, sql, p, 1, row_refimage, r, err)) < 0)
        return rc;
    *found = r->rfid != 0;
    return 0;
}

typedef struct diff_list {
    rapid_diffimage *v;
    int n, max;
} diff_list;

static int row_diff(const db_row *r, void *arg)
{
    diff_list *L = arg;
    rapid_diffimage *d;

    if (L->n == L->max)
        return 1;
    d = &L->v[L->n++];
    memset(d, 0, sizeof *d);
    d->pid = db_col_int(r, 0), d->rid = db_col_int(r, 1);
    d->ppid = (int)db_col_int(r, 2), d->method = (int)db_col_int(r, 3);
    d->rfid = db_col_int(r, 4), d->version = (int)db_col_int(r, 5);
    d->vbest = (int)db_col_int(r, 6), d->status = (int)db_col_int(r, 7);
    d->infobitssci = (int)db_col_int(r, 8);
    d->infobitsref = (int)db_col_int(r, 9);
    d->svid = db_col_int(r, 10);
    db_name_decode(db_col_text(r, 11), d->filename, sizeof d->filename);
    snprintf(d->checksum, sizeof d->checksum, "%s", db_col_text(r, 12));
    return 0;
}

int rapid_db_latest_diffimages(rapid_db *db, int64_t rid, int ppid,
                               rapid_diffimage out[3], int *n,
                               rapid_err *err)
{
    static const char sql[] =
        "SELECT pid, rid, ppid, method, rfid, version, vbest, status,"
        " infobitssci, infobitsref, svid, filename, checksum FROM diffimages d"
        " WHERE rid = ? AND ppid = ? AND version = (SELECT max(version) FROM"
        " diffimages o WHERE o.rid = d.rid AND o.ppid = d.ppid AND"
        " o.method = d.method) ORDER BY method";
    db_val p[2] = {DV_INT(rid), DV_INT(ppid)};
    diff_list L = {out, 0, 3};
    int rc = db_query(db, sql, p, 2, row_diff, &L, err);

    *n = L.n;
    return rc < 0 ? rc : 0;
}
