/* rapid/diff.h - a science image and its reference on the same pixels,
 * matched, and subtracted.
 *
 * The steps of image subtraction before the methods themselves:
 *   1. the science image in DN/s with its uncertainty (rapid/science.h);
 *   2. the reference, its coverage and uncertainty resampled onto the
 *      science image's pixels with exact overlap areas (rapid/regrid.h);
 *   3. the backgrounds of both (rapid/background.h: windows of 500 px on
 *      the science image, 128 on the resampled reference);
 *   4. the flux scale and residual offset from stars paired between their
 *      catalogs (rapid/extract.h, rapid/gainmatch.h), or from the zero
 *      points with fewer than 20 stars;
 *   5. a registration error corrected: when the stars' median offset
 *      (science - reference) is significant - at least 3 stars, at least
 *      0.05 px, and in x or y more than 3 times the median's own error
 *      (1.2533 rms / sqrt(n)) - steps 2-4 are done again onto the science
 *      pixels moved by that offset (pixel x of the new grid sees the sky
 *      the science WCS puts at x - dx), so that the reference's stars land
 *      on the science image's.  The stars are paired again and what
 *      offset remains is added to the shift, up to 4 resamplings in all,
 *      until less than 0.005 px remains; windowed centroids of
 *      undersampled stars see only part of an offset between differently
 *      resampled images (about 80 % of 0.3 px), so the remainder is
 *      divided by the share seen, measured from the first two
 *      resamplings.  The offsets reported are those that remain after the
 *      last; the shift applied is recorded;
 *   6. the differential background: the clipped means of two images of
 *      different depth hold different amounts of faint-source light, so
 *      the clipped means of the naive difference, in the reference
 *      background's windows and away from every source either catalog
 *      holds, are taken off the reference background (bkg_ref holds the
 *      result).
 * Then the naive difference: D = (S - B_s) - scale (R - B_r), with
 * sigma_D^2 = sigma_S^2 + scale^2 sigma_R^2, in science DN/s; NaN where
 * the reference's coverage is below 0.5 or either image has no data.
 */
#ifndef RAPID_DIFF_H
#define RAPID_DIFF_H

#include "rapid/background.h"
#include "rapid/error.h"
#include "rapid/fft.h"
#include "rapid/fits.h"
#include "rapid/gainmatch.h"
#include "rapid/science.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The reference as given: an image in DN/s (any zero point: zp_scale
 * brings it to the science image's), its WCS (TAN or TAN-SIP), and
 * optionally its coverage (input images per pixel) and 1-sigma
 * uncertainty (DN/s), the same size; NULL coverage counts 1 everywhere,
 * NULL uncertainty takes the reference's background noise. */
typedef struct rapid_diff_ref {
    const float *image, *cov, *unc;
    int nx, ny;
    rapid_wcs *wcs;
    double zp_scale;      /* science / reference flux for equal magnitudes */
} rapid_diff_ref;

typedef struct rapid_diff_pair {
    int nx, ny;                 /* the science image's */
    rapid_image ref, cov, unc;  /* the reference on the science pixels:
                                 * DN/s (reference units), coverage, 1 sigma */
    rapid_background bkg_sci, bkg_ref;
    rapid_gainmatch match;      /* after the registration correction */
    double shift_x, shift_y;    /* the registration correction applied, px
                                 * (science - reference; 0, 0: none) */
} rapid_diff_pair;

/* Steps 2-6 for a science image already read (step 1) and its WCS. */
int rapid_diff_prepare(const rapid_science *sci, rapid_wcs *sci_wcs,
                       const rapid_diff_ref *ref, rapid_diff_pair *p,
                       rapid_err *err);

/* The same with flags: RAPID_DIFF_NO_SHIFT leaves out step 5 (the
 * reference stays on the science WCS's pixels, whatever the offset). */
#define RAPID_DIFF_NO_SHIFT 1u
int rapid_diff_prepare_flags(const rapid_science *sci, rapid_wcs *sci_wcs,
                             const rapid_diff_ref *ref, unsigned flags,
                             rapid_diff_pair *p, rapid_err *err);
