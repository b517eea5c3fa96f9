/* zogy_dump.c - a science image and its reference prepared as `rapid diff`
 * prepares them, and the ZOGY inputs and products written out, so that
 * bench/zogy_numpy.py can recompute the products independently from the
 * same inputs and bench/bench_zogy.c can time the ZOGY stage alone.
 *
 *   zogy_dump [--threads N] [--ref-l2] [--sxy S] [--white]
 *             [--model EPS_D,POS_D,EPS_S,POS_S] SCI REF SCI_PSF REF_PSF OUTDIR
 *
 * SCI: an L2 file.  REF: a reference image from `rapid coadd` (its _cov
 * and _unc beside it), or with --ref-l2 another L2 file (its ERR as the
 * uncertainty, coverage 1).  The PSFs: the primary HDU of each file,
 * odd-sized, centred; P_r made from the reference's as `rapid diff` makes
 * it (rapid_psf_on_science from the samples), and the flux scale
 * corrected for the PSFs' light in the matching aperture
 * (rapid_diff_aperture_correct), as `rapid diff` does.  Writes
 *   OUTDIR/zogy_in.fits     N, R, VN, VR (the science's pixels), PN, PR;
 *                           primary header SIGMA_N, SIGMA_R, CORR_N0..3,
 *                           CORR_R0..3 (the noises and their correlations
 *                           as rapid_zogy measured and used them), SX, SY,
 *                           PADX, PADY, FD, SCALE
 *   OUTDIR/zogy_rapid.fits  D, UNC (sigma_D), SCORR, PD: rapid_diff_zogy's
 * and prints one JSON line with each stage's seconds.  rapid_zogy runs on
 * the inputs as rapid_diff_zogy has it run (noises and correlations
 * measured, the reference's variance corrected per window); the program
 * also runs rapid_diff_zogy on the pair and says whether its products are
 * the same bit for bit (exit 1 if not).  The products written are those
 * of the global noise model that diff.h's equations describe: rapid_zogy
 * again with the noises and correlations it measured given (ESTCORR
 * false in the header); how far the windowed products are from them is
 * printed (windowed_vs_global).  --sxy S: the registration error set to S
 * px on both axes instead of the stars' (the pair then differs from
 * rapid_diff_zogy's, which is not run).  --white: both noises taken as
 * white (correlations 0, the paper's equations) instead of measured;
 * likewise without rapid_diff_zogy.  --model: the PSF-model error's
 * shares and position scatters given instead of measured (so that a
 * pair whose stars measure none still has the term, and its selection of
 * point sources, checked); likewise without rapid_diff_zogy.  The
 * primary header's ESTCORR is
 * false either way: the correlations in it are given, not measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "rapid/diff.h"
#include "rapid/fits.h"
#include "rapid/psfops.h"

typedef struct reference {
    rapid_science l2;          /* --ref-l2 */
    rapid_image image, cov, unc;
    rapid_wcs wcs;
    double zp;                 /* its zero point (NaN: unknown) */
} reference;

static int fail(const rapid_err *err)
{
    fprintf(stderr, "zogy_dump: %s\n", err->msg);
    return 1;
}

static double header_zp(const rapid_header *h, const char *key)
{
    double v;

    return rapid_header_has(h, key) &&
                   rapid_header_get_double(h, key, &v, NULL) == 0
               ? v : NAN;
}

static int read_wcs(const char *path, const char *hdu, rapid_wcs *w,
                    rapid_header *h, rapid_err *err)
{
    int rc;

    if ((rc = rapid_fits_read_header(path, hdu, h, err)))
        return rc;
    return rapid_wcs_from_header(w, h, err);
}

/* path with ".fits" replaced by suffix ".fits" (the coadd's products) */
static void beside(const char *path, const char *suffix, char *out, size_t n)
{
    size_t l = strlen(path);

    if (l > 5 && strcmp(path + l - 5, ".fits") == 0)
        l -= 5;
    snprintf(out, n, "%.*s%s.fits", (int)l, path, suffix);
}

