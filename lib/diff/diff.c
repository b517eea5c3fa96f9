/* diff.c - the pair prepared for subtraction, and the naive difference
 * (rapid/diff.h). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"
#include "rapid/extract.h"
#include "rapid/psfops.h"
#include "rapid/regrid.h"

#define COVER_MIN 0.5   /* reference coverage below this: no difference */
#define BOX_SCI 500
#define BOX_REF 128
/* coverage_levels: the coverages (1 .. STEP_LEVELS inputs) whose own
 * level is measured, and the pixels one needs (a level's own error is
 * about sigma_D / sqrt(STEP_MIN); on the tests' coadds the narrow strips
 * of 2000-2200 pixels at four inputs are better with theirs taken off
 * than left to the windows: 10000 left S_corr's pooled medians' errors
 * at low coverage at 0.012-0.017 against 0.008-0.010) */
#define STEP_LEVELS 64
#define STEP_MIN 2000
/* the least reference-covered science pixels worth a difference: half a
 * background window of the reference */
#define MIN_COVERED (BOX_REF * BOX_REF / 2)
/* registration correction (offset_significant) */
#define SHIFT_MIN_STARS 3
#define SHIFT_MIN_PX 0.05
#define SHIFT_NSIGMA 3.0
#define SHIFT_PASSES 4     /* resamplings at most */
#define SHIFT_DONE_PX 0.005 /* an offset left below this ends them */

void rapid_diff_pair_release(rapid_diff_pair *p)
{
    if (!p)
        return;
    rapid_image_release(&p->ref);
    rapid_image_release(&p->cov);
    rapid_image_release(&p->unc);
    rapid_background_release(&p->bkg_sci);
    rapid_background_release(&p->bkg_ref);
    memset(p, 0, sizeof *p);
}

/* Work run beside the calling thread (on a thread of its own when two
 * are allowed, else at once on the caller's): it writes only what the
 * caller leaves alone until side_join, so the results are the same
 * either way. */
typedef struct side_task {
    int (*fn)(void *arg, rapid_err *err);
    void *arg;
    pthread_t thread;
    int running, done, rc;
    rapid_err err;
} side_task;

static void *side_run(void *arg)
{
    side_task *t = arg;

    t->rc = t->fn(t->arg, &t->err);
    return NULL;
}

static void side_start(side_task *t, int nthreads,
                       int (*fn)(void *, rapid_err *), void *arg)
{
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->err = (rapid_err)RAPID_ERR_INIT;
    if (nthreads > 1 && pthread_create(&t->thread, NULL, side_run, t) == 0)
        t->running = 1;
    else
        side_run(t);
    t->done = 1;
}

/* Wait for t (if started and not waited for yet): its status, its error
 * into err when it failed and err holds none yet. */
static int side_join(side_task *t, rapid_err *err)
{
    int rc;

    if (!t->done)
        return 0;
    if (t->running)
        pthread_join(t->thread, NULL);
    t->running = t->done = 0;
    rc = t->rc;
    if (rc && err && !err->code)
        *err = t->err;
    return rc;
}

/* The science image's side of the preparation: its background and its
 * catalog (no WCS needed). */
typedef struct sci_side {
    const rapid_science *sci;
    rapid_diff_pair *p;
    rapid_table *cs;
    volatile sig_atomic_t *stop; /* the caller's (NULL: none) */
} sci_side;

/* RAPID_E_INTERRUPTED if the caller asked to stop (after step what). */
static int prep_stopped(volatile sig_atomic_t *stop, const char *what,
                        rapid_err *err)
{
    return stop && *stop ? rapid_fail(err, RAPID_E_INTERRUPTED, "interrupted "
                                      "after %s", what)
                         : 0;
}

