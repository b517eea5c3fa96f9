/* test_coadd.c - reference images from synthetic inputs with exact truth:
 * distorted, rotated, dithered detector images of pixel-integrated Gaussian
 * stars, a cosmic ray in one input and a transient in another. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rapid/coadd.h"
#include "rapid/dq.h"
#include "rapid/rng.h"
#include "rapid/tile.h"
#include "image/coadd_internal.h"
#include "testutil.h"

#define NIN 6
#define NPIX 256          /* input images */
#define GRID 320          /* coadd */
#define NSTAR 36
#define SIG 1.1           /* input PSF sigma, px */
#define EXPT 100.0
#define ZP 26.32
#define SKY 0.3           /* DN/s */
#define CR_DN 5000.0

static double tra, tdec;              /* tile centre */
static double sra[NSTAR], sdec[NSTAR], sflux[NSTAR]; /* DN/s */
static double cr_ra, cr_dec, tr_ra, tr_dec;
static const double TR_FLUX = 400;    /* transient, DN/s */
static char paths[NIN][512];
static rapid_coadd_input inputs[NIN];

static void add_gauss(float *img, int n, double x, double y, double flux)
{
    int i, j, h = (int)ceil(7 * SIG);
    double s2 = SIG * sqrt(2.0);

    for (j = (int)floor(y) - h; j <= (int)floor(y) + h + 1; j++)
        for (i = (int)floor(x) - h; i <= (int)floor(x) + h + 1; i++) {
            double fx, fy;
            if (i < 0 || j < 0 || i >= n || j >= n)
                continue;
            fx = 0.5 * (erf((i + 0.5 - x) / s2) - erf((i - 0.5 - x) / s2));
            fy = 0.5 * (erf((j + 0.5 - y) / s2) - erf((j - 0.5 - y) / s2));
            img[j * n + i] += (float)(flux * fx * fy);
        }
}

static void input_wcs(rapid_wcs *w, int k)
{
    double crval[2], crpix[2] = {(NPIX + 1) / 2.0, (NPIX + 1) / 2.0}, cd[2][2];
    double s = 0.11 / 3600, t = (17 + 53 * k) * M_PI / 180;
    rapid_sip sip;

    memset(&sip, 0, sizeof sip);
    crval[0] = tra + (k % 3 - 1) * 1.5 / 3600 / cos(tdec * M_PI / 180);
    crval[1] = tdec + (k / 3 - 0.5) * 2.0 / 3600;
    cd[0][0] = -s * cos(t), cd[0][1] = s * sin(t);
    cd[1][0] = s * sin(t), cd[1][1] = s * cos(t);
    if (k % 2 == 0) { /* some with distortion */
        sip.a_order = sip.b_order = 3;
        sip.a[2][0] = 2e-5, sip.a[0][2] = -1e-5, sip.a[1][1] = 1.5e-5;
        sip.b[0][2] = 1.2e-5, sip.b[2][0] = -0.8e-5, sip.a[3][0] = 2e-8;
    }
    assert_int_equal(rapid_wcs_from_terms(w, crval, crpix, cd, k % 2 == 0 ? &sip : NULL,
                                          NPIX, NPIX, NULL), 0);
}

static void write_psf(const char *dir, int sca)
{
    rapid_image p = RAPID_IMAGE_INIT;
    char path[600];

    assert_int_equal(rapid_image_alloc(&p, 25, 25, 0, NULL), 0);
    add_gauss(p.data, 25, 12, 12, 1.0);
    snprintf(path, sizeof path, "%s/test_PSF_H158_%d.fits", dir, sca);
    assert_int_equal(rapid_fits_write_image(path, &p, NULL, NULL), 0);
    rapid_image_release(&p);
}

static void write_input(int k, const char *dir)
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_rng r;
    int i;

    /* input k's zero point: the same sky and stars give it more or fewer
     * counts, by 10^(0.4 (ZPTMAG_k - ZP)) */
    double zpk = ZP + 0.01 * (k - 2), gk = pow(10, 0.4 * (zpk - ZP));

    input_wcs(&w, k);
    assert_int_equal(rapid_image_alloc(&img, NPIX, NPIX, (float)(SKY * EXPT * gk), NULL), 0);
    for (i = 0; i < NSTAR + 2; i++) {
        double ra = i < NSTAR ? sra[i] : i == NSTAR ? tr_ra : cr_ra;
        double dec = i < NSTAR ? sdec[i] : i == NSTAR ? tr_dec : cr_dec, x, y;
        assert_int_equal(rapid_wcs_sky2pix(&w, 1, &ra, &dec, &x, &y, NULL), 0);
        if (i < NSTAR)
            add_gauss(img.data, NPIX, x, y, sflux[i] * EXPT * gk);
        else if (i == NSTAR && k == 1)
            add_gauss(img.data, NPIX, x, y, TR_FLUX * EXPT * gk);
        else if (i == NSTAR + 1 && k == 0) { /* a short cosmic-ray track */
            int xi = (int)floor(x + 0.5), yi = (int)floor(y + 0.5);
            img.data[yi * NPIX + xi] += CR_DN;
            img.data[yi * NPIX + xi + 1] += CR_DN;
            img.data[(yi + 1) * NPIX + xi + 2] += CR_DN / 2;
        }
    }
    rapid_rng_derive(&r, 77, (uint64_t)k, 0, 0);
    for (i = 0; i < NPIX * NPIX; i++) /* gain 1: DN are electrons */
        img.data[i] = (float)(rapid_rng_poisson(&r, img.data[i]) + 8.5 * rapid_rng_normal(&r));
    img.data[5 * NPIX + 7] = NAN; /* a dead pixel */
    assert_int_equal(rapid_wcs_to_header(&w, &img.hdr, NULL), 0);
    rapid_header_set_double(&img.hdr, "EXPTIME", EXPT, NULL);
    rapid_header_set_double(&img.hdr, "ZPTMAG", zpk, NULL);
    rapid_header_set_double(&img.hdr, "MJD-OBS", 62021.0 + k, NULL);
    rapid_header_set_str(&img.hdr, "FILTER", "H158", NULL);
    rapid_header_set_long(&img.hdr, "SCA_NUM", k + 1, NULL);
    rapid_header_set_double(&img.hdr, "GAIN", 1.0, NULL);
    rapid_header_set_double(&img.hdr, "RDNOISE", 8.5, NULL);
    rapid_header_set_double(&img.hdr, "SATURATE", 1e5, NULL);
    snprintf(paths[k], sizeof paths[k], "%s/l2_%d.fits", dir, k);
    assert_int_equal(rapid_fits_write_image(paths[k], &img, "SCI", NULL), 0);
    write_psf(dir, k + 1);
    inputs[k].path = paths[k];
    inputs[k].psf_path = NULL;
    rapid_image_release(&img);
    rapid_wcs_release(&w);
}

