/* test_fits.c - FITS images, tables, atomic writes, checksums and every
 * way reading a file can fail.  Files are made here, some with raw CFITSIO
 * calls so that the reader meets layouts our writer never produces. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fitsio.h>

#include "rapid/fits.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

#define assert_fails(rc, err, want, path)                                    \
    do {                                                                     \
        assert_int_equal((rc), (want));                                      \
        assert_int_equal((err).code, (want));                                \
        if (!strstr((err).msg, (path)))                                      \
            fail_msg("message \"%s\" does not name %s", (err).msg, (path));  \
    } while (0)

/* A call that must succeed; on failure, show its message. */
/* A fresh empty directory under the test directory. */
static const char *subdir(const char *name)
{
    const char *dir = test_path(name);

    assert_int_equal(mkdir(dir, 0777), 0);
    return dir;
}

static const char *in_dir(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int k;

    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static long file_size(const char *path)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    return (long)sb.st_size;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void flip_byte(const char *path, long offset)
{
    int fd = open(path, O_RDWR);
    unsigned char c = 0;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, offset), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, offset), 1);
    close(fd);
}

/* Byte offset of the data of HDU hdu (0 = primary). */
static long data_offset(const char *path, int hdu)
{
    fitsfile *f = NULL;
    LONGLONG head = 0, data = 0, end = 0;
    int status = 0;

    fits_open_diskfile(&f, path, READONLY, &status);
    fits_movabs_hdu(f, hdu + 1, NULL, &status);
    fits_get_hduaddrll(f, &head, &data, &end, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return (long)data;
}

/* A deterministic image with a NaN every 7th pixel. */
static void make_image(rapid_image *img, int nx, int ny, uint64_t seed)
{
    int i;

    assert_int_equal(rapid_image_alloc(img, nx, ny, 0.0f, NULL), 0);
    for (i = 0; i < nx * ny; i++)
        img->data[i] = i % 7 == 3 ? NAN
                                  : (float)(test_uniform(&seed) * 2e4 - 1e4);
}

static void assert_same_pixels(const rapid_image *a, const rapid_image *b)
{
    int i;

    assert_int_equal(a->nx, b->nx);
    assert_int_equal(a->ny, b->ny);
    for (i = 0; i < a->nx * a->ny; i++) {
        if (isnan(a->data[i]))
            assert_true(isnan(b->data[i]));
        else
            assert_memory_equal(&a->data[i], &b->data[i], sizeof(float));
    }
}

static int count_cards(const rapid_header *h, const char *prefix)
{
    int i, n = 0;

    for (i = 0; i < h->ncards; i++)
        if (strncmp(h->cards[i], prefix, strlen(prefix)) == 0)
            n++;
    return n;
}

static fitsfile *raw_create(const char *path)
{
    fitsfile *f = NULL;
    int status = 0;

    unlink(path);
    fits_create_diskfile(&f, path, &status);
    assert_int_equal(status, 0);
    return f;
}

static void raw_close(fitsfile *f)
{
    int status = 0;

    fits_close_file(f, &status);
    assert_int_equal(status, 0);
}

/* A 2-HDU file: float primary image 40x30 (value 1) and extension SCI. */
static const char *two_hdu_file(const char *name)
{
    const char *path = test_path(name);
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;

    assert_int_equal(rapid_image_alloc(&img, 40, 30, 1.0f, NULL), 0);
    assert_int_equal(rapid_fits_create(&out, path, NULL), 0);
    assert_int_equal(rapid_fits_append_image(out, &img, NULL, NULL), 0);
    img.data[0] = 2.0f;
    assert_int_equal(rapid_fits_append_image(out, &img, "SCI", NULL), 0);
    assert_int_equal(rapid_fits_commit(out, NULL), 0);
    rapid_image_release(&img);
    return path;
}

/* ------------------------------------------------------------ round trips */

static void fill_header(rapid_header *h, const char *longval)
{
    assert_int_equal(rapid_header_set_str(h, "OBJECT", "O'Neil field", "target"), 0);
    assert_int_equal(rapid_header_set_double(h, "EXPTIME", 139.8, "s"), 0);
    assert_int_equal(rapid_header_set_double(h, "TINY", 1e-20, NULL), 0);
    assert_int_equal(rapid_header_set_long(h, "SCA", 17, NULL), 0);
    assert_int_equal(rapid_header_set_bool(h, "SIMULATE", 1, NULL), 0);
    assert_int_equal(rapid_header_set_str(h, "BUNIT", "DN/s", NULL), 0);
    assert_int_equal(rapid_header_set_str(h, "NOTES", longval, NULL), 0);
    assert_int_equal(rapid_header_add_text(h, "COMMENT", "a comment card"), 0);
    assert_int_equal(rapid_header_add_text(h, "HISTORY", "a history card"), 0);
}

static void check_header(const rapid_header *h, const char *longval)
{
    char s[1024];
    double d = 0;
    long l = 0;
    int b = 0;

    assert_int_equal(rapid_header_get_str(h, "OBJECT", s, sizeof s, NULL), 0);
    assert_string_equal(s, "O'Neil field");
    assert_int_equal(rapid_header_get_double(h, "EXPTIME", &d, NULL), 0);
    assert_true(d == 139.8);
    assert_int_equal(rapid_header_get_double(h, "TINY", &d, NULL), 0);
    assert_true(d == 1e-20);
    assert_int_equal(rapid_header_get_long(h, "SCA", &l, NULL), 0);
    assert_int_equal(l, 17);
    assert_int_equal(rapid_header_get_bool(h, "SIMULATE", &b, NULL), 0);
    assert_int_equal(b, 1);
    assert_int_equal(rapid_header_get_str(h, "BUNIT", s, sizeof s, NULL), 0);
    assert_string_equal(s, "DN/s");
    assert_int_equal(rapid_header_get_str(h, "NOTES", s, sizeof s, NULL), 0);
    assert_string_equal(s, longval);
    assert_int_equal(count_cards(h, "COMMENT a comment card"), 1);
    assert_int_equal(count_cards(h, "HISTORY a history card"), 1);
}

static void make_long_value(char *s, size_t n)
{
    size_t i;

    for (i = 0; i + 1 < n; i++)
        s[i] = i % 50 == 49 ? '\'' : (char)('A' + i % 26);
    s[n - 1] = '\0';
}

static void assert_no_layout_cards(const rapid_header *h)
{
    static const char *const layout[] = {
        "SIMPLE  ", "XTENSION", "BITPIX  ", "NAXIS   ", "NAXIS1  ", "NAXIS2  ",
        "EXTEND  ", "PCOUNT  ", "GCOUNT  ", "BSCALE  ", "BZERO   ", "BLANK   ",
        "CHECKSUM", "DATASUM ", "END     ", NULL};
    int i;

    for (i = 0; layout[i]; i++)
        if (count_cards(h, layout[i]))
            fail_msg("layout card %s kept in the image header", layout[i]);
    /* CFITSIO's "FITS (Flexible Image Transport System)" boilerplate. */
    for (i = 0; i < h->ncards; i++)
        assert_null(strstr(h->cards[i], "Flexible Image Transport"));
}

static void test_float_image_round_trip(void **state)
{
    const char *path = test_path("float.fits");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_image again = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    char longval[300], raw[400], *lp = NULL;
    fitsfile *f = NULL;
    int status = 0;

    (void)state;
    make_long_value(longval, sizeof longval);
    make_image(&img, 37, 23, 1);
    fill_header(&img.hdr, longval);
    assert_ok(rapid_fits_write_image(path, &img, NULL, &err), err);
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_same_pixels(&img, &back);
    check_header(&back.hdr, longval);
    assert_no_layout_cards(&back.hdr);
    assert_int_equal(back.hdr.ncards, img.hdr.ncards);

    /* Read, write, read: nothing is added on the way. */
    assert_ok(rapid_fits_write_image(path, &back, NULL, &err), err);
    assert_ok(rapid_fits_read_image(path, "0", &again, &err), err);
    assert_int_equal(again.hdr.ncards, img.hdr.ncards);
    assert_same_pixels(&img, &again);

    /* CFITSIO itself reads the long string and BITPIX -32. */
    fits_open_diskfile(&f, path, READONLY, &status);
    fits_read_key_longstr(f, "NOTES", &lp, NULL, &status);
    assert_int_equal(status, 0);
    snprintf(raw, sizeof raw, "%s", lp);
    fits_free_memory(lp, &status);
    assert_string_equal(raw, longval);
    {
        int bitpix = 0;
        fits_get_img_type(f, &bitpix, &status);
        assert_int_equal(bitpix, FLOAT_IMG);
    }
    fits_close_file(f, &status);
    rapid_image_release(&img);
    rapid_image_release(&back);
    rapid_image_release(&again);
}

static void test_extension_round_trip(void **state)
{
    const char *path = test_path("ext.fits");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;
    char s[80];

    (void)state;
    make_image(&img, 16, 9, 2);
    rapid_header_set_str(&img.hdr, "EXTNAME", "OLD", NULL);
    rapid_header_set_str(&img.hdr, "BUNIT", "DN", NULL);
    assert_ok(rapid_fits_write_image(path, &img, "SCI", &err), err);
    /* The primary HDU holds only a header; the default skips it. */
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_same_pixels(&img, &back);
    assert_int_equal(rapid_header_get_str(&back.hdr, "EXTNAME", s, sizeof s, NULL), 0);
    assert_string_equal(s, "SCI");
    assert_int_equal(count_cards(&back.hdr, "EXTNAME "), 1);
    rapid_image_release(&back);
    assert_ok(rapid_fits_read_image(path, "sci", &back, &err), err);
    assert_same_pixels(&img, &back);
    rapid_image_release(&back);
    assert_fails(rapid_fits_read_image(path, "0", &back, &err), err,
                 RAPID_E_NOIMAGE, path);
    assert_null(back.data);
    /* The full header keeps the layout cards, for WCS and the like. */
    assert_ok(rapid_fits_read_header(path, "1", &h, &err), err);
    assert_true(rapid_header_has(&h, "NAXIS1"));
    assert_true(rapid_header_has(&h, "CHECKSUM"));
    assert_int_equal(rapid_header_get_str(&h, "BUNIT", s, sizeof s, NULL), 0);
    assert_string_equal(s, "DN");
    rapid_header_release(&h);
    assert_ok(rapid_fits_read_header(path, "0", &h, &err), err);
    assert_true(rapid_header_has(&h, "SIMPLE"));
    assert_false(rapid_header_has(&h, "BUNIT"));
    rapid_header_release(&h);
    rapid_image_release(&img);
}

/* ---------------------------------------------------------- integer input */

/* Writes raw stored values: the scaling keywords only describe them. */
static void raw_image(fitsfile *f, int bitpix, int datatype, void *values,
                      double bscale, double bzero, long blank)
{
    long naxes[2] = {3, 2};
    int status = 0;

    fits_create_img(f, bitpix, 2, naxes, &status);
    if (bscale != 1.0 || bzero != 0.0) {
        fits_write_key_dbl(f, "BSCALE", bscale, -15, NULL, &status);
        fits_write_key_dbl(f, "BZERO", bzero, -15, NULL, &status);
        fits_set_bscale(f, 1.0, 0.0, &status);
    }
    if (blank != 0)
        fits_write_key_lng(f, "BLANK", blank, NULL, &status);
    fits_write_key_str(f, "BUNIT", "adu", NULL, &status);
    fits_write_img(f, datatype, 1, 6, values, &status);
    assert_int_equal(status, 0);
}

static void check_pixels(const char *path, const char *hdu,
                         const double want[6])
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    int i;

    assert_ok(rapid_fits_read_image(path, hdu, &img, &err), err);
    assert_int_equal(img.nx, 3);
    assert_int_equal(img.ny, 2);
    for (i = 0; i < 6; i++) {
        if (isnan(want[i]))
            assert_true(isnan(img.data[i]));
        else
            assert_float_equal(img.data[i], (float)want[i], 0);
    }
    assert_no_layout_cards(&img.hdr);
    assert_true(rapid_header_has(&img.hdr, "BUNIT"));
    rapid_image_release(&img);
}

