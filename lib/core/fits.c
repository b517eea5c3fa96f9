/* fits.c - FITS images and headers on disk, through CFITSIO.
 *
 * CFITSIO statuses become rapid_status codes in rapid_cfitsio_fail() only.
 * Two places decide for themselves because the code alone is ambiguous:
 * opening (a short read means "not FITS" for a text file but "truncated" for
 * a cut FITS header) and moving to an HDU (running off the end means "no
 * such HDU" when the HDUs before it are whole, "truncated" otherwise).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bigmem.h"
#include "clones.h"
#include "fits_internal.h"

const char *const rapid_fits_image_layout[] = {
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS#", "EXTEND", "PCOUNT",
    "GCOUNT", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "LONGSTRN",
    "END", NULL};

const char *const rapid_fits_table_layout[] = {
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS#", "EXTEND", "PCOUNT",
    "GCOUNT", "TFIELDS", "THEAP", "TTYPE#", "TFORM#", "TUNIT#", "TDIM#",
    "TNULL#", "TSCAL#", "TZERO#", "TDISP#", "TBCOL#", "TLMIN#", "TLMAX#",
    "TDMIN#", "TDMAX#", "CHECKSUM", "DATASUM", "LONGSTRN", "END", NULL};

/* ------------------------------------------------------- images in memory */

/* An image with its pixels allocated but not set (large ones with the
 * huge-page hint). */
static int image_alloc_raw(rapid_image *img, int nx, int ny, rapid_err *err)
{
    size_t n;

    img->nx = img->ny = 0;
    img->data = NULL;
    rapid_header_init(&img->hdr);
    if (nx <= 0 || ny <= 0)
        return rapid_fail(err, RAPID_E_ARG,
                          "image of %d x %d pixels: size must be positive",
                          nx, ny);
    n = (size_t)nx * (size_t)ny;
    img->data = rapid_big_malloc(n * sizeof *img->data);
    if (!img->data)
        return rapid_fail(err, RAPID_E_NOMEM,
                          "image of %d x %d pixels: out of memory", nx, ny);
    img->nx = nx;
    img->ny = ny;
    return 0;
}

int rapid_image_alloc(rapid_image *img, int nx, int ny, float fill,
                      rapid_err *err)
{
    size_t i, n;
    int rc;

    if ((rc = image_alloc_raw(img, nx, ny, err)) != 0)
        return rc;
    n = (size_t)nx * (size_t)ny;
    for (i = 0; i < n; i++)
        img->data[i] = fill;
    return 0;
}

void rapid_image_release(rapid_image *img)
{
    if (!img)
        return;
    rapid_big_free(img->data);
    img->data = NULL;
    img->nx = img->ny = 0;
    rapid_header_release(&img->hdr);
}

/* ------------------------------------------------------ CFITSIO statuses */

static int cfitsio_code(int status)
{
    switch (status) {
    case END_OF_FILE:
    case READ_ERROR:
        /* Opening succeeded, so the file is FITS: a short read means the
         * data ends before the header says it does. */
        return RAPID_E_TRUNCATED;
    case MEMORY_ALLOCATION:
        return RAPID_E_NOMEM;
    case TOO_MANY_FILES:
    case FILE_NOT_OPENED:
    case FILE_NOT_CREATED:
    case WRITE_ERROR:
    case FILE_NOT_CLOSED:
    case SEEK_ERROR:
        return RAPID_E_IO;
    case BAD_HDU_NUM:
        return RAPID_E_NOHDU;
    case NOT_IMAGE:
        return RAPID_E_NOIMAGE;
    case NOT_TABLE:
    case NOT_BTABLE:
    case BAD_COL_NUM:
    case COL_NOT_FOUND:
        return RAPID_E_TABLE;
    default:
        return RAPID_E_FITS;
    }
}

int rapid_cfitsio_fail(rapid_err *err, int status, const char *where,
                       const char *what_fmt, ...)
{
    char what[512], text[FLEN_STATUS];
    int code = cfitsio_code(status);
    va_list ap;

    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    fits_get_errstatus(status, text);
    fits_clear_errmsg();
    if (code == RAPID_E_TRUNCATED)
        return rapid_fail(err, code,
                          "%s: %s: file is truncated (CFITSIO status %d: %s)",
                          where, what, status, text);
    return rapid_fail(err, code, "%s: %s: CFITSIO status %d: %s", where, what,
                      status, text);
}

/* ---------------------------------------------------------------- cards */

void rapid_fits_card_keyword(const char *card, char key[9])
{
    int n = 8;

    memcpy(key, card, 8);
    key[8] = '\0';
    while (n > 0 && key[n - 1] == ' ')
        key[--n] = '\0';
}

int rapid_fits_keyword_matches(const char *key, const char *pattern)
{
    size_t n = strlen(pattern);

    if (n == 0 || pattern[n - 1] != '#')
        return strcmp(key, pattern) == 0;
    n--;
    if (strncmp(key, pattern, n) != 0 || key[n] == '\0')
        return 0;
    return strspn(key + n, "0123456789") == strlen(key + n);
}

/* The COMMENT pair CFITSIO puts in every primary header it creates; kept,
 * they would multiply with each read-modify-write cycle. */
int rapid_fits_cfitsio_boilerplate(const char *card)
{
    static const char line1[] =
        "COMMENT   FITS (Flexible Image Transport System) format is";
    static const char line2[] =
        "COMMENT   and Astrophysics', volume 376, page 359;";

    return strncmp(card, line1, sizeof line1 - 1) == 0 ||
           strncmp(card, line2, sizeof line2 - 1) == 0;
}

static int card_in_list(const char *card, const char *const *list)
{
    char key[9];
    int i;

    if (!list)
        return 0;
    if (rapid_fits_cfitsio_boilerplate(card))
        return 1;
    rapid_fits_card_keyword(card, key);
    for (i = 0; list[i]; i++)
        if (rapid_fits_keyword_matches(key, list[i]))
            return 1;
    return 0;
}

static void drop_cards(rapid_header *h, const char *const *drop)
{
    int i, n = 0;

    for (i = 0; i < h->ncards; i++) {
        if (card_in_list(h->cards[i], drop))
            continue;
        if (n != i)
            memcpy(h->cards[n], h->cards[i], sizeof h->cards[i]);
        n++;
    }
    h->ncards = n;
}

