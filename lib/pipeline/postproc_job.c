/* postproc_job.c - the post-processing job (ppid 17): every product of a
 * science job copied with its database ids stamped in, CHECKSUM/DATASUM
 * and MD5 (rapid/job.h, docs/pipeline.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/job_internal.h"
#include "rapid/md5.h"

/* The bytes of src into the new file dst. */
static int copy_file(const char *src, const char *dst, rapid_err *err)
{
    char buf[1 << 16];
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
    ssize_t n;

    if (in < 0)
        return rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                          "%s: cannot read: %s", src, strerror(errno));
    if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot create: %s", dst,
                        strerror(errno));
        goto cleanup;
    }
    while ((n = read(in, buf, sizeof buf)) != 0) {
        ssize_t done = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = rapid_fail(err, RAPID_E_IO, "%s: cannot read: %s", src,
                            strerror(errno));
            goto cleanup;
        }
        while (done < n) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", dst,
                                strerror(w < 0 ? errno : EIO));
                goto cleanup;
            }
            done += w;
        }
    }
cleanup:
    close(in);
    if (out >= 0 && close(out) != 0 && !rc)
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", dst,
                        strerror(errno));
    return rc;
}

/* The cards stamped into product F of kind (method m, -1 the reference). */
static int id_cards(const job *s, int m, const char *prodloc, rapid_header *h)
{
    const rapid_job_config *c = &s->c;
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    int rc = 0;

    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    if (m >= 0) {
        rc = rc ? rc : rapid_header_set_long(h, "PID", (long)c->pid[m],
                                              "difference image id (diffimages.pid)");
        rc = rc ? rc : rapid_header_set_long(h, "DIFFVER", c->version[m],
                                              "difference image version");
        rc = rc ? rc : rapid_header_set_long(h, "METHODID", job_method_id(m),
                                              "1 ZOGY, 2 kernel fit, 3 naive");
    }
    rc = rc ? rc : rapid_header_set_long(h, "RID", (long)c->pp_rid, "L2 image id (l2files.rid)");
    rc = rc ? rc : rapid_header_set_long(h, "RFID", (long)c->pp_rfid, "reference image id");
    rc = rc ? rc : rapid_header_set_long(h, "REFVER", c->refversion,
                                         "reference image version");
    rc = rc ? rc : rapid_header_set_long(h, "EXPID", (long)c->pp_expid, "exposure id");
    rc = rc ? rc : rapid_header_set_long(h, "FID", c->pp_fid, "filter id");
    rc = rc ? rc : rapid_header_set_long(h, "FIELD", (long)c->pp_field, "sky tile (rtid)");
    rc = rc ? rc : rapid_header_set_long(h, "SCIJID", (long)c->scijid, "science job id");
    rc = rc ? rc : rapid_header_set_str(h, "PRODLOC", prodloc, "product location");
    rc = rc ? rc : rapid_header_set_str(h, "DATE", date, "UTC date of post-processing");
    return rc;
}

/* One product F of the science job: checked (size, MD5), copied into the
 * set, stamped, listed. */
