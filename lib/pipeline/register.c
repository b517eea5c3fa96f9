/* register.c - steps 2 and 4: the products of the jobs of a processing
 * date into the database, each job exactly once (docs/operations.md).
 *
 * A job is registered in one transaction that adds its products and ends
 * it; whether it is registered already is read from its row inside that
 * transaction.  Killed at any point, registration leaves each job either
 * whole or untouched, and a re-run does the untouched ones.
 *
 * What the job's directory shows decides (the pipeline contract):
 *   log ends "terminating_exitcode = N", N 0-31, good manifest: products;
 *   N >= 32: the job ends with N, nothing registered;
 *   no such line and no job running: ends with 80 (lost);
 *   a Slurm job (an id on its row): left alone while Slurm has it; ended
 *   by Slurm (CANCELLED, TIMEOUT, ...) without the line, or with 70 from
 *   the SIGTERM Slurm sent: 82; no longer known and no line: 80;
 *   N 0-31 and the manifest missing, corrupt, or a product missing or of
 *   another size: ends with 81.
 * Reference jobs are registered before science jobs, so that a science
 * job whose reference came from a reference job finds its rfid.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "steps_internal.h"

typedef struct added {
    int refimages, diffimages, files;
} added;

/* What the jobs of one registration share, read once: the software
 * version (every job of a night has the same, as a rule) and the
 * reference images of the date's reference jobs.  Only rows that are
 * committed are kept, so that a job's rollback cannot leave one behind. */
#define MAX_REFJOBS 64

typedef struct reg_cache {
    char gitcommit[64];
    int64_t svid;       /* of gitcommit, committed */
    int64_t pending;    /* svid of this job's transaction, before commit */
    int64_t refjid[MAX_REFJOBS], rfid[MAX_REFJOBS];
    int nref;
} reg_cache;

static int sw_version(rapid_steps *s, reg_cache *c, const steps_manifest *m,
                      int64_t *svid, rapid_err *err)
{
    int rc;

    *svid = 0;
    if (!m->gitcommit[0])
        return 0;
    if (c->svid && strcmp(c->gitcommit, m->gitcommit) == 0) {
        *svid = c->svid;
        return 0;
    }
    if ((rc = rapid_db_swversion(s->db, m->gitcommit,
                                 m->version[0] ? m->version : NULL, svid,
                                 err)) == 0) {
        snprintf(c->gitcommit, sizeof c->gitcommit, "%s", m->gitcommit);
        c->svid = 0, c->pending = *svid;
    }
    return rc;
}

/* A reference image the job built, with its inputs, metadata, catalog. */
static int add_reference(rapid_steps *s, const rapid_job *j,
                         const steps_manifest *m, int ppid, int64_t svid,
                         int64_t *rfid, rapid_err *err)
{
    rapid_refimage ref;
    int rc;

    memset(&ref, 0, sizeof ref);
    ref.field = m->field ? m->field : j->field;
    ref.fid = m->fid ? m->fid : j->fid;
    ref.ppid = ppid, ref.svid = svid;
    snprintf(ref.filename, sizeof ref.filename, "%s", m->refimage.path);
    snprintf(ref.checksum, sizeof ref.checksum, "%s", m->refimage.md5);
    if ((rc = rapid_db_add_refimage_confirmed(
             s->db, &ref, m->has_refmeta ? &m->refmeta : NULL, m->inputs,
             m->ninputs, err)) != 0 ||
        (m->refcatalog.path[0] &&
         (rc = rapid_db_add_refimcatalog(s->db, ref.rfid, ppid, 1,
                                         m->refcatalog.path,
                                         m->refcatalog.md5, NULL, err)) != 0))
        return rc;
    *rfid = ref.rfid;
    return 0;
}

/* The rfid of the reference a reference job of this date made: the
 * reference image registered with the file its manifest names (a
 * committed row: kept for the jobs that follow). */
