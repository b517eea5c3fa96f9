/* job_config.c - a job's INI configuration (rapid/job.h, docs/pipeline.md),
 * read with inih: every key known, every value checked, errors naming the
 * file, the line and the key. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "rapid/job.h"

void rapid_job_config_init(rapid_job_config *c)
{
    memset(c, 0, sizeof *c);
    c->threads = 1;
    c->ref_size = 7000;
    c->sfft_order = c->kernel_half_width = -1;
    c->methods[RAPID_DIFFRUN_ZOGY] = c->methods[RAPID_DIFFRUN_NAIVE] =
        c->methods[RAPID_DIFFRUN_SFFT] = 1;
    rapid_cuts_init(&c->cuts);
}

void rapid_job_config_release(rapid_job_config *c)
{
    int k;

    free(c->path);
    free(c->out);
    free(c->filter);
    free(c->image);
    free(c->psf);
    free(c->ref_image);
    free(c->ref_dir);
    free(c->ref_filter);
    for (k = 0; k < c->ninputs; k++) {
        free(c->inputs[k].image);
        free(c->inputs[k].psf);
    }
    free(c->inputs);
    free(c->pp_dir);
    rapid_job_config_init(c);
}

typedef struct ctx {
    rapid_job_config *c;
    char problem[512];
    int ninputs;      /* [reference] ninputs; -1: not given */
} ctx;

static int bad(ctx *x, const char *fmt, const char *section, const char *name,
               const char *value)
{
    snprintf(x->problem, sizeof x->problem, fmt, section, name, value);
    return 0;
}

static int get_i64(ctx *x, const char *s, const char *n, const char *v,
                   int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long r;

    errno = 0;
    r = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == v || *end || errno || r < lo || r > hi) {
        char fmt[160];
        snprintf(fmt, sizeof fmt, "[%%s] %%s = '%%s': not an integer in "
                 "%" PRId64 " .. %" PRId64, lo, hi);
        return bad(x, fmt, s, n, v);
    }
    *out = r;
    return 1;
}

static int get_int(ctx *x, const char *s, const char *n, const char *v,
                   int lo, int hi, int *out)
{
    int64_t r;

    if (!get_i64(x, s, n, v, lo, hi, &r))
        return 0;
    *out = (int)r;
    return 1;
}

static int get_str(ctx *x, const char *s, const char *n, const char *v,
                   char **out)
{
    char *d = strdup(v);

    if (!d)
        return bad(x, "[%s] %s: no memory%s", s, n, "");
    free(*out);
    *out = v[0] ? d : NULL; /* an empty value: not given */
    if (!v[0])
        free(d);
    return 1;
}

static int method_index(const char *name)
{
    int m;

    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        if (strcmp(name, rapid_diffrun_method_name(m)) == 0)
            return m;
    return -1;
}

static int on_methods(ctx *x, const char *s, const char *n, const char *v)
{
    int m, got[RAPID_DIFFRUN_NMETHOD] = {0}, any = 0;
    const char *p = v;

    while (*p) {
        size_t len = strcspn(p, ", \t");
        char w[16];
        if (len > 0) {
            if (len >= sizeof w)
                return bad(x, "[%s] %s = '%s': unknown method (zogy, sfft, naive)",
                           s, n, v);
            memcpy(w, p, len);
            w[len] = '\0';
            if (strcmp(w, "all") == 0) {
                for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
                    got[m] = 1;
            } else if ((m = method_index(w)) < 0) {
                return bad(x, "[%s] %s = '%s': unknown method (zogy, sfft, naive)",
                           s, n, v);
            } else {
                got[m] = 1;
            }
            any = 1;
        }
        p += len;
        p += strspn(p, ", \t");
    }
    if (!any)
        return bad(x, "[%s] %s = '%s': no method", s, n, v);
    memcpy(x->c->methods, got, sizeof got);
    return 1;
}

