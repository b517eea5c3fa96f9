/* gainmatch.c - stars paired between two catalogs: flux scale and offset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "rapid/gainmatch.h"

void rapid_gainmatch_opts_init(rapid_gainmatch_opts *o)
{
    o->aperture = 6;
    o->match_radius = 1.0;
    o->isolation = 8;
    o->max_elong = 1.3;
    o->min_snr = 20;
    o->max_peak_sci = 0;
    o->max_peak_ref = 0;
    o->clip_sigma = 3;
    o->min_matches = 20;
}

/* The columns used, as doubles (float and double columns both taken). */
typedef struct cat {
    long n;
    const void *x, *y, *flux, *fluxerr, *elong, *peak;
    rapid_coltype tx, ty, tf, tfe, te, tp;
    const int32_t *flags;
    int *sorted;          /* rows by y, for neighbour searches */
} cat;

static double val(const void *d, rapid_coltype t, long i)
{
    return t == RAPID_COL_F64 ? ((const double *)d)[i]
                              : (double)((const float *)d)[i];
}

static int column(const rapid_table *t, const char *which, const char *name,
                  const void **data, rapid_coltype *type, rapid_err *err)
{
    const rapid_column *c = rapid_table_col(t, name);

    if (!c || (c->type != RAPID_COL_F32 && c->type != RAPID_COL_F64))
        return rapid_fail(err, RAPID_E_TABLE, "gain match: the %s catalog has "
                          "no floating-point column %s", which, name);
    *data = c->data;
    *type = c->type;
    return 0;
}

typedef struct row_y {
    double y;
    int i;
} row_y;

static int by_y(const void *a, const void *b)
{
    const row_y *p = a, *q = b;

    if (p->y != q->y)
        return (p->y > q->y) - (p->y < q->y);
    return (p->i > q->i) - (p->i < q->i);
}

static int cat_open(const rapid_table *t, const char *which, double aper,
                    cat *c, rapid_err *err)
{
    const rapid_column *fl = rapid_table_col(t, "FLAGS");
    char fname[48], ename[48];
    row_y *ry;
    long i;
    int rc;

    snprintf(fname, sizeof fname, "FLUX_APER_%g", aper);
    snprintf(ename, sizeof ename, "FLUXERR_APER_%g", aper);
    if ((rc = column(t, which, "XWIN", &c->x, &c->tx, err)) ||
        (rc = column(t, which, "YWIN", &c->y, &c->ty, err)) ||
        (rc = column(t, which, fname, &c->flux, &c->tf, err)) ||
        (rc = column(t, which, ename, &c->fluxerr, &c->tfe, err)) ||
        (rc = column(t, which, "ELONGATION", &c->elong, &c->te, err)) ||
        (rc = column(t, which, "PEAK", &c->peak, &c->tp, err)))
        return rc;
    if (!fl || fl->type != RAPID_COL_I32)
        return rapid_fail(err, RAPID_E_TABLE, "gain match: the %s catalog has "
                          "no integer column FLAGS", which);
    c->flags = fl->data;
    c->n = t->nrows;
    c->sorted = malloc((size_t)(c->n ? c->n : 1) * sizeof *c->sorted);
    ry = malloc((size_t)(c->n ? c->n : 1) * sizeof *ry);
    if (!c->sorted || !ry) {
        free(ry);
        return rapid_fail(err, RAPID_E_NOMEM, "gain match: out of memory");
    }
    for (i = 0; i < c->n; i++)
        ry[i].y = val(c->y, c->ty, i), ry[i].i = (int)i;
    qsort(ry, (size_t)c->n, sizeof *ry, by_y);
    for (i = 0; i < c->n; i++)
        c->sorted[i] = ry[i].i;
    free(ry);
    return 0;
}