static int science_side(sci_side *j, rapid_err *err)
{
    rapid_background_opts bo;
    rapid_extract_opts eo;
    int rc;

    rapid_background_opts_init(&bo);
    bo.box = BOX_SCI;
    rapid_extract_opts_init(&eo);
    eo.stop = j->stop;
    if (j->sci->bkg.mean && j->sci->bkg.nx == j->p->nx &&
        j->sci->bkg.ny == j->p->ny && bo.box == 500) /* made as it reads */
        rc = rapid_background_copy(&j->p->bkg_sci, &j->sci->bkg, err);
    else
        rc = rapid_background_make(j->sci->rate.data, j->p->nx, j->p->ny, &bo,
                                   &j->p->bkg_sci, err);
    if (rc == 0)
        rc = rapid_extract(j->sci->rate.data, NULL, NULL, j->p->nx, j->p->ny,
                           &eo, NULL, j->cs, NULL, err);
    return rc;
}

/* The reference's coverage and uncertainty maps given, on the science
 * pixels (grid), each on copies of the two WCSs of its own (WCSLIB's
 * transformations write into theirs, and this may run beside the
 * image's resampling); a NULL map is made by resample_and_match. */
typedef struct maps_side {
    const rapid_diff_ref *r;
    const rapid_wcs *grid;
    rapid_diff_pair *p;
    sci_side *sci;  /* the science side to do first, or NULL */
    volatile sig_atomic_t *stop; /* the caller's (NULL: none) */
} maps_side;

static int maps_given(maps_side *j, rapid_err *err)
{
    const rapid_diff_ref *r = j->r;
    rapid_diff_pair *p = j->p;
    rapid_wcs rw = RAPID_WCS_INIT, gw = RAPID_WCS_INIT;
    size_t i, n = (size_t)r->nx * r->ny, m = (size_t)p->nx * p->ny;
    float *tmp = NULL;
    int rc;

    if (!r->cov && !r->unc)
        return 0;
    if ((rc = prep_stopped(j->stop, "the science image's catalog", err)) ||
        (rc = rapid_wcs_copy(&rw, r->wcs, err)) ||
        (rc = rapid_wcs_copy(&gw, j->grid, err)))
        goto done;
    if (r->cov && (rc = rapid_regrid(r->cov, r->nx, r->ny, &rw, &gw, p->nx,
                                     p->ny, RAPID_REGRID_MEAN, p->cov.data,
                                     NULL, err)))
        goto done;
    if (!r->unc || (rc = prep_stopped(j->stop, "the coverage's resampling", err)))
        goto done;
    if (!(tmp = malloc(n * sizeof *tmp))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "diff: out of memory");
        goto done;
    }
    for (i = 0; i < n; i++)
        tmp[i] = r->unc[i] * r->unc[i];
    rc = rapid_regrid(tmp, r->nx, r->ny, &rw, &gw, p->nx, p->ny,
                      RAPID_REGRID_VARIANCE, p->unc.data, NULL, err);
    free(tmp);
    for (i = 0; rc == 0 && i < m; i++)
        p->unc.data[i] = sqrtf(p->unc.data[i]);
done:
    rapid_wcs_release(&rw);
    rapid_wcs_release(&gw);
    return rc;
}

/* The side thread's work: the science side first (once), then the maps. */
static int side_work(void *arg, rapid_err *err)
{
    maps_side *j = arg;
    int rc;

    if (j->sci && (rc = science_side(j->sci, err)) != 0)
        return rc;
    return maps_given(j, err);
}

/* An image beside the reference (or nearly: not one background window's
 * worth of it) has nothing to be subtracted from: fewer than MIN_COVERED
 * pixels where the resampled reference has data (and, cov not NULL, a
 * coverage of at least 0.5) is RAPID_E_NOOVERLAP. */
static int covered(const rapid_diff_pair *p, const float *cov, rapid_err *err)
{
    size_t i, n = 0, m = (size_t)p->nx * p->ny;

    for (i = 0; i < m; i++)
        n += isfinite(p->ref.data[i]) && (!cov || cov[i] >= 0.5f);
    if (n >= MIN_COVERED)
        return 0;
    return rapid_fail(err, RAPID_E_NOOVERLAP, "too little overlap: %zu of the "
                      "science image's %zu pixels have reference data%s, at "
                      "least %d needed", n, m, cov ? " with coverage >= 0.5" : "",
                      MIN_COVERED);
}

