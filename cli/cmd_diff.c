/* cmd_diff.c - `rapid diff`: a science image minus its reference (ZOGY,
 * the naive difference and the kernel fit, SFFT), written as one product
 * set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "rapid/coadd.h"
#include "rapid/diff.h"
#include "rapid/prodset.h"
#include "rapid/psfops.h"
#include "rapid/version.h"

static const char usage_text[] =
    "usage: rapid diff --sci FILE[EXT] --ref FILE --out DIR [options]\n"
    "\n"
    "Subtract the reference image (rapid coadd's) from a science (L2) image:\n"
    "the reference, its coverage and uncertainty resampled onto the science\n"
    "image's pixels (exact overlap areas, through its TAN-SIP WCS),\n"
    "backgrounds removed, fluxes matched on stars paired between the two\n"
    "(or from the zero points, ZPTMAG and MAGZP, with fewer than 20), then\n"
    "the difference by each method asked for.  The products are written to\n"
    "DIR as <base>_zogy_{diff,unc,scorr,psf}.fits, <base>_naive_{diff,unc}.fits,\n"
    "<base>_sfft_{diff,cconv,unc,psf}.fits and <base>_refsci{,_cov,_unc,_psf}.fits\n"
    "(base: the science file's name without .fits); docs/products.md lists\n"
    "them and their header cards.\n"
    "What was made is printed as one JSON object on stdout.\n"
    "\n"
    "  --sci FILE[EXT]    the science L2 image; EXT an HDU name or number\n"
    "                     (default: SCI); ERR and DQ are used where present\n"
    "  --ref FILE         the reference image (rapid_ref_<N>_<F>.fits)\n"
    "  --sci-psf FILE     the science PSF (its primary image, native pixels);\n"
    "                     default: *PSF*_<FILTER>_<SCA>.fits beside FILE, in\n"
    "                     psf/ or ../psf/, as rapid coadd finds it\n"
    "  --ref-psf FILE     the reference PSF (default: <ref>_psf.fits)\n"
    "  --ref-cov FILE     its coverage map (default: <ref>_cov.fits; without\n"
    "                     one, 1 wherever the reference has data)\n"
    "  --ref-unc FILE     its uncertainty map (default: <ref>_unc.fits;\n"
    "                     without one, the reference's background noise)\n"
    "  --method LIST      zogy, naive, sfft, separated by commas, or all\n"
    "                     (zogy,naive,sfft) (all)\n"
    "  --order N          sfft: spatial order of the kernel across the\n"
    "                     image: 0 constant, 1 linear, 2 quadratic (2)\n"
    "  --kernel-half-width N\n"
    "                     sfft: the kernel's half-width in pixels, 1-30 (9)\n"
    "  --threads N        threads of each Fourier transform (and of the\n"
    "                     kernel fit's linear algebra) (1)\n"
    "  --wisdom FILE      FFTW wisdom: loaded before, the transforms planned\n"
    "                     by measuring (slower to plan, faster to run), and\n"
    "                     saved after; default $RAPID_WORK/fftw.wisdom when\n"
    "                     RAPID_WORK is set, else no wisdom and plans by\n"
    "                     estimate (the same results bit for bit every run)\n"
    "  --out DIR          the directory of the products\n"
    "\n"
    "DIR holds the products of this difference and nothing else: they are\n"
    "replaced together (an interrupted run leaves the earlier set), and a DIR\n"
    "holding other files is refused.  A method that fails writes no products\n"
    "(its status and message are in the JSON); the others' are written.\n"
    "\n"
    "Exit status: 0 every method asked for succeeded, 4 one failed and\n"
    "another succeeded, 1 none succeeded (nothing written), or the science\n"
    "image, the reference or a map given could not be read, or the products\n"
    "not written, 2 bad usage (unknown option or method, missing --sci,\n"
    "--ref or --out, a bad --threads, --order or --kernel-half-width).\n";

enum { EXIT_PARTIAL = 4 };
enum { M_ZOGY, M_NAIVE, M_SFFT, NMETHOD };
static const char *const method_name[NMETHOD] = {"zogy", "naive", "sfft"};

enum {
    OPT_SCI = 1, OPT_REF, OPT_SCI_PSF, OPT_REF_PSF, OPT_REF_COV, OPT_REF_UNC,
    OPT_METHOD, OPT_ORDER, OPT_KERNEL_HW, OPT_THREADS, OPT_WISDOM, OPT_OUT
};

static const cli_option options[] = {
    {"--sci", NULL, 1, OPT_SCI},
    {"--ref", NULL, 1, OPT_REF},
    {"--sci-psf", NULL, 1, OPT_SCI_PSF},
    {"--ref-psf", NULL, 1, OPT_REF_PSF},
    {"--ref-cov", NULL, 1, OPT_REF_COV},
    {"--ref-unc", NULL, 1, OPT_REF_UNC},
    {"--method", NULL, 1, OPT_METHOD},
    {"--order", NULL, 1, OPT_ORDER},
    {"--kernel-half-width", NULL, 1, OPT_KERNEL_HW},
    {"--threads", NULL, 1, OPT_THREADS},
    {"--wisdom", NULL, 1, OPT_WISDOM},
    {"--out", NULL, 1, OPT_OUT},
    {NULL, NULL, 0, 0},
};

#define PATHLEN 4096

typedef struct diff_args {
    char sci[PATHLEN], sci_ext[80];   /* --sci FILE[EXT] split */
    const char *ref, *out, *wisdom;
    const char *sci_psf, *ref_psf, *ref_cov, *ref_unc; /* as given */
    int asked[NMETHOD];
    int nthreads;
    int order, half_width;            /* sfft's: -1 the library's default */
} diff_args;

/* One method's run. */
typedef struct method_run {
    int ok;
    double seconds;
    char msg[RAPID_ERR_MAX];
} method_run;

/* Everything the products are made of. */
typedef struct diff_state {
    rapid_science sci;
    rapid_wcs sci_wcs, ref_wcs;
    rapid_image ref, cov, unc;          /* as read */
    rapid_image ref_psf, sci_psf;       /* primary images of the PSF files */
    rapid_image refsci_psf;             /* ref_psf as the science pixels see it */
    int have_ref_psf, have_sci_psf;
    rapid_err ref_psf_err, sci_psf_err; /* why a PSF is missing */
    char sci_psf_path[PATHLEN], ref_psf_path[PATHLEN];
    char ref_cov_path[PATHLEN], ref_unc_path[PATHLEN];
    int have_cov, have_unc;
    double sci_zp, ref_zp, zp_scale;    /* NaN when not stated */
    rapid_diff_pair pair;
    float *naive_d, *naive_unc;
    rapid_zogy_out zogy;
    rapid_sfft_out sfft;
    method_run run[NMETHOD];
    rapid_fft_cache *fft;               /* plans for ZOGY and the kernel fit */
    double t_read, t_prepare, t_write;
    double bkg_sci, bkg_ref;
} diff_state;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(const char *what)
{
    if (cli_interactive())
        fprintf(stderr, "rapid diff: %s\n", what);
}

