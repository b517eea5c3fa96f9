/* test_job.c - a job's configuration read back key by key, its mistakes
 * named by file, line and key; where a job's files are; the log's last
 * line. */
#include <stdio.h>
#include <string.h>

#include "rapid/job.h"
#include "rapid/pipeline.h"
#include "testutil.h"

static const char *write_ini(const char *name, const char *text)
{
    const char *path = test_path(name);
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char full[] =
    "[job]\n"
    "jid = 123\n"
    "ppid = 15                ; 15 science\n"
    "procdate = 20261207\n"
    "out = /w/products/20261207/jid123\n"
    "threads = 2\n"
    "\n"
    "[science]\n"
    "rid = 42\n"
    "expid = 7\n"
    "sca = 3\n"
    "fid = 2\n"
    "filter = H158\n"
    "field = 123456\n"
    "image = /d/L2.fits\n"
    "psf =\n"
    "\n"
    "[reference]\n"
    "source = build\n"
    "field = 123456\n"
    "filter = H158\n"
    "fid = 2\n"
    "size = 1000\n"
    "ninputs = 2\n"
    "input.1.rid = 17\n"
    "input.1.image = /d/a.fits\n"
    "input.1.psf = /d/psf_a.fits\n"
    "input.2.rid = 18\n"
    "input.2.image = /d/b.fits\n"
    "\n"
    "[diff]\n"
    "methods = zogy,naive\n"
    "sfft_order = 1\n"
    "kernel_half_width = 7\n"
    "\n"
    "[cuts]\n"
    "snr_min = 6\n";

static void test_read_full(void **state)
{
    rapid_job_config c;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    rapid_job_config_init(&c);
    assert_ok(rapid_job_config_read(&c, write_ini("full.ini", full), &err), err);
    assert_int_equal(c.jid, 123);
    assert_int_equal(c.ppid, RAPID_PPID_SCIENCE);
    assert_int_equal(c.procdate, 20261207);
    assert_string_equal(c.out, "/w/products/20261207/jid123");
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.rid, 42);
    assert_int_equal(c.expid, 7);
    assert_int_equal(c.sca, 3);
    assert_int_equal(c.fid, 2);
    assert_int_equal(c.field, 123456);
    assert_string_equal(c.filter, "H158");
    assert_string_equal(c.image, "/d/L2.fits");
    assert_null(c.psf); /* empty: found beside the image */
    assert_int_equal(c.ref_source, RAPID_REFSRC_BUILD);
    assert_int_equal(c.ref_field, 123456);
    assert_int_equal(c.ref_size, 1000);
    assert_int_equal(c.ninputs, 2);
    assert_int_equal(c.inputs[0].rid, 17);
    assert_string_equal(c.inputs[0].psf, "/d/psf_a.fits");
    assert_string_equal(c.inputs[1].image, "/d/b.fits");
    assert_null(c.inputs[1].psf);
    assert_true(c.methods[RAPID_DIFFRUN_ZOGY] && c.methods[RAPID_DIFFRUN_NAIVE] &&
                !c.methods[RAPID_DIFFRUN_SFFT]);
    assert_int_equal(c.sfft_order, 1);
    assert_int_equal(c.kernel_half_width, 7);
    assert_true(c.cuts.snr_min == 6 && c.cuts.elong_max == 2);
    rapid_job_config_release(&c);
}

/* One mistake at a time in the full configuration: the message names the
 * file, the line and the key or what is missing. */
static void test_mistakes(void **state)
{
    static const struct {
        const char *from, *to, *msg;
    } cases[] = {
        {"threads = 2\n", "threads = 2\nfrob = 1\n", "line 7: [job] unknown key frob"},
        {"ppid = 15 ", "ppid = 16 ", "line 3: [job] ppid = '16': not a pipeline"},
        {"sca = 3\n", "sca = three\n", "line 11: [science] sca = 'three': not an integer"},
        {"source = build", "source = made", "[reference] source = 'made'"},
        {"methods = zogy,naive", "methods = zogy,hotpants", "methods = 'zogy,hotpants': unknown method"},
        {"[cuts]\n", "[cut]\n", "unknown section [cut]"},
        {"snr_min = 6", "snr_max = 6", "[cuts] unknown key snr_max"},
        {"input.2.image", "input.2.imag", "[reference] unknown key input.2.imag"},
        {"ninputs = 2", "ninputs = 3", "input.1 .. input.3 (ninputs = 3"},
        {"input.2.image = /d/b.fits\n", "", "no [reference] input.2.image"},
        {"rid = 42\n", "", "no [science] rid"},
        {"jid = 123\n", "", "no [job] jid"},
        {"out = /w/products/20261207/jid123\n", "", "no [job] out"},
        {"sfft_order = 1", "sfft_order = 3", "sfft_order = '3': not an integer in 0 .. 2"},
    };
    char text[4096], msg[256];
    size_t k;

    (void)state;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        rapid_job_config c;
        rapid_err err = RAPID_ERR_INIT;
        const char *at = strstr(full, cases[k].from), *path;
        assert_non_null(at);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - full), full,
                 cases[k].to, at + strlen(cases[k].from));
        path = write_ini("bad.ini", text);
        rapid_job_config_init(&c);
        assert_int_equal(rapid_job_config_read(&c, path, &err), RAPID_E_ARG);
        snprintf(msg, sizeof msg, "%s: ", path);
        if (strncmp(err.msg, msg, strlen(msg)) != 0 || !strstr(err.msg, cases[k].msg))
            fail_msg("case %zu: '%s' lacks '%s'", k, err.msg, cases[k].msg);
        rapid_job_config_release(&c);
    }
}

