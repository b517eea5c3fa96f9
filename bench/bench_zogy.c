/* bench_zogy.c - the ZOGY stage alone (rapid_zogy) on inputs that
 * bench/zogy_dump.c wrote (a pair already aligned and matched), called as
 * rapid_diff_zogy calls it (the noises and their correlations measured by
 * rapid_zogy; --given: those in the header, the global noise model): wall
 * and CPU time of each run, FFT planning apart, and the process's peak
 * RSS.
 *
 *   bench_zogy [--threads N] [--measure WISDOM] [--repeat K] [--given]
 *              [--out FILE] ZOGY_IN.fits
 *   bench_zogy [--threads N] [--measure WISDOM] [--repeat K] --fft N,N,...
 *
 * The second form times one in-place N x N real-to-complex and one
 * complex-to-real transform of each size (best of K), planning apart:
 * what the choice of the padded size costs.
 *
 * --measure: FFTW MEASURE plans, with wisdom loaded from and saved to
 * WISDOM before the runs and again after them (the plans rapid_zogy makes
 * in its first run: a later process plans nothing) (default: ESTIMATE
 * plans).  --out: the last run's D, UNC, SCORR,
 * PD written as zogy_dump writes them.  Prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchutil.h"
#include "rapid/diff.h"
#include "rapid/fits.h"

#define MAXREP 16

typedef struct inputs {
    rapid_image n, r, vn, vr, pn, pr;
    rapid_header h;
} inputs;

static int get_corr(const rapid_header *h, const char *key, double r[4],
                    rapid_err *err)
{
    char k[16];
    int i, rc;

    for (i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s%d", key, i);
        if ((rc = rapid_header_get_double(h, k, &r[i], err)))
            return rc;
    }
    return 0;
}

static int read_inputs(const char *path, int given, inputs *x,
                       rapid_zogy_in *in, rapid_err *err)
{
    int rc;

    if ((rc = rapid_fits_read_header(path, "0", &x->h, err)) ||
        (rc = rapid_fits_read_image(path, "N", &x->n, err)) ||
        (rc = rapid_fits_read_image(path, "R", &x->r, err)) ||
        (rc = rapid_fits_read_image(path, "VN", &x->vn, err)) ||
        (rc = rapid_fits_read_image(path, "VR", &x->vr, err)) ||
        (rc = rapid_fits_read_image(path, "PN", &x->pn, err)) ||
        (rc = rapid_fits_read_image(path, "PR", &x->pr, err)))
        return rc;
    memset(in, 0, sizeof *in);
    in->nx = x->n.nx;
    in->ny = x->n.ny;
    in->n = x->n.data;
    in->r = x->r.data;
    in->vn = x->vn.data;
    in->vr = x->vr.data;
    in->pn = x->pn.data;
    in->npn = x->pn.nx;
    in->pr = x->pr.data;
    in->npr = x->pr.nx;
    /* as rapid_diff_zogy calls it: the noises and their correlations
     * measured; given: those of the header, the global noise model */
    in->estimate_corr = !given;
    in->eps_d = in->eps_s = -1; /* the PSF-model error measured at the
                                 * stars, as rapid_diff_zogy_inputs asks */
    if (given && ((rc = rapid_header_get_double(&x->h, "SIGMA_N", &in->sigma_n, err)) ||
                  (rc = rapid_header_get_double(&x->h, "SIGMA_R", &in->sigma_r, err)) ||
                  (rc = get_corr(&x->h, "CORR_N", in->corr_n, err)) ||
                  (rc = get_corr(&x->h, "CORR_R", in->corr_r, err))))
        return rapid_err_prefix(err, "%s", path), rc;
    if ((rc = rapid_header_get_double(&x->h, "SX", &in->sx, err)) ||
        (rc = rapid_header_get_double(&x->h, "SY", &in->sy, err)))
        return rapid_err_prefix(err, "%s", path), rc;
    return 0;
}

static void inputs_release(inputs *x)
{
    rapid_image_release(&x->n);
    rapid_image_release(&x->r);
    rapid_image_release(&x->vn);
    rapid_image_release(&x->vr);
    rapid_image_release(&x->pn);
    rapid_image_release(&x->pr);
    rapid_header_release(&x->h);
}

static int append(rapid_fits_out *f, float *data, int nx, int ny,
                  const char *name, rapid_err *err)
{
    rapid_image im = RAPID_IMAGE_INIT;

    im.nx = nx;
    im.ny = ny;
    im.data = data;
    return rapid_fits_append_image(f, &im, name, err);
}