int rapid_fits_read_cards(fitsfile *f, const char *label,
                          const char *const *drop, rapid_header *h,
                          rapid_err *err)
{
    char *s = NULL;
    int n = 0, status = 0, rc = 0;

    rapid_header_init(h);
    if (fits_hdr2str(f, 0, NULL, 0, &s, &n, &status))
        return rapid_cfitsio_fail(err, status, label, "cannot read header");
    rc = rapid_header_from_string(h, s, n);
    fits_free_memory(s, &status);
    if (rc) {
        rapid_header_release(h);
        return rapid_fail(err, rc, "%s: cannot read header: %s", label,
                          rapid_strstatus(rc));
    }
    drop_cards(h, drop);
    return 0;
}

/* Should this card be left out?  A CONTINUE card goes with its keyword. */
static int skip_card(const char *card, const char *const *skip,
                     const char *extname, const rapid_header *prior,
                     int *skipping)
{
    char key[9];

    if (strncmp(card, "CONTINUE", 8) == 0)
        return *skipping;
    rapid_fits_card_keyword(card, key);
    *skipping = card_in_list(card, skip) ||
                (extname && *extname && strcmp(key, "EXTNAME") == 0) ||
                (prior && card[8] == '=' && rapid_header_has(prior, key));
    return *skipping;
}

/* As rapid_fits_write_cards, also leaving out valued keywords that are in
 * prior (written to this HDU before, so they take precedence). */
static int write_cards(fitsfile *f, const rapid_header *h,
                       const char *const *skip, const char *extname,
                       const rapid_header *prior, const char *label,
                       rapid_err *err)
{
    int i, status = 0, skipping = 0, continued = 0;

    for (i = 0; i < h->ncards; i++) {
        if (skip_card(h->cards[i], skip, extname, prior, &skipping))
            continue;
        if (fits_write_record(f, h->cards[i], &status))
            return rapid_cfitsio_fail(err, status, label,
                                      "cannot write header card \"%.80s\"",
                                      h->cards[i]);
        continued |= strncmp(h->cards[i], "CONTINUE", 8) == 0;
    }
    /* Readers (and fitsverify) expect CONTINUE cards to be announced;
     * LONGSTRN is layout, so it is dropped on read and made here. */
    if (continued &&
        fits_update_key_str(f, "LONGSTRN", "OGIP 1.0",
                            "long strings use the CONTINUE convention",
                            &status))
        return rapid_cfitsio_fail(err, status, label,
                                  "cannot write header card LONGSTRN");
    return 0;
}

int rapid_fits_write_cards(fitsfile *f, const rapid_header *h,
                           const char *const *skip, const char *extname,
                           const char *label, rapid_err *err)
{
    return write_cards(f, h, skip, extname, NULL, label, err);
}

/* -------------------------------------------------------------- opening */

typedef enum file_start {
    START_EMPTY,
    START_FITS,
    START_GZIP,
    START_OTHER
} file_start;

static file_start peek_start(const char *path)
{
    unsigned char buf[9] = {0};
    FILE *fp = fopen(path, "rb");
    size_t n = 0;

    if (!fp)
        return START_OTHER;
    n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    if (n == 0)
        return START_EMPTY;
    if (n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b)
        return START_GZIP;
    if (n == sizeof buf && memcmp(buf, "SIMPLE  =", 9) == 0)
        return START_FITS;
    return START_OTHER;
}

/* CFITSIO could not read the primary header.  A text file shorter than one
 * FITS block and a FITS file cut inside its first header both give a short
 * read, so look at how the file starts. */
static int open_failed(const char *path, int status, rapid_err *err)
{
    int header_error = status >= NO_QUOTE && status <= BAD_TDIM;

    if (status != END_OF_FILE && status != READ_ERROR && !header_error)
        return rapid_cfitsio_fail(err, status, path, "cannot open");
    fits_clear_errmsg();
    switch (peek_start(path)) {
    case START_EMPTY:
        return rapid_fail(err, RAPID_E_NOTFITS,
                          "%s: not a FITS file (it is empty)", path);
    case START_FITS:
        if (!header_error)
            return rapid_fail(err, RAPID_E_TRUNCATED,
                              "%s: truncated inside its primary header",
                              path);
        return rapid_fail(err, RAPID_E_NOTFITS,
                          "%s: not a FITS file (malformed primary header, "
                          "CFITSIO status %d)", path, status);
    case START_GZIP:
        if (header_error)
            break;
        /* The decompressed bytes are CFITSIO's; we cannot tell which. */
        return rapid_fail(err, RAPID_E_NOTFITS,
                          "%s: not a FITS file, or gzipped FITS cut short in "
                          "its primary header", path);
    default:
        break;
    }
    return rapid_fail(err, RAPID_E_NOTFITS, "%s: not a FITS file", path);
}

static int open_file_mode(fitsfile **f, const char *path, int mode,
                          rapid_err *err)
{
    struct stat sb;
    int status = 0;

    *f = NULL;
    if (!path || !*path)
        return rapid_fail(err, RAPID_E_ARG, "no FITS file name given");
    /* CFITSIO would try "path.gz" and the like for a missing file, and its
     * message for a directory is unhelpful: ask the system first. */
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return rapid_fail(err, RAPID_E_NOENT, "%s: no such file", path);
        return rapid_fail(err, RAPID_E_IO, "%s: cannot open: %s", path,
                          strerror(errno));
    }
    if (S_ISDIR(sb.st_mode))
        return rapid_fail(err, RAPID_E_IO,
                          "%s: is a directory, not a FITS file", path);
    /* The disk-file entry point takes the name literally (no "[ext]" or
     * "(template)" parsing) and still reads gzipped files. */
    if (fits_open_diskfile(f, path, mode, &status)) {
        *f = NULL;
        return open_failed(path, status, err);
    }
    return 0;
}

static int open_file(fitsfile **f, const char *path, rapid_err *err)
{
    return open_file_mode(f, path, READONLY, err);
}