static int64_t rfid_of_refjob(rapid_steps *s, reg_cache *c, int64_t refjid)
{
    char dir[STEPS_PATH];
    steps_manifest *m;
    rapid_err ignore = RAPID_ERR_INIT;
    rapid_refimage ref;
    int found = 0, i;
    int64_t rfid = 0;

    for (i = 0; i < c->nref; i++)
        if (c->refjid[i] == refjid)
            return c->rfid[i];
    if (!(m = malloc(sizeof *m)))
        return 0;
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, refjid);
    if (steps_read_manifest(dir, m, &ignore) == 0 && m->refimage.path[0] &&
        rapid_db_refimage_by_file(s->db, m->refimage.path, &ref, &found,
                                  &ignore) == 0 && found)
        rfid = ref.rfid;
    free(m);
    if (rfid && c->nref < MAX_REFJOBS)
        c->refjid[c->nref] = refjid, c->rfid[c->nref++] = rfid;
    return rfid;
}

static int add_science(rapid_steps *s, reg_cache *c, const rapid_job *j,
                       const steps_manifest *m, int64_t svid, added *a,
                       rapid_err *err)
{
    rapid_diffimage d;
    int64_t rfid = 0;
    int k, i, rc;

    if (strcmp(m->ref_source, "built") == 0) {
        if ((rc = add_reference(s, j, m, RAPID_PPID_SCIENCE, svid, &rfid,
                                err)) != 0)
            return rc;
        a->refimages++;
    } else if (strcmp(m->ref_source, "job") == 0) {
        if (!(rfid = rfid_of_refjob(s, c, m->refjid)))
            steps_say(s, "job %lld (ppid %d): the reference image of"
                      " reference job %lld is not registered: its difference"
                      " images are recorded without rfid", (long long)j->jid,
                      j->ppid, (long long)m->refjid);
    } else {
        rfid = m->rfid;
    }
    for (k = 0; k < m->ndiffs; k++) {
        const steps_diff *x = &m->diffs[k];
        if (!x->ok)
            continue;
        memset(&d, 0, sizeof d);
        d.rid = j->rid, d.ppid = RAPID_PPID_SCIENCE, d.method = x->method_id;
        d.rfid = rfid, d.svid = svid;
        d.infobitssci = x->infobitssci, d.infobitsref = x->infobitsref;
        for (i = 0; i < 5; i++)
            d.ra[i] = x->ra[i], d.dec[i] = x->dec[i];
        snprintf(d.filename, sizeof d.filename, "%s", x->diff.path);
        snprintf(d.checksum, sizeof d.checksum, "%s", x->diff.md5);
        if ((rc = rapid_db_add_diffimage_confirmed(s->db, &d, &x->meta,
                                                   err)) != 0)
            return rc;
        a->diffimages++;
    }
    return 0;
}

static int add_stamped(rapid_steps *s, const steps_manifest *m, added *a,
                       rapid_err *err)
{
    int k, rc;

    for (k = 0; k < m->nstamped; k++) {
        const steps_stamped *x = &m->stamped[k];
        if (strcmp(x->kind, "diff") == 0)
            rc = rapid_db_set_file(s->db, RAPID_PRODUCT_DIFFIMAGE, x->id,
                                   x->f.path, x->f.md5, err);
        else if (strcmp(x->kind, "refimage") == 0)
            rc = rapid_db_set_file(s->db, RAPID_PRODUCT_REFIMAGE, x->id,
                                   x->f.path, x->f.md5, err);
        else if (strcmp(x->kind, "refcatalog") == 0)
            /* replaces the catalog the science job's registration added */
            rc = rapid_db_add_refimcatalog(s->db, x->id, RAPID_PPID_SCIENCE,
                                           1, x->f.path, x->f.md5, NULL, err);
        else
            continue; /* the other files: listed, not in the database */
        if (rc)
            return rc;
        a->files++;
    }
    return 0;
}

