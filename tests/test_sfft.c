/* test_sfft.c - the kernel fit on cross-convolved images (rapid/diff.h).
 *  - synthetic arrays whose kernel is known: a science image made from
 *    the reference by a kernel that varies linearly across the image, on
 *    a background: the fit finds the kernel, its flux and the background;
 *  - simulated pairs (the project's simulator: a science visit against a
 *    deeper visit of the same sky, resampled onto its pixels): where
 *    nothing changed the decorrelated difference over its uncertainty is
 *    unit normal; point sources put into the science image by the test
 *    measure their flux on it with P_D; the kernel's flux normalisation is
 *    the scale between the two images; D's noise between neighbours and
 *    in 3 x 3 apertures; a science PSF that is broader on one side leaves
 *    bright isolated static stars within 3 sigma with the quadratic kernel
 *    (and its errors-in-variables correction) and not with the constant
 *    one;
 *  - too few stamps, a singular or ill-conditioned fit and bad arguments
 *    are refused with a message and no outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"
#include "rapid/dq.h"
#include "rapid/rng.h"
#include "rapid/sim.h"
#include "testutil.h"

#define SX 256
#define SY 256
#define NP 21
#define HW 9
#define KS (2 * HW + 1)
#define PSIG 0.7           /* Gaussian PSF: FWHM 1.65 px, as Roman's */

static void gauss(float *p, int n, double sigma, double dx, double dy)
{
    int h = n / 2, i, j;
    double s = 0;

    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double x = i - h - dx, y = j - h - dy;
            p[j * n + i] = (float)exp(-(x * x + y * y) / (2 * sigma * sigma));
            s += p[j * n + i];
        }
    for (i = 0; i < n * n; i++)
        p[i] = (float)(p[i] / s);
}

/* f times a Gaussian of width sigma centred at (x0, y0) added to img */
static void add_gauss(float *img, int nx, int ny, double sigma, double x0,
                      double y0, double f)
{
    int i, j, r = (int)ceil(6 * sigma);

    for (j = (int)y0 - r; j <= (int)y0 + r; j++)
        for (i = (int)x0 - r; i <= (int)x0 + r; i++)
            if (i >= 0 && i < nx && j >= 0 && j < ny) {
                double x = i - x0, y = j - y0;
                img[j * nx + i] += (float)(f / (2 * M_PI * sigma * sigma) *
                                           exp(-(x * x + y * y) /
                                               (2 * sigma * sigma)));
            }
}

typedef struct synth {
    float n[SX * SY], r[SX * SY], rt[SX * SY], vn[SX * SY], vr[SX * SY];
    float p[NP * NP];
    float k0[KS * KS], k1[KS * KS];
} synth;

/* out += s(x) (k x img)(x) for a KS x KS kernel k, with s = 1 or u */
static void convolve_add(const float *img, const float *k, int with_u,
                         float *out)
{
    int x, y, i, j;

    for (y = HW; y < SY - HW; y++)
        for (x = HW; x < SX - HW; x++) {
            double s = 0, u = (x - (SX - 1) / 2.0) / (SX / 2.0);
            for (j = -HW; j <= HW; j++)
                for (i = -HW; i <= HW; i++)
                    s += k[(j + HW) * KS + i + HW] * img[(y - j) * SX + x - i];
            out[y * SX + x] += (float)(with_u ? u * s : s);
        }
}

/* The reference: Gaussian stars on white noise; the science image: the
 * noiseless reference through K(u) = K0 + u K1, plus a background 2 +
 * 0.5 u - 0.3 v, plus noise.  K1 changes the kernel's flux by 3 % and its
 * width a little from edge to edge: on a 256 px image that is as fast per
 * pixel as four times as much across a 1024 px one, and the fit takes the
 * kernel as constant over a stamp. */
static void make_synth(synth *s, uint64_t seed)
{
    rapid_rng g;
    float t[KS * KS];
    int i, x, y;

    memset(s, 0, sizeof *s);
    rapid_rng_seed(&g, seed);
    gauss(s->p, NP, PSIG, 0, 0);
    gauss(s->k0, KS, 1.0, 0, 0);
    gauss(t, KS, 1.4, 0.3, 0);
    for (i = 0; i < KS * KS; i++) {
        s->k1[i] = (float)(0.05 * (t[i] - s->k0[i]) + 0.02 * s->k0[i]);
        s->k0[i] = (float)(1.3 * s->k0[i]);
    }
    for (i = 0; i < 260; i++) {
        double x0 = 20 + (SX - 40) * rapid_rng_uniform(&g);
        double y0 = 20 + (SY - 40) * rapid_rng_uniform(&g);
        double f = 3000 * exp(2 * rapid_rng_uniform(&g));
        add_gauss(s->rt, SX, SY, PSIG, x0, y0, f);
    }
    convolve_add(s->rt, s->k0, 0, s->n);
    convolve_add(s->rt, s->k1, 1, s->n);
    for (y = 0; y < SY; y++)
        for (x = 0; x < SX; x++) {
            double u = (x - (SX - 1) / 2.0) / (SX / 2.0);
            double v = (y - (SY - 1) / 2.0) / (SY / 2.0);
            i = y * SX + x;
            s->n[i] += (float)(2 + 0.5 * u - 0.3 * v + rapid_rng_normal(&g));
            s->r[i] = (float)(s->rt[i] + 0.05 * rapid_rng_normal(&g));
            s->vn[i] = 1;
            s->vr[i] = 0.05f * 0.05f;
        }
}

