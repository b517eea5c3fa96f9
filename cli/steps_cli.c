/* steps_cli.c - the step commands' common options and output. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "steps_cli.h"

void steps_cli_init(steps_cli *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->jobs = -1;
}

int steps_cli_option(steps_cli *c, const cli_parser *p, int id)
{
    switch (id) {
    case STEPS_OPT_DB: c->db = p->value; return 0;
    case STEPS_OPT_WORK: c->work = p->value; return 0;
    case STEPS_OPT_START: c->start = p->value; return 0;
    case STEPS_OPT_END: c->end = p->value; return 0;
    case STEPS_OPT_PROCDATE: c->procdate = p->value; return 0;
    case STEPS_OPT_CONFIG: c->config = p->value; return 0;
    case STEPS_OPT_EXECUTOR:
        if (strcmp(p->value, "local") && strcmp(p->value, "slurm") &&
            strcmp(p->value, "none"))
            return cli_usage(c->cmd, "invalid --executor '%s': must be local,"
                             " slurm or none", p->value);
        c->executor = p->value;
        return 0;
    case STEPS_OPT_RETRY: c->retry_failed = 1; return 0;
    case STEPS_OPT_JSON: c->json = 1; return 0;
    case STEPS_OPT_WAIT: c->wait = 1; return 0;
    case STEPS_OPT_JOBS:
        return cli_int_option(p, 1, 4096, &c->jobs);
    default:
        return EXIT_USAGE;
    }
}

int steps_cli_parse(steps_cli *c, const cli_option *options, int argc,
                    char **argv)
{
    cli_parser p;
    int id, rc;

    cli_parser_init(&p, c->cmd, options, argc, argv);
    while ((id = cli_next(&p)) != CLI_END) {
        if (id == CLI_OPERAND)
            return cli_usage(c->cmd, "unexpected argument '%s'", p.value);
        if (id == CLI_BAD)
            return EXIT_USAGE;
        if ((rc = steps_cli_option(c, &p, id)) != 0)
            return rc;
    }
    return 0;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

/* yyyymmdd of a real date: 0, or -1. */
static int parse_procdate(const char *s, int *out)
{
    int64_t v;
    int y, m, d;

    if (strlen(s) != 8 || cli_parse_int64(s, &v) != 0)
        return -1;
    y = (int)(v / 10000), m = (int)(v / 100 % 100), d = (int)(v % 100);
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    *out = (int)v;
    return 0;
}

static int today_utc(void)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static int absolute_work(steps_cli *c, rapid_steps *s)
{
    const char *w = c->work ? c->work : env("RAPID_WORK");
    char cwd[PATH_MAX];
    int n;

    if (!w)
        w = "./work";
    if (w[0] == '/') {
        n = snprintf(s->work, sizeof s->work, "%s", w);
    } else {
        if (!getcwd(cwd, sizeof cwd)) {
            cli_error(c->cmd, "cannot know the current directory: %s",
                      strerror(errno));
            return EXIT_WORK;
        }
        n = snprintf(s->work, sizeof s->work, "%s/%s", cwd,
                     strncmp(w, "./", 2) == 0 ? w + 2 : w);
    }
    if (n < 0 || (size_t)n >= sizeof s->work - 64)
        return cli_usage(c->cmd, "work directory too long: %s", w);
    while (n > 1 && s->work[n - 1] == '/')
        s->work[--n] = '\0';
    return 0;
}

static int time_value(steps_cli *c, const char *opt, const char *v,
                      const char *envname, double *out)
{
    rapid_err err = RAPID_ERR_INIT;

    if (!v && !(v = env(envname)))
        return cli_usage(c->cmd, "%s (or $%s) is required", opt, envname);
    if (rapid_time_parse(v, out, &err) != 0)
        return cli_usage(c->cmd, "invalid %s '%s': %s", opt, v, err.msg);
    return 0;
}

static int settings(steps_cli *c, rapid_steps *s)
{
    rapid_err err = RAPID_ERR_INIT;
    char path[RAPID_STEPS_PATH_MAX + 16];

    if (c->config) {
        if (rapid_steps_settings_read(&s->set, c->config, &err) != 0)
            return cli_fail(c->cmd, &err);
    } else {
        snprintf(path, sizeof path, "%s/rapid.ini", s->work);
        if (access(path, F_OK) == 0 &&
            rapid_steps_settings_read(&s->set, path, &err) != 0)
            return cli_fail(c->cmd, &err);
    }
    if (c->executor)
        snprintf(s->set.executor, sizeof s->set.executor, "%s", c->executor);
    if (c->jobs > 0)
        s->set.jobs = c->jobs;
    return 0;
}

