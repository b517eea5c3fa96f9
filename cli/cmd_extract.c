/* cmd_extract.c - `rapid extract`: the candidate catalog of a difference
 * image (detection, measurement, PSF-fit photometry, vetting). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapid/candidates.h"
#include "rapid/csv.h"
#include "rapid/dq.h"
#include "rapid/fits.h"
#include "rapid/wcs.h"

static const char usage_text[] =
    "usage: rapid extract --image FILE[EXT] --out CAT.fits|CAT.csv [options]\n"
    "\n"
    "Detect and measure the candidates of a difference image: positions,\n"
    "aperture, Kron and PSF-fit fluxes, shapes, vetting metrics, and whether\n"
    "each passes the cuts (columns: docs/candidates.md).  The catalog is a\n"
    "FITS binary table (extension CANDIDATES) or CSV, by the name of --out.\n"
    "Prints one JSON line: the catalog, the candidates, how many pass.\n"
    "\n"
    "  --image FILE[EXT]   the difference image (EXT: an extension name or\n"
    "                      number; default the first image HDU); its header's\n"
    "                      WCS gives ra, dec, its BUNIT the fluxes' unit\n"
    "  --unc FILE[EXT]     its 1-sigma uncertainty, the same size; without it\n"
    "                      the image's robust rms everywhere (header NOISESRC)\n"
    "  --detect FILE[EXT]  a matched-filter image to detect on (ZOGY's S_corr,\n"
    "                      a cross-convolved difference), the same size;\n"
    "                      without it, detection on the image itself\n"
    "  --psf FILE[EXT]     the image's PSF (unit sum, odd square); without EXT\n"
    "                      the primary HDU, or the OVERSAMP extension with its\n"
    "                      OVERSAMP factor when the file has one.  Without\n"
    "                      --psf, a Gaussian of the candidates' median FWHM\n"
    "  --mask FILE[EXT]    pixels that are not 0 there are not used\n"
    "  --saturated FILE[EXT]  saturated pixels: those with bit 2 (SATURATED)\n"
    "                      set, as in an L2 file's DQ extension (FILE[DQ]) or\n"
    "                      a 0/2 mask of the reference's; up to 4 times (their\n"
    "                      union).  Candidates near a cluster of them (a\n"
    "                      saturated star's rings) fail the satrad cut\n"
    "  --negative          negative candidates too (sign -1)\n"
    "  --cuts FILE.ini     vetting cuts (section [cuts]; docs/configuration.md)\n"
    "  --thresh SIGMA      detection threshold (2.5)\n"
    "  --minarea N         minimum connected pixels (5)\n"
    "  --filter-fwhm PX    Gaussian detection filter without --detect, 0 none (2)\n"
    "  --deblend-nthresh N deblending levels (32)\n"
    "  --deblend-cont C    minimum deblending contrast (0.0001)\n"
    "  --background MESH   subtract a background of this mesh size (px) first,\n"
    "                      for an image that has one (0: none, a difference)\n"
    "  --psf-box HALF      PSF fit box half-side, px (3: 7 x 7)\n"
    "  --threads N         PSF fits on N threads (1; the same results)\n"
    "  --flux-floor F      add F x |flux_psf| to fluxerr_psf in quadrature, for\n"
    "                      a PSF known to differ from the sources' (0)\n"
    "  --psf-model-err E   the PSF model's fractional error per pixel, in the\n"
    "                      chi2 (0 for an oversampled PSF, 0.1 for a native\n"
    "                      one or the Gaussian)\n"
    "\n"
    "Exit status: 0 written, 1 failure (a file unreadable, of another size,\n"
    "the catalog not written), 2 bad usage (unknown option, unreadable value,\n"
    "a missing --image or --out, an --out that is neither .fits nor .csv).\n";

enum {
    OPT_IMAGE = 1, OPT_UNC, OPT_DETECT, OPT_PSF, OPT_MASK, OPT_NEGATIVE,
    OPT_CUTS, OPT_OUT, OPT_THRESH, OPT_MINAREA, OPT_FILTER, OPT_BACKGROUND,
    OPT_PSFBOX, OPT_FLOOR, OPT_DBN, OPT_DBC, OPT_MODELERR, OPT_THREADS,
    OPT_SATURATED
};

static const cli_option options[] = {
    {"--image", NULL, 1, OPT_IMAGE},
    {"--unc", NULL, 1, OPT_UNC},
    {"--detect", NULL, 1, OPT_DETECT},
    {"--psf", NULL, 1, OPT_PSF},
    {"--mask", NULL, 1, OPT_MASK},
    {"--saturated", NULL, 1, OPT_SATURATED},
    {"--negative", NULL, 0, OPT_NEGATIVE},
    {"--cuts", NULL, 1, OPT_CUTS},
    {"--out", NULL, 1, OPT_OUT},
    {"--thresh", NULL, 1, OPT_THRESH},
    {"--minarea", NULL, 1, OPT_MINAREA},
    {"--filter-fwhm", NULL, 1, OPT_FILTER},
    {"--background", NULL, 1, OPT_BACKGROUND},
    {"--psf-box", NULL, 1, OPT_PSFBOX},
    {"--flux-floor", NULL, 1, OPT_FLOOR},
    {"--deblend-nthresh", NULL, 1, OPT_DBN},
    {"--deblend-cont", NULL, 1, OPT_DBC},
    {"--psf-model-err", NULL, 1, OPT_MODELERR},
    {"--threads", NULL, 1, OPT_THREADS},
    {NULL, NULL, 0, 0},
};

typedef struct extract_args {
    const char *image, *unc, *detect, *psf, *mask, *cuts, *out;
    const char *sat[4];
    int csv, nsat;
} extract_args;

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* FILE[EXT] -> path and hdu (NULL when there is no [EXT]); caller frees
 * *path. */
