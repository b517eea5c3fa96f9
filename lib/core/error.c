/* error.c - filling rapid_err records.
 *
 * A message longer than the record loses the middle of its longest parts
 * (the parts between ": "), not its end: a file name of a thousand bytes
 * becomes "/data/run…/file.fits" and the reason after it survives.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/error.h"

#define ELLIPSIS "\xe2\x80\xa6" /* "…" in UTF-8 */
#define ELLIPSIS_LEN 3
#define KEEP 16 /* bytes a shortened part keeps at least, at each end */

/* fmt with its arguments: into buf when it fits, else into memory the
 * caller frees (*heap); if that cannot be had, cut to buf's size. */
static char *vformat(char *buf, size_t bufsz, char **heap, size_t *len,
                     const char *fmt, va_list ap)
{
    va_list again;
    int n;

    *heap = NULL;
    va_copy(again, ap);
    n = vsnprintf(buf, bufsz, fmt, ap);
    if (n < 0)
        n = 0, buf[0] = '\0';
    if ((size_t)n >= bufsz && (*heap = malloc((size_t)n + 1)) != NULL) {
        vsnprintf(*heap, (size_t)n + 1, fmt, again);
        va_end(again);
        *len = (size_t)n;
        return *heap;
    }
    va_end(again);
    *len = (size_t)n < bufsz ? (size_t)n : bufsz - 1;
    return buf;
}

static int utf8_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* The longest part of s[0..n) between ": " separators that can still be
 * shortened; its length in *plen (0: none is left). */
static const char *longest_part(const char *s, size_t n, size_t *plen)
{
    const char *best = NULL, *p = s, *end = s + n, *sep;
    size_t len;

    *plen = 0;
    while (p < end) {
        sep = p;
        while (sep < end && !(sep[0] == ':' && sep + 1 < end && sep[1] == ' '))
            sep++;
        len = (size_t)(sep - p);
        if (len > *plen && len > 2 * KEEP + ELLIPSIS_LEN)
            best = p, *plen = len;
        p = sep < end ? sep + 2 : end;
    }
    return best;
}

/* Copy s (n bytes) into msg[RAPID_ERR_MAX], shortening it to fit: the
 * middle of the longest part goes, then of the next, ...; only when no
 * part can give more is the end cut. */
static void fit(char *msg, const char *s, size_t n)
{
    const size_t room = RAPID_ERR_MAX - 1;
    char *work = NULL;
    const char *part;
    size_t plen, cut, head, from, to;

    if (n <= room) {
        memmove(msg, s, n);
        msg[n] = '\0';
        return;
    }
    if (!(work = malloc(n + 1))) {
        memmove(msg, s, room);
        msg[room] = '\0';
        return;
    }
    memcpy(work, s, n);
    while (n > room && (part = longest_part(work, n, &plen)) != NULL) {
        /* bytes [from, to) of the part become the ellipsis */
        cut = n - room + ELLIPSIS_LEN;
        if (cut > plen - 2 * KEEP)
            cut = plen - 2 * KEEP;
        head = (plen - cut) / 2;
        from = (size_t)(part - work) + head;
        while (from > (size_t)(part - work) && utf8_cont((unsigned char)work[from]))
            from--;
        to = from + cut;
        while (to < n && utf8_cont((unsigned char)work[to]))
            to++;
        memcpy(work + from, ELLIPSIS, ELLIPSIS_LEN);
        memmove(work + from + ELLIPSIS_LEN, work + to, n - to);
        n = n - (to - from) + ELLIPSIS_LEN;
    }
    if (n > room) {
        n = room;
        while (n > 0 && utf8_cont((unsigned char)work[n]))
            n--;
    }
    memcpy(msg, work, n);
    msg[n] = '\0';
    free(work);
}

int rapid_fail(rapid_err *err, int code, const char *fmt, ...)
{
    char buf[2 * RAPID_ERR_MAX], *heap = NULL;
    const char *s;
    size_t n = 0;
    va_list ap;

    if (!err)
        return code;
    va_start(ap, fmt);
    s = vformat(buf, sizeof buf, &heap, &n, fmt, ap);
    va_end(ap);
    fit(err->msg, s, n);
    free(heap);
    err->code = code;
    return code;
}

int rapid_err_prefix(rapid_err *err, const char *fmt, ...)
{
    char buf[2 * RAPID_ERR_MAX], *heap = NULL, *all = NULL;
    const char *prefix;
    size_t n = 0, old;
    va_list ap;

    if (!err)
        return 0;
    va_start(ap, fmt);
    prefix = vformat(buf, sizeof buf, &heap, &n, fmt, ap);
    va_end(ap);
    old = strlen(err->msg);
    if ((all = malloc(n + 2 + old + 1)) != NULL) {
        memcpy(all, prefix, n);
        memcpy(all + n, ": ", 2);
        memcpy(all + n + 2, err->msg, old + 1);
        fit(err->msg, all, n + 2 + old);
    } else if (old + 3 < RAPID_ERR_MAX) {
        /* keep the reason whole: the prefix is what gives */
        if (n > RAPID_ERR_MAX - 3 - old)
            n = RAPID_ERR_MAX - 3 - old;
        memmove(err->msg + n + 2, err->msg, old + 1);
        memcpy(err->msg, prefix, n);
        memcpy(err->msg + n, ": ", 2);
    }
    free(all);
    free(heap);
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
    case RAPID_E_NOOVERLAP: return "the images do not overlap";
    case RAPID_E_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}