static void synth_in(rapid_sfft_in *in, const synth *s)
{
    memset(in, 0, sizeof *in);
    in->nx = SX;
    in->ny = SY;
    in->n = s->n;
    in->r = s->r;
    in->vn = s->vn;
    in->vr = s->vr;
    in->pn = in->pr = s->p;
    in->npn = in->npr = NP;
    in->s0 = 1;
}

static double ksum(const float *k)
{
    double s = 0;
    int i;

    for (i = 0; i < KS * KS; i++)
        s += k[i];
    return s;
}

/* The kernel found is the kernel put in: K0 and K1 pixel by pixel within
 * 1 % of K0's peak, the v term nothing, the flux at the centre 1.3 within
 * 0.2 %; the background's terms. */
static void test_known_kernel(void **state)
{
    static synth s;
    rapid_sfft_in in;
    rapid_sfft_opts o;
    rapid_sfft_out out;
    rapid_err err = RAPID_ERR_INIT;
    double e0 = 0, e1 = 0, e2 = 0, peak = 0;
    int i;

    (void)state;
    make_synth(&s, 7);
    synth_in(&in, &s);
    rapid_sfft_opts_init(&o);
    o.order = 1;
    o.bg_order = 1;
    assert_ok(rapid_sfft(&in, &o, &out, &err), err);
    for (i = 0; i < KS * KS; i++) {
        e0 = fmax(e0, fabs(out.kernel[i] - s.k0[i]));
        e1 = fmax(e1, fabs(out.kernel[KS * KS + i] - s.k1[i]));
        e2 = fmax(e2, fabs(out.kernel[2 * KS * KS + i]));
        peak = fmax(peak, s.k0[i]);
    }
    print_message("known kernel: %d stamps (%d rejected, %ld px), chi2r %.3f, "
                  "cond %.3g; sum K0 %.5f (1.3), sum K1 %.5f (%.5f); max "
                  "errors K0 %.2e K1 %.2e Kv %.2e of peak %.3f; background "
                  "%.3f %.3f %.3f\n", out.nstamps, out.nrejected, out.npix,
                  out.chi2r, out.cond, out.ksum,
                  ksum(out.kernel + KS * KS), ksum(s.k1), e0, e1, e2, peak,
                  out.bg[0], out.bg[1], out.bg[2]);
    assert_string_equal(out.basis, "delta");
    assert_int_equal(out.nterms, 3);
    assert_true(fabs(out.ksum / 1.3 - 1) < 0.002);
    assert_true(e0 < 0.01 * peak && e1 < 0.01 * peak && e2 < 0.01 * peak);
    assert_true(fabs(ksum(out.kernel + KS * KS) - ksum(s.k1)) < 0.003);
    assert_true(fabs(out.bg[0] - 2) < 0.05 && fabs(out.bg[1] - 0.5) < 0.05 &&
                fabs(out.bg[2] + 0.3) < 0.05);
    assert_true(fabs(out.chi2r - 1) < 0.1);
    rapid_sfft_out_release(&out);
}


/* Two threads (FFTW's and the BLAS's) make the same fit and the same
 * differences as one, to rounding (which the kernel's solution, with a
 * condition number near 1e7, brings to 1e-3 of sigma_D). */
static void test_threads(void **state)
{
    static synth s;
    rapid_sfft_in in;
    rapid_sfft_opts o;
    rapid_sfft_out a, b;
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0;
    int i;

    (void)state;
    make_synth(&s, 17);
    synth_in(&in, &s);
    rapid_sfft_opts_init(&o);
    o.order = 1;
    assert_ok(rapid_sfft(&in, &o, &a, &err), err);
    o.nthreads = 2;
    assert_ok(rapid_sfft(&in, &o, &b, &err), err);
    assert_int_equal(a.nstamps, b.nstamps);
    assert_true(fabs(a.ksum - b.ksum) < 1e-6 * a.ksum);
    for (i = 0; i < SX * SY; i++)
        if (isfinite(a.d[i]))
            worst = fmax(worst, fabs(a.d[i] - b.d[i]) / a.unc[i]);
    print_message("  1 and 2 threads: D differs by %.2g sigma at most; "
                  "%.3f s and %.3f s in the fit\n", worst, a.sec_fit,
                  b.sec_fit);
    assert_true(worst < 1e-2);
    rapid_sfft_out_release(&a);
    rapid_sfft_out_release(&b);
}

/* ------------------------------------------------- simulated pairs */

#define SIMN 1024
#define PSFN 31
#define REF_UNITS 0.8      /* the reference in units 0.8 x the science's */