void rapid_fits_close(fitsfile *f)
{
    int status = 0;

    if (f)
        fits_close_file(f, &status);
    fits_clear_errmsg();
}

/* ---------------------------------------------------------- finding HDUs */

static const char *hdu_type_name(int type)
{
    switch (type) {
    case IMAGE_HDU: return "IMAGE";
    case ASCII_TBL: return "TABLE";
    case BINARY_TBL: return "BINTABLE";
    default: return "unknown type";
    }
}

/* After CFITSIO ran off the end of the file looking for an HDU: is the last
 * HDU it found whole?  Then the one asked for does not exist. */
static int last_hdu_whole(fitsfile *f, int *nhdu)
{
    unsigned long datasum = 0, hdusum = 0;
    int status = 0, n = 0;

    fits_clear_errmsg();
    if (fits_get_num_hdus(f, &n, &status) || n < 1 ||
        fits_movabs_hdu(f, n, NULL, &status))
        return 0;
    *nhdu = n;
    /* Checksumming reads every byte of the HDU, padding included. */
    fits_get_chksum(f, &datasum, &hdusum, &status);
    fits_clear_errmsg();
    return status == 0;
}

static int move_failed(fitsfile *f, int status, const char *label,
                       rapid_err *err)
{
    int n = 0;

    if (status != END_OF_FILE && status != BAD_HDU_NUM)
        return rapid_cfitsio_fail(err, status, label, "cannot read HDU");
    if (!last_hdu_whole(f, &n))
        return rapid_fail(err, RAPID_E_TRUNCATED,
                          "%s: file is truncated before this HDU", label);
    return rapid_fail(err, RAPID_E_NOHDU,
                      "%s: no such HDU (the file has %d: 0..%d)", label, n,
                      n - 1);
}

/* Is the current HDU a 2-D image?  Sizes in nx, ny (may be NULL). */
static int check_image(fitsfile *f, const char *label, LONGLONG *nx,
                       LONGLONG *ny, rapid_err *err)
{
    LONGLONG naxes[9] = {0};
    int status = 0, type = 0, bitpix = 0, naxis = 0, i;

    if (fits_get_hdu_type(f, &type, &status) ||
        (type == IMAGE_HDU &&
         fits_get_img_paramll(f, 9, &bitpix, &naxis, naxes, &status)))
        return rapid_cfitsio_fail(err, status, label,
                                  "cannot read image size");
    if (type != IMAGE_HDU)
        return rapid_fail(err, RAPID_E_NOIMAGE,
                          "%s: no image data in this HDU (%s)", label,
                          hdu_type_name(type));
    if (naxis == 0)
        return rapid_fail(err, RAPID_E_NOIMAGE,
                          "%s: no image data in this HDU (NAXIS = 0)", label);
    for (i = 0; i < naxis && i < 9; i++)
        if (naxes[i] == 0)
            return rapid_fail(err, RAPID_E_NOIMAGE,
                              "%s: no image data in this HDU (NAXIS%d = 0)",
                              label, i + 1);
    if (naxis == 1)
        return rapid_fail(err, RAPID_E_NOT2D,
                          "%s: image is 1-D (NAXIS1 = %lld), not 2-D", label,
                          (long long)naxes[0]);
    for (i = 2; i < naxis; i++)
        if (i >= 9 || naxes[i] != 1)
            return rapid_fail(err, RAPID_E_NOT2D,
                              "%s: image is not 2-D (NAXIS = %d, NAXIS%d = "
                              "%lld)", label, naxis, i + 1,
                              i < 9 ? (long long)naxes[i] : -1LL);
    if (naxes[0] > INT_MAX || naxes[1] > INT_MAX)
        return rapid_fail(err, RAPID_E_RANGE,
                          "%s: image of %lld x %lld pixels is too large",
                          label, (long long)naxes[0], (long long)naxes[1]);
    if (nx)
        *nx = naxes[0];
    if (ny)
        *ny = naxes[1];
    return 0;
}

static int check_table(fitsfile *f, const char *label, rapid_err *err)
{
    int status = 0, type = 0;

    if (fits_get_hdu_type(f, &type, &status))
        return rapid_cfitsio_fail(err, status, label, "cannot read HDU type");
    if (type != BINARY_TBL)
        return rapid_fail(err, RAPID_E_TABLE,
                          "%s: no binary table in this HDU (%s)", label,
                          hdu_type_name(type));
    return 0;
}

static int check_hdu(fitsfile *f, rapid_want want, const char *label,
                     rapid_err *err)
{
    switch (want) {
    case RAPID_WANT_IMAGE: return check_image(f, label, NULL, NULL, err);
    case RAPID_WANT_TABLE: return check_table(f, label, err);
    default: return 0;
    }
}

static void copy_err(rapid_err *dst, const rapid_err *src)
{
    if (dst)
        *dst = *src;
}

/* The first HDU of the kind wanted.  When there is none but some image is
 * not 2-D, that is the more useful thing to report. */
static int find_first(fitsfile *f, const char *path, rapid_want want,
                      char *label, size_t labelsz, rapid_err *err)
{
    rapid_err why = RAPID_ERR_INIT, not2d = RAPID_ERR_INIT;
    int i, rc, status;

    for (i = 1;; i++) {
        status = 0;
        snprintf(label, labelsz, "%s[%d]", path, i - 1);
        if (fits_movabs_hdu(f, i, NULL, &status)) {
            rc = move_failed(f, status, label, &why);
            if (rc != RAPID_E_NOHDU) {
                copy_err(err, &why);
                return rc;
            }
            break;
        }
        rc = check_hdu(f, want == RAPID_WANT_TABLE ? want : RAPID_WANT_IMAGE,
                       label, &why);
        if (rc == 0)
            return 0;
        if (rc == RAPID_E_NOT2D && !not2d.code)
            not2d = why;
        else if (rc != RAPID_E_NOIMAGE && rc != RAPID_E_TABLE &&
                 rc != RAPID_E_NOT2D) {
            copy_err(err, &why);
            return rc;
        }
    }
    if (not2d.code) {
        copy_err(err, &not2d);
        return not2d.code;
    }
    if (want == RAPID_WANT_TABLE)
        return rapid_fail(err, RAPID_E_NOHDU,
                          "%s: no HDU holds a binary table", path);
    return rapid_fail(err, RAPID_E_NOIMAGE, "%s: no HDU holds a 2-D image",
                      path);
}

