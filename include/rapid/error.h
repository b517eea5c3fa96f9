/* rapid/error.h - error codes and the error record every call can fill.
 *
 * Library functions return 0 on success or a negative rapid_status.  When the
 * caller passes a rapid_err, the function also writes a one-line message that
 * names what failed, on which file/row/key, and why.  A NULL rapid_err is
 * allowed everywhere: the message is then simply dropped.
 */
#ifndef RAPID_ERROR_H
#define RAPID_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rapid_status {
    RAPID_OK = 0,
    RAPID_E_ARG = -1,       /* bad argument or value */
    RAPID_E_NOMEM = -2,     /* out of memory */
    RAPID_E_IO = -3,        /* cannot open, read, write or rename */
    RAPID_E_NOENT = -4,     /* file does not exist */
    RAPID_E_NOTFITS = -5,   /* file is not FITS */
    RAPID_E_TRUNCATED = -6, /* FITS file shorter than its headers say */
    RAPID_E_NOHDU = -7,     /* no such HDU (number or EXTNAME) */
    RAPID_E_NOIMAGE = -8,   /* HDU holds no image data */
    RAPID_E_NOT2D = -9,     /* image is not 2-D */
    RAPID_E_KEY = -10,      /* header keyword missing or of the wrong type */
    RAPID_E_WCS = -11,      /* no usable WCS, or a transform failed */
    RAPID_E_FITS = -12,     /* any other CFITSIO failure */
    RAPID_E_TABLE = -13,    /* table column missing or of an unsupported type */
    RAPID_E_DB = -14,       /* database failure */
    RAPID_E_RANGE = -15,    /* value outside its domain */
    RAPID_E_TOOFEW = -16,   /* too few inputs (or stars) to do the work */
    RAPID_E_NOOVERLAP = -17, /* the images do not overlap (or too little) */
    RAPID_E_INTERRUPTED = -18 /* the caller's stop flag was set */
} rapid_status;

#define RAPID_ERR_MAX 1024

typedef struct rapid_err {
    int code;                 /* the rapid_status of the failure, 0 if none */
    char msg[RAPID_ERR_MAX];  /* "path: what failed: why" */
} rapid_err;

#define RAPID_ERR_INIT {0, {0}}

/* Record a failure in err (if non-NULL) and return code, so that callers can
 * write `return rapid_fail(err, RAPID_E_IO, "%s: cannot open: %s", ...)`.
 * A message longer than RAPID_ERR_MAX - 1 bytes is shortened in the middle
 * of its longest parts (between ": "), marked "…", so that its end - the
 * reason - survives a long path.  Arguments may point into err->msg. */
int rapid_fail(rapid_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix an existing message with more context ("while X: <old message>"),
 * shortened as rapid_fail's. */
int rapid_err_prefix(rapid_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void rapid_err_clear(rapid_err *err);

/* A short fixed name for a status code ("not FITS", "truncated", ...). */
const char *rapid_strstatus(int code);

#ifdef __cplusplus
}
#endif
#endif
