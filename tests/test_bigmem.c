/* test_bigmem.c - large buffers: recycled through the pool, zeroed when
 * asked, never handed out twice, and given back by rapid_big_trim. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/bigmem.h"
#include "testutil.h"

#define MB ((size_t)1 << 20)

static void fill(void *p, size_t n, int c)
{
    memset(p, c, n);
}

static int all_zero(const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i += 4093) /* a sample of every page or so */
        if (p[i])
            return 0;
    return !p[n - 1];
}

static void test_small_blocks_are_malloc(void **state)
{
    size_t pooled, inuse;
    char *p = rapid_big_malloc(1000), *q = rapid_big_calloc(10, 100);

    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    assert_true(all_zero((unsigned char *)q, 1000));
    rapid_big_stats(&pooled, &inuse);
    assert_int_equal(inuse, 0);
    rapid_big_free(p);
    rapid_big_free(q);
    rapid_big_free(NULL);
    assert_null(rapid_big_malloc(0));
    assert_null(rapid_big_calloc(SIZE_MAX / 2, 4)); /* overflow */
}

static void test_reuse_and_zero(void **state)
{
    size_t pooled, inuse, n = 100 * MB;
    unsigned char *a, *b, *c, *d;

    (void)state;
    rapid_big_trim();
    a = rapid_big_calloc(n, 1);
    assert_non_null(a);
    assert_true(all_zero(a, n));
    fill(a, n, 0x5a);
    rapid_big_stats(&pooled, &inuse);
    if (rapid_big_pooling())
        assert_true(inuse >= n);
    rapid_big_free(a);
    rapid_big_stats(&pooled, &inuse);
    if (rapid_big_pooling()) {
        assert_true(pooled >= n);
        assert_int_equal(inuse, 0);
    }
    /* two smaller blocks carved from it: distinct, and calloc zeroes */
    b = rapid_big_calloc(40 * MB, 1);
    c = rapid_big_malloc(40 * MB);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(b + 40 * MB <= c || c + 40 * MB <= b);
    assert_true(all_zero(b, 40 * MB));
    fill(c, 40 * MB, 0x33);
    assert_true(all_zero(b, 40 * MB));
    if (rapid_big_pooling()) {
        rapid_big_stats(&pooled, &inuse);
        assert_true(inuse >= 80 * MB);
        assert_true(pooled + inuse >= n); /* carved, not mapped anew */
    }
    /* freed neighbours merge back into one block that fits the whole */
    rapid_big_free(b);
    rapid_big_free(c);
    d = rapid_big_calloc(n, 1);
    assert_non_null(d);
    assert_true(all_zero(d, n));
    rapid_big_free(d);
    rapid_big_trim();
    rapid_big_stats(&pooled, &inuse);
    assert_int_equal(pooled, 0);
    assert_int_equal(inuse, 0);
}

/* A block bigger than anything pooled is gathered from the pooled
 * blocks, largest first: their pages come along (a malloc'd block still
 * holds what they held), the pool keeps what was not needed, and nothing
 * is mapped anew while the pool covers the block; calloc zeroes the old
 * parts as well as the fresh one. */
