/* coadd.c - reference images (SPEC §6.1), top to bottom:
 *
 *   1. read each input's header; keep those of the filter that overlap the
 *      grid, nearest the tile centre first, at most max_inputs
 *   2. for each input (in parallel when asked): pixels to DN/s at the common
 *      zero point; resample onto the grid with exact overlap areas through
 *      the mesh of its pixel edges (resample.c) into the worker's
 *      accumulators; add them to the running sums, remembering at every
 *      pixel the largest value any one input gave and who gave it
 *   3. reject, pixel by pixel, that largest value when it stands out from
 *      the mean of the others by more than the noise and the local gradient
 *      allow; grow the rejection to neighbours of the same input
 *   4. image = weighted sum / weights, coverage = sum of overlap areas,
 *      uncertainty from the propagated variances
 *   5. reference PSF, catalog, statistics
 *
 * Only the largest value at a pixel can be rejected: cosmic rays,
 * transients, satellite trails and hot pixels are positive and, with inputs
 * from different epochs and detectors, rarely hit one output pixel twice.
 * Memory: the running sums (24 bytes per output pixel, in six planes, three
 * of which become the maps in place) plus, per thread, one input and its
 * mesh accumulators; inputs are read one at a time, and the rejection
 * streams rows through a few rows of buffers.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/bigmem.h"
#include "core/clones.h"
#include "resample.h"
#include "core/stats.h"
#include "rapid/coadd.h"
#include "rapid/filters.h"
#include "rapid/pixmap.h"
#include "rapid/prodset.h"
#include "rapid/tile.h"
#include "rapid/version.h"
#include "rapid/wcs.h"

void rapid_coadd_opts_init(rapid_coadd_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = 7000;
    o->pixscale = 0.11;
    o->nside = RAPID_TILE_NSIDE;
    o->max_inputs = 25;
    o->min_inputs = 3;
    o->magzp = NAN;
    o->reject_sigma = 5;
    o->reject_grad = 1;
    o->grow_sigma = 3;
    o->sat_fraction = 0.95;
    o->nthreads = 1;
    o->psf_size = 0;
    o->row_batch = RAPID_MESH_BATCH;
}

void rapid_coadd_init(rapid_coadd *c)
{
    memset(c, 0, sizeof *c);
    rapid_header_init(&c->image.hdr);
    rapid_header_init(&c->coverage.hdr);
    rapid_header_init(&c->uncertainty.hdr);
    rapid_header_init(&c->psf.hdr);
    rapid_table_init(&c->catalog, 0);
}

void rapid_coadd_release(rapid_coadd *c)
{
    int i;

    if (!c)
        return;
    rapid_image_release(&c->image);
    rapid_image_release(&c->coverage);
    rapid_image_release(&c->uncertainty);
    rapid_image_release(&c->psf);
    rapid_table_release(&c->catalog);
    for (i = 0; i < c->ninputs; i++)
        free(c->inputs[i]);
    free(c->inputs);
    rapid_coadd_init(c);
}

/* ------------------------------------------------------------ PSF files */

static int psf_name_matches(const char *name, const char *filter, int sca)
{
    char tail[64];
    size_t n = strlen(name), t;

    if (!strstr(name, "PSF") && !strstr(name, "psf"))
        return 0;
    snprintf(tail, sizeof tail, "_%s_%d.fits", filter, sca);
    t = strlen(tail);
    return n > t && strcasecmp(name + n - t, tail) == 0;
}

static int find_in_dir(const char *dir, const char *filter, int sca, char *out,
                       size_t outsz)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL)
        if (psf_name_matches(e->d_name, filter, sca)) {
            snprintf(out, outsz, "%s/%s", dir, e->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

int rapid_coadd_find_psf(const char *l2path, const char *filter, int sca,
                         char *out, size_t outsz, rapid_err *err)
{
    char dir[4096], place[4200];
    const char *slash = strrchr(l2path, '/');
    const char *sub[] = {"", "/psf", "/../psf"};
    size_t k;

    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - l2path), l2path);
    else
        snprintf(dir, sizeof dir, ".");
    for (k = 0; k < sizeof sub / sizeof sub[0]; k++) {
        snprintf(place, sizeof place, "%s%s", dir, sub[k]);
        if (find_in_dir(place, filter, sca, out, outsz))
            return 0;
    }
    return rapid_fail(err, RAPID_E_NOENT,
                      "%s: no PSF file *PSF*_%s_%d.fits in %s, %s/psf or "
                      "%s/../psf",
                      l2path, filter, sca, dir, dir, dir);
}

/* ------------------------------------------------------ reference PSF */

/* Mean of the inputs (each normalised) on a size x size grid. */
static int mean_psf(const rapid_image *psfs, int n, int size, double *mean,
                    rapid_err *err)
{
    int k, i, j, h = size / 2;

    memset(mean, 0, (size_t)size * size * sizeof *mean);
    for (k = 0; k < n; k++) {
        const rapid_image *p = &psfs[k];
        double sum = 0;
        if (p->nx % 2 == 0 || p->ny % 2 == 0 || !p->data)
            return rapid_fail(err, RAPID_E_ARG,
                              "input PSF %d is %d x %d: the size must be odd",
                              k + 1, p->nx, p->ny);
        for (i = 0; i < p->nx * p->ny; i++)
            if (isfinite(p->data[i]))
                sum += p->data[i];
        if (!(sum > 0))
            return rapid_fail(err, RAPID_E_ARG, "input PSF %d has no flux", k + 1);
        for (j = 0; j < size; j++)
            for (i = 0; i < size; i++) {
                int x = i - h + p->nx / 2, y = j - h + p->ny / 2;
                float v;
                if (x < 0 || y < 0 || x >= p->nx || y >= p->ny)
                    continue;
                v = p->data[y * p->nx + x];
                if (isfinite(v))
                    mean[j * size + i] += v / sum / n;
            }
    }
    return 0;
}