static int split_hdu(const char *arg, char **path, char **hdu)
{
    size_t n = strlen(arg);
    const char *open = strrchr(arg, '[');

    *hdu = NULL;
    if (n > 2 && arg[n - 1] == ']' && open && open > arg && open < arg + n - 2) {
        if (!(*path = strndup(arg, (size_t)(open - arg))) ||
            !(*hdu = strndup(open + 1, (size_t)(arg + n - 2 - open))))
            return -1;
        return 0;
    }
    return (*path = strdup(arg)) ? 0 : -1;
}

/* Read FILE[EXT] (an image) of the size wanted (nx 0: any). */
static int read_arg(const char *arg, rapid_image *img, int nx, int ny,
                    const char *what, rapid_err *err)
{
    char *path = NULL, *hdu = NULL;
    int rc;

    if (split_hdu(arg, &path, &hdu))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", arg);
    rc = rapid_fits_read_image(path, hdu, img, err);
    if (rc == 0 && nx > 0 && (img->nx != nx || img->ny != ny))
        rc = rapid_fail(err, RAPID_E_ARG, "%s: %s of %d x %d pixels, the image "
                        "has %d x %d", arg, what, img->nx, img->ny, nx, ny);
    free(path);
    free(hdu);
    return rc;
}

/* The PSF: FILE[EXT] as given, or FILE's OVERSAMP extension when it has
 * one, else its primary HDU. */
static int read_psf(const char *arg, rapid_psfphot_psf *psf, rapid_err *err)
{
    rapid_image img = RAPID_IMAGE_INIT;
    char *path = NULL, *hdu = NULL;
    long over = 1;
    int rc, has;

    if (split_hdu(arg, &path, &hdu))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", arg);
    if (!hdu && (has = rapid_fits_has_hdu(path, "OVERSAMP", err)) < 0) {
        rc = has;
        goto cleanup;
    }
    rc = rapid_fits_read_image(path, hdu ? hdu : has ? "OVERSAMP" : "0", &img, err);
    if (rc == 0 && rapid_header_has(&img.hdr, "OVERSAMP") &&
        (rc = rapid_header_get_long(&img.hdr, "OVERSAMP", &over, err)) == 0 &&
        (over < 1 || over > 64))
        rc = rapid_fail(err, RAPID_E_RANGE, "OVERSAMP = %ld is not a sampling "
                        "factor (1 .. 64)", over);
    if (rc == 0)
        rc = rapid_psfphot_psf_set(psf, img.data, img.nx, img.ny, (int)over, arg, err);
    else if (rc == RAPID_E_KEY || rc == RAPID_E_RANGE)
        rapid_err_prefix(err, "%s", arg);
cleanup:
    rapid_image_release(&img);
    free(path);
    free(hdu);
    return rc;
}

