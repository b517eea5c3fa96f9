/* rapid/diffrun.h - one science image minus its reference by every method
 * asked for, from files to products: what `rapid diff` does and the
 * science job's steps 2-6 (docs/subtraction.md, docs/products.md).
 *
 * A run: rapid_diffrun_new with the options, rapid_diffrun_read (the
 * science image, the reference, its maps and the PSFs), rapid_diffrun_prepare
 * (rapid_diff_prepare: resampling, backgrounds, matching, the aperture
 * correction), rapid_diffrun_methods (naive, ZOGY, the kernel fit; a
 * method's failure is recorded in run[], not returned), then the products:
 * rapid_diffrun_write_set writes them as one product set into a directory;
 * rapid_diffrun_write_product writes one to a path of the caller's (the
 * science job's own set).  Warnings (a map or zero point missing, wisdom
 * unreadable) and progress go to the callbacks, never to a stream.
 */
#ifndef RAPID_DIFFRUN_H
#define RAPID_DIFFRUN_H

#include <stddef.h>

#include "rapid/diff.h"
#include "rapid/error.h"
#include "rapid/fft.h"
#include "rapid/fits.h"
#include "rapid/science.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { RAPID_DIFFRUN_ZOGY, RAPID_DIFFRUN_NAIVE, RAPID_DIFFRUN_SFFT,
       RAPID_DIFFRUN_NMETHOD };

/* "zogy", "naive", "sfft" (NULL outside 0 .. RAPID_DIFFRUN_NMETHOD - 1). */
const char *rapid_diffrun_method_name(int method);

#define RAPID_DIFFRUN_PATH 4096

/* A message for the caller to show: msg without a trailing newline. */
typedef void (*rapid_diffrun_msg_fn)(void *arg, const char *msg);

typedef struct rapid_diffrun_opts {
    const char *sci;         /* the science L2 file (required) */
    const char *sci_ext;     /* its HDU; NULL or "": SCI */
    const char *ref;         /* the reference image (required) */
    const char *sci_psf;     /* NULL: *PSF*_<FILTER>_<SCA>.fits beside sci,
                              * in psf/ or ../psf/ (rapid_coadd_find_psf) */
    const char *ref_psf;     /* NULL: <ref>_psf.fits */
    const char *ref_cov;     /* NULL: <ref>_cov.fits if it exists (a warning
                              * and coverage 1 if not); given: must be read */
    const char *ref_unc;     /* NULL: <ref>_unc.fits likewise */
    /* The reference, its maps and PSF already in memory, as they are
     * written to ref, ref_cov, ref_unc and ref_psf (the image's header
     * cards as given to the writer, in an extension named ref_mem_ext):
     * taken instead of reading the files, as the same pixels and header
     * a read of those files gives (NaN, infinities, -0 and subnormal
     * numbers as a FITS read turns them; a copy is made only of a plane
     * holding any).  ref_mem non-NULL: the reference is not read at all
     * (a NULL map or PSF then is one that is missing; ref, ref_cov,
     * ref_unc and ref_psf name them in the products); borrowed: neither
     * changed nor freed, the caller keeps them (and may read them from
     * other threads) until rapid_diffrun_prepare has returned (NULL) */
    const rapid_image *ref_mem, *ref_cov_mem, *ref_unc_mem, *ref_psf_mem;
    const char *ref_mem_ext; /* NULL or "": SCI */
    int asked[RAPID_DIFFRUN_NMETHOD]; /* 1: run the method (all 1) */
    int nthreads;            /* FFT and kernel-fit threads (1) */
    int order;               /* sfft's spatial order; -1: its default (-1) */
    int half_width;          /* sfft's kernel half-width; -1: default (-1) */
    const char *wisdom;      /* FFTW wisdom file: MEASURE plans, loaded and
                              * saved; NULL: ESTIMATE plans (NULL) */
    rapid_diffrun_msg_fn warn;     /* warnings (NULL: dropped) */
    rapid_diffrun_msg_fn progress; /* what starts now (NULL: nothing) */
    void *arg;                     /* their first argument */
    volatile sig_atomic_t *stop; /* non-NULL: set (by a signal handler) to
                              * stop: the preparation (RAPID_E_INTERRUPTED),
                              * ZOGY and the kernel fit look at it
                              * between their steps, a method not begun
                              * is not run (both fail, their message
                              * saying "interrupted") (NULL) */
} rapid_diffrun_opts;

void rapid_diffrun_opts_init(rapid_diffrun_opts *o);

/* One method's outcome. */
typedef struct rapid_diffrun_method {
    int ok;
    double seconds;
    double cpu_seconds;        /* the process's CPU time (user + system) */
    char msg[RAPID_ERR_MAX];   /* why it failed */
} rapid_diffrun_method;

