/* rapid/extract.h - source detection and measurement (SEP).
 *
 * A thin layer over SEP (SExtractor's algorithms as a library): background
 * mesh, detection above n sigma with deblending, circular apertures,
 * windowed positions, shapes, a FWHM estimate and sky positions.  Used for
 * the reference-image catalog and for detection on difference images.
 * Pixel coordinates are 0-based.
 *
 * Threads: SEP keeps its working state per thread and two settings per
 * process (its pixel-stack size and sub-object limit), which rapid sets
 * once.  Extractions from several threads are safe and run side by side;
 * a detection that overflows the pixel stack retries alone with a larger
 * one.  Code outside rapid that calls SEP in the same process must not
 * change those settings while rapid extracts.
 *
 * Strips: an image taller than two strips (strip_rows, at least 384) is
 * detected in strips of about that many rows, neighbours reading 384 rows in common and
 * each keeping the objects whose barycentre lies on its side of a row
 * chosen there (where no object its end changed reaches), so
 * that SEP's cleaning (quadratic in the number of detections) compares
 * fewer pairs, and the strips run on nthreads threads.  The catalog is the
 * one pass's, in another row order (strip by strip), but for the members
 * of deblended blends below the first strip: SEP shares a blend's faint
 * pixels among its members at random from a stream it restarts at each
 * call, so their isophotal FLUX, A, B, THETA, NPIX (and ELONGATION,
 * FLUX_RADIUS, FWHM, XWIN, YWIN, which follow from them) are another draw
 * of that share-out, and a detection near them may be cleaned away or
 * kept where one pass kept or cleaned it (their X, Y and apertures are
 * the same).  Neighbours with no row free of what their ends changed are
 * detected as one strip.
 */
#ifndef RAPID_EXTRACT_H
#define RAPID_EXTRACT_H

#include <signal.h> /* sig_atomic_t */

#include "rapid/error.h"
#include "rapid/fits.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_EXTRACT_MAXAPER 8
#define RAPID_EXTRACT_MAXTHREADS 16
#define RAPID_EXTRACT_REF_STRIP_ROWS 1536

typedef struct rapid_extract_opts {
    double thresh;          /* detection threshold, sigma (2.5) */
    int minarea;            /* minimum connected pixels (5) */
    int deblend_nthresh;    /* deblending levels (32) */
    double deblend_cont;    /* minimum deblending contrast (0.005) */
    double filter_fwhm;     /* Gaussian detection filter FWHM, px; 0: none (2.0) */
    int bkg_mesh;           /* background mesh, px; 0: data already has no
                             * background (64) */
    int bkg_filter;         /* median filter of the mesh, meshes (3) */
    int naper;              /* apertures (6) */
    double aper_diam[RAPID_EXTRACT_MAXAPER]; /* diameters, px (2 3 4 6 10 14) */
    double gain;            /* data units -> counts for source noise; 0 none */
    volatile sig_atomic_t *stop; /* non-NULL: set (by a signal handler) to
                             * stop: looked at before the detection and
                             * every 512 sources measured; rapid_extract
                             * then returns RAPID_E_INTERRUPTED (NULL) */
    int strip_rows;         /* detection in strips of about this many rows;
                             * 0: in one pass (0; the reference image's
                             * catalog: RAPID_EXTRACT_REF_STRIP_ROWS) */
    int nthreads;           /* threads for the strips and the measurements,
                             * at most RAPID_EXTRACT_MAXTHREADS (1) */
} rapid_extract_opts;

void rapid_extract_opts_init(rapid_extract_opts *o);

typedef struct rapid_extract_stats {
    double bkg, bkg_rms;    /* global background level and rms */
    long nsources;
    long nstars;            /* isolated, unflagged, round, S/N > 20 */
    double fwhm_med, fwhm_min, fwhm_max; /* over those stars, px (NaN if none) */
    int nstrips;            /* strips the detection was made in (1: one pass) */
} rapid_extract_stats;

/* Detect and measure sources in data (nx*ny, NaN = no data).  noise: the
 * per-pixel 1-sigma uncertainty in data units, or NULL to use the
 * background rms.  detect: an image to detect on instead of data (e.g. a
 * matched-filter image already in S/N units, with filter_fwhm 0, bkg_mesh 0
 * and noise NULL meaning a threshold in its own units), or NULL.  wcs (may
 * be NULL) adds RA/Dec.  cat receives one row per source:
 *   NUMBER, X, Y, XWIN, YWIN, [RA, DEC], FLUX, FLUX_APER_<d>, FLUXERR_APER_<d>
 *   (d = diameter in px, e.g. FLUX_APER_3), A, B, THETA (deg), ELONGATION,
 *   FLUX_RADIUS (half-light, px), FWHM (px), NPIX, PEAK, FLAGS.
 * st (may be NULL) receives global statistics. */
int rapid_extract(const float *data, const float *noise, const float *detect,
                  int nx, int ny, const rapid_extract_opts *o, rapid_wcs *wcs,
                  rapid_table *cat, rapid_extract_stats *st, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
