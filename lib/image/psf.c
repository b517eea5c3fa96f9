/* psf.c - a physical model of the Roman WFI point-spread function.
 *
 * Stages, one group of functions each:
 *
 *  1. Pupil.  A disc of diameter D = RAPID_APERTURE_M with a central
 *     obscuration and six spider struts at 30 + 60k degrees from the
 *     detector x axis (three full bars), fixed in detector coordinates, so
 *     the diffraction spikes run along x and at +-60 degrees from it.  The
 *     cold pupil mask sets the obscuration and strut width: the skinny
 *     mask for R062..H158 and W146, the wide one (more blocked) for F184
 *     and K213.  Edges are anti-aliased by 4x4 sub-sampling of every pupil
 *     sample.
 *  2. Wavefront error.  Noll-normalised Zernikes Z4 (defocus), Z5, Z6
 *     (astigmatism), Z7, Z8 (coma) and Z11 (spherical) with coefficients
 *     that are low-order polynomials of the focal-plane position (fx, fy) in
 *     [-1, 1]^2, the detectors laid out as the WFI's (focal_plane()).  The
 *     map is scaled so its rms over the pupil is wfe_nm * (1 + wfe_field *
 *     (fx^2 + fy^2)).
 *  3. Band.  The filter's band (published edges) is cut into equal
 *     sub-bands, one per BAND_STEP of fractional bandwidth (2 to 5 with the
 *     defaults), and the optical PSF of each midpoint wavelength is
 *     weighted by the photons of a K0V star in it (the spectrum of the
 *     published PSF statistics).
 *  4. Optical PSF |FFT(P exp(2 pi i W / lambda))|^2 per wavelength, each
 *     normalised to its total, on one M x M grid whose angular step is the
 *     model sample 0.11"/over divided by q; the pupil is sampled with
 *     nd = M step / (lambda/D) samples across, so it is rebuilt per
 *     wavelength.  q is the smallest integer that fits the pupil in the
 *     grid at the shortest wavelength (q = 1 for over = 4 in all filters;
 *     see layout_make()); M >= 512, M >= 2 * n * q (the periodic copies of
 *     the PSF stay a stamp away), and at least 60 samples across the
 *     pupil at the longest wavelength (74 in K213 with the defaults,
 *     M = 540).
 *  5. Jitter, charge diffusion, pixel and (optionally) inter-pixel
 *     capacitance.  The OTF of the summed PSF is multiplied by the
 *     Gaussians of the jitter and of the diffusion, by the sinc of the
 *     square pixel and by the IPC kernel's transfer, and by a phase ramp
 *     that moves the first moment over the stamp to the origin (iterated,
 *     since the stamp's edge cuts the wings), then transformed back; the
 *     wings are rolled off to zero over the stamp's outer pixels (see
 *     rolloff()).
 *
 * Measured with the defaults (FWHM from the x and y profiles, native px):
 * R062 1.11, Y106 1.13, H158 1.38, F184 1.51, K213 1.70; noise-equivalent
 * areas within 10 % of the published ones at SCA 1 and SCA 18 in every
 * filter (docs/simulator.md).  A 3x3 field takes 0.10-0.12 s on one core
 * (R062 0.21 s, W146 0.18 s: more wavelengths), a 65x65 stamp ~40 us.
 * Below ~1.3 um the optics pass spatial frequencies above 1 cycle/pixel,
 * so native-sampled stamps alias: their centroids move by a few
 * hundredths of a pixel with the sub-pixel phase, as real undersampled
 * images do; from J129 redward they are exact to ~0.001 px.
 *
 * Conventions.  Model sample (i, j) is the pixel-convolved PSF at offset
 * ((i - m)/over, (j - m)/over) native pixels, n = 2m + 1, m = half*over +
 * over/2 (integer division): the samples m + k*over are whole-pixel steps
 * through the centre, and the grid ends at +-(half + 1/2) px when over is
 * even, half a sample inside that when it is odd.  Because the PSF is
 * convolved with the pixel, its samples at whole-pixel steps sum to the
 * same value for every sub-pixel phase; the models are scaled so that all
 * samples sum to over^2, i.e. each phase sums to 1.  Stamps interpolate a
 * model bicubically (Catmull-Rom) at the source's sub-pixel offset and are
 * renormalised to unit sum over the stamp.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/fft.h"
#include "rapid/psf.h"

#define ARCSEC_PER_RAD 206264.80624709636
#define NZERN 6        /* Z4 Z5 Z6 Z7 Z8 Z11 */
#define PUPIL_SUPER 4  /* anti-aliasing sub-samples per pupil sample side */
#define FFT_MIN 512
#define FFT_MAX 8192
#define PUPIL_MIN 60.0 /* fewest samples across the pupil */
#define OVER_MAX 15
#define HALF_MAX 100
#define NGRID_MAX 64
#define ROW_MAX (2 * HALF_MAX * OVER_MAX + 4)
#define NLAMBDA_MAX 16
#define BAND_STEP 0.15    /* fractional bandwidth per wavelength sample */
#define KSTAR_TEFF 5250.0 /* K, a K0V star */
#define HC_OVER_K 14387.77 /* um K */
#define FWHM_SUB 8      /* interpolated points per sample side */
#define CENTRE_TOL 1e-6 /* model samples */
#define ADD_HALF 32     /* stamp half-size that rapid_psf_field_add keeps on
                         * the stack */

void rapid_psf_opts_init(rapid_psf_opts *o)
{
    o->over = 4;
    o->half = 32;
    o->ngrid = 3;
    o->obscuration = 0.32;
    o->strut_width = 0.026;
    o->obscuration_wide = 0.40;
    o->strut_width_wide = 0.04;
    o->nlambda = 0;
    o->wfe_nm = 45.0;
    o->jitter_mas = 3.4;
    o->optical_only = 0;
    o->diffusion_px = 0.1;
    o->ipc_side = 0.0;
    o->ipc_diag = 0.0;
    o->wfe_field = 0.3;
}

/* ------------------------------------------------- focal-plane geometry */

/* Focal-plane coordinates in [-1, 1] of detector position (x, y), laid
 * out as the WFI's (and the simulator's) focal plane: three columns of
 * three detectors on either side of the boresight, SCA 1-9 at fx < 0 and
 * 10-18 at fx > 0, columns outwards 1-3, 4-6, 7-9 (and 10-12, 13-15,
 * 16-18), detector x towards +fx; so SCA 1-3 and 10-12 are the inner
 * columns and 7-9, 16-18 the field's edges. */
static void focal_plane(int sca, int nx, int ny, double x, double y,
                        double *fx, double *fy)
{
    int col = ((sca - 1) % 9) / 3, row = (sca - 1) % 3;
    double u = (x + 0.5) / nx;

    *fx = sca <= 9 ? (u - 1.0 - col) / 3.0 : (col + u) / 3.0;
    *fy = 2.0 * (row + (y + 0.5) / ny) / 3.0 - 1.0;
}