/* ------------------------------------------------------------ arguments */

/* "file.fits[SCI]" -> file.fits and SCI. */
static int split_ext(const char *v, diff_args *a)
{
    size_t n = strlen(v);
    const char *open = strrchr(v, '[');

    if (n == 0 || n >= sizeof a->sci)
        return cli_usage("diff", "--sci: %s file name", n ? "too long a"
                                                           : "an empty");
    if (n > 2 && v[n - 1] == ']' && open && open > v) {
        size_t ne = n - (size_t)(open - v) - 2;
        if (ne == 0 || ne >= sizeof a->sci_ext)
            return cli_usage("diff", "--sci '%s': an HDU name or number "
                             "between the brackets, e.g. FILE[SCI]", v);
        memcpy(a->sci, v, (size_t)(open - v));
        a->sci[open - v] = '\0';
        memcpy(a->sci_ext, open + 1, ne);
        a->sci_ext[ne] = '\0';
    } else {
        memcpy(a->sci, v, n + 1);
        a->sci_ext[0] = '\0';
    }
    return 0;
}

static int parse_methods(const char *v, int asked[NMETHOD])
{
    const char *s = v;

    memset(asked, 0, NMETHOD * sizeof *asked);
    while (1) {
        size_t n = strcspn(s, ",");
        int k, found = 0;
        if (n == 3 && strncmp(s, "all", 3) == 0) {
            for (k = 0; k < NMETHOD; k++)
                asked[k] = 1;
            found = 1;
        }
        for (k = 0; k < NMETHOD && !found; k++)
            if (strlen(method_name[k]) == n && strncmp(s, method_name[k], n) == 0)
                asked[k] = found = 1;
        if (!found)
            return cli_usage("diff", "--method: unknown method '%.*s' (zogy, "
                             "naive, sfft or all, separated by commas)",
                             (int)n, s);
        if (!s[n])
            return 0;
        s += n + 1;
    }
}

static int parse(int argc, char **argv, diff_args *a)
{
    cli_parser p;
    int id, rc = 0, have_sci = 0;

    cli_parser_init(&p, "diff", options, argc, argv);
    while (rc == 0 && (id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_SCI:
            rc = split_ext(p.value, a);
            have_sci = 1;
            break;
        case OPT_REF:
            a->ref = p.value;
            break;
        case OPT_SCI_PSF:
            a->sci_psf = p.value;
            break;
        case OPT_REF_PSF:
            a->ref_psf = p.value;
            break;
        case OPT_REF_COV:
            a->ref_cov = p.value;
            break;
        case OPT_REF_UNC:
            a->ref_unc = p.value;
            break;
        case OPT_METHOD:
            rc = parse_methods(p.value, a->asked);
            break;
        case OPT_ORDER:
            rc = cli_int_option(&p, 0, 2, &a->order);
            break;
        case OPT_KERNEL_HW:
            rc = cli_int_option(&p, 1, 30, &a->half_width);
            break;
        case OPT_THREADS:
            rc = cli_int_option(&p, 1, 64, &a->nthreads);
            break;
        case OPT_WISDOM:
            a->wisdom = p.value;
            break;
        case OPT_OUT:
            a->out = p.value;
            break;
        case CLI_OPERAND:
            rc = cli_usage("diff", "unexpected argument '%s' (the files are "
                           "given by --sci and --ref)", p.value);
            break;
        default:
            rc = EXIT_USAGE;
        }
    }
    if (rc == 0 && (!have_sci || !a->ref || !a->out))
        rc = cli_usage("diff", "--sci, --ref and --out are required (see "
                       "rapid diff --help)");
    if (rc == 0 && (!a->out[0] || !a->ref[0]))
        rc = cli_usage("diff", "--%s: an empty name", a->out[0] ? "ref" : "out");
    if (rc == 0 && a->wisdom && !a->wisdom[0])
        rc = cli_usage("diff", "--wisdom: an empty file name");
    return rc;
}

/* ------------------------------------------------------------ file names */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Length of path without its FITS suffix (.fits, .fit, .fts, with .gz). */
static size_t stem_length(const char *path)
{
    static const char *const sfx[] = {".fits.gz", ".fit.gz", ".fts.gz",
                                      ".fits", ".fit", ".fts"};
    size_t n = strlen(path), k;

    for (k = 0; k < sizeof sfx / sizeof sfx[0]; k++) {
        size_t m = strlen(sfx[k]);
        if (n > m && strcmp(path + n - m, sfx[k]) == 0)
            return n - m;
    }
    return n;
}

/* <ref stem><suffix><ref's FITS suffix>: rapid_ref_1_H158_cov.fits beside
 * rapid_ref_1_H158.fits. */
