/* rapid/eval.h - how good a subtraction is, measured on sources injected
 * into the science images: completeness, false positives, photometric
 * precision and the figure of merit (docs/quality.md), and their plots.
 *
 * The caller matches the passing candidates of each difference image to
 * the injections (and to the simulator's own truth, which is not counted)
 * and hands over one record per injection and the magnitudes of the
 * false positives; these functions reduce them.  Magnitudes are AB;
 * fluxes in any one unit per record.
 */
#ifndef RAPID_EVAL_H
#define RAPID_EVAL_H

#include <stdint.h>

#include "rapid/error.h"
#include "rapid/fits.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where an injection was put. */
enum { RAPID_EVAL_FIELD = 0, RAPID_EVAL_NUCLEAR = 1, RAPID_EVAL_ALL = -1 };

typedef struct rapid_eval_inj {
    double mag;        /* injected magnitude */
    int group;         /* RAPID_EVAL_FIELD or RAPID_EVAL_NUCLEAR */
    int found;         /* matched by a passing candidate */
    double flux_true;  /* injected flux */
    double flux_psf;   /* the candidate's PSF-fit flux (found only) */
    double fluxerr_psf;/* and its 1-sigma error */
    int detected;      /* a candidate, passing or not, within the radius */
    uint32_t fail_bits;/* not found but detected: the cuts the nearest
                        * candidate failed (its fail_bits) */
} rapid_eval_inj;

/* The magnitude bins of the curves: [mag_lo, mag_hi) in steps of dmag. */
typedef struct rapid_eval_bins {
    double mag_lo, mag_hi, dmag;
} rapid_eval_bins;

#define RAPID_EVAL_MAXBINS 200
#define RAPID_EVAL_TOLERANCE 10.0 /* false positives per image for m_th */
#define RAPID_EVAL_NCUTBITS 16    /* fail_bits counted per bit */

typedef struct rapid_eval_result {
    /* the figure of merit and the magnitudes it weighs (NaN: not reached,
     * see rapid_eval_metrics) */
    double m_th, m80, m20, m5sigma, m_ph10, fom;
    double fp_per_image;       /* passing false positives per image */
    long n_injected, n_recovered;
    int n_images;
    /* the curves, per bin (centre mag[k]) */
    int nbins;
    double mag[RAPID_EVAL_MAXBINS];
    long ninj[RAPID_EVAL_MAXBINS], nfound[RAPID_EVAL_MAXBINS];
    double completeness[RAPID_EVAL_MAXBINS]; /* NaN: no injections */
    double precision[RAPID_EVAL_MAXBINS];    /* robust sigma of
                                              * (flux_psf - flux_true) /
                                              * flux_true; NaN: < 5 found */
    double pull_median[RAPID_EVAL_MAXBINS];  /* of (flux_psf - flux_true) /
                                              * fluxerr_psf */
    double pull_sigma[RAPID_EVAL_MAXBINS];   /* robust sigma of the same */
    double fp_cum[RAPID_EVAL_MAXBINS];       /* false positives per image
                                              * brighter than the bin's
                                              * faint edge */
    /* where the lost ones were lost: detected (a candidate within the
     * radius before the cuts) per bin, its completeness and m80, and of
     * the detected but not passing, how many failed each cut (bit b of
     * fail_bits; one injection may fail several) */
    long n_detected;
    long ndet[RAPID_EVAL_MAXBINS];
    double detected[RAPID_EVAL_MAXBINS];     /* NaN: no injections */
    double m80_detected;
    long n_cut;                              /* detected, failed the cuts */
    long lost_cut[RAPID_EVAL_NCUTBITS];
} rapid_eval_result;

