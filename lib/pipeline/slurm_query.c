/* slurm_query.c - what Slurm says of the jobs it was given, and
 * registration's verdict on a Slurm job whose log has no last line
 * (docs/operations.md, "A night on a Slurm cluster").
 *
 * squeue -r -t all lists a job while it is pending or running and for
 * MinJobAge seconds after its end; afterwards the job-completion file
 * (JobCompType jobcomp/filetxt, JobCompLoc) keeps its end state, one line
 * per ending, the last one counting.  A job in neither is gone: its end
 * cannot be known.
 *
 * A job whose row holds a submission's mark, "@TOKEN_i" (stored before
 * sbatch ran, replaced by "arrayid_i" once it answered), is task i of the
 * array whose comment is "rapid:TOKEN", if Slurm has such an array. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "steps_internal.h"

/* ids per squeue call: a command line of a few kB */
#define QUERY_CHUNK 200

int steps_run_capture(char *const argv[], steps_text *out, int *status,
                      rapid_err *err)
{
    int fd[2], st = 0;
    pid_t pid;
    char buf[4096];
    ssize_t got;

    *status = -1;
    if (pipe(fd) != 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot run: %s", argv[0],
                          strerror(errno));
    fflush(NULL);
    if ((pid = fork()) < 0) {
        int e = errno;
        close(fd[0]);
        close(fd[1]);
        return rapid_fail(err, RAPID_E_IO, "%s: cannot run: %s", argv[0],
                          strerror(e));
    }
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        if (fd[1] > 2)
            close(fd[1]);
        execvp(argv[0], argv);
        dprintf(2, "%s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    while ((got = read(fd[0], buf, sizeof buf - 1)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        buf[got] = '\0';
        steps_printf(out, "%s", buf);
    }
    close(fd[0]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return rapid_fail(err, RAPID_E_IO, "%s: cannot wait: %s",
                              argv[0], strerror(errno));
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (out->nomem)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", argv[0]);
    if (*status == 127)
        return rapid_fail(err, RAPID_E_IO, "cannot run %s (is Slurm"
                          " installed, on PATH?): %s", argv[0],
                          out->s ? out->s : "");
    return 0;
}

/* The last line of a command's output, for a message. */
const char *steps_last_line(steps_text *t)
{
    char *p;

    if (!t->s)
        return "";
    while (t->n && (t->s[t->n - 1] == '\n' || t->s[t->n - 1] == ' '))
        t->s[--t->n] = '\0';
    p = strrchr(t->s, '\n');
    return p ? p + 1 : t->s;
}

static int by_id(const void *a, const void *b)
{
    return strcmp((*(steps_slurm_job *const *)a)->id,
                  (*(steps_slurm_job *const *)b)->id);
}

static steps_slurm_job *find_id(steps_slurm_job **ix, int n, const char *id)
{
    steps_slurm_job key, *k = &key, **hit;

    if (strlen(id) >= sizeof key.id)
        return NULL; /* longer than any id stored */
    memcpy(key.id, id, strlen(id) + 1);
    hit = bsearch(&k, ix, (size_t)n, sizeof *ix, by_id);
    return hit ? *hit : NULL;
}

/* A state name: an end (COMPLETED, CANCELLED, ...) or not. */
static steps_slurm_state state_of(const char *name)
{
    static const char *const ended[] = {
        "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
        "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED"};
    size_t k;

    if (strcmp(name, "COMPLETED") == 0)
        return STEPS_SLURM_COMPLETED;
    for (k = 0; k < sizeof ended / sizeof ended[0]; k++)
        if (strncmp(name, ended[k], strlen(ended[k])) == 0)
            return STEPS_SLURM_ENDED;
    return STEPS_SLURM_ACTIVE; /* PENDING, RUNNING, COMPLETING, ... */
}

static void set_state(steps_slurm_job *j, const char *name, size_t len)
{
    if (len >= sizeof j->name)
        len = sizeof j->name - 1;
    memcpy(j->name, name, len);
    j->name[len] = '\0';
    j->state = state_of(j->name);
}

/* One squeue for ix[0..n-1]. */
static int squeue_chunk(steps_slurm_job **ix, int nall, int from, int n,
                        rapid_err *err)
{
    steps_text ids = {0}, out = {0};
    char *argv[] = {"squeue", "-h", "-r", "-t", "all", "-o", "%i %T", "-j",
                    NULL, NULL};
    char *line, *save = NULL, *sp;
    steps_slurm_job *j;
    int i, status, rc;

    for (i = 0; i < n; i++)
        steps_printf(&ids, "%s%s", i ? "," : "", ix[from + i]->id);
    if (ids.nomem) {
        steps_text_free(&ids);
        return rapid_fail(err, RAPID_E_NOMEM, "squeue: out of memory");
    }
    argv[8] = ids.s;
    rc = steps_run_capture(argv, &out, &status, err);
    steps_text_free(&ids);
    if (rc)
        goto cleanup;
    /* every id unknown: an error for squeue, an answer for us */
    if (status != 0 && !(out.s && strstr(out.s, "Invalid job id"))) {
        rc = rapid_fail(err, RAPID_E_IO, "squeue failed (exit %d): %s",
                        status, steps_last_line(&out));
        goto cleanup;
    }
    for (line = out.s ? strtok_r(out.s, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!(sp = strchr(line, ' ')))
            continue;
        *sp = '\0';
        if ((j = find_id(ix, nall, line)) != NULL)
            set_state(j, sp + 1, strcspn(sp + 1, " \n"));
    }
cleanup:
    steps_text_free(&out);
    return rc;
}

/* The value of " KEY=" in a job-completion line, up to the next blank. */
static const char *field(const char *line, const char *key, size_t *len)
{
    size_t k = strlen(key);
    const char *p = line;

    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[k] == '=') {
            p += k + 1;
            *len = strcspn(p, " \n");
            return p;
        }
        p += k;
    }
    return NULL;
}