static int write_out(const char *path, const rapid_zogy_out *o, int nx,
                     int ny, rapid_err *err)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_fits_out *f = NULL;
    int rc;

    if ((rc = rapid_fits_create(&f, path, err)))
        return rc;
    if ((rc = rapid_fits_set_primary_header(f, &h, err)) ||
        (rc = append(f, o->d, nx, ny, "D", err)) ||
        (rc = append(f, o->unc, nx, ny, "UNC", err)) ||
        (rc = append(f, o->scorr, nx, ny, "SCORR", err)) ||
        (rc = append(f, o->pd, o->npd, o->npd, "PD", err))) {
        rapid_fits_abort(f);
        return rc;
    }
    return rapid_fits_commit(f, err);
}

/* The plans rapid_zogy will ask for, made now so that their cost is
 * counted apart from the runs'. */
static int plan(rapid_fft_cache *c, int px, int py, rapid_err *err)
{
    const rapid_fft_plan *p;
    int rc;

    if ((rc = rapid_fft_plan_get(c, RAPID_FFT_R2C, py, px, 1, &p, err)))
        return rc;
    return rapid_fft_plan_get(c, RAPID_FFT_C2R, py, px, 1, &p, err);
}

/* CPU time of the process (all its threads), seconds: on a machine other
 * processes share, the part of a run that was this program's. */
static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best-of-repeat times of the r2c and c2r transforms of n x n, in place. */
static int time_fft(rapid_fft_cache *c, int n, int repeat, rapid_err *err)
{
    const rapid_fft_plan *f, *b;
    size_t stride = rapid_fft_real_stride(n), i, nf = (size_t)n * stride;
    float *a = rapid_fft_alloc(nf * sizeof *a);
    double t0, tp, best_f = 1e30, best_b = 1e30, t;
    int k, rc;

    if (!a)
        return rapid_fail(err, RAPID_E_NOMEM, "out of memory for %d^2", n);
    t0 = bench_now();
    if ((rc = rapid_fft_plan_get(c, RAPID_FFT_R2C, n, n, 1, &f, err)) ||
        (rc = rapid_fft_plan_get(c, RAPID_FFT_C2R, n, n, 1, &b, err))) {
        rapid_fft_free(a);
        return rc;
    }
    tp = bench_now() - t0;
    for (i = 0; i < nf; i++)
        a[i] = (float)(i % 97) * 0.01f;
    for (k = 0; k < repeat; k++) {
        t0 = bench_now();
        rapid_fft_r2c(f, a, (float _Complex *)a);
        if ((t = bench_now() - t0) < best_f)
            best_f = t;
        t0 = bench_now();
        rapid_fft_c2r(b, (float _Complex *)a, a);
        if ((t = bench_now() - t0) < best_b)
            best_b = t;
        for (i = 0; i < nf; i++) /* keep the values in range */
            a[i] *= 1.0f / ((float)n * n);
    }
    printf("{\"fft\": %d, \"plan_s\": %.2f, \"r2c_ms\": %.1f, "
           "\"c2r_ms\": %.1f}\n", n, tp, 1e3 * best_f, 1e3 * best_b);
    rapid_fft_free(a);
    return 0;
}

