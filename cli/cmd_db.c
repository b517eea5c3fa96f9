/* cmd_db.c - `rapid db`: create, upgrade and inspect the database. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapid/db.h"

static const char usage_text[] =
    "usage: rapid db init [--db URL] [--lock-timeout SECONDS]\n"
    "       rapid db status [--db URL] [--lock-timeout SECONDS]\n"
    "       rapid db lock-reference RFID [--db URL] [--lock-timeout SECONDS]\n"
    "       rapid db unlock-reference RFID [--db URL] [--lock-timeout SECONDS]\n"
    "\n"
    "The operations database (docs/database.md).\n"
    "\n"
    "  init     create the schema, or upgrade it to this rapid's version, and\n"
    "           fill the fixed tables (filters, scas, pipelines); running it\n"
    "           again changes nothing.  Says on stderr what it did.\n"
    "  status   print the back end, the schema version, whether cone\n"
    "           searches use Q3C, and the row count of every table (JSON);\n"
    "           it only reads, and works on a database the user may only\n"
    "           read (it creates no file)\n"
    "  lock-reference RFID    make that version of its tile and filter's\n"
    "           reference image the one every job uses (vbest 2), whatever\n"
    "           versions are registered later; any other lock of its tile,\n"
    "           filter and pipeline goes\n"
    "  unlock-reference RFID  undo it: the version stays the best (vbest 1)\n"
    "           until a newer one is registered\n"
    "\n"
    "  --db URL  sqlite:PATH or postgresql://[user[:password]@]host[:port]/db\n"
    "            (default: $RAPID_DB, else sqlite:$RAPID_WORK/rapid.db with\n"
    "            RAPID_WORK defaulting to ./work)\n"
    "  --lock-timeout SECONDS  how long to wait for a lock that another\n"
    "            process holds before giving up (60)\n"
    "\n"
    "Exit status: 0 done, 1 the database failed (unreachable, unreadable,\n"
    "an older or newer schema for status, a lock held too long), 2 bad usage\n"
    "(unknown option or action, malformed URL, an RFID that is not a number).\n"
    "lock-reference and unlock-reference fail (1) for an rfid that is not\n"
    "in the database.\n";

static const char *const tables[] = {
    "filters", "scas", "pipelines", "swversions", "exposures", "l2files",
    "l2filemeta", "psfs", "refimages", "refimcatalogs", "refimimages",
    "refimmeta", "diffimages", "diffimmeta", "jobs", NULL};

static int run_init(const char *url, double lock_timeout)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    int from = 0;

    if (rapid_db_open(&db, url, RAPID_DB_CREATE, &err) ||
        rapid_db_set_lock_timeout(db, lock_timeout, &err) ||
        rapid_db_init(db, &from, &err)) {
        rapid_db_close(db);
        return cli_fail("db", &err);
    }
    fputs("rapid db: ", stderr);
    if (from == RAPID_DB_SCHEMA_VERSION)
        fprintf(stderr, "%s: schema version %d, up to date", rapid_db_url(db),
                from);
    else if (from == 0)
        fprintf(stderr, "%s: schema version %d created", rapid_db_url(db),
                RAPID_DB_SCHEMA_VERSION);
    else
        fprintf(stderr, "%s: schema upgraded from version %d to %d",
                rapid_db_url(db), from, RAPID_DB_SCHEMA_VERSION);
    if (strcmp(rapid_db_backend(db), "postgresql") == 0)
        fputs(rapid_db_has_q3c(db) ? " (cone searches use Q3C)"
                                   : " (no Q3C: cone searches use a "
                                     "declination index)", stderr);
    fputc('\n', stderr);
    rapid_db_close(db);
    return 0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

static int run_status(const char *url, double lock_timeout)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_db *db = NULL;
    int64_t n = 0;
    int version = 0, i, rc = 0;

    if (rapid_db_open(&db, url, RAPID_DB_READONLY, &err) ||
        rapid_db_set_lock_timeout(db, lock_timeout, &err) ||
        rapid_db_schema_version(db, &version, &err)) {
        rc = cli_fail("db", &err);
        goto cleanup;
    }
    printf("{\"url\": ");
    json_string(rapid_db_url(db));
    printf(", \"backend\": \"%s\", \"schema_version\": %d, \"q3c\": %s",
           rapid_db_backend(db), version, rapid_db_has_q3c(db) ? "true" : "false");
    if (version == RAPID_DB_SCHEMA_VERSION) {
        printf(", \"rows\": {");
        for (i = 0; tables[i]; i++) {
            if (rapid_db_count(db, tables[i], &n, &err)) {
                printf("}}\n");
                rc = cli_fail("db", &err);
                goto cleanup;
            }
            printf("%s\"%s\": %" PRId64, i ? ", " : "", tables[i], n);
        }
        printf("}");
    }
    printf("}\n");
cleanup:
    rapid_db_close(db);
    return rc;
}

/* lock-reference (vbest 2) and unlock-reference (vbest 1). */
static int run_lock(const char *url, double lock_timeout, int64_t rfid,
                    int vbest)
{
    rapid_err err = RAPID_ERR_INIT;
    rapid_refimage ref;
    rapid_db *db = NULL;
    int rc = 0;

    if (rapid_db_open(&db, url, 0, &err) ||
        rapid_db_set_lock_timeout(db, lock_timeout, &err) ||
        rapid_db_check_schema(db, &err) ||
        rapid_db_get_refimage(db, rfid, &ref, &err) ||
        rapid_db_set_vbest(db, RAPID_PRODUCT_REFIMAGE, rfid, vbest, &err)) {
        rc = cli_fail("db", &err);
        goto cleanup;
    }
    fprintf(stderr, "rapid db: reference image %" PRId64 " (tile %" PRId64
            ", fid %d, ppid %d, version %d) %s\n", rfid, ref.field, ref.fid,
            ref.ppid, ref.version,
            vbest == 2 ? "locked: every job uses it"
                       : "unlocked: the best until a newer version");
cleanup:
    rapid_db_close(db);
    return rc;
}

