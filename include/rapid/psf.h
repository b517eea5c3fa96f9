/* rapid/psf.h - a physical model of the Roman WFI point-spread function.
 *
 * The optical PSF is |FT(pupil)|^2 of a centrally obscured pupil with six
 * spider struts (behind the cold pupil mask of the filter) and a small
 * wavefront error that varies smoothly across the focal plane, summed over
 * the filter's band for a K0V star; it is convolved with pointing jitter,
 * charge diffusion and the square pixel, so that sampling it at native
 * pixel steps gives the fraction of a point source's flux falling in each
 * pixel (the image is undersampled: FWHM 1.1-1.7 px).  Models are kept
 * oversampled; every model is centred (its first moment is at the origin)
 * and normalised over its stamp, whose outermost pixels roll the wings off
 * to zero so that a stamp holds the whole model at every sub-pixel phase.
 */
#ifndef RAPID_PSF_H
#define RAPID_PSF_H

#include "rapid/error.h"
#include "rapid/filters.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_psf_opts {
    int over;            /* oversampling factor of the stored models (4) */
    int half;            /* stamp half-size in native pixels (32: 65x65) */
    int ngrid;           /* models per detector side (3: a 3x3 grid) */
    double obscuration;  /* central obscuration behind the cold pupil mask
                          * of R062..H158 and W146, linear fraction (0.32) */
    double strut_width;  /* spider strut width, fraction of D (0.026) */
    double obscuration_wide; /* the same behind the wide mask of F184 and
                              * K213 (0.40) */
    double strut_width_wide; /* (0.04) */
    int nlambda;         /* wavelengths sampled across the band; 0: one per
                          * 15 % of fractional bandwidth, 2-5 (0) */
    double wfe_nm;       /* rms wavefront error at the field centre (45) */
    double wfe_field;    /* its growth: the rms is wfe_nm (1 + wfe_field
                          * (fx^2 + fy^2)), fx, fy the focal-plane
                          * coordinates in [-1, 1] (0.3) */
    double jitter_mas;   /* rms pointing jitter per axis (3.4: 8 mas FWHM,
                          * as the Roman project's PSF statistics) */
    int optical_only;    /* 1: diffraction and WFE only, no jitter, no
                          * diffusion, no pixel (to check the optics); 0 */
    double diffusion_px; /* detector charge diffusion, Gaussian rms per axis
                          * in native pixels (0.1, as GalSim's Roman model) */
    double ipc_side;     /* inter-pixel capacitance: fraction of a pixel's
                          * charge seen by each side neighbour (0: off, as
                          * in the published PSF statistics; GalSim's
                          * Roman kernel has 0.0143) */
    double ipc_diag;     /* ... by each diagonal neighbour (0; 0.0012) */
} rapid_psf_opts;

void rapid_psf_opts_init(rapid_psf_opts *o);

/* One oversampled, pixel-convolved model.  Sample (i, j) is the PSF at
 * ((i - c)/over, (j - c)/over) native pixels from its centre, c = (n-1)/2,
 * so the samples c + k*over are whole-pixel steps through the centre. */
typedef struct rapid_psf_model {
    int n;        /* side of the oversampled grid (odd): (2*half+1)*over,
                   * plus 1 when over is even (ends at +-(half+1/2) px) */
    int over;
    float *data;  /* n*n; samples at native-pixel steps sum to 1 (for any
                   * sub-pixel phase; all samples sum to over^2) */
} rapid_psf_model;

/* The PSF across one detector (sca 1..18) in one filter: a grid of models
 * interpolated bilinearly between grid points.  Model (i, j) is the PSF at
 * detector position x = (i+0.5)*nx/ngrid - 0.5, y = (j+0.5)*ny/ngrid - 0.5
 * (0-based pixel centres); beyond the outer grid points the nearest
 * models are used. */
typedef struct rapid_psf_field {
    const rapid_filter *filter;
    int sca;
    int nx, ny;            /* detector size in pixels */
    rapid_psf_opts opts;
    int ngrid;
    rapid_psf_model *models; /* ngrid*ngrid, row-major (y slowest) */
    double lambda_um;        /* photon-weighted mean wavelength, microns */
    double lambda_min_um, lambda_max_um; /* the filter's band edges */
    int nlambda;             /* wavelengths summed across the band */
    int wide_mask;           /* 1: behind the wide pupil mask (F184, K213) */
} rapid_psf_field;

/* Build the field for (filter, sca) on an nx*ny detector; opts NULL for
 * defaults.  Deterministic. */
int rapid_psf_field_make(rapid_psf_field *f, const rapid_filter *filter,
                         int sca, int nx, int ny, const rapid_psf_opts *opts,
                         rapid_err *err);
void rapid_psf_field_release(rapid_psf_field *f);

/* The native-pixel stamp of a point source at detector position (x, y)
 * (0-based pixel coordinates): out is (2*half+1)^2 floats, summing to 1,
 * whose [0] is pixel (*ix0, *iy0) = (round(x)-half, round(y)-half),
 * round(x) = floor(x + 1/2).  half <= opts.half (pixels beyond opts.half
 * are 0).  Thread-safe. */
void rapid_psf_field_stamp(const rapid_psf_field *f, double x, double y,
                           int half, float *out, int *ix0, int *iy0);
/* Add flux (any unit) times the PSF at (x, y) to an nx*ny image; pixels
 * outside the image are skipped. */
void rapid_psf_field_add(const rapid_psf_field *f, float *img, int nx, int ny,
                         double x, double y, double flux);

/* The PSF file of a detector: the native-sampled PSF at the detector centre,
 * size x size (odd), centred on the middle pixel, unit sum, with FILTER,
 * SCA_NUM and the model parameters in its header (PSFOVER = 1, PIXSCALE,
 * WAVELEN (photon-weighted mean), LAMMIN, LAMMAX, NLAMBDA, PUPMASK, FWHM
 * in pixels, OBSCUR, STRUTW, WFE_NM, JITTER, DIFFUSE). */
int rapid_psf_field_image(const rapid_psf_field *f, int size, rapid_image *out,
                          rapid_err *err);

/* The oversampled PSF at the detector centre: the pixel-convolved model
 * itself (n x n samples 1/over native pixel apart, n = models[0].n, odd,
 * centred on the middle sample), normalised to unit sum over all samples;
 * header OVERSAMP (= over), FILTER, SCA_NUM, PIXSCALE (arcsec per
 * sample), PSFTYPE = 'EFFECTIVE'.  Because it is already convolved with
 * the pixel, the native PSF of a source offset (dx, dy) px from a pixel
 * centre is over^2 times the samples c + k over - (dx, dy) over (k
 * integer, c the middle), not a block sum. */
int rapid_psf_field_oversampled(const rapid_psf_field *f, rapid_image *out,
                                rapid_err *err);

/* Write the PSF file of a detector to path: the native image of
 * rapid_psf_field_image (size 2 half + 1) as the primary HDU, the
 * oversampled PSF as extension OVERSAMP.  All or nothing. */
int rapid_psf_field_write(const rapid_psf_field *f, const char *path,
                          rapid_err *err);

/* FWHM in native pixels of the PSF at (x, y): the mean of the full widths
 * at half maximum of its x and y profiles through the peak, on a bicubic
 * interpolation of the oversampled model (for checks and headers).  With
 * opts.optical_only, the optical FWHM.  NaN if f holds no models. */
double rapid_psf_fwhm(const rapid_psf_field *f, double x, double y);

#ifdef __cplusplus
}
#endif
#endif
