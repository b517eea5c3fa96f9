/* cmd_coadd.c - `rapid coadd`: a reference image from L2 files. */
#include <errno.h>
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
    "  --inputs FILE      L2 files, one per line (besides any on the line);\n"
    "                     relative paths are from the current directory\n"
    "  --psfs PATH        a directory holding the PSFs (*PSF*_<F>_<SCA>.fits),\n"
    "                     or a file listing one PSF per input, in order;\n"
    "                     default: beside each input, in psf/ or ../psf/\n"
    "  --allow-large      run even when the memory it needs (estimated up\n"
    "                     front) is more than the memory available\n"
    "\n"
    "DIR holds this reference and nothing else: the five files are replaced\n"
    "together (an interrupted run leaves the earlier five), and a DIR that\n"
    "holds other files is refused.  Inputs that cannot be used (another sky\n"
    "area, beyond --max-inputs) are left out with a warning naming each.\n"
    "\n"
    "Exit status: 0 made, 33 too few usable inputs (nothing written),\n"
    "1 failure (an input unreadable or of another filter, a product not\n"
    "written, too large for the memory available), 2 bad usage (unknown\n"
    "option, unreadable value, unknown filter, a list file that cannot be\n"
    "read, a --psfs list of the wrong length, the same file given twice,\n"
    "an empty --out, a directory given to --inputs).\n";

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

static void print_meta(const rapid_coadd *c, int64_t rtid, const char *filter,
                       const char *dir)
{
    const rapid_refimmeta *m = &c->meta;

    printf("{\"rtid\": %" PRId64 ", \"filter\": \"%s\", \"dir\": \"%s\", "
           "\"nframes\": %d, \"mjdobsmin\": %.6f, \"mjdobsmax\": %.6f, "
           "\"npixsat\": %" PRId64 ", \"npixnan\": %" PRId64 ", \"clmean\": %.6g, "
           "\"clstddev\": %.6g, \"clnoutliers\": %" PRId64 ", \"gmedian\": %.6g, "
           "\"datascale\": %.6g, \"gmin\": %.6g, \"gmax\": %.6g, "
           "\"cov5percent\": %.4f, \"medncov\": %.4f, \"medpixunc\": %.6g, "
           "\"fwhmmedpix\": %.4f, \"fwhmminpix\": %.4f, \"fwhmmaxpix\": %.4f, "
           "\"nsexcatsources\": %" PRId64 "}\n",
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
        rc = cli_usage("coadd", "--psfs %s: cannot read the PSF list: %s",
                       psfs, strerror(errno));
    } else if (psf->n != files->n) {
        rc = cli_usage("coadd", "%s lists %d PSFs for %d inputs", psfs,
                       psf->n, files->n);
    }
    for (k = 0; rc == 0 && k < files->n; k++)
        in[k].psf_path = psf->v[k];
    return rc;
}

/* The library names a filter by its database name ("R062"); messages
 * echo the name the user gave ("F062", "r062").  Whole words only: not
 * inside a file name such as Roman_TDS_simple_model_R062_1_1.fits. */
static void user_spelling(char *msg, size_t sz, const char *canon,
                          const char *typed)
{
    const char *word = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789_./-";
    size_t nc = strlen(canon), nt = strlen(typed), len = strlen(msg);
    char *p = msg;

    if (strcmp(canon, typed) == 0 || nt > 64)
        return;
    while ((p = strstr(p, canon)) != NULL) {
        int alone = (p == msg || !strchr(word, p[-1])) &&
                    (p[nc] == '\0' || !strchr(word, p[nc]));
        if (!alone || len - nc + nt >= sz) {
            p += nc;
            continue;
        }
        memmove(p + nt, p + nc, len - (size_t)(p - msg) - nc + 1);
        memcpy(p, typed, nt);
        len = len - nc + nt;
        p += nt;
    }
}

enum {
    OPT_RTID = 1, OPT_FILTER, OPT_OUT, OPT_SIZE, OPT_MAX_INPUTS,
    OPT_MIN_INPUTS, OPT_THREADS, OPT_PSFS, OPT_INPUTS, OPT_ALLOW_LARGE
};

static const cli_option options[] = {
    {"--rtid", NULL, 1, OPT_RTID},
    {"--filter", NULL, 1, OPT_FILTER},
    {"--out", NULL, 1, OPT_OUT},
    {"--size", NULL, 1, OPT_SIZE},
    {"--max-inputs", NULL, 1, OPT_MAX_INPUTS},
    {"--min-inputs", NULL, 1, OPT_MIN_INPUTS},
    {"--threads", NULL, 1, OPT_THREADS},
    {"--psfs", NULL, 1, OPT_PSFS},
    {"--inputs", NULL, 1, OPT_INPUTS},
    {"--allow-large", NULL, 0, OPT_ALLOW_LARGE},
    {NULL, NULL, 0, 0},
};

typedef struct coadd_args {
    int64_t rtid;
    const char *filter, *out, *psfs;
    list files;
    int allow_large;
} coadd_args;

