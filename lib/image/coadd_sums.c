/* coadd_sums.c - every input of a reference image resampled into the
 * running sums of the output pixels (coadd_sums): on each worker thread,
 * one input at a time is read, weighed by the inverse variance of its sky,
 * resampled with exact overlap areas through the mesh of its pixel edges
 * (resample.c) and its rows added to the sums under the lock of their band
 * of rows, remembering at every pixel the largest value any one input gave
 * and who gave it.  After the rejection the sums become the maps in place.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/clones.h"
#include "core/stats.h"
#include "rapid/pixmap.h"
#include "coadd_internal.h"
#include "rapid/dq.h"
#include "rapid/spikes.h"
#include "resample.h"

/* ------------------------------------------------------------ the sums */

void coadd_sums_free(coadd_sums *s)
{
    rapid_big_free(s->S), rapid_big_free(s->W), rapid_big_free(s->V);
    rapid_big_free(s->C), rapid_big_free(s->M), rapid_big_free(s->mx);
    s->S = s->W = s->V = s->C = s->M = NULL;
    s->mx = NULL;
}

int coadd_sums_alloc(coadd_sums *s, int size)
{
    s->size = size;
    s->npix = (size_t)size * (size_t)size;
    s->S = rapid_big_calloc(s->npix, sizeof(float));
    s->W = rapid_big_calloc(s->npix, sizeof(float));
    s->V = rapid_big_calloc(s->npix, sizeof(float));
    s->C = rapid_big_calloc(s->npix, sizeof(float));
    s->M = rapid_big_calloc(s->npix, sizeof(float));
    s->mx = rapid_big_calloc(s->npix, sizeof(uint32_t));
    return s->S && s->W && s->V && s->C && s->M && s->mx ? 0 : RAPID_E_NOMEM;
}

/* ----------------------------------------------------------- resampling */

/* A worker's scratch: the mesh accumulators and one output row. */
typedef struct scratch {
    rapid_mesh mesh;
    double *as, *a, *u, *w;
    float *g, *ia;        /* variance factor, inverse input pixel area */
    rapid_image img;      /* the input being resampled (buffer reused) */
    rapid_image err;      /* its ERR extension, if it has one (reused) */
} scratch;

static void scratch_free(scratch *t)
{
    rapid_mesh_release(&t->mesh);
    rapid_image_release(&t->img);
    rapid_image_release(&t->err);
    free(t->as), free(t->a), free(t->u), free(t->w);
    free(t->g), free(t->ia);
    memset(t, 0, sizeof *t);
}

/* Into the sums; the largest value kept by masked stores in the vector
 * clones (whether an input's value is the largest so far is a coin toss
 * on sky, so no branch), which leave the lines of M and mx clean where it
 * is not: once a few inputs are in, at most pixels. */
RAPID_INLINE void update(int m, float *restrict S, float *restrict W,
                         float *restrict V, float *restrict C, float *restrict M,
                         uint32_t *restrict mx, const float *restrict dS,
                         const float *restrict dW, const float *restrict dV,
                         const float *restrict dC, const float *restrict val,
                         const uint32_t *restrict mxc)
{
    int c;

    for (c = 0; c < m; c++) {
        int take = (mxc[c] != 0) & ((mx[c] == 0) | (val[c] > M[c]));
        S[c] += dS[c];
        W[c] += dW[c];
        V[c] += dV[c];
        C[c] += dC[c];
        if (take)
            M[c] = val[c], mx[c] = mxc[c];
    }
}

/* Add input k's row y (global columns x0..x1) to the sums (caller holds
 * the lock of its band).  The variance of each resampled value is the geometric factor
 * G times the variance of the input pixels there, taken from the local
 * mean (Poisson on the counts and read noise, in DN^2, scaled like the
 * values): sum a_p^2 var_p with a smooth var_p.  Single precision. */
