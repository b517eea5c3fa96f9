/* rapid/job.h - the jobs the pipeline runs without a database: the science
 * job (ppid 15: SPEC's steps 1-10, a reference image built, taken from a
 * reference job or as registered, then every difference method and its
 * candidates), the reference job (ppid 12: step 1 alone) and the
 * post-processing job (ppid 17: the products stamped with their database
 * ids).  docs/pipeline.md describes the configuration, the products, the
 * manifest and the log; rapid/pipeline.h the exit codes and paths.
 *
 * A job reads its INI configuration, empties its product directory
 * (`out`) of an earlier run, writes its products, manifest.json and
 * job.log there as one product set (rapid/prodset.h: all or nothing,
 * even under SIGKILL), and returns its terminating exit code; job.log's
 * last line is "terminating_exitcode = N".
 */
#ifndef RAPID_JOB_H
#define RAPID_JOB_H

#include <signal.h>
#include <stdint.h>

#include "rapid/candidates.h"
#include "rapid/diffrun.h"
#include "rapid/error.h"
#include "rapid/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a job's reference image comes from ([reference] source). */
enum {
    RAPID_REFSRC_EXISTING = 1, /* a registered reference image: its file */
    RAPID_REFSRC_JOB = 2,      /* made by a reference job: its directory */
    RAPID_REFSRC_BUILD = 3     /* built in this job from input L2 images */
};

/* One input of a reference image to build ([reference] input.N.*). */
typedef struct rapid_job_input {
    int64_t rid;
    char *image;               /* the L2 file */
    char *psf;                 /* its PSF file; NULL: found beside it */
} rapid_job_input;

/* A job's configuration (docs/pipeline.md), strings allocated. */
typedef struct rapid_job_config {
    char *path;                /* the file read */
    /* [job] */
    int64_t jid;
    int ppid;                  /* RAPID_PPID_SCIENCE, _REFERENCE, _POSTPROC */
    int procdate;              /* yyyymmdd */
    char *out;                 /* the product directory */
    int threads;               /* (1) */
    /* [science] (ppid 15) */
    int has_science;
    int64_t rid, expid, field;
    int sca, fid;
    char *filter, *image, *psf; /* psf NULL: found beside the image */
    /* [reference] (ppid 15 and 12) */
    int has_reference;
    int ref_source;            /* RAPID_REFSRC_* */
    int64_t rfid;              /* existing */
    char *ref_image;           /* existing: the reference image file */
    int64_t refjid;            /* job */
    char *ref_dir;             /* job: its product directory */
    int64_t ref_field;         /* build: the tile (rtid) */
    char *ref_filter;          /* build */
    int ref_fid;
    int ref_size;              /* build: grid side, px (7000) */
    int ninputs;
    rapid_job_input *inputs;   /* build: ninputs of them */
    /* [diff] */
    int methods[RAPID_DIFFRUN_NMETHOD]; /* (all) */
    int sfft_order;            /* -1: the method's default */
    int kernel_half_width;     /* -1: the method's default */
    /* [cuts] */
    rapid_cuts cuts;
    /* [postproc] (ppid 17) */
    int has_postproc;
    int64_t scijid;
    char *pp_dir;              /* the science job's product directory */
    int64_t pp_rid, pp_expid, pp_field, pp_rfid;
    int pp_fid;
    int64_t pid[RAPID_DIFFRUN_NMETHOD];     /* 0: not registered */
    int version[RAPID_DIFFRUN_NMETHOD];
    int refversion;
} rapid_job_config;

void rapid_job_config_init(rapid_job_config *c);
void rapid_job_config_release(rapid_job_config *c);

/* Read path into c (initialised).  Errors (RAPID_E_ARG unless the file
 * cannot be read) name the file, the line and the key: an unknown section
 * or key, a value that is not a number, a key missing for the job's ppid.
 * What was read before an error stays in c (c->out, for the log). */
int rapid_job_config_read(rapid_job_config *c, const char *path,
                          rapid_err *err);

/* The product directory of the job whose configuration is at path
 * WORK/jobs/<procdate>/jid<jid>.ini: WORK/products/<procdate>/jid<jid>
 * (for a configuration too broken to say `out`).  0, or -1 when path is
 * not of that form or out is too small. */
int rapid_job_dir_of_config(const char *path, char *out, size_t outsz);

/* What a job is run with. */
typedef struct rapid_job_opts {
    /* set (non-zero) by the caller's SIGINT/SIGTERM handler: the job
     * stops at its next step, or inside the coadd, the catalogs, the
     * pair's preparation, ZOGY and the kernel fit (docs/pipeline.md),
     * writes nothing but its log, and returns
     * RAPID_EXIT_INTERRUPTED; NULL: not interruptible */
    volatile sig_atomic_t *stop;
    /* FFTW wisdom file (rapid/diffrun.h); NULL: $RAPID_WORK/fftw.wisdom
     * when RAPID_WORK is set, else WORK/fftw.wisdom when out is
     * WORK/products/<procdate>/jid<jid>, else none */
    const char *wisdom;
    int quiet;                 /* 1: the log's lines not echoed on stderr */
} rapid_job_opts;

void rapid_job_opts_init(rapid_job_opts *o);

/* The science job (ppid 15) or the reference job (ppid 12) of the
 * configuration at path: returns its terminating exit code
 * (RAPID_EXIT_*; RAPID_EXIT_CONFIG for a post-processing
 * configuration). */
int rapid_job_run(const char *path, const rapid_job_opts *o);

/* The post-processing job (ppid 17) of the configuration at path: a copy
 * of every FITS product of the science job's manifest with the database
 * ids stamped (PID, RID, RFID, EXPID, FID, FIELD, the versions, PRODLOC,
 * DATE) and CHECKSUM/DATASUM, into its own directory.  Returns its
 * terminating exit code. */
int rapid_postproc_job_run(const char *path, const rapid_job_opts *o);

/* The terminating exit code of a job's log (the file job.log): 0 and *code
 * set when its last line is "terminating_exitcode = N"; RAPID_E_NOENT when
 * there is no log, RAPID_E_ARG when its last line is not that (a job killed). */
int rapid_job_log_exitcode(const char *logpath, int *code, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