/* "0" is the primary HDU, CFITSIO's number 1. */
static int parse_hdu_number(const char *s, int *n)
{
    char *end = NULL;
    long v;

    if (!isdigit((unsigned char)s[0]))
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end != '\0' || errno || v >= INT_MAX)
        return 0;
    *n = (int)v + 1;
    return 1;
}

static int goto_hdu(fitsfile *f, const char *path, const char *hdu,
                    rapid_want want, char *label, size_t labelsz,
                    rapid_err *err)
{
    int status = 0, n = 0;

    if (!hdu || !*hdu)
        return find_first(f, path, want, label, labelsz, err);
    snprintf(label, labelsz, "%s[%s]", path, hdu);
    if (parse_hdu_number(hdu, &n))
        fits_movabs_hdu(f, n, NULL, &status);
    else
        fits_movnam_hdu(f, ANY_HDU, (char *)hdu, 0, &status);
    if (status)
        return move_failed(f, status, label, err);
    return check_hdu(f, want, label, err);
}

int rapid_fits_open_hdu(fitsfile **f, const char *path, const char *hdu,
                        rapid_want want, char *label, size_t labelsz,
                        rapid_err *err)
{
    int rc = 0;

    snprintf(label, labelsz, "%s", path ? path : "");
    if ((rc = open_file(f, path, err)) != 0)
        return rc;
    if ((rc = goto_hdu(*f, path, hdu, want, label, labelsz, err)) != 0) {
        rapid_fits_close(*f);
        *f = NULL;
    }
    return rc;
}

/* ------------------------------------------------ float32 pixels directly */

/* CFITSIO reads a float32 image through its own buffers, then swaps the
 * bytes in one pass and looks for NaNs in another.  The unscaled float32
 * images of plain files, which the pipeline reads by the dozen, are read
 * here with pread() straight into the image instead, and converted in one
 * pass that does exactly what CFITSIO's passes do (with a NaN null
 * value): the pixels are the same bit for bit whichever way they came.
 * Only on little-endian hosts, where the conversion is a byte swap (known
 * at compile time; elsewhere every image goes through CFITSIO). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DIRECT_READ 1
#else
#define DIRECT_READ 0
#endif

/* Pixels read and then converted at a time (1 MiB): the conversion finds
 * them still in the L2 cache.  Converting a whole 64 MB image after
 * reading it costs 10% more. */
#define DIRECT_CHUNK ((size_t)1 << 18)

/* Is the keyword absent, or exactly want?  (CFITSIO scales by BSCALE and
 * BZERO unless they are 1 and 0.) */
static int key_absent_or(fitsfile *f, const char *key, double want)
{
    double v = want;
    int status = 0;

    fits_read_key_dbl(f, key, &v, NULL, &status);
    fits_clear_errmsg();
    return status == KEY_NO_EXIST || (status == 0 && v == want);
}

/* Would CFITSIO only swap the bytes of the current HDU's npix pixels and
 * replace their NaNs, infinities and denormals?  It does for an unscaled
 * 2-D BITPIX -32 image that is not tile-compressed, in a plain disk file
 * (a gzipped one is decompressed into memory, so has no offsets on disk).
 * Gives the file's name and where the data unit starts and ends. */
static int direct_source(fitsfile *f, LONGLONG npix, char *name,
                         LONGLONG *start, LONGLONG *end)
{
    char driver[FLEN_FILENAME] = "";
    LONGLONG head = 0;
    int status = 0, bitpix = 0, naxis = 0, ok;

    ok = !fits_get_img_type(f, &bitpix, &status) && bitpix == FLOAT_IMG &&
         !fits_get_img_dim(f, &naxis, &status) && naxis == 2 &&
         !fits_is_compressed_image(f, &status) && !status &&
         !fits_url_type(f, driver, &status) &&
         strcmp(driver, "file://") == 0 &&
         key_absent_or(f, "BSCALE", 1.0) && key_absent_or(f, "BZERO", 0.0) &&
         !fits_file_name(f, name, &status) &&
         !fits_get_hduaddrll(f, &head, start, end, &status) &&
         (*end - *start) / 4 >= npix;
    fits_clear_errmsg();
    return ok;
}

/* The file CFITSIO read the header from, when it holds the whole data
 * unit (up to byte end); -1 if not.  A file cut short is left to CFITSIO,
 * which reports it as before. */
static int open_direct(const char *name, LONGLONG end)
{
    struct stat sb;
    int fd = open(name, O_RDONLY | O_CLOEXEC);

    if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
                    (LONGLONG)sb.st_size < end)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* n bytes from offset off, however many calls that takes. */
