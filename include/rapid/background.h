/* rapid/background.h - the smooth sky background of an image.
 *
 * The image is cut into windows of about box x box pixels (the same number
 * of pixels in each window: nx is split into round(nx / box) windows, and
 * likewise ny).  In each window the sky is the mean of the pixels that
 * survive iterative sigma clipping about the median (so that stars and
 * galaxies do not pull it up), and its noise their standard deviation,
 * corrected for the clip (the noise of a Gaussian cut at 3 sigma is
 * 1.35 % smaller than the noise's own).
 * Between window centres the background is interpolated bilinearly, and
 * beyond the outermost centres it is held at the edge value.  A window
 * with too few usable pixels (NaN is "no data") takes the mean of its
 * usable neighbours.
 *
 * Defaults: box 500 for a science image, 128 for a reference image (whose
 * sky varies on the scale of the inputs' edges); clip at 3 sigma, at most
 * 10 iterations; a window needs half its pixels.
 */
#ifndef RAPID_BACKGROUND_H
#define RAPID_BACKGROUND_H

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_background_opts {
    int box;             /* window side, pixels (500) */
    double clip_sigma;   /* rejection threshold, sigma (3) */
    int max_iter;        /* clipping passes at most (10) */
    double min_usable;   /* share of a window's pixels that must be
                          * usable for it to count (0.5) */
} rapid_background_opts;

void rapid_background_opts_init(rapid_background_opts *o);

typedef struct rapid_background {
    int nx, ny;          /* the image */
    int gx, gy;          /* windows along x and y */
    float *mean;         /* gx * gy clipped means, row-major (owned) */
    float *rms;          /* gx * gy clipped standard deviations (owned) */
    int nfilled;         /* windows filled from their neighbours */
    double median_rms;   /* median of the windows' rms */
} rapid_background;

#define RAPID_BACKGROUND_INIT {0, 0, 0, 0, NULL, NULL, 0, 0}

/* The background of img (nx x ny, NaN = no data; not changed).  Fails
 * with RAPID_E_ARG on bad options and RAPID_E_RANGE when no window has
 * enough usable pixels. */
int rapid_background_make(const float *img, int nx, int ny,
                          const rapid_background_opts *o,
                          rapid_background *b, rapid_err *err);

/* The background and its noise at pixel (x, y), 0-based (bilinear). */
double rapid_background_at(const rapid_background *b, double x, double y);
double rapid_background_rms_at(const rapid_background *b, double x,
                               double y);

/* The whole background map (nx * ny floats, the caller's), or subtracted
 * from img in place (NaN pixels stay NaN). */
void rapid_background_fill(const rapid_background *b, float *out);
void rapid_background_subtract(const rapid_background *b, float *img);

/* The clipped mean and standard deviation of v[0..n) (reordered and
 * overwritten), as each window's: iterative clipping at clip_sigma about
 * the median, at most max_iter passes, the deviation corrected for the
 * clip.  0, or RAPID_E_ARG (fewer than 3 values, bad options; both NaN). */
int rapid_clipped_mean(float *v, size_t n, double clip_sigma, int max_iter,
                       double *mean, double *sd);

/* dst = a copy of src (dst's earlier content released). */
int rapid_background_copy(rapid_background *dst, const rapid_background *src,
                          rapid_err *err);
void rapid_background_release(rapid_background *b);

#ifdef __cplusplus
}
#endif
#endif
