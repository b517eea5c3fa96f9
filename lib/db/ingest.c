/* ingest.c - L2 images and PSF files into the operations database.
 *
 * Two phases per batch: read every file (no database), then write the good
 * ones in one transaction.  The writes go in key order (dateobs, sca) so
 * that two processes ingesting overlapping sets always take their row
 * locks in the same order and cannot deadlock.  When a batch fails because
 * of one file's data, it is rolled back and written again file by file,
 * so that only that file is left out; a lock conflict is retried (for up to
 * the lock timeout); any other database failure ends the run, and its
 * message says how many files were committed before it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "db_internal.h"
#include "core/fits_internal.h"
#include "rapid/filters.h"
#include "rapid/ingest.h"
#include "rapid/md5.h"
#include "rapid/wcs.h"

#define FITS_BLOCK 2880
#define MAX_DEPTH 32      /* directory nesting followed */
#define MAX_RETRIES 8     /* of a batch after lock conflicts */

const char *const rapid_l2_keywords[] = {
    "DATE-OBS", "MJD-OBS", "FILTER",  "EXPTIME", "SCA_NUM",  "RA_TARG",
    "DEC_TARG", "PA_OBSY", "PA_FPA",  "ZPTMAG",  "SKY_MEAN", NULL};

void rapid_ingest_opts_init(rapid_ingest_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 500;
}

/* ------------------------------------------------- header to record */

static const rapid_header *holder(const rapid_header *sci,
                                  const rapid_header *prim, const char *key)
{
    if (rapid_header_has(sci, key))
        return sci;
    if (prim && rapid_header_has(prim, key))
        return prim;
    return NULL;
}

static int get_num(const rapid_header *sci, const rapid_header *prim,
                   const char *key, double *v, rapid_err *err)
{
    int rc = rapid_header_get_double(holder(sci, prim, key), key, v, err);

    if (!rc && !isfinite(*v))
        rc = rapid_fail(err, RAPID_E_KEY, "header keyword %s is not finite",
                        key);
    return rc;
}

/* PSF files carry these. */
static const char *const psf_keywords[] = {"FILTER", "SCA_NUM", NULL};

/* Every missing keyword of keys named in one message. */
static int check_keywords(const rapid_header *sci, const rapid_header *prim,
                          const char *const *keys, rapid_err *err)
{
    char list[256] = "";
    int i, n = 0;

    for (i = 0; keys[i]; i++)
        if (!holder(sci, prim, keys[i])) {
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     n++ ? ", " : "", keys[i]);
        }
    if (n)
        return rapid_fail(err, RAPID_E_KEY, "missing header keyword%s %s",
                          n > 1 ? "s" : "", list);
    return 0;
}

/* DATE-OBS and MJD-OBS name the same moment, to within 1 s (DATE-OBS
 * is kept with the exposure, MJD-OBS with the image: both are used). */
static int same_time(const char *date, const char *canon, double mjd,
                     rapid_err *err)
{
    char as_date[RAPID_DB_TIME_MAX];
    double t = 0, off;

    if (rapid_time_parse(canon, &t, err) != 0)
        return RAPID_E_KEY;
    off = fabs(rapid_time_from_mjd(mjd) - t);
    if (off <= 1.0)
        return 0;
    if (fabs(mjd) < 1e7) /* years -25000 .. 29000 */
        rapid_time_format(rapid_time_from_mjd(mjd), as_date);
    else
        snprintf(as_date, sizeof as_date, "no date");
    return rapid_fail(err, RAPID_E_KEY, "MJD-OBS %.10g (%s) and DATE-OBS "
                      "'%s' (MJD %.10g) disagree by %.3g s (more than 1 s)",
                      mjd, as_date, date, rapid_time_to_mjd(t), off);
}

