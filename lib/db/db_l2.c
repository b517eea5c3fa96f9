/* db_l2.c - L2 images and PSFs in the database, and the spatial search.
 *
 * An L2 file is identified by (dateobs, sca, checksum): its exposure row is
 * found or made by dateobs, and a new checksum for a known (expid, sca)
 * becomes the next version.  Each l2files row has an l2filemeta row with
 * its footprint, and on SQLite an R*Tree entry with the footprint's 3-D
 * bounding box on the unit sphere.
 *
 * The search for prior images of a tile runs in two stages: an index
 * narrows the candidates (the R*Tree on SQLite; a Q3C cone around the tile
 * on PostgreSQL, or a declination band and cone without Q3C), then each
 * candidate's footprint is tested exactly against the tile's outline on the
 * tangent plane at the tile centre.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "rapid/filters.h"
#include "rapid/tile.h"
#include "core/sphere.h"

#define DEG (M_PI / 180.0)

/* ------------------------------------------------------ columns */

#define SIP_LIST(p, x)                                                       \
    p x "_order, " p x "_0_2, " p x "_0_3, " p x "_0_4, " p x "_1_1, " p x   \
    "_1_2, " p x "_1_3, " p x "_2_0, " p x "_2_1, " p x "_2_2, " p x         \
    "_3_0, " p x "_3_1, " p x "_4_0"
/* Every l2files column we write, in the order bind_l2 and read_l2 use. */
#define L2_DATA(p)                                                           \
    p "expid, " p "sca, " p "fid, " p "field, " p "hp6, " p "hp9, " p        \
    "dateobs, " p "mjdobs, " p "exptime, " p "infobits, " p "filename, " p   \
    "checksum, " p "status, " p "vbest, " p "version, " p "naxis1, " p       \
    "naxis2, " p "crval1, " p "crval2, " p "crpix1, " p "crpix2, " p         \
    "cd1_1, " p "cd1_2, " p "cd2_1, " p "cd2_2, " SIP_LIST(p, "a") ", "      \
    SIP_LIST(p, "b") ", " p "ra, " p "dec, " p "ra_targ, " p "dec_targ, " p  \
    "pa_obsy, " p "pa_fpa, " p "zptmag, " p "skymean"
#define L2_NDATA 59
#define META_COLS                                                            \
    "m.ra0, m.dec0, m.ra1, m.dec1, m.ra2, m.dec2, m.ra3, m.dec3, m.ra4,"     \
    " m.dec4, m.radius"
#define L2_SELECT                                                            \
    "SELECT f.rid, " L2_DATA("f.") ", " META_COLS

/* The SIP terms stored: A_p_q and B_p_q for 2 <= p + q <= 4. */
static const int sip_pq[12][2] = {{0, 2}, {0, 3}, {0, 4}, {1, 1},
                                  {1, 2}, {1, 3}, {2, 0}, {2, 1},
                                  {2, 2}, {3, 0}, {3, 1}, {4, 0}};

static int bind_sip(db_val *p, int order, const double c[5][5])
{
    int k = 0, i;

    p[k++] = DV_INT(order);
    for (i = 0; i < 12; i++)
        p[k++] = order && sip_pq[i][0] + sip_pq[i][1] <= order
                     ? DV_DBL(c[sip_pq[i][0]][sip_pq[i][1]])
                     : DV_NULL;
    return k;
}

/* Parameters for L2_DATA, then ctype1, ctype2; name is the file name as
 * stored. */
static int bind_l2(db_val *p, const rapid_l2file *x, const char *name)
{
    int k = 0;

    p[k++] = DV_INT(x->expid), p[k++] = DV_INT(x->sca);
    p[k++] = DV_INT(x->fid), p[k++] = DV_INT(x->field);
    p[k++] = DV_INT(x->hp6), p[k++] = DV_INT(x->hp9);
    p[k++] = DV_TEXT(x->dateobs), p[k++] = DV_DBL(x->mjdobs);
    p[k++] = DV_DBL(x->exptime), p[k++] = DV_INT(x->infobits);
    p[k++] = DV_TEXT(name), p[k++] = DV_TEXT(x->checksum);
    p[k++] = DV_INT(x->status), p[k++] = DV_INT(x->vbest);
    p[k++] = DV_INT(x->version), p[k++] = DV_INT(x->naxis1);
    p[k++] = DV_INT(x->naxis2);
    p[k++] = DV_DBL(x->crval[0]), p[k++] = DV_DBL(x->crval[1]);
    p[k++] = DV_DBL(x->crpix[0]), p[k++] = DV_DBL(x->crpix[1]);
    p[k++] = DV_DBL(x->cd[0][0]), p[k++] = DV_DBL(x->cd[0][1]);
    p[k++] = DV_DBL(x->cd[1][0]), p[k++] = DV_DBL(x->cd[1][1]);
    k += bind_sip(p + k, x->a_order, x->a);
    k += bind_sip(p + k, x->b_order, x->b);
    p[k++] = DV_DBL(x->ra), p[k++] = DV_DBL(x->dec);
    p[k++] = DV_DBL(x->ra_targ), p[k++] = DV_DBL(x->dec_targ);
    p[k++] = DV_DBL(x->pa_obsy), p[k++] = DV_DBL(x->pa_fpa);
    p[k++] = DV_DBL(x->zptmag), p[k++] = DV_DBL(x->skymean);
    p[k++] = DV_TEXT(x->a_order ? "RA---TAN-SIP" : "RA---TAN");
    p[k++] = DV_TEXT(x->a_order ? "DEC--TAN-SIP" : "DEC--TAN");
    return k;
}

