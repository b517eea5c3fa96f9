/* sim_memory.c - the memory rapid_sim_run takes, estimated before it
 * allocates anything (rapid_sim_memory).
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
#include <stdlib.h>

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
    rc = sim_scene_expected(c, p, np, &ns, &nt, err);
    free(p);
    if (rc)
        return rc;
    side = (uint64_t)c->size + PAD;
    *bytes = SIM_FIXED + PER_PIXEL * side * side +
             (uint64_t)(PER_SOURCE * ns + sizeof(sim_transient) * nt);
    return 0;
}
