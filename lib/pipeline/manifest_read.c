/* manifest_read.c - a job's job.log and manifest.json, read back by
 * registration (the pipeline contract: docs/pipeline.md). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "steps_internal.h"

int rapid_steps_log_exitcode(const char *dir, int *code, rapid_err *err)
{
    char path[STEPS_PATH], tail[256], *line, *end;
    long size, off, v;
    size_t got;
    FILE *f;

    *code = -1;
    if (snprintf(path, sizeof path, "%s/%s", dir, RAPID_JOB_LOG) >=
        (int)sizeof path)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", dir);
    if (!(f = fopen(path, "rb")))
        return rapid_fail(err, RAPID_E_NOENT, "%s: no log: %s", path,
                          strerror(errno));
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    off = size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0;
    fseek(f, off, SEEK_SET);
    got = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[got] = '\0';
    while (got && (tail[got - 1] == '\n' || tail[got - 1] == '\r'))
        tail[--got] = '\0';
    line = strrchr(tail, '\n');
    line = line ? line + 1 : tail;
    if (strncmp(line, "terminating_exitcode = ", 23) != 0)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no terminating_exitcode"
                          " line at its end (job killed or still running)",
                          path);
    errno = 0;
    v = strtol(line + 23, &end, 10);
    if (end == line + 23 || *end || errno || v < 0 || v > 255)
        return rapid_fail(err, RAPID_E_NOENT, "%s: last line '%.60s' holds"
                          " no exit code", path, line);
    *code = (int)v;
    return 0;
}

/* ------------------------------------------------------------ JSON */

typedef struct jctx {
    const char *path;
    rapid_err *err;
    int rc;
} jctx;

static int bad(jctx *c, const char *fmt, const char *what)
{
    char msg[256];

    if (!c->rc) {
        snprintf(msg, sizeof msg, fmt, what);
        c->rc = rapid_fail(c->err, RAPID_E_ARG, "%s: %s", c->path, msg);
    }
    return c->rc;
}