static int read_reference(const char *path, int l2, reference *r,
                          rapid_err *err)
{
    rapid_header h = RAPID_HEADER_INIT;
    char p[4096];
    int rc;

    if (l2) {
        if ((rc = rapid_science_read(path, NULL, &r->l2, err)) ||
            (rc = read_wcs(path, "SCI", &r->wcs, &h, err)))
            goto done;
        r->zp = header_zp(&h, "ZPTMAG");
        goto done;
    }
    if ((rc = rapid_fits_read_image(path, NULL, &r->image, err)))
        goto done;
    beside(path, "_cov", p, sizeof p);
    if ((rc = rapid_fits_read_image(p, NULL, &r->cov, err)))
        goto done;
    beside(path, "_unc", p, sizeof p);
    if ((rc = rapid_fits_read_image(p, NULL, &r->unc, err)) ||
        (rc = rapid_wcs_from_header(&r->wcs, &r->image.hdr, err)))
        goto done;
    r->zp = header_zp(&r->image.hdr, "MAGZP");
done:
    rapid_header_release(&h);
    return rc;
}

static void reference_release(reference *r)
{
    rapid_science_release(&r->l2);
    rapid_image_release(&r->image);
    rapid_image_release(&r->cov);
    rapid_image_release(&r->unc);
    rapid_wcs_release(&r->wcs);
}

/* An image of the caller's pixels (borrowed: not released). */
static rapid_image view(const float *data, int nx, int ny)
{
    rapid_image im = RAPID_IMAGE_INIT;

    im.nx = nx;
    im.ny = ny;
    im.data = (float *)data;
    return im;
}

static int append(rapid_fits_out *f, const float *data, int nx, int ny,
                  const char *name, rapid_err *err)
{
    rapid_image im = view(data, nx, ny);

    return rapid_fits_append_image(f, &im, name, err);
}

/* Noise correlations at lags (1,0), (0,1), (1,1), (1,-1) as KEY0..KEY3. */
static int set_corr(rapid_header *h, const char *key, const double r[4])
{
    char k[16];
    int i, rc;

    for (i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s%d", key, i);
        if ((rc = rapid_header_set_double(h, k, r[i], "noise correlation, "
                                          "lags (1,0) (0,1) (1,1) (1,-1)")))
            return rc;
    }
    return 0;
}

