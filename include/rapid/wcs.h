/* rapid/wcs.h - world coordinates (WCSLIB): TAN, TAN-SIP and TPV.
 *
 * Pixel coordinates in this API are 0-based: (0, 0) is the centre of the
 * first pixel, so FITS pixel p corresponds to p - 1 here (as in SEP and
 * astropy's origin=0).  Sky coordinates are ICRS degrees.
 *
 * A rapid_wcs is not safe to use from two threads at once (WCSLIB keeps
 * scratch space in it); give each thread its own with rapid_wcs_copy().
 */
#ifndef RAPID_WCS_H
#define RAPID_WCS_H

#include "rapid/error.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_SIP_MAXORDER 9

typedef enum rapid_wcs_kind {
    RAPID_WCS_TAN = 0,
    RAPID_WCS_TAN_SIP = 1,
    RAPID_WCS_TPV = 2,
    RAPID_WCS_OTHER = 3 /* any other projection WCSLIB understands */
} rapid_wcs_kind;

/* SIP coefficients as in the header: a[p][q] is A_p_q (0 if absent). */
typedef struct rapid_sip {
    int a_order, b_order, ap_order, bp_order; /* 0 when absent */
    double a[RAPID_SIP_MAXORDER + 1][RAPID_SIP_MAXORDER + 1];
    double b[RAPID_SIP_MAXORDER + 1][RAPID_SIP_MAXORDER + 1];
    double ap[RAPID_SIP_MAXORDER + 1][RAPID_SIP_MAXORDER + 1];
    double bp[RAPID_SIP_MAXORDER + 1][RAPID_SIP_MAXORDER + 1];
} rapid_sip;

typedef struct rapid_wcs {
    rapid_wcs_kind kind;
    int nx, ny;          /* image size (NAXISn) if known, else 0 */
    double crval[2];     /* degrees */
    double crpix[2];     /* FITS 1-based, as in the header */
    double cd[2][2];     /* degrees/pixel */
    rapid_sip sip;       /* valid when kind == RAPID_WCS_TAN_SIP */
    void *prm;           /* struct wcsprm *, owned */
} rapid_wcs;

#define RAPID_WCS_INIT {RAPID_WCS_TAN, 0, 0, {0, 0}, {0, 0}, {{0, 0}, {0, 0}}, {0}, NULL}

/* Build from a header (primary or extension cards).  Needs a celestial
 * WCS with CRVAL1, CRVAL2, CRPIX1, CRPIX2 and a scale (CD1_1 and CD2_2,
 * or CDELT1 and CDELT2 with PCi_j or CROTA2) present: FITS defaults for
 * them would misplace the image, so RAPID_E_WCS names every one missing.
 * RAPID_E_WCS with the reason for any other fault.  nx, ny come from NAXISn
 * when present (rapid_fits_read_image drops them: pass img->nx/ny then). */
int rapid_wcs_from_header(rapid_wcs *w, const rapid_header *h, rapid_err *err);
/* A north-up, east-left TAN grid of nx*ny pixels of scale arcsec/pixel,
 * centred on (ra, dec): CRPIX at the grid centre. */
int rapid_wcs_tan_grid(rapid_wcs *w, double ra, double dec, int nx, int ny,
                       double scale_arcsec, rapid_err *err);
/* A TAN or TAN-SIP WCS from explicit terms (sip NULL: plain TAN). */
int rapid_wcs_from_terms(rapid_wcs *w, const double crval[2],
                         const double crpix[2], const double cd[2][2],
                         const rapid_sip *sip, int nx, int ny, rapid_err *err);
int rapid_wcs_copy(rapid_wcs *dst, const rapid_wcs *src, rapid_err *err);
void rapid_wcs_release(rapid_wcs *w);

/* Pixel (0-based) -> sky for n points; arrays may not alias.  Points that
 * cannot be transformed get NaN and the call returns RAPID_E_WCS. */
int rapid_wcs_pix2sky(rapid_wcs *w, int n, const double *x, const double *y,
                      double *ra, double *dec, rapid_err *err);
/* Sky -> pixel (0-based).  SIP is inverted exactly (iteratively). */
int rapid_wcs_sky2pix(rapid_wcs *w, int n, const double *ra, const double *dec,
                      double *x, double *y, rapid_err *err);

/* Footprint of an nx*ny image: ra[0], dec[0] the centre; then the four
 * outer corners ordered as tile corners are (docs/tessellation.md): starting at the one
 * towards (ramin, decmin) and turning through (ramax, decmin), (ramax,
 * decmax), (ramin, decmax).  nx, ny <= 0 use the WCS's own size. */
int rapid_wcs_footprint(rapid_wcs *w, int nx, int ny, double ra[5],
                        double dec[5], rapid_err *err);

/* Write the WCS into h (replacing any WCS cards there), including SIP or
 * TPV terms, so that rapid_wcs_from_header(h) reproduces it. */
int rapid_wcs_to_header(const rapid_wcs *w, rapid_header *h, rapid_err *err);

/* Pixel scale at the reference point, arcsec/pixel (sqrt |det CD|). */
double rapid_wcs_pixscale(const rapid_wcs *w);

/* Angular distance in degrees between two sky positions. */
double rapid_sky_distance(double ra1, double dec1, double ra2, double dec2);

#ifdef __cplusplus
}
#endif
#endif
