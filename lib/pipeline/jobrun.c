/* jobrun.c - what every job shares: its log, its product set, the
 * manifest's products and stages, and the ending (jobrun.h). */
#include "pipeline/jobrun.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/steps_internal.h"
#include "rapid/md5.h"
#include "rapid/version.h"

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void jobrun_iso_now(char *out, size_t sz)
{
    struct timespec ts;
    struct tm tm;
    char s[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sz, "%s.%03dZ", s, (int)(ts.tv_nsec / 1000000) % 1000);
}

double jobrun_cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void jobrun_init(jobrun *j, const rapid_job_opts *o, const char *cmd)
{
    memset(j, 0, sizeof *j);
    j->o = o;
    j->cmd = cmd;
    j->stage_t0 = mono();
    j->stage_cpu0 = jobrun_cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &j->t0);
    jobrun_iso_now(j->started, sizeof j->started);
    j->manifest = json_object();
    j->products = json_array();
    j->stages = json_array();
}

void jobrun_release(jobrun *j)
{
    rapid_prodset_abort(j->set);
    j->set = NULL;
    json_decref(j->manifest);
    json_decref(j->products);
    json_decref(j->stages);
    free(j->log);
    j->log = NULL;
}

double jobrun_elapsed(const jobrun *j)
{
    return mono() - ((double)j->t0.tv_sec + 1e-9 * (double)j->t0.tv_nsec);
}

static void log_append(jobrun *j, const char *s, size_t n)
{
    if (j->loglen + n + 1 > j->logcap) {
        size_t cap = 2 * (j->loglen + n + 1) + 4096;
        char *p = realloc(j->log, cap);
        if (!p)
            return; /* the line stays on stderr */
        j->log = p;
        j->logcap = cap;
    }
    memcpy(j->log + j->loglen, s, n);
    j->loglen += n;
    j->log[j->loglen] = '\0';
}

void jobrun_log(jobrun *j, const char *fmt, ...)
{
    char line[2 * RAPID_ERR_MAX + 128], when[40];
    va_list ap;
    int n;

    jobrun_iso_now(when, sizeof when);
    n = snprintf(line, sizeof line, "%s rapid %s: ", when, j->cmd);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    log_append(j, line, strlen(line));
    if (!j->o || !j->o->quiet || !j->out[0]) { /* no log file (yet) */
        fputs(line, stderr);
        fflush(stderr);
    }
}

int jobrun_stopped(const jobrun *j)
{
    return j->o && j->o->stop && *j->o->stop;
}

void jobrun_stage_begin(jobrun *j)
{
    j->stage_t0 = mono();
    j->stage_cpu0 = jobrun_cpu_seconds();
}

