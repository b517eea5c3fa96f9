/* test_sim.c - the simulator checked against its own truth: sky level and
 * noise, star positions through the written WCS, aperture photometry,
 * galaxy fluxes, transients and variables, injection, determinism, the
 * files of a whole run, and the errors. */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rapid/sim.h"
#include "sim/sim_internal.h"
#include "testutil.h"

/* ------------------------------------------------------------- helpers */

/* A small survey: one detector, two visits, H158; no defect map (the
 * tests of defects switch it on). */
static void small_config(rapid_sim_config *c, int size)
{
    rapid_sim_config_init(c);
    c->defects = 0;
    c->seed = 11;
    c->size = size;
    c->exptime = 140; /* one time for every filter */
    c->nscas = 1;
    c->epochs = 2;
    c->nfilters = 1;
    c->filters[0] = rapid_filter_by_name("H158");
}

typedef struct world {
    rapid_sim_config c;
    rapid_sim_pointing *p;
    int np;
    rapid_sim_scene *scene;
    rapid_psf_field psf;
} world;

static void world_make(world *w)
{
    rapid_err err = RAPID_ERR_INIT;

    w->np = rapid_sim_plan(&w->c, &w->p, &err);
    if (w->np <= 0)
        fail_msg("plan: %d: %s", w->np, err.msg);
    assert_ok(rapid_sim_scene_make(&w->c, w->p, w->np, &w->scene, &err), err);
    memset(&w->psf, 0, sizeof w->psf);
    assert_ok(rapid_psf_field_make(&w->psf, w->p[0].filter, 1, w->c.size,
                                   w->c.size, NULL, &err),
              err);
}

static void world_release(world *w)
{
    rapid_psf_field_release(&w->psf);
    rapid_sim_scene_free(w->scene);
    free(w->p);
}

static void render(world *w, int ip, rapid_image *img, rapid_table *truth)
{
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_sim_render(&w->c, w->scene, &w->p[ip], 1, &w->psf, img,
                               truth, &err),
              err);
}

/* The sky + dark level of SCA 1 at pointing p: the filter's zodiacal
 * light scaled to where p looks (rapid_zodi_factor, checked against the
 * published table by test_sim_zodi), its thermal background, dark. */
static double base_dn(const rapid_sim_pointing *p)
{
    const rapid_filter *f = p->filter;
    double zodi = rapid_zodi_factor(p->ra, p->dec,
                                    p->mjd + p->exptime / 2 / 86400.0, NULL);

    return (f->zodi * zodi + f->thermal + RAPID_DARK) * p->exptime / RAPID_GAIN;
}

static double hdr_double(const rapid_header *h, const char *key)
{
    rapid_err err = RAPID_ERR_INIT;
    double v = 0;

    assert_ok(rapid_header_get_double(h, key, &v, &err), err);
    return v;
}

/* The image written to a file and read back with its WCS: positions are
 * then checked through what a user of the file sees. */
static void write_read(const rapid_image *img, const char *name,
                       rapid_image *back, rapid_wcs *wcs)
{
    rapid_err err = RAPID_ERR_INIT;
    const char *path = test_path(name);

    assert_ok(rapid_fits_write_image(path, img, "SCI", &err), err);
    assert_ok(rapid_fits_read_image(path, "SCI", back, &err), err);
    assert_ok(rapid_wcs_from_header(wcs, &back->hdr, &err), err);
    wcs->nx = back->nx;
    wcs->ny = back->ny;
}

/* Least-squares fit of flux and position of one point source with the PSF
 * model itself, over a (2k+1)^2 window around (x, y); sky known.
 * Gauss-Newton with numerical derivatives. */
static void psf_fit(const rapid_psf_field *f, const float *img, int nx, int ny,
                    double sky, double *x, double *y, double *flux)
{
    int half = f->opts.half, m = 2 * half + 1, k = 4, it, i, j, c;
    int cx = (int)floor(*x + 0.5), cy = (int)floor(*y + 0.5);
    float *s[3];
    double h = 1e-3;

    for (c = 0; c < 3; c++)
        s[c] = malloc((size_t)m * m * sizeof(float));
    for (it = 0; it < 15; it++) {
        double A[3][3] = {{0}}, b[3] = {0}, det, d[3];
        int ix[3], iy[3];
        rapid_psf_field_stamp(f, *x, *y, half, s[0], &ix[0], &iy[0]);
        rapid_psf_field_stamp(f, *x + h, *y, half, s[1], &ix[1], &iy[1]);
        rapid_psf_field_stamp(f, *x, *y + h, half, s[2], &ix[2], &iy[2]);
        for (j = cy - k; j <= cy + k; j++)
            for (i = cx - k; i <= cx + k; i++) {
                double p[3], g[3], r;
                if (i < 0 || j < 0 || i >= nx || j >= ny)
                    continue;
                for (c = 0; c < 3; c++) {
                    int u = i - ix[c], v = j - iy[c];
                    p[c] = u >= 0 && v >= 0 && u < m && v < m ? s[c][v * m + u] : 0;
                }
                g[0] = p[0];
                g[1] = *flux * (p[1] - p[0]) / h;
                g[2] = *flux * (p[2] - p[0]) / h;
                r = img[(size_t)j * nx + i] - sky - *flux * p[0];
                for (c = 0; c < 3; c++) {
                    int e;
                    for (e = 0; e < 3; e++)
                        A[c][e] += g[c] * g[e];
                    b[c] += g[c] * r;
                }
            }
        det = A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) -
              A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0]) +
              A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]);
        for (c = 0; c < 3; c++) { /* Cramer's rule */
            double M[3][3];
            memcpy(M, A, sizeof M);
            for (i = 0; i < 3; i++)
                M[i][c] = b[i];
            d[c] = (M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) -
                    M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                    M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0])) / det;
        }
        *flux += d[0];
        *x += fmax(-0.5, fmin(0.5, d[1]));
        *y += fmax(-0.5, fmin(0.5, d[2]));
    }
    for (c = 0; c < 3; c++)
        free(s[c]);
}

