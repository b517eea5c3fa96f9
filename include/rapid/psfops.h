/* rapid/psfops.h - operations on sampled PSF images that subtraction
 * needs.
 *
 * A PSF image is odd-sized (n x n), centred on its middle pixel, sampled at
 * the image's pixels (each value the integral of the light over a pixel).
 */
#ifndef RAPID_PSFOPS_H
#define RAPID_PSFOPS_H

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The PSF seen through one more square pixel of width `width` pixels
 * (1: the science pixel through which a resampled reference is seen): the
 * PSF convolved with the box, by multiplying its transform by
 * sinc(pi w kx) sinc(pi w ky) on a grid padded against wrap-around (FFTs
 * through rapid/fft.h).  The sum is kept (but for light the box moves off
 * the n x n stamp); each axis's second moment grows
 * by w^2 / 12.  out (n x n, the caller's) may be psf itself. */
int rapid_psf_box_blur(const float *psf, int n, double width, float *out,
                       rapid_err *err);

/* The PSF of an image resampled with exact overlap areas onto pixels of
 * the same size (the reference on the science grid): at a phase u each
 * pixel's light is shared (1 - u, u) with its neighbour along each axis,
 * which averaged over the phases adds 1/6 to each axis's second moment;
 * the PSF is convolved with the symmetric kernel of that variance,
 * [1/12, 5/6, 1/12] per axis (light kept but for what leaves the stamp).
 * out may be psf. */
int rapid_psf_resample_blur(const float *psf, int n, float *out,
                            rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