/* Relative Zernike coefficients (only their ratios matter; the map is
 * rescaled to its rms).  Third-order field dependence: coma grows linearly
 * with field, astigmatism and field curvature quadratically. */
static void wfe_shape(double fx, double fy, double c[NZERN])
{
    c[0] = 0.40 + 0.15 * (fx * fx + fy * fy);
    c[1] = 0.10 + 0.35 * fx * fy;
    c[2] = -0.15 + 0.175 * (fx * fx - fy * fy);
    c[3] = 0.08 + 0.30 * fy;
    c[4] = 0.12 + 0.30 * fx;
    c[5] = 0.25;
}

static double wfe_rms(const rapid_psf_opts *o, double fx, double fy)
{
    return o->wfe_nm * (1.0 + o->wfe_field * (fx * fx + fy * fy));
}

/* ---------------------------------------------------------------- pupil */

typedef struct pupil {
    int m;     /* side of the box holding the pupil, samples */
    double nd; /* pupil diameter, samples */
    float *t;  /* m*m amplitude transmission, 0..1 */
    float *z;  /* NZERN planes of m*m Zernike values */
    float *w;  /* m*m scratch: the wavefront of one model */
} pupil;

/* Unit vectors along the three spider bars (30, 90, 150 degrees). */
static const double bar_dir[3][2] = {
    {0.86602540378443865, 0.5}, {0.0, 1.0}, {-0.86602540378443865, 0.5}};

/* Is pupil point (xi, eta) (radius 1 = D/2) open behind a mask of linear
 * central obscuration obsc and strut width strut (a fraction of D)? */
static int pupil_open(double xi, double eta, double obsc, double strut)
{
    double r2 = xi * xi + eta * eta;
    int k;

    if (r2 > 1.0 || r2 < obsc * obsc)
        return 0;
    /* strut width is a fraction of D, i.e. of 2 in these units */
    for (k = 0; k < 3; k++)
        if (fabs(bar_dir[k][0] * eta - bar_dir[k][1] * xi) < strut)
            return 0;
    return 1;
}

/* Distance from (xi, eta) to the nearest edge of the mask: the rim, the
 * obscuration or a strut's side. */
static double edge_distance(double xi, double eta, double obsc, double strut)
{
    double r = hypot(xi, eta), d = fmin(fabs(r - 1.0), fabs(r - obsc));
    int k;

    for (k = 0; k < 3; k++)
        d = fmin(d, fabs(fabs(bar_dir[k][0] * eta - bar_dir[k][1] * xi) -
                         strut));
    return d;
}

static void zernikes(double xi, double eta, float *z, size_t plane)
{
    double r2 = xi * xi + eta * eta;

    z[0 * plane] = (float)(sqrt(3.0) * (2.0 * r2 - 1.0));
    z[1 * plane] = (float)(sqrt(6.0) * 2.0 * xi * eta);
    z[2 * plane] = (float)(sqrt(6.0) * (xi * xi - eta * eta));
    z[3 * plane] = (float)(sqrt(8.0) * (3.0 * r2 - 2.0) * eta);
    z[4 * plane] = (float)(sqrt(8.0) * (3.0 * r2 - 2.0) * xi);
    z[5 * plane] = (float)(sqrt(5.0) * (6.0 * r2 * r2 - 6.0 * r2 + 1.0));
}

static void pupil_free(pupil *p)
{
    free(p->t);
    free(p->z);
    free(p->w);
    memset(p, 0, sizeof *p);
}

/* Open sub-samples (of PUPIL_SUPER^2) of the pupil cell centred (x, y)
 * samples from the pupil's centre. */
static int cell_open(double x, double y, double step, double obsc,
                     double strut)
{
    int u, v, open = 0;

    for (v = 0; v < PUPIL_SUPER; v++)
        for (u = 0; u < PUPIL_SUPER; u++)
            open += pupil_open((x + (u + 0.5) / PUPIL_SUPER - 0.5) * step,
                               (y + (v + 0.5) / PUPIL_SUPER - 0.5) * step,
                               obsc, strut);
    return open;
}

/* Sample the pupil with nd samples across D. */
static int pupil_build(pupil *p, double nd, double obsc, double strut,
                       rapid_err *err)
{
    int m = (int)ceil(nd) + 2, a, b, open;
    size_t np = (size_t)m * m, s;
    double c = (m - 1) / 2.0, step = 2.0 / nd, xi, eta;

    p->m = m;
    p->nd = nd;
    p->t = calloc(np, sizeof *p->t);
    p->z = calloc(NZERN * np, sizeof *p->z);
    p->w = calloc(np, sizeof *p->w);
    if (!p->t || !p->z || !p->w) {
        pupil_free(p);
        return rapid_fail(err, RAPID_E_NOMEM,
                          "pupil of %d x %d samples: out of memory", m, m);
    }
    for (b = 0; b < m; b++)
        for (a = 0; a < m; a++) {
            s = (size_t)b * m + a;
            xi = (a - c) * step;
            eta = (b - c) * step;
            /* Only cells an edge may cross are sub-sampled: the others'
             * sub-samples (within 0.53 samples of the centre) all agree
             * with the centre. */
            if (edge_distance(xi, eta, obsc, strut) > 0.75 * step)
                open = pupil_open(xi, eta, obsc, strut) * PUPIL_SUPER *
                       PUPIL_SUPER;
            else
                open = cell_open(a - c, b - c, step, obsc, strut);
            if (!open)
                continue;
            p->t[s] = (float)open / (PUPIL_SUPER * PUPIL_SUPER);
            zernikes((a - c) * step, (b - c) * step, p->z + s, np);
        }
    return 0;
}

/* The complex pupil field for the Zernike shape c, scaled to rms_nm over
 * the pupil, at lambda_nm; written to e with row stride `stride`. */
static void pupil_efield(pupil *p, const double c[NZERN], double rms_nm,
                         double lambda_nm, float complex *e, size_t stride)
{
    size_t np = (size_t)p->m * p->m, s;
    double sw = 0, s1 = 0, s2 = 0, mean = 0, var, scale = 0, v, t;
    int j, a, b;

    for (s = 0; s < np; s++) {
        if ((t = p->t[s]) <= 0)
            continue;
        for (v = 0, j = 0; j < NZERN; j++)
            v += c[j] * p->z[j * np + s];
        p->w[s] = (float)v;
        sw += t, s1 += t * v, s2 += t * v * v;
    }
    /* Piston removed; the obscured pupil makes the Zernikes non-orthogonal,
     * so the rms is measured rather than taken from the coefficients. */
    if (sw > 0) {
        mean = s1 / sw;
        var = s2 / sw - mean * mean;
        if (var > 0)
            scale = rms_nm / sqrt(var);
    }
    for (b = 0; b < p->m; b++)
        for (a = 0; a < p->m; a++) {
            s = (size_t)b * p->m + a;
            t = p->t[s];
            v = 2.0 * M_PI * (p->w[s] - mean) * scale / lambda_nm;
            e[b * stride + a] =
                t > 0 ? (float complex)(t * cexp(I * v)) : 0.0f;
        }
}