RAPID_CLONES
static void add_row(coadd_sums *s, int k, scratch *t, const rapid_mesh_var *mv,
                    int y, int x0, int x1)
{
    enum { CH = 256 };
    const coadd_input *in = &s->in[k];
    float c1 = (float)in->vc1, c0 = (float)in->vc0;
    float w = (float)in->weight, w2 = w * w;
    uint32_t ik = (uint32_t)k;
    size_t o = (size_t)y * s->size + x0;
    int c0_, c, n = x1 - x0 + 1;
    float dS[CH], dW[CH], dV[CH], dC[CH], val[CH];
    uint32_t mxc[CH];

    rapid_mesh_var_row(mv, t->u, t->w, n, t->g, t->ia);
    for (c0_ = 0; c0_ < n; c0_ += CH, o += CH) {
        int m = n - c0_ < CH ? n - c0_ : CH;
        const double *ta = t->a + c0_, *tas = t->as + c0_;
        const float *tg = t->g + c0_, *tia = t->ia + c0_;
        /* what each pixel adds (nothing where the input has no area):
         * one loop without branches, vectorised */
        for (c = 0; c < m; c++) {
            float A = (float)ta[c], as = (float)tas[c], ok = A > 1e-6f;
            float Ad = ok ? A : 1, v = as / Ad, gr = tg[c] * tia[c];
            float av = gr * A * (fabsf(v) * c1 + c0 * tia[c]);
            float fa = A * 32768 + 0.5f, fg = gr * 200 + 0.5f;
            fa = fa < 1 ? 1 : fa > 65535 ? 65535 : fa;
            fg = fg < 1 ? 1 : fg > 255 ? 255 : fg;
            dS[c] = ok ? w * as : 0;
            dW[c] = ok ? w * A : 0;
            dV[c] = ok ? w2 * av : 0;
            dC[c] = ok ? A : 0;
            val[c] = v;
            mxc[c] = ok ? ik | (uint32_t)(int)fg << 8 | (uint32_t)(int)fa << 16 : 0;
        }
        update(m, s->S + o, s->W + o, s->V + o, s->C + o, s->M + o, s->mx + o,
               dS, dW, dV, dC, val, mxc);
    }
}

/* Where output pixels x0..x1 of row y fall on the input, at every 16th
 * pixel (linear in between: the map's curvature over 16 pixels moves the
 * phase by ~1e-5 pixel; only the variance factor uses it). */
static void inverse_row(const rapid_pixmap *inv, int y, int x0, int x1,
                        double *su, double *sw)
{
    rapid_pixmap_row(inv, y, x0, 16.0, (x1 - x0 + 1 + 15) / 16 + 1, su, sw);
}

/* Input k on its way from the worker's mesh into the sums. */
typedef struct adder {
    coadd_sums *s;
    int k;
    scratch *t;
    rapid_mesh_var mv;
    rapid_pixmap inv;
} adder;

/* What the rows need besides the mesh: the variance factor, and where the
 * output pixels fall on the input. */
static int adder_start(adder *d, coadd_sums *s, int k, scratch *t,
                       const rapid_pixmap *m, rapid_err *err)
{
    coadd_input *in = &s->in[k];
    rapid_mesh *p = &t->mesh;
    int r, n = s->size, ylo = p->y0 < 0 ? 0 : p->y0;
    int yhi = p->y0 + p->h - 1 > n - 1 ? n - 1 : p->y0 + p->h - 1;
    int xlo = n, xhi = -1, rc = 0;

    memset(d, 0, sizeof *d);
    d->s = s, d->k = k, d->t = t;
    for (r = ylo - p->y0; r <= yhi - p->y0; r++)
        if (p->c1[r] >= p->c0[r]) {
            xlo = p->xb + p->c0[r] < xlo ? p->xb + p->c0[r] : xlo;
            xhi = p->xb + p->c1[r] > xhi ? p->xb + p->c1[r] : xhi;
        }
    xlo = xlo < 0 ? 0 : xlo;
    xhi = xhi > n - 1 ? n - 1 : xhi;
    /* var of a pixel holding d DN, scaled: (d g + rn^2) / g^2 * scale^2,
     * with d = |v| apix / scale for surface brightness v */
    in->vc1 = in->scale / in->gain;
    in->vc0 = in->rdnoise * in->rdnoise / (in->gain * in->gain) * in->scale * in->scale;
    in->via = 1;
    if (ylo <= yhi && xlo <= xhi) {
        /* where each output pixel falls on the input: its phase there
         * sets the variance factor */
        if ((rc = rapid_mesh_var_make(&d->mv, m, in->nx, in->ny)) != 0)
            return rapid_fail(err, rc, rc == RAPID_E_NOMEM ?
                              "%s: no memory to tabulate the resampling variance" :
                              "%s: cannot tabulate the resampling variance (the "
                              "map to the grid is singular)", in->src->path);
        for (r = 0, in->via = 0; r < d->mv.nb * d->mv.nb; r++)
            in->via += 1 / d->mv.apix[r] / (d->mv.nb * d->mv.nb);
        if ((rc = rapid_pixmap_make(&d->inv, s->grid, &in->wcs, xlo, xhi, ylo,
                                    yhi, 64, err)) != 0) {
            rapid_err_prefix(err, "%s", in->src->path);
            return rc;
        }
    }
    return 0;
}