static int write_inputs(const char *dir, const rapid_zogy_inputs *zi,
                        const rapid_zogy_out *o, double scale, int estcorr,
                        rapid_err *err)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_fits_out *f = NULL;
    const rapid_zogy_in *in = &zi->in;
    char path[4096];
    int rc;

    snprintf(path, sizeof path, "%s/zogy_in.fits", dir);
    if (rapid_header_set_double(&h, "SIGMA_N", o->sigma_n, "science noise, DN/s") ||
        rapid_header_set_double(&h, "SIGMA_R", o->sigma_r, "reference noise, DN/s") ||
        rapid_header_set_double(&h, "SX", in->sx, "registration error x, px") ||
        rapid_header_set_double(&h, "SY", in->sy, "registration error y, px") ||
        rapid_header_set_long(&h, "PADX", o->padx, "rapid's transform width") ||
        rapid_header_set_long(&h, "PADY", o->pady, "rapid's transform height") ||
        rapid_header_set_double(&h, "FD", o->fd, "F_D") ||
        rapid_header_set_double(&h, "SCALE", scale, "reference flux scale") ||
        rapid_header_set_bool(&h, "ESTCORR", estcorr, "correlations measured") ||
        set_corr(&h, "CORR_N", o->corr_n) || set_corr(&h, "CORR_R", o->corr_r) ||
        rapid_header_set_double(&h, "EPS_D", o->eps_d, "PSF-model error in D") ||
        rapid_header_set_double(&h, "POS_D", o->pos_d, "its position scatter, px") ||
        rapid_header_set_double(&h, "EPS_S", o->eps_s, "PSF-model error in S") ||
        rapid_header_set_double(&h, "POS_S", o->pos_s, "its position scatter, px") ||
        rapid_header_set_double(&h, "EPS_F", o->eps_fill, "a filled pixel's error") ||
        rapid_header_set_double(&h, "POS_F", o->pos_fill, "its position scatter, px") ||
        rapid_header_set_double(&h, "EPS_FR", o->eps_fill_ref, "the reference's filled pixel's error") ||
        rapid_header_set_double(&h, "POS_FR", o->pos_fill_ref, "its position scatter, px") ||
        rapid_header_set_double(&h, "NOISE_LD", o->noise_ld, "D_R's robust sigma") ||
        rapid_header_set_double(&h, "NOISE_LS", o->noise_ls, "S_R's robust sigma") ||
        rapid_header_set_double(&h, "WIDTH2", o->width2_ld, "point sources' width^2 in D_R, px^2") ||
        rapid_header_set_long(&h, "NEXT", o->nextended, "extended sources left out of the term")) {
        rapid_header_release(&h);
        return rapid_fail(err, RAPID_E_NOMEM, "%s: header: out of memory", path);
    }
    if ((rc = rapid_fits_create(&f, path, err)))
        goto done;
    if ((rc = rapid_fits_set_primary_header(f, &h, err)) ||
        (rc = append(f, in->n, in->nx, in->ny, "N", err)) ||
        (rc = append(f, in->r, in->nx, in->ny, "R", err)) ||
        (rc = append(f, in->vn, in->nx, in->ny, "VN", err)) ||
        (rc = append(f, in->vr, in->nx, in->ny, "VR", err)) ||
        (rc = append(f, in->pn, in->npn, in->npn, "PN", err)) ||
        (rc = append(f, in->pr, in->npr, in->npr, "PR", err))) {
        rapid_fits_abort(f);
        goto done;
    }
    rc = rapid_fits_commit(f, err);
done:
    rapid_header_release(&h);
    return rc;
}

static int write_products(const char *path, const rapid_zogy_out *o, int nx,
                          int ny, rapid_err *err)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_fits_out *f = NULL;
    int rc;

    if ((rc = rapid_fits_create(&f, path, err)))
        return rc;
    if ((rc = rapid_fits_set_primary_header(f, &h, err)) ||
        (rc = append(f, o->d, nx, ny, "D", err)) ||
        (rc = append(f, o->unc, nx, ny, "UNC", err)) ||
        (rc = append(f, o->scorr, nx, ny, "SCORR", err)) ||
        (rc = append(f, o->pd, o->npd, o->npd, "PD", err))) {
        rapid_fits_abort(f);
        return rc;
    }
    return rapid_fits_commit(f, err);
}

/* The largest differences between two sets of products over the pixels
 * both have: D in units of a's sigma_D, S_corr. */
static void largest_change(const rapid_zogy_out *a, const rapid_zogy_out *b,
                           size_t n, double *d, double *s)
{
    size_t i;

    *d = *s = 0;
    for (i = 0; i < n; i++) {
        double x = fabs((double)a->d[i] - b->d[i]) / a->unc[i];
        double y = fabs((double)a->scorr[i] - b->scorr[i]);
        if (isfinite(x) && x > *d)
            *d = x;
        if (isfinite(y) && y > *s)
            *s = y;
    }
}

static int same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

