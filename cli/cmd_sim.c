/* cmd_sim.c - `rapid sim`: a simulated Roman WFI survey to files. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapid/sim.h"
#include "rapid/timeutil.h"

static const char usage_text[] =
    "usage: rapid sim --out DIR [--force] [--seed S] [--size PIX]\n"
    "                 [--tiles N | --ra RA --dec DEC] [--filters F158,F062,...]\n"
    "                 [--epochs N] [--cadence DAYS] [--start \"YYYY-MM-DD HH:MM:SS\"]\n"
    "                 [--scas N] [--exptime S] [--sn-rate X] [--gzip]\n"
    "                 [--without LIST] [--dry-run] [--psf-vary MAS]\n"
    "                 [--allow-large]\n"
    "\n"
    "Simulate a Roman WFI time-domain survey and write, in DIR:\n"
    "  Roman_TDS_simple_model_<FILTER>_<pointing>_<sca>.fits  L2 images: SCI (DN),\n"
    "      ERR (DN) and DQ (bad, saturated, cosmic-ray pixels: docs/products.md)\n"
    "  psf/Roman_WFI_PSF_<FILTER>_<sca>.fits                  PSF per detector\n"
    "  (psf/Roman_WFI_PSF_<FILTER>_<sca>_visit<v>.fits with --psf-vary)\n"
    "  truth/static.fits, truth/transients.fits, truth/pointings.fits\n"
    "The same seed gives the same images and truth.  Prints one JSON line:\n"
    "the directory and the number of images.\n"
    "\n"
    "Data volume: an L2 file holds 12 bytes per pixel (SCI, ERR, DQ) and\n"
    "20 kB of headers (a 4088^2 image: 200 MB), a PSF file 297 kB; a run\n"
    "writes (epochs x tiles not covered by an earlier pointing x filters) x\n"
    "detectors of them.\n"
    "--dry-run prints the count and the bytes without writing anything; on\n"
    "a terminal they are also said on stderr before the run starts.\n"
    "\n"
    "DIR must be new or empty, so that no earlier images stay beside the new\n"
    "truth.  --force first removes an earlier simulation's files there - the\n"
    "names above, and temporary files of an interrupted run - and leaves any\n"
    "other file alone (named in a warning).\n"
    "\n"
    "  --out DIR        output directory (created if needed)\n"
    "  --force          replace an earlier simulation in DIR (see above)\n"
    "  --seed S         random seed, an integer >= 0 (1)\n"
    "  --size PIX       pixels per detector side, 64 .. 8192 (4088)\n"
    "  --tiles N        sky tiles to cover around the field centre (1)\n"
    "  --ra RA          field centre, degrees (9.6); with --dec, not --tiles\n"
    "  --dec DEC        field centre, degrees (-44.0)\n"
    "  --filters LIST   comma-separated filters, by name or F-number (F158)\n"
    "  --epochs N       visits (5)\n"
    "  --cadence DAYS   days between visits (5)\n"
    "  --start DATE     first visit, UTC (\"2028-09-07 00:00:00\")\n"
    "                   (the zodiacal light follows the Sun's place on each\n"
    "                   date and the field's ecliptic latitude: ZODIFAC)\n"
    "  --scas N         detectors used, the first N of 18 (18)\n"
    "  --exptime S      exposure time, seconds (per filter: R062, Z087 161;\n"
    "                   Y106, J129, H158, W146 302; F184, K213 901)\n"
    "  --sn-rate X      multiplier on the published supernova rates (1;\n"
    "                   0: no supernovae)\n"
    "  --psf-vary MAS   give every visit its own PSF, blurred further by a\n"
    "                   Gaussian of rms drawn uniformly in 0..MAS milli-\n"
    "                   arcsec per axis (jitter, focus), so an image can be\n"
    "                   sharper or broader than the reference; PSF files\n"
    "                   per visit (0: off, the default)\n"
    "  --gzip           write the L2 images gzipped (.fits.gz)\n"
    "  --without LIST   leave out, comma-separated: supernovae, variables,\n"
    "                   cosmic-rays, hot-pixels, bright-stars (H < 16),\n"
    "                   stars, galaxies, defects, persistence\n"
    "  --dry-run        print what would be written (JSON: images, PSF files,\n"
    "                   bytes) and write nothing\n"
    "  --allow-large    run even when the memory it needs (estimated up\n"
    "                   front) is more than the memory available\n"
    "\n"
    "Exit status: 0 written, 1 failure (DIR not empty without --force, not\n"
    "writable, disk full, too large for the memory available), 2 bad usage\n"
    "(unknown option, unreadable value).\n";

typedef struct sim_opts {
    const char *out;
    int force;
    int has_tiles, has_ra, has_dec;
    int allow_large;
    int dry_run;
} sim_opts;

enum {
    OPT_OUT = 1, OPT_FORCE, OPT_SEED, OPT_SIZE, OPT_TILES, OPT_RA, OPT_DEC,
    OPT_FILTERS, OPT_EPOCHS, OPT_CADENCE, OPT_START, OPT_SCAS, OPT_EXPTIME,
    OPT_GZIP, OPT_SN_RATE, OPT_ALLOW_LARGE, OPT_WITHOUT, OPT_DRY_RUN,
    OPT_PSF_VARY
};

static const cli_option options[] = {
    {"--out", NULL, 1, OPT_OUT},
    {"--force", NULL, 0, OPT_FORCE},
    {"--seed", NULL, 1, OPT_SEED},
    {"--size", NULL, 1, OPT_SIZE},
    {"--tiles", NULL, 1, OPT_TILES},
    {"--ra", NULL, 1, OPT_RA},
    {"--dec", NULL, 1, OPT_DEC},
    {"--filters", NULL, 1, OPT_FILTERS},
    {"--epochs", NULL, 1, OPT_EPOCHS},
    {"--cadence", NULL, 1, OPT_CADENCE},
    {"--start", NULL, 1, OPT_START},
    {"--scas", NULL, 1, OPT_SCAS},
    {"--exptime", NULL, 1, OPT_EXPTIME},
    {"--gzip", NULL, 0, OPT_GZIP},
    {"--sn-rate", NULL, 1, OPT_SN_RATE},
    {"--allow-large", NULL, 0, OPT_ALLOW_LARGE},
    {"--without", NULL, 1, OPT_WITHOUT},
    {"--dry-run", NULL, 0, OPT_DRY_RUN},
    {"--psf-vary", NULL, 1, OPT_PSF_VARY},
    {NULL, NULL, 0, 0},
};

static int parse_int(const char *s, int64_t lo, int64_t hi, int *out)
{
    int64_t v;

    if (cli_parse_int64(s, &v) || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* "YYYY-MM-DD HH:MM:SS[.sss]" (or with a 'T') as an MJD, in the years
 * 1900 .. 2200 a simulated survey may start; -1 if not. */
