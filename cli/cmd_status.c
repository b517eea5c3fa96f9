/* cmd_status.c - `rapid status`: a processing date's jobs and products
 * (docs/operations.md). */
#include <stdio.h>

#include "steps_cli.h"

static const char usage_text[] =
    "usage: rapid status [--procdate YYYYMMDD] [--json] [options]\n"
    "\n"
    "The state of a processing date (docs/operations.md): its jobs by\n"
    "pipeline and exit code from the database, those not ended, the\n"
    "reference and difference images made and the candidates found and\n"
    "passing the cuts (from the registered jobs' manifests), and the failed\n"
    "jobs with their logs.  Text on stdout, or one JSON object with --json.\n"
    "\n" STEPS_COMMON_HELP
    "  --json            one JSON object on stdout\n"
    "\n"
    "Exit status: 0 done, 1 the database failed, 2 bad usage.\n";

static const cli_option options[] = {STEPS_COMMON_OPTIONS, STEPS_JSON_OPTION,
                                     {NULL, NULL, 0, 0}};

int cmd_status(int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_steps_summary sum;
    rapid_steps s;
    steps_cli c;
    int rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    steps_cli_init(&c, "status");
    if ((rc = steps_cli_parse(&c, options, argc, argv)) != 0 ||
        (rc = steps_cli_setup(&c, &s, 0)) != 0)
        return rc;
    if (rapid_steps_summarize(&s, &sum, &err) != 0)
        rc = cli_fail("status", &err);
    else
        steps_cli_summary(&s, &sum, NULL, c.json);
    steps_cli_release(&s);
    return rc;
}
