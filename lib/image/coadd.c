/* coadd.c - reference images (docs/reference.md), top to bottom:
 *
 *   1. read each input's header; keep those of the filter that overlap the
 *      grid, nearest the tile centre first, at most max_inputs
 *      (coadd_inputs.c)
 *   2. for each input (in parallel when asked): pixels to DN/s at the common
 *      zero point; resample onto the grid with exact overlap areas through
 *      the mesh of its pixel edges (resample.c) into the worker's
 *      accumulators; add them to the running sums, remembering at every
 *      pixel the largest value any one input gave and who gave it
 *      (coadd_sums.c)
 *   3. reject, pixel by pixel, that largest value when it stands out from
 *      the mean of the others by more than the noise and the local gradient
 *      allow; grow the rejection to neighbours of the same input
 *      (coadd_reject.c)
 *   4. image = weighted sum / weights, coverage = sum of overlap areas,
 *      uncertainty from the propagated variances (coadd_sums.c)
 *   5. statistics (coadd_stats.c), reference PSF (coadd_psf.c), catalog,
 *      headers
 *
 * and the products written (rapid_coadd_write).  This file is the driver;
 * what the others share is in coadd_internal.h.
 *
 * Memory: the running sums (24 bytes per output pixel, in six planes, three
 * of which become the maps in place) plus, per thread, one input and its
 * mesh accumulators; inputs are read one at a time, and the rejection
 * streams rows through a few rows of buffers.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "resample.h"
#include "coadd_internal.h"
#include "rapid/coadd.h"
#include "rapid/filters.h"
#include "rapid/prodset.h"
#include "rapid/tile.h"
#include "rapid/version.h"
#include "rapid/wcs.h"

void rapid_coadd_opts_init(rapid_coadd_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = 7000;
    o->pixscale = 0.11;
    o->nside = RAPID_TILE_NSIDE;
    o->max_inputs = 25;
    o->min_inputs = 3;
    o->magzp = NAN;
    o->reject_sigma = 5;
    o->reject_grad = 1;
    o->grow_sigma = 3;
    o->sat_fraction = 0.95;
    o->nthreads = 1;
    o->psf_size = 0;
    o->row_batch = RAPID_MESH_BATCH;
}

void rapid_coadd_init(rapid_coadd *c)
{
    memset(c, 0, sizeof *c);
    rapid_header_init(&c->image.hdr);
    rapid_header_init(&c->coverage.hdr);
    rapid_header_init(&c->uncertainty.hdr);
    rapid_header_init(&c->psf.hdr);
    rapid_header_init(&c->psf_over.hdr);
    rapid_header_init(&c->header);
    rapid_table_init(&c->catalog, 0);
}

void rapid_coadd_release(rapid_coadd *c)
{
    int i;

    if (!c)
        return;
    rapid_image_release(&c->image);
    rapid_image_release(&c->coverage);
    rapid_image_release(&c->uncertainty);
    rapid_image_release(&c->psf);
    rapid_image_release(&c->psf_over);
    rapid_table_release(&c->catalog);
    rapid_header_release(&c->header);
    for (i = 0; i < c->ninputs; i++)
        free(c->inputs[i]);
    free(c->inputs);
    for (i = 0; i < c->nskipped; i++) {
        free(c->skipped[i].path);
        free(c->skipped[i].reason);
    }
    free(c->skipped);
    rapid_coadd_init(c);
}

int rapid_coadd_check_inputs(const rapid_coadd_input *in, int n, rapid_err *err)
{
    struct stat *sb = calloc((size_t)(n > 0 ? n : 1), sizeof *sb);
    char *ok = calloc((size_t)(n > 0 ? n : 1), 1);
    int i, j, rc = 0;

    if (!sb || !ok) {
        free(sb);
        free(ok);
        return rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
    }
    for (i = 0; i < n && rc == 0; i++) {
        ok[i] = in[i].path && stat(in[i].path, &sb[i]) == 0;
        for (j = 0; ok[i] && j < i; j++)
            if (ok[j] && sb[j].st_dev == sb[i].st_dev && sb[j].st_ino == sb[i].st_ino) {
                rc = rapid_fail(err, RAPID_E_ARG, "reference image: input %d (%s) "
                                "is the same file as input %d (%s)", i + 1,
                                in[i].path, j + 1, in[j].path);
                break;
            }
    }
    free(sb);
    free(ok);
    return rc;
}

/* The inputs given but left out (why[k] set), with their reasons. */
static int list_skipped(const rapid_coadd_input *src, int n, const char **why,
                        rapid_coadd_skip **out, int *nout)
{
    int k, m = 0;

    *out = NULL, *nout = 0;
    for (k = 0; k < n; k++)
        m += why[k] != NULL;
    if (m == 0)
        return 0;
    if (!(*out = calloc((size_t)m, sizeof **out)))
        return RAPID_E_NOMEM;
    for (k = 0; k < n; k++) {
        if (!why[k])
            continue;
        (*out)[*nout].path = strdup(src[k].path);
        (*out)[*nout].reason = strdup(why[k]);
        (*nout)++;
        if (!(*out)[*nout - 1].path || !(*out)[*nout - 1].reason)
            return RAPID_E_NOMEM;
    }
    return 0;
}