int rapid_coadd_psf(const rapid_image *psfs, int n, int size, rapid_image *out,
                    rapid_err *err)
{
    double *mean = NULL, *blur = NULL, *prof = NULL, *wt = NULL, sum = 0;
    int rc = 0, i, j, h, nb, b;
    const double bin = 0.25; /* radial bins, pixels */

    if (n <= 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: no input PSFs");
    if (size <= 0)
        size = psfs[0].nx;
    if (size % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: size %d is even", size);
    h = size / 2;
    nb = (int)ceil(h * M_SQRT2 / bin) + 2;
    mean = malloc((size_t)size * size * sizeof *mean);
    blur = calloc((size_t)size * size, sizeof *blur);
    prof = calloc((size_t)nb, sizeof *prof);
    wt = calloc((size_t)nb, sizeof *wt);
    if (!mean || !blur || !prof || !wt) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
        goto cleanup;
    }
    if ((rc = mean_psf(psfs, n, size, mean, err)) != 0)
        goto cleanup;
    /* Exact-overlap resampling spreads each input pixel over the output
     * pixels it overlaps: output pixel m gets sum_k I_k T(m - k - phase),
     * T the tent (box * box).  Averaged over the phases of the inputs, a
     * star's profile on the output grid is the input PSF convolved with
     * the tent, which adds a variance of 2/12 per axis: the discrete
     * kernel [1/12 5/6 1/12] adds exactly that. */
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            int dx, dy;
            for (dy = -1; dy <= 1; dy++)
                for (dx = -1; dx <= 1; dx++) {
                    int x = i + dx, y = j + dy;
                    double k = (dx ? 1.0 / 12 : 5.0 / 6) * (dy ? 1.0 / 12 : 5.0 / 6);
                    if (x >= 0 && y >= 0 && x < size && y < size)
                        blur[y * size + x] += k * mean[j * size + i];
                }
        }
    /* Radial profile, linear in r between bin centres. */
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            double r = hypot(i - h, j - h) / bin;
            b = (int)r;
            prof[b] += blur[j * size + i] * (1 - (r - b));
            wt[b] += 1 - (r - b);
            prof[b + 1] += blur[j * size + i] * (r - b);
            wt[b + 1] += r - b;
        }
    for (b = 0; b < nb; b++)
        prof[b] = wt[b] > 0 ? prof[b] / wt[b] : 0;
    if ((rc = rapid_image_alloc(out, size, size, 0, err)) != 0)
        goto cleanup;
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            double r = hypot(i - h, j - h) / bin, v;
            b = (int)r;
            v = prof[b] * (1 - (r - b)) + prof[b + 1] * (r - b);
            out->data[j * size + i] = (float)v;
            sum += v;
        }
    for (i = 0; i < size * size; i++)
        out->data[i] = (float)(out->data[i] / sum);
    if (rapid_header_set_long(&out->hdr, "NPSFIN", n, "input PSFs averaged") ||
        rapid_header_add_text(&out->hdr, "COMMENT",
                              "Reference PSF: mean of the input PSFs convolved "
                              "with the resampling kernel, radially averaged, "
                              "unit sum."))
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory for its header");
cleanup:
    if (rc)
        rapid_image_release(out);
    free(mean);
    free(blur);
    free(prof);
    free(wt);
    return rc;
}

/* --------------------------------------------------------------- inputs */

typedef struct input {
    const rapid_coadd_input *src;
    rapid_header hdr;
    rapid_wcs wcs;
    int nx, ny, sca;
    double exptime, zptmag, gain, rdnoise, saturate, mjd;
    double dist;          /* image centre to tile centre, degrees */
    double scale;         /* to DN/s at the common zero point: f / exptime */
    double weight;        /* inverse variance of the sky, at that scale */
    double vc1, vc0, via; /* variance of a value v: G a ia (|v| vc1 + vc0 ia),
                           * ia the inverse of an input pixel's area */
    char filter[16];
} input;

static void input_release(input *in)
{
    rapid_header_release(&in->hdr);
    rapid_wcs_release(&in->wcs);
}

static double key_or(const rapid_header *h, const char *key, double dflt)
{
    double v;
    return rapid_header_get_double(h, key, &v, NULL) == 0 ? v : dflt;
}

/* Header, WCS and photometric keywords of one input. */
static int read_input(const rapid_coadd_input *src, input *in, rapid_err *err)
{
    long v;
    int rc;

    memset(in, 0, sizeof *in);
    in->src = src;
    rapid_header_init(&in->hdr);
    if ((rc = rapid_fits_read_header(src->path, NULL, &in->hdr, err)) != 0)
        return rc;
    if (rapid_header_get_long(&in->hdr, "NAXIS1", &v, err) ||
        (in->nx = (int)v, rapid_header_get_long(&in->hdr, "NAXIS2", &v, err)))
        return rapid_err_prefix(err, "%s", src->path);
    in->ny = (int)v;
    if ((rc = rapid_header_get_double(&in->hdr, "EXPTIME", &in->exptime, err)) ||
        (rc = rapid_header_get_double(&in->hdr, "ZPTMAG", &in->zptmag, err)) ||
        (rc = rapid_header_get_double(&in->hdr, "MJD-OBS", &in->mjd, err)) ||
        (rc = rapid_header_get_str(&in->hdr, "FILTER", in->filter,
                                   sizeof in->filter, err)))
        return rapid_err_prefix(err, "%s", src->path);
    if (!(in->exptime > 0))
        return rapid_fail(err, RAPID_E_KEY, "%s: EXPTIME %g is not positive",
                          src->path, in->exptime);
    in->sca = rapid_header_get_long(&in->hdr, "SCA_NUM", &v, NULL) == 0 ? (int)v : 0;
    in->gain = key_or(&in->hdr, "GAIN", RAPID_GAIN);
    in->rdnoise = key_or(&in->hdr, "RDNOISE", RAPID_READNOISE);
    in->saturate = key_or(&in->hdr, "SATURATE", RAPID_SATURATION);
    if ((rc = rapid_wcs_from_header(&in->wcs, &in->hdr, err)) != 0)
        return rapid_err_prefix(err, "%s", src->path);
    return 0;
}