static int parse_date(const char *s, double *mjd)
{
    double m;
    int year;

    if (rapid_mjd_from_iso(s, &m, NULL))
        return -1;
    year = atoi(s); /* a valid date-time starts with its 4-digit year */
    if (year < 1900 || year > 2200)
        return -1;
    *mjd = m;
    return 0;
}

/* "F158,F062" into c->filters; exit code on error. */
static int parse_filters(const char *list, rapid_sim_config *c)
{
    char buf[256], *tok, *save = NULL;
    int i;

    if (strlen(list) >= sizeof buf)
        return cli_usage("sim", "filter list too long: '%s'", list);
    strcpy(buf, list);
    c->nfilters = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const rapid_filter *f = rapid_filter_by_name(tok);
        if (!f)
            return cli_usage("sim", "unknown filter '%s' (F062 F087 F106 "
                             "F129 F158 F184 F213 F146, or R062 Z087 Y106 "
                             "J129 H158 K213 W146)", tok);
        for (i = 0; i < c->nfilters; i++)
            if (c->filters[i] == f)
                return cli_usage("sim", "filter '%s' is listed twice",
                                 tok);
        c->filters[c->nfilters++] = f;
    }
    if (c->nfilters == 0)
        return cli_usage("sim", "no filter in '%s'", list);
    return 0;
}

/* --without: the parts of the sky and detector to leave out, so that a
 * test can isolate one effect. */
static int parse_without(const char *list, rapid_sim_config *c)
{
    char buf[256], *tok, *save = NULL;

    if (strlen(list) >= sizeof buf)
        return cli_usage("sim", "--without list too long: '%s'", list);
    strcpy(buf, list);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "supernovae") == 0)
            c->sn_rate = 0;
        else if (strcmp(tok, "variables") == 0)
            c->variable_fraction = 0;
        else if (strcmp(tok, "cosmic-rays") == 0)
            c->cosmic_rays = 0;
        else if (strcmp(tok, "hot-pixels") == 0)
            c->hot_pixels = 0;
        else if (strcmp(tok, "bright-stars") == 0)
            c->mag_bright = 16;
        else if (strcmp(tok, "stars") == 0)
            c->star_density = 0;
        else if (strcmp(tok, "galaxies") == 0)
            c->galaxy_density = 0;
        else if (strcmp(tok, "defects") == 0)
            c->defects = 0;
        else if (strcmp(tok, "persistence") == 0)
            c->persistence = 0;
        else
            return cli_usage("sim", "--without: unknown part '%s' (supernovae, "
                             "variables, cosmic-rays, hot-pixels, "
                             "bright-stars, stars, galaxies, defects, "
                             "persistence)", tok);
    }
    return 0;
}