static void free_skipped(rapid_coadd_skip *s, int n)
{
    int k;
    for (k = 0; k < n; k++) {
        free(s[k].path);
        free(s[k].reason);
    }
    free(s);
}

static int cmp_double_asc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The cards every product carries, in its primary header and in the HDU
 * of its data (docs/products.md): what, where, from what, by what. */
static int provenance(rapid_header *h, int64_t rtid, const rapid_filter *f,
                      const coadd_input *in, int n, double magzp,
                      const rapid_refimmeta *m, rapid_err *err)
{
    char key[24], date[32];
    const char *card = NULL;
    double texp = 0;
    time_t now = time(NULL);
    struct tm tm;
    long nspike = 0;
    int k, rc = 0;

    for (k = 0; k < n; k++)
        texp += in[k].exptime, nspike += in[k].nspike;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    if ((rc = rapid_header_set_long(h, card = "FIELD", (long)rtid,
                                    "sky tile (rtid, NSIDE 512)")) ||
        (rc = rapid_header_set_long(h, card = "FID", f->fid, "filter id")) ||
        (rc = rapid_header_set_str(h, card = "FILTER", f->name, "filter")) ||
        (rc = rapid_header_set_long(h, card = "NFRAMES", n, "input images combined")) ||
        (rc = rapid_header_set_double(h, card = "MJDSTART", m->mjdobsmin,
                                      "first input MJD-OBS")) ||
        (rc = rapid_header_set_double(h, card = "MJDEND", m->mjdobsmax,
                                      "last input MJD-OBS")) ||
        (rc = rapid_header_set_double(h, card = "MAGZP", magzp,
                                      "AB zero point for DN/s")) ||
        (rc = rapid_header_set_double(h, card = "COV5PERC", m->cov5percent,
                                      "% of pixels with coverage >= 5")) ||
        (rc = rapid_header_set_double(h, card = "TOTEXPTM", texp,
                                      "[s] total exposure time")) ||
        (rc = rapid_header_set_long(h, card = "NSPIKE", nspike,
                                    "input spikes masked (hot pixels, cosmic rays)")))
        return rapid_header_fail(err, rc, "reference image", card);
    for (k = 0; k < n; k++) {
        const char *base = strrchr(in[k].src->path, '/');
        snprintf(key, sizeof key, "INFIL%03d", k + 1);
        if ((rc = rapid_header_set_str(h, key, base ? base + 1 : in[k].src->path,
                                       "input L2 file")) != 0)
            return rapid_header_fail(err, rc, "reference image", key);
    }
    if ((rc = rapid_header_set_str(h, card = "RAPIDVER", rapid_version(),
                                   "rapid version")) ||
        (rc = rapid_header_set_str(h, card = "GITCOMM", rapid_git_commit(),
                                   "rapid git commit")) ||
        (rc = rapid_header_set_str(h, card = "DATE", date, "UTC date of creation")))
        return rapid_header_fail(err, rc, "reference image", card);
    return 0;
}

