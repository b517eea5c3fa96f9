/* stats.c - order statistics in linear time. */
#include <math.h>
#include <stdlib.h>

#include "rapid/error.h"
#include "stats.h"

float rapid_select_f(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;

    /* Hoare partitioning around the median of three, narrowing to k. */
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
        float a = v[lo], b = v[mid], c = v[hi], pivot;
        pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j], v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

size_t rapid_sample_step(size_t n, size_t maxsample)
{
    return maxsample && n > maxsample ? n / maxsample : 1;
}

int rapid_median_sample(const float *v, size_t n, size_t maxsample,
                        double *med, size_t *count)
{
    size_t step = rapid_sample_step(n, maxsample), i, m = 0;
    float *s = malloc((n / step + 1) * sizeof *s);

    *med = NAN;
    if (count)
        *count = 0;
    if (!s)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step)
        if (isfinite(v[i]))
            s[m++] = v[i];
    if (m)
        *med = rapid_select_f(s, m, m / 2);
    free(s);
    if (count)
        *count = m;
    return 0;
}

int rapid_robust_sigma_sample(const float *v, size_t n, size_t maxsample,
                              size_t minvals, double *sigma)
{
    size_t step = rapid_sample_step(n, maxsample), i, m = 0;
    float *s = malloc((n / step + 1) * sizeof *s);
    float med;

    *sigma = NAN;
    if (!s)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step)
        if (isfinite(v[i]))
            s[m++] = v[i];
    if (m > 0 && m >= minvals) {
        med = rapid_select_f(s, m, m / 2);
        for (i = 0; i < m; i++)
            s[i] = fabsf(s[i] - med);
        *sigma = 1.4826 * rapid_select_f(s, m, m / 2);
    }
    free(s);
    return 0;
}