int steps_cli_setup(steps_cli *c, rapid_steps *s, int need_range)
{
    rapid_err err = RAPID_ERR_INIT;
    const char *pd = c->procdate ? c->procdate : env("JOBPROCDATE");
    char url[RAPID_STEPS_PATH_MAX + 16];
    int rc;

    rapid_steps_init(s);
    if ((rc = absolute_work(c, s)) != 0)
        return rc;
    s->procdate = today_utc();
    if (pd && parse_procdate(pd, &s->procdate) != 0)
        return cli_usage(c->cmd, "invalid processing date '%s': must be a"
                         " date yyyymmdd", pd);
    if (need_range &&
        ((rc = time_value(c, "--start", c->start, "STARTDATETIME", &s->start)) ||
         (rc = time_value(c, "--end", c->end, "ENDDATETIME", &s->end))))
        return rc;
    if (need_range && s->end <= s->start)
        return cli_usage(c->cmd, "--end %s is not after --start %s",
                         c->end ? c->end : env("ENDDATETIME"),
                         c->start ? c->start : env("STARTDATETIME"));
    if (c->db) {
        snprintf(url, sizeof url, "%s", c->db);
    } else if (env("RAPID_DB")) {
        snprintf(url, sizeof url, "%s", env("RAPID_DB"));
    } else {
        snprintf(url, sizeof url, "sqlite:%s/rapid.db", s->work);
    }
    if ((rc = cli_check_db_url(c->cmd, url)) != 0 ||
        (rc = settings(c, s)) != 0)
        return rc;
    s->job_cmd = env("RAPID_JOB_CMD");
    s->msg = stderr;
    if (rapid_db_open(&s->db, url, 0, &err) != 0 ||
        rapid_db_check_schema(s->db, &err) != 0) {
        rapid_db_close(s->db);
        s->db = NULL;
        return cli_fail(c->cmd, &err);
    }
    return 0;
}

void steps_cli_release(rapid_steps *s)
{
    rapid_db_close(s->db);
    s->db = NULL;
}

void steps_cli_report(const char *cmd, const char *step,
                      const rapid_step_report *r)
{
    fprintf(stderr, "rapid %s: %s:", cmd, step);
    if (r->started || r->kept || r->noref)
        fprintf(stderr, " %d jobs started (%d reference jobs), %d kept,"
                " %d ended 33 (too few prior images);", r->started,
                r->refjobs, r->kept, r->noref);
    if (r->arrays || r->queued)
        fprintf(stderr, " %d jobs submitted to Slurm in %d arrays, %d in"
                " Slurm already;", r->ran, r->arrays, r->queued);
    else if (r->ran || r->blocked)
        fprintf(stderr, " %d jobs run, %d not run (reference job failed);",
                r->ran, r->blocked);
    if (r->registered || r->ended_failed || r->lost || r->badmanifest ||
        r->running || r->dberrors || r->killed)
        fprintf(stderr, " %d registered (%d reference images, %d difference"
                " images, %d files), %d ended >= 32, %d lost, %d bad manifests,"
                " %d still running, %d not registered;", r->registered,
                r->refimages, r->diffimages, r->files, r->ended_failed,
                r->lost, r->badmanifest, r->running, r->dberrors);
    if (r->killed)
        fprintf(stderr, " %d killed by Slurm (82);", r->killed);
    fputs(" done\n", stderr);
}

void steps_cli_progress(const char *step, int done, int total, void *cmd)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int k, fill;

    if (!cli_interactive()) {
        /* a line at the start, at every tenth and at the end */
        if (done == 0 || done == total ||
            (total > 0 && done * 10 / total != (done - 1) * 10 / total))
            fprintf(stderr, "rapid %s: %s %d/%d\n", (const char *)cmd, step,
                    done, total);
        return;
    }
    fill = total > 0 ? done * WIDTH / total : WIDTH;
    for (k = 0; k < WIDTH; k++)
        bar[k] = k < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\rrapid %s: %-15s [%s] %d/%d", (const char *)cmd, step,
            bar, done, total);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static const char *const pipe_names[3] = {"reference", "science",
                                          "postproc"};
static const char *const step_names[6] = {
    "launch", "jobs", "register", "postproc", "postproc_jobs",
    "register_postproc"};

