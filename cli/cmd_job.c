/* cmd_job.c - `rapid job CONFIG`: a science or reference job, run from its
 * configuration without the database (docs/pipeline.md). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cli.h"
#include "rapid/job.h"

static const char usage_text[] =
    "usage: rapid job [--quiet] CONFIG\n"
    "\n"
    "Run the job of the configuration file CONFIG (written by rapid launch;\n"
    "docs/pipeline.md lists its keys): a science job (ppid 15) makes or takes\n"
    "its reference image, subtracts it from the science image by every method\n"
    "configured (ZOGY, the kernel fit, naive) and finds the candidates of each\n"
    "difference; a reference job (ppid 12) builds the reference image alone.\n"
    "The job never opens the database.  Its products, manifest.json and\n"
    "job.log are written to the directory `out` of the configuration, all at\n"
    "once (an interrupted or killed job leaves no products); the log's last\n"
    "line is \"terminating_exitcode = N\".  Log lines are also written to\n"
    "stderr.  SIGINT or SIGTERM stops the job at its next step, or inside\n"
    "the coadd, the reference's catalog, ZOGY and the kernel fit (exit 70;\n"
    "docs/pipeline.md); a second signal ends it at once.\n"
    "\n"
    "  --quiet            the log's lines not echoed on stderr\n"
    "\n"
    "Exit status: 0 every method succeeded, 4 one failed and another\n"
    "succeeded, 64 failed, 65 the configuration is unreadable or wrong,\n"
    "66 an input is missing or unreadable, 67 the reference image could not\n"
    "be made, 68 the pair could not be prepared or every method failed,\n"
    "69 the products could not be written, 70 interrupted, 71 the reference\n"
    "job failed (docs/exit-codes.md); 2 bad usage (no CONFIG, an unknown\n"
    "option).\n";

enum { OPT_QUIET = 1 };

static const cli_option options[] = {
    {"--quiet", "-q", 0, OPT_QUIET},
    {NULL, NULL, 0, 0},
};

int cli_run_job(const char *cmd, const char *usage, int argc, char **argv,
                int (*fn)(const char *, const rapid_job_opts *))
{
    rapid_job_opts o;
    cli_parser p;
    const char *config = NULL;
    int id;

    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    rapid_job_opts_init(&o);
    cli_parser_init(&p, cmd, options, argc, argv);
    while ((id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_QUIET:
            o.quiet = 1;
            break;
        case CLI_OPERAND:
            if (config)
                return cli_usage(cmd, "one configuration file, not '%s' too "
                                 "(see rapid %s --help)", p.value, cmd);
            config = p.value;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (!config || !config[0])
        return cli_usage(cmd, "no configuration file (see rapid %s --help)", cmd);
    o.stop = cli_stop_on_signals();
    return fn(config, &o);
}

/* The job's image-sized buffers that are not big blocks (bigmem.h) are
 * malloc'd, many above glibc's mmap threshold: each a fresh mapping,
 * faulted in 4 kB at a time and given back when freed, then fresh again
 * for the next (on a virtual machine, fresh memory costs several times
 * what clearing it does).  So everything from one heap (one arena, no
 * mmap'd chunks) that is never trimmed: freed memory serves the next
 * buffers already faulted in.  Before any thread: the arena count holds
 * from the first allocation of each. */
static void malloc_settings(void)
{
#if defined(__GLIBC__)
    (void)mallopt(M_ARENA_MAX, 1);
    (void)mallopt(M_MMAP_MAX, 0);
    (void)mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

int cmd_job(int argc, char **argv)
{
    malloc_settings();
    return cli_run_job("job", usage_text, argc, argv, rapid_job_run);
}
