/* sim.c - a whole simulated survey to files.
 *
 *   DIR/Roman_TDS_simple_model_<FILTER>_<pointing>_<sca>.fits[.gz]
 *       (a header-only primary HDU, then SCI, ERR and DQ: rapid/dq.h)
 *   DIR/psf/Roman_WFI_PSF_<FILTER>_<sca>.fits  (_visit<v> with a per-visit
 *                                               PSF blur)
 *   DIR/truth/static.fits      every star and galaxy
 *   DIR/truth/transients.fits  every transient and variable in every image
 *   DIR/truth/pointings.fits   the survey plan
 *
 * Images are made detector by detector and filter by filter, so that only
 * one PSF field is held at a time; every image draws from its own random
 * streams, so the order does not change a pixel.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_internal.h"

#define PATH_LEN 4096

/* Cards of the header-only primary HDU: what an L2 image is of. */
static const char *const primary_keys[] = {
    "ORIGIN", "TELESCOP", "INSTRUME", "DATE-OBS", "MJD-OBS", "FILTER",
    "EXPTIME", "SCA_NUM", "RA_TARG", "DEC_TARG", "PA_OBSY", "PA_FPA",
    "ZPTMAG", "SKY_MEAN", "GAIN", "RDNOISE", "SATURATE", "BUNIT",
    "POINTING", "VISIT", "SIMSEED", "RAPIDVER", "RAPIDGIT", NULL};

void rapid_sim_l2_name(const rapid_sim_config *c, const rapid_sim_pointing *p,
                       int sca, char *out, size_t outsz)
{
    snprintf(out, outsz, "Roman_TDS_simple_model_%s_%d_%d.fits%s",
             p->filter->name, p->id, sca, c->gzip ? ".gz" : "");
}

/* ----------------------------------------------------------- directories */

static int make_dir(const char *path, rapid_err *err)
{
    struct stat sb;

    if (mkdir(path, 0777) == 0)
        return 0;
    if (errno != EEXIST)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot create directory: %s",
                          path, strerror(errno));
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rapid_fail(err, RAPID_E_IO, "%s: exists and is not a directory",
                          path);
    return 0;
}

/* mkdir -p, then make sure files can be made there. */
static int make_dirs(const char *path, rapid_err *err)
{
    char buf[PATH_LEN];
    size_t i, n = strlen(path);
    int rc;

    if (n == 0 || n >= sizeof buf)
        return rapid_fail(err, RAPID_E_ARG, "'%s': not a usable directory name",
                          path);
    memcpy(buf, path, n + 1);
    for (i = 1; i < n; i++)
        if (buf[i] == '/' && buf[i - 1] != '/') {
            buf[i] = '\0';
            if ((rc = make_dir(buf, err)) != 0)
                return rc;
            buf[i] = '/';
        }
    if ((rc = make_dir(buf, err)) != 0)
        return rc;
    if (access(path, W_OK | X_OK) != 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write there: %s", path,
                          strerror(errno));
    return 0;
}

static int join(char *out, const char *dir, const char *sub, const char *name,
                rapid_err *err)
{
    int n = snprintf(out, PATH_LEN, "%s%s%s/%s", dir, sub[0] ? "/" : "", sub,
                     name);

    if (n < 0 || n >= PATH_LEN)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", dir);
    return 0;
}

/* ---------------------------------------------------------------- tables */

static int write_pointings(const rapid_sim_config *c,
                           const rapid_sim_pointing *p, int np,
                           const char *path, rapid_err *err)
{
    rapid_table t = RAPID_TABLE_INIT;
    int32_t *id, *visit, *fid;
    double *mjd, *ra, *dec, *pa, *texp;
    char *filter;
    int i, rc;

    rapid_table_init(&t, np);
    id = rapid_table_add_i32(&t, "pointing", NULL);
    visit = rapid_table_add_i32(&t, "visit", NULL);
    filter = rapid_table_add_str(&t, "filter", 8);
    fid = rapid_table_add_i32(&t, "fid", NULL);
    mjd = rapid_table_add_f64(&t, "mjd", "d");
    ra = rapid_table_add_f64(&t, "ra", "deg");
    dec = rapid_table_add_f64(&t, "dec", "deg");
    pa = rapid_table_add_f64(&t, "pa", "deg");
    texp = rapid_table_add_f64(&t, "exptime", "s");
    if (!id || !visit || !filter || !fid || !mjd || !ra || !dec || !pa ||
        !texp) {
        rapid_table_release(&t);
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", path);
    }
    for (i = 0; i < np; i++) {
        id[i] = p[i].id;
        visit[i] = p[i].visit;
        memcpy(filter + 8 * i, p[i].filter->name,
               strnlen(p[i].filter->name, 7));
        fid[i] = p[i].filter->fid;
        mjd[i] = p[i].mjd;
        ra[i] = p[i].ra;
        dec[i] = p[i].dec;
        pa[i] = p[i].pa;
        texp[i] = p[i].exptime;
    }
    rc = rapid_fits_write_table(path, &t, "POINTINGS", err);
    rapid_table_release(&t);
    return rc;
}

