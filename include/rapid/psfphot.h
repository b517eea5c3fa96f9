/* rapid/psfphot.h - PSF-fit photometry of point sources.
 *
 * At given starting positions, the flux and position of each source are
 * fitted to the pixels of a square box around it by weighted least squares
 * (Levenberg-Marquardt, weights 1/sigma^2 from a per-pixel uncertainty
 * map); sources closer than the box side are fitted together.  The data
 * must have no background (a difference image).  Pixel coordinates are
 * 0-based (pixel centres at integers).
 */
#ifndef RAPID_PSFPHOT_H
#define RAPID_PSFPHOT_H

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A sampled PSF: n x n samples (n odd), `over` samples per native pixel
 * (1: native sampling), centred on the middle sample, normalised to unit
 * sum over all samples.  The model of a native pixel offset (dx, dy) px
 * from the source is over^2 times the samples, bicubically interpolated,
 * at (c + dx over, c + dy over), c = (n-1)/2: the PSF must already be
 * convolved with the pixel (an "effective" PSF, as rapid's PSF files are). */
typedef struct rapid_psfphot_psf {
    int n, over;
    float *data;    /* n*n, owned */
    int native;     /* 1: set from native samples (over 1) or a Gaussian
                     * stand-in: a model good to a few per cent only */
} rapid_psfphot_psf;

#define RAPID_PSFPHOT_PSF_INIT {0, 0, NULL, 0}

/* A copy of a square image of odd side (nx == ny) normalised to unit sum.
 * NaN samples, a sum that is not positive, sides that are even or unequal
 * are RAPID_E_ARG, the message naming `what` (e.g. the file). */
int rapid_psfphot_psf_set(rapid_psfphot_psf *p, const float *data, int nx,
                          int ny, int over, const char *what, rapid_err *err);
/* A pixel-integrated circular Gaussian of this FWHM (native pixels),
 * sampled 4x: the fallback when no PSF is known. */
int rapid_psfphot_psf_gauss(rapid_psfphot_psf *p, double fwhm, rapid_err *err);
void rapid_psfphot_psf_release(rapid_psfphot_psf *p);

/* The model value of the native pixel offset (dx, dy) px from the source,
 * and (if gx, gy are not NULL) its derivatives with respect to dx, dy. */
double rapid_psfphot_psf_eval(const rapid_psfphot_psf *p, double dx, double dy,
                              double *gx, double *gy);
/* The fraction of a centred source's flux within a circular aperture of
 * this diameter (px), each pixel's value spread uniformly over the pixel
 * (as the aperture sums do). */
double rapid_psfphot_aperture_fraction(const rapid_psfphot_psf *p, double diam);
/* FWHM (px) of the model: the mean of its x and y half-maximum widths. */
double rapid_psfphot_psf_fwhm(const rapid_psfphot_psf *p);

typedef struct rapid_psfphot_opts {
    int half;          /* box half-side, px: (2 half + 1)^2 pixels (3) */
    int maxiter;       /* iterations before giving up (50) */
    int maxgroup;      /* sources fitted together at most; a larger group
                        * is fitted one source at a time (16) */
    double flux_floor; /* added in quadrature to fluxerr: flux_floor * |flux|
                        * (0) */
    double model_err;  /* fractional error of the PSF model per pixel: the
                        * chi^2 divides each residual^2 by sigma^2 +
                        * (model_err * model)^2.  < 0 (default): 0 for an
                        * oversampled PSF, RAPID_PSFPHOT_NATIVE_MODEL_ERR
                        * for a native one (interpolating an undersampled
                        * PSF between its samples misses its shape by a few
                        * per cent at other sub-pixel phases) */
    int nthreads;      /* groups fitted in parallel by this many threads,
                        * 1..RAPID_PSFPHOT_MAXTHREADS (1); the results do
                        * not depend on it */
} rapid_psfphot_opts;

#define RAPID_PSFPHOT_NATIVE_MODEL_ERR 0.1
#define RAPID_PSFPHOT_MAXTHREADS 64

void rapid_psfphot_opts_init(rapid_psfphot_opts *o);

/* Result flags. */
enum {
    RAPID_PSFPHOT_NOCONV = 1,  /* no convergence in maxiter iterations:
                                * values are the last iteration's */
    RAPID_PSFPHOT_GROUP = 2,   /* fitted together with neighbours */
    RAPID_PSFPHOT_CROWDED = 4, /* its group was larger than maxgroup */
    RAPID_PSFPHOT_NODATA = 8,  /* fewer usable pixels than 4 (values NaN) */
    RAPID_PSFPHOT_FIXED = 16   /* its position ran more than 2 px from the
                                * start: held there, the flux fitted at the
                                * starting position (xerr, yerr NaN) */
};

typedef struct rapid_psfphot_result {
    double flux, fluxerr;  /* image units x pixels (total flux of the model) */
    double x, y, xerr, yerr; /* px, 0-based */
    double chi2;           /* reduced chi^2 over the source's own box */
    int npix;              /* pixels of its box used in the fit */
    int flags;             /* RAPID_PSFPHOT_* */
} rapid_psfphot_result;

/* Fit n sources starting at (x0[i], y0[i]) in img (nx*ny, NaN = no data)
 * with per-pixel 1-sigma uncertainties sigma (NaN or <= 0: not used).
 * out: n results.  Fails only on bad arguments or memory. */
int rapid_psfphot(const float *img, const float *sigma, int nx, int ny,
                  const rapid_psfphot_psf *psf, const rapid_psfphot_opts *o,
                  int n, const double *x0, const double *y0,
                  rapid_psfphot_result *out, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
