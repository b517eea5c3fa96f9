/* test_steps.c - the four steps through the library on SQLite, and on
 * PostgreSQL when RAPID_TEST_PG names a server: registration killed
 * (SIGKILL) after each job in turn and run again registers every job once;
 * the operator's settings file.  The jobs are played by fake_job (its path
 * in FAKE_JOB; without it the job tests are skipped). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbtest.h"
#include "rapid/steps.h"
#include "testutil.h"

static int use_pg;

/* A night: three prior images of one tile, three to process (detectors 1
 * and 2), all at the same pointing. */
static void survey(rapid_db *db)
{
    static const double mjd[6] = {62000, 62001, 62002, 62010, 62010, 62011};
    static const int sca[6] = {1, 1, 1, 1, 2, 1};
    rapid_err err = RAPID_ERR_INIT;
    rapid_db_outcome out;
    rapid_l2file r;
    test_l2 p;
    char seed[32];
    int i;

    for (i = 0; i < 6; i++) {
        test_l2_init(&p, 9.6, -44.0, mjd[i], "H158", sca[i]);
        snprintf(seed, sizeof seed, "steps%d", i);
        assert_int_equal(test_l2_record(&p, seed, &r), 0);
        assert_int_equal(rapid_db_add_l2file(db, &r, &out, &err), 0);
    }
}

static void steps_for(rapid_steps *s, rapid_db *db, const char *name)
{
    rapid_steps_init(s);
    s->db = db;
    snprintf(s->work, sizeof s->work, "%s/%s", test_tmpdir(), name);
    s->procdate = 20261207;
    s->start = rapid_time_from_mjd(62005);
    s->end = rapid_time_from_mjd(62020);
    s->job_cmd = getenv("FAKE_JOB");
    s->set.jobs = 2;
}

static int kill_at = -1;

static void die_at(const char *step, int done, int total, void *arg)
{
    (void)step, (void)total, (void)arg;
    if (done == kill_at)
        raise(SIGKILL);
}

/* Registration in a child process of its own connection, killed once
 * `at` jobs are registered (-1: never). */
static void register_killed(const rapid_steps *parent, const char *url,
                            int postproc, int at)
{
    pid_t pid;
    int st = 0;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rapid_err err = RAPID_ERR_INIT;
        rapid_step_report r;
        rapid_steps s = *parent;
        /* the parent's connection is left alone: never used, never closed */
        if (rapid_db_open(&s.db, url, 0, &err))
            _exit(3);
        s.progress = die_at, s.msg = NULL;
        kill_at = at;
        rapid_steps_register(&s, postproc, &r, &err);
        _exit(at < 0 ? 0 : 4);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static int64_t ended_ok(rapid_db *db, int ppid)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_job *v = NULL;
    int n = 0, i;
    int64_t k = 0;

    assert_int_equal(rapid_db_jobs(db, 20261207, ppid, &v, &n, &err), 0);
    for (i = 0; i < n; i++)
        k += v[i].status == 1 && v[i].exitcode == 0;
    free(v);
    return k;
}

static void night_rows(rapid_db *db, int postprocessed)
{
    assert_int_equal(test_db_count(db, "jobs"), postprocessed ? 7 : 4);
    assert_int_equal(ended_ok(db, 12), 1);
    assert_int_equal(ended_ok(db, 15), 3);
    assert_int_equal(test_db_count(db, "refimages"), 1);
    assert_int_equal(test_db_count(db, "refimimages"), 3);
    assert_int_equal(test_db_count(db, "refimcatalogs"), 1);
    assert_int_equal(test_db_count(db, "diffimages"), 9);
    assert_int_equal(test_db_count(db, "diffimmeta"), 9);
    if (postprocessed)
        assert_int_equal(ended_ok(db, 17), 3);
}