/* The reference's catalog on the science pixels, paired with the
 * science catalog's stars (the science side joined first). */
static int match_stars(const rapid_table *cs, rapid_diff_pair *p,
                       double zp_scale, rapid_table *cr, side_task *side,
                       volatile sig_atomic_t *stop, rapid_err *err)
{
    rapid_extract_opts eo;
    rapid_gainmatch_opts go;
    int rc, side_rc;

    rapid_table_release(cr);
    rapid_extract_opts_init(&eo);
    eo.stop = stop;
    rapid_gainmatch_opts_init(&go);
    rc = rapid_extract(p->ref.data, NULL, NULL, p->nx, p->ny, &eo, NULL, cr,
                       NULL, err);
    side_rc = side_join(side, rc ? NULL : err);
    if (rc == 0)
        rc = side_rc;
    if (rc == 0)
        rc = covered(p, p->cov.data, err);
    if (rc == 0)
        rc = rapid_gainmatch_catalogs(cs, cr, &go, zp_scale, &p->match, err);
    return rc;
}

/* The reference, its coverage and uncertainty resampled onto the grid
 * grid_wcs (the science image's pixels, or the same shifted), its
 * background, its catalog cr, and the stars paired with the science
 * catalog cs.  With two threads the maps given (and first, when sci is
 * not NULL, the science side, which makes cs) are made on the second
 * beside the image's resampling, its background and catalog. */
static int resample_and_match(const rapid_diff_ref *ref, rapid_wcs *grid_wcs,
                              sci_side *sci, const rapid_table *cs,
                              rapid_table *cr, rapid_diff_pair *p,
                              float *cover, int nthreads,
                              volatile sig_atomic_t *stop, rapid_err *err)
{
    rapid_background_opts bo;
    size_t i, m = (size_t)p->nx * p->ny;
    maps_side ms;
    side_task side;
    int rc;

    rapid_background_release(&p->bkg_ref);
    ms.r = ref, ms.grid = grid_wcs, ms.p = p, ms.sci = sci, ms.stop = stop;
    side_start(&side, nthreads, side_work, &ms);
    rc = rapid_regrid(ref->image, ref->nx, ref->ny, ref->wcs, grid_wcs, p->nx,
                      p->ny, RAPID_REGRID_FLUX, p->ref.data, cover, err);
    if (rc == 0)
        rc = prep_stopped(stop, "the reference's resampling", err);
    if (rc == 0) /* (the coverage map given is checked once it is made) */
        rc = covered(p, NULL, err);
    if (rc == 0 && !ref->cov)
        for (i = 0; i < m; i++) /* the covered share, from the image */
            p->cov.data[i] = isfinite(p->ref.data[i]) ? cover[i] : 0;
    if (rc == 0) {
        rapid_background_opts_init(&bo);
        bo.box = BOX_REF;
        rc = rapid_background_make(p->ref.data, p->nx, p->ny, &bo, &p->bkg_ref,
                                   err);
    }
    if (rc == 0 && !ref->unc) /* the reference's own noise, where it has data */
        for (i = 0; i < m; i++)
            p->unc.data[i] = isfinite(p->ref.data[i])
                                 ? (float)rapid_background_rms_at(
                                       &p->bkg_ref, (double)(i % p->nx),
                                       (double)(i / p->nx))
                                 : NAN;
    if (rc == 0)
        rc = prep_stopped(stop, "the reference's background", err);
    if (rc != 0) {
        side_join(&side, NULL);
        return rc;
    }
    return match_stars(cs, p, ref->zp_scale, cr, &side, stop, err);
}

/* Whether the stars' median offset is a registration error worth
 * resampling again for: at least SHIFT_MIN_STARS stars, an offset of at
 * least SHIFT_MIN_PX, and in some axis more than SHIFT_NSIGMA times the
 * median's own error (1.2533 rms / sqrt(n) for normal scatter). */
