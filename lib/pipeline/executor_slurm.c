/* executor_slurm.c - the Slurm executor: the jobs of a processing date as
 * tasks of Slurm job arrays (docs/operations.md, "A night on a Slurm
 * cluster").
 *
 * The jobs submitted are those started in the database and not ended whose
 * directory holds no complete log (or one that says 70, interrupted) and
 * that Slurm was not given yet: a job whose row has a Slurm id is never
 * submitted again - while Slurm has it, it is waited for; once Slurm
 * ended it, registration decides (rapid/steps.h).  Reference jobs first;
 * a science job waits for its reference job (--dependency=afterany: the
 * science job itself sees a failed reference job and ends 71).
 *
 * Each kind of job goes in arrays of at most array_max tasks: a list file
 * WORK/jobs/<procdate>/slurm/<kind>-<time>-<k>.list holds one jid per
 * line, and task i runs the job of line i + 1 with `PROGRAM job CONFIG`
 * (postproc-job for ppid 17), stdout and stderr appended to its job.log,
 * as the local executor does.  Slurm's own messages (a time limit) go to
 * WORK/jobs/<procdate>/slurm/<arrayid>_<task>.out.  The jobs' Slurm ids
 * are stored on their rows, in one transaction per array, right after
 * sbatch answered; before sbatch runs, the rows get the array's mark
 * "@TOKEN_i" (its comment is "rapid:TOKEN"), committed, so that a re-run
 * after a kill in between finds the array in Slurm instead of submitting
 * its jobs again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "steps_internal.h"

typedef struct sjob {
    rapid_job job;
    int64_t refjid;         /* science: its reference job; 0: none */
    int submit;             /* to be submitted now */
    int found;              /* its array found by its submission's mark */
    steps_slurm_job sl;     /* its Slurm id (stored or new) and state */
} sjob;

typedef struct plan {
    sjob *v;
    int n;
    char prog[PATH_MAX];    /* the program a task runs */
    char dir[STEPS_PATH + 32]; /* WORK/jobs/<procdate>/slurm */
    char script[STEPS_PATH + 48];
    long long stamp;        /* names this submission's list files */
    int nlist;
} plan;

static int by_ref(const void *a, const void *b)
{
    const sjob *x = a, *y = b;

    if (x->job.ppid != y->job.ppid)
        return x->job.ppid - y->job.ppid;
    if (x->refjid != y->refjid)
        return (x->refjid > y->refjid) - (x->refjid < y->refjid);
    return (x->job.jid > y->job.jid) - (x->job.jid < y->job.jid);
}

/* Store the Slurm ids found for the jobs being submitted by a run that
 * was killed before it stored them (one transaction). */
static int store_found(rapid_steps *s, plan *p, rapid_err *err)
{
    int i, rc;

    if ((rc = rapid_db_begin(s->db, err)) != 0)
        return rc;
    for (i = 0; i < p->n && rc == 0; i++)
        if (p->v[i].found)
            rc = rapid_db_set_job_executor(s->db, p->v[i].job.jid,
                                           p->v[i].sl.id, NULL, err);
    if (rc == 0)
        return rapid_db_commit(s->db, err);
    rapid_db_rollback(s->db);
    return rc;
}

/* The unended jobs of the date of this kind that have no complete log:
 * those with a Slurm id are asked about, the others are to submit.  A job
 * whose row has a submission's mark (the run that submitted it was killed
 * before storing its id) gets the id of the array Slurm accepted for it,
 * or is submitted when Slurm has no such array. */
