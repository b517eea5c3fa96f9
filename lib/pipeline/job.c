/* job.c - the science job (ppid 15) and the reference job (ppid 12):
 * the numbered steps of the science job, top to bottom (docs/pipeline.md).
 * Each step's module does the work; this file says what happens in which
 * order, what each failure's exit code is, and what the manifest records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/job_internal.h"
#include "rapid/coadd.h"
#include "rapid/filters.h"

/* ---------------------------------------------------- 1. reference image */

/* The reference registered (source = existing). */
static int reference_existing(job *s)
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
static int reference_from_job(job *s)
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

/* The reference built here from its inputs (source = build): the coadd as
 * `rapid coadd` makes it, its five files among this job's products. */
static int reference_build(job *s)
{
    const rapid_job_config *c = &s->c;
    const rapid_filter *fl = rapid_filter_by_name(c->ref_filter);
    static const char *const keys[RAPID_COADD_NPRODUCT] = {"image", "cov", "unc",
                                                           "psf", "catalog"};
    rapid_coadd_input *in = NULL;
    rapid_coadd_opts co;
    rapid_coadd coadd;
    rapid_err err = RAPID_ERR_INIT;
    const char *paths[RAPID_COADD_NPRODUCT];
    char name[RAPID_COADD_NPRODUCT][256];
    json_t *prods = json_object(), *used = json_array(), *f;
    int k, i, code = 0;

    rapid_coadd_init(&coadd);
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
    jobrun_log(&s->run, "building the reference image of tile %lld in %s from "
               "%d inputs (%d x %d px)", (long long)c->ref_field, fl->name,
               c->ninputs, co.size, co.size);
    k = rapid_coadd_make(&co, c->ref_field, fl->name, in, c->ninputs, &coadd,
                         NULL, NULL, &err);
    for (i = 0; i < coadd.nskipped; i++)
        jobrun_log(&s->run, "warning: %s: not used: %s", coadd.skipped[i].path,
                   coadd.skipped[i].reason);
    if (k != 0) {
        code = job_fail(s, RAPID_EXIT_REFERENCE, "the reference image could not "
                        "be made: %s", err.msg);
        goto cleanup;
    }
    for (k = 0; k < RAPID_COADD_NPRODUCT; k++) {
        rapid_coadd_product_name(name[k], sizeof name[k], c->ref_field, fl->name, k);
        if (jobrun_add(&s->run, name[k], &paths[k], &err) != 0) {
            code = job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
            goto cleanup;
        }
    }
    if (rapid_coadd_write_files(&coadd, paths, &err) != 0) {
        code = job_fail(s, RAPID_EXIT_WRITE, "the reference image was not "
                        "written: %s", err.msg);
        goto cleanup;
    }
    for (k = 0; k < RAPID_COADD_NPRODUCT; k++) {
        if (jobrun_product(&s->run, name[k], paths[k], &f, &err) != 0) {
            code = job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
            goto cleanup;
        }
        json_object_set(prods, keys[k], f);
    }
    /* the inputs used, by rid (coadd.inputs are the paths as given) */
    for (i = 0; i < coadd.ninputs; i++)
        for (k = 0; k < c->ninputs; k++)
            if (strcmp(coadd.inputs[i], c->inputs[k].image) == 0) {
                json_array_append_new(used, json_integer(c->inputs[k].rid));
                break;
            }
    json_object_set_new(s->reference, "source", json_string("built"));
    json_object_set_new(s->reference, "field", json_integer(c->ref_field));
    json_object_set_new(s->reference, "fid", json_integer(c->ref_fid ? c->ref_fid
                                                                     : fl->fid));
    json_object_set_new(s->reference, "filter", json_string(fl->name));
    json_object_set(s->reference, "inputs", used);
    json_object_set_new(s->reference, "meta", job_refimmeta_json(&coadd.meta));
    json_object_set(s->reference, "products", prods);
    /* the difference reads it from the new set's (hidden) directory; its
     * PSF and maps beside it */
    snprintf(s->ref, sizeof s->ref, "%s", paths[RAPID_COADD_IMAGE]);
    jobrun_log(&s->run, "reference image: %d inputs, %lld catalog sources",
               coadd.meta.nframes, (long long)coadd.meta.nsexcatsources);
cleanup:
    rapid_coadd_release(&coadd);
    free(in);
    json_decref(prods);
    json_decref(used);
    return code;
}

static int step_reference(job *s)
{
    int code;

    jobrun_stage_begin(&s->run);
    switch (s->c.ref_source) {
    case RAPID_REFSRC_EXISTING:
        code = reference_existing(s);
        break;
    case RAPID_REFSRC_JOB:
        code = reference_from_job(s);
        break;
    default:
        code = reference_build(s);
    }
    json_object_set(s->run.manifest, "reference", s->reference);
    jobrun_stage_end(&s->run, "reference");
    return code;
}

/* ------------------------------------- 2-6. prepare and the differences */

/* The science image read, the reference resampled onto it, backgrounds,
 * gain matching; then ZOGY, the kernel fit and the naive difference. */
