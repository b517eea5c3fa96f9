/* rapid/rng.h - a small, fast, reproducible random number generator.
 *
 * xoshiro256** seeded through splitmix64.  Streams derived with
 * rapid_rng_derive() from (seed, key...) are independent and do not depend
 * on the order in which they are made, so that simulated images come out the
 * same whichever image is made first, or in which thread.
 */
#ifndef RAPID_RNG_H
#define RAPID_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_rng {
    uint64_t s[4];
    int has_spare;   /* Box-Muller makes normals in pairs */
    double spare;
} rapid_rng;

void rapid_rng_seed(rapid_rng *r, uint64_t seed);
/* A generator for the stream named by (seed, a, b, c). */
void rapid_rng_derive(rapid_rng *r, uint64_t seed, uint64_t a, uint64_t b,
                      uint64_t c);
uint64_t rapid_rng_u64(rapid_rng *r);
/* Uniform in [0, 1). */
double rapid_rng_uniform(rapid_rng *r);
/* Standard normal. */
double rapid_rng_normal(rapid_rng *r);
/* Poisson deviate of mean mu >= 0 (exact for every mu: inversion below 10,
 * Hoermann's PTRS transformed rejection above). */
double rapid_rng_poisson(rapid_rng *r, double mu);

#ifdef __cplusplus
}
#endif
#endif
