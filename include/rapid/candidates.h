/* rapid/candidates.h - candidates from a difference image: detection,
 * measurement, PSF-fit photometry, vetting metrics and cuts.
 *
 * Candidates are detected on a matched-filter image (ZOGY's S_corr, the
 * kernel fit's cross-convolved difference) or on the difference itself,
 * and measured on the difference with its per-pixel uncertainty.  The
 * negative candidates are those of the negated images, measured on the
 * negated difference (so every metric and cut treats both signs alike),
 * their fluxes given with their true, negative sign; they are always found,
 * since the PSF fits take every candidate whose box overlaps another's
 * together whatever its sign, and listed with `negative`.  The catalog's
 * columns are listed in docs/candidates.md; pixel coordinates are 0-based.
 *
 * Thread safety: detection and measurement run under one lock of rapid's
 * (candidates of several images take turns; rapid/extract.h); the PSF
 * fits run on psf.nthreads threads.
 */
#ifndef RAPID_CANDIDATES_H
#define RAPID_CANDIDATES_H

#include <stddef.h>

#include "rapid/error.h"
#include "rapid/fits.h"
#include "rapid/psfphot.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The vetting cuts; a candidate passes when every metric is within them
 * (a metric that is NaN fails its cut). */
typedef struct rapid_cuts {
    double edge_min;      /* edge_dist > edge_min, px (5) */
    double snr_min;       /* snr_aper_3 >= snr_min (5) */
    double elong_max;     /* elongation <= elong_max (2) */
    double ratio_min;     /* ratio_min <= aper_ratio_3_6 ... (0.35) */
    double ratio_max;     /* ... <= ratio_max (1.2) */
    double nneg_max;      /* nneg <= nneg_max (18) */
    double nbad_max;      /* nbad <= nbad_max (12) */
    double sumrat_min;    /* sumrat >= sumrat_min (0.25) */
    double chi2_min;      /* chi2_min < chi2_psf ... (0) */
    double chi2_max;      /* ... < chi2_max (10) */
    double dmag_max;      /* dmag < dmag_max, mag (0.3) */
    double satrad_min;    /* satrad >= satrad_min (1; 0: no cut) */
    double snr_psf_min;   /* snr_psf >= snr_psf_min (5): the PSF fit's S/N */
    double snr_auto_min;  /* snr >= snr_auto_min (3): the Kron flux's S/N */
    double sharp_min;     /* fwhm >= sharp_min x the PSF's FWHM (0.7; 0: no
                           * cut; a fwhm that could not be measured passes):
                           * a hot pixel is sharper than any point source */
    double broad_min;     /* aper_ratio_3_6 >= broad_min x the PSF's own
                           * 3-px / 6-px aperture flux ratio (0.7; 0: no
                           * cut): a subtraction residual broader than the
                           * PSF has more light between 3 and 6 px than a
                           * point source of any S/N */
    double sat_rmin;      /* a saturated star's mask radius: sat_rmin + */
    double sat_scale;     /* sat_scale x sqrt(its saturated pixels), px
                           * (30, 2: measured on simulated H158 pairs, where
                           * a star's rings pass S/N 5 out to 30-40 px) */
} rapid_cuts;

void rapid_cuts_init(rapid_cuts *c);
/* Read cuts from an INI file: section [cuts], keys named as the fields
 * above (edge_min, snr_min, ...), each a finite number; keys not given
 * keep their values in c.  Unknown sections or keys, values that are not
 * numbers, and unreadable files are errors naming the file and line. */
int rapid_cuts_read(rapid_cuts *c, const char *path, rapid_err *err);
/* One key of section [cuts] (a field name above) from its text value, for
 * a reader of another INI file that holds a [cuts] section (the science
 * job's configuration): 0, or -1 with what is wrong in problem (sz bytes):
 * an unknown key, a value that is not a finite number. */
int rapid_cuts_set(rapid_cuts *c, const char *key, const char *value,
                   char *problem, size_t sz);
/* RAPID_E_ARG naming path if a minimum is above its maximum. */
int rapid_cuts_check(const rapid_cuts *c, const char *path, rapid_err *err);

/* fail_bits: one bit per cut a candidate fails. */
enum {
    RAPID_FAIL_EDGE = 1,     /* edge_dist <= edge_min */
    RAPID_FAIL_SNR = 2,      /* snr_aper_3 < snr_min */
    RAPID_FAIL_ELONG = 4,    /* elongation > elong_max */
    RAPID_FAIL_RATIO = 8,    /* aper_ratio_3_6 outside [ratio_min, ratio_max] */
    RAPID_FAIL_NNEG = 16,    /* nneg > nneg_max */
    RAPID_FAIL_NBAD = 32,    /* nbad > nbad_max */
    RAPID_FAIL_SUMRAT = 64,  /* sumrat < sumrat_min */
    RAPID_FAIL_CHI2 = 128,   /* chi2_psf outside (chi2_min, chi2_max) */
    RAPID_FAIL_DMAG = 256,   /* dmag >= dmag_max */
    RAPID_FAIL_SAT = 512,    /* satrad < satrad_min: within the mask of a
                              * saturated star (rings, wings) */
    RAPID_FAIL_SNR_PSF = 1024,  /* snr_psf < snr_psf_min */
    RAPID_FAIL_SNR_AUTO = 2048, /* snr < snr_auto_min */
    RAPID_FAIL_SHARP = 4096,    /* fwhm < sharp_min x the PSF's FWHM */
    RAPID_FAIL_BROAD = 8192     /* aper_ratio_3_6 < broad_min x the PSF's
                                 * own ratio of its 3-px to its 6-px
                                 * aperture flux (header PSFR36) */
};