/* A fresh database with the survey (every round but the first). */
static void fresh_night(test_db *t, int round)
{
    test_db fresh;

    if (round) {
        assert_int_equal(test_db_make(&fresh, t->pg), 0);
        test_db_drop(t);
        *t = fresh;
    }
    survey(t->db);
}

/* Kill registration after 0, 1, ... 4 of its 4 jobs (one reference job,
 * three science jobs): the next registration does exactly the rest. */
static void test_register_killed(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    char name[48];
    int at;

    if (!getenv("FAKE_JOB"))
        skip();
    /* every point on SQLite; on PostgreSQL, where a database takes long to
     * make, the first, middle and last */
    for (at = 0; at <= 4; at += use_pg ? 2 : 1) {
        fresh_night(t, at);
        snprintf(name, sizeof name, "steps_reg_%d_%ld_%d", use_pg,
                 (long)getpid(), at);
        steps_for(&s, t->db, name);
        assert_int_equal(rapid_steps_launch(&s, &r, &err), 0);
        assert_int_equal(r.started, 4);
        assert_int_equal(r.refjobs, 1);
        assert_int_equal(rapid_steps_execute(&s, 0, &r, &err), 0);
        assert_int_equal(r.ran, 4);
        register_killed(&s, t->url, 0, at);
        assert_int_equal(ended_ok(t->db, 12) + ended_ok(t->db, 15), at);
        assert_int_equal(rapid_steps_register(&s, 0, &r, &err), 0);
        assert_int_equal(r.registered, 4 - at);
        night_rows(t->db, 0);
        /* run again: nothing started, run or registered */
        assert_int_equal(rapid_steps_launch(&s, &r, &err), 0);
        assert_true(r.started == 0 && r.kept == 3);
        assert_int_equal(rapid_steps_execute(&s, 0, &r, &err), 0);
        assert_int_equal(r.ran, 0);
        assert_int_equal(rapid_steps_register(&s, 0, &r, &err), 0);
        assert_int_equal(r.registered, 0);
        night_rows(t->db, 0);
    }
}

/* The same for the registration of post-processing (three jobs). */
static void test_register_postproc_killed(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    char name[48];
    int at;

    if (!getenv("FAKE_JOB"))
        skip();
    for (at = 0; at <= 3; at += use_pg ? 3 : 1) {
        fresh_night(t, at);
        snprintf(name, sizeof name, "steps_pp_%d_%ld_%d", use_pg,
                 (long)getpid(), at);
        steps_for(&s, t->db, name);
        assert_int_equal(rapid_steps_launch(&s, &r, &err), 0);
        assert_int_equal(rapid_steps_execute(&s, 0, &r, &err), 0);
        assert_int_equal(rapid_steps_register(&s, 0, &r, &err), 0);
        assert_int_equal(rapid_steps_postproc(&s, &r, &err), 0);
        assert_int_equal(r.started, 3);
        assert_int_equal(rapid_steps_execute(&s, 1, &r, &err), 0);
        assert_int_equal(r.ran, 3);
        register_killed(&s, t->url, 1, at);
        assert_int_equal(ended_ok(t->db, 17), at);
        assert_int_equal(rapid_steps_register(&s, 1, &r, &err), 0);
        assert_int_equal(r.registered, 3 - at);
        assert_int_equal(r.files, 3 * (3 - at));
        night_rows(t->db, 1);
        /* a step run again changes nothing */
        assert_int_equal(rapid_steps_postproc(&s, &r, &err), 0);
        assert_int_equal(r.started, 0);
        assert_int_equal(r.kept, 3);
        assert_int_equal(rapid_steps_register(&s, 1, &r, &err), 0);
        assert_int_equal(r.registered, 0);
        night_rows(t->db, 1);
    }
}

static void pause_after(const char *step, int done, int total, void *arg)
{
    (void)step, (void)done, (void)total, (void)arg;
    usleep(20000);
}

/* Two registrations of the same date at once, each on its own connection,
 * started together and pausing after each job so that they overlap: every
 * job is registered by exactly one of them, its products once. */