/* input.N.rid / input.N.image / input.N.psf */
static int on_input(ctx *x, const char *s, const char *n, const char *v)
{
    rapid_job_config *c = x->c;
    char *end;
    long k;
    const char *field;

    errno = 0;
    k = strtol(n + 6, &end, 10);
    if (end == n + 6 || *end != '.' || errno || k < 1 || k > 255)
        return bad(x, "[%s] unknown key %s%s (input.N.rid, input.N.image, "
                   "input.N.psf with N in 1 .. 255)", s, n, "");
    field = end + 1;
    if (strcmp(field, "rid") && strcmp(field, "image") && strcmp(field, "psf"))
        return bad(x, "[%s] unknown key %s%s (input.N.rid, input.N.image, "
                   "input.N.psf)", s, n, "");
    if (k > c->ninputs) {
        rapid_job_input *in = realloc(c->inputs, (size_t)k * sizeof *in);
        if (!in)
            return bad(x, "[%s] %s: no memory%s", s, n, "");
        memset(in + c->ninputs, 0, (size_t)(k - c->ninputs) * sizeof *in);
        c->inputs = in;
        c->ninputs = (int)k;
    }
    if (strcmp(field, "rid") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->inputs[k - 1].rid);
    return get_str(x, s, n, v, strcmp(field, "image") == 0
                                   ? &c->inputs[k - 1].image
                                   : &c->inputs[k - 1].psf);
}

static int on_job(ctx *x, const char *s, const char *n, const char *v)
{
    rapid_job_config *c = x->c;

    if (strcmp(n, "jid") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->jid);
    if (strcmp(n, "ppid") == 0) {
        if (!get_int(x, s, n, v, 0, 1000, &c->ppid))
            return 0;
        if (c->ppid != RAPID_PPID_SCIENCE && c->ppid != RAPID_PPID_REFERENCE &&
            c->ppid != RAPID_PPID_POSTPROC)
            return bad(x, "[%s] %s = '%s': not a pipeline of jobs (15 science, "
                       "12 reference, 17 post-processing)", s, n, v);
        return 1;
    }
    if (strcmp(n, "procdate") == 0)
        return get_int(x, s, n, v, 19000101, 99991231, &c->procdate);
    if (strcmp(n, "out") == 0)
        return get_str(x, s, n, v, &c->out);
    if (strcmp(n, "threads") == 0)
        return get_int(x, s, n, v, 1, 64, &c->threads);
    return bad(x, "[%s] unknown key %s%s (jid, ppid, procdate, out, threads)",
               s, n, "");
}

static int on_science(ctx *x, const char *s, const char *n, const char *v)
{
    rapid_job_config *c = x->c;

    c->has_science = 1;
    if (strcmp(n, "rid") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->rid);
    if (strcmp(n, "expid") == 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->expid);
    if (strcmp(n, "sca") == 0)
        return get_int(x, s, n, v, 0, 18, &c->sca);
    if (strcmp(n, "fid") == 0)
        return get_int(x, s, n, v, 0, 1000, &c->fid);
    if (strcmp(n, "field") == 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->field);
    if (strcmp(n, "filter") == 0)
        return get_str(x, s, n, v, &c->filter);
    if (strcmp(n, "image") == 0)
        return get_str(x, s, n, v, &c->image);
    if (strcmp(n, "psf") == 0)
        return get_str(x, s, n, v, &c->psf);
    return bad(x, "[%s] unknown key %s%s (rid, expid, sca, fid, filter, field, "
               "image, psf)", s, n, "");
}

static int on_reference(ctx *x, const char *s, const char *n, const char *v)
{
    rapid_job_config *c = x->c;

    c->has_reference = 1;
    if (strcmp(n, "source") == 0) {
        if (strcmp(v, "existing") == 0)
            c->ref_source = RAPID_REFSRC_EXISTING;
        else if (strcmp(v, "job") == 0)
            c->ref_source = RAPID_REFSRC_JOB;
        else if (strcmp(v, "build") == 0)
            c->ref_source = RAPID_REFSRC_BUILD;
        else
            return bad(x, "[%s] %s = '%s': not existing, job or build", s, n, v);
        return 1;
    }
    if (strcmp(n, "rfid") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->rfid);
    if (strcmp(n, "image") == 0)
        return get_str(x, s, n, v, &c->ref_image);
    if (strcmp(n, "refjid") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->refjid);
    if (strcmp(n, "dir") == 0)
        return get_str(x, s, n, v, &c->ref_dir);
    if (strcmp(n, "field") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->ref_field);
    if (strcmp(n, "filter") == 0)
        return get_str(x, s, n, v, &c->ref_filter);
    if (strcmp(n, "fid") == 0)
        return get_int(x, s, n, v, 0, 1000, &c->ref_fid);
    if (strcmp(n, "size") == 0)
        return get_int(x, s, n, v, 16, 100000, &c->ref_size);
    if (strcmp(n, "ninputs") == 0)
        return get_int(x, s, n, v, 0, 255, &x->ninputs);
    if (strncmp(n, "input.", 6) == 0)
        return on_input(x, s, n, v);
    return bad(x, "[%s] unknown key %s%s (source, rfid, image, refjid, dir, "
               "field, filter, fid, size, ninputs, input.N.*)", s, n, "");
}