/* JobCompLoc when the cluster writes a job-completion file; 0 found. */
static int jobcomp_file(char *path, size_t pathsz)
{
    char *argv[] = {"scontrol", "show", "config", NULL};
    steps_text out = {0};
    rapid_err ignore = RAPID_ERR_INIT;
    char *line, *save = NULL, *eq;
    int status, filetxt = 0;

    path[0] = '\0';
    if (steps_run_capture(argv, &out, &status, &ignore) != 0 || status) {
        steps_text_free(&out);
        return -1;
    }
    for (line = out.s ? strtok_r(out.s, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!(eq = strstr(line, " = ")))
            continue;
        if (strncmp(line, "JobCompType ", 12) == 0)
            filetxt = strstr(eq, "jobcomp/filetxt") != NULL;
        else if (strncmp(line, "JobCompLoc ", 11) == 0)
            snprintf(path, pathsz, "%s", eq + 3);
    }
    steps_text_free(&out);
    return filetxt && path[0] == '/' ? 0 : -1;
}

/* The ends of the jobs squeue does not know, from the completion file. */
static void from_jobcomp(steps_slurm_job **ix, int n)
{
    char path[STEPS_PATH], id[64], *line = NULL;
    const char *state, *a, *t;
    size_t cap = 0, ls, la, lt;
    steps_slurm_job *j;
    FILE *f;

    if (jobcomp_file(path, sizeof path) != 0 || !(f = fopen(path, "r")))
        return;
    while (getline(&line, &cap, f) > 0) {
        if (!(state = field(line, "JobState", &ls)))
            continue;
        if ((a = field(line, "ArrayJobId", &la)) != NULL &&
            (t = field(line, "ArrayTaskId", &lt)) != NULL)
            snprintf(id, sizeof id, "%.*s_%.*s", (int)la, a, (int)lt, t);
        else if ((a = field(line, "JobId", &la)) != NULL)
            snprintf(id, sizeof id, "%.*s", (int)la, a);
        else
            continue;
        /* squeue's answer stands; of the file's lines the last one */
        if ((j = find_id(ix, n, id)) != NULL &&
            (j->state == STEPS_SLURM_GONE || j->from_file)) {
            set_state(j, state, ls);
            j->from_file = 1;
        }
    }
    free(line);
    fclose(f);
}