static int setup(void **state)
{
    rapid_tile t;
    const char *dir = test_tmpdir();
    int i;

    (void)state;
    rapid_tile_get(RAPID_TILE_NSIDE, rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8), &t, NULL);
    tra = t.cra, tdec = t.cdec;
    for (i = 0; i < NSTAR; i++) { /* a 6x6 grid, 3.3" apart */
        sdec[i] = tdec + ((i / 6) - 2.5) * 3.3 / 3600;
        sra[i] = tra + ((i % 6) - 2.5) * 3.3 / 3600 / cos(tdec * M_PI / 180);
        sflux[i] = 600 + 60 * i;
    }
    /* the cosmic ray and the transient sit between stars (which are at
     * half-integer multiples of 3.3") */
    cr_dec = tdec, cr_ra = tra;
    tr_dec = tdec - 1.0 * 3.3 / 3600, tr_ra = tra - 1.0 * 3.3 / 3600 / cos(tdec * M_PI / 180);
    for (i = 0; i < NIN; i++)
        write_input(i, dir);
    return 0;
}

static void opts(rapid_coadd_opts *o)
{
    rapid_coadd_opts_init(o);
    o->size = GRID;
    o->magzp = ZP;
}

static double aperture(const rapid_image *img, double x, double y, double r,
                       double bkg)
{
    double s = 0;
    int i, j;

    for (j = (int)(y - r - 1); j <= (int)(y + r + 1); j++)
        for (i = (int)(x - r - 1); i <= (int)(x + r + 1); i++)
            if (hypot(i - x, j - y) <= r && isfinite(img->data[j * img->nx + i]))
                s += img->data[j * img->nx + i] - bkg;
    return s;
}

/* A card that must be there, with a non-empty value when it is a string. */
static void has_card(const rapid_header *h, const char *key, const char *what)
{
    char v[80];
    double d;

    if (rapid_header_get_str(h, key, v, sizeof v, NULL) == 0) {
        if (strcmp(key, "BUNIT") && !v[0])
            fail_msg("%s: %s is empty", what, key);
        return;
    }
    if (rapid_header_get_double(h, key, &d, NULL) != 0)
        fail_msg("%s: no %s", what, key);
}

/* The five products read back: the cards docs/products.md promises in
 * each one, in the primary header (what fits.getheader shows) and in the
 * HDU of the data; the catalog's fluxes have their unit. */
static void check_products(const char *base)
{
    static const char *suffix[5] = {"", "_cov", "_unc", "_psf", "_cat"};
    static const char *prov[] = {"RAPIDVER", "GITCOMM", "DATE", "FILTER", "FIELD", NULL};
    static const char *science[] = {"MAGZP", "NFRAMES", "NSPIKE", NULL};
    char path[600];
    int k, i, hdu;

    for (k = 0; k < 5; k++) {
        snprintf(path, sizeof path, "%s%s.fits", base, suffix[k]);
        for (hdu = 0; hdu < 2; hdu++) {
            rapid_header h = RAPID_HEADER_INIT;
            char what[700];
            if (hdu == 1 && k == 3)
                continue; /* the PSF is the primary HDU */
            snprintf(what, sizeof what, "%s HDU %d", path, hdu);
            assert_int_equal(rapid_fits_read_header(path, hdu ? "1" : "0", &h, NULL), 0);
            for (i = 0; prov[i]; i++)
                has_card(&h, prov[i], what);
            if (k != 3)
                for (i = 0; science[i]; i++)
                    has_card(&h, science[i], what);
            if (k < 4 && (k == 3 || hdu == 1))
                has_card(&h, "BUNIT", what);
            rapid_header_release(&h);
        }
    }
    {
        rapid_table t = RAPID_TABLE_INIT;
        snprintf(path, sizeof path, "%s_cat.fits", base);
        assert_int_equal(rapid_fits_read_table(path, NULL, &t, NULL), 0);
        for (i = 0; i < t.ncols; i++) {
            const rapid_column *col = &t.cols[i];
            if ((!strncmp(col->name, "FLUX", 4) && strcmp(col->name, "FLUX_RADIUS")) ||
                !strcmp(col->name, "PEAK")) {
                if (strcmp(col->unit, "DN/s"))
                    fail_msg("%s: column %s has unit '%s'", path, col->name, col->unit);
            }
        }
        rapid_table_release(&t);
    }
}