/* ------------------------------------------------- FWHM of a sampled PSF */

static void cr_weights(double t, float w[4])
{
    w[0] = (float)(0.5 * ((-t + 2.0) * t - 1.0) * t);
    w[1] = (float)(0.5 * ((3.0 * t - 5.0) * t * t + 2.0));
    w[2] = (float)(0.5 * ((-3.0 * t + 4.0) * t + 1.0) * t);
    w[3] = (float)(0.5 * (t - 1.0) * t * t);
}

/* Catmull-Rom interpolation of an n x n image at (x, y), 0 outside. */
static double cubic_at(const float *img, int n, double x, double y)
{
    int bx = (int)floor(x), by = (int)floor(y), i, j, r, c;
    float wx[4], wy[4];
    double v = 0, row;

    cr_weights(x - bx, wx);
    cr_weights(y - by, wy);
    for (j = 0; j < 4; j++) {
        r = by - 1 + j;
        if (r < 0 || r >= n)
            continue;
        for (row = 0, i = 0; i < 4; i++) {
            c = bx - 1 + i;
            if (c >= 0 && c < n)
                row += wx[i] * img[(size_t)r * n + c];
        }
        v += wy[j] * row;
    }
    return v;
}

/* The peak of the interpolated image, searched 1/FWHM_SUB sample apart
 * around the brightest sample; 0 if the image is not positive. */
static double find_peak(const float *img, int n, double *px, double *py)
{
    size_t s, imax = 0;
    int i, j;
    double best = 0, v, x, y;

    for (s = 1; s < (size_t)n * n; s++)
        if (img[s] > img[imax])
            imax = s;
    *px = (double)(imax % n);
    *py = (double)(imax / n);
    if (!(img[imax] > 0))
        return 0;
    x = *px, y = *py;
    for (j = -FWHM_SUB; j <= FWHM_SUB; j++)
        for (i = -FWHM_SUB; i <= FWHM_SUB; i++) {
            v = cubic_at(img, n, x + (double)i / FWHM_SUB,
                         y + (double)j / FWHM_SUB);
            if (v > best) {
                best = v;
                *px = x + (double)i / FWHM_SUB;
                *py = y + (double)j / FWHM_SUB;
            }
        }
    return best;
}

/* Distance in samples from (px, py) along (dx, dy) to where the
 * interpolated image first falls below level: steps of 1/FWHM_SUB, then
 * bisection. */
static double crossing(const float *img, int n, double px, double py,
                       int dx, int dy, double level)
{
    double a = 0, b = 0, mid;
    int k, it;

    for (k = 1; k <= n * FWHM_SUB; k++) {
        b = (double)k / FWHM_SUB;
        if (cubic_at(img, n, px + dx * b, py + dy * b) < level)
            break;
        a = b;
    }
    if (k > n * FWHM_SUB)
        return NAN;
    for (it = 0; it < 30; it++) {
        mid = 0.5 * (a + b);
        if (cubic_at(img, n, px + dx * mid, py + dy * mid) < level)
            b = mid;
        else
            a = mid;
    }
    return 0.5 * (a + b);
}

/* FWHM in samples: the mean of the widths at half maximum of the x and y
 * profiles through the peak.  (The area above half maximum would make a
 * pixel-convolved PSF with a sharp core look as big as a rounder one: its
 * half-maximum contour is a square.) */
static double fwhm_profile(const float *img, int n)
{
    double px, py, level = 0.5 * find_peak(img, n, &px, &py);

    if (!(level > 0))
        return NAN;
    return 0.5 * (crossing(img, n, px, py, 1, 0, level) +
                  crossing(img, n, px, py, -1, 0, level) +
                  crossing(img, n, px, py, 0, 1, level) +
                  crossing(img, n, px, py, 0, -1, level));
}

/* ------------------------------------------------------------- bandpass */

/* Published band edges of the WFI filters (microns), by fid. */
static const double band_edges[RAPID_NFILTERS][2] = {
    {1.683, 2.000}, /* F184 */
    {1.380, 1.774}, /* H158 */
    {1.131, 1.454}, /* J129 */
    {1.950, 2.300}, /* K213 */
    {0.480, 0.760}, /* R062 */
    {0.927, 1.192}, /* Y106 */
    {0.760, 0.977}, /* Z087 */
    {0.927, 2.000}, /* W146 */
};

/* F184 and K213 sit behind the wide cold pupil mask. */
static int wide_mask(const rapid_filter *f)
{
    return f->fid == 1 || f->fid == 4;
}

/* Photons per unit wavelength from a blackbody of KSTAR_TEFF kelvin, the
 * spectrum of the K0V star the published PSF statistics use. */
static double star_photons(double lambda_um)
{
    double x = HC_OVER_K / (lambda_um * KSTAR_TEFF);

    return 1.0 / (pow(lambda_um, 4) * expm1(x));
}

/* Wavelengths across the filter: the midpoints of nl equal sub-bands,
 * weighted by the star's photons in each (flat throughput inside the
 * published edges); nl from the fractional bandwidth unless given. */
static void band_sample(const rapid_filter *f, const rapid_psf_opts *o,
                        int *nl, double *lam_um, double *wt, double *mean_um)
{
    double lo = band_edges[f->fid - 1][0], hi = band_edges[f->fid - 1][1];
    double sw = 0, sl = 0;
    int k, n = o->nlambda;

    if (n < 1)
        n = (int)ceil((hi - lo) / (0.5 * (lo + hi)) / BAND_STEP);
    if (n < 1)
        n = 1;
    if (n > NLAMBDA_MAX)
        n = NLAMBDA_MAX;
    for (k = 0; k < n; k++) {
        lam_um[k] = lo + (k + 0.5) * (hi - lo) / n;
        wt[k] = star_photons(lam_um[k]);
        sw += wt[k];
        sl += wt[k] * lam_um[k];
    }
    for (k = 0; k < n; k++)
        wt[k] /= sw;
    *nl = n;
    *mean_um = sl / sw;
}

/* ------------------------------------------------------- the FFT stages */

typedef struct layout {
    int over, half;
    int n, m;         /* model: n = 2m+1 samples, 1/over px apart */
    int q;            /* FFT samples per model sample */
    int M;            /* FFT grid side */
    int nl;           /* wavelengths sampled across the band */
    double lambda_nm[NLAMBDA_MAX];
    double wt[NLAMBDA_MAX];  /* photon weights, sum 1 */
    double nd[NLAMBDA_MAX];  /* pupil diameter on the FFT grid, samples */
} layout;

/* The FFT grid for the band's wavelengths lam_um[0..nl-1] (ascending).
 * The pupil must fit in the grid at the shortest wavelength (nd <= M):
 * then |FFT|^2 samples the optical PSF exactly at every grid point.  Below
 * 2 s D (s the FFT step) the optics are not Nyquist-sampled, so blurring by
 * the pixel in Fourier space folds the optical spectrum above 2 cycles per
 * pixel back, where the pixel transfer is below 0.22 (only R062's blue
 * end, 0.48-0.52 um at the defaults). */