static void text_col(const db_row *r, int c, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", db_col_text(r, c));
}

static int read_sip(const db_row *r, int c, int *order, double v[5][5])
{
    int i;

    *order = (int)db_col_int(r, c++);
    memset(v, 0, 25 * sizeof(double));
    for (i = 0; i < 12; i++, c++)
        if (!db_col_null(r, c))
            v[sip_pq[i][0]][sip_pq[i][1]] = db_col_dbl(r, c);
    return 13;
}

/* A row of L2_SELECT into x. */
static void read_l2(const db_row *r, rapid_l2file *x)
{
    int c = 0, i;

    memset(x, 0, sizeof *x);
    x->rid = db_col_int(r, c++), x->expid = db_col_int(r, c++);
    x->sca = (int)db_col_int(r, c++), x->fid = (int)db_col_int(r, c++);
    x->field = db_col_int(r, c++), x->hp6 = db_col_int(r, c++);
    x->hp9 = db_col_int(r, c++);
    db_time_canon(db_col_text(r, c++), x->dateobs);
    x->mjdobs = db_col_dbl(r, c++), x->exptime = db_col_dbl(r, c++);
    x->infobits = (int)db_col_int(r, c++);
    db_name_decode(db_col_text(r, c++), x->filename, sizeof x->filename);
    text_col(r, c++, x->checksum, sizeof x->checksum);
    x->status = (int)db_col_int(r, c++), x->vbest = (int)db_col_int(r, c++);
    x->version = (int)db_col_int(r, c++), x->naxis1 = (int)db_col_int(r, c++);
    x->naxis2 = (int)db_col_int(r, c++);
    x->crval[0] = db_col_dbl(r, c++), x->crval[1] = db_col_dbl(r, c++);
    x->crpix[0] = db_col_dbl(r, c++), x->crpix[1] = db_col_dbl(r, c++);
    x->cd[0][0] = db_col_dbl(r, c++), x->cd[0][1] = db_col_dbl(r, c++);
    x->cd[1][0] = db_col_dbl(r, c++), x->cd[1][1] = db_col_dbl(r, c++);
    c += read_sip(r, c, &x->a_order, x->a);
    c += read_sip(r, c, &x->b_order, x->b);
    x->ra = db_col_dbl(r, c++), x->dec = db_col_dbl(r, c++);
    x->ra_targ = db_col_dbl(r, c++), x->dec_targ = db_col_dbl(r, c++);
    x->pa_obsy = db_col_dbl(r, c++), x->pa_fpa = db_col_dbl(r, c++);
    x->zptmag = db_col_dbl(r, c++), x->skymean = db_col_dbl(r, c++);
    for (i = 0; i < 5; i++) {
        x->fp_ra[i] = db_col_dbl(r, c++);
        x->fp_dec[i] = db_col_dbl(r, c++);
    }
    x->radius = db_col_dbl(r, c++);
    x->dist = NAN;
}

/* A growing array of records for queries that return many. */
typedef struct l2_list {
    rapid_l2file *v;
    int n, cap;
} l2_list;

static int add_row(const db_row *r, void *arg)
{
    l2_list *L = arg;
    rapid_l2file *grown;

    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 64;
        if (!(grown = realloc(L->v, (size_t)cap * sizeof *grown)))
            return RAPID_E_NOMEM;
        L->v = grown, L->cap = cap;
    }
    read_l2(r, &L->v[L->n++]);
    return 0;
}

static int one_row(const db_row *r, void *arg)
{
    read_l2(r, arg);
    return 1; /* found: stop */
}

/* ---------------------------------------------------- sky geometry */

typedef struct vec3 {
    double x, y, z;
} vec3;

