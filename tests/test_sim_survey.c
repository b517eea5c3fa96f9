/* test_sim_survey.c - the simulator's focal plane, detector WCSs, survey
 * plan and scene (sim_survey.c, sim_scene.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/sim.h"
#include "rapid/tile.h"
#include "rapid/timeutil.h"
#include "rapid/wcs.h"
#include "sim/sim_internal.h"
#include "testutil.h"

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)

/* ------------------------------------------------------------ helpers */

static void small_config(rapid_sim_config *c, int size)
{
    rapid_sim_config_init(c);
    c->size = size;
}

static int make_plan(const rapid_sim_config *c, rapid_sim_pointing **p)
{
    rapid_err err = RAPID_ERR_INIT;
    int np = rapid_sim_plan(c, p, &err);

    if (np <= 0)
        fail_msg("plan failed: %d %s", np, err.msg);
    return np;
}

static rapid_sim_scene *make_scene(const rapid_sim_config *c,
                                   rapid_sim_pointing **p, int *np)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_sim_scene *s = NULL;

    *np = make_plan(c, p);
    if (rapid_sim_scene_make(c, *p, *np, &s, &err) != 0)
        fail_msg("scene failed: %s", err.msg);
    return s;
}

static rapid_wcs detector_wcs(const rapid_sim_config *c,
                              const rapid_sim_pointing *p, int sca)
{
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;

    if (rapid_sim_detector_wcs(c, p, sca, &w, &err) != 0)
        fail_msg("WCS of SCA %d: %s", sca, err.msg);
    return w;
}

static int on_detector(rapid_wcs *w, int size, double ra, double dec,
                       double *x, double *y)
{
    if (rapid_wcs_sky2pix(w, 1, &ra, &dec, x, y, NULL) != 0)
        return 0;
    return *x >= -0.5 && *x <= size - 0.5 && *y >= -0.5 && *y <= size - 0.5;
}

/* The detector of pointing p holding (ra, dec) by its WCS, 0 if none. */
static int which_detector(const rapid_sim_config *c,
                          const rapid_sim_pointing *p, double ra, double dec,
                          double *x, double *y)
{
    int s, hit = 0;

    for (s = 1; s <= c->nscas && !hit; s++) {
        rapid_wcs w = detector_wcs(c, p, s);
        if (on_detector(&w, c->size, ra, dec, x, y))
            hit = s;
        rapid_wcs_release(&w);
    }
    return hit;
}

static double cap_area(const rapid_sim_scene *s)
{
    return 2 * M_PI * (1 - cos(s->radius * D2R)) * R2D * R2D;
}

/* Least-squares slope of log10(count) against magnitude over 0.5-mag bins
 * in [m1, m2), weighting each bin by its count (Poisson). */
static double count_slope(const rapid_sim_scene *s, int type, double m1,
                          double m2)
{
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    int nb = (int)lround((m2 - m1) / 0.5), b;
    int64_t *cnt = calloc((size_t)nb, sizeof *cnt), i;

    assert_non_null(cnt);
    for (i = 0; i < s->nsrc; i++) {
        double m = s->src[i].mag[1];
        if (s->src[i].type == type && m >= m1 && m < m2)
            cnt[(int)((m - m1) / 0.5)]++;
    }
    for (b = 0; b < nb; b++) {
        double x = m1 + 0.5 * (b + 0.5), y, w = (double)cnt[b];
        if (cnt[b] < 10)
            continue;
        y = log10((double)cnt[b]);
        sw += w;
        sx += w * x;
        sy += w * y;
        sxx += w * x * x;
        sxy += w * x * y;
    }
    free(cnt);
    return (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
}

/* ------------------------------------------------------------- config */

static void test_config_defaults(void **state)
{
    rapid_sim_config c;

    (void)state;
    memset(&c, 0xab, sizeof c);
    rapid_sim_config_init(&c);
    assert_int_equal(c.seed, 1);
    assert_int_equal(c.size, 4088);
    assert_true(c.ra == 9.6 && c.dec == -44.0);
    assert_int_equal(c.ntiles, 1);
    assert_int_equal(c.nfilters, 1);
    assert_non_null(c.filters[0]);
    assert_string_equal(c.filters[0]->name, "H158");
    assert_null(c.filters[1]);
    assert_int_equal(c.epochs, 5);
    assert_true(c.cadence_days == 5.0);
    assert_int_equal(c.nscas, 18);
    assert_true(c.exptime == 0.0);
    /* the OpenUniverse time-domain survey's exposure times */
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("R062")) == 161);
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("H158")) == 302);
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("J129")) == 302);
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("Y106")) == 302);
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("F184")) == 901);
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("K213")) == 901);
    c.exptime = 140;
    assert_true(rapid_sim_exptime(&c, rapid_filter_by_name("K213")) == 140);
    c.exptime = 0;
    /* read noise up the ramp: 5.6 e at 170 s, less for longer exposures */
    assert_true(fabs(rapid_read_noise(170) - 5.6) < 0.01);
    assert_true(rapid_read_noise(901) < rapid_read_noise(302) &&
                rapid_read_noise(302) < rapid_read_noise(140));
    assert_int_equal(c.gzip, 0);
    assert_true(c.star_density == 1.0 && c.galaxy_density == 1.0);
    assert_true(c.mag_faint == 28.0);
    assert_true(c.sn_rate == 1.0);
    assert_true(c.variable_fraction == 0.05);
    assert_int_equal(c.cosmic_rays, 30);
    assert_int_equal(c.hot_pixels, 20);
    assert_int_equal(c.defects, 1);
    assert_true(c.jump_sigma == 5.0);
    assert_int_equal(c.with_sources, 1);
    assert_int_equal(c.with_noise, 1);
}

/* The default start is 2028-09-07 00:00 UTC: MJD 62021 (MJD 0 is
 * 1858-11-17, 51544 is 2000-01-01), and the calendar agrees. */
static void test_mjd_start(void **state)
{
    rapid_sim_config c;
    double mjd = 0;

    (void)state;
    rapid_sim_config_init(&c);
    assert_true(c.mjd_start == 62021.0);
    assert_int_equal(rapid_mjd_from_iso("2028-09-07 00:00:00", &mjd, NULL), 0);
    assert_true(mjd == c.mjd_start);
    assert_int_equal(rapid_days_from_civil(2028, 9, 7) -
                     rapid_days_from_civil(1858, 11, 17), 62021);
    assert_int_equal(rapid_days_from_civil(2000, 1, 1) -
                     rapid_days_from_civil(1858, 11, 17), 51544);
}

/* --------------------------------------------------------------- plan */

/* Time order, ids, visits, and every target tile on a detector in every
 * visit and filter. */