static void test_integer_images(void **state)
{
    const char *path = test_path("ints.fits");
    short s16[6] = {0, 1, -2, -999, 32767, -32768};
    int i32[6] = {0, 123456, -7, -2147483647 - 1, 16777216, 1000};
    unsigned char u8[6] = {0, 1, 2, 255, 128, 254};
    double f64[6] = {1.5e10, -2.25, NAN, 1e-30, 0.1, -0.0};
    unsigned short u16[6] = {0, 1, 65535, 32768, 32767, 40000};
    fitsfile *f = raw_create(path);

    (void)state;
    raw_image(f, SHORT_IMG, TSHORT, s16, 0.5, 100.0, -999);
    raw_image(f, LONG_IMG, TINT, i32, 1.0, 0.0, -2147483647L - 1);
    raw_image(f, BYTE_IMG, TBYTE, u8, 2.0, -10.0, 255);
    raw_image(f, DOUBLE_IMG, TDOUBLE, f64, 1.0, 0.0, 0);
    raw_image(f, USHORT_IMG, TUSHORT, u16, 1.0, 0.0, 0);
    raw_close(f);

    {
        const double want16[6] = {100, 100.5, 99, NAN, 32767 * 0.5 + 100,
                                  -32768 * 0.5 + 100};
        const double want32[6] = {0, 123456, -7, NAN, 16777216, 1000};
        const double want8[6] = {-10, -8, -6, NAN, 246, 498};
        const double want64[6] = {1.5e10, -2.25, NAN, 1e-30, 0.1, -0.0};
        const double wantu16[6] = {0, 1, 65535, 32768, 32767, 40000};
        check_pixels(path, "0", want16);
        check_pixels(path, "1", want32);
        check_pixels(path, "2", want8);
        check_pixels(path, "3", want64);
        check_pixels(path, "4", wantu16);
    }
}

/* ------------------------------------------------------------ choosing HDUs */

