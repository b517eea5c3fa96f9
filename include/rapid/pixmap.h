/* rapid/pixmap.h - a fast map from one image's pixels to another's.
 *
 * Going through the sky for every pixel corner costs about a microsecond
 * (WCSLIB with SIP); a coadd of 25 detector images needs 4e8 of them.  The
 * map from input to output pixel coordinates is smooth, so it is computed
 * exactly on a grid of nodes every `step` input pixels and interpolated
 * with cubic convolution in between; with step 64 the interpolation error
 * on a Roman detector with 4th-order SIP is far below 1e-4 pixel (the tests
 * check it against the WCS directly).
 */
#ifndef RAPID_PIXMAP_H
#define RAPID_PIXMAP_H

#include "rapid/error.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_pixmap {
    double x0, y0;    /* input position of node (0, 0) */
    int step;         /* node spacing, input pixels */
    int gx, gy;       /* nodes per row, rows of nodes */
    double *ox, *oy;  /* output coordinates at the nodes, gx*gy each */
    int valid;        /* 0 if some node fell off the output projection */
} rapid_pixmap;

#define RAPID_PIXMAP_INIT {0, 0, 0, 0, 0, NULL, NULL, 0}

/* The map for input positions x in [xmin, xmax], y in [ymin, ymax] (0-based
 * pixel coordinates of the input image `in`) to pixel coordinates of `out`.
 * step <= 0 means 64.  RAPID_E_WCS if the region does not map (e.g. more
 * than 90 degrees from the output's tangent point). */
int rapid_pixmap_make(rapid_pixmap *m, rapid_wcs *in, rapid_wcs *out,
                      double xmin, double xmax, double ymin, double ymax,
                      int step, rapid_err *err);
void rapid_pixmap_release(rapid_pixmap *m);

/* One point. */
void rapid_pixmap_eval(const rapid_pixmap *m, double x, double y, double *ox,
                       double *oy);
/* n points along the row y, at x = x0 + k*dx: the per-row setup is done
 * once, which makes this several times cheaper than n single points. */
void rapid_pixmap_row(const rapid_pixmap *m, double y, double x0, double dx,
                      int n, double *ox, double *oy);

#ifdef __cplusplus
}
#endif
#endif
