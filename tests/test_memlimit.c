/* test_memlimit.c - the memory available (MemAvailable, cgroup v2 and v1
 * limits, read from files the test writes) and the estimates rapid coadd
 * and rapid sim check against it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rapid/coadd.h"
#include "rapid/memlimit.h"
#include "rapid/sim.h"
#include "testutil.h"

#define MIB ((uint64_t)1 << 20)

static void put(const char *name, const char *text)
{
    FILE *f = fopen(test_path(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void dir(const char *name)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", test_path(name));
    assert_int_equal(system(cmd), 0);
}

static rapid_mem_sources sources(const char *meminfo, const char *self,
                                 const char *root)
{
    static char a[1024], b[1024], c[1024];
    rapid_mem_sources s = {NULL, NULL, NULL};
    snprintf(a, sizeof a, "%s", test_path(meminfo));
    snprintf(b, sizeof b, "%s", test_path(self));
    snprintf(c, sizeof c, "%s", test_path(root));
    s.meminfo = a, s.self_cgroup = b, s.cgroup_root = c;
    return s;
}

static const char meminfo[] =
    "MemTotal:       16000000 kB\n"
    "MemFree:         1000000 kB\n"
    "MemAvailable:    8000000 kB\n"
    "Cached:          5000000 kB\n";

static void test_meminfo(void **state)
{
    rapid_mem_sources s;
    rapid_mem_avail a;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    put("meminfo", meminfo);
    put("nocgroup", "");
    s = sources("meminfo", "nocgroup", "nowhere");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 8000000ULL * 1024);
    assert_non_null(strstr(a.source, "MemAvailable in "));
    /* before MemAvailable: free plus cache */
    put("meminfo-old", "MemTotal: 16000000 kB\nMemFree: 1000000 kB\n"
                       "Buffers: 10 kB\nCached: 5000000 kB\n");
    s = sources("meminfo-old", "nocgroup", "nowhere");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 6000000ULL * 1024);
    /* nothing at all */
    s = sources("nothing", "nothing", "nowhere");
    assert_int_equal(rapid_mem_available(&s, &a, &err), RAPID_E_IO);
    assert_non_null(strstr(err.msg, "cannot read the memory available"));
    /* and then the check is skipped */
    assert_int_equal(rapid_mem_check(UINT64_MAX, "x", &s, &err), 0);
}

/* v2: the tightest of the cgroup and its ancestors, less what they use
 * (the inactive file cache not counted as use). */
static void test_cgroup_v2(void **state)
{
    rapid_mem_sources s;
    rapid_mem_avail a;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    put("meminfo", meminfo);
    put("self-v2", "0::/jobs/job1\n");
    dir("v2/jobs/job1");
    put("v2/jobs/job1/memory.max", "1000000000\n");
    put("v2/jobs/job1/memory.current", "300000000\n");
    put("v2/jobs/job1/memory.stat", "anon 200000000\ninactive_file 100000000\n");
    put("v2/jobs/memory.max", "max\n");
    s = sources("meminfo", "self-v2", "v2");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 800000000ULL);
    assert_non_null(strstr(a.source, "v2/jobs/job1/memory.max"));
    /* a parent with less room wins */
    put("v2/jobs/memory.max", "2000000000\n");
    put("v2/jobs/memory.current", "1900000000\n");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 100000000ULL);
    assert_non_null(strstr(a.source, "v2/jobs/memory.max"));
    /* over the limit already: nothing left */
    put("v2/jobs/memory.current", "2100000000\n");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 0);
    /* no limits: MemAvailable */
    put("v2/jobs/memory.max", "max\n");
    put("v2/jobs/job1/memory.max", "max\n");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 8000000ULL * 1024);
    /* a limit above MemAvailable does not count */
    put("v2/jobs/job1/memory.max", "100000000000\n");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 8000000ULL * 1024);
    /* a cgroup path from another namespace: the mount's root is ours; and
     * a hybrid system's v2 under unified/ */
    put("self-other", "0::/elsewhere/job\n");
    dir("v2u/unified");
    put("v2u/unified/memory.max", "500000000\n");
    s = sources("meminfo", "self-other", "v2u");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 500000000ULL);
}

static void test_cgroup_v1(void **state)
{
    rapid_mem_sources s;
    rapid_mem_avail a;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    put("meminfo", meminfo);
    put("self-v1", "9:name=systemd:/\n4:cpu,memory:/batch/j7\n0::/\n");
    dir("v1/memory/batch/j7");
    put("v1/memory/batch/j7/memory.limit_in_bytes", "3000000000\n");
    put("v1/memory/batch/j7/memory.usage_in_bytes", "1000000000\n");
    put("v1/memory/batch/j7/memory.stat",
        "cache 1\ninactive_file 7\nhierarchical_memory_limit 2000000000\n"
        "total_inactive_file 500000000\n");
    s = sources("meminfo", "self-v1", "v1");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 1500000000ULL);
    assert_non_null(strstr(a.source, "v1/memory/batch/j7/memory.limit_in_bytes"));
    /* unlimited (2^63 - 1 rounded to pages): MemAvailable */
    put("v1/memory/batch/j7/memory.stat",
        "hierarchical_memory_limit 9223372036854771712\n");
    assert_int_equal(rapid_mem_available(&s, &a, &err), 0);
    assert_true(a.bytes == 8000000ULL * 1024);
}

