/* cmd_coadd.c - `rapid coadd`: a reference image from L2 files. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "rapid/coadd.h"
#include "rapid/filters.h"
#include "rapid/tile.h"

static const char usage_text[] =
    "usage: rapid coadd --rtid N --filter F --out DIR [options] INPUTS...\n"
    "       rapid coadd --rtid N --filter F --out DIR --inputs LISTFILE\n"
    "\n"
    "Make the reference image of sky tile N in filter F (e.g. H158 or F158)\n"
    "from L2 images: a flux-conserving coadd on a north-up TAN grid centred on\n"
    "the tile, with coverage and uncertainty maps, reference PSF and source\n"
    "catalog, written to DIR as rapid_ref_<N>_<F>{,_cov,_unc,_psf,_cat}.fits.\n"
    "The statistics (refimmeta) are printed as one JSON object.\n"
    "\n"
    "  --size PIX         grid side in pixels (7000)\n"
    "  --max-inputs N     use at most N inputs, nearest the tile centre (25)\n"
    "  --min-inputs N     fewer usable inputs is exit 33 (3)\n"
    "  --threads N        inputs resampled in parallel (1)\n"
    "  --inputs FILE      L2 files, one per line (besides any on the line)\n"
    "  --psfs PATH        a directory holding the PSFs (*PSF*_<F>_<SCA>.fits),\n"
    "                     or a file listing one PSF per input, in order;\n"
    "                     default: beside each input, in psf/ or ../psf/\n"
    "  --allow-large      run even when the memory it needs (estimated up\n"
    "                     front) is more than the memory available\n"
    "\n"
    "DIR holds this reference and nothing else: the five files are replaced\n"
    "together (an interrupted run leaves the earlier five), and a DIR that\n"
    "holds other files is refused.\n"
    "\n"
    "Exit status: 0 made, 33 too few inputs, 1 failure (or too large for the\n"
    "memory available), 2 bad usage.\n";

typedef struct list {
    char **v;
    int n, cap;
} list;

static int push(list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v, l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void list_free(list *l)
{
    int i;
    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Lines of a file (blank lines and # comments skipped). */
static int read_list(const char *path, list *l)
{
    FILE *f = fopen(path, "r");
    char line[4096];

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t"), *e = s + strlen(s);
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
            *--e = '\0';
        if (*s && *s != '#' && push(l, s)) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    int64_t v;

    if (cli_parse_int64(s, &v) || v < lo || v > hi)
        return cli_usage("coadd", "invalid %s '%s': must be an integer in "
                         "%d .. %d", opt, s, lo, hi);
    *out = (int)v;
    return 0;
}

static void print_meta(const rapid_coadd *c, int64_t rtid, const char *filter,
                       const char *dir)
{
    const rapid_refimmeta *m = &c->meta;

    printf("{\"rtid\": %" PRId64 ", \"filter\": \"%s\", \"dir\": \"%s\", "
           "\"nframes\": %d, \"mjdobsmin\": %.6f, \"mjdobsmax\": %.6f, "
           "\"npixsat\": %ld, \"npixnan\": %ld, \"clmean\": %.6g, "
           "\"clstddev\": %.6g, \"clnoutliers\": %ld, \"gmedian\": %.6g, "
           "\"datascale\": %.6g, \"gmin\": %.6g, \"gmax\": %.6g, "
           "\"cov5percent\": %.4f, \"medncov\": %.4f, \"medpixunc\": %.6g, "
           "\"fwhmmedpix\": %.4f, \"fwhmminpix\": %.4f, \"fwhmmaxpix\": %.4f, "
           "\"nsexcatsources\": %ld}\n",
           rtid, filter, dir, m->nframes, m->mjdobsmin, m->mjdobsmax, m->npixsat,
           m->npixnan, m->clmean, m->clstddev, m->clnoutliers, m->gmedian,
           m->datascale, m->gmin, m->gmax, m->cov5percent, m->medncov,
           m->medpixunc, isfinite(m->fwhmmedpix) ? m->fwhmmedpix : -1,
           isfinite(m->fwhmminpix) ? m->fwhmminpix : -1,
           isfinite(m->fwhmmaxpix) ? m->fwhmmaxpix : -1, m->nsexcatsources);
}

/* The PSF in directory dir of the L2 file at path (by its FILTER and
 * SCA_NUM). */
static int psf_in_dir(const char *dir, const char *path, list *psf)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;
    char f[16], here[4200], found[4096];
    long sca;
    int rc = 0;

    snprintf(here, sizeof here, "%s/input", dir); /* find_psf looks beside it */
    if (rapid_fits_read_header(path, NULL, &h, &err) ||
        rapid_header_get_str(&h, "FILTER", f, sizeof f, &err) ||
        rapid_header_get_long(&h, "SCA_NUM", &sca, &err) ||
        rapid_coadd_find_psf(here, f, (int)sca, found, sizeof found, &err)) {
        rapid_err_prefix(&err, "%s", path);
        rc = cli_fail("coadd", &err);
    } else if (push(psf, found)) {
        rc = EXIT_WORK;
    }
    rapid_header_release(&h);
    return rc;
}

