/* test_sim_dq.c - the simulator's L2 products as Roman lays them out (SCI,
 * ERR, DQ), its detector defects, saturation and cosmic-ray jumps, each
 * checked on simulated images with the others switched off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/dq.h"
#include "rapid/sim.h"
#include "sim/sim_internal.h"
#include "testutil.h"

#define DEFECT (RAPID_DQ_DEAD | RAPID_DQ_HOT | RAPID_DQ_LOW_QE)

typedef struct world {
    rapid_sim_config c;
    rapid_sim_pointing *p;
    int np;
    rapid_sim_scene *scene;
    rapid_psf_field psf;
} world;

/* One detector, three visits, H158 at 140 s, only what a test switches on. */
static void bare_config(rapid_sim_config *c, int size)
{
    rapid_sim_config_init(c);
    c->seed = 23;
    c->size = size;
    c->exptime = 140;
    c->nscas = 1;
    c->epochs = 3;
    c->with_sources = 0;
    c->cosmic_rays = 0;
    c->hot_pixels = 0;
    c->defects = 0;
}

static void world_make(world *w, int sca)
{
    rapid_err err = RAPID_ERR_INIT;

    w->np = rapid_sim_plan(&w->c, &w->p, &err);
    if (w->np <= 0)
        fail_msg("plan: %d: %s", w->np, err.msg);
    assert_ok(rapid_sim_scene_make(&w->c, w->p, w->np, &w->scene, &err), err);
    memset(&w->psf, 0, sizeof w->psf);
    assert_ok(rapid_psf_field_make(&w->psf, w->p[0].filter, sca, w->c.size,
                                   w->c.size, NULL, &err),
              err);
}

static void world_release(world *w)
{
    rapid_psf_field_release(&w->psf);
    rapid_sim_scene_free(w->scene);
    free(w->p);
}

typedef struct l2 {
    rapid_image sci, err;
    rapid_image_u32 dq;
} l2;

static void render(world *w, int ip, int sca, l2 *o)
{
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_sim_render_l2(&w->c, w->scene, &w->p[ip], sca, &w->psf,
                                  &o->sci, &o->err, &o->dq, NULL, &err),
              err);
}

static void l2_release(l2 *o)
{
    rapid_image_release(&o->sci);
    rapid_image_release(&o->err);
    rapid_image_u32_release(&o->dq);
}

static double hdr_double(const rapid_header *h, const char *key)
{
    rapid_err err = RAPID_ERR_INIT;
    double v = 0;

    assert_ok(rapid_header_get_double(h, key, &v, &err), err);
    return v;
}

static double base_dn(const world *w)
{
    const rapid_sim_pointing *p = &w->p[0];
    const rapid_filter *f = p->filter;
    double zodi = rapid_zodi_factor(p->ra, p->dec,
                                    p->mjd + p->exptime / 2 / 86400.0, NULL);

    return (f->zodi * zodi + f->thermal + RAPID_DARK) * p->exptime / RAPID_GAIN;
}

/* Every source of the world's scene off (and no transients) but the star
 * nearest the centre of the first pointing's n x n detector 1, which gets
 * magnitude mag in every band; its position there in *sx, *sy. */
static void only_star(world *w, int n, double mag, double *sx, double *sy)
{
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double best = INFINITY;
    int64_t i, k = -1;
    int f;

    assert_ok(rapid_sim_detector_wcs(&w->c, &w->p[0], 1, &wcs, &err), err);
    for (i = 0; i < w->scene->nsrc; i++) {
        double px, py;
        sim_source *s = &w->scene->src[i];
        if (s->type == SIM_STAR &&
            rapid_wcs_sky2pix(&wcs, 1, &s->ra, &s->dec, &px, &py, NULL) == 0 &&
            hypot(px - n / 2.0, py - n / 2.0) < best) {
            best = hypot(px - n / 2.0, py - n / 2.0);
            k = i, *sx = px, *sy = py;
        }
        for (f = 0; f < RAPID_NFILTERS; f++)
            s->mag[f] = 99;
    }
    assert_true(k >= 0 && best < 60);
    for (f = 0; f < RAPID_NFILTERS; f++)
        w->scene->src[k].mag[f] = (float)mag;
    w->scene->ntr = 0;
    w->scene->var0 = 0;
    rapid_wcs_release(&wcs);
}