/* One option (with its value); exit code on error. */
static int parse_value(int id, const char *v, rapid_sim_config *c,
                       sim_opts *o)
{
    int64_t seed;

    switch (id) {
    case OPT_OUT:
        if (!*v)
            return cli_usage("sim", "empty --out directory");
        o->out = v;
        break;
    case OPT_FORCE:
        o->force = 1;
        break;
    case OPT_GZIP:
        c->gzip = 1;
        break;
    case OPT_ALLOW_LARGE:
        o->allow_large = 1;
        break;
    case OPT_DRY_RUN:
        o->dry_run = 1;
        break;
    case OPT_WITHOUT:
        return parse_without(v, c);
    case OPT_SEED:
        if (cli_parse_int64(v, &seed) || seed < 0)
            return cli_usage("sim", "invalid seed '%s': must be an integer "
                             ">= 0", v);
        c->seed = (uint64_t)seed;
        break;
    case OPT_SIZE:
        if (parse_int(v, 64, 8192, &c->size))
            return cli_usage("sim", "invalid size '%s': must be an integer "
                             "in 64 .. 8192", v);
        break;
    case OPT_TILES:
        if (parse_int(v, 1, 10000, &c->ntiles))
            return cli_usage("sim", "invalid tile count '%s': must be an "
                             "integer in 1 .. 10000", v);
        o->has_tiles = 1;
        break;
    case OPT_RA:
        if (cli_parse_double(v, &c->ra) || c->ra < -360 || c->ra > 360)
            return cli_usage("sim", "invalid RA '%s': must be degrees in "
                             "[-360, 360]", v);
        c->ra = c->ra < 0 ? c->ra + 360 : c->ra >= 360 ? c->ra - 360 : c->ra;
        o->has_ra = 1;
        break;
    case OPT_DEC:
        if (cli_parse_double(v, &c->dec) || c->dec < -90 || c->dec > 90)
            return cli_usage("sim", "invalid Dec '%s': must be degrees in "
                             "[-90, 90]", v);
        o->has_dec = 1;
        break;
    case OPT_FILTERS:
        return parse_filters(v, c);
    case OPT_EPOCHS:
        if (parse_int(v, 1, 100000, &c->epochs))
            return cli_usage("sim", "invalid epoch count '%s': must be an "
                             "integer in 1 .. 100000", v);
        break;
    case OPT_CADENCE:
        if (cli_parse_double(v, &c->cadence_days) || !(c->cadence_days > 0) ||
            c->cadence_days > 3650)
            return cli_usage("sim", "invalid cadence '%s': must be days in "
                             "(0, 3650]", v);
        break;
    case OPT_START:
        if (parse_date(v, &c->mjd_start))
            return cli_usage("sim", "invalid start '%s': must be "
                             "\"YYYY-MM-DD HH:MM:SS\" (UTC)", v);
        break;
    case OPT_SCAS:
        if (parse_int(v, 1, 18, &c->nscas))
            return cli_usage("sim", "invalid detector count '%s': must be "
                             "an integer in 1 .. 18", v);
        break;
    case OPT_EXPTIME:
        if (cli_parse_double(v, &c->exptime) || !(c->exptime > 0) ||
            c->exptime > 100000)
            return cli_usage("sim", "invalid exposure time '%s': must be "
                             "seconds in (0, 100000]", v);
        break;
    case OPT_SN_RATE:
        if (cli_parse_double(v, &c->sn_rate) || !(c->sn_rate >= 0) ||
            c->sn_rate > 1e6)
            return cli_usage("sim", "invalid supernova rate '%s': must be a "
                             "multiplier in [0, 1e6]", v);
        break;
    case OPT_PSF_VARY:
        if (cli_parse_double(v, &c->psf_visit_blur) ||
            !(c->psf_visit_blur >= 0) || c->psf_visit_blur > 1000)
            return cli_usage("sim", "invalid per-visit PSF blur '%s': must "
                             "be milliarcseconds in [0, 1000]", v);
        break;
    case CLI_OPERAND:
        return cli_usage("sim", "unexpected argument '%s' (see rapid sim "
                         "--help)", v);
    default:
        return EXIT_USAGE;
    }
    return 0;
}

