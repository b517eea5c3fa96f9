/* header.c - an ordered list of FITS header cards, edited in memory.
 *
 * Cards are parsed and formatted with CFITSIO's own card routines, so what
 * we write is what CFITSIO (and so every FITS reader) reads back.  String
 * values longer than one card use the CONTINUE convention.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fitsio.h>

#include "core/fits_internal.h"
#include "rapid/fits.h"

#define CARD 80

void rapid_header_init(rapid_header *h)
{
    h->cards = NULL;
    h->ncards = 0;
    h->cap = 0;
}

void rapid_header_release(rapid_header *h)
{
    if (!h)
        return;
    free(h->cards);
    rapid_header_init(h);
}

static int reserve(rapid_header *h, int n)
{
    int cap;
    char(*cards)[81];

    if (n <= h->cap)
        return 0;
    cap = h->cap ? h->cap : 32;
    while (cap < n)
        cap *= 2;
    cards = realloc(h->cards, (size_t)cap * sizeof *cards);
    if (!cards)
        return RAPID_E_NOMEM;
    h->cards = cards;
    h->cap = cap;
    return 0;
}

int rapid_header_copy(rapid_header *dst, const rapid_header *src)
{
    rapid_header_init(dst);
    if (reserve(dst, src->ncards ? src->ncards : 1))
        return RAPID_E_NOMEM;
    if (src->ncards)
        memcpy(dst->cards, src->cards, (size_t)src->ncards * sizeof *src->cards);
    dst->ncards = src->ncards;
    return 0;
}

static void pad_card(char *dst, const char *src, size_t len)
{
    if (len > CARD)
        len = CARD;
    memcpy(dst, src, len);
    memset(dst + len, ' ', CARD - len);
    dst[CARD] = '\0';
}

int rapid_header_append_card(rapid_header *h, const char *card)
{
    if (reserve(h, h->ncards + 1))
        return RAPID_E_NOMEM;
    pad_card(h->cards[h->ncards++], card, strlen(card));
    return 0;
}

static int insert_card(rapid_header *h, int at, const char *card)
{
    if (reserve(h, h->ncards + 1))
        return RAPID_E_NOMEM;
    memmove(h->cards + at + 1, h->cards + at,
            (size_t)(h->ncards - at) * sizeof *h->cards);
    h->ncards++;
    pad_card(h->cards[at], card, strlen(card));
    return 0;
}

static void remove_cards(rapid_header *h, int at, int n)
{
    memmove(h->cards + at, h->cards + at + n,
            (size_t)(h->ncards - at - n) * sizeof *h->cards);
    h->ncards -= n;
}

int rapid_header_from_string(rapid_header *h, const char *s, int ncards)
{
    int i, rc;

    rapid_header_init(h);
    for (i = 0; i < ncards; i++) {
        const char *c = s + (size_t)i * CARD;
        if (strncmp(c, "END     ", 8) == 0)
            break;
        if ((rc = rapid_header_append_card(h, c)) != 0)
            return rc;
    }
    return 0;
}

char *rapid_header_to_string(const rapid_header *h, int *ncards)
{
    char *s = malloc((size_t)(h->ncards + 1) * CARD + 1);
    int i;

    if (!s)
        return NULL;
    for (i = 0; i < h->ncards; i++)
        memcpy(s + (size_t)i * CARD, h->cards[i], CARD);
    pad_card(s + (size_t)h->ncards * CARD, "END", 3);
    if (ncards)
        *ncards = h->ncards + 1;
    return s;
}

static int key_matches(const char *card, const char *key)
{
    char k[9];
    size_t i, n = strlen(key);

    if (n > 8)
        return 0;
    rapid_fits_card_keyword(card, k);
    if (strlen(k) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (toupper((unsigned char)k[i]) != toupper((unsigned char)key[i]))
            return 0;
    return 1;
}

int rapid_header_find(const rapid_header *h, const char *key)
{
    int i;

    for (i = 0; i < h->ncards; i++)
        if (key_matches(h->cards[i], key))
            return i;
    return RAPID_E_KEY;
}

int rapid_header_has(const rapid_header *h, const char *key)
{
    return rapid_header_find(h, key) >= 0;
}

/* The raw value string of a card ("" for a card without a value).  0, or
 * RAPID_E_KEY for a card without a value indicator or one CFITSIO cannot
 * parse. */