static void test_truth(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    double sumd2 = 0, x, y, worst = 0, sky, bkg, f;
    long i, nsd = 0;
    double s1 = 0, s2 = 0;
    int k, nmatch = 0;

    (void)state;
    opts(&o);
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &c, NULL, NULL, &err), 0);
    assert_int_equal(c.ninputs, NIN);
    assert_int_equal(c.meta.nframes, NIN);
    assert_true(c.meta.clnoutliers > 0);
    assert_int_equal(rapid_wcs_from_header(&w, &c.image.hdr, NULL), 0);
    /* the sky level: SKY DN/s at MAGZP */
    sky = c.meta.clmean;
    assert_true(fabs(sky - SKY) < 0.02);
    bkg = c.meta.gmedian;
    /* flux conserved, centroids in place */
    for (k = 0; k < NSTAR; k++) {
        const double *xw = rapid_table_col(&c.catalog, "XWIN")->data;
        const double *yw = rapid_table_col(&c.catalog, "YWIN")->data;
        double d = 1e9, best = -1;
        assert_int_equal(rapid_wcs_sky2pix(&w, 1, &sra[k], &sdec[k], &x, &y, NULL), 0);
        f = aperture(&c.image, x, y, 7.0, bkg);
        worst = fmax(worst, fabs(f / sflux[k] - 1));
        for (i = 0; i < c.catalog.nrows; i++)
            if (hypot(xw[i] - x, yw[i] - y) < d)
                d = hypot(xw[i] - x, yw[i] - y), best = (double)i;
        assert_true(best >= 0 && d < 0.2);
        sumd2 += d * d;
        nmatch++;
    }
    print_message("coadd: worst star flux error %.3f%%, centroid rms %.4f px, "
                  "%" PRId64 " values rejected\n", 100 * worst, sqrt(sumd2 / nmatch),
                  c.meta.clnoutliers);
    assert_true(worst < 0.005);
    assert_true(sqrt(sumd2 / nmatch) < 0.03);
    /* the cosmic ray and the transient are gone */
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, &cr_ra, &cr_dec, &x, &y, NULL), 0);
    assert_true(fabs(aperture(&c.image, x, y, 3.0, bkg)) < 5 * 0.05 * sqrt(M_PI * 9) + 0.02 * CR_DN / EXPT);
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, &tr_ra, &tr_dec, &x, &y, NULL), 0);
    f = aperture(&c.image, x, y, 5.0, bkg);
    print_message("coadd: transient residual %.2f DN/s of %.0f (1/%d of it %.1f)\n",
                  f, TR_FLUX, NIN, TR_FLUX / NIN);
    assert_true(f < 0.025 * TR_FLUX); /* in one input it would give 1/NIN */
    /* the uncertainty map predicts the scatter of blank sky */
    for (i = 0; i < (long)GRID * GRID; i++) {
        int px = (int)(i % GRID), py = (int)(i / GRID), near = 0;
        double v = c.image.data[i], u = c.uncertainty.data[i];
        if (!isfinite(v) || c.coverage.data[i] < NIN - 0.5 || px < 20 || py < 20 ||
            px > GRID - 20 || py > GRID - 20)
            continue;
        for (k = 0; k < NSTAR + 2 && !near; k++) {
            double ra = k < NSTAR ? sra[k] : k == NSTAR ? tr_ra : cr_ra;
            double dec = k < NSTAR ? sdec[k] : k == NSTAR ? tr_dec : cr_dec;
            rapid_wcs_sky2pix(&w, 1, &ra, &dec, &x, &y, NULL);
            near = hypot(px - x, py - y) < 9;
        }
        if (near)
            continue;
        s1 += (v - sky) / u;
        s2 += (v - sky) * (v - sky) / (u * u);
        nsd++;
    }
    {
        double ratio = sqrt(s2 / nsd - (s1 / nsd) * (s1 / nsd));
        print_message("coadd: blank-sky scatter / uncertainty = %.3f over %ld pixels\n",
                      ratio, nsd);
        assert_true(nsd > 10000);
        assert_true(fabs(ratio - 1) < 0.10);
    }
    /* headers and products */
    {
        long v;
        double d;
        char s[80];
        assert_int_equal(rapid_header_get_long(&c.image.hdr, "NFRAMES", &v, NULL), 0);
        assert_int_equal(v, NIN);
        assert_int_equal(rapid_header_get_long(&c.image.hdr, "FIELD", &v, NULL), 0);
        assert_int_equal(v, rtid);
        assert_int_equal(rapid_header_get_double(&c.image.hdr, "MAGZP", &d, NULL), 0);
        assert_true(d == ZP);
        assert_int_equal(rapid_header_get_str(&c.image.hdr, "BUNIT", s, sizeof s, NULL), 0);
        assert_string_equal(s, "DN/s");
        assert_int_equal(rapid_header_get_double(&c.image.hdr, "TOTEXPTM", &d, NULL), 0);
        assert_true(d == NIN * EXPT);
        assert_true(rapid_header_has(&c.image.hdr, "INFIL006"));
        assert_true(rapid_header_has(&c.image.hdr, "COV5PERC"));
    }
    /* the reference PSF is normalised, centred, round */
    {
        double sum = 0, mx = 0, my = 0;
        int n = c.psf.nx;
        for (i = 0; i < (long)n * n; i++) {
            sum += c.psf.data[i];
            mx += c.psf.data[i] * (i % n - n / 2);
            my += c.psf.data[i] * (i / n - n / 2);
        }
        assert_true(fabs(sum - 1) < 1e-5 && fabs(mx) < 1e-5 && fabs(my) < 1e-5);
        assert_true(fabs(c.psf.data[(n / 2) * n + n / 2 + 3] - c.psf.data[(n / 2 + 3) * n + n / 2]) < 1e-7);
    }
    assert_true(fabs(c.meta.fwhmmedpix - 2.3548 * sqrt(SIG * SIG + 3.0 / 12)) < 0.3);
    assert_int_equal(rapid_coadd_write(&c, test_path("ref"), rtid, "H158", &err), 0);
    assert_int_equal(rapid_fits_verify_checksums(test_path("ref/rapid_ref_5321355_H158.fits"), NULL), 0);
    assert_int_equal(access(test_path("ref/rapid_ref_5321355_H158_cat.fits"), F_OK), 0);
    check_products(test_path("ref/rapid_ref_5321355_H158"));
    rapid_wcs_release(&w);
    rapid_coadd_release(&c);
}

/* Rows taken into the sums as soon as they are done (from a ring of rows)
 * or all at the end give the same maps, bit for bit. */
static void test_row_batch(void **state)
{
    static const int batch[2] = {0, 5};
    rapid_coadd_opts o;
    rapid_coadd a, b;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    size_t n = (size_t)GRID * GRID * sizeof(float);
    int k;

    (void)state;
    opts(&o);
    o.row_batch = -1;
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &a, NULL, NULL, NULL), 0);
    for (k = 0; k < 2; k++) {
        o.row_batch = batch[k];
        assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &b, NULL, NULL, NULL), 0);
        assert_memory_equal(a.image.data, b.image.data, n);
        assert_memory_equal(a.coverage.data, b.coverage.data, n);
        assert_memory_equal(a.uncertainty.data, b.uncertainty.data, n);
        assert_int_equal(a.meta.clnoutliers, b.meta.clnoutliers);
        rapid_coadd_release(&b);
    }
    rapid_coadd_release(&a);
}

/* ------------------------------------------ outliers where few inputs overlap */

/* Unflagged hot pixels of write_input_dq: on the sky midway between the
 * stars (at integer multiples of 3.3" from the tile centre, where neither
 * the cosmic ray nor the transient is), from 15 to 300 sigma of the sky's
 * noise (10 DN). */
#define NHOT 8
static const int hot_at[NHOT][2] = {{-2, -2}, {-2, 0}, {-2, 2}, {0, -2},
                                    {0, 2}, {2, -2}, {2, 0}, {2, 2}};
static const double hot_dn[NHOT] = {150, 250, 400, 600, 900, 1400, 2000, 3000};

