/* sim_scene.c - the simulated sky: stars, galaxies, supernovae, variables.
 *
 * The scene fills the smallest convenient circle (a spherical cap) that
 * covers every detector of every pointing, plus SCENE_MARGIN.  Positions are
 * uniform on the sphere inside it.
 *
 * Stars: dN/dm ~ 10^(0.20 m) for 8 <= H158 < 16 and ~ 10^(0.12 m) from 16
 * to mag_faint, continuous at 16, with 600 stars/deg^2 brighter than 16.
 * Toward the Galactic poles 2MASS counts about 10^2.5 = 300 stars/deg^2
 * brighter than Ks = 14 (its "density" metric), which with the bright slope
 * and H - Ks ~ 0.1 is ~600 to H = 16; the bright stars saturate (H < ~17 in
 * a 140 s H158 exposure) and give the images and references saturated
 * cores and wide wings.  A faint slope of ~0.1-0.15 is what Galactic models
 * (Besancon, TRILEGAL) give for NIR dwarf counts at high latitude (this
 * field is at b ~ -73); it makes ~8,900 stars/deg^2 to H = 24, of the order
 * of the point sources HST counts at high latitude.  Each star has a temperature-like colour
 * t in [0, 1] (0 ~ A0, 0.4 ~ G2, 0.7 ~ K5, 1 ~ M4 dwarf); its colours follow
 * the four templates below, interpolated smoothly (cubic in t).
 *
 * Galaxies: dN/dm = 1e5 10^(0.26 (m - 24)) per deg^2 per mag, 18 <= H158
 * <= mag_faint: deep NIR counts (HST WFC3/IR F160W, e.g. Windhorst et al.
 * 2011) have ~1e5 /deg^2/mag at H ~ 24 and faint-end slopes of 0.2-0.3.
 * About a quarter are bulge-like (Sersic n 2.5-4, redder, rounder), the
 * rest disk-like (n ~ 1, q from random inclinations of a thick disk).  The
 * half-light radius follows the median relation log10 r_e = log10 0.6" -
 * 0.0753 (m - 20) (0.6" at 20 mag, 0.15" at 28) with 0.25 dex lognormal
 * scatter.  A colour g in [0, 1] (star-forming .. passive) picks colours
 * from three templates.
 *
 * Supernovae: from the published volumetric rates, luminosity functions
 * and light curves of sim_sn.c, every explosion that could be seen during
 * the survey (from one visible lifetime before it to its end).  A host is
 * a galaxy of the luminosity SN hosts have at the supernova's distance;
 * 30% of the hosted ones sit on the nucleus, the rest up to 1.5 r_e out
 * along the host's shape; without such a galaxy in the scene, hostless.
 *
 * Variable stars: variable_fraction of the stars brighter than H = 24,
 * sinusoidal in magnitude, period log-uniform in 0.2-20 d, amplitude
 * 0.05-0.5 mag (in H158, larger at shorter wavelengths).
 *
 * Ids: stars 1..Ns, galaxies Ns+1..N, supernovae N+1.., variables after
 * them.  The sources are sorted by declination for sim_scene_select().
 * Selection: the sources are also indexed in the scene's gnomonic plane
 * (float coordinates, zones of constant y sorted by x).  A footprint reads
 * only its bounding box there and decides by polygon tests without
 * trigonometry, leaving the rare source within rounding distance of the
 * boundary to the exact test in the footprint centre's own gnomonic plane.
 * Great-circle edges are straight in both planes, and RA never enters the
 * fast path, so RA 0 needs no special case.  A bitmap over the footprint's
 * Dec band returns the indices in ascending (Dec) order.
 *
 * Every source, supernova and variable draws from streams of its own, named
 * by (seed, kind, number), so the scene is the same for a seed and a set of
 * pointings however it is made: positions are drawn and sorted first, then
 * the rest of each source is filled in at its sorted place, on a few
 * threads.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rapid/rng.h"
#include "sim_internal.h"
#include "core/sphere.h"

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)
#define ARCSEC_RAD (D2R / 3600.0)
#define SQDEG_PER_SR (R2D * R2D)
#define LN10 2.302585092994046

#define REF_FID 2 /* H158: the band magnitudes and counts refer to */

#define STAR_SLOPE 0.12       /* fainter than STAR_BREAK */
#define STAR_BRIGHT_SLOPE 0.20 /* brighter */
#define STAR_N16 600.0  /* stars per deg^2 with STAR_BRIGHT <= H < 16 */
#define STAR_BREAK 16.0
#define STAR_BRIGHT 8.0
#define GAL_SLOPE 0.26
#define GAL_DNDM24 1.0e5 /* galaxies per deg^2 per mag at H = 24 */
#define GAL_BRIGHT 18.0
#define RE_AT20 0.6      /* median r_e at H = 20, arcsec */
#define RE_AT28 0.15     /* and at H = 28 */
#define RE_SCATTER 0.25  /* dex */

#define SN_NUCLEAR_FRAC 0.3 /* of the supernovae with a host */
#define SN_MAX_OFFSET 1.5   /* in units of the host r_e */
#define SN_HOST_MH (-21.0)  /* absolute H158 of a typical host, AB */
#define SN_HOST_SIGMA 1.0
#define SN_HOST_DMAG 0.25   /* hosts taken within this of the drawn mag */
#define SN_MAG_KEEP 30.0    /* never brighter than this anywhere: dropped */
#define SN_ROUND_DAYS 5.0   /* hand-made transients: how soon after peak
                             * the decline is linear */
#define VAR_BRIGHTER 24.0 /* only stars brighter than this may vary */

#define SCENE_MARGIN 0.01      /* degrees around the detectors */
#define MAX_SOURCES 400000000LL /* sorting indexes sources with 32 bits */
#define MAX_THREADS 8
#define XY_SLACK 1e-8          /* radians: well above the float rounding */
#define RA_F_SLACK 1e-4        /* degrees: above float rounding of an RA */
#define MAX_RADIUS 60.0        /* degrees: the index's gnomonic plane */
#define MIN_PER_THREAD 50000   /* below this a thread costs more than it saves */

enum {
    STREAM_STARS = 0x53544152,
    STREAM_GALAXIES = 0x47414c41,
    STREAM_SN = 0x534e4531,
    STREAM_VAR = 0x56415231
};

/* ------------------------------------------------------------- colours */

/* Template colours m(band) - m(H158), AB, at these wavelengths (microns);
 * bands in between are interpolated in log wavelength. */
#define NLAM 7
static const double tpl_lambda[NLAM] = {0.62, 0.87, 1.06, 1.29, 1.58, 1.84,
                                        2.13};
/* Dwarf stars A0, G2, K5, M4: approximate Vega colours converted to AB. */
#define NSTAR_TPL 4
static const double star_t[NSTAR_TPL] = {0.0, 0.4, 0.7, 1.0};
static const double star_tpl[NSTAR_TPL][NLAM] = {
    {-1.19, -0.85, -0.74, -0.46, 0.0, 0.25, 0.48},
    {-0.06, -0.10, -0.19, -0.17, 0.0, 0.22, 0.42},
    {0.89, 0.45, 0.26, 0.09, 0.0, 0.20, 0.36},
    {2.49, 1.25, 0.76, 0.09, 0.0, 0.10, 0.18}};
/* Faint galaxies (z ~ 0.5-2): star-forming, intermediate, passive. */
#define NGAL_TPL 3
static const double gal_g[NGAL_TPL] = {0.0, 0.5, 1.0};
static const double gal_tpl[NGAL_TPL][NLAM] = {
    {0.30, 0.15, 0.08, 0.03, 0.0, -0.02, -0.05},
    {1.20, 0.60, 0.35, 0.15, 0.0, -0.05, -0.08},
    {3.00, 1.60, 0.90, 0.40, 0.0, -0.10, -0.15}};

static double tpl_at(const double *tpl, double lambda)
{
    double x = log(lambda), f;
    int k;

    if (lambda <= tpl_lambda[0])
        return tpl[0];
    for (k = 1; k < NLAM - 1 && lambda > tpl_lambda[k]; k++)
        ;
    if (lambda >= tpl_lambda[NLAM - 1])
        return tpl[NLAM - 1];
    f = (x - log(tpl_lambda[k - 1])) / (log(tpl_lambda[k]) - log(tpl_lambda[k - 1]));
    return tpl[k - 1] + f * (tpl[k] - tpl[k - 1]);
}

