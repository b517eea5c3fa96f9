/* test_prodset.c - product sets written all or nothing: the directory holds
 * the earlier complete set or the new complete set at every moment, even
 * when the writer is killed (SIGTERM, SIGINT, SIGKILL at many moments of a
 * write), and no temporaries stay behind. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/prodset_test.h"
#include "rapid/coadd.h"
#include "rapid/prodset.h"
#include "rapid/tmpfiles.h"
#include "testutil.h"

#define RTID 5321355

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void read_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t m;
    assert_non_null(f);
    m = fread(buf, 1, n - 1, f);
    buf[m] = '\0';
    fclose(f);
}

/* A set of two text files holding text. */
static int write_set(const char *dir, const char *text, int complete,
                     rapid_err *err)
{
    static const char *const names[2] = {"a.txt", "b.txt"};
    rapid_prodset *s;
    int rc;

    if ((rc = rapid_prodset_begin(&s, dir, names, 2, err)) != 0)
        return rc;
    write_file(rapid_prodset_path(s, 0), text);
    if (complete)
        write_file(rapid_prodset_path(s, 1), text);
    return rapid_prodset_commit(s, err);
}

/* The pid of a process that has ended. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static void test_replace(void **state)
{
    const char *dir = test_path("set");
    rapid_err err = RAPID_ERR_INIT;
    char buf[64], path[4096];
    rapid_prodset *s;
    static const char *const names[2] = {"a.txt", "b.txt"};

    (void)state;
    /* a new directory, then a new set in its place */
    assert_int_equal(write_set(dir, "one", 1, &err), 0);
    assert_int_equal(test_count_entries(dir), 2);
    assert_int_equal(write_set(dir, "two", 1, &err), 0);
    read_file(test_path("set/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "two");
    read_file(test_path("set/b.txt"), buf, sizeof buf);
    assert_string_equal(buf, "two");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".set."), 0);
    /* the permissions stay */
    {
        struct stat sb;
        assert_int_equal(chmod(dir, 0750), 0);
        assert_int_equal(write_set(dir, "two", 1, &err), 0);
        assert_int_equal(stat(dir, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0750);
    }
    /* trailing slashes are the same directory */
    snprintf(path, sizeof path, "%s//", dir);
    assert_int_equal(write_set(path, "three", 1, &err), 0);
    read_file(test_path("set/b.txt"), buf, sizeof buf);
    assert_string_equal(buf, "three");
    /* an incomplete set is refused: the earlier one stays */
    assert_int_equal(write_set(dir, "four", 0, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "b.txt was not written"));
    read_file(test_path("set/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "three");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".set."), 0);
    /* so is an abort */
    assert_int_equal(rapid_prodset_begin(&s, dir, names, 2, &err), 0);
    write_file(rapid_prodset_path(s, 0), "five");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".set."), 1);
    rapid_prodset_abort(s);
    read_file(test_path("set/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "three");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".set."), 0);
    assert_null(rapid_prodset_path(NULL, 0));
}

/* A directory that holds anything but the set's files is not replaced
 * (it would be deleted with the earlier set). */
static void test_refuses_others(void **state)
{
    const char *dir = test_path("mixed");
    rapid_err err = RAPID_ERR_INIT;
    char buf[64];

    (void)state;
    assert_int_equal(write_set(dir, "one", 1, &err), 0);
    write_file(test_path("mixed/notes.txt"), "mine");
    assert_int_equal(write_set(dir, "two", 1, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "mixed/notes.txt: not one of the products"));
    read_file(test_path("mixed/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "one");
    assert_int_equal(unlink(test_path("mixed/notes.txt")), 0);
    assert_int_equal(mkdir(test_path("mixed/b.txt.d"), 0777), 0);
    assert_int_equal(write_set(dir, "two", 1, &err), RAPID_E_ARG);
    assert_int_equal(rmdir(test_path("mixed/b.txt.d")), 0);
    /* a hidden temporary an older rapid left beside a product goes with
     * the earlier set */
    write_file(test_path("mixed/.a.txt.123.55aa.tmp"), "junk");
    assert_int_equal(write_set(dir, "two", 1, &err), 0);
    assert_int_equal(test_count_entries(dir), 2);
    /* "." cannot be swapped; a file is not a directory */
    assert_int_equal(write_set(test_path("mixed/a.txt"), "x", 1, &err), RAPID_E_IO);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(write_set("/", "x", 1, &err), RAPID_E_ARG);
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".mixed."), 0);
}

/* A set of another kind may replace an earlier set that holds files the
 * new one lacks, when it names them as known: they go with the earlier
 * set; anything else is still refused. */
static void test_known_names(void **state)
{
    static const char *const small[1] = {"a.txt"};
    static const char *const known[3] = {"a.txt", "b.txt", "c.txt"};
    const char *dir = test_path("known");
    rapid_err err = RAPID_ERR_INIT;
    rapid_prodset *s;
    char buf[64];

    (void)state;
    assert_int_equal(write_set(dir, "one", 1, &err), 0);
    /* without the known names, b.txt is not one of the products */
    assert_int_equal(rapid_prodset_begin(&s, dir, small, 1, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "known/b.txt: not one of the products"));
    assert_int_equal(rapid_prodset_begin_among(&s, dir, small, 1, known, 3, &err), 0);
    write_file(rapid_prodset_path(s, 0), "two");
    assert_int_equal(rapid_prodset_commit(s, &err), 0);
    assert_int_equal(test_count_entries(dir), 1);
    read_file(test_path("known/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "two");
    /* a file that is neither the set's nor known is still refused */
    write_file(test_path("known/d.txt"), "mine");
    assert_int_equal(rapid_prodset_begin_among(&s, dir, small, 1, known, 3, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "known/d.txt: not one of the products"));
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".known."), 0);
}

/* Files added to a set begun (names learnt on the way) go with it, and
 * must be written like the others. */
static void test_add(void **state)
{
    static const char *const names[1] = {"a.txt"};
    const char *dir = test_path("added");
    rapid_err err = RAPID_ERR_INIT;
    rapid_prodset *s;
    char buf[64];
    int k;

    (void)state;
    assert_int_equal(rapid_prodset_begin(&s, dir, names, 1, &err), 0);
    write_file(rapid_prodset_path(s, 0), "a");
    k = rapid_prodset_add(s, "b.txt", &err);
    assert_int_equal(k, 1);
    assert_non_null(strstr(rapid_prodset_path(s, 1), "/b.txt"));
    write_file(rapid_prodset_path(s, k), "b");
    assert_int_equal(rapid_prodset_add(s, "b.txt", &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "b.txt is in the set already"));
    assert_int_equal(rapid_prodset_add(s, "x/y", &err), RAPID_E_ARG);
    assert_int_equal(rapid_prodset_add(s, "", &err), RAPID_E_ARG);
    assert_int_equal(rapid_prodset_commit(s, &err), 0);
    assert_int_equal(test_count_entries(dir), 2);
    read_file(test_path("added/b.txt"), buf, sizeof buf);
    assert_string_equal(buf, "b");
    /* a name added but not written: the set is incomplete, the earlier
     * one stays */
    assert_int_equal(rapid_prodset_begin_among(&s, dir, names, 1, NULL, 0, &err),
                     RAPID_E_ARG); /* b.txt is not a product of this set */
    assert_int_equal(unlink(test_path("added/b.txt")), 0);
    assert_int_equal(rapid_prodset_begin(&s, dir, names, 1, &err), 0);
    write_file(rapid_prodset_path(s, 0), "a2");
    assert_int_equal(rapid_prodset_add(s, "c.txt", &err), 1);
    assert_int_equal(rapid_prodset_commit(s, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "c.txt was not written"));
    read_file(test_path("added/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "a");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".added."), 0);
}

/* What a killed writer left is removed by the next one; an earlier set
 * that it had renamed aside is put back. */
static void test_stale(void **state)
{
    const char *dir = test_path("stale");
    rapid_err err = RAPID_ERR_INIT;
    char tmp[4096], old[4096], mine[4096], buf[64];
    pid_t dead = dead_pid();

    (void)state;
    assert_int_equal(write_set(dir, "one", 1, &err), 0);
    snprintf(tmp, sizeof tmp, "%s/.stale.%ld.tmp", test_tmpdir(), (long)dead);
    assert_int_equal(mkdir(tmp, 0777), 0);
    snprintf(tmp, sizeof tmp, "%s/.stale.%ld.tmp/a.txt", test_tmpdir(), (long)dead);
    write_file(tmp, "big");
    /* one of a process still running is left alone (the parent of this
     * test runs as long as it does) */
    snprintf(mine, sizeof mine, "%s/.stale.%ld.tmp", test_tmpdir(), (long)getppid());
    assert_int_equal(mkdir(mine, 0777), 0);
    assert_int_equal(rapid_prodset_clean(dir, &err), 0);
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".stale."), 1);
    assert_int_equal(rmdir(mine), 0);
    /* killed between moving the earlier set aside and the new one in */
    snprintf(old, sizeof old, "%s/.stale.%ld.old", test_tmpdir(), (long)dead);
    assert_int_equal(rename(dir, old), 0);
    assert_int_equal(write_set(dir, "two", 1, &err), 0);
    read_file(test_path("stale/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "two");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".stale."), 0);
    assert_int_equal(rename(dir, old), 0);
    assert_int_equal(rapid_prodset_clean(dir, &err), 0);
    read_file(test_path("stale/a.txt"), buf, sizeof buf);
    assert_string_equal(buf, "two");
    assert_int_equal(test_count_prefixed(test_tmpdir(), ".stale."), 0);
}

static void test_registry(void **state)
{
    char dir[2048], file[2048], path[4096];
    int h[RAPID_TMP_MAX], i, d, f;

    (void)state;
    snprintf(dir, sizeof dir, "%s/reg.tmp", test_tmpdir());
    snprintf(file, sizeof file, "%s/reg.file", test_tmpdir());
    assert_int_equal(mkdir(dir, 0777), 0);
    for (i = 0; i < 40; i++) { /* more than one read of the directory */
        snprintf(path, sizeof path, "%s/file-with-a-long-name-%03d.fits", dir, i);
        write_file(path, "x");
    }
    write_file(file, "x");
    assert_true((d = rapid_tmp_register(dir, 1)) >= 0);
    assert_true((f = rapid_tmp_register(file, 0)) >= 0);
    rapid_tmp_remove_all();
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(access(file, F_OK), -1);
    rapid_tmp_unregister(d);
    rapid_tmp_unregister(f);
    /* unregistered: kept */
    write_file(file, "x");
    rapid_tmp_remove_all();
    assert_int_equal(access(file, F_OK), 0);
    /* a full table, a bad path */
    for (i = 0; i < RAPID_TMP_MAX; i++)
        assert_true((h[i] = rapid_tmp_register(file, 0)) >= 0);
    assert_int_equal(rapid_tmp_register(file, 0), RAPID_E_RANGE);
    for (i = 0; i < RAPID_TMP_MAX; i++)
        rapid_tmp_unregister(h[i]);
    assert_int_equal(rapid_tmp_register("", 0), RAPID_E_RANGE);
    rapid_tmp_unregister(-1);
}

/* ------------------------------------------------- killed while writing */

static void fill(rapid_coadd *c, float id)
{
    long i;
    for (i = 0; i < (long)c->image.nx * c->image.ny; i++)
        c->image.data[i] = c->coverage.data[i] = c->uncertainty.data[i] = id;
    for (i = 0; i < (long)c->psf.nx * c->psf.ny; i++)
        c->psf.data[i] = id;
    ((double *)c->catalog.cols[0].data)[0] = id;
}

static void make_coadd(rapid_coadd *c)
{
    rapid_coadd_init(c);
    assert_int_equal(rapid_image_alloc(&c->image, 200, 200, 0, NULL), 0);
    assert_int_equal(rapid_image_alloc(&c->coverage, 200, 200, 0, NULL), 0);
    assert_int_equal(rapid_image_alloc(&c->uncertainty, 200, 200, 0, NULL), 0);
    assert_int_equal(rapid_image_alloc(&c->psf, 15, 15, 0, NULL), 0);
    assert_int_equal(rapid_table_init(&c->catalog, 1), 0);
    assert_non_null(rapid_table_add_f64(&c->catalog, "id", NULL));
}

/* The five products, all of set id (returned), or -1. */
static int set_id(const char *dir)
{
    static const char *suffix[5] = {"", "_cov", "_unc", "_psf", "_cat"};
    char path[4096];
    int k, id = -1;

    if (test_count_entries(dir) != 5)
        return -1;
    for (k = 0; k < 5; k++) {
        rapid_image img = RAPID_IMAGE_INIT;
        rapid_table t = RAPID_TABLE_INIT;
        int v;
        snprintf(path, sizeof path, "%s/rapid_ref_%d_H158%s.fits", dir, RTID,
                 suffix[k]);
        if (k < 4) {
            if (rapid_fits_read_image(path, NULL, &img, NULL) != 0)
                return -1;
            v = (int)img.data[img.nx * img.ny - 1];
            rapid_image_release(&img);
        } else {
            if (rapid_fits_read_table(path, "CATALOG", &t, NULL) != 0)
                return -1;
            v = (int)((double *)t.cols[0].data)[0];
            rapid_table_release(&t);
        }
        if (k > 0 && v != id)
            return -1;
        id = v;
    }
    return id;
}

static void on_signal(int sig)
{
    rapid_tmp_remove_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Writes sets 1, 2, 3, ... into dir until killed. */
static void writer(const char *dir, rapid_coadd *c)
{
    int id;

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (id = 1;; id++) {
        fill(c, (float)id);
        if (rapid_coadd_write(c, dir, RTID, "H158", NULL) != 0)
            _exit(3);
    }
}

/* no_exchange: as on a file system without RENAME_EXCHANGE, where a
 * writer killed with SIGKILL between its two renames leaves the directory
 * missing until the next writer puts the earlier set back. */
static void killed(int no_exchange)
{
    static const int sigs[3] = {SIGTERM, SIGINT, SIGKILL};
    const char *dir = test_path(no_exchange ? "killed2" : "killed");
    const char *prefix = no_exchange ? ".killed2." : ".killed.";
    rapid_err err = RAPID_ERR_INIT;
    rapid_coadd c;
    int s, k, killed_in_write = 0;

    rapid_prodset_test_no_exchange = no_exchange;
    make_coadd(&c);
    fill(&c, 0);
    assert_int_equal(rapid_coadd_write(&c, dir, RTID, "H158", &err), 0);
    assert_int_equal(set_id(dir), 0);
    for (s = 0; s < 3; s++)
        for (k = 0; k < 16; k++) {
            struct timespec ts = {0, 1000000L + 2300000L * k}; /* 1 .. 36 ms */
            int status, id, left;
            pid_t p = fork();
            assert_true(p >= 0);
            if (p == 0)
                writer(dir, &c);
            nanosleep(&ts, NULL);
            assert_int_equal(kill(p, sigs[s]), 0);
            assert_int_equal(waitpid(p, &status, 0), p);
            if (!WIFSIGNALED(status) || WTERMSIG(status) != sigs[s])
                fail_msg("writer ended with status %#x, not signal %d", status,
                         sigs[s]);
            left = test_count_prefixed(test_tmpdir(), prefix);
            if (sigs[s] != SIGKILL && left != 0)
                fail_msg("signal %d after %ld us: %d temporaries left",
                         sigs[s], ts.tv_nsec / 1000, left);
            killed_in_write += left > 0;
            /* the next writer removes them (and puts back a set moved
             * aside) */
            id = no_exchange && sigs[s] == SIGKILL ? -2 : set_id(dir);
            assert_int_equal(rapid_prodset_clean(dir, &err), 0);
            assert_int_equal(test_count_prefixed(test_tmpdir(), prefix), 0);
            if (id == -2)
                id = set_id(dir);
            if (id < 0 || set_id(dir) != id)
                fail_msg("signal %d after %ld us: not one whole set", sigs[s],
                         ts.tv_nsec / 1000);
        }
    print_message("prodset: 48 writers killed%s, %d by SIGKILL with "
                  "temporaries left\n", no_exchange ? " (no exchange)" : "",
                  killed_in_write);
    rapid_coadd_release(&c);
    rapid_prodset_test_no_exchange = 0;
}

static void test_killed(void **state)
{
    (void)state;
    killed(0);
}

static void test_killed_no_exchange(void **state)
{
    (void)state;
    killed(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_refuses_others),
        cmocka_unit_test(test_known_names),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_killed),
        cmocka_unit_test(test_killed_no_exchange),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
