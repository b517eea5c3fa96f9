/* rapid/science.h - a science (L2) image as subtraction takes it: in DN/s,
 * with its 1-sigma uncertainty, unusable pixels NaN.
 *
 * The L2 file holds DN over EXPTIME seconds in SCI, and optionally ERR
 * (1-sigma, DN) and DQ (rapid/dq.h).  The rate is SCI / EXPTIME; its
 * uncertainty ERR / EXPTIME where the file has ERR, else computed from the
 * data as sqrt(|D| t / g + RN^2 / g^2) / t (D the rate in DN/s, t the
 * exposure time, g the gain GAIN in e/DN, 1 if absent, RN the read noise
 * RDNOISE in e, the instrument's default if absent).  Pixels DQ marks
 * unusable, and NaN ones, are NaN in both.
 *
 * Either way the Poisson part of that uncertainty comes from the pixel's
 * own, noisy, value (a ramp fit's ERR does the same), so a pixel that
 * fluctuates low would get a smaller error than one that fluctuates high,
 * and a negative noise peak of a difference would look more significant
 * than a positive one.  Where the pixel is empty sky its Poisson part is
 * therefore replaced by the one of the sky's expected rate (the smooth
 * background, rapid/background.h, 500-px windows; the rest of the
 * variance, the read noise, kept): a pixel is a source's, keeping its
 * own, where the mean of the 3 x 3 pixels around it or around a neighbour
 * lies more than 3 sigma of that mean above the background.
 */
#ifndef RAPID_SCIENCE_H
#define RAPID_SCIENCE_H

#include "rapid/background.h"
#include "rapid/error.h"
#include "rapid/fits.h"
#include "rapid/spikes.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_science {
    rapid_image rate;     /* DN/s, with the SCI header (BUNIT 'DN/s') */
    rapid_image unc;      /* DN/s, 1 sigma */
    double exptime, gain, rdnoise;
    int from_err;         /* 1: unc from the ERR extension */
    long nunusable;       /* pixels DQ flagged unusable (now NaN) */
    rapid_background bkg; /* the background of rate as read (default
                           * options); empty when no window had data */
    long nsky;            /* pixels whose uncertainty is the sky's */
    long nspike;          /* pixels rapid_science_mask_spikes made NaN */
    long npersist_grown;  /* usable pixels near PERSISTENCE ones (now NaN) */
} rapid_science;

#define RAPID_SCIENCE_INIT                                                     \
    {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, 0, 0, 0, 0, 0, RAPID_BACKGROUND_INIT, 0, 0, 0}

/* Half-width (px) of the square around every PERSISTENCE pixel that the
 * science image loses: beside the pixels an earlier exposure filled lie
 * those it nearly filled, whose persistence is below the flag's level
 * and reads as a star in the difference. */
#define RAPID_SCIENCE_PERSIST_GROW 3

/* Read the L2 file path (hdu: the SCI HDU, NULL or "SCI" for the first
 * image HDU named so, else as rapid_fits_read_image takes it).  Errors name
 * the file: a missing or non-positive EXPTIME, an ERR or DQ extension of
 * another size. */
int rapid_science_read(const char *path, const char *hdu, rapid_science *s,
                       rapid_err *err);
void rapid_science_release(rapid_science *s);

/* Unflagged single-pixel spikes made NaN in rate and unc (counted in
 * nspike): hot pixels and cosmic-ray charge that DQ does not mark
 * (rapid/spikes.h), judged against the background read with the image
 * (s->bkg; without it nothing is masked) and the sky's noise.  psf:
 * psf_n x psf_n, odd, centred on its middle pixel, the native pixels of
 * the image; RAPID_E_ARG if its middle is not a peak. */
int rapid_science_mask_spikes(rapid_science *s, const float *psf, int psf_n,
                              rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