static int parse(int argc, char **argv, rapid_cand_opts *o, extract_args *a)
{
    cli_parser p;
    int id, rc = 0;
    double v;

    cli_parser_init(&p, "extract", options, argc, argv);
    while (rc == 0 && (id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_IMAGE: a->image = p.value; break;
        case OPT_UNC: a->unc = p.value; break;
        case OPT_DETECT: a->detect = p.value; break;
        case OPT_PSF: a->psf = p.value; break;
        case OPT_MASK: a->mask = p.value; break;
        case OPT_SATURATED:
            if (a->nsat == 4)
                rc = cli_usage("extract", "--saturated: at most 4 times");
            else
                a->sat[a->nsat++] = p.value;
            break;
        case OPT_NEGATIVE: o->negative = 1; break;
        case OPT_CUTS: a->cuts = p.value; break;
        case OPT_OUT: a->out = p.value; break;
        case OPT_THRESH:
        case OPT_FILTER:
            if (cli_parse_double(p.value, &v) || v < 0 || (id == OPT_THRESH && v <= 0) ||
                v > 1000)
                rc = cli_usage("extract", "invalid %s '%s': must be a number %s",
                               p.opt, p.value, id == OPT_THRESH ? "> 0 and <= 1000"
                                                                : "in 0 .. 1000");
            else if (id == OPT_THRESH)
                o->thresh = v;
            else
                o->filter_fwhm = v;
            break;
        case OPT_DBN: rc = cli_int_option(&p, 1, 256, &o->deblend_nthresh); break;
        case OPT_DBC:
            if (cli_parse_double(p.value, &v) || v < 0 || v > 1)
                rc = cli_usage("extract", "invalid --deblend-cont '%s': must be a "
                               "number in 0 .. 1", p.value);
            else
                o->deblend_cont = v;
            break;
        case OPT_MODELERR:
            if (cli_parse_double(p.value, &v) || v < 0 || v > 1)
                rc = cli_usage("extract", "invalid --psf-model-err '%s': must be a "
                               "number in 0 .. 1", p.value);
            else
                o->psf.model_err = v;
            break;
        case OPT_FLOOR:
            if (cli_parse_double(p.value, &v) || v < 0 || v > 1)
                rc = cli_usage("extract", "invalid --flux-floor '%s': must be a "
                               "number in 0 .. 1", p.value);
            else
                o->psf.flux_floor = v;
            break;
        case OPT_MINAREA: rc = cli_int_option(&p, 1, 10000, &o->minarea); break;
        case OPT_BACKGROUND: rc = cli_int_option(&p, 0, 4096, &o->bkg_mesh); break;
        case OPT_PSFBOX: rc = cli_int_option(&p, 1, 32, &o->psf.half); break;
        case OPT_THREADS:
            rc = cli_int_option(&p, 1, RAPID_PSFPHOT_MAXTHREADS, &o->psf.nthreads);
            break;
        case CLI_OPERAND:
            rc = cli_usage("extract", "unexpected argument '%s' (the image is "
                           "given with --image)", p.value);
            break;
        default:
            rc = EXIT_USAGE;
        }
    }
    if (rc == 0 && (!a->image || !a->out))
        rc = cli_usage("extract", "--image and --out are required (see rapid "
                       "extract --help)");
    if (rc == 0 && !ends_with(a->out, ".fits") && !ends_with(a->out, ".fits.gz") &&
        !ends_with(a->out, ".fit") && !ends_with(a->out, ".csv"))
        rc = cli_usage("extract", "--out %s: the name must end in .fits, "
                       ".fits.gz or .csv", a->out);
    a->csv = rc == 0 && ends_with(a->out, ".csv");
    return rc;
}