static int pread_all(int fd, void *buf, size_t n, off_t off,
                     const char *label, rapid_err *err)
{
    unsigned char *p = buf;
    ssize_t got;

    while (n > 0) {
        got = pread(fd, p, n, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return rapid_fail(err, RAPID_E_IO, "%s: cannot read pixels: %s",
                              label, strerror(errno));
        if (got == 0) /* shorter than when it was opened */
            return rapid_fail(err, RAPID_E_TRUNCATED,
                              "%s: cannot read pixels: file is truncated",
                              label);
        p += got;
        n -= (size_t)got;
        off += got;
    }
    return 0;
}

/* A stored float32 as loaded (big-endian) into what CFITSIO makes of it
 * with null as the null value (fffr4r4): exponent bits all set (NaN,
 * infinity) give null, all clear (zeros, denormals) give +0. */
RAPID_INLINE void float_from_fits(float *p, uint32_t null)
{
    uint32_t w, e;
    float v;

    memcpy(&w, p, sizeof w);
#ifdef RAPID_PORTABLE
    w = w >> 24 | (w >> 8 & 0xff00u) | (w << 8 & 0xff0000u) | w << 24;
#else
    w = __builtin_bswap32(w);
#endif
    e = w & 0x7f800000u;
    w = e == 0x7f800000u ? null : e == 0 ? 0 : w;
    memcpy(&v, &w, sizeof v);
    *p = v;
}

/* The n stored float32 at v, in place; in blocks of a fixed count, which
 * GCC vectorises at -O2 too. */
RAPID_CLONES
static void floats_from_fits(float *v, size_t n, float nulval)
{
    enum { BLOCK = 32 };
    uint32_t null;
    size_t i = 0, j;

    memcpy(&null, &nulval, sizeof null);
    for (; i + BLOCK <= n; i += BLOCK)
        for (j = 0; j < BLOCK; j++)
            float_from_fits(&v[i + j], null);
    for (; i < n; i++)
        float_from_fits(&v[i], null);
}

/* The current HDU's npix pixels straight from the file, when they can be
 * (see direct_source).  0, a rapid_status, or 1: read them through
 * CFITSIO. */
static int read_direct(fitsfile *f, const char *label, float *data,
                       size_t npix, float nulval, rapid_err *err)
{
    char name[FLEN_FILENAME] = "";
    LONGLONG start = 0, end = 0;
    size_t i, m;
    int fd, rc = 0;

    if (!DIRECT_READ || !direct_source(f, (LONGLONG)npix, name, &start, &end))
        return 1;
    /* Not opening what CFITSIO has open (no descriptor left, say) only
     * costs time. */
    if ((fd = open_direct(name, end)) < 0)
        return 1;
    for (i = 0; i < npix && !rc; i += m) {
        m = npix - i < DIRECT_CHUNK ? npix - i : DIRECT_CHUNK;
        rc = pread_all(fd, data + i, m * sizeof *data,
                       (off_t)(start + (LONGLONG)(i * sizeof *data)), label,
                       err);
        if (!rc)
            floats_from_fits(data + i, m, nulval);
    }
    close(fd);
    return rc;
}

/* The current HDU's npix pixels as floats, NaN where there are none. */
static int read_pixels(fitsfile *f, const char *label, float *data,
                       LONGLONG npix, rapid_err *err)
{
    /* nulval turns BLANK pixels of integer images into NaN, and NaNs and
     * infinities of float images into this NaN. */
    float nulval = NAN;
    int rc, status = 0, anynul = 0;

    if ((rc = read_direct(f, label, data, (size_t)npix, nulval, err)) != 1)
        return rc;
    if (fits_read_img(f, TFLOAT, 1, npix, &nulval, data, &anynul, &status))
        return rapid_cfitsio_fail(err, status, label, "cannot read pixels");
    return 0;
}

/* -------------------------------------------------------------- reading */

/* reuse: img holds an earlier image whose pixel buffer may be kept */
static int read_image(const char *path, const char *hdu, rapid_image *img,
                      int reuse, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    LONGLONG nx = 0, ny = 0;
    int rc = 0;

    if (reuse)
        rapid_header_release(&img->hdr);
    else
        img->nx = img->ny = 0, img->data = NULL;
    rapid_header_init(&img->hdr);
    if ((rc = rapid_fits_open_hdu(&f, path, hdu, RAPID_WANT_IMAGE, label,
                                  sizeof label, err)) != 0)
        goto cleanup;
    if ((rc = check_image(f, label, &nx, &ny, err)) != 0)
        goto cleanup;
    if (img->data && (LONGLONG)img->nx * img->ny == nx * ny) {
        img->nx = (int)nx, img->ny = (int)ny; /* same size: keep the buffer */
    } else {
        rapid_big_free(img->data);
        img->data = NULL;
        if ((rc = image_alloc_raw(img, (int)nx, (int)ny, err)) != 0) {
            rapid_err_prefix(err, "%s", label);
            goto cleanup;
        }
    }
    if ((rc = read_pixels(f, label, img->data, nx * ny, err)) != 0)
        goto cleanup;
    rc = rapid_fits_read_cards(f, label, rapid_fits_image_layout, &img->hdr,
                               err);
cleanup:
    if (rc)
        rapid_image_release(img);
    rapid_fits_close(f);
    return rc;
}

int rapid_fits_read_image(const char *path, const char *hdu, rapid_image *img,
                          rapid_err *err)
{
    return read_image(path, hdu, img, 0, err);
}

int rapid_fits_reread_image(const char *path, const char *hdu, rapid_image *img,
                            rapid_err *err)
{
    return read_image(path, hdu, img, 1, err);
}

/* ------------------------------------------------------ integer images */

int rapid_image_u32_alloc(rapid_image_u32 *img, int nx, int ny, uint32_t fill,
                          rapid_err *err)
{
    size_t n, i;

    img->nx = img->ny = 0;
    img->data = NULL;
    rapid_header_init(&img->hdr);
    if (nx <= 0 || ny <= 0)
        return rapid_fail(err, RAPID_E_ARG,
                          "image of %d x %d pixels: size must be positive",
                          nx, ny);
    n = (size_t)nx * (size_t)ny;
    if (!(img->data = rapid_big_malloc(n * sizeof *img->data)))
        return rapid_fail(err, RAPID_E_NOMEM,
                          "image of %d x %d pixels: out of memory", nx, ny);
    for (i = 0; i < n; i++)
        img->data[i] = fill;
    img->nx = nx;
    img->ny = ny;
    return 0;
}

void rapid_image_u32_release(rapid_image_u32 *img)
{
    if (!img)
        return;
    rapid_big_free(img->data);
    img->data = NULL;
    img->nx = img->ny = 0;
    rapid_header_release(&img->hdr);
}

int rapid_fits_read_image_u32(const char *path, const char *hdu,
                              rapid_image_u32 *img, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    LONGLONG nx = 0, ny = 0;
    int rc = 0, status = 0, anynul = 0;
    uint32_t nulval = 0;

    img->nx = img->ny = 0, img->data = NULL;
    rapid_header_init(&img->hdr);
    if ((rc = rapid_fits_open_hdu(&f, path, hdu, RAPID_WANT_IMAGE, label,
                                  sizeof label, err)) != 0 ||
        (rc = check_image(f, label, &nx, &ny, err)) != 0)
        goto cleanup;
    if ((rc = rapid_image_u32_alloc(img, (int)nx, (int)ny, 0, err)) != 0) {
        rapid_err_prefix(err, "%s", label);
        goto cleanup;
    }
    if (fits_read_img(f, TUINT, 1, nx * ny, &nulval, img->data, &anynul,
                      &status)) {
        rc = status == NUM_OVERFLOW
                 ? rapid_fail(err, RAPID_E_RANGE, "%s: pixel values do not fit "
                              "an unsigned 32-bit integer", label)
                 : rapid_cfitsio_fail(err, status, label, "cannot read pixels");
        fits_clear_errmsg();
        goto cleanup;
    }
    rc = rapid_fits_read_cards(f, label, rapid_fits_image_layout, &img->hdr,
                               err);
cleanup:
    if (rc)
        rapid_image_u32_release(img);
    rapid_fits_close(f);
    return rc;
}

int rapid_fits_has_hdu(const char *path, const char *extname, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    rapid_err why = RAPID_ERR_INIT;
    fitsfile *f = NULL;
    int rc;

    rc = rapid_fits_open_hdu(&f, path, extname, RAPID_WANT_ANY, label,
                             sizeof label, &why);
    rapid_fits_close(f);
    if (rc == RAPID_E_NOHDU)
        return 0;
    if (rc && err)
        *err = why;
    return rc ? rc : 1;
}

int rapid_fits_read_header(const char *path, const char *hdu,
                           rapid_header *hdr, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    int rc = 0;

    rapid_header_init(hdr);
    if ((rc = rapid_fits_open_hdu(&f, path, hdu, RAPID_WANT_ANY, label,
                                  sizeof label, err)) != 0)
        return rc;
    rc = rapid_fits_read_cards(f, label, NULL, hdr, err);
    rapid_fits_close(f);
    return rc;
}

int rapid_fits_verify_checksums(const char *path, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    int rc = 0, status = 0, n = 0, i, dataok = 0, hduok = 0;

    if ((rc = open_file(&f, path, err)) != 0)
        return rc;
    if (fits_get_num_hdus(f, &n, &status)) {
        rc = rapid_cfitsio_fail(err, status, path, "cannot count HDUs");
        goto cleanup;
    }
    for (i = 1; i <= n && !rc; i++) {
        snprintf(label, sizeof label, "%s[%d]", path, i - 1);
        if (fits_movabs_hdu(f, i, NULL, &status) ||
            fits_verify_chksum(f, &dataok, &hduok, &status))
            rc = rapid_cfitsio_fail(err, status, label,
                                    "cannot verify checksums");
        else if (dataok == 0 || hduok == 0)
            rc = rapid_fail(err, RAPID_E_FITS, "%s: no %s keyword", label,
                            hduok == 0 ? "CHECKSUM" : "DATASUM");
        else if (dataok < 0 || hduok < 0)
            rc = rapid_fail(err, RAPID_E_FITS,
                            "%s: %s does not match: the file is corrupted",
                            label, dataok < 0 ? "DATASUM" : "CHECKSUM");
    }
cleanup:
    rapid_fits_close(f);
    return rc;
}

int rapid_fits_stamp(const char *path, const rapid_header *cards,
                     rapid_err *err)
{
    char label[RAPID_LABEL_MAX], key[9], card[81];
    fitsfile *f = NULL;
    int rc = 0, status = 0, n = 0, i, k;

    if ((rc = open_file_mode(&f, path, READWRITE, err)) != 0)
        return rc;
    if (fits_get_num_hdus(f, &n, &status)) {
        rc = rapid_cfitsio_fail(err, status, path, "cannot count HDUs");
        goto cleanup;
    }
    for (i = 1; i <= n && !rc; i++) {
        snprintf(label, sizeof label, "%s[%d]", path, i - 1);
        if (fits_movabs_hdu(f, i, NULL, &status)) {
            rc = rapid_cfitsio_fail(err, status, label, "cannot move to the HDU");
            break;
        }
        /* each keyword's earlier card(s) out (with a long string's
         * CONTINUE cards), then the new ones appended */
        for (k = 0; k < cards->ncards && !rc; k++) {
            rapid_fits_card_keyword(cards->cards[k], key);
            if (strcmp(key, "CONTINUE") == 0)
                continue;
            while (fits_delete_key(f, key, &status) == 0)
                ;
            if (status == KEY_NO_EXIST)
                status = 0, fits_clear_errmsg();
            else
                rc = rapid_cfitsio_fail(err, status, label, "cannot replace %s", key);
        }
        for (k = 0; k < cards->ncards && !rc; k++) {
            snprintf(card, sizeof card, "%s", cards->cards[k]);
            if (fits_write_record(f, card, &status))
                rc = rapid_cfitsio_fail(err, status, label, "cannot write %.8s",
                                        card);
        }
        for (k = 0; k < cards->ncards && !rc; k++)
            if (strncmp(cards->cards[k], "CONTINUE", 8) == 0) {
                /* the long-string convention, declared (LONGSTRN) */
                if (fits_write_key_longwarn(f, &status))
                    rc = rapid_cfitsio_fail(err, status, label, "cannot write LONGSTRN");
                break;
            }
        if (!rc && fits_write_chksum(f, &status))
            rc = rapid_cfitsio_fail(err, status, label, "cannot write CHECKSUM");
    }
cleanup:
    status = 0;
    if (fits_close_file(f, &status) && !rc)
        rc = rapid_cfitsio_fail(err, status, path, "cannot close");
    return rc;
}

/* -------------------------------------------------------------- writing */

struct rapid_fits_out {
    fitsfile *f;
    char *path;            /* where the file goes on commit */
    char *tmp;             /* where it is written until then */
    int nhdu;              /* HDUs started */
    int failed;            /* a write failed: only abort is left */
    rapid_header primary;  /* cards for the primary HDU */
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A hidden name beside path, unique per process and writer. */
static char *temp_name(const char *path, const void *writer)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    size_t sz = strlen(path) + 64;
    char *tmp = malloc(sz);

    if (tmp)
        snprintf(tmp, sz, "%.*s.%s.%ld.%lx.tmp", dirlen, path, path + dirlen,
                 (long)getpid(), (unsigned long)(uintptr_t)writer);
    return tmp;
}

static void free_out(rapid_fits_out *o)
{
    free(o->path);
    free(o->tmp);
    rapid_header_release(&o->primary);
    free(o);
}

/* Throw away everything written so far. */
static void discard(rapid_fits_out *o)
{
    rapid_fits_close(o->f);
    o->f = NULL;
    if (o->tmp)
        unlink(o->tmp);
}

static int create_tmp(rapid_fits_out *o, rapid_err *err)
{
    char *url = NULL;
    int status = 0;

    /* CFITSIO compresses only when the name's first ".gz" ends it, which
     * a temporary name beside the target cannot promise: name the
     * compressing driver instead.  Plain files use the entry point that
     * takes the name literally. */
    if (ends_with(o->path, ".gz")) {
        url = malloc(strlen(o->tmp) + 20);
        if (!url)
            return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory",
                              o->path);
        sprintf(url, "compressoutfile://%s", o->tmp);
        fits_create_file(&o->f, url, &status);
        free(url);
    } else {
        fits_create_diskfile(&o->f, o->tmp, &status);
    }
    if (status) {
        o->f = NULL;
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot create temporary file %s", o->tmp);
    }
    return 0;
}