static vec3 unit(double ra, double dec)
{
    vec3 v = {cos(dec * DEG) * cos(ra * DEG), cos(dec * DEG) * sin(ra * DEG),
              sin(dec * DEG)};
    return v;
}

/* Angle between unit vectors, radians (accurate at small angles too). */
static double angle(vec3 a, vec3 b)
{
    vec3 c = {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z,
              a.x * b.y - a.y * b.x};
    return atan2(sqrt(c.x * c.x + c.y * c.y + c.z * c.z),
                 a.x * b.x + a.y * b.y + a.z * b.z);
}

/* The radius of a footprint (centre to farthest corner, radians). */
static double footprint_radius(const double ra[5], const double dec[5])
{
    vec3 c = unit(ra[0], dec[0]);
    double r = 0;
    int k;

    for (k = 1; k < 5; k++)
        r = fmax(r, angle(c, unit(ra[k], dec[k])));
    return r;
}

/* A box around a footprint on the unit sphere: [xmin, xmax, ymin, ymax,
 * zmin, zmax].  Points inside a convex footprint are normalised positive
 * combinations v/|v| of its corners, with |v| >= cos(radius); the corners'
 * box grown by 1/cos(radius) - 1 therefore holds the whole footprint. */
static void footprint_box(const double ra[5], const double dec[5],
                          double box[6])
{
    double pad = 1.0 / cos(footprint_radius(ra, dec)) - 1.0 + 1e-9;
    int k;

    box[0] = box[2] = box[4] = 2;
    box[1] = box[3] = box[5] = -2;
    for (k = 1; k < 5; k++) {
        vec3 v = unit(ra[k], dec[k]);
        box[0] = fmin(box[0], v.x), box[1] = fmax(box[1], v.x);
        box[2] = fmin(box[2], v.y), box[3] = fmax(box[3], v.y);
        box[4] = fmin(box[4], v.z), box[5] = fmax(box[5], v.z);
    }
    for (k = 0; k < 6; k++)
        box[k] += k % 2 ? pad : -pad;
}

/* The box around a cap (centre c, radius r radians) on the unit sphere:
 * along each axis the angle to it ranges over alpha -+ r. */
static void cap_box(vec3 c, double r, double box[6])
{
    double comp[3] = {c.x, c.y, c.z};
    int i;

    for (i = 0; i < 3; i++) {
        double a = acos(fmax(-1.0, fmin(1.0, comp[i])));
        box[2 * i] = cos(fmin(M_PI, a + r));
        box[2 * i + 1] = cos(fmax(0.0, a - r));
    }
}

#define EDGE_STEPS 8 /* samples per tile edge: Dec edges are small circles */
#define OUTLINE (4 * EDGE_STEPS)

/* A tile as the search sees it: its outline on the tangent plane at its
 * centre, and a radius that holds it. */
typedef struct tile_shape {
    rapid_tile t;
    vec2 outline[OUTLINE];
    double radius; /* radians */
} tile_shape;

static int tile_shape_make(int64_t rtid, tile_shape *s, rapid_err *err)
{
    double ra[4], dec[4], r, d;
    vec3 c;
    int e, k = 0, rc;

    if ((rc = rapid_tile_get(RAPID_TILE_NSIDE, rtid, &s->t, err)) != 0)
        return rc;
    c = unit(s->t.cra, s->t.cdec);
    s->radius = 0;
    if (s->t.nrabins == 1) { /* a cap: a circle about the pole */
        double rho = 90.0 - fabs(s->t.cdec > 0 ? s->t.decmin : s->t.decmax);
        for (k = 0; k < OUTLINE; k++)
            sphere_gnomonic(s->t.cra, s->t.cdec, 360.0 * k / OUTLINE,
                            s->t.cdec > 0 ? 90.0 - rho : rho - 90.0,
                            &s->outline[k]);
        /* the polygon inscribed in the circle is smaller: circumscribe */
        for (k = 0; k < OUTLINE; k++) {
            s->outline[k].x /= cos(M_PI / OUTLINE);
            s->outline[k].y /= cos(M_PI / OUTLINE);
        }
        s->radius = rho * DEG / cos(M_PI / OUTLINE) + 1e-7;
        return 0;
    }
    rapid_tile_corners(&s->t, ra, dec);
    for (e = 0; e < 4; e++) {
        int f = (e + 1) % 4, i;
        for (i = 0; i < EDGE_STEPS; i++, k++) {
            r = ra[e] + (ra[f] - ra[e]) * i / EDGE_STEPS;
            d = dec[e] + (dec[f] - dec[e]) * i / EDGE_STEPS;
            sphere_gnomonic(s->t.cra, s->t.cdec, r, d, &s->outline[k]);
            s->radius = fmax(s->radius, angle(c, unit(r, d)));
        }
    }
    s->radius += 1e-7;
    return 0;
}