static void test_hdu_by_number_and_name(void **state)
{
    const char *path = test_path("three.fits");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;
    const char *names[] = {"0", "1", "SCI", "sci", "2", "Err", ""};
    const float want[] = {1, 2, 2, 2, 3, 3, 1};
    int i;

    (void)state;
    assert_int_equal(rapid_image_alloc(&img, 5, 4, 1.0f, NULL), 0);
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_image(out, &img, NULL, &err), err);
    img.data[0] = 2;
    assert_ok(rapid_fits_append_image(out, &img, "SCI", &err), err);
    img.data[0] = 3;
    assert_ok(rapid_fits_append_image(out, &img, "ERR", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    for (i = 0; i < 7; i++) {
        assert_ok(rapid_fits_read_image(path, names[i], &back, &err), err);
        assert_float_equal(back.data[0], want[i], 0);
        rapid_image_release(&back);
    }
    assert_fails(rapid_fits_read_image(path, "5", &back, &err), err,
                 RAPID_E_NOHDU, path);
    assert_non_null(strstr(err.msg, "[5]"));
    assert_fails(rapid_fits_read_image(path, "3", &back, &err), err,
                 RAPID_E_NOHDU, path);
    assert_fails(rapid_fits_read_image(path, "NOPE", &back, &err), err,
                 RAPID_E_NOHDU, path);
    assert_non_null(strstr(err.msg, "NOPE"));
    assert_fails(rapid_fits_read_header(path, "7", &img.hdr, &err), err,
                 RAPID_E_NOHDU, path);
    rapid_image_release(&img);
}

static void test_default_hdu(void **state)
{
    const char *path = test_path("default.fits");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    /* header-only primary, a table, then the image */
    assert_int_equal(rapid_table_init(&t, 3), 0);
    assert_non_null(rapid_table_add_f64(&t, "x", NULL));
    assert_int_equal(rapid_image_alloc(&img, 4, 4, 7.0f, NULL), 0);
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_table(out, &t, "CAT", &err), err);
    assert_ok(rapid_fits_append_image(out, &img, NULL, &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_float_equal(back.data[15], 7.0f, 0);
    rapid_image_release(&back);
    assert_ok(rapid_fits_read_image(path, "2", &back, &err), err);
    rapid_image_release(&back);
    assert_fails(rapid_fits_read_image(path, "1", &back, &err), err,
                 RAPID_E_NOIMAGE, path);
    assert_non_null(strstr(err.msg, "BINTABLE"));
    assert_fails(rapid_fits_read_image(path, "CAT", &back, &err), err,
                 RAPID_E_NOIMAGE, path);
    assert_non_null(strstr(err.msg, "[CAT]: no image data in this HDU (BINTABLE)"));

    /* A file with only a table has no image at all. */
    path = test_path("onlytable.fits");
    assert_ok(rapid_fits_write_table(path, &t, NULL, &err), err);
    assert_fails(rapid_fits_read_image(path, NULL, &back, &err), err,
                 RAPID_E_NOIMAGE, path);
    assert_fails(rapid_fits_read_image(path, "0", &back, &err), err,
                 RAPID_E_NOIMAGE, path);
    assert_non_null(strstr(err.msg, "NAXIS = 0"));
    rapid_table_release(&t);
    rapid_image_release(&img);
}

static void write_cube(const char *path, int naxis, long n3)
{
    long naxes[3] = {10, 8, n3};
    float data[320] = {0};
    fitsfile *f = raw_create(path);
    int status = 0;

    data[1] = 5.0f;
    fits_create_img(f, FLOAT_IMG, naxis, naxes, &status);
    fits_write_img(f, TFLOAT, 1, naxis == 1 ? 10 : 80 * n3, data, &status);
    assert_int_equal(status, 0);
    raw_close(f);
}

static void test_not_2d(void **state)
{
    const char *path = test_path("cube.fits");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    write_cube(path, 3, 4);
    assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                 RAPID_E_NOT2D, path);
    assert_non_null(strstr(err.msg, "NAXIS3 = 4"));
    assert_fails(rapid_fits_read_image(path, "0", &img, &err), err,
                 RAPID_E_NOT2D, path);
    assert_null(img.data);
    /* Degenerate extra axes are fine. */
    path = test_path("flatcube.fits");
    write_cube(path, 3, 1);
    assert_ok(rapid_fits_read_image(path, NULL, &img, &err), err);
    assert_int_equal(img.nx, 10);
    assert_int_equal(img.ny, 8);
    assert_float_equal(img.data[1], 5.0f, 0);
    assert_false(rapid_header_has(&img.hdr, "NAXIS3"));
    rapid_image_release(&img);
    path = test_path("line.fits");
    write_cube(path, 1, 1);
    assert_fails(rapid_fits_read_image(path, "0", &img, &err), err,
                 RAPID_E_NOT2D, path);
}

/* A file updated in place (post-processing): the cards in every HDU,
 * those of the same name replaced (a long string too), the checksums
 * right after, the data untouched. */
static void test_stamp(void **state)
{
    const char *path = two_hdu_file("stamped.fits");
    char longval[200], got[256];
    rapid_header cards = RAPID_HEADER_INIT, h = RAPID_HEADER_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long v;
    int hdu;

    (void)state;
    memset(longval, 'p', sizeof longval - 1);
    longval[sizeof longval - 1] = '\0';
    longval[0] = '/';
    assert_int_equal(rapid_header_set_long(&cards, "PID", 501, "id"), 0);
    assert_int_equal(rapid_header_set_str(&cards, "PRODLOC", "short", NULL), 0);
    assert_ok(rapid_fits_stamp(path, &cards, &err), err);
    /* again, with a longer PRODLOC and another PID: replaced, not added */
    rapid_header_release(&cards);
    assert_int_equal(rapid_header_set_long(&cards, "PID", 502, "id"), 0);
    assert_int_equal(rapid_header_set_str(&cards, "PRODLOC", longval, NULL), 0);
    assert_ok(rapid_fits_stamp(path, &cards, &err), err);
    assert_ok(rapid_fits_verify_checksums(path, &err), err);
    for (hdu = 0; hdu < 2; hdu++) {
        assert_ok(rapid_fits_read_header(path, hdu ? "1" : "0", &h, &err), err);
        assert_ok(rapid_header_get_long(&h, "PID", &v, &err), err);
        assert_int_equal(v, 502);
        assert_ok(rapid_header_get_str(&h, "PRODLOC", got, sizeof got, &err), err);
        assert_string_equal(got, longval);
        assert_true(rapid_header_has(&h, "LONGSTRN"));
        rapid_header_release(&h);
    }
    assert_ok(rapid_fits_read_image(path, "SCI", &img, &err), err);
    assert_float_equal(img.data[0], 2.0f, 0);
    assert_float_equal(img.data[1], 1.0f, 0);
    rapid_image_release(&img);
    assert_fails(rapid_fits_stamp(test_path("nothing.fits"), &cards, &err), err,
                 RAPID_E_NOENT, "nothing.fits");
    rapid_header_release(&cards);
}

/* ---------------------------------------------------------- broken files */

static void test_missing_and_directory(void **state)
{
    const char *path = test_path("does-not-exist.fits");
    const char *dir = subdir("a-directory.fits");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                 RAPID_E_NOENT, path);
    assert_fails(rapid_fits_read_header(path, "0", &h, &err), err,
                 RAPID_E_NOENT, path);
    assert_fails(rapid_fits_read_table(path, NULL, &t, &err), err,
                 RAPID_E_NOENT, path);
    assert_fails(rapid_fits_verify_checksums(path, &err), err, RAPID_E_NOENT,
                 path);
    assert_fails(rapid_fits_read_image(dir, NULL, &img, &err), err,
                 RAPID_E_IO, dir);
    assert_non_null(strstr(err.msg, "directory"));
    /* Errors may also go nowhere. */
    assert_int_equal(rapid_fits_read_image(path, NULL, &img, NULL),
                     RAPID_E_NOENT);
}

static void test_not_fits(void **state)
{
    const char *path = test_path("notes.fits");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    char text[6000], cmd[2200];

    (void)state;
    write_bytes(path, "hello, this is not FITS\n", 24);
    assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                 RAPID_E_NOTFITS, path);
    assert_non_null(strstr(err.msg, "not a FITS file"));
    /* Longer than one FITS block, so CFITSIO reads a whole "header". */
    memset(text, 'x', sizeof text);
    path = test_path("long-notes.fits");
    write_bytes(path, text, sizeof text);
    assert_fails(rapid_fits_read_image(path, "0", &img, &err), err,
                 RAPID_E_NOTFITS, path);
    /* gzipped text, long and short */
    snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s'", path,
             test_path("long-notes.fits.gz"));
    if (system(cmd) == 0) {
        path = test_path("long-notes.fits.gz");
        assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                     RAPID_E_NOTFITS, path);
        snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s'",
                 test_path("notes.fits"), test_path("notes.fits.gz"));
        assert_int_equal(system(cmd), 0);
        path = test_path("notes.fits.gz");
        assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                     RAPID_E_NOTFITS, path);
    }
    path = test_path("empty.fits");
    write_bytes(path, "", 0);
    assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                 RAPID_E_NOTFITS, path);
    assert_fails(rapid_fits_verify_checksums(path, &err), err,
                 RAPID_E_NOTFITS, path);
}

static void copy_prefix(const char *from, const char *to, long n)
{
    char cmd[2200];

    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(truncate(to, n), 0);
}