static void test_register_at_once(void **state)
{
    test_db *t = *state;
    rapid_err err = RAPID_ERR_INIT;
    rapid_step_report r;
    rapid_steps s;
    char name[48];
    int round, k, go[2], total, st;
    pid_t pid[2];

    if (!getenv("FAKE_JOB"))
        skip();
    for (round = 0; round < 3; round++) {
        fresh_night(t, round);
        snprintf(name, sizeof name, "steps_once_%d_%ld_%d", use_pg,
                 (long)getpid(), round);
        steps_for(&s, t->db, name);
        assert_int_equal(rapid_steps_launch(&s, &r, &err), 0);
        assert_int_equal(rapid_steps_execute(&s, 0, &r, &err), 0);
        assert_int_equal(r.ran, 4);
        assert_int_equal(pipe(go), 0);
        fflush(NULL);
        for (k = 0; k < 2; k++) {
            assert_true((pid[k] = fork()) >= 0);
            if (pid[k] == 0) {
                rapid_steps c = s;
                char byte;
                close(go[1]);
                if (rapid_db_open(&c.db, t->url, 0, &err) ||
                    read(go[0], &byte, 1) != 0) /* until the parent closes */
                    _exit(100);
                c.progress = pause_after, c.msg = NULL;
                if (rapid_steps_register(&c, 0, &r, &err) != 0 ||
                    r.dberrors)
                    _exit(101);
                rapid_db_close(c.db);
                _exit(r.registered);
            }
        }
        close(go[0]);
        close(go[1]); /* both start */
        for (total = 0, k = 0; k < 2; k++) {
            assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) <= 4);
            total += WEXITSTATUS(st);
        }
        assert_int_equal(total, 4);
        night_rows(t->db, 0);
    }
}

