/* rapid/fits.h - FITS headers, float32 images and binary tables (CFITSIO).
 *
 * Images are float32, row-major, width nx (fastest axis, FITS NAXIS1) by
 * height ny; NaN means "no data".  Any BITPIX is converted to float on read
 * (BSCALE/BZERO applied, BLANK pixels become NaN).  Files may be gzipped.
 *
 * Writes are atomic: everything goes to a temporary file beside the target
 * and is renamed into place only by rapid_fits_commit(), after every HDU got
 * its CHECKSUM and DATASUM.  A failed or aborted write leaves nothing behind.
 */
#ifndef RAPID_FITS_H
#define RAPID_FITS_H

#include <stddef.h>
#include <stdint.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- headers */

/* An ordered list of 80-character header cards (without END). */
typedef struct rapid_header {
    char (*cards)[81]; /* ncards NUL-terminated, space-padded 80-char cards */
    int ncards;
    int cap;
} rapid_header;

#define RAPID_HEADER_INIT {NULL, 0, 0}

void rapid_header_init(rapid_header *h);
void rapid_header_release(rapid_header *h);
int rapid_header_copy(rapid_header *dst, const rapid_header *src);

/* Parse a string of concatenated 80-char cards (as fits_hdr2str makes). */
int rapid_header_from_string(rapid_header *h, const char *s, int ncards);
/* All cards concatenated, then END padded to 80 chars; caller frees. */
char *rapid_header_to_string(const rapid_header *h, int *ncards);

/* Index of the first card with this keyword, or RAPID_E_KEY (< 0). */
int rapid_header_find(const rapid_header *h, const char *key);
int rapid_header_has(const rapid_header *h, const char *key);

/* Getters return RAPID_E_KEY (with a message naming key) when the keyword
 * is missing or cannot be read as the type asked for. */
int rapid_header_get_str(const rapid_header *h, const char *key, char *out,
                         size_t outsz, rapid_err *err);
int rapid_header_get_double(const rapid_header *h, const char *key,
                            double *out, rapid_err *err);
int rapid_header_get_long(const rapid_header *h, const char *key, long *out,
                          rapid_err *err);
int rapid_header_get_bool(const rapid_header *h, const char *key, int *out,
                          rapid_err *err);

/* Setters replace the first card with the keyword, or append one.
 * comment may be NULL.  0, RAPID_E_NOMEM, or RAPID_E_ARG for a card that
 * cannot be written (a keyword longer than 8 characters, a value that is
 * not finite or does not fit); no message: see rapid_header_fail. */
int rapid_header_set_str(rapid_header *h, const char *key, const char *val,
                         const char *comment);
int rapid_header_set_double(rapid_header *h, const char *key, double val,
                            const char *comment);
int rapid_header_set_long(rapid_header *h, const char *key, long val,
                          const char *comment);
int rapid_header_set_bool(rapid_header *h, const char *key, int val,
                          const char *comment);
/* Append a COMMENT or HISTORY card (key "COMMENT" or "HISTORY"). */
int rapid_header_add_text(rapid_header *h, const char *key, const char *text);
/* Remove every card with this keyword; returns how many were removed. */
int rapid_header_delete(rapid_header *h, const char *key);
/* Append a whole card (must be a valid 80-char card; shorter is padded). */
int rapid_header_append_card(rapid_header *h, const char *card);
/* The message for a card the setters above could not set (rc): "what:
 * cannot set header card KEY: why".  Returns rc. */
int rapid_header_fail(rapid_err *err, int rc, const char *what, const char *key);

/* ----------------------------------------------------------------- images */

typedef struct rapid_image {
    int nx, ny;          /* NAXIS1, NAXIS2 */
    float *data;         /* nx*ny floats, row-major; owned */
    rapid_header hdr;    /* non-structural cards (no SIMPLE/BITPIX/NAXISn) */
} rapid_image;

#define RAPID_IMAGE_INIT {0, 0, NULL, RAPID_HEADER_INIT}

/* Allocate an nx*ny image filled with fill. */
int rapid_image_alloc(rapid_image *img, int nx, int ny, float fill,
                      rapid_err *err);
void rapid_image_release(rapid_image *img);

/* Read a 2-D image and its header.
 * hdu: NULL or "" = the first HDU holding a 2-D image (primary, then
 * extensions); "0" = primary, "1" = first extension, ...; otherwise an
 * EXTNAME (case-insensitive).  Errors name the file and say whether it is
 * missing, not FITS, truncated, has no such HDU, no image there, or not 2-D. */
int rapid_fits_read_image(const char *path, const char *hdu, rapid_image *img,
                          rapid_err *err);
/* The same into an image that was read before (or is RAPID_IMAGE_INIT):
 * its pixel buffer is kept when the new image has as many pixels, which
 * spares the page faults of a fresh buffer when many images of one size
 * are read in turn.  On failure the image is released. */
int rapid_fits_reread_image(const char *path, const char *hdu, rapid_image *img,
                            rapid_err *err);
/* Only the header of that HDU (no pixels are read). */
int rapid_fits_read_header(const char *path, const char *hdu,
                           rapid_header *hdr, rapid_err *err);

/* A 32-bit unsigned integer image (e.g. a data-quality mask).  On disk
 * BITPIX 32 with BZERO 2147483648, the FITS convention for unsigned
 * 32-bit integers.  Same layout and ownership as rapid_image. */
