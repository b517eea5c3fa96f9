/* bench_steps.c - the bookkeeping steps of a night at scale: launch and
 * registration of science and reference jobs, then post-processing launch
 * and its registration, on SQLite and (with --pg) PostgreSQL.
 *
 *   bench_steps [--jobs N] [--tiles T] [--priors P] [--pg ADMIN_URL]
 *               [--tmp DIR] [--slurm JOBCMD [--slurm-wait]]
 *
 * 1. The database holds, over T tiles (one filter each), P prior images
 *    per tile (a month before the night) and N science images in the
 *    night (2,069 by default: the existing system's night); every other
 *    tile has a registered reference image, the rest get reference jobs.
 *    One PSF per detector.  Not timed.
 * 2. rapid_steps_launch (the executor "none": configurations written, no
 *    job run), timed.
 * 3. Every job's directory as a finished job leaves it, by the test
 *    suite's fake_job: tiny product files, manifest.json listing them
 *    with sizes and MD5s, job.log ending "terminating_exitcode = 0".  Not
 *    timed.
 * 4. rapid_steps_register, timed; then the same for post-processing
 *    (launch, directories, registration).
 * One line per figure: back end, step, jobs, seconds, jobs/s, and this
 * process's CPU time for it (the client's share; on a loaded machine
 * the wall clock also counts waits for a core).  The
 * process exits 1 when a step did not do every job.
 *
 * With --slurm JOBCMD (SQLite only; SLURM_CONF names a running cluster,
 * bench/bench_slurm.sh starts one): after the launch, the Slurm executor
 * submits the jobs (rapid_steps_slurm, JOBCMD as the job program), timed:
 * its sbatch calls and the storing of the ids.  With --slurm-wait, then
 * it waits until Slurm ran them all, timed from the start of the
 * submission.  No registration.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "benchutil.h"
#include "rapid/db.h"
#include "rapid/filters.h"
#include "rapid/ingest.h"
#include "rapid/steps.h"
#include "rapid/tile.h"
#include "rapid/wcs.h"

#define MJD0 62000.0
#define NIGHT (MJD0 + 40.0)
#define PROCDATE 20300101

/* ------------------------------------------------------ the database */

/* Image k of tile t: its detector centred near the tile centre. */
static int l2_record(int64_t rtid, int k, double mjd, int fid,
                     rapid_l2file *r, rapid_err *err)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_tile t;
    uint64_t s = 0xb0b0ull * (uint64_t)rtid + (uint64_t)k;
    double crval[2], crpix[2], cd[2][2], scale, pa, c, sn;
    char date[RAPID_DB_TIME_MAX];
    int sca = 1 + k % RAPID_NSCA, rc;

    if ((rc = rapid_tile_get(RAPID_TILE_NSIDE, rtid, &t, err)) != 0)
        return rc;
    pa = 360 * bench_uniform(&s);
    c = cos(pa * M_PI / 180), sn = sin(pa * M_PI / 180);
    crval[1] = t.cdec + 0.02 * (2 * bench_uniform(&s) - 1);
    crval[0] = t.cra + 0.02 * (2 * bench_uniform(&s) - 1) /
                           cos(crval[1] * M_PI / 180);
    scale = RAPID_PIXSCALE / 3600.0;
    crpix[0] = crpix[1] = (RAPID_SCA_PIX + 1) / 2.0;
    cd[0][0] = -scale * c, cd[0][1] = scale * sn;
    cd[1][0] = scale * sn, cd[1][1] = scale * c;
    if ((rc = rapid_wcs_from_terms(&w, crval, crpix, cd, NULL, RAPID_SCA_PIX,
                                   RAPID_SCA_PIX, err)) != 0 ||
        (rc = rapid_wcs_to_header(&w, &h, err)) != 0)
        goto cleanup;
    rapid_time_format(rapid_time_from_mjd(mjd), date);
    rapid_header_set_str(&h, "DATE-OBS", date, NULL);
    rapid_header_set_double(&h, "MJD-OBS", mjd, NULL);
    rapid_header_set_str(&h, "FILTER", rapid_filter_by_fid(fid)->name, NULL);
    rapid_header_set_double(&h, "EXPTIME", 140.0, NULL);
    rapid_header_set_long(&h, "SCA_NUM", sca, NULL);
    rapid_header_set_double(&h, "RA_TARG", crval[0], NULL);
    rapid_header_set_double(&h, "DEC_TARG", crval[1], NULL);
    rapid_header_set_double(&h, "PA_OBSY", pa, NULL);
    rapid_header_set_double(&h, "PA_FPA", pa, NULL);
    rapid_header_set_double(&h, "ZPTMAG", 26.3, NULL);
    rapid_header_set_double(&h, "SKY_MEAN", 40.0, NULL);
    rc = rapid_l2file_from_headers(&h, NULL, RAPID_SCA_PIX, RAPID_SCA_PIX, r,
                                   err);