static int observation(const rapid_header *sci, const rapid_header *prim,
                       rapid_l2file *rec, rapid_err *err)
{
    char date[80], filt[80];
    const rapid_filter *f;
    double sca = 0;
    int rc;

    if ((rc = rapid_header_get_str(holder(sci, prim, "DATE-OBS"), "DATE-OBS",
                                   date, sizeof date, err)) ||
        (rc = rapid_header_get_str(holder(sci, prim, "FILTER"), "FILTER", filt,
                                   sizeof filt, err)) ||
        (rc = get_num(sci, prim, "MJD-OBS", &rec->mjdobs, err)) ||
        (rc = get_num(sci, prim, "EXPTIME", &rec->exptime, err)) ||
        (rc = get_num(sci, prim, "SCA_NUM", &sca, err)) ||
        (rc = get_num(sci, prim, "RA_TARG", &rec->ra_targ, err)) ||
        (rc = get_num(sci, prim, "DEC_TARG", &rec->dec_targ, err)) ||
        (rc = get_num(sci, prim, "PA_OBSY", &rec->pa_obsy, err)) ||
        (rc = get_num(sci, prim, "PA_FPA", &rec->pa_fpa, err)) ||
        (rc = get_num(sci, prim, "ZPTMAG", &rec->zptmag, err)) ||
        (rc = get_num(sci, prim, "SKY_MEAN", &rec->skymean, err)))
        return rc;
    if (db_time_canon(date, rec->dateobs))
        return rapid_fail(err, RAPID_E_KEY, "DATE-OBS '%s' is not an ISO "
                          "date-time (YYYY-MM-DDThh:mm:ss[.f])", date);
    if ((rc = same_time(date, rec->dateobs, rec->mjdobs, err)) != 0)
        return rc;
    if (!(f = rapid_filter_by_name(filt)))
        return rapid_fail(err, RAPID_E_KEY, "FILTER '%s' is not a Roman WFI "
                          "filter (F184 H158 J129 K213 R062 Y106 Z087 W146)",
                          filt);
    rec->fid = f->fid;
    if (sca != floor(sca) || sca < 1 || sca > RAPID_NSCA)
        return rapid_fail(err, RAPID_E_KEY, "SCA_NUM %g is not a detector "
                          "number 1..%d", sca, RAPID_NSCA);
    rec->sca = (int)sca;
    if (!(rec->exptime > 0) || fabs(rec->dec_targ) > 90)
        return rapid_fail(err, RAPID_E_KEY, "EXPTIME %g or DEC_TARG %g out of "
                          "range", rec->exptime, rec->dec_targ);
    return 0;
}

/* The SIP terms the database keeps (2 <= p + q <= 4); anything more would
 * be lost, so such a WCS is refused rather than stored wrong. */
static int copy_sip(const rapid_sip *s, rapid_l2file *rec, rapid_err *err)
{
    int p, q;

    if (s->a_order > RAPID_DB_SIP_ORDER || s->b_order > RAPID_DB_SIP_ORDER)
        return rapid_fail(err, RAPID_E_WCS, "SIP order %d/%d: the database "
                          "keeps terms up to order %d", s->a_order, s->b_order,
                          RAPID_DB_SIP_ORDER);
    for (p = 0; p <= RAPID_SIP_MAXORDER; p++)
        for (q = 0; p + q <= RAPID_SIP_MAXORDER; q++) {
            int keep = p + q >= 2 && p + q <= RAPID_DB_SIP_ORDER;
            if (!keep && (s->a[p][q] != 0 || s->b[p][q] != 0))
                return rapid_fail(err, RAPID_E_WCS, "SIP term A_%d_%d or "
                                  "B_%d_%d is not stored by the database", p,
                                  q, p, q);
            if (keep) {
                rec->a[p][q] = p + q <= s->a_order ? s->a[p][q] : 0;
                rec->b[p][q] = p + q <= s->b_order ? s->b[p][q] : 0;
            }
        }
    rec->a_order = s->a_order, rec->b_order = s->b_order;
    return 0;
}

static int geometry(const rapid_header *sci, const rapid_header *prim, int nx,
                    int ny, rapid_l2file *rec, rapid_err *err)
{
    const rapid_header *h = rapid_header_has(sci, "CTYPE1") || !prim ||
                                    !rapid_header_has(prim, "CTYPE1")
                                ? sci
                                : prim;
    rapid_wcs w = RAPID_WCS_INIT;
    int rc;

    if ((rc = rapid_wcs_from_header(&w, h, err)) != 0)
        return rc;
    if (w.kind != RAPID_WCS_TAN && w.kind != RAPID_WCS_TAN_SIP) {
        rc = rapid_fail(err, RAPID_E_WCS, "the WCS is not TAN or TAN-SIP "
                        "(the database stores only those)");
        goto cleanup;
    }
    if (w.kind == RAPID_WCS_TAN_SIP && (rc = copy_sip(&w.sip, rec, err)))
        goto cleanup;
    memcpy(rec->crval, w.crval, sizeof rec->crval);
    memcpy(rec->crpix, w.crpix, sizeof rec->crpix);
    memcpy(rec->cd, w.cd, sizeof rec->cd);
    rec->naxis1 = nx, rec->naxis2 = ny;
    rc = rapid_wcs_footprint(&w, nx, ny, rec->fp_ra, rec->fp_dec, err);
    rec->ra = rec->fp_ra[0], rec->dec = rec->fp_dec[0];
cleanup:
    rapid_wcs_release(&w);
    return rc;
}