static int tile_overlaps(const tile_shape *s, const rapid_l2file *x)
{
    vec2 fp[4];
    int k;

    for (k = 0; k < 4; k++)
        if (sphere_gnomonic(s->t.cra, s->t.cdec, x->fp_ra[k + 1],
                            x->fp_dec[k + 1], &fp[k]))
            return 0; /* a corner 90 deg away: no detector is that big */
    return plane_polygons_meet(fp, 4, s->outline, OUTLINE);
}

/* ----------------------------------------------------- adding files */

static int check_l2(rapid_l2file *x, rapid_err *err)
{
    char canon[RAPID_DB_TIME_MAX];
    size_t i;
    int k;

    if (!rapid_filter_by_fid(x->fid) || x->sca < 1 || x->sca > RAPID_NSCA)
        return rapid_fail(err, RAPID_E_ARG, "%s: fid %d or sca %d out of range",
                          x->filename, x->fid, x->sca);
    if (db_time_canon(x->dateobs, canon) || !canon[0])
        return rapid_fail(err, RAPID_E_ARG, "%s: dateobs '%s' is not a date-time",
                          x->filename, x->dateobs);
    memcpy(x->dateobs, canon, sizeof canon);
    for (i = 0; i < 32; i++)
        if (!x->checksum[i] || !strchr("0123456789abcdef", x->checksum[i]))
            break;
    if (i != 32 || x->checksum[32] || !x->filename[0])
        return rapid_fail(err, RAPID_E_ARG,
                          "%s: checksum '%s' is not an MD5 in hex",
                          x->filename, x->checksum);
    for (k = 0; k < 5; k++)
        if (!isfinite(x->fp_ra[k]) || !isfinite(x->fp_dec[k]) ||
            fabs(x->fp_dec[k]) > 90)
            return rapid_fail(err, RAPID_E_ARG, "%s: footprint point %d is not "
                              "a sky position", x->filename, k);
    /* NaN is "not known"; a value, though, must be on the sky */
    if (fabs(x->dec_targ) > 90 || isinf(x->ra_targ))
        return rapid_fail(err, RAPID_E_ARG, "%s: boresight (RA_TARG %g, "
                          "DEC_TARG %g) is not a sky position", x->filename,
                          x->ra_targ, x->dec_targ);
    if (!isfinite(x->mjdobs) || x->a_order < 0 || x->b_order < 0 ||
        x->a_order > RAPID_DB_SIP_ORDER || x->b_order > RAPID_DB_SIP_ORDER)
        return rapid_fail(err, RAPID_E_ARG, "%s: MJD %g or SIP order %d/%d "
                          "out of range", x->filename, x->mjdobs, x->a_order,
                          x->b_order);
    return 0;
}

/* The values kept alongside the footprint: its centre's tile and HEALPix
 * indices, and its radius. */
static void derive(rapid_l2file *x)
{
    x->ra = x->fp_ra[0], x->dec = x->fp_dec[0];
    x->field = rapid_tile_rtid(RAPID_TILE_NSIDE, x->ra, x->dec);
    x->hp6 = db_healpix(64, x->ra, x->dec);
    x->hp9 = db_healpix(512, x->ra, x->dec);
    x->radius = footprint_radius(x->fp_ra, x->fp_dec) / DEG;
}

static int row_expid(const db_row *r, void *arg)
{
    int64_t *v = arg;
    v[0] = db_col_int(r, 0), v[1] = db_col_int(r, 1);
    return 0;
}

/* The exposure of x (by dateobs), made if new; a known exposure must be
 * in the same filter. */
static int exposure(rapid_db *db, rapid_l2file *x, rapid_err *err)
{
    static const char ins[] =
        "INSERT INTO exposures(dateobs, mjdobs, field, hp6, hp9, fid, exptime,"
        " ra_targ, dec_targ, pa_obsy, pa_fpa) VALUES(?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?) ON CONFLICT (dateobs) DO NOTHING";
    static const char sel[] = "SELECT expid, fid FROM exposures WHERE dateobs = ?";
    int known = isfinite(x->ra_targ) && isfinite(x->dec_targ);
    double ra = known ? x->ra_targ : x->ra, dec = known ? x->dec_targ : x->dec;
    int64_t got[2] = {0, 0};
    db_val p[11] = {DV_TEXT(x->dateobs), DV_DBL(x->mjdobs),
                    DV_INT(rapid_tile_rtid(RAPID_TILE_NSIDE, ra, dec)),
                    DV_INT(db_healpix(64, ra, dec)),
                    DV_INT(db_healpix(512, ra, dec)), DV_INT(x->fid),
                    DV_DBL(x->exptime), DV_DBL(x->ra_targ),
                    DV_DBL(x->dec_targ), DV_DBL(x->pa_obsy), DV_DBL(x->pa_fpa)};
    int rc;

    if ((rc = db_query(db, ins, p, 11, NULL, NULL, err)) != 0 ||
        (rc = db_query(db, sel, p, 1, row_expid, got, err)) != 0)
        return rc;
    if (got[1] != x->fid)
        return rapid_fail(err, RAPID_E_ARG,
                          "%s: exposure %s is registered in filter %s, but "
                          "this file is in %s", x->filename, x->dateobs,
                          rapid_filter_by_fid((int)got[1])
                              ? rapid_filter_by_fid((int)got[1])->name : "?",
                          rapid_filter_by_fid(x->fid)->name);
    x->expid = got[0];
    return 0;
}

