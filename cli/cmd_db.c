/* cmd_db.c - `rapid db`: create, upgrade and inspect the database. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rapid/db.h"

static const char usage_text[] =
    "usage: rapid db init [--db URL] [--lock-timeout SECONDS]\n"
    "       rapid db status [--db URL] [--lock-timeout SECONDS]\n"
    "\n"
    "The operations database (docs/database.md).\n"
    "\n"
    "  init     create the schema, or upgrade it to this rapid's version, and\n"
    "           fill the fixed tables (filters, scas, pipelines); running it\n"
    "           again changes nothing.  Prints the schema version.\n"
    "  status   print the back end, the schema version, whether cone\n"
    "           searches use Q3C, and the row count of every table (JSON);\n"
    "           it only reads, and works on a database the user may only\n"
    "           read (it creates no file)\n"
    "\n"
    "  --db URL  sqlite:PATH or postgresql://[user[:password]@]host[:port]/db\n"
    "            (default: $RAPID_DB, else sqlite:$RAPID_WORK/rapid.db with\n"
    "            RAPID_WORK defaulting to ./work)\n"
    "  --lock-timeout SECONDS  how long to wait for a lock that another\n"
    "            process holds before giving up (60)\n"
    "\n"
    "Exit status: 0 done, 1 the database failed, 2 bad usage.\n";

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
    if (from == RAPID_DB_SCHEMA_VERSION)
        printf("%s: schema version %d, up to date", rapid_db_url(db), from);
    else if (from == 0)
        printf("%s: schema version %d created", rapid_db_url(db),
               RAPID_DB_SCHEMA_VERSION);
    else
        printf("%s: schema upgraded from version %d to %d", rapid_db_url(db),
               from, RAPID_DB_SCHEMA_VERSION);
    if (strcmp(rapid_db_backend(db), "postgresql") == 0)
        printf(rapid_db_has_q3c(db) ? " (cone searches use Q3C)"
                                    : " (no Q3C: cone searches use a "
                                      "declination index)");
    printf("\n");
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

int cmd_db(int argc, char **argv)
{
    const char *action = NULL, *url = NULL, *v = NULL;
    double lock_timeout = RAPID_DB_LOCK_TIMEOUT;
    int i;

    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            url = argv[i] + 5;
        } else if ((strcmp(argv[i], "--lock-timeout") == 0 && i + 1 < argc &&
                    (v = argv[++i])) ||
                   (strncmp(argv[i], "--lock-timeout=", 15) == 0 &&
                    (v = argv[i] + 15))) {
            if (cli_parse_lock_timeout(v, &lock_timeout))
                return cli_usage("db", "invalid lock timeout '%s': must be "
                                 "seconds, more than 0 and at most 86400", v);
        } else if (argv[i][0] == '-' || action) {
            return cli_usage("db", "unexpected argument '%s' (see rapid db "
                             "--help)", argv[i]);
        } else {
            action = argv[i];
        }
    }
    if (!action)
        return cli_usage("db", "need an action: init or status (see rapid db "
                         "--help)");
    if (strcmp(action, "init") == 0)
        return run_init(url, lock_timeout);
    if (strcmp(action, "status") == 0)
        return run_status(url, lock_timeout);
    return cli_usage("db", "unknown action '%s': use init or status", action);
}
