/* vet.c - vetting metrics of candidates and the cuts on them (real/bogus),
 * with thresholds from an INI file (inih). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "image/candidates_internal.h"

void rapid_cuts_init(rapid_cuts *c)
{
    c->edge_min = 5;
    c->snr_min = 5;
    c->elong_max = 2;
    c->ratio_min = 0.35;
    c->ratio_max = 1.2;
    c->nneg_max = 18;
    c->nbad_max = 12;
    c->sumrat_min = 0.25;
    c->chi2_min = 0;
    c->chi2_max = 10;
    c->dmag_max = 0.3;
    c->satrad_min = 1;
    c->snr_psf_min = 5;
    c->snr_auto_min = 3;
    c->sharp_min = 0.7;
    c->broad_min = 0.7;
    c->sat_rmin = 30;
    c->sat_scale = 2;
}

int rapid_cuts_set(rapid_cuts *c, const char *name, const char *value,
                   char *problem, size_t sz)
{
    static const struct {
        const char *name;
        size_t off;
    } keys[] = {
        {"edge_min", offsetof(rapid_cuts, edge_min)},
        {"snr_min", offsetof(rapid_cuts, snr_min)},
        {"elong_max", offsetof(rapid_cuts, elong_max)},
        {"ratio_min", offsetof(rapid_cuts, ratio_min)},
        {"ratio_max", offsetof(rapid_cuts, ratio_max)},
        {"nneg_max", offsetof(rapid_cuts, nneg_max)},
        {"nbad_max", offsetof(rapid_cuts, nbad_max)},
        {"sumrat_min", offsetof(rapid_cuts, sumrat_min)},
        {"chi2_min", offsetof(rapid_cuts, chi2_min)},
        {"chi2_max", offsetof(rapid_cuts, chi2_max)},
        {"dmag_max", offsetof(rapid_cuts, dmag_max)},
        {"satrad_min", offsetof(rapid_cuts, satrad_min)},
        {"snr_psf_min", offsetof(rapid_cuts, snr_psf_min)},
        {"snr_auto_min", offsetof(rapid_cuts, snr_auto_min)},
        {"sharp_min", offsetof(rapid_cuts, sharp_min)},
        {"broad_min", offsetof(rapid_cuts, broad_min)},
        {"sat_rmin", offsetof(rapid_cuts, sat_rmin)},
        {"sat_scale", offsetof(rapid_cuts, sat_scale)},
    };
    size_t k;
    char *end;
    double v;

    for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (strcmp(name, keys[k].name) == 0)
            break;
    if (k == sizeof keys / sizeof keys[0]) {
        snprintf(problem, sz, "unknown key %s "
                 "(known: edge_min snr_min elong_max ratio_min ratio_max "
                 "nneg_max nbad_max sumrat_min chi2_min chi2_max dmag_max "
                 "satrad_min snr_psf_min snr_auto_min sharp_min broad_min sat_rmin "
                 "sat_scale)",
                 name);
        return -1;
    }
    errno = 0;
    v = strtod(value, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == value || *end || errno || !isfinite(v)) {
        snprintf(problem, sz, "%s = '%s' is not a finite number", name, value);
        return -1;
    }
    *(double *)((char *)c + keys[k].off) = v;
    return 0;
}

int rapid_cuts_check(const rapid_cuts *c, const char *path, rapid_err *err)
{
    if (c->ratio_min > c->ratio_max || c->chi2_min > c->chi2_max)
        return rapid_fail(err, RAPID_E_ARG, "%s: a minimum above its maximum "
                          "(ratio %g .. %g, chi2 %g .. %g)", path, c->ratio_min,
                          c->ratio_max, c->chi2_min, c->chi2_max);
    return 0;
}

typedef struct ini_ctx {
    rapid_cuts *c;
    const char *path;
    char problem[256];
} ini_ctx;

static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
    ini_ctx *ctx = user;

    if (!name) /* a section header alone */
        return 1;
    if (ctx->problem[0]) /* inih goes on after an error: keep the first */
        return 0;
    if (strcmp(section, "cuts") != 0) {
        snprintf(ctx->problem, sizeof ctx->problem, "key %s in section [%s]: the "
                 "cuts belong in section [cuts]", name, section);
        return 0;
    }
    return rapid_cuts_set(ctx->c, name, value, ctx->problem,
                          sizeof ctx->problem) == 0;
}

