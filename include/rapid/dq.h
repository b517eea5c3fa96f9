/* rapid/dq.h - the data-quality (DQ) bits of L2 images, and how rapid
 * reads an L2 file's SCI, ERR and DQ extensions.
 *
 * An L2 file holds, after a header-only primary HDU, the extensions SCI
 * (float32, DN), ERR (float32, DN: the 1-sigma uncertainty of SCI) and DQ
 * (unsigned 32-bit: an OR of the bits below; BITPIX 32, BZERO 2^31).  The
 * bit values are those of the Roman and JWST calibration pipelines
 * (roman_datamodels / jwst dqflags).  Files with SCI alone (or a bare
 * primary image) are read as before: every finite pixel is usable.
 */
#ifndef RAPID_DQ_H
#define RAPID_DQ_H

#include <stdint.h>

#include "rapid/error.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_DQ_DO_NOT_USE 1u     /* bad; with a NaN SCI: no data */
#define RAPID_DQ_SATURATED 2u      /* at or beyond full well */
#define RAPID_DQ_JUMP_DET 4u       /* a cosmic-ray jump found and fitted out */
#define RAPID_DQ_PERSISTENCE 32u   /* excess charge from an earlier exposure */
#define RAPID_DQ_DEAD 1024u        /* collects no charge */
#define RAPID_DQ_HOT 2048u         /* dark current far above the rest */
#define RAPID_DQ_WARM 4096u        /* dark current somewhat raised */
#define RAPID_DQ_LOW_QE 8192u      /* a fraction of the normal response */

/* The bits that make a pixel unusable: DO_NOT_USE, SATURATED,
 * PERSISTENCE, DEAD, HOT and LOW_QE.  JUMP_DET alone is not among them
 * (the up-the-ramp fit removed the jump; the value is good, only noisier),
 * nor WARM (its dark current is calibrated out well enough). */
#define RAPID_DQ_UNUSABLE                                                    \
    (RAPID_DQ_DO_NOT_USE | RAPID_DQ_SATURATED | RAPID_DQ_PERSISTENCE |       \
     RAPID_DQ_DEAD | RAPID_DQ_HOT | RAPID_DQ_LOW_QE)

/* Is a pixel with this DQ value to be treated as no data? */
static inline int rapid_dq_unusable(uint32_t dq)
{
    return (dq & RAPID_DQ_UNUSABLE) != 0;
}

/* The 1-sigma uncertainty in DN of a pixel holding sci DN, as a pipeline
 * computes it from the data: sqrt(max(sci, 0) gain + rn^2) / gain, for a
 * gain in e/DN and a read noise rn in electrons. */
double rapid_dq_err(double sci, double gain, double rn);

/* The bits whose pixels' eight neighbours a coadd also leaves out
 * (rapid_dq_mask_file_grow): beside a persistence-flagged pixel or a
 * cosmic ray's fitted-out jump lies excess charge that no flag marks
 * (persistence below the flag's threshold, the fainter edge of a
 * cosmic-ray track).  In simulated H158 images 39-44 % of the unflagged
 * neighbours of PERSISTENCE pixels and 1-6 % of those of JUMP_DET pixels
 * lie more than 4 sigma above their surroundings, against 0.7 % of all
 * pixels; those of HOT pixels are like any other (growing them would
 * cost 3.4 % of the pixels). */
#define RAPID_DQ_GROW (RAPID_DQ_PERSISTENCE | RAPID_DQ_JUMP_DET)

/* What rapid_dq_mask_file did. */
typedef struct rapid_dq_counts {
    long unusable;   /* pixels set to NaN */
    long saturated;  /* of them, flagged SATURATED */
    long grown;      /* set to NaN as neighbours of a pixel with grow bits */
} rapid_dq_counts;

/* After reading the SCI image of path into sci: if the file has a DQ
 * extension, set every pixel it flags unusable to NaN.  counts (may be
 * NULL) says how many.  The DQ image must be the size of sci.  A file
 * without DQ is left as it is (counts 0). */
int rapid_dq_mask_file(const char *path, rapid_image *sci,
                       rapid_dq_counts *counts, rapid_err *err);

/* The same, and also every pixel within one pixel (the eight neighbours)
 * of a pixel with any of grow_bits (e.g. RAPID_DQ_GROW) is set to NaN;
 * grow_bits 0 is rapid_dq_mask_file. */
int rapid_dq_mask_file_grow(const char *path, rapid_image *sci, uint32_t grow_bits,
                            rapid_dq_counts *counts, rapid_err *err);

/* The same with every pixel within half px (a square of 2 half + 1 on a
 * side; 1: the eight neighbours) of a pixel with grow_bits set to NaN;
 * a negative half is RAPID_E_ARG. */
int rapid_dq_mask_file_grow_by(const char *path, rapid_image *sci, uint32_t grow_bits,
                               int half, rapid_dq_counts *counts, rapid_err *err);

/* A rule of growth: pixels within half px of a pixel with any of bits. */
typedef struct rapid_dq_grow {
    uint32_t bits;
    int half;
} rapid_dq_grow;

/* The same with nrules rules at once, the DQ extension read once: the
 * image is what rapid_dq_mask_file_grow_by with each rule in turn makes;
 * counts->grown counts the pixels all the rules set to NaN. */
int rapid_dq_mask_file_rules(const char *path, rapid_image *sci,
                             const rapid_dq_grow *rules, int nrules,
                             rapid_dq_counts *counts, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