static int offset_significant(const rapid_gainmatch *g)
{
    double e;

    if (g->nstars < SHIFT_MIN_STARS || !isfinite(g->dx_median) ||
        !isfinite(g->dy_median) ||
        hypot(g->dx_median, g->dy_median) < SHIFT_MIN_PX)
        return 0;
    e = 1.2533 / sqrt((double)g->nstars);
    return fabs(g->dx_median) > SHIFT_NSIGMA * e * g->dx_rms ||
           fabs(g->dy_median) > SHIFT_NSIGMA * e * g->dy_rms;
}

/* How much of a shift of the grid the stars' offsets show: windowed
 * centroids of undersampled stars see only part of an offset between two
 * differently resampled images (about 80 % of 0.3 px).  From the offsets
 * m0 measured on the science grid and m1 on the grid moved by s (= m0),
 * the slope (m0 - m1) . s / |s|^2, held within 0.3..1.5 (1 when the two
 * do not say). */
static double offset_gain(double m0x, double m0y, double m1x, double m1y,
                          double sx, double sy)
{
    double s2 = sx * sx + sy * sy, k;

    if (!(s2 > 0) || !isfinite(m1x) || !isfinite(m1y))
        return 1;
    k = ((m0x - m1x) * sx + (m0y - m1y) * sy) / s2;
    return k >= 0.3 && k <= 1.5 ? k : 1;
}

/* The science grid moved by (dx, dy) px: pixel x of it sees the sky that
 * pixel x - dx of w sees (CRPIX moved, the SIP terms with it). */
static int shifted_wcs(const rapid_wcs *w, double dx, double dy,
                       rapid_wcs *out, rapid_err *err)
{
    double crpix[2] = {w->crpix[0] + dx, w->crpix[1] + dy};

    if (w->kind != RAPID_WCS_TAN && w->kind != RAPID_WCS_TAN_SIP)
        return rapid_fail(err, RAPID_E_WCS, "diff: the science WCS is neither "
                          "TAN nor TAN-SIP: cannot shift it");
    return rapid_wcs_from_terms(out, w->crval, crpix, w->cd,
                                w->kind == RAPID_WCS_TAN_SIP ? &w->sip : NULL,
                                w->nx, w->ny, err);
}

/* Blank (NaN) the pixels of img within reach of the sources of a catalog
 * (X, Y, NPIX columns): twice the radius of a disc of NPIX pixels, plus
 * 2 px, so that the wings of every detected source go too. */
static void blank_sources(const rapid_table *cat, float *img, int nx, int ny)
{
    const rapid_column *cx = rapid_table_col(cat, "X");
    const rapid_column *cy = rapid_table_col(cat, "Y");
    const rapid_column *cn = rapid_table_col(cat, "NPIX");
    long k;

    if (!cx || !cy || !cn || cx->type != RAPID_COL_F64 ||
        cy->type != RAPID_COL_F64 || cn->type != RAPID_COL_I32)
        return;
    for (k = 0; k < cat->nrows; k++) {
        double x = ((const double *)cx->data)[k];
        double y = ((const double *)cy->data)[k];
        double r = 2 * sqrt(((const int32_t *)cn->data)[k] / M_PI) + 2;
        int i, j;
        for (j = (int)floor(y - r); j <= (int)ceil(y + r); j++)
            for (i = (int)floor(x - r); i <= (int)ceil(x + r); i++)
                if (i >= 0 && j >= 0 && i < nx && j < ny &&
                    (i - x) * (i - x) + (j - y) * (j - y) <= r * r)
                    img[(size_t)j * nx + i] = NAN;
    }
}

/* The naive difference where it says what its background is: the
 * sources of both catalogs blanked (NaN), into work. */