static void test_plan_covers_tiles(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_tile t;
    int64_t rtid[4];
    int np, k, v, f, j, n = 0;
    double step;

    (void)state;
    small_config(&c, 512);
    c.ntiles = 4;
    c.epochs = 3;
    c.nfilters = 2;
    c.filters[1] = rapid_filter_by_name("J129");
    np = make_plan(&c, &p);
    step = 0;
    assert_true(np >= c.epochs * c.nfilters);
    assert_true(np <= c.epochs * c.nfilters * c.ntiles);
    for (k = 0; k < np; k++) {
        assert_int_equal(p[k].id, k + 1);
        if (k > 0) {
            assert_true(p[k].mjd > p[k - 1].mjd);
            assert_true(p[k].visit >= p[k - 1].visit);
            /* one after the other: its exposure time and 60 s overhead */
            step = (p[k - 1].exptime + 60.0) / 86400.0;
            assert_true(p[k].exptime == rapid_sim_exptime(&c, p[k].filter));
            if (p[k].visit == p[k - 1].visit)
                assert_true(fabs(p[k].mjd - p[k - 1].mjd - step) < 1e-9);
        }
        if (k == 0 || p[k].visit != p[k - 1].visit)
            assert_true(fabs(p[k].mjd - (c.mjd_start +
                                         p[k].visit * c.cadence_days)) < 1e-9);
        assert_true(p[k].pa >= 0 && p[k].pa < 360);
    }
    /* The field's tile and its three nearest neighbours. */
    rtid[0] = rapid_tile_rtid(RAPID_TILE_NSIDE, c.ra, c.dec);
    {
        int64_t nb[16];
        int m = rapid_tile_neighbors(RAPID_TILE_NSIDE, rtid[0], nb, NULL);
        double d[16];
        assert_true(m >= 3 && m <= 16);
        for (j = 0; j < m; j++) {
            assert_int_equal(rapid_tile_get(RAPID_TILE_NSIDE, nb[j], &t, NULL), 0);
            d[j] = rapid_sky_distance(c.ra, c.dec, t.cra, t.cdec);
        }
        for (k = 1; k < 4; k++) { /* selection of the 3 smallest */
            int best = -1;
            for (j = 0; j < m; j++)
                if (d[j] >= 0 && (best < 0 || d[j] < d[best]))
                    best = j;
            rtid[k] = nb[best];
            d[best] = -1;
        }
    }
    for (v = 0; v < c.epochs; v++)
        for (f = 0; f < c.nfilters; f++)
            for (j = 0; j < 4; j++) {
                int found = 0;
                double x, y;
                assert_int_equal(rapid_tile_get(RAPID_TILE_NSIDE, rtid[j], &t, NULL), 0);
                for (k = 0; k < np && !found; k++)
                    if (p[k].visit == v && p[k].filter == c.filters[f])
                        found = which_detector(&c, &p[k], t.cra, t.cdec, &x, &y);
                if (!found)
                    fail_msg("tile %lld not seen in visit %d filter %s",
                             (long long)rtid[j], v, c.filters[f]->name);
                n++;
            }
    assert_int_equal(n, c.epochs * c.nfilters * 4);
    free(p);
}

/* Over the epochs one tile is seen by different detectors, at different
 * rolls, inside the inner 80% of the detector. */
static void test_plan_variety(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_tile t;
    int np, k, j, sca[5], distinct = 0;
    double pamin = 360, pamax = 0, x, y;

    (void)state;
    rapid_sim_config_init(&c);
    np = make_plan(&c, &p);
    assert_int_equal(np, 5); /* one tile, one filter: one pointing a visit */
    assert_int_equal(rapid_tile_get(RAPID_TILE_NSIDE,
                                    rapid_tile_rtid(RAPID_TILE_NSIDE, c.ra, c.dec),
                                    &t, NULL), 0);
    for (k = 0; k < np; k++) {
        assert_int_equal(p[k].visit, k);
        sca[k] = which_detector(&c, &p[k], t.cra, t.cdec, &x, &y);
        assert_true(sca[k] >= 1);
        assert_true(x > 0.1 * c.size - 1 && x < 0.9 * c.size);
        assert_true(y > 0.1 * c.size - 1 && y < 0.9 * c.size);
        for (j = 0; j < k && sca[j] != sca[k]; j++)
            ;
        distinct += j == k;
        for (j = 0; j < k; j++)
            assert_true(fabs(p[j].pa - p[k].pa) > 0.1);
        pamin = fmin(pamin, p[k].pa);
        pamax = fmax(pamax, p[k].pa);
        /* The boresight is off the tile: the tile sits on some detector,
         * not at the focal-plane centre (which is a gap). */
        assert_true(rapid_sky_distance(p[k].ra, p[k].dec, t.cra, t.cdec) > 0.01);
    }
    print_message("tile %lld: detectors %d %d %d %d %d, PA %.1f..%.1f\n",
                  (long long)t.rtid, sca[0], sca[1], sca[2], sca[3], sca[4],
                  pamin, pamax);
    assert_true(distinct >= 3);
    /* Unless the roll wraps through 0, a drift of ~1 deg/day spreads it. */
    assert_true(pamax - pamin > 8.0);
    free(p);
}

static void test_plan_determinism(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *a = NULL, *b = NULL, *d = NULL;
    int na, nb, nd, k, differ = 0;

    (void)state;
    small_config(&c, 1024);
    c.ntiles = 2;
    na = make_plan(&c, &a);
    nb = make_plan(&c, &b);
    assert_int_equal(na, nb);
    for (k = 0; k < na; k++) {
        assert_true(a[k].ra == b[k].ra && a[k].dec == b[k].dec);
        assert_true(a[k].pa == b[k].pa && a[k].mjd == b[k].mjd);
        assert_int_equal(a[k].id, b[k].id);
    }
    c.seed = 2;
    nd = make_plan(&c, &d);
    for (k = 0; k < na && k < nd; k++)
        differ += a[k].ra != d[k].ra || a[k].pa != d[k].pa;
    assert_true(differ > 0);
    free(a);
    free(b);
    free(d);
}

static void test_plan_errors(void **state)
{
    static rapid_sim_pointing dummy;
    rapid_sim_config c;
    rapid_sim_pointing *p = &dummy, pt;
    rapid_err err = RAPID_ERR_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_sim_scene *s = NULL;

    (void)state;
    rapid_sim_config_init(&c);
    c.nscas = 0;
    assert_true(rapid_sim_plan(&c, &p, &err) < 0);
    assert_null(p);
    assert_non_null(strstr(err.msg, "detectors"));
    rapid_sim_config_init(&c);
    c.nfilters = 2; /* the second one is not set */
    assert_int_equal(rapid_sim_plan(&c, &p, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "filter 2"));
    rapid_sim_config_init(&c);
    c.nscas = 4;
    memset(&pt, 0, sizeof pt);
    pt.id = 7;
    pt.ra = 10;
    pt.dec = 20;
    assert_int_equal(rapid_sim_detector_wcs(&c, &pt, 5, &w, &err),
                     RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "SCA 5"));
    assert_int_equal(rapid_sim_detector_wcs(&c, &pt, 0, &w, &err),
                     RAPID_E_RANGE);
    assert_int_equal(rapid_sim_scene_make(&c, &pt, 0, &s, &err), RAPID_E_ARG);
    assert_null(s);
    c.star_density = -1;
    assert_int_equal(rapid_sim_scene_make(&c, &pt, 1, &s, &err), RAPID_E_ARG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "densities"));
}

/* No sources at all is a valid (empty) scene: supernovae become hostless. */
static void test_empty_scene(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    rapid_table t = RAPID_TABLE_INIT;
    int64_t *idx = NULL, k;
    double ra[5] = {9.6, 9.59, 9.61, 9.61, 9.59};
    double dec[5] = {-44, -44.01, -44.01, -43.99, -43.99};
    int np;

    (void)state;
    small_config(&c, 256);
    c.star_density = c.galaxy_density = 0;
    c.sn_rate = 100;
    s = make_scene(&c, &p, &np);
    assert_int_equal(s->nsrc, 0);
    assert_true(s->ntr > 0);
    assert_int_equal(s->var0, s->ntr);
    for (k = 0; k < s->ntr; k++)
        assert_int_equal(s->tr[k].kind, SIM_SN_HOSTLESS);
    assert_int_equal(sim_scene_select(s, ra, dec, 0.01, &idx, NULL), 0);
    free(idx);
    assert_int_equal(rapid_sim_scene_truth(s, &t, NULL), 0);
    assert_int_equal(t.nrows, 0);
    assert_int_equal(t.ncols, 16);
    rapid_table_release(&t);
    rapid_sim_scene_free(s);
    free(p);
}

