/* test_slurm_query.c - what the Slurm executor and registration read from
 * Slurm, against stand-ins for squeue and scontrol (shell scripts put
 * first on PATH) so that it runs without a cluster: the queue's states,
 * the job-completion file for the jobs the queue forgot (its last line
 * counting), a pending task cancelled out of its array, a controller that
 * does not answer; the arrays of a submission killed before it stored the
 * ids, found by their comment; and registration's verdict on each (82 killed, 80 lost,
 * or left alone).  tests/slurm_steps_test.sh does it all on a real
 * cluster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/steps_internal.h"
#include "testutil.h"

static char dir[1024];

static void write_file(const char *name, const char *text, int exec)
{
    char path[1200];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
    if (exec)
        chmod(path, 0755);
}

/* squeue -j LIST -o FMT: the lines of DIR/queue ("id state") whose id is
 * in LIST, or whose array is; "Invalid job id" when none is.  squeue -n
 * NAMES: the lines "arrayid comment" of DIR/arrays ("name arrayid
 * comment", one per array or task) of those names. */
static const char fake_squeue[] =
    "#!/bin/sh\n"
    "d=$(dirname \"$0\")\n"
    "[ -f \"$d/down\" ] && { echo 'squeue: error: Unable to contact slurm"
    " controller (connect failure)' >&2; exit 1; }\n"
    "list=; fmt=; names=\n"
    "while [ $# -gt 0 ]; do case $1 in -j) list=$2; shift ;; -o) fmt=$2;"
    " shift ;; -n) names=$2; shift ;; esac; shift; done\n"
    "if [ -n \"$names\" ]; then\n"
    "  while read -r name aid comment; do\n"
    "    case \",$names,\" in *,$name,*) echo \"$aid $comment\" ;; esac\n"
    "  done <\"$d/arrays\"\n"
    "  exit 0\n"
    "fi\n"
    "case $list in *@*) echo \"squeue: error: Invalid job id: $list\" >&2;"
    " exit 1 ;; esac\n"
    "found=0\n"
    "for want in $(echo \"$list\" | tr , ' '); do\n"
    "  while read -r id st; do\n"
    "    case $want in *_*) [ \"$id\" = \"$want\" ] ;; *) [ \"${id%_*}\" ="
    " \"$want\" ] ;; esac || continue\n"
    "    found=1\n"
    "    if [ \"$fmt\" = '%i' ]; then echo \"$id\"; else echo \"$id $st\"; fi\n"
    "  done <\"$d/queue\"\n"
    "done\n"
    "[ $found = 1 ] || { echo 'slurm_load_jobs error: Invalid job id"
    " specified' >&2; exit 1; }\n";

static const char fake_scontrol[] =
    "#!/bin/sh\n"
    "d=$(dirname \"$0\")\n"
    "echo 'Configuration data as of 2026-12-07T06:00:00'\n"
    "echo 'JobCompHost             = localhost'\n"
    "echo \"JobCompLoc              = $d/jobcomp\"\n"
    "echo 'JobCompType             = jobcomp/filetxt'\n";

