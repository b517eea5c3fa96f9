/* stats.h - order statistics shared by the modules (not public). */
#ifndef RAPID_STATS_H
#define RAPID_STATS_H

#include <stddef.h>

/* The k-th smallest of v[0..n) (0-based), by quickselect: v is reordered.
 * n > 0, k < n. */
float rapid_select_f(float *v, size_t n, size_t k);

/* The stride of an even sample of at most maxsample of n values (0: all
 * of them): the sample is v[0], v[step], v[2 step], ... */
size_t rapid_sample_step(size_t n, size_t maxsample);

/* *med: the median of the finite values of v[0..n), from an even sample
 * of at most maxsample of them (v is not changed); NaN if there are none.
 * *count (may be NULL) receives how many values the sample held.  0, or
 * RAPID_E_NOMEM (then *med is NaN and *count 0). */
int rapid_median_sample(const float *v, size_t n, size_t maxsample,
                        double *med, size_t *count);

/* *sigma: 1.4826 x the median absolute deviation from the median (a
 * robust standard deviation) of the finite values of v[0..n), from an
 * even sample of at most maxsample of them; NaN if fewer than minvals.
 * 0, or RAPID_E_NOMEM (then *sigma is NaN). */
int rapid_robust_sigma_sample(const float *v, size_t n, size_t maxsample,
                              size_t minvals, double *sigma);

#endif