/* ------------------------------------------------------------- defects */

/* Is pixel (x, y) flagged a defect? */
static int bad(const uint32_t *dq, int n, int x, int y)
{
    return x >= 0 && y >= 0 && x < n && y < n && (dq[y * n + x] & DEFECT);
}

/* 1.7 % +- 0.3 % of the pixels, the same on every visit, another map on
 * another detector; singly, in clusters and in lines. */
static void test_defect_map(void **state)
{
    world w;
    l2 a = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    l2 b = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    const int n = 512;
    uint32_t *other = calloc((size_t)n * n, sizeof *other);
    long flagged = 0, single = 0, inline_ = 0, clustered = 0, differ = 0;
    long dead = 0, hot = 0, lowqe = 0;
    int x, y, i;

    (void)state;
    assert_non_null(other);
    bare_config(&w.c, n);
    w.c.defects = 1;
    world_make(&w, 1);
    render(&w, 0, 1, &a);
    render(&w, 2, 1, &b);
    for (y = 0; y < n; y++)
        for (x = 0; x < n; x++) {
            uint32_t d = a.dq.data[y * n + x];
            int h = 0, v = 0, nb = 0, dx, dy;
            assert_true((d & DEFECT) == (b.dq.data[y * n + x] & DEFECT));
            if (!(d & DEFECT)) {
                assert_true(d == 0);
                continue;
            }
            flagged++;
            assert_true(d & RAPID_DQ_DO_NOT_USE);
            assert_true(rapid_dq_unusable(d));
            dead += (d & RAPID_DQ_DEAD) != 0;
            hot += (d & RAPID_DQ_HOT) != 0;
            lowqe += (d & RAPID_DQ_LOW_QE) != 0;
            for (i = 1; i <= 4; i++) {
                h += bad(a.dq.data, n, x - i, y) && bad(a.dq.data, n, x + i, y);
                v += bad(a.dq.data, n, x, y - i) && bad(a.dq.data, n, x, y + i);
            }
            for (dy = -1; dy <= 1; dy++)
                for (dx = -1; dx <= 1; dx++)
                    nb += (dx || dy) && bad(a.dq.data, n, x + dx, y + dy);
            single += nb == 0;
            inline_ += h == 4 || v == 4; /* 9 in a row or column */
            clustered += nb >= 4 && h < 4 && v < 4;
        }
    printf("# defects: %ld of %d pixels (%.3f %%): %ld dead, %ld hot, %ld low QE;"
           " %ld single, %ld in lines, %ld in clusters\n", flagged, n * n,
           100.0 * flagged / (n * n), dead, hot, lowqe, single, inline_,
           clustered);
    assert_true(fabs((double)flagged / (n * n) - 0.017) <= 0.003);
    assert_true(hdr_double(&a.sci.hdr, "NDEFECT") == flagged);
    assert_true(dead > 0 && hot > 0 && lowqe > 0);
    assert_true(single > flagged / 5 && inline_ > flagged / 20 &&
                clustered > flagged / 50);
    /* the public map is the one in DQ; SCA 2 has another */
    assert_int_equal(rapid_sim_defect_map(&w.c, 1, n, n, other), flagged);
    for (i = 0; i < n * n; i++)
        assert_true((other[i] & DEFECT) == (a.dq.data[i] & DEFECT));
    memset(other, 0, (size_t)n * n * sizeof *other);
    rapid_sim_defect_map(&w.c, 2, n, n, other);
    for (i = 0; i < n * n; i++)
        differ += (other[i] & DEFECT) != (a.dq.data[i] & DEFECT);
    assert_true(differ > flagged);
    /* switched off: none */
    w.c.defects = 0;
    assert_int_equal(rapid_sim_defect_map(&w.c, 1, n, n, other), 0);
    free(other);
    l2_release(&a);
    l2_release(&b);
    world_release(&w);
}

