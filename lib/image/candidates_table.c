/* candidates_table.c - the candidate catalog: columns, units, header. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/candidates_internal.h"

static const int aper_names[CAND_NAPER] = {2, 3, 4, 6, 10, 14};

typedef struct cols {
    int32_t *id, *flags, *sign, *isoarea, *npix_psf, *nneg, *nbad, *pass, *fail;
    double *x, *y, *ra, *dec, *x_psf, *y_psf;
    float *ap[CAND_NAPER], *aperr[CAND_NAPER];
    float *flux_auto, *fluxerr_auto, *a, *b, *theta, *elong, *fwhm, *peak, *snr;
    float *flux_psf, *fluxerr_psf, *xerr_psf, *yerr_psf, *chi2_psf;
    float *edge, *snr3, *ratio, *sumrat, *dmag, *satrad, *snr_psf;
} cols;

static int add_cols(rapid_table *t, long n, const char *u, cols *c)
{
    int k, ok = 1;

    if (rapid_table_init(t, n))
        return RAPID_E_NOMEM;
    ok &= !!(c->id = rapid_table_add_i32(t, "id", ""));
    ok &= !!(c->x = rapid_table_add_f64(t, "x", "pix"));
    ok &= !!(c->y = rapid_table_add_f64(t, "y", "pix"));
    ok &= !!(c->ra = rapid_table_add_f64(t, "ra", "deg"));
    ok &= !!(c->dec = rapid_table_add_f64(t, "dec", "deg"));
    for (k = 0; k < CAND_NAPER; k++) {
        char name[32];
        snprintf(name, sizeof name, "flux_aper_%d", aper_names[k]);
        ok &= !!(c->ap[k] = rapid_table_add_f32(t, name, u));
    }
    for (k = 0; k < CAND_NAPER; k++) {
        char name[32];
        snprintf(name, sizeof name, "fluxerr_aper_%d", aper_names[k]);
        ok &= !!(c->aperr[k] = rapid_table_add_f32(t, name, u));
    }
    ok &= !!(c->flux_auto = rapid_table_add_f32(t, "flux_auto", u));
    ok &= !!(c->fluxerr_auto = rapid_table_add_f32(t, "fluxerr_auto", u));
    ok &= !!(c->a = rapid_table_add_f32(t, "a", "pix"));
    ok &= !!(c->b = rapid_table_add_f32(t, "b", "pix"));
    ok &= !!(c->theta = rapid_table_add_f32(t, "theta", "deg"));
    ok &= !!(c->elong = rapid_table_add_f32(t, "elongation", ""));
    ok &= !!(c->fwhm = rapid_table_add_f32(t, "fwhm", "pix"));
    ok &= !!(c->isoarea = rapid_table_add_i32(t, "isoarea", "pix2"));
    ok &= !!(c->peak = rapid_table_add_f32(t, "peak", u));
    ok &= !!(c->snr = rapid_table_add_f32(t, "snr", ""));
    ok &= !!(c->flags = rapid_table_add_i32(t, "flags", ""));
    ok &= !!(c->sign = rapid_table_add_i32(t, "sign", ""));
    ok &= !!(c->flux_psf = rapid_table_add_f32(t, "flux_psf", u));
    ok &= !!(c->fluxerr_psf = rapid_table_add_f32(t, "fluxerr_psf", u));
    ok &= !!(c->x_psf = rapid_table_add_f64(t, "x_psf", "pix"));
    ok &= !!(c->y_psf = rapid_table_add_f64(t, "y_psf", "pix"));
    ok &= !!(c->xerr_psf = rapid_table_add_f32(t, "xerr_psf", "pix"));
    ok &= !!(c->yerr_psf = rapid_table_add_f32(t, "yerr_psf", "pix"));
    ok &= !!(c->chi2_psf = rapid_table_add_f32(t, "chi2_psf", ""));
    ok &= !!(c->npix_psf = rapid_table_add_i32(t, "npix_psf", "pix2"));
    ok &= !!(c->edge = rapid_table_add_f32(t, "edge_dist", "pix"));
    ok &= !!(c->snr3 = rapid_table_add_f32(t, "snr_aper_3", ""));
    ok &= !!(c->ratio = rapid_table_add_f32(t, "aper_ratio_3_6", ""));
    ok &= !!(c->nneg = rapid_table_add_i32(t, "nneg", ""));
    ok &= !!(c->nbad = rapid_table_add_i32(t, "nbad", ""));
    ok &= !!(c->sumrat = rapid_table_add_f32(t, "sumrat", ""));
    ok &= !!(c->dmag = rapid_table_add_f32(t, "dmag", "mag"));
    ok &= !!(c->satrad = rapid_table_add_f32(t, "satrad", ""));
    ok &= !!(c->snr_psf = rapid_table_add_f32(t, "snr_psf", ""));
    ok &= !!(c->pass = rapid_table_add_i32(t, "pass", ""));
    ok &= !!(c->fail = rapid_table_add_i32(t, "fail_bits", ""));
    return ok ? 0 : RAPID_E_NOMEM;
}

static void fill_row(const cand_row *r, long i, cols *c)
{
    float s = (float)r->sign;
    int k;

    c->id[i] = (int32_t)(i + 1);
    c->x[i] = r->x;
    c->y[i] = r->y;
    c->ra[i] = c->dec[i] = NAN;
    for (k = 0; k < CAND_NAPER; k++) {
        c->ap[k][i] = s * r->flux_aper[k];
        c->aperr[k][i] = r->fluxerr_aper[k];
    }
    c->flux_auto[i] = s * r->flux_auto;
    c->fluxerr_auto[i] = r->fluxerr_auto;
    c->a[i] = r->a;
    c->b[i] = r->b;
    c->theta[i] = r->theta;
    c->elong[i] = r->elongation;
    c->fwhm[i] = r->fwhm;
    c->isoarea[i] = r->isoarea;
    c->peak[i] = s * r->peak;
    c->snr[i] = r->snr;
    c->flags[i] = r->flags;
    c->sign[i] = r->sign;
    c->flux_psf[i] = (float)(s * r->psf.flux);
    c->fluxerr_psf[i] = (float)r->psf.fluxerr;
    c->x_psf[i] = r->psf.x;
    c->y_psf[i] = r->psf.y;
    c->xerr_psf[i] = (float)r->psf.xerr;
    c->yerr_psf[i] = (float)r->psf.yerr;
    c->chi2_psf[i] = (float)r->psf.chi2;
    c->npix_psf[i] = r->psf.npix;
    c->edge[i] = r->edge_dist;
    c->snr3[i] = r->snr_aper_3;
    c->ratio[i] = r->aper_ratio_3_6;
    c->nneg[i] = r->nneg;
    c->nbad[i] = r->nbad;
    c->sumrat[i] = r->sumrat;
    c->dmag[i] = r->dmag;
    c->satrad[i] = r->satrad;
    c->snr_psf[i] = r->snr_psf;
    c->pass[i] = r->fail_bits == 0;
    c->fail[i] = r->fail_bits;
}

static int header(rapid_header *h, const rapid_cand_input *in,
                  const rapid_cand_opts *o, const cand_rows *rows, double rms,
                  double psf_fwhm, double apfrac3, double psf_r36,
                  const cand_noise *nc, long nsat, rapid_err *err)
{
    const rapid_cuts *c = &o->cuts;
    long npos = 0, k;
    int rc;
    const char *key = "";

    for (k = 0; k < rows->n; k++)
        npos += rows->r[k].sign > 0;
#define SETD(K, V, C) if (rc == 0 && (rc = rapid_header_set_double(h, key = K, V, C)) != 0) {}
#define SETS(K, V, C) if (rc == 0 && (rc = rapid_header_set_str(h, key = K, V, C)) != 0) {}
#define SETL(K, V, C) if (rc == 0 && (rc = rapid_header_set_long(h, key = K, V, C)) != 0) {}
    rc = 0;
    SETS("NOISESRC", in->unc ? "MAP" : "BKGRMS",
         in->unc ? "uncertainty map given" : "no map: robust rms of the image");
    SETD("NOISERMS", rms, "robust rms of the difference image");
    SETS("DETECTON", in->detect ? "MATCHED" : "DIFF",
         in->detect ? "detected on the matched-filter image" : "detected on the difference");
    SETD("THRESH", o->thresh, "detection threshold, sigma");
    SETL("MINAREA", o->minarea, "minimum area, pixels");
    SETL("BKGMESH", o->bkg_mesh, "background mesh subtracted, px (0: none)");
    SETD("PSFFWHM", psf_fwhm, "[pix] FWHM of the PSF fitted");
    SETD("APCOR3", -2.5 * log10(apfrac3), "[mag] 3-px aperture correction of the PSF");
    SETD("PSFR36", psf_r36, "the PSF's 3-px / 6-px aperture flux ratio");
    SETL("PSFHALF", o->psf.half, "PSF fit box half-side, pixels");
    SETL("ERRCAL", o->noise_cal, "1: errors scaled by ERRCOR* (empty-sky noise)");
    {
        static const char *keys[CAND_NAPER] = {"ERRCOR2", "ERRCOR3", "ERRCOR4",
                                               "ERRCOR6", "ERRCOR10", "ERRCOR14"};
        static const char *com[CAND_NAPER] = {
            "fluxerr_aper_2 factor: random apertures' tail",
            "fluxerr_aper_3 factor: random apertures' tail",
            "fluxerr_aper_4 factor: random apertures' tail",
            "fluxerr_aper_6 factor: random apertures' tail",
            "fluxerr_aper_10 factor: random apertures' tail",
            "fluxerr_aper_14 factor: random apertures' tail"};
        int a;
        for (a = 0; a < CAND_NAPER; a++)
            SETD(keys[a], nc->aper[a], com[a]);
    }
    SETL("ERRCORN", nc->naper[CAND_AP3], "random 3-px apertures measured");
    SETD("ERRCORPS", nc->psf, "fluxerr_psf, xerr_psf, yerr_psf factor");
    SETL("ERRCORNP", nc->npsf, "random PSF fits measured");
    SETD("FLUXFLOR", o->psf.flux_floor, "fluxerr_psf floor, fraction of |flux_psf|");
    SETS("SATMAP", in->sat ? "T" : "F", "T: saturated pixels given (satrad)");
    SETL("NSATSTAR", nsat, "clusters of saturated pixels");
    SETD("SATRMIN", c->sat_rmin, "[pix] saturated star mask radius: this +");
    SETD("SATSCALE", c->sat_scale, "[pix] this x sqrt(its saturated pixels)");
    SETL("NPOS", npos, "positive candidates");
    SETL("NNEG", rows->n - npos, "negative candidates");
    SETD("CUT_EDGE", c->edge_min, "pass: edge_dist > this");
    SETD("CUT_SNR", c->snr_min, "pass: snr_aper_3 >= this");
    SETD("CUT_ELNG", c->elong_max, "pass: elongation <= this");
    SETD("CUT_RMIN", c->ratio_min, "pass: aper_ratio_3_6 >= this");
    SETD("CUT_RMAX", c->ratio_max, "pass: aper_ratio_3_6 <= this");
    SETD("CUT_NNEG", c->nneg_max, "pass: nneg <= this");
    SETD("CUT_NBAD", c->nbad_max, "pass: nbad <= this");
    SETD("CUT_SRAT", c->sumrat_min, "pass: sumrat >= this");
    SETD("CUT_C2MN", c->chi2_min, "pass: chi2_psf > this");
    SETD("CUT_C2MX", c->chi2_max, "pass: chi2_psf < this");
    SETD("CUT_DMAG", c->dmag_max, "pass: dmag < this");
    SETD("CUT_SATR", c->satrad_min, "pass: satrad >= this (0: no cut)");
    SETD("CUT_SPSF", c->snr_psf_min, "pass: snr_psf >= this");
    SETD("CUT_SAUT", c->snr_auto_min, "pass: snr >= this");
    SETD("CUT_SHRP", c->sharp_min, "pass: fwhm >= this x PSFFWHM (0: no cut)");
    SETD("CUT_BRD", c->broad_min, "pass: aper_ratio_3_6 >= this*PSFR36 (0: none)");
#undef SETD
#undef SETS
#undef SETL
    if (rc)
        return rapid_header_fail(err, rc, "candidate catalog", key);
    return 0;
}

/* The image's unit as the FITS standard spells it: data numbers are "adu"
 * there ("DN", which L2 files use, makes readers such as astropy warn). */