static int card_value(const char *card, char value[FLEN_VALUE])
{
    char comm[FLEN_COMMENT];
    int status = 0;

    value[0] = '\0';
    if (card[8] != '=' || card[9] != ' ')
        return RAPID_E_KEY;
    ffpsvc((char *)card, value, comm, &status);
    return status ? RAPID_E_KEY : 0;
}

/* A quoted FITS string value -> its text: '' becomes ', trailing blanks
 * (which FITS does not count) are dropped.  0, or RAPID_E_KEY if value is
 * not a string or does not fit in out. */
static int unquote(const char *value, char *out, size_t outsz)
{
    size_t i = 1, n = 0;

    if (value[0] != '\'')
        return RAPID_E_KEY;
    for (;;) {
        if (value[i] == '\0')
            return RAPID_E_KEY;
        if (value[i] == '\'') {
            if (value[i + 1] != '\'')
                break;
            i++;
        }
        if (n + 1 >= outsz)
            return RAPID_E_KEY;
        out[n++] = value[i++];
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return 0;
}

/* text -> a quoted FITS string value, padded to the 8-character minimum.
 * 0, or RAPID_E_ARG if it does not fit in out. */
static int quote(const char *text, char *out, size_t outsz)
{
    size_t n = 0;
    const char *p;

    if (outsz < 11)
        return RAPID_E_ARG;
    out[n++] = '\'';
    for (p = text; *p; p++) {
        /* room for this character (a quote doubles), the closing quote
         * and the NUL */
        if (n + (*p == '\'' ? 2 : 1) + 2 > outsz)
            return RAPID_E_ARG;
        if (*p == '\'')
            out[n++] = '\'';
        out[n++] = *p;
    }
    while (n < 9)
        out[n++] = ' ';
    out[n++] = '\'';
    out[n] = '\0';
    return 0;
}

/* A FITS number (D exponents allowed) -> double.  0 or RAPID_E_KEY. */
static int parse_real(const char *value, double *out)
{
    char buf[FLEN_VALUE], *d, *end;

    snprintf(buf, sizeof buf, "%s", value);
    if ((d = strchr(buf, 'D')) != NULL)
        *d = 'E';
    if ((d = strchr(buf, 'd')) != NULL)
        *d = 'E';
    *out = strtod(buf, &end);
    while (*end == ' ')
        end++;
    return end == buf || *end != '\0' ? RAPID_E_KEY : 0;
}

static int missing(rapid_err *err, const char *key)
{
    return rapid_fail(err, RAPID_E_KEY, "header keyword %s is missing", key);
}

static int wrong_type(rapid_err *err, const char *key, const char *want,
                      const char *value)
{
    return rapid_fail(err, RAPID_E_KEY,
                      "header keyword %s is not %s (value: %s)", key, want,
                      value);
}

int rapid_header_get_str(const rapid_header *h, const char *key, char *out,
                         size_t outsz, rapid_err *err)
{
    char value[FLEN_VALUE], part[FLEN_VALUE];
    int i = rapid_header_find(h, key);
    size_t len = 0, n;

    if (i < 0)
        return missing(err, key);
    if (card_value(h->cards[i], value) || value[0] != '\'')
        return wrong_type(err, key, "a string", value);
    for (;;) {
        if (unquote(value, part, sizeof part))
            return wrong_type(err, key, "a string", value);
        n = strlen(part);
        /* CONTINUE convention: '&' at the end means more follows. */
        if (n > 0 && part[n - 1] == '&' && i + 1 < h->ncards &&
            strncmp(h->cards[i + 1], "CONTINUE", 8) == 0) {
            n--;
            if (len + n >= outsz)
                return rapid_fail(err, RAPID_E_KEY,
                                  "header keyword %s: value too long", key);
            memcpy(out + len, part, n);
            len += n;
            i++;
            /* CONTINUE cards have no '=': the value starts at column 11. */
            snprintf(value, sizeof value, "%.70s", h->cards[i] + 10);
            n = strlen(value);
            while (n > 0 && value[n - 1] == ' ')
                value[--n] = '\0';
            {   /* drop an optional comment after the closing quote */
                char *q = value + 1;
                while ((q = strchr(q, '\'')) != NULL) {
                    if (q[1] == '\'') {
                        q += 2;
                        continue;
                    }
                    q[1] = '\0';
                    break;
                }
            }
            memmove(value, value + strspn(value, " "), strlen(value) + 1);
            continue;
        }
        if (len + n >= outsz)
            return rapid_fail(err, RAPID_E_KEY,
                              "header keyword %s: value too long", key);
        memcpy(out + len, part, n + 1);
        return 0;
    }
}

int rapid_header_get_double(const rapid_header *h, const char *key,
                            double *out, rapid_err *err)
{
    char value[FLEN_VALUE];
    int i = rapid_header_find(h, key);

    if (i < 0)
        return missing(err, key);
    if (card_value(h->cards[i], value) || value[0] == '\'' || value[0] == '\0')
        return wrong_type(err, key, "a number", value);
    if (parse_real(value, out) || !isfinite(*out))
        return wrong_type(err, key, "a number", value);
    return 0;
}

int rapid_header_get_long(const rapid_header *h, const char *key, long *out,
                          rapid_err *err)
{
    char value[FLEN_VALUE], *end;
    int i = rapid_header_find(h, key);

    if (i < 0)
        return missing(err, key);
    if (card_value(h->cards[i], value) || value[0] == '\'' || value[0] == '\0')
        return wrong_type(err, key, "an integer", value);
    errno = 0;
    *out = strtol(value, &end, 10);
    while (*end == ' ')
        end++;
    if (end == value || *end != '\0' || errno == ERANGE)
        return wrong_type(err, key, "an integer", value);
    return 0;
}

int rapid_header_get_bool(const rapid_header *h, const char *key, int *out,
                          rapid_err *err)
{
    char value[FLEN_VALUE];
    int i = rapid_header_find(h, key);

    if (i < 0)
        return missing(err, key);
    if (card_value(h->cards[i], value) ||
        (strcmp(value, "T") != 0 && strcmp(value, "F") != 0))
        return wrong_type(err, key, "a logical", value);
    *out = value[0] == 'T';
    return 0;
}

/* Replace the card(s) of key, or append, with the given cards. */
static int put_cards(rapid_header *h, const char *key, char cards[][81], int n)
{
    int i = rapid_header_find(h, key), k, rc;

    if (i >= 0) {
        int old = 1;
        while (i + old < h->ncards &&
               strncmp(h->cards[i + old], "CONTINUE", 8) == 0)
            old++;
        remove_cards(h, i, old);
    } else {
        i = h->ncards;
    }
    for (k = 0; k < n; k++)
        if ((rc = insert_card(h, i + k, cards[k])) != 0)
            return rc;
    return 0;
}

static int make_card(const char *key, const char *value, const char *comment,
                     char card[81])
{
    char buf[FLEN_CARD];
    int status = 0;

    if (strlen(key) > 8)
        return RAPID_E_ARG;
    ffmkky(key, (char *)value, comment ? comment : "", buf, &status);
    if (status)
        return RAPID_E_ARG;
    pad_card(card, buf, strlen(buf));
    return 0;
}

/* A string value holds 68 characters between its quotes, a quote inside
 * it counting twice. */
#define STR_ROOM 68

/* How many characters of s (len long) go on one card, keeping room for the
 * '&' that says the value continues. */
static size_t chunk_length(const char *s, size_t len)
{
    size_t take, used = 0;

    for (take = 0; take < len; take++) {
        size_t w = s[take] == '\'' ? 2 : 1;
        size_t amp = take + 1 < len ? 1 : 0;
        if (used + w + amp > STR_ROOM)
            break;
        used += w;
    }
    return take;
}

int rapid_header_set_str(rapid_header *h, const char *key, const char *val,
                         const char *comment)
{
    char quoted[FLEN_VALUE], chunk[STR_ROOM + 2], buf[FLEN_CARD];
    char(*cards)[81] = NULL;
    size_t len = strlen(val), pos = 0, take = 0;
    int n = 0, rc = 0;

    /* A piece holds at least STR_ROOM / 2 - 1 characters (all quotes). */
    cards = malloc((len / (STR_ROOM / 2 - 1) + 2) * sizeof *cards);
    if (!cards)
        return RAPID_E_NOMEM;
    do {
        take = chunk_length(val + pos, len - pos);
        snprintf(chunk, sizeof chunk, "%.*s%s", (int)take, val + pos,
                 pos + take < len ? "&" : "");
        if (quote(chunk, quoted, sizeof quoted)) {
            rc = RAPID_E_ARG;
            goto cleanup;
        }
        if (n == 0) {
            if ((rc = make_card(key, quoted, comment, cards[n])) != 0)
                goto cleanup;
        } else {
            snprintf(buf, sizeof buf, "CONTINUE  %s", quoted);
            pad_card(cards[n], buf, strlen(buf));
        }
        n++;
        pos += take;
    } while (pos < len);
    rc = put_cards(h, key, cards, n);
cleanup:
    free(cards);
    return rc;
}

/* Shortest decimal form that reads back to exactly val, with a '.' or 'E'
 * so that every reader takes it as a real. */
static void format_real(double val, char *out, size_t sz)
{
    int prec;

    for (prec = 15; prec <= 17; prec++) {
        snprintf(out, sz, "%.*G", prec, val);
        if (strtod(out, NULL) == val)
            break;
    }
    if (!strchr(out, '.') && !strchr(out, 'N') && !strchr(out, 'I')) {
        char *e = strchr(out, 'E');
        size_t at = e ? (size_t)(e - out) : strlen(out);
        if (strlen(out) + 2 < sz) {
            memmove(out + at + 1, out + at, strlen(out) - at + 1);
            out[at] = '.';
        }
    }
}

int rapid_header_set_double(rapid_header *h, const char *key, double val,
                            const char *comment)
{
    char value[64], card[1][81];
    int rc;

    if (!isfinite(val))
        return RAPID_E_ARG; /* FITS has no NaN keyword value */
    format_real(val, value, sizeof value);
    if ((rc = make_card(key, value, comment, card[0])) != 0)
        return rc;
    return put_cards(h, key, card, 1);
}

int rapid_header_set_long(rapid_header *h, const char *key, long val,
                          const char *comment)
{
    char value[32], card[1][81];
    int rc;

    snprintf(value, sizeof value, "%ld", val);
    if ((rc = make_card(key, value, comment, card[0])) != 0)
        return rc;
    return put_cards(h, key, card, 1);
}

int rapid_header_set_bool(rapid_header *h, const char *key, int val,
                          const char *comment)
{
    char card[1][81];
    int rc;

    if ((rc = make_card(key, val ? "T" : "F", comment, card[0])) != 0)
        return rc;
    return put_cards(h, key, card, 1);
}

int rapid_header_add_text(rapid_header *h, const char *key, const char *text)
{
    char buf[81];
    size_t len = strlen(text), pos = 0;
    int rc;

    do {
        size_t take = len - pos > 72 ? 72 : len - pos;
        snprintf(buf, sizeof buf, "%-8.8s%.*s", key, (int)take, text + pos);
        if ((rc = rapid_header_append_card(h, buf)) != 0)
            return rc;
        pos += take;
    } while (pos < len);
    return 0;
}

int rapid_header_fail(rapid_err *err, int rc, const char *what, const char *key)
{
    return rapid_fail(err, rc, "%s: cannot set header card %s: %s", what, key,
                      rc == RAPID_E_ARG ? "the value cannot be written"
                                        : rapid_strstatus(rc));
}

int rapid_header_delete(rapid_header *h, const char *key)
{
    int i = 0, n = 0;

    while (i < h->ncards) {
        if (key_matches(h->cards[i], key)) {
            int k = 1;
            while (i + k < h->ncards &&
                   strncmp(h->cards[i + k], "CONTINUE", 8) == 0)
                k++;
            remove_cards(h, i, k);
            n++;
        } else {
            i++;
        }
    }
    return n;
}