/* Sky distance of the image centre from (ra, dec), and whether the image
 * lands on the grid at all. */
static int locate_input(input *in, rapid_wcs *grid, int size, double ra,
                        double dec)
{
    double fra[5], fdec[5], x[5], y[5];
    int k, on = 0;

    if (rapid_wcs_footprint(&in->wcs, in->nx, in->ny, fra, fdec, NULL) != 0)
        return 0;
    in->dist = rapid_sky_distance(fra[0], fdec[0], ra, dec);
    if (in->dist > 30 || rapid_wcs_sky2pix(grid, 5, fra, fdec, x, y, NULL) != 0)
        return 0;
    for (k = 0; k < 5; k++)
        on |= x[k] > -0.5 && x[k] < size - 0.5 && y[k] > -0.5 && y[k] < size - 0.5;
    if (!on) { /* the grid may still sit inside a larger image */
        double gx = (size - 1) / 2.0, gy = (size - 1) / 2.0, gra, gdec, ix, iy;
        if (rapid_wcs_pix2sky(grid, 1, &gx, &gy, &gra, &gdec, NULL) == 0 &&
            rapid_wcs_sky2pix(&in->wcs, 1, &gra, &gdec, &ix, &iy, NULL) == 0)
            on = ix > -0.5 && ix < in->nx - 0.5 && iy > -0.5 && iy < in->ny - 0.5;
    }
    return on;
}

static int cmp_dist(const void *a, const void *b)
{
    double x = ((const input *)a)->dist, y = ((const input *)b)->dist;
    return (x > y) - (x < y);
}

static int cmp_double_asc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the finite values (a sample of at most a million). */
static int sample_median(const float *v, size_t n, double *med)
{
    return rapid_median_sample(v, n, 1000000, med, NULL);
}

/* ------------------------------------------------------- resampling */

/* The running sums of the output pixels, one plane each (the planes of
 * the image, the uncertainty and the coverage become the maps in place):
 * S = sum w*as, W = sum w*a, V = sum w^2*av, C = sum a.  Besides the sums,
 * the largest single-input value M, with what it takes to remove it again
 * packed in mx: the input (8 bits), its variance factor G / apix (8 bits,
 * 1/200) and its overlap area a (16 bits, 1/32768), from which its weight
 * w a and its variance are rebuilt (pix_wM, pix_vM); mx 0: no value yet. */
#define MX_INPUT(mx) ((int)((mx) & 0xff))
#define MX_G(mx) ((double)(((mx) >> 8) & 0xff) / 200)
#define MX_A(mx) ((double)((mx) >> 16) / 32768)
/* "covered by at least three inputs" for the rejection */
#define MIN_COVER 2.5f

#define BAND 32
#define NBAND 64

typedef struct sums {
    int size;
    size_t npix;
    float *S, *W, *V, *C, *M;
    uint32_t *mx;
    const rapid_coadd_opts *o;
    input *in;
    int nin, next, done, failed;
    long npixsat;
    rapid_err err;
    rapid_wcs *grid;
    pthread_mutex_t lock;            /* the fields above, the progress */
    pthread_mutex_t band[NBAND];     /* rows y of the sums: y / BAND % NBAND */
    rapid_progress_fn progress;
    void *arg;
} sums;

/* A worker's scratch: the mesh accumulators and one output row. */
typedef struct scratch {
    rapid_mesh mesh;
    double *as, *a, *u, *w;
    float *g, *ia;        /* variance factor, inverse input pixel area */
    rapid_image img;      /* the input being resampled (buffer reused) */
} scratch;

static void scratch_free(scratch *t)
{
    rapid_mesh_release(&t->mesh);
    rapid_image_release(&t->img);
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
static void add_row(sums *s, int k, scratch *t, const rapid_mesh_var *mv,
                    int y, int x0, int x1)
{
    enum { CH = 256 };
    const input *in = &s->in[k];
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
    sums *s;
    int k;
    scratch *t;
    rapid_mesh_var mv;
    rapid_pixmap inv;
} adder;

/* What the rows need besides the mesh: the variance factor, and where the
 * output pixels fall on the input. */
static int adder_start(adder *d, sums *s, int k, scratch *t,
                       const rapid_pixmap *m, rapid_err *err)
{
    input *in = &s->in[k];
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
                                    yhi, 64, err)) != 0)
            return rapid_err_prefix(err, "%s", in->src->path);
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
    sums *s = d->s;
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

static void sums_free(sums *s)
{
    rapid_big_free(s->S), rapid_big_free(s->W), rapid_big_free(s->V);
    rapid_big_free(s->C), rapid_big_free(s->M), rapid_big_free(s->mx);
    s->S = s->W = s->V = s->C = s->M = NULL;
    s->mx = NULL;
}