/* A pending task cancelled (scancel A_i) leaves no trace: Slurm takes it
 * out of its array, writes no completion line, and squeue never lists it
 * again.  So a task that is gone while its array is still in the queue
 * (some other task listed) was cancelled. */
static int cancelled_pending(steps_slurm_job **ix, int n, rapid_err *err)
{
    steps_text ids = {0}, out = {0};
    char *argv[] = {"squeue", "-h", "-r", "-t", "all", "-o", "%i", "-j",
                    NULL, NULL};
    char *line, *save = NULL, *us;
    size_t la;
    int i, k, status, rc, any = 0;

    for (i = 0; i < n; i++)
        if (ix[i]->state == STEPS_SLURM_GONE && strchr(ix[i]->id, '_')) {
            la = strcspn(ix[i]->id, "_");
            steps_printf(&ids, "%s%.*s", any++ ? "," : "", (int)la,
                         ix[i]->id);
        }
    if (!any)
        return 0;
    if (ids.nomem) {
        steps_text_free(&ids);
        return rapid_fail(err, RAPID_E_NOMEM, "squeue: out of memory");
    }
    argv[8] = ids.s;
    rc = steps_run_capture(argv, &out, &status, err);
    steps_text_free(&ids);
    if (rc || status != 0) /* no array known: nothing to learn */
        goto cleanup;
    for (line = out.s ? strtok_r(out.s, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!(us = strchr(line, '_')))
            continue;
        la = (size_t)(us - line);
        for (k = 0; k < n; k++)
            if (ix[k]->state == STEPS_SLURM_GONE &&
                strncmp(ix[k]->id, line, la) == 0 && ix[k]->id[la] == '_') {
                ix[k]->state = STEPS_SLURM_ENDED;
                snprintf(ix[k]->name, sizeof ix[k]->name, "CANCELLED");
            }
    }
cleanup:
    steps_text_free(&out);
    return rc;
}

int steps_slurm_query(steps_slurm_job *v, int nv, rapid_err *err)
{
    steps_slurm_job **ix = NULL;
    int i, n = 0, rc = 0, gone = 0;

    for (i = 0; i < nv; i++)
        v[i].state = STEPS_SLURM_UNKNOWN, v[i].name[0] = '\0',
        v[i].from_file = 0;
    if (nv <= 0)
        return 0;
    if (!(ix = malloc((size_t)nv * sizeof *ix)))
        return rapid_fail(err, RAPID_E_NOMEM, "squeue: out of memory");
    /* no id, or a submission's mark: nothing to ask (UNKNOWN) */
    for (i = 0; i < nv; i++)
        if (v[i].id[0] && v[i].id[0] != STEPS_SLURM_MARK)
            ix[n++] = &v[i];
    if (!n) {
        free(ix);
        return 0;
    }
    qsort(ix, (size_t)n, sizeof *ix, by_id);
    for (i = 0; i < n; i++)
        ix[i]->state = STEPS_SLURM_GONE;
    for (i = 0; i < n && rc == 0; i += QUERY_CHUNK)
        rc = squeue_chunk(ix, n, i, n - i < QUERY_CHUNK ? n - i : QUERY_CHUNK,
                          err);
    if (rc) {
        for (i = 0; i < n; i++)
            ix[i]->state = STEPS_SLURM_UNKNOWN, ix[i]->name[0] = '\0';
    } else {
        for (i = 0; i < n; i++)
            gone += ix[i]->state == STEPS_SLURM_GONE;
        if (gone)
            from_jobcomp(ix, n);
        for (i = gone = 0; i < n; i++)
            gone += ix[i]->state == STEPS_SLURM_GONE;
        if (gone && (rc = cancelled_pending(ix, n, err)) != 0)
            for (i = 0; i < n; i++)
                ix[i]->state = STEPS_SLURM_UNKNOWN, ix[i]->name[0] = '\0';
    }
    free(ix);
    return rc;
}