static int step_differences(job *s)
{
    rapid_diffrun_opts o;
    rapid_err err = RAPID_ERR_INIT;
    int m, nok;

    struct stat sb;

    /* a file named must be there (a PSF looked for beside the image may
     * be missing: the methods that need it fail, the naive one runs) */
    if (stat(s->c.image, &sb) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s: the science image is missing",
                        s->c.image);
    if (s->c.psf && stat(s->c.psf, &sb) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s: the science PSF is missing",
                        s->c.psf);
    rapid_diffrun_opts_init(&o);
    o.sci = s->c.image;
    o.sci_psf = s->c.psf;
    o.ref = s->ref;
    o.ref_psf = s->ref_psf[0] ? s->ref_psf : NULL;
    o.ref_cov = s->ref_cov[0] ? s->ref_cov : NULL;
    o.ref_unc = s->ref_unc[0] ? s->ref_unc : NULL;
    memcpy(o.asked, s->c.methods, sizeof o.asked);
    o.nthreads = s->c.threads;
    o.order = s->c.sfft_order;
    o.half_width = s->c.kernel_half_width;
    o.wisdom = s->wisdom[0] ? s->wisdom : NULL;
    o.warn = job_warn;
    o.arg = s;
    if (!(s->diff = rapid_diffrun_new(&o)))
        return job_fail(s, RAPID_EXIT_FAILED, "no memory");
    jobrun_stage_begin(&s->run);
    if (rapid_diffrun_read(s->diff, &err) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s", err.msg);
    jobrun_stage_end(&s->run, "read");
    if (jobrun_stopped(&s->run))
        return RAPID_EXIT_INTERRUPTED;
    if (rapid_diffrun_prepare(s->diff, &err) != 0)
        return job_fail(s, RAPID_EXIT_DIFF, "the pair could not be prepared: %s",
                        err.msg);
    jobrun_stage_end(&s->run, "prepare");
    if (jobrun_stopped(&s->run))
        return RAPID_EXIT_INTERRUPTED;
    nok = rapid_diffrun_methods(s->diff);
    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        if (s->c.methods[m]) {
            job_stage_add(s, rapid_diffrun_method_name(m), s->diff->run[m].seconds);
            if (!s->diff->run[m].ok)
                jobrun_log(&s->run, "%s failed: %s", rapid_diffrun_method_name(m),
                           s->diff->run[m].msg);
        }
    jobrun_stage_begin(&s->run);
    if (nok == 0)
        return job_fail(s, RAPID_EXIT_DIFF, "every difference method failed");
    return 0;
}

/* ------------------------------- 7-9. candidates of each difference */

/* Detection on S_corr (ZOGY), the cross-convolved difference (kernel fit)
 * or the difference itself (naive), positive and negative; measurement,
 * PSF fits and vetting on the difference.  A method whose candidates
 * cannot be made fails as a whole. */
static int step_candidates(job *s)
{
    int m;

    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++) {
        if (!s->c.methods[m] || !s->diff->run[m].ok)
            continue;
        if (job_candidates(s, m) != 0)
            s->diff->run[m].ok = 0;
        if (jobrun_stopped(&s->run))
            return RAPID_EXIT_INTERRUPTED;
    }
    jobrun_stage_end(&s->run, "candidates");
    return 0;
}

/* ------------------------------------------------------ 10. products */

static int step_products(job *s)
{
    static const int order[RAPID_DIFFRUN_NMETHOD] = {
        RAPID_DIFFRUN_ZOGY, RAPID_DIFFRUN_SFFT, RAPID_DIFFRUN_NAIVE};
    int k, m, nasked = 0, nok = 0, code;

    for (k = 0; k < RAPID_DIFFRUN_NMETHOD; k++) {
        m = order[k];
        if (!s->c.methods[m])
            continue;
        nasked++;
        if (s->diff->run[m].ok) {
            if ((code = job_write_method(s, m)) != 0)
                return code;
            nok++;
        } else {
            json_array_append_new(s->diffs, job_failed_method_json(s, m));
        }
    }
    json_object_set(s->run.manifest, "diffs", s->diffs);
    jobrun_stage_end(&s->run, "write");
    if (nok == 0)
        return job_fail(s, RAPID_EXIT_DIFF, "every difference method failed");
    return nok == nasked ? RAPID_EXIT_OK : RAPID_EXIT_METHOD_FAILED;
}

/* -------------------------------------------------------------- the job */

int rapid_job_run(const char *path, const rapid_job_opts *o)
{
    job s;
    int code;

    if ((code = job_start(&s, path, o, "job")) != 0)
        goto end;
    if (s.c.ppid == RAPID_PPID_POSTPROC) {
        code = job_fail(&s, RAPID_EXIT_CONFIG, "%s: ppid 17: a post-processing "
                        "job (rapid postproc-job runs it)", path);
        goto end;
    }
    /* 1. the reference image: registered, a reference job's, or built */
    if ((code = step_reference(&s)) != 0 || s.c.ppid == RAPID_PPID_REFERENCE)
        goto end;
    if (jobrun_stopped(&s.run) && (code = RAPID_EXIT_INTERRUPTED))
        goto end;
    /* 2-6. the science image, the pair prepared, the differences */
    if ((code = step_differences(&s)) != 0)
        goto end;
    /* 7-9. candidates: detection, PSF fits, vetting */
    if ((code = step_candidates(&s)) != 0)
        goto end;
    /* 10. products; the manifest and the log follow */
    code = step_products(&s);
    if (code <= 31 && jobrun_stopped(&s.run))
        code = RAPID_EXIT_INTERRUPTED;
end:
    return job_end(&s, code);
}
