/* eval_internal.h - what the evaluation's files share (not public). */
#ifndef RAPID_EVAL_INTERNAL_H
#define RAPID_EVAL_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "rapid/fits.h"

/* A numeric column's value in row k as a double (NaN for text). */
double eval_colval(const rapid_column *c, long k);

/* snprintf into a path buffer; a path that does not fit is cut (and then
 * fails to open, named) */
void eval_pathf(char *out, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* A job configuration as read (section, key, value in file order). */
typedef struct eval_kv {
    char *section, *key, *value;
} eval_kv;

typedef struct eval_config {
    eval_kv *e;
    int n, cap;
} eval_config;

void eval_config_free(eval_config *c);
/* inih's handler filling an eval_config */
int eval_config_on_kv(void *user, const char *section, const char *key,
                      const char *value);
const char *eval_config_get(const eval_config *c, const char *section,
                            const char *key);
/* c written to path with (section, key, value) triples replaced
 * (NULL-terminated), sections in their first order */
int eval_config_write(const eval_config *c, const char *path,
                      const char *const *set, rapid_err *err);

/* What lies under a candidate, from the simulator's static truth on one
 * image: stars brighter than EVAL_BRIGHT_STAR and galaxies brighter than
 * EVAL_GALAXY_MAG (pixel positions, half-light radii in pixels). */
#define EVAL_BRIGHT_STAR 19.0   /* mag */
#define EVAL_STAR_RADIUS 15.0   /* px: "near a bright star" */
#define EVAL_GALAXY_MAG 25.0    /* mag */
#define EVAL_GALAXY_RE 1.5      /* half-light radii: "on a galaxy" */

typedef struct eval_scene {
    long nstar, ngal;
    double *sx, *sy;            /* one allocation: sx, sy, gx, gy, gre */
    double *gx, *gy, *gre;
} eval_scene;

enum { EVAL_UNDER_FIELD = 0, EVAL_UNDER_STAR = 1, EVAL_UNDER_GALAXY = 2 };

/* EVAL_UNDER_STAR within EVAL_STAR_RADIUS px of a bright star, else
 * EVAL_UNDER_GALAXY within max(EVAL_GALAXY_RE r_e, 2) px of a galaxy
 * centre, else EVAL_UNDER_FIELD. */
int eval_scene_under(const eval_scene *s, double x, double y);

/* The simulator's static truth's columns, all numeric: 0, or
 * RAPID_E_TABLE naming what is missing (mag is mag_<filter>). */
typedef struct eval_static_cols {
    const rapid_column *id, *type, *ra, *dec, *re, *mag;
} eval_static_cols;
int eval_static_columns(const rapid_table *t, const char *filter, eval_static_cols *c,
                        rapid_err *err);

/* A science job of a pipeline run that ended normally (0-31). */
typedef struct eval_scijob {
    eval_config cfg;
    char l2[4096], psf[4096], base[256];
    double zp;                /* ZPTMAG: AB of 1 DN/s */
    rapid_table known;        /* the simulator's transients on it: x, y,
                               * kind, mag */
    rapid_image_u32 dq;       /* (with_dq) */
    eval_scene scene;         /* (eval_scene_load) */
} eval_scijob;

/* Each job's scene from the static truth table (columns type, ra, dec,
 * r_e, mag_<filter>) through its science image's WCS. */
int eval_scene_load(eval_scijob *jobs, int n, const rapid_table *statics,
                    const char *filter, rapid_err *err);

/* The science jobs of procdate under the pipeline's work directory pipe
 * (configurations WORK/jobs/<procdate>/jid*.ini, in jid order), the
 * transients of simdir/truth/transients.fits on each image, and the DQ of
 * each when with_dq. */
int eval_find_science_jobs(const char *pipe, int procdate, const char *simdir,
                           int with_dq, eval_scijob **out, int *nout,
                           rapid_err *err);
void eval_scijobs_free(eval_scijob *jobs, int n);

int eval_read_manifest(const char *path, json_t **out, rapid_err *err);
/* A product's path in a manifest's diff entry (NULL: none). */
const char *eval_product(json_t *diff, const char *kind);

#endif
