/* scijobs.c - what the evaluation reads of a pipeline run: the science
 * jobs' configurations and manifests, and the simulator's transients on
 * their images (eval_internal.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>
#include <jansson.h>

#include "eval/eval_internal.h"
#include "rapid/coadd.h"

void eval_pathf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------ job configurations */

void eval_config_free(eval_config *c)
{
    int k;

    for (k = 0; k < c->n; k++) {
        free(c->e[k].section);
        free(c->e[k].key);
        free(c->e[k].value);
    }
    free(c->e);
    memset(c, 0, sizeof *c);
}

int eval_config_on_kv(void *user, const char *section, const char *key, const char *value)
{
    eval_config *c = user;

    if (c->n == c->cap) {
        eval_kv *e = realloc(c->e, (size_t)(c->cap = c->cap ? 2 * c->cap : 64) * sizeof *e);
        if (!e)
            return 0;
        c->e = e;
    }
    c->e[c->n].section = strdup(section);
    c->e[c->n].key = strdup(key);
    c->e[c->n].value = strdup(value);
    return c->e[c->n++].value != NULL;
}

const char *eval_config_get(const eval_config *c, const char *section, const char *key)
{
    int k;

    for (k = 0; k < c->n; k++)
        if (!strcmp(c->e[k].section, section) && !strcmp(c->e[k].key, key))
            return c->e[k].value;
    return NULL;
}

/* Write c to path with the given values replaced (section, key, value
 * triples, NULL-terminated), sections in their first order. */
