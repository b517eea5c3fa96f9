/* rapid/fft.h - FFTW (single precision) wrapped once for the whole library.
 *
 * A plan is made once per transform (kind, shape, in or out of place,
 * threads) and kept in a cache; later requests for the same transform get
 * the same plan back.  Plans are made on the cache's own scratch arrays, so
 * planning never touches the caller's data, and they are executed on the
 * caller's arrays through FFTW's new-array interface, which is thread-safe:
 * any number of threads may execute one plan at once.
 *
 * Global lock: FFTW's planner is process-wide and not re-entrant.  Every
 * plan the library makes or destroys goes through this module, under one
 * mutex (the "planner lock"), which also guards the caches.  Execution
 * takes no lock.  Code outside rapid that plans with FFTW in the same
 * process must not do so while rapid plans (or it must call
 * fftwf_make_planner_thread_safe() first).
 *
 * Arrays given to the execute functions must come from rapid_fft_alloc()
 * (FFTW's SIMD alignment, which the plans assume), and an in-place plan
 * must be executed in place, an out-of-place one out of place.
 *
 * Layouts (row-major, ny rows of nx): real arrays ny x nx; the half
 * spectrum of a real transform ny x (nx/2 + 1) complex values.  In place,
 * the real array's rows are padded to 2 (nx/2 + 1) floats
 * (rapid_fft_real_stride()).  Transforms are unnormalised: a forward then
 * backward transform multiplies by nx * ny.  The complex-to-real transform
 * destroys its input.
 *
 * Rigor: RAPID_FFT_ESTIMATE plans do not depend on timings, so results
 * are reproducible bit for bit across runs and machines with the same FFTW
 * build; RAPID_FFT_MEASURE plans are faster for transforms executed many
 * times but take seconds to make and may differ in the last bits between
 * runs.
 */
#ifndef RAPID_FFT_H
#define RAPID_FFT_H

#include <stddef.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rapid_fft_kind {
    RAPID_FFT_R2C = 1,     /* real -> half spectrum (forward) */
    RAPID_FFT_C2R = 2,     /* half spectrum -> real (backward) */
    RAPID_FFT_FORWARD = 3, /* complex -> complex, exp(-2 pi i jk/n) */
    RAPID_FFT_BACKWARD = 4, /* complex -> complex, exp(+2 pi i jk/n) */
    RAPID_FFT_COLUMNS = 5, /* complex -> complex, exp(-2 pi i jk/ny), along
                            * each of the nx columns of an ny x nx array
                            * only (the second pass of a 2-D transform);
                            * run with rapid_fft_c2c */
    RAPID_FFT_ROWS = 6,    /* real -> half spectrum along each of the ny
                            * rows of width nx only (the first pass of a
                            * 2-D R2C, whose second is RAPID_FFT_COLUMNS of
                            * nx/2 + 1 columns); in place only; run with
                            * rapid_fft_r2c on a block of rows of an array
                            * from rapid_fft_alloc() whose first row index
                            * is a multiple of 8 (so aligned as the
                            * array) */
    RAPID_FFT_ROWS_C2R = 7, /* half spectrum -> real along each of the ny
                            * rows of width nx only (the last pass of a
                            * 2-D C2R, whose first is
                            * RAPID_FFT_COLUMNS_BACKWARD of nx/2 + 1
                            * columns); in place only; run with
                            * rapid_fft_c2r, rows as RAPID_FFT_ROWS */
    RAPID_FFT_COLUMNS_BACKWARD = 8 /* as RAPID_FFT_COLUMNS, exp(+2 pi i
                            * jk/ny) */
} rapid_fft_kind;

typedef enum rapid_fft_rigor {
    RAPID_FFT_ESTIMATE = 0,
    RAPID_FFT_MEASURE = 1
} rapid_fft_rigor;

typedef struct rapid_fft_cache rapid_fft_cache;
typedef struct rapid_fft_plan rapid_fft_plan;

/* A cache of plans of the given rigor, executed with nthreads threads each
 * (>= 1).  NULL when out of memory.  Free with rapid_fft_cache_free(), which
 * destroys its plans: no thread may still execute them. */
rapid_fft_cache *rapid_fft_cache_new(rapid_fft_rigor rigor, int nthreads);
void rapid_fft_cache_free(rapid_fft_cache *c);

/* The plan for a 2-D transform of ny x nx, made on first request.  c NULL
 * means the process's shared cache (FFTW_ESTIMATE, one thread), which lives
 * until rapid_fft_shared_release().  The plan belongs to the cache. */
int rapid_fft_plan_get(rapid_fft_cache *c, rapid_fft_kind kind, int ny,
                       int nx, int inplace, const rapid_fft_plan **plan,
                       rapid_err *err);

/* Number of plans held by a cache (c NULL: the shared one). */
size_t rapid_fft_cache_size(const rapid_fft_cache *c);

/* Destroy the shared cache's plans (e.g. before a leak check at exit);
 * no thread may be executing them. */
void rapid_fft_shared_release(void);

/* Execute plan p (of the matching kind) on the caller's arrays. */
void rapid_fft_r2c(const rapid_fft_plan *p, float *in, float _Complex *out);
void rapid_fft_c2r(const rapid_fft_plan *p, float _Complex *in, float *out);
void rapid_fft_c2c(const rapid_fft_plan *p, float _Complex *in,
                   float _Complex *out);

/* FFTW wisdom (what MEASURE planning learnt) shared by the process.
 * Load: merge the wisdom of file path into the process's; a missing file
 * is no error (*loaded 0, may be NULL), an unreadable or corrupt one is
 * (RAPID_E_IO, naming it).  Save: the process's wisdom to path, written
 * to a temporary file beside it and renamed over it, so a reader never
 * sees half a file.  Both under the planner lock. */
int rapid_fft_wisdom_load(const char *path, int *loaded, rapid_err *err);
int rapid_fft_wisdom_save(const char *path, rapid_err *err);

/* Aligned arrays for the execute functions; NULL when out of memory.
 * Free with rapid_fft_free() (NULL is allowed). */
void *rapid_fft_alloc(size_t bytes);
void rapid_fft_free(void *p);

/* Floats per row of an in-place real array of width nx: 2 (nx/2 + 1). */
size_t rapid_fft_real_stride(int nx);

/* True if n > 0 has no prime factor above 7, or (allow_11_13) at most one
 * factor 11 or 13 besides: the sizes FFTW transforms fast.  4088 (8 x 7 x
 * 73) is four times slower than 4096. */
int rapid_fft_is_fast(int n, int allow_11_13);
/* The smallest n' >= n with rapid_fft_is_fast(n', 1). */
int rapid_fft_good_size(int n);
/* The smallest n' >= n without prime factors above 7 (FFTW's fastest
 * sizes: a 4200^2 transform takes a third of the time of 4158^2 =
 * (2 3^3 7 11)^2, with ESTIMATE plans). */
int rapid_fft_smooth_size(int n);

#ifdef __cplusplus
}
#endif
#endif
