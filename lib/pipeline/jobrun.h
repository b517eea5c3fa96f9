/* jobrun.h - what every job shares (internal): its log, its product set,
 * the manifest's products and stages, and the ending (manifest, then the
 * log's last line, then the set swapped in). */
#ifndef RAPID_PIPELINE_JOBRUN_H
#define RAPID_PIPELINE_JOBRUN_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "rapid/job.h"
#include "rapid/prodset.h"

typedef struct jobrun {
    const rapid_job_opts *o;
    const char *cmd;           /* "job", "postproc-job": the log's prefix */
    char out[4096];            /* the product directory ("": unknown) */
    char *log;                 /* the log's lines so far */
    size_t loglen, logcap;
    int log_is_stderr;         /* stderr is out/job.log already */
    rapid_prodset *set;        /* the new set, once begun */
    json_t *manifest;          /* the manifest being built */
    json_t *products;          /* its "products" array */
    json_t *stages;            /* its "stages" array */
    struct timespec t0;        /* monotonic start */
    double stage_t0;
    double stage_cpu0;         /* the process's CPU time then */
    char started[40];          /* ISO time */
} jobrun;

/* Start: the log, the clock.  out may be NULL (not known yet). */
void jobrun_init(jobrun *j, const rapid_job_opts *o, const char *cmd);
void jobrun_release(jobrun *j);
/* A timestamped line in the log (and on stderr unless quiet). */
void jobrun_log(jobrun *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The product directory: emptied of an earlier run (its products,
 * manifest and log; what killed writers left beside it), its parent made,
 * a new product set begun.  0 or a negative status. */
int jobrun_begin(jobrun *j, const char *out, rapid_err *err);
/* A new product of the set: *path where to write it (in the hidden
 * directory).  0 or a negative status. */
int jobrun_add(jobrun *j, const char *name, const char **path, rapid_err *err);
/* The product just written at name: size and MD5 into the manifest's
 * products; *f (borrowed, NULL: not wanted) the {"path", "size", "md5"}
 * object, with the path it will have once the set is in place. */
int jobrun_product(jobrun *j, const char *name, const char *path, json_t **f,
                   rapid_err *err);
/* The same for a product whose size and MD5 are known already. */
int jobrun_product_known(jobrun *j, const char *name, int64_t size,
                         const char *md5, json_t **f, rapid_err *err);
/* Stage timing: the stage that began at the last call ends now. */
void jobrun_stage_begin(jobrun *j);
void jobrun_stage_end(jobrun *j, const char *name);
/* The process's CPU time so far (user + system, every thread), s. */
double jobrun_cpu_seconds(void);
/* Has the job been asked to stop? */
int jobrun_stopped(const jobrun *j);
/* Write the manifest (when code <= 31) and the log ending with
 * "terminating_exitcode = code" into the set and swap it in; with code
 * >= 32 the products are dropped first (the directory then holds the log
 * alone).  Returns the exit code the job ends with: code, or
 * RAPID_EXIT_WRITE when the set could not be written. */
int jobrun_finish(jobrun *j, int code);
/* The process's peak resident memory so far, MB. */
double jobrun_peak_rss_mb(void);
/* Seconds since start. */
double jobrun_elapsed(const jobrun *j);
/* "2026-12-07T05:30:01.123Z" now. */
void jobrun_iso_now(char *out, size_t sz);
/* Read a manifest file. */
int jobrun_read_manifest(const char *dir, json_t **out, rapid_err *err);
/* j->out + "/" + name */
int jobrun_final_path(const jobrun *j, const char *name, char *out, size_t sz);
/* The path jobrun_add will give product name, before it is added: for a
 * file written (on another thread) before it is known to belong to the
 * set; one never added must be removed before the set is committed.  0,
 * or -1 if there is no set or the path does not fit in sz. */
int jobrun_future_path(const jobrun *j, const char *name, char *out, size_t sz);

#endif
