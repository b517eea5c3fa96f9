/* inject.c - the sources the evaluation injects: where (in the field, or
 * offset from a galaxy's centre) and into a copy of an L2 file
 * (rapid/eval.h). */
#include "rapid/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/filters.h"
#include "rapid/psf.h"
#include "rapid/rng.h"
#include "rapid/sim.h"

#include "eval/eval_internal.h"

void rapid_eval_plan_opts_init(rapid_eval_plan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n = 100;
    o->mag_min = 21;
    o->mag_max = 28;
    o->nuclear_frac = 0.5;
    o->max_offset = 1.5;
    o->host_mag_max = 25;
    o->margin = 10;
    o->seed = 1;
}

double eval_colval(const rapid_column *c, long k)
{
    switch (c->type) {
    case RAPID_COL_F64:
        return ((const double *)c->data)[k];
    case RAPID_COL_F32:
        return ((const float *)c->data)[k];
    case RAPID_COL_I32:
        return ((const int32_t *)c->data)[k];
    case RAPID_COL_I64:
        return (double)((const int64_t *)c->data)[k];
    default:
        return NAN;
    }
}

/* The static truth's galaxies inside the margins of the image: their
 * rows, pixel positions and half-light radii in pixels. */
typedef struct hosts {
    long n;
    long *row;
    double *x, *y, *re_pix;
} hosts;

static void hosts_free(hosts *h)
{
    free(h->row);
    free(h->x);
    h->row = NULL;
    h->x = NULL;
    h->n = 0;
}

static int find_hosts(rapid_wcs *w, int nx, int ny, const char *filter,
                      const rapid_table *t, const rapid_eval_plan_opts *o,
                      hosts *h, rapid_err *err)
{
    eval_static_cols c;
    const rapid_column *ctype, *cra, *cdec, *cre, *cmag;
    double *ra = NULL, *dec = NULL, *x, *y, scale;
    long k, m = 0;
    int rc = 0;

    memset(h, 0, sizeof *h);
    if (!t || t->nrows <= 0)
        return 0;
    if ((rc = eval_static_columns(t, filter, &c, err)) != 0)
        return rc;
    ctype = c.type, cra = c.ra, cdec = c.dec, cre = c.re, cmag = c.mag;
    /* candidates first by the cheap cuts, then their pixels */
    ra = malloc((size_t)t->nrows * 2 * sizeof *ra);
    h->row = malloc((size_t)t->nrows * sizeof *h->row);
    h->x = malloc((size_t)t->nrows * 3 * sizeof *h->x);
    if (!ra || !h->row || !h->x) {
        free(ra);
        hosts_free(h);
        return rapid_fail(err, RAPID_E_NOMEM, "static truth: no memory");
    }
    dec = ra + t->nrows;
    for (k = 0; k < t->nrows; k++) {
        if (eval_colval(ctype, k) != 2 || !(eval_colval(cmag, k) < o->host_mag_max) ||
            !(eval_colval(cre, k) > 0))
            continue;
        h->row[m] = k;
        ra[m] = eval_colval(cra, k);
        dec[m++] = eval_colval(cdec, k);
    }
    x = h->x;
    y = x + t->nrows;
    h->y = y;
    h->re_pix = y + t->nrows;
    scale = 3600.0 * sqrt(fabs(w->cd[0][0] * w->cd[1][1] - w->cd[0][1] * w->cd[1][0]));
    if (m > 0 && (rc = rapid_wcs_sky2pix(w, (int)m, ra, dec, x, y, err)) != 0) {
        free(ra);
        hosts_free(h);
        return rc;
    }
    for (k = 0; k < m; k++) {
        long r = h->row[k];
        if (!(x[k] >= o->margin && x[k] <= nx - 1 - o->margin && y[k] >= o->margin &&
              y[k] <= ny - 1 - o->margin))
            continue;
        h->row[h->n] = r;
        x[h->n] = x[k];
        y[h->n] = y[k];
        h->re_pix[h->n++] = eval_colval(cre, r) / scale;
    }
    free(ra);
    return 0;
}

int rapid_eval_plan(rapid_wcs *w, int nx, int ny, const char *filter,
                    const rapid_table *statics, const rapid_eval_plan_opts *o,
                    rapid_eval_source *src, rapid_err *err)
{
    hosts h;
    rapid_rng r;
    double *x = NULL, *y, *ra, *dec;
    int k, rc;

    if (!w || !o || !src || o->n < 0 || nx <= 2 * o->margin + 1 ||
        ny <= 2 * o->margin + 1 || !(o->mag_max >= o->mag_min) || !filter)
        return rapid_fail(err, RAPID_E_ARG, "injection plan: bad arguments (%d sources, "
                          "%d x %d image, margin %d)", o ? o->n : 0, nx, ny,
                          o ? o->margin : 0);
    if ((rc = find_hosts(w, nx, ny, filter, statics, o, &h, err)) != 0)
        return rc;
    if (!(x = malloc((size_t)(o->n > 0 ? o->n : 1) * 4 * sizeof *x))) {
        hosts_free(&h);
        return rapid_fail(err, RAPID_E_NOMEM, "injection plan: no memory");
    }
    y = x + o->n;
    ra = y + o->n;
    dec = ra + o->n;
    rapid_rng_seed(&r, o->seed);
    for (k = 0; k < o->n; k++) {
        rapid_eval_source *s = &src[k];
        /* drawn in this order so that a plan without hosts is the same
         * stream as bench/inject_l2 always drew */
        double fx = rapid_rng_uniform(&r), fy = rapid_rng_uniform(&r);
        memset(s, 0, sizeof *s);
        s->mag = o->mag_min + (o->mag_max - o->mag_min) * rapid_rng_uniform(&r);
        s->group = RAPID_EVAL_FIELD;
        s->x = o->margin + (nx - 1 - 2 * o->margin) * fx;
        s->y = o->margin + (ny - 1 - 2 * o->margin) * fy;
        if (h.n > 0 && rapid_rng_uniform(&r) < o->nuclear_frac) {
            long g = (long)(rapid_rng_uniform(&r) * h.n);
            double rad = o->max_offset * h.re_pix[g] * rapid_rng_uniform(&r);
            double phi = 2 * M_PI * rapid_rng_uniform(&r);
            double gx = h.x[g] + rad * cos(phi), gy = h.y[g] + rad * sin(phi);
            if (gx >= o->margin && gx <= nx - 1 - o->margin && gy >= o->margin &&
                gy <= ny - 1 - o->margin) {
                s->x = gx;
                s->y = gy;
                s->group = RAPID_EVAL_NUCLEAR;
                s->host = (int64_t)eval_colval(rapid_table_col(statics, "id"), h.row[g]);
            }
        }
        x[k] = s->x;
        y[k] = s->y;
    }
    rc = o->n > 0 ? rapid_wcs_pix2sky(w, o->n, x, y, ra, dec, err) : 0;
    for (k = 0; rc == 0 && k < o->n; k++) {
        src[k].ra = ra[k];
        src[k].dec = dec[k];
    }
    free(x);
    hosts_free(&h);
    return rc;
}

