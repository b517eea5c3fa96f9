/* fake_job.c - a stand-in for `rapid job` / `rapid postproc-job` in the
 * steps' tests (built by CTest, never installed): it reads the job
 * configuration the steps wrote and leaves what the pipeline contract
 * says a job leaves - tiny valid FITS products, manifest.json with their
 * sizes and MD5s, job.log ending "terminating_exitcode = N" - without the
 * science.  The executor runs it through RAPID_JOB_CMD.
 *
 *   fake_job job CONFIG | fake_job postproc-job CONFIG
 *
 * Compiled with FAKE_JOB_LIB it has no main, and fake_job_run(CONFIG) is
 * the same job in the caller's process (the steps' bench finishes
 * thousands of jobs with it).
 *
 * Behaviour the tests choose by environment:
 *   FAKE_JOB_EXIT=JID:CODE[,JID:CODE...]  that job ends with CODE, no products
 *   FAKE_JOB_EXIT_REF=CODE                every reference job ends with CODE
 *   FAKE_JOB_SLEEP=SECONDS                sleep before the manifest (kills)
 *   FAKE_JOB_CORRUPT=JID                  that job's manifest is not JSON
 *   FAKE_JOB_FAIL_METHOD=NAME             that method fails: exit code 4
 *   FAKE_JOB_RECORD=FILE                  append "ppid jid" for every run
 *   FAKE_JOB_TRACE=FILE                   append "+ ppid jid refjid" at the
 *                                         start, "- ppid jid" at the end
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rapid/job.h"
#include "rapid/md5.h"
#include "rapid/pipeline.h"

/* What the fake job needs of its configuration, read by the library's own
 * reader (so that every configuration the steps write is also checked by
 * it): method ids 1 zogy, 2 sfft, 3 naive. */
typedef struct cfg {
    long long jid, rid, field, refjid, scijid, rfid;
    int ppid, procdate, fid, ninputs;
    long long inputs[64];
    char out[1024], source[16], refdir[1024], refimage[1024];
    int methods[4];
    long long pid[4];
} cfg;

static const char *const method_names[] = {"", "zogy", "sfft", "naive"};

static int method_index(int id)
{
    return id == 1 ? RAPID_DIFFRUN_ZOGY : id == 2 ? RAPID_DIFFRUN_SFFT
                                                  : RAPID_DIFFRUN_NAIVE;
}

static int read_cfg(const char *path, cfg *c)
{
    rapid_job_config j;
    rapid_err err = RAPID_ERR_INIT;
    int k;

    memset(c, 0, sizeof *c);
    rapid_job_config_init(&j);
    if (rapid_job_config_read(&j, path, &err) != 0) {
        fprintf(stderr, "fake_job: %s\n", err.msg);
        rapid_job_config_release(&j);
        return -1;
    }
    c->jid = j.jid, c->ppid = j.ppid, c->procdate = j.procdate;
    snprintf(c->out, sizeof c->out, "%s", j.out);
    if (j.ppid == RAPID_PPID_POSTPROC) {
        c->scijid = j.scijid;
        for (k = 1; k <= 3; k++)
            c->pid[k] = j.pid[method_index(k)];
    } else {
        c->rid = j.rid;
        c->field = j.has_science ? j.field : j.ref_field;
        c->fid = j.has_science ? j.fid : j.ref_fid;
        snprintf(c->source, sizeof c->source, "%s",
                 j.ref_source == RAPID_REFSRC_JOB        ? "job"
                 : j.ref_source == RAPID_REFSRC_EXISTING ? "existing"
                                                         : "build");
        c->refjid = j.refjid, c->rfid = j.rfid;
        snprintf(c->refdir, sizeof c->refdir, "%s", j.ref_dir ? j.ref_dir : "");
        snprintf(c->refimage, sizeof c->refimage, "%s",
                 j.ref_image ? j.ref_image : "");
        for (k = 0; k < j.ninputs && k < 64; k++)
            c->inputs[c->ninputs++] = j.inputs[k].rid;
        for (k = 1; k <= 3; k++)
            c->methods[k] = j.methods[method_index(k)];
    }
    rapid_job_config_release(&j);
    return 0;
}

static FILE *jlog;
static int write_failed;
static long long trace_jid;
static int trace_ppid;

static void trace(const char *what, long long refjid)
{
    const char *path = getenv("FAKE_JOB_TRACE");
    char line[128];
    int fd, n;

    if (!path || !*path || (fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0666)) < 0)
        return;
    n = snprintf(line, sizeof line, *what == '+' ? "%s %d %lld %lld\n" : "%s %d %lld\n",
                 what, trace_ppid, trace_jid, refjid);
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "fake_job: cannot trace\n");
    close(fd);
}

static int finish(int code)
{
    trace("-", 0);
    fprintf(jlog, "terminating_exitcode = %d\n", code);
    fflush(jlog);
#ifndef FAKE_JOB_LIB
    fsync(fileno(jlog));
#endif
    fclose(jlog);
    jlog = NULL;
    return code;
}

