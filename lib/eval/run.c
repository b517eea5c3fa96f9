/* run.c - the evaluation end to end (rapid/eval.h): a simulated survey
 * through the normal pipeline, then its science jobs again on copies of
 * their images with injected sources, the candidates matched, the figures
 * and plots written.
 *
 * The pipeline's commands run as child processes of o->exe (`rapid db
 * init`, `ingest`, `ingest-psf`, `launch`, `register`, `job`), exactly as an operator
 * runs them (steps 1 and 2: the science jobs' products are all the
 * evaluation needs, so post-processing is left out); this file only
 * plans, injects, matches and counts. */
#define _GNU_SOURCE
#include "rapid/eval.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <jansson.h>

#include "core/stats.h"
#include "eval/eval_internal.h"
#include "pipeline/steps_internal.h"
#include "rapid/coadd.h"
#include "rapid/db.h"
#include "rapid/filters.h"
#include "rapid/sim.h"

#define PATHMAX 4096

static const char *const method_names[RAPID_EVAL_NMETHOD] = {"zogy", "sfft", "naive"};

void rapid_eval_opts_init(rapid_eval_opts *o)
{
    int k;

    memset(o, 0, sizeof *o);
    o->filter = "H158";
    for (k = 0; k < RAPID_EVAL_NMETHOD; k++)
        o->methods[k] = 1;
    o->per_image = 500;
    o->min_injections = 20000;
    o->seed = 1;
    o->jobs = 2;
    o->sim_tiles = 4;
    o->sim_epochs = 8;
    o->sim_scas = 3;
    o->sim_size = 4088;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void say(const rapid_eval_opts *o, const char *fmt, ...)
{
    va_list ap;

    if (o->quiet)
        return;
    va_start(ap, fmt);
    fputs("eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------- child processes */

/* Start argv[0] = o->exe with its output appended to log; the pid, or -1. */
static pid_t spawn(const char *exe, char *const *argv, const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Run a rapid command to the end: its exit code; a failure (any code but
 * those in ok) is an error naming the command and its log. */
static int command(const rapid_eval_opts *o, const char *log, rapid_err *err, int ok2,
                   ...)
{
    char *argv[32];
    const char *a;
    va_list ap;
    int n = 0, rc;
    pid_t pid;

    argv[n++] = (char *)o->exe;
    va_start(ap, ok2);
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    if ((pid = spawn(o->exe, argv, log)) < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot start: %s", o->exe, strerror(errno));
    rc = wait_exit(pid);
    if (rc != 0 && rc != ok2)
        return rapid_fail(err, RAPID_E_IO, "`rapid %s` ended with exit code %d (its "
                          "output: %s)", argv[1], rc, log);
    return 0;
}

/* --------------------------------------------------------- accumulation */

typedef struct acc {
    rapid_eval_inj *inj;
    long ninj, cap;
    double *fp;
    long nfp;
    float *m5;
    int nimages;
    long known, artefact, fp_negative, fp_star, fp_galaxy;
    int failed;
} acc;

static int acc_grow(acc *a, long n)
{
    if (a->ninj + n > a->cap) {
        long cap = a->cap ? a->cap : 4096;
        rapid_eval_inj *p;
        float *q;
        while (cap < a->ninj + n)
            cap *= 2;
        if (!(p = realloc(a->inj, (size_t)cap * sizeof *p)))
            return RAPID_E_NOMEM;
        a->inj = p;
        if (!(q = realloc(a->m5, (size_t)cap * sizeof *q)))
            return RAPID_E_NOMEM;
        a->m5 = q;
        a->cap = cap;
    }
    return 0;
}

/* One injected job's results into the accumulators. */
static int measure(const eval_scijob *j, const rapid_eval_source *src, int nsrc,
                   const char *outdir, const rapid_eval_opts *o, acc *accs, rapid_err *err)
{
    char path[PATHMAX];
    json_t *man = NULL, *diffs;
    double *ix = NULL, *iy, *tx, *ty, *tra, *tdec, *tmag, *tfl;
    int32_t *tgrp;
    int64_t *thost;
    rapid_table injt = RAPID_TABLE_INIT;
    size_t d;
    int rc, k;

    eval_pathf(path, sizeof path, "%s/manifest.json", outdir);
    if ((rc = eval_read_manifest(path, &man, err)) != 0)
        return rc;
    diffs = json_object_get(man, "diffs");
    if (!(ix = malloc((size_t)(nsrc > 0 ? nsrc : 1) * 2 * sizeof *ix))) {
        json_decref(man);
        return rapid_fail(err, RAPID_E_NOMEM, "no memory");
    }
    iy = ix + (nsrc > 0 ? nsrc : 1);
    for (k = 0; k < nsrc; k++) {
        ix[k] = src[k].x;
        iy[k] = src[k].y;
    }
    /* what was injected and what each method made of it, kept beside the
     * job's catalogs (injections.fits) */
    if (rapid_table_init(&injt, nsrc) != 0 ||
        !(tx = rapid_table_add_f64(&injt, "x", "pix")) ||
        !(ty = rapid_table_add_f64(&injt, "y", "pix")) ||
        !(tra = rapid_table_add_f64(&injt, "ra", "deg")) ||
        !(tdec = rapid_table_add_f64(&injt, "dec", "deg")) ||
        !(tmag = rapid_table_add_f64(&injt, "mag", "mag")) ||
        !(tfl = rapid_table_add_f64(&injt, "flux_dn", "DN")) ||
        !(tgrp = rapid_table_add_i32(&injt, "nuclear", "")) ||
        !(thost = rapid_table_add_i64(&injt, "host", ""))) {
        free(ix);
        json_decref(man);
        rapid_table_release(&injt);
        return rapid_fail(err, RAPID_E_NOMEM, "no memory");
    }
    for (k = 0; k < nsrc; k++) {
        tx[k] = src[k].x;
        ty[k] = src[k].y;
        tra[k] = src[k].ra;
        tdec[k] = src[k].dec;
        tmag[k] = src[k].mag;
        tfl[k] = src[k].flux_dn;
        tgrp[k] = src[k].group == RAPID_EVAL_NUCLEAR;
        thost[k] = src[k].host;
    }
    for (d = 0; rc == 0 && d < json_array_size(diffs); d++) {
        json_t *df = json_array_get(diffs, d);
        const char *name = json_string_value(json_object_get(df, "method"));
        const char *cat = eval_product(df, "catalog"), *unc = eval_product(df, "unc"),
                   *psf = eval_product(df, "psf"), *dif = eval_product(df, "diff");
        rapid_table t = RAPID_TABLE_INIT;
        rapid_image u = RAPID_IMAGE_INIT, p = RAPID_IMAGE_INIT, dimg = RAPID_IMAGE_INIT;
        rapid_eval_cand *c = NULL;
        rapid_eval_counts cnt;
        const rapid_column *cx, *cy, *cf, *ce, *cp, *cb, *cs;
        acc *a = NULL;
        double sig;
        long r;
        int mi;

        for (mi = 0; mi < RAPID_EVAL_NMETHOD; mi++)
            if (name && !strcmp(name, method_names[mi]) && o->methods[mi])
                a = &accs[mi];
        if (!a)
            continue;
        if (!psf) /* the naive difference: the science image's PSF */
            psf = j->psf;
        if (strcmp(json_string_value(json_object_get(df, "status")) ?: "", "ok") || !cat ||
            !unc || !dif) {
            a->failed++;
            continue;
        }
        if ((rc = rapid_fits_read_table(cat, NULL, &t, err)) != 0 ||
            (rc = rapid_fits_read_image(unc, NULL, &u, err)) != 0 ||
            (rc = rapid_fits_read_image(psf, NULL, &p, err)) != 0 ||
            (rc = rapid_fits_read_image(dif, NULL, &dimg, err)) != 0)
            goto next;
        cx = rapid_table_col(&t, "x");
        cy = rapid_table_col(&t, "y");
        cf = rapid_table_col(&t, "flux_psf");
        ce = rapid_table_col(&t, "fluxerr_psf");
        cp = rapid_table_col(&t, "pass");
        cb = rapid_table_col(&t, "fail_bits");
        cs = rapid_table_col(&t, "sign");
        if (!cx || !cy || !cf || !ce || !cp || cx->type == RAPID_COL_STR ||
            cy->type == RAPID_COL_STR || cf->type == RAPID_COL_STR ||
            ce->type == RAPID_COL_STR || cp->type == RAPID_COL_STR) {
            rc = rapid_fail(err, RAPID_E_TABLE, "%s: no numeric x, y, flux_psf, fluxerr_psf "
                            "and pass columns", cat);
            goto next;
        }
        if (!(c = malloc((size_t)(t.nrows > 0 ? t.nrows : 1) * sizeof *c)) ||
            acc_grow(a, nsrc) != 0) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
            goto next;
        }
        for (r = 0; r < t.nrows; r++) {
            c[r].x = eval_colval(cx, r);
            c[r].y = eval_colval(cy, r);
            c[r].flux = eval_colval(cf, r);
            c[r].fluxerr = eval_colval(ce, r);
            c[r].pass = eval_colval(cp, r) != 0;
            c[r].fail_bits = cb && cb->type != RAPID_COL_STR &&
                                     eval_colval(cb, r) >= 0
                                 ? (uint32_t)eval_colval(cb, r) : 0;
            c[r].sign = cs && cs->type != RAPID_COL_STR ? (eval_colval(cs, r) < 0 ? -1 : 1)
                                                        : (c[r].flux < 0 ? -1 : 1);
        }
        for (k = 0; k < nsrc; k++) {
            rapid_eval_inj *e = &a->inj[a->ninj + k];
            e->mag = src[k].mag;
            e->group = src[k].group;
            /* DN to DN/s: the flux in the difference's unit */
            e->flux_true = pow(10, -0.4 * (src[k].mag - j->zp));
        }
        rc = rapid_eval_match(a->inj + a->ninj, ix, iy, nsrc, c, t.nrows,
                              j->known.nrows ? (const double *)rapid_table_col(&j->known, "x")->data : NULL,
                              j->known.nrows ? (const double *)rapid_table_col(&j->known, "y")->data : NULL,
                              j->known.nrows, j->dq.data, j->dq.nx, j->dq.ny, 0.5, j->zp,
                              &a->fp, &a->nfp, &cnt, err);
        if (rc == 0) {
            /* sources off the image, or where the difference has no data
             * (the reference does not cover it), are not injections */
            long kept = 0;
            char col[40];
            int32_t *tf, *td, *tb;
            double *tp;
            snprintf(col, sizeof col, "found_%s", name);
            tf = rapid_table_add_i32(&injt, col, "");
            snprintf(col, sizeof col, "flux_psf_%s", name);
            tp = rapid_table_add_f64(&injt, col, "DN/s");
            snprintf(col, sizeof col, "detected_%s", name);
            td = rapid_table_add_i32(&injt, col, "");
            snprintf(col, sizeof col, "fail_bits_%s", name);
            tb = rapid_table_add_i32(&injt, col, "");
            if (!tf || !tp || !td || !tb) {
                rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
                goto next;
            }
            for (k = 0; k < nsrc; k++) {
                tf[k] = a->inj[a->ninj + k].found;
                tp[k] = a->inj[a->ninj + k].flux_psf;
                td[k] = a->inj[a->ninj + k].detected;
                tb[k] = (int32_t)a->inj[a->ninj + k].fail_bits;
            }
            for (k = 0; k < nsrc; k++) {
                long px = lround(src[k].x), py = lround(src[k].y);
                if (src[k].flux_dn > 0 && px >= 0 && py >= 0 && px < dimg.nx && py < dimg.ny &&
                    isfinite(dimg.data[py * dimg.nx + px]))
                    a->inj[a->ninj + kept++] = a->inj[a->ninj + k];
            }
            a->ninj += kept;
            a->known += cnt.known;
            a->artefact += cnt.artefact;
            a->fp_negative += cnt.fp_negative;
            for (r = 0; r < t.nrows; r++)
                if (c[r].fate == RAPID_EVAL_FALSE) {
                    int under = eval_scene_under(&j->scene, c[r].x, c[r].y);
                    a->fp_star += under == EVAL_UNDER_STAR;
                    a->fp_galaxy += under == EVAL_UNDER_GALAXY;
                }
            rapid_median_sample(u.data, (size_t)u.nx * u.ny, 1000000, &sig, NULL);
            a->m5[a->nimages++] = (float)rapid_eval_m5sigma(j->zp, sig, p.data, (long)p.nx * p.ny);
        }
    next:
        free(c);
        rapid_table_release(&t);
        rapid_image_release(&u);
        rapid_image_release(&p);
        rapid_image_release(&dimg);
    }
    eval_pathf(path, sizeof path, "%s/injections.fits", outdir);
    if (rc == 0)
        rc = rapid_fits_write_table(path, &injt, "INJECTIONS", err);
    rapid_table_release(&injt);
    free(ix);
    json_decref(man);
    return rc;
}

/* The images of an injected job's products, once measured. */
static void drop_images(const char *outdir)
{
    char path[PATHMAX];
    struct dirent *e;
    DIR *d = opendir(outdir);

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".fits") && !strstr(e->d_name, "_cat") &&
            !strstr(e->d_name, "catalog") && !strstr(e->d_name, "cand") &&
            strcmp(e->d_name, "injections.fits")) {
            eval_pathf(path, sizeof path, "%s/%s", outdir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* ------------------------------------------------------------- the run */

typedef struct task {
    int job, round;
    pid_t pid;
    char cfg[PATHMAX], out[PATHMAX], l2[PATHMAX];
    rapid_eval_source *src;
} task;

static int start_task(const rapid_eval_opts *o, const char *work, eval_scijob *j, task *t,
                      rapid_err *err)
{
    char log[PATHMAX], name[300];
    rapid_image sci = RAPID_IMAGE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_table statics = RAPID_TABLE_INIT;
    rapid_eval_plan_opts po;
    const char *set[16];
    char *argv[4];
    int rc;

    eval_pathf(name, sizeof name, "%.*s_r%d", (int)(strlen(j->base) - 5), j->base, t->round);
    eval_pathf(t->l2, sizeof t->l2, "%s/injected/%s.fits", work, name);
    eval_pathf(t->out, sizeof t->out, "%s/jobs/%s", work, name);
    eval_pathf(t->cfg, sizeof t->cfg, "%s/jobs/%s.ini", work, name);
    eval_pathf(log, sizeof log, "%s/logs/%s.log", work, name);
    rapid_eval_plan_opts_init(&po);
    po.n = o->per_image;
    po.seed = o->seed * 1000003u + (uint64_t)t->job * 1009u + (uint64_t)t->round;
    if (!(t->src = malloc((size_t)(po.n > 0 ? po.n : 1) * sizeof *t->src)))
        return rapid_fail(err, RAPID_E_NOMEM, "no memory");
    {
        char statics_path[PATHMAX];
        eval_pathf(statics_path, sizeof statics_path, "%s/sim/truth/static.fits", work);
        if (o->from_sim)
            eval_pathf(statics_path, sizeof statics_path, "%s/truth/static.fits", o->from_sim);
        if (access(statics_path, R_OK) == 0 &&
            (rc = rapid_fits_read_table(statics_path, NULL, &statics, err)) != 0)
            return rc;
    }
    if ((rc = rapid_fits_read_image(j->l2, "SCI", &sci, err)) == 0 &&
        (rc = rapid_wcs_from_header(&w, &sci.hdr, err)) == 0 &&
        (rc = rapid_eval_plan(&w, sci.nx, sci.ny, o->filter, statics.nrows ? &statics : NULL,
                              &po, t->src, err)) == 0)
        rc = rapid_eval_inject_l2(j->l2, t->l2, t->src, po.n, po.seed + 7, err);
    rapid_image_release(&sci);
    rapid_wcs_release(&w);
    rapid_table_release(&statics);
    if (rc)
        return rc;
    set[0] = "job", set[1] = "out", set[2] = t->out;
    set[3] = "science", set[4] = "image", set[5] = t->l2;
    set[6] = "science", set[7] = "psf", set[8] = j->psf;
    set[9] = "job", set[10] = "threads", set[11] = "1";
    set[12] = NULL;
    if ((rc = eval_config_write(&j->cfg, t->cfg, set, err)) != 0)
        return rc;
    argv[0] = (char *)o->exe;
    argv[1] = "job";
    argv[2] = t->cfg;
    argv[3] = NULL;
    if ((t->pid = spawn(o->exe, argv, log)) < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot start: %s", o->exe, strerror(errno));
    return 0;
}

static int cmp_float_asc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double median_f(float *v, int n)
{
    int m = 0, k;

    for (k = 0; k < n; k++)
        if (isfinite(v[k]))
            v[m++] = v[k];
    if (m == 0)
        return NAN;
    qsort(v, (size_t)m, sizeof *v, cmp_float_asc);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

int rapid_eval_run(const rapid_eval_opts *o, rapid_eval_report *rep, rapid_err *err)
{
    char simdir[PATHMAX], pipe[PATHMAX], db[PATHMAX], path[PATHMAX], start[64], end[64],
        procdate[16], psfdir[PATHMAX], log[PATHMAX];
    rapid_table pt = RAPID_TABLE_INIT;
    eval_scijob *jobs = NULL;
    acc accs[RAPID_EVAL_NMETHOD];
    task *tasks = NULL;
    double t0 = now(), mjd_split = NAN, mjd_last = -INFINITY;
    int njobs = 0, rc, k, m, ntask, next = 0, running = 0, done = 0, maxvisit = -1;
    rapid_eval_bins bins = {21.0, 28.0, 0.25};
    time_t tt = time(NULL);
    struct tm tm;

    memset(rep, 0, sizeof *rep);
    memset(accs, 0, sizeof accs);
    if (!o || !o->work || !o->exe || o->per_image < 1 || o->jobs < 1 || !o->filter)
        return rapid_fail(err, RAPID_E_ARG, "eval: bad options");
    eval_pathf(rep->filter, sizeof rep->filter, "%s", o->filter);
    gmtime_r(&tt, &tm);
    strftime(procdate, sizeof procdate, "%Y%m%d", &tm);
    eval_pathf(pipe, sizeof pipe, "%s/pipeline", o->work);
    eval_pathf(db, sizeof db, "sqlite:%s/eval.db", o->work);
    if ((rc = steps_mkdirs(pipe, err)) != 0)
        return rc;
    eval_pathf(path, sizeof path, "%s/injected", o->work);
    if ((rc = steps_mkdirs(path, err)) != 0)
        return rc;
    eval_pathf(path, sizeof path, "%s/jobs", o->work);
    if ((rc = steps_mkdirs(path, err)) != 0)
        return rc;
    eval_pathf(path, sizeof path, "%s/logs", o->work);
    if ((rc = steps_mkdirs(path, err)) != 0)
        return rc;
    eval_pathf(path, sizeof path, "%s/plots", o->work);
    if ((rc = steps_mkdirs(path, err)) != 0)
        return rc;

    /* 1. the survey */
    if (o->from_sim) {
        eval_pathf(simdir, sizeof simdir, "%s", o->from_sim);
    } else {
        rapid_sim_config c;
        eval_pathf(simdir, sizeof simdir, "%s/sim", o->work);
        eval_pathf(path, sizeof path, "%s/.done", simdir);
        if (access(path, F_OK) != 0) {
            FILE *f;
            rapid_sim_config_init(&c);
            c.seed = o->seed;
            c.ntiles = o->sim_tiles;
            c.epochs = o->sim_epochs;
            c.nscas = o->sim_scas;
            c.size = o->sim_size;
            c.nfilters = 1;
            if (!(c.filters[0] = rapid_filter_by_name(o->filter)))
                return rapid_fail(err, RAPID_E_ARG, "eval: unknown filter '%s'", o->filter);
            say(o, "simulating %d tiles x %d visits x %d detectors (%d^2 px, %s)", c.ntiles,
                c.epochs, c.nscas, c.size, o->filter);
            if ((rc = rapid_sim_run(&c, simdir, NULL, NULL, err)) != 0)
                return rc;
            if ((f = fopen(path, "w")))
                fclose(f);
        }
    }
    /* the first half of the visits (at least 3) make the references */
    eval_pathf(path, sizeof path, "%s/truth/pointings.fits", simdir);
    if ((rc = rapid_fits_read_table(path, NULL, &pt, err)) != 0)
        return rc;
    {
        const rapid_column *cv = rapid_table_col(&pt, "visit"), *cm = rapid_table_col(&pt, "mjd");
        long r;
        int split;
        if (!cv || !cm || cv->type != RAPID_COL_I32 || cm->type != RAPID_COL_F64) {
            /* as rapid sim writes them */
            rapid_table_release(&pt);
            return rapid_fail(err, RAPID_E_TABLE, "%s: no visit (J), mjd (D) columns", path);
        }
        for (r = 0; r < pt.nrows; r++) {
            maxvisit = ((const int32_t *)cv->data)[r] > maxvisit ? ((const int32_t *)cv->data)[r]
                                                                 : maxvisit;
            mjd_last = fmax(mjd_last, ((const double *)cm->data)[r]);
        }
        split = (maxvisit + 1) / 2 > 3 ? (maxvisit + 1) / 2 : 3;
        for (r = 0; r < pt.nrows; r++)
            if (((const int32_t *)cv->data)[r] == split)
                mjd_split = isnan(mjd_split) ? ((const double *)cm->data)[r]
                                             : fmin(mjd_split, ((const double *)cm->data)[r]);
    }
    rapid_table_release(&pt);
    if (isnan(mjd_split))
        return rapid_fail(err, RAPID_E_TOOFEW, "%s: %d visits: at least 4 are needed (3 for "
                          "the references, 1 to evaluate)", simdir, maxvisit + 1);
    rapid_time_format(rapid_time_from_mjd(mjd_split - 0.01), start);
    rapid_time_format(rapid_time_from_mjd(mjd_last + 1), end);

    /* 2. the normal pipeline over the later visits */
    eval_pathf(log, sizeof log, "%s/logs/pipeline.log", o->work);
    eval_pathf(psfdir, sizeof psfdir, "%s/psf", simdir);
    say(o, "the pipeline over %s .. %s (references from the earlier visits)", start, end);
    {
        char jobs_txt[16];
        eval_pathf(jobs_txt, sizeof jobs_txt, "%d", o->jobs);
        if ((rc = command(o, log, err, 0, "db", "init", "--db", db, (char *)NULL)) != 0 ||
            (rc = command(o, log, err, 0, "ingest", "--db", db, simdir, (char *)NULL)) != 0 ||
            (rc = command(o, log, err, 0, "ingest-psf", "--db", db, psfdir, (char *)NULL)) != 0 ||
            (rc = command(o, log, err, 0, "launch", "--db", db, "--work", pipe, "--start",
                          start, "--end", end, "--procdate", procdate, "--executor", "local",
                          "--jobs", jobs_txt, (char *)NULL)) != 0 ||
            (rc = command(o, log, err, 0, "register", "--db", db, "--work", pipe,
                          "--procdate", procdate, (char *)NULL)) != 0)
            return rc;
    }
    if ((rc = eval_find_science_jobs(pipe, atoi(procdate), simdir, 1, &jobs, &njobs, err)) != 0)
        return rc;
    /* what lies under the false positives: the static truth on each image */
    {
        rapid_table statics = RAPID_TABLE_INIT;
        eval_pathf(path, sizeof path, "%s/truth/static.fits", simdir);
        if (access(path, R_OK) == 0 &&
            ((rc = rapid_fits_read_table(path, NULL, &statics, err)) != 0 ||
             (rc = eval_scene_load(jobs, njobs, &statics, o->filter, err)) != 0)) {
            rapid_table_release(&statics);
            eval_scijobs_free(jobs, njobs);
            return rc;
        }
        rapid_table_release(&statics);
    }
    if (njobs == 0) {
        free(jobs);
        return rapid_fail(err, RAPID_E_TOOFEW, "eval: the pipeline made no difference image "
                          "(see %s)", log);
    }
    rep->n_science = njobs;
    rep->rounds = (int)((o->min_injections + (long)njobs * o->per_image - 1) /
                        ((long)njobs * o->per_image));
    if (rep->rounds < 1)
        rep->rounds = 1;
    ntask = njobs * rep->rounds;
    say(o, "%d science images x %d round(s) x %d injections", njobs, rep->rounds, o->per_image);

    /* 3. the injected jobs, o->jobs at a time */
    if (!(tasks = calloc((size_t)ntask, sizeof *tasks))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "no memory");
        goto finish;
    }
    for (k = 0; k < ntask; k++) {
        tasks[k].job = k % njobs;
        tasks[k].round = k / njobs;
        tasks[k].pid = -1;
    }
    while (rc == 0 && done < ntask) {
        while (rc == 0 && running < o->jobs && next < ntask) {
            if ((rc = start_task(o, o->work, &jobs[tasks[next].job], &tasks[next], err)) == 0) {
                running++;
                next++;
            }
        }
        if (running > 0) {
            int st;
            pid_t pid = waitpid(-1, &st, 0);
            if (pid < 0) {
                if (errno == EINTR)
                    continue;
                rc = rapid_fail(err, RAPID_E_IO, "eval: waiting for jobs: %s", strerror(errno));
                break;
            }
            for (k = 0; k < next; k++) {
                task *t = &tasks[k];
                int code;
                if (t->pid != pid)
                    continue;
                t->pid = -1;
                running--;
                done++;
                code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                if (code < 32)
                    rc = measure(&jobs[t->job], t->src, o->per_image, t->out, o, accs, err);
                else
                    rep->jobs_failed++;
                if (!o->keep_images) {
                    unlink(t->l2);
                    drop_images(t->out);
                }
                free(t->src);
                t->src = NULL;
                if (!o->quiet && isatty(2))
                    fprintf(stderr, "\reval: %d of %d jobs done (%d failed)   ", done, ntask,
                            rep->jobs_failed);
            }
        }
    }
    if (!o->quiet && isatty(2))
        fputc('\n', stderr);
    while (running > 0 && wait(NULL) > 0)
        running--;

finish:
    /* 4. the figures */
    for (m = 0; rc == 0 && m < RAPID_EVAL_NMETHOD; m++) {
        rapid_eval_method *rm = &rep->m[m];
        acc *a = &accs[m];
        double m5;
        rm->name = method_names[m];
        rm->used = o->methods[m] && a->nimages > 0;
        rm->known = a->known;
        rm->artefact = a->artefact;
        rm->fp_negative = a->fp_negative;
        rm->fp_star = a->fp_star;
        rm->fp_galaxy = a->fp_galaxy;
        rm->images_failed = a->failed;
        if (!rm->used)
            continue;
        m5 = median_f(a->m5, a->nimages);
        if ((rc = rapid_eval_metrics(a->inj, a->ninj, RAPID_EVAL_ALL, a->fp, a->nfp,
                                     a->nimages, m5, &bins, &rm->all, err)) != 0 ||
            (rc = rapid_eval_metrics(a->inj, a->ninj, RAPID_EVAL_FIELD, a->fp, a->nfp,
                                     a->nimages, m5, &bins, &rm->field, err)) != 0 ||
            (rc = rapid_eval_metrics(a->inj, a->ninj, RAPID_EVAL_NUCLEAR, a->fp, a->nfp,
                                     a->nimages, m5, &bins, &rm->nuclear, err)) != 0)
            break;
    }
    rep->seconds = now() - t0;
    if (rc == 0)
        rc = rapid_eval_write(o->work, rep, err);
    for (m = 0; m < RAPID_EVAL_NMETHOD; m++) {
        free(accs[m].inj);
        free(accs[m].fp);
        free(accs[m].m5);
    }
    for (k = 0; tasks && k < ntask; k++)
        free(tasks[k].src);
    free(tasks);
    eval_scijobs_free(jobs, njobs);
    return rc;
}