/* PSF paths per input from --psfs: a directory, or a list file. */
static int resolve_psfs(const char *psfs, const list *files, list *psf,
                        rapid_coadd_input *in)
{
    struct stat sb;
    int k, rc = 0;

    if (!psfs)
        return 0;
    if (stat(psfs, &sb) != 0)
        return cli_usage("coadd", "--psfs %s: no such file or directory",
                         psfs);
    if (S_ISDIR(sb.st_mode)) {
        for (k = 0; k < files->n && rc == 0; k++)
            rc = psf_in_dir(psfs, files->v[k], psf);
    } else if (read_list(psfs, psf)) {
        cli_error("coadd", "%s: cannot read the PSF list", psfs);
        rc = EXIT_WORK;
    } else if (psf->n != files->n) {
        rc = cli_usage("coadd", "%s lists %d PSFs for %d inputs", psfs,
                       psf->n, files->n);
    }
    for (k = 0; rc == 0 && k < files->n; k++)
        in[k].psf_path = psf->v[k];
    return rc;
}

int cmd_coadd(int argc, char **argv)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_coadd_input *in = NULL;
    list files = {0}, psf = {0};
    const char *filter = NULL, *out = NULL, *psfs = NULL;
    int64_t rtid = 0;
    int i, rc = 0, allow_large = 0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    rapid_coadd_opts_init(&o);
    cli_remove_temporaries_on_signals();
    for (i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        int val = i + 1 < argc;
        if (strcmp(a, "--rtid") == 0 && val) {
            if (cli_parse_int64(argv[++i], &rtid) || rtid < 1 ||
                rtid > rapid_tile_count(RAPID_TILE_NSIDE))
                rc = cli_usage("coadd", "invalid rtid '%s'", argv[i]);
        } else if (strcmp(a, "--filter") == 0 && val) {
            filter = argv[++i];
        } else if (strcmp(a, "--out") == 0 && val) {
            out = argv[++i];
        } else if (strcmp(a, "--size") == 0 && val) {
            rc = parse_int("--size", argv[++i], 16, 100000, &o.size);
        } else if (strcmp(a, "--max-inputs") == 0 && val) {
            rc = parse_int("--max-inputs", argv[++i], 1, 255, &o.max_inputs);
        } else if (strcmp(a, "--min-inputs") == 0 && val) {
            rc = parse_int("--min-inputs", argv[++i], 1, 255, &o.min_inputs);
        } else if (strcmp(a, "--threads") == 0 && val) {
            rc = parse_int("--threads", argv[++i], 1, 64, &o.nthreads);
        } else if (strcmp(a, "--allow-large") == 0) {
            allow_large = 1;
        } else if (strcmp(a, "--psfs") == 0 && val) {
            psfs = argv[++i];
        } else if (strcmp(a, "--inputs") == 0 && val) {
            if (read_list(argv[++i], &files)) {
                cli_error("coadd", "%s: cannot read the input list", argv[i]);
                rc = EXIT_WORK;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            rc = cli_usage("coadd", "unknown option or missing value: '%s' "
                           "(see rapid coadd --help)", a);
        } else if (push(&files, a)) {
            rc = EXIT_WORK;
        }
    }
    if (rc == 0 && (!rtid || !filter || !out))
        rc = cli_usage("coadd", "--rtid, --filter and --out are required "
                       "(see rapid coadd --help)");
    if (rc == 0 && !rapid_filter_by_name(filter))
        rc = cli_usage("coadd", "unknown filter '%s'", filter);
    if (rc == 0 && files.n == 0)
        rc = cli_usage("coadd", "no input files");
    if (rc == 0 && !(in = calloc((size_t)files.n, sizeof *in)))
        rc = EXIT_WORK;
    for (i = 0; rc == 0 && i < files.n; i++)
        in[i].path = files.v[i];
    if (rc == 0)
        rc = resolve_psfs(psfs, &files, &psf, in);
    if (rc == 0) {
        char what[128];
        snprintf(what, sizeof what, "a %d x %d reference image (%d thread%s)",
                 o.size, o.size, o.nthreads, o.nthreads == 1 ? "" : "s");
        rc = cli_check_memory("coadd", rapid_coadd_memory(&o, in, files.n),
                              what, allow_large);
    }
    if (rc == 0) {
        int r = rapid_coadd_make(&o, rtid, filter, in, files.n, &c,
                                 cli_interactive() ? cli_progress : NULL,
                                 "coadd: inputs resampled", &err);
        if (r == RAPID_E_TOOFEW) {
            cli_error("coadd", "%s", err.msg);
            rc = RAPID_EXIT_TOOFEW;
        } else if (r) {
            rc = cli_fail("coadd", &err);
        } else {
            const rapid_filter *fl = rapid_filter_by_name(filter);
            if (rapid_coadd_write(&c, out, rtid, fl->name, &err))
                rc = cli_fail("coadd", &err);
            else
                print_meta(&c, rtid, fl->name, out);
            rapid_coadd_release(&c);
        }
    }
    free(in);
    list_free(&files);
    list_free(&psf);
    return rc;
}