int rapid_eval_inject_l2(const char *in, const char *out, rapid_eval_source *src,
                         int n, uint64_t seed, rapid_err *err)
{
    rapid_header prim = RAPID_HEADER_INIT;
    rapid_image sci = RAPID_IMAGE_INIT, erri = RAPID_IMAGE_INIT, model = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_psf_field field;
    rapid_sim_injected *tr = NULL;
    rapid_fits_out *fo = NULL;
    const rapid_filter *filt;
    char fname[32];
    double *ra = NULL, *dec, *mag, gain = 1;
    long sca = 0, k;
    int rc, i, have_field = 0;

    memset(&field, 0, sizeof field);
    if ((rc = rapid_fits_read_header(in, "0", &prim, err)) != 0 ||
        (rc = rapid_fits_read_image(in, "SCI", &sci, err)) != 0 ||
        (rc = rapid_fits_read_image(in, "ERR", &erri, err)) != 0 ||
        (rc = rapid_fits_read_image_u32(in, "DQ", &dq, err)) != 0 ||
        (rc = rapid_wcs_from_header(&wcs, &sci.hdr, err)) != 0 ||
        (rc = rapid_header_get_str(&sci.hdr, "FILTER", fname, sizeof fname, err)) != 0 ||
        (rc = rapid_header_get_long(&sci.hdr, "SCA_NUM", &sca, err)) != 0)
        goto done;
    if (!(filt = rapid_filter_by_name(fname))) {
        rc = rapid_fail(err, RAPID_E_KEY, "%s: unknown FILTER '%s'", in, fname);
        goto done;
    }
    if (rapid_header_has(&sci.hdr, "GAIN"))
        rapid_header_get_double(&sci.hdr, "GAIN", &gain, NULL);
    if ((rc = rapid_psf_field_make(&field, filt, (int)sca, sci.nx, sci.ny, NULL, err)) != 0)
        goto done;
    have_field = 1;
    ra = malloc((size_t)(n > 0 ? n : 1) * 3 * sizeof *ra);
    tr = malloc((size_t)(n > 0 ? n : 1) * sizeof *tr);
    if (!ra || !tr) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for %d sources", in, n);
        goto done;
    }
    dec = ra + (n > 0 ? n : 1);
    mag = dec + (n > 0 ? n : 1);
    for (i = 0; i < n; i++) {
        ra[i] = src[i].ra;
        dec[i] = src[i].dec;
        mag[i] = src[i].mag;
    }
    if ((rc = rapid_sim_inject(&sci, &wcs, &field, n, ra, dec, mag, seed, tr, err)) != 0 ||
        (rc = rapid_image_alloc(&model, sci.nx, sci.ny, 0, err)) != 0)
        goto done;
    for (i = 0; i < n; i++) {
        src[i].x = tr[i].x;
        src[i].y = tr[i].y;
        src[i].flux_dn = tr[i].on_image ? tr[i].flux_dn : 0;
        if (tr[i].on_image)
            rapid_psf_field_add(&field, model.data, sci.nx, sci.ny, tr[i].x, tr[i].y,
                                tr[i].flux_dn);
    }
    /* ERR grows by the added counts' Poisson variance (DN^2 = counts / g) */
    for (k = 0; k < (long)sci.nx * sci.ny; k++)
        if (model.data[k] > 0 && isfinite(erri.data[k]))
            erri.data[k] = (float)sqrt((double)erri.data[k] * erri.data[k] +
                                       model.data[k] / gain);
    if ((rc = rapid_fits_create(&fo, out, err)) != 0)
        goto done;
    if ((rc = rapid_fits_set_primary_header(fo, &prim, err)) != 0 ||
        (rc = rapid_fits_append_image(fo, &sci, "SCI", err)) != 0 ||
        (rc = rapid_fits_append_image(fo, &erri, "ERR", err)) != 0 ||
        (rc = rapid_fits_append_image_u32(fo, &dq, "DQ", err)) != 0) {
        rapid_fits_abort(fo);
        goto done;
    }
    rc = rapid_fits_commit(fo, err);
done:
    free(ra);
    free(tr);
    if (have_field)
        rapid_psf_field_release(&field);
    rapid_image_release(&sci);
    rapid_image_release(&erri);
    rapid_image_release(&model);
    rapid_image_u32_release(&dq);
    rapid_header_release(&prim);
    rapid_wcs_release(&wcs);
    return rc;
}