cleanup:
    rapid_wcs_release(&w);
    rapid_header_release(&h);
    return rc;
}

static int fill(rapid_db *db, const char *dir, int njobs, int ntiles,
                int npriors, int64_t *rtid, int *nref, rapid_err *err)
{
    rapid_db_outcome out;
    rapid_l2file r;
    rapid_psffile p;
    rapid_refimage ref;
    int64_t rids[25];
    FILE *f;
    int t, k, n = 0, rc, fid = 1;

    if ((rc = rapid_db_begin(db, err)) != 0)
        return rc;
    for (k = 1; k <= RAPID_NSCA; k++) {
        memset(&p, 0, sizeof p);
        p.fid = fid, p.sca = k;
        snprintf(p.filename, sizeof p.filename, "/psf/psf_%02d.fits", k);
        snprintf(p.checksum, sizeof p.checksum, "%032x", (unsigned)k);
        if ((rc = rapid_db_add_psffile(db, &p, &out, err)) != 0 ||
            (rc = rapid_db_confirm(db, RAPID_PRODUCT_PSF, p.psfid, NULL,
                                   err)) != 0)
            goto fail;
    }
    *nref = 0;
    for (t = 0; t < ntiles; t++) {
        /* tiles along a declination ring near the survey field */
        rtid[t] = rapid_tile_rtid(RAPID_TILE_NSIDE, 10.0 + 0.3 * t, -44.0);
        for (k = 0; k < npriors; k++) {
            if ((rc = l2_record(rtid[t], k, MJD0 + 30.0 * k / npriors + 1e-3 * t, fid,
                                &r, err)) != 0)
                goto fail;
            snprintf(r.filename, sizeof r.filename, "/l2/prior_%d_%d.fits",
                     t, k);
            snprintf(r.checksum, sizeof r.checksum, "%032x", (unsigned)n++);
            if ((rc = rapid_db_add_l2file(db, &r, &out, err)) != 0)
                goto fail;
            if (k < 25)
                rids[k] = r.rid;
        }
        if (t % 2 == 0) { /* a registered reference */
            memset(&ref, 0, sizeof ref);
            ref.field = rtid[t], ref.fid = fid, ref.ppid = RAPID_PPID_REFERENCE;
            /* an empty file where the jobs look for it */
            snprintf(ref.filename, sizeof ref.filename, "%s/ref_%d.fits", dir, t);
            if (!(f = fopen(ref.filename, "w")) || fclose(f) != 0) {
                rc = rapid_fail(err, RAPID_E_IO, "%s: cannot make", ref.filename);
                goto fail;
            }
            snprintf(ref.checksum, sizeof ref.checksum, "%032x", (unsigned)t);
            if ((rc = rapid_db_add_refimage(db, &ref, NULL, rids,
                                            npriors < 25 ? npriors : 25,
                                            err)) != 0 ||
                (rc = rapid_db_confirm(db, RAPID_PRODUCT_REFIMAGE, ref.rfid,
                                       NULL, err)) != 0)
                goto fail;
            ++*nref;
        }
    }
    for (k = 0; k < njobs; k++) {
        t = k % ntiles;
        if ((rc = l2_record(rtid[t], npriors + k / ntiles,
                            NIGHT + 0.5 * k / njobs, fid, &r, err)) != 0)
            goto fail;
        snprintf(r.filename, sizeof r.filename, "/l2/night_%d.fits", k);
        snprintf(r.checksum, sizeof r.checksum, "%032x", (unsigned)n++);
        if ((rc = rapid_db_add_l2file(db, &r, &out, err)) != 0)
            goto fail;
        if (r.field != rtid[t]) {
            rc = rapid_fail(err, RAPID_E_ARG, "image %d: tile %lld, not %lld",
                            k, (long long)r.field, (long long)rtid[t]);
            goto fail;
        }
    }
    return rapid_db_commit(db, err);
fail:
    rapid_db_rollback(db);
    return rc;
}

/* ------------------------------------------- what a finished job leaves */