void rapid_diff_pair_release(rapid_diff_pair *p);

/* The naive difference and its uncertainty (nx * ny floats each, the
 * caller's). */
void rapid_diff_naive(const rapid_science *sci, const rapid_diff_pair *p,
                      float *d, float *unc);


/* ---- ZOGY (Zackay, Ofek & Gal-Yam 2016) ----
 *
 * With N, R the science and the matched reference (backgrounds removed,
 * in science DN/s), P_n, P_r their PSFs on the science pixels (unit sum),
 * sigma_n^2 T_n(k), sigma_r^2 T_r(k) the power spectra of their noise
 * (sigma^2 the per-pixel variance; T = 1 for white noise, see below) and
 * hats for Fourier transforms:
 *   Delta = sqrt(sigma_n^2 T_n |P_r^|^2 + sigma_r^2 T_r |P_n^|^2),
 *   D^ = (P_r^ N^ - P_n^ R^) / Delta,  F_D = 1 / Delta(0),
 *   P_D^ = P_r^ P_n^ / (F_D Delta),  S^ = F_D D^ conj(P_D^),
 *   S_corr = S / sqrt(V_N (x) k_n^2 + V_R (x) k_r^2 + V_ast),
 *   k_n^ = conj(P_n^) |P_r^|^2 sqrt(T_n) / Delta^2,
 *   k_r^ = conj(P_r^) |P_n^|^2 sqrt(T_r) / Delta^2,
 *   V_ast = sx^2 (dS_N/dx)^2 + sy^2 (dS_N/dy)^2 + the same for S_R
 *           (S_N, S_R the two terms of S, S = S_N - S_R),
 * with V_N, V_R the per-pixel variances (source noise included) and sx,
 * sy the error of the registration solution.  D is given divided by F_D,
 * in science DN/s: a point source of flux f in N measures f on D with P_D
 * (unit sum); its uncertainty is
 *   sigma_D = sqrt(V_N (x) k_Dn^2 + V_R (x) k_Dr^2) / F_D,
 *   k_Dn^ = P_r^ sqrt(T_n) / Delta,  k_Dr^ = P_n^ sqrt(T_r) / Delta.
 * With white noise (T = 1) these are the paper's equations.  A reference
 * resampled onto the science pixels is not white: each pixel averages
 * parts of several, which lowers its variance and correlates it with its
 * neighbours (0.25-0.5 each way, more where fewer inputs made it).  A
 * spectrum is modelled from the correlations r0..r3 of neighbouring
 * pixels at lags (1,0), (0,1), (1,1), (1,-1):
 *   T(k) = 1 + 2 (r0 cos 2pi kx + r1 cos 2pi ky + r2 cos 2pi (kx + ky)
 *                 + r3 cos 2pi (kx - ky)),  held above 0.01.
 * Asked to (estimate_corr), the code measures the reference's on the
 * difference N - R, where static sources cancel (the science image's
 * noise taken as white, T_n = 1), away from its outliers (beyond 4 sigma,
 * and 2 px around them): over the whole image for Delta, and in windows of
 * ~64 px for the variances, where the reference's kernels k_r, k_Dr act on
 * V_R times sum |k^|^2 T_window / sum |k^|^2 (interpolated between window
 * centres) instead of carrying sqrt(T_r).  Background noises not given
 * are the square roots of the median variance (V_N, V_R) over the pixels
 * with data.
 * The images are transformed whole, padded against wrap-around by the
 * larger PSF's width to a size without prime factors above 7; the
 * gradients in V_ast are central differences on that periodic grid; every
 * kernel is 0 at frequencies where Delta^2 <= 1e-12 (sigma_n^2 +
 * sigma_r^2); no-data pixels (NaN) of one image are filled with the other
 * image's value (so that sources there cancel), of both with zero, and
 * are NaN in every output.
 */
typedef struct rapid_zogy_opts {
    int nthreads;            /* FFT threads (1) */
    rapid_fft_cache *fft;    /* plans to use; NULL: a cache of
                              * nthreads, ESTIMATE rigor, made and freed
                              * by the call */
} rapid_zogy_opts;