/* Candidate flags (column `flags`): SEP's extraction and aperture flags in
 * the low byte (1 blended, 2 truncated at the image edge, 4 deblending
 * overflow, 8 singular moments, 16 aperture truncated, 32 aperture has
 * pixels without data, 64 only such pixels, 128 no positive flux for the
 * Kron radius), then: */
enum {
    RAPID_CAND_PSF_NOCONV = 0x100,  /* the PSF fit did not converge */
    RAPID_CAND_PSF_GROUP = 0x200,   /* fitted together with neighbours */
    RAPID_CAND_PSF_CROWDED = 0x400, /* too many neighbours: fitted alone */
    RAPID_CAND_PSF_NODATA = 0x800,  /* too few pixels to fit */
    RAPID_CAND_WIN_FAILED = 0x1000, /* windowed position failed: x, y are
                                     * the isophotal barycentre */
    RAPID_CAND_PSF_FIXED = 0x2000   /* the fitted position ran more than
                                     * 2 px away: flux fitted at (x, y) */
};

typedef struct rapid_cand_opts {
    double thresh;        /* detection threshold, sigma (2.5): of the
                           * uncertainty map on the difference, of the
                           * detection image's robust rms on a matched-filter
                           * image */
    int minarea;          /* minimum connected pixels (5) */
    int deblend_nthresh;  /* (32) */
    double deblend_cont;  /* (0.0001: lower than SExtractor's 0.005, for
                           * point sources on plateaus of S_corr) */
    double filter_fwhm;   /* Gaussian filter FWHM (px) when detecting on the
                           * difference itself; 0 none (2) */
    int negative;         /* 1: list the negative candidates too (0) */
    int noise_cal;        /* 1: multiply the aperture, Kron and PSF-fit errors
                           * by the noise measured on the image itself with
                           * random apertures and PSF fits on empty sky
                           * (header ERRCOR*; docs/candidates.md); 0: the
                           * uncertainty map summed in quadrature as it is (1) */
    int bkg_mesh;         /* > 0: subtract a background interpolated
                           * between meshes of this size (px; SExtractor's
                           * estimator, median-filtered over 3x3 meshes)
                           * first, for images that still have one; 0: the
                           * image is a difference with none (0) */
    rapid_psfphot_opts psf;
    rapid_cuts cuts;
} rapid_cand_opts;

void rapid_cand_opts_init(rapid_cand_opts *o);

/* What a difference gives.  diff: nx*ny (NaN = no data); unc: its 1-sigma
 * uncertainty (NULL: a constant, the robust rms of diff, and the catalog
 * header says NOISESRC = 'BKGRMS'); detect: the matched-filter image, or
 * NULL to detect on diff; bad: nonzero where a pixel is unusable (besides
 * NaN), or NULL; psf: the difference's PSF (required); wcs: the science
 * WCS for ra, dec (NULL: those columns are NaN); bunit: the unit of
 * diff (e.g. "DN/s", the fluxes' TUNITn; NULL: none); sat: nonzero where
 * the science image or the reference (on the science pixels) is
 * saturated, or NULL: every 8-connected cluster of them is a saturated
 * star, masked within sat_rmin + sat_scale x sqrt(its pixels) of its
 * centre (column
 * satrad, cut satrad_min). */
typedef struct rapid_cand_input {
    const float *diff, *unc, *detect;
    const unsigned char *bad, *sat;
    int nx, ny;
    const char *bunit;
    const rapid_psfphot_psf *psf;
    rapid_wcs *wcs;
} rapid_cand_input;

/* The candidate catalog of a difference image: one row per candidate with
 * the columns of docs/candidates.md, header cards NOISESRC, NOISERMS,
 * DETECTON, THRESH, MINAREA, BKGMESH, PSFFWHM, APCOR3, PSFHALF, NPOS, NNEG,
 * the error calibration (ERRCAL, ERRCOR*, FLUXFLOR), the saturated stars
 * (SATMAP, NSATSTAR) and the cuts applied (CUT_*).  The caller releases cat (also on failure,
 * when it is empty).  RAPID_E_ARG for a difference without data or spread,
 * a detection image without spread, a PSF without a measurable width;
 * RAPID_E_NOMEM. */
int rapid_candidates(const rapid_cand_input *in, const rapid_cand_opts *o,
                     rapid_table *cat, rapid_err *err);

/* The saturated pixels of an L2 file (its DQ extension's SATURATED bit)
 * as rapid_cand_input.sat wants them: *sat (nx*ny, the caller frees) or
 * NULL when the file has no DQ extension.  RAPID_E_ARG for a DQ of
 * another size; errors name the file. */
int rapid_cand_saturated_l2(const char *path, int nx, int ny,
                            unsigned char **sat, rapid_err *err);

/* rapid_candidates as `rapid extract` and the science job run it: with
 * in->psf NULL, a Gaussian PSF of the median FWHM of the bright unflagged
 * candidates a first pass with a 2-px one finds (2 px with fewer than 3
 * of them); the catalog's header card PSFSRC says which ('FILE', 'GAUSS'). */
int rapid_candidates_extract(const rapid_cand_input *in,
                             const rapid_cand_opts *o, rapid_table *cat,
                             rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