/* Sum of (img - sky) over pixels whose centres lie within r of (x, y). */
static double aperture_sum(const float *img, int nx, int ny, double x,
                           double y, double r, double sky)
{
    int i, j;
    double s = 0;

    for (j = (int)floor(y - r); j <= (int)ceil(y + r); j++)
        for (i = (int)floor(x - r); i <= (int)ceil(x + r); i++)
            if (i >= 0 && j >= 0 && i < nx && j < ny &&
                (i - x) * (i - x) + (j - y) * (j - y) <= r * r)
                s += img[(size_t)j * nx + i] - sky;
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Mean of the pixels in the annulus r1 <= d < r2 around (x, y), clipped
 * at 3 sigma about the median (neighbours, cosmic rays), and the count. */
static double annulus_mean(const float *img, int nx, int ny, double x,
                           double y, double r1, double r2, int clip)
{
    int i, j, n = 0, it, m;
    double *v = malloc((size_t)(4 * (r2 + 1) * (r2 + 1)) * sizeof *v);
    double lo = -INFINITY, hi = INFINITY, mean = NAN;

    for (j = (int)floor(y - r2); j <= (int)ceil(y + r2); j++)
        for (i = (int)floor(x - r2); i <= (int)ceil(x + r2); i++) {
            double d2 = (i - x) * (i - x) + (j - y) * (j - y);
            if (i >= 0 && j >= 0 && i < nx && j < ny && d2 >= r1 * r1 &&
                d2 < r2 * r2)
                v[n++] = img[(size_t)j * nx + i];
        }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    for (it = 0; it < (clip ? 5 : 1); it++) {
        double s = 0, s2 = 0, sd;
        for (i = m = 0; i < n; i++)
            if (v[i] >= lo && v[i] <= hi) {
                s += v[i];
                s2 += v[i] * v[i];
                m++;
            }
        mean = s / m;
        sd = sqrt(fmax(s2 / m - mean * mean, 0));
        lo = v[n / 2] - 3 * sd;
        hi = v[n / 2] + 3 * sd;
    }
    free(v);
    return mean;
}

/* What aperture photometry with a local sky annulus gets of a point source
 * of unit flux, from the PSF model at (x, y): the light in the aperture
 * less the aperture's area times the mean of the wings in the annulus. */
static double aperture_correction(const rapid_psf_field *f, double x, double y,
                                  double r, double r1, double r2)
{
    int half = f->opts.half, m = 2 * half + 1, ix0, iy0, i, j, na = 0, nn = 0;
    float *s = malloc((size_t)m * m * sizeof *s);
    double in = 0, ann = 0;

    rapid_psf_field_stamp(f, x, y, half, s, &ix0, &iy0);
    for (j = 0; j < m; j++)
        for (i = 0; i < m; i++) {
            double dx = ix0 + i - x, dy = iy0 + j - y, d2 = dx * dx + dy * dy;
            if (d2 <= r * r) {
                in += s[j * m + i];
                na++;
            } else if (d2 >= r1 * r1 && d2 < r2 * r2) {
                ann += s[j * m + i];
                nn++;
            }
        }
    free(s);
    return in - na * ann / nn;
}

static double src_flux_dn(const world *w, const sim_source *s)
{
    return sim_mag_to_dn(w->p[0].filter, 1, s->mag[w->p[0].filter->fid - 1],
                         w->c.exptime, RAPID_GAIN);
}

/* True if nothing within r pixels of source k (at x[k], y[k]) is brighter
 * than its flux times ratio, and no transient or variable is near. */
static int isolated(const world *w, const double *x, const double *y,
                    int64_t k, double r, double ratio)
{
    const rapid_sim_scene *s = w->scene;
    double fk = src_flux_dn(w, &s->src[k]);
    int64_t j;

    for (j = 0; j < s->nsrc; j++) {
        if (j == k || fabs(x[j] - x[k]) > r || fabs(y[j] - y[k]) > r)
            continue;
        if (hypot(x[j] - x[k], y[j] - y[k]) < r &&
            src_flux_dn(w, &s->src[j]) > ratio * fk)
            return 0;
    }
    for (j = 0; j < s->ntr; j++)
        if (s->tr[j].host == s->src[k].id ||
            rapid_sky_distance(s->tr[j].ra, s->tr[j].dec, s->src[k].ra,
                               s->src[k].dec) < r * 0.11 / 3600 * 1.1)
            return 0;
    return 1;
}

/* Pixel positions of every static source through wcs. */
static void all_positions(const world *w, rapid_wcs *wcs, double **x,
                          double **y)
{
    const rapid_sim_scene *s = w->scene;
    double *ra = malloc((size_t)s->nsrc * sizeof *ra);
    double *dec = malloc((size_t)s->nsrc * sizeof *dec);
    int64_t i;

    *x = malloc((size_t)s->nsrc * sizeof **x);
    *y = malloc((size_t)s->nsrc * sizeof **y);
    for (i = 0; i < s->nsrc; i++) {
        ra[i] = s->src[i].ra;
        dec[i] = s->src[i].dec;
    }
    /* sources far outside the detector may not map: they are skipped */
    rapid_wcs_sky2pix(wcs, (int)s->nsrc, ra, dec, *x, *y, NULL);
    free(ra);
    free(dec);
}

/* ----------------------------------------------- detector zero points */

/* Each detector has the zero point of the Roman project's per-detector
 * effective areas: ZPTMAG in its header, and a sky (in e/s) scaled by its
 * throughput, measured on noiseless images of three detectors. */
static void test_detector_zero_points(void **state)
{
    static const int scas[3] = {1, 12, 18};
    const rapid_filter *f = rapid_filter_by_name("H158");
    double lo = 99, hi = -99, sky1 = 0;
    rapid_err err = RAPID_ERR_INIT;
    world w;
    int k;

    (void)state;
    for (k = 1; k <= RAPID_NSCA; k++) {
        lo = fmin(lo, rapid_zero_point(f, k));
        hi = fmax(hi, rapid_zero_point(f, k));
    }
    /* published: 26.321 (SCA 1) to 26.455 (SCA 18) in F158 */
    assert_true(fabs(rapid_zero_point(f, 1) - f->zp_ab) < 1e-12);
    assert_true(fabs(rapid_zero_point(f, 18) - 26.455) < 0.002);
    assert_true(hi - lo > 0.12 && hi - lo < 0.15);
    assert_true(rapid_zero_point(f, 0) == f->zp_ab);
    small_config(&w.c, 64);
    w.c.nscas = 18;
    w.c.with_sources = 0;
    w.c.with_noise = 0;
    w.c.hot_pixels = 0;
    world_make(&w);
    for (k = 0; k < 3; k++) {
        rapid_image img = RAPID_IMAGE_INIT;
        rapid_psf_field psf;
        double sky = 0, zpt;
        size_t i;
        memset(&psf, 0, sizeof psf);
        assert_ok(rapid_psf_field_make(&psf, f, scas[k], 64, 64, NULL, &err),
                  err);
        assert_ok(rapid_sim_render(&w.c, w.scene, &w.p[0], scas[k], &psf, &img,
                                   NULL, &err), err);
        for (i = 0; i < (size_t)64 * 64; i++)
            sky += img.data[i] / (64.0 * 64.0);
        sky = sky * RAPID_GAIN / w.c.exptime - RAPID_DARK; /* e/s of light */
        zpt = hdr_double(&img.hdr, "ZPTMAG");
        assert_true(fabs(zpt - rapid_zero_point(f, scas[k])) < 1e-12);
        if (k == 0)
            sky1 = sky;
        printf("# SCA %d: ZPTMAG %.3f, sky %.4f e/s (%.4f of SCA 1's)\n",
               scas[k], zpt, sky, sky / sky1);
        assert_true(fabs(sky / sky1 - pow(10, 0.4 * (zpt - rapid_zero_point(
                                                         f, 1)))) < 1e-5);
        rapid_psf_field_release(&psf);
        rapid_image_release(&img);
    }
    world_release(&w);
}

/* --------------------------------------------------------- sky and noise */

/* exptime 0: the filter's own exposure time */
static void check_sky(const char *filter, double exptime)
{
    world w;
    rapid_image img = RAPID_IMAGE_INIT;
    const rapid_filter *f = rapid_filter_by_name(filter);
    double s = 0, s2 = 0, mean, sd, want_mean, want_sd, t, rn, zf;
    size_t i, n;

    small_config(&w.c, 512);
    /* at the south ecliptic pole, where the zodiacal light is the level
     * the Roman project publishes (minimum zodiacal light) on any date */
    w.c.ra = 90.0;
    w.c.dec = -(90.0 - 23.4392911);
    w.c.exptime = exptime;
    w.c.filters[0] = f;
    w.c.with_sources = 0;
    w.c.cosmic_rays = 0;
    w.c.hot_pixels = 0;
    world_make(&w);
    render(&w, 0, &img, NULL);
    n = (size_t)img.nx * img.ny;
    for (i = 0; i < n; i++) {
        s += img.data[i];
        s2 += (double)img.data[i] * img.data[i];
    }
    mean = s / n;
    sd = sqrt(s2 / n - mean * mean);
    t = rapid_sim_exptime(&w.c, f);
    rn = rapid_read_noise(t);
    /* the boresight is dithered off the pole a little */
    zf = rapid_zodi_factor(w.p[0].ra, w.p[0].dec,
                           w.p[0].mjd + t / 2 / 86400.0, NULL);
    assert_true(fabs(zf - 1) < 0.005);
    want_mean = (f->zodi * zf + f->thermal + RAPID_DARK) * t / RAPID_GAIN;
    want_sd = sqrt(want_mean * RAPID_GAIN + rn * rn) / RAPID_GAIN;
    printf("# %s, %.0f s: mean %.4f DN (model %.4f, zodiacal light %.5f x "
           "minimum), sigma %.4f DN (model %.4f, read noise %.2f e)\n",
           filter, t, mean, want_mean, zf, sd, want_sd, rn);
    assert_true(hdr_double(&img.hdr, "EXPTIME") == t);
    assert_true(fabs(hdr_double(&img.hdr, "RDNOISE") - rn) < 1e-12);
    /* 262144 pixels: the statistical errors are 0.05 % and 0.15 % */
    assert_true(fabs(mean / want_mean - 1) < 0.005);
    assert_true(fabs(sd / want_sd - 1) < 0.02);
    assert_true(fabs(hdr_double(&img.hdr, "SKY_MEAN") / want_mean - 1) < 1e-12);
    rapid_image_release(&img);
    world_release(&w);
}

static void test_sky_and_noise(void **state)
{
    (void)state;
    check_sky("H158", 140);
    check_sky("K213", 140); /* thermal-dominated */
    check_sky("R062", 140);
    /* each filter's own exposure time and its read noise up the ramp */
    check_sky("R062", 0);
    check_sky("H158", 0);
    check_sky("F184", 0);
}

/* Without noise an empty image is exactly the sky + dark level, and hot
 * pixels stay where they are from one visit to the next. */
static void test_noiseless_and_hot_pixels(void **state)
{
    world w;
    rapid_image a = RAPID_IMAGE_INIT, b = RAPID_IMAGE_INIT;
    double base, base_b;
    size_t i, n;
    int hot = 0;

    (void)state;
    small_config(&w.c, 256);
    w.c.with_sources = 0;
    w.c.with_noise = 0;
    w.c.hot_pixels = 12;
    world_make(&w);
    assert_true(w.np >= 2);
    render(&w, 0, &a, NULL);
    render(&w, 1, &b, NULL);
    base = base_dn(&w.p[0]);
    base_b = base_dn(&w.p[1]);
    n = (size_t)a.nx * a.ny;
    for (i = 0; i < n; i++) {
        /* the same above the sky, which changes with the date */
        assert_true(fabs((a.data[i] - base) - (b.data[i] - base_b)) <
                    1e-6 * a.data[i]);
        if (fabs(a.data[i] - base) > 1e-3 * base) {
            hot++;
            /* 0.5 - 50 e/s for 140 s */
            assert_true(a.data[i] - base >= 0.5 * w.c.exptime * 0.999);
            assert_true(a.data[i] - base <= 50 * w.c.exptime * 1.001);
        }
    }
    assert_true(hot >= 10 && hot <= 12); /* two may share a pixel */
    assert_int_equal((int)hdr_double(&a.hdr, "NHOTPIX"), 12);
    rapid_image_release(&a);
    rapid_image_release(&b);
    world_release(&w);
}

/* Cosmic rays: different on every image, never on a noiseless one. */
static void test_cosmic_rays(void **state)
{
    world w;
    rapid_image a = RAPID_IMAGE_INIT, b = RAPID_IMAGE_INIT;
    double base;
    size_t i, n;
    int hits_a = 0, hits_b = 0, both = 0;

    (void)state;
    small_config(&w.c, 256);
    w.c.with_sources = 0;
    w.c.hot_pixels = 0;
    w.c.cosmic_rays = 40;
    w.c.jump_sigma = 0; /* every cosmic ray stays in SCI */
    world_make(&w);
    render(&w, 0, &a, NULL);
    render(&w, 1, &b, NULL);
    base = base_dn(&w.p[0]);
    n = (size_t)a.nx * a.ny;
    for (i = 0; i < n; i++) {
        int ha = a.data[i] > base + 200, hb = b.data[i] > base + 200;
        hits_a += ha;
        hits_b += hb;
        both += ha && hb;
    }
    printf("# cosmic-ray pixels: %d and %d (%d shared)\n", hits_a, hits_b, both);
    assert_true(hits_a > 40 && hits_b > 40);
    assert_true(both < hits_a / 4);
    assert_true(hdr_double(&a.hdr, "NCOSMIC") > 15);
    rapid_image_release(&a);
    rapid_image_release(&b);
    world_release(&w);
}

/* ---------------------------------------------------------------- header */

static void test_header(void **state)
{
    world w;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    static const char *const keys[] = {
        "DATE-OBS", "MJD-OBS", "FILTER", "EXPTIME", "SCA_NUM", "RA_TARG",
        "DEC_TARG", "PA_OBSY", "PA_FPA", "ZPTMAG", "SKY_MEAN", "SKYRATE",
        "ZODIFAC", "ECL_LAT", "SUN_DLON", "SUNANGLE", "GAIN", "RDNOISE",
        "SATURATE", "BUNIT", "POINTING", "VISIT", "SIMSEED",
        "ORIGIN", "TELESCOP", "INSTRUME", "RAPIDVER", "RAPIDGIT", "CTYPE1",
        "CTYPE2", "CRVAL1", "CRPIX1", "CD1_1", "A_ORDER", "B_ORDER", "A_0_4",
        "B_4_0", NULL};
    const rapid_filter *f;
    rapid_wcs wcs = RAPID_WCS_INIT;
    char s[80];
    int i, y, mo, d, h, mi;
    double sec, mjd;

    (void)state;
    small_config(&w.c, 128);
    w.c.filters[0] = f = rapid_filter_by_name("F184");
    world_make(&w);
    render(&w, 1, &img, NULL);
    for (i = 0; keys[i]; i++)
        if (!rapid_header_has(&img.hdr, keys[i]))
            fail_msg("keyword %s missing", keys[i]);
    assert_ok(rapid_header_get_str(&img.hdr, "FILTER", s, sizeof s, &err), err);
    assert_string_equal(s, "F184");
    assert_ok(rapid_header_get_str(&img.hdr, "BUNIT", s, sizeof s, &err), err);
    assert_string_equal(s, "DN");
    assert_ok(rapid_header_get_str(&img.hdr, "CTYPE1", s, sizeof s, &err), err);
    assert_string_equal(s, "RA---TAN-SIP");
    assert_true(fabs(hdr_double(&img.hdr, "ZPTMAG") -
                     (f->zp_ab - 2.5 * log10(RAPID_GAIN))) < 1e-12);
    assert_true(hdr_double(&img.hdr, "A_ORDER") == 4);
    assert_true(hdr_double(&img.hdr, "POINTING") == w.p[1].id);
    assert_true(hdr_double(&img.hdr, "VISIT") == w.p[1].visit);
    assert_true(hdr_double(&img.hdr, "MJD-OBS") == w.p[1].mjd);
    assert_true(hdr_double(&img.hdr, "SIMSEED") == 11);
    /* DATE-OBS is MJD-OBS as a calendar date */
    assert_ok(rapid_header_get_str(&img.hdr, "DATE-OBS", s, sizeof s, &err), err);
    assert_int_equal(strlen(s), 23);
    assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf", &y, &mo, &d, &h, &mi,
                            &sec), 6);
    /* days from 1858-11-17 by hand for 2028: 2028-01-01 is MJD 61771 */
    mjd = 61771;
    {
        static const int md[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int k, yy;
        for (yy = 2028; yy < y; yy++)
            mjd += (yy % 4 == 0 && (yy % 100 || yy % 400 == 0)) ? 366 : 365;
        for (k = 0; k < mo - 1; k++)
            mjd += md[k] - (k == 1 && y % 4 != 0);
    }
    mjd += d - 1 + (h * 3600 + mi * 60 + sec) / 86400;
    assert_true(fabs(mjd - w.p[1].mjd) < 1e-3 / 86400 * 1.01);
    /* PA_OBSY is 30 degrees short of PA_FPA (GalSim's Roman geometry) */
    assert_true(fabs(remainder(hdr_double(&img.hdr, "PA_FPA") -
                               hdr_double(&img.hdr, "PA_OBSY") - 30, 360)) < 1e-9);
    assert_ok(rapid_wcs_from_header(&wcs, &img.hdr, &err), err);
    assert_int_equal(wcs.kind, RAPID_WCS_TAN_SIP);
    assert_int_equal(wcs.sip.a_order, 4);
    assert_true(fabs(rapid_wcs_pixscale(&wcs) - 0.11) < 0.01);
    rapid_wcs_release(&wcs);
    rapid_image_release(&img);
    world_release(&w);
}

