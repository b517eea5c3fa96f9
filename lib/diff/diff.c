/* diff.c - the pair prepared for subtraction, and the naive difference
 * (rapid/diff.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"
#include "rapid/extract.h"
#include "rapid/regrid.h"

#define COVER_MIN 0.5   /* reference coverage below this: no difference */
#define BOX_SCI 500
#define BOX_REF 128

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

/* The reference's coverage and uncertainty on the science pixels; a NULL
 * coverage is 1 wherever the reference has data, a NULL uncertainty its
 * background noise there. */
static int resample_maps(const rapid_diff_ref *r, rapid_wcs *sw,
                         rapid_diff_pair *p, float *work, rapid_err *err)
{
    size_t i, n = (size_t)r->nx * r->ny, m = (size_t)p->nx * p->ny;
    float *tmp = NULL;
    int rc;

    if (r->cov) {
        if ((rc = rapid_regrid(r->cov, r->nx, r->ny, r->wcs, sw, p->nx, p->ny,
                               RAPID_REGRID_MEAN, p->cov.data, NULL, err)))
            return rc;
    } else {
        for (i = 0; i < m; i++) /* the covered share, from the image */
            p->cov.data[i] = isfinite(p->ref.data[i]) ? work[i] : 0;
    }
    if (!r->unc)
        return 0; /* filled from the background after it is known */
    if (!(tmp = malloc(n * sizeof *tmp)))
        return rapid_fail(err, RAPID_E_NOMEM, "diff: out of memory");
    for (i = 0; i < n; i++)
        tmp[i] = r->unc[i] * r->unc[i];
    rc = rapid_regrid(tmp, r->nx, r->ny, r->wcs, sw, p->nx, p->ny,
                      RAPID_REGRID_VARIANCE, p->unc.data, NULL, err);
    free(tmp);
    for (i = 0; rc == 0 && i < m; i++)
        p->unc.data[i] = sqrtf(p->unc.data[i]);
    return rc;
}

/* Catalogs of both images, and the stars paired between them. */
static int match_stars(const rapid_science *sci, rapid_diff_pair *p,
                       double zp_scale, rapid_err *err)
{
    rapid_table cs = RAPID_TABLE_INIT, cr = RAPID_TABLE_INIT;
    rapid_extract_opts eo;
    rapid_gainmatch_opts go;
    int rc;

    rapid_extract_opts_init(&eo);
    rapid_gainmatch_opts_init(&go);
    if ((rc = rapid_extract(sci->rate.data, NULL, NULL, p->nx, p->ny, &eo,
                            NULL, &cs, NULL, err)) ||
        (rc = rapid_extract(p->ref.data, NULL, NULL, p->nx, p->ny, &eo, NULL,
                            &cr, NULL, err)))
        goto cleanup;
    rc = rapid_gainmatch_catalogs(&cs, &cr, &go, zp_scale, &p->match, err);
cleanup:
    rapid_table_release(&cs);
    rapid_table_release(&cr);
    return rc;
}

int rapid_diff_prepare(const rapid_science *sci, rapid_wcs *sci_wcs,
                       const rapid_diff_ref *ref, rapid_diff_pair *p,
                       rapid_err *err)
{
    rapid_background_opts bo;
    float *cover = NULL;
    size_t i, m;
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
    if ((rc = rapid_regrid(ref->image, ref->nx, ref->ny, ref->wcs, sci_wcs,
                           p->nx, p->ny, RAPID_REGRID_FLUX, p->ref.data, cover,
                           err)) ||
        (rc = resample_maps(ref, sci_wcs, p, cover, err)))
        goto fail;
    rapid_background_opts_init(&bo);
    bo.box = BOX_SCI;
    if ((rc = rapid_background_make(sci->rate.data, p->nx, p->ny, &bo,
                                    &p->bkg_sci, err)))
        goto fail;
    bo.box = BOX_REF;
    if ((rc = rapid_background_make(p->ref.data, p->nx, p->ny, &bo,
                                    &p->bkg_ref, err)))
        goto fail;
    if (!ref->unc) /* the reference's own noise, where it has data */
        for (i = 0; i < m; i++)
            p->unc.data[i] = isfinite(p->ref.data[i])
                                 ? (float)rapid_background_rms_at(
                                       &p->bkg_ref, (double)(i % p->nx),
                                       (double)(i / p->nx))
                                 : NAN;
    if ((rc = match_stars(sci, p, ref->zp_scale, err)))
        goto fail;
    free(cover);
    return 0;
fail:
    rapid_err_prefix(err, "preparing the difference");
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