static void hot_sky(int h, double *ra, double *dec)
{
    *dec = tdec + hot_at[h][1] * 3.3 / 3600;
    *ra = tra + hot_at[h][0] * 3.3 / 3600 / cos(tdec * M_PI / 180);
}

/* Input k's geometry, sky, stars and noise, plus: a single-pixel charge
 * of CR_DN / 2 that no flag marks at the cosmic ray's position (if
 * `unflagged`), the NHOT unflagged hot pixels (if `hot`), and a pixel
 * flagged PERSISTENCE at the transient's position whose eight neighbours
 * hold 400 DN of unflagged persistence and the 40 pixels beyond them, up
 * to 3 px away, 150 DN (if `persist`); SCI and DQ extensions, into path. */
static void write_input_dq(int k, int unflagged, int hot, int persist, const char *path)
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_fits_out *out = NULL;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_rng r;
    double x, y;
    int i, xi, yi, a, b;

    input_wcs(&w, k);
    assert_int_equal(rapid_image_alloc(&img, NPIX, NPIX, (float)(SKY * EXPT), NULL), 0);
    assert_int_equal(rapid_image_u32_alloc(&dq, NPIX, NPIX, 0, NULL), 0);
    for (i = 0; i < NSTAR; i++) {
        assert_int_equal(rapid_wcs_sky2pix(&w, 1, &sra[i], &sdec[i], &x, &y, NULL), 0);
        add_gauss(img.data, NPIX, x, y, sflux[i] * EXPT);
    }
    rapid_rng_derive(&r, 91, (uint64_t)k, 0, 0);
    for (i = 0; i < NPIX * NPIX; i++)
        img.data[i] = (float)(rapid_rng_poisson(&r, img.data[i]) + 8.5 * rapid_rng_normal(&r));
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, &cr_ra, &cr_dec, &x, &y, NULL), 0);
    if (unflagged)
        img.data[(int)floor(y + 0.5) * NPIX + (int)floor(x + 0.5)] += (float)(CR_DN / 2);
    for (i = 0; hot && i < NHOT; i++) {
        double ra, dec;
        hot_sky(i, &ra, &dec);
        assert_int_equal(rapid_wcs_sky2pix(&w, 1, &ra, &dec, &x, &y, NULL), 0);
        img.data[(int)floor(y + 0.5) * NPIX + (int)floor(x + 0.5)] += (float)hot_dn[i];
    }
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, &tr_ra, &tr_dec, &x, &y, NULL), 0);
    xi = (int)floor(x + 0.5), yi = (int)floor(y + 0.5);
    if (persist) {
        for (b = -3; b <= 3; b++)
            for (a = -3; a <= 3; a++)
                img.data[(yi + b) * NPIX + xi + a] +=
                    abs(a) <= 1 && abs(b) <= 1 ? 400 : 150;
        img.data[yi * NPIX + xi] += 20000;
        dq.data[yi * NPIX + xi] = RAPID_DQ_PERSISTENCE | RAPID_DQ_DO_NOT_USE;
    }
    assert_int_equal(rapid_wcs_to_header(&w, &img.hdr, NULL), 0);
    rapid_header_set_double(&img.hdr, "EXPTIME", EXPT, NULL);
    rapid_header_set_double(&img.hdr, "ZPTMAG", ZP, NULL);
    rapid_header_set_double(&img.hdr, "MJD-OBS", 62031.0 + k, NULL);
    rapid_header_set_str(&img.hdr, "FILTER", "H158", NULL);
    rapid_header_set_long(&img.hdr, "SCA_NUM", k + 1, NULL);
    rapid_header_set_double(&img.hdr, "GAIN", 1.0, NULL);
    rapid_header_set_double(&img.hdr, "RDNOISE", 8.5, NULL);
    rapid_header_set_double(&img.hdr, "SATURATE", 1e5, NULL);
    assert_int_equal(rapid_fits_create(&out, path, NULL), 0);
    assert_int_equal(rapid_fits_append_image(out, &img, "SCI", NULL), 0);
    assert_int_equal(rapid_fits_append_image_u32(out, &dq, "DQ", NULL), 0);
    assert_int_equal(rapid_fits_commit(out, NULL), 0);
    rapid_image_release(&img);
    rapid_image_u32_release(&dq);
    rapid_wcs_release(&w);
}

/* The coadd's excess over the sky within 3 px of (ra, dec), DN/s, and the
 * noise of that sum from the uncertainty map. */
static double excess_at(const rapid_coadd *c, double ra, double dec, double *noise)
{
    rapid_wcs w = RAPID_WCS_INIT;
    double x, y, v = 0;
    int i, j;

    assert_int_equal(rapid_wcs_from_header(&w, &c->image.hdr, NULL), 0);
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, &ra, &dec, &x, &y, NULL), 0);
    for (j = (int)(y - 4); j <= (int)(y + 4); j++)
        for (i = (int)(x - 4); i <= (int)(x + 4); i++) {
            float u = c->uncertainty.data[j * c->image.nx + i];
            if (hypot(i - x, j - y) <= 3 && isfinite(u))
                v += (double)u * u;
        }
    *noise = sqrt(v);
    rapid_wcs_release(&w);
    return aperture(&c->image, x, y, 3.0, c->meta.gmedian);
}

/* Where two inputs overlap, an unflagged single-pixel charge in one of
 * them (a cosmic ray below the up-the-ramp fit's threshold) is rejected
 * against the other; the excess charge around a pixel flagged PERSISTENCE
 * never enters (its neighbours are masked), even where only that input
 * covers it; the stars keep their flux. */