enum { OPT_DB = 1, OPT_LOCK_TIMEOUT };

static const cli_option options[] = {
    {"--db", NULL, 1, OPT_DB},
    {"--lock-timeout", NULL, 1, OPT_LOCK_TIMEOUT},
    {NULL, NULL, 0, 0},
};

int cmd_db(int argc, char **argv)
{
    const char *action = NULL, *url = NULL, *rfid_text = NULL;
    char *end;
    long long rfid = 0;
    double lock_timeout = RAPID_DB_LOCK_TIMEOUT;
    cli_parser p;
    int id, rc;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    cli_parser_init(&p, "db", options, argc, argv);
    while ((id = cli_next(&p)) != CLI_END) {
        switch (id) {
        case OPT_DB:
            url = p.value;
            break;
        case OPT_LOCK_TIMEOUT:
            if (cli_parse_lock_timeout(p.value, &lock_timeout))
                return cli_usage("db", "invalid lock timeout '%s': must be "
                                 "seconds, more than 0 and at most 86400",
                                 p.value);
            break;
        case CLI_OPERAND:
            if (action && !rfid_text && strstr(action, "-reference")) {
                rfid_text = p.value;
                break;
            }
            if (action)
                return cli_usage("db", "unexpected argument '%s' (see rapid "
                                 "db --help)", p.value);
            action = p.value;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (!action)
        return cli_usage("db", "need an action: init or status (see rapid db "
                         "--help)");
    if (strcmp(action, "init") != 0 && strcmp(action, "status") != 0 &&
        strcmp(action, "lock-reference") != 0 &&
        strcmp(action, "unlock-reference") != 0)
        return cli_usage("db", "unknown action '%s': use init, status,"
                         " lock-reference or unlock-reference", action);
    if (strstr(action, "-reference")) {
        if (!rfid_text)
            return cli_usage("db", "%s needs the rfid of a reference image",
                             action);
        errno = 0;
        rfid = strtoll(rfid_text, &end, 10);
        if (end == rfid_text || *end || errno || rfid < 1 ||
            rfid_text[0] == '+' || rfid_text[0] == ' ')
            return cli_usage("db", "invalid rfid '%s': must be a whole"
                             " number, at least 1", rfid_text);
    }
    if ((rc = cli_check_db_url("db", url)) != 0)
        return rc;
    if (strstr(action, "-reference"))
        return run_lock(url, lock_timeout, (int64_t)rfid,
                        strcmp(action, "lock-reference") == 0 ? 2 : 1);
    return strcmp(action, "init") == 0 ? run_init(url, lock_timeout)
                                       : run_status(url, lock_timeout);
}