static int layout_make(const rapid_psf_opts *o, int nl, const double *lam_um,
                       const double *wt, layout *L, rapid_err *err)
{
    double s = RAPID_PIXSCALE / o->over; /* model sample, arcsec */
    double ld0 = lam_um[0] * 1e-6 / RAPID_APERTURE_M * ARCSEC_PER_RAD;
    double ld1 = lam_um[nl - 1] * 1e-6 / RAPID_APERTURE_M * ARCSEC_PER_RAD;
    int need, k;

    L->over = o->over;
    L->half = o->half;
    L->m = o->half * o->over + o->over / 2;
    L->n = 2 * L->m + 1;
    L->q = (int)ceil(1.05 * s / ld0 - 1e-9);
    if (L->q < 1)
        L->q = 1;
    need = 2 * L->n * L->q;
    if (need < FFT_MIN)
        need = FFT_MIN;
    if (need < PUPIL_MIN * ld1 * L->q / s)
        need = (int)ceil(PUPIL_MIN * ld1 * L->q / s);
    for (L->M = need + (need & 1); !rapid_fft_is_fast(L->M, 0); L->M += 2)
        ;
    if (L->M > FFT_MAX)
        return rapid_fail(err, RAPID_E_ARG,
                          "a model of %d samples (half %d, over %d) needs "
                          "an FFT of %d > %d", L->n, o->half, o->over, L->M,
                          FFT_MAX);
    L->nl = nl;
    for (k = 0; k < nl; k++) {
        L->lambda_nm[k] = lam_um[k] * 1e3;
        L->wt[k] = wt[k];
        L->nd[k] = L->M * (s / L->q) /
                   (lam_um[k] * 1e-6 / RAPID_APERTURE_M * ARCSEC_PER_RAD);
    }
    return 0;
}

typedef struct fft_work {
    float complex *e;       /* M*M pupil field, then amplitude */
    float *r;               /* M*M intensity, then PSF */
    float complex *o;       /* M*(M/2+1) OTF, filtered */
    float complex *t;       /* the same, phase-shifted (c2r destroys it) */
    float complex *ex, *ey; /* phase ramps along x (M/2+1) and y (M) */
    int *ix;                /* n: FFT index of each model sample */
    float *roll;            /* n: wing roll-off along either axis */
    float *hx, *hy;         /* blur x pixel transfer along x and y */
    float *cx, *cy;         /* cos(2 pi nu) of the frequency along x and y,
                             * nu in cycles per native pixel (for IPC) */
    /* from the shared cache (estimated plans, so models are reproducible
     * bit for bit); made once per grid size, reused by every model */
    const rapid_fft_plan *amp, *otf, *psf;
} fft_work;

static void work_free(fft_work *w)
{
    rapid_fft_free(w->e);
    rapid_fft_free(w->r);
    rapid_fft_free(w->o);
    rapid_fft_free(w->t);
    free(w->ex);
    free(w->ey);
    free(w->ix);
    free(w->roll);
    free(w->hx);
    free(w->hy);
    free(w->cx);
    free(w->cy);
    memset(w, 0, sizeof *w);
}

/* sinc(pi nu P) exp(-2 pi^2 sigma^2 nu^2) at frequency index k (cycles per
 * M FFT samples): the square pixel of P samples and the Gaussian blur of
 * rms sigma samples, along one axis. */
static float transfer(int k, int M, double P, double sigma)
{
    double nu = (double)(k <= M / 2 ? k : k - M) / M, a = M_PI * nu * P;

    return (float)((a == 0 ? 1.0 : sin(a) / a) *
                   exp(-2.0 * M_PI * M_PI * sigma * sigma * nu * nu));
}

/* The wings are rolled off (raised cosine) over the last `roll` pixels
 * inside +-(half - 1/2): a stamp around the nearest pixel covers at least
 * that at every sub-pixel phase, so it always holds the whole model and
 * its first moment is the source position.  A hard edge would instead
 * bias stamp centroids by up to 0.003 px (H158) to 0.008 px (K213). */
static float rolloff(double u, int half)
{
    double roll = half / 8.0 < 1 ? 1 : half / 8.0 > 4 ? 4 : half / 8.0;
    double a = half - 0.5 - roll, d = fabs(u) - a;

    if (d <= 0)
        return 1.0f;
    return d >= roll ? 0.0f : (float)(0.5 * (1.0 + cos(M_PI * d / roll)));
}

static void work_tables(fft_work *w, const layout *L,
                        const rapid_psf_opts *o)
{
    int M = L->M, k;
    double si = RAPID_PIXSCALE / L->over / L->q; /* FFT sample, arcsec */
    double P = L->over * L->q;
    /* jitter moves the image on the sky, diffusion the charge in the
     * detector: both are Gaussian, so they add in quadrature */
    double sigma = hypot(o->jitter_mas * 1e-3,
                         o->diffusion_px * RAPID_PIXSCALE) / si;

    if (o->optical_only)
        P = 0, sigma = 0;
    for (k = 0; k <= M / 2; k++) {
        w->hx[k] = transfer(k, M, P, sigma);
        w->cx[k] = (float)cos(2.0 * M_PI * k * P / M);
    }
    for (k = 0; k < M; k++) {
        w->hy[k] = transfer(k, M, P, sigma);
        w->cy[k] = (float)cos(2.0 * M_PI * (k <= M / 2 ? k : k - M) * P / M);
    }
    for (k = 0; k < L->n; k++) {
        w->ix[k] = (((k - L->m) * L->q) % M + M) % M;
        w->roll[k] = rolloff((double)(k - L->m) / L->over, L->half);
    }
}

static int work_init(fft_work *w, const layout *L, const rapid_psf_opts *o,
                     rapid_err *err)
{
    size_t M = (size_t)L->M, nh = M / 2 + 1;
    int rc;

    memset(w, 0, sizeof *w);
    w->e = rapid_fft_alloc(M * M * sizeof *w->e);
    w->r = rapid_fft_alloc(M * M * sizeof *w->r);
    w->o = rapid_fft_alloc(M * nh * sizeof *w->o);
    w->t = rapid_fft_alloc(M * nh * sizeof *w->t);
    w->ex = malloc(nh * sizeof *w->ex);
    w->ey = malloc(M * sizeof *w->ey);
    w->ix = malloc((size_t)L->n * sizeof *w->ix);
    w->roll = malloc((size_t)L->n * sizeof *w->roll);
    w->hx = malloc(nh * sizeof *w->hx);
    w->hy = malloc(M * sizeof *w->hy);
    w->cx = malloc(nh * sizeof *w->cx);
    w->cy = malloc(M * sizeof *w->cy);
    if (!w->e || !w->r || !w->o || !w->t || !w->ex || !w->ey || !w->ix ||
        !w->roll || !w->hx || !w->hy || !w->cx || !w->cy) {
        work_free(w);
        return rapid_fail(err, RAPID_E_NOMEM,
                          "FFT grid of %zu x %zu: out of memory", M, M);
    }
    if ((rc = rapid_fft_plan_get(NULL, RAPID_FFT_FORWARD, L->M, L->M, 1,
                                 &w->amp, err)) < 0 ||
        (rc = rapid_fft_plan_get(NULL, RAPID_FFT_R2C, L->M, L->M, 0, &w->otf,
                                 err)) < 0 ||
        (rc = rapid_fft_plan_get(NULL, RAPID_FFT_C2R, L->M, L->M, 0, &w->psf,
                                 err)) < 0) {
        work_free(w);
        return rc;
    }
    work_tables(w, L, o);
    return 0;
}