static size_t column_bytes(const rapid_column *c)
{
    switch (c->type) {
    case RAPID_COL_F64:
    case RAPID_COL_I64:
        return 8;
    case RAPID_COL_F32:
    case RAPID_COL_I32:
        return 4;
    default:
        return (size_t)c->width;
    }
}

static void *add_like(rapid_table *t, const rapid_column *c)
{
    switch (c->type) {
    case RAPID_COL_F64:
        return rapid_table_add_f64(t, c->name, c->unit);
    case RAPID_COL_F32:
        return rapid_table_add_f32(t, c->name, c->unit);
    case RAPID_COL_I32:
        return rapid_table_add_i32(t, c->name, c->unit);
    case RAPID_COL_I64:
        return rapid_table_add_i64(t, c->name, c->unit);
    default:
        return rapid_table_add_str(t, c->name, c->width);
    }
}

/* Rows of n tables with the columns of the first, one after the other. */
static int concat_tables(const rapid_table *in, int n, rapid_table *out,
                         rapid_err *err)
{
    long rows = 0, at;
    int i, j;

    for (i = 0; i < n; i++)
        rows += in[i].nrows;
    rapid_table_init(out, rows);
    for (j = 0; j < in[0].ncols; j++) {
        const rapid_column *c = &in[0].cols[j];
        size_t sz = column_bytes(c);
        char *dst = add_like(out, c);
        if (!dst) {
            rapid_table_release(out);
            return rapid_fail(err, RAPID_E_NOMEM, "out of memory joining %ld "
                              "truth rows", rows);
        }
        for (i = 0, at = 0; i < n; at += in[i].nrows, i++)
            if (in[i].nrows > 0)
                memcpy(dst + (size_t)at * sz, in[i].cols[j].data,
                       (size_t)in[i].nrows * sz);
    }
    return 0;
}

/* ---------------------------------------------------------------- images */

static int primary_header(const rapid_header *sci, rapid_header *h)
{
    int i, k;

    for (i = 0; primary_keys[i]; i++)
        if ((k = rapid_header_find(sci, primary_keys[i])) >= 0 &&
            rapid_header_append_card(h, sci->cards[k]))
            return RAPID_E_NOMEM;
    return 0;
}

/* SCI, ERR and DQ after a header-only primary HDU. */
static int write_l2(const char *path, const rapid_image *img,
                    const rapid_image *e, const rapid_image_u32 *dq,
                    rapid_err *err)
{
    rapid_header prim = RAPID_HEADER_INIT;
    rapid_fits_out *out = NULL;
    int rc;

    if (primary_header(&img->hdr, &prim)) {
        rapid_header_release(&prim);
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", path);
    }
    if ((rc = rapid_fits_create(&out, path, err)) == 0 &&
        (rc = rapid_fits_set_primary_header(out, &prim, err)) == 0 &&
        (rc = rapid_fits_append_image(out, img, "SCI", err)) == 0 &&
        (rc = rapid_fits_append_image(out, e, "ERR", err)) == 0 &&
        (rc = rapid_fits_append_image_u32(out, dq, "DQ", err)) == 0) {
        rc = rapid_fits_commit(out, err);
        out = NULL;
    }
    if (out)
        rapid_fits_abort(out);
    rapid_header_release(&prim);
    return rc;
}

/* What a run holds while it works. */
typedef struct run {
    const rapid_sim_config *c;
    const char *dir;
    rapid_sim_pointing *p;
    int np;
    rapid_sim_scene *scene;
    rapid_table *truth;      /* np * nscas, in (pointing, sca) order */
    int64_t done, total;
    rapid_progress_fn progress;
    void *arg;
} run;