/* First place in c->sorted with y >= v. */
static long lower(const cat *c, double v)
{
    long lo = 0, hi = c->n;

    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (val(c->y, c->ty, c->sorted[mid]) < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The nearest row of c to (x, y) within r, other than `self`, and how
 * many rows other than self lie within r; -1 if none. */
static long nearest(const cat *c, double x, double y, double r, long self,
                    int *count)
{
    long k, best = -1;
    double d2best = r * r;

    *count = 0;
    for (k = lower(c, y - r); k < c->n; k++) {
        long i = c->sorted[k];
        double dx, dy, d2;
        if (val(c->y, c->ty, i) > y + r)
            break;
        if (i == self)
            continue;
        dx = val(c->x, c->tx, i) - x;
        dy = val(c->y, c->ty, i) - y;
        d2 = dx * dx + dy * dy;
        if (d2 <= r * r) {
            (*count)++;
            if (d2 <= d2best)
                d2best = d2, best = i;
        }
    }
    return best;
}

/* A star both images can be trusted on, by this catalog's measures. */
static int usable(const cat *c, long i, const rapid_gainmatch_opts *o,
                  double max_peak)
{
    double f = val(c->flux, c->tf, i), fe = val(c->fluxerr, c->tfe, i);
    double e = val(c->elong, c->te, i), p = val(c->peak, c->tp, i);
    int crowd;

    if (c->flags[i] != 0 || !(f > 0) || !(fe > 0) || f / fe < o->min_snr ||
        !(e <= o->max_elong) || (max_peak > 0 && !(p < max_peak)))
        return 0;
    nearest(c, val(c->x, c->tx, i), val(c->y, c->ty, i), o->isolation, i,
            &crowd);
    return crowd == 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median of v[0..n) after clipping the values whose deviation from it,
 * in units of their own errors e[], exceeds k times the larger of 1 and
 * the robust scatter (1.4826 MAD) of those normalised deviations; repeated
 * until nothing more goes.  Faint stars are not thrown out for being
 * noisier, and errors that are too small do not throw out good stars.
 * keep[] marks the kept; returns their number. */
static int clipped_median(const double *v, const double *e, int n, double k,
                          double *med, unsigned char *keep, double *work)
{
    int i, m = n, changed = 1;

    for (i = 0; i < n; i++)
        keep[i] = 1;
    *med = NAN;
    while (changed && m > 0) {
        double s;
        for (m = 0, i = 0; i < n; i++)
            if (keep[i])
                work[m++] = v[i];
        *med = median(work, m);
        if (m < 3)
            break;
        for (m = 0, i = 0; i < n; i++)
            if (keep[i])
                work[m++] = fabs(v[i] - *med) / e[i];
        s = 1.4826 * median(work, m);
        s = s > 1 ? s : 1;
        changed = 0;
        for (i = 0; i < n; i++)
            if (keep[i] && fabs(v[i] - *med) > k * s * e[i])
                keep[i] = 0, changed = 1;
        for (m = 0, i = 0; i < n; i++)
            m += keep[i];
    }
    return m;
}

/* Median of the kept values, and rms about it. */
static void kept_stats(const double *v, const unsigned char *keep, int n,
                       double *work, double *med, double *rms)
{
    double s = 0;
    int i, m = 0;

    for (i = 0; i < n; i++)
        if (keep[i])
            work[m++] = v[i];
    if (m == 0) {
        *med = *rms = NAN;
        return;
    }
    *med = median(work, m);
    for (i = 0; i < n; i++)
        if (keep[i])
            s += (v[i] - *med) * (v[i] - *med);
    *rms = sqrt(s / m);
}

int rapid_gainmatch_catalogs(const rapid_table *sci, const rapid_table *ref,
                             const rapid_gainmatch_opts *o, double zp_scale,
                             rapid_gainmatch *out, rapid_err *err)
{
    cat s, r;
    double *ratio = NULL, *rerr = NULL, *dx = NULL, *dy = NULL, *work = NULL;
    double med = NAN;
    unsigned char *keep = NULL;
    int n = 0, kept = 0, rc, crowd;
    long i, j;

    memset(&s, 0, sizeof s);
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    out->scale = out->scale_err = NAN;
    out->dx_median = out->dy_median = out->dx_rms = out->dy_rms = NAN;
    if (!sci || !ref || !o || !(zp_scale > 0) || !isfinite(zp_scale) ||
        !(o->match_radius > 0) || !(o->clip_sigma > 0) || o->min_matches < 3)
        return rapid_fail(err, RAPID_E_ARG, "gain match: missing catalog or "
                          "bad options (zero-point scale %g, match radius "
                          "%g px, clip %g, at least %d stars)", zp_scale,
                          o ? o->match_radius : 0, o ? o->clip_sigma : 0,
                          o ? o->min_matches : 0);
    if ((rc = cat_open(sci, "science", o->aperture, &s, err)) != 0 ||
        (rc = cat_open(ref, "reference", o->aperture, &r, err)) != 0)
        goto cleanup;
    ratio = malloc((size_t)(s.n ? s.n : 1) * sizeof *ratio);
    rerr = malloc((size_t)(s.n ? s.n : 1) * sizeof *rerr);
    dx = malloc((size_t)(s.n ? s.n : 1) * sizeof *dx);
    dy = malloc((size_t)(s.n ? s.n : 1) * sizeof *dy);
    work = malloc((size_t)(s.n ? s.n : 1) * sizeof *work);
    keep = malloc((size_t)(s.n ? s.n : 1));
    if (!ratio || !rerr || !dx || !dy || !work || !keep) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "gain match: out of memory for "
                        "%ld sources", s.n);
        goto cleanup;
    }
    for (i = 0; i < s.n; i++) {
        double x = val(s.x, s.tx, i), y = val(s.y, s.ty, i);
        if (!usable(&s, i, o, o->max_peak_sci))
            continue;
        j = nearest(&r, x, y, o->match_radius, -1, &crowd);
        if (j < 0 || crowd != 1 || !usable(&r, j, o, o->max_peak_ref))
            continue;
        ratio[n] = val(s.flux, s.tf, i) / val(r.flux, r.tf, j);
        rerr[n] = ratio[n] * hypot(val(s.fluxerr, s.tfe, i) /
                                       val(s.flux, s.tf, i),
                                   val(r.fluxerr, r.tfe, j) /
                                       val(r.flux, r.tf, j));
        dx[n] = x - val(r.x, r.tx, j);
        dy[n] = y - val(r.y, r.ty, j);
        n++;
    }
    out->from = "zero points";
    out->scale = zp_scale;
    if (n > 0) {
        kept = clipped_median(ratio, rerr, n, o->clip_sigma, &med, keep,
                              work);
        out->nstars = kept;
        kept_stats(dx, keep, n, work, &out->dx_median, &out->dx_rms);
        kept_stats(dy, keep, n, work, &out->dy_median, &out->dy_rms);
    }
    if (kept >= o->min_matches && med > 0 && isfinite(med)) {
        double rms;
        kept_stats(ratio, keep, n, work, &med, &rms);
        out->scale = med;
        /* the median's error, for normal scatter: 1.2533 sigma / sqrt(n) */
        out->scale_err = 1.2533 * rms / sqrt((double)kept);
        out->from = "stars";
    }
cleanup:
    free(s.sorted);
    free(r.sorted);
    free(ratio);
    free(rerr);
    free(dx);
    free(dy);
    free(work);
    free(keep);
    return rc;
}
