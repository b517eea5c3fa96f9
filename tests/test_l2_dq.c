/* test_l2_dq.c - L2 files with ERR and DQ extensions downstream: the
 * integer images of the FITS layer, the DQ mask, the coadd (a flagged
 * pixel is never used, whatever it holds; ERR gives the input's noise) and
 * ingest (ERR and DQ checked); files without them as before. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rapid/coadd.h"
#include "rapid/dq.h"
#include "rapid/ingest.h"
#include "rapid/sim.h"
#include "rapid/tile.h"
#include "testutil.h"

#define NEPOCH 4
#define SIZE 256
#define GRID 300

static char simdir[400];
static char l2[NEPOCH][700];
static int64_t rtid;

/* ------------------------------------------------------- integer images */

static void test_u32_images(void **state)
{
    rapid_image_u32 a = RAPID_IMAGE_U32_INIT, b = RAPID_IMAGE_U32_INIT;
    rapid_image f = RAPID_IMAGE_INIT, back = RAPID_IMAGE_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;
    const char *path = test_path("u32.fits");
    uint32_t vals[] = {0, 1, 2, 1024, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    double bzero = 0;
    long bitpix = 0;
    int i;

    (void)state;
    assert_ok(rapid_image_u32_alloc(&a, 7, 3, 5, &err), err);
    for (i = 0; i < 21; i++)
        assert_true(a.data[i] == 5);
    for (i = 0; i < 7; i++)
        a.data[i] = vals[i];
    assert_ok(rapid_header_set_str(&a.hdr, "FOO", "bar", NULL), err);
    assert_ok(rapid_image_alloc(&f, 7, 3, 1.5f, &err), err);
    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_append_image(out, &f, "SCI", &err), err);
    assert_ok(rapid_fits_append_image_u32(out, &a, "DQ", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
    assert_ok(rapid_fits_verify_checksums(path, &err), err);
    assert_ok(rapid_fits_read_image_u32(path, "DQ", &b, &err), err);
    assert_true(b.nx == 7 && b.ny == 3);
    assert_memory_equal(a.data, b.data, 21 * sizeof *a.data);
    assert_true(rapid_header_has(&b.hdr, "FOO"));
    assert_false(rapid_header_has(&b.hdr, "BZERO")); /* structural */
    assert_ok(rapid_fits_read_header(path, "DQ", &h, &err), err);
    assert_ok(rapid_header_get_long(&h, "BITPIX", &bitpix, &err), err);
    assert_ok(rapid_header_get_double(&h, "BZERO", &bzero, &err), err);
    assert_true(bitpix == 32 && bzero == 2147483648.0);
    /* the float reader still finds SCI first; it reads DQ as floats too */
    assert_ok(rapid_fits_read_image(path, NULL, &back, &err), err);
    assert_true(back.data[0] == 1.5f);
    rapid_image_release(&back);
    assert_ok(rapid_fits_read_image(path, "DQ", &back, &err), err);
    assert_true(back.data[3] == 1024.0f && back.data[6] == 4294967295.0f);
    /* has_hdu */
    assert_int_equal(rapid_fits_has_hdu(path, "DQ", &err), 1);
    assert_int_equal(rapid_fits_has_hdu(path, "sci", &err), 1);
    assert_int_equal(rapid_fits_has_hdu(path, "ERR", &err), 0);
    assert_true(rapid_fits_has_hdu(test_path("none.fits"), "DQ", &err) < 0);
    /* no EXTNAME: refused; a float image with fractions: out of range */
    assert_ok(rapid_fits_create(&out, test_path("u32b.fits"), &err), err);
    assert_int_equal(rapid_fits_append_image_u32(out, &a, NULL, &err), RAPID_E_ARG);
    rapid_fits_abort(out);
    f.data[0] = -3;
    assert_ok(rapid_fits_write_image(test_path("neg.fits"), &f, "DQ", &err), err);
    rapid_image_u32_release(&b);
    assert_int_equal(rapid_fits_read_image_u32(test_path("neg.fits"), "DQ", &b, &err),
                     RAPID_E_RANGE);
    assert_non_null(strstr(err.msg, "neg.fits[DQ]"));
    assert_null(b.data);
    rapid_image_release(&f);
    rapid_image_release(&back);
    rapid_image_u32_release(&a);
    rapid_header_release(&h);
}

/* ----------------------------------------------------------- a survey */

typedef struct l2file {
    rapid_header prim;
    rapid_image sci, err;
    rapid_image_u32 dq;
} l2file;

static void l2_read(const char *path, l2file *f)
{
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_fits_read_header(path, "0", &f->prim, &err), err);
    assert_ok(rapid_fits_read_image(path, "SCI", &f->sci, &err), err);
    assert_ok(rapid_fits_read_image(path, "ERR", &f->err, &err), err);
    assert_ok(rapid_fits_read_image_u32(path, "DQ", &f->dq, &err), err);
}

/* with: 1 ERR, 2 DQ, 3 both, 0 SCI alone */
static void l2_write(const char *path, const l2file *f, int with)
{
    rapid_fits_out *out = NULL;
    rapid_err err = RAPID_ERR_INIT;

    assert_ok(rapid_fits_create(&out, path, &err), err);
    assert_ok(rapid_fits_set_primary_header(out, &f->prim, &err), err);
    assert_ok(rapid_fits_append_image(out, &f->sci, "SCI", &err), err);
    if (with & 1)
        assert_ok(rapid_fits_append_image(out, &f->err, "ERR", &err), err);
    if (with & 2)
        assert_ok(rapid_fits_append_image_u32(out, &f->dq, "DQ", &err), err);
    assert_ok(rapid_fits_commit(out, &err), err);
}

static void l2_release(l2file *f)
{
    rapid_header_release(&f->prim);
    rapid_image_release(&f->sci);
    rapid_image_release(&f->err);
    rapid_image_u32_release(&f->dq);
}

/* The inputs, changed by how(k, file), into simdir/<sub>/ (the PSFs are
 * found in ../psf). */
typedef void (*change_fn)(int k, l2file *f);

static void variant(const char *sub, change_fn how, int with,
                    char paths[NEPOCH][800])
{
    char dir[500];
    int k;

    snprintf(dir, sizeof dir, "%s/%.50s", simdir, sub);
    mkdir(dir, 0777);
    for (k = 0; k < NEPOCH; k++) {
        l2file f;
        const char *base = strrchr(l2[k], '/') + 1;
        memset(&f, 0, sizeof f);
        l2_read(l2[k], &f);
        if (how)
            how(k, &f);
        snprintf(paths[k], 800, "%s/%.200s", dir, base);
        l2_write(paths[k], &f, with);
        l2_release(&f);
    }
}

static void coadd(char paths[NEPOCH][800], rapid_coadd *out)
{
    rapid_coadd_input in[NEPOCH];
    rapid_coadd_opts o;
    rapid_err err = RAPID_ERR_INIT;
    int k;

    for (k = 0; k < NEPOCH; k++) {
        in[k].path = paths[k];
        in[k].psf_path = NULL;
    }
    rapid_coadd_opts_init(&o);
    o.size = GRID;
    o.nthreads = 1; /* the same order of sums every time */
    rapid_coadd_init(out);
    assert_ok(rapid_coadd_make(&o, rtid, "H158", in, NEPOCH, out, NULL, NULL,
                               &err),
              err);
}

static int same_image(const rapid_image *a, const rapid_image *b)
{
    return a->nx == b->nx && a->ny == b->ny &&
           memcmp(a->data, b->data, (size_t)a->nx * a->ny * sizeof(float)) == 0;
}

/* Unusable pixels get a huge value (the flag stays). */
static void poison(int k, l2file *f)
{
    size_t i, n = (size_t)f->sci.nx * f->sci.ny;

    (void)k;
    for (i = 0; i < n; i++)
        if (rapid_dq_unusable(f->dq.data[i]))
            f->sci.data[i] = 1e9f;
}

/* Unusable pixels and the neighbours of RAPID_DQ_GROW ones become NaN, as
 * a coadd leaves them out (and the file loses its DQ). */
static void to_nan(int k, l2file *f)
{
    int nx = f->sci.nx, ny = f->sci.ny, x, y, a, b;

    (void)k;
    for (y = 0; y < ny; y++)
        for (x = 0; x < nx; x++) {
            int out = rapid_dq_unusable(f->dq.data[(size_t)y * nx + x]);
            for (b = y - 1; b <= y + 1; b++)
                for (a = x - 1; a <= x + 1; a++)
                    out |= a >= 0 && b >= 0 && a < nx && b < ny &&
                           (f->dq.data[(size_t)b * nx + a] & RAPID_DQ_GROW);
            if (out)
                f->sci.data[(size_t)y * nx + x] = NAN;
        }
}

/* The first input's ERR ten times larger. */
static void noisy(int k, l2file *f)
{
    size_t i, n = (size_t)f->sci.nx * f->sci.ny;

    for (i = 0; k == 0 && i < n; i++)
        f->err.data[i] *= 10;
}

static int setup(void **state)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_err err = RAPID_ERR_INIT;
    int k, np;

    (void)state;
    rapid_sim_config_init(&c);
    c.seed = 29;
    c.size = SIZE;
    c.nscas = 1;
    c.epochs = NEPOCH;
    c.star_density = 30;
    snprintf(simdir, sizeof simdir, "%s", test_path("sim"));
    if (rapid_sim_run(&c, simdir, NULL, NULL, &err) ||
        (np = rapid_sim_plan(&c, &p, &err)) != NEPOCH) {
        fprintf(stderr, "sim: %s\n", err.msg);
        free(p);
        return -1;
    }
    for (k = 0; k < NEPOCH; k++) {
        char name[256];
        rapid_sim_l2_name(&c, &p[k], 1, name, sizeof name);
        snprintf(l2[k], sizeof l2[k], "%s/%.200s", simdir, name);
    }
    free(p);
    rtid = rapid_tile_rtid(RAPID_TILE_NSIDE, c.ra, c.dec);
    return 0;
}

