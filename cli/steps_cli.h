/* steps_cli.h - what the step commands (launch, register, postproc,
 * register-postproc, run, status) share: their common options, the work
 * directory, the database, the operator's settings. */
#ifndef RAPID_STEPS_CLI_H
#define RAPID_STEPS_CLI_H

#include "cli.h"
#include "rapid/steps.h"

/* Option ids 100.. are the common ones; a command's own start at 1. */
enum {
    STEPS_OPT_DB = 100, STEPS_OPT_WORK, STEPS_OPT_START, STEPS_OPT_END,
    STEPS_OPT_PROCDATE, STEPS_OPT_EXECUTOR, STEPS_OPT_JOBS, STEPS_OPT_CONFIG,
    STEPS_OPT_RETRY, STEPS_OPT_JSON, STEPS_OPT_WAIT
};

#define STEPS_COMMON_OPTIONS                                                 \
    {"--db", NULL, 1, STEPS_OPT_DB}, {"--work", NULL, 1, STEPS_OPT_WORK},     \
    {"--start", NULL, 1, STEPS_OPT_START}, {"--end", NULL, 1, STEPS_OPT_END}, \
    {"--procdate", NULL, 1, STEPS_OPT_PROCDATE},                             \
    {"--executor", NULL, 1, STEPS_OPT_EXECUTOR},                             \
    {"--jobs", NULL, 1, STEPS_OPT_JOBS},                                     \
    {"--config", NULL, 1, STEPS_OPT_CONFIG}

#define STEPS_RETRY_OPTION {"--retry-failed", NULL, 0, STEPS_OPT_RETRY}
#define STEPS_JSON_OPTION {"--json", NULL, 0, STEPS_OPT_JSON}
#define STEPS_WAIT_OPTION {"--wait", NULL, 0, STEPS_OPT_WAIT}

/* The common options' help text. */
#define STEPS_COMMON_HELP                                                    \
    "  --db URL          the database (default: $RAPID_DB, else\n"            \
    "                    sqlite:WORK/rapid.db)\n"                             \
    "  --work DIR        the work directory (default: $RAPID_WORK, else\n"    \
    "                    ./work)\n"                                           \
    "  --start TIME, --end TIME  the observations [start, end) to launch\n"   \
    "                    (default: $STARTDATETIME, $ENDDATETIME), UTC\n"      \
    "                    \"YYYY-MM-DD[Thh:mm[:ss]]\"\n"                       \
    "  --procdate YYYYMMDD  the processing date (default: $JOBPROCDATE, else\n" \
    "                    today, UTC)\n"                                       \
    "  --executor local|slurm|none  run the jobs here, submit them to\n"  \
    "                    Slurm, or only write them (local)\n"                 \
    "  --jobs N          jobs at once (default: the CPUs / threads per job)\n" \
    "  --config FILE     operator settings (default: WORK/rapid.ini when it\n" \
    "                    exists; docs/configuration.md)\n"

typedef struct steps_cli {
    const char *cmd;
    const char *db, *work, *start, *end, *procdate, *executor, *config;
    int jobs;            /* -1: not given */
    int retry_failed, json, wait;
} steps_cli;

/* Parse argv with options (common and own, ending {NULL}): no operands.
 * 0, or EXIT_USAGE after saying why. */
int steps_cli_parse(steps_cli *c, const cli_option *options, int argc,
                    char **argv);

void steps_cli_init(steps_cli *c, const char *cmd);
/* A common option's value: 0, or EXIT_USAGE after saying why. */
int steps_cli_option(steps_cli *c, const cli_parser *p, int id);
/* Fill s from the options, the environment and the settings file, and
 * open the database: 0, or an exit status after saying why.  need_range:
 * --start and --end are required. */
int steps_cli_setup(steps_cli *c, rapid_steps *s, int need_range);
void steps_cli_release(rapid_steps *s);
/* Run the jobs launch or postproc started with the executor of s:
 * local (wait), slurm (submit; wait when asked) or none.  0, or
 * EXIT_WORK after saying why. */
/* The whole of `rapid launch` (postproc 0) and `rapid postproc` (1):
 * start the jobs, then run them with the executor.  options end {NULL}. */
int steps_cli_start(const char *cmd, const char *usage,
                    const cli_option *options, int postproc, int argc,
                    char **argv);
/* The whole of `rapid register` (postproc 0) and `rapid register-postproc`
 * (1). */
int steps_cli_register(const char *cmd, const char *usage,
                       const cli_option *options, int postproc, int argc,
                       char **argv);
int steps_cli_execute(const char *cmd, rapid_steps *s, int postproc,
                      int wait);
/* Print one step's report line on stderr. */
void steps_cli_report(const char *cmd, const char *step,
                      const rapid_step_report *r);
/* A progress callback: a bar on a terminal, else one line per change. */
void steps_cli_progress(const char *step, int done, int total, void *cmd);
/* The summary of a date: text on stderr, or JSON on stdout. */
void steps_cli_summary(const rapid_steps *s, const rapid_steps_summary *sum,
                       const double *seconds, int json);

#endif