static void sibling(const char *ref, const char *suffix, char *out, size_t sz)
{
    size_t n = stem_length(ref);
    const char *ext = ref[n] ? ref + n : ".fits";

    snprintf(out, sz, "%.*s%s%s", (int)n, ref, suffix, ext);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ------------------------------------------------------------ reading */

/* A PSF file's primary image: odd-sized and square (what ZOGY takes). */
static int read_psf(const char *path, rapid_image *psf, rapid_err *err)
{
    int rc;

    if ((rc = rapid_fits_read_image(path, "0", psf, err)) != 0)
        return rc;
    if (psf->nx != psf->ny || psf->nx % 2 == 0) {
        rc = rapid_fail(err, RAPID_E_ARG, "%s: the PSF is %d x %d, not square "
                        "and odd-sized", path, psf->nx, psf->ny);
        rapid_image_release(psf);
    }
    return rc;
}

/* A map of the reference (coverage, uncertainty) of the reference's size. */
static int read_map(const char *path, const rapid_image *ref, rapid_image *m,
                    rapid_err *err)
{
    int rc;

    if ((rc = rapid_fits_read_image(path, NULL, m, err)) != 0)
        return rc;
    if (m->nx != ref->nx || m->ny != ref->ny) {
        rc = rapid_fail(err, RAPID_E_ARG, "%s: %d x %d, the reference is "
                        "%d x %d", path, m->nx, m->ny, ref->nx, ref->ny);
        rapid_image_release(m);
    }
    return rc;
}

static double header_double(const rapid_header *h, const char *key)
{
    double v;
    return rapid_header_has(h, key) &&
                   rapid_header_get_double(h, key, &v, NULL) == 0 && isfinite(v)
               ? v
               : NAN;
}

/* science DN/s per reference DN/s for the same source, from the
 * zero points: ZPTMAG (AB magnitude of 1 DN/s) of the L2 image, MAGZP
 * (AB zero point of the reference's DN/s) of the reference, each in the
 * data's header or the primary one. */
static void zero_points(const diff_args *a, diff_state *s)
{
    rapid_header h = RAPID_HEADER_INIT;
    char bunit[32] = "";

    s->sci_zp = header_double(&s->sci.rate.hdr, "ZPTMAG");
    if (!isfinite(s->sci_zp) && rapid_fits_read_header(a->sci, "0", &h, NULL) == 0)
        s->sci_zp = header_double(&h, "ZPTMAG");
    rapid_header_release(&h);
    s->ref_zp = header_double(&s->ref.hdr, "MAGZP");
    if (!isfinite(s->ref_zp) && rapid_fits_read_header(a->ref, "0", &h, NULL) == 0)
        s->ref_zp = header_double(&h, "MAGZP");
    rapid_header_release(&h);
    if (rapid_header_has(&s->ref.hdr, "BUNIT") &&
        rapid_header_get_str(&s->ref.hdr, "BUNIT", bunit, sizeof bunit, NULL) == 0 &&
        strcmp(bunit, "DN/s") != 0)
        cli_error("diff", "warning: %s: BUNIT '%s': the reference is taken to "
                  "be in DN/s", a->ref, bunit);
    if (isfinite(s->sci_zp) && isfinite(s->ref_zp)) {
        s->zp_scale = pow(10, 0.4 * (s->sci_zp - s->ref_zp));
    } else {
        s->zp_scale = 1;
        cli_error("diff", "warning: %s: no %s: the zero-point scale is taken "
                  "as 1 (used only with fewer than 20 stars matched)",
                  isfinite(s->sci_zp) ? a->ref : a->sci,
                  isfinite(s->sci_zp) ? "MAGZP" : "ZPTMAG");
    }
}

/* The PSFs: failures are kept as messages for the ZOGY method (and the
 * refsci PSF product), not fatal: the naive difference needs none. */
static void read_psfs(const diff_args *a, diff_state *s)
{
    char filter[32];
    long sca;

    if (a->sci_psf) {
        snprintf(s->sci_psf_path, sizeof s->sci_psf_path, "%s", a->sci_psf);
    } else if (rapid_header_get_str(&s->sci.rate.hdr, "FILTER", filter,
                                    sizeof filter, &s->sci_psf_err) ||
               rapid_header_get_long(&s->sci.rate.hdr, "SCA_NUM", &sca,
                                     &s->sci_psf_err) ||
               rapid_coadd_find_psf(a->sci, filter, (int)sca, s->sci_psf_path,
                                    sizeof s->sci_psf_path, &s->sci_psf_err)) {
        rapid_err_prefix(&s->sci_psf_err, "no science PSF (give --sci-psf): %s",
                         a->sci);
    }
    if (!s->sci_psf_err.code &&
        read_psf(s->sci_psf_path, &s->sci_psf, &s->sci_psf_err) == 0)
        s->have_sci_psf = 1;
    if (a->ref_psf)
        snprintf(s->ref_psf_path, sizeof s->ref_psf_path, "%s", a->ref_psf);
    else
        sibling(a->ref, "_psf", s->ref_psf_path, sizeof s->ref_psf_path);
    if (read_psf(s->ref_psf_path, &s->ref_psf, &s->ref_psf_err) != 0) {
        if (!a->ref_psf)
            rapid_err_prefix(&s->ref_psf_err, "no reference PSF (give --ref-psf)");
        return;
    }
    s->have_ref_psf = 1;
    /* P_r from the samples: the exact blur of the file's OVERSAMP model
     * is broader still in the core, and with it ZOGY's whitening of the
     * reference's correlated noise (modelled from neighbour correlations)
     * overshoots at the frequencies where both PSFs have little power
     * (D / sigma_D up to 1.2-1.45 on the simulated pairs of test_diff_sim
     * against 0.94-1.15 from the samples) */
    if (rapid_image_alloc(&s->refsci_psf, s->ref_psf.nx, s->ref_psf.ny, 0,
                          &s->ref_psf_err) ||
        rapid_psf_on_science(s->ref_psf.data, s->ref_psf.nx, NULL, 0, 0,
                             s->refsci_psf.data, NULL, &s->ref_psf_err)) {
        rapid_err_prefix(&s->ref_psf_err, "%s", s->ref_psf_path);
        rapid_image_release(&s->refsci_psf);
        rapid_image_release(&s->ref_psf);
        s->have_ref_psf = 0;
    }
}

/* The science image, the reference and its maps. */
static int read_inputs(const diff_args *a, diff_state *s, rapid_err *err)
{
    int rc;

    if ((rc = rapid_science_read(a->sci, a->sci_ext[0] ? a->sci_ext : NULL,
                                 &s->sci, err)) ||
        (rc = rapid_wcs_from_header(&s->sci_wcs, &s->sci.rate.hdr, err))) {
        if (rc == RAPID_E_WCS)
            rapid_err_prefix(err, "%s", a->sci);
        return rc;
    }
    s->sci_wcs.nx = s->sci.rate.nx;
    s->sci_wcs.ny = s->sci.rate.ny;
    if ((rc = rapid_fits_read_image(a->ref, NULL, &s->ref, err)) ||
        (rc = rapid_wcs_from_header(&s->ref_wcs, &s->ref.hdr, err))) {
        if (rc == RAPID_E_WCS)
            rapid_err_prefix(err, "%s", a->ref);
        return rc;
    }
    s->ref_wcs.nx = s->ref.nx;
    s->ref_wcs.ny = s->ref.ny;
    if (a->ref_cov)
        snprintf(s->ref_cov_path, sizeof s->ref_cov_path, "%s", a->ref_cov);
    else
        sibling(a->ref, "_cov", s->ref_cov_path, sizeof s->ref_cov_path);
    if (a->ref_unc)
        snprintf(s->ref_unc_path, sizeof s->ref_unc_path, "%s", a->ref_unc);
    else
        sibling(a->ref, "_unc", s->ref_unc_path, sizeof s->ref_unc_path);
    /* a map given must be read; one looked for beside the reference may
     * be missing */
    if (a->ref_cov || exists(s->ref_cov_path)) {
        if ((rc = read_map(s->ref_cov_path, &s->ref, &s->cov, err)))
            return rc;
        s->have_cov = 1;
    } else {
        cli_error("diff", "warning: no coverage map %s: coverage 1 wherever "
                  "the reference has data", s->ref_cov_path);
    }
    if (a->ref_unc || exists(s->ref_unc_path)) {
        if ((rc = read_map(s->ref_unc_path, &s->ref, &s->unc, err)))
            return rc;
        s->have_unc = 1;
    } else {
        cli_error("diff", "warning: no uncertainty map %s: the reference's "
                  "background noise is used", s->ref_unc_path);
    }
    zero_points(a, s);
    read_psfs(a, s);
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The median of a background's window means, DN/s. */
static double background_level(const rapid_background *b)
{
    size_t n = (size_t)b->gx * b->gy;
    float *v = n ? malloc(n * sizeof *v) : NULL;
    double m;

    if (!v)
        return NAN;
    memcpy(v, b->mean, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_float);
    m = n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + v[n / 2]);
    free(v);
    return m;
}

/* ------------------------------------------------------------ methods */

static void run_naive(diff_state *s)
{
    size_t n = (size_t)s->pair.nx * s->pair.ny;
    method_run *r = &s->run[M_NAIVE];
    double t0 = now();

    progress("naive difference");
    s->naive_d = malloc(n * sizeof *s->naive_d);
    s->naive_unc = malloc(n * sizeof *s->naive_unc);
    if (!s->naive_d || !s->naive_unc) {
        snprintf(r->msg, sizeof r->msg, "naive difference: out of memory");
        free(s->naive_d), free(s->naive_unc);
        s->naive_d = s->naive_unc = NULL;
    } else {
        rapid_diff_naive(&s->sci, &s->pair, s->naive_d, s->naive_unc);
        r->ok = 1;
    }
    r->seconds = now() - t0;
}

/* The transforms' plans, shared by ZOGY and the kernel fit: MEASURE
 * plans from the wisdom file when there is one (loaded now, saved after
 * the methods), else ESTIMATE plans. */
static void fft_begin(const diff_args *a, diff_state *s)
{
    rapid_err err = RAPID_ERR_INIT;
    int loaded = 0;

    if (a->wisdom && rapid_fft_wisdom_load(a->wisdom, &loaded, &err) != 0) {
        cli_error("diff", "warning: %s (planning without it)", err.msg);
        rapid_err_clear(&err);
    }
    s->fft = rapid_fft_cache_new(a->wisdom ? RAPID_FFT_MEASURE
                                           : RAPID_FFT_ESTIMATE,
                                 a->nthreads);
}

static void fft_end(const diff_args *a, diff_state *s)
{
    rapid_err err = RAPID_ERR_INIT;

    rapid_fft_cache_free(s->fft);
    s->fft = NULL;
    if (a->wisdom && rapid_fft_wisdom_save(a->wisdom, &err) != 0)
        cli_error("diff", "warning: %s", err.msg);
}

/* A method that needs both PSFs and the plans: 0 if it can run, else its
 * failure recorded. */
static int method_ready(diff_state *s, method_run *r, const char *what)
{
    if (!s->have_sci_psf || !s->have_ref_psf)
        snprintf(r->msg, sizeof r->msg, "%s", s->have_sci_psf
                                                  ? s->ref_psf_err.msg
                                                  : s->sci_psf_err.msg);
    else if (!s->fft)
        snprintf(r->msg, sizeof r->msg, "%s: out of memory", what);
    else
        return 0;
    return -1;
}

/* A method's failure message, naming the pair and the PSFs. */
static void method_failed(const diff_args *a, diff_state *s, method_run *r,
                          rapid_err *err)
{
    rapid_err_prefix(err, "%s (PSF %s) minus %s (PSF %s)", a->sci,
                     s->sci_psf_path, a->ref, s->ref_psf_path);
    snprintf(r->msg, sizeof r->msg, "%s", err->msg);
}

static void run_zogy(const diff_args *a, diff_state *s)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_zogy_opts zo;
    method_run *r = &s->run[M_ZOGY];
    double t0 = now();

    progress("ZOGY");
    if (method_ready(s, r, "ZOGY") == 0) {
        rapid_zogy_opts_init(&zo);
        zo.nthreads = a->nthreads;
        zo.fft = s->fft;
        if (rapid_diff_zogy(&s->sci, &s->pair, s->sci_psf.data, s->sci_psf.nx,
                            s->refsci_psf.data, s->refsci_psf.nx, &zo,
                            &s->zogy, &err) == 0)
            r->ok = 1;
        else
            method_failed(a, s, r, &err);
    }
    r->seconds = now() - t0;
}

