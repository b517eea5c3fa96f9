/* sim_memory.c - the memory rapid_sim_run takes, estimated before it
 * allocates anything (rapid_sim_memory), and the bytes it will write
 * (rapid_sim_volume).
 *
 * What it allocates: the scene, held for the whole run (each static source
 * 80 bytes, its place in the position index about 12, and at the end its
 * row of the static truth table, 76: about 170 bytes a source; a transient
 * or variable about 100), and, one image at a time, the image with its
 * ERR and DQ extensions, its expected counts and the FFT layers of the
 * galaxies and their kernel, about 25 bytes per pixel of the image padded
 * by the PSF's margin and rounded to an FFT size (taken as side + 128).
 * Calibrated against the peak RSS of `/usr/bin/time -v rapid sim --scas 1
 * --epochs 1`:
 *
 *   size  tiles  peak RSS  estimate  ratio
 *   256   1      22 MB     25 MB     1.10
 *   1024  1      46 MB     54 MB     1.16
 *   2048  1      123 MB    139 MB    1.13
 *   4088  1      426 MB    465 MB    1.09
 *   256   200    457 MB    461 MB    1.01  (2.6 million sources; measured
 *                                           before ERR and DQ, which add
 *                                           1.2 MB here)
 *
 * The source count is the scene's expectation (the scene draws a Poisson
 * deviate of it), so a run with many sources may exceed it by a little.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_internal.h"

#define SIM_FIXED ((uint64_t)20 << 20)
#define PER_PIXEL 25
#define PAD 128
#define PER_SOURCE 170

int rapid_sim_memory(const rapid_sim_config *c, uint64_t *bytes,
                     rapid_err *err)
{
    rapid_sim_pointing *p = NULL;
    double ns = 0, nt = 0;
    uint64_t side;
    int np, rc;

    *bytes = 0;
    if ((np = rapid_sim_plan(c, &p, err)) < 0)
        return np;
    rc = sim_scene_expected(c, p, np, &ns, &nt, NULL, err);
    free(p);
    if (rc)
        return rc;
    side = (uint64_t)c->size + PAD;
    *bytes = SIM_FIXED + PER_PIXEL * side * side +
             (uint64_t)(PER_SOURCE * ns + sizeof(sim_transient) * nt);
    return 0;
}

/* What the files hold (FITS: 2880-byte blocks).  An L2 file: a primary
 * header and three 4-byte image HDUs (SCI, ERR, DQ); their headers take 7
 * blocks.  A
 * PSF file: the 65 x 65 float32 model and its 4x oversampled 261 x 261
 * extension, 103 blocks in all (one per visit with a per-visit blur).  The truth:
 * 76 bytes a static source, 148 a row of a transient or variable in an
 * image (at most: supernovae that never get bright enough are counted). */
#define FITS_BLOCK 2880
#define L2_HEADERS (7 * FITS_BLOCK)
#define L2_HDUS 3
#define PSF_BYTES (103 * FITS_BLOCK)
#define TRUTH_PER_SOURCE 76
#define TRUTH_PER_TRANSIENT 148

static uint64_t blocks(uint64_t n)
{
    return (n + FITS_BLOCK - 1) / FITS_BLOCK * FITS_BLOCK;
}

int rapid_sim_volume(const rapid_sim_config *c, rapid_sim_volume_t *v,
                     rapid_err *err)
{
    rapid_sim_pointing *p = NULL;
    double ns = 0, nt = 0, area = 1, det;
    uint64_t pix = (uint64_t)c->size * (uint64_t)c->size;
    int np, rc, f, k, used;

    memset(v, 0, sizeof *v);
    if ((np = rapid_sim_plan(c, &p, err)) < 0)
        return np;
    rc = sim_scene_expected(c, p, np, &ns, &nt, &area, err);
    for (f = 0; f < c->nfilters && rc == 0; f++) {
        for (used = 0, k = 0; k < np && !used; k++)
            used = p[k].filter == c->filters[f];
        v->psf_files += used ? (int64_t)c->nscas *
                                   (c->psf_visit_blur > 0 ? c->epochs : 1)
                             : 0;
    }
    free(p);
    if (rc)
        return rc;
    v->images = (int64_t)np * c->nscas;
    /* a detector's share of the scene's transients, in every image */
    det = (double)pix * (0.11 / 3600) * (0.11 / 3600) / area;
    v->image_bytes = L2_HEADERS + L2_HDUS * blocks(4 * pix);
    v->bytes = (uint64_t)v->images * v->image_bytes +
               (uint64_t)v->psf_files * PSF_BYTES +
               blocks((uint64_t)(TRUTH_PER_SOURCE * ns)) +
               blocks((uint64_t)(TRUTH_PER_TRANSIENT * nt * fmin(det, 1) *
                                 (double)v->images)) +
               4 * FITS_BLOCK;
    return 0;
}
