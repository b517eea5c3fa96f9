/* test_fft.c - the FFTW wrapper against a direct DFT, plan reuse, and
 * execution of one plan from several threads at once. */
#include <complex.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "rapid/fft.h"
#include "testutil.h"

/* Direct 2-D DFT of a complex ny x nx array, sign -1 forward, in double. */
static void dft(const double complex *in, double complex *out, int ny, int nx,
                int sign)
{
    int kx, ky, x, y;

    for (ky = 0; ky < ny; ky++)
        for (kx = 0; kx < nx; kx++) {
            double complex s = 0;
            for (y = 0; y < ny; y++)
                for (x = 0; x < nx; x++)
                    s += in[y * nx + x] *
                         cexp(sign * 2.0 * M_PI * I *
                              ((double)kx * x / nx + (double)ky * y / ny));
            out[ky * nx + kx] = s;
        }
}

static void test_r2c_against_dft(void **state)
{
    /* odd and even widths, out of place and in place */
    static const int shapes[][2] = {{6, 5}, {7, 8}, {12, 9}};
    uint64_t s = 11;
    int k;

    (void)state;
    for (k = 0; k < 3; k++) {
        int ny = shapes[k][0], nx = shapes[k][1], nh = nx / 2 + 1, i, j;
        size_t st = rapid_fft_real_stride(nx);
        float *re = rapid_fft_alloc((size_t)ny * nx * sizeof *re);
        float *ip = rapid_fft_alloc((size_t)ny * st * sizeof *ip);
        float complex *sp = rapid_fft_alloc((size_t)ny * nh * sizeof *sp);
        double complex *din = malloc((size_t)ny * nx * sizeof *din);
        double complex *dout = malloc((size_t)ny * nx * sizeof *dout);
        const rapid_fft_plan *po = NULL, *pi = NULL;
        rapid_err err = RAPID_ERR_INIT;

        assert_non_null(re);
        for (j = 0; j < ny; j++)
            for (i = 0; i < nx; i++) {
                re[j * nx + i] = (float)(test_uniform(&s) - 0.5);
                ip[j * st + i] = re[j * nx + i];
                din[j * nx + i] = re[j * nx + i];
            }
        dft(din, dout, ny, nx, -1);
        assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_R2C, ny, nx, 0,
                                            &po, &err), 0);
        assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_R2C, ny, nx, 1,
                                            &pi, &err), 0);
        assert_ptr_not_equal(po, pi);
        rapid_fft_r2c(po, re, sp);
        rapid_fft_r2c(pi, ip, (float complex *)ip);
        for (j = 0; j < ny; j++)
            for (i = 0; i < nh; i++) {
                double complex want = dout[j * nx + i];
                float complex a = sp[j * nh + i];
                float complex b = ((float complex *)ip)[j * nh + i];
                assert_true(cabs(a - want) < 1e-5 * (1 + cabs(want)));
                assert_true(cabs(b - want) < 1e-5 * (1 + cabs(want)));
            }
        rapid_fft_free(re);
        rapid_fft_free(ip);
        rapid_fft_free(sp);
        free(din);
        free(dout);
    }
}

static void test_c2c_and_round_trip(void **state)
{
    int ny = 10, nx = 14, n = ny * nx, i;
    float complex *a = rapid_fft_alloc((size_t)n * sizeof *a);
    float complex *b = rapid_fft_alloc((size_t)n * sizeof *b);
    float *r = rapid_fft_alloc((size_t)n * sizeof *r);
    float *back = rapid_fft_alloc((size_t)n * sizeof *back);
    float complex *h = rapid_fft_alloc((size_t)ny * (nx / 2 + 1) * sizeof *h);
    double complex *din = malloc((size_t)n * sizeof *din);
    double complex *dout = malloc((size_t)n * sizeof *dout);
    const rapid_fft_plan *f = NULL, *bw = NULL, *r2c = NULL, *c2r = NULL;
    uint64_t s = 5;

    (void)state;
    for (i = 0; i < n; i++) {
        a[i] = (float)test_uniform(&s) + I * (float)test_uniform(&s);
        din[i] = a[i];
        r[i] = (float)test_uniform(&s);
    }
    dft(din, dout, ny, nx, +1);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_BACKWARD, ny, nx, 0,
                                        &bw, NULL), 0);
    rapid_fft_c2c(bw, a, b);
    for (i = 0; i < n; i++)
        assert_true(cabs(b[i] - dout[i]) < 1e-4 * (1 + cabs(dout[i])));
    /* forward after backward gives n times the input */
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_FORWARD, ny, nx, 1,
                                        &f, NULL), 0);
    rapid_fft_c2c(f, b, b);
    for (i = 0; i < n; i++)
        assert_true(cabs(b[i] / n - din[i]) < 1e-5);
    /* real round trip through the half spectrum */
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_R2C, ny, nx, 0, &r2c,
                                        NULL), 0);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_C2R, ny, nx, 0, &c2r,
                                        NULL), 0);
    rapid_fft_r2c(r2c, r, h);
    rapid_fft_c2r(c2r, h, back);
    for (i = 0; i < n; i++)
        assert_true(fabs(back[i] / n - r[i]) < 1e-6);
    rapid_fft_free(a);
    rapid_fft_free(b);
    rapid_fft_free(r);
    rapid_fft_free(back);
    rapid_fft_free(h);
    free(din);
    free(dout);
}