/* The versions of one (expid, sca): the one with this checksum, if any,
 * and the highest version number. */
typedef struct versions {
    const char *checksum;
    int64_t rid;
    int version, vbest, status, top;
} versions;

static int row_version(const db_row *r, void *arg)
{
    versions *v = arg;
    int version = (int)db_col_int(r, 1);

    if (version > v->top)
        v->top = version;
    if (!v->rid && strcmp(db_col_text(r, 4), v->checksum) == 0) {
        v->rid = db_col_int(r, 0), v->version = version;
        v->vbest = (int)db_col_int(r, 2), v->status = (int)db_col_int(r, 3);
    }
    return 0;
}

static int insert_meta(rapid_db *db, const rapid_l2file *x, rapid_err *err)
{
    static const char meta[] =
        "INSERT INTO l2filemeta(rid, ra0, dec0, ra1, dec1, ra2, dec2, ra3,"
        " dec3, ra4, dec4, x, y, z, radius, hp6, hp9, fid, sca, mjdobs)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    static const char box[] =
        "INSERT INTO l2filemeta_box(rid, xmin, xmax, ymin, ymax, zmin, zmax)"
        " VALUES(?, ?, ?, ?, ?, ?, ?)";
    vec3 c = unit(x->ra, x->dec);
    db_val p[20];
    double b[6];
    int k = 0, i, rc;

    p[k++] = DV_INT(x->rid);
    for (i = 0; i < 5; i++)
        p[k++] = DV_DBL(x->fp_ra[i]), p[k++] = DV_DBL(x->fp_dec[i]);
    p[k++] = DV_DBL(c.x), p[k++] = DV_DBL(c.y), p[k++] = DV_DBL(c.z);
    p[k++] = DV_DBL(x->radius), p[k++] = DV_INT(x->hp6);
    p[k++] = DV_INT(x->hp9), p[k++] = DV_INT(x->fid);
    p[k++] = DV_INT(x->sca), p[k++] = DV_DBL(x->mjdobs);
    if ((rc = db_query(db, meta, p, k, NULL, NULL, err)) != 0 || db->pg)
        return rc;
    footprint_box(x->fp_ra, x->fp_dec, b);
    p[0] = DV_INT(x->rid);
    for (i = 0; i < 6; i++)
        p[i + 1] = DV_DBL(b[i]);
    return db_query(db, box, p, 7, NULL, NULL, err);
}

static int row_id(const db_row *r, void *arg)
{
    *(int64_t *)arg = db_col_int(r, 0);
    return 0;
}

/* A new version of x's key, after `top`.  The first version of a key has
 * nothing to supersede and nothing locked above it, so it is confirmed as
 * it is written (saving the confirm's round trips); later ones go through
 * rapid_db_confirm. */
static int insert_l2(rapid_db *db, rapid_l2file *x, int top, rapid_err *err)
{
    static const char ins[] =
        "INSERT INTO l2files(" L2_DATA("") ", ctype1, ctype2) VALUES(?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING rid";
    db_val p[L2_NDATA + 2];
    char name[DB_NAME_MAX];
    int rc, np;

    if ((rc = db_name_store(x->filename, name, err)) != 0)
        return rc;
    x->version = top + 1;
    x->vbest = x->status = top == 0;
    np = bind_l2(p, x, name);
    if ((rc = db_query(db, ins, p, np, row_id, &x->rid, err)) != 0 ||
        (rc = insert_meta(db, x, err)) != 0 || top == 0)
        return rc;
    if ((rc = rapid_db_confirm(db, RAPID_PRODUCT_L2FILE, x->rid, &x->vbest,
                               err)) == 0)
        x->status = 1;
    return rc;
}

