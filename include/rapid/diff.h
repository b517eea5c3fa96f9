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
 *      result); then the clipped mean of what is left on the pixels of
 *      each coverage (rounded to whole inputs, 1-64, at least 2000
 *      pixels) is taken off the resampled reference (ref) there: windows
 *      that straddle a coverage edge mix pixels of different noise and,
 *      in a coadd, of different skies.
 * Then the naive difference: D = (S - B_s) - scale (R - B_r), with
 * sigma_D^2 = sigma_S^2 + scale^2 sigma_R^2, in science DN/s; NaN where
 * the reference's coverage is below 0.5 or either image has no data.
 */
#ifndef RAPID_DIFF_H
#define RAPID_DIFF_H

#include <signal.h> /* sig_atomic_t */

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
    double apcorr;              /* the stars' scale multiplied by this for
                                 * the PSFs' different light in the
                                 * matching aperture (1: not corrected) */
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
/* The same on nthreads threads: with 2 or more, the science image's
 * background and catalog and the reference's maps are made on a second
 * thread beside the reference image's resampling, background and
 * catalog.  The results are the same whatever nthreads. */
int rapid_diff_prepare_threads(const rapid_science *sci, rapid_wcs *sci_wcs,
                               const rapid_diff_ref *ref, unsigned flags,
                               int nthreads, rapid_diff_pair *p,
                               rapid_err *err);
/* The same, stopped when *stop is set (by a signal handler; NULL: never):
 * it is looked at between the steps (the reference's resampling, its
 * background, the science image's catalog, the maps) and inside the
 * catalogs; then RAPID_E_INTERRUPTED and nothing prepared. */
int rapid_diff_prepare_stop(const rapid_science *sci, rapid_wcs *sci_wcs,
                            const rapid_diff_ref *ref, unsigned flags,
                            int nthreads, volatile sig_atomic_t *stop,
                            rapid_diff_pair *p, rapid_err *err);
void rapid_diff_pair_release(rapid_diff_pair *p);

/* The flux scale the stars gave, measured in apertures (6 px across),
 * corrected for the two PSFs' different share of light in them: times
 * EE_ref / EE_sci, the aperture fractions of the reference PSF on the
 * science pixels (rapid_psf_on_science) and of the science PSF (H158: the
 * reference's broader PSF puts 0.808 of its light in the aperture, the
 * science's 0.833, so the uncorrected scale is 3 % high).  Nothing when
 * the scale came from the zero points.  Sets p->apcorr. */
