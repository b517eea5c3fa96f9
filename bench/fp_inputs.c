/* fp_inputs.c - what lies under the passing candidates of a catalog: the
 * vetting metrics, the matched-filter image and the reference's coverage
 * there, and, for the science image and each of the reference's inputs,
 * the largest excess of a pixel over the other images' median in the 3x3
 * pixels nearest the candidate's sky position (in units of that pixel's
 * ERR) and the DQ bits set within 1 px.
 *
 *   fp_inputs CAT.fits DETECT.fits COV.fits SCIENCE.fits REF1.fits ...
 *
 * CAT.fits: `rapid extract`'s catalog (ra, dec through the science WCS);
 * DETECT.fits: the image detected on (S_corr, the cross-convolved
 * difference); COV.fits: the reference's coverage resampled onto the
 * science grid (rapid diff's *_refsci_cov.fits); SCIENCE.fits, REFn.fits:
 * L2 files (SCI, ERR, DQ; DN, the same exposure time and zero point).
 * One line per passing candidate; an input whose excess exceeds 4 is
 * marked '*'.  Bench only: no error handling beyond a message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/fits.h"
#include "rapid/wcs.h"

#define MAXIN 32

typedef struct l2 {
    rapid_image sci, err;
    rapid_image_u32 dq;
    rapid_wcs wcs;
} l2;

static void die(const rapid_err *e)
{
    fprintf(stderr, "fp_inputs: %s\n", e->msg);
    exit(1);
}

static double col(const rapid_table *t, const char *name, long i)
{
    const rapid_column *c = rapid_table_col(t, name);
    if (!c)
        return NAN;
    switch (c->type) {
    case RAPID_COL_F64: return ((const double *)c->data)[i];
    case RAPID_COL_F32: return ((const float *)c->data)[i];
    case RAPID_COL_I32: return ((const int32_t *)c->data)[i];
    default: return NAN;
    }
}

static void load(const char *path, l2 *f)
{
    rapid_err e = RAPID_ERR_INIT;
    rapid_image sci = RAPID_IMAGE_INIT, err = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_wcs w = RAPID_WCS_INIT;

    if (rapid_fits_read_image(path, "SCI", &sci, &e) || rapid_fits_read_image(path, "ERR", &err, &e) ||
        rapid_fits_read_image_u32(path, "DQ", &dq, &e) || rapid_wcs_from_header(&w, &sci.hdr, &e))
        die(&e);
    f->sci = sci, f->err = err, f->dq = dq, f->wcs = w;
}

static double median(double *v, int n)
{
    int i, j;
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    rapid_err e = RAPID_ERR_INIT;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_image det = RAPID_IMAGE_INIT, cov = RAPID_IMAGE_INIT;
    l2 f[MAXIN];
    int nf = argc - 4, k;
    long i;

    if (argc < 6 || nf > MAXIN) {
        fprintf(stderr, "usage: fp_inputs CAT DETECT COV SCIENCE REF...\n");
        return 2;
    }
    if (rapid_fits_read_table(argv[1], NULL, &cat, &e) || rapid_fits_read_image(argv[2], NULL, &det, &e) ||
        rapid_fits_read_image(argv[3], NULL, &cov, &e))
        die(&e);
    for (k = 0; k < nf; k++)
        load(argv[4 + k], &f[k]);
    printf("#    x      y sign  snr3  snr  elong ratio nneg sumrat chi2 dmag  det  cov | "
           "excess/ERR and DQ within 1 px: sci, ref1..\n");
    for (i = 0; i < cat.nrows; i++) {
        double x = col(&cat, "x", i), y = col(&cat, "y", i), ra = col(&cat, "ra", i),
               dec = col(&cat, "dec", i);
        int sg = (int)col(&cat, "sign", i), ix = (int)lround(x), iy = (int)lround(y);
        double dv = NAN, cv = NAN;
        int dx, dy;

        if (col(&cat, "pass", i) != 1)
            continue;
        for (dy = -1; dy <= 1; dy++)
            for (dx = -1; dx <= 1; dx++) {
                int xx = ix + dx, yy = iy + dy;
                if (xx < 0 || yy < 0 || xx >= det.nx || yy >= det.ny)
                    continue;
                float v = det.data[(size_t)yy * det.nx + xx] * sg;
                if (isnan(dv) || v > dv)
                    dv = v;
            }
        if (ix >= 0 && iy >= 0 && ix < cov.nx && iy < cov.ny)
            cv = cov.data[(size_t)iy * cov.nx + ix];
        printf("%7.1f %6.1f %+d %5.1f %5.1f %5.2f %5.2f %3.0f %5.2f %5.2f %5.2f %5.1f %4.2f |",
               x, y, sg, col(&cat, "snr_aper_3", i), col(&cat, "snr", i),
               col(&cat, "elongation", i), col(&cat, "aper_ratio_3_6", i), col(&cat, "nneg", i),
               col(&cat, "sumrat", i), col(&cat, "chi2_psf", i), col(&cat, "dmag", i), dv, cv);
        for (k = 0; k < nf; k++) {
            double px[MAXIN], py[MAXIN], best = NAN;
            uint32_t bits = 0;
            int j, on = 0;
            for (j = 0; j < nf; j++)
                if (rapid_wcs_sky2pix(&f[j].wcs, 1, &ra, &dec, &px[j], &py[j], &e))
                    px[j] = py[j] = NAN;
            for (dy = -1; dy <= 1; dy++)
                for (dx = -1; dx <= 1; dx++) {
                    double oth[MAXIN], v, s;
                    int no = 0, xx = (int)lround(px[k]) + dx, yy = (int)lround(py[k]) + dy;
                    if (isnan(px[k]) || xx < 0 || yy < 0 || xx >= f[k].sci.nx || yy >= f[k].sci.ny)
                        continue;
                    on = 1;
                    bits |= f[k].dq.data[(size_t)yy * f[k].sci.nx + xx];
                    v = f[k].sci.data[(size_t)yy * f[k].sci.nx + xx];
                    s = f[k].err.data[(size_t)yy * f[k].sci.nx + xx];
                    for (j = 0; j < nf; j++) {
                        int x2 = (int)lround(px[j]) + dx, y2 = (int)lround(py[j]) + dy;
                        if (j == k || isnan(px[j]) || x2 < 0 || y2 < 0 || x2 >= f[j].sci.nx ||
                            y2 >= f[j].sci.ny)
                            continue;
                        if (isfinite(f[j].sci.data[(size_t)y2 * f[j].sci.nx + x2]))
                            oth[no++] = f[j].sci.data[(size_t)y2 * f[j].sci.nx + x2];
                    }
                    if (no && isfinite(v) && s > 0) {
                        double z = (v - median(oth, no)) / s;
                        if (isnan(best) || fabs(z) > fabs(best))
                            best = z;
                    }
                }
            if (!on)
                printf("   -   ");
            else
                printf(" %+5.1f%s%s", best, fabs(best) > 4 ? "*" : "", bits ? "" : "");
            if (on && bits)
                printf("[%u]", bits);
        }
        printf("\n");
    }
    return 0;
}