/* ------------------------------------------------------- star positions */

/* Largest fraction of a star's flux that one pixel gets. */
static double peak_fraction(const rapid_psf_field *f, double x, double y)
{
    int half = f->opts.half, m = 2 * half + 1, ix0, iy0, i;
    float *s = malloc((size_t)m * m * sizeof *s);
    double peak = 0;

    rapid_psf_field_stamp(f, x, y, half, s, &ix0, &iy0);
    for (i = 0; i < m * m; i++)
        peak = fmax(peak, s[i]);
    free(s);
    return peak;
}

/* On the image with a border of b pixels, unsaturated. */
static int usable_star(const world *w, const sim_source *s, double x,
                       double y, int b)
{
    return s->type == SIM_STAR && isfinite(x) && isfinite(y) && x >= b &&
           y >= b && x <= w->c.size - 1 - b && y <= w->c.size - 1 - b &&
           src_flux_dn(w, s) * peak_fraction(&w->psf, x, y) +
                   base_dn(&w->p[0]) <
               0.9 * RAPID_FULL_WELL;
}

/* Isolated stars of a noiseless image sit where the WCS written to the file
 * puts their truth coordinates, to 0.01 pixel (PSF-fit centroids). */
static void test_star_positions(void **state)
{
    world w;
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    double *x = NULL, *y = NULL, sky, worst = 0;
    int64_t k;
    int n = 0;

    (void)state;
    small_config(&w.c, 512);
    w.c.with_noise = 0;
    w.c.star_density = 30;
    w.c.mag_bright = 16; /* no saturated wings over the neighbours */
    w.c.hot_pixels = 0;
    world_make(&w);
    render(&w, 0, &img, NULL);
    write_read(&img, "stars.fits", &back, &wcs);
    all_positions(&w, &wcs, &x, &y);
    sky = base_dn(&w.p[0]);
    for (k = 0; k < w.scene->nsrc; k++) {
        const sim_source *s = &w.scene->src[k];
        double fx, fy, flux;
        /* noiseless: faint stars are as good as bright ones if alone */
        if (!usable_star(&w, s, x[k], y[k], 8) || src_flux_dn(&w, s) < 3e3 ||
            !isolated(&w, x, y, k, 12, 1e-3))
            continue;
        fx = floor(x[k] + 0.5) + 0.1; /* start off the answer */
        fy = floor(y[k] + 0.5) - 0.1;
        flux = src_flux_dn(&w, s) * 0.9;
        psf_fit(&w.psf, back.data, back.nx, back.ny, sky, &fx, &fy, &flux);
        worst = fmax(worst, hypot(fx - x[k], fy - y[k]));
        if (hypot(fx - x[k], fy - y[k]) > 0.01)
            fail_msg("star %lld at (%.4f, %.4f) measured at (%.4f, %.4f)",
                     (long long)s->id, x[k], y[k], fx, fy);
        n++;
    }
    printf("# %d isolated stars, worst offset %.5f px\n", n, worst);
    assert_true(n >= 5);
    free(x);
    free(y);
    rapid_wcs_release(&wcs);
    rapid_image_release(&img);
    rapid_image_release(&back);
    world_release(&w);
}