static int select_jobs(rapid_steps *s, int postproc, plan *p, rapid_err *err)
{
    rapid_job *jobs = NULL;
    rapid_err ignore = RAPID_ERR_INIT;
    steps_slurm_job *ask = NULL;
    char dir[STEPS_PATH], config[STEPS_PATH];
    int n = 0, i, k, nask = 0, nfound = 0, code, rc;

    if ((rc = rapid_db_unclosed_jobs(s->db, s->procdate, 0, &jobs, &n, err)))
        return rc;
    if (n && (!(p->v = calloc((size_t)n, sizeof *p->v)) ||
              !(ask = calloc((size_t)n, sizeof *ask)))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of memory");
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        sjob *x = &p->v[p->n];
        if ((jobs[i].ppid == RAPID_PPID_POSTPROC) != (postproc != 0))
            continue;
        rapid_job_dir(dir, sizeof dir, s->work, s->procdate, jobs[i].jid);
        if (rapid_steps_log_exitcode(dir, &code, &ignore) == 0 &&
            code != RAPID_EXIT_INTERRUPTED)
            continue; /* ended: registration's */
        x->job = jobs[i];
        x->sl.jid = jobs[i].jid;
        if (x->job.ppid == RAPID_PPID_SCIENCE) {
            rapid_job_config_path(config, sizeof config, s->work, s->procdate,
                                  x->job.jid);
            x->refjid = steps_config_refjid(config);
        }
        snprintf(x->sl.id, sizeof x->sl.id, "%s", jobs[i].slurm);
        ask[nask++] = x->sl;
        p->n++;
    }
    if ((rc = steps_slurm_resolve(ask, nask, s->procdate, err)) != 0) {
        rapid_err_prefix(err, "Slurm executor: the arrays of a submission"
                         " killed before it stored their ids");
        goto cleanup;
    }
    for (i = 0; i < p->n; i++) {
        p->v[i].found = p->v[i].sl.id[0] == STEPS_SLURM_MARK && ask[i].id[0];
        nfound += p->v[i].found;
        p->v[i].sl = ask[i];
        p->v[i].submit = !ask[i].id[0];
    }
    if (nfound && (rc = store_found(s, p, err)) != 0) {
        rapid_err_prefix(err, "Slurm executor: the ids of the jobs found in"
                         " Slurm");
        goto cleanup;
    }
    if (nfound)
        steps_say(s, "rapid executor: %d jobs found in Slurm by their"
                  " submission's mark (a run killed before it stored their"
                  " ids): not submitted again", nfound);
    for (i = k = 0; i < p->n; i++)
        if (!p->v[i].submit)
            ask[k++] = p->v[i].sl;
    nask = k;
    if ((rc = steps_slurm_query(ask, nask, err)) != 0) {
        rapid_err_prefix(err, "Slurm executor: the jobs given to Slurm"
                         " before");
        goto cleanup;
    }
    for (i = k = 0; i < p->n; i++)
        if (!p->v[i].submit) {
            p->v[i].sl = ask[k++];
            if (p->v[i].sl.state != STEPS_SLURM_ACTIVE)
                p->v[i].sl.id[0] = '\0'; /* ended: registration's */
        }
    /* those Slurm ended are not waited for */
    for (i = k = 0; i < p->n; i++)
        if (p->v[i].submit || p->v[i].sl.id[0])
            p->v[k++] = p->v[i];
    p->n = k;
    if (p->n)
        qsort(p->v, (size_t)p->n, sizeof *p->v, by_ref);
cleanup:
    free(ask);
    free(jobs);
    return rc;
}

static void sh_quote(steps_text *t, const char *v)
{
    steps_printf(t, "'");
    for (; *v; v++) {
        if (*v == '\'')
            steps_printf(t, "'\\''");
        else
            steps_printf(t, "%c", *v);
    }
    steps_printf(t, "'");
}

/* The task script: the job of line SLURM_ARRAY_TASK_ID + 1 of $1, run
 * as `PROGRAM $2 CONFIG`, its output appended to its log. */
static int write_script(const rapid_steps *s, plan *p, rapid_err *err)
{
    steps_text t = {0};
    char work[STEPS_PATH + 32];
    int rc;

    snprintf(work, sizeof work, "%s", s->work);
    steps_printf(&t, "#!/bin/sh\n# rapid's Slurm array task"
                 " (docs/operations.md): the job on line\n"
                 "# SLURM_ARRAY_TASK_ID + 1 of the list $1, run as"
                 " `rapid $2 CONFIG`.\nline=$((SLURM_ARRAY_TASK_ID + 1))\n"
                 "jid=$(sed -n \"${line}p\" \"$1\")\n"
                 "case $jid in ''|*[!0-9]*) echo \"rapid: no job on line"
                 " $line of $1\" >&2; exit 65 ;; esac\nwork=");
    sh_quote(&t, work);
    steps_printf(&t, "\ndir=$work/products/%d/jid$jid\n"
                 "mkdir -p \"$dir\" || exit 69\nexec ", s->procdate);
    sh_quote(&t, p->prog);
    steps_printf(&t, " \"$2\" \"$work/jobs/%d/jid$jid.ini\""
                 " >>\"$dir/%s\" 2>&1\n", s->procdate, RAPID_JOB_LOG);
    if (t.nomem)
        rc = rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of memory");
    else
        rc = steps_write_file(p->script, t.s, err);
    steps_text_free(&t);
    return rc;
}

