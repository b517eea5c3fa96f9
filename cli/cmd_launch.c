/* cmd_launch.c - `rapid launch`: step 1, the science and reference jobs of
 * an observation range, run by the local executor (docs/operations.md). */
#include <stdio.h>

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
    return steps_cli_start("launch", usage_text, options, 0, argc, argv);
}