static int difference_sky(const rapid_science *sci, const rapid_diff_pair *p,
                          const rapid_table *cs, const rapid_table *cr,
                          float *work, rapid_err *err)
{
    float *unc = malloc((size_t)p->nx * p->ny * sizeof *unc);

    if (!unc)
        return rapid_fail(err, RAPID_E_NOMEM, "diff: out of memory");
    rapid_diff_naive(sci, p, work, unc);
    free(unc);
    blank_sources(cs, work, p->nx, p->ny);
    blank_sources(cr, work, p->nx, p->ny);
    return 0;
}

/* The difference's level in the reference background's windows (the
 * clipped means of work), taken off the reference background.  0 also
 * when no window has enough of a difference (left as it is). */
static int window_levels(rapid_diff_pair *p, const float *work,
                         rapid_err *err)
{
    rapid_background_opts bo;
    rapid_background db = RAPID_BACKGROUND_INIT;
    size_t i;
    int rc;

    rapid_background_opts_init(&bo);
    bo.box = BOX_REF;
    bo.min_usable = 0.1; /* a window the coverage or the sources cut still
                          * says */
    if ((rc = rapid_background_make(work, p->nx, p->ny, &bo, &db, NULL)) ==
        RAPID_E_RANGE)
        return 0;
    if (rc)
        return rapid_fail(err, rc, "diff: the background of the difference "
                          "failed");
    if (db.gx != p->bkg_ref.gx || db.gy != p->bkg_ref.gy) {
        rapid_background_release(&db);
        return rapid_fail(err, RAPID_E_ARG, "diff: the difference's "
                          "background windows are not the reference's");
    }
    for (i = 0; i < (size_t)db.gx * db.gy; i++)
        p->bkg_ref.mean[i] -= (float)(db.mean[i] / p->match.scale);
    rapid_background_release(&db);
    return 0;
}

/* The difference's level on the pixels of each coverage (rounded to a
 * whole number of inputs, 1 .. STEP_LEVELS) with at least STEP_MIN of
 * them (the clipped mean of work there, after the windows' correction),
 * taken off the resampled reference on those pixels.  What the windows
 * leave differs with the coverage because a window's clipped mean of the
 * reference mixes pixels of different noise (and so of different
 * amounts of the faint light the noise hides) and, in a coadd, of
 * different skies (its inputs have their own), and the windows (BOX_REF
 * px, interpolated between their centres) cannot follow a change at a
 * coverage edge. */
static int coverage_levels(rapid_diff_pair *p, const float *work,
                           rapid_err *err)
{
    size_t i, m = (size_t)p->nx * p->ny, at[STEP_LEVELS + 1] = {0};
    size_t fill[STEP_LEVELS];
    float *buf = malloc(m * sizeof *buf);
    double off[STEP_LEVELS], sd;
    long l;
    int lv;

    if (!buf)
        return rapid_fail(err, RAPID_E_NOMEM, "diff: out of memory");
    /* each level's values together, in pixel order (two passes) */
    for (i = 0; i < m; i++)
        if (isfinite(work[i]) && (l = lround(p->cov.data[i])) >= 1 &&
            l <= STEP_LEVELS)
            at[l]++;
    for (lv = 0; lv < STEP_LEVELS; lv++)
        at[lv + 1] += at[lv], fill[lv] = at[lv];
    for (i = 0; i < m; i++)
        if (isfinite(work[i]) && (l = lround(p->cov.data[i])) >= 1 &&
            l <= STEP_LEVELS)
            buf[fill[l - 1]++] = work[i];
    for (lv = 0; lv < STEP_LEVELS; lv++) {
        off[lv] = 0;
        if (at[lv + 1] - at[lv] >= STEP_MIN)
            rapid_clipped_mean(buf + at[lv], at[lv + 1] - at[lv], 3.0, 10,
                               &off[lv], &sd);
    }
    free(buf);
    for (i = 0; i < m; i++)
        if ((l = lround(p->cov.data[i])) >= 1 && l <= STEP_LEVELS)
            p->ref.data[i] += (float)(off[l - 1] / p->match.scale);
    return 0;
}

