/* cmd_tile.c - `rapid tile`: the sky tessellation from the command line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapid/tile.h"
#include "rapid/tile_export.h"

static const char usage_text[] =
    "usage: rapid tile [--nside N] [--neighbors] RA DEC\n"
    "       rapid tile [--nside N] [--neighbors] --rtid N\n"
    "       rapid tile [--nside N] --export-sqlite FILE\n"
    "\n"
    "Print the sky tile of the Roman tessellation (docs/tessellation.md)\n"
    "holding a position (RA, Dec in degrees; RA in [-360, 360] wraps) or\n"
    "with a given rtid, as one JSON object: rtid, cra, cdec, ramin, ramax,\n"
    "decmin, decmax, dbid, nrabins (and neighbors, the rtids of the tiles\n"
    "touching it, with --neighbors).\n"
    "\n"
    "  --nside N             tessellation resolution (default 512)\n"
    "  --neighbors           add \"neighbors\": [...] (ascending rtids)\n"
    "  --rtid N              the tile with this id (1 .. 24*NSIDE^2+2)\n"
    "  --export-sqlite FILE  write every tile to a new SQLite file as the\n"
    "                        tables skytiles, decbins and the R*Tree vskytiles\n"
    "\n"
    "Exit status: 0 done, 1 the export failed (the file exists, cannot be\n"
    "written), 2 bad usage (unknown option, unreadable number, position out\n"
    "of range).\n";

typedef struct tile_opts {
    int nside;
    int neighbors;
    const char *rtid;
    const char *export_path;
    const char *pos[2];
    int npos;
} tile_opts;

enum { OPT_NEIGHBORS = 1, OPT_NEIGHBOURS, OPT_NSIDE, OPT_RTID, OPT_EXPORT };

static const cli_option options[] = {
    {"--neighbors", NULL, 0, OPT_NEIGHBORS},
    {"--neighbours", NULL, 0, OPT_NEIGHBOURS},
    {"--nside", NULL, 1, OPT_NSIDE},
    {"--rtid", NULL, 1, OPT_RTID},
    {"--export-sqlite", NULL, 1, OPT_EXPORT},
    {NULL, NULL, 0, 0},
};

/* Options and positionals in any order; a number that starts with '-' is a
 * positional (a southern declination), not an option. */
static int parse(int argc, char **argv, tile_opts *o)
{
    cli_parser p;
    int id, rc;

    cli_parser_init(&p, "tile", options, argc, argv);
    while ((id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_NEIGHBORS:
        case OPT_NEIGHBOURS:
            o->neighbors = 1;
            break;
        case OPT_NSIDE:
            if ((rc = cli_int_option(&p, 1, 1 << 20, &o->nside)) != 0)
                return rc;
            break;
        case OPT_RTID:
            o->rtid = p.value;
            break;
        case OPT_EXPORT:
            o->export_path = p.value;
            break;
        case CLI_OPERAND:
            if (o->npos == 2)
                return cli_usage("tile", "unexpected argument '%s'", p.value);
            o->pos[o->npos++] = p.value;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    return 0;
}

static void print_tile(const rapid_tile *t, const int64_t *nb, int nnb)
{
    int i;

    printf("{\"rtid\": %" PRId64 ", \"cra\": %.10g, \"cdec\": %.10g, "
           "\"ramin\": %.10g, \"ramax\": %.10g, \"decmin\": %.10g, "
           "\"decmax\": %.10g, \"dbid\": %d, \"nrabins\": %" PRId64,
           t->rtid, t->cra, t->cdec, t->ramin, t->ramax, t->decmin, t->decmax,
           t->dbid, t->nrabins);
    if (nb) {
        printf(", \"neighbors\": [");
        for (i = 0; i < nnb; i++)
            printf("%s%" PRId64, i ? ", " : "", nb[i]);
        printf("]");
    }
    printf("}\n");
}

static int run_export(const tile_opts *o)
{
    rapid_err err = RAPID_ERR_INIT;

    if (o->npos || o->rtid || o->neighbors)
        return cli_usage("tile", "--export-sqlite takes no position, --rtid "
                         "or --neighbors");
    if (rapid_tile_export_sqlite(o->nside, o->export_path,
                                 cli_interactive() ? cli_progress : NULL,
                                 "tile: tiles exported", &err))
        return cli_fail("tile", &err);
    return 0;
}

/* The rtid asked for, from --rtid or from RA DEC; exit code on error. */
static int resolve_rtid(const tile_opts *o, int64_t *rtid)
{
    double ra, dec;

    if (o->rtid) {
        if (o->npos)
            return cli_usage("tile", "unexpected argument '%s' with --rtid",
                             o->pos[0]);
        if (cli_parse_int64(o->rtid, rtid) || *rtid < 1 ||
            *rtid > rapid_tile_count(o->nside))
            return cli_usage("tile", "invalid rtid '%s': must be an integer "
                             "in 1 .. %" PRId64 " for NSIDE %d",
                             o->rtid, rapid_tile_count(o->nside), o->nside);
        return 0;
    }
    if (o->npos != 2)
        return cli_usage("tile", "need RA and DEC, --rtid N or "
                         "--export-sqlite FILE (see rapid tile --help)");
    if (cli_parse_double(o->pos[0], &ra) || ra < -360 || ra > 360)
        return cli_usage("tile", "invalid RA '%s': must be a number of "
                         "degrees in [-360, 360]", o->pos[0]);
    if (cli_parse_double(o->pos[1], &dec) || dec < -90 || dec > 90)
        return cli_usage("tile", "invalid Dec '%s': must be a number of "
                         "degrees in [-90, 90]", o->pos[1]);
    *rtid = rapid_tile_rtid(o->nside, ra, dec);
    return 0;
}

int cmd_tile(int argc, char **argv)
{
    tile_opts o = {RAPID_TILE_NSIDE, 0, NULL, NULL, {NULL, NULL}, 0};
    rapid_err err = RAPID_ERR_INIT;
    int64_t rtid = 0, *nb = NULL;
    rapid_tile t = {0};
    int rc, nnb = 0;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if ((rc = parse(argc, argv, &o)) != 0)
        return rc;
    if (o.export_path)
        return run_export(&o);
    if ((rc = resolve_rtid(&o, &rtid)) != 0)
        return rc;
    if (rapid_tile_get(o.nside, rtid, &t, &err))
        return cli_fail("tile", &err);
    if (o.neighbors) {
        nb = malloc((size_t)rapid_tile_max_neighbors(o.nside) * sizeof *nb);
        if (!nb || (nnb = rapid_tile_neighbors(o.nside, rtid, nb, &err)) < 0) {
            free(nb);
            return cli_fail("tile", &err);
        }
    }
    print_tile(&t, nb, nnb);
    free(nb);
    return 0;
}