int rapid_diff_aperture_correct(rapid_diff_pair *p, const float *sci_psf,
                                int nsp, const float *ref_psf_sci, int nrp,
                                rapid_err *err);

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
 *   S_corr = S / sqrt(V_N (x) k_n^2 + (f_S V_R) (x) k_r^2 + V_ast),
 *   k_n^ = conj(P_n^) |P_r^|^2 sqrt(T_n) / Delta^2,
 *   k_r^ = conj(P_r^) |P_n^|^2 / Delta^2,
 *   V_ast = sx^2 (dS_N/dx)^2 + sy^2 (dS_N/dy)^2 + the same for S_R
 *           (S_N, S_R the two terms of S, S = S_N - S_R),
 * with V_N, V_R the per-pixel variances (source noise included) and sx,
 * sy the error of the registration solution.  D is given divided by F_D,
 * in science DN/s: a point source of flux f in N measures f on D with P_D
 * (unit sum); its uncertainty is
 *   sigma_D = sqrt(V_N (x) k_Dn^2 + (f_D V_R) (x) k_Dr^2) / F_D,
 *   k_Dn^ = P_r^ sqrt(T_n) / Delta,  k_Dr^ = P_n^ / Delta,
 * where the reference's correlated noise enters as factors f_S, f_D on
 * its share.  A reference resampled onto the science pixels is not
 * white: it is a coadd of inputs already resampled onto the tile, each
 * pixel of it averages parts of several, and its variance map (sum of
 * weights^2 x variances) misses the covariance between neighbours, which
 * a matched filter sums (f_S > 1) and a whitening kernel cancels in part
 * (f_D < 1).  Given correlations (estimate_corr 0; r0..r3 of neighbouring
 * pixels at lags (1,0), (0,1), (1,1), (1,-1)) make the spectrum
 *   T(k) = 1 + 2 (r0 cos 2pi kx + r1 cos 2pi ky + r2 cos 2pi (kx + ky)
 *                 + r3 cos 2pi (kx - ky)),  held above 0.01,
 * used in Delta and in f = sum_k |k^|^2 T_r / sum_k |k^|^2 for k_r (f_S)
 * and k_Dr (f_D) (the sums over the small grid's frequencies).  With
 * white noise (T = 1) these are the paper's equations.
 * Asked to (estimate_corr), the code uses the paper's white Delta (T_n =
 * T_r = 1: a spectrum measured on the images would make D at a bright
 * star depend on every pixel the measurement used, so that a hole
 * anywhere moves it) and measures f_S, f_D on S and D themselves, in
 * windows of ~32 px: for each, the factor g for which the output over
 * sqrt(its science share + g x its reference share) has robust sigma 1
 * (the median of its square 0.4549, a chi^2 with one degree of freedom's)
 * over the window's pixels with data in both images away
 * from the reference's light (|D_R| beyond 3 robust sigma, grown by 2
 * px: there the PSF-model error, below, not the noise, makes the
 * residual); interpolated bilinearly between window centres.  The
 * science's share is taken as it comes (an L2 image's pixels are
 * independent); only the reference's, whose covariance no map holds, is
 * measured (rapid_zogy_out's ref_fs, ref_fd: the windows' medians).
 * Background noises not given are the square roots of the median
 * variance (V_N, V_R) over the pixels with data.
 * The PSF-model (undersampling) error.  Roman's PSFs are undersampled
 * (FWHM 1.3-1.6 px), and the reference is a coadd resampled twice (its
 * inputs onto the tile, the tile onto the science pixels), so each static
 * star's profile in R depends on its sub-pixel phases in both resamplings
 * (a star-to-star spread of 5-8 % of the flux in the central pixel, and
 * centroids that move by a few hundredths of a pixel) and no single P_r
 * describes all of them; the science image's stars, sampled once, vary
 * with their phase too.  As the paper treats the registration error
 * (V_ast), this adds a variance made of the static sky's light where it
 * enters each output, L = D_R for D, S_R for S:
 *   V_model = eps^2 L^2 + pos^2 |grad L|^2,
 *   sigma_D^2 += V_model(D_R; eps_d, pos_d),  D_R = k_Dr (x) R / F_D
 *                (R's share of D: D = D_N - D_R),
 *   V_S       += V_model(S_R; eps_s, pos_s),  S_R = k_r (x) R,
 * a share eps of the light (the profile's error; ZOGY's D, a whitened
 * image, multiplies a profile error of a few % into tens of % of D_R's
 * peak) and a position scatter pos (px) through the light's gradient
 * (central differences; the dipole a star's shifted profile leaves).  The
 * static sky's light is taken from the reference, the image in which
 * nothing has changed: under the hypothesis S_corr tests (no change) the
 * science image holds the same light, so one term covers both images'
 * model errors at static sources, while a transient's own light (in N
 * only) does not lower its own significance.  L's noise is taken out
 * first: D_R and S_R are shrunk towards 0 by 3 times their robust sigma
 * (1.4826 MAD over the image), so that the term vanishes on empty sky.
 * Then the extended sources' light is taken out of both: each pixel of
 * D_R with light belongs to the peak it climbs to (to its brightest
 * neighbour while one is brighter), and a peak wider than 6 times the
 * median width of the peaks at D_R >= 20 sigma_D (the curvature of ln D_R
 * across it, -1 / (ln L(x-1) + ln L(x+1) - 2 ln L(x)) averaged over x and
 * y, a Gaussian's sigma^2 at any sub-pixel phase; 0 where a neighbour has
 * no light) is an extended source's, whose pixels get no term (in D_R,
 * S_R and the fills' errors below; rapid_zogy_out's width2_ld,
 * nextended): the phase-dependent profile errors the term stands for
 * average out over a source many pixels wide, and a share of a galaxy's
 * light hid transients on its core.  Compact galaxies, nearly point
 * sources, keep it.
 * eps, pos are measured (eps_d, eps_s < 0) at static stars: the pixels
 * nearest star_x, star_y when given, else the peaks of D_R (no larger
 * value within 3 px) at D_R >= 20 sigma_D (where the term matters against
 * the noise for any eps above 0.05); either way with data on every pixel
 * within 3 px (no saturated core, hole or edge), each with its 3 x 3
 * neighbours: eps from the centre pixels (where residuals are read and
 * detections sit), pos from the 8 neighbours (the flanks), each the
 * value for which the residuals' d^2 / (v + V_model)
 * (d = D, v = the noise's sigma_D^2; for S, S and its V_S with V_ast) have
 * the median of a chi^2 with one degree of freedom (0.4549), the other
 * held, alternately until both settle: robust (transients and variables
 * among the stars do not move it), with the noise's share removed; a
 * term is 0 when the noise alone (neither term) explains its pixels'
 * residuals (their median within three standard errors, 1.06 /
 * sqrt(pixels), of 0.4549), and both 0 with fewer than 10 stars.  D, S, P_D do not change; D_R and S_R cost one more
 * transform (17 in all).
 * A filled pixel (no data in one image) takes the other image's light
 * matched to its PSF: M_R = K (x) R for the science's holes, K^ = P_n^
 * conj(P_r^) / (|P_r^|^2 + 1e-3), and M_N likewise (P_r^ / P_n^) for the
 * reference's where the science's light is significant (|N| > 3 sigma on
 * the pixel or a neighbour; N itself on the sky), made directly in real
 * space (the other image itself where the kernel reaches into no data
 * for more than 1 % of its weight).  It is still wrong by the two PSF
 * models' difference: eps_fill, pos_fill (the science's holes) are
 * measured as above from N - M_R at the peaks of R (R >= 20 sqrt(V_N +
 * V_R), v = V_N + V_R, L = M_R), eps_fill_ref, pos_fill_ref (the
 * reference's) from R - M_N (L = M_N), and each filled pixel whose light
 * is significant (|value| > 3 sigma of the image that has it) and not
 * an extended source's (above) adds
 * eps^2 L^2 + pos^2 |grad L|^2 (L the matched light, its gradient the
 * other image's) through the squared kernels of the image it fills
 * (k_Dn^2, k_n^2 for the science's holes, k_Dr^2, k_r^2 for the
 * reference's) to sigma_D^2 and V_S, summed directly in real space (a
 * saturated core's fill is too bright next to the noise for
 * single-precision transforms to carry both); so is the part of V_N, V_R
 * above 1000 sigma_n^2, sigma_r^2 (and R's part beyond 2000 sigma_r has
 * its rows transformed in double precision): the same equations, carried
 * more precisely.
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
    volatile sig_atomic_t *stop; /* non-NULL: set (by a signal handler) to
                              * stop: looked at between the steps (a
                              * second or two apart at full size); the
                              * call then returns RAPID_E_INTERRUPTED
                              * (NULL) */
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
    double eps_d, eps_s;     /* the PSF-model error's share (above) in D
                              * and in S_corr: >= 0 given, with pos_d,
                              * pos_s (0, 0: none, the paper's
                              * equations); < 0 measured at the static
                              * stars, with pos_d, pos_s */
    double pos_d, pos_s;     /* its position scatter, px (given with
                              * eps_d, eps_s >= 0) */
    const double *star_x, *star_y; /* the stars eps is measured at (nstars,
                              * 0-based px; NULL: the peaks of D_R) */
    int nstars;
} rapid_zogy_in;

typedef struct rapid_zogy_out {
    float *d, *unc, *scorr;  /* nx * ny each (allocated: released by
                              * rapid_zogy_out_release, not free()) */
    float *pd;               /* P_D, npd x npd, unit sum (allocated) */
    int npd;                 /* max(npn, npr) */
    double sigma_n, sigma_r; /* as used */
    double corr_n[4], corr_r[4]; /* as used */
    double fd;               /* F_D */
    int padx, pady;          /* the transforms' size */
    double eps_d, eps_s;     /* the model error's share, as used */
    double pos_d, pos_s;     /* its position scatter, px, as used */
    double noise_ld, noise_ls; /* the noise of D_R and S_R (robust sigma)
                              * taken out of them before the term */
    int neps;                /* stars it was measured at (0: given, or
                              * fewer than 10 stars: 0 used) */
    double width2_ld;        /* the point sources' width^2 in D_R, px^2
                              * (0: not measured, all light kept) */
    long nextended;          /* extended sources whose light the term
                              * leaves out */
    double eps_fill, pos_fill; /* a filled pixel's error (above): the
                                * science's holes' */
    int nfill;               /* stars it was measured at */
    double eps_fill_ref, pos_fill_ref; /* the reference's holes' */
    double ref_fs, ref_fd;   /* the reference's noise as it reaches S and D
                              * over what its variance map gives (f_S,
                              * f_D: the median over the windows; 1 with
                              * given correlations) */
} rapid_zogy_out;

#define RAPID_ZOGY_OUT_INIT {NULL, NULL, NULL, NULL, 0, 0, 0, {0}, {0}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

int rapid_zogy(const rapid_zogy_in *in, const rapid_zogy_opts *o,
               rapid_zogy_out *out, rapid_err *err);
void rapid_zogy_out_release(rapid_zogy_out *out);

/* ZOGY on a prepared pair: N = science - its background, R = scale
 * (reference - its background), V_N = the science uncertainty squared,
 * V_R = scale^2 the reference's, P_r = ref_psf, the reference PSF as the
 * science pixels see it (rapid_psf_on_science makes it), sx, sy = the stars' offset rms / sqrt(number
 * of stars) (0 without stars), the noises and their correlations measured
 * from the images; NaN where the reference's coverage is below 0.5.  PSFs
 * odd-sized, centred. */
int rapid_diff_zogy(const rapid_science *sci, const rapid_diff_pair *p,
                    const float *sci_psf, int nsp, const float *ref_psf,
                    int nrp, const rapid_zogy_opts *o, rapid_zogy_out *out,
                    rapid_err *err);

/* The inputs rapid_diff_zogy gives rapid_zogy, built from a prepared pair
 * and kept (to look at, write out, or check another implementation
 * against): N, R, V_N, V_R as rapid_diff_zogy above describes them, in
 * arrays of the struct's own; in points at them and at sci_psf and
 * ref_psf (P_r; the caller's: they must outlive any use of in).
 * in.sigma_n = in.sigma_r = 0 and in.estimate_corr = 1 (rapid_zogy
 * measures the noises and their correlations), in.eps_d = in.eps_s = -1
 * (and measures the PSF-model error at the peaks of D_R), in.sx, in.sy
 * from the stars' offsets.  rapid_zogy(&zi->in, ...) gives what rapid_diff_zogy
 * gives, bit for bit.  On failure zi holds nothing. */
typedef struct rapid_zogy_inputs {
    rapid_zogy_in in;
    float *n, *r, *vn, *vr;  /* nx * ny each; NaN where no data */
} rapid_zogy_inputs;

int rapid_diff_zogy_inputs(const rapid_science *sci, const rapid_diff_pair *p,
                           const float *sci_psf, int nsp,
                           const float *ref_psf, int nrp,
                           rapid_zogy_inputs *zi, rapid_err *err);
void rapid_zogy_inputs_release(rapid_zogy_inputs *zi);

/* ---- Kernel fitting by cross-convolution (SFFT: Hu et al. 2022; the
 *      least-squares kernel of Alard & Lupton 1998) ----
 *
 * With N the science image and R the reference on the science pixels
 * (backgrounds removed; R in its own units: the kernel carries the flux
 * scale), P_n, P_r their PSFs on the science pixels (unit sum), x for
 * convolution and hats for Fourier transforms:
 *   cross-convolution:  N~ = P_r x N,  R~ = P_n x R  (both then have the
 *                       PSF P_n x P_r);
 *   the model:          N~(p) = sum_k K_p(k) R~(p - k) + B(p),
 *     K_p(k) = sum_j phi_j(u, v) K_j(k),  k in [-h, h]^2 (h = half_width),
 *     B(p)   = sum_j phi_j(u, v) b_j  (j up to bg_order),
 *     phi_j the monomials u^a v^b, a + b <= order, in the order 1, u, v,
 *     u^2, u v, v^2; u = (x - (nx-1)/2) / (nx/2), v likewise (the image
 *     centre is u = v = 0, its edges about +-1);
 *   the fit:            least squares over stamps, each the
 *     (2 stamp_half + 1)^2 pixels around a source, with the kernel's terms
 *     phi_j taken at the stamp's centre (the background's at each pixel),
 *     every pixel weighted by 1 / sigma_p^2,
 *     sigma_p^2 = (V_N x P_r^2)(p) + s0^2 (V_R x P_n^2)(p) (s0 the
 *     caller's first guess of the flux scale; the PSFs squared cut where
 *     they fall below 1 % of their peak);
 *   the difference for detection (cross-convolved):
 *     D_cc = N~ - K x R~ - B  (PSF P_n x P_r, science DN/s);
 *   the decorrelated difference, with K_c = K_0 the kernel at the image
 *     centre and kappa = sum_k K_c(k) its flux normalisation:
 *     D^ = D_cc^ sqrt(sigma_n^2 + kappa^2 sigma_r^2)
 *          / sqrt(sigma_n^2 |P_r^|^2 + sigma_r^2 |K_c^ P_n^|^2),
 *     whose noise is white with variance sigma_n^2 + kappa^2 sigma_r^2
 *     where the kernel is K_c, and whose PSF
 *     P_D^ = P_n^ P_r^ sqrt(sigma_n^2 + kappa^2 sigma_r^2) / sqrt(...)
 *     has unit sum: a point source of flux f in N measures f on D with
 *     P_D.  Its uncertainty, from the per-pixel variances V_N, V_R (in R's
 *     units):
 *     sigma_D^2 = V_N x k_N^2 + V_R x k_R^2,  k_N = DK x P_r,
 *     k_R = DK x K_c x P_n,  DK^ = D^ / D_cc^ (the decorrelation kernel).
 * The kernel is decorrelated at the image centre only: where it varies,
 * the noise of D is white to the extent K_p is close to K_c.
 * The PSF-model error, as ZOGY's (above): static stars leave residuals
 * that no kernel removes (each undersampled star's profile in the twice
 * resampled reference depends on its sub-pixel phases) and the fitted
 * kernel's own error adds to them (thousands of unknowns from a few
 * hundred stamps), both in proportion to the reference's light.  With L =
 * DK x (sum_j phi_j K_j x R~), the model's light in D (its noise shrunk
 * out, 3 robust sigma):
 *   sigma_D^2 += eps^2 L^2 + pos^2 |grad L|^2,
 * eps and pos measured on D at the static stars (the peaks of L at
 * L >= 20 sigma_D with data within 3 px, each with its 3 x 3
 * neighbours; the stamps' sources among them, so that the kernel's error
 * is measured where the kernel was fitted and holds, as an average, for
 * the stars between) exactly as for ZOGY's D; 0 when the noise explains
 * the residuals or fewer than 10 stars qualify.  Two more transforms.
 *
 * Basis: delta functions (one unknown per kernel pixel, as SFFT).  The
 * cross-convolution already gives both images the same PSF, so the kernel
 * left to fit is close to kappa times a delta function, plus whatever the
 * PSF models and the registration got wrong: sub-pixel shifts and
 * asymmetric residues that a delta basis represents exactly and a
 * Gauss-Hermite basis (made for a Gaussian-like kernel that broadens a
 * sharp reference) does not without choosing widths and degrees.  The
 * price is (2h + 1)^2 unknowns per spatial term (361 for h = 9; 2166 for a
 * quadratic kernel), which stamps of ~500 pixels provide many times over.
 *
 * Stamps: local maxima of N~ at S/N >= min_snr (N~'s noise:
 * sigma_n sqrt(sum P_r^2)) with a maximum of R~ as significant within
 * 1 px, data at the peak pixel in both images (a saturated core has
 * none), no blend (no other maximum at least a quarter as bright within
 * `isolation` px), no N pixel within 1 px of the peak at or above max_peak
 * (when set), the stamp, the kernel and the PSFs inside the image; spread
 * over the image by taking the brightest remaining source of each cell of
 * an 8 x 8 grid in turn, no two stamps' centres within stamp_half of each
 * other, up to max_stamps.  Inside a stamp a pixel is fitted only when no
 * pixel of N within P_r's hole reach, and no pixel of R within P_n's hole
 * reach + 1 (the kernel's core), is without data (NaN in the image or its
 * variance: no data, DQ-flagged, saturated) or, with a coverage map, less
 * than 0.99 covered (a partly covered pixel holds part of the flux); a
 * PSF's hole reach is its farthest pixel above 10 % of its peak (a filled
 * hole changes the convolved image there by more than about a tenth of
 * its noise).  A stamp needs a quarter of its pixels.  After each
 * solution, stamps whose chi^2 per pixel lies above the median by more
 * than clip_sigma times the robust scatter (1.4826 MAD) of the stamps'
 * values are dropped, the worst first and never below the stamps the fit
 * needs, and the fit is made again (at most max_iter times).
 * The kernel is taken as constant over a stamp: exact for a kernel that
 * does not vary, and off by its change over stamp_half pixels otherwise
 * (on a 4088 px image, 0.3 % of its change across the image).
 *
 * Solution: the normal equations assembled from per-stamp Gram matrices
 * (BLAS dsyrk) weighted by the products of the stamps' polynomial terms,
 * scaled to unit diagonal, factored by Cholesky (LAPACK dpotrf) with the
 * condition number estimated in the 1-norm (dpocon).  The fit fails
 * (no outputs, RAPID_E_TOOFEW or RAPID_E_RANGE with the reason) with
 * fewer than 5 stamps per spatial term (of the kernel or the
 * background, whichever has more) or fewer fitted pixels than twice the
 * unknowns, a matrix that is not positive definite (singular), a
 * condition number above max_cond (1e12 by default: in double precision
 * the solution then keeps fewer than 4 significant digits), a solution
 * that is not finite, or a kernel whose flux at the centre is not
 * positive.  Errors in the variables (eiv): R~'s noise in the design
 * biases plain least squares towards a smoother kernel; its expected
 * Gram matrix (R's variance map times the autocorrelation of P_n
 * convolved with R's noise correlation, measured on R away from sources
 * at lags up to 2 px) is taken out by the series x <- x0 + A^-1 E x from
 * the plain solution (at most 3 steps, each shrinking by half or not
 * taken; eiv_steps).  The kernel's own error: the fit's covariance at a
 * point source's peak relative to the peak, on an 8 x 8 grid of the
 * image (kerr_centre, kerr_edge), adds that share of the model's light
 * in D to sigma_D.
 * The delta basis needs the images' high frequencies to pin the kernel
 * down: with undersampled PSFs (Roman's, FWHM 1.1-1.7 px) the condition
 * number stays near 1e7-1e10 (synthetic Gaussian PSFs: 3e7 at a FWHM of
 * 1.6 px, 1e10 at 1.9 px, 1e15 at 2.4 px); well-sampled images make it
 * ill-conditioned, and the fit fails saying so.
 *
 * Transforms: whole images through rapid/fft.h, padded against
 * wrap-around by the larger PSF's size and the kernel's width to a size
 * FFTW transforms fast; 6 + 2 x (spatial terms) + 8 transforms of that
 * size (26 for a quadratic kernel), at most three padded planes alive;
 * the decorrelation kernel and the variance kernels are made on a small
 * grid (twice that padding) and laid on the full one.  No-data pixels
 * (NaN) of one image are filled from the other (scaled by s0), of both
 * with zero, and are NaN in every output, as are pixels without data in
 * V_N or V_R.  sigma_n, sigma_r: the images' background noise (1.4826 MAD
 * of their pixels unless given).
 * The BLAS (OpenBLAS) runs nthreads threads: its thread count is the
 * process's, set by the call.
 */
typedef struct rapid_sfft_opts {
    int nthreads;            /* FFT and BLAS threads (1) */
    rapid_fft_cache *fft;    /* plans to use; NULL: made and freed by the
                              * call (ESTIMATE, nthreads) */
    int half_width;          /* kernel half-width h, px (9) */
    int order;               /* spatial order of the kernel: 0 constant,
                              * 1 linear, 2 quadratic (2) */
    int bg_order;            /* of the differential background, 0-2 (2) */
    int stamp_half;          /* fitted pixels per stamp: (2 s + 1)^2 (11:
                              * 23^2; with the kernel 41^2 of R~) */
    int max_stamps;          /* (1000) */
    double min_snr;          /* peak S/N of a stamp's source in N~ and R~
                              * (20) */
    double isolation;        /* px (6) */
    double max_peak;         /* sources whose brightest N pixel exceeds
                              * this (DN/s) are not used; 0: no limit (0) */
    double clip_sigma;       /* stamp rejection (3) */
    int max_iter;            /* rejection passes at most (3) */
    double max_cond;         /* condition number limit (1e12) */
    double eps_model;        /* the PSF-model error's share (below): < 0
                              * measured at the static stars (-1); >= 0
                              * given, with pos_model (0, 0: none) */
    double pos_model;        /* its position scatter, px, when given (0) */
    int eiv;                 /* 1: the normal equations corrected for the
                              * noise of R~ in the design (errors in the
                              * variables, sfft_fit.c) (1); 0: plain least
                              * squares */
    volatile sig_atomic_t *stop; /* as rapid_zogy_opts.stop, looked at
                              * between the fit's passes and before the
                              * convolutions (NULL) */
} rapid_sfft_opts;

void rapid_sfft_opts_init(rapid_sfft_opts *o);

/* Prepared inputs, nx x ny each (the caller's, not changed). */
typedef struct rapid_sfft_in {
    int nx, ny;
    const float *n, *r;      /* science (DN/s) and reference (any units),
                              * backgrounds removed */
    const float *vn, *vr;    /* their variances */
    const float *pn, *pr;    /* PSFs on the science pixels, odd npn x npn
                              * and npr x npr, centred (normalised here) */
    int npn, npr;
    const float *cov;        /* the reference's coverage (may be NULL):
                              * stamps fit only pixels whose R~ comes
                              * from fully covered pixels (>= 0.99), as
                              * partly covered ones hold part of the flux */
    double s0;               /* first guess of the flux scale, science /
                              * reference (<= 0: 1) */
    double sigma_n, sigma_r; /* background noise of n and r; <= 0:
                              * estimated (1.4826 MAD of the pixels) */
} rapid_sfft_in;

typedef struct rapid_sfft_out {
    float *d, *cconv, *unc;  /* decorrelated and cross-convolved
                              * differences and sigma of d, science DN/s,
                              * nx * ny each (allocated: released by
                              * rapid_sfft_out_release, not free()) */
    float *pd;               /* P_D, npd x npd, unit sum (allocated) */
    int npd;                 /* max(npn, npr) */
    float *kernel;           /* K_j, nterms x (2 h + 1)^2 (allocated):
                              * K_j(kx, ky), the weight of R~(x - kx,
                              * y - ky), at j (2h+1)^2 + (ky + h) (2h+1)
                              * + kx + h */
    double bg[6];            /* b_j (nbg of them), science DN/s */
    const char *basis;       /* "delta" */
    int order, bg_order, half_width, nterms, nbg;
    int nstamps;             /* stamps in the final fit */
    int nrejected;           /* stamps dropped on their residuals */
    int ncandidates;         /* stamps chosen before rejection */
    long npix;               /* pixels fitted */
    int nunknowns;
    double chi2r;            /* chi^2 / (npix - nunknowns) */
    double cond;             /* condition number estimate (1-norm) */
    double ksum;             /* kappa = sum of K at the image centre */
    double sigma_n, sigma_r; /* as used */
    int padx, pady;          /* the transforms' size */
    double sec_conv;         /* wall-clock seconds in the convolutions
                              * (cross-convolution, model, decorrelation,
                              * uncertainty) */
    double sec_fit;          /* ... in the stamps and the fit */
    double eps_model, pos_model; /* the PSF-model error, as used */
    int neps;                /* stars it was measured at (0: given, or
                              * fewer than 10 stars: 0 used) */
    double width2_ld;        /* the point sources' width^2 in D_R, px^2
                              * (0: not measured, all light kept) */
    long nextended;          /* extended sources whose light the term
                              * leaves out */
    int eiv_steps;           /* steps of the errors-in-variables
                              * correction taken (0: none, or not
                              * converging: plain least squares) */
    double kerr_centre, kerr_edge; /* the kernel's own error relative to a
                              * point source's peak, at the image centre
                              * and the largest at a cell's centre */
} rapid_sfft_out;

void rapid_sfft_out_release(rapid_sfft_out *out);

int rapid_sfft(const rapid_sfft_in *in, const rapid_sfft_opts *o,
               rapid_sfft_out *out, rapid_err *err);

/* The kernel fit on a prepared pair: N = science - its background, R =
 * reference - its background (reference units: ksum is then the flux
 * scale the fit finds, to compare with p->match.scale), V_N = the science
 * uncertainty squared, V_R the reference's, P_r = ref_psf as resampling
 * onto the science pixels blurs it (rapid_psf_resample_blur), s0 =
 * p->match.scale; NaN where the reference's coverage is below 0.5.  PSFs odd-sized, centred.  o NULL:
 * defaults. */
int rapid_diff_sfft(const rapid_science *sci, const rapid_diff_pair *p,
                    const float *sci_psf, int nsp, const float *ref_psf,
                    int nrp, const rapid_sfft_opts *o, rapid_sfft_out *out,
                    rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