/* When the job ran: the manifest's times, else its log's. */
static void job_times(const rapid_steps *s, const rapid_job *j,
                      const steps_manifest *m, double *t0, double *t1)
{
    char path[STEPS_PATH + 16], dir[STEPS_PATH];
    struct stat st;
    double launched = NAN;

    if (m && isfinite(m->started) && isfinite(m->ended) &&
        m->ended >= m->started) {
        *t0 = m->started, *t1 = m->ended;
        return;
    }
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, j->jid);
    snprintf(path, sizeof path, "%s/%s", dir, RAPID_JOB_LOG);
    *t1 = stat(path, &st) == 0 ? (double)st.st_mtime : rapid_time_now();
    if (j->launched[0])
        rapid_time_parse(j->launched, &launched, NULL);
    *t0 = isfinite(launched) && launched <= *t1 ? launched : *t1;
}

/* One job, one transaction.  On PostgreSQL it costs two round trips to
 * the server: the lock of the job's row (its BEGIN with it), then every
 * write and the COMMIT, none of which needs an answer before it (only a
 * reference image's insert waits, for its rfid). */
static int register_job(rapid_steps *s, reg_cache *c, const rapid_job *j,
                        steps_manifest *m, const steps_slurm_view *sv,
                        rapid_step_report *r, rapid_err *err)
{
    char dir[STEPS_PATH];
    rapid_err why = RAPID_ERR_INIT;
    rapid_job now;
    added a = {0, 0, 0};
    int64_t svid = 0;
    int code = -1, rc;
    double t0, t1;
    steps_outcome out;

    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, j->jid);
    out = steps_job_outcome(dir, m, &code, &why);
    if (j->slurm[0] && (out == STEPS_UNFINISHED ||
                        (out == STEPS_ENDED_FAILED &&
                         code == RAPID_EXIT_INTERRUPTED))) {
        /* Slurm says whether it still has the job, or how it ended */
        if (steps_slurm_verdict(sv, j, out, &code, &why)) {
            r->running++;
            return 0;
        }
        if (out == STEPS_UNFINISHED)
            out = STEPS_ENDED_FAILED;
    } else if (out == STEPS_UNFINISHED) {
        if (steps_jobs_running(s)) {
            r->running++;
            return 0;
        }
        code = RAPID_EXIT_LOST;
        rapid_fail(&why, RAPID_E_NOENT, "%s: no terminating_exitcode line"
                   " in %s (job killed or lost)", dir, RAPID_JOB_LOG);
    } else if (out == STEPS_BAD_MANIFEST) {
        code = RAPID_EXIT_BADMANIFEST;
    }
    job_times(s, j, out == STEPS_ENDED_OK ? m : NULL, &t0, &t1);
    /* a commit lost to a crash of the server leaves the job unended:
     * registered again, whole, by the next run */
    if ((rc = rapid_db_begin_async(s->db, err)) != 0)
        return rc;
    /* locked: a registration running at the same time waits here, then
     * sees this one's end */
    if ((rc = rapid_db_lock_job(s->db, j->jid, &now, err)) != 0)
        goto rollback;
    if (now.status != 0 || now.procdate != s->procdate)
        goto rollback; /* registered meanwhile: nothing to do */
    if (out == STEPS_ENDED_OK) {
        if ((rc = sw_version(s, c, m, &svid, err)) != 0)
            goto rollback;
        if (j->ppid == RAPID_PPID_REFERENCE) {
            int64_t rfid = 0;
            rc = add_reference(s, j, m, RAPID_PPID_REFERENCE, svid, &rfid, err);
            a.refimages++;
        } else if (j->ppid == RAPID_PPID_SCIENCE) {
            rc = add_science(s, c, j, m, svid, &a, err);
        } else {
            rc = add_stamped(s, m, &a, err);
        }
        if (rc)
            goto rollback;
    }
    if ((rc = rapid_db_end_locked_job(s->db, &now, code, t0, t1, err)) != 0)
        goto rollback;
    if ((rc = rapid_db_commit(s->db, err)) != 0) {
        c->pending = 0;
        return rc;
    }
    if (c->pending)
        c->svid = c->pending, c->pending = 0;
    r->refimages += a.refimages, r->diffimages += a.diffimages;
    r->files += a.files;
    if (out == STEPS_ENDED_OK) {
        r->registered++;
    } else if (code == RAPID_EXIT_LOST) {
        r->lost++;
        steps_say(s, "job %lld (ppid %d): lost (80): %s", (long long)j->jid,
                  j->ppid, why.msg);
    } else if (code == RAPID_EXIT_KILLED) {
        r->killed++;
        steps_say(s, "job %lld (ppid %d): killed (82): %s", (long long)j->jid,
                  j->ppid, why.msg);
    } else if (code == RAPID_EXIT_BADMANIFEST) {
        r->badmanifest++;
        steps_say(s, "job %lld (ppid %d): bad manifest (81): %s",
                  (long long)j->jid, j->ppid, why.msg);
    } else {
        r->ended_failed++;
        steps_say(s, "job %lld (ppid %d): ended %d: see %s/%s",
                  (long long)j->jid, j->ppid, code, dir, RAPID_JOB_LOG);
    }
    return 0;
