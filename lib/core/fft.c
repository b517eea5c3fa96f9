/* fft.c - FFTW plans made once, under one lock, and executed anywhere.
 *
 * The planner lock guards FFTW's planner (process-wide, not re-entrant)
 * and every cache's list of plans.  Lookups are rare next to executions
 * (one per transform set up, not per transform run), so one mutex costs
 * nothing measurable.
 */
#include <complex.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>

#include <fftw3.h>

#include "core/bigmem.h"
#include "rapid/fft.h"

struct rapid_fft_plan {
    rapid_fft_kind kind;
    int ny, nx, inplace;
    fftwf_plan p;
    struct rapid_fft_plan *next;
};

struct rapid_fft_cache {
    rapid_fft_rigor rigor;
    int nthreads;
    struct rapid_fft_plan *plans;
};

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_ok;
static rapid_fft_cache shared = {RAPID_FFT_ESTIMATE, 1, NULL};

static void threads_init(void)
{
    threads_ok = fftwf_init_threads() != 0;
}

rapid_fft_cache *rapid_fft_cache_new(rapid_fft_rigor rigor, int nthreads)
{
    rapid_fft_cache *c = malloc(sizeof *c);

    if (!c)
        return NULL;
    c->rigor = rigor;
    c->nthreads = nthreads < 1 ? 1 : nthreads;
    c->plans = NULL;
    return c;
}

/* Called with the planner lock held. */
static void plans_destroy(rapid_fft_cache *c)
{
    struct rapid_fft_plan *p = c->plans, *next;

    for (; p; p = next) {
        next = p->next;
        fftwf_destroy_plan(p->p);
        free(p);
    }
    c->plans = NULL;
}

void rapid_fft_cache_free(rapid_fft_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&planner_lock);
    plans_destroy(c);
    pthread_mutex_unlock(&planner_lock);
    free(c);
}

void rapid_fft_shared_release(void)
{
    pthread_mutex_lock(&planner_lock);
    plans_destroy(&shared);
    pthread_mutex_unlock(&planner_lock);
}

size_t rapid_fft_cache_size(const rapid_fft_cache *c)
{
    const struct rapid_fft_plan *p;
    size_t n = 0;

    pthread_mutex_lock(&planner_lock);
    for (p = (c ? c : &shared)->plans; p; p = p->next)
        n++;
    pthread_mutex_unlock(&planner_lock);
    return n;
}

size_t rapid_fft_real_stride(int nx)
{
    return 2 * ((size_t)nx / 2 + 1);
}

/* Called with the planner lock held.  The scratch arrays are FFTW's own
 * (aligned as rapid_fft_alloc's); an estimate never touches them, so for
 * large sizes they cost address space only. */
static fftwf_plan plan_make(const rapid_fft_cache *c, rapid_fft_kind kind,
                            int ny, int nx, int inplace)
{
    size_t nh = (size_t)ny * ((size_t)nx / 2 + 1), nr = (size_t)ny * nx;
    size_t bin, bout; /* bytes of each array (in place: bin, the larger) */
    unsigned flags = c->rigor == RAPID_FFT_MEASURE ? FFTW_MEASURE
                                                   : FFTW_ESTIMATE;
    void *in, *out;
    fftwf_plan p = NULL;

    switch (kind) {
    case RAPID_FFT_R2C:
    case RAPID_FFT_ROWS:
        bin = (inplace ? 2 * nh : nr) * sizeof(float);
        bout = nh * sizeof(fftwf_complex);
        break;
    case RAPID_FFT_C2R:
    case RAPID_FFT_ROWS_C2R:
        bin = nh * sizeof(fftwf_complex);
        bout = nr * sizeof(float);
        break;
    default:
        bin = bout = nr * sizeof(fftwf_complex);
        break;
    }
    in = fftwf_malloc(bin);
    out = inplace ? in : fftwf_malloc(bout);
    if (!in || !out)
        goto cleanup;
    if (threads_ok)
        fftwf_plan_with_nthreads(c->nthreads);
    switch (kind) {
    case RAPID_FFT_R2C:
        p = fftwf_plan_dft_r2c_2d(ny, nx, in, out, flags);
        break;
    case RAPID_FFT_C2R:
        p = fftwf_plan_dft_c2r_2d(ny, nx, in, out, flags);
        break;
    case RAPID_FFT_FORWARD:
    case RAPID_FFT_BACKWARD:
        p = fftwf_plan_dft_2d(ny, nx, in, out,
                              kind == RAPID_FFT_FORWARD ? FFTW_FORWARD
                                                        : FFTW_BACKWARD,
                              flags);
        break;
    case RAPID_FFT_COLUMNS: /* nx transforms of ny, stride nx, interleaved */
    case RAPID_FFT_COLUMNS_BACKWARD:
        p = fftwf_plan_many_dft(1, &ny, nx, in, NULL, nx, 1, out, NULL, nx, 1,
                                kind == RAPID_FFT_COLUMNS ? FFTW_FORWARD
                                                          : FFTW_BACKWARD,
                                flags);
        break;
    case RAPID_FFT_ROWS: /* ny transforms of nx, rows 2 (nx/2 + 1) apart */
        p = fftwf_plan_many_dft_r2c(1, &nx, ny, in, NULL, 1, 2 * (nx / 2 + 1),
                                    out, NULL, 1, nx / 2 + 1, flags);
        break;
    case RAPID_FFT_ROWS_C2R: /* ... and back */
        p = fftwf_plan_many_dft_c2r(1, &nx, ny, in, NULL, 1, nx / 2 + 1, out,
                                    NULL, 1, 2 * (nx / 2 + 1), flags);
        break;
    }
cleanup:
    if (out != in)
        fftwf_free(out);
    fftwf_free(in);
    return p;
}