int rapid_db_add_l2file(rapid_db *db, rapid_l2file *x,
                        rapid_db_outcome *outcome, rapid_err *err)
{
    static const char known[] =
        "SELECT rid, version, vbest, status, checksum FROM l2files"
        " WHERE expid = ? AND sca = ? ORDER BY version";
    versions v = {x->checksum, 0, 0, 0, 0, 0};
    int64_t key[2];
    int rc;

    *outcome = 0;
    if ((rc = check_l2(x, err)) != 0)
        return rc;
    derive(x);
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    if ((rc = exposure(db, x, err)) != 0)
        goto cleanup;
    key[0] = x->expid, key[1] = x->sca;
    {
        db_val p[2] = {DV_INT(x->expid), DV_INT(x->sca)};
        if ((rc = db_lock_key(db, RAPID_PRODUCT_L2FILE, key, 2, err)) != 0 ||
            (rc = db_query(db, known, p, 2, row_version, &v, err)) != 0)
            goto cleanup;
    }
    if (v.rid) { /* this very file is known: nothing to write */
        x->rid = v.rid, x->version = v.version;
        x->vbest = v.vbest, x->status = v.status;
        *outcome = RAPID_DB_UNCHANGED;
        goto cleanup;
    }
    if ((rc = insert_l2(db, x, v.top, err)) == 0)
        *outcome = x->version == 1 ? RAPID_DB_ADDED : RAPID_DB_NEW_VERSION;
cleanup:
    if (rc)
        rapid_err_prefix(err, "registering %s", x->filename);
    return db_tx_end(db, rc, err);
}

int rapid_db_get_l2file(rapid_db *db, int64_t rid, rapid_l2file *x,
                        rapid_err *err)
{
    static const char sql[] = L2_SELECT " FROM l2files f JOIN l2filemeta m"
                              " ON m.rid = f.rid WHERE f.rid = ?";
    db_val p[1] = {DV_INT(rid)};
    int rc;

    x->rid = 0;
    rc = db_query(db, sql, p, 1, one_row, x, err);
    if (rc < 0)
        return rc;
    if (x->rid != rid)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no L2 file with rid %lld",
                          db->url, (long long)rid);
    return 0;
}

int rapid_l2file_wcs(const rapid_l2file *x, rapid_wcs *w, rapid_err *err)
{
    rapid_sip sip;
    int p, q;

    if (x->a_order == 0 && x->b_order == 0)
        return rapid_wcs_from_terms(w, x->crval, x->crpix, x->cd, NULL,
                                    x->naxis1, x->naxis2, err);
    memset(&sip, 0, sizeof sip);
    sip.a_order = x->a_order, sip.b_order = x->b_order;
    for (p = 0; p <= RAPID_DB_SIP_ORDER; p++)
        for (q = 0; p + q <= RAPID_DB_SIP_ORDER; q++) {
            sip.a[p][q] = x->a[p][q];
            sip.b[p][q] = x->b[p][q];
        }
    return rapid_wcs_from_terms(w, x->crval, x->crpix, x->cd, &sip, x->naxis1,
                                x->naxis2, err);
}

/* ----------------------------------------------------------- queries */

int rapid_db_l2files_by_time(rapid_db *db, double mjd_min, double mjd_max,
                             rapid_l2file **out, int *n, rapid_err *err)
{
    static const char sql[] =
        L2_SELECT " FROM l2files f JOIN l2filemeta m ON m.rid = f.rid"
        " WHERE f.mjdobs >= ? AND f.mjdobs < ? AND f.vbest > 0"
        " AND f.status > 0 ORDER BY f.mjdobs, f.sca, f.rid";
    db_val p[2] = {DV_DBL(mjd_min), DV_DBL(mjd_max)};
    l2_list L = {NULL, 0, 0};
    int rc;

    *out = NULL, *n = 0;
    if (isnan(mjd_min) || isnan(mjd_max))
        return rapid_fail(err, RAPID_E_ARG, "MJD range [%g, %g) is not a range",
                          mjd_min, mjd_max);
    if ((rc = db_query(db, sql, p, 2, add_row, &L, err)) != 0) {
        free(L.v);
        return rc == RAPID_E_NOMEM ? rapid_fail(err, rc, "out of memory") : rc;
    }
    *out = L.v, *n = L.n;
    return 0;
}

static int row_dbl(const db_row *r, void *arg)
{
    *(double *)arg = db_col_dbl(r, 0);
    return 0;
}

/* Candidates from the index: the l2files rows (with footprints) of the
 * filter and time window that may overlap the tile. */
