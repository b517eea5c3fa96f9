/* sim_internal.h - what the simulator's modules share (not public).
 *
 *   sim_survey.c  focal plane, pointings, detector WCS (rapid_sim_plan,
 *                 rapid_sim_detector_wcs, rapid_sim_config_init)
 *   sim_scene.c   stars, galaxies, transients, variables and their truth
 *                 (rapid_sim_scene_*)
 *   sim_sn.c      supernova rates, luminosity functions and light curves
 *   sim_defects.c the detectors' defect maps (rapid_sim_defect_map)
 *   sim_zodi.c    the zodiacal light of a pointing (rapid_zodi_*, rapid_sim_sky_rate)
 *   sim_render.c  an image from the scene: sources, sky, noise, defects,
 *                 header (rapid_sim_render), and injection (rapid_sim_inject)
 *   sim.c         a whole survey to files (rapid_sim_run, rapid_sim_l2_name)
 */
#ifndef RAPID_SIM_INTERNAL_H
#define RAPID_SIM_INTERNAL_H

#include <stdint.h>

#include "rapid/sim.h"

enum { SIM_STAR = 1, SIM_GALAXY = 2 };

enum {
    SIM_SN_NUCLEAR = 1, /* supernova on its host's nucleus */
    SIM_SN_OFFSET = 2,  /* supernova offset within its host */
    SIM_SN_HOSTLESS = 3,
    SIM_VARIABLE = 4    /* periodic variable star (the star is also static) */
};

/* Variable stars, precisely: the star stays in the static list and in the
 * static truth table at its mean magnitudes, and its SIM_VARIABLE entry
 * (host = the star's id, same position) carries those mean magnitudes in
 * peak_mag[].  sim_transient_mag() of a SIM_VARIABLE returns the FULL
 * instantaneous magnitude, not a difference, so a renderer must draw the
 * variable entry INSTEAD of the static star: skip every static star for
 * which sim_scene_variable() finds an entry. */

typedef struct sim_source {
    int64_t id;
    int type;                   /* SIM_STAR or SIM_GALAXY */
    double ra, dec;             /* degrees */
    float mag[RAPID_NFILTERS];  /* AB, indexed by fid - 1 */
    /* galaxies only */
    float sersic_n;             /* 0.5 .. 4 */
    float r_e;                  /* half-light radius along the major axis, arcsec */
    float q;                    /* axis ratio b/a, 0.2 .. 1 */
    float pa;                   /* major axis, degrees east of north */
} sim_source;

typedef struct sim_transient {
    int64_t id;                 /* distinct from every sim_source id */
    int kind;                   /* SIM_SN_* or SIM_VARIABLE */
    int64_t host;               /* id of the host galaxy or varying star, -1 if none */
    double ra, dec;
    /* supernova: peak magnitude per filter at mjd_peak (rest-frame B
     * maximum), rising over rise observer days from explosion.  With sntype
     * (SIM_SN_IA ...) the light curve is the physical one of sim_sn.c at
     * redshift z, distance modulus mu and peak absolute B magnitude mabs;
     * with sntype 0 (hand-made transients) the simple shape: rise, then an
     * exponential decline over fall days, slower in the red. */
    double mjd_peak, rise, fall;
    float peak_mag[RAPID_NFILTERS];
    int sntype;
    double z, mu, mabs;
    /* variable: mean magnitude is the star's; sinusoid of this amplitude
     * (peak_mag holds the mean; period in days; amplitude in mag in H158,
     * x sqrt(lambda_H158 / lambda) in other bands; phase in radians) */
    double period, amplitude, phase;
} sim_transient;

struct rapid_sim_scene {
    sim_source *src;            /* sorted by dec for range queries */
    int64_t nsrc;
    sim_transient *tr;
    int64_t ntr;
    double ra0, dec0, radius;   /* the circle the scene fills, degrees */
    int64_t var0;               /* tr[var0 .. ntr-1] are the SIM_VARIABLE
                                 * entries, in ascending host id; the
                                 * supernovae come before them */
    float *ra_f;                /* optional: src[i].ra as float, a compact
                                 * first cut for sim_scene_select when there
                                 * is no index (hand-made scenes); NULL is
                                 * fine; rapid_sim_scene_free frees it */
    struct sim_scene_index *index; /* sim_scene_select's search index, made
                                    * by rapid_sim_scene_make (private to
                                    * sim_scene.c); NULL: a slower scan */
};