/* The centre of a Roman detector is at most 0.4 deg from the boresight
 * (the outer corner detectors; their far corners 0.5 deg); a WCS that puts
 * the image further away than this is wrong, and would file it under the
 * wrong sky tile. */
#define MAX_BORESIGHT_DEG 1.0

static int near_boresight(const rapid_l2file *rec, rapid_err *err)
{
    double d = rapid_sky_distance(rec->ra, rec->dec, rec->ra_targ,
                                  rec->dec_targ);

    if (d <= MAX_BORESIGHT_DEG)
        return 0;
    return rapid_fail(err, RAPID_E_WCS, "the WCS puts the image centre at "
                      "(%.6f, %.6f), %.3g deg from the boresight (RA_TARG, "
                      "DEC_TARG) = (%.6f, %.6f): more than %.0f deg, and "
                      "no Roman detector is half as far", rec->ra, rec->dec,
                      d, rec->ra_targ, rec->dec_targ, MAX_BORESIGHT_DEG);
}

int rapid_l2file_from_headers(const rapid_header *sci,
                              const rapid_header *primary, int nx, int ny,
                              rapid_l2file *rec, rapid_err *err)
{
    int rc;

    memset(rec, 0, sizeof *rec);
    rec->dist = NAN;
    if (nx <= 0 || ny <= 0)
        return rapid_fail(err, RAPID_E_ARG, "image size %dx%d", nx, ny);
    if ((rc = check_keywords(sci, primary, rapid_l2_keywords, err)) != 0 ||
        (rc = observation(sci, primary, rec, err)) != 0)
        return rc;
    if ((rc = geometry(sci, primary, nx, ny, rec, err)) != 0) {
        rapid_err_prefix(err, "no usable WCS");
        return rc;
    }
    return near_boresight(rec, err);
}

/* ------------------------------------------------------- reading files */

/* MD5 of the whole file, and a first look at it: an uncompressed FITS
 * file is a whole number of 2880-byte blocks, or it was cut short. */
static int digest(const char *path, char hex[33], rapid_err *err)
{
    const size_t bufsz = (size_t)1 << 16; /* on the heap, not the stack */
    unsigned char *buf = NULL, d[16], head[9] = {0};
    rapid_md5 m;
    FILE *fp = NULL;
    size_t n;
    long long size = 0;
    int rc = 0;

    if (!(buf = malloc(bufsz)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory to read it", path);
    if (!(fp = fopen(path, "rb"))) {
        rc = rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                        "%s: %s", path,
                        errno == ENOENT ? "no such file" : strerror(errno));
        free(buf);
        return rc;
    }
    rapid_md5_init(&m);
    while ((n = fread(buf, 1, bufsz, fp)) > 0) {
        if (size == 0)
            memcpy(head, buf, n < sizeof head ? n : sizeof head);
        rapid_md5_update(&m, buf, n);
        size += (long long)n;
    }
    if (ferror(fp)) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot read: %s", path,
                        strerror(errno));
        goto cleanup;
    }
    rapid_md5_final(&m, d);
    rapid_md5_hex(d, hex);
    if (memcmp(head, "SIMPLE  =", 9) == 0 && size % FITS_BLOCK != 0)
        rc = rapid_fail(err, RAPID_E_TRUNCATED, "%s: truncated: %lld bytes is "
                        "not a whole number of 2880-byte FITS blocks", path,
                        size);
cleanup:
    fclose(fp);
    free(buf);
    return rc;
}

/* Are all the pixels there?  Reading the last one finds a file cut
 * inside its data. */