/* The figures for one method and one group (RAPID_EVAL_ALL: both) of n
 * injections on nimages difference images, with the nfp false positives'
 * magnitudes (NaN or +inf: non-positive flux, counted as fainter than
 * every bin) and m5sigma from rapid_eval_m5sigma (the median over the
 * images):
 *  - completeness per bin; m80, m20: where it falls through 0.8 and 0.2
 *    going faint (linear between bin centres; NaN if it never reaches the
 *    level, the faintest centre if it never falls below);
 *  - m_th: the magnitude of the false positive at which their cumulative
 *    count per image reaches RAPID_EVAL_TOLERANCE, else the faint edge of
 *    the bins;
 *  - m_ph10: where the precision (robust sigma of the flux ratio - 1)
 *    reaches 0.1 going faint, linear between bin centres (the faintest
 *    centre measured if it never does; NaN if no bin has 5 recovered);
 *  - fom: (1.0 m_th + 0.8 m80 + 0.6 m20 + 0.3 m5sigma + 0.2 m_ph10) / 2.9
 *    (NaN when any term is).
 * RAPID_E_ARG for bad bins or counts, RAPID_E_NOMEM. */
int rapid_eval_metrics(const rapid_eval_inj *inj, long n, int group,
                       const double *fp_mag, long nfp, int nimages,
                       double m5sigma, const rapid_eval_bins *bins,
                       rapid_eval_result *res, rapid_err *err);

/* The 5-sigma point-source limit of one difference image: zp - 2.5
 * log10(5 sqrt(N_p) sigma_bkg), N_p = 1 / sum(P^2) the noise pixels of
 * its unit-sum PSF psf[n] (the sum taken as given), sigma_bkg the
 * background's 1-sigma per pixel in the unit zp refers to.  NaN when
 * either is not positive. */
double rapid_eval_m5sigma(double zp, double sigma_bkg, const float *psf,
                          long n);

/* The weighted mean the FOM is (NaN when any term is). */
double rapid_eval_fom(double m_th, double m80, double m20, double m5sigma,
                      double m_ph10);

/* ------------------------------------------------------------ injection */

/* Where and how bright the sources injected into one image are. */
typedef struct rapid_eval_source {
    double x, y;      /* 0-based pixels of the image */
    double ra, dec;   /* degrees */
    double mag;       /* AB */
    int group;        /* RAPID_EVAL_FIELD or RAPID_EVAL_NUCLEAR */
    int64_t host;     /* the host galaxy's truth id (nuclear), else 0 */
    double flux_dn;   /* counts added (before noise), DN; 0 off the image */
} rapid_eval_source;

typedef struct rapid_eval_plan_opts {
    int n;                /* sources per image */
    double mag_min, mag_max; /* uniform in magnitude (21, 28) */
    double nuclear_frac;  /* of them offset from galaxy centres (0.5) */
    double max_offset;    /* up to this many half-light radii (1.5) */
    double host_mag_max;  /* hosts brighter than this in the image's
                           * filter (25) */
    int margin;           /* px kept clear of the edges (10) */
    uint64_t seed;
} rapid_eval_plan_opts;

void rapid_eval_plan_opts_init(rapid_eval_plan_opts *o);

/* Plan o->n sources on an image of nx x ny pixels with WCS w in filter
 * `filter`: the nuclear ones at a random offset (uniform in radius up to
 * max_offset r_e, uniform angle) from randomly chosen galaxies of the
 * simulator's static truth table (columns id, type (2 galaxy), ra, dec,
 * r_e in arcsec, mag_<filter>) that lie inside the margins, the others
 * (and all of them when no galaxy qualifies or statics is NULL) uniform
 * over the image inside the margins.  src gets o->n entries. */
int rapid_eval_plan(rapid_wcs *w, int nx, int ny, const char *filter,
                    const rapid_table *statics,
                    const rapid_eval_plan_opts *o, rapid_eval_source *src,
                    rapid_err *err);

/* A copy of the L2 file in (primary header, SCI, ERR, DQ) with the n
 * sources added through the simulator's PSF of its FILTER and SCA_NUM
 * (Poisson noise on the added counts, seeded by seed; ERR grown by their
 * variance), written atomically to out.  Sets src[k].flux_dn (0 off the
 * image) and x, y from ra, dec. */
int rapid_eval_inject_l2(const char *in, const char *out,
                         rapid_eval_source *src, int n, uint64_t seed,
                         rapid_err *err);