int cmd_extract(int argc, char **argv)
{
    rapid_cand_opts o;
    extract_args a;
    rapid_image img = RAPID_IMAGE_INIT, unc = RAPID_IMAGE_INIT,
                det = RAPID_IMAGE_INIT, mask = RAPID_IMAGE_INIT;
    rapid_psfphot_psf psf = RAPID_PSFPHOT_PSF_INIT;
    rapid_wcs wcs = RAPID_WCS_INIT;
    rapid_cand_input in;
    rapid_table cat = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    unsigned char *bad = NULL, *sat = NULL;
    char bunit[72] = "";
    int rc, have_wcs = 0;
    long i, npass = 0, nneg = 0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    memset(&a, 0, sizeof a);
    rapid_cand_opts_init(&o);
    cli_remove_temporaries_on_signals();
    if ((rc = parse(argc, argv, &o, &a)) != 0)
        return rc;
    if (a.cuts && rapid_cuts_read(&o.cuts, a.cuts, &err) != 0) {
        rc = cli_fail("extract", &err);
        goto cleanup;
    }
    if (read_arg(a.image, &img, 0, 0, "image", &err) ||
        (a.unc && read_arg(a.unc, &unc, img.nx, img.ny, "uncertainty", &err)) ||
        (a.detect && read_arg(a.detect, &det, img.nx, img.ny, "detection image", &err)) ||
        (a.mask && read_arg(a.mask, &mask, img.nx, img.ny, "mask", &err)) ||
        (a.psf && read_psf(a.psf, &psf, &err))) {
        rc = cli_fail("extract", &err);
        goto cleanup;
    }
    if (rapid_wcs_from_header(&wcs, &img.hdr, &err) == 0)
        have_wcs = 1;
    else
        cli_error("extract", "warning: %s: no usable WCS (%s): ra, dec are NaN",
                  a.image, err.msg);
    if (rapid_header_has(&img.hdr, "BUNIT"))
        rapid_header_get_str(&img.hdr, "BUNIT", bunit, sizeof bunit, NULL);
    if (a.mask) {
        size_t n = (size_t)img.nx * img.ny, k;
        if (!(bad = malloc(n))) {
            cli_error("extract", "out of memory");
            rc = EXIT_WORK;
            goto cleanup;
        }
        for (k = 0; k < n; k++)
            bad[k] = mask.data[k] != 0;
    }
    if (a.nsat > 0) {
        size_t n = (size_t)img.nx * img.ny, k;
        int q;
        if (!(sat = calloc(n, 1))) {
            cli_error("extract", "out of memory");
            rc = EXIT_WORK;
            goto cleanup;
        }
        for (q = 0; q < a.nsat; q++) {
            rapid_image s = RAPID_IMAGE_INIT;
            if (read_arg(a.sat[q], &s, img.nx, img.ny, "saturation map", &err)) {
                rapid_image_release(&s);
                rc = cli_fail("extract", &err);
                goto cleanup;
            }
            for (k = 0; k < n; k++)
                if (isfinite(s.data[k]) && s.data[k] >= 0 && s.data[k] < 4294967296.0 &&
                    ((uint32_t)s.data[k] & RAPID_DQ_SATURATED))
                    sat[k] = 1;
            rapid_image_release(&s);
        }
    }
    memset(&in, 0, sizeof in);
    in.diff = img.data;
    in.sat = sat;
    in.unc = a.unc ? unc.data : NULL;
    in.detect = a.detect ? det.data : NULL;
    in.bad = bad;
    in.nx = img.nx;
    in.ny = img.ny;
    in.bunit = bunit;
    in.wcs = have_wcs ? &wcs : NULL;
    in.psf = a.psf ? &psf : NULL;
    if (rapid_candidates_extract(&in, &o, &cat, &err) != 0) {
        rapid_err_prefix(&err, "%s", a.image);
        rc = cli_fail("extract", &err);
        goto cleanup;
    }
    if ((a.csv ? rapid_table_write_csv(a.out, &cat, &err)
               : rapid_fits_write_table(a.out, &cat, "CANDIDATES", &err)) != 0) {
        rc = cli_fail("extract", &err);
        goto cleanup;
    }
    {
        const int32_t *pass = rapid_table_col(&cat, "pass")->data;
        const int32_t *sign = rapid_table_col(&cat, "sign")->data;
        for (i = 0; i < cat.nrows; i++) {
            npass += pass[i];
            nneg += sign[i] < 0;
        }
    }
    printf("{\"out\": \"%s\", \"candidates\": %ld, \"positive\": %ld, "
           "\"negative\": %ld, \"pass\": %ld}\n", a.out, cat.nrows,
           cat.nrows - nneg, nneg, npass);
    rc = 0;
cleanup:
    rapid_table_release(&cat);
    rapid_image_release(&img);
    rapid_image_release(&unc);
    rapid_image_release(&det);
    rapid_image_release(&mask);
    rapid_psfphot_psf_release(&psf);
    if (have_wcs)
        rapid_wcs_release(&wcs);
    free(bad);
    free(sat);
    return rc;
}
