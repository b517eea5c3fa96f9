/* test_rng.c - the generator's streams and distributions. */
#include <math.h>
#include <string.h>

#include "rapid/rng.h"
#include "testutil.h"

static void test_deterministic(void **state)
{
    rapid_rng a, b, c;
    int i, same = 0;

    (void)state;
    rapid_rng_derive(&a, 42, 1, 2, 3);
    rapid_rng_derive(&b, 42, 1, 2, 3);
    rapid_rng_derive(&c, 42, 1, 2, 4);
    for (i = 0; i < 1000; i++) {
        uint64_t x = rapid_rng_u64(&a);
        assert_true(x == rapid_rng_u64(&b));
        same += x == rapid_rng_u64(&c);
    }
    assert_int_equal(same, 0);
    /* the key order matters: (1,2,3) and (2,1,3) are different streams */
    rapid_rng_derive(&a, 42, 1, 2, 3);
    rapid_rng_derive(&b, 42, 2, 1, 3);
    assert_true(rapid_rng_u64(&a) != rapid_rng_u64(&b));
}

/* Mean and variance of n draws, with their standard errors checked to 5 sigma. */
static void moments(double (*draw)(rapid_rng *, double), double p, double mean,
                    double var)
{
    rapid_rng r;
    int i, n = 400000;
    double s = 0, s2 = 0, m, v;

    rapid_rng_derive(&r, 7, (uint64_t)(p * 1000), 0, 0);
    for (i = 0; i < n; i++) {
        double x = draw(&r, p);
        s += x;
        s2 += x * x;
    }
    m = s / n;
    v = s2 / n - m * m;
    if (fabs(m - mean) > 5 * sqrt(var / n))
        fail_msg("p=%g: mean %g, want %g", p, m, mean);
    /* var of the sample variance ~ 2 var^2/n for near-normal; allow slack */
    if (fabs(v - var) > 6 * var * sqrt(3.0 / n) + 1e-12)
        fail_msg("p=%g: variance %g, want %g", p, v, var);
}

static double draw_uniform(rapid_rng *r, double p)
{
    (void)p;
    return rapid_rng_uniform(r);
}

static double draw_normal(rapid_rng *r, double p)
{
    (void)p;
    return rapid_rng_normal(r);
}

static void test_uniform_normal(void **state)
{
    rapid_rng r;
    int i;

    (void)state;
    moments(draw_uniform, 0, 0.5, 1.0 / 12);
    moments(draw_normal, 0, 0.0, 1.0);
    rapid_rng_seed(&r, 1);
    for (i = 0; i < 100000; i++) {
        double u = rapid_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
    }
}

/* Poisson: mean = variance = mu on both sides of the algorithm switch, and
 * integer values. */
static void test_poisson(void **state)
{
    double mus[] = {0.05, 1, 3.5, 9.99, 10, 25, 40, 1000, 1e5};
    rapid_rng r;
    size_t k;
    int i;

    (void)state;
    for (k = 0; k < sizeof mus / sizeof mus[0]; k++)
        moments(rapid_rng_poisson, mus[k], mus[k], mus[k]);
    rapid_rng_seed(&r, 3);
    for (i = 0; i < 10000; i++) {
        double x = rapid_rng_poisson(&r, 40);
        assert_true(x >= 0 && x == floor(x));
    }
    assert_true(rapid_rng_poisson(&r, 0) == 0);
    assert_true(rapid_rng_poisson(&r, -1) == 0);
    assert_true(rapid_rng_poisson(&r, NAN) == 0);
}

/* The PTRS branch gets the shape right, not only the moments: the
 * probability of the mode at mu = 40 is e^-40 40^40/40! = 0.06297. */
static void test_poisson_pmf(void **state)
{
    rapid_rng r;
    int i, n = 1000000, hits = 0, zero = 0;
    double p = exp(-40 + 40 * log(40.0) - lgamma(41.0));

    (void)state;
    rapid_rng_seed(&r, 9);
    for (i = 0; i < n; i++)
        hits += rapid_rng_poisson(&r, 40) == 40;
    assert_true(fabs((double)hits / n - p) < 5 * sqrt(p * (1 - p) / n));
    for (i = 0; i < n; i++) /* P(0) at mu = 2 is e^-2 */
        zero += rapid_rng_poisson(&r, 2) == 0;
    assert_true(fabs((double)zero / n - exp(-2)) < 5 * sqrt(0.135 * 0.865 / n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_uniform_normal),
        cmocka_unit_test(test_poisson),
        cmocka_unit_test(test_poisson_pmf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