/* The kernel fit (SFFT): the reference PSF as read (rapid_diff_sfft blurs
 * it as resampling does), its failures (too few stamps, an ill-conditioned
 * fit ...) the method's. */
static void run_sfft(const diff_args *a, diff_state *s)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_sfft_opts so;
    method_run *r = &s->run[M_SFFT];
    double t0 = now();

    progress("kernel fit (SFFT)");
    if (method_ready(s, r, "kernel fit") == 0) {
        rapid_sfft_opts_init(&so);
        so.nthreads = a->nthreads;
        if (a->order >= 0)
            so.order = a->order;
        if (a->half_width > 0)
            so.half_width = a->half_width;
        so.fft = s->fft;
        if (rapid_diff_sfft(&s->sci, &s->pair, s->sci_psf.data, s->sci_psf.nx,
                            s->ref_psf.data, s->ref_psf.nx, &so, &s->sfft,
                            &err) == 0) {
            r->ok = 1;
        } else {
            rapid_sfft_out_release(&s->sfft);
            method_failed(a, s, r, &err);
        }
    }
    r->seconds = now() - t0;
}

/* ------------------------------------------------------------ products */

enum { P_ZOGY_DIFF, P_ZOGY_UNC, P_ZOGY_SCORR, P_ZOGY_PSF, P_NAIVE_DIFF,
       P_NAIVE_UNC, P_SFFT_DIFF, P_SFFT_CCONV, P_SFFT_UNC, P_SFFT_PSF,
       P_REFSCI, P_REFSCI_COV, P_REFSCI_UNC, P_REFSCI_PSF, NPRODUCT };

typedef struct product_kind {
    const char *suffix;   /* after the base name */
    int method;           /* M_ZOGY, M_NAIVE, M_SFFT, or -1: the reference */
    const char *extname;  /* NULL: a PSF, the primary image */
    const char *bunit, *bunit_comment;
    const char *json_group, *json_key;
} product_kind;

static const product_kind kinds[NPRODUCT] = {
    {"_zogy_diff", M_ZOGY, "DIFF", "DN/s", "science DN/s (ZPTMAG): D / F_D",
     "zogy", "diff"},
    {"_zogy_unc", M_ZOGY, "UNC", "DN/s", "1-sigma uncertainty of the difference",
     "zogy", "unc"},
    {"_zogy_scorr", M_ZOGY, "SCORR", "", "none: significance, in sigma",
     "zogy", "scorr"},
    {"_zogy_psf", M_ZOGY, NULL, "", "none: normalised to unit sum", "zogy", "psf"},
    {"_naive_diff", M_NAIVE, "DIFF", "DN/s", "science DN/s (ZPTMAG)", "naive",
     "diff"},
    {"_naive_unc", M_NAIVE, "UNC", "DN/s", "1-sigma uncertainty of the difference",
     "naive", "unc"},
    {"_sfft_diff", M_SFFT, "DIFF", "DN/s", "science DN/s (ZPTMAG): decorrelated",
     "sfft", "diff"},
    {"_sfft_cconv", M_SFFT, "CCONV", "DN/s",
     "science DN/s (ZPTMAG): cross-convolved", "sfft", "cconv"},
    {"_sfft_unc", M_SFFT, "UNC", "DN/s", "1-sigma uncertainty of the difference",
     "sfft", "unc"},
    {"_sfft_psf", M_SFFT, NULL, "", "none: normalised to unit sum", "sfft", "psf"},
    {"_refsci", -1, "SCI", "DN/s", "the reference's DN/s (REFZP)", "refsci",
     "image"},
    {"_refsci_cov", -1, "COV", "", "none: reference inputs per pixel",
     "refsci", "cov"},
    {"_refsci_unc", -1, "UNC", "DN/s", "1-sigma uncertainty of the reference",
     "refsci", "unc"},
    {"_refsci_psf", -1, NULL, "", "none: normalised to unit sum", "refsci",
     "psf"},
};