int rapid_fits_create(rapid_fits_out **out, const char *path, rapid_err *err)
{
    rapid_fits_out *o = NULL;
    const char *slash = NULL;
    int rc = 0;

    *out = NULL;
    slash = path ? strrchr(path, '/') : NULL;
    if (!path || !*path || (slash && slash[1] == '\0'))
        return rapid_fail(err, RAPID_E_ARG, "%s: not a file name",
                          path ? path : "(null)");
    o = calloc(1, sizeof *o);
    if (!o)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", path);
    rapid_header_init(&o->primary);
    o->path = strdup(path);
    o->tmp = temp_name(path, o);
    if (!o->path || !o->tmp) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    rc = create_tmp(o, err);
cleanup:
    if (rc)
        free_out(o);
    else
        *out = o;
    return rc;
}

int rapid_fits_set_primary_header(rapid_fits_out *out, const rapid_header *h,
                                  rapid_err *err)
{
    if (!out || !h)
        return rapid_fail(err, RAPID_E_ARG, "set_primary_header: no %s",
                          out ? "header" : "file");
    if (out->nhdu > 0)
        return rapid_fail(err, RAPID_E_ARG,
                          "%s: the primary header must be set before the "
                          "first HDU is written", out->path);
    rapid_header_release(&out->primary);
    if (rapid_header_copy(&out->primary, h))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", out->path);
    return 0;
}