void rapid_zogy_opts_init(rapid_zogy_opts *o);

/* Prepared inputs, nx x ny each (the caller's, not changed). */
typedef struct rapid_zogy_in {
    int nx, ny;
    const float *n, *r;      /* science and matched reference, DN/s */
    const float *vn, *vr;    /* their variances, (DN/s)^2 */
    const float *pn, *pr;    /* PSFs, odd npn x npn and npr x npr, centred
                              * on the middle pixel (normalised here) */
    int npn, npr;
    double sigma_n, sigma_r; /* background noise, DN/s; <= 0: from the
                              * variance maps (median over the pixels with
                              * data) */
    double sx, sy;           /* registration error, px (0: none) */
    double corr_n[4], corr_r[4]; /* noise correlations r0..r3 (0: white) */
    int estimate_corr;       /* 1: measure corr_n, corr_r from the images
                              * (the values given are ignored) */
} rapid_zogy_in;

typedef struct rapid_zogy_out {
    float *d, *unc, *scorr;  /* nx * ny each (allocated; free()) */
    float *pd;               /* P_D, npd x npd, unit sum (allocated) */
    int npd;                 /* max(npn, npr) */
    double sigma_n, sigma_r; /* as used */
    double corr_n[4], corr_r[4]; /* as used */
    double fd;               /* F_D */
    int padx, pady;          /* the transforms' size */
} rapid_zogy_out;

#define RAPID_ZOGY_OUT_INIT {NULL, NULL, NULL, NULL, 0, 0, 0, {0}, {0}, 0, 0, 0}

int rapid_zogy(const rapid_zogy_in *in, const rapid_zogy_opts *o,
               rapid_zogy_out *out, rapid_err *err);
void rapid_zogy_out_release(rapid_zogy_out *out);

/* ZOGY on a prepared pair: N = science - its background, R = scale
 * (reference - its background), V_N = the science uncertainty squared,
 * V_R = scale^2 the reference's, P_r = ref_psf as resampling onto the
 * science pixels blurs it (rapid_psf_resample_blur), sx, sy = the stars' offset rms / sqrt(number
 * of stars) (0 without stars), the noises and their correlations measured
 * from the images; NaN where the reference's coverage is below 0.5.  PSFs
 * odd-sized, centred. */
int rapid_diff_zogy(const rapid_science *sci, const rapid_diff_pair *p,
                    const float *sci_psf, int nsp, const float *ref_psf,
                    int nrp, const rapid_zogy_opts *o, rapid_zogy_out *out,
                    rapid_err *err);

/* The inputs rapid_diff_zogy gives rapid_zogy, built from a prepared pair
 * and kept (to look at, write out, or check another implementation
 * against): N, R, V_N, V_R and P_r as rapid_diff_zogy above describes
 * them, in arrays of the struct's own; in points at them and at sci_psf
 * (the caller's: it must outlive any use of in).  in.sigma_n = in.sigma_r
 * = 0 and in.estimate_corr = 1 (rapid_zogy measures the noises and their
 * correlations), in.sx, in.sy from the stars' offsets.
 * rapid_zogy(&zi->in, ...) gives what rapid_diff_zogy gives, bit for bit.
 * On failure zi holds nothing. */
typedef struct rapid_zogy_inputs {
    rapid_zogy_in in;
    float *n, *r, *vn, *vr;  /* nx * ny each; NaN where no data */
    float *pr;               /* npr x npr: the reference PSF as the
                              * resampling blurs it */
} rapid_zogy_inputs;

int rapid_diff_zogy_inputs(const rapid_science *sci, const rapid_diff_pair *p,
                           const float *sci_psf, int nsp,
                           const float *ref_psf, int nrp,
                           rapid_zogy_inputs *zi, rapid_err *err);
void rapid_zogy_inputs_release(rapid_zogy_inputs *zi);

#ifdef __cplusplus
}
#endif
#endif
