/* candidates_vs_truth.c - how many simulated transients a candidate
 * catalog recovers and passes, and how many passing candidates are not
 * transients.
 *
 *   candidates_vs_truth TRANSIENTS.fits SCIENCE REFS UNC.fits PSF.fits CAT.fits
 *
 * TRANSIENTS.fits: the simulator's truth/transients.fits; SCIENCE: the
 * science image's file name as the truth table names it; REFS: the file
 * names of the reference's inputs, comma-separated; UNC.fits, PSF.fits:
 * the difference's uncertainty and PSF; CAT.fits: `rapid extract`'s
 * catalog of that difference.  Every transient or variable's expected
 * flux on the difference is its flux in the science image less its mean
 * over the reference's inputs (DN/s: flux_dn / EXPTIME of the pointings,
 * 302 s for H158 unless the truth says otherwise - given by --exptime), its
 * expected S/N that flux over the PSF-fit error sigma / sqrt(sum P^2) at
 * its position.  Those with |S/N| > 10, more than 5 px from an edge and on
 * pixels with data are matched to candidates of their sign within 0.5 px.
 * Prints the counts and the fraction that passes the cuts, and the
 * passing candidates further than 1.5 px from any transient with
 * |S/N| > 3 (false positives) per million pixels with data.  Bench only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/fits.h"

typedef struct tr {
    int64_t id;
    double x, y, f, fref;
    int nref;
} tr;

static double col_d(const rapid_column *c, long i)
{
    switch (c->type) {
    case RAPID_COL_F64: return ((const double *)c->data)[i];
    case RAPID_COL_F32: return ((const float *)c->data)[i];
    case RAPID_COL_I32: return ((const int32_t *)c->data)[i];
    case RAPID_COL_I64: return (double)((const int64_t *)c->data)[i];
    default: return NAN;
    }
}

static const rapid_column *need(const rapid_table *t, const char *name, const char *path)
{
    const rapid_column *c = rapid_table_col(t, name);
    if (!c) {
        fprintf(stderr, "%s: no column %s\n", path, name);
        exit(1);
    }
    return c;
}

static int in_list(const char *name, const char *list)
{
    size_t n = strlen(name);
    const char *p = list;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
        p += n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rapid_table t = RAPID_TABLE_INIT, cat = RAPID_TABLE_INIT;
    rapid_image unc = RAPID_IMAGE_INIT, psf = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const rapid_column *cimg, *cid, *cx, *cy, *cf;
    double exptime = 302, p2 = 0, npix = 0;
    tr *v;
    long i, j, nv = 0, k;
    long nsel = 0, nfound = 0, npass = 0, nfp = 0, nfp_neg = 0;
    const double *x, *y;
    const int32_t *sign, *pass, *fail;
    int *used;
    long failcount[14] = {0};

    if (argc >= 9 && strcmp(argv[7], "--exptime") == 0)
        exptime = atof(argv[8]);
    if (argc < 7) {
        fprintf(stderr, "usage: candidates_vs_truth TRANSIENTS.fits SCIENCE REFS "
                        "UNC.fits PSF.fits CAT.fits [--exptime S]\n");
        return 2;
    }
    if (rapid_fits_read_table(argv[1], NULL, &t, &err) ||
        rapid_fits_read_image(argv[4], NULL, &unc, &err) ||
        rapid_fits_read_image(argv[5], NULL, &psf, &err) ||
        rapid_fits_read_table(argv[6], "CANDIDATES", &cat, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (k = 0; k < (long)psf.nx * psf.ny; k++)
        p2 += (double)psf.data[k] * psf.data[k];
    for (k = 0; k < (long)unc.nx * unc.ny; k++)
        npix += isfinite(unc.data[k]);
    cimg = need(&t, "image", argv[1]);
    cid = need(&t, "id", argv[1]);
    cx = need(&t, "x", argv[1]);
    cy = need(&t, "y", argv[1]);
    cf = need(&t, "flux_dn", argv[1]);
    v = calloc((size_t)t.nrows + 1, sizeof *v);
    for (i = 0; i < t.nrows; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", cimg->width, (const char *)cimg->data + (size_t)i * cimg->width);
        if (strcmp(name, argv[2]) == 0) {
            v[nv].id = (int64_t)col_d(cid, i);
            v[nv].x = col_d(cx, i);
            v[nv].y = col_d(cy, i);
            v[nv].f = col_d(cf, i) / exptime;
            nv++;
        }
    }
    for (i = 0; i < t.nrows; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", cimg->width, (const char *)cimg->data + (size_t)i * cimg->width);
        if (!in_list(name, argv[3]))
            continue;
        for (j = 0; j < nv; j++)
            if (v[j].id == (int64_t)col_d(cid, i)) {
                v[j].fref += col_d(cf, i) / exptime;
                v[j].nref++;
                break;
            }
    }
    x = need(&cat, "x", argv[6])->data;
    y = need(&cat, "y", argv[6])->data;
    sign = need(&cat, "sign", argv[6])->data;
    pass = need(&cat, "pass", argv[6])->data;
    fail = need(&cat, "fail_bits", argv[6])->data;
    used = calloc((size_t)cat.nrows + 1, sizeof *used);
    for (j = 0; j < nv; j++) {
        int ix = (int)floor(v[j].x + 0.5), iy = (int)floor(v[j].y + 0.5), s;
        double df = v[j].f - (v[j].nref ? v[j].fref / v[j].nref : 0), sig, snr, bd = 0.25;
        long best = -1;
        if (ix < 0 || iy < 0 || ix >= unc.nx || iy >= unc.ny ||
            !isfinite(unc.data[(size_t)iy * unc.nx + ix]))
            continue;
        sig = unc.data[(size_t)iy * unc.nx + ix] / sqrt(p2);
        snr = df / sig;
        s = snr > 0 ? 1 : -1;
        for (i = 0; i < cat.nrows; i++) /* near any transient with S/N > 3: not false */
            if (fabs(snr) > 3 && hypot(x[i] - v[j].x, y[i] - v[j].y) < 1.5)
                used[i] = 1;
        if (fabs(snr) <= 10 || v[j].x <= 5 || v[j].y <= 5 || v[j].x >= unc.nx - 6 ||
            v[j].y >= unc.ny - 6)
            continue;
        nsel++;
        for (i = 0; i < cat.nrows; i++) {
            double d = (x[i] - v[j].x) * (x[i] - v[j].x) + (y[i] - v[j].y) * (y[i] - v[j].y);
            if (sign[i] == s && d < bd)
                bd = d, best = i;
        }
        if (best < 0) {
            printf("  not found: id %ld at (%.1f, %.1f), S/N %.1f\n", (long)v[j].id,
                   v[j].x, v[j].y, snr);
            continue;
        }
        nfound++;
        npass += pass[best];
        if (!pass[best]) {
            int b;
            for (b = 0; b < 14; b++)
                failcount[b] += (fail[best] >> b) & 1;
            printf("  fails: id %ld at (%.1f, %.1f), S/N %.1f, fail_bits %d\n",
                   (long)v[j].id, v[j].x, v[j].y, snr, fail[best]);
        }
    }
    for (i = 0; i < cat.nrows; i++)
        if (pass[i] && !used[i]) {
            nfp++;
            nfp_neg += sign[i] < 0;
        }
    printf("transients and variables with |S/N| > 10, > 5 px from an edge, on data: %ld\n"
           "found within 0.5 px: %ld (%.1f %%); passing the cuts: %ld (%.1f %% of them)\n",
           nsel, nfound, nsel ? 100.0 * nfound / nsel : 0, npass, nsel ? 100.0 * npass / nsel : 0);
    printf("failed cuts among those found: edge %ld snr %ld elong %ld ratio %ld nneg %ld "
           "nbad %ld sumrat %ld chi2 %ld dmag %ld satrad %ld snr_psf %ld snr_auto %ld sharp %ld "
           "broad %ld\n",
           failcount[0], failcount[1], failcount[2], failcount[3], failcount[4], failcount[5],
           failcount[6], failcount[7], failcount[8], failcount[9], failcount[10], failcount[11],
           failcount[12], failcount[13]);
    printf("passing candidates not transients: %ld (%ld negative) on %.2f Mpx with data: "
           "%.2f per 1000 x 1000 px\n", nfp, nfp_neg, npix / 1e6, nfp / (npix / 1e6));
    free(v);
    free(used);
    rapid_table_release(&t);
    rapid_table_release(&cat);
    rapid_image_release(&unc);
    rapid_image_release(&psf);
    return 0;
}
