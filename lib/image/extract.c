/* extract.c - detection and measurement through SEP.
 *
 * SEP keeps its working state per thread; its process-wide settings (the
 * pixel-stack size, the sub-object limit) are set once, and a detection
 * whose objects overflow the stack retries alone (an exclusive lock, the
 * others' detections taking it shared).  So catalogs are made side by
 * side, each detected in strips on its own threads (extract_strips.c)
 * and measured on them.  NaN pixels are masked and set to 0 in a working
 * copy; SEP never sees them.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "rapid/extract.h"
#include "core/bigmem.h"
#include "image/extract_internal.h"
#include "core/stats.h"

/* sepcore.h's PIXSTACK_FULL (sep.h does not export the codes). */
#define SEP_PIXSTACK_FULL 2

/* SEP's own default pixel stack: what every detection runs with. */
#define SEP_STACK 300000

static pthread_rwlock_t stack_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t sep_once = PTHREAD_ONCE_INIT;

static void sep_setup(void)
{
    sep_set_sub_object_limit(4096);
    sep_set_extract_pixstack(SEP_STACK);
}

void rapid_extract_opts_init(rapid_extract_opts *o)
{
    static const double diam[] = {2, 3, 4, 6, 10, 14};
    int k;

    memset(o, 0, sizeof *o);
    o->thresh = 2.5;
    o->minarea = 5;
    o->deblend_nthresh = 32;
    o->deblend_cont = 0.005;
    o->filter_fwhm = 2.0;
    o->bkg_mesh = 64;
    o->bkg_filter = 3;
    o->naper = 6;
    for (k = 0; k < o->naper; k++)
        o->aper_diam[k] = diam[k];
    o->strip_rows = 0;
    o->nthreads = 1;
}

int rapid_sep_fail(rapid_err *err, int status, const char *what)
{
    char msg[128], detail[512];

    sep_get_errmsg(status, msg);
    sep_get_errdetail(detail);
    return rapid_fail(err, RAPID_E_ARG, "source extraction: %s: %s%s%s", what,
                      msg, detail[0] ? ": " : "", detail);
}

/* A copy with NaN -> 0, and the NaN mask (1 = no data). */
static int clean_copy(const float *in, size_t n, float **out,
                      unsigned char **mask)
{
    size_t i;

    *out = rapid_big_malloc(n * sizeof **out);
    *mask = rapid_big_malloc(n); /* every byte is written below */
    if (!*out || !*mask)
        return RAPID_E_NOMEM;
    for (i = 0; i < n; i++) {
        int bad = !isfinite(in[i]);
        (*out)[i] = bad ? 0.0f : in[i];
        (*mask)[i] = (unsigned char)bad;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Gaussian detection kernel of the given FWHM; *side odd.  Half-width
 * ceil(FWHM) pixels, as SExtractor's own default filter (gauss_2.0_5x5 at
 * FWHM 2): the samples left out beyond 1 FWHM (2.35 sigma) carry 0.4% of
 * the kernel's weight at FWHM 2, and SEP's convolution costs the square of
 * the width (a 9x9 kernel was 2 s of a 7000^2 coadd, the 5x5 is 0.7 s). */
float *rapid_sep_gauss_kernel(double fwhm, int *side)
{
    double sig = fwhm / 2.3548200450309493;
    int h = (int)ceil(fwhm), i, j, n;
    float *k;

    if (h < 1)
        h = 1;
    n = 2 * h + 1;
    if (!(k = malloc((size_t)n * n * sizeof *k)))
        return NULL;
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++)
            k[j * n + i] = (float)exp(-((i - h) * (i - h) + (j - h) * (j - h)) /
                                      (2 * sig * sig));
    *side = n;
    return k;
}

/* Can SEP read noise as it is?  It replaces the noise of masked pixels
 * (before it looks at them) and never reads it elsewhere in apertures, so
 * NaN noise is harmless where data is NaN (masked); a NaN anywhere else
 * needs the cleaned copy (0 there, as always). */
static int noise_is_clean(const float *noise, const unsigned char *mask,
                          size_t n)
{
    size_t i;
    int bad = 0;

    for (i = 0; i < n; i++) /* no early exit: this loop vectorises */
        bad |= !mask[i] & (noise[i] != noise[i]);
    return !bad;
}