typedef struct simpair {
    rapid_science sci;
    rapid_wcs sw, rw;
    float *ref, *refunc;
    rapid_image psf_sci, psf_ref;
    rapid_psf_field fsci;
    rapid_diff_pair p;
    double t, gain;
} simpair;

/* An L2 rendering as rapid_science holds it: DN/s, 1 sigma, unusable
 * pixels NaN. */
static void to_rate(const rapid_image *img, const rapid_image *e,
                    const rapid_image_u32 *dq, double t, double units,
                    float *rate, float *unc)
{
    size_t i, n = (size_t)img->nx * img->ny;

    for (i = 0; i < n; i++) {
        int bad = rapid_dq_unusable(dq->data[i]) || !isfinite(img->data[i]);
        rate[i] = bad ? NAN : (float)(units * img->data[i] / t);
        unc[i] = bad ? NAN : (float)(units * e->data[i] / t);
    }
}

static void render(const rapid_sim_config *c, const rapid_sim_scene *sc,
                   const rapid_sim_pointing *pt, const rapid_psf_field *f,
                   double units, float *rate, float *unc, rapid_wcs *w)
{
    rapid_image img = RAPID_IMAGE_INIT, e = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_sim_render_l2(c, sc, pt, 1, f, &img, &e, &dq, NULL, &err),
              err);
    assert_ok(rapid_wcs_from_header(w, &img.hdr, &err), err);
    to_rate(&img, &e, &dq, pt->exptime, units, rate, unc);
    rapid_image_release(&img);
    rapid_image_release(&e);
    rapid_image_u32_release(&dq);
}

/* Visit 1 of a simulated field against a deeper exposure of the same
 * sky (the reference, in other units: REF_UNITS), prepared on the
 * science pixels. */
static void sim_pair(simpair *s, uint64_t seed, double offset,
                     int sci_noiseless)
{
    rapid_sim_config c;
    rapid_sim_pointing *pt = NULL, deep;
    rapid_sim_scene *sc = NULL;
    rapid_psf_field fref;
    rapid_err err = RAPID_ERR_INIT;
    rapid_diff_ref r;
    size_t n = (size_t)SIMN * SIMN;

    memset(s, 0, sizeof *s);
    rapid_sim_config_init(&c);
    c.seed = seed;
    c.size = SIMN;
    c.nscas = 1;
    c.epochs = 2;
    c.star_density = 12;    /* some 200 stamps on 1024^2 */
    c.sn_rate = 0;           /* nothing changes between the visits */
    c.variable_fraction = 0;
    c.cosmic_rays = 0;
    assert_int_equal(rapid_sim_plan(&c, &pt, &err), 2);
    assert_ok(rapid_sim_scene_make(&c, pt, 2, &sc, &err), err);
    assert_ok(rapid_psf_field_make(&fref, pt[0].filter, 1, SIMN, SIMN, NULL,
                                   &err), err);
    assert_ok(rapid_psf_field_make(&s->fsci, pt[1].filter, 1, SIMN, SIMN,
                                   NULL, &err), err);
    assert_ok(rapid_image_alloc(&s->sci.rate, SIMN, SIMN, 0, &err), err);
    assert_ok(rapid_image_alloc(&s->sci.unc, SIMN, SIMN, 0, &err), err);
    s->ref = malloc(n * sizeof *s->ref);
    s->refunc = malloc(n * sizeof *s->refunc);
    assert_true(s->ref && s->refunc);
    c.with_noise = !sci_noiseless;
    render(&c, sc, &pt[1], &s->fsci, 1.0, s->sci.rate.data, s->sci.unc.data,
           &s->sw);
    c.with_noise = 1;
    /* the reference: the science pointing moved by about (offset,
     * offset / 2) px, its own noise, four times the exposure */
    deep = pt[1];
    deep.id += 1000;
    deep.exptime *= 4;
    deep.ra += offset * 0.11 / 3600 / cos(deep.dec * M_PI / 180);
    deep.dec += offset * 0.5 * 0.11 / 3600;
    render(&c, sc, &deep, &fref, REF_UNITS, s->ref, s->refunc, &s->rw);
    s->t = s->sci.exptime = pt[1].exptime;
    s->gain = s->sci.gain = 1; /* DN/s in the sums below: electrons/DN */
    assert_ok(rapid_psf_field_image(&s->fsci, PSFN, &s->psf_sci, &err), err);
    assert_ok(rapid_psf_field_image(&fref, PSFN, &s->psf_ref, &err), err);
    r = (rapid_diff_ref){s->ref, NULL, s->refunc, SIMN, SIMN, &s->rw,
                         1 / REF_UNITS};
    assert_ok(rapid_diff_prepare(&s->sci, &s->sw, &r, &s->p, &err), err);
    rapid_psf_field_release(&fref);
    rapid_sim_scene_free(sc);
    free(pt);
}