static void summary_json(const rapid_steps *s, const rapid_steps_summary *sum,
                         const double *seconds)
{
    int p, c, k, first;

    printf("{\"procdate\": %d, \"jobs\": {", s->procdate);
    for (p = 0; p < 3; p++) {
        printf("%s\"%s\": {\"total\": %d, \"unended\": %d, \"by_exitcode\": {",
               p ? ", " : "", pipe_names[p], sum->njobs[p], sum->unended[p]);
        for (c = 0, first = 1; c < 256; c++)
            if (sum->by_exit[p][c]) {
                printf("%s\"%d\": %d", first ? "" : ", ", c, sum->by_exit[p][c]);
                first = 0;
            }
        printf("}}");
    }
    printf("}, \"refimages\": %d, \"diffimages\": %d, \"candidates\": %" PRId64
           ", \"passing\": %" PRId64 ", \"failed\": [",
           sum->refimages, sum->diffimages, sum->candidates, sum->passing);
    for (k = 0; k < sum->nfailed && k < 64; k++)
        printf("%s{\"jid\": %" PRId64 ", \"ppid\": %d, \"exitcode\": %d}",
               k ? ", " : "", sum->failed[k].jid, sum->failed[k].ppid,
               sum->failed[k].exitcode);
    printf("]");
    if (seconds) {
        printf(", \"seconds\": {");
        for (k = 0; k < 6; k++)
            printf("%s\"%s\": %.3f", k ? ", " : "", step_names[k], seconds[k]);
        printf("}");
    }
    printf("}\n");
}

void steps_cli_summary(const rapid_steps *s, const rapid_steps_summary *sum,
                       const double *seconds, int json)
{
    int p, c, k;

    if (json) {
        summary_json(s, sum, seconds);
        return;
    }
    printf("processing date %d\n", s->procdate);
    for (p = 0; p < 3; p++) {
        printf("  %-9s jobs: %d", pipe_names[p], sum->njobs[p]);
        if (sum->unended[p])
            printf(", %d not ended", sum->unended[p]);
        for (c = 0; c < 256; c++)
            if (sum->by_exit[p][c])
                printf(", %d ended %d", sum->by_exit[p][c], c);
        putchar('\n');
    }
    printf("  reference images made: %d\n  difference images: %d\n"
           "  candidates: %" PRId64 ", passing the cuts: %" PRId64 "\n",
           sum->refimages, sum->diffimages, sum->candidates, sum->passing);
    if (sum->nfailed) {
        printf("  jobs that ended with a warning (32-63) or failed (%d; rapid "
               "run --retry-failed runs them again):\n", sum->nfailed);
        for (k = 0; k < sum->nfailed && k < 64; k++)
            printf("    jid %" PRId64 " (%s) ended %d: %s/products/%d/jid%"
                   PRId64 "/job.log\n", sum->failed[k].jid,
                   pipe_names[sum->failed[k].ppid == 12   ? 0
                              : sum->failed[k].ppid == 15 ? 1 : 2],
                   sum->failed[k].exitcode, s->work, s->procdate,
                   sum->failed[k].jid);
    }
    if (seconds) {
        printf("  seconds:");
        for (k = 0; k < 6; k++)
            printf(" %s %.1f", step_names[k], seconds[k]);
        putchar('\n');
    }
}

int steps_cli_execute(const char *cmd, rapid_steps *s, int postproc, int wait)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    int rc;

    memset(&r, 0, sizeof r);
    if (strcmp(s->set.executor, "local") == 0)
        rc = rapid_steps_execute(s, postproc, &r, &err);
    else if (strcmp(s->set.executor, "slurm") == 0)
        rc = rapid_steps_slurm(s, postproc, wait, &r, &err);
    else
        return 0;
    if (rc)
        return cli_fail(cmd, &err);
    steps_cli_report(cmd, postproc ? "post-processing jobs" : "jobs", &r);
    return 0;
}

int steps_cli_start(const char *cmd, const char *usage, const cli_option *options,
                    int postproc, int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    steps_cli c;
    int rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    steps_cli_init(&c, cmd);
    if ((rc = steps_cli_parse(&c, options, argc, argv)) != 0 ||
        (rc = steps_cli_setup(&c, &s, !postproc)) != 0)
        return rc;
    s.retry_failed = c.retry_failed;
    s.progress = steps_cli_progress, s.progress_arg = (void *)cmd;
    if ((postproc ? rapid_steps_postproc(&s, &r, &err) : rapid_steps_launch(&s, &r, &err)) != 0) {
        rc = cli_fail(cmd, &err);
    } else {
        steps_cli_report(cmd, postproc ? "post-processing launch" : "launch", &r);
        rc = steps_cli_execute(cmd, &s, postproc, c.wait);
    }
    steps_cli_release(&s);
    return rc;
}

int steps_cli_register(const char *cmd, const char *usage, const cli_option *options,
                       int postproc, int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    steps_cli c;
    int rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    steps_cli_init(&c, cmd);
    if ((rc = steps_cli_parse(&c, options, argc, argv)) != 0 ||
        (rc = steps_cli_setup(&c, &s, 0)) != 0)
        return rc;
    s.progress = steps_cli_progress, s.progress_arg = (void *)cmd;
    if (rapid_steps_register(&s, postproc, &r, &err) != 0)
        rc = cli_fail(cmd, &err);
    steps_cli_report(cmd, "registration", &r);
    steps_cli_release(&s);
    return rc;
}