/* sbatch's arguments from the [slurm] settings. */
static int add_arg(char **argv, int *argc, int max, char *v)
{
    if (*argc >= max - 1)
        return -1;
    argv[(*argc)++] = v;
    argv[*argc] = NULL;
    return 0;
}

/* "PREFIX_i" on the row of v[i], i = 0..n-1, in one transaction. */
static int store_ids(rapid_steps *s, sjob **v, int n, const char *prefix,
                     rapid_err *err)
{
    int i, rc;

    if ((rc = rapid_db_begin(s->db, err)) != 0)
        return rc;
    for (i = 0; i < n && rc == 0; i++) {
        char id[64];
        if ((size_t)snprintf(id, sizeof id, "%s_%d", prefix, i) >=
            sizeof v[i]->sl.id) {
            rc = rapid_fail(err, RAPID_E_ARG, "Slurm id %s: too long", id);
            break;
        }
        memcpy(v[i]->sl.id, id, strlen(id) + 1);
        rc = rapid_db_set_job_executor(s->db, v[i]->job.jid, v[i]->sl.id,
                                       NULL, err);
    }
    if (rc == 0)
        return rapid_db_commit(s->db, err);
    rapid_db_rollback(s->db);
    return rc;
}

/* Submit v[0..n-1] (one kind) as one array; dep: "afterany:..." or "". */
static int submit_array(rapid_steps *s, plan *p, sjob **v, int n,
                        const char *dep, rapid_step_report *r,
                        rapid_err *err)
{
    enum { MAXARGS = 96 };
    char list[STEPS_PATH + 96], out[STEPS_PATH + 64], array[32], name[48];
    char cpus[40], extra[sizeof s->set.slurm_extra], *argv[MAXARGS];
    char part[80], mem[48], tim[48], *depopt = NULL, *tok, *save = NULL;
    char token[32], comment[48], mark[40], ids[32];
    const char *verb = v[0]->job.ppid == RAPID_PPID_POSTPROC ? "postproc-job"
                                                             : "job";
    steps_text t = {0}, o = {0};
    int argc = 0, i, status, rc;
    long long aid;
    char *end;

    argv[0] = NULL;
    /* this array's token: its list file, its comment, the rows' mark */
    snprintf(token, sizeof token, "%lld-%d", p->stamp, p->nlist++);
    snprintf(list, sizeof list, "%s/%s-%s.list", p->dir,
             steps_slurm_kind(v[0]->job.ppid), token);
    snprintf(comment, sizeof comment, "--comment=rapid:%s", token);
    snprintf(mark, sizeof mark, "%c%s", STEPS_SLURM_MARK, token);
    for (i = 0; i < n; i++)
        steps_printf(&t, "%lld\n", (long long)v[i]->job.jid);
    if (t.nomem) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of memory");
        goto cleanup;
    }
    if ((rc = steps_write_file(list, t.s, err)) != 0)
        goto cleanup;
    snprintf(array, sizeof array, "--array=0-%d", n - 1);
    snprintf(out, sizeof out, "--output=%s/%%A_%%a.out", p->dir);
    snprintf(name, sizeof name, "--job-name=rapid-%d-%s", s->procdate,
             steps_slurm_kind(v[0]->job.ppid));
    snprintf(cpus, sizeof cpus, "--cpus-per-task=%d",
             s->set.slurm_cpus > 0 ? s->set.slurm_cpus
                                   : (s->set.threads > 0 ? s->set.threads : 1));
    snprintf(extra, sizeof extra, "%s", s->set.slurm_extra);
    add_arg(argv, &argc, MAXARGS, "sbatch");
    add_arg(argv, &argc, MAXARGS, "--parsable");
    add_arg(argv, &argc, MAXARGS, "--no-requeue");
    add_arg(argv, &argc, MAXARGS, array);
    add_arg(argv, &argc, MAXARGS, name);
    add_arg(argv, &argc, MAXARGS, comment);
    add_arg(argv, &argc, MAXARGS, out);
    add_arg(argv, &argc, MAXARGS, cpus);
    if (s->set.slurm_partition[0]) {
        snprintf(part, sizeof part, "--partition=%s", s->set.slurm_partition);
        add_arg(argv, &argc, MAXARGS, part);
    }
    if (s->set.slurm_mem[0]) {
        snprintf(mem, sizeof mem, "--mem=%s", s->set.slurm_mem);
        add_arg(argv, &argc, MAXARGS, mem);
    }
    if (s->set.slurm_time[0]) {
        snprintf(tim, sizeof tim, "--time=%s", s->set.slurm_time);
        add_arg(argv, &argc, MAXARGS, tim);
    }
    if (dep[0]) {
        size_t len = strlen(dep) + 16;
        if (!(depopt = malloc(len))) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of"
                            " memory");
            goto cleanup;
        }
        snprintf(depopt, len, "--dependency=%s", dep);
        add_arg(argv, &argc, MAXARGS, depopt);
    }
    for (tok = strtok_r(extra, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save))
        if (add_arg(argv, &argc, MAXARGS, tok) != 0) {
            rc = rapid_fail(err, RAPID_E_ARG, "[slurm] extra: too many"
                            " arguments");
            goto cleanup;
        }
    add_arg(argv, &argc, MAXARGS, p->script);
    add_arg(argv, &argc, MAXARGS, list);
    add_arg(argv, &argc, MAXARGS, (char *)verb);
    /* the mark first, committed: a run killed once sbatch answered leaves
     * the rows saying which array to look for (steps_slurm_resolve) */
    if ((rc = store_ids(s, v, n, mark, err)) != 0) {
        rapid_err_prefix(err, "the marks of %d %s jobs before sbatch", n,
                         steps_slurm_kind(v[0]->job.ppid));
        goto cleanup;
    }
    if ((rc = steps_run_capture(argv, &o, &status, err)) != 0)
        goto cleanup;
    /* --parsable: "arrayid" or "arrayid;cluster" on the last line */
    errno = 0;
    aid = strtoll(steps_last_line(&o), &end, 10);
    if (status != 0 || errno || aid <= 0 || (*end && *end != ';')) {
        rc = rapid_fail(err, RAPID_E_IO, "sbatch of %d %s jobs (%s) failed"
                        " (exit %d): %s", n, steps_slurm_kind(v[0]->job.ppid), list,
                        status, steps_last_line(&o));
        goto cleanup;
    }
    r->arrays++;
    /* the ids on the rows at once: a re-run asks Slurm about them */
    snprintf(ids, sizeof ids, "%lld", aid);
    if ((rc = store_ids(s, v, n, ids, err)) != 0) {
        rapid_err_prefix(err, "Slurm array %lld (comment rapid:%s) submitted,"
                         " its ids not stored (a re-run finds it by its"
                         " comment)", aid, token);
        goto cleanup;
    }
    for (i = 0; i < n; i++)
        v[i]->sl.state = STEPS_SLURM_ACTIVE;
    r->ran += n;
