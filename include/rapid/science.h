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
 */
#ifndef RAPID_SCIENCE_H
#define RAPID_SCIENCE_H

#include "rapid/error.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_science {
    rapid_image rate;     /* DN/s, with the SCI header (BUNIT 'DN/s') */
    rapid_image unc;      /* DN/s, 1 sigma */
    double exptime, gain, rdnoise;
    int from_err;         /* 1: unc from the ERR extension */
    long nunusable;       /* pixels DQ flagged unusable (now NaN) */
    long npersist_grown;  /* usable pixels near PERSISTENCE ones (now NaN) */
} rapid_science;

#define RAPID_SCIENCE_INIT {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, 0, 0, 0, 0, 0, 0}

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

#ifdef __cplusplus
}
#endif
#endif
