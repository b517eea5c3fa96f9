/* candidates_internal.h - the rows of the candidate stage as its files
 * share them: candidates.c (detection, measurement, PSF fits), vet.c
 * (metrics and cuts), candidates_table.c (the catalog). */
#ifndef RAPID_CANDIDATES_INTERNAL_H
#define RAPID_CANDIDATES_INTERNAL_H

#include "rapid/candidates.h"

#define CAND_NAPER 6 /* diameters 2 3 4 6 10 14 px */
#define CAND_AP3 1
#define CAND_AP6 3

/* One candidate, measured on s D (fluxes positive for a real source of
 * either sign; cand_table gives them their sign). */
typedef struct cand_row {
    int sign;
    double x, y, xbar, ybar;
    float flux_aper[CAND_NAPER], fluxerr_aper[CAND_NAPER];
    float flux_auto, fluxerr_auto, area_auto, a, b, theta, elongation, fwhm, peak, snr;
    int isoarea, flags;
    rapid_psfphot_result psf;
    /* vetting metrics */
    float edge_dist, snr_aper_3, aper_ratio_3_6, sumrat, dmag, satrad, snr_psf;
    int nneg, nbad, fail_bits;
} cand_row;

typedef struct cand_rows {
    cand_row *r;
    long n, cap;
} cand_rows;

int cand_rows_grow(cand_rows *rows, long n);
int cand_psf_fit(const rapid_cand_input *in, const rapid_cand_opts *o,
                 const float *fit, const float *noise, cand_rows *rows,
                 long first, rapid_err *err);
/* Metrics of rows[first..n), each on s D of its sign (fit: D, NaN where
 * unusable; mask). */
void cand_metrics(const rapid_cand_input *in, const rapid_cand_opts *o,
                  const float *fit, const unsigned char *mask, cand_rows *rows,
                  long first);
/* dmag and the cuts (fail_bits) of rows[first..n); apfrac3 the PSF's
 * fraction of flux in a 3-px aperture, psf_r36 its 3-px over its 6-px
 * aperture fraction (what aper_ratio_3_6 is for a point source). */
void cand_vet(const rapid_cand_opts *o, double apfrac3, double psf_r36, double psf_fwhm,
              cand_rows *rows, long first);
/* The factors the errors are multiplied by (candidates_noise.c): the
 * robust sd of flux / error of random apertures of each diameter and of
 * PSF fits on empty sky, and how many were placed (factor 1 below 100). */
typedef struct cand_noise {
    double aper[CAND_NAPER], psf;
    long naper[CAND_NAPER], npsf;
    /* the map's median variance of each measurement on empty sky: the
     * part the factor applies to (var + (k^2 - 1) vsky) */
    double vsky[CAND_NAPER], vsky_psf;
} cand_noise;

/* Measured on D (fit, NaN where unusable) with its uncertainty (noise),
 * away from mask and src (pixels of significant candidates); diam the
 * apertures' diameters.  All factors 1 when o->noise_cal is 0. */
void cand_noise_measure(const rapid_cand_input *in, const rapid_cand_opts *o,
                        const float *fit, const float *noise,
                        const unsigned char *mask, const unsigned char *src,
                        const double *diam, cand_noise *nc);
/* The sky's part of the errors of rows[first..n) multiplied by the factors
 * (the Kron flux's by that of its equivalent diameter, snr recomputed),
 * then flux_floor x
 * |flux_psf| added in quadrature to fluxerr_psf. */
void cand_noise_apply(const cand_noise *nc, const double *diam, double flux_floor,
                      cand_rows *rows, long first);
/* Clusters of saturated pixels (in->sat): centres and mask radii. */
typedef struct cand_sat {
    double *x, *y, *r;
    long n;
} cand_sat;

/* The clusters of in->sat (none when NULL); RAPID_E_NOMEM. */
int cand_sat_find(const rapid_cand_input *in, double rmin, double scale,
                  cand_sat *s);
void cand_sat_free(cand_sat *s);
/* satrad of rows[first..n): the smallest distance / radius (+inf: none). */
void cand_sat_metric(const cand_sat *s, cand_rows *rows, long first);
int cand_table(const rapid_cand_input *in, const rapid_cand_opts *o,
               const cand_rows *rows, double rms, double psf_fwhm,
               double apfrac3, double psf_r36, const cand_noise *nc, long nsat,
               rapid_table *cat, rapid_err *err);

#endif