/* ---------------------------------------------------- aperture photometry */

typedef struct phot {
    int n;
    double sum, worst;
} phot;

/* Every bright isolated unsaturated star of image ip: radius-r aperture,
 * sky from the median of a 12-20 px annulus, aperture correction from the
 * PSF model at the star.  Stars whose expected photon + sky noise is over
 * 0.25 % are left out, so that 1 % is four standard deviations. */
static void measure_stars(world *w, int ip, double r, phot *ph)
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double *x = NULL, *y = NULL, bg = base_dn(&w->p[0]);
    double rn = rapid_read_noise(w->c.exptime);
    double var_px = bg * RAPID_GAIN + rn * rn;
    int64_t k;

    render(w, ip, &img, NULL);
    assert_ok(rapid_wcs_from_header(&wcs, &img.hdr, &err), err);
    all_positions(w, &wcs, &x, &y);
    for (k = 0; k < w->scene->nsrc; k++) {
        const sim_source *s = &w->scene->src[k];
        double f = src_flux_dn(w, s), frac, sky, meas, noise;
        /* nothing brighter within 60 px either: its wings would tilt the
         * sky under the annulus */
        /* (a source ten times brighter within 60 px tilts the sky under
         * the annulus: one such star was 1.3 % low) */
        if (!usable_star(w, s, x[k], y[k], 25) || !isolated(w, x, y, k, 8, 1e-3) ||
            !isolated(w, x, y, k, 22, 0.1) || !isolated(w, x, y, k, 60, 10.0))
            continue;
        frac = aperture_correction(&w->psf, x[k], y[k], r, 12, 20);
        /* stars whose noise allows a 0.4 % measurement: between that and
         * saturation (65,535 DN) lie about 1.2 mag */
        noise = sqrt(f * frac * RAPID_GAIN + M_PI * r * r * var_px) /
                (f * frac * RAPID_GAIN);
        if (noise > 0.004)
            continue;
        sky = annulus_mean(img.data, img.nx, img.ny, x[k], y[k], 12, 20, 1);
        meas = aperture_sum(img.data, img.nx, img.ny, x[k], y[k], r, sky) / frac;
        ph->worst = fmax(ph->worst, fabs(meas / f - 1));
        /* each within 1 %, or 4 sigma of its own noise */
        if (fabs(meas / f - 1) > fmax(0.01, 4 * noise))
            fail_msg("star %lld (mag %.2f): %.1f DN measured, %.1f true",
                     (long long)s->id, s->mag[1], meas, f);
        ph->sum += meas / f - 1;
        ph->n++;
    }
    free(x);
    free(y);
    rapid_wcs_release(&wcs);
    rapid_image_release(&img);
}

/* Aperture photometry of bright isolated stars on five visits recovers
 * their truth fluxes to 1 %, and on average to 0.25 %. */