static int candidates(rapid_db *db, const tile_shape *s,
                      const rapid_prior_query *q, l2_list *L, rapid_err *err)
{
    static const char box_sql[] =
        L2_SELECT " FROM l2filemeta_box b CROSS JOIN l2filemeta m"
        " CROSS JOIN l2files f WHERE b.xmax >= ? AND b.xmin <= ?"
        " AND b.ymax >= ? AND b.ymin <= ? AND b.zmax >= ? AND b.zmin <= ?"
        " AND m.rid = b.rid AND f.rid = b.rid AND m.fid = ?"
        " AND m.mjdobs >= ? AND m.mjdobs < ? AND f.vbest > 0 AND f.status > 0";
    static const char q3c_sql[] =
        L2_SELECT " FROM l2filemeta m JOIN l2files f ON f.rid = m.rid"
        " WHERE q3c_radial_query(m.ra0, m.dec0, ?, ?, ?) AND m.fid = ?"
        " AND m.mjdobs >= ? AND m.mjdobs < ? AND f.vbest > 0 AND f.status > 0";
    static const char cone_sql[] =
        L2_SELECT " FROM l2filemeta m JOIN l2files f ON f.rid = m.rid"
        " WHERE m.dec0 >= ? AND m.dec0 <= ?"
        " AND m.x * ? + m.y * ? + m.z * ? >= ? AND m.fid = ?"
        " AND m.mjdobs >= ? AND m.mjdobs < ? AND f.vbest > 0 AND f.status > 0";
    static const char maxrad[] = "SELECT max(radius) FROM l2filemeta";
    vec3 c = unit(s->t.cra, s->t.cdec);
    double b[6], reach = 0;
    int rc, i;

    if (!db->pg) {
        db_val p[9];
        cap_box(c, s->radius, b);
        for (i = 0; i < 6; i++)
            p[i] = DV_DBL(b[i]);
        p[6] = DV_INT(q->fid), p[7] = DV_DBL(q->mjd_min);
        p[8] = DV_DBL(q->mjd_max);
        return db_query(db, box_sql, p, 9, add_row, L, err);
    }
    /* Any overlap needs the image centre within the tile's radius plus
     * the largest image radius of the tile centre. */
    if ((rc = db_query(db, maxrad, NULL, 0, row_dbl, &reach, err)) != 0)
        return rc;
    reach = s->radius / DEG + (isnan(reach) ? 0 : reach) + 1e-6;
    if (db->q3c) {
        db_val p[6] = {DV_DBL(s->t.cra), DV_DBL(s->t.cdec), DV_DBL(reach),
                       DV_INT(q->fid), DV_DBL(q->mjd_min), DV_DBL(q->mjd_max)};
        return db_query(db, q3c_sql, p, 6, add_row, L, err);
    }
    {
        db_val p[9] = {DV_DBL(fmax(-90, s->t.cdec - reach)),
                       DV_DBL(fmin(90, s->t.cdec + reach)), DV_DBL(c.x),
                       DV_DBL(c.y), DV_DBL(c.z),
                       DV_DBL(cos(fmin(reach, 180.0) * DEG) - 1e-12),
                       DV_INT(q->fid), DV_DBL(q->mjd_min), DV_DBL(q->mjd_max)};
        return db_query(db, cone_sql, p, 9, add_row, L, err);
    }
}

static int by_distance(const void *a, const void *b)
{
    const rapid_l2file *x = a, *y = b;

    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    if (x->mjdobs != y->mjdobs)
        return x->mjdobs < y->mjdobs ? -1 : 1;
    return (x->rid > y->rid) - (x->rid < y->rid);
}

int rapid_db_prior_l2files(rapid_db *db, const rapid_prior_query *q,
                           rapid_l2file **out, int *n, rapid_err *err)
{
    l2_list L = {NULL, 0, 0};
    tile_shape s;
    int rc, i, k = 0;

    *out = NULL, *n = 0;
    if (!rapid_filter_by_fid(q->fid) || isnan(q->mjd_min) || isnan(q->mjd_max))
        return rapid_fail(err, RAPID_E_ARG,
                          "prior images: fid %d or MJD window [%g, %g) invalid",
                          q->fid, q->mjd_min, q->mjd_max);
    if ((rc = tile_shape_make(q->field, &s, err)) != 0)
        return rc;
    if ((rc = candidates(db, &s, q, &L, err)) != 0) {
        free(L.v);
        return rc == RAPID_E_NOMEM ? rapid_fail(err, rc, "out of memory") : rc;
    }
    for (i = 0; i < L.n; i++) {
        if (!tile_overlaps(&s, &L.v[i]))
            continue;
        L.v[i].dist = rapid_sky_distance(L.v[i].ra, L.v[i].dec, s.t.cra,
                                         s.t.cdec);
        if (k != i)
            L.v[k] = L.v[i];
        k++;
    }
    if (k > 1)
        qsort(L.v, (size_t)k, sizeof *L.v, by_distance);
    if (q->limit > 0 && k > q->limit)
        k = q->limit;
    *out = L.v, *n = k;
    return 0;
}