/* ------------------------------------------------------- detector WCS */

/* SIP offset (pixels) of a pixel offset (u, v) from CRPIX. */
static double sip_offset(const rapid_sip *s, double u, double v)
{
    double fa = 0, fb = 0;
    int p, q;

    for (p = 0; p <= s->a_order; p++)
        for (q = 0; p + q <= s->a_order; q++) {
            fa += s->a[p][q] * pow(u, p) * pow(v, q);
            fb += s->b[p][q] * pow(u, p) * pow(v, q);
        }
    return hypot(fa, fb);
}

/* Largest distance (pixels) between the fitted WCS and the exact model,
 * over a grid offset from the fitting grid. */
static double fit_residual(const rapid_sim_config *c,
                           const rapid_sim_pointing *p, int sca, rapid_wcs *w)
{
    enum { G = 23 };
    double x[G * G], y[G * G], ra[G * G], dec[G * G], xw[G * G], yw[G * G];
    double worst = 0;
    int i, j, k = 0;

    for (j = 0; j < G; j++)
        for (i = 0; i < G; i++) {
            x[k] = -0.5 + c->size * (i + 0.37) / G;
            y[k] = -0.5 + c->size * (j + 0.61) / G;
            k++;
        }
    /* The four outer corners too, where a fit is worst. */
    x[0] = y[0] = -0.5;
    x[G - 1] = c->size - 0.5;
    y[G - 1] = -0.5;
    assert_int_equal(sim_focal_pix2sky(c, p, sca, k, x, y, ra, dec, NULL), 0);
    assert_int_equal(rapid_wcs_sky2pix(w, k, ra, dec, xw, yw, NULL), 0);
    for (i = 0; i < k; i++)
        worst = fmax(worst, hypot(xw[i] - x[i], yw[i] - y[i]));
    return worst;
}

static void test_detector_wcs(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing p;
    double worst_res = 0, min_off = 1e9, max_off = 0, smin = 1, smax = 0;
    int s;

    (void)state;
    rapid_sim_config_init(&c);
    memset(&p, 0, sizeof p);
    p.id = 1;
    p.ra = 9.6;
    p.dec = -44.0;
    p.pa = 37.0;
    for (s = 1; s <= RAPID_NSCA; s++) {
        rapid_wcs w = detector_wcs(&c, &p, s);
        double h = c.size / 2.0, off = 0, scale = rapid_wcs_pixscale(&w);
        double res;
        assert_int_equal(w.kind, RAPID_WCS_TAN_SIP);
        assert_int_equal(w.sip.a_order, 4);
        assert_int_equal(w.sip.b_order, 4);
        assert_int_equal(w.nx, c.size);
        assert_int_equal(w.ny, c.size);
        assert_true(fabs(w.crpix[0] - (c.size + 1) / 2.0) < 1e-9);
        /* Usual parity: det CD < 0. */
        assert_true(w.cd[0][0] * w.cd[1][1] - w.cd[0][1] * w.cd[1][0] < 0);
        assert_true(fabs(scale / RAPID_PIXSCALE - 1) < 0.01);
        smin = fmin(smin, scale);
        smax = fmax(smax, scale);
        off = fmax(fmax(sip_offset(&w.sip, -h, -h), sip_offset(&w.sip, h, -h)),
                   fmax(sip_offset(&w.sip, h, h), sip_offset(&w.sip, -h, h)));
        min_off = fmin(min_off, off);
        max_off = fmax(max_off, off);
        res = fit_residual(&c, &p, s, &w);
        worst_res = fmax(worst_res, res);
        rapid_wcs_release(&w);
    }
    print_message("4088 px: pixel scale %.5f..%.5f\"; corner offset from the "
                  "linear model %.1f..%.1f px; SIP fit residual %.2e px\n",
                  smin, smax, min_off, max_off, worst_res);
    assert_true(min_off > 2.0 && max_off < 100.0);
    assert_true(max_off > 5.0); /* some detectors are well distorted */
    assert_true(worst_res < 0.01);
}

/* The distortion scales with the detector: a small array has a small one. */
static void test_distortion_scales(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing p;
    rapid_wcs w;
    double h, off;

    (void)state;
    small_config(&c, 512);
    memset(&p, 0, sizeof p);
    p.ra = 200.0;
    p.dec = 30.0;
    p.pa = 300.0;
    w = detector_wcs(&c, &p, 9);
    h = c.size / 2.0;
    off = sip_offset(&w.sip, h, h);
    assert_true(off > 0.1 && off < 12.0);
    assert_true(fit_residual(&c, &p, 9, &w) < 0.01);
    rapid_wcs_release(&w);
}

/* Detectors: six columns of three, chevron, numbered as in Roman, no
 * overlaps, ~8-10% gaps. */
static void test_focal_layout(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing p;
    rapid_wcs w[RAPID_NSCA + 1];
    double u[RAPID_NSCA + 1], v[RAPID_NSCA + 1], cpa, spa;
    double ox[8], oy[8], ora[8], odec[8];
    int s, t, k;

    (void)state;
    rapid_sim_config_init(&c);
    memset(&p, 0, sizeof p);
    p.ra = 150.0;
    p.dec = 2.0;
    p.pa = 25.0;
    cpa = cos(p.pa * D2R);
    spa = sin(p.pa * D2R);
    for (s = 1; s <= RAPID_NSCA; s++) {
        /* Detector centre in focal-plane axes (units of the size): +v at
         * PA east of north, +u west at PA 0. */
        double cra, cdec, xi, eta, da, cosc;
        w[s] = detector_wcs(&c, &p, s);
        cra = w[s].crval[0];
        cdec = w[s].crval[1];
        da = (cra - p.ra) * D2R;
        cosc = sin(p.dec * D2R) * sin(cdec * D2R) +
               cos(p.dec * D2R) * cos(cdec * D2R) * cos(da);
        xi = cos(cdec * D2R) * sin(da) / cosc * R2D * 3600 / RAPID_PIXSCALE;
        eta = (cos(p.dec * D2R) * sin(cdec * D2R) -
               sin(p.dec * D2R) * cos(cdec * D2R) * cos(da)) /
              cosc * R2D * 3600 / RAPID_PIXSCALE;
        u[s] = (-xi * cpa + eta * spa) / c.size;
        v[s] = (xi * spa + eta * cpa) / c.size;
    }
    for (s = 1; s <= RAPID_NSCA; s++) {
        int col = (s - 1) / 3; /* 0..5 */
        int first = 3 * col + 1;
        /* Same column, rising v within it. */
        assert_true(fabs(u[s] - u[first]) < 0.05); /* distortion bends it */
        if (s != first)
            assert_true(v[s] - v[s - 1] > 1.03 && v[s] - v[s - 1] < 1.2);
    }
    /* Columns: 7-9, 4-6, 1-3 east (u < 0) and 10-12, 13-15, 16-18 west,
     * ~1.09 sizes apart (gaps of 6-12%). */
    assert_true(u[7] < u[4] && u[4] < u[1] && u[1] < 0);
    assert_true(0 < u[10] && u[10] < u[13] && u[13] < u[16]);
    assert_true(u[1] - u[4] > 1.06 && u[1] - u[4] < 1.12);
    assert_true(u[10] - u[1] > 1.06 && u[10] - u[1] < 1.12);
    /* The chevron: outer columns lower, mirror-symmetric. */
    assert_true(v[1] > v[4] + 0.1 && v[4] > v[7] + 0.3);
    assert_true(fabs(v[1] - v[10]) < 0.02 && fabs(v[7] - v[16]) < 0.02);
    /* The boresight is the centre of the array. */
    {
        double su = 0, sv = 0;
        for (s = 1; s <= RAPID_NSCA; s++) {
            su += u[s];
            sv += v[s];
        }
        assert_true(fabs(su / 18) < 0.02 && fabs(sv / 18) < 0.05);
    }
    /* No detector sees any point of another's outline. */
    for (k = 0; k < 8; k++) {
        double e = c.size - 0.5, h = (c.size - 1) / 2.0;
        const double bx[8] = {-0.5, h, e, e, e, h, -0.5, -0.5};
        const double by[8] = {-0.5, -0.5, -0.5, h, e, e, e, h};
        ox[k] = bx[k];
        oy[k] = by[k];
    }
    for (s = 1; s <= RAPID_NSCA; s++) {
        assert_int_equal(rapid_wcs_pix2sky(&w[s], 8, ox, oy, ora, odec, NULL), 0);
        for (t = 1; t <= RAPID_NSCA; t++) {
            double x, y;
            if (t == s)
                continue;
            for (k = 0; k < 8; k++)
                if (on_detector(&w[t], c.size, ora[k], odec[k], &x, &y))
                    fail_msg("SCA %d outline point %d falls on SCA %d", s, k, t);
            if (on_detector(&w[t], c.size, w[s].crval[0], w[s].crval[1], &x, &y))
                fail_msg("centre of SCA %d falls on SCA %d", s, t);
        }
    }
    for (s = 1; s <= RAPID_NSCA; s++)
        rapid_wcs_release(&w[s]);
}