int eval_config_write(const eval_config *c, const char *path, const char *const *set,
                        rapid_err *err)
{
    FILE *f = fopen(path, "w");
    int k, j, s;

    if (!f)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path, strerror(errno));
    for (k = 0; k < c->n; k++) {
        int first = 1;
        for (j = 0; j < k; j++)
            if (!strcmp(c->e[j].section, c->e[k].section))
                first = 0;
        if (!first)
            continue;
        fprintf(f, "[%s]\n", c->e[k].section);
        for (j = k; j < c->n; j++) {
            const char *v = c->e[j].value;
            if (strcmp(c->e[j].section, c->e[k].section))
                continue;
            for (s = 0; set[s]; s += 3)
                if (!strcmp(set[s], c->e[j].section) && !strcmp(set[s + 1], c->e[j].key))
                    v = set[s + 2];
            fprintf(f, "%s = %s\n", c->e[j].key, v);
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write", path);
    return 0;
}

/* ------------------------------------------------------------ the survey */

int eval_read_manifest(const char *path, json_t **out, rapid_err *err)
{
    json_error_t je;

    if (!(*out = json_load_file(path, 0, &je)))
        return rapid_fail(err, RAPID_E_IO, "%s: unreadable manifest: %s (line %d)", path,
                          je.text, je.line);
    return 0;
}

static int manifest_exitcode(const char *dir)
{
    char path[4096];
    json_t *m;
    rapid_err e = RAPID_ERR_INIT;
    int code;

    eval_pathf(path, sizeof path, "%s/manifest.json", dir);
    if (access(path, R_OK) != 0 || eval_read_manifest(path, &m, &e) != 0)
        return -1;
    code = (int)json_integer_value(json_object_get(m, "exitcode"));
    json_decref(m);
    return code;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strverscmp((*a)->d_name, (*b)->d_name);
}

/* The science jobs of the pipeline run in pipe/ for procdate. */
int eval_find_science_jobs(const char *pipe, int procdate, const char *simdir,
                           int with_dq, eval_scijob **out, int *nout, rapid_err *err)
{
    char dir[4096], path[4096];
    struct dirent **names = NULL;
    rapid_table trans = RAPID_TABLE_INIT;
    eval_scijob *jobs = NULL;
    int n, k, m = 0, rc = 0;

    eval_pathf(dir, sizeof dir, "%s/jobs/%d", pipe, procdate);
    if ((n = scandir(dir, &names, NULL, by_name)) < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: no job configurations: %s", dir,
                          strerror(errno));
    eval_pathf(path, sizeof path, "%s/truth/transients.fits", simdir);
    if (access(path, R_OK) == 0 && (rc = rapid_fits_read_table(path, NULL, &trans, err)) != 0)
        goto done;
    if (!(jobs = calloc((size_t)(n > 0 ? n : 1), sizeof *jobs))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
        goto done;
    }
    for (k = 0; k < n && rc == 0; k++) {
        eval_scijob *j = &jobs[m];
        const char *ppid, *jout, *img, *psf, *filt, *sca;
        char hfilt[32];
        rapid_header h = RAPID_HEADER_INIT;
        size_t len = strlen(names[k]->d_name);
        long r, nk = 0;

        if (len < 5 || strcmp(names[k]->d_name + len - 4, ".ini"))
            continue;
        eval_pathf(path, sizeof path, "%s/%s", dir, names[k]->d_name);
        if (ini_parse(path, eval_config_on_kv, &j->cfg) != 0) {
            rc = rapid_fail(err, RAPID_E_IO, "%s: unreadable job configuration", path);
            break;
        }
        ppid = eval_config_get(&j->cfg, "job", "ppid");
        jout = eval_config_get(&j->cfg, "job", "out");
        img = eval_config_get(&j->cfg, "science", "image");
        if (!ppid || atoi(ppid) != 15 || !jout || !img || manifest_exitcode(jout) < 0 ||
            manifest_exitcode(jout) >= 32) {
            eval_config_free(&j->cfg);
            continue;
        }
        eval_pathf(j->l2, sizeof j->l2, "%s", img);
        eval_pathf(j->base, sizeof j->base, "%s", strrchr(img, '/') ? strrchr(img, '/') + 1 : img);
        /* the PSF by name: the copy will be elsewhere */
        psf = eval_config_get(&j->cfg, "science", "psf");
        filt = eval_config_get(&j->cfg, "science", "filter");
        sca = eval_config_get(&j->cfg, "science", "sca");
        if (psf && *psf)
            eval_pathf(j->psf, sizeof j->psf, "%s", psf);
        else if ((rc = rapid_coadd_find_psf(img, filt ? filt : "", sca ? atoi(sca) : 0,
                                            j->psf, sizeof j->psf, err)) != 0)
            break;
        if ((rc = rapid_fits_read_header(img, "SCI", &h, err)) != 0 ||
            (rc = rapid_header_get_double(&h, "ZPTMAG", &j->zp, err)) != 0 ||
            (rc = rapid_header_get_str(&h, "FILTER", hfilt, sizeof hfilt, err)) != 0 ||
            (with_dq && (rc = rapid_fits_read_image_u32(img, "DQ", &j->dq, err)) != 0)) {
            rapid_header_release(&h);
            break;
        }
        rapid_header_release(&h);
        /* the simulator's transients and variables on this image */
        if (trans.nrows > 0) {
            const rapid_column *ci = rapid_table_col(&trans, "image"),
                               *cx = rapid_table_col(&trans, "x"), *cy = rapid_table_col(&trans, "y"),
                               *ck = rapid_table_col(&trans, "kind"),
                               *cm = rapid_table_col(&trans, "mag"),
                               *cf = rapid_table_col(&trans, "flux_dn"),
                               *cid = rapid_table_col(&trans, "id");
            double *kx, *ky, *km, *kf;
            int32_t *kk;
            int64_t *kid;
            if (!ci || !cx || !cy || !ck || !cm || !cf || !cid || ci->type != RAPID_COL_STR ||
                cx->type == RAPID_COL_STR || cy->type == RAPID_COL_STR ||
                ck->type == RAPID_COL_STR || cm->type == RAPID_COL_STR) {
                rc = rapid_fail(err, RAPID_E_TABLE, "%s/truth/transients.fits: no image, x, "
                                "y, kind, mag, flux_dn, id columns", simdir);
                break;
            }
            for (r = 0; r < trans.nrows; r++)
                nk += !strncmp((const char *)ci->data + (size_t)r * ci->width, j->base,
                               (size_t)ci->width);
            if ((rc = rapid_table_init(&j->known, nk)) != 0 ||
                !(kx = rapid_table_add_f64(&j->known, "x", "pix")) ||
                !(ky = rapid_table_add_f64(&j->known, "y", "pix")) ||
                !(kk = rapid_table_add_i32(&j->known, "kind", "")) ||
                !(km = rapid_table_add_f64(&j->known, "mag", "mag")) ||
                !(kf = rapid_table_add_f64(&j->known, "flux_dn", "DN")) ||
                !(kid = rapid_table_add_i64(&j->known, "id", ""))) {
                rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
                break;
            }
            for (r = 0, nk = 0; r < trans.nrows; r++)
                if (!strncmp((const char *)ci->data + (size_t)r * ci->width, j->base,
                             (size_t)ci->width)) {
                    kx[nk] = eval_colval(cx, r);
                    ky[nk] = eval_colval(cy, r);
                    kk[nk] = (int32_t)eval_colval(ck, r);
                    km[nk] = eval_colval(cm, r);
                    kf[nk] = eval_colval(cf, r);
                    kid[nk++] = (int64_t)eval_colval(cid, r);
                }
        }
        m++;
    }
done:
    for (k = 0; k < n; k++)
        free(names[k]);
    free(names);
    rapid_table_release(&trans);
    if (rc) {
        eval_scijobs_free(jobs, jobs ? (m < n ? m + 1 : m) : 0);
        return rc;
    }
    *out = jobs;
    *nout = m;
    return 0;
}

void eval_scijobs_free(eval_scijob *jobs, int n)
{
    int k;

    for (k = 0; jobs && k < n; k++) {
        eval_config_free(&jobs[k].cfg);
        rapid_table_release(&jobs[k].known);
        rapid_image_u32_release(&jobs[k].dq);
        free(jobs[k].scene.sx);
    }
    free(jobs);
}

/* ------------------------------------------------------------ the scene */

int eval_scene_under(const eval_scene *s, double x, double y)
{
    long k;

    for (k = 0; k < s->nstar; k++)
        if (hypot(x - s->sx[k], y - s->sy[k]) <= EVAL_STAR_RADIUS)
            return EVAL_UNDER_STAR;
    for (k = 0; k < s->ngal; k++)
        if (hypot(x - s->gx[k], y - s->gy[k]) <= fmax(EVAL_GALAXY_RE * s->gre[k], 2.0))
            return EVAL_UNDER_GALAXY;
    return EVAL_UNDER_FIELD;
}

/* one job: the rows near its image (a cone around its centre first),
 * then their pixels */
static int scene_one(eval_scijob *j, const rapid_table *t, const eval_static_cols *c,
                     rapid_err *err)
{
    const rapid_column *ctype = c->type, *cra = c->ra, *cdec = c->dec, *cre = c->re,
                       *cmag = c->mag;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    double cx, cy, cra0, cdec0, scale, rad, *ra = NULL, *dec, *x, *y, *row;
    long nx = 0, ny = 0, k, m = 0, ns = 0, ng = 0;
    int rc;

    if ((rc = rapid_fits_read_header(j->l2, "SCI", &h, err)) != 0 ||
        (rc = rapid_header_get_long(&h, "NAXIS1", &nx, err)) != 0 ||
        (rc = rapid_header_get_long(&h, "NAXIS2", &ny, err)) != 0 ||
        (rc = rapid_wcs_from_header(&w, &h, err)) != 0)
        goto done;
    cx = 0.5 * (nx - 1);
    cy = 0.5 * (ny - 1);
    if ((rc = rapid_wcs_pix2sky(&w, 1, &cx, &cy, &cra0, &cdec0, err)) != 0)
        goto done;
    scale = sqrt(fabs(w.cd[0][0] * w.cd[1][1] - w.cd[0][1] * w.cd[1][0])); /* deg/px */
    rad = (0.5 * hypot((double)nx, (double)ny) + 2 * EVAL_STAR_RADIUS) * scale * 1.1;
    if (!(ra = malloc((size_t)(t->nrows > 0 ? t->nrows : 1) * 5 * sizeof *ra))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
        goto done;
    }
    dec = ra + t->nrows;
    x = dec + t->nrows;
    y = x + t->nrows;
    row = y + t->nrows;
    for (k = 0; k < t->nrows; k++) {
        double typ = eval_colval(ctype, k), mag = eval_colval(cmag, k);
        double r = eval_colval(cra, k), d = eval_colval(cdec, k), dra;
        if (!((typ == 1 && mag < EVAL_BRIGHT_STAR) || (typ == 2 && mag < EVAL_GALAXY_MAG)))
            continue;
        dra = remainder(r - cra0, 360.0) * cos(d * M_PI / 180);
        if (fabs(d - cdec0) > rad || fabs(dra) > rad)
            continue;
        ra[m] = r;
        dec[m] = d;
        row[m] = (double)k;
        m++;
    }
    if (m > 0 && (rc = rapid_wcs_sky2pix(&w, (int)m, ra, dec, x, y, err)) != 0)
        goto done;
    if (!(j->scene.sx = malloc((size_t)(m > 0 ? m : 1) * 5 * sizeof(double)))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
        goto done;
    }
    for (k = 0; k < m; k++) {
        long r = (long)row[k];
        if (!(x[k] > -2 * EVAL_STAR_RADIUS && y[k] > -2 * EVAL_STAR_RADIUS &&
              x[k] < nx + 2 * EVAL_STAR_RADIUS && y[k] < ny + 2 * EVAL_STAR_RADIUS))
            continue;
        if (eval_colval(ctype, r) == 1) {
            j->scene.sx[ns] = x[k];
            j->scene.sx[m + ns++] = y[k];
        } else {
            j->scene.sx[2 * m + ng] = x[k];
            j->scene.sx[3 * m + ng] = y[k];
            j->scene.sx[4 * m + ng++] = eval_colval(cre, r) / 3600.0 / scale;
        }
    }
    j->scene.nstar = ns;
    j->scene.ngal = ng;
    j->scene.sy = j->scene.sx + m;
    j->scene.gx = j->scene.sx + 2 * m;
    j->scene.gy = j->scene.sx + 3 * m;
    j->scene.gre = j->scene.sx + 4 * m;
done:
    free(ra);
    rapid_wcs_release(&w);
    rapid_header_release(&h);
    return rc;
}

int eval_static_columns(const rapid_table *t, const char *filter, eval_static_cols *c,
                        rapid_err *err)
{
    const rapid_column **all[6];
    char magname[40];
    int k;

    snprintf(magname, sizeof magname, "mag_%s", filter);
    c->id = rapid_table_col(t, "id");
    c->type = rapid_table_col(t, "type");
    c->ra = rapid_table_col(t, "ra");
    c->dec = rapid_table_col(t, "dec");
    c->re = rapid_table_col(t, "r_e");
    c->mag = rapid_table_col(t, magname);
    all[0] = &c->id, all[1] = &c->type, all[2] = &c->ra, all[3] = &c->dec;
    all[4] = &c->re, all[5] = &c->mag;
    for (k = 0; k < 6; k++)
        if (!*all[k] || (*all[k])->type == RAPID_COL_STR)
            return rapid_fail(err, RAPID_E_TABLE, "static truth: no numeric id, type, ra, "
                              "dec, r_e and %s columns", magname);
    return 0;
}

int eval_scene_load(eval_scijob *jobs, int n, const rapid_table *t, const char *filter,
                    rapid_err *err)
{
    eval_static_cols c;
    int k, rc;

    if (!t || t->nrows <= 0)
        return 0;
    if ((rc = eval_static_columns(t, filter, &c, err)) != 0)
        return rc;
    for (k = 0; k < n; k++)
        if ((rc = scene_one(&jobs[k], t, &c, err)) != 0)
            return rc;
    return 0;
}

/* A product's path in a manifest's diff entry. */
const char *eval_product(json_t *diff, const char *kind)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(diff, "products"),
                                                             kind), "path"));
}