/* A minimal FITS file (one empty primary HDU) with a card naming it. */
static json_t *write_fits(const char *dir, const char *name, long long id)
{
    char path[1200], block[2880], hex[33];
    struct stat st;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(block, ' ', sizeof block);
    memcpy(block, "SIMPLE  =                    T", 30);
    memcpy(block + 80, "BITPIX  =                    8", 30);
    memcpy(block + 160, "NAXIS   =                    0", 30);
    snprintf(block + 240, 81, "JOBID   = %20lld", id);
    block[240 + 30] = ' ';
    memcpy(block + 320, "END", 3);
    if (!(f = fopen(path, "wb")) || fwrite(block, 1, sizeof block, f) != sizeof block ||
        fclose(f) != 0) {
        fprintf(jlog, "cannot write %s\n", path);
        write_failed = 1;
        return json_object();
    }
    stat(path, &st);
    rapid_md5_file(path, hex, NULL);
    return json_pack("{s:s, s:I, s:s}", "path", path, "size", (json_int_t)st.st_size,
                     "md5", hex);
}

static int exit_for(long long jid, int ppid)
{
    const char *e = getenv("FAKE_JOB_EXIT"), *r = getenv("FAKE_JOB_EXIT_REF");
    char *p;

    if (ppid == RAPID_PPID_REFERENCE && r && *r)
        return atoi(r);
    for (p = (char *)e; p && *p;) {
        long long j = strtoll(p, &p, 10);
        int code = *p == ':' ? (int)strtol(p + 1, &p, 10) : 0;
        if (j == jid)
            return code;
        if (*p == ',')
            p++;
        else
            break;
    }
    return 0;
}

static void now_iso(char *out, size_t n)
{
    time_t t = time(NULL);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&t));
}

int fake_job_run(const char *config);