/* A coadd never uses a flagged pixel: poisoned flagged pixels change
 * nothing, and flagged pixels (and the neighbours of RAPID_DQ_GROW ones)
 * set to NaN in files without DQ give the same reference bit for bit. */
static void test_coadd_honours_dq(void **state)
{
    static char orig[NEPOCH][800], bad[NEPOCH][800], nan[NEPOCH][800];
    rapid_coadd a, b, c;
    l2file f;
    long flagged = 0;
    size_t i;
    int k;

    (void)state;
    for (k = 0; k < NEPOCH; k++)
        memcpy(orig[k], l2[k], sizeof l2[k]);
    memset(&f, 0, sizeof f);
    l2_read(l2[0], &f);
    for (i = 0; i < (size_t)SIZE * SIZE; i++)
        flagged += rapid_dq_unusable(f.dq.data[i]);
    l2_release(&f);
    assert_true(flagged > 0.015 * SIZE * SIZE);
    variant("poisoned", poison, 3, bad);
    variant("nan", to_nan, 1, nan);
    coadd(orig, &a);
    coadd(bad, &b);
    coadd(nan, &c);
    assert_true(same_image(&a.image, &b.image));
    assert_true(same_image(&a.uncertainty, &b.uncertainty));
    assert_true(same_image(&a.coverage, &b.coverage));
    assert_true(a.meta.npixsat == b.meta.npixsat);
    assert_true(same_image(&a.image, &c.image));
    assert_true(same_image(&a.uncertainty, &c.uncertainty));
    for (i = 0; i < (size_t)GRID * GRID; i++)
        assert_true(isnan(a.image.data[i]) || fabsf(a.image.data[i]) < 1e5f);
    rapid_coadd_release(&a);
    rapid_coadd_release(&b);
    rapid_coadd_release(&c);
}