/* A job finished as the steps' tests finish them: the test suite's fake
 * job (tests/fake_job.c, compiled in) writes tiny product files, the
 * manifest listing them with sizes and MD5s, and the log; 0 on success. */
int fake_job_run(const char *config);

/* Every unended job of the date (of post-processing or not) finished. */
static int finish_jobs(rapid_db *db, const char *work, int postproc,
                       rapid_err *err)
{
    char path[1200];
    rapid_job *v = NULL;
    int n = 0, i, rc;

    if ((rc = rapid_db_unclosed_jobs(db, PROCDATE, 0, &v, &n, err)) != 0)
        return rc;
    /* the reference jobs first: a science job reads its reference job's
     * manifest */
    for (i = 0; i < 2 * n && !rc; i++) {
        const rapid_job *j = &v[i % n];
        if ((j->ppid == RAPID_PPID_POSTPROC) != (postproc != 0) ||
            (j->ppid == RAPID_PPID_REFERENCE) != (i < n))
            continue;
        rapid_job_config_path(path, sizeof path, work, PROCDATE, j->jid);
        if (fake_job_run(path) != 0)
            rc = rapid_fail(err, RAPID_E_IO, "%s: cannot finish the job", path);
    }
    free(v);
    return rc;
}

/* ------------------------------------------------------------ timing */

/* This process's CPU time (s): on a loaded machine the wall clock also
 * counts the time it waited for a core. */
static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu0;

static void line(const char *be, const char *what, int jobs, double dt)
{
    double cpu = cpu_now() - cpu0;

    printf("%-10s %-26s %5d jobs: %7.3f s, %7.0f jobs/s; this process's"
           " CPU %6.3f s, %7.0f jobs/s\n", be, what, jobs, dt, jobs / dt,
           cpu, jobs / cpu);
    fflush(stdout);
}

/* --slurm: the job program Slurm runs; NULL: no Slurm. */
static const char *slurm_cmd;
static int slurm_wait;

/* The launched jobs submitted to Slurm, then waited for. */
static int slurm_submit(rapid_steps *s, const char *be, int expect,
                        rapid_err *err)
{
    rapid_step_report r;
    double t0, t1;
    int rc;

    s->job_cmd = slurm_cmd;
    s->set.slurm_poll = 1;
    memset(&r, 0, sizeof r);
    t0 = bench_now();
    if ((rc = rapid_steps_slurm(s, 0, 0, &r, err)) != 0)
        return rc;
    t1 = bench_now();
    line(be, "Slurm submission", r.ran, t1 - t0);
    printf("%-10s %d sbatch calls (arrays of at most %d)\n", be, r.arrays,
           s->set.slurm_array_max);
    if (r.ran != expect) {
        fprintf(stderr, "bench_steps: %d jobs submitted to Slurm, expected"
                " %d\n", r.ran, expect);
        return 1;
    }
    if (!slurm_wait)
        return 0;
    memset(&r, 0, sizeof r);
    if ((rc = rapid_steps_slurm(s, 0, 1, &r, err)) != 0)
        return rc;
    line(be, "Slurm submission to end", expect, bench_now() - t0);
    return 0;
}

