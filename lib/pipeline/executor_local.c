/* executor_local.c - the local executor: the jobs of a processing date as
 * child processes of the step that launched them (docs/operations.md).
 *
 * The jobs run are those started in the database and not ended whose
 * directory holds no complete log (a job that ended is never run again;
 * one killed half-way is, and so is one interrupted: exit code 70).  At most `jobs` at once; reference jobs first;
 * a science job waits for the reference job it names, and when that one
 * failed it is not run: its log gets "terminating_exitcode = 71".
 *
 * Each child runs `PROGRAM job CONFIG` (postproc-job for ppid 17) with its
 * stdout and stderr appended to its log, and is sent SIGTERM when the
 * executor dies (PR_SET_PDEATHSIG): it stops (70), and a killed run leaves
 * no job behind that goes on writing into a directory a re-run uses.  The executor lock
 * (WORK/jobs/<procdate>/executor.lock) is held by the executor and, through
 * the inherited descriptor, by every job it started: registration leaves
 * unfinished jobs alone while it is held.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "steps_internal.h"

typedef enum jstate { WAITING, RUNNING, DONE } jstate;

typedef struct xjob {
    rapid_job job;
    int64_t refjid;   /* the reference job it waits for; 0: none */
    jstate state;
    pid_t pid;
    char config[STEPS_PATH], dir[STEPS_PATH];
} xjob;

typedef struct ref_key {
    int in_reference;
    int from_job;
    int64_t refjid;
} ref_key;

static int on_config(void *arg, const char *section, const char *name,
                     const char *value)
{
    ref_key *k = arg;

    if (strcmp(section, "reference") != 0)
        return 1;
    if (strcmp(name, "source") == 0)
        k->from_job = strcmp(value, "job") == 0;
    else if (strcmp(name, "refjid") == 0)
        k->refjid = strtoll(value, NULL, 10);
    return 1;
}

int64_t steps_config_refjid(const char *config)
{
    ref_key k = {0, 0, 0};

    if (ini_parse(config, on_config, &k) != 0 || !k.from_job)
        return 0;
    return k.refjid;
}

static int by_order(const void *a, const void *b)
{
    const rapid_job *x = &((const xjob *)a)->job, *y = &((const xjob *)b)->job;

    /* reference jobs (12) before science jobs (15) */
    if (x->ppid != y->ppid)
        return x->ppid - y->ppid;
    return (x->jid > y->jid) - (x->jid < y->jid);
}

/* The log of a job that was not run: its reason, then the last line. */
static void write_blocked_log(const rapid_steps *s, xjob *x, int code,
                              const char *why)
{
    char path[STEPS_PATH + 16], text[512];
    rapid_err err = RAPID_ERR_INIT;

    if (steps_mkdirs(x->dir, &err) != 0) {
        steps_say(s, "%s", err.msg);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", x->dir, RAPID_JOB_LOG);
    snprintf(text, sizeof text, "%s\nterminating_exitcode = %d\n", why, code);
    if (steps_write_file(path, text, &err) != 0)
        steps_say(s, "%s", err.msg);
}

static void child(const rapid_steps *s, const xjob *x, pid_t parent)
{
    const char *prog = s->job_cmd ? s->job_cmd : "/proc/self/exe";
    const char *verb = x->job.ppid == RAPID_PPID_POSTPROC ? "postproc-job"
                                                          : "job";
    char path[STEPS_PATH + 16];
    int fd;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    snprintf(path, sizeof path, "%s/%s", x->dir, RAPID_JOB_LOG);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0666)) >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    execl(prog, prog, verb, x->config, (char *)NULL);
    dprintf(2, "rapid executor: cannot run %s: %s\nterminating_exitcode = %d\n",
            prog, strerror(errno), RAPID_EXIT_FAILED);
    _exit(127);
}

static int start(const rapid_steps *s, xjob *x, rapid_err *err)
{
    pid_t parent = getpid(), pid;

    if (steps_mkdirs(x->dir, err) != 0)
        return RAPID_E_IO;
    fflush(NULL);
    if ((pid = fork()) < 0)
        return rapid_fail(err, RAPID_E_IO, "job %lld: cannot start: %s",
                          (long long)x->job.jid, strerror(errno));
    if (pid == 0)
        child(s, x, parent);
    x->pid = pid, x->state = RUNNING;
    return 0;
}

/* May x start?  1 yes, 0 not yet, -1 never (its reference job failed). */
static int ready(const rapid_steps *s, const xjob *v, int n, const xjob *x)
{
    char dir[STEPS_PATH];
    rapid_err ignore = RAPID_ERR_INIT;
    int i, code;

    if (!x->refjid)
        return 1;
    for (i = 0; i < n; i++)
        if (v[i].job.jid == x->refjid && v[i].state != DONE)
            return 0;
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, x->refjid);
    if (rapid_steps_log_exitcode(dir, &code, &ignore) != 0 || code > 31)
        return -1;
    return 1;
}