cleanup:
    if (rc)
        rapid_err_prefix(err, "Slurm executor");
    free(depopt);
    steps_text_free(&t);
    steps_text_free(&o);
    return rc;
}

/* The Slurm id of the reference job refjid, when Slurm has it: "". */
static const char *ref_id(const plan *p, int64_t refjid)
{
    int i;

    for (i = 0; i < p->n; i++)
        if (p->v[i].job.jid == refjid &&
            p->v[i].job.ppid == RAPID_PPID_REFERENCE)
            return p->v[i].sl.id;
    return "";
}

/* "afterany:A_i:B_j..." for the reference jobs of the science jobs
 * v[0..n-1] that Slurm has (sorted by reference job). */
static int dependency(const plan *p, sjob **v, int n, steps_text *dep)
{
    int64_t last = 0;
    const char *id;
    int i, k = 0;

    for (i = 0; i < n; i++) {
        if (!v[i]->refjid || v[i]->refjid == last)
            continue;
        last = v[i]->refjid;
        if (!*(id = ref_id(p, last)))
            continue;
        steps_printf(dep, "%s%s", k++ ? ":" : "afterany:", id);
    }
    return dep->nomem ? -1 : 0;
}

static int submit_all(rapid_steps *s, plan *p, rapid_step_report *r,
                      rapid_err *err)
{
    sjob **chunk = NULL;
    int i, j, n, max = s->set.slurm_array_max > 0 ? s->set.slurm_array_max
                                                  : 1000;
    int rc = 0;

    if (!(chunk = calloc((size_t)p->n, sizeof *chunk)))
        return rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of memory");
    /* sorted by ppid: reference jobs (12), science (15), postproc (17) */
    for (i = 0; i < p->n && rc == 0; i = j) {
        steps_text dep = {0};
        n = 0;
        for (j = i; j < p->n && p->v[j].job.ppid == p->v[i].job.ppid &&
                    n < max;
             j++)
            if (p->v[j].submit)
                chunk[n++] = &p->v[j];
        if (!n)
            continue;
        if (dependency(p, chunk, n, &dep) != 0)
            rc = rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of"
                            " memory");
        else
            rc = submit_array(s, p, chunk, n, dep.s ? dep.s : "", r, err);
        steps_text_free(&dep);
    }
    free(chunk);
    return rc;
}