/* One candidate of a difference image, as the catalog gives it. */
typedef struct rapid_eval_cand {
    double x, y;          /* 0-based pixels */
    double flux, fluxerr; /* PSF fit, with its sign */
    int pass;             /* passes the cuts */
    uint32_t fail_bits;   /* the cuts it fails */
    int sign;             /* +1 positive, -1 negative candidate */
    int fate;             /* set by rapid_eval_match: RAPID_EVAL_* below */
} rapid_eval_cand;

/* What a candidate turned out to be. */
enum {
    RAPID_EVAL_NOT_PASSING = 0, RAPID_EVAL_INJECTION, RAPID_EVAL_KNOWN,
    RAPID_EVAL_ARTEFACT, RAPID_EVAL_FALSE
};

/* What the passing candidates of one image were. */
typedef struct rapid_eval_counts {
    long injected;  /* matched to an injection */
    long known;     /* to the simulator's own transients and variables */
    long artefact;  /* on cosmic-ray hits or detector defects (DQ) */
    long fp;        /* none of these: false positives */
    long fp_negative; /* of them, negative candidates */
} rapid_eval_counts;

#define RAPID_EVAL_ARTEFACT_BITS 0x3c04u /* DQ bits of the simulator's
                                          * artefacts: JUMP_DET (cosmic
                                          * rays), DEAD, HOT, WARM, LOW_QE
                                          * (defects) */

/* Match the passing candidates c[0..nc) of one difference image to its
 * injections (at ix, iy; inj[k].found, flux_psf, fluxerr_psf set from
 * the nearest passing candidate within radius px, each candidate used
 * once, nearest pairs first; an injection not found is `detected` when
 * a candidate that failed the cuts lies within radius px, fail_bits then
 * the nearest one's), then the rest to the known objects (kx, ky:
 * within max(radius, 1) px) and to artefacts (dq, nx x ny, may be NULL: a
 * RAPID_EVAL_ARTEFACT_BITS pixel within 1 px of the position); what is
 * left are false positives: their magnitudes (zp - 2.5 log10 |flux|, NaN
 * for no flux) are appended to *fp_mag (realloc'd; *nfp its length) and
 * counted.  Candidates of either sign count alike.  Each candidate's
 * fate says which it was. */
int rapid_eval_match(rapid_eval_inj *inj, const double *ix, const double *iy,
                     long ninj, rapid_eval_cand *c, long nc,
                     const double *kx, const double *ky, long nknown,
                     const uint32_t *dq, int nx, int ny, double radius,
                     double zp, double **fp_mag, long *nfp,
                     rapid_eval_counts *counts, rapid_err *err);

/* ------------------------------------------------------------ the run */

#define RAPID_EVAL_NMETHOD 3 /* zogy, sfft, naive: the science job's order */

typedef struct rapid_eval_opts {
    const char *work;         /* everything goes here (created) */
    const char *from_sim;     /* a simulation to use; NULL: simulate */
    const char *filter;       /* ("H158") */
    int methods[RAPID_EVAL_NMETHOD]; /* 1: evaluate (all) */
    int per_image;            /* injections per science image (500) */
    long min_injections;      /* repeat with new seeds until (20000) */
    uint64_t seed;            /* (1) */
    int keep_images;          /* 0: the images go once measured */
    int jobs;                 /* science jobs at once (2) */
    const char *exe;          /* the rapid command (run, job, ...) */
    /* the survey simulated without from_sim */
    int sim_tiles, sim_epochs, sim_scas, sim_size; /* (4, 8, 3, 4088) */
    int quiet;                /* 1: no progress on stderr */
} rapid_eval_opts;

void rapid_eval_opts_init(rapid_eval_opts *o);