/* Every card of src into dst, replacing any of the same keyword. */
static int add_cards(rapid_header *dst, const rapid_header *src)
{
    int k, rc;

    for (k = 0; k < src->ncards; k++) {
        char key[9];
        int len = 0;
        while (len < 8 && src->cards[k][len] != ' ' && src->cards[k][len] != '=' &&
               src->cards[k][len] != '\0')
            len++;
        memcpy(key, src->cards[k], (size_t)len);
        key[len] = '\0';
        rapid_header_delete(dst, key);
        if ((rc = rapid_header_append_card(dst, src->cards[k])) != 0)
            return rc;
    }
    return 0;
}

static int set_headers(rapid_coadd *out, rapid_wcs *grid, int64_t rtid,
                       const rapid_filter *f, const coadd_input *in, int n,
                       double magzp, rapid_err *err)
{
    int rc;

    if ((rc = provenance(&out->header, rtid, f, in, n, magzp, &out->meta, err)) != 0)
        return rc;
    if ((rc = rapid_wcs_to_header(grid, &out->image.hdr, err)) != 0) {
        rapid_err_prefix(err, "reference image");
        return rc;
    }
    if ((rc = add_cards(&out->image.hdr, &out->header)) != 0)
        return rapid_fail(err, rc, "reference image: no memory for its header");
    /* the maps' headers: the image's, with their own BUNIT */
    if ((rc = rapid_header_set_str(&out->image.hdr, "BUNIT", "DN/s", "at MAGZP")))
        return rapid_header_fail(err, rc, "reference image", "BUNIT");
    if ((rc = rapid_header_copy(&out->coverage.hdr, &out->image.hdr)))
        return rapid_fail(err, rc, "coverage map: no memory for its header");
    if ((rc = rapid_header_set_str(&out->coverage.hdr, "BUNIT", "pixel",
                                   "sum of input overlap areas, output pixels")))
        return rapid_header_fail(err, rc, "coverage map", "BUNIT");
    if ((rc = rapid_header_copy(&out->uncertainty.hdr, &out->image.hdr)))
        return rapid_fail(err, rc, "uncertainty map: no memory for its header");
    if ((rc = rapid_header_set_str(&out->uncertainty.hdr, "BUNIT", "DN/s",
                                   "1-sigma uncertainty of the image")))
        return rapid_header_fail(err, rc, "uncertainty map", "BUNIT");
    /* the PSF (a primary HDU of its own) and the catalog's table */
    if ((rc = add_cards(&out->psf.hdr, &out->header)))
        return rapid_fail(err, rc, "reference PSF: no memory for its header");
    if ((rc = rapid_header_set_str(&out->psf.hdr, "BUNIT", "",
                                   "none: normalised to unit sum")))
        return rapid_header_fail(err, rc, "reference PSF", "BUNIT");
    if ((rc = rapid_header_set_double(&out->psf.hdr, "PSFNORM", 1.0,
                                      "sum of the pixels")))
        return rapid_header_fail(err, rc, "reference PSF", "PSFNORM");
    if (out->psf_over.data) {
        if ((rc = add_cards(&out->psf_over.hdr, &out->header)))
            return rapid_fail(err, rc, "oversampled reference PSF: no memory "
                              "for its header");
        if ((rc = rapid_header_set_str(&out->psf_over.hdr, "BUNIT", "",
                                       "none: normalised to unit sum")))
            return rapid_header_fail(err, rc, "oversampled reference PSF", "BUNIT");
    }
    if ((rc = add_cards(&out->catalog.hdr, &out->header)))
        return rapid_fail(err, rc, "reference catalog: no memory for its header");
    return 0;
}

