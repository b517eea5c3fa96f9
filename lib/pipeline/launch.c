/* launch.c - step 1: the science jobs (ppid 15) of an observation range
 * and one reference job (ppid 12) per tile and filter that has no
 * reference image yet (docs/operations.md).
 *
 * One query for the range; per tile and filter: the best reference image,
 * or the prior images a reference is built from (same filter, earlier than
 * every science image of the tile in the range, overlapping the tile,
 * nearest its centre first, ref_min_inputs .. ref_max_inputs) - too few,
 * and the tile's science jobs end at once with 33.  Every job is started
 * and its configuration written in one transaction.
 *
 * A job already started for this processing date is kept as it is (a
 * re-run of the step starts nothing twice), unless it ended >= 32 and
 * retry_failed is set.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rapid/filters.h"
#include "steps_internal.h"

typedef enum plan { KEEP, START, REWRITE } plan;

typedef struct image {
    const rapid_l2file *l2;
    plan what;
    int64_t jid;
} image;

static int by_tile(const void *a, const void *b)
{
    const rapid_l2file *x = ((const image *)a)->l2, *y = ((const image *)b)->l2;

    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    if (x->fid != y->fid)
        return x->fid - y->fid;
    return (x->mjdobs > y->mjdobs) - (x->mjdobs < y->mjdobs);
}

/* Keep a job started for this date, unless it is to be tried again: it
 * was interrupted (70), or it failed and failures are retried. */
int steps_keep_job(const rapid_steps *s, const rapid_job *j)
{
    return j->procdate == s->procdate &&
           (j->status == 0 ||
            !(j->exitcode == RAPID_EXIT_INTERRUPTED ||
              (s->retry_failed && j->exitcode >= 32)));
}

static void job_section(steps_text *t, const rapid_steps *s, int64_t jid,
                        int ppid)
{
    char dir[STEPS_PATH];

    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, jid);
    steps_printf(t, "[job]\njid = %lld\nppid = %d\nprocdate = %d\nout = %s\n"
                 "threads = %d\n", (long long)jid, ppid, s->procdate, dir,
                 s->set.threads);
}

static const char *psf_of(rapid_steps *s, int fid, int sca,
                          rapid_psffile *psf, rapid_err *err)
{
    int found = 0;

    if (rapid_db_best_psffile(s->db, fid, sca, psf, &found, err) != 0 || !found)
        return "";
    return psf->filename;
}

static int write_config(const rapid_steps *s, int64_t jid, steps_text *t,
                        rapid_err *err)
{
    char path[STEPS_PATH], dir[STEPS_PATH];
    char *slash;

    if (t->nomem)
        return rapid_fail(err, RAPID_E_NOMEM, "job %lld: configuration:"
                          " out of memory", (long long)jid);
    if (rapid_job_config_path(path, sizeof path, s->work, s->procdate, jid))
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", s->work);
    snprintf(dir, sizeof dir, "%s", path);
    if ((slash = strrchr(dir, '/')) != NULL)
        *slash = '\0';
    if (steps_mkdirs(dir, err) != 0)
        return RAPID_E_IO;
    /* made durable all at once before the commit (rapid_steps_launch) */
    return steps_write_file_unsynced(path, t->s, err);
}

/* The reference job of a tile: the prior images, built into one image. */
static int refjob_config(rapid_steps *s, int64_t jid, const rapid_l2file *l2,
                         const rapid_l2file *in, int nin, rapid_err *err)
{
    const rapid_filter *f = rapid_filter_by_fid(l2->fid);
    rapid_psffile psf;
    steps_text t = {0};
    int i, rc;

    job_section(&t, s, jid, RAPID_PPID_REFERENCE);
    steps_printf(&t, "\n[reference]\nsource = build\nfield = %lld\n"
                 "filter = %s\nfid = %d\nsize = %d\nninputs = %d\n",
                 (long long)l2->field, f ? f->name : "", l2->fid,
                 s->set.ref_size, nin);
    for (i = 0; i < nin; i++)
        steps_printf(&t, "input.%d.rid = %lld\ninput.%d.image = %s\n"
                     "input.%d.psf = %s\n", i + 1, (long long)in[i].rid,
                     i + 1, in[i].filename, i + 1,
                     psf_of(s, in[i].fid, in[i].sca, &psf, err));
    steps_config_settings(&t, &s->set);
    rc = write_config(s, jid, &t, err);
    steps_text_free(&t);
    return rc;
}