static int sums_alloc(sums *s, int size)
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

/* Read, weigh and resample input k into the worker's mesh, then add it. */
static int do_input(sums *s, int k, scratch *t, rapid_err *err)
{
    input *in = &s->in[k];
    rapid_image *im = &t->img;
    rapid_pixmap m = RAPID_PIXMAP_INIT;
    adder d;
    double sky, skyvar;
    size_t maxcells = 3 * (size_t)in->nx * in->ny + ((size_t)1 << 22);
    long nsat = 0;
    int rc;

    if ((rc = rapid_fits_reread_image(in->src->path, NULL, im, err)) != 0)
        goto cleanup;
    if (im->nx != in->nx || im->ny != in->ny) {
        rc = rapid_fail(err, RAPID_E_FITS, "%s: image is %d x %d, header said %d x %d",
                        in->src->path, im->nx, im->ny, in->nx, in->ny);
        goto cleanup;
    }
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
    skyvar = (fabs(sky) * in->gain + in->rdnoise * in->rdnoise) /
             (in->gain * in->gain) * in->scale * in->scale;
    in->weight = 1.0 / skyvar;
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
    if ((rc = adder_start(&d, s, k, t, &m, err)) == 0) {
        nsat = rapid_mesh_add(&t->mesh, &m, im->data, in->nx, in->ny, in->scale,
                              s->o->sat_fraction * in->saturate, adder_row, &d);
        /* -1: found before any deposit, so the accumulators are still zero */
        if (nsat < 0)
            rc = rapid_fail(err, RAPID_E_NOMEM, "%s: no memory to resample",
                            in->src->path);
    }
    adder_end(&d);
    if (rc)
        goto cleanup;
    pthread_mutex_lock(&s->lock);
    s->npixsat += nsat;
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
    sums *s = arg;
    rapid_err err = RAPID_ERR_INIT;
    scratch t;

    memset(&t, 0, sizeof t);
    for (;;) {
        int k;
        pthread_mutex_lock(&s->lock);
        k = s->failed ? s->nin : s->next++;
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

static int run_inputs(sums *s, int nthreads, rapid_err *err)
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
    return 0;
}

/* ---------------------------------------------------- outlier rejection */

/* The weight w a and the variance w^2 av of the largest value at i. */
static double pix_wM(const sums *s, size_t i)
{
    uint32_t mx = s->mx[i];

    return mx ? s->in[MX_INPUT(mx)].weight * MX_A(mx) : 0;
}

static double pix_vM(const sums *s, size_t i)
{
    uint32_t mx = s->mx[i];
    const input *in = &s->in[MX_INPUT(mx)];
    double w = in->weight;

    if (!mx)
        return 0;
    return w * w * MX_G(mx) * MX_A(mx) *
           (fabs(s->M[i]) * in->vc1 + in->vc0 * in->via);
}

/* Mean of the others (all but the largest value) along row y. */
static void others_mean(const sums *s, int y, float *mu)
{
    size_t i0 = (size_t)y * s->size;
    int x;

    for (x = 0; x < s->size; x++) {
        size_t i = i0 + x;
        double wM = pix_wM(s, i), w = s->W[i] - wM;
        if (s->C[i] >= MIN_COVER && w > 0)
            mu[x] = (float)((s->S[i] - wM * s->M[i]) / w);
        else
            mu[x] = s->W[i] > 0 ? s->S[i] / s->W[i] : NAN;
    }
}

/* Does the largest value at (x, y) stand out by more than k sigma plus the
 * local gradient (sub-pixel shifts between inputs of a sharp, undersampled
 * star change its peak a lot; a cosmic ray on flat sky does not have that
 * excuse)?  mu[r & 3]: the means of row r, for the rows y - 1 .. y + 1. */
static int stands_out(const sums *s, float *const *mu, int x, int y, double k)
{
    int n = s->size, d;
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    size_t i = (size_t)y * n + x;
    double wM = pix_wM(s, i), w = s->W[i] - wM, vM, grad = 0, var, dev;
    float m = mu[y & 3][x];

    if (s->C[i] < MIN_COVER || !(w > 0) || !(wM > 0) || !isfinite(m))
        return 0;
    vM = pix_vM(s, i);
    var = vM / (wM * wM) + (s->V[i] - vM) / (w * w);
    dev = s->M[i] - m;
    if (s->o->reject_grad >= 0 && /* then the gradient only adds */
        (!(dev > 0) || dev * dev <= k * k * fmax(var, 0)))
        return 0;
    for (d = 0; d < 4; d++) {
        int xx = x + dx[d], yy = y + dy[d];
        float mj;
        if (xx < 0 || yy < 0 || xx >= n || yy >= n)
            continue;
        mj = mu[yy & 3][xx];
        if (isfinite(mj))
            grad = fmax(grad, fabs(mj - m));
    }
    return dev > k * sqrt(fmax(var, 0)) + s->o->reject_grad * grad;
}

/* Which pixels of row y might stand out by k sigma: the test of
 * stands_out before the gradient (which can only raise the bar when
 * reject_grad >= 0), with a little to spare for rounding, in a loop that
 * vectorises; stands_out decides for these few.  wt, c1, c0: each input's
 * weight, vc1 and vc0 via, by its number. */
RAPID_CLONES
static void might_stand_out(const sums *s, const float *mu, int y, double k,
                            const double *wt, const double *c1,
                            const double *c0, unsigned char *restrict cand)
{
    size_t i0 = (size_t)y * s->size;
    const float *restrict W = s->W + i0, *restrict V = s->V + i0;
    const float *restrict C = s->C + i0, *restrict M = s->M + i0;
    const uint32_t *restrict mx = s->mx + i0;
    int x, n = s->size;

    for (x = 0; x < n; x++) {
        /* no value yet (mx 0): a and g are 0, so are wM and vM */
        int in = MX_INPUT(mx[x]);
        double a = MX_A(mx[x]), g = MX_G(mx[x]), wk = wt[in];
        double wM = wk * a, w = W[x] - wM;
        double vM = wk * wk * g * a * (fabs(M[x]) * c1[in] + c0[in]);
        double wd = w > 0 ? w : 1, wMd = wM > 0 ? wM : 1;
        double var = vM / (wMd * wMd) + (V[x] - vM) / (wd * wd), dev = M[x] - mu[x];
        var = var > 0 ? var : 0;
        cand[x] = (unsigned char)((C[x] >= MIN_COVER) & (w > 0) & (wM > 0) &
                                  (dev > 0) & (dev * dev > 0.99 * k * k * var));
    }
}

static void drop_largest(sums *s, size_t i)
{
    double wM = pix_wM(s, i);

    s->S[i] -= (float)(wM * s->M[i]);
    s->V[i] -= (float)pix_vM(s, i);
    if (s->V[i] < 0)
        s->V[i] = 0;
    s->C[i] -= (float)MX_A(s->mx[i]);
    s->W[i] -= (float)wM;
    if (s->W[i] < 0)
        s->W[i] = 0;
    if (s->C[i] < 0)
        s->C[i] = 0;
}

/* nb[x]: whether any of the eight neighbours of pixel x of a row was
 * rejected first hand (1), from the decisions of the rows below, of the
 * row, and above (NULL: no such row). */
static void near_any(const unsigned char *below, const unsigned char *row,
                     const unsigned char *above, int n, unsigned char *nb)
{
    int x;

    for (x = 0; x < n; x++) {
        int l = x > 0 ? x - 1 : x, r = x < n - 1 ? x + 1 : x;
        unsigned char v = (unsigned char)((row[l] == 1) & (l != x)) |
                          (unsigned char)((row[r] == 1) & (r != x));
        if (below)
            v |= (below[l] == 1) | (below[x] == 1) | (below[r] == 1);
        if (above)
            v |= (above[l] == 1) | (above[x] == 1) | (above[r] == 1);
        nb[x] = v;
    }
}

/* Returns the number of values rejected, or -1 when out of memory.  The
 * rows flow through four-row rings: the means two rows ahead of row y,
 * the first test one row ahead, and row y is decided (and its values
 * dropped) once its neighbours on both sides have been tested. */
static long reject_outliers(sums *s)
{
    static const int dx[8] = {1, -1, 0, 0, 1, 1, -1, -1};
    static const int dy[8] = {0, 0, 1, -1, 1, -1, 1, -1};
    int n = s->size, x, y, d, r;
    float *mu[4] = {NULL};
    unsigned char *rej[4] = {NULL}, *nb = malloc((size_t)n);
    double wt[256] = {0}, c1[256] = {0}, c0[256] = {0};
    long nrej = 0;

    for (r = 0; r < 4; r++)
        if (!nb || !(mu[r] = malloc((size_t)n * sizeof **mu)) ||
            !(rej[r] = malloc((size_t)n))) {
            nrej = -1;
            goto cleanup;
        }
    for (r = 0; r < s->nin && r < 256; r++) {
        wt[r] = s->in[r].weight;
        c1[r] = s->in[r].vc1;
        c0[r] = s->in[r].vc0 * s->in[r].via;
    }
    for (y = -2; y < n; y++) {
        if (y + 2 < n)
            others_mean(s, y + 2, mu[(y + 2) & 3]);
        if (y + 1 >= 0 && y + 1 < n) {
            unsigned char *rj = rej[(y + 1) & 3];
            if (s->o->reject_grad >= 0) /* the few that might, first */
                might_stand_out(s, mu[(y + 1) & 3], y + 1, s->o->reject_sigma,
                                wt, c1, c0, rj);
            else
                memset(rj, 1, (size_t)n);
            for (x = 0; x < n; x++)
                if (rj[x])
                    rj[x] = (unsigned char)stands_out(s, mu, x, y + 1, s->o->reject_sigma);
        }
        if (y < 0)
            continue;
        /* The edges of a cosmic ray are fainter than its core: a neighbour
         * of a rejected value that came from the same input needs less.
         * Which pixels have one at all, first, in a loop that vectorises
         * (most have none). */
        near_any(y > 0 ? rej[(y - 1) & 3] : NULL, rej[y & 3],
                 y + 1 < n ? rej[(y + 1) & 3] : NULL, n, nb);
        for (x = 0; x < n; x++) {
            size_t j = (size_t)y * n + x;
            int near = 0;
            if (!nb[x] || rej[y & 3][x] || !s->mx[j])
                continue;
            for (d = 0; d < 8 && !near; d++) {
                int xx = x + dx[d], yy = y + dy[d];
                size_t i = (size_t)yy * n + xx;
                near = xx >= 0 && yy >= 0 && xx < n && yy < n && rej[yy & 3][xx] == 1 &&
                       s->mx[i] && MX_INPUT(s->mx[i]) == MX_INPUT(s->mx[j]);
            }
            if (near && stands_out(s, mu, x, y, s->o->grow_sigma))
                rej[y & 3][x] = 2;
        }
        for (x = 0; x < n; x++)
            if (rej[y & 3][x]) {
                drop_largest(s, (size_t)y * n + x);
                nrej++;
            }
    }
cleanup:
    for (r = 0; r < 4; r++)
        free(mu[r]), free(rej[r]);
    free(nb);
    return nrej;
}

/* ------------------------------------------------------ maps and headers */

/* The maps, in place: the image over the sums S, the uncertainty over V,
 * the coverage over C; the other planes are freed. */
RAPID_CLONES
static void take_maps(sums *s, rapid_coadd *out)
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
    sums_free(s);
}