static int check_complete(fitsfile *f, const char *label, long nx, long ny,
                          rapid_err *err)
{
    LONGLONG pix[2] = {nx, ny};
    double v = 0;
    int status = 0;

    if (fits_read_pixll(f, TDOUBLE, pix, 1, NULL, &v, NULL, &status)) {
        fits_clear_errmsg();
        return rapid_fail(err, RAPID_E_TRUNCATED, "%s: truncated: the file "
                          "ends inside the %ldx%ld image data", label, nx, ny);
    }
    return 0;
}

/* The image HDU's header (EXTNAME SCI, else the first 2-D image), its
 * size, and the primary header when that is another HDU. */
static int read_headers(const char *path, rapid_header *img,
                        rapid_header *prim, int *nx, int *ny, rapid_err *err)
{
    char label[RAPID_LABEL_MAX], plabel[RAPID_LABEL_MAX];
    rapid_err why = RAPID_ERR_INIT;
    fitsfile *f = NULL;
    long naxes[2] = {0, 0};
    int rc, status = 0, hdu = 0;

    rc = rapid_fits_open_hdu(&f, path, "SCI", RAPID_WANT_IMAGE, label,
                             sizeof label, &why);
    if (rc == RAPID_E_NOHDU)
        rc = rapid_fits_open_hdu(&f, path, NULL, RAPID_WANT_IMAGE, label,
                                 sizeof label, &why);
    if (rc) {
        if (err)
            *err = why;
        return rc;
    }
    if ((rc = rapid_fits_read_cards(f, label, NULL, img, err)) != 0)
        goto cleanup;
    if (fits_get_img_size(f, 2, naxes, &status)) {
        rc = rapid_cfitsio_fail(err, status, label, "cannot read image size");
        goto cleanup;
    }
    fits_get_hdu_num(f, &hdu); /* returns the number, not a status */
    *nx = (int)naxes[0], *ny = (int)naxes[1];
    if ((rc = check_complete(f, label, naxes[0], naxes[1], err)) != 0 ||
        hdu == 1)
        goto cleanup;
    snprintf(plabel, sizeof plabel, "%s[0]", path);
    if (fits_movabs_hdu(f, 1, NULL, &status))
        rc = rapid_cfitsio_fail(err, status, plabel, "cannot read HDU");
    else
        rc = rapid_fits_read_cards(f, plabel, NULL, prim, err);
cleanup:
    rapid_fits_close(f);
    return rc;
}

/* Is this plainly an image of the sky (a date or a WCS)? */
static int sky_image(const rapid_header *img, const rapid_header *prim)
{
    return holder(img, prim, "DATE-OBS") || holder(img, prim, "CTYPE1");
}

static int set_filename(const char *path, char *out, size_t outsz,
                        rapid_err *err)
{
    char abs[PATH_MAX];
    const char *name = realpath(path, abs) ? abs : path;
    size_t n = strlen(name);

    /* Jobs may run elsewhere: record where the file really is. */
    if (n >= outsz)
        return rapid_fail(err, RAPID_E_ARG, "%s: file name longer than the "
                          "%zu bytes the database keeps", path, outsz - 1);
    memcpy(out, name, n + 1);
    return 0;
}

/* What reading any file to register starts with. */
typedef struct entry {
    rapid_header img, prim;  /* image HDU; primary when that is another HDU */
    int nx, ny;
    char hex[33];            /* MD5 of the file */
} entry;

static void entry_release(entry *e)
{
    rapid_header_release(&e->img);
    rapid_header_release(&e->prim);
}

/* Is path a FITS file of headers without a data unit in any HDU?  (A
 * file that cannot be read is not: its failure is reported as such.) */
static int headers_only(const char *path)
{
    char label[RAPID_LABEL_MAX];
    rapid_err why = RAPID_ERR_INIT;
    fitsfile *f = NULL;
    LONGLONG head, start, end;
    int n = 0, i, status = 0, empty = 1;

    if (rapid_fits_open_hdu(&f, path, "0", RAPID_WANT_ANY, label,
                            sizeof label, &why) != 0)
        return 0;
    if (fits_get_num_hdus(f, &n, &status))
        empty = 0;
    for (i = 1; empty && i <= n; i++)
        if (fits_movabs_hdu(f, i, NULL, &status) ||
            fits_get_hduaddrll(f, &head, &start, &end, &status) ||
            end > start)
            empty = 0;
    rapid_fits_close(f);
    return empty;
}