/* What each kind of job needs. */
static void test_kinds(void **state)
{
    rapid_job_config c;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    rapid_job_config_init(&c);
    assert_int_equal(rapid_job_config_read(&c, write_ini("ref.ini",
        "[job]\njid = 1\nppid = 12\nprocdate = 20261207\nout = /o\n"
        "[reference]\nsource = existing\nimage = /r.fits\n"), &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "source = build (a reference job"));
    rapid_job_config_release(&c);
    assert_ok(rapid_job_config_read(&c, write_ini("sci.ini",
        "[job]\njid = 2\nppid = 15\nprocdate = 20261207\nout = /o\n"
        "[science]\nrid = 3\nimage = /s.fits\n"
        "[reference]\nsource = job\nrefjid = 1\ndir = /p/jid1\n"), &err), err);
    assert_int_equal(c.ref_source, RAPID_REFSRC_JOB);
    assert_string_equal(c.ref_dir, "/p/jid1");
    assert_true(c.methods[0] && c.methods[1] && c.methods[2]);
    rapid_job_config_release(&c);
    assert_ok(rapid_job_config_read(&c, write_ini("pp.ini",
        "[job]\njid = 3\nppid = 17\nprocdate = 20261207\nout = /o\n"
        "[postproc]\nscijid = 2\ndir = /p/jid2\nrid = 3\nrfid = 9\n"
        "pid.zogy = 501\npid.sfft = 502\nversion.sfft = 4\nrefversion = 2\n"),
        &err), err);
    assert_int_equal(c.pid[RAPID_DIFFRUN_ZOGY], 501);
    assert_int_equal(c.pid[RAPID_DIFFRUN_SFFT], 502);
    assert_int_equal(c.version[RAPID_DIFFRUN_SFFT], 4);
    assert_int_equal(c.refversion, 2);
    assert_int_equal(c.pp_rfid, 9);
    rapid_job_config_release(&c);
    /* a file that cannot be read */
    assert_int_equal(rapid_job_config_read(&c, test_path("none.ini"), &err),
                     RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "none.ini: cannot read the job configuration"));
    rapid_job_config_release(&c);
}

static void test_paths(void **state)
{
    char out[256], small[16];
    rapid_err err = RAPID_ERR_INIT;
    const char *log;
    int code = -1;

    (void)state;
    assert_int_equal(rapid_job_config_path(out, sizeof out, "/w", 20261207, 42), 0);
    assert_string_equal(out, "/w/jobs/20261207/jid42.ini");
    assert_int_equal(rapid_job_dir(out, sizeof out, "/w", 20261207, 42), 0);
    assert_string_equal(out, "/w/products/20261207/jid42");
    assert_int_equal(rapid_job_dir(small, sizeof small, "/w", 20261207, 42), -1);
    assert_int_equal(rapid_job_dir_of_config("/w/x/jobs/20261207/jid42.ini", out,
                                             sizeof out), 0);
    assert_string_equal(out, "/w/x/products/20261207/jid42");
    assert_int_equal(rapid_job_dir_of_config("/w/jobs/20261207/j42.ini", out,
                                             sizeof out), -1);
    assert_int_equal(rapid_job_dir_of_config("jid42.ini", out, sizeof out), -1);
    /* the log's last line */
    log = write_ini("job.log", "2026-12-07T05:00:00.000Z rapid job: x\n"
                               "terminating_exitcode = 4\n");
    assert_ok(rapid_job_log_exitcode(log, &code, &err), err);
    assert_int_equal(code, 4);
    log = write_ini("job.log", "terminating_exitcode = 0\nmore\n");
    assert_int_equal(rapid_job_log_exitcode(log, &code, &err), RAPID_E_ARG);
    log = write_ini("job.log", "terminating_exitcode = 6");
    assert_ok(rapid_job_log_exitcode(log, &code, &err), err);
    assert_int_equal(code, 6);
    assert_int_equal(rapid_job_log_exitcode(test_path("nolog"), &code, &err),
                     RAPID_E_NOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_full),
        cmocka_unit_test(test_mistakes),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_paths),
    };

    return cmocka_run_group_tests_name("job", tests, NULL, NULL);
}