/* A science job; ref (existing) or refjid (made by a reference job). */
static int science_config(rapid_steps *s, int64_t jid, const rapid_l2file *l2,
                          const rapid_refimage *ref, int64_t refjid,
                          rapid_err *err)
{
    const rapid_filter *f = rapid_filter_by_fid(l2->fid);
    char refdir[STEPS_PATH];
    rapid_psffile psf;
    steps_text t = {0};
    int rc;

    job_section(&t, s, jid, RAPID_PPID_SCIENCE);
    steps_printf(&t, "\n[science]\nrid = %lld\nexpid = %lld\nsca = %d\n"
                 "fid = %d\nfilter = %s\nfield = %lld\nimage = %s\npsf = %s\n",
                 (long long)l2->rid, (long long)l2->expid, l2->sca, l2->fid,
                 f ? f->name : "", (long long)l2->field, l2->filename,
                 psf_of(s, l2->fid, l2->sca, &psf, err));
    if (ref) {
        steps_printf(&t, "\n[reference]\nsource = existing\nrfid = %lld\n"
                     "image = %s\n", (long long)ref->rfid, ref->filename);
    } else {
        rapid_job_dir(refdir, sizeof refdir, s->work, s->procdate, refjid);
        steps_printf(&t, "\n[reference]\nsource = job\nrefjid = %lld\n"
                     "dir = %s\n", (long long)refjid, refdir);
    }
    steps_config_settings(&t, &s->set);
    rc = write_config(s, jid, &t, err);
    steps_text_free(&t);
    return rc;
}

/* The reference job of (field, fid) for this date: kept when it was
 * started today (unless it failed and is retried), else started. */
static int reference_job(rapid_steps *s, const rapid_l2file *l2,
                         rapid_step_report *r, int64_t *refjid,
                         rapid_err *err)
{
    char host[64] = "";
    rapid_l2file *in = NULL;
    rapid_job j;
    rapid_prior_query q;
    int found = 0, n = 0, rc;

    q.field = l2->field, q.fid = l2->fid;
    q.mjd_min = -INFINITY, q.mjd_max = l2->mjdobs;
    q.limit = s->set.ref_max_inputs;
    *refjid = 0;
    if ((rc = rapid_db_find_job(s->db, RAPID_PPID_REFERENCE, 0, l2->field,
                                l2->fid, &j, &found, err)) != 0)
        return rc;
    if (found && steps_keep_job(s, &j)) {
        *refjid = j.jid;
        return 0;
    }
    if ((rc = rapid_db_prior_l2files(s->db, &q, &in, &n, err)) != 0)
        return rc;
    if (n < s->set.ref_min_inputs)
        goto cleanup; /* *refjid 0: too few */
    gethostname(host, sizeof host - 1);
    if ((rc = rapid_db_start_refjob(s->db, l2->field, l2->fid, s->procdate,
                                    host, refjid, err)) != 0 ||
        (rc = steps_clear_job(s, *refjid, err)) != 0 ||
        (rc = refjob_config(s, *refjid, l2, in, n, err)) != 0)
        goto cleanup;
    r->started++, r->refjobs++;
cleanup:
    free(in);
    return rc;
}