/* The column pass alone: each column's 1-D forward transform, the rows
 * untouched (against a direct sum); a 2-D transform is the rows' then
 * this. */
static void test_columns(void **state)
{
    const int ny = 12, nx = 5;
    int i, j, k;
    float complex *a = rapid_fft_alloc((size_t)ny * nx * sizeof *a);
    double complex *d = malloc((size_t)ny * nx * sizeof *d);
    const rapid_fft_plan *p = NULL;
    uint64_t s = 9;

    (void)state;
    assert_true(a && d);
    for (i = 0; i < ny * nx; i++)
        d[i] = a[i] = (float)test_uniform(&s) + I * (float)test_uniform(&s);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_COLUMNS, ny, nx, 1, &p,
                                        NULL), 0);
    rapid_fft_c2c(p, a, a);
    for (i = 0; i < nx; i++)
        for (k = 0; k < ny; k++) {
            double complex want = 0;
            for (j = 0; j < ny; j++)
                want += d[j * nx + i] * cexp(-2 * M_PI * I * j * k / ny);
            assert_true(cabs(a[k * nx + i] - want) < 1e-5 * (1 + cabs(want)));
        }
    rapid_fft_free(a);
    free(d);
}

/* The row pass alone, in place on a block of rows from row 8 (aligned as
 * the array): each row's 1-D real transform against a direct sum, the
 * rows outside the block untouched; then the column pass makes the 2-D
 * transform. */
static void test_rows(void **state)
{
    const int ny = 24, nx = 10, hx = nx / 2 + 1, j0 = 8, nr = 7;
    size_t st = rapid_fft_real_stride(nx);
    float *a = rapid_fft_alloc((size_t)ny * st * sizeof *a);
    float *f = rapid_fft_alloc((size_t)ny * st * sizeof *f);
    double *d = malloc((size_t)ny * st * sizeof *d);
    const rapid_fft_plan *p = NULL, *q = NULL, *r = NULL;
    float complex *A = (float complex *)a, *F = (float complex *)f;
    uint64_t s = 21;
    int i, j, k;

    (void)state;
    assert_true(a && f && d);
    for (i = 0; i < ny * (int)st; i++)
        d[i] = a[i] = f[i] = (float)test_uniform(&s);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_ROWS, nr, nx, 0, &p,
                                        NULL), RAPID_E_ARG); /* in place only */
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_ROWS, nr, nx, 1, &p,
                                        NULL), 0);
    rapid_fft_r2c(p, a + (size_t)j0 * st, A + (size_t)j0 * hx);
    for (j = 0; j < ny; j++)
        for (k = 0; k < hx; k++) {
            if (j < j0 || j >= j0 + nr) { /* untouched */
                assert_true(a[j * st + 2 * k] == (float)d[j * st + 2 * k]);
                continue;
            }
            double complex want = 0;
            for (i = 0; i < nx; i++)
                want += d[j * st + i] * cexp(-2 * M_PI * I * i * k / nx);
            assert_true(cabs(A[j * hx + k] - want) < 1e-5 * (1 + cabs(want)));
        }
    /* all rows, then the columns: the 2-D transform */
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_ROWS, ny, nx, 1, &p,
                                        NULL), 0);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_COLUMNS, ny, hx, 1, &q,
                                        NULL), 0);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_R2C, ny, nx, 1, &r,
                                        NULL), 0);
    memcpy(a, f, (size_t)ny * st * sizeof *a);
    rapid_fft_r2c(p, a, A);
    rapid_fft_c2c(q, A, A);
    rapid_fft_r2c(r, f, F);
    for (i = 0; i < ny * hx; i++)
        assert_true(cabs(A[i] - F[i]) < 1e-5 * (1 + cabs(F[i])));
    rapid_fft_free(a);
    rapid_fft_free(f);
    free(d);
}