static int parse(int argc, char **argv, rapid_sim_config *c, sim_opts *o)
{
    cli_parser p;
    int id, rc;

    cli_parser_init(&p, "sim", options, argc, argv);
    while ((id = cli_next(&p)) != CLI_END)
        if ((rc = parse_value(id, p.value, c, o)) != 0)
            return rc;
    if (!o->out)
        return cli_usage("sim", "missing --out DIR (see rapid sim --help)");
    if (o->has_tiles && (o->has_ra || o->has_dec))
        return cli_usage("sim", "--tiles and --ra/--dec exclude each other");
    if (o->has_ra != o->has_dec)
        return cli_usage("sim", "%s",
                         o->has_ra ? "--ra needs --dec" : "--dec needs --ra");
    return 0;
}

/* Entries of dir (without . and ..): their count and the first name.  A
 * directory that cannot be opened counts none (the run reports why). */
static long dir_entries(const char *dir, char *first, size_t firstsz)
{
    struct dirent *d;
    DIR *D = opendir(dir);
    long n = 0;

    first[0] = '\0';
    if (!D)
        return 0;
    while ((d = readdir(D)) != NULL) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        if (n++ == 0)
            snprintf(first, firstsz, "%s", d->d_name);
    }
    closedir(D);
    return n;
}

/* An earlier simulation in o->out: refused, or removed with --force. */
static int prepare_out(const sim_opts *o)
{
    rapid_err err = RAPID_ERR_INIT;
    char first[256];
    long n = dir_entries(o->out, first, sizeof first), removed = 0;

    if (n == 0)
        return 0;
    if (!o->force) {
        cli_error("sim", "%s: the directory is not empty (it holds '%s'%s): "
                  "give --force to replace an earlier simulation there, or "
                  "choose another directory", o->out, first,
                  n > 1 ? " and more" : "");
        return EXIT_WORK;
    }
    if (rapid_sim_clear(o->out, &removed, &err))
        return cli_fail("sim", &err);
    if ((n = dir_entries(o->out, first, sizeof first)) > 0)
        cli_error("sim", "warning: %s: left alone %ld entr%s that rapid sim "
                  "does not write ('%s'%s)", o->out, n, n == 1 ? "y" : "ies",
                  first, n > 1 ? " and more" : "");
    return 0;
}

/* Counts the images and shows progress only on a terminal. */
static void on_image(int64_t done, int64_t total, void *arg)
{
    *(int64_t *)arg = done;
    if (cli_interactive())
        cli_progress(done, total, "sim: images written");
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

int cmd_sim(int argc, char **argv)
{
    rapid_sim_config c;
    sim_opts o = {NULL, 0, 0, 0, 0, 0, 0};
    rapid_sim_volume_t vol;
    uint64_t need = 0;
    char what[128];
    rapid_err err = RAPID_ERR_INIT;
    int64_t images = 0;
    int rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    rapid_sim_config_init(&c);
    if ((rc = parse(argc, argv, &c, &o)) != 0)
        return rc;
    if (rapid_sim_volume(&c, &vol, &err))
        return cli_fail("sim", &err);
    if (o.dry_run) {
        printf("{\"out\": ");
        print_json_string(o.out);
        printf(", \"images\": %" PRId64 ", \"psf_files\": %" PRId64
               ", \"bytes_per_image\": %" PRIu64 ", \"bytes\": %" PRIu64 "}\n",
               vol.images, vol.psf_files, vol.image_bytes, vol.bytes);
        return 0;
    }
    if (cli_interactive())
        fprintf(stderr, "rapid sim: %" PRId64 " images and %" PRId64 " PSF "
                "files, about %.1f MB%s\n", vol.images, vol.psf_files,
                vol.bytes / 1e6, c.gzip ? " before compression" : "");
    /* refused before anything of an earlier run is removed */
    if (!o.allow_large) {
        if (rapid_sim_memory(&c, &need, &err))
            return cli_fail("sim", &err);
        snprintf(what, sizeof what, "a simulation of %d x %d images over %d "
                 "tile%s", c.size, c.size, c.ntiles, c.ntiles == 1 ? "" : "s");
        if ((rc = cli_check_memory("sim", need, what, 0)) != 0)
            return rc;
    }
    if ((rc = prepare_out(&o)) != 0)
        return rc;
    if (rapid_sim_run(&c, o.out, on_image, &images, &err))
        return cli_fail("sim", &err);
    printf("{\"out\": ");
    print_json_string(o.out);
    printf(", \"images\": %" PRId64 "}\n", images);
    return 0;
}