static int fft_sizes(const char *list, const char *wisdom, int nthreads,
                     int repeat)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_fft_cache *c;
    const char *p = list;
    char *end;
    long n;
    int rc = 0;

    if (wisdom && rapid_fft_wisdom_load(wisdom, NULL, &err)) {
        fprintf(stderr, "bench_zogy: %s\n", err.msg);
        return 1;
    }
    c = rapid_fft_cache_new(wisdom ? RAPID_FFT_MEASURE : RAPID_FFT_ESTIMATE,
                            nthreads);
    if (!c) {
        fprintf(stderr, "bench_zogy: out of memory\n");
        return 1;
    }
    while (!rc && *p) {
        n = strtol(p, &end, 10);
        if (end == p || n < 16 || n > 65536 || (*end && *end != ',')) {
            fprintf(stderr, "bench_zogy: --fft: sizes 16-65536 separated by "
                            "commas (at '%s')\n", p);
            rc = 2;
            break;
        }
        if (time_fft(c, (int)n, repeat, &err)) {
            fprintf(stderr, "bench_zogy: %s\n", err.msg);
            rc = 1;
        }
        p = *end ? end + 1 : end;
    }
    if (!rc && wisdom && rapid_fft_wisdom_save(wisdom, &err)) {
        fprintf(stderr, "bench_zogy: %s\n", err.msg);
        rc = 1;
    }
    rapid_fft_cache_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    rapid_err err = RAPID_ERR_INIT;
    inputs x;
    rapid_zogy_in in;
    rapid_zogy_opts zo;
    rapid_zogy_out o = RAPID_ZOGY_OUT_INIT;
    rapid_fft_cache *c = NULL;
    struct rusage ru;
    const char *wisdom = NULL, *out = NULL, *fft = NULL;
    double t0, c0, t_plan, t_read, t[MAXREP], cpu[MAXREP];
    long padx = 0, pady = 0;
    int nthreads = 1, repeat = 1, i = 1, k, loaded = 0, given = 0;

    memset(&x, 0, sizeof x);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--measure") == 0 && i + 1 < argc)
            wisdom = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--fft") == 0 && i + 1 < argc)
            fft = argv[++i];
        else if (strcmp(argv[i], "--given") == 0)
            given = 1;
        else
            break;
    }
    if (argc - i != !fft || nthreads < 1 || repeat < 1 || repeat > MAXREP) {
        fprintf(stderr, "usage: bench_zogy [--threads N] [--measure WISDOM] "
                        "[--repeat K (1-%d)] [--given] [--out FILE] "
                        "ZOGY_IN.fits\n"
                        "       bench_zogy [--threads N] [--measure WISDOM] "
                        "[--repeat K] --fft N,N,...\n", MAXREP);
        return 2;
    }
    if (fft)
        return fft_sizes(fft, wisdom, nthreads, repeat);
    t0 = bench_now();
    if (read_inputs(argv[i], given, &x, &in, &err))
        goto fail;
    t_read = bench_now() - t0;
    rapid_header_get_long(&x.h, "PADX", &padx, NULL);
    rapid_header_get_long(&x.h, "PADY", &pady, NULL);
    if (wisdom && rapid_fft_wisdom_load(wisdom, &loaded, &err))
        goto fail;
    c = rapid_fft_cache_new(wisdom ? RAPID_FFT_MEASURE : RAPID_FFT_ESTIMATE,
                            nthreads);
    if (!c) {
        rapid_fail(&err, RAPID_E_NOMEM, "out of memory");
        goto fail;
    }
    t0 = bench_now();
    if (padx > 0 && pady > 0 && plan(c, (int)padx, (int)pady, &err))
        goto fail;
    t_plan = bench_now() - t0;
    if (wisdom && rapid_fft_wisdom_save(wisdom, &err))
        goto fail;
    rapid_zogy_opts_init(&zo);
    zo.nthreads = nthreads;
    zo.fft = c;
    for (k = 0; k < repeat; k++) {
        rapid_zogy_out_release(&o);
        t0 = bench_now();
        c0 = cpu_now();
        if (rapid_zogy(&in, &zo, &o, &err))
            goto fail;
        t[k] = bench_now() - t0;
        cpu[k] = cpu_now() - c0;
    }
    /* the plans rapid_zogy made in its first run (its row and column
     * passes) kept too: the next process plans nothing */
    if (wisdom && rapid_fft_wisdom_save(wisdom, &err))
        goto fail;
    if (out && write_out(out, &o, in.nx, in.ny, &err))
        goto fail;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"nx\": %d, \"ny\": %d, \"pad\": [%d, %d], \"threads\": %d, "
           "\"plans\": \"%s\", \"noise\": \"%s\", \"wisdom_loaded\": %s, "
           "\"read_s\": %.2f, \"plan_s\": %.2f, \"run_s\": [", in.nx, in.ny,
           o.padx, o.pady, nthreads, wisdom ? "measure" : "estimate",
           given ? "given" : "measured", loaded ? "true" : "false", t_read,
           t_plan);
    for (k = 0; k < repeat; k++)
        printf("%s%.3f", k ? ", " : "", t[k]);
    printf("], \"cpu_s\": [");
    for (k = 0; k < repeat; k++)
        printf("%s%.3f", k ? ", " : "", cpu[k]);
    printf("], \"peak_rss_mb\": %.0f}\n", ru.ru_maxrss / 1024.0);
    rapid_zogy_out_release(&o);
    rapid_fft_cache_free(c);
    inputs_release(&x);
    return 0;
fail:
    fprintf(stderr, "bench_zogy: %s\n", err.msg);
    rapid_zogy_out_release(&o);
    rapid_fft_cache_free(c);
    inputs_release(&x);
    return 1;
}
