/* cmd_postproc_job.c - `rapid postproc-job CONFIG`: a post-processing job
 * (ppid 17), run from its configuration without the database
 * (docs/pipeline.md). */
#include <stdio.h>

#include "cli.h"
#include "rapid/job.h"

static const char postproc_usage_text[] =
    "usage: rapid postproc-job [--quiet] CONFIG\n"
    "\n"
    "Run the post-processing job (ppid 17) of the configuration file CONFIG\n"
    "(written by rapid postproc; docs/pipeline.md): a copy of every FITS\n"
    "product of the science job's manifest, with the database ids stamped in\n"
    "its headers (PID, RID, RFID, EXPID, FID, FIELD, the versions, PRODLOC,\n"
    "DATE) and FITS CHECKSUM/DATASUM, written with its MD5 and a manifest\n"
    "into the directory `out` of the configuration, all at once.  The\n"
    "job never opens the database; job.log's last line is\n"
    "\"terminating_exitcode = N\".\n"
    "\n"
    "  --quiet            the log's lines not echoed on stderr\n"
    "\n"
    "Exit status: 0 done, 64 failed, 65 the configuration is unreadable or\n"
    "wrong, 66 the science job's manifest or a product is missing or\n"
    "unreadable, 69 the copies could not be written, 70 interrupted\n"
    "(docs/exit-codes.md); 2 bad usage (no CONFIG, an unknown option).\n";

int cmd_postproc_job(int argc, char **argv)
{
    return cli_run_job("postproc-job", postproc_usage_text, argc, argv,
               rapid_postproc_job_run);
}
