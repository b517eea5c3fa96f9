/* cmd_register_postproc.c - `rapid register-postproc`: step 4, the post-processing jobs of a
 * processing date into the database, each exactly once
 * (docs/operations.md). */
#include <stdio.h>

#include "steps_cli.h"

static const char usage_text[] =
    "usage: rapid register-postproc [options]\n"
    "\n"
    "Step 4 of a night (docs/operations.md): register the post-processing jobs\n"
    "of the processing date that are started and not ended, each in one\n"
    "transaction that also ends it, so that a job is registered once however\n"
    "often this runs or is killed.  A job whose log ends with\n"
    "\"terminating_exitcode = N\" (N 0-31) and whose manifest is good has its\n"
    "products registered; N >= 32 ends it with N; a log without that line\n"
    "ends it with 80 (lost) unless its jobs are still running; a missing or\n"
    "corrupt manifest, or a product missing, ends it with 81.  Each such job\n"
    "is reported on stderr; the others go on.\n"
    "\n" STEPS_COMMON_HELP
    "\n"
    "Exit status: 0 done (failed jobs are reported, not an error), 1 the\n"
    "database failed (jobs it could not register are named), 2 bad usage.\n";

static const cli_option options[] = {STEPS_COMMON_OPTIONS, {NULL, NULL, 0, 0}};

int cmd_register_postproc(int argc, char **argv)
{
    return steps_cli_register("register-postproc", usage_text, options, 1, argc, argv);
}