/* The exact model's two directions invert each other. */
static void test_focal_roundtrip(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing p;
    double x[3] = {-0.5, 1000.25, 4087.5}, y[3] = {3.0, 2500.0, -0.5};
    double ra[3], dec[3], x2[3], y2[3];
    int k;

    (void)state;
    rapid_sim_config_init(&c);
    memset(&p, 0, sizeof p);
    p.ra = 359.99;
    p.dec = -60;
    p.pa = 181;
    assert_int_equal(sim_focal_pix2sky(&c, &p, 16, 3, x, y, ra, dec, NULL), 0);
    assert_int_equal(sim_focal_sky2pix(&c, &p, 16, 3, ra, dec, x2, y2, NULL), 0);
    for (k = 0; k < 3; k++) {
        assert_true(fabs(x2[k] - x[k]) < 1e-6);
        assert_true(fabs(y2[k] - y[k]) < 1e-6);
    }
}

/* -------------------------------------------------------------- scene */

static void test_scene_counts(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    double area, ss, bs, gs, n24 = 0, n16 = 0, g24 = 0;
    int64_t i, ns = 0;
    int np;

    (void)state;
    small_config(&c, 512);
    c.star_density = 50;
    s = make_scene(&c, &p, &np);
    area = cap_area(s);
    for (i = 0; i < s->nsrc; i++) {
        double m = s->src[i].mag[1];
        if (s->src[i].type == SIM_STAR) {
            ns++;
            n24 += m < 24;
            n16 += m < 16;
            assert_true(m >= 8 && m <= 28);
        } else {
            g24 += m >= 23.75 && m < 24.25;
            assert_true(m >= 18 && m <= 28);
        }
        if (i > 0)
            assert_true(s->src[i].dec >= s->src[i - 1].dec);
    }
    ss = count_slope(s, SIM_STAR, 16, 28);
    bs = count_slope(s, SIM_STAR, 11, 16);
    gs = count_slope(s, SIM_GALAXY, 18, 28);
    print_message("area %.4f deg2: %lld stars (%.0f/deg2 < 16 and %.0f < 24 "
                  "per unit density, slopes %.3f and %.3f), %lld galaxies "
                  "(%.3g/deg2/mag at 24, slope %.3f)\n",
                  area, (long long)ns, n16 / area / c.star_density,
                  n24 / area / c.star_density, bs, ss,
                  (long long)(s->nsrc - ns), g24 / 0.5 / area, gs);
    assert_true(fabs(ss - 0.12) < 0.03);
    assert_true(fabs(bs - 0.20) < 0.04);
    /* 2MASS toward the poles: ~600 deg^-2 brighter than H = 16 */
    assert_true(fabs(n16 / area / c.star_density / 600.0 - 1) < 0.1);
    assert_true(fabs(gs - 0.26) < 0.03);
    assert_true(fabs(n24 / area / c.star_density / 8900.0 - 1) < 0.1);
    assert_true(fabs(g24 / 0.5 / area / 1e5 - 1) < 0.15);
    /* The circle covers every detector of every pointing. */
    for (i = 0; i < np; i++) {
        double ra[5], dec[5];
        int sca, k;
        for (sca = 1; sca <= c.nscas; sca++) {
            rapid_wcs w = detector_wcs(&c, &p[i], sca);
            assert_int_equal(rapid_wcs_footprint(&w, 0, 0, ra, dec, NULL), 0);
            for (k = 0; k < 5; k++)
                assert_true(rapid_sky_distance(s->ra0, s->dec0, ra[k], dec[k]) <
                            s->radius);
            rapid_wcs_release(&w);
        }
    }
    rapid_sim_scene_free(s);
    free(p);
}

