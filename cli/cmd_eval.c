/* cmd_eval.c - `rapid eval`: injected-source recovery through the normal
 * pipeline, the figures of merit and their plots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rapid/eval.h"
#include "rapid/filters.h"

static const char usage_text[] =
    "usage: rapid eval [--work DIR] [--filter F] [--methods zogy,sfft,naive]\n"
    "                  [--per-image N] [--min-injections N] [--seed S]\n"
    "                  [--from-sim DIR] [--keep-images] [--jobs N]\n"
    "                  [--tiles N] [--epochs N] [--scas N] [--size PIX]\n"
    "\n"
    "How well the pipeline finds and measures what changed, from sources we\n"
    "inject ourselves (docs/quality.md).  Simulates a survey (or takes one),\n"
    "runs the normal pipeline over it (launch and register; references\n"
    "from the first half of the visits, at least 3), then runs every science job again on copies\n"
    "of its image with --per-image point sources injected (magnitudes\n"
    "uniform in 21-28; half of them within 1.5 half-light radii of a galaxy\n"
    "centre, 'nuclear', the rest anywhere, 'field'), repeating with new\n"
    "seeds until --min-injections are made.  Injected images never enter\n"
    "the database or a reference.  Passing candidates within 0.5 px of an\n"
    "injection recover it; those on the simulator's own transients and\n"
    "variables, cosmic rays and defects are counted apart; the rest are\n"
    "false positives.  Writes in DIR eval.json (also printed on stdout),\n"
    "eval.csv and plots/<F>_<all|field|nuclear>_<completeness|fp|\n"
    "precision>.png; keeps the catalogs and deletes the images of the\n"
    "injected jobs unless --keep-images (a full-size job writes ~0.75 GB).\n"
    "\n"
    "  --work DIR          where everything goes (./work-eval)\n"
    "  --filter F          the filter (H158)\n"
    "  --methods LIST      difference methods to evaluate (zogy,sfft,naive)\n"
    "  --per-image N       injections per science image and round (500)\n"
    "  --min-injections N  at least this many in all (20000)\n"
    "  --seed S            simulation and injection seed (1)\n"
    "  --from-sim DIR      a `rapid sim` directory to use instead\n"
    "  --keep-images       keep the injected images and their products\n"
    "  --jobs N            science jobs at once (2)\n"
    "  --tiles N, --epochs N, --scas N, --size PIX\n"
    "                      the survey simulated (4, 8, 3, 4088: 54 images,\n"
    "                      26 of them science images with a reference)\n"
    "\n"
    "Exit status: 0 done, 1 failure (the simulation, the pipeline or a job\n"
    "could not run; the message names its log), 2 bad usage.\n";

enum {
    OPT_WORK = 1, OPT_FILTER, OPT_METHODS, OPT_PERIMAGE, OPT_MININJ, OPT_SEED,
    OPT_FROMSIM, OPT_KEEP, OPT_JOBS, OPT_TILES, OPT_EPOCHS, OPT_SCAS, OPT_SIZE
};

static const cli_option options[] = {
    {"--work", NULL, 1, OPT_WORK},
    {"--filter", NULL, 1, OPT_FILTER},
    {"--methods", NULL, 1, OPT_METHODS},
    {"--per-image", NULL, 1, OPT_PERIMAGE},
    {"--min-injections", NULL, 1, OPT_MININJ},
    {"--seed", NULL, 1, OPT_SEED},
    {"--from-sim", NULL, 1, OPT_FROMSIM},
    {"--keep-images", NULL, 0, OPT_KEEP},
    {"--jobs", NULL, 1, OPT_JOBS},
    {"--tiles", NULL, 1, OPT_TILES},
    {"--epochs", NULL, 1, OPT_EPOCHS},
    {"--scas", NULL, 1, OPT_SCAS},
    {"--size", NULL, 1, OPT_SIZE},
    {NULL, NULL, 0, 0},
};

/* "zogy,naive" -> o->methods */
static int parse_methods(const char *s, rapid_eval_opts *o)
{
    static const char *const names[RAPID_EVAL_NMETHOD] = {"zogy", "sfft", "naive"};
    char buf[128], *tok, *save = NULL;
    int k, any = 0;

    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    for (k = 0; k < RAPID_EVAL_NMETHOD; k++)
        o->methods[k] = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        for (k = 0; k < RAPID_EVAL_NMETHOD && strcmp(tok, names[k]); k++)
            ;
        if (k == RAPID_EVAL_NMETHOD)
            return -1;
        o->methods[k] = any = 1;
    }
    return any ? 0 : -1;
}

int cmd_eval(int argc, char **argv)
{
    static char exe[4096];
    rapid_eval_opts o;
    rapid_eval_report rep;
    rapid_err err = RAPID_ERR_INIT;
    cli_parser p;
    int64_t v;
    ssize_t n;
    char *json;
    int id, rc = 0, iv;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    rapid_eval_opts_init(&o);
    o.work = "work-eval";
    o.quiet = !isatty(2);
    cli_remove_temporaries_on_signals();
    cli_parser_init(&p, "eval", options, argc, argv);
    while (rc == 0 && (id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_WORK: o.work = p.value; break;
        case OPT_FROMSIM: o.from_sim = p.value; break;
        case OPT_KEEP: o.keep_images = 1; break;
        case OPT_FILTER:
            if (!rapid_filter_by_name(p.value))
                rc = cli_usage("eval", "unknown filter '%s'", p.value);
            else
                o.filter = rapid_filter_by_name(p.value)->name;
            break;
        case OPT_METHODS:
            if (parse_methods(p.value, &o))
                rc = cli_usage("eval", "invalid --methods '%s': a comma-separated list "
                               "of zogy, sfft, naive", p.value);
            break;
        case OPT_PERIMAGE: rc = cli_int_option(&p, 1, 100000, &o.per_image); break;
        case OPT_MININJ:
            if (cli_parse_int64(p.value, &v) || v < 1 || v > 100000000)
                rc = cli_usage("eval", "invalid --min-injections '%s': 1 .. 1e8", p.value);
            else
                o.min_injections = (long)v;
            break;
        case OPT_SEED:
            if (cli_parse_int64(p.value, &v) || v < 0)
                rc = cli_usage("eval", "invalid --seed '%s': an integer >= 0", p.value);
            else
                o.seed = (uint64_t)v;
            break;
        case OPT_JOBS: rc = cli_int_option(&p, 1, 256, &o.jobs); break;
        case OPT_TILES: rc = cli_int_option(&p, 1, 64, &o.sim_tiles); break;
        case OPT_EPOCHS: rc = cli_int_option(&p, 4, 1000, &o.sim_epochs); break;
        case OPT_SCAS: rc = cli_int_option(&p, 1, 18, &o.sim_scas); break;
        case OPT_SIZE:
            rc = cli_int_option(&p, 128, 8192, &iv);
            o.sim_size = iv;
            break;
        case CLI_OPERAND:
            rc = cli_usage("eval", "unexpected argument '%s'", p.value);
            break;
        default:
            rc = EXIT_USAGE;
        }
    }
    if (rc)
        return rc;
    /* the pipeline's commands are this same program */
    if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) <= 0) {
        cli_error("eval", "cannot find the rapid command itself (/proc/self/exe)");
        return EXIT_WORK;
    }
    exe[n] = 0;
    o.exe = exe;
    if (rapid_eval_run(&o, &rep, &err) != 0)
        return cli_fail("eval", &err);
    if (!(json = rapid_eval_json(&rep))) {
        cli_error("eval", "out of memory");
        return EXIT_WORK;
    }
    puts(json);
    free(json);
    return 0;
}