static void test_no_fit_gathers(void **state)
{
    size_t pooled, inuse, k;
    unsigned char *a, *s, *g, *b, *c, *sep[2];

    (void)state;
    rapid_big_trim();
    /* three blocks kept apart by live ones, so that they cannot merge */
    a = rapid_big_malloc(40 * MB), sep[0] = rapid_big_malloc(32 * MB);
    s = rapid_big_malloc(34 * MB), sep[1] = rapid_big_malloc(32 * MB);
    g = rapid_big_malloc(34 * MB);
    assert_non_null(a);
    assert_non_null(s);
    assert_non_null(g);
    assert_non_null(sep[0]);
    assert_non_null(sep[1]);
    fill(a, 40 * MB, 0x5a);
    fill(s, 34 * MB, 0x5a);
    fill(g, 34 * MB, 0x5a);
    rapid_big_free(g);
    rapid_big_free(s);
    rapid_big_free(a);
    b = rapid_big_malloc(70 * MB); /* 40 MB and 30 of a 34 MB block */
    assert_non_null(b);
    rapid_big_stats(&pooled, &inuse);
    if (rapid_big_pooling()) {
        assert_int_equal(inuse, 134 * MB);
        assert_int_equal(pooled, 38 * MB); /* the rest of the pool stays */
        for (k = 0; k < 70 * MB; k += 4093)
            assert_int_equal(b[k], 0x5a);
        assert_int_equal((uintptr_t)b % (2 * MB), 0);
    }
    fill(b, 70 * MB, 0x6b);
    rapid_big_free(b);
    /* more than the pool holds: all of it, the rest fresh, and zeroed */
    c = rapid_big_calloc(300 * MB, 1);
    assert_non_null(c);
    assert_true(all_zero(c, 300 * MB));
    rapid_big_stats(&pooled, &inuse);
    assert_int_equal(pooled, 0);
    if (rapid_big_pooling())
        assert_int_equal(inuse, 364 * MB);
    fill(c, 300 * MB, 0x11);
    rapid_big_free(c);
    c = rapid_big_calloc(300 * MB, 1); /* the same memory again */
    assert_true(all_zero(c, 300 * MB));
    rapid_big_free(c);
    rapid_big_free(sep[0]);
    rapid_big_free(sep[1]);
    rapid_big_trim();
}

/* A sparse block: zero; fresh when nothing pooled fits (the pool is
 * neither gathered nor given back), then only the pages written take
 * memory, and unmapped when freed; from the pool when a block fits. */
static void test_sparse(void **state)
{
    size_t pooled, pooled0, inuse, n = 40 * MB, k, page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *a, *s, vec[64];

    (void)state;
    rapid_big_trim();
    a = rapid_big_malloc(34 * MB); /* pooled, too small for n */
    assert_non_null(a);
    fill(a, 34 * MB, 0x77);
    rapid_big_free(a);
    rapid_big_stats(&pooled0, &inuse);
    s = rapid_big_calloc_sparse(n, 1);
    assert_non_null(s);
    s[0] = 1, s[n / 2] = 2;
    if (rapid_big_pooling()) {
        size_t resident = 0, off;
        rapid_big_stats(&pooled, &inuse);
        assert_int_equal(pooled, pooled0);
        assert_true(inuse >= n);
        /* resident pages, 64 at a time */
        for (off = 0; off < n; off += 64 * page) {
            size_t len = n - off < 64 * page ? n - off : 64 * page;
            assert_int_equal(mincore(s + off, len, vec), 0);
            for (k = 0; k < (len + page - 1) / page; k++)
                resident += vec[k] & 1;
        }
        assert_true(resident <= 4); /* 2 written, not 40 MB worth */
    }
    assert_int_equal(s[0], 1);
    assert_int_equal(s[n / 2], 2);
    s[0] = s[n / 2] = 0;
    assert_true(all_zero(s, n));
    rapid_big_free(s);
    /* unmapped, not pooled: mostly untouched, it would hand the next
     * block memory to fault in 4 kB pages */
    rapid_big_stats(&pooled, &inuse);
    assert_int_equal(pooled, pooled0);
    assert_int_equal(inuse, 0);
    /* a pooled block that fits is taken, and cleared */
    rapid_big_trim();
    a = rapid_big_malloc(100 * MB);
    assert_non_null(a);
    fill(a, 100 * MB, 0x77);
    rapid_big_free(a);
    s = rapid_big_calloc_sparse(n, 1);
    assert_non_null(s);
    assert_true(all_zero(s, n));
    rapid_big_stats(&pooled, &inuse);
    if (rapid_big_pooling())
        assert_int_equal(pooled + inuse, 100 * MB);
    rapid_big_free(s);
    rapid_big_stats(&pooled, &inuse);
    if (rapid_big_pooling())
        assert_int_equal(pooled, 100 * MB); /* back in the pool */
    assert_null(rapid_big_calloc_sparse(SIZE_MAX / 2, 4));
    rapid_big_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_blocks_are_malloc),
        cmocka_unit_test(test_reuse_and_zero),
        cmocka_unit_test(test_no_fit_gathers),
        cmocka_unit_test(test_sparse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
