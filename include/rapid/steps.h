/* rapid/steps.h - the four steps of a processing night and the operator
 * that runs them (docs/operations.md):
 *
 *   1. launch            science jobs (ppid 15) of an observation range,
 *                        one reference job (ppid 12) per tile that needs a
 *                        reference image;
 *   2. register          the jobs' products, each job exactly once;
 *   3. postproc          post-processing jobs (ppid 17) of the science
 *                        jobs that ended 0-31;
 *   4. register-postproc their new file names, each job exactly once;
 *
 * and the executors that run the jobs: the local one (child processes)
 * and Slurm's (job arrays on a cluster with a shared filesystem).  Jobs
 * never touch the database: they read the configuration file a step wrote
 * and leave products, manifest.json and job.log in their directory
 * (rapid/pipeline.h says where).
 *
 * Every step can be killed at any point and run again: a job is started
 * in the database once per processing date (a re-run keeps it), a job
 * whose directory holds a complete log is not run again, and a job is
 * registered in one transaction that ends it, so it is registered once.
 */
#ifndef RAPID_STEPS_H
#define RAPID_STEPS_H

#include <stdint.h>
#include <stdio.h>

#include "rapid/db.h"
#include "rapid/error.h"
#include "rapid/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_STEPS_PATH_MAX 1024
#define RAPID_STEPS_MAX_CUTS 32

/* The operator's settings: the INI file WORK/rapid.ini (or --config
 * FILE), keys in docs/configuration.md.  Defaults in brackets. */
typedef struct rapid_steps_settings {
    /* [launch] */
    int ref_min_inputs;      /* fewer prior images: exit 33, not run [3] */
    int ref_max_inputs;      /* nearest the tile centre first [25] */
    int ref_size;            /* reference image side, pixels [7000] */
    /* [diff] */
    char methods[64];        /* comma-separated, in order [zogy,sfft,naive] */
    int sfft_order;          /* [2] */
    int kernel_half_width;   /* [9] */
    /* [cuts]: copied into every science job's configuration */
    int ncuts;
    char cut_key[RAPID_STEPS_MAX_CUTS][32];
    char cut_value[RAPID_STEPS_MAX_CUTS][64];
    /* [executor] */
    char executor[16];       /* "local", "slurm" or "none" [local] */
    int jobs;                /* jobs at once; 0: the number of CPUs [0] */
    int threads;             /* threads of each job [1] */
    /* [slurm]: what each job asks of Slurm ("": the cluster's default) */
    char slurm_partition[64];
    int slurm_cpus;          /* --cpus-per-task; 0: threads [0] */
    char slurm_mem[32];      /* --mem, e.g. "4G" [""] */
    char slurm_time[32];     /* --time, e.g. "30:00" [""] */
    char slurm_extra[256];   /* more sbatch arguments, split on blanks [""] */
    int slurm_array_max;     /* jobs per array (per sbatch) [1000] */
    int slurm_poll;          /* seconds between looks at the queue [5] */
} rapid_steps_settings;

void rapid_steps_settings_init(rapid_steps_settings *s);
/* Read an operator INI file over s: keys not given keep their values.
 * Unknown sections or keys, bad values and unreadable files are
 * RAPID_E_ARG / RAPID_E_IO naming the file and line. */
int rapid_steps_settings_read(rapid_steps_settings *s, const char *path,
                              rapid_err *err);

/* Called as jobs end or are registered: done of total in step ("jobs",
 * "post-processing", "registration", "post-processing registration"). */
typedef void (*rapid_steps_progress_fn)(const char *step, int done, int total,
                                        void *arg);

/* What the steps work on; the caller owns db and fills the rest. */
typedef struct rapid_steps {
    rapid_db *db;
    char work[RAPID_STEPS_PATH_MAX]; /* absolute work directory */
    int procdate;                    /* yyyymmdd */
    double start, end;               /* launch: observations in [start,
                                      * end), seconds since 1970 UTC */
    rapid_steps_settings set;
    int retry_failed;                /* launch / postproc again the jobs of
                                      * procdate that ended >= 32 */
    const char *job_cmd;             /* program run for a job; NULL: this
                                      * one (/proc/self/exe) */
    rapid_steps_progress_fn progress;
    void *progress_arg;
    FILE *msg;                       /* one line per job reported (failed,
                                      * lost, bad manifest); may be NULL */
} rapid_steps;