/* The background left in the naive difference, taken off the reference:
 * each image's clipped mean holds the light of the faint sources its
 * noise hides, more of it the noisier the image (the reference's noise
 * changes with its coverage), so the two backgrounds differ by more than
 * their skies do.  In the difference the static sources cancel but for
 * what their PSFs' mismatch leaves (the sharper image's cores positive,
 * the broader one's wings negative), so the mismatch is measured on the
 * difference away from every source either catalog holds: first in the
 * reference background's windows (window_levels), then what is left on
 * each coverage's pixels (coverage_levels). */
static int differential_background(const rapid_science *sci,
                                   rapid_diff_pair *p, const rapid_table *cs,
                                   const rapid_table *cr, float *work,
                                   rapid_err *err)
{
    int rc;

    if (!(p->match.scale > 0))
        return 0;
    if ((rc = difference_sky(sci, p, cs, cr, work, err)) ||
        (rc = window_levels(p, work, err)) ||
        (rc = difference_sky(sci, p, cs, cr, work, err)) ||
        (rc = coverage_levels(p, work, err)))
        return rc;
    return 0;
}

int rapid_diff_prepare(const rapid_science *sci, rapid_wcs *sci_wcs,
                       const rapid_diff_ref *ref, rapid_diff_pair *p,
                       rapid_err *err)
{
    return rapid_diff_prepare_threads(sci, sci_wcs, ref, 0, 1, p, err);
}

int rapid_diff_prepare_flags(const rapid_science *sci, rapid_wcs *sci_wcs,
                             const rapid_diff_ref *ref, unsigned flags,
                             rapid_diff_pair *p, rapid_err *err)
{
    return rapid_diff_prepare_threads(sci, sci_wcs, ref, flags, 1, p, err);
}

int rapid_diff_prepare_threads(const rapid_science *sci, rapid_wcs *sci_wcs,
                               const rapid_diff_ref *ref, unsigned flags,
                               int nthreads, rapid_diff_pair *p,
                               rapid_err *err)
{
    return rapid_diff_prepare_stop(sci, sci_wcs, ref, flags, nthreads, NULL, p,
                                   err);
}

int rapid_diff_prepare_stop(const rapid_science *sci, rapid_wcs *sci_wcs,
                            const rapid_diff_ref *ref, unsigned flags,
                            int nthreads, volatile sig_atomic_t *stop,
                            rapid_diff_pair *p, rapid_err *err)
{
    rapid_table cs = RAPID_TABLE_INIT, cr = RAPID_TABLE_INIT;
    rapid_wcs moved = RAPID_WCS_INIT;
    sci_side ss;
    float *cover = NULL;
    size_t m;
    int rc;

    memset(p, 0, sizeof *p);
    if (!sci || !sci->rate.data || !sci_wcs || !ref || !ref->image ||
        !ref->wcs || !(ref->zp_scale > 0))
        return rapid_fail(err, RAPID_E_ARG, "diff: missing science image, "
                          "reference or WCS, or a zero-point scale that is not "
                          "positive");
    p->nx = sci->rate.nx;
    p->ny = sci->rate.ny;
    m = (size_t)p->nx * p->ny;
    if ((rc = rapid_image_alloc(&p->ref, p->nx, p->ny, NAN, err)) ||
        (rc = rapid_image_alloc(&p->cov, p->nx, p->ny, 0, err)) ||
        (rc = rapid_image_alloc(&p->unc, p->nx, p->ny, NAN, err)))
        goto fail;
    if (!(cover = malloc(m * sizeof *cover))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "diff: out of memory");
        goto fail;
    }
    /* the science image's background and catalog beside the reference's
     * resampling */
    ss.sci = sci, ss.p = p, ss.cs = &cs, ss.stop = stop;
    if ((rc = resample_and_match(ref, sci_wcs, &ss, &cs, &cr, p, cover,
                                 nthreads, stop, err)))
        goto fail;
    if (!(flags & RAPID_DIFF_NO_SHIFT) && offset_significant(&p->match)) {
        /* a registration error: the reference again, onto the science
         * pixels moved by the stars' offset, and the stars paired anew so
         * that the offsets reported are what remains */
        double dx = p->match.dx_median, dy = p->match.dy_median;
        double mx0 = dx, my0 = dy, k = 1;
        int pass;
        for (pass = 0; pass < SHIFT_PASSES; pass++) {
            rapid_wcs_release(&moved);
            if ((rc = shifted_wcs(sci_wcs, dx, dy, &moved, err)) ||
                (rc = resample_and_match(ref, &moved, NULL, &cs, &cr, p,
                                         cover, nthreads, stop, err)))
                goto fail;
            if (p->match.nstars < SHIFT_MIN_STARS ||
                !(hypot(p->match.dx_median, p->match.dy_median) >=
                  SHIFT_DONE_PX))
                break;
            if (pass == 0)
                k = offset_gain(mx0, my0, p->match.dx_median,
                                p->match.dy_median, dx, dy);
            dx += p->match.dx_median / k;
            dy += p->match.dy_median / k;
        }
        p->shift_x = dx;
        p->shift_y = dy;
    }
    if ((rc = prep_stopped(stop, "the stars' matching", err)) ||
        (rc = differential_background(sci, p, &cs, &cr, cover, err)))
        goto fail;
    rapid_table_release(&cs);
    rapid_table_release(&cr);
    rapid_wcs_release(&moved);
    free(cover);
    return 0;