static void fits_unit(const char *bunit, char *out, size_t sz)
{
    size_t n = 0;
    const char *p = bunit ? bunit : "";

    while (*p && n + 4 < sz) {
        int word_start = p == bunit || !((p[-1] >= 'A' && p[-1] <= 'Z') ||
                                         (p[-1] >= 'a' && p[-1] <= 'z'));
        if (word_start && p[0] == 'D' && p[1] == 'N' &&
            !((p[2] >= 'A' && p[2] <= 'Z') || (p[2] >= 'a' && p[2] <= 'z'))) {
            memcpy(out + n, "adu", 3);
            n += 3;
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

int cand_table(const rapid_cand_input *in, const rapid_cand_opts *o,
               const cand_rows *rows, double rms, double psf_fwhm,
               double apfrac3, double psf_r36, const cand_noise *nc, long nsat,
               rapid_table *cat, rapid_err *err)
{
    cols c;
    long i;
    int rc;
    char unit[72];

    memset(&c, 0, sizeof c);
    fits_unit(in->bunit, unit, sizeof unit);
    if ((rc = add_cols(cat, rows->n, unit, &c)) != 0)
        return rapid_fail(err, rc, "candidates: no memory for %ld rows", rows->n);
    for (i = 0; i < rows->n; i++)
        fill_row(&rows->r[i], i, &c);
    if (in->wcs && rows->n > 0)
        /* a candidate off the projection keeps NaN; the rest are fine */
        (void)rapid_wcs_pix2sky(in->wcs, (int)rows->n, c.x, c.y, c.ra, c.dec, NULL);
    return header(&cat->hdr, in, o, rows, rms, psf_fwhm, apfrac3, psf_r36, nc, nsat, err);
}
