/* steps_internal.h - what the steps' modules share (not public).
 *
 *   settings.c         the operator's INI file
 *   launch.c           step 1: science and reference jobs
 *   postproc_launch.c  step 3: post-processing jobs
 *   executor_local.c   running jobs as child processes
 *   executor_slurm.c   submitting them to Slurm, waiting, their states
 *   register.c         steps 2 and 4
 *   manifest_read.c    a job's job.log and manifest.json, read back
 *   summary.c          a processing date's state
 *   steps_files.c      directories, configuration files written atomically
 */
#ifndef RAPID_STEPS_INTERNAL_H
#define RAPID_STEPS_INTERNAL_H

#include <stdint.h>

#include "rapid/db.h"
#include "rapid/refimmeta.h"
#include "rapid/steps.h"

#define STEPS_PATH RAPID_STEPS_PATH_MAX
/* Files a post-processing job stamps: up to 6 per method and 5 of a
 * reference built by the science job, with room to spare. */
#define STEPS_MAX_STAMPED 64

/* A product as a manifest lists it. */
typedef struct steps_file {
    char path[STEPS_PATH];
    int64_t size;
    char md5[33];
} steps_file;

typedef struct steps_diff {
    char method[16];
    int method_id;
    int ok;                    /* status "ok" */
    steps_file diff, catalog;  /* diff.path "" when absent */
    rapid_diffimmeta meta;
    double ra[5], dec[5];
    int infobitssci, infobitsref;
    int64_t ncand, npass;
} steps_diff;

typedef struct steps_stamped {
    char kind[16];             /* "diff", "unc", ..., "refimage",
                                * "refcatalog", ... */
    char method[16];
    int64_t id;                /* pid or rfid */
    steps_file f;
} steps_stamped;

/* What registration reads from a manifest. */
typedef struct steps_manifest {
    int64_t jid;
    int ppid, exitcode;
    double started, ended;     /* seconds since 1970; NaN when absent */
    char gitcommit[64], version[64];
    int64_t rid;               /* science; 0 when absent */
    char ref_source[16];       /* "existing", "job", "built" or "" */
    int64_t rfid, refjid, field;
    int fid;
    int64_t inputs[64];
    int ninputs;
    int has_refmeta;
    rapid_refimmeta refmeta;
    steps_file refimage, refcatalog; /* path "" when absent */
    steps_diff diffs[3];
    int ndiffs;
    int64_t scijid;            /* post-processing */
    steps_stamped stamped[STEPS_MAX_STAMPED];
    int nstamped;
} steps_manifest;

/* Read DIR/manifest.json and check it: the fields registration needs and
 * every listed product present with its size.  RAPID_E_NOENT when there
 * is no manifest, RAPID_E_ARG when it is corrupt or a product is missing
 * or of another size (the message says which). */
int steps_read_manifest(const char *dir, steps_manifest *m, rapid_err *err);

/* A job's state as its directory shows it. */
typedef enum steps_outcome {
    STEPS_UNFINISHED = 0, /* no log or no terminating line */
    STEPS_ENDED_OK,       /* 0-31 and a good manifest (in m) */
    STEPS_ENDED_FAILED,   /* >= 32 */
    STEPS_BAD_MANIFEST    /* 0-31, manifest missing or wrong (why in err) */
} steps_outcome;

steps_outcome steps_job_outcome(const char *dir, steps_manifest *m,
                                int *code, rapid_err *why);

/* Keep job j as it is (launch, postproc): it was started for this
 * processing date and neither interrupted (70) nor failed with
 * s->retry_failed set. */
int steps_keep_job(const rapid_steps *s, const rapid_job *j);

/* A job started again: the log and manifest of its earlier run on this
 * date go (before the start commits), so that neither the executor nor
 * registration takes them for this run's. */
int steps_clear_job(const rapid_steps *s, int64_t jid, rapid_err *err);

/* Create a directory and its parents (mode 0777 less umask). */
int steps_mkdirs(const char *path, rapid_err *err);
/* Write text to path whole or not at all: a temporary file beside it,
 * fsync, rename. */
int steps_write_file(const char *path, const char *text, rapid_err *err);
/* The same without the fsync: for a step that writes many files and then
 * makes them all durable at once with steps_sync_work before it commits
 * the transaction that says they exist (one sync instead of one a file). */
int steps_write_file_unsynced(const char *path, const char *text,
                              rapid_err *err);
/* Everything written on the work directory's filesystem to disk (syncfs):
 * file contents, renames and new directories. */