int rapid_fft_plan_get(rapid_fft_cache *c, rapid_fft_kind kind, int ny,
                       int nx, int inplace, const rapid_fft_plan **plan,
                       rapid_err *err)
{
    struct rapid_fft_plan *p;
    int rc = 0;

    *plan = NULL;
    if (kind < RAPID_FFT_R2C || kind > RAPID_FFT_COLUMNS_BACKWARD || ny < 1 ||
        nx < 1 || ((kind == RAPID_FFT_ROWS || kind == RAPID_FFT_ROWS_C2R) &&
                   !inplace))
        return rapid_fail(err, RAPID_E_ARG,
                          "FFT: invalid transform (kind %d, %d x %d)",
                          (int)kind, nx, ny);
    pthread_once(&threads_once, threads_init);
    inplace = inplace != 0;
    if (!c)
        c = &shared;
    pthread_mutex_lock(&planner_lock);
    for (p = c->plans; p; p = p->next)
        if (p->kind == kind && p->ny == ny && p->nx == nx &&
            p->inplace == inplace)
            break;
    if (!p) {
        p = malloc(sizeof *p);
        if (!p || !(p->p = plan_make(c, kind, ny, nx, inplace))) {
            free(p);
            p = NULL;
            rc = rapid_fail(err, RAPID_E_NOMEM,
                            "FFT: cannot plan a %d x %d transform: out of "
                            "memory", nx, ny);
        } else {
            p->kind = kind;
            p->ny = ny;
            p->nx = nx;
            p->inplace = inplace;
            p->next = c->plans;
            c->plans = p;
        }
    }
    pthread_mutex_unlock(&planner_lock);
    *plan = p;
    return rc;
}

void rapid_fft_r2c(const rapid_fft_plan *p, float *in, float _Complex *out)
{
    fftwf_execute_dft_r2c(p->p, in, (fftwf_complex *)out);
}

void rapid_fft_c2r(const rapid_fft_plan *p, float _Complex *in, float *out)
{
    fftwf_execute_dft_c2r(p->p, (fftwf_complex *)in, out);
}

void rapid_fft_c2c(const rapid_fft_plan *p, float _Complex *in,
                   float _Complex *out)
{
    fftwf_execute_dft(p->p, (fftwf_complex *)in, (fftwf_complex *)out);
}

/* Arrays are aligned to 64 bytes (any SIMD width FFTW uses); large ones
 * (image-sized planes) to 2 MiB and offered to the kernel as transparent
 * huge pages: a 70 MB plane then takes 35 page faults instead of 17,000
 * on first touch.  The largest come from the big-block pool (bigmem.h:
 * 2 MiB aligned, huge pages, memory already faulted in when recycled). */
#define HUGE_ALIGN ((size_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)

void *rapid_fft_alloc(size_t bytes)
{
    void *p = NULL;

    if (bytes >= RAPID_BIG_MIN && rapid_big_pooling())
        return rapid_big_malloc(bytes);
    if (bytes < HUGE_MIN)
        return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
    if (posix_memalign(&p, HUGE_ALIGN, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    return p;
}

void rapid_fft_free(void *p)
{
    rapid_big_free(p); /* free() for all but the pool's blocks */
}

int rapid_fft_is_fast(int n, int allow_11_13)
{
    static const int f[] = {2, 3, 5, 7};
    int k;

    if (n < 1)
        return 0;
    for (k = 0; k < 4; k++)
        while (n % f[k] == 0)
            n /= f[k];
    return n == 1 || (allow_11_13 && (n == 11 || n == 13));
}

int rapid_fft_smooth_size(int n)
{
    if (n < 1)
        n = 1;
    while (!rapid_fft_is_fast(n, 0))
        n++;
    return n;
}

int rapid_fft_good_size(int n)
{
    if (n < 1)
        n = 1;
    while (!rapid_fft_is_fast(n, 1))
        n++;
    return n;
}

int rapid_fft_wisdom_load(const char *path, int *loaded, rapid_err *err)
{
    FILE *f;
    int ok;

    if (loaded)
        *loaded = 0;
    if (!(f = fopen(path, "r"))) {
        if (errno == ENOENT)
            return 0;
        return rapid_fail(err, RAPID_E_IO, "%s: cannot read FFTW wisdom: %s",
                          path, strerror(errno));
    }
    pthread_once(&threads_once, threads_init);
    pthread_mutex_lock(&planner_lock);
    ok = fftwf_import_wisdom_from_file(f);
    pthread_mutex_unlock(&planner_lock);
    fclose(f);
    if (!ok)
        return rapid_fail(err, RAPID_E_IO, "%s: not FFTW single-precision "
                          "wisdom (remove it: it is made again)", path);
    if (loaded)
        *loaded = 1;
    return 0;
}

int rapid_fft_wisdom_save(const char *path, rapid_err *err)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    FILE *f;
    int fd, ok;

    if (!tmp)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0 || !(f = fdopen(fd, "w"))) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write FFTW wisdom: %s",
                          path, strerror(e));
    }
    pthread_mutex_lock(&planner_lock);
    fftwf_export_wisdom_to_file(f);
    pthread_mutex_unlock(&planner_lock);
    ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write FFTW wisdom: %s",
                          path, strerror(e));
    }
    free(tmp);
    return 0;
}