/* The pending jobs of the date: started, not ended, no complete log. */
static int pending_jobs(rapid_steps *s, int postproc, xjob **out, int *nout,
                        rapid_err *err)
{
    rapid_job *jobs = NULL;
    xjob *v = NULL;
    int n = 0, i, k = 0, code, rc;
    rapid_err ignore = RAPID_ERR_INIT;

    *out = NULL, *nout = 0;
    if ((rc = rapid_db_unclosed_jobs(s->db, s->procdate, 0, &jobs, &n, err)))
        return rc;
    if (n && !(v = calloc((size_t)n, sizeof *v))) {
        free(jobs);
        return rapid_fail(err, RAPID_E_NOMEM, "executor: out of memory");
    }
    for (i = 0; i < n; i++) {
        xjob *x = &v[k];
        if ((jobs[i].ppid == RAPID_PPID_POSTPROC) != (postproc != 0))
            continue;
        x->job = jobs[i];
        rapid_job_dir(x->dir, sizeof x->dir, s->work, s->procdate, x->job.jid);
        rapid_job_config_path(x->config, sizeof x->config, s->work,
                              s->procdate, x->job.jid);
        if (rapid_steps_log_exitcode(x->dir, &code, &ignore) == 0 &&
            code != RAPID_EXIT_INTERRUPTED)
            continue; /* ended: registration's */
        if (x->job.ppid == RAPID_PPID_SCIENCE)
            x->refjid = steps_config_refjid(x->config);
        k++;
    }
    free(jobs);
    if (k)
        qsort(v, (size_t)k, sizeof *v, by_order);
    *out = v, *nout = k;
    return 0;
}

static int open_lock(const rapid_steps *s, int *fd, rapid_err *err)
{
    char path[STEPS_PATH], dir[STEPS_PATH], *slash;
    int got, e;

    *fd = -1;
    if (steps_lock_path(path, sizeof path, s) != 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", s->work);
    snprintf(dir, sizeof dir, "%s", path);
    if ((slash = strrchr(dir, '/')) != NULL)
        *slash = '\0';
    if (steps_mkdirs(dir, err) != 0)
        return RAPID_E_IO;
    /* no O_CLOEXEC: the jobs hold the lock too */
    if ((*fd = open(path, O_RDWR | O_CREAT, 0666)) < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot open: %s", path,
                          strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    /* another executor's jobs run (or, its executor killed, are stopping) */
    if (errno == EWOULDBLOCK) {
        steps_say(s, "rapid executor: %s: waiting for the running jobs of"
                  " this date to end", path);
        while ((got = flock(*fd, LOCK_EX)) != 0 && errno == EINTR)
            ;
        if (got == 0)
            return 0;
    }
    e = errno;
    close(*fd);
    *fd = -1;
    return rapid_fail(err, RAPID_E_IO, "%s: cannot lock: %s", path,
                      strerror(e));
}

static int max_running(const rapid_steps *s)
{
    long cpus;

    if (s->set.jobs > 0)
        return s->set.jobs;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpus = cpus > 0 ? cpus / (s->set.threads > 0 ? s->set.threads : 1) : 1;
    return cpus > 0 ? (int)cpus : 1;
}

int rapid_steps_execute(rapid_steps *s, int postproc, rapid_step_report *r,
                        rapid_err *err)
{
    const char *step = postproc ? "post-processing" : "jobs";
    xjob *v = NULL;
    int n = 0, i, nrun = 0, done = 0, before, lock = -1, cap, rc, st, how;
    pid_t pid;

    /* the lock first: what is pending is known once no job runs */
    if ((rc = open_lock(s, &lock, err)) != 0 ||
        (rc = pending_jobs(s, postproc, &v, &n, err)) != 0 || !n)
        goto cleanup;
    cap = max_running(s);
    if (s->progress)
        s->progress(step, 0, n, s->progress_arg);
    while (done < n) {
        before = done;
        for (i = 0; i < n && nrun < cap; i++) {
            if (v[i].state != WAITING || (how = ready(s, v, n, &v[i])) == 0)
                continue;
            if (how < 0) {
                char why[128];
                snprintf(why, sizeof why, "rapid executor: reference job %lld"
                         " failed: not run", (long long)v[i].refjid);
                write_blocked_log(s, &v[i], RAPID_EXIT_REFJOB_FAILED, why);
                v[i].state = DONE, done++, r->blocked++;
                if (s->progress)
                    s->progress(step, done, n, s->progress_arg);
                continue;
            }
            if ((rc = start(s, &v[i], err)) != 0)
                goto wait_all;
            nrun++, r->ran++;
        }
        if (!nrun) {
            if (done == before) { /* cannot happen: a job waits on none */
                rc = rapid_fail(err, RAPID_E_ARG, "executor: %d jobs wait"
                                " for a reference job that is not run",
                                n - done);
                goto cleanup;
            }
            continue; /* every waiting job became ready or blocked */
        }
        pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            rc = rapid_fail(err, RAPID_E_IO, "executor: waiting for jobs: %s",
                            strerror(errno));
            goto wait_all;
        }
        for (i = 0; i < n; i++)
            if (v[i].state == RUNNING && v[i].pid == pid) {
                v[i].state = DONE, nrun--, done++;
                if (s->progress)
                    s->progress(step, done, n, s->progress_arg);
            }
    }
    goto cleanup;
wait_all: /* a failure of the executor itself: the running jobs end first */
    while (nrun > 0 && (pid = waitpid(-1, &st, 0)) > 0)
        nrun--;
cleanup:
    if (lock >= 0)
        close(lock);
    free(v);
    return rc;
}