static void test_low_coverage_outliers(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_coadd_input in[2];
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    char p[2][600];
    double noise, e, worst = 0, x, y;
    int k;

    (void)state;
    snprintf(p[0], sizeof p[0], "%s/l2dq_0.fits", test_tmpdir());
    snprintf(p[1], sizeof p[1], "%s/l2dq_1.fits", test_tmpdir());
    write_input_dq(2, 1, 0, 0, p[0]);
    write_input_dq(3, 0, 0, 0, p[1]);
    in[0].path = p[0], in[1].path = p[1];
    in[0].psf_path = in[1].psf_path = NULL;
    write_psf(test_tmpdir(), 3);
    write_psf(test_tmpdir(), 4);
    opts(&o);
    o.min_inputs = 1;
    assert_ok(rapid_coadd_make(&o, rtid, "H158", in, 2, &c, NULL, NULL, &err), err);
    assert_int_equal(rapid_wcs_from_header(&w, &c.image.hdr, NULL), 0);
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, &cr_ra, &cr_dec, &x, &y, NULL), 0);
    assert_true(c.coverage.data[(int)y * GRID + (int)x] < 2.5);
    e = excess_at(&c, cr_ra, cr_dec, &noise);
    print_message("two inputs: unflagged charge %.1f DN/s left of %.1f, noise %.2f\n", e,
                  CR_DN / 2 / EXPT / 2, noise);
    assert_true(fabs(e) < 4 * noise);
    for (k = 0; k < NSTAR; k++) {
        assert_int_equal(rapid_wcs_sky2pix(&w, 1, &sra[k], &sdec[k], &x, &y, NULL), 0);
        worst = fmax(worst, fabs(aperture(&c.image, x, y, 7.0, c.meta.gmedian) / sflux[k] - 1));
    }
    print_message("two inputs: worst star flux error %.3f%%\n", 100 * worst);
    assert_true(worst < 0.01);
    rapid_coadd_release(&c);
    rapid_wcs_release(&w);
    /* one input: nothing to reject against; the pixels within 3 px of
     * the flagged one are left out */
    write_input_dq(2, 0, 0, 1, p[0]);
    assert_ok(rapid_coadd_make(&o, rtid, "H158", in, 1, &c, NULL, NULL, &err), err);
    e = excess_at(&c, tr_ra, tr_dec, &noise);
    print_message("one input: excess around a PERSISTENCE pixel %.1f DN/s (the pixels "
                  "within 3 px held %.0f), noise %.2f\n", e, (8 * 400 + 40 * 150) / EXPT,
                  noise);
    assert_true(fabs(e) < 4 * noise);
    rapid_coadd_release(&c);
}

/* Where one input alone makes the reference there is nothing to reject
 * its unflagged hot pixels and single-pixel cosmic-ray charge against:
 * they are found in the input itself (docs/reference.md) and left out,
 * every one of them, and the header counts them (NSPIKE), while no pixel
 * of a star, whatever its phase on the input's pixels, is taken: each
 * keeps its flux and its full coverage. */
static void test_single_input_spikes(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_coadd_input in;
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT, wi = RAPID_WCS_INIT;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    char p[600];
    double noise, e, worst = 0, covmin = 2, x, y, ph[2][2] = {{1, 0}, {1, 0}};
    long nspike = -1;
    int k, i, j;

    (void)state;
    snprintf(p, sizeof p, "%s/l2hot.fits", test_tmpdir());
    write_input_dq(2, 1, 1, 0, p);
    write_psf(test_tmpdir(), 3);
    in.path = p, in.psf_path = NULL;
    opts(&o);
    o.min_inputs = 1;
    assert_ok(rapid_coadd_make(&o, rtid, "H158", &in, 1, &c, NULL, NULL, &err), err);
    assert_int_equal(rapid_header_get_long(&c.header, "NSPIKE", &nspike, NULL), 0);
    print_message("one input: %ld spikes masked (%d hot pixels and a cosmic ray planted)\n",
                  nspike, NHOT);
    assert_int_equal(nspike, NHOT + 1);
    e = excess_at(&c, cr_ra, cr_dec, &noise);
    assert_true(fabs(e) < 4 * noise);
    for (k = 0; k < NHOT; k++) {
        double ra, dec;
        hot_sky(k, &ra, &dec);
        e = excess_at(&c, ra, dec, &noise);
        print_message("hot pixel of %.0f DN: %.2f DN/s left, noise %.2f\n", hot_dn[k], e, noise);
        assert_true(fabs(e) < 4 * noise);
    }
    assert_int_equal(rapid_wcs_from_header(&w, &c.image.hdr, NULL), 0);
    input_wcs(&wi, 2);
    for (k = 0; k < NSTAR; k++) {
        double xi, yi;
        assert_int_equal(rapid_wcs_sky2pix(&wi, 1, &sra[k], &sdec[k], &xi, &yi, NULL), 0);
        xi -= floor(xi + 0.5), yi -= floor(yi + 0.5); /* the phase on the input */
        ph[0][0] = fmin(ph[0][0], xi), ph[0][1] = fmax(ph[0][1], xi);
        ph[1][0] = fmin(ph[1][0], yi), ph[1][1] = fmax(ph[1][1], yi);
        assert_int_equal(rapid_wcs_sky2pix(&w, 1, &sra[k], &sdec[k], &x, &y, NULL), 0);
        worst = fmax(worst, fabs(aperture(&c.image, x, y, 7.0, c.meta.gmedian) / sflux[k] - 1));
        for (j = (int)y - 4; j <= (int)y + 5; j++)
            for (i = (int)x - 4; i <= (int)x + 5; i++)
                covmin = fmin(covmin, c.coverage.data[j * GRID + i]);
    }
    print_message("stars at phases x %.2f..%.2f, y %.2f..%.2f: worst flux error %.3f%%, "
                  "least coverage within 4 px %.3f\n", ph[0][0], ph[0][1], ph[1][0],
                  ph[1][1], 100 * worst, covmin);
    assert_true(ph[0][0] < -0.4 && ph[0][1] > 0.4 && ph[1][0] < -0.4 && ph[1][1] > 0.4);
    assert_true(worst < 0.01);
    assert_true(covmin > 0.9);
    rapid_coadd_release(&c);
    rapid_wcs_release(&w);
    rapid_wcs_release(&wi);
}

/* The rejection's pre-filter only saves time: with it and without it
 * (every pixel through the full test) the same values are rejected, so
 * the maps are the same bit for bit, for settings that put many pixels
 * near the thresholds (down to 2 sigma on blank sky), with the gradient
 * term none (the pre-filter's bar is then the whole bar), weak, strong or
 * negative (no pre-filter then anyway). */