static int catalog(rapid_coadd *c, rapid_wcs *grid, int nthreads,
                   volatile sig_atomic_t *stop, rapid_err *err)
{
    rapid_extract_opts eo;
    rapid_extract_stats st;
    int k, rc;

    rapid_extract_opts_init(&eo);
    eo.stop = stop;
    eo.strip_rows = RAPID_EXTRACT_REF_STRIP_ROWS; /* rapid/extract.h: in strips */
    eo.nthreads = nthreads;
    rapid_table_release(&c->catalog);
    rc = rapid_extract(c->image.data, c->uncertainty.data, NULL, c->image.nx,
                       c->image.ny, &eo, grid, &c->catalog, &st, err);
    if (rc) {
        rapid_err_prefix(err, "reference image catalog");
        return rc;
    }
    /* fluxes are in the image's unit: DN/s at MAGZP, so that
     * mag = MAGZP - 2.5 log10(flux) */
    for (k = 0; k < c->catalog.ncols; k++) {
        rapid_column *col = &c->catalog.cols[k];
        if (!col->unit[0] && (!strncmp(col->name, "FLUX", 4) ||
                              !strcmp(col->name, "PEAK")))
            snprintf(col->unit, sizeof col->unit, "DN/s");
    }
    c->meta.nsexcatsources = st.nsources;
    c->meta.fwhmmedpix = st.fwhm_med;
    c->meta.fwhmminpix = st.fwhm_min;
    c->meta.fwhmmaxpix = st.fwhm_max;
    return 0;
}

/* RAPID_E_INTERRUPTED if the caller asked to stop (after step what). */
static int interrupted(const rapid_coadd_opts *o, const char *what,
                       rapid_err *err)
{
    return coadd_stopped(o) ? rapid_fail(err, RAPID_E_INTERRUPTED, "reference "
                                         "image: interrupted after %s", what)
                            : 0;
}