/* What one method gave, for all injections and per group. */
typedef struct rapid_eval_method {
    const char *name;         /* "zogy", "sfft", "naive" */
    int used;
    rapid_eval_result all, field, nuclear;
    long fp_negative;         /* false positives that are negative candidates */
    long fp_star, fp_galaxy;  /* false positives within 15 px of a star
                               * brighter than 19 mag, on a galaxy brighter
                               * than 25 (within 1.5 r_e) */
    long known, artefact;     /* passing candidates on the simulator's own
                               * transients / on cosmic rays and defects */
    int images_failed;        /* jobs where the method failed */
} rapid_eval_method;

typedef struct rapid_eval_report {
    char filter[16];
    int n_science;            /* science images with a reference */
    int rounds;               /* injection rounds over them */
    int jobs_failed;          /* injected jobs that ended >= 32 */
    double seconds;
    rapid_eval_method m[RAPID_EVAL_NMETHOD];
} rapid_eval_report;

/* The whole evaluation: the survey simulated (or o->from_sim), ingested
 * into an SQLite database under work, its first half of visits made into
 * references and the rest run by `rapid launch` and `rapid register` (the normal
 * pipeline's steps 1 and 2); then
 * per science job and round, o->per_image sources planned
 * (rapid_eval_plan) and injected into a copy of its L2 image, the job run
 * again on the copy through `rapid job` with the same configuration, its
 * passing candidates matched (rapid_eval_match); finally the figures
 * (rapid_eval_metrics), work/eval.json, work/eval.csv and the plots
 * work/plots/<FILTER>_<group>_<kind>.png.  Only the catalogs, manifests
 * and logs of the injected jobs stay unless o->keep_images. */
int rapid_eval_run(const rapid_eval_opts *o, rapid_eval_report *rep,
                   rapid_err *err);

/* eval.json's object (a malloc'd string, caller frees), as written. */
char *rapid_eval_json(const rapid_eval_report *rep);
/* work/eval.json, work/eval.csv (filter, method, group, the figures) and
 * the plots work/plots/<FILTER>_<all|field|nuclear>_<completeness|fp|
 * precision>.png of a report, each written atomically. */
int rapid_eval_write(const char *work, const rapid_eval_report *rep,
                     rapid_err *err);

/* ----------------------------------------------- the simulator's transients */

/* How many of the simulator's supernovae a pipeline run found, per
 * difference method. */
typedef struct rapid_eval_found {
    const char *method;   /* "zogy", "sfft", "naive" */
    int n_images;         /* difference images of the method */
    long n_truth;         /* supernovae on them, where the difference has
                           * data, more than RAPID_EVAL_FOUND_EDGE px from
                           * its edges, brighter than in the reference (their
                           * mean flux on the images that are not science
                           * images of the run) by more than mag_max */
    long n_found;         /* of those, within 1 px of a passing candidate */
    long n_pass;          /* passing candidates in all */
} rapid_eval_found;

/* Supernovae nearer an edge than this (px) are not counted: cut by the
 * edge, they are not expected to pass the cuts. */
#define RAPID_EVAL_FOUND_EDGE 5

/* For the science jobs of procdate under the work directory work that
 * ended normally, and the simulation simdir they came from (its
 * truth/transients.fits): out[m] for each method. */
int rapid_eval_found_supernovae(const char *work, int procdate,
                                const char *simdir, double mag_max,
                                rapid_eval_found out[RAPID_EVAL_NMETHOD],
                                rapid_err *err);

/* Plots, as PNG files (PLplot, cairo), one line per method. */
typedef enum rapid_eval_plot_kind {
    RAPID_EVAL_PLOT_COMPLETENESS = 0, /* completeness vs magnitude */
    RAPID_EVAL_PLOT_FP = 1,           /* cumulative false positives/image */
    RAPID_EVAL_PLOT_PRECISION = 2     /* PSF-flux precision */
} rapid_eval_plot_kind;

/* One plot of res[0..nmethods) (labelled names[k]) to path (written
 * atomically), with m5sigma marked (the first finite one) and a title;
 * RAPID_E_IO when the file cannot be written. */
int rapid_eval_plot(const char *path, rapid_eval_plot_kind kind,
                    const rapid_eval_result *res, const char *const *names,
                    int nmethods, const char *title, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