/* The optical PSF at one wavelength, weight wt over its total, added to
 * w->r: the pupil field is in w->e. */
static void add_intensity(fft_work *w, const layout *L, double wt)
{
    size_t M = (size_t)L->M, s;
    double tot = 0;
    float complex a;
    float g;

    rapid_fft_c2c(w->amp, w->e, w->e);
    for (s = 0; s < M * M; s++) {
        a = w->e[s];
        tot += crealf(a) * crealf(a) + cimagf(a) * cimagf(a);
    }
    if (!(tot > 0))
        return;
    g = (float)(wt / tot);
    for (s = 0; s < M * M; s++) {
        a = w->e[s];
        w->r[s] += g * (crealf(a) * crealf(a) + cimagf(a) * cimagf(a));
    }
}

/* The OTF of the optical PSF in w->r, times the transfer of jitter,
 * diffusion and pixel, and of inter-pixel capacitance: a fraction `side`
 * of each pixel's charge to each of its 4 side neighbours and `diag` to
 * each diagonal one. */
static void filtered_otf(fft_work *w, const layout *L, double side,
                         double diag)
{
    size_t M = (size_t)L->M, nh = M / 2 + 1, kx, ky;
    float c0 = (float)(1.0 - 4.0 * side - 4.0 * diag), a = (float)(2 * side),
          d = (float)(4 * diag), cy;

    rapid_fft_r2c(w->otf, w->r, w->o);
    for (ky = 0; ky < M; ky++) {
        cy = w->cy[ky];
        for (kx = 0; kx < nh; kx++)
            w->o[ky * nh + kx] *= w->hx[kx] * w->hy[ky] *
                                  (c0 + a * (w->cx[kx] + cy) +
                                   d * w->cx[kx] * cy);
    }
}

/* The PSF moved by (dx, dy) FFT samples, cut out to model samples and
 * rolled off. */
static void shifted_model(fft_work *w, const layout *L, double dx, double dy,
                          float *dst)
{
    size_t M = (size_t)L->M, nh = M / 2 + 1, kx, ky;
    int i, j, n = L->n;
    long k;
    float complex sy;

    for (kx = 0; kx < nh; kx++)
        w->ex[kx] = (float complex)cexp(-2.0 * M_PI * I * dx * kx / M);
    for (ky = 0; ky < M; ky++) {
        k = ky <= M / 2 ? (long)ky : (long)ky - (long)M;
        w->ey[ky] = (float complex)cexp(-2.0 * M_PI * I * dy * k / M);
    }
    for (ky = 0; ky < M; ky++) {
        sy = w->ey[ky];
        for (kx = 0; kx < nh; kx++)
            w->t[ky * nh + kx] = w->o[ky * nh + kx] * sy * w->ex[kx];
    }
    rapid_fft_c2r(w->psf, w->t, w->r);
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            dst[(size_t)j * n + i] = w->r[(size_t)w->ix[j] * M + w->ix[i]] *
                                     w->roll[j] * w->roll[i];
}

/* First moment of an n x n model about its centre sample, in samples. */
static void model_moment(const float *d, int n, double *mx, double *my)
{
    double s = 0, sx = 0, sy = 0, rs, v;
    int i, j, m = (n - 1) / 2;

    for (j = 0; j < n; j++) {
        for (rs = 0, i = 0; i < n; i++) {
            v = d[(size_t)j * n + i];
            rs += v;
            sx += v * (i - m);
        }
        s += rs;
        sy += rs * (j - m);
    }
    *mx = s != 0 ? sx / s : 0;
    *my = s != 0 ? sy / s : 0;
}

/* One model: for every wavelength, the pupil field for the Zernike shape
 * c at rms_nm and its optical PSF, summed with the band's weights; then
 * blur, pixel and IPC, centred and normalised (all samples sum to
 * over^2).  p holds one pupil per wavelength. */
static void model_make(fft_work *w, pupil *p, const layout *L,
                       const rapid_psf_opts *o, const double c[NZERN],
                       double rms_nm, float *dst)
{
    size_t M = (size_t)L->M, off;
    size_t nn = (size_t)L->n * L->n, s;
    double dx = 0, dy = 0, mx, my, sum = 0, side = 0, diag = 0;
    int it, k;

    memset(w->r, 0, M * M * sizeof *w->r);
    for (k = 0; k < L->nl; k++) {
        off = (M - p[k].m) / 2 * (M + 1);
        memset(w->e, 0, M * M * sizeof *w->e);
        pupil_efield(&p[k], c, rms_nm, L->lambda_nm[k], w->e + off, M);
        add_intensity(w, L, L->wt[k]);
    }
    if (!o->optical_only)
        side = o->ipc_side, diag = o->ipc_diag;
    filtered_otf(w, L, side, diag);
    /* Shifting by d moves the windowed moment by d less what the window
     * cuts off (~1%), so a few steps reach CENTRE_TOL. */
    for (it = 0; it < 8; it++) {
        shifted_model(w, L, dx, dy, dst);
        model_moment(dst, L->n, &mx, &my);
        if (fabs(mx) < CENTRE_TOL && fabs(my) < CENTRE_TOL)
            break;
        dx -= mx * L->q;
        dy -= my * L->q;
    }
    for (s = 0; s < nn; s++)
        sum += dst[s];
    for (s = 0; s < nn; s++)
        dst[s] = (float)(dst[s] * L->over * L->over / sum);
}

/* ------------------------------------------------------------ the field */