const char *steps_slurm_kind(int ppid)
{
    return ppid == RAPID_PPID_REFERENCE ? "ref"
           : ppid == RAPID_PPID_SCIENCE ? "sci" : "post";
}

/* The token of a mark "@TOKEN_i" into tok, and i; -1 when id is no mark. */
static int mark_token(const char *id, char *tok, size_t toksz)
{
    const char *us = strrchr(id, '_');
    char *end;
    long task;

    if (id[0] != STEPS_SLURM_MARK || !us || us == id + 1 ||
        (size_t)(us - id) > toksz)
        return -1;
    errno = 0;
    task = strtol(us + 1, &end, 10);
    if (errno || *end || end == us + 1 || task < 0 || task > INT_MAX)
        return -1;
    snprintf(tok, toksz, "%.*s", (int)(us - id - 1), id + 1);
    return (int)task;
}

int steps_slurm_resolve(steps_slurm_job *v, int n, int procdate,
                        rapid_err *err)
{
    char names[160], fmt[] = "%F %k", tok[32], comment[48];
    char *argv[] = {"squeue", "-h", "-t", "all", "-n", names, "-o", fmt,
                    NULL};
    steps_text out = {0};
    char *line, *save = NULL, *sp;
    int i, k, task, nmark = 0, status, rc;
    struct found {
        long long aid;
        char comment[48];
    } *arr = NULL;
    int narr = 0;

    for (i = 0; i < n; i++)
        nmark += v[i].id[0] == STEPS_SLURM_MARK;
    if (!nmark)
        return 0;
    snprintf(names, sizeof names, "rapid-%d-ref,rapid-%d-sci,rapid-%d-post",
             procdate, procdate, procdate);
    if ((rc = steps_run_capture(argv, &out, &status, err)) != 0)
        goto cleanup;
    if (status != 0) {
        rc = rapid_fail(err, RAPID_E_IO, "squeue failed (exit %d): %s",
                        status, steps_last_line(&out));
        goto cleanup;
    }
    /* one line per array, or per task once it started: the arrays */
    for (line = out.s ? strtok_r(out.s, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        long long aid;
        if (!(sp = strchr(line, ' ')) || strncmp(sp + 1, "rapid:", 6) != 0 ||
            strlen(sp + 1) >= sizeof arr->comment ||
            (aid = strtoll(line, NULL, 10)) <= 0)
            continue;
        for (k = 0; k < narr && arr[k].aid != aid; k++)
            ;
        if (k < narr)
            continue;
        if (!(k % 16)) {
            void *more = realloc(arr, (size_t)(k + 16) * sizeof *arr);
            if (!more) {
                rc = rapid_fail(err, RAPID_E_NOMEM, "squeue: out of memory");
                goto cleanup;
            }
            arr = more;
        }
        arr[k].aid = aid;
        snprintf(arr[k].comment, sizeof arr[k].comment, "%s", sp + 1);
        narr++;
    }
    for (i = 0; i < n; i++) {
        if (v[i].id[0] != STEPS_SLURM_MARK)
            continue;
        task = mark_token(v[i].id, tok, sizeof tok);
        snprintf(comment, sizeof comment, "rapid:%s", tok);
        for (k = 0; task >= 0 && k < narr; k++)
            if (strcmp(arr[k].comment, comment) == 0)
                break;
        if (task >= 0 && k < narr)
            snprintf(v[i].id, sizeof v[i].id, "%lld_%d", arr[k].aid, task);
        else
            v[i].id[0] = '\0';
    }
cleanup:
    free(arr);
    steps_text_free(&out);
    return rc;
}

/* Does registration need Slurm's word on job j: a Slurm job whose log
 * has no last line, or one that says 70? */
static int needs_verdict(const rapid_steps *s, const rapid_job *j,
                         int postproc)
{
    char dir[STEPS_PATH];
    rapid_err ignore = RAPID_ERR_INIT;
    int code;

    if (!j->slurm[0] || (j->ppid == RAPID_PPID_POSTPROC) != (postproc != 0))
        return 0;
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, j->jid);
    return rapid_steps_log_exitcode(dir, &code, &ignore) != 0 ||
           code == RAPID_EXIT_INTERRUPTED;
}

