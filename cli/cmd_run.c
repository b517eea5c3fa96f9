/* cmd_run.c - `rapid run`: the four steps of a night in order, waiting for
 * the jobs, then a summary (docs/operations.md). */
#include <stdio.h>
#include <string.h>

#include "steps_cli.h"

static const char usage_text[] =
    "usage: rapid run --start TIME --end TIME [options]\n"
    "\n"
    "The four steps of a night in order (docs/operations.md): launch the\n"
    "science and reference jobs of [start, end) and run them, register them,\n"
    "launch and run the post-processing jobs, register those; then a summary\n"
    "(jobs by exit code, reference and difference images made, candidates\n"
    "passing the cuts, seconds per step) on stdout.  Progress on stderr: a\n"
    "bar on a terminal, plain lines otherwise.\n"
    "\n"
    "Killed at any point (even SIGKILL) and run again with the same\n"
    "processing date, it finishes the night with nothing lost or done twice:\n"
    "jobs that ended are not run again, and each job is registered once.\n"
    "Jobs that failed are reported; --retry-failed runs them again.\n"
    "\n" STEPS_COMMON_HELP
    "  --retry-failed    run again the jobs of this date that ended >= 32\n"
    "  --json            the summary as one JSON object on stdout\n"
    "\n"
    "Exit status: 0 the steps ran (failed jobs are in the summary), 1 the\n"
    "database or the work directory failed, 2 bad usage.\n";

static const cli_option options[] = {STEPS_COMMON_OPTIONS, STEPS_RETRY_OPTION,
                                     STEPS_JSON_OPTION, {NULL, NULL, 0, 0}};

static int steps(rapid_steps *s, double *seconds, rapid_err *err)
{
    rapid_step_report r;
    double t;
    int k;

    for (k = 0; k < 6; k++) {
        t = rapid_time_now();
        memset(&r, 0, sizeof r);
        switch (k) {
        case 0:
            if (rapid_steps_launch(s, &r, err))
                return EXIT_WORK;
            steps_cli_report("run", "launch", &r);
            break;
        case 1:
        case 4:
            if (strcmp(s->set.executor, "slurm") == 0
                    ? rapid_steps_slurm(s, k == 4, 1, &r, err)
                    : rapid_steps_execute(s, k == 4, &r, err))
                return EXIT_WORK;
            steps_cli_report("run", k == 1 ? "jobs" : "post-processing jobs",
                             &r);
            break;
        case 2:
        case 5:
            if (rapid_steps_register(s, k == 5, &r, err)) {
                steps_cli_report("run", "registration", &r);
                return EXIT_WORK;
            }
            steps_cli_report("run", k == 2 ? "registration"
                                           : "post-processing registration",
                             &r);
            break;
        case 3:
            if (rapid_steps_postproc(s, &r, err))
                return EXIT_WORK;
            steps_cli_report("run", "post-processing launch", &r);
            break;
        }
        seconds[k] = rapid_time_now() - t;
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_steps_summary sum;
    rapid_steps s;
    steps_cli c;
    double seconds[6] = {0};
    int rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    steps_cli_init(&c, "run");
    if ((rc = steps_cli_parse(&c, options, argc, argv)) != 0 ||
        (rc = steps_cli_setup(&c, &s, 1)) != 0)
        return rc;
    if (strcmp(s.set.executor, "none") == 0) {
        rc = cli_usage("run", "runs its jobs with the local or the Slurm"
                       " executor, not 'none' (--executor local|slurm)");
        goto cleanup;
    }
    s.retry_failed = c.retry_failed;
    s.progress = steps_cli_progress, s.progress_arg = (void *)"run";
    if ((rc = steps(&s, seconds, &err)) != 0) {
        cli_fail("run", &err);
        goto cleanup;
    }
    if (rapid_steps_summarize(&s, &sum, &err) != 0)
        rc = cli_fail("run", &err);
    else
        steps_cli_summary(&s, &sum, seconds, c.json);
cleanup:
    steps_cli_release(&s);
    return rc;
}