static int stamp_one(job *s, json_t *f, const char *kind, int m, json_t *stamped)
{
    const char *src = json_string_value(json_object_get(f, "path"));
    const char *md5 = json_string_value(json_object_get(f, "md5"));
    json_t *size = json_object_get(f, "size"), *nf = NULL, *e;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const char *name, *dst;
    char sum[33], final[4200];
    struct stat sb;
    int rc;

    if (!src || !md5 || !json_is_integer(size))
        return job_fail(s, RAPID_EXIT_INPUT, "%s/%s: a %s product without its "
                        "path, size and md5", s->c.pp_dir, RAPID_JOB_MANIFEST, kind);
    if (stat(src, &sb) != 0 || (json_int_t)sb.st_size != json_integer_value(size))
        return job_fail(s, RAPID_EXIT_INPUT, "%s: %s (of %s/%s)", src,
                        errno == ENOENT ? "missing" : "not of the size listed",
                        s->c.pp_dir, RAPID_JOB_MANIFEST);
    if (rapid_md5_file(src, sum, &err) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s", err.msg);
    if (strcmp(sum, md5) != 0)
        return job_fail(s, RAPID_EXIT_INPUT, "%s: MD5 %s, the manifest says %s",
                        src, sum, md5);
    name = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
    if (jobrun_final_path(&s->run, name, final, sizeof final) != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s: too long a path", name);
    if ((rc = id_cards(s, m, final, &h)) != 0) {
        rapid_header_fail(&err, rc, final, "PID/RID/...");
        rapid_header_release(&h);
        return job_fail(s, RAPID_EXIT_FAILED, "%s", err.msg);
    }
    rc = jobrun_add(&s->run, name, &dst, &err);
    if (rc == 0)
        rc = copy_file(src, dst, &err);
    if (rc == 0)
        rc = rapid_fits_stamp(dst, &h, &err);
    if (rc == 0)
        rc = jobrun_product(&s->run, name, dst, &nf, &err);
    rapid_header_release(&h);
    if (rc != 0)
        return job_fail(s, RAPID_EXIT_WRITE, "%s", err.msg);
    e = json_pack("{s:s, s:O, s:O, s:O}", "kind", kind, "path",
                  json_object_get(nf, "path"), "size", json_object_get(nf, "size"),
                  "md5", json_object_get(nf, "md5"));
    if (m >= 0) {
        json_object_set_new(e, "method", json_string(rapid_diffrun_method_name(m)));
        json_object_set_new(e, "pid", json_integer(s->c.pid[m]));
    } else {
        json_object_set_new(e, "rfid", json_integer(s->c.pp_rfid));
    }
    json_object_set_new(e, "source", json_string(src));
    json_array_append_new(stamped, e);
    return 0;
}

static int method_of(const char *name)
{
    int m;

    for (m = 0; name && m < RAPID_DIFFRUN_NMETHOD; m++)
        if (strcmp(name, rapid_diffrun_method_name(m)) == 0)
            return m;
    return -1;
}

/* Every product of the science job's manifest: its reference's (built
 * there), then each difference's. */
static int stamp_all(job *s, json_t *sci, json_t *stamped)
{
    json_t *prods = json_object_get(json_object_get(sci, "reference"), "products");
    json_t *diffs = json_object_get(sci, "diffs"), *d, *f;
    const char *key;
    char kind[64];
    size_t i;
    int code = 0;

    json_object_foreach(prods, key, f) {
        snprintf(kind, sizeof kind, "ref%s", key);
        if ((code = stamp_one(s, f, kind, -1, stamped)) != 0 ||
            (jobrun_stopped(&s->run) && (code = RAPID_EXIT_INTERRUPTED)))
            return code;
    }
    json_array_foreach(diffs, i, d) {
        int m = method_of(json_string_value(json_object_get(d, "method")));
        const char *st = json_string_value(json_object_get(d, "status"));
        if (!st || strcmp(st, "ok") != 0)
            continue;
        if (m < 0)
            return job_fail(s, RAPID_EXIT_INPUT, "%s/%s: diffs[%zu]: no known "
                            "method", s->c.pp_dir, RAPID_JOB_MANIFEST, i);
        json_object_foreach(json_object_get(d, "products"), key, f)
            if ((code = stamp_one(s, f, key, m, stamped)) != 0 ||
                (jobrun_stopped(&s->run) && (code = RAPID_EXIT_INTERRUPTED)))
                return code;
    }
    return 0;
}

int rapid_postproc_job_run(const char *path, const rapid_job_opts *o)
{
    rapid_err err = RAPID_ERR_INIT;
    json_t *sci = NULL, *stamped = json_array(), *ec;
    job s;
    int code;

    if ((code = job_start(&s, path, o, "postproc-job")) != 0)
        goto end;
    if (s.c.ppid != RAPID_PPID_POSTPROC) {
        code = job_fail(&s, RAPID_EXIT_CONFIG, "%s: ppid %d: not a "
                        "post-processing job (rapid job runs it)", path, s.c.ppid);
        goto end;
    }
    json_object_set_new(s.run.manifest, "postproc",
                        json_pack("{s:I, s:s}", "scijid", (json_int_t)s.c.scijid,
                                  "dir", s.c.pp_dir));
    /* the science job's manifest, of a job that ended normally */
    jobrun_stage_begin(&s.run);
    if (jobrun_read_manifest(s.c.pp_dir, &sci, &err) != 0) {
        code = job_fail(&s, RAPID_EXIT_INPUT, "science job %lld: %s",
                        (long long)s.c.scijid, err.msg);
        goto end;
    }
    ec = json_object_get(sci, "exitcode");
    if (!json_is_integer(ec) || json_integer_value(ec) > 31) {
        code = job_fail(&s, RAPID_EXIT_INPUT, "%s/%s: the science job did not "
                        "end normally (exitcode %s)", s.c.pp_dir,
                        RAPID_JOB_MANIFEST, json_is_integer(ec) ? "> 31" : "missing");
        goto end;
    }
    /* every product: copied, stamped, summed */
    if ((code = stamp_all(&s, sci, stamped)) != 0)
        goto end;
    json_object_set(s.run.manifest, "stamped", stamped);
    jobrun_stage_end(&s.run, "stamp");
    jobrun_log(&s.run, "%zu products stamped", json_array_size(stamped));
end:
    json_decref(sci);
    json_decref(stamped);
    return job_end(&s, code);
}
