/* rapid/diff.h - a science image and its reference on the same pixels,
 * matched, and subtracted.
 *
 * The steps of image subtraction before the methods themselves:
 *   1. the science image in DN/s with its uncertainty (rapid/science.h);
 *   2. the reference, its coverage and uncertainty resampled onto the
 *      science image's pixels with exact overlap areas (rapid/regrid.h);
 *   3. the backgrounds of both (rapid/background.h: windows of 500 px on
 *      the science image, 128 on the resampled reference);
 *   4. the flux scale and residual offset from stars paired between their
 *      catalogs (rapid/extract.h, rapid/gainmatch.h), or from the zero
 *      points with fewer than 20 stars.
 * Then the naive difference: D = (S - B_s) - scale (R - B_r), with
 * sigma_D^2 = sigma_S^2 + scale^2 sigma_R^2, in science DN/s; NaN where
 * the reference's coverage is below 0.5 or either image has no data.
 */
#ifndef RAPID_DIFF_H
#define RAPID_DIFF_H

#include "rapid/background.h"
#include "rapid/error.h"
#include "rapid/fits.h"
#include "rapid/gainmatch.h"
#include "rapid/science.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The reference as given: an image in DN/s (any zero point: zp_scale
 * brings it to the science image's), its WCS (TAN or TAN-SIP), and
 * optionally its coverage (input images per pixel) and 1-sigma
 * uncertainty (DN/s), the same size; NULL coverage counts 1 everywhere,
 * NULL uncertainty takes the reference's background noise. */
typedef struct rapid_diff_ref {
    const float *image, *cov, *unc;
    int nx, ny;
    rapid_wcs *wcs;
    double zp_scale;      /* science / reference flux for equal magnitudes */
} rapid_diff_ref;

typedef struct rapid_diff_pair {
    int nx, ny;                 /* the science image's */
    rapid_image ref, cov, unc;  /* the reference on the science pixels:
                                 * DN/s (reference units), coverage, 1 sigma */
    rapid_background bkg_sci, bkg_ref;
    rapid_gainmatch match;
} rapid_diff_pair;

/* Steps 2-4 for a science image already read (step 1) and its WCS. */
int rapid_diff_prepare(const rapid_science *sci, rapid_wcs *sci_wcs,
                       const rapid_diff_ref *ref, rapid_diff_pair *p,
                       rapid_err *err);
void rapid_diff_pair_release(rapid_diff_pair *p);

/* The naive difference and its uncertainty (nx * ny floats each, the
 * caller's). */
void rapid_diff_naive(const rapid_science *sci, const rapid_diff_pair *p,
                      float *d, float *unc);

#ifdef __cplusplus
}
#endif
#endif
