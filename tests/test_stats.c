/* test_stats.c - order statistics against sorting. */
#include <math.h>
#include <stdlib.h>

#include "core/stats.h"
#include "testutil.h"

static int cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_select(void **state)
{
    uint64_t s = 3;
    int trial;

    (void)state;
    for (trial = 0; trial < 200; trial++) {
        size_t n = 1 + (size_t)(test_uniform(&s) * 500), i, k;
        float *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
        for (i = 0; i < n; i++) /* many ties too */
            v[i] = w[i] = trial % 3 ? (float)test_uniform(&s) : (float)(int)(5 * test_uniform(&s));
        qsort(w, n, sizeof *w, cmp);
        k = (size_t)(test_uniform(&s) * n);
        assert_true(rapid_select_f(v, n, k) == w[k]);
        free(v);
        free(w);
    }
}

static void test_median_sample(void **state)
{
    float v[7] = {5, NAN, 1, 4, INFINITY, 2, 3};
    double med;
    size_t m;

    (void)state;
    assert_int_equal(rapid_median_sample(v, 7, 0, &med, &m), 0);
    assert_true(med == 3 && m == 5);
    v[0] = v[2] = v[3] = v[5] = v[6] = NAN;
    assert_int_equal(rapid_median_sample(v, 7, 0, &med, &m), 0);
    assert_true(isnan(med) && m == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_median_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
