/* rapid/coadd.h - reference images: a flux-conserving coadd of L2 images on
 * a sky tile (docs/reference.md).
 *
 * The grid is north-up TAN centred on the tile centre at 0.11"/px (7000^2 by
 * default, larger than a tile so that any rotated detector image centred in
 * the tile is covered).  Each input is converted to DN/s, scaled to a common
 * zero point, and resampled through its SIP WCS with exact pixel-overlap
 * weights: every input pixel's flux goes to the output pixels in proportion
 * to the area they share, so flux is conserved.  Inputs are combined with
 * inverse-variance weights; a value of one input that stands out from the
 * others at a pixel (cosmic ray, transient, satellite trail) is rejected.
 * Memory is bounded: inputs are read one at a time.
 */
#ifndef RAPID_COADD_H
#define RAPID_COADD_H

#include <signal.h> /* sig_atomic_t */
#include <stddef.h>
#include <stdint.h>

#include "rapid/error.h"
#include "rapid/extract.h"
#include "rapid/fits.h"
#include "rapid/refimmeta.h"
#include "rapid/tile_export.h" /* rapid_progress_fn */

#ifdef __cplusplus
extern "C" {
#endif

/* The exit status of a science job that has too few inputs for a
 * reference image (rapid_coadd_make's RAPID_E_TOOFEW; docs/exit-codes.md). */
#define RAPID_EXIT_TOOFEW 33

typedef struct rapid_coadd_opts {
    int size;              /* output pixels per side (7000) */
    double pixscale;       /* arcsec/pixel (0.11) */
    int nside;             /* tessellation (512) */
    int max_inputs;        /* at most this many, nearest the tile centre (25) */
    int min_inputs;        /* fewer is RAPID_E_TOOFEW (3) */
    double magzp;          /* common zero point for DN/s; NaN: median ZPTMAG */
    double reject_sigma;   /* outlier threshold over the expected noise (5) */
    double reject_grad;    /* ... plus this times the local gradient (1) */
    double grow_sigma;     /* neighbours of a rejected value, same input (3) */
    double sat_fraction;   /* pixels >= this x SATURATE are excluded (0.95) */
    int nthreads;          /* inputs resampled in parallel, and the
                            * catalog's strips (rapid/extract.h) (1) */
    int psf_size;          /* side of the reference PSF; 0: as the inputs */
    int row_batch;         /* an input's resampled rows go into the sums this
                            * many at a time, from a ring of rows
                            * (RAPID_MESH_BATCH, 1024; 0: each as soon as it
                            * is done; < 0: all at the end, the whole
                            * footprint held): the same values either way */
    int defer_catalog;     /* 1: no catalog (nor its meta) here; the caller
                            * makes it with rapid_coadd_catalog, e.g. on
                            * another thread while it uses the maps (0) */
    volatile sig_atomic_t *stop; /* non-NULL: set (by a signal handler) to
                            * stop: looked at before each input and
                            * between the steps after them (a second at
                            * most at full size), rapid_coadd_make then
                            * frees what it holds and returns
                            * RAPID_E_INTERRUPTED (NULL) */
} rapid_coadd_opts;

void rapid_coadd_opts_init(rapid_coadd_opts *o);

/* One input: an L2 file and its PSF file. */
typedef struct rapid_coadd_input {
    const char *path;
    const char *psf_path;   /* NULL: found beside it (rapid_coadd_find_psf) */
} rapid_coadd_input;

/* An input that was given but not used, and why (e.g. "its WCS puts it
 * 92.3 deg from the tile centre", "it does not overlap the grid", "not
 * among the 25 nearest the tile centre"). */
typedef struct rapid_coadd_skip {
    char *path;
    char *reason;
} rapid_coadd_skip;

typedef struct rapid_coadd {
    rapid_image image;        /* DN/s at MAGZP per output pixel; NaN: none */
    rapid_image coverage;     /* sum of overlap areas of the inputs used */
    rapid_image uncertainty;  /* 1-sigma of image, DN/s */
    rapid_image psf;          /* reference PSF, unit sum */
    rapid_image psf_over;     /* the same before sampling: OVERSAMP samples
                               * per pixel (header keyword), unit sum; empty
                               * (data NULL) when an input PSF file has no
                               * OVERSAMP extension */
    rapid_table catalog;      /* SEP catalog of image */
    rapid_refimmeta meta;     /* its statistics (rapid/refimmeta.h) */
    rapid_header header;      /* provenance (FIELD, FILTER, NFRAMES, MAGZP,
                               * TOTEXPTM, INFILnnn, RAPIDVER, GITCOMM,
                               * DATE...): in every product's primary
                               * header and in each HDU of data */
    int ninputs;
    char **inputs;            /* the files used, nearest the tile centre first */
    int nskipped;
    rapid_coadd_skip *skipped; /* the inputs given but not used, in the order
                                * given; also filled when rapid_coadd_make
                                * fails with RAPID_E_TOOFEW (the rest of the
                                * result is empty then; rapid_coadd_release
                                * frees it) */
} rapid_coadd;

void rapid_coadd_init(rapid_coadd *c);
void rapid_coadd_release(rapid_coadd *c);

/* The PSF file of an L2 file: the file given, or one named
 * *PSF*_<FILTER>_<SCA>.fits (FILTER as in the L2 header, SCA unpadded)
 * in the L2 file's directory, its psf/ subdirectory or ../psf/.  out gets
 * the path.  RAPID_E_NOENT naming the places looked in if there is none. */
int rapid_coadd_find_psf(const char *l2path, const char *filter, int sca,
                         char *out, size_t outsz, rapid_err *err);

/* The reference PSF from sampled input PSFs (the fallback when an input's
 * PSF file has no OVERSAMP extension): the mean of the input PSFs,
 * convolved with [1/12 5/6 1/12] per axis (the variance that exact-overlap
 * resampling adds), made circularly symmetric and normalised to unit sum.
 * psfs: n images of odd size.  For an undersampled PSF (Roman's) its core
 * is too sharp: the resampling lowers the peak more than any kernel on
 * the samples can say (by 13 % in H158). */
int rapid_coadd_psf(const rapid_image *psfs, int n, int size, rapid_image *out,
                    rapid_err *err);

/* The reference PSF from oversampled input PSFs: ovs are n effective
 * (pixel-convolved) PSFs of odd size, over samples per pixel, centred on
 * their middle sample.  Their mean (each normalised) is convolved with two
 * pixels -- the input pixel spread over the output pixels it overlaps --
 * by the boxes' transforms, made circularly symmetric, and sampled every
 * over-th sample through the centre into out (size x size, odd; unit
 * sum): a star's profile on the reference grid averaged over where the
 * input pixels fall.  out_over (NULL: not wanted) gets the model before
 * sampling (as ovs[0], unit sum, header OVERSAMP).  Both are allocated
 * here. */
int rapid_coadd_psf_oversampled(const rapid_image *ovs, int n, int over,
                                int size, rapid_image *out,
                                rapid_image *out_over, rapid_err *err);

/* RAPID_E_ARG if two inputs are the same file (the same device and inode:
 * the same path, another spelling of it, a hard or symbolic link), which
 * would count one exposure twice: "input 5 (PATH) is the same file as
 * input 1 (PATH)", numbered from 1.  Inputs that cannot be stat()ed are
 * left for the reading to report.  rapid_coadd_make calls it first. */
int rapid_coadd_check_inputs(const rapid_coadd_input *in, int n, rapid_err *err);

/* Make the reference image of tile rtid in filter (e.g. "H158") from the
 * inputs (any order; the same file twice is RAPID_E_ARG
 * (rapid_coadd_check_inputs); those of other filters are an error naming
 * the file; those not overlapping the grid, and those beyond the
 * max_inputs nearest the tile centre, are left out and listed in
 * out->skipped with the reason).  RAPID_E_TOOFEW with a message naming
 * the inputs left out when fewer than min_inputs remain. */
int rapid_coadd_make(const rapid_coadd_opts *o, int64_t rtid,
                     const char *filter, const rapid_coadd_input *inputs, int n,
                     rapid_coadd *out, rapid_progress_fn progress, void *arg,
                     rapid_err *err);

/* The memory rapid_coadd_make will take for these options and inputs, in
 * bytes, estimated without allocating (the inputs' size from the first
 * readable header; a Roman detector's, 4088^2, if none): 24 bytes per
 * grid pixel, 12 per input pixel per thread, 32 MiB besides.  It errs high
 * by 10-30 % (coadd_memory.c says how it was calibrated). */
uint64_t rapid_coadd_memory(const rapid_coadd_opts *o,
                            const rapid_coadd_input *in, int n);

/* Write the products into dir: <base>.fits (image), <base>_cov.fits,
 * <base>_unc.fits, <base>_psf.fits, <base>_cat.fits, with base
 * "rapid_ref_<rtid>_<FILTER>".  The image, the maps and the catalog are
 * extensions (SCI, COV, UNC, CATALOG) after a primary HDU holding
 * c->header; the PSF is the primary HDU (docs/products.md lists the
 * cards).  They are one product set (rapid/prodset.h): at
 * every moment, even if the process is killed (SIGKILL included) or this
 * fails, dir holds either the complete earlier set of five or the complete
 * new set, never a mix.  The set is written into a hidden sibling of dir
 * and swapped in with one rename.  dir must hold nothing but these five
 * files (RAPID_E_ARG naming any other: it is replaced as a whole).  The
 * temporaries are registered with rapid/tmpfiles.h, for a signal handler
 * to remove (the rapid command installs one); those of a killed writer
 * are removed by the next write into dir. */
int rapid_coadd_write(const rapid_coadd *c, const char *dir, int64_t rtid,
                      const char *filter, rapid_err *err);

/* The five products, in rapid_coadd_write's order. */
enum { RAPID_COADD_IMAGE, RAPID_COADD_COV, RAPID_COADD_UNC, RAPID_COADD_PSF,
       RAPID_COADD_CAT, RAPID_COADD_NPRODUCT };

/* The file name of product k: rapid_ref_<rtid>_<FILTER><suffix>.fits
 * (suffix "", "_cov", "_unc", "_psf", "_cat").  0, or -1 if it does not
 * fit in sz or k is not a product. */
int rapid_coadd_product_name(char *out, size_t sz, int64_t rtid,
                             const char *filter, int k);

/* The five products written to paths[k] as rapid_coadd_write writes them,
 * for a caller that writes them into a product set of its own (the
 * science job's).  Each file is written whole or not at all
 * (rapid_fits_commit); the set is the caller's to make atomic. */
int rapid_coadd_write_files(const rapid_coadd *c,
                            const char *const paths[RAPID_COADD_NPRODUCT],
                            rapid_err *err);

/* Product k alone (RAPID_COADD_IMAGE .. RAPID_COADD_CAT) to path, as
 * rapid_coadd_write_files writes it. */
int rapid_coadd_write_file(const rapid_coadd *c, int k, const char *path,
                           rapid_err *err);

/* The catalog of c's image (made with defer_catalog), on this thread:
 * c->catalog with the products' provenance cards, and the meta it gives (nsexcatsources,
 * fwhmmedpix, fwhmminpix, fwhmmaxpix).  Reads c->image, c->uncertainty
 * and its header's WCS only, so it may run while other threads read
 * those.  stop (NULL: none) as rapid_extract_opts.stop: when it is set,
 * RAPID_E_INTERRUPTED and no catalog.  0 or a negative status. */
int rapid_coadd_catalog(rapid_coadd *c, volatile sig_atomic_t *stop,
                        rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
