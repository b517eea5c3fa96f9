/* cmd_ingest.c - `rapid ingest`: register L2 images (and, through
 * ingest_command, PSF files for `rapid ingest-psf`). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ingest_cli.h"
#include "rapid/db.h"

static const char usage_text[] =
    "usage: rapid ingest [--db URL] [--batch N] [--lock-timeout SECONDS]\n"
    "                    [--verbose] PATH...\n"
    "\n"
    "Register L2 images in the database: their exposure, the l2files row\n"
    "(WCS and SIP terms, sky tile, HEALPix indices, MD5) and the footprint\n"
    "in l2filemeta.  PATHs are files or directories (searched for *.fits,\n"
    "*.fit, *.fts, plain or gzipped; PSFs and catalogs found there are\n"
    "passed over).\n"
    "\n"
    "An image is known by (DATE-OBS, SCA_NUM, MD5): the same file again\n"
    "changes nothing; a different file for the same exposure and detector\n"
    "becomes its new version.  A file that cannot be registered (not FITS,\n"
    "truncated, missing keywords, no WCS) is named on stderr with the\n"
    "reason, nothing of it is written, and the others go on.  Files are\n"
    "written many to a transaction: an interrupted run leaves whole images\n"
    "only, and running it again completes it.\n"
    "\n"
    "  --db URL     database (default: $RAPID_DB, else\n"
    "               sqlite:$RAPID_WORK/rapid.db)\n"
    "  --batch N    files per transaction (500)\n"
    "  --lock-timeout SECONDS  how long to wait for a lock that another\n"
    "               process holds before giving up (60); a run stopped by\n"
    "               the database says how many files it committed\n"
    "  --verbose    one line per file on stdout: what happened, rid, version\n"
    "\n"
    "A FITS file with no data in any HDU (headers only) is passed over with\n"
    "a warning, whether named or found in a directory.  A summary line goes\n"
    "to stderr.\n"
    "\n"
    "Exit status: 0 all registered (or passed over), 1 some file or the\n"
    "database failed, 2 bad usage (unknown option, bad --batch, malformed\n"
    "--db URL, no PATH).\n";

typedef struct ingest_ui {
    const char *cmd;
    int verbose;
    int progress_shown;
} ingest_ui;

static const char *outcome_name(const rapid_ingest_event *ev)
{
    switch (ev->outcome) {
    case RAPID_DB_ADDED: return "added";
    case RAPID_DB_NEW_VERSION: return "new-version";
    case RAPID_DB_UNCHANGED: return "unchanged";
    default: return ev->skipped ? "skipped" : "failed";
    }
}

static void on_report(const rapid_ingest_event *ev, void *arg)
{
    ingest_ui *ui = arg;

    if (ev->err) {
        if (ui->progress_shown) {
            fputc('\n', stderr);
            ui->progress_shown = 0;
        }
        if (ev->skipped) /* passed over, with a reason worth knowing */
            cli_error(ui->cmd, "warning: %s", ev->err->msg);
        else
            cli_fail(ui->cmd, ev->err);
    }
    if (ui->verbose && ev->skipped)
        printf("skipped - - %s\n", ev->path);
    else if (ui->verbose && !ev->err)
        printf("%s %" PRId64 " %d %s\n", outcome_name(ev), ev->id, ev->version,
               ev->path);
}

static void on_progress(long done, long total, void *arg)
{
    ingest_ui *ui = arg;

    fprintf(stderr, "\rrapid %s: %ld / %ld files", ui->cmd, done, total);
    ui->progress_shown = 1;
}

enum { OPT_DB = 1, OPT_BATCH, OPT_LOCK_TIMEOUT, OPT_VERBOSE };

static const cli_option options[] = {
    {"--db", NULL, 1, OPT_DB},
    {"--batch", NULL, 1, OPT_BATCH},
    {"--lock-timeout", NULL, 1, OPT_LOCK_TIMEOUT},
    {"--verbose", "-v", 0, OPT_VERBOSE},
    {NULL, NULL, 0, 0},
};