double jobrun_peak_rss_mb(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

void jobrun_stage_end(jobrun *j, const char *name)
{
    double s = mono() - j->stage_t0, cpu = jobrun_cpu_seconds() - j->stage_cpu0;
    json_t *st = json_pack("{s:s, s:f, s:f, s:f}", "name", name, "seconds", s,
                           "cpu_seconds", cpu, "peak_rss_mb", jobrun_peak_rss_mb());

    if (st)
        json_array_append_new(j->stages, st);
    jobrun_log(j, "stage %s: %.3f s (CPU %.3f s), peak memory %.0f MB", name, s,
               cpu, jobrun_peak_rss_mb());
    j->stage_t0 = mono();
    j->stage_cpu0 = jobrun_cpu_seconds();
}

/* Is stderr the file at path (the executor sends it to job.log)? */
static int is_stderr(const char *path)
{
    struct stat a, b;

    return fstat(2, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

static int make_parents(const char *path, rapid_err *err)
{
    char buf[4096];
    char *p;

    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return rapid_fail(err, RAPID_E_ARG, "%s: too long a path", path);
    p = strrchr(buf, '/');
    if (!p || p == buf)
        return 0;
    *p = '\0';
    return steps_mkdirs(buf, err);
}

/* Empty dir of an earlier run's files (a re-run replaces, never mixes);
 * a log that is this process's stderr stays (the executor writes it). */
static int empty_dir(jobrun *j, const char *dir, rapid_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096 + 300];
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : rapid_fail(err, RAPID_E_IO, "%s: cannot "
                                                "read: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, RAPID_JOB_LOG) == 0 && is_stderr(path)) {
            j->log_is_stderr = 1;
            continue;
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = rapid_fail(err, RAPID_E_IO, "%s: cannot remove the earlier "
                            "run's file: %s", path, strerror(errno));
            break;
        }
    }
    closedir(d);
    return rc;
}

static int begin_set(jobrun *j, rapid_err *err)
{
    const char *names[1] = {RAPID_JOB_LOG};

    return rapid_prodset_begin(&j->set, j->out, names, 1, err);
}

int jobrun_begin(jobrun *j, const char *out, rapid_err *err)
{
    int rc;

    char cwd[2048] = "";

    /* the manifest's paths are absolute */
    if (out[0] != '/' && !getcwd(cwd, sizeof cwd))
        return rapid_fail(err, RAPID_E_IO, "%s: cannot tell the current "
                          "directory: %s", out, strerror(errno));
    if (snprintf(j->out, sizeof j->out, "%s%s%s", cwd, cwd[0] ? "/" : "", out) >=
        (int)sizeof j->out) {
        j->out[0] = '\0';
        return rapid_fail(err, RAPID_E_ARG, "%s: too long a path", out);
    }
    if ((rc = make_parents(j->out, err)) || (rc = rapid_prodset_clean(j->out, err)) ||
        (rc = empty_dir(j, j->out, err)))
        return rc;
    return begin_set(j, err);
}

int jobrun_add(jobrun *j, const char *name, const char **path, rapid_err *err)
{
    int k;

    if (!j->set)
        return rapid_fail(err, RAPID_E_ARG, "%s: no product set", name);
    if ((k = rapid_prodset_add(j->set, name, err)) < 0)
        return k;
    *path = rapid_prodset_path(j->set, k);
    return 0;
}

int jobrun_final_path(const jobrun *j, const char *name, char *out, size_t sz)
{
    int n = snprintf(out, sz, "%s/%s", j->out, name);
    return n < 0 || (size_t)n >= sz ? -1 : 0;
}

int jobrun_future_path(const jobrun *j, const char *name, char *out, size_t sz)
{
    /* the set's files are all in its hidden directory, the log's first */
    const char *log = j->set ? rapid_prodset_path(j->set, 0) : NULL;
    const char *slash = log ? strrchr(log, '/') : NULL;
    int n;

    if (!slash)
        return -1;
    n = snprintf(out, sz, "%.*s/%s", (int)(slash - log), log, name);
    return n < 0 || (size_t)n >= sz ? -1 : 0;
}

int jobrun_product(jobrun *j, const char *name, const char *path, json_t **f,
                   rapid_err *err)
{
    char md5[33];
    struct stat sb;
    int rc;

    if (stat(path, &sb) != 0)
        return rapid_fail(err, RAPID_E_IO, "%s: not written: %s", path,
                          strerror(errno));
    if ((rc = rapid_md5_file(path, md5, err)) != 0)
        return rc;
    return jobrun_product_known(j, name, (int64_t)sb.st_size, md5, f, err);
}

int jobrun_product_known(jobrun *j, const char *name, int64_t size,
                         const char *md5, json_t **f, rapid_err *err)
{
    char final[4200];
    json_t *o;

    if (jobrun_final_path(j, name, final, sizeof final))
        return rapid_fail(err, RAPID_E_ARG, "%s: too long a path", name);
    o = json_pack("{s:s, s:I, s:s}", "path", final, "size", (json_int_t)size,
                  "md5", md5);
    if (!o || json_array_append(j->products, o) != 0) {
        json_decref(o);
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", name);
    }
    if (f)
        *f = o;
    json_decref(o); /* the array holds it */
    return 0;
}

/* Write text to a new file path, flushed to disk. */
static int write_synced(const char *path, const char *text, size_t n,
                        rapid_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    size_t done = 0;

    if (fd < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot create: %s", path,
                          strerror(errno));
    while (done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path,
                              strerror(e));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path,
                          strerror(errno));
    return 0;
}