/* The backward passes: the column pass backward, then the row pass back
 * to real (on the first nr rows only, the others untouched) make the 2-D
 * C2R of the same half spectrum; and the row pass back is in place
 * only. */
static void test_rows_back(void **state)
{
    const int ny = 24, nx = 10, hx = nx / 2 + 1, nr = 17;
    size_t st = rapid_fft_real_stride(nx);
    float *a = rapid_fft_alloc((size_t)ny * st * sizeof *a);
    float *f = rapid_fft_alloc((size_t)ny * st * sizeof *f);
    float *keep = malloc((size_t)ny * st * sizeof *keep);
    const rapid_fft_plan *p = NULL, *q = NULL, *r = NULL;
    float complex *A = (float complex *)a, *F = (float complex *)f;
    uint64_t s = 33;
    int i, j;

    (void)state;
    assert_true(a && f && keep);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_R2C, ny, nx, 1, &r,
                                        NULL), 0);
    for (i = 0; i < ny * (int)st; i++) /* a real image's half spectrum */
        a[i] = (float)test_uniform(&s);
    rapid_fft_r2c(r, a, A);
    memcpy(f, a, (size_t)ny * st * sizeof *f);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_ROWS_C2R, nr, nx, 0,
                                        &p, NULL), RAPID_E_ARG);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_ROWS_C2R, nr, nx, 1,
                                        &p, NULL), 0);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_COLUMNS_BACKWARD, ny,
                                        hx, 1, &q, NULL), 0);
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_C2R, ny, nx, 1, &r,
                                        NULL), 0);
    rapid_fft_c2c(q, A, A);
    memcpy(keep, a, (size_t)ny * st * sizeof *keep);
    rapid_fft_c2r(p, A, a);
    rapid_fft_c2r(r, F, f);
    for (j = 0; j < ny; j++)
        for (i = 0; i < nx; i++) {
            size_t k = (size_t)j * st + (size_t)i;
            if (j >= nr)
                assert_true(a[k] == keep[k]);
            else
                assert_true(fabsf(a[k] - f[k]) < 1e-4f * (1 + fabsf(f[k])));
        }
    rapid_fft_free(a);
    rapid_fft_free(f);
    free(keep);
}

static void test_plans_made_once(void **state)
{
    rapid_fft_cache *c = rapid_fft_cache_new(RAPID_FFT_MEASURE, 2);
    const rapid_fft_plan *p1 = NULL, *p2 = NULL, *p3 = NULL;
    rapid_err err = RAPID_ERR_INIT;

    (void)state;
    assert_non_null(c);
    assert_int_equal(rapid_fft_cache_size(c), 0);
    assert_int_equal(rapid_fft_plan_get(c, RAPID_FFT_R2C, 32, 48, 0, &p1,
                                        &err), 0);
    assert_int_equal(rapid_fft_plan_get(c, RAPID_FFT_R2C, 32, 48, 0, &p2,
                                        &err), 0);
    assert_ptr_equal(p1, p2);
    assert_int_equal(rapid_fft_cache_size(c), 1);
    /* another shape, kind or placement is another plan */
    assert_int_equal(rapid_fft_plan_get(c, RAPID_FFT_C2R, 32, 48, 0, &p3,
                                        &err), 0);
    assert_ptr_not_equal(p1, p3);
    assert_int_equal(rapid_fft_plan_get(c, RAPID_FFT_R2C, 48, 32, 0, &p3,
                                        &err), 0);
    assert_ptr_not_equal(p1, p3);
    assert_int_equal(rapid_fft_cache_size(c), 3);
    /* invalid requests say so */
    assert_int_equal(rapid_fft_plan_get(c, RAPID_FFT_R2C, 0, 48, 0, &p3, &err),
                     RAPID_E_ARG);
    assert_null(p3);
    assert_non_null(strstr(err.msg, "invalid transform"));
    rapid_fft_cache_free(c);
    rapid_fft_cache_free(NULL);
}

typedef struct worker {
    const rapid_fft_plan *p;
    float *in;
    float complex *out;
    int n, reps;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    int k;

    for (k = 0; k < w->reps; k++)
        rapid_fft_r2c(w->p, w->in, w->out);
    return NULL;
}

/* Execution takes no lock: four threads on one plan, each on its arrays,
 * give the single-threaded result bit for bit. */