int fake_job_run(const char *config)
{
    cfg c;
    char path[1200], tmp[1300], started[40], ended[40], *sl;
    json_t *root, *products, *diffs, *ref, *stamped;
    const char *rec = getenv("FAKE_JOB_RECORD"), *fail = getenv("FAKE_JOB_FAIL_METHOD");
    const char *corrupt = getenv("FAKE_JOB_CORRUPT");
    int code = 0, k;

    write_failed = 0;
    if (read_cfg(config, &c) != 0) {
        fprintf(stderr, "terminating_exitcode = %d\n", RAPID_EXIT_CONFIG);
        return RAPID_EXIT_CONFIG;
    }
    now_iso(started, sizeof started);
    for (sl = c.out + 1; (sl = strchr(sl, '/')) != NULL; sl++) {
        *sl = '\0'; /* its parents too */
        mkdir(c.out, 0777);
        *sl = '/';
    }
    mkdir(c.out, 0777);
    snprintf(path, sizeof path, "%s/%s", c.out, RAPID_JOB_MANIFEST);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", c.out, RAPID_JOB_LOG);
    if (!(jlog = fopen(path, "w")))
        return RAPID_EXIT_WRITE;
    fprintf(jlog, "fake job %lld (ppid %d) %s\n", c.jid, c.ppid, config);
    trace_jid = c.jid, trace_ppid = c.ppid;
    trace("+", c.refjid);
    if (rec && *rec) {
        FILE *f = fopen(rec, "a");
        if (f) {
            fprintf(f, "%d %lld\n", c.ppid, c.jid);
            fclose(f);
        }
    }
    if ((code = exit_for(c.jid, c.ppid)) != 0) {
        fprintf(jlog, "told to end with %d\n", code);
        return finish(code);
    }
    if (!strcmp(c.source, "job")) {
        snprintf(path, sizeof path, "%s/%s", c.refdir, RAPID_JOB_MANIFEST);
        if (access(path, R_OK) != 0) {
            fprintf(jlog, "%s: reference job's manifest missing\n", path);
            return finish(RAPID_EXIT_INPUT);
        }
    }
    if (!strcmp(c.source, "existing") && access(c.refimage, R_OK) != 0) {
        fprintf(jlog, "%s: reference image missing\n", c.refimage);
        return finish(RAPID_EXIT_INPUT);
    }
    products = json_array();
    root = json_pack("{s:I, s:i, s:i, s:s, s:{s:s, s:s}}", "jid", (json_int_t)c.jid,
                     "ppid", c.ppid, "procdate", c.procdate, "machine", "fake",
                     "software", "version", "0.0.0", "gitcommit", "fakecommit");
    if (c.ppid == RAPID_PPID_REFERENCE) {
        json_t *in = json_array(), *img = write_fits(c.out, "ref.fits", c.jid),
               *cat = write_fits(c.out, "ref_cat.fits", c.jid);
        for (k = 0; k < c.ninputs; k++)
            json_array_append_new(in, json_integer(c.inputs[k]));
        ref = json_pack("{s:s, s:I, s:i, s:o, s:{s:i, s:f, s:I}, s:{s:O, s:O}}",
                        "source", "built", "field", (json_int_t)c.field, "fid", c.fid,
                        "inputs", in, "meta", "nframes", c.ninputs, "clmean", 1.5,
                        "nsexcatsources", (json_int_t)42, "products", "image", img,
                        "catalog", cat);
        json_object_set_new(root, "reference", ref);
        json_array_append_new(products, img);
        json_array_append_new(products, cat);
    } else if (c.ppid == RAPID_PPID_SCIENCE) {
        diffs = json_array();
        json_object_set_new(root, "science", json_pack("{s:I}", "rid", (json_int_t)c.rid));
        ref = json_pack("{s:s, s:I, s:i}", "source", c.source, "field",
                        (json_int_t)c.field, "fid", c.fid);
        json_object_set_new(ref, !strcmp(c.source, "job") ? "refjid" : "rfid",
                            json_integer(!strcmp(c.source, "job") ? c.refjid : c.rfid));
        json_object_set_new(root, "reference", ref);
        for (k = 1; k <= 3; k++) {
            const char *tok = method_names[k];
            char name[64];
            json_t *d, *cat;
            if (!c.methods[k])
                continue;
            if (fail && !strcmp(fail, tok)) {
                json_array_append_new(diffs, json_pack("{s:s, s:i, s:s, s:s}", "method", tok,
                    "method_id", k, "status", "failed", "message", "told to"));
                code = RAPID_EXIT_METHOD_FAILED;
                continue;
            }
            snprintf(name, sizeof name, "diff_%s.fits", tok);
            d = write_fits(c.out, name, c.jid);
            snprintf(name, sizeof name, "cat_%s.fits", tok);
            cat = write_fits(c.out, name, c.jid);
            json_array_append_new(diffs, json_pack(
                "{s:s, s:i, s:s, s:{s:O, s:O}, s:{s:f, s:i, s:i}, s:{s:[fffff], s:[fffff]},"
                " s:i, s:i, s:i, s:i}",
                "method", tok, "method_id", k, "status", "ok",
                "products", "diff", d, "catalog", cat,
                "meta", "scalefacref", 1.0, "nmatches", 50, "nsexcatsources", 10,
                "footprint", "ra", 9.6, 9.5, 9.7, 9.7, 9.5, "dec", -44.0, -44.1, -44.1,
                -43.9, -43.9, "infobitssci", 0, "infobitsref", 0, "ncand", 10, "npass", 2));
            json_array_append_new(products, d);
            json_array_append_new(products, cat);
        }
        json_object_set_new(root, "diffs", diffs);
    } else {
        stamped = json_array();
        json_object_set_new(root, "postproc", json_pack("{s:I}", "scijid", (json_int_t)c.scijid));
        for (k = 1; k <= 3; k++) {
            char name[64];
            json_t *f;
            if (!c.pid[k])
                continue;
            snprintf(name, sizeof name, "post_diff_%s.fits", method_names[k]);
            f = write_fits(c.out, name, c.pid[k]);
            json_object_set_new(f, "kind", json_string("diff"));
            json_object_set_new(f, "method", json_string(method_names[k]));
            json_object_set_new(f, "pid", json_integer(c.pid[k]));
            json_array_append(products, f);
            json_array_append_new(stamped, f);
            /* another kind, which registration leaves out of the database */
            snprintf(name, sizeof name, "post_cat_%s.fits", method_names[k]);
            f = write_fits(c.out, name, c.pid[k]);
            json_object_set_new(f, "kind", json_string("catalog"));
            json_object_set_new(f, "method", json_string(method_names[k]));
            json_object_set_new(f, "pid", json_integer(c.pid[k]));
            json_array_append(products, f);
            json_array_append_new(stamped, f);
        }
        json_object_set_new(root, "stamped", stamped);
    }
    json_object_set_new(root, "products", products);
    json_object_set_new(root, "exitcode", json_integer(code));
    if (getenv("FAKE_JOB_SLEEP"))
        usleep((useconds_t)(atof(getenv("FAKE_JOB_SLEEP")) * 1e6));
    now_iso(ended, sizeof ended);
    json_object_set_new(root, "started", json_string(started));
    json_object_set_new(root, "ended", json_string(ended));
    snprintf(path, sizeof path, "%s/%s", c.out, RAPID_JOB_MANIFEST);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (corrupt && atoll(corrupt) == c.jid) {
        FILE *f = fopen(tmp, "w");
        fputs("{\"jid\": ", f);
        fclose(f);
    } else if (write_failed || json_dump_file(root, tmp, JSON_INDENT(1)) != 0) {
        json_decref(root);
        return finish(RAPID_EXIT_WRITE);
    }
    rename(tmp, path);
    json_decref(root);
    fprintf(jlog, "done\n");
    return finish(code);
}

#ifndef FAKE_JOB_LIB
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "fake_job: usage: fake_job job|postproc-job CONFIG\n"
                "terminating_exitcode = %d\n", RAPID_EXIT_CONFIG);
        return RAPID_EXIT_CONFIG;
    }
    return fake_job_run(argv[2]);
}
#endif