/* A finished row of the mesh: on the grid into the sums, else only
 * cleared.  Under the lock of its band of rows: two workers adding
 * different inputs meet only when they reach the same band.  Row by row,
 * since the rows come in batches with a long edge pass in between, which
 * must not keep the band's lock. */
static void adder_row(void *arg, int y)
{
    adder *d = arg;
    coadd_sums *s = d->s;
    scratch *t = d->t;
    rapid_mesh *p = &t->mesh;
    int r = y - p->y0, n = s->size, x0 = p->xb + p->c0[r], x1 = p->xb + p->c1[r];

    if (y < 0 || y >= n || x1 < 0 || x0 >= n) {
        rapid_mesh_row(p, y, 1, 0, NULL, NULL); /* clear only */
        return;
    }
    x0 = x0 < 0 ? 0 : x0;
    x1 = x1 > n - 1 ? n - 1 : x1;
    rapid_mesh_row(p, y, x0, x1, t->as, t->a);
    inverse_row(&d->inv, y, x0, x1, t->u, t->w);
    pthread_mutex_lock(&s->band[y / BAND % NBAND]);
    add_row(s, d->k, t, &d->mv, y, x0, x1);
    pthread_mutex_unlock(&s->band[y / BAND % NBAND]);
}

static void adder_end(adder *d)
{
    rapid_mesh_var_release(&d->mv);
    rapid_pixmap_release(&d->inv);
}

/* The median ERR of the pixels of im that hold data, if the input has an
 * ERR extension: 1 with *med set, 0 without ERR, or a negative status. */
static int input_err(const coadd_input *in, const rapid_image *im,
                     rapid_image *e, double *med, rapid_err *err)
{
    size_t i, n = (size_t)im->nx * im->ny;
    int rc;

    if ((rc = rapid_fits_has_hdu(in->src->path, "ERR", err)) <= 0)
        return rc;
    if ((rc = rapid_fits_reread_image(in->src->path, "ERR", e, err)) != 0)
        return rc;
    if (e->nx != im->nx || e->ny != im->ny)
        return rapid_fail(err, RAPID_E_FITS, "%s[ERR]: %d x %d pixels, but SCI "
                          "has %d x %d", in->src->path, e->nx, e->ny, im->nx,
                          im->ny);
    for (i = 0; i < n; i++)
        if (isnan(im->data[i]))
            e->data[i] = NAN;
    if ((rc = rapid_median_sample(e->data, n, 250000, med, NULL)) != 0)
        return rapid_fail(err, rc, "%s: no memory for the median ERR",
                          in->src->path);
    return 1;
}

/* The input's unflagged single-pixel spikes (hot pixels, cosmic-ray
 * charge below the jump threshold) to NaN, told from stars by its PSF
 * (rapid/spikes.h): where it alone covers the grid nothing rejects them
 * later.  The background is its median sky: where the local sky is
 * higher (a galaxy's light) that only makes the search more cautious. */
static int mask_spikes(coadd_input *in, rapid_image *im, double sky, rapid_err *err)
{
    rapid_spike_noise nz;
    int rc;

    in->nspike = 0;
    if (!isfinite(in->spike_ratio))
        return 0;
    nz.bkg = NULL, nz.bkg0 = sky;
    nz.var_read = in->rdnoise * in->rdnoise / (in->gain * in->gain);
    nz.var_per_unit = 1 / in->gain;
    if ((rc = rapid_spike_mask(im->data, NULL, im->nx, im->ny, &nz, in->spike_ratio,
                               &in->nspike, err)) != 0)
        rapid_err_prefix(err, "%s", in->src->path);
    return rc;
}

/* RAPID_E_INTERRUPTED if the caller asked to stop while input k was
 * under way (between its steps: a second or so of one core at full
 * size). */