/* splitmix64: a well-mixed 64-bit hash of the seed and the visit. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double rapid_sim_visit_blur(const rapid_sim_config *c, int visit)
{
    uint64_t h;

    if (!c || !(c->psf_visit_blur > 0))
        return 0;
    h = mix64(mix64(c->seed ^ 0x7073665f626c7572ULL) + (uint64_t)visit);
    return c->psf_visit_blur * (double)(h >> 11) * 0x1p-53;
}

void rapid_sim_psf_name(const rapid_sim_config *c, const rapid_filter *f,
                        int sca, int visit, char *out, size_t outsz)
{
    if (c && c->psf_visit_blur > 0)
        snprintf(out, outsz, "Roman_WFI_PSF_%s_%d_visit%d.fits", f->name, sca,
                 visit);
    else
        snprintf(out, outsz, "Roman_WFI_PSF_%s_%d.fits", f->name, sca);
}

static int write_psf(const run *r, const rapid_psf_field *f, int visit,
                     rapid_err *err)
{
    char name[128], path[PATH_LEN];
    int rc;

    rapid_sim_psf_name(r->c, f->filter, f->sca, visit, name, sizeof name);
    if ((rc = join(path, r->dir, "psf", name, err)) != 0)
        return rc;
    return rapid_psf_field_write(f, path, err);
}

static int write_image(run *r, int ip, int sca, const rapid_psf_field *f,
                       rapid_err *err)
{
    rapid_image img = RAPID_IMAGE_INIT, e = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    char name[256], path[PATH_LEN];
    rapid_table *t = &r->truth[(size_t)ip * r->c->nscas + (sca - 1)];
    int rc;

    rapid_sim_l2_name(r->c, &r->p[ip], sca, name, sizeof name);
    if ((rc = join(path, r->dir, "", name, err)) != 0 ||
        (rc = rapid_sim_render_after(r->c, r->scene, &r->p[ip], r->p, ip,
                                     sca, f, &img, &e, &dq, t, err)) != 0)
        return rc;
    rc = write_l2(path, &img, &e, &dq, err);
    rapid_image_release(&img);
    rapid_image_release(&e);
    rapid_image_u32_release(&dq);
    if (rc == 0 && ++r->done && r->progress)
        r->progress(r->done, r->total, r->arg);
    return rc;
}

/* The PSF file of one (filter, sca) and every image of visit `visit`
 * taken with them (visit < 0: of every visit). */
static int run_psf(run *r, const rapid_filter *flt, int sca, int visit,
                   rapid_err *err)
{
    rapid_psf_field f;
    rapid_psf_opts o;
    int i, rc;

    rapid_psf_opts_init(&o);
    if (visit >= 0)
        o.jitter_mas = hypot(o.jitter_mas, rapid_sim_visit_blur(r->c, visit));
    memset(&f, 0, sizeof f);
    if ((rc = rapid_psf_field_make(&f, flt, sca, r->c->size, r->c->size, &o,
                                   err)) != 0)
        return rc;
    rc = write_psf(r, &f, visit, err);
    for (i = 0; i < r->np && rc == 0; i++)
        if (r->p[i].filter == flt && (visit < 0 || r->p[i].visit == visit))
            rc = write_image(r, i, sca, &f, err);
    rapid_psf_field_release(&f);
    return rc;
}

/* One PSF for the detector, or with a per-visit blur one per visit that
 * observed in the filter. */
static int run_detector(run *r, const rapid_filter *flt, int sca,
                        rapid_err *err)
{
    int v, i, used, rc = 0;

    if (!(r->c->psf_visit_blur > 0))
        return run_psf(r, flt, sca, -1, err);
    for (v = 0; v < r->c->epochs && rc == 0; v++) {
        for (used = 0, i = 0; i < r->np && !used; i++)
            used = r->p[i].filter == flt && r->p[i].visit == v;
        if (used)
            rc = run_psf(r, flt, sca, v, err);
    }
    return rc;
}