/* Lagrange weights of the nodes at t: smooth in t, exact at the nodes. */
static void lagrange(const double *node, int n, double t, double *w)
{
    int i, j;

    for (i = 0; i < n; i++) {
        w[i] = 1.0;
        for (j = 0; j < n; j++)
            if (j != i)
                w[i] *= (t - node[j]) / (node[i] - node[j]);
    }
}

/* Per-band template colours, resolved once per scene. */
typedef struct colour_tables {
    double star[NSTAR_TPL][RAPID_NFILTERS];
    double gal[NGAL_TPL][RAPID_NFILTERS];
    double lratio[RAPID_NFILTERS]; /* ln(lambda / lambda_H158) */
} colour_tables;

static void colour_tables_init(colour_tables *ct)
{
    double lref = rapid_filter_by_fid(REF_FID)->lambda_um;
    int k, f;

    for (f = 0; f < RAPID_NFILTERS; f++) {
        double l = rapid_filter_by_fid(f + 1)->lambda_um;
        for (k = 0; k < NSTAR_TPL; k++)
            ct->star[k][f] = tpl_at(star_tpl[k], l);
        for (k = 0; k < NGAL_TPL; k++)
            ct->gal[k][f] = tpl_at(gal_tpl[k], l);
        ct->lratio[f] = log(l / lref);
    }
}

static void set_mags(float mag[RAPID_NFILTERS], double m_ref,
                     const double (*tpl)[RAPID_NFILTERS], const double *node,
                     int n, double t)
{
    double w[NSTAR_TPL], c;
    int f, k;

    lagrange(node, n, t, w);
    for (f = 0; f < RAPID_NFILTERS; f++) {
        for (c = 0, k = 0; k < n; k++)
            c += w[k] * tpl[k][f];
        /* The reference band is exactly m_ref, whatever the rounding. */
        mag[f] = (float)(f == REF_FID - 1 ? m_ref : m_ref + c);
    }
}

/* ------------------------------------------------------------ geometry */

typedef struct sky_cap {
    double ra0, dec0, radius;  /* degrees */
    double b[3], e[3], n[3];   /* centre, east, north unit vectors */
    double area;               /* square degrees */
    double height;             /* 1 - cos(radius) */
} sky_cap;

/* The point at gnomonic offset (xi, eta) radians from (ra, dec). */
static void offset_radec(double ra, double dec, double xi, double eta,
                         double *ora, double *odec)
{
    double b[3], e[3], n[3], w[3];

    sphere_frame(ra, dec, b, e, n);
    sphere_tangent_point(b, e, n, xi, eta, w);
    sphere_radec(w, ora, odec);
}

static void cap_init(sky_cap *c, double ra0, double dec0, double radius)
{
    c->ra0 = ra0;
    c->dec0 = dec0;
    c->radius = radius;
    sphere_frame(ra0, dec0, c->b, c->e, c->n);
    c->height = 1 - cos(radius * D2R);
    c->area = 2 * M_PI * c->height * SQDEG_PER_SR;
}

/* Uniform on the sphere inside the cap: cos(theta) is uniform.  xy (if
 * not NULL) gets the gnomonic coordinates about the cap centre. */
static void cap_random(const sky_cap *c, rapid_rng *r, double *ra,
                       double *dec, float xy[2])
{
    double ct = 1 - rapid_rng_uniform(r) * c->height;
    double st = sqrt(fmax(0.0, 1 - ct * ct));
    double ph = 2 * M_PI * rapid_rng_uniform(r), w[3];
    double cph = cos(ph), sph = sin(ph);
    int k;

    for (k = 0; k < 3; k++)
        w[k] = ct * c->b[k] + st * (cph * c->e[k] + sph * c->n[k]);
    sphere_radec(w, ra, dec);
    if (xy) {
        xy[0] = (float)(st * cph / ct);
        xy[1] = (float)(st * sph / ct);
    }
}

/* Corners and edge midpoints of the pixel area of detector sca. */
static int detector_outline(const rapid_sim_config *c,
                            const rapid_sim_pointing *p, int sca,
                            double ra[8], double dec[8], rapid_err *err)
{
    double s = c->size - 0.5, h = (c->size - 1) / 2.0;
    const double x[8] = {-0.5, h, s, s, s, h, -0.5, -0.5};
    const double y[8] = {-0.5, -0.5, -0.5, h, s, s, s, h};

    return sim_focal_pix2sky(c, p, sca, 8, x, y, ra, dec, err);
}

/* The cap around every detector of every pointing: the centre is the
 * normalised mean of points along all detector edges, the radius their
 * largest distance from it, plus the margin. */
static int scene_cap(const rapid_sim_config *c, const rapid_sim_pointing *p,
                     int np, sky_cap *cap, rapid_err *err)
{
    double ra[8], dec[8], sum[3] = {0, 0, 0}, w[3], ra0, dec0, rmax = 0;
    int k, i, sca, rc;

    for (k = 0; k < np; k++)
        for (sca = 1; sca <= c->nscas; sca++) {
            if ((rc = detector_outline(c, &p[k], sca, ra, dec, err)) != 0)
                return rc;
            for (i = 0; i < 8; i++) {
                sphere_vec(ra[i], dec[i], w);
                sum[0] += w[0];
                sum[1] += w[1];
                sum[2] += w[2];
            }
        }
    sphere_radec(sum, &ra0, &dec0);
    /* Outlines again rather than kept: np * nscas * 8 points are cheap. */
    for (k = 0; k < np; k++)
        for (sca = 1; sca <= c->nscas; sca++) {
            if ((rc = detector_outline(c, &p[k], sca, ra, dec, err)) != 0)
                return rc;
            for (i = 0; i < 8; i++)
                rmax = fmax(rmax, rapid_sky_distance(ra0, dec0, ra[i], dec[i]));
        }
    cap_init(cap, ra0, dec0, rmax + SCENE_MARGIN);
    return 0;
}

/* ------------------------------------------------------------- sorting */

/* An unsigned key ordered as the doubles are. */
static uint64_t dec_key(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof u);
    return (u >> 63) ? ~u : u | 0x8000000000000000ull;
}

/* LSD radix sort by 16-bit digits of (key, index) pairs; digits equal for
 * every key (the sign and exponent, mostly) cost one counting pass. */
static int radix_sort(uint64_t *key, uint32_t *idx, int64_t n)
{
    uint64_t *k2 = malloc((size_t)(n ? n : 1) * sizeof *k2);
    uint32_t *i2 = malloc((size_t)(n ? n : 1) * sizeof *i2);
    size_t *cnt = calloc(65536, sizeof *cnt);
    int pass, rc = 0;
    int64_t i;

    if (!k2 || !i2 || !cnt) {
        rc = RAPID_E_NOMEM;
        goto cleanup;
    }
    for (pass = 0; pass < 4; pass++) {
        int sh = 16 * pass;
        size_t sum = 0, c;
        memset(cnt, 0, 65536 * sizeof *cnt);
        for (i = 0; i < n; i++)
            cnt[(key[i] >> sh) & 0xffff]++;
        if (n > 0 && cnt[(key[0] >> sh) & 0xffff] == (size_t)n)
            continue;
        for (c = 0; c < 65536; c++) {
            size_t t = cnt[c];
            cnt[c] = sum;
            sum += t;
        }
        for (i = 0; i < n; i++) {
            size_t d = cnt[(key[i] >> sh) & 0xffff]++;
            k2[d] = key[i];
            i2[d] = idx[i];
        }
        memcpy(key, k2, (size_t)n * sizeof *key);
        memcpy(idx, i2, (size_t)n * sizeof *idx);
    }
cleanup:
    free(cnt);
    free(i2);
    free(k2);
    return rc;
}

/* --------------------------------------------------------- the index */

/* Zones of the scene's gnomonic plane (about the cap centre): strips of
 * constant y, each sorted by x.  A footprint then reads only the entries
 * in its bounding box, whatever the size of the scene. */
struct sim_scene_index {
    double y0, h;      /* zone k holds y in [y0 + k h, y0 + (k + 1) h) */
    int nz;
    int64_t *start;    /* nz + 1 offsets into the entries */
    float *x, *y;      /* entries, zone by zone, ascending x within a zone */
    uint32_t *i;       /* their index into src */
};