/* -------------------------------------------------------------- PSFs */

static int row_psf(const db_row *r, void *arg)
{
    rapid_psffile *x = arg;

    x->psfid = db_col_int(r, 0), x->fid = (int)db_col_int(r, 1);
    x->sca = (int)db_col_int(r, 2), x->version = (int)db_col_int(r, 3);
    x->vbest = (int)db_col_int(r, 4), x->status = (int)db_col_int(r, 5);
    db_name_decode(db_col_text(r, 6), x->filename, sizeof x->filename);
    text_col(r, 7, x->checksum, sizeof x->checksum);
    return 1;
}

static int insert_psf(rapid_db *db, rapid_psffile *x, rapid_err *err)
{
    static const char next[] = "SELECT coalesce(max(version), 0) FROM psfs"
                               " WHERE fid = ? AND sca = ?";
    static const char ins[] =
        "INSERT INTO psfs(fid, sca, version, vbest, filename, checksum, status)"
        " VALUES(?, ?, ?, 0, ?, ?, 0) RETURNING psfid";
    db_val key[2] = {DV_INT(x->fid), DV_INT(x->sca)};
    char name[DB_NAME_MAX];
    int64_t v = 0;
    int rc;

    if ((rc = db_name_store(x->filename, name, err)) != 0 ||
        (rc = db_query(db, next, key, 2, row_id, &v, err)) != 0)
        return rc;
    x->version = (int)v + 1;
    {
        db_val p[5] = {DV_INT(x->fid), DV_INT(x->sca), DV_INT(x->version),
                       DV_TEXT(name), DV_TEXT(x->checksum)};
        if ((rc = db_query(db, ins, p, 5, row_id, &x->psfid, err)) != 0)
            return rc;
    }
    x->status = 1;
    return rapid_db_confirm(db, RAPID_PRODUCT_PSF, x->psfid, &x->vbest, err);
}

int rapid_db_add_psffile(rapid_db *db, rapid_psffile *x,
                         rapid_db_outcome *outcome, rapid_err *err)
{
    static const char same[] =
        "SELECT psfid, fid, sca, version, vbest, status, filename, checksum"
        " FROM psfs WHERE fid = ? AND sca = ? AND checksum = ?"
        " ORDER BY version DESC";
    rapid_psffile found;
    int64_t key[2] = {x->fid, x->sca};
    int rc;

    *outcome = 0;
    if (!rapid_filter_by_fid(x->fid) || x->sca < 1 || x->sca > RAPID_NSCA ||
        strlen(x->checksum) != 32 || !x->filename[0])
        return rapid_fail(err, RAPID_E_ARG,
                          "%s: PSF with fid %d, sca %d, checksum '%s': out of "
                          "range", x->filename, x->fid, x->sca, x->checksum);
    memset(&found, 0, sizeof found);
    if ((rc = db_tx_begin(db, err)) != 0)
        return rc;
    {
        db_val p[3] = {DV_INT(x->fid), DV_INT(x->sca), DV_TEXT(x->checksum)};
        if ((rc = db_lock_key(db, RAPID_PRODUCT_PSF, key, 2, err)) != 0 ||
            (rc = db_query(db, same, p, 3, row_psf, &found, err)) < 0)
            goto cleanup;
        rc = 0;
    }
    if (found.psfid) {
        x->psfid = found.psfid, x->version = found.version;
        x->vbest = found.vbest, x->status = found.status;
        *outcome = RAPID_DB_UNCHANGED;
        goto cleanup;
    }
    if ((rc = insert_psf(db, x, err)) == 0)
        *outcome = x->version == 1 ? RAPID_DB_ADDED : RAPID_DB_NEW_VERSION;
cleanup:
    if (rc)
        rapid_err_prefix(err, "registering %s", x->filename);
    return db_tx_end(db, rc, err);
}

int rapid_db_best_psffile(rapid_db *db, int fid, int sca, rapid_psffile *x,
                          int *found, rapid_err *err)
{
    static const char sql[] =
        "SELECT psfid, fid, sca, version, vbest, status, filename, checksum"
        " FROM psfs WHERE fid = ? AND sca = ? AND vbest > 0 AND status > 0"
        " ORDER BY vbest DESC, version DESC";
    db_val p[2] = {DV_INT(fid), DV_INT(sca)};
    int rc;

    memset(x, 0, sizeof *x);
    rc = db_query(db, sql, p, 2, row_psf, x, err);
    *found = x->psfid != 0;
    return rc < 0 ? rc : 0;
}