static const char *write_ini(const char *name, const char *text)
{
    const char *path = test_path(name);
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_settings(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_steps_settings s;
    const char *p;

    (void)state;
    rapid_steps_settings_init(&s);
    assert_int_equal(s.ref_min_inputs, 3);
    assert_int_equal(s.ref_max_inputs, 25);
    assert_string_equal(s.methods, "zogy,sfft,naive");
    assert_string_equal(s.executor, "local");
    p = write_ini("steps_ok.ini", "; night settings\n[launch]\nref_min_inputs = 4\n"
                  "ref_size = 2048\n[diff]\nmethods = naive,zogy\n[cuts]\n"
                  "snr_min = 7\nsnr_min = 6\nchi2_max = 5\n[executor]\njobs = 3\n"
                  "executor = none\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), 0);
    assert_int_equal(s.ref_min_inputs, 4);
    assert_int_equal(s.ref_max_inputs, 25);
    assert_int_equal(s.ref_size, 2048);
    assert_string_equal(s.methods, "naive,zogy");
    assert_int_equal(s.ncuts, 2);
    assert_string_equal(s.cut_key[0], "snr_min");
    assert_string_equal(s.cut_value[0], "6");
    assert_int_equal(s.jobs, 3);
    assert_string_equal(s.executor, "none");
    /* errors name file and line, and change nothing */
    p = write_ini("steps_bad1.ini", "[launch]\nref_min_inputs = 2\nref_max = 4\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "steps_bad1.ini: line 3: unknown key ref_max in [launch]"));
    assert_int_equal(s.ref_min_inputs, 4);
    p = write_ini("steps_bad2.ini", "[diff]\nmethods = zogy,fast\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "line 2: methods: unknown method 'fast'"));
    /* every key of rapid extract --cuts, the sharpness and broad-residual
     * cuts too */
    p = write_ini("steps_cuts.ini", "[cuts]\nsharp_min = 0.6\nbroad_min = 0\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), 0);
    assert_int_equal(s.ncuts, 4);
    assert_string_equal(s.cut_key[3], "broad_min");
    assert_string_equal(s.cut_value[3], "0");
    p = write_ini("steps_bad3.ini", "[cuts]\nsnr_min = lots\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "snr_min = 'lots' is not a finite number"));
    p = write_ini("steps_bad4.ini", "[executor]\nthreads = 0\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "threads = '0': must be an integer in 1 .. 1024"));
    p = write_ini("steps_bad5.ini", "[launch]\nref_min_inputs = 30\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "ref_min_inputs 30 above ref_max_inputs 25"));
    /* the Slurm executor's keys */
    assert_int_equal(s.slurm_array_max, 1000);
    assert_int_equal(s.slurm_poll, 5);
    p = write_ini("steps_slurm.ini", "[executor]\nexecutor = slurm\n[slurm]\n"
                  "partition = night\ncpus = 4\nmem = 8G\ntime = 30:00\n"
                  "extra = --account=roman --qos=high\narray_max = 500\n"
                  "poll = 2\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), 0);
    assert_string_equal(s.executor, "slurm");
    assert_string_equal(s.slurm_partition, "night");
    assert_int_equal(s.slurm_cpus, 4);
    assert_string_equal(s.slurm_mem, "8G");
    assert_string_equal(s.slurm_time, "30:00");
    assert_string_equal(s.slurm_extra, "--account=roman --qos=high");
    assert_int_equal(s.slurm_array_max, 500);
    assert_int_equal(s.slurm_poll, 2);
    p = write_ini("steps_bad6.ini", "[slurm]\npartition = a b\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "line 2: partition = 'a b': one word"));
    p = write_ini("steps_bad7.ini", "[slurm]\nqueue = night\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "unknown key queue in [slurm]"));
    p = write_ini("steps_bad8.ini", "[executor]\nexecutor = batch\n");
    assert_int_equal(rapid_steps_settings_read(&s, p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "must be local, slurm or none"));
    assert_int_equal(rapid_steps_settings_read(&s, test_path("steps_none.ini"), &err),
                     RAPID_E_NOENT);
    assert_int_equal(s.ref_min_inputs, 4);
}

/* The log's last line, as registration reads it. */
static void test_log_exitcode(void **state)
{
    const char *dir = test_path("steps_log");
    char path[1024];
    rapid_err err = RAPID_ERR_INIT;
    int code = 0;
    FILE *f;

    (void)state;
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/job.log", dir);
    unlink(path);
    assert_int_equal(rapid_steps_log_exitcode(dir, &code, &err), RAPID_E_NOENT);
    assert_int_equal(code, -1);
    f = fopen(path, "w");
    fputs("started\nterminating_exitcode = 4\nmore after it\n", f);
    fclose(f);
    assert_int_equal(rapid_steps_log_exitcode(dir, &code, &err), RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "no terminating_exitcode line"));
    f = fopen(path, "a");
    fputs("terminating_exitcode = 68\n", f);
    fclose(f);
    assert_int_equal(rapid_steps_log_exitcode(dir, &code, &err), 0);
    assert_int_equal(code, 68);
    f = fopen(path, "w");
    fputs("terminating_exitcode = x\n", f);
    fclose(f);
    assert_int_equal(rapid_steps_log_exitcode(dir, &code, &err), RAPID_E_NOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_DB(test_register_killed, &use_pg),
        TEST_DB(test_register_postproc_killed, &use_pg),
        TEST_DB(test_register_at_once, &use_pg),
    };
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_log_exitcode),
    };
    int rc;

    use_pg = 0;
    rc = cmocka_run_group_tests_name("steps", plain, NULL, NULL);
    rc |= cmocka_run_group_tests_name("steps sqlite", tests, NULL, NULL);
    if (test_backends() > 1) {
        use_pg = 1;
        rc |= cmocka_run_group_tests_name("steps postgresql", tests, NULL, NULL);
    }
    return rc;
}