static int write_empty_primary(rapid_fits_out *o, rapid_err *err)
{
    int status = 0;

    if (fits_create_img(o->f, BYTE_IMG, 0, NULL, &status))
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot write the primary header");
    o->nhdu = 1;
    return write_cards(o->f, &o->primary, rapid_fits_image_layout, NULL, NULL,
                       o->path, err);
}

/* The FITS data checksum (32-bit ones' complement sum of the data unit's
 * big-endian words) of n float32 pixels written unscaled.  Each word is
 * one pixel's bits, so no bytes need swapping, and the zero fill after the
 * data adds nothing.  The end-around carries are folded in at the end:
 * 2^32 words of 2^32 - 1 at most do not overflow 64 bits. */
static unsigned long float_datasum(const float *v, size_t n)
{
    uint64_t s = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &v[i], sizeof w);
        s += w;
    }
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (unsigned long)s;
}

/* The data checksum of n unsigned 32-bit pixels written with BZERO 2^31:
 * each word on disk is the value with its top bit flipped. */
static unsigned long u32_datasum(const uint32_t *v, size_t n)
{
    uint64_t s = 0;
    size_t i;

    for (i = 0; i < n; i++)
        s += v[i] ^ 0x80000000u;
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (unsigned long)s;
}

/* What one image HDU is made of, whatever its pixel type. */
typedef struct image_hdu {
    int nx, ny;
    const rapid_header *hdr;
    int imgtype;           /* CFITSIO's FLOAT_IMG, ULONG_IMG */
    int datatype;          /* CFITSIO's TFLOAT, TUINT */
    const void *data;
    unsigned long datasum;
} image_hdu;

/* One image HDU.  prior: cards written first (the primary header when the
 * image is the primary HDU), which win over the image's own. */
static int write_image_hdu(rapid_fits_out *o, const image_hdu *im,
                           const char *extname, const rapid_header *prior,
                           rapid_err *err)
{
    long naxes[2] = {im->nx, im->ny};
    char sum[32];
    int rc = 0, status = 0;

    if (fits_create_img(o->f, im->imgtype, 2, naxes, &status))
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot start image HDU %d", o->nhdu);
    o->nhdu++;
    if (prior && (rc = write_cards(o->f, prior, rapid_fits_image_layout, NULL,
                                   NULL, o->path, err)) != 0)
        return rc;
    if ((rc = write_cards(o->f, im->hdr, rapid_fits_image_layout, extname,
                          prior, o->path, err)) != 0)
        return rc;
    if (extname && *extname &&
        fits_write_key_str(o->f, "EXTNAME", extname, "extension name",
                           &status))
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot write header card EXTNAME = '%s'",
                                  extname);
    /* The data checksum now, from memory, and a CHECKSUM to fill in at
     * commit: CFITSIO would read the whole data unit back for it. */
    snprintf(sum, sizeof sum, "%lu", im->datasum);
    if (fits_write_key_str(o->f, "CHECKSUM", "0000000000000000",
                           "HDU checksum", &status))
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot write header card CHECKSUM of HDU %d",
                                  o->nhdu - 1);
    if (fits_write_key_str(o->f, "DATASUM", sum, "data unit checksum", &status))
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot write header card DATASUM of HDU %d",
                                  o->nhdu - 1);
    /* CFITSIO only reads from the array here. */
    if (fits_write_img(o->f, im->datatype, 1, (LONGLONG)im->nx * im->ny,
                       (void *)im->data, &status))
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot write pixels of HDU %d",
                                  o->nhdu - 1);
    return 0;
}