static void test_truncated(void **state)
{
    const char *good = two_hdu_file("good.fits");
    const char *cut = test_path("cut.fits");
    long data0 = data_offset(good, 0), data1 = data_offset(good, 1);
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_ok(rapid_fits_read_image(good, "1", &img, &err), err);
    rapid_image_release(&img);
    /* in the primary header */
    copy_prefix(good, cut, 1000);
    assert_fails(rapid_fits_read_image(cut, NULL, &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_non_null(strstr(err.msg, "truncated"));
    /* in the primary data, whichever HDU is asked for */
    copy_prefix(good, cut, data0 + 2000);
    assert_fails(rapid_fits_read_image(cut, "0", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_fails(rapid_fits_read_image(cut, "1", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_fails(rapid_fits_read_image(cut, "SCI", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_fails(rapid_fits_verify_checksums(cut, &err), err,
                 RAPID_E_TRUNCATED, cut);
    /* just the padding of the primary data missing */
    copy_prefix(good, cut, data1 - 2880 - 100);
    assert_fails(rapid_fits_read_image(cut, "1", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    /* in the extension header */
    copy_prefix(good, cut, data1 - 1000);
    assert_fails(rapid_fits_read_image(cut, "1", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_ok(rapid_fits_read_image(cut, "0", &img, &err), err);
    rapid_image_release(&img);
    /* in the extension data, at a block boundary */
    copy_prefix(good, cut, data1 + 2880);
    assert_fails(rapid_fits_read_image(cut, "SCI", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_null(img.data);
    /* cut exactly after the primary HDU: the file simply has one HDU */
    copy_prefix(good, cut, data1 - 2880);
    assert_fails(rapid_fits_read_image(cut, "1", &img, &err), err,
                 RAPID_E_NOHDU, cut);
}

/* --------------------------------------------------------------- checksums */

static void test_checksums(void **state)
{
    const char *path = two_hdu_file("sums.fits");
    const char *bad = test_path("bad-sums.fits");
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long data1 = data_offset(path, 1);
    long l = 0;
    fitsfile *f = NULL;

    (void)state;
    assert_ok(rapid_fits_verify_checksums(path, &err), err);
    assert_ok(rapid_fits_read_header(path, "0", &h, &err), err);
    assert_true(rapid_header_has(&h, "CHECKSUM"));
    assert_true(rapid_header_has(&h, "DATASUM"));
    rapid_header_release(&h);
    assert_ok(rapid_fits_read_header(path, "SCI", &h, &err), err);
    assert_true(rapid_header_has(&h, "CHECKSUM"));
    assert_true(rapid_header_has(&h, "DATASUM"));
    assert_int_equal(rapid_header_get_long(&h, "NAXIS1", &l, NULL), 0);
    assert_int_equal(l, 40);
    rapid_header_release(&h);

    /* one data byte of the extension */
    copy_prefix(path, bad, file_size(path));
    flip_byte(bad, data1 + 123);
    assert_fails(rapid_fits_verify_checksums(bad, &err), err, RAPID_E_FITS,
                 bad);
    assert_non_null(strstr(err.msg, "[1]"));
    /* one header byte of the primary HDU */
    copy_prefix(path, bad, file_size(path));
    flip_byte(bad, 80 * 3 + 40);
    assert_fails(rapid_fits_verify_checksums(bad, &err), err, RAPID_E_FITS,
                 bad);
    assert_non_null(strstr(err.msg, "[0]"));
    /* The data sum of images is computed in memory: bit patterns that
     * carry (negative numbers, NaN, infinities) in every word. */
    {
        rapid_image big = RAPID_IMAGE_INIT;
        int k;
        assert_ok(rapid_image_alloc(&big, 301, 7, 0, &err), err);
        for (k = 0; k < 301 * 7; k++)
            big.data[k] = k % 5 == 0 ? NAN : k % 5 == 1 ? -INFINITY
                                           : -(float)k * 1e30f;
        assert_ok(rapid_fits_write_image(bad, &big, "SCI", &err), err);
        assert_ok(rapid_fits_verify_checksums(bad, &err), err);
        assert_ok(rapid_fits_write_image(bad, &big, NULL, &err), err);
        assert_ok(rapid_fits_verify_checksums(bad, &err), err);
        rapid_image_release(&big);
    }
    /* a file without checksums */
    f = raw_create(bad);
    {
        long naxes[2] = {2, 2};
        int status = 0;
        float px[4] = {1, 2, 3, 4};
        fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
        fits_write_img(f, TFLOAT, 1, 4, px, &status);
        assert_int_equal(status, 0);
    }
    raw_close(f);
    assert_fails(rapid_fits_verify_checksums(bad, &err), err, RAPID_E_FITS,
                 bad);
    assert_non_null(strstr(err.msg, "CHECKSUM"));
}

/* ------------------------------------------------------------ atomic writes */

static void test_abort_leaves_nothing(void **state)
{
    const char *dir = subdir("abort");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    make_image(&img, 20, 10, 3);
    assert_ok(rapid_fits_create(&out, in_dir(dir, "a.fits"), &err), err);
    assert_ok(rapid_fits_append_image(out, &img, NULL, &err), err);
    /* Nothing is visible under the final name before the commit. */
    assert_int_equal(access(in_dir(dir, "a.fits"), F_OK), -1);
    rapid_fits_abort(out);
    assert_int_equal(test_count_entries(dir), 0);

    assert_ok(rapid_fits_create(&out, in_dir(dir, "a.fits.gz"), &err), err);
    assert_ok(rapid_fits_append_image(out, &img, "SCI", &err), err);
    rapid_fits_abort(out);
    assert_int_equal(test_count_entries(dir), 0);

    assert_ok(rapid_fits_create(&out, in_dir(dir, "empty.fits"), &err), err);
    rapid_fits_abort(out);
    rapid_fits_abort(NULL);
    assert_int_equal(test_count_entries(dir), 0);
    rapid_image_release(&img);
}

static void test_failed_writes_leave_nothing(void **state)
{
    const char *dir = subdir("failed");
    const char *target = subdir("failed/target.fits");
    const char *nodir = test_path("no-such-dir/x.fits");
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    make_image(&img, 20, 10, 4);
    /* The final name is taken by a directory: the rename fails. */
    assert_ok(rapid_fits_create(&out, target, &err), err);
    assert_ok(rapid_fits_append_image(out, &img, NULL, &err), err);
    assert_fails(rapid_fits_commit(out, &err), err, RAPID_E_IO, target);
    assert_int_equal(test_count_entries(dir), 1);
    assert_int_equal(test_count_entries(target), 0);

    /* A card CFITSIO refuses: the append fails, and so does the commit. */
    assert_int_equal(rapid_header_append_card(&img.hdr, "bad key = 1"), 0);
    assert_ok(rapid_fits_create(&out, in_dir(dir, "b.fits"), &err), err);
    assert_fails(rapid_fits_append_image(out, &img, NULL, &err), err,
                 RAPID_E_FITS, in_dir(dir, "b.fits"));
    assert_non_null(strstr(err.msg, "bad key"));
    assert_fails(rapid_fits_set_primary_header(out, &h, &err), err,
                 RAPID_E_ARG, in_dir(dir, "b.fits"));
    assert_fails(rapid_fits_commit(out, &err), err, RAPID_E_ARG,
                 in_dir(dir, "b.fits"));
    assert_int_equal(test_count_entries(dir), 1);
    /* The same through the one-call writer. */
    assert_fails(rapid_fits_write_image(in_dir(dir, "c.fits.gz"), &img, NULL,
                                        &err),
                 err, RAPID_E_FITS, in_dir(dir, "c.fits.gz"));
    assert_int_equal(test_count_entries(dir), 1);

    assert_fails(rapid_fits_create(&out, nodir, &err), err, RAPID_E_IO, nodir);
    assert_null(out);
    assert_int_equal(rapid_fits_create(&out, "", &err), RAPID_E_ARG);
    rapid_image_release(&img);
}

static void test_gzip(void **state)
{
    const char *dir = subdir("gz");
    const char *path = in_dir(dir, "img.fits.gz");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    unsigned char magic[2] = {0};
    char cmd[2200];
    FILE *fp = NULL;

    (void)state;
    make_image(&img, 64, 48, 5);
    rapid_header_set_str(&img.hdr, "BUNIT", "DN", NULL);
    assert_ok(rapid_fits_write_image(path, &img, "SCI", &err), err);
    assert_int_equal(test_count_entries(dir), 1);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(magic, 1, 2, fp), 2);
    fclose(fp);
    assert_int_equal(magic[0], 0x1f);
    assert_int_equal(magic[1], 0x8b);
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_same_pixels(&img, &back);
    rapid_image_release(&back);
    assert_ok(rapid_fits_verify_checksums(path, &err), err);

    /* gunzip agrees, and the plain file reads the same. */
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' > '%s/plain.fits'", path, dir);
    if (system(cmd) == 0) {
        assert_ok(rapid_fits_read_image(in_dir(dir, "plain.fits"),
                                               "SCI", &back, &err), err);
        assert_same_pixels(&img, &back);
        rapid_image_release(&back);
        /* and a file gzipped by someone else, under any name */
        snprintf(cmd, sizeof cmd, "gzip -c '%s/plain.fits' > '%s/other'",
                 dir, dir);
        assert_int_equal(system(cmd), 0);
        assert_ok(rapid_fits_read_image(in_dir(dir, "other"), "1",
                                               &back, &err), err);
        assert_same_pixels(&img, &back);
        rapid_image_release(&back);
    }
    rapid_image_release(&img);
}

static void test_primary_header(void **state)
{
    const char *path = test_path("primary.fits");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_header ph = RAPID_HEADER_INIT, h = RAPID_HEADER_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;
    char s[80];

    (void)state;
    rapid_header_set_str(&ph, "ORIGIN", "rapid", NULL);
    rapid_header_set_str(&ph, "FILTER", "F158", NULL);
    make_image(&img, 8, 8, 6);
    rapid_header_set_str(&img.hdr, "FILTER", "F087", NULL);
    rapid_header_set_long(&img.hdr, "SCA", 3, NULL);

    /* With an EXTNAME the primary HDU holds only the given cards. */
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_set_primary_header(out, &ph, &err), err);
    assert_ok(rapid_fits_append_image(out, &img, "SCI", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_fits_read_header(path, "0", &h, &err), err);
    assert_int_equal(rapid_header_get_str(&h, "ORIGIN", s, sizeof s, NULL), 0);
    assert_string_equal(s, "rapid");
    assert_false(rapid_header_has(&h, "SCA"));
    rapid_header_release(&h);
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_int_equal(rapid_header_get_str(&back.hdr, "FILTER", s, sizeof s, NULL), 0);
    assert_string_equal(s, "F087");
    rapid_image_release(&back);

    /* Without one, the image is the primary HDU and gets both sets of
     * cards, the primary header's winning. */
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_set_primary_header(out, &ph, &err), err);
    assert_ok(rapid_fits_append_image(out, &img, NULL, &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_int_equal(rapid_header_get_str(&back.hdr, "FILTER", s, sizeof s, NULL), 0);
    assert_string_equal(s, "F158");
    assert_int_equal(count_cards(&back.hdr, "FILTER  "), 1);
    assert_true(rapid_header_has(&back.hdr, "SCA"));
    assert_true(rapid_header_has(&back.hdr, "ORIGIN"));
    rapid_image_release(&back);
    rapid_header_release(&ph);
    rapid_image_release(&img);
}

/* ------------------------------------------------------------------ tables */

static void fill_table(rapid_table *t, long n)
{
    double *ra = NULL;
    float *flux = NULL;
    int32_t *id = NULL;
    int64_t *big = NULL;
    char *name = NULL;
    long i;

    assert_int_equal(rapid_table_init(t, n), 0);
    assert_non_null(ra = rapid_table_add_f64(t, "ra", "deg"));
    assert_non_null(flux = rapid_table_add_f32(t, "flux", "DN/s"));
    assert_non_null(id = rapid_table_add_i32(t, "id", NULL));
    assert_non_null(big = rapid_table_add_i64(t, "sourceid", ""));
    assert_non_null(name = rapid_table_add_str(t, "name", 12));
    for (i = 0; i < n; i++) {
        ra[i] = i * 0.1 + 1e-9;
        flux[i] = i % 10 == 5 ? NAN : (float)i / 3.0f;
        id[i] = (int32_t)(i * 2147483L) - 1000000;
        big[i] = (int64_t)(i % 1000) * 9007199254740993LL; /* no overflow */
        snprintf(name + i * 12, 12, "src%d", (int)(i % 100000));
    }
    if (n > 2) {
        id[1] = INT32_MIN;
        id[2] = INT32_MAX;
        big[1] = INT64_MIN;
        big[2] = INT64_MAX;
        memcpy(name, "twelve chars", 12); /* full width: no NUL */
    }
    rapid_header_set_double(&t->hdr, "ZPTMAG", 26.1, "zero point");
    rapid_header_add_text(&t->hdr, "HISTORY", "made by test_fits");
}

static void check_column(const rapid_table *a, const rapid_table *b, int k)
{
    const rapid_column *x = &a->cols[k];
    const rapid_column *y = rapid_table_col(b, x->name);
    size_t size[] = {sizeof(double), sizeof(float), sizeof(int32_t),
                     sizeof(int64_t), 1};
    size_t n = (size_t)a->nrows * (x->type == RAPID_COL_STR
                                       ? (size_t)x->width
                                       : size[x->type]);

    assert_non_null(y);
    assert_int_equal(y->type, x->type);
    assert_int_equal(y->width, x->width);
    assert_string_equal(y->unit, x->unit);
    assert_non_null(y->data);
    /* NaN bits survive too, so bytes compare. */
    if (n)
        assert_memory_equal(x->data, y->data, n);
}

static void check_table(const rapid_table *a, const rapid_table *b)
{
    double d = 0;
    int k;

    assert_int_equal(b->nrows, a->nrows);
    assert_int_equal(b->ncols, a->ncols);
    for (k = 0; k < a->ncols; k++)
        check_column(a, b, k);
    assert_int_equal(rapid_header_get_double(&b->hdr, "ZPTMAG", &d, NULL), 0);
    assert_true(d == 26.1);
    assert_int_equal(count_cards(&b->hdr, "HISTORY made by test_fits"), 1);
    assert_false(rapid_header_has(&b->hdr, "TTYPE1"));
    assert_false(rapid_header_has(&b->hdr, "TFORM1"));
    assert_false(rapid_header_has(&b->hdr, "TFIELDS"));
    assert_false(rapid_header_has(&b->hdr, "NAXIS2"));
    assert_false(rapid_header_has(&b->hdr, "CHECKSUM"));
}

static void table_round_trip(long nrows)
{
    const char *path = test_path("table.fits");
    rapid_table t = RAPID_TABLE_INIT, back = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const char *hdus[] = {NULL, "", "1", "cat", "CAT"};
    char s[80];
    int i;

    fill_table(&t, nrows);
    assert_ok(rapid_fits_write_table(path, &t, "CAT", &err), err);
    assert_ok(rapid_fits_verify_checksums(path, &err), err);
    for (i = 0; i < 5; i++) {
        assert_ok(rapid_fits_read_table(path, hdus[i], &back, &err), err);
        check_table(&t, &back);
        assert_int_equal(rapid_header_get_str(&back.hdr, "EXTNAME", s, sizeof s, NULL), 0);
        assert_string_equal(s, "CAT");
        rapid_table_release(&back);
    }
    assert_fails(rapid_fits_read_table(path, "0", &back, &err), err,
                 RAPID_E_TABLE, path);
    assert_fails(rapid_fits_read_table(path, "2", &back, &err), err,
                 RAPID_E_NOHDU, path);
    rapid_table_release(&t);
}

static void test_table_round_trip(void **state)
{
    (void)state;
    table_round_trip(1000);
    table_round_trip(20011); /* written in several blocks of rows */
    table_round_trip(3);
    table_round_trip(0);
}

static void test_table_api(void **state)
{
    rapid_table t = RAPID_TABLE_INIT;
    const rapid_column *c = NULL;

    (void)state;
    assert_int_equal(rapid_table_init(&t, -1), RAPID_E_ARG);
    assert_int_equal(rapid_table_init(&t, 0), 0);
    assert_non_null(rapid_table_add_f64(&t, "x", "m"));
    assert_null(rapid_table_add_str(&t, "s", 0));
    assert_null(rapid_table_add_f32(&t, "", NULL));
    assert_null(rapid_table_add_f32(&t, NULL, NULL));
    assert_int_equal(t.ncols, 1);
    c = rapid_table_col(&t, "X");
    assert_non_null(c);
    assert_string_equal(c->unit, "m");
    assert_null(rapid_table_col(&t, "y"));
    rapid_table_release(&t);
    assert_int_equal(t.ncols, 0);
    rapid_table_release(&t);
}

/* A table with every scalar type FITS has, and some it has that we skip. */
static void write_raw_table(const char *path)
{
    char *ttype[] = {"flag", "b", "i", "j", "k", "e", "d", "name", "vec",
                     "bits"};
    char *tform[] = {"1L", "1B", "1I", "1J", "1K", "1E", "1D", "6A", "3E",
                     "8X"};
    char l[2] = {1, 0}, *names[2] = {"abc", "abcdef"};
    unsigned char b[2] = {7, 255};
    short i16[2] = {-3, 32767};
    int i32[2] = {-5, 2147483647};
    long long i64[2] = {-1, 4611686018427387904LL};
    float e[2] = {1.5f, NAN}, vec[6] = {1, 2, 3, 4, 5, 6};
    double d[2] = {0.1, -2e300};
    fitsfile *f = raw_create(path);
    int status = 0;

    fits_create_img(f, BYTE_IMG, 0, NULL, &status);
    fits_create_tbl(f, BINARY_TBL, 2, 10, ttype, tform, NULL, "RAW", &status);
    fits_write_col(f, TLOGICAL, 1, 1, 1, 2, l, &status);
    fits_write_col(f, TBYTE, 2, 1, 1, 2, b, &status);
    fits_write_col(f, TSHORT, 3, 1, 1, 2, i16, &status);
    fits_write_col(f, TINT, 4, 1, 1, 2, i32, &status);
    fits_write_col(f, TLONGLONG, 5, 1, 1, 2, i64, &status);
    fits_write_col(f, TFLOAT, 6, 1, 1, 2, e, &status);
    fits_write_col(f, TDOUBLE, 7, 1, 1, 2, d, &status);
    fits_write_col(f, TSTRING, 8, 1, 1, 2, names, &status);
    fits_write_col(f, TFLOAT, 9, 1, 1, 6, vec, &status);
    fits_write_key_str(f, "TUNIT7", "deg", NULL, &status);
    assert_int_equal(status, 0);
    raw_close(f);
}

static void test_table_read_types(void **state)
{
    const char *path = test_path("rawtable.fits");
    rapid_table t = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const rapid_column *c = NULL;

    (void)state;
    write_raw_table(path);
    assert_ok(rapid_fits_read_table(path, NULL, &t, &err), err);
    assert_int_equal(t.nrows, 2);
    assert_int_equal(t.ncols, 8); /* the vector and bit columns are skipped */
    assert_null(rapid_table_col(&t, "vec"));
    assert_null(rapid_table_col(&t, "bits"));
    c = rapid_table_col(&t, "FLAG");
    assert_int_equal(c->type, RAPID_COL_I32);
    assert_int_equal(((int32_t *)c->data)[0], 1);
    assert_int_equal(((int32_t *)c->data)[1], 0);
    c = rapid_table_col(&t, "b");
    assert_int_equal(c->type, RAPID_COL_I32);
    assert_int_equal(((int32_t *)c->data)[1], 255);
    c = rapid_table_col(&t, "i");
    assert_int_equal(c->type, RAPID_COL_I32);
    assert_int_equal(((int32_t *)c->data)[0], -3);
    c = rapid_table_col(&t, "j");
    assert_int_equal(c->type, RAPID_COL_I32);
    assert_int_equal(((int32_t *)c->data)[1], 2147483647);
    c = rapid_table_col(&t, "k");
    assert_int_equal(c->type, RAPID_COL_I64);
    assert_true(((int64_t *)c->data)[1] == 4611686018427387904LL);
    c = rapid_table_col(&t, "e");
    assert_int_equal(c->type, RAPID_COL_F32);
    assert_float_equal(((float *)c->data)[0], 1.5f, 0);
    assert_true(isnan(((float *)c->data)[1]));
    c = rapid_table_col(&t, "d");
    assert_int_equal(c->type, RAPID_COL_F64);
    assert_true(((double *)c->data)[1] == -2e300);
    assert_string_equal(c->unit, "deg");
    c = rapid_table_col(&t, "name");
    assert_int_equal(c->type, RAPID_COL_STR);
    assert_int_equal(c->width, 6);
    assert_memory_equal(c->data, "abc\0\0\0abcdef", 12);
    rapid_table_release(&t);
}

static void test_several_hdus_one_file(void **state)
{
    const char *path = test_path("mixed.fits");
    rapid_table a = RAPID_TABLE_INIT, b = RAPID_TABLE_INIT;
    rapid_table back = RAPID_TABLE_INIT;
    rapid_image img = RAPID_IMAGE_INIT, iback = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    fill_table(&a, 10);
    fill_table(&b, 20);
    make_image(&img, 30, 20, 7);
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_table(out, &a, "FIRST", &err), err);
    assert_ok(rapid_fits_append_table(out, &b, "SECOND", &err), err);
    assert_ok(rapid_fits_append_image(out, &img, "IMG", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_fits_verify_checksums(path, &err), err);
    assert_ok(rapid_fits_read_table(path, NULL, &back, &err), err);
    assert_int_equal(back.nrows, 10);
    rapid_table_release(&back);
    assert_ok(rapid_fits_read_table(path, "second", &back, &err), err);
    check_table(&b, &back);
    rapid_table_release(&back);
    assert_fails(rapid_fits_read_table(path, "IMG", &back, &err), err,
                 RAPID_E_TABLE, path);
    assert_ok(rapid_fits_read_image(path, NULL, &iback, &err), err);
    assert_same_pixels(&img, &iback);
    rapid_image_release(&iback);
    rapid_image_release(&img);
    rapid_table_release(&a);
    rapid_table_release(&b);
}

static void test_table_truncated(void **state)
{
    const char *path = test_path("bigtable.fits");
    const char *cut = test_path("cut-table.fits");
    rapid_table t = RAPID_TABLE_INIT, back = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    fill_table(&t, 1000);
    assert_ok(rapid_fits_write_table(path, &t, NULL, &err), err);
    copy_prefix(path, cut, data_offset(path, 1) + 5000);
    assert_fails(rapid_fits_read_table(cut, NULL, &back, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_int_equal(back.ncols, 0);
    rapid_table_release(&t);
}

/* ------------------------------------------------------------- fitsverify */

/* Warnings count as failures: fitsverify -q exits non-zero on either. */
static void run_fitsverify(const char *path)
{
    char cmd[1200];

    snprintf(cmd, sizeof cmd, "fitsverify -q '%s' >/dev/null", path);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "fitsverify '%s'", path);
        if (system(cmd) != 0)
            fprintf(stderr, "(fitsverify exited non-zero)\n");
        fail_msg("fitsverify rejects %s", path);
    }
}

static void test_fitsverify(void **state)
{
    const char *path = test_path("verify.fits");
    const char *gz = test_path("verify.fits.gz");
    rapid_image img = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_table t = RAPID_TABLE_INIT;
    rapid_header ph = RAPID_HEADER_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;
    char longval[300];

    (void)state;
    if (system("command -v fitsverify >/dev/null 2>&1") != 0) {
        skip();
        return;
    }
    make_long_value(longval, sizeof longval);
    make_image(&img, 50, 40, 8);
    fill_header(&img.hdr, longval);
    fill_table(&t, 100);
    rapid_header_set_str(&ph, "ORIGIN", "rapid test", NULL);
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_set_primary_header(out, &ph, &err), err);
    assert_ok(rapid_fits_append_image(out, &img, "SCI", &err), err);
    assert_ok(rapid_fits_append_table(out, &t, "CAT", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    run_fitsverify(path);
    /* a lone primary image, then the same read back and written gzipped */
    assert_ok(rapid_fits_write_image(path, &img, NULL, &err), err);
    run_fitsverify(path);
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_false(rapid_header_has(&back.hdr, "LONGSTRN"));
    assert_ok(rapid_fits_write_image(gz, &back, NULL, &err), err);
    run_fitsverify(gz);
    rapid_image_release(&back);
    /* an empty table */
    rapid_table_release(&t);
    fill_table(&t, 0);
    assert_ok(rapid_fits_write_table(path, &t, NULL, &err), err);
    run_fitsverify(path);
    rapid_header_release(&ph);
    rapid_table_release(&t);
    rapid_image_release(&img);
}

/* Re-reading into an image keeps its pixel buffer when the size matches,
 * takes a new one when not, and leaves nothing behind on failure. */
static void test_reread(void **state)
{
    const char *a = test_path("reread_a.fits"), *b = test_path("reread_b.fits");
    const char *c = test_path("reread_c.fits");
    rapid_image ia = RAPID_IMAGE_INIT, ib = RAPID_IMAGE_INIT, ic = RAPID_IMAGE_INIT;
    rapid_image r = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const float *buf;

    (void)state;
    make_image(&ia, 31, 17, 1);
    make_image(&ib, 31, 17, 2);
    make_image(&ic, 20, 9, 3);
    rapid_header_set_str(&ib.hdr, "WHICH", "b", NULL);
    assert_ok(rapid_fits_write_image(a, &ia, NULL, &err), err);
    assert_ok(rapid_fits_write_image(b, &ib, NULL, &err), err);
    assert_ok(rapid_fits_write_image(c, &ic, NULL, &err), err);
    assert_ok(rapid_fits_reread_image(a, NULL, &r, &err), err); /* from INIT */
    assert_same_pixels(&ia, &r);
    buf = r.data;
    assert_ok(rapid_fits_reread_image(b, NULL, &r, &err), err);
    assert_ptr_equal(r.data, buf); /* same size: the same buffer */
    assert_same_pixels(&ib, &r);
    assert_int_equal(r.hdr.ncards, ib.hdr.ncards); /* the new header only */
    assert_ok(rapid_fits_reread_image(c, NULL, &r, &err), err);
    assert_same_pixels(&ic, &r);
    assert_int_equal(rapid_fits_reread_image(test_path("reread_none.fits"), NULL, &r,
                                             &err), RAPID_E_NOENT);
    assert_non_null(strstr(err.msg, "reread_none.fits"));
    assert_null(r.data);
    assert_int_equal(r.nx, 0);
    rapid_image_release(&r);
    rapid_image_release(&ia);
    rapid_image_release(&ib);
    rapid_image_release(&ic);
}

/* ------------------------------------------ float32 images read directly */

/* Unscaled float32 images in plain files are read with pread() and
 * converted by lib/core/fits.c itself; anything else goes through
 * fits_read_img.  This program is linked with pread wrapped
 * (tests/CMakeLists.txt), so that these tests see which way a file went
 * and can make the reads come back short or fail, as a disk may. */
ssize_t __real_pread(int fd, void *buf, size_t n, off_t offset);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t offset);

static struct {
    int calls;       /* pread calls so far */
    int eintr_every; /* every k-th call is interrupted (0: none) */
    size_t most;     /* bytes one call returns at most (0: all asked for) */
    int fail_from;   /* this call and all later ones fail (0: none) ... */
    int fail_errno;  /* ... with this errno, or return 0 (end of file) */
} preads;

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t offset)
{
    int k = ++preads.calls;

    if (preads.fail_from && k >= preads.fail_from) {
        errno = preads.fail_errno;
        return preads.fail_errno ? -1 : 0;
    }
    if (preads.eintr_every && k % preads.eintr_every == 0) {
        errno = EINTR;
        return -1;
    }
    if (preads.most && n > preads.most)
        n = preads.most;
    return __real_pread(fd, buf, n, offset);
}

static void preads_reset(void)
{
    memset(&preads, 0, sizeof preads);
}

static uint32_t float_bits(float v)
{
    uint32_t w;

    memcpy(&w, &v, sizeof w);
    return w;
}

/* The test image: more pixels than the reader converts at a time (1 MiB
 * of them), and a count that is no multiple of a vector. */
enum { RAW_NX = 1031, RAW_NY = 263, RAW_N = RAW_NX * RAW_NY };

/* Stored words of a float32 image (host order): every kind of value that
 * CFITSIO treats specially, at the start, in the middle and at the end,
 * between random words (which hold them all again: 1 in 256 has its
 * exponent bits all set, 1 in 256 all clear). */
static uint32_t *special_words(uint64_t seed)
{
    const float named[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 1e-45f, -1e-45f,
                           FLT_MIN, -FLT_MIN, FLT_MIN / 2, FLT_MAX, -FLT_MAX,
                           INFINITY, -INFINITY, NAN, -NAN, 1.0f, -3.25f};
    /* NaN payloads, quiet and signalling, and the extreme denormals */
    const uint32_t raw[] = {0x7f800001u, 0x7fbfffffu, 0x7fc12345u,
                            0xffc00001u, 0xff800001u, 0xffffffffu,
                            0x007fffffu, 0x807fffffu, 0x00000001u};
    const int nn = sizeof named / sizeof named[0];
    const int nr = sizeof raw / sizeof raw[0];
    uint32_t *w = malloc((size_t)RAW_N * sizeof *w);
    int i;

    assert_non_null(w);
    for (i = 0; i < RAW_N; i++)
        w[i] = (uint32_t)(test_uniform(&seed) * 4294967296.0);
    for (i = 0; i < nn + nr; i++) {
        uint32_t v = i < nn ? float_bits(named[i]) : raw[i - nn];
        w[i] = w[RAW_N / 2 + i] = w[RAW_N - 1 - i] = v;
    }
    return w;
}

/* A RAW_NX x RAW_NY float32 image whose data unit holds exactly the words
 * w: CFITSIO writes the header and zeros, which are then overwritten, so
 * that no library touches the values on the way.  ext: the image is an
 * extension after a small primary image.  bscale, bzero: keywords to
 * write (NAN: none). */
static void write_raw_floats(const char *path, const uint32_t *w, int ext,
                             double bscale, double bzero)
{
    long naxes[2] = {RAW_NX, RAW_NY};
    unsigned char *be = malloc((size_t)RAW_N * 4);
    float *zeros = calloc(RAW_N, sizeof *zeros);
    float small[6] = {1, 2, 3, 4, 5, 6};
    fitsfile *f = raw_create(path);
    int status = 0, fd, i;

    assert_non_null(be);
    assert_non_null(zeros);
    if (ext)
        raw_image(f, FLOAT_IMG, TFLOAT, small, 1.0, 0.0, 0);
    fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
    if (!isnan(bscale))
        fits_write_key_dbl(f, "BSCALE", bscale, -15, NULL, &status);
    if (!isnan(bzero))
        fits_write_key_dbl(f, "BZERO", bzero, -15, NULL, &status);
    fits_write_key_str(f, "BUNIT", "DN/s", NULL, &status);
    fits_set_bscale(f, 1.0, 0.0, &status);
    fits_write_img(f, TFLOAT, 1, RAW_N, zeros, &status);
    assert_int_equal(status, 0);
    raw_close(f);
    for (i = 0; i < RAW_N; i++) {
        be[4 * i] = (unsigned char)(w[i] >> 24);
        be[4 * i + 1] = (unsigned char)(w[i] >> 16);
        be[4 * i + 2] = (unsigned char)(w[i] >> 8);
        be[4 * i + 3] = (unsigned char)w[i];
    }
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, be, (size_t)RAW_N * 4, data_offset(path, ext)),
                     RAW_N * 4);
    assert_int_equal(close(fd), 0);
    free(be);
    free(zeros);
}

/* The n pixels of HDU hdu (0 = primary) as CFITSIO reads them: TFLOAT
 * with NaN for null pixels, as lib/core/fits.c did before it read floats
 * itself.  status: receives CFITSIO's status (NULL: it must be 0); the
 * result is NULL when the read fails. */
static float *cfitsio_pixels(const char *path, int hdu, long n, int *status)
{
    float *v = malloc((size_t)n * sizeof *v), nulval = NAN;
    fitsfile *f = NULL;
    int st = 0, st2 = 0, anynul = 0;

    assert_non_null(v);
    fits_open_diskfile(&f, path, READONLY, &st);
    fits_movabs_hdu(f, hdu + 1, NULL, &st);
    fits_read_img(f, TFLOAT, 1, n, &nulval, v, &anynul, &st);
    if (f)
        fits_close_file(f, &st2);
    fits_clear_errmsg();
    if (!status && st)
        fail_msg("CFITSIO cannot read %s[%d]: status %d", path, hdu, st);
    if (status)
        *status = st;
    if (st) {
        free(v);
        return NULL;
    }
    return v;
}

/* Bit for bit the same floats, NaNs included; shows the first
 * difference. */
static void assert_same_bits(const float *got, const float *want, long n,
                             const char *what)
{
    long i;

    for (i = 0; i < n; i++)
        if (float_bits(got[i]) != float_bits(want[i]))
            fail_msg("%s: pixel %ld is 0x%08x (%g), CFITSIO gives 0x%08x (%g)",
                     what, i, (unsigned)float_bits(got[i]), (double)got[i],
                     (unsigned)float_bits(want[i]), (double)want[i]);
}

/* rapid_fits_read_image of path[hdu] gives CFITSIO's bits for that HDU
 * (number index); direct: whether it must have read the file itself (1)
 * or through CFITSIO (0). */
static void check_like_cfitsio(const char *path, const char *hdu, int index,
                               int direct)
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    float *want;
    long n;

    preads_reset();
    assert_ok(rapid_fits_read_image(path, hdu, &img, &err), err);
    if (direct ? preads.calls == 0 : preads.calls != 0)
        fail_msg("%s: read %s (%d pread calls)", path,
                 direct ? "through CFITSIO, not directly"
                        : "directly, not through CFITSIO", preads.calls);
    n = (long)img.nx * img.ny;
    want = cfitsio_pixels(path, index, n, NULL);
    assert_same_bits(img.data, want, n, path);
    assert_no_layout_cards(&img.hdr);
    free(want);
    rapid_image_release(&img);
}

/* What CFITSIO makes of a stored word when it reads it as TFLOAT with a
 * NaN null value (fffr4r4, null checking on): exponent bits all set (NaN,
 * +-inf) give the null value, all clear (+-0, denormals) give +0. */
static uint32_t cfitsio_semantics(uint32_t w)
{
    uint32_t e = w & 0x7f800000u;

    return e == 0x7f800000u ? float_bits(NAN) : e == 0 ? 0 : w;
}

static void test_float_direct(void **state)
{
    const char *path = test_path("direct.fits");
    const char *ext = test_path("direct_ext.fits");
    const char *unit = test_path("direct_unit.fits");
    const char *other = test_path("direct_other.fits");
    uint32_t *w = special_words(11);
    rapid_image img = RAPID_IMAGE_INIT, o = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const float *buf;
    float *want;
    long i, swapped = 0;
    char s[80];

    (void)state;
    write_raw_floats(path, w, 0, NAN, NAN);
    write_raw_floats(ext, w, 1, NAN, NAN);
    /* CFITSIO does what we say it does, and that is more than a byte
     * swap: a reader that only swapped bytes fails the checks below. */
    want = cfitsio_pixels(path, 0, RAW_N, NULL);
    for (i = 0; i < RAW_N; i++) {
        if (float_bits(want[i]) != cfitsio_semantics(w[i]))
            fail_msg("CFITSIO reads stored 0x%08x as 0x%08x", (unsigned)w[i],
                     (unsigned)float_bits(want[i]));
        swapped += float_bits(want[i]) == w[i];
    }
    assert_true(RAW_N - swapped > 300);
    free(want);

    check_like_cfitsio(path, NULL, 0, 1);
    check_like_cfitsio(ext, "1", 1, 1);
    check_like_cfitsio(ext, "0", 0, 1); /* the small primary image */
    /* BSCALE = 1 and BZERO = 0 written out scale nothing */
    write_raw_floats(unit, w, 0, 1.0, 0.0);
    check_like_cfitsio(unit, NULL, 0, 1);
    /* the header is still read after the pixels */
    assert_ok(rapid_fits_read_image(ext, "1", &img, &err), err);
    assert_ok(rapid_header_get_str(&img.hdr, "BUNIT", s, sizeof s, &err),
              err);
    assert_string_equal(s, "DN/s");
    rapid_image_release(&img);

    /* Re-reading into an image of the same size keeps its buffer, and
     * overwrites every pixel. */
    make_image(&o, RAW_NX, RAW_NY, 3);
    assert_ok(rapid_fits_write_image(other, &o, NULL, &err), err);
    assert_ok(rapid_fits_reread_image(other, NULL, &img, &err), err);
    assert_same_pixels(&o, &img);
    buf = img.data;
    preads_reset();
    assert_ok(rapid_fits_reread_image(ext, "1", &img, &err), err);
    assert_true(preads.calls > 0);
    assert_ptr_equal(img.data, buf);
    want = cfitsio_pixels(ext, 1, RAW_N, NULL);
    assert_same_bits(img.data, want, RAW_N, "re-read");
    assert_ok(rapid_fits_reread_image(other, NULL, &img, &err), err);
    assert_ptr_equal(img.data, buf);
    assert_same_pixels(&o, &img);
    free(want);
    free(w);
    rapid_image_release(&img);
    rapid_image_release(&o);
}

/* Interrupted and short reads change nothing; a failed or early-ending
 * read is an error that names the file and leaves no image. */
static void test_float_direct_io(void **state)
{
    const char *path = test_path("direct_io.fits");
    uint32_t *w = special_words(12);
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    float *want;

    (void)state;
    write_raw_floats(path, w, 0, NAN, NAN);
    want = cfitsio_pixels(path, 0, RAW_N, NULL);

    preads_reset();
    preads.most = 1001; /* not even whole pixels */
    preads.eintr_every = 3;
    assert_ok(rapid_fits_read_image(path, NULL, &img, &err), err);
    assert_true(preads.calls > RAW_N * 4 / 1001);
    assert_same_bits(img.data, want, RAW_N, "short reads");

    preads_reset();
    preads.most = 4096;
    preads.fail_from = 2;
    preads.fail_errno = EIO;
    assert_fails(rapid_fits_reread_image(path, NULL, &img, &err), err,
                 RAPID_E_IO, path);
    assert_non_null(strstr(err.msg, "cannot read pixels"));
    assert_non_null(strstr(err.msg, strerror(EIO)));
    assert_null(img.data);

    /* the file cut short while it is read */
    preads_reset();
    preads.most = 4096;
    preads.fail_from = 3;
    assert_fails(rapid_fits_read_image(path, NULL, &img, &err), err,
                 RAPID_E_TRUNCATED, path);
    assert_non_null(strstr(err.msg, "cannot read pixels"));
    assert_non_null(strstr(err.msg, "truncated"));
    assert_null(img.data);
    preads_reset();
    free(want);
    free(w);
}

/* Append an image of incompressible pixels to path. */
static void append_noise(const char *path, const uint32_t *w)
{
    long naxes[2] = {RAW_NX, RAW_NY};
    float *v = malloc(RAW_N * sizeof *v);
    fitsfile *f = NULL;
    int status = 0;

    assert_non_null(v);
    memcpy(v, w, RAW_N * sizeof *v);
    fits_open_diskfile(&f, path, READWRITE, &status);
    fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
    fits_write_img(f, TFLOAT, 1, RAW_N, v, &status);
    assert_int_equal(status, 0);
    raw_close(f);
    free(v);
}

/* Scaled, integer, gzipped, tile-compressed and 3-D images go through
 * CFITSIO, and read as before. */
static void test_float_not_direct(void **state)
{
    const char *path = test_path("scaled.fits");
    const char *gz = test_path("twice.fits.gz");
    uint32_t *w = special_words(13);
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    short s16[6] = {0, 1, -2, -999, 32767, -32768};
    long naxes[2] = {RAW_NX, RAW_NY};
    float *v = malloc(RAW_N * sizeof *v);
    char cmd[2200];
    fitsfile *f = NULL;
    int status = 0;

    (void)state;
    assert_non_null(v);
    w[100] = float_bits(3.0f);
    write_raw_floats(path, w, 0, 2.0, 1.0);
    check_like_cfitsio(path, NULL, 0, 0);
    assert_ok(rapid_fits_read_image(path, NULL, &img, &err), err);
    assert_float_equal(img.data[100], 7.0f, 0);
    rapid_image_release(&img);
    write_raw_floats(path, w, 1, 0.5, NAN); /* BSCALE alone */
    check_like_cfitsio(path, "1", 1, 0);
    write_raw_floats(path, w, 1, NAN, -0.5); /* BZERO alone */
    check_like_cfitsio(path, "1", 1, 0);

    /* gzipped, under any name: CFITSIO decompresses into memory.  The
     * second image makes the file longer than the first one's data unit
     * even compressed, so that only the driver tells. */
    path = test_path("twice.fits");
    write_raw_floats(path, w, 0, NAN, NAN);
    append_noise(path, w);
    snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s' && cp '%s' '%s'", path,
             gz, gz, test_path("twice"));
    if (system(cmd) == 0) {
        assert_true(file_size(gz) > data_offset(path, 1));
        check_like_cfitsio(gz, "0", 0, 0);
        check_like_cfitsio(test_path("twice"), "0", 0, 0);
    }

    path = test_path("short.fits");
    f = raw_create(path);
    raw_image(f, SHORT_IMG, TSHORT, s16, 1.0, 0.0, -999);
    raw_close(f);
    check_like_cfitsio(path, NULL, 0, 0);

    path = test_path("flat3d.fits");
    write_cube(path, 3, 1);
    check_like_cfitsio(path, NULL, 0, 0);

    /* losslessly tile-compressed floats (quantize level 0 with GZIP) */
    path = test_path("tiled.fits");
    memcpy(v, w, RAW_N * sizeof *v);
    f = raw_create(path);
    fits_set_compression_type(f, GZIP_1, &status);
    fits_set_quantize_level(f, 0.0f, &status);
    fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
    fits_write_img(f, TFLOAT, 1, RAW_N, v, &status);
    assert_int_equal(status, 0);
    raw_close(f);
    check_like_cfitsio(path, NULL, 1, 0);
    free(v);
    free(w);
}

/* A cut file: in the data unit, CFITSIO's error; with only the padding
 * after the data missing, whatever CFITSIO makes of it (it reads large
 * images, not small ones). */
static void test_float_direct_truncated(void **state)
{
    const char *path = test_path("whole.fits");
    const char *cut = test_path("cut_floats.fits");
    uint32_t *w = special_words(14);
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    long data0, data1, ends[2];
    float *want;
    int k, status = 0, rc;

    (void)state;
    write_raw_floats(path, w, 1, NAN, NAN);
    data0 = data_offset(path, 0);
    data1 = data_offset(path, 1);
    copy_prefix(path, cut, data1 + 5000);
    preads_reset();
    assert_fails(rapid_fits_read_image(cut, "1", &img, &err), err,
                 RAPID_E_TRUNCATED, cut);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(preads.calls, 0); /* known before reading */
    assert_null(img.data);

    ends[0] = data0 + 6 * 4;
    ends[1] = data1 + RAW_N * 4;
    for (k = 0; k < 2; k++) {
        char hdu[2] = {(char)('0' + k), '\0'};
        long n = k ? RAW_N : 6;

        copy_prefix(path, cut, ends[k]);
        want = cfitsio_pixels(cut, k, n, &status);
        rc = rapid_fits_read_image(cut, hdu, &img, &err);
        if (status) {
            assert_fails(rc, err, RAPID_E_TRUNCATED, cut);
        } else {
            assert_ok(rc, err);
            assert_same_bits(img.data, want, n, "no padding");
        }
        free(want);
        rapid_image_release(&img);
    }
    free(w);
}

static void test_image_alloc(void **state)
{
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_ok(rapid_image_alloc(&img, 3, 2, NAN, &err), err);
    assert_true(isnan(img.data[5]));
    rapid_image_release(&img);
    assert_null(img.data);
    rapid_image_release(&img);
    assert_int_equal(rapid_image_alloc(&img, 0, 2, 0, &err), RAPID_E_ARG);
    assert_int_equal(rapid_image_alloc(&img, 2, -1, 0, &err), RAPID_E_ARG);
    assert_null(img.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_alloc),
        cmocka_unit_test(test_reread),
        cmocka_unit_test(test_float_image_round_trip),
        cmocka_unit_test(test_extension_round_trip),
        cmocka_unit_test(test_integer_images),
        cmocka_unit_test(test_hdu_by_number_and_name),
        cmocka_unit_test(test_default_hdu),
        cmocka_unit_test(test_not_2d),
        cmocka_unit_test(test_missing_and_directory),
        cmocka_unit_test(test_not_fits),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_abort_leaves_nothing),
        cmocka_unit_test(test_failed_writes_leave_nothing),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_primary_header),
        cmocka_unit_test(test_table_api),
        cmocka_unit_test(test_table_round_trip),
        cmocka_unit_test(test_table_read_types),
        cmocka_unit_test(test_several_hdus_one_file),
        cmocka_unit_test(test_table_truncated),
        cmocka_unit_test(test_fitsverify),
        cmocka_unit_test(test_stamp),
        cmocka_unit_test(test_float_direct),
        cmocka_unit_test(test_float_direct_io),
        cmocka_unit_test(test_float_not_direct),
        cmocka_unit_test(test_float_direct_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