static int setup(void **state)
{
    char path[4096];
    const char *old = getenv("PATH");

    (void)state;
    snprintf(dir, sizeof dir, "%s", test_path("slurm_query"));
    mkdir(dir, 0777);
    write_file("squeue", fake_squeue, 1);
    write_file("scontrol", fake_scontrol, 1);
    write_file("queue", "7_0 RUNNING\n7_1 PENDING\n8_0 COMPLETED\n"
               "8_2 TIMEOUT\n13_0 CANCELLED\n", 0);
    write_file("jobcomp",
               "JobId=30 UserId=u(1) Name=rapid JobState=NODE_FAIL Partition=p"
               " ArrayJobId=9 ArrayTaskId=0 ExitCode=0:0\n"
               "JobId=30 UserId=u(1) Name=rapid JobState=COMPLETED Partition=p"
               " ArrayJobId=9 ArrayTaskId=0 ExitCode=0:0\n"
               "JobId=31 UserId=u(1) Name=rapid JobState=CANCELLED Partition=p"
               " ArrayJobId=10 ArrayTaskId=1 ExitCode=0:0\n"
               "JobId=12 UserId=u(1) Name=rapid JobState=OUT_OF_MEMORY"
               " Partition=p ExitCode=0:125\n"
               "JobId=32 UserId=u(1) Name=rapid JobState=COMPLETED Partition=p"
               " ArrayJobId=13 ArrayTaskId=0 ExitCode=0:0\n",
               0);
    write_file("arrays",
               "rapid-20261207-sci 7 rapid:1700000000000-1\n"
               "rapid-20261207-sci 7 rapid:1700000000000-1\n"
               "rapid-20261207-ref 8 rapid:1700000000000-0\n"
               "rapid-20261206-sci 20 rapid:1700000000000-2\n"
               "rapid-20261207-sci 21 (null)\n"
               "other 22 rapid:1700000000000-3\n", 0);
    snprintf(path, sizeof path, "%s:%s", dir, old ? old : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    return 0;
}

static void job(steps_slurm_job *j, int64_t jid, const char *id)
{
    memset(j, 0, sizeof *j);
    j->jid = jid;
    snprintf(j->id, sizeof j->id, "%s", id);
}

static void test_states(void **state)
{
    static const char *const ids[] = {"7_0",  "7_1", "8_0", "8_2", "9_0",
                                       "10_1", "12",  "7_5", "11_0", "13_0"};
    steps_slurm_job v[10];
    rapid_err err = RAPID_ERR_INIT;
    int i;

    (void)state;
    for (i = 0; i < 10; i++)
        job(&v[i], i + 1, ids[i]);
    assert_int_equal(steps_slurm_query(v, 10, &err), 0);
    /* in the queue */
    assert_int_equal(v[0].state, STEPS_SLURM_ACTIVE);
    assert_string_equal(v[0].name, "RUNNING");
    assert_int_equal(v[1].state, STEPS_SLURM_ACTIVE);
    assert_int_equal(v[2].state, STEPS_SLURM_COMPLETED);
    assert_int_equal(v[3].state, STEPS_SLURM_ENDED);
    assert_string_equal(v[3].name, "TIMEOUT");
    /* forgotten by the queue: the completion file, its last line */
    assert_int_equal(v[4].state, STEPS_SLURM_COMPLETED);
    assert_int_equal(v[4].from_file, 1);
    assert_int_equal(v[5].state, STEPS_SLURM_ENDED);
    assert_string_equal(v[5].name, "CANCELLED");
    assert_int_equal(v[6].state, STEPS_SLURM_ENDED); /* not an array */
    assert_string_equal(v[6].name, "OUT_OF_MEMORY");
    /* gone while its array is queued: cancelled while pending */
    assert_int_equal(v[7].state, STEPS_SLURM_ENDED);
    assert_string_equal(v[7].name, "CANCELLED");
    /* nowhere */
    assert_int_equal(v[8].state, STEPS_SLURM_GONE);
    /* the queue's answer stands over the file's */
    assert_int_equal(v[9].state, STEPS_SLURM_ENDED);
    assert_string_equal(v[9].name, "CANCELLED");
    assert_int_equal(v[9].from_file, 0);
}

static void test_down(void **state)
{
    steps_slurm_job v[2];
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    job(&v[0], 1, "7_0");
    job(&v[1], 2, "11_0");
    write_file("down", "", 0);
    assert_int_not_equal(steps_slurm_query(v, 2, &err), 0);
    assert_non_null(strstr(err.msg, "squeue failed (exit 1):"));
    assert_non_null(strstr(err.msg, "Unable to contact slurm controller"));
    assert_int_equal(v[0].state, STEPS_SLURM_UNKNOWN);
    assert_int_equal(v[1].state, STEPS_SLURM_UNKNOWN);
    {
        char path[1200];
        snprintf(path, sizeof path, "%s/down", dir);
        unlink(path);
    }
}

/* The marks of a submission killed before it stored the ids: the arrays
 * of the date Slurm has, by their comment. */
static void test_resolve(void **state)
{
    static const char *const ids[] = {
        "@1700000000000-1_4", "@1700000000000-0_1", "@1700000000000-2_0",
        "@1700000000000-3_0", "@1700000000000-9_0", "7_1", "@bad", "@x_y",
        ""};
    static const char *const want[] = {"7_4", "8_1", "", "", "", "7_1", "",
                                       "", ""};
    steps_slurm_job v[9];
    rapid_err err = RAPID_ERR_INIT;
    int i;

    (void)state;
    for (i = 0; i < 9; i++)
        job(&v[i], i + 1, ids[i]);
    assert_int_equal(steps_slurm_resolve(v, 9, 20261207, &err), 0);
    for (i = 0; i < 9; i++)
        assert_string_equal(v[i].id, want[i]);
    /* nothing to resolve: Slurm not asked */
    write_file("down", "", 0);
    assert_int_equal(steps_slurm_resolve(v, 9, 20261207, &err), 0);
    /* cannot ask: an error, the marks kept */
    job(&v[0], 1, "@1700000000000-1_4");
    assert_int_not_equal(steps_slurm_resolve(v, 1, 20261207, &err), 0);
    assert_non_null(strstr(err.msg, "Unable to contact slurm controller"));
    assert_string_equal(v[0].id, "@1700000000000-1_4");
    {
        char path[1200];
        snprintf(path, sizeof path, "%s/down", dir);
        unlink(path);
    }
    /* a mark or no id is not asked about: unknown, the others answered */
    job(&v[0], 1, "@1700000000000-1_4");
    job(&v[1], 2, "7_0");
    job(&v[2], 3, "");
    assert_int_equal(steps_slurm_query(v, 3, &err), 0);
    assert_int_equal(v[0].state, STEPS_SLURM_UNKNOWN);
    assert_int_equal(v[1].state, STEPS_SLURM_ACTIVE);
    assert_int_equal(v[2].state, STEPS_SLURM_UNKNOWN);
}

/* Registration's verdict on a job whose log has no last line, or 70. */
static void test_verdict(void **state)
{
    static const char *const ids[] = {"7_0", "8_0", "8_2", "11_0", "10_1",
                                      "12"};
    steps_slurm_job v[6];
    steps_slurm_view sv;
    rapid_job j;
    rapid_err why = RAPID_ERR_INIT, err = RAPID_ERR_INIT;
    int i, code;

    (void)state;
    for (i = 0; i < 6; i++)
        job(&v[i], i + 1, ids[i]);
    assert_int_equal(steps_slurm_query(v, 6, &err), 0);
    memset(&sv, 0, sizeof sv);
    sv.v = v, sv.n = 6;
    memset(&j, 0, sizeof j);
    /* running: left alone */
    j.jid = 1;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_UNFINISHED, &code, &why), 1);
    /* COMPLETED without a last line: lost */
    j.jid = 2, code = -1;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_UNFINISHED, &code, &why), 0);
    assert_int_equal(code, RAPID_EXIT_LOST);
    assert_non_null(strstr(why.msg, "Slurm job 8_0 ended COMPLETED"));
    /* TIMEOUT: killed */
    j.jid = 3, code = -1;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_UNFINISHED, &code, &why), 0);
    assert_int_equal(code, RAPID_EXIT_KILLED);
    assert_non_null(strstr(why.msg, "Slurm job 8_2 ended TIMEOUT before"));
    /* nowhere: lost, not waited for */
    j.jid = 4, code = -1;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_UNFINISHED, &code, &why), 0);
    assert_int_equal(code, RAPID_EXIT_LOST);
    assert_non_null(strstr(why.msg, "11_0 is no longer known to Slurm"));
    /* stopped on Slurm's SIGTERM (70), CANCELLED: killed */
    j.jid = 5, code = RAPID_EXIT_INTERRUPTED;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_ENDED_FAILED, &code, &why), 0);
    assert_int_equal(code, RAPID_EXIT_KILLED);
    /* 70 and still in the queue: left alone until Slurm ends it */
    j.jid = 1, code = RAPID_EXIT_INTERRUPTED;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_ENDED_FAILED, &code, &why), 1);
    /* 70 and COMPLETED... by its own: stays 70 */
    j.jid = 2, code = RAPID_EXIT_INTERRUPTED;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_ENDED_FAILED, &code, &why), 0);
    assert_int_equal(code, RAPID_EXIT_INTERRUPTED);
    /* a job Slurm was not asked about, or could not be: left alone */
    j.jid = 99;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_UNFINISHED, &code, &why), 1);
    v[1].state = STEPS_SLURM_UNKNOWN;
    j.jid = 2;
    assert_int_equal(steps_slurm_verdict(&sv, &j, STEPS_UNFINISHED, &code, &why), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_down),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_verdict),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
