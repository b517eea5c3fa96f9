/* cmd_diff.c - `rapid diff`: a science image minus its reference (ZOGY,
 * the naive difference and the kernel fit, SFFT), written as one product
 * set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapid/diffrun.h"

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
    "                     kernel fit's linear algebra); with 2 or more the\n"
    "                     pair is prepared on two (1)\n"
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
enum { M_ZOGY = RAPID_DIFFRUN_ZOGY, M_NAIVE = RAPID_DIFFRUN_NAIVE,
       M_SFFT = RAPID_DIFFRUN_SFFT, NMETHOD = RAPID_DIFFRUN_NMETHOD,
       NPRODUCT = RAPID_DIFFRUN_NPRODUCT };
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

#define PATHLEN RAPID_DIFFRUN_PATH

typedef struct diff_args {
    char sci[PATHLEN], sci_ext[80];   /* --sci FILE[EXT] split */
    const char *ref, *out, *wisdom;
    const char *sci_psf, *ref_psf, *ref_cov, *ref_unc; /* as given */
    int asked[NMETHOD];
    int nthreads;
    int order, half_width;            /* sfft's: -1 the library's default */
} diff_args;

typedef rapid_diffrun diff_state;

static void progress(void *arg, const char *what)
{
    (void)arg;
    if (cli_interactive())
        fprintf(stderr, "rapid diff: %s\n", what);
}

static void warning(void *arg, const char *msg)
{
    (void)arg;
    cli_error("diff", "warning: %s", msg);
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
            const rapid_diffrun_product *kind = rapid_diffrun_product_kind(k);
            if (strcmp(kind->group, groups[g]))
                continue;
            printf("%s\"%s\": ", first ? "" : ", ", kind->key);
            first = 0;
            if (rapid_diffrun_made(s, k)) {
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
        printf("%s\"%s\": {\"status\": \"%s\", \"seconds\": %.3f, "
               "\"cpu_seconds\": %.3f", first_group ? "" : ", ", method_name[g],
               s->run[g].ok ? "ok" : "failed", s->run[g].seconds,
               s->run[g].cpu_seconds);
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
            printf(", \"ref_noise_s\": %.4f, \"ref_noise_d\": %.4f",
                   s->zogy.ref_fs, s->zogy.ref_fd);
            printf(", \"eps_model\": %.5f, \"pos_model\": %.4f, "
                   "\"eps_model_scorr\": %.5f, \"pos_model_scorr\": %.4f, "
                   "\"eps_nstars\": %d, \"eps_fill\": %.5f, "
                   "\"pos_fill\": %.4f, \"eps_fill_ref\": %.5f, "
                   "\"pos_fill_ref\": %.4f", s->zogy.eps_d, s->zogy.pos_d,
                   s->zogy.eps_s, s->zogy.pos_s, s->zogy.neps,
                   s->zogy.eps_fill, s->zogy.pos_fill, s->zogy.eps_fill_ref,
                   s->zogy.pos_fill_ref);
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
                   "\"eps_nstars\": %d, \"ncandidates\": %d, "
                   "\"eiv_steps\": %d, \"kerr_centre\": ", o->eps_model,
                   o->pos_model, o->neps, o->ncandidates, o->eiv_steps);
            json_num(o->kerr_centre);
            fputs(", \"kerr_edge\": ", stdout);
            json_num(o->kerr_edge);
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

int cmd_diff(int argc, char **argv)
{
    static diff_args a;
    static char name[NPRODUCT][PATHLEN];
    static char wisdom[PATHLEN];
    rapid_err err = RAPID_ERR_INIT;
    rapid_diffrun_opts o;
    rapid_diffrun *s = NULL;
    const char *work;
    int k, nasked = 0, nok = 0, rc = 0, written = 0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    memset(&a, 0, sizeof a);
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
    rapid_diffrun_opts_init(&o);
    o.sci = a.sci;
    o.sci_ext = a.sci_ext;
    o.ref = a.ref;
    o.sci_psf = a.sci_psf;
    o.ref_psf = a.ref_psf;
    o.ref_cov = a.ref_cov;
    o.ref_unc = a.ref_unc;
    memcpy(o.asked, a.asked, sizeof o.asked);
    o.nthreads = a.nthreads;
    o.order = a.order;
    o.half_width = a.half_width;
    o.wisdom = a.wisdom;
    o.warn = warning;
    o.progress = progress;
    if (!(s = rapid_diffrun_new(&o))) {
        cli_error("diff", "out of memory");
        return EXIT_WORK;
    }
    if (rapid_diffrun_read(s, &err) != 0 || rapid_diffrun_prepare(s, &err) != 0) {
        rc = cli_fail("diff", &err);
        goto cleanup;
    }
    nok = rapid_diffrun_methods(s);
    for (k = 0; k < NMETHOD; k++) {
        if (!a.asked[k])
            continue;
        nasked++;
        if (!s->run[k].ok)
            cli_error("diff", "%s failed: %s", method_name[k], s->run[k].msg);
    }
    for (k = 0; k < NPRODUCT; k++)
        rapid_diffrun_product_name(s, k, name[k], PATHLEN);
    if (nok > 0) {
        if (rapid_diffrun_write_set(s, a.out, &err) != 0) {
            rc = cli_fail("diff", &err);
            goto cleanup;
        }
        written = 1;
    }
    print_json(&a, s, name, written);
    rc = nok == nasked ? 0 : nok > 0 ? EXIT_PARTIAL : EXIT_WORK;
cleanup:
    rapid_diffrun_free(s);
    return rc;
}