static void sim_release(simpair *s)
{
    rapid_diff_pair_release(&s->p);
    rapid_science_release(&s->sci);
    rapid_wcs_release(&s->sw);
    rapid_wcs_release(&s->rw);
    free(s->ref);
    free(s->refunc);
    rapid_image_release(&s->psf_sci);
    rapid_image_release(&s->psf_ref);
    rapid_psf_field_release(&s->fsci);
}

/* Pixels within r of anything above 3 sigma in the (deep) reference:
 * sources, however faint. */
static unsigned char *source_mask(const simpair *s, int r)
{
    size_t n = (size_t)SIMN * SIMN;
    unsigned char *m = calloc(n, 1);
    float *bk = malloc(n * sizeof *bk);
    int x, y, i, j;

    assert_true(m && bk);
    rapid_background_fill(&s->p.bkg_ref, bk);
    for (y = 0; y < SIMN; y++)
        for (x = 0; x < SIMN; x++) {
            size_t k = (size_t)y * SIMN + x;
            if (!(s->p.ref.data[k] - bk[k] > 3 * s->p.unc.data[k]))
                continue;
            for (j = y - r; j <= y + r; j++)
                for (i = x - r; i <= x + r; i++)
                    if (i >= 0 && j >= 0 && i < SIMN && j < SIMN)
                        m[(size_t)j * SIMN + i] |= 1;
        }
    free(bk);
    return m;
}

/* PSF-weighted least-squares flux at integer (x0, y0). */
static double psf_flux(const float *d, const float *unc, const float *psf,
                       int n, int x0, int y0)
{
    int h = n / 2, i, j;
    double num = 0, den = 0;

    for (j = -h; j <= h; j++)
        for (i = -h; i <= h; i++) {
            size_t k = (size_t)(y0 + j) * SIMN + (size_t)(x0 + i);
            double p = psf[(j + h) * n + i + h], w;
            if (!isfinite(d[k]) || !isfinite(unc[k]))
                continue;
            w = 1 / ((double)unc[k] * unc[k]);
            num += p * d[k] * w;
            den += p * p * w;
        }
    return num / den;
}

/* Point sources put into the science image by the test: at whole pixels
 * near the centre (where the science PSF is the PSF file's), S/N 100-400
 * on D, with their photon noise in the image and its uncertainty. */
#define NINJ 8
static const double inj_xy[NINJ][2] = {
    {430, 440}, {520, 455}, {600, 470}, {455, 530},
    {575, 545}, {440, 610}, {530, 600}, {610, 615}};
static const double inj_flux[NINJ] = {20, 25, 30, 40, 50, 60, 80, 100};

/* mask NULL: add the sources to the science image; else mark their
 * pixels in mask. */
static void inject(simpair *s, unsigned char *mask)
{
    float psf[31 * 31];
    rapid_rng g;
    int k, i, j, x0, y0;

    rapid_rng_seed(&g, 99);
    for (k = 0; k < NINJ; k++) {
        rapid_psf_field_stamp(&s->fsci, inj_xy[k][0], inj_xy[k][1], 15, psf,
                              &x0, &y0);
        for (j = 0; j < 31; j++)
            for (i = 0; i < 31; i++) {
                size_t q = (size_t)(y0 + j) * SIMN + (size_t)(x0 + i);
                double add = inj_flux[k] * psf[j * 31 + i], var;
                if (mask) {
                    if (abs(i - 15) <= 6 && abs(j - 15) <= 6)
                        mask[q] = 1;
                    continue;
                }
                if (!isfinite(s->sci.rate.data[q]) || !(add > 0))
                    continue;
                var = add / s->t; /* photons: (DN/s) / s, gain 1 */
                s->sci.rate.data[q] += (float)(add + sqrt(var) *
                                                     rapid_rng_normal(&g));
                s->sci.unc.data[q] = (float)sqrt(
                    (double)s->sci.unc.data[q] * s->sci.unc.data[q] + var);
            }
    }
}

static void inject_check(const simpair *s, const rapid_sfft_out *out)
{
    int k;

    for (k = 0; k < NINJ; k++) {
        int x = (int)inj_xy[k][0], y = (int)inj_xy[k][1], i, j;
        double f = psf_flux(out->d, out->unc, out->pd, out->npd, x, y);
        double var = 0, snr;
        for (j = -out->npd / 2; j <= out->npd / 2; j++)
            for (i = -out->npd / 2; i <= out->npd / 2; i++) {
                double p = out->pd[(j + out->npd / 2) * out->npd + i +
                                   out->npd / 2];
                double u = out->unc[(size_t)(y + j) * SIMN + (size_t)(x + i)];
                if (isfinite(u))
                    var += p * p / (u * u);
            }
        snr = f * sqrt(var);
        print_message("  injected %5.1f DN/s at (%4d, %4d): measured %7.3f "
                      "(%+.2f %%), S/N %.0f\n", inj_flux[k], x, y, f,
                      100 * (f / inj_flux[k] - 1), snr);
        assert_true(snr > 50);
        assert_true(fabs(f / inj_flux[k] - 1) < 0.02);
    }
    (void)s;
}