int rapid_coadd_make(const rapid_coadd_opts *o, int64_t rtid,
                     const char *filter, const rapid_coadd_input *inputs, int n,
                     rapid_coadd *out, rapid_progress_fn progress, void *arg,
                     rapid_err *err)
{
    const rapid_filter *f = rapid_filter_by_name(filter);
    rapid_wcs grid = RAPID_WCS_INIT;
    rapid_tile t = {0};
    coadd_input *in = NULL;
    const char **why = NULL;
    rapid_coadd_skip *skipped = NULL;
    int nskipped = 0;
    coadd_sums s;
    double *zp = NULL, magzp;
    int nin = 0, k, rc = 0;

    memset(&s, 0, sizeof s);
    rapid_coadd_init(out);
    if (!f)
        return rapid_fail(err, RAPID_E_ARG, "reference image: unknown filter '%s'",
                          filter ? filter : "(null)");
    if (o->size < 16 || o->max_inputs < 1 || o->max_inputs > 255 || o->min_inputs < 1)
        return rapid_fail(err, RAPID_E_ARG, "reference image: bad options (size %d, "
                          "inputs %d..%d)", o->size, o->min_inputs, o->max_inputs);
    if ((rc = rapid_tile_get(o->nside, rtid, &t, err)) != 0 ||
        (rc = rapid_wcs_tan_grid(&grid, t.cra, t.cdec, o->size, o->size,
                                 o->pixscale, err)) != 0)
        return rc;
    if ((rc = rapid_coadd_check_inputs(inputs, n, err)) != 0)
        goto cleanup;
    if (!(why = calloc((size_t)(n > 0 ? n : 1), sizeof *why))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    rc = coadd_choose_inputs(o, f, rtid, inputs, n, &grid, &t, &in, &nin, why, err);
    if ((rc == 0 || rc == RAPID_E_TOOFEW) &&
        list_skipped(inputs, n, why, &skipped, &nskipped) != 0) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    if (rc == RAPID_E_TOOFEW && nskipped > 0) { /* name those left out */
        char list[RAPID_ERR_MAX];
        size_t len = 0;
        for (k = 0; k < nskipped && len < sizeof list; k++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s (%s)",
                                    k ? "; " : "", skipped[k].path,
                                    skipped[k].reason);
        rapid_fail(err, rc, "%s; not used: %s", err->msg, list);
    }
    if (rc)
        goto cleanup;
    /* The common zero point: as asked, or the median of the inputs'. */
    if (!(zp = malloc((size_t)nin * sizeof *zp))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    out->meta.mjdobsmin = INFINITY, out->meta.mjdobsmax = -INFINITY;
    for (k = 0; k < nin; k++) {
        zp[k] = in[k].zptmag;
        out->meta.mjdobsmin = fmin(out->meta.mjdobsmin, in[k].mjd);
        out->meta.mjdobsmax = fmax(out->meta.mjdobsmax, in[k].mjd);
    }
    qsort(zp, (size_t)nin, sizeof *zp, cmp_double_asc);
    magzp = isfinite(o->magzp) ? o->magzp : zp[nin / 2];
    for (k = 0; k < nin; k++)
        in[k].scale = pow(10, 0.4 * (magzp - in[k].zptmag)) / in[k].exptime;
    out->meta.nframes = nin;
    /* Resample and add every input. */
    s.o = o, s.in = in, s.nin = nin, s.grid = &grid;
    s.progress = progress, s.arg = arg;
    pthread_mutex_init(&s.lock, NULL);
    for (k = 0; k < NBAND; k++)
        pthread_mutex_init(&s.band[k], NULL);
    if (coadd_sums_alloc(&s, o->size) != 0) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory for a "
                        "%d x %d grid", o->size, o->size);
        goto cleanup;
    }
    if ((rc = coadd_spike_ratios(in, nin, err)) != 0 ||
        (rc = coadd_run_inputs(&s, o->nthreads, err)) != 0)
        goto cleanup;
    out->meta.npixsat = s.npixsat;
    /* Reject, then the maps. */
    if ((rc = interrupted(o, "the inputs' sums", err)) != 0)
        goto cleanup;
    if ((rc = coadd_reject_outliers(&s, &out->meta.clnoutliers)) != 0) {
        rc = rapid_fail(err, rc, "reference image: no memory");
        goto cleanup;
    }
    coadd_take_maps(&s, out); /* frees the other planes: the catalog reuses them */
    if ((rc = coadd_image_stats(out)) != 0) {
        rc = rapid_fail(err, rc, "reference image statistics: no memory");
        goto cleanup;
    }
    if ((rc = interrupted(o, "the outliers' rejection", err)) != 0 ||
        (rc = coadd_reference_psf(o, in, nin, &out->psf, &out->psf_over, err)) != 0 ||
        (rc = interrupted(o, "the reference PSF", err)) != 0 ||
        (!o->defer_catalog && (rc = catalog(out, &grid, o->nthreads, o->stop, err)) != 0) ||
        (rc = set_headers(out, &grid, rtid, f, in, nin, magzp, err)) != 0)
        goto cleanup;
    if (!(out->inputs = calloc((size_t)nin, sizeof *out->inputs))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    for (k = 0; k < nin; k++) {
        if (!(out->inputs[k] = strdup(in[k].src->path))) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
            goto cleanup;
        }
        out->ninputs++;
    }
cleanup:
    coadd_sums_free(&s);
    if (s.o) {
        pthread_mutex_destroy(&s.lock);
        for (k = 0; k < NBAND; k++)
            pthread_mutex_destroy(&s.band[k]);
    }
    for (k = 0; k < nin; k++)
        coadd_input_release(&in[k]);
    free(in);
    free(zp);
    rapid_wcs_release(&grid);
    free(why);
    if (rc)
        rapid_coadd_release(out);
    if (rc == 0 || rc == RAPID_E_TOOFEW)
        out->skipped = skipped, out->nskipped = nskipped;
    else
        free_skipped(skipped, nskipped);
    return rc;
}

int rapid_coadd_catalog(rapid_coadd *c, volatile sig_atomic_t *stop,
                        rapid_err *err)
{
    rapid_wcs grid = RAPID_WCS_INIT;
    int rc;

    if (!c || !c->image.data || !c->uncertainty.data)
        return rapid_fail(err, RAPID_E_ARG, "reference image catalog: no image");
    if ((rc = rapid_wcs_from_header(&grid, &c->image.hdr, err)) != 0) {
        rapid_err_prefix(err, "reference image catalog");
        return rc;
    }
    if ((rc = catalog(c, &grid, 1, stop, err)) == 0 &&
        (rc = add_cards(&c->catalog.hdr, &c->header)) != 0)
        rc = rapid_fail(err, rc, "reference catalog: no memory for its header");
    rapid_wcs_release(&grid);
    return rc;
}

/* ---------------------------------------------------------------- output */

/* Product k (0 image, 1 coverage, 2 uncertainty, 4 catalog): the
 * provenance in a header-only primary HDU, the data in an extension. */