static void test_reject_prefilter(void **state)
{
    static const double set[5][3] = { /* reject_sigma, reject_grad, grow_sigma */
        {2.0, 0.0, 1.5}, {3.0, 0.5, 2.0}, {2.5, 0.25, 1.5}, {4.5, 2.0, 2.5},
        {3.0, -0.5, 2.0}};
    rapid_coadd_opts o;
    rapid_coadd a, b;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    size_t n = (size_t)GRID * GRID * sizeof(float);
    long last = -1;
    int k;

    (void)state;
    for (k = 0; k < 5; k++) {
        opts(&o);
        o.reject_sigma = set[k][0];
        o.reject_grad = set[k][1];
        o.grow_sigma = set[k][2];
        assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &a, NULL, NULL, NULL), 0);
        coadd_reject_prefilter = 0;
        assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &b, NULL, NULL, NULL), 0);
        coadd_reject_prefilter = 1;
        assert_true(a.meta.clnoutliers > 0);
        assert_true(a.meta.clnoutliers != last); /* the settings matter */
        last = a.meta.clnoutliers;
        assert_int_equal(a.meta.clnoutliers, b.meta.clnoutliers);
        assert_memory_equal(a.image.data, b.image.data, n);
        assert_memory_equal(a.coverage.data, b.coverage.data, n);
        assert_memory_equal(a.uncertainty.data, b.uncertainty.data, n);
        rapid_coadd_release(&a);
        rapid_coadd_release(&b);
    }
}

/* Two threads give the same image as one (sums in a different order can
 * differ in the last bit, nothing more). */
static void test_threads(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd a, b;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    double worst = 0;
    long i;

    (void)state;
    opts(&o);
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &a, NULL, NULL, NULL), 0);
    o.nthreads = 2;
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &b, NULL, NULL, NULL), 0);
    for (i = 0; i < (long)GRID * GRID; i++)
        if (isfinite(a.image.data[i]))
            worst = fmax(worst, fabs(a.image.data[i] - b.image.data[i]));
    assert_true(worst < 1e-3);
    rapid_coadd_release(&a);
    rapid_coadd_release(&b);
}

/* Coverage is conserved: on a grid that holds every input whole, the
 * coverage map sums to the inputs' total area (6 x 256^2 pixels, give or
 * take the SIP distortion's change of pixel area, well under 1%); on a grid
 * that every input covers, to 6 per pixel. */
static void test_coverage_total(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    double sum = 0, want = (double)NIN * NPIX * NPIX;
    long i;

    (void)state;
    opts(&o);
    o.size = 460; /* the inputs' diagonal is 362 px, their offsets 2" */
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &c, NULL, NULL, NULL), 0);
    for (i = 0; i < 460L * 460; i++)
        sum += c.coverage.data[i];
    /* two inputs lose a dead pixel each; the rest is SIP area change */
    if (fabs(sum / want - 1) > 0.01)
        fail_msg("coverage sums to %.1f, inputs hold %.0f pixels", sum, want);
    rapid_coadd_release(&c);
    /* and on a grid that every input covers whole (a 256 px square at any
     * rotation holds a centred 181 px one; the dithers take 18 px): every
     * pixel has all six */
    o.size = 140;
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &c, NULL, NULL, NULL), 0);
    for (i = 0, sum = 0; i < 140L * 140; i++)
        sum += c.coverage.data[i];
    if (fabs(sum / (NIN * 140.0 * 140) - 1) > 0.01)
        fail_msg("coverage of a fully covered grid sums to %.1f of %.0f", sum,
                 NIN * 140.0 * 140);
    rapid_coadd_release(&c);
}

static void test_too_few(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);

    (void)state;
    opts(&o);
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, 2, &c, NULL, NULL, &err),
                     RAPID_E_TOOFEW);
    assert_non_null(strstr(err.msg, "at least 3"));
    assert_int_equal(c.nskipped, 0);
    rapid_coadd_release(&c);
    assert_string_equal(rapid_strstatus(RAPID_E_TOOFEW), "too few inputs");
    /* inputs far from the tile do not count */
    assert_int_equal(rapid_coadd_make(&o, rtid + 1000, "H158", inputs, NIN, &c, NULL, NULL, &err),
                     RAPID_E_TOOFEW);
    assert_non_null(strstr(err.msg, "0 usable"));
    assert_int_equal(c.nskipped, NIN); /* each named, with why */
    assert_non_null(strstr(err.msg, paths[NIN - 1]));
    rapid_coadd_release(&c);
}

/* The same file given twice (by the same path, another spelling of it or a
 * symbolic link) would be counted twice: refused, naming both entries. */
static void test_same_file_twice(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_coadd_input twice[NIN + 1];
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    char want[1200], link[600], other[600];

    (void)state;
    opts(&o);
    memcpy(twice, inputs, 4 * sizeof *twice);
    twice[4] = inputs[0];
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", twice, 5, &c, NULL, NULL, &err),
                     RAPID_E_ARG);
    snprintf(want, sizeof want, "input 5 (%s) is the same file as input 1 (%s)",
             paths[0], paths[0]);
    assert_non_null(strstr(err.msg, want));
    assert_int_equal(c.ninputs, 0);
    /* a symbolic link, and another spelling of the path */
    snprintf(link, sizeof link, "%s", test_path("same_as_2.fits"));
    unlink(link);
    assert_int_equal(symlink(paths[2], link), 0);
    snprintf(other, sizeof other, "%s/./%s", test_tmpdir(), strrchr(paths[3], '/') + 1);
    twice[4].path = link;
    twice[5].path = other, twice[5].psf_path = NULL;
    assert_int_equal(rapid_coadd_check_inputs(twice, 6, &err), RAPID_E_ARG);
    snprintf(want, sizeof want, "input 5 (%s) is the same file as input 3 (%s)",
             link, paths[2]);
    assert_non_null(strstr(err.msg, want));
    twice[4] = inputs[4];
    assert_int_equal(rapid_coadd_check_inputs(twice, 6, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "input 6"));
    assert_non_null(strstr(err.msg, "input 4"));
    assert_int_equal(rapid_coadd_check_inputs(inputs, NIN, &err), 0);
    unlink(link);
}

/* An input that cannot be used (its WCS puts it far from the tile) is
 * left out and named in the result with the reason; with too few left,
 * the message names it too. */