static void sfft_sim(const simpair *s, const rapid_sfft_opts *o,
                     rapid_sfft_out *out)
{
    rapid_err err = RAPID_ERR_INIT;
    assert_ok(rapid_diff_sfft(&s->sci, &s->p, s->psf_sci.data, PSFN,
                              s->psf_ref.data, PSFN, o, out, &err), err);
    print_message("  order %d: %d stamps of %d (%d rejected, %ld px), chi2r "
                  "%.3f, cond %.3g, sum K %.4f (scale %.4f from %s), sigma_n "
                  "%.4f sigma_r %.4f; errors in the variables: %d steps; "
                  "kernel's own error %.4f (centre) %.4f (edge)\n",
                  out->order, out->nstamps, out->ncandidates, out->nrejected,
                  out->npix, out->chi2r, out->cond, out->ksum,
                  s->p.match.scale, s->p.match.from, out->sigma_n,
                  out->sigma_r, out->eiv_steps, out->kerr_centre,
                  out->kerr_edge);
    assert_true(o && !o->eiv ? out->eiv_steps == 0 : out->eiv_steps >= 1);
    assert_true(out->kerr_centre > 0 && out->kerr_edge >= out->kerr_centre);
}

/* Is D's noise white?  On source-free pixels (mask 0): the correlation
 * of D / sigma_D between neighbours at lags (1, 0), (0, 1), (1, 1) into
 * r[3]; and the robust scatter of the flux in 3 x 3 px apertures (every
 * third pixel, whole apertures source-free) over its error taken as
 * white (the pixels' sigma_D added in quadrature), which white noise
 * makes 1, into *ap. */
static void whiteness(const rapid_sfft_out *out, const unsigned char *mask,
                      double r[3], double *ap)
{
    static const int lag[3][2] = {{1, 0}, {0, 1}, {1, 1}};
    size_t n = (size_t)SIMN * SIMN, m = 0;
    double s0 = 0, sk[3] = {0}, med, sig;
    long c0 = 0, ck[3] = {0};
    float *a = malloc((n / 9 + 1) * sizeof *a);
    int x, y, k, i, j;

    assert_non_null(a);
    for (y = 0; y < SIMN - 1; y++)
        for (x = 0; x < SIMN - 1; x++) {
            size_t p = (size_t)y * SIMN + x;
            double z = out->d[p] / out->unc[p];
            if (mask[p] || !isfinite(z))
                continue;
            s0 += z * z, c0++;
            for (k = 0; k < 3; k++) {
                size_t q = p + (size_t)lag[k][1] * SIMN + (size_t)lag[k][0];
                double zq = out->d[q] / out->unc[q];
                if (!mask[q] && isfinite(zq))
                    sk[k] += z * zq, ck[k]++;
            }
        }
    for (k = 0; k < 3; k++)
        r[k] = (sk[k] / ck[k]) / (s0 / c0);
    for (y = 1; y < SIMN - 1; y += 3)
        for (x = 1; x < SIMN - 1; x += 3) {
            double f = 0, v = 0;
            int ok = 1;
            for (j = -1; j <= 1 && ok; j++)
                for (i = -1; i <= 1 && ok; i++) {
                    size_t q = (size_t)(y + j) * SIMN + (size_t)(x + i);
                    ok = !mask[q] && isfinite(out->d[q]) &&
                         isfinite(out->unc[q]);
                    f += out->d[q];
                    v += (double)out->unc[q] * out->unc[q];
                }
            if (ok)
                a[m++] = (float)(f / sqrt(v));
        }
    assert_true(m > 1000);
    test_robust(a, NULL, m, &med, &sig);
    *ap = sig;
    free(a);
}

/* Where nothing changed, D / sigma_D is unit normal (robust sigma 1 +-
 * 0.1, median within 0.05) on source-free pixels; point sources put into
 * the science image measure their fluxes on D with P_D within 2 %; the
 * kernel's flux is the scale between the images (1 / REF_UNITS) within
 * 1 %, as the gain matching says; P_D has unit sum; no data where the
 * reference has none. */
