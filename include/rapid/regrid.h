/* rapid/regrid.h - one image resampled onto another image's pixels, with
 * exact overlap areas (the reference onto the science image's grid).
 *
 * Each input pixel, mapped through the two WCS (TAN or TAN-SIP), is a
 * quadrilateral on the output grid; its value spreads over the output
 * pixels in proportion to the overlap areas (the mesh of resample.h), so
 * flux is conserved.  NaN input pixels are holes.
 *
 * For every output pixel: cover = the fraction of it that input pixels
 * cover (0..1), and
 *   RAPID_REGRID_FLUX: out = the input's flux falling in it, per whole
 *     pixel (the covered part's flux / cover): for images of flux per
 *     pixel (DN/s), whose values scale with the pixel's area on the sky;
 *   RAPID_REGRID_MEAN: out = the area-weighted mean of the input values
 *     over it: for maps of a quantity per pixel that does not scale with
 *     area (coverage counts);
 *   RAPID_REGRID_VARIANCE: the input is the variance of each input pixel
 *     (e.g. an uncertainty map squared); out = the variance of the flux
 *     RAPID_REGRID_FLUX makes of the image it belongs to, sum_p f_p^2
 *     var_p with f_p the share of input pixel p in the output pixel (the
 *     geometric factor of resample.h times the local mean variance).
 *     Neighbouring output pixels share input pixels: their noise is
 *     correlated, which this per-pixel variance does not describe.
 * Output pixels no input pixel reaches are NaN with cover 0.
 */
#ifndef RAPID_REGRID_H
#define RAPID_REGRID_H

#include "rapid/error.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rapid_regrid_mode {
    RAPID_REGRID_FLUX = 0,
    RAPID_REGRID_MEAN = 1,
    RAPID_REGRID_VARIANCE = 2
} rapid_regrid_mode;

/* in: inx x iny with WCS in_wcs; out (onx x ony floats, the caller's) on
 * out_wcs; cover (the same size, may be NULL).  RAPID_E_RANGE when the
 * images do not overlap, RAPID_E_WCS for a WCS that is neither TAN nor
 * TAN-SIP or does not map, RAPID_E_NOMEM. */
int rapid_regrid(const float *in, int inx, int iny, rapid_wcs *in_wcs,
                 rapid_wcs *out_wcs, int onx, int ony, rapid_regrid_mode mode,
                 float *out, float *cover, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
