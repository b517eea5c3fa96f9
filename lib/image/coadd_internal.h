/* coadd_internal.h - what the files of the reference image share (private
 * to lib/image/coadd*.c).  The driver, coadd.c, calls them in this order:
 *
 *   coadd_inputs.c  which inputs, and their photometry (coadd_input)
 *   coadd_sums.c    each input resampled into the running sums (coadd_sums),
 *                   which become the maps in place
 *   coadd_reject.c  the outliers taken out of the sums
 *   coadd_stats.c   the refimmeta statistics of the maps
 *   coadd_psf.c     the reference PSF
 */
#ifndef RAPID_COADD_INTERNAL_H
#define RAPID_COADD_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "rapid/coadd.h"
#include "rapid/filters.h"
#include "rapid/tile.h"
#include "rapid/wcs.h"

/* ------------------------------------------------------------- inputs */

typedef struct coadd_input {
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
    double spike_ratio;   /* its PSF's peak over its largest side neighbour
                           * (rapid/spikes.h; NaN: no spike search) */
    long nspike;          /* its pixels left out as spikes */
    char filter[16];
} coadd_input;

/* The inputs of filter f that land on the grid, nearest the tile centre
 * first, at most o->max_inputs, into *out (owned by the caller: release
 * each of the *nout, then free).  An input of another filter is an error
 * naming it; fewer than o->min_inputs is RAPID_E_TOOFEW.  *out and *nout
 * are set on failure too.  why (NULL, or n entries, zeroed): why[k] gets
 * the reason input k was left out (a static string), if it was. */
int coadd_choose_inputs(const rapid_coadd_opts *o, const rapid_filter *f,
                        int64_t rtid, const rapid_coadd_input *src, int n,
                        rapid_wcs *grid, const rapid_tile *t, coadd_input **out,
                        int *nout, const char **why, rapid_err *err);
void coadd_input_release(coadd_input *in);

/* Half-width (px) of the square around each PERSISTENCE pixel of an
 * input that is left out, as the science image loses it
 * (RAPID_SCIENCE_PERSIST_GROW): the charge of pixels an earlier exposure
 * nearly filled reaches 3 px beyond those flagged, and where one input
 * covers the grid nothing rejects it.  The neighbours of JUMP_DET pixels
 * go within 1 px (RAPID_DQ_GROW). */
#define COADD_PERSIST_GROW 3

/* --------------------------------------------------------- running sums */

/* The running sums of the output pixels, one plane each (the planes of
 * the image, the uncertainty and the coverage become the maps in place):
 * S = sum w*as, W = sum w*a, V = sum w^2*av, C = sum a.  Besides the sums,
 * the largest single-input value M, with what it takes to remove it again
 * packed in mx: the input (8 bits), its variance factor G / apix (8 bits,
 * 1/200) and its overlap area a (16 bits, 1/32768), from which its weight
 * w a and its variance are rebuilt (coadd_reject.c); mx 0: no value yet. */
#define MX_INPUT(mx) ((int)((mx) & 0xff))
#define MX_G(mx) ((double)(((mx) >> 8) & 0xff) / 200)
#define MX_A(mx) ((double)((mx) >> 16) / 32768)

/* Rows y of the sums are guarded by lock y / BAND % NBAND. */
#define BAND 32
#define NBAND 64

/* Has the caller asked the coadd to stop (rapid_coadd_opts.stop)? */
static inline int coadd_stopped(const rapid_coadd_opts *o)
{
    return o->stop && *o->stop;
}

typedef struct coadd_sums {
    int size;
    size_t npix;
    float *S, *W, *V, *C, *M;
    uint32_t *mx;
    const rapid_coadd_opts *o;
    coadd_input *in;
    int nin, next, done, failed;
    long npixsat;
    rapid_err err;
    rapid_wcs *grid;
    pthread_mutex_t lock;            /* the fields above, the progress */
    pthread_mutex_t band[NBAND];     /* rows y of the sums: y / BAND % NBAND */
    rapid_progress_fn progress;
    void *arg;
} coadd_sums;

/* The planes of a size x size grid, zero.  0 or RAPID_E_NOMEM. */
int coadd_sums_alloc(coadd_sums *s, int size);
void coadd_sums_free(coadd_sums *s);

/* Read, weigh and resample every input s->in[0 .. s->nin - 1] into the
 * sums, on nthreads threads (the caller's one of them).  0 or the first
 * failure, with its message. */
int coadd_run_inputs(coadd_sums *s, int nthreads, rapid_err *err);

/* The maps, in place: the image over the sums S, the uncertainty over V,
 * the coverage over C, handed to out; the other planes are freed. */
void coadd_take_maps(coadd_sums *s, rapid_coadd *out);

/* ---------------------------------------------------- outlier rejection */

/* Take out of the sums the largest value at each pixel that stands out
 * (s->o's reject_sigma, reject_grad, grow_sigma); *nrej: how many.  0 or
 * RAPID_E_NOMEM. */
int coadd_reject_outliers(coadd_sums *s, long *nrej);

/* For the tests: 0 sends every pixel through the full test instead of
 * only those the vectorised pre-filter lets through (1, the default).
 * The decisions are the same either way. */
extern int coadd_reject_prefilter;

/* ----------------------------------------------------------- the rest */

/* The refimmeta statistics of c's maps into c->meta (all but those of the
 * inputs, the rejection and the catalog).  0 or RAPID_E_NOMEM. */
int coadd_image_stats(rapid_coadd *c);

/* The reference PSF of the n inputs, from their PSF files (as given, or
 * found beside them): from their OVERSAMP extensions when every one has
 * one (rapid_coadd_psf_oversampled; out_over gets the model before
 * sampling), else from the sampled PSFs (rapid_coadd_psf; out_over is
 * left empty). */
int coadd_reference_psf(const rapid_coadd_opts *o, const coadd_input *in,
                        int n, rapid_image *out, rapid_image *out_over,
                        rapid_err *err);

/* Each input's spike_ratio from its PSF file (as given, or found beside
 * it): 0, or the failure to find or read one, naming it. */
int coadd_spike_ratios(coadd_input *in, int n, rapid_err *err);

#endif
