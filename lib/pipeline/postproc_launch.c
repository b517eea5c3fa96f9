/* postproc_launch.c - step 3: a post-processing job (ppid 17) for each
 * science job of the date that ended 0-31 with difference images, now
 * that registration gave them database ids; its configuration carries
 * those ids (docs/operations.md).  All started in one transaction; a job
 * started already today is kept (unless it failed and is retried). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "steps_internal.h"

static const char *method_name(int method)
{
    return method == RAPID_DIFF_ZOGY ? "zogy"
           : method == RAPID_DIFF_KERNELFIT ? "sfft" : "naive";
}

/* The configuration of post-processing job ppjid of science job sci. */
static int postproc_config(rapid_steps *s, int64_t ppjid, const rapid_job *sci,
                           const steps_manifest *m, rapid_err *err)
{
    char path[STEPS_PATH], dir[STEPS_PATH], out[STEPS_PATH], *slash;
    rapid_diffimage d[3];
    rapid_refimage ref;
    steps_text t = {0};
    int64_t rfid = 0;
    int n = 0, i, k, rc;

    if ((rc = rapid_db_latest_diffimages(s->db, sci->rid, RAPID_PPID_SCIENCE,
                                         d, &n, err)) != 0)
        return rc;
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, sci->jid);
    rapid_job_dir(out, sizeof out, s->work, s->procdate, ppjid);
    steps_printf(&t, "[job]\njid = %lld\nppid = %d\nprocdate = %d\nout = %s\n"
                 "threads = %d\n\n[postproc]\nscijid = %lld\ndir = %s\n"
                 "rid = %lld\nexpid = %lld\nfid = %d\nfield = %lld\n",
                 (long long)ppjid, RAPID_PPID_POSTPROC, s->procdate, out,
                 s->set.threads, (long long)sci->jid, dir,
                 (long long)sci->rid, (long long)sci->expid, sci->fid,
                 (long long)sci->field);
    /* only the methods this job made: an older version of another stays */
    for (i = 0; i < n; i++)
        for (k = 0; k < m->ndiffs; k++)
            if (m->diffs[k].ok && m->diffs[k].method_id == d[i].method) {
                steps_printf(&t, "pid.%s = %lld\nversion.%s = %d\n",
                             method_name(d[i].method), (long long)d[i].pid,
                             method_name(d[i].method), d[i].version);
                if (d[i].rfid)
                    rfid = d[i].rfid;
            }
    if (rfid) {
        if ((rc = rapid_db_get_refimage(s->db, rfid, &ref, err)) != 0)
            goto cleanup;
        steps_printf(&t, "rfid = %lld\nrefversion = %d\n", (long long)rfid,
                     ref.version);
    }
    if (t.nomem) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory");
        goto cleanup;
    }
    rapid_job_config_path(path, sizeof path, s->work, s->procdate, ppjid);
    snprintf(dir, sizeof dir, "%s", path);
    if ((slash = strrchr(dir, '/')) != NULL)
        *slash = '\0';
    /* made durable all at once before the commit (rapid_steps_postproc) */
    if ((rc = steps_mkdirs(dir, err)) == 0)
        rc = steps_write_file_unsynced(path, t.s, err);
cleanup:
    steps_text_free(&t);
    return rc;
}

/* Post-process science job j?  Its manifest must show a difference image. */
static int wants_postproc(rapid_steps *s, const rapid_job *j,
                          steps_manifest *m)
{
    char dir[STEPS_PATH];
    rapid_err ignore = RAPID_ERR_INIT;
    int k;

    if (j->status != 1 || j->exitcode < 0 || j->exitcode > 31)
        return 0;
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, j->jid);
    if (steps_read_manifest(dir, m, &ignore) != 0)
        return 0;
    for (k = 0; k < m->ndiffs; k++)
        if (m->diffs[k].ok)
            return 1;
    return 0;
}

int rapid_steps_postproc(rapid_steps *s, rapid_step_report *r, rapid_err *err)
{
    char host[64] = "", path[STEPS_PATH];
    rapid_job *sci = NULL, pp;
    steps_manifest *m = NULL;
    int64_t ppjid;
    int n = 0, i, found, rc;

    memset(r, 0, sizeof *r);
    gethostname(host, sizeof host - 1);
    if ((rc = rapid_db_jobs(s->db, s->procdate, RAPID_PPID_SCIENCE, &sci, &n,
                            err)) != 0)
        return rc;
    if (!(m = malloc(sizeof *m))) {
        free(sci);
        return rapid_fail(err, RAPID_E_NOMEM, "post-processing: out of memory");
    }
    if ((rc = rapid_db_begin(s->db, err)) != 0)
        goto cleanup;
    for (i = 0; i < n; i++) {
        if (!wants_postproc(s, &sci[i], m))
            continue;
        if ((rc = rapid_db_find_job(s->db, RAPID_PPID_POSTPROC, sci[i].rid, 0,
                                    0, &pp, &found, err)) != 0)
            goto rollback;
        if (found && steps_keep_job(s, &pp)) {
            r->kept++;
            rapid_job_config_path(path, sizeof path, s->work, s->procdate,
                                  pp.jid);
            if (pp.status == 0 && access(path, F_OK) != 0 &&
                (rc = postproc_config(s, pp.jid, &sci[i], m, err)) != 0)
                goto rollback;
            continue;
        }
        if ((rc = rapid_db_start_job(s->db, RAPID_PPID_POSTPROC, sci[i].rid,
                                     s->procdate, host, &ppjid, err)) != 0 ||
            (rc = steps_clear_job(s, ppjid, err)) != 0 ||
            (rc = postproc_config(s, ppjid, &sci[i], m, err)) != 0)
            goto rollback;
        r->started++;
    }
    if ((r->started || r->kept) && (rc = steps_sync_work(s, err)) != 0)
        goto rollback;
    rc = rapid_db_commit(s->db, err);
    goto cleanup;
rollback:
    rapid_db_rollback(s->db);
cleanup:
    if (rc)
        rapid_err_prefix(err, "post-processing launch of %d", s->procdate);
    free(m);
    free(sci);
    return rc;
}