static int not_usable(rapid_fits_out *o, rapid_err *err)
{
    return rapid_fail(err, RAPID_E_ARG,
                      "%s: an earlier write to this file failed", o->path);
}

int rapid_fits_append_image(rapid_fits_out *out, const rapid_image *img,
                            const char *extname, rapid_err *err)
{
    image_hdu im;
    int rc = 0, named = extname && *extname;

    if (!out || !img || !img->data || img->nx <= 0 || img->ny <= 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: no image to write",
                          out ? out->path : "append_image");
    if (out->failed)
        return not_usable(out, err);
    im.nx = img->nx, im.ny = img->ny, im.hdr = &img->hdr;
    im.imgtype = FLOAT_IMG, im.datatype = TFLOAT, im.data = img->data;
    im.datasum = float_datasum(img->data, (size_t)img->nx * (size_t)img->ny);
    if (out->nhdu == 0 && !named) {
        rc = write_image_hdu(out, &im, NULL, &out->primary, err);
    } else {
        if (out->nhdu == 0)
            rc = write_empty_primary(out, err);
        if (!rc)
            rc = write_image_hdu(out, &im, extname, NULL, err);
    }
    return rapid_fits_out_end(out, rc);
}

int rapid_fits_append_image_u32(rapid_fits_out *out, const rapid_image_u32 *img,
                                const char *extname, rapid_err *err)
{
    image_hdu im;
    int rc = 0;

    if (!out || !img || !img->data || img->nx <= 0 || img->ny <= 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: no image to write",
                          out ? out->path : "append_image_u32");
    if (!extname || !*extname)
        return rapid_fail(err, RAPID_E_ARG, "%s: an integer image needs an "
                          "EXTNAME", out->path);
    if (out->failed)
        return not_usable(out, err);
    im.nx = img->nx, im.ny = img->ny, im.hdr = &img->hdr;
    im.imgtype = ULONG_IMG, im.datatype = TUINT, im.data = img->data;
    im.datasum = u32_datasum(img->data, (size_t)img->nx * (size_t)img->ny);
    if (out->nhdu == 0)
        rc = write_empty_primary(out, err);
    if (!rc)
        rc = write_image_hdu(out, &im, extname, NULL, err);
    return rapid_fits_out_end(out, rc);
}

const char *rapid_fits_out_path(const rapid_fits_out *out)
{
    return out->path;
}

int rapid_fits_out_begin(rapid_fits_out *out, fitsfile **f, rapid_err *err)
{
    int rc = 0;

    if (out->failed)
        return not_usable(out, err);
    if (out->nhdu == 0 && (rc = write_empty_primary(out, err)) != 0)
        return rapid_fits_out_end(out, rc);
    out->nhdu++;
    *f = out->f;
    return 0;
}

int rapid_fits_out_end(rapid_fits_out *out, int rc)
{
    if (rc)
        out->failed = 1;
    return rc;
}

/* Images carry their DATASUM from write_image_hdu: only the header is
 * summed for them.  Other HDUs (small: primary headers, tables) are summed
 * whole by CFITSIO. */
static int checksum_all(rapid_fits_out *o, rapid_err *err)
{
    char value[FLEN_VALUE];
    int status = 0, i, known;

    /* Our own count: CFITSIO's misses a last HDU that has no data yet. */
    for (i = 1; i <= o->nhdu; i++) {
        if (fits_movabs_hdu(o->f, i, NULL, &status))
            break;
        known = fits_read_keyword(o->f, "DATASUM", value, NULL, &status) == 0;
        if (!known) {
            status = 0;
            fits_clear_errmsg();
        }
        if (known ? fits_update_chksum(o->f, &status)
                  : fits_write_chksum(o->f, &status))
            break;
    }
    if (status)
        return rapid_cfitsio_fail(err, status, o->path,
                                  "cannot checksum HDU %d", i - 1);
    return 0;
}

/* The rename must not overtake the data on its way to disk, or a crash
 * could leave a complete-looking name over an empty file. */
static int sync_file(const char *tmp, const char *path, rapid_err *err)
{
    int fd = open(tmp, O_RDONLY), rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot flush %s: %s", path, tmp,
                        strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

int rapid_fits_commit(rapid_fits_out *out, rapid_err *err)
{
    int rc = 0, status = 0;

    if (!out)
        return rapid_fail(err, RAPID_E_ARG, "commit: no file");
    if (out->failed) {
        rc = not_usable(out, err);
        goto cleanup;
    }
    if (out->nhdu == 0 && (rc = write_empty_primary(out, err)) != 0)
        goto cleanup;
    if ((rc = checksum_all(out, err)) != 0)
        goto cleanup;
    fits_close_file(out->f, &status);
    out->f = NULL;
    if (status) {
        rc = rapid_cfitsio_fail(err, status, out->path, "cannot write %s",
                                out->tmp);
        goto cleanup;
    }
    if ((rc = sync_file(out->tmp, out->path, err)) != 0)
        goto cleanup;
    if (rename(out->tmp, out->path) != 0)
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot move %s into place: %s",
                        out->path, out->tmp, strerror(errno));
cleanup:
    if (rc)
        discard(out);
    free_out(out);
    return rc;
}

void rapid_fits_abort(rapid_fits_out *out)
{
    if (!out)
        return;
    discard(out);
    free_out(out);
}

int rapid_fits_write_image(const char *path, const rapid_image *img,
                           const char *extname, rapid_err *err)
{
    rapid_fits_out *out = NULL;
    int rc = 0;

    if ((rc = rapid_fits_create(&out, path, err)) != 0)
        return rc;
    if ((rc = rapid_fits_append_image(out, img, extname, err)) != 0) {
        rapid_fits_abort(out);
        return rc;
    }
    return rapid_fits_commit(out, err);
}

int rapid_fits_write_table(const char *path, const rapid_table *t,
                           const char *extname, rapid_err *err)
{
    rapid_fits_out *out = NULL;
    int rc = 0;

    if ((rc = rapid_fits_create(&out, path, err)) != 0)
        return rc;
    if ((rc = rapid_fits_append_table(out, t, extname, err)) != 0) {
        rapid_fits_abort(out);
        return rc;
    }
    return rapid_fits_commit(out, err);
}