static void test_aperture_photometry(void **state)
{
    world w;
    phot ph = {0, 0, 0};
    int k;

    (void)state;
    small_config(&w.c, 1024);
    w.c.star_density = 160; /* enough stars below saturation */
    w.c.mag_bright = 16;    /* and no saturated wings over their skies */
    w.c.epochs = 5;         /* the same stars, other dithers and noise */
    w.c.cosmic_rays = 0;
    w.c.hot_pixels = 0;
    world_make(&w);
    for (k = 0; k < w.np; k++)
        measure_stars(&w, k, 6, &ph);
    printf("# %d star measurements, mean flux error %.5f, worst %.5f\n", ph.n,
           ph.n ? ph.sum / ph.n : 0.0, ph.worst);
    assert_true(ph.n >= 8);
    assert_true(fabs(ph.sum / ph.n) < 0.0025);
    world_release(&w);
}

/* ------------------------------------------- a quiet scene, and a few */

/* The world's scene with every source switched off (mag 99) and no
 * transients: a few are then switched on and shaped by the test.  (The
 * scene's search index stays valid: no source moves.) */
static void quiet_world(world *w, int size)
{
    int64_t i;
    int k;

    small_config(&w->c, size);
    w->c.with_noise = 0;
    w->c.hot_pixels = 0;
    world_make(w);
    for (i = 0; i < w->scene->nsrc; i++)
        for (k = 0; k < RAPID_NFILTERS; k++)
            w->scene->src[i].mag[k] = 99;
    w->scene->ntr = 0;
    w->scene->var0 = 0;
}

/* The source of a type nearest pixel (x, y) of pointing 0, SCA 1, at
 * least `border` pixels inside the image, and where it is. */
static int64_t nearest(world *w, int type, double x, double y, int border,
                       double *sx, double *sy)
{
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double best = INFINITY, hi = w->c.size - 1 - border;
    int64_t i, k = -1;

    assert_ok(rapid_sim_detector_wcs(&w->c, &w->p[0], 1, &wcs, &err), err);
    for (i = 0; i < w->scene->nsrc; i++) {
        double px, py;
        if (w->scene->src[i].type != type ||
            rapid_wcs_sky2pix(&wcs, 1, &w->scene->src[i].ra,
                              &w->scene->src[i].dec, &px, &py, NULL) ||
            px < border || py < border || px > hi || py > hi ||
            hypot(px - x, py - y) >= best)
            continue;
        best = hypot(px - x, py - y);
        k = i;
        *sx = px;
        *sy = py;
    }
    rapid_wcs_release(&wcs);
    assert_true(k >= 0);
    return k;
}

static void set_mag(sim_source *s, double mag)
{
    int k;

    for (k = 0; k < RAPID_NFILTERS; k++)
        s->mag[k] = (float)mag;
}

/* First moment of (img - sky) in a box of half-size k around (x, y). */
static void moments_box(const rapid_image *img, double sky, double x, double y,
                        int k, double *sum, double *mx, double *my)
{
    int i, j, cx = (int)floor(x + 0.5), cy = (int)floor(y + 0.5);
    double s = 0, sx = 0, sy = 0;

    for (j = cy - k; j <= cy + k; j++)
        for (i = cx - k; i <= cx + k; i++) {
            double v;
            if (i < 0 || j < 0 || i >= img->nx || j >= img->ny)
                continue;
            v = img->data[(size_t)j * img->nx + i] - sky;
            s += v;
            sx += v * i;
            sy += v * j;
        }
    *sum = s;
    *mx = sx / s;
    *my = sy / s;
}

/* Sersic galaxies, one at a time in an empty sky: all their light and no
 * more, centred where they are, whatever their index, size and shape. */
static void test_galaxies(void **state)
{
    static const struct {
        double mag, n, re, q, pa;
    } g[] = {
        {19.0, 4.0, 0.35, 0.6, 30}, /* de Vaucouleurs */
        {19.0, 4.0, 0.1, 0.8, 60},  /* compact: a cusp inside one pixel */
        {19.5, 1.0, 0.8, 0.4, 110}, /* exponential disc */
        {20.0, 0.5, 0.05, 0.8, 0},  /* nearly a point */
        {19.0, 2.5, 2.0, 0.9, 75},  /* large: stamp capped at 96 px */
    };
    world w;
    rapid_image img = RAPID_IMAGE_INIT;
    double sky, x, y;
    int64_t k;
    int i;

    (void)state;
    quiet_world(&w, 512);
    sky = base_dn(&w.p[0]);
    k = nearest(&w, SIM_GALAXY, 256, 256, 131, &x, &y);
    for (i = 0; i < 5; i++) {
        sim_source *s = &w.scene->src[k];
        double sum, mx, my, want;
        set_mag(s, g[i].mag);
        s->sersic_n = (float)g[i].n;
        s->r_e = (float)g[i].re;
        s->q = (float)g[i].q;
        s->pa = (float)g[i].pa;
        render(&w, 0, &img, NULL);
        want = sim_mag_to_dn(w.p[0].filter, 1, g[i].mag, w.c.exptime,
                             RAPID_GAIN);
        /* the stamp (<= 96 px) and the PSF (32 px) fit in the box */
        moments_box(&img, sky, x, y, 130, &sum, &mx, &my);
        printf("# galaxy n=%.1f r_e=%.2f\" at (%.2f, %.2f): flux %.6f of "
               "truth, centroid off by (%.4f, %.4f) px\n", g[i].n, g[i].re, x,
               y, sum / want, mx - x, my - y);
        assert_true(fabs(sum / want - 1) < 1e-3);
        /* without the core split, n = 4 centres were 0.01-0.05 px off */
        assert_true(fabs(mx - x) < 0.01 && fabs(my - y) < 0.01);
        rapid_image_release(&img);
    }
    world_release(&w);
}

/* A supernova and a variable star: in the truth table once each, with the
 * flux the image holds. */