static int sep_detect_once(const sep_image *dim, double thresh, int thresh_type,
                           const float *kern, int side,
                           const rapid_extract_opts *o, sep_catalog **sc)
{
    return sep_extract(dim, (float)thresh, thresh_type, o->minarea, kern, side,
                       side,
                       /* SExtractor's convolution: SEP's matched filter
                        * with a noise map is 7x slower on a 7000^2 image */
                       SEP_FILTER_CONV, o->deblend_nthresh, o->deblend_cont, 1,
                       1.0, sc);
}

/* sep_extract with a pixel stack that fits the image.  The stack holds the
 * pixels of the objects still open on the current row; SEP fills all of it
 * (28 bytes a pixel) before the first row, so a stack sized for the worst
 * case costs more than the detection: 20 million pixels were 560 MB and a
 * second.  Crowded 7000^2 coadds of 25 inputs need less than 30 000, and
 * every detection starts with SEP's default, 300 000 (set once: the size
 * is process-wide).  Should a pathological image overflow it, the
 * detection is made again alone (the stack lock taken exclusively) with 8
 * times more, up to every pixel of the image (which cannot overflow), and
 * the default is put back. */
int rapid_sep_detect(const sep_image *dim, double thresh, int thresh_type,
                     const float *kern, int side, const rapid_extract_opts *o,
                     sep_catalog **sc)
{
    size_t n = (size_t)dim->w * (size_t)dim->h, stack = SEP_STACK;
    int s;

    pthread_once(&sep_once, sep_setup);
    pthread_rwlock_rdlock(&stack_lock);
    s = sep_detect_once(dim, thresh, thresh_type, kern, side, o, sc);
    pthread_rwlock_unlock(&stack_lock);
    if (s != SEP_PIXSTACK_FULL || stack >= n)
        return s;
    pthread_rwlock_wrlock(&stack_lock);
    do {
        stack *= 8;
        if (stack > n)
            stack = n;
        sep_set_extract_pixstack(stack);
        s = sep_detect_once(dim, thresh, thresh_type, kern, side, o, sc);
    } while (s == SEP_PIXSTACK_FULL && stack < n);
    sep_set_extract_pixstack(SEP_STACK);
    pthread_rwlock_unlock(&stack_lock);
    return s;
}

typedef struct columns {
    int32_t *number, *npix, *flags;
    double *x, *y, *xwin, *ywin, *ra, *dec;
    float *flux, *a, *b, *theta, *elong, *rhalf, *fwhm, *peak;
    float *ap[RAPID_EXTRACT_MAXAPER], *aperr[RAPID_EXTRACT_MAXAPER];
} columns;

static int make_columns(rapid_table *t, long n, const rapid_extract_opts *o,
                        int with_sky, columns *c)
{
    int k;

    if (rapid_table_init(t, n))
        return RAPID_E_NOMEM;
    c->number = rapid_table_add_i32(t, "NUMBER", "");
    c->x = rapid_table_add_f64(t, "X", "pix");
    c->y = rapid_table_add_f64(t, "Y", "pix");
    c->xwin = rapid_table_add_f64(t, "XWIN", "pix");
    c->ywin = rapid_table_add_f64(t, "YWIN", "pix");
    c->ra = with_sky ? rapid_table_add_f64(t, "RA", "deg") : NULL;
    c->dec = with_sky ? rapid_table_add_f64(t, "DEC", "deg") : NULL;
    c->flux = rapid_table_add_f32(t, "FLUX", "");
    for (k = 0; k < o->naper; k++) {
        char name[32];
        snprintf(name, sizeof name, "FLUX_APER_%g", o->aper_diam[k]);
        c->ap[k] = rapid_table_add_f32(t, name, "");
        snprintf(name, sizeof name, "FLUXERR_APER_%g", o->aper_diam[k]);
        c->aperr[k] = rapid_table_add_f32(t, name, "");
        if (!c->ap[k] || !c->aperr[k])
            return RAPID_E_NOMEM;
    }
    c->a = rapid_table_add_f32(t, "A", "pix");
    c->b = rapid_table_add_f32(t, "B", "pix");
    c->theta = rapid_table_add_f32(t, "THETA", "deg");
    c->elong = rapid_table_add_f32(t, "ELONGATION", "");
    c->rhalf = rapid_table_add_f32(t, "FLUX_RADIUS", "pix");
    c->fwhm = rapid_table_add_f32(t, "FWHM", "pix");
    c->npix = rapid_table_add_i32(t, "NPIX", "pix");
    c->peak = rapid_table_add_f32(t, "PEAK", "");
    c->flags = rapid_table_add_i32(t, "FLAGS", "");
    if (!c->number || !c->x || !c->y || !c->xwin || !c->ywin ||
        (with_sky && (!c->ra || !c->dec)) || !c->flux || !c->a || !c->b ||
        !c->theta || !c->elong || !c->rhalf || !c->fwhm || !c->npix ||
        !c->peak || !c->flags)
        return RAPID_E_NOMEM;
    return 0;
}