/* Poll Slurm until every job of p that Slurm has ended. */
static int wait_all(rapid_steps *s, int postproc, plan *p, rapid_err *err)
{
    const char *step = postproc ? "post-processing" : "jobs";
    steps_slurm_job *ask = NULL;
    int i, k, done = 0, last = -1, fails = 0, rc = 0;

    if (!(ask = calloc((size_t)p->n, sizeof *ask)))
        return rapid_fail(err, RAPID_E_NOMEM, "Slurm executor: out of memory");
    for (;;) {
        rapid_err why = RAPID_ERR_INIT;
        for (i = k = 0; i < p->n; i++)
            if (p->v[i].sl.state == STEPS_SLURM_ACTIVE)
                ask[k++] = p->v[i].sl;
        done = p->n - k;
        if (done != last && s->progress)
            s->progress(step, done, p->n, s->progress_arg);
        last = done;
        if (!k)
            break;
        sleep((unsigned)(s->set.slurm_poll > 0 ? s->set.slurm_poll : 5));
        if (steps_slurm_query(ask, k, &why) != 0) {
            /* a controller restarting: try again for a while */
            if (fails++ == 0)
                steps_say(s, "rapid executor: cannot ask Slurm (trying"
                          " again): %s", why.msg);
            if (fails * s->set.slurm_poll > 600) {
                rc = rapid_fail(err, RAPID_E_IO, "Slurm executor: no answer"
                                " from Slurm for 10 minutes: %s", why.msg);
                break;
            }
            continue;
        }
        fails = 0;
        for (i = k = 0; i < p->n; i++)
            if (p->v[i].sl.state == STEPS_SLURM_ACTIVE)
                p->v[i].sl = ask[k++];
    }
    free(ask);
    return rc;
}

static int program(const rapid_steps *s, char *out, size_t outsz,
                   rapid_err *err)
{
    ssize_t n;

    if (s->job_cmd) {
        if (!realpath(s->job_cmd, out))
            return rapid_fail(err, RAPID_E_ARG, "%s: the job program: %s",
                              s->job_cmd, strerror(errno));
        return 0;
    }
    if ((n = readlink("/proc/self/exe", out, outsz - 1)) <= 0)
        return rapid_fail(err, RAPID_E_IO, "/proc/self/exe: cannot read: %s",
                          strerror(errno));
    out[n] = '\0';
    return 0;
}

int rapid_steps_slurm(rapid_steps *s, int postproc, int wait,
                      rapid_step_report *r, rapid_err *err)
{
    plan p;
    char resolved[PATH_MAX];
    int i, nsubmit = 0, rc;

    memset(&p, 0, sizeof p);
    if ((rc = select_jobs(s, postproc, &p, err)) != 0 || !p.n)
        goto cleanup;
    for (i = 0; i < p.n; i++)
        nsubmit += p.v[i].submit;
    r->queued += p.n - nsubmit;
    if (nsubmit) {
        if ((rc = program(s, resolved, sizeof resolved, err)) != 0)
            goto cleanup;
        memcpy(p.prog, resolved, sizeof p.prog);
        snprintf(p.dir, sizeof p.dir, "%s/jobs/%d/slurm", s->work,
                 s->procdate);
        snprintf(p.script, sizeof p.script, "%s/task.sh", p.dir);
        p.stamp = (long long)(rapid_time_now() * 1000.0);
        if ((rc = steps_mkdirs(p.dir, err)) != 0 ||
            (rc = write_script(s, &p, err)) != 0 ||
            (rc = submit_all(s, &p, r, err)) != 0)
            goto cleanup;
    }
    if (wait)
        rc = wait_all(s, postproc, &p, err);
cleanup:
    free(p.v);
    return rc;
}