static int common_header(rapid_header *h, rapid_wcs *grid, int64_t rtid,
                         const rapid_filter *f, const input *in, int n,
                         double magzp, const rapid_refimmeta *m)
{
    char key[24], date[32];
    double texp = 0;
    time_t now = time(NULL);
    struct tm tm;
    int k, rc = 0;

    for (k = 0; k < n; k++)
        texp += in[k].exptime;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    rc |= rapid_wcs_to_header(grid, h, NULL);
    rc |= rapid_header_set_long(h, "FIELD", (long)rtid, "sky tile (rtid, NSIDE 512)");
    rc |= rapid_header_set_long(h, "FID", f->fid, "filter id");
    rc |= rapid_header_set_str(h, "FILTER", f->name, "filter");
    rc |= rapid_header_set_long(h, "NFRAMES", n, "input images combined");
    rc |= rapid_header_set_double(h, "MJDSTART", m->mjdobsmin, "first input MJD-OBS");
    rc |= rapid_header_set_double(h, "MJDEND", m->mjdobsmax, "last input MJD-OBS");
    rc |= rapid_header_set_double(h, "MAGZP", magzp, "AB zero point for DN/s");
    rc |= rapid_header_set_double(h, "COV5PERC", m->cov5percent,
                                  "% of pixels with coverage >= 5");
    rc |= rapid_header_set_double(h, "TOTEXPTM", texp, "[s] total exposure time");
    for (k = 0; k < n; k++) {
        const char *base = strrchr(in[k].src->path, '/');
        snprintf(key, sizeof key, "INFIL%03d", k + 1);
        rc |= rapid_header_set_str(h, key, base ? base + 1 : in[k].src->path,
                                   "input L2 file");
    }
    rc |= rapid_header_set_str(h, "RAPIDVER", rapid_version(), "rapid version");
    rc |= rapid_header_set_str(h, "GITCOMM", rapid_git_commit(), "rapid git commit");
    rc |= rapid_header_set_str(h, "DATE", date, "UTC date of creation");
    return rc ? RAPID_E_NOMEM : 0;
}