fail:
    rapid_err_prefix(err, "preparing the difference");
    rapid_table_release(&cs);
    rapid_table_release(&cr);
    rapid_wcs_release(&moved);
    free(cover);
    rapid_diff_pair_release(p);
    return rc;
}

void rapid_diff_naive(const rapid_science *sci, const rapid_diff_pair *p,
                      float *d, float *unc)
{
    size_t i, n = (size_t)p->nx * p->ny;
    double s = p->match.scale;

    /* the two background maps laid down in the outputs first, once */
    rapid_background_fill(&p->bkg_sci, d);
    rapid_background_fill(&p->bkg_ref, unc);
    for (i = 0; i < n; i++) {
        if (!(p->cov.data[i] >= COVER_MIN) || !isfinite(p->ref.data[i]) ||
            !isfinite(sci->rate.data[i])) {
            d[i] = unc[i] = NAN;
            continue;
        }
        d[i] = (float)((sci->rate.data[i] - d[i]) -
                       s * (p->ref.data[i] - unc[i]));
        unc[i] = (float)sqrt((double)sci->unc.data[i] * sci->unc.data[i] +
                             s * s * (double)p->unc.data[i] * p->unc.data[i]);
    }
}

int rapid_diff_aperture_correct(rapid_diff_pair *p, const float *sci_psf,
                                int nsp, const float *ref_psf_sci, int nrp,
                                rapid_err *err)
{
    rapid_gainmatch_opts go;
    double es, er;

    if (!p || !sci_psf || !ref_psf_sci || nsp < 1 || nsp % 2 == 0 ||
        nrp < 1 || nrp % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "aperture correction: the PSFs "
                          "must be given, odd-sized");
    p->apcorr = 1;
    if (strcmp(p->match.from, "stars") != 0)
        return 0;
    rapid_gainmatch_opts_init(&go);
    es = rapid_psf_aperture_fraction(sci_psf, nsp, go.aperture);
    er = rapid_psf_aperture_fraction(ref_psf_sci, nrp, go.aperture);
    if (!(es > 0) || !(er > 0))
        return rapid_fail(err, RAPID_E_ARG, "aperture correction: a PSF with "
                          "no light in the %g px aperture", go.aperture);
    p->apcorr = er / es;
    p->match.scale *= p->apcorr;
    if (isfinite(p->match.scale_err))
        p->match.scale_err *= p->apcorr;
    return 0;
}
