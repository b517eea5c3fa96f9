/* job_reference.c - step 1 of the science job, the reference image: the
 * one registered, the one a reference job made, or one built here as
 * `rapid coadd` builds it (job_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/job_internal.h"
#include "rapid/coadd.h"
#include "rapid/filters.h"

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

/* The reference built here from its inputs (source = build): the coadd as
 * `rapid coadd` makes it, its five files among this job's products. */
int job_reference_build(job *s)
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
