/* rapid/filters.h - the Roman WFI filters and instrument constants. */
#ifndef RAPID_FILTERS_H
#define RAPID_FILTERS_H

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_NFILTERS 8
#define RAPID_NSCA 18
#define RAPID_SCA_PIX 4088        /* active pixels per side */
#define RAPID_PIXSCALE 0.11       /* arcsec/pixel */
#define RAPID_GAIN 1.0            /* e/DN */
#define RAPID_READNOISE 8.5       /* e */
#define RAPID_DARK 0.015          /* e/s */
#define RAPID_SATURATION 100000.0 /* DN */
#define RAPID_APERTURE_M 2.36     /* primary mirror diameter, metres */

typedef struct rapid_filter {
    int fid;             /* database id, 1..8 */
    const char *name;    /* as in the database and FILTER: "H158" */
    const char *alias;   /* the F-number name: "F158" */
    double lambda_um;    /* effective wavelength, microns */
    double fwhm_arcsec;  /* optical PSF FWHM */
    double zp_ab;        /* AB magnitude giving 1 e/s */
    double zodi;         /* zodiacal light, e/pixel/s */
    double thermal;      /* thermal background, e/pixel/s */
} rapid_filter;

/* By database name or F-number alias, case-insensitive ("H158", "f158");
 * NULL if unknown. */
const rapid_filter *rapid_filter_by_name(const char *name);
/* By fid 1..8; NULL if out of range. */
const rapid_filter *rapid_filter_by_fid(int fid);

#ifdef __cplusplus
}
#endif
#endif
