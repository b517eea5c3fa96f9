/* extract_internal.h - the SEP helpers extract.c shares with the
 * candidate stage (candidates.c): detection with a pixel stack that grows,
 * detection in strips, the Gaussian detection kernel, and a lock for
 * callers that want their SEP work serialised.
 *
 * SEP (1.2) keeps its working state per thread; what it keeps per process
 * is its pixel-stack size and sub-object limit, which rapid sets once.
 * So detections, backgrounds and apertures may run on several threads at
 * once on independent inputs; only a detection whose objects overflow
 * the pixel stack takes SEP for itself (rapid_sep_detect) while it
 * retries with a larger stack. */
#ifndef RAPID_EXTRACT_INTERNAL_H
#define RAPID_EXTRACT_INTERNAL_H

#include <stdint.h>

#include <sep.h> /* sep.h has no include guard: include it only here */

#include "rapid/extract.h"

/* sep_extract of dim with SExtractor's convolution by kern (side x side,
 * NULL: none), o's minimum area and deblending; should the pixel stack
 * overflow, again alone with a larger stack until the image fits.  Takes
 * no lock of the caller's (may run on several threads).  Returns SEP's
 * status. */
int rapid_sep_detect(const sep_image *dim, double thresh, int thresh_type,
                     const float *kern, int side, const rapid_extract_opts *o,
                     sep_catalog **sc);

/* The detected objects: SEP's catalog columns rapid_extract reads, in the
 * image's pixels (0-based). */
typedef struct rapid_sep_objs {
    long n;
    int nstrips;               /* detected in so many strips (1: one pass) */
    double *x, *y;             /* isophotal barycentre */
    float *flux, *a, *b, *theta, *peak; /* theta in radians */
    int32_t *npix;
    short *flag;
} rapid_sep_objs;

void rapid_sep_objs_release(rapid_sep_objs *ob);

/* rapid_sep_detect in strips of about o->strip_rows rows on o->nthreads
 * threads (extract_strips.c says what may differ from one pass), or in
 * one pass when the image is not taller than two strips, strip_rows is 0
 * or an object reaches across the strips' overlap.  0 or a rapid status
 * with err filled. */
int rapid_sep_detect_strips(const sep_image *dim, double thresh, int thresh_type,
                            const float *kern, int side,
                            const rapid_extract_opts *o, rapid_sep_objs *ob,
                            rapid_err *err);

/* Gaussian detection kernel of this FWHM (px), side odd; caller frees. */
float *rapid_sep_gauss_kernel(double fwhm, int *side);

/* "source extraction: what: SEP's message[: detail]" (SEP's detail is
 * per thread: call it on the thread that failed). */
int rapid_sep_fail(rapid_err *err, int status, const char *what);

#endif