/* Digest and headers of path.  In a directory walk (in_dir) a file that is
 * not what is looked for - a sky image when want_sky, a PSF otherwise - is
 * passed over: *skip = 1 and 0 is returned. */
static int open_entry(const char *path, int in_dir, int want_sky, int *skip,
                      entry *e, rapid_err *err)
{
    int rc;

    memset(e, 0, sizeof *e);
    rapid_header_init(&e->img);
    rapid_header_init(&e->prim);
    if (skip)
        *skip = 0;
    if ((rc = digest(path, e->hex, err)) != 0)
        return rc;
    rc = read_headers(path, &e->img, &e->prim, &e->nx, &e->ny, err);
    if (skip && rc == RAPID_E_NOIMAGE && headers_only(path)) {
        *skip = 1; /* err says why, for a warning */
        rapid_fail(err, RAPID_E_NOIMAGE, "%s: no data in any HDU (headers "
                   "only): passed over", path);
        return 0;
    }
    if (in_dir && (rc == RAPID_E_NOIMAGE || rc == RAPID_E_NOT2D ||
                   (rc == 0 && sky_image(&e->img, &e->prim) != want_sky))) {
        *skip = 1;
        rapid_err_clear(err);
        return 0;
    }
    return rc;
}

/* Where the file is and its checksum, into a record. */
static int finish_entry(const char *path, const entry *e, char *filename,
                        size_t fsz, char checksum[33], rapid_err *err)
{
    memcpy(checksum, e->hex, sizeof e->hex);
    return set_filename(path, filename, fsz, err);
}

static const rapid_header *primary(const entry *e)
{
    return e->prim.ncards ? &e->prim : NULL;
}

/* An ERR or DQ extension, if the file has one, must be a whole 2-D image
 * of SCI's size: float for ERR, integer for DQ (rapid/dq.h). */
static int check_extension(const char *path, const char *name, int want_int,
                           int nx, int ny, rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    long naxes[2] = {0, 0};
    int rc, status = 0, bitpix = 0, naxis = 0;

    if ((rc = rapid_fits_has_hdu(path, name, err)) <= 0)
        return rc;
    if ((rc = rapid_fits_open_hdu(&f, path, name, RAPID_WANT_IMAGE, label,
                                  sizeof label, err)) != 0)
        return rc;
    if (fits_get_img_param(f, 2, &bitpix, &naxis, naxes, &status)) {
        rc = rapid_cfitsio_fail(err, status, label, "cannot read image size");
    } else if (naxes[0] != nx || naxes[1] != ny) {
        rc = rapid_fail(err, RAPID_E_FITS, "%s: %ldx%ld pixels, but SCI has "
                        "%dx%d", label, naxes[0], naxes[1], nx, ny);
    } else if ((bitpix > 0) != want_int) {
        rc = rapid_fail(err, RAPID_E_FITS, "%s: BITPIX %d: %s must hold %s",
                        label, bitpix, name, want_int ? "integers" : "floats");
    } else {
        rc = check_complete(f, label, naxes[0], naxes[1], err);
    }
    rapid_fits_close(f);
    return rc;
}

/* in_dir: passed over (*skip = 1, returns 0) when it is not an L2 image. */
static int read_l2(const char *path, rapid_l2file *rec, int in_dir, int *skip,
                   rapid_err *err)
{
    entry e;
    int rc;

    if ((rc = open_entry(path, in_dir, 1, skip, &e, err)) != 0 || (skip && *skip))
        goto cleanup;
    if ((rc = rapid_l2file_from_headers(&e.img, primary(&e), e.nx, e.ny, rec,
                                        err)) != 0) {
        rapid_err_prefix(err, "%s", path);
        goto cleanup;
    }
    if ((rc = check_extension(path, "ERR", 0, e.nx, e.ny, err)) != 0 ||
        (rc = check_extension(path, "DQ", 1, e.nx, e.ny, err)) != 0)
        goto cleanup;
    rc = finish_entry(path, &e, rec->filename, sizeof rec->filename,
                      rec->checksum, err);
cleanup:
    entry_release(&e);
    return rc;
}

int rapid_l2file_read(const char *path, rapid_l2file *rec, rapid_err *err)
{
    return read_l2(path, rec, 0, NULL, err);
}