static void test_skipped_named(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_coadd_input in[5];
    rapid_image img = RAPID_IMAGE_INIT;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    const char *bad = test_path("far_away.fits");

    (void)state;
    opts(&o);
    assert_int_equal(rapid_fits_read_image(paths[4], NULL, &img, NULL), 0);
    assert_int_equal(rapid_header_set_double(&img.hdr, "CRVAL1", 150.0, NULL), 0);
    assert_int_equal(rapid_fits_write_image(bad, &img, "SCI", NULL), 0);
    rapid_image_release(&img);
    memcpy(in, inputs, 4 * sizeof *in);
    in[4].path = bad, in[4].psf_path = NULL;
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", in, 5, &c, NULL, NULL, &err), 0);
    assert_int_equal(c.ninputs, 4);
    assert_int_equal(c.nskipped, 1);
    assert_string_equal(c.skipped[0].path, bad);
    assert_non_null(strstr(c.skipped[0].reason, "deg from the tile centre"));
    rapid_coadd_release(&c);
    /* more than max_inputs: the farthest is named as not used */
    o.max_inputs = 3;
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, 4, &c, NULL, NULL, &err), 0);
    assert_int_equal(c.ninputs, 3);
    assert_int_equal(c.nskipped, 1);
    assert_non_null(strstr(c.skipped[0].reason, "nearest the tile centre"));
    rapid_coadd_release(&c);
    /* too few left: the message names the one left out, and so does the
     * result */
    o.max_inputs = 25;
    in[2] = in[4];
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", in, 3, &c, NULL, NULL, &err),
                     RAPID_E_TOOFEW);
    assert_non_null(strstr(err.msg, "2 usable input images of 3 given"));
    assert_non_null(strstr(err.msg, bad));
    assert_int_equal(c.nskipped, 1);
    assert_string_equal(c.skipped[0].path, bad);
    rapid_coadd_release(&c);
    unlink(bad);
}

/* Allocation failures.  test_coadd is linked with --wrap for malloc,
 * calloc and realloc (tests/CMakeLists.txt): every call of the library's
 * code (a static archive) comes here, and while fail_at >= 0 the one with
 * that number gets NULL.  Third-party libraries (shared) are not wrapped. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
static long fail_at = -1, nalloc;

static int must_fail(void)
{
    return fail_at >= 0 && __atomic_fetch_add(&nalloc, 1, __ATOMIC_RELAXED) == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return must_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return must_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return must_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return must_fail() ? NULL : __real_strdup(s);
}

/* Each allocation of a reference image made to fail in turn: either the
 * library works around it (and gives the same image) or it says it ran
 * out of memory and hands back nothing; no crash, and no leak (checked
 * under AddressSanitizer); a header card it could not set is named.  The
 * first 400 one by one (all of them, from three inputs), then a spread of
 * any more. */
static void test_out_of_memory(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd ref, c;
    rapid_err err = RAPID_ERR_INIT;
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    size_t n;
    long total, k, step, nfailed = 0, ncards = 0;
    int rc, i;

    (void)state;
    opts(&o);
    o.max_inputs = 3; /* the fewest that make a reference, on a smaller grid:
                       * every call site still fails, in less time */
    o.size = 160;
    nalloc = 0, fail_at = 1L << 60; /* count only */
    assert_int_equal(rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &ref, NULL, NULL, NULL), 0);
    total = nalloc;
    fail_at = -1;
    n = (size_t)ref.image.nx * ref.image.ny * sizeof(float);
    print_message("coadd: %ld allocations, each made to fail in turn\n", total);
    assert_true(total > 100);
    step = total > 400 ? (total - 400) / 200 + 1 : 1;
    for (k = 0; k < total; k += k < 400 ? 1 : step) {
        nalloc = 0, fail_at = k;
        rc = rapid_coadd_make(&o, rtid, "H158", inputs, NIN, &c, NULL, NULL, &err);
        fail_at = -1;
        if (rc == 0) { /* worked around: the same image, every header card */
            assert_memory_equal(ref.image.data, c.image.data, n);
            assert_int_equal(ref.catalog.nrows, c.catalog.nrows);
            assert_int_equal(ref.image.hdr.ncards, c.image.hdr.ncards);
            assert_int_equal(ref.coverage.hdr.ncards, c.coverage.hdr.ncards);
            assert_int_equal(ref.uncertainty.hdr.ncards, c.uncertainty.hdr.ncards);
            assert_int_equal(ref.psf.hdr.ncards, c.psf.hdr.ncards);
            assert_int_equal(ref.ninputs, c.ninputs);
            for (i = 0; i < c.ninputs; i++)
                assert_string_equal(ref.inputs[i], c.inputs[i]);
            rapid_coadd_release(&c);
            continue;
        }
        nfailed++;
        if (rc != RAPID_E_NOMEM || !strstr(err.msg, "memory"))
            fail_msg("allocation %ld of %ld: code %d, \"%s\"", k, total, rc, err.msg);
        /* "reference image: cannot set header card MAGZP: out of memory" */
        if (strstr(err.msg, "cannot set header card ")) {
            const char *key = strstr(err.msg, "header card ") + 12;
            size_t kn = strcspn(key, ":");
            char name[16];
            assert_true(kn > 0 && kn <= 8);
            snprintf(name, sizeof name, "%.*s", (int)kn, key);
            if (!rapid_header_has(&ref.image.hdr, name) &&
                !rapid_header_has(&ref.psf.hdr, name))
                fail_msg("allocation %ld: no card %s in the products", k, name);
            ncards++;
        }
        assert_null(c.image.data);
        assert_null(c.catalog.cols);
    }
    assert_true(nfailed > 0);
    assert_true(ncards > 10);

    /* and writing it: the five products of the earlier set or the five
     * new ones, and no temporaries beside them */
    nalloc = 0, fail_at = 1L << 60;
    assert_int_equal(rapid_coadd_write(&ref, test_path("oom"), rtid, "H158", NULL), 0);
    total = nalloc;
    fail_at = -1;
    assert_int_equal(test_count_entries(test_path("oom")), 5);
    print_message("coadd: writing it, %ld allocations\n", total);
    for (k = 0; k < total; k++) {
        nalloc = 0, fail_at = k;
        rc = rapid_coadd_write(&ref, test_path("oom"), rtid, "H158", &err);
        fail_at = -1;
        if (rc == 0) {
            assert_int_equal(test_count_entries(test_path("oom")), 5);
            continue;
        }
        if (rc != RAPID_E_NOMEM || !strstr(err.msg, "memory"))
            fail_msg("writing, allocation %ld of %ld: code %d, \"%s\"", k, total,
                     rc, err.msg);
        assert_int_equal(test_count_entries(test_path("oom")), 5);
        assert_int_equal(test_count_prefixed(test_tmpdir(), ".oom."), 0);
        /* the same failure without an error record */
        nalloc = 0, fail_at = k;
        assert_int_equal(rapid_coadd_write(&ref, test_path("oom"), rtid, "H158", NULL), rc);
        fail_at = -1;
    }
    rapid_coadd_release(&ref);
}