static int on_diff(ctx *x, const char *s, const char *n, const char *v)
{
    rapid_job_config *c = x->c;

    if (strcmp(n, "methods") == 0)
        return on_methods(x, s, n, v);
    if (strcmp(n, "sfft_order") == 0)
        return get_int(x, s, n, v, 0, 2, &c->sfft_order);
    if (strcmp(n, "kernel_half_width") == 0)
        return get_int(x, s, n, v, 1, 30, &c->kernel_half_width);
    return bad(x, "[%s] unknown key %s%s (methods, sfft_order, "
               "kernel_half_width)", s, n, "");
}

static int on_postproc(ctx *x, const char *s, const char *n, const char *v)
{
    rapid_job_config *c = x->c;
    int m;

    c->has_postproc = 1;
    if (strcmp(n, "scijid") == 0)
        return get_i64(x, s, n, v, 1, INT64_MAX, &c->scijid);
    if (strcmp(n, "dir") == 0)
        return get_str(x, s, n, v, &c->pp_dir);
    if (strcmp(n, "rid") == 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->pp_rid);
    if (strcmp(n, "expid") == 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->pp_expid);
    if (strcmp(n, "fid") == 0)
        return get_int(x, s, n, v, 0, 1000, &c->pp_fid);
    if (strcmp(n, "field") == 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->pp_field);
    if (strcmp(n, "rfid") == 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->pp_rfid);
    if (strcmp(n, "refversion") == 0)
        return get_int(x, s, n, v, 0, INT_MAX, &c->refversion);
    if (strncmp(n, "pid.", 4) == 0 && (m = method_index(n + 4)) >= 0)
        return get_i64(x, s, n, v, 0, INT64_MAX, &c->pid[m]);
    if (strncmp(n, "version.", 8) == 0 && (m = method_index(n + 8)) >= 0)
        return get_int(x, s, n, v, 0, INT_MAX, &c->version[m]);
    return bad(x, "[%s] unknown key %s%s (scijid, dir, rid, expid, fid, field, "
               "rfid, pid.METHOD, version.METHOD, refversion)", s, n, "");
}

static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
    ctx *x = user;
    rapid_job_config *c = x->c;

    if (x->problem[0]) /* inih goes on after an error: keep the first */
        return 0;
    if (!name) { /* a section header alone */
        if (strcmp(section, "job") && strcmp(section, "science") &&
            strcmp(section, "reference") && strcmp(section, "diff") &&
            strcmp(section, "cuts") && strcmp(section, "postproc"))
            return bad(x, "unknown section [%s]%s%s (job, science, reference, "
                       "diff, cuts, postproc)", section, "", "");
        if (strcmp(section, "science") == 0)
            c->has_science = 1;
        if (strcmp(section, "reference") == 0)
            c->has_reference = 1;
        if (strcmp(section, "postproc") == 0)
            c->has_postproc = 1;
        return 1;
    }
    if (strcmp(section, "job") == 0)
        return on_job(x, section, name, value);
    if (strcmp(section, "science") == 0)
        return on_science(x, section, name, value);
    if (strcmp(section, "reference") == 0)
        return on_reference(x, section, name, value);
    if (strcmp(section, "diff") == 0)
        return on_diff(x, section, name, value);
    if (strcmp(section, "postproc") == 0)
        return on_postproc(x, section, name, value);
    if (strcmp(section, "cuts") == 0) {
        char why[300];
        if (rapid_cuts_set(&c->cuts, name, value, why, sizeof why) != 0)
            return bad(x, "[%s] %s%s", section, why, "");
        return 1;
    }
    return bad(x, "unknown section [%s] (key %s%s)", section, name, "");
}