static int psf_keys(const char *path, const rapid_header *img,
                    const rapid_header *prim, int nx, int ny,
                    rapid_psffile *rec, rapid_err *err)
{
    const rapid_filter *f;
    char filt[80];
    long sca = 0;
    int rc;

    if ((rc = check_keywords(img, prim, psf_keywords, err)) ||
        (rc = rapid_header_get_str(holder(img, prim, "FILTER"), "FILTER", filt,
                                   sizeof filt, err)) ||
        (rc = rapid_header_get_long(holder(img, prim, "SCA_NUM"), "SCA_NUM",
                                    &sca, err))) {
        rapid_err_prefix(err, "%s", path);
        return rc;
    }
    if (!(f = rapid_filter_by_name(filt)))
        return rapid_fail(err, RAPID_E_KEY, "%s: FILTER '%s' is not a Roman "
                          "WFI filter", path, filt);
    if (sca < 1 || sca > RAPID_NSCA)
        return rapid_fail(err, RAPID_E_KEY, "%s: SCA_NUM %ld is not a detector "
                          "number 1..%d", path, sca, RAPID_NSCA);
    if (nx % 2 == 0 || ny % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: the PSF is %dx%d pixels: it "
                          "must be odd-sized (centred on the middle pixel)",
                          path, nx, ny);
    rec->fid = f->fid, rec->sca = (int)sca;
    return 0;
}

static int read_psf(const char *path, rapid_psffile *rec, int in_dir,
                    int *skip, rapid_err *err)
{
    entry e;
    int rc;

    memset(rec, 0, sizeof *rec);
    if ((rc = open_entry(path, in_dir, 0, skip, &e, err)) != 0 || (skip && *skip))
        goto cleanup;
    if ((rc = psf_keys(path, &e.img, primary(&e), e.nx, e.ny, rec, err)) != 0)
        goto cleanup;
    rc = finish_entry(path, &e, rec->filename, sizeof rec->filename,
                      rec->checksum, err);
cleanup:
    entry_release(&e);
    return rc;
}

int rapid_psffile_read(const char *path, rapid_psffile *rec, rapid_err *err)
{
    return read_psf(path, rec, 0, NULL, err);
}

/* ------------------------------------------------------- finding files */

typedef struct file_item {
    char *path;
    int in_dir;
} file_item;

typedef struct file_list {
    file_item *v;
    long n, cap;
} file_list;

static int list_add(file_list *L, const char *path, int in_dir)
{
    file_item *grown;

    if (L->n == L->cap) {
        long cap = L->cap ? 2 * L->cap : 256;
        if (!(grown = realloc(L->v, (size_t)cap * sizeof *grown)))
            return RAPID_E_NOMEM;
        L->v = grown, L->cap = cap;
    }
    if (!(L->v[L->n].path = strdup(path)))
        return RAPID_E_NOMEM;
    L->v[L->n++].in_dir = in_dir;
    return 0;
}

static void list_free(file_list *L)
{
    long i;

    for (i = 0; i < L->n; i++)
        free(L->v[i].path);
    free(L->v);
}

static int fits_name(const char *name)
{
    static const char *const ext[] = {".fits", ".fit", ".fts", ".fits.gz",
                                      ".fit.gz", ".fts.gz", NULL};
    size_t n = strlen(name), m;
    int i;

    for (i = 0; ext[i]; i++) {
        m = strlen(ext[i]);
        if (n > m && strcasecmp(name + n - m, ext[i]) == 0)
            return 1;
    }
    return 0;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const file_item *)a)->path, ((const file_item *)b)->path);
}

/* Every FITS file under dir, in name order.  An unreadable directory is
 * listed itself, so that it is reported like a bad file. */
static int walk(file_list *L, const char *dir, int depth)
{
    char path[PATH_MAX];
    struct dirent *e;
    struct stat sb;
    long first = L->n;
    DIR *d = NULL;
    int rc = 0;

    if (depth > MAX_DEPTH || !(d = opendir(dir)))
        return list_add(L, dir, 0);
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden files */
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
            (int)sizeof path)
            continue;
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            rc = walk(L, path, depth + 1);
        else if (S_ISREG(sb.st_mode) && fits_name(e->d_name))
            rc = list_add(L, path, 1);
    }
    closedir(d);
    if (!rc)
        qsort(L->v + first, (size_t)(L->n - first), sizeof *L->v, by_path);
    return rc;
}