static int run(const char *be, const char *url, const char *dir, int njobs,
               int ntiles, int npriors)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    rapid_db *db = NULL;
    int64_t rtid[256];
    int nref = 0, expect, rc, bad = 0;
    double t0;

    rapid_steps_init(&s);
    if ((rc = rapid_db_open(&db, url, RAPID_DB_CREATE, &err)) ||
        (rc = rapid_db_init(db, NULL, &err)) ||
        (rc = fill(db, dir, njobs, ntiles, npriors, rtid, &nref, &err)))
        goto cleanup;
    s.db = db;
    snprintf(s.work, sizeof s.work, "%s/work-%s", dir, be);
    s.procdate = PROCDATE;
    s.start = rapid_time_from_mjd(NIGHT);
    s.end = rapid_time_from_mjd(NIGHT + 1);
    snprintf(s.set.executor, sizeof s.set.executor, "none");

    t0 = bench_now(), cpu0 = cpu_now();
    if ((rc = rapid_steps_launch(&s, &r, &err)) != 0)
        goto cleanup;
    expect = njobs + (ntiles - nref);
    line(be, "launch", r.started, bench_now() - t0);
    if (r.started != expect || r.refjobs != ntiles - nref || r.noref) {
        fprintf(stderr, "bench_steps: launch started %d jobs (%d reference,"
                " %d without), expected %d (%d reference)\n", r.started,
                r.refjobs, r.noref, expect, ntiles - nref);
        bad = 1;
    }
    if (slurm_cmd) {
        bad |= (rc = slurm_submit(&s, be, expect, &err)) > 0;
        rc = rc > 0 ? 0 : rc;
        goto cleanup;
    }
    if ((rc = finish_jobs(db, s.work, 0, &err)) != 0)
        goto cleanup;
    t0 = bench_now(), cpu0 = cpu_now();
    if ((rc = rapid_steps_register(&s, 0, &r, &err)) != 0)
        goto cleanup;
    line(be, "register", r.registered, bench_now() - t0);
    if (r.registered != expect || r.diffimages != 3 * njobs) {
        fprintf(stderr, "bench_steps: registered %d jobs, %d difference"
                " images; expected %d, %d\n", r.registered, r.diffimages,
                expect, 3 * njobs);
        bad = 1;
    }

    t0 = bench_now(), cpu0 = cpu_now();
    if ((rc = rapid_steps_postproc(&s, &r, &err)) != 0)
        goto cleanup;
    line(be, "postproc (launch)", r.started, bench_now() - t0);
    if (r.started != njobs) {
        fprintf(stderr, "bench_steps: %d post-processing jobs, expected %d\n",
                r.started, njobs);
        bad = 1;
    }
    if ((rc = finish_jobs(db, s.work, 1, &err)) != 0)
        goto cleanup;
    t0 = bench_now(), cpu0 = cpu_now();
    if ((rc = rapid_steps_register(&s, 1, &r, &err)) != 0)
        goto cleanup;
    line(be, "register-postproc", r.registered, bench_now() - t0);
    if (r.registered != njobs || r.files != 3 * njobs) {
        fprintf(stderr, "bench_steps: %d post-processing jobs registered,"
                " %d files; expected %d, %d\n", r.registered, r.files, njobs,
                3 * njobs);
        bad = 1;
    }
cleanup:
    if (rc)
        fprintf(stderr, "bench_steps: %s: %s\n", be, err.msg);
    rapid_db_close(db);
    return rc || bad;
}

static int pg_admin(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        fprintf(stderr, "bench_steps: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *pg = NULL, *tmpbase = getenv("TMPDIR");
    char dir[1024], url[1200], cmd[1200], pgurl[1200], name[64];
    int njobs = 2069, ntiles = 12, npriors = 30, i, rc = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            njobs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tiles") == 0 && i + 1 < argc)
            ntiles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--priors") == 0 && i + 1 < argc)
            npriors = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc)
            pg = argv[++i];
        else if (strcmp(argv[i], "--tmp") == 0 && i + 1 < argc)
            tmpbase = argv[++i];
        else if (strcmp(argv[i], "--slurm") == 0 && i + 1 < argc)
            slurm_cmd = argv[++i];
        else if (strcmp(argv[i], "--slurm-wait") == 0)
            slurm_wait = 1;
        else {
            fprintf(stderr, "usage: bench_steps [--jobs N] [--tiles T] "
                            "[--priors P] [--pg ADMIN_URL] [--tmp DIR]"
                            " [--slurm JOBCMD [--slurm-wait]]\n");
            return 2;
        }
    }
    if (njobs < 1 || ntiles < 1 || ntiles > 256 || npriors < 3)
        return 2;
    snprintf(dir, sizeof dir, "%s/bench_steps.XXXXXX", tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(url, sizeof url, "sqlite:%s/rapid.db", dir);
    rc = run("sqlite", url, dir, njobs, ntiles, npriors);
    if (!rc && pg && !slurm_cmd) {
        /* a database of its own on the server, dropped afterwards */
        const char *slash = strchr(strstr(pg, "://") ? strstr(pg, "://") + 3 : pg, '/');
        snprintf(name, sizeof name, "rapid_steps_%ld", (long)getpid());
        snprintf(cmd, sizeof cmd, "CREATE DATABASE %s", name);
        snprintf(pgurl, sizeof pgurl, "%.*s/%s",
                 (int)(slash ? slash - pg : (long)strlen(pg)), pg, name);
        if (!(rc = pg_admin(pg, cmd)))
            rc = run("postgresql", pgurl, dir, njobs, ntiles, npriors);
        snprintf(cmd, sizeof cmd, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        pg_admin(pg, cmd);
    }
    /* Slurm may still run jobs there: bench_slurm.sh removes it */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!slurm_cmd && system(cmd) != 0)
        fprintf(stderr, "bench_steps: could not remove %s\n", dir);
    return rc ? 1 : 0;
}
