/* job_reference.c - step 1 of the science job, the reference image: the
 * one registered, the one a reference job made, or one built here as
 * `rapid coadd` builds it (job_internal.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pipeline/job_internal.h"
#include "rapid/coadd.h"
#include "rapid/filters.h"
#include "rapid/md5.h"

/* The reference registered (source = existing). */
int job_reference_existing(job *s)
{
    const rapid_job_config *c = &s->c;
    struct stat sb;

    if (stat(c->ref_image, &sb) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s: the reference image is "
                        "missing", c->ref_image);
    snprintf(s->ref, sizeof s->ref, "%s", c->ref_image);
    json_object_set_new(s->reference, "source", json_string("existing"));
    json_object_set_new(s->reference, "rfid", json_integer(c->rfid));
    json_object_set_new(s->reference, "field", json_integer(c->field));
    json_object_set_new(s->reference, "fid", json_integer(c->fid));
    return 0;
}

/* The reference a reference job of this launch made (source = job). */
int job_reference_from_job(job *s)
{
    const rapid_job_config *c = &s->c;
    static const char *const keys[4] = {"image", "psf", "cov", "unc"};
    char *dst[4] = {s->ref, s->ref_psf, s->ref_cov, s->ref_unc};
    json_t *m = NULL, *prods;
    rapid_err err = RAPID_ERR_INIT;
    int k, code = 0;

    if ((code = job_refjob_status(s)) != 0)
        return code;
    if (jobrun_read_manifest(c->ref_dir, &m, &err) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "reference job %lld: %s",
                        (long long)c->refjid, err.msg);
    prods = json_object_get(json_object_get(m, "reference"), "products");
    for (k = 0; k < 4 && code == 0; k++)
        code = job_manifest_file(s, json_object_get(prods, keys[k]), c->ref_dir,
                                 keys[k], dst[k]);
    if (code == 0) {
        json_t *r = json_object_get(m, "reference");
        json_object_set_new(s->reference, "source", json_string("job"));
        json_object_set_new(s->reference, "refjid", json_integer(c->refjid));
        json_object_set(s->reference, "field", json_object_get(r, "field"));
        json_object_set(s->reference, "fid", json_object_get(r, "fid"));
    }
    json_decref(m);
    return code;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* Product k's file written: its size and MD5; 0 or a rapid_status. */
static int file_sum(job_refend *e, int k, rapid_err *err)
{
    struct stat sb;

    if (stat(e->path[k], &sb) != 0)
        return rapid_fail(err, RAPID_E_IO, "%s: not written: %s", e->path[k],
                          strerror(errno));
    e->size[k] = (int64_t)sb.st_size;
    return rapid_md5_file(e->path[k], e->md5[k], err);
}

/* The files of the image, its maps and PSF, each with its size and MD5
 * (on a thread of its own: the difference has the planes from memory). */
static void *refwrite_run(void *arg)
{
    static const int kinds[4] = {RAPID_COADD_IMAGE, RAPID_COADD_COV,
                                 RAPID_COADD_UNC, RAPID_COADD_PSF};
    job_refend *e = arg;
    struct timespec t0;
    int i;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < 4 && !e->wcode; i++)
        if (rapid_coadd_write_file(&e->coadd, kinds[i], e->path[kinds[i]], &e->werr) != 0 ||
            file_sum(e, kinds[i], &e->werr) != 0)
            e->wcode = RAPID_EXIT_WRITE;
    e->wseconds = seconds_since(&t0);
    return NULL;
}

/* The catalog, its file, size and MD5 (on a thread of its own: some 10 s
 * of one core at full size, which nothing of the difference needs). */