int main(int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_science sci = RAPID_SCIENCE_INIT;
    rapid_header sh = RAPID_HEADER_INIT;
    rapid_wcs sw = RAPID_WCS_INIT;
    reference ref;
    rapid_image psn = RAPID_IMAGE_INIT, psr = RAPID_IMAGE_INIT,
                prs = RAPID_IMAGE_INIT;
    rapid_diff_ref dr;
    rapid_diff_pair p;
    rapid_zogy_inputs zi;
    rapid_zogy_opts zo;
    rapid_zogy_out a = RAPID_ZOGY_OUT_INIT, b = RAPID_ZOGY_OUT_INIT,
                   c = RAPID_ZOGY_OUT_INIT, *w = &b;
    rapid_zogy_in gin;
    double wd = 0, ws = 0;
    double t0, t_read, t_prep, t_naive, t_in, t_zogy, zps, sxy = -1;
    double model[4] = {-1, -1, -1, -1};
    float *nd = NULL, *nu = NULL;
    int nthreads = 1, l2 = 0, i = 1, ok = 1, white = 0, rc = 1;
    const char *same_txt = "null";
    size_t n;
    char path[4096];

    memset(&ref, 0, sizeof ref);
    memset(&zi, 0, sizeof zi);
    memset(&p, 0, sizeof p);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sxy") == 0 && i + 1 < argc)
            sxy = atof(argv[++i]);
        else if (strcmp(argv[i], "--ref-l2") == 0)
            l2 = 1;
        else if (strcmp(argv[i], "--white") == 0)
            white = 1;
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            if (sscanf(argv[++i], "%lf,%lf,%lf,%lf", &model[0], &model[1],
                       &model[2], &model[3]) != 4 || model[0] < 0 ||
                model[1] < 0 || model[2] < 0 || model[3] < 0) {
                fprintf(stderr, "zogy_dump: --model wants EPS_D,POS_D,EPS_S,"
                                "POS_S, each >= 0\n");
                return 2;
            }
        } else
            break;
    }
    if (argc - i != 5 || nthreads < 1) {
        fprintf(stderr, "usage: zogy_dump [--threads N] [--ref-l2] [--sxy S] "
                        "[--white] [--model EPS_D,POS_D,EPS_S,POS_S] SCI REF "
                        "SCI_PSF REF_PSF OUTDIR\n");
        return 2;
    }
    t0 = bench_now();
    if (rapid_science_read(argv[i], NULL, &sci, &err) ||
        read_wcs(argv[i], "SCI", &sw, &sh, &err) ||
        read_reference(argv[i + 1], l2, &ref, &err) ||
        rapid_fits_read_image(argv[i + 2], "0", &psn, &err) ||
        rapid_fits_read_image(argv[i + 3], "0", &psr, &err) ||
        rapid_image_alloc(&prs, psr.nx, psr.ny, 0, &err) ||
        rapid_psf_on_science(psr.data, psr.nx, NULL, 0, 0, prs.data, NULL,
                             &err))
        goto failed;
    t_read = bench_now() - t0;
    /* science / reference flux for equal magnitudes */
    zps = pow(10, 0.4 * (header_zp(&sci.rate.hdr, "ZPTMAG") - ref.zp));
    if (!isfinite(zps))
        zps = 1;
    if (l2)
        dr = (rapid_diff_ref){ref.l2.rate.data, NULL, ref.l2.unc.data,
                              ref.l2.rate.nx, ref.l2.rate.ny, &ref.wcs, zps};
    else
        dr = (rapid_diff_ref){ref.image.data, ref.cov.data, ref.unc.data,
                              ref.image.nx, ref.image.ny, &ref.wcs, zps};
    t0 = bench_now();
    if (rapid_diff_prepare(&sci, &sw, &dr, &p, &err) ||
        rapid_diff_aperture_correct(&p, psn.data, psn.nx, prs.data, prs.nx,
                                    &err))
        goto failed;
    t_prep = bench_now() - t0;
    n = (size_t)p.nx * p.ny;
    nd = malloc(n * sizeof *nd);
    nu = malloc(n * sizeof *nu);
    if (!nd || !nu) {
        free(nd);
        free(nu);
        rapid_fail(&err, RAPID_E_NOMEM, "out of memory");
        goto failed;
    }
    t0 = bench_now();
    rapid_diff_naive(&sci, &p, nd, nu);
    t_naive = bench_now() - t0;
    free(nd);
    free(nu);
    t0 = bench_now();
    if (rapid_diff_zogy_inputs(&sci, &p, psn.data, psn.nx, prs.data, prs.nx,
                               &zi, &err))
        goto failed;
    t_in = bench_now() - t0;
    if (sxy >= 0)
        zi.in.sx = zi.in.sy = sxy;
    if (white)
        zi.in.estimate_corr = 0; /* corr_n, corr_r are 0 */
    if (model[0] >= 0) {
        zi.in.eps_d = model[0];
        zi.in.pos_d = model[1];
        zi.in.eps_s = model[2];
        zi.in.pos_s = model[3];
    }
    rapid_zogy_opts_init(&zo);
    zo.nthreads = nthreads;
    t0 = bench_now();
    if (rapid_zogy(&zi.in, &zo, &b, &err))
        goto failed;
    t_zogy = bench_now() - t0;
    if (sxy < 0 && !white && model[0] < 0) {
        t0 = bench_now();
        if (rapid_diff_zogy(&sci, &p, psn.data, psn.nx, prs.data, prs.nx, &zo,
                            &a, &err))
            goto failed;
        t_zogy = bench_now() - t0;
        ok = same(a.d, b.d, n) && same(a.unc, b.unc, n) &&
             same(a.scorr, b.scorr, n) &&
             same(a.pd, b.pd, (size_t)a.npd * a.npd);
        same_txt = ok ? "true" : "false";
    }
    snprintf(path, sizeof path, "%s/zogy_rapid.fits", argv[i + 4]);
    if (!white) {
        /* the products of the global noise model, as diff.h's equations
         * give them, with the noises and correlations just measured */
        gin = zi.in;
        gin.estimate_corr = 0;
        gin.sigma_n = b.sigma_n;
        gin.sigma_r = b.sigma_r;
        memcpy(gin.corr_n, b.corr_n, sizeof gin.corr_n);
        memcpy(gin.corr_r, b.corr_r, sizeof gin.corr_r);
        if (rapid_zogy(&gin, &zo, &c, &err))
            goto failed;
        largest_change(&b, &c, n, &wd, &ws);
        w = &c;
    }
    if (write_inputs(argv[i + 4], &zi, w, p.match.scale, 0, &err) ||
        write_products(path, w, p.nx, p.ny, &err))
        goto failed;
    printf("{\"nx\": %d, \"ny\": %d, \"pad\": [%d, %d], \"threads\": %d, "
           "\"scale\": %.6f, \"from\": \"%s\", \"nstars\": %d, "
           "\"sigma_n\": %.6g, \"sigma_r\": %.6g, \"sx\": %.4g, \"sy\": %.4g, "
           "\"seconds\": {\"read\": %.2f, \"prepare\": %.2f, \"naive\": %.2f, "
           "\"zogy_inputs\": %.2f, \"zogy\": %.2f}, "
           "\"inputs_reproduce_rapid_diff_zogy\": %s, "
           "\"windowed_vs_global\": {\"d_max_sigma\": %.3g, "
           "\"scorr_max\": %.3g}}\n",
           p.nx, p.ny, b.padx, b.pady, nthreads, p.match.scale, p.match.from,
           p.match.nstars, b.sigma_n, b.sigma_r, zi.in.sx, zi.in.sy, t_read,
           t_prep, t_naive, t_in, t_zogy, same_txt, wd, ws);
    rc = ok ? 0 : 1;
    goto done;
failed:
    fail(&err);
done:
    rapid_zogy_out_release(&a);
    rapid_zogy_out_release(&b);
    rapid_zogy_out_release(&c);
    rapid_zogy_inputs_release(&zi);
    rapid_diff_pair_release(&p);
    reference_release(&ref);
    rapid_science_release(&sci);
    rapid_header_release(&sh);
    rapid_wcs_release(&sw);
    rapid_image_release(&psn);
    rapid_image_release(&psr);
    rapid_image_release(&prs);
    rapid_fft_shared_release();
    return rc;
}