/* Apertures, half-light radius, windowed position of object i. */
static void measure(const sep_image *im, const rapid_sep_objs *sc, long i,
                    const rapid_extract_opts *o, columns *c)
{
    double sum, sumerr, area, tot, frac = 0.5, r50 = NAN, xw, yw, sig;
    short flag = 0, f;
    int k, niter;

    c->number[i] = (int32_t)(i + 1);
    c->x[i] = sc->x[i];
    c->y[i] = sc->y[i];
    c->flux[i] = sc->flux[i];
    c->a[i] = sc->a[i];
    c->b[i] = sc->b[i];
    c->theta[i] = (float)(sc->theta[i] * 180.0 / M_PI);
    c->elong[i] = sc->b[i] > 0 ? sc->a[i] / sc->b[i] : NAN;
    c->npix[i] = sc->npix[i];
    c->peak[i] = sc->peak[i];
    flag = sc->flag[i];
    for (k = 0; k < o->naper; k++) {
        f = 0;
        sep_sum_circle(im, sc->x[i], sc->y[i], o->aper_diam[k] / 2, 0, 0, 0,
                       &sum, &sumerr, &area, &f);
        c->ap[k][i] = (float)sum;
        c->aperr[k][i] = (float)sumerr;
        flag |= f;
    }
    /* Half-light radius within 4 a (at least 3 px), as SExtractor does. */
    f = 0;
    sep_sum_circle(im, sc->x[i], sc->y[i], fmax(3.0, 4.0 * sc->a[i]), 0, 0, 0,
                   &tot, &sumerr, &area, &f);
    if (tot > 0 &&
        /* subpix 5 as SExtractor: SEP's radius needs sub-sampling */
        sep_flux_radius(im, sc->x[i], sc->y[i], fmax(3.0, 4.0 * sc->a[i]), 0,
                        5, 0, &tot, &frac, 1, &r50, &f) == 0) {
        c->rhalf[i] = (float)r50;
        c->fwhm[i] = (float)(2.0 * r50); /* exact for a Gaussian */
    } else {
        c->rhalf[i] = c->fwhm[i] = NAN;
    }
    xw = sc->x[i], yw = sc->y[i];
    sig = isfinite(r50) && r50 > 0 ? 2.0 * r50 / 2.3548200450309493 : 0.5;
    f = 0;
    if (sep_windowed(im, sc->x[i], sc->y[i], sig, 0, 0, &xw, &yw, &niter, &f) != 0 ||
        !isfinite(xw) || !isfinite(yw))
        xw = sc->x[i], yw = sc->y[i];
    c->xwin[i] = xw;
    c->ywin[i] = yw;
    c->flags[i] = flag;
}

/* The measurements of a range of objects; each object's are its own, so
 * the ranges run on threads side by side and give the same columns. */
typedef struct measure_run {
    const sep_image *im;
    const rapid_sep_objs *ob;
    const rapid_extract_opts *o;
    columns *c;
    long i0, i1, done;
} measure_run;

/* Sources i0 to i1; the stop flag looked at every 512: m->done says how
 * many were measured. */
static void *measure_range(void *arg)
{
    measure_run *m = arg;
    long i;

    for (i = m->i0; i < m->i1; i++) {
        if ((i - m->i0) % 512 == 0 && m->o->stop && *m->o->stop)
            break;
        measure(m->im, m->ob, i, m->o, m->c);
    }
    m->done = i - m->i0;
    return NULL;
}

/* Every source measured, on o->nthreads; the number measured (ob->n
 * unless the stop flag was set). */
