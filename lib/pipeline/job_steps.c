/* job_steps.c - what the science job's steps share (job_internal.h):
 * starting and ending a job, the reference job's products, the
 * candidates and the products of each method, the manifest's entries. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/job_internal.h"
#include "rapid/candidates.h"
#include "rapid/md5.h"
#include "rapid/version.h"

json_t *job_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

int job_method_id(int m)
{
    return m == RAPID_DIFFRUN_ZOGY ? 1 : m == RAPID_DIFFRUN_SFFT ? 2 : 3;
}

int job_fail(job *s, int code, const char *fmt, ...)
{
    char msg[2 * RAPID_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jobrun_log(&s->run, "error: %s", msg);
    return code;
}

void job_warn(void *arg, const char *msg)
{
    job *s = arg;
    jobrun_log(&s->run, "warning: %s", msg);
}

void job_stage_add(job *s, const char *name, double seconds, double cpu)
{
    json_t *st = json_pack("{s:s, s:f, s:f, s:f}", "name", name, "seconds", seconds,
                           "cpu_seconds", cpu, "peak_rss_mb", jobrun_peak_rss_mb());

    if (st)
        json_array_append_new(s->run.stages, st);
}

/* WORK/fftw.wisdom: $RAPID_WORK's, or that of the work directory out is
 * in (WORK/products/<procdate>/jid<jid>). */
static void find_wisdom(job *s)
{
    const char *work = getenv("RAPID_WORK");
    char tail[64];
    size_t n = strlen(s->c.out), t;

    if (s->run.o && s->run.o->wisdom) {
        snprintf(s->wisdom, sizeof s->wisdom, "%s", s->run.o->wisdom);
        return;
    }
    if (work && work[0]) {
        snprintf(s->wisdom, sizeof s->wisdom, "%s/fftw.wisdom", work);
        return;
    }
    snprintf(tail, sizeof tail, "/products/%d/jid%lld", s->c.procdate,
             (long long)s->c.jid);
    t = strlen(tail);
    if (n > t && strcmp(s->c.out + n - t, tail) == 0)
        snprintf(s->wisdom, sizeof s->wisdom, "%.*s/fftw.wisdom", (int)(n - t),
                 s->c.out);
}

