/* extract_internal.h - the SEP helpers extract.c shares with the
 * candidate stage (candidates.c): the process-wide lock every call into SEP
 * is made under, detection with a pixel stack that grows, the Gaussian
 * detection kernel. */
#ifndef RAPID_EXTRACT_INTERNAL_H
#define RAPID_EXTRACT_INTERNAL_H

#include <sep.h> /* sep.h has no include guard: include it only here */

#include "rapid/extract.h"

/* Take and give back the lock around calls into SEP (also sets SEP's
 * process-wide limits once). */
void rapid_sep_lock(void);
void rapid_sep_unlock(void);

/* sep_extract of dim with SExtractor's convolution by kern (side x side,
 * NULL: none), o's minimum area and deblending; a pixel stack that grows
 * until the image fits.  Under the lock.  Returns SEP's status. */
int rapid_sep_detect(const sep_image *dim, double thresh, int thresh_type,
                     const float *kern, int side, const rapid_extract_opts *o,
                     sep_catalog **sc);

/* Gaussian detection kernel of this FWHM (px), side odd; caller frees. */
float *rapid_sep_gauss_kernel(double fwhm, int *side);

/* "source extraction: what: SEP's message[: detail]" (under the lock). */
int rapid_sep_fail(rapid_err *err, int status, const char *what);

#endif
