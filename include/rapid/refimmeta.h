/* rapid/refimmeta.h - the statistics of a reference image: what the coadd
 * (rapid/coadd.h) measures and the database (rapid/db.h) stores in the
 * refimmeta table, one struct for both.
 *
 * Pixel counts are of the output grid; MJDs are UTC-based modified Julian
 * dates; image values are DN/s at the reference image's zero point; FWHMs
 * are in output pixels (NaN when no star was measured).
 */
#ifndef RAPID_REFIMMETA_H
#define RAPID_REFIMMETA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_refimmeta {
    int nframes;                 /* input images combined */
    double mjdobsmin, mjdobsmax; /* first and last input MJD-OBS */
    int64_t npixsat;             /* input values excluded as saturated */
    int64_t npixnan;             /* output pixels without data */
    double clmean, clstddev;     /* sigma-clipped mean and std. deviation */
    int64_t clnoutliers;         /* input values rejected as outliers */
    double gmedian, datascale, gmin, gmax; /* median, robust scale, range */
    double cov5percent;          /* % of pixels with coverage >= 5 */
    double medncov;              /* median coverage */
    double medpixunc;            /* median 1-sigma uncertainty */
    double fwhmmedpix, fwhmminpix, fwhmmaxpix; /* of the catalog's stars */
    int64_t nsexcatsources;      /* sources in the catalog */
} rapid_refimmeta;

#ifdef __cplusplus
}
#endif
#endif