static int check_args(const rapid_filter *filter, int sca, int nx, int ny,
                      const rapid_psf_opts *o, rapid_err *err)
{
    if (!filter)
        return rapid_fail(err, RAPID_E_ARG, "PSF: no filter given (NULL)");
    if (sca < 1 || sca > RAPID_NSCA)
        return rapid_fail(err, RAPID_E_ARG,
                          "PSF for %s: SCA %d is out of range 1..%d",
                          filter->name, sca, RAPID_NSCA);
    if (nx <= 0 || ny <= 0)
        return rapid_fail(err, RAPID_E_ARG,
                          "PSF for %s SCA %d: detector size %d x %d is not "
                          "positive", filter->name, sca, nx, ny);
    if (o->over < 1 || o->over > OVER_MAX || o->half < 1 ||
        o->half > HALF_MAX || o->ngrid < 1 || o->ngrid > NGRID_MAX)
        return rapid_fail(err, RAPID_E_ARG,
                          "PSF: oversampling %d (1..%d), half-size %d "
                          "(1..%d) or grid %d (1..%d) out of range",
                          o->over, OVER_MAX, o->half, HALF_MAX, o->ngrid,
                          NGRID_MAX);
    if (!(o->obscuration_wide >= 0 && o->obscuration_wide < 0.9) ||
        !(o->strut_width_wide >= 0 && o->strut_width_wide < 0.2) ||
        o->nlambda < 0 || o->nlambda > NLAMBDA_MAX ||
        !(o->ipc_side >= 0 && o->ipc_side < 0.1) ||
        !(o->ipc_diag >= 0 && o->ipc_diag < 0.1) ||
        !(o->wfe_field >= 0 && o->wfe_field <= 10))
        return rapid_fail(err, RAPID_E_ARG,
                          "PSF: wide-mask obscuration %g (0..0.9) or strut "
                          "width %g (0..0.2), wavelengths %d (0..%d), IPC "
                          "%g, %g (0..0.1) or WFE growth %g (0..10) out of "
                          "range", o->obscuration_wide, o->strut_width_wide,
                          o->nlambda, NLAMBDA_MAX, o->ipc_side, o->ipc_diag,
                          o->wfe_field);
    if (!(o->obscuration >= 0 && o->obscuration < 0.9) ||
        !(o->strut_width >= 0 && o->strut_width < 0.2) ||
        !(o->wfe_nm >= 0 && o->wfe_nm <= 1000) ||
        !(o->jitter_mas >= 0 && o->jitter_mas <= 1000) ||
        !(o->diffusion_px >= 0 && o->diffusion_px <= 10))
        return rapid_fail(err, RAPID_E_ARG,
                          "PSF: obscuration %g (0..0.9), strut width %g "
                          "(0..0.2), WFE %g nm (0..1000), jitter %g mas "
                          "(0..1000) or diffusion %g px (0..10) out of range",
                          o->obscuration, o->strut_width, o->wfe_nm,
                          o->jitter_mas, o->diffusion_px);
    return 0;
}

void rapid_psf_field_release(rapid_psf_field *f)
{
    int i;

    if (!f)
        return;
    if (f->models)
        for (i = 0; i < f->ngrid * f->ngrid; i++)
            free(f->models[i].data);
    free(f->models);
    memset(f, 0, sizeof *f);
}

/* Detector position of grid model i (either axis). */
static double grid_pos(int i, int ngrid, int size)
{
    return (i + 0.5) * size / ngrid - 0.5;
}

static int make_models(rapid_psf_field *f, fft_work *w, pupil *p,
                       const layout *L, rapid_err *err)
{
    int g = f->ngrid, i, j;
    double fx, fy, c[NZERN];
    rapid_psf_model *md;

    f->models = calloc((size_t)g * g, sizeof *f->models);
    if (!f->models)
        return rapid_fail(err, RAPID_E_NOMEM, "%d models: out of memory",
                          g * g);
    for (j = 0; j < g; j++)
        for (i = 0; i < g; i++) {
            md = &f->models[j * g + i];
            md->n = L->n;
            md->over = L->over;
            md->data = malloc((size_t)L->n * L->n * sizeof *md->data);
            if (!md->data)
                return rapid_fail(err, RAPID_E_NOMEM,
                                  "model of %d x %d: out of memory",
                                  L->n, L->n);
            focal_plane(f->sca, f->nx, f->ny, grid_pos(i, g, f->nx),
                        grid_pos(j, g, f->ny), &fx, &fy);
            wfe_shape(fx, fy, c);
            model_make(w, p, L, &f->opts, c, wfe_rms(&f->opts, fx, fy),
                       md->data);
        }
    return 0;
}

int rapid_psf_field_make(rapid_psf_field *f, const rapid_filter *filter,
                         int sca, int nx, int ny, const rapid_psf_opts *opts,
                         rapid_err *err)
{
    rapid_psf_opts o;
    layout L = {0};
    pupil p[NLAMBDA_MAX];
    fft_work w = {0};
    double lam[NLAMBDA_MAX], wt[NLAMBDA_MAX], mean = 0, obsc, strut;
    int rc, nl = 0, k, np = 0;

    memset(p, 0, sizeof p);
    if (!f)
        return rapid_fail(err, RAPID_E_ARG, "PSF: no field to fill (NULL)");
    memset(f, 0, sizeof *f);
    if (opts)
        o = *opts;
    else
        rapid_psf_opts_init(&o);
    if ((rc = check_args(filter, sca, nx, ny, &o, err)) < 0)
        return rc;
    f->filter = filter;
    f->sca = sca;
    f->nx = nx;
    f->ny = ny;
    f->opts = o;
    f->ngrid = o.ngrid;
    f->wide_mask = wide_mask(filter);
    obsc = f->wide_mask ? o.obscuration_wide : o.obscuration;
    strut = f->wide_mask ? o.strut_width_wide : o.strut_width;
    band_sample(filter, &o, &nl, lam, wt, &mean);
    f->lambda_um = mean;
    f->lambda_min_um = band_edges[filter->fid - 1][0];
    f->lambda_max_um = band_edges[filter->fid - 1][1];
    f->nlambda = nl;
    if ((rc = layout_make(&o, nl, lam, wt, &L, err)) < 0)
        goto cleanup;
    for (np = 0; np < nl; np++)
        if ((rc = pupil_build(&p[np], L.nd[np], obsc, strut, err)) < 0)
            goto cleanup;
    if ((rc = work_init(&w, &L, &o, err)) < 0)
        goto cleanup;
    rc = make_models(f, &w, p, &L, err);

cleanup:
    work_free(&w);
    for (k = 0; k < np; k++)
        pupil_free(&p[k]);
    if (rc < 0) {
        rapid_err_prefix(err, "PSF for %s SCA %d", filter->name, sca);
        rapid_psf_field_release(f);
    }
    return rc;
}

/* ------------------------------------------------------ sampling a field */

/* Up to four models and their bilinear weights at a detector position. */
typedef struct blend {
    const float *d[4];
    float w[4];
    int k;
} blend;

static void blend_axis(double x, int size, int g, int *i0, double *t)
{
    double u = (x + 0.5) * g / size - 0.5;

    if (!(u > 0))
        u = 0;
    if (u > g - 1)
        u = g - 1;
    *i0 = g > 1 && (int)u > g - 2 ? g - 2 : (int)u;
    *t = u - *i0;
}

static void blend_at(const rapid_psf_field *f, double x, double y, blend *b)
{
    int g = f->ngrid, i0, j0, i, j;
    double tx, ty, w;

    blend_axis(x, f->nx, g, &i0, &tx);
    blend_axis(y, f->ny, g, &j0, &ty);
    b->k = 0;
    for (j = 0; j < 2 && j0 + j < g; j++)
        for (i = 0; i < 2 && i0 + i < g; i++) {
            w = (i ? tx : 1 - tx) * (j ? ty : 1 - ty);
            if (w <= 0)
                continue;
            b->d[b->k] = f->models[(j0 + j) * g + i0 + i].data;
            b->w[b->k++] = (float)w;
        }
}

