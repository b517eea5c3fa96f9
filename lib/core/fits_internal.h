/* fits_internal.h - the CFITSIO plumbing that fits.c shares with table.c.
 *
 * Not installed: callers of the library see only rapid/fits.h, and CFITSIO
 * types never leak into the public API.
 */
#ifndef RAPID_FITS_INTERNAL_H
#define RAPID_FITS_INTERNAL_H

#include <stddef.h>

#include <fitsio.h>

#include "rapid/fits.h"

/* Room for "path[hdu]" in messages; longer names are cut. */
#define RAPID_LABEL_MAX 1024

/* What a caller wants from an HDU; decides the HDU a NULL/"" name means and
 * what counts as "the wrong kind of HDU". */
typedef enum rapid_want {
    RAPID_WANT_IMAGE, /* a 2-D image; NULL = first HDU holding one */
    RAPID_WANT_TABLE, /* a BINTABLE; NULL = first one */
    RAPID_WANT_ANY    /* any HDU by name; NULL = first 2-D image */
} rapid_want;

/* Keywords that describe how an image or a table is stored rather than what
 * it holds; "NAME#" stands for NAME followed by digits.  NULL-terminated. */
extern const char *const rapid_fits_image_layout[];
extern const char *const rapid_fits_table_layout[];

/* The one translation of a CFITSIO status into a rapid_status: records
 * "where: <what>: <why>" in err and returns the code.  Clears CFITSIO's
 * message stack. */
int rapid_cfitsio_fail(rapid_err *err, int status, const char *where,
                       const char *what_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Open path read-only and move to the HDU named hdu (see rapid/fits.h);
 * label receives "path[hdu]" for messages.  *f is NULL on failure. */
int rapid_fits_open_hdu(fitsfile **f, const char *path, const char *hdu,
                        rapid_want want, char *label, size_t labelsz,
                        rapid_err *err);
/* Close a file opened for reading (NULL is fine); read errors are moot. */
void rapid_fits_close(fitsfile *f);

/* The keyword of an 80-character card (its first 8 characters without
 * trailing blanks). */
void rapid_fits_card_keyword(const char *card, char key[9]);

/* Does keyword key match pattern ("NAXIS#": NAXIS and one or more
 * digits)? */
int rapid_fits_keyword_matches(const char *key, const char *pattern);

/* Is card one of the COMMENT pair CFITSIO puts in every primary header it
 * creates (which the writer and the reader leave out)? */
int rapid_fits_cfitsio_boilerplate(const char *card);

/* The current HDU's cards, without END and without those in drop (NULL:
 * keep all). */
int rapid_fits_read_cards(fitsfile *f, const char *label,
                          const char *const *drop, rapid_header *h,
                          rapid_err *err);
/* Append h's cards to the current HDU, except those in skip and, when
 * extname is given, EXTNAME (the caller writes that one). */
int rapid_fits_write_cards(fitsfile *f, const rapid_header *h,
                           const char *const *skip, const char *extname,
                           const char *label, rapid_err *err);

/* The name a writer's messages use: the final path, not the temporary. */
const char *rapid_fits_out_path(const rapid_fits_out *out);
/* For writers of extension HDUs: makes sure a primary HDU exists and hands
 * out the file.  Every successful begin must be followed by end(out, rc),
 * which marks the file failed when rc is non-zero (it can then only be
 * aborted) and returns rc. */
int rapid_fits_out_begin(rapid_fits_out *out, fitsfile **f, rapid_err *err);
int rapid_fits_out_end(rapid_fits_out *out, int rc);

#endif
