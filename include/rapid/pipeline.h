/* rapid/pipeline.h - what the science job and the four steps agree on:
 * the pipeline ids, the job exit codes and where a job's files are
 * (docs/pipeline.md). */
#ifndef RAPID_PIPELINE_H
#define RAPID_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RAPID_PPID_REFERENCE = 12, /* stand-alone reference image */
    RAPID_PPID_SCIENCE = 15,
    RAPID_PPID_POSTPROC = 17
};

enum {
    RAPID_EXIT_OK = 0,
    RAPID_EXIT_METHOD_FAILED = 4,
    RAPID_EXIT_NO_REFERENCE = 33,
    RAPID_EXIT_NOT_COVERED = 34, /* the reference does not cover the image */
    RAPID_EXIT_FAILED = 64,
    RAPID_EXIT_CONFIG = 65,
    RAPID_EXIT_INPUT = 66,
    RAPID_EXIT_REFERENCE = 67,
    RAPID_EXIT_DIFF = 68,
    RAPID_EXIT_WRITE = 69,
    RAPID_EXIT_INTERRUPTED = 70,
    RAPID_EXIT_REFJOB_FAILED = 71,
    RAPID_EXIT_LOST = 80,
    RAPID_EXIT_BADMANIFEST = 81,
    RAPID_EXIT_KILLED = 82     /* registration: Slurm ended the job (cancelled,
                                * time limit, node failure, out of memory)
                                * before its log's last line */
};

/* The job's configuration file: WORK/jobs/<procdate>/jid<jid>.ini. */
int rapid_job_config_path(char *out, size_t outsz, const char *work,
                          int procdate, int64_t jid);
/* The job's product directory: WORK/products/<procdate>/jid<jid>. */
int rapid_job_dir(char *out, size_t outsz, const char *work, int procdate,
                  int64_t jid);

#define RAPID_JOB_MANIFEST "manifest.json"
#define RAPID_JOB_LOG "job.log"

#ifdef __cplusplus
}
#endif
#endif