int steps_sync_work(const rapid_steps *s, rapid_err *err);

/* A growing text. */
typedef struct steps_text {
    char *s;
    size_t n, cap;
    int nomem;
} steps_text;

void steps_printf(steps_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void steps_text_free(steps_text *t);

/* The [diff] and [cuts] sections of a science or reference job. */
void steps_config_settings(steps_text *t, const rapid_steps_settings *set);

/* The directory of a job's executor lock: WORK/jobs/<procdate>/executor.lock,
 * held by the local executor and its jobs while they run. */
int steps_lock_path(char *out, size_t outsz, const rapid_steps *s);
/* 1 when some process holds the executor lock of s->procdate. */
int steps_jobs_running(const rapid_steps *s);

/* The reference job a science job's configuration names; 0: none. */
int64_t steps_config_refjid(const char *config);

/* What Slurm says of a job it was given (its id "arrayid_task"). */
typedef enum steps_slurm_state {
    STEPS_SLURM_UNKNOWN = 0, /* Slurm could not be asked */
    STEPS_SLURM_ACTIVE,      /* pending, running, completing, suspended */
    STEPS_SLURM_COMPLETED,   /* its script ended 0 */
    STEPS_SLURM_ENDED,       /* any other end: CANCELLED, TIMEOUT, ... */
    STEPS_SLURM_GONE         /* neither in the queue nor in the job-
                              * completion file */
} steps_slurm_state;

typedef struct steps_slurm_job {
    int64_t jid;
    char id[32];             /* "arrayid_task" */
    steps_slurm_state state;
    char name[24];           /* Slurm's state ("CANCELLED"), or "" */
    int from_file;           /* the state came from the completion file */
} steps_slurm_job;

/* Run argv (found on PATH) with stdout and stderr into out; *status its
 * exit status.  An error when it cannot be run (127: not found). */
int steps_run_capture(char *const argv[], steps_text *out, int *status,
                      rapid_err *err);
/* The last line of out (trailing blanks cut), for a message. */
const char *steps_last_line(steps_text *out);

/* The state of each of v[0..n-1]: squeue for the jobs Slurm still knows
 * (pending, running, and ended for MinJobAge), then the job-completion
 * file (jobcomp/filetxt) for the others.  On failure (squeue cannot run,
 * the controller does not answer) the states are STEPS_SLURM_UNKNOWN and
 * err says why.  A job with no id, or a submission's mark, is
 * STEPS_SLURM_UNKNOWN. */
int steps_slurm_query(steps_slurm_job *v, int n, rapid_err *err);

/* A job's row holds "@TOKEN_i" from just before the sbatch of its array
 * (comment "rapid:TOKEN") until its Slurm id replaces it. */
#define STEPS_SLURM_MARK '@'
/* "ref", "sci" or "post": the kind of job of ppid, in Slurm's job names
 * (rapid-<procdate>-<kind>) and the list files. */
const char *steps_slurm_kind(int ppid);
/* The arrays of procdate Slurm still has (squeue -t all) for the jobs of
 * v[0..n-1] whose id is a submission's mark: the id becomes the task's
 * "arrayid_i" when Slurm has the array, "" when it does not (then no task
 * of it is pending or running).  Other ids are left as they are.  An
 * error when squeue cannot be asked (the ids are then unchanged). */
int steps_slurm_resolve(steps_slurm_job *v, int n, int procdate,
                        rapid_err *err);

/* Slurm's view of the jobs of a registration that have a Slurm id and no
 * complete log (or one that says 70), taken before registration reads
 * their directories: a job Slurm ended has its log by then. */
typedef struct steps_slurm_view {
    steps_slurm_job *v;      /* by jid */
    int n;
    int failed;              /* Slurm could not be asked: why */
    rapid_err why;
} steps_slurm_view;

int steps_slurm_view_load(steps_slurm_view *sv, const rapid_steps *s,
                          const rapid_job *jobs, int n, int postproc,
                          rapid_err *err);
void steps_slurm_view_free(steps_slurm_view *sv);
/* Registration's verdict on Slurm job j, whose directory shows out and
 * *code: 1 leave it alone (Slurm still has it, or cannot say); else 0
 * with *code the job's end (80 gone without a last line, 82 ended by
 * Slurm before it, or *code unchanged) and why filled for 80 and 82. */
int steps_slurm_verdict(const steps_slurm_view *sv, const rapid_job *j,
                        steps_outcome out, int *code, rapid_err *why);

/* Report one line about a job on s->msg. */
void steps_say(const rapid_steps *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