static long measure_all(const sep_image *im, const rapid_sep_objs *ob,
                        const rapid_extract_opts *o, columns *c)
{
    measure_run m[RAPID_EXTRACT_MAXTHREADS];
    pthread_t th[RAPID_EXTRACT_MAXTHREADS];
    int nt = o->nthreads < 1 ? 1 : o->nthreads > RAPID_EXTRACT_MAXTHREADS
                                       ? RAPID_EXTRACT_MAXTHREADS : o->nthreads;
    int k, made[RAPID_EXTRACT_MAXTHREADS] = {0};
    long done;

    if (ob->n < 64 * nt)
        nt = 1;
    for (k = 0; k < nt; k++) {
        m[k].im = im, m[k].ob = ob, m[k].o = o, m[k].c = c;
        m[k].i0 = ob->n * k / nt;
        m[k].i1 = ob->n * (k + 1) / nt;
    }
    for (k = 1; k < nt; k++)
        made[k] = pthread_create(&th[k], NULL, measure_range, &m[k]) == 0;
    measure_range(&m[0]);
    for (k = 1; k < nt; k++)
        if (made[k])
            pthread_join(th[k], NULL);
        else
            measure_range(&m[k]); /* no thread: here */
    for (k = 0, done = 0; k < nt; k++)
        done += m[k].done;
    return done;
}

/* FWHM statistics of stars.  Candidates are isolated, unflagged, round
 * and bright; at faint magnitudes most of them are galaxies, which are
 * never narrower than the PSF, so the stars are the lower envelope of the
 * FWHM distribution: the median of its lowest fifth locates it, and the
 * candidates within 15% of that are taken as stars. */
static void star_stats(const columns *c, long n, int a6, rapid_extract_stats *st)
{
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v), locus;
    long i, j, m = 0, lo, k = 0;

    st->nstars = 0;
    st->fwhm_med = st->fwhm_min = st->fwhm_max = NAN;
    if (!v)
        return;
    for (i = 0; i < n; i++) {
        int lonely = 1;
        if (c->flags[i] != 0 || !(c->elong[i] < 1.5) || !(c->fwhm[i] > 0) ||
            !(c->ap[a6][i] > 20 * c->aperr[a6][i]))
            continue;
        for (j = 0; j < n && lonely; j++) /* n is modest for bright sources */
            if (j != i && fabs(c->x[j] - c->x[i]) < 8 && fabs(c->y[j] - c->y[i]) < 8)
                lonely = 0;
        if (lonely)
            v[m++] = c->fwhm[i];
    }
    if (m > 0) {
        qsort(v, (size_t)m, sizeof *v, cmp_double);
        lo = m / 5 > 0 ? m / 5 : 1;
        locus = v[lo / 2];
        for (i = 0; i < m; i++) /* keep the stars, in order */
            if (fabs(v[i] - locus) <= 0.15 * locus)
                v[k++] = v[i];
        st->nstars = k;
        st->fwhm_med = v[k / 2];
        st->fwhm_min = v[0];
        st->fwhm_max = v[k - 1];
    }
    free(v);
}

