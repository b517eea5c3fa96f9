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

/* The same from the PSF's model before sampling (ovs: m x m, odd, over
 * samples per pixel, centred on the middle sample; e.g. the OVERSAMP
 * extension of a reference PSF from rapid coadd): convolved with the two
 * pixel boxes by their transforms, then sampled every over-th sample
 * through the centre into out (n x n, odd), unit sum.  Exact where
 * rapid_psf_resample_blur is not: for an undersampled PSF the kernel on
 * the samples lowers the core too little (for the reference PSF of H158
 * inputs, the central pixel keeps 7 % too much light). */
int rapid_psf_resample_blur_oversampled(const float *ovs, int m, int over,
                                        int n, float *out, rapid_err *err);

/* The reference PSF as the science pixels see it (P_r of subtraction):
 * from its model before sampling when there is one (ovs not NULL: m x m,
 * over samples per pixel; rapid_psf_resample_blur_oversampled), else from
 * the samples (rapid_psf_resample_blur); n x n into out, unit sum.
 * *exact (may be NULL): 1 when made from the model. */
int rapid_psf_on_science(const float *psf, int n, const float *ovs, int m,
                         int over, float *out, int *exact, rapid_err *err);

/* The share of a PSF's light (odd n x n, centred on the middle pixel)
 * inside a circle of diameter `diameter` px about its centre, pixels cut
 * by the circle counted by their area (16 x 16 subsamples). */
double rapid_psf_aperture_fraction(const float *psf, int n, double diameter);

#ifdef __cplusplus
}
#endif
#endif
