/* rapid/sim.h - a Roman WFI time-domain survey simulator.
 *
 * Makes what no real data can give us here: L2 images with the keywords of
 * Roman L2 files (docs/simulator.md) and a 4th-order TAN-SIP WCS, a PSF file per (detector, filter), and
 * truth tables.  The sky holds stars (realistic number-magnitude slope),
 * Sersic galaxies down to ~28 mag, supernova-like transients (on nuclei,
 * offset in hosts, hostless) and variable stars.  Images carry sky
 * (zodiacal + thermal), dark current, Poisson and read noise, gain,
 * saturation, cosmic rays, hot pixels and a map of detector defects, with
 * the SCI, ERR and DQ extensions of Roman L2 files (rapid/dq.h).  Everything is deterministic for
 * a seed, whatever order images are made in.
 */
#ifndef RAPID_SIM_H
#define RAPID_SIM_H

#include <stdint.h>

#include "rapid/error.h"
#include "rapid/filters.h"
#include "rapid/fits.h"
#include "rapid/psf.h"
#include "rapid/tile_export.h" /* rapid_progress_fn */
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_sim_config {
    uint64_t seed;           /* 1 */
    int size;                /* pixels per detector side (4088) */
    double ra, dec;          /* field centre, degrees (9.6, -44.0) */
    int ntiles;              /* sky tiles to cover around it (1) */
    int nfilters;            /* filters observed every epoch (1: H158) */
    const rapid_filter *filters[RAPID_NFILTERS];
    int epochs;              /* visits (5) */
    double cadence_days;     /* days between visits (5) */
    double mjd_start;        /* first visit (2028-09-07 00:00:00 UTC) */
    int nscas;               /* detectors used, the first n of 18 (18) */
    double exptime;          /* seconds; 0 (default): per filter, as
                              * rapid_sim_exptime() gives */
    int gzip;                /* write .fits.gz */
    /* scene */
    double star_density;     /* multiplier on the star counts (1) */
    double galaxy_density;   /* multiplier on the galaxy counts (1) */
    double mag_faint;        /* faintest source magnitude (28) */
    double mag_bright;       /* brightest star magnitude, H158 (8; 16 leaves
                              * out the stars that saturate) */
    double sn_rate;          /* multiplier on the published volumetric
                              * supernova rates (1); 0: no supernovae */
    double variable_fraction;/* fraction of stars that vary (0.05) */
    int cosmic_rays;         /* per image (~ rate x exptime: 30) */
    double jump_sigma;       /* cosmic rays depositing more than this many
                              * sigma of a pixel's ramp noise are found by
                              * the up-the-ramp fit: removed from SCI and
                              * flagged JUMP_DET (5); 0: none are found,
                              * every cosmic ray stays in SCI unflagged */
    int hot_pixels;          /* per detector, not flagged in DQ: defects a
                              * pipeline does not know of yet (20) */
    int defects;             /* 1: the detector's defect map (1.7 % of the
                              * pixels hot, dead or low-QE, flagged in DQ;
                              * fixed per detector); 0: none (1) */
    int persistence;         /* 1: a pixel filled near or past saturation
                              * in an earlier exposure of the detector (up
                              * to 6 h before) leaves a decaying excess in
                              * later ones, flagged PERSISTENCE where that
                              * pixel saturated (rapid_sim_render_after);
                              * 0: none (1) */
    int with_sources;        /* 0: sky, dark and noise only (for checks) */
    int with_noise;          /* 0: noiseless expectation (for checks) */
    double psf_visit_blur;   /* mas; > 0: every visit's PSF is blurred
                              * further by a Gaussian of rms drawn uniformly
                              * in 0..psf_visit_blur (rapid_sim_visit_blur),
                              * and the PSF files are written per visit
                              * (rapid_sim_psf_name); 0 (default): one PSF
                              * per filter and detector */
} rapid_sim_config;

void rapid_sim_config_init(rapid_sim_config *c);

/* The exposure time of an image in filter f: c->exptime when it is set
 * (> 0), else the OpenUniverse time-domain survey's for the filter (R062
 * and Z087 161 s; Y106, J129, H158 and W146 302 s; F184 and K213 901 s). */
double rapid_sim_exptime(const rapid_sim_config *c, const rapid_filter *f);

/* One pointing of the focal plane: boresight, roll, time, filter. */
typedef struct rapid_sim_pointing {
    int id;                  /* pointing number, in time order */
    int visit;               /* epoch 0..epochs-1 */
    const rapid_filter *filter;
    double mjd;              /* start of exposure */
    double exptime;          /* seconds */
    double ra, dec;          /* boresight (RA_TARG, DEC_TARG) */
    double pa;               /* position angle of the focal plane (PA_FPA) */
} rapid_sim_pointing;

/* ------------------------------------------------------- zodiacal light */