static void index_free(struct sim_scene_index *z)
{
    if (!z)
        return;
    free(z->start);
    free(z->x);
    free(z->y);
    free(z->i);
    free(z);
}

static uint32_t float_key(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof u);
    return (u >> 31) ? ~u : u | 0x80000000u;
}

static int zone_of(const struct sim_scene_index *z, double y)
{
    double k = floor((y - z->y0) / z->h);

    return k < 0 ? 0 : k >= z->nz ? z->nz - 1 : (int)k;
}

/* An eighth of a detector: a footprint's box then spans a few zones and
 * reads little outside itself. */
static double zone_height(const rapid_sim_config *c, const sky_cap *cap)
{
    double h = c->size * RAPID_PIXSCALE / 8.0 * ARCSEC_RAD;
    double span = 2 * tan(cap->radius * D2R);

    return fmax(h, span / 65536.0);
}

/* xy: the sources' plane coordinates, in src order. */
static int build_index(rapid_sim_scene *s, const float *xy, double h)
{
    struct sim_scene_index *z = calloc(1, sizeof *z);
    size_t m = (size_t)(s->nsrc ? s->nsrc : 1);
    uint64_t *key = malloc(m * sizeof *key);
    uint32_t *idx = malloc(m * sizeof *idx);
    int64_t j;
    int rc = RAPID_E_NOMEM;

    if (!z || !key || !idx)
        goto cleanup;
    z->h = h;
    z->y0 = -tan(s->radius * D2R) - h;
    z->nz = (int)ceil(2 * (tan(s->radius * D2R) + h) / h) + 1;
    z->start = calloc((size_t)z->nz + 1, sizeof *z->start);
    z->x = malloc(m * sizeof *z->x);
    z->y = malloc(m * sizeof *z->y);
    z->i = malloc(m * sizeof *z->i);
    if (!z->start || !z->x || !z->y || !z->i)
        goto cleanup;
    for (j = 0; j < s->nsrc; j++) {
        key[j] = (uint64_t)zone_of(z, xy[2 * j + 1]) << 32 |
                 float_key(xy[2 * j]);
        idx[j] = (uint32_t)j;
        z->start[zone_of(z, xy[2 * j + 1]) + 1]++;
    }
    if ((rc = radix_sort(key, idx, s->nsrc)) != 0)
        goto cleanup;
    for (j = 0; j < z->nz; j++)
        z->start[j + 1] += z->start[j];
    for (j = 0; j < s->nsrc; j++) {
        z->x[j] = xy[2 * idx[j]];
        z->y[j] = xy[2 * idx[j] + 1];
        z->i[j] = idx[j];
    }
    s->index = z;
    z = NULL;
cleanup:
    index_free(z);
    free(idx);
    free(key);
    return rc;
}

/* ------------------------------------------------------------- sources */

/* dN/dm ~ 10^(slope m) on [m1, m2], sampled by inverting its cumulative. */
typedef struct power_law {
    double slope, lo, hi; /* lo, hi = 10^(slope m1), 10^(slope m2) */
} power_law;

static void power_law_init(power_law *p, double slope, double m1, double m2)
{
    p->slope = slope;
    p->lo = pow(10, slope * m1);
    p->hi = pow(10, slope * fmax(m1, m2));
}

static double power_law_mag(const power_law *p, rapid_rng *r)
{
    return log10(p->lo + rapid_rng_uniform(r) * (p->hi - p->lo)) / p->slope;
}

/* Expected count per deg^2 of dN/dm = norm 10^(slope m) over [m1, m2]. */
static double power_law_count(double norm, double slope, double m1,
                              double m2)
{
    if (!(m2 > m1))
        return 0.0;
    return norm / (slope * LN10) * (pow(10, slope * m2) - pow(10, slope * m1));
}

/* The star counts: two power laws meeting at STAR_BREAK with the same
 * dN/dm there, the bright one normalised to STAR_N16 from STAR_BRIGHT. */
static double star_norm_bright(void)
{
    return STAR_N16 * STAR_BRIGHT_SLOPE * LN10 /
           (pow(10, STAR_BRIGHT_SLOPE * STAR_BREAK) -
            pow(10, STAR_BRIGHT_SLOPE * STAR_BRIGHT));
}

static double star_norm_faint(void)
{
    return star_norm_bright() * pow(10, (STAR_BRIGHT_SLOPE - STAR_SLOPE) *
                                            STAR_BREAK);
}

/* Expected stars per deg^2 from mag_bright to mag_faint, and of them
 * those brighter than STAR_BREAK. */
static double star_count(double mag_bright, double mag_faint, double *bright)
{
    double m0 = fmax(mag_bright, STAR_BRIGHT), nb, nf;

    nb = power_law_count(star_norm_bright(), STAR_BRIGHT_SLOPE, m0,
                         fmin(mag_faint, STAR_BREAK));
    nf = power_law_count(star_norm_faint(), STAR_SLOPE, fmax(m0, STAR_BREAK),
                         mag_faint);
    if (bright)
        *bright = nb;
    return nb + nf;
}

/* A star's magnitude: the bright law with its share of the count, else the
 * faint one (one uniform picks the law, then is reused within it). */
