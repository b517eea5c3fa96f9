/* overlap.h - exact areas of a polygon over the cells of a pixel grid.
 *
 * Pixel (i, j) spans [i-1/2, i+1/2) x [j-1/2, j+1/2) (0-based centres at
 * integers, as everywhere in rapid).  Used by flux-conserving resampling:
 * an input pixel mapped onto the output grid is a small quadrilateral, and
 * its flux goes to each output pixel in proportion to the exact overlap.
 */
#ifndef RAPID_OVERLAP_H
#define RAPID_OVERLAP_H

#include "rapid/error.h"

/* Largest bounding box, in cells, that rapid_overlap_cells handles. */
#define RAPID_OVERLAP_MAXCELLS 64

/* Areas of the simple polygon (x[k], y[k]), k < n (n <= 8, either
 * orientation) over the cells of its bounding box: on return cells
 * (*i0 + c, *j0 + r) for r < *h, c < *w have area[r * *w + c], and *total
 * is the polygon's area.  0, or RAPID_E_RANGE if its bounding box exceeds
 * RAPID_OVERLAP_MAXCELLS cells or a vertex is not finite. */
int rapid_overlap_cells(const double *x, const double *y, int n, int *i0,
                        int *j0, int *w, int *h, float *area, double *total);

#endif