static void test_transients(void **state)
{
    world w;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_table truth = RAPID_TABLE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const rapid_filter *f;
    double tx = 150.2, ty = 220.7, vx, vy, tmid, sky;
    sim_source *star;
    sim_transient *t;
    long i;
    int k, fid, seen = 0;

    (void)state;
    quiet_world(&w, 512);
    f = w.p[0].filter;
    fid = f->fid;
    tmid = w.p[0].mjd + 0.5 * w.c.exptime / 86400;
    star = &w.scene->src[nearest(&w, SIM_STAR, 350, 300, 40, &vx, &vy)];
    assert_true(hypot(vx - tx, vy - ty) > 70);
    set_mag(star, 19.0);
    assert_ok(rapid_sim_detector_wcs(&w.c, &w.p[0], 1, &wcs, &err), err);
    t = w.scene->tr;
    memset(t, 0, 2 * sizeof *t);
    /* a supernova at its peak in mid-exposure */
    t[0].id = 900000000;
    t[0].kind = SIM_SN_HOSTLESS;
    t[0].host = -1;
    assert_ok(rapid_wcs_pix2sky(&wcs, 1, &tx, &ty, &t[0].ra, &t[0].dec, &err),
              err);
    t[0].mjd_peak = tmid;
    t[0].rise = 15;
    t[0].fall = 30;
    /* the star varies about 19 */
    t[1].id = 900000001;
    t[1].kind = SIM_VARIABLE;
    t[1].host = star->id;
    t[1].ra = star->ra;
    t[1].dec = star->dec;
    t[1].period = 1.7;
    t[1].amplitude = 0.4;
    t[1].phase = 0.3;
    for (k = 0; k < RAPID_NFILTERS; k++) {
        t[0].peak_mag[k] = 19.5f;
        t[1].peak_mag[k] = 19.0f;
    }
    w.scene->ntr = 2;
    w.scene->var0 = 1;
    render(&w, 0, &img, &truth);
    assert_int_equal(truth.nrows, 2);
    sky = base_dn(&w.p[0]);
    for (i = 0; i < truth.nrows; i++) {
        int64_t id = ((const int64_t *)rapid_table_col(&truth, "id")->data)[i];
        double x = ((const double *)rapid_table_col(&truth, "x")->data)[i];
        double y = ((const double *)rapid_table_col(&truth, "y")->data)[i];
        double fl = ((const double *)rapid_table_col(&truth, "flux_dn")->data)[i];
        double mag = ((const double *)rapid_table_col(&truth, "mag")->data)[i];
        const rapid_column *name = rapid_table_col(&truth, "image");
        int is_sn = id == t[0].id;
        double ex = is_sn ? tx : vx, ey = is_sn ? ty : vy, sum, mx, my;
        char l2[256];
        assert_true(is_sn || id == t[1].id);
        seen |= is_sn ? 1 : 2;
        rapid_sim_l2_name(&w.c, &w.p[0], 1, l2, sizeof l2);
        assert_string_equal((const char *)name->data + i * name->width, l2);
        assert_true(fabs(x - ex) < 1e-6 && fabs(y - ey) < 1e-6);
        assert_true(fabs(mag - sim_transient_mag(&t[is_sn ? 0 : 1], fid, tmid)) <
                    1e-9);
        assert_true(fabs(fl / sim_mag_to_dn(f, 1, mag, w.c.exptime,
                                            RAPID_GAIN) - 1) < 1e-9);
        /* the image holds that flux, drawn once (not star + variable) */
        moments_box(&img, sky, ex, ey, 32, &sum, &mx, &my);
        printf("# transient %lld: mag %.3f, image/truth flux %.5f\n",
               (long long)id, mag, sum / fl);
        assert_true(fabs(sum / fl - 1) < 1e-3);
    }
    assert_int_equal(seen, 3);
    rapid_wcs_release(&wcs);
    rapid_table_release(&truth);
    rapid_image_release(&img);
    world_release(&w);
}

/* ------------------------------------------------------------- injection */

static void test_injection(void **state)
{
    world w;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const rapid_filter *f;
    double px[4] = {60.25, 190.6, 128.0, -40}, py[4] = {70.8, 100.33, 200.5, 50};
    double ra[4], dec[4], mag[4] = {16.5, 17.0, 18.0, 17.0};
    rapid_sim_injected t[4];
    int i;

    (void)state;
    small_config(&w.c, 256);
    world_make(&w);
    f = w.p[0].filter;
    assert_ok(rapid_sim_detector_wcs(&w.c, &w.p[0], 1, &wcs, &err), err);
    assert_ok(rapid_image_alloc(&img, 256, 256, 0.0f, &err), err);
    rapid_header_set_double(&img.hdr, "EXPTIME", 140, NULL);
    rapid_header_set_double(&img.hdr, "ZPTMAG", f->zp_ab, NULL);
    assert_ok(rapid_wcs_pix2sky(&wcs, 4, px, py, ra, dec, &err), err);
    assert_ok(rapid_sim_inject(&img, &wcs, &w.psf, 4, ra, dec, mag, 5, t, &err),
              err);
    for (i = 0; i < 4; i++) {
        double want = pow(10, -0.4 * (mag[i] - f->zp_ab)) * 140;
        double x = floor(t[i].x + 0.5) + 0.2, y = floor(t[i].y + 0.5) - 0.2;
        double flux = want * 0.8, sum, mx, my;
        assert_true(fabs(t[i].x - px[i]) < 1e-6 && fabs(t[i].y - py[i]) < 1e-6);
        assert_true(fabs(t[i].flux_dn / want - 1) < 1e-12);
        assert_true(t[i].ra == ra[i] && t[i].dec == dec[i] && t[i].mag == mag[i]);
        assert_int_equal(t[i].on_image, i < 3);
        if (i == 3)
            continue;
        psf_fit(&w.psf, img.data, img.nx, img.ny, 0, &x, &y, &flux);
        moments_box(&img, 0, px[i], py[i], 32, &sum, &mx, &my);
        printf("# injected %d: offset (%.4f, %.4f) px, flux %.5f (fit) %.5f "
               "(sum) of truth\n", i, x - px[i], y - py[i], flux / want,
               sum / want);
        assert_true(hypot(x - px[i], y - py[i]) < 0.01);
        assert_true(fabs(flux / want - 1) < 0.01);
        assert_true(fabs(sum / want - 1) < 0.01);
    }
    /* no header, no injection; the message names the keyword */
    rapid_header_delete(&img.hdr, "ZPTMAG");
    assert_int_equal(rapid_sim_inject(&img, &wcs, &w.psf, 1, ra, dec, mag, 5, t,
                                      &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "ZPTMAG"));
    rapid_wcs_release(&wcs);
    rapid_image_release(&img);
    world_release(&w);
}

/* ----------------------------------------------------------- determinism */

static void test_deterministic(void **state)
{
    world w;
    rapid_image a = RAPID_IMAGE_INIT, b = RAPID_IMAGE_INIT, c = RAPID_IMAGE_INIT;
    rapid_table ta = RAPID_TABLE_INIT, tb = RAPID_TABLE_INIT;
    size_t n;

    (void)state;
    small_config(&w.c, 256);
    world_make(&w);
    render(&w, 0, &a, &ta);
    render(&w, 1, &c, NULL); /* something else in between */
    render(&w, 0, &b, &tb);
    n = (size_t)a.nx * a.ny * sizeof(float);
    assert_memory_equal(a.data, b.data, n);
    assert_int_equal(ta.nrows, tb.nrows);
    assert_true(memcmp(a.data, c.data, n) != 0);
    rapid_image_release(&b);
    world_release(&w);
    /* another seed, another sky */
    small_config(&w.c, 256);
    w.c.seed = 12;
    world_make(&w);
    render(&w, 0, &b, NULL);
    assert_true(memcmp(a.data, b.data, n) != 0);
    rapid_image_release(&a);
    rapid_image_release(&b);
    rapid_image_release(&c);
    rapid_table_release(&ta);
    rapid_table_release(&tb);
    world_release(&w);
}

/* --------------------------------------------------------- a whole run */

static void check_psf_file(const char *path, const char *filter, int sca)
{
    rapid_image p = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double s = 0, sx = 0, sy = 0, v = 0;
    char name[16];
    int i, j;

    assert_ok(rapid_fits_read_image(path, NULL, &p, &err), err);
    assert_true(p.nx == p.ny && p.nx % 2 == 1);
    for (j = 0; j < p.ny; j++)
        for (i = 0; i < p.nx; i++) {
            double q = p.data[j * p.nx + i];
            s += q;
            sx += q * (i - p.nx / 2);
            sy += q * (j - p.ny / 2);
        }
    assert_true(fabs(s - 1) < 1e-4);
    /* centred: brightest in the middle; the first moment of an undersampled
     * PSF sampled at whole pixels may stray by a few hundredths (aliasing) */
    for (i = 0; i < p.nx * p.ny; i++)
        assert_true(p.data[i] <= p.data[(p.ny / 2) * p.nx + p.nx / 2]);
    assert_true(fabs(sx / s) < 0.05 && fabs(sy / s) < 0.05);
    assert_ok(rapid_header_get_str(&p.hdr, "FILTER", name, sizeof name, &err),
              err);
    assert_string_equal(name, filter);
    v = hdr_double(&p.hdr, "SCA_NUM");
    assert_int_equal((int)v, sca);
    rapid_image_release(&p);
    /* and the oversampled PSF beside it, unit sum */
    assert_ok(rapid_fits_read_image(path, "OVERSAMP", &p, &err), err);
    assert_true(hdr_double(&p.hdr, "OVERSAMP") == 4);
    assert_true(p.nx == p.ny && p.nx % 2 == 1);
    for (s = 0, i = 0; i < p.nx * p.ny; i++)
        s += p.data[i];
    assert_true(fabs(s - 1) < 1e-4);
    rapid_image_release(&p);
}