static void test_threads_share_a_plan(void **state)
{
    enum { NT = 4, NY = 64, NX = 96 };
    size_t nh = (size_t)NY * (NX / 2 + 1);
    const rapid_fft_plan *p = NULL;
    float complex *want = rapid_fft_alloc(nh * sizeof *want);
    pthread_t th[NT];
    worker w[NT];
    uint64_t s = 9;
    int t, i;

    (void)state;
    assert_int_equal(rapid_fft_plan_get(NULL, RAPID_FFT_R2C, NY, NX, 0, &p,
                                        NULL), 0);
    for (t = 0; t < NT; t++) {
        w[t] = (worker){p, rapid_fft_alloc((size_t)NY * NX * sizeof(float)),
                        rapid_fft_alloc(nh * sizeof(float complex)), NY * NX,
                        200};
        for (i = 0; i < NY * NX; i++)
            w[t].in[i] = (float)test_uniform(&s);
    }
    for (t = 0; t < NT; t++)
        assert_int_equal(pthread_create(&th[t], NULL, run_worker, &w[t]), 0);
    for (t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    for (t = 0; t < NT; t++) {
        rapid_fft_r2c(p, w[t].in, want);
        assert_memory_equal(want, w[t].out, nh * sizeof *want);
        rapid_fft_free(w[t].in);
        rapid_fft_free(w[t].out);
    }
    rapid_fft_free(want);
}

static void test_sizes(void **state)
{
    (void)state;
    assert_true(rapid_fft_is_fast(4096, 0));
    assert_false(rapid_fft_is_fast(4088, 1)); /* 8 x 7 x 73 */
    assert_true(rapid_fft_is_fast(4095, 1));  /* 9 x 5 x 7 x 13 */
    assert_false(rapid_fft_is_fast(4095, 0));
    assert_false(rapid_fft_is_fast(11 * 13, 1));
    assert_false(rapid_fft_is_fast(0, 1));
    assert_int_equal(rapid_fft_good_size(4088), 4095);
    assert_int_equal(rapid_fft_good_size(1), 1);
    /* 4088 + a 65 px PSF: 4153 -> 4158 = 2 3^3 7 11 allowing 11, else 4200 */
    assert_int_equal(rapid_fft_good_size(4153), 4158);
    assert_int_equal(rapid_fft_smooth_size(4153), 4200);
    assert_int_equal(rapid_fft_smooth_size(4096), 4096);
    assert_int_equal(rapid_fft_smooth_size(0), 1);
    assert_int_equal(rapid_fft_real_stride(7), 8);
    assert_int_equal(rapid_fft_real_stride(8), 10);
}

static int teardown(void **state)
{
    (void)state;
    rapid_fft_shared_release();
    assert_int_equal(rapid_fft_cache_size(NULL), 0);
    return 0;
}

/* Wisdom saved after a MEASURE plan, loaded back; a missing file is no
 * error, a corrupt one is, naming it. */
static void test_wisdom(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_fft_cache *c = rapid_fft_cache_new(RAPID_FFT_MEASURE, 1);
    const rapid_fft_plan *p;
    const char *path = test_path("wisdom"), *bad = test_path("bad-wisdom");
    char line[256];
    FILE *f;
    int loaded = -1;

    (void)state;
    assert_non_null(c);
    assert_ok(rapid_fft_wisdom_load(path, &loaded, &err), err);
    assert_int_equal(loaded, 0);
    assert_ok(rapid_fft_plan_get(c, RAPID_FFT_R2C, 24, 30, 1, &p, &err), err);
    assert_ok(rapid_fft_wisdom_save(path, &err), err);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "fftwf_wisdom"));
    assert_int_equal(test_count_prefixed(test_tmpdir(), "wisdom.tmp"), 0);
    assert_ok(rapid_fft_wisdom_load(path, &loaded, &err), err);
    assert_int_equal(loaded, 1);
    assert_non_null(f = fopen(bad, "w"));
    fputs("not wisdom at all\n", f);
    fclose(f);
    assert_int_equal(rapid_fft_wisdom_load(bad, &loaded, &err), RAPID_E_IO);
    assert_int_equal(loaded, 0);
    assert_non_null(strstr(err.msg, bad));
    assert_int_equal(rapid_fft_wisdom_save("/nonexistent-dir/w", &err),
                     RAPID_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/w"));
    rapid_fft_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_r2c_against_dft),
        cmocka_unit_test(test_c2c_and_round_trip),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_rows_back),
        cmocka_unit_test(test_plans_made_once),
        cmocka_unit_test(test_threads_share_a_plan),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_wisdom),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