/* What each kind of defect gives: dead pixels read only their read noise,
 * low-QE ones less than the sky, hot ones more. */
static void test_defect_values(void **state)
{
    world w;
    l2 a = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    const int n = 512;
    double base, rn = rapid_read_noise(140) / RAPID_GAIN;
    double sd = 0, sl = 0, sh = 0, sn = 0;
    long nd = 0, nl = 0, nh = 0, nn = 0;
    int i;

    (void)state;
    bare_config(&w.c, n);
    w.c.defects = 1;
    world_make(&w, 1);
    base = base_dn(&w);
    render(&w, 0, 1, &a);
    for (i = 0; i < n * n; i++) {
        uint32_t d = a.dq.data[i];
        double v = a.sci.data[i];
        if (d & RAPID_DQ_DEAD) {
            assert_true(fabs(v) < 6 * rn); /* no charge at all */
            sd += v, nd++;
        } else if (d & RAPID_DQ_LOW_QE) {
            sl += v, nl++;
        } else if (d & RAPID_DQ_HOT) {
            assert_true(v > base + 0.5 * 140 - 6 * sqrt(base + 0.5 * 140 + rn * rn));
            sh += v, nh++;
        } else {
            sn += v, nn++;
        }
    }
    printf("# dead %.2f, low QE %.2f, hot %.1f, good %.2f DN (sky + dark %.2f)\n",
           sd / nd, sl / nl, sh / nh, sn / nn, base);
    assert_true(fabs(sd / nd) < 4 * rn / sqrt((double)nd)); /* 4 sigma */
    assert_true(sl / nl < 0.75 * base && sl / nl > 0.05 * base);
    assert_true(sh / nh > base + 5 * 140);
    assert_true(fabs(sn / nn / base - 1) < 0.01);
    l2_release(&a);
    world_release(&w);
}

/* --------------------------------------------------------- saturation */

/* A bright star's core saturates: SCI at SATURATE (65,535 DN) exactly, and
 * flagged; nothing above it; nothing else flagged saturated. */
static void test_saturation(void **state)
{
    world w;
    l2 a = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    const int n = 256;
    double sat, sx = 0, sy = 0;
    int64_t i;
    long nsat = 0;

    (void)state;
    bare_config(&w.c, n);
    w.c.with_sources = 1;
    w.c.star_density = 100; /* a star near the centre */
    w.c.cosmic_rays = 30;
    w.c.defects = 1;
    world_make(&w, 1);
    only_star(&w, n, 10, &sx, &sy);
    render(&w, 0, 1, &a);
    sat = hdr_double(&a.sci.hdr, "SATURATE");
    assert_true(sat <= 65535 && sat == RAPID_FULL_WELL);
    for (i = 0; i < n * n; i++) {
        int flagged = (a.dq.data[i] & RAPID_DQ_SATURATED) != 0;
        assert_true(a.sci.data[i] <= sat);
        assert_true(flagged == (a.sci.data[i] == (float)sat));
        if (flagged) {
            assert_true(a.dq.data[i] & RAPID_DQ_DO_NOT_USE);
            nsat++;
        }
    }
    printf("# star of H = 10 at (%.1f, %.1f): %ld saturated pixels\n", sx, sy,
           nsat);
    assert_true(nsat >= 4);
    assert_true(hdr_double(&a.sci.hdr, "NSATPIX") == nsat);
    assert_true(a.dq.data[(int)floor(sy + 0.5) * n + (int)floor(sx + 0.5)] &
                RAPID_DQ_SATURATED);
    l2_release(&a);
    world_release(&w);
}

/* --------------------------------------------------------- cosmic rays */

/* The same image with every cosmic ray left in (jump_sigma 0), with the
 * jumps found (5 sigma), and with no cosmic rays: a pixel whose jump was
 * found holds no cosmic-ray charge and is flagged JUMP_DET; any other
 * pixel is as it is with every cosmic ray in (faint hits stay, unflagged). */
