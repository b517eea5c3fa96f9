/* cmd_launch.c - `rapid launch`: step 1, the science and reference jobs of
 * an observation range, run by the local executor (docs/operations.md). */
#include <stdio.h>
#include <string.h>

#include "steps_cli.h"

static const char usage_text[] =
    "usage: rapid launch --start TIME --end TIME [options]\n"
    "\n"
    "Step 1 of a night (docs/operations.md): a science job for every L2 image\n"
    "observed in [start, end), with the best reference image of its tile and\n"
    "filter, or one reference job per tile that has none, built from the\n"
    "prior images (too few: the jobs end at once with 33).  Jobs are started\n"
    "in the database and their configurations written under\n"
    "WORK/jobs/PROCDATE/; with the local executor they then run here.  Jobs\n"
    "started already for this processing date are kept, not started again.\n"
    "\n" STEPS_COMMON_HELP
    "  --retry-failed    start again the jobs of this date that ended >= 32\n"
    "  --wait            with --executor slurm: wait until Slurm ended the\n"
    "                    jobs (the local executor always waits)\n"
    "\n"
    "Exit status: 0 done (failed jobs are for `rapid register` to report),\n"
    "1 the database or the work directory failed, 2 bad usage.\n";

static const cli_option options[] = {STEPS_COMMON_OPTIONS, STEPS_RETRY_OPTION,
                                     STEPS_WAIT_OPTION, {NULL, NULL, 0, 0}};

int cmd_launch(int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    steps_cli c;
    int rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    steps_cli_init(&c, "launch");
    if ((rc = steps_cli_parse(&c, options, argc, argv)) != 0 ||
        (rc = steps_cli_setup(&c, &s, 1)) != 0)
        return rc;
    s.retry_failed = c.retry_failed;
    s.progress = steps_cli_progress, s.progress_arg = (void *)"launch";
    if (rapid_steps_launch(&s, &r, &err) != 0) {
        rc = cli_fail("launch", &err);
        goto cleanup;
    }
    steps_cli_report("launch", "launch", &r);
    rc = steps_cli_execute("launch", &s, 0, c.wait);
cleanup:
    steps_cli_release(&s);
    return rc;
}