static int set_headers(rapid_coadd *out, rapid_wcs *grid, int64_t rtid,
                       const rapid_filter *f, const input *in, int n,
                       double magzp, rapid_err *err)
{
    int rc = 0;

    rc |= common_header(&out->image.hdr, grid, rtid, f, in, n, magzp, &out->meta);
    rc |= rapid_header_set_str(&out->image.hdr, "BUNIT", "DN/s", "at MAGZP");
    rc |= rapid_header_copy(&out->coverage.hdr, &out->image.hdr);
    rc |= rapid_header_set_str(&out->coverage.hdr, "BUNIT", "pixel",
                               "sum of input overlap areas, output pixels");
    rc |= rapid_header_copy(&out->uncertainty.hdr, &out->image.hdr);
    rc |= rapid_header_set_str(&out->uncertainty.hdr, "BUNIT", "DN/s",
                               "1-sigma uncertainty of the image");
    if (rc)
        return rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory for the headers");
    return 0;
}

/* ------------------------------------------------------------ statistics */

/* 3-sigma clipped mean and deviation of an even sample of at most 2
 * million of v's finite values.  The sample is gathered once: strided
 * reads of the whole image in each of up to 10 iterations cost more than
 * the arithmetic. */
static int clipped_stats(const float *v, size_t n, double *mean, double *sd)
{
    size_t step = rapid_sample_step(n, 2000000), i, m = 0;
    float *x = malloc((n / step + 1) * sizeof *x);
    double mu = 0, s = 1e30;
    int it;

    *mean = *sd = NAN;
    if (!x)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step)
        if (isfinite(v[i]))
            x[m++] = v[i];
    for (it = 0; it < 10; it++) { /* to convergence */
        double sum = 0, sum2 = 0, nm, ns;
        long k = 0;
        for (i = 0; i < m; i++) {
            double y = x[i];
            if (it > 0 && fabs(y - mu) > 3 * s)
                continue;
            sum += y, sum2 += y * y, k++;
        }
        if (k < 2) {
            free(x);
            return 0;
        }
        nm = sum / k;
        ns = sqrt(fmax(sum2 / k - nm * nm, 0));
        if (it > 0 && fabs(ns - s) < 1e-6 * s)
            break;
        mu = nm, s = ns;
    }
    free(x);
    *mean = mu;
    *sd = s;
    return 0;
}

/* *med: the median over the same sample of indices as sample_median of
 * |v[i] - ref| where v[i] is finite (absdev), or of v[i] where it is
 * positive; NaN if there are none.  The sample is all a median needs: no
 * full-size copy.  0 or RAPID_E_NOMEM. */
static int sample_median_of(const float *v, size_t n, float ref, int absdev,
                            double *med)
{
    size_t step = rapid_sample_step(n, 1000000), i, m = 0;
    float *x = malloc((n / step + 1) * sizeof *x);

    *med = NAN;
    if (!x)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i += step) {
        if (absdev && isfinite(v[i]))
            x[m++] = fabsf(v[i] - ref);
        else if (!absdev && v[i] > 0)
            x[m++] = v[i];
    }
    if (m)
        *med = rapid_select_f(x, m, m / 2);
    free(x);
    return 0;
}