static void test_cosmic_ray_jumps(void **state)
{
    world w;
    l2 all = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    l2 found = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    l2 none = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    const int n = 256;
    double base, rn = rapid_read_noise(140), sig;
    long njump = 0, faint = 0, hit = 0;
    int i;

    (void)state;
    bare_config(&w.c, n);
    world_make(&w, 1);
    base = base_dn(&w);
    sig = sqrt(base * RAPID_GAIN + rn * rn) / RAPID_GAIN;
    render(&w, 0, 1, &none);
    w.c.cosmic_rays = 60;
    w.c.jump_sigma = 0;
    render(&w, 0, 1, &all);
    w.c.jump_sigma = 5;
    render(&w, 0, 1, &found);
    for (i = 0; i < n * n; i++) {
        int cr = all.sci.data[i] != none.sci.data[i];
        assert_true(none.dq.data[i] == 0 && all.dq.data[i] == 0);
        hit += cr;
        if (found.dq.data[i] & RAPID_DQ_JUMP_DET) {
            assert_true(found.dq.data[i] == RAPID_DQ_JUMP_DET);
            assert_false(rapid_dq_unusable(found.dq.data[i]));
            assert_true(cr && all.sci.data[i] - none.sci.data[i] > 5 * sig * 0.9);
            /* the sky's value, with the noise of a ramp cut in two */
            assert_true(fabs(found.sci.data[i] - none.sci.data[i]) <
                        6 * rn * M_SQRT2 / RAPID_GAIN);
            assert_true(fabs(found.err.data[i] -
                             rapid_dq_err(found.sci.data[i], RAPID_GAIN,
                                          rn * M_SQRT2)) < 1e-4);
            njump++;
        } else {
            assert_true(found.dq.data[i] == 0);
            assert_true(found.sci.data[i] == all.sci.data[i]);
            faint += cr;
        }
    }
    printf("# %ld cosmic-ray pixels: %ld found and fitted out, %ld faint ones left "
           "in\n", hit, njump, faint);
    assert_true(njump > 100 && faint > 10);
    assert_true(hdr_double(&found.sci.hdr, "NJUMP") == njump);
    assert_true(hdr_double(&found.sci.hdr, "JUMPSIG") == 5);
    l2_release(&all);
    l2_release(&found);
    l2_release(&none);
    world_release(&w);
}

/* ----------------------------------------------------------------- files */

/* --------------------------------------------------------- persistence */

/* A star that saturates in one exposure leaves, in the detector's next
 * exposure a quarter of an hour later, an excess at the pixels it filled
 * (not where it is now), decaying as 1/t: of order 0.1-1 e/s; the pixels
 * it saturated are flagged PERSISTENCE and DO_NOT_USE, the others not.
 * Nothing is left after 6 hours, or with persistence off. */