/* FWHM in native pixels of the OVERSAMP image of a PSF file: the mean of
 * the widths at half maximum of the row and column through the middle
 * sample, crossings interpolated linearly. */
static double file_fwhm(const char *path)
{
    rapid_image p = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double w = 0, half, a, b;
    int n, c, k, d, step;

    assert_ok(rapid_fits_read_image(path, "OVERSAMP", &p, &err), err);
    n = p.nx;
    c = (n - 1) / 2;
    half = 0.5 * p.data[(size_t)c * n + c];
    for (d = 0; d < 4; d++) {
        step = d == 0 ? 1 : d == 1 ? -1 : d == 2 ? n : -n;
        for (k = 1; k < c; k++) {
            b = p.data[(size_t)c * n + c + k * step];
            if (b < half) {
                a = p.data[(size_t)c * n + c + (k - 1) * step];
                w += k - 1 + (a - half) / (a - b);
                break;
            }
        }
    }
    w = w / 2 / hdr_double(&p.hdr, "OVERSAMP");
    rapid_image_release(&p);
    return w;
}

/* --psf-vary: every visit's PSF file, named for the visit, is broader the
 * larger that visit's drawn blur, and never sharper than without it; the
 * same seed gives the same PSF files. */
static void test_psf_per_visit(void **state)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_image a = RAPID_IMAGE_INIT, b = RAPID_IMAGE_INIT;
    char path[1024], again[1024], name[256];
    double fw[3], blur[3], fw0;
    const char *hdu[2] = {"0", "OVERSAMP"};
    int v, k, lo = 0, hi = 0;

    (void)state;
    small_config(&c, 64);
    c.nscas = 1;
    c.epochs = 3;
    assert_ok(rapid_sim_run(&c, test_path("novary"), NULL, NULL, &err), err);
    snprintf(path, sizeof path, "%s/psf/Roman_WFI_PSF_H158_1.fits",
             test_path("novary"));
    fw0 = file_fwhm(path);
    c.psf_visit_blur = 60;
    assert_ok(rapid_sim_run(&c, test_path("vary"), NULL, NULL, &err), err);
    assert_ok(rapid_sim_run(&c, test_path("vary2"), NULL, NULL, &err), err);
    snprintf(path, sizeof path, "%s/psf/Roman_WFI_PSF_H158_1.fits",
             test_path("vary"));
    assert_int_equal(access(path, F_OK), -1);
    for (v = 0; v < 3; v++) {
        rapid_sim_psf_name(&c, c.filters[0], 1, v, name, sizeof name);
        snprintf(name + 100, 20, "_visit%d.fits", v);
        assert_non_null(strstr(name, name + 100));
        snprintf(path, sizeof path, "%s/psf/%s", test_path("vary"), name);
        snprintf(again, sizeof again, "%s/psf/%s", test_path("vary2"), name);
        check_psf_file(path, "H158", 1);
        blur[v] = rapid_sim_visit_blur(&c, v);
        fw[v] = file_fwhm(path);
        printf("# visit %d: blur %.1f mas, FWHM %.3f px (no blur %.3f)\n", v,
               blur[v], fw[v], fw0);
        assert_true(blur[v] >= 0 && blur[v] < 60);
        assert_true(fw[v] >= fw0 - 1e-4);
        lo = blur[v] < blur[lo] ? v : lo;
        hi = blur[v] > blur[hi] ? v : hi;
        for (k = 0; k < 2; k++) {
            assert_ok(rapid_fits_read_image(path, hdu[k], &a, &err), err);
            assert_ok(rapid_fits_read_image(again, hdu[k], &b, &err), err);
            assert_true(a.nx == b.nx && a.ny == b.ny);
            assert_memory_equal(a.data, b.data,
                                (size_t)a.nx * a.ny * sizeof *a.data);
            rapid_image_release(&a);
            rapid_image_release(&b);
        }
    }
    /* the draws spread out, and the FWHM follows them */
    assert_true(blur[hi] - blur[lo] > 5);
    assert_true(fw[hi] > fw[lo] + 0.01);
    assert_true(rapid_sim_visit_blur(&c, 0) == blur[0]);
    c.psf_visit_blur = 0;
    assert_true(rapid_sim_visit_blur(&c, 0) == 0);
}

/* Bytes of the regular files below dir (one level of folders). */
static uint64_t dir_bytes(const char *dir)
{
    char path[2048];
    struct dirent *e;
    struct stat sb;
    uint64_t n = 0;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            n += dir_bytes(path);
        else if (S_ISREG(sb.st_mode))
            n += (uint64_t)sb.st_size;
    }
    closedir(d);
    return n;
}

/* Every row names an image that exists, holds a position on it, and a
 * flux that is its magnitude's. */
static void check_transient_rows(const rapid_table *t, const char *dir)
{
    const rapid_column *image = rapid_table_col(t, "image");
    const double *x = rapid_table_col(t, "x")->data;
    const double *y = rapid_table_col(t, "y")->data;
    const double *flux = rapid_table_col(t, "flux_dn")->data;
    const double *mag = rapid_table_col(t, "mag")->data;
    char name[128], path[1024], filter[8];
    struct stat sb;
    int sca = 0;
    long i;

    assert_non_null(image);
    assert_true(t->nrows >= 4);
    for (i = 0; i < t->nrows; i++) {
        const rapid_filter *f;
        snprintf(name, sizeof name, "%.*s", image->width,
                 (const char *)image->data + i * image->width);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (stat(path, &sb) != 0)
            fail_msg("row %ld names %s, which is not there", i, name);
        assert_int_equal(sscanf(name, "Roman_TDS_simple_model_%4s_%*d_%d",
                                filter, &sca), 2);
        f = rapid_filter_by_name(filter);
        assert_non_null(f);
        assert_true(x[i] >= -0.5 && x[i] < 127.5 && y[i] >= -0.5 && y[i] < 127.5);
        if (mag[i] < 99)
            assert_true(fabs(flux[i] / sim_mag_to_dn(f, sca, mag[i], 140,
                                                     RAPID_GAIN) - 1) < 1e-9);
        else
            assert_true(flux[i] == 0);
    }
}