static double median(double *v, int n)
{
    int i, j;

    for (i = 1; i < n; i++) /* insertion sort: the samples are small */
        for (j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void test_galaxy_shapes(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    const double lo[3] = {19, 23.5, 27}, hi[3] = {21, 24.5, 28};
    double *re[3], med[3];
    int nre[3] = {0, 0, 0}, np, b;
    int64_t i, ng = 0, disk = 0, bulge = 0;

    (void)state;
    small_config(&c, 512);
    c.galaxy_density = 3; /* enough bright galaxies for a median */
    s = make_scene(&c, &p, &np);
    for (b = 0; b < 3; b++)
        assert_non_null(re[b] = malloc((size_t)s->nsrc * sizeof **re));
    for (i = 0; i < s->nsrc; i++) {
        const sim_source *g = &s->src[i];
        if (g->type != SIM_GALAXY) {
            assert_true(g->r_e == 0 && g->sersic_n == 0);
            continue;
        }
        ng++;
        assert_true(g->sersic_n >= 0.5 && g->sersic_n <= 4);
        assert_true(g->q >= 0.2 && g->q <= 1);
        assert_true(g->pa >= 0 && g->pa < 180);
        assert_true(g->r_e > 0);
        disk += g->sersic_n < 1.5;
        bulge += g->sersic_n > 2.5;
        for (b = 0; b < 3; b++)
            if (g->mag[1] >= lo[b] && g->mag[1] < hi[b])
                re[b][nre[b]++] = g->r_e;
    }
    for (b = 0; b < 3; b++) {
        assert_true(nre[b] > 30);
        med[b] = median(re[b], nre[b]);
        free(re[b]);
    }
    print_message("median r_e %.3f\" (H 19-21), %.3f\" (23.5-24.5), %.3f\" "
                  "(27-28); %.0f%% disk-like, %.0f%% bulge-like\n",
                  med[0], med[1], med[2], 100.0 * disk / ng,
                  100.0 * bulge / ng);
    assert_true(med[0] > med[1] && med[1] > med[2]);
    assert_true(med[0] > 0.35 && med[0] < 0.8);
    assert_true(med[2] > 0.08 && med[2] < 0.2);
    assert_true(disk > ng / 2 && bulge > ng / 10);
    rapid_sim_scene_free(s);
    free(p);
}

/* Source by id (ids are 1..nsrc). */
static const sim_source **by_id(const rapid_sim_scene *s)
{
    const sim_source **t = calloc((size_t)s->nsrc + 1, sizeof *t);
    int64_t i;

    assert_non_null(t);
    for (i = 0; i < s->nsrc; i++) {
        assert_true(s->src[i].id >= 1 && s->src[i].id <= s->nsrc);
        assert_null(t[s->src[i].id]);
        t[s->src[i].id] = &s->src[i];
    }
    return t;
}

/* Supernovae present (exploded, not yet faded below mag) at time mjd in
 * H158 per square degree of the scene. */
static double sn_present(const rapid_sim_scene *s, double mjd, double mag)
{
    int64_t k, n = 0;

    for (k = 0; k < s->var0; k++)
        n += sim_transient_mag(&s->tr[k], 2, mjd) < mag;
    return n / cap_area(s);
}

static void test_transients(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    const sim_source **src;
    int64_t k, nk[5] = {0, 0, 0, 0, 0}, nt[SIM_SN_NTYPES] = {0}, nsn;
    int64_t bright = 0, before = 0, hostmag = 0, hosted = 0;
    double t0, t1, expect;
    int np;

    (void)state;
    small_config(&c, 512);
    c.sn_rate = 50;
    c.star_density = 20;
    s = make_scene(&c, &p, &np);
    src = by_id(s);
    t0 = p[0].mjd;
    t1 = p[np - 1].mjd;
    assert_true(s->var0 > 1000 && s->var0 <= s->ntr);
    for (k = 0; k < s->ntr; k++) {
        const sim_transient *t = &s->tr[k];
        assert_int_equal(t->id, s->nsrc + 1 + k);
        assert_true(t->kind >= 1 && t->kind <= 4);
        assert_true((t->kind == SIM_VARIABLE) == (k >= s->var0));
        nk[t->kind]++;
        if (t->kind == SIM_SN_HOSTLESS) {
            assert_int_equal(t->host, -1);
        } else {
            const sim_source *h;
            assert_true(t->host >= 1 && t->host <= s->nsrc);
            h = src[t->host];
            assert_int_equal(h->type,
                             t->kind == SIM_VARIABLE ? SIM_STAR : SIM_GALAXY);
            if (t->kind == SIM_SN_OFFSET) {
                double d = rapid_sky_distance(h->ra, h->dec, t->ra, t->dec);
                assert_true(d * 3600 <= 1.5 * h->r_e * (1 + 1e-6) + 1e-9);
            } else {
                assert_true(t->ra == h->ra && t->dec == h->dec);
            }
            if (t->kind != SIM_VARIABLE) {
                /* hosts of the luminosity SN hosts have at that distance */
                double mh = -21 + t->mu - 2.5 * log10(1 + t->z);
                hosted++;
                hostmag += fabs(h->mag[1] - mh) < 2.5;
            }
        }
        if (t->kind == SIM_VARIABLE) {
            const sim_source *h = src[t->host];
            assert_true(h->mag[1] < 24);
            assert_true(t->peak_mag[3] == h->mag[3]);
            assert_true(t->period >= 0.2 && t->period <= 20);
            assert_true(t->amplitude >= 0.05 && t->amplitude <= 0.5);
            if (k > s->var0)
                assert_true(t->host > s->tr[k - 1].host);
            assert_true(sim_scene_variable(s, t->host) == t);
        } else {
            double dur = (1 + t->z) * sim_sn_duration(t->sntype), pk = 99;
            int f;
            assert_true(t->sntype >= SIM_SN_IA && t->sntype < SIM_SN_NTYPES);
            nt[t->sntype]++;
            assert_true(t->z > 0 && t->z <= SIM_SN_ZMAX);
            assert_true(fabs(t->mu - sim_sn_distmod(t->z)) < 1e-9);
            for (f = 0; f < RAPID_NFILTERS; f++)
                pk = fmin(pk, t->peak_mag[f]);
            assert_true(pk <= 30.0); /* the never-visible ones are dropped */
            /* at peak the stored magnitude; dark before the explosion */
            assert_true(fabs(sim_transient_mag(t, 2, t->mjd_peak) -
                             t->peak_mag[1]) < 1e-4 ||
                        t->peak_mag[1] > 35);
            assert_true(sim_transient_mag(t, 2, t->mjd_peak - t->rise - 0.01) ==
                        99.0);
            /* explosions from one visible lifetime before the survey on */
            assert_true(t->mjd_peak - t->rise >= t0 - dur - 1e-6 &&
                        t->mjd_peak - t->rise <= t1 + 1);
            before += t->mjd_peak < t0;
        }
    }
    nsn = s->var0;
    print_message("%lld supernovae (%lld nuclear, %lld offset, %lld hostless; "
                  "Ia %lld, II-P %lld, II-L %lld, IIn %lld, Ib/c %lld; %lld "
                  "peaked before the survey), %lld variables\n",
                  (long long)nsn, (long long)nk[1], (long long)nk[2],
                  (long long)nk[3], (long long)nt[1], (long long)nt[2],
                  (long long)nt[3], (long long)nt[4], (long long)nt[5],
                  (long long)before, (long long)nk[4]);
    assert_true(nk[1] > 0 && nk[2] > 0 && nk[3] > 0);
    assert_true(fabs((double)nk[1] / (nk[1] + nk[2]) - 0.3) < 0.05);
    assert_true(hostmag > 0.9 * hosted);
    for (k = 1; k < SIM_SN_NTYPES; k++)
        assert_true(nt[k] > 0);
    assert_true(before > nsn / 2); /* most visible ones are old */
    for (k = 0; k < s->nsrc; k++)
        bright += s->src[k].type == SIM_STAR && s->src[k].mag[1] < 24;
    expect = c.variable_fraction * bright;
    assert_true(fabs(nk[4] - expect) < 5 * sqrt(expect) + 1);
    /* A steady star has no variable entry. */
    for (k = 0; k < s->nsrc; k++)
        if (s->src[k].type == SIM_STAR && s->src[k].mag[1] > 25) {
            assert_null(sim_scene_variable(s, s->src[k].id));
            break;
        }
    free(src);
    rapid_sim_scene_free(s);
    free(p);
}

/* Distances against the standard flat LCDM (H0 70, Omega_m 0.3) values:
 * luminosity distances 2832.9, 6607.7 and 15539.6 Mpc at z = 0.5, 1, 2
 * (the same as any cosmology calculator gives). */
static void test_sn_cosmology_and_rates(void **state)
{
    static const double z[3] = {0.5, 1.0, 2.0}, dl[3] = {2832.9, 6607.7,
                                                        15539.6};
    double cc = 0;
    int k;

    (void)state;
    for (k = 0; k < 3; k++) {
        double mu = 5 * log10(dl[k]) + 25;
        assert_true(fabs(sim_sn_distmod(z[k]) - mu) < 0.002);
        assert_true(fabs(sim_sn_comoving_mpc(z[k]) * (1 + z[k]) - dl[k]) <
                    0.5);
    }
    /* dV/dz: the derivative of the comoving volume 4/3 pi D_C^3 / 4 pi */
    for (k = 0; k < 3; k++) {
        double h = 1e-4, a = sim_sn_comoving_mpc(z[k] - h),
               b = sim_sn_comoving_mpc(z[k] + h);
        double num = (b * b * b - a * a * a) / 3 / (2 * h);
        assert_true(fabs(sim_sn_dvdz(z[k]) / num - 1) < 1e-5);
    }
    /* local rates: Ia 2.5e-5, core collapse 0.0068 psi(0) per Mpc^3/yr */
    assert_true(fabs(sim_sn_rate(SIM_SN_IA, 0) - 2.5e-5) < 1e-12);
    for (k = SIM_SN_IIP; k < SIM_SN_NTYPES; k++)
        cc += sim_sn_rate(k, 0);
    assert_true(fabs(cc - 0.0068 * 0.015 / (1 + pow(1 / 2.9, 5.6))) < 1e-12);
    /* the star-formation peak near z = 2 */
    assert_true(sim_sn_rate(SIM_SN_IIP, 1.9) > sim_sn_rate(SIM_SN_IIP, 1.0) &&
                sim_sn_rate(SIM_SN_IIP, 1.9) > sim_sn_rate(SIM_SN_IIP, 3.0));
    assert_true(sim_sn_rate(SIM_SN_IIP, 0.5) / sim_sn_rate(SIM_SN_IBC, 0.5) >
                1.4);
    assert_true(sim_sn_rate(0, 1) == 0 && sim_sn_rate(SIM_SN_IA, -1) == 0);
}

/* Light curves: time dilation, colours, luminosity. */
static void test_sn_light_curves(void **state)
{
    double lh = rapid_filter_by_name("H158")->lambda_um;
    double lr = rapid_filter_by_name("R062")->lambda_um;
    double mu = sim_sn_distmod(1.0), m0, m1, t;
    int type;

    (void)state;
    /* a nearby Ia at peak in the rest B band is M_B (AB) + mu */
    m0 = sim_sn_mag(SIM_SN_IA, 0.01, sim_sn_distmod(0.01), -19.3,
                    0.445 * 1.01, 0);
    assert_true(fabs(m0 - (-19.3 - 0.09 + sim_sn_distmod(0.01) -
                           2.5 * log10(1.01))) < 1e-6);
    /* an Ia at z = 1 peaks near H = 24.5-25 and is fainter in R062
     * (rest 0.31 um, below the UV edge) */
    m0 = sim_sn_mag(SIM_SN_IA, 1.0, mu, -19.26, lh, 0);
    m1 = sim_sn_mag(SIM_SN_IA, 1.0, mu, -19.26, lr, 0);
    print_message("Ia at z=1: H158 %.2f, R062 %.2f\n", m0, m1);
    assert_true(m0 > 24.5 && m0 < 25.0);
    assert_true(m1 > m0 + 0.3);
    /* time dilation: the Ia's 15-day B decline takes 30 observer days
     * at z = 1 */
    for (type = SIM_SN_IA; type < SIM_SN_NTYPES; type++) {
        double a = sim_sn_mag(type, 1.0, mu, -18, 0.89, 30) -
                   sim_sn_mag(type, 1.0, mu, -18, 0.89, 0);
        double b = sim_sn_mag(type, 0.01, 0, -18, 0.89 / 2.0 * 1.01, 15) -
                   sim_sn_mag(type, 0.01, 0, -18, 0.89 / 2.0 * 1.01, 0);
        assert_true(fabs(a - b) < 0.05);
        /* rising before the peak, fading after, gone at the end */
        assert_true(sim_sn_mag(type, 0.5, 42, -18, lh, -5) >
                    sim_sn_mag(type, 0.5, 42, -18, lh, 0));
        assert_true(sim_sn_mag(type, 0.5, 42, -18, lh, 300) >
                    sim_sn_mag(type, 0.5, 42, -18, lh, 0));
        t = 1.5 * (sim_sn_duration(type) - sim_sn_rise_days(type));
        assert_true(isinf(sim_sn_mag(type, 0.5, 42, -18, lh, t + 0.1)));
        assert_true(isinf(sim_sn_mag(type, 0.5, 42, -18, lh,
                                     -1.5 * sim_sn_rise_days(type) - 0.1)));
    }
    /* cooling: redder with time */
    assert_true(sim_sn_mag(SIM_SN_IIP, 0.1, 38, -17, lr, 60) -
                    sim_sn_mag(SIM_SN_IIP, 0.1, 38, -17, lh, 60) >
                sim_sn_mag(SIM_SN_IIP, 0.1, 38, -17, lr, 0) -
                    sim_sn_mag(SIM_SN_IIP, 0.1, 38, -17, lh, 0));
    assert_true(isinf(sim_sn_mag(0, 1, mu, -19, lh, 0)));
}

/* The published yield of the Roman supernova survey (Rose et al. 2021):
 * ~12,000 SNe Ia with distances over ~24 deg^2 in 2 years.  A sanity check
 * of the rates and luminosities: the number of Ia that peak brighter than
 * H158 = 25.5 (between the single-visit depths of the survey's wide and
 * deep tiers) in that area and time must be of that order (within a
 * factor 2 either way). */
static void test_sn_yield(void **state)
{
    double sr = 24 * D2R * D2R, n = 0, dz = 0.005, z;
    int k, nm = 400;

    (void)state;
    for (z = dz / 2; z < SIM_SN_ZMAX; z += dz) {
        double dn = sim_sn_rate(SIM_SN_IA, z) / (1 + z) * sim_sn_dvdz(z) *
                    dz * sr * 2.0, mu = sim_sn_distmod(z), frac = 0, sigma;
        double mb = sim_sn_peak_mb(SIM_SN_IA, &sigma);
        /* fraction of the luminosity function brighter than 26 */
        for (k = 0; k < nm; k++) {
            double x = -4 + 8.0 * (k + 0.5) / nm;
            double w = exp(-0.5 * x * x) / sqrt(2 * M_PI) * 8.0 / nm;
            frac += w * (sim_sn_mag(SIM_SN_IA, z, mu, mb + sigma * x,
                                    rapid_filter_by_name("H158")->lambda_um,
                                    0) < 25.5);
        }
        n += dn * frac;
    }
    print_message("SNe Ia peaking brighter than H158 = 25.5 over 24 deg^2 in "
                  "2 yr: %.0f (Rose et al. 2021: ~12,000)\n", n);
    assert_true(n > 12000 / 2.0 && n < 12000 * 2.0);
}

/* The number of supernovae shining at a moment depends on the rates, not
 * on how long the survey lasts. */
static void test_sn_independent_of_span(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    double shortn, longn, n1;
    int np;

    (void)state;
    small_config(&c, 1024);
    c.star_density = c.galaxy_density = 0;
    c.sn_rate = 30;
    c.epochs = 2;
    c.cadence_days = 5;
    s = make_scene(&c, &p, &np);
    shortn = sn_present(s, p[0].mjd, 28);
    n1 = (double)s->var0;
    rapid_sim_scene_free(s);
    free(p);
    c.epochs = 30;
    c.cadence_days = 20; /* 580 days */
    s = make_scene(&c, &p, &np);
    longn = sn_present(s, p[0].mjd, 28);
    print_message("shining brighter than H158 = 28 per deg^2 (x 1/30 for the "
                  "real rate): %.0f over 5 days, %.0f over 580 days; %.0f "
                  "and %lld drawn; at the real rate %.1f per 4088^2 "
                  "detector (%.1f brighter than 26)\n", shortn, longn, n1,
                  (long long)s->var0, longn / 30 * 0.01561,
                  sn_present(s, p[0].mjd, 26) / 30 * 0.01561);
    assert_true(fabs(longn / shortn - 1) < 0.1);
    assert_true(s->var0 > 3 * n1);
    rapid_sim_scene_free(s);
    free(p);
    /* rate 0: none at all */
    c.sn_rate = 0;
    s = make_scene(&c, &p, &np);
    assert_int_equal(s->var0, 0);
    rapid_sim_scene_free(s);
    free(p);
}

static void test_light_curves(void **state)
{
    sim_transient sn, var;
    double t, m, prev, lo = 99, hi = -99;
    int f;

    (void)state;
    memset(&sn, 0, sizeof sn);
    sn.kind = SIM_SN_OFFSET;
    sn.mjd_peak = 62030;
    sn.rise = 18;
    sn.fall = 40;
    for (f = 0; f < RAPID_NFILTERS; f++)
        sn.peak_mag[f] = 24.0f + 0.1f * f;
    assert_true(sim_transient_mag(&sn, 2, 62030 - 18.5) == 99.0);
    assert_true(sim_transient_mag(&sn, 2, 62030 - 17.99) == 99.0); /* > 35 */
    assert_true(fabs(sim_transient_mag(&sn, 2, 62030) - 24.1) < 1e-5);
    prev = 99;
    for (t = 62030 - 15; t <= 62030; t += 1) { /* rising */
        m = sim_transient_mag(&sn, 2, t);
        assert_true(m < prev);
        prev = m;
    }
    for (t = 62031; t < 62300; t += 3) { /* fading */
        m = sim_transient_mag(&sn, 2, t);
        assert_true(m > prev);
        prev = m;
    }
    assert_true(sim_transient_mag(&sn, 2, 62030 + 2000) == 99.0);
    /* Slower decline in the red. */
    assert_true(sim_transient_mag(&sn, 4, 62070) - sn.peak_mag[3] <
                sim_transient_mag(&sn, 5, 62070) - sn.peak_mag[4]);
    assert_true(sim_transient_mag(&sn, 0, 62030) == 99.0);
    assert_true(sim_transient_mag(NULL, 2, 62030) == 99.0);

    memset(&var, 0, sizeof var);
    var.kind = SIM_VARIABLE;
    var.period = 1.7;
    var.amplitude = 0.3;
    var.phase = 1.0;
    for (f = 0; f < RAPID_NFILTERS; f++)
        var.peak_mag[f] = 20.0f;
    for (t = 62000; t < 62000 + 3 * var.period; t += 0.01) {
        m = sim_transient_mag(&var, 2, t);
        lo = fmin(lo, m);
        hi = fmax(hi, m);
    }
    assert_true(fabs(lo - 19.7) < 0.01 && fabs(hi - 20.3) < 0.01);
    assert_true(fabs(sim_transient_mag(&var, 2, 62000.3) -
                     sim_transient_mag(&var, 2, 62000.3 + 2 * var.period)) < 1e-6);
}

/* ---------------------------------------------------------- selection */

/* Independent membership test: vector gnomonic projection, convex polygon
 * by edge cross products, distance to the edges. */
static int brute_inside(const double ra[5], const double dec[5], double margin,
                        double sra, double sdec)
{
    double b[3], e[3], n[3], w[3], px[5], py[5], x, y, z, sgn = 0;
    int k, in = 1;

    b[0] = cos(dec[0] * D2R) * cos(ra[0] * D2R);
    b[1] = cos(dec[0] * D2R) * sin(ra[0] * D2R);
    b[2] = sin(dec[0] * D2R);
    e[0] = -sin(ra[0] * D2R);
    e[1] = cos(ra[0] * D2R);
    e[2] = 0;
    n[0] = -sin(dec[0] * D2R) * cos(ra[0] * D2R);
    n[1] = -sin(dec[0] * D2R) * sin(ra[0] * D2R);
    n[2] = cos(dec[0] * D2R);
    for (k = 0; k <= 4; k++) {
        double r = k < 4 ? ra[k + 1] : sra, d = k < 4 ? dec[k + 1] : sdec;
        w[0] = cos(d * D2R) * cos(r * D2R);
        w[1] = cos(d * D2R) * sin(r * D2R);
        w[2] = sin(d * D2R);
        z = b[0] * w[0] + b[1] * w[1] + b[2] * w[2];
        if (z <= 0)
            return 0;
        px[k] = (e[0] * w[0] + e[1] * w[1] + e[2] * w[2]) / z;
        py[k] = (n[0] * w[0] + n[1] * w[1] + n[2] * w[2]) / z;
    }
    x = px[4];
    y = py[4];
    for (k = 0; k < 4; k++) {
        int j = (k + 1) % 4;
        double cr = (px[j] - px[k]) * (y - py[k]) - (py[j] - py[k]) * (x - px[k]);
        if (sgn == 0)
            sgn = cr > 0 ? 1 : -1;
        if (cr * sgn < 0)
            in = 0;
    }
    if (in)
        return 1;
    for (k = 0; k < 4; k++) {
        int j = (k + 1) % 4;
        double dx = px[j] - px[k], dy = py[j] - py[k];
        double t = ((x - px[k]) * dx + (y - py[k]) * dy) / (dx * dx + dy * dy);
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        if (hypot(px[k] + t * dx - x, py[k] + t * dy - y) <= margin * D2R)
            return 1;
    }
    return 0;
}

/* sim_scene_select against brute force for every detector of the plan;
 * returns how many selections straddled RA 0. */
static int check_selection(const rapid_sim_config *c,
                           const rapid_sim_pointing *p, int np,
                           const rapid_sim_scene *s, int64_t *total)
{
    const double margins[2] = {0.0, 0.004};
    int k, sca, mi, straddle = 0;

    *total = 0;
    for (k = 0; k < np; k++)
        for (sca = 1; sca <= c->nscas; sca += 4)
            for (mi = 0; mi < 2; mi++) {
                rapid_wcs w = detector_wcs(c, &p[k], sca);
                double ra[5], dec[5];
                int64_t *idx = NULL, n, i, j = 0;
                rapid_err err = RAPID_ERR_INIT;
                int lo = 0, hi = 0;
                assert_int_equal(rapid_wcs_footprint(&w, 0, 0, ra, dec, NULL), 0);
                n = sim_scene_select(s, ra, dec, margins[mi], &idx, &err);
                if (n < 0)
                    fail_msg("select: %s", err.msg);
                for (i = 0; i < s->nsrc; i++) {
                    int in = brute_inside(ra, dec, margins[mi], s->src[i].ra,
                                          s->src[i].dec);
                    if (in) {
                        if (j >= n || idx[j] != i)
                            fail_msg("pointing %d SCA %d margin %g: source %lld "
                                     "missed", k, sca, margins[mi], (long long)i);
                        j++;
                        lo += s->src[i].ra < 1;
                        hi += s->src[i].ra > 359;
                    }
                }
                assert_int_equal(j, n);
                /* At margin 0, against the pixels themselves (2-px slack
                 * for straight footprint edges vs distorted ones). */
                for (i = 0; mi == 0 && i < s->nsrc; i += 7) {
                    double x, y;
                    int in = 0, m;
                    if (rapid_wcs_sky2pix(&w, 1, &s->src[i].ra, &s->src[i].dec,
                                          &x, &y, NULL) != 0)
                        continue;
                    for (m = 0; m < n && !in; m++)
                        in = idx[m] == i;
                    if (x > 1.5 && y > 1.5 && x < c->size - 2.5 && y < c->size - 2.5)
                        assert_true(in);
                    if (x < -2.5 || y < -2.5 || x > c->size + 1.5 || y > c->size + 1.5)
                        assert_false(in);
                }
                straddle += lo > 0 && hi > 0;
                *total += n;
                free(idx);
                rapid_wcs_release(&w);
            }
    return straddle;
}

static void test_select(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    int64_t total;
    int np;

    (void)state;
    small_config(&c, 256);
    c.epochs = 2;
    s = make_scene(&c, &p, &np);
    check_selection(&c, p, np, s, &total);
    assert_true(total > 1000);
    rapid_sim_scene_free(s);
    free(p);
}

/* A scene without the index (as tests make by hand) selects the same,
 * with or without the float RA copy. */
static void test_select_without_index(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    struct sim_scene_index *index;
    int64_t *a = NULL, *b = NULL, *d = NULL, na, nb, nd, i;
    double ra[5], dec[5];
    rapid_wcs w;
    int np;

    (void)state;
    small_config(&c, 256);
    c.ra = 359.995;
    c.epochs = 1;
    s = make_scene(&c, &p, &np);
    w = detector_wcs(&c, &p[0], 11);
    assert_int_equal(rapid_wcs_footprint(&w, 0, 0, ra, dec, NULL), 0);
    na = sim_scene_select(s, ra, dec, 0.002, &a, NULL);
    index = s->index;
    s->index = NULL;
    nb = sim_scene_select(s, ra, dec, 0.002, &b, NULL);
    assert_non_null(s->ra_f = malloc((size_t)s->nsrc * sizeof *s->ra_f));
    for (i = 0; i < s->nsrc; i++)
        s->ra_f[i] = (float)s->src[i].ra;
    nd = sim_scene_select(s, ra, dec, 0.002, &d, NULL);
    s->index = index;
    assert_true(na > 100);
    assert_int_equal(na, nb);
    assert_int_equal(na, nd);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    assert_memory_equal(a, d, (size_t)na * sizeof *a);
    free(a);
    free(b);
    free(d);
    rapid_wcs_release(&w);
    rapid_sim_scene_free(s); /* frees ra_f too */
    free(p);
}

static void test_select_ra0(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    rapid_err err = RAPID_ERR_INIT;
    int64_t total, *idx = NULL, n, i, lo = 0, hi = 0;
    double ra[5], dec[5];
    int np;

    (void)state;
    small_config(&c, 256);
    c.ra = 0.01;
    c.dec = -44;
    c.epochs = 2;
    s = make_scene(&c, &p, &np);
    check_selection(&c, p, np, s, &total);
    assert_true(total > 1000);
    /* A footprint centred on RA 0 holds sources on both sides of it. */
    ra[0] = 0.0;
    dec[0] = c.dec;
    ra[1] = 359.98;
    dec[1] = c.dec - 0.01;
    ra[2] = 0.02;
    dec[2] = c.dec - 0.01;
    ra[3] = 0.02;
    dec[3] = c.dec + 0.01;
    ra[4] = 359.98;
    dec[4] = c.dec + 0.01;
    n = sim_scene_select(s, ra, dec, 0.001, &idx, &err);
    assert_true(n > 10);
    for (i = 0; i < n; i++) {
        const sim_source *src = &s->src[idx[i]];
        lo += src->ra < 0.05;
        hi += src->ra > 359.95;
        assert_true(brute_inside(ra, dec, 0.001, src->ra, src->dec));
        if (i > 0)
            assert_true(idx[i] > idx[i - 1]);
    }
    for (i = 0, total = 0; i < s->nsrc; i++)
        total += brute_inside(ra, dec, 0.001, s->src[i].ra, s->src[i].dec);
    assert_int_equal(total, n);
    assert_true(lo > 0 && hi > 0);
    free(idx);
    /* A corner that cannot be projected is an error, not a crash. */
    ra[2] = 180.0;
    dec[2] = 44.0;
    assert_true(sim_scene_select(s, ra, dec, 0.0, &idx, &err) < 0);
    assert_null(idx);
    rapid_sim_scene_free(s);
    free(p);
}

/* -------------------------------------------------------------- truth */

static void test_truth_table(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *s;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const char *names[] = {"id",       "type",     "ra",       "dec",
                           "mag_F184", "mag_H158", "mag_J129", "mag_K213",
                           "mag_R062", "mag_Y106", "mag_Z087", "mag_W146",
                           "sersic_n", "r_e",      "q",        "pa"};
    const char *units[] = {"",    "",    "deg", "deg", "mag",    "mag",
                           "mag", "mag", "mag", "mag", "mag",    "mag",
                           "",    "arcsec", "", "deg"};
    const rapid_column *col;
    const sim_source *g = NULL;
    int np, k;
    int64_t i;

    (void)state;
    small_config(&c, 256);
    c.epochs = 1;
    s = make_scene(&c, &p, &np);
    assert_int_equal(rapid_sim_scene_truth(s, &t, &err), 0);
    assert_int_equal(t.nrows, s->nsrc);
    assert_int_equal(t.ncols, 16);
    for (k = 0; k < 16; k++) {
        assert_string_equal(t.cols[k].name, names[k]);
        assert_string_equal(t.cols[k].unit, units[k]);
    }
    assert_int_equal(rapid_table_col(&t, "id")->type, RAPID_COL_I64);
    assert_int_equal(rapid_table_col(&t, "type")->type, RAPID_COL_I32);
    assert_int_equal(rapid_table_col(&t, "ra")->type, RAPID_COL_F64);
    for (i = 0; i < t.nrows; i++)
        assert_int_equal(((int64_t *)t.cols[0].data)[i], i + 1);
    for (i = 0; i < s->nsrc && !g; i++)
        if (s->src[i].type == SIM_GALAXY)
            g = &s->src[i];
    assert_non_null(g);
    i = g->id - 1;
    assert_int_equal(((int32_t *)t.cols[1].data)[i], SIM_GALAXY);
    assert_true(((double *)t.cols[2].data)[i] == g->ra);
    assert_true(((double *)t.cols[3].data)[i] == g->dec);
    col = rapid_table_col(&t, "mag_Z087");
    assert_true(((float *)col->data)[i] == g->mag[6]);
    assert_true(((float *)rapid_table_col(&t, "r_e")->data)[i] == g->r_e);
    assert_true(((float *)rapid_table_col(&t, "pa")->data)[i] == g->pa);
    rapid_table_release(&t);
    rapid_sim_scene_free(s);
    free(p);
}

/* The same seed and plan make the same scene. */
static void test_scene_determinism(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL, *p2 = NULL;
    rapid_sim_scene *a, *b;
    int np, np2;

    (void)state;
    small_config(&c, 256);
    c.epochs = 2;
    a = make_scene(&c, &p, &np);
    b = make_scene(&c, &p2, &np2);
    assert_int_equal(a->nsrc, b->nsrc);
    assert_int_equal(a->ntr, b->ntr);
    assert_memory_equal(a->src, b->src, (size_t)a->nsrc * sizeof *a->src);
    assert_memory_equal(a->tr, b->tr, (size_t)a->ntr * sizeof *a->tr);
    rapid_sim_scene_free(b);
    free(p2);
    c.seed = 99;
    b = make_scene(&c, &p2, &np2);
    assert_true(a->nsrc != b->nsrc || a->src[0].ra != b->src[0].ra);
    rapid_sim_scene_free(a);
    rapid_sim_scene_free(b);
    free(p);
    free(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_mjd_start),
        cmocka_unit_test(test_plan_covers_tiles),
        cmocka_unit_test(test_plan_variety),
        cmocka_unit_test(test_plan_determinism),
        cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_empty_scene),
        cmocka_unit_test(test_detector_wcs),
        cmocka_unit_test(test_distortion_scales),
        cmocka_unit_test(test_focal_layout),
        cmocka_unit_test(test_focal_roundtrip),
        cmocka_unit_test(test_scene_counts),
        cmocka_unit_test(test_galaxy_shapes),
        cmocka_unit_test(test_transients),
        cmocka_unit_test(test_light_curves),
        cmocka_unit_test(test_sn_cosmology_and_rates),
        cmocka_unit_test(test_sn_light_curves),
        cmocka_unit_test(test_sn_yield),
        cmocka_unit_test(test_sn_independent_of_span),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_ra0),
        cmocka_unit_test(test_select_without_index),
        cmocka_unit_test(test_truth_table),
        cmocka_unit_test(test_scene_determinism),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