/* A Gaussian of sigma s through a box of one pixel and a tent (the
 * resampling's two pixels) along one axis, at x: the Gaussian through
 * three boxes, integrated here by the midpoint rule, far finer than the
 * Gaussian. */
static double gauss_boxes(double x, double s)
{
    const int m = 6000;
    double v = 0;
    int i;

    for (i = 0; i < m; i++) { /* t over the tent's support -1.5 .. 1.5 */
        double t = -1.5 + 3.0 * (i + 0.5) / m, a = fabs(t), k;
        /* box * box * box: the quadratic B-spline */
        k = a < 0.5 ? 0.75 - a * a : a < 1.5 ? 0.5 * (1.5 - a) * (1.5 - a) : 0;
        v += k * exp(-0.5 * (x - t) * (x - t) / (s * s));
    }
    return v * 3.0 / m / (s * sqrt(2 * M_PI));
}

/* The reference PSF from oversampled input PSFs, against the answer in
 * closed form: two inputs, a round Gaussian of sigma 0.5 px through its
 * pixel (as an effective PSF is), oversampled 4 times, make a reference
 * PSF that is the Gaussian through three pixels, sampled at the pixel
 * centres.  (The [1/12 5/6 1/12] kernel on the sampled input puts 14 %
 * more light in the central pixel.) */
static void test_psf_oversampled(void **state)
{
    const int over = 4, n = 81, size = 15;
    const double sig = 0.5;
    rapid_image in[2] = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT};
    rapid_image out = RAPID_IMAGE_INIT, ovs = RAPID_IMAGE_INIT, old = RAPID_IMAGE_INIT;
    rapid_image nat[2] = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT};
    rapid_err err = RAPID_ERR_INIT;
    double want[15 * 15], wsum = 0, worst = 0, osum = 0;
    long ov = 0;
    int i, j, k, h = size / 2, c = n / 2;

    (void)state;
    for (k = 0; k < 2; k++) { /* the same PSF, scaled: each is normalised */
        assert_ok(rapid_image_alloc(&in[k], n, n, 0, &err), err);
        assert_ok(rapid_image_alloc(&nat[k], size, size, 0, &err), err);
        for (j = 0; j < n; j++)
            for (i = 0; i < n; i++) {
                double x = (i - c) / (double)over, y = (j - c) / (double)over;
                /* the Gaussian through one box, per axis */
                double gx = 0.5 * (erf((x + 0.5) / (sig * M_SQRT2)) -
                                   erf((x - 0.5) / (sig * M_SQRT2)));
                double gy = 0.5 * (erf((y + 0.5) / (sig * M_SQRT2)) -
                                   erf((y - 0.5) / (sig * M_SQRT2)));
                in[k].data[j * n + i] = (float)((k + 1) * gx * gy);
                if ((i - c) % over == 0 && (j - c) % over == 0 &&
                    abs(i - c) / over <= h && abs(j - c) / over <= h)
                    nat[k].data[((j - c) / over + h) * size + (i - c) / over + h] =
                        (float)(gx * gy);
            }
    }
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            want[j * size + i] = gauss_boxes(i - h, sig) * gauss_boxes(j - h, sig);
            wsum += want[j * size + i];
        }
    assert_ok(rapid_coadd_psf_oversampled(in, 2, over, size, &out, &ovs, &err), err);
    assert_int_equal(out.nx, size);
    assert_int_equal(ovs.nx, n);
    assert_ok(rapid_header_get_long(&ovs.hdr, "OVERSAMP", &ov, &err), err);
    assert_int_equal(ov, over);
    for (i = 0; i < size * size; i++)
        worst = fmax(worst, fabs(out.data[i] - want[i] / wsum));
    for (i = 0; i < n * n; i++)
        osum += ovs.data[i];
    assert_ok(rapid_coadd_psf(nat, 2, size, &old, &err), err);
    print_message("reference PSF of a Gaussian through 3 pixels: centre %.5f "
                  "(closed form %.5f, worst pixel off by %.2g); the [1/12 5/6 "
                  "1/12] kernel on the samples: %.5f\n", out.data[h * size + h],
                  want[h * size + h] / wsum, worst, old.data[h * size + h]);
    /* the model is made round (the inputs come at many roll angles), the
     * three boxes here are square: that moves up to 1.5 % of the peak */
    assert_true(worst < 0.015 * want[h * size + h] / wsum);
    assert_true(old.data[h * size + h] > 1.1 * want[h * size + h] / wsum);
    assert_true(fabs(osum - 1) < 1e-5);
    /* errors */
    rapid_image_release(&out);
    assert_int_equal(rapid_coadd_psf_oversampled(in, 2, 0, size, &out, NULL, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_coadd_psf_oversampled(in, 2, over, 14, &out, NULL, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_coadd_psf_oversampled(in, 0, over, size, &out, NULL, &err),
                     RAPID_E_ARG);
    assert_null(out.data);
    for (k = 0; k < 2; k++) {
        rapid_image_release(&in[k]);
        rapid_image_release(&nat[k]);
    }
    rapid_image_release(&ovs);
    rapid_image_release(&old);
}

static void test_bad_inputs(void **state)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_coadd_input bad[NIN];
    int64_t rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, 11.1, -43.8);
    FILE *f;

    (void)state;
    opts(&o);
    memcpy(bad, inputs, sizeof bad);
    /* another filter */
    assert_int_equal(rapid_coadd_make(&o, rtid, "F184", inputs, NIN, &c, NULL, NULL, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, paths[0]));
    /* not FITS */
    f = fopen(test_path("junk.fits"), "w");
    fputs("not a FITS file\n", f);
    fclose(f);
    bad[3].path = test_path("junk.fits");
    assert_int_not_equal(rapid_coadd_make(&o, rtid, "H158", bad, NIN, &c, NULL, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "junk.fits"));
    /* no PSF */
    assert_int_equal(rapid_coadd_find_psf("/nonexistent/x.fits", "H158", 3, NULL, 0, &err),
                     RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/x.fits"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truth),
        cmocka_unit_test(test_row_batch),
        cmocka_unit_test(test_reject_prefilter),
        cmocka_unit_test(test_low_coverage_outliers),
        cmocka_unit_test(test_single_input_spikes),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_coverage_total),
        cmocka_unit_test(test_too_few),
        cmocka_unit_test(test_same_file_twice),
        cmocka_unit_test(test_skipped_named),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_psf_oversampled),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