static void test_run_files(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const char *dir = test_path("run");
    char path[1024], name[256];
    int np, i, sca, k;
    long images = 0;
    rapid_sim_volume_t vol;
    uint64_t written;

    (void)state;
    small_config(&c, 128);
    c.nscas = 2;
    c.nfilters = 2;
    c.filters[1] = rapid_filter_by_name("F062");
    c.sn_rate = 3000; /* a few per 128 x 128 image */
    assert_ok(rapid_sim_volume(&c, &vol, &err), err);
    assert_ok(rapid_sim_run(&c, dir, NULL, NULL, &err), err);
    /* the volume said before the run is what it wrote */
    written = dir_bytes(dir);
    print_message("volume: %" PRIu64 " bytes said, %" PRIu64 " written\n",
                  vol.bytes, written);
    assert_true(fabs((double)vol.bytes / (double)written - 1) < 0.1);
    np = rapid_sim_plan(&c, &p, &err);
    assert_true(np >= 4);
    for (i = 0; i < np; i++)
        for (sca = 1; sca <= 2; sca++) {
            rapid_sim_l2_name(&c, &p[i], sca, name, sizeof name);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            assert_ok(rapid_fits_verify_checksums(path, &err), err);
            images++;
        }
    rapid_sim_l2_name(&c, &p[0], 2, name, sizeof name);
    snprintf(path, sizeof path, "%s/Roman_TDS_simple_model_%s_%d_2.fits", dir,
             p[0].filter->name, p[0].id);
    assert_true(strstr(path, name) != NULL);
    /* header-only primary with the observation cards, SCI with the pixels */
    assert_ok(rapid_fits_read_header(path, "0", &h, &err), err);
    assert_true(rapid_header_has(&h, "FILTER") && rapid_header_has(&h, "MJD-OBS"));
    assert_ok(rapid_fits_read_image(path, "SCI", &img, &err), err);
    assert_true(img.nx == 128 && img.ny == 128);
    assert_true(hdr_double(&img.hdr, "SCA_NUM") == 2);
    for (k = 0; k < 2; k++)
        for (sca = 1; sca <= 2; sca++) {
            snprintf(path, sizeof path, "%s/psf/Roman_WFI_PSF_%s_%d.fits", dir,
                     c.filters[k]->name, sca);
            check_psf_file(path, c.filters[k]->name, sca);
        }
    snprintf(path, sizeof path, "%s/truth/static.fits", dir);
    assert_ok(rapid_fits_read_table(path, NULL, &t, &err), err);
    assert_true(t.nrows > 0 && rapid_table_col(&t, "ra") && rapid_table_col(&t, "id"));
    rapid_table_release(&t);
    snprintf(path, sizeof path, "%s/truth/pointings.fits", dir);
    assert_ok(rapid_fits_read_table(path, NULL, &t, &err), err);
    assert_int_equal(t.nrows, np);
    rapid_table_release(&t);
    snprintf(path, sizeof path, "%s/truth/transients.fits", dir);
    assert_ok(rapid_fits_read_table(path, NULL, &t, &err), err);
    check_transient_rows(&t, dir);
    printf("# %ld images, %ld transient rows\n", images, t.nrows);
    rapid_table_release(&t);
    rapid_header_release(&h);
    rapid_image_release(&img);
    free(p);
}

/* ---------------------------------------------------------------- errors */

static void test_errors(void **state)
{
    world w;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_sim_config c;
    const char *file = test_path("plain-file");
    char dir[1024];
    FILE *fp;

    (void)state;
    small_config(&w.c, 128);
    world_make(&w);
    /* a detector the configuration does not have */
    assert_int_equal(rapid_sim_render(&w.c, w.scene, &w.p[0], 2, &w.psf, &img,
                                      &t, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "SCA 2"));
    /* a PSF for another detector size */
    w.c.size = 256;
    assert_int_equal(rapid_sim_render(&w.c, w.scene, &w.p[0], 1, &w.psf, &img,
                                      &t, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "PSF"));
    assert_null(img.data);
    world_release(&w);
    /* injection leaves pixels without data (NaN) as they are */
    small_config(&w.c, 128);
    world_make(&w);
    {
        rapid_wcs wcs = RAPID_WCS_INIT;
        double x = 64.2, y = 63.9, ra, dec, mag = 17;
        rapid_sim_injected t1;
        assert_ok(rapid_sim_detector_wcs(&w.c, &w.p[0], 1, &wcs, &err), err);
        assert_ok(rapid_wcs_pix2sky(&wcs, 1, &x, &y, &ra, &dec, &err), err);
        assert_ok(rapid_image_alloc(&img, 128, 128, 0.0f, &err), err);
        rapid_header_set_double(&img.hdr, "EXPTIME", 140, NULL);
        rapid_header_set_double(&img.hdr, "ZPTMAG", 26, NULL);
        img.data[64 * 128 + 64] = NAN;
        assert_ok(rapid_sim_inject(&img, &wcs, &w.psf, 1, &ra, &dec, &mag, 1,
                                   &t1, &err), err);
        assert_true(isnan(img.data[64 * 128 + 64]));
        assert_true(img.data[64 * 128 + 65] > 0 && img.data[63 * 128 + 64] > 0);
        rapid_wcs_release(&wcs);
        rapid_image_release(&img);
    }
    world_release(&w);
    /* an output directory that cannot be made */
    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/sub", file);
    small_config(&c, 128);
    assert_int_equal(rapid_sim_run(&c, dir, NULL, NULL, &err), RAPID_E_IO);
    assert_non_null(strstr(err.msg, "plain-file"));
    /* a filter twice */
    c.nfilters = 2;
    c.filters[1] = c.filters[0];
    assert_int_equal(rapid_sim_run(&c, test_path("twice"), NULL, NULL, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "H158"));
}

/* rapid_sim_clear removes what a run wrote, and only that. */
static void test_clear(void **state)
{
    rapid_sim_config c;
    rapid_err err = RAPID_ERR_INIT;
    char dir[512], path[1024];
    long removed = -1;
    FILE *fp;
    int k;
    static const char *const keep[] = {
        "notes.txt", "Roman_TDS_simple_model_H158_1.fits",
        "Roman_TDS_simple_model_X999_1_1.fits", ".notes.txt.12.ab.tmp",
        "Roman_TDS_simple_model_H158_1_1.fits.bak"};
    static const char *const gone[] = {
        ".Roman_TDS_simple_model_H158_7_1.fits.12.ab.tmp",
        "psf/.Roman_WFI_PSF_H158_1.fits.99.1f.tmp"};

    (void)state;
    snprintf(dir, sizeof dir, "%s", test_path("clear"));
    assert_ok(rapid_sim_clear(dir, &removed, &err), err); /* no directory */
    assert_int_equal(removed, 0);
    small_config(&c, 64);
    c.nscas = 2;
    c.epochs = 2;
    assert_ok(rapid_sim_run(&c, dir, NULL, NULL, &err), err);
    for (k = 0; k < 5 + 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, k < 5 ? keep[k] : gone[k - 5]);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    assert_ok(rapid_sim_clear(dir, &removed, &err), err);
    /* 4 images, 2 PSFs, 3 truth tables and 2 temporaries */
    assert_int_equal(removed, 4 + 2 + 3 + 2);
    assert_int_equal(test_count_entries(dir), 5); /* psf/ and truth/ gone */
    for (k = 0; k < 5; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, keep[k]);
        assert_int_equal(access(path, F_OK), 0);
    }
    /* a psf/ that holds something else stays, with that in it */
    snprintf(path, sizeof path, "%s/psf", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/psf/mine.fits", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_ok(rapid_sim_clear(dir, &removed, &err), err);
    assert_int_equal(removed, 0);
    assert_int_equal(access(path, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sky_and_noise),
        cmocka_unit_test(test_detector_zero_points),
        cmocka_unit_test(test_noiseless_and_hot_pixels),
        cmocka_unit_test(test_cosmic_rays),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_star_positions),
        cmocka_unit_test(test_aperture_photometry),
        cmocka_unit_test(test_galaxies),
        cmocka_unit_test(test_transients),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_run_files),
        cmocka_unit_test(test_psf_per_visit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_clear),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