static int collect(const char *const *paths, int npaths, file_list *L,
                   rapid_err *err)
{
    struct stat sb;
    int i, rc = 0;

    for (i = 0; i < npaths && !rc; i++) {
        if (stat(paths[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            rc = walk(L, paths[i], 0);
        else
            rc = list_add(L, paths[i], 0);
    }
    if (rc)
        return rapid_fail(err, rc, "listing the files to ingest: out of memory");
    return 0;
}

/* ------------------------------------------------------------ batches */

enum { ITEM_OK, ITEM_FAILED, ITEM_SKIPPED };

typedef struct item {
    const file_item *file;
    int state, outcome;
    rapid_err err;
    rapid_l2file l2;
    rapid_psffile psf;
} item;

typedef struct run {
    rapid_db *db;
    rapid_ingest_kind kind;
    const rapid_ingest_opts *o;
    rapid_ingest_stats *st;
    long done, total;
} run;

static void read_item(const run *R, item *it)
{
    int skip = 0, rc;

    rapid_err_clear(&it->err);
    it->outcome = 0;
    if (R->kind == RAPID_INGEST_L2)
        rc = read_l2(it->file->path, &it->l2, it->file->in_dir, &skip, &it->err);
    else
        rc = read_psf(it->file->path, &it->psf, it->file->in_dir, &skip,
                      &it->err);
    it->state = rc ? ITEM_FAILED : skip ? ITEM_SKIPPED : ITEM_OK;
}

/* Lock order: by the natural key the rows are locked under. */
static int by_l2_key(const void *a, const void *b)
{
    const item *x = *(item *const *)a, *y = *(item *const *)b;
    int c = strcmp(x->l2.dateobs, y->l2.dateobs);

    if (c == 0 && (c = x->l2.sca - y->l2.sca) == 0) /* versions by name */
        c = strcmp(x->file->path, y->file->path);
    return c;
}

static int by_psf_key(const void *a, const void *b)
{
    const item *x = *(item *const *)a, *y = *(item *const *)b;

    if (x->psf.fid != y->psf.fid)
        return x->psf.fid - y->psf.fid;
    if (x->psf.sca != y->psf.sca)
        return x->psf.sca - y->psf.sca;
    return strcmp(x->file->path, y->file->path);
}

static int add_item(const run *R, item *it, rapid_err *err)
{
    rapid_db_outcome out = 0;
    int rc;

    if (R->kind == RAPID_INGEST_L2)
        rc = rapid_db_add_l2file(R->db, &it->l2, &out, err);
    else
        rc = rapid_db_add_psffile(R->db, &it->psf, &out, err);
    it->outcome = rc ? 0 : (int)out;
    return rc;
}

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Another try after a lock conflict, while the conflicts have lasted less
 * than the lock timeout: a lock that is simply held (SQLite busy after its
 * whole wait, PostgreSQL's lock timeout) ends the run instead of waiting
 * the timeout again and again. */
static int retry(const run *R, double since)
{
    return rapid_db_retryable(R->db) &&
           mono_now() - since < R->db->lock_timeout;
}

static void backoff(int attempt)
{
    struct timespec ts = {0, 0};
    long ms = (5L << (attempt < 6 ? attempt : 6)) + rand() % 20;

    ts.tv_sec = ms / 1000, ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* All good items of a batch in one transaction, retried after lock
 * conflicts.  Returns 0, or the failure that stopped it. */
static int write_batch(run *R, item **ok, int n, rapid_err *err)
{
    double since = mono_now();
    int attempt, rc = 0, i;

    for (attempt = 0; attempt <= MAX_RETRIES; attempt++) {
        if (attempt)
            backoff(attempt);
        if ((rc = db_tx_begin(R->db, err)) != 0) {
            if (retry(R, since))
                continue;
            return rc;
        }
        for (i = 0; i < n && !rc; i++) {
            rc = add_item(R, ok[i], err);
            if (!rc && R->o->progress)
                R->o->progress(R->done + i + 1, R->total, R->o->arg);
        }
        if ((rc = db_tx_end(R->db, rc, err)) == 0 || !retry(R, since))
            return rc;
    }
    return rc;
}

/* One item in its own transaction: its failure is its own unless the
 * database itself failed. */
static int write_one(run *R, item *it, rapid_err *err)
{
    double since = mono_now();
    int attempt, rc = 0;

    for (attempt = 0; attempt <= MAX_RETRIES; attempt++) {
        if (attempt)
            backoff(attempt);
        rapid_err_clear(&it->err);
        if ((rc = add_item(R, it, &it->err)) == 0 || !retry(R, since))
            break;
    }
    if (rc == RAPID_E_ARG) {
        it->state = ITEM_FAILED;
        return 0;
    }
    if (rc && err)
        *err = it->err;
    return rc;
}

static int write_items(run *R, item *items, int n, rapid_err *err)
{
    item **ok = malloc((size_t)(n ? n : 1) * sizeof *ok);
    int i, m = 0, rc = 0;

    if (!ok)
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory");
    for (i = 0; i < n; i++)
        if (items[i].state == ITEM_OK)
            ok[m++] = &items[i];
    qsort(ok, (size_t)m, sizeof *ok,
          R->kind == RAPID_INGEST_L2 ? by_l2_key : by_psf_key);
    if (m && (rc = write_batch(R, ok, m, err)) != 0 && rc == RAPID_E_ARG) {
        /* One file's data spoiled the batch: again, one by one. */
        for (i = 0, rc = 0; i < m && !rc; i++) {
            rc = write_one(R, ok[i], err);
            if (!rc && R->o->progress)
                R->o->progress(R->done + i + 1, R->total, R->o->arg);
        }
    }
    free(ok);
    return rc;
}

static void report(run *R, const item *it)
{
    rapid_ingest_event ev = {it->file->path, it->outcome,
                             it->state == ITEM_SKIPPED,
                             it->state == ITEM_FAILED ||
                                     (it->state == ITEM_SKIPPED && it->err.code)
                                 ? &it->err
                                 : NULL,
                             0, 0};
    rapid_ingest_stats *st = R->st;

    if (it->state == ITEM_OK) {
        ev.id = R->kind == RAPID_INGEST_L2 ? it->l2.rid : it->psf.psfid;
        ev.version = R->kind == RAPID_INGEST_L2 ? it->l2.version
                                               : it->psf.version;
    }
    st->failed += it->state == ITEM_FAILED;
    st->skipped += it->state == ITEM_SKIPPED;
    st->added += it->state == ITEM_OK && it->outcome == RAPID_DB_ADDED;
    st->versions += it->state == ITEM_OK && it->outcome == RAPID_DB_NEW_VERSION;
    st->unchanged += it->state == ITEM_OK && it->outcome == RAPID_DB_UNCHANGED;
    if (R->o->report)
        R->o->report(&ev, R->o->arg);
}

/* A database failure ends the run: say what stays committed. */
static void stopped(const run *R, int rc, rapid_err *err)
{
    char why[RAPID_ERR_MAX];
    long n = R->st->added + R->st->versions + R->st->unchanged;

    if (!err)
        return;
    memcpy(why, err->msg, sizeof why);
    rapid_fail(err, rc, "%s; committed before the failure: %ld of %ld "
               "files", why, n, R->total);
}

int rapid_ingest(rapid_db *db, rapid_ingest_kind kind,
                 const char *const *paths, int npaths,
                 const rapid_ingest_opts *opts, rapid_ingest_stats *stats,
                 rapid_err *err)
{
    rapid_ingest_opts defaults;
    file_list L = {NULL, 0, 0};
    item *items = NULL;
    run R;
    long start;
    int rc, batch, i, n;

    rapid_ingest_opts_init(&defaults);
    if (!opts)
        opts = &defaults;
    memset(stats, 0, sizeof *stats);
    batch = opts->batch > 0 ? opts->batch : defaults.batch;
    R = (run){db, kind, opts, stats, 0, 0};
    if ((rc = collect(paths, npaths, &L, err)) != 0)
        goto cleanup;
    stats->files = R.total = L.n;
    if (!(items = calloc((size_t)batch, sizeof *items))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "out of memory");
        goto cleanup;
    }
    for (start = 0; start < L.n; start += n) {
        n = (int)(L.n - start < batch ? L.n - start : batch);
        for (i = 0; i < n; i++) {
            items[i].file = &L.v[start + i];
            read_item(&R, &items[i]);
        }
        if ((rc = write_items(&R, items, n, err)) != 0) {
            stopped(&R, rc, err);
            goto cleanup;
        }
        for (i = 0; i < n; i++)
            report(&R, &items[i]);
        R.done += n;
    }
cleanup:
    free(items);
    list_free(&L);
    return rc;
}