typedef struct rapid_image_u32 {
    int nx, ny;
    uint32_t *data;      /* nx*ny, row-major; owned */
    rapid_header hdr;
} rapid_image_u32;

#define RAPID_IMAGE_U32_INIT {0, 0, NULL, RAPID_HEADER_INIT}

/* Allocate an nx*ny image filled with fill. */
int rapid_image_u32_alloc(rapid_image_u32 *img, int nx, int ny, uint32_t fill,
                          rapid_err *err);
void rapid_image_u32_release(rapid_image_u32 *img);
/* Read a 2-D integer image (hdu as for rapid_fits_read_image).  Pixels
 * are read as unsigned 32-bit values after BSCALE/BZERO; a value that does
 * not fit (negative, fractional, too large) is an error (RAPID_E_RANGE). */
int rapid_fits_read_image_u32(const char *path, const char *hdu,
                              rapid_image_u32 *img, rapid_err *err);
/* Does the file have an HDU of this EXTNAME (case-insensitive)?  1 yes,
 * 0 no, negative status if the file cannot be read. */
int rapid_fits_has_hdu(const char *path, const char *extname, rapid_err *err);

/* --------------------------------------------------------- binary tables */

typedef enum rapid_coltype {
    RAPID_COL_F64,
    RAPID_COL_F32,
    RAPID_COL_I32,
    RAPID_COL_I64,
    RAPID_COL_STR /* fixed width, NUL-padded, width bytes per row */
} rapid_coltype;

typedef struct rapid_column {
    char name[72];
    char unit[72];     /* TUNITn, "" if none */
    rapid_coltype type;
    int width;         /* bytes per row for RAPID_COL_STR, else 0 */
    void *data;        /* nrows values (or nrows*width chars); owned */
} rapid_column;

typedef struct rapid_table {
    long nrows;
    int ncols;
    rapid_column *cols;
    rapid_header hdr;  /* extra cards for the table HDU */
} rapid_table;

#define RAPID_TABLE_INIT {0, 0, NULL, RAPID_HEADER_INIT}

/* Start an empty table of nrows rows; columns are added zero-filled. */
int rapid_table_init(rapid_table *t, long nrows);
void rapid_table_release(rapid_table *t);
/* Add a column; returns its data (nrows elements) or NULL on failure. */
double *rapid_table_add_f64(rapid_table *t, const char *name, const char *unit);
float *rapid_table_add_f32(rapid_table *t, const char *name, const char *unit);
int32_t *rapid_table_add_i32(rapid_table *t, const char *name, const char *unit);
int64_t *rapid_table_add_i64(rapid_table *t, const char *name, const char *unit);
char *rapid_table_add_str(rapid_table *t, const char *name, int width);
/* Column by name (case-insensitive), or NULL. */
const rapid_column *rapid_table_col(const rapid_table *t, const char *name);

/* Read a BINTABLE HDU (hdu as for images; NULL = first table HDU).
 * Scalar columns of types L/B/I/J/K/E/D/A are read; others are skipped. */
int rapid_fits_read_table(const char *path, const char *hdu, rapid_table *t,
                          rapid_err *err);

/* ------------------------------------------------------- writing a file */

typedef struct rapid_fits_out rapid_fits_out;

/* Start writing path (a ".gz" suffix writes gzip).  The first appended
 * image becomes the primary HDU unless an EXTNAME is given, in which case a
 * header-only primary HDU is written first. */
int rapid_fits_create(rapid_fits_out **out, const char *path, rapid_err *err);
/* Cards of the header-only primary HDU (call before the first append). */
int rapid_fits_set_primary_header(rapid_fits_out *out, const rapid_header *h,
                                  rapid_err *err);
int rapid_fits_append_image(rapid_fits_out *out, const rapid_image *img,
                            const char *extname, rapid_err *err);
/* The same for an unsigned 32-bit integer image (never the primary HDU:
 * extname is required). */
int rapid_fits_append_image_u32(rapid_fits_out *out, const rapid_image_u32 *img,
                                const char *extname, rapid_err *err);
int rapid_fits_append_table(rapid_fits_out *out, const rapid_table *t,
                            const char *extname, rapid_err *err);
/* Checksum every HDU, close, and rename into place; frees out. */
int rapid_fits_commit(rapid_fits_out *out, rapid_err *err);
/* Discard everything written; frees out. */
void rapid_fits_abort(rapid_fits_out *out);

/* One image in one file (extname NULL: primary HDU). */
int rapid_fits_write_image(const char *path, const rapid_image *img,
                           const char *extname, rapid_err *err);
/* One table in one file, after a header-only primary HDU. */
int rapid_fits_write_table(const char *path, const rapid_table *t,
                           const char *extname, rapid_err *err);

/* Verify CHECKSUM/DATASUM of every HDU: 0 if all present and correct. */
int rapid_fits_verify_checksums(const char *path, rapid_err *err);
/* Update the file at path in place: every card of cards (replacing one of
 * the same keyword, else appended) into every HDU, then CHECKSUM and
 * DATASUM of every HDU (written last, over the updated HDU).  For a copy
 * of a product made for the purpose (post-processing): the file is not
 * replaced atomically. */
int rapid_fits_stamp(const char *path, const rapid_header *cards,
                     rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