/* Where a direction lies for the zodiacal light at a time. */
typedef struct rapid_zodi_geom {
    double beta;     /* ecliptic latitude, degrees (J2000 ecliptic) */
    double dlambda;  /* helio-ecliptic longitude |lambda - lambda_sun|,
                      * folded into 0..180 degrees */
    double elong;    /* angle from the Sun, degrees */
} rapid_zodi_geom;

/* The Sun's ecliptic longitude at mjd, degrees 0..360, ecliptic and
 * equinox of date (the Astronomical Almanac's low-precision formula,
 * good to 0.01 degree from 1950 to 2050). */
double rapid_sun_longitude(double mjd);

/* J2000 equatorial (ra, dec) to J2000 ecliptic (lambda 0..360, beta),
 * degrees. */
void rapid_ecliptic_from_equatorial(double ra, double dec, double *lambda,
                                    double *beta);

/* Zodiacal surface brightness at ecliptic latitude beta and helio-ecliptic
 * longitude dlambda (degrees; signs and turns are folded), relative to its
 * value at the ecliptic pole: Leinert et al. (1998) Table 17, bilinear in
 * its logarithm (docs/simulator.md).  1 at the pole, 3.36 in the ecliptic
 * 90 degrees from the Sun, 6.56 at 60 degrees; 0.94 at the faintest.
 * NaN for a non-finite argument. */
double rapid_zodi_relative(double beta, double dlambda);

/* rapid_zodi_relative for the direction (ra, dec) at time mjd (UTC is
 * close enough); g (may be NULL) receives the geometry. */
double rapid_zodi_factor(double ra, double dec, double mjd,
                         rapid_zodi_geom *g);

/* The sky of pointing p on detector sca, e/pixel/s: the filter's zodiacal
 * level (the Roman project's count rate at minimum zodiacal light, taken
 * as that toward the ecliptic pole) times rapid_zodi_factor at the
 * boresight and mid-exposure, plus the filter's thermal background, both
 * scaled by the detector's throughput (rapid_zero_point).  What SKYRATE
 * holds. */
double rapid_sim_sky_rate(const rapid_sim_pointing *p, int sca);

/* The survey: pointings in time order, such that every target tile is seen
 * every visit by some detector, with dithers and varying roll.  *out is
 * allocated; returns the count or a negative status. */
int rapid_sim_plan(const rapid_sim_config *c, rapid_sim_pointing **out,
                   rapid_err *err);

/* The TAN-SIP WCS of detector sca (1..nscas) at a pointing. */
int rapid_sim_detector_wcs(const rapid_sim_config *c,
                           const rapid_sim_pointing *p, int sca, rapid_wcs *w,
                           rapid_err *err);

/* The static and variable sky over the survey area (opaque). */
typedef struct rapid_sim_scene rapid_sim_scene;

int rapid_sim_scene_make(const rapid_sim_config *c,
                         const rapid_sim_pointing *p, int np,
                         rapid_sim_scene **out, rapid_err *err);
void rapid_sim_scene_free(rapid_sim_scene *s);
/* Truth for every static source: id, type (1 star, 2 galaxy), ra, dec,
 * mag_<FILTER> for every filter, sersic_n, r_e (arcsec), q, pa (deg). */
int rapid_sim_scene_truth(const rapid_sim_scene *s, rapid_table *t,
                          rapid_err *err);

/* Render detector sca at pointing p: a DN image with the full L2 header
 * (incl. WCS); truth gets one row per transient and variable in the image
 * (image, id, kind, ra, dec, x, y, flux_dn, mag), x, y 0-based. */
int rapid_sim_render(const rapid_sim_config *c, const rapid_sim_scene *s,
                     const rapid_sim_pointing *p, int sca,
                     const rapid_psf_field *psf, rapid_image *img,
                     rapid_table *truth, rapid_err *err);

/* The same with the ERR (float32, DN) and DQ (rapid/dq.h bits) images of
 * the L2 file; err_img and dq may be NULL when not wanted.  ERR and DQ
 * get EXTNAME-free headers with BUNIT (ERR) and a comment (DQ). */
int rapid_sim_render_l2(const rapid_sim_config *c, const rapid_sim_scene *s,
                        const rapid_sim_pointing *p, int sca,
                        const rapid_psf_field *psf, rapid_image *img,
                        rapid_image *err_img, rapid_image_u32 *dq,
                        rapid_table *truth, rapid_err *err);

/* rapid_sim_render_l2 after the detector's earlier exposures prev[0 ..
 * nprev) (any order, any filter; the whole survey plan is fine): the stars
 * that filled pixels to 30 % of the full well or more in those up to 6 h
 * before p leave persistence, charge decaying as 1/t (0.5 e/s 300 s after
 * a pixel was filled to the full well, up to twice that past it), and the
 * pixels that saturated are flagged PERSISTENCE with DO_NOT_USE, as a
 * pipeline that knows the earlier exposures would.  Without c->persistence
 * or earlier exposures, rapid_sim_render_l2. */