int job_start(job *s, const char *path, const rapid_job_opts *o,
              const char *cmd)
{
    rapid_err err = RAPID_ERR_INIT;
    char out[4096], host[256] = "";
    json_t *m;
    int k;

    memset(s, 0, sizeof *s);
    rapid_coadd_init(&s->refend.coadd);
    rapid_job_config_init(&s->c);
    jobrun_init(&s->run, o, cmd);
    s->reference = json_object();
    s->diffs = json_array();
    for (k = 0; k < RAPID_DIFFRUN_NMETHOD; k++)
        s->cat[k] = (rapid_table)RAPID_TABLE_INIT;
    if (rapid_job_config_read(&s->c, path, &err) != 0) {
        /* the log goes where the configuration says, or where its name says */
        if (s->c.out)
            snprintf(out, sizeof out, "%s", s->c.out);
        else if (rapid_job_dir_of_config(path, out, sizeof out) != 0)
            out[0] = '\0';
        if (out[0]) {
            rapid_err e2 = RAPID_ERR_INIT;
            if (jobrun_begin(&s->run, out, &e2) != 0)
                jobrun_log(&s->run, "%s", e2.msg);
        }
        return job_fail(s, RAPID_EXIT_CONFIG, "%s", err.msg);
    }
    if (jobrun_begin(&s->run, s->c.out, &err) != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
    jobrun_log(&s->run, "jid %lld, ppid %d, procdate %d: %s (rapid %s, %s)",
               (long long)s->c.jid, s->c.ppid, s->c.procdate, path,
               rapid_version(), rapid_git_commit());
    find_wisdom(s);
    gethostname(host, sizeof host - 1);
    m = s->run.manifest;
    json_object_set_new(m, "jid", json_integer(s->c.jid));
    json_object_set_new(m, "ppid", json_integer(s->c.ppid));
    json_object_set_new(m, "procdate", json_integer(s->c.procdate));
    json_object_set_new(m, "machine", json_string(host));
    json_object_set_new(m, "software", json_pack("{s:s, s:s}", "version",
                                                 rapid_version(), "gitcommit",
                                                 rapid_git_commit()));
    if (s->c.ppid == RAPID_PPID_SCIENCE)
        json_object_set_new(m, "science", json_pack(
            "{s:I, s:I, s:i, s:i, s:I, s:s}", "rid", (json_int_t)s->c.rid,
            "expid", (json_int_t)s->c.expid, "sca", s->c.sca, "fid", s->c.fid,
            "field", (json_int_t)s->c.field, "image", s->c.image));
    return 0;
}

int job_end(job *s, int code)
{
    int k;

    if (s->refend.pending) /* ended early: the reference's thread is waited for */
        job_reference_finish(s);
    if (s->writer.running || s->writer.n > 0) {
        /* ended early: the images' thread too, and what it wrote that the
         * set does not hold goes */
        if (s->writer.running)
            pthread_join(s->writer.thread, NULL);
        s->writer.running = 0;
        for (k = 0; k < s->writer.n; k++)
            if (!s->writer.f[k].added)
                unlink(s->writer.f[k].path);
    }
    if (s->writer.wait) {
        pthread_mutex_destroy(&s->writer.lock);
        pthread_cond_destroy(&s->writer.cond);
        s->writer.wait = 0;
    }
    code = jobrun_finish(&s->run, code);
    for (k = 0; k < RAPID_DIFFRUN_NMETHOD; k++)
        rapid_table_release(&s->cat[k]);
    free(s->sat);
    s->sat = NULL;
    rapid_diffrun_free(s->diff);
    json_decref(s->reference);
    json_decref(s->diffs);
    jobrun_release(&s->run);
    rapid_job_config_release(&s->c);
    return code;
}

int job_refjob_status(job *s)
{
    rapid_err err = RAPID_ERR_INIT;
    char log[4200];
    int code;

    snprintf(log, sizeof log, "%s/%s", s->c.ref_dir, RAPID_JOB_LOG);
    /* the executor starts this job once the reference job is over: a log
     * missing (cancelled before it ran) or without its last line (killed,
     * cancelled while it ran) is a reference job that failed */
    if (rapid_job_log_exitcode(log, &code, &err) != 0)
        return job_fail(s, err.code == RAPID_E_NOENT || err.code == RAPID_E_ARG
                               ? RAPID_EXIT_REFJOB_FAILED : RAPID_EXIT_INPUT,
                        "reference job %lld did not end: %s",
                        (long long)s->c.refjid, err.msg);
    if (code > 31)
        return job_fail(s, RAPID_EXIT_REFJOB_FAILED, "reference job %lld "
                        "failed (terminating_exitcode = %d in %s)",
                        (long long)s->c.refjid, code, log);
    return 0;
}

int job_manifest_file(job *s, json_t *f, const char *dir, const char *key,
                      char *dst)
{
    const char *path = json_string_value(json_object_get(f, "path"));
    json_t *size = json_object_get(f, "size");
    struct stat sb;

    dst[0] = '\0';
    if (!f && strcmp(key, "image") != 0)
        return 0;
    if (!path || !json_is_integer(size))
        return job_fail(s, RAPID_EXIT_INPUT, "%s/%s: no reference %s with its "
                        "path and size", dir, RAPID_JOB_MANIFEST, key);
    if (stat(path, &sb) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s: the reference %s (of %s/%s) "
                        "is missing", path, key, dir, RAPID_JOB_MANIFEST);
    if ((json_int_t)sb.st_size != json_integer_value(size))
        return job_fail(s, RAPID_EXIT_INPUT, "%s: %lld bytes, %s/%s says %lld",
                        path, (long long)sb.st_size, dir, RAPID_JOB_MANIFEST,
                        (long long)json_integer_value(size));
    snprintf(dst, 4096, "%s", path);
    return 0;
}

int job_inputs_exist(job *s)
{
    struct stat sb;
    int k;

    for (k = 0; k < s->c.ninputs; k++) {
        const rapid_job_input *in = &s->c.inputs[k];
        if (stat(in->image, &sb) != 0)
            return job_fail(s, RAPID_EXIT_INPUT, "%s: reference input %d "
                            "(rid %lld) is missing", in->image, k + 1,
                            (long long)in->rid);
        if (in->psf && stat(in->psf, &sb) != 0)
            return job_fail(s, RAPID_EXIT_INPUT, "%s: the PSF of reference "
                            "input %d is missing", in->psf, k + 1);
    }
    return 0;
}

json_t *job_refimmeta_json(const rapid_refimmeta *m)
{
    json_t *o = json_object();

    json_object_set_new(o, "nframes", json_integer(m->nframes));
    json_object_set_new(o, "mjdobsmin", job_num(m->mjdobsmin));
    json_object_set_new(o, "mjdobsmax", job_num(m->mjdobsmax));
    json_object_set_new(o, "npixsat", json_integer(m->npixsat));
    json_object_set_new(o, "npixnan", json_integer(m->npixnan));
    json_object_set_new(o, "clmean", job_num(m->clmean));
    json_object_set_new(o, "clstddev", job_num(m->clstddev));
    json_object_set_new(o, "clnoutliers", json_integer(m->clnoutliers));
    json_object_set_new(o, "gmedian", job_num(m->gmedian));
    json_object_set_new(o, "datascale", job_num(m->datascale));
    json_object_set_new(o, "gmin", job_num(m->gmin));
    json_object_set_new(o, "gmax", job_num(m->gmax));
    json_object_set_new(o, "cov5percent", job_num(m->cov5percent));
    json_object_set_new(o, "medncov", job_num(m->medncov));
    json_object_set_new(o, "medpixunc", job_num(m->medpixunc));
    json_object_set_new(o, "fwhmmedpix", job_num(m->fwhmmedpix));
    json_object_set_new(o, "fwhmminpix", job_num(m->fwhmminpix));
    json_object_set_new(o, "fwhmmaxpix", job_num(m->fwhmmaxpix));
    json_object_set_new(o, "nsexcatsources", json_integer(m->nsexcatsources));
    return o;
}

int job_candidates(job *s, int m)
{
    rapid_diffrun *r = s->diff;
    rapid_psfphot_psf psf = RAPID_PSFPHOT_PSF_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_cand_opts co;
    rapid_cand_input in;
    rapid_err err = RAPID_ERR_INIT;
    const float *pd = NULL;
    int npd = 0, rc = 0;
    long i;

    rapid_cand_opts_init(&co);
    co.negative = 1;
    co.cuts = s->c.cuts;
    co.psf.nthreads = s->c.threads < RAPID_PSFPHOT_MAXTHREADS
                          ? s->c.threads : RAPID_PSFPHOT_MAXTHREADS;
    memset(&in, 0, sizeof in);
    in.nx = r->pair.nx;
    in.ny = r->pair.ny;
    in.bunit = "DN/s";
    /* a WCS of its own: WCSLIB's transformations write into theirs (the
     * distortions' work space), and methods may run side by side */
    if ((rc = rapid_wcs_from_header(&wcs, &r->sci.rate.hdr, &err)) != 0) {
        rapid_err_prefix(&err, "candidates");
        memcpy(r->run[m].msg, err.msg, sizeof r->run[m].msg);
        return -1;
    }
    wcs.nx = r->sci_wcs.nx, wcs.ny = r->sci_wcs.ny;
    in.wcs = &wcs;
    if (m == RAPID_DIFFRUN_ZOGY) {
        in.diff = r->zogy.d, in.unc = r->zogy.unc, in.detect = r->zogy.scorr;
        pd = r->zogy.pd, npd = r->zogy.npd;
    } else if (m == RAPID_DIFFRUN_SFFT) {
        in.diff = r->sfft.d, in.unc = r->sfft.unc, in.detect = r->sfft.cconv;
        pd = r->sfft.pd, npd = r->sfft.npd;
    } else {
        /* a new source is in the science image alone: its profile in the
         * naive difference is the science PSF, sampled finely when the
         * file has its OVERSAMP extension */
        in.diff = r->naive_d, in.unc = r->naive_unc;
        if (r->have_sci_psf) {
            rapid_image ov = RAPID_IMAGE_INIT;
            long over = 0;
            if (rapid_fits_has_hdu(r->sci_psf_path, "OVERSAMP", &err) == 1 &&
                rapid_fits_read_image(r->sci_psf_path, "OVERSAMP", &ov, &err) == 0 &&
                rapid_header_get_long(&ov.hdr, "OVERSAMP", &over, &err) == 0 && over >= 1 &&
                over <= 64 && ov.nx == ov.ny && ov.nx % 2 == 1 &&
                rapid_psfphot_psf_set(&psf, ov.data, ov.nx, ov.ny, (int)over,
                                      r->sci_psf_path, &err) == 0)
                in.psf = &psf;
            else
                pd = r->sci_psf.data, npd = r->sci_psf.nx;
            rapid_image_release(&ov);
            err = (rapid_err)RAPID_ERR_INIT;
        }
    }
    if (!in.psf && pd &&
        (rc = rapid_psfphot_psf_set(&psf, pd, npd, npd, 1, rapid_diffrun_method_name(m),
                                    &err)) == 0)
        in.psf = &psf;
    /* the science image's saturated stars: their rings fail the satrad cut */
    in.sat = s->sat;
    if (rc == 0)
        rc = rapid_candidates_extract(&in, &co, &s->cat[m], &err);
    rapid_psfphot_psf_release(&psf);
    rapid_wcs_release(&wcs);
    if (rc != 0) {
        rapid_err_prefix(&err, "candidates");
        memcpy(r->run[m].msg, err.msg, sizeof r->run[m].msg);
        rapid_table_release(&s->cat[m]);
        return -1;
    }
    {
        const int32_t *pass = rapid_table_col(&s->cat[m], "pass")->data;
        for (i = 0; i < s->cat[m].nrows; i++)
            s->npass[m] += pass[i] != 0;
    }
    return 0;
}

void job_candidates_log(job *s, int m, int rc)
{
    if (rc != 0)
        jobrun_log(&s->run, "%s failed: %s", rapid_diffrun_method_name(m),
                   s->diff->run[m].msg);
    else
        jobrun_log(&s->run, "%s: %ld candidates, %ld pass the cuts",
                   rapid_diffrun_method_name(m), s->cat[m].nrows, s->npass[m]);
}

/* The methods' candidates, taken in turn by each worker. */
typedef struct cand_work {
    job *s;
    int list[RAPID_DIFFRUN_NMETHOD], rc[RAPID_DIFFRUN_NMETHOD], n, next;
    pthread_mutex_t lock;
} cand_work;

static void *cand_worker(void *arg)
{
    cand_work *w = arg;
    int k;

    for (;;) {
        pthread_mutex_lock(&w->lock);
        k = jobrun_stopped(&w->s->run) ? w->n : w->next++;
        pthread_mutex_unlock(&w->lock);
        if (k >= w->n)
            return NULL;
        w->rc[k] = job_candidates(w->s, w->list[k]);
    }
}

int job_candidates_all(job *s)
{
    cand_work w;
    pthread_t th;
    int m, k, started = 0;

    memset(&w, 0, sizeof w);
    w.s = s;
    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        if (s->c.methods[m] && s->diff->run[m].ok)
            w.list[w.n++] = m;
    if (w.n > 0 && !s->sat) {
        rapid_err err = RAPID_ERR_INIT;
        if (rapid_cand_saturated_l2(s->diff->o.sci, s->diff->pair.nx, s->diff->pair.ny,
                                    &s->sat, &err) != 0) {
            /* every method's candidates need it */
            rapid_err_prefix(&err, "candidates");
            for (k = 0; k < w.n; k++) {
                memcpy(s->diff->run[w.list[k]].msg, err.msg, sizeof s->diff->run[0].msg);
                job_candidates_log(s, w.list[k], -1);
                s->diff->run[w.list[k]].ok = 0;
            }
            return 0;
        }
    }
    pthread_mutex_init(&w.lock, NULL);
    if (s->c.threads > 1 && w.n > 1)
        started = pthread_create(&th, NULL, cand_worker, &w) == 0;
    cand_worker(&w);
    if (started)
        pthread_join(th, NULL);
    pthread_mutex_destroy(&w.lock);
    if (jobrun_stopped(&s->run))
        return -1;
    for (k = 0; k < w.n; k++) {
        job_candidates_log(s, w.list[k], w.rc[k]);
        if (w.rc[k] != 0)
            s->diff->run[w.list[k]].ok = 0;
    }
    return 0;
}

/* The "meta" of a difference: the gain matching's figures. */
static json_t *diff_meta(const job *s, int m)
{
    const rapid_gainmatch *g = &s->diff->pair.match;

    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:i, s:I}",
                     "scalefacref", job_num(g->scale),
                     "dxrmsfin", job_num(g->dx_rms), "dyrmsfin", job_num(g->dy_rms),
                     "dxmedianfin", job_num(g->dx_median),
                     "dymedianfin", job_num(g->dy_median),
                     "nmatches", g->nstars,
                     "nsexcatsources", (json_int_t)s->cat[m].nrows);
}