static int input_stopped(const coadd_sums *s, int k, rapid_err *err)
{
    return coadd_stopped(s->o) ? rapid_fail(err, RAPID_E_INTERRUPTED, "reference "
                                            "image: interrupted in input %d of %d",
                                            k + 1, s->nin)
                               : 0;
}

/* Read, weigh and resample input k into the worker's mesh, then add it. */
static int do_input(coadd_sums *s, int k, scratch *t, rapid_err *err)
{
    coadd_input *in = &s->in[k];
    rapid_image *im = &t->img;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    adder d;
    const rapid_dq_grow grow[2] = {{RAPID_DQ_PERSISTENCE, COADD_PERSIST_GROW},
                                   {RAPID_DQ_JUMP_DET, 1}};
    rapid_dq_counts dqn = {0, 0, 0};
    double sky, skyvar, errmed = NAN;
    size_t maxcells = 3 * (size_t)in->nx * in->ny + ((size_t)1 << 22);
    long nsat = 0;
    int rc;

    if ((rc = rapid_fits_reread_image(in->src->path, NULL, im, err)) != 0 ||
        (rc = input_stopped(s, k, err)) != 0)
        goto cleanup;
    if (im->nx != in->nx || im->ny != in->ny) {
        rc = rapid_fail(err, RAPID_E_FITS, "%s: image is %d x %d, header said %d x %d",
                        in->src->path, im->nx, im->ny, in->nx, in->ny);
        goto cleanup;
    }
    /* pixels the DQ extension flags are no data, and the neighbours of
     * those with excess charge around them (within COADD_PERSIST_GROW px
     * of PERSISTENCE, 1 px of JUMP_DET: where few inputs overlap, the
     * outlier rejection cannot take that charge out); ERR, where there is
     * one, gives the noise (else GAIN and RDNOISE do) */
    if ((rc = rapid_dq_mask_file_rules(in->src->path, im, grow, 2, &dqn,
                                       err)) != 0 ||
        (rc = input_err(in, im, &t->err, &errmed, err)) < 0)
        goto cleanup;
    rc = 0;
    /* Inverse-variance weight from the sky: the median pixel is sky.  A
     * quarter of a million pixels fix it to 0.3 % of the sky's noise, which
     * is nothing to a weight; a million took three times longer (0.29 s
     * against 0.10 s per 25 inputs), reading every cache line of the image. */
    if ((rc = rapid_median_sample(im->data, (size_t)im->nx * im->ny, 250000,
                                  &sky, NULL)) != 0) {
        rc = rapid_fail(err, rc, "%s: no memory for the sky level", in->src->path);
        goto cleanup;
    }
    if (!isfinite(sky)) {
        rc = rapid_fail(err, RAPID_E_ARG, "%s: no valid pixels", in->src->path);
        goto cleanup;
    }
    if (isfinite(errmed)) /* the read noise that makes the sky's ERR */
        in->rdnoise = sqrt(fmax(errmed * errmed * in->gain * in->gain -
                                fmax(sky, 0) * in->gain, 0));
    skyvar = (fabs(sky) * in->gain + in->rdnoise * in->rdnoise) /
             (in->gain * in->gain) * in->scale * in->scale;
    in->weight = 1.0 / skyvar;
    if ((rc = mask_spikes(in, im, sky, err)) != 0 ||
        (rc = input_stopped(s, k, err)) != 0)
        goto cleanup;
    if ((rc = rapid_pixmap_make(&m, &in->wcs, s->grid, -0.5, in->nx - 0.5, -0.5,
                                in->ny - 0.5, 64, err)) != 0) {
        rapid_err_prefix(err, "%s", in->src->path);
        goto cleanup;
    }
    if ((rc = rapid_mesh_place(&t->mesh, &m, in->nx, in->ny, maxcells,
                                 s->o->row_batch)) != 0) {
        rc = rc == RAPID_E_NOMEM
                 ? rapid_fail(err, rc, "%s: no memory to resample", in->src->path)
                 : rapid_fail(err, rc, "%s: its pixels do not map onto the grid's "
                              "at a comparable scale", in->src->path);
        goto cleanup;
    }
    /* the tiles of the input that fall off the grid but for its left
     * side are not deposited (resample.h) */
    rapid_mesh_clip(&t->mesh, 0, s->size - 1, s->size - 1);
    if (!t->as) {
        size_t nb = (size_t)(2 * s->size + 64) * sizeof(double);
        t->as = malloc(nb), t->a = malloc(nb), t->u = malloc(nb), t->w = malloc(nb);
        t->g = malloc(nb / 2), t->ia = malloc(nb / 2);
        if (!t->as || !t->a || !t->u || !t->w || !t->g || !t->ia) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "%s: no memory to resample", in->src->path);
            goto cleanup;
        }
    }
    /* the edges into the mesh, each row into the sums once it is done */
    if ((rc = input_stopped(s, k, err)) != 0)
        goto cleanup;
    if ((rc = adder_start(&d, s, k, t, &m, err)) == 0) {
        /* a failure is found before any deposit, so the accumulators are
         * still zero */
        if ((rc = rapid_mesh_add(&t->mesh, &m, im->data, in->nx, in->ny, in->scale,
                                 s->o->sat_fraction * in->saturate, adder_row, &d,
                                 &nsat)) != 0)
            rc = rapid_fail(err, rc, "%s: no memory to resample", in->src->path);
    }
    adder_end(&d);
    if (rc)
        goto cleanup;
    pthread_mutex_lock(&s->lock);
    s->npixsat += nsat + dqn.saturated; /* by value, and by DQ flag */
    s->done++;
    if (s->progress)
        s->progress(s->done, s->nin, s->arg);
    pthread_mutex_unlock(&s->lock);