static int write_product(const char *path, const rapid_coadd *c, int k,
                         rapid_err *err)
{
    static const char *extname[5] = {"SCI", "COV", "UNC", NULL, "CATALOG"};
    const rapid_image *img[3] = {&c->image, &c->coverage, &c->uncertainty};
    rapid_fits_out *out = NULL;
    int rc;

    if ((rc = rapid_fits_create(&out, path, err)) != 0)
        return rc;
    if ((rc = rapid_fits_set_primary_header(out, &c->header, err)) != 0 ||
        (rc = k == 4 ? rapid_fits_append_table(out, &c->catalog, extname[k], err)
                     : rapid_fits_append_image(out, img[k], extname[k], err)) != 0) {
        rapid_fits_abort(out);
        return rc;
    }
    return rapid_fits_commit(out, err);
}

/* The PSF: the sampled PSF as the primary HDU, the model before sampling
 * (when there is one) as extension OVERSAMP. */
static int write_psf(const char *path, const rapid_coadd *c, rapid_err *err)
{
    rapid_fits_out *out = NULL;
    int rc;

    if (!c->psf_over.data)
        return rapid_fits_write_image(path, &c->psf, NULL, err);
    if ((rc = rapid_fits_create(&out, path, err)) != 0)
        return rc;
    if ((rc = rapid_fits_append_image(out, &c->psf, NULL, err)) != 0 ||
        (rc = rapid_fits_append_image(out, &c->psf_over, "OVERSAMP", err)) != 0) {
        rapid_fits_abort(out);
        return rc;
    }
    return rapid_fits_commit(out, err);
}

int rapid_coadd_product_name(char *out, size_t sz, int64_t rtid,
                             const char *filter, int k)
{
    static const char *suffix[RAPID_COADD_NPRODUCT] = {"", "_cov", "_unc",
                                                       "_psf", "_cat"};
    int n;

    if (k < 0 || k >= RAPID_COADD_NPRODUCT)
        return -1;
    n = snprintf(out, sz, "rapid_ref_%lld_%s%s.fits", (long long)rtid, filter,
                 suffix[k]);
    return n < 0 || (size_t)n >= sz ? -1 : 0;
}

int rapid_coadd_write_file(const rapid_coadd *c, int k, const char *path,
                           rapid_err *err)
{
    if (k < 0 || k >= RAPID_COADD_NPRODUCT)
        return rapid_fail(err, RAPID_E_ARG, "%s: no reference product %d", path, k);
    return k == RAPID_COADD_PSF ? write_psf(path, c, err)
                                : write_product(path, c, k, err);
}

int rapid_coadd_write_files(const rapid_coadd *c,
                            const char *const paths[RAPID_COADD_NPRODUCT],
                            rapid_err *err)
{
    int k, rc = 0;

    for (k = 0; k < RAPID_COADD_NPRODUCT && rc == 0; k++)
        rc = rapid_coadd_write_file(c, k, paths[k], err);
    return rc;
}

int rapid_coadd_write(const rapid_coadd *c, const char *dir, int64_t rtid,
                      const char *filter, rapid_err *err)
{
    char name[RAPID_COADD_NPRODUCT][128];
    const char *names[RAPID_COADD_NPRODUCT], *paths[RAPID_COADD_NPRODUCT];
    rapid_prodset *set = NULL;
    int k, rc;

    for (k = 0; k < RAPID_COADD_NPRODUCT; k++) {
        if (rapid_coadd_product_name(name[k], sizeof name[k], rtid, filter, k))
            return rapid_fail(err, RAPID_E_ARG, "%s: filter name too long", filter);
        names[k] = name[k];
    }
    if ((rc = rapid_prodset_begin(&set, dir, names, RAPID_COADD_NPRODUCT, err)) != 0)
        return rc;
    for (k = 0; k < RAPID_COADD_NPRODUCT; k++)
        paths[k] = rapid_prodset_path(set, k);
    if ((rc = rapid_coadd_write_files(c, paths, err)) != 0) {
        rapid_prodset_abort(set);
        rapid_err_prefix(err, "%s: the reference image was not written", dir);
        return rc;
    }
    return rapid_prodset_commit(set, err);
}