/* ERR, where present, sets an input's noise; without ERR and DQ the files
 * still coadd, on GAIN and RDNOISE, using every pixel. */
static void test_coadd_err_and_plain(void **state)
{
    static char orig[NEPOCH][800], loud[NEPOCH][800], plain[NEPOCH][800];
    static char plain_nan[NEPOCH][800];
    rapid_coadd a, b, c, d;
    size_t i;
    long diff = 0;
    int k;

    (void)state;
    for (k = 0; k < NEPOCH; k++)
        memcpy(orig[k], l2[k], sizeof l2[k]);
    variant("loud", noisy, 3, loud);
    variant("plain", NULL, 0, plain);
    variant("plain_nan", to_nan, 0, plain_nan);
    coadd(orig, &a);
    coadd(loud, &b);
    coadd(plain, &c);
    coadd(plain_nan, &d);
    /* one input ten times noisier: less weight, another image */
    assert_false(same_image(&a.image, &b.image));
    /* without DQ the flagged pixels are used: another image, with values */
    for (i = 0; i < (size_t)GRID * GRID; i++)
        diff += a.image.data[i] != c.image.data[i];
    assert_true(diff > 0);
    assert_int_equal(c.meta.nframes, NEPOCH);
    /* the same pixels as DQ leaves, on RDNOISE and GAIN instead of ERR:
     * the same sky and noise model (ERR is computed from them), so the
     * images agree closely */
    for (i = 0, diff = 0; i < (size_t)GRID * GRID; i++) {
        float x = a.image.data[i], y = d.image.data[i];
        assert_true(isnan(x) == isnan(y));
        if (!isnan(x))
            diff += fabsf(x - y) > 1e-3f * (fabsf(x) + 1);
    }
    assert_true(diff < GRID * GRID / 1000);
    rapid_coadd_release(&a);
    rapid_coadd_release(&b);
    rapid_coadd_release(&c);
    rapid_coadd_release(&d);
}

