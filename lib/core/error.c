/* error.c - filling rapid_err records. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rapid/error.h"

int rapid_fail(rapid_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int rapid_err_prefix(rapid_err *err, const char *fmt, ...)
{
    char prefix[RAPID_ERR_MAX];
    char old[RAPID_ERR_MAX];
    va_list ap;

    if (!err)
        return 0;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Both halves fit; a message longer than the record is cut. */
    {
        size_t n = strlen(prefix);
        if (n > sizeof err->msg - 3)
            n = sizeof err->msg - 3;
        memcpy(err->msg, prefix, n);
        memcpy(err->msg + n, ": ", 2);
        old[sizeof err->msg - n - 3] = '\0';
        memcpy(err->msg + n + 2, old, strlen(old) + 1);
    }
    return err->code;
}

void rapid_err_clear(rapid_err *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *rapid_strstatus(int code)
{
    switch (code) {
    case RAPID_OK: return "success";
    case RAPID_E_ARG: return "bad argument";
    case RAPID_E_NOMEM: return "out of memory";
    case RAPID_E_IO: return "input/output error";
    case RAPID_E_NOENT: return "no such file";
    case RAPID_E_NOTFITS: return "not a FITS file";
    case RAPID_E_TRUNCATED: return "truncated FITS file";
    case RAPID_E_NOHDU: return "no such HDU";
    case RAPID_E_NOIMAGE: return "no image in HDU";
    case RAPID_E_NOT2D: return "image is not 2-D";
    case RAPID_E_KEY: return "header keyword missing or invalid";
    case RAPID_E_WCS: return "WCS error";
    case RAPID_E_FITS: return "FITS error";
    case RAPID_E_TABLE: return "table error";
    case RAPID_E_DB: return "database error";
    case RAPID_E_RANGE: return "value out of range";
    case RAPID_E_TOOFEW: return "too few inputs";
    default: return "unknown error";
    }
}
