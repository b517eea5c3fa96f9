/* job.c - the science job (ppid 15) and the reference job (ppid 12):
 * the numbered steps of the science job, top to bottom (docs/pipeline.md).
 * Each step's module does the work; this file says what happens in which
 * order, what each failure's exit code is, and what the manifest records. */
#include <string.h>
#include <sys/stat.h>

#include "pipeline/job_internal.h"

/* ---------------------------------------------------- 1. reference image */

/* Registered, made by a reference job, or built here. */
static int step_reference(job *s)
{
    int code;

    jobrun_stage_begin(&s->run);
    switch (s->c.ref_source) {
    case RAPID_REFSRC_EXISTING:
        code = job_reference_existing(s);
        break;
    case RAPID_REFSRC_JOB:
        code = job_reference_from_job(s);
        break;
    default:
        code = job_reference_build(s);
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
    struct stat sb;
    int m, nok, rc;

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
    if (s->refend.pending) { /* built in step 1: from memory */
        o.ref_mem = &s->refend.coadd.image;
        o.ref_cov_mem = &s->refend.coadd.coverage;
        o.ref_unc_mem = &s->refend.coadd.uncertainty;
        o.ref_psf_mem = &s->refend.coadd.psf;
        o.ref_mem_ext = "SCI";
    }
    memcpy(o.asked, s->c.methods, sizeof o.asked);
    o.nthreads = s->c.threads;
    o.order = s->c.sfft_order;
    o.half_width = s->c.kernel_half_width;
    o.wisdom = s->wisdom[0] ? s->wisdom : NULL;
    o.warn = job_warn;
    o.arg = s;
    o.stop = s->run.o ? s->run.o->stop : NULL;
    if (!(s->diff = rapid_diffrun_new(&o)))
        return job_fail(s, RAPID_EXIT_FAILED, "no memory");
    jobrun_stage_begin(&s->run);
    if (rapid_diffrun_read(s->diff, &err) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s", err.msg);
    jobrun_stage_end(&s->run, "read");
    if (jobrun_stopped(&s->run))
        return RAPID_EXIT_INTERRUPTED;
    if ((rc = rapid_diffrun_prepare(s->diff, &err)) == RAPID_E_NOOVERLAP) {
        jobrun_log(&s->run, "warning: the reference does not cover the science "
                   "image, nothing to subtract: %s", err.msg);
        return RAPID_EXIT_NOT_COVERED;
    }
    if (rc == RAPID_E_INTERRUPTED) {
        jobrun_log(&s->run, "%s", err.msg);
        return RAPID_EXIT_INTERRUPTED;
    }
    if (rc != 0)
        return job_fail(s, RAPID_EXIT_DIFF, "the pair could not be prepared: %s",
                        err.msg);
    jobrun_stage_end(&s->run, "prepare");
    if (jobrun_stopped(&s->run))
        return RAPID_EXIT_INTERRUPTED;
    /* a reference built in step 1: its files and catalog, made meanwhile
     * on threads of their own, are waited for (and its planes, which the
     * preparation took from memory, freed) before the methods take both
     * cores and their memory */
    if (s->refend.pending) {
        int code = job_reference_finish(s);
        jobrun_stage_end(&s->run, "reference catalog");
        if (code != 0)
            return code;
    }
    if (job_lanes_wanted(s)) {
        /* ZOGY and the kernel fit side by side, each followed by its
         * candidates, the images written as each ends */
        if ((rc = job_lanes(s)) != 0)
            return rc < 0 ? RAPID_EXIT_INTERRUPTED : rc;
        s->laned = 1;
        for (m = 0, nok = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
            nok += s->c.methods[m] && s->diff->run[m].ok;
        jobrun_stage_begin(&s->run);
        if (nok == 0)
            return job_fail(s, RAPID_EXIT_DIFF, "every difference method failed");
        return 0;
    }
    nok = rapid_diffrun_methods(s->diff);
    for (m = 0; m < RAPID_DIFFRUN_NMETHOD; m++)
        if (s->c.methods[m]) {
            job_stage_add(s, rapid_diffrun_method_name(m), s->diff->run[m].seconds,
                          s->diff->run[m].cpu_seconds);
            if (!s->diff->run[m].ok && jobrun_stopped(&s->run))
                jobrun_log(&s->run, "%s stopped: %s", rapid_diffrun_method_name(m),
                           s->diff->run[m].msg);
            else if (!s->diff->run[m].ok)
                jobrun_log(&s->run, "%s failed: %s", rapid_diffrun_method_name(m),
                           s->diff->run[m].msg);
        }
    if (jobrun_stopped(&s->run))
        return RAPID_EXIT_INTERRUPTED;
    jobrun_stage_begin(&s->run);
    if (nok == 0)
        return job_fail(s, RAPID_EXIT_DIFF, "every difference method failed");
    return 0;
}

/* ------------------------------- 7-9. candidates of each difference */

/* Detection on S_corr (ZOGY), the cross-convolved difference (kernel fit)
 * or the difference itself (naive), positive and negative; measurement,
 * PSF fits and vetting on the difference.  A method whose candidates
 * cannot be made fails as a whole.  With two threads or more, two
 * methods at a time (much of a method's candidates is one core's work). */
static int step_candidates(job *s)
{
    int code;

    if (s->laned) /* made with the methods */
        return 0;
    /* the difference images are written meanwhile, on a thread of their
     * own */
    if ((code = job_write_images_begin(s)) != 0)
        return code;
    if (job_candidates_all(s) != 0)
        return RAPID_EXIT_INTERRUPTED;
    jobrun_stage_end(&s->run, "candidates");
    return 0;
}

/* ------------------------------------------------------ 10. products */

static int step_products(job *s)
{
    static const int order[RAPID_DIFFRUN_NMETHOD] = {
        RAPID_DIFFRUN_ZOGY, RAPID_DIFFRUN_SFFT, RAPID_DIFFRUN_NAIVE};
    int k, m, nasked = 0, nok = 0, code;

    if ((code = job_write_images_end(s)) != 0)
        return code;
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
    if ((code = step_reference(&s)) != 0)
        goto end;
    if (jobrun_stopped(&s.run)) {
        code = RAPID_EXIT_INTERRUPTED;
        goto end;
    }
    if (s.c.ppid == RAPID_PPID_REFERENCE) { /* a reference job ends here */
        code = job_reference_finish(&s);
        goto end;
    }
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