cleanup:
    rapid_pixmap_release(&m);
    return rc;
}

static void *worker(void *arg)
{
    coadd_sums *s = arg;
    rapid_err err = RAPID_ERR_INIT;
    scratch t;

    memset(&t, 0, sizeof t);
    for (;;) {
        int k;
        pthread_mutex_lock(&s->lock);
        /* asked to stop: no more inputs (the one under way ends first) */
        k = s->failed || coadd_stopped(s->o) ? s->nin : s->next++;
        pthread_mutex_unlock(&s->lock);
        if (k >= s->nin)
            break;
        if (do_input(s, k, &t, &err) != 0) {
            pthread_mutex_lock(&s->lock);
            if (!s->failed)
                s->err = err;
            s->failed = 1;
            pthread_mutex_unlock(&s->lock);
            break;
        }
    }
    scratch_free(&t);
    return NULL;
}

int coadd_run_inputs(coadd_sums *s, int nthreads, rapid_err *err)
{
    pthread_t th[64];
    int t, started = 0;

    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > 64)
        nthreads = 64;
    if (nthreads > s->nin)
        nthreads = s->nin;
    for (t = 1; t < nthreads; t++)
        if (pthread_create(&th[t], NULL, worker, s) == 0)
            started++;
    worker(s);
    for (t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
    if (s->failed) {
        if (err)
            *err = s->err;
        return s->err.code ? s->err.code : RAPID_E_IO;
    }
    if (s->done < s->nin && coadd_stopped(s->o))
        return rapid_fail(err, RAPID_E_INTERRUPTED, "reference image: "
                          "interrupted after %d of %d inputs", s->done, s->nin);
    return 0;
}

/* ----------------------------------------------------------------- maps */

RAPID_CLONES
void coadd_take_maps(coadd_sums *s, rapid_coadd *out)
{
    float *S = s->S, *V = s->V, *C = s->C;
    const float *W = s->W;
    size_t i;

    /* selects, no branches: it vectorises (sqrt too: -fno-math-errno) */
    for (i = 0; i < s->npix; i++) {
        double w = W[i];
        int ok = w > 0 && (double)C[i] > 1e-3;
        double wd = ok ? w : 1, v = V[i] > 0 ? V[i] : 0;
        float m = (float)(S[i] / wd), u = (float)(sqrt(v) / wd);
        S[i] = ok ? m : NAN;
        V[i] = ok ? u : NAN;
        C[i] = ok ? C[i] : 0;
    }
    out->image.data = s->S, out->uncertainty.data = s->V, out->coverage.data = s->C;
    out->image.nx = out->image.ny = s->size;
    out->uncertainty.nx = out->uncertainty.ny = s->size;
    out->coverage.nx = out->coverage.ny = s->size;
    s->S = s->V = s->C = NULL;
    coadd_sums_free(s);
}