/* Is product k made in this run? */
static int made(const diff_state *s, int k)
{
    const product_kind *p = &kinds[k];

    if (p->method >= 0)
        return s->run[p->method].ok;
    return k != P_REFSCI_PSF || s->have_ref_psf;
}

/* Every card of src into dst, replacing any of the same keyword. */
static int add_cards(rapid_header *dst, const rapid_header *src)
{
    int k, rc;

    for (k = 0; k < src->ncards; k++) {
        char key[9];
        int len = 0;
        while (len < 8 && src->cards[k][len] != ' ' &&
               src->cards[k][len] != '=' && src->cards[k][len] != '\0')
            len++;
        memcpy(key, src->cards[k], (size_t)len);
        key[len] = '\0';
        if (strcmp(key, "COMMENT") && strcmp(key, "HISTORY"))
            rapid_header_delete(dst, key);
        if ((rc = rapid_header_append_card(dst, src->cards[k])) != 0)
            return rc;
    }
    return 0;
}

#define SET(call, key) \
    do { if ((rc = (call)) != 0) return rapid_header_fail(err, rc, "product header", key); } while (0)

/* A number, unless it is not known (NaN: no card). */
static int set_num(rapid_header *h, const char *key, double v,
                   const char *comment)
{
    return isfinite(v) ? rapid_header_set_double(h, key, v, comment) : 0;
}

/* Provenance and matching: every product's. */
static int common_header(const diff_args *a, const diff_state *s,
                         rapid_header *h, rapid_err *err)
{
    const rapid_gainmatch *m = &s->pair.match;
    const rapid_header *sh = &s->sci.rate.hdr;
    static const char *const copy[] = {"FILTER", "SCA_NUM", "DATE-OBS",
                                       "MJD-OBS", "EXPTIME", NULL};
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    int k, rc;

    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    for (k = 0; copy[k]; k++) {
        int i = rapid_header_find(sh, copy[k]);
        if (i >= 0)
            SET(rapid_header_append_card(h, sh->cards[i]), copy[k]);
    }
    SET(rapid_header_set_str(h, "SCIFILE", base_name(a->sci), "science L2 file"), "SCIFILE");
    SET(rapid_header_set_str(h, "SCIHDU", a->sci_ext[0] ? a->sci_ext : "SCI",
                             "its HDU"), "SCIHDU");
    SET(rapid_header_set_str(h, "REFFILE", base_name(a->ref), "reference image"), "REFFILE");
    SET(rapid_header_set_str(h, "REFCOV", s->have_cov ? base_name(s->ref_cov_path) : "",
                             "reference coverage map ('': none)"), "REFCOV");
    SET(rapid_header_set_str(h, "REFUNC", s->have_unc ? base_name(s->ref_unc_path) : "",
                             "reference uncertainty map ('': none)"), "REFUNC");
    SET(rapid_header_set_str(h, "SCIPSF", s->have_sci_psf ? base_name(s->sci_psf_path) : "",
                             "science PSF ('': none)"), "SCIPSF");
    SET(rapid_header_set_str(h, "REFPSF", s->have_ref_psf ? base_name(s->ref_psf_path) : "",
                             "reference PSF ('': none)"), "REFPSF");
    SET(set_num(h, "SCIZP", s->sci_zp, "science ZPTMAG: AB mag of 1 DN/s"), "SCIZP");
    SET(set_num(h, "REFZP", s->ref_zp, "reference MAGZP: AB mag of 1 DN/s"), "REFZP");
    SET(set_num(h, "ZPSCALE", s->zp_scale, "science/reference DN/s from zero points"), "ZPSCALE");
    SET(set_num(h, "MATCHSCL", m->scale, "reference x this = science flux"), "MATCHSCL");
    SET(set_num(h, "MATCHERR", m->scale_err, "1-sigma error of MATCHSCL"), "MATCHERR");
    SET(set_num(h, "APCORR", s->pair.apcorr > 0 ? s->pair.apcorr : 1.0,
                "MATCHSCL includes this aperture correction"), "APCORR");
    SET(set_num(h, "SHIFTX", s->pair.shift_x, "[px] registration shift applied"), "SHIFTX");
    SET(set_num(h, "SHIFTY", s->pair.shift_y, "[px] registration shift applied"), "SHIFTY");
    SET(rapid_header_set_long(h, "MATCHN", m->nstars, "stars matched and kept"), "MATCHN");
    SET(rapid_header_set_str(h, "MATCHFRM", m->from ? m->from : "",
                             "scale from: stars or zero points"), "MATCHFRM");
    SET(set_num(h, "MATCHDX", m->dx_median, "[pixel] median x offset, sci - ref"), "MATCHDX");
    SET(set_num(h, "MATCHDY", m->dy_median, "[pixel] median y offset, sci - ref"), "MATCHDY");
    SET(set_num(h, "MATCHRX", m->dx_rms, "[pixel] rms x offset about the median"), "MATCHRX");
    SET(set_num(h, "MATCHRY", m->dy_rms, "[pixel] rms y offset about the median"), "MATCHRY");
    SET(set_num(h, "BKGSCI", s->bkg_sci, "[DN/s] median science background"), "BKGSCI");
    SET(set_num(h, "BKGREF", s->bkg_ref, "[DN/s] median reference background"), "BKGREF");
    SET(rapid_header_set_str(h, "RAPIDVER", rapid_version(), "rapid version"), "RAPIDVER");
    SET(rapid_header_set_str(h, "GITCOMM", rapid_git_commit(), "rapid git commit"), "GITCOMM");
    SET(rapid_header_set_str(h, "DATE", date, "UTC date of creation"), "DATE");
    return 0;
}

