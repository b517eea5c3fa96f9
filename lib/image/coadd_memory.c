/* coadd_memory.c - the memory rapid_coadd_make takes, estimated before it
 * allocates anything (rapid_coadd_memory).
 *
 * What it allocates: the running sums, six planes of 4 bytes per grid
 * pixel, held to the end (three become the maps; the catalog then reuses
 * the memory of the other three); per worker thread one input image
 * (4 bytes per input pixel), its ERR extension when it has one (4 more)
 * and its resampling mesh and accumulators (about 8 more); and a fixed part (libraries, FFTW and SEP state, PSFs,
 * headers).  Calibrated against the peak RSS of `/usr/bin/time -v rapid
 * coadd` on simulated inputs (rapid sim, 4 epochs, 1 detector):
 *
 *   inputs   grid    threads  peak RSS  estimate  ratio
 *   1024^2   1000^2  1        60 MB     70 MB     1.16
 *   1024^2   1000^2  2        72 MB     83 MB     1.15
 *   2048^2   2000^2  1        157 MB    180 MB    1.15
 *   2048^2   2000^2  2        205 MB    230 MB    1.12
 *   2048^2   3000^2  1        251 MB    300 MB    1.19
 *   1024^2   6000^2  1        723 MB    910 MB    1.26
 *
 * It errs high by 10-30 %: grid pixels that no input covers are allocated
 * but never touched, so they do not count in the RSS. */
#include "rapid/coadd.h"
#include "rapid/fits.h"

#define COADD_FIXED ((uint64_t)32 << 20)
#define PER_GRID_PIXEL 24
#define PER_INPUT_PIXEL 12
#define PER_ERR_PIXEL 4
#define ROMAN_DETECTOR_PIXELS ((uint64_t)4088 * 4088)

/* Pixels of the first input whose header can be read (a survey's inputs
 * share one size), and whether it has an ERR extension; a Roman
 * detector's, without, if none. */
static uint64_t input_pixels(const rapid_coadd_input *in, int n, int *has_err)
{
    int k;

    for (k = 0; k < n; k++) {
        rapid_header h = RAPID_HEADER_INIT;
        long nx = 0, ny = 0;
        int ok = rapid_fits_read_header(in[k].path, NULL, &h, NULL) == 0 &&
                 rapid_header_get_long(&h, "NAXIS1", &nx, NULL) == 0 &&
                 rapid_header_get_long(&h, "NAXIS2", &ny, NULL) == 0 &&
                 nx > 0 && ny > 0;
        rapid_header_release(&h);
        if (ok) {
            *has_err = rapid_fits_has_hdu(in[k].path, "ERR", NULL) == 1;
            return (uint64_t)nx * (uint64_t)ny;
        }
    }
    *has_err = 0;
    return ROMAN_DETECTOR_PIXELS;
}

uint64_t rapid_coadd_memory(const rapid_coadd_opts *o,
                            const rapid_coadd_input *in, int n)
{
    uint64_t grid = (uint64_t)(o->size > 0 ? o->size : 0), pix;
    int threads = o->nthreads, has_err = 0;

    if (threads > n)
        threads = n;
    if (threads > o->max_inputs)
        threads = o->max_inputs;
    if (threads < 1)
        threads = 1;
    pix = input_pixels(in, n, &has_err);
    return COADD_FIXED + PER_GRID_PIXEL * grid * grid +
           (uint64_t)threads * (PER_INPUT_PIXEL + (has_err ? PER_ERR_PIXEL : 0)) *
               pix;
}