static json_t *footprint(job *s)
{
    rapid_err err = RAPID_ERR_INIT;
    double ra[5], dec[5];
    json_t *r = json_array(), *d = json_array();
    int k;

    if (rapid_wcs_footprint(&s->diff->sci_wcs, s->diff->pair.nx,
                            s->diff->pair.ny, ra, dec, &err) != 0) {
        jobrun_log(&s->run, "warning: footprint: %s", err.msg);
        for (k = 0; k < 5; k++)
            ra[k] = dec[k] = NAN;
    }
    for (k = 0; k < 5; k++) {
        json_array_append_new(r, job_num(ra[k]));
        json_array_append_new(d, job_num(dec[k]));
    }
    return json_pack("{s:o, s:o}", "ra", r, "dec", d);
}

/* What the difference had to make do without (docs/pipeline.md, the
 * manifest's infobitssci and infobitsref). */
void job_infobits(const rapid_diffrun *r, int *sci, int *ref)
{
    const rapid_diff_pair *p = &r->pair;

    *sci = (!r->have_sci_psf ? 1 : 0) | (!isfinite(r->sci_zp) ? 2 : 0) |
           (!p->match.from || strcmp(p->match.from, "stars") != 0 ? 4 : 0) |
           (p->shift_x != 0 || p->shift_y != 0 ? 8 : 0);
    *ref = (!r->have_ref_psf ? 1 : 0) | (!isfinite(r->ref_zp) ? 2 : 0) |
           (!r->have_cov ? 4 : 0) | (!r->have_unc ? 8 : 0);
}

