/* rapid/spikes.h - unflagged single-pixel spikes: hot pixels and
 * cosmic-ray charge that DQ does not mark, told from point sources by the
 * PSF.
 *
 * Roman's PSF is undersampled: a spike of 20 sigma passes a PSF fit's
 * chi^2, so a subtraction would take one for a point source.  A spike is
 * a pixel whose excess over the background, less RAPID_SPIKE_MARGIN times
 * the PSF's peak-to-neighbour ratio times the largest excess of its four
 * side neighbours (all with data), is more than RAPID_SPIKE_NSIGMA times
 * the sky's noise there: no point source, whose neighbours hold at least
 * 1 / ratio of its peak, can be one (the ratio is the largest a source
 * centred on a pixel has).  A spike is judged by its neighbours' data,
 * not by what was masked before it.  The science image
 * (rapid_science_mask_spikes) and every input of a reference image
 * (docs/reference.md) are searched so.
 */
#ifndef RAPID_SPIKES_H
#define RAPID_SPIKES_H

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_SPIKE_NSIGMA 5.0
#define RAPID_SPIKE_MARGIN 1.5

/* The central value over the largest of its four side neighbours of a
 * psf of n x n pixels (odd, centred on its middle pixel, the image's
 * native pixels); NaN when the middle is not a peak above positive
 * neighbours, or n is even or below 3. */
double rapid_spike_psf_ratio(const float *psf, int n);

/* The noise and background of the image being searched: the sky's
 * variance at a background b is var_read + var_per_unit * max(b, 0), in
 * the image's units squared (for DN with a gain g in e/DN and a read
 * noise rn in e: var_read = (rn / g)^2, var_per_unit = 1 / g).  bkg (nx *
 * ny, NULL: the constant bkg0 everywhere) is the smooth background. */
typedef struct rapid_spike_noise {
    const float *bkg;
    double bkg0;
    double var_read, var_per_unit;
} rapid_spike_noise;

/* Set the spikes of data (nx x ny, NaN: no data) to NaN, and the same
 * pixels of also (NULL: none; e.g. the uncertainty map); *nmasked (may
 * be NULL) gets how many.  ratio: rapid_spike_psf_ratio of the image's
 * PSF (finite, > 1, else RAPID_E_ARG).  0, RAPID_E_ARG or RAPID_E_NOMEM
 * (nothing changed then). */
int rapid_spike_mask(float *data, float *also, int nx, int ny,
                     const rapid_spike_noise *noise, double ratio,
                     long *nmasked, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
