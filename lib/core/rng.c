/* rng.c - xoshiro256**, normals and exact Poisson deviates. */
#include <math.h>

#include "rapid/rng.h"

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rapid_rng_seed(rapid_rng *r, uint64_t seed)
{
    int i;

    for (i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
    r->has_spare = 0;
    r->spare = 0;
}

void rapid_rng_derive(rapid_rng *r, uint64_t seed, uint64_t a, uint64_t b,
                      uint64_t c)
{
    uint64_t x = seed;
    uint64_t h = splitmix(&x);

    x = h ^ a;
    h = splitmix(&x);
    x = h ^ b;
    h = splitmix(&x);
    x = h ^ c;
    rapid_rng_seed(r, splitmix(&x));
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rapid_rng_u64(rapid_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rapid_rng_uniform(rapid_rng *r)
{
    return (double)(rapid_rng_u64(r) >> 11) * 0x1.0p-53;
}

double rapid_rng_normal(rapid_rng *r)
{
    double u, v, s;

    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    do { /* Marsaglia's polar method */
        u = 2 * rapid_rng_uniform(r) - 1;
        v = 2 * rapid_rng_uniform(r) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    s = sqrt(-2 * log(s) / s);
    r->spare = v * s;
    r->has_spare = 1;
    return u * s;
}

/* Small means: count uniforms until their product drops below e^-mu. */
static double poisson_small(rapid_rng *r, double mu)
{
    double limit = exp(-mu), p = rapid_rng_uniform(r);
    double k = 0;

    while (p > limit) {
        p *= rapid_rng_uniform(r);
        k++;
    }
    return k;
}

/* Hoermann (1993), "The transformed rejection method for generating Poisson
 * random variables" (PTRS), valid for mu >= 10. */
static double poisson_ptrs(rapid_rng *r, double mu)
{
    double smu = sqrt(mu), b = 0.931 + 2.53 * smu, a = -0.059 + 0.02483 * b;
    double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
    double lmu = log(mu);

    for (;;) {
        double u = rapid_rng_uniform(r) - 0.5, v = rapid_rng_uniform(r);
        double us = 0.5 - fabs(u), k = floor((2 * a / us + b) * u + mu + 0.43);
        if (us >= 0.07 && v <= vr)
            return k;
        if (k < 0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <=
            -mu + k * lmu - lgamma(k + 1))
            return k;
    }
}

double rapid_rng_poisson(rapid_rng *r, double mu)
{
    if (!(mu > 0))
        return 0;
    return mu < 10 ? poisson_small(r, mu) : poisson_ptrs(r, mu);
}