static int64_t jint(jctx *c, json_t *o, const char *key, int required)
{
    json_t *v = json_object_get(o, key);

    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (required)
        bad(c, "\"%s\": missing or not an integer", key);
    return 0;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void jstr(json_t *o, const char *key, char *out, size_t outsz)
{
    const char *s = json_string_value(json_object_get(o, key));

    snprintf(out, outsz, "%s", s ? s : "");
}

static double jtime(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    double t;

    if (!s || rapid_time_parse(s, &t, NULL))
        return NAN;
    return t;
}

/* An F object: {"path", "size", "md5"}; the file must be there with its
 * size.  Absent (NULL) leaves f->path empty unless required. */
static int jfile(jctx *c, json_t *o, const char *what, steps_file *f,
                 int required)
{
    const char *p;
    struct stat st;

    memset(f, 0, sizeof *f);
    if (!o) {
        if (required)
            bad(c, "product %s: missing", what);
        return c->rc;
    }
    p = json_string_value(json_object_get(o, "path"));
    if (!json_is_object(o) || !p || !*p ||
        !json_is_integer(json_object_get(o, "size")))
        return bad(c, "product %s: not {\"path\", \"size\", \"md5\"}", what);
    if (strlen(p) >= sizeof f->path)
        return bad(c, "product %s: path too long", what);
    snprintf(f->path, sizeof f->path, "%s", p);
    f->size = (int64_t)json_integer_value(json_object_get(o, "size"));
    jstr(o, "md5", f->md5, sizeof f->md5);
    if (stat(p, &st) != 0) {
        if (!c->rc)
            c->rc = rapid_fail(c->err, RAPID_E_ARG, "%s: product %s missing:"
                               " %s: %s", c->path, what, p, strerror(errno));
        return c->rc;
    }
    if ((int64_t)st.st_size != f->size) {
        if (!c->rc)
            c->rc = rapid_fail(c->err, RAPID_E_ARG, "%s: product %s is %lld"
                               " bytes, the manifest says %lld: %s", c->path,
                               what, (long long)st.st_size,
                               (long long)f->size, p);
        return c->rc;
    }
    return 0;
}

static void read_refmeta(json_t *o, rapid_refimmeta *m)
{
    m->nframes = (int)json_integer_value(json_object_get(o, "nframes"));
    m->mjdobsmin = jnum(o, "mjdobsmin"), m->mjdobsmax = jnum(o, "mjdobsmax");
    m->npixsat = json_integer_value(json_object_get(o, "npixsat"));
    m->npixnan = json_integer_value(json_object_get(o, "npixnan"));
    m->clmean = jnum(o, "clmean"), m->clstddev = jnum(o, "clstddev");
    m->clnoutliers = json_integer_value(json_object_get(o, "clnoutliers"));
    m->gmedian = jnum(o, "gmedian"), m->datascale = jnum(o, "datascale");
    m->gmin = jnum(o, "gmin"), m->gmax = jnum(o, "gmax");
    m->cov5percent = jnum(o, "cov5percent"), m->medncov = jnum(o, "medncov");
    m->medpixunc = jnum(o, "medpixunc");
    m->fwhmmedpix = jnum(o, "fwhmmedpix");
    m->fwhmminpix = jnum(o, "fwhmminpix");
    m->fwhmmaxpix = jnum(o, "fwhmmaxpix");
    m->nsexcatsources =
        json_integer_value(json_object_get(o, "nsexcatsources"));
}

static void read_reference(jctx *c, json_t *ref, steps_manifest *m)
{
    json_t *in, *prod;
    size_t i;

    if (!json_is_object(ref))
        return;
    jstr(ref, "source", m->ref_source, sizeof m->ref_source);
    m->rfid = jint(c, ref, "rfid", 0);
    m->refjid = jint(c, ref, "refjid", 0);
    m->field = jint(c, ref, "field", 0);
    m->fid = (int)jint(c, ref, "fid", 0);
    if (strcmp(m->ref_source, "built") != 0)
        return;
    in = json_object_get(ref, "inputs");
    if (!json_is_array(in) || json_array_size(in) > 64) {
        bad(c, "reference.%s: not an array of at most 64 rids", "inputs");
        return;
    }
    for (i = 0; i < json_array_size(in); i++)
        m->inputs[m->ninputs++] = json_integer_value(json_array_get(in, i));
    if (json_is_object(json_object_get(ref, "meta"))) {
        m->has_refmeta = 1;
        read_refmeta(json_object_get(ref, "meta"), &m->refmeta);
    }
    prod = json_object_get(ref, "products");
    jfile(c, json_object_get(prod, "image"), "reference image", &m->refimage, 1);
    jfile(c, json_object_get(prod, "catalog"), "reference catalog",
          &m->refcatalog, 0);
}

static void read_diff(jctx *c, json_t *o, steps_diff *d)
{
    json_t *prod = json_object_get(o, "products"), *meta, *fp;
    const char *status = json_string_value(json_object_get(o, "status"));
    int i;

    jstr(o, "method", d->method, sizeof d->method);
    d->method_id = (int)jint(c, o, "method_id", 1);
    d->ok = status && strcmp(status, "ok") == 0;
    if (!d->ok)
        return;
    jfile(c, json_object_get(prod, "diff"), "diff", &d->diff, 1);
    jfile(c, json_object_get(prod, "catalog"), "catalog", &d->catalog, 0);
    meta = json_object_get(o, "meta");
    d->meta.nsexcatsources = json_integer_value(json_object_get(meta, "nsexcatsources"));
    d->meta.scalefacref = jnum(meta, "scalefacref");
    d->meta.dxrmsfin = jnum(meta, "dxrmsfin");
    d->meta.dyrmsfin = jnum(meta, "dyrmsfin");
    d->meta.dxmedianfin = jnum(meta, "dxmedianfin");
    d->meta.dymedianfin = jnum(meta, "dymedianfin");
    d->meta.nmatches = json_integer_value(json_object_get(meta, "nmatches"));
    fp = json_object_get(o, "footprint");
    for (i = 0; i < 5; i++) {
        d->ra[i] = json_number_value(json_array_get(json_object_get(fp, "ra"), (size_t)i));
        d->dec[i] = json_number_value(json_array_get(json_object_get(fp, "dec"), (size_t)i));
    }
    d->infobitssci = (int)jint(c, o, "infobitssci", 0);
    d->infobitsref = (int)jint(c, o, "infobitsref", 0);
    d->ncand = jint(c, o, "ncand", 0);
    d->npass = jint(c, o, "npass", 0);
}

static void read_stamped(jctx *c, json_t *arr, steps_manifest *m)
{
    size_t i;

    if (!arr)
        return;
    if (!json_is_array(arr) || json_array_size(arr) > STEPS_MAX_STAMPED) {
        bad(c, "\"%s\": not an array of at most " /* the limit: */
            "64 files", "stamped");
        return;
    }
    for (i = 0; i < json_array_size(arr) && !c->rc; i++) {
        json_t *o = json_array_get(arr, i);
        steps_stamped *s = &m->stamped[m->nstamped++];
        jstr(o, "kind", s->kind, sizeof s->kind);
        jstr(o, "method", s->method, sizeof s->method);
        s->id = jint(c, o, strcmp(s->kind, "refimage") == 0 ? "rfid" : "pid", 0);
        jfile(c, o, "stamped", &s->f, 1);
    }
}

int steps_read_manifest(const char *dir, steps_manifest *m, rapid_err *err)
{
    char path[STEPS_PATH];
    json_error_t je;
    json_t *root = NULL, *sw, *sci, *diffs, *prods, *pp;
    jctx c;
    size_t i;

    memset(m, 0, sizeof *m);
    m->started = m->ended = NAN;
    if (snprintf(path, sizeof path, "%s/%s", dir, RAPID_JOB_MANIFEST) >=
        (int)sizeof path)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", dir);
    c.path = path, c.err = err, c.rc = 0;
    if (!(root = json_load_file(path, 0, &je))) {
        struct stat st;
        if (stat(path, &st) != 0)
            return rapid_fail(err, RAPID_E_NOENT, "%s: no manifest", path);
        return rapid_fail(err, RAPID_E_ARG, "%s: corrupt manifest: line %d:"
                          " %s", path, je.line, je.text);
    }
    if (!json_is_object(root)) {
        bad(&c, "%s", "not a JSON object");
        goto cleanup;
    }
    m->jid = jint(&c, root, "jid", 1);
    m->ppid = (int)jint(&c, root, "ppid", 1);
    m->exitcode = (int)jint(&c, root, "exitcode", 1);
    m->started = jtime(root, "started");
    m->ended = jtime(root, "ended");
    sw = json_object_get(root, "software");
    jstr(sw, "gitcommit", m->gitcommit, sizeof m->gitcommit);
    jstr(sw, "version", m->version, sizeof m->version);
    if ((sci = json_object_get(root, "science")) != NULL)
        m->rid = jint(&c, sci, "rid", 1);
    read_reference(&c, json_object_get(root, "reference"), m);
    diffs = json_object_get(root, "diffs");
    if (diffs && (!json_is_array(diffs) || json_array_size(diffs) > 3))
        bad(&c, "\"%s\": not an array of at most 3", "diffs");
    for (i = 0; diffs && i < json_array_size(diffs) && !c.rc && m->ndiffs < 3; i++)
        read_diff(&c, json_array_get(diffs, i), &m->diffs[m->ndiffs++]);
    if ((pp = json_object_get(root, "postproc")) != NULL)
        m->scijid = jint(&c, pp, "scijid", 1);
    read_stamped(&c, json_object_get(root, "stamped"), m);
    prods = json_object_get(root, "products");
    if (!json_is_array(prods))
        bad(&c, "\"%s\": missing or not an array", "products");
    for (i = 0; !c.rc && i < json_array_size(prods); i++) {
        steps_file f;
        jfile(&c, json_array_get(prods, i), "listed", &f, 1);
    }
cleanup:
    json_decref(root);
    return c.rc;
}

steps_outcome steps_job_outcome(const char *dir, steps_manifest *m,
                                int *code, rapid_err *why)
{
    rapid_err ignore = RAPID_ERR_INIT;

    if (rapid_steps_log_exitcode(dir, code, &ignore) != 0)
        return STEPS_UNFINISHED;
    if (*code > 31)
        return STEPS_ENDED_FAILED;
    if (steps_read_manifest(dir, m, why) != 0)
        return STEPS_BAD_MANIFEST;
    if (m->exitcode != *code) {
        rapid_fail(why, RAPID_E_ARG, "%s/%s: exit code %d, the log says %d",
                   dir, RAPID_JOB_MANIFEST, m->exitcode, *code);
        return STEPS_BAD_MANIFEST;
    }
    return STEPS_ENDED_OK;
}