static void test_sim_noise_flux_scale(void **state)
{
    static simpair s;
    rapid_sfft_out out;
    unsigned char *mask;
    float *z;
    double med, sig, sum = 0;
    size_t i, n = (size_t)SIMN * SIMN, m, nan = 0;

    (void)state;
    sim_pair(&s, 11, 3.3, 0);
    inject(&s, NULL);
    sfft_sim(&s, NULL, &out);
    z = malloc(n * sizeof *z);
    assert_non_null(z);
    mask = source_mask(&s, 4);
    inject(&s, mask); /* their pixels masked too */
    inject_check(&s, &out);
    for (i = 0; i < n; i++) {
        z[i] = out.d[i] / out.unc[i];
        if (!(s.p.cov.data[i] >= 0.5) || !isfinite(s.sci.rate.data[i])) {
            assert_true(isnan(out.d[i]) && isnan(out.unc[i]) &&
                        isnan(out.cconv[i]));
            nan++;
        }
    }
    m = test_robust(z, mask, n, &med, &sig);
    assert_true(m > 1000);
    print_message("  D / sigma_D on %zu source-free pixels: median %+.4f, "
                  "robust sigma %.4f (%zu without data)\n", m, med, sig, nan);
    {
        double r[3], ap;
        whiteness(&out, mask, r, &ap);
        print_message("  D / sigma_D correlation (1,0) %+.4f (0,1) %+.4f "
                      "(1,1) %+.4f; 3x3 aperture flux / error: robust "
                      "sigma %.4f\n", r[0], r[1], r[2], ap);
        /* the reference's resampled noise is whitened as if white: D's
         * neighbours correlate by a few per cent (measured: +0.058,
         * +0.024, +0.026), a 3 x 3 aperture's noise is 6 % above the
         * pixels' sigma_D in quadrature (docs/subtraction.md) */
        assert_true(fabs(r[0]) < 0.1 && fabs(r[1]) < 0.1 &&
                    fabs(r[2]) < 0.1);
        assert_true(fabs(ap - 1) < 0.1);
    }
    assert_true(fabs(sig - 1) < 0.1);
    assert_true(fabs(med) < 0.05);
    assert_true(fabs(out.ksum * REF_UNITS - 1) < 0.01);
    assert_true(fabs(out.ksum / s.p.match.scale - 1) < 0.01);
    for (i = 0; i < (size_t)out.npd * out.npd; i++)
        sum += out.pd[i];
    assert_true(fabs(sum - 1) < 1e-5);
    assert_true(fabs(out.chi2r - 1) < 0.5);
    free(z);
    free(mask);
    rapid_sfft_out_release(&out);
    sim_release(&s);
}

#define ISO_R 10           /* px: no other source above ISO_F of the */
#define ISO_F 0.2
#define ISO_CORE 3         /* star's peak within this, beyond its core */
#define BRIGHT 30          /* peak S/N in the reference */

/* D / sigma_D at the peaks of the reference's bright (above BRIGHT
 * sigma), unsaturated, isolated (ISO_R, ISO_F) stars (static: in both
 * images): the share beyond 3 and the 95th percentile of |D / sigma_D|. */
static void star_residuals(const simpair *s, const rapid_sfft_out *out,
                           double *beyond, double *p95, int *nstars)
{
    float *bk = malloc((size_t)SIMN * SIMN * sizeof *bk), *v;
    int x, y, n = 0, out3 = 0, cap = 4096;

    v = malloc((size_t)cap * sizeof *v);
    assert_true(bk && v);
    rapid_background_fill(&s->p.bkg_ref, bk);
    for (y = 40; y < SIMN - 40; y++)
        for (x = 40; x < SIMN - 40; x++) {
            size_t k = (size_t)y * SIMN + x;
            float c = s->p.ref.data[k] - bk[k], z;
            int i, j, peak = 1;
            if (!(c > BRIGHT * s->p.unc.data[k]) || !isfinite(out->d[k]))
                continue;
            for (j = -2; j <= 2 && peak; j++)
                for (i = -2; i <= 2 && peak; i++) {
                    size_t q = k + (size_t)(j * SIMN) + (size_t)i;
                    float o = s->p.ref.data[q];
                    if ((i || j) && (!isfinite(o) || o - bk[k] >= c ||
                                     !isfinite(s->sci.rate.data[q])))
                        peak = 0;
                }
            for (j = -ISO_R; j <= ISO_R && peak; j++) /* isolated */
                for (i = -ISO_R; i <= ISO_R && peak; i++) {
                    size_t q = k + (size_t)(j * SIMN) + (size_t)i;
                    if (abs(i) <= ISO_CORE && abs(j) <= ISO_CORE)
                        continue;
                    if (y + j >= 0 && y + j < SIMN && x + i >= 0 &&
                        x + i < SIMN && s->p.ref.data[q] - bk[q] > ISO_F * c)
                        peak = 0;
                }
            if (!peak || n == cap)
                continue;
            z = fabsf(out->d[k] / out->unc[k]);
            v[n++] = z;
            out3 += z > 3;
        }
    assert_true(n >= 50);
    qsort(v, (size_t)n, sizeof *v, test_cmp_float);
    *beyond = (double)out3 / n;
    *p95 = v[(int)(0.95 * (n - 1))];
    *nstars = n;
    free(v);
    free(bk);
}

/* The science image (rendered without noise) convolved with (1 - a)
 * delta + a G, G a Gaussian of 1 px rms, a growing from 0 at the left
 * edge to 0.6 at the right: a PSF broader on one side (no-data pixels
 * left out of the weights); its uncertainty the blurred level's, for the
 * white noise add_noise draws afterwards (as a detector would). */