/* The refimmeta statistics of the maps.  0 or RAPID_E_NOMEM. */
static int image_stats(rapid_coadd *c)
{
    rapid_refimmeta *m = &c->meta;
    size_t n = (size_t)c->image.nx * c->image.ny, i, ncov = 0, n5 = 0;
    float lo = INFINITY, hi = -INFINITY;
    double mad;
    int rc;

    m->npixnan = 0;
    for (i = 0; i < n; i++) {
        float v = c->image.data[i];
        if (!isfinite(v)) {
            m->npixnan++;
            continue;
        }
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        ncov++;
        n5 += c->coverage.data[i] >= 5;
    }
    m->gmin = lo, m->gmax = hi;
    m->cov5percent = n ? 100.0 * n5 / n : 0;
    if (!ncov)
        m->gmin = m->gmax = NAN;
    /* datascale: robust sigma, 1.4826 x median absolute deviation */
    if ((rc = clipped_stats(c->image.data, n, &m->clmean, &m->clstddev)) != 0 ||
        (rc = sample_median(c->image.data, n, &m->gmedian)) != 0 ||
        (rc = sample_median_of(c->image.data, n, (float)m->gmedian, 1, &mad)) != 0 ||
        (rc = sample_median_of(c->coverage.data, n, 0, 0, &m->medncov)) != 0 ||
        (rc = sample_median(c->uncertainty.data, n, &m->medpixunc)) != 0)
        return rc;
    m->datascale = 1.4826 * mad;
    return 0;
}

/* ------------------------------------------------------------ the coadd */

static int choose_inputs(const rapid_coadd_opts *o, const rapid_filter *f,
                         int64_t rtid, const rapid_coadd_input *src, int n,
                         rapid_wcs *grid, const rapid_tile *t, input **out,
                         int *nout, rapid_err *err)
{
    input *in = calloc((size_t)(n > 0 ? n : 1), sizeof *in);
    int k, m = 0, rc = 0;

    *out = in;
    *nout = 0;
    if (!in)
        return rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
    for (k = 0; k < n; k++) {
        const rapid_filter *g;
        if ((rc = read_input(&src[k], &in[m], err)) != 0) {
            input_release(&in[m]);
            goto cleanup;
        }
        g = rapid_filter_by_name(in[m].filter);
        if (g != f) {
            rc = rapid_fail(err, RAPID_E_ARG, "%s: filter %s, but the reference "
                            "image is for %s", src[k].path, in[m].filter, f->name);
            input_release(&in[m]);
            goto cleanup;
        }
        if (!locate_input(&in[m], grid, o->size, t->cra, t->cdec)) {
            input_release(&in[m]);
            continue;
        }
        m++;
    }
    qsort(in, (size_t)m, sizeof *in, cmp_dist);
    while (m > o->max_inputs)
        input_release(&in[--m]);
    if (m < o->min_inputs)
        rc = rapid_fail(err, RAPID_E_TOOFEW,
                        "tile %lld, %s: %d usable input image%s of %d given; a "
                        "reference image needs at least %d",
                        (long long)rtid, f->name, m, m == 1 ? "" : "s", n,
                        o->min_inputs);
cleanup:
    *nout = m;
    return rc;
}

static int reference_psf(const rapid_coadd_opts *o, input *in, int n,
                         rapid_image *out, rapid_err *err)
{
    rapid_image *psfs = calloc((size_t)n, sizeof *psfs);
    char path[4096];
    int k, rc = 0;

    if (!psfs)
        return rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
    for (k = 0; k < n && rc == 0; k++) {
        const char *p = in[k].src->psf_path;
        if (!p) {
            if ((rc = rapid_coadd_find_psf(in[k].src->path, in[k].filter, in[k].sca,
                                           path, sizeof path, err)) != 0)
                break;
            p = path;
        }
        rc = rapid_fits_read_image(p, NULL, &psfs[k], err);
    }
    if (rc == 0)
        rc = rapid_coadd_psf(psfs, n, o->psf_size, out, err);
    for (k = 0; k < n; k++)
        rapid_image_release(&psfs[k]);
    free(psfs);
    return rc;
}

static int catalog(rapid_coadd *c, rapid_wcs *grid, rapid_err *err)
{
    rapid_extract_opts eo;
    rapid_extract_stats st;
    int rc;

    rapid_extract_opts_init(&eo);
    rc = rapid_extract(c->image.data, c->uncertainty.data, NULL, c->image.nx,
                       c->image.ny, &eo, grid, &c->catalog, &st, err);
    if (rc)
        return rapid_err_prefix(err, "reference image catalog");
    c->meta.nsexcatsources = st.nsources;
    c->meta.fwhmmedpix = st.fwhm_med;
    c->meta.fwhmminpix = st.fwhm_min;
    c->meta.fwhmmaxpix = st.fwhm_max;
    return 0;
}