/* y = sum over s of w[s] * src[s][0 .. len-1], in blocks of 8 that the
 * compiler vectorises at -O2. */
static void combine(float *restrict y, const float *const *src,
                    const float *w, int ns, int len)
{
    int i, j, s;
    float acc[8], a;

    for (i = 0; i + 8 <= len; i += 8) {
        for (j = 0; j < 8; j++)
            acc[j] = 0;
        for (s = 0; s < ns; s++)
            for (j = 0; j < 8; j++)
                acc[j] += w[s] * src[s][i + j];
        for (j = 0; j < 8; j++)
            y[i + j] = acc[j];
    }
    for (; i < len; i++) {
        for (a = 0, s = 0; s < ns; s++)
            a += w[s] * src[s][i];
        y[i] = a;
    }
}

/* Native pixels k, l = -h..h of the blended model at offsets (k - dx,
 * l - dy) px, |dx|, |dy| <= 1/2, by Catmull-Rom interpolation; written to
 * out with row stride `stride`; returns their sum.  The interpolation
 * weights are the same for every pixel, so each output row is one
 * weighted sum of 4 model rows per model, then 4 taps per pixel. */
static double render(const rapid_psf_field *f, const blend *b, double dx,
                     double dy, int h, float *out, int stride)
{
    int n = f->models[0].n, m = (n - 1) / 2, over = f->models[0].over;
    double tx = m - dx * over, ty = m - dy * over, sum = 0, v;
    int bx = (int)floor(tx), by = (int)floor(ty), c0, len, lo, hi;
    int k, l, t, g, r, ns;
    float wx[4], wy[4], row[ROW_MAX], sw[16];
    const float *src[16], *p;

    cr_weights(tx - bx, wx);
    cr_weights(ty - by, wy);
    c0 = bx - 1 - h * over; /* first column of the first tap */
    len = 2 * h * over + 4;
    lo = c0 > 0 ? c0 : 0;
    hi = c0 + len < n ? c0 + len : n;
    memset(row, 0, (size_t)len * sizeof *row);
    for (l = -h; l <= h; l++) {
        for (ns = 0, t = 0; t < 4; t++) {
            r = by - 1 + l * over + t;
            if (r < 0 || r >= n)
                continue;
            for (g = 0; g < b->k; g++) {
                src[ns] = b->d[g] + (size_t)r * n + lo;
                sw[ns++] = b->w[g] * wy[t];
            }
        }
        if (hi > lo)
            combine(row + (lo - c0), src, sw, ns, hi - lo);
        for (k = -h; k <= h; k++) {
            p = row + (k + h) * over;
            v = wx[0] * p[0] + wx[1] * p[1] + wx[2] * p[2] + wx[3] * p[3];
            out[(size_t)(l + h) * stride + (k + h)] = (float)v;
            sum += v;
        }
    }
    return sum;
}

/* Positions beyond this are not on any detector (and would overflow int). */
static int position_ok(double x, double y)
{
    return fabs(x) < 1e8 && fabs(y) < 1e8;
}

void rapid_psf_field_stamp(const rapid_psf_field *f, double x, double y,
                           int half, float *out, int *ix0, int *iy0)
{
    int side = 2 * half + 1, h, cx = 0, cy = 0;
    size_t np = (size_t)side * side, s;
    double sum;
    blend b;

    if (half < 0 || !out)
        return;
    memset(out, 0, np * sizeof *out);
    if (position_ok(x, y)) {
        cx = (int)floor(x + 0.5);
        cy = (int)floor(y + 0.5);
    }
    *ix0 = cx - half;
    *iy0 = cy - half;
    if (!f || !f->models || !position_ok(x, y))
        return;
    h = half < f->opts.half ? half : f->opts.half;
    blend_at(f, x, y, &b);
    sum = render(f, &b, x - cx, y - cy, h,
                 out + (size_t)(half - h) * side + (half - h), side);
    if (sum > 0)
        for (s = 0; s < np; s++)
            out[s] = (float)(out[s] / sum);
}

void rapid_psf_field_add(const rapid_psf_field *f, float *img, int nx,
                         int ny, double x, double y, double flux)
{
    float local[(2 * ADD_HALF + 1) * (2 * ADD_HALF + 1)], *st = local;
    int half, side, ix0, iy0, i, j, xi, yj;

    if (!f || !f->models || !img || !position_ok(x, y))
        return;
    half = f->opts.half;
    if (floor(x + 0.5) + half < 0 || floor(x + 0.5) - half > nx - 1 ||
        floor(y + 0.5) + half < 0 || floor(y + 0.5) - half > ny - 1)
        return;
    if (half > ADD_HALF) {
        st = malloc((size_t)(2 * half + 1) * (2 * half + 1) * sizeof *st);
        /* Without memory, keep the stack stamp: only far wings are lost. */
        if (!st)
            st = local, half = ADD_HALF;
    }
    side = 2 * half + 1;
    rapid_psf_field_stamp(f, x, y, half, st, &ix0, &iy0);
    for (j = 0; j < side; j++) {
        yj = iy0 + j;
        if (yj < 0 || yj >= ny)
            continue;
        for (i = 0; i < side; i++) {
            xi = ix0 + i;
            if (xi >= 0 && xi < nx)
                img[(size_t)yj * nx + xi] += (float)(flux * st[j * side + i]);
        }
    }
    if (st != local)
        free(st);
}

double rapid_psf_fwhm(const rapid_psf_field *f, double x, double y)
{
    size_t nn, s;
    float *img;
    double fw;
    blend b;
    int g;

    if (!f || !f->models || !position_ok(x, y))
        return NAN;
    nn = (size_t)f->models[0].n * f->models[0].n;
    if (!(img = calloc(nn, sizeof *img)))
        return NAN;
    blend_at(f, x, y, &b);
    for (g = 0; g < b.k; g++)
        for (s = 0; s < nn; s++)
            img[s] += b.w[g] * b.d[g][s];
    fw = fwhm_profile(img, f->models[0].n) / f->models[0].over;
    free(img);
    return fw;
}

/* ------------------------------------------------------- the PSF file */