void rapid_steps_init(rapid_steps *s);

/* What a step did (counts of jobs unless said). */
typedef struct rapid_step_report {
    int started;        /* launch/postproc: jobs started now */
    int refjobs;        /* launch: reference jobs among them */
    int kept;           /* launch/postproc: already started this date */
    int noref;          /* launch: ended at once with 33 */
    int ran;            /* executor: jobs run (Slurm: submitted) */
    int queued;         /* Slurm executor: in Slurm already, waited for */
    int arrays;         /* Slurm executor: sbatch --array calls */
    int blocked;        /* executor: not run, their reference job failed */
    int registered;     /* register: jobs whose products were registered */
    int ended_failed;   /* register: ended with their own code >= 32 */
    int lost;           /* register: ended 80 */
    int killed;         /* register: ended 82 (Slurm ended the job) */
    int badmanifest;    /* register: ended 81 */
    int running;        /* register: left alone, still running */
    int dberrors;       /* register: not registered for a database error */
    int refimages;      /* register: reference images added */
    int diffimages;     /* register: difference images added */
    int files;          /* register-postproc: files recorded */
} rapid_step_report;

/* Step 1: start the jobs of s->start .. s->end and write their
 * configurations.  Run them with rapid_steps_execute. */
int rapid_steps_launch(rapid_steps *s, rapid_step_report *r, rapid_err *err);
/* Step 3: start the post-processing jobs and write their configurations. */
int rapid_steps_postproc(rapid_steps *s, rapid_step_report *r,
                         rapid_err *err);
/* The local executor: run the started, unended jobs of s->procdate whose
 * directory has no complete log - science and reference jobs
 * (postproc 0) or post-processing jobs (postproc 1) - at most
 * s->set.jobs at once, reference jobs first, and wait for them. */
int rapid_steps_execute(rapid_steps *s, int postproc, rapid_step_report *r,
                        rapid_err *err);
/* The Slurm executor (docs/operations.md, "A night on a Slurm cluster"):
 * submit the started, unended jobs of s->procdate - science and reference
 * jobs (postproc 0) or post-processing jobs (postproc 1) - that have no
 * complete log and are not in Slurm already, as job arrays of at most
 * s->set.slurm_array_max tasks (sbatch --array --no-requeue), science
 * jobs after their reference job (--dependency=afterany); store each
 * job's Slurm id ("arrayid_task") on its row.  With wait, then poll Slurm
 * until every submitted or queued job ended.  Slurm's commands (sbatch,
 * squeue, scontrol) are found on PATH and read SLURM_CONF. */
int rapid_steps_slurm(rapid_steps *s, int postproc, int wait,
                      rapid_step_report *r, rapid_err *err);

/* Steps 2 and 4: register the unended jobs of s->procdate.  A job's
 * failure is reported on s->msg and counted, not returned: the return is
 * an error only when the database cannot be used.  s->progress is called
 * after each job, once its transaction is over. */
int rapid_steps_register(rapid_steps *s, int postproc, rapid_step_report *r,
                         rapid_err *err);

/* A processing date's state, from the database and the registered jobs'
 * manifests. */
typedef struct rapid_steps_summary {
    int njobs[3];           /* by pipeline: reference, science, postproc */
    int unended[3];
    int by_exit[3][256];    /* ended jobs by exit code (255: >= 255) */
    int refimages;          /* reference images made (ended 0-31) */
    int diffimages;         /* difference images made */
    int64_t candidates;     /* candidates found (manifests' ncand) */
    int64_t passing;        /* candidates passing the cuts (npass) */
    int nfailed;            /* jobs that ended >= 32 */
    struct {
        int64_t jid;
        int ppid, exitcode;
    } failed[64];           /* the first 64 of them */
} rapid_steps_summary;

int rapid_steps_summarize(rapid_steps *s, rapid_steps_summary *sum,
                          rapid_err *err);

/* The last line of a job's log: 0 with *code the job's exit code when it
 * is "terminating_exitcode = N", RAPID_E_NOENT when the log is missing or
 * has no such last line. */
int rapid_steps_log_exitcode(const char *dir, int *code, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