rollback:
    c->pending = 0;
    rapid_db_rollback(s->db);
    return rc;
}

static int by_ppid(const void *a, const void *b)
{
    const rapid_job *x = a, *y = b;

    if (x->ppid != y->ppid)
        return x->ppid - y->ppid;
    return (x->jid > y->jid) - (x->jid < y->jid);
}

int rapid_steps_register(rapid_steps *s, int postproc, rapid_step_report *r,
                         rapid_err *err)
{
    rapid_job *jobs = NULL;
    steps_manifest *m = NULL;
    rapid_err last = RAPID_ERR_INIT, one;
    steps_slurm_view sv;
    reg_cache *cache = NULL;
    const char *step = postproc ? "post-processing registration"
                                : "registration";
    int n = 0, i, rc, lastrc = 0, total = 0, done = 0;

    memset(r, 0, sizeof *r);
    if ((rc = rapid_db_unclosed_jobs(s->db, s->procdate, 0, &jobs, &n, err)))
        return rc;
    if (!(m = malloc(sizeof *m)) || !(cache = calloc(1, sizeof *cache))) {
        free(m);
        free(jobs);
        return rapid_fail(err, RAPID_E_NOMEM, "registration: out of memory");
    }
    if (n)
        qsort(jobs, (size_t)n, sizeof *jobs, by_ppid);
    for (i = 0; i < n; i++)
        total += (jobs[i].ppid == RAPID_PPID_POSTPROC) == (postproc != 0);
    /* before any directory is read: a job Slurm ended has its log */
    if ((rc = steps_slurm_view_load(&sv, s, jobs, n, postproc, err)) != 0) {
        free(cache);
        free(m);
        free(jobs);
        return rc;
    }
    if (sv.failed)
        steps_say(s, "registration: Slurm cannot say which jobs it still"
                  " has, those without a last log line are left alone: %s",
                  sv.why.msg);
    if (s->progress && total)
        s->progress(step, 0, total, s->progress_arg);
    for (i = 0; i < n; i++) {
        if ((jobs[i].ppid == RAPID_PPID_POSTPROC) != (postproc != 0))
            continue;
        memset(&one, 0, sizeof one);
        if ((rc = register_job(s, cache, &jobs[i], m, &sv, r, &one)) != 0) {
            r->dberrors++;
            steps_say(s, "job %lld (ppid %d): not registered: %s",
                      (long long)jobs[i].jid, jobs[i].ppid, one.msg);
            last = one, lastrc = rc;
        }
        if (s->progress)
            s->progress(step, ++done, total, s->progress_arg);
    }
    steps_slurm_view_free(&sv);
    free(cache);
    free(m);
    free(jobs);
    if (lastrc) {
        *err = last;
        rapid_err_prefix(err, "registration of %d: %d jobs not registered,"
                         " the last", s->procdate, r->dberrors);
    }
    return lastrc;
}
