/* testutil.h - shared helpers for the unit tests. */
#ifndef RAPID_TESTUTIL_H
#define RAPID_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* A call returning a rapid_status must succeed; on failure the test stops
 * with the call, its status and the error record's message. */
#define assert_ok(call, err)                                                 \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != 0)                                                        \
            fail_msg("%s returned %d: %s", #call, rc_, (err).msg);           \
    } while (0)

/* A fresh empty directory for this test program (under $RAPID_TEST_TMP or
 * /tmp); the returned string is static. */
const char *test_tmpdir(void);
/* test_tmpdir()/name, in a static rotating buffer. */
const char *test_path(const char *name);
/* Entries of dir besides . and .. (hidden temporary files included). */
int test_count_entries(const char *dir);
/* Entries of dir whose names start with prefix. */
int test_count_prefixed(const char *dir, const char *prefix);
/* qsort order of floats, ascending. */
int test_cmp_float(const void *a, const void *b);
/* The median and robust sigma (1.4826 x the median absolute deviation) of
 * the finite values of v[0..n) whose skip (may be NULL) is 0; returns how
 * many values counted (med and sig NaN when none). */
size_t test_robust(const float *v, const unsigned char *skip, size_t n,
                   double *med, double *sig);
/* Deterministic uniform [0,1) generator (splitmix64). */
double test_uniform(uint64_t *state);

#endif