/* The kernel fit's figures. */
static int sfft_header(const rapid_sfft_out *o, rapid_header *h, rapid_err *err)
{
    int rc;

    SET(rapid_header_set_str(h, "SFFTBAS", o->basis ? o->basis : "",
                             "kernel basis"), "SFFTBAS");
    SET(rapid_header_set_long(h, "SFFTORD", o->order,
                              "kernel's spatial order (0 constant)"), "SFFTORD");
    SET(rapid_header_set_long(h, "SFFTBGO", o->bg_order,
                              "differential background's order"), "SFFTBGO");
    SET(rapid_header_set_long(h, "SFFTHW", o->half_width,
                              "[px] kernel half-width"), "SFFTHW");
    SET(rapid_header_set_long(h, "SFFTNST", o->nstamps,
                              "stamps in the final fit"), "SFFTNST");
    SET(rapid_header_set_long(h, "SFFTNREJ", o->nrejected,
                              "stamps rejected on their residuals"), "SFFTNREJ");
    SET(rapid_header_set_long(h, "SFFTNPIX", o->npix, "pixels fitted"), "SFFTNPIX");
    SET(rapid_header_set_long(h, "SFFTNUNK", o->nunknowns,
                              "unknowns of the fit"), "SFFTNUNK");
    SET(set_num(h, "SFFTCHI2", o->chi2r, "reduced chi^2 of the fit"), "SFFTCHI2");
    SET(set_num(h, "SFFTCOND", o->cond, "condition number estimate (1-norm)"),
        "SFFTCOND");
    SET(set_num(h, "SFFTKSUM", o->ksum, "kernel sum at the image centre"),
        "SFFTKSUM");
    SET(set_num(h, "SIGMA_N", o->sigma_n, "[DN/s] science background noise"),
        "SIGMA_N");
    SET(set_num(h, "SIGMA_R", o->sigma_r, "reference background noise"), "SIGMA_R");
    SET(set_num(h, "SFFTEPS", o->eps_model, "PSF-model error: share of the model in D"),
        "SFFTEPS");
    SET(set_num(h, "SFFTPOS", o->pos_model, "[px] PSF-model error: position"), "SFFTPOS");
    SET(rapid_header_set_long(h, "SFFTEPSN", o->neps,
                              "stars the PSF-model error is measured at"), "SFFTEPSN");
    SET(rapid_header_set_long(h, "SFFTPADX", o->padx, "transforms' width"), "SFFTPADX");
    SET(rapid_header_set_long(h, "SFFTPADY", o->pady, "transforms' height"), "SFFTPADY");
    return 0;
}

/* The method's figures. */
static int method_header(const diff_state *s, int method, rapid_header *h,
                         rapid_err *err)
{
    int rc;

    if (method < 0)
        return 0;
    SET(rapid_header_set_str(h, "DIFFMETH", method == M_ZOGY   ? "ZOGY"
                                            : method == M_SFFT ? "SFFT"
                                                               : "NAIVE",
                             "difference method"), "DIFFMETH");
    if (method == M_SFFT)
        return sfft_header(&s->sfft, h, err);
    if (method != M_ZOGY)
        return 0;
    SET(set_num(h, "SIGMA_N", s->zogy.sigma_n, "[DN/s] science background noise"), "SIGMA_N");
    SET(set_num(h, "SIGMA_R", s->zogy.sigma_r, "[DN/s] matched reference noise"), "SIGMA_R");
    SET(set_num(h, "ZOGY_FD", s->zogy.fd, "F_D: flux zero point of the raw D"), "ZOGY_FD");
    SET(set_num(h, "ZEPSD", s->zogy.eps_d, "PSF-model error: share of D_R in D"), "ZEPSD");
    SET(set_num(h, "ZPOSD", s->zogy.pos_d, "[px] PSF-model error: position in D"), "ZPOSD");
    SET(set_num(h, "ZEPSS", s->zogy.eps_s, "PSF-model error: share of S_R in S"), "ZEPSS");
    SET(set_num(h, "ZPOSS", s->zogy.pos_s, "[px] PSF-model error: position in S"), "ZPOSS");
    SET(rapid_header_set_long(h, "ZEPSN", s->zogy.neps,
                              "stars the PSF-model error is measured at"), "ZEPSN");
    SET(set_num(h, "ZEPSF", s->zogy.eps_fill, "filled pixel's error: share of light"), "ZEPSF");
    SET(set_num(h, "ZPOSF", s->zogy.pos_fill, "[px] filled pixel's error: position"), "ZPOSF");
    {
        static const char *const kn[4] = {"CORRN10", "CORRN01", "CORRN11", "CORRN1M"};
        static const char *const kr[4] = {"CORRR10", "CORRR01", "CORRR11", "CORRR1M"};
        static const char *const lag[4] = {"(1,0)", "(0,1)", "(1,1)", "(1,-1)"};
        char c[72];
        int k;
        for (k = 0; k < 4; k++) {
            snprintf(c, sizeof c, "science noise correlation at lag %s", lag[k]);
            SET(set_num(h, kn[k], s->zogy.corr_n[k], c), kn[k]);
            snprintf(c, sizeof c, "reference noise correlation at lag %s", lag[k]);
            SET(set_num(h, kr[k], s->zogy.corr_r[k], c), kr[k]);
        }
    }
    SET(rapid_header_set_long(h, "ZOGYPADX", s->zogy.padx, "transforms' width"), "ZOGYPADX");
    SET(rapid_header_set_long(h, "ZOGYPADY", s->zogy.pady, "transforms' height"), "ZOGYPADY");
    return 0;
}

/* The pixels of product k (borrowed into img; img->hdr is the caller's). */
static void product_pixels(diff_state *s, int k, rapid_image *img)
{
    int nx = s->pair.nx, ny = s->pair.ny;
    float *d[NPRODUCT] = {s->zogy.d, s->zogy.unc, s->zogy.scorr, s->zogy.pd,
                          s->naive_d, s->naive_unc, s->sfft.d, s->sfft.cconv,
                          s->sfft.unc, s->sfft.pd, s->pair.ref.data,
                          s->pair.cov.data, s->pair.unc.data,
                          s->refsci_psf.data};

    img->data = d[k];
    img->nx = nx, img->ny = ny;
    if (k == P_ZOGY_PSF)
        img->nx = img->ny = s->zogy.npd;
    else if (k == P_SFFT_PSF)
        img->nx = img->ny = s->sfft.npd;
    else if (k == P_REFSCI_PSF)
        img->nx = s->refsci_psf.nx, img->ny = s->refsci_psf.ny;
}

