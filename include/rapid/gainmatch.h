/* rapid/gainmatch.h - the photometric scale and the residual offset
 * between a science image and a reference image on the same pixels.
 *
 * From the two source catalogs (rapid_extract's columns: XWIN, YWIN,
 * FLUX_APER_<d>, FLUXERR_APER_<d>, ELONGATION, PEAK, FLAGS), the stars
 * that can be trusted in both: star-like (elongation at most max_elong),
 * unflagged, unsaturated (PEAK below max_peak in each image), bright (S/N
 * at least min_snr in each) and isolated (no other source of the same
 * catalog within `isolation` pixels), paired within match_radius.  The
 * scale is the median of their flux ratios, science / reference, after
 * clipping at clip_sigma of each ratio's own error (a variable star or a
 * residual cosmic ray must not move it; a faint star is not dropped for
 * being noisier); the offsets are science - reference positions, their
 * median and rms about it over the same stars.  With fewer than
 * min_matches stars the scale comes from the zero points the caller gives,
 * and the offsets are those of whatever stars there are (NaN if none).
 */
#ifndef RAPID_GAINMATCH_H
#define RAPID_GAINMATCH_H

#include "rapid/error.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_gainmatch_opts {
    double aperture;      /* diameter of the aperture flux used, px (6) */
    double match_radius;  /* px (1.0) */
    double isolation;     /* px (8) */
    double max_elong;     /* (1.3) */
    double min_snr;       /* (20) */
    double max_peak_sci;  /* saturation, science data units; 0: no limit (0) */
    double max_peak_ref;  /* the same for the reference (0) */
    double clip_sigma;    /* (3) */
    int min_matches;      /* (20) */
} rapid_gainmatch_opts;

void rapid_gainmatch_opts_init(rapid_gainmatch_opts *o);

typedef struct rapid_gainmatch {
    double scale;         /* reference x scale matches the science */
    double scale_err;     /* its 1-sigma uncertainty (NaN from zero points) */
    int nstars;           /* stars paired and kept */
    double dx_median, dy_median; /* science - reference, px */
    double dx_rms, dy_rms;       /* about the median, px */
    const char *from;     /* "stars" or "zero points" */
} rapid_gainmatch;

/* zp_scale: the scale the zero points give (e.g. 10^(0.4 (ZPsci - ZPref))
 * for images in counts with those zero points), used when too few stars
 * pair up; it must be finite and positive.  Fails with RAPID_E_TABLE when a
 * catalog lacks a column (named in the message). */
int rapid_gainmatch_catalogs(const rapid_table *sci, const rapid_table *ref,
                             const rapid_gainmatch_opts *o, double zp_scale,
                             rapid_gainmatch *out, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