static void blur_right(simpair *s)
{
    size_t n = (size_t)SIMN * SIMN;
    float *out = malloc(n * sizeof *out), *unc = malloc(n * sizeof *unc);
    double g[9 * 9], gs = 0;
    int x, y, i, j;

    assert_true(out && unc);
    for (j = -4; j <= 4; j++)
        for (i = -4; i <= 4; i++)
            gs += g[(j + 4) * 9 + i + 4] = exp(-(i * i + j * j) / 2.0);
    for (i = 0; i < 81; i++)
        g[i] /= gs;
    for (y = 0; y < SIMN; y++)
        for (x = 0; x < SIMN; x++) {
            double a = 0.6 * x / (SIMN - 1), w, sw = 0, sf = 0, su = 0,
                   sw2 = 0;
            size_t k = (size_t)y * SIMN + x;
            for (j = -4; j <= 4; j++)
                for (i = -4; i <= 4; i++) {
                    size_t q = k + (size_t)(j * SIMN) + (size_t)i;
                    if (x + i < 0 || x + i >= SIMN || y + j < 0 ||
                        y + j >= SIMN || !isfinite(s->sci.rate.data[q]))
                        continue;
                    w = a * g[(j + 4) * 9 + i + 4] + (!i && !j ? 1 - a : 0);
                    sw += w;
                    sf += w * s->sci.rate.data[q];
                    su += w * w * s->sci.unc.data[q] * s->sci.unc.data[q];
                    sw2 += w * w;
                }
            out[k] = isfinite(s->sci.rate.data[k]) ? (float)(sf / sw) : NAN;
            unc[k] = isfinite(s->sci.rate.data[k]) ? (float)(sqrt(su / sw2))
                                                  : NAN;
        }
    memcpy(s->sci.rate.data, out, n * sizeof *out);
    memcpy(s->sci.unc.data, unc, n * sizeof *unc);
    free(out);
    free(unc);
}

/* The science image's noise, white, drawn from its uncertainty (for an
 * image rendered without noise). */
static void add_noise(simpair *s, uint64_t seed)
{
    size_t i, n = (size_t)SIMN * SIMN;
    rapid_rng g;

    rapid_rng_seed(&g, seed);
    for (i = 0; i < n; i++)
        if (isfinite(s->sci.rate.data[i]))
            s->sci.rate.data[i] += (float)(s->sci.unc.data[i] *
                                           rapid_rng_normal(&g));
}

/* A science PSF broader on one side (blur_right) on top of the
 * simulator's field dependence, against a reference of the same pointing
 * (so that no resampling of undersampled stars adds residues of its own
 * that no kernel removes): a kernel constant across the image leaves
 * bright isolated static stars beyond 3 sigma of D; the quadratic one
 * keeps them within it; plain least squares, without the
 * errors-in-variables correction, does not. */
static void test_sim_varying_psf(void **state)
{
    static simpair s;
    rapid_sfft_opts o;
    rapid_sfft_out out;
    rapid_err err = RAPID_ERR_INIT;
    double b0, p0, b2, p2;
    int n0, n2;

    (void)state;
    sim_pair(&s, 23, 0, 1);
    blur_right(&s);
    add_noise(&s, 23);
    rapid_diff_pair_release(&s.p); /* prepared again on the blurred image */
    {
        rapid_diff_ref r = {s.ref, NULL, s.refunc, SIMN, SIMN, &s.rw,
                            1 / REF_UNITS};
        assert_ok(rapid_diff_prepare(&s.sci, &s.sw, &r, &s.p, &err), err);
    }
    rapid_sfft_opts_init(&o);
    o.eps_model = 0; /* the kernels compared on the noise alone */
    o.order = 0;
    sfft_sim(&s, &o, &out);
    star_residuals(&s, &out, &b0, &p0, &n0);
    rapid_sfft_out_release(&out);
    o.order = 2;
    sfft_sim(&s, &o, &out);
    star_residuals(&s, &out, &b2, &p2, &n2);
    rapid_sfft_out_release(&out);
    print_message("  static stars (%d): constant kernel %.1f %% beyond 3 "
                  "sigma (95th percentile of |D / sigma_D| %.2f), quadratic "
                  "%.1f %% (%.2f)\n", n2, 100 * b0, p0, 100 * b2, p2);
    /* the quadratic kernel: at most one star in the 76 beyond 3 sigma
     * (measured: 1, at 3.0-3.1); the constant one: half of them (95th
     * percentile 13) */
    assert_true(n2 >= 60);
    assert_true(b2 * n2 <= 1.0 + 1e-9 && p2 < 2.6);
    assert_true(b0 > 0.3 && p0 > 3 * p2);
    /* without the errors-in-variables correction the quadratic kernel is
     * smoothed by R~'s noise, most where it is sharp (the left side):
     * bright stars there stay some 4 sigma above it (measured: 7 % beyond
     * 3 sigma, 95th percentile 3.0) */
    o.eiv = 0;
    sfft_sim(&s, &o, &out);
    star_residuals(&s, &out, &b2, &p2, &n2);
    rapid_sfft_out_release(&out);
    print_message("  plain least squares: quadratic %.1f %% beyond 3 sigma "
                  "(%.2f)\n", 100 * b2, p2);
    assert_true(b2 > 0.04);
    o.eiv = 1;
    /* sigma_D with the PSF-model error measured at the stars as well */
    o.eps_model = -1;
    sfft_sim(&s, &o, &out);
    star_residuals(&s, &out, &b2, &p2, &n2);
    print_message("  with the model error (eps %.4f, pos %.3f px, from %d "
                  "stars): quadratic %.1f %% beyond 3 sigma (95th "
                  "percentile %.2f)\n", out.eps_model, out.pos_model,
                  out.neps, 100 * b2, p2);
    assert_true(out.neps >= 10);
    assert_true(b2 * n2 <= 1.0 + 1e-9 && p2 < 2.6);
    /* the term's light is the point sources' (as ZOGY's): the stars'
     * width measured, the scene's broad galaxies left out */
    print_message("  the term's point sources: width^2 %.3f px^2, %ld "
                  "extended sources left out\n", out.width2_ld,
                  out.nextended);
    assert_true(out.width2_ld > 0.1 && out.width2_ld < 2);
    assert_true(out.nextended >= 1);
    rapid_sfft_out_release(&out);
    sim_release(&s);
}

