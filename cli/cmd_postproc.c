/* cmd_postproc.c - `rapid postproc`: step 3, the post-processing jobs of a
 * processing date, run by the local executor (docs/operations.md). */
#include <stdio.h>

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
    return steps_cli_start("postproc", usage_text, options, 1, argc, argv);
}