static int parse(int argc, char **argv, rapid_coadd_opts *o, coadd_args *a)
{
    cli_parser p;
    int id, rc = 0;

    cli_parser_init(&p, "coadd", options, argc, argv);
    while (rc == 0 && (id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_RTID:
            rc = cli_int_value(&p, 1, rapid_tile_count(RAPID_TILE_NSIDE),
                               &a->rtid);
            break;
        case OPT_FILTER:
            a->filter = p.value;
            break;
        case OPT_OUT:
            a->out = p.value;
            break;
        case OPT_SIZE:
            rc = cli_int_option(&p, 16, 100000, &o->size);
            break;
        case OPT_MAX_INPUTS:
            rc = cli_int_option(&p, 1, 255, &o->max_inputs);
            break;
        case OPT_MIN_INPUTS:
            rc = cli_int_option(&p, 1, 255, &o->min_inputs);
            break;
        case OPT_THREADS:
            rc = cli_int_option(&p, 1, 64, &o->nthreads);
            break;
        case OPT_PSFS:
            a->psfs = p.value;
            break;
        case OPT_ALLOW_LARGE:
            a->allow_large = 1;
            break;
        case OPT_INPUTS: {
            struct stat sb;
            if (stat(p.value, &sb) == 0 && S_ISDIR(sb.st_mode))
                rc = cli_usage("coadd", "--inputs %s is a directory, not a list "
                               "file (one L2 file per line); give the files "
                               "themselves as operands, e.g. %s/*.fits",
                               p.value, p.value);
            else if (read_list(p.value, &a->files))
                rc = cli_usage("coadd", "--inputs %s: cannot read the input "
                               "list: %s", p.value, strerror(errno));
            break;
        }
        case CLI_OPERAND:
            if (push(&a->files, p.value)) {
                cli_error("coadd", "out of memory");
                rc = EXIT_WORK;
            }
            break;
        default:
            rc = EXIT_USAGE;
        }
    }
    if (rc == 0 && (!a->rtid || !a->filter || !a->out))
        rc = cli_usage("coadd", "--rtid, --filter and --out are required "
                       "(see rapid coadd --help)");
    if (rc == 0 && !a->out[0])
        rc = cli_usage("coadd", "--out: an empty directory name");
    if (rc == 0 && !rapid_filter_by_name(a->filter))
        rc = cli_usage("coadd", "unknown filter '%s'", a->filter);
    if (rc == 0 && a->files.n == 0)
        rc = cli_usage("coadd", "no input files");
    return rc;
}

int cmd_coadd(int argc, char **argv)
{
    rapid_coadd_opts o;
    rapid_coadd c;
    rapid_err err = RAPID_ERR_INIT;
    rapid_coadd_input *in = NULL;
    coadd_args a = {0, NULL, NULL, NULL, {0}, 0};
    list psf = {0};
    const rapid_filter *fl;
    int i, rc = 0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    rapid_coadd_opts_init(&o);
    cli_remove_temporaries_on_signals();
    if ((rc = parse(argc, argv, &o, &a)) != 0)
        goto cleanup;
    fl = rapid_filter_by_name(a.filter);
    if (!(in = calloc((size_t)a.files.n, sizeof *in))) {
        cli_error("coadd", "out of memory");
        rc = EXIT_WORK;
        goto cleanup;
    }
    for (i = 0; i < a.files.n; i++)
        in[i].path = a.files.v[i];
    if (rapid_coadd_check_inputs(in, a.files.n, &err)) { /* the same file twice */
        rc = cli_usage("coadd", "%s", err.msg);
        goto cleanup;
    }
    if ((rc = resolve_psfs(a.psfs, &a.files, &psf, in)) != 0)
        goto cleanup;
    {
        char what[128];
        snprintf(what, sizeof what, "a %d x %d reference image (%d thread%s)",
                 o.size, o.size, o.nthreads, o.nthreads == 1 ? "" : "s");
        if ((rc = cli_check_memory("coadd",
                                   rapid_coadd_memory(&o, in, a.files.n), what,
                                   a.allow_large)) != 0)
            goto cleanup;
    }
    rc = rapid_coadd_make(&o, a.rtid, a.filter, in, a.files.n, &c,
                          cli_interactive() ? cli_progress : NULL,
                          "coadd: inputs resampled", &err);
    for (i = 0; i < c.nskipped; i++)
        cli_error("coadd", "warning: %s: not used: %s", c.skipped[i].path,
                  c.skipped[i].reason);
    if (rc) {
        user_spelling(err.msg, sizeof err.msg, fl->name, a.filter);
        if (rc == RAPID_E_TOOFEW) {
            cli_error("coadd", "%s", err.msg);
            rc = RAPID_EXIT_TOOFEW;
            rapid_coadd_release(&c); /* the list of inputs left out */
        } else {
            rc = cli_fail("coadd", &err);
        }
        goto cleanup;
    }
    if (rapid_coadd_write(&c, a.out, a.rtid, fl->name, &err))
        rc = cli_fail("coadd", &err);
    else
        print_meta(&c, a.rtid, fl->name, a.out);
    rapid_coadd_release(&c);
cleanup:
    free(in);
    list_free(&a.files);
    list_free(&psf);
    return rc;
}