static void test_persistence(void **state)
{
    world w;
    l2 first = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    l2 after = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    l2 plain = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
    rapid_err err = RAPID_ERR_INIT;
    const int n = 256;
    double sx = 0, sy = 0, maxrate = 0, far = 0, dt;
    long nsat = 0, npers = 0, both = 0;
    int x, y;

    (void)state;
    bare_config(&w.c, n);
    w.c.with_sources = 1;
    w.c.with_noise = 0;     /* the expectation: the difference is exact */
    w.c.star_density = 100;
    w.c.cadence_days = 0.01; /* visits 14.4 minutes apart */
    world_make(&w, 1);
    only_star(&w, n, 11, &sx, &sy);
    render(&w, 0, 1, &first);
    assert_ok(rapid_sim_render_after(&w.c, w.scene, &w.p[1], w.p, w.np, 1,
                                     &w.psf, &after.sci, &after.err, &after.dq,
                                     NULL, &err), err);
    render(&w, 1, 1, &plain);
    dt = (w.p[1].mjd - w.p[0].mjd) * 86400 - w.p[0].exptime;
    for (y = 0; y < n; y++)
        for (x = 0; x < n; x++) {
            size_t j = (size_t)y * n + x;
            double ex = after.sci.data[j] - plain.sci.data[j];
            int sat = (first.dq.data[j] & RAPID_DQ_SATURATED) != 0;
            int pers = (after.dq.data[j] & RAPID_DQ_PERSISTENCE) != 0;
            nsat += sat, npers += pers, both += sat && pers;
            if (pers)
                assert_true(after.dq.data[j] & RAPID_DQ_DO_NOT_USE);
            assert_true(ex >= -1e-3);
            if (hypot(x - sx, y - sy) > 40)
                far = fmax(far, ex);
            else
                maxrate = fmax(maxrate, ex * RAPID_GAIN / w.p[1].exptime);
        }
    printf("# persistence %.0f s after an H = 11 star: %ld pixels saturated "
           "then, %ld flagged now (%ld both); excess up to %.3f e/s there, "
           "%.3g DN elsewhere; NPERSIST %g\n", dt, nsat, npers, both,
           maxrate, far, hdr_double(&after.sci.hdr, "NPERSIST"));
    assert_true(nsat > 0 && npers == nsat && both == nsat);
    assert_true(hdr_double(&after.sci.hdr, "NPERSIST") == npers);
    assert_true(maxrate > 0.1 && maxrate < 2.0);
    assert_true(far == 0);
    l2_release(&after);
    /* persistence off: nothing */
    w.c.persistence = 0;
    assert_ok(rapid_sim_render_after(&w.c, w.scene, &w.p[1], w.p, w.np, 1,
                                     &w.psf, &after.sci, &after.err, &after.dq,
                                     NULL, &err), err);
    assert_memory_equal(after.sci.data, plain.sci.data,
                        (size_t)n * n * sizeof(float));
    l2_release(&after);
    /* seven hours later: nothing either */
    w.c.persistence = 1;
    w.p[1].mjd = w.p[0].mjd + 7.0 / 24;
    l2_release(&plain);
    render(&w, 1, 1, &plain);
    assert_ok(rapid_sim_render_after(&w.c, w.scene, &w.p[1], w.p, w.np, 1,
                                     &w.psf, &after.sci, &after.err, &after.dq,
                                     NULL, &err), err);
    assert_memory_equal(after.sci.data, plain.sci.data,
                        (size_t)n * n * sizeof(float));
    l2_release(&first);
    l2_release(&after);
    l2_release(&plain);
    world_release(&w);
}

static int have_fitsverify(void)
{
    return system("command -v fitsverify >/dev/null 2>&1") == 0;
}

/* Every L2 file of a run: a header-only primary HDU, then SCI (float32,
 * DN), ERR (float32, DN, as computed from SCI) and DQ (BITPIX 32, BZERO
 * 2^31), checksums right, fitsverify clean; the same seed, the same files. */