/* Supernova types (sim_sn.c). */
enum {
    SIM_SN_IA = 1,
    SIM_SN_IIP = 2,
    SIM_SN_IIL = 3,
    SIM_SN_IIN = 4,
    SIM_SN_IBC = 5,
    SIM_SN_NTYPES = 6
};
#define SIM_SN_ZMAX 3.0 /* supernovae are drawn out to this redshift */

const char *sim_sn_type_name(int type);
/* Peak absolute B magnitude (Vega) of a type and its spread (sigma may be
 * NULL); NaN for an unknown type. */
double sim_sn_peak_mb(int type, double *sigma);
/* Rest-frame days from explosion to B maximum, and to the end of the
 * modelled light curve. */
double sim_sn_rise_days(int type);
double sim_sn_duration(int type);
/* Flat LCDM (H0 70, Omega_m 0.3): comoving distance (Mpc), distance
 * modulus, comoving volume per unit redshift per steradian (Mpc^3). */
double sim_sn_comoving_mpc(double z);
double sim_sn_distmod(double z);
double sim_sn_dvdz(double z);
/* Volumetric rate of a type, per comoving Mpc^3 per rest-frame year. */
double sim_sn_rate(int type, double z);
/* AB magnitude at observed wavelength lambda_um, t observer days after the
 * B maximum, for a supernova at redshift z (distance modulus mu) with peak
 * absolute B magnitude mb; +inf outside the light curve. */
double sim_sn_mag(int type, double z, double mu, double mb, double lambda_um,
                  double t_from_peak_obs);

/* Sources whose position lies within the footprint of a detector (ra/dec
 * as rapid_wcs_footprint gives them) grown by margin degrees: indices into
 * s->src, ascending; *idx allocated.  Returns the count or a status. */
int64_t sim_scene_select(const rapid_sim_scene *s, const double ra[5],
                         const double dec[5], double margin, int64_t **idx,
                         rapid_err *err);
/* Magnitude of a transient at a time in a filter (fid); 99 when it is too
 * faint to matter (before explosion, or fainter than 35). */
double sim_transient_mag(const sim_transient *t, int fid, double mjd);
/* The SIM_VARIABLE entry of a static star (by its id), or NULL if the star
 * does not vary; O(log n). */
const sim_transient *sim_scene_variable(const rapid_sim_scene *s,
                                        int64_t star_id);

/* The exact focal-plane model behind rapid_sim_detector_wcs(), which fits
 * it with TAN-SIP (to < 1e-6 px): 0-based pixels of detector sca at pointing
 * p to sky (degrees) and back.  Points behind the focal plane get NaN and
 * the call returns RAPID_E_RANGE. */
int sim_focal_pix2sky(const rapid_sim_config *c, const rapid_sim_pointing *p,
                      int sca, int n, const double *x, const double *y,
                      double *ra, double *dec, rapid_err *err);
int sim_focal_sky2pix(const rapid_sim_config *c, const rapid_sim_pointing *p,
                      int sca, int n, const double *ra, const double *dec,
                      double *x, double *y, rapid_err *err);

/* Flux in DN for an AB magnitude over exptime seconds in a filter on
 * detector sca (its zero point: rapid_zero_point). */
double sim_mag_to_dn(const rapid_filter *f, int sca, double mag,
                     double exptime, double gain);

/* The expected numbers of static sources and of transients (supernovae
 * and variables; an upper bound) of the scene rapid_sim_scene_make would
 * make, without making it, and the area it covers (deg^2; area may be
 * NULL) (sim_scene.c; for rapid_sim_memory and rapid_sim_volume). */
int sim_scene_expected(const rapid_sim_config *c, const rapid_sim_pointing *p,
                       int np, double *nsources, double *ntransients,
                       double *area, rapid_err *err);

/* Hot pixel dark current, e/s: log-uniform over this range. */
#define SIM_HOT_RATE_MIN 0.5
#define SIM_HOT_RATE_MAX 50.0

/* The expected charge (e) of pixel i of detector sca whose defect bits are
 * dq, for light_e electrons of light (sky and sources) and dark_e of dark
 * current in an exposure of exptime seconds: none for a dead pixel, a
 * fraction of the light for a low-QE one, extra dark for a hot one. */
double sim_defect_charge(const rapid_sim_config *c, int sca, size_t i,
                         uint32_t dq, double light_e, double dark_e,
                         double exptime);

#endif