static int write_product(const char *path, const diff_args *a, diff_state *s,
                         int k, rapid_err *err)
{
    const product_kind *p = &kinds[k];
    rapid_header prim = RAPID_HEADER_INIT;
    rapid_image img = RAPID_IMAGE_INIT;
    rapid_fits_out *out = NULL;
    int rc;

    if ((rc = common_header(a, s, &prim, err)) ||
        (rc = method_header(s, p->method, &prim, err)))
        goto cleanup;
    if (p->extname && (rc = rapid_wcs_to_header(&s->sci_wcs, &img.hdr, err)))
        goto cleanup;
    if ((rc = add_cards(&img.hdr, &prim))) {
        rc = rapid_fail(err, rc, "%s: no memory for the header", path);
        goto cleanup;
    }
    if ((rc = rapid_header_set_str(&img.hdr, "BUNIT", p->bunit, p->bunit_comment)))
        goto header_fail;
    if (!p->extname && (rc = rapid_header_set_double(&img.hdr, "PSFNORM", 1.0,
                                                     "sum of the pixels")))
        goto header_fail;
    if (p->extname && strcmp(p->bunit, "DN/s") == 0 &&
        (rc = set_num(&img.hdr, "MAGZP", p->method < 0 ? s->ref_zp : s->sci_zp,
                      "AB mag of 1 DN/s of this image")))
        goto header_fail;
    product_pixels(s, k, &img);
    if ((rc = rapid_fits_create(&out, path, err)))
        goto cleanup;
    if ((p->extname && (rc = rapid_fits_set_primary_header(out, &prim, err))) ||
        (rc = rapid_fits_append_image(out, &img, p->extname, err))) {
        rapid_fits_abort(out);
        goto cleanup;
    }
    rc = rapid_fits_commit(out, err);
    goto cleanup;
header_fail:
    rc = rapid_header_fail(err, rc, path, "BUNIT/PSFNORM/MAGZP");
cleanup:
    img.data = NULL;
    rapid_image_release(&img);
    rapid_header_release(&prim);
    return rc;
}

/* The product set: the names of this run's products (and of every
 * product of this science image, which an earlier set may hold). */
static int write_products(const diff_args *a, diff_state *s,
                          char name[NPRODUCT][PATHLEN], rapid_err *err)
{
    const char *names[NPRODUCT], *known[NPRODUCT];
    const char *sci = base_name(a->sci);
    int idx[NPRODUCT], k, n = 0, rc = 0;
    rapid_prodset *set = NULL;
    size_t stem = stem_length(sci);

    for (k = 0; k < NPRODUCT; k++) {
        snprintf(name[k], PATHLEN, "%.*s%s.fits", (int)stem, sci, kinds[k].suffix);
        known[k] = name[k];
        if (made(s, k)) {
            idx[n] = k;
            names[n++] = name[k];
        }
    }
    if ((rc = rapid_prodset_begin_among(&set, a->out, names, n, known,
                                        NPRODUCT, err)))
        return rc;
    for (k = 0; k < n && rc == 0; k++)
        rc = write_product(rapid_prodset_path(set, k), a, s, idx[k], err);
    if (rc) {
        rapid_prodset_abort(set);
        rapid_err_prefix(err, "%s: the differences were not written", a->out);
        return rc;
    }
    return rapid_prodset_commit(set, err);
}

/* ------------------------------------------------------------ JSON */

static void json_chars(const char *v, size_t n)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + n;

    for (; p < end; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
}

static void json_str(const char *v)
{
    putchar('"');
    json_chars(v, strlen(v));
    putchar('"');
}

/* "dir/name" */
static void json_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    putchar('"');
    json_chars(dir, n);
    putchar('/');
    json_chars(name, strlen(name));
    putchar('"');
}

/* A number, or null when it is not one (never a bare NaN). */
static void json_num(double v)
{
    if (isfinite(v))
        printf("%.10g", v);
    else
        fputs("null", stdout);
}

static void print_json(const diff_args *a, const diff_state *s,
                       char name[NPRODUCT][PATHLEN], int written)
{
    static const char *const groups[NMETHOD + 1] = {"zogy", "naive", "sfft",
                                                    "refsci"};
    const rapid_gainmatch *m = &s->pair.match;
    int g, k, first_group = 1;

    fputs("{\"products\": {", stdout);
    for (g = 0; written && g <= NMETHOD; g++) {
        int first = 1;
        if (g < NMETHOD && (!s->run[g].ok))
            continue;
        printf("%s\"%s\": {", first_group ? "" : ", ", groups[g]);
        first_group = 0;
        for (k = 0; k < NPRODUCT; k++) {
            if (strcmp(kinds[k].json_group, groups[g]))
                continue;
            printf("%s\"%s\": ", first ? "" : ", ", kinds[k].json_key);
            first = 0;
            if (made(s, k)) {
                json_path(a->out, name[k]);
            } else {
                fputs("null", stdout);
            }
        }
        putchar('}');
    }
    fputs("}, \"match\": {\"scale\": ", stdout);
    json_num(m->scale);
    fputs(", \"scale_err\": ", stdout);
    json_num(m->scale_err);
    printf(", \"nstars\": %d, \"dx_median\": ", m->nstars);
    json_num(m->dx_median);
    fputs(", \"dy_median\": ", stdout);
    json_num(m->dy_median);
    fputs(", \"dx_rms\": ", stdout);
    json_num(m->dx_rms);
    fputs(", \"dy_rms\": ", stdout);
    json_num(m->dy_rms);
    fputs(", \"bkg_sci\": ", stdout);
    json_num(s->bkg_sci);
    fputs(", \"bkg_ref\": ", stdout);
    json_num(s->bkg_ref);
    fputs(", \"from\": ", stdout);
    json_str(m->from ? m->from : "");
    fputs(", \"zp_scale\": ", stdout);
    json_num(s->zp_scale);
    fputs(", \"apcorr\": ", stdout);
    json_num(s->pair.apcorr > 0 ? s->pair.apcorr : 1.0);
    printf(", \"shift\": [%.4f, %.4f]", s->pair.shift_x, s->pair.shift_y);
    fputs("}, \"methods\": {", stdout);
    for (g = 0, first_group = 1; g < NMETHOD; g++) {
        if (!a->asked[g])
            continue;
        printf("%s\"%s\": {\"status\": \"%s\", \"seconds\": %.3f",
               first_group ? "" : ", ", method_name[g],
               s->run[g].ok ? "ok" : "failed", s->run[g].seconds);
        first_group = 0;
        if (!s->run[g].ok) {
            fputs(", \"message\": ", stdout);
            json_str(s->run[g].msg);
        } else if (g == M_ZOGY) {
            fputs(", \"sigma_n\": ", stdout);
            json_num(s->zogy.sigma_n);
            fputs(", \"sigma_r\": ", stdout);
            json_num(s->zogy.sigma_r);
            fputs(", \"f_d\": ", stdout);
            json_num(s->zogy.fd);
            printf(", \"pad\": [%d, %d]", s->zogy.padx, s->zogy.pady);
            printf(", \"corr_n\": [%.4f, %.4f, %.4f, %.4f], \"corr_r\": "
                   "[%.4f, %.4f, %.4f, %.4f]", s->zogy.corr_n[0],
                   s->zogy.corr_n[1], s->zogy.corr_n[2], s->zogy.corr_n[3],
                   s->zogy.corr_r[0], s->zogy.corr_r[1], s->zogy.corr_r[2],
                   s->zogy.corr_r[3]);
            printf(", \"eps_model\": %.5f, \"pos_model\": %.4f, "
                   "\"eps_model_scorr\": %.5f, \"pos_model_scorr\": %.4f, "
                   "\"eps_nstars\": %d, \"eps_fill\": %.5f, "
                   "\"pos_fill\": %.4f", s->zogy.eps_d, s->zogy.pos_d,
                   s->zogy.eps_s, s->zogy.pos_s, s->zogy.neps,
                   s->zogy.eps_fill, s->zogy.pos_fill);
        } else if (g == M_SFFT) {
            const rapid_sfft_out *o = &s->sfft;
            fputs(", \"basis\": ", stdout);
            json_str(o->basis ? o->basis : "");
            printf(", \"order\": %d, \"bg_order\": %d, \"half_width\": %d, "
                   "\"nstamps\": %d, \"nrejected\": %d, \"npix\": %ld, "
                   "\"nunknowns\": %d, \"chi2r\": ", o->order, o->bg_order,
                   o->half_width, o->nstamps, o->nrejected, o->npix,
                   o->nunknowns);
            json_num(o->chi2r);
            fputs(", \"cond\": ", stdout);
            json_num(o->cond);
            fputs(", \"ksum\": ", stdout);
            json_num(o->ksum);
            fputs(", \"sigma_n\": ", stdout);
            json_num(o->sigma_n);
            fputs(", \"sigma_r\": ", stdout);
            json_num(o->sigma_r);
            printf(", \"pad\": [%d, %d], \"sec_fit\": %.3f, \"sec_conv\": %.3f",
                   o->padx, o->pady, o->sec_fit, o->sec_conv);
            printf(", \"eps_model\": %.5f, \"pos_model\": %.4f, "
                   "\"eps_nstars\": %d", o->eps_model, o->pos_model, o->neps);
        }
        putchar('}');
    }
    printf("}, \"stages\": {\"read\": %.3f, \"prepare\": %.3f", s->t_read,
           s->t_prepare);
    for (g = 0; g < NMETHOD; g++)
        if (a->asked[g])
            printf(", \"%s\": %.3f", method_name[g], s->run[g].seconds);
    printf(", \"write\": %.3f}}\n", s->t_write);
    fflush(stdout);
}