/* Fewer stamps than the unknowns need: refused, said so, no outputs. */
static void test_too_few_stamps(void **state)
{
    static synth s;
    rapid_sfft_in in;
    rapid_sfft_out out;
    rapid_err err = RAPID_ERR_INIT;
    int i;

    (void)state;
    make_synth(&s, 7);
    for (i = 0; i < SX * SY; i++) /* the reference's stars gone */
        s.r[i] = (float)(0.05 * ((i * 7919) % 13 - 6) / 6.0);
    synth_in(&in, &s);
    assert_int_equal(rapid_sfft(&in, NULL, &out, &err), RAPID_E_TOOFEW);
    print_message("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "too few stamps"));
    assert_null(out.d);
    assert_null(out.cconv);
    assert_null(out.kernel);
}

/* Stamps all on one row: the kernel's terms in v are those in 1 times a
 * constant, so the normal matrix is singular (or as good as); a condition
 * limit below the fit's own refuses an otherwise good fit. */
static void test_singular_and_ill_conditioned(void **state)
{
    static synth s;
    rapid_sfft_in in;
    rapid_sfft_opts o;
    rapid_sfft_out out;
    rapid_err err = RAPID_ERR_INIT;
    rapid_rng g;
    double cond;
    int i, x, y;

    (void)state;
    make_synth(&s, 7);
    synth_in(&in, &s);
    rapid_sfft_opts_init(&o);
    o.order = 1;
    o.bg_order = 1;
    assert_ok(rapid_sfft(&in, &o, &out, &err), err);
    cond = out.cond;
    rapid_sfft_out_release(&out);
    o.max_cond = cond / 10;
    assert_int_equal(rapid_sfft(&in, &o, &out, &err), RAPID_E_RANGE);
    print_message("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "ill-conditioned"));
    assert_null(out.d);
    /* the stars of one row only */
    rapid_rng_seed(&g, 5);
    memset(s.r, 0, sizeof s.r);
    memset(s.rt, 0, sizeof s.rt);
    for (i = 0; i < 17; i++)
        add_gauss(s.rt, SX, SY, PSIG, 28 + 12 * i + 0.3, SY / 2 + 0.2,
                  5000 * (1 + rapid_rng_uniform(&g)));
    memset(s.n, 0, sizeof s.n);
    convolve_add(s.rt, s.k0, 0, s.n);
    for (y = 0; y < SY; y++)
        for (x = 0; x < SX; x++) {
            i = y * SX + x;
            s.n[i] += (float)rapid_rng_normal(&g);
            s.r[i] = (float)(s.rt[i] + 0.05 * rapid_rng_normal(&g));
        }
    o.max_cond = 1e12;
    o.order = 1;
    o.bg_order = 0;
    assert_int_equal(rapid_sfft(&in, &o, &out, &err), RAPID_E_RANGE);
    print_message("  %s\n", err.msg);
    assert_true(strstr(err.msg, "singular") ||
                strstr(err.msg, "ill-conditioned"));
    assert_null(out.d);
}

static void test_bad_arguments(void **state)
{
    static synth s;
    rapid_sfft_in in;
    rapid_sfft_opts o;
    rapid_sfft_out out;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    make_synth(&s, 3);
    synth_in(&in, &s);
    in.npn = 20;
    assert_int_equal(rapid_sfft(&in, NULL, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "odd-sized"));
    synth_in(&in, &s);
    rapid_sfft_opts_init(&o);
    o.order = 3;
    assert_int_equal(rapid_sfft(&in, &o, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "order 3"));
    in.r = NULL;
    assert_int_equal(rapid_sfft(&in, NULL, &out, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "missing"));
    assert_null(out.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_kernel),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_sim_noise_flux_scale),
        cmocka_unit_test(test_sim_varying_psf),
        cmocka_unit_test(test_too_few_stamps),
        cmocka_unit_test(test_singular_and_ill_conditioned),
        cmocka_unit_test(test_bad_arguments),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    rapid_fft_shared_release();
    return rc;
}
