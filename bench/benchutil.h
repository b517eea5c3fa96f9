/* benchutil.h - what the benchmark programs share. */
#ifndef RAPID_BENCHUTIL_H
#define RAPID_BENCHUTIL_H

#include <stdint.h>
#include <time.h>

#include "rapid/rng.h"

/* Monotonic wall-clock time, seconds. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread, seconds: what a stage costs on a
 * machine shared with other work (its wall clock also counts the waits). */
static inline double bench_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Uniform [0, 1) from a counter-based state (the library's generator). */
static inline double bench_uniform(uint64_t *s)
{
    rapid_rng r;
    rapid_rng_seed(&r, (*s)++);
    return rapid_rng_uniform(&r);
}

#endif