/* What each kind of job needs, once the whole file is read. */
static const char *missing(const rapid_job_config *c, int ninputs)
{
    static char what[128];
    int k;

    if (!c->jid)
        return "[job] jid";
    if (!c->ppid)
        return "[job] ppid";
    if (!c->procdate)
        return "[job] procdate";
    if (!c->out)
        return "[job] out";
    if (c->ppid == RAPID_PPID_SCIENCE && !c->has_science)
        return "section [science] (ppid 15)";
    if (c->ppid == RAPID_PPID_SCIENCE && !c->image)
        return "[science] image";
    if (c->ppid == RAPID_PPID_SCIENCE && !c->rid)
        return "[science] rid";
    if (c->ppid != RAPID_PPID_POSTPROC && !c->ref_source)
        return "[reference] source";
    if (c->ppid == RAPID_PPID_REFERENCE && c->ref_source != RAPID_REFSRC_BUILD)
        return "[reference] source = build (a reference job, ppid 12, builds it)";
    if (c->ppid != RAPID_PPID_POSTPROC && c->ref_source == RAPID_REFSRC_EXISTING &&
        !c->ref_image)
        return "[reference] image (source = existing)";
    if (c->ppid != RAPID_PPID_POSTPROC && c->ref_source == RAPID_REFSRC_JOB &&
        !c->ref_dir)
        return "[reference] dir (source = job)";
    if (c->ppid != RAPID_PPID_POSTPROC && c->ref_source == RAPID_REFSRC_BUILD) {
        if (!c->ref_field)
            return "[reference] field (source = build)";
        if (!c->ref_filter)
            return "[reference] filter (source = build)";
        if (c->ninputs == 0)
            return "[reference] input.1.image (source = build)";
        if (ninputs >= 0 && ninputs != c->ninputs) {
            snprintf(what, sizeof what, "[reference] input.1 .. input.%d "
                     "(ninputs = %d; input.%d is the last given)", ninputs,
                     ninputs, c->ninputs);
            return what;
        }
        for (k = 0; k < c->ninputs; k++)
            if (!c->inputs[k].image) {
                snprintf(what, sizeof what, "[reference] input.%d.image", k + 1);
                return what;
            }
    }
    if (c->ppid == RAPID_PPID_POSTPROC && !c->pp_dir)
        return "[postproc] dir";
    return NULL;
}

int rapid_job_config_read(rapid_job_config *c, const char *path,
                          rapid_err *err)
{
    ctx x;
    const char *what;
    int rc;

    memset(&x, 0, sizeof x);
    x.c = c;
    x.ninputs = -1;
    if (!(c->path = strdup(path)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", path);
    errno = 0;
    rc = ini_parse(path, on_key, &x);
    if (rc == -1)
        return rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                          "%s: cannot read the job configuration: %s", path,
                          errno ? strerror(errno) : "cannot open");
    if (rc == -2)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", path);
    if (rc > 0) /* the line of the first error */
        return rapid_fail(err, RAPID_E_ARG, "%s: line %d: %s", path, rc,
                          x.problem[0] ? x.problem : "not an INI line");
    if ((what = missing(c, x.ninputs)) != NULL)
        return rapid_fail(err, RAPID_E_ARG, "%s: no %s", path, what);
    return rapid_cuts_check(&c->cuts, path, err);
}

int rapid_job_dir_of_config(const char *path, char *out, size_t outsz)
{
    const char *base = strrchr(path, '/'), *p;
    long long jid;
    int procdate, n, len = 0;
    char tail[64];

    /* .../jobs/<procdate>/jid<jid>.ini */
    if (!base || sscanf(base, "/jid%lld.ini%n", &jid, &len) != 1 ||
        base[len] != '\0')
        return -1;
    for (p = base - 1; p > path && *p != '/'; p--)
        ;
    if (p <= path || sscanf(p, "/%8d/", &procdate) != 1 || p - 5 < path ||
        strncmp(p - 5, "/jobs", 5) != 0)
        return -1;
    snprintf(tail, sizeof tail, "/products/%d/jid%lld", procdate, jid);
    n = snprintf(out, outsz, "%.*s%s", (int)(p - 5 - path), path, tail);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}
