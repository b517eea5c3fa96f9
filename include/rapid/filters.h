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
#define RAPID_READNOISE 8.5       /* e: assumed for a file without RDNOISE */
#define RAPID_FRAME_TIME 3.04     /* s between reads of the detector */
#define RAPID_FRAME_NOISE 12.2    /* e rms in one read */
#define RAPID_DARK 0.015          /* e/s */
#define RAPID_SATURATION 100000.0 /* DN: assumed for a file without SATURATE */
#define RAPID_FULL_WELL 65535.0   /* DN: where simulated pixels saturate */
#define RAPID_APERTURE_M 2.36     /* primary mirror diameter, metres */

typedef struct rapid_filter {
    int fid;             /* database id, 1..8 */
    const char *name;    /* as in the database and FILTER: "H158" */
    const char *alias;   /* the F-number name: "F158" */
    double lambda_um;    /* effective wavelength, microns */
    double fwhm_arcsec;  /* optical PSF FWHM */
    double zp_ab;        /* AB magnitude giving 1 e/s on SCA 1 */
    double zodi;         /* zodiacal light at its minimum (toward the
                          * ecliptic pole), e/pixel/s; rapid_zodi_factor
                          * (rapid/sim.h) scales it elsewhere */
    double thermal;      /* thermal background, e/pixel/s */
} rapid_filter;

/* Read noise (e) of an exposure of t seconds whose signal is the slope
 * fitted up the ramp to all its reads (one every RAPID_FRAME_TIME): for n
 * reads with noise s each, s sqrt(12 (n - 1) / (n (n + 1))).  The noise
 * per read is set so that a 170 s exposure has 5.6 e total (the figure the
 * Roman project publishes); 140 s gives 6.1 e, 302 s 4.2 e, 901 s 2.5 e. */
double rapid_read_noise(double t);

/* AB magnitude giving 1 e/s in filter f on detector sca (1..18): the
 * detectors' throughputs differ by up to 0.18 mag; zp_ab is SCA 1's, and
 * what a sca outside 1..18 gets.  NaN for a NULL filter. */
double rapid_zero_point(const rapid_filter *f, int sca);

/* By database name or F-number alias, case-insensitive ("H158", "f158");
 * NULL if unknown. */
const rapid_filter *rapid_filter_by_name(const char *name);
/* By fid 1..8; NULL if out of range. */
const rapid_filter *rapid_filter_by_fid(int fid);

#ifdef __cplusplus
}
#endif
#endif
