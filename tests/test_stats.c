/* test_stats.c - order statistics against sorting. */
#include <math.h>
#include <stdint.h>
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

/* Gaussian values with outliers and NaN: the robust sigma is the
 * Gaussian's; too few values give NaN. */
static void test_robust_sigma(void **state)
{
    enum { N = 20001 };
    static float v[N];
    uint64_t rng = 3;
    double sig;
    int i;

    (void)state;
    for (i = 0; i < N; i++) { /* Box-Muller, sigma 2 */
        double u1 = test_uniform(&rng), u2 = test_uniform(&rng);
        v[i] = (float)(5 + 2 * sqrt(-2 * log(u1 + 1e-300)) * cos(2 * M_PI * u2));
    }
    for (i = 0; i < N; i += 50)
        v[i] = 1e6f;              /* 2 % outliers */
    for (i = 1; i < N; i += 97)
        v[i] = NAN;
    assert_int_equal(rapid_robust_sigma_sample(v, N, 0, 10, &sig), 0);
    assert_true(fabs(sig - 2) < 0.1);
    assert_int_equal(rapid_robust_sigma_sample(v, N, 5000, 10, &sig), 0);
    assert_true(fabs(sig - 2) < 0.2);
    assert_int_equal(rapid_robust_sigma_sample(v, 5, 0, 10, &sig), 0);
    assert_true(isnan(sig));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_median_sample),
        cmocka_unit_test(test_robust_sigma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
