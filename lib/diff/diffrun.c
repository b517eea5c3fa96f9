/* diffrun.c - a science image minus its reference by every method asked
 * for, from files to products (rapid/diffrun.h): what `rapid diff` and the
 * science job run. */
#include "rapid/diffrun.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/fits_internal.h"
#include "rapid/coadd.h"
#include "rapid/prodset.h"
#include "rapid/psfops.h"
#include "rapid/version.h"

enum { M_ZOGY = RAPID_DIFFRUN_ZOGY, M_NAIVE = RAPID_DIFFRUN_NAIVE,
       M_SFFT = RAPID_DIFFRUN_SFFT, NMETHOD = RAPID_DIFFRUN_NMETHOD };
static const char *const method_name[NMETHOD] = {"zogy", "naive", "sfft"};

#define PATHLEN RAPID_DIFFRUN_PATH

typedef rapid_diffrun diff_state;
typedef rapid_diffrun_opts diff_args;
typedef rapid_diffrun_method method_run;

const char *rapid_diffrun_method_name(int method)
{
    return method >= 0 && method < NMETHOD ? method_name[method] : NULL;
}

void rapid_diffrun_opts_init(rapid_diffrun_opts *o)
{
    int k;

    memset(o, 0, sizeof *o);
    for (k = 0; k < NMETHOD; k++)
        o->asked[k] = 1;
    o->nthreads = 1;
    o->order = o->half_width = -1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process's CPU time, user + system, s; or, for a method the caller
 * runs on a thread of its own beside others (lane set), this thread's
 * alone. */
static _Thread_local int lane;

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(lane ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(const diff_state *s, const char *what)
{
    if (s->o.progress)
        s->o.progress(s->o.arg, what);
}

static void warn(const diff_state *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void warn(const diff_state *s, const char *fmt, ...)
{
    char msg[2 * RAPID_ERR_MAX];
    va_list ap;

    if (!s->o.warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->o.warn(s->o.arg, msg);
}

/* ------------------------------------------------------------ file names */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Length of path without its FITS suffix (.fits, .fit, .fts, with .gz). */
static size_t stem_length(const char *path)
{
    static const char *const sfx[] = {".fits.gz", ".fit.gz", ".fts.gz",
                                      ".fits", ".fit", ".fts"};
    size_t n = strlen(path), k;

    for (k = 0; k < sizeof sfx / sizeof sfx[0]; k++) {
        size_t m = strlen(sfx[k]);
        if (n > m && strcmp(path + n - m, sfx[k]) == 0)
            return n - m;
    }
    return n;
}

/* <ref stem><suffix><ref's FITS suffix>: rapid_ref_1_H158_cov.fits beside
 * rapid_ref_1_H158.fits. */
static void sibling(const char *ref, const char *suffix, char *out, size_t sz)
{
    size_t n = stem_length(ref);
    const char *ext = ref[n] ? ref + n : ".fits";

    snprintf(out, sz, "%.*s%s%s", (int)n, ref, suffix, ext);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ------------------------------------------------------------ reading */

/* A PSF file's primary image: odd-sized and square (what ZOGY takes). */
static int read_psf(const char *path, rapid_image *psf, rapid_err *err)
{
    int rc;

    if ((rc = rapid_fits_read_image(path, "0", psf, err)) != 0)
        return rc;
    if (psf->nx != psf->ny || psf->nx % 2 == 0) {
        rc = rapid_fail(err, RAPID_E_ARG, "%s: the PSF is %d x %d, not square "
                        "and odd-sized", path, psf->nx, psf->ny);
        rapid_image_release(psf);
    }
    return rc;
}

/* A map of the reference (coverage, uncertainty) of the reference's size. */
static int read_map(const char *path, const rapid_image *ref, rapid_image *m,
                    rapid_err *err)
{
    int rc;

    if ((rc = rapid_fits_read_image(path, NULL, m, err)) != 0)
        return rc;
    if (m->nx != ref->nx || m->ny != ref->ny) {
        rc = rapid_fail(err, RAPID_E_ARG, "%s: %d x %d, the reference is "
                        "%d x %d", path, m->nx, m->ny, ref->nx, ref->ny);
        rapid_image_release(m);
    }
    return rc;
}

static double header_double(const rapid_header *h, const char *key)
{
    double v;
    return rapid_header_has(h, key) &&
                   rapid_header_get_double(h, key, &v, NULL) == 0 && isfinite(v)
               ? v
               : NAN;
}

/* science DN/s per reference DN/s for the same source, from the
 * zero points: ZPTMAG (AB magnitude of 1 DN/s) of the L2 image, MAGZP
 * (AB zero point of the reference's DN/s) of the reference, each in the
 * data's header or the primary one. */
static void zero_points(diff_state *s)
{
    const diff_args *a = &s->o;
    rapid_header h = RAPID_HEADER_INIT;
    char bunit[32] = "";

    s->sci_zp = header_double(&s->sci.rate.hdr, "ZPTMAG");
    if (!isfinite(s->sci_zp) && rapid_fits_read_header(a->sci, "0", &h, NULL) == 0)
        s->sci_zp = header_double(&h, "ZPTMAG");
    rapid_header_release(&h);
    s->ref_zp = header_double(&s->ref.hdr, "MAGZP");
    /* (a reference in memory carries its primary cards: a coadd's) */
    if (!isfinite(s->ref_zp) && !a->ref_mem &&
        rapid_fits_read_header(a->ref, "0", &h, NULL) == 0)
        s->ref_zp = header_double(&h, "MAGZP");
    rapid_header_release(&h);
    if (rapid_header_has(&s->ref.hdr, "BUNIT") &&
        rapid_header_get_str(&s->ref.hdr, "BUNIT", bunit, sizeof bunit, NULL) == 0 &&
        strcmp(bunit, "DN/s") != 0)
        warn(s, "%s: BUNIT '%s': the reference is taken to "
                  "be in DN/s", a->ref, bunit);
    if (isfinite(s->sci_zp) && isfinite(s->ref_zp)) {
        s->zp_scale = pow(10, 0.4 * (s->sci_zp - s->ref_zp));
    } else {
        s->zp_scale = 1;
        warn(s, "%s: no %s: the zero-point scale is taken "
                  "as 1 (used only with fewer than 20 stars matched)",
                  isfinite(s->sci_zp) ? a->ref : a->sci,
                  isfinite(s->sci_zp) ? "MAGZP" : "ZPTMAG");
    }
}

/* ------------------------------------------- the reference in memory */

/* A float32 as a FITS read gives it back: NaN and infinities as the one
 * NaN, -0 and subnormal numbers as 0 (lib/core/fits.c); nan: that NaN's
 * bits. */
static uint32_t bits_as_read(uint32_t w, uint32_t nan)
{
    uint32_t e = w & 0x7f800000u;

    return e == 0x7f800000u ? nan : e == 0 ? 0 : w;
}

/* The pixels of src as a read of their file gives them, into dst (empty):
 * src's own when they are so already (0), else a copy made so (1); or a
 * rapid_status. */
static int pixels_as_read(const rapid_image *src, rapid_image *dst,
                          rapid_err *err)
{
    enum { BLOCK = 4096 };
    size_t n = (size_t)src->nx * src->ny, i, j, m;
    const float nanf_ = NAN;
    uint32_t nan, w, odd = 0;
    int rc;

    memcpy(&nan, &nanf_, sizeof nan);
    /* a block at a time, without a branch per pixel (vectorised) */
    for (i = 0; i < n && !odd; i += m) {
        m = n - i < BLOCK ? n - i : BLOCK;
        for (j = 0; j < m; j++) {
            memcpy(&w, &src->data[i + j], sizeof w);
            odd |= bits_as_read(w, nan) ^ w;
        }
    }
    if (!odd) {
        dst->data = src->data;
        dst->nx = src->nx, dst->ny = src->ny;
        return 0;
    }
    if ((rc = rapid_image_alloc(dst, src->nx, src->ny, 0, err)) != 0)
        return rc;
    for (i = 0; i < n; i++) {
        memcpy(&w, &src->data[i], sizeof w);
        w = bits_as_read(w, nan);
        memcpy(&dst->data[i], &w, sizeof w);
    }
    return 1;
}

/* The header a read of an image HDU gives that was written with src's
 * cards (in an extension named ext; NULL: the primary HDU): src without
 * the cards of the layout (which the writer leaves out and the reader
 * drops), nor EXTNAME (then the writer's own); a CONTINUE card goes with
 * the card it continues. */
static int header_as_read(const rapid_header *src, const char *ext,
                          rapid_header *dst)
{
    char key[9];
    int k, i, skipping = 0, rc = 0;

    rapid_header_init(dst);
    for (k = 0; k < src->ncards && rc == 0; k++) {
        const char *card = src->cards[k];
        if (strncmp(card, "CONTINUE", 8) != 0) {
            rapid_fits_card_keyword(card, key);
            skipping = rapid_fits_cfitsio_boilerplate(card) ||
                       (ext && strcmp(key, "EXTNAME") == 0);
            for (i = 0; !skipping && rapid_fits_image_layout[i]; i++)
                skipping = rapid_fits_keyword_matches(key,
                                                      rapid_fits_image_layout[i]);
        }
        if (!skipping)
            rc = rapid_header_append_card(dst, card);
    }
    if (rc == 0 && ext)
        rc = rapid_header_set_str(dst, "EXTNAME", ext, "extension name");
    if (rc)
        rapid_header_release(dst);
    return rc;
}

/* The reference and its maps from memory (rapid_diffrun_opts.ref_mem). */
static int reference_from_memory(diff_state *s, rapid_err *err)
{
    const diff_args *a = &s->o;
    const rapid_image *src[3] = {a->ref_mem, a->ref_cov_mem, a->ref_unc_mem};
    rapid_image *dst[3] = {&s->ref, &s->cov, &s->unc};
    const char *what[3] = {a->ref, s->ref_cov_path, s->ref_unc_path};
    int k, rc;

    for (k = 0; k < 3; k++) {
        if (!src[k])
            continue;
        if (!src[k]->data || src[k]->nx < 1 || src[k]->ny < 1)
            return rapid_fail(err, RAPID_E_ARG, "%s: no pixels in memory", what[k]);
        if (k > 0 && (src[k]->nx != src[0]->nx || src[k]->ny != src[0]->ny))
            return rapid_fail(err, RAPID_E_ARG, "%s: %d x %d, the reference is "
                              "%d x %d", what[k], src[k]->nx, src[k]->ny,
                              src[0]->nx, src[0]->ny);
        if ((rc = pixels_as_read(src[k], dst[k], err)) < 0) {
            rapid_err_prefix(err, "%s", what[k]);
            return rc;
        }
        if (rc == 0)
            s->borrowed |= 1u << k;
    }
    if (header_as_read(&a->ref_mem->hdr, a->ref_mem_ext && a->ref_mem_ext[0]
                                             ? a->ref_mem_ext : "SCI",
                       &s->ref.hdr) != 0)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for its header", a->ref);
    return 0;
}

/* The reference's pixels as read go (those borrowed stay the caller's). */
static void release_reference(diff_state *s)
{
    if (s->borrowed & 1u)
        s->ref.data = NULL;
    if (s->borrowed & 2u)
        s->cov.data = NULL;
    if (s->borrowed & 4u)
        s->unc.data = NULL;
    s->borrowed = 0;
    rapid_image_release(&s->ref);
    rapid_image_release(&s->cov);
    rapid_image_release(&s->unc);
}

/* The reference PSF from memory, as read_psf reads its file. */
static int psf_from_memory(const rapid_image *src, const char *path,
                           rapid_image *psf, rapid_err *err)
{
    rapid_image tmp = RAPID_IMAGE_INIT;
    int rc;

    if (!src)
        return rapid_fail(err, RAPID_E_NOENT, "%s: no reference PSF", path);
    if ((rc = pixels_as_read(src, &tmp, err)) < 0)
        return rc;
    if (rc == 0) { /* a copy of its own all the same (it is small) */
        tmp.data = NULL;
        if ((rc = rapid_image_alloc(&tmp, src->nx, src->ny, 0, err)) != 0)
            return rc;
        memcpy(tmp.data, src->data, (size_t)src->nx * src->ny * sizeof *tmp.data);
    }
    *psf = tmp;
    if ((rc = header_as_read(&src->hdr, NULL, &psf->hdr)) != 0)
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: no memory for its header", path);
    if (rc == 0 && (psf->nx != psf->ny || psf->nx % 2 == 0))
        rc = rapid_fail(err, RAPID_E_ARG, "%s: the PSF is %d x %d, not square "
                        "and odd-sized", path, psf->nx, psf->ny);
    if (rc)
        rapid_image_release(psf);
    return rc;
}

/* The PSFs: failures are kept as messages for the ZOGY method (and the
 * refsci PSF product), not fatal: the naive difference needs none. */
static void read_psfs(diff_state *s)
{
    const diff_args *a = &s->o;
    char filter[32];
    long sca;

    if (a->sci_psf) {
        snprintf(s->sci_psf_path, sizeof s->sci_psf_path, "%s", a->sci_psf);
    } else if (rapid_header_get_str(&s->sci.rate.hdr, "FILTER", filter,
                                    sizeof filter, &s->sci_psf_err) ||
               rapid_header_get_long(&s->sci.rate.hdr, "SCA_NUM", &sca,
                                     &s->sci_psf_err) ||
               rapid_coadd_find_psf(a->sci, filter, (int)sca, s->sci_psf_path,
                                    sizeof s->sci_psf_path, &s->sci_psf_err)) {
        rapid_err_prefix(&s->sci_psf_err, "no science PSF (give --sci-psf): %s",
                         a->sci);
    }
    if (!s->sci_psf_err.code &&
        read_psf(s->sci_psf_path, &s->sci_psf, &s->sci_psf_err) == 0)
        s->have_sci_psf = 1;
    if (a->ref_psf)
        snprintf(s->ref_psf_path, sizeof s->ref_psf_path, "%s", a->ref_psf);
    else
        sibling(a->ref, "_psf", s->ref_psf_path, sizeof s->ref_psf_path);
    if (a->ref_mem ? psf_from_memory(a->ref_psf_mem, s->ref_psf_path, &s->ref_psf,
                                     &s->ref_psf_err) != 0
                   : read_psf(s->ref_psf_path, &s->ref_psf, &s->ref_psf_err) != 0) {
        if (!a->ref_psf)
            rapid_err_prefix(&s->ref_psf_err, "no reference PSF (give --ref-psf)");
        return;
    }
    s->have_ref_psf = 1;
    /* P_r from the samples: the exact blur of the file's OVERSAMP model
     * is broader still in the core, and with it ZOGY's whitening of the
     * reference's correlated noise (modelled from neighbour correlations)
     * overshoots at the frequencies where both PSFs have little power
     * (D / sigma_D up to 1.2-1.45 on the simulated pairs of test_diff_sim
     * against 0.94-1.15 from the samples) */
    if (rapid_image_alloc(&s->refsci_psf, s->ref_psf.nx, s->ref_psf.ny, 0,
                          &s->ref_psf_err) ||
        rapid_psf_on_science(s->ref_psf.data, s->ref_psf.nx, NULL, 0, 0,
                             s->refsci_psf.data, NULL, &s->ref_psf_err)) {
        rapid_err_prefix(&s->ref_psf_err, "%s", s->ref_psf_path);
        rapid_image_release(&s->refsci_psf);
        rapid_image_release(&s->ref_psf);
        s->have_ref_psf = 0;
    }
}

/* The science image, the reference and its maps. */
static int read_inputs(diff_state *s, rapid_err *err)
{
    const diff_args *a = &s->o;
    int rc;

    if ((rc = rapid_science_read(a->sci, a->sci_ext && a->sci_ext[0] ? a->sci_ext : NULL,
                                 &s->sci, err)) ||
        (rc = rapid_wcs_from_header(&s->sci_wcs, &s->sci.rate.hdr, err))) {
        if (rc == RAPID_E_WCS)
            rapid_err_prefix(err, "%s", a->sci);
        return rc;
    }
    s->sci_wcs.nx = s->sci.rate.nx;
    s->sci_wcs.ny = s->sci.rate.ny;
    if (a->ref_cov)
        snprintf(s->ref_cov_path, sizeof s->ref_cov_path, "%s", a->ref_cov);
    else
        sibling(a->ref, "_cov", s->ref_cov_path, sizeof s->ref_cov_path);
    if (a->ref_unc)
        snprintf(s->ref_unc_path, sizeof s->ref_unc_path, "%s", a->ref_unc);
    else
        sibling(a->ref, "_unc", s->ref_unc_path, sizeof s->ref_unc_path);
    if ((rc = a->ref_mem ? reference_from_memory(s, err)
                         : rapid_fits_read_image(a->ref, NULL, &s->ref, err)) ||
        (rc = rapid_wcs_from_header(&s->ref_wcs, &s->ref.hdr, err))) {
        if (rc == RAPID_E_WCS)
            rapid_err_prefix(err, "%s", a->ref);
        return rc;
    }
    s->ref_wcs.nx = s->ref.nx;
    s->ref_wcs.ny = s->ref.ny;
    /* a map given must be read; one looked for beside the reference may
     * be missing (a reference in memory: its maps came with it) */
    if (a->ref_mem) {
        s->have_cov = a->ref_cov_mem != NULL;
        s->have_unc = a->ref_unc_mem != NULL;
    } else {
        if (a->ref_cov || exists(s->ref_cov_path)) {
            if ((rc = read_map(s->ref_cov_path, &s->ref, &s->cov, err)))
                return rc;
            s->have_cov = 1;
        }
        if (a->ref_unc || exists(s->ref_unc_path)) {
            if ((rc = read_map(s->ref_unc_path, &s->ref, &s->unc, err)))
                return rc;
            s->have_unc = 1;
        }
    }
    if (!s->have_cov)
        warn(s, "no coverage map %s: coverage 1 wherever "
                  "the reference has data", s->ref_cov_path);
    if (!s->have_unc)
        warn(s, "no uncertainty map %s: the reference's "
                  "background noise is used", s->ref_unc_path);
    zero_points(s);
    read_psfs(s);
    /* hot pixels and cosmic-ray charge that DQ does not mark, told from
     * point sources by the science PSF */
    if (s->have_sci_psf) {
        rapid_err e = RAPID_ERR_INIT;
        rc = rapid_science_mask_spikes(&s->sci, s->sci_psf.data, s->sci_psf.nx, &e);
        if (rc == RAPID_E_ARG) {
            warn(s, "%s: spikes not masked: %s", s->sci_psf_path, e.msg);
        } else if (rc) {
            *err = e;
            rapid_err_prefix(err, "%s", a->sci);
            return rc;
        }
    }
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The median of a background's window means, DN/s. */
static double background_level(const rapid_background *b)
{
    size_t n = (size_t)b->gx * b->gy;
    float *v = n ? malloc(n * sizeof *v) : NULL;
    double m;

    if (!v)
        return NAN;
    memcpy(v, b->mean, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_float);
    m = n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + v[n / 2]);
    free(v);
    return m;
}

/* ------------------------------------------------------------ methods */

static void run_naive(diff_state *s)
{
    size_t n = (size_t)s->pair.nx * s->pair.ny;
    method_run *r = &s->run[M_NAIVE];
    double t0 = now(), c0 = cpu_now();

    progress(s, "naive difference");
    s->naive_d = malloc(n * sizeof *s->naive_d);
    s->naive_unc = malloc(n * sizeof *s->naive_unc);
    if (!s->naive_d || !s->naive_unc) {
        snprintf(r->msg, sizeof r->msg, "naive difference: out of memory");
        free(s->naive_d), free(s->naive_unc);
        s->naive_d = s->naive_unc = NULL;
    } else {
        rapid_diff_naive(&s->sci, &s->pair, s->naive_d, s->naive_unc);
        r->ok = 1;
    }
    r->seconds = now() - t0;
    r->cpu_seconds = cpu_now() - c0;
}

/* The transforms' plans, shared by ZOGY and the kernel fit: MEASURE
 * plans from the wisdom file when there is one (loaded now, saved after
 * the methods), else ESTIMATE plans. */
static void fft_begin(diff_state *s, int nthreads)
{
    const diff_args *a = &s->o;
    rapid_err err = RAPID_ERR_INIT;
    int loaded = 0;

    if (a->wisdom && rapid_fft_wisdom_load(a->wisdom, &loaded, &err) != 0) {
        warn(s, "%s (planning without it)", err.msg);
        rapid_err_clear(&err);
    }
    s->fft = rapid_fft_cache_new(a->wisdom ? RAPID_FFT_MEASURE
                                           : RAPID_FFT_ESTIMATE,
                                 nthreads);
}

static void fft_end(diff_state *s)
{
    const diff_args *a = &s->o;
    rapid_err err = RAPID_ERR_INIT;

    rapid_fft_cache_free(s->fft);
    s->fft = NULL;
    if (a->wisdom && rapid_fft_wisdom_save(a->wisdom, &err) != 0)
        warn(s, "%s", err.msg);
}

/* A method that needs both PSFs and the plans: 0 if it can run, else its
 * failure recorded. */
static int method_ready(diff_state *s, method_run *r, const char *what)
{
    if (!s->have_sci_psf || !s->have_ref_psf)
        snprintf(r->msg, sizeof r->msg, "%s", s->have_sci_psf
                                                  ? s->ref_psf_err.msg
                                                  : s->sci_psf_err.msg);
    else if (!s->fft)
        snprintf(r->msg, sizeof r->msg, "%s: out of memory", what);
    else
        return 0;
    return -1;
}

/* A method's failure message, naming the pair and the PSFs. */
static void method_failed(diff_state *s, method_run *r,
                          rapid_err *err)
{
    const diff_args *a = &s->o;
    rapid_err_prefix(err, "%s (PSF %s) minus %s (PSF %s)", a->sci,
                     s->sci_psf_path, a->ref, s->ref_psf_path);
    snprintf(r->msg, sizeof r->msg, "%s", err->msg);
}

static void run_zogy(diff_state *s, int nthreads)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_zogy_opts zo;
    method_run *r = &s->run[M_ZOGY];
    double t0 = now(), c0 = cpu_now();

    progress(s, "ZOGY");
    if (method_ready(s, r, "ZOGY") == 0) {
        rapid_zogy_opts_init(&zo);
        zo.nthreads = nthreads;
        zo.fft = s->fft;
        zo.stop = s->o.stop;
        if (rapid_diff_zogy(&s->sci, &s->pair, s->sci_psf.data, s->sci_psf.nx,
                            s->refsci_psf.data, s->refsci_psf.nx, &zo,
                            &s->zogy, &err) == 0)
            r->ok = 1;
        else
            method_failed(s, r, &err);
    }
    r->seconds = now() - t0;
    r->cpu_seconds = cpu_now() - c0;
}

/* The kernel fit (SFFT): the reference PSF as read (rapid_diff_sfft blurs
 * it as resampling does), its failures (too few stamps, an ill-conditioned
 * fit ...) the method's. */
static void run_sfft(diff_state *s, int nthreads)
{
    const diff_args *a = &s->o;
    rapid_err err = RAPID_ERR_INIT;
    rapid_sfft_opts so;
    method_run *r = &s->run[M_SFFT];
    double t0 = now(), c0 = cpu_now();

    progress(s, "kernel fit (SFFT)");
    if (method_ready(s, r, "kernel fit") == 0) {
        rapid_sfft_opts_init(&so);
        so.nthreads = nthreads;
        if (a->order >= 0)
            so.order = a->order;
        if (a->half_width > 0)
            so.half_width = a->half_width;
        so.fft = s->fft;
        so.stop = a->stop;
        if (rapid_diff_sfft(&s->sci, &s->pair, s->sci_psf.data, s->sci_psf.nx,
                            s->ref_psf.data, s->ref_psf.nx, &so, &s->sfft,
                            &err) == 0) {
            r->ok = 1;
        } else {
            rapid_sfft_out_release(&s->sfft);
            method_failed(s, r, &err);
        }
    }
    r->seconds = now() - t0;
    r->cpu_seconds = cpu_now() - c0;
}

/* ------------------------------------------------------------ products */

enum { P_ZOGY_PSF = RAPID_DIFFRUN_P_ZOGY_PSF, P_SFFT_PSF = RAPID_DIFFRUN_P_SFFT_PSF,
       P_REFSCI_PSF = RAPID_DIFFRUN_P_REFSCI_PSF, NPRODUCT = RAPID_DIFFRUN_NPRODUCT };

typedef struct product_kind {
    const char *suffix;   /* after the base name */
    int method;           /* M_ZOGY, M_NAIVE, M_SFFT, or -1: the reference */
    const char *extname;  /* NULL: a PSF, the primary image */
    const char *bunit, *bunit_comment;
    const char *json_group, *json_key;
} product_kind;

static const product_kind kinds[NPRODUCT] = {
    {"_zogy_diff", M_ZOGY, "DIFF", "DN/s", "science DN/s (ZPTMAG): D / F_D",
     "zogy", "diff"},
    {"_zogy_unc", M_ZOGY, "UNC", "DN/s", "1-sigma uncertainty of the difference",
     "zogy", "unc"},
    {"_zogy_scorr", M_ZOGY, "SCORR", "", "none: significance, in sigma",
     "zogy", "scorr"},
    {"_zogy_psf", M_ZOGY, NULL, "", "none: normalised to unit sum", "zogy", "psf"},
    {"_naive_diff", M_NAIVE, "DIFF", "DN/s", "science DN/s (ZPTMAG)", "naive",
     "diff"},
    {"_naive_unc", M_NAIVE, "UNC", "DN/s", "1-sigma uncertainty of the difference",
     "naive", "unc"},
    {"_sfft_diff", M_SFFT, "DIFF", "DN/s", "science DN/s (ZPTMAG): decorrelated",
     "sfft", "diff"},
    {"_sfft_cconv", M_SFFT, "CCONV", "DN/s",
     "science DN/s (ZPTMAG): cross-convolved", "sfft", "cconv"},
    {"_sfft_unc", M_SFFT, "UNC", "DN/s", "1-sigma uncertainty of the difference",
     "sfft", "unc"},
    {"_sfft_psf", M_SFFT, NULL, "", "none: normalised to unit sum", "sfft", "psf"},
    {"_refsci", -1, "SCI", "DN/s", "the reference's DN/s (REFZP)", "refsci",
     "image"},
    {"_refsci_cov", -1, "COV", "", "none: reference inputs per pixel",
     "refsci", "cov"},
    {"_refsci_unc", -1, "UNC", "DN/s", "1-sigma uncertainty of the reference",
     "refsci", "unc"},
    {"_refsci_psf", -1, NULL, "", "none: normalised to unit sum", "refsci",
     "psf"},
};

/* Is product k made in this run? */
static int made(const diff_state *s, int k)
{
    const product_kind *p = &kinds[k];

    if (p->method >= 0)
        return s->run[p->method].ok;
    return k != P_REFSCI_PSF || s->have_ref_psf;
}

/* Every card of src into dst, replacing any of the same keyword. */
static int add_cards(rapid_header *dst, const rapid_header *src)
{
    int k, rc;

    for (k = 0; k < src->ncards; k++) {
        char key[9];
        int len = 0;
        while (len < 8 && src->cards[k][len] != ' ' &&
               src->cards[k][len] != '=' && src->cards[k][len] != '\0')
            len++;
        memcpy(key, src->cards[k], (size_t)len);
        key[len] = '\0';
        if (strcmp(key, "COMMENT") && strcmp(key, "HISTORY"))
            rapid_header_delete(dst, key);
        if ((rc = rapid_header_append_card(dst, src->cards[k])) != 0)
            return rc;
    }
    return 0;
}

#define SET(call, key) \
    do { if ((rc = (call)) != 0) return rapid_header_fail(err, rc, "product header", key); } while (0)

/* A number, unless it is not known (NaN: no card). */
static int set_num(rapid_header *h, const char *key, double v,
                   const char *comment)
{
    return isfinite(v) ? rapid_header_set_double(h, key, v, comment) : 0;
}

/* Provenance and matching: every product's. */
static int common_header(const diff_state *s,
                         rapid_header *h, rapid_err *err)
{
    const diff_args *a = &s->o;
    const rapid_gainmatch *m = &s->pair.match;
    const rapid_header *sh = &s->sci.rate.hdr;
    static const char *const copy[] = {"FILTER", "SCA_NUM", "DATE-OBS",
                                       "MJD-OBS", "EXPTIME", NULL};
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    int k, rc;

    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    for (k = 0; copy[k]; k++) {
        int i = rapid_header_find(sh, copy[k]);
        if (i >= 0)
            SET(rapid_header_append_card(h, sh->cards[i]), copy[k]);
    }
    SET(rapid_header_set_str(h, "SCIFILE", base_name(a->sci), "science L2 file"), "SCIFILE");
    SET(rapid_header_set_str(h, "SCIHDU", a->sci_ext && a->sci_ext[0] ? a->sci_ext : "SCI",
                             "its HDU"), "SCIHDU");
    SET(rapid_header_set_str(h, "REFFILE", base_name(a->ref), "reference image"), "REFFILE");
    SET(rapid_header_set_str(h, "REFCOV", s->have_cov ? base_name(s->ref_cov_path) : "",
                             "reference coverage map ('': none)"), "REFCOV");
    SET(rapid_header_set_str(h, "REFUNC", s->have_unc ? base_name(s->ref_unc_path) : "",
                             "reference uncertainty map ('': none)"), "REFUNC");
    SET(rapid_header_set_str(h, "SCIPSF", s->have_sci_psf ? base_name(s->sci_psf_path) : "",
                             "science PSF ('': none)"), "SCIPSF");
    SET(rapid_header_set_str(h, "REFPSF", s->have_ref_psf ? base_name(s->ref_psf_path) : "",
                             "reference PSF ('': none)"), "REFPSF");
    SET(set_num(h, "SCIZP", s->sci_zp, "science ZPTMAG: AB mag of 1 DN/s"), "SCIZP");
    SET(set_num(h, "REFZP", s->ref_zp, "reference MAGZP: AB mag of 1 DN/s"), "REFZP");
    SET(set_num(h, "ZPSCALE", s->zp_scale, "science/reference DN/s from zero points"), "ZPSCALE");
    SET(set_num(h, "MATCHSCL", m->scale, "reference x this = science flux"), "MATCHSCL");
    SET(set_num(h, "MATCHERR", m->scale_err, "1-sigma error of MATCHSCL"), "MATCHERR");
    SET(set_num(h, "APCORR", s->pair.apcorr > 0 ? s->pair.apcorr : 1.0,
                "MATCHSCL includes this aperture correction"), "APCORR");
    SET(set_num(h, "SHIFTX", s->pair.shift_x, "[px] registration shift applied"), "SHIFTX");
    SET(set_num(h, "SHIFTY", s->pair.shift_y, "[px] registration shift applied"), "SHIFTY");
    SET(rapid_header_set_long(h, "MATCHN", m->nstars, "stars matched and kept"), "MATCHN");
    SET(rapid_header_set_str(h, "MATCHFRM", m->from ? m->from : "",
                             "scale from: stars or zero points"), "MATCHFRM");
    SET(set_num(h, "MATCHDX", m->dx_median, "[pixel] median x offset, sci - ref"), "MATCHDX");
    SET(set_num(h, "MATCHDY", m->dy_median, "[pixel] median y offset, sci - ref"), "MATCHDY");
    SET(set_num(h, "MATCHRX", m->dx_rms, "[pixel] rms x offset about the median"), "MATCHRX");
    SET(set_num(h, "MATCHRY", m->dy_rms, "[pixel] rms y offset about the median"), "MATCHRY");
    SET(set_num(h, "BKGSCI", s->bkg_sci, "[DN/s] median science background"), "BKGSCI");
    SET(rapid_header_set_long(h, "NSPIKE", s->sci.nspike,
                              "science spikes masked (hot pixels, cosmic rays)"), "NSPIKE");
    SET(set_num(h, "BKGREF", s->bkg_ref, "[DN/s] median reference background"), "BKGREF");
    SET(rapid_header_set_str(h, "RAPIDVER", rapid_version(), "rapid version"), "RAPIDVER");
    SET(rapid_header_set_str(h, "GITCOMM", rapid_git_commit(), "rapid git commit"), "GITCOMM");
    SET(rapid_header_set_str(h, "DATE", date, "UTC date of creation"), "DATE");
    return 0;
}

/* The kernel fit's figures. */
static int sfft_header(const rapid_sfft_out *o, rapid_header *h, rapid_err *err)
{
    int rc;

    SET(rapid_header_set_str(h, "SFFTBAS", o->basis ? o->basis : "",
                             "kernel basis"), "SFFTBAS");
    SET(rapid_header_set_long(h, "SFFTORD", o->order,
                              "kernel's spatial order (0 constant)"), "SFFTORD");
    SET(rapid_header_set_long(h, "SFFTBGO", o->bg_order,
                              "differential background's order"), "SFFTBGO");
    SET(rapid_header_set_long(h, "SFFTHW", o->half_width,
                              "[px] kernel half-width"), "SFFTHW");
    SET(rapid_header_set_long(h, "SFFTNST", o->nstamps,
                              "stamps in the final fit"), "SFFTNST");
    SET(rapid_header_set_long(h, "SFFTNREJ", o->nrejected,
                              "stamps rejected on their residuals"), "SFFTNREJ");
    SET(rapid_header_set_long(h, "SFFTNPIX", o->npix, "pixels fitted"), "SFFTNPIX");
    SET(rapid_header_set_long(h, "SFFTNUNK", o->nunknowns,
                              "unknowns of the fit"), "SFFTNUNK");
    SET(set_num(h, "SFFTCHI2", o->chi2r, "reduced chi^2 of the fit"), "SFFTCHI2");
    SET(set_num(h, "SFFTCOND", o->cond, "condition number estimate (1-norm)"),
        "SFFTCOND");
    SET(set_num(h, "SFFTKSUM", o->ksum, "kernel sum at the image centre"),
        "SFFTKSUM");
    SET(set_num(h, "SIGMA_N", o->sigma_n, "[DN/s] science background noise"),
        "SIGMA_N");
    SET(set_num(h, "SIGMA_R", o->sigma_r, "reference background noise"), "SIGMA_R");
    SET(set_num(h, "SFFTEPS", o->eps_model, "PSF-model error: share of the model in D"),
        "SFFTEPS");
    SET(set_num(h, "SFFTPOS", o->pos_model, "[px] PSF-model error: position"), "SFFTPOS");
    SET(rapid_header_set_long(h, "SFFTEPSN", o->neps,
                              "stars the PSF-model error is measured at"), "SFFTEPSN");
    SET(rapid_header_set_long(h, "SFFTEIV", o->eiv_steps,
                              "errors-in-variables correction: steps"), "SFFTEIV");
    SET(set_num(h, "SFFTKERC", o->kerr_centre,
                "kernel's own error / peak at the centre"), "SFFTKERC");
    SET(set_num(h, "SFFTKERE", o->kerr_edge, "... the largest, near an edge"),
        "SFFTKERE");
    SET(rapid_header_set_long(h, "SFFTPADX", o->padx, "transforms' width"), "SFFTPADX");
    SET(rapid_header_set_long(h, "SFFTPADY", o->pady, "transforms' height"), "SFFTPADY");
    return 0;
}

/* The method's figures. */
static int method_header(const diff_state *s, int method, rapid_header *h,
                         rapid_err *err)
{
    int rc;

    if (method < 0)
        return 0;
    SET(rapid_header_set_str(h, "DIFFMETH", method == M_ZOGY   ? "ZOGY"
                                            : method == M_SFFT ? "SFFT"
                                                               : "NAIVE",
                             "difference method"), "DIFFMETH");
    if (method == M_SFFT)
        return sfft_header(&s->sfft, h, err);
    if (method != M_ZOGY)
        return 0;
    SET(set_num(h, "SIGMA_N", s->zogy.sigma_n, "[DN/s] science background noise"), "SIGMA_N");
    SET(set_num(h, "SIGMA_R", s->zogy.sigma_r, "[DN/s] matched reference noise"), "SIGMA_R");
    SET(set_num(h, "ZOGY_FD", s->zogy.fd, "F_D: flux zero point of the raw D"), "ZOGY_FD");
    SET(set_num(h, "ZEPSD", s->zogy.eps_d, "PSF-model error: share of D_R in D"), "ZEPSD");
    SET(set_num(h, "ZPOSD", s->zogy.pos_d, "[px] PSF-model error: position in D"), "ZPOSD");
    SET(set_num(h, "ZEPSS", s->zogy.eps_s, "PSF-model error: share of S_R in S"), "ZEPSS");
    SET(set_num(h, "ZPOSS", s->zogy.pos_s, "[px] PSF-model error: position in S"), "ZPOSS");
    SET(rapid_header_set_long(h, "ZEPSN", s->zogy.neps,
                              "stars the PSF-model error is measured at"), "ZEPSN");
    SET(set_num(h, "ZEPSF", s->zogy.eps_fill, "filled pixel's error: share of light"), "ZEPSF");
    SET(set_num(h, "ZPOSF", s->zogy.pos_fill, "[px] filled pixel's error: position"), "ZPOSF");
    SET(set_num(h, "ZEPSFR", s->zogy.eps_fill_ref, "reference's filled pixel's error: share"), "ZEPSFR");
    SET(set_num(h, "ZPOSFR", s->zogy.pos_fill_ref, "[px] reference's filled pixel's error: pos."), "ZPOSFR");
    {
        static const char *const kn[4] = {"CORRN10", "CORRN01", "CORRN11", "CORRN1M"};
        static const char *const kr[4] = {"CORRR10", "CORRR01", "CORRR11", "CORRR1M"};
        static const char *const lag[4] = {"(1,0)", "(0,1)", "(1,1)", "(1,-1)"};
        char c[72];
        int k;
        for (k = 0; k < 4; k++) {
            snprintf(c, sizeof c, "science noise correlation at lag %s", lag[k]);
            SET(set_num(h, kn[k], s->zogy.corr_n[k], c), kn[k]);
            snprintf(c, sizeof c, "reference noise correlation at lag %s", lag[k]);
            SET(set_num(h, kr[k], s->zogy.corr_r[k], c), kr[k]);
        }
    }
    SET(set_num(h, "ZREFNS", s->zogy.ref_fs, "reference's noise in S over its map's"), "ZREFNS");
    SET(set_num(h, "ZREFND", s->zogy.ref_fd, "reference's noise in D over its map's"), "ZREFND");
    SET(rapid_header_set_long(h, "ZOGYPADX", s->zogy.padx, "transforms' width"), "ZOGYPADX");
    SET(rapid_header_set_long(h, "ZOGYPADY", s->zogy.pady, "transforms' height"), "ZOGYPADY");
    return 0;
}

/* The pixels of product k (borrowed into img; img->hdr is the caller's). */
static void product_pixels(diff_state *s, int k, rapid_image *img)
{
    int nx = s->pair.nx, ny = s->pair.ny;
    float *d[NPRODUCT] = {s->zogy.d, s->zogy.unc, s->zogy.scorr, s->zogy.pd,
                          s->naive_d, s->naive_unc, s->sfft.d, s->sfft.cconv,
                          s->sfft.unc, s->sfft.pd, s->pair.ref.data,
                          s->pair.cov.data, s->pair.unc.data,
                          s->refsci_psf.data};

    img->data = d[k];
    img->nx = nx, img->ny = ny;
    if (k == P_ZOGY_PSF)
        img->nx = img->ny = s->zogy.npd;
    else if (k == P_SFFT_PSF)
        img->nx = img->ny = s->sfft.npd;
    else if (k == P_REFSCI_PSF)
        img->nx = s->refsci_psf.nx, img->ny = s->refsci_psf.ny;
}

static int write_product(const char *path, diff_state *s,
                         int k, rapid_err *err)
{
    const product_kind *p = &kinds[k];
    rapid_header prim = RAPID_HEADER_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    int rc;

    if ((rc = common_header(s, &prim, err)) ||
        (rc = method_header(s, p->method, &prim, err)))
        goto cleanup;
    if (p->extname && (rc = rapid_wcs_to_header(&s->sci_wcs, &img.hdr, err)))
        goto cleanup;
    if ((rc = add_cards(&img.hdr, &prim))) {
        rc = rapid_fail(err, rc, "%s: no memory for the header", path);
        goto cleanup;
    }
    if ((rc = rapid_header_set_str(&img.hdr, "BUNIT", p->bunit, p->bunit_comment)))
        goto header_fail;
    if (!p->extname && (rc = rapid_header_set_double(&img.hdr, "PSFNORM", 1.0,
                                                     "sum of the pixels")))
        goto header_fail;
    if (p->extname && strcmp(p->bunit, "DN/s") == 0 &&
        (rc = set_num(&img.hdr, "MAGZP", p->method < 0 ? s->ref_zp : s->sci_zp,
                      "AB mag of 1 DN/s of this image")))
        goto header_fail;
    product_pixels(s, k, &img);
    if ((rc = rapid_fits_create(&out, path, err)))
        goto cleanup;
    if ((p->extname && (rc = rapid_fits_set_primary_header(out, &prim, err))) ||
        (rc = rapid_fits_append_image(out, &img, p->extname, err))) {
        rapid_fits_abort(out);
        goto cleanup;
    }
    rc = rapid_fits_commit(out, err);
    goto cleanup;
header_fail:
    rc = rapid_header_fail(err, rc, path, "BUNIT/PSFNORM/MAGZP");
cleanup:
    img.data = NULL;
    rapid_image_release(&img);
    rapid_header_release(&prim);
    return rc;
}

int rapid_diffrun_product_name(const rapid_diffrun *r, int k, char *out,
                               size_t sz)
{
    const char *sci = base_name(r->o.sci);
    size_t stem = stem_length(sci);
    int n;

    if (k < 0 || k >= NPRODUCT)
        return -1;
    n = snprintf(out, sz, "%.*s%s.fits", (int)stem, sci, kinds[k].suffix);
    return n < 0 || (size_t)n >= sz ? -1 : 0;
}

int rapid_diffrun_write_product(rapid_diffrun *r, int k, const char *path,
                                rapid_err *err)
{
    if (k < 0 || k >= NPRODUCT || !made(r, k))
        return rapid_fail(err, RAPID_E_ARG, "%s: product %d was not made", path, k);
    return write_product(path, r, k, err);
}

/* The product set: the names of this run's products (and of every
 * product of this science image, which an earlier set may hold). */
int rapid_diffrun_write_set(rapid_diffrun *s, const char *dir, rapid_err *err)
{
    char (*name)[PATHLEN] = malloc(NPRODUCT * sizeof *name);
    const char *names[NPRODUCT], *known[NPRODUCT];
    int idx[NPRODUCT], k, n = 0, rc = 0;
    rapid_prodset *set = NULL;
    double t0 = now();

    if (!name)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", dir);
    for (k = 0; k < NPRODUCT; k++) {
        if (rapid_diffrun_product_name(s, k, name[k], PATHLEN)) {
            free(name);
            return rapid_fail(err, RAPID_E_ARG, "%s: too long a file name", s->o.sci);
        }
        known[k] = name[k];
        if (made(s, k)) {
            idx[n] = k;
            names[n++] = name[k];
        }
    }
    progress(s, "writing");
    if ((rc = rapid_prodset_begin_among(&set, dir, names, n, known,
                                        NPRODUCT, err)))
        goto cleanup;
    for (k = 0; k < n && rc == 0; k++)
        rc = write_product(rapid_prodset_path(set, k), s, idx[k], err);
    if (rc) {
        rapid_prodset_abort(set);
        rapid_err_prefix(err, "%s: the differences were not written", dir);
        goto cleanup;
    }
    rc = rapid_prodset_commit(set, err);
    s->t_write = now() - t0;
cleanup:
    free(name);
    return rc;
}

/* ------------------------------------------------------------ the run */

rapid_diffrun *rapid_diffrun_new(const rapid_diffrun_opts *o)
{
    rapid_diffrun *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    s->o = *o;
    s->sci_wcs = (rapid_wcs)RAPID_WCS_INIT;
    s->ref_wcs = (rapid_wcs)RAPID_WCS_INIT;
    s->zogy = (rapid_zogy_out)RAPID_ZOGY_OUT_INIT;
    s->bkg_sci = s->bkg_ref = NAN;
    s->sci_zp = s->ref_zp = NAN;
    s->zp_scale = 1;
    return s;
}

void rapid_diffrun_free(rapid_diffrun *s)
{
    if (!s)
        return;
    rapid_science_release(&s->sci);
    rapid_wcs_release(&s->sci_wcs);
    rapid_wcs_release(&s->ref_wcs);
    release_reference(s);
    rapid_image_release(&s->ref_psf);
    rapid_image_release(&s->sci_psf);
    rapid_image_release(&s->refsci_psf);
    rapid_diff_pair_release(&s->pair);
    free(s->naive_d);
    free(s->naive_unc);
    rapid_zogy_out_release(&s->zogy);
    rapid_sfft_out_release(&s->sfft);
    rapid_fft_cache_free(s->fft);
    free(s);
}

int rapid_diffrun_read(rapid_diffrun *s, rapid_err *err)
{
    double t0 = now();
    int rc;

    progress(s, "reading");
    if ((rc = read_inputs(s, err)) == 0)
        s->t_read = now() - t0;
    return rc;
}

int rapid_diffrun_prepare(rapid_diffrun *s, rapid_err *err)
{
    const diff_args *a = &s->o;
    rapid_diff_ref ref;
    double t0 = now();
    int rc;

    progress(s, "resampling the reference, backgrounds, matching");
    ref.image = s->ref.data;
    ref.cov = s->have_cov ? s->cov.data : NULL;
    ref.unc = s->have_unc ? s->unc.data : NULL;
    ref.nx = s->ref.nx;
    ref.ny = s->ref.ny;
    ref.wcs = &s->ref_wcs;
    ref.zp_scale = s->zp_scale;
    if ((rc = rapid_diff_prepare_stop(&s->sci, &s->sci_wcs, &ref, 0, a->nthreads,
                                      a->stop, &s->pair, err)) ||
        (s->have_sci_psf && s->have_ref_psf &&
         (rc = rapid_diff_aperture_correct(&s->pair, s->sci_psf.data,
                                           s->sci_psf.nx, s->refsci_psf.data,
                                           s->refsci_psf.nx, err)))) {
        rapid_err_prefix(err, "%s minus %s", a->sci, a->ref);
        return rc;
    }
    s->t_prepare = now() - t0;
    s->bkg_sci = background_level(&s->pair.bkg_sci);
    s->bkg_ref = background_level(&s->pair.bkg_ref);
    /* the reference as read is not needed any more */
    release_reference(s);
    return 0;
}

void rapid_diffrun_methods_begin(rapid_diffrun *s, int nthreads)
{
    const diff_args *a = &s->o;

    if ((a->asked[M_ZOGY] || a->asked[M_SFFT]) && !s->fft)
        fft_begin(s, nthreads > 0 ? nthreads : a->nthreads);
}

void rapid_diffrun_run_method(rapid_diffrun *s, int method, int nthreads)
{
    const diff_args *a = &s->o;
    int n = nthreads > 0 ? nthreads : a->nthreads;

    if (method < 0 || method >= NMETHOD || !a->asked[method])
        return;
    lane = nthreads > 0;
    if (a->stop && *a->stop && method != M_NAIVE) /* not begun */
        snprintf(s->run[method].msg, sizeof s->run[method].msg, "%s: "
                 "interrupted before it began", method_name[method]);
    else if (method == M_NAIVE)
        run_naive(s);
    else if (method == M_ZOGY)
        run_zogy(s, n);
    else
        run_sfft(s, n);
    lane = 0;
}

int rapid_diffrun_methods_end(rapid_diffrun *s)
{
    const diff_args *a = &s->o;
    int k, nok = 0;

    if (s->fft)
        fft_end(s);
    for (k = 0; k < NMETHOD; k++)
        nok += a->asked[k] && s->run[k].ok;
    return nok;
}

int rapid_diffrun_methods(rapid_diffrun *s)
{
    rapid_diffrun_methods_begin(s, 0);
    rapid_diffrun_run_method(s, M_NAIVE, 0);
    rapid_diffrun_run_method(s, M_ZOGY, 0);
    rapid_diffrun_run_method(s, M_SFFT, 0);
    return rapid_diffrun_methods_end(s);
}

double rapid_diffrun_background_level(const rapid_background *b)
{
    return background_level(b);
}

const rapid_diffrun_product *rapid_diffrun_product_kind(int k)
{
    static rapid_diffrun_product pub[NPRODUCT];
    static int done;
    int i;

    if (k < 0 || k >= NPRODUCT)
        return NULL;
    if (!done) { /* the same values every time: a race writes the same */
        for (i = 0; i < NPRODUCT; i++) {
            pub[i].suffix = kinds[i].suffix;
            pub[i].method = kinds[i].method;
            pub[i].group = kinds[i].json_group;
            pub[i].key = kinds[i].json_key;
        }
        done = 1;
    }
    return &pub[k];
}

int rapid_diffrun_made(const rapid_diffrun *r, int k)
{
    return k >= 0 && k < NPRODUCT && made(r, k);
}