int rapid_extract(const float *data, const float *noise, const float *detect,
                  int nx, int ny, const rapid_extract_opts *o, rapid_wcs *wcs,
                  rapid_table *cat, rapid_extract_stats *st, rapid_err *err)
{
    size_t n = (size_t)nx * (size_t)ny;
    float *work = NULL, *det = NULL, *noisecp = NULL, *kern = NULL;
    const float *sepnoise = NULL; /* noise as SEP reads it */
    unsigned char *mask = NULL, *dmask = NULL;
    sep_bkg *bkg = NULL;
    rapid_sep_objs ob;
    sep_image im, dim;
    columns c;
    double thresh, rms;
    int rc = 0, s, side = 0, k, a6 = 0;
    long i;

    memset(&ob, 0, sizeof ob);
    rapid_table_init(cat, 0);
    if (nx <= 0 || ny <= 0 || !data || !o || o->naper > RAPID_EXTRACT_MAXAPER)
        return rapid_fail(err, RAPID_E_ARG, "source extraction: bad arguments "
                          "(image %d x %d)", nx, ny);
    if ((rc = clean_copy(data, n, &work, &mask)) != 0 ||
        (noise && !noise_is_clean(noise, mask, n) &&
         (rc = clean_copy(noise, n, &noisecp, &dmask)) != 0)) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "source extraction: no memory for "
                        "a %d x %d image", nx, ny);
        goto cleanup;
    }
    sepnoise = noisecp ? noisecp : noise;
    rapid_big_free(dmask);
    dmask = NULL;
    memset(&im, 0, sizeof im);
    im.data = work;
    im.dtype = SEP_TFLOAT;
    im.mask = mask;
    im.mdtype = SEP_TBYTE;
    im.maskthresh = 0;
    im.w = nx;
    im.h = ny;
    im.gain = o->gain;
    if (o->bkg_mesh > 0) {
        if ((s = sep_background(&im, o->bkg_mesh, o->bkg_mesh, o->bkg_filter,
                                o->bkg_filter, 0.0, &bkg)) != 0) {
            rc = rapid_sep_fail(err, s, "background");
            goto cleanup;
        }
        sep_bkg_subarray(bkg, work, SEP_TFLOAT);
        rms = sep_bkg_globalrms(bkg);
        if (st)
            st->bkg = sep_bkg_global(bkg);
    } else {
        rapid_robust_sigma_sample(work, n, 200000, 1, &rms);
        if (st)
            st->bkg = 0;
    }
    for (i = 0; i < (long)n; i++) /* masked pixels stay 0 after subtraction */
        if (mask[i])
            work[i] = 0;
    if (st)
        st->bkg_rms = rms;
    if (sepnoise) {
        im.noise = sepnoise;
        im.ndtype = SEP_TFLOAT;
        im.noise_type = SEP_NOISE_STDDEV;
    } else {
        im.noiseval = rms;
        im.noise_type = SEP_NOISE_STDDEV;
    }
    dim = im;
    thresh = o->thresh;
    if (detect) {
        if ((rc = clean_copy(detect, n, &det, &dmask)) != 0) {
            rc = rapid_fail(err, RAPID_E_NOMEM, "source extraction: no memory");
            goto cleanup;
        }
        dim.data = det;
        dim.mask = dmask;
        dim.noise = NULL;
        dim.noise_type = SEP_NOISE_NONE;
        dim.noiseval = 0;
    } else if (!sepnoise) {
        thresh = o->thresh * rms; /* absolute: one sigma everywhere */
    }
    if (o->filter_fwhm > 0 && !(kern = rapid_sep_gauss_kernel(o->filter_fwhm, &side))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "source extraction: no memory");
        goto cleanup;
    }
    if (o->stop && *o->stop) {
        rc = rapid_fail(err, RAPID_E_INTERRUPTED, "source extraction: "
                        "interrupted before the detection");
        goto cleanup;
    }
    if ((rc = rapid_sep_detect_strips(&dim, thresh,
                                      detect || !sepnoise ? SEP_THRESH_ABS
                                                          : SEP_THRESH_REL,
                                      kern, side, o, &ob, err)) != 0)
        goto cleanup;
    if ((rc = make_columns(cat, ob.n, o, wcs != NULL, &c)) != 0) {
        rc = rapid_fail(err, rc, "source extraction: no memory for %ld sources",
                        ob.n);
        goto cleanup;
    }
    if ((i = measure_all(&im, &ob, o, &c)) < ob.n) {
        rc = rapid_fail(err, RAPID_E_INTERRUPTED, "source extraction: "
                        "interrupted after %ld of %ld sources", i, ob.n);
        goto cleanup;
    }
    if (wcs && ob.n > 0 &&
        rapid_wcs_pix2sky(wcs, ob.n, c.xwin, c.ywin, c.ra, c.dec, NULL) != 0) {
        /* a source off the projection keeps NaN; the rest are fine */
    }
    if (st) {
        st->nsources = ob.n;
        st->nstrips = ob.nstrips;
        for (k = 0; k < o->naper; k++)
            if (fabs(o->aper_diam[k] - 6) < fabs(o->aper_diam[a6] - 6))
                a6 = k;
        star_stats(&c, ob.n, a6, st);
    }
cleanup:
    if (rc)
        rapid_table_release(cat);
    rapid_sep_objs_release(&ob);
    if (bkg)
        sep_bkg_free(bkg);
    rapid_big_free(work);
    rapid_big_free(det);
    rapid_big_free(noisecp);
    rapid_big_free(mask);
    rapid_big_free(dmask);
    free(kern);
    return rc;
}
