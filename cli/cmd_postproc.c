/* cmd_postproc.c - `rapid postproc`: step 3, the post-processing jobs of a
 * processing date, run by the local executor (docs/operations.md). */
#include <stdio.h>
#include <string.h>

#include "steps_cli.h"

static const char usage_text[] =
    "usage: rapid postproc [options]\n"
    "\n"
    "Step 3 of a night (docs/operations.md): a post-processing job (ppid 17)\n"
    "for every science job of the processing date that ended 0-31 with\n"
    "difference images: it stamps the database ids registration gave into\n"
    "copies of the products.  Jobs are started in the database and their\n"
    "configurations written; with the local executor they then run here.\n"
    "Jobs started already for this date are kept.\n"
    "\n" STEPS_COMMON_HELP
    "  --retry-failed    start again the jobs of this date that ended >= 32\n"
    "  --wait            with --executor slurm: wait until Slurm ended the\n"
    "                    jobs (the local executor always waits)\n"
    "\n"
    "Exit status: 0 done, 1 the database or the work directory failed,\n"
    "2 bad usage.\n";

static const cli_option options[] = {STEPS_COMMON_OPTIONS, STEPS_RETRY_OPTION,
                                     STEPS_WAIT_OPTION, {NULL, NULL, 0, 0}};

int cmd_postproc(int argc, char **argv)
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
    steps_cli_init(&c, "postproc");
    if ((rc = steps_cli_parse(&c, options, argc, argv)) != 0 ||
        (rc = steps_cli_setup(&c, &s, 0)) != 0)
        return rc;
    s.retry_failed = c.retry_failed;
    s.progress = steps_cli_progress, s.progress_arg = (void *)"postproc";
    if (rapid_steps_postproc(&s, &r, &err) != 0) {
        rc = cli_fail("postproc", &err);
        goto cleanup;
    }
    steps_cli_report("postproc", "post-processing launch", &r);
    rc = steps_cli_execute("postproc", &s, 1, c.wait);
cleanup:
    steps_cli_release(&s);
    return rc;
}