static void *refend_run(void *arg)
{
    job_refend *e = arg;
    struct timespec t0;
    int k;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the catalog is not begun once the job is asked to stop, and stops
     * measuring when it is */
    if (e->stop && *e->stop)
        e->code = RAPID_EXIT_INTERRUPTED;
    else if ((k = rapid_coadd_catalog(&e->coadd, e->stop, &e->err)) != 0)
        e->code = k == RAPID_E_INTERRUPTED ? RAPID_EXIT_INTERRUPTED
                                           : RAPID_EXIT_REFERENCE;
    else if (rapid_coadd_write_file(&e->coadd, RAPID_COADD_CAT,
                                    e->path[RAPID_COADD_CAT], &e->err) != 0 ||
             file_sum(e, RAPID_COADD_CAT, &e->err) != 0)
        e->code = RAPID_EXIT_WRITE;
    e->seconds = seconds_since(&t0);
    return NULL;
}

/* The reference built here from its inputs (source = build): the coadd as
 * `rapid coadd` makes it, its five files among this job's products.  The
 * difference takes the image, its maps and PSF from memory (the pixels
 * and header a read of their files gives); their files are written, and
 * the catalog made and written, on two threads of their own while the
 * science image is read and the pair prepared (with one thread, here and
 * now), and job_reference_finish waits for them. */
int job_reference_build(job *s)
{
    const rapid_job_config *c = &s->c;
    const rapid_filter *fl = rapid_filter_by_name(c->ref_filter);
    job_refend *e = &s->refend;
    rapid_coadd_input *in = NULL;
    rapid_coadd_opts co;
    rapid_err err = RAPID_ERR_INIT;
    const char *path;
    json_t *used = json_array();
    int k, i, code = 0;

    if (!fl) {
        code = job_fail(s, RAPID_EXIT_CONFIG, "%s: [reference] filter = '%s': "
                        "unknown filter", c->path, c->ref_filter);
        goto cleanup;
    }
    if ((code = job_inputs_exist(s)) != 0)
        goto cleanup;
    if (!(in = calloc((size_t)c->ninputs, sizeof *in))) {
        code = job_fail(s, RAPID_EXIT_FAILED, "reference image: no memory");
        goto cleanup;
    }
    for (i = 0; i < c->ninputs; i++)
        in[i].path = c->inputs[i].image, in[i].psf_path = c->inputs[i].psf;
    rapid_coadd_opts_init(&co);
    co.size = c->ref_size;
    co.nthreads = c->threads;
    co.defer_catalog = 1;
    /* a signal stops the coadd between the steps of its inputs (the whole
     * coadd takes ten seconds and more at full size) */
    co.stop = s->run.o ? s->run.o->stop : NULL;
    jobrun_log(&s->run, "building the reference image of tile %lld in %s from "
               "%d inputs (%d x %d px)", (long long)c->ref_field, fl->name,
               c->ninputs, co.size, co.size);
    k = rapid_coadd_make(&co, c->ref_field, fl->name, in, c->ninputs, &e->coadd,
                         NULL, NULL, &err);
    for (i = 0; i < e->coadd.nskipped; i++)
        jobrun_log(&s->run, "warning: %s: not used: %s", e->coadd.skipped[i].path,
                   e->coadd.skipped[i].reason);
    if (k == RAPID_E_INTERRUPTED) {
        jobrun_log(&s->run, "%s", err.msg);
        code = RAPID_EXIT_INTERRUPTED;
        goto cleanup;
    }
    if (k != 0) {
        code = job_fail(s, RAPID_EXIT_REFERENCE, "the reference image could not "
                        "be made: %s", err.msg);
        goto cleanup;
    }
    if (jobrun_stopped(&s->run)) { /* its files are not written */
        code = RAPID_EXIT_INTERRUPTED;
        goto cleanup;
    }
    for (k = 0; k < RAPID_COADD_NPRODUCT; k++) {
        rapid_coadd_product_name(e->name[k], sizeof e->name[k], c->ref_field,
                                 fl->name, k);
        if (jobrun_add(&s->run, e->name[k], &path, &err) != 0) {
            code = job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
            goto cleanup;
        }
        snprintf(e->path[k], sizeof e->path[k], "%s", path);
    }
    e->stop = co.stop;
    e->pending = 1;
    if (c->threads > 1) {
        e->wrunning = pthread_create(&e->wthread, NULL, refwrite_run, e) == 0;
        e->running = pthread_create(&e->thread, NULL, refend_run, e) == 0;
    }
    if (!e->wrunning)
        refwrite_run(e);
    if (!e->running)
        refend_run(e);
    /* the inputs used, by rid (coadd.inputs are the paths as given) */
    for (i = 0; i < e->coadd.ninputs; i++)
        for (k = 0; k < c->ninputs; k++)
            if (strcmp(e->coadd.inputs[i], c->inputs[k].image) == 0) {
                json_array_append_new(used, json_integer(c->inputs[k].rid));
                break;
            }
    json_object_set_new(s->reference, "source", json_string("built"));
    json_object_set_new(s->reference, "field", json_integer(c->ref_field));
    json_object_set_new(s->reference, "fid", json_integer(c->ref_fid ? c->ref_fid
                                                                     : fl->fid));
    json_object_set_new(s->reference, "filter", json_string(fl->name));
    json_object_set(s->reference, "inputs", used);
    /* the names of the files in the new set's (hidden) directory, which
     * the difference's products give; their contents from memory */
    snprintf(s->ref, sizeof s->ref, "%s", e->path[RAPID_COADD_IMAGE]);
    snprintf(s->ref_cov, sizeof s->ref_cov, "%s", e->path[RAPID_COADD_COV]);
    snprintf(s->ref_unc, sizeof s->ref_unc, "%s", e->path[RAPID_COADD_UNC]);
    snprintf(s->ref_psf, sizeof s->ref_psf, "%s", e->path[RAPID_COADD_PSF]);
cleanup:
    if (code)
        rapid_coadd_release(&e->coadd);
    free(in);
    json_decref(used);
    return code;
}