static void test_check(void **state)
{
    rapid_mem_sources s;
    rapid_err err = RAPID_ERR_INIT;
    char buf[32];

    (void)state;
    put("meminfo", meminfo);
    put("nocgroup", "");
    s = sources("meminfo", "nocgroup", "nowhere");
    assert_int_equal(rapid_mem_check(7000000ULL * 1024, "a small job", &s, &err), 0);
    assert_int_equal(rapid_mem_check(30ULL << 30, "a big job", &s, &err),
                     RAPID_E_NOMEM);
    assert_non_null(strstr(err.msg, "a big job needs about 30.0 GiB of memory, "
                                    "more than the 7.6 GiB available (MemAvailable in "));
    rapid_mem_format(512 * MIB, buf, sizeof buf);
    assert_string_equal(buf, "512 MiB");
    rapid_mem_format(3 * 1024 * MIB / 2, buf, sizeof buf);
    assert_string_equal(buf, "1.5 GiB");
}

/* The coadd's estimate: 24 bytes per grid pixel, 12 per input pixel and
 * thread (the input's size from its header; 16 when it has ERR), 32 MiB. */
static void test_coadd_estimate(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd_input in[3] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    rapid_image img = RAPID_IMAGE_INIT;
    char path[1024];

    (void)state;
    snprintf(path, sizeof path, "%s", test_path("in.fits"));
    assert_int_equal(rapid_image_alloc(&img, 100, 50, 0, NULL), 0);
    assert_int_equal(rapid_fits_write_image(path, &img, "SCI", NULL), 0);
    rapid_image_release(&img);
    in[0].path = "/nonexistent.fits"; /* skipped */
    in[1].path = path;
    in[2].path = path;
    rapid_coadd_opts_init(&o);
    o.size = 1000;
    assert_true(rapid_coadd_memory(&o, in, 3) == 32 * MIB + 24000000ULL + 12 * 5000);
    o.nthreads = 8; /* no more threads than inputs */
    assert_true(rapid_coadd_memory(&o, in, 3) == 32 * MIB + 24000000ULL + 3 * 12 * 5000);
    o.max_inputs = 2;
    assert_true(rapid_coadd_memory(&o, in, 3) == 32 * MIB + 24000000ULL + 2 * 12 * 5000);
    /* no readable input: a Roman detector's 4088^2 */
    o.nthreads = 1;
    assert_true(rapid_coadd_memory(&o, in, 1) == 32 * MIB + 24000000ULL + 12ULL * 4088 * 4088);
    /* the default grid, as calibrated (coadd_memory.c) */
    rapid_coadd_opts_init(&o);
    o.size = 2000;
    assert_true(rapid_coadd_memory(&o, in + 1, 1) > 96000000ULL);
    /* an input with an ERR extension: 4 bytes more per input pixel */
    {
        rapid_fits_out *out = NULL;
        assert_int_equal(rapid_image_alloc(&img, 100, 50, 0, NULL), 0);
        assert_int_equal(rapid_fits_create(&out, path, NULL), 0);
        assert_int_equal(rapid_fits_append_image(out, &img, "SCI", NULL), 0);
        assert_int_equal(rapid_fits_append_image(out, &img, "ERR", NULL), 0);
        assert_int_equal(rapid_fits_commit(out, NULL), 0);
        rapid_image_release(&img);
        o.size = 1000;
        assert_true(rapid_coadd_memory(&o, in + 1, 1) ==
                    32 * MIB + 24000000ULL + 16 * 5000);
    }
}

/* The simulator's, against the calibration points of sim_memory.c (peak
 * RSS 426 MB for one 4088^2 image, 457 MB for 200 tiles of 256^2). */
static void test_sim_estimate(void **state)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    uint64_t a, b;

    (void)state;
    rapid_sim_config_init(&c);
    c.nscas = 1, c.epochs = 1;
    assert_int_equal(rapid_sim_memory(&c, &a, &err), 0);
    assert_true(a > 426000000ULL && a < 1.4 * 426000000.0);
    c.size = 256, c.ntiles = 200;
    assert_int_equal(rapid_sim_memory(&c, &b, &err), 0);
    assert_true(b > 450000000ULL && b < 1.4 * 457000000.0);
    c.size = 0;
    assert_true(rapid_sim_memory(&c, &b, &err) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meminfo),
        cmocka_unit_test(test_cgroup_v2),
        cmocka_unit_test(test_cgroup_v1),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_coadd_estimate),
        cmocka_unit_test(test_sim_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