/* ---------------------------------------------------------------- ingest */

static void test_ingest_checks(void **state)
{
    static char plain[NEPOCH][800];
    rapid_l2file rec;
    rapid_err err = RAPID_ERR_INIT;
    l2file f;
    const char *p;
    FILE *fp;
    long size;

    (void)state;
    assert_ok(rapid_l2file_read(l2[0], &rec, &err), err);
    variant("plain_ingest", NULL, 0, plain);
    assert_ok(rapid_l2file_read(plain[0], &rec, &err), err);
    /* a DQ of the wrong size */
    memset(&f, 0, sizeof f);
    l2_read(l2[0], &f);
    rapid_image_u32_release(&f.dq);
    assert_ok(rapid_image_u32_alloc(&f.dq, SIZE, SIZE / 2, 0, &err), err);
    p = test_path("dq_size.fits");
    l2_write(p, &f, 3);
    assert_int_equal(rapid_l2file_read(p, &rec, &err), RAPID_E_FITS);
    assert_non_null(strstr(err.msg, "dq_size.fits[DQ]"));
    /* a DQ of floats */
    {
        rapid_fits_out *out = NULL;
        p = test_path("dq_float.fits");
        assert_ok(rapid_fits_create(&out, p, &err), err);
        assert_ok(rapid_fits_set_primary_header(out, &f.prim, &err), err);
        assert_ok(rapid_fits_append_image(out, &f.sci, "SCI", &err), err);
        assert_ok(rapid_fits_append_image(out, &f.err, "DQ", &err), err);
        assert_ok(rapid_fits_commit(out, &err), err);
        assert_int_equal(rapid_l2file_read(p, &rec, &err), RAPID_E_FITS);
        assert_non_null(strstr(err.msg, "DQ must hold integers"));
    }
    l2_release(&f);
    /* cut inside the DQ data, by a whole FITS block */
    p = test_path("dq_cut.fits");
    {
        char cmd[1600];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", l2[0], p);
        assert_int_equal(system(cmd), 0);
    }
    fp = fopen(p, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(p, size - 2880), 0);
    assert_int_equal(rapid_l2file_read(p, &rec, &err), RAPID_E_TRUNCATED);
    assert_non_null(strstr(err.msg, "[DQ]"));
}

/* The DQ mask on its own: flagged pixels NaN, JUMP_DET alone kept; a file
 * without DQ untouched. */