static int write_manifest(jobrun *j, int code, rapid_err *err)
{
    json_t *m = j->manifest;
    const char *path = NULL;
    char ended[40], *text;
    int rc;

    jobrun_iso_now(ended, sizeof ended);
    if (json_object_set_new(m, "exitcode", json_integer(code)) ||
        json_object_set_new(m, "started", json_string(j->started)) ||
        json_object_set_new(m, "ended", json_string(ended)) ||
        json_object_set_new(m, "elapsed", json_real(jobrun_elapsed(j))) ||
        json_object_set(m, "products", j->products) ||
        json_object_set(m, "stages", j->stages) ||
        json_object_set_new(m, "peak_rss_mb", json_real(jobrun_peak_rss_mb())))
        return rapid_fail(err, RAPID_E_NOMEM, "manifest: no memory");
    if (!(text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
        return rapid_fail(err, RAPID_E_NOMEM, "manifest: no memory");
    if ((rc = jobrun_add(j, RAPID_JOB_MANIFEST, &path, err)) == 0)
        rc = write_synced(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int write_log(jobrun *j, int code, rapid_err *err)
{
    char last[64];

    size_t before = j->loglen;
    int rc;

    snprintf(last, sizeof last, "terminating_exitcode = %d\n", code);
    log_append(j, last, strlen(last));
    rc = write_synced(rapid_prodset_path(j->set, 0), j->log ? j->log : last,
                      j->log ? j->loglen : strlen(last), err);
    if (j->log) { /* a later attempt ends with its own code */
        j->loglen = before;
        j->log[before] = '\0';
    }
    return rc;
}

/* A set of the log alone, ending with code. */
static int log_only(jobrun *j, int code, rapid_err *err)
{
    int rc;

    rapid_prodset_abort(j->set);
    j->set = NULL;
    if ((rc = begin_set(j, err)) == 0 && (rc = write_log(j, code, err)) == 0)
        rc = rapid_prodset_commit(j->set, err);
    else
        rapid_prodset_abort(j->set);
    j->set = NULL;
    return rc;
}

int jobrun_finish(jobrun *j, int code)
{
    rapid_err err = RAPID_ERR_INIT;
    int rc;

    jobrun_log(j, "ended after %.3f s", jobrun_elapsed(j));
    if (!j->out[0]) { /* nowhere to write */
        fprintf(stderr, "terminating_exitcode = %d\n", code);
        return code;
    }
    if (code >= 32 || !j->set) {
        rc = log_only(j, code, &err);
    } else if ((rc = write_manifest(j, code, &err)) == 0 &&
               (rc = write_log(j, code, &err)) == 0) {
        rc = rapid_prodset_commit(j->set, &err);
        j->set = NULL;
    }
    if (rc) {
        jobrun_log(j, "%s", err.msg);
        code = RAPID_EXIT_WRITE;
        rapid_err_clear(&err);
        if (log_only(j, code, &err) != 0)
            jobrun_log(j, "%s", err.msg);
    }
    if (!j->o || !j->o->quiet || j->log_is_stderr)
        fprintf(stderr, "terminating_exitcode = %d\n", code);
    return code;
}

int jobrun_read_manifest(const char *dir, json_t **out, rapid_err *err)
{
    char path[4200];
    json_error_t je;
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s", dir, RAPID_JOB_MANIFEST);
    if (stat(path, &sb) != 0)
        return rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                          "%s: cannot read: %s", path, strerror(errno));
    if (!(*out = json_load_file(path, 0, &je)) || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return rapid_fail(err, RAPID_E_ARG, "%s: line %d: not a manifest: %s",
                          path, je.line, je.text);
    }
    return 0;
}

int rapid_job_log_exitcode(const char *logpath, int *code, rapid_err *err)
{
    FILE *f = fopen(logpath, "r");
    char line[4096], last[4096] = "";
    int n = 0, len = 0;

    if (!f)
        return rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                          "%s: cannot read: %s", logpath, strerror(errno));
    while (fgets(line, sizeof line, f))
        memcpy(last, line, sizeof line);
    fclose(f);
    if (sscanf(last, "terminating_exitcode = %d%n", &n, &len) != 1 ||
        (last[len] != '\n' && last[len] != '\0'))
        return rapid_fail(err, RAPID_E_ARG, "%s: no terminating_exitcode line "
                          "at the end (the job did not end)", logpath);
    *code = n;
    return 0;
}

void rapid_job_opts_init(rapid_job_opts *o)
{
    memset(o, 0, sizeof *o);
}