/* ------------------------------------------------------------ main */

static void state_release(diff_state *s)
{
    rapid_science_release(&s->sci);
    rapid_wcs_release(&s->sci_wcs);
    rapid_wcs_release(&s->ref_wcs);
    rapid_image_release(&s->ref);
    rapid_image_release(&s->cov);
    rapid_image_release(&s->unc);
    rapid_image_release(&s->ref_psf);
    rapid_image_release(&s->sci_psf);
    rapid_image_release(&s->refsci_psf);
    rapid_diff_pair_release(&s->pair);
    free(s->naive_d);
    free(s->naive_unc);
    rapid_zogy_out_release(&s->zogy);
    rapid_sfft_out_release(&s->sfft);
}

int cmd_diff(int argc, char **argv)
{
    static diff_args a;
    static diff_state s; /* large: static, one run per process */
    static char name[NPRODUCT][PATHLEN];
    static char wisdom[PATHLEN];
    rapid_err err = RAPID_ERR_INIT;
    rapid_diff_ref ref;
    const char *work;
    int k, nasked = 0, nok = 0, rc = 0, written = 0;
    double t0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    memset(&a, 0, sizeof a);
    memset(&s, 0, sizeof s);
    a.nthreads = 1;
    a.order = a.half_width = -1;
    for (k = 0; k < NMETHOD; k++)
        a.asked[k] = 1;
    cli_remove_temporaries_on_signals();
    if ((rc = parse(argc, argv, &a)) != 0)
        return rc;
    if (!a.wisdom && (work = getenv("RAPID_WORK")) != NULL && work[0]) {
        snprintf(wisdom, sizeof wisdom, "%s/fftw.wisdom", work);
        a.wisdom = wisdom;
    }
    s.sci_wcs = (rapid_wcs)RAPID_WCS_INIT;
    s.ref_wcs = (rapid_wcs)RAPID_WCS_INIT;
    s.zogy = (rapid_zogy_out)RAPID_ZOGY_OUT_INIT;
    s.bkg_sci = s.bkg_ref = NAN;

    progress("reading");
    t0 = now();
    if ((rc = read_inputs(&a, &s, &err)) != 0) {
        rc = cli_fail("diff", &err);
        goto cleanup;
    }
    s.t_read = now() - t0;

    progress("resampling the reference, backgrounds, matching");
    t0 = now();
    ref.image = s.ref.data;
    ref.cov = s.have_cov ? s.cov.data : NULL;
    ref.unc = s.have_unc ? s.unc.data : NULL;
    ref.nx = s.ref.nx;
    ref.ny = s.ref.ny;
    ref.wcs = &s.ref_wcs;
    ref.zp_scale = s.zp_scale;
    if ((rc = rapid_diff_prepare(&s.sci, &s.sci_wcs, &ref, &s.pair, &err)) != 0) {
        rapid_err_prefix(&err, "%s minus %s", a.sci, a.ref);
        rc = cli_fail("diff", &err);
        goto cleanup;
    }
    if (s.have_sci_psf && s.have_ref_psf &&
        rapid_diff_aperture_correct(&s.pair, s.sci_psf.data, s.sci_psf.nx,
                                    s.refsci_psf.data, s.refsci_psf.nx,
                                    &err) != 0) {
        rapid_err_prefix(&err, "%s minus %s", a.sci, a.ref);
        rc = cli_fail("diff", &err);
        goto cleanup;
    }
    s.t_prepare = now() - t0;
    s.bkg_sci = background_level(&s.pair.bkg_sci);
    s.bkg_ref = background_level(&s.pair.bkg_ref);
    /* the reference as read is not needed any more */
    rapid_image_release(&s.ref);
    rapid_image_release(&s.cov);
    rapid_image_release(&s.unc);

    if (a.asked[M_NAIVE])
        run_naive(&s);
    if (a.asked[M_ZOGY] || a.asked[M_SFFT])
        fft_begin(&a, &s);
    if (a.asked[M_ZOGY])
        run_zogy(&a, &s);
    if (a.asked[M_SFFT])
        run_sfft(&a, &s);
    if (a.asked[M_ZOGY] || a.asked[M_SFFT])
        fft_end(&a, &s);
    for (k = 0; k < NMETHOD; k++) {
        if (!a.asked[k])
            continue;
        nasked++;
        if (s.run[k].ok)
            nok++;
        else
            cli_error("diff", "%s failed: %s", method_name[k], s.run[k].msg);
    }
    if (nok > 0) {
        progress("writing");
        t0 = now();
        if (write_products(&a, &s, name, &err) != 0) {
            rc = cli_fail("diff", &err);
            goto cleanup;
        }
        s.t_write = now() - t0;
        written = 1;
    }
    print_json(&a, &s, name, written);
    rc = nok == nasked ? 0 : nok > 0 ? EXIT_PARTIAL : EXIT_WORK;
cleanup:
    state_release(&s);
    return rc;
}