static double star_mag(const power_law *bright, const power_law *faint,
                       double pbright, rapid_rng *r)
{
    double u = rapid_rng_uniform(r);

    if (u < pbright)
        u /= pbright;
    else
        u = (u - pbright) / (1 - pbright), bright = faint;
    return log10(bright->lo + u * (bright->hi - bright->lo)) / bright->slope;
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Where a source is: on the sky and in the cap's gnomonic plane. */
typedef struct src_pos {
    double ra, dec;
    float xy[2];
} src_pos;

/* What every source generator needs, shared read-only by the threads. */
typedef struct gen_ctx {
    const rapid_sim_config *c;
    const sky_cap *cap;
    const colour_tables *ct;
    power_law stars, bright_stars, galaxies;
    double pbright;       /* share of the stars from the bright law */
    int64_t nstars;       /* sources [0, nstars) are stars, then galaxies */
    src_pos *pos;         /* positions by source number */
    uint64_t *key;        /* sort keys by source number, then sorted */
    uint32_t *idx;        /* source numbers, then in dec order */
    sim_source *src;      /* the scene, filled in dec order */
    float *xy;            /* the scene's xy, likewise */
} gen_ctx;

/* Each source has two streams of its own, (kind, number within the kind,
 * 0 for the position and 1 for the rest), so that positions can be made and
 * sorted first and the rest filled in sorted order, by any thread. */
static void source_stream(const gen_ctx *g, int64_t i, uint64_t part,
                          rapid_rng *r)
{
    if (i < g->nstars)
        rapid_rng_derive(r, g->c->seed, STREAM_STARS, (uint64_t)i, part);
    else
        rapid_rng_derive(r, g->c->seed, STREAM_GALAXIES,
                         (uint64_t)(i - g->nstars), part);
}

static void make_star(const gen_ctx *g, rapid_rng *r, sim_source *s)
{
    double m = star_mag(&g->bright_stars, &g->stars, g->pbright, r), t;
    /* Faint high-latitude stars are increasingly M dwarfs of the disk and
     * halo; brighter ones mostly G/K turn-off stars. */
    double pm = clamp(0.3 + 0.3 * (m - STAR_BREAK) / 12.0, 0.0, 0.6);

    if (rapid_rng_uniform(r) < pm)
        t = 0.85 + 0.15 * rapid_rng_uniform(r);
    else
        t = clamp(0.5 + 0.15 * rapid_rng_normal(r), 0.0, 0.85);
    s->type = SIM_STAR;
    set_mags(s->mag, m, g->ct->star, star_t, NSTAR_TPL, t);
}

static void make_galaxy(const gen_ctx *gc, rapid_rng *r, sim_source *s)
{
    double m = power_law_mag(&gc->galaxies, r), g, re, q;
    double pbulge = clamp(0.35 - 0.2 * (m - GAL_BRIGHT) / 10.0, 0.15, 0.35);
    double logre = log10(RE_AT20) +
                   (m - 20.0) / 8.0 * log10(RE_AT28 / RE_AT20) +
                   RE_SCATTER * rapid_rng_normal(r);

    s->type = SIM_GALAXY;
    re = pow(10, logre);
    if (rapid_rng_uniform(r) < pbulge) {
        s->sersic_n = (float)(2.5 + 1.5 * sqrt(rapid_rng_uniform(r)));
        q = 1 - fabs(0.25 * rapid_rng_normal(r));
        g = 0.6 + 0.4 * rapid_rng_uniform(r);
        re *= 0.8; /* bulges are more compact at a given flux */
    } else {
        double ci = rapid_rng_uniform(r), q0 = 0.2;
        s->sersic_n = (float)clamp(1.0 + 0.25 * rapid_rng_normal(r), 0.5, 2.0);
        /* A thick disk (intrinsic axis ratio q0) at a random inclination. */
        q = sqrt(ci * ci * (1 - q0 * q0) + q0 * q0);
        g = 0.6 * rapid_rng_uniform(r) * rapid_rng_uniform(r);
    }
    s->q = (float)clamp(q, 0.2, 1.0);
    s->r_e = (float)clamp(re, 0.02, 10.0);
    s->pa = (float)(180.0 * rapid_rng_uniform(r));
    set_mags(s->mag, m, gc->ct->gal, gal_g, NGAL_TPL, g);
}

/* Stage 1, sources [from, to): positions and their sort keys. */
static void gen_positions(const gen_ctx *g, int64_t from, int64_t to)
{
    rapid_rng r;
    int64_t i;

    for (i = from; i < to; i++) {
        source_stream(g, i, 0, &r);
        cap_random(g->cap, &r, &g->pos[i].ra, &g->pos[i].dec, g->pos[i].xy);
        g->key[i] = dec_key(g->pos[i].dec);
        g->idx[i] = (uint32_t)i;
    }
}

/* Stage 2, sorted places [from, to): everything else. */
static void gen_attributes(const gen_ctx *g, int64_t from, int64_t to)
{
    rapid_rng r;
    int64_t j, i;

    for (j = from; j < to; j++) {
        sim_source *s = &g->src[j];
        i = g->idx[j];
#if defined(__GNUC__) && !defined(RAPID_PORTABLE)
        /* The positions are read in random order: ask for them early. */
        if (j + 16 < to)
            __builtin_prefetch(&g->pos[g->idx[j + 16]]);
#endif
        s->id = i + 1;
        s->ra = g->pos[i].ra;
        s->dec = g->pos[i].dec;
        g->xy[2 * j] = g->pos[i].xy[0];
        g->xy[2 * j + 1] = g->pos[i].xy[1];
        source_stream(g, i, 1, &r);
        if (i < g->nstars)
            make_star(g, &r, s);
        else
            make_galaxy(g, &r, s);
    }
}

typedef struct gen_job {
    const gen_ctx *g;
    void (*fn)(const gen_ctx *, int64_t, int64_t);
    int64_t from, to;
} gen_job;

static void *gen_worker(void *arg)
{
    gen_job *j = arg;

    j->fn(j->g, j->from, j->to);
    return NULL;
}

/* fn over [0, n) in contiguous parts on a few threads; every part is
 * independent, so the result does not depend on how many run.  A thread
 * that cannot be started runs its part here. */
static void run_parallel(const gen_ctx *g,
                         void (*fn)(const gen_ctx *, int64_t, int64_t),
                         int64_t n)
{
    pthread_t th[MAX_THREADS];
    gen_job job[MAX_THREADS];
    int started[MAX_THREADS];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = (int)clamp((double)(ncpu > 0 ? ncpu : 1), 1, MAX_THREADS), t;

    if (n / MIN_PER_THREAD < nt)
        nt = (int)(n / MIN_PER_THREAD) > 0 ? (int)(n / MIN_PER_THREAD) : 1;
    for (t = 0; t < nt; t++) {
        job[t].g = g;
        job[t].fn = fn;
        job[t].from = n * t / nt;
        job[t].to = n * (t + 1) / nt;
        started[t] = t > 0 && pthread_create(&th[t], NULL, gen_worker,
                                             &job[t]) == 0;
    }
    for (t = 0; t < nt; t++)
        if (!started[t])
            gen_worker(&job[t]);
    for (t = 1; t < nt; t++)
        if (started[t])
            pthread_join(th[t], NULL);
}

/* All sources, in dec order: positions, a radix sort of their keys, then
 * the rest of each source at its sorted place. */
static int make_sources(gen_ctx *g, int64_t n)
{
    int rc = RAPID_E_NOMEM;
    size_t m = (size_t)(n ? n : 1);

    g->pos = malloc(m * sizeof *g->pos);
    g->key = malloc(m * sizeof *g->key);
    g->idx = malloc(m * sizeof *g->idx);
    if (g->pos && g->key && g->idx) {
        run_parallel(g, gen_positions, n);
        if ((rc = radix_sort(g->key, g->idx, n)) == 0)
            run_parallel(g, gen_attributes, n);
    }
    free(g->idx);
    free(g->key);
    free(g->pos);
    g->pos = NULL;
    g->key = NULL;
    g->idx = NULL;
    return rc;
}

/* --------------------------------------------------------- transients */

#define SN_NZ 300 /* redshift bins of the draw, to SIM_SN_ZMAX */
#define SN_ZMIN 0.005

typedef struct gal_mag {
    float m;    /* H158 */
    int64_t i;  /* index into the scene's sources */
} gal_mag;

typedef struct sn_context {
    const rapid_sim_config *c;
    const sky_cap *cap;
    const sim_source *src;  /* the scene's sources, in dec order */
    int64_t nsrc;
    gal_mag *gal;           /* the galaxies by H158 magnitude */
    int64_t ngal;
    double t0, t1;          /* first and last moment of the survey, MJD */
    double cum[SIM_SN_NTYPES * SN_NZ]; /* expected count, cumulative over
                                        * (type, redshift bin) cells */
} sn_context;

/* Expected supernovae of each type and redshift bin over the scene and the
 * survey: rate / (1+z) x dV/dz dz x solid angle x (the survey's span plus
 * the time an explosion stays visible, both in observer years).  The last
 * cell of cum is the total. */
static void sn_expected(sn_context *x)
{
    double dz = SIM_SN_ZMAX / SN_NZ, sum = 0;
    double sr = x->cap->area * D2R * D2R, span = x->t1 - x->t0;
    int t, k;

    for (t = 0; t < SIM_SN_NTYPES; t++)
        for (k = 0; k < SN_NZ; k++) {
            double z = (k + 0.5) * dz, days;
            if (t > 0) {
                days = span + (1 + z) * sim_sn_duration(t);
                sum += x->c->sn_rate * sim_sn_rate(t, z) / (1 + z) *
                       sim_sn_dvdz(z) * dz * sr * days / 365.25;
            }
            x->cum[t * SN_NZ + k] = sum;
        }
}

static int by_mag(const void *a, const void *b)
{
    const gal_mag *x = a, *y = b;

    if (x->m != y->m)
        return (x->m > y->m) - (x->m < y->m);
    return (x->i > y->i) - (x->i < y->i);
}

static int sort_galaxies(sn_context *x)
{
    int64_t i, n = 0;

    x->gal = malloc((size_t)(x->nsrc ? x->nsrc : 1) * sizeof *x->gal);
    if (!x->gal)
        return RAPID_E_NOMEM;
    for (i = 0; i < x->nsrc; i++)
        if (x->src[i].type == SIM_GALAXY)
            x->gal[n].m = x->src[i].mag[REF_FID - 1], x->gal[n++].i = i;
    x->ngal = n;
    qsort(x->gal, (size_t)n, sizeof *x->gal, by_mag);
    return 0;
}

/* First place in the galaxies by magnitude at or after magnitude m. */
static int64_t gal_lower(const sn_context *x, double m)
{
    int64_t lo = 0, hi = x->ngal;

    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (x->gal[mid].m < m)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A host of the luminosity supernova hosts have (absolute H ~ -21 +- 1)
 * at the supernova's distance, among the scene's galaxies within
 * SN_HOST_DMAG of that magnitude; -1 when none is that bright or that
 * faint (the host is below the catalog's limit). */
static int64_t pick_host(const sn_context *x, rapid_rng *r, double z,
                         double mu)
{
    double m = SN_HOST_MH + SN_HOST_SIGMA * rapid_rng_normal(r) + mu -
               2.5 * log10(1 + z);
    int64_t lo = gal_lower(x, m - SN_HOST_DMAG);
    int64_t hi = gal_lower(x, m + SN_HOST_DMAG);
    double u = rapid_rng_uniform(r);

    if (hi <= lo)
        return -1;
    return x->gal[lo + (int64_t)(u * (double)(hi - lo))].i;
}

/* Offset from the host centre by a fraction f <= SN_MAX_OFFSET of r_e
 * along an ellipse of the host's shape. */
static void offset_in_host(const sim_source *h, rapid_rng *r, double *ra,
                           double *dec)
{
    double f = SN_MAX_OFFSET * rapid_rng_uniform(r);
    double phi = 2 * M_PI * rapid_rng_uniform(r), pa = h->pa * D2R;
    double a = f * h->r_e * cos(phi), b = f * h->r_e * h->q * sin(phi);
    double east = a * sin(pa) + b * cos(pa), north = a * cos(pa) - b * sin(pa);

    offset_radec(h->ra, h->dec, east * ARCSEC_RAD, north * ARCSEC_RAD, ra,
                 dec);
}

/* Supernova number k, from its own stream: type and redshift from the
 * expected counts, explosion time, luminosity, host and place.  Returns 0
 * when it never gets brighter than SN_MAG_KEEP in any band (not kept). */
static int make_sn(const sn_context *x, int64_t k, sim_transient *t)
{
    double u, dz = SIM_SN_ZMAX / SN_NZ, mb, sigma, dur, brightest = 99;
    int64_t lo = 0, hi = SIM_SN_NTYPES * SN_NZ - 1, host;
    rapid_rng r;
    int f;

    rapid_rng_derive(&r, x->c->seed, STREAM_SN, (uint64_t)k, 0);
    memset(t, 0, sizeof *t);
    u = rapid_rng_uniform(&r) * x->cum[SIM_SN_NTYPES * SN_NZ - 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (x->cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    t->sntype = (int)(lo / SN_NZ);
    t->z = fmax(SN_ZMIN, ((double)(lo % SN_NZ) + rapid_rng_uniform(&r)) * dz);
    t->mu = sim_sn_distmod(t->z);
    mb = sim_sn_peak_mb(t->sntype, &sigma);
    t->mabs = mb + sigma * rapid_rng_normal(&r);
    dur = (1 + t->z) * sim_sn_duration(t->sntype);
    t->rise = (1 + t->z) * sim_sn_rise_days(t->sntype);
    /* explosions from as long before the survey as one stays visible */
    t->mjd_peak = x->t0 - dur + rapid_rng_uniform(&r) * (x->t1 - x->t0 + dur) +
                  t->rise;
    t->fall = 0;
    for (f = 0; f < RAPID_NFILTERS; f++) {
        double m = sim_sn_mag(t->sntype, t->z, t->mu, t->mabs,
                              rapid_filter_by_fid(f + 1)->lambda_um, 0);
        t->peak_mag[f] = (float)fmin(m, 99.0);
        brightest = fmin(brightest, m);
    }
    t->kind = SIM_SN_HOSTLESS;
    t->host = -1;
    host = pick_host(x, &r, t->z, t->mu);
    if (host >= 0) {
        const sim_source *h = &x->src[host];
        t->host = h->id;
        t->ra = h->ra;
        t->dec = h->dec;
        t->kind = rapid_rng_uniform(&r) < SN_NUCLEAR_FRAC ? SIM_SN_NUCLEAR
                                                           : SIM_SN_OFFSET;
        if (t->kind == SIM_SN_OFFSET)
            offset_in_host(h, &r, &t->ra, &t->dec);
    } else {
        cap_random(x->cap, &r, &t->ra, &t->dec, NULL);
    }
    return brightest <= SN_MAG_KEEP;
}

static int by_host(const void *a, const void *b)
{
    const sim_transient *x = a, *y = b;

    return (x->host > y->host) - (x->host < y->host);
}

/* Variables among the stars, appended to *tr in ascending host id.  Each
 * star decides with a stream of its own (by id), so the order in which the
 * stars are visited does not matter. */
static int make_variables(const rapid_sim_config *c, const rapid_sim_scene *s,
                          int64_t id0, sim_transient **tr, int64_t *ntr,
                          int64_t *cap)
{
    rapid_rng r;
    int64_t i, first = *ntr;
    int f;

    for (i = 0; i < s->nsrc; i++) {
        const sim_source *st = &s->src[i];
        sim_transient *t;
        if (st->type != SIM_STAR || st->mag[REF_FID - 1] >= VAR_BRIGHTER)
            continue;
        rapid_rng_derive(&r, c->seed, STREAM_VAR, (uint64_t)st->id, 0);
        if (!(rapid_rng_uniform(&r) < c->variable_fraction))
            continue;
        if (*ntr == *cap) {
            int64_t ncap = *cap ? 2 * *cap : 1024;
            sim_transient *p = realloc(*tr, (size_t)ncap * sizeof *p);
            if (!p)
                return RAPID_E_NOMEM;
            *tr = p;
            *cap = ncap;
        }
        t = &(*tr)[(*ntr)++];
        memset(t, 0, sizeof *t);
        t->kind = SIM_VARIABLE;
        t->host = st->id;
        t->ra = st->ra;
        t->dec = st->dec;
        for (f = 0; f < RAPID_NFILTERS; f++)
            t->peak_mag[f] = st->mag[f];
        t->period = 0.2 * pow(100.0, rapid_rng_uniform(&r));
        t->amplitude = 0.05 + 0.45 * rapid_rng_uniform(&r);
        t->phase = 2 * M_PI * rapid_rng_uniform(&r);
    }
    qsort(*tr + first, (size_t)(*ntr - first), sizeof **tr, by_host);
    for (i = first; i < *ntr; i++)
        (*tr)[i].id = id0++;
    return 0;
}

double sim_transient_mag(const sim_transient *t, int fid, double mjd)
{
    const rapid_filter *f = rapid_filter_by_fid(fid);
    double ratio, m, dt;

    if (!t || !f || !isfinite(mjd))
        return 99.0;
    ratio = f->lambda_um / rapid_filter_by_fid(REF_FID)->lambda_um;
    if (t->kind == SIM_VARIABLE) {
        if (!(t->period > 0))
            return 99.0;
        /* Pulsators vary more at shorter wavelengths. */
        m = t->peak_mag[fid - 1] +
            t->amplitude / sqrt(ratio) *
                sin(2 * M_PI * fmod(mjd / t->period, 1.0) + t->phase);
    } else if (t->sntype > 0) {
        m = sim_sn_mag(t->sntype, t->z, t->mu, t->mabs, f->lambda_um,
                       mjd - t->mjd_peak);
        if (!isfinite(m))
            return 99.0;
    } else {
        dt = mjd - t->mjd_peak;
        if (!(t->rise > 0) || !(t->fall > 0) || !(dt > -t->rise))
            return 99.0;
        if (dt < 0) {
            /* Smooth rise from explosion (flux and slope 0) to peak. */
            double x = 1 + dt / t->rise, fl = x * x * (3 - 2 * x);
            m = t->peak_mag[fid - 1] - 2.5 * log10(fl);
        } else {
            /* Exponential decline, slower in redder bands, rounded over
             * the first days after peak. */
            double fall = t->fall * pow(ratio, 0.4);
            m = t->peak_mag[fid - 1] +
                2.5 / LN10 * dt * dt / ((dt + SN_ROUND_DAYS) * fall);
        }
    }
    return m > 35.0 ? 99.0 : m;
}

const sim_transient *sim_scene_variable(const rapid_sim_scene *s,
                                        int64_t star_id)
{
    int64_t lo, hi;

    if (!s)
        return NULL;
    lo = s->var0;
    hi = s->ntr;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->tr[mid].host < star_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->ntr && s->tr[lo].host == star_id ? &s->tr[lo] : NULL;
}

/* ----------------------------------------------------------- the scene */

static int check_scene_config(const rapid_sim_config *c,
                              const rapid_sim_pointing *p, int np,
                              rapid_err *err)
{
    if (!c || !p || np < 1)
        return rapid_fail(err, RAPID_E_ARG,
                          "scene: needs a configuration and at least one "
                          "pointing (got %d)", np);
    if (c->nscas < 1 || c->nscas > RAPID_NSCA || c->size < 1)
        return rapid_fail(err, RAPID_E_RANGE,
                          "scene: %d detectors of %d pixels; want 1..%d "
                          "detectors of at least 1 pixel",
                          c->nscas, c->size, RAPID_NSCA);
    if (!(c->star_density >= 0) || !(c->galaxy_density >= 0) ||
        !isfinite(c->mag_bright) ||
        !(c->sn_rate >= 0) || !(c->variable_fraction >= 0) ||
        !isfinite(c->mag_faint) || !isfinite(c->star_density) ||
        !isfinite(c->galaxy_density) || !isfinite(c->sn_rate))
        return rapid_fail(err, RAPID_E_ARG,
                          "scene: densities and rates must be finite and >= 0 "
                          "(stars %g, galaxies %g, supernova rate %g, "
                          "variables %g) and mag_faint finite (%g)",
                          c->star_density, c->galaxy_density, c->sn_rate,
                          c->variable_fraction, c->mag_faint);
    return 0;
}

/* The survey's time span, for the supernova explosions. */
static void survey_span(const rapid_sim_config *c, const rapid_sim_pointing *p,
                        int np, double *t0, double *t1)
{
    int k;

    (void)c;
    *t0 = p[0].mjd;
    *t1 = p[0].mjd + p[0].exptime / 86400.0;
    for (k = 1; k < np; k++) {
        *t0 = fmin(*t0, p[k].mjd);
        *t1 = fmax(*t1, p[k].mjd + p[k].exptime / 86400.0);
    }
}

static int make_transients(const rapid_sim_config *c,
                           const rapid_sim_pointing *p, int np,
                           const sky_cap *cap, rapid_sim_scene *s,
                           rapid_err *err)
{
    sn_context *x = calloc(1, sizeof *x);
    rapid_rng r;
    int64_t nsn = 0, k, cap_tr, id0 = s->nsrc + 1;
    double expect = 0;
    int rc = 0;

    if (!x)
        return rapid_fail(err, RAPID_E_NOMEM, "scene: out of memory");
    x->c = c;
    x->cap = cap;
    x->src = s->src;
    x->nsrc = s->nsrc;
    survey_span(c, p, np, &x->t0, &x->t1);
    if (c->sn_rate > 0) {
        sn_expected(x);
        expect = x->cum[SIM_SN_NTYPES * SN_NZ - 1];
    }
    if (expect > 1e8) {
        rc = rapid_fail(err, RAPID_E_RANGE, "scene: %.3g supernovae expected "
                        "over %.3g deg^2; lower the supernova rate",
                        expect, cap->area);
        goto cleanup;
    }
    rapid_rng_derive(&r, c->seed, STREAM_SN, UINT64_MAX, 0);
    nsn = expect > 0 ? (int64_t)rapid_rng_poisson(&r, expect) : 0;
    cap_tr = nsn + 1024;
    if (sort_galaxies(x) != 0 ||
        !(s->tr = malloc((size_t)cap_tr * sizeof *s->tr))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "scene: out of memory for %lld "
                        "supernovae", (long long)nsn);
        goto cleanup;
    }
    /* every draw has a stream of its own (by k); those that never get
     * bright enough to matter are dropped, the rest numbered in order */
    s->ntr = 0;
    for (k = 0; k < nsn; k++)
        if (make_sn(x, k, &s->tr[s->ntr])) {
            s->tr[s->ntr].id = id0 + s->ntr;
            s->ntr++;
        }
    s->var0 = s->ntr;
    if (make_variables(c, s, id0 + s->ntr, &s->tr, &s->ntr, &cap_tr) != 0)
        rc = rapid_fail(err, RAPID_E_NOMEM,
                        "scene: out of memory for the variable stars");
cleanup:
    free(x->gal);
    free(x);
    return rc;
}

/* The expected numbers of stars and galaxies in the cap. */
static void expected_counts(const rapid_sim_config *c, const sky_cap *cap,
                            double *mu_s, double *mu_g)
{
    double gal_norm = GAL_DNDM24 / pow(10, GAL_SLOPE * 24.0);

    *mu_s = c->star_density * cap->area *
            star_count(c->mag_bright, c->mag_faint, NULL);
    *mu_g = c->galaxy_density * cap->area *
            power_law_count(gal_norm, GAL_SLOPE, GAL_BRIGHT, c->mag_faint);
}

/* How many stars and galaxies: Poisson deviates of the expected counts. */
static int source_counts(const rapid_sim_config *c, const sky_cap *cap,
                         int64_t *ns, int64_t *ng, rapid_err *err)
{
    rapid_rng r;
    double mu_s, mu_g;

    expected_counts(c, cap, &mu_s, &mu_g);

    if (mu_s + mu_g > (double)MAX_SOURCES)
        return rapid_fail(err, RAPID_E_RANGE,
                          "scene: %.3g sources expected over %.3g deg^2, more "
                          "than %lld; lower the densities or mag_faint",
                          mu_s + mu_g, cap->area, (long long)MAX_SOURCES);
    rapid_rng_derive(&r, c->seed, STREAM_STARS, UINT64_MAX, 0);
    *ns = (int64_t)rapid_rng_poisson(&r, mu_s);
    rapid_rng_derive(&r, c->seed, STREAM_GALAXIES, UINT64_MAX, 0);
    *ng = (int64_t)rapid_rng_poisson(&r, mu_g);
    return 0;
}

int sim_scene_expected(const rapid_sim_config *c, const rapid_sim_pointing *p,
                       int np, double *nsources, double *ntransients,
                       double *area, rapid_err *err)
{
    sky_cap cap;
    double mu_s, mu_g;
    int rc;

    if ((rc = check_scene_config(c, p, np, err)) != 0 ||
        (rc = scene_cap(c, p, np, &cap, err)) != 0)
        return rc;
    expected_counts(c, &cap, &mu_s, &mu_g);
    *nsources = mu_s + mu_g;
    if (area)
        *area = cap.area;
    /* every supernova drawn (those never bright enough are dropped later)
     * and every star that may vary: an upper bound */
    *ntransients = c->variable_fraction * mu_s;
    if (c->sn_rate > 0) {
        sn_context *x = calloc(1, sizeof *x);
        if (!x)
            return rapid_fail(err, RAPID_E_NOMEM, "scene: out of memory");
        x->c = c;
        x->cap = &cap;
        survey_span(c, p, np, &x->t0, &x->t1);
        sn_expected(x);
        *ntransients += x->cum[SIM_SN_NTYPES * SN_NZ - 1];
        free(x);
    }
    return 0;
}

int rapid_sim_scene_make(const rapid_sim_config *c,
                         const rapid_sim_pointing *p, int np,
                         rapid_sim_scene **out, rapid_err *err)
{
    rapid_sim_scene *s = NULL;
    colour_tables ct;
    sky_cap cap;
    gen_ctx g;
    float *xy = NULL;
    int64_t ns = 0, ng = 0;
    int rc;

    if (!out)
        return rapid_fail(err, RAPID_E_ARG, "scene: NULL output");
    *out = NULL;
    if ((rc = check_scene_config(c, p, np, err)) != 0 ||
        (rc = scene_cap(c, p, np, &cap, err)) != 0)
        return rc;
    if (cap.radius > MAX_RADIUS)
        return rapid_fail(err, RAPID_E_RANGE,
                          "scene: the pointings spread over a circle of "
                          "radius %.1f deg; one scene covers at most %.0f",
                          cap.radius, MAX_RADIUS);
    colour_tables_init(&ct);
    if ((rc = source_counts(c, &cap, &ns, &ng, err)) != 0)
        return rc;
    if (!(s = calloc(1, sizeof *s)) ||
        !(s->src = calloc((size_t)(ns + ng ? ns + ng : 1), sizeof *s->src)) ||
        !(xy = malloc((size_t)(ns + ng ? ns + ng : 1) * 2 * sizeof *xy))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "scene: out of memory for %lld "
                        "sources", (long long)(ns + ng));
        goto cleanup;
    }
    s->nsrc = ns + ng;
    s->ra0 = cap.ra0;
    s->dec0 = cap.dec0;
    s->radius = cap.radius;
    memset(&g, 0, sizeof g);
    g.c = c;
    g.cap = &cap;
    g.ct = &ct;
    g.nstars = ns;
    g.src = s->src;
    g.xy = xy;
    {
        double m0 = fmax(c->mag_bright, STAR_BRIGHT), nb;
        double n = star_count(c->mag_bright, c->mag_faint, &nb);
        power_law_init(&g.stars, STAR_SLOPE, fmax(m0, STAR_BREAK),
                       c->mag_faint);
        power_law_init(&g.bright_stars, STAR_BRIGHT_SLOPE, m0,
                       fmin(STAR_BREAK, c->mag_faint));
        g.pbright = n > 0 ? nb / n : 0;
    }
    power_law_init(&g.galaxies, GAL_SLOPE, GAL_BRIGHT, c->mag_faint);
    if (make_sources(&g, s->nsrc) != 0 ||
        build_index(s, xy, zone_height(c, &cap)) != 0) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "scene: out of memory making "
                        "%lld sources", (long long)s->nsrc);
        goto cleanup;
    }
    if ((rc = make_transients(c, p, np, &cap, s, err)) != 0)
        goto cleanup;
    *out = s;
    s = NULL;
cleanup:
    free(xy);
    rapid_sim_scene_free(s);
    return rc;
}

void rapid_sim_scene_free(rapid_sim_scene *s)
{
    if (!s)
        return;
    free(s->src);
    free(s->tr);
    index_free(s->index);
    free(s->ra_f);
    free(s);
}

/* ----------------------------------------------------------- selection */

static int point_in_polygon(const double *px, const double *py, int n,
                            double x, double y)
{
    int i, j, in = 0;

    for (i = 0, j = n - 1; i < n; j = i++)
        if ((py[i] > y) != (py[j] > y) &&
            x < (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i])
            in = !in;
    return in;
}

static double segment_dist2(double ax, double ay, double bx, double by,
                            double x, double y)
{
    double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy, t = 0;

    if (l2 > 0)
        t = clamp(((x - ax) * dx + (y - ay) * dy) / l2, 0.0, 1.0);
    dx = ax + t * dx - x;
    dy = ay + t * dy - y;
    return dx * dx + dy * dy;
}

/* A gnomonic plane: its centre's RA and the sine and cosine of its Dec. */
typedef struct plane {
    double ra0, sd0, cd0;
} plane;

static void plane_init(plane *p, double ra0, double dec0)
{
    p->ra0 = ra0;
    p->sd0 = sin(dec0 * D2R);
    p->cd0 = cos(dec0 * D2R);
}

static int plane_project(const plane *p, double ra, double dec, double *x,
                         double *y)
{
    double da = (ra - p->ra0) * D2R, d = dec * D2R;
    double sd = sin(d), cd = cos(d), sa = sin(da), ca = cos(da);
    double z = p->sd0 * sd + p->cd0 * cd * ca;

    if (!(z > 1e-9))
        return RAPID_E_RANGE;
    *x = cd * sa / z;
    *y = (p->cd0 * sd - p->sd0 * cd * ca) / z;
    return 0;
}

/* A footprint grown by a margin.  The definition (what the exact test
 * decides) lives in the gnomonic plane of the footprint's centre: inside
 * the quadrilateral or within the margin of its edges there.  Edges are
 * great circles, straight in every gnomonic plane, so the same polygon in
 * the scene's plane, tested against the scene's float coordinates, decides
 * all but the sources right at the boundary without any trigonometry. */
typedef struct footprint {
    plane own;
    double px[4], py[4];         /* corners in the own plane, radians */
    double m;                    /* margin, radians */
    double reach;                /* degrees from the centre to look within */
    double sx[4], sy[4];         /* corners in the scene's plane */
    double mlo, mhi;             /* margin there, within distortion bounds */
    double slack;                /* float rounding of the scene's x, y */
    double xlo, xhi, ylo, yhi;   /* box of the grown polygon there */
} footprint;

static int footprint_init(footprint *f, const double ra[5],
                          const double dec[5], double margin, rapid_err *err)
{
    int k;

    plane_init(&f->own, ra[0], dec[0]);
    f->m = margin * D2R;
    f->reach = 0;
    for (k = 0; k < 4; k++) {
        if (!isfinite(ra[k + 1]) || !isfinite(dec[k + 1]) ||
            plane_project(&f->own, ra[k + 1], dec[k + 1], &f->px[k],
                          &f->py[k]) != 0)
            return rapid_fail(err, RAPID_E_ARG,
                              "scene selection: footprint corner %d (%g, %g) "
                              "is not usable around its centre (%g, %g)",
                              k + 1, ra[k + 1], dec[k + 1], ra[0], dec[0]);
        f->reach = fmax(f->reach, rapid_sky_distance(ra[0], dec[0], ra[k + 1],
                                                     dec[k + 1]));
    }
    /* Room for the margin and for rounding at the boundary. */
    f->reach += margin + 1e-9;
    return 0;
}

/* The polygon in the scene's plane.  Distances in two gnomonic planes
 * differ by factors within 1 +- ~tan^2 of the angle from their centres, so
 * the margin there is bracketed by [mlo, mhi].  RAPID_E_RANGE if the
 * footprint is too far from the scene to project (it then holds no
 * source). */
static int footprint_in_scene(footprint *f, const rapid_sim_scene *s,
                              const double ra[5], const double dec[5])
{
    plane sc;
    double t, k3;
    int k;

    plane_init(&sc, s->ra0, s->dec0);
    t = tan(fmin(89.0, rapid_sky_distance(s->ra0, s->dec0, ra[0], dec[0]) +
                           f->reach) * D2R);
    k3 = 3 * t * t + 1e-9;
    /* Floats round to 6e-8 of the largest coordinate, tan(radius). */
    f->slack = XY_SLACK + 3e-7 * tan(s->radius * D2R);
    f->mlo = f->m * (1 - k3);
    f->mhi = f->m * (1 + k3);
    for (k = 0; k < 4; k++)
        if (plane_project(&sc, ra[k + 1], dec[k + 1], &f->sx[k], &f->sy[k]))
            return RAPID_E_RANGE;
    f->xlo = f->xhi = f->sx[0];
    f->ylo = f->yhi = f->sy[0];
    for (k = 1; k < 4; k++) {
        f->xlo = fmin(f->xlo, f->sx[k]);
        f->xhi = fmax(f->xhi, f->sx[k]);
        f->ylo = fmin(f->ylo, f->sy[k]);
        f->yhi = fmax(f->yhi, f->sy[k]);
    }
    f->xlo -= f->mhi + f->slack;
    f->ylo -= f->mhi + f->slack;
    f->xhi += f->mhi + f->slack;
    f->yhi += f->mhi + f->slack;
    return 0;
}

static double polygon_dist2(const double *px, const double *py, double x,
                            double y)
{
    double d2 = INFINITY;
    int k;

    for (k = 0; k < 4; k++)
        d2 = fmin(d2, segment_dist2(px[k], py[k], px[(k + 1) % 4],
                                    py[(k + 1) % 4], x, y));
    return d2;
}

/* The exact test, in the footprint's own plane. */
static int footprint_holds(const footprint *f, double ra, double dec)
{
    double x, y;

    if (plane_project(&f->own, ra, dec, &x, &y) != 0)
        return 0;
    if (point_in_polygon(f->px, f->py, 4, x, y))
        return 1;
    return f->m > 0 && polygon_dist2(f->px, f->py, x, y) <= f->m * f->m;
}

/* The first cut from the scene's float coordinates: 1 in, 0 out, -1 too
 * close to the boundary to tell. */
static int footprint_quick(const footprint *f, double x, double y)
{
    double d2, lo;

    if (x < f->xlo || x > f->xhi || y < f->ylo || y > f->yhi)
        return 0;
    d2 = polygon_dist2(f->sx, f->sy, x, y);
    if (point_in_polygon(f->sx, f->sy, 4, x, y))
        return d2 > f->slack * f->slack ? 1 : -1;
    if (d2 > (f->mhi + f->slack) * (f->mhi + f->slack))
        return 0;
    lo = f->mlo - f->slack;
    return lo > 0 && d2 < lo * lo ? 1 : -1;
}

/* First source with dec >= d (the sources are sorted by dec). */
static int64_t lower_bound(const rapid_sim_scene *s, double d)
{
    int64_t lo = 0, hi = s->nsrc;

    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->src[mid].dec < d)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int push(int64_t **idx, int64_t *n, int64_t *cap, int64_t i)
{
    if (*n == *cap) {
        int64_t ncap = *cap ? 2 * *cap : 1024;
        int64_t *p = realloc(*idx, (size_t)ncap * sizeof *p);
        if (!p)
            return RAPID_E_NOMEM;
        *idx = p;
        *cap = ncap;
    }
    (*idx)[(*n)++] = i;
    return 0;
}

/* Selected sources as bits over the Dec band they must lie in, so that
 * zone-by-zone findings come out in index order. */
typedef struct marks {
    uint64_t *bits;
    int64_t lo, nwords;
} marks;

static int ctz64(uint64_t b)
{
#if defined(__GNUC__) && !defined(RAPID_PORTABLE)
    return __builtin_ctzll(b);
#else
    int k = 0;

    while (!(b & 1)) {
        b >>= 1;
        k++;
    }
    return k;
#endif
}

/* Without an index: every source of the Dec band, cut first by RA (the
 * float copy if there is one, with slack for its rounding). */
static void scan_band(const rapid_sim_scene *s, const footprint *f,
                      const double dec[5], int64_t hi, marks *m)
{
    double dra = 180.0, d;
    int64_t i;

    if (fabs(dec[0]) + f->reach < 90)
        dra = asin(fmin(1.0, sin(f->reach * D2R) / cos(dec[0] * D2R))) * R2D +
              RA_F_SLACK;
    for (i = m->lo; i < hi; i++) {
        /* Both RAs lie in [0, 360): one turn at most. */
        d = (s->ra_f ? s->ra_f[i] : s->src[i].ra) - f->own.ra0;
        if (d > 180)
            d -= 360;
        else if (d < -180)
            d += 360;
        if (fabs(d) <= dra && footprint_holds(f, s->src[i].ra, s->src[i].dec))
            m->bits[(i - m->lo) / 64] |= 1ull << ((i - m->lo) % 64);
    }
}

static int select_marks(const rapid_sim_scene *s, footprint *f,
                        const double ra[5], const double dec[5], marks *m,
                        rapid_err *err)
{
    const struct sim_scene_index *z = s->index;
    int64_t hi, e, i;
    int k, in;

    m->lo = lower_bound(s, dec[0] - f->reach);
    hi = lower_bound(s, nextafter(dec[0] + f->reach, INFINITY));
    m->nwords = (hi - m->lo + 63) / 64;
    if (!(m->bits = calloc((size_t)(m->nwords ? m->nwords : 1), sizeof *m->bits)))
        return rapid_fail(err, RAPID_E_NOMEM, "scene selection: out of memory");
    if (!z || footprint_in_scene(f, s, ra, dec) != 0) {
        scan_band(s, f, dec, hi, m);
        return 0;
    }
    for (k = zone_of(z, f->ylo); k <= zone_of(z, f->yhi); k++) {
        int64_t a = z->start[k], b = z->start[k + 1];
        while (a < b) { /* first entry of the zone with x >= xlo */
            int64_t mid = a + (b - a) / 2;
            if (z->x[mid] < f->xlo)
                a = mid + 1;
            else
                b = mid;
        }
        for (e = a; e < z->start[k + 1] && z->x[e] <= f->xhi; e++) {
            if (z->y[e] < f->ylo || z->y[e] > f->yhi ||
                !(in = footprint_quick(f, z->x[e], z->y[e])))
                continue;
            i = z->i[e];
            if (in < 0 && !footprint_holds(f, s->src[i].ra, s->src[i].dec))
                continue;
            /* A selected source lies within reach of the centre, so in the
             * band; anything else is a bug worth hearing about. */
            if (i < m->lo || i >= hi) {
                free(m->bits);
                m->bits = NULL;
                return rapid_fail(err, RAPID_E_RANGE, "scene selection: "
                                  "source %lld outside the Dec band "
                                  "%lld..%lld", (long long)i,
                                  (long long)m->lo, (long long)hi);
            }
            m->bits[(i - m->lo) / 64] |= 1ull << ((i - m->lo) % 64);
        }
    }
    return 0;
}

int64_t sim_scene_select(const rapid_sim_scene *s, const double ra[5],
                         const double dec[5], double margin, int64_t **idx,
                         rapid_err *err)
{
    footprint f;
    marks sel = {NULL, 0, 0};
    int64_t w, n = 0, cap = 0;
    uint64_t bits;
    int rc;

    if (!idx)
        return rapid_fail(err, RAPID_E_ARG, "scene selection: NULL output");
    *idx = NULL;
    if (!s || !ra || !dec || !(margin >= 0) || !isfinite(margin) ||
        !isfinite(ra[0]) || !(fabs(dec[0]) <= 90))
        return rapid_fail(err, RAPID_E_ARG,
                          "scene selection: bad scene, footprint or margin %g",
                          margin);
    if ((rc = footprint_init(&f, ra, dec, margin, err)) != 0)
        return rc;
    if (s->nsrc == 0 || (s->index && rapid_sky_distance(s->ra0, s->dec0, ra[0],
                                                        dec[0]) >
                                         s->radius + f.reach))
        return 0; /* nowhere near the scene */
    if ((rc = select_marks(s, &f, ra, dec, &sel, err)) != 0)
        return rc;
    for (w = 0; w < sel.nwords; w++)
        for (bits = sel.bits[w]; bits; bits &= bits - 1)
            if (push(idx, &n, &cap, sel.lo + 64 * w + ctz64(bits)) != 0) {
                free(sel.bits);
                free(*idx);
                *idx = NULL;
                return rapid_fail(err, RAPID_E_NOMEM,
                                  "scene selection: out of memory");
            }
    free(sel.bits);
    return n;
}

/* --------------------------------------------------------------- truth */

int rapid_sim_scene_truth(const rapid_sim_scene *s, rapid_table *t,
                          rapid_err *err)
{
    int64_t *id = NULL;
    int32_t *type = NULL;
    double *ra = NULL, *dec = NULL;
    float *mag[RAPID_NFILTERS], *sn = NULL, *re = NULL, *q = NULL, *pa = NULL;
    char name[32];
    int64_t i, row;
    int f, ok = 1;

    if (!s || !t)
        return rapid_fail(err, RAPID_E_ARG, "scene truth: NULL %s",
                          s ? "table" : "scene");
    if (rapid_table_init(t, (long)s->nsrc) != 0)
        return rapid_fail(err, RAPID_E_ARG, "scene truth: bad row count");
    ok = (id = rapid_table_add_i64(t, "id", NULL)) &&
         (type = rapid_table_add_i32(t, "type", NULL)) &&
         (ra = rapid_table_add_f64(t, "ra", "deg")) &&
         (dec = rapid_table_add_f64(t, "dec", "deg"));
    for (f = 0; ok && f < RAPID_NFILTERS; f++) {
        snprintf(name, sizeof name, "mag_%s", rapid_filter_by_fid(f + 1)->name);
        ok = (mag[f] = rapid_table_add_f32(t, name, "mag")) != NULL;
    }
    ok = ok && (sn = rapid_table_add_f32(t, "sersic_n", NULL)) &&
         (re = rapid_table_add_f32(t, "r_e", "arcsec")) &&
         (q = rapid_table_add_f32(t, "q", NULL)) &&
         (pa = rapid_table_add_f32(t, "pa", "deg"));
    if (!ok) {
        rapid_table_release(t);
        return rapid_fail(err, RAPID_E_NOMEM,
                          "scene truth: out of memory for %lld rows",
                          (long long)s->nsrc);
    }
    /* Rows in id order (ids are 1..nsrc), not in the scene's dec order. */
    for (i = 0; i < s->nsrc; i++) {
        const sim_source *src = &s->src[i];
        row = src->id - 1;
        if (row < 0 || row >= s->nsrc) {
            rapid_table_release(t);
            return rapid_fail(err, RAPID_E_RANGE,
                              "scene truth: source id %lld outside 1..%lld",
                              (long long)src->id, (long long)s->nsrc);
        }
        id[row] = src->id;
        type[row] = src->type;
        ra[row] = src->ra;
        dec[row] = src->dec;
        for (f = 0; f < RAPID_NFILTERS; f++)
            mag[f][row] = src->mag[f];
        sn[row] = src->sersic_n;
        re[row] = src->r_e;
        q[row] = src->q;
        pa[row] = src->pa;
    }
    return 0;
}
