/* job_internal.h - the science job's state and the helpers of its steps
 * (job.c reads as the steps; job_steps.c holds what they share). */
#ifndef RAPID_PIPELINE_JOB_INTERNAL_H
#define RAPID_PIPELINE_JOB_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "pipeline/jobrun.h"
#include "rapid/coadd.h"
#include "rapid/diffrun.h"
#include "rapid/job.h"
#include "rapid/refimmeta.h"

/* The end of a reference built in the job, on threads of their own while
 * the difference goes on (which takes the planes from memory): the files
 * of the image, its maps and PSF on one, the catalog and its file on the
 * other, each file's size and MD5 (job_reference.c). */
typedef struct job_refend {
    pthread_t thread, wthread;  /* the catalog's, the files' */
    int pending;                /* built: job_reference_finish to come */
    int running, wrunning;      /* each thread started, not joined */
    rapid_coadd coadd;          /* its planes freed in job_reference_finish */
    char name[RAPID_COADD_NPRODUCT][256];
    char path[RAPID_COADD_NPRODUCT][4096];
    char md5[RAPID_COADD_NPRODUCT][33];
    int64_t size[RAPID_COADD_NPRODUCT];
    int code, wcode;            /* 0, or the exit code the catalog (code) or
                                 * the files (wcode) failed with */
    rapid_err err, werr;
    double seconds, wseconds;   /* each thread's time */
    volatile sig_atomic_t *stop; /* the job's stop flag (NULL: none) */
} job_refend;

/* The difference images, written (with their sizes and MD5s) on a thread
 * of their own while the candidates are made: into the set's directory
 * under the names they will have, added to the set and the manifest
 * after the candidates (job_steps.c). */
typedef struct job_wfile {
    int m, k;                   /* method, product kind */
    int added;                  /* added to the set */
    char name[RAPID_DIFFRUN_PATH];
    char path[4400];
    char md5[33];
    int64_t size;
} job_wfile;

typedef struct job_writer {
    pthread_t thread;
    int running;                /* the thread started, not joined */
    int n;                      /* files (0: none to write) */
    job_wfile f[RAPID_DIFFRUN_NPRODUCT];
    int rc;                     /* 0, or the status the writing failed with */
    rapid_err err;
    /* with the methods side by side (job_lanes), the writer starts before
     * them and takes each method's images once it is done: */
    int wait;                   /* 1: wait for done[] */
    int done[RAPID_DIFFRUN_NMETHOD];  /* the method ended (ok or not) */
    pthread_mutex_t lock;       /* done[] */
    pthread_cond_t cond;        /* signalled as a method ends */
} job_writer;

typedef struct job {
    rapid_job_config c;
    jobrun run;
    json_t *reference;          /* the manifest's "reference" */
    json_t *diffs;              /* its "diffs" */
    rapid_diffrun *diff;
    char ref[4096];             /* the reference image the difference reads */
    char ref_psf[4096], ref_cov[4096], ref_unc[4096]; /* "": beside it */
    char wisdom[4096];          /* "": none */
    rapid_table cat[RAPID_DIFFRUN_NMETHOD];  /* candidates per method */
    long npass[RAPID_DIFFRUN_NMETHOD];
    unsigned char *sat;         /* the science image's saturated pixels
                                 * (NULL: no DQ), read once for every
                                 * method's candidates */
    job_refend refend;
    job_writer writer;
    int laned;                  /* the methods and their candidates ran side
                                 * by side (job_lanes) */
} job;

/* Step 1, the reference image (job_reference.c): s->ref (and its PSF and
 * maps when not beside it) set, s->reference filled; 0 or the exit
 * code. */
int job_reference_existing(job *s);
int job_reference_from_job(job *s);
int job_reference_build(job *s);
/* The reference built: wait for the end of it (its catalog, made while the
 * difference ran), then its products and meta into the manifest.  0 (also
 * when there is nothing to wait for) or the exit code. */
int job_reference_finish(job *s);

/* Read the configuration, begin the product directory, start the
 * manifest: 0, or the exit code to end with. */
int job_start(job *s, const char *path, const rapid_job_opts *o,
              const char *cmd);
/* Finish (jobrun_finish) and release; returns the exit code. */
int job_end(job *s, int code);
/* Log "error: ..." and return code. */
int job_fail(job *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* rapid_diffrun_opts.warn: a warning into the log. */
void job_warn(void *arg, const char *msg);
/* A stage of known duration and CPU time into the manifest (its peak
 * memory: the peak so far). */
void job_stage_add(job *s, const char *name, double seconds, double cpu);
/* The reference job's log: 0 if it ended 0-31; RAPID_EXIT_REFJOB_FAILED
 * if it ended with an error, or did not end (no log: cancelled before it
 * ran; no last line: killed); RAPID_EXIT_INPUT if it cannot be read. */
int job_refjob_status(job *s);
/* A file F = {"path", "size", ...} of another job's manifest: it must
 * exist with its size; its path into dst (4096 bytes).  A NULL F leaves
 * dst empty for key "psf", "cov", "unc" (found beside the image), and is
 * RAPID_EXIT_INPUT for the image. */
int job_manifest_file(job *s, json_t *f, const char *dir, const char *key,
                      char *dst);
/* Every input of the reference to build exists: 0 or RAPID_EXIT_INPUT. */
int job_inputs_exist(job *s);
json_t *job_refimmeta_json(const rapid_refimmeta *m);
/* The candidates of method m's difference into s->cat[m]: 0, or -1 with
 * the method's failure recorded (s->diff->run[m].msg).  It touches only
 * method m's fields and logs nothing, so that the methods' candidates may
 * be made on threads of their own; job_candidates_log (one thread at a
 * time) then logs what it made (rc: what job_candidates returned). */
int job_candidates(job *s, int m);
void job_candidates_log(job *s, int m, int rc);
/* The candidates of every method that succeeded, two methods at a time
 * with two threads or more, then logged in order; a method whose
 * candidates fail is marked failed.  0, or -1 if the job was asked to
 * stop. */
int job_candidates_all(job *s);
/* Start writing the difference images of every method that succeeded
 * (on a thread of its own with two threads or more, else at once): 0, or
 * RAPID_EXIT_WRITE if their paths cannot be made. */
int job_write_images_begin(job *s);
/* With two threads or more, ZOGY and the kernel fit both asked: the
 * methods side by side (docs/pipeline.md), the naive difference, ZOGY and
 * their candidates on the calling thread, the kernel fit and its
 * candidates on another, the images written on a third as each method
 * ends; their stages into the manifest.  0; -1 if the job was asked to
 * stop; or the exit code if the images' thread cannot begin. */
int job_lanes(job *s);
/* 1 if job_lanes would run the methods side by side. */
int job_lanes_wanted(const job *s);
/* Wait for them: 0, or RAPID_EXIT_WRITE (logged) if one was not written.
 * The images of a method that failed since are removed. */
int job_write_images_end(job *s);
/* Method m's products and catalog into the set (its images written by
 * job_write_images_begin when it was called, else here), its entry into
 * s->diffs: 0 or RAPID_EXIT_WRITE. */
int job_write_method(job *s, int m);
json_t *job_failed_method_json(job *s, int m);
/* The difference's infobitssci and infobitsref (docs/pipeline.md): what
 * it had to make do without, on each side. */
void job_infobits(const rapid_diffrun *r, int *sci, int *ref);
/* 1 ZOGY, 2 kernel fit, 3 naive (the database's diffimages.method). */
int job_method_id(int m);
/* A number, or null for NaN. */
json_t *job_num(double v);

#endif