int job_reference_finish(job *s)
{
    job_refend *e = &s->refend;
    static const char *const keys[RAPID_COADD_NPRODUCT] = {"image", "cov", "unc",
                                                           "psf", "catalog"};
    rapid_err err = RAPID_ERR_INIT;
    json_t *prods, *f;
    int k, code = 0;

    if (e->running)
        pthread_join(e->thread, NULL);
    if (e->wrunning)
        pthread_join(e->wthread, NULL);
    e->running = e->wrunning = 0;
    if (!e->pending)
        return 0;
    e->pending = 0;
    /* the planes the catalog, the files and the pair's preparation used go
     * back to the pool: the methods' buffers are made of their pages */
    rapid_image_release(&e->coadd.image);
    rapid_image_release(&e->coadd.coverage);
    rapid_image_release(&e->coadd.uncertainty);
    if (e->code == RAPID_EXIT_INTERRUPTED) {
        code = e->code;
        goto cleanup;
    }
    if (e->wcode) {
        code = job_fail(s, e->wcode, "the reference image was not written: %s",
                        e->werr.msg);
        goto cleanup;
    }
    if (e->code) {
        code = job_fail(s, e->code, e->code == RAPID_EXIT_REFERENCE
                                        ? "the reference image could not be made: %s"
                                        : "the reference image was not written: %s",
                        e->err.msg);
        goto cleanup;
    }
    prods = json_object();
    for (k = 0; k < RAPID_COADD_NPRODUCT && code == 0; k++) {
        if (jobrun_product_known(&s->run, e->name[k], e->size[k], e->md5[k], &f,
                                 &err) != 0)
            code = job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
        else
            json_object_set(prods, keys[k], f);
    }
    if (code == 0) {
        json_object_set_new(s->reference, "meta", job_refimmeta_json(&e->coadd.meta));
        json_object_set(s->reference, "products", prods);
        jobrun_log(&s->run, "reference image: %d inputs, %lld catalog sources "
                   "(catalog: %.3f s; image, maps and PSF written: %.3f s)",
                   e->coadd.meta.nframes, (long long)e->coadd.meta.nsexcatsources,
                   e->seconds, e->wseconds);
    }
    json_decref(prods);
cleanup:
    rapid_coadd_release(&e->coadd);
    return code;
}