/* Everything the products are made of (read-only for the caller). */
typedef struct rapid_diffrun {
    rapid_diffrun_opts o;               /* a copy; the strings are the caller's */
    rapid_science sci;
    rapid_wcs sci_wcs, ref_wcs;
    rapid_image ref, cov, unc;          /* as read; released after prepare */
    unsigned borrowed;                  /* bits 1, 2, 4: ref, cov, unc's
                                         * pixels are the caller's */
    rapid_image ref_psf, sci_psf;       /* primary images of the PSF files */
    rapid_image refsci_psf;             /* ref_psf as the science pixels see it */
    int have_ref_psf, have_sci_psf;
    rapid_err ref_psf_err, sci_psf_err; /* why a PSF is missing */
    char sci_psf_path[RAPID_DIFFRUN_PATH], ref_psf_path[RAPID_DIFFRUN_PATH];
    char ref_cov_path[RAPID_DIFFRUN_PATH], ref_unc_path[RAPID_DIFFRUN_PATH];
    int have_cov, have_unc;
    double sci_zp, ref_zp, zp_scale;    /* NaN when not stated */
    rapid_diff_pair pair;
    float *naive_d, *naive_unc;
    rapid_zogy_out zogy;
    rapid_sfft_out sfft;
    rapid_diffrun_method run[RAPID_DIFFRUN_NMETHOD];
    rapid_fft_cache *fft;               /* plans for ZOGY and the kernel fit */
    double t_read, t_prepare, t_write;  /* seconds */
    double bkg_sci, bkg_ref;            /* median background levels, DN/s */
} rapid_diffrun;

/* A run with options o (copied); NULL when out of memory. */
rapid_diffrun *rapid_diffrun_new(const rapid_diffrun_opts *o);
void rapid_diffrun_free(rapid_diffrun *r);

/* The science image, its WCS, the reference, its maps, the zero points
 * and the PSFs.  A PSF missing or unreadable is not an error: it is kept
 * (sci_psf_err, ref_psf_err) as the failure of the methods that need it.
 * Errors name the file. */
int rapid_diffrun_read(rapid_diffrun *r, rapid_err *err);

/* rapid_diff_prepare and the aperture correction; the reference as read is
 * released after.  Errors name the pair. */
int rapid_diffrun_prepare(rapid_diffrun *r, rapid_err *err);

/* Every method asked for, in the order naive, ZOGY, kernel fit; each
 * one's outcome in r->run[method].  Returns how many succeeded. */
int rapid_diffrun_methods(rapid_diffrun *r);

/* rapid_diffrun_methods in parts, for a caller that runs the methods side
 * by side on threads of its own: the transforms' plans for ZOGY and the
 * kernel fit, made for nthreads threads (0: the run's nthreads), before
 * either; each method, once, from any thread, on nthreads threads (0: the
 * run's, with cpu_seconds the process's CPU time as rapid_diffrun_methods
 * gives it; > 0: cpu_seconds is the CPU time of the calling thread alone,
 * so the kernel fit's BLAS helper threads are left out); then the end,
 * after every method: returns how many succeeded.  The kernel fit sets
 * the BLAS library's threads process-wide (its sums depend on how many:
 * give it the same number wherever it runs).  ZOGY's results, and the
 * transforms', are the same on any number of threads. */
void rapid_diffrun_methods_begin(rapid_diffrun *r, int nthreads);
void rapid_diffrun_run_method(rapid_diffrun *r, int method, int nthreads);
int rapid_diffrun_methods_end(rapid_diffrun *r);

/* ---- products ---- */

enum {
    RAPID_DIFFRUN_P_ZOGY_DIFF, RAPID_DIFFRUN_P_ZOGY_UNC,
    RAPID_DIFFRUN_P_ZOGY_SCORR, RAPID_DIFFRUN_P_ZOGY_PSF,
    RAPID_DIFFRUN_P_NAIVE_DIFF, RAPID_DIFFRUN_P_NAIVE_UNC,
    RAPID_DIFFRUN_P_SFFT_DIFF, RAPID_DIFFRUN_P_SFFT_CCONV,
    RAPID_DIFFRUN_P_SFFT_UNC, RAPID_DIFFRUN_P_SFFT_PSF,
    RAPID_DIFFRUN_P_REFSCI, RAPID_DIFFRUN_P_REFSCI_COV,
    RAPID_DIFFRUN_P_REFSCI_UNC, RAPID_DIFFRUN_P_REFSCI_PSF,
    RAPID_DIFFRUN_NPRODUCT
};

/* What product k is. */
typedef struct rapid_diffrun_product {
    const char *suffix;   /* after the base name: "_zogy_diff" */
    int method;           /* RAPID_DIFFRUN_ZOGY ..., or -1: the reference */
    const char *group;    /* "zogy", "naive", "sfft" or "refsci" */
    const char *key;      /* within the group: "diff", "unc", "scorr", ... */
} rapid_diffrun_product;

const rapid_diffrun_product *rapid_diffrun_product_kind(int k);
/* Is product k made by this run (its method succeeded; the reference's
 * PSF only when there is one)? */
int rapid_diffrun_made(const rapid_diffrun *r, int k);
/* Its file name: <science file's name without .fits><suffix>.fits.
 * 0, or -1 if it does not fit in sz. */
int rapid_diffrun_product_name(const rapid_diffrun *r, int k, char *out,
                               size_t sz);
/* Write product k (made) to path, with its header cards
 * (docs/products.md). */
int rapid_diffrun_write_product(rapid_diffrun *r, int k, const char *path,
                                rapid_err *err);
/* Every product made, as one product set in dir (rapid/prodset.h: dir
 * holds the products of this science image and nothing else). */
int rapid_diffrun_write_set(rapid_diffrun *r, const char *dir, rapid_err *err);

/* The median of a background's window means, DN/s (NaN without memory). */
double rapid_diffrun_background_level(const rapid_background *b);

#ifdef __cplusplus
}
#endif
#endif