static int parse(int argc, char **argv, const char *cmd, const char **url,
                 rapid_ingest_opts *o, double *lock_timeout, int *verbose,
                 const char ***paths, int *npaths)
{
    cli_parser p;
    int id, rc;

    *paths = calloc((size_t)argc, sizeof **paths);
    if (!*paths) {
        cli_error(cmd, "out of memory");
        return EXIT_WORK;
    }
    cli_parser_init(&p, cmd, options, argc, argv);
    while ((id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_DB:
            *url = p.value;
            break;
        case OPT_BATCH:
            if ((rc = cli_int_option(&p, 1, 100000, &o->batch)) != 0)
                return rc;
            break;
        case OPT_LOCK_TIMEOUT:
            if (cli_parse_lock_timeout(p.value, lock_timeout))
                return cli_usage(cmd, "invalid lock timeout '%s': must be "
                                 "seconds, more than 0 and at most 86400",
                                 p.value);
            break;
        case OPT_VERBOSE:
            *verbose = 1;
            break;
        case CLI_OPERAND:
            (*paths)[(*npaths)++] = p.value;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (*npaths == 0)
        return cli_usage(cmd, "no files or directories given (see rapid %s "
                         "--help)", cmd);
    return cli_check_db_url(cmd, *url);
}

static const char *plural(long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* "9 files: 2 PSFs (2 added, 0 new versions, 0 unchanged, 0 failed),
 * 7 passed over (not PSFs)": the files tried as the kind, and the others. */
static void summary(const char *cmd, rapid_ingest_kind kind,
                    const rapid_ingest_stats *st)
{
    int psf = kind == RAPID_INGEST_PSF;
    long tried = st->files - st->skipped;

    fprintf(stderr, "rapid %s: %ld %s: %ld %s (%ld added, %ld new %s, %ld "
            "unchanged, %ld failed), %ld passed over%s\n", cmd, st->files,
            plural(st->files, "file", "files"), tried,
            psf ? plural(tried, "PSF", "PSFs")
                : plural(tried, "L2 image", "L2 images"),
            st->added, st->versions, plural(st->versions, "version", "versions"),
            st->unchanged, st->failed, st->skipped,
            st->skipped == 0 ? ""
            : psf            ? " (not PSFs)"
                             : " (not L2 images)");
}

int ingest_command(int argc, char **argv, rapid_ingest_kind kind,
                   const char *cmd, const char *usage)
{
    rapid_ingest_opts o;
    rapid_ingest_stats st;
    rapid_err err = RAPID_ERR_INIT;
    ingest_ui ui = {cmd, 0, 0};
    const char *url = NULL, **paths = NULL;
    double lock_timeout = RAPID_DB_LOCK_TIMEOUT;
    rapid_db *db = NULL;
    int npaths = 0, rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    rapid_ingest_opts_init(&o);
    memset(&st, 0, sizeof st);
    if ((rc = parse(argc, argv, cmd, &url, &o, &lock_timeout, &ui.verbose,
                    &paths, &npaths)))
        goto cleanup;
    o.report = on_report;
    o.progress = cli_interactive() ? on_progress : NULL;
    o.arg = &ui;
    if (rapid_db_open(&db, url, 0, &err) ||
        rapid_db_set_lock_timeout(db, lock_timeout, &err) ||
        rapid_db_check_schema(db, &err) ||
        rapid_ingest(db, kind, paths, npaths, &o, &st, &err)) {
        if (ui.progress_shown)
            fputc('\n', stderr);
        rc = cli_fail(cmd, &err);
        goto cleanup;
    }
    if (ui.progress_shown)
        fputc('\n', stderr);
    summary(cmd, kind, &st);
    rc = st.failed ? EXIT_WORK : 0;
cleanup:
    rapid_db_close(db);
    free(paths);
    return rc;
}

int cmd_ingest(int argc, char **argv)
{
    return ingest_command(argc, argv, RAPID_INGEST_L2, "ingest", usage_text);
}