int rapid_coadd_make(const rapid_coadd_opts *o, int64_t rtid,
                     const char *filter, const rapid_coadd_input *inputs, int n,
                     rapid_coadd *out, rapid_progress_fn progress, void *arg,
                     rapid_err *err)
{
    const rapid_filter *f = rapid_filter_by_name(filter);
    rapid_wcs grid = RAPID_WCS_INIT;
    rapid_tile t = {0};
    input *in = NULL;
    sums s;
    double *zp = NULL, magzp;
    int nin = 0, k, rc = 0;

    memset(&s, 0, sizeof s);
    rapid_coadd_init(out);
    if (!f)
        return rapid_fail(err, RAPID_E_ARG, "reference image: unknown filter '%s'",
                          filter ? filter : "(null)");
    if (o->size < 16 || o->max_inputs < 1 || o->max_inputs > 255 || o->min_inputs < 1)
        return rapid_fail(err, RAPID_E_ARG, "reference image: bad options (size %d, "
                          "inputs %d..%d)", o->size, o->min_inputs, o->max_inputs);
    if ((rc = rapid_tile_get(o->nside, rtid, &t, err)) != 0 ||
        (rc = rapid_wcs_tan_grid(&grid, t.cra, t.cdec, o->size, o->size,
                                 o->pixscale, err)) != 0)
        return rc;
    if ((rc = choose_inputs(o, f, rtid, inputs, n, &grid, &t, &in, &nin, err)) != 0)
        goto cleanup;
    /* The common zero point: as asked, or the median of the inputs'. */
    if (!(zp = malloc((size_t)nin * sizeof *zp))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    out->meta.mjdobsmin = INFINITY, out->meta.mjdobsmax = -INFINITY;
    for (k = 0; k < nin; k++) {
        zp[k] = in[k].zptmag;
        out->meta.mjdobsmin = fmin(out->meta.mjdobsmin, in[k].mjd);
        out->meta.mjdobsmax = fmax(out->meta.mjdobsmax, in[k].mjd);
    }
    qsort(zp, (size_t)nin, sizeof *zp, cmp_double_asc);
    magzp = isfinite(o->magzp) ? o->magzp : zp[nin / 2];
    for (k = 0; k < nin; k++)
        in[k].scale = pow(10, 0.4 * (magzp - in[k].zptmag)) / in[k].exptime;
    out->meta.nframes = nin;
    /* Resample and add every input. */
    s.o = o, s.in = in, s.nin = nin, s.grid = &grid;
    s.progress = progress, s.arg = arg;
    pthread_mutex_init(&s.lock, NULL);
    for (k = 0; k < NBAND; k++)
        pthread_mutex_init(&s.band[k], NULL);
    if (sums_alloc(&s, o->size) != 0) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory for a "
                        "%d x %d grid", o->size, o->size);
        goto cleanup;
    }
    if ((rc = run_inputs(&s, o->nthreads, err)) != 0)
        goto cleanup;
    out->meta.npixsat = s.npixsat;
    /* Reject, then the maps. */
    if ((out->meta.clnoutliers = reject_outliers(&s)) < 0) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    take_maps(&s, out); /* frees the other planes: the catalog reuses them */
    if ((rc = image_stats(out)) != 0) {
        rc = rapid_fail(err, rc, "reference image statistics: no memory");
        goto cleanup;
    }
    if ((rc = reference_psf(o, in, nin, &out->psf, err)) != 0 ||
        (rc = catalog(out, &grid, err)) != 0 ||
        (rc = set_headers(out, &grid, rtid, f, in, nin, magzp, err)) != 0)
        goto cleanup;
    if (rapid_header_set_str(&out->psf.hdr, "FILTER", f->name, "filter") ||
        rapid_header_set_long(&out->psf.hdr, "FIELD", (long)rtid, "sky tile")) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory for its header");
        goto cleanup;
    }
    if (!(out->inputs = calloc((size_t)nin, sizeof *out->inputs))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
        goto cleanup;
    }
    for (k = 0; k < nin; k++) {
        if (!(out->inputs[k] = strdup(in[k].src->path))) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
            goto cleanup;
        }
        out->ninputs++;
    }
cleanup:
    sums_free(&s);
    if (s.o) {
        pthread_mutex_destroy(&s.lock);
        for (k = 0; k < NBAND; k++)
            pthread_mutex_destroy(&s.band[k]);
    }
    for (k = 0; k < nin; k++)
        input_release(&in[k]);
    free(in);
    free(zp);
    rapid_wcs_release(&grid);
    if (rc)
        rapid_coadd_release(out);
    rapid_big_trim();
    return rc;
}

/* ---------------------------------------------------------------- output */

int rapid_coadd_write(const rapid_coadd *c, const char *dir, int64_t rtid,
                      const char *filter, rapid_err *err)
{
    static const char *suffix[5] = {"", "_cov", "_unc", "_psf", "_cat"};
    char name[5][128];
    const char *names[5];
    rapid_prodset *set = NULL;
    int k, rc;

    for (k = 0; k < 5; k++) {
        snprintf(name[k], sizeof name[k], "rapid_ref_%lld_%s%s.fits",
                 (long long)rtid, filter, suffix[k]);
        names[k] = name[k];
    }
    if ((rc = rapid_prodset_begin(&set, dir, names, 5, err)) != 0)
        return rc;
    for (k = 0; k < 5 && rc == 0; k++) {
        const char *path = rapid_prodset_path(set, k);
        switch (k) {
        case 0: rc = rapid_fits_write_image(path, &c->image, "SCI", err); break;
        case 1: rc = rapid_fits_write_image(path, &c->coverage, "COV", err); break;
        case 2: rc = rapid_fits_write_image(path, &c->uncertainty, "UNC", err); break;
        case 3: rc = rapid_fits_write_image(path, &c->psf, NULL, err); break;
        default: rc = rapid_fits_write_table(path, &c->catalog, "CATALOG", err);
        }
    }
    if (rc) {
        rapid_prodset_abort(set);
        rapid_err_prefix(err, "%s: the reference image was not written", dir);
        return rc;
    }
    return rapid_prodset_commit(set, err);
}