int steps_slurm_view_load(steps_slurm_view *sv, const rapid_steps *s,
                          const rapid_job *jobs, int n, int postproc,
                          rapid_err *err)
{
    int i, k = 0;
    char *need = NULL;

    memset(sv, 0, sizeof *sv);
    /* a log complete now stays complete: only the others are asked */
    if (n > 0 && !(need = calloc((size_t)n, 1)))
        return rapid_fail(err, RAPID_E_NOMEM, "registration: out of memory");
    for (i = 0; i < n; i++)
        k += need[i] = (char)needs_verdict(s, &jobs[i], postproc);
    if (!k) {
        free(need);
        return 0;
    }
    if (!(sv->v = calloc((size_t)k, sizeof *sv->v))) {
        free(need);
        return rapid_fail(err, RAPID_E_NOMEM, "registration: out of memory");
    }
    for (i = 0; i < n; i++)
        if (need[i]) {
            sv->v[sv->n].jid = jobs[i].jid;
            snprintf(sv->v[sv->n].id, sizeof sv->v[sv->n].id, "%s",
                     jobs[i].slurm);
            sv->n++;
        }
    free(need);
    /* a job being submitted: the array Slurm accepted for it, if any
     * (none: left alone, the executor's re-run submits it) */
    if (steps_slurm_resolve(sv->v, sv->n, s->procdate, &sv->why) != 0 ||
        steps_slurm_query(sv->v, sv->n, &sv->why) != 0)
        sv->failed = 1;
    return 0;
}

void steps_slurm_view_free(steps_slurm_view *sv)
{
    free(sv->v);
    memset(sv, 0, sizeof *sv);
}

int steps_slurm_verdict(const steps_slurm_view *sv, const rapid_job *j,
                        steps_outcome out, int *code, rapid_err *why)
{
    const steps_slurm_job *x = NULL;
    int i;

    for (i = 0; i < sv->n && !x; i++)
        if (sv->v[i].jid == j->jid)
            x = &sv->v[i];
    if (!x || x->state == STEPS_SLURM_UNKNOWN ||
        x->state == STEPS_SLURM_ACTIVE)
        return 1;
    if (out != STEPS_UNFINISHED) {
        /* it stopped on the SIGTERM of a cancel or a time limit (70) */
        if (x->state == STEPS_SLURM_ENDED && strncmp(x->name, "FAILED", 6)) {
            *code = RAPID_EXIT_KILLED;
            rapid_fail(why, RAPID_E_IO, "Slurm job %s ended %s (the job"
                       " stopped, interrupted)", x->id, x->name);
        }
        return 0;
    }
    if (x->state == STEPS_SLURM_ENDED) {
        *code = RAPID_EXIT_KILLED;
        rapid_fail(why, RAPID_E_IO, "Slurm job %s ended %s before the job"
                   " wrote its last log line", x->id, x->name);
    } else {
        *code = RAPID_EXIT_LOST;
        rapid_fail(why, RAPID_E_NOENT, "Slurm job %s %s, and its log has no"
                   " terminating_exitcode line", x->id,
                   x->state == STEPS_SLURM_COMPLETED
                       ? "ended COMPLETED"
                       : "is no longer known to Slurm");
    }
    return 0;
}