/* The jobs of one tile and filter: v[0..n-1], earliest first. */
static int launch_tile(rapid_steps *s, image *v, int n, rapid_step_report *r,
                       rapid_err *err)
{
    char host[64] = "";
    rapid_refimage ref;
    int64_t refjid = 0;
    int i, found = 0, todo = 0, rc;
    double now;

    for (i = 0; i < n; i++)
        todo += v[i].what != KEEP;
    if (!todo)
        return 0;
    gethostname(host, sizeof host - 1);
    if ((rc = rapid_db_best_refimage(s->db, v[0].l2->field, v[0].l2->fid,
                                     &ref, &found, err)) != 0)
        return rc;
    /* the earliest image of the range bounds the reference's inputs */
    if (!found && (rc = reference_job(s, v[0].l2, r, &refjid, err)) != 0)
        return rc;
    for (i = 0; i < n; i++) {
        if (v[i].what == KEEP)
            continue;
        if (v[i].what == START &&
            ((rc = rapid_db_start_job(s->db, RAPID_PPID_SCIENCE, v[i].l2->rid,
                                     s->procdate, host, &v[i].jid, err)) != 0 ||
             (rc = steps_clear_job(s, v[i].jid, err)) != 0))
            return rc;
        if (!found && !refjid) {
            now = rapid_time_now();
            if ((rc = rapid_db_end_job(s->db, v[i].jid,
                                       RAPID_EXIT_NO_REFERENCE, now, now,
                                       err)) != 0)
                return rc;
            r->noref++;
        } else if ((rc = science_config(s, v[i].jid, v[i].l2,
                                        found ? &ref : NULL, refjid, err))) {
            return rc;
        }
        r->started += v[i].what == START;
    }
    return 0;
}

/* What to do with each image: keep its job, start it, or write the
 * configuration of a kept job whose file is gone. */
static int plan_images(rapid_steps *s, image *v, int n, rapid_step_report *r,
                       rapid_err *err)
{
    char path[STEPS_PATH];
    rapid_job j;
    int i, found, rc;

    for (i = 0; i < n; i++) {
        if ((rc = rapid_db_find_job(s->db, RAPID_PPID_SCIENCE, v[i].l2->rid,
                                    0, 0, &j, &found, err)) != 0)
            return rc;
        v[i].what = START;
        if (found && steps_keep_job(s, &j)) {
            v[i].what = KEEP, v[i].jid = j.jid;
            r->kept++;
            rapid_job_config_path(path, sizeof path, s->work, s->procdate,
                                  j.jid);
            if (j.status == 0 && access(path, F_OK) != 0)
                v[i].what = REWRITE;
        }
    }
    return 0;
}

int rapid_steps_launch(rapid_steps *s, rapid_step_report *r, rapid_err *err)
{
    rapid_l2file *l2 = NULL;
    image *v = NULL;
    int n = 0, i, j, rc;

    memset(r, 0, sizeof *r);
    if ((rc = rapid_db_l2files_by_time(s->db, rapid_time_to_mjd(s->start),
                                       rapid_time_to_mjd(s->end), &l2, &n,
                                       err)) != 0)
        return rc;
    if (n && !(v = calloc((size_t)n, sizeof *v))) {
        free(l2);
        return rapid_fail(err, RAPID_E_NOMEM, "launch: out of memory");
    }
    for (i = 0; i < n; i++)
        v[i].l2 = &l2[i];
    if (n)
        qsort(v, (size_t)n, sizeof *v, by_tile);
    if ((rc = rapid_db_begin(s->db, err)) != 0)
        goto cleanup;
    if ((rc = plan_images(s, v, n, r, err)) != 0)
        goto rollback;
    for (i = 0; i < n; i = j) {
        for (j = i + 1; j < n && v[j].l2->field == v[i].l2->field &&
                        v[j].l2->fid == v[i].l2->fid;
             j++)
            ;
        if ((rc = launch_tile(s, v + i, j - i, r, err)) != 0)
            goto rollback;
    }
    if ((r->started || r->kept) && (rc = steps_sync_work(s, err)) != 0)
        goto rollback;
    rc = rapid_db_commit(s->db, err);
    goto cleanup;
rollback:
    rapid_db_rollback(s->db);
cleanup:
    if (rc)
        rapid_err_prefix(err, "launch of %d", s->procdate);
    free(v);
    free(l2);
    return rc;
}
