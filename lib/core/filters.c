/* filters.c - the Roman WFI filter table (docs/simulator.md). */
#include <math.h>
#include <stddef.h>
#include <strings.h>

#include "rapid/filters.h"

static const rapid_filter filters[RAPID_NFILTERS] = {
    /* fid name alias lambda fwhm zp zodi thermal */
    {1, "F184", "F184", 1.84, 0.146, 25.85, 0.14, 0.16},
    {2, "H158", "F158", 1.58, 0.128, 26.32, 0.24, 0.05},
    {3, "J129", "F129", 1.29, 0.106, 26.32, 0.27, 0.00},
    {4, "K213", "F213", 2.13, 0.169, 25.81, 0.12, 4.40},
    {5, "R062", "F062", 0.62, 0.058, 26.58, 0.25, 0.00},
    {6, "Y106", "F106", 1.06, 0.087, 26.32, 0.28, 0.00},
    {7, "Z087", "F087", 0.87, 0.073, 26.23, 0.25, 0.00},
    {8, "W146", "F146", 1.46, 0.105, 27.54, 0.78, 1.00},
};

const rapid_filter *rapid_filter_by_name(const char *name)
{
    int i;

    if (!name)
        return NULL;
    for (i = 0; i < RAPID_NFILTERS; i++)
        if (strcasecmp(name, filters[i].name) == 0 ||
            strcasecmp(name, filters[i].alias) == 0)
            return &filters[i];
    return NULL;
}

const rapid_filter *rapid_filter_by_fid(int fid)
{
    return fid >= 1 && fid <= RAPID_NFILTERS ? &filters[fid - 1] : NULL;
}

double rapid_read_noise(double t)
{
    double n = floor(t / RAPID_FRAME_TIME);

    if (n < 2)
        return RAPID_FRAME_NOISE * sqrt(2.0); /* one difference of two reads */
    return RAPID_FRAME_NOISE * sqrt(12 * (n - 1) / (n * (n + 1)));
}