static int image_header(const rapid_psf_field *f, double fwhm,
                        rapid_header *h, rapid_err *err)
{
    const char *key = "FILTER";
    int rc;

    if ((rc = rapid_header_set_str(h, key, f->filter->name,
                                   "Roman WFI filter")) < 0 ||
        (rc = rapid_header_set_long(h, key = "SCA_NUM", f->sca,
                                    "detector 1..18")) < 0 ||
        (rc = rapid_header_set_long(h, key = "PSFOVER", 1,
                                    "PSF oversampling (native pixels)")) < 0 ||
        (rc = rapid_header_set_double(h, key = "PIXSCALE", RAPID_PIXSCALE,
                                      "[arcsec/pixel]")) < 0 ||
        (rc = rapid_header_set_double(h, key = "WAVELEN", f->lambda_um,
                                      "[um] photon-weighted mean")) < 0 ||
        (rc = rapid_header_set_double(h, key = "LAMMIN", f->lambda_min_um,
                                      "[um] band's blue edge")) < 0 ||
        (rc = rapid_header_set_double(h, key = "LAMMAX", f->lambda_max_um,
                                      "[um] band's red edge")) < 0 ||
        (rc = rapid_header_set_long(h, key = "NLAMBDA", f->nlambda,
                                    "wavelengths summed (K0V photons)")) < 0 ||
        (rc = rapid_header_set_str(h, key = "PUPMASK",
                                   f->wide_mask ? "WIDE" : "SKINNY",
                                   "cold pupil mask")) < 0 ||
        (rc = rapid_header_set_double(h, key = "FWHM", fwhm,
                                      "[pixel] measured FWHM")) < 0 ||
        (rc = rapid_header_set_double(h, key = "OBSCUR",
                                      f->wide_mask ? f->opts.obscuration_wide
                                                   : f->opts.obscuration,
                                      "central obscuration, linear")) < 0 ||
        (rc = rapid_header_set_double(h, key = "STRUTW",
                                      f->wide_mask ? f->opts.strut_width_wide
                                                   : f->opts.strut_width,
                                      "spider strut width / D")) < 0 ||
        (rc = rapid_header_set_double(h, key = "WFE_NM", f->opts.wfe_nm,
                                      "[nm] rms WFE at focal-plane centre")) <
            0 ||
        (rc = rapid_header_set_double(h, key = "JITTER", f->opts.jitter_mas,
                                      "[mas] rms pointing jitter per axis")) <
            0 ||
        (rc = rapid_header_set_double(h, key = "DIFFUSE", f->opts.diffusion_px,
                                      "[pixel] rms charge diffusion")) < 0 ||
        (rc = rapid_header_add_text(
             h, key = "COMMENT",
             "Model PSF at the detector centre, native pixels, unit sum: "
             "obscured pupil with 6 struts, field-dependent Zernike WFE, "
             "summed over the band, jitter, charge diffusion and pixel "
             "convolved. Dimensionless. Extension OVERSAMP: the same, "
             "oversampled.")) < 0)
        return rapid_fail(err, rc, "PSF image: cannot set header card %s",
                          key);
    return 0;
}

int rapid_psf_field_image(const rapid_psf_field *f, int size, rapid_image *out,
                          rapid_err *err)
{
    double xc, yc, sum;
    int h, hh, rc;
    size_t s;
    blend b;

    if (!f || !f->models || !f->filter)
        return rapid_fail(err, RAPID_E_ARG, "PSF image: no PSF field made");
    if (size < 1 || size % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG,
                          "PSF image for %s SCA %d: size %d is not odd and "
                          "positive", f->filter->name, f->sca, size);
    if ((rc = rapid_image_alloc(out, size, size, 0.0f, err)) < 0)
        return rc;
    xc = (f->nx - 1) / 2.0;
    yc = (f->ny - 1) / 2.0;
    h = (size - 1) / 2;
    hh = h < f->opts.half ? h : f->opts.half;
    /* The model at the centre, but with no sub-pixel offset: the PSF file
     * is centred on its middle pixel whatever the detector parity. */
    blend_at(f, xc, yc, &b);
    sum = render(f, &b, 0.0, 0.0, hh,
                 out->data + (size_t)(h - hh) * size + (h - hh), size);
    for (s = 0; s < (size_t)size * size && sum > 0; s++)
        out->data[s] = (float)(out->data[s] / sum);
    rc = image_header(f, rapid_psf_fwhm(f, xc, yc), &out->hdr, err);
    if (rc < 0)
        rapid_image_release(out);
    return rc;
}

int rapid_psf_field_oversampled(const rapid_psf_field *f, rapid_image *out,
                                rapid_err *err)
{
    const char *key = "OVERSAMP";
    size_t nn, s;
    double sum = 0;
    int n, g, rc;
    blend b;

    if (!f || !f->models || !f->filter)
        return rapid_fail(err, RAPID_E_ARG,
                          "oversampled PSF: no PSF field made");
    n = f->models[0].n;
    nn = (size_t)n * n;
    if ((rc = rapid_image_alloc(out, n, n, 0.0f, err)) < 0)
        return rc;
    blend_at(f, (f->nx - 1) / 2.0, (f->ny - 1) / 2.0, &b);
    for (g = 0; g < b.k; g++)
        for (s = 0; s < nn; s++)
            out->data[s] += b.w[g] * b.d[g][s];
    for (s = 0; s < nn; s++)
        sum += out->data[s];
    for (s = 0; s < nn && sum > 0; s++)
        out->data[s] = (float)(out->data[s] / sum);
    if ((rc = rapid_header_set_long(&out->hdr, key, f->models[0].over,
                                    "samples per native pixel")) < 0 ||
        (rc = rapid_header_set_str(&out->hdr, key = "FILTER",
                                   f->filter->name, "Roman WFI filter")) <
            0 ||
        (rc = rapid_header_set_long(&out->hdr, key = "SCA_NUM", f->sca,
                                    "detector 1..18")) < 0 ||
        (rc = rapid_header_set_double(&out->hdr, key = "PIXSCALE",
                                      RAPID_PIXSCALE / f->models[0].over,
                                      "[arcsec/sample]")) < 0 ||
        (rc = rapid_header_set_str(&out->hdr, key = "PSFTYPE", "EFFECTIVE",
                                   "pixel-convolved (effective) PSF")) < 0 ||
        (rc = rapid_header_add_text(
             &out->hdr, key = "COMMENT",
             "The primary HDU's PSF before sampling at native pixels: "
             "convolved with the pixel, sampled every 1/OVERSAMP pixel, "
             "centred on the middle sample, unit sum. Every OVERSAMP-th "
             "sample through a point, times OVERSAMP^2, is the native PSF "
             "of a source that far from the pixel centres.")) < 0) {
        rapid_image_release(out);
        return rapid_fail(err, rc, "oversampled PSF: cannot set header card "
                          "%s", key);
    }
    return 0;
}

int rapid_psf_field_write(const rapid_psf_field *f, const char *path,
                          rapid_err *err)
{
    rapid_image nat = RAPID_IMAGE_INIT, ovs = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    int rc;

    if (!f || !f->models)
        return rapid_fail(err, RAPID_E_ARG, "%s: no PSF field made",
                          path ? path : "PSF file");
    if ((rc = rapid_psf_field_image(f, 2 * f->opts.half + 1, &nat, err)) <
            0 ||
        (rc = rapid_psf_field_oversampled(f, &ovs, err)) < 0 ||
        (rc = rapid_fits_create(&out, path, err)) < 0)
        goto cleanup;
    if ((rc = rapid_fits_append_image(out, &nat, NULL, err)) == 0 &&
        (rc = rapid_fits_append_image(out, &ovs, "OVERSAMP", err)) == 0) {
        rc = rapid_fits_commit(out, err);
        out = NULL;
    }
cleanup:
    if (out)
        rapid_fits_abort(out);
    rapid_image_release(&nat);
    rapid_image_release(&ovs);
    return rc;
}