static void test_l2_files(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_err err = RAPID_ERR_INIT;
    char path[1024], path2[1024], name[256], unit[16], cmd[2200];
    const char *dir = test_path("run"), *dir2 = test_path("run2");
    int np, i, verify = have_fitsverify();

    (void)state;
    bare_config(&c, 128);
    c.epochs = 2;
    c.with_sources = 1;
    c.cosmic_rays = 30;
    c.hot_pixels = 20;
    c.defects = 1;
    assert_ok(rapid_sim_run(&c, dir, NULL, NULL, &err), err);
    assert_ok(rapid_sim_run(&c, dir2, NULL, NULL, &err), err);
    np = rapid_sim_plan(&c, &p, &err);
    assert_true(np >= 2);
    if (!verify)
        printf("# fitsverify is not installed: that part is skipped\n");
    for (i = 0; i < np; i++) {
        rapid_header h0 = RAPID_HEADER_INIT, hs = RAPID_HEADER_INIT;
        rapid_header he = RAPID_HEADER_INIT, hd = RAPID_HEADER_INIT;
        l2 a = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
        l2 b = {RAPID_IMAGE_INIT, RAPID_IMAGE_INIT, RAPID_IMAGE_U32_INIT};
        long v = 0;
        double gain, rn;
        int k;
        rapid_sim_l2_name(&c, &p[i], 1, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(path2, sizeof path2, "%s/%s", dir2, name);
        assert_ok(rapid_fits_verify_checksums(path, &err), err);
        /* HDU numbers and EXTNAMEs, BITPIX, BZERO, units */
        assert_ok(rapid_fits_read_header(path, "0", &h0, &err), err);
        assert_ok(rapid_fits_read_header(path, "1", &hs, &err), err);
        assert_ok(rapid_fits_read_header(path, "2", &he, &err), err);
        assert_ok(rapid_fits_read_header(path, "3", &hd, &err), err);
        assert_ok(rapid_header_get_long(&h0, "NAXIS", &v, &err), err);
        assert_int_equal(v, 0);
        assert_ok(rapid_header_get_str(&hs, "EXTNAME", unit, sizeof unit, &err), err);
        assert_string_equal(unit, "SCI");
        assert_ok(rapid_header_get_str(&he, "EXTNAME", unit, sizeof unit, &err), err);
        assert_string_equal(unit, "ERR");
        assert_ok(rapid_header_get_str(&hd, "EXTNAME", unit, sizeof unit, &err), err);
        assert_string_equal(unit, "DQ");
        assert_ok(rapid_header_get_long(&hs, "BITPIX", &v, &err), err);
        assert_int_equal(v, -32);
        assert_ok(rapid_header_get_long(&he, "BITPIX", &v, &err), err);
        assert_int_equal(v, -32);
        assert_ok(rapid_header_get_long(&hd, "BITPIX", &v, &err), err);
        assert_int_equal(v, 32);
        assert_true(hdr_double(&hd, "BZERO") == 2147483648.0);
        assert_ok(rapid_header_get_str(&hs, "BUNIT", unit, sizeof unit, &err), err);
        assert_string_equal(unit, "DN");
        assert_ok(rapid_header_get_str(&he, "BUNIT", unit, sizeof unit, &err), err);
        assert_string_equal(unit, "DN");
        assert_true(hdr_double(&hs, "SATURATE") == RAPID_FULL_WELL);
        assert_true(hdr_double(&h0, "SATURATE") == RAPID_FULL_WELL);
        /* the pixels: ERR from SCI, the same in the second run */
        assert_ok(rapid_fits_read_image(path, "SCI", &a.sci, &err), err);
        assert_ok(rapid_fits_read_image(path, "ERR", &a.err, &err), err);
        assert_ok(rapid_fits_read_image_u32(path, "DQ", &a.dq, &err), err);
        assert_true(a.err.nx == 128 && a.dq.nx == 128 && a.dq.ny == 128);
        gain = hdr_double(&hs, "GAIN");
        rn = hdr_double(&hs, "RDNOISE");
        for (k = 0; k < 128 * 128; k++) {
            double r = a.dq.data[k] & RAPID_DQ_JUMP_DET ? rn * M_SQRT2 : rn;
            assert_true(fabs(a.err.data[k] - rapid_dq_err(a.sci.data[k], gain, r)) <
                        1e-4 * a.err.data[k]);
        }
        assert_ok(rapid_fits_read_image(path2, "SCI", &b.sci, &err), err);
        assert_ok(rapid_fits_read_image(path2, "ERR", &b.err, &err), err);
        assert_ok(rapid_fits_read_image_u32(path2, "DQ", &b.dq, &err), err);
        assert_memory_equal(a.sci.data, b.sci.data, 128 * 128 * sizeof(float));
        assert_memory_equal(a.err.data, b.err.data, 128 * 128 * sizeof(float));
        assert_memory_equal(a.dq.data, b.dq.data, 128 * 128 * sizeof(uint32_t));
        if (verify) {
            snprintf(cmd, sizeof cmd, "fitsverify -q -e '%s' >/dev/null 2>&1", path);
            if (system(cmd) != 0)
                fail_msg("fitsverify finds errors in %s", path);
        }
        l2_release(&a);
        l2_release(&b);
        rapid_header_release(&h0);
        rapid_header_release(&hs);
        rapid_header_release(&he);
        rapid_header_release(&hd);
    }
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defect_map),
        cmocka_unit_test(test_defect_values),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_cosmic_ray_jumps),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_l2_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