int rapid_sim_render_after(const rapid_sim_config *c,
                           const rapid_sim_scene *s,
                           const rapid_sim_pointing *p,
                           const rapid_sim_pointing *prev, int nprev, int sca,
                           const rapid_psf_field *psf, rapid_image *img,
                           rapid_image *err_img, rapid_image_u32 *dq,
                           rapid_table *truth, rapid_err *err);

/* The detector's defect map (what rapid_sim_render_l2 puts in DQ before
 * saturation and cosmic rays): dq (nx*ny, zeroed by the caller) gets the
 * DEAD, HOT or LOW_QE bit, each with DO_NOT_USE, of about 1.7 % of the
 * pixels; the same for every pointing.  Returns how many pixels it flagged
 * (0 when c->defects is 0). */
long rapid_sim_defect_map(const rapid_sim_config *c, int sca, int nx, int ny,
                          uint32_t *dq);

/* The L2 file name of (pointing, sca): Roman_TDS_simple_model_<F>_<p>_<s>.fits */
void rapid_sim_l2_name(const rapid_sim_config *c, const rapid_sim_pointing *p,
                       int sca, char *out, size_t outsz);

/* The extra blur (rms mas per axis, added to the pointing jitter in
 * quadrature) of the PSF in visit `visit`: 0 when c->psf_visit_blur is 0,
 * else uniform in [0, psf_visit_blur), a function of the seed and the
 * visit only (the same for every filter and detector of the visit). */
double rapid_sim_visit_blur(const rapid_sim_config *c, int visit);

/* The PSF file name of (filter, sca): Roman_WFI_PSF_<F>_<sca>.fits, or with
 * a per-visit blur Roman_WFI_PSF_<F>_<sca>_visit<visit>.fits. */
void rapid_sim_psf_name(const rapid_sim_config *c, const rapid_filter *f,
                        int sca, int visit, char *out, size_t outsz);

/* Everything: plan, scene, PSF files, L2 images and truth tables in outdir
 * (created if needed).  progress may be NULL. */
int rapid_sim_run(const rapid_sim_config *c, const char *outdir,
                  rapid_progress_fn progress, void *arg, rapid_err *err);

/* Remove from outdir what an earlier rapid_sim_run wrote there, known by
 * name: the L2 images (Roman_TDS_simple_model_<F>_<p>_<s>.fits[.gz]),
 * psf/Roman_WFI_PSF_<F>_<s>.fits, truth/{static,transients,pointings}.fits
 * and the hidden temporary files of an interrupted write of any of them;
 * then psf/ and truth/ when that leaves them empty.  Anything else stays.
 * A directory that does not exist is fine.  removed (may be NULL) counts
 * the files removed. */
int rapid_sim_clear(const char *outdir, long *removed, rapid_err *err);

/* The memory rapid_sim_run will take for c, in bytes, estimated without
 * making the scene: about 25 bytes per pixel of one image, 170 per
 * expected source of the scene, 20 MiB besides (sim_memory.c says how it
 * was calibrated: within 0-25 % above the peak RSS measured).  Plans the survey, so a
 * configuration rapid_sim_run would refuse is refused here too. */
int rapid_sim_memory(const rapid_sim_config *c, uint64_t *bytes,
                     rapid_err *err);

/* What rapid_sim_run will write for c, known before it writes anything:
 * the files and their bytes (uncompressed; the truth tables estimated
 * from the scene's expected counts).  Plans the survey. */
typedef struct rapid_sim_volume_t {
    int64_t images, psf_files;
    uint64_t image_bytes;    /* one L2 file */
    uint64_t bytes;          /* everything */
} rapid_sim_volume_t;

int rapid_sim_volume(const rapid_sim_config *c, rapid_sim_volume_t *v,
                     rapid_err *err);

/* ------------------------------------------------------------ injection */

typedef struct rapid_sim_injected {
    double ra, dec, mag;   /* as asked */
    double x, y;           /* 0-based pixel position in the image */
    double flux_dn;        /* total counts added, before noise, DN */
    int on_image;          /* 0 if the position falls off the image */
} rapid_sim_injected;

/* Add n PSF point sources of AB magnitudes mag at (ra, dec) to a DN image
 * whose header has EXPTIME, ZPTMAG (for DN/s) and GAIN (e/DN; 1 if absent),
 * with Poisson noise on the added counts.  truth (n entries) receives where
 * and how bright each one is. */
int rapid_sim_inject(rapid_image *img, rapid_wcs *wcs,
                     const rapid_psf_field *psf, int n, const double *ra,
                     const double *dec, const double *mag, uint64_t seed,
                     rapid_sim_injected *truth, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