/* A product into the set: written by write(arg, path), then listed. */
static int add_product(job *s, const char *name, json_t *prods, const char *key,
                       int k, int m)
{
    rapid_err err = RAPID_ERR_INIT;
    const char *path;
    json_t *f = NULL;
    int rc;

    if ((rc = jobrun_add(&s->run, name, &path, &err)) == 0)
        rc = k >= 0 ? rapid_diffrun_write_product(s->diff, k, path, &err)
                    : rapid_fits_write_table(path, &s->cat[m], "CANDIDATES", &err);
    if (rc == 0)
        rc = jobrun_product(&s->run, name, path, &f, &err);
    if (rc != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
    json_object_set(prods, key, f);
    return 0;
}

/* An image the writer wrote into the set, listed. */
static int add_written(job *s, job_wfile *w, json_t *prods, const char *key)
{
    rapid_err err = RAPID_ERR_INIT;
    const char *path;
    json_t *f = NULL;

    if (jobrun_add(&s->run, w->name, &path, &err) != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
    w->added = 1;
    if (strcmp(path, w->path) != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s: written as %s", path, w->path);
    if (jobrun_product_known(&s->run, w->name, w->size, w->md5, &f, &err) != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
    json_object_set(prods, key, f);
    return 0;
}

/* Method m's images into the writer's list (w->n), their paths in the
 * set's directory: 0, or -1 with w->rc set. */
static int writer_list(job *s, int m)
{
    job_writer *w = &s->writer;
    int k;

    for (k = 0; k < RAPID_DIFFRUN_NPRODUCT; k++) {
        const rapid_diffrun_product *p = rapid_diffrun_product_kind(k);
        job_wfile *f = &w->f[w->n];
        if (p->method != m || !rapid_diffrun_made(s->diff, k))
            continue;
        memset(f, 0, sizeof *f);
        f->m = m, f->k = k;
        if (rapid_diffrun_product_name(s->diff, k, f->name, sizeof f->name) != 0 ||
            jobrun_future_path(&s->run, f->name, f->path, sizeof f->path) != 0) {
            w->rc = rapid_fail(&w->err, RAPID_E_ARG, "%s: too long a name",
                               s->c.image);
            return -1;
        }
        w->n++;
    }
    return 0;
}

/* Files from..w->n - 1 written, each with its size and MD5. */
static void writer_write(job *s, int from)
{
    job_writer *w = &s->writer;
    struct stat sb;
    int i;

    for (i = from; i < w->n && w->rc == 0 && !jobrun_stopped(&s->run); i++) {
        job_wfile *f = &w->f[i];
        if ((w->rc = rapid_diffrun_write_product(s->diff, f->k, f->path,
                                                 &w->err)) != 0)
            break;
        if (stat(f->path, &sb) != 0) {
            w->rc = rapid_fail(&w->err, RAPID_E_IO, "%s: not written: %s",
                               f->path, strerror(errno));
            break;
        }
        f->size = (int64_t)sb.st_size;
        w->rc = rapid_md5_file(f->path, f->md5, &w->err);
    }
}

static const int write_order[RAPID_DIFFRUN_NMETHOD] = {
    RAPID_DIFFRUN_ZOGY, RAPID_DIFFRUN_SFFT, RAPID_DIFFRUN_NAIVE};

/* The writer's thread: each image, its size and MD5, until one fails or
 * the job is asked to stop.  With w->wait, each method's once it is done
 * (in the order they end), else those listed already. */
static void *writer_run(void *arg)
{
    job *s = arg;
    job_writer *w = &s->writer;
    int taken[RAPID_DIFFRUN_NMETHOD] = {0}, left = 0, i, m, from;

    if (!w->wait) {
        writer_write(s, 0);
        return NULL;
    }
    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        left += s->c.methods[m] != 0;
    while (left > 0 && w->rc == 0 && !jobrun_stopped(&s->run)) {
        pthread_mutex_lock(&w->lock);
        for (;;) {
            for (i = 0, m = -1; i < RAPID_DIFFRUN_NMETHOD && m < 0; i++)
                if (s->c.methods[write_order[i]] && w->done[write_order[i]] &&
                    !taken[write_order[i]])
                    m = write_order[i];
            if (m >= 0)
                break;
            pthread_cond_wait(&w->cond, &w->lock);
        }
        pthread_mutex_unlock(&w->lock);
        taken[m] = 1, left--;
        if (!s->diff->run[m].ok)
            continue;
        from = w->n;
        if (writer_list(s, m) == 0)
            writer_write(s, from);
    }
    return NULL;
}

int job_write_images_begin(job *s)
{
    job_writer *w = &s->writer;
    int i, m;

    memset(w, 0, sizeof *w);
    w->err = (rapid_err)RAPID_ERR_INIT;
    for (i = 0; i < RAPID_DIFFRUN_NMETHOD; i++) {
        m = write_order[i];
        if (!s->c.methods[m] || !s->diff->run[m].ok)
            continue;
        if (writer_list(s, m) != 0) {
            w->n = 0;
            return job_fail(s, RAPID_EXIT_WRITE, "%s", w->err.msg);
        }
    }
    if (s->c.threads > 1 && w->n > 0 &&
        pthread_create(&w->thread, NULL, writer_run, s) == 0)
        w->running = 1;
    else
        writer_run(s);
    return 0;
}

/* ------------------------------------------------ the methods side by side */

int job_lanes_wanted(const job *s)
{
    return s->c.threads > 1 && s->c.methods[RAPID_DIFFRUN_ZOGY] &&
           s->c.methods[RAPID_DIFFRUN_SFFT];
}

/* The science image's saturated stars, which every method's candidates
 * need: read by the first lane while the other begins its methods. */
typedef struct sat_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;                 /* read (or failed) */
    int nosat;                 /* failed: no candidates */
    rapid_err err;
} sat_gate;

typedef struct lane {
    job *s;
    int methods[2], nmethod;   /* run in this order */
    int cands[2], ncand;       /* then these methods' candidates */
    int rc[RAPID_DIFFRUN_NMETHOD];
    sat_gate *sat;             /* waited for before the candidates */
    double end;                /* when its methods ended (monotonic s) */
} lane;

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void method_done(job *s, int m)
{
    job_writer *w = &s->writer;

    pthread_mutex_lock(&w->lock);
    w->done[m] = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* A lane: its methods on one thread each, each announced to the writer
 * as it ends, then their candidates.  The kernel fit's BLAS too: the
 * other lane keeps the other core busy meanwhile, where a helper thread
 * would only take turns with it and spin waiting; and its sums, which
 * depend on the number of threads, are then those of the job on one
 * thread (ZOGY's transforms give the same results on any number). */
static void *lane_run(void *arg)
{
    lane *l = arg;
    job *s = l->s;
    int k, m;

    for (k = 0; k < l->nmethod; k++) {
        m = l->methods[k];
        rapid_diffrun_run_method(s->diff, m, 1);
        method_done(s, m);
    }
    l->end = mono_now();
    pthread_mutex_lock(&l->sat->lock);
    while (!l->sat->ready)
        pthread_cond_wait(&l->sat->cond, &l->sat->lock);
    pthread_mutex_unlock(&l->sat->lock);
    for (k = 0; k < l->ncand && !l->sat->nosat && !jobrun_stopped(&s->run); k++) {
        m = l->cands[k];
        l->rc[m] = s->diff->run[m].ok ? job_candidates(s, m) : 0;
    }
    return NULL;
}

int job_lanes(job *s)
{
    job_writer *w = &s->writer;
    rapid_diffrun *r = s->diff;
    lane a, b;
    pthread_t th;
    sat_gate gate;
    double c0 = jobrun_cpu_seconds(), mcpu = 0, mend;
    int m, started, nosat;

    memset(w, 0, sizeof *w);
    w->err = (rapid_err)RAPID_ERR_INIT;
    w->wait = 1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    memset(&gate, 0, sizeof gate);
    gate.err = (rapid_err)RAPID_ERR_INIT;
    pthread_mutex_init(&gate.lock, NULL);
    pthread_cond_init(&gate.cond, NULL);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.s = b.s = s;
    a.sat = b.sat = &gate;
    if (s->c.methods[RAPID_DIFFRUN_NAIVE])
        a.methods[a.nmethod++] = RAPID_DIFFRUN_NAIVE;
    a.methods[a.nmethod++] = RAPID_DIFFRUN_ZOGY;
    a.cands[a.ncand++] = RAPID_DIFFRUN_ZOGY;
    if (s->c.methods[RAPID_DIFFRUN_NAIVE])
        a.cands[a.ncand++] = RAPID_DIFFRUN_NAIVE;
    b.methods[b.nmethod++] = RAPID_DIFFRUN_SFFT;
    b.cands[b.ncand++] = RAPID_DIFFRUN_SFFT;
    rapid_diffrun_methods_begin(r, 1);
    if (pthread_create(&w->thread, NULL, writer_run, s) != 0) {
        rapid_diffrun_methods_end(r);
        pthread_mutex_destroy(&gate.lock);
        pthread_cond_destroy(&gate.cond);
        return job_fail(s, RAPID_EXIT_FAILED, "no thread for the images");
    }
    w->running = 1;
    started = pthread_create(&th, NULL, lane_run, &b) == 0;
    /* the science image's saturated stars, which every method's candidates
     * need (without them, none are made), read while the kernel fit
     * begins */
    if (!s->sat && rapid_cand_saturated_l2(r->o.sci, r->pair.nx, r->pair.ny,
                                           &s->sat, &gate.err) != 0) {
        rapid_err_prefix(&gate.err, "candidates");
        gate.nosat = 1;
    }
    pthread_mutex_lock(&gate.lock);
    gate.ready = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    lane_run(&a);
    if (started)
        pthread_join(th, NULL);
    else
        lane_run(&b);
    rapid_diffrun_methods_end(r);
    pthread_mutex_destroy(&gate.lock);
    pthread_cond_destroy(&gate.cond);
    nosat = gate.nosat;
    mend = a.end > b.end ? a.end : b.end;
    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        if (s->c.methods[m]) {
            job_stage_add(s, rapid_diffrun_method_name(m), r->run[m].seconds,
                          r->run[m].cpu_seconds);
            mcpu += r->run[m].cpu_seconds;
            if (!r->run[m].ok && jobrun_stopped(&s->run))
                jobrun_log(&s->run, "%s stopped: %s", rapid_diffrun_method_name(m),
                           r->run[m].msg);
            else if (!r->run[m].ok)
                jobrun_log(&s->run, "%s failed: %s", rapid_diffrun_method_name(m),
                           r->run[m].msg);
        }
    /* the rest of the span: the candidates, the images written meanwhile,
     * the kernel fit's BLAS helpers; seconds from the methods' end */
    job_stage_add(s, "candidates", mono_now() - mend,
                  jobrun_cpu_seconds() - c0 - mcpu);
    if (jobrun_stopped(&s->run))
        return -1;
    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        if (s->c.methods[m] && r->run[m].ok) {
            if (nosat)
                memcpy(r->run[m].msg, gate.err.msg, sizeof r->run[m].msg);
            job_candidates_log(s, m, nosat ? -1 : a.rc[m] | b.rc[m]);
            if (nosat || a.rc[m] != 0 || b.rc[m] != 0)
                r->run[m].ok = 0;
        }
    return 0;
}

int job_write_images_end(job *s)
{
    job_writer *w = &s->writer;
    int i;

    if (w->running)
        pthread_join(w->thread, NULL);
    w->running = 0;
    /* what is not in the set (a method that failed since, a job that
     * ends early) must not be in its directory */
    for (i = 0; i < w->n; i++)
        if (!w->f[i].added && (w->rc || !s->diff->run[w->f[i].m].ok))
            unlink(w->f[i].path);
    if (w->rc) {
        w->n = 0;
        return job_fail(s, RAPID_EXIT_WRITE, "%s", w->err.msg);
    }
    return 0;
}

/* The writer's file of method m, kind k, or NULL. */
static job_wfile *written(job *s, int m, int k)
{
    int i;

    for (i = 0; i < s->writer.n; i++)
        if (s->writer.f[i].m == m && s->writer.f[i].k == k)
            return &s->writer.f[i];
    return NULL;
}

int job_write_method(job *s, int m)
{
    const char *mname = rapid_diffrun_method_name(m);
    json_t *prods = json_object(), *e;
    char name[RAPID_DIFFRUN_PATH];
    int k, code = 0, bsci, bref;
    size_t n;

    job_infobits(s->diff, &bsci, &bref);
    for (k = 0; k < RAPID_DIFFRUN_NPRODUCT && code == 0; k++) {
        const rapid_diffrun_product *p = rapid_diffrun_product_kind(k);
        job_wfile *w;
        if (p->method != m || !rapid_diffrun_made(s->diff, k))
            continue;
        if ((w = written(s, m, k)) != NULL)
            code = add_written(s, w, prods, p->key);
        else if (rapid_diffrun_product_name(s->diff, k, name, sizeof name) != 0)
            code = job_fail(s, RAPID_EXIT_WRITE, "%s: too long a name", s->c.image);
        else
            code = add_product(s, name, prods, p->key, k, m);
    }
    /* the catalog: <base>_<method>_cat.fits beside <base>_<method>_diff.fits */
    if (code == 0) {
        rapid_diffrun_product_name(s->diff, m == RAPID_DIFFRUN_ZOGY ? RAPID_DIFFRUN_P_ZOGY_DIFF
                                   : m == RAPID_DIFFRUN_SFFT ? RAPID_DIFFRUN_P_SFFT_DIFF
                                                             : RAPID_DIFFRUN_P_NAIVE_DIFF,
                                   name, sizeof name);
        n = strlen(name);
        if (n > 10 && strcmp(name + n - 10, "_diff.fits") == 0)
            snprintf(name + n - 10, sizeof name - n + 10, "_cat.fits");
        code = add_product(s, name, prods, "catalog", -1, m);
    }
    if (code == 0) {
        e = json_pack("{s:s, s:i, s:s, s:O, s:o, s:o, s:i, s:i, s:I, s:I, s:f}",
                      "method", mname, "method_id", job_method_id(m),
                      "status", "ok", "products", prods, "meta", diff_meta(s, m),
                      "footprint", footprint(s), "infobitssci", bsci,
                      "infobitsref", bref, "ncand", (json_int_t)s->cat[m].nrows,
                      "npass", (json_int_t)s->npass[m],
                      "seconds", s->diff->run[m].seconds);
        json_array_append_new(s->diffs, e);
    }
    json_decref(prods);
    return code;
}

json_t *job_failed_method_json(job *s, int m)
{
    return json_pack("{s:s, s:i, s:s, s:s}", "method",
                     rapid_diffrun_method_name(m), "method_id", job_method_id(m),
                     "status", "failed", "message", s->diff->run[m].msg);
}