static int write_truth(run *r, rapid_err *err)
{
    rapid_table stat = RAPID_TABLE_INIT, all = RAPID_TABLE_INIT;
    char path[PATH_LEN];
    int rc;

    if ((rc = join(path, r->dir, "truth", "static.fits", err)) != 0 ||
        (rc = rapid_sim_scene_truth(r->scene, &stat, err)) != 0 ||
        (rc = rapid_fits_write_table(path, &stat, "STATIC", err)) != 0)
        goto cleanup;
    if ((rc = join(path, r->dir, "truth", "pointings.fits", err)) != 0 ||
        (rc = write_pointings(r->c, r->p, r->np, path, err)) != 0)
        goto cleanup;
    if ((rc = join(path, r->dir, "truth", "transients.fits", err)) != 0 ||
        (rc = concat_tables(r->truth, r->np * r->c->nscas, &all, err)) != 0)
        goto cleanup;
    rc = rapid_fits_write_table(path, &all, "TRANSIENTS", err);
cleanup:
    rapid_table_release(&stat);
    rapid_table_release(&all);
    return rc;
}

static int run_check(const rapid_sim_config *c, const char *outdir,
                     rapid_err *err)
{
    int i;

    if (!c || !outdir)
        return rapid_fail(err, RAPID_E_ARG, "sim: no %s",
                          c ? "output directory" : "configuration");
    if (c->nscas < 1 || c->nscas > RAPID_NSCA)
        return rapid_fail(err, RAPID_E_ARG, "sim: %d detectors: must be 1..%d",
                          c->nscas, RAPID_NSCA);
    if (!(c->psf_visit_blur >= 0 && c->psf_visit_blur <= 1000))
        return rapid_fail(err, RAPID_E_ARG, "sim: per-visit PSF blur %g mas: "
                          "must be 0..1000", c->psf_visit_blur);
    if (c->nfilters < 1 || c->nfilters > RAPID_NFILTERS)
        return rapid_fail(err, RAPID_E_ARG, "sim: %d filters: must be 1..%d",
                          c->nfilters, RAPID_NFILTERS);
    for (i = 0; i < c->nfilters; i++) {
        int j;
        if (!c->filters[i])
            return rapid_fail(err, RAPID_E_ARG, "sim: filter %d is not set",
                              i + 1);
        for (j = 0; j < i; j++)
            if (c->filters[j] == c->filters[i])
                return rapid_fail(err, RAPID_E_ARG, "sim: filter %s is "
                                  "listed twice", c->filters[i]->name);
    }
    return 0;
}

int rapid_sim_run(const rapid_sim_config *c, const char *outdir,
                  rapid_progress_fn progress, void *arg, rapid_err *err)
{
    run r;
    char path[PATH_LEN];
    int i, sca, n = 0, rc;

    memset(&r, 0, sizeof r);
    if ((rc = run_check(c, outdir, err)) != 0)
        return rc;
    r.c = c;
    r.dir = outdir;
    r.progress = progress;
    r.arg = arg;
    if ((rc = make_dirs(outdir, err)) != 0 ||
        (rc = join(path, outdir, "", "psf", err)) != 0 ||
        (rc = make_dir(path, err)) != 0 ||
        (rc = join(path, outdir, "", "truth", err)) != 0 ||
        (rc = make_dir(path, err)) != 0)
        goto cleanup;
    if ((r.np = rapid_sim_plan(c, &r.p, err)) < 0) {
        rc = r.np;
        r.np = 0;
        goto cleanup;
    }
    if (r.np == 0) {
        rc = rapid_fail(err, RAPID_E_ARG, "sim: the plan has no pointings");
        goto cleanup;
    }
    if ((rc = rapid_sim_scene_make(c, r.p, r.np, &r.scene, err)) != 0)
        goto cleanup;
    n = r.np * c->nscas;
    r.total = n;
    if (!(r.truth = calloc((size_t)n, sizeof *r.truth))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "sim: out of memory for %d images",
                        n);
        goto cleanup;
    }
    for (i = 0; i < c->nfilters && rc == 0; i++)
        for (sca = 1; sca <= c->nscas && rc == 0; sca++)
            rc = run_detector(&r, c->filters[i], sca, err);
    if (rc == 0 && r.done != r.total)
        rc = rapid_fail(err, RAPID_E_ARG, "sim: the plan has pointings in "
                        "filters that are not configured");
    if (rc == 0)
        rc = write_truth(&r, err);
cleanup:
    for (i = 0; r.truth && i < n; i++)
        rapid_table_release(&r.truth[i]);
    free(r.truth);
    if (r.scene)
        rapid_sim_scene_free(r.scene);
    free(r.p);
    return rc;
}
