/* cmd_status.c - `rapid status`: a processing date's jobs and products
 * (docs/operations.md). */
#include <stdio.h>
#include <string.h>

#include "rapid/eval.h"
#include "steps_cli.h"

static const char usage_text[] =
    "usage: rapid status [--procdate YYYYMMDD] [--json] [options]\n"
    "\n"
    "The state of a processing date (docs/operations.md): its jobs by\n"
    "pipeline and exit code from the database, those not ended, the\n"
    "reference and difference images made and the candidates found and\n"
    "passing the cuts (from the registered jobs' manifests), and the failed\n"
    "jobs with their logs.  Text on stdout, or one JSON object with --json.\n"
    "On simulated data, --truth says how many of the simulator's supernovae\n"
    "each difference method found among its passing candidates.\n"
    "\n" STEPS_COMMON_HELP
    "  --json            one JSON object on stdout\n"
    "  --truth SIMDIR    the `rapid sim` directory the images came from: its\n"
    "                    supernovae brighter than --truth-mag on the science\n"
    "                    jobs' difference images (where they have data, more\n"
    "                    than 5 px from an edge: sources cut by the edge are\n"
    "                    not expected to pass the cuts), and\n"
    "                    those within 1 px of a passing candidate\n"
    "  --truth-mag M     the magnitude limit for --truth (25); with --json its\n"
    "                    figures are a second JSON object, on a line of its own\n"
    "\n"
    "Exit status: 0 done, 1 the database failed, 2 bad usage.\n";

enum { OPT_TRUTH = 1, OPT_TRUTH_MAG };

static const cli_option options[] = {STEPS_COMMON_OPTIONS, STEPS_JSON_OPTION,
                                     {"--truth", NULL, 1, OPT_TRUTH},
                                     {"--truth-mag", NULL, 1, OPT_TRUTH_MAG},
                                     {NULL, NULL, 0, 0}};

/* The supernovae found, as text lines or one JSON object. */
static int truth(const rapid_steps *s, const char *simdir, double mag, int json)
{
    rapid_eval_found f[RAPID_EVAL_NMETHOD];
    rapid_err err = RAPID_ERR_INIT;
    int m, first = 1;

    if (rapid_eval_found_supernovae(s->work, s->procdate, simdir, mag, f, &err) != 0)
        return cli_fail("status", &err);
    if (json)
        printf("{\"truth\": {\"simdir\": \"%s\", \"mag_max\": %g, \"methods\": {", simdir, mag);
    else
        printf("the simulator's supernovae brighter than %g mag on the difference images:\n",
               mag);
    for (m = 0; m < RAPID_EVAL_NMETHOD; m++) {
        if (f[m].n_images == 0)
            continue;
        if (json)
            printf("%s\"%s\": {\"images\": %d, \"supernovae\": %ld, \"found\": %ld, "
                   "\"passing\": %ld}", first ? "" : ", ", f[m].method, f[m].n_images,
                   f[m].n_truth, f[m].n_found, f[m].n_pass);
        else
            printf("  %-6s %ld of %ld found (%d images, %ld passing candidates)\n",
                   f[m].method, f[m].n_found, f[m].n_truth, f[m].n_images, f[m].n_pass);
        first = 0;
    }
    if (json)
        printf("}}}\n");
    return 0;
}

int cmd_status(int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_steps_summary sum;
    rapid_steps s;
    steps_cli c;
    const char *simdir = NULL;
    double mag = 25;
    int rc = 0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    steps_cli_init(&c, "status");
    {
        cli_parser p;
        int id;
        double v;
        cli_parser_init(&p, "status", options, argc, argv);
        while (rc == 0 && (id = cli_next(&p)) != CLI_END) {
            if (id == CLI_OPERAND)
                rc = cli_usage("status", "unexpected argument '%s'", p.value);
            else if (id == CLI_BAD)
                rc = EXIT_USAGE;
            else if (id == OPT_TRUTH)
                simdir = p.value;
            else if (id == OPT_TRUTH_MAG) {
                if (cli_parse_double(p.value, &v) || v < 10 || v > 40)
                    rc = cli_usage("status", "invalid --truth-mag '%s': a magnitude in "
                                   "10 .. 40", p.value);
                else
                    mag = v;
            } else
                rc = steps_cli_option(&c, &p, id);
        }
    }
    if (rc != 0 || (rc = steps_cli_setup(&c, &s, 0)) != 0)
        return rc;
    if (rapid_steps_summarize(&s, &sum, &err) != 0)
        rc = cli_fail("status", &err);
    else
        steps_cli_summary(&s, &sum, NULL, c.json);
    if (rc == 0 && simdir)
        rc = truth(&s, simdir, mag, c.json);
    steps_cli_release(&s);
    return rc;
}