static void test_mask_file(void **state)
{
    rapid_image sci = RAPID_IMAGE_INIT, sci2 = RAPID_IMAGE_INIT;
    rapid_image_u32 dq = RAPID_IMAGE_U32_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_dq_counts n = {-1, -1, -1};
    static char plain[NEPOCH][800];
    long want = 0, jumps = 0, sat = 0;
    size_t i;

    (void)state;
    assert_ok(rapid_fits_read_image(l2[1], NULL, &sci, &err), err);
    assert_ok(rapid_fits_read_image_u32(l2[1], "DQ", &dq, &err), err);
    assert_ok(rapid_dq_mask_file(l2[1], &sci, &n, &err), err);
    for (i = 0; i < (size_t)SIZE * SIZE; i++) {
        assert_true(isnan(sci.data[i]) == rapid_dq_unusable(dq.data[i]));
        want += rapid_dq_unusable(dq.data[i]);
        sat += (dq.data[i] & RAPID_DQ_SATURATED) != 0;
        jumps += dq.data[i] == RAPID_DQ_JUMP_DET;
    }
    assert_true(n.unusable == want && want > 0 && jumps > 0);
    assert_true(n.saturated == sat && n.grown == 0);
    /* grown: also every pixel within one of a PERSISTENCE or JUMP_DET
     * one, by brute force */
    rapid_image_release(&sci);
    assert_ok(rapid_fits_read_image(l2[1], NULL, &sci, &err), err);
    assert_ok(rapid_dq_mask_file_grow(l2[1], &sci, RAPID_DQ_GROW, &n, &err), err);
    {
        long grown = 0;
        int x, y, a, b;
        for (y = 0; y < SIZE; y++)
            for (x = 0; x < SIZE; x++) {
                int near = 0;
                for (b = y - 1; b <= y + 1; b++)
                    for (a = x - 1; a <= x + 1; a++)
                        near |= a >= 0 && b >= 0 && a < SIZE && b < SIZE &&
                                (dq.data[(size_t)b * SIZE + a] & RAPID_DQ_GROW);
                i = (size_t)y * SIZE + x;
                assert_true(isnan(sci.data[i]) == (rapid_dq_unusable(dq.data[i]) || near));
                grown += near && !rapid_dq_unusable(dq.data[i]);
            }
        assert_true(n.unusable == want && n.grown == grown && grown > jumps);
    }
    /* two rules at once (the coadd's: PERSISTENCE by 2, JUMP_DET by 1)
     * make what the two rules one after the other make */
    {
        const rapid_dq_grow rules[2] = {{RAPID_DQ_PERSISTENCE, 2},
                                        {RAPID_DQ_JUMP_DET, 1}};
        rapid_image one = RAPID_IMAGE_INIT, two = RAPID_IMAGE_INIT;
        rapid_dq_counts n1, n2;
        long diff = 0, nan = 0;
        assert_ok(rapid_fits_read_image(l2[1], NULL, &one, &err), err);
        assert_ok(rapid_fits_read_image(l2[1], NULL, &two, &err), err);
        assert_ok(rapid_dq_mask_file_grow_by(l2[1], &one, RAPID_DQ_PERSISTENCE, 2,
                                             &n1, &err), err);
        assert_ok(rapid_dq_mask_file_grow_by(l2[1], &one, RAPID_DQ_JUMP_DET, 1,
                                             &n2, &err), err);
        assert_ok(rapid_dq_mask_file_rules(l2[1], &two, rules, 2, &n, &err), err);
        for (i = 0; i < (size_t)SIZE * SIZE; i++) {
            diff += memcmp(&one.data[i], &two.data[i], sizeof(float)) != 0;
            nan += isnan(two.data[i]);
        }
        assert_int_equal(diff, 0);
        assert_true(n.unusable == n1.unusable && n.saturated == n1.saturated);
        assert_int_equal(n.grown, n1.grown + n2.grown);
        assert_true(n2.grown > 0 && nan > want);
        /* a negative width in any rule is refused */
        {
            const rapid_dq_grow bad[2] = {{RAPID_DQ_PERSISTENCE, 2},
                                          {RAPID_DQ_JUMP_DET, -1}};
            assert_int_equal(rapid_dq_mask_file_rules(l2[1], &two, bad, 2, &n, &err),
                             RAPID_E_ARG);
        }
        rapid_image_release(&one);
        rapid_image_release(&two);
    }
    /* a negative width is refused, naming the file */
    assert_int_equal(rapid_dq_mask_file_grow_by(l2[1], &sci, RAPID_DQ_GROW, -1, &n, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, l2[1]));
    variant("plain_mask", NULL, 0, plain);
    assert_ok(rapid_fits_read_image(plain[1], NULL, &sci2, &err), err);
    assert_ok(rapid_dq_mask_file(plain[1], &sci2, &n, &err), err);
    assert_true(n.unusable == 0 && n.saturated == 0);
    for (i = 0; i < (size_t)SIZE * SIZE; i++)
        assert_false(isnan(sci2.data[i]));
    rapid_image_release(&sci);
    rapid_image_release(&sci2);
    rapid_image_u32_release(&dq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u32_images),
        cmocka_unit_test(test_mask_file),
        cmocka_unit_test(test_coadd_honours_dq),
        cmocka_unit_test(test_coadd_err_and_plain),
        cmocka_unit_test(test_ingest_checks),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