int rapid_cuts_read(rapid_cuts *c, const char *path, rapid_err *err)
{
    ini_ctx ctx;
    rapid_cuts tmp = *c;
    int rc;

    ctx.c = &tmp;
    ctx.path = path;
    ctx.problem[0] = '\0';
    rc = ini_parse(path, on_key, &ctx);
    if (rc == -1)
        return rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                          "%s: cannot read the cuts: %s", path,
                          errno ? strerror(errno) : "cannot open");
    if (rc == -2)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", path);
    if (rc > 0) /* the line of the first error */
        return rapid_fail(err, RAPID_E_ARG, "%s: line %d: %s", path, rc,
                          ctx.problem[0] ? ctx.problem : "not an INI line");
    if ((rc = rapid_cuts_check(&tmp, path, err)) != 0)
        return rc;
    *c = tmp;
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The 3x3 median of s D at (i, j) over its usable pixels; NaN if none. */
static float median3(const float *fit, int nx, int ny, int i, int j, int s)
{
    float v[9];
    int n = 0, a, b;

    for (b = j - 1; b <= j + 1; b++)
        for (a = i - 1; a <= i + 1; a++)
            if (a >= 0 && b >= 0 && a < nx && b < ny && isfinite(fit[(size_t)b * nx + a]))
                v[n++] = (float)s * fit[(size_t)b * nx + a];
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

void cand_metrics(const rapid_cand_input *in, const rapid_cand_opts *o,
                  const float *fit, const unsigned char *mask, cand_rows *rows,
                  long first)
{
    int nx = in->nx, ny = in->ny;
    long k;

    (void)o;
    for (k = first; k < rows->n; k++) {
        cand_row *r = &rows->r[k];
        int ci = (int)floor(r->x + 0.5), cj = (int)floor(r->y + 0.5), i, j;
        double sum = 0, sabs = 0;

        r->edge_dist = (float)fmin(fmin(r->x, r->y), fmin(nx - 1 - r->x, ny - 1 - r->y));
        r->snr_aper_3 = r->fluxerr_aper[CAND_AP3] > 0
                            ? r->flux_aper[CAND_AP3] / r->fluxerr_aper[CAND_AP3] : NAN;
        r->aper_ratio_3_6 = r->flux_aper[CAND_AP6] != 0
                                ? r->flux_aper[CAND_AP3] / r->flux_aper[CAND_AP6] : NAN;
        r->nneg = r->nbad = 0;
        for (j = cj - 2; j <= cj + 2; j++)
            for (i = ci - 2; i <= ci + 2; i++) {
                size_t o2;
                float f;
                if (i < 0 || j < 0 || i >= nx || j >= ny) {
                    r->nbad++;
                    continue;
                }
                o2 = (size_t)j * nx + i;
                if (mask[o2]) {
                    r->nbad++;
                    continue;
                }
                if (r->sign * fit[o2] < 0)
                    r->nneg++;
                f = median3(fit, nx, ny, i, j, r->sign);
                if (isfinite(f)) {
                    sum += f;
                    sabs += fabsf(f);
                }
            }
        r->sumrat = sabs > 0 ? (float)(sum / sabs) : NAN;
    }
}

void cand_vet(const rapid_cand_opts *o, double apfrac3, double psf_r36, double psf_fwhm,
              cand_rows *rows, long first)
{
    const rapid_cuts *c = &o->cuts;
    long k;

    for (k = first; k < rows->n; k++) {
        cand_row *r = &rows->r[k];
        double tot3 = r->flux_aper[CAND_AP3] / apfrac3;
        int f = 0;

        /* |m_psf - (m_aper3 - apcor)|, apcor = m_aper3 - m_total of the
         * PSF = -2.5 log10(apfrac3) */
        r->dmag = tot3 > 0 && r->psf.flux > 0
                      ? (float)fabs(2.5 * log10(tot3 / r->psf.flux)) : NAN;
        r->snr_psf = r->psf.fluxerr > 0 ? (float)(r->psf.flux / r->psf.fluxerr) : NAN;
        if (!(r->edge_dist > c->edge_min))
            f |= RAPID_FAIL_EDGE;
        if (!(r->snr_aper_3 >= c->snr_min))
            f |= RAPID_FAIL_SNR;
        if (!(r->elongation <= c->elong_max))
            f |= RAPID_FAIL_ELONG;
        if (!(r->aper_ratio_3_6 >= c->ratio_min && r->aper_ratio_3_6 <= c->ratio_max))
            f |= RAPID_FAIL_RATIO;
        if (!(r->nneg <= c->nneg_max))
            f |= RAPID_FAIL_NNEG;
        if (!(r->nbad <= c->nbad_max))
            f |= RAPID_FAIL_NBAD;
        if (!(r->sumrat >= c->sumrat_min))
            f |= RAPID_FAIL_SUMRAT;
        if (!(r->psf.chi2 > c->chi2_min && r->psf.chi2 < c->chi2_max))
            f |= RAPID_FAIL_CHI2;
        if (!(r->dmag < c->dmag_max))
            f |= RAPID_FAIL_DMAG;
        if (c->satrad_min > 0 && !(r->satrad >= c->satrad_min))
            f |= RAPID_FAIL_SAT;
        /* A noise peak that reaches S/N 5 in the 3-px aperture is mostly
         * one or two high pixels: its flux does not follow the PSF's
         * shape (the PSF fit, the optimal estimator for a point source,
         * gives it less) nor grow with the aperture (the Kron aperture
         * gives it little more flux for more noise).  A point source at
         * 3-px S/N 5 has PSF-fit S/N 6-7 and Kron S/N 4.5-5. */
        if (!(r->snr_psf >= c->snr_psf_min))
            f |= RAPID_FAIL_SNR_PSF;
        if (!(r->snr >= c->snr_auto_min))
            f |= RAPID_FAIL_SNR_AUTO;
        /* A hot pixel the DQ does not flag (always the same pixel of the
         * detector: the reference, made of other pointings, does not have
         * it) is narrower than the PSF can make anything: FWHM 0.8-0.95 px
         * against 1.0 px and more for point sources of any S/N under a
         * 1.5-px PSF.  A FWHM that could not be measured is not judged. */
        if (c->sharp_min > 0 && isfinite(r->fwhm) && r->fwhm < c->sharp_min * psf_fwhm)
            f |= RAPID_FAIL_SHARP;
        /* A subtraction residual broader than the PSF (what is left of a
         * galaxy or a star's wings: FWHM 2.5-4.3 px under a 1.5-px PSF
         * in the simulated H158 survey) has more of its light between 3
         * and 6 px than a point source: aper_ratio_3_6 down to 0.4 where
         * the PSF's is 0.73.  Judged against the PSF's own ratio, the
         * cut holds for any filter; at 0.7 x it, it removed 29 % of the
         * survey's false positives and 0.1 % of the injected sources
         * (docs/quality.md).  The aperture ratio, not the FWHM: at 3-px
         * S/N 5-10 a point source's moments FWHM scatters up to 2-3 x
         * the PSF's, its aperture ratio far less. */
        if (c->broad_min > 0 && isfinite(r->aper_ratio_3_6) &&
            r->aper_ratio_3_6 < c->broad_min * psf_r36)
            f |= RAPID_FAIL_BROAD;
        r->fail_bits = f;
    }
}

int cand_sat_find(const rapid_cand_input *in, double rmin, double scale,
                  cand_sat *s)
{
    size_t n = (size_t)in->nx * in->ny, i;
    unsigned char *seen;
    long *stack = NULL, cap = 0, scap = 0;
    int rc = 0;

    memset(s, 0, sizeof *s);
    if (!in->sat)
        return 0;
    if (!(seen = calloc(n, 1)))
        return RAPID_E_NOMEM;
    for (i = 0; i < n && rc == 0; i++) {
        long top = 0, np = 0;
        double sx = 0, sy = 0;
        if (!in->sat[i] || seen[i])
            continue;
        seen[i] = 1;
        if (scap == 0) {
            if (!(stack = malloc(256 * sizeof *stack))) {
                rc = RAPID_E_NOMEM;
                break;
            }
            scap = 256;
        }
        stack[top++] = (long)i;
        while (top > 0) { /* 8-connected flood fill */
            long o = stack[--top];
            int x = (int)(o % in->nx), y = (int)(o / in->nx), a, b;
            np++;
            sx += x;
            sy += y;
            for (b = y - 1; b <= y + 1; b++)
                for (a = x - 1; a <= x + 1; a++) {
                    size_t q = (size_t)b * in->nx + a;
                    if (a < 0 || b < 0 || a >= in->nx || b >= in->ny || seen[q] ||
                        !in->sat[q])
                        continue;
                    if (top == scap) {
                        long ns = scap ? 2 * scap : 256, *t = realloc(stack, (size_t)ns * sizeof *t);
                        if (!t) {
                            rc = RAPID_E_NOMEM;
                            goto done;
                        }
                        stack = t;
                        scap = ns;
                    }
                    seen[q] = 1;
                    stack[top++] = (long)q;
                }
        }
        if (s->n == cap) {
            long nc = cap ? 2 * cap : 64;
            double *x = realloc(s->x, (size_t)nc * sizeof *x), *y, *r;
            if (x)
                s->x = x;
            y = x ? realloc(s->y, (size_t)nc * sizeof *y) : NULL;
            if (y)
                s->y = y;
            r = y ? realloc(s->r, (size_t)nc * sizeof *r) : NULL;
            if (r)
                s->r = r;
            if (!r) {
                rc = RAPID_E_NOMEM;
                break;
            }
            cap = nc;
        }
        s->x[s->n] = sx / np;
        s->y[s->n] = sy / np;
        s->r[s->n] = rmin + scale * sqrt((double)np);
        s->n++;
    }
done:
    free(stack);
    free(seen);
    if (rc)
        cand_sat_free(s);
    return rc;
}

void cand_sat_free(cand_sat *s)
{
    free(s->x);
    free(s->y);
    free(s->r);
    memset(s, 0, sizeof *s);
}

void cand_sat_metric(const cand_sat *s, cand_rows *rows, long first)
{
    long k, j;

    for (k = first; k < rows->n; k++) {
        cand_row *r = &rows->r[k];
        double best = INFINITY;
        for (j = 0; j < s->n; j++)
            if (s->r[j] > 0) {
                double d = hypot(r->x - s->x[j], r->y - s->y[j]) / s->r[j];
                if (d < best)
                    best = d;
            }
        r->satrad = (float)best;
    }
}
